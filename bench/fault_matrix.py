#!/usr/bin/env python3
"""The fault matrix (issue #14): every fault under the same load, in one run,
one table in docs/bench.md.

Load, for the whole run (threads on the lab host, each bounded in seconds):
  - HTTPS clients through the VIP on a page that reads the database
    (GET /api/items/<id>), keep-alive, --timeout (10 s); every request is
    logged (start, latency, status or error);
  - a session writer: --session-clients clients, each with its own cookie
    jar, on GET /api/info (a session counter, +1 a request). "Session lost":
    the counter went back; "id replaced": the PHPSESSID cookie changed;
  - an upload checker on every web node: as www-data, a small file written
    into the GlusterFS uploads mount with fsync, 5 times a second, each
    completion logged. "Upload gap": the longest pause between two completed
    writes on a web node the fault does not stop (a brick lost, the volume's
    quorum held: how long uploads are blocked);
  - an acknowledged-write checker through the database endpoint: the lab
    tests' Writer (tests/lab/galera_helpers.py) into a table with a
    server-side TIMESTAMP(6), on a web node (the firewall admits web nodes
    to the endpoint) that the current fault does not touch: it moves when
    the fault's target is its node. One segment per fault (its own id range).
Observers inside the containers, one long-lived lxc-attach each: on every
LB, whether it holds the VIP and which redis-sessions servers HAProxy has
UP (5 samples/s); on every db node, wsrep_local_state_comment (2/s).

Faults, each resolved at run time (VIP holder, Galera writer as the endpoint
routes it, Redis master from Sentinel), each followed by its return row
(started again, unmasked, link up), see --list. Each fault: wait until the
lab is healthy, inject, wait until the load is served again, observe
--settle s, restore (the return row), wait until healthy, observe --settle s.
Every fault restores in a `finally`. Then the overhead rows: sysbench
oltp_read_write (4 threads, from arb1: the firewall admits it to the
endpoint and to the db nodes) through the endpoint vs the writer directly,
with two floors on the active LB: the same hop done by the kernel (nftables
DNAT, port 13306) and by a plain relay (socat, port 13307); HTTPS through the
VIP with one web backend (the others in maint on both LBs, restored in a
`finally`) vs that backend directly. Each overhead row rests every load loop
and observer, runs a warm-up, then --overhead-rounds rounds of its arms in
alternating order, and reports the medians, every round, the host's
busy/idle/steal % and the CPU ms per transaction or request of the LB, the
node and the client (cgroup cpuacct, read on the host) for each arm.

Columns: failed requests (started in the row's window); error window (first
failed request's start to the last one's end); slowest request; write gap
(the longest pause between two acknowledged rows' server timestamps); upload
gap (above); acknowledged writes lost (missing on a db node afterwards); sessions lost /
ids replaced; seconds both LBs held the VIP / seconds two Redis servers were
UP as master in HAProxy; recovery (fault rows: inject until the last error
users saw ended; return rows: restore until the lab is healthy again); the
issue's target for the row (TARGETS below) and whether it was met.

Writes the section `fault_matrix` of docs/bench.md (unless --no-doc). Needs
root and the lab up (exits 3 otherwise); `--list` needs neither. Never
asserts a figure.
"""

import dataclasses
import json
import pathlib
import resource
import secrets
import shlex
import statistics
import subprocess
import threading
import time
import uuid

import common  # first: it puts the lab driver and the lab tests' helpers on sys.path
import galera_helpers as gh
import lemplab
import web_helpers as wh
from common import log, wait_for

# -- the targets, as data ----------------------------------------------------
# metric -> the most allowed (counts and seconds; overhead in %)
PLANNED = {"failed": 0, "slowest": 1.0}
WEB_LOSS = {"failed": 0, "slowest": 1.0}
LB_LOSS = {"error_window": 1.0}
DB_LOSS = {"write_gap": 3.0, "lost": 0}
SESSIONS = {"sessions_lost": 0, "ids_replaced": 0, "two_masters": 0.0}
NO_EFFECT = {"failed": 0, "slowest": 1.0}
SST = {"failed": 0, "lost": 0}
UPLOADS = {"upload_gap": 5.0}  # a GlusterFS brick lost: uploads blocked <= 5 s
SPLIT_HEALED = {"vip_both": 1.0}
MEASURED = {}

TARGET_TEXT = {
    "failed": "{v} failed",
    "error_window": "error window ≤ {v} s",
    "slowest": "no request over {v} s",
    "write_gap": "write gap ≤ {v} s",
    "upload_gap": "uploads blocked ≤ {v} s",
    "lost": "{v} acked writes lost",
    "sessions_lost": "{v} sessions lost",
    "ids_replaced": "{v} ids replaced",
    "vip_both": "VIP on both ≤ {v} s",
    "two_masters": "two Redis masters ≤ {v} s",
    "overhead": "overhead ≤ {v}%",
}
METRIC_NAME = {"failed": "failed", "error_window": "error window", "slowest": "slowest",
               "write_gap": "write gap", "upload_gap": "upload gap", "lost": "lost", "sessions_lost": "sessions lost",
               "ids_replaced": "ids replaced", "vip_both": "VIP on both", "two_masters": "two masters",
               "overhead": "overhead"}

HEADERS = ["fault", "target", "failed requests", "error window (s)", "slowest request (s)", "write gap (s)",
           "upload gap (s)", "acked writes lost", "sessions lost / ids replaced", "VIP on both / two Redis masters (s)",
           "recovery (s)", "target met?"]


# -- pure functions (tests/unit/test_fault_matrix.py) ---------------------------------

def merge(a, b):
    """a and b combined: the more demanding target of each metric."""
    out = dict(a)
    for k, v in b.items():
        out[k] = min(out[k], v) if k in out else v
    return out


def target_text(target):
    if not target:
        return "measured only"
    return "; ".join(TARGET_TEXT[k].format(v=_num(v)) for k, v in target.items())


def _num(v):
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def evaluate(figures, target):
    """"yes", "no: <each missed metric, its figure and target>", "—" (no
    target), or "n/a: <metric> not measured"."""
    if not target:
        return "—"
    missed, unknown = [], []
    for metric, most in target.items():
        value = figures.get(metric)
        if value is None:
            unknown.append(METRIC_NAME[metric])
        elif value > most + 1e-9:
            shown = f"{value:.2f}" if isinstance(value, float) else str(value)
            missed.append(f"{METRIC_NAME[metric]} {shown} > {_num(most)}")
    if missed:
        return "no: " + "; ".join(missed)
    if unknown:
        return "n/a: " + ", ".join(unknown) + " not measured"
    return "yes"


def error_window(requests, t0, t1):
    """Of the requests (start, latency, ok, detail) that started in [t0, t1):
    (failed count, seconds from the first failed one's start to the last
    failed one's end, that end); (0, 0.0, None) when none failed."""
    failed = [r for r in requests if t0 <= r[0] < t1 and not r[2]]
    if not failed:
        return 0, 0.0, None
    end = max(r[0] + r[1] for r in failed)
    return len(failed), end - min(r[0] for r in failed), end


def slowest(requests, t0, t1):
    """The longest latency of the requests started in [t0, t1) (None: none)."""
    return max((r[1] for r in requests if t0 <= r[0] < t1), default=None)


def write_gap(stamps, t0, t1):
    """The longest pause between two consecutive acknowledged writes (their
    server timestamps) that overlaps [t0, t1], as (seconds, end); when the
    writes had not resumed by t1, the open pause from the last one to t1
    counts. (None, None) with no write at all."""
    s = sorted(stamps)
    if not s:
        return None, None
    best = (None, None)
    for a, b in zip(s, s[1:]):
        if b >= t0 and a <= t1 and (best[0] is None or b - a > best[0]):
            best = (b - a, b)
    if s[-1] < t1 and (best[0] is None or t1 - max(s[-1], t0) > best[0]) and s[-1] >= t0 - 60:
        best = (t1 - s[-1], t1)
    return best


def upload_gap(uploads, t0, t1, exclude=()):
    """The longest pause between two completed uploads overlapping [t0, t1]
    on any web node not in `exclude` (the machines the fault stops: their
    own mount goes with them); `uploads` is {web: [(time, ok)]}. None when
    no web node wrote in the minute before t0 (no checker ran there)."""
    gaps = [write_gap([t for t, ok in samples if ok], t0, t1)[0]
            for web, samples in uploads.items() if web not in exclude]
    gaps = [g for g in gaps if g is not None]
    return max(gaps, default=None)


def lost_writes(acked, present_by_node, split=None):
    """Acknowledged ids missing on any node: (count at or below `split`,
    count above it); with no split, (count, 0)."""
    missing = set()
    for present in present_by_node.values():
        missing |= set(acked) - set(present)
    if split is None:
        return len(missing), 0
    return sum(1 for i in missing if i <= split), sum(1 for i in missing if i > split)


def session_events(samples, t0, t1):
    """From the session writer's samples (time, client, counter, cookie id):
    (clients whose session was lost, clients whose id was replaced) in
    [t0, t1). Lost: the client's counter went back (the session restarted);
    replaced: its PHPSESSID changed. Each is charged to the moment the
    client's session first broke: its first sample without a counter after
    its last good one (the store failed it), or the sample itself when none
    failed before. So a client that failed during a fault and restarted at 1
    only after the fault's window closed is the fault's loss, and a client
    counts once however many requests it lost. A sample without a cookie
    does not reset the comparison."""
    lost, replaced = set(), set()
    last_counter, last_id, broke = {}, {}, {}
    for t, client, counter, sid in sorted(samples, key=lambda s: s[0]):
        if counter is None:
            broke.setdefault(client, t)
        when = broke.get(client, t)
        if counter is not None:
            prev = last_counter.get(client)
            if prev is not None and counter < prev and t0 <= when < t1:
                lost.add(client)
            last_counter[client] = counter
        if sid:
            prev_id = last_id.get(client)
            if prev_id and sid != prev_id and t0 <= when < t1:
                replaced.add(client)
            last_id[client] = sid
        if counter is not None:
            broke.pop(client, None)
    return len(lost), len(replaced)


def intervals(series, max_age):
    """[(start, end)] where a sampled flag series [(time, bool)] was true: a
    sample holds until the next one, at most `max_age` s (an observer that
    stopped answering, e.g. on a killed machine, says nothing)."""
    s = sorted(series, key=lambda x: x[0])
    out = []
    for i, (t, flag) in enumerate(s):
        if flag:
            end = t + max_age if i + 1 == len(s) else min(s[i + 1][0], t + max_age)
            if out and out[-1][1] >= t:
                out[-1] = (out[-1][0], max(out[-1][1], end))
            else:
                out.append((t, end))
    return out


def union(*interval_lists):
    out = []
    for a, b in sorted(iv for ivs in interval_lists for iv in ivs):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def seconds_with(interval_lists, need, t0, t1):
    """Seconds in [t0, t1] where at least `need` of the lists (each without
    overlaps within itself) are true at once."""
    events = []
    for ivs in interval_lists:
        for a, b in ivs:
            a, b = max(a, t0), min(b, t1)
            if b > a:
                events += [(a, 1), (b, -1)]
    events.sort()
    depth, total, last = 0, 0.0, None
    for t, d in events:
        if depth >= need and last is not None:
            total += t - last
        depth += d
        last = t
    return total


def vip_both_seconds(lb_samples, t0, t1, max_age=1.0):
    """Seconds where two or more LBs held the VIP: lb_samples is
    {lb: [(time, holds_vip, up_servers)]}."""
    lists = [intervals([(t, vip) for t, vip, _ in s], max_age) for s in lb_samples.values()]
    return seconds_with(lists, 2, t0, t1)


def two_masters_seconds(lb_samples, t0, t1, max_age=1.0):
    """Seconds where two or more Redis servers were UP (role:master) in
    HAProxy's redis-sessions, on one LB or across the LBs."""
    servers = {name for s in lb_samples.values() for _, _, up in s for name in (up or ())}
    lists = [union(*[intervals([(t, bool(up) and name in up) for t, _, up in s], max_age)
                     for s in lb_samples.values()]) for name in sorted(servers)]
    return seconds_with(lists, 2, t0, t1)


def states_seen(samples, t0, t1):
    """The states a node went through in [t0, t1] ("Synced → Donor/Desynced
    → Synced"), from [(time, state)]; "" when it never left one state."""
    seq = []
    for t, state in sorted(samples):
        if t0 <= t <= t1 and (not seq or seq[-1] != state):
            seq.append(state)
    return " → ".join(seq) if len(seq) > 1 else ""


def figures(requests, sessions, stamps, lb_samples, t0, t1, lost=None, uploads=None, stopped=()):
    """Every column of one row from the recorded samples of [t0, t1);
    `uploads` ({web: [(time, ok)]}) on the web nodes not `stopped`."""
    failed, window, fail_end = error_window(requests, t0, t1)
    gap, gap_end = write_gap(stamps, t0, t1)
    s_lost, s_replaced = session_events(sessions, t0, t1)
    ends = [e for e in (fail_end, gap_end if gap is not None and gap > 1.0 else None) if e is not None]
    return {"failed": failed, "error_window": window, "slowest": slowest(requests, t0, t1),
            "write_gap": gap, "upload_gap": upload_gap(uploads or {}, t0, t1, stopped), "lost": lost,
            "sessions_lost": s_lost, "ids_replaced": s_replaced,
            "vip_both": vip_both_seconds(lb_samples, t0, t1), "two_masters": two_masters_seconds(lb_samples, t0, t1),
            "service_back": max(max(ends) - t0, 0.0) if ends else 0.0}


def table_row(label, target_machine, fig, target, recovery, note=""):
    def f(v, digits=2):
        return "n/a" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))

    met = fig.get("error") and f"error: {fig['error']}" or evaluate(fig, target)
    return [label, target_machine or "—", f(fig.get("failed")), f(fig.get("error_window")),
            f(fig.get("slowest")), f(fig.get("write_gap")), f(fig.get("upload_gap")), f(fig.get("lost")),
            f"{f(fig.get('sessions_lost'))} / {f(fig.get('ids_replaced'))}",
            f"{f(fig.get('vip_both'), 1)} / {f(fig.get('two_masters'), 1)}", f(recovery, 1),
            (met + (f" ({note})" if note else ""))]


# -- the catalogue --------------------------------------------------------------------

@dataclasses.dataclass
class Fault:
    name: str
    label: str             # what is done to the target
    resolve: str           # which machine: see Matrix.resolve
    action: str            # see Matrix.inject / Matrix.restore
    target: dict           # the fault row's target
    back: str = ""         # the return row's label ("" = no return row)
    back_target: dict = dataclasses.field(default_factory=lambda: dict(PLANNED))
    quick: bool = False


def _machine_faults():
    out = []
    for key, who, resolve, target in [
            ("lb-holder", "lb (VIP holder)", "vip_holder", LB_LOSS), ("lb-backup", "lb (backup)", "vip_backup", NO_EFFECT),
            ("web", "web", "web", merge(WEB_LOSS, UPLOADS)),
            ("db-writer", "db writer", "db_writer", DB_LOSS), ("db-backup", "db backup", "db_backup", DB_LOSS),
            ("arb", "arbitrator", "arb", merge(DB_LOSS, UPLOADS)),
            ("salt-master", "salt master", "master", NO_EFFECT), ("monitor", "monitor", "monitor", NO_EFFECT)]:
        back = "LB failback (started again)" if resolve == "vip_holder" else f"{who} started again"
        back_target = merge(PLANNED, DB_LOSS) if resolve.startswith("db") or resolve == "arb" else PLANNED
        out.append(Fault(f"{key}-kill", f"{who} hard-killed (lxc-stop -k)", resolve, "kill", target, back,
                         back_target, quick=resolve in ("vip_holder", "web", "db_writer")))
        out.append(Fault(f"{key}-stop", f"{who} stopped cleanly (lxc-stop)", resolve, "stop", target, back,
                         back_target))
    out.append(Fault("redis-node-kill", "web node holding the Redis master hard-killed (lxc-stop -k)",
                     "redis_master", "kill", merge(merge(WEB_LOSS, SESSIONS), UPLOADS), "that web node started again",
                     merge(PLANNED, {"two_masters": 0.0}), quick=True))
    return out


# kill -9 of a service: (name, process shown, unit, resolve, target)
SERVICES = [
    ("haproxy", "haproxy", "haproxy", "vip_holder", LB_LOSS),
    ("keepalived", "keepalived", "keepalived", "vip_holder", merge(LB_LOSS, {"vip_both": 1.0})),
    ("nginx", "nginx", "nginx", "web", WEB_LOSS),
    ("php-fpm", "php-fpm8.2", "php8.2-fpm", "web", WEB_LOSS),
    ("mariadbd", "mariadbd", "mariadb", "db_writer", DB_LOSS),
    ("garbd", "garbd", "garb", "arb", DB_LOSS),
    ("redis", "redis-server (master)", "redis-server", "redis_master", SESSIONS),
    ("sentinel", "redis-sentinel", "redis-sentinel", "redis_master", NO_EFFECT),
    ("glusterfsd", "glusterfsd", "", "web", merge(NO_EFFECT, UPLOADS)),
]


def _service_faults():
    out = []
    for name, process, unit, resolve, target in SERVICES:
        back_target = (merge(PLANNED, {"two_masters": 0.0}) if name == "redis"
                       else merge(PLANNED, DB_LOSS) if resolve in ("db_writer", "arb") else PLANNED)
        out.append(Fault(f"kill9-{name}", f"kill -9 {process}" + (" (no restart)" if unit else ""),
                         resolve, f"svc:{name}", target, f"{process} started again", back_target,
                         quick=False))
    return out


def catalogue():
    """Every fault of the matrix, in run order."""
    return (_machine_faults() + _service_faults() + [
        Fault("web-partition", "web node's link down (ip link set eth0 down)", "web", "link", merge(WEB_LOSS, UPLOADS),
              "link up again"),
        Fault("db-partition", "db writer's link down (ip link set eth0 down)", "db_writer", "link", DB_LOSS,
              "link up again", merge(PLANNED, DB_LOSS)),
        Fault("vrrp-partition", "lb1 <-> lb2 VRRP cut (nft drops protocol 112 from the peer on both)", "lbs",
              "vrrp", MEASURED, "VRRP link healed", merge(PLANNED, SPLIT_HEALED), quick=True),
        Fault("sst", "full SST: mariadb stopped on the non-writer, datadir wiped, started", "db_backup", "sst",
              SST, quick=True),
        Fault("db-full-outage", "every db node and the arbitrator stopped, started, orch.galera_recover", "dbs",
              "outage", {"lost": 0}),
        Fault("deploy", "rolling orch.deploy of bench-<ts>", "webs", "orch:deploy", PLANNED, quick=True),
        Fault("rollback", "orch.rollback to the release before", "webs", "orch:rollback", PLANNED),
        Fault("rolling-restart", "orch.galera_rolling_restart", "dbs", "orch:galera_rolling_restart",
              merge(PLANNED, {"lost": 0})),
        Fault("scale-out", "orch.scale_out (boot, enrol, serve)", "webs", "orch:scale_out", PLANNED),
        Fault("scale-in", "orch.scale_in of the node scale-out added", "webs", "orch:scale_in", PLANNED),
        Fault("overhead-db", "DB endpoint vs the writer directly: sysbench oltp_read_write, 4 threads", "db_writer",
              "overhead:db", {"overhead": 10.0}, quick=True),
        Fault("overhead-http", "VIP with one web backend vs that backend directly", "web", "overhead:http",
              {"overhead": 10.0}, quick=True),
    ])


def select(names, quick, known):
    """The faults to run: `names` ("all" or a comma list) or the quick set;
    ValueError naming unknown names."""
    if quick:
        return [f for f in known if f.quick]
    if names in (None, "", "all"):
        return list(known)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    by_name = {f.name: f for f in known}
    bad = [n for n in wanted if n not in by_name]
    if bad:
        raise ValueError(f"unknown fault(s): {', '.join(bad)} (see --list)")
    return [by_name[n] for n in wanted]


def listing(faults):
    lines = []
    for f in faults:
        lines.append(f"{f.name:<22} {'Q' if f.quick else ' '} {f.label}  [target: {target_text(f.target)}]")
        if f.back:
            lines.append(f"{'':<24} then: {f.back}  [target: {target_text(f.back_target)}]")
    return "\n".join(lines)


def vrrp_cut_rules(peers):
    """An nft script that drops VRRP (IP protocol 112) from `peers`: a table
    of its own, before the lemp-ha table's input chain (a drop is final), so
    deleting the table (`nft delete table inet lemp_bench_vrrp`) heals it."""
    lines = ["add table inet lemp_bench_vrrp",
             "add chain inet lemp_bench_vrrp input { type filter hook input priority -10; policy accept; }"]
    lines += [f"add rule inet lemp_bench_vrrp input ip saddr {a} ip protocol 112 drop" for a in peers]
    return "\n".join(lines) + "\n"


def gluster_all_online(xml_text):
    """Whether `gluster volume status VOL --xml` shows every brick and
    daemon of the volume online (status 1); False when it shows none."""
    import re

    status = re.findall(r"<node>.*?<status>(\d+)</status>", xml_text or "", re.S)
    return bool(status) and all(s == "1" for s in status)


def overhead_pct(direct, via):
    """How much lower `via` is than `direct` (both rates), in %."""
    if not direct or via is None:
        return None
    return (direct - via) / direct * 100


# -- the overhead rows: rounds, where the time goes, the floors (pure) -------------------

def round_order(arms, rounds):
    """The arms of each round: as given in odd rounds, reversed in even ones
    (via, direct, direct, via, via, direct...), so no arm always runs first
    or always right after the same other arm (a drift of the host favours
    no one)."""
    return [list(arms) if i % 2 == 0 else list(reversed(arms)) for i in range(rounds)]


def median_of(values):
    """The median of the values that are not None (None when none is)."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


PROC_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def proc_stat_cpu(text):
    """The host's CPU time by kind (ticks) from the `cpu` line of /proc/stat."""
    for line in text.splitlines():
        f = line.split()
        if f and f[0] == "cpu":
            return dict(zip(PROC_STAT_FIELDS, (int(v) for v in f[1:1 + len(PROC_STAT_FIELDS)])))
    raise ValueError("no 'cpu' line in /proc/stat")


def cpu_split(before, after):
    """Busy, idle and steal, in % of the host's CPU time between two
    proc_stat_cpu() readings (None when no time passed). Busy: user, nice,
    system, irq, softirq (guest time is already in user); idle: idle and
    iowait; steal: time the hypervisor gave to another VM (the lab host is
    one). idle near 0: the overhead is CPU; idle well above 0 with a slower
    path: it is waiting (wake-ups, scheduling)."""
    d = {k: after[k] - before[k] for k in PROC_STAT_FIELDS}
    total = sum(d.values())
    if total <= 0:
        return None
    busy = d["user"] + d["nice"] + d["system"] + d["irq"] + d["softirq"]
    return {"busy": 100 * busy / total, "idle": 100 * (d["idle"] + d["iowait"]) / total,
            "steal": 100 * d["steal"] / total}


CGROUP_ROOT = "/sys/fs/cgroup"
# Where LXC keeps a container's CPU accounting, first match wins: lxc 4+ on
# cgroup v1 (the lab host: lxc.payload.lemp-ha-NAME), the same with the
# controllers mounted together, older lxc (lxc/NAME), cgroup v2.
CPU_USAGE_FILES = ("cpuacct/lxc.payload.{name}/cpuacct.usage", "cpu,cpuacct/lxc.payload.{name}/cpuacct.usage",
                   "cpuacct/lxc/{name}/cpuacct.usage", "cpu,cpuacct/lxc/{name}/cpuacct.usage",
                   "lxc.payload.{name}/cpu.stat")
CPU_SHARES_FILES = ("cpu/lxc.payload.{name}/cpu.shares", "cpu,cpuacct/lxc.payload.{name}/cpu.shares",
                    "cpu/lxc/{name}/cpu.shares", "cpu,cpuacct/lxc/{name}/cpu.shares")


def cgroup_file(machine, candidates, root=CGROUP_ROOT):
    """The first existing file of `candidates` for the container of
    `machine`, None when there is none (a stopped container has no cgroup;
    another host may lay them out otherwise)."""
    for c in candidates:
        path = pathlib.Path(root) / c.format(name=f"lemp-ha-{machine}")
        if path.is_file():
            return path
    return None


def cpu_usage_ns(path, text):
    """The CPU time a cgroup used, in ns: cgroup v1's cpuacct.usage (ns), or
    usage_usec of v2's cpu.stat."""
    if pathlib.Path(path).name == "cpu.stat":
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) * 1000
        raise ValueError(f"no usage_usec in {path}")
    return int(text.strip())


def ms_per_unit(before_ns, after_ns, units):
    """CPU ms per transaction or request between two usage readings (ns);
    None when a reading or the units are missing."""
    if before_ns is None or after_ns is None or not units:
        return None
    return (after_ns - before_ns) / 1e6 / units


def arm_cpu(before, after, units):
    """Where one arm's time went, from two CpuMeter.read() snapshots: the
    host's busy/idle/steal % and each role's CPU ms per unit."""
    return {"host": cpu_split(before["stat"], after["stat"]),
            "ms": {role: ms_per_unit(before["usage"].get(role), after["usage"].get(role), units)
                   for role in before["usage"]}}


def arm_medians(rounds, arm):
    """One arm over the rounds ([{arm: measurement}]): the median rate, each
    round's rate in run order, the median host split and ms per unit by role."""
    ms = [r[arm] for r in rounds if arm in r]
    roles = list(dict.fromkeys(role for m in ms for role in (m.get("ms") or {})))
    return {"rate": median_of(m["rate"] for m in ms), "each": [m["rate"] for m in ms],
            "host": {k: median_of((m.get("host") or {}).get(k) for m in ms) for k in ("busy", "idle", "steal")},
            "ms": {role: median_of((m.get("ms") or {}).get(role) for m in ms) for role in roles},
            "p50_ms": median_of(m.get("p50_ms") for m in ms),
            "errors": sum(m.get("errors") or 0 for m in ms)}


def _pct(v):
    return "n/a" if v is None else f"{v:.1f}%"


def overhead_note(rounds, arms, unit, who, main="via", base="direct", skipped=None, missing=(), method=""):
    """The overhead row's note: each arm's median rate and its rounds, the
    figure (main against base), the main path's cost over every other arm
    (the floors) and those arms' own cost, the host CPU split and CPU ms per
    unit by role, per arm. arms: [(key, label)]; unit: (rate unit, per what);
    who: {role: machine} for the CPU line; skipped: {arm label: why}."""
    s = {key: arm_medians(rounds, key) for key, _ in arms}
    label = dict(arms)
    rate_unit, per = unit

    def rate(v):
        return common.fmt(v, 0)

    parts = [", ".join(f"{label[k]} {rate(s[k]['rate'])} {rate_unit} (rounds {'/'.join(rate(v) for v in s[k]['each'])}"
                       + (f", p50 {common.fmt(s[k]['p50_ms'], 1)} ms" if s[k]["p50_ms"] is not None else "")
                       + (f", {s[k]['errors']} errors" if s[k]["errors"] else "") + ")" for k, _ in arms)
             + f": {label[main]} {_pct(overhead_pct(s[base]['rate'], s[main]['rate']))} under {label[base]}"]
    floors = [k for k, _ in arms if k not in (main, base)]
    if floors:
        parts.append(f"{label[main]}'s cost over " + ", over ".join(
            f"{label[k]} {_pct(overhead_pct(s[k]['rate'], s[main]['rate']))}" for k in floors)
            + "; those hops alone cost " + ", ".join(
            f"{label[k]} {_pct(overhead_pct(s[base]['rate'], s[k]['rate']))}" for k in floors))
    parts.append("host CPU busy/idle/steal % (medians): " + ", ".join(
        f"{label[k]} " + "/".join(common.fmt(s[k]["host"][x], 0) for x in ("busy", "idle", "steal")) for k, _ in arms))
    roles = [r for r in who if any(s[k]["ms"].get(r) is not None for k, _ in arms)]
    if roles:
        parts.append(f"CPU ms per {per}, {'/'.join(f'{r} {who[r]}' for r in roles)}: " + ", ".join(
            f"{label[k]} " + "/".join(common.fmt(s[k]["ms"].get(r), 2) for r in roles) for k, _ in arms))
    if missing:
        parts.append("CPU per container not measured for " + ", ".join(missing)
                     + f" (no cpuacct.usage or cpu.stat under {CGROUP_ROOT} for lemp-ha-NAME)")
    for what, why in (skipped or {}).items():
        parts.append(f"{what} not measured: {why}")
    return "; ".join(parts) + (f". {method}" if method else "")


# the floors of the DB row (docs/bench.md): the same hop as HAProxy's, done by
# the kernel (DNAT) and by a plain userland relay (socat), on the active LB
FLOOR_TAG = "lemp-bench-overhead"
DNAT_TABLE = "lemp_bench"
DNAT_PORT, RELAY_PORT = 13306, 13307
RELAY_UNIT = "lemp-bench-socat"
# the LB's settings the kernel hop needs, saved here first (so that a run cut
# short is undone by the next one) and put back from it
SYSCTL_SAVED = "/run/lemp-bench-overhead.sysctl"
# forwarding on; no ICMP redirects (arb1 and the writer share the bridge: a
# router would otherwise tell arb1 of the shorter way at every new flow)
FLOOR_SYSCTLS = {"net.ipv4.ip_forward": 1, "net.ipv4.conf.all.send_redirects": 0,
                 "net.ipv4.conf.eth0.send_redirects": 0}


def dnat_rules(lb, writer, port=DNAT_PORT):
    """An nft script: lb:port forwarded by the kernel to writer:3306 and
    masqueraded, so that the writer answers through the LB and sees the LB's
    address (granted like HAProxy's). A table of its own: `nft delete table
    ip lemp_bench` undoes it. Only the DNATed flows are masqueraded
    (HAProxy's own connections are left alone); forwarded packets meet no
    filter (the lemp_ha table has an input chain only)."""
    t = DNAT_TABLE
    return "\n".join([
        f"add table ip {t}",
        f"add chain ip {t} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}",
        f"add rule ip {t} prerouting ip daddr {lb} tcp dport {port} dnat to {writer}:3306",
        f"add chain ip {t} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}",
        f"add rule ip {t} postrouting ip daddr {writer} tcp dport 3306 ct status dnat masquerade"]) + "\n"


def relay_rule(table, lb, client, port=RELAY_PORT):
    """The nft command letting `client` reach the relay on lb:port through
    the LB's firewall (first in its input chain; tagged to be found again)."""
    return (f"nft insert rule inet {table} input ip saddr {client} ip daddr {lb} tcp dport {port} accept "
            f"comment '\"{FLOOR_TAG}\"'")


def tagged_handles(listing_text, tag=FLOOR_TAG):
    """The handles of the rules carrying comment `tag` in `nft -a list ...`."""
    import re

    return [int(m.group(1)) for line in listing_text.splitlines() if f'comment "{tag}"' in line
            for m in [re.search(r"# handle (\d+)\s*$", line)] if m]


def relay_command(lb, writer, port=RELAY_PORT):
    """socat as a transient unit (stopping it ends every relayed connection)."""
    return (f"systemd-run --quiet --collect --unit={RELAY_UNIT} socat TCP-LISTEN:{port},bind={lb},fork,reuseaddr "
            f"TCP:{writer}:3306")


def greeting_probe(host, port, seconds=5):
    """A shell command printing 4 when a server greets on host:port within
    `seconds` (bash's /dev/tcp: nothing to install on the client)."""
    return f"timeout {seconds} bash -c 'exec 3<>/dev/tcp/{host}/{port} && head -c 4 <&3 | wc -c' 2>/dev/null"


def floors_setup_command(lb, writer):
    """The shell command (on the LB) of the kernel hop: the sysctls saved
    unless a cut-short run saved them already, then set, then the table."""
    names = " ".join(FLOOR_SYSCTLS)
    values = " ".join(f"{k}={v}" for k, v in FLOOR_SYSCTLS.items())
    return (f"set -e; [ -e {SYSCTL_SAVED} ] || sysctl {names} > {SYSCTL_SAVED}; sysctl -q -w {values}; "
            f"nft -f - <<'EOF'\n{dnat_rules(lb, writer)}EOF")


def floors_cleanup_command(table):
    """The shell command (on the LB) undoing both floors, also a cut-short
    run's: the relay stopped, its firewall rule(s) deleted by handle, the
    DNAT table deleted, the saved sysctls put back."""
    return (f"systemctl stop {RELAY_UNIT} 2>/dev/null; systemctl reset-failed {RELAY_UNIT} 2>/dev/null; "
            f"nft delete table ip {DNAT_TABLE} 2>/dev/null; "
            f"if [ -e {SYSCTL_SAVED} ]; then sysctl -q -p {SYSCTL_SAVED} && rm -f {SYSCTL_SAVED}; fi; "
            f"nft -a list chain inet {table} input 2>/dev/null || true")


# -- load and observers (the lab) ------------------------------------------------------

def attach_argv(machine, command):
    """lxc-attach of `bash -c command` as lab.run does, for a long-lived Popen."""
    return ["lxc-attach", "-n", f"lemp-ha-{machine}", "--clear-env", "--set-var", f"PATH={lemplab.PATH}",
            "--set-var", "LANG=C.UTF-8", "--", "bash", "-c", command]


class Loop:
    """A bounded background loop: run(stop) until stop is set or max_seconds."""

    def __init__(self, max_seconds):
        self.max_seconds = max_seconds
        self._stop = threading.Event()
        self._resting = threading.Event()
        self._idle = threading.Event()  # set while a thread rests
        self._threads = []

    def pause(self):
        self._resting.set()

    def resume(self):
        self._resting.clear()

    def rest(self):
        """Idle while paused (bounded by the loop's stop)."""
        while self._resting.is_set() and not self._stop.is_set():
            self._idle.set()
            self._stop.wait(0.2)
        self._idle.clear()

    def spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def running(self, started):
        return not self._stop.is_set() and time.monotonic() - started < self.max_seconds

    def stop(self, join=15):
        self._stop.set()
        for t in self._threads:
            t.join(join)


class HttpClients(Loop):
    """N keep-alive HTTPS clients through the VIP on `path`; every request
    logged in `requests` as (start, latency, ok, detail)."""

    def __init__(self, lab, path, clients, timeout, max_seconds, pause=0.05):
        super().__init__(max_seconds)
        self.lab, self.url, self.timeout, self.gap = lab, f"https://{lab.vip}{path}", timeout, pause
        self.requests = []
        for _ in range(clients):
            self.spawn(self._client)

    def _client(self):
        session, started = self.lab.new_session(), time.monotonic()
        while self.running(started):
            self.rest()
            t = time.time()
            try:
                resp = session.get(self.url, timeout=self.timeout)
                ok, detail = resp.status_code == 200, f"HTTP {resp.status_code}"
            except Exception as exc:  # noqa: BLE001 - every failure is recorded
                ok, detail = False, type(exc).__name__
                session = self.lab.new_session()
            self.requests.append((t, time.time() - t, ok, detail))
            self._stop.wait(self.gap)

    def ok_since(self, t):
        return sum(1 for r in self.requests[-400:] if r[0] >= t and r[2])


class SessionWriter(Loop):
    """N clients, each with its own cookie jar, on /api/info: samples
    (time, client, session counter or None, PHPSESSID cookie or None)."""

    def __init__(self, lab, clients, timeout, max_seconds, pause=0.2):
        super().__init__(max_seconds)
        self.lab, self.url, self.timeout, self.gap = lab, f"https://{lab.vip}/api/info", timeout, pause
        self.samples = []
        for i in range(clients):
            self.spawn(self._client, i)

    def _client(self, i):
        session, started = self.lab.new_session(), time.monotonic()
        while self.running(started):
            self.rest()
            t, counter = time.time(), None
            try:
                resp = session.get(self.url, timeout=self.timeout)
                if resp.status_code == 200:
                    body = resp.json()
                    counter = body.get("session_counter") if body.get("session_ok") else None
            except Exception:  # noqa: BLE001 - the HTTP clients count failures; here only sessions matter
                pass
            sid = next((c.value for c in session.cookies if c.name == "PHPSESSID"), None)
            self.samples.append((t, i, counter, sid))
            self._stop.wait(self.gap)

    def served_since(self, t):
        """How many clients had their session served (a counter) since t."""
        return len({c for ts, c, counter, _ in self.samples[-400:] if ts >= t and counter is not None})


LB_OBSERVER = r'''
import socket, subprocess, sys, time
vip, sock, interval, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), time.time() + float(sys.argv[4])
while time.time() < end:
    t = time.time()
    addrs = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
    up = None
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(1)
        c.connect(sock)
        c.sendall(b"show stat\n")
        data = b""
        while True:
            d = c.recv(65536)
            if not d:
                break
            data += d
        c.close()
        up = [f[1] for f in (line.split(",") for line in data.decode(errors="replace").splitlines())
              if len(f) > 17 and f[0] == "redis-sessions" and f[1] not in ("FRONTEND", "BACKEND")
              and f[17].startswith("UP")]
    except OSError:
        pass
    print("%.3f %d %s" % (t, (" %s/" % vip) in addrs, "-" if up is None else (",".join(up) or ".")), flush=True)
    time.sleep(max(0.0, interval - (time.time() - t)))
'''

DB_OBSERVER = ("end=$(( $(date +%s) + {seconds} )); while [ $(date +%s) -lt $end ]; do "
               "s=$(timeout 2 mariadb -N -B --connect-timeout=1 -e "
               "\"SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'\" 2>/dev/null | cut -f2); "
               "echo \"$(date +%s.%N) ${{s:--}}\" || exit 0; sleep {interval}; done")


# As www-data (PHP's user), fsync'd: a completed write has reached the
# bricks that hold the volume's quorum. `timeout`: a write blocked past it
# is logged as failed and the loop goes on.
UPLOAD_OBSERVER = ("end=$(( $(date +%s) + {seconds} )); f={probe}; "
                   "while [ $(date +%s) -lt $end ]; do "
                   "if timeout 60 runuser -u www-data -- dd if=/dev/zero of=$f bs=4k count=1 conv=fsync "
                   "status=none 2>/dev/null; then ok=1; else ok=0; fi; "
                   "echo \"$(date +%s.%N) $ok\" || exit 0; sleep {interval}; done")


def parse_upload_line(line):
    t, ok = line.split()
    return float(t), ok == "1"


def parse_lb_line(line):
    t, vip, up = line.split()
    return float(t), vip == "1", None if up == "-" else frozenset() if up == "." else frozenset(up.split(","))


def parse_db_line(line):
    t, state = line.split(None, 1)
    return float(t), state.strip()


class Observer(Loop):
    """One long-lived lxc-attach running `command` (a loop printing a line a
    sample) in `machine`, started again when it ends while the machine is
    RUNNING (after a stop or a kill)."""

    def __init__(self, lab, machine, command, parse, max_seconds):
        super().__init__(max_seconds)
        self.lab, self.machine, self.command, self.parse = lab, machine, command, parse
        self.samples = []
        self._proc = None
        self.spawn(self._run)

    def pause(self, timeout=15):
        """Rest with the process in the machine ended, until resumed. The
        LB observers ask haproxy's own event loop for `show stat` 5 times a
        second and the db ones start a `mariadb` client twice a second: left
        running, they would slow only the path through the LB."""
        super().pause()
        self._end_proc()
        if any(t.is_alive() for t in self._threads):
            self._idle.wait(timeout)

    def _run(self):
        started = time.monotonic()
        while self.running(started):
            self.rest()
            if self.lab.state(self.machine) != "RUNNING":
                self._stop.wait(1)
                continue
            self._proc = subprocess.Popen(attach_argv(self.machine, self.command), stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True)
            for line in self._proc.stdout:
                try:
                    self.samples.append(self.parse(line))
                except ValueError:
                    pass
                if self._stop.is_set() or self._resting.is_set():
                    break
            self._end_proc()
            # a loop still running in the machine (lxc-attach need not pass
            # the signal on) ends at its next line: its pipe is closed
            self._proc.stdout.close()
            self._stop.wait(1)

    def _end_proc(self):
        proc = self._proc
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def stop(self, join=15):
        self._stop.set()
        self._end_proc()
        super().stop(join)


SELF = None  # a CpuMeter role played by this process (the HTTP clients run here)


class CpuMeter:
    """Snapshots around one arm: the host's /proc/stat and each role's CPU
    time (its container's cgroup, read on the host; SELF: this process).
    Containers whose cgroup is not found are collected in `missing`."""

    def __init__(self, roles, root=CGROUP_ROOT):
        self.roles, self.root = roles, root
        self.missing = []

    def read(self):
        return {"stat": proc_stat_cpu(pathlib.Path("/proc/stat").read_text()),
                "usage": {role: self._usage(m) for role, m in self.roles.items()}}

    def _usage(self, machine):
        if machine is SELF:
            r = resource.getrusage(resource.RUSAGE_SELF)
            return int((r.ru_utime + r.ru_stime) * 1e9)
        path = cgroup_file(machine, CPU_USAGE_FILES, self.root)
        try:
            if path:
                return cpu_usage_ns(path, path.read_text())
        except (OSError, ValueError):
            pass
        if machine not in self.missing:
            self.missing.append(machine)
        return None


# -- the matrix (the lab) -----------------------------------------------------------------

def salt_defaults(component):
    """salt/<component>/defaults.yaml's settings of the component."""
    import yaml

    return yaml.safe_load((common.REPO / "salt" / component / "defaults.yaml").read_text())[component]


def app_dir():
    d = salt_defaults("webapp")
    return f"{d['root']}/{d['name']}"


def firewall_table():
    """The nftables table Salt's firewall owns (salt/firewall/defaults.yaml)."""
    return salt_defaults("firewall")["table"]


def uploads_mount():
    return salt_defaults("glusterfs")["mount_point"]


def upload_probe(web):
    """The file the upload checker rewrites on `web` (UPLOAD_OBSERVER)."""
    return f"{uploads_mount()}/.lemp-bench-upload-{web}"


def releases(lab, webs):
    return {w: lab.run(w, f"readlink {app_dir()}/current").stdout.strip() for w in webs}


ENDPOINT_NODE = r'''
import sys, pymysql
host, port, user, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
conn = pymysql.connect(host=host, port=port, user=user, password=sys.stdin.readline().rstrip("\n"), database=db,
                       connect_timeout=3, ssl={"ca": "/usr/local/share/ca-certificates/lemp-ha-platform-ca.crt"})
with conn.cursor() as cur:
    cur.execute("SELECT @@wsrep_node_name")
    print(cur.fetchone()[0])
'''

SB_PASSWORD_FILE = "/root/.lemp-bench-fault-matrix-sb"
SB_USER = "lemp_bench_sb"


class Matrix:
    def __init__(self, lab, args):
        self.lab, self.args = lab, args
        self.tier = gh.tier_of(lab.topology)
        self.lbs, self.webs = lab.with_role("lb"), lab.with_role("web")
        self.table = "bench_fm_" + uuid.uuid4().hex[:8]
        self.segment = 0
        self.rows = []
        self.details = []
        self.scaled_node = None
        self.release_before = None
        self.windows = []  # (fault, target, inject, restore, healthy, end): for the samples' dump

    # -- load ----------------------------------------------------------------------
    def start_load(self):
        a, lab = self.args, self.lab
        bound = a.max_hours * 3600
        item = lab.http.post(f"https://{lab.vip}/api/items", json={"note": "fault matrix"}, timeout=10)
        item.raise_for_status()
        self.path = f"/api/items/{item.json()['id']}"
        gh.sql(lab, self.tier["dbs"][0], f"CREATE TABLE app.{self.table} (id INT PRIMARY KEY, payload VARCHAR(100), "
                                         "ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB")
        self.http = HttpClients(lab, self.path, a.clients, a.timeout, bound)
        self.sessions = SessionWriter(lab, a.session_clients, a.timeout, bound)
        self.lb_obs = {lb: Observer(lab, lb, f"/opt/salt/bin/python -c {shlex.quote(LB_OBSERVER)} {lab.vip} "
                                             f"/run/haproxy/admin.sock 0.2 {bound}", parse_lb_line, bound)
                       for lb in self.lbs}
        self.db_obs = {db: Observer(lab, db, DB_OBSERVER.format(seconds=int(bound), interval=0.5), parse_db_line, bound)
                       for db in self.tier["dbs"]}
        self.upload_obs = {web: Observer(lab, web, UPLOAD_OBSERVER.format(seconds=int(bound), interval=0.2,
                                                                           probe=shlex.quote(upload_probe(web))),
                                         parse_upload_line, bound) for web in self.webs}
        wait_for(lambda: self.http.ok_since(time.time() - 5) >= 5, 60, "the HTTP clients to be served", interval=0.5)

    def dump(self, path):
        """Every sample and each fault's window, as JSON, to read a row's
        figures again (the table keeps only the figures)."""
        data = {"windows": self.windows,
                "requests": getattr(self, "http", None) and self.http.requests,
                "sessions": getattr(self, "sessions", None) and self.sessions.samples,
                "lbs": {lb: [(t, vip, sorted(up) if up is not None else None) for t, vip, up in o.samples]
                        for lb, o in getattr(self, "lb_obs", {}).items()},
                "dbs": {db: o.samples for db, o in getattr(self, "db_obs", {}).items()},
                "uploads": {web: o.samples for web, o in getattr(self, "upload_obs", {}).items()}}
        pathlib.Path(path).write_text(json.dumps(data))
        log(f"samples written to {path}")

    def stop_load(self):
        for loop in [getattr(self, "http", None), getattr(self, "sessions", None),
                     *getattr(self, "lb_obs", {}).values(), *getattr(self, "db_obs", {}).values(),
                     *getattr(self, "upload_obs", {}).values()]:
            if loop:
                loop.stop()

    def writer_on(self, avoid):
        """A Writer segment on a web node not in `avoid`, with its own id range."""
        web = next((w for w in self.webs if w not in avoid), None)
        if web is None:
            raise common.BenchError(f"no web node outside {sorted(avoid)} for the write checker")
        self.segment += 1
        writer = gh.Writer(self.lab, web, self.lab.db_endpoint, self.lab.secrets["passwords"]["app_db"], self.table)
        self.lab.run(web, f"mkdir -p {writer.workdir} && echo {self.segment * 10_000_000 + 1} > {writer.workdir}/next "
                          f"&& : > {writer.workdir}/acked && rm -f {writer.workdir}/errors {writer.workdir}/node")
        writer.start()
        gh.acked_after(writer, 20, 120, f"from {web} before the fault", interval=0.3)
        return writer

    def stop_writer(self, writer):
        try:
            writer.stop()
        except AssertionError as exc:
            log(f"the write checker on {writer.machine} did not stop: {exc}")
            self.lab.run(writer.machine, f"kill $(cat {writer.workdir}/pid) 2>/dev/null", check=False)

    def write_figures(self, writer, split):
        """(server timestamps of the segment's rows, lost before/after `split`)."""
        lab, lo, hi = self.lab, self.segment * 10_000_000, (self.segment + 1) * 10_000_000
        acked = writer.acked()
        present = {}
        for node in self.tier["dbs"]:
            rows = gh.sql(lab, node, f"SELECT id, UNIX_TIMESTAMP(ts) FROM app.{self.table} "
                                     f"WHERE id > {lo} AND id <= {hi}", check=False)
            present[node] = {int(i): float(t) for i, t in rows}
        acked_set = set(acked)
        stamps = [t for i, t in present[self.tier["dbs"][0]].items() if i in acked_set]
        return stamps, lost_writes(acked, {n: set(p) for n, p in present.items()}, split)

    # -- targets -------------------------------------------------------------------
    def redis_master(self):
        """The web node Sentinel names as master (asked on a running LB)."""
        password = self.lab.secrets["passwords"]["sentinel_auth"]
        for lb in self.lbs:
            if self.lab.state(lb) != "RUNNING":
                continue
            proc = self.lab.run(lb, "IFS= read -r REDISCLI_AUTH && export REDISCLI_AUTH && timeout 10 redis-cli "
                                    "--no-auth-warning -h 127.0.0.1 -p 26379 SENTINEL get-master-addr-by-name sessions",
                                check=False, input=password + "\n")
            address = (proc.stdout.split() or [""])[0]
            name = next((n for n, m in self.lab.machines.items() if m["address"] == address), None)
            if name:
                return name
        raise common.BenchError("no Sentinel named the Redis master")

    def db_writer(self):
        """The db node the endpoint routes to now (asked through it from a web node)."""
        lab = self.lab
        host, port = lab.db_endpoint
        for web in self.webs:
            proc = lab.run(web, f"/opt/salt/bin/python -c {shlex.quote(ENDPOINT_NODE)} {host} {port} app app",
                           check=False, input=lab.secrets["passwords"]["app_db"] + "\n", timeout=30)
            if proc.returncode == 0 and proc.stdout.strip() in self.tier["dbs"]:
                return proc.stdout.strip()
        raise common.BenchError("could not ask the endpoint which db node it routes to")

    def resolve(self, kind):
        """(the target machine(s) as text, the machines the write checker must avoid)."""
        lab, tier = self.lab, self.tier
        if kind in ("vip_holder", "vip_backup"):
            holder = wh.wait_single_vip_holder(lab, timeout=60)
            name = holder if kind == "vip_holder" else next(lb for lb in self.lbs if lb != holder)
            return name, set()
        if kind == "redis_master":
            master = self.redis_master()
            return master, {master}
        if kind == "web":
            master = self.redis_master()
            name = [w for w in self.webs if w != master][-1]
            return name, {name}
        if kind in ("db_writer", "db_backup"):
            writer = self.db_writer()
            return (writer if kind == "db_writer" else next(d for d in tier["dbs"] if d != writer)), set()
        if kind == "arb":
            return tier["arbs"][0], set()
        if kind == "master":
            return lab.master, set()
        if kind == "monitor":
            return lab.with_role("monitor")[0], set()
        if kind == "lbs":
            return ",".join(self.lbs), set()
        if kind == "dbs":
            return ",".join(tier["dbs"] + tier["arbs"]), set()
        if kind == "webs":
            return "web tier", set()
        raise ValueError(kind)

    # -- inject / restore ------------------------------------------------------------
    def service(self, name):
        return next(s for s in SERVICES if s[0] == name)

    def inject(self, fault, target):
        lab, action = self.lab, fault.action
        log(f"[{fault.name}] inject on {target}: {fault.label}")
        if action in ("kill", "stop"):
            lab.stop(target, kill=action == "kill")
        elif action.startswith("svc:"):
            _, process, unit, _, _ = self.service(action[4:])
            if unit:
                lab.run(target, f"{wh.no_restart_command(unit)} && systemctl kill -s KILL {unit}")
            else:
                lab.run(target, f"killall -9 {process}")
        elif action == "link":
            lab.run(target, "ip link set eth0 down")
        elif action == "vrrp":
            for lb in self.lbs:
                lab.run(lb, "nft -f -", input=vrrp_cut_rules([lab.machines[p]["address"] for p in self.lbs if p != lb]))
        elif action == "sst":
            lab.run(target, "systemctl stop mariadb && rm -rf /var/lib/mysql/* && systemctl start --no-block mariadb",
                    timeout=600)
        elif action == "outage":
            machines = self.tier["arbs"] + self.tier["dbs"]
            for name in machines:
                lab.stop(name)
            lab.start(*machines)
            ok, detail = lab.orchestrate("orch.galera_recover")
            if not ok:
                raise common.BenchError(f"orch.galera_recover failed: {detail[:1500]}")
        elif action.startswith("orch:"):
            self.orchestrate(action[5:])
        else:
            raise ValueError(action)

    def orchestrate(self, what):
        lab = self.lab
        pillar = None
        if what == "deploy":
            before = releases(lab, self.webs)
            if len(set(before.values())) != 1:
                raise common.BenchError(f"web nodes are not on one release before the deploy: {before}")
            self.release_before = next(iter(before.values())).split("/", 1)[-1]
            pillar = {"app": {"version": f"bench-{int(time.time())}"}}
        elif what == "scale_in":
            import scale_events

            node = self.scaled_node or (scale_events.enrolled(lab) or [None])[-1]
            if not node:
                raise common.BenchError("nothing to scale in: no enrolled pool node (run scale-out first)")
            pillar = {"node": node}
        elif what == "rollback" and not self.release_before:
            raise common.BenchError("rollback runs after the deploy row of the same run (it undoes that deploy)")
        if what == "scale_out":
            import scale_events

            before = set(scale_events.enrolled(lab))
        ok, detail = lab.orchestrate(f"orch.{what}", pillar, timeout=1800)
        if what == "scale_out" and ok:
            new = sorted(set(scale_events.enrolled(lab)) - before)
            self.scaled_node = new[-1] if new else None
        if what == "scale_in" and ok:
            self.scaled_node = None
        if what == "rollback" and ok:
            self.release_before = None
        if not ok:
            raise common.BenchError(f"orch.{what} failed: {detail[:1500]}")

    def restore(self, fault, target):
        """Put back what the fault broke (idempotent: also the `finally`)."""
        lab, action = self.lab, fault.action
        if action in ("kill", "stop"):
            common.restoring(lab, [target])
        elif action.startswith("svc:"):
            name = action[4:]
            _, process, unit, _, _ = self.service(name)
            if unit:
                lab.run(target, f"{wh.restart_allowed_command(unit)}; systemctl reset-failed {unit}; "
                                f"systemctl is-active -q {unit} || systemctl restart {unit}", check=False, timeout=600)
                wait_for(lambda: lab.run(target, f"systemctl is-active -q {unit}", check=False).returncode == 0,
                         300, f"{unit} active again on {target}", interval=0.5)
            else:  # a dead brick is started again by its volume's `start force`
                lab.run(target, "gluster volume start uploads force", check=False, timeout=120)
                wait_for(lambda: self.bricks_online(target), 120, "every brick of uploads online", interval=1)
        elif action == "link":
            lab.run(target, "ip link set eth0 up")
        elif action == "vrrp":
            for lb in self.lbs:
                if lab.state(lb) == "RUNNING":
                    lab.run(lb, "nft delete table inet lemp_bench_vrrp 2>/dev/null || true", check=False)
        elif action == "sst":
            lab.run(target, "systemctl is-active -q mariadb || systemctl start --no-block mariadb", check=False)
        elif action == "outage":
            machines = self.tier["arbs"] + self.tier["dbs"]
            common.restoring(lab, machines)
            if not all(gh.synced(lab, n, self.tier["size"]) for n in self.tier["dbs"]):
                ok, detail = lab.orchestrate("orch.galera_recover")
                log(f"restoring: orch.galera_recover {'ok' if ok else 'FAILED: ' + detail[:1000]}")
        # orch.deploy and orch.scale_out are undone by Matrix.finish (or by the rollback and scale-in rows)

    def bricks_online(self, machine):
        return gluster_all_online(self.lab.run(machine, "gluster volume status uploads --xml", check=False).stdout)

    def wait_healthy(self):
        common.wait_lab_healthy(self.lab, timeout=self.args.healthy_timeout)
        wait_for(lambda: wh.get_json(self.lab, "/api/info", session=self.lab.new_session(), timeout=5)["session_ok"],
                 120, "PHP sessions to work through the VIP", interval=0.5)

    # -- one fault -------------------------------------------------------------------------
    def samples(self):
        return ({lb: list(o.samples) for lb, o in self.lb_obs.items()}, list(self.http.requests),
                list(self.sessions.samples))

    def db_states(self, t0, t1):
        seen = {db: states_seen(list(o.samples), t0, t1) for db, o in self.db_obs.items()}
        return "; ".join(f"{db}: {s}" for db, s in seen.items() if s)

    def row(self, label, target, fig, tgt, recovery, note=""):
        self.rows.append(table_row(label, target, fig, tgt, recovery, note))
        log(f"row: {self.rows[-1]}")

    def run_fault(self, fault):
        if fault.action.startswith("overhead:"):
            return self.overhead(fault)
        a = self.args
        self.wait_healthy()
        target, avoid = self.resolve(fault.resolve)
        writer = self.writer_on(avoid)
        injected = restored = False
        t_inject = t_restore = None
        split = None
        err = None
        try:
            t_inject = time.time()
            injected = True
            self.inject(fault, target)
            # the load served again (or a bound), then what the observers see
            try:
                wait_for(lambda: self.http.ok_since(time.time() - 2) >= 3, a.resume_timeout,
                         "the HTTP clients to be served again", interval=0.5)
            except AssertionError as exc:
                log(f"[{fault.name}] {exc}")
            # and every session client (a store failure shows there, not in
            # the HTTP clients, which do not use the session)
            try:
                wait_for(lambda: self.sessions.served_since(time.time() - 2) >= a.session_clients, a.resume_timeout,
                         "every session client to be served again", interval=0.5)
            except AssertionError as exc:
                log(f"[{fault.name}] {exc}")
            if fault.action in ("sst",):
                self.wait_healthy()
            time.sleep(a.settle)  # an observation window, not a wait for a condition
            t_restore = time.time()
            split = max(writer.acked(), default=None)
            if fault.back:
                self.restore(fault, target)
                restored = True
        except Exception as exc:  # noqa: BLE001 - the row says so; the lab is restored below
            err = f"{type(exc).__name__}: {str(exc)[:300]}"
            log(f"[{fault.name}] FAILED: {err}")
        finally:
            if injected and not restored:
                self.restore(fault, target)
        t_restore = t_restore or time.time()
        self.wait_healthy()
        t_healthy = time.time()
        time.sleep(a.settle)
        t_end = time.time()
        self.stop_writer(writer)
        stamps, (lost_fault, lost_back) = self.write_figures(writer, split)
        lb, reqs, sess = self.samples()
        uploads = {web: list(o.samples) for web, o in self.upload_obs.items()}
        # a stopped, killed or cut-off web node's own mount goes with it
        stopped = set(target.split(",")) if fault.action in ("kill", "stop", "link") else set()
        fig = figures(reqs, sess, stamps, lb, t_inject, t_restore if fault.back else t_end,
                      lost=lost_fault if fault.back else lost_fault + lost_back, uploads=uploads, stopped=stopped)
        fig["error"] = err
        self.windows.append((fault.name, target, t_inject, t_restore, t_healthy, t_end))
        note = self.db_states(t_inject, t_restore if fault.back else t_end)
        self.row(fault.label, target, fig, fault.target, fig["service_back"] if fault.back else t_healthy - t_inject,
                 note)
        if fault.back:
            # the returning node's own pause began with the fault: its mount
            # comes back with it, and the others' writes show any heal's cost
            back = figures(reqs, sess, stamps, lb, t_restore, t_end, lost=lost_back, uploads=uploads,
                           stopped=stopped)
            self.row(f"↳ {fault.back}", target, back, fault.back_target, t_healthy - t_restore,
                     self.db_states(t_restore, t_end))

    # -- overhead rows -------------------------------------------------------------------------
    def overhead(self, fault):
        self.wait_healthy()
        # every background loop rests meanwhile, the observers too: both paths see the same host
        loops = [self.http, self.sessions, *self.lb_obs.values(), *self.db_obs.values(), *self.upload_obs.values()]
        for loop in loops:
            loop.pause()
        shares = {}
        try:
            shares = self.set_lb_shares(self.args.lb_cpu_shares)
            target, fig, note = self.overhead_db() if fault.action == "overhead:db" else self.overhead_http()
        except Exception as exc:  # noqa: BLE001 - the row says so
            target, fig, note = "—", {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}, ""
        finally:
            self.restore_lb_shares(shares)
            for loop in loops:
                loop.resume()
        if shares:
            note = (note + f" LB containers' cpu.shares {self.args.lb_cpu_shares} during the row (was "
                    + ", ".join(f"{lb} {old}" for lb, (_, old) in shares.items()) + ").").strip()
        self.row(fault.label, target, fig, fault.target, None, note)
        if note:
            self.details.append(f"{fault.label}: {note}")

    def set_lb_shares(self, shares):
        """--lb-cpu-shares: every LB container's cgroup v1 cpu.shares (on the
        host), as if the LBs had CPUs of their own as in production; {lb:
        (file, old value)} for restore_lb_shares."""
        if not shares:
            return {}
        done = {}
        try:
            for lb in self.lbs:
                path = cgroup_file(lb, CPU_SHARES_FILES)
                if path is None:
                    raise common.BenchError(f"--lb-cpu-shares: no cpu.shares for lemp-ha-{lb} under {CGROUP_ROOT} "
                                            "(cgroup v1 only)")
                done[lb] = (path, path.read_text().strip())
                path.write_text(f"{shares}\n")
                log(f"cpu.shares of lemp-ha-{lb}: {done[lb][1]} -> {shares}")
        except BaseException:
            self.restore_lb_shares(done)
            raise
        return done

    def restore_lb_shares(self, done):
        for lb, (path, old) in done.items():
            try:
                path.write_text(f"{old}\n")
                log(f"cpu.shares of lemp-ha-{lb} back to {old}")
            except OSError as exc:
                log(f"cpu.shares of lemp-ha-{lb} NOT restored to {old}: {exc}")

    def active_lb(self):
        """The LB holding the VIPs (one VRRP instance carries both, so it
        also serves the DB endpoint)."""
        holder = self.resolve("vip_holder")[0]
        if f" {self.lab.internal_vip}/" not in self.lab.run(holder, "ip -4 -o addr show").stdout:
            raise common.BenchError(f"{holder} holds {self.lab.vip} but not {self.lab.internal_vip}")
        return holder

    def run_rounds(self, arms, measure, roles):
        """A warm-up of the first arm (discarded), then --overhead-rounds
        rounds of every arm in alternating order (round_order), each timed by
        a CpuMeter on `roles`. measure(arm, seconds) returns {"rate",
        "units", ...}. Returns ([{arm: measurement}], containers without a
        cgroup found)."""
        a = self.args
        keys = [k for k, _ in arms]
        meter = CpuMeter(roles)
        if a.overhead_warmup > 0:
            log(f"overhead: warm-up, {a.overhead_warmup} s of {keys[0]} (discarded)")
            measure(keys[0], a.overhead_warmup)
        rounds = []
        for i, order in enumerate(round_order(keys, a.overhead_rounds), 1):
            results = {}
            for key in order:
                before = meter.read()
                m = measure(key, a.overhead_seconds)
                after = meter.read()
                results[key] = {**m, **arm_cpu(before, after, m.get("units"))}
                host = results[key]["host"] or {}
                log(f"overhead round {i}/{a.overhead_rounds} {key}: {common.fmt(m.get('rate'), 1)}/s; host busy/idle/"
                    f"steal {'/'.join(common.fmt(host.get(x), 0) for x in ('busy', 'idle', 'steal'))} %; CPU ms per "
                    f"unit {', '.join(f'{r} {common.fmt(v, 2)}' for r, v in results[key]['ms'].items())}")
            rounds.append(results)
        return rounds, meter.missing

    def method_text(self, arms):
        a = self.args
        return (f"{a.overhead_rounds} rounds of {a.overhead_seconds} s per arm in alternating order "
                f"({', '.join(label for _, label in arms)}, then reversed), after a {a.overhead_warmup} s warm-up of "
                f"{arms[0][1]} (discarded); the figure compares the medians; the matrix's load and observers paused.")

    def floors_up(self, lb, writer, client):
        """The DB row's floors on the active LB `lb`: the kernel hop (DNAT,
        port 13306) and the userland relay (socat, port 13307). Returns
        {arm: why not} for a floor that could not be set up (the row goes on
        without it). A cut-short run's leftovers go first."""
        lab, table = self.lab, firewall_table()
        addr = {m: lab.machines[m]["address"] for m in (lb, writer, client)}
        self.floors_down(lb)
        skipped = {}
        proc = lab.run(lb, floors_setup_command(addr[lb], addr[writer]), check=False)
        if proc.returncode != 0:
            skipped["dnat"] = f"the DNAT table did not load on {lb}: {(proc.stderr or proc.stdout)[-300:]}"
        try:
            common.ensure_package(lab, lb, "socat", "socat")
            lab.run(lb, relay_rule(table, addr[lb], addr[client]))
            lab.run(lb, relay_command(addr[lb], addr[writer]))
            wait_for(lambda: lab.run(lb, f"ss -Hltn 'sport = :{RELAY_PORT}'", check=False).stdout.strip(), 30,
                     f"socat listening on {lb}:{RELAY_PORT}", interval=0.3)
        except (AssertionError, subprocess.TimeoutExpired) as exc:
            skipped["socat"] = f"the relay did not start on {lb}: {str(exc)[-300:]}"
        # each floor must reach the writer from the client (MariaDB speaks
        # first): a floor that does not is left out, not the whole row
        for arm, port in (("dnat", DNAT_PORT), ("socat", RELAY_PORT)):
            if arm not in skipped and lab.run(client, greeting_probe(addr[lb], port), check=False,
                                              timeout=30).stdout.strip() != "4":
                skipped[arm] = f"no MariaDB greeting through {lb}:{port} from {client}"
        return skipped

    def floors_down(self, lb):
        """Undo floors_up (idempotent: also the `finally`, and the leftovers)."""
        lab = self.lab
        if lab.state(lb) != "RUNNING":
            return
        table = firewall_table()
        listing = lab.run(lb, floors_cleanup_command(table), check=False).stdout
        for handle in tagged_handles(listing):
            lab.run(lb, f"nft delete rule inet {table} input handle {handle}", check=False)

    def overhead_db(self):
        import backup_restore as br

        lab, tier = self.lab, self.tier
        client = tier["arbs"][0] if tier["arbs"] else lab.with_role("backup")[0]
        writer = self.db_writer()
        lb = self.active_lb()
        db = "bench_sb_" + uuid.uuid4().hex[:8]
        password = secrets.token_hex(16)
        hosts = [lab.machines[m]["address"] for m in [client] + self.lbs]
        tables, rows, threads = 4, 20000, 4
        host, port = lab.db_endpoint
        lb_addr = lab.machines[lb]["address"]
        arms = [("via", "via HAProxy"), ("dnat", "DNAT"), ("socat", "socat"), ("direct", "direct")]
        to = {"via": (host, port), "dnat": (lb_addr, DNAT_PORT), "socat": (lb_addr, RELAY_PORT),
              "direct": (lab.machines[writer]["address"], 3306)}
        br.ensure_sysbench(lab, client)
        # a leftover of an interrupted run goes first (its password is not this one)
        sql = [f"CREATE DATABASE {db}"] + [
            f"DROP USER IF EXISTS '{SB_USER}'@'{h}'; CREATE USER '{SB_USER}'@'{h}' IDENTIFIED BY '{password}'; "
            f"GRANT ALL ON {db}.* TO '{SB_USER}'@'{h}'" for h in hosts]

        def sysbench(action, arm, run_seconds=0):
            cmd = br.sysbench_command(action, *to[arm], tables, rows, threads if action == "run" else tables,
                                      run_seconds, user=SB_USER, db=db)
            proc = lab.run(client, f"MYSQL_PWD=$(cat {SB_PASSWORD_FILE}) {cmd}", check=False, timeout=1800)
            if proc.returncode != 0:
                raise common.BenchError(f"sysbench {action} ({arm}) on {client} failed: {proc.stdout[-800:]} "
                                        f"{proc.stderr[-800:]}")
            return br.parse_sysbench_run(proc.stdout)

        def measure(arm, run_seconds):
            f = sysbench("run", arm, run_seconds)
            return {"rate": f["tps"], "units": f["transactions"]}

        try:
            lab.run(writer, "mariadb", input=";\n".join(sql) + ";\n")
            br.put_secret_file(lab, client, SB_PASSWORD_FILE, password)
            sysbench("prepare", "via")
            gh.wait_cluster_healthy(lab, tier, timeout=300)
            skipped = self.floors_up(lb, writer, client)
            measured = [(k, label) for k, label in arms if k not in skipped]
            rounds, missing = self.run_rounds(measured, measure, {"lb": lb, "node": writer, "client": client})
        finally:
            self.floors_down(lb)
            lab.run(client, f"rm -f {SB_PASSWORD_FILE}", check=False)
            drop = [f"DROP DATABASE IF EXISTS {db}"] + [f"DROP USER IF EXISTS '{SB_USER}'@'{h}'" for h in hosts]
            lab.run(writer if lab.state(writer) == "RUNNING" else tier["dbs"][0], "mariadb",
                    input=";\n".join(drop) + ";\n", check=False)
        pct = overhead_pct(median_of(r["direct"]["rate"] for r in rounds),
                           median_of(r["via"]["rate"] for r in rounds))
        labels = dict(arms)
        arms = measured
        where = (f"via {host}:{port} on {lb}, DNAT {lb_addr}:{DNAT_PORT} and socat {lb_addr}:{RELAY_PORT} on {lb}, "
                 f"direct {writer}")
        note = overhead_note(rounds, arms, ("tps", "transaction"), {"lb": lb, "node": writer, "client": client},
                             skipped={labels.get(k, k): why for k, why in skipped.items()}, missing=missing,
                             method=(f"{where}; from {client}, {threads} threads, plain TCP (a bench account without "
                                     "TLS: sysbench 1.0 cannot verify the CA; HAProxy passes TLS through in every "
                                     "path). " + self.method_text(arms)))
        return writer, {"overhead": pct}, note

    def overhead_http(self):
        lab = self.lab
        node = self.resolve("web")[0]
        lb = self.active_lb()
        others = [w for w in self.webs if w != node]
        url = {"via": f"https://{lab.vip}{self.path}", "direct": f"https://{lab.machines[node]['address']}{self.path}"}
        arms = [("via", "via the VIP"), ("direct", "direct")]

        def measure(arm, run_seconds):
            r = common.run_requests(url[arm], lab, 8, run_seconds, 5.0, 10**7)
            return {"rate": r["rps"], "units": r["requests"], "p50_ms": r["p50_ms"], "errors": r["errors"]}

        try:
            for w in others:
                lab.salt("-L", ",".join(self.lbs), "haproxy_runtime.disable", "web", w)
                states = wh.haproxy_states(lab, w)
                if not all(isinstance(st, dict) and st.get("admin") == "maint" for st in states.values()):
                    raise common.BenchError(f"{w} is not in maint on every LB: {states}")
            rounds, missing = self.run_rounds(arms, measure, {"lb": lb, "node": node, "client": SELF})
        finally:
            for w in others:
                lab.salt("-L", ",".join(self.lbs), "haproxy_runtime.enable", "web", w)
            for w in others:
                wh.wait_web_up_on_all_lbs(lab, w, timeout=120)
        pct = overhead_pct(median_of(r["direct"]["rate"] for r in rounds),
                           median_of(r["via"]["rate"] for r in rounds))
        note = overhead_note(rounds, arms, ("req/s", "request"),
                             {"lb": lb, "node": node, "client": "this bench process"}, missing=missing,
                             method=(f"{node} alone in HAProxy (the other web nodes in maint); 8 keep-alive clients "
                                     f"on {self.path} from the lab host. " + self.method_text(arms)))
        return node, {"overhead": pct}, note

    # -- cleanup -------------------------------------------------------------------------------
    def finish(self):
        """Undo the planned events the run did not undo itself: a deploy
        without its rollback row, a scale-out without its scale-in row."""
        lab = self.lab
        if self.release_before and set(releases(lab, self.webs).values()) != {f"releases/{self.release_before}"}:
            log(f"restoring: orch.rollback to {self.release_before} (the release before the deploy row)")
            ok, detail = lab.orchestrate("orch.rollback", {"app": {"rollback_to": self.release_before}})
            log(f"restoring: {'ok' if ok else 'FAILED: ' + detail[:1000]}")
        if self.scaled_node:
            import scale_events

            scale_events.scale_in_all(lab)

    def drop_table(self):
        for node in self.tier["dbs"]:
            if gh.sql_ok(self.lab, node, f"DROP TABLE IF EXISTS app.{self.table}"):
                break
        for web in self.webs:
            self.lab.run(web, f"rm -rf /tmp/galera-writer-{self.table} {shlex.quote(upload_probe(web))}", check=False)


def main():
    p = common.parser(__doc__)
    p.add_argument("--faults", default="all", help="all, or a comma list of fault names (see --list)")
    p.add_argument("--list", action="store_true", help="list the faults and their targets, then exit (no lab needed)")
    p.add_argument("--quick", action="store_true", help="the representative subset (Q in --list)")
    p.add_argument("--settle", type=float, default=10, help="seconds observed after each step (default: %(default)s)")
    p.add_argument("--clients", type=int, default=4, help="HTTPS clients through the VIP (default: %(default)s)")
    p.add_argument("--session-clients", type=int, default=6, help="session writer clients (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in s (default: %(default)s)")
    p.add_argument("--resume-timeout", type=float, default=120,
                   help="max seconds to wait for the load to be served again after a fault (default: %(default)s)")
    p.add_argument("--healthy-timeout", type=int, default=900,
                   help="max seconds to wait for a healthy lab between faults (default: %(default)s)")
    p.add_argument("--overhead-seconds", type=int, default=30, help="seconds per overhead measurement (default: %(default)s)")
    p.add_argument("--overhead-rounds", type=int, default=3,
                   help="rounds of each overhead row's arms, in alternating order; the figure is from the medians "
                        "(default: %(default)s)")
    p.add_argument("--overhead-warmup", type=int, default=5,
                   help="seconds of the first arm run and discarded before the rounds (default: %(default)s)")
    p.add_argument("--lb-cpu-shares", type=int, default=0,
                   help="a lever to try: the LB containers' cgroup v1 cpu.shares during the overhead rows only "
                        "(restored after; the others have 1024), e.g. 4096; default: unchanged")
    p.add_argument("--max-hours", type=float, default=4, help="bound of every load loop (default: %(default)s)")
    args = p.parse_args()
    if args.overhead_rounds < 1 or args.overhead_seconds < 1 or args.lb_cpu_shares < 0:
        p.error("--overhead-rounds and --overhead-seconds must be at least 1, --lb-cpu-shares not negative")
    try:
        faults = select(args.faults, args.quick, catalogue())
    except ValueError as exc:
        p.error(str(exc))
    if args.list:
        print(listing(faults))
        return 0

    lab = common.open_lab()
    matrix = Matrix(lab, args)
    stopped, current = "", "the start"
    try:
        common.wait_lab_healthy(lab, timeout=args.healthy_timeout)
        with common.autoscaling_paused(lab, "the fault matrix stops web nodes by hand"):
            matrix.start_load()
            for i, fault in enumerate(faults, 1):
                current = fault.name
                log(f"== {i}/{len(faults)} {fault.name}")
                matrix.run_fault(fault)
            current = "the end"
            matrix.finish()
    except BaseException as exc:
        stopped = f"The run stopped during {current}: {exc!s:.300}"
        raise
    finally:
        matrix.stop_load()
        try:
            matrix.dump(f"/var/tmp/lemp-ha-fault-matrix-{time.strftime('%Y%m%dT%H%M%S')}.json")
        except OSError as exc:
            log(f"the samples were not written: {exc}")
        common.restoring(lab, list(lab.machines))
        if stopped:
            matrix.finish()
        matrix.drop_table()
        notes = [f"Faults: {', '.join(f.name for f in faults)}. Load: {args.clients} HTTPS clients (keep-alive, "
                 f"{args.timeout:g} s timeout) on https://{lab.vip}{getattr(matrix, 'path', '/api/items/N')} "
                 f"(reads the database); {args.session_clients} session clients on /api/info; the acknowledged-write "
                 f"checker (tests/lab/galera_helpers.Writer) through {lab.db_endpoint[0]}:{lab.db_endpoint[1]} from a "
                 "web node the fault does not touch. Each step observed --settle "
                 f"{args.settle:g} s after the load was served again / the lab was healthy again.",
                 "Rows with ↳ are the return (failback) of the row above: from the restore until the lab was "
                 "healthy plus the settle. Recovery: fault rows, the inject until the last error users saw (a "
                 "failed request, a write gap over 1 s) ended; return rows and rows without one, until the lab "
                 "was healthy. The note after the verdict lists the db nodes' wsrep states in the window.",
                 "Upload gap: on every web node not stopped by the fault, a 4 KiB file written as www-data into "
                 f"{uploads_mount()} with fsync, 5 times a second; the longest pause between two completed writes.",
                 *matrix.details, stopped]
        if matrix.rows:
            common.report(args, "fault_matrix", "The fault matrix (issue #14)", HEADERS, matrix.rows, notes)
    return 0


if __name__ == "__main__":
    common.main_wrapper(main)
