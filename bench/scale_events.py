#!/usr/bin/env python3
"""Scaling the web tier, measured under steady HTTPS load through the VIP.

Scenarios:
  auto     CPU load through the VIP (`ab` on the app's /api/work?ms=N) until
           Zabbix's high trigger makes the master scale out by itself: the
           seconds from the load's start to the master's decision (the
           threshold crossing is within the first item interval, 30 s, of the
           load's start; then the trigger's window, scaling:autoscale:window),
           from the decision to the first request the new node served, and
           in all; then the load stops and the node is scaled in by hand.
  hand     orch.scale_out then orch.scale_in, each timed, under the loop.
For each: requests ok/failed during it, the longest gap between successes.

Writes the section `scale_events` of docs/bench.md. Needs root, the lab up
(exits 3 otherwise), `ab` (apache2-utils) for `auto`. Never asserts a figure.
"""

import json
import shutil
import subprocess
import time

import common  # first: it puts the lab driver and the lab tests' helpers on sys.path
from common import log

LOG = "/var/log/lemp-ha/scaling.log"


def enrolled(lab):
    out = lab.run(lab.master, "cat /var/lib/lemp-ha/enrolled.json 2>/dev/null || echo '{}'", check=False)
    return sorted(json.loads(out.stdout or "{}"))


def decisions(lab):
    return lab.run(lab.master, f"cat {LOG} 2>/dev/null", check=False).stdout.splitlines()


def scale_in_all(lab):
    for node in enrolled(lab):
        log(f"restoring: orch.scale_in {node}")
        ok, detail = lab.orchestrate("orch.scale_in", {"node": node}, timeout=900)
        log(f"restoring: {'ok' if ok else 'FAILED: ' + detail[:1000]}")


def timed_orch(lab, args, label, sls, pillar=None):
    with common.measured_load(lab, args, max_seconds=1800) as (load, clock):
        t0 = time.monotonic()
        ok, detail = lab.orchestrate(sls, pillar, timeout=1500)
        step = time.monotonic() - t0
        load.wait_for_requests(20, timeout=60)
    log(f"[{label}] {'ok' if ok else 'FAILED'} in {step:.1f}s; load: {load.report()[:400]}")
    if not ok:
        raise common.BenchError(f"{sls} failed: {detail[:2000]}")
    return dict(common.load_figures(load, clock, after=t0), scenario=label, step_s=step)


def by_hand(lab, args):
    rows = [timed_orch(lab, args, "orch.scale_out (boot, enrol, serve)", "orch.scale_out")]
    node = enrolled(lab)[-1]
    rows.append(timed_orch(lab, args, f"orch.scale_in {node} (drain, remove, destroy)", "orch.scale_in",
                           {"node": node}))
    return rows


def on_load(lab, args):
    ab = shutil.which("ab")
    if not ab:
        raise common.BenchError("`ab` is not installed (apt-get install apache2-utils)")
    code, status = lab.salt_run("lemp_scale.status")
    if code == 0 and isinstance(status, dict) and status.get("paused"):
        raise common.BenchError(f"autoscaling is paused ({status}): salt-run lemp_scale.resume first")
    before = set(enrolled(lab))
    seen = len(decisions(lab))
    row = {"scenario": "autoscale out on CPU load (Zabbix -> reactor -> orch.autoscale)"}
    gen = subprocess.Popen([ab, "-q", "-k", "-c", str(args.concurrency), "-t", str(args.load_seconds), "-n",
                            "100000000", "-s", "30", f"https://{lab.vip}/api/work?ms={args.work_ms}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with common.measured_load(lab, args, max_seconds=args.load_seconds + 300) as (load, clock):
            t0 = time.monotonic()
            decided = served = node = None
            while time.monotonic() - t0 < args.load_seconds:
                if decided is None and any(" scale-out " in line for line in decisions(lab)[seen:]):
                    decided = time.monotonic() - t0
                    log(f"[auto] the master decided to scale out after {decided:.0f}s")
                new = set(enrolled(lab)) - before
                node = node or (sorted(new)[0] if new else None)
                if node and load.nodes.get(node):
                    served = time.monotonic() - t0
                    log(f"[auto] {node} served its first request at {served:.0f}s")
                    break
                time.sleep(0.5)
            load.wait_for_requests(20, timeout=60)
        row.update(common.load_figures(load, clock, after=t0), decision_s=decided, serving_s=served,
                   boot_to_serving_s=(served - decided) if served and decided else None)
    finally:
        if gen.poll() is None:
            gen.terminate()
            gen.wait(30)
    return [row]


def main():
    p = common.parser(__doc__)
    p.add_argument("--scenarios", default="auto,hand", help="comma list of auto, hand (default: all)")
    p.add_argument("--concurrency", type=int, default=48, help="ab's concurrency for `auto` (default: %(default)s)")
    p.add_argument("--work-ms", type=int, default=400, help="CPU ms per /api/work request (default: %(default)s)")
    p.add_argument("--load-seconds", type=int, default=900, help="max seconds of load for `auto` (default: %(default)s)")
    common.load_options(p, duration=1800, max_requests=400000, timeout=5.0, per="scenario")
    args = p.parse_args()
    kinds = common.scenarios(p, args, ("auto", "hand"))
    lab = common.open_lab()
    rows = []
    try:
        if "auto" in kinds:
            rows += on_load(lab, args)
            scale_in_all(lab)
        if "hand" in kinds:
            with common.autoscaling_paused(lab, "scale_events scales by hand"):
                rows += by_hand(lab, args)
    finally:
        scale_in_all(lab)
    columns = [("scenario", "scenario"), ("decision_s", "load start to decision (s)"),
               ("boot_to_serving_s", "decision to serving (s)"), ("serving_s", "load start to serving (s)"),
               ("step_s", "orchestration (s)"), ("ok", "ok"), ("failed", "failed"), ("gap", "longest gap (s)")]
    table = [[row.get(key) for key, _ in columns] for row in rows]
    common.report(args, "scale_events", "Scaling: threshold to serving, failed requests",
                  [title for _, title in columns], table,
                  common.load_notes(lab, args, rows, "Lab settings: pillar/autoscale.sls (load read every 5 s, window 25s, repeat 1m, cooldown 75 s). The load start to the decision is the trigger's window plus up to two reading intervals.",
                                    "Decision to serving under the CPU load: every lab VM shares the host's 2 cores with that load, so the new node boots and runs its highstate on a saturated CPU; on an idle host the same join takes the scale_join figure. On separate cloud hosts the new VM has its own CPU.",
                                    bounds=f", CPU load: ab -c {args.concurrency} /api/work?ms={args.work_ms}"))


if __name__ == "__main__":
    common.main_wrapper(main)
