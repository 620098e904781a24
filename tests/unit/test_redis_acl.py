"""Redis ACL users and Sentinel authentication (_modules/lemp_redis.py): the
rules are built from salt/redis/defaults.yaml, a bad entry stops the render
naming the key, and the file is loaded into a real Redis 7.0 on loopback,
where each user can do what its client does and nothing else. Sentinel's
authentication lines are checked against a real Sentinel."""

import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import yaml

import lemp_redis  # tests/conftest.py puts _modules on the path
from loopback import free_port

REPO = pathlib.Path(__file__).resolve().parents[2]
USERS = yaml.safe_load((REPO / "salt" / "redis" / "defaults.yaml").read_text())["redis"]["acl"]["users"]
PASSWORDS = {name: f"pw-{name}" for name in USERS}
WRAPPER = REPO / "salt" / "webapp" / "files" / "lemp-cron-once"



def _wait(predicate, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _answers(port):
    try:
        lemp_redis.ask("127.0.0.1", port, [["PING"]], timeout=0.5)
        return True
    except OSError:
        return False


def as_user(port, user, *command):
    """The reply to ``command`` sent as ``user`` (its password from PASSWORDS)."""
    auth = ["AUTH", PASSWORDS[user]] if user == "default" else ["AUTH", user, PASSWORDS[user]]
    replies = lemp_redis.ask("127.0.0.1", port, [auth, list(command)])
    assert replies[0] == "+OK", replies
    return replies[1]


# -- pure rules -------------------------------------------------------------------

def test_the_file_holds_hashes_not_passwords_and_declares_default_first():
    text = lemp_redis.acl_file(USERS, PASSWORDS)
    assert not any(pw in text for pw in PASSWORDS.values())
    lines = [line for line in text.splitlines() if line.startswith("user ")]
    assert lines[0].startswith("user default reset on #")
    assert {line.split()[1] for line in lines} == set(USERS)
    sessions = next(line for line in lines if line.split()[1] == "sessions")
    assert "~PHPREDIS_SESSION:*" in sessions and "+config" not in sessions and "+flushall" not in sessions


@pytest.mark.parametrize("users, message", [
    ({"sessions": USERS["sessions"]}, "must declare the user default"),
    ({**USERS, "Bad Name": USERS["check"]}, "user name 'Bad Name'"),
    ({**USERS, "check": {**USERS["check"], "commands": ["info replication"]}}, "redis:lookup:acl:users:check:commands"),
    ({**USERS, "check": {**USERS["check"], "keys": ["a b"]}}, "redis:lookup:acl:users:check:keys"),
])
def test_a_bad_user_entry_stops_the_render_naming_the_key(users, message):
    with pytest.raises(lemp_redis.AclError, match=message.replace("*", r"\*")):
        lemp_redis.acl_file(users, {name: "pw" for name in users})


def test_a_user_without_a_password_key_is_refused_naming_it():
    with pytest.raises(lemp_redis.AclError, match="redis:lookup:acl:users:check:password"):
        lemp_redis.password_keys({**USERS, "check": {"commands": ["ping"]}})


def test_sentinel_conf_replaces_only_the_authentication_lines():
    text = ("port 26379\nsentinel monitor sessions 10.0.0.1 6379 2\nsentinel auth-pass sessions old\n"
            "user default on #abc ~* &* +@all\nsentinel known-sentinel sessions 10.0.0.2 26379 id\n")
    out = lemp_redis.sentinel_conf(text, "sessions", "sentinel", "new", "spw")
    assert "old" not in out and "#abc" not in out
    assert "sentinel known-sentinel sessions 10.0.0.2 26379 id" in out
    assert out.splitlines()[-4:] == ["requirepass spw", "sentinel sentinel-pass spw",
                                     "sentinel auth-user sessions sentinel", "sentinel auth-pass sessions new"]


# -- against a real Redis 7.0 and Sentinel ---------------------------------------------

@pytest.fixture(scope="module")
def redis(host_tool, tmp_path_factory):
    """A Redis master with the ACL file, a replica logging in as `replication`, a Sentinel logging in
    as `sentinel` and requiring its own password."""
    server = host_tool("redis-server")
    folder = tmp_path_factory.mktemp("redis-acl")
    acl = folder / "users.acl"
    acl.write_text(lemp_redis.acl_file(USERS, PASSWORDS))
    master, replica, sentinel = free_port(), free_port(), free_port()
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    procs = [subprocess.Popen([server, *common, "--port", str(master), "--dir", str(folder),
                               "--aclfile", str(acl)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    (folder / "replica").mkdir()
    (folder / "replica" / "users.acl").write_text(acl.read_text())
    procs.append(subprocess.Popen([server, *common, "--port", str(replica), "--dir", str(folder / "replica"),
                                   "--aclfile", str(folder / "replica" / "users.acl"),
                                   "--replicaof", "127.0.0.1", str(master), "--masteruser", "replication",
                                   "--masterauth", PASSWORDS["replication"]],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    conf = folder / "sentinel.conf"
    conf.write_text(f"bind 127.0.0.1\nport {sentinel}\ndir {folder}\nsentinel monitor sessions 127.0.0.1 {master} 1\n"
                    + "\n".join(lemp_redis.sentinel_auth_lines("sessions", "sentinel", PASSWORDS["sentinel"],
                                                                "sentinel-pw")) + "\n")
    procs.append(subprocess.Popen([server, str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL))
    try:
        for port in (master, replica, sentinel):
            _wait(lambda port=port: _answers(port), f"redis on {port} did not answer")
        yield {"master": master, "replica": replica, "sentinel": sentinel, "acl": acl, "folder": folder,
               "conf": conf}
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


def test_the_sessions_user_does_what_php_and_the_cron_lock_do_and_nothing_else(redis):
    port = redis["master"]
    key = "PHPREDIS_SESSION:abc"
    assert as_user(port, "sessions", "SETEX", key, "60", "data") == "+OK"
    assert as_user(port, "sessions", "GET", key) == "data"
    assert as_user(port, "sessions", "EXISTS", key) == ":1"
    assert as_user(port, "sessions", "EXPIRE", key, "60") == ":1"
    assert as_user(port, "sessions", "SET", key + "_LOCK", "me", "NX", "PX", "5000") == "+OK"
    release = 'if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end'
    assert as_user(port, "sessions", "EVAL", release, "1", key + "_LOCK", "me") == ":1"
    assert as_user(port, "sessions", "SET", "lemp-cron:shop:job:slot", "web1", "NX", "EX", "60") == "+OK"
    assert as_user(port, "sessions", "DEL", key) == ":1"
    for command in (["CONFIG", "GET", "*"], ["FLUSHALL"], ["KEYS", "*"], ["ACL", "LIST"],
                    ["REPLICAOF", "NO", "ONE"], ["SHUTDOWN"]):
        assert as_user(port, "sessions", *command).startswith("-NOPERM"), command
    assert as_user(port, "sessions", "GET", "other-key").startswith("-NOPERM")
    assert as_user(port, "sessions", "EVAL", "return redis.call('flushall')", "0").startswith("-")


def test_check_monitor_and_replication_users_have_only_their_commands(redis):
    port = redis["master"]
    assert as_user(port, "check", "PING") == "+PONG"
    assert "role:master" in as_user(port, "check", "INFO", "replication")
    assert as_user(port, "check", "GET", "PHPREDIS_SESSION:abc").startswith("-NOPERM")
    assert as_user(port, "default", "CONFIG", "GET", "maxmemory") == "maxmemory"
    assert as_user(port, "default", "SLOWLOG", "LEN").startswith(":")
    # Zabbix agent 2's plugin names its connection before any item
    assert as_user(port, "default", "CLIENT", "SETNAME", "zabbix").startswith("+OK")
    assert as_user(port, "default", "GET", "PHPREDIS_SESSION:abc").startswith("-NOPERM")
    assert as_user(port, "default", "CONFIG", "SET", "maxmemory", "1").startswith("-NOPERM")
    assert as_user(port, "replication", "GET", "x").startswith("-NOPERM")
    _wait(lambda: "master_link_status:up" in as_user(redis["replica"], "check", "INFO", "replication"),
          "the replica did not sync as user replication")


def test_the_legacy_password_works_until_the_file_drops_it_and_acl_load_applies_that(redis):
    port = redis["master"]
    redis["acl"].write_text(lemp_redis.acl_file(USERS, PASSWORDS, legacy_password="old-one"))
    assert lemp_redis.acl_load(port, "admin", PASSWORDS["admin"]) == ""
    assert lemp_redis.ask("127.0.0.1", port, [["AUTH", "old-one"], ["CONFIG", "GET", "maxmemory"]])[1] == "maxmemory"
    redis["acl"].write_text(lemp_redis.acl_file(USERS, PASSWORDS))
    assert lemp_redis.acl_load(port, "sessions", PASSWORDS["sessions"]).startswith("-NOPERM")
    assert lemp_redis.acl_load(port, "admin", PASSWORDS["admin"]) == ""
    assert lemp_redis.ask("127.0.0.1", port, [["AUTH", "old-one"]])[0].startswith("-WRONGPASS")
    assert as_user(port, "sessions", "GET", "PHPREDIS_SESSION:none") == ""


def _connection_as(port, user, password):
    conn = socket.create_connection(("127.0.0.1", port), timeout=2)
    conn.sendall(lemp_redis._resp("AUTH", user, password))
    assert lemp_redis._read_reply(conn, b"")[0] == "+OK"
    return conn


def _still_answers(conn):
    conn.sendall(lemp_redis._resp("PING"))
    return lemp_redis._read_reply(conn, b"")[0]


def _replica_ids(port, admin_password):
    """The client ids of the replicas linked to the Redis on ``port``."""
    replies = lemp_redis.ask("127.0.0.1", port, [["AUTH", "admin", admin_password], ["CLIENT", "LIST", "TYPE", "replica"]])
    assert replies[0] == "+OK", replies
    return sorted(word for word in replies[1].split() if word.startswith("id="))


def login(port, user, password):
    return lemp_redis.ask("127.0.0.1", port, [["AUTH", user, password], ["PING"]])


def test_acl_commands_set_every_user_in_place_and_delete_the_ones_gone():
    text = "user default reset on #a -@all +ping\nuser sessions reset on #b #c ~k:* -@all +get\n"
    assert lemp_redis.acl_commands(text, ["default", "sessions", "old-user"]) == [
        ["ACL", "SETUSER", "default", "reset", "on", "#a", "-@all", "+ping"],
        ["ACL", "SETUSER", "sessions", "reset", "on", "#b", "#c", "~k:*", "-@all", "+get"],
        ["ACL", "DELUSER", "old-user"]]
    with pytest.raises(lemp_redis.AclError, match="not an ACL file line"):
        lemp_redis.acl_commands("# a comment\n", [])


def test_a_rotated_password_logs_in_old_or_new_then_only_new_and_no_client_is_dropped(redis):
    """orch.rotate_secret for a Redis user (redis_sessions, redis_admin...):
    the file holds both hashes, then only the new; applied in place, a
    connection logged in with the old password (a PHP request, the replica's
    link) keeps working throughout: ACL LOAD would have closed it."""
    port, old, new = redis["master"], PASSWORDS["sessions"], "pw-sessions-new"
    php = _connection_as(port, "sessions", old)
    # the replica's link, by its client id (an earlier test's ACL LOAD cut it: it may still be reconnecting)
    _wait(lambda: _replica_ids(port, PASSWORDS["admin"]), "the replica to link to the master")
    replica = _replica_ids(port, PASSWORDS["admin"])
    both = lemp_redis.acl_file(USERS, {**PASSWORDS, "sessions": [new, old]})
    line = next(l for l in both.splitlines() if l.startswith("user sessions "))
    assert sorted(w for w in line.split() if w.startswith("#")) == sorted(
        [lemp_redis.password_hash(old), lemp_redis.password_hash(new)])
    assert old not in both and new not in both
    try:
        redis["acl"].write_text(both)
        assert lemp_redis.acl_apply(port, "admin", [PASSWORDS["admin"]], both) == ""
        assert login(port, "sessions", old) == ["+OK", "+PONG"]
        assert login(port, "sessions", new) == ["+OK", "+PONG"]
        assert _still_answers(php) == "+PONG"
        only_new = lemp_redis.acl_file(USERS, {**PASSWORDS, "sessions": new})
        redis["acl"].write_text(only_new)
        assert lemp_redis.acl_apply(port, "admin", [PASSWORDS["admin"]], only_new) == ""
        assert login(port, "sessions", old)[0].startswith("-WRONGPASS")
        assert login(port, "sessions", new) == ["+OK", "+PONG"]
        assert _still_answers(php) == "+PONG"
        # the admin's own password: the running Redis knows only the previous one when the step starts
        admin_both = lemp_redis.acl_file(USERS, {**PASSWORDS, "sessions": new, "admin": ["admin-new",
                                                                                         PASSWORDS["admin"]]})
        assert lemp_redis.acl_apply(port, "admin", ["admin-new", PASSWORDS["admin"]], admin_both) == ""
        assert login(port, "admin", "admin-new") == ["+OK", "+PONG"]
        assert "WRONGPASS" in lemp_redis.acl_apply(port, "admin", ["wrong"], admin_both)
        # the replica is still linked to the master, by the same connection
        assert _replica_ids(port, "admin-new") == replica
    finally:
        php.close()
        redis["acl"].write_text(lemp_redis.acl_file(USERS, PASSWORDS))
        assert lemp_redis.acl_apply(port, "admin", ["admin-new", PASSWORDS["admin"]],
                                    redis["acl"].read_text()) == ""
    assert login(port, "sessions", old) == ["+OK", "+PONG"]


def test_sentinel_requires_its_password_and_reaches_redis_as_its_user(redis):
    port = redis["sentinel"]
    assert lemp_redis.ask("127.0.0.1", port, [["SENTINEL", "FAILOVER", "sessions"]])[0].startswith("-NOAUTH")
    replies = lemp_redis.ask("127.0.0.1", port, [["AUTH", "sentinel-pw"], ["SENTINEL", "MASTER", "sessions"]])
    assert replies == ["+OK", "name"]
    # Sentinel rewrites its file (epochs, peers): the check reads what it writes
    assert lemp_redis.ask("127.0.0.1", port, [["AUTH", "sentinel-pw"], ["SENTINEL", "FLUSHCONFIG"]])[1] == "+OK"
    ok, why = lemp_redis.sentinel_auth_current(str(redis["conf"]), port, "sessions", "sentinel",
                                               PASSWORDS["sentinel"], "sentinel-pw")
    assert ok, why

    def flags():
        reply = lemp_redis.ask("127.0.0.1", port, [["AUTH", "sentinel-pw"], ["SENTINEL", "MASTER", "sessions"]])
        return reply
    # Sentinel's link to the master is up: it logs in as `sentinel`.
    _wait(lambda: "+OK" in flags() and "s_down" not in open(redis["conf"]).read(), "sentinel link")
    ok, why = lemp_redis.sentinel_auth_current(str(redis["conf"]), port, "sessions", "sentinel",
                                               PASSWORDS["sentinel"], "a-new-one")
    assert not ok and "lacks the wanted requirepass, sentinel-pass" in why


def test_the_cron_lock_takes_the_slot_as_the_sessions_user(redis):
    assert os.geteuid() == 0, "lemp-cron-once runs as root (runuser)"
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="lemp-cron-acl-"))  # nobody enters it: not under pytest's 0700
    tmp_path.chmod(0o755)
    current = tmp_path / "current"
    current.mkdir(mode=0o755)
    command = tmp_path / "job.command"
    command.write_text("true\n")
    command.chmod(0o644)
    auth = tmp_path / "auth"
    auth.write_text(f"sessions\n{PASSWORDS['sessions']}\n")
    auth.chmod(0o600)
    env = dict(os.environ, LEMP_CRON_APP="shop", LEMP_CRON_JOB="acl", LEMP_CRON_NODE="web1",
               LEMP_CRON_USER="nobody", LEMP_CRON_DIR=str(current), LEMP_CRON_REDIS_HOST="127.0.0.1",
               LEMP_CRON_REDIS_PORT=str(redis["master"]), LEMP_CRON_TTL="60", LEMP_CRON_AUTH_FILE=str(auth))
    proc = subprocess.run(["/bin/bash", str(WRAPPER), str(command)], capture_output=True, text=True, env=env,
                          timeout=60)
    shutil.rmtree(tmp_path)
    assert proc.returncode == 0 and "ran on web1 rc=0" in proc.stdout, proc.stdout + proc.stderr


def test_lemp_redis_follow_asks_a_sentinel_that_requires_a_password(redis, tmp_path):
    conf = tmp_path / "redis.conf"
    conf.write_text("include /etc/redis/lemp-ha.conf\n")
    secret = tmp_path / "sentinel.auth"
    secret.write_text("sentinel-pw\n")
    base = ["python3", str(REPO / "salt" / "redis" / "files" / "lemp-redis-follow.py"), "--me", "10.77.0.21",
            "--master-name", "sessions", "--sentinels", "127.0.0.1", "--sentinel-port", str(redis["sentinel"]),
            "--config", str(conf), "--timeout", "0.5"]
    proc = subprocess.run(base, capture_output=True, text=True, timeout=30)
    assert "127.0.0.1: no answer" in proc.stdout, "without the password the Sentinel gives no vote"
    proc = subprocess.run(base + ["--password-file", str(secret)], capture_output=True, text=True, timeout=30)
    assert f"starting as a replica of 127.0.0.1:{redis['master']}" in proc.stdout, proc.stdout + proc.stderr


# -- replication's password, live (redis/replication.sls) ---------------------------

def test_masterauth_moves_to_an_include_and_changes_live_the_replica_staying_linked(redis, tmp_path):
    """redis_replication: the upgrade that moves masteruser/masterauth out of
    lemp-ha.conf into an include leaves what Redis runs unchanged
    (runs_settings: no restart); a rotation's new password reaches the
    replica with CONFIG SET, its link stays up, and a redis.conf where
    CONFIG REWRITE copied the old masterauth is brought in step."""
    port, admin = redis["replica"], [PASSWORDS["admin"]]
    settings, include = tmp_path / "lemp-ha.conf", tmp_path / "lemp-ha-replication.conf"
    base = f"bind 127.0.0.1\nport {port}\nprotected-mode yes\nmaxmemory 0\nappendonly no\nreplica-read-only yes\n"
    settings.write_text(base + f"masteruser replication\nmasterauth {PASSWORDS['replication']}\n")
    assert lemp_redis.runs_settings(str(settings), port, "admin", admin)
    include.write_text(f"masteruser replication\nmasterauth {PASSWORDS['replication']}\n")
    settings.write_text(base + f"include {include}\n")
    assert lemp_redis.runs_settings(str(settings), port, "admin", admin), "the upgrade would restart Redis"
    settings.write_text(base.replace("maxmemory 0", "maxmemory 1mb") + f"include {include}\n")
    assert not lemp_redis.runs_settings(str(settings), port, "admin", admin)
    settings.write_text(base + f"include {include}\n")
    assert not lemp_redis.runs_settings(str(settings), port, "admin", ["wrong"])

    old, new = PASSWORDS["replication"], "pw-replication-new"
    conf = tmp_path / "redis.conf"
    conf.write_text(f'include {settings}\n# Generated by CONFIG REWRITE\nmasterauth "{old}"\n')
    # every node accepts old or new (redis.acl), on the master too
    both = lemp_redis.acl_file(USERS, {**PASSWORDS, "replication": [new, old]})
    for node in (redis["master"], port):
        assert lemp_redis.acl_apply(node, "admin", admin, both) == ""
    include.write_text(f"masteruser replication\nmasterauth {new}\n")
    assert not lemp_redis.runs_settings(str(settings), port, "admin", admin)
    before = lemp_redis.replication_auth(port, "admin", admin, "replication", new, str(conf))
    assert not before["ok"] and before["changes"] == ["masterauth (running)", "masterauth (in " + str(conf) + ")"]
    try:
        # the test's redis.conf is not the one the replica runs: CONFIG REWRITE
        # would rewrite the fixture's; only CONFIG SET is checked live here
        conf.write_text(f'include {settings}\n# Generated by CONFIG REWRITE\nmasterauth "{new}"\n')
        done = lemp_redis.replication_auth(port, "admin", admin, "replication", new, str(conf), apply=True)
        assert done["ok"] and done["changes"] == ["masterauth (running)"], done
        assert lemp_redis.replication_auth(port, "admin", admin, "replication", new, str(conf))["ok"]
        assert lemp_redis.runs_settings(str(settings), port, "admin", admin)
        only_new = lemp_redis.acl_file(USERS, {**PASSWORDS, "replication": new})
        assert lemp_redis.acl_apply(redis["master"], "admin", admin, only_new) == ""
        # a new link (the replica reconnecting) logs in with the new password
        assert as_user(port, "admin", "CLIENT", "KILL", "TYPE", "MASTER").startswith(":")
        assert lemp_redis.ask("127.0.0.1", redis["master"], [["AUTH", "admin", admin[0]],
                                                               ["CLIENT", "KILL", "TYPE", "REPLICA"]])[0] == "+OK"
        _wait(lambda: "master_link_status:up" in as_user(port, "check", "INFO", "replication"),
              "the replica did not reconnect with the new masterauth")
        assert login(redis["master"], "replication", old)[0].startswith("-WRONGPASS")
    finally:
        assert lemp_redis.acl_apply(redis["master"], "admin", admin, lemp_redis.acl_file(USERS, PASSWORDS)) == ""
        assert lemp_redis.acl_apply(port, "admin", admin, lemp_redis.acl_file(USERS, PASSWORDS)) == ""
        assert lemp_redis.ask("127.0.0.1", port, [["AUTH", "admin", admin[0]],
                                                  ["CONFIG", "SET", "masterauth", old]])[1] == "+OK"


def test_a_redis_conf_value_is_read_as_redis_reads_it(tmp_path):
    assert lemp_redis.conf_value('"a \\"b\\" \\x41"') == 'a "b" A'
    assert lemp_redis.conf_value("256mb") == str(256 * 1024 * 1024)
    assert lemp_redis.conf_value("10.0.0.1   127.0.0.1") == "10.0.0.1 127.0.0.1"
    inner = tmp_path / "inner.conf"
    inner.write_text("masterauth inner\n")
    outer = tmp_path / "outer.conf"
    outer.write_text(f"masterauth first\ninclude {inner}\n# comment\nport 1\n")
    assert lemp_redis.conf_settings(str(outer)) == {"masterauth": "inner", "port": "1"}


# -- Sentinel's own password, rotated (orch.rotate_secret sentinel_auth) ------------

def _start_sentinel(server, conf):
    proc = subprocess.Popen([server, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = int(next(l.split()[1] for l in conf.read_text().splitlines() if l.startswith("port ")))
    _wait(lambda: _answers(port), f"sentinel on {port} did not answer")
    return proc


def _sentinel_login(port, password):
    return lemp_redis.ask("127.0.0.1", port, [["AUTH", password], ["PING"]])


def test_sentinels_password_rotates_both_accepted_then_only_new_and_a_restart_keeps_only_new(redis, host_tool,
                                                                                           tmp_path):
    """Every Sentinel accepts old and new live (no restart); the client step
    restarts one with the new requirepass (its file's `user default` line
    accepting both); the last step drops the old live; sentinel.conf then
    holds neither the old password nor its hash, and a restart accepts only
    the new."""
    server, old, new = host_tool("redis-server"), "sentinel-old", "sentinel-new"
    port, conf = free_port(), tmp_path / "sentinel.conf"
    conf.write_text(f"bind 127.0.0.1\nport {port}\ndir {tmp_path}\n"
                    f"sentinel monitor sessions 127.0.0.1 {redis['master']} 1\n"
                    + "\n".join(lemp_redis.sentinel_auth_lines("sessions", "sentinel", PASSWORDS["sentinel"], old))
                    + "\n")
    proc = _start_sentinel(server, conf)
    try:
        assert lemp_redis.sentinel_accepts(port, [old])["ok"]
        # 1. accept old or new, live (redis.sentinel_accepts on every Sentinel)
        assert not lemp_redis.sentinel_accepts(port, [new, old])["ok"]
        done = lemp_redis.sentinel_accepts(port, [new, old], apply=True)
        assert done["ok"] and done["changed"], done
        assert _sentinel_login(port, old) == ["+OK", "+PONG"] and _sentinel_login(port, new) == ["+OK", "+PONG"]
        assert lemp_redis.sentinel_accepts(port, [new, old]) == {**lemp_redis.sentinel_accepts(port, [new, old]),
                                                                 "ok": True, "changed": False}
        # 2. the client step: requirepass and sentinel-pass are the new one only after a restart
        ok, why = lemp_redis.sentinel_auth_current(str(conf), port, "sessions", "sentinel", PASSWORDS["sentinel"],
                                                   new)
        assert not ok and "requirepass" in why
        proc.terminate()
        proc.wait(timeout=10)
        conf.write_text(lemp_redis.sentinel_conf(conf.read_text(), "sessions", "sentinel", PASSWORDS["sentinel"],
                                                 new, previous=old))
        proc = _start_sentinel(server, conf)
        assert _sentinel_login(port, old) == ["+OK", "+PONG"] and _sentinel_login(port, new) == ["+OK", "+PONG"]
        ok, why = lemp_redis.sentinel_auth_current(str(conf), port, "sessions", "sentinel", PASSWORDS["sentinel"],
                                                   new)
        assert ok, why
        # 3. only the new, live
        done = lemp_redis.sentinel_accepts(port, [new], apply=True)
        assert done["ok"] and done["changed"], done
        assert _sentinel_login(port, old)[0].startswith("-WRONGPASS")
        assert _sentinel_login(port, new) == ["+OK", "+PONG"]
        text = conf.read_text()
        assert old not in text and lemp_redis.password_hash(old) not in text, text
        assert lemp_redis.sentinel_auth_current(str(conf), port, "sessions", "sentinel", PASSWORDS["sentinel"],
                                                new)[0]
        # a restart keeps only the new
        proc.terminate()
        proc.wait(timeout=10)
        proc = _start_sentinel(server, conf)
        assert _sentinel_login(port, old)[0].startswith("-WRONGPASS")
        assert _sentinel_login(port, new) == ["+OK", "+PONG"]
        assert lemp_redis.sentinel_accepts(port, [new])["ok"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- settings Redis can change live (redis-server-live-settings-applied) ------------

def test_a_new_live_setting_is_set_without_a_restart_and_a_second_run_changes_nothing(redis, tmp_path):
    """replica-serve-stale-data no (issue #14) reaches a running replica by
    CONFIG SET; then runs_settings finds nothing to restart for."""
    port, admin = redis["replica"], [PASSWORDS["admin"]]
    names = ["replica-serve-stale-data", "min-replicas-to-write", "maxmemory", "maxmemory-policy"]
    settings = tmp_path / "lemp-ha.conf"
    settings.write_text(f"bind 127.0.0.1\nport {port}\nmaxmemory 0\nreplica-serve-stale-data no\n"
                        "min-replicas-to-write 0\n")
    before = lemp_redis.settings_live(str(settings), port, "admin", admin, names)
    assert not before["ok"] and before["changes"] == ["replica-serve-stale-data"], before
    assert not lemp_redis.runs_settings(str(settings), port, "admin", admin)
    try:
        done = lemp_redis.settings_live(str(settings), port, "admin", admin, names, apply=True)
        assert done["ok"] and done["changes"] == ["replica-serve-stale-data"], done
        live = lemp_redis.ask("127.0.0.1", port, [["AUTH", "admin", admin[0]],
                                                  ["CONFIG", "GET", "replica-serve-stale-data"]], whole=True)
        assert live[1] == ["replica-serve-stale-data", "no"], live
        again = lemp_redis.settings_live(str(settings), port, "admin", admin, names, apply=True)
        assert again["ok"] and again["changes"] == []
        assert lemp_redis.runs_settings(str(settings), port, "admin", admin), "no restart left to do"
        refused = lemp_redis.settings_live(str(settings), port, "admin", ["wrong"], names)
        assert not refused["ok"] and refused["changes"] == [] and "refuses admin" in refused["comment"]
    finally:
        lemp_redis.ask("127.0.0.1", port, [["AUTH", "admin", admin[0]],
                                            ["CONFIG", "SET", "replica-serve-stale-data", "yes"]])
