"""orch.rotate_secret lists the plan the runner lemp_secrets computes at
render time: rendered with canned answers of a healthy lab (the runner's
questions faked, as in test_galera_orch_render.py) and secrets files in a
scratch folder standing for the master's /srv/lemp-ha-secrets."""

import pytest

from test_galera_orch_render import env, render  # noqa: F401  (env: a fixture)
from test_secret_rotation import TOPOLOGY, healthy, runner

INI = "opcache.enable=1\nopcache.validate_timestamps=1\nopcache.revalidate_freq=2\n"


@pytest.fixture()
def secrets_dir(tmp_path, monkeypatch):
    (tmp_path / "minions").mkdir()
    for name in list(TOPOLOGY["machines"]) + list(TOPOLOGY["pool_machines"]):
        (tmp_path / "minions" / f"{name}.sls").write_text("#!yaml|gpg\n{}\n")
    monkeypatch.setenv("LEMP_HA_SECRETS_DIR", str(tmp_path))
    return tmp_path


def answers():
    facts = healthy()
    return {"test.ping": facts["ping"], "galera.status": facts["galera"],
            "haproxy_runtime.show_stat": facts["stat"], "cmd.run": {"web1": INI, "web2": INI}}


def test_app_db_renders_the_runbook_in_order(env, secrets_dir):  # noqa: F811
    opts = dict(env, pillar=dict(env["pillar"], secret="app_db"))
    high, calls = render(opts, "orch.rotate_secret", answers())
    ids = list(high)
    assert ids.index("db1-accepts-the-old-or-the-new-app_db") < ids.index("give-the-new-app_db-to-its-clients") \
        < ids.index("wait-3s-for-opcache-to-revalidate-the-config") \
        < ids.index("drop-the-old-app_db-from-the-encrypted-pillar") < ids.index("db1-accepts-only-the-new-app_db")
    stage = dict(kv for a in high["stage-the-new-app_db-beside-the-old-in-the-encrypted-pillar"]["salt"]
                 if isinstance(a, dict) for kv in a.items())
    # every holder's file, the scaling pool's too (web3.. read it when they boot)
    assert stage["name"] == "lemp_secrets.begin" and set(stage["minions"]) >= {"db1", "db2", "web1", "web2", "web3"}
    clients = dict(kv for a in high["give-the-new-app_db-to-its-clients"]["salt"] if isinstance(a, dict)
                   for kv in a.items())
    assert clients["tgt"] == "web1,web2" and clients["sls"] == "webapp.release,nginx.config"
    assert ("galera.status", ["db1", "db2"]) in calls


@pytest.mark.parametrize("secret, why", [("nope", "unknown secret 'nope'"),
                                         ("galera_sst", "cannot be rotated")])
def test_an_unknown_or_unrotatable_secret_is_refused_before_anything(env, secrets_dir, secret, why):  # noqa: F811
    opts = dict(env, pillar=dict(env["pillar"], secret=secret))
    high, calls = render(opts, "orch.rotate_secret", answers())
    assert list(high) == ["rotation-refused-nothing-was-touched"]
    assert why in str(high) and calls == []


def test_a_db_node_not_synced_refuses_the_run(env, secrets_dir):  # noqa: F811
    canned = answers()
    canned["galera.status"]["db2"] = dict(canned["galera.status"]["db2"], local_state="Joining")
    opts = dict(env, pillar=dict(env["pillar"], secret="app_db"))
    high, _ = render(opts, "orch.rotate_secret", canned)
    assert list(high) == ["rotation-refused-nothing-was-touched"]
    assert "db2 is not Synced" in str(high)


def test_zabbix_psk_of_one_machine_renders_its_window_and_the_server_before_the_agent(env, secrets_dir):  # noqa: F811
    opts = dict(env, pillar=dict(env["pillar"], secret="zabbix_psk", machine="lb2"))
    high, calls = render(opts, "orch.rotate_secret", answers())
    ids = list(high)
    assert ids[0] == "sync-custom-modules-on-mon1" and ids[1] == "open-maintenance-window-on-mon1-for-lb2"
    assert ids.index("mon1-gives-the-zabbix-host-lb2-its-new-zabbix_psk") \
        < ids.index("give-the-new-zabbix_psk-to-the-agent-on-lb2") \
        < ids.index("wait-until-mon1-has-the-heartbeat-of-lb2-over-the-new-zabbix_psk") \
        < ids.index("drop-the-old-zabbix_psk-of-lb2-from-the-encrypted-pillar") \
        < ids.index("close-maintenance-window-on-mon1-after-the-last-step-of-lb2")
    assert not any(i.endswith("-for-web1") or "-of-web1" in i for i in ids)  # lb2 alone
    assert ("test.ping", sorted(set(TOPOLOGY["machines"]) | set(TOPOLOGY["pool_machines"]))) in calls


def test_zabbix_psk_of_every_machine_walks_them_in_turn_and_refuses_a_silent_one(env, secrets_dir):  # noqa: F811
    opts = dict(env, pillar=dict(env["pillar"], secret="zabbix_psk"))
    high, _ = render(opts, "orch.rotate_secret", answers())
    opened = [i for i in high if i.startswith("open-maintenance-window-on-mon1-for-")]
    assert opened == [f"open-maintenance-window-on-mon1-for-{m}" for m in sorted(TOPOLOGY["machines"])]
    assert "web3-web4-web5-web6-keep-their-zabbix_psk-their-vm-does-not-answer" in high
    canned = answers()
    del canned["test.ping"]["lb1"]
    high, _ = render(opts, "orch.rotate_secret", canned)
    assert list(high) == ["rotation-refused-nothing-was-touched"] and "lb1 does not answer" in str(high)


@pytest.mark.parametrize("pillar, why", [({"secret": "zabbix_psk", "machine": "lb9"}, "'lb9' is not in the topology"),
                                         ({"secret": "app_db", "machine": "web1"}, "per-machine key only")])
def test_a_machine_outside_the_topology_or_for_a_shared_secret_is_refused(env, secrets_dir, pillar, why):  # noqa: F811
    opts = dict(env, pillar=dict(env["pillar"], **pillar))
    high, _ = render(opts, "orch.rotate_secret", answers())
    assert list(high) == ["rotation-refused-nothing-was-touched"] and why in str(high)
