"""The rolling plans of _runners/lemp_web.py (orch.deploy, orch.rollback),
without Salt daemons: one web node at a time, drained on both load balancers
before it switches, and back only once its /healthz serves the release."""

import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
import lemp_topology  # tests/conftest.py puts _modules on the path
from by_path import load

# The runner by path, not _runners on sys.path (see test_galera_plans.py).
lemp_web = load("lemp_web_runner", "_runners/lemp_web.py")

from test_galera_plans import arg, ids, requires  # noqa: E402

WEBS, LBS = ["web1", "web2"], ["lb1", "lb2"]
PER_NODE = ["drain-{web}-on-both-lbs", "wait-until-{web}-has-no-session-on-both-lbs", "{switch}",
            "check-healthz-on-{web}-serves-release-{release}", "enable-{web}-on-both-lbs",
            "wait-until-{web}-is-up-on-both-lbs"]


def per_node(web, switch, release):
    return [i.format(web=web, switch=switch, release=release) for i in PER_NODE]


def test_members_come_from_the_topology_roles():
    topology = lemp_topology.load(REPO / "pillar" / "topology.yaml")
    assert lemp_web.members(topology) == (WEBS, LBS)
    with pytest.raises(ValueError, match="the topology has no machine with role lb"):
        lemp_web.members({"roles": {"web": {"members": [{"name": "web1"}]}, "lb": {"members": []}}})


def test_deploy_unpacks_migrates_once_then_switches_one_node_at_a_time():
    steps = lemp_web.deploy_steps(WEBS, LBS, "web", "1.1.0", {"path": "salt://app"}, "app", "1.0.0")
    assert ids(steps) == [
        "sync-custom-modules-on-web-and-lb-nodes", "unpack-release-1.1.0-on-all-web-nodes",
        "migrate-database-for-release-1.1.0-from-web1",
    ] + per_node("web1", "switch-web1-to-release-1.1.0", "1.1.0") + per_node(
        "web2", "switch-web2-to-release-1.1.0", "1.1.0") + ["record-app-release-1.1.0-as-deployed-on-the-master"]
    for before, step in zip(steps, steps[1:]):
        assert requires(step) == [{"salt": before["id"]}]
    drain = steps[3]
    assert [arg(drain, key) for key in ("name", "tgt", "arg")] == ["haproxy_runtime.drain", "lb1,lb2", ["web", "web1"]]
    # the record of an earlier deploy is set aside while this one runs
    assert arg(steps[5], "pillar") == {"app": {"version": "1.1.0", "source": {"path": "salt://app"}},
                                       "app_deployed": {"app": None}}
    # the gate: the node's own /healthz/deep, judged by lemp_healthz (ok, deep, this release; not maintenance)
    gate = steps[6]
    assert arg(gate, "name") == "lemp_healthz.wait" and arg(gate, "tgt") == "web1"
    assert arg(gate, "arg") == ["https://127.0.0.1/healthz/deep"]
    assert {k: arg(gate, "kwarg")[k] for k in ("check", "release", "insecure")} == {
        "check": "deep", "release": "1.1.0", "insecure": True}


def test_rollback_checks_the_release_then_uses_the_same_rolling_step():
    steps = lemp_web.rollback_steps(WEBS, LBS, "web", "/srv/www/app", "1.0.0")
    assert ids(steps)[:2] == ["sync-custom-modules-on-web-and-lb-nodes",
                              "check-release-1.0.0-is-complete-on-all-web-nodes"]
    assert ids(steps)[2:8] == per_node("web1", "switch-web1-back-to-release-1.0.0", "1.0.0")
    assert arg(steps[4], "sls") == "webapp.rollback"
    assert arg(steps[4], "pillar") == {"app": {"rollback_to": "1.0.0"}}
    assert arg(steps[5], "name") == "lemp_healthz.wait" and arg(steps[5], "kwarg")["release"] == "1.0.0"
    assert "/srv/www/app/releases/1.0.0/.lemp-ha-release" in arg(steps[1], "arg")[0]
    assert ids(steps)[-1] == "record-app-release-1.0.0-as-deployed-on-the-master"


def test_deploy_and_rollback_end_by_recording_the_release_and_the_pillars_version():
    deploy = lemp_web.deploy_steps(WEBS, LBS, "web", "1.1.0", {"path": "salt://app"}, "shop", "1.0.0")[-1]
    assert deploy["state"] == "salt.runner"
    assert [arg(deploy, key) for key in ("name", "app_name", "version", "source", "base")] == [
        "lemp_web.record_deployed", "shop", "1.1.0", {"path": "salt://app"}, "1.0.0"]
    assert requires(deploy) == [{"salt": "wait-until-web2-is-up-on-both-lbs"}]
    rollback = lemp_web.rollback_steps(WEBS, LBS, "web", "/srv/www/shop", "1.0.0", "shop", "1.0.0",
                                       {"path": "salt://shop"})[-1]
    assert [arg(rollback, key) for key in ("name", "app_name", "version", "source", "base")] == [
        "lemp_web.record_deployed", "shop", "1.0.0", {"path": "salt://shop"}, "1.0.0"]


def test_the_record_step_writes_the_file_the_pillar_reads(monkeypatch, tmp_path):
    path = tmp_path / "deployed.json"
    monkeypatch.setattr(lemp_web, "__opts__", {lemp_web.lemp_release.OPTION: str(path)}, raising=False)
    lemp_web.record_deployed("shop", "2.0.0", {"path": "salt://shop"}, "1.0.0#x",
                             [{"version": "1.0.0", "source": {"path": "salt://shop1"}}])
    lemp_web.record_deployed("app", "1.1.0", None, "1.0.0#y")
    assert lemp_web.lemp_release.read_record(str(path)) == {
        "shop": {"version": "2.0.0", "source": {"path": "salt://shop"}, "base": "1.0.0#x",
                 "history": [{"version": "1.0.0", "source": {"path": "salt://shop1"}},
                             {"version": "2.0.0", "source": {"path": "salt://shop"}}]},
        "app": {"version": "1.1.0", "source": {}, "base": "1.0.0#y", "history": [{"version": "1.1.0", "source": {}}]}}


PILLAR_APP = {"name": "app", "version": "1.0.0", "source": {"path": "salt://app"}}
GIT_1_1 = {"git": {"url": "https://git.example.com/app.git", "ref": "v1.1.0"}}


def test_deploy_records_a_fingerprint_of_the_pillars_version_and_source_and_its_source():
    base, known = lemp_web.pillar_base(PILLAR_APP)
    assert base == lemp_web.lemp_release.fingerprint("1.0.0", {"path": "salt://app"})
    assert known == [{"version": "1.0.0", "source": {"path": "salt://app"}}]
    step = lemp_web.deploy_steps(WEBS, LBS, "web", "1.1.0", GIT_1_1, "app", base, known)[-1]
    assert arg(step, "base") == base and arg(step, "known") == known


def test_rollback_records_the_targets_own_source_not_the_pillars():
    # pillar 1.0.0 (salt://app); orch.deploy 1.1.0 from git, then 1.2.0 from
    # an archive; orch.rollback to 1.1.0 records 1.1.0's git source.
    release = lemp_web.lemp_release
    base, known = lemp_web.pillar_base(PILLAR_APP)
    record = release.updated_record({}, "app", "1.1.0", GIT_1_1, base, known)
    record = release.updated_record(record, "app", "1.2.0", {"archive": {"url": "https://x/1.2.tgz", "hash": "h"}},
                                    base, known)
    assert lemp_web.rollback_source(record, "app", "1.1.0", PILLAR_APP) == GIT_1_1
    assert lemp_web.rollback_source(record, "app", "1.0.0", PILLAR_APP) == {"path": "salt://app"}
    # Made by a highstate from an older pillar and never recorded: unknown.
    assert lemp_web.rollback_source({}, "app", "0.9.0", PILLAR_APP) == {}
    assert lemp_web.rollback_source({}, "app", "1.0.0", PILLAR_APP) == {"path": "salt://app"}


def test_orch_site_spends_a_record_once_the_pillar_moved_away_and_otherwise_changes_nothing(monkeypatch, tmp_path):
    release = lemp_web.lemp_release
    path = tmp_path / "deployed.json"
    monkeypatch.setattr(lemp_web, "__opts__", {release.OPTION: str(path)}, raising=False)
    base, known = lemp_web.pillar_base(PILLAR_APP)
    lemp_web.record_deployed("app", "1.1.0", GIT_1_1, base, known)
    topology = lemp_topology.load(REPO / "pillar" / "topology.yaml")
    after = "validate-topology-before-touching-any-machine"

    monkeypatch.setattr(lemp_web, "_pillar_app", lambda minion: PILLAR_APP)
    (keep,) = lemp_web.spend(topology, "app", after)["steps"]
    assert keep["id"] == lemp_web.SPEND_STEP and keep["state"] == "test.succeed_without_changes"
    assert requires(keep) == [{"salt": after}]

    monkeypatch.setattr(lemp_web, "_pillar_app", lambda minion: dict(PILLAR_APP, version="1.2.0"))
    (step,) = lemp_web.spend(topology, "app", after)["steps"]
    assert step["id"] == lemp_web.SPEND_STEP and step["state"] == "salt.runner"
    assert arg(step, "name") == "lemp_web.spend_records" and arg(step, "spend") == {"app": base}
    assert lemp_web.spend_records(arg(step, "spend"))["spent"] == ["app"]
    assert release.effective_app(PILLAR_APP, release.read_record(str(path)))["version"] == "1.0.0"
    assert lemp_web.spend_records(arg(step, "spend"))["spent"] == [], "a second run changes nothing"


@pytest.mark.parametrize("rollback_to, link, target", [
    ("1.0.0", "releases/0.9.0", "1.0.0"),
    ("", "releases/0.9.0", "0.9.0"),
    ("", "ERROR: no such link", None),
    ("", None, None),
    ("../etc", None, None),
    ("", "releases/../../etc", None),
])
def test_rollback_target_is_the_given_release_or_the_previous_link(rollback_to, link, target):
    assert lemp_web.rollback_target(rollback_to, link) == target


def test_rollback_without_a_previous_release_is_refused_before_anything_runs(monkeypatch):
    monkeypatch.setattr(lemp_web, "__opts__", {}, raising=False)
    monkeypatch.setattr(lemp_web._steps, "ask", lambda opts, tgt, fun, **kw: {tgt: "ERROR: not a link"})
    plan = lemp_web.rollback(lemp_topology.load(REPO / "pillar" / "topology.yaml"), "web", "/srv/www/app")
    assert plan == {"refusal": "orch.rollback: no release to roll back to (web1 has no /srv/www/app/previous link); "
                               'pass pillar={"app": {"rollback_to": "X.Y.Z"}}'}


def test_rollback_to_an_invalid_release_is_refused_naming_it(monkeypatch):
    monkeypatch.setattr(lemp_web, "__opts__", {}, raising=False)
    plan = lemp_web.rollback(lemp_topology.load(REPO / "pillar" / "topology.yaml"), "web", "/srv/www/app",
                             rollback_to="../etc")
    assert plan == {"refusal": 'orch.rollback: app:rollback_to "../etc" is missing or invalid: '
                               "the release to switch back to"}


def test_a_deploy_from_a_salt_path_with_no_file_on_the_master_is_refused_before_anything_runs(monkeypatch):
    monkeypatch.setattr(lemp_web, "__salt__", {"fileserver.file_list": lambda saltenv: ["app/index.php", "top.sls"]},
                        raising=False)
    topology = lemp_topology.load(REPO / "pillar" / "topology.yaml")
    plan = lemp_web.deploy(topology, "8.1", "web", {"path": "salt://no-such-app"})
    assert plan == {"refusal": "orch.deploy: app:source:path salt://no-such-app has no file on the master: "
                               "nothing to deploy"}
    plan = lemp_web.deploy(topology, "8.1", "web", {"path": "salt://ap"})  # a prefix of app/ is not app/
    assert "refusal" in plan


def test_the_path_source_check_passes_a_path_with_files_and_every_other_kind_of_source():
    import lemp_app

    lemp_app.check_path_source({"path": "salt://app"}, ["app/index.php"])
    lemp_app.check_path_source({"path": "salt://app/"}, ["app/index.php"])
    lemp_app.check_path_source({"git": {"url": "https://example.org/x.git", "ref": "main"}}, [])
    lemp_app.check_path_source({}, [])
