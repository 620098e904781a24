"""Issue #13, finding 8: the PHP-FPM pool of a web node, as Salt renders it
with the lab pillar, disables the process/exec family and confines the
requests to the app's and the platform's files (php_admin_value); the app's
exceptions come from pillar app:php, and a bad one stops the render naming
its key. Rendered on the render master of tests/render/conftest.py."""

import json

from test_render import _args, render_errors
from test_render_internal_endpoints import member, render_file, show

POOL = "phpfpm-app-pool-file-managed"


def admin_values(text):
    return dict(line.split(" = ", 1) for line in text.splitlines() if line.startswith("php_admin_value["))


def test_the_web_pool_disables_exec_and_confines_files(salt_cli, topology, representatives):
    web = member(topology, representatives, "web")
    states = show(salt_cli, "phpfpm.config", web)
    values = admin_values(render_file(states, POOL, "phpfpm/files/pool.conf.j2")[0])
    assert {"exec", "shell_exec", "system", "passthru", "proc_open", "popen"} <= set(
        values["php_admin_value[disable_functions]"].split(","))
    paths = values["php_admin_value[open_basedir]"].split(":")
    assert paths[0].startswith("/srv/www/") and "/etc/lemp-ha/healthz.json" in paths
    assert not {"/", "/tmp", "/etc"} & set(paths)
    tmp = _args(states["phpfpm-app-temp-directory-present"], "directory")
    assert values["php_admin_value[upload_tmp_dir]"] == tmp["name"] and tmp["mode"] == "0700"
    assert tmp["name"] in paths


def test_the_apps_exceptions_reach_the_pool(salt_cli, topology, representatives):
    web = member(topology, representatives, "web")
    pillar = {"app": {"php": {"enable_functions": ["proc_open"], "open_basedir": ["/usr/share/php"]}}}
    states = show(salt_cli, "phpfpm.config", web, pillar)
    values = admin_values(render_file(states, POOL, "phpfpm/files/pool.conf.j2")[0])
    assert "proc_open" not in values["php_admin_value[disable_functions]"].split(",")
    assert values["php_admin_value[open_basedir]"].endswith(":/usr/share/php")


def test_a_relative_open_basedir_path_stops_the_render_naming_the_key(salt_cli, topology, representatives):
    web = member(topology, representatives, "web")
    pillar = {"app": {"php": {"open_basedir": ["usr/share/php"], "enable_functions": []}}}
    errors = render_errors(salt_cli.run("state.show_sls", "phpfpm.config", f"pillar={json.dumps(pillar)}",
                                        minion_tgt=web))
    assert "app:php:open_basedir" in str(errors) and "usr/share/php" in str(errors), errors
