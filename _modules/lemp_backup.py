"""
Backups and point-in-time restore of the Galera cluster: the decisions.

Issue #11 (docs/backups.md). This module holds the pure part: what a backup
manifest says, which backups form a restorable chain, what retention keeps,
which data node a backup is taken from, and what a restore replays up to
where. Nothing here runs a command or reads a file: the backup job on arb1,
the binlog archiver and the restore orchestration (still to be built, see
docs/backups.md) gather the facts and hand them to these functions, so every
rule is unit-tested with synthetic catalogues (tests/unit/test_backup_plans.py).

Vocabulary:

* a **manifest** describes one finished backup (``validate_manifest``); a
  backup without a manifest never finished and does not exist for us;
* a **chain** is a full backup and the incrementals built on it, each on the
  previous one (``catalogue``); a chain is restorable up to its first gap;
* the **binlog index** lists the binary log files the archiver on arb1 holds,
  with the GTID range and event times of each (``validate_binlog_index``);
* positions are compared by the sequence number of the cluster's GTID domain
  (``wsrep_gtid_domain_id``, ``DOMAIN``): with ``wsrep_gtid_mode`` every node
  writes the same GTID for a transaction, so binlogs of different writers
  line up across a failover.

Times are UTC ISO 8601 (``2024-05-01T02:00:00Z``); a time without an offset
is read as UTC. Importable without Salt.
"""

import datetime
import re

try:
    from salt.exceptions import CommandExecutionError
except ImportError:  # the unit tests import this file without salt installed

    class CommandExecutionError(Exception):
        pass


__virtualname__ = "lemp_backup"

FORMAT = 1
KINDS = ("full", "incremental")
# The cluster's GTID domain: wsrep_gtid_domain_id, the same on every node.
DOMAIN = 0
# How far a recorded time may be ahead of ``now`` before we call it a clock fault.
CLOCK_SKEW = datetime.timedelta(minutes=5)
ENCRYPTION_TOOLS = ("openssl", "age", "none")
SYNCED = 4  # wsrep_local_state, as in galera.py

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
BINLOG_RE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,62}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
UUID_RE = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
POSITION_RE = re.compile(r"^(" + UUID_RE + r"):(\d+)$")
GTID_RE = re.compile(r"^(\d{1,10})-(\d{1,10})-(\d{1,20})$")
# Names that would mean a secret was written into a manifest.
SECRET_KEYS = ("key", "passphrase", "password", "secret")


class BackupError(ValueError):
    """A request or a catalogue that no plan can be made from; the message
    names the key or the backup and the fix."""


def __virtual__():
    return __virtualname__


# -- small parsers ------------------------------------------------------------


def parse_time(value, what="time"):
    """An aware UTC datetime from an ISO 8601 string (``Z``, an offset, or
    none: read as UTC) or a datetime. Raises BackupError naming ``what``."""
    if isinstance(value, datetime.datetime):
        stamp = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            stamp = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise BackupError(f"{what} {value!r} is not a time; write it as 2024-05-01T02:00:00Z (UTC)")
    else:
        raise BackupError(f"{what} {value!r} is not a time; write it as 2024-05-01T02:00:00Z (UTC)")
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.astimezone(datetime.timezone.utc)


def format_time(stamp):
    """2024-05-01T02:00:00Z (seconds; microseconds only when there are some)."""
    stamp = parse_time(stamp)
    text = stamp.replace(tzinfo=None).isoformat()
    return text + "Z"


def parse_gtid_list(text, what="gtid"):
    """MariaDB GTID list ``0-1-100,1-2-5`` -> {domain: (server_id, seq)}.
    The empty string (a cluster with no transaction yet) is {}. Raises
    BackupError on a malformed list or a domain given twice."""
    if not isinstance(text, str):
        raise BackupError(f"{what} {text!r} is not a GTID list like 0-1-100")
    result = {}
    for part in (p.strip() for p in text.split(",")) if text.strip() else ():
        match = GTID_RE.match(part)
        if not match:
            raise BackupError(f"{what} {text!r} is not a GTID list like 0-1-100 (domain-server_id-seq)")
        domain, server, seq = (int(g) for g in match.groups())
        if domain in result:
            raise BackupError(f"{what} {text!r} names domain {domain} twice")
        result[domain] = (server, seq)
    return result


def parse_gtid_state(text, what="Gtid list"):
    """A binlog's GTID state (a Gtid list event, ``@@gtid_binlog_state``):
    the last GTID of each (domain, server_id), so a domain may come once per
    server that wrote in it (after a writer change in Galera,
    ``0-172818464-2092,0-172818463-2093``). -> {domain: (server_id, seq)},
    the highest seq of each domain: the position it stands for."""
    result = {}
    for part in (p.strip() for p in text.split(",")) if isinstance(text, str) and text.strip() else ():
        one = parse_gtid_list(part, what)
        for domain, (server, seq) in one.items():
            if seq >= result.get(domain, (0, -1))[1]:
                result[domain] = (server, seq)
    if not isinstance(text, str):
        raise BackupError(f"{what} {text!r} is not a GTID list like 0-1-100")
    return result


def gtid_seq(text, domain=DOMAIN, what="gtid"):
    """The sequence number of ``domain`` in a GTID list; 0 when the domain
    has no transaction yet."""
    return parse_gtid_list(text, what).get(domain, (0, 0))[1]


def gtid_in(text, domain=DOMAIN, what="gtid"):
    """The single GTID ``d-s-n`` of ``domain`` in a GTID list, or None."""
    found = parse_gtid_list(text, what).get(domain)
    return f"{domain}-{found[0]}-{found[1]}" if found else None


def backup_id(kind, node, started):
    """The id of a new backup: ``20240501T020000Z-full-db2``. Sorts by time."""
    if kind not in KINDS:
        raise BackupError(f"backup kind {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(node, str) or not NODE_RE.match(node):
        raise BackupError(f"backup node {node!r} is not a machine name")
    return f"{parse_time(started).strftime('%Y%m%dT%H%M%SZ')}-{kind}-{node}"


# -- the manifest -------------------------------------------------------------


def _is_int(value, minimum=0):
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def validate_manifest(manifest):
    """Problems of one backup manifest, as a list of messages naming the key
    (empty: valid). The manifest, written by the backup job when the backup
    finished, is a dict:

    * ``format``: 1;
    * ``id``: the backup's id (``backup_id``); ``kind``: full or incremental;
    * ``chain``: the id of the chain's full backup (a full: its own id);
      ``parent``: the backup an incremental builds on (a full: None);
    * ``node``: the data node it was taken from;
    * ``galera_position``: ``uuid:seqno`` (mariabackup's xtrabackup_galera_info);
    * ``gtid``: the GTID list at the backup point (xtrabackup_binlog_info;
      "" on a cluster with no transaction yet);
    * ``binlog``: {file, pos}: the node's own binlog coordinates at that point;
    * ``lsn``: {from, to}: InnoDB LSNs (xtrabackup_checkpoints); a full starts
      at 0, an incremental where its parent ended;
    * ``started``, ``finished``: UTC ISO times, finished not before started;
    * ``files``: [{name, size, sha256}] of what is stored (file names, no
      directories); ``size``: their total in bytes;
    * ``encryption``: {tool: openssl|age|none, cipher, key_id}: which key
      (a name or fingerprint), never the key itself;
    * optional ``check``: {gtid, rows: {"db.table": count}, checksums:
      {"db.table": n}}: taken on the backup node right after the backup, at
      ``gtid`` (the node paused under FLUSH TABLES WITH READ LOCK while
      desynced); the drill replays binlogs to that GTID and compares.
    """
    if not isinstance(manifest, dict):
        return [f"manifest is not a mapping ({type(manifest).__name__})"]
    problems = []
    bid = manifest.get("id")
    where = f"manifest {bid}" if isinstance(bid, str) and bid else "manifest"

    def bad(key, why):
        problems.append(f"{where}: {key} {why}")

    if manifest.get("format") != FORMAT:
        bad("format", f"is {manifest.get('format')!r}, expected {FORMAT}")
    if not isinstance(bid, str) or not ID_RE.match(bid):
        bad("id", f"{bid!r} is not a backup id (letters, digits, . _ -)")
    kind = manifest.get("kind")
    if kind not in KINDS:
        bad("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    chain, parent = manifest.get("chain"), manifest.get("parent")
    if kind == "full":
        if chain != bid:
            bad("chain", f"{chain!r} must be the full backup's own id {bid!r}")
        if parent is not None:
            bad("parent", f"{parent!r} must be empty for a full backup")
    elif kind == "incremental":
        if not isinstance(chain, str) or not ID_RE.match(chain) or chain == bid:
            bad("chain", f"{chain!r} must be the id of the full backup the chain starts with")
        if not isinstance(parent, str) or not ID_RE.match(parent) or parent == bid:
            bad("parent", f"{parent!r} must be the id of the backup this incremental builds on")
    node = manifest.get("node")
    if not isinstance(node, str) or not NODE_RE.match(node):
        bad("node", f"{node!r} is not a machine name")
    position = manifest.get("galera_position")
    if not isinstance(position, str) or not POSITION_RE.match(position):
        bad("galera_position", f"{position!r} is not uuid:seqno")
    try:
        parse_gtid_list(manifest.get("gtid"), "gtid")
    except BackupError as exc:
        problems.append(f"{where}: {exc}")
    binlog = manifest.get("binlog")
    if not (isinstance(binlog, dict) and isinstance(binlog.get("file"), str)
            and FILE_RE.match(binlog["file"]) and _is_int(binlog.get("pos"), 4)):
        bad("binlog", f"{binlog!r} must be {{file: mariadb-bin.000012, pos: 345}} (pos >= 4)")
    lsn = manifest.get("lsn")
    if not (isinstance(lsn, dict) and _is_int(lsn.get("from")) and _is_int(lsn.get("to"))
            and lsn["to"] >= lsn["from"]):
        bad("lsn", f"{lsn!r} must be {{from: N, to: M}} with 0 <= N <= M")
    elif kind == "full" and lsn["from"] != 0:
        bad("lsn", f"from is {lsn['from']}: a full backup starts at LSN 0")
    times = {}
    for key in ("started", "finished"):
        try:
            times[key] = parse_time(manifest.get(key), key)
        except BackupError:
            bad(key, f"{manifest.get(key)!r} is not a UTC time like 2024-05-01T02:00:00Z")
    if len(times) == 2 and times["finished"] < times["started"]:
        bad("finished", f"{manifest['finished']} is before started {manifest['started']}")
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        bad("files", "must list the stored files [{name, size, sha256}]")
    else:
        names, total, whole = set(), 0, True
        for number, entry in enumerate(files):
            if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                    and FILE_RE.match(entry["name"]) and _is_int(entry.get("size"))
                    and isinstance(entry.get("sha256"), str) and SHA256_RE.match(entry["sha256"])):
                bad(f"files[{number}]", f"{entry!r} must be {{name (no directory), size, sha256 (64 hex)}}")
                whole = False
                continue
            if entry["name"] in names:
                bad(f"files[{number}]", f"name {entry['name']} is listed twice")
            names.add(entry["name"])
            total += entry["size"]
        if whole and manifest.get("size") != total:
            bad("size", f"is {manifest.get('size')!r} but the files add up to {total}")
    encryption = manifest.get("encryption")
    if not isinstance(encryption, dict) or encryption.get("tool") not in ENCRYPTION_TOOLS:
        bad("encryption", f"{encryption!r} must be {{tool: {'|'.join(ENCRYPTION_TOOLS)}, cipher, key_id}}")
    else:
        leaked = sorted(k for k in encryption if str(k).lower() in SECRET_KEYS)
        if leaked:
            bad("encryption", f"holds {', '.join(leaked)}: a manifest names its key (key_id), never contains it")
        if encryption["tool"] != "none" and not (isinstance(encryption.get("key_id"), str) and encryption["key_id"]):
            bad("encryption", "key_id is missing: name the key the backup was encrypted with")
    check = manifest.get("check")
    if check is not None:
        def counts(value):
            return isinstance(value, dict) and all(isinstance(t, str) and "." in t and _is_int(n)
                                                   for t, n in value.items())
        try:
            ok = (isinstance(check, dict) and parse_gtid_list(check.get("gtid"), "check:gtid") is not None
                  and counts(check.get("rows", {})) and counts(check.get("checksums", {})))
        except BackupError:
            ok = False
        if not ok:
            bad("check", "must be {gtid: 0-1-100, rows: {db.table: count}, checksums: {db.table: number}}")
    return problems


def check_manifest(manifest):
    """Raise BackupError with every problem of ``manifest``; return it when valid."""
    problems = validate_manifest(manifest)
    if problems:
        raise BackupError("; ".join(problems))
    return manifest


def check_files(manifest, found):
    """Compare the stored files with the manifest before they are used.
    ``found``: {name: {size, sha256}} as measured in the store. Returns the
    problems (empty: every file is there, whole and unchanged)."""
    problems = []
    for entry in manifest["files"]:
        have = found.get(entry["name"])
        if have is None:
            problems.append(f"backup {manifest['id']}: {entry['name']} is missing from the store")
        elif have.get("size") != entry["size"]:
            problems.append(f"backup {manifest['id']}: {entry['name']} has {have.get('size')} bytes, "
                            f"the manifest says {entry['size']}")
        elif have.get("sha256") != entry["sha256"]:
            problems.append(f"backup {manifest['id']}: {entry['name']} checksum differs from the manifest "
                            "(the file is corrupted or was changed)")
    return problems


# -- the catalogue ------------------------------------------------------------


def catalogue(manifests, drills=None):
    """Sort manifests into chains and say how far each chain is restorable.

    ``manifests``: manifest dicts as found in the store (in any order).
    ``drills``: optional {backup id: {ok, at, detail}} from the restore drill;
    a backup whose drill failed is not restorable.

    Rules:

    * an invalid manifest, or a second one with an id already seen, is left
      out and listed under ``invalid`` with its problems;
    * a chain is a full backup and the incrementals that name it as
      ``chain``; it is walked from the full, each incremental following the
      backup it names as ``parent``;
    * the walk stops, and the chain is **broken** there, at: an incremental
      whose parent is missing (the gap names the missing id), two
      incrementals building on the same backup, an incremental whose LSN
      does not start where its parent's ended, a backup that failed a drill;
    * what the walk reached is ``restorable``, in restore order; what is
      after the break is not restorable (kept apart, never used);
    * a chain whose full backup is missing or failed is not restorable at all.

    Returns {backups: {id: manifest}, chains: [chain], invalid: [{id,
    problems}]}, chains oldest first; a chain is {id, full, restorable:
    [ids], unrestorable: [ids], problem: str|None, restorable_until: the
    finish time of its last restorable backup or None}.
    """
    drills = drills or {}
    backups, invalid = {}, []
    for manifest in manifests or []:
        problems = validate_manifest(manifest)
        bid = manifest.get("id") if isinstance(manifest, dict) else None
        if not problems and bid in backups:
            problems = [f"manifest {bid}: id is used by another backup too"]
        if problems:
            invalid.append({"id": bid, "problems": problems})
            continue
        backups[bid] = manifest

    def started(bid):
        return parse_time(backups[bid]["started"])

    members = {}
    for bid, manifest in backups.items():
        members.setdefault(manifest["chain"], []).append(bid)
    chains = []
    for chain_id, ids in members.items():
        ids.sort(key=lambda b: (started(b), b))
        children = {}
        for bid in ids:
            if backups[bid]["kind"] == "incremental":
                children.setdefault(backups[bid]["parent"], []).append(bid)
        restorable, problem = [], None
        full = backups.get(chain_id)
        if full is None or full["kind"] != "full":
            problem = f"full backup {chain_id} is missing: no backup of this chain can be restored"
            full = None
        elif drills.get(chain_id, {}).get("ok") is False:
            problem = f"full backup {chain_id} failed its drill: {drills[chain_id].get('detail', 'no detail')}"
        else:
            restorable.append(chain_id)
            current = chain_id
            while True:
                kids = children.get(current, [])
                if not kids:
                    break
                if len(kids) > 1:
                    problem = (f"incrementals {', '.join(kids)} all build on {current}: "
                               f"restorable only up to {current}")
                    break
                kid = kids[0]
                if backups[kid]["lsn"]["from"] != backups[current]["lsn"]["to"]:
                    problem = (f"incremental {kid} starts at LSN {backups[kid]['lsn']['from']} but {current} "
                               f"ends at {backups[current]['lsn']['to']}: a backup between them is missing; "
                               f"restorable only up to {current}")
                    break
                if drills.get(kid, {}).get("ok") is False:
                    problem = (f"incremental {kid} failed its drill: {drills[kid].get('detail', 'no detail')}; "
                               f"restorable only up to {current}")
                    break
                restorable.append(kid)
                current = kid
            rest = [b for b in ids if b not in restorable]
            missing = sorted({backups[b]["parent"] for b in rest
                              if backups[b]["kind"] == "incremental" and backups[b]["parent"] not in backups})
            if problem is None and missing:
                problem = (f"incremental {', '.join(missing)} is missing (needed by "
                           f"{', '.join(b for b in rest if backups[b]['parent'] in missing)}): "
                           f"restorable only up to {restorable[-1]}")
            elif problem is None and rest:
                problem = f"{', '.join(rest)} do not build on the chain: restorable only up to {restorable[-1]}"
        chains.append({
            "id": chain_id,
            "full": chain_id if full else None,
            "restorable": restorable,
            "unrestorable": [b for b in ids if b not in restorable],
            "problem": problem,
            "restorable_until": backups[restorable[-1]]["finished"] if restorable else None,
        })
    chains.sort(key=lambda c: (started((c["restorable"] + c["unrestorable"])[0]), c["id"]))
    return {"backups": backups, "chains": chains, "invalid": invalid}


def _chain_of(cat, bid):
    return next(c for c in cat["chains"] if bid in c["restorable"] or bid in c["unrestorable"])


def _restorable_ids(cat):
    return [bid for chain in cat["chains"] for bid in chain["restorable"]]


def _finished(cat, bid):
    return parse_time(cat["backups"][bid]["finished"])


def newest_restorable_chain(cat):
    """The chain whose last restorable backup finished last, or None."""
    chains = [c for c in cat["chains"] if c["restorable"]]
    if not chains:
        return None
    return max(chains, key=lambda c: (_finished(cat, c["restorable"][-1]), c["id"]))


def listing(cat, now):
    """The lines of ``backup list``: one per backup, oldest first, with its
    age and whether it can be restored; then the problems."""
    now = parse_time(now, "now")
    lines = []
    for chain in cat["chains"]:
        for bid in chain["restorable"] + chain["unrestorable"]:
            manifest = cat["backups"][bid]
            age = now - parse_time(manifest["finished"])
            hours = int(age.total_seconds() // 3600)
            state = "restorable" if bid in chain["restorable"] else "NOT restorable"
            lines.append(f"{bid}  {manifest['kind']:<11} node {manifest['node']:<6} "
                         f"finished {manifest['finished']} ({hours} h ago)  gtid {manifest['gtid'] or '-'}  "
                         f"{manifest['size']} bytes  {state}")
        if chain["problem"]:
            lines.append(f"  chain {chain['id']}: {chain['problem']}")
    for entry in cat["invalid"]:
        lines.append(f"invalid manifest {entry['id']}: {'; '.join(entry['problems'])}")
    return lines


# -- what the next backup is --------------------------------------------------


def plan_backup(cat, kind):
    """What a new backup of ``kind`` builds on.

    * a full builds on nothing;
    * an incremental builds on the last backup of the newest restorable
      chain, from the LSN where that one ended;
    * an incremental is refused when there is no restorable chain, or when
      the newest chain is broken (it would build on a gap): take a full.

    Returns {kind, chain, parent, from_lsn} (chain/parent None for a full).
    """
    if kind == "full":
        return {"kind": "full", "chain": None, "parent": None, "from_lsn": 0}
    if kind != "incremental":
        raise BackupError(f"backup kind {kind!r} is not one of {', '.join(KINDS)}")
    chain = newest_restorable_chain(cat)
    if chain is None:
        raise BackupError("no restorable full backup to build an incremental on: take a full backup first")
    newest = max(cat["chains"], key=lambda c: (
        max(_finished(cat, b) for b in c["restorable"] + c["unrestorable"]), c["id"]))
    if newest["problem"]:
        raise BackupError(f"the newest chain {newest['id']} is broken ({newest['problem']}): "
                          "take a full backup, an incremental would build on the gap")
    parent = chain["restorable"][-1]
    return {"kind": "incremental", "chain": chain["id"], "parent": parent,
            "from_lsn": cat["backups"][parent]["lsn"]["to"]}


# -- retention ----------------------------------------------------------------

POLICY_KEYS = {"daily_fulls": 1, "hourly_incrementals": 0}


def check_policy(policy):
    """The retention policy {daily_fulls: N >= 1, hourly_incrementals: M >= 0}
    from the pillar (backup:retention), or BackupError naming the key."""
    if not isinstance(policy, dict):
        raise BackupError(f"backup:retention {policy!r} must be a mapping like "
                          "{daily_fulls: 7, hourly_incrementals: 48}")
    unknown = sorted(set(policy) - set(POLICY_KEYS))
    if unknown:
        raise BackupError(f"backup:retention:{unknown[0]} is not a retention setting; "
                          f"use {', '.join(sorted(POLICY_KEYS))}")
    for key, minimum in POLICY_KEYS.items():
        if not _is_int(policy.get(key), minimum):
            raise BackupError(f"backup:retention:{key} is {policy.get(key)!r}; "
                              f"it must be a whole number >= {minimum}")
    return policy


def retention(cat, policy, now, domain=DOMAIN):
    """Which backups pruning keeps and deletes, and from where binlogs are kept.

    Counts, not ages: if backups stop being taken, pruning stops deleting.

    Rules, in order (a backup kept by any rule is kept):

    1. the ``daily_fulls`` newest restorable full backups are kept;
    2. the ``hourly_incrementals`` newest restorable incrementals are kept,
       with every backup they build on (their full included): an
       incremental without its parents restores nothing;
    3. the newest restorable chain (its full and every restorable
       incremental) is always kept, whatever the policy;
    4. a backup that cannot be restored (after a gap, a failed drill, no
       full) is kept while it is newer than the oldest backup kept by
       1-3, so it can be looked at, and deleted once older;
    5. everything else is deleted.

    Binlogs: a kept restorable backup needs the binlogs from its GTID on
    (to restore to any time after it), so the archive keeps binlogs from the
    lowest GTID of the kept restorable backups (``binlogs``; None when no
    backup is kept: then no binlog may be pruned).

    Refuses (BackupError) when a backup finished after ``now`` (beyond
    CLOCK_SKEW): a clock is wrong, and counting would keep the wrong ones.

    Returns {keep: [ids], delete: [ids], reasons: {id: why}, binlogs:
    {keep_from_gtid, keep_from_seq, backup, finished} or None}; ids oldest first.
    """
    check_policy(policy)
    now = parse_time(now, "now")
    backups = cat["backups"]
    for bid, manifest in sorted(backups.items()):
        if parse_time(manifest["finished"]) > now + CLOCK_SKEW:
            raise BackupError(f"backup {bid} finished at {manifest['finished']}, after now ({format_time(now)}): "
                              "a clock is wrong (check NTP on arb1 and the data nodes); nothing is pruned")
    restorable = _restorable_ids(cat)
    newest_first = sorted(restorable, key=lambda b: (_finished(cat, b), b), reverse=True)
    reasons = {}
    fulls = [b for b in newest_first if backups[b]["kind"] == "full"][:policy["daily_fulls"]]
    for rank, bid in enumerate(fulls, 1):
        reasons[bid] = f"full {rank} of the {policy['daily_fulls']} newest (daily_fulls)"
    incrementals = [b for b in newest_first if backups[b]["kind"] == "incremental"]
    incrementals = incrementals[:policy["hourly_incrementals"]]
    for rank, bid in enumerate(incrementals, 1):
        reasons[bid] = f"incremental {rank} of the {policy['hourly_incrementals']} newest (hourly_incrementals)"
    for bid in reversed(incrementals):  # oldest first: the reason names the nearest
        parent = backups[bid]["parent"]
        while parent is not None:
            reasons.setdefault(parent, f"needed by the kept incremental {bid}")
            parent = backups[parent]["parent"]
    newest_chain = newest_restorable_chain(cat)
    if newest_chain:
        for bid in newest_chain["restorable"]:
            reasons.setdefault(bid, "in the newest restorable chain, never deleted")
    oldest_kept = min((parse_time(backups[b]["started"]) for b in reasons), default=None)
    for chain in cat["chains"]:
        for bid in chain["unrestorable"]:
            if oldest_kept is not None and parse_time(backups[bid]["started"]) >= oldest_kept:
                reasons[bid] = f"not restorable ({chain['problem']}); kept while newer than the oldest kept backup"
    delete = []
    for chain in cat["chains"]:
        for bid in chain["restorable"] + chain["unrestorable"]:
            if bid not in reasons:
                delete.append(bid)
                reasons[bid] = ("not restorable and older than every kept backup"
                                if bid in chain["unrestorable"] else "outside the policy")
    order = sorted(backups, key=lambda b: (parse_time(backups[b]["started"]), b))
    keep = [b for b in order if b not in delete]
    kept_restorable = [b for b in keep if b in restorable]
    binlogs = None
    if kept_restorable:
        first = min(kept_restorable, key=lambda b: (gtid_seq(backups[b]["gtid"], domain), _finished(cat, b), b))
        binlogs = {
            "keep_from_gtid": gtid_in(backups[first]["gtid"], domain),
            "keep_from_seq": gtid_seq(backups[first]["gtid"], domain),
            "backup": first,
            "finished": backups[first]["finished"],
        }
    return {"keep": keep, "delete": [b for b in order if b in delete], "reasons": reasons, "binlogs": binlogs}


# -- the binlog archive -------------------------------------------------------


def validate_binlog_index(index, domain=DOMAIN):
    """Problems of the archive's index (empty: valid). The archiver on arb1
    writes it:

    * ``files``: [{name, node, start_gtid, end_gtid, first_time, last_time,
      size, complete}]: ``name`` as stored (``db1/mariadb-bin.000031``), the
      writer it came from, the GTID list before its first transaction (its
      Gtid_list event) and of its last one (equal when it holds none), the
      times of its first and last transactions (None when it holds none),
      ``complete``: False for the file still being written;
    * ``cluster_uuid``: the Galera cluster these binlogs belong to: a restore
      bootstraps a new cluster whose GTIDs may repeat the old ones, so the
      archive keeps one index per cluster;
    * ``complete_until``: the time up to which the archive is known to hold
      every transaction (the archiver's last contact with the writer).
    """
    if not isinstance(index, dict) or not isinstance(index.get("files"), list):
        return ["binlog index must be {files: [...], complete_until: time}"]
    problems, names = [], set()
    for number, entry in enumerate(index["files"]):
        where = f"binlog index files[{number}]"
        if not isinstance(entry, dict):
            problems.append(f"{where} is not a mapping")
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not BINLOG_RE.match(name):
            problems.append(f"{where}: name {name!r} is not a stored binlog name")
        elif name in names:
            problems.append(f"{where}: {name} is listed twice")
        names.add(name)
        try:
            start = gtid_seq(entry.get("start_gtid"), domain, "start_gtid")
            end = gtid_seq(entry.get("end_gtid"), domain, "end_gtid")
            if end < start:
                problems.append(f"{where}: end_gtid {entry['end_gtid']} is before start_gtid {entry['start_gtid']}")
        except BackupError as exc:
            problems.append(f"{where}: {exc}")
        holds = False
        try:
            holds = gtid_seq(entry.get("end_gtid"), domain) > gtid_seq(entry.get("start_gtid"), domain)
        except BackupError:
            pass
        for key in ("first_time", "last_time"):
            if entry.get(key) is None and holds:
                problems.append(f"{where}: {key} is missing for a file that holds transactions")
            elif entry.get(key) is not None:
                try:
                    parse_time(entry[key], key)
                except BackupError as exc:
                    problems.append(f"{where}: {exc}")
        if not isinstance(entry.get("complete"), bool):
            problems.append(f"{where}: complete must be true or false")
    if index.get("complete_until") is not None:
        try:
            parse_time(index["complete_until"], "complete_until")
        except BackupError as exc:
            problems.append(f"binlog index: {exc}")
    return problems


def _binlog_files(index, domain):
    problems = validate_binlog_index(index, domain)
    if problems:
        raise BackupError("the binlog index is unusable: " + "; ".join(problems))
    files = []
    for entry in index["files"]:
        start = gtid_seq(entry["start_gtid"], domain)
        end = gtid_seq(entry["end_gtid"], domain)
        if end > start:  # a file without a transaction of the domain covers nothing
            files.append(dict(entry, start_seq=start, end_seq=end))
    return files


def binlogs_to_prune(index, keep_from_seq, domain=DOMAIN):
    """Archived binlog files retention may delete: complete files whose
    transactions are all at or before ``keep_from_seq`` (the GTID seq of the
    oldest kept backup, ``retention()['binlogs']``). None: delete nothing."""
    if keep_from_seq is None:
        return []
    return sorted(f["name"] for f in _binlog_files(index, domain)
                  if f["complete"] and f["end_seq"] <= keep_from_seq)


def _cover(files, seq, target_seq=None, until_time=None):
    """Pick archived files that hold every transaction after ``seq``.

    Greedy: from the current position, the file that holds the next
    transaction and reaches furthest (ties: name order). Stops at
    ``target_seq``, at the first file whose last transaction is at or after
    ``until_time``, or where no file holds the next transaction. Returns
    (picked [(file, start_after_seq)], reached_seq, reached_time, next_start):
    ``next_start`` is the start of the first file after a gap (None: the
    archive simply ends)."""
    picked, reached_time = [], None
    while target_seq is None or seq < target_seq:
        holding = [f for f in files if f["start_seq"] <= seq < f["end_seq"]]
        if not holding:
            later = [f["start_seq"] for f in files if f["start_seq"] > seq]
            return picked, seq, reached_time, (min(later) if later else None)
        best = min(holding, key=lambda f: (-f["end_seq"], f["name"]))
        picked.append((best, seq))
        seq = best["end_seq"]
        if best.get("last_time"):
            reached_time = parse_time(best["last_time"])
        if until_time is not None and reached_time is not None and reached_time >= until_time:
            break
    return picked, seq, reached_time, None


# -- restore ------------------------------------------------------------------


def parse_until(until):
    """restore:until -> ("latest", None) | ("gtid", (domain, server, seq)) |
    ("time", datetime). None or "latest": all the archive holds."""
    if until is None or (isinstance(until, str) and until.strip().lower() in ("", "latest")):
        return "latest", None
    if isinstance(until, str) and GTID_RE.match(until.strip()):
        domain, server, seq = (int(g) for g in GTID_RE.match(until.strip()).groups())
        return "gtid", (domain, server, seq)
    try:
        return "time", parse_time(until, "restore:until")
    except BackupError:
        raise BackupError(f"restore:until {until!r} is neither a time (2024-05-01T12:00:00Z, UTC) "
                          "nor a GTID (0-1-1234), nor 'latest'")


def plan_restore(cat, binlog_index, backup, until, now, domain=DOMAIN, data_nodes=(), current_gtid=None):
    """What ``orch.restore`` does: which backups, which binlogs, up to where.

    ``backup``: a backup id, or "latest" / None for the newest restorable
    backup before ``until``. ``until``: a UTC time (events before it are
    replayed, none at or after it), a GTID ``domain-server-seq`` (replayed up
    to and including it), or "latest" / None (everything archived).
    ``data_nodes``: the cluster's data nodes (topology.roles.db.members),
    ``current_gtid``: the cluster's gtid_binlog_pos now, if it answers.

    Rules:

    * ``until`` must parse, lie in the cluster's GTID domain (a GTID) and not
      after ``now`` (a time);
    * the backup must exist and be restorable: a backup after a gap in its
      chain is refused, naming the gap and the last restorable backup;
    * ``until`` must not be before the backup: a time before it finished, or
      a GTID before its position (a backup restores to its end at the earliest);
    * the chain is applied from its full up to the named backup, and further
      through its later restorable incrementals that finished by ``until``
      (a time) or sit at or before it (a GTID): fewer binlogs to replay;
    * binlogs are replayed from that position by GTID, picking archived files
      of any writer; every transaction between the position and ``until``
      must be in the archive: a gap, or an archive that is not known complete
      up to ``until``, is refused, naming the GTIDs or times missing;
    * the data is restored on the node the backup was taken from when it is
      a data node, else the first one; the others rejoin by SST.

    Returns the plan (a dict, see ``describe``); raises BackupError.
    """
    kind, target = parse_until(until)
    now = parse_time(now, "now")
    if kind == "time" and target > now + CLOCK_SKEW:
        raise BackupError(f"restore:until {format_time(target)} is in the future (now is {format_time(now)}): "
                          "give a time in the past, or 'latest'")
    if kind == "gtid" and target[0] != domain:
        raise BackupError(f"restore:until {until} is in GTID domain {target[0]}, the cluster writes domain {domain} "
                          "(wsrep_gtid_domain_id): give a GTID of that domain")
    backups = cat["backups"]
    restorable = _restorable_ids(cat)

    def fits(bid):
        manifest = backups[bid]
        if kind == "time":
            return parse_time(manifest["finished"]) <= target
        if kind == "gtid":
            return gtid_seq(manifest["gtid"], domain) <= target[2]
        return True

    if backup is None or (isinstance(backup, str) and backup.strip().lower() in ("", "latest")):
        fitting = [b for b in restorable if fits(b)]
        if not fitting:
            raise BackupError(f"no restorable backup is from before restore:until {until}: "
                              "see salt-run lemp_backup.list")
        chosen = max(fitting, key=lambda b: (_finished(cat, b), b))
    else:
        chosen = backup
        if chosen not in backups:
            newest = sorted(restorable, key=lambda b: (_finished(cat, b), b))[-3:]
            raise BackupError(f"restore:backup {chosen!r} is not a known backup (newest restorable: "
                              f"{', '.join(newest) or 'none'}); see salt-run lemp_backup.list")
        chain = _chain_of(cat, chosen)
        if chosen not in chain["restorable"]:
            last = chain["restorable"][-1] if chain["restorable"] else None
            hint = f"; choose {last} or an earlier backup" if last else "; choose a backup of another chain"
            raise BackupError(f"restore:backup {chosen} cannot be restored: {chain['problem']}{hint}")
        if not fits(chosen):
            manifest = backups[chosen]
            at = f"finished at {manifest['finished']}" if kind == "time" else f"is at GTID {manifest['gtid']}"
            raise BackupError(f"restore:until {until} is before backup {chosen}, which {at}: a backup restores "
                              "to its end at the earliest; choose an earlier backup (salt-run lemp_backup.list)")
    chain = _chain_of(cat, chosen)
    ids = chain["restorable"]
    # later incrementals are used while each one fits (they are in order)
    usable = ids[:ids.index(chosen) + 1]
    for bid in ids[len(usable):]:
        if not fits(bid):
            break
        usable.append(bid)
    apply = usable
    base = backups[apply[-1]]
    if base["gtid"] and domain not in parse_gtid_list(base["gtid"]):
        raise BackupError(f"backup {base['id']} is at GTID {base['gtid']}, which has no position in domain {domain} "
                          "(wsrep_gtid_domain_id): binlogs cannot be lined up with it")
    base_seq = gtid_seq(base["gtid"], domain)
    files = _binlog_files(binlog_index, domain)
    cluster = base["galera_position"].partition(":")[0].lower()
    if binlog_index.get("cluster_uuid") and binlog_index["cluster_uuid"].lower() != cluster:
        raise BackupError(f"the binlog index is of cluster {binlog_index['cluster_uuid']} but backup {base['id']} "
                          f"is of cluster {cluster}: replay the archive of that cluster (each bootstrap from a "
                          "restore starts a new one)")
    target_seq = target[2] if kind == "gtid" else None
    picked, reached, reached_time, next_start = _cover(
        files, base_seq, target_seq, target if kind == "time" else None)
    archive_end = max((f["end_seq"] for f in files), default=0)
    complete_until = binlog_index.get("complete_until")
    complete_until = parse_time(complete_until) if complete_until else None
    reached_gtid = gtid_in(picked[-1][0]["end_gtid"] if picked else base["gtid"], domain) or f"{domain}-0-{reached}"
    short_time = kind == "time" and (reached_time is None or reached_time < target)
    if next_start is not None and (kind == "latest" or short_time or (kind == "gtid" and reached < target_seq)):
        raise BackupError(
            f"binlogs missing: GTID seq {reached + 1} to {next_start} of domain {domain} are in no archived file "
            f"(check the binlog archiver on arb1); restore:until can reach GTID {reached_gtid} at most")
    if kind == "gtid" and reached < target_seq:
        raise BackupError(f"binlogs missing between GTID {reached_gtid} and restore:until {until}: the archive "
                          f"ends there; give a GTID it holds, or 'latest'")
    if (short_time or kind == "latest") and base_seq > archive_end:
        raise BackupError(f"binlogs missing after backup {base['id']} (GTID {base['gtid']}): the archive ends at "
                          f"seq {archive_end}, before the backup; check the binlog archiver on arb1")
    if short_time and (complete_until is None or complete_until < target):
        known = format_time(complete_until) if complete_until else "(no time recorded)"
        raise BackupError(f"binlogs missing between {known} and restore:until {format_time(target)}: the archive "
                          "is known complete only up to then (is the binlog archiver on arb1 running?); "
                          "give an earlier restore:until")
    binlogs = []
    for number, (entry, after) in enumerate(picked):
        last = number == len(picked) - 1
        stop = None
        if last and kind == "time":
            stop = {"datetime_utc": target.strftime("%Y-%m-%d %H:%M:%S")}
        elif last and kind == "gtid":
            stop = {"gtid": f"{target[0]}-{target[1]}-{target[2]}"}
        start_after = base["gtid"] if number == 0 else picked[number - 1][0]["end_gtid"]
        binlogs.append({"file": entry["name"], "node": entry.get("node"),
                        "start_after": gtid_in(start_after, domain) or f"{domain}-0-{after}", "stop": stop,
                        # the file's own GTID state: its other domains (a node's local writes) must be named in
                        # the start position, or mariadb-binlog refuses the file
                        "file_state": entry.get("start_gtid") or ""})
    nodes = sorted(data_nodes or [])
    restore_on = base["node"] if base["node"] in nodes else (nodes[0] if nodes else None)
    return {
        "backup": chosen,
        "chain": chain["id"],
        "cluster": cluster,
        "apply": apply,
        "base": {"id": base["id"], "gtid": base["gtid"], "finished": base["finished"], "node": base["node"]},
        "until": {"kind": kind, "value": (format_time(target) if kind == "time" else
                                          f"{target[0]}-{target[1]}-{target[2]}" if kind == "gtid" else None)},
        "binlogs": binlogs,
        "reaches_seq": reached if kind != "gtid" else min(reached, target_seq),
        "encryption": sorted({backups[b]["encryption"]["tool"] for b in apply}),
        "archive_complete_until": format_time(complete_until) if complete_until else None,
        "restore_on": restore_on,
        "rejoin": [n for n in nodes if n != restore_on],
        "current_gtid": current_gtid,
    }


def describe(plan):
    """What a dry run (restore without ``confirm``) prints: which backup,
    which binlogs, up to where, and what would be replaced."""
    base = plan["base"]
    lines = [f"Restore (dry run: nothing is changed; add confirm: true to run it)",
             f"  backup: {plan['backup']} (chain {plan['chain']})",
             f"  prepare: {' -> '.join(plan['apply'])}"
             + (f" (encrypted: {', '.join(t for t in plan['encryption'] if t != 'none')})"
                if any(t != "none" for t in plan["encryption"]) else ""),
             f"  restored position: GTID {base['gtid'] or '(none)'}, backup finished {base['finished']}"]
    until = plan["until"]
    if not plan["binlogs"]:
        lines.append("  binlogs: none to replay (the backup is already at the requested point)")
    else:
        lines.append(f"  binlogs: {len(plan['binlogs'])} file(s) from the archive on arb1, replayed by GTID:")
        for entry in plan["binlogs"]:
            stop = entry["stop"] or {}
            tail = (f", stop before {stop['datetime_utc']} UTC" if "datetime_utc" in stop else
                    f", stop after GTID {stop['gtid']}" if "gtid" in stop else "")
            lines.append(f"    {entry['file']} (from {entry['node']}): after GTID {entry['start_after']}{tail}")
    if until["kind"] == "time":
        lines.append(f"  up to: {until['value']} (transactions before that time, none at or after it)")
    elif until["kind"] == "gtid":
        lines.append(f"  up to: GTID {until['value']} (included)")
    else:
        lines.append(f"  up to: the end of the binlog archive (GTID seq {plan['reaches_seq']}; the archive is known "
                     f"complete up to {plan.get('archive_complete_until') or 'an unrecorded time'})")
    replaced = "the data of every data node" + (f" ({', '.join([plan['restore_on']] + plan['rejoin'])})"
                                               if plan.get("restore_on") else "")
    if plan.get("current_gtid"):
        replaced += f", now at GTID {plan['current_gtid']}; every transaction after the restored point is lost"
    lines.append(f"  replaces: {replaced}")
    if plan.get("restore_on"):
        lines.append(f"  then: bootstrap the cluster from {plan['restore_on']}"
                     + (f"; {', '.join(plan['rejoin'])} rejoin by SST" if plan["rejoin"] else ""))
    lines.append("  the web tier serves the maintenance page meanwhile")
    return "\n".join(lines)


# -- the restore request, replay and the timeline after a restore ----------------

REQUEST_KEYS = ("backup", "until", "confirm")
REQUEST_HELP = ("pillar='{\"restore\": {\"backup\": \"<id>|latest\", \"until\": \"<UTC time>|<GTID>|latest\", "
                "\"confirm\": true}}' (ids: salt-run lemp_backup.list)")


def check_request(request):
    """The pillar ``restore`` of ``orch.restore``: {backup, until, confirm}.

    * ``backup``: a backup id, or ``latest``; ``until``: a UTC time, a GTID
      or ``latest``; both must be given, so that nobody restores the wrong
      point by leaving one out;
    * ``confirm``: ``true`` (a boolean) runs the restore; absent or ``false``
      only prints the plan; anything else is refused (``"yes"`` is not true);
    * an unknown key is refused (a typo of ``confirm`` must not turn a
      restore into a dry run unnoticed, nor the reverse).

    Returns the request with ``confirm`` a bool; raises BackupError naming
    the key and the fix."""
    if request is None:
        raise BackupError(f"pillar restore is missing: give {REQUEST_HELP}; without confirm the plan is only printed")
    if not isinstance(request, dict):
        raise BackupError(f"pillar restore {request!r} must be a mapping: {REQUEST_HELP}")
    unknown = sorted(str(k) for k in request if k not in REQUEST_KEYS)
    if unknown:
        raise BackupError(f"restore:{unknown[0]} is not a restore setting; use {', '.join(REQUEST_KEYS)}: {REQUEST_HELP}")
    for key in ("backup", "until"):
        value = request.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise BackupError(f"restore:{key} is missing: {REQUEST_HELP}")
        if not isinstance(value, str):
            raise BackupError(f"restore:{key} {value!r} must be a string (an id, a time, a GTID or latest)")
    backup = request["backup"].strip()
    if backup.lower() != "latest" and not ID_RE.match(backup):
        raise BackupError(f"restore:backup {backup!r} is not a backup id: see salt-run lemp_backup.list")
    confirm = request.get("confirm", False)
    if not isinstance(confirm, bool):
        raise BackupError(f"restore:confirm {confirm!r} must be true or false (a boolean, not a string)")
    parse_until(request["until"])  # a malformed until is refused before anything is read
    return {"backup": backup, "until": request["until"].strip(), "confirm": confirm}


def pick_index(indexes, cat, backup):
    """The binlog index (``{cluster uuid: index}``, the store's
    binlogs/<uuid>/index.json) a restore of ``backup`` replays: the one of
    the cluster the backup was taken in (its galera_position's uuid); for
    ``latest``, the cluster of the newest restorable backup. An empty index
    when the archive holds none for it: plan_restore then says what is missing."""
    if isinstance(backup, str) and backup in cat["backups"]:
        manifest = cat["backups"][backup]
    else:
        chain = newest_restorable_chain(cat)
        manifest = cat["backups"][chain["restorable"][-1]] if chain else None
    if manifest is None:
        return {"files": [], "complete_until": None}
    cluster = manifest["galera_position"].partition(":")[0].lower()
    for uuid, index in (indexes or {}).items():
        if uuid.lower() == cluster:
            return index
    return {"cluster_uuid": cluster, "files": [], "complete_until": None}


def binlog_replay_args(entry, path):
    """``mariadb-binlog`` arguments replaying one segment of a restore plan
    (``plan['binlogs'][n]``) from the file at ``path``: from after its
    ``start_after`` GTID (exclusive), to its stop: a GTID (inclusive) or a
    UTC time (exclusive; run it with TZ=UTC, mariadb-binlog reads the time
    in the local zone). Its output goes to ``mariadb`` on the restored server."""
    start = entry.get("start_after")
    if not isinstance(start, str) or not GTID_RE.match(start):
        raise BackupError(f"binlog segment {entry.get('file')!r}: start_after {start!r} is not a GTID")
    if not isinstance(path, str) or not path.startswith("/"):
        raise BackupError(f"binlog segment {entry.get('file')!r}: {path!r} is not an absolute path")
    # Only the cluster's domain is replayed (a node's local writes, in its own
    # gtid_domain_id, are not the cluster's data). mariadb-binlog still wants
    # every domain of the file in the start position: the others start at the
    # file's own GTID state, so none of their events is output anyway.
    domain = parse_gtid_list(start, "start_after")
    others = {d: v for d, v in parse_gtid_state(entry.get("file_state") or "", "file_state").items()
              if d not in domain}
    position = ",".join(f"{d}-{srv}-{n}" for d, (srv, n) in sorted({**others, **domain}.items()))
    args = ["mariadb-binlog", "--base64-output=auto", f"--start-position={position}",
            "--do-domain-ids=" + ",".join(str(d) for d in sorted(domain))]
    stop = entry.get("stop") or {}
    if "datetime_utc" in stop:
        parse_time(stop["datetime_utc"].replace(" ", "T"), "stop datetime")
        args.append(f"--stop-datetime={stop['datetime_utc']}")
    elif "gtid" in stop:
        if not GTID_RE.match(stop["gtid"]):
            raise BackupError(f"binlog segment {entry.get('file')!r}: stop GTID {stop['gtid']!r} is not a GTID")
        args.append(f"--stop-position={stop['gtid']}")
    return args + [path]


def superseded(cat, cluster, restored_seq, domain=DOMAIN, reason=""):
    """After a restore to GTID seq ``restored_seq`` of ``cluster``, the
    backups of that cluster taken after that point describe a history that
    no longer happened: the restored cluster writes new transactions under
    the same GTIDs. They must never be restored again (nor combined with the
    new binlogs). Returns {id: why}; the store records them so that the
    catalogue leaves them out, like a failed drill."""
    out = {}
    for bid, manifest in sorted(cat["backups"].items()):
        if manifest["galera_position"].partition(":")[0].lower() != cluster.lower():
            continue
        if gtid_seq(manifest["gtid"], domain) > restored_seq:
            out[bid] = (f"superseded by the restore to GTID seq {restored_seq}{reason}: it holds transactions "
                        "of the history the restore undid")
    return out


# -- the drill ----------------------------------------------------------------


def drill_target(cat, backup=None):
    """What the drill restores: the chain up to ``backup`` (an id), or up to
    the newest restorable backup. Returns {backup, apply: [ids]} or raises
    BackupError (nothing to drill, unknown id, an id after a gap)."""
    if backup in (None, "", "latest"):
        chain = newest_restorable_chain(cat)
        if chain is None:
            raise BackupError("no restorable backup to drill: take one (salt-run lemp_backup.now kind=full)")
        backup = chain["restorable"][-1]
    if backup not in cat["backups"]:
        raise BackupError(f"backup {backup!r} is not a known backup: see salt-run lemp_backup.list")
    chain = _chain_of(cat, backup)
    if backup not in chain["restorable"]:
        raise BackupError(f"backup {backup} cannot be restored: {chain['problem']}")
    ids = chain["restorable"]
    return {"backup": backup, "apply": ids[:ids.index(backup) + 1]}


def compare_check(expected, measured):
    """The drill's verdict on the restored data: ``expected`` is the
    manifest's ``check`` ({rows, checksums} per ``db.table``), ``measured``
    the same read from the scratch server at the same GTID. Every table of
    either side must match in rows and checksum; returns the problems
    (empty: the restore is exact)."""
    problems = []
    for key, what in (("rows", "rows"), ("checksums", "checksum")):
        want, got = expected.get(key) or {}, measured.get(key) or {}
        for table in sorted(set(want) | set(got)):
            if table not in got:
                problems.append(f"{table}: missing from the restored data (the backup node had {what} {want[table]})")
            elif table not in want:
                problems.append(f"{table}: in the restored data, not on the backup node")
            elif want[table] != got[table]:
                problems.append(f"{table}: {what} {got[table]} restored, {want[table]} on the backup node")
    return problems


def drill_record(ok, target, cat, now, archive=None, problems=(), checked=None, started=None, step=None):
    """The drill's result (drills/, status.json ``drill``; monitoring_record passes it on).

    * ``ok``: the chain restored and checked; ``step``: where it failed;
    * ``backup``, ``kind``, ``finished``, ``backup_age_seconds``: the newest
      backup the drill restored, and how old it is now (an alert when no
      fresh backup restores);
    * ``archive_lag_seconds``, ``archive_complete_until``: how far behind
      the binlog archive is (status.json's archive), the RPO now;
    * ``problems``, ``checked`` ({tables, rows, mode}), ``duration_seconds``."""
    now = parse_time(now, "now")
    record = {"ok": bool(ok), "at": format_time(now.replace(microsecond=0)), "step": step,
              "problems": list(problems), "checked": checked or {}}
    manifest = cat["backups"].get((target or {}).get("backup"))
    if manifest:
        finished = parse_time(manifest["finished"])
        record.update(backup=manifest["id"], kind=manifest["kind"], chain=manifest["chain"],
                      apply=list(target["apply"]), finished=manifest["finished"],
                      backup_age_seconds=int((now - finished).total_seconds()))
    else:
        record.update(backup=None, kind=None, chain=None, apply=[], finished=None, backup_age_seconds=None)
    archive = archive or {}
    record["archive_complete_until"] = archive.get("complete_until")
    if archive.get("complete_until"):
        record["archive_lag_seconds"] = int((now - parse_time(archive["complete_until"])).total_seconds())
    else:
        record["archive_lag_seconds"] = None
    record["duration_seconds"] = int((now - parse_time(started)).total_seconds()) if started else None
    return record


def monitoring_record(status, now):
    """What the Zabbix agent reads (backup:lookup:monitoring:status_file),
    from status.json: rewritten at each status change, so every 2 s while
    the binlog archiver runs (its poll) and after each backup and drill.

    Zabbix computes every age itself, as now minus a ``*_ts`` (epoch
    seconds) of this file: an age keeps growing when the writers stop, so a
    stalled job, archiver or drill raises its own problem even though this
    file no longer changes. Every ``*_ts`` is an integer: when nothing has
    happened yet (no backup, no drill, an archive not known complete), it is
    ``since_ts``, when status.json was first written, so "none for 26 h"
    alerts like "the last one 26 h ago" and a fresh store alerts nothing.

    * ``updated_ts``: this write (the file stopped updating: the archiver,
      its only frequent writer, is down);
    * ``drill_ok``: 1 the last drill passed, 0 it failed, -1 no drill yet;
      ``drill_at_ts``; ``drilled_finished_ts``: the backup the last
      *passed* drill restored and checked (status.json ``drill_passed``),
      the newest one proven restorable: a failed drill does not reset it;
    * ``newest_finished_ts``: the newest backup taken (status.json
      ``last_backup``);
    * ``archive_complete_until_ts``: the binlog archive holds every
      transaction committed before it (the RPO if every db node is lost).

    The drill's own record (ok, at, step, problems, backup, kind, finished,
    backup_age_seconds, checked, duration_seconds: drill_record) is kept at
    the top level, as the drill wrote it; ``archive_lag_seconds`` is the lag
    as of this write."""
    now = parse_time(now, "now")
    status = status or {}
    since = parse_time(status.get("since") or now, "status.json since")

    def ts(value, what):
        return int((parse_time(value, what) if value else since).timestamp())

    drill = dict(status.get("drill") or {})
    last = status.get("last_backup") or {}
    archive = status.get("archive") or {}
    passed = status.get("drill_passed") or {}
    record = {key: drill.get(key) for key in ("ok", "at", "step", "problems", "backup", "kind", "finished",
                                              "backup_age_seconds", "checked", "duration_seconds")}
    record.update(
        updated=format_time(now.replace(microsecond=0)), updated_ts=int(now.timestamp()),
        since=format_time(since.replace(microsecond=0)), since_ts=int(since.timestamp()),
        drill_ok=-1 if not drill else int(bool(drill.get("ok"))),
        drill_at_ts=ts(drill.get("at"), "drill at"),
        drilled_backup=passed.get("backup"),
        drilled_finished_ts=ts(passed.get("finished"), "drilled backup finished"),
        newest_backup=last.get("id"), newest_kind=last.get("kind"), newest_finished=last.get("finished"),
        newest_finished_ts=ts(last.get("finished"), "last_backup finished"),
        archive_node=archive.get("node"), archive_gap=archive.get("gap"),
        archive_complete_until=archive.get("complete_until"),
        archive_complete_until_ts=ts(archive.get("complete_until"), "archive complete_until"))
    record["archive_lag_seconds"] = record["updated_ts"] - record["archive_complete_until_ts"]
    return record


# -- where a backup is taken --------------------------------------------------


def _is_synced(status):
    """Same test as galera.is_synced (a unit test keeps them in step)."""
    return bool(isinstance(status, dict) and status.get("running") and status.get("wsrep_on")
                and status.get("cluster_status") == "Primary" and status.get("ready")
                and status.get("local_state") == SYNCED)


def choose_backup_node(members_status, writer):
    """The data node a backup is taken from, and whether to desync it.

    ``members_status``: {node: galera.status answer} of every data node (a
    missing or non-dict answer: the node did not answer). ``writer``: the
    node the single-writer endpoint sends writes to (None: unknown).

    Rules:

    * only a Synced node (Primary, ready, local_state 4) may be backed up;
    * the writer, when it is Synced: the binlog archive follows the writer,
      and a backup's GTID is only a position in the binlogs of the node it
      was taken on. MariaDB Galera does not keep domain sequence numbers the
      same on every node (seen in the lab: db2 one transaction behind db1
      after a DDL), so a backup from another node would make the restore
      replay from the wrong transaction. Not desynced: it applies no
      replicated writes that could lag;
    * else another Synced node (first in name order), desynced for the time
      of the backup and resynced after, with the reason: a physical backup
      that restores to its own point; a point-in-time replay after it may be
      refused or off by the nodes' GTID difference;
    * else refuse, with every node's state.

    Returns {node, writer: bool, desync: bool, reason}.
    """
    states = {}
    for name in sorted(members_status or {}):
        status = members_status[name]
        if _is_synced(status):
            states[name] = "Synced"
        elif isinstance(status, dict):
            states[name] = (f"not Synced (cluster_status {status.get('cluster_status')}, "
                            f"local_state {status.get('local_state')})")
        else:
            states[name] = "did not answer"
    synced = [n for n, s in states.items() if s == "Synced"]
    if writer in synced:
        return {"node": writer, "writer": True, "desync": False,
                "reason": f"{writer} is the writer, whose binlogs the archive holds: the backup's GTID is a "
                          "position in them"}
    if synced:
        who = f"the writer {writer}: {states.get(writer, 'not a data node')}" if writer else "the writer is unknown"
        return {"node": synced[0], "writer": False, "desync": True,
                "reason": f"{synced[0]} is Synced ({who}): its GTIDs may differ from the archive's, a "
                          "point-in-time replay after this backup is not guaranteed"}
    detail = "; ".join(f"{n}: {s}" for n, s in states.items()) or "no data node given"
    raise BackupError(f"no data node is Synced, no backup can be taken: {detail}")


# -- Salt wrappers ------------------------------------------------------------


def plan(manifests, binlog_index, backup=None, until=None, now=None, data_nodes=(), current_gtid=None,
         drills=None):
    """plan_restore for the runners: the plan with its dry-run text, or a
    CommandExecutionError with the reason."""
    try:
        cat = catalogue(manifests, drills)
        result = plan_restore(cat, binlog_index, backup, until,
                              now or datetime.datetime.now(datetime.timezone.utc),
                              data_nodes=data_nodes, current_gtid=current_gtid)
    except BackupError as exc:
        raise CommandExecutionError(str(exc))
    result["text"] = describe(result)
    return result
