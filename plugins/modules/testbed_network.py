#!/usr/bin/python
# Copyright: hpcansible contributors
# Apache License 2.0 (see LICENSE)

DOCUMENTATION = r"""
---
module: testbed_network
short_description: Bridge and one network namespace per testbed host
description:
  - Creates (or removes) a Linux bridge and, for each host, a network namespace joined to the
    bridge by a veth pair, with its own address. This is how the hpcansible testbed gives every
    compute node and the login node its own address and name on one machine.
  - Idempotent, and tolerant of leftovers of an earlier testbed whose processes are gone
    (an existing namespace without its interface, a bridge without its address).
  - Only touches the bridge it is given, namespaces it is given and veth devices named
    C(hpcv-<namespace>).
version_added: 0.1.0
author: hpcansible contributors
options:
  bridge:
    description: Name of the bridge in the root namespace.
    type: str
    default: hpcbr0
  bridge_address:
    description: Address with prefix length of the bridge, also the default gateway of every namespace.
    type: str
    default: 10.77.0.1/24
  hosts:
    description: Namespaces to create, each with C(name) and C(address) (without prefix length).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Namespace name, also the veth suffix (at most 10 characters).
        type: str
        required: true
      address:
        description: IPv4 address of the namespace's C(eth0).
        type: str
        required: true
  state:
    description: C(present) creates what is missing; C(absent) removes the namespaces, their veths and the bridge.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
requirements:
  - iproute2
"""

EXAMPLES = r"""
- name: Bridge plus node1..node2 and login
  hpcansible.hpc.testbed_network:
    bridge: hpcbr0
    bridge_address: 10.77.0.1/24
    hosts:
      - {name: login, address: 10.77.0.2}
      - {name: node1, address: 10.77.0.11}
      - {name: node2, address: 10.77.0.12}

- name: Remove it all
  hpcansible.hpc.testbed_network:
    hosts: [{name: node1, address: 10.77.0.11}]
    state: absent
"""

RETURN = r"""
actions:
  description: The ip(8) commands that were run (or would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["ip netns add node1", "ip link add hpcv-node1 type veth peer name eth0 netns node1"]
"""

from ansible.module_utils.basic import AnsibleModule


class Network:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.actions: list[str] = []

    def probe(self, *args: str) -> bool:
        rc, _, _ = self.module.run_command(["ip", *args])
        return rc == 0

    def output(self, *args: str) -> str:
        rc, out, _ = self.module.run_command(["ip", *args])
        return out if rc == 0 else ""

    def change(self, *args: str) -> None:
        self.actions.append(" ".join(("ip", *args)))
        if self.module.check_mode:
            return
        rc, _, err = self.module.run_command(["ip", *args])
        if rc != 0:
            self.module.fail_json(
                msg=f"ip {' '.join(args)} failed: {err.strip()}", actions=self.actions
            )

    def is_up(self, device: str, namespace: str = "") -> bool:
        """True when the administrative UP flag is set (`<...,UP,...>` in `ip link show`)."""
        where = ("-n", namespace) if namespace else ()
        flags = self.output(*where, "link", "show", device).partition("<")[2].partition(">")[0]
        return "UP" in flags.split(",")

    def namespaces(self) -> set[str]:
        return {
            line.split()[0] for line in self.output("netns", "list").splitlines() if line.strip()
        }

    def ensure_bridge(self, bridge: str, address: str) -> None:
        if not self.probe("link", "show", bridge):
            self.change("link", "add", bridge, "type", "bridge")
        if f" {address} " not in self.output("-o", "addr", "show", "dev", bridge) + " ":
            self.change("addr", "replace", address, "dev", bridge)
        if not self.is_up(bridge):
            self.change("link", "set", bridge, "up")

    def ensure_namespace(
        self, name: str, address: str, bridge: str, gateway: str, prefix: str
    ) -> None:
        veth = f"hpcv-{name}"
        # A namespace file left by an earlier testbed may no longer be a usable namespace.
        if name in self.namespaces() and not self.probe("-n", name, "link", "show", "lo"):
            self.change("netns", "delete", name)
        if name not in self.namespaces():
            self.change("netns", "add", name)
        if not self.probe("-n", name, "link", "show", "eth0") or not self.probe(
            "link", "show", veth
        ):
            if self.probe("link", "show", veth):
                self.change("link", "delete", veth)
            if self.probe("-n", name, "link", "show", "eth0"):
                self.change("-n", name, "link", "delete", "eth0")
            self.change("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        if f"master {bridge}" not in self.output("link", "show", veth):
            self.change("link", "set", veth, "master", bridge)
        if not self.is_up(veth):
            self.change("link", "set", veth, "up")
        cidr = f"{address}/{prefix}"
        if f" {cidr} " not in self.output("-n", name, "-o", "addr", "show", "dev", "eth0") + " ":
            self.change("-n", name, "addr", "replace", cidr, "dev", "eth0")
        for device in ("lo", "eth0"):
            if not self.is_up(device, namespace=name):
                self.change("-n", name, "link", "set", device, "up")
        if f"default via {gateway}" not in self.output("-n", name, "route", "show", "default"):
            self.change("-n", name, "route", "replace", "default", "via", gateway)

    def remove(self, names: list[str], bridge: str) -> None:
        present = self.namespaces()
        for name in names:
            if self.probe("link", "show", f"hpcv-{name}"):
                self.change("link", "delete", f"hpcv-{name}")
            if name in present:
                self.change("netns", "delete", name)
        if self.probe("link", "show", bridge):
            self.change("link", "delete", bridge)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "bridge": {"type": "str", "default": "hpcbr0"},
            "bridge_address": {"type": "str", "default": "10.77.0.1/24"},
            "hosts": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "address": {"type": "str", "required": True},
                },
            },
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        supports_check_mode=True,
    )
    params = module.params
    for host in params["hosts"]:
        if len(host["name"]) > 10:
            module.fail_json(msg=f"namespace name {host['name']!r} is longer than 10 characters")
    network = Network(module)
    if params["state"] == "absent":
        network.remove([host["name"] for host in params["hosts"]], params["bridge"])
    else:
        gateway, _, prefix = params["bridge_address"].partition("/")
        network.ensure_bridge(params["bridge"], params["bridge_address"])
        for host in params["hosts"]:
            network.ensure_namespace(
                host["name"], host["address"], params["bridge"], gateway, prefix or "24"
            )
    module.exit_json(changed=bool(network.actions), actions=network.actions)


if __name__ == "__main__":
    main()
