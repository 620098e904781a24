"""Acceptance of monitoring (issue 10), database and load-balancer tiers.

Needs the lab up with orch.site applied. Talks to Zabbix only through its
API (zabbix_utils, over HTTPS to mon1 trusting the lab CA: the `zabbix`
fixture of test_monitoring.py). Faults are made inside the machines with
lab.run (`systemctl stop` of a service: the machine and its agent stay up,
as when a service dies). Every test puts the lab back in `finally` and waits
until it is healthy again (Galera Synced at full size, one LB holding the
VIP): later tests share the lab.
"""

import time
import uuid

import pytest

from galera_helpers import Writer, sql, synced, tier_of, wait_cluster_healthy
from lemplab import wait_for
from test_monitoring import mon1, zabbix  # noqa: F401  (fixtures)

SEEN = 180  # seconds: new items reach an active agent within RefreshActiveChecks (60 s), plus data


@pytest.fixture(scope="module")
def tier(topology):
    return tier_of(topology)


def hostid(zabbix, name):  # noqa: F811
    hosts = zabbix.host.get(output=["hostid"], filter={"host": name})
    assert hosts, f"Zabbix has no host {name}"
    return hosts[0]["hostid"]


def last_value(zabbix, host, key):  # noqa: F811
    items = zabbix.item.get(output=["lastvalue", "lastclock"], hostids=hostid(zabbix, host), filter={"key_": key})
    return items[0]["lastvalue"] if items and int(items[0]["lastclock"] or 0) else None


def problems(zabbix, host, words, since):  # noqa: F811
    """Problems on `host` opened at or after `since` whose name has all `words`."""
    rows = zabbix.problem.get(output=["eventid", "name", "r_eventid", "clock"], hostids=hostid(zabbix, host),
                              recent=True)
    return [p for p in rows if int(p["clock"]) >= since and all(w.lower() in p["name"].lower() for w in words)]


def open_problem(zabbix, host, words, since):  # noqa: F811
    return any(p["r_eventid"] == "0" for p in problems(zabbix, host, words, since))


def all_resolved(zabbix, host, words, since):  # noqa: F811
    return all(p["r_eventid"] != "0" for p in problems(zabbix, host, words, since))


def now_on(lab, machine):
    return int(lab.run(machine, "date +%s").stdout)


def vip_holders(lab):
    vip = lab.vip
    return [lb for lb in lab.with_role("lb")
            if lab.run(lb, f"ip -o -4 addr show to {vip}/32 | wc -l").stdout.strip() == "1"]


def test_the_db_and_lb_templates_see_a_healthy_platform(lab, zabbix, mon1, tier):  # noqa: F811
    for db in tier["dbs"]:
        wait_for(lambda d=db: last_value(zabbix, d, "galera.wsrep_cluster_size") == str(tier["size"]), SEEN,
                 f"Zabbix to read {db}'s Galera cluster size {tier['size']}", interval=1)
        assert last_value(zabbix, db, "galera.wsrep_cluster_status") == "Primary"
        assert last_value(zabbix, db, "galera.wsrep_local_state") == "Synced"
        assert last_value(zabbix, db, "systemd.unit.info[mariadb.service]") == "active"
        # the shipped MySQL template reads the same account: its status item answers, no false problem
        # ("restarted (uptime < 10m)" is a true event: earlier tests restart the nodes)
        mysql = zabbix.problem.get(output=["name"], hostids=hostid(zabbix, db), recent=False)
        assert not [p["name"] for p in mysql if p["name"].startswith("MySQL")
                    and "has been restarted" not in p["name"]], mysql
    wait_for(lambda: last_value(zabbix, mon1, "lemp.vip.holders") == "1", SEEN,
             "Zabbix to count one LB holding the VIP", interval=1)
    holders = vip_holders(lab)
    assert len(holders) == 1
    assert last_value(zabbix, holders[0], "lemp.vip.held") == "1"
    for arb in tier["arbs"]:
        wait_for(lambda a=arb: (last_value(zabbix, a, "garbd.peers") or "0") != "0", SEEN,
                 f"Zabbix to see garbd on {arb} connected to the cluster", interval=1)


@pytest.fixture
def table(lab, tier):
    name = "mon_probe_" + uuid.uuid4().hex[:8]
    sql(lab, tier["dbs"][0], f"CREATE TABLE app.{name} (id INT PRIMARY KEY, payload VARCHAR(100)) ENGINE=InnoDB")
    yield name
    wait_cluster_healthy(lab, tier)
    sql(lab, tier["dbs"][0], f"DROP TABLE IF EXISTS app.{name}", check=False)


def test_stopping_the_db_writer_and_keepalived_on_both_lbs_opens_their_problems_then_they_resolve(
        lab, zabbix, mon1, tier, table):  # noqa: F811
    """Two faults at once, each with its own problems: mariadb stopped on the
    db writer (the Galera size problem on the survivor, 'mariadb is down' on
    the victim) and keepalived stopped on both LBs ('No load balancer holds
    the VIP' on the monitor host). Their triggers are independent (agents
    on the db nodes, the VIP watch on mon1, each reporting to mon1's own
    address, not through a VIP), so one stop serves both problem-and-recovery
    cycles: they overlap instead of running one after the other."""
    lbs = lab.with_role("lb")
    writer = Writer(lab, tier["web"], lab.db_endpoint, lab.secrets["passwords"]["app_db"], table)
    writer.start()
    try:
        wait_for(lambda: writer.node() in tier["dbs"], 60, "the writer to reach a db node through the VIP")
        victim = writer.node()
        survivor = next(n for n in tier["dbs"] if n != victim)
        stopped_at = now_on(lab, victim)
        lab.run(victim, "systemctl stop mariadb")
        try:
            for lb in lbs:
                lab.run(lb, "systemctl stop keepalived")
            started = time.monotonic()
            wait_for(lambda: not vip_holders(lab), 30, "the VIP to leave every LB")
            wait_for(lambda: open_problem(zabbix, survivor, ["Galera cluster has"], stopped_at), 120,
                     f"the Galera size problem on {survivor} after stopping mariadb on {victim}", interval=2)
            print(f"Galera size problem after {time.monotonic() - started:.0f} s")
            wait_for(lambda: open_problem(zabbix, victim, ["mariadb is down"], stopped_at), 120,
                     f"the 'mariadb is down' problem on {victim}", interval=2)
            wait_for(lambda: open_problem(zabbix, mon1, ["No load balancer holds the VIP"], stopped_at), 120,
                     "the problem 'No load balancer holds the VIP' on the monitor host", interval=2)
            print(f"'No load balancer holds the VIP' after {time.monotonic() - started:.0f} s")
        finally:
            lab.run(victim, "systemctl start mariadb", check=False)
            for lb in lbs:
                lab.run(lb, "systemctl start keepalived", check=False)
        wait_for(lambda: len(vip_holders(lab)) == 1, 60, "exactly one LB to hold the VIP again")
        wait_for(lambda: all_resolved(zabbix, mon1, ["No load balancer holds the VIP"], stopped_at), 120,
                 "the VIP problem resolved", interval=1)
        wait_for(lambda: synced(lab, victim, tier["size"]), 600, f"{victim} to rejoin Synced")
        wait_cluster_healthy(lab, tier)
        for host, words in ((survivor, ["Galera cluster has"]), (victim, ["mariadb is down"])):
            wait_for(lambda h=host, w=words: all_resolved(zabbix, h, w, stopped_at), 180,
                     f"the problem {' '.join(words)!r} on {host} resolved", interval=1)
        assert not problems(zabbix, mon1, ["Split brain"], stopped_at), "both LBs held the VIP at once"
    finally:
        writer.stop()
