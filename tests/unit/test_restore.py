"""Restore and drill (issue #11, docs/backups.md): the request orch.restore
takes, the steps it runs, the commands on the restored node, the data node's
receive and check requests, and the drill's verdict and record. Synthetic
catalogues from test_backup_plans (one transaction a minute)."""

import datetime
import json
import pathlib

import pytest

import lemp_backup
import lemp_backup_job as job
import lemp_restore
from by_path import load  # tests/unit/by_path.py
from lemp_backup import BackupError
from test_backup_plans import UUID, archive, at, binlog, day, ids, iso

REPO = pathlib.Path(__file__).resolve().parents[2]


wrapper = load("lemp_backup_stream_for_restore", "salt/galera/files/lemp-backup-stream.py")
runner = load("lemp_backup_runner_for_restore", "_runners/lemp_backup.py")

STAMP = "20240502T050000Z"


def answer(backups, index=None, now_minute=None):
    """What `lemp-backup list` answers on arb1."""
    index = index if index is not None else archive(now_minute or 1440 + 300)
    return {"manifests": backups, "drills": {}, "binlog_indexes": {UUID: dict(index, cluster_uuid=UUID)},
            "status": {}, "now": iso(now_minute or 1440 + 300)}


# -- the request -----------------------------------------------------------------


def test_a_request_needs_backup_and_until_and_a_boolean_confirm():
    assert lemp_backup.check_request({"backup": "latest", "until": "0-1-5"}) == \
        {"backup": "latest", "until": "0-1-5", "confirm": False}
    assert lemp_backup.check_request({"backup": "latest", "until": "latest", "confirm": True})["confirm"] is True


@pytest.mark.parametrize("request_, message", [
    (None, "pillar restore is missing: give pillar="),
    ("latest", "pillar restore 'latest' must be a mapping"),
    ({"until": "latest"}, "restore:backup is missing"),
    ({"backup": "latest"}, "restore:until is missing"),
    ({"backup": "latest", "until": "latest", "confirm": "yes"}, "restore:confirm 'yes' must be true or false"),
    ({"backup": "latest", "until": "latest", "confirmed": True}, "restore:confirmed is not a restore setting"),
    ({"backup": "../x", "until": "latest"}, "restore:backup '../x' is not a backup id"),
    ({"backup": "latest", "until": "yesterday"}, "restore:until 'yesterday' is neither a time"),
])
def test_a_bad_request_is_refused_naming_the_key(request_, message):
    with pytest.raises(BackupError, match=message.replace("(", r"\(")):
        lemp_backup.check_request(request_)


def test_the_index_replayed_is_the_one_of_the_backups_cluster():
    backups = day(1, 1)
    cat = lemp_backup.catalogue(backups)
    mine, other = {"cluster_uuid": UUID, "files": [binlog(0, 5)]}, {"files": []}
    indexes = {"00000000-1111-2222-3333-444444444444": other, UUID.upper(): mine}
    assert lemp_backup.pick_index(indexes, cat, backups[0]["id"]) is mine
    assert lemp_backup.pick_index(indexes, cat, "latest") is mine
    assert lemp_backup.pick_index({}, cat, "latest")["files"] == []


# -- orch.restore's plan and steps ------------------------------------------------


def plan_for(topology, backups, request, now_minute=1440 + 300, index=None):
    return runner.restore_plan_or_refusal(answer(backups, index, now_minute), request, topology, at(now_minute))


def test_without_confirm_the_restore_only_prints_its_plan(topology):
    backups = day(1, 3)
    request, plan = plan_for(topology, backups, {"backup": backups[0]["id"], "until": iso(1440 + 150)})
    steps = runner.restore_steps(plan, STAMP, request["confirm"], topology, "arb1")
    assert [s["id"] for s in steps] == ["restore-dry-run-nothing-changed"]
    assert steps[0]["state"] == "test.succeed_without_changes"
    text = steps[0]["args"][0]["name"]
    assert f"backup: {backups[0]['id']}" in text and "db1/mariadb-bin.001440" in text
    assert "up to: 2024-05-02T04:30:00Z" in text and "replaces: the data of every data node (db2, db1)" in text


@pytest.mark.parametrize("request_, message", [
    ({"backup": "nope", "until": "latest", "confirm": True}, "restore:backup 'nope' is not a known backup"),
    ({"backup": "BACKUP1", "until": iso(1450), "confirm": True}, "is before backup"),
    ({"backup": "latest", "until": iso(1440 + 900), "confirm": True}, "is in the future"),
    ({"backup": "latest", "until": "latest", "confirm": "true"}, "restore:confirm 'true' must be true or false"),
])
def test_bad_input_is_refused_before_any_step(topology, request_, message):
    backups = day(1, 3)
    request_ = dict(request_, backup=backups[1]["id"] if request_["backup"] == "BACKUP1" else request_["backup"])
    with pytest.raises(ValueError, match=message):
        plan_for(topology, backups, request_)


def test_a_chain_with_a_missing_incremental_is_refused_naming_it(topology):
    backups = day(1, 3)
    missing = backups.pop(1)
    with pytest.raises(ValueError, match=f"incremental {missing['id']} is missing"):
        plan_for(topology, backups, {"backup": backups[-1]["id"], "until": "latest", "confirm": True})


def test_the_confirmed_restore_runs_the_runbook_in_order(topology):
    backups = day(1, 3)
    request, plan = plan_for(topology, backups, {"backup": backups[0]["id"], "until": iso(1440 + 150),
                                                 "confirm": True})
    steps = runner.restore_steps(plan, STAMP, request["confirm"], topology, "arb1")
    order = [s["id"] for s in steps]
    assert len(order) == len(set(order)), "step ids are unique"
    expected = [
        f"restore-{STAMP}-plan", "sync-modules-on-data-nodes", "web-tier-to-maintenance-page", "stop-binlog-archiver-on-arb1",
        "stop-mariadb-on-db1", "stop-mariadb-on-db2", "stop-garbd-on-arb1",
        "send-backups-and-binlogs-from-arb1-to-db2", "prepare-backups-on-db2",
        "set-aside-datadir-on-db1", "set-aside-datadir-on-db2", "copy-back-on-db2",
        "replay-binlogs-on-db2", "bootstrap-restored-cluster-from-db2", "wait-galera-synced-db2",
        "align-gtid-sequence-of-the-restored-cluster-on-db2",
        "set-apart-the-old-history-on-arb1", "start-binlog-archiver-on-arb1", "create-galera-sst-account-on-db2",
        # lemp_galera.join_and_finish: the same steps as orch.galera_recover
        "join-galera-db1", "wait-galera-synced-db1", "create-galera-accounts-on-db2", "start-garbd-on-arb1",
        "galera-cluster-ready",
        "web-tier-back-from-maintenance", "take-full-backup-of-the-restored-cluster-on-arb1",
        "remove-staging-folder-on-db2",
    ]
    assert order == expected
    # each step requires the one before it: the first failure stops the run
    for before, step in zip(steps, steps[1:]):
        assert {"require": [runner._steps.requisite(before)]} in step["args"], step["id"]
    args = {s["id"]: {k: v for a in s["args"] for k, v in a.items()} for s in steps}
    send = args["send-backups-and-binlogs-from-arb1-to-db2"]["arg"][0]
    assert send[:5] == ["runuser", "-u", "lemp-backup", "--", "/usr/local/sbin/lemp-backup"]
    assert send[5:] == ["send", "db2", STAMP, UUID, ",".join(ids(backups[:3])), "db1/mariadb-bin.001440"]
    assert args["prepare-backups-on-db2"]["arg"] == [STAMP, ids(backups[:3])]
    assert args["copy-back-on-db2"]["arg"] == [STAMP, backups[0]["id"]]
    assert args["replay-binlogs-on-db2"]["arg"][1][0]["stop"] == {"datetime_utc": "2024-05-02 04:30:00"}
    assert args["web-tier-to-maintenance-page"]["pillar"]["nginx_maintenance"]["enabled"] is True
    assert args["web-tier-back-from-maintenance"]["pillar"] == {"nginx_maintenance": {"enabled": False}}
    assert args["stop-garbd-on-arb1"]["arg"] == ["garb"]


# -- on the restored node -----------------------------------------------------------


def test_the_restored_node_prepares_the_full_then_each_incremental_onto_it():
    commands = lemp_restore.prepare_commands("/var/lib/lemp-restore/S", ["F", "I1", "I2"])
    assert commands == [
        ["mariabackup", "--prepare", "--target-dir=/var/lib/lemp-restore/S/F"],
        ["mariabackup", "--prepare", "--target-dir=/var/lib/lemp-restore/S/F", "--incremental-dir=/var/lib/lemp-restore/S/I1"],
        ["mariabackup", "--prepare", "--target-dir=/var/lib/lemp-restore/S/F", "--incremental-dir=/var/lib/lemp-restore/S/I2"],
    ]
    assert lemp_restore.copy_back_command("/r/S", "F") == ["mariabackup", "--copy-back", "--target-dir=/r/S/F",
                                                           "--datadir=/var/lib/mysql"]
    with pytest.raises(lemp_restore.CommandExecutionError, match="is not a backup id"):
        lemp_restore.prepare_commands("/r", ["F", "../etc"])
    with pytest.raises(lemp_restore.CommandExecutionError, match="nothing to prepare"):
        lemp_restore.prepare_commands("/r", [])


def test_the_restored_server_replays_alone_without_wsrep_or_network():
    args = lemp_restore.standalone_command("/var/lib/mysql", "/r/S/run")
    assert "--wsrep-on=OFF" in args and "--wsrep-provider=none" in args and "--skip-networking" in args
    assert "--socket=/r/S/run/mysqld.sock" in args
    # the replayed transactions keep the cluster's GTID domain, not the node's local one
    assert "--gtid-domain-id=0" in args and "--wsrep-gtid-mode=OFF" in args
    assert lemp_restore.set_aside_path(STAMP) == f"/var/lib/mysql.before-restore-{STAMP}"
    assert lemp_restore.run_path(STAMP) == f"/run/lemp-restore-{STAMP}"
    with pytest.raises(lemp_restore.CommandExecutionError, match="restore stamp '../x' is not like"):
        lemp_restore.staging("../x")


def test_binlogs_are_replayed_by_gtid_up_to_the_time_or_gtid():
    segments = [{"file": "db1/mariadb-bin.000003", "start_after": "0-2-1560", "stop": None},
                {"file": "db2/mariadb-bin.000001", "start_after": "0-1-1700", "stop": {"gtid": "0-2-1900"}}]
    pipeline = lemp_restore.replay_pipeline(segments, "/r/S", "/r/S/run/mysqld.sock")
    assert pipeline[0] == (["mariadb-binlog", "--base64-output=auto", "--start-position=0-2-1560", "--do-domain-ids=0",
                            "/r/S/binlogs/db1/mariadb-bin.000003"],
                           ["mariadb", "--socket=/r/S/run/mysqld.sock", "--binary-mode"])
    assert "--stop-position=0-2-1900" in pipeline[1][0]
    timed = lemp_backup.binlog_replay_args({"file": "x", "start_after": "0-1-5",
                                            "stop": {"datetime_utc": "2024-05-02 04:29:59"}}, "/b/x")
    assert "--stop-datetime=2024-05-02 04:29:59" in timed
    # a file that also holds a node's local writes (its own gtid_domain_id): mariadb-binlog wants that domain
    # named in the start position (seen in the lab), from the file's own state; only the cluster's is replayed
    local = lemp_backup.binlog_replay_args({"file": "db1/mariadb-bin.000034", "start_after": "0-7-3993",
                                            "file_state": "0-7-3990,7-7-4087", "stop": None}, "/b/x")
    assert local[2:4] == ["--start-position=0-7-3993,7-7-4087", "--do-domain-ids=0"]
    with pytest.raises(BackupError, match="start_after 'x' is not a GTID"):
        lemp_backup.binlog_replay_args({"file": "x", "start_after": "x"}, "/b/x")
    with pytest.raises(lemp_restore.CommandExecutionError, match="is not an archived binlog name"):
        lemp_restore.replay_pipeline([{"file": "../../etc/passwd", "start_after": "0-1-1"}], "/r", "/s")


def test_after_a_restore_the_backups_beyond_the_restored_point_are_superseded():
    backups = day(1, 3)  # GTID seq 1440, 1500, 1560, 1620
    cat = lemp_backup.catalogue(backups)
    marked = lemp_backup.superseded(cat, UUID, 1530, reason=" on " + STAMP)
    assert sorted(marked) == sorted(ids(backups[2:]))
    assert "superseded by the restore to GTID seq 1530 on" in marked[backups[2]["id"]]
    assert lemp_backup.superseded(cat, "00000000-1111-2222-3333-444444444444", 0) == {}
    # recorded like a failed drill: the catalogue no longer restores them
    drills = {bid: {"ok": False, "detail": why} for bid, why in marked.items()}
    assert lemp_backup.catalogue(backups, drills)["chains"][0]["restorable"] == ids(backups[:2])


# -- the data node's requests for restore and check ------------------------------


@pytest.mark.parametrize("text, expected", [
    ("check desync", {"action": "check", "desync": True}),
    (f"receive {STAMP} 20240501T015000Z-full-db2", {"action": "receive", "stamp": STAMP,
                                                    "name": "20240501T015000Z-full-db2"}),
    (f"receive-binlog {STAMP} db1/mariadb-bin.000003", {"action": "receive-binlog", "stamp": STAMP,
                                                        "name": "db1/mariadb-bin.000003"}),
])
def test_the_wrapper_accepts_the_restore_and_check_requests(text, expected):
    assert wrapper.parse_request(text) == expected


@pytest.mark.parametrize("text", [
    "receive ../.. x", f"receive {STAMP} ../etc", f"receive {STAMP}", f"receive-binlog {STAMP} ../x/y",
    f"receive-binlog {STAMP} db1/../../etc", f"receive-binlog {STAMP} mariadb-bin.000003", "check", "check now",
])
def test_the_wrapper_refuses_a_receive_outside_its_staging_folder(text):
    with pytest.raises(wrapper.Refused, match="accepted: 'status'"):
        wrapper.parse_request(text)


def test_the_check_reads_rows_and_checksums_under_one_lock():
    script = wrapper.check_script([("app", "orders"), ("app", "bad`name")])
    assert script[0] == "FLUSH TABLES WITH READ LOCK" and script[-1] == "UNLOCK TABLES"
    assert "SELECT 'rows', 'app.orders', COUNT(*) FROM `app`.`orders`" in script
    assert "CHECKSUM TABLE `app`.`orders`" in script and not any("bad" in s for s in script)
    check = wrapper.parse_check_output("gtid\t0-1-1234\nrows\tapp.orders\t3\napp.orders\t2893475\napp.empty\tNULL\n")
    assert check == {"gtid": "0-1-1234", "rows": {"app.orders": 3},
                     "checksums": {"app.orders": 2893475, "app.empty": 0}}
    # the manifest accepts it
    backup = day(1, 0)[0]
    assert lemp_backup.validate_manifest(dict(backup, check=check)) == []


# -- the drill -----------------------------------------------------------------------


def test_the_drill_restores_the_newest_restorable_chain():
    backups = day(1, 3)
    cat = lemp_backup.catalogue(backups)
    assert lemp_backup.drill_target(cat) == {"backup": backups[-1]["id"], "apply": ids(backups)}
    assert lemp_backup.drill_target(cat, backups[1]["id"])["apply"] == ids(backups[:2])
    missing = backups.pop(1)
    cat = lemp_backup.catalogue(backups)
    assert lemp_backup.drill_target(cat)["backup"] == backups[0]["id"]
    with pytest.raises(BackupError, match=f"incremental {missing['id']} is missing"):
        lemp_backup.drill_target(cat, backups[-1]["id"])
    with pytest.raises(BackupError, match="no restorable backup to drill"):
        lemp_backup.drill_target(lemp_backup.catalogue([]))


def test_the_drill_compares_rows_and_checksums_with_the_manifest():
    expected = {"gtid": "0-1-5", "rows": {"app.a": 3, "app.b": 1}, "checksums": {"app.a": 11, "app.b": 22}}
    assert lemp_backup.compare_check(expected, {"rows": {"app.a": 3, "app.b": 1},
                                                "checksums": {"app.a": 11, "app.b": 22}}) == []
    problems = lemp_backup.compare_check(expected, {"rows": {"app.a": 2, "app.c": 1},
                                                    "checksums": {"app.a": 12, "app.c": 5}})
    assert problems == [
        "app.a: rows 2 restored, 3 on the backup node",
        "app.b: missing from the restored data (the backup node had rows 1)",
        "app.c: in the restored data, not on the backup node",
        "app.a: checksum 12 restored, 11 on the backup node",
        "app.b: missing from the restored data (the backup node had checksum 22)",
        "app.c: in the restored data, not on the backup node",
    ]


def test_the_drill_record_gives_monitoring_the_backup_age_and_the_archive_lag():
    backups = day(1, 3)
    cat = lemp_backup.catalogue(backups)
    target = lemp_backup.drill_target(cat)
    record = lemp_backup.drill_record(True, target, cat, at(1620 + 120), {"complete_until": iso(1620 + 119)},
                                      checked={"mode": "rows", "tables": 2, "rows": 4}, started=at(1620 + 100))
    assert record["ok"] is True and record["backup"] == backups[-1]["id"] and record["kind"] == "incremental"
    assert record["backup_age_seconds"] == 7200 and record["archive_lag_seconds"] == 60
    assert record["duration_seconds"] == 1200 and record["problems"] == [] and record["step"] is None
    failed = lemp_backup.drill_record(False, None, cat, at(2000), None, ["no restorable backup"], step="choose")
    assert failed["ok"] is False and failed["backup"] is None and failed["archive_lag_seconds"] is None
    json.dumps(failed)  # monitoring reads it as JSON


def test_the_scratch_server_is_its_own_and_unreachable():
    args = job.scratch_server_args("/srv/lemp-backup/scratch/S/F", "/srv/lemp-backup/scratch/S/run")
    assert args[:2] == ["/usr/sbin/mariadbd", "--no-defaults"]  # no system option file: no shared datadir/port
    assert "--skip-networking" in args and "--socket=/srv/lemp-backup/scratch/S/run/mysqld.sock" in args


def test_the_scratch_server_is_measured_like_the_backup_node():
    answers = {
        job.USER_TABLES_SQL: [["app", "orders"], ["app", "users"]],
        "SELECT COUNT(*) FROM `app`.`orders`": [["3"]],
        "SELECT COUNT(*) FROM `app`.`users`": [["0"]],
        "CHECKSUM TABLE `app`.`orders`, `app`.`users`": [["app.orders", "2893475"], ["app.users", "0"]],
    }
    assert job.scratch_measure(answers.__getitem__) == {"rows": {"app.orders": 3, "app.users": 0},
                                                        "checksums": {"app.orders": 2893475, "app.users": 0}}
    with pytest.raises(ValueError, match="is not a db.table name"):
        job.quote_table("app.a`b")


def test_restore_stamps_look_like_backup_ids():
    stamp = lemp_restore.new_stamp(datetime.datetime(2024, 5, 2, 5, 0, tzinfo=datetime.timezone.utc))
    assert stamp == STAMP and lemp_restore.check_stamp(stamp) == stamp


# -- the web tier's maintenance page ---------------------------------------------------


def test_in_maintenance_every_request_gets_the_page_but_healthz_stays_up():
    import jinja2
    import yaml

    template = jinja2.Template((REPO / "salt" / "nginx" / "files" / "site.conf.j2").read_text())
    nginx = yaml.safe_load((REPO / "salt" / "nginx" / "defaults.yaml").read_text())["nginx"]
    site = template.render(nginx=nginx, app_dir="/srv/www/app", docroot="public", fpm_socket="/run/php/app.sock",
                           lb_addresses=["10.77.0.11"], client_max_body_size="20m", static_urls=[])
    flag = nginx["maintenance"]["flag"]
    server = site[:site.index("location ")]
    # server level: the flag turns every request into a 503, except health and status pages
    assert f"if (-f {flag}) {{\n        set $lemp_maintenance on;" in server
    assert ('if ($uri ~ "^/(healthz|healthz/deep|nginx_status|fpm-status|fpm-ping)$") {\n'
            '        set $lemp_maintenance off;') in server
    assert "if ($lemp_maintenance = on) {\n        return 503;" in server
    assert server.index("set $lemp_maintenance on") < server.index("if ($uri ~") < server.index("return 503")
    page = site[site.index("location @lemp_maintenance {"):]
    page = page[:page.index("\n    }\n")]
    assert f"root {nginx['maintenance']['page_dir']};" in page
    assert f"rewrite ^ /{nginx['maintenance']['page']} break;" in page and "Retry-After 300 always" in page
    for location in ("location = /healthz {", "location = /healthz/deep {"):
        healthz = site[site.index(location):]
        healthz = healthz[:healthz.index("\n    }\n")]
        assert f"if (-f {flag}) {{\n            return 200 '{{\"status\":\"maintenance\"}}\\n';" in healthz, location
    assert site.count("{") == site.count("}")
    assert (REPO / "salt" / "nginx" / "files" / nginx["maintenance"]["page"]).exists()


def test_a_replay_that_stops_short_of_the_plan_is_refused_before_the_bootstrap():
    lemp_restore.check_reached("0-1-120", 120)
    lemp_restore.check_reached("0-2-120,1-5-3", 120)
    lemp_restore.check_reached("", None)  # a time: not checked
    lemp_restore.check_reached("0-1-125", 120, exact=False)  # latest: the last file may have grown
    with pytest.raises(Exception, match="reached GTID seq 100 of domain 0 .* the plan reaches 120"):
        lemp_restore.check_reached("0-1-100", 120)
    with pytest.raises(Exception, match="reached GTID seq 0 .*nothing.* the plan reaches 7"):
        lemp_restore.check_reached("", 7)


def test_a_plan_to_a_time_leaves_the_end_unchecked_a_gtid_or_latest_checks_it(topology):
    backups = day(1, 3)
    _, to_time = plan_for(topology, backups, {"backup": backups[0]["id"], "until": iso(1440 + 150), "confirm": True})
    _, to_end = plan_for(topology, backups, {"backup": backups[0]["id"], "until": "latest", "confirm": True})
    assert runner.reached_seq(to_time) is None
    assert runner.reached_seq(to_end) == to_end["reaches_seq"] > 0


def test_the_standalone_server_cannot_notify_the_minions_unit():
    env = lemp_restore.server_environment({"PATH": "/usr/sbin:/usr/bin", "NOTIFY_SOCKET": "/run/systemd/notify"})
    assert env == {"PATH": "/usr/sbin:/usr/bin"}
