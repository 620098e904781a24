"""The port matrix and each machine's firewall rules (_modules/lemp_firewall.py),
from the repo's topology and from synthetic ones."""

import copy
import subprocess
import sys

import pytest
import yaml

import lemp_firewall
import lemp_topology
from lemp_firewall import FirewallError


@pytest.fixture
def raw(repo):
    return yaml.safe_load((repo / "pillar" / "topology.yaml").read_text())


@pytest.fixture
def declared(repo):
    return yaml.safe_load((repo / "pillar" / "ports.yaml").read_text())


@pytest.fixture
def services(declared, topology):
    return lemp_firewall.check_services(declared, topology)


def rule(rules, service):
    return next(r for r in rules["rules"] if r["service"] == service)


def rules_of(topology, services, name, admin=None):
    return lemp_firewall.machine_rules(topology, services, name, admin)


def scaled_out(raw, name="web3"):
    """The lab topology with a web node taken from the scaling pool."""
    raw = copy.deepcopy(raw)
    address = raw["scaling"]["web"]["pool"].pop(name)
    raw["machines"][name] = {"address": address, "roles": ["web"]}
    return lemp_topology.validate(raw)


# -- the lab's matrix -----------------------------------------------------------------


def test_the_database_nodes_admit_mysql_only_from_the_lbs_and_the_backup_store(topology, services):
    db1 = rules_of(topology, services, "db1")
    assert rule(db1, "mysql")["sources"] == ["10.77.0.11", "10.77.0.12", "10.77.0.39"]
    assert rule(db1, "galera-clustercheck")["sources"] == ["10.77.0.11", "10.77.0.12"]
    assert rule(db1, "galera-sst")["sources"] == ["10.77.0.31", "10.77.0.32"]
    # garbd on arb1 joins the group, but gets no IST nor SST
    assert rule(db1, "galera-replication")["sources"] == ["10.77.0.31", "10.77.0.32", "10.77.0.39"]
    assert rule(db1, "galera-replication")["proto"] == "tcp+udp"
    assert rule(db1, "galera-ist")["sources"] == ["10.77.0.31", "10.77.0.32"]
    # on its own address only, never on the VIP should it move there
    assert {r["daddr"] for r in db1["rules"]} == {"10.77.0.31"}


def test_the_vip_serves_https_to_anyone_and_the_internal_endpoints_only_to_their_clients(topology, services):
    lb1 = rules_of(topology, services, "lb1")
    for service in ("http", "https"):
        assert rule(lb1, service)["sources"] is None
        assert rule(lb1, service)["daddr"] == "10.77.0.100"
    assert rule(lb1, "mysql-endpoint")["sources"] == ["10.77.0.21", "10.77.0.22", "10.77.0.39"]
    assert rule(lb1, "redis-endpoint")["sources"] == ["10.77.0.21", "10.77.0.22"]
    assert rule(lb1, "redis-endpoint")["daddr"] == "10.77.0.100"
    assert rule(lb1, "vrrp")["sources"] == ["10.77.0.11", "10.77.0.12"]
    assert rule(lb1, "haproxy-stats")["sources"] == ["10.77.0.1"]
    assert rule(lb1, "haproxy-stats")["daddr"] == "10.77.0.11"


def test_the_web_nodes_serve_https_to_the_lbs_and_the_admin_and_gluster_to_its_peers(topology, services):
    web1 = rules_of(topology, services, "web1")
    assert rule(web1, "https-backend")["sources"] == ["10.77.0.1", "10.77.0.11", "10.77.0.12"]
    assert rule(web1, "gluster-bricks")["ports"] == ["49152-60999"]
    assert rule(web1, "gluster-bricks")["sources"] == ["10.77.0.21", "10.77.0.22", "10.77.0.39"]
    assert rule(web1, "redis")["sources"] == ["10.77.0.11", "10.77.0.12", "10.77.0.21", "10.77.0.22"]
    assert [r["service"] for r in web1["rules"]] == ["https-backend", "redis", "redis-sentinel", "glusterd",
                                                     "gluster-bricks"]


def test_the_master_admits_every_machine_and_the_scaling_pool_so_a_new_node_can_enrol(topology, services):
    salt = rule(rules_of(topology, services, "salt1"), "salt")
    assert salt["ports"] == ["4505", "4506"]
    for machine in topology["machines"].values():
        assert machine["address"] in salt["sources"]
    assert "10.77.0.26" in salt["sources"]
    assert salt["elements"] != salt["sources"]  # adjoining addresses merged into networks


def test_a_machine_in_two_groups_gets_one_rule_per_service(topology, services):
    # arb1: arbitrator, backup and garbd
    arb1 = rules_of(topology, services, "arb1")
    assert arb1["groups"] == ["garbd", "arbitrator"]
    assert [r["service"] for r in arb1["rules"]] == ["galera-replication", "glusterd", "gluster-bricks"]


def test_the_monitor_accepts_nothing_but_ssh_from_the_admin(topology, services):
    mon1 = rules_of(topology, services, "mon1")
    assert mon1["rules"] == []
    assert mon1["admin_elements"] == ["10.77.0.1"]


def test_the_admin_networks_default_to_the_lab_host_and_come_from_pillar(topology):
    assert lemp_firewall.admin_networks(topology) == ["10.77.0.1"]
    assert lemp_firewall.admin_networks(topology, ["192.0.2.7/32", "198.51.100.0/28"]) == [
        "192.0.2.7", "198.51.100.0/28"]


def test_an_admin_network_holding_machines_merges_into_one_set_element(topology, services):
    web1 = rules_of(topology, services, "web1", admin=["10.77.0.0/24"])
    assert rule(web1, "https-backend")["elements"] == ["10.77.0.0/24"]
    assert web1["admin_elements"] == ["10.77.0.0/24"]


# -- scaling: no edit but the topology -----------------------------------------------


def test_a_scaled_out_web3_opens_exactly_what_it_needs_on_the_other_roles(raw, declared, topology, services):
    bigger = scaled_out(raw)
    bigger_services = lemp_firewall.check_services(declared, bigger)
    web3 = "10.77.0.23"
    admitting_web = {(g, s) for g, decl in services.items() for s, spec in decl.items() if "web" in spec["from"]}
    for name in topology["machines"]:
        before = {r["service"]: r for r in rules_of(topology, services, name)["rules"]}
        after = {r["service"]: r for r in rules_of(bigger, bigger_services, name)["rules"]}
        assert set(before) == set(after), name
        for service, old in before.items():
            new = after[service]
            gained = set(new["sources"] or []) - set(old["sources"] or [])
            opens_to_web = any((g, service) in admitting_web for g in rules_of(topology, services, name)["groups"])
            if service == "salt":
                assert gained == set()  # web3 was already admitted as a pool address
            elif opens_to_web:
                assert gained == {web3}, (name, service)
            else:
                assert gained == set(), (name, service)
            assert set(old["sources"] or []) - set(new["sources"] or []) == set(), (name, service)
    # web3 itself serves what web1 serves, to the same clients plus itself
    w1 = rules_of(bigger, bigger_services, "web1")
    w3 = rules_of(bigger, bigger_services, "web3")
    assert [(r["service"], r["sources"]) for r in w3["rules"]] == [(r["service"], r["sources"]) for r in w1["rules"]]
    assert web3 in rule(w3, "redis")["sources"]


def test_with_an_odd_number_of_db_nodes_the_arbitrator_runs_no_garbd_and_is_not_admitted(raw, declared):
    raw = copy.deepcopy(raw)
    raw["machines"]["db3"] = {"address": "10.77.0.33", "roles": ["db"]}
    three = lemp_topology.validate(raw)
    services = lemp_firewall.check_services(declared, three)
    assert rule(rules_of(three, services, "db1"), "galera-replication")["sources"] == [
        "10.77.0.31", "10.77.0.32", "10.77.0.33"]
    assert "galera-replication" not in [r["service"] for r in rules_of(three, services, "arb1")["rules"]]


def test_allowed_pairs_name_the_vip_for_services_bound_there(topology, services):
    pairs = lemp_firewall.allowed_pairs(topology, services)
    assert ("web1", "10.77.0.100", "tcp", "3306") in pairs
    assert ("web1", "10.77.0.11", "tcp", "3306") not in pairs
    assert ("mon1", "10.77.0.100", "tcp", "443") in pairs
    assert ("mon1", "10.77.0.100", "tcp", "3306") not in pairs
    assert ("lb1", "10.77.0.31", "tcp", "9200") in pairs
    assert ("web1", "10.77.0.11", "tcp", "26379") in pairs
    assert ("web1", "10.77.0.100", "tcp", "26379") not in pairs
    assert ("web1", "10.77.0.31", "tcp", "3306") not in pairs
    assert ("arb1", "10.77.0.21", "tcp", "49152-60999") in pairs
    assert not any(client == "mon1" and target != "10.77.0.100" and port != "4505" and port != "4506"
                   for client, target, _, port in pairs)


# -- bad declarations are refused, naming the key ---------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(cache={"x": {"proto": "tcp", "ports": [1], "from": ["web"]}}),
         "ports: cache is not a role of pillar/roles.yaml"),
        (lambda d: d["db"]["mysql"].update(**{"from": ["web", "internet"]}),
         "ports: db.mysql.from: 'internet' is not a role"),
        (lambda d: d["db"]["mysql"].update(ports=[70000]), "ports: db.mysql.ports: 70000 is outside 1-65535"),
        (lambda d: d["db"]["mysql"].update(ports=["60999-49152"]), "is outside 1-65535 or a range from high to low"),
        (lambda d: d["db"]["mysql"].update(ports=["http"]), "ports: db.mysql.ports: 'http' is not a port"),
        (lambda d: d["db"]["mysql"].update(proto="sctp"), "ports: db.mysql.proto 'sctp' is not one of"),
        (lambda d: d["lb"]["vrrp"].update(ports=[112]), "ports: lb.vrrp: vrrp is an IP protocol and has no ports"),
        (lambda d: d["lb"]["https"].update(**{"from": ["public", "web"]}), "public admits anyone"),
        (lambda d: d["lb"]["https"].update(to="10.0.0.1"), "ports: lb.https.to '10.0.0.1': only 'vip'"),
        (lambda d: d["lb"]["https"].update(port=443), "ports: lb.https has unknown key(s) port"),
        (lambda d: d["web"]["redis-sentinel"].update(ports=[26380]),
         "ports: web.redis-sentinel differs from lb.redis-sentinel"),
        (lambda d: d["db"]["mysql"].pop("from"), "ports: db.mysql.from must list who may reach it"),
    ],
)
def test_a_bad_declaration_is_refused_naming_the_key(declared, topology, change, message):
    declared = copy.deepcopy(declared)
    change(declared)
    with pytest.raises(FirewallError) as err:
        lemp_firewall.check_services(declared, topology)
    assert message in str(err.value)


@pytest.mark.parametrize("admin, message", [
    (["nonsense"], "firewall:lookup:admin_networks: 'nonsense' is not an IPv4 address or network"),
    (["0.0.0.0/0"], "0.0.0.0/0 would admit anyone to SSH"),
    ({"a": 1}, "firewall:lookup:admin_networks must be a list"),
])
def test_bad_admin_networks_are_refused_naming_the_pillar_key(topology, admin, message):
    with pytest.raises(FirewallError) as err:
        lemp_firewall.admin_networks(topology, admin)
    assert message in str(err.value)


def test_a_checked_declaration_checks_again_as_it_is(topology, services):
    # the pillar holds the checked form; the minion checks it again
    assert lemp_firewall.check_services(services, topology) == services


def test_an_unknown_machine_is_refused(topology, services):
    with pytest.raises(FirewallError, match="web9 is not a machine of the topology"):
        lemp_firewall.machine_rules(topology, services, "web9")


# -- the docs ---------------------------------------------------------------------------


def test_the_port_matrix_in_docs_security_md_is_current(repo, topology, services):
    text = (repo / "docs" / "security.md").read_text()
    block = lemp_firewall.docs_block(topology, services)
    assert block in text, ("docs/security.md: the port matrix is stale; regenerate it with "
                           "`python3 _modules/lemp_firewall.py update-docs`")


def test_the_docs_block_is_replaced_in_place():
    text = f"intro\n{lemp_firewall.DOCS_BEGIN}\nold\n{lemp_firewall.DOCS_END}\noutro\n"
    assert lemp_firewall.replace_docs_block(text, "NEW") == "intro\nNEW\noutro\n"
    with pytest.raises(FirewallError, match="no generated port-matrix block"):
        lemp_firewall.replace_docs_block("no block", "NEW")


def test_the_command_line_prints_the_table(repo):
    out = subprocess.run([sys.executable, str(repo / "_modules" / "lemp_firewall.py"), "markdown"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("| served by | service |")
    assert "| db (db1, db2) | galera-sst | tcp/4444 |" in out
