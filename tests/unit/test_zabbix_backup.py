"""Issue #11 item 5 on the Zabbix side: the file lemp-backup writes for the
agent on the backup store (lemp_backup.monitoring_record, written by
update_status), and the template "lemp-ha backup store" that reads it
(salt/zabbix/server/files/templates/lemp-ha-backup.yaml)."""

import datetime
import json
import pathlib
import re

import yaml

import lemp_backup
from by_path import load  # tests/unit/by_path.py

REPO = pathlib.Path(__file__).resolve().parents[2]
ZABBIX = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]
BACKUP = yaml.safe_load((REPO / "salt" / "backup" / "defaults.yaml").read_text())["backup"]
TEMPLATE_FILE = REPO / "salt" / "zabbix" / "server" / "files" / "templates" / "lemp-ha-backup.yaml"
NAME = "lemp-ha backup store"

UTC = datetime.timezone.utc
T0 = datetime.datetime(2024, 5, 1, 0, 0, tzinfo=UTC)


def at(minutes):
    return T0 + datetime.timedelta(minutes=minutes)


def iso(minutes):
    return lemp_backup.format_time(at(minutes))


def epoch(minutes):
    return int(at(minutes).timestamp())


def template():
    return yaml.safe_load(TEMPLATE_FILE.read_text())["zabbix_export"]["templates"][0]


def items():
    return {i["key"]: i for i in template()["items"]}


def macros():
    return {m["macro"]: m["value"] for m in template()["macros"]}


def load_tool():
    return load("lemp_backup_tool", "salt/backup/files/lemp-backup.py")


PASSED = {"ok": True, "at": iso(270), "step": None, "problems": [], "backup": "20240501T041500Z-incremental-db1",
          "kind": "incremental", "finished": iso(255), "backup_age_seconds": 900, "checked": {"tables": 3},
          "duration_seconds": 95, "archive_complete_until": iso(269), "archive_lag_seconds": 60}


# -- the file (lemp_backup.monitoring_record) ---------------------------------------------------


def test_a_fresh_store_counts_every_age_from_when_its_status_began_and_has_run_no_drill():
    record = lemp_backup.monitoring_record({"since": iso(0)}, at(30))
    assert record["drill_ok"] == -1 and record["ok"] is None
    assert record["updated_ts"] == epoch(30)
    for key in ("drill_at_ts", "drilled_finished_ts", "newest_finished_ts", "archive_complete_until_ts"):
        assert record[key] == epoch(0), key
    assert record["archive_lag_seconds"] == 30 * 60


def test_a_status_without_since_starts_counting_now():
    record = lemp_backup.monitoring_record({}, at(5))
    assert record["since_ts"] == record["newest_finished_ts"] == epoch(5)


def test_after_a_passed_drill_the_file_gives_the_proven_backup_the_newest_backup_and_the_archive():
    status = {"since": iso(0), "drill": PASSED,
              "drill_passed": {"backup": PASSED["backup"], "finished": PASSED["finished"], "at": PASSED["at"]},
              "last_backup": {"id": "20240501T051500Z-incremental-db1", "kind": "incremental",
                              "finished": iso(317)},
              "archive": {"node": "db1", "gap": None, "complete_until": iso(329), "lag_seconds": 1.5}}
    record = lemp_backup.monitoring_record(status, at(330))
    assert record["drill_ok"] == 1 and record["drill_at_ts"] == epoch(270)
    assert record["drilled_backup"] == PASSED["backup"] and record["drilled_finished_ts"] == epoch(255)
    assert record["newest_backup"] == "20240501T051500Z-incremental-db1" and record["newest_finished_ts"] == epoch(317)
    assert record["archive_complete_until_ts"] == epoch(329) and record["archive_lag_seconds"] == 60
    # the drill's own record stays readable as the drill wrote it
    assert record["backup"] == PASSED["backup"] and record["backup_age_seconds"] == 900


def test_a_failed_drill_reports_0_and_the_proven_backup_stays_the_last_passed_ones():
    failed = dict(PASSED, ok=False, step="files", problems=["sha256 differs"], at=iso(1710),
                  backup="20240502T041500Z-incremental-db1", finished=iso(1695))
    status = {"since": iso(0), "drill": failed,
              "drill_passed": {"backup": PASSED["backup"], "finished": PASSED["finished"], "at": PASSED["at"]}}
    record = lemp_backup.monitoring_record(status, at(1720))
    assert record["drill_ok"] == 0 and record["step"] == "files" and record["problems"] == ["sha256 differs"]
    assert record["drilled_finished_ts"] == epoch(255)  # 24 h 25 min old: the 26 h trigger is near


def test_an_archive_reset_by_a_restore_is_not_complete_and_its_lag_counts_from_the_stores_start():
    status = {"since": iso(0), "archive": {"node": None, "cluster": "new", "gap": None, "complete_until": None}}
    record = lemp_backup.monitoring_record(status, at(600))
    assert record["archive_complete_until"] is None and record["archive_complete_until_ts"] == epoch(0)


# -- the writer (salt/backup/files/lemp-backup.py update_status) ------------------------------


def test_every_status_change_rewrites_the_agents_file_0640_with_a_since_that_stays(tmp_path):
    tool = load_tool()
    (tmp_path / "store").mkdir()
    (tmp_path / "monitoring").mkdir()
    out = tmp_path / "monitoring" / "backup-status.json"
    cfg = {"store": str(tmp_path / "store"), "monitoring": {"status_file": str(out)}}
    tool.update_status(cfg, last_backup={"id": "b1", "kind": "full", "finished": iso(0)})
    first = json.loads(out.read_text())
    assert out.stat().st_mode & 0o777 == 0o640
    assert first["newest_backup"] == "b1" and first["newest_finished_ts"] == epoch(0)
    tool.update_status(cfg, archive={"complete_until": iso(1), "node": "db1", "gap": None})
    second = json.loads(out.read_text())
    assert second["since_ts"] == first["since_ts"] and second["newest_backup"] == "b1"
    assert second["archive_complete_until_ts"] == epoch(1)
    status = json.loads((tmp_path / "store" / "status.json").read_text())
    assert status["since"] and status["archive"]["node"] == "db1"
    assert not list((tmp_path / "monitoring").glob(".*.tmp"))


def test_the_drill_writes_the_agents_file_only_through_the_status():
    source = (REPO / "salt/backup/files/lemp-backup.py").read_text()
    assert source.count('["status_file"]') == 1 and 'update_status(cfg, drill=record' in source


# -- the template -------------------------------------------------------------------------------


UUID4 = re.compile(r"^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$")


def test_the_backup_role_links_the_template_and_its_uuids_are_uuid4():
    assert NAME in ZABBIX["server"]["api"]["roles"]["backup"]["templates"]
    t = template()
    uuids = [t["uuid"]] + [i["uuid"] for i in t["items"]] + [x["uuid"] for i in t["items"]
                                                             for x in i.get("triggers", [])]
    assert all(UUID4.match(u) for u in uuids) and len(uuids) == len(set(uuids))


def test_the_agent_reads_the_file_the_backup_formula_writes():
    assert macros()["{$LEMP.BACKUP.STATUS.FILE}"] == BACKUP["lookup"]["monitoring"]["status_file"]
    master = [i for i in template()["items"] if i["type"] == "ZABBIX_ACTIVE"]
    assert [m["key"] for m in master] == ["vfs.file.contents[{$LEMP.BACKUP.STATUS.FILE}]"]
    assert pathlib.PurePath(BACKUP["lookup"]["monitoring"]["status_file"]).parent == \
        pathlib.PurePath(BACKUP["lookup"]["monitoring"]["dir"])
    assert BACKUP["lookup"]["monitoring"]["group"] == "zabbix"  # the agent's, salt/zabbix/agent/config.sls


def test_every_dependent_item_reads_a_field_the_file_has_and_ages_are_computed_by_zabbix():
    record = lemp_backup.monitoring_record({"since": iso(0)}, at(1))
    for key, item in items().items():
        if item["type"] != "DEPENDENT":
            continue
        path = item["preprocessing"][0]["parameters"][0]
        assert item["preprocessing"][0]["type"] == "JSONPATH" and path.startswith("$."), key
        field = path[2:]
        assert isinstance(record[field], int), (key, field)
        if field.endswith("_ts"):
            assert item["preprocessing"][1]["type"] == "JAVASCRIPT" and "Date.now()" in \
                item["preprocessing"][1]["parameters"][0], key
            assert item["units"] == "s", key


def test_the_triggers_cover_a_failed_drill_old_backups_archive_lag_and_a_stale_file():
    by_key = {key: [t["expression"] for t in item.get("triggers", [])] for key, item in items().items()}
    assert by_key["lemp.backup.drill.ok"] == [f"last(/{NAME}/lemp.backup.drill.ok)=0"]
    assert by_key["lemp.backup.restorable.age"] == [
        f"last(/{NAME}/lemp.backup.restorable.age)>{{$LEMP.BACKUP.RESTORABLE.MAX_AGE}}"]
    assert by_key["lemp.backup.newest.age"] == [f"last(/{NAME}/lemp.backup.newest.age)>{{$LEMP.BACKUP.NEWEST.MAX_AGE}}"]
    assert by_key["lemp.backup.archive.lag"] == [
        f"last(/{NAME}/lemp.backup.archive.lag)>{{$LEMP.BACKUP.ARCHIVE.LAG.MAX}}"]
    stale = by_key["lemp.backup.status.elapsed"][0]
    assert "nodata(" in stale and "{$LEMP.BACKUP.STATUS.MAX_AGE}" in stale
    priorities = {t["name"]: t["priority"] for i in template()["items"] for t in i.get("triggers", [])}
    assert priorities["Backup restore drill failed on {HOST.NAME}"] == "HIGH"


def test_thresholds_default_to_a_day_and_a_bit_a_minute_of_lag_and_the_role_may_override_them():
    assert macros()["{$LEMP.BACKUP.RESTORABLE.MAX_AGE}"] == "26h"
    assert macros()["{$LEMP.BACKUP.NEWEST.MAX_AGE}"] == "26h"
    assert macros()["{$LEMP.BACKUP.ARCHIVE.LAG.MAX}"] == "60s"
    role = ZABBIX["server"]["api"]["roles"]["backup"].get("macros") or {}
    assert set(role) <= set(macros())  # a role macro overrides one the template has, never a typo


def test_the_stale_file_problem_waits_while_the_archive_lag_problem_says_more():
    stale = items()["lemp.backup.status.elapsed"]["triggers"][0]
    lag = items()["lemp.backup.archive.lag"]["triggers"][0]
    assert stale["dependencies"] == [{"name": lag["name"], "expression": lag["expression"]}]


def test_the_dashboards_backup_age_widget_shows_the_two_backup_ages_only():
    pattern = next(w for w in ZABBIX["server"]["api"]["dashboard"]["widgets"] if w["name"] == "Backup age")["items"]
    regex = re.compile("|".join(re.escape(p).replace(r"\*", ".*") for p in pattern))
    assert sorted(k for k in items() if regex.fullmatch(k)) == ["lemp.backup.newest.age", "lemp.backup.restorable.age"]


def test_a_monitoring_file_that_cannot_be_written_never_fails_the_status_update(tmp_path, capsys):
    tool = load_tool()
    (tmp_path / "store").mkdir()
    cfg = {"store": str(tmp_path / "store"),
           "monitoring": {"status_file": str(tmp_path / "missing-dir" / "backup-status.json")}}
    tool.update_status(cfg, last_backup={"id": "b1", "kind": "full", "finished": iso(0)})
    assert json.loads((tmp_path / "store" / "status.json").read_text())["last_backup"]["id"] == "b1"
    assert "not written" in capsys.readouterr().err


def test_without_the_archived_binlog_the_backup_keeps_what_mariabackup_said(tmp_path):
    tool = load_tool()
    # mariabackup's GTID (gtid_current_pos) is not trusted, but kept when the archive cannot say better
    with_gtid = {"xtrabackup_binlog_info": "mariadb-bin.000008\t389\t0-7-1191"}
    assert tool.with_archived_gtid({}, tmp_path, "db2", {"cluster_state_uuid": "u"}, with_gtid, wait=0) == with_gtid
    # mariabackup wrote no GTID (gtid_current_pos of a node that never originated one) and the archive does
    # not hold that file: unchanged, the backup restores to its own point only
    without = {"xtrabackup_binlog_info": "mariadb-bin.000008\t389\t"}
    assert tool.with_archived_gtid({}, tmp_path, "db2", {"cluster_state_uuid": "u"}, without, wait=0) == without
