"""Issue #13: the database and Redis endpoints on the internal VIP
(topology network.internal_vip), a maxconn on every HAProxy listener and
server (_modules/lemp_haproxy.py), and the host firewall on a slot of the
scaling pool. Salt renders the states on the render master of
tests/render/conftest.py; the files' templates are rendered here from the
context Salt computed, as file.managed does on the minion."""

import json
import pathlib
import re

import jinja2
import pytest
import yaml

import lemp_firewall
import lemp_haproxy
from test_render import _args, _firewall_rules, render_errors

REPO = pathlib.Path(__file__).resolve().parents[2]


def member(topology, representatives, role):
    return next(n for n in representatives if role in topology["machines"][n]["roles"])


def show(salt_cli, sls, minion, pillar=None):
    extra = [f"pillar={json.dumps(pillar)}"] if pillar else []
    ret = salt_cli.run("state.show_sls", sls, *extra, minion_tgt=minion)
    assert not render_errors(ret), (sls, minion, render_errors(ret))
    return ret.data


def render_file(data, state_id, template):
    """The file a file.managed state writes: its template (salt/<template>)
    rendered with the context Salt computed for it."""
    context = _args(data[state_id], "managed")["context"]
    folder, name = (REPO / "salt" / template).parent, (REPO / "salt" / template).name
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), extensions=["jinja2.ext.do"])
    return env.get_template(name).render(**context), context


def sections(config):
    """{'listen galera': [its lines], ...} of an haproxy.cfg."""
    out, name = {}, None
    for line in config.splitlines():
        if line and not line.startswith((" ", "#")):
            name = line.strip()
            out[name] = []
        elif name and line.strip() and not line.strip().startswith("#"):
            out[name].append(line.strip())
    return out


@pytest.fixture(scope="module")
def network(topology):
    return topology["network"]


@pytest.fixture(scope="module")
def haproxy_cfg(salt_cli, topology, representatives):
    data = show(salt_cli, "haproxy.config", member(topology, representatives, "lb"))
    return render_file(data, "haproxy-config-file-managed", "haproxy/files/haproxy.cfg.j2")


# -- HAProxy: where it listens -------------------------------------------------------


def test_haproxy_binds_the_database_and_redis_endpoints_on_the_internal_vip_only(haproxy_cfg, network):
    config, _ = haproxy_cfg
    parts = sections(config)
    assert [line for line in parts["listen galera"] if line.startswith("bind ")] == [
        f"bind {network['internal_vip']}:3306"]
    assert [line for line in parts["listen redis-sessions"] if line.startswith("bind ")] == [
        f"bind {network['internal_vip']}:6379"]
    binds = re.findall(r"^\s*bind (\S+):(\d+)", config, re.M)
    assert sorted(p for a, p in binds if a == network["internal_vip"]) == ["3306", "6379"]


def test_haproxy_serves_nothing_but_http_and_https_on_the_public_vip(haproxy_cfg, network):
    config, context = haproxy_cfg
    binds = re.findall(r"^\s*bind (\S+):(\d+)", config, re.M)
    assert sorted(p for a, p in binds if a == network["vip"]) == ["443", "80"]
    # the stats listeners bind the LB's own addresses (loopback and its own),
    # never a VIP nor a wildcard; the firewall takes them from the admin networks
    stats = {str(context["haproxy"]["stats_port"]), str(context["haproxy"]["monitoring_stats_port"])}
    # redis-hold (sessions waiting for a new Redis master): loopback only
    hold = str(context["haproxy"]["redis"]["hold_port"])
    assert [a for a, p in binds if p == hold] == ["127.0.0.1"]
    assert {p for a, p in binds if a not in (network["vip"], network["internal_vip"])} == stats | {hold}
    assert {a for a, p in binds if p in stats} == set(context["edge"]["local_stats_readers"])
    assert "*" not in {a for a, p in binds}
    services = lemp_firewall.check_services(yaml.safe_load((REPO / "pillar" / "ports.yaml").read_text()),
                                            lemp_firewall.load()[0])
    assert services["lb"]["haproxy-stats"]["to"] is None and services["lb"]["haproxy-stats"]["from"] == ["admin"]


# -- HAProxy: maxconn everywhere -----------------------------------------------------------


def test_every_listener_and_server_of_haproxy_has_a_maxconn(haproxy_cfg):
    config, context = haproxy_cfg
    limits = context["limits"]
    parts = sections(config)
    assert f"maxconn {limits['global']}" in parts["global"]
    listeners = [name for name in parts if name.split()[0] in ("frontend", "listen")]
    assert len(listeners) == 7, listeners
    for name in listeners:
        assert any(re.fullmatch(r"maxconn \d+", line) for line in parts[name]), name
    servers = 0
    for name, lines in parts.items():
        serving = [line for line in lines if line.startswith("server ")]
        if not serving:
            continue
        defaults = [line for line in lines if line.startswith("default-server ")]
        for line in serving:
            servers += 1
            assert "maxconn " in line or any(re.search(r"\bmaxconn \d+\b", d) for d in defaults), (name, line)
    assert servers >= 1 + 4 + 2 + 1  # web1 (the mine), the pool's slots, db1 and db2, Redis on web1
    expected = {"frontend http-on-vip": limits["public"], "frontend https-on-vip": limits["public"],
                "listen galera": limits["db"], "listen redis-sessions": limits["redis"],
                "listen redis-hold": limits["redis"],
                "listen stats": limits["stats"], "listen stats-monitoring": limits["stats"]}
    for name, value in expected.items():
        assert f"maxconn {value}" in parts[name], name
    assert any(line.startswith(f"default-server maxconn {limits['web_server']} ") for line in parts["backend web"])


def test_the_limits_are_sized_from_the_web_and_database_pillars(salt_cli, haproxy_cfg, topology, representatives):
    _, context = haproxy_cfg
    defaults = yaml.safe_load((REPO / "salt" / "haproxy" / "defaults.yaml").read_text())["haproxy"]["limits"]
    web = salt_cli.run("pillar.get", "phpfpm:lookup:pool:max_children", "unmask=True",
                       minion_tgt=member(topology, representatives, "web")).data
    db = salt_cli.run("pillar.get", "galera:lookup:max_connections", "unmask=True",
                      minion_tgt=member(topology, representatives, "db")).data
    assert (web, db) == (16, 200)
    assert context["haproxy"]["limits"] == dict(defaults, php_max_children=web, db_max_connections=db)
    assert context["limits"] == lemp_haproxy.limits(context["haproxy"]["limits"])
    assert context["limits"]["db"] == db - defaults["db_reserved"]


@pytest.mark.parametrize("limits, message", [
    ({"db_reserved": 500}, "haproxy:lookup:limits:db_reserved (500) leaves no connection of db_max_connections"),
    ({"public_maxconn": "lots"}, "haproxy:lookup:limits:public_maxconn must be a positive integer, not 'lots'"),
    ({"redis_maxconn": 20000}, "haproxy:lookup:limits:redis_maxconn (20000) is above Redis's maxclients"),
    ({"maxconn": 100}, "haproxy:lookup:limits has unknown key(s) maxconn"),
])
def test_a_bad_limit_stops_the_haproxy_render_naming_the_key(salt_cli, topology, representatives, limits, message):
    ret = salt_cli.run("state.show_sls", "haproxy.config",
                       f"pillar={json.dumps({'haproxy': {'lookup': {'limits': limits}}})}",
                       minion_tgt=member(topology, representatives, "lb"))
    errors = render_errors(ret)
    assert any(message in e for e in errors), errors


# -- keepalived carries both addresses ------------------------------------------------------


def test_keepalived_moves_the_vip_and_the_internal_vip_together(salt_cli, topology, representatives, network):
    data = show(salt_cli, "keepalived", member(topology, representatives, "lb"))
    config, context = render_file(data, "keepalived-config-file-managed", "keepalived/files/keepalived.conf.j2")
    block = config.split("virtual_ipaddress {")[1].split("}")[0]
    addresses = [line.split()[0] for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
    prefix = network["prefixlen"]
    assert addresses == [f"{network['vip']}/{prefix}", f"{network['internal_vip']}/{prefix}"]
    assert config.count("vrrp_instance ") == 1  # one instance: one LB holds both
    # issue #14: a returning LB never takes the VIPs back; a failing HAProxy check means FAULT
    assert "\n    nopreempt\n" in config and "\n    weight 0\n" in config
    assert context["priority"] == 150 and context["peers"] == [
        m for m in topology["roles"]["lb"]["members"] if m["name"] != context["me"]["name"]]


def test_a_keepalived_weight_that_cannot_move_the_vip_stops_the_render_naming_the_key(salt_cli, topology,
                                                                                       representatives):
    ret = salt_cli.run("state.show_sls", "keepalived",
                       f"pillar={json.dumps({'keepalived': {'lookup': {'check': {'weight': -60}}}})}",
                       minion_tgt=member(topology, representatives, "lb"))
    errors = render_errors(ret)
    assert any("keepalived:lookup:check:weight (-60) must be 0 with nopreempt" in e for e in errors), errors


def test_keepalived_learns_at_once_that_haproxy_stopped_and_a_dead_keepalived_leaves_no_vip(
        salt_cli, topology, representatives, network):
    lb = member(topology, representatives, "lb")
    data = show(salt_cli, "keepalived", lb)
    config, context = render_file(data, "keepalived-config-file-managed", "keepalived/files/keepalived.conf.j2")
    track = context["k"]["haproxy_track"]
    path = f"{track['dir']}/{track['file']}"
    # keepalived reads the file when haproxy's unit writes it: non-zero is FAULT (weight 0)
    block = [line.strip() for line in config.split("track_file haproxy_stopped {")[1].split("}")[0].splitlines()
             if line.strip() and not line.strip().startswith("#")]
    assert block == [f'file "{path}"', "weight 0", "init_file 0"]
    instance = config.split("vrrp_instance VIP {")[1]
    assert "track_file {\n        haproxy_stopped\n    }" in instance
    assert "track_script {\n        chk_haproxy\n    }" in instance  # kept: a keepalived started while haproxy is down

    # haproxy's unit writes the file: 1 after every stop (also a kill -9), 0 once started
    haproxy_dropin = _args(data["keepalived-learns-at-once-that-haproxy-stopped"], "managed")
    assert haproxy_dropin["name"] == "/etc/systemd/system/haproxy.service.d/lemp-ha-keepalived.conf"
    lines = [line for line in haproxy_dropin["contents"].splitlines() if line and not line.startswith("#")]
    assert lines == ["[Service]",
                     f"ExecStartPost=-/bin/sh -c 'mkdir -p -m 0755 {track['dir']} && echo 0 > {path}'",
                     f"ExecStopPost=-/bin/sh -c 'mkdir -p -m 0755 {track['dir']} && echo 1 > {path}'"]

    # a keepalived killed by SIGKILL: systemd removes both VIPs from this LB's interface
    dropin = _args(data["keepalived-removes-the-vips-when-it-dies"], "managed")
    assert dropin["name"] == "/etc/systemd/system/keepalived.service.d/lemp-ha-vip-cleanup.conf"
    lines = [line.strip() for line in dropin["contents"].splitlines() if line.strip() and not line.strip().startswith("#")]
    iface, prefix = context["k"]["interface"], network["prefixlen"]
    assert iface and lines == ["[Service]",
                               f"ExecStartPre=/bin/mkdir -p -m 0755 {track['dir']}",
                               f"ExecStopPost=-/sbin/ip -4 addr del {network['vip']}/{prefix} dev {iface}",
                               f"ExecStopPost=-/sbin/ip -4 addr del {network['internal_vip']}/{prefix} dev {iface}"]
    assert f"dev {iface}" in config.split("virtual_ipaddress {")[1]  # the interface keepalived puts them on

    # systemd reads the drop-ins before keepalived (re)starts, on content: a second run reloads nothing
    reload = _args(data["keepalived-systemd-reloaded-after-drop-in-changes"], "run")
    assert reload["name"] == "systemctl daemon-reload" and "onchanges" not in reload
    assert reload["onlyif"] == (
        "systemctl show --property NeedDaemonReload --value haproxy keepalived | grep -qx yes"
        " || ! systemctl show --property DropInPaths --value haproxy"
        " | grep -q '/haproxy.service.d/lemp-ha-keepalived.conf'"
        " || ! systemctl show --property DropInPaths --value keepalived"
        " | grep -q '/keepalived.service.d/lemp-ha-vip-cleanup.conf'")
    running = _args(data["keepalived-service-running"], "running")
    assert {"cmd": "keepalived-systemd-reloaded-after-drop-in-changes"} in running["require"]
    assert {"file": "keepalived-haproxy-track-directory-present"} in _args(
        data["keepalived-config-file-managed"], "managed")["require"]

    # the haproxy formula alone writes no drop-in: a machine without keepalived keeps Debian's unit
    alone = show(salt_cli, "haproxy", lb)
    assert not [sid for sid, body in alone.items() if isinstance(body, dict) and "service.d" in str(body)]


# -- HAProxy: the LBs share the endpoints' stick tables (peers) -------------------------------


def test_haproxy_peers_are_every_lb_of_the_topology_and_the_endpoints_share_their_tables(haproxy_cfg, topology):
    config, context = haproxy_cfg
    parts = sections(config)
    me = context["peers"]["local"]
    lbs = topology["roles"]["lb"]["members"]
    assert me in [m["name"] for m in lbs]
    assert f"localpeer {me}" in parts["global"]
    port = context["haproxy"]["peers"]["port"]
    assert parts["peers lbs"] == [f"peer {m['name']} {m['address']}:{port}" for m in lbs]
    for name in ("listen galera", "listen redis-sessions"):
        assert "stick-table type ip size 1 peers lbs" in parts[name], name
    services = lemp_firewall.check_services(yaml.safe_load((REPO / "pillar" / "ports.yaml").read_text()),
                                            lemp_firewall.load()[0])
    peers = services["lb"]["haproxy-peers"]
    assert [str(p) for p in peers["ports"]] == [str(port)] and peers["from"] == ["lb"] and peers["to"] is None


# -- the clients use the internal endpoints ------------------------------------------------


@pytest.mark.parametrize("kind", ["web", "pool"])
def test_php_sessions_go_to_redis_through_the_internal_vip(salt_cli, topology, representatives, pool_representative,
                                                          network, kind):
    minion = member(topology, representatives, "web") if kind == "web" else pool_representative
    data = show(salt_cli, "phpfpm.config", minion)
    contents = _args(data["phpfpm-session-settings-file-managed"], "managed")["contents"]
    path = re.search(r'^session.save_path="([^"]*)"', contents, re.M).group(1)
    assert path.startswith(f"tcp://{network['internal_vip']}:6379?"), path
    assert "?auth[]=sessions&auth[]=" in path, "PHP logs in as its Redis ACL user (docs/security.md)"
    # a session read waits through a Redis failover instead of failing (docs/sessions.md)
    assert "&timeout=2&read_timeout=5&persistent=0&" in path, path
    assert "retry_interval" not in path, "5.3.7 reads it in microseconds, 6.1 in milliseconds"
    assert network["vip"] not in contents


@pytest.mark.parametrize("kind", ["web", "pool"])
def test_the_apps_database_host_is_the_internal_vip_from_the_pillar_and_by_default(
        salt_cli, topology, representatives, pool_representative, network, kind):
    minion = member(topology, representatives, "web") if kind == "web" else pool_representative
    for pillar in (None, {"app": {"database": {"host": ""}}}):  # pillar/app.sls names it; else the default
        data = show(salt_cli, "webapp.release", minion, pillar)
        config = next(body for sid, body in data.items() if sid.endswith("-config-file-managed"))
        assert _args(config, "managed")["context"]["db_host"] == network["internal_vip"], pillar


def test_the_cron_lock_is_taken_in_redis_through_the_internal_vip(salt_cli, topology, representatives, network):
    job = {"name": "reindex", "schedule": "*:0/5", "command": "php bin/reindex.php"}
    data = show(salt_cli, "webapp.cron", member(topology, representatives, "web"), {"app": {"cron": [job]}})
    assert f"LEMP_CRON_REDIS_HOST={network['internal_vip']}\\n" in json.dumps(data)


def test_the_binlog_archiver_follows_the_writer_through_the_internal_vip(salt_cli, topology, representatives,
                                                                         network):
    data = show(salt_cli, "backup", member(topology, representatives, "backup"))
    settings = _args(data["backup-settings-file-managed"], "serialize")["dataset"]
    assert settings["endpoint"]["host"] == network["internal_vip"]
    assert settings["endpoint"]["port"] == 3306
    unit = _args(data["backup-binlog-archive-service-unit-managed"], "managed")["contents"]
    assert f"through {network['internal_vip']}:" in unit and network["vip"] not in unit


# -- the firewall on every kind of machine, a slot of the pool too ---------------------------


def nftables(salt_cli, minion):
    data = show(salt_cli, "firewall.config", minion)
    config, _ = render_file(data, "firewall-nftables-config-file-managed", "firewall/files/nftables.conf.j2")
    return [line.strip() for line in config.splitlines() if line.strip().startswith("ip daddr ")]


def test_the_firewall_renders_for_a_slot_of_the_pool_as_what_it_will_serve(salt_cli, topology, pool_representative):
    services = lemp_firewall.check_services(yaml.safe_load((REPO / "pillar" / "ports.yaml").read_text()), topology)
    rules, errors = _firewall_rules(salt_cli, pool_representative)
    assert not errors, errors
    assert rules == lemp_firewall.machine_rules(topology, services, pool_representative)
    address = topology["pool_machines"][pool_representative]["address"]
    assert nftables(salt_cli, pool_representative) == [
        f"ip daddr {address} tcp dport 22 ip saddr @admin accept",
        f"ip daddr {address} tcp dport 443 ip saddr @https_backend_from accept",
        f"ip daddr {address} tcp dport 10050 ip saddr @zabbix_agent_from accept"]


def test_the_lbs_firewall_admits_the_endpoints_on_the_internal_vip_and_only_http_and_https_on_the_vip(
        salt_cli, topology, representatives, network):
    lines = nftables(salt_cli, member(topology, representatives, "lb"))
    on_vip = [line for line in lines if line.startswith(f"ip daddr {network['vip']} ")]
    assert on_vip == [f"ip daddr {network['vip']} tcp dport 80 accept",
                      f"ip daddr {network['vip']} tcp dport 443 accept"]
    on_internal = [line for line in lines if line.startswith(f"ip daddr {network['internal_vip']} ")]
    assert on_internal == [
        f"ip daddr {network['internal_vip']} tcp dport 3306 ip saddr @mysql_endpoint_from accept",
        f"ip daddr {network['internal_vip']} tcp dport 6379 ip saddr @redis_endpoint_from accept"]
