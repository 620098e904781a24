"""The web application's settings (pillar app:) are checked by one pure
function, _modules/lemp_app.py, before any state renders: a bad setting is
refused naming the key and the fix."""

import copy
import pathlib

import pytest
import yaml

import lemp_app  # tests/conftest.py puts _modules on the path

REPO = pathlib.Path(__file__).resolve().parents[2]
WEB = [{"name": "web1", "address": "10.77.0.21"}, {"name": "web2", "address": "10.77.0.22"}]
VIP = "10.77.0.100"


def on_master(prefix):
    return ["app/public/index.php"] if prefix == "app/" else []


@pytest.fixture
def good():
    """The defaults merged with pillar/app.sls, as salt/webapp/map.jinja does."""
    app = yaml.safe_load((REPO / "salt" / "webapp" / "defaults.yaml").read_text())["webapp"]
    app.update({"name": "app", "version": "1.0.0", "source": {"path": "salt://app"}, "docroot": "public"})
    return app


PHP = yaml.safe_load((REPO / "salt" / "phpfpm" / "defaults.yaml").read_text())["phpfpm"]
NGINX = yaml.safe_load((REPO / "salt" / "nginx" / "defaults.yaml").read_text())["nginx"]
# What apt knows on a web node (a sample of Debian 12's archive).
APT = {"wordpress-theme-twentytwentythree", "php8.2-xml", "php8.2-gd", "php8.2-mbstring", "php8.2-curl", "php8.2-zip", "php8.2-intl", "wordpress", "mediawiki"}


def check(app, web=WEB, apt=APT, releases=None):
    """validate as the map calls it; ``releases``: {version: links} of the
    releases on the node (default: none)."""
    return lemp_app.validate(app, web, VIP, list_master=on_master, php=PHP, apt_knows=apt.__contains__, nginx=NGINX,
                             releases_on_disk=lambda app_dir: dict(releases or {}))


def test_good_settings_give_the_release_paths_and_the_database_endpoint(good):
    checked = check(good)
    assert checked["app"] == good
    assert checked["version"] == "1.0.0"
    assert checked["app_dir"] == "/srv/www/app"
    assert checked["release_dir"] == "/srv/www/app/releases/1.0.0"
    assert checked["source_kind"] == "path"
    assert checked["db_host"] == VIP
    assert checked["first_web"] == "web1"


def test_a_database_host_in_the_pillar_wins_over_the_vip(good):
    good["database"]["host"] = "db.example.com"
    assert check(good)["db_host"] == "db.example.com"


def test_a_numeric_version_is_read_as_a_string(good):
    good["version"] = 2
    assert check(good)["release_dir"].endswith("/releases/2")


@pytest.mark.parametrize("source, kind", [
    ({"git": {"url": "https://git.example.com/app.git", "ref": "v1.0.0"}}, "git"),
    ({"archive": {"url": "https://dl.example.com/app.tgz", "hash": "sha256=00"}}, "archive"),
])
def test_git_and_archive_sources_are_accepted(good, source, kind):
    good["source"] = source
    assert check(good)["source_kind"] == kind


BAD = [
    ("no web node", {}, 'has no machine with role web: nothing to deploy to'),
    ("bad name", {"name": "App!"}, 'app:name "App!" is invalid: 1-32 of a-z 0-9 _ -, starting with a letter'),
    ("no version", {"version": ""}, 'app:version is missing: set it in pillar (pillar/app.sls)'),
    ("bad version", {"version": "1.0/../x"}, 'app:version "1.0/../x" is invalid: 1-64 of A-Z a-z 0-9'),
    ("dotdot version", {"version": "1..2"}, 'no ".."'),
    ("two sources", {"source": {"path": "salt://app", "git": {"url": "u", "ref": "r"}}},
     "app:source must name exactly one of path, git, archive, package (found: path, git)"),
    ("no source", {"source": {}}, "app:source must name exactly one of path, git, archive, package (found: none)"),
    ("path not on the master", {"source": {"path": "/srv/app"}},
     'app:source:path "/srv/app" must be a salt:// path on the master'),
    ("empty path", {"source": {"path": "salt://nothing"}},
     "app:source:path salt://nothing has no file on the master: nothing to deploy"),
    ("git without ref", {"source": {"git": {"url": "https://git.example.com/app.git"}}},
     "app:source:git needs url and ref (a branch, tag or commit)"),
    ("archive without hash", {"source": {"archive": {"url": "https://dl.example.com/app.tgz"}}},
     "app:source:archive needs url and hash (e.g. sha256=...)"),
    ("docroot escapes", {"docroot": "../etc"}, 'app:docroot "../etc" must be a relative path inside the release'),
    ("absolute docroot", {"docroot": "/var/www"}, 'app:docroot "/var/www" must be a relative path inside the release'),
    ("unknown extension", {"php": {"extensions": ["xml", "nosuchext"], "ini": {}}},
     "app:php:extensions: apt on this machine knows no package php8.2-nosuchext"),
    ("extension name", {"php": {"extensions": ["php8.2-xml"], "ini": {}}},
     'app:php:extensions entry "php8.2-xml" is invalid: a-z and 0-9 only'),
    ("extensions not a list", {"php": {"extensions": "xml", "ini": {}}}, "app:php:extensions must be a list"),
    ("ini key", {"php": {"extensions": [], "ini": {"Memory Limit": "1G"}}}, 'app:php:ini key "Memory Limit" is invalid'),
    ("ini value not scalar", {"php": {"extensions": [], "ini": {"memory_limit": ["1G"]}}},
     "app:php:ini:memory_limit must be a scalar"),
    ("ini value breaks the file", {"php": {"extensions": [], "ini": {"error_log": 'a"\nextension=evil.so'}}},
     "app:php:ini:error_log"),
    ("ini loads a module", {"php": {"extensions": [], "ini": {"extension": "evil.so"}}},
     "app:php:ini:extension is set by the platform"),
    ("ini moves sessions", {"php": {"extensions": [], "ini": {"session.save_handler": "files"}}},
     "app:php:ini:session.save_handler is set by the platform"),
    ("upload above post", {"php": {"extensions": [], "ini": {"upload_max_filesize": "64M", "post_max_size": "32M"}}},
     "app:php:ini:upload_max_filesize (64M) is larger than post_max_size (32M)"),
    ("upload above PHP's default post", {"php": {"extensions": [], "ini": {"upload_max_filesize": "64M"}}},
     "post_max_size (8M, PHP default)"),
    ("bad size", {"php": {"extensions": [], "ini": {"post_max_size": "64MB"}}}, 'app:php:ini:post_max_size "64MB" is not a PHP size'),
    ("execution time above the pool's", {"php": {"extensions": [], "ini": {"max_execution_time": 120}}},
     "app:php:ini:max_execution_time (120) must be below the PHP-FPM pool's request_terminate_timeout (60s)"),
    ("shared path escapes", {"shared_paths": ["../uploads"]},
     'app:shared_paths entry "../uploads" must be a relative path inside the release'),
    ("shared path escapes midway", {"shared_paths": ["public/../../etc"]}, 'app:shared_paths entry "public/../../etc"'),
    ("shared path absolute", {"shared_paths": ["/srv/www-uploads"]}, 'app:shared_paths entry "/srv/www-uploads" must be'),
    ("writable path escapes", {"writable_paths": ["cache/.."]}, 'app:writable_paths entry "cache/.."'),
    ("shared path holds the docroot", {"shared_paths": ["public"]}, 'app:shared_paths entry "public" holds the docroot (public)'),
    ("shared path holds the config", {"config_file": "etc/config.php", "shared_paths": ["etc"]},
     "holds app:config_file (etc/config.php)"),
    ("paths overlap", {"shared_paths": ["public/files"], "writable_paths": ["public/files/cache"]},
     'app:writable_paths entry "public/files/cache" overlaps shared_paths entry "public/files"'),
    ("paths not a list", {"shared_paths": "public/files"}, "app:shared_paths must be a list"),
    ("secret name", {"secrets": ["wp-auth-key"]}, 'app:secrets entry "wp-auth-key" is invalid'),
    ("secret twice", {"secrets": ["a", "a"]}, "app:secrets names a secret twice"),
    ("url scheme", {"url": "ftp://www.example.com"}, 'app:url "ftp://www.example.com" is invalid: http:// or https://'),
    ("url without host", {"url": "https://"}, 'app:url "https://" is invalid'),
    ("url with a user", {"url": "https://admin:pw@www.example.com"}, "is invalid"),
    ("url with a query", {"url": "https://www.example.com/?x=1"}, "is invalid"),
    ("url bad port", {"url": "https://www.example.com:99999"}, "is invalid"),
    ("package unknown", {"source": {"package": {"name": "wordpres", "path": "/usr/share/wordpress"}}},
     "app:source:package:name wordpres: apt on this machine knows no such package"),
    ("package without path", {"source": {"package": {"name": "wordpress"}}},
     'app:source:package:path "" must be the absolute folder'),
    ("package path escapes", {"source": {"package": {"name": "wordpress", "path": "/usr/share/../../etc"}}},
     "app:source:package:path"),
    ("package with unknown", {"source": {"package": {"name": "wordpress", "path": "/usr/share/wordpress",
                                                     "with": ["wordpress-theme-nosuch"]}}},
     "app:source:package:with wordpress-theme-nosuch: apt on this machine knows no such package"),
    ("package with not a list", {"source": {"package": {"name": "wordpress", "path": "/usr/share/wordpress",
                                                        "with": "wordpress-theme-twentytwentythree"}}},
     "app:source:package:with must be a list of Debian package names"),
    ("relative root", {"root": "srv/www"}, 'app:root "srv/www" must be an absolute folder'),
    ("root with a space", {"root": "/srv/my www"}, 'app:root "/srv/my www" must be an absolute folder'),
    ("root with a command", {"root": "/srv/www;reboot"}, 'app:root "/srv/www;reboot"'),
    ("uploads dir escapes", {"uploads_dir": "/srv/../etc"}, 'app:uploads_dir "/srv/../etc" must be an absolute folder'),
    ("local dir is /", {"local_dir": "/"}, 'app:local_dir "/" must be an absolute folder'),
    ("user not the pool's", {"user": "shop"},
     'app:user "shop" is not the PHP-FPM pool\'s user (phpfpm:lookup:pool:user "www-data")'),
    ("group not the pool's", {"group": "shop"}, 'app:group "shop" is not the PHP-FPM pool\'s group'),
    ("ini backslash", {"php": {"extensions": [], "ini": {"error_log": "C:\\logs\\"}}}, 'no ", \\, newline'),
    ("package version", {"source": {"package": {"name": "wordpress", "path": "/usr/share/wordpress", "version": "latest"}}},
     'app:source:package:version "latest" is not a Debian version'),
]


@pytest.mark.parametrize("case, change, message", BAD, ids=[b[0] for b in BAD])
def test_bad_settings_are_refused_naming_the_key_and_the_fix(good, case, change, message):
    app = copy.deepcopy(good)
    app.update(change)
    with pytest.raises(Exception) as info:
        check(app, [] if case == "no web node" else WEB)
    assert message in str(info.value)


@pytest.mark.parametrize("version", ["1.0.0", "2024.01.31+build.7", "v2-rc_1", "a" * 64])
def test_check_version_accepts_release_names(version):
    assert lemp_app.check_version(version) == version


@pytest.mark.parametrize("version", ["", None, "-1", ".hidden", "1..2", "a" * 65, "1.0 beta", "1/2"])
def test_check_version_refuses_what_cannot_name_a_release_folder(version):
    with pytest.raises(Exception, match="app:version"):
        lemp_app.check_version(version)


def test_rollback_target_uses_the_same_rule():
    assert lemp_app.check_rollback_target("1.0.0") == "1.0.0"
    with pytest.raises(Exception, match=r'app:rollback_to "\.\./x" is missing or invalid'):
        lemp_app.check_rollback_target("../x")


VERSION_RULE_READERS = ["_modules", "_runners", "salt", "pillar", "orch"]


def test_the_version_rule_is_written_once_in_the_repo():
    rule = "[0-9A-Za-z._+-]{0,63}"
    files = [p for entry in VERSION_RULE_READERS
             for p in ((REPO / entry).rglob("*") if (REPO / entry).is_dir() else [REPO / entry])]
    found = [str(p.relative_to(REPO)) for p in files
             if p.suffix in (".py", ".sls", ".jinja", ".yaml", ".j2") and rule in p.read_text(errors="replace")]
    assert found == ["_modules/lemp_app.py"], found


def test_extensions_become_packages_of_the_php_version_beyond_the_base_set(good):
    good["php"] = {"extensions": ["xml", "gd", "redis", "xml"], "ini": {}}
    assert check(good)["php_packages"] == ["php8.2-xml", "php8.2-gd"]


def test_extensions_are_checked_against_apt_only_when_there_are_some(good):
    asked = []
    lemp_app.validate(good, WEB, VIP, list_master=on_master, php=PHP, apt_knows=lambda p: asked.append(p) or True,
                      releases_on_disk=lambda app_dir: {})
    assert asked == []


def test_ini_settings_are_written_sorted_with_php_literals(good):
    good["php"] = {"extensions": [], "ini": {
        "memory_limit": "256M", "display_errors": False, "max_execution_time": 30,
        "date.timezone": "Europe/Paris", "error_log": "/var/log/php errors.log"}}
    text = check(good)["php_ini"]
    assert text.splitlines()[1:] == [
        "date.timezone = Europe/Paris",
        "display_errors = Off",
        'error_log = "/var/log/php errors.log"',
        "max_execution_time = 30",
        "memory_limit = 256M",
    ]


def test_no_ini_settings_means_no_ini_file_and_nginx_keeps_its_own_body_limit(good):
    checked = check(good)
    assert checked["php_ini"] == ""
    assert checked["client_max_body_size"] == NGINX["client_max_body_size"] == "20m"


@pytest.mark.parametrize("ini, body", [
    ({"upload_max_filesize": "64M", "post_max_size": "70M"}, "70m"),
    ({"post_max_size": "1G"}, "1g"),
    ({"upload_max_filesize": "4M"}, "8m"),
    ({"post_max_size": 0, "upload_max_filesize": "2G"}, "0"),
])
def test_nginx_body_limit_follows_phps_post_max_size(good, ini, body):
    good["php"] = {"extensions": [], "ini": ini}
    assert check(good)["client_max_body_size"] == body


def test_max_execution_time_below_the_pools_timeout_is_accepted(good):
    good["php"] = {"extensions": [], "ini": {"max_execution_time": 55}}
    assert "max_execution_time = 55" in check(good)["php_ini"]


def test_shared_and_writable_paths_link_to_per_app_folders_and_are_served_as_files(good):
    good.update({"name": "blog", "docroot": ".", "shared_paths": ["wp-content/uploads"], "writable_paths": ["wp-content/cache"]})
    checked = check(good)
    assert checked["links"] == [
        {"key": "shared_paths", "path": "wp-content/uploads", "target": "/srv/www-uploads/blog/wp-content/uploads",
         "where": "shared-volume", "url": "/wp-content/uploads/"},
        {"key": "writable_paths", "path": "wp-content/cache", "target": "/var/lib/lemp-ha-apps/blog/wp-content/cache",
         "where": "this-node", "url": "/wp-content/cache/"},
    ]
    assert checked["static_urls"] == ["/wp-content/uploads/", "/wp-content/cache/"]


def test_a_linked_path_outside_the_docroot_is_not_served(good):
    good.update({"shared_paths": ["public/media"], "writable_paths": ["var/cache"]})
    assert check(good)["static_urls"] == ["/media/"]


def test_the_url_defaults_to_https_on_the_vip_and_loses_its_trailing_slash(good):
    assert check(good)["url"] == "https://10.77.0.100"
    good["url"] = "https://WWW.Example.com:8443/blog/"
    assert check(good)["url"] == "https://www.example.com:8443/blog"


def test_the_template_gets_the_settings_without_the_database_password(good):
    good["database"]["password"] = "s3cret"
    good["secrets"] = ["wp_auth_key"]
    checked = check(good)
    assert "password" not in checked["template_app"]["database"]
    assert checked["app"]["database"]["password"] == "s3cret"
    assert checked["secret_names"] == ["wp_auth_key"]


def test_app_secrets_are_read_from_app_secrets_in_the_secrets_pillar():
    pillar = {"app_secrets:wp_auth_key": "k", "app_secrets:wp_salt": "s"}
    assert lemp_app.app_secrets(["wp_auth_key", "wp_salt"], require=pillar.__getitem__) == {"wp_auth_key": "k", "wp_salt": "s"}


def test_a_missing_app_secret_stops_naming_its_key_and_docs_secrets():
    import lemp_secret

    def require(key):
        raise ValueError(lemp_secret.missing_message(key))

    with pytest.raises(ValueError) as info:
        lemp_app.app_secrets(["wp_auth_key"], require=require)
    assert "secret app_secrets:wp_auth_key is missing" in str(info.value)
    assert "docs/secrets.md" in str(info.value)


def test_a_package_source_is_installed_at_app_version_unless_it_names_one(good):
    good["source"] = {"package": {"name": "wordpress", "path": "/usr/share/wordpress/"}}
    good["version"] = "6.1.9+dfsg1-0+deb12u1"
    checked = check(good)
    assert checked["source_kind"] == "package"
    assert checked["package"] == {"name": "wordpress", "path": "/usr/share/wordpress", "version": "6.1.9+dfsg1-0+deb12u1",
                                  "with": []}
    good["source"]["package"]["version"] = "1:1.39.5-1~deb12u1"
    good["version"] = "1.39.5"
    assert check(good)["package"]["version"] == "1:1.39.5-1~deb12u1"
    assert check(good)["release_dir"].endswith("/releases/1.39.5")


def test_copy_release_dereferences_links_and_leaves_the_config_file_out(tmp_path):
    etc, src = tmp_path / "etc", tmp_path / "usr-share-app"
    (etc / "content").mkdir(parents=True)
    (etc / "content" / "style.css").write_text("css")
    (src / "bin").mkdir(parents=True)
    (src / "index.php").write_text("<?php")
    (src / "bin" / "tool").write_text("#!/bin/sh")
    (src / "bin" / "tool").chmod(0o775)
    (src / "content").symlink_to(etc / "content")
    (src / "config.php").symlink_to(etc / "missing.php")  # dangling, as a packaged config often is
    dest = tmp_path / "releases" / "1.0"
    dest.parent.mkdir()
    lemp_app.copy_release(str(src), str(dest), ["config.php"])
    assert (dest / "content").is_dir() and not (dest / "content").is_symlink()
    assert (dest / "content" / "style.css").read_text() == "css"
    assert not (dest / "config.php").exists()
    assert oct((dest / "bin" / "tool").stat().st_mode & 0o777) == "0o755"
    assert oct((dest / "index.php").stat().st_mode & 0o777) == "0o644"
    assert not (tmp_path / "releases" / "1.0.partial").exists()


def test_copy_release_replaces_a_half_built_release_and_names_a_dangling_link(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "rel"
    src.mkdir()
    (src / "index.php").write_text("<?php")
    dest.mkdir()
    (dest / "leftover").write_text("x")
    lemp_app.copy_release(str(src), str(dest))
    assert sorted(p.name for p in dest.iterdir()) == ["index.php"]
    (src / "broken").symlink_to(tmp_path / "nowhere")
    with pytest.raises(Exception, match=r"cannot copy .* dangling .*broken"):
        lemp_app.copy_release(str(src), str(dest))
    assert (dest / "index.php").exists()


def test_nginx_serves_linked_folders_as_files_and_never_runs_php_there():
    import jinja2

    template = jinja2.Template((REPO / "salt" / "nginx" / "files" / "site.conf.j2").read_text())
    nginx = yaml.safe_load((REPO / "salt" / "nginx" / "defaults.yaml").read_text())["nginx"]
    site = template.render(nginx=nginx, app_dir="/srv/www/blog", docroot=".", fpm_socket="/run/php/app.sock",
                           lb_addresses=["10.77.0.11"], client_max_body_size="70m",
                           static_urls=["/wp-content/uploads/"])
    block = site[site.index("location ^~ /wp-content/uploads/ {"):]
    block = block[:block.index("\n    }\n")]
    assert "fastcgi_pass" not in block
    assert "add_header X-Content-Type-Options nosniff always;" in block
    assert r"location ~* \.(php[0-9]?|phar|phtml|pht|phps)$ { return 403; }" in block
    assert "client_max_body_size 70m;" in site
    assert site.count("{") == site.count("}")


def test_the_documented_example_is_accepted(good):
    example = yaml.safe_load((REPO / "salt" / "webapp" / "pillar.example").read_text())["app"]
    app = copy.deepcopy(good)
    app.update(example)
    checked = check(app)
    assert checked["php_packages"] == ["php8.2-xml", "php8.2-gd", "php8.2-mbstring", "php8.2-curl", "php8.2-zip", "php8.2-intl"]
    assert checked["client_max_body_size"] == "70m"
    assert checked["url"] == "https://www.example.com"


def test_a_package_source_installs_its_companions_with_it(good):
    good["source"] = {"package": {"name": "wordpress", "path": "/usr/share/wordpress",
                                  "version": "6.1.9+dfsg1-0+deb12u1", "with": ["wordpress-theme-twentytwentythree"]}}
    assert check(good)["package"]["with"] == ["wordpress-theme-twentytwentythree"]


def test_the_wordpress_example_is_accepted_as_the_lab_writes_it(good):
    import re

    text = (REPO / "salt" / "webapp" / "examples" / "wordpress" / "app.sls.example").read_text()
    text = re.sub(r"\{#.*?#\}|\{%.*?%\}", "", text, flags=re.S)
    text = text.replace("{{ topology.network.vip }}", VIP).replace("{{ topology.network.internal_vip }}", "10.77.0.101")
    text = text.replace("@WORDPRESS_VERSION@", "6.1.9+dfsg1-0+deb12u1")
    app = copy.deepcopy(good)
    app.update(yaml.safe_load(text)["app"])
    checked = check(app)
    assert checked["package"]["with"] == ["wordpress-theme-twentytwentythree"]
    assert checked["static_urls"] == ["/wp-content/uploads/"]
    assert checked["client_max_body_size"] == "32m"
    assert checked["secret_names"][0] == "auth_key"


def test_a_constant_expression_in_ini_is_written_unquoted_so_php_evaluates_it(good):
    good["php"] = {"extensions": [], "ini": {"error_reporting": "E_ALL & ~E_DEPRECATED & ~E_STRICT",
                                             "error_log": "/var/log/php errors.log"}}
    lines = check(good)["php_ini"].splitlines()
    assert "error_reporting = E_ALL & ~E_DEPRECATED & ~E_STRICT" in lines
    assert 'error_log = "/var/log/php errors.log"' in lines


def test_web_node_folders_follow_the_cron_path_rule():
    import lemp_cron

    assert lemp_app.SAFE_PATH_RE.pattern == lemp_cron.SAFE_PATH_RE.pattern


def test_a_trailing_slash_on_root_does_not_double_in_the_release_path(good):
    good["root"] = "/srv/www/"
    assert check(good)["release_dir"] == "/srv/www/app/releases/1.0.0"


def test_an_unknown_package_suggests_apt_get_update_for_a_fresh_machine(good):
    good["php"] = {"extensions": ["xml"], "ini": {}}
    with pytest.raises(Exception, match="run apt-get update first"):
        check(good, apt=set())


LINKED = {"name": "blog", "docroot": ".", "shared_paths": ["wp-content/uploads"]}
UPLOADS = {"path": "wp-content/uploads", "target": "/srv/www-uploads/blog/wp-content/uploads", "url": "/wp-content/uploads/"}


def test_the_marker_records_the_version_and_the_links(good):
    good.update(LINKED)
    marker = lemp_app.parse_marker(check(good)["marker"])
    assert marker == {"version": "1.0.0", "links": [UPLOADS]}
    assert lemp_app.parse_marker("1.0.0\n") == {"version": "1.0.0", "links": None}


def test_links_of_every_release_on_the_node_stay_static_after_the_pillar_drops_them(good):
    # 1.0.0 was built with wp-content/uploads linked; the pillar no longer
    # names it (new version 1.1.0): a rollback to 1.0.0 must not run PHP there.
    good.update(LINKED, version="1.1.0", shared_paths=[], writable_paths=["wp-content/cache"])
    checked = check(good, releases={"1.0.0": [UPLOADS]})
    assert checked["static_urls"] == ["/wp-content/cache/", "/wp-content/uploads/"]


def test_changing_the_links_of_a_built_release_is_refused(good):
    good.update(LINKED, shared_paths=[])
    with pytest.raises(Exception, match=r"app:shared_paths/app:writable_paths changed for release 1.0.0, which is built "
                                        r"with links wp-content/uploads -> .*deploy a new app:version"):
        check(good, releases={"1.0.0": [UPLOADS]})
    good.update(shared_paths=["wp-content/uploads", "wp-content/gallery"])
    with pytest.raises(Exception, match="changed for release 1.0.0"):
        check(good, releases={"1.0.0": [UPLOADS]})
    good.update(shared_paths=["wp-content/uploads"])
    assert check(good, releases={"1.0.0": [UPLOADS]})["static_urls"] == ["/wp-content/uploads/"]


def test_release_links_reads_markers_and_finds_the_links_of_an_older_marker(tmp_path):
    app_dir, uploads = tmp_path / "blog", tmp_path / "uploads"
    (uploads / "files").mkdir(parents=True)
    new, old, half = (app_dir / "releases" / v for v in ("2.0", "1.0", "3.0"))
    for release in (new, old, half):
        (release / "wp-content").mkdir(parents=True)
    (new / ".lemp-ha-release").write_text(lemp_app.marker_text("2.0", [dict(UPLOADS, key="shared_paths")]) + "\n")
    (old / ".lemp-ha-release").write_text("1.0\n")  # before the links were recorded
    (old / "wp-content" / "files").symlink_to(uploads / "files")
    (old / "wp-content" / "relative").symlink_to("../wp-content")  # the app's own link, not Salt's
    assert lemp_app.release_links(str(app_dir)) == {
        "1.0": [{"path": "wp-content/files", "target": str(uploads / "files")}],
        "2.0": [UPLOADS],
    }
    assert lemp_app.release_links(str(tmp_path / "nothing")) == {}


def test_copy_release_leaves_out_what_not_everyone_may_read(tmp_path):
    etc, src = tmp_path / "etc", tmp_path / "src"
    etc.mkdir()
    (etc / "secret.php").write_text("<?php $pw = 'x';")
    (etc / "secret.php").chmod(0o640)
    src.mkdir()
    (src / "index.php").write_text("<?php")
    (src / "secret.php").symlink_to(etc / "secret.php")
    dest = tmp_path / "rel"
    ret = lemp_app.copy_release(str(src), str(dest))
    assert ret["skipped"] == ["secret.php"]
    assert sorted(p.name for p in dest.iterdir()) == ["index.php"]


def test_clean_renamed_refuses_the_app_nginx_serves(tmp_path):
    (tmp_path / "blog.conf").write_text("server {}")
    with pytest.raises(Exception, match=r"app blog is still served .*blog.conf.*converge the new app:name first"):
        lemp_app.check_not_served("blog", str(tmp_path))
    assert "not served" in lemp_app.check_not_served("oldblog", str(tmp_path))


def test_the_masters_file_list_is_asked_once_per_run(monkeypatch):
    asked = []
    monkeypatch.setattr(lemp_app, "__context__", {}, raising=False)
    monkeypatch.setattr(lemp_app, "__salt__", {"cp.list_master": lambda prefix: asked.append(prefix) or ["app/x"]},
                        raising=False)
    assert lemp_app._list_master("app/") == lemp_app._list_master("app/") == ["app/x"]
    assert asked == ["app/"]


def test_the_public_vip_as_the_database_host_is_refused_naming_the_internal_endpoint(good):
    app = copy.deepcopy(good)
    app.setdefault("database", {})["host"] = VIP
    with pytest.raises(lemp_app.AppSettingsError) as err:
        lemp_app.validate(app, WEB, VIP, list_master=on_master, php=PHP, apt_knows=APT.__contains__, nginx=NGINX,
                          releases_on_disk=lambda app_dir: {}, db_endpoint="10.77.0.101")
    assert "is the public VIP" in str(err.value) and "10.77.0.101" in str(err.value)
    # with the internal endpoint given and no host set, the app gets it
    app["database"].pop("host")
    checked = lemp_app.validate(app, WEB, VIP, list_master=on_master, php=PHP, apt_knows=APT.__contains__,
                                nginx=NGINX, releases_on_disk=lambda app_dir: {}, db_endpoint="10.77.0.101")
    assert checked["db_host"] == "10.77.0.101"
