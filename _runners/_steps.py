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


def state(sid, sls, tgt, **args):
    """Apply ``sls`` on the minions ``tgt`` (one name or a list)."""
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
    with salt.client.get_local_client(opts["conf_file"]) as client:
        for returned in client.cmd_iter(tgt, fun, timeout=timeout, **kwargs):
            for minion, data in (returned or {}).items():
                answers[minion] = data.get("ret") if isinstance(data, dict) else data
    return answers


def plan(steps):
    return {"steps": list(steps)}
