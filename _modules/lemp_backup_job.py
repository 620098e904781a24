"""
The backup machinery's pure parts: what the tools on arb1 read and write.

Issue #11, docs/backups.md. ``_modules/lemp_backup.py`` decides (catalogue,
retention, restore plans); this module turns what the programs say into its
inputs, so that the job on arb1 (salt/backup/files/lemp-backup.py) only runs
commands and moves bytes:

* ``MbstreamScanner``: reads mariabackup's mbstream as it passes through
  arb1 (before encryption) and keeps the small info files (LSNs, binlog
  position and GTID, Galera position), so nothing is left on a db node;
* ``parse_checkpoints``, ``parse_binlog_info``, ``parse_galera_info`` and
  ``build_manifest``: those files -> a manifest lemp_backup.check_manifest
  accepts;
* ``parse_binlog_dump``: ``mariadb-binlog`` text of one archived file -> its
  GTID range and event times, for the binlog index;
* ``archive_start``: where the archiver resumes on (maybe another) writer
  without a gap, or the gap it cannot avoid;
* ``binlog_index``: the index lemp_backup.validate_binlog_index accepts.

Deployed with lemp_backup.py to /usr/local/lib/lemp-backup on arb1 (state
backup.package); importable without Salt; unit-tested in
tests/unit/test_backup_job.py.
"""

import datetime
import json
import re

# The file beside this one, wherever this one runs: Salt's loader puts the
# module's folder (extmods/modules) on sys.path while it loads it, arb1's
# lemp-backup puts /usr/local/lib/lemp-backup there, and tests/conftest.py
# _modules (tests/unit/test_salt_loader.py checks the loader's case).
import lemp_backup

try:  # Salt's error shows in the render as it is; the unit tests run without Salt
    from salt.exceptions import CommandExecutionError as SettingsError
except ImportError:  # pragma: no cover
    SettingsError = ValueError

__virtualname__ = "lemp_backup_job"

MAGIC = b"XBSTCK01"
# The files of a backup the manifest is made from (mariabackup writes them at
# the top of the stream's tree, at the end of the backup).
INFO_FILES = ("xtrabackup_checkpoints", "xtrabackup_binlog_info", "xtrabackup_galera_info", "xtrabackup_info")
INFO_MAX = 64 * 1024  # an info file larger than this is not one


def __virtual__():
    return __virtualname__


# -- the settings of the job (salt/backup) -------------------------------------


def check_schedule(key, schedule, analyze=None):
    """The normalized OnCalendar form of ``schedule`` as ``analyze(schedule)
    -> (rc, stdout, stderr)`` (systemd-analyze calendar; by default the
    minion's, lemp_cron.calendar) gives it, or raise naming the pillar
    ``key`` and the fix."""
    analyze = analyze or __salt__["lemp_cron.calendar"]  # noqa: F821  (injected by the loader)
    text = "" if schedule is None else str(schedule)
    if not text.strip() or any(ord(c) < 32 or c in "%\\" for c in text):
        raise SettingsError(f"{key} {json.dumps(text)} is empty or holds a control character, % or \\: write a "
                            "systemd OnCalendar expression such as '*-*-* 01:30' or 'hourly'")
    rc, out, err = analyze(text)
    normalized = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                       if line.strip().startswith("Normalized form:")), "")
    if rc != 0 or not normalized:
        reason = (err or out or "").strip().splitlines()
        raise SettingsError(f"{key} {json.dumps(text)} is not a systemd calendar expression "
                            f"({reason[-1] if reason else f'systemd-analyze exited {rc}'}): see man systemd.time, "
                            "e.g. '*-*-* 01:30' (daily) or '*-*-* *:15' (hourly)")
    return normalized


def check_settings(settings, analyze=None):
    """The backup pillar's non-secret settings (salt/backup/defaults.yaml
    merged with pillar backup:*): schedules normalized, retention checked
    (lemp_backup.check_policy). Returns {schedule: {full, incremental,
    prune, drill}, retention}; raises naming the key."""
    schedule = settings.get("schedule") or {}
    normalized = {}
    for name in ("full", "incremental", "prune", "drill"):
        normalized[name] = check_schedule(f"backup:schedule:{name}", schedule.get(name), analyze)
    try:
        lemp_backup.check_policy(settings.get("retention"))
    except lemp_backup.BackupError as exc:
        raise SettingsError(str(exc))
    check_archive_settings((settings.get("lookup") or {}).get("archive") or {})
    return {"schedule": normalized, "retention": settings["retention"]}


def check_archive_settings(archive):
    """backup:lookup:archive: whole seconds >= 1, rotate_after_seconds
    at least two polls (a rotation must not be asked before the archiver
    had a chance to see the events arrive), and stall_restart_seconds
    beyond the rotation and two more polls (a restart must not come before
    the rotation had a chance to write the held events out)."""
    for key in ("poll_seconds", "rotate_after_seconds", "rotate_min_interval_seconds", "stall_restart_seconds"):
        value = archive.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SettingsError(f"backup:lookup:archive:{key} is {value!r}; it must be a whole number of seconds >= 1")
    if archive["rotate_after_seconds"] < 2 * archive["poll_seconds"]:
        raise SettingsError(f"backup:lookup:archive:rotate_after_seconds is {archive['rotate_after_seconds']}; it "
                            f"must be at least two polls (2 x poll_seconds = {2 * archive['poll_seconds']})")
    floor = archive["rotate_after_seconds"] + 2 * archive["poll_seconds"]
    if archive["stall_restart_seconds"] <= floor:
        raise SettingsError(f"backup:lookup:archive:stall_restart_seconds is {archive['stall_restart_seconds']}; it "
                            f"must be more than rotate_after_seconds plus two polls ({floor})")


class StreamError(ValueError):
    """The bytes are not an mbstream: the message says where."""


class MbstreamScanner:
    """Follow an mbstream (xbstream v1) chunk by chunk, keeping the payload
    of the files named in ``wanted``; everything else is only counted.

    Chunk layout (MariaDB extra/mariabackup/xbstream_read.cc): magic
    ``XBSTCK01``, flags (1 byte), type (1 byte: ``P`` payload, ``E`` end of a
    file), path length (4 bytes LE), path; a payload chunk goes on with
    length (8 LE), offset (8 LE), checksum (4), payload. ``feed`` takes any
    slices of the stream; ``finish`` raises when the stream stopped inside
    a chunk. The checksums are checked by ``mbstream -x`` at restore time.
    """

    def __init__(self, wanted=INFO_FILES):
        self.wanted = set(wanted)
        self.files = {}          # name -> bytes, for wanted names
        self.seen = 0            # chunks
        self.ended = set()       # files whose E chunk was seen
        self.bytes = 0
        self._buffer = bytearray()
        self._skip = 0           # payload bytes still to pass of a chunk not kept
        self._keep = None        # (name, offset, remaining) of a kept payload in progress

    def feed(self, data):
        self.bytes += len(data)
        view = memoryview(data)
        while view:
            if self._skip:
                step = min(self._skip, len(view))
                self._skip -= step
                view = view[step:]
                continue
            if self._keep:
                name, offset, remaining = self._keep
                step = min(remaining, len(view))
                blob = bytearray(self.files.get(name, b""))
                end = offset + step
                if len(blob) < end:
                    blob.extend(b"\0" * (end - len(blob)))
                blob[offset:end] = view[:step]
                self.files[name] = bytes(blob)
                view = view[step:]
                self._keep = (name, end, remaining - step) if remaining - step else None
                continue
            self._buffer.extend(view)
            view = memoryview(b"")
            self._parse_headers()

    def _parse_headers(self):
        buf = self._buffer
        while True:
            if len(buf) < 14:
                return
            if bytes(buf[:8]) != MAGIC:
                raise StreamError(f"not an mbstream: chunk {self.seen + 1} does not start with {MAGIC.decode()} "
                                  f"(byte {self.bytes - len(buf)})")
            kind = chr(buf[9])
            pathlen = int.from_bytes(buf[10:14], "little")
            if pathlen >= 4096:
                raise StreamError(f"mbstream chunk {self.seen + 1}: path length {pathlen} is too large")
            if kind == "E":
                if len(buf) < 14 + pathlen:
                    return
                self.ended.add(bytes(buf[14:14 + pathlen]).decode(errors="replace"))
                del buf[:14 + pathlen]
                self.seen += 1
                continue
            if kind != "P":
                if not buf[8] & 0x01:  # XB_STREAM_FLAG_IGNORABLE
                    raise StreamError(f"mbstream chunk {self.seen + 1}: unknown type {kind!r}")
            header = 14 + pathlen + 20
            if len(buf) < header:
                return
            path = bytes(buf[14:14 + pathlen]).decode(errors="replace")
            length = int.from_bytes(buf[14 + pathlen:22 + pathlen], "little")
            offset = int.from_bytes(buf[22 + pathlen:30 + pathlen], "little")
            del buf[:header]
            self.seen += 1
            take = min(length, len(buf))
            if kind == "P" and path in self.wanted and offset + length <= INFO_MAX:
                blob = bytearray(self.files.get(path, b""))
                end = offset + take
                if len(blob) < end:
                    blob.extend(b"\0" * (end - len(blob)))
                blob[offset:end] = buf[:take]
                self.files[path] = bytes(blob)
                if length > take:
                    self._keep = (path, end, length - take)
            elif length > take:
                self._skip = length - take
            del buf[:take]
            if self._skip or self._keep:
                return

    def finish(self):
        """Raise StreamError when the stream stopped inside a chunk or held none."""
        if self._buffer or self._skip or self._keep:
            raise StreamError("the mbstream stopped in the middle of a chunk (the backup was cut off)")
        if not self.seen:
            raise StreamError("the mbstream is empty (mariabackup sent nothing)")
        return {name: data.decode(errors="replace") for name, data in self.files.items()}


# -- which node ------------------------------------------------------------------

# A restart this close before the parent backup started still counts as after it.
RESTART_MARGIN = datetime.timedelta(seconds=5)


def choose_node(cat, plan, statuses, writer, now):
    """Where the backup of ``plan`` (lemp_backup.plan_backup) is taken.

    InnoDB LSNs belong to one node's data files: an incremental
    (``--incremental-lsn`` of its parent) is only right on the node the
    parent was taken from, and only while that node's data are the same
    files, i.e. it has not restarted since (a restart may have been an SST,
    which replaces them). So:

    * a full: lemp_backup.choose_backup_node (the writer, else a Synced
      node);
    * an incremental: the parent's node, when it is Synced, up since
      before the parent started (``uptime`` of its status) and still the
      writer (the archive's binlogs are the writer's);
    * else the incremental is refused with the reason (the job then takes a
      full, backup:incremental_falls_back_to_full).

    Returns {choice: {node, writer, desync, reason}} or {refused: why}."""
    if plan["kind"] == "full":
        return {"choice": lemp_backup.choose_backup_node(statuses, writer)}
    parent = cat["backups"][plan["parent"]]
    node = parent["node"]
    status = statuses.get(node)
    if not lemp_backup._is_synced(status):
        return {"refused": f"the chain's node {node} is not Synced ({'no answer' if status is None else status}): "
                           "an incremental continues only on the node its parent was taken from"}
    now = lemp_backup.parse_time(now)
    uptime = status.get("uptime")
    if not isinstance(uptime, int):
        return {"refused": f"{node} did not say how long it has been up: cannot tell whether its data were replaced"}
    up_since = now - datetime.timedelta(seconds=uptime)
    if up_since > lemp_backup.parse_time(parent["started"]) - RESTART_MARGIN:
        return {"refused": (f"{node} restarted at {lemp_backup.format_time(up_since.replace(microsecond=0))}, after "
                            f"{parent['id']} started: an SST may have replaced its data files, so LSN "
                            f"{plan['from_lsn']} means nothing there any more")}
    if node != writer:
        # the archive follows the writer: the chain's GTIDs are positions in
        # its node's binlogs only (see lemp_backup.choose_backup_node)
        return {"refused": f"the chain's node {node} is no longer the writer ({writer or 'unknown'}): the binlog "
                           "archive now holds another node's binlogs, whose GTIDs may differ"}
    return {"choice": {"node": node, "writer": True, "desync": False,
                       "reason": f"{node} holds the chain of {parent['id']}, has been up since before it and is "
                                 "the writer"}}


# -- mariabackup's info files -------------------------------------------------


def parse_checkpoints(text):
    """xtrabackup_checkpoints (``key = value`` lines) -> dict; the LSNs as ints."""
    result = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            key, value = key.strip(), value.strip()
            result[key] = int(value) if key.endswith("_lsn") and value.isdigit() else value
    for key in ("from_lsn", "to_lsn"):
        if not isinstance(result.get(key), int):
            raise ValueError(f"xtrabackup_checkpoints has no {key}: {text!r}")
    return result


def parse_binlog_info(text):
    """xtrabackup_binlog_info: ``file<TAB>position[<TAB>gtid list]`` ->
    {file, pos, gtid} ("" when the server had written no GTID yet)."""
    parts = (text or "").strip().split("\t") if "\t" in (text or "") else (text or "").split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"xtrabackup_binlog_info is not 'file position gtid': {text!r} (is log_bin on?)")
    return {"file": parts[0].strip(), "pos": int(parts[1]), "gtid": parts[2].strip() if len(parts) > 2 else ""}


POSITION_RE = re.compile(r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}):(-?\d+)")


def parse_galera_info(text):
    """xtrabackup_galera_info (``uuid:seqno``, maybe followed by a GTID) ->
    ``uuid:seqno``, or None when it holds none (seqno -1: not a position)."""
    match = POSITION_RE.search(text or "")
    if not match or match.group(2).startswith("-"):
        return None
    return f"{match.group(1).lower()}:{match.group(2)}"


def build_manifest(plan, node, started, finished, info, stored, encryption, status=None, backup_id=None):
    """The manifest of a finished backup (lemp_backup.validate_manifest).

    ``plan``: lemp_backup.plan_backup's answer; ``node``: where it was taken;
    ``info``: {file name: text} kept by MbstreamScanner; ``stored``:
    [{name, size, sha256}] of the files written to the store; ``encryption``:
    {tool, cipher, key_id}; ``status``: the node's wsrep status after the
    backup, whose cluster uuid and last committed seqno stand in for
    xtrabackup_galera_info when mariabackup wrote none (then the manifest
    says so in ``galera_position_from``).
    Raises ValueError naming the missing file."""
    for name in ("xtrabackup_checkpoints", "xtrabackup_binlog_info"):
        if name not in info:
            raise ValueError(f"the backup stream holds no {name}: mariabackup did not finish")
    checkpoints = parse_checkpoints(info["xtrabackup_checkpoints"])
    binlog = parse_binlog_info(info["xtrabackup_binlog_info"])
    position = parse_galera_info(info.get("xtrabackup_galera_info"))
    position_from = "xtrabackup_galera_info"
    if position is None and status and status.get("cluster_state_uuid") and status.get("last_committed") is not None:
        position = f"{status['cluster_state_uuid'].lower()}:{int(status['last_committed'])}"
        position_from = "wsrep status after the backup (mariabackup wrote no xtrabackup_galera_info)"
    kind = plan["kind"]
    bid = backup_id or lemp_backup.backup_id(kind, node, started)
    if kind == "incremental" and checkpoints["from_lsn"] != plan["from_lsn"]:
        raise ValueError(f"mariabackup started at LSN {checkpoints['from_lsn']}, the plan said {plan['from_lsn']}")
    manifest = {
        "format": 1,
        "id": bid,
        "kind": kind,
        "chain": bid if kind == "full" else plan["chain"],
        "parent": plan["parent"],
        "node": node,
        "galera_position": position,
        "galera_position_from": position_from,
        "gtid": binlog["gtid"],
        "binlog": {"file": binlog["file"], "pos": binlog["pos"]},
        "lsn": {"from": 0 if kind == "full" else checkpoints["from_lsn"], "to": checkpoints["to_lsn"]},
        "started": lemp_backup.format_time(started),
        "finished": lemp_backup.format_time(finished),
        "files": list(stored),
        "size": sum(entry["size"] for entry in stored),
        "encryption": dict(encryption),
    }
    return lemp_backup.check_manifest(manifest)


# -- the binlog archive -------------------------------------------------------

# mariadb-binlog's event header line: "#240501 12:00:00 server id 1  end_log_pos 427 ..."
EVENT_RE = re.compile(r"^#(\d{6})\s+(\d{1,2}:\d{2}:\d{2})\s+server id\s+\d+\s+end_log_pos\s+(\d+)(.*)$")
# "GTID 0-1-5 trans", "GTID 0-1-6 cid=12 trans" (group commit), "GTID 0-1-7 ddl", "GTID 0-1-8" (MyISAM):
# the flags are the words after the GTID, in any number
GTID_EVENT_RE = re.compile(r"\bGTID\s+(\d+-\d+-\d+)((?:\s+\S+)*)")
GTID_LIST_RE = re.compile(r"\bGtid list \[([^\]]*)\]?")
# where a binlog's first event starts, after its 4-byte magic number
BINLOG_START = 4


def _event_time(day, clock):
    """mariadb-binlog prints event times in the local zone of the reader:
    the archiver runs it with TZ=UTC."""
    stamp = datetime.datetime.strptime(f"{day} {clock}", "%y%m%d %H:%M:%S")
    return stamp.replace(tzinfo=datetime.timezone.utc)


def parse_binlog_dump(text, previous=None):
    """Read ``TZ=UTC mariadb-binlog --base64-output=decode-rows FILE`` output
    (a string, or an iterable of lines such as a pipe).

    Returns {start_gtid: the Gtid list event's list (the position before the
    file's first transaction), end_gtid: that list advanced by every
    transaction seen complete, first_time, last_time: UTC ISO times of the
    first and last complete transactions (None when there is none),
    transactions: how many, resume_at: the byte offset the next read of the
    file starts at, resume: what the next parse carries over}.

    A transaction is complete when its end was read: COMMIT (or an Xid
    event) for ``trans`` GTIDs, the next event for ``ddl`` GTIDs (the
    statement event after the GTID event). The file being written may end
    inside a transaction: that one is not counted, so end_gtid never claims
    a transaction the file cannot replay.

    Incremental reading (the file being written grows every poll): pass the
    previous result of the same file as ``previous`` and the output of
    ``mariadb-binlog --start-position=<previous resume_at> FILE``. resume_at
    is the end_log_pos of the last event of the last complete transaction,
    or of the last event read outside any transaction: never inside an open
    one, so the next read sees that transaction whole. mariadb-binlog prints
    the file's format description event (at 4) before the start position,
    with absolute positions: events that end at or before ``resume_at`` are
    skipped. The last result equals the one-shot parse of the whole file."""
    state = (previous or {}).get("resume") or {}
    start = state.get("gtid_list")  # None: the Gtid list event was not read yet
    current = {int(d): tuple(p) for d, p in state.get("positions", {}).items()}  # domain -> last complete (server, seq)
    first_time = (previous or {}).get("first_time")
    last_time = None
    count = (previous or {}).get("transactions", 0)
    offset = (previous or {}).get("resume_at", BINLOG_START)
    skip_until = offset
    open_gtid = None  # (gtid, standalone, time, events seen after it)
    pending_list = None
    event_end = offset  # end_log_pos of the last event header read

    def close(gtid_time):
        nonlocal first_time, last_time, count, offset
        domain, server, seq = (int(x) for x in open_gtid[0].split("-"))
        current[domain] = (server, seq)
        first_time = first_time or lemp_backup.format_time(gtid_time)
        last_time = gtid_time
        count += 1
        offset = max(offset, event_end)

    for line in (text or "").splitlines(keepends=True) if isinstance(text, str) or text is None else text:
        if not line.endswith("\n"):
            # a line cut off by the end of the output (mariadb-binlog killed while printing): an event header
            # cut inside its end_log_pos would claim a wrong offset
            continue
        line = line.rstrip("\r\n")
        if pending_list is not None:
            # a long Gtid list goes on over comment lines: "# 1-2-3]"
            pending_list += line.lstrip("# ").strip()
            if "]" in line:
                start = pending_list.split("]")[0]
                pending_list = None
            continue
        header = EVENT_RE.match(line)
        if header:
            end = int(header.group(3))
            if end and end <= skip_until:
                # read before (the format description event a resumed read prints first)
                continue
            event_end = max(event_end, end)
            rest = header.group(4)
            when = _event_time(header.group(1), header.group(2))
            listed = GTID_LIST_RE.search(rest)
            if listed and start is None:
                if "]" in rest[listed.start():]:
                    start = listed.group(1)
                else:
                    pending_list = listed.group(1)
                offset = max(offset, event_end)
                continue
            gtid = GTID_EVENT_RE.search(rest)
            if gtid and "Gtid list" not in rest and "Binlog checkpoint" not in rest:
                open_gtid = [gtid.group(1), "trans" not in gtid.group(2).lower().split(), when, 0]
                continue
            if open_gtid:
                open_gtid[3] += 1
                if "Xid =" in rest:
                    close(open_gtid[2])
                    open_gtid = None
                elif open_gtid[1] and open_gtid[3] >= 1:
                    close(open_gtid[2])
                    open_gtid = None
            else:
                offset = max(offset, event_end)
            continue
        if open_gtid and not open_gtid[1] and line.startswith("COMMIT/*!*/;"):
            close(open_gtid[2])
            open_gtid = None
    listed = "" if start is None else start
    base = lemp_backup.parse_gtid_state(listed.replace(" ", ""), "Gtid list") if listed.strip() else {}
    merged = dict(base)
    for domain, (server, seq) in current.items():
        if seq >= merged.get(domain, (0, 0))[1]:
            merged[domain] = (server, seq)

    def text_of(gtids):
        return ",".join(f"{d}-{s}-{n}" for d, (s, n) in sorted(gtids.items()))

    return {
        "start_gtid": text_of(base),
        "end_gtid": text_of(merged),
        "first_time": first_time,
        "last_time": lemp_backup.format_time(last_time) if last_time else (previous or {}).get("last_time"),
        "transactions": count,
        "resume_at": offset,
        "resume": {"gtid_list": start, "positions": {d: list(p) for d, p in sorted(current.items())}},
    }


def binlog_read_from(cached, identity, size, mtime_ns):
    """What the archiver reads of an archived binlog this poll.

    ``cached``: None or what the last read of the same path left:
    {identity, size, mtime_ns, parse (parse_binlog_dump's result), ok (that
    mariadb-binlog exited 0)}; ``identity``, ``size``, ``mtime_ns``: the
    file's now ((st_dev, st_ino), st_size, st_mtime_ns).

    Returns None when the cached parse stands, else (previous, position):
    run mariadb-binlog from ``position`` and give its output and
    ``previous`` to parse_binlog_dump. The file is read from its start
    again when it is new, another file (identity), shorter or older than
    the one parsed (mariadb-binlog rewrote it); from the cached parse's
    resume_at when it grew; again from resume_at when the last read failed
    (a failure is never taken for a finished parse; what it read up to the
    last complete transaction stays); not at all when nothing changed or
    nothing lies past resume_at."""
    if (cached is None or cached["identity"] != identity or size < cached["size"]
            or mtime_ns < cached["mtime_ns"]):
        return None, BINLOG_START
    parse = cached["parse"]
    if (cached["ok"] and size == cached["size"] and mtime_ns == cached["mtime_ns"]) or size <= parse["resume_at"]:
        return None
    return parse, parse["resume_at"]


def archive_start(server_logs, local_files, archived_seq, same_node):
    """Where the archiver starts reading the writer's binlogs.

    ``server_logs``: [(file, start_seq)] of the writer, oldest first
    (SHOW BINARY LOGS with BINLOG_GTID_POS(file, 4) in the cluster's
    domain); ``local_files``: the names already archived from this writer
    (its directory in the store); ``archived_seq``: the highest GTID seq the
    archive holds, from any writer (None: an empty archive); ``same_node``:
    the writer is the one the archive followed last.

    Rules:

    * same writer as before: its newest archived file again, whole (it may
      have been cut off mid-event), if the server still has it;
    * else the newest server file that starts at or before the next
      transaction the archive lacks (archived_seq + 1): the overlap is
      harmless, replay goes by GTID;
    * an empty archive starts at the server's oldest file;
    * when every server file starts after archived_seq + 1, the server has
      purged binlogs the archive never got: start at its oldest file and
      report the gap (seqs archived_seq + 1 to its start).

    Returns {file, gap: None or {after_seq, before_seq}, reason}."""
    if not server_logs:
        raise ValueError("the writer lists no binary log (is log_bin on? SHOW BINARY LOGS is empty)")
    names = [name for name, _ in server_logs]
    if same_node and local_files:
        newest = sorted(local_files)[-1]
        if newest in names:
            return {"file": newest, "gap": None, "reason": f"same writer: {newest} again, whole"}
    if archived_seq is None:
        return {"file": names[0], "gap": None, "reason": "empty archive: from the writer's oldest binlog"}
    fitting = [name for name, start in server_logs if start <= archived_seq]
    if fitting:
        return {"file": fitting[-1], "gap": None,
                "reason": f"{fitting[-1]} starts at or before GTID seq {archived_seq + 1}, the next one missing"}
    first, first_start = server_logs[0]
    return {"file": first, "gap": {"after_seq": archived_seq, "before_seq": first_start + 1},
            "reason": (f"the writer's oldest binlog {first} starts after seq {first_start}: seqs "
                       f"{archived_seq + 1} to {first_start} are lost to the archive (take a full backup)")}


def binlog_index(cluster_uuid, entries, complete_until):
    """The binlog index (lemp_backup.validate_binlog_index) from the archived
    files: ``entries`` [{name: "<node>/<file>", node, size, complete, and
    parse_binlog_dump's keys}]. Raises ValueError with the problems."""
    files = []
    for entry in sorted(entries, key=lambda e: e["name"]):
        files.append({key: entry.get(key) for key in
                      ("name", "node", "start_gtid", "end_gtid", "first_time", "last_time", "size", "complete")})
    index = {"cluster_uuid": cluster_uuid, "files": files,
             "complete_until": lemp_backup.format_time(complete_until) if complete_until else None}
    problems = lemp_backup.validate_binlog_index(index)
    if problems:
        raise ValueError("; ".join(problems))
    return index


def archived_seq(entries, domain=0):
    """The highest GTID seq of ``domain`` the archived files hold (None: none)."""
    seqs = [lemp_backup.gtid_seq(e["end_gtid"], domain) for e in entries if e.get("end_gtid")]
    return max(seqs) if seqs else None


def archive_progress(seen, archived):
    """How far the archive is complete, from what the writer had committed.

    ``seen``: [(time, seq)], oldest first: each look at the writer, its time
    and the highest GTID seq its binlog held then (0: none in the domain);
    ``archived``: the highest seq the archived files hold complete
    (archived_seq; None: none).

    GTIDs, not bytes: mariadb-binlog can hold the newest events in memory
    (stdio buffer, no flush per event), so the copy's size says nothing.
    Returns {complete_until: the time of the latest look whose transactions
    the archive holds, counting only looks before the first one it does not
    (a new writer's position can briefly read lower after a failover; a
    later look must not hide an earlier one), None when none;
    pending: the looks from the first one not held on, to keep for the next
    call, runs of one seq kept as their first and last look so that a long
    stall keeps the list short; held_since: the time of the oldest pending
    look (None: the archive is complete)}."""
    have = archived or 0
    first_pending = next((i for i, (_, seq) in enumerate(seen) if seq > have), len(seen))
    done = [when for when, _ in seen[:first_pending]]
    pending = []
    for look in seen[first_pending:]:
        if len(pending) >= 2 and pending[-1][1] == pending[-2][1] == look[1]:
            pending[-1] = look
        else:
            pending.append(look)
    return {"complete_until": max(done) if done else None, "pending": pending,
            "held_since": pending[0][0] if pending else None}


# How far behind the writer's current position the archive's copy of the same
# file may be for a rotation to help: the tail mariadb-binlog holds, not a
# backlog it is still reading (a restarted archiver catching up).
ROTATION_TAIL_BYTES = 65536


def rotation_due(held_since, now, rotated_at, after_seconds, min_interval_seconds, tail):
    """Whether to ask the writer to rotate its binlog (FLUSH LOCAL BINARY
    LOGS), which makes mariadb-binlog close the file and write out what it
    held. Only when committed transactions have waited ``after_seconds``
    or more for the archive (held_since, from archive_progress), the
    missing part is a tail of the writer's current file (``tail``: the
    server's position less the archive's copy of that same file, bytes;
    None: the copy is of another file, a backlog), and the last rotation
    asked is ``min_interval_seconds`` old: a trickling writer whose every
    write waits rotates at most that often."""
    if held_since is None or tail is None or not 0 <= tail <= ROTATION_TAIL_BYTES:
        return False
    waited = (now - held_since).total_seconds()
    since_last = None if rotated_at is None else (now - rotated_at).total_seconds()
    return waited >= after_seconds and (since_last is None or since_last >= min_interval_seconds)


def stream_stalled(held_since, now, grew_at, stall_seconds):
    """Whether mariadb-binlog's stream is taken for dead: committed
    transactions have waited ``stall_seconds`` for the archive (held_since,
    from archive_progress) and the archive's copy has not grown for as long
    (``grew_at``: when its newest file last changed name or size). A
    backlog being read grows; a held tail is written out by the rotation
    (rotation_due) before this; a half-open connection does neither."""
    if held_since is None or grew_at is None:
        return False
    return min((now - held_since).total_seconds(), (now - grew_at).total_seconds()) >= stall_seconds


def archive_tail(server_file, server_pos, local_name, local_size):
    """The bytes of the writer's current binlog the archive's copy lacks, or
    None when the archive's newest file is not that file."""
    if not server_file or local_name != server_file or local_size is None:
        return None
    return max(0, server_pos - local_size)


# -- the drill's scratch server (salt/backup/files/lemp-backup.py drill) ----------------

# Every user table of the restored server, as db<TAB>table (the server's own schemas left out).
USER_TABLES_SQL = ("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE='BASE TABLE' "
                   "AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') "
                   "ORDER BY 1, 2")


def quote_table(name):
    """``db.table`` -> `` `db`.`table` ``; a name holding a backquote is refused."""
    schema, _, table = name.partition(".")
    if not schema or not table or "`" in name:
        raise ValueError(f"{name!r} is not a db.table name the drill can quote")
    return f"`{schema}`.`{table}`"


def check_table_sql(name):
    return f"CHECK TABLE {quote_table(name)}"


def scratch_server_args(datadir, run_dir, buffer_pool="128M"):
    """The drill's own mariadbd on arb1: a prepared datadir, its own socket,
    pid and log under the scratch folder; no system option file (no
    conflict with anything installed), no network at all (nothing but the
    drill can reach it, so the grant tables need not be loaded: the OS user
    of the drill owns the restored accounts' data anyway), no binlog, no wsrep."""
    return ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={datadir}", f"--socket={run_dir}/mysqld.sock",
            f"--pid-file={run_dir}/mysqld.pid", f"--log-error={run_dir}/mysqld.err", f"--tmpdir={run_dir}",
            "--skip-networking", "--skip-grant-tables", f"--innodb-buffer-pool-size={buffer_pool}",
            "--skip-slave-start"]


def scratch_measure(query):
    """Row counts and checksums of every user table of the scratch server,
    in the shape of a manifest's ``check`` (lemp_backup.compare_check).
    ``query(sql) -> rows`` runs SQL there."""
    tables = [f"{schema}.{table}" for schema, table in query(USER_TABLES_SQL)]
    rows, checksums = {}, {}
    for name in tables:
        rows[name] = int(query(f"SELECT COUNT(*) FROM {quote_table(name)}")[0][0])
    if tables:
        for row in query("CHECKSUM TABLE " + ", ".join(quote_table(n) for n in tables)):
            checksums[row[0]] = int(row[1]) if row[1].isdigit() else 0
    return {"rows": rows, "checksums": checksums}
