"""Secret rotation (orch.rotate_secret, _runners/lemp_secrets.py) without
Salt daemons: which machines hold a secret, the refusals, the staging of the
new value beside the old one in a machine's encrypted pillar, the runbook's
order, and the account statement that accepts the old OR the new password."""

import pathlib

import pytest
import yaml

import galera
import lemp_topology  # tests/conftest.py puts _modules on the path
from by_path import load
from test_galera_plans import status

REPO = pathlib.Path(__file__).resolve().parents[2]
runner = load("lemp_secrets_runner", "_runners/lemp_secrets.py")
TOPOLOGY = lemp_topology.load(REPO / "pillar" / "topology.yaml")
SPEC = yaml.safe_load((REPO / "pillar" / "secrets.spec.yaml").read_text())
OLD = "-----BEGIN PGP MESSAGE-----\nold\n-----END PGP MESSAGE-----\n"
NEW = "-----BEGIN PGP MESSAGE-----\nnew\n-----END PGP MESSAGE-----\n"


# -- what may be rotated, and where it lives -----------------------------------


def test_app_db_is_the_apps_database_password_held_by_db_web_and_pool_machines():
    assert runner.pillar_key(SPEC, "app_db") == "app:database:password"
    holders = runner.holders(TOPOLOGY, "app_db")
    assert {"db1", "db2", "web1", "web2"} <= set(holders)
    assert not {"lb1", "lb2", "arb1", "mon1", TOPOLOGY["master"]} & set(holders)


def test_an_unknown_secret_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown secret 'app_dbb'.*app_db"):
        runner.pillar_key(SPEC, "app_dbb")


def test_a_secret_not_rotatable_yet_is_refused_naming_what_is():
    with pytest.raises(ValueError, match=r"'galera_sst' cannot be rotated.*app_db"):
        runner.pillar_key(SPEC, "galera_sst")


# -- health -------------------------------------------------------------------


def healthy():
    rows = [{"pxname": "web", "svname": w, "status": "UP"} for w in ("web1", "web2")]
    return {"ping": {n: True for n in TOPOLOGY["machines"]},
            "galera": {"db1": status(primary=True), "db2": status(primary=True)},
            "stat": {"lb1": rows, "lb2": list(rows)}}


def problems(facts):
    return runner.health_problems(facts, ["db1", "db2"], ["web1", "web2"], ["lb1", "lb2"], "web")


def test_a_healthy_platform_has_no_problem():
    assert problems(healthy()) == []


def test_a_db_node_not_synced_a_drained_web_node_or_a_silent_minion_is_a_problem():
    facts = healthy()
    facts["galera"]["db2"] = dict(status(primary=True), local_state="Donor/Desynced")
    facts["stat"]["lb2"][0] = {"pxname": "web", "svname": "web1", "status": "DRAIN"}
    del facts["ping"]["web2"]
    found = problems(facts)
    assert any(p.startswith("db2 is not Synced") for p in found), found
    assert any(p.startswith("web1 is not in service on lb2") for p in found), found
    assert any(p.startswith("web2 does not answer") for p in found), found


# -- how PHP comes to read the new config ----------------------------------------


def test_php_reads_the_new_config_after_opcache_revalidates_or_after_a_reload():
    ini = "opcache.enable=1\nopcache.validate_timestamps=1\nopcache.revalidate_freq=2\n"
    assert runner.opcache_wait({"web1": ini, "web2": ini.replace("=2", "=5")}) == ("wait", 6)
    never = ini.replace("validate_timestamps=1", "validate_timestamps=0")
    assert runner.opcache_wait({"web1": ini, "web2": never}) == ("reload", 0)
    # no ini: PHP's defaults (revalidate every 2 s); an unreadable frequency: reload rather than guess
    assert runner.opcache_wait({"web1": "cat: /etc/php/8.2/fpm/conf.d/x.ini: No such file"}) == ("wait", 3)
    assert runner.opcache_wait({"web1": ini + "opcache.revalidate_freq=soon\n"}) == ("reload", 0)


# -- the encrypted pillar of one machine -------------------------------------------


def machine_tree():
    return {"app": {"database": {"password": OLD, "migrate_password": "m"}}, "tls": {"key": "k"}}


def test_staging_puts_the_new_value_at_the_key_and_keeps_the_old_beside_it():
    tree, changed = runner.staged(machine_tree(), "app:database:password", NEW)
    assert changed
    assert tree["app"]["database"] == {"password": NEW, "password_previous": OLD, "migrate_password": "m"}
    assert runner.is_staged(tree, "app:database:password")
    # a resumed run keeps the first new value: never a third one
    again, changed = runner.staged(tree, "app:database:password", "-----BEGIN PGP MESSAGE-----\nthird\n")
    assert not changed and again["app"]["database"]["password"] == NEW


def test_finishing_drops_the_old_value_only():
    tree, _ = runner.staged(machine_tree(), "app:database:password", NEW)
    tree, changed = runner.dropped(tree, "app:database:password")
    assert changed and tree["app"]["database"] == {"password": NEW, "migrate_password": "m"}
    assert runner.dropped(tree, "app:database:password") == (tree, False)


def test_a_machine_without_the_key_is_an_error_naming_it():
    with pytest.raises(KeyError, match="app:database:password"):
        runner.staged({"tls": {"key": "k"}}, "app:database:password", NEW)


def test_the_file_is_the_gpg_renderers_yaml_with_literal_blocks():
    text = runner.render_file(machine_tree())
    assert text.startswith("#!yaml|gpg\n")
    assert "password: |\n      -----BEGIN PGP MESSAGE-----\n      old\n" in text
    assert yaml.safe_load(text) == machine_tree()


def test_begin_then_finish_on_the_masters_files(tmp_path, monkeypatch):
    minions = tmp_path / "minions"
    minions.mkdir()
    for name in ("db1", "web1"):
        (minions / f"{name}.sls").write_text(runner.render_file(machine_tree()))
    (tmp_path / "rotation").mkdir()
    (tmp_path / "rotation" / "app_db.asc").write_text(NEW)
    monkeypatch.setattr(runner, "SECRETS_DIR", str(tmp_path))
    out = runner.begin("app_db", ["db1", "web1"])
    assert out["staged on"] == ["db1", "web1"] and "operator" in out["new value"], out
    assert not (tmp_path / "rotation" / "app_db.asc").exists()
    for name in ("db1", "web1"):
        tree = yaml.safe_load((minions / f"{name}.sls").read_text())
        assert tree["app"]["database"]["password"] == NEW and tree["app"]["database"]["password_previous"] == OLD
        assert oct((minions / f"{name}.sls").stat().st_mode & 0o777) == "0o600"
    # resumed: nothing rewritten, the same new value; an operator's new file is left unused
    (tmp_path / "rotation" / "app_db.asc").write_text("-----BEGIN PGP MESSAGE-----\nthird\n")
    again = runner.begin("app_db", ["db1", "web1"])
    assert again["already staged on"] == ["db1", "web1"] and "left unused" in again["new value"]
    assert (tmp_path / "rotation" / "app_db.asc").exists()
    assert yaml.safe_load((minions / "db1.sls").read_text())["app"]["database"]["password"] == NEW
    assert runner.finish("app_db", ["db1", "web1"])["old value dropped on"] == ["db1", "web1"]
    tree = yaml.safe_load((minions / "db1.sls").read_text())
    assert tree["app"]["database"] == {"password": NEW, "migrate_password": "m"}


def test_begin_refuses_a_missing_file_or_an_unknown_secret(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "SECRETS_DIR", str(tmp_path))
    assert "db9" in runner.begin("app_db", ["db9"])["Error"]
    assert "unknown secret" in runner.finish("nope", ["db1"])["Error"]


# -- the runbook ---------------------------------------------------------------------


def test_the_runbook_accepts_both_before_the_clients_change_and_drops_the_old_after():
    rotation = dict(runner.ROTATIONS["app_db"], holders=["db1", "db2", "web1", "web2"],
                    files=["db1", "db2", "web1", "web2", "web3"])
    steps = runner.rotation_steps("app_db", rotation, "db1", ["web1", "web2"], ("wait", 3))
    ids = [s["id"] for s in steps]
    assert ids == [
        "sync-custom-modules-on-the-app_db-holders",
        "stage-the-new-app_db-beside-the-old-in-the-encrypted-pillar",
        "refresh-pillar-of-the-app_db-holders",
        "db1-accepts-the-old-or-the-new-app_db",
        "give-the-new-app_db-to-its-clients",
        "wait-3s-for-opcache-to-revalidate-the-config",
        "drop-the-old-app_db-from-the-encrypted-pillar",
        "refresh-pillar-of-the-app_db-holders-again",
        "db1-accepts-only-the-new-app_db",
    ]
    # each step requires the one before: a failure stops the run with both values accepted
    for before, item in zip(steps, steps[1:]):
        assert {"require": [runner._steps.requisite(before)]} in item["args"], item["id"]
    reload = runner.rotation_steps("app_db", rotation, "db1", ["web1", "web2"], ("reload", 0))
    assert [s["id"] for s in reload if "reload" in s["id"]] == [
        "reload-php-fpm-on-web1-to-read-the-new-config", "reload-php-fpm-on-web2-to-read-the-new-config"]


# -- the account: old OR new, then only new --------------------------------------------


def test_two_passwords_make_an_or_of_hashes_with_no_clear_text():
    clause = galera.password_auth(["old'pw", "new\\pw"])
    old, new = galera.mysql_native_hash("old'pw"), galera.mysql_native_hash("new\\pw")
    assert clause == (f"IDENTIFIED VIA mysql_native_password USING '{old}'"
                      f" OR mysql_native_password USING '{new}'")
    assert "old" not in clause and "new" not in clause
    assert galera.password_auth(["pw", "pw"]) == f"IDENTIFIED BY PASSWORD '{galera.mysql_native_hash('pw')}'"


def test_show_create_user_is_read_for_one_or_several_authentications():
    one = "CREATE USER `app`@`10.77.0.%` IDENTIFIED BY PASSWORD '*AAA' REQUIRE SSL"
    two = ("CREATE USER `app`@`10.77.0.%` IDENTIFIED VIA mysql_native_password USING '*AAA' "
           "OR mysql_native_password USING '*BBB' REQUIRE SSL")
    assert galera.parse_create_user_auth(one) == [("mysql_native_password", "*AAA")]
    assert galera.parse_create_user_auth(two) == [("mysql_native_password", "*AAA"),
                                                  ("mysql_native_password", "*BBB")]
    assert galera.parse_create_user_auth("CREATE USER `root`@`localhost` IDENTIFIED VIA unix_socket") == [
        ("unix_socket", "")]


def fake_server(monkeypatch, create_user):
    executed = []

    def fake_query(sql, timeout=30):
        if sql.startswith("SELECT plugin"):
            return [["mysql_native_password", galera.mysql_native_hash("new"), "ANY"]]
        if sql.startswith("SHOW CREATE USER"):
            return [[create_user]]
        if sql.startswith("SHOW GRANTS"):
            return [["GRANT USAGE ON *.* TO `app`@`10.77.0.%`"]]
        executed.append(sql)
        return []

    monkeypatch.setattr(galera, "query", fake_query)
    return executed


def test_the_account_accepts_old_or_new_during_a_rotation_then_only_new(monkeypatch):
    old, new = galera.mysql_native_hash("old"), galera.mysql_native_hash("new")
    executed = fake_server(monkeypatch, f"CREATE USER `app`@`10.77.0.%` IDENTIFIED BY PASSWORD '{old}' REQUIRE SSL")
    assert galera.user_ensure("app", "10.77.0.%", password="new", previous_password="old") == [
        "accepts the previous and the new password"]
    assert executed == [f"ALTER USER 'app'@'10.77.0.%' IDENTIFIED VIA mysql_native_password USING '{old}' "
                        f"OR mysql_native_password USING '{new}';"]
    both = (f"CREATE USER `app`@`10.77.0.%` IDENTIFIED VIA mysql_native_password USING '{old}' "
            f"OR mysql_native_password USING '{new}' REQUIRE SSL")
    executed = fake_server(monkeypatch, both)
    assert galera.user_ensure("app", "10.77.0.%", password="new", previous_password="old") == []
    # the rotation is over: mysql.user shows the new hash, yet the old one is still accepted until dropped
    assert galera.user_ensure("app", "10.77.0.%", password="new") == ["authentication updated"]
    assert executed == [f"ALTER USER 'app'@'10.77.0.%' IDENTIFIED BY PASSWORD '{new}';"]


# -- the Redis users' passwords -----------------------------------------------------------

REDIS_USERS = yaml.safe_load((REPO / "salt" / "redis" / "defaults.yaml").read_text())["redis"]["acl"]["users"]
REDIS_SECRETS = ["redis_sessions", "redis_check", "redis_sentinel", "redis_monitor", "redis_admin",
                 "redis_replication"]


def redis_rotation(secret, holders, files=None):
    return dict(runner.ROTATIONS[secret], holders=holders, files=files or holders)


@pytest.mark.parametrize("secret", REDIS_SECRETS)
def test_each_rotatable_redis_secret_is_an_acl_users_password_held_by_every_redis_node(secret):
    key = runner.pillar_key(SPEC, secret)
    assert key in {user["password"] for user in REDIS_USERS.values()}
    rotation = runner.ROTATIONS[secret]
    assert (rotation["server_role"], rotation["servers"], rotation["server_sls"]) == ("web", "all", "redis.acl")
    redis_nodes = {m["name"] for m in TOPOLOGY["roles"]["web"]["members"]}
    assert redis_nodes <= set(runner.holders(TOPOLOGY, secret))
    assert (REPO / "salt" / "redis" / "acl.sls").exists()


def test_replication_every_node_accepts_both_then_every_masterauth_changes_live_then_only_new():
    rotation = redis_rotation("redis_replication", ["web1", "web2"])
    steps = runner.rotation_steps("redis_replication", rotation, ["web1", "web2"], ["web1", "web2"], ("wait", 0),
                                  ["lb1", "lb2"])
    ids = [s["id"] for s in steps]
    assert ids[3:] == ["web1-web2-accept-the-old-or-the-new-redis_replication",
                       "give-the-new-redis_replication-to-its-clients",
                       "drop-the-old-redis_replication-from-the-encrypted-pillar",
                       "refresh-pillar-of-the-redis_replication-holders-again",
                       "web1-web2-accept-only-the-new-redis_replication"]
    give = next(s for s in steps if s["id"] == "give-the-new-redis_replication-to-its-clients")
    # no drain: nothing restarts (redis/replication.sls applies masterauth with CONFIG SET)
    assert {"tgt": "web1,web2"} in give["args"] and {"sls": "redis.replication"} in give["args"]



def test_redis_sessions_every_redis_node_accepts_both_then_each_web_node_reloads_php_out_of_the_lbs():
    rotation = redis_rotation("redis_sessions", ["web1", "web2", "lb1", "lb2"])
    steps = runner.rotation_steps("redis_sessions", rotation, ["web1", "web2"], ["web1", "web2"], ("wait", 0),
                                  ["lb1", "lb2"], "web")
    ids = [s["id"] for s in steps]
    assert ids[:4] == ["sync-custom-modules-on-the-redis_sessions-holders",
                       "stage-the-new-redis_sessions-beside-the-old-in-the-encrypted-pillar",
                       "refresh-pillar-of-the-redis_sessions-holders",
                       "web1-web2-accept-the-old-or-the-new-redis_sessions"]
    per_node = ["drain-{w}-on-both-lbs", "wait-until-{w}-has-no-session-on-both-lbs",
                "give-the-new-redis_sessions-to-{w}", "enable-{w}-on-both-lbs", "wait-until-{w}-is-up-on-both-lbs"]
    assert ids[4:14] == [i.format(w=w) for w in ("web1", "web2") for i in per_node]
    assert ids[14:] == ["drop-the-old-redis_sessions-from-the-encrypted-pillar",
                        "refresh-pillar-of-the-redis_sessions-holders-again",
                        "web1-web2-accept-only-the-new-redis_sessions"]
    server = next(s for s in steps if s["id"] == "web1-web2-accept-the-old-or-the-new-redis_sessions")
    assert {"tgt": "web1,web2"} in server["args"] and {"sls": "redis.acl"} in server["args"]
    give = next(s for s in steps if s["id"] == "give-the-new-redis_sessions-to-web1")
    assert {"sls": "phpfpm.config,phpfpm.service,webapp.cron"} in give["args"]
    assert not any("opcache" in i for i in ids)
    for before, item in zip(steps, steps[1:]):
        assert {"require": [runner._steps.requisite(before)]} in item["args"], item["id"]


def test_the_check_and_sentinel_passwords_reach_their_clients_one_machine_at_a_time():
    steps = runner.rotation_steps("redis_check", redis_rotation("redis_check", ["web1", "web2", "lb1", "lb2"]),
                                  ["web1", "web2"], ["lb1", "lb2"], ("wait", 0), ["lb1", "lb2"])
    gives = [s for s in steps if s["id"].startswith("give-the-new")]
    assert [s["id"] for s in gives] == ["give-the-new-redis_check-to-lb1", "give-the-new-redis_check-to-lb2"]
    assert {"sls": "haproxy.config,haproxy.service"} in gives[0]["args"]
    steps = runner.rotation_steps("redis_sentinel", redis_rotation("redis_sentinel", ["web1", "web2", "lb1"]),
                                  ["web1", "web2"], ["web1", "web2", "lb1"], ("wait", 0), ["lb1"])
    assert [s["id"] for s in steps if s["id"].startswith("give-the-new")] == [
        "give-the-new-redis_sentinel-to-web1", "give-the-new-redis_sentinel-to-web2",
        "give-the-new-redis_sentinel-to-lb1"]


def test_the_admin_password_has_no_client_but_salt():
    steps = runner.rotation_steps("redis_admin", redis_rotation("redis_admin", ["web1", "web2"]),
                                  ["web1", "web2"], [], ("wait", 0))
    ids = [s["id"] for s in steps]
    assert "no-client-of-redis_admin-to-change" in ids
    assert ids[-1] == "web1-web2-accept-only-the-new-redis_admin"


def test_sentinels_password_every_sentinel_accepts_both_live_then_each_restarts_with_it_then_only_new():
    assert runner.pillar_key(SPEC, "sentinel_auth") == "sessions:sentinel_password"
    sentinels = ["web1", "web2", "lb1", "lb2"]
    assert set(sentinels) <= set(runner.holders(TOPOLOGY, "sentinel_auth"))
    steps = runner.rotation_steps("sentinel_auth", redis_rotation("sentinel_auth", sentinels), sentinels, sentinels,
                                  ("wait", 0), ["lb1", "lb2"])
    ids = [s["id"] for s in steps]
    assert ids[3:] == ["web1-web2-lb1-lb2-accept-the-old-or-the-new-sentinel_auth",
                       *[f"give-the-new-sentinel_auth-to-{n}" for n in sentinels],
                       "drop-the-old-sentinel_auth-from-the-encrypted-pillar",
                       "refresh-pillar-of-the-sentinel_auth-holders-again",
                       "web1-web2-lb1-lb2-accept-only-the-new-sentinel_auth"]
    accept = next(s for s in steps if s["id"].endswith("accept-the-old-or-the-new-sentinel_auth"))
    assert {"sls": "redis.sentinel_accepts"} in accept["args"]
    give = next(s for s in steps if s["id"] == "give-the-new-sentinel_auth-to-lb1")
    assert {"sls": "redis.sentinel"} in give["args"] and {"tgt": "lb1"} in give["args"]


# -- the Zabbix agents' PSKs (one per machine) ----------------------------------------------------


def test_zabbix_psk_is_a_per_machine_key_whose_collected_copy_the_monitor_holds():
    assert runner.pillar_key(SPEC, "zabbix_psk") == "zabbix:agent:psk"
    assert runner.machine_key(SPEC, "zabbix_psk") == ("zabbix:agent:psk", "zabbix:server:agent_psks", 32)
    assert runner.holders(TOPOLOGY, "zabbix_psk") == ["mon1"]
    with pytest.raises(ValueError, match="not a per-machine key"):
        runner.machine_key(SPEC, "app_db")


def test_every_machine_is_rotated_in_turn_a_pool_vm_that_does_not_run_is_left():
    answering = {n: True for n in TOPOLOGY["machines"]} | {"web3": True}
    machines, left = runner.rotated_machines(TOPOLOGY, answering)
    assert machines == sorted(TOPOLOGY["machines"]) + ["web3"]
    assert {"mon1", "salt1", "lb2"} <= set(machines)  # the server's own agent, the master's too
    assert left == ["web4", "web5", "web6"]
    assert runner.rotated_machines(TOPOLOGY, answering, "lb2") == (["lb2"], [])
    with pytest.raises(ValueError, match="'lb9' is not in the topology"):
        runner.rotated_machines(TOPOLOGY, answering, "lb9")


def test_each_machine_in_its_own_window_the_server_first_then_the_agent_then_its_heartbeat():
    rotation = runner.ROTATIONS["zabbix_psk"]
    steps = runner.machine_rotation_steps("zabbix_psk", rotation, ["lb2", "mon1"], "mon1", ["mon1"], TOPOLOGY, "R1")
    ids = [s["id"] for s in steps]
    per_machine = ["open-maintenance-window-on-mon1-for-{m}",
                   "stage-a-new-zabbix_psk-for-{m}-in-the-encrypted-pillar",
                   "refresh-pillar-of-{r}-for-the-zabbix_psk-of-{m}",
                   "mon1-gives-the-zabbix-host-{m}-its-new-zabbix_psk",
                   "give-the-new-zabbix_psk-to-the-agent-on-{m}",
                   "wait-until-mon1-has-the-heartbeat-of-{m}-over-the-new-zabbix_psk",
                   "drop-the-old-zabbix_psk-of-{m}-from-the-encrypted-pillar",
                   "refresh-pillar-of-{m}-again-after-its-zabbix_psk",
                   "close-maintenance-window-on-mon1-after-the-last-step-of-{m}",
                   "close-maintenance-window-on-mon1-after-a-failed-step-of-{m}"]
    assert ids == (["sync-custom-modules-on-mon1"]
                   + [i.format(m="lb2", r="lb2-mon1") for i in per_machine]
                   + [i.format(m="mon1", r="mon1") for i in per_machine])
    by_id = {s["id"]: s for s in steps}

    def arg(sid, key):
        return next(a[key] for a in by_id[sid]["args"] if key in a)

    # the window is the machine's host alone; the next machine's opens once this one closed
    assert arg("open-maintenance-window-on-mon1-for-lb2", "kwarg")["hosts"] == ["lb2"]
    assert arg("open-maintenance-window-on-mon1-for-mon1", "require") == [
        {"salt": "close-maintenance-window-on-mon1-after-the-last-step-of-lb2"}]
    assert arg("mon1-gives-the-zabbix-host-lb2-its-new-zabbix_psk", "name") == "lemp_zabbix.agent_psk_set"
    assert arg("mon1-gives-the-zabbix-host-lb2-its-new-zabbix_psk", "tgt") == "mon1"
    assert arg("give-the-new-zabbix_psk-to-the-agent-on-lb2", "sls") == "zabbix.agent.service"
    assert arg("give-the-new-zabbix_psk-to-the-agent-on-lb2", "tgt") == "lb2"
    assert arg("stage-a-new-zabbix_psk-for-lb2-in-the-encrypted-pillar", "collectors") == ["mon1"]
    # a failure anywhere in lb2's block closes its window and runs nothing of mon1's
    assert {"salt": "wait-until-mon1-has-the-heartbeat-of-lb2-over-the-new-zabbix_psk"} in arg(
        "close-maintenance-window-on-mon1-after-a-failed-step-of-lb2", "onfail")
    body = ids[2:9]
    for before, sid in zip(body, body[1:]):
        assert {"require": [runner._steps.requisite(by_id[before])]} in by_id[sid]["args"], sid


def psk_files(tmp_path):
    minions = tmp_path / "minions"
    minions.mkdir()
    (minions / "lb2.sls").write_text(runner.render_file({"zabbix": {"agent": {"psk": OLD}}, "tls": {"key": "k"}}))
    (minions / "mon1.sls").write_text(runner.render_file(
        {"zabbix": {"agent": {"psk": "mine"}, "server": {"agent_psks": {"lb2": OLD, "mon1": "mine"}}}}))
    return minions


def test_a_machines_new_psk_goes_to_its_file_and_the_monitors_then_its_old_one_goes(tmp_path, monkeypatch):
    minions = psk_files(tmp_path)
    (tmp_path / "rotation").mkdir()
    (tmp_path / "rotation" / "zabbix_psk-lb2.asc").write_text(NEW)
    monkeypatch.setattr(runner, "SECRETS_DIR", str(tmp_path))
    out = runner.begin_machine("zabbix_psk", "lb2", ["mon1"])
    assert out["written"] == ["lb2", "mon1"] and "operator" in out["new value"], out
    assert not (tmp_path / "rotation" / "zabbix_psk-lb2.asc").exists()
    lb2 = yaml.safe_load((minions / "lb2.sls").read_text())
    assert lb2["zabbix"]["agent"] == {"psk": NEW, "psk_previous": OLD}
    mon1 = yaml.safe_load((minions / "mon1.sls").read_text())
    assert mon1["zabbix"]["server"]["agent_psks"] == {"lb2": NEW, "mon1": "mine"}
    assert mon1["zabbix"]["agent"] == {"psk": "mine"}
    # resumed: the same new value, nothing rewritten
    assert runner.begin_machine("zabbix_psk", "lb2", ["mon1"])["written"] == []
    assert runner.finish_machine("zabbix_psk", "lb2")["old value dropped"] is True
    assert yaml.safe_load((minions / "lb2.sls").read_text())["zabbix"]["agent"] == {"psk": NEW}


def test_without_an_operators_value_a_machine_gets_32_random_bytes_as_hex(tmp_path, monkeypatch):
    minions = psk_files(tmp_path)
    encrypted = []
    monkeypatch.setattr(runner, "SECRETS_DIR", str(tmp_path))
    monkeypatch.setattr(runner, "_encrypt", lambda value: encrypted.append(value) or NEW)
    assert runner.begin_machine("zabbix_psk", "lb2", ["mon1"])["new value"] == "a random"
    assert len(encrypted) == 1 and len(encrypted[0]) == 64 and int(encrypted[0], 16) >= 0
    assert yaml.safe_load((minions / "mon1.sls").read_text())["zabbix"]["server"]["agent_psks"]["lb2"] == NEW


def test_a_monitor_file_without_the_collected_psks_is_an_error_naming_the_key(tmp_path, monkeypatch):
    minions = psk_files(tmp_path)
    (minions / "mon1.sls").write_text(runner.render_file({"zabbix": {"agent": {"psk": "mine"}}}))
    monkeypatch.setattr(runner, "SECRETS_DIR", str(tmp_path))
    monkeypatch.setattr(runner, "_encrypt", lambda value: NEW)
    assert "zabbix:server:agent_psks" in runner.begin_machine("zabbix_psk", "lb2", ["mon1"])["Error"]


def test_an_operators_file_that_is_not_armored_is_refused_in_its_own_words_and_nothing_is_staged(tmp_path,
                                                                                                    monkeypatch):
    minions = tmp_path / "minions"
    minions.mkdir()
    (minions / "db1.sls").write_text(runner.render_file(machine_tree()))
    (tmp_path / "rotation").mkdir()
    (tmp_path / "rotation" / "app_db.asc").write_text("plain text\n")
    monkeypatch.setattr(runner, "SECRETS_DIR", str(tmp_path))
    out = runner.begin("app_db", ["db1"])
    assert "is not a GPG-armored message (docs/secrets.md, Rotation)" in str(out)
    assert "rotating app_db" not in str(out)
    assert yaml.safe_load((minions / "db1.sls").read_text()) == machine_tree()
