"""
Orchestration steps as data, shared by the lemp_* runners.

A plan is ``{"steps": [step, ...]}`` in the order a human would follow, or
``{"refusal": "why"}`` when nothing may be touched. A step is
``{"id", "state", "args"}``: ``orch/_plan.jinja`` writes it out as
``<id>: {<state>: <args>}``, so the runners decide what runs and the
orchestration files only list it.

Not a runner module itself (the loader skips names starting with "_"): the
runners load it, and the pure modules of ``_modules/``, from the checkout
they are loaded from (the master's ``runner_dirs``).
"""

import importlib.util
import os

import salt.client

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)


def repo_module(name):
    """Import ``_modules/<name>.py`` of this checkout, for its pure functions."""
    spec = importlib.util.spec_from_file_location(
        f"lemp_plan_{name}", os.path.join(REPO, "_modules", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def names(members):
    """Machine names of a role's members (topology.roles.<role>.members), in
    name order, the order the runbooks have always walked them in."""
    return sorted(member["name"] for member in members or [])


def role(topology, name):
    return names(((topology or {}).get("roles") or {}).get(name, {}).get("members"))


def step(sid, state, **args):
    """One step: ``args`` in the order given, None values left out."""
    return {"id": sid, "state": state, "args": [{key: value} for key, value in args.items() if value is not None]}


def function(sid, fun, tgt, **args):
    """Run an execution module function on the minions ``tgt`` (one name or a list)."""
    return step(sid, "salt.function", name=fun, **_target(tgt), **args)


# How a step waits for a state run already going on its minion (another
# enrolment's, a highstate): in line, in its own job. Not ``queue=True``:
# since Salt 3006.21 that hands the job to the minion daemon's queue and
# returns nothing, so the orchestration sees "Minion did not return" (the
# lab: two pool VMs enrolling at once, mon1's zabbix.server.api step; Salt
# issue 69844). An integer keeps the blocking wait: up to that many state
# runs ahead of it.
WAIT_IN_LINE = 50


def state(sid, sls, tgt, **args):
    """Apply ``sls`` on the minions ``tgt`` (one name or a list). ``queue=True``
    waits in line (WAIT_IN_LINE)."""
    if args.get("queue") is True:
        args["queue"] = WAIT_IN_LINE
    return step(sid, "salt.state", **_target(tgt), sls=sls, **args)


def refuse(sid, message):
    """A step that fails with the reason: the run stops there, nothing touched."""
    return step(sid, "test.fail_without_changes", name=message)


def requisite(item):
    """How a later step requires ``item``: ``{"salt": id}``, ``{"test": id}``..."""
    return {item["state"].split(".")[0]: item["id"]}


def chain(steps, after=None):
    """The steps, each requiring the one before it, the first ``after`` (a
    step id of a ``salt.*`` state); a step that names its requisites keeps them."""
    out = []
    previous = {"salt": after} if after else None
    for item in steps:
        if previous and not any("require" in arg for arg in item["args"]):
            item = dict(item, args=item["args"] + [{"require": [previous]}])
        out.append(item)
        previous = requisite(item)
    return out


def _target(tgt):
    if isinstance(tgt, (list, tuple)):
        return {"tgt": ",".join(tgt), "tgt_type": "list"}
    return {"tgt": tgt}


def ask(opts, tgt, fun, timeout=None, **kwargs):
    """{minion: ret} of the minions ``tgt`` that answered ``fun``; one that
    does not answer is missing (as with saltutil.cmd: LocalClient.cmd would
    make up a "did not return" text for it)."""
    answers = {}
    if (kwargs.get("kwarg") or {}).get("queue") is True:
        kwargs["kwarg"] = dict(kwargs["kwarg"], queue=WAIT_IN_LINE)
    with salt.client.get_local_client(opts["conf_file"]) as client:
        for returned in client.cmd_iter(tgt, fun, timeout=timeout, **kwargs):
            for minion, data in (returned or {}).items():
                answers[minion] = data.get("ret") if isinstance(data, dict) else data
    return answers


def plan(steps):
    return {"steps": list(steps)}


# --- maintenance windows (issue 10) ---
#
# orch.deploy and orch.galera_rolling_restart open a Zabbix maintenance
# window for the machines they touch and close it at the end, also when a
# step fails. The window is opened and closed by salt.function steps on the
# monitor minion (lemp_zabbix.maintenance_open/close, _modules/lemp_zabbix.py),
# not by a runner here: mon1 alone has the API client, the lab CA and the
# Admin secret, so the master's runners need neither zabbix_utils nor that
# secret, and the steps show in the orchestration's output like any other.

MAINTENANCE_PREFIX = "lemp-ha maintenance: "  # lemp_zabbix.MAINTENANCE_PREFIX


def run_id():
    """A run's id for its window's name: UTC time and a random suffix."""
    import secrets  # pylint: disable=import-outside-toplevel
    import time  # pylint: disable=import-outside-toplevel

    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def with_maintenance(steps, topology, orch, run, hosts, expiry_minutes, enabled=True, label=""):
    """``steps`` (a chained plan) inside a maintenance window for ``hosts``:
    open it first (every step then requires it), close it after the last
    step, or, when any step failed, close it anyway (``onfail``). The
    window expires by itself after ``expiry_minutes`` should the run die.

    No monitor machine in the topology, or ``enabled`` false (pillar
    maintenance: false, e.g. while mon1 is down): a first step says so and
    the plan runs as it is. A refusal is returned as it is.

    ``label`` ends the closing steps' ids (``-of-web1``), for a plan that
    opens one window after another (orch.rotate_secret zabbix_psk)."""
    if not steps or any(item["state"] == "test.fail_without_changes" for item in steps):
        return steps
    monitors = role(topology, "monitor")
    if not monitors or not enabled:
        why = "no monitor machine in the topology" if not monitors else "pillar maintenance is false"
        return [step(f"no-maintenance-window-{why.replace(' ', '-')}", "test.succeed_without_changes",
                     name=f"{orch}: no Zabbix maintenance window ({why})")] + list(steps)
    mon = monitors[0]
    name = f"{MAINTENANCE_PREFIX}{orch} {run}"
    opened = function(f"open-maintenance-window-on-{mon}-for-{'-'.join(sorted(hosts))}", "lemp_zabbix.maintenance_open",
                      mon, kwarg={"name": name, "hosts": sorted(hosts), "expiry_minutes": int(expiry_minutes)})
    body = chain(steps, after=opened["id"])
    close = {"name": name}
    return [opened] + body + [
        function(f"close-maintenance-window-on-{mon}-after-the-last-step{label}", "lemp_zabbix.maintenance_close", mon,
                 kwarg=close, require=[requisite(body[-1])]),
        function(f"close-maintenance-window-on-{mon}-after-a-failed-step{label}", "lemp_zabbix.maintenance_close", mon,
                 kwarg=close, onfail=[requisite(item) for item in [opened] + body]),
    ]
