"""
Logs where staff can read them (issue #10, item 8): what rsyslog forwards
from each machine, and where the collector (the monitor role's machine) is.

Pure functions over the derived topology and the settings of
salt/rsyslog/defaults.yaml (pillar ``rsyslog:lookup``); the states only
render what these return:

* ``collector``: the machine that receives every machine's logs, the first
  member of the monitor role (mon1), or None when the topology has none;
* ``client_inputs``: the log files this machine's roles write, which rsyslog
  reads with imfile (the rest of a machine's logs already reach rsyslog
  through journald and /dev/log);
* ``check_server``: the collector's settings (port, retention, the streams
  Zabbix watches), refused with the pillar key when wrong.

Every error names the pillar key and the fix.
"""

import re

__virtualname__ = "lemp_logs"

# A tag becomes a file name on the collector (/var/log/remote/<host>/<tag>.log)
# and rsyslog's programname: letters, digits, '-' and '_' only.
TAG_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# A stream of the collector (/var/log/remote/_watched/<stream>.log).
STREAM_RE = TAG_RE


try:
    from salt.exceptions import CommandExecutionError
except ImportError:  # pragma: no cover - tests without salt

    class CommandExecutionError(Exception):
        pass


class LogSettingsError(CommandExecutionError, ValueError):
    """Bad rsyslog settings; the message names the pillar key and the fix.
    A CommandExecutionError, so that a render stops with this message."""


def __virtual__():
    return __virtualname__


def _raise(message):
    raise LogSettingsError(message)


def collector(topology):
    """The machine that receives every machine's logs: {name, address} of
    the first machine with role monitor, or None when there is none."""
    members = ((topology or {}).get("roles") or {}).get("monitor", {}).get("members") or []
    if not members:
        return None
    first = members[0]
    return {"name": first["name"], "address": first["address"]}


def client_inputs(roles, files_by_role):
    """The files rsyslog reads (imfile) on a machine with ``roles``: a list of
    {tag, path}, each tag once, sorted by tag. ``files_by_role`` is pillar
    rsyslog:lookup:client:files, role -> {tag: path}. A tag given by two roles
    must name the same file."""
    chosen = {}
    for role in roles or []:
        files = (files_by_role or {}).get(role) or {}
        if not isinstance(files, dict):
            _raise(f"rsyslog:lookup:client:files:{role} must map a tag to a log file path, "
                   f"e.g. nginx-access: /var/log/nginx/access.log")
        for tag, path in files.items():
            key = f"rsyslog:lookup:client:files:{role}:{tag}"
            if not isinstance(tag, str) or not TAG_RE.match(tag):
                _raise(f"{key}: the tag must be 1-32 lower-case letters, digits, '-' or '_', starting "
                       f"with a letter (it names the file on the collector)")
            if not isinstance(path, str) or not path.startswith("/") or any(c in path for c in "\"\n*?"):
                _raise(f"{key}: {path!r} is not an absolute file path (no quotes, no wildcards)")
            if tag in chosen and chosen[tag] != path:
                _raise(f"{key}: tag {tag} already reads {chosen[tag]}; give this file another tag")
            chosen[tag] = path
    return [{"tag": tag, "path": chosen[tag]} for tag in sorted(chosen)]


def _positive_int(value, key, low=1, high=None):
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
        bounds = f"{low}..{high}" if high else f"at least {low}"
        _raise(f"{key}: {value!r} must be a whole number, {bounds}")
    return value


def check_server(settings):
    """The collector's settings (pillar rsyslog:lookup:server), checked:
    returns them, with every stream's programs as a sorted list."""
    settings = dict(settings or {})
    _positive_int(settings.get("port"), "rsyslog:lookup:server:port", 1, 65535)
    _positive_int(settings.get("retention_days"), "rsyslog:lookup:server:retention_days", 1, 3650)
    directory = settings.get("directory")
    if not isinstance(directory, str) or not re.match(r"^/[A-Za-z0-9/._-]+$", directory) or ".." in directory:
        _raise(f"rsyslog:lookup:server:directory: {directory!r} must be an absolute path, e.g. /var/log/remote")
    group = settings.get("group")
    if not isinstance(group, str) or not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", group):
        _raise(f"rsyslog:lookup:server:group: {group!r} is not a valid group name")
    streams = settings.get("watched") or {}
    if not isinstance(streams, dict):
        _raise("rsyslog:lookup:server:watched must map a stream name to the programs it gathers")
    checked = {}
    for stream, programs in streams.items():
        key = f"rsyslog:lookup:server:watched:{stream}"
        if not isinstance(stream, str) or not STREAM_RE.match(stream):
            _raise(f"{key}: the stream name must be lower-case letters, digits, '-' or '_'")
        if not isinstance(programs, list) or not programs or not all(
                isinstance(p, str) and re.match(r"^[A-Za-z0-9._-]{1,64}$", p) for p in programs):
            _raise(f"{key}: list the programs (syslog tags) whose lines go to {stream}.log, e.g. [nginx-error]")
        checked[stream] = sorted(set(programs))
    settings["watched"] = checked
    return settings
