"""The pure parts of bench/fault_matrix.py, on synthetic samples: no lab, no
network. The figures of each row (error window, write gap, lost writes,
sessions lost, seconds with the VIP on both LBs or two Redis masters), the
targets' verdicts, the catalogue and the table rows."""

import pathlib
import sys

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import fault_matrix as fm  # noqa: E402


def req(t, latency, ok=True):
    return (t, latency, ok, "HTTP 200" if ok else "ReadTimeout")


def test_error_window_runs_from_the_first_failed_start_to_the_last_failed_end():
    requests = [req(99.0, 0.1, False), req(100.0, 0.1), req(101.0, 0.5, False), req(102.0, 10.0, False),
                req(103.0, 0.1), req(120.0, 0.1, False)]
    failed, window, end = fm.error_window(requests, 100.0, 110.0)
    assert (failed, window, end) == (2, pytest.approx(11.0), pytest.approx(112.0))
    assert fm.error_window([req(100.0, 0.1)], 0, 200) == (0, 0.0, None)


def test_slowest_counts_failed_requests_too_and_none_without_requests():
    assert fm.slowest([req(1, 0.2), req(2, 10.0, False), req(50, 30.0)], 0, 10) == 10.0
    assert fm.slowest([], 0, 10) is None


def test_write_gap_is_the_longest_pause_around_the_window_and_an_open_one_counts():
    stamps = [1.0, 1.1, 1.2, 5.2, 5.3, 9.0, 10.5, 11.0, 20.0, 26.0]
    # the 4 s pause overlaps [2, 10]; those that begin after it (11 -> 20, 20 -> 26) do not count
    assert fm.write_gap(stamps, 2.0, 10.0) == (pytest.approx(4.0), 5.2)
    # a pause that begins in the window counts whole, even when it ends after it
    assert fm.write_gap([1.0, 9.0, 30.0], 2.0, 10.0) == (pytest.approx(21.0), 30.0)
    # writes that never resumed: from the last write to the window's end
    assert fm.write_gap([1.0, 1.1, 1.2], 1.15, 9.0) == (pytest.approx(7.8), 9.0)
    assert fm.write_gap([], 0, 10) == (None, None)


def test_lost_writes_are_acked_ids_missing_on_any_node_split_at_the_restore():
    acked = [1, 2, 3, 4, 5, 6]
    present = {"db1": {1, 2, 3, 4, 5, 6}, "db2": {1, 2, 4, 5}}
    assert fm.lost_writes(acked, present) == (2, 0)
    assert fm.lost_writes(acked, present, split=4) == (1, 1)
    # an unacknowledged row that exists is not a problem
    assert fm.lost_writes([1], {"db1": {1, 2}}) == (0, 0)


def test_session_events_count_a_counter_reset_and_a_replaced_cookie():
    samples = [
        (1.0, 0, 5, "a"), (1.0, 1, 9, "x"),
        (2.0, 0, None, "a"),       # the store failed this request: no reset
        (3.0, 0, 6, "a"),
        (4.0, 1, 1, "y"),          # client 1: restarted at 1 with a new id
        (5.0, 0, 7, None),         # no cookie this time: no change
        (6.0, 0, 8, "a"),
    ]
    assert fm.session_events(samples, 0, 10) == (1, 1)
    assert fm.session_events(samples, 5, 10) == (0, 0)  # the reset was before the window


def test_a_session_lost_is_charged_to_when_it_broke_and_counted_once_per_client():
    samples = [
        (1.0, 0, 40, "a"), (1.0, 1, 30, "x"),
        (2.0, 0, None, "b"),       # the fault: client 0's read fails, a new id is set
        (2.5, 0, None, "b"),
        (6.0, 0, 1, "b"),          # ...and it restarts at 1 only after the window [0, 5)
        (7.0, 0, 2, "b"), (8.0, 0, 1, "c"),   # a second loss of the same client
        (9.0, 1, 31, "x"),
    ]
    assert fm.session_events(samples, 0, 5) == (1, 1)   # the fault's row, not the return's
    assert fm.session_events(samples, 5, 10) == (1, 1)  # the second loss, at 8 s
    assert fm.session_events(samples, 0, 10) == (1, 1)  # one client, however many losses


def test_intervals_hold_a_sample_until_the_next_at_most_max_age():
    series = [(0.0, True), (0.2, True), (0.4, False), (0.6, True), (5.0, True)]
    assert fm.intervals(series, 1.0) == [(0.0, 0.4), (0.6, 1.6), (5.0, 6.0)]


def test_vip_on_both_counts_only_the_overlap_and_not_a_killed_observer():
    lb1 = [(t / 10, True, None) for t in range(0, 100)]                      # holds it 0..10 s
    lb2 = [(t / 10, 30 <= t < 50, None) for t in range(0, 100)]              # also from 3 to 5 s
    assert fm.vip_both_seconds({"lb1": lb1, "lb2": lb2}, 0, 10) == pytest.approx(2.0, abs=0.01)
    assert fm.vip_both_seconds({"lb1": lb1, "lb2": lb2}, 4, 10) == pytest.approx(1.0, abs=0.01)
    # lb2's last sample said "holds" and then it was killed: at most max_age counts
    dead = [(3.0, True, None)]
    assert fm.vip_both_seconds({"lb1": lb1, "lb2": dead}, 0, 10, max_age=1.0) == pytest.approx(1.0, abs=0.01)


def test_two_masters_on_one_lb_or_across_the_lbs():
    one = frozenset({"redis-web1"})
    both = frozenset({"redis-web1", "redis-web2"})
    other = frozenset({"redis-web2"})
    lb1 = [(t, both if 2 <= t < 4 else one) for t in range(10)]
    lb2 = [(t, other if 6 <= t < 7 else one) for t in range(10)]
    samples = {"lb1": [(t, True, up) for t, up in lb1], "lb2": [(t, False, up) for t, up in lb2]}
    assert fm.two_masters_seconds(samples, 0, 10) == pytest.approx(3.0)
    assert fm.two_masters_seconds({"lb1": [(0, True, None), (1, True, frozenset())]}, 0, 10) == 0.0


def test_states_seen_lists_the_changes_only():
    samples = [(1, "Synced"), (2, "Synced"), (3, "Donor/Desynced"), (4, "Synced"), (20, "Joining")]
    assert fm.states_seen(samples, 0, 10) == "Synced → Donor/Desynced → Synced"
    assert fm.states_seen([(1, "Synced"), (2, "Synced")], 0, 10) == ""


def test_evaluate_says_yes_what_was_missed_or_what_was_not_measured():
    target = fm.merge(fm.PLANNED, fm.DB_LOSS)
    good = {"failed": 0, "slowest": 0.4, "write_gap": 1.2, "lost": 0}
    assert fm.evaluate(good, target) == "yes"
    verdict = fm.evaluate(dict(good, failed=4, write_gap=6.45), target)
    assert verdict == "no: failed 4 > 0; write gap 6.45 > 3"
    assert fm.evaluate(dict(good, lost=None), target) == "n/a: lost not measured"
    assert fm.evaluate(good, fm.MEASURED) == "—"


def test_merge_keeps_the_more_demanding_target():
    assert fm.merge({"failed": 0, "slowest": 1.0}, {"slowest": 0.5, "lost": 0}) == {
        "failed": 0, "slowest": 0.5, "lost": 0}


def test_figures_of_a_row_from_every_recorder():
    requests = [req(100.5, 0.1), req(101.0, 0.2, False), req(101.5, 0.3)]
    sessions = [(99, 0, 3, "a"), (102, 0, 1, "b")]
    stamps = [99.0, 100.0, 104.0] + [104.0 + i / 10 for i in range(1, 61)]
    lbs = {"lb1": [(t, True, frozenset({"r1"})) for t in range(95, 110)],
           "lb2": [(t, t == 101, frozenset({"r1"})) for t in range(95, 110)]}
    fig = fm.figures(requests, sessions, stamps, lbs, 100.0, 110.0, lost=0)
    assert fig["failed"] == 1 and fig["error_window"] == pytest.approx(0.2)
    assert fig["write_gap"] == pytest.approx(4.0)
    assert (fig["sessions_lost"], fig["ids_replaced"]) == (1, 1)
    assert fig["vip_both"] == pytest.approx(1.0)
    assert fig["two_masters"] == 0.0
    # users saw errors until the write gap ended at 104 s
    assert fig["service_back"] == pytest.approx(4.0)


def test_table_row_has_one_cell_per_header_and_the_verdict_last():
    fig = {"failed": 0, "error_window": 0.0, "slowest": 0.25, "write_gap": 0.05, "lost": 0, "sessions_lost": 0,
           "ids_replaced": 0, "vip_both": 0.0, "two_masters": 0.0}
    row = fm.table_row("web hard-killed", "web2", fig, fm.WEB_LOSS, 1.234, "db1: Synced → Donor/Desynced → Synced")
    assert len(row) == len(fm.HEADERS)
    assert row[:3] == ["web hard-killed", "web2", "0"] and row[7] == "0 / 0" and row[9] == "1.2"
    assert row[-1] == "yes (db1: Synced → Donor/Desynced → Synced)"
    failed = fm.table_row("x", None, {"error": "BenchError: orch.deploy failed"}, fm.PLANNED, None)
    assert failed[1] == "—" and failed[-1] == "error: BenchError: orch.deploy failed"


def test_the_catalogue_has_the_issues_faults_each_named_once():
    faults = fm.catalogue()
    names = [f.name for f in faults]
    assert len(names) == len(set(names))
    for name in ["lb-holder-kill", "lb-backup-stop", "web-kill", "db-writer-kill", "db-backup-kill", "arb-kill",
                 "salt-master-kill", "monitor-stop", "redis-node-kill", "kill9-haproxy", "kill9-keepalived",
                 "kill9-nginx", "kill9-php-fpm", "kill9-mariadbd", "kill9-garbd", "kill9-redis", "kill9-sentinel",
                 "kill9-glusterfsd", "web-partition", "db-partition", "vrrp-partition", "sst", "deploy", "rollback",
                 "rolling-restart", "scale-out", "scale-in", "overhead-db", "overhead-http"]:
        assert name in names
    # every fault that breaks something has its return row; each target names known metrics
    for f in faults:
        if f.action in ("kill", "stop", "link", "vrrp") or f.action.startswith("svc:"):
            assert f.back, f.name
        assert set(f.target) | set(f.back_target) <= set(fm.TARGET_TEXT), f.name


def test_select_all_quick_and_names():
    known = fm.catalogue()
    assert fm.select("all", False, known) == known
    quick = fm.select(None, True, known)
    rows = sum(2 if f.back else 1 for f in quick)
    assert 10 <= rows <= 16, rows
    assert [f.name for f in fm.select("sst,deploy", False, known)] == ["sst", "deploy"]
    with pytest.raises(ValueError, match="nope"):
        fm.select("sst,nope", False, known)


def test_listing_names_every_fault_and_its_return():
    text = fm.listing(fm.catalogue())
    assert "lb-holder-kill" in text and "then: LB failback" in text and "overhead ≤ 10%" in text


def test_the_php_fpm_unit_follows_the_php_version():
    version = yaml.safe_load((REPO / "salt" / "phpfpm" / "defaults.yaml").read_text())["phpfpm"]["version"]
    (entry,) = [s for s in fm.SERVICES if s[0] == "php-fpm"]
    assert entry[1] == f"php-fpm{version}" and entry[2] == f"php{version}-fpm"


def test_vrrp_cut_drops_protocol_112_from_each_peer_in_a_table_of_its_own():
    script = fm.vrrp_cut_rules(["10.77.0.12"])
    assert script.splitlines()[0] == "add table inet lemp_bench_vrrp"
    assert "add rule inet lemp_bench_vrrp input ip saddr 10.77.0.12 ip protocol 112 drop" in script
    assert "priority -10" in script


def test_gluster_status_online_only_when_every_node_says_1():
    xml = ("<volStatus><volumes><volume><node><hostname>web1</hostname><status>1</status></node>"
           "<node><hostname>web2</hostname><status>{}</status></node></volume></volumes></volStatus>")
    assert fm.gluster_all_online(xml.format(1))
    assert not fm.gluster_all_online(xml.format(0))
    assert not fm.gluster_all_online("")


def test_overhead_pct():
    assert fm.overhead_pct(900.0, 640.0) == pytest.approx(28.89, abs=0.01)
    assert fm.overhead_pct(None, 640.0) is None


def test_observer_lines_parse():
    assert fm.parse_lb_line("12.5 1 redis-web1,redis-web2\n") == (12.5, True, frozenset({"redis-web1", "redis-web2"}))
    assert fm.parse_lb_line("12.5 0 .") == (12.5, False, frozenset())
    assert fm.parse_lb_line("12.5 0 -") == (12.5, False, None)
    assert fm.parse_db_line("1700000000.123 Donor/Desynced\n") == (1700000000.123, "Donor/Desynced")
    with pytest.raises(ValueError):
        fm.parse_db_line("garbage")


def test_a_killed_service_stays_down_without_masking_so_its_stop_post_commands_run():
    # a masked unit has no drop-ins after systemd's reload: haproxy's track
    # file and keepalived's VIP removal (ExecStopPost) would not run
    down, back = fm.wh.no_restart_command("haproxy"), fm.wh.restart_allowed_command("haproxy")
    assert "mask" not in down
    assert "/run/systemd/system/haproxy.service.d/zz-lemp-ha-no-restart.conf" in down
    assert "Restart=no" in down and down.endswith("systemctl daemon-reload")
    assert back.startswith("rm -f /run/systemd/system/haproxy.service.d/zz-lemp-ha-no-restart.conf")
    assert "systemctl daemon-reload" in back


def test_the_load_loops_can_rest_and_resume():
    """The overhead rows rest the matrix's own load (pause/resume): a loop's
    attribute must never shadow those methods (the first full run failed
    there: 'float' object is not callable)."""
    class NoLab:
        vip = "192.0.2.1"  # never contacted: max_seconds 0 ends each client at once

        def new_session(self):
            return None

    for loop in (fm.HttpClients(NoLab(), "/x", 1, 1.0, 0), fm.SessionWriter(NoLab(), 1, 1.0, 0)):
        loop.pause()
        assert loop._resting.is_set()
        loop.resume()
        assert not loop._resting.is_set()
        loop.stop(join=5)
