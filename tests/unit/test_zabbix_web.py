"""Zabbix for the web tier (issue #10): the host macros of each role, the
repo's GlusterFS and Redis Sentinel templates, and the GlusterFS status
script the agent reads. Pure functions on sample data; the macros' values
are checked against the formulas that serve the status pages."""

import json
import pathlib
import re

import pytest
import yaml

import lemp_zabbix  # tests/conftest.py puts _modules on the path
from by_path import lab_pillar, load  # tests/unit/by_path.py

REPO = pathlib.Path(__file__).resolve().parents[2]
TEMPLATES_DIR = REPO / "salt" / "zabbix" / "server" / "files" / "templates"


def defaults(component):
    return yaml.safe_load((REPO / "salt" / component / "defaults.yaml").read_text())[component]


ROLES = defaults("zabbix")["server"]["api"]["roles"]
WEB = ROLES["web"]["macros"]
LB = ROLES["lb"]["macros"]


gluster_status = load("gluster_status", "salt/glusterfs/files/gluster_status.py")


# -- the macros agree with the formulas that serve the pages ------------------


def test_nginx_macros_point_at_the_loopback_status_server_of_salt_nginx():
    status = defaults("nginx")["status"]
    assert WEB["{$NGINX.STUB_STATUS.HOST}"] == status["listen"] == "127.0.0.1"
    assert WEB["{$NGINX.STUB_STATUS.PORT}"] == str(status["port"])
    assert "/" + WEB["{$NGINX.STUB_STATUS.PATH}"] == status["stub_status_path"]


def test_php_fpm_macros_reach_the_pools_status_and_ping_pages_through_that_server():
    status = defaults("nginx")["status"]
    pool = (REPO / "salt" / "phpfpm" / "files" / "pool.conf.j2").read_text()
    assert (WEB["{$PHP_FPM.HOST}"], WEB["{$PHP_FPM.PORT}"]) == (status["listen"], str(status["port"]))
    assert "/" + WEB["{$PHP_FPM.STATUS.PAGE}"] == status["fpm_status_path"]
    assert "/" + WEB["{$PHP_FPM.PING.PAGE}"] == status["fpm_ping_path"]
    assert f"pm.status_path = {status['fpm_status_path']}\n" in pool
    assert f"ping.path = {status['fpm_ping_path']}\n" in pool
    assert "ping.response = pong\n" in pool  # the template's {$PHP_FPM.PING.REPLY}


def test_the_php_fpm_process_name_is_debians_for_the_pillar_version():
    assert WEB["{$PHP_FPM.PROCESS_NAME}"] == "php-fpm" + defaults("phpfpm")["version"]


def test_the_redis_macro_names_the_agents_session_not_a_password():
    assert WEB["{$REDIS.CONN.URI}"] == defaults("redis")["monitoring"]["session"]
    assert not any("PASSWORD" in macro for role in ROLES.values() for macro in (role.get("macros") or {}))


def test_the_haproxy_macros_reach_the_stats_page_of_salt_haproxy():
    assert LB["{$HAPROXY.STATS.PORT}"] == str(defaults("haproxy")["monitoring_stats_port"])
    lab = lab_pillar("lb")["haproxy"]["lookup"]
    assert "monitoring_stats_port" not in lab or LB["{$HAPROXY.STATS.PORT}"] == str(lab["monitoring_stats_port"])
    config = (REPO / "salt" / "haproxy" / "files" / "haproxy.cfg.j2").read_text()
    # `stats uri /` answers every path below it, so /<PATH>;csv is the CSV export
    assert re.search(r"listen stats\n((    .*|{%.*)\n)*    stats uri /\n", config)


# -- validation and the plan per host ------------------------------------------


def test_role_macros_are_validated_and_kept_as_text():
    checked = lemp_zabbix.validate({"roles": {"web": {"templates": [], "macros": {"{$A.PORT}": 8081}}}})
    assert checked["roles"]["web"]["macros"] == {"{$A.PORT}": "8081"}
    assert lemp_zabbix.validate({"roles": {"db": {"templates": []}}})["roles"]["db"]["macros"] == {}


@pytest.mark.parametrize("macros, message", [
    ({"NGINX.PORT": "1"}, r"roles:web:macros: 'NGINX.PORT' is not a Zabbix user macro"),
    ({"{$nginx.port}": "1"}, r"is not a Zabbix user macro"),
    ({"{$A}": [1, 2]}, r"roles:web:macros:\{\$A\} must be a single value"),
    (["{$A}"], r"roles:web:macros must map a macro"),
])
def test_a_bad_role_macro_is_refused_naming_the_pillar_key(macros, message):
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match=message):
        lemp_zabbix.validate({"roles": {"web": {"templates": [], "macros": macros}}})


def test_each_machine_gets_the_macros_of_its_roles(topology):
    checked = lemp_zabbix.validate({"roles": ROLES})
    plan = lemp_zabbix.host_macros(topology["machines"], checked["roles"])
    for name, machine in topology["machines"].items():
        if "web" in machine["roles"]:
            assert plan[name]["{$REDIS.CONN.URI}"] == WEB["{$REDIS.CONN.URI}"]
        if "lb" in machine["roles"]:
            assert plan[name]["{$HAPROXY.STATS.PORT}"] == LB["{$HAPROXY.STATS.PORT}"]
        if "backup" in machine["roles"]:  # the backup store's thresholds (test_zabbix_backup.py)
            assert plan[name]["{$LEMP.BACKUP.NEWEST.MAX_AGE}"] == ROLES["backup"]["macros"][
                "{$LEMP.BACKUP.NEWEST.MAX_AGE}"]
        if not {"web", "lb", "db", "backup"} & set(machine["roles"]):  # db: the MySQL DSN (test_zabbix_db_lb.py)
            assert plan[name] == {}, name


def test_two_roles_giving_one_macro_two_values_are_refused():
    roles = {"web": {"macros": {"{$X}": "1"}}, "lb": {"macros": {"{$X}": "2"}}, "db": {"macros": {"{$X}": "1"}}}
    assert lemp_zabbix.host_macros({"a": {"roles": ["web", "db"]}}, roles) == {"a": {"{$X}": "1"}}
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match=r"a has roles web and lb, which give \{\$X\}"):
        lemp_zabbix.host_macros({"a": {"roles": ["web", "lb"]}}, roles)


def row(hostmacroid, macro, value, description=lemp_zabbix.MACRO_MARK):
    return {"hostmacroid": hostmacroid, "hostid": "10", "macro": macro, "value": value,
            "description": description, "type": "0"}


def test_macros_as_the_server_has_them_need_no_change():
    current = [row("1", "{$A}", "1"), row("2", "{$B}", "x")]
    assert lemp_zabbix.macro_changes(current, {"{$A}": "1", "{$B}": "x"}) == {"create": [], "update": [], "delete": []}


def test_a_missing_macro_is_created_marked_and_a_changed_one_updated():
    todo = lemp_zabbix.macro_changes([row("1", "{$A}", "1")], {"{$A}": "2", "{$B}": "x"})
    assert todo["create"] == [{"macro": "{$B}", "value": "x", "description": lemp_zabbix.MACRO_MARK}]
    assert todo["update"] == [{"hostmacroid": "1", "value": "2", "description": lemp_zabbix.MACRO_MARK}]


def test_a_macro_set_by_hand_is_taken_over_and_other_hand_macros_are_left_alone():
    current = [row("1", "{$A}", "1", description=""), row("2", "{$MINE}", "y", description="ops")]
    todo = lemp_zabbix.macro_changes(current, {"{$A}": "1"})
    assert todo == {"create": [], "update": [{"hostmacroid": "1", "value": "1",
                                              "description": lemp_zabbix.MACRO_MARK}], "delete": []}


def test_a_macro_the_pillar_no_longer_names_is_removed_only_when_salt_set_it():
    current = [row("1", "{$OLD}", "1"), row("2", "{$MINE}", "y", description="ops")]
    assert lemp_zabbix.macro_changes(current, {})["delete"] == ["1"]


# -- the repo's templates ------------------------------------------------------


def template(name):
    for path in sorted(TEMPLATES_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for tpl in doc["zabbix_export"]["templates"]:
            if tpl["template"] == name:
                return tpl
    raise AssertionError(f"no template {name} in {TEMPLATES_DIR}")


def items_and_triggers(tpl):
    items = {item["key"]: item for item in tpl.get("items") or []}
    triggers = [trigger for item in items.values() for trigger in item.get("triggers") or []]
    return items, triggers


@pytest.mark.parametrize("name", ["lemp-ha GlusterFS", "lemp-ha Redis Sentinel", "lemp-ha Web node health"])
def test_every_trigger_reads_only_items_of_its_own_template(name):
    tpl = template(name)
    items, triggers = items_and_triggers(tpl)
    assert triggers
    macros = {m["macro"]: m["value"] for m in tpl.get("macros") or []}
    for trigger in triggers:
        for owner, key in re.findall(r"\(/([^/]+)/([^,)]+)", trigger["expression"]):
            assert owner == name, trigger["expression"]
            assert key in items, (key, trigger["expression"])
        for macro in re.findall(r"\{\$[A-Z0-9_.]+\}", trigger["expression"]):
            assert macro in macros, (macro, name)


@pytest.mark.parametrize("name", ["lemp-ha GlusterFS", "lemp-ha Redis Sentinel"])
def test_a_fault_is_seen_within_30_seconds(name):
    # Checked every 10 s (plus the status file's own 10 s for GlusterFS) and
    # the fault triggers read the last value: under 30 s with the agent's
    # BufferSend of 5 s. The heal backlog and a stale file are slow on purpose.
    items, triggers = items_and_triggers(template(name))
    polled = [item for item in items.values() if item.get("type") != "DEPENDENT"]
    assert polled and all(item["delay"] == "10s" and item["type"] == "ZABBIX_ACTIVE" for item in polled)
    fast = [t for t in triggers if t["priority"] == "HIGH"]
    assert fast and all(t["expression"].startswith(("last(", "find(")) for t in fast)


def test_the_web_tier_templates_are_linked_to_their_roles():
    assert {"lemp-ha GlusterFS", "lemp-ha Redis Sentinel"} <= set(ROLES["web"]["templates"])
    assert "lemp-ha Redis Sentinel" in ROLES["lb"]["templates"]
    assert "lemp-ha GlusterFS" in ROLES["arbitrator"]["templates"]


def test_the_agent_reads_the_file_the_timer_writes_and_asks_for_the_keys_salt_defines():
    gluster = defaults("glusterfs")["monitoring"]
    macros = {m["macro"]: m["value"] for m in template("lemp-ha GlusterFS")["macros"]}
    assert macros["{$GLUSTER.STATUS.FILE}"] == f"/run/{gluster['runtime_dir']}/status.json"
    sls = (REPO / "salt" / "redis" / "sentinel_monitoring.sls").read_text()
    for key in items_and_triggers(template("lemp-ha Redis Sentinel"))[0]:
        assert f"UserParameter={key}," in sls, key


# -- the GlusterFS status script ---------------------------------------------

VOLUME_INFO = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput><opRet>0</opRet><opErrno>0</opErrno><opErrstr/>
  <volInfo><volumes>
    <volume><name>uploads</name><status>{status}</status><statusStr>Started</statusStr>
      <brickCount>3</brickCount><replicaCount>3</replicaCount><arbiterCount>1</arbiterCount>
      <bricks>
        <brick uuid="a">10.77.0.21:/srv/gluster/bricks/uploads<name>10.77.0.21:/srv/gluster/bricks/uploads</name><isArbiter>0</isArbiter></brick>
        <brick uuid="b">10.77.0.22:/srv/gluster/bricks/uploads<name>10.77.0.22:/srv/gluster/bricks/uploads</name><isArbiter>0</isArbiter></brick>
        <brick uuid="c">10.77.0.30:/srv/gluster/bricks/uploads<name>10.77.0.30:/srv/gluster/bricks/uploads</name><isArbiter>1</isArbiter></brick>
      </bricks>
    </volume><count>1</count>
  </volumes></volInfo>
</cliOutput>
"""


def node(host, path, status):
    return (f"<node><hostname>{host}</hostname><path>{path}</path><peerid>x</peerid><status>{status}</status>"
            "<port>49152</port><ports><tcp>49152</tcp><rdma>N/A</rdma></ports><pid>1</pid></node>")


def volume_status(*nodes):
    return ("<?xml version=\"1.0\"?><cliOutput><opRet>0</opRet><opErrno>0</opErrno><opErrstr/><volStatus><volumes>"
            f"<volume><volName>uploads</volName><nodeCount>{len(nodes)}</nodeCount>{''.join(nodes)}</volume>"
            "</volumes></volStatus></cliOutput>")


BRICK = "/srv/gluster/bricks/uploads"
HEALTHY_STATUS = volume_status(node("10.77.0.21", BRICK, 1), node("10.77.0.22", BRICK, 1),
                               node("10.77.0.30", BRICK, 1), node("Self-heal Daemon", "localhost", 1),
                               node("Self-heal Daemon", "10.77.0.22", 1))
HEAL_COUNT = """Gathering count of entries to be healed on volume uploads has been successful

Brick 10.77.0.21:/srv/gluster/bricks/uploads
Number of entries: 0

Brick 10.77.0.22:/srv/gluster/bricks/uploads
Number of entries: 4

Brick 10.77.0.30:/srv/gluster/bricks/uploads
Status: Transport endpoint is not connected
Number of entries: -
"""


def test_a_healthy_volume_is_started_with_every_brick_online_and_nothing_to_heal():
    doc = gluster_status.summary("uploads", 1700000000.5, True, VOLUME_INFO.format(status=1), HEALTHY_STATUS,
                                 HEAL_COUNT.replace("4", "0"))
    assert doc == {"time": 1700000000, "glusterd": 1, "volume": "uploads", "started": 1, "bricks": 3,
                   "bricks_online": 3, "heal_pending": 0, "error": ""}


def test_the_self_heal_daemons_are_not_counted_as_bricks_and_an_offline_brick_is_missing():
    status = volume_status(node("10.77.0.21", BRICK, 1), node("10.77.0.22", BRICK, 0),
                           node("Self-heal Daemon", "localhost", 1))
    assert gluster_status.parse_volume_status(status) == 1


def test_a_stopped_volume_and_an_unknown_one_read_as_not_started():
    assert gluster_status.parse_volume_info(VOLUME_INFO.format(status=2)) == (0, 3)
    failed = "<cliOutput><opRet>-1</opRet><opErrno>30800</opErrno><opErrstr>Volume x does not exist</opErrstr></cliOutput>"
    assert gluster_status.parse_volume_info(failed) == (0, 0)
    assert gluster_status.parse_volume_info("Connection failed. Please check if gluster daemon is operational.") == (0, 0)


def test_the_heal_backlog_sums_the_bricks_that_answer():
    assert gluster_status.parse_heal_count(HEAL_COUNT) == 4
    assert gluster_status.parse_heal_count("") == 0


def test_glusterd_down_is_reported_as_such_with_nothing_else_claimed():
    doc = gluster_status.summary("uploads", 5, False, None, None, None, "glusterd does not answer")
    assert (doc["glusterd"], doc["started"], doc["bricks_online"], doc["heal_pending"]) == (0, 0, 0, 0)


def test_the_status_file_is_replaced_whole_and_readable_by_the_agent(tmp_path):
    out = tmp_path / "status.json"
    out.write_text("old")
    gluster_status.write_atomically(str(out), {"time": 1})
    assert json.loads(out.read_text()) == {"time": 1}
    assert out.stat().st_mode & 0o777 == 0o644
    assert not (tmp_path / "status.json.tmp").exists()


def test_the_script_without_its_arguments_says_how_to_call_it(capsys):
    assert gluster_status.main(["gluster_status.py"]) == 2
    assert "usage: gluster_status.py VOLUME OUTPUT" in capsys.readouterr().err


def test_a_failed_status_call_with_glusterd_up_is_unknown_not_zero_bricks():
    doc = gluster_status.summary("uploads", 5, True, VOLUME_INFO.format(status=1), None, None, "locked")
    assert (doc["bricks"], doc["bricks_online"], doc["heal_pending"], doc["error"]) == (3, None, None, "locked")
