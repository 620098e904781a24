"""
Backup operator commands, run on the master (docs/backups.md, issue #11):

    salt-run lemp_backup.list                  the backups on arb1: age, restorable or not, the gaps,
                                               and the binlog archive's state
    salt-run lemp_backup.now kind=full         take a backup now (full or incremental) and wait for it

The store and its tool live on the machine of the role ``backup`` (arb1):
these functions ask its minion to run ``lemp-backup`` (salt/backup), and
hand what it read to the pure functions of ``_modules/lemp_backup.py``
(``catalogue``, ``listing``). ``summary`` is pure and unit-tested
(tests/unit/test_backup_job.py).

Still to come (issue #11): ``drill_now`` with the restore drill, and
``orch.restore``, which will call ``lemp_backup.plan`` on the same answer.
"""

import datetime
import importlib.util
import json
import os

_spec = importlib.util.spec_from_file_location(
    "lemp_runner_steps", os.path.join(os.path.dirname(os.path.abspath(__file__)), "_steps.py"))
_steps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_steps)
backup = _steps.repo_module("lemp_backup")

COMMAND = "/usr/local/sbin/lemp-backup"
# A full backup of a large database takes a while; the runner waits for it.
BACKUP_TIMEOUT = 6 * 3600

__virtualname__ = "lemp_backup"


def __virtual__():
    return __virtualname__


# -- pure functions (unit-tested) -------------------------------------------


def store_machine(topology):
    """The machine holding the backup store: the role ``backup``'s member
    (the first by name when there are several). Raises naming the fix."""
    members = _steps.role(topology, "backup")
    if not members:
        raise ValueError("no machine has the role backup (pillar/topology.yaml): "
                         "give it to one machine (arb1 in the lab) and run orch.site")
    return members[0]


def check_kind(kind):
    if kind not in backup.KINDS:
        raise ValueError(f"kind={kind!r}: give kind=full or kind=incremental")
    return kind


def summary(answer, now=None):
    """What ``list`` shows, from ``lemp-backup list``'s JSON: the catalogue
    (lemp_backup.catalogue), one line per backup (lemp_backup.listing), the
    newest restorable backup, and the archive's state.

    Returns {lines, backups: {id: {kind, node, finished, restorable}},
    newest_restorable, invalid, archive}."""
    now = now or answer.get("now") or datetime.datetime.now(datetime.timezone.utc)
    cat = backup.catalogue(answer.get("manifests") or [], answer.get("drills") or {})
    lines = backup.listing(cat, now)
    restorable = {bid for chain in cat["chains"] for bid in chain["restorable"]}
    chain = backup.newest_restorable_chain(cat)
    archive = (answer.get("status") or {}).get("archive") or {}
    if not cat["backups"]:
        lines.insert(0, "no backup yet: salt-run lemp_backup.now kind=full")
    if archive:
        lines.append(f"binlog archive: following {archive.get('node')} of cluster {archive.get('cluster')}, "
                     f"complete until {archive.get('complete_until') or 'unknown'}"
                     + (f" ({archive['lag_seconds']:.0f} s ago)" if archive.get("lag_seconds") is not None else "")
                     + (f"; GAP after seq {archive['gap']['after_seq']}" if archive.get("gap") else ""))
    else:
        lines.append("binlog archive: no state yet (is lemp-binlog-archive running on the store machine?)")
    return {
        "lines": lines,
        "backups": {bid: {"kind": m["kind"], "node": m["node"], "finished": m["finished"], "size": m["size"],
                          "restorable": bid in restorable} for bid, m in cat["backups"].items()},
        "newest_restorable": chain["restorable"][-1] if chain else None,
        "invalid": cat["invalid"],
        "archive": archive,
    }


# -- runner functions ---------------------------------------------------------


def _topology():
    spec = importlib.util.spec_from_file_location(
        "lemp_backup_runner_derived", os.path.join(_steps.REPO, "pillar", "_derived.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.derived_topology()


def _run(machine, args, timeout=120):
    answers = _steps.ask(__opts__, machine, "cmd.run_all", timeout=timeout,  # noqa: F821
                         arg=[[COMMAND, *args]], kwarg={"python_shell": False})
    ret = answers.get(machine)
    if not isinstance(ret, dict):
        raise RuntimeError(f"{machine} did not answer (is its minion up?): {ret!r}")
    return ret


def list(**kwargs):  # noqa: A001  (the operator command is `lemp_backup.list`)
    """The backups on the store machine, oldest first, with whether each can
    be restored, and the state of the binlog archive."""
    machine = store_machine(_topology())
    ret = _run(machine, ["list"])
    if ret.get("retcode") != 0:
        return {"error": f"lemp-backup list failed on {machine}: {ret.get('stderr') or ret.get('stdout')}"}
    return summary(json.loads(ret["stdout"]))


def now(kind="full", **kwargs):
    """Take a backup of ``kind`` (full or incremental) now, on the store
    machine, as its timer would (systemctl start lemp-backup@<kind>), and
    wait for it; then the list."""
    check_kind(kind)
    machine = store_machine(_topology())
    answers = _steps.ask(__opts__, machine, "cmd.run_all", timeout=BACKUP_TIMEOUT,  # noqa: F821
                         arg=[["systemctl", "start", f"lemp-backup@{kind}.service"]],
                         kwarg={"python_shell": False})
    ret = answers.get(machine)
    if not isinstance(ret, dict) or ret.get("retcode") != 0:
        detail = ret.get("stderr") if isinstance(ret, dict) else ret
        return {"error": f"the {kind} backup failed on {machine}: {detail}; "
                         f"see journalctl -u lemp-backup@{kind} on {machine}"}
    return list()
