"""Database tier acceptance (issue 3): MariaDB Galera + garbd in the lab.

Run by the lead with ./lab test. Uses the `lab` fixture (tests/lab/conftest.py):
lab.run(machine, cmd, check=True), lab.stop(machine), lab.start(machine),
lab.secrets, lab.db_endpoint (host, port reachable from web machines).
Every wait polls a condition with a timeout (lemplab.wait_for).
The tests run in file order and each leaves the cluster healthy."""

import re
import uuid

import pytest

from galera_helpers import (
    Writer, acked_after, health_code, orch_ok, orch_steps, out, salt_run_json, sql, sql_ok, synced, tier_of,
    wait_cluster_healthy, wsrep,
)
from lemplab import wait_for


@pytest.fixture(scope="module")
def tier(topology):
    return tier_of(topology)


def wait_minions(lab, tier, names, timeout=180):
    def answer():
        proc = lab.run(tier["master"], "salt --out=txt --timeout=5 -L " + ",".join(names) + " test.ping", check=False)
        return all(f"{n}: True" in out(proc) for n in names)

    wait_for(answer, timeout, f"minions {', '.join(names)} to answer")


def run_orch(lab, tier, name):
    result = salt_run_json(lab, tier["master"], f"state.orchestrate {name}")
    ok, failed = orch_ok(result)
    assert ok, f"{name} failed: {failed}"
    return result


@pytest.fixture
def table(lab, tier):
    name = "ha_probe_" + uuid.uuid4().hex[:8]
    sql(lab, tier["dbs"][0], f"CREATE TABLE app.{name} (id INT PRIMARY KEY, payload VARCHAR(100)) ENGINE=InnoDB")
    yield name
    wait_cluster_healthy(lab, tier)
    sql(lab, tier["dbs"][0], f"DROP TABLE IF EXISTS app.{name}", check=False)


@pytest.fixture
def writer(lab, tier, table):
    w = Writer(lab, tier["web"], lab.db_endpoint, lab.secrets["passwords"]["app_db"], table)
    yield w
    lab.run(tier["web"], f"touch {w.workdir}/stop", check=False)


def ids_on(lab, machine, table):
    return {int(r[0]) for r in sql(lab, machine, f"SELECT id FROM app.{table}")}


# -- healthy cluster -------------------------------------------------------------


def test_cluster_is_formed_with_every_member_and_health_checks_answer(lab, tier):
    wait_cluster_healthy(lab, tier)
    uuids = {wsrep(lab, n)["wsrep_cluster_state_uuid"] for n in tier["dbs"]}
    assert len(uuids) == 1
    for name in tier["dbs"]:
        assert health_code(lab, name, tier["address"][name]) == "200"
        tls = sql(lab, name, "SHOW GLOBAL VARIABLES LIKE 'wsrep_provider_options'")[0][1]
        assert "socket.ssl_cert" in tls and "gcache.size" in tls
    for arb in tier["arbs"]:
        assert out(lab.run(arb, "systemctl is-active garb", check=False)) == "active"


# A second orch.site changes nothing, starts or joins no node and restarts
# no MariaDB: proved by the orch.site run of test_foundation.py's
# test_one_orch_site_run_after_lab_up_changes_nothing (one run for both
# claims; a third orch.site here cost 100 s of the lab suite).


# -- failures ---------------------------------------------------------------------


def test_writer_node_stopped_no_acknowledged_row_lost_then_rejoins_by_ist(lab, tier, writer, table):
    writer.start()
    acked_after(writer, 50, 120, "before the failure")
    victim = writer.node()
    assert victim in tier["dbs"], f"writer connected to {victim!r}"
    survivor = next(n for n in tier["dbs"] if n != victim)
    lab.stop(victim)
    try:
        wait_for(lambda: synced(lab, survivor, tier["size"] - 1), 120, f"{survivor} to go on without {victim}")
        acked_after(writer, 50, 180, f"after {victim} stopped")
        assert writer.node() == survivor
    finally:
        lab.start(victim)
    wait_for(lambda: synced(lab, victim, tier["size"]), 600, f"{victim} to rejoin")
    writer.stop()
    acked = set(writer.acked())
    assert acked <= ids_on(lab, survivor, table), "acknowledged rows missing on the survivor"
    # caught up by IST, not a full SST
    journal = out(lab.run(victim, "journalctl -u mariadb -b --no-pager; cat /var/log/mysql/error.log 2>/dev/null",
                          check=False))
    assert "IST received" in journal or "Receiving IST" in journal, "rejoined without IST"
    wait_for(lambda: len({wsrep(lab, n).get("wsrep_last_committed") for n in tier["dbs"]}) == 1,
             60, "equal wsrep_last_committed on every node")
    sums = {n: sql(lab, n, f"CHECKSUM TABLE app.{table}")[0][1] for n in tier["dbs"]}
    assert len(set(sums.values())) == 1, sums
    assert acked <= ids_on(lab, victim, table)


def test_stopping_garbd_changes_nothing_for_the_data_nodes(lab, tier, table):
    if not tier["arbs"]:
        pytest.skip("no arbitrator in this topology (odd number of data nodes)")
    arb = tier["arbs"][0]
    lab.run(arb, "systemctl stop garb")
    try:
        for name in tier["dbs"]:
            wait_for(lambda n=name: synced(lab, n, tier["size"] - 1), 60, f"{name} Primary without garbd")
            assert health_code(lab, name, tier["address"][name]) == "200"
        sql(lab, tier["dbs"][0], f"INSERT INTO app.{table} VALUES (1, 'garbd down')")
        wait_for(lambda: ids_on(lab, tier["dbs"][-1], table) == {1}, 30, "the row to replicate")
    finally:
        lab.run(arb, "systemctl start garb")
    wait_cluster_healthy(lab, tier, 120)


def test_split_brain_isolated_node_refuses_writes_and_rejoins(lab, tier, table):
    isolated, rest = tier["dbs"][0], tier["dbs"][1:]
    lab.run(isolated, "ip link set eth0 down")
    try:
        wait_for(lambda: wsrep(lab, isolated).get("wsrep_cluster_status") == "non-Primary",
                 120, f"{isolated} to become non-Primary")
        assert not sql_ok(lab, isolated, f"INSERT INTO app.{table} VALUES (2, 'isolated')")
        assert health_code(lab, isolated, tier["address"][isolated]) == "503"
        for name in rest:
            wait_for(lambda n=name: synced(lab, n, tier["size"] - 1), 120, f"{name} to stay Primary")
        sql(lab, rest[0], f"INSERT INTO app.{table} VALUES (3, 'majority')")
    finally:
        lab.run(isolated, "ip link set eth0 up")
    wait_for(lambda: synced(lab, isolated, tier["size"]), 300, f"{isolated} to rejoin")
    wait_for(lambda: ids_on(lab, isolated, table) == {3}, 60, "the majority's row on the rejoined node")


def _outage_then_recover(lab, tier, writer, table, take_down):
    writer.start()
    acked_after(writer, 50, 120, "before the outage")
    take_down()
    writer.stop()
    acked = set(writer.acked())
    run_orch(lab, tier, "orch.galera_recover")
    wait_cluster_healthy(lab, tier, 300)
    for name in tier["dbs"]:
        missing = acked - ids_on(lab, name, table)
        assert not missing, f"{name} lost {len(missing)} acknowledged rows, e.g. {sorted(missing)[:5]}"


def test_full_outage_then_orch_galera_recover_loses_nothing(lab, tier, writer, table):
    machines = tier["arbs"] + tier["dbs"]

    def take_down():
        # One at a time, as each clean shutdown leaves its node's position
        # (the last one to leave is safe_to_bootstrap).
        for name in machines:
            lab.stop(name)
        # The power comes back on every machine at once: each boot no longer
        # waits for the one before (about 10 s a machine).
        lab.start(*machines)
        wait_minions(lab, tier, machines)

    _outage_then_recover(lab, tier, writer, table, take_down)


def test_sigkill_of_every_mariadbd_then_recover_loses_nothing(lab, tier, writer, table):
    def take_down():
        for arb in tier["arbs"]:
            lab.run(arb, "systemctl stop garb")
        for name in tier["dbs"]:
            # kill, then cancel systemd's on-abort restart
            lab.run(name, "systemctl kill --signal=SIGKILL mariadb; systemctl stop mariadb", check=False)
        for name in tier["dbs"]:
            state = out(lab.run(name, "cat /var/lib/mysql/grastate.dat"))
            assert re.search(r"safe_to_bootstrap:\s*0", state) and re.search(r"seqno:\s*-1", state), state

    _outage_then_recover(lab, tier, writer, table, take_down)


def test_recover_refuses_while_a_cluster_runs_and_only_joins(lab, tier):
    """orch.galera_recover on a healthy cluster must not bootstrap anything."""
    result = run_orch(lab, tier, "orch.galera_recover")
    steps = orch_steps(result)
    assert not [k for k in steps if "bootstrap" in k], list(steps)
    wait_cluster_healthy(lab, tier, 60)
