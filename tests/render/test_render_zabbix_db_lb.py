"""Issue #10, database and load-balancer tiers: what Salt renders for them
(the agent's UserParameters by role, the macros mon1 publishes, the MariaDB
account the agent reads wsrep status with). Uses the render master of
tests/render/conftest.py."""

import pytest


def args_of(body, function):
    """The arguments of the `function` call of a show_sls state body, as a dict."""
    calls = [v for key, v in body.items() if not key.startswith("__") and function in v]
    assert calls, body
    found = {}
    for item in calls[0]:
        if isinstance(item, dict):
            found.update(item)
    return found


def member(topology, representatives, role):
    return next(n for n in representatives if role in topology["machines"][n]["roles"])


def show(salt_cli, sls, minion):
    ret = salt_cli.run("state.show_sls", sls, minion_tgt=minion)
    assert isinstance(ret.data, dict), (sls, minion, ret.data)
    return ret.data


def user_parameters(salt_cli, minion):
    body = show(salt_cli, "zabbix.agent.userparameters", minion)["zabbix-agent-userparameters-file-managed"]
    return [line for line in args_of(body, "managed")["contents"].splitlines() if line.startswith("UserParameter=")]


def test_a_load_balancer_agent_checks_whether_it_holds_the_vip(salt_cli, topology, representatives):
    lb = member(topology, representatives, "lb")
    vip = topology["network"]["vip"]
    assert user_parameters(salt_cli, lb) == [f"UserParameter=lemp.vip.held,ip -o -4 addr show to {vip}/32 | wc -l"]


@pytest.mark.parametrize("role", ["db", "monitor"])
def test_other_machines_get_no_userparameter(salt_cli, topology, representatives, role):
    assert user_parameters(salt_cli, member(topology, representatives, role)) == []


FPM_ACTIVE = ("UserParameter=lemp.phpfpm.active,curl -fsS --max-time 3 http://127.0.0.1:8081/fpm-status"
              " | sed -n 's/^active processes: *//p'")
HEALTHZ_DEEP = "UserParameter=lemp.web.healthz.deep,curl -ksS --max-time 3 https://127.0.0.1/healthz/deep 2>&1 || true"


def test_web_nodes_read_their_busy_workers_and_their_deep_health_check(salt_cli, topology, representatives,
                                                                      pool_representative):
    """Fixed web nodes and pool VMs alike: the agent reads PHP-FPM's status
    page on nginx's loopback status server (template lemp-ha Web node load
    polls it every {$LEMP.SCALE.INTERVAL}), and the node's own /healthz/deep
    (template lemp-ha Web node health, issue #14)."""
    assert {FPM_ACTIVE, HEALTHZ_DEEP} <= set(user_parameters(salt_cli, member(topology, representatives, "web")))
    assert user_parameters(salt_cli, pool_representative) == [FPM_ACTIVE, HEALTHZ_DEEP]


def test_every_machines_agent_reloads_when_its_userparameters_change(salt_cli, topology, representatives):
    data = show(salt_cli, "common", member(topology, representatives, "lb"))
    assert "zabbix-agent-userparameters-file-managed" in data
    loaded = args_of(data["zabbix-agent-runs-its-current-configuration"], "config_loaded")
    assert "/etc/zabbix/zabbix_agent2.d" in loaded["paths"]


def test_mon1_publishes_the_galera_size_with_the_voting_garbd_and_the_db_roles_mysql_macros(
        salt_cli, topology, representatives):
    data = show(salt_cli, "zabbix.server.api", member(topology, representatives, "monitor"))
    macros = args_of(data["zabbix-api-global-macros-from-topology"], "global_macros_present")["macros"]
    dbs = [m["name"] for m in topology["roles"]["db"]["members"]]
    assert macros["{$LEMP.GALERA.SIZE}"] == str(len(dbs) + len(topology["garbd"]))
    assert macros["{$LEMP.VIP}"] == topology["network"]["vip"]
    settings = args_of(data["zabbix-api-role-macros-on-each-host"], "role_macros_present")["settings"]
    db_macros = settings["roles"]["db"]["macros"]
    assert db_macros["{$MYSQL.DSN}"].startswith("unix:") and db_macros["{$MYSQL.USER}"] == "zabbix"


def test_the_db_nodes_give_the_agent_a_passwordless_usage_only_account(salt_cli, topology, representatives):
    data = show(salt_cli, "galera.users", member(topology, representatives, "db"))
    account = args_of(data["galera-zabbix-agent-db-user-present"], "user_present")
    assert account["name"] == "zabbix" and account["unix_socket"] is True and account["grants"] == {}
    assert "password" not in account
