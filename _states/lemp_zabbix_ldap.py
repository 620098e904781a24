"""
Thin states over _modules/lemp_zabbix_ldap.py (staff access through a
directory): each calls one function that compares before it writes and
writes nothing with ``test=True``; a second run reports no change. The
secrets are read from the pillar by the module, never passed as arguments.

    zabbix-ldap-authentication-configured:
      lemp_zabbix_ldap.authentication_configured: []
"""

__virtualname__ = "lemp_zabbix_ldap"


def __virtual__():
    if "lemp_zabbix_ldap.sync" in __salt__:  # noqa: F821
        return __virtualname__
    return (False, "the lemp_zabbix_ldap execution module is not loaded (run saltutil.sync_modules)")


def _run(name, function, changed=bool):
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    test = bool(__opts__.get("test", False))  # noqa: F821
    try:
        changes = __salt__[f"lemp_zabbix_ldap.{function}"](test=test)  # noqa: F821
    except Exception as exc:  # pylint: disable=broad-except
        ret["comment"] = str(exc)
        return ret
    if not changed(changes):
        ret.update(result=True, comment=f"{name}: as in the pillar")
    elif test:
        ret.update(result=None, changes={"would": changes}, comment=f"{name}: would change")
    else:
        ret.update(result=True, changes={"ldap": changes}, comment=f"{name}: updated")
    return ret


def lab_directory_seeded(name):
    """The lab's slapd holds the pillar's OUs, bind account, people, groups."""
    return _run(name, "seed_lab_directory", changed=lambda c: bool(c["added"] or c["modified"]))


def user_groups_present(name):
    """The login group (frontend access LDAP) and the disabled group."""
    return _run(name, "ensure_user_groups")


def authentication_configured(name):
    """Zabbix checks directory users' passwords against LDAP."""
    return _run(name, "ensure_authentication")


def synced(name):
    """Zabbix's directory users match the directory's groups (at deploy;
    the timer does the same every minute)."""
    ret = _run(name, "sync", changed=lambda c: bool(c.get("changes")))
    if ret["changes"]:
        key = next(iter(ret["changes"]))
        ret["changes"] = {key: ret["changes"][key]["changes"]}
    return ret
