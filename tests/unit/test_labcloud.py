"""The lab's cloud engine (_modules/lemp_labcloud.py) boots and destroys the
web pool's machines only, with ./lab's Vagrant environment; and the lab host's
minion that runs it loads nothing else (tools/lab/labhost.sh)."""

import fcntl
import pathlib
import subprocess

import pytest

import lemp_labcloud  # tests/conftest.py puts _modules on the path

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def pool(topology):
    return lemp_labcloud.pool_names(topology)


def test_the_pool_is_the_topologys_scaling_pool(pool, topology):
    assert pool == [slot["name"] for slot in topology["scaling"]["web"]["pool"]]
    assert pool and not set(pool) & set(topology["machines"])


def test_a_pool_name_is_accepted(pool):
    assert lemp_labcloud.check_name(pool[0], pool) == pool[0]


@pytest.mark.parametrize("name", ["web1", "salt1", "db1", "lb1", "mon1", "web99", "labhost"])
def test_a_fixed_machine_or_a_name_outside_the_pool_is_refused_naming_the_pool(pool, name):
    with pytest.raises(Exception) as error:
        lemp_labcloud.check_name(name, pool)
    assert f"{name} is not in the web pool ({', '.join(pool)})" in str(error.value)
    assert "scaling.web.pool in pillar/topology.yaml" in str(error.value)


@pytest.mark.parametrize("name", ["web3; reboot", "--provider=virtualbox", "", None, "../web3", "WEB3"])
def test_what_is_not_a_machine_name_is_refused_before_the_pool_is_looked_at(pool, name):
    with pytest.raises(Exception) as error:
        lemp_labcloud.check_name(name, pool + [name])
    assert "is not a machine name" in str(error.value)


def test_vagrant_runs_in_the_checkout_with_the_labs_environment_only():
    environ = {"HOME": "/root", "LEMP_HA_STATE": "/var/lib/lemp-ha", "LEMP_HA_WEB_BOX": "plain",
               "SSH_AUTH_SOCK": "/tmp/agent", "PYTHONPATH": "/evil", "PATH": "/tmp/evil:/usr/bin"}
    env = lemp_labcloud.vagrant_env(REPO, environ)
    assert env["VAGRANT_CWD"] == str(REPO)
    assert env["VAGRANT_DEFAULT_PROVIDER"] == "lxc"
    assert env["VAGRANT_CHECKPOINT_DISABLE"] == "1"
    assert env["PATH"] == lemp_labcloud.PATH
    assert env["LEMP_HA_STATE"] == "/var/lib/lemp-ha" and env["LEMP_HA_WEB_BOX"] == "plain"
    assert "SSH_AUTH_SOCK" not in env and "PYTHONPATH" not in env


def test_vagrant_env_matches_what_lab_exports():
    # tools/lab/lib.sh: export VAGRANT_CWD=... VAGRANT_DEFAULT_PROVIDER=lxc VAGRANT_CHECKPOINT_DISABLE=1
    line = next(l for l in (REPO / "tools/lab/lib.sh").read_text().splitlines() if l.startswith("export VAGRANT_CWD"))
    exported = {word.split("=")[0] for word in line.split()[1:]}
    assert exported <= set(lemp_labcloud.vagrant_env(REPO, {}))


MACHINE_READABLE = """\
1732640000,web3,metadata,provider,lxc
1732640000,web3,provider-name,lxc
1732640000,web3,state,running
1732640000,web3,state-human-short,running
1732640000,web4,state,not_created
1732640000,web5,state,stopped
1732640000,web1,state,running
"""


def test_status_reports_every_pool_name_and_nothing_else(pool):
    states = lemp_labcloud.parse_status(MACHINE_READABLE, pool)
    assert states == {"web3": "running", "web4": "not_created", "web5": "stopped", "web6": "not_created"}


def test_the_module_loads_only_on_the_lab_hosts_minion():
    lemp_labcloud.__opts__ = {}
    try:
        loaded = lemp_labcloud.__virtual__()
        assert loaded[0] is False and "only the lab host's minion" in loaded[1]
        lemp_labcloud.__opts__ = {"lemp_labcloud": {"repo": str(REPO)}}
        assert lemp_labcloud.__virtual__() == "lemp_labcloud"
    finally:
        del lemp_labcloud.__opts__


def test_the_lab_host_minion_whitelists_the_lab_cloud_and_test_only(tmp_path):
    (tmp_path / "secrets" / "salt-master").mkdir(parents=True)
    (tmp_path / "secrets" / "salt-master" / "master_finger").write_text("ab:cd\n")
    script = (f"set -euo pipefail; source {REPO}/tools/lab/lib.sh; source {REPO}/tools/lab/labhost.sh; "
              f"LAB_STATE={tmp_path}; labhost_config 10.77.0.10")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    import yaml
    config = yaml.safe_load(out)
    assert config["id"] == "labhost" and config["master"] == "10.77.0.10"
    # the master's key is pinned, as on every lab machine
    assert config["master_finger"] == "ab:cd" and config["hash_type"] == "sha256"
    assert config["whitelist_modules"] == ["lemp_labcloud", "test"]
    assert config["enable_fqdns_grains"] is False
    assert config["root_dir"] == str(tmp_path / "labhost")
    assert config["lemp_labcloud"]["repo"] == str(REPO)
    assert config["module_dirs"] == [str(tmp_path / "labhost" / "ext")]


def _try_lock(path):
    with open(path, "w", encoding="utf-8") as other:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def test_one_vagrant_command_at_a_time_per_pool_machine_and_others_go_on(tmp_path):
    # two `up web4` at once would both mint web4's key; the second then fails
    with lemp_labcloud.machine_lock("web4", lock_dir=str(tmp_path)):
        assert not _try_lock(tmp_path / "lemp-labcloud-web4.lock")
        assert _try_lock(tmp_path / "lemp-labcloud-web3.lock")
    assert _try_lock(tmp_path / "lemp-labcloud-web4.lock")
