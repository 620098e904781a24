"""Backups in the lab (issue #11, docs/backups.md): the machinery on arb1
and the data nodes, then orch.restore and the drill: bad input touches
nothing, the drill passes on a good chain and fails loudly on a corrupted
one, a backup under write load restores consistently, PITR to just before a
DROP TABLE, and a restore from arb1 alone after every db node is lost (the
RPO gap is reported).

Run by the lead with ./lab test. Uses the `lab` fixture (tests/lab/conftest.py)
and the Galera helpers; every wait polls a condition with a timeout
(lemplab.wait_for). The tests run in file order and each leaves the cluster
healthy and the store consistent.

One chain (a full and two incrementals, the module fixture `chain`) serves
every test that needs backups of quiet data: the checks of the backups
themselves, the refused restores, both drills and the PITR, which restores
it. It is taken after the failover test, so that no later test's plan spans
a change of writer; the PITR comes before the tests that take a backup of
their own, so that `latest` is that chain."""

import datetime
import json
import shlex
import threading
import time
import uuid

import pytest

from galera_helpers import Writer, acked_after, out, sql, tier_of, wait_cluster_healthy
from lemplab import wait_for
from web_helpers import base_url, new_session

# restores replace the database: after the other lab tests (tests/lab/conftest.py)
pytestmark = pytest.mark.replaces_data

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


def insert_rows(lab, node, table, ids, payload):
    """One INSERT per id on ``node``, each its own transaction (autocommit),
    all in one client session (one lxc-attach, not one per row): rows a
    later backup or restore must hold."""
    sql(lab, node, "".join(f"INSERT INTO app.{table} VALUES ({i}, '{payload}');" for i in ids))


def started_writer(lab, tier, table):
    """The app's writes into ``table``, through HAProxy's writer, running (stop it)."""
    writer = Writer(lab, tier["web"], lab.db_endpoint, lab.secrets["passwords"]["app_db"], table)
    writer.start()
    return writer


def seq(gtid_list, domain=DOMAIN):
    for part in (gtid_list or "").split(","):
        d, _, n = part.strip().split("-") if part.strip() else ("", "", "")
        if d == str(domain):
            return int(n)
    return 0


def desync_of(lab, node):
    rows = sql(lab, node, "SELECT @@wsrep_desync")
    return rows[0][0] == "1"


def new_table(lab, tier):
    name = "backup_probe_" + uuid.uuid4().hex[:8]
    sql(lab, tier["dbs"][0], f"CREATE TABLE app.{name} (id INT PRIMARY KEY, payload VARCHAR(100)) ENGINE=InnoDB")
    return name


@pytest.fixture
def table(lab, tier):
    name = new_table(lab, tier)
    yield name
    wait_cluster_healthy(lab, tier)
    sql(lab, tier["dbs"][0], f"DROP TABLE IF EXISTS app.{name}", check=False)


def take_backup(lab, store, kind):
    """``backup_now`` of ``kind``; (the new backup's manifest, the runner's list)."""
    before = set(manifests(lab, store))
    listing = backup_now(lab, kind)
    new = [m for bid, m in manifests(lab, store).items() if bid not in before]
    assert new, f"lemp_backup.now kind={kind} left no new manifest: {listing}"
    made = max(new, key=lambda m: m["finished"])
    assert made["kind"] == kind, f"asked for a {kind} backup, got {made['id']}: {listing}"
    return made, listing


# the chain's rows: in its full, its first incremental, its second one
FULL_ROWS, INC1_ROWS, INC2_ROWS = range(0, 100), range(100, 200), range(200, 220)


@pytest.fixture(scope="module")
def chain(lab, tier, store):
    """A full and two incrementals on it, each after rows of its own in a
    table of its own, taken once for the tests that need backups of quiet
    data (each backup costs a stream, and a wait for the archive to hold
    its binlog position). The PITR test restores it and leaves the table in
    place, as the restore brings it back."""
    name = new_table(lab, tier)
    writer_node = tier["dbs"][0]
    insert_rows(lab, writer_node, name, FULL_ROWS, "before the full")
    full, _ = take_backup(lab, store, "full")
    insert_rows(lab, writer_node, name, INC1_ROWS, "before the incremental")
    inc1, _ = take_backup(lab, store, "incremental")
    insert_rows(lab, writer_node, name, INC2_ROWS, "before the second incremental")
    inc2, listing = take_backup(lab, store, "incremental")
    yield {"table": name, "full": full, "incs": [inc1, inc2], "listing": listing,
           "rows": set(FULL_ROWS) | set(INC1_ROWS) | set(INC2_ROWS)}
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


def mariabackup_on(lab, node):
    return out(lab.run(node, "pgrep -x mariabackup || true", check=False)) != ""


def test_a_killed_backup_leaves_nothing_behind_and_no_node_desynced(lab, tier, store):
    before = set(manifests(lab, store))
    lab.run(store, "systemctl start --no-block lemp-backup@full.service")
    streaming = wait_for(lambda: next((n for n in tier["dbs"] if mariabackup_on(lab, n)), None), 120,
                         "mariabackup streaming on a data node")
    lab.run(store, "systemctl stop lemp-backup@full.service")
    # the stream's end on the node: mariabackup gone, and the node neither left desynced nor locked
    wait_for(lambda: not mariabackup_on(lab, streaming), 60, f"mariabackup to end on {streaming}")
    assert not any(desync_of(lab, n) for n in tier["dbs"]), "a killed backup left a node desynced"
    assert set(manifests(lab, store)) == before, "a killed backup left a manifest"
    assert out(lab.run(store, f"ls -d {STORE}/backups/*.part 2>/dev/null || true", check=False)) == ""
    wait_cluster_healthy(lab, tier)


def index_of(lab, store):
    status = read_json(lab, store, f"{STORE}/status.json")
    cluster = status["archive"]["cluster"]
    return status, read_json(lab, store, f"{STORE}/binlogs/{cluster}/index.json")


def archived_seq(index):
    return max((seq(f["end_gtid"]) for f in index["files"]), default=0)


def test_a_single_write_on_a_quiet_writer_reaches_the_archive_within_seconds(lab, tier, store, table):
    """mariadb-binlog keeps the newest events in its stdio buffer: on a
    quiet writer the last transactions stayed off arb1 (the archive lag grew
    by the minute). The archiver now asks the writer to rotate its binlog
    when committed transactions wait (backup:lookup:archive:rotate_after_seconds,
    10 s; 4 s in the lab's pillar/backup.sls), which writes them out. One
    row, then nothing: it is archived."""
    sql(lab, tier["dbs"][0], f"INSERT INTO app.{table} VALUES (1, 'quiet')")
    top = seq(sql(lab, tier["dbs"][0], "SELECT @@gtid_binlog_pos")[0][0])
    wait_for(lambda: archived_seq(index_of(lab, store)[1]) >= top, 60,
             f"the archive to hold GTID seq {top}, the only write")
    status, _ = index_of(lab, store)
    assert status["archive"]["lag_seconds"] is not None and status["archive"]["lag_seconds"] < 30, status


def test_the_binlog_archive_follows_the_writer_across_a_failover(lab, tier, store, table):
    writer = started_writer(lab, tier, table)
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


def test_a_full_then_an_incremental_backup_land_encrypted_on_arb1_with_matching_checksums(lab, tier, store, chain):
    full, (inc1, inc2), listing = chain["full"], chain["incs"], chain["listing"]
    # the runner's list: all restorable, each incremental on the one before it, from its LSN
    text = json.dumps(listing)
    assert all(m["id"] in text for m in (full, inc1, inc2))
    assert listing.get("newest_restorable", listing.get(tier["master"], {}).get("newest_restorable")) == inc2["id"]
    assert inc1["parent"] == full["id"] and inc1["lsn"]["from"] == full["lsn"]["to"]
    assert inc2["parent"] == inc1["id"] and inc2["lsn"]["from"] == inc1["lsn"]["to"]
    # taken on the writer (the archive's binlogs are its own); never left desynced
    for m in (full, inc1, inc2):
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


def test_pruning_keeps_the_newest_restorable_chain(lab, store):
    lab.run(store, "systemctl start lemp-backup-prune.service")
    code, listing = lab.salt_run("lemp_backup.list")
    assert code == 0
    found = manifests(lab, store)
    newest = max(found.values(), key=lambda m: m["finished"])
    assert newest["id"] in json.dumps(listing)
    if newest["kind"] == "incremental":
        assert newest["chain"] in found



# -- orch.restore and the drill -----------------------------------------------------------

# what the Zabbix agent reads (template "lemp-ha backup store"); the drill record at its top level
DRILL_STATUS = "/var/lib/lemp-backup/monitoring/backup-status.json"


def listing_of(lab):
    code, data = lab.salt_run("lemp_backup.list")
    assert code == 0, data
    assert isinstance(data, dict) and "backups" in data, data
    return data["backups"]


def drill_now(lab, *args):
    code, data = lab.salt_run("lemp_backup.drill", *args, timeout=7200)
    return code, data


def db_time(lab, node):
    """The cluster's clock, UTC, to the second (binlog event times)."""
    return sql(lab, node, "SELECT DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%dT%H:%i:%sZ')")[0][0]


def ids_in(lab, node, table):
    return {int(r[0]) for r in sql(lab, node, f"SELECT id FROM app.{table}", check=False)}


def archive_caught_up(lab, store, when):
    status = read_json(lab, store, f"{STORE}/status.json")
    until = (status.get("archive") or {}).get("complete_until")
    return bool(until) and until >= when


def web_healthy(lab, tier):
    """Every web node's /healthz/deep answers ok: out of maintenance, and the
    restored database answers it (the shallow /healthz asks no database)."""
    webs = lab.with_role("web")
    for web in webs:
        body = out(lab.run(web, "curl -sk https://localhost/healthz/deep", check=False))
        if '"status":"ok"' not in body.replace(" ", ""):
            return False
    return True


def test_a_restore_with_bad_input_gets_a_clear_error_and_touches_nothing(lab, tier, store, chain):
    # the chain: a full and two incrementals, the newest on the other one
    table = chain["table"]
    found = manifests(lab, store)
    newest = max(found.values(), key=lambda m: m["finished"])
    assert newest["kind"] == "incremental" and found[newest["parent"]]["kind"] == "incremental", newest
    leftovers = "ls -d /var/lib/mysql.before-restore-* /var/lib/lemp-restore/* 2>/dev/null || true"
    before = {node: out(lab.run(node, leftovers, check=False)) for node in tier["dbs"]}
    future = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cases = [
        ({"backup": "20000101T000000Z-full-db9", "until": "latest", "confirm": True}, "is not a known backup"),
        ({"backup": newest["id"], "until": "2000-01-01T00:00:00Z", "confirm": True}, "is before backup"),
        ({"backup": "latest", "until": future, "confirm": True}, "is in the future"),
        ({"backup": "latest", "until": "latest", "confirm": "yes"}, "restore:confirm 'yes' must be true or false"),
        (None, "pillar restore is missing"),
    ]
    # a chain with a missing incremental: its parent moved away for the time of the request
    parent = newest["parent"]
    lab.run(store, f"mv {STORE}/backups/{parent} {STORE}/backups-aside-{parent}")
    try:
        ok, detail = lab.orchestrate("orch.restore", {"restore": {"backup": newest["id"], "until": "latest",
                                                                  "confirm": True}})
        assert not ok and f"incremental {parent} is missing" in detail, detail
    finally:
        lab.run(store, f"mv {STORE}/backups-aside-{parent} {STORE}/backups/{parent}")
    for request, message in cases:
        ok, detail = lab.orchestrate("orch.restore", {"restore": request} if request is not None else None)
        assert not ok and message in detail, (request, detail)
    # no confirm: the plan is printed, nothing changes
    ok, detail = lab.orchestrate("orch.restore", {"restore": {"backup": "latest", "until": "latest"}})
    assert ok, detail
    assert "Restore (dry run: nothing is changed" in detail and newest["id"] in detail
    for node in tier["dbs"]:
        assert ids_in(lab, node, table) == chain["rows"]
        assert out(lab.run(node, leftovers, check=False)) == before[node], "a refused restore moved a datadir"
    wait_cluster_healthy(lab, tier)
    assert web_healthy(lab, tier), "the web tier is in maintenance after a refused restore"


def test_the_drill_passes_on_a_good_chain_and_records_age_and_archive_lag(lab, store):
    code, data = drill_now(lab)
    assert code == 0 and "error" not in json.dumps(data)[:300], data
    record = read_json(lab, store, DRILL_STATUS)
    assert record["ok"] is True and record["problems"] == [] and record["drill_ok"] == 1
    assert record["drilled_backup"] == record["backup"]
    assert record["backup_age_seconds"] is not None and record["backup_age_seconds"] < 7200
    assert record["archive_lag_seconds"] is not None and record["archive_lag_seconds"] < 60
    assert record["checked"]["tables"] > 0
    # the scratch server is gone, no system mariadb runs on arb1
    assert out(lab.run(store, f"ls {STORE}/scratch")) == ""
    assert lab.run(store, "pgrep -x mariadbd", check=False).returncode != 0


def test_the_drill_fails_loudly_on_a_corrupted_chain(lab, store):
    found = manifests(lab, store)
    newest = max(found.values(), key=lambda m: m["finished"])
    path = f"{STORE}/backups/{newest['id']}/{newest['files'][0]['name']}"
    offset = newest["files"][0]["size"] // 2
    original = out(lab.run(store, f"dd if={path} bs=1 skip={offset} count=16 status=none | base64"))
    lab.run(store, f"printf 'corrupted bytes!' | dd of={path} bs=1 seek={offset} conv=notrunc status=none")
    try:
        code, data = drill_now(lab)
        assert "the drill FAILED" in json.dumps(data), data
        record = read_json(lab, store, DRILL_STATUS)
        assert record["ok"] is False and record["step"] == "files"
        assert any("checksum differs from the manifest" in p for p in record["problems"]), record
        # logged, and the unit failed
        assert "DRILL FAILED" in out(lab.run(store, "journalctl -u lemp-backup-drill -n 50 --no-pager"))
        assert out(lab.run(store, "systemctl is-failed lemp-backup-drill.service", check=False)) == "failed"
        # the listing no longer offers it
        assert listing_of(lab)[newest["id"]]["restorable"] is False
    finally:
        lab.run(store, f"echo {shlex.quote(original)} | base64 -d | dd of={path} bs=1 seek={offset} conv=notrunc "
                       "status=none")
        lab.run(store, f"rm -f {STORE}/drills/{newest['id']}.json; systemctl reset-failed lemp-backup-drill.service")
    code, data = drill_now(lab)
    assert code == 0 and read_json(lab, store, DRILL_STATUS)["ok"] is True, data


class Visitor(threading.Thread):
    """Requests the site through the VIP during a restore and keeps what it saw."""

    def __init__(self, lab):
        super().__init__(daemon=True)
        self.lab, self.seen, self.stop = lab, [], threading.Event()

    def run(self):
        session = new_session(self.lab)
        while not self.stop.is_set():
            try:
                resp = session.get(base_url(self.lab) + "/", timeout=5)
                self.seen.append((resp.status_code, "Down for maintenance" in resp.text))
            except Exception as exc:  # noqa: BLE001  (counted as a failure)
                self.seen.append((type(exc).__name__, False))
            time.sleep(0.5)


def test_pitr_to_just_before_a_drop_table_brings_back_every_row_before_it_and_none_after(lab, tier, store, chain):
    # the chain's rows are in its full and its incrementals (the newest backups: `latest`); the next ones
    # only in the binlogs
    writer_node, table = tier["dbs"][0], chain["table"]
    after_chain = range(max(chain["rows"]) + 1, 300)
    insert_rows(lab, writer_node, table, after_chain, "after the incremental")
    # binlog times are whole seconds: `until` is a second after the rows above, and the rows below come after it
    last = db_time(lab, writer_node)
    wait_for(lambda: db_time(lab, writer_node) > last, 10, "the cluster's clock to pass the last row's second")
    until = db_time(lab, writer_node)
    wait_for(lambda: db_time(lab, writer_node) > until, 10, "the cluster's clock to pass `until`")
    insert_rows(lab, writer_node, table, range(300, 310), "after until")
    sql(lab, writer_node, f"DROP TABLE app.{table}")
    wait_for(lambda: archive_caught_up(lab, store, until), 60, f"the binlog archive to be complete past {until}")
    visitor = Visitor(lab)
    visitor.start()
    try:
        ok, detail = lab.orchestrate("orch.restore", {"restore": {"backup": "latest", "until": until,
                                                                  "confirm": True}}, timeout=7200)
    finally:
        visitor.stop.set()
        visitor.join(10)
    assert ok, detail
    wait_cluster_healthy(lab, tier, timeout=900)
    for node in tier["dbs"]:
        assert ids_in(lab, node, table) == set(range(300)), node
    # the app serves again, and meanwhile visitors got the maintenance page, never another error
    assert web_healthy(lab, tier)
    assert any(maint for _, maint in visitor.seen), visitor.seen[-20:]
    others = [code for code, maint in visitor.seen if code != 200 and not (code == 503 and maint)]
    assert not others, f"errors other than the maintenance page during the restore: {others[:20]}"
    # the restored cluster is backed up at once, and the old history's later backups are set apart
    status = read_json(lab, store, f"{STORE}/status.json")
    assert status["last_restore"]["cluster"] == status["archive"]["cluster"]
    newest = max(manifests(lab, store).values(), key=lambda m: m["finished"])
    assert newest["kind"] == "full" and newest["galera_position"].startswith(status["last_restore"]["cluster"])


def test_a_backup_taken_under_write_load_restores_consistently(lab, tier, store, table):
    writer = started_writer(lab, tier, table)
    try:
        acked_after(writer, 100, 60, "before the backup")
        before = writer.node()
        backup_now(lab, "full")
        acked_after(writer, 50, 60, "after the backup")
        after = writer.node()
    finally:
        writer.stop()
    found = manifests(lab, store)
    full = max((m for m in found.values() if m["kind"] == "full"), key=lambda m: m["finished"])
    # taken on the writer: no lock there (FLUSH TABLES WITH READ LOCK desyncs a Galera node and moves the
    # writer), so no recorded checksums; the drill restores it and every table passes CHECK TABLE
    assert full["node"] == before and not full.get("check"), full
    code, data = drill_now(lab, f"backup_id={full['id']}")
    assert code == 0 and "error" not in json.dumps(data)[:300], data
    record = read_json(lab, store, DRILL_STATUS)
    assert record["ok"] is True and record["backup"] == full["id"]
    assert record["checked"]["mode"].startswith("CHECK TABLE") and record["checked"]["rows"] >= 100, record
    # and the writer never moved: no failover during the backup
    assert after == before


def test_everything_lost_restores_from_arb1_alone_within_seconds_of_the_kill(lab, tier, store, table):
    backup_now(lab, "full")
    writer = started_writer(lab, tier, table)
    started = time.monotonic()
    try:
        acked_after(writer, 300, 120, "before the loss")
        for node in tier["dbs"]:
            lab.stop(node, kill=True)
        killed = time.monotonic()
    finally:
        lab.run(tier["web"], f"touch {writer.workdir}/stop", check=False)
    acked = writer.acked()
    # the machines come back empty: every datadir wiped
    for node in tier["dbs"]:
        lab.start(node)
        # its MariaDB started at boot and waits for peers that never come: SIGTERM waits as long, SIGKILL does not
        lab.run(node, "systemctl kill --signal=SIGKILL mariadb; systemctl stop mariadb; rm -rf /var/lib/mysql/*",
                check=False, timeout=600)
    try:
        ok, detail = lab.orchestrate("orch.restore", {"restore": {"backup": "latest", "until": "latest",
                                                                  "confirm": True}}, timeout=7200)
        assert ok, detail
        wait_cluster_healthy(lab, tier, timeout=900)
        present = ids_in(lab, tier["dbs"][0], table)
        lost = sorted(set(acked) - present)
        rate = len(acked) / max(killed - started, 1)
        gap = len(lost) / rate if rate else 0
        print(f"RPO with every db node lost: {len(lost)} acknowledged writes lost of {len(acked)} "
              f"(about {gap:.1f} s of writes at {rate:.0f}/s); last acked {max(acked)}, last restored "
              f"{max(present) if present else None}")
        # what is lost is the tail only, and only a few seconds of it
        assert all(i > max(present) for i in lost), lost[:20]
        assert gap <= 5, f"RPO {gap:.1f} s > 5 s"
        for node in tier["dbs"]:
            assert ids_in(lab, node, table) == present
    finally:
        lab.ensure_running(tier["dbs"])
        wait_cluster_healthy(lab, tier, timeout=900)
