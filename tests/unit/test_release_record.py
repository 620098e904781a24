"""The release a highstate makes current (_modules/lemp_release.py): the one
orch.deploy last made current, until pillar/app.sls names another version or
source than it did then, and never again once orch.site has seen the pillar
move away from it; and the record of it, written atomically on the master."""

import json
import os

import pytest

import lemp_release  # tests/conftest.py puts _modules on the path

APP = {"name": "app", "version": "1.0.0", "source": {"path": "salt://app"}, "docroot": "public"}
GIT = {"git": {"url": "https://git.example.com/app.git", "ref": "v1.1.0"}}


BASE = lemp_release.fingerprint("1.0.0", {"path": "salt://app"})  # what pillar/app.sls (APP) names


def record(version="1.1.0", base=BASE, source=None):
    return {"app": {"version": version, "base": base, "source": source or GIT}}


def highstate(pillar_app, deployed):
    """The version a highstate makes current with this pillar and record."""
    return lemp_release.effective_app(pillar_app, deployed)["version"]


def orch_site(pillar_app, deployed):
    """orch.site's first step: the record after spending what the pillar moved away from."""
    return lemp_release.spent_record(deployed, lemp_release.to_spend(deployed, pillar_app["name"], pillar_app))


def test_the_deployed_release_wins_while_the_pillar_still_names_its_base():
    app = lemp_release.effective_app(APP, record())
    assert app["version"] == "1.1.0" and app["source"] == GIT
    assert app["docroot"] == "public"
    assert APP["version"] == "1.0.0", "the settings given are not modified"


def test_the_pillar_wins_once_someone_changed_its_version_after_the_deploy():
    app = lemp_release.effective_app(dict(APP, version="1.2.0"), record())
    assert app["version"] == "1.2.0" and app["source"] == {"path": "salt://app"}


def test_a_version_on_the_command_line_wins_over_the_record():
    # orch.deploy pillar='{"app": {"version": "1.3.0"}}': not the record's base
    assert lemp_release.effective_app(dict(APP, version="1.3.0"), record())["version"] == "1.3.0"


def test_a_renamed_app_starts_from_its_pillar():
    app = lemp_release.effective_app(dict(APP, name="shop"), record())
    assert app["version"] == "1.0.0"


@pytest.mark.parametrize("deployed", [{}, None, {"app": None}, {"app": {"base": "1.0.0"}}, "garbage"])
def test_no_usable_record_leaves_the_pillar_as_it_is(deployed):
    # {"app": None} is how orch.deploy sets the record aside while it runs.
    assert lemp_release.effective_app(APP, deployed) == APP


def test_a_numeric_pillar_version_compares_as_a_string():
    base = lemp_release.fingerprint("2", {"path": "salt://app"})
    assert lemp_release.effective_app(dict(APP, version=2), record(base=base))["version"] == "1.1.0"


def test_a_source_edited_under_the_same_version_is_a_change_the_pillar_wins():
    edited = dict(APP, source={"git": {"url": "https://git.example.com/app.git", "ref": "main"}})
    assert lemp_release.effective_app(edited, record()) == edited


def test_a_record_written_before_the_fingerprint_compares_the_version_only():
    assert highstate(APP, record(base="1.0.0")) == "1.1.0"
    assert highstate(dict(APP, version="1.2.0"), record(base="1.0.0")) == "1.2.0"


def test_pillar_reverted_to_base_after_orch_site_runs_the_pillars_release_not_the_record():
    # pillar 1.0.0; orch.deploy 1.1.0 (base 1.0.0); pillar edited to 1.2.0 and
    # applied by orch.site; later reverted to 1.0.0.
    deployed = record()
    assert highstate(APP, orch_site(APP, deployed)) == "1.1.0", "an unchanged pillar keeps the deploy"
    moved = dict(APP, version="1.2.0")
    deployed = orch_site(moved, deployed)
    assert highstate(moved, deployed) == "1.2.0"
    assert highstate(APP, orch_site(APP, deployed)) == "1.0.0", "the record is spent: no switch back to 1.1.0"
    assert orch_site(APP, deployed) == deployed, "spending twice changes nothing"


def test_renaming_the_app_back_does_not_bring_its_old_record_back():
    deployed = record()
    shop = dict(APP, name="shop")
    deployed = orch_site(shop, deployed)
    assert highstate(APP, deployed) == "1.0.0"


def test_spending_keeps_the_history_and_nothing_else():
    deployed = lemp_release.updated_record({}, "app", "1.1.0", GIT, BASE, [{"version": "1.0.0", "source": APP["source"]}])
    spent = orch_site(dict(APP, version="1.2.0"), deployed)
    assert spent == {"app": {"history": deployed["app"]["history"]}}
    assert lemp_release.source_of(spent, "app", "1.1.0") == GIT


def test_an_entry_recorded_again_since_the_plan_is_not_spent():
    planned = lemp_release.to_spend(record(), "app", dict(APP, version="1.2.0"))
    assert planned == {"app": BASE}
    redeployed = record("1.3.0", base=lemp_release.fingerprint("1.2.0", APP["source"]))
    assert lemp_release.spent_record(redeployed, planned) == redeployed


def test_the_history_remembers_each_versions_source_latest_last_and_bounded():
    deployed = {}
    for minor in range(lemp_release.HISTORY_SIZE + 5):
        deployed = lemp_release.updated_record(deployed, "app", f"1.{minor}.0", {"path": f"salt://app{minor}"}, BASE)
    deployed = lemp_release.updated_record(deployed, "app", "1.10.0", {"path": "salt://again"}, BASE)
    history = deployed["app"]["history"]
    assert len(history) == lemp_release.HISTORY_SIZE
    assert history[-1] == {"version": "1.10.0", "source": {"path": "salt://again"}}
    assert [item["version"] for item in history].count("1.10.0") == 1
    assert lemp_release.source_of(deployed, "app", "1.24.0") == {"path": "salt://app24"}
    assert lemp_release.source_of(deployed, "app", "1.0.0") is None, "forgotten"
    assert lemp_release.source_of(deployed, "shop", "1.10.0") is None


def test_a_record_without_source_keeps_the_pillars_source():
    app = lemp_release.effective_app(APP, {"app": {"version": "1.1.0", "base": "1.0.0", "source": {}}})
    assert app["version"] == "1.1.0" and app["source"] == {"path": "salt://app"}


def test_recording_replaces_only_that_apps_entry():
    before = {"shop": {"version": "9", "base": "8", "source": {}}, "app": {"version": "1.0.5", "base": "1.0.0", "source": {}}}
    after = lemp_release.updated_record(before, "app", "1.1.0", GIT, BASE)
    assert after == {"shop": before["shop"], "app": {"version": "1.1.0", "source": GIT, "base": BASE,
                                                     "history": [{"version": "1.1.0", "source": GIT}]}}
    assert before["app"]["version"] == "1.0.5"


def test_the_record_is_written_atomically_root_only_and_read_back(tmp_path):
    path = str(tmp_path / "lib" / "deployed.json")
    assert lemp_release.read_record(path) == {}
    lemp_release.write_record(record(), path)
    assert lemp_release.read_record(path) == record()
    assert os.stat(path).st_mode & 0o077 == 0
    lemp_release.write_record(record("1.2.0"), path)
    assert lemp_release.read_record(path)["app"]["version"] == "1.2.0"
    assert sorted(os.listdir(tmp_path / "lib")) == ["deployed.json"], "no temporary file left behind"


@pytest.mark.parametrize("text", ["{not json", json.dumps(["a list"])])
def test_a_broken_record_stops_the_pillar_naming_the_file_and_the_fix(tmp_path, text):
    path = tmp_path / "deployed.json"
    path.write_text(text)
    with pytest.raises(lemp_release.RecordError, match=f"{path} .*fix or delete it"):
        lemp_release.read_record(str(path))
