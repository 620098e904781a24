"""The pure parts of bench/backup_restore.py, on sample data: no lab, no
lxc, no traffic (importing the script only sets up paths)."""

import argparse
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import backup_restore as br  # noqa: E402  (after the path set-up above)

SYSBENCH_RUN = """\
sysbench 1.0.20 (using system LuaJIT 2.1.0-beta3)

Running the test with following options:
Number of threads: 4
Report intermediate results every 10 second(s)

[ 10s ] thds: 4 tps: 101.19 qps: 2029.31 (r/w/o: 1421.47/405.46/202.38) lat (ms,95%): 57.87 err/s: 0.00 reconn/s: 0.00
SQL statistics:
    queries performed:
        read:                            85134
        write:                           24324
        other:                           12162
        total:                           121620
    transactions:                        6081   (101.30 per sec.)
    queries:                             121620 (2026.06 per sec.)
    ignored errors:                      2      (0.03 per sec.)
    reconnects:                          0      (0.00 per sec.)

General statistics:
    total time:                          60.0269s
    total number of events:              6081

Latency (ms):
         min:                                    9.12
         avg:                                   39.47
         max:                                  312.40
         95th percentile:                       57.87
         sum:                               240011.12

Threads fairness:
    events (avg/stddev):           1520.2500/10.21
    execution time (avg/stddev):   60.0028/0.01
"""


def test_a_sysbench_run_report_gives_its_figures():
    assert br.parse_sysbench_run(SYSBENCH_RUN) == {
        "transactions": 6081, "tps": 101.30, "queries": 121620, "qps": 2026.06, "ignored_errors": 2,
        "seconds": 60.0269, "latency_avg_ms": 39.47, "latency_p95_ms": 57.87}


def test_a_failed_sysbench_run_gives_none_rather_than_an_error():
    figures = br.parse_sysbench_run("FATAL: unable to connect to MySQL server")
    assert set(figures.values()) == {None}
    assert br.parse_sysbench_run(None)["tps"] is None


def test_rows_per_table_fill_about_the_requested_size():
    rows = br.sysbench_rows(1024, 4)
    assert rows == 1024 * 1024 * 1024 // (4 * br.BYTES_PER_ROW)
    assert abs(rows * 4 * br.BYTES_PER_ROW - 1024 * br.MIB) < 4 * br.BYTES_PER_ROW
    assert br.sysbench_rows(1, 64) == 1000  # never a toy table


@pytest.mark.parametrize("size, tables", [(0, 4), (1024, 0), (-1, 4)])
def test_rows_per_table_refuse_a_non_positive_size_or_table_count(size, tables):
    with pytest.raises(ValueError, match="--size-mb"):
        br.sysbench_rows(size, tables)


def test_the_sysbench_command_carries_no_password():
    cmd = br.sysbench_command("prepare", "10.77.0.10", 3306, 4, 1000, 4)
    assert cmd.startswith("sysbench oltp_read_write --db-driver=mysql --mysql-host=10.77.0.10 --mysql-port=3306 ")
    assert cmd.endswith(" prepare") and "--tables=4" in cmd and "--table-size=1000" in cmd
    assert "password" not in cmd and "--time" not in cmd
    run = br.sysbench_command("run", "10.77.0.10", 3306, 4, 1000, 8, seconds=60)
    assert "--time=60" in run and "--threads=8" in run and run.endswith(" run")
    with pytest.raises(ValueError, match="prepare or run"):
        br.sysbench_command("cleanup", "h", 1, 1, 1, 1)


def manifest(bid, kind, started, finished, size=10):
    return {"id": bid, "kind": kind, "started": started, "finished": finished, "size": size}


def test_the_new_manifest_is_the_newest_of_its_kind_not_seen_before():
    old = manifest("20240501T010000Z-full-db2", "full", "2024-05-01T01:00:00Z", "2024-05-01T01:05:00Z")
    new = manifest("20240501T020000Z-full-db2", "full", "2024-05-01T02:00:00Z", "2024-05-01T02:03:30Z")
    inc = manifest("20240501T020500Z-incremental-db2", "incremental", "2024-05-01T02:05:00Z", "2024-05-01T02:06:00Z")
    found = {m["id"]: m for m in (old, new, inc)}
    assert br.new_manifest({old["id"]}, found, "full") is new
    assert br.new_manifest({old["id"], new["id"]}, found, "full") is None
    assert br.new_manifest(set(), found, "incremental") is inc
    assert br.manifest_seconds(new) == 210.0


def test_rpo_figures_count_the_lost_tail_and_its_seconds():
    acked = list(range(1, 1001))  # 1000 rows in 100 s: 10 rows/s
    restored = {i: 1000.0 + i / 10 for i in range(1, 981)}  # the last 20 acked rows are lost
    r = br.rpo_figures(acked, restored, killed_at=1100.0, started_at=1000.0)
    assert (r["acked"], r["lost"], r["not_tail"]) == (1000, 20, 0)
    assert (r["last_acked"], r["last_restored"]) == (1000, 980)
    assert r["rate"] == 10.0 and r["gap_s"] == 2.0
    assert r["gap_upper_s"] == pytest.approx(2.0)


def test_rpo_figures_show_a_loss_that_is_not_the_tail_and_an_empty_restore():
    r = br.rpo_figures([1, 2, 3, 4], {1: 10.0, 3: 11.0, 4: 12.0}, killed_at=14.0, started_at=10.0)
    assert (r["lost"], r["not_tail"], r["last_restored"]) == (1, 1, 4)
    nothing = br.rpo_figures([1, 2], {}, killed_at=12.0, started_at=10.0)
    assert nothing["lost"] == 2 and nothing["last_restored"] is None and nothing["gap_upper_s"] is None
    assert br.rpo_figures([], {}, 1.0, 0.0)["gap_s"] is None


def test_goals_say_met_or_not_met_with_the_numbers():
    g = br.goals({"rpo_gap_s": 2.0, "full_s": 100.0, "dump_s": 150.0, "rto_s": 60.0, "reload_s": 600.0})
    assert g == {"rpo": "RPO <= 5 s: met (2.0 s)",
                 "full": "full backup no slower than mysqldump: met (100 s vs 150 s)",
                 "restore": "restore >= 5x faster than reloading the dump: met (10.0x)"}
    g = br.goals({"rpo_gap_s": 7.5, "full_s": 200.0, "dump_s": 150.0, "rto_s": 200.0, "reload_s": 600.0})
    assert all("NOT met" in text for text in g.values())


def test_goals_without_a_figure_are_not_applicable():
    assert set(br.goals({}).values()) == {
        "RPO <= 5 s: n/a", "full backup no slower than mysqldump: n/a",
        "restore >= 5x faster than reloading the dump: n/a"}


def test_the_table_has_every_step_and_leaves_out_the_rpo_when_skipped():
    fig = {"rows": 1000, "dataset_bytes": 512 * br.MIB, "full_s": 100.0, "dump_s": 150.0, "rto_s": 60.0,
           "reload_s": 600.0, "rpo_gap_s": 1.0, "full_bytes": 256 * br.MIB}
    args = argparse.Namespace(tables=4, run_seconds=60, skip_rpo=False)
    rows = br.table_rows(fig, args)
    assert all(len(row) == 4 for row in rows)
    steps = [row[0] for row in rows]
    assert steps[0] == "dataset" and steps[-1] == "mysqldump" and "every db node lost (RPO)" in steps
    assert ["dataset", "InnoDB size of the sysbench tables (MiB)", 512.0, ""] in rows
    assert any(row[3].startswith("RPO <= 5 s: met") for row in rows)
    args.skip_rpo = True
    assert "every db node lost (RPO)" not in [row[0] for row in br.table_rows(fig, args)]


def test_the_commit_is_read_from_the_repository(tmp_path):
    assert br.commit_of(tmp_path) == "unknown"  # not a git checkout
    commit = br.commit_of()
    assert commit == "unknown" or len(commit.split("+")[0]) >= 7
