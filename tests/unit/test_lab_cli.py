"""The lab's entry points refuse bad input before touching anything."""

import os
import pathlib
import shutil
import subprocess

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
needs_vagrant = pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant is not installed")


@pytest.fixture
def bad_topology(tmp_path):
    data = yaml.safe_load((REPO / "pillar" / "topology.yaml").read_text())
    data["machines"]["web2"]["address"] = data["machines"]["web1"]["address"]
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def vagrant(*args, **env):
    full_env = dict(os.environ, VAGRANT_CHECKPOINT_DISABLE="1", **env)
    return subprocess.run(["vagrant", *args], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=120)


@needs_vagrant
@pytest.mark.parametrize("provider", ["lxc", "virtualbox", "libvirt"])
def test_vagrantfile_validates_for_every_provider(provider, tmp_path):
    # Only the lab's own provider is installed here; the others' blocks are
    # checked as Vagrant code without their plugins.
    extra = [] if provider == "lxc" else ["--ignore-provider"]
    proc = vagrant("validate", *extra, VAGRANT_DEFAULT_PROVIDER=provider, LEMP_HA_STATE=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "validated successfully" in proc.stdout


@needs_vagrant
def test_vagrantfile_refuses_a_bad_topology_naming_the_entry(bad_topology, tmp_path):
    proc = vagrant("validate", LEMP_HA_TOPOLOGY=str(bad_topology), LEMP_HA_STATE=str(tmp_path))
    assert proc.returncode != 0
    assert "web2 address 10.77.0.21 is already used by web1" in proc.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="./lab runs as root")
def test_lab_up_stops_on_a_bad_topology_before_touching_anything(bad_topology, tmp_path):
    env = dict(os.environ, LEMP_HA_TOPOLOGY=str(bad_topology), LEMP_HA_STATE=str(tmp_path / "state"))
    proc = subprocess.run([str(REPO / "lab"), "up"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1
    assert "web2 address 10.77.0.21 is already used by web1" in proc.stderr
    assert f"edit {bad_topology}" in proc.stderr
    assert not (tmp_path / "state").exists(), "nothing may be generated for a refused topology"


def test_lab_without_a_command_prints_its_usage():
    proc = subprocess.run([str(REPO / "lab")], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "./lab up" in proc.stdout and "./lab test" in proc.stdout
