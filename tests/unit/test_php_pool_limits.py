"""The PHP-FPM pool's hardening (issue #13, finding 8): the web requests may
not run programs and may open files only where the app and the platform keep
theirs. _modules/lemp_app.py php_pool_limits combines the platform's
defaults (salt/phpfpm/defaults.yaml pool:) with the app's exceptions
(app:php:enable_functions, app:php:open_basedir) and refuses a bad entry
naming its key; salt/phpfpm/files/pool.conf.j2 writes the result as
php_admin_value, which an app cannot loosen."""

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
WEB = [{"name": "web1", "address": "10.77.0.21"}]
VIP = "10.77.0.100"
# The process/exec family of the PHP 8.2 manual ("Program execution
# Functions", popen, pcntl_exec): none may stay callable by default.
EXEC_FAMILY = {"exec", "passthru", "shell_exec", "system", "popen", "proc_open", "pcntl_exec"}


@pytest.fixture
def app(sample_app):
    """The sample app (tests/unit/conftest.py sample_app)."""
    return sample_app


def limits(app, php=PHP):
    return lemp_app.php_pool_limits(app, php, NGINX)


def test_the_sample_app_may_open_its_own_files_and_the_platforms_only(app):
    got = limits(app)
    assert got["open_basedir"] == [
        "/srv/www/app",                    # releases and the current link
        "/srv/www-uploads/app",            # shared_paths' targets (GlusterFS)
        "/var/lib/lemp-ha-apps/app",       # writable_paths' targets
        "/var/lib/php/lemp-ha-tmp",        # the pool's temp and upload folder
        "/usr/local/share/ca-certificates/lemp-ha-platform-ca.crt",  # MySQL TLS
        "/usr/local/share/lemp-ha/healthz.php",  # the platform's /healthz
        "/etc/lemp-ha/healthz.json",
        "/usr/local/share/lemp-ha/php/session-handler.php",  # the sessions' handler (auto_prepend_file)
    ]
    assert got["tmp_dir"] == "/var/lib/php/lemp-ha-tmp"
    assert not any(p in ("/", "/tmp", "/etc") for p in got["open_basedir"])


def test_the_process_family_is_disabled_by_default(app):
    disabled = limits(app)["disable_functions"].split(",")
    assert EXEC_FAMILY <= set(disabled)
    # the way around the list (putenv + mail's sendmail) and the page that shows the Redis password
    assert {"putenv", "phpinfo"} <= set(disabled)
    assert "mail" not in disabled and "ini_set" not in disabled


def test_an_app_re_enables_a_named_function_and_adds_paths(app):
    app["php"]["enable_functions"] = ["proc_open", "proc_close"]
    app["php"]["open_basedir"] = ["/usr/share/php/", "/srv/www/app"]
    got = limits(app)
    disabled = got["disable_functions"].split(",")
    assert "proc_open" not in disabled and "proc_close" not in disabled and "exec" in disabled
    # in the platform's order, the trailing slash dropped, no duplicate
    assert disabled == [f for f in PHP["pool"]["disable_functions"] if f not in ("proc_open", "proc_close")]
    assert got["open_basedir"][-1] == "/usr/share/php" and got["open_basedir"].count("/srv/www/app") == 1


def test_the_platform_list_may_be_emptied_from_pillar(app):
    php = copy.deepcopy(PHP)
    php["pool"]["disable_functions"] = []
    assert limits(app, php)["disable_functions"] == ""


@pytest.mark.parametrize("change, message", [
    (lambda a, p: a["php"].update(enable_functions=["exce"]),
     r'app:php:enable_functions entry "exce" is not a function the platform disables \(phpfpm:lookup:pool:disable_functions: exec, '),
    (lambda a, p: a["php"].update(enable_functions="exec"), r"app:php:enable_functions must be a list"),
    (lambda a, p: a["php"].update(open_basedir=["usr/share/php"]),
     r'app:php:open_basedir entry "usr/share/php" must be an absolute folder or file'),
    (lambda a, p: a["php"].update(open_basedir=["/"]), r'app:php:open_basedir entry "/" must be an absolute'),
    (lambda a, p: a["php"].update(open_basedir=["/srv/www/../../etc"]), r'app:php:open_basedir entry "/srv/www/\.\./\.\./etc"'),
    (lambda a, p: a["php"].update(open_basedir=["/usr/share/php:/etc"]), r'app:php:open_basedir entry "/usr/share/php:/etc"'),
    (lambda a, p: a["php"].update(open_basedir="/usr/share/php"), r"app:php:open_basedir must be a list"),
    (lambda a, p: p["pool"].update(disable_functions=["exec", "shell exec"]),
     r'phpfpm:lookup:pool:disable_functions entry "shell exec" is not a PHP function name'),
    (lambda a, p: p["pool"].update(open_basedir=["etc/lemp-ha"]), r'phpfpm:lookup:pool:open_basedir entry "etc/lemp-ha"'),
    (lambda a, p: p["pool"].update(tmp_dir="tmp"), r'phpfpm:lookup:pool:tmp_dir "tmp" must be an absolute folder'),
    (lambda a, p: a["database"].update(ssl_ca="ca.crt"), r'app:database:ssl_ca "ca.crt" must be an absolute folder or file'),
])
def test_a_bad_entry_is_refused_naming_its_key(app, change, message):
    php = copy.deepcopy(PHP)
    change(app, php)
    with pytest.raises(lemp_app.AppSettingsError, match=message):
        limits(app, php)


@pytest.mark.parametrize("key", ["open_basedir", "disable_functions", "sys_temp_dir", "upload_tmp_dir"])
def test_the_pools_settings_are_refused_in_app_ini_pointing_to_the_exceptions(app, key):
    app["php"]["ini"] = {key: "/"}
    with pytest.raises(lemp_app.AppSettingsError, match=rf"app:php:ini:{key} is the PHP-FPM pool's .*app:php:open_basedir"):
        lemp_app.validate(app, WEB, VIP, list_master=lambda prefix: ["app/public/index.php"], php=PHP,
                          apt_knows=lambda p: True, nginx=NGINX, releases_on_disk=lambda d: {})


def test_validate_hands_the_limits_to_the_states(app):
    checked = lemp_app.validate(app, WEB, VIP, list_master=lambda prefix: ["app/public/index.php"], php=PHP,
                                apt_knows=lambda p: True, nginx=NGINX, releases_on_disk=lambda d: {})
    assert checked["php_limits"] == limits(app)


def test_the_wordpress_example_gets_its_own_folders(app):
    text = (REPO / "salt" / "webapp" / "examples" / "wordpress" / "app.sls.example").read_text()
    text = re.sub(r"\{#.*?#\}|\{%.*?%\}", "", text, flags=re.S)  # as test_app_settings.py reads it
    text = text.replace("{{ topology.network.vip }}", VIP).replace("{{ topology.network.internal_vip }}", "10.77.0.101")
    app.update(yaml.safe_load(text.replace("@WORDPRESS_VERSION@", "6.1.1"))["app"])
    got = limits(app)
    # the copy of /usr/share/wordpress (links dereferenced) is the release; uploads on the volume
    assert got["open_basedir"][:2] == ["/srv/www/blog", "/srv/www-uploads/blog"]
    assert EXEC_FAMILY <= set(got["disable_functions"].split(","))


def test_healthz_reads_only_files_inside_open_basedir(app):
    """/healthz (salt/nginx/files/healthz.php) opens its settings file, the
    release marker under the app's folder and the CA file: all allowed."""
    script = (REPO / "salt" / "nginx" / "files" / "healthz.php").read_text()
    absolute = set(re.findall(r"'(/(?:etc|usr|var|srv|opt|tmp|proc|run)/[^']*)'", script))
    allowed = limits(app)["open_basedir"]
    assert absolute and all(any(p == a or p.startswith(a + "/") for a in allowed) for p in absolute), absolute
    config = (REPO / "salt" / "nginx" / "config.sls").read_text()
    assert "- name: /etc/lemp-ha/healthz.json" in config


def render_pool(limits_):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(REPO / "salt" / "phpfpm" / "files")))
    pool = dict(PHP["pool"], socket="/run/php/php8.2-fpm-app.sock")
    return env.get_template("pool.conf.j2").render(pool=pool, limits=limits_)


def test_the_pool_file_writes_them_as_admin_values(app):
    got = limits(app)
    text = render_pool(got)
    lines = dict(line.split(" = ", 1) for line in text.splitlines() if line.startswith("php_admin_value["))
    assert lines["php_admin_value[disable_functions]"] == got["disable_functions"]
    assert lines["php_admin_value[open_basedir]"] == ":".join(got["open_basedir"])
    assert lines["php_admin_value[sys_temp_dir]"] == lines["php_admin_value[upload_tmp_dir]"] == got["tmp_dir"]
    assert "php_value[" not in text and "php_flag[" not in text  # php_value could be changed by ini_set
    assert "CLI" in text  # the comment says the CLI is not restricted
    empty = render_pool(dict(got, disable_functions=""))
    assert "disable_functions" not in "".join(l for l in empty.splitlines() if not l.startswith(";"))
