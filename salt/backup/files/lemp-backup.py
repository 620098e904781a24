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
    lemp-backup drill [ID]              restore the newest chain (or ID's) into a scratch mariadbd and check it
    lemp-backup send NODE STAMP CLUSTER IDS [BINLOG...]
                                        (orch.restore) decrypt IDS (comma-separated) and send them and the
                                        archived binlogs to NODE's staging folder STAMP
    lemp-backup restored STAMP CLUSTER  (orch.restore) after the bootstrap: the old history's backups and
                                        binlogs are set apart, the archive starts anew
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
import lemp_restore  # noqa: E402

CONFIG = pathlib.Path(os.environ.get("LEMP_BACKUP_CONFIG", "/etc/lemp-backup/backup.json"))
STREAM_FILE = "backup.mbstream.enc"
BLOCK = 1 << 20


def log(message):
    print(message, file=sys.stderr, flush=True)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def load_config():
    return json.loads(CONFIG.read_text())


def write_json(path, data, mode=None):
    """Atomically: a reader sees the old file or the new one, never half
    (with ``mode``, already with it)."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        if mode is not None:
            os.fchmod(handle.fileno(), mode)
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
    """status.json, then the file the Zabbix agent reads (lemp_backup.
    monitoring_record): both under one lock, so the monitoring file is
    always the projection of the newest status."""
    store = pathlib.Path(cfg["store"])
    with locked(store / ".status.lock"):
        path = store / "status.json"
        status = json.loads(path.read_text()) if path.exists() else {}
        status.update(parts)
        at = now()
        status.setdefault("since", lemp_backup.format_time(at))  # "nothing yet" counts from here
        status["updated"] = lemp_backup.format_time(at)
        write_json(path, status)
        monitoring = cfg.get("monitoring") or {}
        if monitoring.get("status_file"):
            # 0640 in the agent's setgid group directory (salt/backup/config.sls).
            # Never fails a backup or the archiver: a file not rewritten is
            # what Zabbix alerts on ("Backup status is stale or unreadable").
            try:
                write_json(monitoring["status_file"], lemp_backup.monitoring_record(status, at), mode=0o640)
            except OSError as exc:
                log(f"monitoring file {monitoring['status_file']} not written: {exc} (state.apply backup)")


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
    # a backup of a history a restore undid counts as failed, whatever a drill said
    for path in sorted((store / "superseded").glob("*.json")):
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


def ssh_json(cfg, node, request, timeout=None):
    try:
        out = subprocess.run(ssh_command(cfg, node, request), capture_output=True, text=True, check=True,
                             timeout=timeout or cfg["ssh"]["command_timeout"])
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
            info = with_archived_gtid(cfg, store, node["name"], after, info)
            enc = cfg["encryption"]
            manifest = job.build_manifest(plan, node["name"], started, finished, info, [measure(part / STREAM_FILE)],
                                          {"tool": enc["tool"], "cipher": enc["cipher"], "key_id": key_id(cfg)},
                                          status=after, backup_id=bid)
            if choice["desync"] or cfg["drill"].get("check_on_writer", True):
                # the drill's reference: rows and checksums at one GTID, read
                # under a read lock (on the writer, writes wait meanwhile:
                # backup:lookup:drill:check_on_writer)
                measured = ssh_json(cfg, node, "check desync" if choice["desync"] else "check nodesync",
                                    timeout=cfg["drill"]["check_timeout"])
                if measured and not lemp_backup.validate_manifest(dict(manifest, check=measured)):
                    manifest["check"] = measured
                else:
                    log(f"{node['name']}: no check for the drill ({measured!r}); the drill will only read the tables")
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


def with_archived_gtid(cfg, store, node, status, info, wait=60):
    """The backup's GTID, read at its binlog file and position.

    mariabackup writes @@gtid_current_pos into xtrabackup_binlog_info, which
    in Galera is not the node's binlog position: it is empty on a node whose
    binlog holds only GTIDs other nodes originated, and stale (the last GTID
    this node once originated) on one that was the writer before (both seen
    in the lab; the stale one made a restore replay transactions already in
    the backup). The binlog file and position are right: the GTID at that
    point is read from the archive's copy of the node's binlog (the archive
    follows the writer, where backups run), waiting for the archiver to have
    it. Returns ``info`` with that GTID, or unchanged (logged) when the
    archive does not hold that file."""
    try:
        binlog = job.parse_binlog_info(info.get("xtrabackup_binlog_info", ""))
    except ValueError:
        return info
    cluster = (status or {}).get("cluster_state_uuid", "").lower()
    path = store / "binlogs" / cluster / node / binlog["file"]
    deadline = time.monotonic() + wait
    while not (path.exists() and path.stat().st_size >= binlog["pos"]):
        if time.monotonic() > deadline or not cluster:
            log(f"{node}: no GTID in xtrabackup_binlog_info and the archive has no {binlog['file']} up to "
                f"{binlog['pos']}: the backup restores to its own point only (no binlog replay after it)")
            return info
        time.sleep(1)
    out = subprocess.run(["mariadb-binlog", "--base64-output=never", f"--stop-position={binlog['pos']}", str(path)],
                         capture_output=True, text=True, env=dict(os.environ, TZ="UTC"))
    gtid = job.parse_binlog_dump(out.stdout)["end_gtid"] if out.returncode == 0 else ""
    if not gtid:
        log(f"{node}: no GTID at {binlog['file']}:{binlog['pos']} in the archive ({out.stderr.strip()[-300:]})")
        return info
    log(f"{node}: GTID {gtid} at {binlog['file']}:{binlog['pos']}, read from the archive "
        f"(xtrabackup_binlog_info said {binlog['gtid'] or 'nothing'})")
    return dict(info, xtrabackup_binlog_info=f"{binlog['file']}\t{binlog['pos']}\t{gtid}")


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
        self.parsed = {}       # path -> what the last read left: lemp_backup_job.binlog_read_from's ``cached``
        self.complete_until = None
        self.seen = []         # [(time, seq)]: looks at the writer the archive has not reached yet
        self.rotated_at = None
        self.copy_mark, self.grew_at = None, None   # (newest file, size) of the copy, and when it last changed
        self.gap = None
        self.last_error, self.last_logged = None, 0.0

    def writer(self):
        """{node, cluster, synced, seq, file, pos, at} of the writer behind
        the endpoint: seq is the highest GTID seq of the cluster's domain in
        its binlog, file and pos its SHOW MASTER STATUS."""
        at = now()
        rows = endpoint_sql(self.cfg, (
            "SELECT @@wsrep_node_name, "
            "(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_CLUSTER_STATE_UUID'), "
            "(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_CLUSTER_STATUS'), "
            "(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_LOCAL_STATE'), "
            "@@gtid_binlog_pos; "
            "SHOW MASTER STATUS"))
        node, cluster, status, state, position = (rows[0] + [""] * 5)[:5]
        return {"node": node, "cluster": cluster.lower(), "synced": status == "Primary" and state == "4",
                "seq": lemp_backup.gtid_seq("" if position in ("", "NULL") else position, self.cfg["domain"]),
                "file": rows[1][0] if len(rows) > 1 else None, "pos": int(rows[1][1]) if len(rows) > 1 else 0,
                "at": at}

    def server_logs(self):
        names = [row[0] for row in endpoint_sql(self.cfg, "SHOW BINARY LOGS")]
        names = [n for n in names if lemp_backup.FILE_RE.match(n)]
        query = "; ".join(f"SELECT BINLOG_GTID_POS('{n}', 4)" for n in names)
        starts = [row[0] if row else "" for row in endpoint_sql(self.cfg, query)] if query else []
        return [(name, lemp_backup.gtid_seq("" if start in ("", "NULL") else start, self.cfg["domain"]))
                for name, start in zip(names, starts)]

    def newest_file(self, directory):
        names = sorted(p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")) \
            if directory.is_dir() else []
        return names[-1] if names else None

    def read_binlog(self, path, previous, position):
        """(parse, ok): ``TZ=UTC mariadb-binlog --base64-output=decode-rows``
        of ``path`` from ``position``, streamed line by line into
        parse_binlog_dump (continuing ``previous``): memory stays flat however
        big the file, and each poll reads only what the file gained. ok: it
        exited 0 (the file being written usually ends inside an event, and
        mariadb-binlog then fails: the parse keeps what it read whole)."""
        # stderr holds only "read error" for a cut-off last event: not worth a pipe that could fill
        with subprocess.Popen(["mariadb-binlog", "--base64-output=decode-rows", f"--start-position={position}",
                               str(path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, encoding="utf-8",
                              errors="replace", env=dict(os.environ, TZ="UTC")) as proc:
            try:
                parse = job.parse_binlog_dump(proc.stdout, previous)
            finally:
                proc.stdout.close()  # a parse error must not leave mariadb-binlog blocked on a full pipe
        return parse, proc.returncode == 0

    def entries(self, cluster):
        entries = []
        newest = {}
        for path in sorted((self.root / cluster).glob("*/*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            stat = path.stat()
            identity = (stat.st_dev, stat.st_ino)
            cached = self.parsed.get(path)
            todo = job.binlog_read_from(cached, identity, stat.st_size, stat.st_mtime_ns)
            if todo is not None:
                parse, ok = self.read_binlog(path, *todo)
                cached = {"identity": identity, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "parse": parse,
                          "ok": ok}
                self.parsed[path] = cached
            if path.parent not in newest:
                newest[path.parent] = self.newest_file(path.parent)
            writing = (self.proc is not None and self.proc.poll() is None and path.parent.name == self.node
                       and path.name == newest[path.parent])
            entries.append(dict(cached["parse"], name=f"{path.parent.name}/{path.name}", node=path.parent.name,
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
            self.seen = []
        self.node, self.cluster = writer["node"], writer["cluster"]
        self.copy_mark, self.grew_at = None, now()

    def rotate(self, held_since):
        """Ask the writer to start a new binlog file (its forced command,
        ``rotate-binlog``): mariadb-binlog then closes the file it writes,
        and what it held in memory reaches the store."""
        self.rotated_at = now()
        node = next((n for n in self.cfg["data_nodes"] if n["name"] == self.node), None)
        if node is None:
            log(f"archiver: {self.node} is not a data node of the configuration; no binlog rotation asked")
            return
        answer = ssh_json(self.cfg, node, "rotate-binlog", timeout=15)
        waited = (self.rotated_at - held_since).total_seconds()
        log(f"archiver: transactions committed {waited:.0f} s ago were not archived yet (mariadb-binlog buffers "
            f"the newest events); asked {self.node} to rotate its binlog: {answer}")

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
        entries = self.entries(self.cluster)
        self.seen.append((writer["at"], writer["seq"]))
        progress = job.archive_progress(self.seen, job.archived_seq(entries, self.cfg["domain"]))
        self.seen = progress["pending"]
        if progress["complete_until"]:
            self.complete_until = progress["complete_until"]
        directory = self.root / self.cluster / self.node
        local = self.newest_file(directory)
        size = (directory / local).stat().st_size if local else None
        if (local, size) != self.copy_mark:
            self.copy_mark, self.grew_at = (local, size), writer["at"]
        if job.stream_stalled(progress["held_since"], writer["at"], self.grew_at,
                              self.cfg["archive"]["stall_restart_seconds"]):
            # the next cycle starts it again, from the file it was on
            self.stop(f"transactions committed {(writer['at'] - progress['held_since']).total_seconds():.0f} s ago "
                      f"are not archived and the copy has not grown for "
                      f"{(writer['at'] - self.grew_at).total_seconds():.0f} s: the stream looks dead")
            return
        tail = job.archive_tail(writer["file"], writer["pos"], local, size)
        if job.rotation_due(progress["held_since"], writer["at"], self.rotated_at,
                            self.cfg["archive"]["rotate_after_seconds"],
                            self.cfg["archive"]["rotate_min_interval_seconds"], tail):
            self.rotate(progress["held_since"])
        index = job.binlog_index(self.cluster, entries, self.complete_until)
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


# -- restore (orch.restore) ---------------------------------------------------------


def send(cfg, node_name, stamp, cluster, ids, binlogs):
    """Check each backup against its manifest, decrypt it here (the key
    never leaves this machine) and stream it to the node's ``receive``; then
    the archived binlogs the plan replays. Progress on stdout."""
    store = pathlib.Path(cfg["store"])
    nodes = {n["name"]: n for n in cfg["data_nodes"]}
    if node_name not in nodes:
        raise ValueError(f"{node_name} is not a data node ({', '.join(sorted(nodes))})")
    node = nodes[node_name]
    lemp_restore.check_stamp(stamp)
    manifests, drills = read_store(cfg)
    cat = lemp_backup.catalogue(manifests, drills)
    for bid in ids:
        if bid not in cat["backups"]:
            raise ValueError(f"backup {bid} has no valid manifest in {store / 'backups'}")
    enc = cfg["encryption"]
    for number, bid in enumerate(ids, 1):
        manifest = cat["backups"][bid]
        folder = store / "backups" / bid
        problems = lemp_backup.check_files(manifest, {f.name: measure(f) for f in folder.iterdir() if f.is_file()})
        if problems:
            raise ValueError("; ".join(problems))
        started = time.monotonic()
        print(f"[{number}/{len(ids)}] {bid}: {manifest['size']} bytes to {node_name}", flush=True)
        decrypt = subprocess.Popen(["openssl", "enc", "-d", f"-{enc['cipher']}", "-pbkdf2", "-iter", str(enc["iter"]),
                                    "-pass", f"file:{enc['key_file']}", "-in", str(folder / STREAM_FILE)],
                                   stdout=subprocess.PIPE)
        sent = subprocess.run(ssh_command(cfg, node, f"receive {stamp} {bid}"), stdin=decrypt.stdout,
                              capture_output=True, text=True)
        decrypt.stdout.close()
        if decrypt.wait() != 0 or sent.returncode != 0:
            raise RuntimeError(f"sending {bid} to {node_name} failed (openssl {decrypt.returncode}, ssh "
                               f"{sent.returncode}): {sent.stderr.strip()}")
        print(f"[{number}/{len(ids)}] {bid}: received in {time.monotonic() - started:.0f} s: {sent.stdout.strip()}",
              flush=True)
    root = store / "binlogs" / cluster
    for number, name in enumerate(binlogs, 1):
        if not lemp_backup.BINLOG_RE.match(name) or ".." in name.split("/"):
            raise ValueError(f"{name!r} is not an archived binlog name")
        with open(root / name, "rb") as handle:
            sent = subprocess.run(ssh_command(cfg, node, f"receive-binlog {stamp} {name}"), stdin=handle,
                                  capture_output=True, text=True)
        if sent.returncode != 0:
            raise RuntimeError(f"sending binlog {name} to {node_name} failed: {sent.stderr.strip()}")
        print(f"binlog {number}/{len(binlogs)}: {name} sent", flush=True)


def restored(cfg, stamp, old_cluster):
    """After orch.restore bootstrapped the restored node (the archiver is
    stopped, the web tier in maintenance: nothing writes): the restored
    cluster will write new transactions under GTIDs the old history already
    used. So the backups of the old cluster beyond the restored GTID are
    marked superseded (never restored again), and the old cluster's binlog
    archive is moved apart (kept, for the record): the archiver starts anew."""
    store = pathlib.Path(cfg["store"])
    query = ("SELECT @@gtid_binlog_pos, (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
             "WHERE VARIABLE_NAME='WSREP_CLUSTER_STATE_UUID')")
    # the endpoint sends to the restored node once its health check says Synced (a few checks)
    deadline = time.monotonic() + 120
    while True:
        try:
            rows = endpoint_sql(cfg, query)
            break
        except (subprocess.SubprocessError, OSError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the DB endpoint does not reach the restored node: {getattr(exc, 'stderr', exc)}")
            time.sleep(2)
    gtid, new_cluster = rows[0][0], rows[0][1].lower()
    seq = lemp_backup.gtid_seq(gtid, cfg["domain"])
    with locked(store / ".backup.lock"):
        manifests, drills = read_store(cfg)
        cat = lemp_backup.catalogue(manifests, drills)
        marked = lemp_backup.superseded(cat, old_cluster, seq, cfg["domain"], f" on {stamp}")
        (store / "superseded").mkdir(exist_ok=True)
        for bid, why in marked.items():
            write_json(store / "superseded" / f"{bid}.json", {"ok": False, "at": lemp_backup.format_time(now()),
                                                             "detail": why})
            log(f"restored: backup {bid}: {why}")
        old = store / "binlogs" / old_cluster
        moved = None
        if old.exists():
            moved = old.with_name(f"{old_cluster}.before-restore-{stamp}")
            os.replace(old, moved)
            log(f"restored: the binlogs of the old history are kept apart in {moved}")
    update_status(cfg, archive={"node": None, "cluster": new_cluster, "gap": None, "complete_until": None,
                                "lag_seconds": None}, last_restore={"stamp": stamp, "gtid": gtid,
                                                                    "cluster": new_cluster, "superseded": sorted(marked)})
    print(json.dumps({"gtid": gtid, "cluster": new_cluster, "superseded": sorted(marked),
                      "binlogs_moved_to": str(moved) if moved else None}))


# -- the drill ------------------------------------------------------------------------


def scratch_sql(socket, statement, timeout=3600):
    out = subprocess.run(["mariadb", f"--socket={socket}", "-N", "-B", "-e", statement], capture_output=True,
                         text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{statement[:200]}: {out.stderr.strip()}")
    return [line.split("\t") for line in out.stdout.splitlines()]


class DrillFailed(Exception):
    def __init__(self, step, problems, backup=None, blame=True):
        super().__init__(f"{step}: {'; '.join(problems)}")
        self.step, self.problems, self.backup, self.blame = step, list(problems), backup, blame


def drill(cfg, backup=None):
    """Restore a chain into a scratch mariadbd here and check it
    (docs/backups.md, The drill). Writes drills/<id>.json and status.json's
    ``drill`` (and so the monitoring file, monitoring.status_file); exits non-zero,
    with the reason in the journal, when the chain does not restore exactly."""
    store = pathlib.Path(cfg["store"])
    settings = cfg["drill"]
    started = now()
    with locked(store / ".drill.lock", wait=False):
        manifests, drills = read_store(cfg)
        cat = lemp_backup.catalogue(manifests, drills)
        status_path = store / "status.json"
        archive = (json.loads(status_path.read_text()) if status_path.exists() else {}).get("archive") or {}
        target, checked, failure = None, {}, None
        scratch = store / "scratch" / started.strftime("%Y%m%dT%H%M%SZ")
        server = None
        try:
            try:
                target = lemp_backup.drill_target(cat, backup)
            except lemp_backup.BackupError as exc:
                raise DrillFailed("choose", [str(exc)], blame=False)
            log(f"drill: {' -> '.join(target['apply'])}")
            for bid in target["apply"]:  # a flipped byte fails here, before anything is decrypted
                folder = store / "backups" / bid
                found = {f.name: measure(f) for f in folder.iterdir() if f.is_file()} if folder.is_dir() else {}
                problems = lemp_backup.check_files(cat["backups"][bid], found)
                if problems:
                    raise DrillFailed("files", problems, bid)
            scratch.mkdir(parents=True, mode=0o700)
            enc = cfg["encryption"]
            for bid in target["apply"]:
                (scratch / bid).mkdir(mode=0o700)
                decrypt = subprocess.Popen(
                    ["openssl", "enc", "-d", f"-{enc['cipher']}", "-pbkdf2", "-iter", str(enc["iter"]),
                     "-pass", f"file:{enc['key_file']}", "-in", str(store / "backups" / bid / STREAM_FILE)],
                    stdout=subprocess.PIPE)
                extract = subprocess.run(["mbstream", "-x", "-C", str(scratch / bid)], stdin=decrypt.stdout,
                                         capture_output=True, text=True)
                decrypt.stdout.close()
                if decrypt.wait() != 0 or extract.returncode != 0:
                    raise DrillFailed("decrypt", [f"{bid}: openssl {decrypt.returncode}, mbstream "
                                                  f"{extract.returncode}: {extract.stderr.strip()[-1000:]}"], bid)
                log(f"drill: {bid} decrypted and extracted")
            for args, bid in zip(lemp_restore.prepare_commands(str(scratch), target["apply"]), target["apply"]):
                res = subprocess.run(args, capture_output=True, text=True)
                if res.returncode != 0:
                    raise DrillFailed("prepare", [f"{bid}: {res.stderr.strip()[-2000:]}"], bid)
                log(f"drill: {bid} prepared")
            datadir, run_dir = scratch / target["apply"][0], scratch / "run"
            run_dir.mkdir(mode=0o700)
            socket = str(run_dir / "mysqld.sock")
            # without NOTIFY_SOCKET: run from salt-minion (lemp_backup.drill ID), mariadbd's
            # sd_notify STOPPING=1 would make systemd stop the minion
            server = subprocess.Popen(job.scratch_server_args(str(datadir), str(run_dir), settings["buffer_pool"]),
                                      env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"})
            deadline = time.monotonic() + settings["start_timeout"]
            while subprocess.run(["mariadb-admin", f"--socket={socket}", "ping"], capture_output=True).returncode:
                if server.poll() is not None or time.monotonic() > deadline:
                    errors = (run_dir / "mysqld.err").read_text(errors="replace") if (run_dir / "mysqld.err").exists() else ""
                    raise DrillFailed("start", [f"the scratch server did not start: {errors[-2000:]}"],
                                      target["backup"])
                time.sleep(1)
            manifest = cat["backups"][target["backup"]]
            expected = manifest.get("check")
            if expected:
                try:
                    indexes = {p.parent.name: json.loads(p.read_text())
                               for p in (store / "binlogs").glob("*/index.json")}
                    index = lemp_backup.pick_index(indexes, cat, target["backup"])
                    plan = lemp_backup.plan_restore(cat, index, target["backup"], lemp_backup.gtid_in(
                        expected["gtid"], cfg["domain"]) or "latest", now())
                except lemp_backup.BackupError as exc:
                    # the archive, not the backup: the backup is not blamed
                    raise DrillFailed("replay", [f"cannot replay to the check's GTID {expected['gtid']}: {exc}"],
                                      blame=False)
                if plan["apply"] != target["apply"]:
                    raise DrillFailed("replay", [f"the check's GTID {expected['gtid']} calls for backups "
                                                 f"{plan['apply']}, not the chain prepared"], blame=False)
                cluster_dir = store / "binlogs" / plan["cluster"]
                for entry in plan["binlogs"]:
                    reader = subprocess.Popen(lemp_backup.binlog_replay_args(entry, str(cluster_dir / entry["file"])),
                                              stdout=subprocess.PIPE, env=dict(os.environ, TZ="UTC"))
                    client = subprocess.run(["mariadb", f"--socket={socket}", "--binary-mode"], stdin=reader.stdout,
                                            capture_output=True, text=True)
                    reader.stdout.close()
                    if reader.wait() != 0 or client.returncode != 0:
                        raise DrillFailed("replay", [f"{entry['file']}: {client.stderr.strip()[-1000:]}"],
                                          blame=False)
                measured = job.scratch_measure(lambda q: scratch_sql(socket, q))
                tables = sorted(set(expected.get("rows", {})) | set(measured["rows"]))
                problems = lemp_backup.compare_check(expected, measured)
                checked = {"mode": f"rows and checksums at GTID {expected['gtid']}", "tables": len(tables),
                           "rows": sum(measured["rows"].values())}
                if problems:
                    raise DrillFailed("check", problems, target["backup"])
            else:
                rows = scratch_sql(socket, job.USER_TABLES_SQL)
                tables = [f"{d}.{t}" for d, t in rows]
                bad = [f"{r[0]}: {r[3]}" for name in tables for r in scratch_sql(socket, job.check_table_sql(name))
                       if r[2].lower() in ("error", "status") and r[3].lower() != "ok"]
                measured = job.scratch_measure(lambda q: scratch_sql(socket, q))
                checked = {"mode": "CHECK TABLE (the manifest has no check: taken on the writer)",
                           "tables": len(tables), "rows": sum(measured["rows"].values())}
                if bad:
                    raise DrillFailed("check", bad, target["backup"])
        except DrillFailed as exc:
            failure = exc
        except (OSError, subprocess.SubprocessError, RuntimeError, ValueError) as exc:
            failure = DrillFailed("run", [f"{type(exc).__name__}: {exc}"], blame=False)
        finally:
            if server is not None and server.poll() is None:
                subprocess.run(["mariadb-admin", f"--socket={scratch / 'run' / 'mysqld.sock'}", "shutdown"],
                               capture_output=True)
                try:
                    server.wait(120)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
            shutil.rmtree(scratch, ignore_errors=True)
        record = lemp_backup.drill_record(failure is None, target, cat, now(), archive,
                                          failure.problems if failure else (), checked, started,
                                          failure.step if failure else None)
        if target and (failure is None or failure.blame):
            blamed = (failure.backup if failure else None) or target["backup"]
            write_json(store / "drills" / f"{blamed}.json",
                       {"ok": failure is None, "at": record["at"],
                        "detail": str(failure) if failure else f"restored and checked ({checked.get('mode')})"})
        # the monitoring file follows (update_status); the backup a passed
        # drill restored is the newest proven restorable until the next pass
        passed = {"drill_passed": {"backup": record["backup"], "finished": record["finished"], "at": record["at"]}}
        update_status(cfg, drill=record, **(passed if failure is None else {}))
        print(json.dumps(record, indent=2))
        if failure:
            log(f"DRILL FAILED at {failure.step}: {'; '.join(failure.problems)}")
            return 1
        log(f"drill passed: {target['backup']} ({checked.get('mode')}; {checked.get('tables')} tables)")
        return 0


def main(argv):
    if len(argv) < 2 or argv[1] not in ("take", "prune", "list", "archive", "status", "drill", "send", "restored") \
            or (argv[1] == "take" and (len(argv) != 3 or argv[2] not in lemp_backup.KINDS)) \
            or (argv[1] == "drill" and len(argv) > 3) or (argv[1] == "send" and len(argv) < 6) \
            or (argv[1] == "restored" and len(argv) != 4):
        print(__doc__, file=sys.stderr)
        return 2
    cfg = load_config()
    # systemctl stop/kill: run the finally blocks (resync the node, remove
    # the unfinished backup) instead of dying where we stand
    # the archiver's normal stop (orch.restore, systemctl stop) is not a
    # failure: it exits 0, so its unit is not left "failed"
    signal.signal(signal.SIGTERM, lambda signum, _frame: (print(f"lemp-backup {argv[1]}: stopped (signal {signum})",
                                                                 file=sys.stderr),
                                                           sys.exit(0 if argv[1] == "archive" else 1)))
    try:
        if argv[1] == "take":
            take(cfg, argv[2])
        elif argv[1] == "prune":
            prune(cfg)
        elif argv[1] == "list":
            listing(cfg)
        elif argv[1] == "drill":
            return drill(cfg, argv[2] if len(argv) > 2 else None)
        elif argv[1] == "send":
            send(cfg, argv[2], argv[3], argv[4], [b for b in argv[5].split(",") if b], argv[6:])
        elif argv[1] == "restored":
            restored(cfg, argv[2], argv[3])
        elif argv[1] == "status":
            path = pathlib.Path(cfg["store"]) / "status.json"
            print(path.read_text() if path.exists() else "{}")
        else:
            Archiver(cfg).run()
    except BlockingIOError:
        log(f"lemp-backup {argv[1]}: another drill runs")
        return 1
    except (lemp_backup.BackupError, job.StreamError, ValueError, RuntimeError, OSError) as exc:
        log(f"lemp-backup {argv[1]}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
