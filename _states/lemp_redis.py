"""
The running Redis and Sentinel use what Salt wrote (logic: _modules/lemp_redis.py).

    redis-acl-file-loaded:
      lemp_redis.acl_loaded:
        - name: /etc/redis/lemp-ha-users.acl
        - port: 6379
        - user: admin
        - password: ...

``acl_loaded``: a changed ACL file is applied in place, one ``ACL SETUSER``
per user (lemp_redis.acl_apply: no restart, and unlike ``ACL LOAD`` no
client logged in is disconnected, so no PHP request loses its session
connection). What was applied is recorded (the file's sha256 in
``stamp``), so a run that wrote the file and failed before applying it is
made good by the next one; a restart loads the file itself, so the record
stays true. ``previous_password``: while a rotation of ``user``'s own
password is not over, the running Redis may know only that one.

``sentinel_accepts_passwords``: which passwords the Sentinel accepts, live
(ACL SETUSER on its default user, then FLUSHCONFIG): orch.rotate_secret's
"accept the old or the new" and "only the new" for sentinel_auth.

``sentinel_authenticated``: sentinel.conf is written once (Sentinel rewrites
it), so a new password would never reach it. This state asks the running
Sentinel (refuses a client without the password, accepts the wanted one)
and reads its file (auth-user/auth-pass); when either differs, it stops
Sentinel, rewrites only the authentication lines and starts it again. One
Sentinel restarting costs no session: the others keep the quorum.
"""

import hashlib
import os
import time

__virtualname__ = "lemp_redis"


def __virtual__():
    if "lemp_redis.acl_apply" in __salt__:  # noqa: F821
        return __virtualname__
    return (False, "lemp_redis execution module is not loaded (run saltutil.sync_modules)")


def _digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def acl_loaded(name, port, user, password, previous_password=None, stamp="/var/lib/redis/lemp-ha-acl.loaded"):
    """Redis on ``port`` has loaded the ACL file ``name``."""
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    try:
        digest = _digest(name)
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        ret["comment"] = f"{name}: {exc}"
        return ret
    try:
        with open(stamp, encoding="utf-8") as handle:
            loaded = handle.read().strip()
    except FileNotFoundError:
        loaded = ""
    except OSError as exc:
        ret["comment"] = f"{stamp}: {exc}"
        return ret
    if loaded == digest:
        ret.update(result=True, comment=f"Redis runs the ACL file {name} (sha256 {digest[:12]})")
        return ret
    changes = {"acl": {"old": loaded[:12] or None, "new": digest[:12]}}
    if __opts__["test"]:  # noqa: F821
        ret.update(result=None, changes=changes, comment=f"would apply the users of {name} (ACL SETUSER)")
        return ret
    error = __salt__["lemp_redis.acl_apply"](int(port), user, [password, previous_password], text)  # noqa: F821
    if error:
        ret["comment"] = f"applying the users of {name} failed (the next run tries again): {error}"
        return ret
    with open(stamp, "w", encoding="utf-8") as handle:
        handle.write(digest + "\n")
    ret.update(result=True, changes=changes, comment=f"applied the users of {name} in place: no restart, no client disconnected")
    return ret


def sentinel_accepts_passwords(name, port, password, previous_password=None):
    """The Sentinel on ``port`` accepts ``password`` and, while a rotation
    of it is not over, ``previous_password``, nothing else; applied live
    (ACL SETUSER on its default user, FLUSHCONFIG writes its file ``name``):
    no restart (lemp_redis.sentinel_accepts)."""
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    fun = __salt__["lemp_redis.sentinel_accepts"]  # noqa: F821
    passwords = [p for p in (password, previous_password) if p]
    facts = fun(int(port), passwords)
    if facts["ok"] or not facts["changed"]:
        ret.update(result=facts["ok"], comment=facts["comment"])
        return ret
    changes = {"accepts": {"old": "other passwords", "new": f"{len(passwords)} password(s)"}}
    if __opts__["test"]:  # noqa: F821
        ret.update(result=None, changes=changes, comment=facts["comment"] + ": would apply live")
        return ret
    done = fun(int(port), passwords, apply=True)
    ret.update(result=done["ok"], changes=changes if done["ok"] else {}, comment=done["comment"])
    return ret


def sentinel_authenticated(name, port, master, user, password, requirepass, service="redis-sentinel",
                           timeout=10, previous_requirepass=None):
    """The Sentinel of ``service`` (file ``name``, ``port``) requires
    ``requirepass`` and logs in to ``master`` as ``user``/``password``;
    while a rotation of requirepass is not over, it accepts
    ``previous_requirepass`` too (its file's ``user default`` line)."""
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    check = __salt__["lemp_redis.sentinel_auth_current"]  # noqa: F821
    ok, why = check(name, int(port), master, user, password, requirepass)
    if ok:
        ret.update(result=True, comment=why)
        return ret
    changes = {"sentinel": {"old": why, "new": "authentication lines rewritten, Sentinel restarted"}}
    if __opts__["test"]:  # noqa: F821
        ret.update(result=None, changes=changes, comment=f"would rewrite the authentication of {name}: {why}")
        return ret
    stopped = __salt__["service.stop"](service)  # noqa: F821
    if not stopped:
        ret["comment"] = f"could not stop {service} to rewrite {name}"
        return ret
    try:
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
        wanted = __salt__["lemp_redis.sentinel_conf"](text, master, user, password, requirepass,  # noqa: F821
                                                      previous_requirepass or "")
        st = os.stat(name)
        tmp = name + ".lemp-ha"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(wanted)
        os.chown(tmp, st.st_uid, st.st_gid)
        os.chmod(tmp, st.st_mode & 0o7777)
        os.replace(tmp, name)
    finally:
        __salt__["service.start"](service)  # noqa: F821
    deadline = time.monotonic() + timeout
    while True:
        ok, why = check(name, int(port), master, user, password, requirepass)
        if ok or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    ret.update(result=ok, changes=changes if ok else {},
               comment=("Sentinel restarted with its current authentication" if ok
                        else f"rewrote {name} and restarted {service}, still: {why}"))
    return ret


def replication_auth_applied(name, port, user, password, masteruser, masterauth, previous_password=None,
                             conf="/etc/redis/redis.conf"):
    """The running Redis on ``port`` (and its redis.conf ``conf``) logs in
    to its master as ``masteruser``/``masterauth``; applied live, never a
    restart (lemp_redis.replication_auth). ``name``: the included file that
    holds them for the next start."""
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    fun = __salt__["lemp_redis.replication_auth"]  # noqa: F821
    args = (int(port), user, [password, previous_password], masteruser, masterauth, conf)
    facts = fun(*args, apply=False)
    if facts["ok"]:
        ret.update(result=True, comment=facts["comment"])
        return ret
    if not facts["changes"]:
        ret["comment"] = facts["comment"]
        return ret
    changes = {"replication": {"old": ", ".join(facts["changes"]), "new": "the new masterauth, live"}}
    if __opts__["test"]:  # noqa: F821
        ret.update(result=None, changes=changes, comment=f"would apply live: {facts['comment']}")
        return ret
    done = fun(*args, apply=True)
    ret.update(result=done["ok"], changes=changes if done["ok"] else {}, comment=done["comment"])
    return ret


def settings_applied_live(name, port, user, password, settings, previous_password=None):
    """The running Redis on ``port`` runs the values that the file ``name``
    gives ``settings``; those that differ are set live (CONFIG SET,
    lemp_redis.settings_live), so a new setting reaches a running node
    without a restart (the restart would be a failover on the master)."""
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    fun = __salt__["lemp_redis.settings_live"]  # noqa: F821
    args = (name, int(port), user, [password, previous_password], list(settings))
    facts = fun(*args, apply=False)
    if facts["ok"]:
        ret.update(result=True, comment=facts["comment"])
        return ret
    if not facts["changes"]:
        # not reachable as the admin user (the file unreadable, a password
        # rotation half done): redis-server-runs-its-current-settings then
        # restarts Redis if it must, as it did before this state
        ret.update(result=True, comment=f"not set live: {facts['comment']}")
        return ret
    changes = {"settings": {"old": "differs: " + ", ".join(facts["changes"]), "new": "set live"}}
    if __opts__["test"]:  # noqa: F821
        ret.update(result=None, changes=changes, comment=f"would set live: {', '.join(facts['changes'])}")
        return ret
    done = fun(*args, apply=True)
    ret.update(result=done["ok"], changes=changes if done["ok"] else {}, comment=done["comment"])
    return ret
