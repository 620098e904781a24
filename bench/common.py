"""Shared by the bench scripts: topology, the lab-route safety check, the Lab
object of the lab tests, health waits, and the writer of docs/bench.md.

The scripts MEASURE and report; they never assert a figure. Everything that
talks to the lab goes either through lxc-attach (no network) or, for HTTP,
only after `require_lab()` has checked that every lab address is routed over
the lab bridge (while the lab is down those addresses are routed out of this
machine, and no traffic may go there).
"""

import argparse
import datetime
import importlib.util
import os
import pathlib
import platform
import re
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "bench.md"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

for _p in (REPO / "_modules", REPO / "tests" / "lab", REPO / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import lemp_topology  # noqa: E402  (after the path set-up above)


class BenchError(Exception):
    """A step of a benchmark failed; the message says which and why."""


# -- output -----------------------------------------------------------------

_T0 = time.monotonic()


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')} +{time.monotonic() - _T0:7.1f}s] {msg}", flush=True)


def fmt(value, digits=2):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


# -- topology and the lab -----------------------------------------------------

def load_topology():
    return lemp_topology.load(REPO / "pillar" / "topology.yaml")


def _conftest():
    """tests/lab/conftest.py, loaded under its own name (it needs pytest)."""
    mod = sys.modules.get("lemp_lab_conftest")
    if mod is None:
        spec = importlib.util.spec_from_file_location("lemp_lab_conftest", REPO / "tests" / "lab" / "conftest.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        sys.modules["lemp_lab_conftest"] = mod
    return mod


def route_device(address):
    try:
        return _conftest().route_device(address)
    except ImportError:  # no pytest in this Python (e.g. /usr/bin/python3): the same check
        out = subprocess.run(["ip", "-o", "route", "get", address], capture_output=True, text=True).stdout
        words = out.split()
        return words[words.index("dev") + 1] if "dev" in words else None


def machine_state(name):
    return subprocess.run(["lxc-info", "-s", "-H", "-n", f"lemp-ha-{name}"],
                          capture_output=True, text=True).stdout.strip()


def lab_not_up(reason):
    print(f"lab not up: {reason}; run ./lab up", file=sys.stderr, flush=True)
    sys.exit(3)


def require_root():
    if os.geteuid() != 0:
        print("ERROR: the bench scripts must run as root (lxc-attach, lxc-stop)", file=sys.stderr)
        sys.exit(2)


def require_lab(topology):
    """Before ANY traffic: every lab address (and the VIP) must be routed via
    the topology's bridge, and every machine must be RUNNING; else exit 3."""
    bridge = topology["network"]["bridge"]
    addresses = [m["address"] for m in topology["machines"].values()] + [topology["network"]["vip"]]
    for address in addresses:
        dev = route_device(address)
        if dev != bridge:
            lab_not_up(f"{address} is routed via {dev!r}, not the lab bridge {bridge}")
    for name in topology["machines"]:
        state = machine_state(name)
        if state != "RUNNING":
            lab_not_up(f"{name} is {state or 'absent'}")


def get_lab(topology):
    """The lab tests' Lab object (run, stop(kill=), start, salt, salt_run)."""
    return _conftest().Lab(topology)


def attach(machine, command, timeout=3600):
    """Run a shell command as root in a lab machine (lxc-attach, like Lab.run)
    without needing pytest; returns the CompletedProcess."""
    return subprocess.run(
        ["lxc-attach", "-n", f"lemp-ha-{machine}", "--clear-env", "--set-var", f"PATH={PATH}",
         "--set-var", "LANG=C.UTF-8", "--", "bash", "-c", command],
        capture_output=True, text=True, timeout=timeout)


def ensure_running(lab, names):
    """Start every machine of `names` that is not RUNNING (for `finally`)."""
    for name in names:
        if lab.state(name) != "RUNNING":
            log(f"restoring: starting {name}")
            lab.start(name)


# -- health ---------------------------------------------------------------------

def wait_web_healthy(lab, timeout=180):
    """One VIP holder, the app answering through the VIP, every web node UP
    on every lb (the same conditions as the web/lb tests)."""
    import web_helpers as wh

    t0 = time.monotonic()
    wh.wait_single_vip_holder(lab, timeout=timeout)
    wh.wait_app_answers(lab, timeout=timeout)
    for web in wh.web_names(lab):
        wh.wait_web_up_on_all_lbs(lab, web, timeout=timeout)
    return time.monotonic() - t0


def db_tier(topology):
    dbs = sorted(lemp_topology.with_role(topology, "db"))
    arbs = sorted(lemp_topology.with_role(topology, "arbitrator")) if len(dbs) % 2 == 0 else []
    return {"dbs": dbs, "arbs": arbs, "web": sorted(lemp_topology.with_role(topology, "web"))[0],
            "master": topology["master"], "size": len(dbs) + len(arbs)}


def wait_db_healthy(lab, tier, timeout=300):
    import galera_helpers as gh

    t0 = time.monotonic()
    for name in tier["dbs"]:
        gh.wait_for(lambda n=name: gh.synced(lab, n, tier["size"]), timeout,
                    f"{name} Synced in a cluster of {tier['size']}", interval=0.5)
    return time.monotonic() - t0


def wait_lab_healthy(lab, topology, timeout=300):
    log("waiting for the lab to be healthy (VIP, app, web nodes UP on every lb, Galera synced)")
    t = wait_web_healthy(lab, timeout) + wait_db_healthy(lab, db_tier(topology), timeout)
    log(f"lab healthy ({t:.1f}s)")


# -- docs/bench.md ----------------------------------------------------------------

def machine_info():
    mem = "?"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", pathlib.Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    cpu = ""
    try:
        m = re.search(r"model name\s*:\s*(.+)", pathlib.Path("/proc/cpuinfo").read_text())
        cpu = m.group(1).strip() if m else ""
    except OSError:
        pass
    return f"nproc {os.cpu_count()}, RAM {mem}" + (f", {cpu}" if cpu else "") + f", kernel {platform.release()}"


def markdown_table(headers, rows):
    def cell(v):
        return fmt(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name, title, headers, rows, notes=(), doc=None):
    """Rewrite the section `name` of docs/bench.md (between
    <!-- bench:NAME --> and <!-- /bench:NAME -->), creating the file or the
    section when missing. Returns the section's text (also printed)."""
    doc = pathlib.Path(doc or DOC)
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    body = [f"### {title}", "", f"Measured {stamp} on {platform.node()} ({machine_info()}).", "",
            markdown_table(headers, rows)]
    notes = [n for n in notes if n]
    if notes:
        body += [""] + [f"- {n}" for n in notes]
    section = "\n".join([begin] + body + [end])
    text = doc.read_text() if doc.exists() else (
        "# Measured figures\n\nWritten by the scripts in [bench/](../bench/README.md); "
        "each section is rewritten by the script that owns it.\n")
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    print("\n" + section + "\n", flush=True)
    log(f"wrote section '{name}' of {doc}")
    return section


# -- command line -------------------------------------------------------------

def parser(description):
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--doc", default=str(DOC), help="markdown file to update (default: %(default)s)")
    p.add_argument("--no-doc", action="store_true", help="print the table only, do not write the file")
    return p


def main_wrapper(fn):
    """Run fn(); turn a failure into a clear message and a non-zero exit."""
    try:
        rc = fn()
    except KeyboardInterrupt:
        print("\ninterrupted (the lab was restored as far as `finally` could)", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - one clear line, then the details
        print(f"\nBENCH FAILED: {type(exc).__name__}: {str(exc)[:3000]}", file=sys.stderr, flush=True)
        sys.exit(1)
    sys.exit(rc or 0)


# -- statistics -----------------------------------------------------------------

def percentile(sorted_values, q):
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    import math

    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


def report(args, name, title, headers, rows, notes=()):
    """Write the section (unless --no-doc), or just print the table."""
    if getattr(args, "no_doc", False):
        print("\n" + markdown_table(headers, rows) + "\n" + "\n".join(f"- {n}" for n in notes if n), flush=True)
        return
    write_section(name, title, headers, rows, notes, doc=args.doc)


# -- timing successes of a web_helpers.LoadLoop -----------------------------------

class SuccessClock:
    """Samples a running web_helpers.LoadLoop (which counts successes but does
    not time them) every `interval` s, and keeps the times at which its `ok`
    count grew. Bounded: stops with the loop or after max_seconds.

        with LoadLoop(lab) as load, SuccessClock(load) as clock:
            ...
        clock.longest_gap(after=t_break)
    """

    def __init__(self, load, interval=0.01, max_seconds=1800):
        import threading

        self.load, self.interval, self.max_seconds = load, interval, max_seconds
        self.times = []  # monotonic times at which ok increased
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        last, t0 = self.load.ok, time.monotonic()
        while not self._stop.is_set() and time.monotonic() - t0 < self.max_seconds:
            now_ok = self.load.ok
            if now_ok != last:
                self.times.append(time.monotonic())
                last = now_ok
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        return False

    def gap_around(self, t):
        """(last success before t, first success after t, seconds between)."""
        before = [x for x in self.times if x <= t]
        after = [x for x in self.times if x > t]
        if not before or not after:
            return None, None, None
        return before[-1], after[0], after[0] - before[-1]

    def longest_gap(self, after=None):
        times = [x for x in self.times if after is None or x >= after - 5]
        gaps = [b - a for a, b in zip(times, times[1:])]
        return max(gaps) if gaps else None

    def first_success_after(self, t):
        return next((x for x in self.times if x > t), None)


# -- orchestrations ---------------------------------------------------------------

def orchestrate(lab, sls, pillar=None, timeout=1800):
    """`salt-run state.orchestrate SLS [pillar=JSON]` on the master through
    Lab.salt_run (which returns (returncode, parsed JSON)); returns
    (ok, detail). Failed steps are found with web_helpers.failed_states."""
    import json

    import web_helpers as wh

    args = ["state.orchestrate", sls] + (["pillar=" + json.dumps(pillar)] if pillar is not None else [])
    rc, data = lab.salt_run(*args, timeout=timeout)
    text = json.dumps(data)
    failures = wh.failed_states(data)
    retcode = data.get("retcode", 0) if isinstance(data, dict) else 0
    if not isinstance(data, dict) or rc != 0 or retcode or failures or "unparsed" in data or "Rendering SLS" in text:
        return False, "\n".join(failures) or f"exit {rc}: {text[:2000]}"
    return True, text
