"""Backups in the lab (issue #11, docs/backups.md): the machinery on arb1
and the data nodes. Point-in-time restore (PITR after a DROP TABLE, RPO with
every db node lost) belongs to orch.restore and the drill, still to be built:
their tests come with them.

Run by the lead with ./lab test. Uses the `lab` fixture (tests/lab/conftest.py)
and the Galera helpers; every wait polls a condition with a timeout
(lemplab.wait_for). The tests run in file order and each leaves the cluster
healthy and the store consistent."""

import json
import shlex
import uuid

import pytest

from galera_helpers import Writer, acked_after, out, sql, tier_of, wait_cluster_healthy
from lemplab import wait_for

STORE = "/srv/lemp-backup"
DOMAIN = 0  # wsrep_gtid_domain_id (salt/galera/defaults.yaml, lemp_backup.DOMAIN)


@pytest.fixture(scope="module")
def tier(topology):
    return tier_of(topology)


@pytest.fixture(scope="module")
def store(lab):
    return lab.with_role("backup")[0]


def read_json(lab, machine, path):
    return json.loads(out(lab.run(machine, f"cat {shlex.quote(path)}")))


def manifests(lab, store):
    text = out(lab.run(store, f"for m in {STORE}/backups/*/manifest.json; do [ -f \"$m\" ] && cat \"$m\"; "
                              "echo; done", check=False))
    return {m["id"]: m for m in (json.loads(part) for part in text.split("\n\n") if part.strip())}


def backup_now(lab, kind):
    code, data = lab.salt_run("lemp_backup.now", f"kind={kind}", timeout=3600)
    assert code == 0 and "error" not in json.dumps(data)[:200], data
    return data


def seq(gtid_list, domain=DOMAIN):
    for part in (gtid_list or "").split(","):
        d, _, n = part.strip().split("-") if part.strip() else ("", "", "")
        if d == str(domain):
            return int(n)
    return 0


def desync_of(lab, node):
    rows = sql(lab, node, "SELECT @@wsrep_desync")
    return rows[0][0] == "1"


@pytest.fixture
def table(lab, tier):
    name = "backup_probe_" + uuid.uuid4().hex[:8]
    sql(lab, tier["dbs"][0], f"CREATE TABLE app.{name} (id INT PRIMARY KEY, payload VARCHAR(100)) ENGINE=InnoDB")
    yield name
    wait_cluster_healthy(lab, tier)
    sql(lab, tier["dbs"][0], f"DROP TABLE IF EXISTS app.{name}", check=False)


def test_every_data_node_writes_the_same_gtids_after_the_rolling_restart(lab, tier, table):
    # wsrep_gtid_mode is not dynamic: a highstate writes it, the rolling restart applies it
    if any(sql(lab, n, "SELECT @@wsrep_gtid_mode")[0][0] != "1" for n in tier["dbs"]):
        ok, detail = lab.orchestrate("orch.galera_rolling_restart", timeout=3600)
        assert ok, detail
        wait_cluster_healthy(lab, tier)
    for node in tier["dbs"]:
        assert sql(lab, node, "SELECT @@wsrep_gtid_mode, @@wsrep_gtid_domain_id")[0] == ["1", str(DOMAIN)]
    domains = {n: sql(lab, n, "SELECT @@gtid_domain_id")[0][0] for n in tier["dbs"]}
    assert len(set(domains.values())) == len(tier["dbs"]) and str(DOMAIN) not in domains.values(), domains
    for i in range(5):
        sql(lab, tier["dbs"][i % len(tier["dbs"])], f"INSERT INTO app.{table} VALUES ({i}, 'gtid')")
    wait_cluster_healthy(lab, tier)
    positions = {n: seq(sql(lab, n, "SELECT @@gtid_binlog_pos")[0][0]) for n in tier["dbs"]}
    assert len(set(positions.values())) == 1, f"GTIDs drift between the data nodes: {positions}"


def test_a_full_then_an_incremental_backup_land_encrypted_on_arb1_with_matching_checksums(lab, tier, store, table):
    for i in range(100):
        sql(lab, tier["dbs"][0], f"INSERT INTO app.{table} VALUES ({i}, 'before the full')")
    backup_now(lab, "full")
    for i in range(100, 200):
        sql(lab, tier["dbs"][0], f"INSERT INTO app.{table} VALUES ({i}, 'before the incremental')")
    listing = backup_now(lab, "incremental")
    found = manifests(lab, store)
    full = max((m for m in found.values() if m["kind"] == "full"), key=lambda m: m["finished"])
    inc = max((m for m in found.values() if m["kind"] == "incremental"), key=lambda m: m["finished"])
    # the runner's list: both restorable, the incremental on the full, from its LSN
    text = json.dumps(listing)
    assert full["id"] in text and inc["id"] in text
    assert listing.get("newest_restorable", listing.get(tier["master"], {}).get("newest_restorable")) == inc["id"]
    assert inc["parent"] == full["id"] and inc["lsn"]["from"] == full["lsn"]["to"]
    # taken from a node that is not the writer when one is Synced; never left desynced
    for m in (full, inc):
        assert m["node"] in tier["dbs"]
        assert not desync_of(lab, m["node"])
        assert "key" not in m["encryption"] and m["encryption"]["key_id"].startswith("backup:encryption_key#")
        for entry in m["files"]:
            path = f"{STORE}/backups/{m['id']}/{entry['name']}"
            digest, size = out(lab.run(store, f"sha256sum {path} | cut -d' ' -f1; stat -c %s {path}")).split()
            assert (digest, int(size)) == (entry["sha256"], entry["size"]), m["id"]
            # encrypted at rest: openssl's header, not mbstream's
            assert out(lab.run(store, f"head -c 8 {path}")) == "Salted__"
    # the key decrypts it into an mbstream that mbstream -x accepts, with the LSNs of the manifest
    check = (f"set -e; t=$(mktemp -d); cd $t; openssl enc -d -aes-256-ctr -pbkdf2 -iter 200000 "
             f"-pass file:/etc/lemp-backup/encryption.key -in {STORE}/backups/{full['id']}/backup.mbstream.enc "
             "| mbstream -x; cat xtrabackup_checkpoints; cd /; rm -rf $t")
    assert f"to_lsn = {full['lsn']['to']}" in out(lab.run(store, check, timeout=1800))
    # nothing of the backup stays on a data node
    for node in tier["dbs"]:
        assert out(lab.run(node, "ls -d /tmp/lemp-backup-* 2>/dev/null || true", check=False)) == ""


def test_the_backup_node_is_resynced_when_the_backup_is_killed(lab, tier, store):
    before = set(manifests(lab, store))
    lab.run(store, "systemctl start --no-block lemp-backup@full.service")
    desynced = wait_for(lambda: next((n for n in tier["dbs"] if desync_of(lab, n)), None), 120,
                        "a data node desynced for the backup")
    lab.run(store, "systemctl stop lemp-backup@full.service")
    wait_for(lambda: not desync_of(lab, desynced), 60, f"{desynced} resynced after the killed backup")
    assert set(manifests(lab, store)) == before, "a killed backup left a manifest"
    assert out(lab.run(store, f"ls -d {STORE}/backups/*.part 2>/dev/null || true", check=False)) == ""
    wait_cluster_healthy(lab, tier)


def index_of(lab, store):
    status = read_json(lab, store, f"{STORE}/status.json")
    cluster = status["archive"]["cluster"]
    return status, read_json(lab, store, f"{STORE}/binlogs/{cluster}/index.json")


def archived_seq(index):
    return max((seq(f["end_gtid"]) for f in index["files"]), default=0)


def test_the_binlog_archive_follows_the_writer_across_a_failover(lab, tier, store, table):
    writer = Writer(lab, tier["web"], lab.db_endpoint, lab.secrets["passwords"]["app_db"], table)
    writer.start()
    try:
        acked_after(writer, 50, 60, "before the failover")
        first = writer.node()
        status, index = index_of(lab, store)
        assert status["archive"]["node"] == first
        assert status["archive"]["lag_seconds"] is not None and status["archive"]["lag_seconds"] < 10
        lab.stop(first, kill=True)
        acked_after(writer, 50, 120, "after the failover")
        second = writer.node()
        assert second != first

        def following():
            st, idx = index_of(lab, store)
            return st["archive"]["node"] == second and any(f["node"] == second for f in idx["files"]) and (st, idx)

        status, index = wait_for(following, 120, f"the archive to follow {second}")
        writer.stop()
        last = max(writer.acked())
        # every acknowledged write is archived within a few seconds, by GTID, across both writers
        top = sql(lab, second, "SELECT @@gtid_binlog_pos")[0][0]
        wait_for(lambda: archived_seq(index_of(lab, store)[1]) >= seq(top), 30,
                 f"the archive to reach GTID seq {seq(top)} (row {last})")
        assert status["archive"]["gap"] is None
    finally:
        lab.run(tier["web"], f"touch {writer.workdir}/stop", check=False)
        lab.ensure_running(tier["dbs"])
        wait_cluster_healthy(lab, tier, timeout=900)


def test_pruning_keeps_the_newest_restorable_chain(lab, store):
    lab.run(store, "systemctl start lemp-backup-prune.service")
    code, listing = lab.salt_run("lemp_backup.list")
    assert code == 0
    found = manifests(lab, store)
    newest = max(found.values(), key=lambda m: m["finished"])
    assert newest["id"] in json.dumps(listing)
    if newest["kind"] == "incremental":
        assert newest["chain"] in found
