"""Convergence after a failed run (issue #9, item 4), on the lab.

A run writes a new nginx site, then fails (`nginx -t` broken by a stray file
Salt does not manage). Once the stray file is gone, the next run must make
nginx run the new site, although that run writes nothing: the file landed in
the failed run, so no `watch` fires (lemp_service.config_loaded does the
reload, _modules/lemp_service.py). A third run changes nothing.

What the user sees: the site's client_max_body_size, set through the pillar
to 1k for the test, answers an upload of 4 KiB with 413 only once nginx runs
the new site. The upload goes to web1 itself (curl on web1), not through the
VIP, which would also reach web2.

Needs the web tier applied. Leaves web1 as it found it: the stray file is
removed and a highstate with the lab's own pillar puts the site back, in
`finally`.
"""

import json

from lemplab import wait_for
from web_helpers import salt_ret, web_names

STRAY = "/etc/nginx/conf.d/zz-broken.conf"
SMALL_UPLOADS = {"nginx": {"lookup": {"client_max_body_size": "1k"}}}
SITE = "nginx-app-site-file-managed"
CONVERGE = "nginx-runs-its-current-configuration"


def highstate(lab, machine, pillar=None):
    """A highstate of `machine`: [(state ID, its result)], in the minion's answer."""
    args = [machine, "state.apply"] + ([f"pillar={json.dumps(pillar)}"] if pillar else [])
    ret = salt_ret(lab.salt(*args, timeout=900), machine)
    assert isinstance(ret, dict), f"{machine}: the highstate did not run: {ret}"
    return [(key.split("_|-")[1], st) for key, st in ret.items()]


def failed(run):
    return sorted({sid for sid, st in run if st.get("result") is False})


def changed(run):
    return sorted({sid for sid, st in run if st.get("changes")})


def of(run, state_id):
    return next(st for sid, st in run if sid == state_id)


def upload_status(lab, machine, size=4096):
    """The HTTP status a user uploading `size` bytes to the app on `machine`
    gets (curl on the machine itself, its own certificate: -k)."""
    proc = lab.run(machine, f"head -c {size} /dev/zero | curl -sk -o /dev/null -w '%{{http_code}}' --max-time 10 "
                            "--data-binary @- https://127.0.0.1/", check=False)
    return proc.stdout.strip()


def test_a_site_written_by_a_failed_run_is_served_after_the_next_run(lab):
    web = web_names(lab)[0]
    lab.salt(web, "saltutil.sync_all")
    assert upload_status(lab, web) not in ("413", "000"), "precondition: web1 takes a 4 KiB upload"
    try:
        lab.run(web, f"echo 'this is not nginx;' > {STRAY}")
        first = highstate(lab, web, SMALL_UPLOADS)
        assert SITE in changed(first), changed(first)
        assert failed(first) == [CONVERGE], failed(first)
        assert "zz-broken.conf" in of(first, CONVERGE)["comment"], of(first, CONVERGE)
        # nginx kept its previous configuration: the upload still goes through
        assert upload_status(lab, web) != "413"

        lab.run(web, f"rm -f {STRAY}")
        second = highstate(lab, web, SMALL_UPLOADS)
        assert failed(second) == [], failed(second)
        assert SITE not in changed(second), "the site was written by the failed run, not this one"
        assert "reload" in of(second, CONVERGE)["changes"], of(second, CONVERGE)
        wait_for(lambda: upload_status(lab, web) == "413", 15, f"{web} to refuse a 4 KiB upload (413)", interval=0.5)

        third = highstate(lab, web, SMALL_UPLOADS)
        assert failed(third) == [] and changed(third) == [], (failed(third), changed(third))
    finally:
        lab.run(web, f"rm -f {STRAY}", check=False)
        restored = highstate(lab, web)
        assert failed(restored) == [], f"{web} not restored: {failed(restored)}"
        wait_for(lambda: upload_status(lab, web) not in ("413", "000", ""), 15,
                 f"{web} to take a 4 KiB upload again", interval=0.5)
