"""Time sync's decision (_modules/lemp_time.py): chrony where the machine
keeps its own clock, nothing in a container, whose clock is the host's."""

import pytest

import lemp_time  # tests/conftest.py puts _modules on the path

# what Salt 3008 reports in the lab's LXC containers (systemd-detect-virt: lxc)
LXC = {"virtual": "container", "virtual_subtype": "LXC"}


@pytest.mark.parametrize("grains", [
    LXC,
    {"virtual": "container", "virtual_subtype": "Docker"},
    {"virtual": "container", "virtual_subtype": "Podman"},
    {"virtual": "systemd-nspawn"},
    {"virtual": "openvz"},
])
def test_a_container_installs_nothing_and_says_the_hosts_clock_serves(grains):
    decision = lemp_time.plan(grains)
    assert decision["chrony"] is False
    assert "container" in decision["why"] and "host's clock" in decision["why"]
    assert f"virtual={grains['virtual']}" in decision["why"]


@pytest.mark.parametrize("grains", [
    {"virtual": "physical"},
    {"virtual": "kvm"},
    {"virtual": "VMware"},
    {"virtual": "Nitro", "virtual_subtype": "Amazon EC2"},
    {"virtual": "VirtualBox"},
    {},
])
def test_a_machine_with_its_own_clock_runs_chrony(grains):
    decision = lemp_time.plan(grains)
    assert decision["chrony"] is True and "keeps its own clock" in decision["why"]


def test_the_pillar_forces_either_way():
    assert lemp_time.plan(LXC, "chrony")["chrony"] is True
    host = lemp_time.plan({"virtual": "kvm"}, "host")
    assert host["chrony"] is False and "mode is host" in host["why"]


def test_an_unknown_mode_names_the_pillar_key():
    with pytest.raises(lemp_time.TimeConfigError, match="common:lookup:time:mode 'ntpd' is not one of auto, chrony, host"):
        lemp_time.plan(LXC, "ntpd")
