"""Nothing committed looks like a plaintext secret (issue #13, the scan test).

Every file git tracks is read and searched for:

* PEM private keys (RSA, EC, DSA, OpenSSH, PKCS#8, encrypted, PGP): a BEGIN
  line followed by key material, not the bare marker a checker names;
* cloud and service tokens with a known shape (AWS access key ids, GitHub,
  Slack, Stripe live keys) and an AWS secret assigned by name;
* a high-entropy value (at least 16 characters, letters and digits,
  >= 3.5 bits of Shannon entropy per character) assigned (``=``, ``:``,
  ``=>``) to a name that says password, secret, token, key, psk or
  credential. Paths and URLs (``/etc/zabbix/zabbix_agent2.psk``) are
  values that name where a secret is, not secrets.

Secrets belong in the encrypted pillar (docs/secrets.md); the lab generates
its own at run time (tools/lab/lab_secrets.py), and tests that need a key
make it when they run. A match that is not a secret goes into ALLOWED with
the reason; a committed key never does.
"""

import collections
import math
import pathlib
import re
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

PEM_PRIVATE_KEY = re.compile(
    r"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY|PGP PRIVATE KEY BLOCK)-----[ \t]*\r?\n"
    r"(?:[\w-]+: [^\n]*\n)*\s*[A-Za-z0-9+/=]{40,}")
TOKEN = re.compile(r"\b(?:(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|xox[abprs]-[A-Za-z0-9-]{10,}"
                   r"|sk_live_[A-Za-z0-9]{20,})\b")
AWS_SECRET = re.compile(r"(?i)aws_?secret_?access_?key[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}\b")
ASSIGNED = re.compile(
    r"(?i)([\w.-]*(?:passw(?:or)?d|passwd|secret|token|api[_-]?key|psk|private[_-]?key|credentials?|auth[_-]?key)"
    r"[\w.-]*)[\"']?\s*(?:=|:|=>)\s*[\"']?([A-Za-z0-9+/=_\-!@#%^&*.~]{16,})")
MIN_ENTROPY = 3.5

# (path, name the value is assigned to) -> why it is not a secret. Keep it
# short; every entry says why.
ALLOWED = {
    # a made-up stats password the edge unit test renders into haproxy.cfg
    # (it never reaches a machine; the lab's comes from lab_secrets.py)
    ("tests/unit/test_edge.py", "PASSWORD"): "test fixture, not a deployed password",
}


def entropy(value):
    counts = collections.Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def looks_random(value):
    """Letters and digits, spread like a generated value; not a path or URL."""
    if value.startswith(("/", ".", "~")) or "://" in value:
        return False
    return bool(re.search(r"\d", value) and re.search(r"[A-Za-z]", value)) and entropy(value) >= MIN_ENTROPY


def findings(path, text):
    """[(path, what, name)] for every secret-looking thing in ``text``."""
    found = [(path, f"PEM {m.group(1)}", None) for m in PEM_PRIVATE_KEY.finditer(text)]
    found += [(path, f"token {m.group(0)[:8]}...", None) for m in TOKEN.finditer(text)]
    found += [(path, "AWS secret access key", None) for m in AWS_SECRET.finditer(text)]
    for match in ASSIGNED.finditer(text):
        name, value = match.group(1), match.group(2)
        if looks_random(value) and (path, name) not in ALLOWED:
            found.append((path, f"{name} = {value[:4]}... ({entropy(value):.1f} bits/char)", name))
    return found


# A copy without .git (./lab test's fresh-machine check runs the unit tests on
# one): every file but these folders, which are never committed.
UNTRACKED_DIRS = {".git", ".vagrant", "__pycache__", ".pytest_cache"}


def tracked_files():
    if not (REPO / ".git").exists():
        return sorted(str(path.relative_to(REPO)) for path in REPO.rglob("*")
                      if path.is_file() and not UNTRACKED_DIRS & set(path.relative_to(REPO).parts))
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name]


def test_no_tracked_file_holds_a_plaintext_secret():
    found = []
    for name in tracked_files():
        path = REPO / name
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # images: no text to leak
            continue
        found += findings(name, text)
    assert not found, "plaintext secrets in the repository (move them to the encrypted pillar, docs/secrets.md):\n" + \
        "\n".join(f"  {path}: {what}" for path, what, _ in found)


def test_every_allowed_entry_still_matches_something():
    # an allow-list entry whose match is gone hides nothing: remove it
    stale = [key for key in ALLOWED
             if not any(m.group(1) == key[1] and looks_random(m.group(2))
                        for m in ASSIGNED.finditer((REPO / key[0]).read_text(encoding="utf-8")))]
    assert not stale, stale


# The scanner itself, on values made here (a committed one would be found).
@pytest.fixture(scope="module")
def private_key_pem():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def random_value():
    import secrets

    # a digit and a letter always: 32 draws alone have no digit about once in
    # 120 runs, and the scan rightly ignores a value with no digit
    return "".join(secrets.choice("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(30)) + "7q"


def test_the_scan_finds_a_private_key_a_token_and_an_assigned_password(private_key_pem):
    value = random_value()
    aws = "AKIA" + "QWERTYUIOPASDFGH"
    text = "\n".join([private_key_pem, f"access: {aws}", f"db_password: '{value}'", f'APP_SECRET="{value}"',
                      f"redis:\n  password: {value}"])
    kinds = [what.split(" ")[0] for _, what, _ in findings("x.yaml", text)]
    assert kinds.count("PEM") == 1 and kinds.count("token") == 1
    assert [name for _, _, name in findings("x.yaml", text) if name] == ["db_password", "APP_SECRET", "password"]


def test_the_scan_passes_what_only_names_or_points_at_a_secret():
    text = "\n".join([
        "psk_file: /etc/zabbix/zabbix_agent2.psk",           # a path
        "password: {{ salt['pillar.get']('redis:password') }}",  # a pillar look-up
        "password_pillar: redis:password",                    # a pillar key
        "secret: changeme_changeme_changeme",                # no digit, low entropy: a placeholder
        "if 'PRIVATE KEY' not in text: raise",                # the marker a checker looks for
        "token_url: https://example.com/oauth2/token1234567890",
    ])
    assert findings("x.yaml", text) == []
