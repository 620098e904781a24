"""
Does a service run the configuration that is on disk? (issue #9, item 4)

A ``watch`` reload only fires in the run that changed a file. When that run
fails after writing the file (``nginx -t`` broken by another file, a later
requisite), the next run finds the file unchanged, fires nothing, and the
service keeps running the old configuration while Salt reports success.

So the state ``lemp_service.config_loaded`` compares the content instead of
the run's changes: it keeps the sha256 of the configuration the service last
loaded in a stamp file (``/var/lib/lemp-ha/loaded/<service>.sha256``, root
only) and applies the configuration when the content on disk differs.

The rules (``decide``, a pure function):

1. the stamp equals the digest of the files: ``current``, nothing to do;
2. the service is not running, or what runs is a stand-in that someone else
   stops and starts (``stand_in``: the standalone server Debian's MariaDB
   package starts on first install, which the Galera orchestration replaces
   by a cluster node): ``record``. Its next start (service.running, or the
   orchestration for Galera) loads the files as they are, so only the stamp
   is written. Without it, orch.site's first run reported a restart pending
   on a fresh database node and its second run recorded (a change);
3. the service (re)started after the newest change of its files (mtime of
   the files, their symlinks and directories): ``record``. It read them as
   they are now; this keeps a fresh machine, whose services were just
   started, from being bounced on its first run;
   or the service itself says it already runs every setting of the files
   (``applied_fun``: Redis answers CONFIG GET with the files' values, e.g.
   a setting applied live with CONFIG SET, or the same values moved to
   another file): ``record``, no restart;
4. otherwise ``apply``: check, reload/restart, write the stamp. Or
   ``pending`` when the action is ``none`` (Galera: a highstate never restarts
   it, see salt/galera/config.sls), which only reports.

When the check command fails, nothing is reloaded and the stamp is left as it
was: the next successful run applies the configuration.

A successful ``systemctl reload`` is not always proof: HAProxy's master
re-reads its files after the command returned, and a failure there ("Loading
failure!") keeps the old configuration running. The state's ``confirm_fun``
(HAProxy: ``lemp_haproxy.reload_confirmed``) asks the service after the
action; unless it confirms, the state fails and the stamp is left as it was,
so the next run applies the configuration again.

"Started" is systemd's InactiveExitTimestamp (the moment the unit began to
start, before it read its files), so a file written while the service was
starting counts as not loaded: the doubt is resolved by a reload.
"""

import glob
import hashlib
import os
import re
import time

try:
    from salt.exceptions import CommandExecutionError
except ImportError:  # pragma: no cover - tests without salt

    class CommandExecutionError(Exception):
        pass


__virtualname__ = "lemp_service"

STAMP_DIR = "/var/lib/lemp-ha/loaded"
ACTIONS = ("reload", "restart", "none")
# ActiveState values in which the service holds a loaded configuration.
RUNNING_STATES = ("active", "reloading", "activating", "deactivating")
_GLOB_CHARS = re.compile(r"[*?\[]")
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9@._:-]+$")


def __virtual__():
    return __virtualname__


# -- the configuration's content: pure over the file system -----------------------


def _entries(paths):
    """(path, kind) of every file system entry under ``paths``, sorted, each
    once. A path may be a file, a directory (walked, symlinked files are read
    through the link) or a glob; an explicit path that does not exist is an
    entry of kind ``absent`` (a removed file is a change too)."""
    if isinstance(paths, str):
        paths = [paths]
    found = {}
    for path in paths:
        if _GLOB_CHARS.search(path):
            candidates = glob.glob(path)
        else:
            candidates = [path]
        for top in candidates:
            if os.path.isdir(top) and not os.path.islink(top):
                found[top] = "dir"
                for root, dirs, files in os.walk(top):
                    dirs.sort()
                    for name in dirs:
                        full = os.path.join(root, name)
                        # os.walk does not descend into a symlinked directory.
                        found[full] = "link" if os.path.islink(full) else "dir"
                    for name in files:
                        found[os.path.join(root, name)] = "file"
            elif os.path.islink(top) and os.path.isdir(top):
                found[top] = "link"
            elif os.path.lexists(top):
                found[top] = "file"
            elif not _GLOB_CHARS.search(path):
                found[top] = "absent"
    return sorted(found.items())


def config_digest(paths):
    """The sha256 of the configuration under ``paths`` (names and contents)
    and the newest mtime among its files and directories (the file's and the
    symlink's own, whichever is newer; None when nothing exists).

    CLI Example::

        salt web1 lemp_service.config_digest '["/etc/nginx"]'
    """
    total = hashlib.sha256()
    newest = None
    count = 0
    for path, kind in _entries(paths):
        total.update(path.encode() + b"\0" + kind.encode() + b"\0")
        if kind == "absent":
            continue
        stats = [os.lstat(path)]
        if kind == "link" or os.path.islink(path):
            target = os.readlink(path)
            total.update(b"-> " + target.encode() + b"\0")
        if kind == "file":
            try:
                stats.append(os.stat(path))
                with open(path, "rb") as handle:
                    total.update(hashlib.sha256(handle.read()).digest())
                count += 1
            except FileNotFoundError:
                total.update(b"dangling\0")
            except OSError as exc:
                raise CommandExecutionError(f"lemp_service: cannot read {path} ({exc}); the state runs as root")
        mtime = max(s.st_mtime for s in stats)
        newest = mtime if newest is None else max(newest, mtime)
    return {"digest": total.hexdigest(), "newest_mtime": newest, "files": count}


# -- systemd: parse what it says ---------------------------------------------------


def parse_systemctl_show(text):
    """``systemctl show -p A -p B`` (``KEY=value`` lines) as a dict."""
    props = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props[key.strip()] = value.strip()
    return props


def started_at(props, now_real, now_mono):
    """When the unit last began to start, as a UNIX time, from its
    InactiveExitTimestampMonotonic (microseconds on CLOCK_MONOTONIC, exact,
    unlike the second-rounded wall-clock property); None when it never started."""
    try:
        mono_usec = int(props.get("InactiveExitTimestampMonotonic") or 0)
    except ValueError:
        return None
    if mono_usec <= 0:
        return None
    return now_real - (now_mono - mono_usec / 1e6)


def decide(digest, stamp, running, started, newest_mtime, action="reload", stand_in=False, applied=False):
    """What to do, and why: (``current`` | ``record`` | ``apply`` |
    ``pending``, reason). The rules are in the module docstring."""
    if action not in ACTIONS:
        raise CommandExecutionError(f"lemp_service: action {action!r} is not one of {', '.join(ACTIONS)}")
    if stamp == digest:
        return "current", "runs the configuration on disk"
    if not running:
        return "record", "is not running: its next start loads the configuration on disk"
    if stand_in:
        return "record", ("runs a stand-in that the orchestration replaces (first install): the start that "
                          "replaces it loads the configuration on disk")
    if started is not None and newest_mtime is not None and started > newest_mtime:
        return "record", "started after the last change of its configuration"
    if applied:
        return "record", "already runs every setting of the configuration on disk (applied live)"
    why = ("has no record of the configuration it loaded and started before its last change"
           if stamp is None else "loaded a configuration that differs from the one on disk")
    return ("pending" if action == "none" else "apply"), why


# -- the stamp ---------------------------------------------------------------------


def _stamp_path(name, stamp_dir=None):
    if not _SERVICE_NAME.match(name or ""):
        raise CommandExecutionError(f"lemp_service: {name!r} is not a systemd service name")
    return os.path.join(stamp_dir or STAMP_DIR, f"{name}.sha256")


def read_stamp(name, stamp_dir=None):
    """The digest recorded for ``name``, or None."""
    try:
        with open(_stamp_path(name, stamp_dir), encoding="ascii") as handle:
            return handle.read().split()[0]
    except (FileNotFoundError, IndexError):
        return None


def write_stamp(name, digest, stamp_dir=None):
    """Record ``digest`` as what ``name`` has loaded (atomic rename; root only)."""
    path = _stamp_path(name, stamp_dir)
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(digest + "\n")
    os.replace(tmp, path)
    return path


# -- facts and actions on the machine ------------------------------------------------


def _run(cmd):
    return __salt__["cmd.run_all"](cmd, python_shell=False, ignore_retcode=True)  # noqa: F821


def service_facts(name):
    """{running, started_at} of a systemd service."""
    now_real, now_mono = time.time(), time.monotonic()
    ret = _run(["systemctl", "show", "-p", "ActiveState", "-p", "InactiveExitTimestampMonotonic", name])
    if ret["retcode"] != 0:
        raise CommandExecutionError(f"lemp_service: systemctl show {name} failed: {ret.get('stderr', '')}")
    props = parse_systemctl_show(ret["stdout"])
    running = props.get("ActiveState") in RUNNING_STATES
    return {"running": running, "started_at": started_at(props, now_real, now_mono) if running else None,
            "active_state": props.get("ActiveState", "")}


def status(name, paths, action="reload", stamp_dir=None, stand_in_fun=None, applied_fun=None,
           applied_kwargs=None):
    """Every fact and the decision for service ``name`` and its ``paths``.
    ``stand_in_fun``: a Salt function (no argument) that returns True when
    what runs is a stand-in that the orchestration replaces (rule 2), e.g.
    ``galera.is_first_install_server``. ``applied_fun`` (with
    ``applied_kwargs``): a Salt function that returns True when the running
    service already has every setting of the files (rule 3), e.g.
    ``lemp_redis.runs_settings``.

    CLI Example::

        salt -L db1,db2 lemp_service.status mariadb '["/etc/mysql"]' action=none \
            stand_in_fun=galera.is_first_install_server
    """
    facts = config_digest(paths)
    facts.update(service_facts(name))
    facts["stamp"] = read_stamp(name, stamp_dir)
    facts["stand_in"] = False
    if stand_in_fun and facts["running"] and facts["stamp"] != facts["digest"]:
        if stand_in_fun not in __salt__:  # noqa: F821
            raise CommandExecutionError(f"lemp_service: stand_in_fun {stand_in_fun} is not a loaded Salt function "
                                        "(run saltutil.sync_modules, or fix the state's stand_in_fun)")
        facts["stand_in"] = bool(__salt__[stand_in_fun]())  # noqa: F821
    facts["applied"] = False
    if applied_fun and facts["running"] and facts["stamp"] != facts["digest"]:
        if applied_fun not in __salt__:  # noqa: F821
            raise CommandExecutionError(f"lemp_service: applied_fun {applied_fun} is not a loaded Salt function "
                                        "(run saltutil.sync_modules, or fix the state's applied_fun)")
        facts["applied"] = __salt__[applied_fun](**(applied_kwargs or {})) is True  # noqa: F821
    facts["decision"], facts["reason"] = decide(
        facts["digest"], facts["stamp"], facts["running"], facts["started_at"], facts["newest_mtime"], action,
        stand_in=facts["stand_in"], applied=facts["applied"])
    return facts


def _output(ret):
    return "\n".join(part for part in (ret.get("stdout"), ret.get("stderr")) if part)


def check(verify_cmd):
    """Run the validation command: (ok, its output)."""
    ret = _run(verify_cmd)
    return ret["retcode"] == 0, _output(ret)


def apply(name, action):
    """``systemctl reload|restart NAME``; then the unit must still be active.
    Returns (ok, what systemd said)."""
    if action not in ("reload", "restart"):
        raise CommandExecutionError(f"lemp_service: cannot apply with action {action!r}")
    ret = _run(["systemctl", action, name])
    if ret["retcode"] != 0:
        return False, _output(ret)
    state = service_facts(name)["active_state"]
    if state not in RUNNING_STATES:
        return False, f"{name} is {state} after systemctl {action}"
    return True, ""
