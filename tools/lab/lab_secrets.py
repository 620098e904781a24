#!/usr/bin/env python3
"""Generate the lab's secrets: one pillar document per machine.

    lab_secrets.py generate STATE_DIR TOPOLOGY SPEC

reads pillar/secrets.spec.yaml (what each secret is) and the derived
topology (which secrets each machine receives: its roles' ``secrets:`` in
pillar/roles.yaml) and writes, under STATE_DIR/secrets/ (root
only, never in the repo):

    ca.pem, ca.key            the lab CA (tests trust ca.pem)
    passwords.yaml            every generated password, by name
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
import lemp_topology  # noqa: E402

ALPHABET = string.ascii_letters + string.digits


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
    return [secret_name(kind, name) for kind in ("passwords", "tls") for name in (spec.get(kind) or {})]


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
    passwords = yaml.safe_load(pw_file.read_text()) if pw_file.exists() else {}
    passwords = passwords or {}
    for name in spec.get("passwords", {}):
        # Letters and digits only: some passwords end up in config lines
        # (haproxy tcp-check) where quoting rules differ.
        passwords.setdefault(name, "".join(random_source.choice(ALPHABET) for _ in range(32)))
    _write_private(pw_file, yaml.safe_dump(passwords, default_flow_style=False))

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
        _write_private(folder / "minions" / f"{name}.yaml", yaml.safe_dump(pillar, default_flow_style=False))
    return folder


def main(argv):
    if len(argv) != 5 or argv[1] != "generate":
        print(__doc__, file=sys.stderr)
        return 2
    try:
        folder = generate(argv[2], argv[3], argv[4])
    except lemp_topology.TopologyError as exc:
        print(exc, file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"secrets: openssl failed: {exc.stderr.decode(errors='replace')}", file=sys.stderr)
        return 1
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
