"""The backup machinery's pure parts (issue #11): the mbstream reader that
keeps mariabackup's info files as the stream passes arb1, the manifest made
from them, the binlog archive's index and where the archiver resumes, the
settings of salt/backup, the data node's forced-command wrapper, the lab's
SSH key pair, and the runner's listing. Schedules are checked with the
host's real systemd-analyze."""

import base64
import datetime
import hashlib
import io
import json
import os
import pathlib
import subprocess

import pytest
import yaml

import lab_secrets  # tests/conftest.py puts tools/lab on the path
import lemp_backup
import lemp_backup_job as job
from by_path import load  # tests/unit/by_path.py

REPO = pathlib.Path(__file__).resolve().parents[2]

UTC = datetime.timezone.utc
UUID = "6f8c2a1e-8d3b-11ee-9a51-2b1d8c4f0a11"
KEY = {"tool": "openssl", "cipher": "aes-256-ctr", "key_id": "backup:encryption_key#1a2b3c4d"}


wrapper = load("lemp_backup_stream", "salt/galera/files/lemp-backup-stream.py")
runner = load("lemp_backup_runner", "_runners/lemp_backup.py")


# -- an mbstream, as mariabackup --stream=mbstream writes it ---------------------


def chunk(path, payload=b"", offset=0, kind=b"P"):
    name = path.encode()
    head = job.MAGIC + b"\0" + kind + len(name).to_bytes(4, "little") + name
    if kind == b"E":
        return head
    return head + len(payload).to_bytes(8, "little") + offset.to_bytes(8, "little") + b"\0\0\0\0" + payload


def mbstream(files):
    """{path: bytes} -> a stream: each file in 3-byte-or-more chunks, then its E chunk."""
    out = b""
    for path, data in files.items():
        for start in range(0, len(data), 7):
            out += chunk(path, data[start:start + 7], start)
        out += chunk(path, kind=b"E")
    return out


CHECKPOINTS = "backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 48213\nlast_lsn = 48213\n"
BINLOG_INFO = "mariadb-bin.000012\t3456\t0-167772191-1234\n"
GALERA_INFO = f"{UUID}:1234\n"


def backup_stream(extra=None, **info):
    files = {"ibdata1": b"\0" * 100, "app/orders.ibd": b"x" * 50,
             "xtrabackup_checkpoints": CHECKPOINTS.encode(), "xtrabackup_binlog_info": BINLOG_INFO.encode(),
             "xtrabackup_galera_info": GALERA_INFO.encode()}
    files.update({k: v.encode() for k, v in info.items()})
    files.update(extra or {})
    return mbstream(files)


@pytest.mark.parametrize("step", [1, 5, 13, 64, 1 << 20])
def test_the_info_files_are_kept_from_the_stream_however_it_is_cut(step):
    data = backup_stream()
    scanner = job.MbstreamScanner()
    for start in range(0, len(data), step):
        scanner.feed(data[start:start + step])
    info = scanner.finish()
    assert info == {"xtrabackup_checkpoints": CHECKPOINTS, "xtrabackup_binlog_info": BINLOG_INFO,
                    "xtrabackup_galera_info": GALERA_INFO}
    assert scanner.bytes == len(data)
    assert {"ibdata1", "app/orders.ibd", "xtrabackup_checkpoints"} <= scanner.ended


def test_a_cut_off_stream_is_refused():
    data = backup_stream()
    scanner = job.MbstreamScanner()
    scanner.feed(data[:-30])
    with pytest.raises(job.StreamError, match="stopped in the middle of a chunk"):
        scanner.finish()


def test_bytes_that_are_not_an_mbstream_are_refused():
    scanner = job.MbstreamScanner()
    with pytest.raises(job.StreamError, match="does not start with XBSTCK01"):
        scanner.feed(b"mariabackup: Error: failed to connect\n" * 3)
    with pytest.raises(job.StreamError, match="empty"):
        job.MbstreamScanner().finish()


def test_a_data_file_named_like_an_info_file_in_a_database_folder_is_not_kept():
    data = backup_stream(extra={"app/xtrabackup_checkpoints": b"from_lsn = 7"})
    scanner = job.MbstreamScanner()
    scanner.feed(data)
    assert scanner.finish()["xtrabackup_checkpoints"] == CHECKPOINTS


# -- the manifest ---------------------------------------------------------------------


def test_the_info_files_parse():
    assert job.parse_checkpoints(CHECKPOINTS)["to_lsn"] == 48213
    assert job.parse_binlog_info(BINLOG_INFO) == {"file": "mariadb-bin.000012", "pos": 3456,
                                                  "gtid": "0-167772191-1234"}
    assert job.parse_binlog_info("mariadb-bin.000001\t4\n")["gtid"] == ""
    assert job.parse_galera_info(GALERA_INFO) == f"{UUID}:1234"
    assert job.parse_galera_info(f"{UUID}:1234 0-1-1234\n") == f"{UUID}:1234"
    assert job.parse_galera_info(f"{UUID}:-1\n") is None
    with pytest.raises(ValueError, match="is log_bin on"):
        job.parse_binlog_info("")
    with pytest.raises(ValueError, match="no to_lsn"):
        job.parse_checkpoints("from_lsn = 0\n")


STARTED = datetime.datetime(2024, 5, 1, 1, 30, tzinfo=UTC)
FINISHED = datetime.datetime(2024, 5, 1, 1, 41, tzinfo=UTC)
STORED = [{"name": "backup.mbstream.enc", "size": 1234, "sha256": hashlib.sha256(b"x").hexdigest()}]


def info(**override):
    base = {"xtrabackup_checkpoints": CHECKPOINTS, "xtrabackup_binlog_info": BINLOG_INFO,
            "xtrabackup_galera_info": GALERA_INFO}
    base.update(override)
    return {k: v for k, v in base.items() if v is not None}


def test_a_full_backup_gets_a_manifest_the_catalogue_accepts():
    plan = lemp_backup.plan_backup({"backups": {}, "chains": [], "invalid": []}, "full")
    manifest = job.build_manifest(plan, "db2", STARTED, FINISHED, info(), STORED, KEY)
    assert manifest["id"] == "20240501T013000Z-full-db2"
    assert manifest["galera_position"] == f"{UUID}:1234"
    assert manifest["gtid"] == "0-167772191-1234"
    assert manifest["binlog"] == {"file": "mariadb-bin.000012", "pos": 3456}
    assert manifest["lsn"] == {"from": 0, "to": 48213}
    assert manifest["size"] == 1234 and manifest["files"] == STORED
    assert "key" not in manifest["encryption"]
    cat = lemp_backup.catalogue([manifest])
    assert cat["chains"][0]["restorable"] == [manifest["id"]]
    # the next incremental builds on it, from its LSN
    nxt = lemp_backup.plan_backup(cat, "incremental")
    assert nxt == {"kind": "incremental", "chain": manifest["id"], "parent": manifest["id"], "from_lsn": 48213}
    checkpoints = "backup_type = incremental\nfrom_lsn = 48213\nto_lsn = 50000\n"
    later = job.build_manifest(nxt, "db2", FINISHED, FINISHED + datetime.timedelta(minutes=2),
                               info(xtrabackup_checkpoints=checkpoints), STORED, KEY)
    assert later["lsn"] == {"from": 48213, "to": 50000} and later["parent"] == manifest["id"]
    assert lemp_backup.catalogue([manifest, later])["chains"][0]["restorable"] == [manifest["id"], later["id"]]


def test_an_incremental_that_did_not_start_where_the_plan_said_is_refused():
    plan = {"kind": "incremental", "chain": "c", "parent": "p", "from_lsn": 48213}
    with pytest.raises(ValueError, match="started at LSN 0, the plan said 48213"):
        job.build_manifest(plan, "db2", STARTED, FINISHED, info(), STORED, KEY)


def test_a_stream_without_mariabackups_last_files_makes_no_manifest():
    plan = lemp_backup.plan_backup({"backups": {}, "chains": [], "invalid": []}, "full")
    with pytest.raises(ValueError, match="no xtrabackup_binlog_info: mariabackup did not finish"):
        job.build_manifest(plan, "db2", STARTED, FINISHED, info(xtrabackup_binlog_info=None), STORED, KEY)


def test_without_galera_info_the_position_comes_from_the_node_and_the_manifest_says_so():
    plan = lemp_backup.plan_backup({"backups": {}, "chains": [], "invalid": []}, "full")
    status = {"cluster_state_uuid": UUID.upper(), "last_committed": 1240}
    manifest = job.build_manifest(plan, "db2", STARTED, FINISHED, info(xtrabackup_galera_info=None), STORED, KEY,
                                  status=status)
    assert manifest["galera_position"] == f"{UUID}:1240"
    assert "wsrep status after the backup" in manifest["galera_position_from"]


# -- the binlog archive ---------------------------------------------------------------

DUMP = """/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=1*/;
# at 4
#240501  2:00:00 server id 167772191  end_log_pos 256 CRC32 0x6c1d0c4e 	Start: binlog v 4, server v 10.11.6-MariaDB-0+deb12u1-log created 240501  2:00:00
# at 256
#240501  2:00:00 server id 167772191  end_log_pos 299 CRC32 0x0f8d4f6e 	Gtid list [0-167772191-99,
# 167772191-167772191-3]
# at 299
#240501  2:00:00 server id 167772191  end_log_pos 342 CRC32 0x1c2a3b4c 	Binlog checkpoint mariadb-bin.000012
# at 342
#240501  2:00:05 server id 167772191  end_log_pos 384 CRC32 0x11111111 	GTID 0-167772191-100 trans
/*!100001 SET @@session.gtid_seq_no=100*//*!*/;
START TRANSACTION
/*!*/;
# at 384
#240501  2:00:05 server id 167772191  end_log_pos 440 CRC32 0x22222222 	Table_map: `app`.`orders` mapped to number 19
# at 440
#240501  2:00:05 server id 167772191  end_log_pos 490 CRC32 0x33333333 	Write_rows: table id 19 flags: STMT_END_F
# at 490
#240501  2:00:05 server id 167772191  end_log_pos 521 CRC32 0x44444444 	Xid = 77
COMMIT/*!*/;
# at 521
#240501  2:01:00 server id 167772192  end_log_pos 563 CRC32 0x55555555 	GTID 0-167772192-101 ddl
/*!100001 SET @@session.gtid_seq_no=101*//*!*/;
# at 563
#240501  2:01:00 server id 167772192  end_log_pos 700 CRC32 0x66666666 	Query	thread_id=8	exec_time=0	error_code=0
SET TIMESTAMP=1714528860/*!*/;
CREATE TABLE app.t (id INT PRIMARY KEY)
/*!*/;
# at 700
#240501  2:02:30 server id 167772191  end_log_pos 742 CRC32 0x77777777 	GTID 0-167772191-102 trans
/*!100001 SET @@session.gtid_seq_no=102*//*!*/;
START TRANSACTION
/*!*/;
# at 742
#240501  2:02:30 server id 167772191  end_log_pos 798 CRC32 0x88888888 	Table_map: `app`.`orders` mapped to number 19
ERROR: Error in Log_event::read_log_event(): 'read error', data_len: 52, event_type: 23
"""


def test_a_binlog_dump_gives_the_range_of_complete_transactions():
    parsed = job.parse_binlog_dump(DUMP)
    # the list before the file's first transaction, both domains
    assert parsed["start_gtid"] == "0-167772191-99,167772191-167772191-3"
    # 102 was cut off by the end of the file being written: not claimed
    assert parsed["end_gtid"] == "0-167772192-101,167772191-167772191-3"
    assert parsed["first_time"] == "2024-05-01T02:00:05Z"
    assert parsed["last_time"] == "2024-05-01T02:01:00Z"
    assert parsed["transactions"] == 2


def test_a_group_commit_id_before_the_flag_leaves_a_cut_off_transaction_unclaimed():
    # mariadb-binlog prints "cid=N" before "trans" for a transaction committed in a group: the flag is any
    # word after the GTID, else 102 (cut off by the end of the file) would count as a complete single event
    grouped = DUMP.replace("GTID 0-167772191-100 trans", "GTID 0-167772191-100 cid=40 trans").replace(
        "GTID 0-167772191-102 trans", "GTID 0-167772191-102 cid=41 trans")
    assert grouped != DUMP
    assert job.parse_binlog_dump(grouped) == job.parse_binlog_dump(DUMP)


def test_a_binlog_without_transactions_covers_nothing():
    head = DUMP.split("# at 342")[0]
    parsed = job.parse_binlog_dump(head)
    assert parsed["start_gtid"] == parsed["end_gtid"] == "0-167772191-99,167772191-167772191-3"
    assert parsed["first_time"] is None and parsed["transactions"] == 0


# The same file later: 102 complete, a transaction of the writer's own domain (an Annotate_rows event shares
# its "# at" with the next one, as mariadb-binlog 10.11 prints it), a MyISAM one (no "trans" flag; a COMMIT query
# ends it), the rotation. Its event positions are the ones a resumed read starts at.
GROWN = DUMP.split("ERROR:")[0] + """# at 798
#240501  2:02:30 server id 167772191  end_log_pos 848 CRC32 0x99999999 	Write_rows: table id 19 flags: STMT_END_F
# at 848
#240501  2:02:30 server id 167772191  end_log_pos 879 CRC32 0xaaaaaaaa 	Xid = 78
COMMIT/*!*/;
# at 879
#240501  2:03:00 server id 167772191  end_log_pos 921 CRC32 0xbbbbbbbb 	GTID 167772191-167772191-4 trans
/*!100001 SET @@session.gtid_seq_no=4*//*!*/;
START TRANSACTION
/*!*/;
# at 921
# at 978
#240501  2:03:00 server id 167772191  end_log_pos 978 CRC32 0xcccccccc 	Annotate_rows:
#Q> insert into app.orders values (1)
#240501  2:03:00 server id 167772191  end_log_pos 1024 CRC32 0xdddddddd 	Table_map: `app`.`orders` mapped to number 19
# at 1024
#240501  2:03:00 server id 167772191  end_log_pos 1065 CRC32 0xeeeeeeee 	Write_rows: table id 19 flags: STMT_END_F
# at 1065
#240501  2:03:00 server id 167772191  end_log_pos 1096 CRC32 0xffffffff 	Xid = 79
COMMIT/*!*/;
# at 1096
#240501  2:04:10 server id 167772191  end_log_pos 1138 CRC32 0x12121212 	GTID 0-167772191-103
/*!100001 SET @@session.gtid_seq_no=103*//*!*/;
START TRANSACTION
/*!*/;
# at 1138
# at 1187
#240501  2:04:10 server id 167772191  end_log_pos 1187 CRC32 0x13131313 	Annotate_rows:
#Q> insert into app.log values ('café')
#240501  2:04:10 server id 167772191  end_log_pos 1228 CRC32 0x16161616 	Table_map: `app`.`log` mapped to number 22
# at 1228
#240501  2:04:10 server id 167772191  end_log_pos 1269 CRC32 0x17171717 	Write_rows: table id 22 flags: STMT_END_F
# at 1269
#240501  2:04:10 server id 167772191  end_log_pos 1338 CRC32 0x14141414 	Query	thread_id=9	exec_time=0	error_code=0	xid=0
SET TIMESTAMP=1714529050/*!*/;
COMMIT
/*!*/;
# at 1338
#240501  2:05:00 server id 167772191  end_log_pos 1385 CRC32 0x15151515 	Rotate to mariadb-bin.000013  pos: 4
DELIMITER ;
# End of log file
"""
GROWN_SIZE = 1385


def binlog_events(dump):
    """(preamble, [(end_log_pos, text)]): the dump's lines before the first
    event header, and each event from its header to the next one."""
    preamble, events = [], []
    for line in dump.splitlines(keepends=True):
        header = job.EVENT_RE.match(line)
        if header:
            events.append([int(header.group(3)), line])
        elif events:
            events[-1][1] += line
        else:
            preamble.append(line)
    return "".join(preamble), [tuple(e) for e in events]


def mariadb_binlog(dump, size, position=4, format_description=False):
    """What ``mariadb-binlog --start-position=<position>`` prints of the
    file ``dump`` is the output of, cut at ``size`` bytes while it was being
    written: the events between position and size, a read error for the one
    cut off. 10.11 does not print the format description event (at 4) when
    it starts later; ``format_description`` prints it, in case another
    version does."""
    preamble, events = binlog_events(dump)
    ends = [4] + [end for end, _ in events]
    text = preamble + "".join(t for (end, t), begin in zip(events, ends)
                              if end <= size and (begin >= position or (format_description and begin == 4)))
    if size not in ends and size < ends[-1]:
        text += "ERROR: Error in Log_event::read_log_event(): 'read error', data_len: 52, event_type: 23\n"
    return text


def test_the_grown_file_claims_every_transaction():
    parsed = job.parse_binlog_dump(GROWN)
    assert parsed["end_gtid"] == "0-167772191-103,167772191-167772191-4"
    assert parsed["transactions"] == 5 and parsed["last_time"] == "2024-05-01T02:04:10Z"
    assert parsed["resume_at"] == GROWN_SIZE
    assert job.parse_binlog_dump(mariadb_binlog(GROWN, GROWN_SIZE)) == parsed


def test_a_read_resumes_after_the_last_complete_transaction_never_inside_an_open_one():
    # DUMP: 102 is open from 700 on
    assert job.parse_binlog_dump(DUMP)["resume_at"] == 700
    # before the first transaction: after the last event read
    assert job.parse_binlog_dump(DUMP.split("# at 342")[0])["resume_at"] == 342
    # nothing read (a file just created): from the first event
    assert job.parse_binlog_dump("")["resume_at"] == 4


@pytest.mark.parametrize("format_description", [False, True])
def test_a_file_parsed_as_it_grows_gives_what_one_parse_of_it_gives(format_description):
    """The archiver's copy grows by whatever mariadb-binlog --raw flushed:
    cut the file at every byte (every event boundary and inside every
    event), parse each cut from the last resume_at, and compare with the
    parse of the cut read whole; then split the whole file at every event
    boundary once."""
    parsed = None
    for size in range(GROWN_SIZE + 1):
        position = parsed["resume_at"] if parsed else 4
        text = mariadb_binlog(GROWN, size, position, format_description)
        parsed = job.parse_binlog_dump(io.StringIO(text), parsed)  # a pipe: lines ending in "\n"
        assert parsed == job.parse_binlog_dump(mariadb_binlog(GROWN, size)), size
    whole = job.parse_binlog_dump(GROWN)
    assert parsed == whole
    _, events = binlog_events(GROWN)
    for boundary in [4] + [end for end, _ in events]:
        first = job.parse_binlog_dump(mariadb_binlog(GROWN, boundary))
        rest = mariadb_binlog(GROWN, GROWN_SIZE, first["resume_at"], format_description)
        assert job.parse_binlog_dump(rest, first) == whole, boundary


def test_a_line_cut_off_by_a_killed_mariadb_binlog_is_not_read():
    text = DUMP.split("ERROR:")[0]
    cut = text + "#240501  2:03:00 server id 167772191  end_log_pos 9"   # "...end_log_pos 921" being printed
    assert job.parse_binlog_dump(cut) == job.parse_binlog_dump(text)


CACHED = {"identity": (1, 2), "size": 1000, "mtime_ns": 50, "ok": True, "parse": {"resume_at": 700}}


@pytest.mark.parametrize("cached, now, expected", [
    (None, ((1, 2), 1000, 50), (None, 4)),                           # a new file: from the start
    (CACHED, ((1, 2), 1000, 50), None),                              # unchanged: the parse stands
    (CACHED, ((1, 2), 1300, 60), (CACHED["parse"], 700)),            # it grew: from the last complete transaction
    (dict(CACHED, ok=False), ((1, 2), 1000, 50), (CACHED["parse"], 700)),  # the last read failed: again
    (CACHED, ((1, 2), 800, 60), (None, 4)),                          # shorter: rewritten
    (CACHED, ((1, 2), 1300, 40), (None, 4)),                         # older: another file
    (CACHED, ((1, 3), 1300, 60), (None, 4)),                         # another inode: another file
    (dict(CACHED, ok=False, parse={"resume_at": 1000}), ((1, 2), 1000, 50), None),  # failed, but all was read
])
def test_each_poll_reads_only_what_an_archived_binlog_gained(cached, now, expected):
    assert job.binlog_read_from(cached, *now) == expected


FAKE_MARIADB_BINLOG = """#!/usr/bin/env python3
# mariadb-binlog --base64-output=decode-rows --start-position=N FILE, for FILE a cut of the dump in $FAKE_DUMP
import json, os, sys
preamble, events = json.load(open(os.environ["FAKE_DUMP"]))
position, path = int(sys.argv[2].split("=")[1]), sys.argv[3]
size = os.path.getsize(path)
with open(os.environ["FAKE_CALLS"], "a") as calls:
    calls.write(f"{position} {size} {os.environ['TZ']}\\n")
sys.stdout.write(preamble + "".join(text for begin, end, text in events if begin >= position and end <= size))
sys.exit(0 if size in [4] + [end for _, end, _ in events] else 1)
"""


def test_the_archiver_streams_each_binlog_from_where_it_stopped(tmp_path, monkeypatch):
    """lemp-backup.py Archiver.entries with a mariadb-binlog that prints the
    dump GROWN cut at the file's size: each poll reads from the last
    resume_at, a failed read (the file ends inside an event) is read again,
    and what the index gets is the parse of the file read whole."""
    preamble, events = binlog_events(GROWN)
    begins = [4] + [end for end, _ in events]
    (tmp_path / "dump.json").write_text(json.dumps([preamble, [(b, e, t) for b, (e, t) in zip(begins, events)]]))
    fake = tmp_path / "bin" / "mariadb-binlog"
    fake.parent.mkdir()
    fake.write_text(FAKE_MARIADB_BINLOG)
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DUMP", str(tmp_path / "dump.json"))
    monkeypatch.setenv("FAKE_CALLS", str(tmp_path / "calls"))
    tool = load("lemp_backup_tool", "salt/backup/files/lemp-backup.py")
    archiver = tool.Archiver({"store": str(tmp_path / "store")})
    copy = tmp_path / "store" / "binlogs" / UUID / "db1" / "mariadb-bin.000012"
    copy.parent.mkdir(parents=True)

    def poll(size):
        with open(copy, "ab") as f:
            f.write(b"x" * (size - copy.stat().st_size))
        [found] = archiver.entries(UUID)
        assert found == dict(job.parse_binlog_dump(mariadb_binlog(GROWN, size)), name="db1/mariadb-bin.000012",
                             node="db1", size=size, complete=True)

    copy.write_bytes(b"")
    for size in (750, 750, 900, 900, 1385, 1385):
        poll(size)
    # 750 and 900 end inside an event: mariadb-binlog fails and the next poll reads again from where the
    # complete part ended; 1385 is read once, from the end of 103's last event read before
    assert (tmp_path / "calls").read_text().split("\n") == [
        "4 750 UTC", "700 750 UTC", "700 900 UTC", "879 900 UTC", "879 1385 UTC", ""]


def entry(node, name, start, end, complete=True):
    return {"name": f"{node}/{name}", "node": node, "start_gtid": f"0-1-{start}", "end_gtid": f"0-1-{end}",
            "first_time": "2024-05-01T02:00:00Z" if end > start else None,
            "last_time": "2024-05-01T03:00:00Z" if end > start else None, "size": 100, "complete": complete}


def test_the_index_feeds_a_restore_plan_across_a_writer_change():
    entries = [entry("db1", "mariadb-bin.000001", 0, 50), entry("db1", "mariadb-bin.000002", 50, 80, False),
               entry("db2", "mariadb-bin.000007", 70, 120, False)]
    index = job.binlog_index(UUID, entries, datetime.datetime(2024, 5, 1, 3, 0, tzinfo=UTC))
    assert lemp_backup.validate_binlog_index(index) == []
    assert job.archived_seq(entries) == 120
    plan = lemp_backup.plan_backup({"backups": {}, "chains": [], "invalid": []}, "full")
    status = {"cluster_state_uuid": UUID, "last_committed": 10}
    full = job.build_manifest(plan, "db2", STARTED, FINISHED, info(xtrabackup_binlog_info="mariadb-bin.000001\t4\t0-1-10",
                                                                     xtrabackup_galera_info=None),
                              STORED, KEY, status=status)
    restore = lemp_backup.plan_restore(lemp_backup.catalogue([full]), index, "latest", "0-1-100",
                                       "2024-05-01T04:00:00Z")
    assert [b["file"] for b in restore["binlogs"]] == ["db1/mariadb-bin.000001", "db1/mariadb-bin.000002",
                                                        "db2/mariadb-bin.000007"]


def test_an_index_with_a_bad_entry_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"files\[0\]: end_gtid 0-1-3 is before start_gtid 0-1-9"):
        job.binlog_index(UUID, [entry("db1", "mariadb-bin.000001", 9, 3)], None)


LOGS = [("mariadb-bin.000005", 100), ("mariadb-bin.000006", 180), ("mariadb-bin.000007", 260)]


def test_the_same_writer_resumes_with_its_newest_archived_file_whole():
    start = job.archive_start(LOGS, ["mariadb-bin.000005", "mariadb-bin.000006"], 230, same_node=True)
    assert start["file"] == "mariadb-bin.000006" and start["gap"] is None


def test_a_new_writer_starts_at_the_file_holding_the_next_missing_transaction():
    start = job.archive_start(LOGS, [], 230, same_node=False)
    assert start["file"] == "mariadb-bin.000006" and start["gap"] is None
    # exactly at a file's start: that file (its first transaction is the next one)
    assert job.archive_start(LOGS, [], 260, same_node=False)["file"] == "mariadb-bin.000007"
    assert job.archive_start(LOGS, [], None, same_node=False)["file"] == "mariadb-bin.000005"


def test_binlogs_purged_before_they_were_archived_are_reported_as_a_gap():
    start = job.archive_start(LOGS, [], 40, same_node=False)
    assert start["file"] == "mariadb-bin.000005"
    assert start["gap"] == {"after_seq": 40, "before_seq": 101}
    assert "seqs 41 to 100 are lost" in start["reason"]


def test_a_writer_whose_file_was_purged_is_followed_by_gtid():
    start = job.archive_start(LOGS, ["mariadb-bin.000003"], 230, same_node=True)
    assert start["file"] == "mariadb-bin.000006"
    with pytest.raises(ValueError, match="lists no binary log"):
        job.archive_start([], [], 0, same_node=False)


T0 = datetime.datetime(2026, 11, 27, 4, 0, 0, tzinfo=datetime.timezone.utc)


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def test_the_archive_is_complete_until_the_last_look_whose_transactions_it_holds():
    progress = job.archive_progress([(at(0), 10), (at(2), 12), (at(4), 15)], 12)
    assert progress == {"complete_until": at(2), "pending": [(at(4), 15)], "held_since": at(4)}
    # nothing archived yet: every look with a transaction is pending
    assert job.archive_progress([(at(0), 3)], None) == {"complete_until": None, "pending": [(at(0), 3)],
                                                        "held_since": at(0)}
    # a quiet writer: the same seq at each look, all archived
    assert job.archive_progress([(at(0), 7), (at(2), 7)], 7)["complete_until"] == at(2)
    # a domain with no transaction yet (seq 0) and an empty archive: complete
    assert job.archive_progress([(at(0), 0)], None)["held_since"] is None


def test_a_look_the_archive_has_not_reached_keeps_the_archive_behind_however_much_was_written():
    progress = job.archive_progress([(at(0), 20), (at(2), 21)], 19)
    assert progress["complete_until"] is None and progress["held_since"] == at(0)


def test_a_later_look_with_a_lower_seq_does_not_hide_an_earlier_one_not_archived():
    # after a failover the new writer's position can read lower for a moment
    progress = job.archive_progress([(at(0), 10), (at(2), 14), (at(4), 12)], 12)
    assert progress["complete_until"] == at(0)
    assert progress["pending"] == [(at(2), 14), (at(4), 12)]


def test_a_long_stall_keeps_the_first_and_last_look_of_each_seq():
    seen = [(at(i), 30) for i in range(0, 100, 2)]
    progress = job.archive_progress(seen, 29)
    assert progress["pending"] == [(at(0), 30), (at(98), 30)] and progress["held_since"] == at(0)


def test_a_rotation_is_asked_only_for_a_tail_that_waited_and_not_more_often_than_the_minimum():
    assert not job.rotation_due(None, at(100), None, 10, 60, 120)
    assert not job.rotation_due(at(95), at(100), None, 10, 60, 120)
    assert job.rotation_due(at(90), at(100), None, 10, 60, 120)
    # a trickling writer: the next one waits for the minimum interval
    assert not job.rotation_due(at(80), at(100), at(50), 10, 60, 120)
    assert job.rotation_due(at(80), at(120), at(50), 10, 60, 120)
    # a backlog (another file, or far behind): reading it is the cure, not a rotation
    assert not job.rotation_due(at(0), at(100), None, 10, 60, None)
    assert not job.rotation_due(at(0), at(100), None, 10, 60, job.ROTATION_TAIL_BYTES + 1)


def test_the_tail_is_what_the_copy_of_the_writers_current_file_lacks():
    assert job.archive_tail("mariadb-bin.000007", 5000, "mariadb-bin.000007", 4000) == 1000
    assert job.archive_tail("mariadb-bin.000007", 5000, "mariadb-bin.000007", 5100) == 0
    assert job.archive_tail("mariadb-bin.000008", 400, "mariadb-bin.000007", 9000) is None
    assert job.archive_tail(None, 0, "mariadb-bin.000007", 9000) is None


# -- settings (salt/backup) ------------------------------------------------------------


def defaults():
    return yaml.safe_load((REPO / "salt" / "backup" / "defaults.yaml").read_text())["backup"]


def test_the_default_settings_pass(analyze):
    checked = job.check_settings(defaults(), analyze)
    assert checked["schedule"]["full"] == "*-*-* 01:30:00"
    assert checked["schedule"]["incremental"] == "*-*-* *:15:00"
    assert checked["retention"] == {"daily_fulls": 7, "hourly_incrementals": 48}


@pytest.mark.parametrize("key, value, message", [
    ("schedule", {"full": "every night", "incremental": "hourly", "prune": "hourly"},
     'backup:schedule:full "every night" is not a systemd calendar expression'),
    ("schedule", {"full": "daily", "prune": "hourly"}, 'backup:schedule:incremental "" is empty'),
    ("retention", {"daily_fulls": 0, "hourly_incrementals": 48}, "backup:retention:daily_fulls is 0"),
    ("retention", {"daily_fulls": 7, "weekly": 4}, "backup:retention:weekly is not a retention setting"),
    ("lookup", {"archive": {"poll_seconds": 2, "rotate_after_seconds": 0, "rotate_min_interval_seconds": 60}},
     "backup:lookup:archive:rotate_after_seconds is 0"),
    ("lookup", {"archive": {"poll_seconds": 2, "rotate_after_seconds": 10}},
     "backup:lookup:archive:rotate_min_interval_seconds is None"),
    ("lookup", {"archive": {"poll_seconds": 10, "rotate_after_seconds": 10, "rotate_min_interval_seconds": 60,
                            "stall_restart_seconds": 60}},
     "rotate_after_seconds is 10; it must be at least two polls"),
    ("lookup", {"archive": {"poll_seconds": 2, "rotate_after_seconds": 10, "rotate_min_interval_seconds": 60}},
     "backup:lookup:archive:stall_restart_seconds is None"),
    ("lookup", {"archive": {"poll_seconds": 2, "rotate_after_seconds": 10, "rotate_min_interval_seconds": 60,
                            "stall_restart_seconds": 14}},
     "stall_restart_seconds is 14; it must be more than rotate_after_seconds plus two polls"),
])
def test_bad_settings_stop_the_render_naming_the_key(analyze, key, value, message):
    settings = dict(defaults(), **{key: value})
    with pytest.raises(job.SettingsError, match=message.replace("(", r"\(")):
        job.check_settings(settings, analyze)


# -- the data node's forced command ------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("status", {"action": "status"}),
    ("resync", {"action": "resync"}),
    ("rotate-binlog", {"action": "rotate-binlog"}),
    ("stream full 0 desync", {"action": "stream", "kind": "full", "from_lsn": 0, "desync": True}),
    ("stream incremental 48213 nodesync", {"action": "stream", "kind": "incremental", "from_lsn": 48213,
                                           "desync": False}),
])
def test_the_wrapper_accepts_exactly_its_requests(text, expected):
    assert wrapper.parse_request(text) == expected


@pytest.mark.parametrize("text", ["", "bash", "status; rm -rf /", "stream full 0", "stream full 5 desync",
                                  "stream incremental 0 desync", "stream incremental -1 desync",
                                  "stream full 0 desync --user=root", "scp -t /etc",
                                  "rotate-binlog mariadb-bin.000001"])
def test_the_wrapper_refuses_anything_else(text):
    with pytest.raises(wrapper.Refused, match="accepted: 'status'"):
        wrapper.parse_request(text)


def test_the_wrapper_reports_the_node_state_as_choose_backup_node_reads_it():
    rows = [("wsrep_local_state", "4"), ("wsrep_cluster_status", "Primary"), ("wsrep_ready", "ON"),
            ("wsrep_on", "ON"), ("wsrep_desync", "OFF"), ("wsrep_node_name", "db2"),
            ("wsrep_cluster_state_uuid", UUID), ("wsrep_last_committed", "1240"), ("Uptime", "3600")]
    status = wrapper.status_from_rows(rows)
    assert status["last_committed"] == 1240 and not status["desync"] and status["uptime"] == 3600
    choice = lemp_backup.choose_backup_node({"db1": dict(status, node_name="db1"), "db2": status}, "db2")
    assert choice["node"] == "db2" and choice["writer"] and not choice["desync"]
    donor = wrapper.status_from_rows([(k, "2" if k == "wsrep_local_state" else v) for k, v in rows])
    with pytest.raises(lemp_backup.BackupError, match="no data node is Synced"):
        lemp_backup.choose_backup_node({"db2": donor}, None)


def test_the_wrapper_streams_mbstream_and_an_incremental_from_its_lsn():
    full = wrapper.mariabackup_command("/etc/lemp-backup/my.cnf", "full", 0, "/tmp/x")
    assert full[:2] == ["/usr/bin/mariabackup", "--defaults-extra-file=/etc/lemp-backup/my.cnf"]
    assert "--stream=mbstream" in full and "--galera-info" in full
    assert not any(a.startswith("--incremental-lsn") for a in full)
    assert "--incremental-lsn=48213" in wrapper.mariabackup_command("/etc/lemp-backup/my.cnf", "incremental",
                                                                    48213, "/tmp/x")


# -- the lab's SSH key pair -------------------------------------------------------------


def test_the_lab_ssh_key_is_an_openssh_ecdsa_key_of_the_private_half(tmp_path, host_tool):
    openssl = host_tool("openssl")
    private, public = lab_secrets.ensure_ssh_key(tmp_path, "backup_stream")
    assert private.startswith("-----BEGIN EC PRIVATE KEY-----")
    kind, blob, comment = public.split()
    assert kind == "ecdsa-sha2-nistp256" and comment == "lemp-ha-backup_stream"
    der = subprocess.run([openssl, "ec", "-in", str(tmp_path / "backup_stream"), "-pubout", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    raw = base64.b64decode(blob)
    assert raw.endswith(der[-65:]) and raw[4:23] == b"ecdsa-sha2-nistp256"
    # kept once made: a regeneration does not rotate it under running machines
    assert lab_secrets.ensure_ssh_key(tmp_path, "backup_stream") == (private, public)


def test_only_the_store_gets_the_private_key_and_the_encryption_key(tmp_path, topology):
    folder = lab_secrets.generate(tmp_path, REPO / "pillar" / "topology.yaml", REPO / "pillar" / "secrets.spec.yaml")
    pillars = {name: yaml.safe_load((folder / "minions" / f"{name}.yaml").read_text()) for name in topology["machines"]}
    for name, pillar in pillars.items():
        roles = topology["machines"][name]["roles"]
        got = pillar.get("backup", {})
        assert ("encryption_key" in got) == ("backup" in roles), name
        assert ("private_key" in got.get("ssh", {})) == ("backup" in roles), name
        assert ("db_password" in got) == ("db" in roles), name
        if "db" in roles:
            assert got["ssh"]["public_key"] == pillars["arb1"]["backup"]["ssh"]["public_key"]
            assert got["replication_password"] == pillars["arb1"]["backup"]["replication_password"]


# -- the runner's listing ----------------------------------------------------------------


def test_the_listing_names_each_backup_and_the_archive_state():
    plan = lemp_backup.plan_backup({"backups": {}, "chains": [], "invalid": []}, "full")
    full = job.build_manifest(plan, "db2", STARTED, FINISHED, info(), STORED, KEY)
    answer = {"manifests": [full, {"id": "broken", "unreadable": "Expecting value"}], "drills": {},
              "status": {"archive": {"node": "db1", "cluster": UUID, "complete_until": "2024-05-01T03:59:58Z",
                                     "lag_seconds": 2.0, "gap": None}},
              "now": "2024-05-01T04:00:00Z"}
    result = runner.summary(answer)
    assert result["newest_restorable"] == full["id"]
    assert result["backups"][full["id"]]["restorable"]
    assert any(line.startswith(full["id"]) and "restorable" in line for line in result["lines"])
    assert any(line.startswith("invalid manifest broken") for line in result["lines"])
    assert result["lines"][-1].startswith("binlog archive: following db1")
    empty = runner.summary({"manifests": [], "now": "2024-05-01T04:00:00Z"})
    assert empty["lines"][0] == "no backup yet: salt-run lemp_backup.now kind=full"
    assert "no state yet" in empty["lines"][-1]


def test_the_runner_finds_the_store_and_refuses_a_bad_kind(topology):
    assert runner.store_machine(topology) == "arb1"
    with pytest.raises(ValueError, match="no machine has the role backup"):
        runner.store_machine({"roles": {}})
    with pytest.raises(ValueError, match="give kind=full or kind=incremental"):
        runner.check_kind("differential")


# -- where the next backup is taken -------------------------------------------------


def synced_status(uptime=86400):
    return {"running": True, "wsrep_on": True, "cluster_status": "Primary", "ready": True, "local_state": 4,
            "uptime": uptime}


def chain_on(node):
    plan = lemp_backup.plan_backup({"backups": {}, "chains": [], "invalid": []}, "full")
    full = job.build_manifest(plan, node, STARTED, FINISHED, info(), STORED, KEY)
    cat = lemp_backup.catalogue([full])
    return cat, lemp_backup.plan_backup(cat, "incremental")


NOW = datetime.datetime(2024, 5, 1, 2, 15, tzinfo=UTC)


def test_an_incremental_continues_on_the_node_of_its_parent():
    cat, plan = chain_on("db2")
    picked = job.choose_node(cat, plan, {"db1": synced_status(), "db2": synced_status()}, "db2", NOW)
    # db2 is the writer now: still db2 (its LSNs), not desynced
    assert picked["choice"]["node"] == "db2" and not picked["choice"]["desync"]
    # the writer moved to db1: the archive now holds db1's binlogs, the chain's GTIDs are db2's
    moved = job.choose_node(cat, plan, {"db1": synced_status(), "db2": synced_status()}, "db1", NOW)
    assert "the chain's node db2 is no longer the writer (db1)" in moved["refused"]


def test_an_incremental_is_refused_when_its_node_is_away_or_restarted_since_the_parent():
    cat, plan = chain_on("db2")
    away = job.choose_node(cat, plan, {"db1": synced_status(), "db2": None}, "db1", NOW)
    assert "the chain's node db2 is not Synced" in away["refused"]
    # up for 10 minutes at 02:15: restarted at 02:05, after the full started at 01:30
    restarted = job.choose_node(cat, plan, {"db1": synced_status(), "db2": synced_status(600)}, "db1", NOW)
    assert "db2 restarted at 2024-05-01T02:05:00Z" in restarted["refused"] and "SST" in restarted["refused"]
    assert "cannot tell" in job.choose_node(cat, plan, {"db2": dict(synced_status(), uptime=None)}, "db1",
                                            NOW)["refused"]


def test_a_full_goes_to_the_writer():
    plan = lemp_backup.plan_backup({"backups": {}, "chains": [], "invalid": []}, "full")
    picked = job.choose_node({"backups": {}}, plan, {"db1": synced_status(), "db2": synced_status()}, "db1", NOW)
    assert picked["choice"]["node"] == "db1" and not picked["choice"]["desync"]


# -- the GTID settings of the data nodes ------------------------------------------------


def render_galera_cnf(server_id):
    import jinja2

    galera = yaml.safe_load((REPO / "salt" / "galera" / "defaults.yaml").read_text())["galera"]
    galera.update(address="10.77.0.31", server_id=server_id, arbitrators=[], cluster_addresses=["10.77.0.31"],
                  sst_password="x")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(REPO / "salt" / "galera" / "files")),
                             extensions=["jinja2.ext.do"])
    return env.get_template("galera.cnf.jinja").render(galera=galera, node_name="db1")


def test_every_node_writes_cluster_gtids_in_one_domain_and_its_own_writes_in_another():
    cnf = {line.split("=")[0].strip(): line.split("=", 1)[1].strip()
           for line in render_galera_cnf(172818463).splitlines() if "=" in line and not line.startswith("#")}
    assert cnf["wsrep_gtid_mode"] == "ON"
    assert cnf["wsrep_gtid_domain_id"] == str(lemp_backup.DOMAIN)
    assert cnf["gtid_domain_id"] == "172818463" != cnf["wsrep_gtid_domain_id"]
    assert cnf["log_slave_updates"] == "ON"


# -- a dead stream is restarted (lemp-backup.py Archiver.cycle) ---------------------------


def _at(seconds):
    return datetime.datetime(2026, 11, 27, 15, 40, 0, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("held, grew, now, stalled", [
    (None, 0, 100, False),      # nothing waits: a quiet writer, however long
    (0, 0, 29, False),          # waiting, not yet for 30 s
    (0, 0, 30, True),           # a write waited 30 s and the copy stood still: the lab's half-open connection
    (0, 25, 40, False),         # the copy grew 15 s ago: a backlog being read, or the rotation's write-out
    (20, 0, 40, False),         # the copy stands still, but what waits waited only 20 s
    (0, None, 100, False),      # no copy looked at yet (just started)
])
def test_a_stream_is_taken_for_dead_only_when_writes_wait_and_the_copy_stands_still(held, grew, now, stalled):
    assert job.stream_stalled(None if held is None else _at(held), _at(now),
                              None if grew is None else _at(grew), 30) is stalled
