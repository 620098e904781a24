"""./lab secrets add NAME...: the app's own secrets get a random value each,
existing values are kept, and only the machines whose roles receive
app_secrets (pillar/roles.yaml) get them, under pillar app_secrets:<name>."""

import pathlib

import pytest
import yaml

import lab_secrets  # tests/conftest.py puts tools/lab on the path
import lemp_app  # and _modules

REPO = pathlib.Path(__file__).resolve().parents[2]
TOPOLOGY = REPO / "pillar" / "topology.yaml"
SPEC = REPO / "pillar" / "secrets.spec.yaml"


def counter():
    values = iter(f"value{i}" for i in range(100))
    return lambda: next(values)


def test_new_names_get_a_value_and_existing_ones_keep_theirs():
    merged, added = lab_secrets.with_app_secrets({"stripe_key": "kept"}, ["stripe_key", "mail_token", "jwt_secret"],
                                                 counter())
    assert merged == {"stripe_key": "kept", "mail_token": "value0", "jwt_secret": "value1"}
    assert added == ["mail_token", "jwt_secret"]


def test_a_name_given_twice_gets_one_value():
    merged, added = lab_secrets.with_app_secrets({}, ["a", "a"], counter())
    assert merged == {"a": "value0"} and added == ["a"]


@pytest.mark.parametrize("name", ["1key", "mail-token", "a:b", "", "x" * 65])
def test_a_name_that_is_not_a_pillar_key_is_refused_naming_the_rule(name):
    with pytest.raises(lab_secrets.SecretNameError, match=r"invalid: 1-64 of A-Z a-z 0-9 _, not starting with a digit"):
        lab_secrets.with_app_secrets({}, ["good", name])


@pytest.mark.parametrize("name", ["APP_KEY", "Stripe", "_token", "mail_token", "x" * 64, "1key", "a-b", ""])
def test_the_lab_accepts_exactly_the_secret_names_app_secrets_accepts(name):
    # One rule: a name app:secrets lists can be added with ./lab secrets add.
    try:
        lemp_app._secret_names({"secrets": [name]})
        in_pillar = True
    except lemp_app.AppSettingsError:
        in_pillar = False
    try:
        lab_secrets.with_app_secrets({}, [name], counter())
        in_lab = True
    except lab_secrets.SecretNameError:
        in_lab = False
    assert in_lab == in_pillar


def test_the_random_values_are_32_letters_and_digits_and_differ():
    values = {lab_secrets.random_value() for _ in range(20)}
    assert len(values) == 20
    assert all(len(v) == 32 and v.isalnum() and v.isascii() for v in values)


def machine_pillar(folder, name):
    return yaml.safe_load((folder / "minions" / f"{name}.yaml").read_text())


def test_added_secrets_reach_the_web_nodes_only_and_survive_a_regeneration(tmp_path, topology):
    folder = lab_secrets.generate(tmp_path, TOPOLOGY, SPEC)
    webs = [n for n, m in topology["machines"].items() if "web" in m["roles"]]
    others = [n for n in topology["machines"] if n not in webs]
    assert all(machine_pillar(folder, n)["app_secrets"] == {} for n in webs)

    assert lab_secrets.add_app_secrets(tmp_path, ["stripe_key"]) == ["stripe_key"]
    lab_secrets.generate(tmp_path, TOPOLOGY, SPEC)
    value = machine_pillar(folder, webs[0])["app_secrets"]["stripe_key"]
    assert len(value) == 32

    # Adding another name, then `./lab up` (generate again), keeps the first value.
    assert lab_secrets.add_app_secrets(tmp_path, ["stripe_key", "mail_token"]) == ["mail_token"]
    lab_secrets.generate(tmp_path, TOPOLOGY, SPEC)
    for name in webs:
        assert machine_pillar(folder, name)["app_secrets"]["stripe_key"] == value
        assert set(machine_pillar(folder, name)["app_secrets"]) == {"stripe_key", "mail_token"}
    for name in others:
        assert "app_secrets" not in machine_pillar(folder, name), name
    assert (folder / "app_secrets.yaml").stat().st_mode & 0o077 == 0


def test_the_command_line_refuses_a_bad_name_before_writing_anything(tmp_path, capsys):
    rc = lab_secrets.main(["lab_secrets.py", "add-app-secrets", str(tmp_path), str(TOPOLOGY), str(SPEC), "Bad-Name"])
    assert rc == 1
    assert "'Bad-Name' invalid" in capsys.readouterr().err
    assert not (tmp_path / "secrets" / "app_secrets.yaml").exists()


def test_the_web_role_receives_app_secrets_named_in_the_spec():
    roles = yaml.safe_load((REPO / "pillar" / "roles.yaml").read_text())
    spec = yaml.safe_load(SPEC.read_text())
    assert "app_secrets" in roles["web"]["secrets"]
    assert spec["app_secrets"]["pillar"] == "app_secrets"
