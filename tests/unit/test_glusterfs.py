"""The uploads volume's bricks and who may mount it (_modules/lemp_glusterfs.py),
from the repo's topology and from synthetic ones; and the option state
(_states/lemp_glusterfs.py) against a sample volume that answers as the
gluster CLI does."""

import copy
import shlex

import pytest
import yaml

import lemp_topology
from by_path import load  # tests/unit/by_path.py

mod = load("lemp_glusterfs_modules", "_modules/lemp_glusterfs.py")
state = load("lemp_glusterfs_states", "_states/lemp_glusterfs.py")

POOL = ["10.77.0.23", "10.77.0.24", "10.77.0.25", "10.77.0.26"]


@pytest.fixture
def raw(repo):
    return yaml.safe_load((repo / "pillar" / "topology.yaml").read_text())


def scaled_out(raw, name="web3"):
    """The lab topology with a web node taken from the scaling pool."""
    raw = copy.deepcopy(raw)
    address = raw["scaling"]["web"]["pool"].pop(name)
    raw["machines"][name] = {"address": address, "roles": ["web"]}
    return lemp_topology.validate(raw)


# -- who holds a brick, who mounts ------------------------------------------------------


def test_the_lab_volume_has_a_brick_on_each_web_node_and_the_arbiter_on_arb1(topology):
    shape = mod.layout(topology)
    assert [m["name"] for m in shape["servers"]] == ["web1", "web2"]
    assert shape["arbiter"] == {"name": "arb1", "address": "10.77.0.39"}
    assert [m["address"] for m in shape["brick_hosts"]] == ["10.77.0.21", "10.77.0.22", "10.77.0.39"]


def test_the_bricks_admit_the_brick_holders_and_every_slot_of_the_scaling_pool(topology):
    assert mod.auth_allow(topology).split(",") == ["10.77.0.21", "10.77.0.22", "10.77.0.39"] + POOL


def test_no_other_machine_of_the_lab_is_admitted(topology):
    admitted = {m["name"] for m in mod.clients(topology)}
    for name in ("salt1", "lb1", "lb2", "db1", "db2", "mon1"):
        assert name not in admitted
    assert admitted == {"web1", "web2", "arb1", "web3", "web4", "web5", "web6"}


def test_a_node_scaled_into_the_topology_keeps_its_access_and_the_arbitrator_loses_its_brick(raw):
    """Three web nodes: a plain replica 3, no arbiter brick, so arb1 has no
    reason to reach the volume; web3 moved from the pool to the machines."""
    topology = scaled_out(raw)
    shape = mod.layout(topology)
    assert shape["arbiter"] is None
    assert [m["name"] for m in shape["brick_hosts"]] == ["web1", "web2", "web3"]
    assert mod.auth_allow(topology).split(",") == ["10.77.0.21", "10.77.0.22", "10.77.0.23"] + POOL[1:]


def test_a_single_web_node_is_refused_naming_the_fix(raw):
    raw = copy.deepcopy(raw)
    raw["machines"]["web2"]["roles"] = ["monitor"]
    raw["scaling"]["web"].update(min=1, max=5)
    with pytest.raises(mod.GlusterError, match=r"at least 2 web nodes, topology has 1 .*give role web to a second"):
        mod.layout(lemp_topology.validate(raw))


def test_the_tls_identities_are_the_certificate_cns_of_the_admitted_machines(topology):
    names = mod.ssl_allow(topology).split(",")
    assert names[:3] == ["web1.lab.lemp-ha.internal", "web2.lab.lemp-ha.internal", "arb1.lab.lemp-ha.internal"]
    assert names[3:] == [f"web{n}.lab.lemp-ha.internal" for n in (3, 4, 5, 6)]


def test_the_cn_is_the_one_lab_secrets_gives_the_certificate(topology):
    """tools/lab/lab_secrets.py: -subj /CN=<first DNS name>, [name.domain, name]."""
    domain = topology["network"]["domain"]
    assert mod.common_name(topology, "web1") == f"web1.{domain}"
    assert mod.common_name({"network": {}}, "web1") == "web1"


def test_tls_adds_its_options_to_the_pillars_and_auth_allow(topology):
    plain = mod.volume_options(topology, {"network.ping-timeout": 5}, tls=False)
    assert plain == {"network.ping-timeout": "5", "auth.allow": mod.auth_allow(topology)}
    secured = mod.volume_options(topology, {"network.ping-timeout": 5}, tls=True)
    assert secured["client.ssl"] == secured["server.ssl"] == "on"
    assert secured["auth.ssl-allow"] == mod.ssl_allow(topology)


@pytest.mark.parametrize("option", ["auth.allow", "server.ssl"])
def test_the_pillar_cannot_set_who_mounts_nor_tls_naming_the_key_and_the_fix(topology, option):
    with pytest.raises(mod.GlusterError, match=rf"glusterfs:lookup:options: {option} is computed from the "
                                               r"topology .*glusterfs:lookup:tls:enabled"):
        mod.volume_options(topology, {option: "*"}, tls=False)


# -- gluster's output --------------------------------------------------------------------

VOLUME_GET = """Option                                   Value                                   
------                                   -----                                   
auth.allow                               10.77.0.22,10.77.0.21                   
"""


def test_volume_get_output_is_read_as_option_and_value():
    assert mod.parse_volume_get(VOLUME_GET) == {"auth.allow": "10.77.0.22,10.77.0.21"}
    assert mod.parse_volume_get("Option Value\n------ -----\nclient.ssl off\nnfs.rpc-auth-allow all\n") == {
        "client.ssl": "off", "nfs.rpc-auth-allow": "all"}
    assert mod.parse_volume_get("") == {}


@pytest.mark.parametrize("current, wanted, same", [
    ("10.77.0.22,10.77.0.21", "10.77.0.21,10.77.0.22", True),   # a list in another order
    ("10.77.0.21,10.77.0.22", "10.77.0.21", False),
    ("*", "10.77.0.21,10.77.0.22", False),                       # gluster's default: anyone
    ("enable", "on", True), ("off", "on", False), ("True", "on", True),
    ("5", "5", True), ("42", "5", False),
    (None, "5", False),
])
def test_a_value_is_the_same_whatever_gluster_spells_it(current, wanted, same):
    assert mod.same_value(current, wanted) is same


# -- the state, against a sample volume -----------------------------------------------------


class Volume:
    """A volume as the gluster CLI shows it: `volume get` prints the table,
    `volume set` stores; every set is recorded."""

    def __init__(self, name="uploads", options=None, exists=True):
        self.name, self.exists = name, exists
        self.options = {"auth.allow": "*", "client.ssl": "off", **(options or {})}
        self.sets = []

    def run_all(self, cmd, python_shell=False, ignore_retcode=True):
        argv = cmd if isinstance(cmd, list) else shlex.split(cmd)
        assert argv[:2] == ["gluster", "--mode=script"], argv
        verb, volume, option = argv[3], argv[4], argv[5]
        if not self.exists or volume != self.name:
            return {"retcode": 1, "stdout": "", "stderr": f"volume get option: failed: Volume {volume} does not exist"}
        if verb == "set":
            self.sets.append((option, argv[6]))
            self.options[option] = argv[6]
            return {"retcode": 0, "stdout": "volume set: success", "stderr": ""}
        return {"retcode": 0, "stdout": f"Option Value\n------ -----\n{option} {self.options.get(option, '(null)')}\n",
                "stderr": ""}


def _wire(volume, test=False):
    mod.__salt__ = {"cmd.run_all": volume.run_all}
    state.__salt__ = {f"lemp_glusterfs.{f}": getattr(mod, f) for f in ("option_get", "option_set", "same_value")}
    state.__opts__ = {"test": test}


def test_auth_allow_is_set_once_then_a_second_run_changes_nothing(topology):
    volume = Volume()
    _wire(volume)
    wanted = mod.auth_allow(topology)
    first = state.option("auth.allow", "uploads", wanted)
    assert first["result"] is True, first
    assert first["changes"] == {"auth.allow": {"old": "*", "new": wanted}}
    again = state.option("auth.allow", "uploads", wanted)
    assert again["result"] is True and again["changes"] == {}, again
    assert volume.sets == [("auth.allow", wanted)]


def test_a_list_in_another_order_is_left_alone(topology):
    wanted = mod.auth_allow(topology)
    volume = Volume(options={"auth.allow": ",".join(reversed(wanted.split(",")))})
    _wire(volume)
    assert state.option("auth.allow", "uploads", wanted)["changes"] == {}
    assert volume.sets == []


def test_test_mode_says_what_would_change_and_sets_nothing():
    volume = Volume()
    _wire(volume, test=True)
    ret = state.option("client.ssl", "uploads", "on")
    assert ret["result"] is None and ret["changes"] == {"client.ssl": {"old": "off", "new": "on"}}
    assert volume.sets == []
    missing = Volume(exists=False)
    _wire(missing, test=True)
    ret = state.option("auth.allow", "uploads", "10.77.0.21")
    assert ret["result"] is None and "would be set" in ret["comment"]


def test_a_missing_volume_fails_with_glusters_words():
    _wire(Volume(exists=False))
    ret = state.option("auth.allow", "uploads", "10.77.0.21")
    assert ret["result"] is False and "Volume uploads does not exist" in ret["comment"]


def test_a_set_refused_for_another_peers_transaction_is_retried_until_it_passes(topology):
    volume = Volume()
    _wire(volume)
    answers = [{"retcode": 1, "stdout": "", "stderr": "volume set: failed: Another transaction is in progress for "
                "uploads. Please try again after some time."}]
    real = volume.run_all
    mod.__salt__ = {"cmd.run_all": lambda cmd, **kw: answers.pop() if answers and cmd[3] == "set" else real(cmd, **kw)}
    ret = state.option("auth.allow", "uploads", "10.77.0.21")
    assert ret["result"] is True, ret
    assert volume.sets == [("auth.allow", "10.77.0.21")]


def test_a_cluster_lock_held_past_the_wait_fails_with_glusters_words():
    busy = {"retcode": 1, "stdout": "", "stderr": "Locking failed on 10.77.0.22. Please check log file for details."}
    calls, now = [], [0.0]
    mod.__salt__ = {"cmd.run_all": lambda cmd, **kw: calls.append(cmd) or busy}

    def sleep(seconds):
        now[0] += seconds

    with pytest.raises(Exception, match="Locking failed on 10.77.0.22"):
        mod._gluster("volume", "set", "uploads", "auth.allow", "x", lock_wait=5, sleep=sleep, clock=lambda: now[0])
    assert len(calls) == 6  # at 0, 1, ... 5 s: then gluster's words


def test_any_other_failure_is_not_retried():
    calls = []
    mod.__salt__ = {"cmd.run_all": lambda cmd, **kw: calls.append(cmd) or
                    {"retcode": 1, "stdout": "", "stderr": "volume set: failed: invalid option"}}
    with pytest.raises(Exception, match="invalid option"):
        mod._gluster("volume", "set", "uploads", "nope", "1")
    assert len(calls) == 1


def test_the_state_needs_the_execution_module():
    state.__salt__ = {}
    assert state.__virtual__()[0] is False
    state.__salt__ = {"lemp_glusterfs.option_get": mod.option_get}
    assert state.__virtual__() == "lemp_glusterfs"


# -- TLS follows the pillar only where no started volume runs otherwise -------------------

INFO_STARTED_TLS = """
Volume Name: uploads
Type: Replicate
Status: Started
Number of Bricks: 1 x (2 + 1) = 3
Options Reconfigured:
auth.ssl-allow: web1.lab.lemp-ha,web2.lab.lemp-ha
client.ssl: on
server.ssl: on
auth.allow: 10.77.0.21,10.77.0.22
"""
INFO_STARTED_PLAIN = """
Volume Name: uploads
Status: Started
Options Reconfigured:
auth.allow: 10.77.0.21,10.77.0.22
network.ping-timeout: 5
"""


def test_volume_info_is_read_as_status_and_client_ssl():
    assert mod.parse_volume_info(INFO_STARTED_TLS) == {"status": "Started", "client_ssl": "on"}
    assert mod.parse_volume_info(INFO_STARTED_PLAIN) == {"status": "Started", "client_ssl": "off"}


@pytest.mark.parametrize("info, wanted", [
    (None, True), (None, False),                                  # no volume yet, or glusterd stopped
    ({"status": "Stopped", "client_ssl": "off"}, True),           # the maintenance's own window
    ({"status": "Created", "client_ssl": "off"}, True),
    (mod.parse_volume_info(INFO_STARTED_TLS), True),
    (mod.parse_volume_info(INFO_STARTED_PLAIN), False),
])
def test_tls_may_follow_the_pillar_where_nothing_runs_otherwise(info, wanted):
    assert mod.tls_switch_refusal("uploads", info, wanted) is None


@pytest.mark.parametrize("text, wanted, running", [(INFO_STARTED_PLAIN, True, "off"), (INFO_STARTED_TLS, False, "on")])
def test_a_started_volume_is_not_switched_by_a_highstate_naming_the_maintenance(text, wanted, running):
    refusal = mod.tls_switch_refusal("uploads", mod.parse_volume_info(text), wanted)
    assert f"started with TLS {running}" in refusal
    assert "glusterfs:lookup:tls:enabled" in refusal and "docs/sessions.md" in refusal
    assert "nothing was changed" in refusal
