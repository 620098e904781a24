"""Redis ACL users and an authenticated Sentinel (issue #13, item 3), on the lab.

PHP's password (the one in session.save_path, which phpinfo() shows) opens
only the session and cron-lock keys: CONFIG and FLUSHALL are refused
(NOPERM). A Sentinel refuses an unauthenticated SENTINEL FAILOVER (NOAUTH)
and answers SENTINEL MASTER with its password. That sessions still work
through the internal VIP is test_web_lb.py's (the session counter tests).

redis-cli runs inside the machines (lab.run: lxc-attach), passwords in its
environment (REDISCLI_AUTH, read from stdin there: never on a command line),
from the lab's generated secrets. One command
per check: cheap, nothing changed on the cluster.
"""

import shlex


def redis_cli(lab, machine, *args, user=None, password=None, port=6379):
    """redis-cli ARGS on ``machine`` against its own Redis or Sentinel
    (both listen on 127.0.0.1 too); stdout+stderr."""
    address = "127.0.0.1"
    # the password on stdin, never on a command line (ps on the host shows those)
    auth = "IFS= read -r REDISCLI_AUTH && export REDISCLI_AUTH && " if password else ""
    who = f"--user {shlex.quote(user)} " if user else ""
    proc = lab.run(machine, f"{auth}timeout 10 redis-cli --no-auth-warning {who}-h {address} -p {port} "
                   + " ".join(shlex.quote(a) for a in args), check=False,
                   input=(password + "\n") if password else None)
    return (proc.stdout + proc.stderr).strip()


def test_php_password_cannot_config_or_flush_and_sentinel_requires_its_password(lab):
    passwords = lab.secrets["passwords"]
    web = lab.with_role("web")[0]
    php = {"user": "sessions", "password": passwords["redis_sessions"]}
    # the master answers the same: a replica refuses writes, but NOPERM comes first
    assert "NOPERM" in redis_cli(lab, web, "CONFIG", "GET", "maxmemory", **php)
    assert "NOPERM" in redis_cli(lab, web, "FLUSHALL", **php)
    # ...while its own keys answer (nil: no such session)
    assert redis_cli(lab, web, "GET", "PHPREDIS_SESSION:lab-acl-probe", **php) == ""

    for machine in (web, lab.with_role("lb")[0]):
        refused = redis_cli(lab, machine, "SENTINEL", "FAILOVER", "sessions", port=26379)
        assert "NOAUTH" in refused, f"{machine}: {refused}"
        master = redis_cli(lab, machine, "SENTINEL", "MASTER", "sessions", port=26379,
                           password=passwords["sentinel_auth"])
        assert master.splitlines()[:2] == ["name", "sessions"], f"{machine}: {master}"
