"""Scaling (issue #12) renders: orch.scale_out / scale_in / autoscale list
their runbook steps or refuse before touching anything; the reactor hands
only the sender's id and the direction on; the monitor's sudoers rule allows
exactly the scaling request; the master gets zabbix_sender without a second
agent. (The render master has web3 enrolled and keyed: tests/render/conftest.py.)"""

import json

from test_render import REPO, minion_for, render_errors


def plan(salt_run_cli, orch, pillar=None):
    extra = [f"pillar={json.dumps(pillar)}"] if pillar is not None else []
    ret = salt_run_cli.run("state.orchestrate_show_sls", f"orch.{orch}", *extra)
    return ret, next(iter(ret.data.values())) if isinstance(ret.data, dict) and ret.data else ret.data


def test_scale_out_takes_the_next_free_pool_name_and_waits_for_its_enrolment(salt_run_cli):
    ret, steps = plan(salt_run_cli, "scale_out")
    assert ret.returncode == 0, ret
    assert {"record-scale-out-of-web4-in-the-scaling-log-and-zabbix", "boot-web4-through-the-cloud-minion-labhost",
            "wait-until-web4-is-enrolled-by-its-start-event"} <= set(steps), steps


def test_scale_in_drains_on_both_lbs_and_removes_everywhere(salt_run_cli):
    ret, steps = plan(salt_run_cli, "scale_in", {"node": "web3"})
    assert ret.returncode == 0, ret
    for sid in ("drain-web3-on-both-lbs", "wait-until-web3-has-no-session-on-both-lbs",
                "disable-web3-slot-on-both-lbs-at-runtime", "remove-web3-from-the-enrolled-store",
                "render-web3-slot-disabled-in-the-haproxy-config-on-both-lbs", "remove-web3-host-from-zabbix-on-mon1",
                "destroy-web3-through-the-cloud-minion-labhost", "delete-web3-minion-key-on-the-master"):
        assert sid in steps, (sid, steps)


def test_scale_in_of_a_fixed_machine_is_refused_before_anything_runs(salt_run_cli):
    ret, steps = plan(salt_run_cli, "scale_in", {"node": "web1"})
    assert "web1 is a fixed machine of pillar/topology.yaml" in json.dumps(ret.data), ret


def test_a_scale_request_from_a_non_monitor_is_recorded_as_refused(salt_run_cli):
    ret, steps = plan(salt_run_cli, "autoscale", {"scale_request": {"sender": "web1", "direction": "out"}})
    assert ret.returncode == 0, ret
    assert set(steps) == {"record-refused-scale-out-in-the-scaling-log-and-zabbix", "no-scaling-out"}, steps
    assert "is not a monitor-role machine" in json.dumps(steps["no-scaling-out"])


def test_bad_scaling_pillar_refuses_naming_the_key(salt_run_cli):
    ret, _ = plan(salt_run_cli, "scale_out", {"scaling": {"autoscale": {"low": 0.9}}})
    assert "scaling:autoscale:low 0.9 must be below scaling:autoscale:high" in json.dumps(ret.data), ret


def test_the_reactor_passes_only_the_sender_id_and_the_direction(salt_run_cli):
    event = {"id": "mon1", "tag": "lemp-ha/scale/request",
             "data": {"direction": "out", "node": "web9", "__pub_fun": "event.send"}}
    ret = salt_run_cli.run("salt.cmd", "slsutil.renderer", f"path={REPO / 'reactor' / 'scale_request.sls'}",
                           f"data={json.dumps(event)}")
    assert ret.returncode == 0, ret
    reaction = ret.data["autoscale-on-request-from-mon1"]["runner.state.orchestrate"]
    args = next(item["args"] for item in reaction if "args" in item)
    assert {"queue": True} in reaction
    assert args == [{"mods": "orch.autoscale"},
                    {"pillar": {"scale_request": {"sender": "mon1", "direction": "out"}}}]


def test_the_monitor_may_sudo_exactly_the_scaling_request(salt_cli, topology, representatives):
    mon = minion_for("zabbix.server.scaling", topology, representatives)
    ret = salt_cli.run("state.show_sls", "zabbix.server.scaling", minion_tgt=mon)
    assert not render_errors(ret), render_errors(ret)
    sudoers = ret.data["zabbix-scaling-request-sudoers-file-managed"]["file"]
    contents = next(a["contents"] for a in sudoers if isinstance(a, dict) and "contents" in a)
    rules = [line for line in contents.splitlines() if line and not line.startswith("#")]
    assert rules == ["zabbix ALL=(root) NOPASSWD: /usr/local/sbin/lemp-scale-request out",
                     "zabbix ALL=(root) NOPASSWD: /usr/local/sbin/lemp-scale-request in"]
    api = ret.data["zabbix-api-scaling-macros-scripts-and-actions-present"]["lemp_zabbix"]
    scaling = next(a["scaling"] for a in api if isinstance(a, dict) and "scaling" in a)
    # pillar/autoscale.sls: the lab reads the load every 5 s over 25 s
    assert (scaling["autoscale"]["interval"], scaling["autoscale"]["window"], scaling["cooldown"]) == ("5s", "25s", 75)
    # the web nodes' pm.max_children (pillar/web.sls), not phpfpm's default
    web = minion_for("phpfpm", topology, representatives)
    web_pool = salt_cli.run("pillar.get", "phpfpm:lookup:pool:max_children", "unmask=True", minion_tgt=web).data
    assert isinstance(web_pool, int) and {"max_children": web_pool} in api, (web_pool, api)


def test_the_master_gets_zabbix_sender_with_the_classic_agent_masked(salt_cli, topology, representatives):
    master = minion_for("zabbix.sender", topology, representatives)
    assert master == topology["master"]
    ret = salt_cli.run("state.show_sls", "zabbix.sender", minion_tgt=master)
    assert not render_errors(ret), render_errors(ret)
    pkg = ret.data["zabbix-sender-package-installed"]["pkg"]
    assert {"require": [{"file": "zabbix-sender-classic-agent-unit-masked"}]} in pkg
