"""Scaling the web tier (_runners/lemp_scale.py, _modules/lemp_scaling.py),
without Salt daemons: which pool name scales out, which node scales in, what
an autoscale request decides (sender, min, max, cooldown), and the runbook
steps each orchestration lists."""

import json
import pathlib

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]

import lemp_scaling  # tests/conftest.py puts _modules on the path
from by_path import load
from salt.exceptions import CommandExecutionError

# The runner by path, not _runners on sys.path (see test_galera_plans.py).
lemp_scale = load("lemp_scale_runner", "_runners/lemp_scale.py")

from test_galera_plans import arg, ids, requires  # noqa: E402

DEFAULTS = yaml.safe_load((REPO / "salt" / "scaling" / "defaults.yaml").read_text())["scaling"]
NOW = 1_800_000_000.0
ZABBIX = {"server": "10.77.0.41", "port": 10051, "host": "salt1", "item": "lemp.scale.decision",
          "psk_file": "/etc/zabbix/zabbix_agent2.psk", "sender": "/usr/bin/zabbix_sender"}


def settings(**over):
    merged = json.loads(json.dumps(DEFAULTS))
    for key, value in over.items():
        if isinstance(value, dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


# -- next_free / scale_in_target ---------------------------------------------


def test_scale_out_takes_the_lowest_pool_name_neither_enrolled_nor_keyed(topology):
    assert lemp_scale.next_free(topology, [], []) == {"node": "web3", "address": "10.77.0.23"}
    assert lemp_scale.next_free(topology, ["web3"], ["web3"])["node"] == "web4"
    # web3 keyed but not yet enrolled (booting): its slot is taken
    assert lemp_scale.next_free(topology, [], ["web1", "web3"])["node"] == "web4"
    # a freed low name is taken again first
    assert lemp_scale.next_free(topology, ["web4"], ["web4"])["node"] == "web3"


def test_scale_out_refuses_at_max_counting_the_fixed_and_the_booting_nodes(topology):
    refusal = lemp_scale.next_free(topology, ["web3", "web4", "web5"], ["web3", "web4", "web5", "web6"])
    assert "at its max of 6 machines (web1, web2, web3, web4, web5, web6)" in refusal["refusal"]
    assert "scaling.web.max" in refusal["refusal"]
    small = json.loads(json.dumps(topology))
    small["scaling"]["web"]["max"] = 3
    assert "max of 3" in lemp_scale.next_free(small, [], ["web3"])["refusal"]


def test_scale_in_takes_the_highest_enrolled_node_by_default(topology):
    assert lemp_scale.scale_in_target(topology, ["web3", "web5"], ["web3", "web5"]) == {"node": "web5"}
    # a VM that booted but never enrolled is cleaned up when nothing is enrolled
    assert lemp_scale.scale_in_target(topology, [], ["web4"]) == {"node": "web4"}


def test_scale_in_refuses_a_fixed_machine_a_stranger_and_a_free_slot(topology):
    assert "web1 is a fixed machine of pillar/topology.yaml" in \
        lemp_scale.scale_in_target(topology, ["web3"], ["web3"], "web1")["refusal"]
    assert "db9 is not a name of scaling.web.pool" in lemp_scale.scale_in_target(topology, [], [], "db9")["refusal"]
    assert "web4 is neither enrolled nor keyed" in lemp_scale.scale_in_target(topology, ["web3"], [], "web4")["refusal"]
    assert "no pool node is in use" in lemp_scale.scale_in_target(topology, [], [])["refusal"]


def test_scale_in_refuses_to_go_below_min(topology):
    three = json.loads(json.dumps(topology))
    three["scaling"]["web"]["min"] = 3
    refusal = lemp_scale.scale_in_target(three, ["web3"], ["web3"], "web3")["refusal"]
    assert "leaves 2 web machines, below the min of 3" in refusal
    # a keyed node that never enrolled serves nothing: removing it keeps min
    assert lemp_scale.scale_in_target(three, ["web3"], ["web3", "web4"], "web4") == {"node": "web4"}


# -- decide -------------------------------------------------------------------


def decide(direction="out", sender="mon1", now=NOW, state=None, target=None, **over):
    target = target if target is not None else {"node": "web3"}
    return lemp_scale.decide(direction, sender, now, state or {}, settings(**over), ["mon1"], target)


def test_a_request_from_the_monitor_scales_when_nothing_holds_it():
    decision = decide()
    assert (decision["action"], decision["node"]) == ("out", "web3")
    assert decision["reason"] == "high load reported by mon1"
    assert decide("in", target={"node": "web5"})["action"] == "in"


def test_only_a_monitor_role_machine_may_ask():
    decision = decide(sender="web1")
    assert decision["action"] is None
    assert "sender 'web1' is not a monitor-role machine (mon1)" in decision["reason"]


def test_a_direction_other_than_out_or_in_does_nothing():
    assert "direction 'sideways' is not one of out, in" in decide("sideways")["reason"]
    assert decide(None)["action"] is None


def test_min_and_max_hold_through_the_target_refusal():
    decision = decide(target={"refusal": "scale_out: the web tier is at its max of 6 machines"})
    assert decision["action"] is None and "at its max of 6" in decision["reason"]


def test_autoscaling_switched_off_records_a_refusal():
    assert "autoscaling is off" in decide(autoscale=dict(DEFAULTS["autoscale"], enabled=False))["reason"]


def test_no_scale_in_within_the_cooldown_after_a_scale_out_and_vice_versa():
    after_out = {"last": {"direction": "out", "node": "web3", "at": NOW - 100}}
    refused = decide("in", state=after_out, target={"node": "web3"}, cooldown=900)
    assert refused["action"] is None
    assert "cooldown: scale-out of web3" in refused["reason"] and "800 s more" in refused["reason"]
    after_in = {"last": {"direction": "in", "node": "web3", "at": NOW - 899}}
    assert decide("out", state=after_in, cooldown=900)["action"] is None
    # and the same direction waits too: the new node takes its share first
    assert decide("out", state=after_out, cooldown=900)["action"] is None


def test_after_the_cooldown_either_direction_acts():
    after_out = {"last": {"direction": "out", "node": "web3", "at": NOW - 900}}
    assert decide("in", state=after_out, target={"node": "web3"}, cooldown=900)["action"] == "in"


def test_a_flapping_load_boots_and_destroys_at_most_once_per_cooldown():
    """Requests alternate every minute for an hour: actions are >= cooldown apart."""
    state, actions = {}, []
    enrolled = []
    for minute in range(60):
        now = NOW + 60 * minute
        direction = "out" if minute % 2 == 0 else "in"
        target = {"node": "web3"} if (direction == "out") != bool(enrolled) else {"refusal": "nothing to do"}
        decision = lemp_scale.decide(direction, "mon1", now, state, settings(cooldown=900), ["mon1"], target)
        state = lemp_scale.next_state(state, decision)
        if decision["action"]:
            # its run ends (the node serves, or is gone) half a minute later
            state = lemp_scale.ended_state(state, decision, now + 30, "done")
            actions.append(now)
            enrolled = ["web3"] if direction == "out" else []
    assert actions and all(b - a >= 900 for a, b in zip(actions, actions[1:]))
    assert len(actions) <= 4


def test_no_scaling_while_the_last_action_runs_then_the_cooldown_counts_from_its_end():
    """CI, stop 23: web3's boot and join outlasted the cooldown counted from
    the decision, and Zabbix's repeated requests booted web4 and web5."""
    state = lemp_scale.next_state({}, decide())
    assert state["last"]["done_at"] is None
    # two minutes on, web3 still booting: refused, whatever the cooldown
    refused = decide(now=NOW + 120, state=state, cooldown=75)
    assert refused["action"] is None
    assert refused["reason"].startswith("scale-out of web3 in progress since 2027-01-15T08:00:00Z")
    assert decide("in", now=NOW + 120, state=state, target={"node": "web3"}, cooldown=75)["action"] is None
    # it served at NOW + 150: the cooldown runs from then
    state = lemp_scale.ended_state(state, decide(), NOW + 150, "done")
    assert state["last"]["done_at"] == NOW + 150 and state["last"]["outcome"] == "done"
    refused = decide(now=NOW + 200, state=state, cooldown=75)
    assert "cooldown: scale-out of web3 ended 2027-01-15T08:02:30Z; no scaling for 25 s more" in refused["reason"]
    assert decide(now=NOW + 225, state=state, cooldown=75)["action"] == "out"


def test_a_run_that_never_recorded_its_end_holds_no_longer_than_its_steps_timeouts():
    state = lemp_scale.next_state({}, decide())
    limit = lemp_scale.run_limit(settings(), "out")
    assert limit == DEFAULTS["enrol_timeout"] + lemp_scale.cloud(settings())["timeout"] + 60
    assert decide(now=NOW + limit - 1, state=state, cooldown=60)["action"] is None
    assert decide(now=NOW + limit, state=state, cooldown=60)["action"] == "out"
    # a state file from before runs recorded their end: ended at its decision
    assert lemp_scale.running({"last": {"direction": "out", "node": "web3", "at": NOW}}, NOW + 1, settings()) is None


def test_only_the_run_of_the_last_action_records_its_end():
    state = lemp_scale.next_state({}, decide())
    other = decide(now=NOW + 5)        # lost a race: never became `last`
    assert lemp_scale.ended_state(state, other, NOW + 9, "failed") is state
    ended = lemp_scale.ended_state(state, decide(), NOW + 9, "failed")
    assert ended["last"]["done_at"] == NOW + 9 and ended["last"]["outcome"] == "failed"
    # the first end counts: the onfail step after a done one changes nothing
    assert lemp_scale.ended_state(ended, decide(), NOW + 20, "done") is ended


def test_a_pause_refuses_every_request_until_it_ends_by_itself():
    state = lemp_scale.paused_state({}, "incident 42", 30, NOW)
    refused = decide(now=NOW + 60, state=state)
    assert refused["action"] is None
    assert "autoscaling paused by hand until" in refused["reason"] and "incident 42" in refused["reason"]
    assert "salt-run lemp_scale.resume" in refused["reason"]
    assert decide("in", now=NOW + 29 * 60, state=state, target={"node": "web3"})["action"] is None
    # 30 minutes later the pause is over, with nobody to remember it
    assert decide(now=NOW + 30 * 60, state=state)["action"] == "out"


@pytest.mark.parametrize("reason, minutes, match", [
    ("", 30, "say why"),
    ("deploy", 0, "must be 1..1440"),
    ("deploy", 1441, "must be 1..1440"),
    ("deploy", "soon", "is not a number"),
])
def test_a_pause_needs_a_reason_and_ends_within_a_day(reason, minutes, match):
    with pytest.raises(CommandExecutionError, match=match):
        lemp_scale.paused_state({}, reason, minutes, NOW)


def test_a_refusal_does_not_restart_the_cooldown_and_history_is_bounded():
    state = lemp_scale.next_state({}, decide())
    assert state["last"]["node"] == "web3"
    refused = decide(now=NOW + 10, state=state)
    later = lemp_scale.next_state(state, refused)
    assert later["last"] == state["last"]
    for i in range(30):
        later = lemp_scale.next_state(later, refused)
    assert len(later["decisions"]) == lemp_scale.HISTORY


def test_a_decision_planned_before_a_concurrent_action_loses_the_race():
    state = {"last": {"direction": "out", "node": "web3", "at": NOW + 5}}
    assert "web3 was recorded at" in lemp_scale.raced(state, decide(), 900)
    assert lemp_scale.raced(state, decide(), None) is None          # by hand: the operator decides
    assert lemp_scale.raced({}, decide(), 900) is None


# -- log, Zabbix, events -----------------------------------------------------


def test_each_decision_is_one_log_line_naming_what_and_why():
    line = lemp_scale.log_line(decide())
    assert line == "2027-01-15T08:00:00Z scale-out web3 (from mon1): high load reported by mon1\n"
    refused = lemp_scale.log_line(decide(sender="web1"))
    assert "no scale-out (from web1): sender 'web1' is not a monitor-role machine" in refused


def test_the_decision_goes_to_the_master_hosts_trapper_item_over_psk():
    argv = lemp_scale.sender_argv(ZABBIX, "scale-out web3")
    assert argv[:3] == ["/usr/bin/zabbix_sender", "-z", "10.77.0.41"]
    assert argv[argv.index("-s") + 1] == "salt1" and argv[argv.index("-k") + 1] == "lemp.scale.decision"
    assert argv[argv.index("-o") + 1] == "scale-out web3"
    assert argv[argv.index("--tls-connect") + 1] == "psk"
    assert argv[argv.index("--tls-psk-file") + 1] == "/etc/zabbix/zabbix_agent2.psk"


def test_zabbix_target_is_the_monitor_and_the_masters_host(topology):
    target = lemp_scale.zabbix_target(topology, settings())
    assert (target["server"], target["host"], target["item"]) == ("10.77.0.41", "salt1", "lemp.scale.decision")
    assert lemp_scale.zabbix_target({"roles": {}}, settings()) == {}


def test_only_the_masters_enrolment_outcomes_for_the_node_count():
    assert lemp_scale.enrol_outcome("lemp-ha/enrol/done", {"node": "web3"}, "web3") == ("done", "")
    assert lemp_scale.enrol_outcome("lemp-ha/enrol/failed", {"node": "web3", "step": "s", "reason": "healthz"},
                                    "web3") == ("failed", "healthz")
    assert lemp_scale.enrol_outcome("lemp-ha/enrol/done", {"node": "web4"}, "web3") is None
    assert lemp_scale.enrol_outcome("salt/minion/web3/start", {"id": "web3"}, "web3") is None
    # the same tag sent by a minion (salt-call event.send) is no outcome: anyone could send it
    assert lemp_scale.enrol_outcome("lemp-ha/enrol/failed", {"id": "web1", "data": {"node": "web3", "reason": "x"}},
                                    "web3") is None


def test_scale_out_waits_for_the_end_of_the_enrolment_not_for_its_record():
    # orch.enrol records the node before HAProxy serves it; only lemp_enrol.done marks it serving
    assert not lemp_scale.enrolment_finished({}, "web3")
    assert not lemp_scale.enrolment_finished({"web3": {"since": "t", "by": "orch.enrol"}}, "web3")
    assert lemp_scale.enrolment_finished({"web3": {"since": "t", "by": "orch.enrol", "served": "t"}}, "web3")
    assert not lemp_scale.enrolment_finished({"web4": {"since": "t", "served": "t"}}, "web3")


# -- the runbooks ----------------------------------------------------------------


def test_scale_out_records_boots_through_the_cloud_minion_then_waits_for_enrolment(topology):
    plan = lemp_scale.out_plan(topology, settings(), ["web3"], ["web3"], NOW)
    steps = plan["steps"]
    assert ids(steps) == ["record-scale-out-of-web4-in-the-scaling-log-and-zabbix",
                          "boot-web4-through-the-cloud-minion-labhost",
                          "wait-until-web4-is-enrolled-by-its-start-event",
                          "record-the-end-of-the-scale-out-of-web4",
                          "record-the-end-of-the-scale-out-of-web4-after-a-failed-step"]
    for before, step in zip(steps, steps[1:4]):
        assert requires(step) == [{"salt": before["id"]}]
    assert_ends_either_way(steps, "web4")
    assert [arg(steps[1], k) for k in ("name", "tgt", "arg")] == ["lemp_labcloud.up", "labhost", ["web4"]]
    assert arg(steps[0], "decision")["sender"] == "by hand"
    assert not any("cooldown" in a for a in steps[0]["args"])   # by hand: no race check
    assert arg(steps[2], "timeout") == DEFAULTS["enrol_timeout"]


def assert_ends_either_way(steps, node):
    """The last two steps record the run's end (the cooldown counts from
    it): after the last step, or after any failed one."""
    done, failed = steps[-2:]
    body = steps[:-2]
    assert (arg(done, "name"), arg(done, "outcome")) == ("lemp_scale.ended", "done")
    assert requires(done) == [{"salt": body[-1]["id"]}]
    assert (arg(failed, "name"), arg(failed, "outcome")) == ("lemp_scale.ended", "failed")
    assert arg(failed, "onfail") == [{"salt": step["id"]} for step in body]
    assert arg(done, "decision") == arg(failed, "decision") == arg(body[0], "decision")
    assert arg(done, "decision")["node"] == node


def test_scale_out_at_max_is_refused_before_anything_runs(topology):
    plan = lemp_scale.out_plan(topology, settings(), ["web3", "web4", "web5", "web6"], [], NOW)
    assert list(plan) == ["refusal"]


def test_scale_in_drains_waits_disables_then_forgets_and_destroys(topology):
    steps = lemp_scale.in_plan(topology, settings(), ["web3"], ["web3"], NOW, "web3")["steps"]
    assert ids(steps) == [
        "record-scale-in-of-web3-in-the-scaling-log-and-zabbix",
        "drain-web3-on-both-lbs", "wait-until-web3-has-no-session-on-both-lbs",
        "disable-web3-slot-on-both-lbs-at-runtime", "remove-web3-from-the-enrolled-store",
        "render-web3-slot-disabled-in-the-haproxy-config-on-both-lbs",
        "destroy-web3-through-the-cloud-minion-labhost", "remove-web3-host-from-zabbix-on-mon1",
        "delete-web3-minion-key-on-the-master",
        "record-the-end-of-the-scale-in-of-web3", "record-the-end-of-the-scale-in-of-web3-after-a-failed-step"]
    assert_ends_either_way(steps, "web3")
    for before, step in zip(steps, steps[1:-1]):
        assert len(requires(step)) == 1 and list(requires(step)[0].values()) == [before["id"]]
    drain = steps[1]
    assert [arg(drain, k) for k in ("name", "tgt", "tgt_type", "arg")] == \
        ["haproxy_runtime.drain", "lb1,lb2", "list", ["web", "web3"]]
    assert arg(steps[2], "kwarg") == {"timeout": DEFAULTS["drain_timeout"]}
    assert arg(steps[4], "name") == "lemp_enrol.remove" and arg(steps[4], "node") == "web3"
    # the config only (no reload: other servers keep their runtime state),
    # queued behind a concurrent enrolment's render of the same file
    assert arg(steps[5], "sls") == "haproxy.config" and arg(steps[5], "queue") == lemp_scale._steps.WAIT_IN_LINE
    assert [arg(steps[6], k) for k in ("name", "tgt", "arg")] == ["lemp_labcloud.destroy", "labhost", ["web3"]]
    # the Zabbix host goes once the VM (and its autoregistering agent) is gone
    assert [arg(steps[7], k) for k in ("name", "tgt", "arg")] == ["lemp_zabbix.host_absent", "mon1", ["web3"]]
    assert arg(steps[8], "name") == "lemp_enrol.forget" and arg(steps[8], "arg") == ["web3"]


def test_scale_in_of_a_fixed_machine_is_refused(topology):
    assert "web2 is a fixed machine" in lemp_scale.in_plan(topology, settings(), [], [], NOW, "web2")["refusal"]


def test_an_autoscale_request_that_acts_lists_the_same_runbook_with_the_cooldown(topology):
    steps = lemp_scale.autoscale_plan(topology, settings(), [], [], {}, NOW, "out", "mon1")["steps"]
    assert ids(steps)[1:3] == ["boot-web3-through-the-cloud-minion-labhost",
                               "wait-until-web3-is-enrolled-by-its-start-event"]
    assert_ends_either_way(steps, "web3")
    assert arg(steps[0], "cooldown") == DEFAULTS["cooldown"]
    assert arg(steps[0], "decision")["sender"] == "mon1"
    steps = lemp_scale.autoscale_plan(topology, settings(), ["web3"], ["web3"], {}, NOW, "in", "mon1")["steps"]
    assert "drain-web3-on-both-lbs" in ids(steps)


def test_an_autoscale_request_that_is_refused_is_recorded_and_succeeds(topology):
    state = {"last": {"direction": "out", "node": "web3", "at": NOW - 60}}
    steps = lemp_scale.autoscale_plan(topology, settings(), ["web3"], ["web3"], state, NOW, "in", "mon1")["steps"]
    assert ids(steps) == ["record-refused-scale-in-in-the-scaling-log-and-zabbix", "no-scaling-in"]
    assert steps[1]["state"] == "test.succeed_without_changes"
    assert "cooldown" in arg(steps[1], "name")
    forged = lemp_scale.autoscale_plan(topology, settings(), [], [], {}, NOW, "out", "web1")["steps"]
    assert "is not a monitor-role machine" in arg(forged[1], "name")


# -- settings ------------------------------------------------------------------------


def test_the_defaults_pass_the_check():
    assert lemp_scaling.check(settings()) == settings()


def lab_scaling():
    """The `scaling:` block of pillar/autoscale.sls (plain YAML; the file's
    Jinja is only for the phpfpm block after it)."""
    text = (REPO / "pillar" / "autoscale.sls").read_text()
    return yaml.safe_load(text[text.index("\nscaling:\n"):text.index("\n# pm.max_children")])["scaling"]


def test_the_labs_fast_settings_pass_the_check_and_hold_the_autoscale_tests_timeline():
    """pillar/autoscale.sls: the load read every 5 s over a 25 s window.
    The cooldown runs from the end of the scale-out (web3 serving), wherever
    that falls between Zabbix's requests: it outlasts the repeat (60 s plus
    a few seconds of jitter), so the first request after that end is
    refused by it (tests/lab/test_scaling_auto.py then stops the load); and
    it is shorter than repeat + window - interval, so at most one low-load
    request is refused by it before the scale-in."""
    lab = settings(**lab_scaling())
    assert lemp_scaling.check(lab) == lab
    auto = lab["autoscale"]
    interval, window, repeat = (lemp_scaling.seconds(auto[k], k) for k in ("interval", "window", "repeat"))
    assert (interval, window, repeat) == (5, 25, 60)
    assert repeat + 5 < lab["cooldown"] < repeat + window - interval
    assert lemp_scaling.check(settings(autoscale={"interval": "5s", "window": "15s"}))


@pytest.mark.parametrize("over, message", [
    ({"cooldown": 10}, "pillar scaling:cooldown 10 must be between 60"),
    ({"cooldown": "soon"}, "pillar scaling:cooldown 'soon' is not a number"),
    ({"autoscale": {"low": 0.8}}, "scaling:autoscale:low 0.8 must be below scaling:autoscale:high 0.7"),
    ({"autoscale": {"window": "five minutes"}}, "pillar scaling:autoscale:window 'five minutes' is not a Zabbix time"),
    ({"autoscale": {"window": "2m"}}, "window '2m' holds fewer than 3 readings of scaling:autoscale:interval '1m': "
                                      "make it at least 180s"),
    ({"autoscale": {"interval": "5s", "window": "10s"}}, "make it at least 15s"),
    ({"autoscale": {"interval": "2s", "window": "30s"}}, "pillar scaling:autoscale:interval '2s' must be 5s..1h"),
    ({"autoscale": {"interval": "2h", "window": "1d"}}, "pillar scaling:autoscale:interval '2h' must be 5s..1h"),
    ({"autoscale": {"interval": "often"}}, "pillar scaling:autoscale:interval 'often' is not a Zabbix time"),
    ({"autoscale": {"repeat": "10s"}}, "scaling:autoscale:repeat '10s' must be 1m..1w"),
    ({"cooldown": 120, "autoscale": {"window": "5m"}}, "scaling:cooldown 120 s is shorter than scaling:autoscale:window"),
    ({"cloud": {"minion": ""}}, "pillar scaling:cloud:minion is empty"),
    ({"request": {"command": "lemp-scale-request"}}, "scaling:request:command 'lemp-scale-request' must be an absolute"),
], ids=["cooldown-short", "cooldown-nan", "low-above-high", "window-text", "window-short", "window-short-lab",
        "interval-too-short", "interval-too-long", "interval-text", "repeat-short",
        "cooldown-below-window", "no-cloud-minion", "relative-command"])
def test_bad_settings_name_the_pillar_key(over, message):
    with pytest.raises(CommandExecutionError, match=message):
        lemp_scaling.check(settings(**over))


def test_bad_settings_refuse_the_plan_before_anything_runs(topology):
    # the runner's entry points check the settings first
    assert "scaling:autoscale:low" in lemp_scale._bad_settings(settings(autoscale={"low": 0.9}))["refusal"]
    assert lemp_scale._bad_settings(settings()) is None


def test_sudoers_allows_exactly_out_and_in():
    assert lemp_scaling.sudoers_lines("zabbix", "/usr/local/sbin/lemp-scale-request") == [
        "zabbix ALL=(root) NOPASSWD: /usr/local/sbin/lemp-scale-request out",
        "zabbix ALL=(root) NOPASSWD: /usr/local/sbin/lemp-scale-request in"]


def test_zabbix_times_in_seconds():
    assert [lemp_scaling.seconds(v, "k") for v in ("300", "90s", "5m", "1h")] == [300, 90, 300, 3600]


# -- the records on the master (files in a temporary folder) ------------------------


@pytest.fixture
def master_files(tmp_path, monkeypatch):
    opts = {"lemp_ha_scaling_state": str(tmp_path / "lib" / "scaling.json"),
            "lemp_ha_scaling_log": str(tmp_path / "log" / "scaling.log"),
            "lemp_ha_enrolled_store": str(tmp_path / "lib" / "enrolled.json")}
    monkeypatch.setattr(lemp_scale, "__opts__", opts, raising=False)
    return tmp_path


def test_record_keeps_the_cooldown_state_and_logs_even_when_zabbix_is_unreachable(master_files):
    # a zabbix_sender that is not there: the decision is still recorded, and the log says why it was not sent
    zabbix = dict(ZABBIX, sender=str(master_files / "no-zabbix_sender"))
    out = lemp_scale.record(decide(), zabbix)
    assert out["decision"] == "scale-out web3 (from mon1): high load reported by mon1"
    assert out["zabbix"].startswith("not sent to Zabbix")
    state = json.loads((master_files / "lib" / "scaling.json").read_text())
    assert state["last"]["node"] == "web3" and state["last"]["direction"] == "out"
    log = (master_files / "log" / "scaling.log").read_text().splitlines()
    assert log[0].endswith("scale-out web3 (from mon1): high load reported by mon1")
    assert "not sent to Zabbix" in log[1]
    assert lemp_scale.status()["last"]["node"] == "web3"


def test_record_of_a_decision_that_lost_the_race_fails_and_logs_it(master_files):
    lemp_scale.record(decide(now=NOW + 5), {})
    with pytest.raises(CommandExecutionError, match="within the cooldown of this decision"):
        lemp_scale.record(decide(now=NOW), {}, cooldown=900)
    log = (master_files / "log" / "scaling.log").read_text()
    assert "no scale-out (from mon1): scale-out of web3 was recorded at" in log
    # by hand, the operator's word goes
    assert lemp_scale.record(decide(now=NOW + 10), {})["decision"].startswith("scale-out web3")


def test_the_end_of_a_run_is_recorded_once_and_logged(master_files):
    decision = decide(now=1_000.0)
    lemp_scale.record(decision, {})
    assert lemp_scale.status()["last"]["done_at"] is None
    assert lemp_scale.ended(decision, "done")["recorded"] is True
    assert lemp_scale.ended(decision, "failed")["recorded"] is False
    last = lemp_scale.status()["last"]
    assert last["outcome"] == "done" and last["done_at"] > 1_000.0
    log = (master_files / "log" / "scaling.log").read_text()
    assert log.count("scale-out of web3 ended after") == 1 and "FAILED" not in log


def test_pause_and_resume_keep_the_cooldown_and_are_logged(master_files):
    lemp_scale.record(decide(), {})
    out = lemp_scale.pause("test by hand", minutes=5)
    assert out["reason"] == "test by hand"
    assert lemp_scale.status()["paused"]["reason"] == "test by hand"
    assert lemp_scale.status()["last"]["node"] == "web3"
    assert lemp_scale.resume() == {"resumed": True}
    assert lemp_scale.resume() == {"resumed": False}
    assert lemp_scale.status()["paused"] is None and lemp_scale.status()["last"]["node"] == "web3"
    log = (master_files / "log" / "scaling.log").read_text()
    assert "autoscaling paused until" in log and "autoscaling resumed (it was paused: test by hand)" in log


def test_a_broken_enrolled_store_names_the_file(master_files):
    (master_files / "lib").mkdir(parents=True, exist_ok=True)
    (master_files / "lib" / "enrolled.json").write_text("[not json")
    with pytest.raises(CommandExecutionError, match="enrolled.json is not JSON"):
        lemp_scale._enrolled()


def test_autoscaling_never_scales_in_a_vm_that_is_still_enrolling(topology):
    # web4 keyed, not enrolled yet: by hand it may be cleaned up, autoscaling leaves it alone
    assert lemp_scale.scale_in_target(topology, [], ["web4"]) == {"node": "web4"}
    assert "no pool node is in use" in lemp_scale.scale_in_target(topology, [], ["web4"], only_enrolled=True)["refusal"]
    steps = lemp_scale.autoscale_plan(topology, settings(), [], ["web4"], {}, NOW, "in", "mon1")["steps"]
    assert ids(steps) == ["record-refused-scale-in-in-the-scaling-log-and-zabbix", "no-scaling-in"]
