"""Every machine's baseline and the Salt master's boundaries (issue #13 items
6 and 7, docs/security.md):

* SSH takes keys only (salt/common/ssh.sls), as sshd itself reports it;
* a minion gets only its own roles' secrets: what a compromised web node can
  read of the pillar is its own, never the database's, the backups' nor the
  monitor's (pillar/roles.yaml `secrets`, pillar/secrets.spec.yaml);
* a minion cannot make the master run a command on another minion (no
  `peer` publishing), nor read the pillar tree or the secrets through the
  fileserver;
* on the master only root drives minions: a non-root user's `salt` is
  refused, and the loaded configuration has no ACL, no eauth, no peer
  publishing, and a blacklist of every other user (_modules/lemp_master.py);
* no world-readable file under /etc, /srv, /opt or /var/lib/lemp-ha* on any
  machine holds one of the lab's secret values (the scan's lab half; the
  repository's half is tests/unit/test_no_plaintext_secrets.py);
* every minion (the lab host's too) pins the master's key: its
  configuration's `master_finger` is the fingerprint of the key the master
  runs with, as the minion computes it when it authenticates.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def sshd_effective(lab, name):
    out = lab.run(name, "/usr/sbin/sshd -T 2>/dev/null").stdout
    return dict(line.split(None, 1) for line in out.splitlines() if " " in line)


def test_every_machine_takes_ssh_keys_only(lab):
    with ThreadPoolExecutor(max_workers=len(lab.machines)) as pool:
        effective = dict(zip(lab.machines, pool.map(lambda n: sshd_effective(lab, n), lab.machines)))
    wrong = {name: {k: conf.get(k) for k in ("passwordauthentication", "kbdinteractiveauthentication",
                                              "permitrootlogin", "permitemptypasswords")}
             for name, conf in effective.items()
             if (conf.get("passwordauthentication"), conf.get("kbdinteractiveauthentication"),
                 conf.get("permitrootlogin"), conf.get("permitemptypasswords"))
             != ("no", "no", "without-password", "no")}
    assert not wrong, wrong


def secret_pillar_keys():
    """{secret name: its pillar key} of the shared passwords."""
    spec = yaml.safe_load((REPO / "pillar" / "secrets.spec.yaml").read_text())
    return {name: entry["pillar"] for name, entry in spec["passwords"].items()}


def has_key(data, dotted):
    for part in dotted.split(":"):
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def own_pillar(lab, name):
    """What the minion itself gets from the master (salt-call, as an attacker
    on that machine would ask)."""
    out = lab.run(name, "salt-call --out=json pillar.items", timeout=120).stdout
    return json.loads(out)["local"]


def test_a_minion_reads_only_its_own_roles_secrets(lab, topology):
    keys = secret_pillar_keys()
    machines = topology["machines"]
    with ThreadPoolExecutor(max_workers=len(machines)) as pool:
        pillars = dict(zip(machines, pool.map(lambda n: own_pillar(lab, n), machines)))
    leaks, missing = {}, {}
    for name, machine in machines.items():
        mine = set(machine["secrets"])
        for secret, key in keys.items():
            held = has_key(pillars[name], key)
            if held and secret not in mine:
                leaks.setdefault(name, []).append(secret)
            if secret in mine and not held:
                missing.setdefault(name, []).append(secret)
    assert not leaks, f"secrets outside the machine's roles: {leaks}"
    # the check above means something only if the secrets do arrive where due
    assert not missing, f"secrets of the machine's roles not in its pillar: {missing}"


def test_a_web_minion_cannot_publish_to_another_minion_nor_read_the_pillar_tree(lab):
    web = lab.with_role("web")[0]
    db = lab.with_role("db")[0]
    # peer publishing is off on the master: the request is refused, nothing runs on db
    out = lab.run(web, f"salt-call --out=json publish.publish {db} cmd.run 'id'", check=False, timeout=120)
    result = json.loads(out.stdout or "{}").get("local")
    assert not result, out.stdout + out.stderr
    # the fileserver serves states, never pillar/ nor the secrets
    files = json.loads(lab.run(web, "salt-call --out=json cp.list_master", timeout=120).stdout)["local"]
    exposed = [f for f in files if f.startswith(("pillar/", "secrets", "lemp-ha-secrets"))
               or f.endswith((".gpg", "secrets.sls", "passwords.yaml"))]
    assert files and not exposed, exposed


# Salt's own computation of the fingerprint a minion compares with its
# master_finger (salt.crypt AsyncAuth: pem_finger of the key's file). Salt
# 3008.4's `salt-key -F master` prints another value (it hashes the PEM's
# BEGIN/END lines too: salt#69970), so it is not what is compared here.
MASTER_FINGER_CMD = ("/opt/salt/bin/python -c 'import salt.utils.crypt as c; "
                     "print(c.pem_finger(\"/etc/salt/pki/master/master.pub\", sum_type=\"sha256\"))'")


def minion_config(lab, name):
    """The minion's options from its minion.d files (the later file wins)."""
    out = lab.run(name, "for f in /etc/salt/minion.d/*.conf; do echo ---; cat \"$f\"; done").stdout
    config = {}
    for doc in yaml.safe_load_all(out):
        config.update(doc or {})
    return config


def test_every_minion_pins_the_masters_key(lab):
    finger = lab.run(lab.master, MASTER_FINGER_CMD).stdout.strip()
    assert len(finger.split(":")) == 32, finger
    # the lab made it before any minion existed, and keeps it with its secrets
    assert (lab.state_dir / "secrets" / "salt-master" / "master_finger").read_text().strip() == finger
    with ThreadPoolExecutor(max_workers=len(lab.machines)) as pool:
        configs = dict(zip(lab.machines, pool.map(lambda n: minion_config(lab, n), lab.machines)))
    configs["labhost (the lab host's minion)"] = yaml.safe_load((lab.state_dir / "labhost" / "minion").read_text())
    wrong = {name: (config.get("master_finger"), config.get("hash_type", "sha256"))
             for name, config in configs.items()
             if (config.get("master_finger"), config.get("hash_type", "sha256")) != (finger, "sha256")}
    assert not wrong, f"master's key {finger}; minions pinning something else: {wrong}"
    # pinned and answering: each minion accepted the master's key against its pin
    answers = lab.salt("--timeout=15", "*", "test.ping")
    assert all(answers.get(name) is True for name in lab.machines), answers


MASTER_ACL_CMD = ("/opt/salt/bin/python -c 'import json, salt.config; o = salt.config.master_config(\"/etc/salt/master\"); "
                  "print(json.dumps({k: o.get(k) for k in (\"publisher_acl\", \"publisher_acl_blacklist\", "
                  "\"external_auth\", \"peer\", \"peer_run\", \"sudo_acl\")}))'")


def test_only_root_drives_minions_from_the_master(lab):
    # a local user other than root (nobody) asks every minion: refused, nothing answers
    out = lab.run(lab.master, "timeout 60 runuser -u nobody -- salt --out=json --timeout=5 '*' test.ping",
                  check=False)
    answered = [name for name in lab.machines if f'"{name}": true' in out.stdout.lower()]
    assert out.returncode != 0 and not answered, out.stdout[-2000:] + out.stderr[-2000:]
    acl = json.loads(lab.run(lab.master, MASTER_ACL_CMD).stdout.strip().splitlines()[-1])
    assert acl["publisher_acl"] == {} and not acl["external_auth"] and acl["sudo_acl"] is False, acl
    assert acl["peer"] == {} and acl["peer_run"] == {}, acl
    assert acl["publisher_acl_blacklist"]["users"] == ["(?!(root|sudo_.+)$).*"], acl


# One lxc-attach per machine: the needles arrive on stdin into a root-only
# file in /run (never on a command line, gone on exit); find lists the
# world-readable regular files (-perm -o=r; symlinks not followed, -xdev:
# not the master's bind-mounted checkout, which the unit scan covers), and
# grep -F prints each file:needle it finds.
LEAK_SCAN = r"""
pat=$(mktemp -p /run lemp-ha-scan.XXXXXX) && trap 'rm -f "$pat"' EXIT
cat >"$pat"
find /etc /srv /opt /var/lib/lemp-ha* -xdev -type f -perm -o=r -size -20M -print0 2>/dev/null \
  | xargs -0 -r grep -F -o -H -I -f "$pat" 2>/dev/null
true
"""


def lab_secret_needles(state_dir):
    """{value: secret name} of every secret the lab generated: passwords, the
    app's secrets, per-machine keys (Zabbix PSKs), and of each private key
    (TLS, CAs, SSH, the Salt master's) its first line of key material."""
    folder = state_dir / "secrets"
    needles = {}

    def load(name):
        path = folder / name
        return (yaml.safe_load(path.read_text()) if path.exists() else None) or {}

    for name, value in load("passwords.yaml").items():
        needles[str(value)] = name
    for name, value in load("app_secrets.yaml").items():
        needles[str(value)] = f"app_secrets:{name}"
    for kind, values in load("per_machine.yaml").items():
        for machine, value in (values or {}).items():
            needles[str(value)] = f"{kind}:{machine}"
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix not in (".pub", ".pem", ".yaml", ".srl") or path.name == "master.pem":
            text = path.read_text(errors="replace")
            if "PRIVATE KEY-----" in text:
                body = [line for line in text.splitlines()[1:] if line and ":" not in line and "-----" not in line]
                if body:
                    needles[body[0]] = str(path.relative_to(folder))
    # short values would match by chance; the lab's are 32+ characters
    return {value: name for value, name in needles.items() if len(value) >= 16}


def test_no_world_readable_file_on_any_machine_holds_a_lab_secret(lab):
    needles = lab_secret_needles(lab.state_dir)
    assert len(needles) > 10, f"too few lab secrets read from {lab.state_dir / 'secrets'}: {len(needles)}"
    stdin = "\n".join(needles) + "\n"
    with ThreadPoolExecutor(max_workers=len(lab.machines)) as pool:
        outs = dict(zip(lab.machines, pool.map(lambda n: lab.run(n, LEAK_SCAN, timeout=240, input=stdin).stdout,
                                               lab.machines)))
    leaks = sorted({(name, line.rsplit(":", 1)[0], needles.get(line.rsplit(":", 1)[1], "?"))
                    for name, out in outs.items() for line in out.splitlines() if ":" in line})
    assert not leaks, "lab secrets in world-readable files (make them 0600/0640, or keep the value out):\n" + \
        "\n".join(f"  {machine}: {path} holds {secret}" for machine, path, secret in leaks)
