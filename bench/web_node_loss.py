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

import common  # first: it puts the lab driver and the lab tests' helpers on sys.path
import web_helpers as wh
from common import log


def app_dir():
    import yaml

    d = yaml.safe_load((common.REPO / "salt" / "webapp" / "defaults.yaml").read_text())["webapp"]
    return f"{d['root']}/{d['name']}"


def releases(lab, webs):
    return {w: lab.run(w, f"readlink {app_dir()}/current").stdout.strip() for w in webs}


def node_loss(lab, mode, victim, args):
    row = {"scenario": f"web node {'hard-' if mode == 'kill' else ''}stopped ({victim})"}
    rejoin = {"scenario": f"{victim} started again, rejoins"}
    stopped = False
    try:
        with common.measured_load(lab, args) as (load, clock):
            load.wait_for_requests(20, timeout=60)
            t0 = time.monotonic()
            log(f"[{mode}] lxc-stop {'-k ' if mode == 'kill' else ''}{victim}")
            lab.stop(victim, kill=(mode == "kill"))
            stopped = True
            row["step_s"] = time.monotonic() - t0
            load.wait_for_requests(args.requests_while_down, timeout=min(180, args.duration))
        row.update(common.load_figures(load, clock, after=t0))
        log(f"[{mode}] while {victim} is down: {load.report()[:400]}")
    finally:
        if stopped or lab.state(victim) != "RUNNING":
            with common.measured_load(lab, args, max_seconds=600) as (load, clock):
                t0 = time.monotonic()
                log(f"[{mode}] restoring: lxc-start {victim}, wait until UP on every lb")
                lab.start(victim)
                wh.wait_web_up_on_all_lbs(lab, victim, timeout=180)
                rejoin["step_s"] = time.monotonic() - t0
                load.wait_for_requests(50, timeout=60)
            rejoin.update(common.load_figures(load, clock, after=t0))
            log(f"[{mode}] {victim} back in {rejoin['step_s']:.1f}s: {load.report()[:400]}")
    return [row, rejoin]


def orch_under_load(lab, label, sls, pillar, args):
    with common.measured_load(lab, args, max_requests=args.max_requests * 5, max_seconds=1800) as (load, clock):
        t0 = time.monotonic()
        log(f"[{label}] salt-run state.orchestrate {sls}" + (f" pillar='{pillar}'" if pillar else ""))
        ok, detail = lab.orchestrate(sls, pillar)
        step = time.monotonic() - t0
        load.wait_for_requests(20, timeout=60)
    log(f"[{label}] {'ok' if ok else 'FAILED'} in {step:.1f}s; load: {load.report()[:400]}")
    row = dict(common.load_figures(load, clock), scenario=label + ("" if ok else " (orchestration FAILED)"),
               step_s=step)
    return ok, detail, row


def deploy_and_rollback(lab, webs, args):
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
            ok, detail = lab.orchestrate("orch.rollback", {"app": {"rollback_to": original}})
            log(f"restoring: {'ok' if ok else 'FAILED: ' + detail[:1000]}")
        common.wait_web_healthy(lab, timeout=300)
    return rows


def main():
    p = common.parser(__doc__)
    p.add_argument("--scenarios", default="stop,kill,deploy", help="comma list of stop, kill, deploy (default: all)")
    p.add_argument("--victim", help="web node to stop (default: the last web node of the topology)")
    p.add_argument("--requests-while-down", type=int, default=200,
                   help="successful requests to wait for while the node is down (default: %(default)s)")
    common.load_options(p, duration=180, max_requests=20000, timeout=2.0, per="node-loss run")
    args = p.parse_args()
    kinds = common.scenarios(p, args, ("stop", "kill", "deploy"))

    lab = common.open_lab(common.web_node_check(p, args, "victim", -1))
    webs = lab.with_role("web")
    rows = []
    try:
        common.wait_lab_healthy(lab)
        for kind in kinds:
            log(f"== {kind}")
            if kind in ("stop", "kill"):
                rows += node_loss(lab, kind, args.victim, args)
            else:
                rows += deploy_and_rollback(lab, webs, args)
            common.wait_web_healthy(lab, timeout=300)
    finally:
        common.restoring(lab, webs)
    headers = ["scenario", "requests ok", "requests failed", "longest gap between successes (s)", "step duration (s)"]
    table = [[r["scenario"], r.get("ok"), r.get("failed"), r.get("gap"), r.get("step_s")] for r in rows]
    notes = common.load_notes(
        lab, args, rows,
        "Step duration: stop = lxc-stop; rejoin = lxc-start until UP on every lb; deploy/rollback = "
        "wall time of the orchestration.",
        "A deploy leaves its bench-<ts> release unpacked on the web nodes (rollback does not delete it).")
    common.report(args, "web_node_loss", "Web node loss and rolling deploy under load", headers, table, notes)
    return 0


if __name__ == "__main__":
    common.main_wrapper(main)
