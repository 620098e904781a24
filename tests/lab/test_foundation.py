"""The lab foundation: every machine is a Salt minion and orch.site converges."""

import os
import pathlib
import subprocess

import pytest

import lemplab

REPO = pathlib.Path(__file__).resolve().parents[2]


def orch_changes(result):
    """Number of changed states across every step of an orchestration."""
    steps = next(iter(result["data"].values()))
    total = 0
    for step in steps.values():
        for minion_ret in ((step.get("changes") or {}).get("ret") or {}).values():
            if isinstance(minion_ret, dict):
                total += sum(1 for s in minion_ret.values() if isinstance(s, dict) and s.get("changes"))
    return total


def orch_failures(result):
    steps = next(iter(result["data"].values()))
    return {step.get("__id__", key): step.get("comment") for key, step in steps.items() if not step.get("result")}


def fixed_answers(answers, lab):
    """The answers of the topology's machines (the lab host's engine and
    enrolled pool machines answer too)."""
    return {name: answers.get(name) for name in lab.machines}


def test_every_machine_of_the_topology_answers_the_master(lab):
    answers = lab.salt("--timeout=10", "*", "test.ping")
    assert fixed_answers(answers, lab) == {name: True for name in lab.machines}


def test_a_restarted_master_is_still_trusted_by_every_minion(lab):
    # Salt 3008 names the master's key after its id: an id that changed with
    # /etc/hosts made a restarted master present a new key that every minion
    # refused ("the master key has changed").
    key_before = lab.run(lab.master, "sha256sum /etc/salt/pki/master/master.pub").stdout.split()[0]
    lab.run(lab.master, "systemctl restart salt-master")
    lemplab.wait_for(lambda: fixed_answers(lab.salt("--timeout=5", "*", "test.ping"), lab) == {n: True for n in lab.machines},
                     120, "every minion to answer the restarted master")
    assert lab.run(lab.master, "sha256sum /etc/salt/pki/master/master.pub").stdout.split()[0] == key_before


def test_minions_are_accepted_by_pre_seeded_keys_only(lab):
    config = lab.run(lab.master, "cat /etc/salt/master.d/*.conf").stdout
    assert "auto_accept: false" in config.lower()
    assert "autosign" not in config
    assert lab.run(lab.master, "ls /etc/salt/master.d").stdout.split() == ["50-lemp-ha.conf"]
    accepted = lab.run(lab.master, "salt-key --out=json -l accepted").stdout
    for name in lab.machines:
        assert f'"{name}"' in accepted
    grains = lab.run("web1", "cat /etc/salt/grains 2>/dev/null; cat /etc/salt/minion.d/*.conf").stdout
    assert "lemp_ha_enrol" not in grains and "autosign" not in grains


def test_orch_site_succeeds_and_a_second_run_changes_nothing(lab):
    rc, first = lab.salt_run("state.orchestrate", "orch.site")
    assert rc == 0 and not orch_failures(first), orch_failures(first)
    rc, second = lab.salt_run("state.orchestrate", "orch.site")
    assert rc == 0 and not orch_failures(second), orch_failures(second)
    assert orch_changes(second) == 0


def test_machines_know_each_other_by_name(lab):
    for name, machine in lab.machines.items():
        resolved = lab.run("web1", f"getent hosts {name}").stdout.split()[0]
        assert resolved == machine["address"]


def test_secrets_reach_only_the_machines_that_use_them(lab):
    pillars = lab.salt("*", "pillar.get", "app:database:password", "unmask=True")
    for name, machine in lab.machines.items():
        expected = lab.secrets["passwords"]["app_db"] if {"web", "db"} & set(machine["roles"]) else ""
        assert pillars[name] == expected, name


def test_secrets_are_stored_encrypted_on_the_master(lab):
    password = lab.secrets["passwords"]["app_db"]
    found = lab.run(lab.master, f"grep -rl -- {password} /srv/lemp-ha-secrets /srv/lemp-ha || true").stdout
    assert found.strip() == ""
    assert "BEGIN PGP MESSAGE" in lab.run(lab.master, "cat /srv/lemp-ha-secrets/minions/web1.sls").stdout


def test_lab_machines_have_no_route_out(lab):
    for name in ("web1", "db1"):
        assert lab.run(name, "ip route show default").stdout.strip() == ""


@pytest.mark.destroys_lab
@pytest.mark.skipif(os.environ.get("CI") != "true", reason="destroys the lab; runs in CI (CI=true) only")
def test_lab_down_leaves_no_containers_bridge_or_processes(lab):
    subprocess.run([str(REPO / "lab"), "down"], check=True)
    containers = subprocess.run(["lxc-ls"], capture_output=True, text=True).stdout.split()
    assert [c for c in containers if c.startswith("lemp-ha-")] == []
    bridge = subprocess.run(["ip", "link", "show", lab.network["bridge"]], capture_output=True)
    assert bridge.returncode != 0
    leftovers = subprocess.run(["pgrep", "-af", "apt-cacher-ng|lxc-start|lxc monitor.*lemp-ha"],
                               capture_output=True, text=True).stdout.splitlines()
    # an exited process not yet reaped by its parent holds no resource
    assert [line for line in leftovers if "<defunct>" not in line] == []
