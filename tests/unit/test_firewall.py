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


VIP, INTERNAL_VIP = "10.77.0.100", "10.77.0.101"
WEB = ["10.77.0.21", "10.77.0.22"]
POOL = ["10.77.0.23", "10.77.0.24", "10.77.0.25", "10.77.0.26"]
ARB1, MON1 = "10.77.0.39", "10.77.0.41"
EVERY_MACHINE = ["10.77.0.10", "10.77.0.11", "10.77.0.12"] + WEB + POOL + ["10.77.0.31", "10.77.0.32", ARB1, MON1]


def every_machine(topology):
    """The topology's machines and the scaling pool's slots, by name."""
    return list(topology["machines"]) + list(topology["pool_machines"])


def scaled_out(raw, name="web3"):
    """The lab topology grown by hand: a slot of the scaling pool made a
    fixed web node (role web) in `machines`."""
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
    assert (lb1["vip"], lb1["internal_vip"]) == (VIP, INTERNAL_VIP)
    for service in ("http", "https"):
        assert rule(lb1, service)["sources"] is None
        assert rule(lb1, service)["daddr"] == VIP
    # the web nodes and every slot of the pool; the binlog archiver (backup, arb1) follows the writer
    assert rule(lb1, "mysql-endpoint")["sources"] == WEB + POOL + [ARB1]
    assert rule(lb1, "mysql-endpoint")["daddr"] == INTERNAL_VIP
    assert rule(lb1, "redis-endpoint")["sources"] == WEB + POOL
    assert rule(lb1, "redis-endpoint")["daddr"] == INTERNAL_VIP
    assert rule(lb1, "vrrp")["sources"] == ["10.77.0.11", "10.77.0.12"]
    assert rule(lb1, "haproxy-stats")["sources"] == ["10.77.0.1"]
    assert rule(lb1, "haproxy-stats")["daddr"] == "10.77.0.11"


def test_the_public_vip_serves_only_http_and_https_and_the_internal_vip_only_the_endpoints(topology, services):
    on = {}
    for name in every_machine(topology):
        for r in rules_of(topology, services, name)["rules"]:
            on.setdefault(r["daddr"], set()).add((name, r["service"], r["proto"], tuple(r["ports"])))
    lbs = {"lb1", "lb2"}
    assert on[VIP] == {(lb, s, "tcp", (p,)) for lb in lbs for s, p in (("http", "80"), ("https", "443"))}
    assert on[INTERNAL_VIP] == {(lb, s, "tcp", (p,)) for lb in lbs
                                for s, p in (("mysql-endpoint", "3306"), ("redis-endpoint", "6379"))}
    # nothing else listens on either: every other rule is on the machine's own address
    own = {m["address"] for m in lemp_firewall.all_machines(topology).values()}
    assert set(on) == own | {VIP, INTERNAL_VIP}


def test_the_matrix_places_each_service_on_its_declared_address(topology, services):
    rows = {(r["group"], r["service"]): r for r in lemp_firewall.port_matrix(topology, services)}
    assert rows[("lb", "https")]["daddr"] == VIP
    assert rows[("lb", "mysql-endpoint")]["to"] == "internal_vip"
    assert rows[("lb", "mysql-endpoint")]["daddr"] == INTERNAL_VIP
    assert rows[("db", "mysql")]["daddr"] is None
    table = lemp_firewall.markdown(lemp_firewall.port_matrix(topology, services))
    assert "| mysql-endpoint | tcp/3306 | internal VIP 10.77.0.101 | web, web_pool, backup |" in table
    assert "| https | tcp/443 | VIP 10.77.0.100 | public | anyone |" in table
    assert "| web_pool (web3, web4, web5, web6) | https-backend |" in table


def test_a_service_on_the_internal_vip_needs_the_topology_to_have_one(topology, services):
    without = copy.deepcopy(topology)
    del without["network"]["internal_vip"]
    with pytest.raises(FirewallError, match="the topology has no network.internal_vip"):
        lemp_firewall.port_matrix(without, services)


def test_the_web_nodes_serve_https_to_the_lbs_and_the_admin_and_gluster_to_its_peers(topology, services):
    web1 = rules_of(topology, services, "web1")
    assert rule(web1, "https-backend")["sources"] == ["10.77.0.1", "10.77.0.11", "10.77.0.12"]
    assert rule(web1, "gluster-bricks")["ports"] == ["49152-60999"]
    # the pool's slots mount the uploads volume as clients: glusterd's volume file, then the bricks
    assert rule(web1, "gluster-bricks")["sources"] == WEB + POOL + [ARB1]
    assert rule(web1, "glusterd")["sources"] == WEB + POOL + [ARB1]
    # the sessions' Redis and Sentinel stay among the fixed web nodes and the LBs: a pool slot runs neither
    assert rule(web1, "redis")["sources"] == ["10.77.0.11", "10.77.0.12"] + WEB
    assert rule(web1, "redis-sentinel")["sources"] == ["10.77.0.11", "10.77.0.12"] + WEB
    assert [r["service"] for r in web1["rules"]] == ["https-backend", "redis", "redis-sentinel", "glusterd",
                                                     "gluster-bricks", "zabbix-agent"]
    assert {r["daddr"] for r in web1["rules"]} == {"10.77.0.21"}


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
    assert arb1["groups"] == ["garbd", "arbitrator", "machines"]
    assert [r["service"] for r in arb1["rules"]] == ["galera-replication", "glusterd", "gluster-bricks",
                                                     "zabbix-agent"]


def test_the_web_tier_serves_glusterd_on_web_and_arbitrator_as_one_rule_each(topology, services):
    # one service name, one shape: web.glusterd and arbitrator.glusterd are the same set
    assert services["web"]["glusterd"] == services["arbitrator"]["glusterd"]
    assert services["web"]["https-backend"]["ports"] == services["web_pool"]["https-backend"]["ports"]


def test_the_monitor_accepts_the_agents_and_logs_of_every_machine_and_its_web_ui_from_the_admin(topology,
                                                                                              services):
    mon1 = rules_of(topology, services, "mon1")
    assert [r["service"] for r in mon1["rules"]] == ["zabbix-trapper", "relp", "zabbix-web", "zabbix-agent"]
    for service, port in (("zabbix-trapper", "10051"), ("relp", "2514")):
        # the pool's slots too: a node scaled out sends its data and logs at once
        assert rule(mon1, service)["sources"] == EVERY_MACHINE, service
        assert rule(mon1, service)["ports"] == [port]
        assert rule(mon1, service)["daddr"] == MON1
    assert rule(mon1, "zabbix-web")["ports"] == ["80", "443"]
    assert rule(mon1, "zabbix-web")["sources"] == ["10.77.0.1"]
    assert mon1["admin_elements"] == ["10.77.0.1"]


def test_every_machine_and_pool_slot_accepts_the_zabbix_agent_port_from_the_monitor_only(topology, services):
    names = every_machine(topology)
    assert len(names) == 13
    for name in names:
        agent = rule(rules_of(topology, services, name), "zabbix-agent")
        assert agent["ports"] == ["10050"], name
        assert agent["sources"] == [MON1], name
        assert agent["daddr"] == lemp_firewall.all_machines(topology)[name]["address"], name


def test_the_db_nodes_accept_the_backup_stream_ssh_from_the_backup_store_only(topology, services):
    for name in ("db1", "db2"):
        stream = rule(rules_of(topology, services, name), "backup-stream")
        assert (stream["proto"], stream["ports"], stream["sources"]) == ("tcp", ["22"], [ARB1]), name
    # no other machine serves it: elsewhere SSH is the admin's only
    for name in every_machine(topology):
        if name not in ("db1", "db2"):
            assert "backup-stream" not in [r["service"] for r in rules_of(topology, services, name)["rules"]], name


def test_the_admin_networks_default_to_the_lab_host_and_come_from_pillar(topology):
    assert lemp_firewall.admin_networks(topology) == ["10.77.0.1"]
    assert lemp_firewall.admin_networks(topology, ["192.0.2.7/32", "198.51.100.0/28"]) == [
        "192.0.2.7", "198.51.100.0/28"]


def test_an_admin_network_holding_machines_merges_into_one_set_element(topology, services):
    web1 = rules_of(topology, services, "web1", admin=["10.77.0.0/24"])
    assert rule(web1, "https-backend")["elements"] == ["10.77.0.0/24"]
    assert web1["admin_elements"] == ["10.77.0.0/24"]


# -- scaling: no edit but the topology -----------------------------------------------


# What a slot of the pool uses once it serves (role web_pool: PHP sessions and
# the cron lock, the database, the uploads volume as a client, the master, the
# monitor), and what it serves.
POOL_CLIENT_OF = {("lb", "mysql-endpoint"), ("lb", "redis-endpoint"), ("web", "glusterd"), ("web", "gluster-bricks"),
                  ("arbitrator", "glusterd"), ("arbitrator", "gluster-bricks"), ("master", "salt"),
                  ("monitor", "zabbix-trapper"), ("monitor", "relp")}


def test_a_pool_slot_is_admitted_before_it_boots_so_scaling_out_web3_needs_no_edit(topology, services):
    web3 = "10.77.0.23"
    admitted = {(row["group"], row["service"]) for row in lemp_firewall.port_matrix(topology, services)
                if row["sources"] is not None and web3 in row["sources"]}
    assert admitted == POOL_CLIENT_OF
    # and every slot alike: the matrix names no slot
    for address in POOL:
        assert {(row["group"], row["service"]) for row in lemp_firewall.port_matrix(topology, services)
                if row["sources"] is not None and address in row["sources"]} == POOL_CLIENT_OF, address
    # web3 serves HTTPS to the LBs and the admin, its agent to the monitor, on its own address only
    w3 = rules_of(topology, services, "web3")
    assert w3["roles"] == ["web_pool"] and w3["groups"] == ["web_pool", "machines"]
    assert [(r["service"], r["sources"], r["daddr"]) for r in w3["rules"]] == [
        ("https-backend", ["10.77.0.1", "10.77.0.11", "10.77.0.12"], web3), ("zabbix-agent", [MON1], web3)]
    w1 = rules_of(topology, services, "web1")
    assert rule(w3, "https-backend")["sources"] == rule(w1, "https-backend")["sources"]


def test_a_slot_enrolled_in_the_pool_changes_no_machines_rules(raw, declared, topology, services):
    # orch.enrol records web3 outside the topology (pillar/enrolled.sls): nothing here
    # depends on it, so no machine needs a new firewall for the node to serve
    again = lemp_topology.validate(copy.deepcopy(raw))
    for name in every_machine(topology):
        assert rules_of(again, lemp_firewall.check_services(declared, again), name) == rules_of(
            topology, services, name), name


def test_a_slot_made_a_fixed_web_node_gains_only_what_web_adds_to_web_pool(raw, declared, topology, services):
    bigger = scaled_out(raw)
    bigger_services = lemp_firewall.check_services(declared, bigger)
    web3 = "10.77.0.23"
    # the services that admit web but not web_pool: the sessions' Redis and Sentinel
    web_only = {(g, s) for g, decl in services.items() for s, spec in decl.items()
                if "web" in spec["from"] and "web_pool" not in spec["from"]}
    assert {s for _, s in web_only} == {"redis", "redis-sentinel"}
    for name in topology["machines"]:
        before = {r["service"]: r for r in rules_of(topology, services, name)["rules"]}
        after = {r["service"]: r for r in rules_of(bigger, bigger_services, name)["rules"]}
        assert set(before) == set(after), name
        for service, old in before.items():
            new = after[service]
            gained = set(new["sources"] or []) - set(old["sources"] or [])
            opens_to_web_only = any((g, service) in web_only for g in rules_of(topology, services, name)["groups"])
            if opens_to_web_only:
                assert gained == {web3}, (name, service)
            else:
                # already admitted as a slot of the pool (or as one of the machines)
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


def test_allowed_pairs_name_the_vips_for_services_bound_there(topology, services):
    pairs = lemp_firewall.allowed_pairs(topology, services)
    assert ("web1", INTERNAL_VIP, "tcp", "3306") in pairs
    assert ("web1", INTERNAL_VIP, "tcp", "6379") in pairs
    assert ("arb1", INTERNAL_VIP, "tcp", "3306") in pairs
    assert ("arb1", INTERNAL_VIP, "tcp", "6379") not in pairs
    assert ("web1", VIP, "tcp", "3306") not in pairs
    assert ("web1", VIP, "tcp", "6379") not in pairs
    assert ("web1", "10.77.0.11", "tcp", "3306") not in pairs
    assert ("mon1", VIP, "tcp", "443") in pairs
    assert ("mon1", INTERNAL_VIP, "tcp", "3306") not in pairs
    assert ("lb1", "10.77.0.31", "tcp", "9200") in pairs
    assert ("web1", "10.77.0.11", "tcp", "26379") in pairs
    assert ("web1", VIP, "tcp", "26379") not in pairs
    assert ("web1", "10.77.0.31", "tcp", "3306") not in pairs
    assert ("arb1", "10.77.0.21", "tcp", "49152-60999") in pairs
    assert ("arb1", "10.77.0.31", "tcp", "22") in pairs
    assert ("web1", "10.77.0.31", "tcp", "22") not in pairs
    # every machine reaches the VIP on 80/443 only, and nothing else on it
    assert {(t, p) for _, t, _, p in pairs if t == VIP} == {(VIP, "80"), (VIP, "443")}
    # the monitor reaches the public VIP, the master, and every other machine's agent; nothing else
    machines = topology["machines"]
    assert {(t, p) for c, t, _, p in pairs if c == "mon1"} == (
        {(VIP, "80"), (VIP, "443"), ("10.77.0.10", "4505"), ("10.77.0.10", "4506")}
        | {(m["address"], "10050") for n, m in machines.items() if n != "mon1"})
    # and every other machine reaches the monitor's trapper and RELP, not its agent nor its web UI
    for client in machines:
        if client != "mon1":
            got = {p for c, t, _, p in pairs if c == client and t == MON1}
            assert got == {"10051", "2514"}, client


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
        (lambda d: d["lb"]["https"].update(to="10.0.0.1"), "ports: lb.https.to '10.0.0.1': one of vip, internal_vip"),
        (lambda d: d["lb"]["https"].update(port=443), "ports: lb.https has unknown key(s) port"),
        (lambda d: d["web"]["redis-sentinel"].update(ports=[26380]),
         "ports: web.redis-sentinel differs from lb.redis-sentinel"),
        (lambda d: d["db"]["mysql"].pop("from"), "ports: db.mysql.from must list who may reach it"),
        (lambda d: d["lb"]["mysql-endpoint"].update(to="internal"),
         "ports: lb.mysql-endpoint.to 'internal': one of vip, internal_vip"),
        (lambda d: d["machines"]["zabbix-agent"].update(**{"from": ["monitor", "pool"]}),
         "ports: machines.zabbix-agent.from: 'pool' is not a role"),
        (lambda d: d.update(everyone={"x": {"proto": "tcp", "ports": [1], "from": ["web"]}}),
         "ports: everyone is not a role of pillar/roles.yaml nor one of garbd, machines"),
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
    # a host address with a prefix is a typo, never the whole network
    (["10.77.0.5/24"], "'10.77.0.5/24' is not an IPv4 address or network (a network is written with its first"),
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
    with pytest.raises(FirewallError, match="web9 is not a machine of the topology nor a slot of its scaling pool"):
        lemp_firewall.machine_rules(topology, services, "web9")


def test_the_groups_stand_for_the_roles_the_pool_and_every_machine(topology):
    members = lemp_firewall.group_members(topology)
    assert members["web_pool"] == ["web3", "web4", "web5", "web6"]
    assert members["web"] == ["web1", "web2"]
    assert members["garbd"] == ["arb1"]
    assert members["machines"] == sorted(every_machine(topology))
    assert lemp_firewall.source_addresses(topology, "machines", []) == EVERY_MACHINE
    assert lemp_firewall.source_addresses(topology, "scaling_pool", []) == POOL
    assert lemp_firewall.source_addresses(topology, "web_pool", []) == POOL


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
