"""
MariaDB Galera: node state, positions, and the safe bootstrap decision.

Used by the orchestrations (orch/galera/bootstrap.sls, orch/galera_recover.sls,
orch/galera_rolling_restart.sls) and by the thin states in _states/galera.py.

The one decision that can lose data -- which node may start a new cluster
(``galera_new_cluster``) -- is the pure function ``choose_bootstrap_node``:
it takes every data node's position and either names one node or refuses
with the reason.  It never guesses: a node whose state cannot be read, or
nodes that belong to different clusters, stop the recovery for a human.

SQL goes through the ``mariadb`` client on the local unix socket as root
(unix_socket authentication, the Debian default); statements are passed on
stdin, never on the command line, and passwords only as hashes.

CLI examples::

    salt db1 galera.status
    salt db1 galera.position
    salt db1 galera.wait_synced timeout=600
"""

import hashlib
import logging
import os
import re
import time

try:
    from salt.exceptions import CommandExecutionError
except ImportError:  # the unit tests import this file without salt installed

    class CommandExecutionError(Exception):
        pass


log = logging.getLogger(__name__)

__virtualname__ = "galera"

DATADIR = "/var/lib/mysql"
SERVICE = "mariadb"
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
SYNCED = 4  # wsrep_local_state: 1 joining, 2 donor, 3 joined, 4 synced
UUID_RE = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# "WSREP: Recovered position: <uuid>:<seqno>" (mariadbd --wsrep-recover) or
# "--wsrep_start_position=<uuid>:<seqno>" (Debian's galera_recovery); newer
# servers may append ",<gtid>".
RECOVERED_RE = re.compile(
    r"(?:Recovered position:\s*|--wsrep[-_]start[-_]position=)(" + UUID_RE + r"):(-?\d+)"
)
IDENT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_$-]{0,63}$")
HOST_RE = re.compile(r"^[A-Za-z0-9_.%:/-]{1,255}$")


class UnsafeBootstrap(ValueError):
    """No node can safely start the cluster; the message says why."""


def __virtual__():
    return __virtualname__


# -- pure functions (unit-tested) -------------------------------------------


def parse_grastate(text):
    """Parse the text of grastate.dat into {uuid, seqno, safe_to_bootstrap}.

    Raises ValueError when the file lacks a uuid or seqno or they are bad."""
    fields = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    uuid = fields.get("uuid", "")
    if not re.fullmatch(UUID_RE, uuid):
        raise ValueError(f"grastate.dat has no valid uuid (got {uuid!r})")
    try:
        seqno = int(fields.get("seqno", ""))
    except ValueError:
        raise ValueError(f"grastate.dat has no valid seqno (got {fields.get('seqno')!r})")
    safe = fields.get("safe_to_bootstrap", "0")
    return {
        "uuid": uuid.lower(),
        "seqno": seqno,
        "safe_to_bootstrap": 1 if safe == "1" else 0,
    }


def read_grastate(path):
    """Read and parse a grastate.dat file (raises OSError / ValueError)."""
    with open(path, encoding="utf-8") as handle:
        return parse_grastate(handle.read())


def parse_recovered_position(text):
    """(uuid, seqno) from the output of a wsrep recovery run, or None."""
    found = RECOVERED_RE.findall(text or "")
    if not found:
        return None
    uuid, seqno = found[-1]
    return uuid.lower(), int(seqno)


def parse_status(text):
    """Turn ``mariadb -N -B`` output of name<TAB>value rows into a dict with
    lower-case names."""
    values = {}
    for line in (text or "").splitlines():
        if "\t" in line:
            name, _, value = line.partition("\t")
            values[name.strip().lower()] = value.strip()
    return values


def has_cluster_data(position):
    """True when a position belongs to a node that has been part of a cluster."""
    return bool(position) and position.get("uuid") not in (None, "", ZERO_UUID)


def choose_bootstrap_node(positions):
    """Name the node that must bootstrap the cluster after an outage.

    ``positions`` maps node name -> position dict as returned by
    ``position()``: {uuid, seqno, safe_to_bootstrap} (seqno already recovered
    with --wsrep-recover when the node crashed), or a dict with an ``error``
    key, or anything else when the node could not be asked.

    Rules, in order:

    * every node must have answered with a readable position, else refuse:
      the missing node may hold the latest transactions;
    * nodes with no cluster data (zero uuid) are not candidates (they will
      get a full state transfer); if no node has data, refuse: that is a
      fresh deploy, not a recovery;
    * all nodes with data must share one cluster uuid, else refuse;
    * no candidate may have an unknown seqno (-1 after recovery);
    * exactly one node marked safe_to_bootstrap=1 wins, unless another node
      has a higher seqno (contradiction: refuse);
    * otherwise the highest seqno wins; ties go to the first name in sort
      order, so that every run picks the same node.
    """
    if not positions:
        raise UnsafeBootstrap("no node positions were given: cannot choose a bootstrap node")
    problems = []
    candidates = {}
    for name in sorted(positions):
        pos = positions[name]
        if not isinstance(pos, dict):
            problems.append(f"{name}: no usable answer ({pos!r})")
            continue
        if pos.get("error"):
            problems.append(f"{name}: {pos['error']}")
            continue
        if pos.get("running"):
            problems.append(f"{name}: mariadb is still running; stop it before choosing")
            continue
        uuid = pos.get("uuid")
        seqno = pos.get("seqno")
        if uuid is None or not isinstance(seqno, int) or isinstance(seqno, bool):
            problems.append(f"{name}: position incomplete (uuid={uuid!r}, seqno={seqno!r})")
            continue
        if not has_cluster_data(pos):
            continue  # empty node: will receive an SST, never a candidate
        if seqno < 0:
            problems.append(
                f"{name}: seqno is {seqno} for cluster {uuid} and could not be recovered"
            )
            continue
        candidates[name] = pos
    if problems:
        raise UnsafeBootstrap(
            "refusing to choose a bootstrap node, the state of some nodes is unknown: "
            + "; ".join(problems)
        )
    if not candidates:
        raise UnsafeBootstrap(
            "no node has cluster data (all uuids are zero): this is a fresh cluster, "
            "bootstrap it with orch.galera.bootstrap"
        )
    uuids = {pos["uuid"].lower() for pos in candidates.values()}
    if len(uuids) > 1:
        detail = ", ".join(f"{n}={p['uuid']}" for n, p in sorted(candidates.items()))
        raise UnsafeBootstrap(
            f"refusing to bootstrap: nodes belong to different clusters ({detail}); "
            "decide by hand which data to keep"
        )
    best_seqno = max(pos["seqno"] for pos in candidates.values())
    safe = sorted(n for n, p in candidates.items() if p.get("safe_to_bootstrap") == 1)
    if len(safe) == 1:
        name = safe[0]
        if candidates[name]["seqno"] < best_seqno:
            ahead = sorted(n for n, p in candidates.items() if p["seqno"] == best_seqno)
            raise UnsafeBootstrap(
                f"refusing to bootstrap: {name} is marked safe_to_bootstrap with seqno "
                f"{candidates[name]['seqno']} but {', '.join(ahead)} has seqno {best_seqno}; "
                "inspect the nodes by hand"
            )
        return name
    best = sorted(n for n, p in candidates.items() if p["seqno"] == best_seqno)
    return best[0]


# Galera's own TLS (replication, IST, SST, garbd): the pillar keys of the
# dedicated Galera CA's material and of the platform (lab) CA's, which every
# machine holds and MariaDB's client TLS keeps using.
GALERA_TLS = {"ca_cert": "galera:tls:ca_cert", "cert": "galera:tls:cert", "key": "galera:tls:key"}
PLATFORM_TLS = {"ca_cert": "tls:ca_cert", "cert": "tls:cert", "key": "tls:key"}
TLS_STAGES = {
    # present the platform certificate, trust both CAs: the first step away
    # from a cluster that used the platform CA for Galera
    "platform": {"trust": [GALERA_TLS, PLATFORM_TLS], "present": PLATFORM_TLS},
    # present the Galera certificate, still trust both
    "both": {"trust": [GALERA_TLS, PLATFORM_TLS], "present": GALERA_TLS},
    # the Galera CA only: a fresh cluster starts here
    "dedicated": {"trust": [GALERA_TLS], "present": GALERA_TLS},
}


def tls_sources(stage="dedicated"):
    """The pillar keys Galera's TLS files are made from at ``stage``:
    ``{"ca": [keys, concatenated into the trusted bundle], "cert": key,
    "key": key}``.

    A node only talks to a peer whose certificate its bundle trusts, so a
    running cluster cannot change CA in one step: each stage trusts what the
    stage before and after it presents (platform -> both -> dedicated, one
    rolling restart each; docs/security.md). Raises naming the pillar key
    on an unknown stage."""
    if stage not in TLS_STAGES:
        raise CommandExecutionError(
            f"galera:lookup:tls:stage is {stage!r}; use one of {', '.join(TLS_STAGES)} "
            "(dedicated unless the cluster is moving to the Galera CA: docs/security.md)")
    plan = TLS_STAGES[stage]
    return {"ca": [source["ca_cert"] for source in plan["trust"]],
            "cert": plan["present"]["cert"], "key": plan["present"]["key"]}


def tls_bundle(pems):
    """The PEM texts of ``pems`` as one bundle file: each ends with a
    newline, a certificate that appears twice is written once (a CA that
    is in both pillar keys during a move)."""
    out = []
    for pem in pems:
        text = pem.strip() + "\n"
        if text not in out:
            out.append(text)
    return "".join(out)


# Galera's group-communication timers (evs.*, wsrep_provider_options), in
# the order Galera checks them when it starts (gcomm/src/evs_proto.cpp,
# evs::Proto's constructor: inactive_check_period <= suspect_timeout/2,
# keepalive_period <= suspect_timeout/3, keepalive_period <= install_timeout
# <= inactive_timeout); a value out of range stops the node at start. Codership's
# "WAN replication" note adds suspect_timeout < inactive_timeout.
EVS_KEYS = ("keepalive_period", "inactive_check_period", "suspect_timeout", "inactive_timeout", "install_timeout")
_ISO_PERIOD = re.compile(r"^PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")


def iso_seconds(value, where):
    """Seconds of an ISO 8601 duration as Galera writes its timers (PT1.5S,
    PT1M, PT1H30M). Raises naming ``where`` on anything else."""
    match = _ISO_PERIOD.match(str(value).strip())
    if not match or not any(match.groups()):
        raise CommandExecutionError(f"{where} is {value!r}: write an ISO 8601 duration such as PT1.5S or PT1M")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def evs_options(evs):
    """The ``evs.<name>=<value>`` items of wsrep_provider_options (data nodes)
    and GALERA_OPTIONS (garbd) from pillar galera:lookup:evs, which every
    member must share. Raises naming the pillar key when one is missing,
    unknown, or out of the order Galera requires (see EVS_KEYS)."""
    evs = dict(evs or {})
    unknown = sorted(set(evs) - set(EVS_KEYS))
    if unknown:
        raise CommandExecutionError(f"galera:lookup:evs:{unknown[0]} is not one of {', '.join(EVS_KEYS)}")
    missing = [name for name in EVS_KEYS if name not in evs]
    if missing:
        raise CommandExecutionError(f"galera:lookup:evs:{missing[0]} is missing (salt/galera/defaults.yaml has it)")
    s = {name: iso_seconds(evs[name], f"galera:lookup:evs:{name}") for name in EVS_KEYS}
    rules = [
        ("inactive_check_period", s["inactive_check_period"] <= s["suspect_timeout"] / 2,
         "at most half of suspect_timeout"),
        ("keepalive_period", s["keepalive_period"] <= s["suspect_timeout"] / 3,
         "at most a third of suspect_timeout (3 missed keepalives before a suspicion)"),
        ("inactive_timeout", s["inactive_timeout"] > s["suspect_timeout"], "longer than suspect_timeout"),
        ("install_timeout", s["keepalive_period"] <= s["install_timeout"] <= s["inactive_timeout"],
         "between keepalive_period and inactive_timeout"),
    ]
    for name, ok, rule in rules:
        if not ok:
            raise CommandExecutionError(
                f"galera:lookup:evs:{name} is {evs[name]}: it must be {rule} "
                f"({', '.join(f'{k}={evs[k]}' for k in EVS_KEYS)})")
    return [f"evs.{name}={evs[name]}" for name in sorted(EVS_KEYS)]


def mysql_native_hash(password):
    """The mysql_native_password hash of a password ('*' + SHA1(SHA1(pw)))."""
    inner = hashlib.sha1(password.encode("utf-8")).digest()
    return "*" + hashlib.sha1(inner).hexdigest().upper()


def parse_grants(lines):
    """SHOW GRANTS rows -> {object: set(privileges)}; object without quotes,
    e.g. '*.*' or 'app.*'; USAGE counts as no privilege."""
    grants = {}
    for line in lines:
        match = re.match(r"^GRANT (.+?) ON (\S+) TO ", line)
        if not match:
            continue
        privs = {p.strip().upper() for p in match.group(1).split(",")}
        privs.discard("USAGE")
        obj = match.group(2).replace("`", "")
        grants.setdefault(obj, set()).update(privs)
    return grants


# Privileges MariaDB 10.11 grants at database and global level (GRANT ...
# ON db.* / *.*), as SHOW GRANTS spells them. A name outside this list is a
# typo in pillar, refused at render rather than by the server mid-state.
PRIVILEGES = frozenset({
    "ALTER", "ALTER ROUTINE", "CREATE", "CREATE ROUTINE", "CREATE TEMPORARY TABLES", "CREATE VIEW",
    "DELETE", "DELETE HISTORY", "DROP", "EVENT", "EXECUTE", "INDEX", "INSERT", "LOCK TABLES",
    "REFERENCES", "SELECT", "SHOW VIEW", "TRIGGER", "UPDATE",
    # global only
    "BINLOG ADMIN", "BINLOG MONITOR", "BINLOG REPLAY", "CONNECTION ADMIN", "CREATE TABLESPACE",
    "CREATE USER", "FEDERATED ADMIN", "FILE", "GRANT OPTION", "PROCESS", "READ_ONLY ADMIN", "RELOAD",
    "REPLICATION MASTER ADMIN", "REPLICATION SLAVE", "REPLICATION SLAVE ADMIN", "SET USER", "SHOW DATABASES",
    "SHUTDOWN", "SLAVE MONITOR", "SUPER",
})
# What a schema change needs on the app's database and the runtime account
# never holds (app:database:migrate_privileges adds to the runtime's).
DDL_PRIVILEGES = frozenset({"ALTER", "CREATE", "DROP", "INDEX", "REFERENCES", "CREATE VIEW", "TRIGGER",
                            "CREATE ROUTINE", "ALTER ROUTINE", "EVENT"})


def check_privileges(privileges, where, allow_all=False):
    """Upper-cased privilege names, sorted; a CommandExecutionError names
    ``where`` and the unknown name (a list is required: a string would be
    read letter by letter). ALL PRIVILEGES only with ``allow_all``: an
    account owning its database (Zabbix's on mon1 creates and upgrades its
    own schema), never the app's accounts nor a global grant."""
    if not isinstance(privileges, (list, tuple, set, frozenset)):
        raise CommandExecutionError(f"{where}: a list of privilege names is required, got {privileges!r}")
    names = [" ".join(str(p).upper().split()) for p in privileges]
    if allow_all and names == ["ALL PRIVILEGES"]:
        return names
    unknown = sorted(set(names) - PRIVILEGES)
    if unknown or "ALL" in names or "ALL PRIVILEGES" in names:
        raise CommandExecutionError(
            f"{where}: unknown or refused privilege {', '.join(unknown) or 'ALL'}; "
            f"known: {', '.join(sorted(PRIVILEGES))} (ALL is refused: name what the account needs)"
        )
    return sorted(set(names))


def app_accounts(database):
    """The app's two accounts from the merged app:database settings: the
    runtime account (``user``, ``privileges``: what PHP needs serving
    requests) and the migration account (``migrate_user``, default
    ``<user>_migrate``; ``privileges`` plus ``migrate_privileges``).
    Both on ``name``.* only. Errors name the pillar key.

    Returns {runtime: {user, privileges}, migrate: {user, privileges}}."""
    user = str(database.get("user") or "")
    if not IDENT_RE.match(user) or len(user) > 24:
        raise CommandExecutionError(
            f"app:database:user {user!r}: 1-24 of A-Z a-z 0-9 _ $ - (the migration account adds _migrate)")
    runtime = check_privileges(database.get("privileges"), "app:database:privileges")
    extra = check_privileges(database.get("migrate_privileges") or [], "app:database:migrate_privileges")
    migrate_user = str(database.get("migrate_user") or f"{user}_migrate")
    if not IDENT_RE.match(migrate_user) or len(migrate_user) > 32:
        raise CommandExecutionError(f"app:database:migrate_user {migrate_user!r}: 1-32 of A-Z a-z 0-9 _ $ -")
    if migrate_user == user:
        raise CommandExecutionError(
            f"app:database:migrate_user {migrate_user!r} is the runtime account: the migration account must be another")
    for key, names in (("privileges", runtime), ("migrate_privileges", extra)):
        global_only = sorted(set(names) - (DDL_PRIVILEGES | {
            "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE",
            "SHOW VIEW", "DELETE HISTORY"}))
        if global_only:
            raise CommandExecutionError(
                f"app:database:{key}: {', '.join(global_only)} cannot be granted on one database (global privileges)")
    return {
        "runtime": {"user": user, "privileges": runtime},
        "migrate": {"user": migrate_user, "privileges": sorted(set(runtime) | set(extra))},
    }


def _sql_string(value):
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(value):
    value = str(value)
    if not IDENT_RE.match(value):
        raise CommandExecutionError(f"refusing unusual SQL identifier {value!r}")
    return "`" + value + "`"


def _account(user, host):
    _ident(user)
    if not HOST_RE.match(str(host)):
        raise CommandExecutionError(f"refusing unusual host pattern {host!r}")
    return f"{_sql_string(user)}@{_sql_string(host)}"


def _object(obj):
    """'app.*' -> '`app`.*'; '*.*' stays."""
    db, _, table = str(obj).partition(".")
    db = "*" if db == "*" else _ident(db)
    table = "*" if table in ("*", "") else _ident(table)
    return f"{db}.{table}"


# -- local node -------------------------------------------------------------


def _run(cmd, **kwargs):
    kwargs.setdefault("python_shell", False)
    kwargs.setdefault("ignore_retcode", True)
    return __salt__["cmd.run_all"](cmd, **kwargs)  # noqa: F821


def query(sql, timeout=30):
    """Run SQL on the local server as root over the unix socket; return rows
    as lists of strings. Raises CommandExecutionError on failure.

    CLI Example::

        salt db1 galera.query 'SELECT 1'
    """
    res = _run(
        ["mariadb", "--batch", "--skip-column-names", "--connect-timeout=5"],
        stdin=sql,
        timeout=timeout,
        output_loglevel="quiet",
    )
    if res["retcode"] != 0:
        raise CommandExecutionError(f"mariadb failed: {res.get('stderr', '').strip()}")
    return [line.split("\t") for line in res["stdout"].splitlines() if line != ""]


def service_state():
    """systemd's ActiveState of the mariadb service (active, inactive, ...)."""
    res = _run(["systemctl", "is-active", SERVICE])
    return (res.get("stdout") or "unknown").strip()


def status():
    """wsrep status of the local node.

    Returns {running, wsrep_on, cluster_status, local_state, ready,
    cluster_size, cluster_state_uuid, last_committed, read_only, desync,
    service, grastate}. ``running`` is False when the server does not answer.

    CLI Example::

        salt db1 galera.status
    """
    result = {
        "running": False,
        "service": service_state(),
        "wsrep_on": False,
        "cluster_status": None,
        "local_state": None,
        "ready": False,
        "cluster_size": 0,
        "cluster_state_uuid": None,
        "last_committed": None,
        "read_only": None,
        "desync": None,
    }
    try:
        rows = query(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state',"
            " 'wsrep_cluster_status', 'wsrep_cluster_size', 'wsrep_ready',"
            " 'wsrep_cluster_state_uuid', 'wsrep_last_committed');"
            " SHOW GLOBAL VARIABLES WHERE Variable_name IN ('wsrep_on', 'read_only',"
            " 'wsrep_desync');",
            timeout=15,
        )
    except CommandExecutionError as exc:
        result["error"] = str(exc)
    else:
        values = {r[0].lower(): (r[1] if len(r) > 1 else "") for r in rows}

        def as_int(name):
            try:
                return int(values.get(name, ""))
            except ValueError:
                return None

        result.update(
            running=True,
            wsrep_on=values.get("wsrep_on") == "ON",
            cluster_status=values.get("wsrep_cluster_status"),
            local_state=as_int("wsrep_local_state"),
            ready=values.get("wsrep_ready") == "ON",
            cluster_size=as_int("wsrep_cluster_size") or 0,
            cluster_state_uuid=values.get("wsrep_cluster_state_uuid") or None,
            last_committed=as_int("wsrep_last_committed"),
            read_only=values.get("read_only"),
            desync=values.get("wsrep_desync"),
        )
    try:
        result["grastate"] = read_grastate(os.path.join(DATADIR, "grastate.dat"))
    except FileNotFoundError:
        result["grastate"] = None
    except (OSError, ValueError) as exc:
        result["grastate"] = {"error": str(exc)}
    return result


def is_primary(st=None):
    st = st if st is not None else status()
    return bool(st["running"] and st["wsrep_on"] and st["cluster_status"] == "Primary")


def is_first_install_server(st=None):
    """True when the running server is the standalone one Debian's package
    starts on first install: wsrep off and no Galera data (no grastate.dat,
    or one of a node never in a cluster). The orchestration stops it and
    starts a cluster node in its place (bootstrap / join), which loads
    /etc/mysql as it is then: lemp_service.config_loaded only records
    (salt/galera/service.sls). A node started with wsrep off for
    maintenance keeps its Galera data, so it is not one.

    CLI Example::

        salt db1 galera.is_first_install_server
    """
    st = st if st is not None else status()
    grastate = st.get("grastate")
    if isinstance(grastate, dict) and grastate.get("error"):
        return False
    return bool(st.get("running") and not st.get("wsrep_on") and not has_cluster_data(grastate))


def is_synced(st=None):
    st = st if st is not None else status()
    return is_primary(st) and st["ready"] and st["local_state"] == SYNCED


def cluster_running():
    """True when the local node is part of a Primary component.

    CLI Example::

        salt -C 'G@roles:db' galera.cluster_running
    """
    return is_primary()


def _recover_position():
    """Run the server's crash recovery to learn the last committed position."""
    if os.path.exists("/usr/bin/galera_recovery"):
        # Debian's wrapper, the same one mariadb.service runs before start.
        res = _run(["/usr/bin/galera_recovery"], timeout=900)
    else:
        res = _run(
            ["mariadbd", "--user=mysql", "--wsrep-recover", "--disable-log-error"],
            timeout=900,
        )
    found = parse_recovered_position((res.get("stdout") or "") + "\n" + (res.get("stderr") or ""))
    if not found:
        raise CommandExecutionError(
            "wsrep recovery gave no position: " + (res.get("stderr") or res.get("stdout") or "")[-500:]
        )
    return found


def position(recover=True):
    """The node's last committed position, for choosing a bootstrap node.

    Reads grastate.dat; when the seqno is -1 (crash, or still running) and
    mariadb is stopped, runs the server's wsrep recovery to get the real
    position. Returns {uuid, seqno, safe_to_bootstrap, source} or
    {error: why}. A running node reports its live position with running=True.

    CLI Example::

        salt db1 galera.position
    """
    path = os.path.join(DATADIR, "grastate.dat")
    state = service_state()
    if state in ("active", "activating", "reloading", "deactivating"):
        st = status()
        if st["running"] and st["wsrep_on"]:
            return {
                "uuid": st["cluster_state_uuid"],
                "seqno": st["last_committed"],
                "safe_to_bootstrap": 0,
                "source": "running",
                "running": True,
                "cluster_status": st["cluster_status"],
            }
        return {"error": f"mariadb is {state} but not a wsrep node; stop it first", "running": True}
    try:
        pos = read_grastate(path)
    except FileNotFoundError:
        return {"error": f"{path} does not exist (no Galera state on this node)"}
    except (OSError, ValueError) as exc:
        return {"error": f"cannot read {path}: {exc}"}
    pos["source"] = "grastate"
    if pos["seqno"] == -1 and has_cluster_data(pos) and recover:
        try:
            uuid, seqno = _recover_position()
        except CommandExecutionError as exc:
            return {"error": str(exc), "uuid": pos["uuid"], "seqno": -1}
        if uuid != pos["uuid"]:
            return {
                "error": f"wsrep recovery found cluster {uuid} but grastate.dat says {pos['uuid']}",
            }
        pos.update(seqno=seqno, source="wsrep-recover")
    return pos


def choose(positions):
    """Wrapper of choose_bootstrap_node for the orchestrations: returns the
    node name, or fails with the reason.

    CLI Example::

        salt db1 galera.choose '{"db1": {...}, "db2": {...}}'
    """
    try:
        return choose_bootstrap_node(positions)
    except UnsafeBootstrap as exc:
        raise CommandExecutionError(str(exc))


def mark_safe_to_bootstrap():
    """Set safe_to_bootstrap: 1 in grastate.dat (only with mariadb stopped).

    Only for the node that choose_bootstrap_node picked after a crash.

    CLI Example::

        salt db1 galera.mark_safe_to_bootstrap
    """
    if service_state() in ("active", "activating"):
        raise CommandExecutionError("mariadb is running: refusing to edit grastate.dat")
    path = os.path.join(DATADIR, "grastate.dat")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    parse_grastate(text)  # refuse to edit a file we do not understand
    # Orchestration steps fail on a falsy return: answer with a dict.
    if re.search(r"^safe_to_bootstrap:\s*1\s*$", text, re.M):
        return {"changed": False, "comment": "safe_to_bootstrap is already 1"}
    if re.search(r"^safe_to_bootstrap:", text, re.M):
        text = re.sub(r"^safe_to_bootstrap:.*$", "safe_to_bootstrap: 1", text, flags=re.M)
    else:
        text = text.rstrip("\n") + "\nsafe_to_bootstrap: 1\n"
    tmp = path + ".salt-tmp"
    stat = os.stat(path)
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chown(tmp, stat.st_uid, stat.st_gid)
    os.chmod(tmp, stat.st_mode & 0o777)
    os.replace(tmp, path)
    return {"changed": True, "comment": "safe_to_bootstrap set to 1"}


def _systemctl(action):
    res = _run(["systemctl", action, SERVICE], timeout=3600)
    if res["retcode"] != 0:
        journal = _run(["journalctl", "-u", SERVICE, "-n", "30", "--no-pager"]).get("stdout", "")
        raise CommandExecutionError(
            f"systemctl {action} {SERVICE} failed: {res.get('stderr', '').strip()}\n{journal}"
        )


def stop():
    """Stop the local server (a wsrep node leaves the cluster cleanly)."""
    if service_state() in ("inactive", "failed"):
        return {"changed": False, "comment": "mariadb was not running"}
    _systemctl("stop")
    return {"changed": True, "comment": "mariadb stopped"}


def bootstrap(timeout=600):
    """Start a NEW cluster from this node (galera_new_cluster).

    Only the orchestrations call this, after checking that no Primary
    component exists anywhere. Refuses when this node already runs as a
    wsrep node; a standalone server (first install) is stopped first.

    CLI Example::

        salt db1 galera.bootstrap
    """
    st = status()
    if is_primary(st):
        return {"changed": False, "comment": "already part of a Primary component"}
    if st["running"] and st["wsrep_on"]:
        raise CommandExecutionError(
            f"refusing to bootstrap: mariadb runs as a wsrep node ({st['cluster_status']}); "
            "stop it first"
        )
    if st["running"] or service_state() in ("active", "activating"):
        _systemctl("stop")
    grastate = st.get("grastate")
    if isinstance(grastate, dict) and grastate.get("error"):
        raise CommandExecutionError(f"refusing to bootstrap: {grastate['error']}")
    if grastate and has_cluster_data(grastate) and grastate.get("safe_to_bootstrap") != 1:
        raise CommandExecutionError(
            "refusing to bootstrap: grastate.dat says safe_to_bootstrap: 0; choose the node "
            "with orch.galera_recover (it marks the chosen node)"
        )
    res = _run(["galera_new_cluster"], timeout=3600)
    if res["retcode"] != 0:
        journal = _run(["journalctl", "-u", SERVICE, "-n", "30", "--no-pager"]).get("stdout", "")
        raise CommandExecutionError(f"galera_new_cluster failed: {res.get('stderr', '')}\n{journal}")
    wait_synced(timeout=timeout)
    return {"changed": True, "comment": "new cluster bootstrapped from this node"}


# The schema created and dropped to move a node's GTID counter (align_gtid_seqno).
ALIGN_SCHEMA = "lemp_ha_gtid_align"


def highest_seq(binlog_state, domain):
    """The highest GTID sequence number of ``domain`` in ``binlog_state``
    (@@gtid_binlog_state: the last GTID of each domain and server_id, e.g.
    ``0-172818463-1507,0-172818464-1407``); 0 when the domain has none."""
    best = 0
    for part in (p.strip() for p in (binlog_state or "").split(",")):
        if not part:
            continue
        fields = part.split("-")
        if len(fields) != 3 or not all(f.isdigit() for f in fields):
            raise CommandExecutionError(f"gtid_binlog_state {binlog_state!r}: {part!r} is not a GTID")
        if int(fields[0]) == int(domain):
            best = max(best, int(fields[2]))
    return best


def gtid_alignment_sql(seq):
    """SQL that makes this node's next wsrep GTIDs follow ``seq``: the
    session's first write takes seq+1 (wsrep_gtid_seq_no), which moves the
    node's counter; setting it without a write moves nothing."""
    return (f"SET SESSION wsrep_gtid_seq_no = {int(seq) + 1};\n"
            f"CREATE DATABASE IF NOT EXISTS {ALIGN_SCHEMA};\n"
            f"DROP DATABASE IF EXISTS {ALIGN_SCHEMA};\n")


def align_gtid_seqno():
    """After a restore's bootstrap, make this node's next GTIDs follow the
    highest one of the cluster's domain in its binlog.

    Why: with wsrep_gtid_mode, a starting node takes its GTID counter from
    the last GTID in its binlog of its own server_id. When the history's last
    transactions carry another server_id (replayed by a restore), the counter
    is behind: new transactions reuse sequence numbers the history already
    has, and a point-in-time restore that starts after a GTID skips them.

    CLI Example::

        salt db1 galera.align_gtid_seqno
    """
    rows = query("SELECT @@gtid_binlog_state, @@wsrep_gtid_domain_id, @@wsrep_gtid_mode")
    state, domain, mode = rows[0]
    if mode != "1":
        return {"changed": False, "comment": "wsrep_gtid_mode is off: nothing to align"}
    seq = highest_seq(state, domain)
    query(gtid_alignment_sql(seq))
    after = query("SELECT @@gtid_binlog_pos")[0][0]
    reached = highest_seq(after, domain)
    if reached < seq + 2:
        raise CommandExecutionError(f"the GTID counter did not move past seq {seq} of domain {domain}: "
                                    f"gtid_binlog_pos is {after}")
    return {"changed": True, "gtid": after,
            "comment": f"new GTIDs of domain {domain} follow seq {reached} (the history's highest was {seq})"}


def join(timeout=1800):
    """Start the local server so that it joins the running cluster (IST or
    SST), and wait until it is Synced. A standalone server (first install,
    no wsrep) is stopped first; a node already in a Primary component is left
    alone.

    CLI Example::

        salt db2 galera.join
    """
    st = status()
    if is_primary(st):
        wait_synced(timeout=timeout)
        return {"changed": False, "comment": "already part of a Primary component"}
    changed = False
    if st["running"] and not st["wsrep_on"]:
        _systemctl("stop")
    if not (st["running"] and st["wsrep_on"]):
        _systemctl("start")
        changed = True
    wait_synced(timeout=timeout)
    return {"changed": changed, "comment": "joined and Synced"}


def restart(timeout=1800):
    """Restart the local node and wait until it is Synced again (rolling
    restart step). Refuses when the node is not Synced to begin with: the
    rolling restart stops at the first node that did not come back."""
    st = status()
    if not is_synced(st):
        raise CommandExecutionError(f"refusing to restart a node that is not Synced: {_summary(st)}")
    _systemctl("restart")
    wait_synced(timeout=timeout)
    return {"changed": True, "comment": "restarted and Synced"}


def _summary(st):
    return (
        f"running={st.get('running')} wsrep_on={st.get('wsrep_on')} "
        f"cluster_status={st.get('cluster_status')} local_state={st.get('local_state')} "
        f"ready={st.get('ready')} cluster_size={st.get('cluster_size')}"
    )


def wait_synced(timeout=600, interval=2, min_cluster_size=1):
    """Wait until the local node is Synced in a Primary component with at
    least ``min_cluster_size`` members; fail after ``timeout`` seconds.

    CLI Example::

        salt db1 galera.wait_synced timeout=300 min_cluster_size=3
    """
    deadline = time.monotonic() + float(timeout)
    while True:
        st = status()
        if is_synced(st) and st["cluster_size"] >= int(min_cluster_size):
            return {"synced": True, "cluster_size": st["cluster_size"]}
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"not Synced with cluster size >= {min_cluster_size} after {timeout}s: {_summary(st)}"
            )
        time.sleep(float(interval))


# -- accounts and databases (used by _states/galera.py) ----------------------


def database_exists(name):
    rows = query(f"SHOW DATABASES LIKE {_sql_string(name)}")
    return any(r and r[0] == name for r in rows)


def database_create(name, charset="utf8mb4", collate="utf8mb4_unicode_ci"):
    query(
        f"CREATE DATABASE IF NOT EXISTS {_ident(name)} CHARACTER SET {_ident(charset)} "
        f"COLLATE {_ident(collate)}"
    )
    return True


def user_info(user, host):
    """{plugin, authentication_string, ssl_type} of an account, or None
    (ssl_type: '' none, 'ANY' for REQUIRE SSL, 'X509', 'SPECIFIED')."""
    rows = query(
        "SELECT plugin, authentication_string, ssl_type FROM mysql.user WHERE "
        f"User = {_sql_string(user)} AND Host = {_sql_string(host)}"
    )
    if not rows:
        return None
    row = rows[0] + ["", "", ""]
    return {"plugin": row[0], "authentication_string": row[1], "ssl_type": row[2].upper()}


def user_grants(user, host):
    rows = query(f"SHOW GRANTS FOR {_account(user, host)}")
    return parse_grants(r[0] for r in rows if r)


# The authentications SHOW CREATE USER prints: "IDENTIFIED BY PASSWORD '*HASH'"
# for one mysql_native_password, "IDENTIFIED VIA plugin [USING 'string'] OR ..."
# for several (MariaDB 10.4+: an account may accept any of them).
_BY_PASSWORD_RE = re.compile(r"\bIDENTIFIED BY PASSWORD '([^']*)'")
_VIA_RE = re.compile(r"(?:\bIDENTIFIED VIA|\bOR) (\w+)(?: USING '([^']*)')?")


def parse_create_user_auth(text):
    """The authentications of a SHOW CREATE USER line, in order, as
    [(plugin, authentication string)]; [] when it names none."""
    found = _BY_PASSWORD_RE.search(text)
    if found:
        return [("mysql_native_password", found.group(1))]
    clause = text.split(" IDENTIFIED VIA ", 1)
    if len(clause) < 2:
        return []
    return [(plugin, string or "") for plugin, string in _VIA_RE.findall("IDENTIFIED VIA " + clause[1])]


def password_auth(passwords):
    """The ALTER/CREATE USER clause accepting any of ``passwords`` (their
    mysql_native_password hashes: no clear text in the statement, the binlog
    or the process list). One password: IDENTIFIED BY PASSWORD '*HASH';
    several (a rotation: the old one, then the new one): IDENTIFIED VIA
    mysql_native_password USING '*OLD' OR mysql_native_password USING '*NEW'."""
    hashes = list(dict.fromkeys(mysql_native_hash(p) for p in passwords if p))
    if not hashes:
        raise CommandExecutionError("a password is required")
    if len(hashes) == 1:
        return f"IDENTIFIED BY PASSWORD {_sql_string(hashes[0])}"
    return "IDENTIFIED VIA " + " OR ".join(f"mysql_native_password USING {_sql_string(h)}" for h in hashes)


def user_auth(user, host):
    """The account's authentications (parse_create_user_auth), [] if none."""
    rows = query(f"SHOW CREATE USER {_account(user, host)}")
    return parse_create_user_auth(rows[0][0]) if rows and rows[0] else []


def user_ensure(user, host, password=None, unix_socket=False, grants=None, test=False, require_ssl=None,
                previous_password=None):
    """Make an account match: authentication (password hash or unix_socket),
    exactly the given grants ({object: [privileges]}; privileges on other
    objects are revoked, and those beyond the list on the same object) and,
    when ``require_ssl`` is True or False, REQUIRE SSL or REQUIRE NONE (None
    leaves an existing account's TLS requirement as it is: orch.site sets
    it once the clients use TLS). ``previous_password`` (a secret rotation,
    docs/secrets.md): the account accepts it as well as ``password`` until
    a run without it, which leaves only ``password``. Returns a list of what
    changed (or would). Unknown privilege names are refused before any SQL runs."""
    account = _account(user, host)
    for obj, privs in (grants or {}).items():
        # a database's own ALL (SHOW GRANTS spells it so), never *.*
        check_privileges(privs, f"grants on {obj} for {user}@{host}", allow_all=not str(obj).startswith("*"))
    if unix_socket:
        auth = "IDENTIFIED VIA unix_socket"
    elif password:
        accepted = [previous_password, password] if previous_password else [password]
        auth = password_auth(accepted)
    else:
        raise CommandExecutionError(f"{user}@{host}: a password or unix_socket is required")
    changes = []
    statements = []
    info = user_info(user, host)
    if info is None:
        changes.append("created")
        statements.append(f"CREATE USER IF NOT EXISTS {account} {auth}")
        current = {}
    else:
        if unix_socket:
            in_sync = info["plugin"] == "unix_socket"
        else:
            # every alternative, not mysql.user's one column: a rotation's
            # "old OR new" must be seen, and dropped when it is over
            wanted_auth = {("mysql_native_password", mysql_native_hash(p)) for p in accepted}
            have_auth = user_auth(user, host)
            in_sync = len(have_auth) == len(wanted_auth) and set(have_auth) == wanted_auth
        if not in_sync:
            changes.append("authentication updated" if unix_socket or len(set(accepted)) == 1
                           else "accepts the previous and the new password")
            statements.append(f"ALTER USER {account} {auth}")
        current = user_grants(user, host)
    have_ssl = bool(info and info.get("ssl_type"))
    if require_ssl is not None and bool(require_ssl) != have_ssl:
        statements.append(f"ALTER USER {account} REQUIRE {'SSL' if require_ssl else 'NONE'}")
        changes.append("REQUIRE SSL" if require_ssl else "REQUIRE NONE")
    wanted = {
        _object(obj).replace("`", ""): {p.strip().upper() for p in privs}
        for obj, privs in (grants or {}).items()
    }
    for obj in sorted(set(current) | set(wanted)):
        have = current.get(obj, set())
        want = wanted.get(obj, set())
        if have == want:
            continue
        # Only what goes, then only what comes: a privilege kept is never
        # revoked for a moment (a live request would get 1142 in between).
        # ALL PRIVILEGES on either side is not a set of names: replaced whole.
        if "ALL PRIVILEGES" in have | want and have - want:
            statements.append(f"REVOKE ALL PRIVILEGES ON {_object(obj)} FROM {account}")
            have = set()
        elif have - want:
            statements.append(f"REVOKE {', '.join(sorted(have - want))} ON {_object(obj)} FROM {account}")
        if want - have:
            statements.append(f"GRANT {', '.join(sorted(want - have) if have else sorted(want))} "
                              f"ON {_object(obj)} TO {account}")
        changes.append(f"grants on {obj}: {sorted(current.get(obj, set()))} -> {sorted(want)}")
    if statements and not test:
        query(";\n".join(statements) + ";")
    return changes
