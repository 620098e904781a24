"""Per-app settings on the lab (issue #9): a release whose pillar names
linked folders and PHP settings gets them on every web node, and nginx never
runs PHP from a folder PHP writes.

Needs the lab up with orch.site applied. Deploys a throw-away version with
extra settings, checks what a user sees through the VIP, and deploys the
version that was current again (the pillar's settings) in `finally`.
"""

import time
import uuid

import pytest

from web_helpers import base_url, wait_app_answers, wait_web_up_on_all_lbs, web_names

APP_DIR = "/srv/www/app"
SHARED = "/srv/www-uploads/app/public/media"
LOCAL = "/var/lib/lemp-ha-apps/app/var/cache"


def current_version(lab, web):
    return lab.run(web, f"readlink {APP_DIR}/current").stdout.strip().split("/", 1)[1]


@pytest.fixture(scope="module")
def deployed_with_settings(lab):
    webs = web_names(lab)
    original = current_version(lab, webs[0])
    version = f"7.{int(time.time())}"
    pillar = {"app": {
        "version": version,
        "shared_paths": ["public/media"],
        "writable_paths": ["var/cache"],
        "php": {"ini": {"memory_limit": "200M", "upload_max_filesize": "16M", "post_max_size": "24M"}},
    }}
    ok, detail = lab.orchestrate("orch.deploy", pillar)
    try:
        assert ok, detail
        yield version
    finally:
        lab.run(webs[0], f"rm -f {SHARED}/probe-*", check=False)
        back, detail = lab.orchestrate("orch.deploy", {"app": {"version": original}})
        assert back, detail
        for web in webs:
            wait_web_up_on_all_lbs(lab, web)
        wait_app_answers(lab)


def test_a_php_file_in_a_shared_folder_is_refused_and_other_files_are_served_as_files(lab, deployed_with_settings):
    version = deployed_with_settings
    webs = web_names(lab)
    for web in webs:
        lab.run(web, f"test -L {APP_DIR}/releases/{version}/public/media")
        lab.run(web, f"test \"$(stat -c %U {LOCAL})\" = www-data")
    name = f"probe-{uuid.uuid4().hex}"
    # written as PHP would (the pool user), on one node; every node serves it
    lab.run(webs[0], f"runuser -u www-data -- sh -c \"printf '<?php echo 6*7;' > {SHARED}/{name}.php; "
                     f"echo hello > {SHARED}/{name}.txt\"")
    session = lab.new_session()
    for _ in range(2 * len(webs)):  # round-robin: each node answers at least once
        text = session.get(f"{base_url(lab)}/media/{name}.txt", timeout=5)
        assert text.status_code == 200 and text.text == "hello\n", text
        assert text.headers.get("X-Content-Type-Options") == "nosniff"
        script = session.get(f"{base_url(lab)}/media/{name}.php", timeout=5)
        assert script.status_code == 403, (script.status_code, script.text[:200])
        assert "42" not in script.text


def test_the_apps_php_settings_reach_fpm_the_cli_and_nginxs_body_limit(lab, deployed_with_settings):
    for web in web_names(lab):
        cli = lab.run(web, "php -r 'echo ini_get(\"memory_limit\");'").stdout
        assert cli == "200M", (web, cli)
        lab.run(web, "grep -qx 'memory_limit = 200M' /etc/php/8.2/fpm/conf.d/95-lemp-ha-app.ini")
        lab.run(web, "grep -q 'client_max_body_size 24m;' /etc/nginx/sites-enabled/app.conf")
    # a body over post_max_size is refused by nginx, before PHP
    big = lab.new_session().post(f"{base_url(lab)}/", data=b"x" * (25 * 1024 * 1024), timeout=30)
    assert big.status_code == 413, big.status_code
