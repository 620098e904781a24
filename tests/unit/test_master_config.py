"""The Salt master's configuration (salt/master, _modules/lemp_master.py):
what the formula writes from its defaults and the pillar, what it refuses at
render, and what the check_cmd refuses before a file lands."""

import pathlib

import pytest
import yaml

import lemp_master  # tests/conftest.py puts _modules on the path

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def settings():
    data = yaml.safe_load((REPO / "salt" / "master" / "defaults.yaml").read_text())["master"]
    data["id"] = "salt1"
    return data


def test_the_defaults_give_the_lab_masters_folders_reactor_and_no_auto_acceptance(settings):
    doc = lemp_master.config(settings)
    assert doc["id"] == "salt1"
    assert doc["file_roots"] == {"base": ["/srv/lemp-ha/salt", "/srv/lemp-ha-extras"]}
    assert doc["pillar_roots"] == {"base": ["/srv/lemp-ha/pillar", "/srv/lemp-ha-secrets"]}
    assert doc["runner_dirs"] == ["/srv/lemp-ha/_runners"]
    assert doc["module_dirs"] == ["/srv/lemp-ha-extras"]
    assert doc["gpg_keydir"] == "/etc/salt/gpgkeys"
    assert doc["enable_fqdns_grains"] is False
    assert doc["reactor"] == [
        {"lemp-ha/scale/request": ["/srv/lemp-ha-extras/reactor/scale_request.sls"]},
        {"salt/minion/*/start": ["/srv/lemp-ha-extras/reactor/web_start.sls"]},
    ]
    assert doc["publisher_acl"] == {} and doc["sudo_acl"] is False and "external_auth" not in doc
    assert doc["publisher_acl_blacklist"] == {"users": [lemp_master.NON_ROOT_USERS]}
    assert doc["peer"] == {} and doc["peer_run"] == {}
    assert doc["auto_accept"] is False and doc["open_mode"] is False
    assert not any(key.startswith("autosign") for key in doc)


def test_the_bootstrap_settings_are_all_carried_over(settings):
    # tools/lab/provision/salt.sh's bootstrap file is removed once this one
    # lands: every key it sets must be here too.
    text = (REPO / "tools" / "lab" / "provision" / "salt.sh").read_text()
    bootstrap = text[text.index("00-lemp-ha-bootstrap.conf 0644 <<CONF"):]
    bootstrap = bootstrap[bootstrap.index("\n") + 1:bootstrap.index("\nCONF")]
    keys = {line.split(":")[0] for line in bootstrap.splitlines() if line and not line.startswith((" ", "#"))}
    assert keys <= set(lemp_master.config(settings)), keys - set(lemp_master.config(settings))


def test_an_empty_list_switches_a_default_reaction_off(settings):
    settings["reactor"]["lemp-ha/scale/request"] = []
    assert lemp_master.config(settings)["reactor"] == [
        {"salt/minion/*/start": ["/srv/lemp-ha-extras/reactor/web_start.sls"]}]


def test_extra_options_pass_through(settings):
    settings["extra"] = {"keep_jobs_seconds": 86400}
    assert lemp_master.config(settings)["keep_jobs_seconds"] == 86400


@pytest.mark.parametrize("change, message", [
    ({"extra": {"autosign_grains_dir": "/etc/salt/autosign_grains"}},
     "master:extra:autosign_grains_dir would accept minion keys by themselves"),
    ({"extra": {"auto_accept": True}}, "master:extra:auto_accept would accept minion keys by themselves"),
    ({"extra": {"open_mode": True}}, "master:extra:open_mode would accept minion keys by themselves"),
    ({"extra": {"publisher_acl": {"deploy": [".*"]}}}, "master:extra:publisher_acl: only root drives minions"),
    ({"extra": {"external_auth": {"pam": {}}}}, "master:extra:external_auth: only root drives minions"),
    ({"extra": {"client_acl": {"deploy": [".*"]}}}, "master:extra:client_acl: only root drives minions"),
    ({"extra": {"peer": {".*": ["test.ping"]}}}, "master:extra:peer: only root drives minions on this master, and no minion"),
    ({"extra": {"peer_run": {".*": [".*"]}}}, "master:extra:peer_run: only root drives minions"),
    ({"extra": {"publisher_acl_blacklist": {}}}, "master:extra:publisher_acl_blacklist: only root drives"),
    ({"extra": {"file_roots": {}}}, "master:extra:file_roots is set by the formula: use pillar master:checkout"),
    ({"reactor": {"salt/minion/*/start": ["reactor/web_start.sls"]}},
     "master:reactor:salt/minion/*/start file 'reactor/web_start.sls' is neither an absolute path nor salt://"),
    ({"reactor": {"salt/minion/*/start": "nope"}}, "is neither an absolute path nor salt://"),
    ({"reactor": ["salt/minion/*/start"]}, "master:reactor must map an event tag to a list"),
    ({"checkout": "srv/lemp-ha"}, 'master:checkout "srv/lemp-ha" is not an absolute path'),
    ({"secrets": ""}, "master:secrets is empty: set it in pillar master:secrets"),
    ({"worker_threads": 0}, "master:worker_threads 0 must be a whole number >= 1"),
])
def test_a_bad_setting_stops_the_render_naming_the_pillar_key(settings, change, message):
    settings.update(change)
    with pytest.raises(Exception) as error:
        lemp_master.config(settings)
    assert message in str(error.value)


def test_salt_reactor_files_are_accepted(settings):
    settings["reactor"] = {"salt/minion/*/start": ["salt://reactor/web_start.sls"]}
    assert lemp_master.problems(settings) == []


# -- the check_cmd: the candidate loaded with the rest of master.d by Salt ----------


@pytest.fixture
def confdir(tmp_path):
    (tmp_path / "salt" / "master.d").mkdir(parents=True)
    return tmp_path / "salt"


def candidate(tmp_path, settings, **overrides):
    roots = tmp_path / "roots"
    for folder in ("salt", "pillar", "_runners", "extras/reactor", "secrets"):
        (roots / folder).mkdir(parents=True, exist_ok=True)
    (roots / "extras" / "reactor" / "web_start.sls").write_text("{}\n")
    (roots / "extras" / "reactor" / "scale_request.sls").write_text("{}\n")
    settings.update(checkout=str(roots), extras=str(roots / "extras"), secrets=str(roots / "secrets"),
                    reactor={"salt/minion/*/start": [str(roots / "extras/reactor/web_start.sls")],
                             "lemp-ha/scale/request": [str(roots / "extras/reactor/scale_request.sls")]})
    settings.update(overrides)
    path = tmp_path / "candidate.conf"
    path.write_text(yaml.safe_dump(lemp_master.config(settings)))
    return path


def test_a_good_candidate_passes_the_check(tmp_path, settings, confdir):
    assert lemp_master.check_candidate(str(candidate(tmp_path, settings)), str(confdir)) == []
    assert lemp_master.main(["check", str(candidate(tmp_path, settings)), str(confdir)]) == 0


def test_a_candidate_naming_a_missing_reactor_file_is_refused(tmp_path, settings, confdir):
    path = candidate(tmp_path, settings)
    text = path.read_text().replace("scale_request.sls", "missing.sls")
    path.write_text(text)
    errors = lemp_master.check_candidate(str(path), str(confdir))
    assert any("reactor lemp-ha/scale/request: file" in e and "missing.sls does not exist" in e for e in errors)
    assert lemp_master.main(["check", str(path), str(confdir)]) == 1


def test_autosign_left_in_another_master_file_is_refused(tmp_path, settings, confdir):
    (confdir / "master.d" / "10-other.conf").write_text("autosign_grains_dir: /etc/salt/autosign_grains\n")
    errors = lemp_master.check_candidate(str(candidate(tmp_path, settings)), str(confdir))
    assert any(e.startswith("autosign_grains_dir is set") for e in errors), errors


@pytest.mark.parametrize("other, message", [
    ("peer:\n  .*:\n    - test.ping\n", "peer is not empty"),
    ("peer_run:\n  web1:\n    - manage.up\n", "peer_run is not empty"),
])
def test_acls_left_in_a_later_master_file_are_refused(tmp_path, settings, confdir, other, message):
    (confdir / "master.d" / "90-other.conf").write_text(other)
    errors = lemp_master.check_candidate(str(candidate(tmp_path, settings)), str(confdir))
    assert any(e.startswith(message) for e in errors), errors


def test_a_loaded_configuration_without_the_blacklist_is_refused():
    # Salt merges master.d lists (a later file cannot drop the entry); the
    # check still names the case, e.g. a file that replaces the whole key
    errors = lemp_master.candidate_problems({"publisher_acl_blacklist": {"users": []}})
    assert errors == ["publisher_acl_blacklist no longer refuses every user but root: another file of "
                      "/etc/salt/master or master.d overrides it; remove that setting"]


@pytest.mark.parametrize("user, refused", [
    ("root", False), ("sudo_vagrant", False),   # root, directly or through sudo (with root's key)
    ("vagrant", True), ("zabbix", True), ("www-data", True), ("rootkit", True), ("sudo_", True), ("", True),
])
def test_the_blacklist_refuses_every_user_but_root(user, refused):
    # Salt's own check (salt.acl.PublisherACL), on the document the formula writes
    import salt.acl

    blacklist = lemp_master.config(yaml.safe_load(
        (REPO / "salt" / "master" / "defaults.yaml").read_text())["master"] | {"id": "salt1"})["publisher_acl_blacklist"]
    assert salt.acl.PublisherACL(blacklist).user_is_blacklisted(user) is refused


def test_the_bootstrap_file_is_left_out_of_the_check(tmp_path, settings, confdir):
    # the state removes it right after: its old autosign line does not count
    (confdir / "master.d" / lemp_master.BOOTSTRAP_NAME).write_text("autosign_grains_dir: /etc/salt/autosign_grains\n")
    assert lemp_master.check_candidate(str(candidate(tmp_path, settings)), str(confdir)) == []


def test_a_candidate_salt_cannot_read_is_refused(tmp_path, confdir):
    path = tmp_path / "broken.conf"
    path.write_text("file_roots: [unclosed\n")
    errors = lemp_master.check_candidate(str(path), str(confdir))
    assert errors and errors[0].startswith("Salt cannot read the master configuration with the new file")


def test_a_missing_folder_is_refused(tmp_path, settings, confdir):
    path = candidate(tmp_path, settings)
    path.write_text(path.read_text().replace(str(tmp_path / "roots" / "secrets"), str(tmp_path / "nowhere")))
    errors = lemp_master.check_candidate(str(path), str(confdir))
    assert any("pillar_roots:base folder" in e and "nowhere does not exist" in e for e in errors), errors


def test_the_file_is_yaml_salt_reads_back_with_a_header(settings):
    text = lemp_master.render(settings)
    assert text.startswith("# Managed by Salt (salt/master")
    assert yaml.safe_load(text) == lemp_master.config(settings)


# -- master_finger: what every minion pins -------------------------------------


@pytest.fixture(scope="module")
def master_key(tmp_path_factory):
    """A master key pair made here, as Salt makes it (salt.crypt.gen_keys),
    written where a minion keeps its master's key (minion_master.pub)."""
    import salt.crypt

    _, pub = salt.crypt.gen_keys(2048)
    path = tmp_path_factory.mktemp("pki") / "minion_master.pub"
    path.write_text(pub)
    return path


def test_the_fingerprint_is_the_one_the_minion_checks(master_key):
    # salt.crypt.AsyncAuth compares master_finger with pem_finger(path) of
    # minion_master.pub: the same value, or the minion refuses its master
    import salt.utils.crypt

    finger = lemp_master.master_finger(master_key.read_text())
    assert finger == salt.utils.crypt.pem_finger(str(master_key), sum_type="sha256")
    assert len(finger.split(":")) == 32 and all(len(pair) == 2 for pair in finger.split(":"))


def test_the_fingerprint_ignores_blank_lines_and_crlf_but_not_the_key(master_key):
    text = master_key.read_text()
    assert lemp_master.master_finger("\n" + text.replace("\n", "\r\n") + "\n\n") == lemp_master.master_finger(text)
    body = text.splitlines()
    body[1] = body[1][:-1] + ("A" if body[1][-1] != "A" else "B")
    assert lemp_master.master_finger("\n".join(body) + "\n") != lemp_master.master_finger(text)


def test_a_text_that_is_no_pem_key_is_refused_by_name():
    with pytest.raises(lemp_master.MasterConfigError, match="master_finger: not a PEM public key"):
        lemp_master.master_finger("ssh-rsa AAAA... not a PEM key")


def test_the_lab_makes_the_master_key_once_and_derives_its_fingerprint(tmp_path, master_key):
    import lab_secrets  # tests/conftest.py puts tools/lab on the path
    import salt.utils.crypt

    folder = tmp_path / "salt-master"
    finger = lab_secrets.ensure_salt_master_key(folder)
    assert (folder / "master.pem").read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert (folder / "master.pem").stat().st_mode & 0o077 == 0
    assert finger == salt.utils.crypt.pem_finger(str(folder / "master.pub"), sum_type="sha256")
    assert (folder / "master_finger").read_text() == finger + "\n"
    # kept: a second run never changes the key every minion pins
    before = (folder / "master.pem").read_text()
    assert lab_secrets.ensure_salt_master_key(folder) == finger
    assert (folder / "master.pem").read_text() == before
    # a key copied from a running master (./lab up adopts it) is kept as is
    adopted = tmp_path / "adopted"
    adopted.mkdir()
    (adopted / "master.pem").write_text(before)
    (adopted / "master.pub").write_text(master_key.read_text())
    assert lab_secrets.ensure_salt_master_key(adopted) == lemp_master.master_finger(master_key.read_text())
