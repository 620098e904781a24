"""
The scaling settings (pillar ``scaling:``, defaults in
salt/scaling/defaults.yaml), checked in one place for the master's runner
(_runners/lemp_scale.py) and the monitor's Zabbix states
(salt/zabbix/server/scaling.sls, through salt/scaling/map.jinja).

A bad value stops the render (or the plan) naming the pillar key and the
fix, before anything is touched.
"""

import re

try:
    from salt.exceptions import CommandExecutionError
except ImportError:  # pragma: no cover - unit tests without salt

    class CommandExecutionError(Exception):
        pass


__virtualname__ = "lemp_scaling"

# A Zabbix time suffix as triggers take it (s, m, h, d, w), e.g. 5m.
TIME_RE = re.compile(r"^([1-9][0-9]*)([smhdw]?)$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DIRECTIONS = ("out", "in")
# The load is read every scaling:autoscale:interval; the agent answers
# within its Timeout (4 s, salt/zabbix/defaults.yaml), so not more often
# than this. A window must hold this many readings: one busy reading (a
# burst) never scales the tier.
MIN_INTERVAL = 5
MIN_READINGS = 3


def __virtual__():
    return __virtualname__


def seconds(value, key):
    """Seconds of a Zabbix time suffix (``5m`` -> 300), or raise naming ``key``."""
    match = TIME_RE.match(str(value))
    if not match:
        raise CommandExecutionError(f"pillar {key} {value!r} is not a Zabbix time (e.g. 300s, 5m, 1h)")
    return int(match.group(1)) * UNITS[match.group(2)]


def _number(settings, path, key, low=None, high=None):
    value = settings
    for part in path:
        value = (value or {}).get(part) if isinstance(value, dict) else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CommandExecutionError(f"pillar {key} {value!r} is not a number (salt/scaling/pillar.example)") from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise CommandExecutionError(f"pillar {key} {value!r} must be between {low} and {high}")
    return number


def check(settings):
    """``settings`` (defaults merged with pillar ``scaling``), unchanged, or
    raise CommandExecutionError naming the key at fault and the fix.

    CLI Example::

        salt mon1 lemp_scaling.check "$(salt-call --out=json pillar.get scaling)"
    """
    if not isinstance(settings, dict):
        raise CommandExecutionError("pillar scaling must be a mapping (salt/scaling/pillar.example)")
    cooldown = _number(settings, ["cooldown"], "scaling:cooldown", 60, 86400)
    _number(settings, ["enrol_timeout"], "scaling:enrol_timeout", 30, 7200)
    _number(settings, ["drain_timeout"], "scaling:drain_timeout", 1, 7200)
    auto = settings.get("autoscale") or {}
    high = _number(settings, ["autoscale", "high"], "scaling:autoscale:high", 0.01, 1)
    low = _number(settings, ["autoscale", "low"], "scaling:autoscale:low", 0, 1)
    if low >= high:
        raise CommandExecutionError(f"pillar scaling:autoscale:low {low} must be below scaling:autoscale:high {high}: "
                                    "between them the tier neither grows nor shrinks")
    interval = seconds(auto.get("interval"), "scaling:autoscale:interval")
    if not MIN_INTERVAL <= interval <= 3600:
        raise CommandExecutionError(f"pillar scaling:autoscale:interval {auto.get('interval')!r} must be "
                                    f"{MIN_INTERVAL}s..1h: the agent may take {MIN_INTERVAL - 1} s to answer "
                                    "(zabbix:lookup:agent:settings:Timeout)")
    window = seconds(auto.get("window"), "scaling:autoscale:window")
    if window < MIN_READINGS * interval:
        raise CommandExecutionError(f"pillar scaling:autoscale:window {auto.get('window')!r} holds fewer than "
                                    f"{MIN_READINGS} readings of scaling:autoscale:interval {auto.get('interval')!r}: "
                                    f"make it at least {MIN_READINGS * interval}s, or one busy reading would "
                                    "scale the tier")
    repeat = seconds(auto.get("repeat"), "scaling:autoscale:repeat")
    if not 60 <= repeat <= 604800:
        raise CommandExecutionError(f"pillar scaling:autoscale:repeat {auto.get('repeat')!r} must be 1m..1w "
                                    "(Zabbix's escalation period)")
    if cooldown < window:
        raise CommandExecutionError(f"pillar scaling:cooldown {int(cooldown)} s is shorter than scaling:autoscale:window"
                                    f" ({window} s): the load a scaling changes would be judged before it shows")
    for part in ("minion", "up", "destroy"):
        if not str((settings.get("cloud") or {}).get(part) or ""):
            raise CommandExecutionError(f"pillar scaling:cloud:{part} is empty (salt/scaling/pillar.example)")
    command = str((settings.get("request") or {}).get("command") or "")
    if not command.startswith("/") or any(c.isspace() for c in command):
        raise CommandExecutionError(f"pillar scaling:request:command {command!r} must be an absolute path without "
                                    "spaces (sudoers names it exactly)")
    return settings


def sudoers_lines(user, command):
    """The sudoers rule letting ``user`` (Zabbix's) run ``command out`` and
    ``command in`` as root, and nothing else: no other argument, no shell."""
    return [f"{user} ALL=(root) NOPASSWD: {command} {direction}" for direction in DIRECTIONS]
