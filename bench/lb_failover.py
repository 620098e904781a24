#!/usr/bin/env python3
"""Load-balancer failover, measured under steady HTTPS load through the VIP.

Scenarios (each repeated --repeat times):
  lb-kill       the lb holding the VIP is hard-stopped (lxc-stop -k)
  haproxy-kill  `killall -9 haproxy` on the lb holding the VIP (haproxy only)
For each: requests ok/failed, seconds from the first failed request to the
first success after it, the longest gap between two successful responses,
seconds until the VIP is on another lb; then the stopped part is started
again under load (failback: its failed requests are counted too) and the
script waits until the lab is healthy.

Writes the section `lb_failover` of docs/bench.md. Needs root and the lab up
(exits 3 otherwise). Never asserts a figure.
"""

import time

import common  # first: it puts the lab driver and the lab tests' helpers on sys.path
import web_helpers as wh
from common import log, wait_for


def run_scenario(lab, kind, args):
    holder = wh.wait_single_vip_holder(lab, timeout=60)
    log(f"[{kind}] VIP {lab.vip} is on {holder}; starting load ({args.max_requests} requests / {args.duration}s max)")
    row = {"scenario": kind, "holder": holder}
    broken = False
    try:
        loop_t0 = time.monotonic()
        with common.measured_load(lab, args) as (load, clock):
            load.wait_for_requests(20, timeout=60)
            t_break = time.monotonic()
            if kind == "lb-kill":
                log(f"[{kind}] lxc-stop -k {holder}")
                lab.stop(holder, kill=True)
            else:
                log(f"[{kind}] killall -9 haproxy on {holder}")
                lab.run(holder, "killall -9 haproxy")
            broken = True
            try:
                new_holder = wh.wait_single_vip_holder(lab, timeout=30, not_on=holder)
                row["vip_moved_s"] = time.monotonic() - t_break
                row["new_holder"] = new_holder
                log(f"[{kind}] VIP moved to {new_holder} after {row['vip_moved_s']:.2f}s")
            except AssertionError as exc:
                log(f"[{kind}] VIP did not move within 30s: {exc}")
                row["new_holder"] = ", ".join(wh.vip_holders(lab)) or "nobody"
            load.wait_for_requests(50, timeout=min(120, args.duration))
        fails = [at + loop_t0 for at, _ in load.failures if at + loop_t0 >= t_break - 1]
        row.update(common.load_figures(load, clock, after=t_break))
        if fails:
            first = clock.first_success_after(fails[-1])
            row["fail_to_success_s"] = (first - fails[0]) if first else None
        else:
            row["fail_to_success_s"] = 0.0
        log(f"[{kind}] {load.report()[:400]}")
    finally:
        if broken:
            row.update(restore(lab, kind, holder, args))
    return row


def restore(lab, kind, holder, args):
    """Put back what was broken, under load when the service answers
    (failback); then wait until the lab is healthy."""
    out = {}
    t0 = time.monotonic()
    load = wh.LoadLoop(lab, path=args.path, max_requests=args.max_requests, max_seconds=600, pause=args.pause)
    try:
        load.__enter__()  # waits for 5 successes
    except AssertionError as exc:
        log(f"[{kind}] the VIP does not answer before the restore ({exc}); restoring without load")
        load.__exit__(None, None, None)
        load = None
    try:
        if kind == "lb-kill":
            common.restoring(lab, [holder])
        else:
            log(f"[{kind}] restoring: haproxy on {holder}")
            lab.run(holder, "systemctl is-active -q haproxy || "
                            "{ systemctl reset-failed haproxy; systemctl restart haproxy; }")
            wait_for(lambda: lab.run(holder, "killall -0 haproxy", check=False).returncode == 0,
                     60, f"haproxy back on {holder}", interval=0.2)
        common.wait_web_healthy(lab, timeout=300)
        if load is not None:
            load.wait_for_requests(20, timeout=60)
    finally:
        if load is not None:
            load.__exit__(None, None, None)
    out["back_healthy_s"] = time.monotonic() - t0
    out["failback_failed"] = len(load.failures) if load is not None else None
    out["final_holder"] = ", ".join(wh.vip_holders(lab))
    log(f"[{kind}] healthy again after {out['back_healthy_s']:.1f}s"
        + (f"; failback: {load.report()[:300]}" if load is not None else ""))
    return out


def main():
    p = common.parser(__doc__)
    p.add_argument("--scenarios", default="lb-kill,haproxy-kill", help="comma list of lb-kill, haproxy-kill (default: both)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each scenario (default: %(default)s)")
    common.load_options(p, duration=120, max_requests=20000, timeout=1.0)
    args = p.parse_args()
    kinds = common.scenarios(p, args, ("lb-kill", "haproxy-kill"))

    lab = common.open_lab()
    results = []
    try:
        common.wait_lab_healthy(lab)
        for kind in kinds:
            for i in range(args.repeat):
                log(f"== {kind} run {i + 1}/{args.repeat}")
                results.append(run_scenario(lab, kind, args))
    finally:
        common.restoring(lab, lab.with_role("lb"))
    headers = ["scenario", "VIP was on", "moved to", "requests ok", "requests failed",
               "first failure → first success (s)", "longest gap between successes (s)",
               "VIP moved after (s)", "failback: failed requests", "back to healthy (s)"]
    rows = [[r["scenario"], r["holder"], r.get("new_holder"), r.get("ok"), r.get("failed"),
             r.get("fail_to_success_s"), r.get("gap"), r.get("vip_moved_s"),
             r.get("failback_failed"), r.get("back_healthy_s")] for r in results]
    notes = common.load_notes(
        lab, args, results,
        "lb-kill: `lxc-stop -k` of the lb holding the VIP; haproxy-kill: `killall -9 haproxy` on it.",
        "First failure → first success: from the start of the first failed request to the first "
        "success after the last failed one; longest gap: the longest time between two successful "
        "responses (sampled every 10 ms).",
        "Failback: the stopped part is started again under load; its failed requests are counted separately.",
        bounds=f"; bounded to {args.duration}s / {args.max_requests} requests per run")
    common.report(args, "lb_failover", "Load-balancer failover under load", headers, rows, notes)
    return 0


if __name__ == "__main__":
    common.main_wrapper(main)
