"""
Thin states over _modules/lemp_zabbix.py: each calls one ``ensure_*``
function, which compares the server with the pillar and writes only what
differs (nothing with ``test=True``). A second run reports no change.

    zabbix-api-host-groups-present:
      lemp_zabbix.host_groups_present:
        - url: https://mon1/api_jsonrpc.php
        - ca_file: /etc/zabbix/tls/ca.pem
        - groups: [lemp-ha, lemp-ha/web]

The Admin password is read from the pillar by the module, never passed as
an argument (state arguments show in logs and in state.show_sls).
"""

__virtualname__ = "lemp_zabbix"


def __virtual__():
    if "lemp_zabbix.ensure_host_groups" in __salt__:  # noqa: F821
        return __virtualname__
    return (False, "the lemp_zabbix execution module is not loaded (run saltutil.sync_modules)")


def _run(name, function, **kwargs):
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    test = bool(__opts__.get("test", False))  # noqa: F821
    try:
        changes = __salt__[f"lemp_zabbix.{function}"](test=test, **kwargs)  # noqa: F821
    except Exception as exc:  # pylint: disable=broad-except
        ret["comment"] = str(exc)
        return ret
    if not changes:
        ret.update(result=True, comment=f"{name}: as in the pillar")
    elif test:
        ret.update(result=None, changes={"would": changes}, comment=f"{name}: would change")
    else:
        ret.update(result=True, changes={"zabbix": changes}, comment=f"{name}: updated")
    return ret


def admin_password_set(name, url, ca_file=None):
    """The packaged default password of Admin is replaced by the secret."""
    return _run(name, "ensure_admin_password", url=url, ca_file=ca_file)


def settings_valid(name, url, settings, template_files=(), ca_file=None):
    """Bad settings stop here, before any state writes (no change ever)."""
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    try:
        __salt__["lemp_zabbix.check_settings"](url, settings, list(template_files), ca_file=ca_file)  # noqa: F821
    except Exception as exc:  # pylint: disable=broad-except
        ret["comment"] = str(exc)
        return ret
    ret.update(result=True, comment="zabbix settings are valid")
    return ret


def host_groups_present(name, url, groups, ca_file=None):
    # `groups`, not `names`: Salt expands `names` into one state per item.
    return _run(name, "ensure_host_groups", url=url, names=list(groups), ca_file=ca_file)


def templates_imported(name, url, files, ca_file=None):
    return _run(name, "ensure_templates", url=url, files=list(files), ca_file=ca_file)


def autoregistration_actions(name, url, settings, ca_file=None):
    return _run(name, "ensure_autoregistration", url=url, settings=settings, ca_file=ca_file)


def agent_hosts_present(name, url, base_group, ca_file=None):
    return _run(name, "ensure_agent_hosts", url=url, base_group=base_group, ca_file=ca_file)


def hosts_disabled(name, url, hosts, ca_file=None):
    """The named hosts are disabled (kept, with their history)."""
    return _run(name, "ensure_hosts_disabled", url=url, names=hosts, ca_file=ca_file)


def role_links_present(name, url, settings, ca_file=None):
    """Each host is in its roles' groups with their templates (added, never removed)."""
    return _run(name, "ensure_role_links", url=url, settings=settings, ca_file=ca_file)


def role_macros_present(name, url, settings, ca_file=None):
    """Each host has its roles' macros (pillar ...:roles:<role>:macros) as host macros."""
    return _run(name, "ensure_role_macros", url=url, settings=settings, ca_file=ca_file)


def email_media(name, url, smtp, ca_file=None):
    return _run(name, "ensure_email_media", url=url, smtp=smtp, ca_file=ca_file)


def user_groups_present(name, url, settings, ca_file=None):
    return _run(name, "ensure_user_groups", url=url, settings=settings, ca_file=ca_file)


def users_present(name, url, settings, ca_file=None):
    return _run(name, "ensure_users", url=url, settings=settings, ca_file=ca_file)


def alert_action(name, url, settings, ca_file=None):
    return _run(name, "ensure_alert_action", url=url, settings=settings, ca_file=ca_file)


# --- maintenance windows, webhook media, dashboard ---


def webhook_media(name, url, settings, script_file, ca_file=None):
    """The webhook media type, its user and the action posting to it."""
    return _run(name, "ensure_webhook", url=url, settings=settings, script_file=script_file, ca_file=ca_file)


def dashboard_present(name, url, settings, ca_file=None):
    """The dashboard; widgets whose items are not there yet are skipped and
    named in the comment (a later run adds them)."""
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    test = bool(__opts__.get("test", False))  # noqa: F821
    try:
        changes, skipped = __salt__["lemp_zabbix.ensure_dashboard"](url, settings, ca_file=ca_file,  # noqa: F821
                                                                    test=test)
    except Exception as exc:  # pylint: disable=broad-except
        ret["comment"] = str(exc)
        return ret
    note = f"; skipped, no item yet: {'; '.join(skipped)}" if skipped else ""
    if not changes:
        ret.update(result=True, comment=f"{name}: as in the pillar{note}")
    elif test:
        ret.update(result=None, changes={"would": changes}, comment=f"{name}: would change{note}")
    else:
        ret.update(result=True, changes={"zabbix": changes}, comment=f"{name}: updated{note}")
    return ret


# --- end of maintenance windows, webhook media, dashboard ---


# mon1's own MariaDB: the account and database functions of _modules/galera.py
# (the local server as root over the unix socket), without its Galera gate.


def local_database_present(name, charset="utf8mb4", collate="utf8mb4_bin"):
    """A database on the local MariaDB (its collation is set at creation)."""
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    try:
        if __salt__["galera.database_exists"](name):  # noqa: F821
            ret.update(result=True, comment=f"database {name} exists")
        elif __opts__.get("test", False):  # noqa: F821
            ret.update(result=None, comment=f"database {name} would be created")
        else:
            __salt__["galera.database_create"](name, charset=charset, collate=collate)  # noqa: F821
            ret.update(result=True, changes={"database": name}, comment=f"database {name} created")
    except Exception as exc:  # pylint: disable=broad-except
        ret["comment"] = f"database {name}: {exc}"
    return ret


def local_user_present(name, password_pillar, host="localhost", grants=None):
    """An account on the local MariaDB with the password of a pillar secret
    (read here: a state argument would show it) and exactly these grants."""
    ret = {"name": f"{name}@{host}", "result": False, "changes": {}, "comment": ""}
    password = __salt__["pillar.get"](password_pillar, None, unmask=True)  # noqa: F821
    if not password:
        ret["comment"] = (f"secret {password_pillar} is missing from the pillar "
                          "(pillar/secrets.spec.yaml; docs/secrets.md)")
        return ret
    test = bool(__opts__.get("test", False))  # noqa: F821
    try:
        changes = __salt__["galera.user_ensure"](name, host, password=password,  # noqa: F821
                                                 grants=grants or {}, test=test)
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


# --- db/lb templates: macros the repo's templates read ---


def global_macros_present(name, url, macros, ca_file=None):
    """Global macros (lemp_zabbix.global_macros: from the topology)."""
    return _run(name, "ensure_global_macros", url=url, macros=dict(macros), ca_file=ca_file)
