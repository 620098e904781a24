"""/healthz runs in PHP-FPM's own small pool (salt/phpfpm health_pool):
HAProxy's 1 s check must not wait for a worker of the app pool, which a load
can keep busy on every web node at once (HAProxy then answered 503 "No
server is available"). nginx passes /healthz and /healthz/deep to the
health pool's socket and everything else to the app pool's; the pool may
open exactly what healthz.php reads and call none of the extra functions it
disables (_modules/lemp_app.py health_pool_limits). The lab proof (both web
nodes stay UP while a load holds every app worker) is the lead's run."""

import copy
import pathlib
import re

import jinja2
import pytest
import yaml

import lemp_app  # tests/conftest.py puts _modules on the path

REPO = pathlib.Path(__file__).resolve().parents[2]
PHP = yaml.safe_load((REPO / "salt" / "phpfpm" / "defaults.yaml").read_text())["phpfpm"]
NGINX = yaml.safe_load((REPO / "salt" / "nginx" / "defaults.yaml").read_text())["nginx"]
SCRIPT = (REPO / "salt" / "nginx" / "files" / "healthz.php").read_text()
WEB = [{"name": "web1", "address": "10.77.0.21"}]
CA = "/usr/local/share/ca-certificates/lemp-ha-platform-ca.crt"


@pytest.fixture
def app(sample_app):
    """The sample app (tests/unit/conftest.py sample_app)."""
    return sample_app


def limits(app, php=PHP):
    return lemp_app.health_pool_limits(app, php, NGINX)


def test_the_health_pool_may_open_what_healthz_reads_and_nothing_of_the_apps_writable_folders(app):
    assert limits(app)["open_basedir"] == [
        "/usr/local/share/lemp-ha/healthz.php",  # the script itself
        CA,                                      # /healthz/deep's TLS to the database
        "/srv/www/app/releases",                 # the current release's marker (current -> releases/<v>)
        "/etc/lemp-ha/healthz.json",             # its settings and the database account
    ]
    # the app's uploads, node-local folders and temp folder stay the app pool's
    assert not {"/srv/www-uploads/app", "/var/lib/lemp-ha-apps/app", PHP["pool"]["tmp_dir"]} & set(limits(app)["open_basedir"])


def test_every_file_healthz_reads_is_inside_its_open_basedir(app):
    allowed = limits(app)["open_basedir"]
    inside = lambda path: any(path == a or path.startswith(a + "/") for a in allowed)  # noqa: E731
    literal = set(re.findall(r"'(/(?:etc|usr|var|srv|opt|tmp|proc|run)/[^']*)'", SCRIPT))
    assert literal == {"/etc/lemp-ha/healthz.json"} and all(map(inside, literal))
    # the marker: $cfg['app_dir'] . '/current/.lemp-ha-release', the link resolved (open_basedir resolves it)
    assert "$cfg['app_dir'] . '/current/.lemp-ha-release'" in SCRIPT
    assert inside("/srv/www/app/releases/1.1.0/.lemp-ha-release")
    assert "$cfg['db_ssl_ca']" in SCRIPT and inside(app["database"]["ssl_ca"])


def test_healthz_calls_none_of_the_functions_its_pool_disables(app):
    disabled = set(limits(app)["disable_functions"].split(","))
    code = re.sub(r"//[^\n]*|'[^']*'", "", SCRIPT)  # comments and strings out
    called = set(re.findall(r"(?<![>$\w])([a-z_][a-z0-9_]*)\s*\(", code)) - {"function", "if", "array", "isset"}
    assert {"file_get_contents", "is_readable", "json_decode", "mysqli_init", "gethostname"} <= called
    assert not called & disabled, called & disabled


def test_the_health_pool_disables_the_platforms_list_whatever_the_app_re_enables(app):
    app["php"]["enable_functions"] = ["proc_open"]
    disabled = limits(app)["disable_functions"].split(",")
    assert disabled[:len(PHP["pool"]["disable_functions"])] == PHP["pool"]["disable_functions"]
    assert {"file_put_contents", "fsockopen", "mail", "ini_set"} <= set(disabled)
    assert len(disabled) == len(set(disabled))


@pytest.mark.parametrize("change, message", [
    (lambda p: p["health_pool"].update(name="app"), r'phpfpm:lookup:health_pool:name "app" must be a pool name of its own'),
    (lambda p: p["health_pool"].update(name="he alth"), r'phpfpm:lookup:health_pool:name "he alth"'),
    (lambda p: p["health_pool"].update(disable_functions=["file put"]),
     r'phpfpm:lookup:health_pool:disable_functions entry "file put" is not a PHP function name'),
    (lambda p: p["health_pool"].update(open_basedir=["etc/lemp-ha"]), r'phpfpm:lookup:health_pool:open_basedir entry "etc/lemp-ha"'),
])
def test_a_bad_health_pool_setting_is_refused_naming_its_key(app, change, message):
    php = copy.deepcopy(PHP)
    change(php)
    with pytest.raises(lemp_app.AppSettingsError, match=message):
        limits(app, php)


def test_validate_hands_the_health_limits_to_the_states(app):
    checked = lemp_app.validate(app, WEB, "10.77.0.100", list_master=lambda prefix: ["app/public/index.php"], php=PHP,
                                apt_knows=lambda p: True, nginx=NGINX, releases_on_disk=lambda d: {})
    assert checked["health_limits"] == limits(app)


def render_pool(app):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(REPO / "salt" / "phpfpm" / "files")),
                             undefined=jinja2.StrictUndefined)
    pool = dict(PHP["health_pool"], user="www-data", group="www-data", socket="/run/php/php8.2-fpm-health.sock")
    return env.get_template("health-pool.conf.j2").render(pool=pool, limits=limits(app))


def test_the_pool_file_is_small_static_short_and_locked(app):
    text = render_pool(app)
    settings = dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line and not line.startswith(";"))
    assert "[health]" in text and settings["listen"] == "/run/php/php8.2-fpm-health.sock"
    assert settings["pm"] == "static" and 1 < int(settings["pm.max_children"]) <= 4
    assert settings["user"] == PHP["pool"]["user"] and settings["group"] == PHP["pool"]["group"]
    # a hung /healthz/deep (2 x db_timeout) ends, and frees its worker, by the time nginx gives up on it
    terminate = int(settings["request_terminate_timeout"].rstrip("s"))
    assert 2 * NGINX["health"]["db_timeout"] < terminate <= 5
    assert settings["php_admin_value[open_basedir]"] == ":".join(limits(app)["open_basedir"])
    assert settings["php_admin_value[disable_functions]"] == limits(app)["disable_functions"]
    # the app's php.ini (conf.d, loaded by every pool) cannot make /healthz run its code or sessions
    assert settings["php_admin_value[auto_prepend_file]"] == "none" and settings["php_admin_flag[session.auto_start]"] == "off"
    # no status page here: Zabbix reads the app pool's (nginx's status server)
    assert "pm.status_path" not in text and "php_value[" not in text


def site():
    template = jinja2.Template((REPO / "salt" / "nginx" / "files" / "site.conf.j2").read_text(),
                               undefined=jinja2.StrictUndefined)
    return template.render(nginx=NGINX, app_dir="/srv/www/app", docroot="public", fpm_socket="/run/php/app.sock",
                           health_socket="/run/php/health.sock", lb_addresses=["10.77.0.11"],
                           healthz_details_from=["127.0.0.1"], client_max_body_size="20m", static_urls=[])


def test_nginx_sends_the_health_checks_to_the_health_pool_and_the_rest_to_the_app_pool():
    text = site()
    for uri in ("/healthz", "/healthz/deep"):
        body = text[text.index(f"location = {uri} {{"):]
        body = body[:body.index("\n    }\n")]
        assert "fastcgi_pass unix:/run/php/health.sock;" in body and "fastcgi_read_timeout 5s;" in body
    assert text.count("unix:/run/php/health.sock") == 2
    # the app's PHP and the status pages (Zabbix's php-fpm items) stay on the app pool
    for location in ("location ~ \\.php$ {", "location ~ ^/(fpm-status|fpm-ping)$ {"):
        body = text[text.index(location):]
        assert "fastcgi_pass unix:/run/php/app.sock;" in body[:body.index("\n    }\n")]
    status = (REPO / "salt" / "nginx" / "config.sls").read_text()
    assert "fpm_socket: {{ phpfpm.pool.socket | json }}" in status.split("nginx-agent-status-server-file-managed")[1]


def test_the_pool_file_is_written_checked_and_removed_like_the_app_pools():
    config = (REPO / "salt" / "phpfpm" / "config.sls").read_text()
    service = (REPO / "salt" / "phpfpm" / "service.sls").read_text()
    clean = (REPO / "salt" / "phpfpm" / "clean.sls").read_text()
    assert "phpfpm-{{ phpfpm.health_pool.name }}-pool-file-managed:" in config
    assert "- file: phpfpm-{{ phpfpm.health_pool.name }}-pool-file-managed" in service
    assert "pool.d/{{ phpfpm.health_pool.name }}.conf" in clean
    # nginx names the new socket only once PHP-FPM runs the pool (php-fpm -t passed, reloaded)
    nginx = (REPO / "salt" / "nginx" / "config.sls").read_text()
    assert "- lemp_service: phpfpm-runs-its-current-configuration" in nginx and "- phpfpm.service" in nginx
