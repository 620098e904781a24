#!/usr/bin/env python3
"""Seconds from `vagrant up NODE` to the first request NODE serves through
the VIP, under steady HTTPS load, with the baked web box and the plain box.

For each box (--boxes, default baked,plain):
  1. NODE (default: the first name of the web pool) must not exist;
  2. a client loop runs through https://VIP/api/info (the app names the node);
  3. `vagrant up NODE` with LEMP_HA_WEB_BOX=<box> and nothing else: the
     Vagrantfile has the master mint its key, its minion starts, the
     reactor's orch.enrol highstates it and enables its HAProxy slot;
  4. measured: the seconds until `vagrant up` returned, until NODE served
     its first request through the VIP, requests ok / failed, the longest
     gap between successes;
  5. NODE is removed again with orch.scale_in (drained first), outside the
     measured window.

Writes the section `scale_join` of docs/bench.md (one row per box). Needs
root and the lab up, with the labhost engine and orch.scale_in (exits 3 /
1 otherwise). Never asserts a figure.
"""

import os
import subprocess
import threading
import time

import common  # first: it puts the lab driver and the lab tests' helpers on sys.path
from common import log

import lemp_labcloud  # _modules: the lab's cloud engine's own Vagrant environment and pool checks

BOXES = ("baked", "plain")


def vagrant(node, action, box, timeout):
    env = dict(lemp_labcloud.vagrant_env(common.REPO, os.environ), LEMP_HA_WEB_BOX=box)
    args = ["vagrant", "up", "--provider=lxc", node] if action == "up" else ["vagrant", "destroy", "-f", node]
    return subprocess.run(args, cwd=common.REPO, env=env, capture_output=True, text=True, timeout=timeout)


def vagrant_state(node):
    env = lemp_labcloud.vagrant_env(common.REPO, os.environ)
    out = subprocess.run(["vagrant", "status", "--machine-readable", node], cwd=common.REPO, env=env,
                         capture_output=True, text=True, timeout=120).stdout
    return lemp_labcloud.parse_status(out, [node])[node]


def remove(lab, node):
    """orch.scale_in drains NODE on both LBs, then forgets and destroys it."""
    log(f"removing {node}: salt-run state.orchestrate orch.scale_in pillar='{{\"node\": \"{node}\"}}'")
    ok, detail = lab.orchestrate("orch.scale_in", {"node": node})
    if not ok:
        raise common.BenchError(f"orch.scale_in for {node} failed: {str(detail)[:1500]}")


def join(lab, node, box, args):
    row = {"box": box}
    with common.measured_load(lab, args, max_seconds=args.duration) as (load, clock):
        load.wait_for_requests(20, timeout=60)
        t0 = time.monotonic()
        log(f"[{box}] vagrant up {node} (LEMP_HA_WEB_BOX={box})")
        up = {}

        def boot():
            up["proc"] = vagrant(node, "up", box, timeout=args.duration)
            up["at"] = time.monotonic()

        thread = threading.Thread(target=boot, daemon=True)
        thread.start()
        served = common.wait_for(lambda: load.nodes.get(node, 0) > 0 and time.monotonic(), args.duration,
                                 f"{node} serving a request through the VIP", interval=0.05)
        row["first_served_s"] = served - t0
        thread.join(args.duration)
        if "proc" in up:
            row["vagrant_up_s"] = up["at"] - t0
            if up["proc"].returncode != 0:
                raise common.BenchError(f"vagrant up {node} failed: {up['proc'].stderr[-1500:]}")
        load.wait_for_requests(50, timeout=60)
    row.update(common.load_figures(load, clock, after=t0))
    row["served_by_node"] = load.nodes.get(node, 0)
    log(f"[{box}] {node} first served after {row['first_served_s']:.1f}s; load: {load.report()[:400]}")
    return row


def main():
    p = common.parser(__doc__)
    p.add_argument("--node", help="pool machine to boot (default: the first name of scaling.web.pool)")
    p.add_argument("--boxes", default=",".join(BOXES), help="comma list of %s (default: %%(default)s)" % "/".join(BOXES))
    common.load_options(p, duration=600, max_requests=200000, timeout=5, per="box")
    args = p.parse_args()
    boxes = common.scenarios(p, argparse_boxes(args), BOXES)

    def check(lab):
        pool = lemp_labcloud.pool_names(lab.topology)
        args.node = args.node or pool[0]
        try:
            lemp_labcloud.check_name(args.node, pool)
        except Exception as exc:  # noqa: BLE001 - a usage error, named
            p.error(str(exc))

    lab = common.open_lab(check)
    if not (common.REPO / "orch" / "scale_in.sls").exists():
        raise common.BenchError("orch/scale_in.sls is missing: this bench removes the node with it")
    if vagrant_state(args.node) != "not_created":
        raise common.BenchError(f"{args.node} exists already: remove it first "
                                f"(salt-run state.orchestrate orch.scale_in pillar='{{\"node\": \"{args.node}\"}}')")
    common.wait_lab_healthy(lab)
    rows = []
    with common.autoscaling_paused(lab, f"scale_join boots {args.node} by hand"):
        for box in boxes:
            try:
                rows.append(join(lab, args.node, box, args))
            finally:
                if vagrant_state(args.node) != "not_created":
                    remove(lab, args.node)
                common.wait_web_healthy(lab)
    headers = ["box", "vagrant up returned (s)", f"first request served by {args.node} (s)",
               "requests ok", "failed", "longest gap (s)"]
    table = [[r["box"], r.get("vagrant_up_s"), r.get("first_served_s"), r["ok"], r["failed"], r["gap"]] for r in rows]
    notes = common.load_notes(lab, args, [dict(r, scenario=f"{r['box']} box") for r in rows],
                              "The clock starts when `vagrant up` is run on the host, and stops at the first "
                              f"response through the VIP that names {args.node}. Goal of issue #12: under 20 s.",
                              "Between the two: the baked box skips the package installs; what remains is the VM's "
                              "boot and minion start, the reactor's orch.enrol (module sync, pillar, mine, the "
                              "highstate that only configures, /healthz from both LBs, the runtime enable).",
                              "baked: lemp-ha/debian12-web (the web role's packages installed, services off, "
                              "tools/lab/build-box.sh); plain: lemp-ha/debian12, the first highstate installs them.")
    common.report(args, "scale_join", "Joining the web tier: vagrant up to first request served", headers, table, notes)
    return 0


def argparse_boxes(args):
    """`common.scenarios` reads `args.scenarios`."""
    args.scenarios = args.boxes
    return args


if __name__ == "__main__":
    common.main_wrapper(main)
