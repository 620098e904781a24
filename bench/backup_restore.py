#!/usr/bin/env python3
"""Backups and restores (issue #11, docs/backups.md), measured on a
generated dataset of about --size-mb.

Steps, in this order (each prints its progress):
  dataset      sysbench (Debian package `sysbench`: installed on the first web
               node with apt, through the lab's apt proxy, when missing; it is
               left installed) `oltp_read_write prepare` through the database
               endpoint on the VIP with the app's account (secret app_db, the
               app's database `app`): --tables tables sized for --size-mb
  full         `salt-run lemp_backup.now kind=full`: seconds and stored bytes
               from the manifest on arb1, and the runner's wall time
  incremental  after `oltp_read_write run` for --run-seconds through the
               endpoint: `lemp_backup.now kind=incremental`, the same figures
  restore      `orch.restore` to backup latest, until latest, confirm: the RTO,
               wall seconds from its start until every data node is Synced
               and the app answers through the VIP; and the orchestration's own
               wall time (it ends with a full backup of the restored cluster)
  rpo          (unless --skip-rpo) under the lab tests' Writer (acknowledged
               inserts, server-side timestamps) every db node hard-stopped
               (lxc-stop -k), its datadir wiped, then restored from arb1 alone:
               acknowledged rows lost, the gap in seconds, that restore's RTO
  mysqldump    `mariadb-dump --single-transaction` of the database `app` on the
               node the full backup was taken from (as root, its socket):
               seconds and bytes; then the reload of that dump into a scratch
               database (dropped afterwards): seconds
Then the sysbench tables are dropped and the datadirs this run's restores set
aside (/var/lib/mysql.before-restore-*) removed (--keep keeps both), and the
cluster is left Synced. The issue's goals are printed next to the figures (never
asserted): RPO <= 5 s; a full backup no slower than mysqldump; a restore at
least 5x faster than reloading the dump.

Writes the section `backup_restore` of docs/bench.md. Needs root and the lab
up (exits 3 otherwise). Every long step runs in a thread while the main
thread prints its progress. Slow: about an hour for 1 GiB on a laptop.
"""

import json
import re
import shlex
import subprocess
import threading
import time
import uuid

import common  # first: it puts the lab driver, _modules and the lab tests' helpers on sys.path
import galera_helpers as gh
import lemp_backup  # _modules/lemp_backup.py: parse_time
import lemplab
import web_helpers as wh
from common import log

STORE = "/srv/lemp-backup"
DATABASE = "app"  # pillar/app.sls app:database:name (the account `app` has rights on it only)
TABLE_PREFIX = "sbtest"  # sysbench's table names: sbtest1 .. sbtestN
# sysbench's rows (id, k, c CHAR(120), pad CHAR(60)) take about this much in
# InnoDB with the secondary index on k; the measured size is reported too
BYTES_PER_ROW = 240
# The app's password on web1, for sysbench: a root-only file read into
# MYSQL_PWD by the shell, never on a command line (sysbench's --config-file is
# unreliable, issue akopytov/sysbench#498; libmariadb reads MYSQL_PWD when no
# password is given)
PASSWORD_FILE = "/root/.lemp-bench-app-db"
DUMP_FILE = "/var/tmp/lemp-bench-dump.sql"
# deadlocks and lock waits are retried by sysbench rather than ending the run
SYSBENCH_IGNORED_ERRORS = "1213,1205"
MIB = 1024 * 1024


class BenchError(common.BenchError):
    pass


# -- pure helpers (tests/unit/test_bench_backup_restore.py) ---------------------------

def sysbench_rows(size_mb, tables, bytes_per_row=BYTES_PER_ROW):
    """Rows per table for about `size_mb` MiB in `tables` tables."""
    if size_mb <= 0 or tables <= 0:
        raise ValueError(f"--size-mb ({size_mb}) and --tables ({tables}) must be positive")
    return max(1000, int(size_mb * MIB / (tables * bytes_per_row)))


def sysbench_command(action, host, port, tables, rows, threads, seconds=0, user="app", db=DATABASE):
    """The sysbench command line of `action` (prepare, run), without the
    password: the shell gives it in MYSQL_PWD."""
    if action not in ("prepare", "run"):
        raise ValueError(f"sysbench action {action!r}: prepare or run")
    args = ["sysbench", "oltp_read_write", "--db-driver=mysql", f"--mysql-host={host}", f"--mysql-port={port}",
            f"--mysql-user={user}", f"--mysql-db={db}", f"--tables={tables}", f"--table-size={rows}",
            f"--threads={threads}", f"--mysql-ignore-errors={SYSBENCH_IGNORED_ERRORS}"]
    if action == "run":
        args += [f"--time={seconds}", "--report-interval=10"]
    return " ".join(shlex.quote(a) for a in args) + " " + action


_SYSBENCH_FIGURES = {
    "transactions": (r"^\s*transactions:\s+(\d+)\s+\(([\d.]+) per sec\.\)", (int, float), ("transactions", "tps")),
    "queries": (r"^\s*queries:\s+(\d+)\s+\(([\d.]+) per sec\.\)", (int, float), ("queries", "qps")),
    "ignored": (r"^\s*ignored errors:\s+(\d+)", (int,), ("ignored_errors",)),
    "time": (r"^\s*total time:\s+([\d.]+)s", (float,), ("seconds",)),
    "avg": (r"^\s*avg:\s+([\d.]+)", (float,), ("latency_avg_ms",)),
    "p95": (r"^\s*95th percentile:\s+([\d.]+)", (float,), ("latency_p95_ms",)),
}


def parse_sysbench_run(text):
    """The figures of a sysbench 1.0 `run` report: transactions, tps,
    queries, qps, ignored_errors, seconds, latency_avg_ms, latency_p95_ms
    (a figure missing from the text is None)."""
    figures = {}
    for pattern, types, names in _SYSBENCH_FIGURES.values():
        found = re.search(pattern, text or "", re.M)
        for i, (kind, name) in enumerate(zip(types, names)):
            figures[name] = kind(found.group(i + 1)) if found else None
    return figures


def new_manifest(before_ids, manifests, kind):
    """The newest manifest of `kind` whose id is not in `before_ids` (the
    backup just taken), else None."""
    fresh = [m for bid, m in manifests.items() if bid not in before_ids and m.get("kind") == kind]
    return max(fresh, key=lambda m: m.get("finished") or "", default=None)


def manifest_seconds(manifest):
    """finished - started of a manifest, in seconds."""
    return (lemp_backup.parse_time(manifest["finished"], "finished")
            - lemp_backup.parse_time(manifest["started"], "started")).total_seconds()


def rpo_figures(acked, restored, killed_at, started_at):
    """What a restore after losing every db node kept of a writer's rows.

    acked: the ids the writer had acknowledged (committed) before the kill;
    restored: {id: server-side unix time} of the rows in the restored table;
    killed_at, started_at: unix times of the kill and of the writer's start.
    The rate is acknowledged rows per second of writing; gap_s is the lost
    rows at that rate (the time the last acknowledged rows took to write);
    gap_upper_s the time from the last restored row to the kill, an upper
    bound (the last acknowledged write was at or before the kill); not_tail
    counts lost ids below the last restored one (a loss that is not the tail;
    0 expected)."""
    acked = set(acked)
    present = set(restored)
    lost = sorted(acked - present)
    last_restored = max((i for i in acked if i in present), default=None)
    rate = len(acked) / max(killed_at - started_at, 1e-6) if acked else 0.0
    return {
        "acked": len(acked),
        "lost": len(lost),
        "not_tail": sum(1 for i in lost if last_restored is not None and i < last_restored),
        "last_acked": max(acked) if acked else None,
        "last_restored": last_restored,
        "rate": rate,
        "gap_s": (len(lost) / rate) if rate else None,
        "gap_upper_s": (killed_at - restored[last_restored]) if last_restored is not None else None,
    }


def goals(fig):
    """The issue's goals next to what was measured: {name: text}, each
    "met", "NOT met" or "n/a" with the numbers (never an assertion)."""
    def verdict(ok):
        return "n/a" if ok is None else ("met" if ok else "NOT met")

    gap = fig.get("rpo_gap_s")
    full, dump = fig.get("full_s"), fig.get("dump_s")
    rto, reload_s = fig.get("rto_s"), fig.get("reload_s")
    ratio = reload_s / rto if rto and reload_s is not None else None
    return {
        "rpo": f"RPO <= 5 s: {verdict(None if gap is None else gap <= 5)}"
               + (f" ({gap:.1f} s)" if gap is not None else ""),
        "full": f"full backup no slower than mysqldump: "
                f"{verdict(None if full is None or dump is None else full <= dump)}"
                + (f" ({full:.0f} s vs {dump:.0f} s)" if full is not None and dump is not None else ""),
        "restore": f"restore >= 5x faster than reloading the dump: "
                   f"{verdict(None if ratio is None else ratio >= 5)}"
                   + (f" ({ratio:.1f}x)" if ratio is not None else ""),
    }


def table_rows(fig, args):
    """The rows (step, figure, value, goal) of the section."""
    g = goals(fig)
    mib = lambda n: None if n is None else n / MIB  # noqa: E731
    rows = [
        ["dataset", "sysbench oltp tables x rows", f"{args.tables} x {fig.get('rows')}", ""],
        ["dataset", "InnoDB size of the sysbench tables (MiB)", mib(fig.get("dataset_bytes")), ""],
        ["dataset", "sysbench prepare through the DB endpoint (s)", fig.get("prepare_s"), ""],
        ["full backup", "seconds (manifest started to finished)", fig.get("full_s"), g["full"]],
        ["full backup", "salt-run lemp_backup.now wall time (s)", fig.get("full_wall_s"), ""],
        ["full backup", "stored size, encrypted (MiB)", mib(fig.get("full_bytes")), ""],
        ["load", f"oltp_read_write run {args.run_seconds} s through the endpoint: transactions/s",
         fig.get("tps"), ""],
        ["load", "latency p95 (ms)", fig.get("p95_ms"), ""],
        ["incremental backup", "seconds (manifest started to finished)", fig.get("inc_s"), ""],
        ["incremental backup", "stored size, encrypted (MiB)", mib(fig.get("inc_bytes")), ""],
        ["restore (RTO)", "orch.restore start until every data node Synced and the app answers via the VIP (s)",
         fig.get("rto_s"), g["restore"]],
        ["restore (RTO)", "orch.restore wall time, with its full backup of the restored cluster (s)",
         fig.get("restore_orch_s"), ""],
    ]
    if not args.skip_rpo:
        rows += [
            ["every db node lost (RPO)", "acknowledged rows lost (of acked)",
             f"{fig.get('rpo_lost')} (of {fig.get('rpo_acked')})", ""],
            ["every db node lost (RPO)", "seconds of writes lost (lost rows / write rate)", fig.get("rpo_gap_s"),
             g["rpo"]],
            ["every db node lost (RPO)", "kill minus last restored row's timestamp, upper bound (s)",
             fig.get("rpo_gap_upper_s"), ""],
            ["every db node lost (RPO)", "last acknowledged id / last restored id",
             f"{fig.get('rpo_last_acked')} / {fig.get('rpo_last_restored')}", ""],
            ["every db node lost (RPO)", "lost rows that are not the tail (0 expected)", fig.get("rpo_not_tail"), ""],
            ["every db node lost (RPO)", "orch.restore start until Synced and app answers (s)",
             fig.get("rpo_rto_s"), ""],
        ]
    rows += [
        ["mysqldump", "mariadb-dump --single-transaction (s)", fig.get("dump_s"), g["full"]],
        ["mysqldump", "dump size (MiB)", mib(fig.get("dump_bytes")), ""],
        ["mysqldump", "reload of the dump into a scratch database (s)", fig.get("reload_s"), g["restore"]],
    ]
    return rows


# -- running long steps with progress --------------------------------------------------

class Background:
    """fn() in a thread; `wait()` logs `what` and progress() every `every` s
    until it ends, then returns its result or raises its exception."""

    def __init__(self, what, fn, progress=None, every=20):
        self.what, self.progress, self.every = what, progress, every
        self.result = self.error = None
        self.t0 = time.monotonic()
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            self.result = fn()
        except BaseException as exc:  # noqa: BLE001  (raised again by wait())
            self.error = exc

    def done(self):
        return not self.thread.is_alive()

    def elapsed(self):
        return time.monotonic() - self.t0

    def wait(self, poll=None):
        """Until the thread ends; `poll()` (if given) is called every 2 s."""
        last = time.monotonic()
        while self.thread.is_alive():
            self.thread.join(2)
            if poll:
                poll()
            if time.monotonic() - last >= self.every and self.thread.is_alive():
                last = time.monotonic()
                extra = ""
                if self.progress:
                    try:
                        extra = f": {self.progress()}"
                    except Exception as exc:  # noqa: BLE001  (progress is best effort)
                        extra = f": (progress unknown: {exc})"
                log(f"  {self.what} running for {self.elapsed():.0f}s{extra}")
        if self.error:
            raise self.error
        return self.result


def timed(what, fn, progress=None, every=20):
    """(seconds, result) of fn(), run as a Background with progress lines."""
    log(f"{what} ...")
    job = Background(what, fn, progress, every)
    result = job.wait()
    log(f"{what}: {job.elapsed():.1f}s")
    return job.elapsed(), result


# -- the lab ---------------------------------------------------------------------------

def put_secret_file(lab, machine, path, text):
    """Write `text` to a root-only file in `machine` through lxc-attach's
    stdin: the secret is on no command line, here or there."""
    proc = subprocess.run(
        ["lxc-attach", "-n", f"lemp-ha-{machine}", "--clear-env", "--set-var", f"PATH={lemplab.PATH}", "--",
         "bash", "-c", f"umask 077; cat > {shlex.quote(path)}"],
        input=text, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise BenchError(f"{machine}: could not write {path}: {proc.stderr[-500:]}")


def ensure_sysbench(lab, web):
    """sysbench on `web`: installed with apt (the lab's apt proxy) when
    missing. Returns True when this run installed it."""
    return common.ensure_package(lab, web, "sysbench", "sysbench")


def sysbench(lab, web, command, timeout):
    """Run a sysbench command on `web` with the app's password in MYSQL_PWD."""
    proc = lab.run(web, f"MYSQL_PWD=$(cat {PASSWORD_FILE}) {command}", check=False, timeout=timeout)
    if proc.returncode != 0:
        raise BenchError(f"sysbench on {web} failed ({proc.returncode}): {command}\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def dataset_bytes(lab, node):
    rows = gh.sql(lab, node, "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
                             f"WHERE table_schema = '{DATABASE}' AND table_name LIKE '{TABLE_PREFIX}%'")
    return int(rows[0][0])


def manifests(lab, store):
    """{id: manifest} of every finished backup on the store (as the lab test)."""
    text = gh.out(lab.run(store, f"for m in {STORE}/backups/*/manifest.json; do [ -f \"$m\" ] && cat \"$m\"; "
                                 "echo; done", check=False))
    return {m["id"]: m for m in (json.loads(part) for part in text.split("\n\n") if part.strip())}


def backup(lab, store, kind):
    """Take a backup of `kind` now; (wall seconds, its manifest)."""
    before = set(manifests(lab, store))

    def run():
        code, data = lab.salt_run("lemp_backup.now", f"kind={kind}", timeout=7200)
        if code != 0 or "error" in str(data)[:300]:
            raise BenchError(f"salt-run lemp_backup.now kind={kind} failed: {str(data)[:1500]}")
        return data

    def progress():
        part = gh.out(lab.run(store, f"du -sb {STORE}/backups/*.part 2>/dev/null | awk '{{s += $1}} END "
                                     "{print s + 0}'", check=False))
        return f"{int(part or 0) / MIB:.0f} MiB stored so far"

    wall, _ = timed(f"{kind} backup (salt-run lemp_backup.now kind={kind})", run, progress)
    manifest = new_manifest(before, manifests(lab, store), kind)
    if not manifest:
        raise BenchError(f"no new {kind} manifest in {STORE}/backups on {store} after lemp_backup.now")
    log(f"{kind} backup {manifest['id']}: {manifest_seconds(manifest):.1f}s, {manifest['size'] / MIB:.0f} MiB "
        f"from {manifest['node']}")
    return wall, manifest


def app_answers(lab):
    try:
        wh.get_json(lab, "/api/info", session=wh.new_session(lab))
        return True
    except Exception:  # noqa: BLE001  (maintenance page, no server, timeout: not yet)
        return False


def restore_latest(lab, tier, what):
    """orch.restore to latest with confirm. Returns (rto_s, orch_s): rto_s
    from its start until, after the cluster or the app was seen down, every
    data node is Synced and the app answers through the VIP again; orch_s
    the orchestration's wall time."""
    state = {"seen_down": False, "rto": None, "last": 0.0}
    t0 = time.monotonic()

    def healthy():
        return all(gh.synced(lab, n, tier["size"]) for n in tier["dbs"]) and app_answers(lab)

    def poll():
        if state["rto"] is not None or time.monotonic() - state["last"] < 3:
            return
        state["last"] = time.monotonic()
        if not healthy():
            state["seen_down"] = True
        elif state["seen_down"]:
            state["rto"] = time.monotonic() - t0
            log(f"  {what}: every data node Synced and the app answers after {state['rto']:.1f}s")

    def run():
        ok, detail = lab.orchestrate("orch.restore", {"restore": {"backup": "latest", "until": "latest",
                                                                  "confirm": True}}, timeout=7200)
        if not ok:
            raise BenchError(f"orch.restore failed: {detail[:3000]}")

    def progress():
        states = {n: (gh.wsrep(lab, n).get("wsrep_local_state_comment") or "down") for n in tier["dbs"]}
        return ", ".join(f"{n} {s}" for n, s in states.items()) + ("; app answers" if app_answers(lab) else "")

    log(f"{what}: salt-run state.orchestrate orch.restore (backup latest, until latest, confirm) ...")
    job = Background(what, run, progress, every=30)
    job.wait(poll=poll)
    orch_s = job.elapsed()
    log(f"{what}: orch.restore done in {orch_s:.1f}s")
    if state["rto"] is None:
        # the monitor missed the moment (e.g. the step was shorter than a poll)
        gh.wait_cluster_healthy(lab, tier, timeout=900)
        wh.wait_app_answers(lab, timeout=300)
        state["rto"] = time.monotonic() - t0
    return state["rto"], orch_s


def make_rpo_table(lab, tier):
    name = "bench_rpo_" + uuid.uuid4().hex[:8]
    gh.sql(lab, tier["dbs"][0], f"CREATE TABLE {DATABASE}.{name} (id INT PRIMARY KEY, payload VARCHAR(100), "
                                "ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB")
    return name


def rpo(lab, tier, fig):
    """Every db node lost under the writer, restored from arb1 alone."""
    table = make_rpo_table(lab, tier)
    writer = gh.Writer(lab, tier["web"], lab.db_endpoint, lab.secrets["passwords"]["app_db"], table)
    killed = False
    try:
        writer.start()
        started_at = time.time()
        log(f"[rpo] writer on {tier['web']} into {DATABASE}.{table}; waiting for 300 acknowledged rows")
        gh.acked_after(writer, 300, 180, "before the loss", interval=0.5)
        log(f"[rpo] lxc-stop -k {', '.join(tier['dbs'])}")
        for node in tier["dbs"]:
            lab.stop(node, kill=True)
        killed_at = time.time()
        killed = True
        time.sleep(3)
        lab.run(tier["web"], f"touch {writer.workdir}/stop", check=False)
        acked = writer.acked()
        log(f"[rpo] {len(acked)} acknowledged rows; starting the db nodes and wiping their datadirs")
        for node in tier["dbs"]:
            lab.start(node)
            # its MariaDB waits for peers since boot: SIGTERM waits as long (tests/lab/test_backups.py)
            lab.run(node, "systemctl kill --signal=SIGKILL mariadb; systemctl stop mariadb; rm -rf /var/lib/mysql/*",
                    check=False, timeout=600)
        fig["rpo_rto_s"], fig["rpo_orch_s"] = restore_latest(lab, tier, "[rpo] restore from arb1 alone")
        rows = {int(i): float(t) for i, t in
                gh.sql(lab, tier["dbs"][0], f"SELECT id, UNIX_TIMESTAMP(ts) FROM {DATABASE}.{table}")}
        r = rpo_figures(acked, rows, killed_at, started_at)
        fig.update({f"rpo_{k}": v for k, v in r.items()})
        log(f"[rpo] {r['lost']} of {r['acked']} acknowledged rows lost (about {common.fmt(r['gap_s'])} s of "
            f"writes at {r['rate']:.0f}/s); last acked {r['last_acked']}, last restored {r['last_restored']}")
    finally:
        lab.run(tier["web"], f"touch {writer.workdir}/stop", check=False)
        if killed:
            common.restoring(lab, tier["dbs"])
        try:
            gh.wait_cluster_healthy(lab, tier, timeout=900)
        except AssertionError as exc:
            raise BenchError(f"the cluster is not healthy after the RPO scenario ({exc}); restore it with "
                             "salt-run state.orchestrate orch.restore pillar='{\"restore\": {\"backup\": "
                             "\"latest\", \"until\": \"latest\", \"confirm\": true}}'") from exc
        finally:
            lab.run(tier["web"], f"rm -rf {writer.workdir}", check=False)
        gh.sql(lab, tier["dbs"][0], f"DROP TABLE IF EXISTS {DATABASE}.{table}", check=False)


def dump_and_reload(lab, tier, node, fig):
    """mariadb-dump --single-transaction of the app's database on `node`,
    then its reload into a scratch database (dropped afterwards)."""
    scratch = "bench_reload_" + uuid.uuid4().hex[:8]
    try:
        fig["dump_s"], _ = timed(
            f"mariadb-dump --single-transaction {DATABASE} on {node}",
            lambda: lab.run(node, f"mariadb-dump --single-transaction --quick --skip-add-locks --routines "
                                  f"--triggers {DATABASE} > {DUMP_FILE}", timeout=7200),
            lambda: f"{int(gh.out(lab.run(node, f'stat -c %s {DUMP_FILE}', check=False)) or 0) / MIB:.0f} MiB")
        fig["dump_bytes"] = int(gh.out(lab.run(node, f"stat -c %s {DUMP_FILE}")))
        gh.sql(lab, node, f"CREATE DATABASE {scratch}")
        fig["reload_s"], _ = timed(
            f"reload of the dump into {scratch} on {node}",
            lambda: lab.run(node, f"mariadb {scratch} < {DUMP_FILE}", timeout=14400),
            lambda: f"{dataset_in(lab, node, scratch) / MIB:.0f} MiB loaded")
    finally:
        gh.sql(lab, node, f"DROP DATABASE IF EXISTS {scratch}", check=False)
        lab.run(node, f"rm -f {DUMP_FILE}", check=False)


def dataset_in(lab, node, schema):
    rows = gh.sql(lab, node, "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
                             f"WHERE table_schema = '{schema}'", check=False)
    return int(rows[0][0]) if rows else 0


ASIDE = "/var/lib/mysql.before-restore-*"


def asides(lab, tier):
    """{node: set of the datadirs orch.restore set aside} (lemp_restore.set_aside)."""
    return {n: set(gh.out(lab.run(n, f"ls -d {ASIDE} 2>/dev/null || true", check=False)).split())
            for n in tier["dbs"]}


def remove_new_asides(lab, tier, before):
    """Remove the datadirs this run's restores set aside (a GiB each), and
    only those: any that was there before the run stays."""
    for node, now in asides(lab, tier).items():
        for path in sorted(now - before.get(node, set())):
            if not path.startswith("/var/lib/mysql.before-restore-"):
                continue
            log(f"removing {node}:{path} (set aside by this run's restore)")
            lab.run(node, f"rm -rf {shlex.quote(path)}", check=False, timeout=600)


def drop_sysbench_tables(lab, tier, tables):
    names = ", ".join(f"{DATABASE}.{TABLE_PREFIX}{i}" for i in range(1, tables + 1))
    for node in tier["dbs"]:
        if gh.sql_ok(lab, node, f"DROP TABLE IF EXISTS {names}"):
            log(f"dropped the sysbench tables ({names})")
            return
    log(f"cleanup: could not drop {names}; drop them by hand")


def commit_of(repo=common.REPO):
    """The repository's commit (short), "+dirty" when files differ from it;
    "unknown" outside a git checkout. Read on this host only."""
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "--short", "HEAD")
    except FileNotFoundError:  # no git on this host: a tarball of the repository
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + ("+dirty" if dirty else "")


# -- main --------------------------------------------------------------------------------

def main():
    p = common.parser(__doc__)
    p.add_argument("--size-mb", type=int, default=1024, help="size of the sysbench dataset in MiB (default: %(default)s)")
    p.add_argument("--tables", type=int, default=4, help="sysbench tables (default: %(default)s)")
    p.add_argument("--threads", type=int, default=4, help="sysbench threads (default: %(default)s)")
    p.add_argument("--run-seconds", type=int, default=60,
                   help="oltp_read_write run between the full and the incremental (default: %(default)s)")
    p.add_argument("--skip-rpo", action="store_true", help="skip losing every db node (the RPO)")
    p.add_argument("--keep", action="store_true",
                   help="keep the sysbench tables and the datadirs the restores set aside")
    args = p.parse_args()
    if args.run_seconds <= 0 or args.threads <= 0:
        p.error("--run-seconds and --threads must be positive")
    try:
        rows_per_table = sysbench_rows(args.size_mb, args.tables)
    except ValueError as exc:
        p.error(str(exc))

    lab = common.open_lab()
    tier = gh.tier_of(lab.topology)
    store = lab.with_role("backup")[0]
    web = tier["web"]
    host, port = lab.db_endpoint
    fig = {"rows": rows_per_table}
    prepared = False
    aside_before = None
    try:
        common.wait_lab_healthy(lab)
        ensure_sysbench(lab, web)
        put_secret_file(lab, web, PASSWORD_FILE, lab.secrets["passwords"]["app_db"])

        log(f"== dataset: {args.tables} tables x {rows_per_table} rows (about {args.size_mb} MiB)")
        drop_sysbench_tables(lab, tier, args.tables)  # a leftover of a run with --keep
        prepared = True
        fig["prepare_s"], _ = timed(
            f"sysbench prepare on {web} through {host}:{port}",
            lambda: sysbench(lab, web, sysbench_command("prepare", host, port, args.tables, rows_per_table,
                                                        min(args.threads, args.tables)), timeout=14400),
            lambda: f"{dataset_bytes(lab, tier['dbs'][0]) / MIB:.0f} MiB in InnoDB", every=30)
        gh.wait_cluster_healthy(lab, tier, timeout=600)
        fig["dataset_bytes"] = dataset_bytes(lab, tier["dbs"][0])

        log("== full backup")
        fig["full_wall_s"], full = backup(lab, store, "full")
        fig["full_s"], fig["full_bytes"] = manifest_seconds(full), full["size"]

        log(f"== load: oltp_read_write for {args.run_seconds}s, then an incremental backup")
        _, out = timed(f"sysbench run {args.run_seconds}s on {web}",
                       lambda: sysbench(lab, web, sysbench_command("run", host, port, args.tables, rows_per_table,
                                                                   args.threads, args.run_seconds),
                                        timeout=args.run_seconds + 600))
        run = parse_sysbench_run(out)
        fig["tps"], fig["p95_ms"] = run["tps"], run["latency_p95_ms"]
        log(f"sysbench run: {common.fmt(run['tps'])} transactions/s, p95 {common.fmt(run['latency_p95_ms'])} ms, "
            f"{run['ignored_errors']} ignored errors")
        _, inc = backup(lab, store, "incremental")
        fig["inc_s"], fig["inc_bytes"] = manifest_seconds(inc), inc["size"]

        log("== restore (RTO)")
        aside_before = asides(lab, tier)
        fig["rto_s"], fig["restore_orch_s"] = restore_latest(lab, tier, "restore")
        gh.wait_cluster_healthy(lab, tier, timeout=900)

        if not args.skip_rpo:
            log("== every db node lost (RPO)")
            rpo(lab, tier, fig)

        log("== mysqldump")
        dump_and_reload(lab, tier, full["node"], fig)
        for text in goals(fig).values():
            log(f"goal: {text}")
    finally:
        lab.run(web, f"rm -f {PASSWORD_FILE}", check=False)
        common.restoring(lab, tier["dbs"] + tier["arbs"])
        gh.wait_cluster_healthy(lab, tier, timeout=900)
        if prepared and not args.keep:
            drop_sysbench_tables(lab, tier, args.tables)
        elif prepared:
            log(f"--keep: the sysbench tables {TABLE_PREFIX}1..{args.tables} stay in {DATABASE}")
        if aside_before is not None and not args.keep:
            remove_new_asides(lab, tier, aside_before)
    common.wait_web_healthy(lab, timeout=300)

    notes = [
        f"Commit {commit_of()}; --size-mb {args.size_mb}, --tables {args.tables}, --threads {args.threads}, "
        f"--run-seconds {args.run_seconds}" + (", --skip-rpo" if args.skip_rpo else "") + ".",
        f"Dataset: sysbench oltp_read_write prepare on {web} through {host}:{port} (the DB endpoint, HAProxy single "
        f"writer) as the app's account into the database `{DATABASE}`; sysbench is installed on {web} with apt "
        "when missing and left installed.",
        "Backups: salt-run lemp_backup.now (mariabackup streamed over ssh to arb1, encrypted there); seconds and "
        "size from the manifest. The restore: orch.restore backup latest, until latest, confirm (the full, the "
        "incremental, the binlogs since, then SST of the other node); RTO until every data node is Synced and "
        "/api/info answers through the VIP; the orchestration then takes a full backup of the restored cluster.",
        None if args.skip_rpo else
        f"RPO: tests/lab/galera_helpers.Writer on {web} (one INSERT+COMMIT at a time through the endpoint), every "
        "db node lxc-stop -k, datadirs wiped, orch.restore from arb1 alone. Seconds lost = lost acknowledged "
        "rows / write rate; the upper bound is the kill minus the server-side timestamp of the last restored row.",
        "mysqldump: mariadb-dump --single-transaction --quick of the database on the node the full backup was "
        "taken from, as root on its socket, to a local file; the reload into a scratch database on that node "
        "replicates through Galera as any write does. The scratch database and the file are removed.",
        "Goals of issue #11, printed, never asserted: " + "; ".join(goals(fig).values()) + ".",
        "The backups of this run stay on arb1 until retention prunes them (each full holds the sysbench tables).",
    ]
    common.report(args, "backup_restore", "Backups and restores (issue #11)", ["step", "figure", "value", "goal"],
                  table_rows(fig, args), notes)
    return 0


if __name__ == "__main__":
    common.main_wrapper(main)
