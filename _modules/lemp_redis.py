"""
Redis ACL users and Sentinel authentication for the sessions Redis
(salt/redis, docs/security.md "Redis").

Every client of the sessions Redis has a user of its own, with only what it
uses: PHP's session handler and the cron lock (``sessions``), HAProxy's
master check (``check``), replication (``replication``), Sentinel
(``sentinel``), Salt and operators (``admin``); ``default`` is what Zabbix
agent 2's Redis plugin logs in as (it sends a password, no user name), read
only and without keys. The users are declared in salt/redis/defaults.yaml
(``redis:lookup:acl:users``), each naming the pillar key of its password.

``acl_file`` turns them into the ACL file Redis loads (``aclfile``): one
``user`` line each, passwords as SHA-256 hashes (the file holds no
password). Sentinel's CONFIG REWRITE rewrites redis.conf, never the ACL
file. During a rotation (orch.rotate_secret) a user holds two passwords,
the previous and the new one (``lemp_secret.previous``): both log in.

``acl_apply`` gives a running Redis the file's users without a restart:
one ``ACL SETUSER <user> reset ...`` per line (and ``ACL DELUSER`` for a
user the file no longer has). Not ``ACL LOAD``: Redis 7.0's ACL LOAD
replaces every user and so disconnects every client logged in as one (PHP's
session connections, the replicas, the Sentinels: seen in
tests/unit/test_redis_acl.py), while SETUSER changes a user in place and
keeps its connections.

``sentinel_conf`` gives Sentinel's file with the wanted authentication
lines; ``sentinel_auth_current`` says whether the running Sentinel already
has them (_states/lemp_redis.py uses both).

The rule builders are pure; tests/unit/test_redis_acl.py loads their output
into a real Redis 7.0 and a real Sentinel on loopback.
"""

import hashlib
import re
import socket

__virtualname__ = "lemp_redis"

USER_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# a command (get), a subcommand (config|get) or a category (@all)
COMMAND_RE = re.compile(r"^(@[a-z]+|[a-z][a-z-]*(\|[a-z][a-z-]*)?)$")
# key and channel patterns: glob, no whitespace (the ACL file splits on it)
PATTERN_RE = re.compile(r"^[!-~]{1,200}$")
SETTINGS = "redis:lookup:acl:users"

try:  # Salt's error shows in the render as it is; the unit tests run without Salt
    from salt.exceptions import CommandExecutionError as AclError
except ImportError:  # pragma: no cover
    AclError = ValueError


def password_hash(password: str) -> str:
    """The ``#<sha256>`` form of ``password`` an ACL rule accepts."""
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def _patterns(name, field, values):
    values = values or []
    if not isinstance(values, list) or not all(isinstance(v, str) and PATTERN_RE.match(v) for v in values):
        raise AclError(f"{SETTINGS}:{name}:{field} must be a list of patterns without spaces, got {values!r}")
    return values


def user_rules(name: str, spec: dict, passwords: list) -> str:
    """The ACL rules of one user: ``reset`` first (nothing left from
    before), then on, its password hashes, key patterns, channels and
    commands. ``spec``: ``keys``, ``channels``, ``commands`` (lists)."""
    if not USER_RE.match(name or ""):
        raise AclError(f"{SETTINGS}: user name {name!r} must be lower-case letters, digits, _ or -")
    if not isinstance(spec, dict):
        raise AclError(f"{SETTINGS}:{name} must be a mapping (password, keys, channels, commands)")
    commands = spec.get("commands") or []
    if not isinstance(commands, list) or not commands or not all(
            isinstance(c, str) and COMMAND_RE.match(c) for c in commands):
        raise AclError(f"{SETTINGS}:{name}:commands must list commands (get, config|get, @all), got {commands!r}")
    if not passwords or not all(isinstance(p, str) and p for p in passwords):
        raise AclError(f"{SETTINGS}:{name}: no password (its secret {spec.get('password')} is empty)")
    rules = ["reset", "on"]
    rules += sorted({password_hash(p) for p in passwords})
    rules += ["~" + k for k in _patterns(name, "keys", spec.get("keys"))]
    rules += ["&" + c for c in _patterns(name, "channels", spec.get("channels"))]
    rules += ["-@all"] + ["+" + c for c in commands]
    return " ".join(rules)


def _listed(value) -> list:
    return [p for p in (value if isinstance(value, (list, tuple)) else [value]) if p]


def acl_file(users: dict, passwords: dict, legacy_password: str = "") -> str:
    """The ACL file for ``users`` (salt/redis/defaults.yaml acl:users);
    ``passwords`` maps each user name to its password, or to a list of
    them (a rotation: the previous and the new). ``default`` must be
    declared: Redis would otherwise create it with no password and every
    right. ``legacy_password`` (upgrade only, docs/security.md): ``default``
    also accepts the one password of before the ACL users, with every right
    it had, so that clients not yet switched keep working."""
    if not isinstance(users, dict) or "default" not in users:
        raise AclError(f"{SETTINGS} must declare the user default (else Redis creates it with no password "
                       "and every right)")
    lines = []  # no comments: Redis refuses any line that is not a user
    for name in sorted(users, key=lambda n: (n != "default", n)):
        spec = users[name]
        if name == "default" and legacy_password:
            spec = {**spec, "keys": ["*"], "channels": ["*"], "commands": ["@all"]}
            lines.append(f"user {name} {user_rules(name, spec, _listed(passwords.get(name)) + [legacy_password])}")
        else:
            lines.append(f"user {name} {user_rules(name, spec, _listed(passwords.get(name)) or [None])}")
    return "\n".join(lines) + "\n"


def password_keys(users: dict) -> dict:
    """``{user: pillar key of its password}``, each user naming one."""
    keys = {}
    for name, spec in (users or {}).items():
        key = spec.get("password") if isinstance(spec, dict) else None
        if not isinstance(key, str) or not key:
            raise AclError(f"{SETTINGS}:{name}:password must name the pillar key of its secret "
                           "(pillar/secrets.spec.yaml)")
        keys[name] = key
    return keys


def render_acl_file(users: dict, legacy: bool = False) -> str:
    """``acl_file`` with the passwords read from the pillar (lemp_secret):
    a user's current one, and its previous one while a rotation of it is
    not over (orch.rotate_secret)."""
    passwords = {name: [__salt__["lemp_secret.require"](key), __salt__["lemp_secret.previous"](key)]  # noqa: F821
                 for name, key in password_keys(users).items()}
    legacy_password = __salt__["lemp_secret.require"](users["sessions"]["password"]) if legacy else ""  # noqa: F821
    return acl_file(users, passwords, legacy_password)


# -- Sentinel -------------------------------------------------------------------
AUTH_LINE_RE = re.compile(r"^\s*(requirepass|user\s+default|sentinel\s+(auth-user|auth-pass|sentinel-user|"
                          r"sentinel-pass))(\s|$)", re.IGNORECASE)


def default_user_line(passwords: list) -> str:
    """Sentinel's ``user default`` line accepting each of ``passwords``
    (hashes): the form Sentinel's own config rewrite writes."""
    return "user default on " + " ".join(sorted({password_hash(p) for p in _listed(passwords)})) + " ~* &* +@all"


def sentinel_auth_lines(master: str, user: str, password: str, requirepass: str, previous: str = "") -> list:
    """Sentinel's authentication lines: clients and the other Sentinels log
    in with ``requirepass`` (Sentinel uses sentinel-pass to log in to its
    peers), and Sentinel logs in to Redis as ``user``. ``previous``: a
    rotation of requirepass is not over (orch.rotate_secret, sentinel_auth):
    a ``user default`` line accepts both; Sentinel applies it after
    requirepass at start, so it wins."""
    for what, value in (("user", user), ("password", password), ("requirepass", requirepass)):
        if not value or any(c.isspace() or c in "\"'" for c in value):
            raise AclError(f"redis sentinel: the {what} must be set, without spaces or quotes")
    lines = [f"requirepass {requirepass}", f"sentinel sentinel-pass {requirepass}",
             f"sentinel auth-user {master} {user}", f"sentinel auth-pass {master} {password}"]
    return lines + ([default_user_line([requirepass, previous])] if previous else [])


def sentinel_conf(text: str, master: str, user: str, password: str, requirepass: str, previous: str = "") -> str:
    """``text`` (sentinel.conf, as Sentinel last rewrote it) with its
    authentication lines replaced by the wanted ones; every other line
    (epochs, known replicas and Sentinels) kept."""
    kept = [line for line in text.splitlines() if not AUTH_LINE_RE.match(line)]
    return "\n".join(kept + sentinel_auth_lines(master, user, password, requirepass, previous)) + "\n"


def _hashes(words) -> set:
    out = set()
    for word in words:
        if word.startswith("#"):
            out.add(word.lower())
        elif word.startswith(">"):
            out.add(password_hash(word[1:]))
    return out


def sentinel_file_auth(conf_path: str, master: str) -> dict:
    """What sentinel.conf says about authentication: requirepass,
    sentinel-pass, auth-user and auth-pass for ``master`` (values as
    Sentinel reads them), and ``accepts``: the hashes of its ``user
    default`` line(s), or None without one."""
    found = {"accepts": None}
    with open(conf_path, encoding="utf-8") as handle:
        for line in handle:
            words = line.split()
            if len(words) >= 2 and words[0].lower() == "requirepass":
                found["requirepass"] = conf_value(line.strip()[len(words[0]):])
            elif len(words) >= 3 and words[:2] == ["user", "default"]:
                found["accepts"] = (found["accepts"] or set()) | _hashes(words[2:])
            elif len(words) == 3 and words[:2] == ["sentinel", "sentinel-pass"]:
                found["sentinel-pass"] = conf_value(words[2])
            elif len(words) == 4 and words[0] == "sentinel" and words[1] in ("auth-user", "auth-pass") \
                    and words[2] == master:
                found[words[1]] = conf_value(words[3])
    return found


def sentinel_accepts(port: int, passwords: list, apply: bool = False, host: str = "127.0.0.1") -> dict:
    """Does the Sentinel at ``port`` accept exactly ``passwords`` (its
    default user's hashes, ACL LIST)? ``apply``: make it so live (``ACL
    SETUSER default resetpass #...``, logged in with any of them), then
    SENTINEL FLUSHCONFIG, so that its file's ``user default`` line says the
    same (a restart keeps it). Returns {ok, changed, comment}."""
    wanted = {password_hash(p) for p in _listed(passwords)}
    for password in _listed(passwords):
        try:
            replies = ask(host, port, [["AUTH", password], ["ACL", "LIST"]], whole=True)
        except OSError as exc:
            return {"ok": False, "changed": False, "comment": f"Sentinel on {host}:{port} does not answer ({exc})"}
        if replies[0] == "+OK":
            break
    else:
        return {"ok": False, "changed": False, "comment": f"Sentinel on {host}:{port} accepts none of its passwords"}
    line = next((l for l in (replies[1] if isinstance(replies[1], list) else []) if l.startswith("user default ")), "")
    if _hashes(line.split()) == wanted:
        return {"ok": True, "changed": False, "comment": f"Sentinel on {host}:{port} accepts {len(wanted)} password(s)"}
    if not apply:
        return {"ok": False, "changed": True, "comment": f"Sentinel on {host}:{port} accepts other passwords"}
    answers = ask(host, port, [["AUTH", password], ["ACL", "SETUSER", "default", "on", "resetpass", *sorted(wanted)],
                               ["SENTINEL", "FLUSHCONFIG"]])
    if answers[1:] != ["+OK", "+OK"]:
        return {"ok": False, "changed": False, "comment": f"Sentinel on {host}:{port}: {answers[1:]}"}
    return {"ok": True, "changed": True, "comment": f"Sentinel on {host}:{port} now accepts {len(wanted)} password(s), "
                                                    "live (ACL SETUSER, FLUSHCONFIG), no restart"}


def _resp(*args) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def ask(host: str, port: int, commands: list, timeout: float = 2.0, whole: bool = False) -> list:
    """Send ``commands`` (each a list of arguments) pipelined and return the
    reply of each as text: a simple string or error (``+OK``, ``-NOAUTH ...``),
    or the first element of a bulk or array reply (``whole``: the array as a
    list). Raises OSError when the server does not answer."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.settimeout(timeout)
        conn.sendall(b"".join(_resp(*c) for c in commands))
        buffer = b""
        replies = []
        while len(replies) < len(commands):
            reply, buffer = _read_reply(conn, buffer, whole)
            replies.append(reply)
    return replies


def _read_line(conn, buffer):
    while b"\r\n" not in buffer:
        chunk = conn.recv(4096)
        if not chunk:
            raise OSError("connection closed")
        buffer += chunk
    line, _, rest = buffer.partition(b"\r\n")
    return line.decode(errors="replace"), rest


def _read_reply(conn, buffer, whole=False):
    line, buffer = _read_line(conn, buffer)
    kind = line[:1]
    if kind in ("+", "-", ":"):
        return line, buffer
    if kind == "$":
        size = int(line[1:])
        if size < 0:
            return "", buffer
        while len(buffer) < size + 2:
            chunk = conn.recv(4096)
            if not chunk:
                raise OSError("connection closed")
            buffer += chunk
        return buffer[:size].decode(errors="replace"), buffer[size + 2:]
    if kind == "*":
        count, items = int(line[1:]), []
        for _ in range(max(count, 0)):
            item, buffer = _read_reply(conn, buffer, whole)
            items.append(item)
        if whole:
            return items, buffer
        return items[0] if items else "", buffer
    raise OSError(f"not a Redis reply: {line[:40]!r}")


def sentinel_auth_current(conf_path: str, port: int, master: str, user: str, password: str,
                          requirepass: str, host: str = "127.0.0.1", previous: str = "") -> tuple:
    """(True, why) when the Sentinel on ``port`` refuses a client without
    the password, accepts ``requirepass``, and its file holds the wanted
    requirepass, sentinel-pass, auth-user/auth-pass for ``master``; else
    (False, what differs): a change only a restart applies (Sentinel has no
    CONFIG SET for requirepass). What it accepts besides (``previous``,
    during a rotation) is ``sentinel_accepts``'s business, live."""
    try:
        found = sentinel_file_auth(conf_path, master)
    except OSError as exc:
        return False, f"cannot read {conf_path}: {exc}"
    wanted = {"requirepass": requirepass, "sentinel-pass": requirepass, "auth-user": user, "auth-pass": password}
    missing = [name for name, value in wanted.items() if found.get(name) != value]
    accepts = found["accepts"]
    if accepts is not None and password_hash(requirepass) not in accepts:
        missing.append("user default")  # its start would refuse requirepass
    if missing:
        return False, f"{conf_path} lacks the wanted {', '.join(missing)} for {master}"
    try:
        anonymous = ask(host, port, [["PING"]])[0]
        logged_in = ask(host, port, [["AUTH", requirepass], ["PING"]])
    except OSError as exc:
        return False, f"Sentinel on {host}:{port} does not answer ({exc})"
    if not anonymous.startswith("-NOAUTH"):
        return False, f"Sentinel on {host}:{port} answers without a password ({anonymous})"
    if logged_in != ["+OK", "+PONG"]:
        return False, f"Sentinel on {host}:{port} refuses its password ({logged_in[0]})"
    return True, f"Sentinel on {host}:{port} requires its password and logs in to {master} as {user}"


def acl_commands(text: str, running_users: list) -> list:
    """The commands that give a running Redis the users of ACL file
    ``text``: ``ACL SETUSER <name> <rules>`` per ``user`` line (its rules
    begin with ``reset``: the user ends exactly as the line says), then
    ``ACL DELUSER`` for each of ``running_users`` the file lacks."""
    commands, named = [], set()
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "user":
            raise AclError(f"not an ACL file line: {line[:40]!r}")
        named.add(words[1])
        commands.append(["ACL", "SETUSER", *words[1:]])
    gone = sorted(set(running_users) - named)
    return commands + ([["ACL", "DELUSER", *gone]] if gone else [])


def acl_apply(port: int, user: str, passwords: list, text: str, host: str = "127.0.0.1") -> str:
    """Give the Redis at ``port`` the users of ACL file ``text`` in place
    (``acl_commands``), logged in as ``user`` with the first of
    ``passwords`` it accepts (a rotation of that user's own password: the
    running Redis knows only the previous one yet): "" when done, else what
    failed."""
    error = ""
    for password in _listed(passwords):
        try:
            replies = ask(host, port, [["AUTH", user, password], ["ACL", "USERS"]], whole=True)
        except OSError as exc:
            return f"Redis on {host}:{port} does not answer ({exc})"
        if replies[0] != "+OK":
            error = f"AUTH as {user} refused: {replies[0]}"
            continue
        if not isinstance(replies[1], list):
            return f"ACL USERS as {user} failed: {replies[1]}"
        try:
            commands = acl_commands(text, replies[1])
        except AclError as exc:
            return str(exc)
        answers = ask(host, port, [["AUTH", user, password], *commands])
        failed = [f"{' '.join(c[:3])}: {a}" for c, a in zip(commands, answers[1:]) if a != "+OK"]
        return "; ".join(failed)
    return error or f"no password given for {user}"


def acl_load(port: int, user: str, password: str, host: str = "127.0.0.1") -> str:
    """``ACL LOAD`` on the Redis at ``port`` as ``user``: "" when done,
    else Redis's error (the file is refused whole: nothing changes)."""
    try:
        replies = ask(host, port, [["AUTH", user, password], ["ACL", "LOAD"]])
    except OSError as exc:
        return f"Redis on {host}:{port} does not answer ({exc})"
    if replies[0] != "+OK":
        return f"AUTH as {user} refused: {replies[0]}"
    return "" if replies[1] == "+OK" else replies[1]


# -- settings applied live (replication's password) ---------------------------------
MEMORY_RE = re.compile(r"^(\d+)(k|kb|m|mb|g|gb)$", re.IGNORECASE)
UNITS = {"k": 1000, "kb": 1024, "m": 1000 ** 2, "mb": 1024 ** 2, "g": 1000 ** 3, "gb": 1024 ** 3}


def conf_value(words: str) -> str:
    """A redis.conf value as Redis reads it: ``"a \\"b\\""`` unquoted
    (CONFIG REWRITE quotes strings), ``256mb`` in bytes, words joined by
    one space (``bind a b``)."""
    words = words.strip()
    if words.startswith('"') and words.endswith('"') and len(words) > 1:
        body = words[1:-1]
        out, i = [], 0
        while i < len(body):
            if body[i] == "\\" and i + 1 < len(body):
                nxt = body[i + 1]
                if nxt == "x" and i + 3 < len(body):
                    out.append(chr(int(body[i + 2:i + 4], 16)))
                    i += 4
                    continue
                out.append({"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a"}.get(nxt, nxt))
                i += 2
                continue
            out.append(body[i])
            i += 1
        return "".join(out)
    memory = MEMORY_RE.match(words)
    if memory:
        return str(int(memory.group(1)) * UNITS[memory.group(2).lower()])
    return " ".join(words.split())


def conf_settings(path: str, _depth: int = 0) -> dict:
    """``{directive: value}`` of a redis.conf and the files it includes, the
    last line winning (as Redis reads them)."""
    if _depth > 5:
        raise AclError(f"{path}: includes nested too deep")
    settings = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            words = line.strip()
            if not words or words.startswith("#"):
                continue
            name, _, value = words.partition(" ")
            if name.lower() == "include":
                settings.update(conf_settings(value.strip(), _depth + 1))
            else:
                settings[name.lower()] = conf_value(value)
    return settings


def _admin_login(host, port, user, passwords):
    """The password of ``passwords`` the Redis at ``port`` accepts for
    ``user``, or None."""
    for password in _listed(passwords):
        try:
            if ask(host, port, [["AUTH", user, password]])[0] == "+OK":
                return password
        except OSError:
            return None
    return None


def runs_settings(path: str, port: int, user: str, passwords: list, host: str = "127.0.0.1") -> bool:
    """True when the running Redis at ``port`` answers CONFIG GET, for every
    setting of ``path`` and its includes, with the file's value: nothing to
    restart for (lemp_service.config_loaded's ``applied_fun``). False when
    one differs, a file is unreadable or Redis refuses ``user`` (then the
    state restarts, as without this check)."""
    try:
        wanted = conf_settings(path)
    except (OSError, AclError):
        return False
    password = _admin_login(host, port, user, passwords)
    if password is None:
        return False
    names = sorted(wanted)
    try:
        replies = ask(host, port, [["AUTH", user, password]] + [["CONFIG", "GET", n] for n in names], whole=True)
    except OSError:
        return False
    for name, reply in zip(names, replies[1:]):
        if not isinstance(reply, list) or len(reply) != 2 or conf_value(reply[1]) != wanted[name]:
            return False
    return True


def settings_live(path: str, port: int, user: str, passwords: list, names: list, apply: bool = False,
                  host: str = "127.0.0.1") -> dict:
    """Does the running Redis at ``port`` run, for each of ``names`` that
    ``path`` (and its includes) sets, the file's value? ``apply``: make it
    so with CONFIG SET, so that a new setting Redis can change live (issue
    #14: replica-serve-stale-data) reaches a running node without the
    restart runs_settings would otherwise ask for. Returns {ok, changes,
    comment}: ``changes`` lists the settings that differ (or were set)."""
    try:
        wanted = conf_settings(path)
    except (OSError, AclError) as exc:
        return {"ok": False, "changes": [], "comment": f"cannot read {path}: {exc}"}
    names = [name for name in names if name in wanted]
    password = _admin_login(host, port, user, passwords)
    if password is None:
        return {"ok": False, "changes": [], "comment": f"Redis on {host}:{port} refuses {user} (or does not answer)"}
    try:
        replies = ask(host, port, [["AUTH", user, password]] + [["CONFIG", "GET", n] for n in names], whole=True)
    except OSError as exc:
        return {"ok": False, "changes": [], "comment": f"Redis on {host}:{port} did not answer: {exc}"}
    differ = [n for n, r in zip(names, replies[1:])
              if not (isinstance(r, list) and len(r) == 2 and conf_value(r[1]) == wanted[n])]
    if not differ:
        return {"ok": True, "changes": [], "comment": f"Redis on {host}:{port} runs {', '.join(names) or 'them'}"}
    if not apply:
        return {"ok": False, "changes": differ, "comment": "differs: " + ", ".join(differ)}
    commands = [["AUTH", user, password]] + [["CONFIG", "SET", n, wanted[n]] for n in differ]
    try:
        answers = ask(host, port, commands)
    except OSError as exc:
        return {"ok": False, "changes": [], "comment": f"Redis on {host}:{port} did not answer: {exc}"}
    failed = [f"CONFIG SET {c[2]}: {a}" for c, a in zip(commands[1:], answers[1:]) if a != "+OK"]
    if failed:
        return {"ok": False, "changes": [], "comment": "; ".join(failed)}
    return {"ok": True, "changes": differ, "comment": f"set live (CONFIG SET {', '.join(differ)}), no restart"}


def _last_value(conf_path, name):
    try:
        with open(conf_path, encoding="utf-8") as handle:
            lines = [line.strip().partition(" ") for line in handle]
    except OSError:
        return None
    values = [conf_value(rest) for word, _, rest in lines if word.lower() == name]
    return values[-1] if values else None


def replication_auth(port: int, user: str, passwords: list, masteruser: str, masterauth: str,
                     conf_path: str = "/etc/redis/redis.conf", apply: bool = False,
                     host: str = "127.0.0.1") -> dict:
    """Does the running Redis at ``port`` log in to its master as
    ``masteruser``/``masterauth``, and does its redis.conf agree (Sentinel's
    CONFIG REWRITE copies masterauth into it, where it overrides the
    included file at the next start)? ``apply``: make it so live, with
    CONFIG SET (a replica keeps its link; the new password serves its next
    connection) and, when redis.conf holds an other value, CONFIG REWRITE
    (what Sentinel does at every failover). Returns {ok, changes, comment}:
    ``changes`` lists what differs (or was changed)."""
    password = _admin_login(host, port, user, passwords)
    if password is None:
        return {"ok": False, "changes": [], "comment": f"Redis on {host}:{port} refuses {user} (or does not answer)"}
    wanted = {"masteruser": masteruser, "masterauth": masterauth}
    names = sorted(wanted)
    replies = ask(host, port, [["AUTH", user, password]] + [["CONFIG", "GET", n] for n in names], whole=True)
    live = {n: (r[1] if isinstance(r, list) and len(r) == 2 else None) for n, r in zip(names, replies[1:])}
    differ = [n for n in names if live[n] != wanted[n]]
    stale = [n for n in names if _last_value(conf_path, n) not in (None, wanted[n])]
    changes = [f"{n} (running)" for n in differ] + [f"{n} (in {conf_path})" for n in stale]
    if not changes:
        return {"ok": True, "changes": [], "comment": f"Redis on {host}:{port} logs in to its master as {masteruser}"}
    if not apply:
        return {"ok": False, "changes": changes, "comment": "differs: " + ", ".join(changes)}
    commands = [["AUTH", user, password]]
    if differ:
        commands.append(["CONFIG", "SET"] + [w for n in differ for w in (n, wanted[n])])
    if stale:
        commands.append(["CONFIG", "REWRITE"])
    answers = ask(host, port, commands)
    failed = [f"{' '.join(c[:2])}: {a}" for c, a in zip(commands[1:], answers[1:]) if a != "+OK"]
    if failed:
        return {"ok": False, "changes": [], "comment": "; ".join(failed)}
    return {"ok": True, "changes": changes, "comment": "applied live (CONFIG SET" + (", CONFIG REWRITE" if stale
                                                                                       else "") + "), no restart"}
