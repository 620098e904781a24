"""The lab driver's pure parts (tools/lab/lemplab.py), on sample data: no lab,
no lxc, no traffic. Anything that would reach the kernel's routing table is
replaced by a fake."""

import json
import subprocess
import sys

import pytest

import lemp_topology
import lemplab

ROUTE_OVER_BRIDGE = "10.77.0.11 dev lemphabr0 src 10.77.0.1 uid 0 \\    cache "
ROUTE_VIA_GATEWAY = "10.77.0.11 via 192.168.1.1 dev eth0 src 192.168.1.5 uid 0 \\    cache "
ROUTE_LOCAL = "local 127.0.0.1 dev lo table local src 127.0.0.1 uid 0 \\    cache <local> "


@pytest.mark.parametrize("text, device", [
    (ROUTE_OVER_BRIDGE, "lemphabr0"),
    (ROUTE_VIA_GATEWAY, "eth0"),
    (ROUTE_LOCAL, "lo"),
    ("", None),  # `ip route get` failed: no route at all
    ("unreachable 10.77.0.11 dev", None),  # malformed: "dev" without a name
])
def test_the_route_device_is_read_from_ip_route_get(text, device):
    assert lemplab.parse_route_device(text) == device


def test_an_address_routed_over_the_bridge_is_fine():
    assert lemplab.route_problem("10.77.0.11", "lemphabr0", "lemphabr0") is None


@pytest.mark.parametrize("device, shown", [("eth0", "'eth0'"), (None, "'nothing'")])
def test_an_address_routed_elsewhere_names_the_device_and_the_bridge(device, shown):
    assert lemplab.route_problem("10.77.0.11", device, "lemphabr0") == (
        f"10.77.0.11 is routed via {shown}, not the lab bridge lemphabr0")


def test_lab_refuses_an_address_not_routed_over_the_bridge(topology, monkeypatch):
    monkeypatch.setattr(lemplab, "route_device", lambda address: "eth0")
    with pytest.raises(lemplab.LabNotUp) as caught:
        lemplab.Lab(topology).require_route("10.77.0.100")
    assert str(caught.value) == ("lab not up: 10.77.0.100 is routed via 'eth0', not the lab bridge "
                                 f"{topology['network']['bridge']}; run ./lab up")


def test_lab_require_up_checks_every_address_before_any_machine(topology, monkeypatch):
    asked = []
    monkeypatch.setattr(lemplab, "route_device", lambda address: asked.append(address) or None)
    monkeypatch.setattr(lemplab.Lab, "state", lambda self, name: pytest.fail("state asked before the routes"))
    with pytest.raises(lemplab.LabNotUp):
        lemplab.Lab(topology).require_up()
    assert asked == [next(iter(topology["machines"].values()))["address"]]


def test_lab_require_up_names_a_machine_that_is_not_running(topology, monkeypatch):
    monkeypatch.setattr(lemplab, "route_device", lambda address: topology["network"]["bridge"])
    monkeypatch.setattr(lemplab.Lab, "state", lambda self, name: "" if name == "db2" else "RUNNING")
    with pytest.raises(lemplab.LabNotUp, match=r"^lab not up: db2 is absent; run ./lab up$"):
        lemplab.Lab(topology).require_up()


def test_wait_for_returns_the_first_truthy_value():
    answers = iter([None, ValueError("not yet"), 0, "ready"])

    def predicate():
        value = next(answers)
        if isinstance(value, Exception):
            raise value
        return value

    assert lemplab.wait_for(predicate, 5, "the answer", interval=0.001) == "ready"


def test_wait_for_fails_naming_what_and_the_last_error():
    def predicate():
        raise ValueError("connection refused")

    with pytest.raises(AssertionError) as caught:
        lemplab.wait_for(predicate, 0.05, "db1 Synced", interval=0.01)
    assert str(caught.value) == "timed out after 0.05s waiting for db1 Synced (last: 'ValueError: connection refused')"


def test_wait_for_fails_naming_the_last_falsy_value():
    with pytest.raises(AssertionError, match=r"waiting for one VIP holder \(last: \[\]\)$"):
        lemplab.wait_for(lambda: [], 0.02, "one VIP holder", interval=0.01)


def test_wait_for_tries_once_more_at_the_deadline():
    calls = []
    with pytest.raises(AssertionError):
        lemplab.wait_for(lambda: calls.append(1), 0, "nothing")
    assert len(calls) == 1


def test_status_lists_each_machine_with_its_state_and_roles():
    table = lemplab.format_status([("salt1", "10.77.0.10", "RUNNING", ["master"]),
                                   ("arb1", "10.77.0.39", "", ["arbitrator", "backup"])])
    assert table.splitlines() == [
        "  MACHINE  ADDRESS         STATE      ROLES",
        "  salt1    10.77.0.10      running    master",
        "  arb1     10.77.0.39      absent     arbitrator,backup",
    ]


@pytest.mark.parametrize("expr, printed", [
    ("t['network']['bridge']", "lemphabr0"),
    ("t['network']['prefixlen']", "24"),
    ("t['master']", "salt1"),
    ("list(t['machines'])[:3]", "salt1\nlb1\nlb2"),
    ("[m['address'] for n, m in t['machines'].items() if 'lb' in m['roles']]", "10.77.0.11\n10.77.0.12"),
    # `t` is visible inside a comprehension's condition too
    ("[n for n in t['machines'] if 'web' in t['machines'][n]['roles']]", "web1\nweb2"),
])
def test_cli_topo_prints_an_expression_over_the_topology(topology, capsys, expr, printed):
    assert lemplab.main(["--topology-json", json.dumps(topology), "topo", expr]) == 0
    assert capsys.readouterr().out == printed + "\n"


def test_cli_require_route_exits_3_naming_the_route(topology, capsys, monkeypatch):
    monkeypatch.setattr(lemplab, "route_device", lambda address: None)
    assert lemplab.main(["--topology-json", json.dumps(topology), "require-route", "10.77.0.21"]) == 3
    assert capsys.readouterr().err == (
        "lab not up: 10.77.0.21 is routed via 'nothing', not the lab bridge lemphabr0\n")


def test_cli_refuses_a_topology_that_is_not_json(capsys):
    assert lemplab.main(["--topology-json", "{", "topo", "t"]) == 1
    assert "no usable topology" in capsys.readouterr().err


def test_cli_runs_on_the_hosts_python_without_pytest_or_requests(repo):
    # ./lab calls it with Debian's python3 (python3-yaml only)
    code = ("import runpy, sys; sys.argv = ['lemplab.py', 'topo', \"t['master']\"]; "
            f"sys.path.insert(0, {str(repo / 'tools' / 'lab')!r}); import lemplab; "
            "assert 'requests' not in sys.modules and 'pytest' not in sys.modules; sys.exit(lemplab.main())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "salt1\n"), proc.stderr


def test_with_role_reads_the_members_of_the_derived_topology(topology):
    lab = lemplab.Lab(topology)
    for role in ("lb", "web", "db", "arbitrator", "master"):
        assert lab.with_role(role) == lemp_topology.with_role(topology, role)
    assert lab.with_role("no-such-role") == []


def test_orchestration_that_succeeds_is_ok():
    data = {"data": {"salt1_master": {"step_|-a_|-a_|-state": {"result": True, "comment": "fine"}}}, "retcode": 0}
    ok, detail = lemplab.orchestration_outcome(0, data)
    assert ok and json.loads(detail) == data


def test_orchestration_with_a_failed_step_names_it():
    data = {"data": {"salt1_master": {"drain-web1_|-x": {"result": False, "comment": "web1 still busy"}}},
            "retcode": 1}
    assert lemplab.orchestration_outcome(1, data) == (False, "drain-web1_|-x: web1 still busy")


@pytest.mark.parametrize("returncode, data", [
    (0, {"unparsed": "Traceback ...", "stderr": ""}),  # salt-run printed no JSON
    (0, {"data": {"salt1_master": ["Rendering SLS 'base:orch.deploy' failed: app:version"]}}),
    (0, ["TemplateError: app:version"]),
    (2, {}),
])
def test_orchestration_that_did_not_run_is_not_ok(returncode, data):
    ok, detail = lemplab.orchestration_outcome(returncode, data)
    assert not ok and detail.startswith(f"exit {returncode}: ")
