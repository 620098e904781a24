"""
Thin states over the ``galera`` execution module (_modules/galera.py).

Accounts and databases are only changed on a node that is Synced in a
Primary component: Galera replicates them to the others. On a node that is
not (first deploy before the orchestration bootstrapped the cluster, or a
node that is rejoining), the states change nothing and say so; the
orchestration applies them again on the bootstrap node once it is Synced.

Example::

    galera-sst-user-present:
      galera.user_present:
        - name: sst
        - host: localhost
        - password: {{ pillar['galera']['sst_password'] }}
        - grants:
            '*.*': [RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR]
"""

__virtualname__ = "galera"


def __virtual__():
    if "galera.status" in __salt__:  # noqa: F821
        return __virtualname__
    return (False, "the galera execution module is not loaded (run saltutil.sync_modules)")


def _not_ready(ret):
    st = __salt__["galera.status"]()  # noqa: F821
    if __salt__["galera.is_synced"](st):  # noqa: F821
        return None
    ret["result"] = True
    ret["comment"] = (
        "skipped: this node is not Synced in a Primary component "
        f"(running={st['running']}, wsrep_on={st['wsrep_on']}, "
        f"cluster_status={st['cluster_status']}, local_state={st['local_state']}); "
        "the galera orchestration applies this on a Synced node"
    )
    return ret


def user_present(name, host="localhost", password=None, unix_socket=False, grants=None, require_ssl=None,
                 previous_password=None):
    """An account with this authentication and exactly these grants
    ({object: [privileges]}; privileges elsewhere are revoked, and those
    beyond the list). ``require_ssl``: True sets REQUIRE SSL (the server
    refuses the account's logins without TLS), False REQUIRE NONE, None
    (default) leaves it as it is. ``previous_password``: during a secret
    rotation (orch.rotate_secret), the old password is accepted too; without
    it, only ``password`` is."""
    ret = {"name": f"{name}@{host}", "result": False, "changes": {}, "comment": ""}
    if not unix_socket and not password:
        ret["comment"] = f"{name}@{host}: no password given (is the secret in pillar?)"
        return ret
    if _not_ready(ret):
        return ret
    test = __opts__.get("test", False)  # noqa: F821
    try:
        changes = __salt__["galera.user_ensure"](  # noqa: F821
            name, host, password=password, unix_socket=unix_socket, grants=grants or {}, test=test,
            require_ssl=require_ssl, previous_password=previous_password or None,
        )
    except Exception as exc:  # pylint: disable=broad-except
        ret["comment"] = f"{name}@{host}: {exc}"
        return ret
    if not changes:
        ret.update(result=True, comment=f"{name}@{host} is in the desired state")
    elif test:
        ret.update(result=None, changes={"would": changes}, comment=f"{name}@{host} would change")
    else:
        ret.update(result=True, changes={"account": changes}, comment=f"{name}@{host} updated")
    return ret


def database_present(name, charset="utf8mb4", collate="utf8mb4_unicode_ci"):
    """A database exists (its character set is set only at creation)."""
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    if _not_ready(ret):
        return ret
    try:
        if __salt__["galera.database_exists"](name):  # noqa: F821
            ret.update(result=True, comment=f"database {name} exists")
            return ret
        if __opts__.get("test", False):  # noqa: F821
            ret.update(result=None, comment=f"database {name} would be created")
            return ret
        __salt__["galera.database_create"](name, charset=charset, collate=collate)  # noqa: F821
    except Exception as exc:  # pylint: disable=broad-except
        ret["comment"] = f"database {name}: {exc}"
        return ret
    ret.update(result=True, changes={"created": name}, comment=f"database {name} created")
    return ret


def synced(name, timeout=600, min_cluster_size=1):
    """Wait until this node is Synced in a Primary component (orchestration
    helper); fails after ``timeout`` seconds."""
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    try:
        res = __salt__["galera.wait_synced"](  # noqa: F821
            timeout=timeout, min_cluster_size=min_cluster_size
        )
    except Exception as exc:  # pylint: disable=broad-except
        ret["comment"] = str(exc)
        return ret
    ret.update(result=True, comment=f"Synced, cluster size {res['cluster_size']}")
    return ret
