"""The web tier's monitoring renders with the lab pillar (issue #10): the
status pages nginx serves on loopback, the agent's Redis session and
Sentinel parameters, the GlusterFS status timer, and the host macros of
each role on mon1."""

import json

from test_render import _args, a_web_node, minion_for, render_errors  # same folder


def show(salt_cli, sls, minion, pillar=None):
    extra = [f"pillar={json.dumps(pillar)}"] if pillar else []
    ret = salt_cli.run("state.show_sls", sls, *extra, minion_tgt=minion)
    assert not render_errors(ret), (sls, minion, render_errors(ret))
    return ret.data


def test_nginx_serves_the_status_pages_on_loopback_for_the_agent(salt_cli, topology, representatives):
    states = show(salt_cli, "nginx", a_web_node(topology, representatives))
    args = _args(states["nginx-agent-status-server-file-managed"], "managed")
    assert args["name"] == "/etc/nginx/conf.d/lemp-ha-status.conf"
    assert args["context"]["status"]["listen"] == "127.0.0.1"
    assert args["context"]["fpm_socket"] == "/run/php/php8.2-fpm-app.sock"
    running = _args(states["nginx-service-running"], "running")
    assert {"file": "nginx-agent-status-server-file-managed"} in running["require"]


def test_the_agents_redis_session_holds_the_password_for_root_and_zabbix_only(salt_cli, topology, representatives):
    states = show(salt_cli, "redis", a_web_node(topology, representatives))
    args = _args(states["redis-zabbix-agent-session-file-managed"], "managed")
    assert (args["user"], args["group"], args["mode"]) == ("root", "zabbix", "0640")
    assert args["show_changes"] is False
    assert "Plugins.Redis.Sessions.lemp_sessions.Uri=tcp://127.0.0.1:6379\n" in args["contents"]
    assert "Plugins.Redis.Sessions.lemp_sessions.Password=" in args["contents"]
    loaded = _args(states["redis-zabbix-agent-runs-its-current-configuration"], "config_loaded")
    assert (loaded["name"], loaded["action"]) == ("zabbix-agent2", "restart")


def test_web_and_lb_nodes_give_the_agent_the_sentinel_parameters(salt_cli, topology, representatives):
    for role in ("web", "lb"):
        minion = next(n for n in representatives if role in topology["machines"][n]["roles"])
        states = show(salt_cli, "redis.sentinel", minion)
        contents = _args(states["redis-sentinel-zabbix-agent-parameters-file-managed"], "managed")["contents"]
        assert "SENTINEL get-master-addr-by-name sessions" in contents, role
        assert "SENTINEL CKQUORUM sessions" in contents, role
        assert "-p 26379" in contents, role


def test_every_glusterfs_server_runs_the_status_timer(salt_cli, topology, representatives):
    for sls, role in (("glusterfs", "web"), ("glusterfs.arbiter", "arbitrator")):
        minion = next(n for n in representatives if role in topology["machines"][n]["roles"])
        states = show(salt_cli, sls, minion)
        unit = _args(states["glusterfs-status-service-unit-file-managed"], "managed")["contents"]
        assert "ExecStart=/usr/bin/python3 /usr/local/lib/lemp-ha/gluster_status.py uploads " \
               "/run/lemp-ha-gluster/status.json" in unit, sls
        timer = _args(states["glusterfs-status-timer-unit-file-managed"], "managed")["contents"]
        assert "OnUnitActiveSec=10s" in timer, sls
        assert "glusterfs-status-timer-running" in states, sls


def test_mon1_sets_each_roles_macros_on_its_hosts_after_creating_them(salt_cli, topology, representatives):
    states = show(salt_cli, "zabbix.server.api", minion_for("zabbix.server", topology, representatives))
    args = _args(states["zabbix-api-role-macros-on-each-host"], "role_macros_present")
    assert args["settings"]["roles"]["web"]["macros"]["{$PHP_FPM.PROCESS_NAME}"] == "php-fpm8.2"
    assert {"lemp_zabbix": "zabbix-api-agent-hosts-present-with-their-psk"} in args["require"]


def test_a_bad_role_macro_stops_the_render_naming_the_key(salt_cli, topology, representatives):
    mon = minion_for("zabbix.server", topology, representatives)
    pillar = {"zabbix": {"lookup": {"server": {"api": {"roles": {"web": {"macros": {"PHP_FPM.PORT": "1"}}}}}}}}
    ret = salt_cli.run("state.show_sls", "zabbix.server.api", f"pillar={json.dumps(pillar)}", minion_tgt=mon)
    errors = render_errors(ret)
    assert any("zabbix:lookup:server:api:roles:web:macros: 'PHP_FPM.PORT' is not a Zabbix user macro" in e
               for e in errors), errors
