"""The Galera orchestrations list the plan the runner lemp_galera computes
from the minions' answers at render time: render them with canned answers
(the runner's questions to the minions faked) and check the runbook they produce."""

import json
import pathlib

import pytest

import salt.config as salt_config
import salt.loader
import salt.template

import lemp_topology  # noqa: E402
from by_path import load  # noqa: E402  (tests/unit/by_path.py)
from test_galera_plans import UUID, status  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    import yaml

    root = tmp_path_factory.mktemp("salt")
    extras = root / "extras"
    extras.mkdir()
    (extras / "orch").symlink_to(REPO / "orch")
    conf = root / "minion"
    conf.write_text(yaml.safe_dump({
        "file_client": "local",
        "id": "salt1",
        "root_dir": str(root / "r"),
        "cachedir": str(root / "cache"),
        "pki_dir": str(root / "pki"),
        "log_file": str(root / "log"),
        "file_roots": {"base": [str(REPO / "salt"), str(extras)]},
    }))
    opts = salt_config.minion_config(str(conf))
    opts["pillar"] = {"topology": lemp_topology.load(REPO / "pillar" / "topology.yaml")}
    return opts


def runner_module(name):
    return load(f"runner_{name}", f"_runners/{name}.py")


def render(env, sls, answers):
    """answers: fun -> {minion: ret}; a minion missing from it did not answer."""
    opts = dict(env)
    funcs = salt.loader.minion_mods(opts)
    calls = []

    def fake_ask(opts, tgt, fun, timeout=None, **kw):
        calls.append((fun, tgt))
        targets = tgt if isinstance(tgt, list) else [tgt]
        return {t: answers[fun][t] for t in targets if t in answers.get(fun, {})}

    def fake_runner(name, arg=None, kwarg=None, **kw):
        module, _, fun = name.partition(".")
        runner = runner_module(module)
        runner.__opts__ = {}
        runner._steps.ask = fake_ask
        return getattr(runner, fun)(*(arg or []), **(kwarg or {}))

    funcs["saltutil.runner"] = fake_runner
    rend = salt.loader.render(opts, funcs)
    path = REPO / (sls.replace(".", "/") + ".sls")
    high = salt.template.compile_template(
        str(path), rend, opts["renderer"], opts["renderer_blacklist"],
        opts["renderer_whitelist"], saltenv="base", sls=sls,
    )
    assert isinstance(high, dict), high
    # "salt.function: [...]" -> {"salt": [..., "function"]}, as the state compiler does
    normal = {}
    for sid, body in high.items():
        for key, args in body.items():
            if key.startswith("__"):
                continue
            mod, _, fun = key.partition(".")
            normal[sid] = {mod: list(args) + ([fun] if fun else [])}
    return normal, calls


def test_fresh_deploy_bootstraps_db1_then_joins_db2_then_garbd(env):
    not_there = "'galera.status' is not available."
    high, _ = render(env, "orch.galera.bootstrap", {"galera.status": {"db1": not_there, "db2": not_there}})
    ids = list(high)
    assert ids.index("bootstrap-new-galera-cluster-on-db1") < ids.index("join-galera-db2")
    assert ids.index("join-galera-db2") < ids.index("wait-galera-synced-db2") < ids.index("start-garbd-on-arb1")
    assert "galera-cluster-ready" in high
    assert "bootstrap-new-galera-cluster-on-db2" not in high
    # standalone server from the package: no grastate, not wsrep -> fresh too
    fresh = status(running=True)
    high, _ = render(env, "orch.galera.bootstrap", {"galera.status": {"db1": fresh, "db2": fresh}})
    assert "bootstrap-new-galera-cluster-on-db1" in high


def test_running_cluster_is_never_bootstrapped_only_joined(env):
    answers = {"galera.status": {"db1": status(primary=True), "db2": status(grastate={"uuid": UUID, "seqno": -1, "safe_to_bootstrap": 0})}}
    high, _ = render(env, "orch.galera.bootstrap", answers)
    assert not [i for i in high if i.startswith("bootstrap")]
    assert "join-galera-db2" in high and "join-galera-db1" not in high


def test_healthy_cluster_gives_no_function_steps(env):
    answers = {"galera.status": {"db1": status(primary=True), "db2": status(primary=True)}}
    high, _ = render(env, "orch.galera.site", answers)
    assert all(list(v) == ["salt"] and "state" in v["salt"] for v in high.values())
    ready = high["galera-cluster-ready"]["salt"]
    assert {"require": [{"salt": "start-garbd-on-arb1"}]} in ready
    first = high["create-galera-accounts-on-db1"]["salt"]
    assert {"require": [{"salt": "apply-highstate-on-database-tier"}]} in first


@pytest.mark.parametrize("db2, reason", [
    (None, "no usable answer from db2"),
    (status(grastate={"uuid": UUID, "seqno": 12, "safe_to_bootstrap": 1}), "this is an outage"),
])
def test_bootstrap_refuses_unknown_or_outage(env, db2, reason):
    answers = {"galera.status": {"db1": status()}}
    if db2 is not None:
        answers["galera.status"]["db2"] = db2
    high, _ = render(env, "orch.galera.bootstrap", answers)
    assert list(high) == ["galera-cluster-ready"]
    state = high["galera-cluster-ready"]["test"]
    assert "fail_without_changes" in state
    assert reason in json.dumps(state)


def test_recover_stops_everything_then_delegates(env):
    down = status(grastate={"uuid": UUID, "seqno": -1, "safe_to_bootstrap": 0})
    high, _ = render(env, "orch.galera_recover", {"galera.status": {"db1": down, "db2": down}})
    assert "stop-mariadb-on-db1" in high and "stop-mariadb-on-db2" in high
    assert "recover-galera-from-the-most-advanced-node" in high


def test_recover_positions_bootstraps_the_most_advanced_node(env):
    positions = {
        "db1": {"uuid": UUID, "seqno": 40, "safe_to_bootstrap": 0, "source": "wsrep-recover"},
        "db2": {"uuid": UUID, "seqno": 42, "safe_to_bootstrap": 0, "source": "wsrep-recover"},
    }
    high, _ = render(env, "orch.galera.recover_positions", {"galera.position": positions})
    ids = list(high)
    assert ids.index("mark-safe-to-bootstrap-db2") < ids.index("bootstrap-galera-from-db2")
    assert ids.index("bootstrap-galera-from-db2") < ids.index("join-galera-db1")
    assert "bootstrap-galera-from-db1" not in high


def test_recover_positions_refuses_when_a_node_is_unreadable(env):
    positions = {"db1": {"uuid": UUID, "seqno": 40, "safe_to_bootstrap": 0, "source": "grastate"}}
    high, _ = render(env, "orch.galera.recover_positions", {"galera.position": positions})
    assert list(high) == ["galera-cluster-ready"]
    assert "db2: no usable answer" in json.dumps(high)


def test_rolling_restart_one_node_at_a_time(env):
    answers = {"galera.status": {"db1": status(primary=True), "db2": status(primary=True)}}
    high, _ = render(env, "orch.galera_rolling_restart", answers)
    check = high["check-galera-cluster-complete-before-restarting-db2"]["salt"]
    assert {"require": [{"salt": "wait-galera-synced-db1"}]} in check
    answers["galera.status"]["db2"] = status(primary=True, synced=False)
    high, _ = render(env, "orch.galera_rolling_restart", answers)
    assert list(high) == ["galera-rolling-restart-refused"]
