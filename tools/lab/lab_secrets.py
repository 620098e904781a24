#!/usr/bin/env python3
"""Generate the lab's secrets: one pillar document per machine.

    lab_secrets.py generate STATE_DIR TOPOLOGY SPEC
    lab_secrets.py add-app-secrets STATE_DIR TOPOLOGY SPEC NAME...

reads pillar/secrets.spec.yaml (what each secret is) and the derived
topology (which secrets each machine receives: its roles' ``secrets:`` in
pillar/roles.yaml) and writes, under STATE_DIR/secrets/ (root
only, never in the repo):

    ca.pem, ca.key            the lab CA (tests trust ca.pem)
    ca-<name>.pem, .key       a dedicated CA (spec ``cas``): its certificates
                              go only to the machines whose roles name ca_<name>
    ssh/<name>, <name>.pub    SSH key pairs (spec ``ssh_keys``), ECDSA P-256
    salt-master/master.pem, master.pub, master_finger
                              the Salt master's key pair, made before any
                              minion exists, and its fingerprint, which every
                              minion's configuration pins (master_finger)
    passwords.yaml            every generated password, by name
    per_machine.yaml          per-machine keys (spec `per_machine`), by kind then machine
    app_secrets.yaml          the application's secrets (pillar app_secrets:<name>),
                              by name: ``add-app-secrets`` adds names, then generates
    minions/<name>.yaml       the pillar of one machine: only its secrets

Existing values are kept, so re-running ``./lab up`` never rotates a
password under a running cluster. The master receives the minion files
GPG-encrypted (tools/lab/provision/encrypt-secrets.py).
"""

import base64
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
import lemp_master  # noqa: E402  (master_finger: standard library only)
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


def random_hex_key(size=32):
    """``size`` random bytes as hex: a Zabbix PSK (32 bytes, 64 hex digits;
    Zabbix wants at least 16 bytes)."""
    return random_source.token_hex(size)


def with_machine_keys(existing, kind_spec, machine_names, make_value=random_hex_key):
    """``existing`` ({machine: value}) with a value for every machine of
    ``machine_names`` that lacks one; kept values are never rotated, and
    machines no longer in the topology are dropped."""
    size = int(kind_spec.get("bytes", 32))
    existing = existing or {}
    return {name: existing.get(name) or make_value(size) for name in machine_names}


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


def ensure_ca(folder, stem="ca", subject="lemp-ha lab CA"):
    """The CA <stem>.key / <stem>.pem in ``folder``; kept once made."""
    key, cert = folder / f"{stem}.key", folder / f"{stem}.pem"
    if not (key.exists() and cert.exists()):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", str(key), "-out", str(cert), "-days", "3650", "-subj", f"/CN={subject}")
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


def openssh_public_key(public_der, comment):
    """The authorized_keys line of an ECDSA P-256 public key, from its DER
    SubjectPublicKeyInfo (``openssl ec -pubout -outform DER``): the key is
    the uncompressed point, the last 65 bytes. OpenSSH's own encoding
    (RFC 5656): string "ecdsa-sha2-nistp256", string "nistp256", string Q.
    Made here so that the host needs no ssh-keygen, only openssl."""
    point = public_der[-65:]
    if len(point) != 65 or point[0] != 4:
        raise ValueError("not an uncompressed P-256 public key")

    def string(data):
        return len(data).to_bytes(4, "big") + data

    blob = string(b"ecdsa-sha2-nistp256") + string(b"nistp256") + string(point)
    return f"ecdsa-sha2-nistp256 {base64.b64encode(blob).decode()} {comment}"


def ensure_ssh_key(folder, name):
    """An SSH key pair (ECDSA P-256, PEM private key, which OpenSSH reads);
    kept once made. Returns (private PEM, public authorized_keys line)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    key, pub = folder / name, folder / f"{name}.pub"
    if not (key.exists() and pub.exists()):
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
        key.chmod(0o600)
        der = subprocess.run(["openssl", "ec", "-in", str(key), "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        pub.write_text(openssh_public_key(der, f"lemp-ha-{name}") + "\n")
    return key.read_text(), pub.read_text().strip()


SALT_MASTER_KEY_BITS = 4096


def ensure_salt_master_key(folder):
    """The Salt master's key pair in ``folder`` (master.pem RSA, PKCS#1 as
    Salt writes it; master.pub), kept once made (or adopted from a running
    master by ./lab up), and ``master_finger``, its fingerprint as minions
    check it (lemp_master.master_finger), derived again on every run from
    master.pub: the one value every minion configuration receives
    (Vagrantfile, tools/lab/labhost.sh). Returns the fingerprint."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    key, pub = folder / "master.pem", folder / "master.pub"
    if not key.exists():
        _openssl("genrsa", "-traditional", "-out", str(key), str(SALT_MASTER_KEY_BITS))
        pub.unlink(missing_ok=True)
    key.chmod(0o600)
    if not pub.exists():
        _openssl("rsa", "-in", str(key), "-pubout", "-out", str(pub))
    finger = lemp_master.master_finger(pub.read_text())
    (folder / "master_finger").write_text(finger + "\n")
    return finger


def secret_name(kind, name):
    """The name pillar/roles.yaml gives a secret of the spec: a password by
    its own name, a named certificate as tls_<name> (tls.vip: tls_vip), a
    dedicated CA's certificate as ca_<name> (cas.galera: ca_galera), an SSH
    key pair as ssh_<name> (both halves) or ssh_<name>_public."""
    if kind == "passwords":
        return name
    return f"ca_{name}" if kind == "cas" else f"{kind}_{name}"


def ca_holders(machines, ca_name):
    """The machines (name -> derived machine) that receive a certificate of
    the dedicated CA ``ca_name``: those whose roles name ca_<name>, and no
    other, so that holding one proves the role (Galera: db, arbitrator)."""
    wanted = secret_name("cas", ca_name)
    return [name for name, machine in machines.items() if wanted in machine["secrets"]]


def spec_names(spec):
    names = [secret_name(kind, name) for kind in ("passwords", "tls", "cas") for name in (spec.get(kind) or {})]
    for name in spec.get("ssh_keys") or {}:
        names += [f"ssh_{name}", f"ssh_{name}_public"]
    # A per-machine key reaches every machine (its own); a role that names it
    # also receives every machine's (the Zabbix server: all agents' PSKs).
    names += list(spec.get("per_machine") or {})
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
    machine_file = folder / "per_machine.yaml"
    stored = _read_yaml(machine_file)
    # The scaling pool's names get theirs too: a pool VM is configured like a
    # machine when it joins (its TLS certificate, its Zabbix agent's PSK).
    machines = {**topology["machines"], **topology.get("pool_machines", {})}
    per_machine = {kind: with_machine_keys(stored.get(kind), kind_spec or {}, list(machines))
                   for kind, kind_spec in (spec.get("per_machine") or {}).items()}
    _write_private(machine_file, yaml.safe_dump(per_machine, default_flow_style=False))

    ca_key, ca_cert = ensure_ca(folder)
    domain = topology["network"]["domain"]
    vip = topology["network"]["vip"]
    named = {}
    for cert_name, cert_spec in (spec.get("tls") or {}).items():
        names = [f"{n}.{domain}" for n in cert_spec.get("names", [])] + list(cert_spec.get("names", []))
        # `address`: a topology network key (internal_vip for the DB endpoint)
        address = topology["network"][cert_spec["address"]] if cert_spec.get("address") else None
        key_pem, cert_pem = ensure_cert(folder / "certs", ca_key, ca_cert, cert_name, names or [cert_name],
                                        [address] if address else ([vip] if cert_name == "vip" else []))
        named[cert_name] = (cert_spec, {"cert": cert_pem, "key": key_pem})

    # Dedicated CAs: a certificate of their own for each holder (SAN like the
    # machine's lab certificate), under certs/<ca name>/.
    dedicated = {}
    for ca_name, ca_spec in (spec.get("cas") or {}).items():
        own_key, own_cert = ensure_ca(folder, f"ca-{ca_name}", ca_spec.get("subject") or f"lemp-ha lab {ca_name} CA")
        issued = {}
        for name in ca_holders(machines, ca_name):
            key_pem, cert_pem = ensure_cert(folder / "certs" / ca_name, own_key, own_cert, name,
                                            [f"{name}.{domain}", name], [machines[name]["address"]])
            issued[name] = {"ca_cert": own_cert.read_text(), "cert": cert_pem, "key": key_pem}
        dedicated[ca_name] = (ca_spec, issued)

    ensure_salt_master_key(folder / "salt-master")

    ssh_keys = {name: (key_spec, ensure_ssh_key(folder / "ssh", name))
                for name, key_spec in (spec.get("ssh_keys") or {}).items()}

    check_names(topology, spec)
    for name, machine in machines.items():
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
        for ca_name, (ca_spec, issued) in dedicated.items():
            if name in issued:
                _nest(pillar, ca_spec["pillar"], issued[name])
        for key_name, (key_spec, (private, public)) in ssh_keys.items():
            if f"ssh_{key_name}" in wanted:
                _nest(pillar, key_spec["private"], private)
            if f"ssh_{key_name}" in wanted or f"ssh_{key_name}_public" in wanted:
                _nest(pillar, key_spec["public"], public)
        for kind, kind_spec in (spec.get("per_machine") or {}).items():
            _nest(pillar, kind_spec["pillar"], per_machine[kind][name])
            if kind in wanted:
                _nest(pillar, kind_spec["collected"], dict(per_machine[kind]))
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
