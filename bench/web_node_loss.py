#!/usr/bin/env python3
"""Web-tier disruption under steady HTTPS load through the VIP.

Scenarios:
  stop     one web node is stopped (lxc-stop), load continues, it is started
           again (rejoin counted separately)
  kill     the same with a hard stop (lxc-stop -k)
  deploy   rolling deploy of a throw-away version, then orch.rollback:
             salt-run state.orchestrate orch.deploy pillar='{"app":{"version":"bench-<ts>"}}'
             salt-run state.orchestrate orch.rollback
For each: requests ok/failed, longest gap between successes, and the
duration of the step (orchestration wall time for deploy/rollback).

If the deploy succeeded but the rollback did not bring every web node back to
the release it had before, the script rolls back to that release explicitly
(pillar app:rollback_to) in its `finally`.

Writes the section `web_node_loss` of docs/bench.md. Needs root and the lab up
(exits 3 otherwise). Never asserts a figure.
"""

import time

import common
from common import log


def app_dir():
    import yaml

    d = yaml.safe_load((common.REPO / "salt" / "webapp" / "defaults.yaml").read_text())["webapp"]
    return f"{d['root']}/{d['name']}"


def releases(lab, webs):
    return {w: lab.run(w, f"readlink {app_dir()}/current").stdout.strip() for w in webs}


def node_loss(lab, mode, victim, args):
    import web_helpers as wh

    row = {"scenario": f"web node {'hard-' if mode == 'kill' else ''}stopped ({victim})"}
    rejoin = {"scenario": f"{victim} started again, rejoins"}
    stopped = False
    try:
        with wh.LoadLoop(lab, path=args.path, max_requests=args.max_requests, max_seconds=args.duration,
                         pause=args.pause) as load, common.SuccessClock(load) as clock:
            load.wait_for_requests(20, timeout=60)
            t0 = time.monotonic()
            log(f"[{mode}] lxc-stop {'-k ' if mode == 'kill' else ''}{victim}")
            lab.stop(victim, kill=(mode == "kill"))
            stopped = True
            row["step_s"] = time.monotonic() - t0
            load.wait_for_requests(args.requests_while_down, timeout=min(180, args.duration))
        row.update(ok=load.ok, failed=len(load.failures), gap=clock.longest_gap(after=t0),
                   examples="; ".join(r for _, r in load.failures[:2]))
        log(f"[{mode}] while {victim} is down: {load.report()[:400]}")
    finally:
        if stopped or lab.state(victim) != "RUNNING":
            with wh.LoadLoop(lab, path=args.path, max_requests=args.max_requests, max_seconds=600,
                             pause=args.pause) as load, common.SuccessClock(load) as clock:
                t0 = time.monotonic()
                log(f"[{mode}] restoring: lxc-start {victim}, wait until UP on every lb")
                lab.start(victim)
                wh.wait_web_up_on_all_lbs(lab, victim, timeout=180)
                rejoin["step_s"] = time.monotonic() - t0
                load.wait_for_requests(50, timeout=60)
            rejoin.update(ok=load.ok, failed=len(load.failures), gap=clock.longest_gap(after=t0),
                          examples="; ".join(r for _, r in load.failures[:2]))
            log(f"[{mode}] {victim} back in {rejoin['step_s']:.1f}s: {load.report()[:400]}")
    return [row, rejoin]


def orch_under_load(lab, label, sls, pillar, args):
    import web_helpers as wh

    with wh.LoadLoop(lab, path=args.path, max_requests=args.max_requests * 5, max_seconds=1800,
                     pause=args.pause) as load, common.SuccessClock(load, max_seconds=1800) as clock:
        t0 = time.monotonic()
        log(f"[{label}] salt-run state.orchestrate {sls}" + (f" pillar='{pillar}'" if pillar else ""))
        ok, detail = common.orchestrate(lab, sls, pillar)
        step = time.monotonic() - t0
        load.wait_for_requests(20, timeout=60)
    log(f"[{label}] {'ok' if ok else 'FAILED'} in {step:.1f}s; load: {load.report()[:400]}")
    row = {"scenario": label + ("" if ok else " (orchestration FAILED)"), "ok": load.ok,
           "failed": len(load.failures), "gap": clock.longest_gap(), "step_s": step,
           "examples": "; ".join(r for _, r in load.failures[:2])}
    return ok, detail, row


def deploy_and_rollback(lab, webs, args):
    import web_helpers as wh

    before = releases(lab, webs)
    log(f"[deploy] current releases: {before}")
    if len(set(before.values())) != 1:
        raise common.BenchError(f"web nodes are not on one release before the deploy: {before}")
    original = next(iter(before.values())).split("/", 1)[-1]
    version = f"bench-{int(time.time())}"
    rows = []
    try:
        ok, detail, row = orch_under_load(lab, f"rolling deploy of {version}", "orch.deploy",
                                          {"app": {"version": version}}, args)
        rows.append(row)
        if not ok:
            raise common.BenchError(f"orch.deploy failed: {detail[:2000]}")
        ok, detail, row = orch_under_load(lab, f"rollback to {original}", "orch.rollback", None, args)
        rows.append(row)
        if not ok:
            raise common.BenchError(f"orch.rollback failed: {detail[:2000]}")
    finally:
        now = releases(lab, webs)
        if now != before:
            log(f"restoring: releases are {now}, were {before}: orch.rollback to {original}")
            ok, detail = common.orchestrate(lab, "orch.rollback", {"app": {"rollback_to": original}})
            log(f"restoring: {'ok' if ok else 'FAILED: ' + detail[:1000]}")
        common.wait_web_healthy(lab, timeout=300)
    return rows


def main():
    p = common.parser(__doc__)
    p.add_argument("--scenarios", default="stop,kill,deploy", help="comma list of stop, kill, deploy (default: all)")
    p.add_argument("--victim", help="web node to stop (default: the last web node of the topology)")
    p.add_argument("--duration", type=int, default=180, help="max seconds of load per node-loss run (default: %(default)s)")
    p.add_argument("--max-requests", type=int, default=20000, help="max requests per node-loss run (default: %(default)s)")
    p.add_argument("--requests-while-down", type=int, default=200,
                   help="successful requests to wait for while the node is down (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=2.0, help="per-request timeout in s (default: %(default)s)")
    p.add_argument("--pause", type=float, default=0.02, help="pause between requests in s (default: %(default)s)")
    p.add_argument("--path", default="/api/info", help="path requested through the VIP (default: %(default)s)")
    args = p.parse_args()
    kinds = [k.strip() for k in args.scenarios.split(",") if k.strip()]
    bad = [k for k in kinds if k not in ("stop", "kill", "deploy")]
    if bad:
        p.error(f"unknown scenario(s): {', '.join(bad)}")

    common.require_root()
    topology = common.load_topology()
    webs = common.lemp_topology.with_role(topology, "web")
    victim = args.victim or webs[-1]
    if victim not in webs:
        p.error(f"--victim {victim} is not a web node ({', '.join(webs)})")
    common.require_lab(topology)
    lab = common.get_lab(topology)
    import web_helpers as wh

    wh.REQUEST_TIMEOUT = args.timeout
    rows = []
    try:
        common.wait_lab_healthy(lab, topology)
        for kind in kinds:
            log(f"== {kind}")
            if kind in ("stop", "kill"):
                rows += node_loss(lab, kind, victim, args)
            else:
                rows += deploy_and_rollback(lab, webs, args)
            common.wait_web_healthy(lab, timeout=300)
    finally:
        common.ensure_running(lab, webs)
    headers = ["scenario", "requests ok", "requests failed", "longest gap between successes (s)", "step duration (s)"]
    table = [[r["scenario"], r.get("ok"), r.get("failed"), r.get("gap"), r.get("step_s")] for r in rows]
    notes = [f"One client loop through https://{topology['network']['vip']}{args.path}, request timeout "
             f"{args.timeout}s, pause {args.pause}s.",
             "Step duration: stop = lxc-stop; rejoin = lxc-start until UP on every lb; deploy/rollback = "
             "wall time of the orchestration.",
             "A deploy leaves its bench-<ts> release unpacked on the web nodes (rollback does not delete it)."]
    notes += [f"{r['scenario']} failures, e.g.: {r['examples'][:300]}" for r in rows if r.get("examples")]
    common.report(args, "web_node_loss", "Web node loss and rolling deploy under load", headers, table, notes)
    return 0


if __name__ == "__main__":
    common.main_wrapper(main)
