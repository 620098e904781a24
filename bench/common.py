"""Shared by the bench scripts: the lab (the driver tools/lab/lemplab.py),
health waits, the options and notes the scripts share, and the writer of
docs/bench.md.

The scripts MEASURE and report; they never assert a figure. Everything that
talks to the lab goes either through lxc-attach (no network) or, for HTTP,
only after `open_lab()` has checked that every lab address is routed over
the lab bridge (while the lab is down those addresses are routed out of this
machine, and no traffic may go there).
"""

import argparse
import contextlib
import datetime
import os
import pathlib
import platform
import re
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "bench.md"

# the lab driver, the topology validator, and the lab tests' helpers
# (web_helpers and galera_helpers; requests is imported only when a session is made)
for _p in (REPO / "tests" / "lab", REPO / "_modules", REPO / "tools" / "lab"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import lemplab  # noqa: E402  (after the path set-up above)
from lemplab import wait_for  # noqa: E402,F401  (the one polling helper, for the scripts)
import galera_helpers as gh  # noqa: E402
import web_helpers as wh  # noqa: E402


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


# -- the lab ------------------------------------------------------------------

def require_root():
    if os.geteuid() != 0:
        print("ERROR: the bench scripts must run as root (lxc-attach, lxc-stop)", file=sys.stderr)
        sys.exit(2)


def open_lab(check=None):
    """The lab, once it is safe to talk to: as root, `check(lab)` passed (a
    usage check that may call parser.error), and before ANY traffic every lab
    address (and the VIP) routed via the topology's bridge and every machine
    RUNNING; else exit 3."""
    require_root()
    lab = lemplab.Lab()
    if check:
        check(lab)
    try:
        lab.require_up()
    except lemplab.LabNotUp as exc:
        print(exc, file=sys.stderr, flush=True)
        sys.exit(3)
    return lab


def restoring(lab, names):
    """For `finally`: start every machine of `names` that is not RUNNING."""
    lab.ensure_running(names, log=log)


@contextlib.contextmanager
def autoscaling_paused(lab, why):
    """Autoscaling paused on the master meanwhile (salt-run lemp_scale.pause):
    the light bench load is below the low threshold, and Zabbix would scale
    in the node a bench booted by hand."""
    code, data = lab.salt_run("lemp_scale.pause", f"reason=bench: {why}", "minutes=120")
    if code != 0:
        raise BenchError(f"salt-run lemp_scale.pause failed: {data}")
    try:
        yield
    finally:
        lab.salt_run("lemp_scale.resume")


# -- health ---------------------------------------------------------------------

def wait_web_healthy(lab, timeout=180):
    """One VIP holder, the app answering through the VIP, every web node UP
    on every lb (the same conditions as the web/lb tests)."""
    t0 = time.monotonic()
    wh.wait_single_vip_holder(lab, timeout=timeout)
    wh.wait_app_answers(lab, timeout=timeout)
    for web in wh.web_names(lab):
        wh.wait_web_up_on_all_lbs(lab, web, timeout=timeout)
    return time.monotonic() - t0


def wait_db_healthy(lab, tier, timeout=300):
    t0 = time.monotonic()
    gh.wait_cluster_healthy(lab, tier, timeout)
    return time.monotonic() - t0


def wait_lab_healthy(lab, timeout=300):
    log("waiting for the lab to be healthy (VIP, app, web nodes UP on every lb, Galera synced)")
    t = wait_web_healthy(lab, timeout) + wait_db_healthy(lab, gh.tier_of(lab.topology), timeout)
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


def scenarios(p, args, known):
    """The --scenarios comma list, each one of `known` (else a usage error)."""
    kinds = [k.strip() for k in args.scenarios.split(",") if k.strip()]
    bad = [k for k in kinds if k not in known]
    if bad:
        p.error(f"unknown scenario(s): {', '.join(bad)}")
    return kinds


def load_options(p, duration, max_requests, timeout, per="run"):
    """The options of a client loop through the VIP (web_helpers.LoadLoop)."""
    p.add_argument("--duration", type=int, default=duration,
                   help=f"max seconds of load per {per} (default: %(default)s)")
    p.add_argument("--max-requests", type=int, default=max_requests,
                   help=f"max requests per {per} (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=timeout, help="per-request timeout in s (default: %(default)s)")
    p.add_argument("--pause", type=float, default=0.02, help="pause between requests in s (default: %(default)s)")
    p.add_argument("--path", default="/api/info", help="path requested through the VIP (default: %(default)s)")


def load_notes(lab, args, rows, *notes, bounds=""):
    """The notes of a table measured under a client loop: the loop (and its
    `bounds`), `notes`, then examples of each row's failed requests."""
    loop = (f"One client loop through https://{lab.vip}{args.path}, request timeout {args.timeout}s, "
            f"pause {args.pause}s{bounds}.")
    examples = [f"{r['scenario']} failures, e.g.: {r['examples'][:300]}" for r in rows if r.get("examples")]
    return [loop, *notes, *examples]


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


# -- statistics and a throughput client ----------------------------------------

def percentile(sorted_values, q):
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    import math

    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


def run_requests(url, lab, concurrency, duration, timeout, max_requests):
    """`concurrency` threads, each with one keep-alive session (verifying the
    lab CA), GET `url` for `duration` s (at most `max_requests` in all):
    requests (ok), errors, elapsed, rps, p50_ms, p99_ms, error_kinds."""
    import threading

    lat, errors, lock = [], [], threading.Lock()
    per_thread = max(1, max_requests // concurrency)
    deadline = time.monotonic() + duration

    def worker():
        session = lab.new_session()
        mine, errs = [], []
        for _ in range(per_thread):
            if time.monotonic() >= deadline:
                break
            t = time.perf_counter()
            try:
                resp = session.get(url, timeout=timeout)
                if resp.status_code == 200:
                    mine.append(time.perf_counter() - t)
                else:
                    errs.append(f"HTTP {resp.status_code}")
            except Exception as exc:  # noqa: BLE001 - counted, the run goes on
                errs.append(type(exc).__name__)
                session = lab.new_session()
        with lock:
            lat.extend(mine)
            errors.extend(errs)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + timeout + 30)
    elapsed = time.monotonic() - t0
    lat.sort()
    return {"requests": len(lat), "errors": len(errors), "elapsed": elapsed,
            "rps": len(lat) / elapsed if elapsed else None,
            "p50_ms": (percentile(lat, 50) or 0) * 1000 if lat else None,
            "p99_ms": (percentile(lat, 99) or 0) * 1000 if lat else None,
            "error_kinds": sorted(set(errors))[:5]}


def report(args, name, title, headers, rows, notes=()):
    """Write the section (unless --no-doc), or just print the table."""
    if getattr(args, "no_doc", False):
        print("\n" + markdown_table(headers, rows) + "\n" + "\n".join(f"- {n}" for n in notes if n), flush=True)
        return
    write_section(name, title, headers, rows, notes, doc=args.doc)


# -- timing successes of a web_helpers.LoadLoop -----------------------------------

@contextlib.contextmanager
def measured_load(lab, args, max_requests=None, max_seconds=None):
    """A web_helpers.LoadLoop through the VIP (as the load options say) and
    the SuccessClock timing it: `with measured_load(lab, args) as (load, clock)`."""
    wh.REQUEST_TIMEOUT = args.timeout  # LoadLoop reads it at every request
    with wh.LoadLoop(lab, path=args.path, max_requests=max_requests or args.max_requests,
                     max_seconds=max_seconds or args.duration, pause=args.pause) as load, SuccessClock(load) as clock:
        yield load, clock


def load_figures(load, clock, after=None):
    """What a finished LoadLoop measured: ok, failed, the longest gap between
    successes (from `after` on), and two failure reasons as examples."""
    return {"ok": load.ok, "failed": len(load.failures), "gap": clock.longest_gap(after=after),
            "examples": "; ".join(reason for _, reason in load.failures[:2])}


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

    def longest_gap(self, after=None):
        times = [x for x in self.times if after is None or x >= after - 5]
        gaps = [b - a for a, b in zip(times, times[1:])]
        return max(gaps) if gaps else None

    def first_success_after(self, t):
        return next((x for x in self.times if x > t), None)


def ensure_package(lab, machine, command, package):
    """Debian `package` on `machine` when `command` is missing there: apt
    through the lab's apt proxy; it stays installed. Returns True when this
    run installed it."""
    if lab.run(machine, f"command -v {command}", check=False).returncode == 0:
        log(f"{command} already installed on {machine}")
        return False
    log(f"installing {command} on {machine} with apt (Debian package `{package}`, through the lab's apt proxy); "
        "it stays installed")
    lab.run(machine, f"apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {package}",
            timeout=900)
    return True
