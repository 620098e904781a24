"""Edge protection (issue #13 item 4): the pillar of HAProxy's public
frontends and of nginx's /healthz, checked and put in the shape the templates
write as they are.

* ``haproxy``: pillar ``haproxy:lookup:edge`` (salt/haproxy/defaults.yaml):
  the per-client rate limit (a stick table, 429 above it, the admin network
  exempt), the slowloris timeouts, the request size limits, the security
  headers set on responses the app left without them, the headers removed
  (versions); plus who reads the monitoring stats without a login (this LB
  itself: Zabbix's agent on it).
* ``stats_login``: the stats pages' user and its generated password
  (secret ``haproxy:stats_password``).
* ``healthz_details_from``: the addresses nginx shows /healthz's details
  (node, release, the database's error) to; everyone else gets the status.

Pure functions: errors name the pillar key and the fix, and stop the render
before anything changes on a machine.
"""

import ipaddress
import json
import math
import re

__virtualname__ = "lemp_edge"

try:  # Salt's error shows in the render as it is; the unit tests run without Salt
    from salt.exceptions import CommandExecutionError as EdgeSettingsError
except ImportError:  # pragma: no cover
    EdgeSettingsError = ValueError

EDGE = "haproxy:lookup:edge"
# HAProxy's time format (us, ms, s, m, h, d; no unit: milliseconds).
TIME_RE = re.compile(r"^([0-9]+)(us|ms|s|m|h|d)?$")
TIME_MS = {"us": 0.001, "ms": 1, "": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
SIZE_RE = re.compile(r"^([0-9]+)([kmg]?)$")
HEADER_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
# Written into haproxy.cfg between single quotes (nothing is interpreted
# there) as a log-format string (a % starts a tag: doubled below).
HEADER_VALUE_RE = re.compile(r"^[\x20-\x7e]{1,1024}$")
# The stats user, and its password in a userlist line.
USER_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
PASSWORD_RE = re.compile(r"^[A-Za-z0-9._~+=/-]{16,128}$")
# Never removed nor replaced by the edge: HAProxy's own protocol headers.
RESERVED_HEADERS = {"content-length", "transfer-encoding", "connection", "set-cookie", "location",
                    "strict-transport-security"}


def __virtual__():
    return __virtualname__


def _show(value):
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _time_ms(value, key):
    match = TIME_RE.match(str(value).strip()) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if not match:
        raise EdgeSettingsError(f"{key} {_show(value)} is not a HAProxy time: a number with us, ms, s, m, h or d, "
                                "e.g. 10s")
    ms = int(match.group(1)) * TIME_MS[match.group(2) or ""]
    if ms <= 0:
        raise EdgeSettingsError(f"{key} {_show(value)} must be above 0")
    return ms


def _positive_int(value, key):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EdgeSettingsError(f"{key} {_show(value)} must be a whole number above 0")
    return value


def _bytes(value, key):
    """A size as nginx writes one (20m, 512k, 1g, a number of bytes); 0: no limit."""
    match = SIZE_RE.match(str(value).strip().lower()) if not isinstance(value, bool) else None
    if not match:
        raise EdgeSettingsError(f"{key} {_show(value)} is not a size: a number with an optional k, m or g, "
                                "e.g. 100m (0: no limit)")
    return int(match.group(1)) * 1024 ** " kmg".index(match.group(2) or " ")


def _sources(value, key):
    """Addresses or networks (CIDR), as strings HAProxy's and nginx's ACLs take."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise EdgeSettingsError(f"{key} must be a list of addresses or networks (e.g. [10.77.0.1, 192.0.2.0/24])")
    out = []
    for item in value:
        try:
            network = ipaddress.ip_network(str(item), strict=True)
        except ValueError:
            raise EdgeSettingsError(f"{key}: {_show(item)} is not an address nor a network (a.b.c.d or a.b.c.d/n "
                                    "with no host bits set)") from None
        text = str(network.network_address) if network.num_addresses == 1 else str(network)
        if text not in out:
            out.append(text)
    return out


def _section(edge, name):
    value = edge.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EdgeSettingsError(f"{EDGE}:{name} must be a mapping (see salt/haproxy/pillar.example)")
    return value


def header_value(value, key):
    """``value`` as a single-quoted HAProxy log-format argument."""
    if not isinstance(value, str) or not HEADER_VALUE_RE.match(value) or "'" in value:
        raise EdgeSettingsError(f"{key} {_show(value)} cannot be written to haproxy.cfg: printable ASCII without ' "
                                "(1 to 1024 characters)")
    return "'" + value.replace("%", "%%") + "'"


def _header_name(name, key):
    if not isinstance(name, str) or not HEADER_NAME_RE.match(name):
        raise EdgeSettingsError(f"{key}: {_show(name)} is not a header name (letters, digits and -)")
    if name.lower() in RESERVED_HEADERS:
        raise EdgeSettingsError(f"{key}: {name} is not the edge's to change (HAProxy or the app sets it)")
    return name


def haproxy(edge, machines=None, minion_id=None):
    """The edge settings of haproxy.cfg from pillar ``haproxy:lookup:edge``
    (defaults merged), checked. ``machines`` and ``minion_id`` (topology)
    give this LB's own address: its local agent reads the monitoring stats
    without a login (Zabbix's "HAProxy by Zabbix agent" uses web.page.get,
    which cannot authenticate)."""
    if not isinstance(edge, dict):
        raise EdgeSettingsError(f"{EDGE} must be a mapping (see salt/haproxy/pillar.example)")
    timeouts = _section(edge, "timeouts")
    checked_timeouts = {}
    for name in ("client", "http_request", "http_keep_alive"):
        key = f"{EDGE}:timeouts:{name}"
        if name not in timeouts:
            raise EdgeSettingsError(f"{key} is missing (salt/haproxy/defaults.yaml has it)")
        _time_ms(timeouts[name], key)
        checked_timeouts[name] = str(timeouts[name]).strip()
    # The whole request head must come in time; a longer wait than an idle
    # client is allowed would never apply.
    if _time_ms(timeouts["http_request"], "") > _time_ms(timeouts["client"], ""):
        raise EdgeSettingsError(f"{EDGE}:timeouts:http_request ({timeouts['http_request']}) is longer than "
                                f"{EDGE}:timeouts:client ({timeouts['client']}): a slow client would be cut by "
                                "the client timeout first; make http_request the shorter")

    limit = _section(edge, "rate_limit")
    enabled = limit.get("enabled", True)
    if not isinstance(enabled, bool):
        raise EdgeSettingsError(f"{EDGE}:rate_limit:enabled {_show(enabled)} must be true or false")
    period_ms = _time_ms(limit.get("period"), f"{EDGE}:rate_limit:period")
    rate_limit = {
        "enabled": enabled,
        "requests": _positive_int(limit.get("requests"), f"{EDGE}:rate_limit:requests"),
        "period": str(limit.get("period")).strip(),
        # seconds a limited client is told to wait (Retry-After): the window
        "retry_after": max(1, math.ceil(period_ms / 1000)),
        "table_size": _positive_int(limit.get("table_size"), f"{EDGE}:rate_limit:table_size"),
        "exempt": _sources(limit.get("exempt"), f"{EDGE}:rate_limit:exempt"),
    }

    request = _section(edge, "request")
    max_headers = _positive_int(request.get("max_headers"), f"{EDGE}:request:max_headers")
    # HAProxy itself refuses more than tune.http.maxhdr (101) with a 400.
    if max_headers > 100:
        raise EdgeSettingsError(f"{EDGE}:request:max_headers {max_headers} is above HAProxy's own limit of 100 "
                                "(tune.http.maxhdr, which answers 400): set at most 100")
    checked_request = {"max_headers": max_headers,
                       "max_body_bytes": _bytes(request.get("max_body", 0), f"{EDGE}:request:max_body")}

    headers = edge.get("headers") or {}
    if not isinstance(headers, dict):
        raise EdgeSettingsError(f"{EDGE}:headers must map a header name to its value")
    checked_headers = []
    for name in sorted(headers):
        key = f"{EDGE}:headers:{name}"
        _header_name(name, f"{EDGE}:headers")
        if headers[name] in (None, ""):  # a default header turned off in the pillar
            continue
        if name.lower() == "content-security-policy":
            raise EdgeSettingsError(f"{key}: the content security policy is the app's to set (it knows its own "
                                    "scripts and origins); remove it from the pillar")
        checked_headers.append({"name": name, "value": header_value(headers[name], key)})

    hide = edge.get("hide_headers") or []
    if not isinstance(hide, list):
        raise EdgeSettingsError(f"{EDGE}:hide_headers must be a list of header names")
    hidden = [_header_name(name, f"{EDGE}:hide_headers") for name in hide]
    clash = sorted({h["name"].lower() for h in checked_headers} & {h.lower() for h in hidden})
    if clash:
        raise EdgeSettingsError(f"{EDGE}: {', '.join(clash)} is both in headers and in hide_headers: keep one")

    local = ["127.0.0.1"]
    own = ((machines or {}).get(minion_id) or {}).get("address") if minion_id else None
    if own and own not in local:
        local.append(str(own))
    return {"timeouts": checked_timeouts, "rate_limit": rate_limit, "request": checked_request,
            "headers": checked_headers, "hide_headers": hidden, "local_stats_readers": local}


def stats_login(user, password):
    """The stats pages' login: ``user`` (haproxy:lookup:stats_user) and the
    generated secret haproxy:stats_password, checked for a userlist line."""
    if not isinstance(user, str) or not USER_RE.match(user):
        raise EdgeSettingsError(f"haproxy:lookup:stats_user {_show(user)} must be lower-case letters, digits, "
                                "_ or - (up to 32, a letter first)")
    if not isinstance(password, str) or not PASSWORD_RE.match(password):
        raise EdgeSettingsError("secret haproxy:stats_password must be 16 to 128 letters, digits or ._~+=/- "
                                "(the lab generates 32 letters and digits; docs/secrets.md)")
    return {"user": user, "password": password}


def healthz_details_from(configured, lb_addresses=()):
    """Who sees /healthz's details (node, release, the database's error):
    loopback (the node's own checks, orch.deploy), the load balancers
    (HAProxy's check) and pillar nginx:lookup:health:details_from (the
    admin network). The public sees only the status and the code."""
    sources = ["127.0.0.1"]
    for item in _sources(list(lb_addresses or []), "topology roles lb members") + _sources(
            configured, "nginx:lookup:health:details_from"):
        if item not in sources:
            sources.append(item)
    return sources
