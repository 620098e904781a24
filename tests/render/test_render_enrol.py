"""Enrolment (issue 12) on a real master: the reactor hands on the
authenticated id only, orch.enrol plans from the master's keys and store,
every minion's pillar lists the enrolled pool members, and the load
balancers' config enables exactly those slots."""

import json
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def lb(topology, representatives):
    return next(name for name in representatives if "lb" in topology["machines"][name]["roles"])


@pytest.fixture()
def enrolled(salt_roots):
    """Write the master's store of enrolled members; removed afterwards."""
    path = pathlib.Path(salt_roots["enrolled"])

    def write(names):
        path.write_text(json.dumps({n: {"since": "2026-01-01T00:00:00+00:00", "by": "test"} for n in names}))

    yield write
    path.unlink(missing_ok=True)


def enrol_steps(salt_run_cli, node):
    ret = salt_run_cli.run("state.orchestrate_show_sls", "orch.enrol",
                           f"pillar={json.dumps({'enrol': {'node': node}})}")
    assert ret.returncode == 0, ret
    steps = next(iter(ret.data.values()))
    assert isinstance(steps, dict), steps
    return steps


def test_the_reactor_hands_on_the_authenticated_id_and_nothing_a_minion_could_forge(salt_master):
    import salt.minion
    import salt.template

    opts = dict(salt_master.config)
    with salt.minion.MasterMinion(opts) as minion:
        high = salt.template.compile_template(
            str(REPO / "reactor" / "web_start.sls"), minion.rend, opts["renderer"], opts["renderer_blacklist"],
            opts["renderer_whitelist"], tag="salt/minion/web3/start",
            data={"id": "web3", "enrol": {"node": "web1"}, "pillar": {"x": 1}})
    reaction = high["enrol-started-minion-if-it-is-a-pool-node"]["runner.state.orchestrate"]
    args = {k: v for item in reaction for k, v in item.items()}
    assert args["queue"] is True
    assert args["args"] == [{"mods": "orch.enrol"}, {"pillar": {"enrol": {"node": "web3"}}}]


def test_a_fixed_machine_or_a_name_without_an_accepted_key_is_not_enrolled(salt_run_cli):
    # web4: a pool name, but no key (web3 runs a minion in these tests: accepted)
    for node in ("web1", "web4", "rogue"):
        steps = enrol_steps(salt_run_cli, node)
        assert list(steps) == [f"ignore-{node}-not-a-pool-node"], steps


def test_a_pool_name_with_a_minted_key_gets_the_runbook_and_a_second_mint_is_refused(salt_run_cli, enrolled):
    ret = salt_run_cli.run("lemp_enrol.mint", "name=web4")
    assert ret.returncode == 0, ret
    assert "BEGIN" in ret.data["private"] and ret.data["name"] == "web4"
    try:
        again = salt_run_cli.run("lemp_enrol.mint", "name=web4")
        assert "already has an accepted key" in (again.stdout + again.stderr), again
        steps = enrol_steps(salt_run_cli, "web4")
        assert "apply-highstate-on-web4" in steps and "enable-web4-on-both-lbs" in steps
        assert "report-web4-enrol-failed-at-apply-highstate-on-web4" in steps
        # once enrolled, a restarted minion is only re-checked
        enrolled(["web4"])
        steps = enrol_steps(salt_run_cli, "web4")
        assert "apply-highstate-on-web4" not in steps and "enable-web4-on-both-lbs" not in steps
        assert "announce-web4-enrolled" in steps
    finally:
        ret = salt_run_cli.run("lemp_enrol.forget", "name=web4")
        assert ret.returncode == 0 and ret.data == {"name": "web4", "deleted": True}, ret


def test_every_machine_sees_the_enrolled_members_and_the_lbs_enable_only_their_slots(
        salt_cli, topology, representatives, enrolled):
    enrolled(["web4"])
    for name in representatives:
        # pillar.items compiles afresh, as every state run does
        ret = salt_cli.run("pillar.items", "unmask=True", minion_tgt=name)
        assert ret.data["scaling"]["enrolled"] == ["web4"], (name, ret.data.get("scaling"))
    ret = salt_cli.run("state.show_sls", "haproxy.config", minion_tgt=lb(topology, representatives))
    config = ret.data["haproxy-config-file-managed"]["file"]
    context = next(arg["context"] for arg in config if isinstance(arg, dict) and "context" in arg)
    assert [(s["name"], s["enabled"]) for s in context["pool_slots"]] == [
        ("web3", False), ("web4", True), ("web5", False), ("web6", False)]
    # the serving nodes come from the mine (here only web1 runs a minion), never a pool name
    assert [n["name"] for n in context["web_nodes"]] == ["web1"] and context["missing_web_nodes"] == ["web2"]


def test_a_pool_vm_applies_the_web_pool_states_a_client_mount_and_no_cluster_member(
        salt_cli, pool_representative):
    ret = salt_cli.run("state.show_top", minion_tgt=pool_representative)
    assert ret.data == {"base": ["common", "phpfpm", "nginx", "glusterfs.client", "webapp"]}, ret
    ret = salt_cli.run("state.show_sls", "glusterfs.client", minion_tgt=pool_representative)
    mount = ret.data["glusterfs-volume-uploads-mounted-as-client"]["mount"]
    args = {k: v for a in mount if isinstance(a, dict) for k, v in a.items()}
    assert args["device"] == "10.77.0.21:/uploads" and "backup-volfile-servers=10.77.0.22" in args["opts"]
