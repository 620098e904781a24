"""The topology validator: the lab, the pillar and the tests all trust it."""

import copy
import subprocess
import sys

import pytest

import lemp_topology
from lemp_topology import TopologyError


@pytest.fixture
def raw(repo):
    import yaml

    return yaml.safe_load((repo / "pillar" / "topology.yaml").read_text())


def test_the_lab_topology_is_valid_and_has_one_master(topology):
    assert topology["master"] == "salt1"
    assert lemp_topology.with_role(topology, "web") == ["web1", "web2"]
    assert topology["machines"]["web1"]["mac"] == "02:4c:48:4d:00:15"


def test_every_role_of_the_brief_is_filled(topology):
    for role in ("master", "lb", "web", "db", "arbitrator", "monitor"):
        assert lemp_topology.with_role(topology, role), role


def test_macs_are_unique_and_stable(topology):
    macs = [m["mac"] for m in topology["machines"].values()]
    assert len(set(macs)) == len(macs)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t["machines"]["web2"].update(address="10.77.0.21"),
         "web2 address 10.77.0.21 is already used by web1"),
        (lambda t: t["machines"]["web2"].update(address="10.77.0.100"),
         "web2 address 10.77.0.100 is already used by network.vip"),
        (lambda t: t["machines"]["web2"].update(roles=["web", "cache"]),
         "web2 has unknown role 'cache'"),
        (lambda t: t["machines"].setdefault("web3", {"address": "10.77.1.23", "roles": ["web"]}),
         "web3 address 10.77.1.23 is outside 10.77.0.0/24"),
        (lambda t: t["machines"]["db1"].update(address="10.77.0.300"),
         "db1 address '10.77.0.300' is not an IPv4 address"),
        (lambda t: t["machines"]["lb1"].pop("roles"),
         "lb1 needs a non-empty list of roles"),
        (lambda t: t["machines"]["lb1"].update(roles=["master"]),
         "exactly one machine must have role 'master', found 2 (salt1, lb1)"),
        (lambda t: t["machines"].setdefault("Web_3", {"address": "10.77.0.23", "roles": ["web"]}),
         "machine name 'Web_3' is not a valid host name"),
        (lambda t: t["network"].update(vip="10.78.0.100"),
         "network.vip address 10.78.0.100 is outside 10.77.0.0/24"),
        (lambda t: t["network"].pop("subnet"), "network.subnet is missing"),
    ],
    ids=["duplicate", "vip-clash", "unknown-role", "outside-subnet", "bad-address",
         "no-roles", "two-masters", "bad-name", "vip-outside", "no-subnet"],
)
def test_bad_topology_is_refused_naming_the_entry(raw, change, message):
    bad = copy.deepcopy(raw)
    change(bad)
    with pytest.raises(TopologyError) as err:
        lemp_topology.validate(bad)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t["network"].pop("internal_vip"), "topology: network.internal_vip is missing"),
        (lambda t: t["network"].update(internal_vip="10.77.0.100"),
         "network.internal_vip address 10.77.0.100 is already used by network.vip"),
        (lambda t: t["network"].update(internal_vip="10.77.0.1"),
         "network.internal_vip address 10.77.0.1 is already used by network.host"),
        (lambda t: t["machines"]["db1"].update(address="10.77.0.101"),
         "db1 address 10.77.0.101 is already used by network.internal_vip"),
        (lambda t: t["scaling"]["web"]["pool"].update(web3="10.77.0.101"),
         "web3 address 10.77.0.101 is already used by network.internal_vip"),
        (lambda t: t["network"].update(internal_vip="10.78.0.101"),
         "network.internal_vip address 10.78.0.101 is outside 10.77.0.0/24"),
        (lambda t: t["network"].update(internal_vip="db-endpoint"),
         "network.internal_vip 'db-endpoint' is not an IPv4 address"),
    ],
    ids=["missing", "vip-clash", "host-clash", "machine-clash", "pool-clash", "outside-subnet", "not-an-address"],
)
def test_the_internal_vip_is_required_and_claimed_like_the_vip(raw, change, message):
    bad = copy.deepcopy(raw)
    change(bad)
    with pytest.raises(TopologyError) as err:
        lemp_topology.validate(bad)
    assert message in str(err.value)


def test_the_lab_internal_vip_sits_beside_the_vip_and_is_carried_by_the_derived_topology(topology):
    assert topology["network"]["vip"] == "10.77.0.100"
    assert topology["network"]["internal_vip"] == "10.77.0.101"
    # the pillar holds the derived form, and the minions validate it again
    assert lemp_topology.validate(copy.deepcopy(topology))["network"]["internal_vip"] == "10.77.0.101"


def test_command_line_prints_the_error_and_fails(tmp_path, raw):
    raw["machines"]["web2"]["address"] = "10.77.0.21"
    import yaml

    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(raw))
    script = lemp_topology.__file__
    proc = subprocess.run([sys.executable, script, "json", str(path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "web2 address 10.77.0.21 is already used by web1" in proc.stderr
    assert proc.stdout == ""


def test_command_line_exports_json_with_derived_fields(repo):
    import json

    proc = subprocess.run(
        [sys.executable, lemp_topology.__file__, "json", str(repo / "pillar" / "topology.yaml")],
        capture_output=True, text=True, check=True,
    )
    data = json.loads(proc.stdout)
    assert data["machines"]["lb1"]["mac"].startswith("02:")
    assert data["network"]["prefixlen"] == 24


@pytest.mark.parametrize("subnet, pattern", [
    ("10.77.0.0/24", "10.77.0.%"), ("10.77.0.0/16", "10.77.%"), ("10.0.0.0/8", "10.%"),
    ("10.77.0.0/25", "10.77.0.0/255.255.255.128"),
])
def test_the_database_account_host_pattern_covers_the_subnet(subnet, pattern):
    assert lemp_topology.mysql_hosts(subnet) == pattern


def test_the_derived_topology_lists_every_machine_once_for_the_hosts_file(topology):
    assert [h["name"] for h in topology["hosts"]] == list(topology["machines"])
    assert topology["hosts"][0] == {"name": "salt1", "address": "10.77.0.10"}
    assert topology["network"]["mysql_hosts"] == "10.77.0.%"


def test_the_derived_topology_names_members_master_and_garbd(topology):
    assert topology["master"] == "salt1" and topology["master_address"] == "10.77.0.10"
    assert topology["roles"]["web"]["members"] == [{"name": "web1", "address": "10.77.0.21"},
                                                   {"name": "web2", "address": "10.77.0.22"}]
    # two data nodes: the arbitrator runs garbd
    assert [m["name"] for m in topology["garbd"]] == ["arb1"]
    assert topology["machines"]["db1"]["server_id"] == 172818463  # 10.77.0.31 as a 32-bit number
    assert topology["machines"]["web1"]["states"][0] == "common"


def test_garbd_only_with_an_even_number_of_data_nodes(raw):
    odd = copy.deepcopy(raw)
    odd["machines"]["db3"] = {"address": "10.77.0.33", "roles": ["db"]}
    assert lemp_topology.validate(odd)["garbd"] == []


def test_a_derived_topology_validates_again_unchanged(topology):
    # the pillar holds the derived form; lemp_topology.check validates it again
    assert lemp_topology.validate(copy.deepcopy(topology)) == topology


def test_the_web_scaling_pool_is_derived(topology):
    scaling = topology["scaling"]["web"]
    assert (scaling["min"], scaling["max"]) == (2, 6)
    assert [(e["name"], e["address"]) for e in scaling["pool"]][:1] == [("web3", "10.77.0.23")]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s["pool"].update(web3="10.77.1.23"), "web3 address 10.77.1.23 is outside 10.77.0.0/24"),
        (lambda s: s["pool"].update(web3="10.77.0.21"), "web3 address 10.77.0.21 is already used by web1"),
        (lambda s: s["pool"].update(web1="10.77.0.29"), "scaling pool name web1 is already a machine"),
        (lambda s: s.update(min=3, max=2), "1 <= min <= max (min 3, max 2)"),
        (lambda s: s.update(max=9), "scaling.web.max 9 is more than the 2 web machines plus the 4 names"),
        (lambda s: s.update(min=3), "scaling.web.min 3 is more than the 2 web machines"),
    ],
    ids=["outside-subnet", "address-clash", "name-clash", "min-above-max", "max-above-pool", "min-above-web"],
)
def test_a_bad_scaling_pool_is_refused_naming_the_entry(raw, change, message):
    bad = copy.deepcopy(raw)
    change(bad["scaling"]["web"])
    with pytest.raises(TopologyError) as err:
        lemp_topology.validate(bad)
    assert message in str(err.value)


def test_a_role_in_a_tier_orch_site_does_not_apply_is_refused(raw):
    roles = lemp_topology.load_yaml(lemp_topology.ROLES_FILE)
    roles["monitor"]["tier"] = "monitor"
    with pytest.raises(TopologyError) as err:
        lemp_topology.validate(raw, roles)
    assert "roles: monitor.tier 'monitor' is not a tier of orch.site" in str(err.value)


def test_every_tier_is_one_orch_site_applies(repo):
    site = (repo / "orch" / "site.sls").read_text()
    for tier in lemp_topology.TIERS:
        assert f"tier('{tier}'" in site, f"orch/site.sls applies no tier {tier!r}"


def test_the_machines_applying_a_state_are_those_whose_roles_name_it(topology):
    sentinels = lemp_topology.applying(topology, "redis.sentinel")
    assert [m["name"] for m in sentinels] == ["lb1", "lb2", "web1", "web2"]
    assert sentinels[0] == {"name": "lb1", "address": "10.77.0.11"}
    assert lemp_topology.applying(topology, "no.such.state") == []
