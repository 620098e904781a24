"""
Secret rotation, planned and staged on the master: ``orch.rotate_secret``
calls ``plan`` when it is rendered and lists its steps; two of those steps
call ``begin`` and ``finish`` here, which rewrite the GPG-encrypted pillar
files (/srv/lemp-ha-secrets/minions/<machine>.sls, docs/secrets.md).

A rotation never has a moment where a client holds a value the server
refuses:

1. ``begin``: the new value goes into the pillar of every machine whose role
   holds the secret (pillar/roles.yaml ``secrets:``), and the old one stays
   beside it at ``<key>_previous`` (_modules/lemp_secret.py ``previous``):
   the rotation record, in the encrypted pillar itself, so a run that died
   resumes with the same new value instead of making a third one;
2. the server side accepts the old OR the new value;
3. every client gets the new value;
4. ``finish``: ``<key>_previous`` goes; the server side accepts only the new.

A per-machine key (the Zabbix agents' PSKs, ``zabbix_psk``) cannot be
held twice by either side: ``machine_plan`` rotates one machine after the
other, each inside a Zabbix maintenance window for its host
(``begin_machine`` / ``finish_machine`` stage and drop its value).

The new value is the operator's when a GPG-armored file
``/srv/lemp-ha-secrets/rotation/<secret>.asc`` is there (encrypted to the
pillar key, like every value: docs/secrets.md), else a random one made here
(32 letters and digits, like the lab's). The runner never decrypts: it moves
ciphertext around, so no plain value is written or logged on the master.

The pure functions are unit-tested with sample data
(tests/unit/test_secret_rotation.py).
"""

import importlib.util
import logging
import os
import secrets as random_source
import string

import yaml

_spec = importlib.util.spec_from_file_location(
    "lemp_runner_steps", os.path.join(os.path.dirname(os.path.abspath(__file__)), "_steps.py"))
_steps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_steps)
galera = _steps.repo_module("galera")
lemp_secret = _steps.repo_module("lemp_secret")

log = logging.getLogger(__name__)

__virtualname__ = "lemp_secrets"

SPEC_PATH = os.path.join(_steps.REPO, "pillar", "secrets.spec.yaml")
# salt/master/defaults.yaml master:secrets (the tests point it elsewhere)
SECRETS_DIR = os.environ.get("LEMP_HA_SECRETS_DIR", "/srv/lemp-ha-secrets")
GNUPGHOME = "/etc/salt/gpgkeys"            # salt/master/defaults.yaml master:gpg_keydir
HEADER = "#!yaml|gpg\n"
ALPHABET = string.ascii_letters + string.digits


def _php_version():
    with open(os.path.join(_steps.REPO, "salt", "phpfpm", "defaults.yaml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["phpfpm"]["version"]


PHP_VERSION = _php_version()
PHP_FPM = f"php{PHP_VERSION}-fpm"
PHP_FPM_OPCACHE_INI = f"/etc/php/{PHP_VERSION}/fpm/conf.d/90-lemp-ha-opcache.ini"  # salt/phpfpm/config.sls

# What orch.rotate_secret knows how to rotate, per secret:
#   server_role(s), server_sls  the state that makes the server side accept the
#                            old OR the new value (and, once the old is out
#                            of the pillar, only the new), applied on the
#                            role's machines holding the secret: ``servers``
#                            "one" (a Synced data node: Galera replicates the
#                            account) or "all" (every Redis node has its file);
#   client_roles, client_sls the state that hands the new value to the
#                            clients (the machines of client_roles holding
#                            the secret; [] when only Salt itself uses it);
#   clients                  how: "together" (one state run on all of them),
#                            "drained" (one web node at a time, out of both
#                            load balancers meanwhile: PHP-FPM reloads to read
#                            a php.ini, and a reload ends the requests in
#                            flight), "one_by_one" (one at a time: a Sentinel
#                            restarts, the others keep the quorum);
#   php_config               the app's config.php changes: PHP reads it once
#                            opcache revalidates it (opcache_wait).
ROTATIONS = {
    "app_db": {
        "server_role": "db",
        "servers": "one",
        "server_sls": "galera.databases",
        "client_roles": ["web", "web_pool"],
        # the app's config (config.php) and the platform's /healthz (healthz.json)
        "client_sls": "webapp.release,nginx.config",
        "clients": "together",
        "php_config": True,
    },
    # Redis users (salt/redis/defaults.yaml acl:users): every Redis node's
    # ACL file holds both hashes, applied in place (redis.acl: ACL SETUSER,
    # no client dropped), then only the new one.
    "redis_sessions": {
        "server_role": "web",
        "servers": "all",
        "server_sls": "redis.acl",
        "client_roles": ["web", "web_pool"],
        # PHP's session.save_path (a php.ini: PHP-FPM reloads) and the cron lock's auth file
        "client_sls": "phpfpm.config,phpfpm.service,webapp.cron",
        "clients": "drained",
    },
    "redis_check": {
        "server_role": "web",
        "servers": "all",
        "server_sls": "redis.acl",
        # HAProxy's tcp-check of the Redis master (haproxy.cfg, reloaded after haproxy -c);
        # one LB at a time: the other holds the VIPs meanwhile
        "client_roles": ["lb"],
        "client_sls": "haproxy.config,haproxy.service",
        "clients": "one_by_one",
    },
    "redis_sentinel": {
        "server_role": "web",
        "servers": "all",
        "server_sls": "redis.acl",
        # Sentinel's auth-pass to Redis: redis.sentinel rewrites it and
        # restarts that Sentinel; one at a time, the others keep the quorum
        "client_roles": ["web", "lb"],
        "client_sls": "redis.sentinel",
        "clients": "one_by_one",
    },
    "redis_monitor": {
        "server_role": "web",
        "servers": "all",
        "server_sls": "redis.acl",
        # the Zabbix agent's Redis session (user default): its drop-in, the agent restarts
        "client_roles": ["web"],
        "client_sls": "redis.monitoring",
        "clients": "together",
    },
    "redis_replication": {
        "server_role": "web",
        "servers": "all",
        "server_sls": "redis.acl",
        # every Redis node's masterauth: CONFIG SET (a replica keeps its
        # link), its included file and, if Sentinel copied it there,
        # redis.conf (CONFIG REWRITE); no restart, so all nodes together
        "client_roles": ["web"],
        "client_sls": "redis.replication",
        "clients": "together",
    },
    # Sentinel's own password (requirepass, sentinel-pass): every Sentinel
    # (web and lb) accepts both, live (redis.sentinel_accepts: ACL SETUSER
    # on its default user); then one Sentinel at a time restarts with the
    # new requirepass and logs in to its peers with it (redis.sentinel; the
    # others keep the quorum and accept it already), its password files
    # (lemp-redis-follow, the Zabbix parameters) follow; then only the new,
    # live, and sentinel.conf keeps only the new hash.
    "sentinel_auth": {
        "server_roles": ["web", "lb"],
        "servers": "all",
        "server_sls": "redis.sentinel_accepts",
        "client_roles": ["web", "lb"],
        "client_sls": "redis.sentinel",
        "clients": "one_by_one",
    },
    "redis_admin": {
        "server_role": "web",
        "servers": "all",
        "server_sls": "redis.acl",
        # only Salt uses it (redis.acl logs in with the new one, else the previous)
        "client_roles": [],
        "client_sls": "",
        "clients": "together",
    },
    # The Zabbix agents' PSKs (pillar/secrets.spec.yaml per_machine): one
    # value per machine, its agent's, and the monitor role holds them all
    # (collected). Neither side can accept two keys, so no "old OR new":
    # one machine at a time inside a maintenance window for its host
    # (machine_rotation_steps): the server's host first (API), then the
    # agent (its PSK file, a restart), then wait until the server has the
    # new agent's heartbeat.
    "zabbix_psk": {
        "per_machine": True,
        "server_role": "monitor",
        "agent_sls": "zabbix.agent.service",
        "window_minutes": 15,   # each machine's window expires by itself after this
        "back_timeout": 120,    # seconds to wait for the agent's heartbeat with the new PSK
    },
}


def __virtual__():
    return __virtualname__


# -- pure functions (unit-tested) -------------------------------------------


def pillar_key(spec, secret):
    """The pillar key (colon path) of password or per-machine key
    ``secret``, or ValueError naming the secret and what may be rotated."""
    passwords = (spec or {}).get("passwords") or {}
    per_machine = (spec or {}).get("per_machine") or {}
    if secret not in passwords and secret not in per_machine:
        raise ValueError(f"unknown secret {secret!r}: pillar/secrets.spec.yaml `passwords` and `per_machine` "
                         f"name {', '.join(sorted(passwords) + sorted(per_machine)) or 'none'}")
    if secret not in ROTATIONS:
        raise ValueError(f"secret {secret!r} cannot be rotated by orch.rotate_secret yet; it can rotate: "
                         f"{', '.join(sorted(ROTATIONS))} (docs/secrets.md, Rotation)")
    return (passwords.get(secret) or per_machine[secret])["pillar"]


def machine_key(spec, secret):
    """(pillar key, collected key, bytes) of per-machine key ``secret``."""
    pillar_key(spec, secret)
    entry = ((spec or {}).get("per_machine") or {}).get(secret)
    if not entry:
        raise ValueError(f"secret {secret!r} is not a per-machine key (pillar/secrets.spec.yaml per_machine)")
    return entry["pillar"], entry["collected"], int(entry.get("bytes", 32))


def rotated_machines(topology, answering, machine=None):
    """The machines whose per-machine key a run rotates, in name order, and
    the ones it leaves (a scaling-pool name whose VM does not answer: not
    enrolled, or off; it keeps its key until rotated by name once up).
    ``machine``: that one only; ValueError when it is no machine of the
    topology or its scaling pool."""
    fixed = sorted(((topology or {}).get("machines") or {}))
    pool = sorted(((topology or {}).get("pool_machines") or {}))
    if machine:
        if machine not in fixed and machine not in pool:
            raise ValueError(f"machine {machine!r} is not in the topology: {', '.join(fixed + pool)}")
        return [machine], []
    return fixed + [n for n in pool if answering.get(n) is True], [n for n in pool if answering.get(n) is not True]


def machine_rotation_steps(secret, rotation, machines, monitor, collectors, topology, run):
    """The runbook of a per-machine key (zabbix_psk), one machine after
    the other, each inside a maintenance window for its host
    (_steps.with_maintenance): stage its new key (its own file and the
    collectors'), refresh their pillar, the server's host gets it (API),
    the agent gets it (restart), wait until the server has the new agent's
    heartbeat, drop the old key from the machine's file. The next machine's
    window opens once the previous one closed; a failed step closes its
    window and stops the run."""
    steps = [_steps.function(f"sync-custom-modules-on-{monitor}", "saltutil.sync_all", monitor)]
    previous = steps[0]
    refresh = {"kwarg": {"wait": True}}
    for name in machines:
        readers = sorted({name, *collectors})
        body = [
            _steps.step(f"stage-a-new-{secret}-for-{name}-in-the-encrypted-pillar", "salt.runner",
                        name="lemp_secrets.begin_machine", secret=secret, machine=name, collectors=list(collectors)),
            _steps.function(f"refresh-pillar-of-{'-'.join(readers)}-for-the-{secret}-of-{name}",
                            "saltutil.refresh_pillar", readers, **refresh),
            _steps.function(f"{monitor}-gives-the-zabbix-host-{name}-its-new-{secret}", "lemp_zabbix.agent_psk_set",
                            monitor, arg=[name]),
            _steps.state(f"give-the-new-{secret}-to-the-agent-on-{name}", rotation["agent_sls"], name),
            _steps.function(f"wait-until-{monitor}-has-the-heartbeat-of-{name}-over-the-new-{secret}",
                            "lemp_zabbix.agent_psk_back", monitor, arg=[name],
                            kwarg={"timeout": int(rotation["back_timeout"])}),
            _steps.step(f"drop-the-old-{secret}-of-{name}-from-the-encrypted-pillar", "salt.runner",
                        name="lemp_secrets.finish_machine", secret=secret, machine=name),
            _steps.function(f"refresh-pillar-of-{name}-again-after-its-{secret}", "saltutil.refresh_pillar", name,
                            **refresh),
        ]
        block = _steps.with_maintenance(body, topology, f"orch.rotate_secret {secret} {name}", run,
                                        [name], rotation["window_minutes"], label=f"-of-{name}")
        # the window opens once the previous machine is done (its window closed)
        block[0] = dict(block[0], args=block[0]["args"] + [{"require": [_steps.requisite(previous)]}])
        steps += block
        previous = next(item for item in block if item["id"].startswith("close-maintenance-window-on-")
                        and "after-the-last-step" in item["id"])
    return steps


def holders(topology, secret):
    """Machines (and scaling-pool machines) whose roles hold ``secret``, by name."""
    machines = {**((topology or {}).get("machines") or {}), **((topology or {}).get("pool_machines") or {})}
    return sorted(name for name, machine in machines.items() if secret in (machine.get("secrets") or []))


def health_problems(facts, dbs, clients, lbs, backend):
    """What is unhealthy now, one line each (empty: healthy). ``facts``:
    {ping: {minion: True}, galera: {db: galera.status}, stat: {lb: show_stat
    rows}}; a minion missing from an answer did not answer."""
    problems = []
    ping = facts.get("ping") or {}
    for name in sorted(set(dbs) | set(clients) | set(lbs)):
        if ping.get(name) is not True:
            problems.append(f"{name} does not answer (salt {name} test.ping)")
    for db in dbs:
        ret = (facts.get("galera") or {}).get(db)
        if not (isinstance(ret, dict) and galera.is_synced(ret)):
            state = ret.get("local_state") if isinstance(ret, dict) else str(ret)[:200]
            problems.append(f"{db} is not Synced in a Primary component ({state})")
    for lb in lbs:
        rows = (facts.get("stat") or {}).get(lb)
        if not isinstance(rows, list):
            problems.append(f"{lb}: HAProxy's runtime API gave no server list ({str(rows)[:200]})")
            continue
        status = {r.get("svname"): str(r.get("status", "")) for r in rows if r.get("pxname") == backend}
        for web in clients:
            if web in status and not status[web].startswith("UP"):
                problems.append(f"{web} is not in service on {lb} (status {status[web]!r})")
    return problems


def opcache_wait(ini_texts):
    """How the clients' PHP comes to read a rewritten config.php, from each
    web node's opcache ini ({node: text}; a missing setting is PHP's
    default): ("reload", 0) when a node does not revalidate timestamps, or
    its revalidate_freq is unreadable (opcache would serve the old file
    until PHP-FPM reloads), else ("wait", seconds):
    opcache checks a file's mtime at most every revalidate_freq seconds, so
    the old value is out of use revalidate_freq + 1 seconds after the write."""
    longest = 0
    for text in ini_texts.values():
        settings = {}
        for line in str(text or "").splitlines():
            name, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith(";"):
                settings[name.strip()] = value.strip().strip('"')
        if settings.get("opcache.enable", "1").lower() in ("0", "off", "false"):
            continue
        freq = settings.get("opcache.revalidate_freq", "2")
        if settings.get("opcache.validate_timestamps", "1").lower() in ("0", "off", "false") or not freq.isdigit():
            return ("reload", 0)
        longest = max(longest, int(freq))
    return ("wait", longest + 1)


def _label(targets):
    return targets if isinstance(targets, str) else "-".join(targets)


def client_steps(secret, rotation, clients, lbs=(), backend="web"):
    """How the clients get the new value (ROTATIONS ``clients``)."""
    sls, mode = rotation.get("client_sls"), rotation.get("clients", "together")
    if not sls or not clients:
        return [_steps.step(f"no-client-of-{secret}-to-change", "test.succeed_without_changes",
                            name=f"{secret}: only Salt uses it, it reads the pillar")]
    if mode == "together":
        return [_steps.state(f"give-the-new-{secret}-to-its-clients", sls, clients)]
    if mode == "one_by_one":
        return [_steps.state(f"give-the-new-{secret}-to-{node}", sls, node) for node in clients]
    if mode != "drained":
        raise ValueError(f"ROTATIONS[{secret!r}]: clients {mode!r} is not together, one_by_one or drained")
    steps = []
    for web in clients:
        if not lbs:
            steps.append(_steps.state(f"give-the-new-{secret}-to-{web}", sls, web))
            continue
        on_lbs = {"arg": [backend, web]}
        steps += [
            _steps.function(f"drain-{web}-on-both-lbs", "haproxy_runtime.drain", list(lbs), **on_lbs),
            _steps.function(f"wait-until-{web}-has-no-session-on-both-lbs", "haproxy_runtime.wait_drained",
                            list(lbs), **on_lbs, kwarg={"timeout": 120}),
            _steps.state(f"give-the-new-{secret}-to-{web}", sls, web),
            _steps.function(f"enable-{web}-on-both-lbs", "haproxy_runtime.enable", list(lbs), **on_lbs),
            _steps.function(f"wait-until-{web}-is-up-on-both-lbs", "haproxy_runtime.wait_up", list(lbs),
                            **on_lbs, kwarg={"timeout": 60}),
        ]
    return steps


def rotation_steps(secret, rotation, server, clients, how_php_reads, lbs=(), backend="web"):
    """The runbook of one rotation, in order (see orch/rotate_secret.sls).
    ``server``: the machine, or the machines, the server side is applied on."""
    refresh = {"kwarg": {"wait": True}}
    label = _label(server)
    accept = "accepts" if isinstance(server, str) else "accept"
    steps = [
        # lemp_secret.previous and the two-password account (_modules/galera.py, _modules/lemp_redis.py)
        _steps.function(f"sync-custom-modules-on-the-{secret}-holders", "saltutil.sync_all",
                        rotation["holders"]),
        _steps.step(f"stage-the-new-{secret}-beside-the-old-in-the-encrypted-pillar", "salt.runner",
                    name="lemp_secrets.begin", secret=secret, minions=rotation["files"]),
        _steps.function(f"refresh-pillar-of-the-{secret}-holders", "saltutil.refresh_pillar",
                        rotation["holders"], **refresh),
        _steps.state(f"{label}-{accept}-the-old-or-the-new-{secret}", rotation["server_sls"], server),
    ]
    steps += client_steps(secret, rotation, clients, lbs, backend)
    if rotation.get("php_config"):
        mode, seconds = how_php_reads
        if mode == "reload":
            steps += [_steps.function(f"reload-php-fpm-on-{web}-to-read-the-new-config", "service.reload", web,
                                      arg=[PHP_FPM]) for web in clients]
        else:
            steps.append(_steps.function(f"wait-{seconds}s-for-opcache-to-revalidate-the-config", "test.sleep",
                                         server, arg=[seconds]))
    steps += [
        _steps.step(f"drop-the-old-{secret}-from-the-encrypted-pillar", "salt.runner",
                    name="lemp_secrets.finish", secret=secret, minions=rotation["files"]),
        _steps.function(f"refresh-pillar-of-the-{secret}-holders-again", "saltutil.refresh_pillar",
                        rotation["holders"], **refresh),
        _steps.state(f"{label}-{accept}-only-the-new-{secret}", rotation["server_sls"], server),
    ]
    return _steps.chain(steps)


def _walk(tree, key):
    parts = key.split(":")
    node = tree
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None, parts[-1]
    return node, parts[-1]


def staged(tree, key, new_cipher):
    """The pillar tree of one machine with ``new_cipher`` at ``key`` and the
    old value at ``<key>_previous``: (tree, True); or (tree, False) when a
    rotation is already staged there (a resumed run keeps its new value).
    KeyError names the key when the machine lacks it."""
    node, leaf = _walk(tree, key)
    if node is None or leaf not in node:
        raise KeyError(key)
    prev_leaf = leaf + lemp_secret.PREVIOUS_SUFFIX
    if prev_leaf in node:
        return tree, False
    node[prev_leaf] = node[leaf]
    node[leaf] = new_cipher
    return tree, True


def dropped(tree, key):
    """The tree without ``<key>_previous``: (tree, whether it was there)."""
    node, leaf = _walk(tree, key)
    prev_leaf = leaf + lemp_secret.PREVIOUS_SUFFIX
    if node is None or prev_leaf not in node:
        return tree, False
    del node[prev_leaf]
    return tree, True


def collected_set(tree, collected, machine, new_cipher):
    """A collector's tree with ``new_cipher`` as ``machine``'s value under
    ``collected`` (zabbix:server:agent_psks): (tree, whether it changed).
    KeyError names the key when the collector lacks it."""
    node, leaf = _walk(tree, f"{collected}:{machine}")
    if not isinstance(node, dict):
        raise KeyError(collected)
    if node.get(leaf) == new_cipher:
        return tree, False
    node[leaf] = new_cipher
    return tree, True


def is_staged(tree, key):
    node, leaf = _walk(tree, key)
    return node is not None and leaf + lemp_secret.PREVIOUS_SUFFIX in node


class _Literal(str):
    pass


def _literal(dumper, data):
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, _literal)


def render_file(tree):
    """A secrets file's text, in encrypt-secrets.py's form."""
    def literal(node):
        if isinstance(node, dict):
            return {k: literal(v) for k, v in node.items()}
        return _Literal(node)

    return (HEADER + "# Every value is encrypted to the master's key (docs/secrets.md).\n"
            + yaml.dump(literal(tree), Dumper=_Dumper, default_flow_style=False, sort_keys=True))


def random_value():
    return "".join(random_source.choice(ALPHABET) for _ in range(32))


# -- the master's files -----------------------------------------------------


def _path(name):
    return os.path.join(SECRETS_DIR, "minions", f"{name}.sls")


def _staged_path(secret):
    return os.path.join(SECRETS_DIR, "rotation", f"{secret}.asc")


def _read(name):
    with open(_path(name), encoding="utf-8") as handle:
        return yaml.safe_load(handle.read()) or {}


def _write(name, tree):
    target = _path(name)
    tmp = target + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(render_file(tree))
    os.replace(tmp, target)


def _encrypt(value):
    import gnupg  # pylint: disable=import-outside-toplevel  (the master's salt venv has python-gnupg)

    gpg = gnupg.GPG(gnupghome=GNUPGHOME)
    keys = gpg.list_keys(secret=True)
    if not keys:
        raise RuntimeError(f"no GPG key in {GNUPGHOME}: make the pillar key first (docs/secrets.md)")
    result = gpg.encrypt(value, keys[0]["fingerprint"], always_trust=True, armor=True)
    if not result.ok:
        raise RuntimeError(f"encrypting the new value failed: {result.status}")
    return str(result)


def _holder_files(topology, secret):
    """The holders that have a secrets file (a scaling-pool name without one
    is not provisioned yet: it gets the new value when it is); a machine of
    the topology without one is an error."""
    pool = set(((topology or {}).get("pool_machines") or {}))
    names, missing = [], []
    for name in holders(topology, secret):
        if os.path.exists(_path(name)):
            names.append(name)
        elif name not in pool:
            missing.append(name)
    if missing:
        raise RuntimeError(f"no secrets file for {', '.join(missing)} in {SECRETS_DIR}/minions (docs/secrets.md)")
    return names


def _refused(message):
    log.warning("lemp_secrets: %s", message)
    return {"Error": message, "retcode": 1}


def _spec():
    with open(SPEC_PATH, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


# -- runner functions -------------------------------------------------------


def _ask(tgt, fun, timeout=60, **kwargs):
    return _steps.ask(__opts__, tgt, fun, timeout, tgt_type="list", **kwargs) if tgt else {}  # noqa: F821


REFUSED = "rotation-refused-nothing-was-touched"


def machine_plan(topology, secret, machine=None):
    """The plan of orch.rotate_secret for a per-machine key (zabbix_psk):
    every machine (or ``machine`` alone), see machine_rotation_steps."""
    try:
        key, _, _ = machine_key(_spec(), secret)
        rotation = dict(ROTATIONS[secret])
        monitors = _steps.role(topology, rotation["server_role"])
        collectors = holders(topology, secret)
        if not monitors or not collectors:
            raise ValueError(f"no {rotation['server_role']} machine holds {secret} in the topology: "
                             "no Zabbix server, no agent PSK in use")
        pool = sorted(((topology or {}).get("pool_machines") or {}))
        answering = _ask(sorted(set(_steps.role(topology, rotation["server_role"])) | set(collectors)
                                | set(((topology or {}).get("machines") or {})) | set(pool)),
                         "test.ping", timeout=30)
        machines, left = rotated_machines(topology, answering, machine or None)
        silent = [n for n in sorted(set(machines) | {monitors[0]} | set(collectors)) if answering.get(n) is not True]
        if silent:
            raise ValueError("refusing to start, the platform is not healthy: "
                             + "; ".join(f"{n} does not answer (salt {n} test.ping)" for n in silent))
        _check_files(machines + collectors)
    except (ValueError, RuntimeError) as exc:
        return _steps.plan([_steps.refuse(REFUSED, f"orch.rotate_secret: {exc}")])
    steps = machine_rotation_steps(secret, rotation, machines, monitors[0], collectors, topology, _steps.run_id())
    if left:
        steps.insert(0, _steps.step(f"{'-'.join(left)}-keep-their-{secret}-their-vm-does-not-answer",
                                    "test.succeed_without_changes",
                                    name=f"{', '.join(left)}: scaling-pool VM not running (not enrolled, or off): "
                                         f"{key} kept; once it runs, rotate it with machine=<name>"))
    return _steps.plan(steps)


def plan(topology, secret=None, backend="web", machine=None):
    """The plan of orch.rotate_secret for ``secret`` (and, for a per-machine
    key, ``machine`` alone), or a single failing step saying why nothing
    was touched (an unknown secret, an unhealthy platform)."""
    refused = REFUSED
    try:
        key = pillar_key(_spec(), str(secret or ""))
    except ValueError as exc:
        return _steps.plan([_steps.refuse(refused, f"orch.rotate_secret: {exc}")])
    if ROTATIONS[secret].get("per_machine"):
        return machine_plan(topology, secret, machine)
    if machine:
        keys = ", ".join(n for n, r in ROTATIONS.items() if r.get("per_machine"))
        return _steps.plan([_steps.refuse(refused, f"orch.rotate_secret: {secret} is one value for every machine: "
                                                   f"machine={machine!r} applies to a per-machine key only ({keys})")])
    rotation = dict(ROTATIONS[secret])
    holding = holders(topology, secret)
    server_roles = rotation.get("server_roles") or [rotation["server_role"]]
    servers = [n for role in server_roles for n in _steps.role(topology, role) if n in holding]
    clients = [n for role in rotation["client_roles"] for n in _steps.role(topology, role) if n in holding]
    lbs = _steps.role(topology, "lb")
    if not servers or (rotation["client_roles"] and not clients):
        return _steps.plan([_steps.refuse(refused, f"orch.rotate_secret: no {'/'.join(server_roles)} machine or "
                                                   f"no client holds {secret} ({key}) in the topology")])
    galera_nodes = servers if rotation["server_sls"].startswith("galera.") else []
    facts = {"ping": _ask(sorted(set(servers) | set(clients) | set(lbs)), "test.ping", timeout=30),
             "galera": _ask(galera_nodes, "galera.status"),
             "stat": _ask(lbs, "haproxy_runtime.show_stat")}
    # every machine the run touches answers; every web node serving is UP on both LBs
    problems = health_problems(facts, galera_nodes, sorted(set(clients) | set(servers)), lbs, backend)
    if problems:
        return _steps.plan([_steps.refuse(refused, "orch.rotate_secret: refusing to start, the platform is not "
                                                   "healthy: " + "; ".join(problems))])
    try:
        rotation["files"] = _holder_files(topology, secret)
    except RuntimeError as exc:
        return _steps.plan([_steps.refuse(refused, f"orch.rotate_secret: {exc}")])
    # the running holders: a scaling-pool VM that is off reads its file when it boots
    rotation["holders"] = [n for n in holding if facts["ping"].get(n) is True]
    clients = [n for n in clients if n in rotation["holders"]]
    how_php_reads = ("wait", 0)
    if rotation.get("php_config"):
        how_php_reads = opcache_wait(_ask(clients, "cmd.run", arg=[f"cat {PHP_FPM_OPCACHE_INI}"]))
    server = servers[0] if rotation.get("servers", "one") == "one" else servers
    return _steps.plan(rotation_steps(secret, rotation, server, clients, how_php_reads, lbs, backend))


def _check_files(minions):
    names = sorted(minions or [])
    missing = [n for n in names if not os.path.exists(_path(n))]
    if not names or missing:
        raise RuntimeError(f"no secrets file for {', '.join(missing) or 'any machine'} in {SECRETS_DIR}/minions")
    return names


class NotArmored(ValueError):
    """The operator's staged file is not a GPG-armored message."""


def _walk_value(tree, key):
    node, leaf = _walk(tree, key)
    return node[leaf]


def _new_value(resumed_cipher, staged_file, random_plain):
    """(ciphertext, where it comes from) of a rotation's new value: the
    unfinished rotation's (``resumed_cipher``; an operator's file then stays
    where it is, unused: for the next rotation, or to delete), else the
    operator's GPG-armored ``staged_file``, else ``random_plain()``
    encrypted here. NotArmored for an operator's file that is not armored."""
    if resumed_cipher is not None:
        return resumed_cipher, "the unfinished rotation's" + (f" ({staged_file} left unused)"
                                                              if os.path.exists(staged_file) else "")
    if os.path.exists(staged_file):
        with open(staged_file, encoding="utf-8") as handle:
            cipher = handle.read()
        if "BEGIN PGP MESSAGE" not in cipher:
            raise NotArmored(f"{staged_file} is not a GPG-armored message (docs/secrets.md, Rotation)")
        return cipher, f"the operator's ({staged_file})"
    return _encrypt(random_plain()), "a random"


def begin(secret, minions):
    """Stage the new value of ``secret`` beside the old one in the encrypted
    pillar of every machine that holds it (see the module's docstring).
    Resumes an unfinished rotation with its new value.

    CLI Example::

        salt-run lemp_secrets.begin secret=app_db minions='[db1, db2, web1, web2]'
    """
    try:
        key = pillar_key(_spec(), secret)
        names = _check_files(minions)
        trees = {name: _read(name) for name in names}
        pending = [n for n, tree in trees.items() if is_staged(tree, key)]
        staged_file = _staged_path(secret)
        # A run that died after this step: keep its new value everywhere.
        new_cipher, source = _new_value(_walk_value(trees[pending[0]], key) if pending else None, staged_file,
                                        random_value)
        changed = []
        for name, tree in trees.items():
            tree, did = staged(tree, key, new_cipher)
            if did:
                _write(name, tree)
                changed.append(name)
        if not pending and os.path.exists(staged_file):
            os.remove(staged_file)  # used: the next rotation needs another value
    except NotArmored as exc:
        return _refused(str(exc))
    except (ValueError, RuntimeError, OSError) as exc:
        return _refused(f"rotating {secret}: {exc}")
    except KeyError as exc:
        return _refused(f"rotating {secret}: a holder's secrets file lacks {exc.args[0]} (docs/secrets.md)")
    return {"secret": secret, "pillar": key, "new value": source, "staged on": changed,
            "already staged on": sorted(set(names) - set(changed))}


def finish(secret, minions):
    """Drop the old value of ``secret`` (``<key>_previous``) from every
    holder's encrypted pillar: the rotation is over.

    CLI Example::

        salt-run lemp_secrets.finish secret=app_db minions='[db1, db2, web1, web2]'
    """
    try:
        key = pillar_key(_spec(), secret)
        changed = []
        for name in _check_files(minions):
            tree, did = dropped(_read(name), key)
            if did:
                _write(name, tree)
                changed.append(name)
    except (ValueError, RuntimeError, OSError) as exc:
        return _refused(f"finishing the rotation of {secret}: {exc}")
    return {"secret": secret, "pillar": key, "old value dropped on": changed}


def begin_machine(secret, machine, collectors):
    """Stage a new value of per-machine key ``secret`` for ``machine``: in
    its file at the key, the old one beside it at ``<key>_previous`` (the
    record: a run that died resumes with the same value), and in each
    collector's file (the monitor: zabbix:server:agent_psks:<machine>).
    The value: the operator's GPG-armored
    ``/srv/lemp-ha-secrets/rotation/<secret>-<machine>.asc`` when there,
    else ``bytes`` random bytes as hex (a Zabbix PSK).

    CLI Example::

        salt-run lemp_secrets.begin_machine secret=zabbix_psk machine=web1 collectors='[mon1]'
    """
    try:
        key, collected, size = machine_key(_spec(), secret)
        _check_files([machine] + list(collectors or []))
        tree = _read(machine)
        staged_file = _staged_path(f"{secret}-{machine}")
        resumed = is_staged(tree, key)
        new_cipher, source = _new_value(_walk_value(tree, key) if resumed else None, staged_file,
                                        lambda: random_source.token_hex(size))
        changed = []
        # the machine's file first: its record is what a resumed run reads
        tree, did = staged(tree, key, new_cipher)
        if did:
            _write(machine, tree)
            changed.append(machine)
        for name in collectors or []:
            ctree, did = collected_set(_read(name), collected, machine, new_cipher)
            if did:
                _write(name, ctree)
                changed.append(name)
        if not resumed and os.path.exists(staged_file):
            os.remove(staged_file)  # used: the next rotation needs another value
    except NotArmored as exc:
        return _refused(str(exc))
    except (ValueError, RuntimeError, OSError) as exc:
        return _refused(f"rotating {secret} of {machine}: {exc}")
    except KeyError as exc:
        return _refused(f"rotating {secret} of {machine}: a secrets file lacks {exc.args[0]} (docs/secrets.md)")
    return {"secret": secret, "machine": machine, "pillar": key, "new value": source, "written": changed}


def finish_machine(secret, machine):
    """Drop ``machine``'s old value of per-machine key ``secret``
    (``<key>_previous``): its rotation is over.

    CLI Example::

        salt-run lemp_secrets.finish_machine secret=zabbix_psk machine=web1
    """
    try:
        key, _, _ = machine_key(_spec(), secret)
        tree, did = dropped(_read(_check_files([machine])[0]), key)
        if did:
            _write(machine, tree)
    except (ValueError, RuntimeError, OSError) as exc:
        return _refused(f"finishing the rotation of {secret} of {machine}: {exc}")
    return {"secret": secret, "machine": machine, "pillar": key, "old value dropped": did}
