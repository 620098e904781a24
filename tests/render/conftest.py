"""A real Salt master and minions (pytest-salt-factories) serving this repo.

The master serves salt/ and the folders the lab master exposes, and the
pillar with lab-like secrets in plain YAML (no GPG: rendering is what is
tested here). One minion stands in for each distinct set of roles, named
after the first machine with that set, so the pillar top matches it.
"""

import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "lab"))

import lab_secrets  # noqa: E402
import lemp_master  # noqa: E402  (tests/conftest.py puts _modules on the path)


@pytest.fixture(scope="session")
def representatives(topology):
    seen, names = set(), []
    for name, machine in topology["machines"].items():
        key = tuple(sorted(machine["roles"]))
        if key not in seen:
            seen.add(key)
            names.append(name)
    return names


@pytest.fixture(scope="session")
def pool_representative(topology):
    """A scaling-pool VM (role web_pool), as orch.enrol finds it once its
    minion started: its states and pillar render like a machine's."""
    return next(iter(topology.get("pool_machines") or {}), None)


@pytest.fixture(scope="session")
def salt_roots(tmp_path_factory):
    root = tmp_path_factory.mktemp("roots")
    extras = root / "extras"
    extras.mkdir()
    for folder in ("orch", "reactor", "_modules", "_states", "app"):
        if (REPO / folder).exists():
            (extras / folder).symlink_to(REPO / folder)
    state = root / "state"
    folder = lab_secrets.generate(state, REPO / "pillar" / "topology.yaml", REPO / "pillar" / "secrets.spec.yaml")
    secrets = root / "secrets" / "minions"
    secrets.mkdir(parents=True)
    for item in (folder / "minions").glob("*.yaml"):
        (secrets / f"{item.stem}.sls").write_text(item.read_text())
    # Scaling (orch.scale_*): web3 is enrolled and keyed, so that scale_in
    # has a node and scale_out takes web4; the decisions' records stay here.
    (root / "enrolled.json").write_text('{"web3": {"since": "2026-01-01T00:00:00Z", "by": "reactor"}}')
    return {"file": [str(REPO / "salt"), str(extras)], "pillar": [str(REPO / "pillar"), str(root / "secrets")],
            "extras": str(extras), "record": str(root / "deployed.json"),
            "enrolled": str(root / "enrolled.json"), "enrol_log": str(root / "enrol.log"), "root": str(root)}


@pytest.fixture(scope="session")
def salt_master(salt_factories, salt_roots):
    overrides = {
        "file_roots": {"base": salt_roots["file"]},
        "pillar_roots": {"base": salt_roots["pillar"]},
        "enable_fqdns_grains": False,
        # As the lab master (tools/lab/provision/salt.sh): the orchestrations
        # call the runners and modules of the checkout, with no sync step.
        "runner_dirs": [str(REPO / "_runners")],
        "module_dirs": [salt_roots["extras"]],
        # orch.deploy's record (pillar/deployed.sls): a test's own, not the host's
        "lemp_ha_deployed_record": salt_roots["record"],
        # orch.enrol's store of enrolled pool members (pillar/enrolled.sls) and its log
        "lemp_ha_enrolled_store": salt_roots["enrolled"],
        "lemp_ha_enrol_log": salt_roots["enrol_log"],
        # orch.scale_*: the scaling state and log (_runners/lemp_scale.py)
        "lemp_ha_scaling_state": salt_roots["root"] + "/scaling.json",
        "lemp_ha_scaling_log": salt_roots["root"] + "/scaling.log",
    }
    master = salt_factories.salt_master_daemon("render-master", overrides=overrides)
    with master.started():
        yield master


@pytest.fixture(scope="session")
def salt_minions(salt_master, representatives, pool_representative, topology):
    minions = {}
    started = []
    known = {**topology["machines"], **topology.get("pool_machines", {})}
    # Every minion pins the master's key as the lab's do (tools/lab/provision/
    # salt.sh): a fingerprint other than the one the minion itself computes
    # would stop it at its first authentication, and every render test here.
    pki = pathlib.Path(salt_master.config["pki_dir"])
    finger = lemp_master.master_finger((pki / "master.pub").read_text())
    for name in representatives + ([pool_representative] if pool_representative else []):
        # The machine's address on an interface, as in the lab (keepalived
        # picks its interface by address).
        address = known[name]["address"]
        grains = {"ip4_interfaces": {"eth0": [address]}, "ipv4": ["127.0.0.1", address]}
        minion = salt_master.salt_minion_daemon(
            name, overrides={"enable_fqdns_grains": False, "grains": grains,
                             "master_finger": finger, "hash_type": "sha256"})
        ctx = minion.started()
        ctx.__enter__()
        started.append(ctx)
        minions[name] = minion
    cli = salt_master.salt_cli(timeout=120)
    ret = cli.run("saltutil.sync_all", minion_tgt="*")
    assert ret.returncode == 0, ret
    # The load balancers build their backends from the web nodes' mine entry;
    # publish it as the lab does (the address, from the grains set above).
    for name in minions:
        if "web" in known[name]["roles"]:
            ret = cli.run("mine.send", "web_address", "mine_function=grains.get", "ip4_interfaces:eth0",
                          minion_tgt=name)
            assert ret.returncode == 0, ret
    yield minions
    for ctx in reversed(started):
        ctx.__exit__(None, None, None)


@pytest.fixture(scope="session")
def salt_cli(salt_master, salt_minions):
    return salt_master.salt_cli(timeout=120)


@pytest.fixture(scope="session")
def salt_run_cli(salt_master, salt_minions):
    return salt_master.salt_run_cli(timeout=120)
