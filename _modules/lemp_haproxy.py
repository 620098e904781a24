"""
HAProxy's connection limits, sized from what stands behind each listener.

Without limits a flood of connections that never log in uses up MariaDB's
``max_connections`` or Redis's client slots, and then every page that
needs them fails on every web node (and every ``/healthz/deep``; issue #13). With them, the excess waits in HAProxy's
queue (bounded by ``timeout queue``) or is refused at the LB, and the
backends keep room for their own administration.

``limits`` takes pillar ``haproxy:lookup:limits`` (pillar/lb.sls fills the
backends' figures from the web and database pillars) and returns the
``maxconn`` of each listener and server (salt/haproxy/files/haproxy.cfg.j2):

* a web server: PHP-FPM's ``pm.max_children`` times ``requests_per_child``
  (nginx answers static files beside PHP's workers);
* the database endpoint, and each db server: ``max_connections`` less
  ``db_reserved`` (a node's own users: the health check, backups, the
  monitoring agent, an administrator);
* the Redis endpoint and each Redis server: ``redis_maxconn``, under Redis's
  ``maxclients`` less ``redis_reserved`` (replication, Sentinels);
* the public frontends: ``public_maxconn`` each;
* the process: the sum of them all, plus the stats listeners.

``peers`` lists the load balancers of the ``peers`` section (the stick
tables of the database and Redis endpoints, shared so that an LB failover
never moves the writer).

``reload_confirmed`` says whether a reload (or restart) really loaded the
new configuration: lemp_service.config_loaded asks it before recording what
HAProxy runs (salt/haproxy/service.sls).
"""

import re
import time

__virtualname__ = "lemp_haproxy"

KEYS = ("php_max_children", "requests_per_child", "db_max_connections", "db_reserved", "redis_maxclients",
        "redis_reserved", "redis_maxconn", "public_maxconn", "stats_maxconn")


class LimitsError(ValueError):
    """A limit is missing or unusable; the message names the pillar key."""


def __virtual__():
    return __virtualname__


def _positive(settings, key):
    value = settings.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LimitsError(f"haproxy:lookup:limits:{key} must be a positive integer, not {value!r}")
    return value


def limits(settings):
    """{web_server, db, redis, public, stats, global}: the maxconn values.
    Raises LimitsError naming the key when a figure is missing, or when the
    reserves leave a backend no room."""
    if not isinstance(settings, dict):
        raise LimitsError("haproxy:lookup:limits must be a mapping (salt/haproxy/defaults.yaml lists its keys)")
    unknown = sorted(set(settings) - set(KEYS))
    if unknown:
        raise LimitsError(f"haproxy:lookup:limits has unknown key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
    got = {key: _positive(settings, key) for key in KEYS}
    db = got["db_max_connections"] - got["db_reserved"]
    if db < 1:
        raise LimitsError(f"haproxy:lookup:limits:db_reserved ({got['db_reserved']}) leaves no connection of "
                          f"db_max_connections ({got['db_max_connections']}, galera:lookup:max_connections) "
                          "for the app: lower it or raise max_connections")
    room = got["redis_maxclients"] - got["redis_reserved"]
    if got["redis_maxconn"] > room:
        raise LimitsError(f"haproxy:lookup:limits:redis_maxconn ({got['redis_maxconn']}) is above Redis's "
                          f"maxclients less redis_reserved ({room}): lower it")
    web_server = got["php_max_children"] * got["requests_per_child"]
    public = got["public_maxconn"]
    stats = got["stats_maxconn"]
    return {"web_server": web_server, "db": db, "redis": got["redis_maxconn"], "public": public, "stats": stats,
            # http and https frontends, the two TCP endpoints, two stats
            # listeners. Not redis-hold: it holds connections only while no
            # Redis master is UP, when redis-sessions serves none; counting
            # it too raised HAProxy's file descriptors above the lab
            # containers' limit (19999), and the reload failed.
            "global": 2 * public + db + got["redis_maxconn"] + 2 * stats}


def checked(settings):
    """``limits`` for a state: salt/haproxy/config.sls passes
    haproxy:lookup:limits merged over salt/haproxy/defaults.yaml; a bad
    value stops the render with the key at fault, before any file is written.

    CLI Example::

        salt-call lemp_haproxy.checked '{...}'
    """
    from salt.exceptions import CommandExecutionError  # pylint: disable=import-outside-toplevel

    try:
        return limits(settings)
    except LimitsError as exc:
        raise CommandExecutionError(str(exc))


# -- the peers section: stick tables shared by the load balancers ----------


PEER_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


def peers(members, minion_id, port, name="lbs"):
    """The ``peers`` section of haproxy.cfg on load balancer ``minion_id``.

    ``members`` is ``topology.roles.lb.members`` ([{name, address}], the
    derived topology), ``port`` pillar ``haproxy:lookup:peers:port`` (the
    entry ``haproxy-peers`` of pillar/ports.yaml opens it between the LBs).
    Returns ``{"name", "local", "peers": [{name, address, port}]}``: every
    LB, this one included. The local peer is named after the minion id and
    the template sets ``localpeer`` to it, so the section does not depend on
    the machine's hostname. Listing itself also lets a reload hand the
    tables from the old process to the new one (without it a reload empties
    them, and the database writer could move).

    Raises LimitsError (the pillar key or the topology entry named) when
    ``minion_id`` is not a load balancer or a value is unusable.
    """
    if not isinstance(name, str) or not re.match(PEER_NAME_RE, name):
        raise LimitsError(f"haproxy:lookup:peers:name must be a word (letters, digits, - _ .), not {name!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise LimitsError(f"haproxy:lookup:peers:port must be a TCP port (1-65535), not {port!r}")
    entries = list(members or [])
    names = [m.get("name") for m in entries if isinstance(m, dict)]
    if minion_id not in names:
        raise LimitsError(f"haproxy: {minion_id} is not a member of topology.roles.lb "
                          f"({', '.join(map(str, names)) or 'none'}): the peers section lists the load balancers")
    out = []
    for member in entries:
        if not member.get("address") or not re.match(PEER_NAME_RE, str(member.get("name"))):
            raise LimitsError(f"haproxy: topology.roles.lb member {member!r} needs a name and an address")
        out.append({"name": member["name"], "address": member["address"], "port": port})
    return {"name": name, "local": minion_id, "peers": out}


def checked_peers(members, minion_id, port, name="lbs"):
    """``peers`` for a state (salt/haproxy/config.sls): a bad value stops
    the render with the key at fault.

    CLI Example::

        salt lb1 lemp_haproxy.checked_peers '[{"name": "lb1", "address": "10.77.0.11"}]' lb1 10000
    """
    from salt.exceptions import CommandExecutionError  # pylint: disable=import-outside-toplevel

    try:
        return peers(members, minion_id, port, name)
    except LimitsError as exc:
        raise CommandExecutionError(str(exc))


# -- did the reload load the new configuration? -----------------------------
#
# Debian's unit runs HAProxy in master-worker mode (-Ws); ``systemctl reload``
# runs ``haproxy -c`` and sends SIGUSR2 to the master, then returns at once.
# The master then re-reads the files on its own. When that fails at load time
# (not at check time: e.g. "Cannot raise FD limit to 20970, limit is 19999"),
# it logs "Loading failure!" and keeps the old worker, with the old
# configuration, serving; systemctl has already said the reload went well.
# Its verdict is in the unit's journal (src/haproxy.c, 2.6 to 3.0):
# ha_notice("Loading success.") or ha_warning("Loading failure!"), printed
# on stderr as "[NOTICE]   (pid) : Loading success.". A fresh start logs
# "Loading success." too.

LOADED = "Loading success."
FAILED = "Loading failure!"
CONTEXT_LINES = 10  # the master's lines shown before "Loading failure!"


def reload_verdict(journal, since):
    """The master's first verdict in ``journal`` (``journalctl -o
    short-unix``: "<epoch.usec> <host> <ident>[pid]: <message>" lines) at or
    after ``since`` (a UNIX time): ``None`` (no verdict yet), or
    ``{"loaded": True|False, "lines": [messages]}``; for a failure the
    messages logged since ``since`` up to it (the reason: an ALERT line)."""
    seen = []
    for line in journal.splitlines():
        stamp, _, rest = line.partition(" ")
        try:
            when = float(stamp)
        except ValueError:
            continue  # "-- No entries --", "-- Boot ... --"
        if when < since:
            continue
        # "<host> <ident>[pid]: <message>"; the message itself may hold ": "
        message = rest.split(": ", 1)[1] if ": " in rest else rest
        seen.append(message)
        if message.endswith(LOADED):
            return {"loaded": True, "lines": [message]}
        if message.endswith(FAILED):
            return {"loaded": False, "lines": seen[-CONTEXT_LINES:]}
    return None


def _journal(unit, since):
    """The unit's journal since ``since`` (whole seconds down; reload_verdict
    filters to the microsecond)."""
    ret = __salt__["cmd.run_all"](  # noqa: F821
        ["journalctl", "-u", unit, "--since", f"@{int(since)}", "-o", "short-unix", "--no-pager", "-q"],
        python_shell=False, ignore_retcode=True)
    if ret["retcode"] != 0:
        from salt.exceptions import CommandExecutionError  # pylint: disable=import-outside-toplevel

        raise CommandExecutionError(f"lemp_haproxy: journalctl -u {unit} failed: {ret.get('stderr', '').strip()}")
    return ret["stdout"]


def reload_confirmed(since, timeout=15, unit="haproxy", interval=0.5):
    """Did HAProxy load its configuration in a reload or restart that began
    at ``since`` (a UNIX time)? Waits up to ``timeout`` seconds for the
    master's verdict in the journal of ``unit``. Returns ``{"loaded": bool,
    "why": str}``; no verdict within ``timeout`` is not loaded.

    CLI Example (the last reload within the past minute)::

        salt lb1 lemp_haproxy.reload_confirmed since=$(date -d '1 min ago' +%s) timeout=0
    """
    since = float(since)
    deadline = time.monotonic() + float(timeout)
    while True:
        verdict = reload_verdict(_journal(unit, since), since)
        if verdict is not None:
            break
        if time.monotonic() >= deadline:
            return {"loaded": False,
                    "why": (f"{unit}'s master logged neither \"{LOADED}\" nor \"{FAILED}\" within {timeout} s "
                            f"(journalctl -u {unit} --since @{int(since)}), so it is not known to run the new "
                            "configuration")}
        time.sleep(interval)
    if verdict["loaded"]:
        return {"loaded": True, "why": f"{unit}'s master logged \"{LOADED}\""}
    logged = "\n".join(verdict["lines"])
    return {"loaded": False, "why": f"{unit}'s master logged:\n{logged}"}
