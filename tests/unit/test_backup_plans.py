"""_modules/lemp_backup.py: manifests, chains, retention, restore plans and the
choice of the backup node, on synthetic catalogues (issue #11).

The synthetic cluster commits one transaction a minute: GTID seq N is
committed N minutes after T0, so times and positions always agree. A full
backup finishes every day at 02:00 (T0 + days), an incremental every hour
after it; the binlog archive holds files of six hours each from the writer."""

import datetime
import hashlib
import pathlib

import pytest

import galera
import lemp_backup
from lemp_backup import BackupError

UTC = datetime.timezone.utc
T0 = datetime.datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
UUID = "6f8c2a1e-8d3b-11ee-9a51-2b1d8c4f0a11"
POLICY = {"daily_fulls": 7, "hourly_incrementals": 48}


def at(minutes):
    return T0 + datetime.timedelta(minutes=minutes)


def iso(minutes):
    return lemp_backup.format_time(at(minutes))


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def manifest(kind, minute, parent=None, chain=None, node="db2", server=2, lsn_from=None):
    """A backup that finished at ``minute`` (GTID seq == minute), started ten minutes before."""
    started = at(minute - 10)
    bid = lemp_backup.backup_id(kind, node, started)
    return {
        "format": 1,
        "id": bid,
        "kind": kind,
        "chain": bid if kind == "full" else chain,
        "parent": parent,
        "node": node,
        "galera_position": f"{UUID}:{minute}",
        "gtid": f"0-{server}-{minute}",
        "binlog": {"file": "mariadb-bin.000012", "pos": 345 + minute},
        "lsn": {"from": 0 if kind == "full" else (lsn_from if lsn_from is not None else 1000 * (minute - 60)),
                "to": 1000 * minute},
        "started": lemp_backup.format_time(started),
        "finished": iso(minute),
        "files": [{"name": "backup.mbstream.enc", "size": 1000 + minute, "sha256": sha(bid)}],
        "size": 1000 + minute,
        "encryption": {"tool": "openssl", "cipher": "aes-256-ctr", "key_id": "backup:encryption_key#1a2b"},
    }


def day(number, incrementals=23, node="db2"):
    """The backups of one day: a full at 02:00 and ``incrementals`` hourly ones on it."""
    base = number * 1440
    full = manifest("full", base, node=node)
    backups = [full]
    for hour in range(1, incrementals + 1):
        previous = backups[-1]
        backups.append(manifest("incremental", base + 60 * hour, parent=previous["id"], chain=full["id"],
                                node=node, lsn_from=previous["lsn"]["to"]))
    return backups


def days(count, incrementals=23):
    return [m for number in range(count) for m in day(number, incrementals)]


def ids(manifests):
    return [m["id"] for m in manifests]


def binlog(start, end, node="db1", server=1, complete=True, name=None):
    """An archived binlog file holding GTID seq start+1 .. end."""
    return {
        "name": name or f"{node}/mariadb-bin.{start:06d}",
        "node": node,
        "start_gtid": f"0-{server}-{start}",
        "end_gtid": f"0-{server}-{end}",
        "first_time": iso(start + 1) if end > start else None,
        "last_time": iso(end) if end > start else None,
        "size": 4096,
        "complete": complete,
    }


def archive(upto, step=360, complete_minutes=None):
    """Six-hour files from seq 0 to ``upto``; the last one still being written."""
    files = [binlog(s, min(s + step, upto)) for s in range(0, upto, step)]
    files[-1]["complete"] = False
    return {"files": files, "complete_until": iso(complete_minutes if complete_minutes is not None else upto)}


# -- manifests ------------------------------------------------------------------


def test_a_backup_id_sorts_by_time_and_names_kind_and_node():
    assert lemp_backup.backup_id("full", "db2", "2024-05-01T01:50:00Z") == "20240501T015000Z-full-db2"
    assert manifest("full", 0)["id"] == "20240501T015000Z-full-db2"
    with pytest.raises(BackupError, match="kind 'differential'"):
        lemp_backup.backup_id("differential", "db2", T0)


def test_a_complete_manifest_is_valid():
    for m in day(0, 3):
        assert lemp_backup.validate_manifest(m) == []
        assert lemp_backup.check_manifest(m) is m
    checked = dict(manifest("full", 0), check={"gtid": "0-2-3", "rows": {"app.orders": 3},
                                               "checksums": {"app.orders": 2893475}})
    assert lemp_backup.validate_manifest(checked) == []


@pytest.mark.parametrize("key, value, message", [
    ("format", 2, "format is 2, expected 1"),
    ("id", "../etc", "id '../etc' is not a backup id"),
    ("kind", "differential", "kind 'differential' is not one of full, incremental"),
    ("chain", "other", "chain 'other' must be the full backup's own id"),
    ("parent", "x", "parent 'x' must be empty for a full backup"),
    ("node", "db 2", "node 'db 2' is not a machine name"),
    ("galera_position", "6f8c:12", "galera_position '6f8c:12' is not uuid:seqno"),
    ("gtid", "0-1", "gtid '0-1' is not a GTID list"),
    ("gtid", "0-1-5,0-2-6", "names domain 0 twice"),
    ("binlog", {"file": "mariadb-bin.000012"}, "binlog {'file': 'mariadb-bin.000012'} must be"),
    ("lsn", {"from": 5, "to": 3}, "lsn {'from': 5, 'to': 3} must be"),
    ("lsn", {"from": 5, "to": 9}, "a full backup starts at LSN 0"),
    ("started", "yesterday", "started 'yesterday' is not a UTC time"),
    ("finished", "2024-04-30T00:00:00Z", "finished 2024-04-30T00:00:00Z is before started"),
    ("files", [], "files must list the stored files"),
    ("files", [{"name": "a/b", "size": 1, "sha256": "0" * 64}], "files[0]"),
    ("size", 1, "size is 1 but the files add up to 1000"),
    ("encryption", {"tool": "gpg"}, "encryption {'tool': 'gpg'} must be"),
    ("encryption", {"tool": "openssl", "cipher": "aes-256-ctr"}, "key_id is missing"),
    ("encryption", {"tool": "openssl", "key_id": "k", "passphrase": "hunter2"},
     "holds passphrase: a manifest names its key (key_id), never contains it"),
    ("check", {"gtid": "0-2-5", "rows": {"orders": 3}}, "check must be {gtid"),
    ("check", {"gtid": "later", "rows": {}}, "check must be {gtid"),
])
def test_a_bad_manifest_is_refused_naming_the_key(key, value, message):
    bad = dict(manifest("full", 0), **{key: value})
    problems = lemp_backup.validate_manifest(bad)
    assert any(message in p for p in problems), problems
    assert all(p.startswith("manifest ") for p in problems)
    with pytest.raises(BackupError, match="manifest"):
        lemp_backup.check_manifest(bad)


def test_an_incremental_must_name_its_chain_and_parent():
    full, inc = day(0, 1)
    assert lemp_backup.validate_manifest(inc) == []
    problems = lemp_backup.validate_manifest(dict(inc, parent=None, chain=inc["id"]))
    assert any("chain" in p for p in problems) and any("parent None must be the id" in p for p in problems)


def test_the_manifest_validator_names_what_is_not_a_mapping():
    assert lemp_backup.validate_manifest(["full"]) == ["manifest is not a mapping (list)"]


def test_stored_files_are_checked_against_the_manifest():
    m = manifest("full", 0)
    entry = m["files"][0]
    good = {entry["name"]: {"size": entry["size"], "sha256": entry["sha256"]}}
    assert lemp_backup.check_files(m, good) == []
    assert "is missing from the store" in lemp_backup.check_files(m, {})[0]
    short = {entry["name"]: {"size": 3, "sha256": entry["sha256"]}}
    assert "has 3 bytes, the manifest says 1000" in lemp_backup.check_files(m, short)[0]
    flipped = {entry["name"]: {"size": entry["size"], "sha256": sha("flipped bytes")}}
    assert "checksum differs" in lemp_backup.check_files(m, flipped)[0]


def test_gtid_lists_and_times_parse():
    assert lemp_backup.parse_gtid_list("0-1-100,1-2-5") == {0: (1, 100), 1: (2, 5)}
    assert lemp_backup.parse_gtid_list("") == {}
    assert lemp_backup.gtid_seq("1-2-5,0-1-100") == 100
    assert lemp_backup.gtid_seq("1-2-5") == 0
    assert lemp_backup.gtid_in("1-2-5,0-1-100") == "0-1-100"
    assert lemp_backup.parse_time("2024-05-01T04:00:00+02:00") == T0
    assert lemp_backup.parse_time("2024-05-01 02:00:00") == T0  # no offset: UTC
    assert lemp_backup.format_time(T0) == "2024-05-01T02:00:00Z"


# -- the catalogue --------------------------------------------------------------


def test_the_catalogue_orders_each_chain_from_its_full():
    backups = days(2, 3)
    shuffled = list(reversed(backups))
    cat = lemp_backup.catalogue(shuffled)
    assert [c["id"] for c in cat["chains"]] == [backups[0]["id"], backups[4]["id"]]
    assert cat["chains"][0]["restorable"] == ids(backups[:4])
    assert cat["chains"][1]["restorable"] == ids(backups[4:])
    assert all(c["problem"] is None and c["unrestorable"] == [] for c in cat["chains"])
    assert cat["chains"][1]["restorable_until"] == iso(1440 + 180)
    assert cat["invalid"] == []


def test_a_chain_with_a_missing_incremental_is_restorable_only_up_to_the_gap():
    backups = day(0, 4)
    missing = backups.pop(2)
    cat = lemp_backup.catalogue(backups)
    chain = cat["chains"][0]
    assert chain["restorable"] == ids(backups[:2])
    assert chain["unrestorable"] == ids(backups[2:])
    assert f"incremental {missing['id']} is missing" in chain["problem"]
    assert f"restorable only up to {backups[1]['id']}" in chain["problem"]


def test_incrementals_without_their_full_restore_nothing():
    backups = day(0, 2)[1:]
    chain = lemp_backup.catalogue(backups)["chains"][0]
    assert chain["restorable"] == [] and chain["full"] is None
    assert "full backup" in chain["problem"] and "is missing" in chain["problem"]


def test_an_lsn_gap_breaks_the_chain_even_when_the_parent_links():
    backups = day(0, 2)
    backups[2]["lsn"] = {"from": 7, "to": backups[2]["lsn"]["to"]}
    chain = lemp_backup.catalogue(backups)["chains"][0]
    assert chain["restorable"] == ids(backups[:2])
    assert "starts at LSN 7" in chain["problem"] and "a backup between them is missing" in chain["problem"]


def test_two_incrementals_on_one_parent_stop_the_chain_there():
    backups = day(0, 1)
    twin = manifest("incremental", 90, parent=backups[0]["id"], chain=backups[0]["id"],
                    lsn_from=backups[0]["lsn"]["to"])
    chain = lemp_backup.catalogue(backups + [twin])["chains"][0]
    assert chain["restorable"] == [backups[0]["id"]]
    assert "all build on" in chain["problem"]


def test_a_failed_drill_makes_a_backup_and_what_follows_unrestorable():
    backups = day(0, 3)
    drills = {backups[2]["id"]: {"ok": False, "at": iso(300), "detail": "table checksums differ"}}
    chain = lemp_backup.catalogue(backups, drills)["chains"][0]
    assert chain["restorable"] == ids(backups[:2])
    assert "failed its drill: table checksums differ" in chain["problem"]
    drills = {backups[0]["id"]: {"ok": False, "detail": "prepare failed"}}
    assert lemp_backup.catalogue(backups, drills)["chains"][0]["restorable"] == []


def test_invalid_and_duplicate_manifests_are_left_out_and_listed():
    backups = day(0, 1)
    broken = dict(manifest("full", 1440), kind="weekly")
    cat = lemp_backup.catalogue(backups + [dict(backups[1]), broken])
    assert set(cat["backups"]) == set(ids(backups))
    problems = {e["id"]: e["problems"] for e in cat["invalid"]}
    assert "id is used by another backup too" in problems[backups[1]["id"]][0]
    assert any("kind 'weekly'" in p for p in problems[broken["id"]])


def test_the_listing_shows_age_and_what_cannot_be_restored():
    backups = day(0, 2)
    del backups[1]
    lines = lemp_backup.listing(lemp_backup.catalogue(backups), at(240))
    assert lines[0].startswith(backups[0]["id"]) and "(4 h ago)" in lines[0] and "restorable" in lines[0]
    assert "NOT restorable" in lines[1]
    assert lines[2].startswith(f"  chain {backups[0]['id']}: incremental")


# -- the next backup ------------------------------------------------------------


def test_an_incremental_builds_on_the_newest_backup_of_the_newest_chain():
    backups = days(2, 3)
    nxt = lemp_backup.plan_backup(lemp_backup.catalogue(backups), "incremental")
    assert nxt == {"kind": "incremental", "chain": backups[4]["id"], "parent": backups[-1]["id"],
                   "from_lsn": backups[-1]["lsn"]["to"]}
    assert lemp_backup.plan_backup(lemp_backup.catalogue([]), "full")["parent"] is None


def test_no_incremental_is_taken_on_a_gap_or_without_a_full():
    with pytest.raises(BackupError, match="take a full backup first"):
        lemp_backup.plan_backup(lemp_backup.catalogue([]), "incremental")
    backups = day(0, 3)
    del backups[1]
    with pytest.raises(BackupError, match="is broken .* take a full backup"):
        lemp_backup.plan_backup(lemp_backup.catalogue(backups), "incremental")


# -- retention ------------------------------------------------------------------


def test_retention_keeps_exactly_what_the_policy_says():
    """Nine days of a daily full and 23 hourly incrementals; 7 fulls and 48
    incrementals kept: the 7 newest fulls (days 2-8); the 48 newest
    incrementals are days 8 and 7 (46) and the last two of day 6, which need
    the rest of day 6's chain."""
    week = {number: day(number) for number in range(9)}
    backups = [m for number in range(9) for m in week[number]]
    now = at(8 * 1440 + 23 * 60 + 30)
    plan = lemp_backup.retention(lemp_backup.catalogue(backups), POLICY, now)
    fulls = [week[n][0]["id"] for n in range(2, 9)]
    incrementals = [m["id"] for n in (6, 7, 8) for m in week[n][1:]]
    assert set(plan["keep"]) == set(fulls) | set(incrementals)
    assert len(plan["keep"]) == 7 + 69
    assert plan["delete"] == [m["id"] for m in backups if m["id"] not in plan["keep"]]
    assert set(plan["delete"]) == {week[0][0]["id"], week[1][0]["id"]} | {
        m["id"] for n in range(6) for m in week[n][1:]}
    reasons = plan["reasons"]
    assert reasons[week[8][0]["id"]] == "full 1 of the 7 newest (daily_fulls)"
    assert reasons[week[2][0]["id"]] == "full 7 of the 7 newest (daily_fulls)"
    assert reasons[week[8][23]["id"]] == "incremental 1 of the 48 newest (hourly_incrementals)"
    assert reasons[week[6][22]["id"]] == "incremental 48 of the 48 newest (hourly_incrementals)"
    assert reasons[week[6][1]["id"]] == f"needed by the kept incremental {week[6][22]['id']}"
    assert reasons[week[1][0]["id"]] == "outside the policy"
    # binlogs are kept from the oldest kept backup on: day 2's full
    assert plan["binlogs"] == {"keep_from_gtid": "0-2-2880", "keep_from_seq": 2880,
                               "backup": week[2][0]["id"], "finished": iso(2880)}


def test_retention_counts_backups_so_a_stalled_backup_job_deletes_nothing_more():
    backups = days(9)
    cat = lemp_backup.catalogue(backups)
    soon = lemp_backup.retention(cat, POLICY, at(9 * 1440))
    month_later = lemp_backup.retention(cat, POLICY, at(40 * 1440))
    assert soon["keep"] == month_later["keep"]


def test_retention_never_deletes_the_newest_restorable_chain():
    backups = days(3, 3)
    plan = lemp_backup.retention(lemp_backup.catalogue(backups), {"daily_fulls": 1, "hourly_incrementals": 0},
                                 at(3 * 1440))
    assert plan["keep"] == ids(backups[8:])
    assert plan["reasons"][backups[9]["id"]] == "in the newest restorable chain, never deleted"


def test_a_newer_unrestorable_chain_does_not_count_as_a_kept_full():
    backups = days(3, 1)
    drills = {backups[4]["id"]: {"ok": False, "detail": "prepare failed"}}
    plan = lemp_backup.retention(lemp_backup.catalogue(backups, drills),
                                 {"daily_fulls": 1, "hourly_incrementals": 0}, at(3 * 1440))
    # day 1's chain is the newest restorable one; day 2's failed full stays to be looked at
    assert plan["keep"] == ids(backups[2:])
    assert "not restorable" in plan["reasons"][backups[4]["id"]]
    assert plan["delete"] == ids(backups[:2])
    assert plan["binlogs"]["backup"] == backups[2]["id"]


def test_unrestorable_backups_older_than_every_kept_one_are_deleted():
    backups = days(3, 2)
    gap = backups.pop(1)  # day 0 loses its first incremental
    plan = lemp_backup.retention(lemp_backup.catalogue(backups), {"daily_fulls": 2, "hourly_incrementals": 0},
                                 at(3 * 1440))
    assert gap["id"] not in plan["keep"] + plan["delete"]
    # day 0's full is outside the policy, its cut-off incremental is older than every kept backup,
    # day 1's incrementals are outside the policy (hourly_incrementals: 0)
    assert plan["delete"] == ids(backups[:2] + backups[3:5])
    assert plan["reasons"][backups[1]["id"]] == "not restorable and older than every kept backup"


def test_binlogs_a_kept_backup_needs_are_never_pruned():
    index = archive(9 * 1440)
    prune = lemp_backup.binlogs_to_prune(index, 2880)
    assert prune == sorted(f["name"] for f in index["files"] if lemp_backup.gtid_seq(f["end_gtid"]) <= 2880)
    assert "db1/mariadb-bin.002520" in prune and "db1/mariadb-bin.002880" not in prune
    assert lemp_backup.binlogs_to_prune(index, None) == []
    # the file still being written is never pruned
    index["files"][-1]["complete"] = False
    assert index["files"][-1]["name"] not in lemp_backup.binlogs_to_prune(index, 10 ** 9)


def test_nothing_kept_means_no_binlog_may_be_pruned():
    plan = lemp_backup.retention(lemp_backup.catalogue([]), POLICY, T0)
    assert plan == {"keep": [], "delete": [], "reasons": {}, "binlogs": None}


def test_a_backup_from_the_future_stops_pruning():
    with pytest.raises(BackupError, match="a clock is wrong .* nothing is pruned"):
        lemp_backup.retention(lemp_backup.catalogue(days(2)), POLICY, at(1440))


@pytest.mark.parametrize("policy, message", [
    ({"daily_full": 7, "hourly_incrementals": 48}, "backup:retention:daily_full is not a retention setting"),
    ({"daily_fulls": 0, "hourly_incrementals": 48}, "backup:retention:daily_fulls is 0; it must be a whole number >= 1"),
    ({"daily_fulls": 7}, "backup:retention:hourly_incrementals is None"),
    ({"daily_fulls": "7", "hourly_incrementals": 48}, "backup:retention:daily_fulls is '7'"),
    ([7, 48], "must be a mapping"),
])
def test_a_bad_retention_policy_is_refused_naming_the_key(policy, message):
    with pytest.raises(BackupError, match=message.replace("(", r"\(")):
        lemp_backup.retention(lemp_backup.catalogue(days(1)), policy, at(1440))


# -- restore plans --------------------------------------------------------------

NODES = ["db1", "db2"]


def restore(backups, backup, until, now, index=None, **kwargs):
    index = index if index is not None else archive(int((now - T0).total_seconds() // 60))
    return lemp_backup.plan_restore(lemp_backup.catalogue(backups), index, backup, until, now,
                                    data_nodes=NODES, **kwargs)


def test_restore_to_a_time_uses_the_chain_up_to_the_last_backup_before_it():
    """The issue's PITR test: a full, an incremental, more writes, a DROP
    TABLE at minute 1440+150: restore to just before it."""
    backups = day(1, 3)  # full at 1440, incrementals at 1500, 1560, 1620
    drop = at(1440 + 150)
    plan = restore(backups, backups[0]["id"], lemp_backup.format_time(drop - datetime.timedelta(seconds=1)),
                   at(1440 + 200))
    assert plan["apply"] == ids(backups[:3])  # the full and the incrementals that finished at 1500 and 1560, not the one at 1620
    assert plan["base"]["id"] == backups[2]["id"] and plan["base"]["gtid"] == "0-2-1560"
    # the binlog file holding seq 1561.. (1440..1800) is replayed, stopping before the time
    assert plan["binlogs"] == [{"file": "db1/mariadb-bin.001440", "node": "db1", "start_after": "0-2-1560",
                                "stop": {"datetime_utc": "2024-05-02 04:29:59"}, "file_state": "0-1-1440"}]
    assert plan["until"] == {"kind": "time", "value": "2024-05-02T04:29:59Z"}
    assert plan["restore_on"] == "db2" and plan["rejoin"] == ["db1"]


def test_the_chain_is_used_only_up_to_backups_that_finished_by_until():
    backups = day(1, 3)
    plan = restore(backups, backups[0]["id"], iso(1440 + 90), at(1440 + 300))
    assert plan["apply"] == ids(backups[:2])
    plan = restore(backups, backups[0]["id"], iso(1440 + 180), at(1440 + 300))
    assert plan["apply"] == ids(backups)


def test_restore_to_a_gtid_replays_up_to_and_including_it():
    backups = day(1, 3)
    plan = restore(backups, "latest", "0-1-1700", at(1440 + 400))
    assert plan["backup"] == backups[3]["id"] and plan["apply"] == ids(backups)
    assert plan["binlogs"] == [{"file": "db1/mariadb-bin.001440", "node": "db1", "start_after": "0-2-1620",
                                "stop": {"gtid": "0-1-1700"}, "file_state": "0-1-1440"}]


def test_restore_to_exactly_a_backup_replays_no_binlog():
    backups = day(1, 3)
    plan = restore(backups, backups[1]["id"], "0-2-1500", at(1440 + 400))
    assert plan["apply"] == ids(backups[:2]) and plan["binlogs"] == []
    assert "binlogs: none to replay" in lemp_backup.describe(plan)


def test_restore_to_the_latest_replays_the_whole_archive_across_files():
    backups = days(2, 2)
    plan = restore(backups, None, None, at(1440 + 1000))
    assert plan["backup"] == backups[-1]["id"]
    assert [b["file"] for b in plan["binlogs"]] == ["db1/mariadb-bin.001440", "db1/mariadb-bin.001800",
                                                    "db1/mariadb-bin.002160"]
    assert [b["start_after"] for b in plan["binlogs"]] == ["0-2-1560", "0-1-1800", "0-1-2160"]
    assert plan["binlogs"][-1]["stop"] is None and plan["reaches_seq"] == 2440


def test_binlogs_line_up_by_gtid_across_a_writer_failover():
    """db1 wrote until seq 1700, then db2 became the writer; the archiver
    started on db2's current file, which begins before db1's last one ends."""
    backups = day(1, 1)
    index = {"files": [binlog(1440, 1700), binlog(1650, 2000, node="db2", server=2)],
             "complete_until": iso(2000)}
    plan = restore(backups, backups[0]["id"], "0-2-1900", at(2000), index=index)
    assert plan["binlogs"] == [
        {"file": "db1/mariadb-bin.001440", "node": "db1", "start_after": "0-2-1500", "stop": None,
         "file_state": "0-1-1440"},
        {"file": "db2/mariadb-bin.001650", "node": "db2", "start_after": "0-1-1700", "stop": {"gtid": "0-2-1900"},
         "file_state": "0-2-1650"},
    ]


def test_of_two_files_holding_the_next_transaction_the_one_reaching_further_is_replayed():
    backups = day(1, 0)
    index = {"files": [binlog(1400, 1600), binlog(1300, 1900, node="db2", server=2)],
             "complete_until": iso(1900)}
    plan = restore(backups, backups[0]["id"], "latest", at(1900), index=index)
    assert [b["file"] for b in plan["binlogs"]] == ["db2/mariadb-bin.001300"]


def test_an_unknown_backup_id_is_refused_naming_the_key():
    backups = day(1, 1)
    with pytest.raises(BackupError, match=rf"restore:backup 'nope' is not a known backup \(newest restorable: "
                                          rf"{backups[0]['id']}, {backups[1]['id']}\); see salt-run lemp_backup.list"):
        restore(backups, "nope", "latest", at(2000))


def test_an_until_before_the_backup_is_refused():
    backups = day(1, 1)
    with pytest.raises(BackupError, match=r"restore:until .* is before backup .* which finished at"):
        restore(backups, backups[1]["id"], iso(1450), at(2000))
    with pytest.raises(BackupError, match=r"restore:until 0-2-1450 is before backup .* which is at GTID 0-2-1500"):
        restore(backups, backups[1]["id"], "0-2-1450", at(2000))
    with pytest.raises(BackupError, match="no restorable backup is from before restore:until"):
        restore(backups, "latest", iso(1000), at(2000))


def test_an_until_in_the_future_is_refused():
    with pytest.raises(BackupError, match=r"restore:until 2024-05-02T09:20:00Z is in the future"):
        restore(day(1, 1), "latest", iso(1880), at(1700))


def test_an_until_that_is_neither_time_nor_gtid_is_refused():
    with pytest.raises(BackupError, match="neither a time .* nor a GTID"):
        restore(day(1, 1), "latest", "before the drop", at(1700))
    with pytest.raises(BackupError, match="GTID domain 3, the cluster writes domain 0"):
        restore(day(1, 1), "latest", "3-1-1600", at(1700))


def test_a_backup_after_a_missing_incremental_is_refused_naming_the_gap():
    backups = day(1, 3)
    missing = backups.pop(1)
    with pytest.raises(BackupError, match=rf"cannot be restored: incremental {missing['id']} is missing"
                                          rf".* choose {backups[0]['id']} or an earlier backup"):
        restore(backups, backups[2]["id"], "latest", at(1800))
    # the part before the gap still restores, and does not use what is after it
    plan = restore(backups, backups[0]["id"], "latest", at(1800))
    assert plan["apply"] == [backups[0]["id"]]


def test_missing_binlogs_between_the_backup_and_until_are_refused():
    backups = day(1, 0)
    index = {"files": [binlog(1440, 1500), binlog(1600, 1800)], "complete_until": iso(1800)}
    with pytest.raises(BackupError, match=r"binlogs missing: GTID seq 1501 to 1600 of domain 0 are in no archived "
                                          r"file .* can reach GTID 0-1-1500 at most"):
        restore(backups, backups[0]["id"], "0-1-1700", at(1800), index=index)
    with pytest.raises(BackupError, match="binlogs missing: GTID seq 1501 to 1600"):
        restore(backups, backups[0]["id"], iso(1700), at(1800), index=index)
    with pytest.raises(BackupError, match="binlogs missing: GTID seq 1501 to 1600"):
        restore(backups, backups[0]["id"], "latest", at(1800), index=index)
    # up to the gap is fine
    assert restore(backups, backups[0]["id"], iso(1490), at(1800), index=index)["binlogs"]


def test_binlogs_pruned_before_the_backup_position_are_refused():
    backups = day(1, 0)
    index = {"files": [binlog(1500, 1800)], "complete_until": iso(1800)}
    with pytest.raises(BackupError, match="binlogs missing: GTID seq 1441 to 1500"):
        restore(backups, backups[0]["id"], "0-1-1700", at(1800), index=index)


def test_an_until_past_the_archive_is_refused():
    backups = day(1, 0)
    index = archive(1700)
    with pytest.raises(BackupError, match=r"binlogs missing between GTID 0-1-1700 and restore:until 0-1-1750"):
        restore(backups, backups[0]["id"], "0-1-1750", at(1800), index=index)
    index["complete_until"] = iso(1710)
    with pytest.raises(BackupError, match=r"binlogs missing between 2024-05-02T06:30:00Z and restore:until "
                                          r"2024-05-02T07:00:00Z: the archive is known complete only up to then"):
        restore(backups, backups[0]["id"], iso(1740), at(1800), index=index)
    # no write since the last archived one, and the archiver saw up to then: fine
    index["complete_until"] = iso(1790)
    plan = restore(backups, backups[0]["id"], iso(1740), at(1800), index=index)
    assert plan["binlogs"][-1]["stop"] == {"datetime_utc": "2024-05-02 07:00:00"}


def test_an_archive_behind_the_backup_is_refused():
    backups = day(1, 0)
    index = {"files": [binlog(1000, 1200)], "complete_until": iso(1800)}
    with pytest.raises(BackupError, match="the archive ends at seq 1200, before the backup"):
        restore(backups, backups[0]["id"], iso(1700), at(1800), index=index)


def test_restoring_the_latest_from_an_archive_behind_the_backup_is_refused():
    backups = day(1, 0)
    with pytest.raises(BackupError, match="the archive ends at seq 0, before the backup"):
        restore(backups, "latest", "latest", at(1800), index={"files": [], "complete_until": iso(1800)})


def test_the_dry_run_of_latest_says_up_to_when_the_archive_is_complete():
    backups = day(1, 0)
    text = lemp_backup.describe(restore(backups, "latest", None, at(1700)))
    assert "up to: the end of the binlog archive (GTID seq 1700; the archive is known complete up to " \
           "2024-05-02T06:20:00Z)" in text


def test_binlogs_of_another_cluster_are_never_replayed():
    """After a restore the cluster is bootstrapped anew and its GTIDs may
    repeat the old history's: the archive of the backup's cluster is used."""
    backups = day(1, 0)
    index = dict(archive(1700), cluster_uuid="0a2b4c6d-8d3b-11ee-9a51-2b1d8c4f0a11")
    with pytest.raises(BackupError, match="the binlog index is of cluster 0a2b4c6d.* replay the archive of that"):
        restore(backups, "latest", "latest", at(1700), index=index)
    index["cluster_uuid"] = UUID.upper()
    assert restore(backups, "latest", "latest", at(1700), index=index)["binlogs"]


def test_an_unusable_binlog_index_is_refused():
    index = {"files": [dict(binlog(1440, 1500), end_gtid="0-1-1400"), dict(binlog(1500, 1600), last_time=None)]}
    problems = lemp_backup.validate_binlog_index(index)
    assert "end_gtid 0-1-1400 is before start_gtid 0-1-1440" in problems[0]
    assert "last_time is missing" in problems[1]
    with pytest.raises(BackupError, match="the binlog index is unusable"):
        restore(day(1, 0), "latest", "latest", at(1800), index=index)


def test_the_dry_run_says_which_backup_which_binlogs_up_to_where_and_what_it_replaces():
    backups = day(1, 1)
    plan = restore(backups, backups[0]["id"], iso(1600), at(1700), current_gtid="0-1-1700")
    text = lemp_backup.describe(plan)
    assert "dry run: nothing is changed; add confirm: true" in text
    assert f"backup: {backups[0]['id']}" in text
    assert f"prepare: {backups[0]['id']} -> {backups[1]['id']} (encrypted: openssl)" in text
    assert "db1/mariadb-bin.001440 (from db1): after GTID 0-2-1500, stop before 2024-05-02 04:40:00 UTC" in text
    assert "up to: 2024-05-02T04:40:00Z (transactions before that time, none at or after it)" in text
    assert "replaces: the data of every data node (db2, db1), now at GTID 0-1-1700" in text
    assert "bootstrap the cluster from db2; db1 rejoin by SST" in text
    assert "maintenance page" in text


def test_the_salt_wrapper_returns_the_plan_with_its_text_or_the_reason():
    backups = day(1, 1)
    result = lemp_backup.plan(backups, archive(1700), backups[0]["id"], "latest", at(1700), data_nodes=NODES)
    assert result["text"].startswith("Restore (dry run")
    with pytest.raises(lemp_backup.CommandExecutionError, match="restore:backup 'x'"):
        lemp_backup.plan(backups, archive(1700), "x", "latest", at(1700))


# -- the backup node ------------------------------------------------------------


def status(synced=True, cluster_status="Primary", local_state=None):
    return {"running": True, "wsrep_on": True, "cluster_status": cluster_status, "ready": synced,
            "local_state": local_state if local_state is not None else (4 if synced else 2)}


def test_the_backup_runs_on_the_writer_whose_binlogs_the_archive_holds():
    choice = lemp_backup.choose_backup_node({"db1": status(), "db2": status(), "db3": status()}, "db1")
    assert choice["node"] == "db1" and choice["writer"] and not choice["desync"]
    assert "the archive holds" in choice["reason"]


def test_another_synced_node_is_desynced_and_named_as_a_risk_when_the_writer_is_not_synced():
    choice = lemp_backup.choose_backup_node({"db1": status(synced=False), "db2": status()}, "db1")
    assert choice["node"] == "db2" and not choice["writer"] and choice["desync"]
    assert "the writer db1: not Synced (cluster_status Primary, local_state 2)" in choice["reason"]
    assert "point-in-time replay after this backup is not guaranteed" in choice["reason"]
    choice = lemp_backup.choose_backup_node({"db1": "Minion did not return", "db2": status()}, "db1")
    assert choice["node"] == "db2" and "the writer db1: did not answer" in choice["reason"]


def test_with_no_synced_node_no_backup_is_taken():
    with pytest.raises(BackupError, match="no data node is Synced.*db1: not Synced.*db2: did not answer"):
        lemp_backup.choose_backup_node({"db1": status(cluster_status="non-Primary", synced=False), "db2": None},
                                       "db1")


def test_an_unknown_writer_still_gives_a_synced_node():
    choice = lemp_backup.choose_backup_node({"db2": status(), "db1": status()}, None)
    assert choice["node"] == "db1" and "the writer is unknown" in choice["reason"]


@pytest.mark.parametrize("answer", [status(), status(synced=False), status(cluster_status="non-Primary"),
                                    status(local_state=3), dict(status(), running=False),
                                    dict(status(), wsrep_on=False)])
def test_synced_means_what_galera_means_by_it(answer):
    assert lemp_backup._is_synced(answer) == galera.is_synced(answer)


def test_a_binlog_gtid_state_may_name_a_domain_once_per_server_and_stands_for_its_highest_seq():
    # db2's Gtid list after the writer moved from db2 to db1 (seen in the lab)
    assert lemp_backup.parse_gtid_state("0-172818464-2092,0-172818463-2093") == {0: (172818463, 2093)}
    assert lemp_backup.parse_gtid_state("0-2-9,0-1-5,7-7-1") == {0: (2, 9), 7: (7, 1)}
    assert lemp_backup.parse_gtid_state("") == {}
    with pytest.raises(BackupError, match="is not a GTID list"):
        lemp_backup.parse_gtid_state("0-1")


def test_lemp_backup_here_is_the_execution_module_not_the_runner_of_that_name():
    # _runners/lemp_backup.py has the same name; a test that put _runners on
    # sys.path used to make this import find the runner, depending on the order
    # in which pytest collected the files
    assert pathlib.Path(lemp_backup.__file__).parent.name == "_modules", lemp_backup.__file__
