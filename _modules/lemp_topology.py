"""
Validate the platform topology and derive what every reader needs from it.

Two files describe the platform:

* ``pillar/topology.yaml``: the machines, their addresses and roles, the
  network, the web tier's scaling pool;
* ``pillar/roles.yaml``: every role, declared once, with the states it
  applies, the pillar files and secrets it receives, and its tier in
  ``orch.site``.

``derive`` validates both and returns the *derived topology*: the pillar key
``topology`` that formulas, orchestrations, runners, the lab and the tests
read. Nobody else walks the machines to find a role; they read
``topology.roles.<role>.members``.

One validator serves every reader:

* the pillar (``pillar/topology.sls`` and ``pillar/top.sls`` import this file);
* the Salt minions, as the execution module ``lemp_topology`` (``orch.site``
  calls ``lemp_topology.check`` before it touches any machine);
* the lab script and the Vagrantfile, through the command line::

      python3 _modules/lemp_topology.py json pillar/topology.yaml

* the tests and the bench, by importing this file.

Every error names the entry at fault and what is wrong with it, so that a bad
topology is refused before anything is applied.
"""

import ipaddress
import json
import os
import re
import sys

__virtualname__ = "lemp_topology"

HOSTNAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
# The role declarations live beside the topology file in the repo.
ROLES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "pillar", "roles.yaml")
ROLE_KEYS = ("states", "pillars", "secrets", "tier")
# orch.site's tiers, in the order it applies them (orch/site.sls).
TIERS = ("master", "database", "web", "load-balancers", "monitoring")
# Keys of the derived topology that validate() recomputes, so that a derived
# topology (the pillar) validates again as it is.
DERIVED_KEYS = ("master", "master_address", "roles", "garbd", "tiers", "hosts", "pool_machines")
# The role of the scaling pool's machines (pillar/roles.yaml): what a pool VM
# applies and receives once orch.enrol highstates it.
POOL_ROLE = "web_pool"


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


def server_id(address):
    """The node's IPv4 address as a 32-bit number: unique per machine,
    stable across rebuilds, never 0 (MariaDB's server_id)."""
    return int(ipaddress.IPv4Address(str(address)))


def mysql_hosts(subnet):
    """MariaDB's account host pattern for the platform's subnet: a wildcard
    on whole octets ('10.77.0.%' for a /24), else address/netmask."""
    subnet = ipaddress.IPv4Network(str(subnet))
    octets = str(subnet.network_address).split(".")
    if subnet.prefixlen in (8, 16, 24):
        return ".".join(octets[: subnet.prefixlen // 8]) + ".%"
    return f"{subnet.network_address}/{subnet.netmask}"


def check_roles(roles):
    """Validate the role declarations (pillar/roles.yaml); return them with
    every key present."""
    if not isinstance(roles, dict) or not roles:
        raise TopologyError("roles: expected a mapping of role name to its states, pillars, secrets and tier")
    result = {}
    for role, decl in roles.items():
        decl = decl or {}
        if not isinstance(decl, dict):
            raise TopologyError(f"roles: {role} must be a mapping with states, pillars, secrets, tier")
        unknown = sorted(set(decl) - set(ROLE_KEYS))
        if unknown:
            raise TopologyError(f"roles: {role} has unknown key(s) {', '.join(unknown)}; known: {', '.join(ROLE_KEYS)}")
        entry = {}
        for key in ("states", "pillars", "secrets"):
            value = decl.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise TopologyError(f"roles: {role}.{key} must be a list of names")
            entry[key] = list(value)
        tier = decl.get("tier")
        if tier not in TIERS:
            raise TopologyError(f"roles: {role}.tier {tier!r} is not a tier of orch.site; "
                                f"one of: {', '.join(TIERS)}")
        entry["tier"] = tier
        result[str(role)] = entry
    if "master" not in result:
        raise TopologyError("roles: the role 'master' must be declared")
    return result


def _check_pool(scaling, claim, machines):
    """The web tier's scaling pool: names and addresses new web nodes may
    take, and how many web nodes the tier keeps (min) and allows (max)."""
    if scaling is None:
        return {}
    if not isinstance(scaling, dict):
        raise TopologyError("topology: scaling must be a mapping of role to {min, max, pool}")
    result = {}
    for role, spec in scaling.items():
        if role != "web":
            raise TopologyError(f"topology: scaling.{role}: only the web tier scales")
        if not isinstance(spec, dict):
            raise TopologyError("topology: scaling.web must be a mapping with min, max and pool")
        lo, hi = spec.get("min"), spec.get("max")
        if not isinstance(lo, int) or not isinstance(hi, int) or lo < 1 or lo > hi:
            raise TopologyError(f"topology: scaling.web needs whole numbers 1 <= min <= max (min {lo!r}, max {hi!r})")
        pool = spec.get("pool") or {}
        if isinstance(pool, list) and all(isinstance(e, dict) and "name" in e for e in pool):
            pool = {e["name"]: e.get("address") for e in pool}  # a derived topology, validated again
        if not isinstance(pool, dict):
            raise TopologyError("topology: scaling.web.pool must map machine names to addresses")
        entries = []
        for name, addr in pool.items():
            if not HOSTNAME_RE.match(str(name)):
                raise TopologyError(f"topology: scaling pool name {name!r} is not a valid host name")
            if name in machines:
                raise TopologyError(f"topology: scaling pool name {name} is already a machine of the topology")
            addr = _address(addr, f"scaling pool {name} address")
            claim(addr, name)
            entries.append({"name": name, "address": str(addr), "mac": mac_for(addr), "server_id": server_id(addr)})
        serving = sum(1 for m in machines.values() if "web" in m["roles"])
        if lo > serving:
            raise TopologyError(f"topology: scaling.web.min {lo} is more than the {serving} web machines")
        if hi > serving + len(entries):
            raise TopologyError(f"topology: scaling.web.max {hi} is more than the {serving} web machines plus "
                                f"the {len(entries)} names of the pool")
        result[role] = {"min": lo, "max": hi, "pool": entries}
    return result


def validate(data, roles=None):
    """Return the derived topology, or raise TopologyError naming the entry
    at fault. ``roles`` is the role declaration (pillar/roles.yaml); by
    default the one beside this file, or the one a derived topology carries."""
    if not isinstance(data, dict):
        raise TopologyError("topology: expected a mapping with 'network' and 'machines'")
    if roles is None:
        roles = _declared_roles(data)
    roles = check_roles(roles)
    network = data.get("network")
    machines = data.get("machines")
    if not isinstance(network, dict):
        raise TopologyError("topology: 'network' is missing or not a mapping")
    if not isinstance(machines, dict) or not machines:
        raise TopologyError("topology: 'machines' is missing or empty")

    for key in ("subnet", "host", "bridge", "vip", "internal_vip"):
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
    claim(_address(network["internal_vip"], "network.internal_vip"), "network.internal_vip")
    if not re.match(r"^[a-z][a-z0-9]{0,14}$", str(network["bridge"])):
        raise TopologyError(
            f"topology: network.bridge {network['bridge']!r} must be 1-15 lower-case letters or digits"
        )

    result = {"network": dict(network), "machines": {}}
    result["network"]["subnet"] = str(subnet)
    result["network"]["prefixlen"] = subnet.prefixlen
    result["network"]["netmask"] = str(subnet.netmask)
    result["network"]["mysql_hosts"] = mysql_hosts(subnet)
    for name, machine in machines.items():
        if not HOSTNAME_RE.match(str(name)):
            raise TopologyError(f"topology: machine name {name!r} is not a valid host name")
        if not isinstance(machine, dict):
            raise TopologyError(f"topology: {name} must be a mapping with address and roles")
        if "address" not in machine:
            raise TopologyError(f"topology: {name} has no address")
        addr = _address(machine["address"], f"{name} address")
        claim(addr, name)
        machine_roles = machine.get("roles")
        if not isinstance(machine_roles, list) or not machine_roles:
            raise TopologyError(f"topology: {name} needs a non-empty list of roles")
        for role in machine_roles:
            if role not in roles:
                raise TopologyError(
                    f"topology: {name} has unknown role {role!r}; known roles: {', '.join(roles)}"
                )
        entry = dict(machine)
        entry["address"] = str(addr)
        entry["mac"] = mac_for(addr)
        entry["server_id"] = server_id(addr)
        # What this machine applies and receives, in role order, once each.
        entry["states"] = _union(["common"], *(roles[r]["states"] for r in machine_roles))
        entry["pillars"] = _union(*(roles[r]["pillars"] for r in machine_roles))
        entry["secrets"] = _union(*(roles[r]["secrets"] for r in machine_roles))
        result["machines"][name] = entry
    result["scaling"] = _check_pool(data.get("scaling"), claim, result["machines"])
    result["pool_machines"] = _pool_machines(result["scaling"], roles)
    # Every machine by name, for what lists them all (/etc/hosts).
    result["hosts"] = [{"name": n, "address": m["address"]} for n, m in result["machines"].items()]

    masters = [n for n, m in result["machines"].items() if "master" in m["roles"]]
    if len(masters) != 1:
        raise TopologyError(
            f"topology: exactly one machine must have role 'master', found {len(masters)}"
            + (f" ({', '.join(masters)})" if masters else "")
        )
    result["master"] = masters[0]
    result["master_address"] = result["machines"][masters[0]]["address"]
    result["roles"] = {
        role: dict(decl, members=[{"name": n, "address": result["machines"][n]["address"]}
                                  for n in with_role(result, role)])
        for role, decl in roles.items()
    }
    # garbd only with an even number of data nodes: it turns 2 voters into 3
    # so that losing one keeps a majority; with an odd number it would make
    # the vote count even and a split brain more likely.
    dbs = result["roles"].get("db", {}).get("members", [])
    arbitrators = result["roles"].get("arbitrator", {}).get("members", [])
    result["garbd"] = list(arbitrators) if dbs and len(dbs) % 2 == 0 else []
    # orch.site's tiers, in the order roles.yaml declares them first.
    tiers = {}
    for role, decl in roles.items():
        tiers.setdefault(decl["tier"], [])
        for name in with_role(result, role):
            if name not in tiers[decl["tier"]]:
                tiers[decl["tier"]].append(name)
    result["tiers"] = tiers
    return result


def _pool_machines(scaling, roles):
    """{name: machine} of the scaling pool, shaped like ``machines`` (role
    POOL_ROLE), for what serves a machine by its id (salt/top.sls,
    pillar/top.sls, the lab's secrets): a pool VM is configured like any
    machine once it exists. Not in ``machines`` nor ``roles.*.members``:
    the tiers, clusters and backends list only the fixed machines."""
    entries = ((scaling or {}).get("web") or {}).get("pool") or []
    if not entries:
        return {}
    if POOL_ROLE not in roles:
        raise TopologyError(f"roles: the scaling pool needs the role {POOL_ROLE} declared in pillar/roles.yaml "
                            "(the states, pillars and secrets of a pool VM)")
    decl = roles[POOL_ROLE]
    return {e["name"]: dict(e, roles=[POOL_ROLE], states=_union(["common"], decl["states"]),
                            pillars=list(decl["pillars"]), secrets=list(decl["secrets"]))
            for e in entries}


def _union(*lists):
    out = []
    for items in lists:
        out.extend(i for i in items if i not in out)
    return out


def _declared_roles(data):
    """The role declaration a derived topology carries, else the file."""
    carried = data.get("roles")
    if isinstance(carried, dict) and carried and all(
        isinstance(v, dict) and "members" in v for v in carried.values()
    ):
        return {role: {k: v for k, v in decl.items() if k in ROLE_KEYS} for role, decl in carried.items()}
    if not os.path.exists(ROLES_FILE):
        raise TopologyError("topology: no role declarations: pillar `topology` is missing or was not derived "
                            "(see the pillar render errors: salt-call pillar.items)")
    return load_yaml(ROLES_FILE)


def with_role(data, role):
    """Names of the machines holding ``role``, in topology order."""
    return [name for name, m in data["machines"].items() if role in m["roles"]]


def applying(data, state):
    """{name, address} of the machines whose roles apply ``state`` (e.g.
    redis.sentinel), in topology order."""
    return [{"name": name, "address": m["address"]} for name, m in data["machines"].items()
            if state in m["states"]]


def load_yaml(path):
    import yaml  # only the command line, the pillar and the tests read files

    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        raise TopologyError(f"topology: {path} is not valid YAML: {exc}")


def load(path, roles_path=None):
    """The derived topology of a topology file, with the role declaration
    beside it (a topology elsewhere uses the repo's pillar/roles.yaml)."""
    if roles_path is None:
        beside = os.path.join(os.path.dirname(os.path.abspath(path)), "roles.yaml")
        roles_path = beside if os.path.exists(beside) else ROLES_FILE
    return validate(load_yaml(path), load_yaml(roles_path))


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


def machines_applying(state):
    """{name, address} of the machines in the topology that apply ``state``.

    CLI Example::

        salt-call lemp_topology.machines_applying redis.sentinel
    """
    return applying(validate(_pillar_topology()), state)


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
