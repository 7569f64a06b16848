"""Go behaviour copied by the stand-ins: durations, numbers, and the `flag` package."""

from __future__ import annotations

import pytest
from hpcansible_testbed.standins._gocompat import (
    FlagError,
    GoFlagSet,
    HelpRequested,
    format_go_duration,
    format_go_float,
    format_rfc3339_nano,
    parse_go_duration,
)
from hpcansible_testbed.standins.cadvisor import build_flags, main


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("500ms", 0.5),
        ("10s", 10.0),
        ("1m", 60.0),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("-2s", -2.0),
        ("+3s", 3.0),
        ("0", 0.0),
        ("250us", 0.00025),
        ("1µs", 0.000001),
        ("100ns", 1e-7),
        (".5s", 0.5),
    ],
)
def test_go_durations_parse_like_time_parse_duration(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", 'time: missing unit in duration "10"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("abc", 'time: invalid duration "abc"'),
        ("", 'time: invalid duration ""'),
        ("s", 'time: invalid duration "s"'),
    ],
)
def test_malformed_go_durations_are_rejected_with_go_wording(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_go_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1, "1s"), (60, "1m0s"), (90, "1m30s"), (3600, "1h0m0s"), (0.5, "500ms"), (0, "0s")],
)
def test_durations_print_like_go(seconds: float, text: str) -> None:
    assert format_go_duration(seconds) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2.0, "2"),
        (0.5, "0.5"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (8327286784.0, "8.327286784e+09"),
        (1e6, "1e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-3.25, "-3.25"),
        (0.0, "0"),
        (float("nan"), "NaN"),
        (float("inf"), "+Inf"),
    ],
)
def test_sample_values_print_like_prometheus_go_client(value: float, text: str) -> None:
    assert format_go_float(value) == text


def test_rfc3339_nano_trims_trailing_zeros_like_go() -> None:
    assert format_rfc3339_nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert format_rfc3339_nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"


# ----------------------------------------------------------------------------- flag package


@pytest.fixture
def flags() -> GoFlagSet:
    return build_flags()


@pytest.mark.parametrize(
    "argv",
    [["-port=9000"], ["--port=9000"], ["-port", "9000"], ["--port", "9000"], ["-port=0x2328"]],
)
def test_flag_value_spellings_are_all_accepted(flags: GoFlagSet, argv: list[str]) -> None:
    values, rest = flags.parse(argv)
    assert values["port"] == 9000
    assert rest == []


def test_defaults_match_cadvisor(flags: GoFlagSet) -> None:
    values, _ = flags.parse([])
    assert values["port"] == 8080
    assert values["listen_ip"] == ""
    assert values["housekeeping_interval"] == 1.0
    assert values["max_housekeeping_interval"] == 60.0
    assert values["global_housekeeping_interval"] == 60.0
    assert values["allow_dynamic_housekeeping"] is True
    assert values["docker_only"] is False
    assert values["prometheus_endpoint"] == "/metrics"
    assert values["store_container_labels"] is True
    assert "process" in values["disable_metrics"]


def test_booleans_take_no_separate_argument(flags: GoFlagSet) -> None:
    values, rest = flags.parse(["-docker_only", "-logtostderr=false", "-v=2"])
    assert values["docker_only"] is True
    assert values["logtostderr"] is False
    assert values["v"] == 2
    assert rest == []
    # As in Go, "-docker_only false" sets true and stops at the positional "false".
    values, rest = flags.parse(["-docker_only", "false", "-port=1"])
    assert values["docker_only"] is True
    assert values["port"] == 8080
    assert rest == ["false", "-port=1"]


def test_durations_and_metric_lists(flags: GoFlagSet) -> None:
    values, _ = flags.parse(
        [
            "-housekeeping_interval=500ms",
            "-max_housekeeping_interval",
            "1m",
            "-disable_metrics=network,diskIO,process",
            "-enable_metrics=cpu,memory",
        ]
    )
    assert values["housekeeping_interval"] == 0.5
    assert values["max_housekeeping_interval"] == 60.0
    assert values["disable_metrics"] == {"network", "diskIO", "process"}
    assert values["enable_metrics"] == {"cpu", "memory"}
    values, _ = flags.parse(["-disable_metrics="])
    assert values["disable_metrics"] == frozenset()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-x"], "flag provided but not defined: -x"),
        (["--no_such_flag=1"], "flag provided but not defined: -no_such_flag"),
        (["-port"], "flag needs an argument: -port"),
        (["-port=abc"], 'invalid value "abc" for flag -port: parse error'),
        (["-housekeeping_interval=10"], 'invalid value "10" for flag -housekeeping_interval'),
        (["-docker_only=maybe"], 'invalid boolean value "maybe" for -docker_only: parse error'),
        (["-disable_metrics=bogus"], 'unsupported metric "bogus" specified'),
        (["---port=1"], "bad flag syntax: ---port=1"),
    ],
)
def test_bad_flags_fail_with_go_messages(flags: GoFlagSet, argv: list[str], message: str) -> None:
    with pytest.raises(FlagError, match=message.replace("(", r"\(").replace(")", r"\)")):
        flags.parse(argv)


def test_double_dash_and_positionals_end_flag_parsing(flags: GoFlagSet) -> None:
    values, rest = flags.parse(["-port=1", "--", "-port=2"])
    assert (values["port"], rest) == (1, ["-port=2"])
    values, rest = flags.parse(["extra", "-port=2"])
    assert (values["port"], rest) == (8080, ["extra", "-port=2"])


def test_help_is_requested_by_h(flags: GoFlagSet) -> None:
    with pytest.raises(HelpRequested):
        flags.parse(["-h"])


def test_unknown_flag_exits_2_with_message_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["-x"])
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("flag provided but not defined: -x\n")
    assert "stand-in" in stderr
    assert "Usage of cadvisor:" in stderr


def test_help_exits_0_and_says_it_is_a_standin(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["-help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().err
    assert "hpcansible cAdvisor stand-in" in usage
    assert "  -housekeeping_interval duration\n" in usage
    assert "(default 1s)" in usage
    assert "  -disable_metrics metrics\n" in usage  # Go's `backquoted` argument name
