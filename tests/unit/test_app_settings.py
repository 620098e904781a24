"""The web application's settings (pillar app:) are checked by one pure
function, _modules/lemp_app.py, before any state renders: a bad setting is
refused naming the key and the fix."""

import copy
import pathlib

import pytest
import yaml

import lemp_app  # tests/conftest.py puts _modules on the path

REPO = pathlib.Path(__file__).resolve().parents[2]
WEB = [{"name": "web1", "address": "10.77.0.21"}, {"name": "web2", "address": "10.77.0.22"}]
VIP = "10.77.0.100"


def on_master(prefix):
    return ["app/public/index.php"] if prefix == "app/" else []


@pytest.fixture
def good():
    """The defaults merged with pillar/app.sls, as salt/webapp/map.jinja does."""
    app = yaml.safe_load((REPO / "salt" / "webapp" / "defaults.yaml").read_text())["webapp"]
    app.update({"name": "app", "version": "1.0.0", "source": {"path": "salt://app"}, "docroot": "public"})
    return app


def check(app, web=WEB):
    return lemp_app.validate(app, web, VIP, list_master=on_master)


def test_good_settings_give_the_release_paths_and_the_database_endpoint(good):
    checked = check(good)
    assert checked["app"] == good
    assert checked["version"] == "1.0.0"
    assert checked["app_dir"] == "/srv/www/app"
    assert checked["release_dir"] == "/srv/www/app/releases/1.0.0"
    assert checked["source_kind"] == "path"
    assert checked["db_host"] == VIP
    assert checked["first_web"] == "web1"


def test_a_database_host_in_the_pillar_wins_over_the_vip(good):
    good["database"]["host"] = "db.example.com"
    assert check(good)["db_host"] == "db.example.com"


def test_a_numeric_version_is_read_as_a_string(good):
    good["version"] = 2
    assert check(good)["release_dir"].endswith("/releases/2")


@pytest.mark.parametrize("source, kind", [
    ({"git": {"url": "https://git.example.com/app.git", "ref": "v1.0.0"}}, "git"),
    ({"archive": {"url": "https://dl.example.com/app.tgz", "hash": "sha256=00"}}, "archive"),
])
def test_git_and_archive_sources_are_accepted(good, source, kind):
    good["source"] = source
    assert check(good)["source_kind"] == kind


BAD = [
    ("no web node", {}, 'has no machine with role web: nothing to deploy to'),
    ("bad name", {"name": "App!"}, 'app:name "App!" is invalid: 1-32 of a-z 0-9 _ -, starting with a letter'),
    ("no version", {"version": ""}, 'app:version is missing: set it in pillar (pillar/app.sls)'),
    ("bad version", {"version": "1.0/../x"}, 'app:version "1.0/../x" is invalid: 1-64 of A-Z a-z 0-9'),
    ("dotdot version", {"version": "1..2"}, 'no ".."'),
    ("two sources", {"source": {"path": "salt://app", "git": {"url": "u", "ref": "r"}}},
     "app:source must name exactly one of path, git, archive (found: path, git)"),
    ("no source", {"source": {}}, "app:source must name exactly one of path, git, archive (found: none)"),
    ("path not on the master", {"source": {"path": "/srv/app"}},
     'app:source:path "/srv/app" must be a salt:// path on the master'),
    ("empty path", {"source": {"path": "salt://nothing"}},
     "app:source:path salt://nothing has no file on the master: nothing to deploy"),
    ("git without ref", {"source": {"git": {"url": "https://git.example.com/app.git"}}},
     "app:source:git needs url and ref (a branch, tag or commit)"),
    ("archive without hash", {"source": {"archive": {"url": "https://dl.example.com/app.tgz"}}},
     "app:source:archive needs url and hash (e.g. sha256=...)"),
    ("docroot escapes", {"docroot": "../etc"}, 'app:docroot "../etc" must be a relative path inside the release'),
    ("absolute docroot", {"docroot": "/var/www"}, 'app:docroot "/var/www" must be a relative path inside the release'),
]


@pytest.mark.parametrize("case, change, message", BAD, ids=[b[0] for b in BAD])
def test_bad_settings_are_refused_naming_the_key_and_the_fix(good, case, change, message):
    app = copy.deepcopy(good)
    app.update(change)
    with pytest.raises(Exception) as info:
        check(app, [] if case == "no web node" else WEB)
    assert message in str(info.value)


@pytest.mark.parametrize("version", ["1.0.0", "2024.01.31+build.7", "v2-rc_1", "a" * 64])
def test_check_version_accepts_release_names(version):
    assert lemp_app.check_version(version) == version


@pytest.mark.parametrize("version", ["", None, "-1", ".hidden", "1..2", "a" * 65, "1.0 beta", "1/2"])
def test_check_version_refuses_what_cannot_name_a_release_folder(version):
    with pytest.raises(Exception, match="app:version"):
        lemp_app.check_version(version)


def test_rollback_target_uses_the_same_rule():
    assert lemp_app.check_rollback_target("1.0.0") == "1.0.0"
    with pytest.raises(Exception, match=r'app:rollback_to "\.\./x" is missing or invalid'):
        lemp_app.check_rollback_target("../x")


VERSION_RULE_READERS = ["_modules", "_runners", "salt", "pillar", "orch"]


def test_the_version_rule_is_written_once_in_the_repo():
    rule = "[0-9A-Za-z._+-]{0,63}"
    files = [p for entry in VERSION_RULE_READERS
             for p in ((REPO / entry).rglob("*") if (REPO / entry).is_dir() else [REPO / entry])]
    found = [str(p.relative_to(REPO)) for p in files
             if p.suffix in (".py", ".sls", ".jinja", ".yaml", ".j2") and rule in p.read_text(errors="replace")]
    assert found == ["_modules/lemp_app.py"], found
