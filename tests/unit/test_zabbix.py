"""Zabbix as code (_modules/lemp_zabbix.py): HostMetadata from roles, pillar
validation, and what the ensure_* functions would write, computed from
sample API answers (Zabbix 6.0's shapes: ids and numbers as strings)."""

import pathlib
import re
import sys

import jinja2
import pytest
import yaml

import lemp_zabbix  # tests/conftest.py puts _modules on the path

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "lab"))

import lab_secrets  # noqa: E402

DEFAULTS = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]
TEMPLATES_DIR = REPO / "salt" / "zabbix" / "server" / "files" / "templates"
# Templates Zabbix 6.0 ships (data.sql.gz of Debian's zabbix-server-mysql 1:6.0.14)
SHIPPED = DEFAULTS["server"]["api"]["shipped_templates"]   # what Zabbix 6.0 ships, as listed once


def repo_templates():
    return [name for path in sorted(TEMPLATES_DIR.glob("*.yaml"))
            for name in lemp_zabbix.template_names_of(yaml.safe_load(path.read_text()))]


# -- HostMetadata -------------------------------------------------------------


def test_each_machine_announces_its_roles_and_the_server_reads_them_back(topology):
    for name, machine in topology["machines"].items():
        metadata = lemp_zabbix.host_metadata(machine["roles"])
        assert len(metadata) <= 255, name
        assert lemp_zabbix.parse_host_metadata(metadata) == machine["roles"]


def test_the_arbitrator_carries_both_its_roles():
    assert lemp_zabbix.host_metadata(["arbitrator", "backup"]) == "lemp-ha;role=arbitrator;role=backup;"


def test_a_role_condition_never_matches_a_longer_role_name():
    metadata = lemp_zabbix.host_metadata(["webcache"])
    assert lemp_zabbix.role_token("web") not in metadata
    assert lemp_zabbix.role_token("webcache") in metadata


def test_metadata_that_is_not_ours_has_no_roles():
    assert lemp_zabbix.parse_host_metadata("Linux server") == []
    assert lemp_zabbix.parse_host_metadata(None) == []


def test_a_machine_without_roles_or_with_a_bad_role_name_is_refused():
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match="no role"):
        lemp_zabbix.host_metadata([])
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match="cannot be put in HostMetadata"):
        lemp_zabbix.host_metadata(["web;role=db"])


# -- pillar validation --------------------------------------------------------


def test_the_default_settings_are_valid_against_shipped_and_repo_templates():
    checked = lemp_zabbix.validate(DEFAULTS["server"]["api"], SHIPPED + repo_templates())
    assert checked["roles"]["web"]["group"] == "lemp-ha/web"
    assert "Nginx by Zabbix agent" in checked["roles"]["web"]["templates"]


def test_every_role_of_the_platform_has_an_autoregistration_entry(topology):
    assert set(topology["roles"]) <= set(DEFAULTS["server"]["api"]["roles"])


def lab_monitor_pillar():
    """pillar/monitor.sls rendered as Salt would: its one Salt-only tag
    (import_yaml of the topology) is given the topology directly."""
    text = (REPO / "pillar" / "monitor.sls").read_text()
    text = re.sub(r"{%-? import_yaml 'topology.yaml' as topology %}", "", text)
    topology = yaml.safe_load((REPO / "pillar" / "topology.yaml").read_text())
    return yaml.safe_load(jinja2.Template(text).render(topology=topology))


def test_the_lab_pillar_settings_are_valid():
    lab = lab_monitor_pillar()["zabbix"]["lookup"]["server"]["api"]
    lemp_zabbix.validate(dict(DEFAULTS["server"]["api"], **lab), SHIPPED + repo_templates())


def settings(**overrides):
    return dict(DEFAULTS["server"]["api"], **overrides)


BAD = [
    ("unknown template", {"roles": {"web": {"templates": ["Nginx by Zabbix agnet"]}}},
     "zabbix:lookup:server:api:roles:web:templates names unknown template(s) Nginx by Zabbix agnet"),
    ("user with no group", {"users": [{"username": "jdoe"}]},
     "zabbix:lookup:server:api:users:jdoe has no group"),
    ("user in an undeclared group", {"users": [{"username": "jdoe", "groups": ["admins"]}]},
     "zabbix:lookup:server:api:users:jdoe:groups names admins, not declared in zabbix:lookup:server:api:user_groups"),
    ("malformed webhook URL", {"webhook": {"url": "hooks.example.com/zabbix"}},
     "zabbix:lookup:server:api:webhook:url 'hooks.example.com/zabbix' is not a URL"),
    ("webhook URL of another scheme", {"webhook": {"url": "ftp://hooks.example.com/"}},
     "zabbix:lookup:server:api:webhook:url 'ftp://hooks.example.com/' is not a URL"),
    ("bad permission", {"user_groups": {"staff": {"permission": "admin"}}},
     "zabbix:lookup:server:api:user_groups:staff:permission 'admin'"),
    ("alerts to an undeclared group", {"alerts": {"user_group": "nobody"}},
     "zabbix:lookup:server:api:alerts:user_group 'nobody' is not declared"),
]


@pytest.mark.parametrize("case, override, message", BAD, ids=[b[0] for b in BAD])
def test_bad_settings_are_refused_naming_the_pillar_key(case, override, message):
    with pytest.raises(lemp_zabbix.ZabbixSettingsError) as info:
        lemp_zabbix.validate(settings(**override), SHIPPED + repo_templates())
    assert message in str(info.value)


def test_a_good_webhook_url_passes():
    lemp_zabbix.validate(settings(webhook={"url": "https://chat.example.com/hooks/zabbix"}))


# -- templates of the repo ----------------------------------------------------


def test_every_repo_template_file_is_a_zabbix_60_export_with_unique_uuids():
    uuids = []
    for path in sorted(TEMPLATES_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())["zabbix_export"]
        assert doc["version"] == "6.0", path
        for template in doc["templates"]:
            uuids.append(template["uuid"])
            for item in template.get("items", []):
                uuids.append(item["uuid"])
                uuids += [t["uuid"] for t in item.get("triggers", [])]
    assert uuids and len(uuids) == len(set(uuids))
    assert all(len(u) == 32 and int(u, 16) >= 0 for u in uuids)


def test_a_template_is_imported_again_only_when_its_file_changes():
    path = TEMPLATES_DIR / "lemp-ha-salt-minion.yaml"
    text = path.read_text()
    digest = lemp_zabbix.source_digest(text)
    tagged = lemp_zabbix.tagged_export(yaml.safe_load(text), digest)
    template = tagged["zabbix_export"]["templates"][0]
    # the server's answer after the import carries the digest
    answer = {"templateid": "10500", "host": template["template"], "tags": template["tags"]}
    assert lemp_zabbix.tag_value(answer, lemp_zabbix.SOURCE_TAG) == digest
    assert lemp_zabbix.source_digest(text + "\n# changed\n") != digest
    # tagging twice keeps one tag
    again = lemp_zabbix.tagged_export(tagged, digest)["zabbix_export"]["templates"][0]["tags"]
    assert [t["tag"] for t in again].count(lemp_zabbix.SOURCE_TAG) == 1


# -- autoregistration actions -------------------------------------------------

# action.get with selectFilter/selectOperations, as Zabbix 6.0 answers for
# the action autoreg_action("web", 22, [10001, 10266]) created.
WEB_ACTION_ANSWER = {
    "actionid": "7", "name": "lemp-ha autoregistration: role web", "eventsource": "2", "status": "0",
    "esc_period": "1h", "pause_suppressed": "1",
    "filter": {"evaltype": "0", "formula": "", "eval_formula": "A",
               "conditions": [{"conditiontype": "24", "operator": "2", "value": "role=web;", "value2": "",
                               "formulaid": "A"}]},
    "operations": [
        {"operationid": "31", "actionid": "7", "operationtype": "2", "esc_period": "0", "esc_step_from": "1",
         "esc_step_to": "1", "evaltype": "0"},
        {"operationid": "32", "actionid": "7", "operationtype": "4", "esc_period": "0", "esc_step_from": "1",
         "esc_step_to": "1", "evaltype": "0", "opgroup": [{"groupid": "22", "operationid": "32"}]},
        {"operationid": "33", "actionid": "7", "operationtype": "6", "esc_period": "0", "esc_step_from": "1",
         "esc_step_to": "1", "evaltype": "0",
         "optemplate": [{"templateid": "10266", "operationid": "33"}, {"templateid": "10001", "operationid": "33"}]},
    ],
    "recovery_operations": [],
}


def test_an_autoregistration_action_as_the_server_has_it_needs_no_change():
    desired = lemp_zabbix.autoreg_action("web", 22, [10001, 10266])
    assert lemp_zabbix.action_changes(WEB_ACTION_ANSWER, desired) == {}


def test_a_missing_action_is_created():
    assert lemp_zabbix.action_changes(None, lemp_zabbix.autoreg_action("web", 22, [])) is None


def test_a_template_added_to_a_role_updates_only_the_operations():
    desired = lemp_zabbix.autoreg_action("web", 22, [10001, 10266, 10300])
    changes = lemp_zabbix.action_changes(WEB_ACTION_ANSWER, desired)
    assert set(changes) == {"operations"}
    assert changes["operations"] == desired["operations"]


def test_a_disabled_action_is_enabled_again():
    current = dict(WEB_ACTION_ANSWER, status="1")
    assert lemp_zabbix.action_changes(current, lemp_zabbix.autoreg_action("web", 22, [10001, 10266])) == {
        "status": 0}


def test_the_alert_action_mails_the_group_and_the_recovery():
    action = lemp_zabbix.alert_action("lemp-ha: mail problems to ops", "13", "1", "warning")
    assert action["filter"]["conditions"] == [{"conditiontype": 4, "operator": 5, "value": "2"},
                                              {"conditiontype": 16, "operator": 11}]
    answer = dict(action, actionid="9", filter={"evaltype": "0", "conditions": [
        {"conditiontype": "4", "operator": "5", "value": "2", "value2": ""},
        {"conditiontype": "16", "operator": "11", "value": "", "value2": ""}]},
        operations=[{"operationtype": "0", "opmessage": {"default_msg": "1", "mediatypeid": "1", "subject": ""},
                     "opmessage_grp": [{"usrgrpid": "13", "operationid": "40"}], "opmessage_usr": []}],
        recovery_operations=[{"operationtype": "11", "opmessage": {"default_msg": "1", "mediatypeid": "0"}}])
    assert lemp_zabbix.action_changes(answer, action) == {}


# -- agents' hosts and their PSK ----------------------------------------------

PSK = "a" * 64


def test_an_unknown_machine_becomes_a_host_with_its_psk():
    create = lemp_zabbix.psk_host_changes(None, "web1", PSK, "20")
    assert create["host"] == "web1" and create["tls_psk_identity"] == "web1" and create["tls_psk"] == PSK
    assert create["tls_connect"] == create["tls_accept"] == 2
    assert {"tag": "lemp-ha-psk", "value": lemp_zabbix.psk_digest(PSK)} in create["tags"]


def test_a_host_with_this_psk_needs_no_change_and_the_key_is_never_compared_in_clear():
    answer = {"hostid": "10600", "host": "web1", "tls_connect": "2", "tls_accept": "2",
              "tags": [{"tag": "lemp-ha-psk", "value": lemp_zabbix.psk_digest(PSK)}]}
    assert lemp_zabbix.psk_host_changes(answer, "web1", PSK, "20") == {}


def test_a_new_psk_is_set_keeping_the_hosts_other_tags():
    answer = {"hostid": "10600", "host": "web1", "tls_connect": "2", "tls_accept": "2",
              "tags": [{"tag": "lemp-ha-psk", "value": "0000"}, {"tag": "site", "value": "lab"}]}
    changes = lemp_zabbix.psk_host_changes(answer, "web1", "b" * 64, "20")
    assert changes["tls_psk"] == "b" * 64
    assert {"tag": "site", "value": "lab"} in changes["tags"]


def test_a_host_that_lost_encryption_gets_it_back():
    answer = {"hostid": "1", "host": "db1", "tls_connect": "1", "tls_accept": "1",
              "tags": [{"tag": "lemp-ha-psk", "value": lemp_zabbix.psk_digest(PSK)}]}
    assert lemp_zabbix.psk_host_changes(answer, "db1", PSK, "20") == {"tls_connect": 2, "tls_accept": 2}


def test_a_psk_that_is_not_hex_is_refused_naming_the_key():
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match="zabbix:server:agent_psks:web1"):
        lemp_zabbix.psk_host_changes(None, "web1", "not-a-key", "20")


def test_the_lab_gives_each_machine_its_own_psk_and_mon1_all_of_them(tmp_path, topology):
    spec = REPO / "pillar" / "secrets.spec.yaml"
    folder = lab_secrets.generate(tmp_path, REPO / "pillar" / "topology.yaml", spec)
    # the scaling pool's names too: a pool VM's agent has its key when it joins
    pillars = {name: yaml.safe_load((folder / "minions" / f"{name}.yaml").read_text())
               for name in list(topology["machines"]) + list(topology["pool_machines"])}
    psks = {name: p["zabbix"]["agent"]["psk"] for name, p in pillars.items()}
    assert len(set(psks.values())) == len(psks)
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in psks.values())
    monitors = [m["name"] for m in topology["roles"]["monitor"]["members"]]
    for name, pillar in pillars.items():
        collected = pillar.get("zabbix", {}).get("server", {}).get("agent_psks")
        assert collected == (psks if name in monitors else None), name
    # a second run keeps every key
    lab_secrets.generate(tmp_path, REPO / "pillar" / "topology.yaml", spec)
    assert yaml.safe_load((folder / "minions" / "web1.yaml").read_text())["zabbix"]["agent"]["psk"] == psks["web1"]


def test_machine_keys_are_kept_made_for_new_machines_and_dropped_for_gone_ones():
    kept = lab_secrets.with_machine_keys({"web1": "k1", "old": "k0"}, {"bytes": 16}, ["web1", "web3"],
                                         make_value=lambda size: "x" * size)
    assert kept == {"web1": "k1", "web3": "x" * 16}


# -- users and user groups ----------------------------------------------------


def test_user_groups_get_their_permission_on_every_role_group():
    rights = lemp_zabbix.user_group_rights({"permission": "read"}, {"lemp-ha/web": "22", "lemp-ha": "20"})
    assert rights == [{"permission": 2, "id": "20"}, {"permission": 2, "id": "22"}]
    answer = [{"permission": "2", "id": "22"}, {"permission": "2", "id": "20"}]
    assert lemp_zabbix.rights_signature(answer) == lemp_zabbix.rights_signature(rights)


def test_a_user_as_the_server_has_it_needs_no_change():
    medias = [{"mediatypeid": "1", "sendto": ["alerts@localhost"], "active": 0, "severity": 63,
               "period": "1-7,00:00-24:00"}]
    answer = {"userid": "3", "username": "lab-ops", "roleid": "2", "usrgrps": [{"usrgrpid": "14"}],
              "medias": [{"mediaid": "5", "userid": "3", "mediatypeid": "1", "sendto": ["alerts@localhost"],
                          "active": "0", "severity": "63", "period": "1-7,00:00-24:00"}]}
    assert lemp_zabbix.user_changes(answer, ["14"], "2", medias) == {}
    assert lemp_zabbix.user_changes(answer, ["14", "15"], "2", medias) == {
        "usrgrps": [{"usrgrpid": "14"}, {"usrgrpid": "15"}]}
    assert lemp_zabbix.user_changes(None, ["14"], "2", medias) is None


def test_field_changes_compare_the_api_strings_with_the_wanted_numbers():
    answer = {"smtp_server": "localhost", "smtp_port": "25", "smtp_helo": "localhost",
              "smtp_email": "zabbix@example.com", "status": "0"}
    desired = {"smtp_server": "localhost", "smtp_port": 25, "smtp_helo": "localhost",
               "smtp_email": "zabbix@localhost", "status": 0}
    assert lemp_zabbix.field_changes(answer, desired) == {"smtp_email": "zabbix@localhost"}


def test_each_machine_is_planned_into_its_roles_groups_and_templates():
    roles = {"web": {"group": "lemp-ha/web", "templates": ["Linux", "Nginx"]},
             "lb": {"group": "lemp-ha/lb", "templates": ["Linux", "HAProxy"]}}
    plan = lemp_zabbix.host_role_links({"web1": {"roles": ["web"]}, "both": {"roles": ["web", "lb"]}}, roles)
    assert plan["web1"] == {"groups": ["lemp-ha/web"], "templates": ["Linux", "Nginx"]}
    assert plan["both"] == {"groups": ["lemp-ha/lb", "lemp-ha/web"], "templates": ["HAProxy", "Linux", "Nginx"]}


def test_role_links_are_only_added_never_removed():
    current = {"groups": ["1", "9"], "templates": ["10"]}   # 9: a group set by hand
    wanted = {"groups": {"lemp-ha": "1", "lemp-ha/web": "2"}, "templates": {"Linux": 10, "Nginx": 11}}
    assert lemp_zabbix.link_changes(current, wanted) == {"groups": ["2"], "templates": ["11"]}
    assert lemp_zabbix.link_changes({"groups": ["1", "2"], "templates": ["10", "11"]}, wanted) == \
        {"groups": [], "templates": []}


def test_only_monitored_hosts_named_are_disabled():
    rows = [{"hostid": "1", "host": "Zabbix server", "status": "0"},
            {"hostid": "2", "host": "web1", "status": "0"},
            {"hostid": "3", "host": "old", "status": "1"}]
    assert lemp_zabbix.hosts_to_disable(rows, ["Zabbix server", "old"]) == ["1"]
    assert lemp_zabbix.hosts_to_disable(rows, []) == []


def test_a_host_gets_the_agent_interface_the_passive_templates_need():
    assert lemp_zabbix.agent_interface("10.77.0.31") == {"type": 1, "main": 1, "useip": 1, "ip": "10.77.0.31",
                                                         "dns": "", "port": "10050"}
    assert lemp_zabbix.lacks_agent_interface({"interfaces": []})
    assert lemp_zabbix.lacks_agent_interface(None)
    assert not lemp_zabbix.lacks_agent_interface({"interfaces": [{"interfaceid": "1", "type": "1"}]})


# -- an agent's PSK rotated (orch.rotate_secret zabbix_psk) -------------------------------


def test_the_agent_is_back_once_the_server_has_its_heartbeat_after_the_switch_and_no_open_problem():
    items = [{"itemid": "1", "lastclock": "1010", "triggers": [{"triggerid": "7"}]}]
    assert lemp_zabbix.agent_back_problem("lb2", items, [], 1000) is None
    assert "no heartbeat since 1011" in lemp_zabbix.agent_back_problem("lb2", items, [], 1011)
    assert "problem still open: lb2 is unreachable" in lemp_zabbix.agent_back_problem(
        "lb2", items, [{"eventid": "9", "name": "lb2 is unreachable"}], 1000)
    assert "lemp-ha agent reachable" in lemp_zabbix.agent_back_problem("lb2", [], [], 1000)


def test_the_heartbeat_key_is_the_reachable_templates_which_every_role_links():
    template = (REPO / "salt" / "zabbix" / "server" / "files" / "templates" / "lemp-ha-reachable.yaml").read_text()
    assert f"key: '{lemp_zabbix.HEARTBEAT_KEY}'" in template
    roles = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]["server"]["api"]["roles"]
    assert all(lemp_zabbix.HEARTBEAT_TEMPLATE in r["templates"] for r in roles.values())


class FakeHosts:
    def __init__(self, rows):
        self.rows, self.updates = rows, []

    def get(self, **kw):
        return [r for r in self.rows if r["host"] in kw["filter"]["host"]]

    def update(self, **kw):
        self.updates.append(kw)


def test_a_hosts_new_psk_is_set_through_the_api_and_the_server_reloads_its_cache(monkeypatch):
    hosts = FakeHosts([{"hostid": "10600", "host": "lb2", "tls_connect": "2", "tls_accept": "2",
                        "tags": [{"tag": "lemp-ha-psk", "value": lemp_zabbix.psk_digest(PSK)}]}])
    api = type("Api", (), {"host": hosts, "logout": lambda self: None})()
    reloaded = []
    monkeypatch.setattr(lemp_zabbix, "_login", lambda url, ca: api)
    monkeypatch.setattr(lemp_zabbix, "_reload_server_config_cache", lambda: reloaded.append(1) or [])
    monkeypatch.setattr(lemp_zabbix, "_pillar", lambda key, default=None: {"lb2": "b" * 64})
    out = lemp_zabbix.agent_psk_set("lb2", url="https://mon1/api_jsonrpc.php")
    assert out["changed"] and reloaded == [1]
    assert hosts.updates[0]["hostid"] == "10600" and hosts.updates[0]["tls_psk"] == "b" * 64
    # the host has it: nothing written, no reload
    hosts.rows[0]["tags"] = [{"tag": "lemp-ha-psk", "value": lemp_zabbix.psk_digest("b" * 64)}]
    assert not lemp_zabbix.agent_psk_set("lb2", url="https://mon1/api_jsonrpc.php")["changed"]
    assert len(hosts.updates) == 1 and reloaded == [1]
    # a malformed key is refused before any API call, naming the pillar key
    monkeypatch.setattr(lemp_zabbix, "_pillar", lambda key, default=None: {"lb2": "not-hex"})
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match="zabbix:server:agent_psks:lb2"):
        lemp_zabbix.agent_psk_set("lb2", url="https://mon1/api_jsonrpc.php")
