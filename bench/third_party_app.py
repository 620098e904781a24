#!/usr/bin/env python3
"""A third-party app (WordPress from Debian's archive) on the platform: the
time to rename the lab's app to it and deploy it with orch.site (package
install, release, vhost, pool, cron), a rolling orch.deploy of a second
release, and its requests/s through the VIP against one web node directly,
on a page that reads the database (the REST API's post list).

The lab is put back as it was: the sample app (orch.site), the blog's
database dropped. Writes the section `third_party_app` of docs/bench.md.
Needs root and the lab up (exits 3 otherwise). Never asserts a figure.
"""

import time
import uuid

import common  # first: it puts the lab driver and the lab tests' helpers on sys.path
import wordpress_helpers as wp
from common import log
from galera_helpers import sql
from common import run_requests


def timed(what, fn):
    log(f"{what} ...")
    t0 = time.monotonic()
    result = fn()
    seconds = time.monotonic() - t0
    log(f"{what}: {seconds:.1f}s")
    return seconds, result


def main():
    p = common.parser(__doc__)
    p.add_argument("--concurrency", type=int, default=8, help="client threads (default: %(default)s)")
    p.add_argument("--duration", type=int, default=20, help="seconds per target (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in s (default: %(default)s)")
    args = p.parse_args()

    lab = common.open_lab()
    common.wait_web_healthy(lab)
    webs = lab.with_role("web")
    original = wp.APP_PILLAR.read_text()
    rows, notes = [], []
    try:
        wp.add_secrets()
        version = wp.write_pillar(lab)
        seconds, _ = timed("rename app -> blog (WordPress) with orch.site", lambda: wp.orch_site(lab))
        rows.append(["rename the app to WordPress: `orch.site` (first install of the package, "
                     "release, vhost, pool, cron)", f"{seconds:.1f} s", ""])
        password = uuid.uuid4().hex
        seconds, done = timed("WordPress installer over HTTPS", lambda: wp.install(lab, password))
        if "Success!" not in done.text:
            raise common.BenchError(f"the WordPress installer failed: HTTP {done.status_code}")
        rows.append(["WordPress's own installer through the VIP", f"{seconds:.1f} s", ""])
        api = wp.wp_api(lab)
        for i in range(20):
            api.wp.newPost(1, wp.ADMIN, password, {"post_title": f"bench {i}", "post_content": "x" * 2000,
                                                     "post_status": "publish"})
        release = f"{version.split('+')[0]}-r2"
        seconds, (ok, detail) = timed(f"orch.deploy of release {release}",
                                      lambda: lab.orchestrate("orch.deploy", {"app": {"version": release}}))
        if not ok:
            raise common.BenchError(f"orch.deploy failed: {detail[:1500]}")
        rows.append([f"rolling `orch.deploy` of a second release ({release}), {len(webs)} web nodes",
                     f"{seconds:.1f} s", ""])
        path = "/?rest_route=/wp/v2/posts"
        node = webs[0]
        for label, url in [(f"VIP {lab.vip} ({len(webs)} web nodes)", f"https://{lab.vip}{path}"),
                           (f"{node} direct", f"https://{lab.machines[node]['address']}{path}")]:
            run_requests(url, lab, args.concurrency, 2, args.timeout, 100000)  # warm-up
            r = run_requests(url, lab, args.concurrency, args.duration, args.timeout, 100000)
            log(f"{label}: {common.fmt(r['rps'], 1)} req/s, p50 {common.fmt(r['p50_ms'], 1)} ms, {r['errors']} errors")
            rows.append([f"requests/s on `{path}` (20 posts), {label}", common.fmt(r["rps"], 1),
                         f"p50 {common.fmt(r['p50_ms'], 1)} ms, p99 {common.fmt(r['p99_ms'], 1)} ms, "
                         f"{r['errors']} errors"])
        notes.append(f"WordPress {version} from Debian's archive, deployed by pillar/app.sls alone "
                     "(salt/webapp/examples/wordpress/). Clients: requests, one keep-alive session per thread, "
                     f"{args.concurrency} threads, {args.duration}s per target, on the lab host (shares its CPUs).")
        notes.append("The rename figure is with the wordpress package already in the nodes' apt cache and "
                     "installed by an earlier run (the lab tests); a first install adds the package download "
                     "through the apt proxy. Both targets are CPU-bound on this 2-core host, which runs every "
                     "machine and the client: a second web node adds no CPU here, so the VIP cannot beat one "
                     "node; the gap is HAProxy's TLS re-encryption on the same cores.")
    finally:
        wp.APP_PILLAR.write_text(original)
        log("putting the sample app back (orch.site)")
        ok, detail = lab.orchestrate("orch.site")
        sql(lab, lab.with_role("db")[0], f"DROP DATABASE IF EXISTS {wp.NAME}")
        if not ok:
            raise common.BenchError(f"restoring the sample app failed: {detail[:1500]}")
    common.report(args, "third_party_app", "A third-party app: WordPress from Debian",
                  ["what", "figure", "detail"], rows, notes)
    return 0


if __name__ == "__main__":
    common.main_wrapper(main)
