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


def test_healthz_has_its_own_small_pool_and_nginx_sends_it_there(salt_cli, topology, representatives):
    """/healthz and /healthz/deep run in the `health` pool (salt/phpfpm
    health_pool): a load that keeps every app worker busy must not make
    HAProxy's 1 s check wait on every web node at once."""
    web = member(topology, representatives, "web")
    states = show(salt_cli, "nginx", web)  # includes phpfpm.service, hence phpfpm.config
    text, context = render_file(states, "phpfpm-health-pool-file-managed", "phpfpm/files/health-pool.conf.j2")
    settings = dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line and not line.startswith(";"))
    assert settings["pm"] == "static" and settings["listen"] == "/run/php/php8.2-fpm-health.sock"
    assert (settings["user"], settings["group"]) == ("www-data", "www-data")
    paths = settings["php_admin_value[open_basedir]"].split(":")
    assert "/etc/lemp-ha/healthz.json" in paths and any(p.endswith("/releases") for p in paths)
    assert {"exec", "fsockopen", "file_put_contents"} <= set(settings["php_admin_value[disable_functions]"].split(","))
    assert _args(states["phpfpm-health-pool-file-managed"], "managed")["name"] == "/etc/php/8.2/fpm/pool.d/health.conf"
    running = _args(states["phpfpm-service-running"], "running")
    assert {"file": "phpfpm-health-pool-file-managed"} in running["require"]
    site = _args(states["nginx-app-site-file-managed"], "managed")
    assert site["context"]["health_socket"] == "/run/php/php8.2-fpm-health.sock"
    assert site["context"]["fpm_socket"] == "/run/php/php8.2-fpm-app.sock"
    # nginx names the socket only once PHP-FPM runs the pool (php-fpm -t, then reload)
    assert {"lemp_service": "phpfpm-runs-its-current-configuration"} in site["require"]


def test_a_health_pool_named_like_the_app_pool_stops_the_render_naming_the_key(salt_cli, topology, representatives):
    web = member(topology, representatives, "web")
    pillar = {"phpfpm": {"lookup": {"health_pool": {"name": "app"}}}}
    errors = render_errors(salt_cli.run("state.show_sls", "phpfpm.config", f"pillar={json.dumps(pillar)}",
                                        minion_tgt=web))
    assert "phpfpm:lookup:health_pool:name" in str(errors), errors


def test_the_web_pool_prepends_the_session_handler_it_may_open(salt_cli, topology, representatives):
    """Issue #14: strict mode without a new session id when Redis does not
    answer (salt/phpfpm/files/session-handler.php). The handler is the FPM
    sessions settings' auto_prepend_file, installed before them, and inside
    the app pool's open_basedir (the health pool prepends nothing)."""
    web = member(topology, representatives, "web")
    states = show(salt_cli, "phpfpm.config", web)
    handler = _args(states["phpfpm-session-handler-file-managed"], "managed")
    assert handler["source"] == "salt://phpfpm/files/session-handler.php" and handler["mode"] == "0644"
    ini = _args(states["phpfpm-session-settings-file-managed"], "managed")
    lines = ini["contents"].splitlines()
    assert f"auto_prepend_file={handler['name']}" in lines and "session.use_strict_mode=1" in lines
    assert ini["name"].startswith("/etc/php/8.2/fpm/")  # the pool's, not the CLI's
    assert {"file": "phpfpm-session-handler-file-managed"} in ini["require"]
    values = admin_values(render_file(states, POOL, "phpfpm/files/pool.conf.j2")[0])
    assert handler["name"] in values["php_admin_value[open_basedir]"].split(":")
