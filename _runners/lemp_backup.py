"""
Backup operator commands, run on the master (docs/backups.md, issue #11):

    salt-run lemp_backup.list                  the backups on arb1: age, restorable or not, the gaps,
                                               and the binlog archive's state
    salt-run lemp_backup.now kind=full         take a backup now (full or incremental) and wait for it
    salt-run lemp_backup.drill                 run the restore drill now (as its timer does) and show the result
    salt-run state.orchestrate orch.restore pillar='{"restore": {...}}'
                                               point-in-time restore: the plan is lemp_backup.restore's

The store and its tool live on the machine of the role ``backup`` (arb1):
these functions ask its minion to run ``lemp-backup`` (salt/backup), and
hand what it read to the pure functions of ``_modules/lemp_backup.py``
(``catalogue``, ``listing``). ``summary`` is pure and unit-tested
(tests/unit/test_backup_job.py).

``restore`` is the plan of ``orch.restore``: it reads the same answer,
checks the request (``lemp_backup.check_request``), lets
``lemp_backup.plan`` decide what is restored, and ``restore_steps`` (pure,
unit-tested in tests/unit/test_restore.py) turns that into the runbook's
steps; the cluster is brought back with lemp_galera's own steps
(``join_and_finish``), not a copy of them.
"""

import datetime
import importlib.util
import json
import os

import yaml

_spec = importlib.util.spec_from_file_location(
    "lemp_runner_steps", os.path.join(os.path.dirname(os.path.abspath(__file__)), "_steps.py"))
_steps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_steps)
backup = _steps.repo_module("lemp_backup")
_galera_spec = importlib.util.spec_from_file_location(
    "lemp_galera_runner_for_restore", os.path.join(os.path.dirname(os.path.abspath(__file__)), "lemp_galera.py"))
lemp_galera = importlib.util.module_from_spec(_galera_spec)
_galera_spec.loader.exec_module(lemp_galera)

COMMAND = "/usr/local/sbin/lemp-backup"
# A full backup of a large database takes a while; the runner waits for it.
BACKUP_TIMEOUT = 6 * 3600
# The drill restores a whole chain: as long as a restore.
DRILL_TIMEOUT = 6 * 3600
# Sending, preparing and replaying a large backup take a while.
RESTORE_STEP_TIMEOUT = 6 * 3600
DRILL_UNIT = "lemp-backup-drill.service"
ARCHIVER_UNIT = "lemp-binlog-archive"

__virtualname__ = "lemp_backup"
# The operator command is `lemp_backup.list`; the Python name must not hide
# the builtin `list` that the plan code checks against.
__func_alias__ = {"list_": "list"}


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


def garbd_service():
    """garbd's unit name (salt/garbd/defaults.yaml): the restore stops it
    with the data nodes, the garbd state starts it again."""
    with open(os.path.join(_steps.REPO, "salt", "garbd", "defaults.yaml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["garbd"]["service"]


def reached_seq(plan):
    """The GTID seq a replay must end at, or None when the plan stops at a
    time (the last transaction before it is known only once replayed)."""
    return None if plan["until"]["kind"] == "time" else plan["reaches_seq"]


def restore_steps(plan, stamp, confirm, topology, store, user="lemp-backup", command=COMMAND):
    """The steps of orch.restore from ``lemp_backup.plan``'s answer.

    Without ``confirm``: one step that prints the plan and changes nothing.
    With it, the runbook (each step requires the one before; the first
    failure stops the run, with the web tier left in maintenance and the
    old datadirs kept aside):

    1. print the plan; 2. web tier to the maintenance page; 3. stop the
    binlog archiver (its store is what is replayed); 4. stop MariaDB on
    every data node, garbd on the arbitrators; 5. arb1 checks, decrypts and
    sends the backups and binlogs to the restore node's staging folder;
    6. prepare them there (a bad file stops the restore before any datadir
    moves); 7. set every datadir aside; 8. copy back, 9. replay the binlogs
    there (checked to end where the plan says);
    10. bootstrap a new cluster from it (galera.bootstrap), 11. the others
    join by SST, accounts, garbd, galera-cluster-ready (lemp_galera's
    join_and_finish); 12. the old history is set apart on arb1 and the
    archiver starts again; 13. web tier back; 14. a full backup starts the
    new history's first chain; 15. the staging folder goes.
    """
    if not confirm:
        return [_steps.step("restore-dry-run-nothing-changed", "test.succeed_without_changes", name=plan["text"])]
    node = plan["restore_on"]
    if not node:
        return [_steps.refuse("restore-refused", "no data node to restore on: the topology has no db machine")]
    dbs, arbitrators = lemp_galera.members(topology)
    webs = _steps.role(topology, "web")
    maintenance = {"nginx_maintenance": {"enabled": True,
                                         "reason": f"restore {stamp} of backup {plan['backup']}"}}
    # runuser, not cmd.run's runas: the job's user has no login shell
    as_user = ["runuser", "-u", user, "--", command]
    run_as = {"python_shell": False, "timeout": RESTORE_STEP_TIMEOUT}
    garb = garbd_service()
    binlog_names = [entry["file"] for entry in plan["binlogs"]]
    steps = [_steps.step(f"restore-{stamp}-plan", "test.succeed_without_changes", name=plan["text"]),
             # the node steps are this checkout's lemp_restore, not an older copy
             _steps.function("sync-modules-on-data-nodes", "saltutil.sync_modules", dbs)]
    if webs:
        steps.append(_steps.state("web-tier-to-maintenance-page", ["nginx.maintenance"], webs, pillar=maintenance))
    steps.append(_steps.function(f"stop-binlog-archiver-on-{store}", "service.stop", store, arg=[ARCHIVER_UNIT]))
    steps += [_steps.function(f"stop-mariadb-on-{name}", "galera.stop", name) for name in dbs]
    steps += [_steps.function(f"stop-garbd-on-{name}", "service.stop", name, arg=[garb]) for name in arbitrators]
    # Sent and prepared in the staging folder before any datadir moves: a bad
    # or missing file, or a full disk, stops the restore with every datadir
    # in place (orch.galera_recover starts the cluster again as it was).
    steps += [
        _steps.function(f"send-backups-and-binlogs-from-{store}-to-{node}", "cmd.run", store,
                        arg=[as_user + ["send", node, stamp, plan["cluster"], ",".join(plan["apply"])] + binlog_names],
                        kwarg=run_as, timeout=RESTORE_STEP_TIMEOUT),
        _steps.function(f"prepare-backups-on-{node}", "lemp_restore.prepare", node, arg=[stamp, plan["apply"]],
                        timeout=RESTORE_STEP_TIMEOUT),
    ]
    steps += [_steps.function(f"set-aside-datadir-on-{name}", "lemp_restore.set_aside", name, arg=[stamp])
              for name in dbs]
    steps += [
        _steps.function(f"copy-back-on-{node}", "lemp_restore.copy_back", node, arg=[stamp, plan["apply"][0]],
                        timeout=RESTORE_STEP_TIMEOUT),
        _steps.function(f"replay-binlogs-on-{node}", "lemp_restore.replay", node,
                        arg=[stamp, plan["binlogs"], plan["base"]["gtid"], reached_seq(plan),
                             plan["until"]["kind"] == "gtid"],
                        timeout=RESTORE_STEP_TIMEOUT),
        # no grastate.dat: galera_new_cluster starts a new cluster from the restored data
        _steps.function(f"bootstrap-restored-cluster-from-{node}", "galera.bootstrap", node),
        _steps.function(f"wait-galera-synced-{node}", "galera.wait_synced", node),
        # at once, before anything writes (the web tier shows the maintenance
        # page, but cron jobs may write): the replayed history's last GTIDs may
        # carry another node's server_id, and new transactions must follow the
        # highest seq, not reuse it
        _steps.function(f"align-gtid-sequence-of-the-restored-cluster-on-{node}", "galera.align_gtid_seqno", node),
        # before anything writes: the old history's backups and binlogs are set apart
        _steps.function(f"set-apart-the-old-history-on-{store}", "cmd.run", store,
                        arg=[as_user + ["restored", stamp, plan["cluster"]]], kwarg=run_as),
        _steps.function(f"start-binlog-archiver-on-{store}", "service.start", store, arg=[ARCHIVER_UNIT]),
        # the SST account must exist on the donor before anyone joins
        _steps.state(f"create-galera-sst-account-on-{node}", ["galera.users"], node),
    ]
    steps += lemp_galera.join_and_finish(dbs, [node], node, arbitrators)
    if webs:
        steps.append(_steps.state("web-tier-back-from-maintenance", ["nginx.maintenance"], webs,
                                  pillar={"nginx_maintenance": {"enabled": False}}))
    steps += [
        _steps.function(f"take-full-backup-of-the-restored-cluster-on-{store}", "cmd.run", store,
                        arg=[["systemctl", "start", "lemp-backup@full.service"]],
                        kwarg={"python_shell": False, "timeout": BACKUP_TIMEOUT}, timeout=BACKUP_TIMEOUT),
        _steps.function(f"remove-staging-folder-on-{node}", "lemp_restore.cleanup", node, arg=[stamp]),
    ]
    return _steps.chain(steps)


def restore_plan_or_refusal(answer, request, topology, now, current_gtid=None):
    """(request, plan) or raise ValueError with the reason: the request
    checked, the plan made from the store's answer (``lemp-backup list``)."""
    try:
        request = backup.check_request(request)
        cat = backup.catalogue(answer.get("manifests") or [], answer.get("drills") or {})
        index = backup.pick_index(answer.get("binlog_indexes") or {}, cat, request["backup"])
        dbs, _ = lemp_galera.members(topology)
        plan = backup.plan_restore(cat, index, request["backup"], request["until"], now, data_nodes=dbs,
                                   current_gtid=current_gtid)
    except backup.BackupError as exc:
        raise ValueError(str(exc))
    plan["text"] = backup.describe(plan)
    return request, plan


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


def list_(**kwargs):
    """The backups on the store machine, oldest first, with whether each can
    be restored, and the state of the binlog archive."""
    machine = store_machine(_topology())
    try:
        ret = _run(machine, ["list"])
    except RuntimeError as exc:
        return {"error": f"cannot read the backup store: {exc}"}
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
    return list_()


def _current_gtid(topology):
    """The cluster's GTID now, from a data node that answers (None: none does)."""
    dbs, _ = lemp_galera.members(topology)
    answers = _steps.ask(__opts__, dbs, "galera.query", timeout=30, tgt_type="list",  # noqa: F821
                         arg=["SELECT @@gtid_binlog_pos"]) if dbs else {}
    for name in dbs:
        rows = answers.get(name)
        if isinstance(rows, list) and rows and isinstance(rows[0], (list, tuple)) and rows[0]:
            return str(rows[0][0])
    return None


def restore(topology, restore=None, **kwargs):
    """The plan of orch.restore (pillar ``restore``: backup, until, confirm).
    A bad request or a plan that cannot be made is one failing step with the
    reason: nothing is touched."""
    refused = "restore-refused-nothing-changed"
    try:
        backup.check_request(restore)
        machine = store_machine(topology)
    except (backup.BackupError, ValueError) as exc:
        return _steps.plan([_steps.refuse(refused, str(exc))])
    try:
        ret = _run(machine, ["list"])
    except RuntimeError as exc:
        return _steps.plan([_steps.refuse(refused, f"cannot read the backup store: {exc}")])
    if ret.get("retcode") != 0:
        return _steps.plan([_steps.refuse(refused, f"lemp-backup list failed on {machine}: "
                                                   f"{ret.get('stderr') or ret.get('stdout')}")])
    try:
        answer = json.loads(ret["stdout"])
        request, plan = restore_plan_or_refusal(answer, restore, topology,
                                                datetime.datetime.now(datetime.timezone.utc),
                                                _current_gtid(topology))
    except ValueError as exc:
        return _steps.plan([_steps.refuse(refused, str(exc))])
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return _steps.plan(restore_steps(plan, stamp, request["confirm"], topology, machine))


def drill(backup_id=None, **kwargs):
    """Run the restore drill now on the store machine, as its timer does
    (systemctl start lemp-backup-drill.service; ``backup_id``: another
    backup than the newest restorable one), wait, and show its result."""
    machine = store_machine(_topology())
    args = ["systemctl", "start", DRILL_UNIT] if not backup_id else \
        ["runuser", "-u", "lemp-backup", "--", COMMAND, "drill", str(backup_id)]
    answers = _steps.ask(__opts__, machine, "cmd.run_all", timeout=DRILL_TIMEOUT,  # noqa: F821
                         arg=[args], kwarg={"python_shell": False})
    ret = answers.get(machine)
    status = _run(machine, ["status"])
    try:
        result = json.loads(status.get("stdout") or "{}").get("drill")
    except ValueError:
        result = None
    if not isinstance(ret, dict) or ret.get("retcode") != 0:
        return {"error": f"the drill FAILED on {machine}: "
                         f"{'; '.join((result or {}).get('problems') or []) or (ret.get('stderr') if isinstance(ret, dict) else ret)}; "
                         f"see journalctl -u {DRILL_UNIT} on {machine}", "drill": result}
    return {"drill": result}
