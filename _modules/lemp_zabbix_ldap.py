"""
Staff access through a directory: Zabbix 6.0 checks passwords against LDAP,
and this module keeps Zabbix's users in step with the directory's groups.

Zabbix 6.0 has no just-in-time provisioning (it came in 6.4): a directory
user can log in only once a Zabbix user of the same name exists in a user
group whose frontend access is LDAP. ``sync`` reads the directory's groups
with ``ldap3`` and creates, updates and disables those Zabbix users:

- a member of a mapped directory group (pillar zabbix:lookup:ldap:groups,
  e.g. staff -> Zabbix group staff, ops -> ops) gets a Zabbix user in that
  group plus the login group (gui_access LDAP: Zabbix takes the strictest
  access of a user's groups, so these users cannot use an internal
  password);
- a user who left the directory, or every mapped group, is moved to the
  disabled group (users_status disabled) and keeps nothing else: never
  deleted, so that their history (acknowledgements, audit) stays;
- users that are in neither of those two groups (Admin, the lab's lab-ops
  mailbox user, any local user from pillar) are never touched.

The decision is ``sync_plan`` (pure, unit-tested); the I/O is around it.
Also here: the lab directory's seeding (``seed_lab_directory``: slapd on
mon1, salt/openldap) and the API's authentication settings.

CLI::

    salt mon1 lemp_zabbix_ldap.sync            # what a timer runs every minute
    salt mon1 lemp_zabbix_ldap.sync test=True  # the plan only
"""

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets

try:
    from salt.exceptions import CommandExecutionError
except ImportError:  # pragma: no cover  (unit tests without Salt)
    CommandExecutionError = RuntimeError

log = logging.getLogger(__name__)

__virtualname__ = "lemp_zabbix_ldap"

GUI_ACCESS_LDAP = 2
GUI_ACCESS_DISABLED = 3
USERS_STATUS_ENABLED = 0
USERS_STATUS_DISABLED = 1
MEDIA_ALL_SEVERITIES = 63
UID_RE = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
DN_RE = re.compile(r"^[A-Za-z]+=[^,]+(,[A-Za-z]+=[^,]+)*$")


class LdapSettingsError(ValueError):
    """Pillar zabbix:lookup:ldap is wrong: the message names the key."""


def __virtual__():
    return __virtualname__


# -- pure functions (unit-tested) -------------------------------------------


def effective_settings(ldap, directory=None):
    """The LDAP settings Zabbix and the sync use: pillar zabbix:lookup:ldap
    (``ldap``), where the lab directory (``directory``: salt/openldap's
    settings, when ``lab_directory`` is on) supplies what the pillar leaves
    empty, so the lab's DNs are written once. Raises LdapSettingsError naming
    the pillar key."""
    out = dict(ldap or {})
    if out.get("lab_directory"):
        if not directory:
            raise LdapSettingsError("zabbix:lookup:ldap:lab_directory is on but the openldap settings are missing "
                                    "(salt/openldap/defaults.yaml)")
        suffix = directory_suffix(directory)
        if not out.get("host"):
            out["host"], out["port"] = directory["uri"], directory.get("port", 389)
        for key, rdn in (("base_dn", directory["people_rdn"]), ("group_base_dn", directory["groups_rdn"]),
                         ("bind_dn", directory["bind_rdn"])):
            if not out.get(key):
                out[key] = f"{rdn},{suffix}"
        out["enabled"] = True
    for key in ("host", "base_dn", "group_base_dn", "bind_dn", "search_attribute"):
        if out.get("enabled") and not out.get(key):
            raise LdapSettingsError(f"zabbix:lookup:ldap:{key} is empty: set it (or lab_directory: true for the "
                                    "lab's slapd on mon1)")
    for key in ("base_dn", "group_base_dn", "bind_dn"):
        if out.get(key) and not DN_RE.match(str(out[key])):
            raise LdapSettingsError(f"zabbix:lookup:ldap:{key} {out[key]!r} is not a DN such as "
                                    "ou=people,dc=example,dc=com")
    if out.get("host") and not re.match(r"^ldaps?://[^\s/]+$", str(out["host"])):
        raise LdapSettingsError(f"zabbix:lookup:ldap:host {out['host']!r} must be ldap://host or ldaps://host")
    groups = out.get("groups") or []
    if out.get("enabled") and not groups:
        raise LdapSettingsError("zabbix:lookup:ldap:groups is empty: map at least one directory group to a Zabbix "
                                "user group, e.g. {directory: staff, user_group: staff, role: User role}")
    for i, group in enumerate(groups):
        for key in ("directory", "user_group", "role"):
            if not group.get(key):
                raise LdapSettingsError(f"zabbix:lookup:ldap:groups[{i}] has no {key}")
    for key in ("login_group", "disabled_group"):
        if out.get("enabled") and not out.get(key):
            raise LdapSettingsError(f"zabbix:lookup:ldap:{key} is empty")
    mapped = {g["user_group"] for g in groups}
    clash = mapped & {out.get("login_group"), out.get("disabled_group")}
    if clash:
        raise LdapSettingsError(f"zabbix:lookup:ldap:groups maps to {sorted(clash)}, the login or disabled group: "
                                "use another Zabbix user group")
    return out


def directory_suffix(directory):
    """The lab directory's suffix from its DNS domain, as slapd's Debian
    package derives it from debconf slapd/domain: lemp-ha.lab ->
    dc=lemp-ha,dc=lab."""
    domain = str(directory.get("domain") or "")
    if not re.match(r"^[a-z0-9-]+(\.[a-z0-9-]+)*$", domain):
        raise LdapSettingsError(f"openldap:lookup:domain {domain!r} is not a DNS domain such as example.com")
    return ",".join(f"dc={part}" for part in domain.split("."))


def authentication_params(settings, bind_password):
    """authentication.update's parameters (Zabbix 6.0): LDAP configured
    for the groups whose frontend access is LDAP; the default method stays
    internal so that Admin and the local users keep their own passwords."""
    return {
        "authentication_type": "0",
        "ldap_configured": "1",
        "ldap_host": str(settings["host"]),
        "ldap_port": str(settings.get("port", 389)),
        "ldap_base_dn": settings["base_dn"],
        "ldap_search_attribute": settings["search_attribute"],
        "ldap_bind_dn": settings["bind_dn"],
        "ldap_bind_password": bind_password,
        "ldap_case_sensitive": "1",
    }


def authentication_changes(current, desired):
    """The keys of ``desired`` that differ from ``current``
    (authentication.get). A bind password the API does not return is sent
    whenever anything else changes."""
    changed = {k: v for k, v in desired.items() if k in current and str(current[k]) != str(v)}
    changed.update({k: v for k, v in desired.items() if k not in current and k != "ldap_bind_password"})
    if changed and "ldap_bind_password" not in current:
        changed["ldap_bind_password"] = desired["ldap_bind_password"]
    return changed


def ssha(password, salt=None):
    """An RFC 2307 {SSHA} userPassword value (slapd's default scheme)."""
    salt = os.urandom(8) if salt is None else salt
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def ssha_matches(stored, password):
    """Whether the {SSHA} value ``stored`` is the hash of ``password``: the
    seed compares before it writes (a new salt every run would always
    change)."""
    stored = stored.decode() if isinstance(stored, bytes) else str(stored or "")
    if not stored.upper().startswith("{SSHA}"):
        return False
    try:
        raw = base64.b64decode(stored[6:])
    except ValueError:
        return False
    digest, salt = raw[:20], raw[20:]
    return hmac.compare_digest(hashlib.sha1(password.encode() + salt).digest(), digest)


def lab_directory_entries(directory):
    """The lab directory's entries, by DN: the OUs, the bind account
    (Zabbix's and the sync's, read-only), the people and the groups
    (groupOfNames; an empty group keeps the bind account as member, since
    groupOfNames needs one). Passwords are not here (see directory_changes).
    Raises LdapSettingsError naming the pillar key."""
    suffix = directory_suffix(directory)
    people_dn = f"{directory['people_rdn']},{suffix}"
    groups_dn = f"{directory['groups_rdn']},{suffix}"
    bind_dn = f"{directory['bind_rdn']},{suffix}"
    entries = {}
    for rdn in (directory["people_rdn"], directory["groups_rdn"], directory["bind_rdn"].split(",", 1)[1]):
        name = rdn.split("=", 1)[1]
        entries[f"{rdn},{suffix}"] = {"objectClass": ["organizationalUnit"], "ou": [name]}
    entries[bind_dn] = {"objectClass": ["organizationalRole", "simpleSecurityObject"],
                        "cn": [directory["bind_rdn"].split(",")[0].split("=", 1)[1]]}
    members = {group: [] for group in directory.get("groups") or []}
    for i, person in enumerate(directory.get("people") or []):
        uid = str(person.get("uid", ""))
        if not UID_RE.match(uid):
            raise LdapSettingsError(f"openldap:lookup:people[{i}]:uid {uid!r} is invalid: a-z 0-9 . _ -, "
                                    "starting with a letter")
        cn = person.get("cn") or uid
        entries[f"uid={uid},{people_dn}"] = {
            "objectClass": ["inetOrgPerson"], "uid": [uid], "cn": [cn],
            "sn": [person.get("sn") or cn.split()[-1]], "mail": [person["mail"]] if person.get("mail") else []}
        for group in person.get("groups") or []:
            if group not in members:
                raise LdapSettingsError(f"openldap:lookup:people[{i}] ({uid}) is in group {group!r}, which "
                                        f"openldap:lookup:groups does not list ({', '.join(members)})")
            members[group].append(f"uid={uid},{people_dn}")
    for group, dns in members.items():
        entries[f"cn={group},{groups_dn}"] = {"objectClass": ["groupOfNames"], "cn": [group],
                                              "member": sorted(dns) or [bind_dn]}
    return entries


def directory_changes(current, desired, passwords):
    """What to write to the directory: (adds, modifies).

    ``current`` and ``desired``: DN -> attributes (lists of strings);
    ``passwords``: DN -> the plain password its userPassword must match.
    An attribute of ``desired`` that differs is replaced; attributes
    ``desired`` does not name are left alone. Entries only in ``current``
    are left too (a person put there by hand stays: the seed adds, it does
    not own the directory)."""
    adds, modifies = {}, {}
    for dn in sorted(desired, key=lambda d: d.count(",")):  # parents first
        want = {k: list(v) for k, v in desired[dn].items() if v}
        have = {k.lower(): v for k, v in (current.get(dn) or {}).items()}
        password = passwords.get(dn)
        if dn not in current:
            if password is not None:
                want["userPassword"] = [ssha(password)]
            adds[dn] = want
            continue
        change = {k: v for k, v in want.items() if k != "objectClass"
                  and sorted(map(str, have.get(k.lower(), []))) != sorted(map(str, v))}
        if password is not None and not any(ssha_matches(v, password) for v in have.get("userpassword", [])):
            change["userPassword"] = [ssha(password)]
        if change:
            modifies[dn] = change
    return adds, modifies


def directory_members(groups, people, settings):
    """Who the directory says may log in: {uid: {"name", "mail", "groups"}},
    ``groups`` being the mapped directory groups the person is in.

    ``groups``: directory group cn -> member DNs; ``people``: DN -> person
    {"uid", "cn", "mail"} (those under the people base). A member DN that is
    not a person there (the bind account, a person elsewhere) is skipped."""
    by_dn = {dn.lower(): person for dn, person in people.items()}
    out = {}
    for mapping in settings["groups"]:
        for dn in groups.get(mapping["directory"], []):
            person = by_dn.get(dn.lower())
            if not person or not person.get("uid"):
                continue
            entry = out.setdefault(person["uid"], {"name": person.get("cn") or person["uid"],
                                                   "mail": person.get("mail") or "", "groups": []})
            entry["groups"].append(mapping["directory"])
    return out


def sync_plan(members, users, settings, groupids, roleids, mediatypeid=None):
    """The sync's decision: {"create": [...], "update": [...], "disable":
    [...], "skipped": [...]} (API parameters, sorted by username).

    ``members``: directory_members' answer. ``users``: Zabbix's users
    (user.get with selectUsrgrps, selectMedias). ``groupids``: Zabbix user
    group name -> id (the mapped groups, the login and disabled groups);
    ``roleids``: role name -> id; ``mediatypeid``: the Email media type (a
    directory mail becomes the user's Email media), or None.

    Rules:
    - a user's Zabbix groups are the mapped groups of their directory groups
      plus the login group; their role is that of the first mapping they
      match (pillar order: list the most privileged first);
    - only users in the login or disabled group are the directory's:
      another Zabbix user with a directory uid is reported in ``skipped``,
      never taken over (a local user stays local);
    - a directory user who is no longer a member is moved to the disabled
      group only (no rights, users_status disabled); one who comes back is
      enabled again by the same update."""
    login, disabled = groupids[settings["login_group"]], groupids[settings["disabled_group"]]
    ours = {login, disabled}
    by_name = {u["username"]: u for u in users}
    plan = {"create": [], "update": [], "disable": [], "skipped": []}
    for uid in sorted(members):
        member = members[uid]
        mappings = [m for m in settings["groups"] if m["directory"] in member["groups"]]
        wanted_groups = sorted({str(groupids[m["user_group"]]) for m in mappings} | {str(login)})
        desired = {"name": member["name"], "roleid": str(roleids[mappings[0]["role"]])}
        medias = ([{"mediatypeid": str(mediatypeid), "sendto": [member["mail"]], "active": "0",
                    "severity": str(MEDIA_ALL_SEVERITIES), "period": "1-7,00:00-24:00"}]
                  if mediatypeid and member["mail"] else [])
        user = by_name.get(uid)
        if user is None:
            plan["create"].append(dict(desired, username=uid, usrgrps=[{"usrgrpid": g} for g in wanted_groups],
                                       medias=medias))
            continue
        have_groups = sorted(str(g["usrgrpid"]) for g in user.get("usrgrps", []))
        if not ours & set(have_groups):
            plan["skipped"].append({"username": uid, "reason": "a local Zabbix user (not in the login group) "
                                                               "has this directory name: left alone"})
            continue
        change = {k: v for k, v in desired.items() if str(user.get(k)) != v}
        if have_groups != wanted_groups:
            change["usrgrps"] = [{"usrgrpid": g} for g in wanted_groups]
        if _media_keys(user.get("medias", [])) != _media_keys(medias):
            change["medias"] = medias
        if change:
            plan["update"].append(dict(change, userid=str(user["userid"]), username=uid))
    for user in sorted(users, key=lambda u: u["username"]):
        have_groups = {str(g["usrgrpid"]) for g in user.get("usrgrps", [])}
        if user["username"] in members or not ours & have_groups:
            continue
        if have_groups != {disabled}:
            plan["disable"].append({"userid": str(user["userid"]), "username": user["username"],
                                    "usrgrps": [{"usrgrpid": disabled}]})
    return plan


def _media_keys(medias):
    return sorted((str(m.get("mediatypeid")), tuple(m.get("sendto") or ()) if isinstance(m.get("sendto"), list)
                   else (m.get("sendto"),), str(m.get("active", 0))) for m in medias)


def plan_summary(plan):
    """One line per change, for the state's comment and the timer's log."""
    lines = [f"create {u['username']}" for u in plan["create"]]
    lines += [f"update {u['username']}: {', '.join(sorted(k for k in u if k not in ('userid', 'username')))}"
              for u in plan["update"]]
    lines += [f"disable {u['username']}" for u in plan["disable"]]
    lines += [f"skip {u['username']}: {u['reason']}" for u in plan["skipped"]]
    return lines


# -- I/O (on mon1) ----------------------------------------------------------


def _pillar(key, default=None):
    return __salt__["pillar.get"](key, default, unmask=True)  # noqa: F821  (injected by the loader)


def _merged(key, defaults_file):
    """defaults.yaml merged with pillar ``key`` (as map.jinja does)."""
    import yaml  # pylint: disable=import-outside-toplevel

    text = __salt__["cp.get_file_str"](defaults_file)  # noqa: F821
    if not text:
        raise CommandExecutionError(f"lemp_zabbix_ldap: {defaults_file} is unreadable")
    component, _, sub = key.partition(":")
    defaults = yaml.safe_load(text)[component]
    defaults = defaults.get(sub, {}) if sub else defaults
    lookup = _pillar(f"{component}:lookup" + (f":{sub}" if sub else ""), {})
    return __salt__["slsutil.merge"](defaults, lookup, strategy="recurse")  # noqa: F821


def settings():
    """The effective LDAP settings on this minion (defaults + pillar).

    CLI Example::

        salt mon1 lemp_zabbix_ldap.settings
    """
    zabbix = _merged("zabbix", "salt://zabbix/defaults.yaml")
    ldap = dict(zabbix.get("ldap") or {})
    directory = _merged("openldap", "salt://openldap/defaults.yaml") if ldap.get("lab_directory") else None
    try:
        out = effective_settings(ldap, directory)
    except LdapSettingsError as err:
        raise CommandExecutionError(str(err))
    out["api_url"] = "https://{}.{}/api_jsonrpc.php".format(__grains__["id"],  # noqa: F821
                                                           _pillar("topology:network:domain"))
    out["ca_file"] = zabbix["server"]["ca_file"]
    return out


def _secret(key):
    value = _pillar(key)
    if not value:
        raise CommandExecutionError(f"secret {key} is missing from the pillar (pillar/secrets.spec.yaml; "
                                    "docs/secrets.md)")
    return value


def _ldap(uri, port, bind_dn, password):
    try:
        import ldap3  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise CommandExecutionError("lemp_zabbix_ldap: the Python module ldap3 is missing from Salt's environment: "
                                    "tools/lab/box-requirements.txt lists it (rebuild the box)")
    server = ldap3.Server(uri if ":" in uri.split("//", 1)[1] else f"{uri}:{port}", get_info=ldap3.NONE,
                          connect_timeout=5)
    try:
        return ldap3.Connection(server, user=bind_dn, password=password, auto_bind=True, raise_exceptions=True,
                                receive_timeout=10)
    except ldap3.core.exceptions.LDAPException as err:
        raise CommandExecutionError(f"LDAP bind as {bind_dn} to {uri} failed: {err} (pillar zabbix:lookup:ldap, "
                                    "secret zabbix:ldap:bind_password)")


def _entries(conn, base, search_filter, attributes, scope="SUBTREE"):
    import ldap3  # pylint: disable=import-outside-toplevel

    conn.search(base, search_filter, search_scope=getattr(ldap3, scope), attributes=attributes)
    return {e.entry_dn: {k: [str(x) if not isinstance(x, bytes) else x.decode() for x in v]
                         for k, v in e.entry_attributes_as_dict.items()} for e in conn.entries}


def read_directory(ldap_settings, bind_password):
    """(groups, people) as directory_members takes them, read with the bind account."""
    conn = _ldap(ldap_settings["host"], ldap_settings.get("port", 389), ldap_settings["bind_dn"], bind_password)
    try:
        attr = ldap_settings["search_attribute"]
        people = {dn: {"uid": (a.get(attr) or [""])[0], "cn": (a.get("cn") or [""])[0],
                       "mail": (a.get("mail") or [""])[0]}
                  for dn, a in _entries(conn, ldap_settings["base_dn"], f"({attr}=*)", [attr, "cn", "mail"]).items()}
        names = "".join(f"(cn={m['directory']})" for m in ldap_settings["groups"])
        groups = {(a.get("cn") or [""])[0]: a.get("member", [])
                  for a in _entries(conn, ldap_settings["group_base_dn"],
                                    f"(&(objectClass=groupOfNames)(|{names}))", ["cn", "member"]).values()}
        return groups, people
    finally:
        conn.unbind()


def _api(ldap_settings):
    import ssl  # pylint: disable=import-outside-toplevel

    try:
        from zabbix_utils import ZabbixAPI  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise CommandExecutionError("lemp_zabbix_ldap: zabbix_utils is missing from Salt's environment "
                                    "(tools/lab/box-requirements.txt)")
    context = ssl.create_default_context(cafile=ldap_settings["ca_file"])
    api = ZabbixAPI(url=ldap_settings["api_url"], ssl_context=context)
    api.login(user="Admin", password=_secret("zabbix:server:admin_password"))
    return api


def _wrap(func):
    try:
        return func()
    except CommandExecutionError:
        raise
    except Exception as err:  # zabbix_utils' and ldap3's errors: one kind for Salt
        raise CommandExecutionError(f"lemp_zabbix_ldap: {err}")


def ensure_user_groups(test=False):
    """The login group (frontend access LDAP) and the disabled group
    (users_status disabled, frontend access disabled); neither gives any
    host rights (the mapped groups do). Returns the changes."""
    cfg = settings()
    wanted = {cfg["login_group"]: {"gui_access": str(GUI_ACCESS_LDAP), "users_status": str(USERS_STATUS_ENABLED)},
              cfg["disabled_group"]: {"gui_access": str(GUI_ACCESS_DISABLED),
                                      "users_status": str(USERS_STATUS_DISABLED)}}

    def run():
        api = _api(cfg)
        try:
            have = {g["name"]: g for g in api.usergroup.get(output=["usrgrpid", "name", "gui_access", "users_status"],
                                                           filter={"name": sorted(wanted)})}
            changes = {}
            for name, fields in wanted.items():
                if name not in have:
                    changes[name] = "created"
                    if not test:
                        api.usergroup.create(name=name, **fields)
                    continue
                diff = {k: v for k, v in fields.items() if str(have[name].get(k)) != v}
                if diff:
                    changes[name] = diff
                    if not test:
                        api.usergroup.update(usrgrpid=have[name]["usrgrpid"], **diff)
            return changes
        finally:
            api.logout()
    return _wrap(run)


def ensure_authentication(test=False):
    """LDAP configured in Zabbix (authentication.update) from the effective
    settings and the secret zabbix:ldap:bind_password. Returns the changed
    keys (the password's value never shown)."""
    cfg = settings()
    desired = authentication_params(cfg, _secret("zabbix:ldap:bind_password"))

    def run():
        api = _api(cfg)
        try:
            changed = authentication_changes(api.authentication.get(output="extend"), desired)
            if changed and not test:
                api.authentication.update(**changed)
            return {k: ("(secret)" if k == "ldap_bind_password" else v) for k, v in changed.items()}
        finally:
            api.logout()
    return _wrap(run)


def sync(test=False):
    """Create, update and disable Zabbix users from the directory's groups
    (sync_plan's rules). Returns {"changes": [...], "plan": ...}.

    CLI Example::

        salt mon1 lemp_zabbix_ldap.sync
    """
    cfg = settings()
    if not cfg.get("enabled"):
        return {"changes": [], "comment": "zabbix:lookup:ldap:enabled is off: nothing to sync"}

    def run():
        groups, people = read_directory(cfg, _secret("zabbix:ldap:bind_password"))
        members = directory_members(groups, people, cfg)
        api = _api(cfg)
        try:
            names = sorted({m["user_group"] for m in cfg["groups"]} | {cfg["login_group"], cfg["disabled_group"]})
            groupids = {g["name"]: str(g["usrgrpid"]) for g in api.usergroup.get(output=["usrgrpid", "name"],
                                                                              filter={"name": names})}
            missing = [n for n in names if n not in groupids]
            if missing:
                raise CommandExecutionError(f"Zabbix user group(s) {missing} missing: apply zabbix.server first "
                                            "(zabbix:lookup:server:api:user_groups, zabbix:lookup:ldap)")
            roleids = {r["name"]: str(r["roleid"]) for r in api.role.get(output=["roleid", "name"])}
            unknown = sorted({m["role"] for m in cfg["groups"]} - set(roleids))
            if unknown:
                raise CommandExecutionError(f"zabbix:lookup:ldap:groups names role(s) {unknown} Zabbix does not "
                                            f"have; known: {sorted(roleids)}")
            media = api.mediatype.get(output=["mediatypeid"], filter={"name": cfg.get("media_type", "Email")})
            users = api.user.get(output=["userid", "username", "name", "roleid"],
                                 selectUsrgrps=["usrgrpid"], selectMedias="extend")
            plan = sync_plan(members, users, cfg, groupids, roleids, media[0]["mediatypeid"] if media else None)
            if not test:
                for user in plan["create"]:
                    # Never used (LDAP checks the password), but 6.0 may ask for one.
                    api.user.create(passwd=secrets.token_urlsafe(24), **user)
                for user in plan["update"] + plan["disable"]:
                    api.user.update(**{k: v for k, v in user.items() if k != "username"})
            lines = plan_summary(plan)
            for line in lines:
                log.info("lemp_zabbix_ldap: %s", line)
            return {"changes": [line for line in lines if not line.startswith("skip ")],
                    "skipped": [line for line in lines if line.startswith("skip ")], "plan": plan}
        finally:
            api.logout()
    return _wrap(lambda: _one_at_a_time(run))


# The timer, a highstate and an operator may all sync at once: two syncs
# would both create a new user ("already exists"). One waits for the other.
SYNC_LOCK = "/run/lemp-zabbix-ldap-sync.lock"


def _one_at_a_time(func, wait=50, path=SYNC_LOCK):
    import fcntl  # pylint: disable=import-outside-toplevel
    import time  # pylint: disable=import-outside-toplevel

    with open(path, "a", encoding="utf-8") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CommandExecutionError(f"another directory sync has held {path} for {wait} s; "
                                                "try again (systemctl status lemp-zabbix-ldap-sync)")
                time.sleep(0.2)  # waiting for the other sync's lock, bounded by `wait`
        return func()


def seed_lab_directory(test=False):
    """Seed the lab's slapd (salt/openldap) from pillar openldap:lookup:
    the OUs, the read-only bind account, the people (userPassword {SSHA} of
    the generated secrets openldap:passwords:<uid>) and the groups. Adds and
    corrects; never deletes (a person removed by hand, as the lab test does,
    comes back only at the next highstate). Returns the changed DNs."""
    directory = _merged("openldap", "salt://openldap/defaults.yaml")
    try:
        desired = lab_directory_entries(directory)
    except LdapSettingsError as err:
        raise CommandExecutionError(str(err))
    suffix = directory_suffix(directory)
    bind_dn = f"{directory['bind_rdn']},{suffix}"
    passwords = {bind_dn: _secret("zabbix:ldap:bind_password")}
    for person in directory.get("people") or []:
        passwords[f"uid={person['uid']},{directory['people_rdn']},{suffix}"] = _secret(
            f"openldap:passwords:{person['uid']}")

    def run():
        conn = _ldap(directory["uri"], directory.get("port", 389), f"cn=admin,{suffix}",
                     _secret("openldap:admin_password"))
        try:
            current = _entries(conn, suffix, "(objectClass=*)", ["*"])
            adds, modifies = directory_changes(current, desired, passwords)
            if not test:
                import ldap3  # pylint: disable=import-outside-toplevel

                for dn, attrs in adds.items():
                    conn.add(dn, attributes=attrs)
                for dn, attrs in modifies.items():
                    conn.modify(dn, {k: [(ldap3.MODIFY_REPLACE, v)] for k, v in attrs.items()})
            return {"added": sorted(adds), "modified": {dn: sorted(a) for dn, a in modifies.items()}}
        finally:
            conn.unbind()
    return _wrap(run)
