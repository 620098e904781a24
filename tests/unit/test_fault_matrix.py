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
    assert row[:3] == ["web hard-killed", "web2", "0"] and row[6] == "n/a" and row[8] == "0 / 0" and row[10] == "1.2"
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


# -- the overhead rows ---------------------------------------------------------------

def test_rounds_alternate_the_order_so_no_arm_always_goes_first():
    assert fm.round_order(["via", "direct"], 3) == [["via", "direct"], ["direct", "via"], ["via", "direct"]]
    four = fm.round_order(["via", "dnat", "socat", "direct"], 2)
    assert four == [["via", "dnat", "socat", "direct"], ["direct", "socat", "dnat", "via"]]
    assert fm.round_order(["via"], 0) == []


def test_median_of_ignores_missing_values():
    assert fm.median_of([300.0, 283.0, 364.0]) == 300.0
    assert fm.median_of([1.0, None, 3.0]) == 2.0
    assert fm.median_of([None]) is None and fm.median_of([]) is None


PROC_STAT = "cpu  {} 0 {} {} {} 0 {} {} 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1\n"


def test_proc_stat_delta_gives_busy_idle_and_steal_of_the_host():
    # user nice system idle iowait irq softirq steal
    before = fm.proc_stat_cpu(PROC_STAT.format(1000, 500, 2000, 100, 50, 10))
    after = fm.proc_stat_cpu(PROC_STAT.format(1600, 700, 2080, 110, 100, 20))
    assert before["user"] == 1000 and before["steal"] == 10
    # deltas: user 600, system 200, idle 80, iowait 10, softirq 50, steal 10: 950 ticks
    split = fm.cpu_split(before, after)
    assert split["busy"] == pytest.approx(850 / 950 * 100)
    assert split["idle"] == pytest.approx(90 / 950 * 100)
    assert split["steal"] == pytest.approx(10 / 950 * 100)
    assert fm.cpu_split(before, before) is None
    with pytest.raises(ValueError):
        fm.proc_stat_cpu("intr 1\n")


def test_cpuacct_delta_is_cpu_ms_per_transaction_and_the_cgroup_is_found_or_not(tmp_path):
    v1 = tmp_path / "cpuacct" / "lxc.payload.lemp-ha-lb1"
    v1.mkdir(parents=True)
    (v1 / "cpuacct.usage").write_text("40842585067\n")
    v2 = tmp_path / "lxc.payload.lemp-ha-db1"
    v2.mkdir()
    (v2 / "cpu.stat").write_text("usage_usec 76399491\nuser_usec 1\n")
    path = fm.cgroup_file("lb1", fm.CPU_USAGE_FILES, tmp_path)
    assert path == v1 / "cpuacct.usage"
    assert fm.cpu_usage_ns(path, path.read_text()) == 40842585067
    db1 = fm.cgroup_file("db1", fm.CPU_USAGE_FILES, tmp_path)
    assert fm.cpu_usage_ns(db1, db1.read_text()) == 76399491000
    assert fm.cgroup_file("arb1", fm.CPU_USAGE_FILES, tmp_path) is None  # stopped, or another layout
    # 5.82 s of CPU over 5820 transactions: 1 ms each
    assert fm.ms_per_unit(10_000_000_000, 15_820_000_000, 5820) == pytest.approx(1.0)
    assert fm.ms_per_unit(None, 1, 10) is None and fm.ms_per_unit(1, 2, 0) is None


def test_the_cpu_meter_reads_the_host_the_containers_and_itself_and_says_what_it_missed(tmp_path):
    d = tmp_path / "cpuacct" / "lxc.payload.lemp-ha-lb1"
    d.mkdir(parents=True)
    (d / "cpuacct.usage").write_text("1000000\n")
    meter = fm.CpuMeter({"lb": "lb1", "node": "db1", "client": fm.SELF}, root=tmp_path)
    before = meter.read()
    (d / "cpuacct.usage").write_text("21000000\n")
    sum(i * i for i in range(200000))  # some CPU in this process
    after = meter.read()
    assert meter.missing == ["db1"]
    cpu = fm.arm_cpu(before, after, 10)
    assert cpu["ms"]["lb"] == pytest.approx(2.0) and cpu["ms"]["node"] is None
    assert cpu["ms"]["client"] >= 0
    assert set(cpu["host"] or {"busy": 0, "idle": 0, "steal": 0}) == {"busy", "idle", "steal"}


def measurement(rate, busy, lb_ms, **extra):
    return {"rate": rate, "units": int(rate * 30), "host": {"busy": busy, "idle": 100 - busy - 1, "steal": 1.0},
            "ms": {"lb": lb_ms, "node": 1.2, "client": 0.9}, **extra}


def test_the_arms_medians_keep_each_round_in_run_order():
    rounds = [{"via": measurement(190.0, 97, 0.12)}, {"via": measurement(198.0, 95, 0.10)},
              {"via": measurement(194.0, 96, 0.30)}]
    s = fm.arm_medians(rounds, "via")
    assert s["rate"] == 194.0 and s["each"] == [190.0, 198.0, 194.0]
    assert s["host"] == {"busy": 96, "idle": 3, "steal": 1.0}
    assert s["ms"] == {"lb": 0.12, "node": 1.2, "client": 0.9}
    assert s["p50_ms"] is None and s["errors"] == 0


def test_the_db_note_gives_every_arm_the_figure_the_floors_and_where_the_time_goes():
    arms = [("via", "via HAProxy"), ("dnat", "DNAT"), ("direct", "direct")]
    rounds = [{"via": measurement(190.0, 97, 0.12), "dnat": measurement(250.0, 96, 0.05),
               "direct": measurement(280.0, 90, None)},
              {"direct": measurement(278.0, 91, None), "dnat": measurement(240.0, 95, 0.06),
               "via": measurement(200.0, 96, 0.10)}]
    note = fm.overhead_note(rounds, arms, ("tps", "transaction"), {"lb": "lb1", "node": "db1", "client": "arb1"},
                            skipped={"socat": "the relay did not start on lb1: no apt"}, missing=["arb9"],
                            method="2 rounds.")
    assert note.startswith("via HAProxy 195 tps (rounds 190/200), DNAT 245 tps (rounds 250/240), "
                           "direct 279 tps (rounds 280/278): via HAProxy 30.1% under direct")
    assert "via HAProxy's cost over DNAT 20.4%; those hops alone cost DNAT 12.2%" in note
    assert "host CPU busy/idle/steal % (medians): via HAProxy 96/2/1, DNAT 96/4/1, direct 90/8/1" in note
    assert "CPU ms per transaction, lb lb1/node db1/client arb1: via HAProxy 0.11/1.20/0.90, DNAT 0.06/1.20/0.90, " \
           "direct n/a/1.20/0.90" in note
    assert "CPU per container not measured for arb9" in note
    assert "socat not measured: the relay did not start on lb1: no apt" in note
    assert note.endswith(". 2 rounds.")


def test_the_http_note_has_p50_and_errors_and_no_floor_line():
    arms = [("via", "via the VIP"), ("direct", "direct")]
    rounds = [{"via": measurement(190.0, 99, 0.4, p50_ms=36.2, errors=1),
               "direct": measurement(221.0, 99, 0.1, p50_ms=31.0, errors=0)}]
    note = fm.overhead_note(rounds, arms, ("req/s", "request"), {"lb": "lb1", "node": "web2", "client": "me"})
    assert note.startswith("via the VIP 190 req/s (rounds 190, p50 36.2 ms, 1 errors), direct 221 req/s "
                           "(rounds 221, p50 31.0 ms): via the VIP 14.0% under direct")
    assert "cost over" not in note and "not measured" not in note


def test_the_kernel_hop_is_a_table_of_its_own_that_masquerades_only_its_flows():
    rules = fm.dnat_rules("10.77.0.11", "10.77.0.31")
    assert rules.startswith("add table ip lemp_bench\n")
    assert "prerouting { type nat hook prerouting priority dstnat; policy accept; }" in rules
    assert "ip daddr 10.77.0.11 tcp dport 13306 dnat to 10.77.0.31:3306" in rules
    assert "ip daddr 10.77.0.31 tcp dport 3306 ct status dnat masquerade" in rules
    setup = fm.floors_setup_command("10.77.0.11", "10.77.0.31")
    # the old values are saved once (a cut-short run's file is kept) before anything is set
    assert setup.index("[ -e /run/lemp-bench-overhead.sysctl ] || sysctl net.ipv4.ip_forward") \
        < setup.index("sysctl -q -w net.ipv4.ip_forward=1") < setup.index("nft -f -")
    assert setup.endswith(rules + "EOF")
    assert fm.greeting_probe("10.77.0.11", 13306) == \
        "timeout 5 bash -c 'exec 3<>/dev/tcp/10.77.0.11/13306 && head -c 4 <&3 | wc -c' 2>/dev/null"


def test_the_relay_and_its_firewall_rule_are_found_again_and_undone():
    rule = fm.relay_rule("lemp_ha", "10.77.0.11", "10.77.0.41")
    assert rule.startswith("nft insert rule inet lemp_ha input ip saddr 10.77.0.41 ip daddr 10.77.0.11 "
                           "tcp dport 13307 accept")
    assert "comment '\"lemp-bench-overhead\"'" in rule
    assert "--unit=lemp-bench-socat socat TCP-LISTEN:13307,bind=10.77.0.11,fork,reuseaddr TCP:10.77.0.31:3306" \
        in fm.relay_command("10.77.0.11", "10.77.0.31")
    listing = ("table inet lemp_ha {\n\tchain input { # handle 2\n"
               "\t\tip saddr 10.77.0.41 ip daddr 10.77.0.11 tcp dport 13307 accept comment \"lemp-bench-overhead\""
               " # handle 57\n\t\tct state established,related accept # handle 9\n"
               "\t\tip saddr 10.77.0.41 tcp dport 13307 accept comment \"lemp-bench-overhead\" # handle 61\n\t}\n}\n")
    assert fm.tagged_handles(listing) == [57, 61]
    assert fm.tagged_handles("") == []
    cleanup = fm.floors_cleanup_command("lemp_ha")
    for step in ("systemctl stop lemp-bench-socat", "nft delete table ip lemp_bench",
                 "sysctl -q -p /run/lemp-bench-overhead.sysctl && rm -f /run/lemp-bench-overhead.sysctl",
                 "nft -a list chain inet lemp_ha input"):
        assert step in cleanup
    assert fm.firewall_table() == "lemp_ha"


def test_a_paused_observer_ends_its_process_and_starts_again_on_resume(monkeypatch):
    """The overhead rows pause the LB and db observers too: while paused
    no process runs in the machine (no `show stat`, no `mariadb`)."""
    class Lab:
        def state(self, machine):
            return "RUNNING"

    monkeypatch.setattr(fm, "attach_argv", lambda machine, command: ["bash", "-c", command])
    obs = fm.Observer(Lab(), "db1", 'while :; do echo "$(date +%s.%N) Synced"; sleep 0.05; done',
                      fm.parse_db_line, 60)
    try:
        fm.wait_for(lambda: len(obs.samples) >= 2, 10, "the first samples", interval=0.05)
        obs.pause()
        assert obs._idle.is_set() and obs._proc.poll() is not None
        n = len(obs.samples)
        assert not obs._stop.wait(0.3)  # a window in which a running observer would print 6 lines
        assert len(obs.samples) == n
        obs.resume()
        fm.wait_for(lambda: len(obs.samples) > n, 10, "samples again after resume", interval=0.05)
    finally:
        obs.stop(join=5)


def test_the_overhead_options_and_the_listing_shape():
    text = (REPO / "bench" / "fault_matrix.py").read_text()
    for option in ("--overhead-rounds", "--overhead-warmup", "--lb-cpu-shares"):
        assert f'"{option}"' in text
    lines = fm.listing(fm.select("overhead-db,overhead-http", False, fm.catalogue())).splitlines()
    assert [line.split()[0] for line in lines] == ["overhead-db", "overhead-http"]


def test_upload_gap_is_the_longest_pause_on_the_web_nodes_the_fault_did_not_stop():
    # web1 blocked 3.5 s (a brick lost, the client waiting out ping-timeout); web2 was the one killed
    web1 = [(100 + i / 5, True) for i in range(10)] + [(105.3, False)] + [(105.5 + i / 5, True) for i in range(30)]
    web2 = [(100 + i / 5, True) for i in range(5)]
    uploads = {"web1": web1, "web2": web2}
    assert fm.upload_gap(uploads, 101.0, 110.0, exclude={"web2"}) == pytest.approx(105.5 - 101.8)
    # a failed write is no completed upload; with web2 counted, its open pause since 100.8 is longer
    assert fm.upload_gap(uploads, 101.0, 110.0) == pytest.approx(110.0 - 100.8)
    assert fm.upload_gap({}, 101.0, 110.0) is None
    assert fm.upload_gap(uploads, 101.0, 110.0, exclude={"web1", "web2"}) is None


def test_an_upload_line_parses_to_its_time_and_outcome():
    assert fm.parse_upload_line("1764300000.123456789 1\n") == (pytest.approx(1764300000.123456789), True)
    assert fm.parse_upload_line("1764300000.5 0") == (1764300000.5, False)
    with pytest.raises(ValueError):
        fm.parse_upload_line("dd: error\n")


def test_the_brick_faults_carry_the_upload_target():
    by_name = {f.name: f for f in fm.catalogue()}
    for name in ["web-kill", "web-stop", "redis-node-kill", "kill9-glusterfsd", "web-partition", "arb-kill"]:
        assert by_name[name].target["upload_gap"] == fm.UPLOADS["upload_gap"], name
    assert "upload_gap" not in by_name["db-writer-kill"].target
