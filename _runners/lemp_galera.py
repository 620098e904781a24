"""
Galera plans, computed on the master: the orchestrations under ``orch/galera``
and ``orch/galera_*.sls`` call these functions when they are rendered and
list the steps they return.

Each runner function gathers facts (``galera.status`` or ``galera.position``
from every data node, through Salt's LocalClient) and hands them to
a pure function that decides:

* ``classify``: what each data node says about itself (Primary, Synced, has
  Galera data, fresh, unknown), with galera.py's own ``is_primary`` /
  ``is_synced``;
* ``cluster_steps``: form the cluster on a fresh deploy, join what is missing
  on a running one, refuse anything else (``orch.site``, ``orch.galera.bootstrap``);
* ``recover_steps`` and ``positions_steps``: the outage runbook
  (``orch.galera_recover``, then ``orch.galera.recover_positions``), whose
  choice of node is galera.py's ``choose_bootstrap_node``;
* ``rolling_restart_steps``: one data node at a time (``orch.galera_rolling_restart``).

The pure functions take the answers and the data nodes and arbitrators
(``topology.roles.db.members``, ``topology.garbd``), and are unit-tested with
sample answers (tests/unit/test_galera_plans.py).

CLI example (the orchestrations pass the pillar ``topology``)::

    salt-run lemp_galera.cluster topology="$(salt-call --out=json pillar.get topology)"
"""

import importlib.util
import os

# The step builders shared by the lemp_* runners, beside this file.
_spec = importlib.util.spec_from_file_location(
    "lemp_runner_steps", os.path.join(os.path.dirname(os.path.abspath(__file__)), "_steps.py"))
_steps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_steps)
galera = _steps.repo_module("galera")

# How long to wait for a node to finish a state transfer (IST or SST).
JOIN_TIMEOUT = 1800

__virtualname__ = "lemp_galera"


def __virtual__():
    return __virtualname__


# -- pure functions (unit-tested) -------------------------------------------


def members(topology):
    """(data nodes, arbitrators running garbd), by name. garbd runs only
    with an even number of data nodes: the topology decides it (``garbd``)."""
    return _steps.role(topology, "db"), _steps.names((topology or {}).get("garbd"))


def classify(answers, dbs):
    """Sort the data nodes by their ``galera.status`` answer ({name: ret};
    a node missing from it did not answer).

    Returns {primary, synced, unknown, with_data, fresh: [names], uuids: the
    Primary components' cluster uuids, detail: {name: what it said}}."""
    survey = {"primary": [], "synced": [], "unknown": [], "with_data": [], "fresh": [], "uuids": [], "detail": {}}

    def put(kind, name, detail):
        survey[kind].append(name)
        survey["detail"][name] = detail

    for name in dbs:
        ret = answers.get(name)
        grastate = ret.get("grastate") if isinstance(ret, dict) else None
        if isinstance(ret, dict) and ret.get("running") is not None:
            if galera.is_primary(ret):
                put("primary", name, f"Primary, local_state {ret['local_state']}")
                if ret["cluster_state_uuid"] not in survey["uuids"]:
                    survey["uuids"].append(ret["cluster_state_uuid"])
                if galera.is_synced(ret):
                    survey["synced"].append(name)
            elif isinstance(grastate, dict) and grastate.get("error"):
                put("unknown", name, grastate["error"])
            elif (ret["running"] and ret["wsrep_on"]) or (
                    isinstance(grastate, dict) and galera.has_cluster_data(grastate)):
                put("with_data", name, f"not Primary ({ret['cluster_status'] or ret['service']}), has Galera data")
            else:
                put("fresh", name, "no Galera data")
        elif isinstance(ret, str) and "is not available" in ret:
            # the galera module was never synced there: never deployed
            put("fresh", name, "never deployed")
        else:
            put("unknown", name, f"no usable answer: {str(ret)[:200]}")
    return survey


def _summary(detail):
    return "; ".join(f"{name}: {text}" for name, text in sorted(detail.items()))


def join_and_finish(dbs, synced, anchor, arbitrators, after=None):
    """Join ``dbs`` not in ``synced`` one at a time, then the accounts on
    ``anchor``, then garbd, then the final check ``galera-cluster-ready``.
    Nodes already Synced get no step, so a healthy cluster gives a run
    without changes."""
    steps = []
    for name in dbs:
        if name not in synced:
            steps += [
                _steps.function(f"join-galera-{name}", "galera.join", name),
                _steps.function(f"wait-galera-synced-{name}", "galera.wait_synced", name,
                                kwarg={"timeout": JOIN_TIMEOUT}),
            ]
    steps.append(_steps.state(f"create-galera-accounts-on-{anchor}", ["galera.users", "galera.databases"], anchor))
    steps += [_steps.state(f"start-garbd-on-{arb}", ["garbd"], arb) for arb in arbitrators]
    size = len(dbs) + len(arbitrators)
    steps.append(_steps.state("galera-cluster-ready", ["galera.synced"], anchor,
                              pillar={"galera_synced": {"min_cluster_size": size, "timeout": 300}}))
    return _steps.chain(steps, after)


def _join_running(survey, dbs, arbitrators, after=None):
    """A Primary component runs: join the others to it, never bootstrap."""
    anchor = (survey["synced"] or survey["primary"])[0]
    return join_and_finish(dbs, survey["synced"], anchor, arbitrators, after)


def _split(survey):
    if len(survey["uuids"]) > 1:
        return f"refusing: data nodes are Primary in different clusters ({', '.join(survey['uuids'])})"
    return None


def cluster_steps(survey, dbs, arbitrators, after=None):
    """orch.site / orch.galera.bootstrap: form the cluster on a fresh deploy,
    join what is missing on a running one, refuse anything else. It never
    bootstraps while a Primary component runs. ``after``: the id of the step
    the first one requires."""
    if not dbs:
        return []
    summary = _summary(survey["detail"])
    if _split(survey):
        message = f"{_split(survey)}: split cluster, fix by hand. {summary}"
    elif survey["primary"]:
        return _join_running(survey, dbs, arbitrators, after)
    elif survey["unknown"]:
        message = ("refusing to bootstrap: cannot tell whether a Galera cluster is running, no usable answer from "
                   f"{', '.join(survey['unknown'])}. {summary}")
    elif survey["with_data"]:
        message = (f"refusing to bootstrap: no Primary component, but {', '.join(survey['with_data'])} hold Galera "
                   "data: this is an outage, not a fresh deploy. Run: salt-run state.orchestrate orch.galera_recover. "
                   f"{summary}")
    else:
        first = dbs[0]
        return _steps.chain([
            _steps.function(f"bootstrap-new-galera-cluster-on-{first}", "galera.bootstrap", first),
            _steps.function(f"wait-galera-synced-{first}", "galera.wait_synced", first),
            # the SST account must exist on the donor before anyone joins
            _steps.state(f"create-galera-sst-account-on-{first}", ["galera.users"], first),
        ] + join_and_finish(dbs, [first], first, arbitrators), after)
    return _steps.chain([_steps.refuse("galera-cluster-ready", message)], after)


def recover_steps(survey, dbs, arbitrators):
    """orch.galera_recover, steps 1-2: join a running Primary component if
    there is one; refuse when a node does not answer; else stop every data
    node and read the positions afterwards (orch.galera.recover_positions)."""
    summary = _summary(survey["detail"])
    if not dbs:
        message = "the topology has no db machine: nothing to recover"
    elif _split(survey):
        message = f"{_split(survey)}: fix by hand. {summary}"
    elif survey["primary"]:
        return _join_running(survey, dbs, arbitrators)
    elif survey["unknown"]:
        message = (f"refusing to recover: no usable answer from {', '.join(survey['unknown'])} (they may hold the "
                   f"latest transactions); bring their minions back first. {summary}")
    else:
        stops = [_steps.function(f"stop-mariadb-on-{name}", "galera.stop", name) for name in dbs]
        # the positions are read only after the stops: a nested orchestration
        return stops + [_steps.step(
            "recover-galera-from-the-most-advanced-node", "salt.runner",
            name="state.orchestrate", mods="orch.galera.recover_positions",
            require=[_steps.requisite(stop) for stop in stops])]
    return [_steps.refuse("galera-cluster-ready", message)]


def positions(answers, dbs):
    """{name: position} from the ``galera.position`` answers ({name: ret})."""
    found = {}
    for name in dbs:
        ret = answers.get(name)
        found[name] = ret if isinstance(ret, dict) else {"error": f"no usable answer from the minion: {str(ret)[:200]}"}
    return found


def _describe(pos):
    if pos.get("error"):
        return pos["error"]
    return (f"{pos.get('uuid', '')}:{pos.get('seqno', '')} safe_to_bootstrap={pos.get('safe_to_bootstrap', '')}"
            f" ({pos.get('source', '')})")


def positions_steps(found, dbs, arbitrators):
    """orch.galera.recover_positions (steps 3-6 of orch.galera_recover):
    bootstrap the node galera.choose_bootstrap_node names, join the others."""
    summary = "; ".join(f"{name}: {_describe(pos)}" for name, pos in sorted(found.items()))
    try:
        chosen = galera.choose_bootstrap_node(found)
    except galera.UnsafeBootstrap as exc:
        # "ERROR: ": the text as it read when a data node's galera.choose decided
        return [_steps.refuse("galera-cluster-ready", f"refusing to bootstrap: ERROR: {exc} || positions: {summary}")]
    return _steps.chain([
        _steps.step(f"chosen-galera-bootstrap-node-{chosen}", "test.succeed_without_changes",
                    name=f"bootstrapping from {chosen}; positions: {summary}"),
        _steps.function(f"mark-safe-to-bootstrap-{chosen}", "galera.mark_safe_to_bootstrap", chosen),
        _steps.function(f"bootstrap-galera-from-{chosen}", "galera.bootstrap", chosen),
        _steps.function(f"wait-galera-synced-{chosen}", "galera.wait_synced", chosen),
        # No galera.align_gtid_seqno here (orch.restore has it): the others
        # rejoin by IST with their own binlogs, and an applier numbers a
        # replicated transaction with its own counter, so moving the
        # bootstrap node's counter alone made the nodes' GTIDs diverge (the
        # archive then missed the next writer's transactions).
    ] + join_and_finish(dbs, [chosen], chosen, arbitrators))


def rolling_restart_steps(survey, dbs, arbitrators):
    """orch.galera_rolling_restart: refuse unless every data node is Synced in
    one Primary component; write the configuration everywhere; then per node:
    check the cluster is complete, restart it, wait until it is Synced."""
    refused = "galera-rolling-restart-refused"
    if not dbs:
        return [_steps.refuse(refused, "the topology has no db machine")]
    if [name for name in dbs if name not in survey["synced"]] or len(survey["uuids"]) != 1:
        return [_steps.refuse(refused, "refusing a rolling restart: not every data node is Synced in one Primary "
                                       f"component ({_summary(survey['detail'])})")]
    complete = {"min_cluster_size": len(dbs) + len(arbitrators)}
    steps = [_steps.state("apply-galera-config-on-db-nodes", ["galera.config"], dbs)]
    if arbitrators:
        steps.append(_steps.state("apply-garbd-config-on-arbitrators", ["garbd"], arbitrators))
    for name in dbs:
        steps += [
            _steps.function(f"check-galera-cluster-complete-before-restarting-{name}", "galera.wait_synced", name,
                            kwarg=dict(timeout=120, **complete)),
            _steps.function(f"restart-galera-{name}", "galera.restart", name),
            _steps.function(f"wait-galera-synced-{name}", "galera.wait_synced", name,
                            kwarg=dict(timeout=JOIN_TIMEOUT, **complete)),
        ]
    return _steps.chain(steps)


# -- runner functions: gather the facts, return the plan --------------------


def _ask(dbs, fun, timeout):
    """{name: ret} from the data nodes; a node that does not answer is missing."""
    return _steps.ask(__opts__, dbs, fun, timeout, tgt_type="list") if dbs else {}  # noqa: F821


def survey(topology):
    """What every data node says about itself, classified.

    CLI Example::

        salt-run lemp_galera.survey topology=...
    """
    dbs, _ = members(topology)
    return classify(_ask(dbs, "galera.status", 60), dbs)


def cluster(topology, after=None):
    """The plan of orch.galera.bootstrap and orch.galera.site."""
    dbs, arbitrators = members(topology)
    return _steps.plan(cluster_steps(survey(topology), dbs, arbitrators, after))


def recover(topology):
    """The plan of orch.galera_recover."""
    dbs, arbitrators = members(topology)
    return _steps.plan(recover_steps(survey(topology), dbs, arbitrators))


def recover_positions(topology):
    """The plan of orch.galera.recover_positions (every data node stopped)."""
    dbs, arbitrators = members(topology)
    return _steps.plan(positions_steps(positions(_ask(dbs, "galera.position", 900), dbs), dbs, arbitrators))


def rolling_restart_expiry(dbs):
    """Minutes after which the rolling restart's maintenance window expires
    by itself: per data node, a state transfer's timeout and some."""
    return 15 + len(dbs) * (JOIN_TIMEOUT // 60 + 5)


def rolling_restart(topology, maintenance=True):
    """The plan of orch.galera_rolling_restart, inside a maintenance window
    for the data nodes and arbitrators (_steps.with_maintenance)."""
    dbs, arbitrators = members(topology)
    steps = rolling_restart_steps(survey(topology), dbs, arbitrators)
    return _steps.plan(_steps.with_maintenance(steps, topology, "orch.galera_rolling_restart", _steps.run_id(),
                                               dbs + arbitrators, rolling_restart_expiry(dbs), maintenance))
