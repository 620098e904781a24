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

import common
from common import log


def run_scenario(lab, kind, args):
    import web_helpers as wh

    wh.REQUEST_TIMEOUT = args.timeout  # LoadLoop reads it at every request
    holder = wh.wait_single_vip_holder(lab, timeout=60)
    log(f"[{kind}] VIP {lab.vip} is on {holder}; starting load ({args.max_requests} requests / {args.duration}s max)")
    row = {"scenario": kind, "holder": holder}
    broken = False
    try:
        loop_t0 = time.monotonic()
        with wh.LoadLoop(lab, path=args.path, max_requests=args.max_requests, max_seconds=args.duration,
                         pause=args.pause) as load, common.SuccessClock(load) as clock:
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
        row["ok"], row["failed"] = load.ok, len(load.failures)
        if fails:
            first = clock.first_success_after(fails[-1])
            row["fail_to_success_s"] = (first - fails[0]) if first else None
        else:
            row["fail_to_success_s"] = 0.0
        row["longest_gap_s"] = clock.longest_gap(after=t_break)
        row["examples"] = "; ".join(reason for _, reason in load.failures[:2])
        log(f"[{kind}] {load.report()[:400]}")
    finally:
        if broken:
            row.update(restore(lab, kind, holder, args))
    return row


def restore(lab, kind, holder, args):
    """Put back what was broken, under load when the service answers
    (failback); then wait until the lab is healthy."""
    import web_helpers as wh

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
            if lab.state(holder) != "RUNNING":
                log(f"[{kind}] restoring: lxc-start {holder}")
                lab.start(holder)
        else:
            log(f"[{kind}] restoring: haproxy on {holder}")
            lab.run(holder, "systemctl is-active -q haproxy || "
                            "{ systemctl reset-failed haproxy; systemctl restart haproxy; }")
            wh.wait_until(lambda: lab.run(holder, "killall -0 haproxy", check=False).returncode == 0,
                          60, f"haproxy back on {holder}")
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
    p.add_argument("--duration", type=int, default=120, help="max seconds of load per run (default: %(default)s)")
    p.add_argument("--max-requests", type=int, default=20000, help="max requests per run (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=1.0, help="per-request timeout in s (default: %(default)s)")
    p.add_argument("--pause", type=float, default=0.02, help="pause between requests in s (default: %(default)s)")
    p.add_argument("--path", default="/api/info", help="path requested through the VIP (default: %(default)s)")
    args = p.parse_args()
    kinds = [k.strip() for k in args.scenarios.split(",") if k.strip()]
    bad = [k for k in kinds if k not in ("lb-kill", "haproxy-kill")]
    if bad:
        p.error(f"unknown scenario(s): {', '.join(bad)}")

    common.require_root()
    topology = common.load_topology()
    common.require_lab(topology)
    lab = common.get_lab(topology)
    lbs = common.lemp_topology.with_role(topology, "lb")
    try:
        common.wait_lab_healthy(lab, topology)
        results = []
        for kind in kinds:
            for i in range(args.repeat):
                log(f"== {kind} run {i + 1}/{args.repeat}")
                results.append(run_scenario(lab, kind, args))
    finally:
        common.ensure_running(lab, lbs)
    headers = ["scenario", "VIP was on", "moved to", "requests ok", "requests failed",
               "first failure → first success (s)", "longest gap between successes (s)",
               "VIP moved after (s)", "failback: failed requests", "back to healthy (s)"]
    rows = [[r["scenario"], r["holder"], r.get("new_holder"), r.get("ok"), r.get("failed"),
             r.get("fail_to_success_s"), r.get("longest_gap_s"), r.get("vip_moved_s"),
             r.get("failback_failed"), r.get("back_healthy_s")] for r in results]
    notes = [f"One client loop through https://{topology['network']['vip']}{args.path}, request timeout "
             f"{args.timeout}s, pause {args.pause}s; bounded to {args.duration}s / {args.max_requests} requests per run.",
             "lb-kill: `lxc-stop -k` of the lb holding the VIP; haproxy-kill: `killall -9 haproxy` on it.",
             "First failure → first success: from the start of the first failed request to the first "
             "success after the last failed one; longest gap: the longest time between two successful "
             "responses (sampled every 10 ms).",
             "Failback: the stopped part is started again under load; its failed requests are counted separately."]
    notes += [f"{r['scenario']} failures, e.g.: {r['examples'][:300]}" for r in results if r.get("examples")]
    common.report(args, "lb_failover", "Load-balancer failover under load", headers, rows, notes)
    return 0


if __name__ == "__main__":
    common.main_wrapper(main)
