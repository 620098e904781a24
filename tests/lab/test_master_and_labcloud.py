"""The master's configuration is a Salt state (salt/master) that never lands
invalid, and the lab host's cloud engine (labhost, lemp_labcloud) touches the
web pool only. Written for the lab; run by ./lab test."""

import json

CONF = "/etc/salt/master.d/50-lemp-ha.conf"


def sha(lab, path):
    return lab.run(lab.master, f"sha256sum {path}").stdout.split()[0]


def test_the_master_serves_the_reactor_of_its_salt_state(lab):
    config = lab.run(lab.master, f"cat {CONF}").stdout
    assert "Managed by Salt" in config
    assert "salt/minion/*/start" in config and "/srv/lemp-ha-extras/reactor/web_start.sls" in config
    assert "lemp-ha/scale/request" in config
    # the running master loaded it (the deferred restart happened after orch.site)
    opts = lab.run(lab.master, "salt-run --out=json config.get reactor").stdout
    assert "web_start.sls" in opts


def test_a_refused_master_config_is_never_written_and_restarts_nothing(lab):
    before = sha(lab, CONF)
    pid = lab.run(lab.master, "systemctl show -p MainPID --value salt-master").stdout.strip()
    bad = {"master": {"reactor": {"lemp-ha/test/never": ["/srv/lemp-ha-extras/reactor/missing.sls"]}}}
    out = lab.salt(lab.master, "state.apply", "master", f"pillar={json.dumps(bad)}")
    states = out[lab.master]
    written = next(v for k, v in states.items() if "master-config-file-managed" in k)
    assert written["result"] is False
    assert "missing.sls does not exist" in written["comment"]
    assert sha(lab, CONF) == before
    assert lab.run(lab.master, "systemctl is-active lemp-ha-salt-master-restart.timer", check=False).returncode != 0
    assert lab.run(lab.master, "systemctl show -p MainPID --value salt-master").stdout.strip() == pid


def test_an_auto_accept_setting_in_pillar_stops_the_render_naming_the_key(lab):
    bad = {"master": {"lookup": {"extra": {"autosign_grains_dir": "/etc/salt/autosign_grains"}}}}
    out = lab.salt(lab.master, "state.show_sls", "master.config", f"pillar={json.dumps(bad)}")
    assert "master:extra:autosign_grains_dir would accept minion keys by themselves" in json.dumps(out)


def test_the_lab_cloud_engine_answers_and_refuses_every_name_outside_the_pool(lab):
    assert lab.salt("--timeout=10", "labhost", "test.ping") == {"labhost": True}
    for name in ("web1", "salt1", "db1", "nosuch"):
        out = json.dumps(lab.salt("labhost", "lemp_labcloud.destroy", name))
        assert "is not in the web pool" in out or "is not a machine name" in out, out
    # every fixed machine is still running
    for name in lab.machines:
        assert lab.state(name) == "RUNNING", name


def test_the_lab_cloud_engine_loads_nothing_else(lab):
    for function in ("cmd.run", "saltutil.sync_all", "state.apply", "cp.get_file"):
        out = json.dumps(lab.salt("labhost", function, "id"))
        assert "is not available" in out, (function, out)


def test_the_lab_cloud_engine_reports_the_pool(lab):
    states = lab.salt("--timeout=120", "labhost", "lemp_labcloud.status")["labhost"]
    assert set(states) == {slot["name"] for slot in lab.topology["scaling"]["web"]["pool"]}


def test_with_the_master_stopped_load_through_the_vip_sees_no_failure(lab):
    from web_helpers import LoadLoop

    stopped = False
    try:
        with LoadLoop(lab, max_seconds=120) as load:
            load.wait_for_requests(20)
            lab.stop(lab.master)
            stopped = True
            load.wait_for_requests(300, timeout=90)  # well past the minions' ping/reconnect timers
        assert load.failures == [], load.report()
    finally:
        if stopped or lab.state(lab.master) != "RUNNING":
            lab.start(lab.master)
