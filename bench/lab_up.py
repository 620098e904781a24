#!/usr/bin/env python3
"""Wall time of bringing the lab up and of converging it.

Default (warm):
  ./lab up                            on a lab that is already up (repair run;
                                      when the lab is down it is first brought
                                      up, and that run is reported as such)
  salt-run state.orchestrate orch.site   a converged second run (its changes
                                      are counted: 0 expected)
--cold, in addition:
  ./lab down && ./lab up              with the caches present
--cold --no-cache, in addition:
  ./lab down; /var/cache/lemp-ha, /var/cache/apt-cacher-ng and pip's cache
  moved aside; ./lab up (box, wheels and apt cache rebuilt from the
  Internet), and with --with-test then ./lab test (test virtualenv,
  fresh-machine root, every test): the README's two commands from a machine
  with no caches. The
  original caches are ALWAYS put back afterwards (the freshly built ones are
  deleted), and the apt proxy is restarted on them.

Writes the sections `lab_up` (warm) and `lab_up_cold` of docs/bench.md. Needs root. Runs with the host's
/usr/bin/python3 (python3-yaml); with --no-cache it re-executes itself there
if started from a virtualenv inside the cache being moved.
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import common  # first: it puts the lab driver and the lab tests' helpers on sys.path
import orch_report
from common import log

LAB = str(common.REPO / "lab")
LAB_CACHE = pathlib.Path(os.environ.get("LEMP_HA_CACHE", "/var/cache/lemp-ha"))
ACNG_CACHE = pathlib.Path("/var/cache/apt-cacher-ng")
PIP_CACHE = pathlib.Path.home() / ".cache" / "pip"
ACNG_PIDFILE = pathlib.Path("/run/lemp-ha-apt-cacher-ng.pid")


def timed(cmd, what):
    log(f"running: {' '.join(cmd)}   ({what})")
    t0 = time.monotonic()
    rc = subprocess.run(cmd, cwd=common.REPO).returncode
    dt = time.monotonic() - t0
    log(f"{what}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {dt:.1f}s")
    return rc, dt


def orch_site_converged(lab):
    log(f"running on {lab.master}: salt-run state.orchestrate orch.site (converged second run)")
    t0 = time.monotonic()
    proc = lab.run(lab.master, "salt-run --out=json --state-verbose=False state.orchestrate orch.site",
                   check=False, timeout=3600)
    dt = time.monotonic() - t0
    try:
        lines, failed, changes = orch_report.summarise(json.loads(proc.stdout) if proc.stdout.strip() else {})
    except ValueError:
        lines, failed, changes = [proc.stdout[-1000:], proc.stderr[-1000:]], True, None
    print("\n".join(lines), flush=True)
    ok = proc.returncode == 0 and not failed
    log(f"orch.site: {'ok' if ok else 'FAILED'} in {dt:.1f}s, {changes} changes")
    return ok, dt, changes


# -- caches aside and back ---------------------------------------------------------

def stop_apt_proxy():
    """Stop the lab's apt-cacher-ng (started by ./lab, pid in its pidfile)."""
    try:
        pid = int(ACNG_PIDFILE.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    ACNG_PIDFILE.unlink(missing_ok=True)
    log(f"apt proxy (pid {pid}) stopped")


def start_apt_proxy():
    """The lab's own apt_proxy_up (tools/lab/network.sh)."""
    tools = common.REPO / "tools" / "lab"
    rc = subprocess.run(["bash", "-c", f"set -euo pipefail; source {tools}/lib.sh; source {tools}/network.sh; "
                                       "load_topology; apt_proxy_up"]).returncode
    log("apt proxy restarted on the original cache" if rc == 0 else f"WARNING: restarting the apt proxy failed ({rc}); "
        "`./lab up` starts it again")


def move_aside(paths, stamp):
    moved = []
    for path in paths:
        if path.exists():
            aside = path.with_name(f"{path.name}.bench-aside-{stamp}")
            log(f"moving {path} aside to {aside}")
            path.rename(aside)
            moved.append((path, aside))
        else:
            log(f"{path} does not exist: nothing to move aside")
    return moved


def restore_caches(moved, stamp, lab):
    if not moved:
        return
    stop_apt_proxy()
    problems = []
    for path, aside in moved:
        try:
            if path.exists():
                fresh = path.with_name(f"{path.name}.bench-fresh-{stamp}")
                path.rename(fresh)
                aside.rename(path)
                shutil.rmtree(fresh, ignore_errors=True)
                log(f"restored {path} (the freshly built one is deleted)")
            else:
                aside.rename(path)
                log(f"restored {path}")
        except OSError as exc:
            problems.append(f"{path}: {exc} (original kept at {aside})")
    if subprocess.run(["ip", "link", "show", lab.network["bridge"]], capture_output=True).returncode == 0:
        start_apt_proxy()
    if problems:
        raise common.BenchError("restoring the caches failed: " + "; ".join(problems))


def main():
    p = common.parser(__doc__)
    p.add_argument("--cold", action="store_true", help="also time ./lab down && ./lab up (caches present)")
    p.add_argument("--no-cache", action="store_true",
                   help="with --cold: also time ./lab up with the caches moved aside (restored afterwards)")
    p.add_argument("--skip-warm", action="store_true", help="do not time the warm ./lab up and orch.site")
    p.add_argument("--with-test", action="store_true",
                   help="with --no-cache: also time ./lab test right after the cold ./lab up")
    args = p.parse_args()
    if args.no_cache and not args.cold:
        p.error("--no-cache needs --cold")
    common.require_root()
    if args.no_cache and str(pathlib.Path(sys.prefix).resolve()).startswith(str(LAB_CACHE)) \
            and sys.executable != "/usr/bin/python3":
        log(f"this Python lives in {LAB_CACHE}, which --no-cache moves aside: re-running with /usr/bin/python3")
        os.execv("/usr/bin/python3", ["/usr/bin/python3", os.path.abspath(__file__)] + sys.argv[1:])
    lab = common.lemplab.Lab()  # only lxc-attach and lxc-info here: no traffic to the lab
    warm, cold, failed = [], [], []

    def record(label, rc, dt, rows=None):
        rows = cold if args.cold and rows is None else (warm if rows is None else rows)
        rows.append([label, f"{dt:.1f}" if rc == 0 else f"FAILED (exit {rc}) after {dt:.1f}"])
        if rc != 0:
            failed.append(label)
        return rc == 0

    def finish():
        note = "Wall time on the lab host; `./lab up` includes the final orch.site run."
        if warm:
            common.report(args, "lab_up", "Lab bring-up (warm) and convergence", ["scenario", "seconds"], warm,
                          [note])
        if cold:
            common.report(args, "lab_up_cold", "Lab bring-up from scratch", ["scenario", "seconds"], cold,
                          [note, "No cache: /var/cache/lemp-ha (box, wheels, venv, fresh root), "
                                 "/var/cache/apt-cacher-ng and pip's cache moved aside, so the box is rebuilt with "
                                 "debootstrap and every package comes from the network: the time depends on it."])

    try:
        if not args.skip_warm:
            if not lab.is_up():
                log("the lab is not (entirely) up: bringing it up first")
                if not record("./lab up, lab was down (caches as found)", *timed([LAB, "up"], "./lab up from down"),
                              rows=warm):
                    raise common.BenchError("./lab up failed")
            record("./lab up, lab already up (repair run)", *timed([LAB, "up"], "./lab up, warm"), rows=warm)
            ok, dt, changes = orch_site_converged(lab)
            record(f"salt-run state.orchestrate orch.site, converged ({changes} changes)", 0 if ok else 1, dt,
                   rows=warm)
        if args.cold:
            rc1, dt1 = timed([LAB, "down"], "./lab down")
            record("./lab down", rc1, dt1)
            rc2, dt2 = timed([LAB, "up"], "./lab up, cold, caches present")
            record("./lab up, cold, caches present", rc2, dt2)
            record("./lab down && ./lab up, caches present", rc1 or rc2, dt1 + dt2)
            if rc1 or rc2:
                raise common.BenchError("cold ./lab down/up failed")
        if args.no_cache:
            rc1, dt1 = timed([LAB, "down"], "./lab down (before the no-cache run)")
            if rc1:
                record("./lab down", rc1, dt1)
                raise common.BenchError("./lab down failed")
            stamp = time.strftime("%Y%m%d%H%M%S")
            moved = []
            try:
                moved = move_aside([LAB_CACHE, ACNG_CACHE, PIP_CACHE], stamp)
                rc2, dt2 = timed([LAB, "up"], "./lab up, cold, no cache")
                record("./lab up, cold, no cache (box, wheels, apt cache rebuilt)", rc2, dt2)
                record("./lab down && ./lab up, no cache", rc1 or rc2, dt1 + dt2)
                if args.with_test and not rc2:
                    rc3, dt3 = timed([LAB, "test"], "./lab test, right after the cold ./lab up")
                    record("./lab test after it (test virtualenv, fresh-machine root, every test)", rc3, dt3)
                    record("**./lab up + ./lab test from no cache** (goal: under 25 min)", rc2 or rc3, dt2 + dt3)
            finally:
                restore_caches(moved, stamp, lab)
            if rc2:
                raise common.BenchError("./lab up without caches failed (caches restored; ./lab up again to repair)")
    finally:
        finish()
    if failed:
        raise common.BenchError("failed: " + ", ".join(failed))
    return 0


if __name__ == "__main__":
    common.main_wrapper(main)
