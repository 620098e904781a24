#!/usr/bin/env python3
"""HTTPS throughput and latency through the VIP (HAProxy, every web node)
versus one web node hit directly (its own nginx on :443, same path), in the
same run, at a fixed concurrency and for a fixed duration each.

Client: `requests` in a thread pool (one keep-alive session per thread,
verifying the lab CA) by default; `--tool ab` uses ApacheBench when installed
(apache2-utils; ab does not verify certificates). Reports requests/s,
p50/p99 latency, errors, and the HA overhead: how much lower the VIP's
requests/s is than the single node's (negative: the VIP is faster, since it
spreads the load over every web node).

Writes the section `http_throughput` of docs/bench.md. Needs root and the lab
up (exits 3 otherwise). Never asserts a figure.
"""

import re
import shutil
import subprocess
import threading
import time

import common  # first: it puts the lab driver and the lab tests' helpers on sys.path
from common import log


def run_requests(url, lab, concurrency, duration, timeout, max_requests):
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
            "p50_ms": (common.percentile(lat, 50) or 0) * 1000 if lat else None,
            "p99_ms": (common.percentile(lat, 99) or 0) * 1000 if lat else None,
            "error_kinds": sorted(set(errors))[:5]}


def parse_ab(text):
    """Figures from ApacheBench's report."""
    def num(pattern):
        m = re.search(pattern, text, re.M)
        return float(m.group(1)) if m else None

    complete = num(r"^Complete requests:\s+(\d+)")
    failed = num(r"^Failed requests:\s+(\d+)") or 0
    non2xx = num(r"^Non-2xx responses:\s+(\d+)") or 0
    return {"requests": int(complete - failed - non2xx) if complete is not None else 0,
            "errors": int(failed + non2xx), "elapsed": num(r"^Time taken for tests:\s+([\d.]+)"),
            "rps": num(r"^Requests per second:\s+([\d.]+)"),
            "p50_ms": num(r"^\s+50%\s+(\d+)"), "p99_ms": num(r"^\s+99%\s+(\d+)"), "error_kinds": []}


def run_ab(url, concurrency, duration, timeout):
    cmd = ["ab", "-q", "-k", "-c", str(concurrency), "-t", str(duration), "-n", "10000000",
           "-s", str(max(1, int(timeout))), url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    if proc.returncode != 0 and "Complete requests" not in proc.stdout:
        raise common.BenchError(f"ab failed ({proc.returncode}): {proc.stderr[-1000:]}")
    return parse_ab(proc.stdout)


def main():
    p = common.parser(__doc__)
    p.add_argument("--concurrency", type=int, default=8, help="client threads (default: %(default)s)")
    p.add_argument("--duration", type=int, default=20, help="seconds per target (default: %(default)s)")
    p.add_argument("--max-requests", type=int, default=200000, help="cap on requests per target (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=5.0, help="per-request timeout in s (default: %(default)s)")
    p.add_argument("--path", default="/api/info", help="path requested (default: %(default)s)")
    p.add_argument("--node", help="web node hit directly (default: the first web node)")
    p.add_argument("--tool", choices=("requests", "ab"), default="requests",
                   help="load generator (default: %(default)s; ab needs apache2-utils)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured warm-up per target (default: %(default)s)")
    args = p.parse_args()
    if args.tool == "ab" and not shutil.which("ab"):
        p.error("--tool ab: `ab` is not installed (apt-get install apache2-utils)")

    lab = common.open_lab(common.web_node_check(p, args, "node", 0))
    webs, node = lab.with_role("web"), args.node
    common.wait_web_healthy(lab)
    targets = [(f"VIP {lab.vip} (HAProxy, {len(webs)} web nodes)", f"https://{lab.vip}{args.path}"),
               (f"{node} direct ({lab.machines[node]['address']}:443)",
                f"https://{lab.machines[node]['address']}{args.path}")]
    results = []
    for label, url in targets:
        if args.warmup:
            log(f"warm-up {args.warmup}s: {url}")
            run_requests(url, lab, args.concurrency, args.warmup, args.timeout, args.max_requests)
        log(f"measuring {url}: {args.concurrency} clients, {args.duration}s, {args.tool}")
        if args.tool == "ab":
            r = run_ab(url, args.concurrency, args.duration, args.timeout)
        else:
            r = run_requests(url, lab, args.concurrency, args.duration, args.timeout, args.max_requests)
        log(f"  {common.fmt(r['rps'], 1)} req/s, p50 {common.fmt(r['p50_ms'], 1)} ms, "
            f"p99 {common.fmt(r['p99_ms'], 1)} ms, {r['errors']} errors {r['error_kinds']}")
        results.append((label, r))
    vip, direct = results[0][1], results[1][1]
    overhead = None
    if vip["rps"] and direct["rps"]:
        overhead = (direct["rps"] - vip["rps"]) / direct["rps"] * 100
    p50_delta = (vip["p50_ms"] - direct["p50_ms"]) if vip["p50_ms"] is not None and direct["p50_ms"] is not None else None
    headers = ["target", "requests ok", "errors", "requests/s", "p50 (ms)", "p99 (ms)"]
    rows = [[label, r["requests"], r["errors"], common.fmt(r["rps"], 1), common.fmt(r["p50_ms"], 1),
             common.fmt(r["p99_ms"], 1)] for label, r in results]
    notes = [f"Path {args.path}, {args.concurrency} concurrent clients, {args.duration}s per target after a "
             f"{args.warmup}s warm-up, tool: {args.tool}" + (" (requests, one keep-alive session per thread)"
                                                             if args.tool == "requests" else ""),
             f"HA overhead (requests/s lost through the VIP vs {node} direct): "
             f"{common.fmt(overhead, 1)}%; p50 latency difference: {common.fmt(p50_delta, 1)} ms. "
             "Negative overhead: the VIP spreads the load over every web node, so it is not a pure "
             "proxy-cost figure; the client runs on the lab host and shares its CPUs."]
    common.report(args, "http_throughput", "HTTPS throughput: VIP vs one web node", headers, rows, notes)
    return 0


if __name__ == "__main__":
    common.main_wrapper(main)
