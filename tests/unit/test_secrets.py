"""Secrets: one way to report a missing one (_modules/lemp_secret.py), and
one place saying who receives which (the roles' `secrets:` in
pillar/roles.yaml)."""

import pathlib
import sys

import pytest
import yaml

import lemp_secret  # tests/conftest.py puts _modules on the path

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "lab"))

import lab_secrets  # noqa: E402

PILLAR = {"tls": {"vip": {"cert": "CERT", "key": ""}}, "sessions": {"redis_password": "pw"}}


def pillar_get(key, default=None, unmask=False):
    value = PILLAR
    for part in key.split(":"):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value


@pytest.fixture(autouse=True)
def loader(monkeypatch):
    monkeypatch.setattr(lemp_secret, "__salt__", {"pillar.get": pillar_get}, raising=False)


def test_a_present_secret_is_returned():
    assert lemp_secret.require("sessions:redis_password") == "pw"
    assert lemp_secret.require("tls:vip")["cert"] == "CERT"


@pytest.mark.parametrize("key", ["galera:sst_password", "tls:vip:key", "tls:cert"])
def test_a_missing_or_empty_secret_stops_the_render_naming_the_key_and_the_fix(key):
    with pytest.raises(Exception) as info:
        lemp_secret.require(key)
    assert str(info.value) == (
        f"secret {key} is missing from the pillar: every secret is named in pillar/secrets.spec.yaml; "
        "the lab generates them (./lab up), production puts them in the GPG-encrypted pillar (docs/secrets.md)")


def test_states_report_a_missing_secret_one_way():
    """No raise() on a secret, no fail_without_changes, no empty default."""
    offenders = []
    for path in sorted((REPO / "salt").rglob("*")):
        if path.suffix not in (".sls", ".jinja"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if ("fail_without_changes" in line or "missing secret" in line
                    or any(f"pillar.get']('{key}" in line for key in ("tls:", "galera:sst_password",
                                                                       "app:database:password",
                                                                       "sessions:redis_password"))):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "read secrets with salt['lemp_secret.require'](key):\n" + "\n".join(offenders)


def test_each_machine_receives_exactly_its_roles_secrets(tmp_path, topology):
    folder = lab_secrets.generate(tmp_path, REPO / "pillar" / "topology.yaml", REPO / "pillar" / "secrets.spec.yaml")
    spec = yaml.safe_load((REPO / "pillar" / "secrets.spec.yaml").read_text())
    keys = {lab_secrets.secret_name(kind, name): entry["pillar"]
            for kind in ("passwords", "tls", "cas") for name, entry in spec[kind].items()}
    keys[lab_secrets.APP_SECRETS] = spec["app_secrets"]["pillar"]
    # a per-machine key: a role naming it receives every machine's (`collected`)
    keys.update({name: entry["collected"] for name, entry in spec["per_machine"].items()})
    for name, machine in topology["machines"].items():
        pillar = yaml.safe_load((folder / "minions" / f"{name}.yaml").read_text())
        wanted = {s for role in machine["roles"] for s in topology["roles"][role]["secrets"]}
        received = {secret for secret, key in keys.items() if pillar_has(pillar, key)}
        # an SSH key pair: both halves (ssh_<name>) or the public one only (ssh_<name>_public)
        for key_name, entry in (spec.get("ssh_keys") or {}).items():
            if pillar_has(pillar, entry["private"]):
                assert pillar_has(pillar, entry["public"]), name
                received.add(f"ssh_{key_name}")
            elif pillar_has(pillar, entry["public"]):
                received.add(f"ssh_{key_name}_public")
        assert received == wanted, name
        # and every machine its own certificate and per-machine keys
        assert {"ca_cert", "cert", "key"} <= set(pillar["tls"])
        assert all(pillar_has(pillar, entry["pillar"]) for entry in spec["per_machine"].values()), name


def pillar_has(pillar, key):
    for part in key.split(":"):
        if not isinstance(pillar, dict) or part not in pillar:
            return False
        pillar = pillar[part]
    return True


def test_every_secret_a_role_receives_is_named_in_the_spec(topology):
    spec = {"passwords": {"app_db": {"pillar": "app:database:password"}}, "tls": {}}
    with pytest.raises(Exception, match=r"roles: \w+\.secrets names '\w+', which pillar/secrets.spec.yaml does not define"):
        lab_secrets.check_names(topology, spec)


def test_the_spec_names_secrets_and_roles_yaml_gives_them():
    spec = yaml.safe_load((REPO / "pillar" / "secrets.spec.yaml").read_text())
    for kind in ("passwords", "tls", "cas"):
        for name, entry in spec[kind].items():
            assert "roles" not in entry, f"secrets.spec.yaml {kind}.{name}: roles belong in pillar/roles.yaml"
