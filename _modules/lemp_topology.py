"""
Validate and query the platform topology (pillar/topology.yaml).

One validator serves every reader of the topology:

* the Salt master, as the execution module ``lemp_topology`` (``orch.site``
  calls ``lemp_topology.check`` before it touches any machine);
* the lab script and the Vagrantfile, through the command line::

      python3 _modules/lemp_topology.py json pillar/topology.yaml

* the tests, by importing this file.

Every error names the entry at fault and what is wrong with it, so that a bad
topology is refused before anything is applied.
"""

import ipaddress
import json
import re
import sys

__virtualname__ = "lemp_topology"

ROLES = ("master", "lb", "web", "db", "arbitrator", "backup", "monitor")
HOSTNAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


class TopologyError(ValueError):
    """The topology is unusable; the message says which entry and why."""


def __virtual__():
    return __virtualname__


def _address(value, where):
    try:
        return ipaddress.IPv4Address(str(value))
    except ValueError:
        raise TopologyError(f"topology: {where} {value!r} is not an IPv4 address")


def mac_for(address):
    """A fixed, locally administered MAC derived from the address, so that a
    rebuilt machine keeps its MAC and neighbours' ARP caches stay right."""
    octets = str(address).split(".")
    return "02:4c:48:%02x:%02x:%02x" % tuple(int(o) for o in octets[1:])


def validate(data):
    """Return the topology with derived fields (mac) added, or raise
    TopologyError naming the entry at fault."""
    if not isinstance(data, dict):
        raise TopologyError("topology: expected a mapping with 'network' and 'machines'")
    network = data.get("network")
    machines = data.get("machines")
    if not isinstance(network, dict):
        raise TopologyError("topology: 'network' is missing or not a mapping")
    if not isinstance(machines, dict) or not machines:
        raise TopologyError("topology: 'machines' is missing or empty")

    for key in ("subnet", "host", "bridge", "vip"):
        if key not in network:
            raise TopologyError(f"topology: network.{key} is missing")
    try:
        subnet = ipaddress.IPv4Network(str(network["subnet"]), strict=True)
    except ValueError as exc:
        raise TopologyError(f"topology: network.subnet {network['subnet']!r} is not a network: {exc}")

    taken = {}

    def claim(addr, owner):
        if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
            raise TopologyError(f"topology: {owner} address {addr} is outside {subnet}")
        if addr in taken:
            raise TopologyError(f"topology: {owner} address {addr} is already used by {taken[addr]}")
        taken[addr] = owner

    claim(_address(network["host"], "network.host"), "network.host")
    claim(_address(network["vip"], "network.vip"), "network.vip")
    if not re.match(r"^[a-z][a-z0-9]{0,14}$", str(network["bridge"])):
        raise TopologyError(
            f"topology: network.bridge {network['bridge']!r} must be 1-15 lower-case letters or digits"
        )

    result = {"network": dict(network), "machines": {}}
    result["network"]["subnet"] = str(subnet)
    result["network"]["prefixlen"] = subnet.prefixlen
    for name, machine in machines.items():
        if not HOSTNAME_RE.match(str(name)):
            raise TopologyError(f"topology: machine name {name!r} is not a valid host name")
        if not isinstance(machine, dict):
            raise TopologyError(f"topology: {name} must be a mapping with address and roles")
        if "address" not in machine:
            raise TopologyError(f"topology: {name} has no address")
        addr = _address(machine["address"], f"{name} address")
        claim(addr, name)
        roles = machine.get("roles")
        if not isinstance(roles, list) or not roles:
            raise TopologyError(f"topology: {name} needs a non-empty list of roles")
        for role in roles:
            if role not in ROLES:
                raise TopologyError(
                    f"topology: {name} has unknown role {role!r}; known roles: {', '.join(ROLES)}"
                )
        entry = dict(machine)
        entry["address"] = str(addr)
        entry["mac"] = mac_for(addr)
        result["machines"][name] = entry

    masters = [n for n, m in result["machines"].items() if "master" in m["roles"]]
    if len(masters) != 1:
        raise TopologyError(
            f"topology: exactly one machine must have role 'master', found {len(masters)}"
            + (f" ({', '.join(masters)})" if masters else "")
        )
    result["master"] = masters[0]
    return result


def with_role(data, role):
    """Names of the machines holding ``role``, in topology order."""
    return [name for name, m in data["machines"].items() if role in m["roles"]]


def load(path):
    import yaml  # only the command line and the tests read the file themselves

    with open(path, encoding="utf-8") as handle:
        try:
            data = yaml.safe_load(handle)
        except yaml.YAMLError as exc:
            raise TopologyError(f"topology: {path} is not valid YAML: {exc}")
    return validate(data)


# -- Salt execution-module functions ---------------------------------------


def _pillar_topology():
    # Salt 3008 masks pillar values that pass through pillar.get's output;
    # unmask=True hands us the real values (they are not secret anyway).
    return __salt__["pillar.get"]("topology", {}, unmask=True)  # noqa: F821  (injected by the loader)


def check():
    """Validate the topology in pillar; raise with the reason when it is bad.

    CLI Example::

        salt-call lemp_topology.check
    """
    from salt.exceptions import CommandExecutionError  # pylint: disable=import-outside-toplevel

    data = _pillar_topology()
    try:
        validate(data)
    except TopologyError as exc:
        raise CommandExecutionError(str(exc))
    return True


def machines(role=None):
    """Names of the machines in the topology, optionally those with a role.

    CLI Example::

        salt-call lemp_topology.machines web
    """
    data = validate(_pillar_topology())
    return with_role(data, role) if role else list(data["machines"])


def main(argv):
    usage = "usage: lemp_topology.py json|check TOPOLOGY.yaml"
    if len(argv) != 3 or argv[1] not in ("json", "check"):
        print(usage, file=sys.stderr)
        return 2
    try:
        data = load(argv[2])
    except (TopologyError, OSError) as exc:
        print(exc, file=sys.stderr)
        return 1
    if argv[1] == "json":
        json.dump(data, sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
