"""The release a highstate makes current (_modules/lemp_release.py): the one
orch.deploy last made current, until pillar/app.sls names another version
than it did then; and the record of it, written atomically on the master."""

import json
import os

import pytest

import lemp_release  # tests/conftest.py puts _modules on the path

APP = {"name": "app", "version": "1.0.0", "source": {"path": "salt://app"}, "docroot": "public"}
GIT = {"git": {"url": "https://git.example.com/app.git", "ref": "v1.1.0"}}


def record(version="1.1.0", base="1.0.0", source=None):
    return {"app": {"version": version, "base": base, "source": source or GIT}}


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
    assert lemp_release.effective_app(dict(APP, version=2), record(base="2"))["version"] == "1.1.0"


def test_a_record_without_source_keeps_the_pillars_source():
    app = lemp_release.effective_app(APP, {"app": {"version": "1.1.0", "base": "1.0.0", "source": {}}})
    assert app["version"] == "1.1.0" and app["source"] == {"path": "salt://app"}


def test_recording_replaces_only_that_apps_entry():
    before = {"shop": {"version": "9", "base": "8", "source": {}}, "app": {"version": "1.0.5", "base": "1.0.0", "source": {}}}
    after = lemp_release.updated_record(before, "app", "1.1.0", GIT, "1.0.0")
    assert after == {"shop": before["shop"], "app": {"version": "1.1.0", "source": GIT, "base": "1.0.0"}}
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
