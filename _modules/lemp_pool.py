"""
The web tier's scaling pool as the load balancers and the monitor see it.

Pure functions over the derived topology (pillar ``topology``) and the list
of enrolled pool members (pillar ``scaling:enrolled``, written on the master
by the runner ``lemp_enrol``). No Salt state is read here:

* ``web_servers`` decides the HAProxy web backend: the serving web nodes
  (from the Salt mine) first, then one slot per pool name, always declared,
  enabled only when that name is enrolled. A slot is always there so that
  enrolment is a runtime ``set server ... state ready`` and a reload never
  adds, drops or renumbers a server;
* ``monitored_machines`` decides which machines Zabbix holds as hosts: the
  topology's machines plus the enrolled pool members, as web nodes.

Unit tests: tests/unit/test_enrol.py.
"""

__virtualname__ = "lemp_pool"
POOL_ROLE = "web_pool"  # lemp_topology.POOL_ROLE


class PoolError(ValueError):
    """The pool or the enrolled list is unusable; the message says why."""


def __virtual__():
    return __virtualname__


def pool(topology):
    """The pool entries ({name, address, ...}) in topology order; [] when the
    topology declares no scaling pool."""
    return list((((topology or {}).get("scaling") or {}).get("web") or {}).get("pool") or [])


def pool_names(topology):
    return [entry["name"] for entry in pool(topology)]


def enrolled_members(topology, enrolled):
    """The pool entries whose name is enrolled, in pool order. A name in
    ``enrolled`` that the pool does not hold (a pool shrunk in
    pillar/topology.yaml) is left out: only the pool may serve."""
    wanted = set(enrolled or [])
    return [entry for entry in pool(topology) if entry["name"] in wanted]


def web_servers(topology, mined, enrolled):
    """The HAProxy web backend, as data for haproxy.cfg.j2.

    ``mined`` is ``mine.get`` of the web nodes' address function
    ({name: address or [addresses]}), ``enrolled`` the enrolled pool names.
    Returns ``{"serving": [{name, address}], "missing": [names],
    "slots": [{name, address, enabled}]}``:

    * ``serving``: the topology's web nodes that published an address, in
      topology order; ``missing``: those that did not (named in the config);
    * ``slots``: every pool name with its topology address, ``enabled`` iff
      enrolled.

    Raises PoolError when no web node published an address: an empty
    backend would take the site down.
    """
    names = [m["name"] for m in (((topology or {}).get("roles") or {}).get("web") or {}).get("members") or []]
    if not names:
        raise PoolError("haproxy: the topology has no machine with role web: refusing to write an empty backend")
    serving, missing = [], []
    for name in names:
        addrs = (mined or {}).get(name) or []
        if isinstance(addrs, str):
            addrs = [addrs]
        if addrs:
            serving.append({"name": name, "address": addrs[0]})
        else:
            missing.append(name)
    if not serving:
        raise PoolError(f"haproxy: the Salt mine has no address for any web node ({', '.join(names)}): apply the "
                        "web tier and run mine.update on it first; refusing to write an empty backend")
    wanted = set(enrolled or [])
    slots = [{"name": e["name"], "address": e["address"], "enabled": e["name"] in wanted} for e in pool(topology)]
    return {"serving": serving, "missing": missing, "slots": slots}


def monitored_machines(topology, enrolled):
    """{name: {address, roles}} of every machine Zabbix should hold as a
    host: the topology's machines, and each enrolled pool member with its
    role (web_pool: the web tier's nginx and PHP-FPM templates and macros).
    A pool name that is not enrolled has no host: its VM does not exist."""
    out = {name: {"address": m.get("address"), "roles": list(m.get("roles") or [])}
           for name, m in ((topology or {}).get("machines") or {}).items()}
    for entry in enrolled_members(topology, enrolled):
        out[entry["name"]] = {"address": entry["address"], "roles": list(entry.get("roles") or [POOL_ROLE])}
    return out


# -- Salt execution-module functions ---------------------------------------


def _pillar(key, default=None):
    return __salt__["pillar.get"](key, default, unmask=True)  # noqa: F821  (injected by the loader)


def backend(mine_function="web_address"):
    """The web backend for this load balancer's haproxy.cfg (web_servers)
    from its pillar and the mine; raise naming the fix when it would be empty.

    CLI Example::

        salt lb1 lemp_pool.backend
    """
    from salt.exceptions import CommandExecutionError  # pylint: disable=import-outside-toplevel

    topology = _pillar("topology", {})
    names = [m["name"] for m in ((topology.get("roles") or {}).get("web") or {}).get("members") or []]
    mined = __salt__["mine.get"](",".join(names), mine_function, tgt_type="list") if names else {}  # noqa: F821
    try:
        return web_servers(topology, mined, _pillar("scaling:enrolled", []))
    except PoolError as exc:
        raise CommandExecutionError(str(exc))


def machines():
    """The machines Zabbix holds as hosts (monitored_machines), from pillar.

    CLI Example::

        salt mon1 lemp_pool.machines
    """
    return monitored_machines(_pillar("topology", {}), _pillar("scaling:enrolled", []))
