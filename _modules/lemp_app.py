"""
Check the web application's settings (pillar ``app:``) and derive what the
states need from them.

``salt/webapp/map.jinja`` merges ``salt/webapp/defaults.yaml`` with pillar
``app:`` and hands the result to :func:`validate`; a bad description stops
the render, naming the key and the fix, so that nothing changes on any
machine. ``check_version`` is shared with the orchestrations (orch.deploy):
there is one version rule in the repo, ``VERSION_RE`` below.

The functions are pure (the salt:// check takes the master's file list as a
callable), so that tests/unit/test_app_settings.py runs them without Salt.
"""

import json
import re

__virtualname__ = "lemp_app"

VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
GIT_REF_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._/-]{0,127}$")
DOCROOT_RE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
SOURCE_KINDS = ("path", "git", "archive")

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
        raise AppSettingsError(f"app:source must name exactly one of path, git, archive (found: {', '.join(kinds) or 'none'})")
    return kinds[0]


def _check_source(kind, source, list_master):
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
    elif not source["archive"].get("url") or not source["archive"].get("hash"):
        raise AppSettingsError("app:source:archive needs url and hash (e.g. sha256=...)")


def _list_master(prefix):
    return __salt__["cp.list_master"](prefix=prefix)  # noqa: F821  (injected by the loader)


def validate(app, web_members, vip="", list_master=None):
    """Check the merged ``app`` settings and return them with what follows:

    ``app`` (as given), ``version`` (a string), ``app_dir``, ``release_dir``,
    ``source_kind`` (path, git or archive), ``db_host`` (app:database:host,
    else the VIP) and ``first_web`` (the first web member: it runs the
    migration).

    ``web_members`` is ``topology:roles:web:members``; ``list_master`` lists
    the master's files under a prefix (default: ``cp.list_master``), to
    check that a salt:// source has something to deploy.
    """
    if not web_members:
        raise AppSettingsError("app: the topology (pillar topology:roles:web:members) has no machine with role web: nothing to deploy to")
    name = str(app.get("name", ""))
    if not NAME_RE.match(name):
        raise AppSettingsError(f'app:name {json.dumps(name)} is invalid: 1-32 of a-z 0-9 _ -, starting with a letter')
    version = check_version(app.get("version"))
    source = app.get("source") or {}
    kind = _source_kind(source)
    _check_source(kind, source, list_master or _list_master)
    docroot = str(app.get("docroot", ""))
    if not DOCROOT_RE.match(docroot) or ".." in docroot:
        raise AppSettingsError(f'app:docroot {json.dumps(docroot)} must be a relative path inside the release')
    app_dir = f"{app['root']}/{name}"
    return {
        "app": app,
        "version": version,
        "app_dir": app_dir,
        "release_dir": f"{app_dir}/releases/{version}",
        "source_kind": kind,
        "db_host": (app.get("database") or {}).get("host") or vip,
        "first_web": web_members[0]["name"],
    }
