"""
Which release of the app a highstate makes current: the one pillar/app.sls
names, or the one orch.deploy / orch.rollback last made current.

orch.deploy and orch.rollback end by recording, on the master, for the app
name: the release they made current (``version``, ``source``), a
fingerprint of the version AND source pillar/app.sls named at that time
(``base``, :func:`fingerprint`), and the source of every version seen
(``history``), in a JSON file outside the repository (``RECORD_PATH``, or
the master option ``lemp_ha_deployed_record``). pillar/deployed.sls serves
it as pillar ``app_deployed`` to the web nodes and the master;
salt/webapp/map.jinja hands it to :func:`effective_app` with the merged app
settings:

* the record wins while pillar/app.sls still names its ``base`` (same
  version, same source): nobody has edited the pillar since that deploy, so
  a highstate must not switch back;
* the pillar wins once its version or source differs from ``base``: someone
  changed pillar/app.sls (to deploy by highstate), or orch.deploy passes
  ``app:version`` on the command line;
* a record is spent once the pillar has moved away from its ``base``: the
  first step of orch.site (runner lemp_web.spend, :func:`to_spend`,
  :func:`spent_record`) drops its version, so that reverting pillar/app.sls
  to that old base later runs the pillar's release, not the recorded one.
  The same step spends the entries of other app names: renaming the app
  back does not bring an old record back either;
* records are keyed by app name, so a renamed app starts from its pillar.

``history`` outlives spending: orch.rollback records the target's own
source from it (:func:`source_of`), not the pillar's.

The functions are pure but for :func:`read_record` and :func:`write_record`
(tests/unit/test_release_record.py).
"""

import copy
import hashlib
import json
import os
import tempfile

__virtualname__ = "lemp_release"

RECORD_PATH = "/var/lib/lemp-ha/deployed.json"
OPTION = "lemp_ha_deployed_record"  # master option naming another path
HISTORY_SIZE = 20  # versions whose source the record remembers (for orch.rollback)

try:  # Salt's error shows in the render as it is; the unit tests run without Salt
    from salt.exceptions import CommandExecutionError as RecordError
except ImportError:  # pragma: no cover
    RecordError = ValueError


def __virtual__():
    return __virtualname__


def _usable(entry):
    return isinstance(entry, dict) and entry.get("version") not in (None, "")


def fingerprint(version, source):
    """What pillar/app.sls names, as the record keeps it: the version in
    clear (for a human reading the record) and a digest of the source, so
    that a source edited under the same version is a change too."""
    text = json.dumps(source or {}, sort_keys=True, separators=(",", ":"), default=str)
    return f"{'' if version is None else version}#{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def base_matches(base, app):
    """Whether ``app`` (merged settings) still names the record's ``base``.
    A ``base`` without ``#`` is a version alone (records written before
    the fingerprint): compared with the version only."""
    base = "" if base is None else str(base)
    if "#" not in base:
        return base == str(app.get("version", ""))
    return base == fingerprint(app.get("version", ""), app.get("source"))


def effective_app(app, deployed):
    """``app`` (the merged settings) with ``version`` and ``source`` taken
    from ``deployed[app.name]`` (pillar ``app_deployed``) while the pillar
    still names that record's ``base`` (version and source); else ``app``
    unchanged. A copy: ``app`` is not modified.

    CLI Example::

        salt-call lemp_release.effective_app '{"name": "app", "version": "1.0.0"}' \\
            '{"app": {"version": "1.1.0", "source": {"path": "salt://app"}, "base": "1.0.0"}}'
    """
    app = copy.deepcopy(app or {})
    record = (deployed or {}).get(str(app.get("name", ""))) if isinstance(deployed, dict) else None
    if not _usable(record) or not base_matches(record.get("base"), app):
        return app
    app["version"] = str(record["version"])
    if record.get("source"):
        app["source"] = copy.deepcopy(record["source"])
    return app


def _history(entry):
    items = (entry or {}).get("history") if isinstance(entry, dict) else None
    return [dict(item) for item in items or [] if isinstance(item, dict) and item.get("version") not in (None, "")]


def updated_record(record, app_name, version, source, base, known=()):
    """``record`` (every app's entry) with ``app_name``'s entry replaced.
    Its ``history`` keeps the source of each version seen: those of the
    entry before, then ``known`` ([{version, source}]: the pillar's own at
    that time), then ``version``'s, the latest last, at most HISTORY_SIZE."""
    out = copy.deepcopy(record or {})
    history = _history(out.get(str(app_name)))
    for item in list(known or []) + [{"version": version, "source": source}]:
        if not isinstance(item, dict) or item.get("version") in (None, ""):
            continue
        history = [old for old in history if old["version"] != str(item["version"])]
        history.append({"version": str(item["version"]), "source": copy.deepcopy(item.get("source") or {})})
    out[str(app_name)] = {"version": str(version), "source": copy.deepcopy(source or {}),
                          "base": "" if base is None else str(base), "history": history[-HISTORY_SIZE:]}
    return out


def source_of(record, app_name, version):
    """The source ``version`` of ``app_name`` was deployed from, as the
    record remembers it; None when it does not know."""
    entry = (record or {}).get(str(app_name)) if isinstance(record, dict) else None
    found = [item for item in _history(entry) if item["version"] == str(version)]
    if found:
        return copy.deepcopy(found[-1].get("source") or {})
    if _usable(entry) and str(entry["version"]) == str(version) and entry.get("source"):
        return copy.deepcopy(entry["source"])
    return None


def to_spend(record, app_name, app):
    """{name: base} of the entries of ``record`` a highstate must no longer
    follow: ``app_name``'s when ``app`` (pillar/app.sls as compiled now)
    no longer names its ``base``, and every other app name's (the app was
    renamed). Entries already spent (no version) are not listed."""
    spend = {}
    for name, entry in sorted((record or {}).items()) if isinstance(record, dict) else []:
        if _usable(entry) and (name != str(app_name) or not base_matches(entry.get("base"), app or {})):
            spend[name] = "" if entry.get("base") is None else str(entry["base"])
    return spend


def spent_record(record, spend):
    """``record`` with the entries of ``spend`` ({name: base}, from
    :func:`to_spend`) spent: their version, source and base removed, their
    history kept. An entry whose base changed since (a deploy recorded it
    meanwhile) is left as it is."""
    out = copy.deepcopy(record or {})
    for name, base in (spend or {}).items():
        entry = out.get(name)
        if _usable(entry) and str(entry.get("base", "")) == str(base):
            out[name] = {"history": _history(entry)}
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
