"""
Rolling plans for the web tier, computed on the master: ``orch.deploy`` and
``orch.rollback`` call these functions when they are rendered and list the
steps they return.

Both walk the web nodes one at a time with the same rolling step
(``rolling_steps``): drain the node on every load balancer, wait until it
has no session, switch its release, check its /healthz/deep serves the
release (and reaches the database), put it back and wait until every load
balancer sees it UP. They differ only in what comes before (unpack and
migrate, or check the release is there) and in the switch itself. Both
end by recording, on the master, the release they made current
(``record_deployed``, ``_modules/lemp_release.py``), so that the next
highstate keeps it. ``spend`` plans orch.site's first step,
which spends that record once pillar/app.sls has moved away from it.

The pure functions are unit-tested with sample data
(tests/unit/test_web_plans.py).
"""

import importlib.util
import os

import salt.pillar
import salt.utils.minions
from salt.exceptions import CommandExecutionError

# The step builders shared by the lemp_* runners, beside this file.
_spec = importlib.util.spec_from_file_location(
    "lemp_runner_steps", os.path.join(os.path.dirname(os.path.abspath(__file__)), "_steps.py"))
_steps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_steps)
lemp_app = _steps.repo_module("lemp_app")
lemp_release = _steps.repo_module("lemp_release")

# Ask the node's own /healthz/deep until it is healthy and serves the release
# (lemp_healthz.wait: 200, "status": "ok", "check": "deep", that "release";
# loopback sees the details). Not a maintenance answer, which is a 200 too.
# Deep, not the shallow /healthz HAProxy routes on: a node that cannot reach
# the database (the app's account, over TLS, through the DB endpoint) with
# its new release must not be put back; the deploy stops there, with that node
# drained and the reason, and the other nodes still serving.
HEALTHZ_URL = "https://127.0.0.1/healthz/deep"
HEALTHZ_WAIT = {"attempts": 100, "interval": 0.3, "timeout": 2}
RELEASE_COMPLETE_CMD = (
    "test -e {app_dir}/releases/{release}/.lemp-ha-release"
    " || {{ echo \"release {release} is missing or incomplete on $(hostname)\" >&2; exit 1; }}"
)


__virtualname__ = "lemp_web"


def __virtual__():
    return __virtualname__


# -- pure functions (unit-tested) -------------------------------------------


def members(topology):
    """(web nodes, load balancers) by name, or raise ValueError naming the
    role the topology lacks."""
    webs, lbs = _steps.role(topology, "web"), _steps.role(topology, "lb")
    for role, found in (("web", webs), ("lb", lbs)):
        if not found:
            raise ValueError(f"orch: the topology has no machine with role {role}")
    return webs, lbs


def _sync(webs, lbs):
    return _steps.function("sync-custom-modules-on-web-and-lb-nodes", "saltutil.sync_all", webs + lbs)


def rolling_steps(webs, lbs, backend, release, switch):
    """For each web node in turn: drain, wait, ``switch(web)`` (the step that
    makes ``release`` current there), check /healthz/deep, enable, wait UP."""
    steps = []
    for web in webs:
        on_lbs = {"arg": [backend, web]}
        steps += [
            _steps.function(f"drain-{web}-on-both-lbs", "haproxy_runtime.drain", lbs, **on_lbs),
            _steps.function(f"wait-until-{web}-has-no-session-on-both-lbs", "haproxy_runtime.wait_drained", lbs,
                            **on_lbs, kwarg={"timeout": 120}),
            switch(web),
            _steps.function(f"check-healthz-on-{web}-serves-release-{release}", "lemp_healthz.wait", web,
                            arg=[HEALTHZ_URL], kwarg={"check": "deep", "release": str(release), "insecure": True,
                                                      **HEALTHZ_WAIT}),
            _steps.function(f"enable-{web}-on-both-lbs", "haproxy_runtime.enable", lbs, **on_lbs),
            _steps.function(f"wait-until-{web}-is-up-on-both-lbs", "haproxy_runtime.wait_up", lbs,
                            **on_lbs, kwarg={"timeout": 60}),
        ]
    return steps


def record_step(app_name, version, source, base, known=None):
    """The last step: record on the master that ``version`` (from ``source``)
    of ``app_name`` is current, that pillar/app.sls named ``base`` (its
    fingerprint, lemp_release.fingerprint), and ``known`` ([{version,
    source}]: pillar/app.sls's own, for a later orch.rollback to it)."""
    return _steps.step(f"record-{app_name}-release-{version}-as-deployed-on-the-master", "salt.runner",
                       name="lemp_web.record_deployed", app_name=app_name, version=version,
                       source=source or {}, base="" if base is None else str(base), known=known or None)


def pillar_base(pillar_app):
    """(base, known) of pillar/app.sls's ``app`` for record_step: the
    fingerprint of its version and source, and that version's source."""
    pillar_app = pillar_app or {}
    version, source = pillar_app.get("version", ""), pillar_app.get("source") or {}
    known = [{"version": str(version), "source": source}] if version not in (None, "") else []
    return lemp_release.fingerprint(version, source), known


def deploy_steps(webs, lbs, backend, version, source=None, app_name="app", base="", known=None):
    """orch.deploy: unpack the release everywhere, migrate once from the
    first web node, then the rolling switch, then record it. ``version`` is
    already checked; ``base`` and ``known`` come from :func:`pillar_base`."""
    # The record of an earlier deploy is set aside while this one runs: the
    # release made current is the one named here, even when it equals the
    # record's base (salt/webapp/map.jinja, lemp_release.effective_app).
    app = {"app": {"version": version, "source": source or {}}, "app_deployed": {app_name: None}}
    return _steps.chain([
        _sync(webs, lbs),
        _steps.state(f"unpack-release-{version}-on-all-web-nodes", "webapp.release", webs, pillar=app),
        _steps.state(f"migrate-database-for-release-{version}-from-{webs[0]}", "webapp.migrate", webs[0], pillar=app),
    ] + rolling_steps(webs, lbs, backend, version, lambda web: _steps.state(
        f"switch-{web}-to-release-{version}", "webapp.switch", web, pillar=app))
        + [record_step(app_name, version, source, base, known)])


def rollback_target(rollback_to, previous_link):
    """The release to roll back to: ``rollback_to`` when given, else the one
    the first web node's ``previous`` link names (``releases/<version>``);
    None when neither names a valid release."""
    target = str(rollback_to or "")
    if not target and isinstance(previous_link, str) and previous_link.startswith("releases/"):
        target = previous_link[len("releases/"):]
    try:
        return lemp_app.check_version(target)
    except CommandExecutionError:
        return None


def rollback_source(record, app_name, target, pillar_app):
    """The source ``target`` was made from, recorded with it by orch.rollback
    (used only on a node that lacks the release): the record's history, else
    pillar/app.sls's when it names ``target``, else {} (unknown: a node that
    lacks the release builds it from pillar/app.sls's source)."""
    source = lemp_release.source_of(record, app_name, target)
    if source is None and str((pillar_app or {}).get("version", "")) == str(target):
        source = (pillar_app or {}).get("source") or {}
    return source or {}


def rollback_steps(webs, lbs, backend, app_dir, target, app_name="app", base="", source=None, known=None):
    """orch.rollback: check the release is complete everywhere, then the
    rolling switch back, then record it (with ``source``: the target's own,
    :func:`rollback_source`)."""
    app = {"app": {"rollback_to": target}}
    return _steps.chain([
        _sync(webs, lbs),
        _steps.function(f"check-release-{target}-is-complete-on-all-web-nodes", "cmd.run", webs,
                        arg=[RELEASE_COMPLETE_CMD.format(app_dir=app_dir, release=target)],
                        kwarg={"python_shell": True}),
    ] + rolling_steps(webs, lbs, backend, target, lambda web: _steps.state(
        f"switch-{web}-back-to-release-{target}", "webapp.rollback", web, pillar=app))
        + [record_step(app_name, target, source, base, known)])


SPEND_STEP = "spend-deployed-release-records-pillar-app-moved-away-from"


def spend_steps(spend, after=None):
    """orch.site's step that spends the records of ``spend`` ({name: base},
    lemp_release.to_spend): a runner step when there is one to spend, else
    a step that changes nothing (a second orch.site reports no change). The
    same id either way, for the steps that require it."""
    if spend:
        step = _steps.step(SPEND_STEP, "salt.runner", name="lemp_web.spend_records", spend=dict(spend))
    else:
        step = _steps.step(SPEND_STEP, "test.succeed_without_changes",
                           name="no deployed-release record to spend: pillar/app.sls names the recorded base")
    return _steps.chain([step], after=after)


# -- runner functions: gather the facts, return the plan --------------------


def _pillar_app(minion):
    """pillar ``app`` of ``minion`` as pillar/app.sls gives it, compiled on
    the master without the orchestration's command-line pillar."""
    _, grains, _ = salt.utils.minions.get_minion_data(minion, __opts__)  # noqa: F821
    grains = dict(grains or {}, id=minion)
    pillar = salt.pillar.Pillar(__opts__, grains, minion, "base").compile_pillar()  # noqa: F821
    return pillar.get("app") or {}


def deploy_expiry(webs):
    """Minutes after which orch.deploy's maintenance window expires by
    itself: per web node, its drain (2 min), switch and checks, with room."""
    return 15 + 10 * len(webs)


def deploy(topology, version, backend, source=None, app_name="app", maintenance=True):
    """The plan of orch.deploy, or {refusal} when the topology cannot take it.
    The web nodes and load balancers are in a maintenance window meanwhile
    (_steps.with_maintenance; pillar maintenance: false skips it)."""
    try:
        webs, lbs = members(topology)
    except ValueError as exc:
        return {"refusal": str(exc)}
    if (source or {}).get("path"):
        # a salt:// source with nothing under it: refused here, before the
        # maintenance window, the sync and the unpack on every web node
        try:
            lemp_app.check_path_source(source, __salt__["fileserver.file_list"](saltenv="base"))  # noqa: F821
        except CommandExecutionError as exc:
            return {"refusal": f"orch.deploy: {exc}"}
    base, known = pillar_base(_pillar_app(webs[0]))
    steps = deploy_steps(webs, lbs, backend, str(version), source, app_name, base, known)
    return _steps.plan(_steps.with_maintenance(steps, topology, "orch.deploy", _steps.run_id(), webs + lbs,
                                               deploy_expiry(webs), maintenance))


def _record_path():
    return lemp_release.record_path(__opts__)  # noqa: F821


def record_deployed(app_name, version, source=None, base="", known=None):
    """Record that ``version`` of ``app_name`` is current on the web tier
    (the last step of orch.deploy and orch.rollback); pillar/deployed.sls
    serves the record as pillar ``app_deployed``.

    CLI Example::

        salt-run lemp_web.record_deployed app 1.1.0 base=1.0.0#<digest> source='{"path": "salt://app"}'
    """
    path = _record_path()
    record = lemp_release.updated_record(lemp_release.read_record(path), app_name, version, source, base, known)
    lemp_release.write_record(record, path)
    return {"path": path, app_name: record[app_name]}


def spend(topology, app_name="app", after=None):
    """The plan of orch.site's first step: spend the records pillar/app.sls
    (compiled for the first web node) has moved away from. Reads only: the
    step it returns writes."""
    webs = _steps.role(topology, "web")
    if not webs:
        return _steps.plan(spend_steps({}, after))
    todo = lemp_release.to_spend(lemp_release.read_record(_record_path()), app_name, _pillar_app(webs[0]))
    return _steps.plan(spend_steps(todo, after))


def spend_records(spend):
    """Spend the records of ``spend`` ({name: base}, planned by
    :func:`spend`); the names spent.

    CLI Example::

        salt-run lemp_web.spend_records '{"app": "1.0.0#<digest>"}'
    """
    path = _record_path()
    before = lemp_release.read_record(path)
    after = lemp_release.spent_record(before, spend)
    if after != before:
        lemp_release.write_record(after, path)
    return {"path": path, "spent": sorted(name for name in after if after[name] != before.get(name))}


def rollback(topology, backend, app_dir, rollback_to="", app_name="app"):
    """The plan of orch.rollback, or {refusal} when there is nothing to roll back to."""
    try:
        webs, lbs = members(topology)
    except ValueError as exc:
        return {"refusal": str(exc)}
    link = None
    if rollback_to:
        try:  # a release named by hand: say what is wrong with it
            lemp_app.check_rollback_target(rollback_to)
        except (CommandExecutionError, ValueError) as exc:
            return {"refusal": f"orch.rollback: {exc}"}
    else:
        link = _steps.ask(__opts__, webs[0], "file.readlink", arg=[f"{app_dir}/previous"]).get(webs[0])  # noqa: F821
    target = rollback_target(rollback_to, link)
    if not target:
        return {"refusal": f"orch.rollback: no release to roll back to ({webs[0]} has no {app_dir}/previous link); "
                           'pass pillar={"app": {"rollback_to": "X.Y.Z"}}'}
    app = _pillar_app(webs[0])
    base, known = pillar_base(app)
    source = rollback_source(lemp_release.read_record(_record_path()), app_name, target, app)
    return _steps.plan(rollback_steps(webs, lbs, backend, app_dir, target, app_name, base, source, known))
