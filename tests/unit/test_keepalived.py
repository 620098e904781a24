"""keepalived's VRRP instance (_modules/lemp_keepalived.py, issue #14): the
priorities from the topology order, and the rules that make the VIP move:
with nopreempt (a returning LB never takes the VIP back, so failback costs
nothing) a failing HAProxy check must mean FAULT (weight 0)."""

import copy

import jinja2
import pytest
import yaml

import lemp_keepalived  # tests/conftest.py puts _modules on the path
from by_path import REPO, lab_pillar

DEFAULTS = yaml.safe_load((REPO / "salt" / "keepalived" / "defaults.yaml").read_text())["keepalived"]
LBS = [{"name": "lb1", "address": "10.77.0.11"}, {"name": "lb2", "address": "10.77.0.12"}]


def settings(**changes):
    out = copy.deepcopy(DEFAULTS)
    for key, value in changes.items():
        if key == "weight":
            out["check"]["weight"] = value
        else:
            out[key] = value
    return out


def test_the_defaults_do_not_preempt_and_a_failing_check_means_fault():
    assert DEFAULTS["nopreempt"] is True and DEFAULTS["check"]["weight"] == 0
    assert DEFAULTS["advert_int"] == 0.1  # master down in ~0.3 s: the LB hard-kill window
    lab = lab_pillar("lb")["keepalived"]["lookup"]
    assert lab["nopreempt"] is True and lab["check"]["weight"] == 0


def test_each_lb_gets_its_priority_by_topology_order_and_the_others_as_peers():
    one = lemp_keepalived.instance(DEFAULTS, LBS, "lb1")
    two = lemp_keepalived.instance(DEFAULTS, LBS, "lb2")
    assert one == {"me": LBS[0], "peers": [LBS[1]], "priority": 150, "nopreempt": True}
    assert two == {"me": LBS[1], "peers": [LBS[0]], "priority": 100, "nopreempt": True}


def test_without_nopreempt_a_weight_below_the_step_still_moves_the_vip():
    got = lemp_keepalived.instance(settings(nopreempt=False, weight=-60), LBS, "lb2")
    assert got["priority"] == 100 and got["nopreempt"] is False
    assert lemp_keepalived.instance(settings(nopreempt=False, weight=0), LBS, "lb1")["priority"] == 150
    # one LB alone: any weight (nothing to move to)
    assert lemp_keepalived.instance(settings(nopreempt=False, weight=-10), LBS[:1], "lb1")["priority"] == 150


@pytest.mark.parametrize("changes, me, message", [
    ({"weight": -60}, "lb1", "keepalived:lookup:check:weight (-60) must be 0 with nopreempt"),
    ({"nopreempt": False, "weight": -50}, "lb1", "keepalived:lookup:check:weight (-50) cannot move the VIP"),
    ({"nopreempt": False, "weight": 10}, "lb1", "keepalived:lookup:check:weight (10) cannot move the VIP"),
    ({"nopreempt": "yes"}, "lb1", "keepalived:lookup:nopreempt must be True or False"),
    ({"priority_top": 255}, "lb1", "keepalived:lookup:priority_top (255) must be within 1..254"),
    ({"priority_top": 40}, "lb1", "leave the last of 2 LBs a priority of -10"),
    ({"priority_step": 0}, "lb1", "keepalived:lookup:priority_step (0) must be above 0"),
    ({"priority_step": "50"}, "lb1", "keepalived:lookup:priority_step must be a whole number"),
    ({"weight": 300, "nopreempt": False}, "lb1", "keepalived:lookup:check:weight (300) must be within -253..253"),
    ({}, "web1", "keepalived: web1 has no role lb in the topology (topology.roles.lb: lb1, lb2)"),
])
def test_a_setting_that_cannot_move_the_vip_is_refused_naming_the_key(changes, me, message):
    with pytest.raises(lemp_keepalived.KeepalivedError) as err:
        lemp_keepalived.instance(settings(**changes), LBS, me)
    assert message in str(err.value)


def render(k, me="lb1"):
    vrrp = lemp_keepalived.instance(k, LBS, me)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(REPO / "salt" / "keepalived" / "files")))
    return env.get_template("keepalived.conf.j2").render(
        k=dict(k, interface="eth0"), me=vrrp["me"], peers=vrrp["peers"], priority=vrrp["priority"],
        nopreempt=vrrp["nopreempt"], vip="10.77.0.100", internal_vip="10.77.0.101", prefixlen=24)


def lines(config):
    return [line.strip() for line in config.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_instance_is_backup_without_preemption_and_the_check_has_no_weight():
    config = lines(render(DEFAULTS))
    instance = config[config.index("vrrp_instance VIP {"):]
    assert instance[1:3] == ["state BACKUP", "nopreempt"]
    script = config[config.index("vrrp_script chk_haproxy {"):]
    assert "weight 0" in script[:7]
    assert "advert_int 0.1" in instance and "garp_master_delay 0" in instance
    assert "unicast_src_ip 10.77.0.11" in instance and "10.77.0.12" in instance
    # haproxy's unit writes the track file: non-zero (stopped) is FAULT at once
    track = config[config.index("track_file haproxy_stopped {"):]
    assert track[1:5] == ['file "/run/lemp-ha-track/haproxy"', "weight 0", "init_file 0", "}"]
    assert instance[instance.index("track_file {") + 1] == "haproxy_stopped"


def test_with_preemption_the_instance_has_no_nopreempt():
    assert "nopreempt" not in lines(render(settings(nopreempt=False, weight=-60)))
