#!/usr/bin/python3
"""lemp-backup-stream: the one command arb1's backup key may run on a data node.

Managed by Salt (salt/galera/files/lemp-backup-stream.py, state
galera.backup_source). sshd runs it as ``sudo -n lemp-backup-stream
OPTION_FILE`` (authorized_keys ``command=``); what arb1 asked for is in
SSH_ORIGINAL_COMMAND, one of:

    status                                 this node's wsrep state, as JSON
    stream full 0 desync|nodesync          mariabackup's mbstream on stdout
    stream incremental LSN desync|nodesync
    resync                                 wsrep_desync=OFF unless a stream runs
    rotate-binlog                          FLUSH LOCAL BINARY LOGS (the archiver: what
                                           mariadb-binlog buffered reaches arb1)
    check desync|nodesync                  row counts and checksums of every table at one GTID, as JSON
    receive STAMP BACKUP_ID                (restore) stdin, an mbstream, into the staging folder
    receive-binlog STAMP NODE/FILE         (restore) stdin, an archived binlog, into the staging folder

Anything else is refused. ``receive`` writes only under
/var/lib/lemp-restore/<STAMP>/ and only while MariaDB is stopped (orch.restore
stopped it): the key cannot overwrite a running node's data. ``desync``: the node is desynced for the backup
(its lag then never slows the writer through flow control) and ALWAYS
resynced when the stream ends, fails or is killed (finally + SIGHUP/SIGTERM
handlers; arb1 sends ``resync`` afterwards as a second net). Nothing is
written to disk here but mariabackup's temporary files, removed at the end.
"""

import fcntl
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

MARIADB = "/usr/bin/mariadb"
MARIABACKUP = "/usr/bin/mariabackup"
MBSTREAM = "/usr/bin/mbstream"
LOCK = "/run/lemp-backup-stream.lock"
SYNCED = 4
# Where a restore's files land (the same path in _modules/lemp_restore.py).
RESTORE_DIR = "/var/lib/lemp-restore"
STAMP_RE = r"\d{8}T\d{6}Z"
ID_RE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
BINLOG_RE = r"[A-Za-z0-9][A-Za-z0-9.-]{0,62}/[A-Za-z0-9][A-Za-z0-9._-]{0,254}"
# Not the user's tables: the server's own schemas.
SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")


class Refused(Exception):
    pass


def parse_request(text):
    """SSH_ORIGINAL_COMMAND -> {action, kind, from_lsn, desync}, or Refused
    naming what is accepted. Strict: a word more or less is refused."""
    words = (text or "").split()
    usage = ("accepted: 'status', 'resync', 'rotate-binlog', 'stream full 0 desync|nodesync', "
             "'stream incremental <lsn> desync|nodesync', 'check desync|nodesync', "
             "'receive <stamp> <backup id>', 'receive-binlog <stamp> <node>/<file>'")
    if words in (["status"], ["resync"], ["rotate-binlog"]):
        return {"action": words[0]}
    if len(words) == 2 and words[0] == "check" and words[1] in ("desync", "nodesync"):
        return {"action": "check", "desync": words[1] == "desync"}
    if len(words) == 3 and words[0] == "receive" and re.fullmatch(STAMP_RE, words[1]) \
            and re.fullmatch(ID_RE, words[2]) and words[2] not in (".", ".."):
        return {"action": "receive", "stamp": words[1], "name": words[2]}
    if len(words) == 3 and words[0] == "receive-binlog" and re.fullmatch(STAMP_RE, words[1]) \
            and re.fullmatch(BINLOG_RE, words[2]) and ".." not in words[2].split("/"):
        return {"action": "receive-binlog", "stamp": words[1], "name": words[2]}
    if len(words) == 4 and words[0] == "stream" and words[1] in ("full", "incremental") \
            and re.fullmatch(r"\d{1,20}", words[2]) and words[3] in ("desync", "nodesync"):
        lsn = int(words[2])
        if words[1] == "full" and lsn != 0:
            raise Refused(f"a full backup starts at LSN 0, not {lsn}; {usage}")
        if words[1] == "incremental" and lsn == 0:
            raise Refused(f"an incremental needs the LSN its parent ended at; {usage}")
        return {"action": "stream", "kind": words[1], "from_lsn": lsn, "desync": words[3] == "desync"}
    raise Refused(f"request {text!r} refused; {usage}")


def status_from_rows(rows):
    """SHOW GLOBAL STATUS/VARIABLES rows (name, value) -> the dict
    lemp_backup.choose_backup_node reads (galera.status's keys)."""
    values = {name.lower(): value for name, value in rows}
    try:
        local_state = int(values.get("wsrep_local_state", ""))
    except ValueError:
        local_state = None
    return {
        "running": True,
        "wsrep_on": values.get("wsrep_on", "").upper() == "ON",
        "cluster_status": values.get("wsrep_cluster_status"),
        "ready": values.get("wsrep_ready", "").upper() == "ON",
        "local_state": local_state,
        "desync": values.get("wsrep_desync", "").upper() == "ON",
        "node_name": values.get("wsrep_node_name"),
        "cluster_state_uuid": values.get("wsrep_cluster_state_uuid"),
        "gtid_binlog_pos": values.get("gtid_binlog_pos"),
        "last_committed": int(values["wsrep_last_committed"]) if values.get("wsrep_last_committed", "").isdigit()
        else None,
        # arb1 continues a chain on a node only if it has not restarted since (an SST replaces its data)
        "uptime": int(values["uptime"]) if values.get("uptime", "").isdigit() else None,
    }


def mariabackup_command(option_file, kind, from_lsn, tmpdir):
    command = [MARIABACKUP, f"--defaults-extra-file={option_file}", "--backup", "--stream=mbstream",
               "--galera-info", f"--tmpdir={tmpdir}", f"--target-dir={tmpdir}"]
    if kind == "incremental":
        command.append(f"--incremental-lsn={from_lsn}")
    return command


def sql(statement, option_file=None, timeout=None):
    """As root over the unix socket (root@localhost is unix_socket on Debian),
    or as the account of ``option_file``."""
    account = [f"--defaults-extra-file={option_file}"] if option_file else []
    out = subprocess.run([MARIADB, *account, "-N", "-B", "-e", statement], check=True, capture_output=True,
                         text=True, timeout=timeout)
    return [line.split("\t", 1) for line in out.stdout.splitlines() if "\t" in line]


def status():
    rows = sql("SHOW GLOBAL STATUS LIKE 'wsrep_%'; SHOW GLOBAL STATUS LIKE 'Uptime'; "
               "SHOW GLOBAL VARIABLES WHERE Variable_name IN "
               "('wsrep_on', 'wsrep_desync', 'wsrep_node_name', 'gtid_binlog_pos')")
    return status_from_rows(rows)


def set_desync(on):
    sql(f"SET GLOBAL wsrep_desync = {'ON' if on else 'OFF'}")


def _hangup(signum, _frame):
    raise SystemExit(f"lemp-backup-stream: signal {signum}, stopping (the node is resynced)")


def _hold_node(refusal):
    """The node's backup lock, held by the caller until it exits, and the
    signals turned into a clean stop (its ``finally`` resyncs); Refused with
    ``refusal`` when another stream or check holds it."""
    lock = open(LOCK, "w")  # noqa: SIM115  (held for the caller's whole run)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise Refused(refusal)
    for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _hangup)
    return lock


def stream(option_file, request):
    lock = _hold_node("another backup stream runs on this node")
    desynced = False
    tmpdir = tempfile.mkdtemp(prefix="lemp-backup-")
    child = None
    try:
        if request["desync"]:
            state = status()
            if state["local_state"] != SYNCED or state["cluster_status"] != "Primary":
                raise Refused(f"this node is not Synced in a Primary component ({state}): not desyncing it")
            set_desync(True)
            desynced = True
        child = subprocess.Popen(mariabackup_command(option_file, request["kind"], request["from_lsn"],
                                                             tmpdir), stdout=sys.stdout.fileno())
        code = child.wait()
        if code != 0:
            raise SystemExit(f"lemp-backup-stream: mariabackup failed with exit code {code} (its log is above)")
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            child.wait()
        if desynced:
            set_desync(False)
        shutil.rmtree(tmpdir, ignore_errors=True)
        lock.close()


def resync():
    lock = open(LOCK, "w")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return {"resync": "skipped: a stream runs (it resyncs when it ends)"}
    if status()["desync"]:
        set_desync(False)
        return {"resync": "wsrep_desync was ON, set OFF"}
    return {"resync": "already in sync"}


# The last rotation asked over this key: a leaked key may not rotate in a loop.
ROTATED = "/run/lemp-backup-stream.rotated"
ROTATE_MIN_SECONDS = 5


def rotate_binlog(option_file):
    """A new binlog file on this node, not written to the binlog nor
    replicated (LOCAL), as the backup account (RELOAD, which mariabackup
    needs anyway). The archiver on arb1 asks for it when committed
    transactions wait in mariadb-binlog's memory: closing the file writes
    them out. At most one per ROTATE_MIN_SECONDS; a FLUSH that waits on a
    lock gives up after 5 s."""
    try:
        age = time.time() - os.stat(ROTATED).st_mtime
    except FileNotFoundError:
        age = None
    if age is not None and age < ROTATE_MIN_SECONDS:
        raise Refused(f"rotate-binlog refused: the last one was {age:.0f} s ago (at most one per "
                      f"{ROTATE_MIN_SECONDS} s)")
    pathlib.Path(ROTATED).touch()
    sql("SET SESSION lock_wait_timeout = 5; FLUSH LOCAL BINARY LOGS", option_file=option_file, timeout=15)
    rows = sql("SHOW MASTER STATUS", option_file=option_file, timeout=15)
    return {"rotated": rows[0][0] if rows else None}


def check_script(tables):
    """The statements of ``check``, run in one session so that the lock
    holds while everything is read: the GTID, each table's row count, one
    CHECKSUM TABLE of them all. ``tables``: [(schema, table)]; a name holding
    a backquote is left out (the drill then reports it missing)."""
    names = [(d, t) for d, t in tables if "`" not in d + t and "'" not in d + t]
    script = ["FLUSH TABLES WITH READ LOCK", "SELECT 'gtid', @@gtid_binlog_pos"]
    script += [f"SELECT 'rows', '{d}.{t}', COUNT(*) FROM `{d}`.`{t}`" for d, t in names]
    if names:
        script.append("CHECKSUM TABLE " + ", ".join(f"`{d}`.`{t}`" for d, t in names))
    script.append("UNLOCK TABLES")
    return script


def parse_check_output(text):
    """``mariadb -N -B`` output of check_script -> the manifest's ``check``."""
    gtid, counts, sums = "", [], []
    for line in text.splitlines():
        parts = line.split("\t")
        if parts[0] == "gtid":
            gtid = parts[1] if len(parts) > 1 else ""
        elif parts[0] == "rows" and len(parts) == 3:
            counts.append((parts[1], parts[2]))
        elif len(parts) == 2:
            sums.append((parts[0], parts[1]))
    return check_from_rows(gtid, counts, sums)


def check_from_rows(gtid, counts, checksums):
    """{gtid, rows, checksums} for the manifest (lemp_backup.validate_manifest's
    ``check``) from ``counts`` [(db.table, n)] and CHECKSUM TABLE's rows
    [(db.table, n)] (NULL for a table without a checksum: 0)."""
    rows = {name: int(n) for name, n in counts}
    sums = {name: int(n) if str(n).isdigit() else 0 for name, n in checksums}
    return {"gtid": gtid, "rows": rows, "checksums": sums}


def check(request):
    """Row counts and checksums of every user table at one GTID: the node is
    desynced (unless it is the writer), held still under FLUSH TABLES WITH
    READ LOCK in one session, measured, unlocked and resynced. The drill
    replays the binlogs to that GTID and compares (docs/backups.md)."""
    lock = _hold_node("a backup stream runs on this node")
    desynced = False
    try:
        if request["desync"]:
            set_desync(True)
            desynced = True
        tables = [tuple(row) for row in sql(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE='BASE TABLE' "
            f"AND TABLE_SCHEMA NOT IN ({', '.join(repr(s) for s in SYSTEM_SCHEMAS)}) ORDER BY 1, 2")]
        out = subprocess.run([MARIADB, "-N", "-B", "-e", "; ".join(check_script(tables))], check=True,
                             capture_output=True, text=True).stdout
        return parse_check_output(out)
    finally:
        if desynced:
            set_desync(False)
        lock.close()


def mariadb_stopped():
    state = subprocess.run(["systemctl", "is-active", "mariadb"], capture_output=True, text=True).stdout.strip()
    return state not in ("active", "activating", "reloading")


def receive(request):
    """stdin into the restore's staging folder: an mbstream (``receive``,
    extracted with mbstream -x) or an archived binlog (``receive-binlog``).
    Refused while MariaDB runs. Sent again: replaced."""
    if not mariadb_stopped():
        raise Refused("mariadb runs on this node: a restore sends files only after orch.restore stopped it")
    folder = os.path.join(RESTORE_DIR, request["stamp"])
    os.makedirs(folder, mode=0o700, exist_ok=True)
    if request["action"] == "receive":
        target = os.path.join(folder, request["name"])
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target, mode=0o700)
        subprocess.run([MBSTREAM, "-x", "-C", target], stdin=sys.stdin.buffer, check=True)
        return {"received": request["name"], "files": sum(len(f) for _, _, f in os.walk(target))}
    target = os.path.join(folder, "binlogs", request["name"])
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    tmp = target + ".part"
    size = 0
    with open(tmp, "wb") as handle:
        for block in iter(lambda: sys.stdin.buffer.read(1 << 20), b""):
            handle.write(block)
            size += len(block)
    os.replace(tmp, target)
    return {"received": request["name"], "bytes": size}


def main(argv):
    if len(argv) != 2 or not os.path.isfile(argv[1]):
        print("usage: lemp-backup-stream OPTION_FILE (run by sshd's forced command)", file=sys.stderr)
        return 2
    try:
        request = parse_request(os.environ.get("SSH_ORIGINAL_COMMAND", ""))
        if request["action"] == "status":
            print(json.dumps(status()))
        elif request["action"] == "resync":
            print(json.dumps(resync()))
        elif request["action"] == "rotate-binlog":
            print(json.dumps(rotate_binlog(argv[1])))
        elif request["action"] == "check":
            print(json.dumps(check(request)))
        elif request["action"] in ("receive", "receive-binlog"):
            print(json.dumps(receive(request)))
        else:
            stream(argv[1], request)
    except Refused as exc:
        print(f"lemp-backup-stream: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"lemp-backup-stream: {exc.cmd[0]} failed: {exc.stderr}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
