"""The testbed_network module's decisions, against a simulated `ip` (no root, no namespaces).

The fake keeps links, addresses, namespaces and routes, answers `ip` the way iproute2 prints,
and applies the changes the module asks for, so idempotence and leftover handling are checked
by running the module twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.hpcansible.hpc.plugins.modules import testbed_network

HOSTS = [{"name": "login", "address": "10.77.0.2"}, {"name": "node1", "address": "10.77.0.11"}]


class ExitJson(Exception):
    pass


class FailJson(Exception):
    pass


@dataclass
class Link:
    up: bool = False
    master: str = ""
    addresses: list[str] = field(default_factory=list)


@dataclass
class Namespace:
    usable: bool = True
    links: dict[str, Link] = field(default_factory=lambda: {"lo": Link()})
    default_via: str = ""


@dataclass
class FakeIp:
    links: dict[str, Link] = field(default_factory=dict)
    namespaces: dict[str, Namespace] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    fail_on: str = ""

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        assert argv[0] == "ip"
        args = argv[1:]
        links = self.links
        namespace = None
        if args[0] == "-n":
            namespace = self.namespaces.get(args[1])
            if namespace is None or not namespace.usable:
                return 1, "", f'Cannot open network namespace "{args[1]}"'
            links, args = namespace.links, args[2:]
        if args[0] == "-o":
            args = args[1:]
        verb = " ".join(args[:2])
        if verb == "netns list":
            return 0, "".join(f"{name} (id: 0)\n" for name in self.namespaces), ""
        if verb == "link show":
            link = links.get(args[2])
            if link is None:
                return 1, "", f'Device "{args[2]}" does not exist.'
            flags = "BROADCAST,MULTICAST" + (",UP,LOWER_UP" if link.up else "")
            master = f" master {link.master}" if link.master else ""
            return 0, f"7: {args[2]}: <{flags}> mtu 1500 qdisc noqueue{master} state UP\n", ""
        if verb == "addr show":
            link = links.get(args[3])
            if link is None:
                return 1, "", f'Device "{args[3]}" does not exist.'
            return (
                0,
                "".join(f"7: {args[3]}    inet {a} scope global\n" for a in link.addresses),
                "",
            )
        if verb == "route show":
            via = namespace.default_via if namespace else ""
            return 0, (f"default via {via} dev eth0\n" if via else ""), ""
        return self.change(argv, links, namespace, args)

    def change(self, argv, links, namespace, args) -> tuple[int, str, str]:
        command = " ".join(argv)
        self.changes.append(command)
        if self.fail_on and self.fail_on in command:
            return 2, "", "RTNETLINK answers: Operation not permitted"
        match args:
            case ["link", "add", name, "type", "bridge"]:
                links[name] = Link()
            case ["link", "add", veth, "type", "veth", "peer", "name", peer, "netns", ns]:
                links[veth] = Link()
                self.namespaces[ns].links[peer] = Link()
            case ["link", "set", name, "up"]:
                links[name].up = True
            case ["link", "set", name, "master", bridge]:
                links[name].master = bridge
            case ["link", "delete", name]:
                del links[name]
            case ["addr", "replace", address, "dev", name]:
                links[name].addresses = [address]
            case ["netns", "add", name]:
                self.namespaces[name] = Namespace()
            case ["netns", "delete", name]:
                del self.namespaces[name]
            case ["route", "replace", "default", "via", gateway]:
                namespace.default_via = gateway
            case _:
                raise AssertionError(f"unexpected ip command: {command}")
        return 0, "", ""


@pytest.fixture
def ip(monkeypatch):
    fake = FakeIp()

    def run_command(self, args, **kwargs):
        assert isinstance(args, list)
        return fake(args)

    def exit_json(self, **result):
        raise ExitJson(result)

    def fail_json(self, msg, **result):
        raise FailJson({"msg": msg, **result})

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    return fake


def run_module(args: dict, check: bool = False) -> dict:
    with patch_module_args(dict(args, _ansible_check_mode=check)), pytest.raises(ExitJson) as done:
        testbed_network.main()
    return done.value.args[0]


def fail_module(args: dict) -> dict:
    with patch_module_args(args), pytest.raises(FailJson) as failed:
        testbed_network.main()
    return failed.value.args[0]


def assert_built(ip: FakeIp) -> None:
    bridge = ip.links["hpcbr0"]
    assert (bridge.up, bridge.addresses) == (True, ["10.77.0.1/24"])
    for host in HOSTS:
        veth = ip.links[f"hpcv-{host['name']}"]
        assert (veth.up, veth.master) == (True, "hpcbr0")
        namespace = ip.namespaces[host["name"]]
        assert namespace.links["eth0"].addresses == [f"{host['address']}/24"]
        assert namespace.links["eth0"].up and namespace.links["lo"].up
        assert namespace.default_via == "10.77.0.1"


def test_fresh_machine_builds_everything_then_nothing_changes(ip):
    first = run_module({"hosts": HOSTS})
    assert first["changed"] is True
    assert first["actions"][:3] == [
        "ip link add hpcbr0 type bridge",
        "ip addr replace 10.77.0.1/24 dev hpcbr0",
        "ip link set hpcbr0 up",
    ]
    assert "ip netns add node1" in first["actions"]
    assert "ip link add hpcv-node1 type veth peer name eth0 netns node1" in first["actions"]
    assert "ip -n node1 route replace default via 10.77.0.1" in first["actions"]
    assert first["actions"] == ip.changes
    assert_built(ip)

    second = run_module({"hosts": HOSTS})
    assert (second["changed"], second["actions"]) == (False, [])


def test_check_mode_reports_and_changes_nothing(ip):
    result = run_module({"hosts": HOSTS}, check=True)
    assert result["changed"] is True
    assert "ip netns add login" in result["actions"]
    assert ip.changes == []
    assert ip.links == {} and ip.namespaces == {}


def test_leftover_namespace_file_that_is_no_namespace_is_recreated(ip):
    run_module({"hosts": HOSTS})
    ip.namespaces["node1"].usable = False  # the processes are gone, the file stayed
    ip.changes.clear()
    result = run_module({"hosts": HOSTS})
    assert result["actions"][:2] == ["ip netns delete node1", "ip netns add node1"]
    assert_built(ip)


def test_leftover_veth_without_its_peer_is_replaced(ip):
    run_module({"hosts": HOSTS})
    del ip.namespaces["node1"].links["eth0"]
    ip.changes.clear()
    result = run_module({"hosts": HOSTS})
    assert result["actions"][:2] == [
        "ip link delete hpcv-node1",
        "ip link add hpcv-node1 type veth peer name eth0 netns node1",
    ]
    assert_built(ip)


def test_bridge_without_address_and_down_is_repaired(ip):
    run_module({"hosts": HOSTS})
    ip.links["hpcbr0"] = Link(master="", addresses=[])
    for host in HOSTS:
        ip.links[f"hpcv-{host['name']}"].master = ""
    result = run_module({"hosts": HOSTS})
    assert "ip link add hpcbr0 type bridge" not in result["actions"]
    assert result["actions"][:2] == [
        "ip addr replace 10.77.0.1/24 dev hpcbr0",
        "ip link set hpcbr0 up",
    ]
    assert_built(ip)


def test_absent_removes_only_what_it_was_given(ip):
    run_module({"hosts": HOSTS})
    ip.links["eth0"] = Link(up=True)  # the machine's own interface
    ip.namespaces["other"] = Namespace()  # someone else's namespace
    result = run_module({"hosts": HOSTS, "state": "absent"})
    assert result["changed"] is True
    assert set(ip.links) == {"eth0"}
    assert set(ip.namespaces) == {"other"}
    assert run_module({"hosts": HOSTS, "state": "absent"})["changed"] is False


def test_a_failing_ip_command_fails_with_its_error(ip):
    ip.fail_on = "netns add node1"
    result = fail_module({"hosts": HOSTS})
    assert result["msg"] == "ip netns add node1 failed: RTNETLINK answers: Operation not permitted"
    assert result["actions"][-1] == "ip netns add node1"


def test_namespace_names_longer_than_ten_characters_are_refused(ip):
    result = fail_module({"hosts": [{"name": "averylongname", "address": "10.77.0.9"}]})
    assert "longer than 10 characters" in result["msg"]
    assert ip.changes == []
