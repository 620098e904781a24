"""
The Salt master's own configuration (salt/master), built and checked here.

salt/master/map.jinja merges salt/master/defaults.yaml with pillar `master`
and hands the result to :func:`config`, which returns the master.d document
(file_roots, pillar_roots, runner and module folders, the GPG pillar keys,
the reactor, the ACLs) or stops the render with an error naming the pillar
key and the fix. The template only dumps it.

The same file is the ``check_cmd`` of the state that writes
/etc/salt/master.d/50-lemp-ha.conf (run with the master's Python,
``python lemp_master.py check CANDIDATE``): :func:`check_candidate` loads
the candidate with every other master.d file through Salt's own config
loader and refuses it, so that Salt never writes it, when Salt cannot read
it, when it brings back auto-acceptance of keys (``autosign_*``,
``auto_accept``, ``open_mode``) or ACLs for other users, or when a folder
or reactor file it names does not exist. A bad master.d is never written;
the running master is never restarted onto one.

Rules (:func:`problems`), each error names the pillar key:

* reactions: pillar ``master:reactor`` maps an event tag to a list of
  reactor sls files; an empty list switches a default reaction off; a file
  is an absolute path or ``salt://``; tags are non-empty;
* only root drives minions (least privilege: the master runs as root and
  only root, directly or through sudo, runs salt/salt-run on it):
  ``publisher_acl`` is empty and ``publisher_acl_blacklist`` refuses every
  other user (:data:`NON_ROOT_USERS`), ``sudo_acl`` is off, and
  ``external_auth`` is absent: nothing of the platform uses salt-api or
  eauth, and the Zabbix scaling action sends an event through the monitor's
  own minion (authenticated by its key), not through the master.
  ``client_acl`` is the name ``publisher_acl`` had before Salt 2016.11;
  Salt 3008 no longer reads it, so it is not written, only refused;
* no minion drives another: ``peer`` and ``peer_run`` are empty
  (``publish.publish`` / ``publish.runner`` from a minion are refused);
* keys are accepted only by pre-seeding (docs/scaling.md): no
  ``autosign_file``, ``autosign_grains_dir``, ``auto_accept`` nor
  ``open_mode`` may be set, even through ``master:extra``.
"""

import copy
import hashlib
import os
import shutil
import sys
import tempfile

__virtualname__ = "lemp_master"

# Settings that accept a minion's key without a human or the enrolment
# runner (lemp_enrol.mint): never in this master's configuration.
AUTO_ACCEPT_KEYS = ("autosign_file", "autosign_grains_dir", "auto_accept", "open_mode", "autoreject_file")
# Settings that let someone other than root drive minions, or a minion
# drive another minion or a runner.
ACL_KEYS = ("publisher_acl", "external_auth", "client_acl", "peer", "peer_run")
# publisher_acl_blacklist users: every user but root and root through sudo
# (Salt names a sudo user sudo_<login>, and accepts it only with root's key).
# Salt matches each entry as a glob, then as the regex \A<entry>\Z.
NON_ROOT_USERS = "(?!(root|sudo_.+)$).*"
CONFIG_NAME = "50-lemp-ha.conf"
BOOTSTRAP_NAME = "00-lemp-ha-bootstrap.conf"

try:  # Salt's error shows in the render as it is; the unit tests run without Salt
    from salt.exceptions import CommandExecutionError as MasterConfigError
except ImportError:  # pragma: no cover
    MasterConfigError = ValueError


def __virtual__():
    return __virtualname__


def master_finger(pub_pem: str, hash_type: str = "sha256") -> str:
    """The fingerprint a minion's ``master_finger`` must hold for the master
    public key ``pub_pem`` (its PEM text): ``hash_type`` of the PEM's base64
    body (its lines, with their newlines, without the BEGIN/END lines), as
    ``xx:xx:...``. This is what the minion compares when it authenticates
    (salt.crypt AsyncAuth: ``salt.utils.crypt.pem_finger(path)`` of its
    minion_master.pub). Salt 3008.4's ``salt-key -F master`` hashes the whole
    text instead and prints another value (salt#69970, fixed by salt#70011):
    this one is the value that pins. Blank lines and CRLF do not count."""
    lines = [line for line in pub_pem.replace("\r\n", "\n").splitlines(keepends=True) if line.strip()]
    if len(lines) < 3 or not lines[0].startswith("-----BEGIN") or not lines[-1].startswith("-----END"):
        raise MasterConfigError("master_finger: not a PEM public key (no BEGIN/END lines around a body)")
    digest = hashlib.new(hash_type, "".join(lines[1:-1]).encode()).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _is_sls_path(path):
    return isinstance(path, str) and (path.startswith("salt://") or os.path.isabs(path)) and path.endswith(".sls")


def reactor_list(mapping):
    """Salt's ``reactor`` option (a list of one-key mappings, tags sorted)
    from pillar ``master:reactor`` ({tag: [sls, ...]}); tags whose list
    is empty are switched off and left out."""
    reactions = []
    for tag in sorted(mapping or {}):
        files = mapping[tag]
        if isinstance(files, str):
            files = [files]
        if files:
            reactions.append({tag: list(files)})
    return reactions


def problems(settings):
    """Everything wrong with the merged settings (defaults.yaml + pillar
    ``master``), each naming the pillar key and the fix; [] when none."""
    errors = []
    settings = settings or {}
    for key in ("id", "checkout", "extras", "secrets", "gpg_keydir"):
        if not settings.get(key):
            errors.append(f"master:{key} is empty: set it in pillar master:{key} (defaults: salt/master/defaults.yaml)")
    for key in ("checkout", "extras", "secrets", "gpg_keydir"):
        value = settings.get(key)
        if value and not os.path.isabs(str(value)):
            errors.append(f"master:{key} \"{value}\" is not an absolute path: give the full path")
    mapping = settings.get("reactor") or {}
    if not isinstance(mapping, dict):
        errors.append("master:reactor must map an event tag to a list of reactor sls files, "
                      "e.g. {'salt/minion/*/start': ['/srv/lemp-ha-extras/reactor/web_start.sls']}")
        mapping = {}
    for tag, files in sorted(mapping.items()):
        if not isinstance(tag, str) or not tag.strip():
            errors.append(f"master:reactor has an empty event tag ({tag!r}): name the event, e.g. salt/minion/*/start")
        files = [files] if isinstance(files, str) else files
        if not isinstance(files, list):
            errors.append(f"master:reactor:{tag} must be a list of reactor sls files ([] switches it off)")
            continue
        for item in files:
            if not _is_sls_path(item):
                errors.append(f"master:reactor:{tag} file {item!r} is neither an absolute path nor salt:// "
                              "ending in .sls: use e.g. /srv/lemp-ha-extras/reactor/web_start.sls")
    try:
        threads = int(settings.get("worker_threads", 0))
    except (TypeError, ValueError):
        threads = 0
    if threads < 1:
        errors.append(f"master:worker_threads {settings.get('worker_threads')!r} must be a whole number >= 1")
    extra = settings.get("extra") or {}
    if not isinstance(extra, dict):
        errors.append("master:extra must be a mapping of further master options")
        extra = {}
    for key in sorted(extra):
        if key.startswith("autosign") or key in AUTO_ACCEPT_KEYS:
            errors.append(f"master:extra:{key} would accept minion keys by themselves: keys are pre-seeded "
                          "by lemp_enrol.mint only (docs/scaling.md); remove it")
        elif key in ACL_KEYS or key in ("sudo_acl", "publisher_acl_blacklist"):
            errors.append(f"master:extra:{key}: only root drives minions on this master, and no minion "
                          "drives another; remove it")
        elif key in GENERATED_KEYS:
            errors.append(f"master:extra:{key} is set by the formula: use pillar master:{GENERATED_KEYS[key]}")
    return errors


# Master options the formula writes, and the pillar key that sets each.
GENERATED_KEYS = {
    "id": "id", "file_roots": "checkout", "pillar_roots": "secrets", "runner_dirs": "checkout",
    "module_dirs": "extras", "gpg_keydir": "gpg_keydir", "reactor": "reactor",
    "worker_threads": "worker_threads", "enable_fqdns_grains": "enable_fqdns_grains",
}


def config(settings):
    """The master.d document for the merged settings, or an error naming
    every pillar key at fault (the render stops: nothing is written)."""
    errors = problems(settings)
    if errors:
        raise MasterConfigError("salt master configuration: " + "; ".join(errors))
    checkout, extras = settings["checkout"].rstrip("/"), settings["extras"].rstrip("/")
    doc = {
        # The master's id names its key pair (pki/<id>.pem). Left to Salt it
        # is the FQDN, which changes once orch.site writes /etc/hosts: a
        # restarted master would make a new key that every minion refuses.
        "id": str(settings["id"]),
        # States from the checkout; the folders minions need from the
        # extras (never pillar/ nor tests/).
        "file_roots": {"base": [f"{checkout}/salt", extras]},
        "pillar_roots": {"base": [f"{checkout}/pillar", settings["secrets"]]},
        # Orchestrations call the runners and modules of the checkout when
        # they are rendered, before any sync step.
        "runner_dirs": [f"{checkout}/_runners"],
        "module_dirs": [extras],
        # The yaml|gpg pillar renderer's keys (docs/secrets.md).
        "gpg_keydir": settings["gpg_keydir"],
        "enable_fqdns_grains": bool(settings.get("enable_fqdns_grains", False)),
        "worker_threads": int(settings["worker_threads"]),
        "reactor": reactor_list(settings.get("reactor")),
        # Only root drives minions: no ACL for anyone else, and any other
        # user refused outright; no sudo ACL; no eauth (external_auth is
        # left out: nothing authenticates through it).
        "publisher_acl": {},
        "publisher_acl_blacklist": {"users": [NON_ROOT_USERS]},
        "sudo_acl": False,
        # No minion publishes to another nor runs a runner (publish.*).
        "peer": {},
        "peer_run": {},
        # Keys are pre-seeded (lemp_enrol.mint), never accepted by themselves.
        "auto_accept": False,
        "open_mode": False,
    }
    for key, value in sorted((settings.get("extra") or {}).items()):
        doc[key] = copy.deepcopy(value)
    return doc


HEADER = ("# Managed by Salt (salt/master, _modules/lemp_master.py): edit pillar master:lookup\n"
          "# and master:reactor, never this file. Checked before it is written.\n")


def render(settings):
    """The text of the master.d file: :func:`config` as YAML, with a header."""
    import yaml

    return HEADER + yaml.safe_dump(config(settings), default_flow_style=False, sort_keys=True)


def candidate_problems(opts):
    """Everything wrong with the options Salt loaded from master.d with the
    candidate in place: automatic acceptance, ACLs for other users, missing
    folders or reactor files. Pure: ``opts`` is a dict."""
    errors = []
    for key in AUTO_ACCEPT_KEYS:
        if opts.get(key):
            errors.append(f"{key} is set ({opts[key]!r}): keys are pre-seeded only (docs/scaling.md); "
                          "remove it from /etc/salt/master and master.d")
    for key in ("publisher_acl", "external_auth", "peer", "peer_run"):
        if opts.get(key):
            errors.append(f"{key} is not empty: only root drives minions, no minion drives another; "
                          "remove it from /etc/salt/master and master.d")
    if NON_ROOT_USERS not in ((opts.get("publisher_acl_blacklist") or {}).get("users") or []):
        errors.append("publisher_acl_blacklist no longer refuses every user but root: another file of "
                      "/etc/salt/master or master.d overrides it; remove that setting")
    if opts.get("sudo_acl"):
        errors.append("sudo_acl is on: remove it from /etc/salt/master and master.d")
    for env, roots in sorted((opts.get("file_roots") or {}).items()):
        for root in roots:
            if root != "__env__" and not os.path.isdir(root):
                errors.append(f"file_roots:{env} folder {root} does not exist: check pillar master:checkout/extras")
    for env, roots in sorted((opts.get("pillar_roots") or {}).items()):
        for root in roots:
            if root != "__env__" and not os.path.isdir(root):
                errors.append(f"pillar_roots:{env} folder {root} does not exist: check pillar master:checkout/secrets")
    for reaction in opts.get("reactor") or []:
        for tag, files in (reaction or {}).items():
            for item in [files] if isinstance(files, str) else files:
                if isinstance(item, str) and os.path.isabs(item) and not os.path.isfile(item):
                    errors.append(f"reactor {tag}: file {item} does not exist: fix pillar master:reactor")
    return errors


def check_candidate(candidate, confdir="/etc/salt"):
    """Load CANDIDATE as master.d/50-lemp-ha.conf with the rest of CONFDIR's
    master configuration (the bootstrap file left out: the state removes
    it) through Salt's loader, then :func:`candidate_problems`. Returns the
    list of problems ([] when the candidate may be written)."""
    import salt.config  # the master's own Python runs this
    import salt.exceptions

    work = tempfile.mkdtemp(prefix="lemp-ha-master-check-")
    try:
        os.makedirs(os.path.join(work, "master.d"))
        main = os.path.join(confdir, "master")
        if os.path.isfile(main):
            shutil.copy(main, os.path.join(work, "master"))
        else:
            open(os.path.join(work, "master"), "w").close()
        included = os.path.join(confdir, "master.d")
        for name in sorted(os.listdir(included)) if os.path.isdir(included) else []:
            if name.endswith(".conf") and name not in (CONFIG_NAME, BOOTSTRAP_NAME):
                shutil.copy(os.path.join(included, name), os.path.join(work, "master.d", name))
        shutil.copy(candidate, os.path.join(work, "master.d", CONFIG_NAME))
        try:
            opts = salt.config.master_config(os.path.join(work, "master"), exit_on_config_errors=True)
        except (salt.exceptions.SaltConfigurationError, SystemExit, Exception) as exc:  # noqa: BLE001
            return [f"Salt cannot read the master configuration with the new file: {exc}"]
        return candidate_problems(dict(opts))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    """``lemp_master.py check CANDIDATE [CONFDIR]``: exit 1, naming each
    problem, when CANDIDATE must not be written (file.managed check_cmd).
    ``lemp_master.py finger PUBFILE``: print :func:`master_finger` of the
    master public key in PUBFILE (the lab's secrets use it)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "finger":
        with open(argv[1], encoding="utf-8") as handle:
            print(master_finger(handle.read()))
        return 0
    if len(argv) < 2 or argv[0] != "check":
        print("usage: lemp_master.py check CANDIDATE [CONFDIR] | finger PUBFILE", file=sys.stderr)
        return 2
    errors = check_candidate(argv[1], *(argv[2:3]))
    for error in errors:
        print(f"refused: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
