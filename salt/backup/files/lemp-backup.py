#!/usr/bin/python3
"""lemp-backup: the backup store's tool on arb1 (role backup; docs/backups.md).

Managed by Salt (salt/backup/files/lemp-backup.py). Runs as the system user
lemp-backup; its settings are /etc/lemp-backup/backup.json (salt/backup
config). The decisions are lemp_backup.py's and lemp_backup_job.py's,
installed beside this file; here commands run and bytes move.

    lemp-backup take full|incremental   one backup, streamed from a data node (the timers)
    lemp-backup prune                   retention: delete what lemp_backup.retention says
    lemp-backup list                    manifests, drills and binlog indexes as JSON (the runner)
    lemp-backup archive                 the binlog archiver (service lemp-binlog-archive)
    lemp-backup status                  status.json, for monitoring
"""

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, "/usr/local/lib/lemp-backup")
import lemp_backup  # noqa: E402
import lemp_backup_job as job  # noqa: E402

CONFIG = pathlib.Path(os.environ.get("LEMP_BACKUP_CONFIG", "/etc/lemp-backup/backup.json"))
STREAM_FILE = "backup.mbstream.enc"
BLOCK = 1 << 20


def log(message):
    print(message, file=sys.stderr, flush=True)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def load_config():
    return json.loads(CONFIG.read_text())


def write_json(path, data):
    """Atomically: a reader sees the old file or the new one, never half."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(path, wait=True):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        yield


def update_status(cfg, **parts):
    store = pathlib.Path(cfg["store"])
    with locked(store / ".status.lock"):
        path = store / "status.json"
        status = json.loads(path.read_text()) if path.exists() else {}
        status.update(parts)
        status["updated"] = lemp_backup.format_time(now())
        write_json(path, status)


# -- the store ------------------------------------------------------------------


def read_store(cfg):
    """Manifests and drill results as found: lemp_backup.catalogue's inputs."""
    store = pathlib.Path(cfg["store"])
    manifests, drills = [], {}
    for path in sorted((store / "backups").glob("*/manifest.json")):
        try:
            manifests.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            manifests.append({"id": path.parent.name, "unreadable": str(exc)})
    for path in sorted((store / "drills").glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            drills[path.stem] = json.loads(path.read_text())
    return manifests, drills


def measure(path):
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
            size += len(block)
    return {"name": path.name, "size": size, "sha256": digest.hexdigest()}


def key_id(cfg):
    """Names the key a backup is encrypted with, never contains it: the
    pillar key and the first 8 hex of the key's sha256."""
    key = pathlib.Path(cfg["encryption"]["key_file"]).read_bytes().strip()
    return f"{cfg['encryption']['pillar_key']}#{hashlib.sha256(key).hexdigest()[:8]}"


# -- the data nodes, over ssh and through the endpoint ---------------------------


def ssh_command(cfg, node, request):
    ssh = cfg["ssh"]
    return ["ssh", "-i", ssh["key"], "-o", "BatchMode=yes", "-o", f"ConnectTimeout={ssh['connect_timeout']}",
            "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={ssh['known_hosts']}",
            "-o", "ServerAliveInterval=15", f"{ssh['user']}@{node['address']}", request]


def ssh_json(cfg, node, request):
    try:
        out = subprocess.run(ssh_command(cfg, node, request), capture_output=True, text=True, check=True,
                             timeout=cfg["ssh"]["command_timeout"])
        return json.loads(out.stdout)
    except (subprocess.SubprocessError, ValueError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        log(f"{node['name']}: '{request}' over ssh failed: {str(detail).strip()}")
        return None


def endpoint_sql(cfg, statement, timeout=10):
    """Rows of ``statement`` run through the DB endpoint (the VIP) as the
    archiver's account: it reaches the writer."""
    db = cfg["endpoint"]
    out = subprocess.run(["mariadb", f"--defaults-extra-file={db['option_file']}", "-h", db["host"],
                          "-P", str(db["port"]), "--connect-timeout=5", "-N", "-B", "-e", statement],
                         capture_output=True, text=True, check=True, timeout=timeout)
    return [line.split("\t") for line in out.stdout.splitlines()]


def writer_name(cfg):
    try:
        return endpoint_sql(cfg, "SELECT @@wsrep_node_name")[0][0]
    except (subprocess.SubprocessError, IndexError, OSError) as exc:
        log(f"the writer is unknown (the endpoint did not answer: {getattr(exc, 'stderr', exc)})")
        return None


# -- take -------------------------------------------------------------------------


def take(cfg, kind):
    store = pathlib.Path(cfg["store"])
    with locked(store / ".backup.lock"):
        for stale in (store / "backups").glob("*.part"):
            log(f"removing {stale.name}: a backup that never finished (the job was killed)")
            shutil.rmtree(stale, ignore_errors=True)
        nodes = {n["name"]: n for n in cfg["data_nodes"]}
        statuses = {name: ssh_json(cfg, node, "status") for name, node in nodes.items()}
        writer = writer_name(cfg)
        manifests, drills = read_store(cfg)
        cat = lemp_backup.catalogue(manifests, drills)
        try:
            plan = lemp_backup.plan_backup(cat, kind)
            picked = job.choose_node(cat, plan, statuses, writer, now())
            if "refused" in picked:
                raise lemp_backup.BackupError(picked["refused"])
        except lemp_backup.BackupError as exc:
            if kind != "incremental" or not cfg["incremental_falls_back_to_full"]:
                raise
            log(f"incremental refused ({exc}): taking a full backup instead")
            plan = lemp_backup.plan_backup(cat, "full")
            picked = job.choose_node(cat, plan, statuses, writer, now())
        choice = picked["choice"]
        log(f"backup node: {choice['reason']}")
        node = nodes[choice["node"]]
        started = now()
        bid = lemp_backup.backup_id(plan["kind"], node["name"], started)
        part = store / "backups" / f"{bid}.part"
        part.mkdir(parents=True)
        try:
            info = stream(cfg, node, plan, choice["desync"], part / STREAM_FILE)
            finished = now()
            after = ssh_json(cfg, node, "status")
            enc = cfg["encryption"]
            manifest = job.build_manifest(plan, node["name"], started, finished, info, [measure(part / STREAM_FILE)],
                                          {"tool": enc["tool"], "cipher": enc["cipher"], "key_id": key_id(cfg)},
                                          status=after, backup_id=bid)
            final = store / "backups" / bid
            os.replace(part, final)
            write_json(final / "manifest.json", manifest)  # last: a backup without it never finished
        except BaseException as exc:
            shutil.rmtree(part, ignore_errors=True)
            update_status(cfg, last_failure={"at": lemp_backup.format_time(now()), "kind": plan["kind"],
                                             "node": node["name"], "error": str(exc) or type(exc).__name__})
            raise
        finally:
            if choice["desync"]:
                # the second net: the wrapper resyncs in its own finally, but
                # a killed wrapper cannot
                log(f"{node['name']}: resync: {ssh_json(cfg, node, 'resync')}")
        log(f"backup {bid}: {manifest['size']} bytes, GTID {manifest['gtid'] or '-'}, "
            f"LSN {manifest['lsn']['from']}..{manifest['lsn']['to']}")
        update_status(cfg, last_backup={"id": bid, "kind": manifest["kind"], "node": manifest["node"],
                                        "finished": manifest["finished"], "size": manifest["size"]})
        print(json.dumps(manifest, indent=2))


def stream(cfg, node, plan, desync, target):
    """ssh -> (scanner) -> openssl enc -> target; the info files kept on the way."""
    request = f"stream {plan['kind']} {plan['from_lsn']} {'desync' if desync else 'nodesync'}"
    enc = cfg["encryption"]
    encrypt = subprocess.Popen(["openssl", "enc", "-e", f"-{enc['cipher']}", "-pbkdf2", "-iter", str(enc["iter"]),
                                "-salt", "-pass", f"file:{enc['key_file']}", "-out", str(target)],
                               stdin=subprocess.PIPE)
    source = subprocess.Popen(ssh_command(cfg, node, request), stdout=subprocess.PIPE)
    scanner = job.MbstreamScanner()
    try:
        for block in iter(lambda: source.stdout.read(BLOCK), b""):
            scanner.feed(block)
            encrypt.stdin.write(block)
        encrypt.stdin.close()
        if source.wait() != 0:
            raise RuntimeError(f"{node['name']}: the backup stream failed (ssh exit {source.returncode}); "
                               "its log is above")
        if encrypt.wait() != 0:
            raise RuntimeError(f"openssl enc failed (exit {encrypt.returncode})")
        return scanner.finish()
    finally:
        for proc in (source, encrypt):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# -- prune ----------------------------------------------------------------------


def prune(cfg):
    store = pathlib.Path(cfg["store"])
    with locked(store / ".backup.lock"):
        manifests, drills = read_store(cfg)
        cat = lemp_backup.catalogue(manifests, drills)
        result = lemp_backup.retention(cat, cfg["retention"], now())
        for bid in result["delete"]:
            log(f"prune: backup {bid} deleted: {result['reasons'][bid]}")
            shutil.rmtree(store / "backups" / bid, ignore_errors=True)
        for bid in result["keep"]:
            log(f"prune: backup {bid} kept: {result['reasons'][bid]}")
        # binlogs: only in the archive of the cluster the kept backups belong to
        clusters = {cat["backups"][b]["galera_position"].split(":")[0] for b in result["keep"] if b in cat["backups"]}
        keep_from = (result["binlogs"] or {}).get("keep_from_seq")
        for index_path in sorted((store / "binlogs").glob("*/index.json")):
            uuid = index_path.parent.name
            if uuid not in clusters:
                log(f"prune: binlogs of cluster {uuid} kept: no kept backup is of that cluster (remove by hand)")
                continue
            index = json.loads(index_path.read_text())
            for name in lemp_backup.binlogs_to_prune(index, keep_from):
                log(f"prune: binlog {uuid}/{name} deleted: every transaction in it is at or before "
                    f"GTID seq {keep_from}, the oldest kept backup's")
                with contextlib.suppress(FileNotFoundError):
                    (index_path.parent / name).unlink()
        print(json.dumps({"keep": result["keep"], "delete": result["delete"], "binlogs": result["binlogs"]}))


# -- list / status -----------------------------------------------------------------


def listing(cfg):
    manifests, drills = read_store(cfg)
    store = pathlib.Path(cfg["store"])
    indexes = {}
    for path in sorted((store / "binlogs").glob("*/index.json")):
        with contextlib.suppress(OSError, ValueError):
            indexes[path.parent.name] = json.loads(path.read_text())
    status_path = store / "status.json"
    status = json.loads(status_path.read_text()) if status_path.exists() else {}
    print(json.dumps({"manifests": manifests, "drills": drills, "binlog_indexes": indexes, "status": status,
                      "now": lemp_backup.format_time(now())}))


# -- the binlog archiver ----------------------------------------------------------------


class Archiver:
    """Follows the writer through the DB endpoint with mariadb-binlog
    --raw --stop-never; restarts it (from lemp_backup_job.archive_start) when
    it exits or the writer changes; keeps the index and complete_until."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.root = pathlib.Path(cfg["store"]) / "binlogs"
        self.proc = None
        self.node = None
        self.cluster = None
        self.parsed = {}       # path -> ((size, mtime), parse)
        self.complete_until = None
        self.gap = None
        self.last_error, self.last_logged = None, 0.0

    def writer(self):
        """{node, cluster, synced, file, pos, at} of the writer behind the endpoint."""
        at = now()
        rows = endpoint_sql(self.cfg, (
            "SELECT @@wsrep_node_name, "
            "(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_CLUSTER_STATE_UUID'), "
            "(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_CLUSTER_STATUS'), "
            "(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_LOCAL_STATE'); "
            "SHOW MASTER STATUS"))
        node, cluster, status, state = rows[0][:4]
        return {"node": node, "cluster": cluster.lower(), "synced": status == "Primary" and state == "4",
                "file": rows[1][0] if len(rows) > 1 else None, "pos": int(rows[1][1]) if len(rows) > 1 else 0,
                "at": at}

    def server_logs(self):
        names = [row[0] for row in endpoint_sql(self.cfg, "SHOW BINARY LOGS")]
        names = [n for n in names if lemp_backup.FILE_RE.match(n)]
        query = "; ".join(f"SELECT BINLOG_GTID_POS('{n}', 4)" for n in names)
        starts = [row[0] if row else "" for row in endpoint_sql(self.cfg, query)] if query else []
        return [(name, lemp_backup.gtid_seq("" if start in ("", "NULL") else start, self.cfg["domain"]))
                for name, start in zip(names, starts)]

    def entries(self, cluster):
        entries = []
        for path in sorted((self.root / cluster).glob("*/*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            stat = path.stat()
            key = (stat.st_size, stat.st_mtime_ns)
            cached = self.parsed.get(path)
            if not cached or cached[0] != key:
                out = subprocess.run(["mariadb-binlog", "--base64-output=decode-rows", str(path)], capture_output=True,
                                     text=True, env=dict(os.environ, TZ="UTC"))
                cached = (key, job.parse_binlog_dump(out.stdout))
                self.parsed[path] = cached
            writing = (self.proc is not None and self.proc.poll() is None and path.parent.name == self.node
                       and path.name == sorted(p.name for p in path.parent.iterdir() if not p.name.startswith("."))[-1])
            entries.append(dict(cached[1], name=f"{path.parent.name}/{path.name}", node=path.parent.name,
                                size=stat.st_size, complete=not writing))
        return entries

    def start(self, writer):
        directory = self.root / writer["cluster"] / writer["node"]
        directory.mkdir(parents=True, exist_ok=True)
        local = [p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")]
        begin = job.archive_start(self.server_logs(), local, job.archived_seq(self.entries(writer["cluster"]),
                                                                              self.cfg["domain"]),
                                  same_node=writer["node"] == self.node and writer["cluster"] == self.cluster)
        log(f"archiver: following {writer['node']} (cluster {writer['cluster']}) from {begin['file']}: "
            f"{begin['reason']}")
        if begin["gap"]:
            self.gap = dict(begin["gap"], at=lemp_backup.format_time(now()), node=writer["node"])
            log(f"archiver: GAP: {begin['reason']}")
        db = self.cfg["endpoint"]
        self.proc = subprocess.Popen(
            ["mariadb-binlog", f"--defaults-extra-file={db['option_file']}", "--read-from-remote-server", "--raw",
             "--stop-never", f"--stop-never-slave-server-id={self.cfg['archive']['server_id']}",
             f"--host={db['host']}", f"--port={db['port']}", f"--result-file={directory}/", begin["file"]],
            env=dict(os.environ, TZ="UTC"))
        if writer["cluster"] != self.cluster:
            self.complete_until = None
        self.node, self.cluster = writer["node"], writer["cluster"]

    def stop(self, why):
        if self.proc is not None and self.proc.poll() is None:
            log(f"archiver: stopping mariadb-binlog: {why}")
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cycle(self):
        writer = self.writer()
        if not writer["synced"]:
            self.stop(f"{writer['node']} is not Synced in a Primary component")
            return
        if writer["node"] != self.node or writer["cluster"] != self.cluster:
            self.stop(f"the endpoint now reaches {writer['node']} (was {self.node})")
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                log(f"archiver: mariadb-binlog exited ({self.proc.returncode}); restarting")
            self.start(writer)
            return
        local = self.root / self.cluster / self.node / (writer["file"] or "-")
        size = local.stat().st_size if local.exists() else None
        if job.caught_up(size, writer["file"], writer["pos"], local.name):
            self.complete_until = writer["at"]
        index = job.binlog_index(self.cluster, self.entries(self.cluster), self.complete_until)
        write_json(self.root / self.cluster / "index.json", index)
        lag = (now() - self.complete_until).total_seconds() if self.complete_until else None
        update_status(self.cfg, archive={"node": self.node, "cluster": self.cluster, "gap": self.gap,
                                         "complete_until": index["complete_until"], "lag_seconds": lag})

    def run(self):
        self.root.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                self.cycle()
                self.last_error = None
            except Exception as exc:  # keep following: systemd restarts us only if we die
                message = f"archiver: {type(exc).__name__}: {getattr(exc, 'stderr', None) or exc}"
                # once per minute while the same error lasts (a cluster not formed yet, a long outage)
                if message != self.last_error or time.monotonic() - self.last_logged > 60:
                    log(message)
                    self.last_error, self.last_logged = message, time.monotonic()
                if self.proc is not None and self.proc.poll() is not None:
                    self.proc = None
            time.sleep(self.cfg["archive"]["poll_seconds"])


def main(argv):
    if len(argv) < 2 or argv[1] not in ("take", "prune", "list", "archive", "status") or \
            (argv[1] == "take" and (len(argv) != 3 or argv[2] not in lemp_backup.KINDS)):
        print(__doc__, file=sys.stderr)
        return 2
    cfg = load_config()
    # systemctl stop/kill: run the finally blocks (resync the node, remove
    # the unfinished backup) instead of dying where we stand
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(f"lemp-backup {argv[1]}: stopped (signal {signum})"))
    try:
        if argv[1] == "take":
            take(cfg, argv[2])
        elif argv[1] == "prune":
            prune(cfg)
        elif argv[1] == "list":
            listing(cfg)
        elif argv[1] == "status":
            path = pathlib.Path(cfg["store"]) / "status.json"
            print(path.read_text() if path.exists() else "{}")
        else:
            Archiver(cfg).run()
    except (lemp_backup.BackupError, job.StreamError, ValueError, RuntimeError) as exc:
        log(f"lemp-backup {argv[1]}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
