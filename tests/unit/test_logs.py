"""Logs where staff can read them (issue #10, item 8): what each machine
forwards, to which machine, and what the collector keeps and watches."""

import copy
import pathlib
import re

import pytest
import yaml

import lemp_logs

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "salt" / "rsyslog" / "defaults.yaml").read_text())["rsyslog"]
HAPROXY = yaml.safe_load((REPO / "salt" / "haproxy" / "defaults.yaml").read_text())["haproxy"]
ZABBIX = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]
TEMPLATE = REPO / "salt" / "zabbix" / "server" / "files" / "templates" / "lemp-ha-central-logs.yaml"
LOGRT_PATH = re.compile(r'^logrt\["(?P<dir>/[^"]*/)(?P<stream>[a-z0-9_-]+)\\\.log\(\\\.1\)\?\$"')


def test_every_machine_forwards_to_the_monitor_role_machine(topology):
    assert lemp_logs.collector(topology) == {"name": "mon1", "address": topology["machines"]["mon1"]["address"]}


def test_a_topology_without_a_monitor_has_no_collector(topology):
    without = copy.deepcopy(topology)
    without["roles"]["monitor"]["members"] = []
    assert lemp_logs.collector(without) is None


def test_a_web_node_forwards_nginx_and_php_fpm_files_and_a_db_node_only_its_journal():
    web = lemp_logs.client_inputs(["web"], DEFAULTS["client"]["files"])
    tags = {i["tag"]: i["path"] for i in web}
    assert tags["nginx-access"] == "/var/log/nginx/access.log"
    assert tags["nginx-error"] == "/var/log/nginx/error.log"
    assert "php-fpm" in tags
    assert lemp_logs.client_inputs(["db"], DEFAULTS["client"]["files"]) == []


def test_a_file_two_roles_share_is_read_once():
    both = lemp_logs.client_inputs(["web", "lb"], DEFAULTS["client"]["files"])
    assert [i["tag"] for i in both].count("redis-sentinel") == 1
    assert [i["tag"] for i in both] == sorted(i["tag"] for i in both)


@pytest.mark.parametrize("files, message", [
    ({"web": {"Nginx Access": "/var/log/nginx/access.log"}}, "rsyslog:lookup:client:files:web:Nginx Access: the tag"),
    ({"web": {"nginx": "var/log/nginx.log"}}, "rsyslog:lookup:client:files:web:nginx: 'var/log/nginx.log' is not"),
    ({"web": {"nginx": "/var/log/nginx/*.log"}}, "no quotes, no wildcards"),
    ({"web": ["/var/log/nginx/access.log"]}, "rsyslog:lookup:client:files:web must map a tag"),
    ({"web": {"app": "/a.log"}, "lb": {"app": "/b.log"}}, "tag app already reads /a.log"),
])
def test_bad_client_files_are_refused_naming_the_pillar_key(files, message):
    with pytest.raises(lemp_logs.LogSettingsError, match=re.escape(message)):
        lemp_logs.client_inputs(["web", "lb"], files)


def test_the_default_collector_settings_are_valid():
    checked = lemp_logs.check_server(DEFAULTS["server"])
    assert checked["watched"]["php"] == ["nginx-error", "php-fpm"]
    assert checked["retention_days"] >= 1


def test_the_lab_pillar_keeps_a_retention_the_collector_accepts():
    lab = yaml.safe_load("\n".join(line for line in (REPO / "pillar" / "monitor.sls").read_text().splitlines()
                                   if not line.startswith("{%")).replace("{{ topology.network.domain }}", "x"))
    server = dict(DEFAULTS["server"], **lab["rsyslog"]["lookup"]["server"])
    assert lemp_logs.check_server(server)["retention_days"] == lab["rsyslog"]["lookup"]["server"]["retention_days"]


@pytest.mark.parametrize("override, message", [
    ({"retention_days": 0}, "rsyslog:lookup:server:retention_days: 0 must be a whole number, 1..3650"),
    ({"retention_days": "30"}, "rsyslog:lookup:server:retention_days: '30' must be a whole number"),
    ({"port": 70000}, "rsyslog:lookup:server:port: 70000"),
    ({"directory": "/var/log/../etc"}, "rsyslog:lookup:server:directory"),
    ({"group": "Remote Logs"}, "rsyslog:lookup:server:group: 'Remote Logs' is not a valid group name"),
    ({"watched": {"php": []}}, "rsyslog:lookup:server:watched:php: list the programs"),
    ({"watched": {"PHP!": ["php-fpm"]}}, "rsyslog:lookup:server:watched:PHP!: the stream name"),
])
def test_bad_collector_settings_are_refused_naming_the_pillar_key(override, message):
    with pytest.raises(lemp_logs.LogSettingsError, match=re.escape(message)):
        lemp_logs.check_server(dict(DEFAULTS["server"], **override))


def test_the_zabbix_log_items_read_streams_the_collector_writes():
    template = yaml.safe_load(TEMPLATE.read_text())["zabbix_export"]["templates"][0]
    streams = set()
    for item in template["items"]:
        found = LOGRT_PATH.match(item["key"])
        assert found, item["key"]
        assert found["dir"] == DEFAULTS["server"]["directory"] + "/_watched/"
        streams.add(found["stream"])
        assert item["type"] == "ZABBIX_ACTIVE" and item["value_type"] == "LOG"
        for trigger in item["triggers"]:
            assert item["key"] in trigger["expression"] and template["template"] in trigger["expression"]
    assert streams == set(DEFAULTS["server"]["watched"])


def test_the_log_template_is_linked_to_the_monitor_role():
    name = yaml.safe_load(TEMPLATE.read_text())["zabbix_export"]["templates"][0]["template"]
    assert name in ZABBIX["server"]["api"]["roles"]["monitor"]["templates"]


def test_the_php_fatal_error_trigger_matches_what_nginx_logs():
    # as nginx writes a PHP-FPM worker's fatal error (FastCGI stderr)
    line = ('2026/01/01 12:00:00 [error] 812#812: *9 FastCGI sent in stderr: "PHP message: PHP Fatal error:  '
            'Uncaught Error: Call to undefined function lemp_ha_logtest()" while reading response header')
    template = yaml.safe_load(TEMPLATE.read_text())["zabbix_export"]["templates"][0]
    php = next(i for i in template["items"] if "/php\\.log" in i["key"])
    assert re.search(php["key"].split('","')[1].split('"')[0], line)


@pytest.mark.parametrize("line, non_primary", [
    ("[Note] WSREP: Shifting SYNCED -> DONOR/DESYNCED (TO: 1042)", False),
    ("[Note] WSREP: New cluster view: global state: 1-2, view# -1: non-Primary, number of nodes: 1", True),
    ("[Note] WSREP: view(view_id(NON_PRIM,5f6c1a2b-a,3) memb {", True),
])
def test_the_galera_item_catches_state_changes_and_non_primary_views(line, non_primary):
    template = yaml.safe_load(TEMPLATE.read_text())["zabbix_export"]["templates"][0]
    galera = next(i for i in template["items"] if "/galera\\.log" in i["key"])
    assert re.search(galera["key"].split('","')[1].split('"')[0], line)
    assert bool(re.search("non-Primary|NON_PRIM", line)) is non_primary
    assert re.search(galera["key"].split('","')[1].split('"')[0], "[Note] WSREP: Flow-control interval") is None


def test_haproxy_logs_to_the_socket_rsyslog_makes_in_its_chroot():
    config = (REPO / "salt" / "haproxy" / "files" / "haproxy.cfg.j2").read_text()
    assert "log {{ haproxy.log.socket }} {{ haproxy.log.facility }}" in config
    assert "chroot {{ haproxy.chroot }}" in config
    # journald's /dev/log would rate-limit the access log
    assert HAPROXY["log"]["socket"] != "/dev/log"
    client = (REPO / "salt" / "rsyslog" / "client.sls").read_text()
    assert "lb.chroot ~ lb.log.socket" in client
