"""
Check the web application's settings (pillar ``app:``) and derive what the
states need from them.

``salt/webapp/map.jinja`` merges ``salt/webapp/defaults.yaml`` with pillar
``app:`` and hands the result to :func:`validate`; a bad description stops
the render, naming the key and the fix, so that nothing changes on any
machine. ``check_version`` is shared with the orchestrations (orch.deploy):
there is one version rule in the repo, ``VERSION_RE`` below.

The functions are pure (what they must ask the machine, the master's file
list and whether apt knows a package, comes in as callables), so that
tests/unit/test_app_settings.py runs them without Salt.
"""

import copy
import json
import os
import re
import shutil
import urllib.parse

__virtualname__ = "lemp_app"

VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
GIT_REF_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._/-]{0,127}$")
DOCROOT_RE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
SOURCE_KINDS = ("path", "git", "archive", "package")
# A path inside the release (shared_paths, writable_paths, config_file):
# the docroot's characters (which may also be ".", refused for these).
REL_PATH_RE = DOCROOT_RE
PHP_EXTENSION_RE = re.compile(r"^[a-z0-9]+$")
PHP_INI_KEY_RE = re.compile(r"^[a-z_][a-z0-9_.]*$")
# Left to the platform: sessions live in Redis (salt/phpfpm), extensions are
# installed from app:php:extensions (a .so named in an ini would not be).
PHP_INI_RESERVED = ("extension", "zend_extension", "session.save_handler", "session.save_path")
# The PHP-FPM pool's own (php_admin_value, php_pool_limits): in app:php:ini
# they would restrict the CLI only, and the pool would ignore them.
PHP_INI_POOL = ("open_basedir", "disable_functions", "sys_temp_dir", "upload_tmp_dir")
PHP_FUNCTION_RE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
PHP_INI_PLAIN_RE = re.compile(r"^[A-Za-z0-9._/:+-]+$")
# A constant expression (error_reporting = E_ALL & ~E_DEPRECATED): PHP
# evaluates it only unquoted; quoted, it is a string, read as 0.
PHP_INI_EXPR_RE = re.compile(r"^[A-Z0-9_ &|~^()]*[A-Z_][A-Z0-9_ &|~^()]*$")
PHP_SIZE_RE = re.compile(r"^([0-9]+)([KMGkmg]?)$")
# PHP's own defaults (php.ini-production), used when the app sets only one of the two.
PHP_DEFAULT_SIZES = {"post_max_size": "8M", "upload_max_filesize": "2M"}
DEB_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
DEB_VERSION_RE = re.compile(r"^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*$")
SECRET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
HOST_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
DURATION_RE = re.compile(r"^([0-9]+)([smhd]?)$")
# Folders on the web node (app:root, app:uploads_dir, app:local_dir): they go
# into shell commands and unit files, so only these characters; the same rule
# as lemp_cron.SAFE_PATH_RE (tests/unit/test_app_settings.py checks it is).
SAFE_PATH_RE = re.compile(r"^/[A-Za-z0-9._/-]+$")
# In each finished release: its version and the folders linked out of it
# (JSON). nginx serves those folders as files for as long as the release is on
# disk; healthz.php reports the version.
MARKER = ".lemp-ha-release"

try:  # Salt's error shows in the render as it is; the unit tests run without Salt
    from salt.exceptions import CommandExecutionError as AppSettingsError
except ImportError:  # pragma: no cover
    AppSettingsError = ValueError


def __virtual__():
    return __virtualname__


def _is_version(value):
    return bool(VERSION_RE.match(value)) and ".." not in value


def check_version(version):
    """Return ``version`` as a string when it can name a release (a folder
    under releases/), else raise naming the rule.

    CLI Example::

        salt-call lemp_app.check_version 1.1.0
    """
    version = "" if version is None else str(version)
    if not version:
        raise AppSettingsError('app:version is missing: set it in pillar (pillar/app.sls) or pass pillar={"app": {"version": "..."}}')
    if not _is_version(version):
        raise AppSettingsError(
            f'app:version {json.dumps(version)} is invalid: 1-64 of A-Z a-z 0-9 . _ + -, starting with a letter or digit, no ".."'
        )
    return version


def check_rollback_target(target):
    """Return ``target`` (pillar app:rollback_to) when it can name a release."""
    target = "" if target is None else str(target)
    if not _is_version(target):
        raise AppSettingsError(f'app:rollback_to {json.dumps(target)} is missing or invalid: the release to switch back to')
    return target



def _source_kind(source):
    kinds = [kind for kind in SOURCE_KINDS if (source or {}).get(kind)]
    if len(kinds) != 1:
        raise AppSettingsError(f"app:source must name exactly one of {', '.join(SOURCE_KINDS)} (found: {', '.join(kinds) or 'none'})")
    return kinds[0]


def _check_package_source(package, version, apt_knows):
    """Return {name, path, version, with} of a source.package: a Debian
    package from the configured apt archive, installed at ``version``
    (default app:version; an epoch such as 1:1.39.5-1 goes here, since
    app:version names a folder) with the packages ``with`` (e.g. a theme
    that installs under ``path``), whose files under ``path`` become the
    release."""
    if not isinstance(package, dict):
        raise AppSettingsError("app:source:package needs name and path, e.g. {name: wordpress, path: /usr/share/wordpress}")
    name = str(package.get("name") or "")
    if not DEB_PACKAGE_RE.match(name):
        raise AppSettingsError(f"app:source:package:name {json.dumps(name)} is not a Debian package name (a-z 0-9 + . -)")
    path = str(package.get("path") or "")
    if not path.startswith("/") or os.path.normpath(path) != path.rstrip("/") or path == "/":
        raise AppSettingsError(
            f"app:source:package:path {json.dumps(path)} must be the absolute folder the package installs the app in, "
            "e.g. /usr/share/wordpress"
        )
    pkg_version = str(package.get("version") or version)
    if not DEB_VERSION_RE.match(pkg_version):
        raise AppSettingsError(
            f"app:source:package:version {json.dumps(pkg_version)} is not a Debian version "
            "(set app:source:package:version, e.g. 1:1.39.5-1, when app:version is not the package's version)"
        )
    extra = package.get("with") or []
    if not isinstance(extra, list) or not all(DEB_PACKAGE_RE.match(str(e)) for e in extra):
        raise AppSettingsError(
            "app:source:package:with must be a list of Debian package names installed with it "
            "(e.g. [wordpress-theme-twentytwentythree])"
        )
    for item in [name] + [str(e) for e in extra]:
        if not apt_knows(item):
            key = "name" if item == name else "with"
            raise AppSettingsError(
                f"app:source:package:{key} {item}: apt on this machine knows no such package; "
                f"check the name (apt-cache policy NAME) and the apt sources{APT_UPDATE_HINT}"
            )
    return {"name": name, "path": path.rstrip("/"), "version": pkg_version, "with": [str(e) for e in extra]}


def _check_source(kind, source, list_master, apt_knows, version):
    if kind == "path":
        src = str(source["path"])
        if not src.startswith("salt://"):
            raise AppSettingsError(f'app:source:path {json.dumps(src)} must be a salt:// path on the master')
        if not list_master(src[len("salt://"):].rstrip("/") + "/"):
            raise AppSettingsError(f"app:source:path {src} has no file on the master: nothing to deploy")
    elif kind == "git":
        git = source["git"]
        if not git.get("url") or not GIT_REF_RE.match(str(git.get("ref", ""))):
            raise AppSettingsError("app:source:git needs url and ref (a branch, tag or commit)")
    elif kind == "package":
        return _check_package_source(source["package"], version, apt_knows)
    elif not source["archive"].get("url") or not source["archive"].get("hash"):
        raise AppSettingsError("app:source:archive needs url and hash (e.g. sha256=...)")
    return None


# A machine whose apt lists were never downloaded knows no package at all.
APT_UPDATE_HINT = "; on a fresh machine with no package lists yet, run apt-get update first"


def check_path_source(source, files):
    """Raise when ``source`` (app:source) is a salt:// path with none of the
    master's ``files`` (its file list) under it; any other source passes
    (the full check is check_settings', on the web nodes). For orch.deploy's
    runner, which refuses before any machine is touched."""
    if (source or {}).get("path"):
        _check_source("path", source, lambda prefix: [f for f in files if f.startswith(prefix)], None, None)


def _list_master(prefix):
    # One answer per prefix and state run: the map is imported by several states.
    listed = __context__.setdefault("lemp_app.list_master", {})  # noqa: F821  (injected by the loader)
    if prefix not in listed:
        listed[prefix] = __salt__["cp.list_master"](prefix=prefix)  # noqa: F821  (injected by the loader)
    return listed[prefix]


def _apt_knows(package):
    """True when apt has a real (not purely virtual) package of that name:
    `apt-cache show` prints its record; Salt's pkg.installed could not
    install a virtual one by that name anyway."""
    # One answer per package and state run: the map is imported by several states.
    known = __context__.setdefault("lemp_app.apt_knows", {})  # noqa: F821  (injected by the loader)
    if package not in known:
        ret = __salt__["cmd.run_all"](  # noqa: F821  (injected by the loader)
            ["apt-cache", "show", "--no-all-versions", package],
            python_shell=False, ignore_retcode=True, output_loglevel="quiet")
        known[package] = ret["retcode"] == 0 and "\nVersion:" in "\n" + ret["stdout"]
    return known[package]


def _relative_path(value, key):
    path = "" if value is None else str(value)
    if not REL_PATH_RE.match(path) or any(part in (".", "..") for part in path.split("/")):
        raise AppSettingsError(
            f"{key} {json.dumps(path)} must be a relative path inside the release "
            '(letters, digits, . _ - and /; no "..", not absolute)'
        )
    return path


def _inside(path, parent):
    """True when ``path`` is ``parent`` or under it (both release-relative)."""
    return parent == "." or path == parent or path.startswith(parent + "/")


def _url_prefix(path, docroot):
    """The URL under which nginx serves release path ``path``, or None when
    it is outside the document root."""
    if docroot == ".":
        return f"/{path}/"
    if path.startswith(docroot + "/"):
        return f"/{path[len(docroot) + 1:]}/"
    return None


def _clean_absolute(path):
    """``path`` without its trailing slashes when it is an absolute path of
    safe characters, normalised, with no "." or ".." part and not / itself;
    else None."""
    stripped = path.rstrip("/")
    if (not SAFE_PATH_RE.match(path) or not stripped or os.path.normpath(stripped) != stripped
            or any(part in (".", "..") for part in stripped.split("/"))):
        return None
    return stripped


def _safe_path(app, key):
    """app:<key>, a folder on the web node, as an absolute path of safe
    characters without a trailing slash."""
    path = str(app.get(key) or "")
    stripped = _clean_absolute(path)
    if stripped is None:
        raise AppSettingsError(
            f"app:{key} {json.dumps(path)} must be an absolute folder of A-Z a-z 0-9 . _ - / "
            '(no spaces, no "..", not /), e.g. /srv/www'
        )
    return stripped


def _pool_user(app, php):
    """app:user and app:group run the app's migrations and own what PHP
    writes: they must be the PHP-FPM pool's, which the web requests run as."""
    pool = php.get("pool") or {}
    for key in ("user", "group"):
        want = str(pool.get(key) or "")
        have = str(app.get(key) or "")
        if want and have != want:
            raise AppSettingsError(
                f"app:{key} {json.dumps(have)} is not the PHP-FPM pool's {key} (phpfpm:lookup:pool:{key} {json.dumps(want)}): "
                f"set both to the same {key}, so that migrations, cron jobs and web requests own the same files"
            )


def marker_text(version, links):
    """The marker file of a finished release: JSON with its version and the
    folders linked out of it (path in the release, target, URL prefix)."""
    return json.dumps({"version": version,
                       "links": [{k: link[k] for k in ("path", "target", "url")} for link in links]},
                      sort_keys=True)


def parse_marker(text):
    """{version, links} from a marker's text; links is None for a marker
    written before the links were recorded (it held only the version)."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("links"), list):
        return {"version": str(data.get("version", "")), "links": data["links"]}
    return {"version": text.strip(), "links": None}


def _absolute_links(release_dir):
    """The folder links with an absolute target in an (older) release: the
    links Salt made, found without the marker's list."""
    found = []
    for folder, dirs, files in os.walk(release_dir):
        for entry in dirs + files:
            path = os.path.join(folder, entry)
            target = os.readlink(path) if os.path.islink(path) else ""
            if target.startswith("/") and os.path.isdir(path):
                found.append({"path": os.path.relpath(path, release_dir), "target": target})
    return sorted(found, key=lambda link: link["path"])


def release_links(app_dir):
    """{version: links} of every finished release under <app_dir>/releases
    on this machine, read from their markers (each link: path, target and,
    when recorded, url). A release marked before the links were recorded is
    searched for its links.

    CLI Example::

        salt-call lemp_app.release_links /srv/www/blog
    """
    releases = {}
    folder = os.path.join(str(app_dir), "releases")
    for version in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        marker = os.path.join(folder, version, MARKER)
        if not os.path.isfile(marker):
            continue
        with open(marker, encoding="utf-8", errors="replace") as handle:
            links = parse_marker(handle.read())["links"]
        releases[version] = links if links is not None else _absolute_links(os.path.join(folder, version))
    return releases


def _check_release_links(version, links, releases, docroot):
    """Refuse a change of linked folders for a release already built (its
    links are fixed when it is made); return the URL prefixes nginx serves as
    files: those of the pillar's links and of every release on disk, so that
    a folder PHP can write stays static whatever release is current (after a
    rollback, or while orch.deploy switches)."""
    wanted = sorted((link["path"], link["target"]) for link in links)
    built = releases.get(version)
    if built is not None and sorted((link["path"], link["target"]) for link in built) != wanted:
        have = ", ".join(f"{p} -> {t}" for p, t in sorted((l["path"], l["target"]) for l in built)) or "none"
        raise AppSettingsError(
            f"app:shared_paths/app:writable_paths changed for release {version}, which is built with links {have}: "
            "a release's links are fixed; deploy a new app:version (or restore these settings)"
        )
    urls = []
    for link in list(links) + [link for ver in sorted(releases) for link in releases[ver] or []]:
        url = link.get("url") if "url" in link else _url_prefix(link["path"], docroot)
        if url and url not in urls:
            urls.append(url)
    return urls


def _linked_paths(app, name, docroot, config_file):
    """shared_paths and writable_paths: each a folder of the release replaced
    by a link to a folder PHP may write, shared (on the uploads volume) or
    node-local. None may hold another, the docroot or the config file."""
    kinds = (
        ("shared_paths", f"{_safe_path(app, 'uploads_dir')}/{name}", "shared-volume"),
        ("writable_paths", f"{_safe_path(app, 'local_dir')}/{name}", "this-node"),
    )
    links = []
    for key, base, where in kinds:
        entries = app.get(key) or []
        if not isinstance(entries, list):
            raise AppSettingsError(f"app:{key} must be a list of paths inside the release, e.g. [wp-content/uploads]")
        for entry in entries:
            path = _relative_path(entry, f"app:{key} entry")
            for other in links:
                if _inside(path, other["path"]) or _inside(other["path"], path):
                    raise AppSettingsError(
                        f"app:{key} entry {json.dumps(path)} overlaps {other['key']} entry {json.dumps(other['path'])}: "
                        "each folder is linked once, and neither may hold the other"
                    )
            if _inside(docroot, path):
                raise AppSettingsError(
                    f"app:{key} entry {json.dumps(path)} holds the docroot ({docroot}): "
                    "name a folder inside it, e.g. wp-content/uploads"
                )
            if _inside(config_file, path):
                raise AppSettingsError(
                    f"app:{key} entry {json.dumps(path)} holds app:config_file ({config_file}), which Salt writes into each release"
                )
            links.append({"key": key, "path": path, "target": f"{base}/{path}", "where": where,
                          "url": _url_prefix(path, docroot)})
    return links


def _php_bytes(value, key):
    match = PHP_SIZE_RE.match(str(value))
    if not match:
        raise AppSettingsError(f"{key} {json.dumps(str(value))} is not a PHP size: a number with an optional K, M or G, e.g. 64M")
    return int(match.group(1)) * 1024 ** " KMG".index(match.group(2).upper() or " ")


def _seconds(value, key):
    match = DURATION_RE.match(str(value).strip())
    if not match:
        raise AppSettingsError(f"{key} {json.dumps(str(value))} is not a duration in seconds (e.g. 60, 60s, 2m)")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def _ini_value(key, value):
    if isinstance(value, bool):
        return "On" if value else "Off"
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise AppSettingsError(f"app:php:ini:{key} must be a scalar (a string, number or true/false), not a {type(value).__name__}")
    if PHP_INI_PLAIN_RE.match(value) or PHP_INI_EXPR_RE.match(value):
        return value
    # A backslash before the closing quote escapes it: php-fpm -t then fails.
    if any(bad in value for bad in ('"', "\\", "\n", "\r", "${")):
        raise AppSettingsError(
            f'app:php:ini:{key} {json.dumps(value)} cannot be written to an ini file: no ", \\, newline or ${{'
        )
    return f'"{value}"'


def _php(app, php):
    """The PHP extension packages to add and the ini file of app:php, and
    nginx's client_max_body_size when the app sets the PHP upload sizes."""
    settings = app.get("php") or {}
    if not isinstance(settings, dict):
        raise AppSettingsError("app:php must be a mapping with extensions (a list) and ini (a mapping)")
    version = str(php.get("version") or "")
    base = set(php.get("packages") or []) | {f"php{version}-{e}" for e in php.get("base_extensions") or []}
    packages = []
    extensions = settings.get("extensions") or []
    if not isinstance(extensions, list):
        raise AppSettingsError("app:php:extensions must be a list of names, e.g. [xml, gd, mbstring]")
    for extension in extensions:
        extension = str(extension)
        if not PHP_EXTENSION_RE.match(extension):
            raise AppSettingsError(
                f"app:php:extensions entry {json.dumps(extension)} is invalid: a-z and 0-9 only, as in php{version}-<name> (e.g. xml, gd, intl)"
            )
        package = f"php{version}-{extension}"
        if package not in base and package not in packages:
            packages.append(package)
    ini = settings.get("ini") or {}
    if not isinstance(ini, dict):
        raise AppSettingsError("app:php:ini must be a mapping of php.ini settings, e.g. {memory_limit: 256M}")
    lines = []
    for key in sorted(ini):
        if not PHP_INI_KEY_RE.match(str(key)):
            raise AppSettingsError(f"app:php:ini key {json.dumps(str(key))} is invalid: a-z 0-9 _ . starting with a letter or _")
        if key in PHP_INI_POOL:
            raise AppSettingsError(
                f"app:php:ini:{key} is the PHP-FPM pool's (php_admin_value, salt/phpfpm): add folders with "
                "app:php:open_basedir, re-enable a function with app:php:enable_functions"
            )
        if key in PHP_INI_RESERVED:
            raise AppSettingsError(
                f"app:php:ini:{key} is set by the platform: extensions come from app:php:extensions, sessions from salt/phpfpm"
            )
        lines.append(f"{key} = {_ini_value(key, ini[key])}")
    sizes = {k: str(ini.get(k, default)) for k, default in PHP_DEFAULT_SIZES.items()}
    post = _php_bytes(sizes["post_max_size"], "app:php:ini:post_max_size")
    upload = _php_bytes(sizes["upload_max_filesize"], "app:php:ini:upload_max_filesize")
    if post and upload > post:
        raise AppSettingsError(
            f"app:php:ini:upload_max_filesize ({sizes['upload_max_filesize']}) is larger than post_max_size "
            f"({sizes['post_max_size']}{'' if 'post_max_size' in ini else ', PHP default'}): PHP would drop such an upload; "
            "set app:php:ini:post_max_size at least as large"
        )
    # nginx refuses a body larger than post_max_size itself (413) instead of
    # PHP silently dropping it: one limit, set from PHP's.
    body = sizes["post_max_size"].lower() if set(PHP_DEFAULT_SIZES) & set(ini) else ""
    limit = ini.get("max_execution_time")
    terminate = _seconds(((php.get("pool") or {}).get("request_terminate_timeout") or 0),
                         "phpfpm:lookup:pool:request_terminate_timeout")
    if limit is not None:
        seconds = _seconds(limit, "app:php:ini:max_execution_time")
        if terminate and (seconds == 0 or seconds >= terminate):
            raise AppSettingsError(
                f"app:php:ini:max_execution_time ({limit}) must be below the PHP-FPM pool's request_terminate_timeout "
                f"({terminate}s), which kills the worker without PHP's error: lower it, or raise "
                "phpfpm:lookup:pool:request_terminate_timeout (docs/your-app.md says which timeouts follow)"
            )
    text = ""
    if lines:
        text = "; Written by Salt (salt/phpfpm) from pillar app:php:ini; do not edit.\n" + "\n".join(lines) + "\n"
    return packages, text, body


def _list(value, key, example):
    if value is None:
        return []
    if not isinstance(value, list):
        raise AppSettingsError(f"{key} must be a list, e.g. {example}")
    return value


def _basedir_path(value, key, entry=True):
    """An open_basedir entry (or, ``entry`` False, the single path at
    ``key``): an absolute folder or file of safe characters (no ":", PHP's
    separator), not / itself."""
    path = "" if value is None else str(value)
    stripped = _clean_absolute(path)
    if stripped is None:
        raise AppSettingsError(
            f"{key}{' entry' if entry else ''} {json.dumps(path)} must be an absolute folder or file of A-Z a-z 0-9 . _ - / "
            '(no spaces or ":", no "..", not /), e.g. /usr/share/php'
        )
    return stripped


def _function_names(value, key: str) -> list:
    """The PHP function names of list ``key``, checked, without duplicates."""
    names = []
    for name in _list(value, key, "[exec, system]"):
        name = str(name)
        if not PHP_FUNCTION_RE.match(name):
            raise AppSettingsError(f"{key} entry {json.dumps(name)} is not a PHP function "
                                   "name: a-z 0-9 _, starting with a letter or _ (e.g. shell_exec)")
        if name not in names:
            names.append(name)
    return names


def php_pool_limits(app: dict, php: dict, nginx: dict | None = None) -> dict:
    """The PHP-FPM pool's hardening (php_admin_value, salt/phpfpm's pool
    file): the platform's defaults (phpfpm:lookup:pool) with the app's
    exceptions (app:php), checked; a bad entry is refused naming its key.

    ``disable_functions``: phpfpm:lookup:pool:disable_functions without
    app:php:enable_functions, in the platform's order, comma-separated
    (empty: none). An app may re-enable only a function the platform
    disables: another name is a typo.

    ``open_basedir``: the folders and files the requests may open, in this
    order, without duplicates: the app's folder (<root>/<name>: releases and
    the `current` link; nginx passes the resolved script path), its shared
    and local folders (<uploads_dir>/<name>, <local_dir>/<name>: what
    shared_paths and writable_paths link to), the pool's tmp_dir, the CA
    file of app:database:ssl_ca, /healthz's script (nginx's
    health:script_dir), phpfpm:lookup:pool:open_basedir, then
    app:php:open_basedir.

    ``tmp_dir``: phpfpm:lookup:pool:tmp_dir (sys_temp_dir, upload_tmp_dir).
    """
    pool = php.get("pool") or {}
    settings = app.get("php") or {}
    platform = _function_names(pool.get("disable_functions"), "phpfpm:lookup:pool:disable_functions")
    enabled = []
    for name in _list(settings.get("enable_functions"), "app:php:enable_functions", "[proc_open]"):
        name = str(name)
        if name not in platform:
            raise AppSettingsError(
                f"app:php:enable_functions entry {json.dumps(name)} is not a function the platform disables "
                f"(phpfpm:lookup:pool:disable_functions: {', '.join(platform) or 'none'}): check the spelling; "
                "every other function is available already"
            )
        enabled.append(name)
    tmp_dir = _basedir_path(pool.get("tmp_dir"), "phpfpm:lookup:pool:tmp_dir", entry=False)
    name = str(app.get("name", ""))
    paths = [f"{_safe_path(app, 'root')}/{name}", f"{_safe_path(app, 'uploads_dir')}/{name}",
             f"{_safe_path(app, 'local_dir')}/{name}", tmp_dir]
    ssl_ca = (app.get("database") or {}).get("ssl_ca")
    if ssl_ca:
        paths.append(_basedir_path(ssl_ca, "app:database:ssl_ca", entry=False))
    script_dir = ((nginx or {}).get("health") or {}).get("script_dir")
    if script_dir:
        paths.append(_basedir_path(script_dir, "nginx:lookup:health:script_dir", entry=False) + "/healthz.php")
    for key, entries in (("phpfpm:lookup:pool:open_basedir", pool.get("open_basedir")),
                         ("app:php:open_basedir", settings.get("open_basedir"))):
        paths += [_basedir_path(entry, key) for entry in _list(entries, key, "[/usr/share/php]")]
    return {
        "disable_functions": ",".join(f for f in platform if f not in enabled),
        "open_basedir": list(dict.fromkeys(paths)),
        "tmp_dir": tmp_dir,
    }


def health_pool_limits(app: dict, php: dict, nginx: dict | None = None) -> dict:
    """The hardening of the ``health`` pool (phpfpm:lookup:health_pool), which
    runs only nginx's /healthz script (salt/nginx/files/healthz.php), so that
    a busy app pool never makes HAProxy's check wait.

    ``disable_functions``: the platform's list (phpfpm:lookup:pool:
    disable_functions; the app's exceptions, app:php:enable_functions, are
    for the app's code, not here), then health_pool:disable_functions.

    ``open_basedir``: exactly what the script reads: itself (nginx's
    health:script_dir), the CA file of app:database:ssl_ca (/healthz/deep's
    TLS), the app's releases (<root>/<name>/releases: the `current` link
    resolves into one, and its marker names the release), then
    health_pool:open_basedir (/etc/lemp-ha/healthz.json: the database
    account's settings).
    """
    pool = php.get("pool") or {}
    health = php.get("health_pool") or {}
    name = str(health.get("name") or "")
    if not NAME_RE.match(name) or name == str(pool.get("name") or ""):
        raise AppSettingsError(
            f"phpfpm:lookup:health_pool:name {json.dumps(name)} must be a pool name of its own (a-z 0-9 _ -, starting "
            f"with a letter), not the app pool's ({json.dumps(str(pool.get('name') or ''))}): e.g. health"
        )
    platform = _function_names(pool.get("disable_functions"), "phpfpm:lookup:pool:disable_functions")
    extra = _function_names(health.get("disable_functions"), "phpfpm:lookup:health_pool:disable_functions")
    paths = []
    script_dir = ((nginx or {}).get("health") or {}).get("script_dir")
    if script_dir:
        paths.append(_basedir_path(script_dir, "nginx:lookup:health:script_dir", entry=False) + "/healthz.php")
    ssl_ca = (app.get("database") or {}).get("ssl_ca")
    if ssl_ca:
        paths.append(_basedir_path(ssl_ca, "app:database:ssl_ca", entry=False))
    paths.append(f"{_safe_path(app, 'root')}/{app.get('name', '')}/releases")
    key = "phpfpm:lookup:health_pool:open_basedir"
    paths += [_basedir_path(entry, key) for entry in _list(health.get("open_basedir"), key, "[/etc/lemp-ha/healthz.json]")]
    return {
        "disable_functions": ",".join(dict.fromkeys(platform + extra)),
        "open_basedir": list(dict.fromkeys(paths)),
    }


def _url(value, vip):
    url = str(value or "") or f"https://{vip}"
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (parts.scheme not in ("http", "https") or not HOST_RE.match(host) or parts.username or parts.password
            or parts.query or parts.fragment or port == -1 or not re.match(r"^[A-Za-z0-9._~/%-]*$", parts.path)):
        raise AppSettingsError(
            f"app:url {json.dumps(url)} is invalid: http:// or https://, a host name or address, an optional port "
            "and path, no user, query or fragment (e.g. https://www.example.com)"
        )
    netloc = host + (f":{port}" if port else "")
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def _secret_names(app):
    names = app.get("secrets") or []
    if not isinstance(names, list):
        raise AppSettingsError("app:secrets must be a list of names; their values go in the secrets pillar at app_secrets:<name>")
    for name in names:
        if not SECRET_NAME_RE.match(str(name)):
            raise AppSettingsError(f"app:secrets entry {json.dumps(str(name))} is invalid: 1-64 of A-Z a-z 0-9 _, not starting with a digit")
    if len(set(map(str, names))) != len(names):
        raise AppSettingsError("app:secrets names a secret twice")
    return [str(name) for name in names]


def _migrate_user(database):
    """app:database:migrate_user, else <user>_migrate: the rule of
    _modules/galera.py app_accounts, which creates the account."""
    user = str(database.get("migrate_user") or f"{database.get('user', '')}_migrate")
    if user == str(database.get("user", "")):
        raise AppSettingsError(f"app:database:migrate_user {json.dumps(user)} is the runtime account "
                               "(app:database:user): the migration account must be another")
    return user


def validate(app, web_members, vip="", list_master=None, php=None, apt_knows=None, nginx=None, releases_on_disk=None,
             db_endpoint=""):
    """Check the merged ``app`` settings and return them with what follows:

    ``app`` (as given), ``version`` (a string), ``app_dir``, ``release_dir``,
    ``source_kind`` (path, git, archive or package), ``package`` (for a
    package source: name, path and version), ``db_host``
    (app:database:host, else ``db_endpoint``: the internal endpoints'
    address, topology network.internal_vip), ``db_migrate_user``
    (app:database:migrate_user, else <user>_migrate), ``first_web`` (the first web member:
    it runs the migration), ``url`` (app:url, else https://<VIP>),
    ``secret_names`` (app:secrets), ``template_app`` (``app`` without the
    database password, for the config template), ``links`` (shared_paths
    and writable_paths: path in the release, target folder, URL prefix or
    None), ``marker`` (the text of the release's marker file: version and
    links), ``static_urls`` (the URL prefixes nginx serves as files and
    never runs: the links' and those of every release on this machine),
    ``php_packages`` (extension packages beyond the base set), ``php_ini``
    (the ini file's text, empty when app:php:ini is), ``php_limits`` (the
    pool's disable_functions, open_basedir and tmp_dir:
    :func:`php_pool_limits`), ``health_limits`` (the same for the
    /healthz pool: :func:`health_pool_limits`) and
    ``client_max_body_size`` (nginx's: from the PHP upload sizes, else
    nginx's own ``client_max_body_size``).

    A release already built on this machine with other links is refused
    (its links are fixed): a new app:version is needed.

    ``web_members`` is ``topology:roles:web:members``; ``php`` the phpfpm
    map (version, packages, pool); ``nginx`` the nginx map;
    ``releases_on_disk(app_dir)`` gives {version: links} of the finished
    releases (default: :func:`release_links`); ``list_master`` lists the master's files
    under a prefix (default: ``cp.list_master``), to check that a salt://
    source has something to deploy; ``apt_knows(package)`` says whether apt
    on this machine has that package (default: ``apt-cache show``).
    """
    if not web_members:
        raise AppSettingsError("app: the topology (pillar topology:roles:web:members) has no machine with role web: nothing to deploy to")
    php = php or {"version": "8.2", "packages": [], "pool": {}, "health_pool": {"name": "health"}}
    apt_knows = apt_knows or _apt_knows
    name = str(app.get("name", ""))
    if not NAME_RE.match(name):
        raise AppSettingsError(f'app:name {json.dumps(name)} is invalid: 1-32 of a-z 0-9 _ -, starting with a letter')
    root = _safe_path(app, "root")
    _pool_user(app, php)
    version = check_version(app.get("version"))
    source = app.get("source") or {}
    kind = _source_kind(source)
    package = _check_source(kind, source, list_master or _list_master, apt_knows, version)
    docroot = str(app.get("docroot", ""))
    if not DOCROOT_RE.match(docroot) or ".." in docroot:
        raise AppSettingsError(f'app:docroot {json.dumps(docroot)} must be a relative path inside the release')
    docroot = docroot.rstrip("/")
    config_file = _relative_path(app.get("config_file"), "app:config_file")
    links = _linked_paths(app, name, docroot, config_file)
    php_packages, php_ini, body = _php(app, php)
    php_limits = php_pool_limits(app, php, nginx)
    health_limits = health_pool_limits(app, php, nginx)
    for package_name in php_packages:
        if not apt_knows(package_name):
            raise AppSettingsError(
                f"app:php:extensions: apt on this machine knows no package {package_name}; "
                f"check the name (apt-cache search php{php.get('version')}-) and the apt sources{APT_UPDATE_HINT}"
            )
    db_host = (app.get("database") or {}).get("host") or db_endpoint or vip
    if db_endpoint and vip and db_host == vip and db_endpoint != vip:
        raise AppSettingsError(f"app:database:host {vip} is the public VIP, which serves HTTP and HTTPS only: "
                               f"the database endpoint is on the internal VIP, {db_endpoint} "
                               "(topology network.internal_vip; pillar/app.sls)")
    template_app = copy.deepcopy(app)
    (template_app.get("database") or {}).pop("password", None)
    # the migration account's password reaches app:migrate only (salt/webapp/migrate.sls)
    (template_app.get("database") or {}).pop("migrate_password", None)
    # a rotation's old value (orch.rotate_secret) reaches no template either
    (template_app.get("database") or {}).pop("password_previous", None)
    app_dir = f"{root}/{name}"
    releases = (releases_on_disk or release_links)(app_dir)
    static_urls = _check_release_links(version, links, releases, docroot)
    return {
        "app": app,
        "version": version,
        "app_dir": app_dir,
        "release_dir": f"{app_dir}/releases/{version}",
        "source_kind": kind,
        "package": package,
        "db_host": db_host,
        "db_migrate_user": _migrate_user(app.get("database") or {}),
        "first_web": web_members[0]["name"],
        "url": _url(app.get("url"), vip),
        "secret_names": _secret_names(app),
        "template_app": template_app,
        "links": links,
        "marker": marker_text(version, links),
        "static_urls": static_urls,
        "php_packages": php_packages,
        "php_ini": php_ini,
        "php_limits": php_limits,
        "health_limits": health_limits,
        # one limit: PHP's post_max_size when the app sets its upload sizes
        "client_max_body_size": body or str((nginx or {}).get("client_max_body_size") or ""),
    }


def check_not_served(name, sites_dir="/etc/nginx/sites-enabled"):
    """Refuse to clean app ``name`` while nginx serves it (its site file is
    enabled): webapp.clean_renamed calls this when it renders, so a typo in
    the old name stops before anything is removed.

    CLI Example::

        salt-call lemp_app.check_not_served oldblog
    """
    site = os.path.join(str(sites_dir), f"{name}.conf")
    if os.path.lexists(site):
        raise AppSettingsError(
            f"webapp.clean_renamed: app {name} is still served ({site}): converge the new app:name first "
            """(orch.site), then clean the old one with pillar='{"app": {"name": "OLD"}}'"""
        )
    return f"app {name} is not served by nginx here"


def app_secrets(names, require=None):
    """The app's secrets, {name: value}, read from the secrets pillar at
    ``app_secrets:<name>`` (not under ``app:``, whose list of names would
    otherwise merge with a mapping of values). A missing one stops the render
    naming its key and docs/secrets.md (lemp_secret.require).

    CLI Example::

        salt-call lemp_app.app_secrets '[wp_auth_key]'
    """
    require = require or __salt__["lemp_secret.require"]  # noqa: F821  (injected by the loader)
    return {str(name): require(f"app_secrets:{name}") for name in names or []}


def copy_release(src, dest, exclude=()):
    """Copy the folder ``src`` (a package's files) to ``dest`` as a release:
    symlinks dereferenced (a packaged app links into /etc and /var/lib; a
    release must hold its own files), top-level entries in ``exclude`` left
    out (the config file, which Salt writes), and what is not world-readable
    left out too (reported as ``skipped``): the copy is readable by all,
    and a 0640 file reached through a link into /etc is a secret. The copy is made next to
    ``dest`` and renamed into place, so ``dest`` is never half-copied; a
    ``dest`` left by an earlier failed run is replaced. A dangling symlink
    fails the copy, naming it.

    CLI Example::

        salt-call lemp_app.copy_release /usr/share/wordpress /srv/www/blog/releases/6.1.1 '[wp-config.php]'
    """
    src, dest = str(src).rstrip("/"), str(dest).rstrip("/")
    if not os.path.isdir(src):
        raise AppSettingsError(f"{src} is not a folder: check app:source:package:path against the package's files (dpkg -L NAME)")
    partial = dest + ".partial"
    if os.path.lexists(partial):
        shutil.rmtree(partial)
    skip = {os.path.normpath(str(path)) for path in exclude or ()}

    skipped = []

    def ignore(folder, names):
        here = os.path.relpath(folder, src)
        left_out = []
        for n in names:
            rel = os.path.normpath(os.path.join(here, n))
            if rel in skip:
                left_out.append(n)
            elif not _world_readable(os.path.join(folder, n)):
                skipped.append(rel)
                left_out.append(n)
        return left_out

    try:
        shutil.copytree(src, partial, symlinks=False, ignore=ignore)
    except shutil.Error as exc:
        shutil.rmtree(partial, ignore_errors=True)
        broken = sorted({str(err[0]) for err in exc.args[0]})
        raise AppSettingsError(f"cannot copy {src} into the release: unreadable or dangling {', '.join(broken)}") from None
    for folder, dirs, files in os.walk(partial):
        for entry in dirs + files:
            path = os.path.join(folder, entry)
            os.chmod(path, os.stat(path).st_mode & 0o755 | (0o755 if entry in dirs else 0o644))
    os.chmod(partial, 0o755)
    if os.path.lexists(dest):
        shutil.rmtree(dest)
    os.rename(partial, dest)
    return {"copied": src, "release": dest, "excluded": sorted(skip), "skipped": sorted(skipped)}


def _world_readable(path):
    """True when anyone may read ``path`` (a folder: list and enter it),
    links followed; a dangling link counts as readable, so that the copy
    fails naming it."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return True
    need = 0o005 if os.path.isdir(path) else 0o004
    return mode & need == need
