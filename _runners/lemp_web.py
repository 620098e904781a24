"""
Rolling plans for the web tier, computed on the master: ``orch.deploy`` and
``orch.rollback`` call these functions when they are rendered and list the
steps they return.

Both walk the web nodes one at a time with the same rolling step
(``rolling_steps``): drain the node on every load balancer, wait until it
has no session, switch its release, check its /healthz serves the release,
put it back and wait until every load balancer sees it UP. They differ only
in what comes before (unpack and migrate, or check the release is there) and
in the switch itself.

The pure functions are unit-tested with sample data
(tests/unit/test_web_plans.py).
"""

import importlib.util
import os

from salt.exceptions import CommandExecutionError

# The step builders shared by the lemp_* runners, beside this file.
_spec = importlib.util.spec_from_file_location(
    "lemp_runner_steps", os.path.join(os.path.dirname(os.path.abspath(__file__)), "_steps.py"))
_steps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_steps)
lemp_app = _steps.repo_module("lemp_app")

# Poll the node's own /healthz until it is 200 and reports the release.
HEALTHZ_CMD = (
    "for i in $(seq 1 100); do out=$(curl -ksS --max-time 2 -o - -w ' %{http_code}' https://127.0.0.1/healthz 2>&1);"
    " case \"$out\" in *'\"release\":\"{release}\"'*' 200') echo \"$out\"; exit 0;; esac; sleep 0.3; done;"
    " echo \"healthz not ok for release {release}: $out\" >&2; exit 1"
)
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
    makes ``release`` current there), check /healthz, enable, wait UP."""
    steps = []
    for web in webs:
        on_lbs = {"arg": [backend, web]}
        steps += [
            _steps.function(f"drain-{web}-on-both-lbs", "haproxy_runtime.drain", lbs, **on_lbs),
            _steps.function(f"wait-until-{web}-has-no-session-on-both-lbs", "haproxy_runtime.wait_drained", lbs,
                            **on_lbs, kwarg={"timeout": 120}),
            switch(web),
            _steps.function(f"check-healthz-on-{web}-serves-release-{release}", "cmd.run", web,
                            arg=[HEALTHZ_CMD.replace("{release}", release)], kwarg={"python_shell": True}),
            _steps.function(f"enable-{web}-on-both-lbs", "haproxy_runtime.enable", lbs, **on_lbs),
            _steps.function(f"wait-until-{web}-is-up-on-both-lbs", "haproxy_runtime.wait_up", lbs,
                            **on_lbs, kwarg={"timeout": 60}),
        ]
    return steps


def deploy_steps(webs, lbs, backend, version, source=None):
    """orch.deploy: unpack the release everywhere, migrate once from the
    first web node, then the rolling switch. ``version`` is already checked."""
    app = {"app": {"version": version, "source": source or {}}}
    return _steps.chain([
        _sync(webs, lbs),
        _steps.state(f"unpack-release-{version}-on-all-web-nodes", "webapp.release", webs, pillar=app),
        _steps.state(f"migrate-database-for-release-{version}-from-{webs[0]}", "webapp.migrate", webs[0], pillar=app),
    ] + rolling_steps(webs, lbs, backend, version, lambda web: _steps.state(
        f"switch-{web}-to-release-{version}", "webapp.switch", web, pillar=app)))


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


def rollback_steps(webs, lbs, backend, app_dir, target):
    """orch.rollback: check the release is complete everywhere, then the
    rolling switch back."""
    app = {"app": {"rollback_to": target}}
    return _steps.chain([
        _sync(webs, lbs),
        _steps.function(f"check-release-{target}-is-complete-on-all-web-nodes", "cmd.run", webs,
                        arg=[RELEASE_COMPLETE_CMD.format(app_dir=app_dir, release=target)],
                        kwarg={"python_shell": True}),
    ] + rolling_steps(webs, lbs, backend, target, lambda web: _steps.state(
        f"switch-{web}-back-to-release-{target}", "webapp.rollback", web, pillar=app)))


# -- runner functions: gather the facts, return the plan --------------------


def deploy(topology, version, backend, source=None):
    """The plan of orch.deploy, or {refusal} when the topology cannot take it."""
    try:
        webs, lbs = members(topology)
    except ValueError as exc:
        return {"refusal": str(exc)}
    return _steps.plan(deploy_steps(webs, lbs, backend, str(version), source))


def rollback(topology, backend, app_dir, rollback_to=""):
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
    return _steps.plan(rollback_steps(webs, lbs, backend, app_dir, target))
