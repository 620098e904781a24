"""A real third-party PHP application, which nobody here wrote: WordPress from
Debian's archive, deployed through pillar/app.sls alone (the example in
salt/webapp/examples/wordpress/), as docs/your-app.md tells a user to.

The module switches the lab from the sample app to WordPress (a rename: app
-> blog) and back at the end (blog -> app), through orch.site both ways; no
file on any machine is edited by hand. Everything a user would check goes
through the VIP or a web node's own HTTPS, with the lab CA."""

import json
import re
import uuid
import xmlrpc.client

import pytest

from galera_helpers import sql
from lemplab import wait_for
from web_helpers import wait_app_answers
from wordpress_helpers import ADMIN, APP_PILLAR, NAME, add_secrets, install, orch_site, wp_api, write_pillar

CRON_LINE = re.compile(r"lemp-cron: job=(?P<job>\S+) slot=(?P<slot>\S+) (?P<what>ran|skipped)")


@pytest.fixture(scope="module")
def wordpress(lab):
    """The lab serving WordPress as app `blog`; the sample app again after."""
    webs = lab.with_role("web")
    original = APP_PILLAR.read_text()
    password = uuid.uuid4().hex
    add_secrets()
    # wp-cron's timers start firing during this orch.site: the cron test
    # reads the slots from here on (web nodes' clocks, NTP-synced).
    cron_since = int(lab.run(webs[0], "date +%s").stdout)
    try:
        write_pillar(lab)
        orch_site(lab)
        yield {"webs": webs, "password": password, "original": original, "cron_since": cron_since}
    finally:
        # The last test renames back (blog -> app); this only restores the
        # sample app when a failure stopped the module earlier.
        if APP_PILLAR.read_text() != original:
            APP_PILLAR.write_text(original)
            ok, detail = lab.orchestrate("orch.site")
            assert ok, detail
        # A rerun of the module installs WordPress afresh.
        sql(lab, lab.with_role("db")[0], f"DROP DATABASE IF EXISTS {NAME}")


def test_wordpress_installs_over_https_through_the_vip(lab, wordpress):
    done = install(lab, wordpress["password"])
    assert done.status_code == 200 and "Success!" in done.text, done.text[-2000:]


def test_content_created_through_the_vip_is_served(lab, wordpress):
    api = wp_api(lab)
    title = f"Hello from lemp-ha {uuid.uuid4().hex[:8]}"
    post_id = api.wp.newPost(1, ADMIN, wordpress["password"],
                             {"post_title": title, "post_content": "written through the VIP", "post_status": "publish"})
    # Read back through each web node: the content is in the database, not on a node.
    for web in wordpress["webs"]:
        address = lab.machines[web]["address"]
        post = lab.http.get(f"https://{address}/", params={"rest_route": f"/wp/v2/posts/{post_id}"}, timeout=30)
        assert post.status_code == 200 and post.json()["title"]["rendered"] == title


def test_an_upload_is_read_back_through_the_other_web_node(lab, wordpress):
    api = wp_api(lab)
    body = f"uploaded {uuid.uuid4().hex}\n".encode()
    uploaded = api.wp.uploadFile(1, ADMIN, wordpress["password"], {
        "name": f"note-{uuid.uuid4().hex[:8]}.txt", "type": "text/plain", "bits": xmlrpc.client.Binary(body)})
    path = uploaded["url"].split(lab.vip, 1)[1]
    assert path.startswith("/wp-content/uploads/")
    for web in wordpress["webs"]:
        address = lab.machines[web]["address"]
        got = lab.http.get(f"https://{address}{path}", timeout=30)
        assert got.status_code == 200 and got.content == body, (web, got.status_code)


def test_a_php_file_under_a_shared_path_is_never_executed(lab, wordpress):
    # As if an upload had slipped through the app's own checks: the file is
    # on the shared volume, under the app's upload folder.
    web = wordpress["webs"][0]
    name = f"evil-{uuid.uuid4().hex[:8]}.php"
    upload_dir = lab.run(web, f"readlink -f /srv/www/{NAME}/current/wp-content/uploads").stdout.strip()
    lab.run(web, f"printf '<?php echo \"EXECUTED\" . (6*7);' > {upload_dir}/{name}")
    try:
        for target in [lab.vip] + [lab.machines[w]["address"] for w in wordpress["webs"]]:
            got = lab.http.get(f"https://{target}/wp-content/uploads/{name}", timeout=30)
            assert "EXECUTED42" not in got.text
            assert got.status_code == 403, (target, got.status_code)
        # Other files there are served as files, never sniffed into scripts.
        lab.run(web, f"printf 'plain' > {upload_dir}/{name}.txt")
        got = lab.http.get(f"https://{lab.vip}/wp-content/uploads/{name}.txt", timeout=30)
        assert got.status_code == 200 and got.text == "plain"
        assert got.headers.get("X-Content-Type-Options") == "nosniff"
    finally:
        lab.run(web, f"rm -f {upload_dir}/{name} {upload_dir}/{name}.txt", check=False)


def test_the_apps_php_settings_reach_fpm_the_cli_and_nginxs_body_limit(lab, wordpress):
    # pillar app:php (the example): xml for XML-RPC, 32M uploads, 256M memory
    for web in wordpress["webs"]:
        assert lab.run(web, "php -r 'echo ini_get(\"memory_limit\");'").stdout == "256M", web
        assert "xml" in lab.run(web, "php -m").stdout.split(), web
        lab.run(web, f"grep -q 'client_max_body_size 32m;' /etc/nginx/sites-enabled/{NAME}.conf")
    # a body over post_max_size is refused by nginx, before PHP
    big = lab.new_session().post(f"https://{lab.vip}/wp-login.php", data=b"x" * (33 * 1024 * 1024), timeout=60)
    assert big.status_code == 413, big.status_code


def cron_runs(lab, webs, since):
    """{slot: [(node, what)]} of the wp-cron job, from the web nodes' journals."""
    slots = {}
    for web in webs:
        if lab.state(web) != "RUNNING":
            continue
        out = lab.run(web, f"journalctl --since=@{since} -o cat -t lemp-cron", check=False).stdout
        for match in CRON_LINE.finditer(out):
            if match["job"] == "wp-cron":
                slots.setdefault(match["slot"], []).append((web, match["what"]))
    return slots


def ran_once_in(slots, count, expect_nodes):
    done = [s for s in sorted(slots) if len(slots[s]) >= expect_nodes]
    return done if len(done) >= count else None


def test_cron_runs_once_per_schedule_also_with_a_web_node_stopped(lab, wordpress):
    webs = wordpress["webs"]
    # Every node's timer fires; exactly one runs the job per slot. The
    # schedule fires every minute: one whole slot takes up to two minutes
    # (the first may have begun before `since`), and one slot per phase is
    # the proof (the lock is per slot, so more slots only repeat it). The
    # slots since the module's orch.site count (its web tier set the timers
    # up a minute or more ago, and the job's command does not matter to the
    # lock), so this first one is usually there already.
    since = wordpress["cron_since"]
    done = wait_for(lambda: ran_once_in(cron_runs(lab, webs, since), 1, len(webs)), 150,
                    "a wp-cron slot seen by every web node")
    slots = cron_runs(lab, webs, since)
    for slot in done:
        ran = [w for w, what in slots[slot] if what == "ran"]
        assert len(ran) == 1, (slot, slots[slot])
    # the node that ran the slot is stopped: the job must move to the other
    stopped = next(w for w, what in slots[done[0]] if what == "ran")
    survivor = next(w for w in webs if w != stopped)
    lab.stop(stopped)
    try:
        since = int(lab.run(survivor, "date +%s").stdout) + 1
        wait_for(lambda: ran_once_in({s: [r for r in v if r[1] == "ran"]
                                      for s, v in cron_runs(lab, [survivor], since).items()}, 1, 1), 150,
                 f"a wp-cron slot run on {survivor} while {stopped} is stopped")
    finally:
        lab.ensure_running([stopped])
    for slot, runs in cron_runs(lab, webs, since).items():
        assert len([r for r in runs if r[1] == "ran"]) <= 1, (slot, runs)


def test_the_renamed_app_left_no_stale_vhost(lab, wordpress):
    for web in wordpress["webs"]:
        enabled = lab.run(web, "ls /etc/nginx/sites-enabled").stdout.split()
        assert enabled == [f"{NAME}.conf"], (web, enabled)


@pytest.mark.parametrize("override, error", [
    ({"php": {"extensions": ["nosuchext"]}}, "nosuchext"),
    ({"shared_paths": ["../escape"]}, "shared_paths"),
    ({"secrets": ["no_such_secret"]}, "no_such_secret"),
    ({"cron": [{"name": "bad", "schedule": "every blue moon", "command": "true"}]}, "every blue moon"),
])
def test_bad_app_settings_are_refused_and_change_nothing(lab, wordpress, override, error):
    web = wordpress["webs"][0]
    before = lab.run(web, "ls -l --time-style=+%s /etc/nginx/sites-enabled /etc/systemd/system | sha256sum").stdout
    result = lab.salt(web, "state.apply", "webapp,nginx", "pillar=" + json.dumps({"app": override}))
    text = json.dumps(result)
    assert error in text, text[:2000]
    states = result.get(web)
    assert not isinstance(states, dict) or not any(
        isinstance(s, dict) and s.get("changes") for s in states.values()), text[:2000]
    assert lab.run(web, "ls -l --time-style=+%s /etc/nginx/sites-enabled /etc/systemd/system | sha256sum").stdout == before


def test_renaming_back_to_the_sample_app_converges_with_no_stale_vhost(lab, wordpress):
    APP_PILLAR.write_text(wordpress["original"])
    orch_site(lab)
    wait_app_answers(lab)
    for web in wordpress["webs"]:
        enabled = lab.run(web, "ls /etc/nginx/sites-enabled").stdout.split()
        assert enabled == ["app.conf"], (web, enabled)
    # Converged: nothing left to change where the rename acts, the web
    # nodes and the load balancers. A highstate in test mode there, not a
    # second orch.site (about a minute more on the lab): test_foundation
    # proves that orch.site itself changes nothing once converged.
    targets = webs_and_lbs(lab)
    predicted = lab.salt("--timeout=600", "-L", ",".join(targets), "state.highstate", "test=True", timeout=900)
    for name in targets:
        states = predicted.get(name)
        assert isinstance(states, dict), f"{name}: the highstate did not render: {states}"
        pending = {key: (st.get("comment"), st.get("changes")) for key, st in states.items()
                   if isinstance(st, dict) and (st.get("result") is not True or st.get("changes"))}
        assert not pending, (name, pending)


def webs_and_lbs(lab):
    return lab.with_role("web") + lab.with_role("lb")
