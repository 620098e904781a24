"""Enrolment of pool VMs (issue 12), without Salt daemons: the single-use
keys (the master's real key code on a temporary pki directory), the enrolled
store, orch.enrol's plan, the HAProxy pool slots and the Zabbix host list."""

import datetime
import getpass
import json
import multiprocessing
import pathlib

import jinja2
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

import lemp_edge  # tests/conftest.py puts _modules on the path
import lemp_haproxy
import lemp_pool
import lemp_zabbix
from by_path import load

# The runner by path, not _runners on sys.path (see test_galera_plans.py).
lemp_enrol = load("lemp_enrol_runner", "_runners/lemp_enrol.py")

from test_galera_plans import arg, ids, requires  # noqa: E402

POOL = ["web3", "web4", "web5", "web6"]
LBS, MON = ["lb1", "lb2"], ["mon1"]


def keys(**status):
    out = {s: [] for s in lemp_enrol.KEY_STATUSES}
    out.update(status)
    return out


def onfail(step):
    return next((a["onfail"] for a in step["args"] if "onfail" in a), [])


def kwargs(step):
    return {k: v for a in step["args"] for k, v in a.items()}


# -- keys --------------------------------------------------------------------


@pytest.fixture()
def master_opts(tmp_path):
    """Master options on a temporary root: the master's own key code
    (wheel key.*) runs against it, as salt-run lemp_enrol.mint does on salt1."""
    import salt.config

    conf = tmp_path / "master"
    conf.write_text(f"root_dir: {tmp_path}\npki_dir: {tmp_path}/pki\ncachedir: {tmp_path}/cache\n"
                    f"sock_dir: {tmp_path}/sock\nlog_file: {tmp_path}/log\nuser: {getpass.getuser()}\n"
                    f"{lemp_enrol.STORE_OPTION}: {tmp_path}/enrolled.json\n"
                    f"{lemp_enrol.LOG_OPTION}: {tmp_path}/enrol.log\n")
    opts = salt.config.master_config(str(conf))
    for sub in ("cache/proc", "sock", *(f"pki/{s}" for s in lemp_enrol.KEY_STATUSES)):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
    lemp_enrol.__opts__ = opts
    yield opts
    del lemp_enrol.__opts__


def test_a_minted_key_is_accepted_and_its_private_half_matches(master_opts, tmp_path):
    import salt.crypt

    minted = lemp_enrol.mint("web3")
    assert minted["name"] == "web3"
    assert (tmp_path / "pki" / "minions" / "web3").read_text().strip() == minted["public"].strip()
    # the VM's minion.pem: the master's copy is its public half
    private = salt.crypt.PrivateKey.from_str(minted["private"])
    assert private.public_key().public_bytes(
        encoding=__import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).Encoding.PEM,
        format=__import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).PublicFormat
        .SubjectPublicKeyInfo).decode().strip() == minted["public"].strip()
    assert lemp_enrol.check("web3") == {"id": "web3", "pool": True, "accepted": True, "enrolled": False,
                                        "kind": "new"}


def test_a_key_enrols_one_machine_once_and_forget_makes_a_kept_copy_useless(master_opts, tmp_path):
    first = lemp_enrol.mint("web3")
    again = lemp_enrol.mint("web3")
    assert again["retcode"] == 1 and "web3 already has an accepted key: its pool slot is in use" in again["Error"]
    assert lemp_enrol.forget("web3") == {"name": "web3", "deleted": True}
    assert not (tmp_path / "pki" / "minions" / "web3").exists()
    second = lemp_enrol.mint("web3")
    # a fresh pair: the first VM's copy no longer matches the master's key
    assert second["public"] != first["public"]


def test_names_outside_the_pool_get_no_key(master_opts):
    for name in ("web1", "web9", "*"):
        assert "not a name of scaling.web.pool" in lemp_enrol.mint(name)["Error"]
    assert "refusing to delete the key of 'web1'" in lemp_enrol.forget("web1")["Error"]


def test_mint_refuses_a_name_the_master_already_holds_in_any_list():
    assert lemp_enrol.mint_refusal(POOL, "web3", keys()) is None
    assert "pool slot is in use" in lemp_enrol.mint_refusal(POOL, "web3", keys(minions=["web3"]))
    for status in ("minions_pre", "minions_rejected", "minions_denied"):
        refusal = lemp_enrol.mint_refusal(POOL, "web4", keys(**{status: ["web4"]}))
        assert f"holds a key for web4 in {status}" in refusal and "salt-key -d web4" in refusal
    assert "add it there first" in lemp_enrol.mint_refusal(POOL, "web7", keys())


def test_only_a_pool_name_with_an_accepted_key_is_enrolled():
    accepted = keys(minions=["web1", "web3", "web4"], minions_pre=["web5"])
    assert lemp_enrol.classify(POOL, "web3", accepted, []) == "new"
    assert lemp_enrol.classify(POOL, "web4", accepted, ["web4"]) == "enrolled"
    for minion in ("web1", "web5", "web6", "rogue"):
        assert lemp_enrol.classify(POOL, minion, accepted, []) == lemp_enrol.NOT_A_POOL_NODE


# -- the enrolled store --------------------------------------------------------


def test_the_store_records_once_and_removes(tmp_path):
    path = str(tmp_path / "lib" / "enrolled.json")
    assert lemp_enrol.read_store(path) == {}
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert lemp_enrol.record_in(path, "web3", "orch.enrol", now=now) is True
    assert lemp_enrol.record_in(path, "web3", "someone-else") is False
    assert lemp_enrol.read_store(path) == {"web3": {"since": "2026-01-02T03:04:05+00:00", "by": "orch.enrol"}}
    assert (pathlib.Path(path).stat().st_mode & 0o777) == 0o600
    assert lemp_enrol.remove_from(path, "web3") is True
    assert lemp_enrol.remove_from(path, "web3") is False
    assert lemp_enrol.read_store(path) == {}
    assert not [p for p in (tmp_path / "lib").iterdir() if p.name.endswith(".tmp")]


def test_a_record_is_serving_only_once_orch_enrol_marked_it_done(tmp_path):
    """scale_out waits for the mark (lemp_enrol.done, the last step), not for
    the record, which comes before HAProxy and Zabbix."""
    path = str(tmp_path / "enrolled.json")
    first = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert lemp_enrol.mark_served_in(path, "web3", now=first) is False   # not enrolled: nothing marked
    assert lemp_enrol.read_store(path) == {}
    lemp_enrol.record_in(path, "web3", "orch.enrol", now=first)
    assert not lemp_enrol.is_served(lemp_enrol.read_store(path), "web3")
    assert lemp_enrol.mark_served_in(path, "web3", now=first) is True
    assert lemp_enrol.is_served(lemp_enrol.read_store(path), "web3")
    # a restarted minion's re-check keeps the first mark and the record
    assert lemp_enrol.mark_served_in(path, "web3", now=first + datetime.timedelta(hours=1)) is True
    assert lemp_enrol.read_store(path) == {"web3": {"since": "2026-01-02T03:04:05+00:00", "by": "orch.enrol",
                                                    "served": "2026-01-02T03:04:05+00:00"}}
    assert lemp_enrol.member_names(lemp_enrol.read_store(path)) == ["web3"]
    assert not lemp_enrol.is_served(lemp_enrol.read_store(path), "web4")


def test_a_broken_store_stops_the_reader_naming_the_fix(tmp_path):
    path = tmp_path / "enrolled.json"
    for text in ("{not json", "[1, 2]"):
        path.write_text(text)
        with pytest.raises(lemp_enrol.EnrolError, match="enrolled pool members.*restart their salt-minion"):
            lemp_enrol.read_store(str(path))


def _record(args):
    lemp_enrol.record_in(*args)


def test_machines_recorded_at_the_same_time_are_all_kept(tmp_path):
    path = str(tmp_path / "enrolled.json")
    with multiprocessing.get_context("fork").Pool(4) as workers:
        workers.map(_record, [(path, name, "orch.enrol") for name in POOL * 3])
    assert lemp_enrol.member_names(lemp_enrol.read_store(path)) == POOL


def test_the_pillar_lists_the_enrolled_names(tmp_path):
    import importlib.machinery
    import importlib.util

    path = tmp_path / "enrolled.json"
    path.write_text(json.dumps({"web4": {"since": "x", "by": "y"}, "web3": {"since": "x", "by": "y"}}))
    loader = importlib.machinery.SourceFileLoader("pillar_enrolled", str(REPO / "pillar" / "enrolled.sls"))
    spec = importlib.util.spec_from_loader("pillar_enrolled", loader)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__opts__ = {lemp_enrol.STORE_OPTION: str(path)}
    assert module.run() == {"scaling": {"enrolled": ["web3", "web4"]}}
    module.__opts__ = {lemp_enrol.STORE_OPTION: str(tmp_path / "none.json")}
    assert module.run() == {"scaling": {"enrolled": []}}


# -- orch.enrol's plan ----------------------------------------------------------


NEW = ["sync-custom-modules-on-web3-the-lbs-and-the-monitor", "refresh-pillar-on-web3",
       "publish-web3-in-the-mine",
       "apply-highstate-on-web3", "wait-for-healthz-of-web3-from-both-lbs", "record-web3-enrolled-on-the-master",
       "render-web3-slot-enabled-in-haproxy-config-on-both-lbs", "enable-web3-on-both-lbs",
       "wait-until-web3-is-up-on-both-lbs", "register-web3-in-zabbix-on-mon1", "announce-web3-enrolled"]


def main_steps(steps):
    return [s for s in steps if not s["id"].startswith("report-")]


def test_a_new_pool_node_follows_the_runbook_in_order():
    steps = lemp_enrol.enrol_steps("web3", "10.77.0.23", LBS, MON, "web", "new")
    main = main_steps(steps)
    assert ids(main) == NEW
    for before, step in zip(main, main[1:]):
        assert requires(step) == [lemp_enrol._steps.requisite(before)]
    assert arg(main[3], "highstate") is True
    assert arg(main[6], "sls") == "haproxy.config" and arg(main[6], "queue") == lemp_enrol._steps.WAIT_IN_LINE
    assert arg(main[7], "arg") == ["web", "web3"] and arg(main[7], "tgt") == "lb1,lb2"
    assert arg(main[9], "sls") == "zabbix.server.api" and arg(main[9], "tgt") == "mon1"
    # the gate: the node serves the app and reaches the database (deep), from each LB
    gate = main[4]
    assert arg(gate, "name") == "lemp_healthz.wait" and arg(gate, "tgt") == "lb1,lb2"
    assert arg(gate, "arg") == ["https://web3/healthz/deep"]
    assert {k: arg(gate, "kwarg")[k] for k in ("check", "resolve", "cacert")} == {
        "check": "deep", "resolve": "web3:443:10.77.0.23", "cacert": "/etc/haproxy/tls/ca.pem"}


def test_each_step_has_one_failure_report_and_from_the_record_on_it_takes_the_node_out():
    steps = lemp_enrol.enrol_steps("web3", "10.77.0.23", LBS, MON, "web", "new")
    reports = [s for s in steps if s["id"].startswith("report-")]
    assert [r["id"] for r in reports] == [f"report-web3-enrol-failed-at-{sid}" for sid in NEW]
    for index, report in enumerate(reports):
        args = kwargs(report)
        assert report["state"] == "salt.runner" and args["name"] == "lemp_enrol.failed"
        assert args["node"] == "web3" and args["step"] == NEW[index] and args["reason"]
        assert onfail(report) == [{"salt": NEW[index]}]
        # runs only when its own step failed, not when an earlier one did
        assert requires(report) == ([{"salt": NEW[index - 1]}] if index else [])
        assert args["undo"] is (index >= NEW.index("record-web3-enrolled-on-the-master"))
        assert args["lbs"] == LBS and args["monitors"] == MON and args["backend"] == "web"


def test_a_restarted_enrolled_node_is_only_checked_never_drained_nor_highstated():
    steps = main_steps(lemp_enrol.enrol_steps("web3", "10.77.0.23", LBS, MON, "web", "enrolled"))
    assert ids(steps) == [NEW[0], "refresh-pillar-on-web3", "publish-web3-in-the-mine",
                          "wait-for-healthz-of-web3-from-both-lbs", "announce-web3-enrolled"]
    assert not any(s["state"] == "salt.state" or "haproxy_runtime" in str(s["args"]) for s in steps)
    assert kwargs(steps[-1])["already"] is True
    # what HAProxy routes on (shallow): a database hiccup at a minion restart is no failed enrolment
    assert arg(steps[3], "name") == "lemp_healthz.wait" and arg(steps[3], "arg") == ["https://web3/healthz"]
    assert arg(steps[3], "kwarg")["check"] == "shallow"


def test_a_fixed_machine_or_an_unknown_id_changes_nothing():
    for kind in (lemp_enrol.NOT_A_POOL_NODE,):
        steps = lemp_enrol.enrol_steps("web1", "", LBS, MON, "web", kind)
        assert ids(steps) == ["ignore-web1-not-a-pool-node"]
        assert steps[0]["state"] == "test.succeed_without_changes"


def test_no_monitor_means_no_zabbix_step_and_no_lb_is_a_refusal():
    steps = main_steps(lemp_enrol.enrol_steps("web3", "10.77.0.23", LBS, [], "web", "new"))
    assert "register-web3-in-zabbix-on-mon1" not in ids(steps)
    refused = lemp_enrol.enrol_steps("web3", "10.77.0.23", [], MON, "web", "new")
    assert refused[0]["state"] == "test.fail_without_changes" and "no machine with role lb" in arg(refused[0], "name")


def test_a_failure_is_logged_with_node_step_and_reason():
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert lemp_enrol.log_line(now, "web3", "apply-highstate-on-web3", "the highstate failed") == \
        "2026-01-02T03:04:05+00:00 enrol web3 failed at apply-highstate-on-web3: the highstate failed\n"


# -- HAProxy slots and Zabbix hosts ------------------------------------------------


MINED = {"web1": ["10.77.0.21"], "web2": "10.77.0.22"}


def test_every_pool_slot_is_declared_and_enabled_only_when_enrolled(topology):
    backend = lemp_pool.web_servers(topology, MINED, ["web4", "web9"])
    assert backend["serving"] == [{"name": "web1", "address": "10.77.0.21"}, {"name": "web2", "address": "10.77.0.22"}]
    assert backend["missing"] == []
    assert backend["slots"] == [{"name": "web3", "address": "10.77.0.23", "enabled": False},
                                {"name": "web4", "address": "10.77.0.24", "enabled": True},
                                {"name": "web5", "address": "10.77.0.25", "enabled": False},
                                {"name": "web6", "address": "10.77.0.26", "enabled": False}]


def test_a_web_node_without_mine_entry_is_named_and_none_at_all_is_refused(topology):
    assert lemp_pool.web_servers(topology, {"web2": ["10.77.0.22"]}, [])["missing"] == ["web1"]
    with pytest.raises(lemp_pool.PoolError, match="no address for any web node.*refusing to write an empty"):
        lemp_pool.web_servers(topology, {}, ["web3"])


def render_haproxy(topology, enrolled):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(REPO / "salt" / "haproxy" / "files")),
                             extensions=["jinja2.ext.do"])
    import yaml

    haproxy = yaml.safe_load((REPO / "salt" / "haproxy" / "defaults.yaml").read_text())["haproxy"]
    backend = lemp_pool.web_servers(topology, MINED, enrolled)
    return env.get_template("haproxy.cfg.j2").render(
        haproxy=haproxy, network=topology["network"], web_nodes=backend["serving"],
        missing_web_nodes=backend["missing"], pool_slots=backend["slots"],
        db_nodes=topology["roles"]["db"]["members"], redis_password="x",
        edge=lemp_edge.haproxy(haproxy["edge"], topology["machines"], "lb1"),
        stats_login=lemp_edge.stats_login(haproxy["stats_user"], "x" * 32),
        limits=lemp_haproxy.limits(haproxy["limits"]),
        peers=lemp_haproxy.peers(topology["roles"]["lb"]["members"], "lb1", haproxy["peers"]["port"],
                                 haproxy["peers"]["name"]))


def test_the_haproxy_config_declares_each_slot_once_after_the_serving_nodes(topology):
    config = render_haproxy(topology, ["web3"])
    web = config.split("\nbackend web\n")[1].split("\n\n")[0]
    servers = [line.split()[1] for line in web.splitlines() if line.strip().startswith("server ")]
    assert servers == ["web1", "web2", "web3", "web4", "web5", "web6"]
    assert "server web3 10.77.0.23:443 verifyhost web3\n" in web + "\n"
    assert "server web4 10.77.0.24:443 verifyhost web4 disabled" in web
    # the sessions' Redis stays on the fixed web nodes
    redis = config.split("listen redis-sessions")[1].split("\n\n")[0]
    assert "web3" not in redis


def test_zabbix_holds_the_enrolled_pool_members_as_hosts_and_removes_only_them(topology):
    machines = lemp_pool.monitored_machines(topology, ["web3"])
    assert machines["web3"] == {"address": "10.77.0.23", "roles": ["web_pool"]}
    assert "web4" not in machines and machines["web1"]["roles"] == ["web"]
    psks = {name: "00" for name in list(topology["machines"]) + POOL}
    assert lemp_zabbix.agent_host_names(psks, machines) == sorted(list(topology["machines"]) + ["web3"])
    assert lemp_zabbix.host_absent_refusal("web3", topology) is None
    assert "fixed machines stay monitored" in lemp_zabbix.host_absent_refusal("web1", topology)


def test_a_pool_node_gets_the_web_pool_role_and_its_zabbix_settings_match_the_web_tier(topology):
    import yaml

    web3 = topology["pool_machines"]["web3"]
    assert web3["roles"] == ["web_pool"] and web3["address"] == "10.77.0.23"
    assert web3["states"] == ["common", "phpfpm", "nginx", "glusterfs.client", "webapp"]
    assert "web3" not in topology["machines"] and "web3" not in [m["name"] for m in topology["roles"]["web"]["members"]]
    roles = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]["server"]["api"]["roles"]
    web, pool = roles["web"]["macros"], roles["web_pool"]["macros"]
    assert pool == {k: v for k, v in web.items() if k.startswith(("{$NGINX.", "{$PHP_FPM."))}
    assert set(roles["web_pool"]["templates"]) < set(roles["web"]["templates"])
    assert not {"lemp-ha GlusterFS", "lemp-ha Redis Sentinel", "Redis by Zabbix agent 2"} & set(
        roles["web_pool"]["templates"])


def test_a_pool_without_the_web_pool_role_declared_is_refused():
    import lemp_topology
    import yaml

    raw = yaml.safe_load((REPO / "pillar" / "topology.yaml").read_text())
    roles = yaml.safe_load((REPO / "pillar" / "roles.yaml").read_text())
    del roles["web_pool"]
    with pytest.raises(lemp_topology.TopologyError, match="needs the role web_pool declared in pillar/roles.yaml"):
        lemp_topology.validate(raw, roles)
