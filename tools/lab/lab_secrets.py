#!/usr/bin/env python3
"""Generate the lab's secrets: one pillar document per machine.

    lab_secrets.py generate STATE_DIR TOPOLOGY SPEC
    lab_secrets.py add-app-secrets STATE_DIR TOPOLOGY SPEC NAME...

reads pillar/secrets.spec.yaml (what each secret is) and the derived
topology (which secrets each machine receives: its roles' ``secrets:`` in
pillar/roles.yaml) and writes, under STATE_DIR/secrets/ (root
only, never in the repo):

    ca.pem, ca.key            the lab CA (tests trust ca.pem)
    passwords.yaml            every generated password, by name
    app_secrets.yaml          the application's secrets (pillar app_secrets:<name>),
                              by name: ``add-app-secrets`` adds names, then generates
    minions/<name>.yaml       the pillar of one machine: only its secrets

Existing values are kept, so re-running ``./lab up`` never rotates a
password under a running cluster. The master receives the minion files
GPG-encrypted (tools/lab/provision/encrypt-secrets.py).
"""

import os
import pathlib
import secrets as random_source  # noqa: I001
import string
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "_modules"))
import lemp_app  # noqa: E402  (pure: standard library only)
import lemp_topology  # noqa: E402

ALPHABET = string.ascii_letters + string.digits
# An app secret's name is a pillar key (app_secrets:<name>) the app reads,
# listed in app:secrets: one rule for both, lemp_app's (APP_KEY is a name
# PHP apps use), so that `./lab secrets add` accepts what the pillar does.
APP_SECRET_NAME_RE = lemp_app.SECRET_NAME_RE
APP_SECRETS = "app_secrets"  # the spec's key and the role secret name (pillar/roles.yaml)


class SecretNameError(ValueError):
    pass


def random_value():
    """32 letters and digits: some secrets end up in config lines (haproxy
    tcp-check) where quoting rules differ."""
    return "".join(random_source.choice(ALPHABET) for _ in range(32))


def _nest(tree, path, value):
    keys = path.split(":")
    for key in keys[:-1]:
        tree = tree.setdefault(key, {})
    tree[keys[-1]] = value


def _openssl(*args, stdin=None):
    subprocess.run(["openssl", *args], check=True, capture_output=True, input=stdin)


def _write_private(path, text):
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def ensure_ca(folder):
    key, cert = folder / "ca.key", folder / "ca.pem"
    if not (key.exists() and cert.exists()):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", str(key), "-out", str(cert), "-days", "3650", "-subj", "/CN=lemp-ha lab CA")
        key.chmod(0o600)
    return key, cert


def ensure_cert(folder, ca_key, ca_cert, name, dns_names, addresses):
    """A server+client certificate signed by the lab CA; kept once made."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    if key.exists() and cert.exists():
        return key.read_text(), cert.read_text()
    san = ",".join([f"DNS:{d}" for d in dns_names] + [f"IP:{a}" for a in addresses])
    with tempfile.TemporaryDirectory() as tmp:
        csr = pathlib.Path(tmp) / "req.csr"
        ext = pathlib.Path(tmp) / "ext.cnf"
        ext.write_text(
            f"subjectAltName={san}\nextendedKeyUsage=serverAuth,clientAuth\n"
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        )
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={dns_names[0]}")
        key.chmod(0o600)
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
                 "-CAcreateserial", "-out", str(cert), "-days", "825", "-extfile", str(ext))
    return key.read_text(), cert.read_text()


def secret_name(kind, name):
    """The name pillar/roles.yaml gives a secret of the spec: a password by
    its own name, a named certificate as tls_<name> (tls.vip: tls_vip)."""
    return name if kind == "passwords" else f"{kind}_{name}"


def spec_names(spec):
    names = [secret_name(kind, name) for kind in ("passwords", "tls") for name in (spec.get(kind) or {})]
    return names + ([APP_SECRETS] if spec.get(APP_SECRETS) else [])


def with_app_secrets(existing, names, make_value=random_value):
    """``existing`` (name -> value) with a new value for each of ``names``
    it lacks; existing values are kept, so adding never rotates a secret.
    Returns (all, the names added). A bad name raises naming the rule."""
    bad = [name for name in names if not APP_SECRET_NAME_RE.match(str(name))]
    if bad:
        raise SecretNameError(f"app secret name(s) {', '.join(map(repr, bad))} invalid: 1-64 of A-Z a-z 0-9 _, "
                              "not starting with a digit (the pillar key app_secrets:<name>, as in app:secrets)")
    merged = dict(existing or {})
    added = []
    for name in names:
        if name not in merged:
            merged[name] = make_value()
            added.append(name)
    return merged, added


def _read_yaml(path):
    return (yaml.safe_load(path.read_text()) if path.exists() else None) or {}


def add_app_secrets(state_dir, names):
    """Add ``names`` to STATE_DIR/secrets/app_secrets.yaml (new ones get a
    random value); the names added."""
    folder = pathlib.Path(state_dir) / "secrets"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "app_secrets.yaml"
    merged, added = with_app_secrets(_read_yaml(path), names)
    _write_private(path, yaml.safe_dump(merged, default_flow_style=False))
    return added


def check_names(topology, spec):
    """Every secret a role receives is named in the spec."""
    known = spec_names(spec)
    for role, decl in topology["roles"].items():
        for name in decl["secrets"]:
            if name not in known:
                raise lemp_topology.TopologyError(
                    f"roles: {role}.secrets names {name!r}, which pillar/secrets.spec.yaml does not define; "
                    f"known: {', '.join(known)}")


def generate(state_dir, topology_path, spec_path):
    topology = lemp_topology.load(topology_path)
    spec = yaml.safe_load(pathlib.Path(spec_path).read_text()) or {}
    folder = pathlib.Path(state_dir) / "secrets"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)

    pw_file = folder / "passwords.yaml"
    passwords = _read_yaml(pw_file)
    for name in spec.get("passwords", {}):
        passwords.setdefault(name, random_value())
    _write_private(pw_file, yaml.safe_dump(passwords, default_flow_style=False))
    app_secrets = _read_yaml(folder / "app_secrets.yaml")

    ca_key, ca_cert = ensure_ca(folder)
    domain = topology["network"]["domain"]
    vip = topology["network"]["vip"]
    named = {}
    for cert_name, cert_spec in (spec.get("tls") or {}).items():
        names = [f"{n}.{domain}" for n in cert_spec.get("names", [])] + list(cert_spec.get("names", []))
        key_pem, cert_pem = ensure_cert(folder / "certs", ca_key, ca_cert, cert_name,
                                        names or [cert_name], [vip] if cert_name == "vip" else [])
        named[cert_name] = (cert_spec, {"cert": cert_pem, "key": key_pem})

    check_names(topology, spec)
    for name, machine in topology["machines"].items():
        pillar = {}
        wanted = set(machine["secrets"])
        for pw_name, pw_spec in (spec.get("passwords") or {}).items():
            if pw_name in wanted:
                _nest(pillar, pw_spec["pillar"], passwords[pw_name])
        key_pem, cert_pem = ensure_cert(folder / "certs", ca_key, ca_cert, name,
                                        [f"{name}.{domain}", name], [machine["address"]])
        _nest(pillar, "tls:ca_cert", ca_cert.read_text())
        _nest(pillar, "tls:cert", cert_pem)
        _nest(pillar, "tls:key", key_pem)
        for cert_name, (cert_spec, material) in named.items():
            if secret_name("tls", cert_name) in wanted:
                _nest(pillar, cert_spec["pillar"], material)
        if APP_SECRETS in wanted and spec.get(APP_SECRETS):
            # Always the key, even empty: the machine's pillar says "no app secret yet".
            _nest(pillar, spec[APP_SECRETS]["pillar"], dict(app_secrets))
        _write_private(folder / "minions" / f"{name}.yaml", yaml.safe_dump(pillar, default_flow_style=False))
    return folder


def main(argv):
    if not ((len(argv) == 5 and argv[1] == "generate") or (len(argv) > 5 and argv[1] == "add-app-secrets")):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        if argv[1] == "add-app-secrets":
            added = add_app_secrets(argv[2], argv[5:])
            print(f"app secrets added: {' '.join(added) or 'none (all exist; values kept)'}", file=sys.stderr)
        folder = generate(argv[2], argv[3], argv[4])
    except (lemp_topology.TopologyError, SecretNameError) as exc:
        print(exc, file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"secrets: openssl failed: {exc.stderr.decode(errors='replace')}", file=sys.stderr)
        return 1
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
