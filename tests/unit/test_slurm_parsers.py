"""The SLURM CLI layer (module_utils/slurm.py) on output captured from the real testbed.

Every fixture below was printed by SLURM 22.05 on the hpcansible testbed (node1..node3):
`squeue -h -o SQUEUE_FORMAT`, `scontrol show job -o <id>` and sbatch's stderr.
"""

from __future__ import annotations

import pytest
from ansible_collections.hpcansible.hpc.plugins.module_utils.slurm import (
    SQUEUE_FORMAT,
    JobFailed,
    JobInfo,
    JobWaitTimeout,
    SbatchOptions,
    Slurm,
    SlurmError,
    build_tag,
    describe_failure,
    expand_hostlist,
    job_from_scontrol,
    parse_sbatch_output,
    parse_scontrol_record,
    parse_squeue,
    parse_tag,
    poll_retries,
    slurm_error_line,
    tail,
)

# --- captured output -------------------------------------------------------------------------

# squeue -h -o '%i|%j|%T|%r|%N|%P|%L|%u|%k' (running, pending, untagged, hostile name, two nodes)
SQUEUE_ACTIVE = """\
14|cap-pend|PENDING|PartitionConfig||debug|UNLIMITED|root|a | piped comment with spaces
13|cap-run|RUNNING|None|node1|debug|UNLIMITED|root|hpcansible:session=cap1;role=service;ports=11434,8080
15|cap-null|RUNNING|None|node1|debug|UNLIMITED|root|(null)
17|x; rm -rf ~|RUNNING|None|node2|debug|UNLIMITED|root|x; rm -rf ~
18|cap-multi|RUNNING|None|node[2-3]|debug|364-23:59:58|root|hpcansible:session=cap1;role=client
"""

# squeue -h --states=all -o ... (finished jobs stay listed for MinJobAge)
SQUEUE_ALL_STATES = """\
5|t1|CANCELLED|None|node1|debug|364-23:59:57|root|hpcansible:session=abc;role=service;ports=11434,8080
9|big|CANCELLED|PartitionConfig||debug|UNLIMITED|root|(null)
12|c|CANCELLED|PartitionConfig||debug|UNLIMITED|root|hpcansible:session=s2;role=prometheus
2|hostname|COMPLETED|None|node2|debug|365-00:00:00|root|(null)
1|hostname|FAILED|JobLaunchFailure|node3|debug|UNLIMITED|root|(null)
16|cap-fail|FAILED|NonZeroExitCode|node2|debug|UNLIMITED|root|(null)
20|s.sh|PENDING|PartitionNodeLimit||debug|UNLIMITED|root|(null)
"""

# The line the brief captured first (note the two spaces after Comment's value).
SCONTROL_RUNNING = (
    "JobId=5 JobName=t1 UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901755 Nice=0 "
    "Account=(null) QOS=(null) JobState=RUNNING Reason=None Dependency=(null) Requeue=1 "
    "Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:01 TimeLimit=365-00:00:00 "
    "TimeMin=N/A SubmitTime=2026-11-29T12:36:19 EligibleTime=2026-11-29T12:36:19 "
    "AccrueTime=2026-11-29T12:36:19 StartTime=2026-11-29T12:36:19 EndTime=2027-11-29T12:36:19 "
    "Deadline=N/A SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-29T12:36:19 "
    "Scheduler=Backfill Partition=debug AllocNode:Sid=localhost:1084 ReqNodeList=(null) "
    "ExcNodeList=(null) NodeList=node1 BatchHost=node1 NumNodes=1 NumCPUs=1 NumTasks=1 "
    "CPUs/Task=1 ReqB:S:C:T=0:0:*:* TRES=cpu=1,node=1,billing=1 Socks/Node=* "
    "NtasksPerN:B:S:C=0:0:*:* CoreSpec=* MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0 "
    "Features=(null) DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) "
    "Network=(null) Command=/tmp/j.sh WorkDir=/work/main "
    "Comment=hpcansible:session=abc;role=service;ports=11434,8080  StdErr=/tmp/t1-5.out "
    "StdIn=/dev/null StdOut=/tmp/t1-5.out Power= "
)

# cpus-per-task=64 on 2-CPU nodes, a comment with '|' and spaces
SCONTROL_PENDING = (
    "JobId=14 JobName=cap-pend UserId=root(0) GroupId=root(0) MCS_label=N/A "
    "Priority=4294901746 Nice=0 Account=(null) QOS=(null) JobState=PENDING "
    "Reason=PartitionConfig Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 "
    "ExitCode=0:0 RunTime=00:00:00 TimeLimit=UNLIMITED TimeMin=N/A "
    "SubmitTime=2026-11-29T12:39:10 EligibleTime=2026-11-29T12:39:10 "
    "AccrueTime=2026-11-29T12:39:10 StartTime=Unknown EndTime=Unknown Deadline=N/A "
    "SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-29T12:39:10 Scheduler=Main "
    "Partition=debug AllocNode:Sid=localhost:23664 ReqNodeList=(null) ExcNodeList=(null) "
    "NodeList= NumNodes=1 NumCPUs=64 NumTasks=1 CPUs/Task=64 ReqB:S:C:T=0:0:*:* "
    "TRES=cpu=64,mem=4000M,node=1,billing=64 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* "
    "CoreSpec=* MinCPUsNode=64 MinMemoryNode=0 MinTmpDiskNode=0 Features=(null) "
    "DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) "
    "Command=/tmp/capture/s.sh WorkDir=/tmp/capture Comment=a | piped comment with spaces  "
    "StdErr=/tmp/capture/pend-14.out StdIn=/dev/null StdOut=/tmp/capture/pend-14.out Power= "
)

# `echo cap-marker-xyz; exit 3`
SCONTROL_FAILED = (
    "JobId=16 JobName=cap-fail UserId=root(0) GroupId=root(0) MCS_label=N/A "
    "Priority=4294901744 Nice=0 Account=(null) QOS=(null) JobState=FAILED "
    "Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 "
    "ExitCode=3:0 RunTime=00:00:00 TimeLimit=UNLIMITED TimeMin=N/A "
    "SubmitTime=2026-11-29T12:39:10 EligibleTime=2026-11-29T12:39:10 "
    "AccrueTime=2026-11-29T12:39:10 StartTime=2026-11-29T12:39:10 "
    "EndTime=2026-11-29T12:39:10 Deadline=N/A SuspendTime=None SecsPreSuspend=0 "
    "LastSchedEval=2026-11-29T12:39:10 Scheduler=Main Partition=debug "
    "AllocNode:Sid=localhost:23664 ReqNodeList=(null) ExcNodeList=(null) NodeList=node2 "
    "BatchHost=node2 NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:* "
    "TRES=cpu=1,node=1,billing=1 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=* "
    "MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 "
    "OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) Command=/tmp/capture/f.sh "
    "WorkDir=/tmp/capture StdErr=/tmp/capture/fail-16.out StdIn=/dev/null "
    "StdOut=/tmp/capture/fail-16.out Power= "
)

# job name and comment 'x; rm -rf ~', no session tag
SCONTROL_HOSTILE_NAME = (
    "JobId=17 JobName=x; rm -rf ~ UserId=root(0) GroupId=root(0) MCS_label=N/A "
    "Priority=4294901743 Nice=0 Account=(null) QOS=(null) JobState=RUNNING Reason=None "
    "Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 "
    "RunTime=00:00:05 TimeLimit=UNLIMITED TimeMin=N/A SubmitTime=2026-11-29T12:39:10 "
    "EligibleTime=2026-11-29T12:39:10 AccrueTime=2026-11-29T12:39:10 "
    "StartTime=2026-11-29T12:39:10 EndTime=Unknown Deadline=N/A SuspendTime=None "
    "SecsPreSuspend=0 LastSchedEval=2026-11-29T12:39:10 Scheduler=Main Partition=debug "
    "AllocNode:Sid=localhost:23664 ReqNodeList=(null) ExcNodeList=(null) NodeList=node2 "
    "BatchHost=node2 NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:* "
    "TRES=cpu=1,node=1,billing=1 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=* "
    "MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 "
    "OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) Command=/tmp/capture/s.sh "
    "WorkDir=/tmp/capture Comment=x; rm -rf ~  StdErr=/tmp/capture/weird-17.out "
    "StdIn=/dev/null StdOut=/tmp/capture/weird-17.out Power= "
)

# -N2, tagged as a client
SCONTROL_TWO_NODES = (
    "JobId=18 JobName=cap-multi UserId=root(0) GroupId=root(0) MCS_label=N/A "
    "Priority=4294901742 Nice=0 Account=(null) QOS=(null) JobState=RUNNING Reason=None "
    "Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 "
    "RunTime=00:00:05 TimeLimit=365-00:00:00 TimeMin=N/A SubmitTime=2026-11-29T12:39:10 "
    "EligibleTime=2026-11-29T12:39:10 AccrueTime=2026-11-29T12:39:10 "
    "StartTime=2026-11-29T12:39:10 EndTime=2027-11-29T12:39:10 Deadline=N/A "
    "SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-29T12:39:10 Scheduler=Backfill "
    "Partition=debug AllocNode:Sid=localhost:23664 ReqNodeList=(null) ExcNodeList=(null) "
    "NodeList=node[2-3] BatchHost=node2 NumNodes=2 NumCPUs=2 NumTasks=2 CPUs/Task=1 "
    "ReqB:S:C:T=0:0:*:* TRES=cpu=2,node=2,billing=2 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* "
    "CoreSpec=* MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0 Features=(null) "
    "DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) "
    "Command=/tmp/capture/s.sh WorkDir=/tmp/capture Comment=hpcansible:session=cap1;role=client "
    " StdErr=/tmp/capture/multi-18.out StdIn=/dev/null StdOut=/tmp/capture/multi-18.out Power= "
)

# sbatch's stderr, exactly as printed (each after `sbatch --parsable ...` exited non-zero)
SBATCH_BAD_PARTITION = (
    "sbatch: error: invalid partition specified: nope\n"
    "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
)
SBATCH_BAD_TIME = "sbatch: error: Invalid --time specification\n"
SBATCH_BAD_NODELIST = "sbatch: error: Batch job submission failed: Invalid node name specified\n"
SBATCH_BAD_MEM = (
    "sbatch: error: Memory specification can not be satisfied\n"
    "sbatch: error: Batch job submission failed: Requested node configuration is not available\n"
)
SBATCH_NO_SHEBANG = (
    "sbatch: error: This does not look like a batch script.  The first\n"
    "sbatch: error: line must start with #! followed by the path to an interpreter.\n"
    "sbatch: error: For instance: #!/bin/sh\n"
)
SBATCH_BAD_OPTION = (
    "sbatch: unrecognized option '--bogus-opt'\nTry \"sbatch --help\" for more information\n"
)
SCONTROL_INVALID_JOB = "slurm_load_jobs error: Invalid job id specified\n"


# --- host lists ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "hosts"),
    [
        ("node1", ["node1"]),
        ("node[1-3]", ["node1", "node2", "node3"]),
        ("node[1-3,5]", ["node1", "node2", "node3", "node5"]),
        ("node[1,3],gpu01", ["node1", "node3", "gpu01"]),
        ("n[01-03]", ["n01", "n02", "n03"]),
        ("n[008-011]", ["n008", "n009", "n010", "n011"]),
        ("n[9-11]", ["n9", "n10", "n11"]),
        ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
        ("mel[0001-0002]-ib", ["mel0001-ib", "mel0002-ib"]),
        ("a[1-2],b[07-08],c", ["a1", "a2", "b07", "b08", "c"]),
        ("node1,node2", ["node1", "node2"]),
        (" node[2-3] ", ["node2", "node3"]),
        ("node[5]", ["node5"]),
    ],
)
def test_expand_hostlist(expression, hosts):
    assert expand_hostlist(expression) == hosts


@pytest.mark.parametrize("empty", ["", "(null)", "None", "None assigned", "n/a", None, "  "])
def test_expand_hostlist_no_nodes(empty):
    assert expand_hostlist(empty) == []


@pytest.mark.parametrize("bad", ["node[3-1]", "node[a-c]", "node[1-]", "node[-2]"])
def test_expand_hostlist_bad_range_raises(bad):
    with pytest.raises(ValueError, match="bad host range"):
        expand_hostlist(bad)


# --- squeue ----------------------------------------------------------------------------------


def test_squeue_format_matches_the_captured_columns():
    assert SQUEUE_FORMAT == "%i|%j|%T|%r|%N|%P|%L|%u|%k"


def test_parse_squeue_active_jobs():
    jobs = {job.job_id: job for job in parse_squeue(SQUEUE_ACTIVE)}
    assert list(jobs) == ["14", "13", "15", "17", "18"]

    running = jobs["13"]
    assert (running.name, running.state, running.reason) == ("cap-run", "RUNNING", "")
    assert (running.nodelist, running.nodes) == ("node1", ["node1"])
    assert (running.partition, running.time_left, running.user) == ("debug", "UNLIMITED", "root")
    assert running.tag == {"session": "cap1", "role": "service", "ports": "11434,8080"}
    assert (running.session, running.role, running.ports) == ("cap1", "service", [11434, 8080])
    assert running.active

    pending = jobs["14"]
    assert (pending.state, pending.reason) == ("PENDING", "PartitionConfig")
    assert (pending.nodelist, pending.nodes) == ("", [])
    assert pending.comment == "a | piped comment with spaces"  # the separator, kept whole
    assert pending.tag == {}
    assert pending.session == ""

    assert jobs["15"].comment == ""  # '(null)'
    assert jobs["15"].tag == {}

    hostile = jobs["17"]
    assert hostile.name == "x; rm -rf ~"
    assert hostile.comment == "x; rm -rf ~"
    assert hostile.tag == {}

    two = jobs["18"]
    assert two.nodes == ["node2", "node3"]
    assert (two.session, two.role, two.ports) == ("cap1", "client", [])
    assert two.time_left == "364-23:59:58"


def test_parse_squeue_all_states():
    jobs = {job.job_id: job for job in parse_squeue(SQUEUE_ALL_STATES)}
    assert {job_id: job.state for job_id, job in jobs.items()} == {
        "5": "CANCELLED",
        "9": "CANCELLED",
        "12": "CANCELLED",
        "2": "COMPLETED",
        "1": "FAILED",
        "16": "FAILED",
        "20": "PENDING",
    }
    assert [job_id for job_id, job in jobs.items() if job.active] == ["20"]
    assert jobs["16"].reason == "NonZeroExitCode"
    assert jobs["20"].reason == "PartitionNodeLimit"
    assert jobs["12"].role == "prometheus"
    assert jobs["9"].nodes == []


def test_parse_squeue_blank_and_empty():
    assert parse_squeue("") == []
    assert parse_squeue("\n  \n") == []


def test_parse_squeue_short_line_raises():
    with pytest.raises(SlurmError, match="unexpected squeue line"):
        parse_squeue("13|cap-run|RUNNING\n")


def test_parse_squeue_foreign_job_with_separator_in_name_does_not_break_the_rest():
    # Another user's job named 'a|b' shifts its own columns; ours still parse, and it is not ours.
    output = (
        "30|a|b|RUNNING|None|node1|debug|UNLIMITED|alice|(null)\n"
        "31|mine|RUNNING|None|node2|debug|UNLIMITED|root|hpcansible:session=s9;role=service\n"
    )
    foreign, mine = parse_squeue(output)
    assert foreign.session == ""
    assert (mine.session, mine.role, mine.nodes) == ("s9", "service", ["node2"])


def test_job_as_dict_carries_the_tag_fields():
    (job,) = [job for job in parse_squeue(SQUEUE_ACTIVE) if job.job_id == "13"]
    data = job.as_dict()
    assert "tag" not in data
    assert data["session"] == "cap1"
    assert data["role"] == "service"
    assert data["ports"] == [11434, 8080]
    assert data["nodes"] == ["node1"]


# --- scontrol --------------------------------------------------------------------------------


def test_parse_scontrol_record_running():
    record = parse_scontrol_record(SCONTROL_RUNNING)
    assert record["JobId"] == "5"
    assert record["JobState"] == "RUNNING"
    assert record["Comment"] == "hpcansible:session=abc;role=service;ports=11434,8080"
    assert record["AllocNode:Sid"] == "localhost:1084"
    assert record["CPUs/Task"] == "1"
    assert record["TRES"] == "cpu=1,node=1,billing=1"
    assert record["Power"] == ""
    assert record["StdOut"] == "/tmp/t1-5.out"


def test_job_from_scontrol_running():
    job = job_from_scontrol(parse_scontrol_record(SCONTROL_RUNNING))
    assert job == JobInfo(
        job_id="5",
        name="t1",
        state="RUNNING",
        reason="",
        nodelist="node1",
        nodes=["node1"],
        partition="debug",
        user="root",
        comment="hpcansible:session=abc;role=service;ports=11434,8080",
        exit_code="0:0",
        stdout_path="/tmp/t1-5.out",
        stderr_path="/tmp/t1-5.out",
        tag={"session": "abc", "role": "service", "ports": "11434,8080"},
    )


def test_job_from_scontrol_pending_value_with_spaces_and_separator():
    job = job_from_scontrol(parse_scontrol_record(SCONTROL_PENDING))
    assert (job.state, job.reason) == ("PENDING", "PartitionConfig")
    assert (job.nodelist, job.nodes) == ("", [])
    assert job.comment == "a | piped comment with spaces"
    assert job.tag == {}
    assert job.stdout_path == "/tmp/capture/pend-14.out"


def test_job_from_scontrol_failed():
    job = job_from_scontrol(parse_scontrol_record(SCONTROL_FAILED))
    assert (job.state, job.reason, job.exit_code) == ("FAILED", "NonZeroExitCode", "3:0")
    assert job.comment == ""
    assert job.nodes == ["node2"]
    assert not job.active


def test_job_from_scontrol_hostile_name_stays_a_string():
    job = job_from_scontrol(parse_scontrol_record(SCONTROL_HOSTILE_NAME))
    assert job.name == "x; rm -rf ~"
    assert job.comment == "x; rm -rf ~"
    assert job.user == "root"
    assert job.stderr_path == "/tmp/capture/weird-17.out"


def test_job_from_scontrol_two_nodes():
    job = job_from_scontrol(parse_scontrol_record(SCONTROL_TWO_NODES))
    assert (job.nodelist, job.nodes) == ("node[2-3]", ["node2", "node3"])
    assert (job.session, job.role) == ("cap1", "client")


def test_job_from_scontrol_null_nodelist():
    job = job_from_scontrol({"JobId": "9", "JobState": "PENDING", "NodeList": "(null)"})
    assert (job.nodelist, job.nodes) == ("", [])


# --- sbatch ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdout", "job_id"),
    [("123\n", "123"), ("123;cluster\n", "123"), ("  42  ", "42"), ("7;c\nextra\n", "7")],
)
def test_parse_sbatch_output(stdout, job_id):
    assert parse_sbatch_output(stdout) == job_id


@pytest.mark.parametrize("garbage", ["", "\n", "Submitted batch job 12", "abc;cluster", "-1"])
def test_parse_sbatch_output_garbage(garbage):
    with pytest.raises(SlurmError, match="sbatch printed no job id"):
        parse_sbatch_output(garbage)


@pytest.mark.parametrize(
    ("stderr", "message"),
    [
        (SBATCH_BAD_PARTITION, "Invalid partition name specified"),
        (SBATCH_BAD_TIME, "Invalid --time specification"),
        (SBATCH_BAD_NODELIST, "Invalid node name specified"),
        (SBATCH_BAD_MEM, "Requested node configuration is not available"),
        (
            SBATCH_NO_SHEBANG,
            "This does not look like a batch script.  The first line must start with #! "
            "followed by the path to an interpreter. For instance: #!/bin/sh",
        ),
        (SBATCH_BAD_OPTION, "sbatch: unrecognized option '--bogus-opt'"),
        (SCONTROL_INVALID_JOB, "slurm_load_jobs error: Invalid job id specified"),
        ("ssh: connect to host login port 8822: Connection refused\n", None),
    ],
)
def test_slurm_error_line(stderr, message):
    expected = message or stderr.strip()
    assert slurm_error_line(stderr) == expected


def test_slurm_error_line_falls_back_to_stdout_and_to_no_output():
    assert slurm_error_line("", "sbatch: error: Invalid account\n") == "Invalid account"
    assert slurm_error_line("", "") == "no output"


# --- session tags ----------------------------------------------------------------------------


def test_build_and_parse_tag_round_trip():
    tag = build_tag("20261129-ollama", "service", [11434, 8080])
    assert tag == "hpcansible:session=20261129-ollama;role=service;ports=11434,8080"
    assert parse_tag(tag) == {
        "session": "20261129-ollama",
        "role": "service",
        "ports": "11434,8080",
    }
    assert parse_tag(build_tag("s.1", "client_a")) == {"session": "s.1", "role": "client_a"}
    assert " " not in tag


def test_parse_tag_ignores_what_follows_the_tag_and_untagged_comments():
    assert parse_tag("hpcansible:session=s;role=r free text; more") == {"session": "s", "role": "r"}
    assert parse_tag("x; rm -rf ~") == {}
    assert parse_tag("") == {}
    assert parse_tag(None) == {}
    assert parse_tag("  hpcansible:session=s;role=r") == {"session": "s", "role": "r"}


@pytest.mark.parametrize(
    ("session", "role"),
    [
        ("x; rm -rf ~", "service"),
        ("my session", "service"),
        ("s1", "two words"),
        ("s1", "a;b"),
        ("", "service"),
        ("s1", ""),
        ("-leading-dash", "service"),
        ("$(id)", "service"),
        ("a" * 65, "service"),
        ("s1", "role=x"),
    ],
)
def test_build_tag_rejects_unsafe_names(session, role):
    with pytest.raises(ValueError, match="must be 1-64 letters"):
        build_tag(session, role)


def test_build_tag_ports_are_integers():
    assert build_tag("s", "r", ["8080"]).endswith(";ports=8080")
    with pytest.raises(ValueError):
        build_tag("s", "r", ["8080; id"])


# --- sbatch options --------------------------------------------------------------------------


def test_sbatch_options_argv_one_element_per_option():
    options = SbatchOptions(
        job_name="x; rm -rf ~",
        partition="debug",
        account="p200000",
        qos="default",
        time="01:00:00",
        nodes="1-2",
        ntasks=2,
        cpus_per_task=4,
        mem="4G",
        gres="gpu:1",
        constraint="a100&nvlink",
        nodelist="node[1-2]",
        exclude="node3",
        comment="hpcansible:session=s;role=r $HOME `id` $(id)",
        output="/scratch/%x-%j.out",
        error="/scratch/%x-%j.err",
        chdir="/tmp/my dir",
        extra_args=["--exclusive", "--signal=B:USR1@60"],
    )
    assert options.argv() == [
        "sbatch",
        "--parsable",
        "--job-name=x; rm -rf ~",
        "--partition=debug",
        "--account=p200000",
        "--qos=default",
        "--time=01:00:00",
        "--nodes=1-2",
        "--ntasks=2",
        "--cpus-per-task=4",
        "--mem=4G",
        "--gres=gpu:1",
        "--constraint=a100&nvlink",
        "--nodelist=node[1-2]",
        "--exclude=node3",
        "--comment=hpcansible:session=s;role=r $HOME `id` $(id)",
        "--output=/scratch/%x-%j.out",
        "--error=/scratch/%x-%j.err",
        "--chdir=/tmp/my dir",
        "--exclusive",
        "--signal=B:USR1@60",
    ]


def test_sbatch_options_argv_skips_unset_and_empty():
    assert SbatchOptions().argv() == ["sbatch", "--parsable"]
    assert SbatchOptions(job_name="", partition=None, cpus_per_task=1).argv() == [
        "sbatch",
        "--parsable",
        "--cpus-per-task=1",
    ]


# --- the Slurm class with a fake runner and a fake clock --------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def scontrol_line(job_id="77", state="PENDING", reason="Priority", nodelist="", exit_code="0:0",
                  stdout="/tmp/none.out", name="w"):  # fmt: skip
    return (
        f"JobId={job_id} JobName={name} UserId=root(0) GroupId=root(0) JobState={state} "
        f"Reason={reason} ExitCode={exit_code} Partition=debug NodeList={nodelist} "
        f"Comment=hpcansible:session=s1;role=service;ports=80  StdErr={stdout} StdIn=/dev/null "
        f"StdOut={stdout} Power= "
    )


class ScriptedRunner:
    """Answers `scontrol show job` with the next scripted line (the last one repeats)."""

    def __init__(self, lines: list[str | None]) -> None:
        self.lines = lines
        self.calls: list[tuple[list[str], str | None]] = []

    def __call__(self, argv, stdin=None):
        self.calls.append((list(argv), stdin))
        if argv[:3] == ["scontrol", "show", "job"]:
            line = self.lines.pop(0) if len(self.lines) > 1 else self.lines[0]
            if line is None:
                return 1, "", SCONTROL_INVALID_JOB
            return 0, line + "\n", ""
        raise AssertionError(f"unexpected command {argv}")


def slurm_on_fake_clock(runner):
    clock = FakeClock()
    return Slurm(runner, clock=clock, sleep=clock.sleep), clock


def make_slurm(lines):
    runner = ScriptedRunner(lines)
    slurm, clock = slurm_on_fake_clock(runner)
    return slurm, runner, clock


def test_wait_running_reached():
    slurm, runner, clock = make_slurm(
        [scontrol_line(), scontrol_line(), scontrol_line(state="RUNNING", nodelist="node[1-2]")]
    )
    job = slurm.wait("77", "running", timeout=10, interval=0.1)
    assert (job.state, job.nodes) == ("RUNNING", ["node1", "node2"])
    assert clock.sleeps == [0.1, 0.1]  # the first interval while the wait is young
    assert runner.calls[0] == (["scontrol", "show", "job", "-o", "77"], None)


def test_wait_running_returns_at_once_without_sleeping():
    slurm, _, clock = make_slurm([scontrol_line(state="RUNNING", nodelist="node3")])
    assert slurm.wait("77", "running", timeout=10).nodes == ["node3"]
    assert clock.sleeps == []


def test_wait_completed_waits_through_running():
    slurm, _, clock = make_slurm(
        [
            scontrol_line(state="RUNNING", nodelist="node1"),
            scontrol_line(state="COMPLETING", nodelist="node1"),
            scontrol_line(state="COMPLETED", reason="None", nodelist="node1"),
        ]
    )
    job = slurm.wait("77", "completed", timeout=10, interval=0.2)
    assert (job.state, job.reason, job.exit_code) == ("COMPLETED", "", "0:0")
    assert len(clock.sleeps) == 2


def test_wait_running_accepts_a_job_that_already_completed():
    slurm, _, _ = make_slurm([scontrol_line(state="COMPLETED", reason="None", nodelist="node1")])
    assert slurm.wait("77", "running", timeout=1).state == "COMPLETED"


def test_wait_failed_raises_with_state_reason_exit_code_and_output_tail(tmp_path):
    out = tmp_path / "job-77.out"
    out.write_text("".join(f"line {n}\n" for n in range(1, 31)) + "MARKER boom\n")
    slurm, _, _ = make_slurm(
        [
            scontrol_line(state="RUNNING", nodelist="node1", stdout=str(out)),
            scontrol_line(
                state="FAILED",
                reason="NonZeroExitCode",
                exit_code="3:0",
                nodelist="node1",
                stdout=str(out),
            ),
        ]
    )
    with pytest.raises(JobFailed) as caught:
        slurm.wait("77", "completed", timeout=10, tail_lines=5)
    message = str(caught.value)
    assert "job 77 (w) FAILED, reason NonZeroExitCode, exit code 3:0" in message
    assert f"last lines of {out}" in message
    assert message.endswith("line 27\nline 28\nline 29\nline 30\nMARKER boom")
    assert "line 26" not in message
    assert caught.value.job.state == "FAILED"
    assert caught.value.job.exit_code == "3:0"


@pytest.mark.parametrize(
    "state", ["FAILED", "TIMEOUT", "NODE_FAIL", "CANCELLED", "OUT_OF_MEMORY", "PREEMPTED"]
)
def test_wait_terminal_failures_raise_even_when_waiting_for_running(state):
    slurm, _, _ = make_slurm([scontrol_line(state=state, reason="None", stdout="/nonexistent")])
    with pytest.raises(JobFailed, match=f"job 77 \\(w\\) {state}, exit code 0:0; no output in"):
        slurm.wait("77", "running", timeout=10)


def test_wait_pending_past_timeout_raises_with_the_reason():
    slurm, _, clock = make_slurm([scontrol_line(reason="PartitionConfig")])
    with pytest.raises(JobWaitTimeout) as caught:
        slurm.wait("77", "running", timeout=3, interval=0.2)
    assert str(caught.value) == "job 77 (w) still PENDING after 3 s: reason PartitionConfig"
    assert caught.value.job.reason == "PartitionConfig"
    # never sleeps past the deadline
    assert sum(clock.sleeps) == pytest.approx(3.0)
    assert clock.now == pytest.approx(1003.0)


def test_wait_polls_fast_while_young_then_backs_off_to_two_seconds():
    slurm, _, clock = make_slurm([scontrol_line(reason="Resources")])
    with pytest.raises(JobWaitTimeout):
        slurm.wait("77", "running", timeout=30, interval=0.2)
    # every 0.2 s for the first FAST_POLL_S (10 s): a job that starts is seen within 0.2 s
    fast = [pause for pause in clock.sleeps if pause == 0.2]
    assert len(fast) == 50 and clock.sleeps[:50] == fast
    assert clock.sleeps[50:56] == pytest.approx([0.3, 0.45, 0.675, 1.0125, 1.51875, 2.0])
    assert max(clock.sleeps) == 2.0
    assert sum(clock.sleeps) == pytest.approx(30.0)


def test_wait_respects_max_interval():
    slurm, _, clock = make_slurm([scontrol_line()])
    with pytest.raises(JobWaitTimeout):
        slurm.wait("77", "running", timeout=15, interval=0.5, max_interval=0.6)
    assert clock.sleeps[:20] == [0.5] * 20
    assert set(clock.sleeps[20:-1]) == {0.6}


def test_wait_for_a_vanished_job_times_out_saying_so():
    slurm, _, _ = make_slurm([None])
    with pytest.raises(JobWaitTimeout, match="still UNKNOWN after 1 s: reason job vanished"):
        slurm.wait("77", "running", timeout=1)


class QueueRunner:
    """Answers `squeue --jobs=` with the next scripted output (the last one repeats)."""

    def __init__(self, outputs: list[tuple[int, str, str]]) -> None:
        self.outputs = outputs
        self.calls: list[list[str]] = []

    def __call__(self, argv, stdin=None):
        self.calls.append(list(argv))
        return self.outputs.pop(0) if len(self.outputs) > 1 else self.outputs[0]


def test_wait_gone_until_no_job_is_active():
    runner = QueueRunner(
        [
            (0, "5|a|RUNNING|None|node1|debug|1:00|root|(null)\n", ""),
            (0, "5|a|COMPLETING|None|node1|debug|1:00|root|(null)\n", ""),
            (0, "5|a|CANCELLED|None|node1|debug|1:00|root|(null)\n", ""),
        ]
    )
    slurm, clock = slurm_on_fake_clock(runner)
    assert slurm.wait_gone(["5", "6"], timeout=10, interval=0.2) is True
    assert runner.calls[0] == ["squeue", "-h", "-o", SQUEUE_FORMAT, "--jobs=5,6"]
    assert clock.sleeps == [0.2, 0.2]


def test_wait_gone_treats_invalid_job_id_as_gone():
    slurm, clock = slurm_on_fake_clock(QueueRunner([(1, "", SCONTROL_INVALID_JOB)]))
    assert slurm.wait_gone(["99999"], timeout=10) is True
    assert clock.sleeps == []


def test_wait_gone_times_out():
    slurm, clock = slurm_on_fake_clock(
        QueueRunner([(0, "5|a|RUNNING|None|node1|debug|1:00|root|(null)\n", "")])
    )
    assert slurm.wait_gone(["5"], timeout=2, interval=0.5) is False
    assert max(clock.sleeps) <= 2.0


# --- the Slurm class: commands --------------------------------------------------------------


class RecordingRunner:
    def __init__(self, answer=(0, "", "")) -> None:
        self.answer = answer
        self.calls: list[tuple[list[str], str | None]] = []

    def __call__(self, argv, stdin=None):
        self.calls.append((list(argv), stdin))
        return self.answer


def test_submit_passes_the_script_on_stdin_and_argv_verbatim():
    runner = RecordingRunner((0, "4711;cluster\n", ""))
    options = SbatchOptions(job_name="x; rm -rf ~", comment="$(touch /tmp/pwned)")
    assert Slurm(runner).submit(options, "#!/bin/bash\nhostname\n") == "4711"
    ((argv, stdin),) = runner.calls
    assert argv == [
        "sbatch",
        "--parsable",
        "--job-name=x; rm -rf ~",
        "--comment=$(touch /tmp/pwned)",
    ]
    assert stdin == "#!/bin/bash\nhostname\n"


def test_submit_failure_raises_slurm_s_own_error():
    runner = RecordingRunner((1, "", SBATCH_BAD_PARTITION))
    with pytest.raises(SlurmError, match=r"^sbatch: Invalid partition name specified$"):
        Slurm(runner).submit(SbatchOptions(partition="nope"), "#!/bin/sh\n")


def test_queue_argv_and_failure():
    runner = RecordingRunner((0, SQUEUE_ACTIVE, ""))
    jobs = Slurm(runner).queue(name="cap-run", user="root", all_states=True)
    assert len(jobs) == 5
    assert runner.calls[0][0] == [
        "squeue",
        "-h",
        "-o",
        SQUEUE_FORMAT,
        "--states=all",
        "--name=cap-run",
        "--user=root",
    ]
    failing = RecordingRunner((1, "", "squeue: error: Invalid user: nobody42\n"))
    with pytest.raises(SlurmError, match=r"^squeue: Invalid user: nobody42$"):
        Slurm(failing).queue(user="nobody42")


def test_session_jobs_filters_session_and_role():
    slurm = Slurm(RecordingRunner((0, SQUEUE_ACTIVE, "")))
    assert [job.job_id for job in slurm.session_jobs("cap1")] == ["13", "18"]
    assert [job.job_id for job in slurm.session_jobs("cap1", role="client")] == ["18"]
    assert slurm.session_jobs("other") == []


def test_show_parses_and_handles_unknown_ids():
    slurm = Slurm(RecordingRunner((0, SCONTROL_FAILED + "\n", "")))
    assert slurm.show("16").state == "FAILED"
    assert Slurm(RecordingRunner((1, "", SCONTROL_INVALID_JOB))).show("99999") is None
    with pytest.raises(SlurmError, match="scontrol: Connection refused"):
        Slurm(RecordingRunner((1, "", "scontrol: error: Connection refused\n"))).show("1")


def test_cancel():
    runner = RecordingRunner()
    slurm = Slurm(runner)
    slurm.cancel([])
    assert runner.calls == []
    slurm.cancel(["5", "6"])
    assert runner.calls == [(["scancel", "5", "6"], None)]


# --- output tail and failure messages --------------------------------------------------------


def test_tail(tmp_path):
    out = tmp_path / "x.out"
    out.write_bytes(b"a\nb\n\xff bad utf8\nlast\n")
    assert tail(str(out), 2) == "\ufffd bad utf8\nlast"
    assert tail(str(tmp_path / "missing.out")) == ""
    assert tail("") == ""


def test_tail_reads_only_the_end_of_a_big_file(tmp_path):
    out = tmp_path / "big.out"
    out.write_text("x" * 200_000 + "\nend\n")
    assert tail(str(out), 1) == "end"


def test_describe_failure_without_output():
    job = JobInfo(job_id="3", name="n", state="TIMEOUT", reason="TimeLimit", exit_code="0:15")
    assert describe_failure(job, "") == (
        "job 3 (n) TIMEOUT, reason TimeLimit, exit code 0:15; no output in its output file"
    )


def test_job_ids_sort_numerically_with_array_and_het_ids():
    from ansible_collections.hpcansible.hpc.plugins.module_utils.slurm import job_id_key

    ids = ["12_10", "9", "12_3", "12", "12+1"]
    assert sorted(ids, key=job_id_key) == ["9", "12", "12+1", "12_3", "12_10"]


def test_fixed_interval_waits_last_their_whole_timeout():
    # the roles' readiness polls (every 0.25 s), Prometheus's targets, teardown's last scrape
    assert poll_retries(60, 0.25) == 240
    assert poll_retries(120, 0.25) == 480
    assert poll_retries(15.0, 0.25) == 60
    assert poll_retries(10, 3) == 4  # rounded up: never shorter than the timeout
    from ansible_collections.hpcansible.hpc.plugins.filter.polling import FilterModule

    assert FilterModule().filters() == {"poll_retries": poll_retries}
