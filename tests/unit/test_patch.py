"""orch.patch without Salt daemons: what the minions' module reads from apt
and needrestart (_modules/lemp_patch.py), and the plan the runner computes
from the topology and sample facts (_runners/lemp_patch.py): which nodes,
in which order, each out of service while it is patched, and when nothing
may be touched."""

import pathlib

import pytest

import lemp_topology  # tests/conftest.py puts _modules on the path
from by_path import load
from test_galera_plans import arg, ids, requires, status

REPO = pathlib.Path(__file__).resolve().parents[2]
module = load("lemp_patch_module", "_modules/lemp_patch.py")
# The runner by path (see test_galera_plans.py): same name as the module.
runner = load("lemp_patch_runner", "_runners/lemp_patch.py")

TOPOLOGY = lemp_topology.load(REPO / "pillar" / "topology.yaml")
VIP, INTERNAL = TOPOLOGY["network"]["vip"], TOPOLOGY["network"]["internal_vip"]

SIMULATION = """\
NOTE: This is only a simulation!
Reading package lists...
Inst libssl3 [3.0.11-1~deb12u1] (3.0.13-1~deb12u2 Debian-Security:12/stable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable-updates [all])
Inst nginx-common [1.22.1-9] (1.22.1-9+deb12u1 Debian:12.11/stable, Debian-Security:12/stable-security [all]) []
Inst libnew1 (1.0-1 Debian-Security:12/stable-security [amd64])
Conf libssl3 (3.0.13-1~deb12u2 Debian-Security:12/stable-security [amd64])
"""


def test_only_upgrades_from_the_security_archive_are_picked():
    found = module.parse_simulation(SIMULATION)
    assert [(p["name"], p["old"], p["new"]) for p in found] == [
        ("libssl3", "3.0.11-1~deb12u1", "3.0.13-1~deb12u2"),
        ("nginx-common", "1.22.1-9", "1.22.1-9+deb12u1"),
    ]
    assert module.parse_simulation("Reading package lists...\n0 upgraded, 0 newly installed\n") == []


def test_needrestart_batch_output_gives_services_and_kernel_state():
    text = ("NEEDRESTART-VER: 3.6\nNEEDRESTART-KCUR: 6.1.0-13-amd64\nNEEDRESTART-KEXP: 6.1.0-18-amd64\n"
            "NEEDRESTART-KSTA: 3\nNEEDRESTART-SVC: nginx.service\nNEEDRESTART-SVC: php8.2-fpm.service\n"
            "NEEDRESTART-SVC: nginx.service\n")
    assert module.parse_needrestart(text) == {
        "services": ["nginx", "php8.2-fpm"],
        "kernel": {"current": "6.1.0-13-amd64", "expected": "6.1.0-18-amd64", "status": 3}}
    assert module.parse_needrestart("NEEDRESTART-VER: 3.6\n")["services"] == []


def test_restart_plan_follows_the_policy_and_never_restarts_held_services():
    needed = ["nginx", "salt-minion.service", "redis-server", "user@0"]
    assert module.restart_plan("needed", needed, ["php8.2-fpm"], ["redis-server"]) == (
        ["nginx"], ["salt-minion", "redis-server", "user@0"])
    assert module.restart_plan("always", ["nginx"], ["php8.2-fpm", "nginx"]) == (["php8.2-fpm", "nginx"], [])
    assert module.restart_plan("never", needed, ["nginx"]) == ([], [])
    with pytest.raises(ValueError, match="pillar restart: 'sometimes'"):
        module.restart_plan("sometimes", [])


def test_restart_goes_through_galera_for_mariadb_and_reports_held_and_kernel(monkeypatch):
    calls = []
    mod = load("lemp_patch_module_run", "_modules/lemp_patch.py")
    mod.__salt__ = {"galera.restart": lambda: calls.append("galera.restart") or True,
                    "service.restart": lambda name: calls.append(name) or True}
    monkeypatch.setattr(mod, "needs_restart", lambda: {
        "services": ["mariadb", "salt-minion"], "kernel": {"status": 3, "expected": "6.1.0-18-amd64"}})
    out = mod.restart("needed")
    assert calls == ["galera.restart"]
    assert out["restarted"] == ["mariadb"] and out["held"] == ["salt-minion"]
    assert "salt-minion" in out["comment"] and "6.1.0-18-amd64" in out["reboot"]


def test_systemd_itself_is_re_executed_not_restarted_as_a_unit(monkeypatch):
    """needrestart names PID 1 `systemd-manager`, which is no unit (seen on
    the lab: `service.restart` failed, 'Unit systemd-manager.service not
    found')."""
    calls = []
    mod = load("lemp_patch_module_reexec", "_modules/lemp_patch.py")
    mod.__salt__ = {"service.restart": lambda name: calls.append(name) or True}
    monkeypatch.setattr(mod, "_run", lambda cmd, what: calls.append(cmd) or "")
    monkeypatch.setattr(mod, "needs_restart", lambda: {"services": ["systemd-manager", "zabbix-agent2"],
                                                       "kernel": {}})
    out = mod.restart("needed")
    assert calls == [["systemctl", "daemon-reexec"], "zabbix-agent2"]
    assert out["restarted"] == ["systemd-manager", "zabbix-agent2"]


# -- the plan ------------------------------------------------------------------


def test_default_tiers_walk_every_machine_once_in_a_safe_order_never_the_master():
    tiers, policy = runner.check_pillar(None, "needed", False)
    order, skipped = runner.choose(TOPOLOGY, tiers, holder="lb1")
    assert order == [("arbitrator", "arb1"), ("db", "db1"), ("db", "db2"), ("web", "web1"), ("web", "web2"),
                     ("lb", "lb2"), ("lb", "lb1"), ("monitor", "mon1")]
    assert [name for name, _ in skipped] == ["salt1"]
    assert "runs this orchestration" in skipped[0][1]
    # the holder goes last, whichever it is
    assert runner.choose(TOPOLOGY, ["lb"], holder="lb2")[0] == [("lb", "lb1"), ("lb", "lb2")]


def test_a_lone_lb_or_data_node_is_skipped_with_the_reason():
    topology = {"master": "m", "roles": {"lb": {"members": [{"name": "lb1"}]}, "web": {"members": [{"name": "w1"}]}}}
    order, skipped = runner.choose(topology, ["web", "lb"])
    assert order == [("web", "w1")]
    assert skipped[1] == ("lb1", "the only lb node: taking it out of service would stop the site")


@pytest.mark.parametrize("tiers, restart, reboot, message", [
    (["web", "fridge"], "needed", False, "pillar tiers: unknown tier fridge"),
    (["master"], "needed", False, "pillar tiers: 'master' is not patched"),
    (["web"], "sometimes", False, "pillar restart: 'sometimes'"),
    (["web"], "needed", True, "pillar reboot: orch.patch does not reboot"),
])
def test_bad_pillar_is_refused_naming_the_key(tiers, restart, reboot, message):
    with pytest.raises(ValueError, match=message):
        runner.check_pillar(tiers, restart, reboot)


def addrs(holder):
    return {lb: f"2: eth0 inet 10.77.0.1{i + 1}/24" + (f"\n2: eth0 inet {VIP}/24\n2: eth0 inet {INTERNAL}/24"
                                                         if lb == holder else "")
            for i, lb in enumerate(["lb1", "lb2"])}


def healthy_facts():
    rows = [{"pxname": "web", "svname": w, "status": "UP"} for w in ("web1", "web2")]
    return {"ping": {n: True for n in TOPOLOGY["machines"]}, "stat": {"lb1": rows, "lb2": list(rows)},
            "addrs": addrs("lb1"),
            "galera": {"db1": status(primary=True), "db2": status(primary=True)}}


def problems(facts):
    return runner.health_problems(facts, ["web1", "web2"], ["lb1", "lb2"], ["db1", "db2"], ["arb1"], "web",
                                  [VIP, INTERNAL], ["lb1", "lb2", "web1", "web2"])


def test_a_healthy_platform_has_no_problem():
    assert problems(healthy_facts()) == []


@pytest.mark.parametrize("breaks, message", [
    (lambda f: f["stat"]["lb2"].__setitem__(1, {"pxname": "web", "svname": "web2", "status": "DRAIN"}),
     "web2 is not in service on lb2 (status 'DRAIN'"),
    (lambda f: f["ping"].pop("web1"), "web1 does not answer"),
    (lambda f: f.__setitem__("addrs", addrs(None)), f"the VIPs are not held by exactly one load balancer ({VIP} on no lb"),
    (lambda f: f["addrs"].__setitem__("lb2", f"2: eth0 inet {INTERNAL}/24"), f"{INTERNAL} on lb1, lb2"),
    (lambda f: f["galera"].__setitem__("db2", status(primary=True, synced=False)), "db2 is not Synced"),
    (lambda f: f["galera"]["db1"].__setitem__("cluster_size", 2), "db1 sees 2 Galera members, not 3"),
    (lambda f: f["stat"].pop("lb1"), "lb1: HAProxy's runtime API gave no server list"),
])
def test_an_unhealthy_platform_is_named(breaks, message):
    facts = healthy_facts()
    breaks(facts)
    found = problems(facts)
    assert any(message in p for p in found), found


CTX = {"webs": ["web1", "web2"], "lbs": ["lb1", "lb2"], "dbs": ["db1", "db2"], "garbd": ["arb1"], "backend": "web",
       "vips": [VIP, INTERNAL], "php_fpm": "php8.2-fpm"}


def test_a_web_node_is_drained_patched_checked_and_back_up_before_the_next():
    steps = runner.patch_steps([("web", "web1"), ("web", "web2")], [("salt1", "master")], "always", CTX)
    per_node = ["drain-{n}-on-both-lbs", "wait-until-{n}-has-no-session-on-both-lbs", "install-security-updates-on-{n}",
                "restart-services-running-old-code-on-{n}", "check-healthz-on-{n}", "enable-{n}-on-both-lbs",
                "wait-until-{n}-is-up-on-both-lbs"]
    assert ids(steps) == ["sync-custom-modules-on-the-nodes-to-patch", "apply-needrestart-list-mode-on-the-nodes-to-patch",
                          "the-patch-plan"] + [
        s.format(n=n) for n in ("web1", "web2") for s in per_node]
    for before, step in zip(steps, steps[1:]):
        assert requires(step) == [{"salt": before["id"]}] or requires(step) == [{"test": before["id"]}]
    assert arg(steps[1], "queue") == 50 and arg(steps[1], "tgt") == "web1,web2"
    restart = steps[6]
    assert arg(restart, "kwarg") == {"policy": "always", "always": ["php8.2-fpm", "nginx"], "hold": ["redis-server"]}
    assert arg(steps[3], "tgt") == "lb1,lb2" and arg(steps[3], "arg") == ["web", "web1"]
    # the gate: the node's own /healthz/deep judged by lemp_healthz (a 200 "maintenance" is no pass)
    gate = steps[7]
    assert [arg(gate, key) for key in ("name", "tgt", "arg")] == [
        "lemp_healthz.wait", "web1", ["https://127.0.0.1/healthz/deep"]]
    assert arg(gate, "kwarg")["check"] == "deep" and arg(gate, "kwarg")["insecure"] is True
    assert "salt1: master" in arg(steps[2], "name")


def test_an_lb_gives_up_the_vips_first_and_takes_part_again_only_once_it_sees_every_web_node_up():
    steps = runner.patch_steps([("lb", "lb2"), ("lb", "lb1")], [], "needed", CTX)
    lb1 = ids(steps)[ids(steps).index("move-the-vips-off-lb1-stop-its-keepalived"):]
    assert lb1 == ["move-the-vips-off-lb1-stop-its-keepalived", "wait-until-lb2-holds-both-vips",
                   "install-security-updates-on-lb1", "restart-services-running-old-code-on-lb1",
                   "wait-until-web1-is-up-on-lb1", "wait-until-web2-is-up-on-lb1",
                   "put-lb1-back-in-the-vrrp-group-start-its-keepalived", "wait-until-one-lb-holds-both-vips-after-lb1"]
    moved = steps[ids(steps).index("wait-until-lb2-holds-both-vips")]
    assert moved["state"] == "salt.runner"
    assert [arg(moved, k) for k in ("name", "lbs", "vips", "not_on")] == [
        "lemp_patch.wait_vip_holder", ["lb2", "lb1"], [VIP, INTERNAL], "lb1"]
    assert "mask --runtime keepalived" in arg(steps[ids(steps).index(lb1[0])], "arg")[0]
    assert arg(steps[ids(steps).index("restart-services-running-old-code-on-lb1")], "kwarg")["hold"] == ["keepalived"]


def test_a_data_node_waits_for_a_complete_cluster_before_and_synced_after():
    steps = runner.patch_steps([("arbitrator", "arb1"), ("db", "db1")], [], "needed", CTX)
    assert ids(steps)[3:] == [
        "check-galera-cluster-complete-before-patching-arb1", "install-security-updates-on-arb1",
        "restart-services-running-old-code-on-arb1", "wait-until-galera-cluster-is-complete-again-after-arb1",
        "check-galera-cluster-complete-before-patching-db1", "install-security-updates-on-db1",
        "restart-services-running-old-code-on-db1", "wait-galera-synced-db1"]
    assert arg(steps[3], "tgt") == "db1"  # garbd's cluster is checked on a data node
    assert arg(steps[-1], "kwarg")["min_cluster_size"] == 3


def test_nothing_to_patch_is_a_step_that_changes_nothing():
    steps = runner.patch_steps([], [("lb1", "the only lb node")], "needed", CTX)
    assert ids(steps) == ["nothing-to-patch"] and steps[0]["state"] == "test.succeed_without_changes"


def test_the_vip_holder_is_the_one_lb_with_both_addresses():
    assert runner.single_holder(runner.vip_holders(addrs("lb2"), [VIP, INTERNAL])) == "lb2"
    assert runner.single_holder(runner.vip_holders(addrs(None), [VIP, INTERNAL])) is None
    split = {"lb1": f"inet {VIP}/24", "lb2": f"inet {INTERNAL}/24"}
    assert runner.single_holder(runner.vip_holders(split, [VIP, INTERNAL])) is None


def test_the_runner_refuses_an_unhealthy_platform_before_any_step(monkeypatch):
    answers = healthy_facts()
    answers["stat"]["lb1"][0] = {"pxname": "web", "svname": "web1", "status": "DOWN"}
    by_fun = {"cmd.run": answers["addrs"], "haproxy_runtime.show_stat": answers["stat"],
              "galera.status": answers["galera"], "test.ping": answers["ping"]}
    monkeypatch.setattr(runner, "_ask", lambda tgt, fun, timeout=60, **kw: {t: by_fun[fun][t] for t in tgt
                                                                            if t in by_fun[fun]})
    out = runner.plan(TOPOLOGY, tiers=["web"])["steps"]
    assert ids(out) == ["patch-refused-nothing-was-touched"]
    assert "web1 is not in service on lb1 (status 'DOWN'" in arg(out[0], "name")
    answers["stat"]["lb1"][0]["status"] = "UP"
    out = runner.plan(TOPOLOGY, tiers=["web"], maintenance=False)["steps"]
    assert ids(out)[:4] == ["no-maintenance-window-pillar-maintenance-is-false",
                            "sync-custom-modules-on-the-nodes-to-patch",
                            "apply-needrestart-list-mode-on-the-nodes-to-patch", "the-patch-plan"]
    bad = runner.plan(TOPOLOGY, tiers=["web"], restart="maybe")["steps"]
    assert "pillar restart: 'maybe'" in arg(bad[0], "name")
