"""The Galera plans of _runners/lemp_galera.py, from sample answers of the
data nodes, without Salt daemons: which nodes are bootstrapped, joined,
restarted, in which order, and when the runner refuses."""

import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
import lemp_topology  # tests/conftest.py puts _modules on the path
from by_path import load

# The runner by path: _runners on sys.path would shadow _modules/lemp_backup.py
# with the runner of the same name for every later test.
lemp_galera = load("lemp_galera_runner", "_runners/lemp_galera.py")

UUID = "6f8c2a1e-8d3b-11ee-9a51-2b1d8c4f0a11"
OTHER = "0a2b4c6d-8d3b-11ee-9a51-2b1d8c4f0a11"
DBS, ARBS = ["db1", "db2"], ["arb1"]
NOT_DEPLOYED = "'galera.status' is not available."


def status(primary=False, synced=True, grastate=None, running=None, uuid=UUID):
    """A galera.status answer."""
    return {
        "running": primary if running is None else running,
        "wsrep_on": primary,
        "cluster_status": "Primary" if primary else None,
        "local_state": 4 if primary and synced else (2 if primary else None),
        "ready": primary and synced,
        "cluster_size": 3 if primary else 0,
        "cluster_state_uuid": uuid if primary else None,
        "service": "active" if primary else "inactive",
        "grastate": grastate,
    }


DOWN_WITH_DATA = status(grastate={"uuid": UUID, "seqno": -1, "safe_to_bootstrap": 0})


def ids(steps):
    return [step["id"] for step in steps]


def arg(step, key):
    return next(a[key] for a in step["args"] if key in a)


def requires(step):
    return next((a["require"] for a in step["args"] if "require" in a), [])


def plan(answers, dbs=DBS, arbs=ARBS, after=None):
    return lemp_galera.cluster_steps(lemp_galera.classify(answers, dbs), dbs, arbs, after)


def test_members_come_from_the_topology_roles_and_garbd():
    topology = lemp_topology.load(REPO / "pillar" / "topology.yaml")
    assert lemp_galera.members(topology) == (DBS, ARBS)
    three = {"roles": {"db": {"members": [{"name": n} for n in ("db3", "db1", "db2")]}}, "garbd": []}
    assert lemp_galera.members(three) == (["db1", "db2", "db3"], [])


def test_classify_sorts_every_kind_of_answer():
    answers = {
        "db1": status(primary=True),
        "db2": status(primary=True, synced=False),
        "db3": DOWN_WITH_DATA,
        "db4": status(running=True),  # standalone server from the package
        "db5": NOT_DEPLOYED,
        "db6": status(grastate={"error": "grastate.dat has no valid uuid"}),
        # db7 did not answer
    }
    survey = lemp_galera.classify(answers, [f"db{i}" for i in range(1, 8)])
    assert survey["primary"] == ["db1", "db2"] and survey["synced"] == ["db1"]
    assert survey["uuids"] == [UUID]
    assert survey["with_data"] == ["db3"]
    assert survey["fresh"] == ["db4", "db5"]
    assert survey["unknown"] == ["db6", "db7"]
    assert survey["detail"]["db2"] == "Primary, local_state 2"
    assert survey["detail"]["db5"] == "never deployed"
    assert survey["detail"]["db7"] == "no usable answer: None"


def test_fresh_cluster_bootstraps_the_first_node_then_joins_the_others_one_by_one():
    steps = plan({"db1": NOT_DEPLOYED, "db2": NOT_DEPLOYED}, after="apply-highstate-on-database-tier")
    assert ids(steps) == [
        "bootstrap-new-galera-cluster-on-db1", "wait-galera-synced-db1", "create-galera-sst-account-on-db1",
        "join-galera-db2", "wait-galera-synced-db2", "create-galera-accounts-on-db1", "start-garbd-on-arb1",
        "galera-cluster-ready",
    ]
    assert requires(steps[0]) == [{"salt": "apply-highstate-on-database-tier"}]
    # each step waits for the one before
    for before, step in zip(steps, steps[1:]):
        assert requires(step) == [{"salt": before["id"]}]
    assert arg(steps[-1], "pillar") == {"galera_synced": {"min_cluster_size": 3, "timeout": 300}}


def test_running_cluster_with_one_node_missing_only_joins_it():
    steps = plan({"db1": status(primary=True), "db2": DOWN_WITH_DATA})
    assert not [i for i in ids(steps) if "bootstrap" in i]
    assert ids(steps)[:2] == ["join-galera-db2", "wait-galera-synced-db2"]
    assert "create-galera-accounts-on-db1" in ids(steps) and "join-galera-db1" not in ids(steps)


def test_healthy_cluster_only_applies_states():
    steps = plan({"db1": status(primary=True), "db2": status(primary=True)})
    assert {step["state"] for step in steps} == {"salt.state"}
    assert ids(steps) == ["create-galera-accounts-on-db1", "start-garbd-on-arb1", "galera-cluster-ready"]


def test_without_arbitrators_the_cluster_size_is_the_data_nodes():
    dbs = ["db1", "db2", "db3"]
    steps = plan({n: status(primary=True) for n in dbs}, dbs=dbs, arbs=[])
    assert not [i for i in ids(steps) if "garbd" in i]
    assert arg(steps[-1], "pillar")["galera_synced"]["min_cluster_size"] == 3


@pytest.mark.parametrize("answers, reason", [
    ({"db1": status(primary=True), "db2": status(primary=True, uuid=OTHER)},
     "data nodes are Primary in different clusters"),
    ({"db1": status()}, "cannot tell whether a Galera cluster is running, no usable answer from db2"),
    ({"db1": status(), "db2": status(grastate={"uuid": UUID, "seqno": 12, "safe_to_bootstrap": 1})},
     "this is an outage, not a fresh deploy. Run: salt-run state.orchestrate orch.galera_recover"),
], ids=["split-uuids", "unknown-node", "outage-with-data"])
def test_bootstrap_refuses_split_unknown_or_outage(answers, reason):
    steps = plan(answers, after="apply-highstate-on-database-tier")
    assert ids(steps) == ["galera-cluster-ready"]
    assert steps[0]["state"] == "test.fail_without_changes"
    assert reason in arg(steps[0], "name")
    assert requires(steps[0]) == [{"salt": "apply-highstate-on-database-tier"}]


def test_recover_stops_every_node_then_reads_positions():
    survey = lemp_galera.classify({"db1": DOWN_WITH_DATA, "db2": DOWN_WITH_DATA}, DBS)
    steps = lemp_galera.recover_steps(survey, DBS, ARBS)
    assert ids(steps) == ["stop-mariadb-on-db1", "stop-mariadb-on-db2", "recover-galera-from-the-most-advanced-node"]
    assert requires(steps[-1]) == [{"salt": "stop-mariadb-on-db1"}, {"salt": "stop-mariadb-on-db2"}]
    assert arg(steps[-1], "mods") == "orch.galera.recover_positions"


def test_recover_on_a_running_cluster_never_bootstraps():
    survey = lemp_galera.classify({"db1": status(primary=True), "db2": DOWN_WITH_DATA}, DBS)
    steps = lemp_galera.recover_steps(survey, DBS, ARBS)
    assert not [i for i in ids(steps) if "bootstrap" in i or "stop" in i]
    assert "join-galera-db2" in ids(steps)


def test_recover_refuses_when_a_node_does_not_answer():
    survey = lemp_galera.classify({"db1": DOWN_WITH_DATA}, DBS)
    steps = lemp_galera.recover_steps(survey, DBS, ARBS)
    assert ids(steps) == ["galera-cluster-ready"]
    assert "refusing to recover: no usable answer from db2" in arg(steps[0], "name")


def test_recover_positions_bootstraps_the_most_advanced_node():
    answers = {
        "db1": {"uuid": UUID, "seqno": 40, "safe_to_bootstrap": 0, "source": "wsrep-recover"},
        "db2": {"uuid": UUID, "seqno": 42, "safe_to_bootstrap": 0, "source": "wsrep-recover"},
    }
    steps = lemp_galera.positions_steps(lemp_galera.positions(answers, DBS), DBS, ARBS)
    assert ids(steps)[:5] == [
        "chosen-galera-bootstrap-node-db2", "mark-safe-to-bootstrap-db2", "bootstrap-galera-from-db2",
        "wait-galera-synced-db2", "join-galera-db1",
    ]
    assert requires(steps[1]) == [{"test": "chosen-galera-bootstrap-node-db2"}]
    # no GTID alignment in a recovery (the joiners' counters would not follow it)
    assert not any(i.startswith("align-gtid") for i in ids(steps))
    assert "db1: " + UUID + ":40 safe_to_bootstrap=0 (wsrep-recover)" in arg(steps[0], "name")


def test_recover_positions_refuses_when_a_node_is_unreadable():
    answers = {"db1": {"uuid": UUID, "seqno": 40, "safe_to_bootstrap": 0, "source": "grastate"}}
    steps = lemp_galera.positions_steps(lemp_galera.positions(answers, DBS), DBS, ARBS)
    assert ids(steps) == ["galera-cluster-ready"]
    message = arg(steps[0], "name")
    assert message.startswith("refusing to bootstrap: ")
    assert "db2: no usable answer from the minion: None" in message


def test_rolling_restart_goes_one_node_at_a_time_after_the_config():
    survey = lemp_galera.classify({"db1": status(primary=True), "db2": status(primary=True)}, DBS)
    steps = lemp_galera.rolling_restart_steps(survey, DBS, ARBS)
    assert ids(steps) == [
        "apply-galera-config-on-db-nodes", "apply-garbd-config-on-arbitrators",
        "check-galera-cluster-complete-before-restarting-db1", "restart-galera-db1", "wait-galera-synced-db1",
        "check-galera-cluster-complete-before-restarting-db2", "restart-galera-db2", "wait-galera-synced-db2",
    ]
    assert requires(steps[5]) == [{"salt": "wait-galera-synced-db1"}]
    assert arg(steps[2], "kwarg") == {"timeout": 120, "min_cluster_size": 3}


@pytest.mark.parametrize("db2", [status(primary=True, synced=False), status(primary=True, uuid=OTHER), None])
def test_rolling_restart_refuses_unless_every_node_is_synced_in_one_component(db2):
    answers = {"db1": status(primary=True)}
    if db2:
        answers["db2"] = db2
    steps = lemp_galera.rolling_restart_steps(lemp_galera.classify(answers, DBS), DBS, ARBS)
    assert ids(steps) == ["galera-rolling-restart-refused"]
    assert "not every data node is Synced in one Primary component" in arg(steps[0], "name")


def test_the_gtid_counter_is_aligned_on_the_highest_seq_of_the_domain_whatever_its_server_id():
    import galera

    # after a restore replayed db1's transactions (server 463) on db2 (464),
    # db2's own last GTID is behind: its counter must follow 1507, not 1407
    assert galera.highest_seq("0-172818463-1507,0-172818464-1407", 0) == 1507
    assert galera.highest_seq("0-172818463-1507,5-172818464-9000", "0") == 1507, "other domains are not the cluster's"
    assert galera.highest_seq("", 0) == 0
    with pytest.raises(Exception, match="is not a GTID"):
        galera.highest_seq("0-1", 0)
    sql = galera.gtid_alignment_sql(1507)
    assert sql.splitlines()[0] == "SET SESSION wsrep_gtid_seq_no = 1508;"
    # the write that moves the counter leaves nothing behind
    assert "CREATE DATABASE IF NOT EXISTS lemp_ha_gtid_align;" in sql and "DROP DATABASE IF EXISTS lemp_ha_gtid_align;" in sql
