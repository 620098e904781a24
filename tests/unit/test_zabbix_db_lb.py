"""Issue #10, the database and load-balancer tiers: the Galera size the
topology wants, the macros Salt publishes to Zabbix, the agent's
UserParameters, and the repo's templates for Galera, garbd, the VIP, the
services, TLS expiry and reachability (salt/zabbix/server/files/templates)."""

import copy
import pathlib
import re

import pytest
import yaml

import lemp_topology
import lemp_zabbix

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]
TEMPLATES_DIR = REPO / "salt" / "zabbix" / "server" / "files" / "templates"
ROLES = yaml.safe_load((REPO / "pillar" / "roles.yaml").read_text())


# this part's template files (the other parts' have their own tests)
FILES = ["lemp-ha-galera.yaml", "lemp-ha-garbd.yaml", "lemp-ha-vip.yaml", "lemp-ha-services.yaml",
         "lemp-ha-tls.yaml", "lemp-ha-reachable.yaml"]


def exports():
    return {name: yaml.safe_load((TEMPLATES_DIR / name).read_text())["zabbix_export"] for name in FILES}


def templates():
    return {t["template"]: t for doc in exports().values() for t in doc["templates"]}


def topology_with(machines):
    data = {"network": {"subnet": "10.77.0.0/24", "host": "10.77.0.1", "bridge": "br0", "vip": "10.77.0.100",
                        "internal_vip": "10.77.0.101", "domain": "lab.example"},
            "machines": machines}
    return lemp_topology.validate(data, ROLES)


BASE = {"salt1": {"address": "10.77.0.10", "roles": ["master"]},
        "lb1": {"address": "10.77.0.11", "roles": ["lb"]},
        "mon1": {"address": "10.77.0.41", "roles": ["monitor"]}}


# -- the Galera size ------------------------------------------------------------


def test_the_lab_cluster_counts_two_data_nodes_and_the_voting_garbd(topology):
    # db1, db2 and garbd on arb1: wsrep_cluster_size 3 when healthy
    assert lemp_zabbix.galera_expected_size(topology) == 3


def test_an_odd_number_of_data_nodes_runs_no_garbd_so_the_arbitrator_does_not_count():
    topo = topology_with(dict(BASE, db1={"address": "10.77.0.31", "roles": ["db"]},
                              db2={"address": "10.77.0.32", "roles": ["db"]},
                              db3={"address": "10.77.0.33", "roles": ["db"]},
                              arb1={"address": "10.77.0.39", "roles": ["arbitrator"]}))
    assert topo["garbd"] == []
    assert lemp_zabbix.galera_expected_size(topo) == 3


def test_four_data_nodes_and_an_arbitrator_make_five():
    dbs = {f"db{i}": {"address": f"10.77.0.3{i}", "roles": ["db"]} for i in range(1, 5)}
    topo = topology_with(dict(BASE, arb1={"address": "10.77.0.39", "roles": ["arbitrator"]}, **dbs))
    assert lemp_zabbix.galera_expected_size(topo) == 5


def test_a_topology_without_db_has_no_galera_size_and_says_where_to_look():
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match="no machine with role db.*topology.yaml"):
        lemp_zabbix.galera_expected_size(topology_with(BASE))


def test_global_macros_carry_the_size_the_vip_and_the_domain(topology):
    assert lemp_zabbix.global_macros(topology) == {
        "{$LEMP.GALERA.SIZE}": "3", "{$LEMP.VIP}": topology["network"]["vip"],
        "{$LEMP.DOMAIN}": topology["network"]["domain"]}
    assert "{$LEMP.GALERA.SIZE}" not in lemp_zabbix.global_macros(topology_with(BASE))


# -- macros ---------------------------------------------------------------------


def test_the_db_hosts_get_the_mysql_templates_dsn_and_user_and_no_one_else(topology):
    checked = lemp_zabbix.validate(copy.deepcopy(DEFAULTS["server"]["api"]))
    plan = lemp_zabbix.host_macros(topology["machines"], checked["roles"])
    dbs = {m["name"] for m in topology["roles"]["db"]["members"]}
    for host, macros in plan.items():
        mysql = {k: v for k, v in macros.items() if k.startswith("{$MYSQL.")}
        if host in dbs:
            assert mysql == {"{$MYSQL.DSN}": "unix:/run/mysqld/mysqld.sock", "{$MYSQL.USER}": "zabbix",
                             "{$MYSQL.BUFF_UTIL.MIN.WARN}": "0"}, host
        else:
            assert not mysql, host


def test_the_mysql_user_is_the_one_galera_creates_for_the_agent():
    galera = yaml.safe_load((REPO / "salt" / "galera" / "defaults.yaml").read_text())["galera"]
    assert DEFAULTS["server"]["api"]["roles"]["db"]["macros"]["{$MYSQL.USER}"] == galera["zabbix_agent"]["user"]
    users = (REPO / "salt" / "galera" / "users.sls").read_text()
    block = users[users.index("galera-zabbix-agent-db-user-present"):]
    assert "unix_socket: True" in block and "grants: {}" in block  # no password, USAGE only


def test_global_macros_as_the_server_has_them_need_no_change_and_others_are_left_alone():
    rows = [{"globalmacroid": "3", "macro": "{$LEMP.VIP}", "value": "10.77.0.100"},
            {"globalmacroid": "4", "macro": "{$SOMEONE.ELSES}", "value": "x"}]
    assert lemp_zabbix.global_macro_changes(rows, {"{$LEMP.VIP}": "10.77.0.100"}) == ([], [])


def test_a_missing_global_macro_is_created_and_a_changed_one_updated_by_its_id():
    rows = [{"globalmacroid": "3", "macro": "{$LEMP.GALERA.SIZE}", "value": "3"}]
    create, update = lemp_zabbix.global_macro_changes(rows, {"{$LEMP.GALERA.SIZE}": "5", "{$LEMP.VIP}": "10.0.0.9"})
    assert create == [{"macro": "{$LEMP.VIP}", "value": "10.0.0.9"}]
    assert update == [{"globalmacroid": "3", "macro": "{$LEMP.GALERA.SIZE}", "value": "5"}]


# -- the agent's UserParameters -------------------------------------------------------


def test_an_lb_checks_whether_it_holds_the_topologys_vip(topology):
    lines = lemp_zabbix.agent_user_parameters(["lb"], DEFAULTS["agent"]["user_parameters"],
                                              {"vip": topology["network"]["vip"]})
    assert lines == [f"UserParameter=lemp.vip.held,ip -o -4 addr show to {topology['network']['vip']}/32 | wc -l"]


def test_a_machine_whose_roles_need_no_userparameter_gets_none():
    assert lemp_zabbix.agent_user_parameters(["db", "monitor"], DEFAULTS["agent"]["user_parameters"],
                                             {"vip": "10.0.0.1"}) == []


def test_a_command_naming_an_unknown_fact_is_refused_naming_the_key():
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match="user_parameters:lb:k names {nope}"):
        lemp_zabbix.agent_user_parameters(["lb"], {"lb": {"k": "echo {nope}"}}, {"vip": "1"})


def test_one_key_with_two_commands_is_refused():
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match="k has two commands"):
        lemp_zabbix.agent_user_parameters(["lb", "web"], {"lb": {"k": "a"}, "web": {"k": "b"}}, {})


# -- the templates ----------------------------------------------------------------------

UUID4 = re.compile(r"^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$")


def test_every_new_uuid_is_a_uuid4_as_zabbix_60_import_wants():
    for name, doc in exports().items():
        for template in doc["templates"]:
            uuids = [template["uuid"]] + [i["uuid"] for i in template["items"]]
            uuids += [t["uuid"] for i in template["items"] for t in i.get("triggers", [])]
            assert all(UUID4.match(u) for u in uuids), (name, template["template"])


def test_every_role_template_exists_in_the_repo_or_ships_with_zabbix():
    repo = {t["template"] for path in TEMPLATES_DIR.glob("*.yaml")
            for t in yaml.safe_load(path.read_text())["zabbix_export"]["templates"]}
    shipped = set(DEFAULTS["server"]["api"]["shipped_templates"])
    for role, decl in DEFAULTS["server"]["api"]["roles"].items():
        for name in decl["templates"]:
            assert name in repo or name in shipped, (role, name)


def test_triggers_and_dependent_items_name_only_their_own_template_and_keys():
    for name, template in templates().items():
        keys = {i["key"] for i in template["items"]}
        for item in template["items"]:
            if item["type"] == "DEPENDENT":
                assert item["master_item"]["key"] in keys, (name, item["key"])
            for trigger in item.get("triggers", []):
                expression = trigger["expression"]
                refs = re.findall(r"\(/([^/]+)/", expression)
                assert refs and set(refs) == {name}, expression
                for ref in re.finditer(re.escape(f"(/{name}/"), expression):
                    rest = expression[ref.end():]
                    assert rest.startswith(item["key"]) and rest[len(item["key"])] in ",)", expression


def test_no_repo_template_repeats_a_key_of_another_linked_to_the_same_role():
    ours = templates()
    for role, decl in DEFAULTS["server"]["api"]["roles"].items():
        keys = [i["key"] for n in decl["templates"] if n in ours for i in ours[n]["items"]]
        assert len(keys) == len(set(keys)), role


def test_the_galera_master_item_is_not_the_shipped_mysql_templates_key():
    # the shipped template's key is quoted; one host cannot have one key twice
    galera = templates()["lemp-ha Galera node"]
    master = next(i for i in galera["items"] if i["type"] == "ZABBIX_ACTIVE")
    assert master["key"] != 'mysql.get_status_variables["{$MYSQL.DSN}","{$MYSQL.USER}","{$MYSQL.PASSWORD}"]'
    assert master["key"].startswith("mysql.get_status_variables[")


def test_the_galera_size_trigger_reads_the_global_macro_that_the_template_does_not_shadow():
    galera = templates()["lemp-ha Galera node"]
    assert "{$LEMP.GALERA.SIZE}" not in {m["macro"] for m in galera.get("macros", [])}
    expressions = [t["expression"] for i in galera["items"] for t in i.get("triggers", [])]
    assert any("{$LEMP.GALERA.SIZE}" in e for e in expressions)


def test_the_vip_watch_sums_the_lb_roles_host_group():
    checked = lemp_zabbix.validate(copy.deepcopy(DEFAULTS["server"]["api"]))
    watch = templates()["lemp-ha VIP watch"]["items"][0]
    assert f'[group="{checked["roles"]["lb"]["group"]}"]' in watch["params"]
    holder = templates()["lemp-ha VIP holder"]["items"][0]
    assert holder["key"] in watch["params"]
    assert holder["key"] in DEFAULTS["agent"]["user_parameters"]["lb"]
    names = {t["name"] for t in watch["triggers"]}
    assert any(n.startswith("No load balancer holds the VIP") for n in names)
    assert any(n.startswith("Split brain") for n in names)


SERVICE_UNITS = {  # the service template -> the formula's own service name
    "nginx": ("nginx", "service"), "haproxy": ("haproxy", "service"), "keepalived": ("keepalived", "service"),
    "mariadb": ("galera", "service"), "garbd": ("garbd", "service"),
}


@pytest.mark.parametrize("service, formula", sorted(SERVICE_UNITS.items()))
def test_a_service_template_watches_the_unit_its_formula_runs(service, formula):
    component, key = formula
    defaults = yaml.safe_load((REPO / "salt" / component / "defaults.yaml").read_text())[component]
    item = templates()[f"lemp-ha service {service}"]["items"][0]
    assert item["key"] == f"systemd.unit.info[{defaults[key]}.service]"


def test_the_php_fpm_unit_follows_the_formulas_php_version():
    version = yaml.safe_load((REPO / "salt" / "phpfpm" / "defaults.yaml").read_text())["phpfpm"]["version"]
    template = templates()["lemp-ha service php-fpm"]
    assert {m["macro"]: m["value"] for m in template["macros"]}["{$LEMP.PHPFPM.UNIT}"] == f"php{version}-fpm.service"


def test_each_role_watches_exactly_the_services_its_states_run():
    runs = {"haproxy": "haproxy", "keepalived": "keepalived", "galera": "mariadb", "garbd": "garbd",
            "nginx": "nginx", "phpfpm": "php-fpm", "redis": "redis", "redis.sentinel": "sentinel",
            "glusterfs": "glusterd", "glusterfs.arbiter": "glusterd", "zabbix.server": ["nginx", "php-fpm"]}
    for role, decl in ROLES.items():
        wanted = set()
        for state in decl.get("states") or []:
            found = runs.get(state, [])
            wanted.update([found] if isinstance(found, str) else found)
        if role == "master":
            wanted.add("salt-master")
        linked = {n[len("lemp-ha service "):] for n in DEFAULTS["server"]["api"]["roles"][role]["templates"]
                  if n.startswith("lemp-ha service ")}
        assert linked == wanted, role


def test_every_role_gets_the_30_second_unreachable_check():
    for role, decl in DEFAULTS["server"]["api"]["roles"].items():
        assert "lemp-ha agent reachable" in decl["templates"], role
    item = templates()["lemp-ha agent reachable"]["items"][0]
    macros = {m["macro"]: m["value"] for m in templates()["lemp-ha agent reachable"]["macros"]}
    assert item["delay"] == "10s" and macros["{$LEMP.AGENT.NODATA}"] == "30s"


def test_service_and_vip_problems_open_within_30_seconds_of_the_fault():
    # interval x readings needed <= 20 s, leaving the agent's BufferSend and the server's processing
    def seconds(delay):
        return int(delay.rstrip("s"))
    for name, template in templates().items():
        if name.startswith("lemp-ha service ") or name in ("lemp-ha VIP watch", "lemp-ha VIP holder"):
            for item in template["items"]:
                assert seconds(item["delay"]) <= 10, (name, item["key"])
                for trigger in item.get("triggers", []):
                    count = re.search(r",#(\d)", trigger["expression"])
                    assert seconds(item["delay"]) * int(count.group(1) if count else 1) <= 20, trigger["expression"]
