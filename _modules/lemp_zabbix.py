"""
Zabbix configured as code, through its API (the ``zabbix_utils`` client).

Salt on mon1 (salt/zabbix/server/api.sls) calls the ``ensure_*`` functions
through the thin states of _states/lemp_zabbix.py. Each one reads what the
server has, computes what differs from the pillar with a pure function of
this file, and writes only that: a second highstate makes no API call that
changes anything. With ``test=True`` they only say what they would change.

What they manage:

* the ``Admin`` password: the packaged default (``zabbix``) is replaced by the
  generated secret ``zabbix:server:admin_password``;
* the host groups of the roles, and the templates of the repo
  (salt/zabbix/server/files/templates/*.yaml, imported once per content:
  the file's digest is kept in a template tag);
* one autoregistration action per role: an agent whose ``HostMetadata``
  carries the role's token goes into the role's group with the role's
  templates (the metadata is built here, from the machine's roles:
  ``host_metadata``);
* the agents' hosts with their per-machine PSK (Zabbix 6.0 takes a per-host
  PSK only for a host it knows; the PSK's digest is kept in a host tag,
  since the API never returns a PSK);
* the Email media type (the local MTA), user groups, users, and the trigger
  action that mails problems to a user group.

Bad settings (an unknown template, a user with no group, a malformed webhook
URL) raise ``ZabbixSettingsError`` naming the pillar key and the fix, before
any API call: ``validate`` runs first in every ``ensure_*``.
"""

import hashlib
import json
import re
import secrets as _random
import urllib.parse

try:
    from salt.exceptions import CommandExecutionError
except ImportError:  # pragma: no cover - unit tests without salt

    class CommandExecutionError(Exception):
        pass


__virtualname__ = "lemp_zabbix"

# HostMetadata: a prefix, then one `role=<name>;` token per role. An
# autoregistration condition "metadata contains role=web;" cannot match
# role=webcache; (the `;` closes the token).
METADATA_PREFIX = "lemp-ha;"
ROLE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
METADATA_MAX = 255  # Zabbix agent's HostMetadata limit
PSK_RE = re.compile(r"^[0-9a-f]{32,512}$")

# Zabbix API constants (6.0)
EVENTSOURCE_TRIGGERS = 0
EVENTSOURCE_AUTOREGISTRATION = 2
CONDITION_HOST_METADATA = 24
CONDITION_TRIGGER_SEVERITY = 4
OPERATOR_CONTAINS = 2
OPERATOR_GREATER_EQUAL = 5
OP_SEND_MESSAGE = 0
CONDITION_PROBLEM_SUPPRESSED = 16   # "problem is suppressed", operator "no"
OPERATOR_NO = 11
OP_ADD_HOST = 2
OP_ADD_TO_GROUP = 4
OP_LINK_TEMPLATE = 6
OP_NOTIFY_ALL_INVOLVED = 11
TLS_PSK = 2
PERMISSION_READ = 2
PERMISSION_READ_WRITE = 3
SEVERITIES = {"not_classified": 0, "information": 1, "warning": 2, "average": 3, "high": 4, "disaster": 5}
PERMISSIONS = {"read": PERMISSION_READ, "read-write": PERMISSION_READ_WRITE}
PSK_TAG = "lemp-ha-psk"
SOURCE_TAG = "lemp-ha-source"


class ZabbixSettingsError(CommandExecutionError):
    """The pillar's Zabbix settings are unusable; the message names the key.
    (A CommandExecutionError: a render that calls ``validate`` shows it as is.)"""


def __virtual__():
    return __virtualname__


# -- pure functions (unit-tested) -------------------------------------------


def role_token(role):
    """The HostMetadata token of a role, and the autoregistration condition's value."""
    if not ROLE_RE.match(str(role)):
        raise ZabbixSettingsError(f"zabbix: role name {role!r} cannot be put in HostMetadata "
                                  "(1-32 of a-z 0-9 _ -, starting with a letter)")
    return f"role={role};"


def host_metadata(roles):
    """The agent's HostMetadata for a machine with these roles (topology
    `machines.<id>.roles`), e.g. ``lemp-ha;role=arbitrator;role=backup;``."""
    if not roles:
        raise ZabbixSettingsError("zabbix: a machine with no role has no HostMetadata (pillar/topology.yaml)")
    text = METADATA_PREFIX + "".join(role_token(r) for r in roles)
    if len(text) > METADATA_MAX:
        raise ZabbixSettingsError(f"zabbix: HostMetadata {text!r} is longer than the agent's "
                                  f"{METADATA_MAX} characters: fewer roles per machine")
    return text


def parse_host_metadata(text):
    """Roles of a HostMetadata string; [] when it is not ours."""
    if not isinstance(text, str) or not text.startswith(METADATA_PREFIX):
        return []
    return [token[len("role="):] for token in text[len(METADATA_PREFIX):].split(";")
            if token.startswith("role=") and ROLE_RE.match(token[len("role="):])]


def psk_digest(psk):
    """A short digest of a PSK for the host tag: says whether the server has
    this key without the API ever returning it."""
    return hashlib.sha256(("lemp-ha-psk:" + psk).encode()).hexdigest()[:16]


def source_digest(text):
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_url(url, key):
    """An http(s) URL with a host, or ZabbixSettingsError naming the key."""
    parsed = urllib.parse.urlsplit(str(url or ""))
    if parsed.scheme not in ("http", "https") or not parsed.hostname or " " in str(url):
        raise ZabbixSettingsError(f"{key} {url!r} is not a URL: write https://host/path")
    return url


def validate(settings, known_templates=()):
    """Check the pillar's Zabbix settings (pillar zabbix:server, merged with
    defaults.yaml); return them with every key present.

    ``known_templates``: templates the server ships plus those of the repo's
    files. Raises ZabbixSettingsError naming the key and the fix."""
    settings = dict(settings or {})
    known = set(known_templates)
    roles = settings.get("roles") or {}
    if not isinstance(roles, dict):
        raise ZabbixSettingsError("zabbix:lookup:server:api:roles must map a role to {group, templates}")
    checked_roles = {}
    for role, decl in roles.items():
        role_token(role)
        decl = decl or {}
        templates = decl.get("templates") or []
        if not isinstance(templates, list):
            raise ZabbixSettingsError(f"zabbix:lookup:server:api:roles:{role}:templates must be a list of template names")
        if known:
            unknown = [t for t in templates if t not in known]
            if unknown:
                raise ZabbixSettingsError(
                    f"zabbix:lookup:server:api:roles:{role}:templates names unknown template(s) {', '.join(unknown)}: "
                    "use a template Zabbix 6.0 ships or add its YAML to salt/zabbix/server/files/templates/")
        checked_roles[role] = {"group": decl.get("group") or f"lemp-ha/{role}", "templates": list(templates),
                               "macros": check_role_macros(role, decl.get("macros"))}  # web tier block
    settings["roles"] = checked_roles

    groups = settings.get("user_groups") or {}
    if not isinstance(groups, dict):
        raise ZabbixSettingsError("zabbix:lookup:server:api:user_groups must map a group name to its settings")
    for name, group in groups.items():
        perm = (group or {}).get("permission", "read")
        if perm not in PERMISSIONS:
            raise ZabbixSettingsError(f"zabbix:lookup:server:api:user_groups:{name}:permission {perm!r}: "
                                      f"one of {', '.join(PERMISSIONS)}")
    users = settings.get("users") or []
    if not isinstance(users, list):
        raise ZabbixSettingsError("zabbix:lookup:server:api:users must be a list of {username, groups, role}")
    for user in users:
        name = (user or {}).get("username")
        if not name:
            raise ZabbixSettingsError("zabbix:lookup:server:api:users: an entry has no username")
        if not user.get("groups"):
            raise ZabbixSettingsError(f"zabbix:lookup:server:api:users:{name} has no group: give it groups "
                                      f"(one of {', '.join(groups) or 'zabbix:lookup:server:api:user_groups, empty'})")
        unknown = [g for g in user["groups"] if g not in groups]
        if unknown:
            raise ZabbixSettingsError(f"zabbix:lookup:server:api:users:{name}:groups names {', '.join(unknown)}, "
                                      "not declared in zabbix:lookup:server:api:user_groups")
    webhook = settings.get("webhook") or {}
    if webhook.get("url"):
        check_url(webhook["url"], "zabbix:lookup:server:api:webhook:url")
    alerts = settings.get("alerts") or {}
    if alerts:
        if alerts.get("user_group") not in groups:
            raise ZabbixSettingsError(f"zabbix:lookup:server:api:alerts:user_group {alerts.get('user_group')!r} "
                                      "is not declared in zabbix:lookup:server:api:user_groups")
        if alerts.get("min_severity", "warning") not in SEVERITIES:
            raise ZabbixSettingsError(f"zabbix:lookup:server:api:alerts:min_severity {alerts.get('min_severity')!r}: "
                                      f"one of {', '.join(SEVERITIES)}")
    return settings


def template_names_of(export):
    """Template names of a Zabbix export document (a parsed YAML file)."""
    doc = (export or {}).get("zabbix_export") or {}
    return [t.get("template") for t in doc.get("templates") or [] if t.get("template")]


def tagged_export(export, digest):
    """The export with the source tag on each template, so that the server
    says which file content it has."""
    doc = json.loads(json.dumps(export))
    for template in (doc.get("zabbix_export") or {}).get("templates") or []:
        tags = [t for t in template.get("tags") or [] if t.get("tag") != SOURCE_TAG]
        template["tags"] = tags + [{"tag": SOURCE_TAG, "value": digest}]
    return doc


def tag_value(obj, tag):
    for item in (obj or {}).get("tags") or []:
        if item.get("tag") == tag:
            return item.get("value")
    return None


def missing(current_names, wanted):
    """Names of ``wanted`` that the server lacks, in order."""
    have = set(current_names)
    return [name for name in wanted if name not in have]


def autoreg_action(role, groupid, templateids):
    """The autoregistration action of a role (API object, no ids of its own)."""
    operations = [{"operationtype": OP_ADD_HOST},
                  {"operationtype": OP_ADD_TO_GROUP, "opgroup": [{"groupid": str(groupid)}]}]
    if templateids:
        operations.append({"operationtype": OP_LINK_TEMPLATE,
                           "optemplate": [{"templateid": str(t)} for t in templateids]})
    return {
        "name": f"lemp-ha autoregistration: role {role}",
        "eventsource": EVENTSOURCE_AUTOREGISTRATION,
        "status": 0,
        "filter": {"evaltype": 0, "conditions": [
            {"conditiontype": CONDITION_HOST_METADATA, "operator": OPERATOR_CONTAINS, "value": role_token(role)}]},
        "operations": operations,
    }


def alert_action(name, usrgrpid, mediatypeid, min_severity="warning"):
    """The trigger action mailing problems (and their recovery) to a user group."""
    message = {"default_msg": 1, "mediatypeid": str(mediatypeid)}
    return {
        "name": name,
        "eventsource": EVENTSOURCE_TRIGGERS,
        "status": 0,
        "esc_period": "1m",
        "filter": {"evaltype": 0, "conditions": [
            {"conditiontype": CONDITION_TRIGGER_SEVERITY, "operator": OPERATOR_GREATER_EQUAL,
             "value": str(SEVERITIES[min_severity])},
            # a problem suppressed by a maintenance window (orch.deploy...) is not sent
            # (this condition takes no value: 6.0 refuses one, seen in the lab)
            {"conditiontype": CONDITION_PROBLEM_SUPPRESSED, "operator": OPERATOR_NO}]},
        "operations": [{"operationtype": OP_SEND_MESSAGE, "opmessage": message,
                        "opmessage_grp": [{"usrgrpid": str(usrgrpid)}]}],
        "recovery_operations": [{"operationtype": OP_NOTIFY_ALL_INVOLVED, "opmessage": {"default_msg": 1}}],
    }


def _operation_signature(op):
    msg = op.get("opmessage") or {}
    return (
        int(op.get("operationtype", -1)),
        tuple(sorted(str(g["groupid"]) for g in op.get("opgroup") or [])),
        tuple(sorted(str(t["templateid"]) for t in op.get("optemplate") or [])),
        tuple(sorted(str(g["usrgrpid"]) for g in op.get("opmessage_grp") or [])),
        tuple(sorted(str(u["userid"]) for u in op.get("opmessage_usr") or [])),
        str(msg.get("mediatypeid", "0")) if msg else "",
        str(msg.get("default_msg", "")) if msg else "",
    )


def action_signature(action):
    """What an action does, comparable between the API's answer (strings,
    ids, extra fields) and ``autoreg_action``/``alert_action``."""
    flt = action.get("filter") or {}
    return {
        "status": str(action.get("status", 0)),
        "conditions": sorted((int(c["conditiontype"]), int(c["operator"]), str(c.get("value", "")))
                             for c in flt.get("conditions") or []),
        "operations": sorted(_operation_signature(o) for o in action.get("operations") or []),
        "recovery_operations": sorted(_operation_signature(o) for o in action.get("recovery_operations") or []),
    }


def action_changes(current, desired):
    """Fields of ``desired`` to write over ``current`` (None: create it; {}: in sync)."""
    if not current:
        return None
    have, want = action_signature(current), action_signature(desired)
    if have == want:
        return {}
    changes = {}
    if have["status"] != want["status"]:
        changes["status"] = desired["status"]
    if have["conditions"] != want["conditions"]:
        changes["filter"] = desired["filter"]
    if have["operations"] != want["operations"]:
        changes["operations"] = desired["operations"]
    if have["recovery_operations"] != want["recovery_operations"]:
        changes["recovery_operations"] = desired.get("recovery_operations", [])
    return changes


def field_changes(current, desired):
    """Fields of ``desired`` whose value differs from ``current`` (compared as strings)."""
    return {key: value for key, value in desired.items()
            if str((current or {}).get(key, "")) != str(value)}


AGENT_PORT = "10050"
INTERFACE_AGENT = 1


def agent_interface(address):
    """The host's agent interface: the passive items of the shipped
    templates (MySQL, PHP-FPM, HAProxy...) need one, and Zabbix refuses to
    link such a template to a host without it (seen on a fresh lab)."""
    return {"type": INTERFACE_AGENT, "main": 1, "useip": 1, "ip": str(address), "dns": "", "port": AGENT_PORT}


def lacks_agent_interface(current):
    """True when a host.get row (with interfaces) has no agent interface."""
    return not any(str(i.get("type")) == str(INTERFACE_AGENT) for i in (current or {}).get("interfaces") or [])


def psk_host_changes(current, name, psk, groupid):
    """What to write so that host ``name`` exists with PSK encryption and
    this key: None -> create (the full object), {} -> in sync, else the fields."""
    _check_psk(name, psk)
    digest = psk_digest(psk)
    tls = {"tls_connect": TLS_PSK, "tls_accept": TLS_PSK}
    if not current:
        return {"host": name, "groups": [{"groupid": str(groupid)}], **tls,
                "tls_psk_identity": name, "tls_psk": psk, "tags": [{"tag": PSK_TAG, "value": digest}]}
    changes = field_changes(current, tls)
    if tag_value(current, PSK_TAG) != digest:
        other = [{"tag": t["tag"], "value": t.get("value", "")} for t in current.get("tags") or []
                 if t.get("tag") != PSK_TAG]
        changes.update(tls, tls_psk_identity=name, tls_psk=psk, tags=other + [{"tag": PSK_TAG, "value": digest}])
    return changes


def user_group_rights(group, groupids_by_name):
    """Rights of a user group: its permission on every listed host group
    (all role groups when it names none)."""
    perm = PERMISSIONS[(group or {}).get("permission", "read")]
    names = (group or {}).get("host_groups") or sorted(groupids_by_name)
    return sorted(({"permission": perm, "id": str(groupids_by_name[n])} for n in names if n in groupids_by_name),
                  key=lambda r: r["id"])


def rights_signature(rights):
    return sorted((str(r["id"]), int(r["permission"])) for r in rights or [])


def user_changes(current, desired_groupids, roleid, medias):
    """Fields to update on a user (None: create)."""
    if not current:
        return None
    changes = {}
    if sorted(str(g["usrgrpid"]) for g in current.get("usrgrps") or []) != sorted(map(str, desired_groupids)):
        changes["usrgrps"] = [{"usrgrpid": str(g)} for g in desired_groupids]
    if str(current.get("roleid")) != str(roleid):
        changes["roleid"] = str(roleid)
    if medias is not None and _media_signature(current.get("medias")) != _media_signature(medias):
        changes["medias"] = medias
    return changes


def _media_signature(medias):
    out = []
    for media in medias or []:
        sendto = media.get("sendto")
        sendto = tuple(sendto) if isinstance(sendto, list) else (sendto,)
        out.append((str(media.get("mediatypeid")), sendto, str(media.get("active", 0)),
                    str(media.get("severity", 63))))
    return sorted(out)


# -- the API (on mon1) ------------------------------------------------------


def _pillar(key, default=None):
    return __salt__["pillar.get"](key, default, unmask=True)  # noqa: F821  (injected by the loader)


def _client(url, ca_file):
    import ssl  # pylint: disable=import-outside-toplevel

    try:
        from zabbix_utils import ZabbixAPI  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise CommandExecutionError("lemp_zabbix: the Python module zabbix_utils is missing from Salt's "
                                    "environment: tools/lab/box-requirements.txt lists it (rebuild the box)")
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    return ZabbixAPI(url=url, ssl_context=context)


# Sessions opened by the API step running now: _api_call logs them out at
# its end (each login is a session row and an audit entry on the server).
_SESSIONS = []


def _login(url, ca_file, password=None):
    api = _client(url, ca_file)
    password = password or _pillar("zabbix:server:admin_password")
    if not password:
        raise CommandExecutionError("secret zabbix:server:admin_password is missing from the pillar "
                                    "(pillar/secrets.spec.yaml; docs/secrets.md)")
    api.login(user="Admin", password=password)
    _SESSIONS.append(api)
    return api


def _api_call(func):
    """Run an API step; the client's errors become CommandExecutionError.
    The sessions it opened are closed at its end, whatever happened."""
    mark = len(_SESSIONS)
    try:
        return func()
    except ZabbixSettingsError:
        raise
    except CommandExecutionError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        raise CommandExecutionError(f"zabbix API: {exc}")
    finally:
        while len(_SESSIONS) > mark:
            try:
                _SESSIONS.pop().logout()
            except Exception:  # pylint: disable=broad-except
                pass  # an expired or refused session is gone anyway


def ensure_admin_password(url, ca_file=None, default_password="zabbix", test=False):
    """Replace the packaged default password of ``Admin`` with the secret
    zabbix:server:admin_password. Returns the list of changes (empty: done)."""
    secret = _pillar("zabbix:server:admin_password")
    if not secret:
        raise CommandExecutionError("secret zabbix:server:admin_password is missing from the pillar "
                                    "(pillar/secrets.spec.yaml; docs/secrets.md)")

    def run():
        try:
            _login(url, ca_file, secret).logout()
            return []
        except Exception:  # pylint: disable=broad-except
            pass
        api = _client(url, ca_file)
        try:
            api.login(user="Admin", password=default_password)
        except Exception:
            raise CommandExecutionError("zabbix: Admin logs in neither with the secret "
                                        "zabbix:server:admin_password nor with the packaged default: "
                                        "reset it in the database (docs: 'reset Admin password') and re-run")
        if not test:
            userid = api.user.get(output=["userid"], filter={"username": "Admin"})[0]["userid"]
            api.user.update(userid=userid, passwd=secret)  # 6.0 knows no current_passwd (lab)
        api.logout()
        return ["Admin: packaged default password replaced by the secret"]

    return _api_call(run)


def _groupids(api, names):
    rows = api.hostgroup.get(output=["groupid", "name"], filter={"name": list(names)})
    return {r["name"]: r["groupid"] for r in rows}


def check_settings(url, settings, template_files=(), ca_file=None):
    """Validate the settings against the templates the server has plus those
    of the repo's files, before any state writes: bad pillar changes nothing."""
    import yaml  # pylint: disable=import-outside-toplevel

    names = []
    for path in template_files:
        with open(path, encoding="utf-8") as handle:
            names += template_names_of(yaml.safe_load(handle))
    validate(settings, known_templates(url, ca_file) + names)
    return []


def ensure_host_groups(url, names, ca_file=None, test=False):
    """Host groups exist (never deleted: hosts may still be in them)."""
    def run():
        api = _login(url, ca_file)
        todo = missing(_groupids(api, names), names)
        if not test:
            for name in todo:
                api.hostgroup.create(name=name)
        return [f"host group {n} created" for n in todo]
    return _api_call(run)


def hosts_to_disable(current, names):
    """Host ids among ``current`` (host.get rows: hostid, host, status) named
    in ``names`` and still monitored (status 0)."""
    wanted = set(names or [])
    return sorted(h["hostid"] for h in current or [] if h["host"] in wanted and str(h.get("status")) == "0")


def ensure_hosts_disabled(url, names, ca_file=None, test=False):
    """The hosts ``names`` (zabbix:lookup:server:api:disabled_hosts) are
    disabled, not deleted: their history stays readable."""
    def run():
        if not names:
            return []
        api = _login(url, ca_file)
        rows = api.host.get(output=["hostid", "host", "status"], filter={"host": list(names)})
        todo = hosts_to_disable(rows, names)
        if todo and not test:
            api.host.massupdate(hosts=[{"hostid": i} for i in todo], status=1)
        return [f"host {h['host']} disabled" for h in rows if h["hostid"] in todo]
    return _api_call(run)


IMPORT_RULES = {
    "groups": {"createMissing": True},
    "templates": {"createMissing": True, "updateExisting": True},
    "templateLinkage": {"createMissing": True},
    "items": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
    "triggers": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
    "discoveryRules": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
    "graphs": {"createMissing": True, "updateExisting": True, "deleteMissing": True},
    "valueMaps": {"createMissing": True, "updateExisting": True},
}


def ensure_templates(url, files, ca_file=None, test=False):
    """Import each template file (Zabbix 6.0 YAML export) whose content the
    server does not have yet (its digest is in the template's tag)."""
    import yaml  # pylint: disable=import-outside-toplevel

    def run():
        api = _login(url, ca_file)
        changes = []
        for path in files:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            export = yaml.safe_load(text)
            names = template_names_of(export)
            if not names:
                raise ZabbixSettingsError(f"zabbix: {path} holds no template (zabbix_export:templates)")
            digest = source_digest(text)
            current = api.template.get(output=["templateid", "host"], filter={"host": names}, selectTags="extend")
            if len(current) == len(names) and all(tag_value(t, SOURCE_TAG) == digest for t in current):
                continue
            if not test:
                api.configuration.import_(format="json", rules=IMPORT_RULES,
                                          source=json.dumps(tagged_export(export, digest)))
            changes.append(f"templates {', '.join(names)} imported from {path}")
        return changes
    return _api_call(run)


# --- web tier: host macros per role ---
# The shipped templates (Nginx, PHP-FPM, Redis, HAProxy) read where their
# status pages are from user macros. A macro on another template does not
# reliably override them (Zabbix resolves the host's own macros first, then
# linked templates in an order the API does not promise), so each host gets
# its roles' macros as host macros, marked with MACRO_MARK in their
# description: only marked macros are ever updated or removed.
MACRO_RE = re.compile(r"^\{\$[A-Z0-9_.]+(:.*)?\}$")
MACRO_MARK = "lemp-ha: from pillar zabbix:lookup:server:api:roles"


def check_role_macros(role, macros):
    """The macros of a role (pillar ...:roles:<role>:macros) as {name: text};
    ZabbixSettingsError naming the key for a bad name or value."""
    key = f"zabbix:lookup:server:api:roles:{role}:macros"
    if macros in (None, {}):
        return {}
    if not isinstance(macros, dict):
        raise ZabbixSettingsError(f"{key} must map a macro such as '{{$NGINX.STUB_STATUS.PORT}}' to its value")
    checked = {}
    for name, value in macros.items():
        if not MACRO_RE.match(str(name)):
            raise ZabbixSettingsError(f"{key}: {name!r} is not a Zabbix user macro: write '{{$NAME.IN.CAPITALS}}' "
                                      "(quoted in YAML)")
        if value is None or isinstance(value, (dict, list)):
            raise ZabbixSettingsError(f"{key}:{name} must be a single value, not {value!r}")
        checked[name] = str(value)
    return checked


def host_macros(machines, roles):
    """{host: {macro: value}} for every machine (topology ``machines``:
    {name: {roles: [...]}}) from the checked ``roles`` (validate). Two roles
    of one machine that give one macro different values are refused."""
    plan = {}
    for name in sorted(machines or {}):
        wanted, source = {}, {}
        for role in (machines[name] or {}).get("roles") or []:
            for macro, value in ((roles.get(role) or {}).get("macros") or {}).items():
                if macro in wanted and wanted[macro] != value:
                    raise ZabbixSettingsError(
                        f"zabbix:lookup:server:api:roles: {name} has roles {source[macro]} and {role}, which give "
                        f"{macro} the values {wanted[macro]!r} and {value!r}: make them equal")
                wanted[macro], source[macro] = value, role
        plan[name] = wanted
    return plan


def host_role_links(machines, roles):
    """{host: {"groups": [names], "templates": [names]}} for every machine
    of the topology, from its roles (``roles`` as checked by validate)."""
    plan = {}
    for name in sorted(machines or {}):
        groups, templates = set(), set()
        for role in (machines[name] or {}).get("roles") or []:
            checked = roles.get(role) or {}
            if checked.get("group"):
                groups.add(checked["group"])
            templates.update(checked.get("templates") or [])
        plan[name] = {"groups": sorted(groups), "templates": sorted(templates)}
    return plan


def link_changes(current, wanted):
    """What host.massadd must add so the host has every ``wanted`` group and
    template (both {name: id}); ``current`` is {"groups": [ids], "templates":
    [ids]}. Links are only ever added: one made by hand stays."""
    have_groups = set(map(str, current.get("groups") or []))
    have_templates = set(map(str, current.get("templates") or []))
    return {"groups": sorted(str(i) for i in wanted["groups"].values() if str(i) not in have_groups),
            "templates": sorted(str(i) for i in wanted["templates"].values() if str(i) not in have_templates)}


def ensure_role_links(url, settings, ca_file=None, test=False):
    """Each host of the topology is in its roles' groups with their templates.
    Autoregistration links them only when a host first registers (or its
    metadata changes): a template added to a role later reaches the hosts
    already registered through this."""
    def run():
        checked = validate(settings)
        plan = host_role_links(_monitored(), checked["roles"])
        if not plan:
            return []
        api = _login(url, ca_file)
        group_ids = _groupids(api, sorted({g for p in plan.values() for g in p["groups"]}))
        names = sorted({t for p in plan.values() for t in p["templates"]})
        template_ids = {t["host"]: t["templateid"] for t in api.template.get(output=["templateid", "host"],
                                                                            filter={"host": names})}
        hosts = {h["host"]: h for h in api.host.get(output=["hostid", "host"], filter={"host": sorted(plan)},
                                                    selectGroups=["groupid"], selectParentTemplates=["templateid"])}
        changes = []
        for name, wanted in plan.items():
            lacking = [n for n in wanted["groups"] if n not in group_ids] + \
                      [n for n in wanted["templates"] if n not in template_ids]
            if name not in hosts or lacking:
                if test:
                    changes.append(f"host {name}: waits for {', '.join(lacking) or 'the host'}")
                    continue
                raise CommandExecutionError(f"zabbix: host {name} or its groups/templates {lacking} are missing "
                                            "(agent_hosts_present, host_groups_present and templates_imported "
                                            "come first)")
            host = hosts[name]
            todo = link_changes({"groups": [g["groupid"] for g in host.get("groups") or []],
                                 "templates": [t["templateid"] for t in host.get("parentTemplates") or []]},
                                {"groups": {g: group_ids[g] for g in wanted["groups"]},
                                 "templates": {t: template_ids[t] for t in wanted["templates"]}})
            if not (todo["groups"] or todo["templates"]):
                continue
            if not test:
                api.host.massadd(hosts=[{"hostid": host["hostid"]}],
                                 groups=[{"groupid": i} for i in todo["groups"]],
                                 templates=[{"templateid": i} for i in todo["templates"]])
            changes.append(f"host {name}: {len(todo['groups'])} group(s) and {len(todo['templates'])} "
                           "template(s) linked")
        return changes
    return _api_call(run)


def macro_changes(current, wanted):
    """What to do on one host: ``current`` is its usermacro.get rows
    (hostmacroid, macro, value, description), ``wanted`` {macro: value}.
    Returns {"create": [...], "update": [...], "delete": [ids]}: a macro
    of the same name set by hand is taken over (the pillar wins); a marked
    macro no longer wanted is removed; any other macro is left alone."""
    have = {row["macro"]: row for row in current or []}
    todo = {"create": [], "update": [], "delete": []}
    for macro, value in sorted(wanted.items()):
        row = have.get(macro)
        if row is None:
            todo["create"].append({"macro": macro, "value": value, "description": MACRO_MARK})
        elif str(row.get("value", "")) != value or row.get("description") != MACRO_MARK:
            todo["update"].append({"hostmacroid": str(row["hostmacroid"]), "value": value,
                                   "description": MACRO_MARK})
    for macro, row in sorted(have.items()):
        if macro not in wanted and row.get("description") == MACRO_MARK:
            todo["delete"].append(str(row["hostmacroid"]))
    return todo


def ensure_role_macros(url, settings, ca_file=None, test=False):
    """Each host of the topology (pillar topology:machines) has its roles'
    macros as host macros (after agent_hosts_present created the hosts)."""
    def run():
        checked = validate(settings)
        plan = host_macros(_monitored(), checked["roles"])
        wanted_hosts = sorted(name for name, macros in plan.items() if macros)
        if not wanted_hosts:
            return []
        api = _login(url, ca_file)
        hosts = {h["host"]: h["hostid"] for h in api.host.get(output=["hostid", "host"],
                                                              filter={"host": wanted_hosts})}
        rows = api.usermacro.get(output="extend", hostids=list(hosts.values())) if hosts else []
        by_host = {}
        for row in rows:
            by_host.setdefault(str(row["hostid"]), []).append(row)
        changes = []
        for name in wanted_hosts:
            if name not in hosts:
                if test:
                    changes.append(f"host {name}: waits for the host (agent_hosts_present)")
                    continue
                raise CommandExecutionError(f"zabbix: host {name} is missing: lemp_zabbix.agent_hosts_present "
                                            "creates it first (does it have a PSK in zabbix:server:agent_psks?)")
            todo = macro_changes(by_host.get(str(hosts[name]), []), plan[name])
            if not test:
                for macro in todo["create"]:
                    api.usermacro.create(hostid=hosts[name], **macro)
                for macro in todo["update"]:
                    api.usermacro.update(**macro)
                if todo["delete"]:
                    api.usermacro.delete(*todo["delete"])
            for kind in ("create", "update", "delete"):
                if todo[kind]:
                    changes.append(f"host {name}: {len(todo[kind])} macro(s) to {kind}")
        return changes
    return _api_call(run)


# --- maintenance windows, webhook media, dashboard (issue 10 items 4, 6, 7) ---
#
# Maintenance: orch.deploy and orch.galera_rolling_restart call
# maintenance_open/maintenance_close on the monitor minion (salt.function
# steps planned by _runners/_steps.py with_maintenance): mon1 holds the API
# client, its CA and the Admin secret; the master needs none of them.

MAINTENANCE_PREFIX = "lemp-ha maintenance: "
MAINTENANCE_WITH_DATA = 0
TIMEPERIOD_ONE_TIME = 0
MEDIATYPE_WEBHOOK = 4
DASHBOARD_PERMISSIONS = {"read": PERMISSION_READ, "read-write": PERMISSION_READ_WRITE}
WIDGET_FIELD_INTEGER, WIDGET_FIELD_ITEM, WIDGET_FIELD_ITEM_PROTOTYPE = 0, 4, 5
GRAPH_PROTOTYPE_SOURCE_SIMPLE = 3   # graphprototype widget: one simple graph per discovered item
ITEM_FLAG_DISCOVERED = 4            # item.get flags: created by low-level discovery
WIDGET_COLUMNS, WIDGET_WIDTH, WIDGET_HEIGHT = 3, 8, 5   # 6.0's grid is 24 wide
WEBHOOK_PARAMETERS = [  # what the script posts (Zabbix macros, expanded per event)
    ("host", "{HOST.NAME}"), ("severity", "{EVENT.SEVERITY}"), ("problem", "{EVENT.NAME}"),
    ("status", "{EVENT.STATUS}"), ("event_id", "{EVENT.ID}"), ("event_value", "{EVENT.VALUE}"),
]


def maintenance_name(orch, run_id):
    """The window's name: the orchestration and its run, e.g.
    ``lemp-ha maintenance: orch.deploy 20261126T150000Z-1a2b3c``."""
    return f"{MAINTENANCE_PREFIX}{orch} {run_id}"


def maintenance_window(name, hostids, now, expiry_minutes):
    """maintenance.create's object: data still collected, problems suppressed,
    from ``now`` until the safety expiry (a crashed run cannot leave it open)."""
    if int(expiry_minutes) < 1:
        raise ZabbixSettingsError(f"maintenance {name}: expiry_minutes must be at least 1")
    till = int(now) + 60 * int(expiry_minutes)
    return {"name": name, "maintenance_type": MAINTENANCE_WITH_DATA, "active_since": int(now),
            "active_till": till, "hosts": [{"hostid": str(h)} for h in hostids],  # 6.0: hostids is deprecated
            "description": "opened by a lemp-ha orchestration; closed at its end, expires by itself",
            "timeperiods": [{"timeperiod_type": TIMEPERIOD_ONE_TIME, "start_date": int(now),
                             "period": till - int(now)}]}


def expired_windows(maintenances, now):
    """Ids of our windows whose expiry has passed (runs that never closed them)."""
    return sorted(str(m["maintenanceid"]) for m in maintenances or []
                  if str(m.get("name", "")).startswith(MAINTENANCE_PREFIX) and int(m.get("active_till", 0)) < int(now))


def validate_ops(settings):
    """The webhook and dashboard settings (``validate`` first checked the
    URL); returns them completed with their defaults."""
    settings = dict(settings or {})
    groups = settings.get("user_groups") or {}
    webhook = dict(settings.get("webhook") or {})
    if webhook:
        if not webhook.get("url"):
            raise ZabbixSettingsError("zabbix:lookup:server:api:webhook:url is missing: write https://host/path "
                                      "(or leave zabbix:lookup:server:api:webhook empty for no webhook)")
        check_url(webhook["url"], "zabbix:lookup:server:api:webhook:url")
        webhook.setdefault("name", "lemp-ha webhook")
        webhook.setdefault("user", "lemp-ha-webhook")
        webhook.setdefault("user_group", "staff")
        webhook.setdefault("min_severity", "warning")
        if webhook["user_group"] not in groups:
            raise ZabbixSettingsError(f"zabbix:lookup:server:api:webhook:user_group {webhook['user_group']!r} is not "
                                      "declared in zabbix:lookup:server:api:user_groups")
        if webhook["min_severity"] not in SEVERITIES:
            raise ZabbixSettingsError(f"zabbix:lookup:server:api:webhook:min_severity {webhook['min_severity']!r}: "
                                      f"one of {', '.join(SEVERITIES)}")
    settings["webhook"] = webhook
    dashboard = dict(settings.get("dashboard") or {})
    for group, perm in (dashboard.get("share") or {}).items():
        if group not in groups:
            raise ZabbixSettingsError(f"zabbix:lookup:server:api:dashboard:share:{group} is not declared in "
                                      "zabbix:lookup:server:api:user_groups")
        if perm not in DASHBOARD_PERMISSIONS:
            raise ZabbixSettingsError(f"zabbix:lookup:server:api:dashboard:share:{group} {perm!r}: "
                                      f"one of {', '.join(DASHBOARD_PERMISSIONS)}")
    for i, widget in enumerate(dashboard.get("widgets") or []):
        if not (widget or {}).get("name") or not (widget.get("type") or widget.get("items")):
            raise ZabbixSettingsError(f"zabbix:lookup:server:api:dashboard:widgets[{i}] needs a name and "
                                      "either a type (hostavail, problemhosts) or items (item key patterns)")
    settings["dashboard"] = dashboard
    return settings


def webhook_mediatype(webhook, script):
    """The webhook media type (API object): ``script`` posts the event's
    parameters as JSON to the URL."""
    message = {"subject": "{EVENT.STATUS}: {EVENT.NAME}", "message": "{HOST.NAME}: {EVENT.NAME}"}
    return {
        "name": webhook["name"], "type": MEDIATYPE_WEBHOOK, "status": 0, "script": script,
        "timeout": str(webhook.get("timeout", "10s")),
        "parameters": [{"name": "url", "value": webhook["url"]}]
        + [{"name": n, "value": v} for n, v in WEBHOOK_PARAMETERS],
        "message_templates": [dict(message, eventsource=EVENTSOURCE_TRIGGERS, recovery=r) for r in (0, 1)],
    }


def _params_signature(params):
    return sorted((str(p.get("name")), str(p.get("value"))) for p in params or [])


def _templates_signature(templates):
    return sorted((str(t.get("eventsource")), str(t.get("recovery")), str(t.get("subject", "")),
                   str(t.get("message", ""))) for t in templates or [])


def webhook_changes(current, desired):
    """Fields of the webhook media type to write (None: create it; {}: in sync)."""
    if not current:
        return None
    changes = field_changes(current, {k: desired[k] for k in ("type", "status", "script", "timeout")})
    if _params_signature(current.get("parameters")) != _params_signature(desired["parameters"]):
        changes["parameters"] = desired["parameters"]
    if _templates_signature(current.get("message_templates")) != _templates_signature(desired["message_templates"]):
        changes["message_templates"] = desired["message_templates"]
    return changes


def webhook_action(name, userid, mediatypeid, min_severity="warning"):
    """The trigger action posting problems (and their recovery) to the
    webhook user's webhook media; like the mail, not for suppressed problems."""
    action = alert_action(name, "0", mediatypeid, min_severity)
    action["operations"][0].pop("opmessage_grp")
    action["operations"][0]["opmessage_usr"] = [{"userid": str(userid)}]
    return action


def template_itemids(rows):
    """The itemids of item.get rows ({itemid, flags}) that a template gave
    the host, without those low-level discovery created (flags 4).

    Why: discovered items appear after the run that linked the template
    (HAProxy's frontends, once the agent's first answer is discovered), so
    a dashboard listing them changed at a later run, once per discovery
    (seen in the lab: orch.site's third run on mon1). Their prototypes are
    shown instead (``prototype_sources``), which exist from the link on."""
    return [str(r["itemid"]) for r in rows or [] if str(r.get("flags", 0)) != str(ITEM_FLAG_DISCOVERED)]


def prototype_sources(rows):
    """[{itemid, host, key}] of itemprototype.get rows (selectHosts host)
    on the monitored hosts, sorted by host then itemid."""
    found = []
    for r in rows or []:
        for host in r.get("hosts") or []:
            found.append({"itemid": str(r["itemid"]), "host": str(host["host"]), "key": str(r.get("key_", ""))})
    return sorted(found, key=lambda p: (p["host"], int(p["itemid"])))


def _prototype_widget(name, proto, several):
    """A graph prototype widget: Zabbix draws a graph for each item the
    prototype's discovery creates on that host, as they appear, with no
    change to the dashboard."""
    label = f"{name}: {proto['host']}" + (f" {proto['key']}" if several else "")
    return {"type": "graphprototype", "name": label,
            "fields": [{"type": WIDGET_FIELD_INTEGER, "name": "source_type", "value": GRAPH_PROTOTYPE_SOURCE_SIMPLE},
                       {"type": WIDGET_FIELD_ITEM_PROTOTYPE, "name": "itemid", "value": proto["itemid"]},
                       {"type": WIDGET_FIELD_INTEGER, "name": "columns", "value": 2},
                       {"type": WIDGET_FIELD_INTEGER, "name": "rows", "value": 1}]}


def dashboard_widgets(specs, itemids_by_widget, prototypes_by_widget=None):
    """Widgets of the dashboard, in a grid, and the names of those skipped.

    ``specs``: pillar dashboard:widgets ({name, type} or {name, items}).
    ``itemids_by_widget``: {widget name: [itemid]} of the items the
    templates gave the hosts (``template_itemids``) for its key patterns:
    one plain-text widget of their latest values.
    ``prototypes_by_widget``: {widget name: ``prototype_sources``} of the
    item prototypes matching the patterns: one graph prototype widget per
    prototype and host, which follows what discovery creates later.
    A widget of items with neither is skipped (its template is not there
    yet) and named in the state's comment."""
    widgets, skipped = [], []

    def place(widget):
        n = len(widgets)
        widget.update(x=(n % WIDGET_COLUMNS) * WIDGET_WIDTH, y=(n // WIDGET_COLUMNS) * WIDGET_HEIGHT,
                      width=WIDGET_WIDTH, height=WIDGET_HEIGHT)
        widgets.append(widget)

    for spec in specs or []:
        if not spec.get("items"):
            place({"type": spec["type"], "name": spec["name"], "fields": []})
            continue
        itemids = sorted(set(map(str, itemids_by_widget.get(spec["name"]) or [])), key=int)
        # two patterns may match one prototype: once each, by host then itemid
        protos = sorted({(p["host"], p["itemid"]): p for p in (prototypes_by_widget or {}).get(spec["name"]) or []
                         }.values(), key=lambda p: (p["host"], int(p["itemid"])))
        if not itemids and not protos:
            skipped.append(f"{spec['name']} (no item or item prototype matches {', '.join(spec['items'])} yet)")
            continue
        if itemids:
            place({"type": "plaintext", "name": spec["name"],
                   "fields": [{"type": WIDGET_FIELD_ITEM, "name": "itemids", "value": i} for i in itemids]
                   + [{"type": WIDGET_FIELD_INTEGER, "name": "show_lines", "value": 1}]})
        for proto in protos:
            several = sum(1 for p in protos if p["host"] == proto["host"]) > 1
            place(_prototype_widget(spec["name"], proto, several))
    return widgets, skipped


def dashboard_object(name, widgets, usrgrpids_by_name, share):
    """dashboard.create's object: private, shared with the user groups of
    ``share`` ({group: read | read-write})."""
    return {"name": name, "private": 1, "display_period": 30, "auto_start": 1,
            "pages": [{"widgets": widgets}],
            "userGroups": sorted(({"usrgrpid": str(usrgrpids_by_name[g]), "permission": DASHBOARD_PERMISSIONS[p]}
                                  for g, p in (share or {}).items() if g in usrgrpids_by_name),
                                 key=lambda s: s["usrgrpid"])}


def _widgets_signature(pages):
    out = []
    for page in pages or []:
        for w in page.get("widgets") or []:
            fields = sorted((int(f["type"]), str(f["name"]), str(f["value"])) for f in w.get("fields") or [])
            out.append((str(w["type"]), str(w.get("name", "")), int(w["x"]), int(w["y"]),
                        int(w["width"]), int(w["height"]), tuple(fields)))
    return sorted(out)


def dashboard_changes(current, desired):
    """Fields of the dashboard to write (None: create it; {}: in sync)."""
    if not current:
        return None
    changes = {}
    if _widgets_signature(current.get("pages")) != _widgets_signature(desired["pages"]):
        changes["pages"] = desired["pages"]
    have = sorted((str(g["usrgrpid"]), int(g["permission"])) for g in current.get("userGroups") or [])
    want = sorted((str(g["usrgrpid"]), int(g["permission"])) for g in desired["userGroups"])
    if have != want:
        changes["userGroups"] = desired["userGroups"]
    if str(current.get("private", 1)) != str(desired["private"]):
        changes["private"] = desired["private"]
    return changes


def _monitor_url():
    """The API as the monitor minion reaches itself (salt/zabbix/map.jinja's api_url)."""
    domain = _pillar("topology:network:domain")
    return f"https://{__grains__['id']}.{domain}/api_jsonrpc.php"  # noqa: F821


def hosts_in_maintenance(rows):
    """True when every host.get row (maintenance_status) is in maintenance."""
    return bool(rows) and all(str(r.get("maintenance_status")) == "1" for r in rows)


def maintenance_open(name, hosts, expiry_minutes=120, ca_file="/etc/zabbix/tls/ca.pem", url=None, now=None,
                     wait_seconds=90):
    """Open the maintenance window ``name`` for the Zabbix hosts named
    ``hosts`` (machine names), until ``expiry_minutes`` from now. Also
    removes our windows whose expiry has passed. Returns what it did.

    CLI Example::

        salt mon1 lemp_zabbix.maintenance_open 'lemp-ha maintenance: by hand 1' '[web1, web2]' 60
    """
    import time  # pylint: disable=import-outside-toplevel

    now = int(now or time.time())

    def run():
        api = _login(url or _monitor_url(), ca_file)
        ours = api.maintenance.get(output=["maintenanceid", "name", "active_till"],
                                   search={"name": MAINTENANCE_PREFIX}, startSearch=True)
        done = []
        stale = expired_windows(ours, now)
        if stale:
            api.maintenance.delete(*stale)
            done.append(f"removed {len(stale)} expired window(s)")
        if any(m["name"] == name for m in ours if str(m["maintenanceid"]) not in stale):
            return {"opened": name, "done": done + ["already open"]}
        found = api.host.get(output=["hostid", "host"], filter={"host": list(hosts)})
        if not found:
            return {"opened": None, "done": done + [f"no Zabbix host among {', '.join(hosts)}: no window"]}
        api.maintenance.create(**maintenance_window(name, [h["hostid"] for h in found], now, expiry_minutes))
        unknown = sorted(set(hosts) - {h["host"] for h in found})
        # Zabbix's timer puts hosts in maintenance at its next minute, not at
        # create, and only once the server's configuration cache holds the
        # window (CacheUpdateFrequency, 60 s): until then a problem would
        # still be mailed. Wait for it, after asking this server (the
        # monitor machine runs it) to reload its cache now: that leaves the
        # timer's minute, half the wait on average.
        done += _reload_server_config_cache()
        hostids = [h["hostid"] for h in found]
        deadline = time.monotonic() + wait_seconds
        while not hosts_in_maintenance(api.host.get(output=["hostid", "maintenance_status"], hostids=hostids)):
            if time.monotonic() >= deadline:
                done.append(f"hosts not yet in maintenance after {wait_seconds}s (the server's timer is late)")
                break
            time.sleep(2)  # polling the server's state, bounded by wait_seconds
        return {"opened": name, "hosts": sorted(h["host"] for h in found),
                "done": done + ([f"not in Zabbix: {', '.join(unknown)}"] if unknown else [])}
    return _api_call(run)


def _reload_server_config_cache():
    """``zabbix_server -R config_cache_reload`` on this machine, when it runs
    the server; what to report when that failed."""
    try:
        res = __salt__["cmd.run_all"](["zabbix_server", "-R", "config_cache_reload"],  # noqa: F821
                                      python_shell=False, ignore_retcode=True, output_loglevel="quiet")
    except Exception as exc:  # pylint: disable=broad-except  # no zabbix_server here (url= from elsewhere)
        res = {"retcode": None, "stderr": str(exc)}
    if res["retcode"] == 0:
        return []
    return [f"configuration cache not reloaded ({(res.get('stderr') or res.get('stdout') or '').strip()}): "
            "the window takes effect after the server's next cache update"]


def maintenance_close(name, ca_file="/etc/zabbix/tls/ca.pem", url=None):
    """Close (delete) the maintenance window ``name``; nothing if it is gone."""
    def run():
        api = _login(url or _monitor_url(), ca_file)
        rows = api.maintenance.get(output=["maintenanceid"], filter={"name": name})
        if rows:
            api.maintenance.delete(*[r["maintenanceid"] for r in rows])
        return {"closed": name if rows else None}
    return _api_call(run)


def ensure_webhook(url, settings, script_file, ca_file=None, test=False):
    """The webhook media type, its user (in ``webhook:user_group``, with the
    webhook as its only media) and the trigger action posting to it."""
    def run():
        webhook = validate_ops(validate(settings))["webhook"]
        if not webhook:
            return []
        with open(script_file, encoding="utf-8") as handle:
            desired = webhook_mediatype(webhook, handle.read())
        api = _login(url, ca_file)
        changes = []
        rows = api.mediatype.get(output="extend", filter={"name": webhook["name"]},
                                 selectMessageTemplates="extend")
        todo = webhook_changes(rows[0] if rows else None, desired)
        if todo is None:
            mediatypeid = None if test else api.mediatype.create(**desired)["mediatypeids"][0]
            changes.append(f"media type {webhook['name']} created")
        else:
            mediatypeid = rows[0]["mediatypeid"]
            if todo:
                if not test:
                    api.mediatype.update(mediatypeid=mediatypeid, **todo)
                changes.append(f"media type {webhook['name']}: {', '.join(sorted(todo))} updated")
        group = api.usergroup.get(output=["usrgrpid"], filter={"name": webhook["user_group"]})
        if not group or not mediatypeid:
            if test:
                return changes + [f"user {webhook['user']} and its action: wait for the media type and group"]
            raise CommandExecutionError(f"zabbix: user group {webhook['user_group']} is missing")
        roles = {r["name"]: r["roleid"] for r in api.role.get(output=["roleid", "name"])}
        medias = [{"mediatypeid": str(mediatypeid), "sendto": "webhook", "active": 0, "severity": 63,
                   "period": "1-7,00:00-24:00"}]
        rows = api.user.get(output=["userid", "username", "roleid"], filter={"username": webhook["user"]},
                            selectUsrgrps=["usrgrpid"], selectMedias="extend")
        todo = user_changes(rows[0] if rows else None, [group[0]["usrgrpid"]], roles["User role"], medias)
        if todo is None:
            userid = None
            if not test:
                userid = api.user.create(username=webhook["user"], roleid=roles["User role"],
                                         passwd=_random.token_urlsafe(24), medias=medias,
                                         usrgrps=[{"usrgrpid": group[0]["usrgrpid"]}])["userids"][0]
            changes.append(f"user {webhook['user']} created")
        else:
            userid = rows[0]["userid"]
            if todo:
                if not test:
                    api.user.update(userid=userid, **todo)
                changes.append(f"user {webhook['user']}: {', '.join(sorted(todo))} updated")
        if userid:
            changes += _ensure_action(api, webhook_action(f"lemp-ha: post problems to {webhook['name']}", userid,
                                                          mediatypeid, webhook["min_severity"]), test)
        return changes
    return _api_call(run)


def ensure_dashboard(url, settings, ca_file=None, test=False):
    """The dashboard of ``dashboard`` settings; returns (changes, skipped
    widgets). Items and item prototypes are looked up on the hosts of
    ``base_group`` by key pattern now: a widget whose template is not there
    yet is skipped. Discovered items are not listed, their prototypes are
    (``template_itemids``): what the dashboard names exists once the
    templates are linked, so one run settles it."""
    def run():
        checked = validate_ops(validate(settings))
        dash = checked["dashboard"]
        if not dash.get("name"):
            return [], []
        api = _login(url, ca_file)
        base = _groupids(api, [checked.get("base_group", "lemp-ha")])
        # itemprototype.get takes no groupids: the group's hosts instead
        hostids = [h["hostid"] for h in api.host.get(output=["hostid"], groupids=list(base.values()))] \
            if base else []
        found, prototypes = {}, {}
        for spec in dash.get("widgets") or []:
            for pattern in spec.get("items") or []:
                query = dict(search={"key_": pattern}, searchWildcardsEnabled=True, monitored=True)
                rows = api.item.get(output=["itemid", "flags"], groupids=list(base.values()) or None, **query)
                found.setdefault(spec["name"], []).extend(template_itemids(rows))
                rows = api.itemprototype.get(output=["itemid", "key_"], selectHosts=["host"], templated=False,
                                             hostids=hostids, **query) if hostids else []
                prototypes.setdefault(spec["name"], []).extend(prototype_sources(rows))
        widgets, skipped = dashboard_widgets(dash.get("widgets"), found, prototypes)
        usrgrps = {g["name"]: g["usrgrpid"] for g in api.usergroup.get(output=["usrgrpid", "name"])}
        desired = dashboard_object(dash["name"], widgets, usrgrps, dash.get("share"))
        rows = api.dashboard.get(output="extend", filter={"name": dash["name"]}, selectPages="extend",
                                 selectUserGroups="extend")
        todo = dashboard_changes(rows[0] if rows else None, desired)
        if todo is None:
            if not test:
                api.dashboard.create(**desired)
            return [f"dashboard {dash['name']} created"], skipped
        if todo and not test:
            api.dashboard.update(dashboardid=rows[0]["dashboardid"], **todo)
        return ([f"dashboard {dash['name']}: {', '.join(sorted(todo))} updated"] if todo else []), skipped
    return _api_call(run)


def render_known_templates(shipped, template_files):
    """Templates a render can check the pillar against: those Zabbix 6.0
    ships (zabbix:lookup:server:api:shipped_templates) and the repo's files."""
    import yaml  # pylint: disable=import-outside-toplevel

    names = list(shipped or [])
    for path in template_files or []:
        with open(path, encoding="utf-8") as handle:
            names += template_names_of(yaml.safe_load(handle))
    return names


# --- end of maintenance windows, webhook media, dashboard ---


# --- db/lb templates (issue #10: Galera, VIP, garbd, services, TLS, reachability) ---
# The repo's templates for these tiers read facts of the topology that only
# Salt knows, published as global macros (every host sees them): the Galera
# cluster size the topology wants, the VIP, the domain. (The shipped MySQL
# template's DSN and user are host macros of role db: roles:db:macros, set
# by the web tier's ensure_role_macros.)


def galera_expected_size(topology):
    """wsrep_cluster_size of a healthy cluster: every data node (role db)
    plus every garbd that votes. garbd counts in wsrep_cluster_size; the
    topology runs it only with an even number of data nodes (its derived
    `garbd` list, lemp_topology.validate), so an arbitrator machine beside
    an odd count adds nothing."""
    roles = (topology or {}).get("roles") or {}
    dbs = (roles.get("db") or {}).get("members") or []
    if not dbs:
        raise ZabbixSettingsError("zabbix: the topology has no machine with role db: no Galera size to watch "
                                  "(pillar/topology.yaml)")
    return len(dbs) + len((topology or {}).get("garbd") or [])


def global_macros(topology):
    """The global macros the repo's templates read, from the derived topology."""
    network = (topology or {}).get("network") or {}
    macros = {"{$LEMP.DOMAIN}": str(network.get("domain", "")),
              "{$LEMP.VIP}": str(network.get("vip", ""))}
    if ((topology or {}).get("roles") or {}).get("db", {}).get("members"):
        macros["{$LEMP.GALERA.SIZE}"] = str(galera_expected_size(topology))
    return macros


def global_macro_changes(current, wanted):
    """What to write so that the global macros of ``wanted`` ({macro:
    value}) have these values, given usermacro.get's rows (globalmacroid,
    macro, value). Returns (to create: [{macro, value}], to update:
    [{globalmacroid, macro, value}]); other global macros are left alone."""
    have = {row["macro"]: row for row in current or []}
    create, update = [], []
    for macro, value in sorted((wanted or {}).items()):
        row = have.get(macro)
        if row is None:
            create.append({"macro": macro, "value": str(value)})
        elif str(row.get("value", "")) != str(value):
            update.append({"globalmacroid": str(row["globalmacroid"]), "macro": macro, "value": str(value)})
    return create, update


def agent_user_parameters(roles, by_role, values):
    """The agent2 UserParameter lines of a machine with these roles:
    ``by_role`` ({role: {key: command}}, defaults.yaml zabbix:agent:
    user_parameters) with ``{name}`` fields of the command filled from
    ``values`` (e.g. the VIP). Sorted by key; a key given twice with two
    commands is an error."""
    lines = {}
    for role in roles or []:
        for key, command in sorted(((by_role or {}).get(role) or {}).items()):
            try:
                text = str(command).format(**(values or {}))
            except KeyError as exc:
                raise ZabbixSettingsError(f"zabbix:lookup:agent:user_parameters:{role}:{key} names "
                                          f"{{{exc.args[0]}}}, which is not known") from None
            if "\n" in text:
                raise ZabbixSettingsError(f"zabbix:lookup:agent:user_parameters:{role}:{key}: one line only")
            if key in lines and lines[key] != text:
                raise ZabbixSettingsError(f"zabbix:lookup:agent:user_parameters: {key} has two commands")
            lines[key] = text
    return [f"UserParameter={key},{text}" for key, text in sorted(lines.items())]


def ensure_global_macros(url, macros, ca_file=None, test=False):
    """Global macros with these values (others are left alone)."""
    def run():
        api = _login(url, ca_file)
        rows = api.usermacro.get(output=["globalmacroid", "macro", "value"], globalmacro=True,
                                 filter={"macro": sorted(macros)})
        create, update = global_macro_changes(rows, macros)
        if not test:
            for row in create:
                api.usermacro.createglobal(**row)
            for row in update:
                api.usermacro.updateglobal(globalmacroid=row["globalmacroid"], value=row["value"])
        return ([f"global macro {r['macro']} created" for r in create]
                + [f"global macro {r['macro']} set to {r['value']!r}" for r in update])
    return _api_call(run)


# --- end of db/lb templates ---


def known_templates(url, ca_file=None):
    """Names of every template the server has."""
    return _api_call(lambda: [t["host"] for t in _login(url, ca_file).template.get(output=["host"])])


def _ensure_action(api, desired, test):
    current = api.action.get(output="extend", filter={"name": desired["name"]}, selectFilter="extend",
                             selectOperations="extend", selectRecoveryOperations="extend")
    current = current[0] if current else None
    changes = action_changes(current, desired)
    if changes is None:
        if not test:
            api.action.create(**desired)
        return [f"action {desired['name']!r} created"]
    if changes:
        if not test:
            api.action.update(actionid=current["actionid"], **changes)
        return [f"action {desired['name']!r}: {', '.join(sorted(changes))} updated"]
    return []


def ensure_autoregistration(url, settings, ca_file=None, test=False):
    """One autoregistration action per role of ``settings['roles']``
    (validated first): metadata token -> the role's group and templates."""
    def run():
        api = _login(url, ca_file)
        known = [t["host"] for t in api.template.get(output=["host"])]
        checked = validate(settings, known)
        groups = _groupids(api, [r["group"] for r in checked["roles"].values()])
        templates = {t["host"]: t["templateid"] for t in api.template.get(output=["templateid", "host"])}
        changes = []
        for role, decl in sorted(checked["roles"].items()):
            if decl["group"] not in groups:
                if test:
                    changes.append(f"action for role {role}: waits for host group {decl['group']}")
                    continue
                raise CommandExecutionError(f"zabbix: host group {decl['group']} is missing: "
                                            "lemp_zabbix.host_groups_present runs first")
            desired = autoreg_action(role, groups[decl["group"]], [templates[t] for t in decl["templates"]])
            changes += _ensure_action(api, desired, test)
        return changes
    return _api_call(run)


def _monitored():
    """The machines Zabbix holds as hosts: the topology's and the enrolled
    pool members (_modules/lemp_pool.py monitored_machines)."""
    return __salt__["lemp_pool.machines"]()  # noqa: F821  (injected by the loader)


def agent_host_names(psks, machines):
    """The hosts agent_hosts_present makes: machines (monitored_machines)
    with a PSK. A pool name has a PSK before its VM exists; it becomes a
    host only once enrolled."""
    return sorted(name for name in psks or {} if name in (machines or {}))


def host_absent_refusal(name, topology):
    """Why host_absent must not remove ``name``, or None: only a pool name
    (scaling.web.pool) is ever removed; the fixed machines stay monitored."""
    pool = [e.get("name") for e in ((((topology or {}).get("scaling") or {}).get("web") or {}).get("pool") or [])]
    if name not in pool:
        return (f"zabbix: refusing to remove host {name!r}: only a name of scaling.web.pool "
                f"({', '.join(pool) or 'none'}) is removed at scale-in; fixed machines stay monitored")
    return None


def host_absent(name, ca_file="/etc/zabbix/tls/ca.pem", url=None):
    """Remove the Zabbix host of pool member ``name`` (scale-in, or a failed
    enrolment); nothing to do when there is none. Refuses a fixed machine.

    CLI Example::

        salt mon1 lemp_zabbix.host_absent web3
    """
    refusal = host_absent_refusal(name, _pillar("topology") or {})
    if refusal:
        raise CommandExecutionError(refusal)
    url = url or _monitor_url()

    def run():
        api = _login(url, ca_file)
        rows = api.host.get(output=["hostid", "host"], filter={"host": [name]})
        if not rows:
            return {"name": name, "removed": False}
        api.host.delete(*[row["hostid"] for row in rows])
        return {"name": name, "removed": True}
    return _api_call(run)


def ensure_agent_hosts(url, base_group, ca_file=None, test=False):
    """Every machine whose PSK the pillar gives (zabbix:server:agent_psks,
    by machine name) is a host with PSK encryption and that key; the
    autoregistration actions then add its roles' groups and templates."""
    psks = _pillar("zabbix:server:agent_psks") or {}
    if not psks:
        raise CommandExecutionError("secret zabbix:server:agent_psks is missing from the pillar "
                                    "(pillar/secrets.spec.yaml per_machine.zabbix_psk; docs/secrets.md)")

    def run():
        api = _login(url, ca_file)
        groupid = _groupids(api, [base_group]).get(base_group)
        if not groupid and not test:
            raise CommandExecutionError(f"zabbix: host group {base_group} is missing")
        machines = _monitored()
        hosts = {h["host"]: h for h in api.host.get(output=["hostid", "host", "tls_connect", "tls_accept"],
                                                     filter={"host": agent_host_names(psks, machines)},
                                                     selectTags="extend",
                                                     selectInterfaces=["interfaceid", "type"])}
        changes = []
        for name in agent_host_names(psks, machines):
            address = (machines.get(name) or {}).get("address")
            todo = psk_host_changes(hosts.get(name), name, psks[name], groupid or "0")
            if address and (name not in hosts or lacks_agent_interface(hosts[name])):
                if name not in hosts:
                    todo["interfaces"] = [agent_interface(address)]
                else:
                    if not test:
                        api.hostinterface.create(hostid=hosts[name]["hostid"], **agent_interface(address))
                    changes.append(f"host {name}: agent interface {address} added")
            if not todo:
                continue
            if not test:
                if name in hosts:
                    api.host.update(hostid=hosts[name]["hostid"], **todo)
                else:
                    api.host.create(**todo)
            changes.append(f"host {name}: {'PSK set' if name in hosts else 'created with its PSK and agent interface'}")
        return changes
    return _api_call(run)


def ensure_email_media(url, smtp, ca_file=None, test=False):
    """The packaged `Email` media type sends through the local MTA."""
    def run():
        api = _login(url, ca_file)
        rows = api.mediatype.get(output="extend", filter={"name": smtp.get("name", "Email")})
        if not rows:
            raise CommandExecutionError(f"zabbix: media type {smtp.get('name', 'Email')} is missing")
        desired = {"smtp_server": smtp["server"], "smtp_port": smtp.get("port", 25),
                   "smtp_helo": smtp["helo"], "smtp_email": smtp["from"], "status": 0}
        changes = field_changes(rows[0], desired)
        if changes and not test:
            api.mediatype.update(mediatypeid=rows[0]["mediatypeid"], **changes)
        return [f"media type Email: {', '.join(sorted(changes))} updated"] if changes else []
    return _api_call(run)


def ensure_user_groups(url, settings, ca_file=None, test=False):
    """User groups with their permission on the role host groups."""
    def run():
        checked = validate(settings)
        api = _login(url, ca_file)
        role_groups = _groupids(api, [r["group"] for r in checked["roles"].values()]
                                + [checked.get("base_group", "lemp-ha")])
        changes = []
        for name, group in sorted((checked.get("user_groups") or {}).items()):
            rights = user_group_rights(group, role_groups)
            rows = api.usergroup.get(output="extend", filter={"name": name}, selectRights="extend")
            if not rows:
                if not test:
                    api.usergroup.create(name=name, rights=rights)
                changes.append(f"user group {name} created")
            elif rights_signature(rows[0].get("rights")) != rights_signature(rights):
                if not test:
                    api.usergroup.update(usrgrpid=rows[0]["usrgrpid"], rights=rights)
                changes.append(f"user group {name}: rights updated")
        return changes
    return _api_call(run)


def ensure_users(url, settings, ca_file=None, test=False):
    """Users of the pillar, with their groups, role and e-mail media. A new
    user gets a random password nobody knows: they log in through LDAP
    (later) or an admin sets one; Salt never stores it."""
    def run():
        checked = validate(settings)
        api = _login(url, ca_file)
        users = checked.get("users") or []
        if not users:
            return []
        usrgrps = {g["name"]: g["usrgrpid"] for g in api.usergroup.get(output=["usrgrpid", "name"])}
        roles = {r["name"]: r["roleid"] for r in api.role.get(output=["roleid", "name"])}
        email = api.mediatype.get(output=["mediatypeid"], filter={"name": "Email"})
        changes = []
        for user in users:
            name = user["username"]
            role = user.get("role", "User role")
            if role not in roles:
                raise ZabbixSettingsError(f"zabbix:lookup:server:api:users:{name}:role {role!r} is not a Zabbix user role "
                                          f"({', '.join(sorted(roles))})")
            groupids = [usrgrps[g] for g in user["groups"] if g in usrgrps]
            if len(groupids) != len(user["groups"]):
                if test:
                    changes.append(f"user {name}: waits for its user groups")
                    continue
                raise CommandExecutionError(f"zabbix: user groups of {name} are missing: user_groups_present first")
            medias = None
            if user.get("email") and email:
                medias = [{"mediatypeid": email[0]["mediatypeid"], "sendto": [user["email"]],
                           "active": 0, "severity": 63, "period": "1-7,00:00-24:00"}]
            rows = api.user.get(output=["userid", "username", "roleid"], filter={"username": name},
                                selectUsrgrps=["usrgrpid"], selectMedias="extend")
            todo = user_changes(rows[0] if rows else None, groupids, roles[role], medias)
            if todo is None:
                if not test:
                    api.user.create(username=name, name=user.get("name", ""), roleid=roles[role],
                                    passwd=_random.token_urlsafe(24),
                                    usrgrps=[{"usrgrpid": g} for g in groupids], medias=medias or [])
                changes.append(f"user {name} created")
            elif todo:
                if not test:
                    api.user.update(userid=rows[0]["userid"], **todo)
                changes.append(f"user {name}: {', '.join(sorted(todo))} updated")
        return changes
    return _api_call(run)


def ensure_alert_action(url, settings, ca_file=None, test=False):
    """Problems of at least ``alerts:min_severity`` are mailed to
    ``alerts:user_group``, and so is their recovery."""
    def run():
        checked = validate(settings)
        alerts = checked.get("alerts") or {}
        if not alerts:
            return []
        api = _login(url, ca_file)
        group = api.usergroup.get(output=["usrgrpid"], filter={"name": alerts["user_group"]})
        email = api.mediatype.get(output=["mediatypeid"], filter={"name": "Email"})
        if not group or not email:
            if test:
                return [f"action {alerts.get('name')}: waits for user group {alerts['user_group']}"]
            raise CommandExecutionError(f"zabbix: user group {alerts['user_group']} or media type Email is missing")
        desired = alert_action(alerts.get("name", "lemp-ha: mail problems"), group[0]["usrgrpid"],
                               email[0]["mediatypeid"], alerts.get("min_severity", "warning"))
        return _ensure_action(api, desired, test)
    return _api_call(run)


# --- scaling (issue #12): Zabbix asks Salt to scale the web tier ---
# The template "lemp-ha Web tier load" (monitor role) computes the web
# tier's PHP-FPM busy-worker ratio and has a high and a low trigger, tagged
# lemp-scale: out / in. Their thresholds and window are global macros from
# pillar scaling:autoscale (scaling_macros). One action per direction runs a
# global script on the Zabbix server (mon1): `sudo -n <command> out|in`,
# which sends the Salt event lemp-ha/scale/request from mon1's minion
# (salt/zabbix/server/scaling.sls). While the problem lasts the action runs
# it again every scaling:autoscale:repeat; the master's cooldown decides.

SCRIPT_TYPE_SCRIPT = 0
SCRIPT_SCOPE_ACTION = 1
SCRIPT_EXECUTE_ON_SERVER = 1
OP_REMOTE_COMMAND = 1
CONDITION_EVENT_TAG_VALUE = 26
OPERATOR_EQUAL = 0
SCALING_TAG = "lemp-scale"


# A node whose busy workers were not read for this many intervals drops out
# of the tier's ratio (an agent down, a node being destroyed): one missed
# reading is not enough, a dead node must not count for long.
SCALING_STALE_READINGS = 3
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def scaling_stale_period(interval):
    """The last_foreach period of the busy ratio ({$LEMP.SCALE.STALE}):
    SCALING_STALE_READINGS intervals, in seconds (``"5s"`` -> ``"15s"``)."""
    match = re.match(r"^([1-9][0-9]*)([smhdw]?)$", str(interval))
    if not match:
        raise ZabbixSettingsError(f"pillar scaling:autoscale:interval {interval!r} is not a Zabbix time (e.g. 5s, 1m)")
    return f"{int(match.group(1)) * _TIME_UNITS[match.group(2)] * SCALING_STALE_READINGS}s"


def scaling_macros(scaling, max_children):
    """Global macros of the scaling items and triggers: pillar
    scaling:autoscale, and the web pool's pm.max_children (the tier's
    capacity per node, phpfpm:lookup:pool:max_children). The interval is
    the update interval of every web node's busy-worker item and of the
    ratio; the stale period is how long a silent node still counts."""
    auto = (scaling or {}).get("autoscale") or {}
    if int(max_children) < 1:
        raise ZabbixSettingsError(f"phpfpm:lookup:pool:max_children {max_children!r} must be 1 or more")
    return {"{$LEMP.SCALE.HIGH}": str(auto.get("high")), "{$LEMP.SCALE.LOW}": str(auto.get("low")),
            "{$LEMP.SCALE.WINDOW}": str(auto.get("window")), "{$LEMP.SCALE.FPM_MAX_CHILDREN}": str(int(max_children)),
            "{$LEMP.SCALE.INTERVAL}": str(auto.get("interval")),
            "{$LEMP.SCALE.STALE}": scaling_stale_period(auto.get("interval"))}


def scaling_script(direction, command):
    """The global script the action of ``direction`` runs on the server."""
    return {"name": f"lemp-ha scaling request {direction}", "type": SCRIPT_TYPE_SCRIPT, "scope": SCRIPT_SCOPE_ACTION,
            "execute_on": SCRIPT_EXECUTE_ON_SERVER, "command": f"sudo -n {command} {direction}",
            "description": "Sends the Salt event lemp-ha/scale/request from mon1 (salt/zabbix/server/scaling.sls)."}


def scaling_action(direction, scriptid, repeat, enabled=True):
    """The trigger action of ``direction``: a problem tagged lemp-scale:
    <direction> runs the script now and every ``repeat`` while it lasts."""
    return {
        "name": f"lemp-ha scaling: request scale-{direction}",
        "eventsource": EVENTSOURCE_TRIGGERS,
        "status": 0 if enabled else 1,
        "esc_period": str(repeat),
        "filter": {"evaltype": 0, "conditions": [
            {"conditiontype": CONDITION_EVENT_TAG_VALUE, "operator": OPERATOR_EQUAL, "value2": SCALING_TAG,
             "value": direction},
            {"conditiontype": CONDITION_PROBLEM_SUPPRESSED, "operator": OPERATOR_NO}]},
        "operations": [{"operationtype": OP_REMOTE_COMMAND, "esc_step_from": 1, "esc_step_to": 0, "esc_period": "0",
                        "opcommand": {"scriptid": str(scriptid)}, "opcommand_hst": [{"hostid": "0"}]}],
    }


def scaling_action_signature(action):
    """What a scaling action does, comparable between the API's answer and
    ``scaling_action`` (action_signature leaves commands out)."""
    flt = action.get("filter") or {}
    return {
        "status": str(action.get("status", 0)),
        "esc_period": str(action.get("esc_period", "")),
        "conditions": sorted((int(c["conditiontype"]), int(c["operator"]), str(c.get("value", "")),
                              str(c.get("value2", ""))) for c in flt.get("conditions") or []),
        "operations": sorted((int(o.get("operationtype", -1)), str((o.get("opcommand") or {}).get("scriptid", "")),
                              int(o.get("esc_step_from", 1)), int(o.get("esc_step_to", 1)),
                              tuple(sorted(str(h.get("hostid")) for h in o.get("opcommand_hst") or [])))
                             for o in action.get("operations") or []),
    }


def scaling_action_changes(current, desired):
    """Fields of ``desired`` to write over ``current`` (None: create; {}: in sync)."""
    if not current:
        return None
    have, want = scaling_action_signature(current), scaling_action_signature(desired)
    fields = {"status": "status", "esc_period": "esc_period", "conditions": "filter", "operations": "operations"}
    return {fields[key]: desired[fields[key]] for key in fields if have[key] != want[key]}


def ensure_scaling_requests(url, scaling, max_children, ca_file=None, test=False):
    """The scaling triggers' macros, one global script and one action per
    direction, as pillar ``scaling`` says (autoscale off: actions disabled)."""
    auto = (scaling or {}).get("autoscale") or {}
    command = ((scaling or {}).get("request") or {}).get("command")

    def run():
        api = _login(url, ca_file)
        changes = ensure_global_macros_with(api, scaling_macros(scaling, max_children), test)
        for direction in ("out", "in"):
            desired = scaling_script(direction, command)
            rows = api.script.get(output="extend", filter={"name": desired["name"]})
            scriptid = rows[0]["scriptid"] if rows else None
            if not rows:
                if not test:
                    scriptid = api.script.create(**desired)["scriptids"][0]
                changes.append(f"script {desired['name']!r} created")
            else:
                todo = field_changes(rows[0], desired)
                if todo:
                    if not test:
                        api.script.update(scriptid=scriptid, **todo)
                    changes.append(f"script {desired['name']!r}: {', '.join(sorted(todo))} updated")
            action = scaling_action(direction, scriptid or "0", auto.get("repeat", "15m"), auto.get("enabled", True))
            current = api.action.get(output="extend", filter={"name": action["name"]}, selectFilter="extend",
                                     selectOperations="extend")
            current = current[0] if current else None
            todo = scaling_action_changes(current, action)
            if todo is None:
                if not test:
                    api.action.create(**action)
                changes.append(f"action {action['name']!r} created")
            elif todo:
                if not test:
                    api.action.update(actionid=current["actionid"], **todo)
                changes.append(f"action {action['name']!r}: {', '.join(sorted(todo))} updated")
        return changes
    return _api_call(run)


def ensure_global_macros_with(api, macros, test):
    """ensure_global_macros on an open session: the changes made."""
    rows = api.usermacro.get(output=["globalmacroid", "macro", "value"], globalmacro=True,
                             filter={"macro": sorted(macros)})
    create, update = global_macro_changes(rows, macros)
    if not test:
        for row in create:
            api.usermacro.createglobal(**row)
        for row in update:
            api.usermacro.updateglobal(globalmacroid=row["globalmacroid"], value=row["value"])
    return ([f"global macro {r['macro']} created" for r in create]
            + [f"global macro {r['macro']} set to {r['value']!r}" for r in update])
# --- end of scaling ---


def host_names(ca_file="/etc/zabbix/tls/ca.pem", url=None):
    """Names of every host Zabbix has (scale-in checks: a removed pool node is gone).

    CLI Example::

        salt mon1 lemp_zabbix.host_names
    """
    return _api_call(lambda: sorted(h["host"] for h in _login(url or _monitor_url(), ca_file)
                                    .host.get(output=["host"])))


# --- agent PSK rotation (orch.rotate_secret zabbix_psk, _runners/lemp_secrets.py) ---
#
# The server holds one PSK per host and the agent one: there is no moment
# where either accepts two. So one machine at a time, inside a maintenance
# window for its host: the server's host takes the new PSK first
# (agent_psk_set: the API refuses a malformed key before the agent has it,
# and the restarted agent's first active-checks request finds it), then the
# agent (zabbix.agent.service on the machine: PSK file, restart), then
# agent_psk_back waits until the server has data the new agent sent over the
# new PSK, and the heartbeat's nodata problem, had it fired, is resolved:
# closing the window on an open problem would mail it.

# The heartbeat every host sends every 10 s (template "lemp-ha agent
# reachable", server/files/templates/lemp-ha-reachable.yaml); its trigger
# fires after 30 s without data.
HEARTBEAT_KEY = "vfs.file.exists[/proc/uptime]"
HEARTBEAT_TEMPLATE = "lemp-ha agent reachable"


def agent_back_problem(name, items, problems, since):
    """Why host ``name``'s agent is not back yet, or None: ``items`` the
    heartbeat's item.get rows (lastclock), ``problems`` the unresolved
    problems of its trigger (problem.get rows), ``since`` the epoch second
    after which a value proves the new agent (the old one was stopped by
    then). No item: the host lacks the template, which cannot prove anything."""
    if not items:
        return (f"host {name} has no item {HEARTBEAT_KEY} (template {HEARTBEAT_TEMPLATE!r}): apply "
                "zabbix.server.api on the monitor machine, then run the rotation again")
    newest = max(int(i.get("lastclock") or 0) for i in items)
    if newest < int(since):
        return f"host {name}: no heartbeat since {int(since)} (newest at {newest})"
    if problems:
        return f"host {name}: problem still open: {', '.join(sorted(str(p.get('name')) for p in problems))}"
    return None


def _check_psk(name, psk):
    if not PSK_RE.match(str(psk or "")):
        raise ZabbixSettingsError(f"zabbix:server:agent_psks:{name} is not a hex PSK of at least 16 bytes: "
                                  "the lab generates it (./lab up); production: openssl rand -hex 32")


def agent_psk_set(name, ca_file="/etc/zabbix/tls/ca.pem", url=None):
    """Give Zabbix host ``name`` the PSK of the pillar
    (zabbix:server:agent_psks:<name>), then reload this server's
    configuration cache so that the poller and the trapper use it now (not
    after CacheUpdateFrequency). A host Zabbix does not have is left to
    agent_hosts_present (the next zabbix.server.api).

    CLI Example::

        salt mon1 lemp_zabbix.agent_psk_set web1
    """
    psk = (_pillar("zabbix:server:agent_psks") or {}).get(name)
    _check_psk(name, psk)

    def run():
        api = _login(url or _monitor_url(), ca_file)
        rows = api.host.get(output=["hostid", "host", "tls_connect", "tls_accept"], filter={"host": [name]},
                            selectTags="extend")
        if not rows:
            return {"name": name, "changed": False, "done": ["no Zabbix host: nothing to set"]}
        todo = psk_host_changes(rows[0], name, psk, "0")
        if not todo:
            return {"name": name, "changed": False, "done": ["the host has this PSK already"]}
        api.host.update(hostid=rows[0]["hostid"], **todo)
        return {"name": name, "changed": True, "done": ["PSK set"] + _reload_server_config_cache()}
    return _api_call(run)


def agent_psk_back(name, timeout=120, ca_file="/etc/zabbix/tls/ca.pem", url=None):
    """Wait until host ``name``'s agent, restarted with its new PSK, is back:
    the server received its heartbeat after this call began (only the new
    agent runs by then, and the server accepts only the new PSK), and no
    problem of the heartbeat's trigger is open. Raises after ``timeout``
    seconds naming what is missing.

    CLI Example::

        salt mon1 lemp_zabbix.agent_psk_back web1
    """
    import time  # pylint: disable=import-outside-toplevel

    since = int(time.time())

    def run():
        api = _login(url or _monitor_url(), ca_file)
        deadline = time.monotonic() + int(timeout)
        while True:
            items = api.item.get(output=["itemid", "lastclock"], host=name, filter={"key_": HEARTBEAT_KEY},
                                 selectTriggers=["triggerid"])
            triggerids = sorted({t["triggerid"] for i in items for t in i.get("triggers") or []})
            problems = (api.problem.get(output=["eventid", "name"], objectids=triggerids, source=0, object=0)
                        if triggerids else [])
            why = agent_back_problem(name, items, problems, since)
            if why is None:
                return {"name": name, "back": True, "heartbeat_since": since}
            if not items or time.monotonic() >= deadline:
                raise CommandExecutionError(f"zabbix: the agent of {name} is not back with its new PSK after "
                                            f"{int(timeout)}s: {why}")
            time.sleep(2)  # polling the server's state, bounded by timeout
    return _api_call(run)
