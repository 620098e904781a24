"""
The watchdog of the Zabbix server (issue #10, item 9): what Salt decides.

The watchdog itself is salt/zabbix/watchdog/files/lemp-zabbix-watchdog.py,
run by a systemd timer on the machines of the role named in pillar
``zabbix:lookup:watchdog:role`` (the Salt master by default). This module
computes, from the derived topology and the settings:

* ``watchdog_config``: the script's JSON configuration (the monitor role's
  machines as targets, the timer's interval, the failure threshold, mail);
* ``server_settings``: zabbix_server.conf's settings on the monitor, with
  the watchdogs' addresses added to ``StatsAllowedIP`` (the server answers
  its statistics only to those).

Errors name the pillar key and the fix.
"""

import re

__virtualname__ = "lemp_zabbix_watchdog"

MAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


class WatchdogSettingsError(ValueError):
    """Bad zabbix:lookup:watchdog settings; the message names the key and the fix."""


def __virtual__():
    return __virtualname__


def _members(topology, role):
    return [m for m in ((topology.get("roles") or {}).get(role) or {}).get("members") or []]


def watchdog_addresses(topology, role):
    """Addresses of the machines that run the watchdog."""
    return [m["address"] for m in _members(topology, role)]


def server_settings(settings, topology, role):
    """zabbix_server.conf settings with the watchdogs' addresses appended to
    StatsAllowedIP (kept in order, no duplicates)."""
    merged = dict(settings)
    allowed = [a.strip() for a in str(merged.get("StatsAllowedIP") or "").split(",") if a.strip()]
    for address in watchdog_addresses(topology, role):
        if address not in allowed:
            allowed.append(address)
    if allowed:
        merged["StatsAllowedIP"] = ",".join(allowed)
    return merged


def watchdog_config(topology, settings, trapper_port):
    """The watchdog script's configuration. Raises WatchdogSettingsError for
    a setting that cannot work (the 2-minute promise of issue #10 needs
    interval * threshold well below 120 s)."""
    key = "zabbix:lookup:watchdog"
    interval, threshold, timeout = int(settings["interval"]), int(settings["threshold"]), int(settings["timeout"])
    if not 10 <= interval <= 60:
        raise WatchdogSettingsError(f"{key}:interval is {interval}: give 10 to 60 seconds")
    if threshold < 1:
        raise WatchdogSettingsError(f"{key}:threshold is {threshold}: give 1 or more failed checks")
    if interval * threshold + timeout > 120:
        raise WatchdogSettingsError(
            f"{key}: interval {interval} s x threshold {threshold} + timeout {timeout} s exceeds the "
            f"2 minutes promised for an alert: lower interval or threshold")
    if not 1 <= timeout < interval:
        raise WatchdogSettingsError(f"{key}:timeout is {timeout}: give 1 s to less than the interval")
    mail_to = settings.get("mail_to") or []
    if isinstance(mail_to, str):
        mail_to = [mail_to]
    bad = [m for m in mail_to + [settings.get("mail_from", "")] if not MAIL_RE.match(str(m))]
    if not mail_to or bad:
        raise WatchdogSettingsError(
            f"{key}:mail_to / mail_from: {bad or 'no recipient'} is not an address: give user@domain")
    targets = [{"name": m["name"], "address": m["address"], "port": int(trapper_port)}
               for m in _members(topology, settings["targets_role"])]
    if not targets:
        raise WatchdogSettingsError(
            f"{key}:targets_role: no machine has role {settings['targets_role']!r} in pillar/topology.yaml")
    return {
        "targets": targets,
        "interval": interval,
        "threshold": threshold,
        "timeout": timeout,
        "min_history_free": float(settings["min_history_free"]),
        "mail_to": mail_to,
        "mail_from": settings["mail_from"],
        "smtp_host": "localhost",
        "smtp_port": 25,
        "state_file": settings["state_file"],
    }
