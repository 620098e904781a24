"""
The restore on a data node (orch.restore, docs/backups.md): the steps that
run on the node the restore plan names, each called by the orchestration
with ``salt.function``.

    lemp_restore.set_aside STAMP          the datadir moves aside (kept), an empty one in its place
    lemp_restore.prepare STAMP IDS        mariabackup --prepare the full, then each incremental
    lemp_restore.copy_back STAMP FULL     mariabackup --copy-back into the empty datadir
    lemp_restore.replay STAMP SEGMENTS    a standalone mariadbd (no wsrep, no network) replays the binlogs
    lemp_restore.cleanup STAMP            the staging folder goes

arb1 sends the decrypted backups and the binlogs into the staging folder
``/var/lib/lemp-restore/<STAMP>/`` through the node's forced ssh command
(``receive``, salt/galera/files/lemp-backup-stream.py), which accepts them
only while MariaDB is stopped; the encryption key never leaves arb1. Then
``galera.bootstrap`` starts a new cluster from the restored node and the
others join by SST (their datadirs were set aside too).

Each step refuses while MariaDB runs, is safe to run again after a failure
(a marker file says what is done) and fires ``lemp/restore/progress`` events
(``salt-run state.event 'lemp/restore/*' pretty=True`` shows them live).
The command lines are built by pure functions, unit-tested in
tests/unit/test_restore.py.
"""

import datetime
import logging
import os
import re
import shutil
import subprocess
import time

# The file beside this one: Salt's loader (while it loads this module), arb1's
# lemp-backup and tests/conftest.py each put its folder on sys.path.
import lemp_backup

try:
    from salt.exceptions import CommandExecutionError
except ImportError:  # the unit tests import this file without salt installed

    class CommandExecutionError(Exception):
        pass


log = logging.getLogger(__name__)

__virtualname__ = "lemp_restore"

# Where arb1's `receive` writes (the same path in lemp-backup-stream.py).
RESTORE_DIR = "/var/lib/lemp-restore"
DATADIR = "/var/lib/mysql"
SERVICE = "mariadb"
OS_USER = "mysql"
STAMP_RE = re.compile(r"^\d{8}T\d{6}Z$")
# InnoDB recovery of a large restored datadir takes a while.
START_TIMEOUT = 1800


def __virtual__():
    return __virtualname__


# -- pure functions (unit-tested) ----------------------------------------------


def check_stamp(stamp):
    if not isinstance(stamp, str) or not STAMP_RE.match(stamp):
        raise CommandExecutionError(f"restore stamp {stamp!r} is not like 20240501T120000Z (orch.restore makes it)")
    return stamp


def staging(stamp, root=RESTORE_DIR):
    return os.path.join(root, check_stamp(stamp))


def run_path(stamp):
    """The standalone server's socket, pid and log folder (owned by mysql)."""
    return f"/run/lemp-restore-{check_stamp(stamp)}"


def set_aside_path(stamp, datadir=DATADIR):
    """Where the datadir goes: beside it, named after the restore."""
    return f"{datadir.rstrip('/')}.before-restore-{check_stamp(stamp)}"


def prepare_commands(folder, apply):
    """mariabackup --prepare of the full (``apply[0]``), then of each
    incremental onto it, in chain order (MariaDB 10.11: no --apply-log-only)."""
    if not apply:
        raise CommandExecutionError("nothing to prepare: the plan applies no backup")
    for bid in apply:
        if not isinstance(bid, str) or not lemp_backup.ID_RE.match(bid):
            raise CommandExecutionError(f"backup id {bid!r} is not a backup id")
    full = os.path.join(folder, apply[0])
    commands = [["mariabackup", "--prepare", f"--target-dir={full}"]]
    for bid in apply[1:]:
        commands.append(["mariabackup", "--prepare", f"--target-dir={full}",
                         f"--incremental-dir={os.path.join(folder, bid)}"])
    return commands


def copy_back_command(folder, full, datadir=DATADIR):
    return ["mariabackup", "--copy-back", f"--target-dir={os.path.join(folder, full)}", f"--datadir={datadir}"]


def standalone_command(datadir, run_dir):
    """A mariadbd on the restored datadir that nothing else can reach: no
    wsrep (it must not join or start a cluster), no network, its own socket."""
    # --gtid-domain-id / --wsrep-gtid-mode=OFF: the replayed transactions keep
    # the cluster's domain. With the node's own settings (gtid_domain_id = its
    # server_id for local writes, wsrep_gtid_mode ON) only the first replayed
    # transaction kept domain 0, the rest went to the node's local domain
    # (seen in the lab), and the new cluster would not continue the old GTIDs.
    return ["mariadbd", f"--user={OS_USER}", f"--datadir={datadir}", "--wsrep-on=OFF", "--wsrep-provider=none",
            f"--gtid-domain-id={lemp_backup.DOMAIN}", "--wsrep-gtid-mode=OFF",
            "--skip-networking", "--skip-slave-start", f"--socket={run_dir}/mysqld.sock",
            f"--pid-file={run_dir}/mysqld.pid", f"--log-error={run_dir}/mysqld.err"]


def replay_pipeline(segments, folder, socket):
    """[(mariadb-binlog args, mariadb args)] for the plan's binlog segments,
    files from ``folder``/binlogs/<node>/<file> as arb1 sent them."""
    out = []
    for entry in segments:
        name = entry.get("file")
        if not isinstance(name, str) or not lemp_backup.BINLOG_RE.match(name):
            raise CommandExecutionError(f"binlog {name!r} is not an archived binlog name")
        path = os.path.join(folder, "binlogs", name)
        out.append((lemp_backup.binlog_replay_args(entry, path),
                    ["mariadb", f"--socket={socket}", "--binary-mode"]))
    return out


# -- on the node -----------------------------------------------------------------


def _progress(stamp, step, message):
    log.info("restore %s: %s: %s", stamp, step, message)
    fire = __salt__.get("event.fire_master")  # noqa: F821
    if fire:
        try:
            fire({"stamp": stamp, "step": step, "message": message}, "lemp/restore/progress")
        except Exception:  # progress is a courtesy: it never fails a step
            pass


def _run(args, step, stamp, env=None, timeout=None):
    started = time.monotonic()
    res = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    if res.returncode != 0:
        raise CommandExecutionError(f"{step}: {' '.join(args)} failed ({res.returncode}): "
                                    f"{(res.stderr or res.stdout)[-3000:]}")
    _progress(stamp, step, f"{os.path.basename(args[0])} done in {time.monotonic() - started:.0f} s")
    return res


def _refuse_if_running():
    state = subprocess.run(["systemctl", "is-active", SERVICE], capture_output=True, text=True).stdout.strip()
    if state in ("active", "activating", "reloading"):
        raise CommandExecutionError(f"{SERVICE} is {state}: the restore steps run only with it stopped "
                                    "(orch.restore stops every data node first)")


def _marker(folder, name):
    return os.path.join(folder, f".{name}-done")


def _chown_tree(path, user=OS_USER):
    shutil.chown(path, user, user)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), *_ids(user))


def _ids(user):
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def set_aside(stamp, datadir=DATADIR):
    """Move the datadir aside (``<datadir>.before-restore-<stamp>``, kept
    until removed by hand: a wrong restore can be undone) and leave an empty
    one owned by mysql. On the restored node it receives the backup; on the
    others it makes them join by SST. Run again: nothing more moves."""
    check_stamp(stamp)
    _refuse_if_running()
    aside = set_aside_path(stamp, datadir)
    if os.path.exists(aside):
        return {"changed": False, "comment": f"{datadir} was already set aside to {aside}"}
    if os.path.isdir(datadir):
        os.rename(datadir, aside)
    os.makedirs(datadir, mode=0o750)
    shutil.chown(datadir, OS_USER, OS_USER)
    _progress(stamp, "set-aside", f"{datadir} moved to {aside}")
    return {"changed": True, "comment": f"{datadir} moved to {aside}; an empty {datadir} in its place"}


def prepare(stamp, apply):
    """mariabackup --prepare the backups arb1 sent (``apply``: the plan's
    ids, full first). Run again after success: nothing more (an incremental
    prepared twice would fail)."""
    folder = staging(stamp)
    _refuse_if_running()
    if os.path.exists(_marker(folder, "prepare")):
        return {"changed": False, "comment": "already prepared"}
    for bid in apply:
        if not os.path.isfile(os.path.join(folder, bid, "xtrabackup_checkpoints")):
            raise CommandExecutionError(f"backup {bid} is not in {folder} (did arb1's send step run?)")
    commands = prepare_commands(folder, apply)
    for number, args in enumerate(commands, 1):
        _progress(stamp, "prepare", f"{number}/{len(commands)}: {apply[number - 1]}")
        _run(args, "prepare", stamp)
    open(_marker(folder, "prepare"), "w").close()
    return {"changed": True, "comment": f"prepared {' -> '.join(apply)}"}


def copy_back(stamp, full, datadir=DATADIR):
    """Copy the prepared full backup into the (empty) datadir, owned by mysql."""
    folder = staging(stamp)
    _refuse_if_running()
    if os.path.exists(_marker(folder, "copy-back")):
        return {"changed": False, "comment": "already copied back"}
    if not os.path.exists(_marker(folder, "prepare")):
        raise CommandExecutionError("the backups are not prepared: run lemp_restore.prepare first")
    if os.path.isdir(datadir) and os.listdir(datadir):
        raise CommandExecutionError(f"{datadir} is not empty: run lemp_restore.set_aside first "
                                    "(mariabackup --copy-back writes only into an empty datadir)")
    _run(copy_back_command(folder, full, datadir), "copy-back", stamp)
    _chown_tree(datadir)
    open(_marker(folder, "copy-back"), "w").close()
    return {"changed": True, "comment": f"{full} copied back into {datadir}"}


def _sql(socket, statement):
    res = subprocess.run(["mariadb", f"--socket={socket}", "-N", "-B", "-e", statement],
                         capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise CommandExecutionError(f"{statement}: {res.stderr.strip()}")
    return res.stdout.strip()


def server_environment(environ=None):
    """The standalone server's environment: the minion's, without
    NOTIFY_SOCKET. salt-minion is a Type=notify unit with NotifyAccess=all,
    and mariadbd speaks sd_notify: its STOPPING=1 at shutdown would tell
    systemd that salt-minion is stopping, and systemd kills the minion (and
    the restore's next steps) 90 s later."""
    environ = dict(os.environ if environ is None else environ)
    environ.pop("NOTIFY_SOCKET", None)
    return environ


def _tail_logs(run_dir, size=3000):
    """The end of the standalone server's error log and console output."""
    text = ""
    for name in ("console.log", "mysqld.err"):
        try:
            with open(os.path.join(run_dir, name), encoding="utf-8", errors="replace") as handle:
                text += f"[{name}] " + handle.read()[-size:] + "\n"
        except OSError:
            text += f"[{name}] (none)\n"
    return text.strip()


def check_reached(gtid, expect_seq, exact=True, domain=lemp_backup.DOMAIN):
    """Raise unless the restored server's GTID position (``gtid``) is the
    sequence number the plan reaches (``expect_seq``; None: not checked), or
    at least that when not ``exact`` (``latest``: the archive's last file may
    have grown between the plan and the stop of the archiver)."""
    if expect_seq is None:
        return
    reached = lemp_backup.gtid_seq(gtid or "", domain, "the restored server's gtid_binlog_pos")
    if reached < int(expect_seq) or (exact and reached != int(expect_seq)):
        raise CommandExecutionError(
            f"the replay reached GTID seq {reached} of domain {domain} ({gtid or 'nothing'}), the plan reaches "
            f"{expect_seq}: the cluster is not bootstrapped from it (the old datadirs are still set aside)")


def replay(stamp, segments, base_gtid="", expect_seq=None, exact=True, datadir=DATADIR):
    """Replay the plan's binlog segments on the restored datadir through a
    standalone mariadbd (no wsrep, no network), then stop it and remove the
    Galera state files, so that galera.bootstrap starts a new cluster from it.

    ``expect_seq``: the GTID sequence number the plan reaches (the cluster's
    domain); a replay that stops short of it, or goes past it, fails before
    the bootstrap, rather than starting a cluster from the wrong point.

    Returns {changed, gtid: the restored server's gtid_binlog_pos, comment}."""
    folder = staging(stamp)
    _refuse_if_running()
    if os.path.exists(_marker(folder, "replay")):
        with open(_marker(folder, "replay"), encoding="utf-8") as handle:
            return {"changed": False, "gtid": handle.read().strip(), "comment": "already replayed"}
    if not os.path.exists(_marker(folder, "copy-back")):
        raise CommandExecutionError("the backup is not copied back: run lemp_restore.copy_back first")
    # mysql cannot enter the root-only staging folder: its socket, pid and log go here
    run_dir = run_path(stamp)
    os.makedirs(run_dir, mode=0o700, exist_ok=True)
    shutil.chown(run_dir, OS_USER, OS_USER)
    socket = os.path.join(run_dir, "mysqld.sock")
    pipeline = replay_pipeline(segments or [], folder, socket)
    # its own output too: a server that dies before it opens its error log
    # says why only there
    console = open(os.path.join(run_dir, "console.log"), "wb")  # noqa: SIM115  (closed below)
    server = subprocess.Popen(standalone_command(datadir, run_dir), stdout=console, stderr=subprocess.STDOUT,
                              env=server_environment())
    console.close()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while subprocess.run(["mariadb-admin", f"--socket={socket}", "ping"], capture_output=True).returncode:
            if server.poll() is not None or time.monotonic() > deadline:
                raise CommandExecutionError(f"the restored server did not start: {_tail_logs(run_dir)}")
            time.sleep(1)
        # mariabackup copies no binlog: the restored server starts with an
        # empty GTID state. Seed it with the backup's position, so that
        # gtid_binlog_pos (and the new cluster's next GTID) continue from it
        # even when nothing is replayed.
        if base_gtid and not _sql(socket, "SELECT @@gtid_binlog_state"):
            lemp_backup.parse_gtid_list(base_gtid, "base gtid")  # refuse anything but a GTID list
            _sql(socket, f"RESET MASTER; SET GLOBAL gtid_binlog_state = '{base_gtid}'")
        _progress(stamp, "replay", f"restored server up at GTID {_sql(socket, 'SELECT @@gtid_binlog_pos')}")
        env = dict(os.environ, TZ="UTC")
        for number, (binlog, client) in enumerate(pipeline, 1):
            started = time.monotonic()
            reader = subprocess.Popen(binlog, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            writer = subprocess.run(client, stdin=reader.stdout, capture_output=True, text=True)
            reader.stdout.close()
            reader_err = reader.stderr.read().decode(errors="replace")
            if reader.wait() != 0 or writer.returncode != 0:
                raise CommandExecutionError(f"replay of {segments[number - 1]['file']} failed: "
                                            f"{reader_err.strip()} {writer.stderr.strip()}"[-3000:])
            _progress(stamp, "replay", f"{number}/{len(pipeline)}: {segments[number - 1]['file']} in "
                                       f"{time.monotonic() - started:.0f} s, now at GTID "
                                       f"{_sql(socket, 'SELECT @@gtid_binlog_pos')}")
        gtid = _sql(socket, "SELECT @@gtid_binlog_pos")
        check_reached(gtid, expect_seq, exact)
        subprocess.run(["mariadb-admin", f"--socket={socket}", "shutdown"], capture_output=True, timeout=600)
        server.wait(timeout=600)
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait()
    # a new cluster: galera.bootstrap finds no state of the old one
    for name in ("grastate.dat", "gvwstate.dat"):
        path = os.path.join(datadir, name)
        if os.path.exists(path):
            os.remove(path)
    with open(_marker(folder, "replay"), "w", encoding="utf-8") as handle:
        handle.write(gtid)
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"changed": True, "gtid": gtid,
            "comment": f"{len(pipeline)} binlog segment(s) replayed; restored server at GTID {gtid}"}


def cleanup(stamp):
    """Remove the staging folder (the set-aside datadirs stay)."""
    folder = staging(stamp)
    if not os.path.exists(folder):
        return {"changed": False, "comment": f"{folder} is already gone"}
    shutil.rmtree(folder)
    return {"changed": True, "comment": f"{folder} removed; the old datadir stays at "
                                        f"{set_aside_path(stamp)} until removed by hand"}


def new_stamp(now=None):
    """The stamp of a restore: its start, UTC, like a backup id's."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ")
