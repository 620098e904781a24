"""
Scaling the web tier out and in, by hand and on load, planned on the master.

``orch.scale_out``, ``orch.scale_in`` and ``orch.autoscale`` call the plan
functions of this runner when they are rendered (``orch/_plan.jinja``) and
list the steps they return, each step named as the runbook's:

* scale out: record the decision, boot the lowest free name of the pool
  (``scaling.web.pool`` of the topology) through the cloud minion
  (``lemp_labcloud.up`` on ``labhost`` in the lab), then wait until the
  node's own start event has enrolled it (``orch.enrol``, the reactor);
* scale in: record the decision, drain the node on both load balancers,
  wait until it has no session, disable its slot at runtime, take it out
  of the enrolled store and render the slot disabled in both HAProxy
  configs, remove its Zabbix host, destroy the VM, then delete its key;
* autoscale: the sender of ``lemp-ha/scale/request`` (the authenticated
  minion id) must be a monitor-role machine; min, max and a cooldown hold
  (:func:`decide`); then the scale-out or scale-in steps above.

Every decision, also a refusal, is one line of ``/var/log/lemp-ha/scaling.log``
on the master and one value of the trapper item ``lemp.scale.decision`` of
the master's Zabbix host (an information-severity trigger shows it to
staff). The last scaling action is kept in ``/var/lib/lemp-ha/scaling.json``
for the cooldown.

The pure functions (``next_free``, ``scale_in_target``, ``decide``, the
step lists, ``sender_argv``) are unit-tested on plain data
(tests/unit/test_scale_plans.py).

Interfaces of the other helpers of issue #12 this runner codes against:
``lemp_enrol.remove`` / ``lemp_enrol.forget`` (runner, enrolment),
``lemp_zabbix.host_absent`` (execution module on the monitor),
``lemp_labcloud.up`` / ``destroy`` (execution module on ``labhost``), the
enrolled store ``/var/lib/lemp-ha/enrolled.json`` and the events
``lemp-ha/enrol/done`` / ``lemp-ha/enrol/failed`` naming the node.
"""

import datetime
import fcntl
import importlib.util
import json
import os
import subprocess
import time

from salt.exceptions import CommandExecutionError

# The step builders shared by the lemp_* runners, beside this file.
_spec = importlib.util.spec_from_file_location(
    "lemp_runner_steps", os.path.join(os.path.dirname(os.path.abspath(__file__)), "_steps.py"))
_steps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_steps)

# The enrolled store's reader and its "serving" mark, from the enrolment runner.
_spec = importlib.util.spec_from_file_location(
    "lemp_scale_enrol", os.path.join(os.path.dirname(os.path.abspath(__file__)), "lemp_enrol.py"))
_enrol = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_enrol)

__virtualname__ = "lemp_scale"
# `in` is a Python keyword: the runner function is in_, called as lemp_scale.in
__func_alias__ = {"in_": "in"}
lemp_scaling = _steps.repo_module("lemp_scaling")   # the settings' checks, shared with mon1's states

# Where the facts and records live on the master; a master option of the
# same name wins (the render tests point them at a temporary folder).
ENROLLED_STORE = "/var/lib/lemp-ha/enrolled.json"   # written by lemp_enrol (enrolment)
STATE_FILE = "/var/lib/lemp-ha/scaling.json"
LOG_FILE = "/var/log/lemp-ha/scaling.log"
OPTIONS = {"enrolled": "lemp_ha_enrolled_store", "state": "lemp_ha_scaling_state", "log": "lemp_ha_scaling_log"}

DIRECTIONS = ("out", "in")
ENROL_DONE, ENROL_FAILED = "lemp-ha/enrol/done", "lemp-ha/enrol/failed"
HISTORY = 20   # decisions kept in the state file, for `salt-run lemp_scale.status`
MAX_PAUSE_MINUTES = 24 * 60   # lemp_scale.pause: a pause ends by itself within a day


def __virtual__():
    return __virtualname__


# -- pure functions (unit-tested) -------------------------------------------


def pool_names(topology):
    """The pool's names in the topology's order (web3, web4, ...)."""
    scaling = ((topology or {}).get("scaling") or {}).get("web") or {}
    return [entry["name"] for entry in scaling.get("pool") or []]


def limits(topology):
    """(min, max) web machines of the topology's scaling.web."""
    scaling = ((topology or {}).get("scaling") or {}).get("web") or {}
    if "min" not in scaling or "max" not in scaling:
        raise ValueError("topology: scaling.web has no min and max (pillar/topology.yaml)")
    return int(scaling["min"]), int(scaling["max"])


def in_use(topology, enrolled, keys):
    """Pool names taken: enrolled, or with an accepted key (a VM booting, or
    one whose scale-in has not finished: its slot is not free yet)."""
    taken = set(enrolled or ()) | set(keys or ())
    return [name for name in pool_names(topology) if name in taken]


def next_free(topology, enrolled, keys):
    """``{"node", "address"}``: the lowest pool name neither enrolled nor
    keyed, or ``{"refusal"}`` at max (the fixed web machines count, and so
    does every pool node booting or serving)."""
    fixed = _steps.role(topology, "web")
    low, high = limits(topology)
    taken = in_use(topology, enrolled, keys)
    count = len(fixed) + len(taken)
    if count >= high:
        return {"refusal": f"scale_out: the web tier is at its max of {high} machines ({', '.join(fixed + taken)}); "
                           "raise scaling.web.max in pillar/topology.yaml to go further"}
    pool = (topology.get("scaling") or {}).get("web", {}).get("pool") or []
    for entry in pool:
        if entry["name"] not in taken:
            return {"node": entry["name"], "address": entry.get("address")}
    return {"refusal": "scale_out: every name of scaling.web.pool is in use; add names to it in pillar/topology.yaml"}


def scale_in_target(topology, enrolled, keys, node=None, only_enrolled=False):
    """``{"node"}``: the pool node to remove (``node``, else the highest
    enrolled one, else the highest keyed one: a VM that never enrolled), or
    ``{"refusal"}``: a fixed machine, a name outside the pool, a node that
    is not there, or going below min. ``only_enrolled`` (autoscaling): a
    keyed VM still enrolling is never chosen."""
    fixed = _steps.role(topology, "web")
    low, _ = limits(topology)
    pool = pool_names(topology)
    enrolled = [name for name in pool if name in set(enrolled or ())]
    taken = in_use(topology, enrolled, keys)
    if node:
        node = str(node)
        if node in fixed:
            return {"refusal": f"scale_in: {node} is a fixed machine of pillar/topology.yaml, not a pool node; "
                               "only names of scaling.web.pool scale in"}
        if node not in pool:
            return {"refusal": f"scale_in: {node} is not a name of scaling.web.pool ({', '.join(pool)})"}
        if node not in taken:
            return {"refusal": f"scale_in: {node} is neither enrolled nor keyed on the master: nothing to remove"}
    else:
        candidates = enrolled if only_enrolled else (enrolled or taken)
        if not candidates:
            return {"refusal": "scale_in: no pool node is in use: the web tier is at its fixed machines"}
        node = candidates[-1]
    serving = len(fixed) + len(enrolled)
    after = serving - (1 if node in enrolled else 0)
    if after < low:
        return {"refusal": f"scale_in: removing {node} leaves {after} web machines, below the min of {low} "
                           "(scaling.web.min in pillar/topology.yaml)"}
    return {"node": node}


def decide(direction, sender, now, state, settings, monitors=(), target=None):
    """One autoscaling decision: ``{"direction", "sender", "at", "action":
    "out"|"in"|None, "node", "reason"}``. No action when:

    * ``direction`` is not out or in (the event's data is the monitor's word);
    * ``sender`` (the authenticated minion id) is not a monitor-role machine;
    * autoscaling is off (``settings["autoscale"]["enabled"]``), or paused
      for now (:func:`pause`: an incident, a deploy, a test by hand);
    * the last scaling action, either way, is still running (:func:`running`):
      a VM booting slowly is not a reason to boot another;
    * the last scaling action, either way, ended less than
      ``settings["cooldown"]`` seconds ago: a flapping load can neither boot
      then destroy, nor destroy then boot, faster than that, and a new node
      has the cooldown to take its share before the load is judged again;
    * ``target`` (:func:`next_free` or :func:`scale_in_target`) is a refusal:
      max or min hold.
    """
    decision = {"direction": str(direction or ""), "sender": str(sender or ""), "at": float(now),
                "action": None, "node": None, "reason": ""}

    def none(reason):
        return dict(decision, reason=reason)

    if direction not in DIRECTIONS:
        return none(f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
    if sender not in set(monitors or ()):
        return none(f"sender {sender!r} is not a monitor-role machine ({', '.join(sorted(monitors or ())) or 'none'})")
    if not ((settings or {}).get("autoscale") or {}).get("enabled", True):
        return none("autoscaling is off (pillar scaling:autoscale:enabled)")
    paused = active_pause(state, now)
    if paused:
        return none(f"autoscaling paused {paused.get('by') or 'by hand'} until {iso(paused['until'])}: "
                    f"{paused.get('reason')} (salt-run lemp_scale.resume)")
    cooldown = int((settings or {}).get("cooldown", 0))
    last = (state or {}).get("last") or {}
    if running(state, now, settings):
        return none(f"scale-{last.get('direction')} of {last.get('node')} in progress since {iso(last['at'])}: "
                    f"no scaling before it ends, and then not for the cooldown ({cooldown} s)")
    since = last.get("done_at") or last.get("at")
    if since is not None and now - float(since) < cooldown:
        wait = int(float(since) + cooldown - now)
        ended = "ended" if last.get("done_at") else "at"
        return none(f"cooldown: scale-{last.get('direction')} of {last.get('node')} {ended} {iso(since)}; "
                    f"no scaling for {wait} s more (pillar scaling:cooldown {cooldown} s)")
    if not target or "refusal" in target:
        return none((target or {}).get("refusal") or "no target")
    return dict(decision, action=direction, node=target["node"],
                reason=f"{'high' if direction == 'out' else 'low'} load reported by {sender}")


def by_hand(direction, node, now, who="by hand"):
    """The decision a manual orch.scale_out / orch.scale_in records."""
    return {"direction": direction, "sender": who, "at": float(now), "action": direction, "node": node,
            "reason": f"orch.scale_{direction} run {who}"}


def next_state(state, decision):
    """The state file after ``decision``: ``last`` moves only with an action
    (a refusal does not restart the cooldown), marked running (``done_at``
    None) until its run records its end (:func:`ended_state`); the last
    decisions are kept."""
    state = dict(state or {})
    if decision.get("action"):
        state["last"] = {**{key: decision.get(key) for key in ("direction", "node", "at", "sender")},
                         "done_at": None}
    state["decisions"] = (list(state.get("decisions") or []) + [decision])[-HISTORY:]
    return state


def ended_state(state, decision, now, outcome):
    """The state file once the run of ``decision`` has ended (``outcome``
    "done" or "failed"): its ``last`` gets ``done_at``, from which the
    cooldown counts. Unchanged when ``last`` is another decision's (one
    that lost a race never became ``last``) or has ended already."""
    last = (state or {}).get("last") or {}
    if last.get("at") is None or float(last["at"]) != float(decision.get("at") or -1) \
            or last.get("node") != decision.get("node") or last.get("done_at") is not None:
        return state
    return dict(state, last=dict(last, done_at=float(now), outcome=outcome))


def run_limit(settings, direction):
    """The longest a scaling run can take, in seconds: its steps' own
    timeouts. A run that died without recording its end (the master
    stopped) holds autoscaling no longer than that."""
    settings = settings or {}
    spec = cloud(settings)
    if direction == "in":
        return int(settings.get("drain_timeout", 300)) + int(spec["timeout"]) + 300
    return int(spec["timeout"]) + int(settings.get("enrol_timeout", 600)) + 60


def running(state, now, settings):
    """The last action while its run has not ended, else None. A state file
    written before runs recorded their end has no ``done_at``: ended."""
    last = (state or {}).get("last") or {}
    if last.get("at") is None or "done_at" not in last or last["done_at"] is not None:
        return None
    if float(now) - float(last["at"]) >= run_limit(settings, last.get("direction")):
        return None
    return last


def active_pause(state, now):
    """The pause in ``state`` (``{"at", "until", "reason", "by"}``) while it
    lasts, else None: a pause ends by itself, so a forgotten one does not
    leave the site without autoscaling for good."""
    paused = (state or {}).get("paused") or {}
    if paused.get("until") is None or float(now) >= float(paused["until"]):
        return None
    return paused


def paused_state(state, reason, minutes, now, by="by hand"):
    """The state file with autoscaling paused for ``minutes`` from ``now``."""
    reason = str(reason or "").strip()
    if not reason:
        raise CommandExecutionError("lemp_scale.pause: say why, e.g. reason='incident 42': the log and "
                                    "every refused request show it")
    try:
        minutes = float(minutes)
    except (TypeError, ValueError):
        raise CommandExecutionError(f"lemp_scale.pause: minutes={minutes!r} is not a number") from None
    if not 1 <= minutes <= MAX_PAUSE_MINUTES:
        raise CommandExecutionError(f"lemp_scale.pause: minutes={minutes:g} must be 1..{MAX_PAUSE_MINUTES} "
                                    "(pillar scaling:autoscale:enabled: false turns autoscaling off for good)")
    return dict(state or {}, paused={"at": float(now), "until": float(now) + minutes * 60, "reason": reason,
                                     "by": by})


def iso(at):
    return datetime.datetime.fromtimestamp(float(at), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary(decision):
    """One line for the log and the Zabbix item: what, which node, why."""
    what = (f"scale-{decision['action']} {decision.get('node')}" if decision.get("action")
            else f"no scale-{decision.get('direction') or '?'}")
    return f"{what} (from {decision.get('sender') or '?'}): {decision.get('reason', '')}"


def log_line(decision):
    return f"{iso(decision['at'])} {summary(decision)}\n"


def sender_argv(zabbix, value):
    """``zabbix_sender`` sending ``value`` to the trapper item of the
    master's host, over PSK as its agent (the host accepts nothing else).
    ``zabbix``: {sender, server, port, host, item, psk_file}."""
    return [zabbix.get("sender", "/usr/bin/zabbix_sender"), "-z", zabbix["server"], "-p", str(zabbix.get("port", 10051)),
            "-s", zabbix["host"], "-k", zabbix.get("item", "lemp.scale.decision"), "-o", value,
            "--tls-connect", "psk", "--tls-psk-identity", zabbix["host"], "--tls-psk-file", zabbix["psk_file"]]


def enrol_outcome(tag, data, node):
    """``("done", "")`` or ``("failed", reason)`` when the event ``tag`` /
    ``data`` is orch.enrol's outcome for ``node``, else None. Only the
    master's own runner (lemp_enrol.done/failed) fires these, with the node
    at the top of ``data``; the same tag sent by a minion (``event.send``:
    its data carries the sender's ``id``) is anyone's word and is ignored."""
    if tag not in (ENROL_DONE, ENROL_FAILED) or not isinstance(data, dict) or "id" in data:
        return None
    if data.get("node") != node:
        return None
    if tag == ENROL_DONE:
        return ("done", "")
    return ("failed", str(data.get("reason") or "no reason given"))


def enrolment_finished(store, node):
    """True once orch.enrol has finished with ``node``: enrolled and marked
    serving (lemp_enrol.done, its last step, after HAProxy and Zabbix). A
    record alone is a run in progress: HAProxy may not serve it yet."""
    return _enrol.is_served(store, node)


def cloud(settings):
    """The cloud step's minion and functions (pillar scaling:cloud)."""
    return {"minion": "labhost", "up": "lemp_labcloud.up", "destroy": "lemp_labcloud.destroy", "timeout": 900,
            **((settings or {}).get("cloud") or {})}


def _record_step(decision, zabbix, cooldown=None):
    what = f"scale-{decision['action']}-of-{decision['node']}" if decision.get("action") else \
        f"refused-scale-{decision.get('direction') or 'request'}"
    return _steps.step(f"record-{what}-in-the-scaling-log-and-zabbix", "salt.runner",
                       name="lemp_scale.record", decision=decision, zabbix=zabbix, cooldown=cooldown)


def raced(state, decision, cooldown):
    """The reason an autoscale ``decision`` lost a race, or None: another
    action was recorded within ``cooldown`` after this decision was planned
    (two requests planned at once; the reactor runs orchestrations side by
    side). None for a decision by hand (``cooldown`` None) or without action."""
    last = (state or {}).get("last") or {}
    if cooldown is None or not decision.get("action") or last.get("at") is None:
        return None
    if float(decision["at"]) - float(last["at"]) < float(cooldown):
        return (f"scale-{last.get('direction')} of {last.get('node')} was recorded at {iso(last['at'])}, within the "
                f"cooldown of this decision: nothing done")
    return None


def with_end(steps, decision):
    """``steps`` (a chained plan), then the record of the run's end, from
    which the cooldown counts: after the last step, or after any failed
    step (``onfail``), so a failed run does not hold autoscaling."""
    what = f"scale-{decision['action']}-of-{decision['node']}"
    return list(steps) + [
        _steps.step(f"record-the-end-of-the-{what}", "salt.runner", name="lemp_scale.ended",
                    decision=decision, outcome="done", require=[_steps.requisite(steps[-1])]),
        _steps.step(f"record-the-end-of-the-{what}-after-a-failed-step", "salt.runner", name="lemp_scale.ended",
                    decision=decision, outcome="failed", onfail=[_steps.requisite(item) for item in steps]),
    ]


def out_steps(node, decision, settings, zabbix, cooldown=None):
    """orch.scale_out's runbook for ``node`` (from :func:`next_free`)."""
    spec = cloud(settings)
    return with_end(_steps.chain([
        _record_step(decision, zabbix, cooldown),
        _steps.function(f"boot-{node}-through-the-cloud-minion-{spec['minion']}", spec["up"], spec["minion"],
                        arg=[node], timeout=int(spec["timeout"])),
        _steps.step(f"wait-until-{node}-is-enrolled-by-its-start-event", "salt.runner", name="lemp_scale.wait_enrolled",
                    node=node, timeout=int(settings.get("enrol_timeout", 600))),
    ]), decision)


def in_steps(node, decision, settings, zabbix, lbs, monitors, backend, cooldown=None):
    """orch.scale_in's runbook for ``node`` (from :func:`scale_in_target`):
    out of HAProxy without a failed request first, then out of the enrolled
    store, then the VM, then its Zabbix host (a running agent would register
    it again), its key last, so the slot is not free before the VM is gone."""
    spec = cloud(settings)
    on_lbs = {"arg": [backend, node]}
    steps = [
        _record_step(decision, zabbix, cooldown),
        _steps.function(f"drain-{node}-on-both-lbs", "haproxy_runtime.drain", lbs, **on_lbs),
        _steps.function(f"wait-until-{node}-has-no-session-on-both-lbs", "haproxy_runtime.wait_drained", lbs,
                        **on_lbs, kwarg={"timeout": int(settings.get("drain_timeout", 300))}),
        _steps.function(f"disable-{node}-slot-on-both-lbs-at-runtime", "haproxy_runtime.disable", lbs, **on_lbs),
        _steps.step(f"remove-{node}-from-the-enrolled-store", "salt.runner", name="lemp_enrol.remove", node=node),
        # the slot renders disabled (pillar scaling:enrolled no longer names it):
        # a later reload keeps it out. haproxy.config only, as orch.enrol: no
        # reload now (one would reset other servers' runtime states), and
        # queued behind an enrolment rendering the same file (the reactor
        # runs orchestrations side by side: `queue` does not hold them).
        _steps.state(f"render-{node}-slot-disabled-in-the-haproxy-config-on-both-lbs", "haproxy.config", lbs,
                     queue=True),
        _steps.function(f"destroy-{node}-through-the-cloud-minion-{spec['minion']}", spec["destroy"], spec["minion"],
                        arg=[node], timeout=int(spec["timeout"])),
    ]
    if monitors:
        # after the VM: its agent, while it runs, would autoregister the host again
        steps.append(_steps.function(f"remove-{node}-host-from-zabbix-on-{monitors[0]}", "lemp_zabbix.host_absent",
                                     monitors[0], arg=[node]))
    # forget(name): positional, the state's own `name` is the runner's
    steps.append(_steps.step(f"delete-{node}-minion-key-on-the-master", "salt.runner", name="lemp_enrol.forget",
                             arg=[node]))
    return with_end(_steps.chain(steps), decision)


def refused_steps(decision, zabbix):
    """An autoscale request that changes nothing: the decision is recorded,
    and the run succeeds (a refusal by cooldown or min/max is no fault)."""
    return _steps.chain([
        _record_step(decision, zabbix),
        _steps.step("no-scaling-" + (decision.get("direction") or "request"), "test.succeed_without_changes",
                    name=f"no scaling: {decision['reason']}"),
    ])


def zabbix_target(topology, settings):
    """Where the decisions go: the monitor's trapper, as the master's host."""
    monitors = _steps.role(topology, "monitor")
    if not monitors:
        return {}
    spec = (settings or {}).get("zabbix") or {}
    machines = (topology or {}).get("machines") or {}
    return {"server": machines[monitors[0]]["address"], "port": int(spec.get("port", 10051)),
            "host": topology.get("master"), "item": spec.get("item", "lemp.scale.decision"),
            "psk_file": spec.get("psk_file", "/etc/zabbix/zabbix_agent2.psk"),
            "sender": spec.get("sender", "/usr/bin/zabbix_sender")}


def out_plan(topology, settings, enrolled, keys, now, who="by hand"):
    target = next_free(topology, enrolled, keys)
    if "refusal" in target:
        return {"refusal": target["refusal"]}
    decision = by_hand("out", target["node"], now, who)
    return _steps.plan(out_steps(target["node"], decision, settings, zabbix_target(topology, settings)))


def in_plan(topology, settings, enrolled, keys, now, node=None, backend="web", who="by hand"):
    target = scale_in_target(topology, enrolled, keys, node)
    if "refusal" in target:
        return {"refusal": target["refusal"]}
    decision = by_hand("in", target["node"], now, who)
    return _steps.plan(in_steps(target["node"], decision, settings, zabbix_target(topology, settings),
                                _steps.role(topology, "lb"), _steps.role(topology, "monitor"), backend))


def autoscale_plan(topology, settings, enrolled, keys, state, now, direction, sender, backend="web"):
    """orch.autoscale's plan: the decision's steps. Never a refusal: a
    request that changes nothing is recorded as such."""
    target = None
    if direction == "out":
        target = next_free(topology, enrolled, keys)
    elif direction == "in":
        target = scale_in_target(topology, enrolled, keys, only_enrolled=True)
    decision = decide(direction, sender, now, state, settings, _steps.role(topology, "monitor"), target)
    zabbix = zabbix_target(topology, settings)
    cooldown = int(settings.get("cooldown", 0))
    if decision["action"] == "out":
        return _steps.plan(out_steps(decision["node"], decision, settings, zabbix, cooldown))
    if decision["action"] == "in":
        return _steps.plan(in_steps(decision["node"], decision, settings, zabbix, _steps.role(topology, "lb"),
                                    _steps.role(topology, "monitor"), backend, cooldown))
    return _steps.plan(refused_steps(decision, zabbix))


# -- facts and records on the master ----------------------------------------


def _path(kind):
    return __opts__.get(OPTIONS[kind]) or {"enrolled": ENROLLED_STORE, "state": STATE_FILE,  # noqa: F821
                                           "log": LOG_FILE}[kind]


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise CommandExecutionError(f"{path} is not JSON ({exc}): fix or remove it") from exc
    if not isinstance(data, dict):
        raise CommandExecutionError(f"{path} is not a JSON object: fix or remove it")
    return data


def _enrolled():
    return sorted(_read_json(_path("enrolled")))


def _keys():
    import salt.key  # pylint: disable=import-outside-toplevel

    return sorted(salt.key.get_key(__opts__).list_status("accepted").get("minions", []))  # noqa: F821


def _bad_settings(settings):
    try:
        lemp_scaling.check(settings)
    except CommandExecutionError as exc:
        return {"refusal": str(exc)}
    return None


def out(topology, settings=None, who="by hand"):
    """The plan of orch.scale_out, or {refusal} at max."""
    settings = settings or {}
    return _bad_settings(settings) or out_plan(topology, settings or {}, _enrolled(), _keys(), time.time(), who)


def in_(topology, settings=None, node=None, backend="web", who="by hand"):
    """The plan of orch.scale_in, or {refusal} (below min, a fixed machine)."""
    settings = settings or {}
    return _bad_settings(settings) or in_plan(topology, settings or {}, _enrolled(), _keys(), time.time(), node, backend, who)


def autoscale(topology, direction, sender, settings=None, backend="web"):
    """The plan of orch.autoscale for a request from ``sender``."""
    settings = settings or {}
    return _bad_settings(settings) or autoscale_plan(topology, settings or {}, _enrolled(), _keys(), _read_json(_path("state")), time.time(),
                          direction, sender, backend)


def _write_state(state_path, state):
    tmp = state_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=1, sort_keys=True)
    os.replace(tmp, state_path)


def _log(text):
    log_path = _path("log")
    os.makedirs(os.path.dirname(log_path), mode=0o750, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write(f"{iso(time.time())} {text}\n")


def _update_state(change):
    """``change(state) -> state`` under the state file's lock."""
    state_path = _path("state")
    os.makedirs(os.path.dirname(state_path), mode=0o750, exist_ok=True)
    with open(state_path + ".lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = change(_read_json(state_path))
        _write_state(state_path, state)
    return state


def pause(reason, minutes=60):
    """Pause autoscaling for ``minutes`` (1 to 1440): Zabbix's requests are
    refused and logged meanwhile; orch.scale_out and orch.scale_in by hand
    still run. For an incident, a deploy, or a test by hand.

    CLI Example::

        salt-run lemp_scale.pause reason='incident 42' minutes=120
    """
    state = _update_state(lambda before: paused_state(before, reason, minutes, time.time()))
    paused = state["paused"]
    _log(f"autoscaling paused until {iso(paused['until'])}: {paused['reason']}")
    return {"paused_until": iso(paused["until"]), "reason": paused["reason"]}


def resume():
    """End a pause of autoscaling (:func:`pause`) now.

    CLI Example::

        salt-run lemp_scale.resume
    """
    ended = {}

    def change(before):
        ended.update(active_pause(before, time.time()) or {})
        return {key: value for key, value in before.items() if key != "paused"}
    _update_state(change)
    if ended:
        _log(f"autoscaling resumed (it was paused: {ended.get('reason')})")
    return {"resumed": bool(ended)}


def record(decision, zabbix=None, cooldown=None):
    """Record ``decision``: the state file (cooldown), one line of the log,
    one value of the Zabbix trapper item. A send that fails is logged and
    does not stop the scaling: staff then read the log on the master.
    An autoscale decision (``cooldown`` given) that lost a race to another
    fails here, before its run touches anything (:func:`raced`).

    CLI Example::

        salt-run lemp_scale.status
    """
    state_path, log_path = _path("state"), _path("log")
    for path in (state_path, log_path):
        os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
    with open(state_path + ".lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        before = _read_json(state_path)
        lost = raced(before, decision, cooldown)
        if lost:
            decision = dict(decision, action=None, reason=lost)
        _write_state(state_path, next_state(before, decision))
    sent = "not sent: no monitor machine in the topology"
    if zabbix:
        try:
            proc = subprocess.run(sender_argv(zabbix, summary(decision)), capture_output=True, text=True,
                                  timeout=20, check=False)
            sent = "sent to Zabbix" if proc.returncode == 0 else \
                f"not sent to Zabbix (zabbix_sender exit {proc.returncode}: {(proc.stdout + proc.stderr).strip()[-300:]})"
        except (OSError, subprocess.TimeoutExpired) as exc:
            sent = f"not sent to Zabbix ({exc}); is zabbix_sender installed (state zabbix.sender)?"
    with open(log_path, "a", encoding="utf-8") as handle:
        handle.write(log_line(decision))
        if not sent.startswith("sent"):
            handle.write(f"{iso(time.time())}   {sent}\n")
    if lost:
        raise CommandExecutionError(f"scaling: {lost}")
    return {"decision": summary(decision), "log": log_path, "zabbix": sent}


def ended(decision, outcome="done"):
    """Record that the run of ``decision`` has ended (the last step of
    orch.scale_out / scale_in / autoscale, or after a failed step: the run
    fails by that step anyway): the cooldown counts from now
    (:func:`ended_state`). One log line.

    CLI Example::

        salt-run lemp_scale.status
    """
    now = time.time()
    changed = {}

    def change(before):
        after = ended_state(before, decision, now, outcome)
        changed["yes"] = after is not before
        return after
    _update_state(change)
    if changed.get("yes"):
        _log(f"scale-{decision.get('action')} of {decision.get('node')} {'ended' if outcome == 'done' else 'FAILED'} "
             f"after {int(now - float(decision['at']))} s: the cooldown counts from now")
    return {"ended": summary(decision), "recorded": bool(changed.get("yes"))}


def status():
    """The last scaling action and the last decisions, as the state file keeps them.

    CLI Example::

        salt-run lemp_scale.status
    """
    state = _read_json(_path("state"))
    paused = active_pause(state, time.time())
    return {"last": state.get("last"),
            "paused": {"until": iso(paused["until"]), "reason": paused.get("reason")} if paused else None,
            "decisions": [log_line(d).strip() for d in state.get("decisions") or []]}


def wait_enrolled(node, timeout=600):
    """Wait until orch.enrol has finished with ``node`` (enrolled and marked
    serving in the store: :func:`enrolment_finished`), or fail with
    orch.enrol's reason (``lemp-ha/enrol/failed``), or after ``timeout``
    seconds. The store is read first and after each event or 3 s: an
    enrolment that finished before this step listened (a fast VM joins
    before ``vagrant up`` returns) is not missed."""
    import salt.utils.event  # pylint: disable=import-outside-toplevel

    deadline = time.time() + int(timeout)
    with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=True) as bus:  # noqa: F821
        while time.time() < deadline:
            if enrolment_finished(_read_json(_path("enrolled")), node):
                return {"node": node, "enrolled": True}
            event = bus.get_event(wait=3, tag="lemp-ha/enrol/", full=True)
            outcome = enrol_outcome(event.get("tag"), event.get("data"), node) if event else None
            if outcome and outcome[0] == "failed":
                raise CommandExecutionError(f"scale_out: enrolment of {node} failed: {outcome[1]} "
                                            "(orch.enrol; the slot stays disabled)")
    raise CommandExecutionError(
        f"scale_out: {node} was not enrolled within {timeout} s (step wait-until-{node}-is-enrolled-by-its-start-event):"
        f" did it boot (the cloud step), does its minion reach the master, did orch.enrol run "
        f"(/var/log/salt/master)? Then orch.scale_in pillar='{{\"node\": \"{node}\"}}' frees the slot")
