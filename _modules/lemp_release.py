"""
Which release of the app a highstate makes current: the one pillar/app.sls
names, or the one orch.deploy / orch.rollback last made current.

orch.deploy and orch.rollback end by recording, on the master, for the app
name: the release they made current (``version``, ``source``) and the
version pillar/app.sls named at that time (``base``), in a JSON file outside
the repository (``RECORD_PATH``, or the master option
``lemp_ha_deployed_record``). pillar/deployed.sls serves it as pillar
``app_deployed`` to the web nodes and the master; salt/webapp/map.jinja
hands it to :func:`effective_app` with the merged app settings:

* the record wins while pillar/app.sls still names its ``base``: nobody has
  edited the pillar since that deploy, so a highstate must not switch back;
* the pillar wins once its version differs from ``base``: someone changed
  pillar/app.sls (to deploy by highstate), or orch.deploy passes
  ``app:version`` on the command line;
* records are keyed by app name, so a renamed app starts from its pillar.

The functions are pure but for :func:`read_record` and :func:`write_record`
(tests/unit/test_release_record.py).
"""

import copy
import json
import os
import tempfile

__virtualname__ = "lemp_release"

RECORD_PATH = "/var/lib/lemp-ha/deployed.json"
OPTION = "lemp_ha_deployed_record"  # master option naming another path

try:  # Salt's error shows in the render as it is; the unit tests run without Salt
    from salt.exceptions import CommandExecutionError as RecordError
except ImportError:  # pragma: no cover
    RecordError = ValueError


def __virtual__():
    return __virtualname__


def _usable(entry):
    return isinstance(entry, dict) and entry.get("version") not in (None, "")


def effective_app(app, deployed):
    """``app`` (the merged settings) with ``version`` and ``source`` taken
    from ``deployed[app.name]`` (pillar ``app_deployed``) while the pillar's
    version equals that record's ``base``; else ``app`` unchanged. A copy:
    ``app`` is not modified.

    CLI Example::

        salt-call lemp_release.effective_app '{"name": "app", "version": "1.0.0"}' \\
            '{"app": {"version": "1.1.0", "source": {"path": "salt://app"}, "base": "1.0.0"}}'
    """
    app = copy.deepcopy(app or {})
    record = (deployed or {}).get(str(app.get("name", ""))) if isinstance(deployed, dict) else None
    if not _usable(record) or str(record.get("base", "")) != str(app.get("version", "")):
        return app
    app["version"] = str(record["version"])
    if record.get("source"):
        app["source"] = copy.deepcopy(record["source"])
    return app


def updated_record(record, app_name, version, source, base):
    """``record`` (every app's entry) with ``app_name``'s entry replaced."""
    out = copy.deepcopy(record or {})
    out[str(app_name)] = {"version": str(version), "source": copy.deepcopy(source or {}),
                          "base": "" if base is None else str(base)}
    return out


def read_record(path=RECORD_PATH):
    """The record at ``path``; {} when there is none yet. A file that is not
    a JSON object stops the pillar naming it: serving nothing would switch
    the web nodes back to the pillar's release."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RecordError(f"{path} (the deployed-release record of orch.deploy) is unreadable: {exc}; "
                          "fix or delete it (the web nodes then run the version of pillar/app.sls)") from exc
    if not isinstance(data, dict):
        raise RecordError(f"{path} (the deployed-release record of orch.deploy) is not a JSON object; "
                          "fix or delete it (the web nodes then run the version of pillar/app.sls)")
    return data


def write_record(record, path=RECORD_PATH):
    """Write ``record`` to ``path`` atomically (a temporary file renamed over
    it), root-only: a reader sees the old record or the new one, never half."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".deployed.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
