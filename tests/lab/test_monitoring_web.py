"""Monitoring of the web tier (issue 10), on the lab.

A healthy lab raises no problem on the web and lb hosts (the shipped Nginx,
PHP-FPM, Redis and HAProxy templates find their status pages through the
host macros mon1 sets per role), their items have fresh data, and the
repo's own GlusterFS and Redis Sentinel templates see a stopped glusterd or
Sentinel on one web node, and its return.

Needs the lab up with orch.site applied, as tests/lab/test_monitoring.py
(whose `mon1` and `zabbix` fixtures these tests share). Tests that stop a
service start it again in `finally`.
"""

import time

import yaml

from lemplab import wait_for
from test_monitoring import REPO, mon1, zabbix  # noqa: F401  (shared fixtures)

DEFAULTS = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]
FRESH = 180  # seconds: the shipped templates poll their pages every minute
# Problems that report a true recent event, not a fault of the platform or
# of its monitoring: a service restarted in the last 10 minutes (earlier
# tests restart them), Sentinel moved the sessions master (the shipped Redis
# template wants it acknowledged by hand). Everything else is a false alarm
# on a healthy lab.
EVENTS = ("has been restarted", "Replication role has changed")
SETTLE = 240  # seconds: the shipped templates poll their pages every minute
SEVERITIES = ["not classified", "information", "warning", "average", "high", "disaster"]
# An item of each template fed by what the platform serves, recognised by
# its key: values parsed from the status pages (the templates' master
# web.page.get items keep no history, so they never show a last value).
STATUS_ITEMS = {
    "web": {"nginx": lambda key: key == "nginx.connections.active",
            "php-fpm status": lambda key: key == "php-fpm.processes_active",
            "php-fpm ping": lambda key: key == "php-fpm.ping",
            "redis": lambda key: key.startswith("redis.info["),
            "sentinel": lambda key: key == "lemp.sentinel.ckquorum",
            # the status file's item, not any vfs.file.contents: the Linux
            # template's interface discovery adds one per NIC, collected hourly
            "glusterfs": lambda key: key == "vfs.file.contents[{$GLUSTER.STATUS.FILE}]",
            # lemp-ha Web node health: the node's own /healthz/deep (issue #14); on a
            # healthy lab its trigger stays quiet (test_a_healthy_lab_has_no_open_problem_on_web_and_lb_hosts)
            "healthz deep": lambda key: key == "lemp.web.healthz.deep"},
    "lb": {"haproxy": lambda key: key.startswith("haproxy.frontend.scur["),
           "sentinel": lambda key: key == "lemp.sentinel.ckquorum"},
}


def hosts_of(lab, zabbix, roles):  # noqa: F811
    names = sorted({name for role in roles for name in lab.with_role(role)})
    hosts = zabbix.host.get(output=["hostid", "host"], filter={"host": names})
    assert len(hosts) == len(names), f"hosts missing in Zabbix: {set(names) - {h['host'] for h in hosts}}"
    return {h["host"]: h["hostid"] for h in hosts}


def open_problems(zabbix, hostids):  # noqa: F811
    """Triggers in the PROBLEM state on these hosts, as 'host: name (severity)'."""
    triggers = zabbix.trigger.get(output=["description", "priority", "lastchange"], hostids=list(hostids),
                                  filter={"value": 1}, monitored=True, expandDescription=True,
                                  selectHosts=["host"])
    return [{"host": t["hosts"][0]["host"], "name": t["description"], "lastchange": int(t["lastchange"]),
             "severity": SEVERITIES[int(t["priority"])]} for t in triggers]


def test_a_healthy_lab_has_no_open_problem_on_web_and_lb_hosts(lab, zabbix):  # noqa: F811
    hosts = hosts_of(lab, zabbix, ["web", "lb"])

    def none_open():
        problems = [p for p in open_problems(zabbix, hosts.values()) if not any(e in p["name"] for e in EVENTS)]
        none_open.last = problems
        return not problems

    try:
        wait_for(none_open, SETTLE, "no open problem on the web and lb hosts", interval=2)
    except AssertionError:
        listed = "\n".join(f"  {p['host']}: {p['name']} ({p['severity']})" for p in none_open.last)
        raise AssertionError(f"open problems on a healthy lab after {SETTLE}s:\n{listed}") from None


def test_web_and_lb_status_items_have_fresh_data(lab, zabbix):  # noqa: F811
    wanted = {}
    for role, kinds in STATUS_ITEMS.items():
        for name in lab.with_role(role):
            wanted.setdefault(name, {}).update(kinds)
    hosts = hosts_of(lab, zabbix, list(STATUS_ITEMS))

    def fresh():
        now = time.time()
        stale = []
        for name, kinds in sorted(wanted.items()):
            items = zabbix.item.get(output=["key_", "lastclock", "state", "error"], hostids=hosts[name])
            for kind, match in sorted(kinds.items()):
                found = [i for i in items if match(i["key_"])]
                if not found:
                    stale.append(f"{name}: no {kind} item")
                for item in found:
                    age = now - int(item["lastclock"] or 0)
                    if item["state"] != "0" or age > FRESH:
                        stale.append(f"{name}: {kind} {item['key_']} age {int(age)}s {item['error']!r}")
        fresh.last = stale
        return not stale

    try:
        wait_for(fresh, 300, "fresh data on every web and lb status item", interval=2)
    except AssertionError:
        raise AssertionError("stale or unsupported items:\n  " + "\n  ".join(fresh.last)) from None


def stop_opens_and_start_resolves(lab, zabbix, faults):  # noqa: F811
    """Stop each service of `faults` ({service: problem}) on the first web
    node at once: for each, the problem whose name holds its `problem`
    opens on it; start them: those problems resolve. One stop for all: each
    fault's problem and recovery cycle, and the wait for the tier to settle
    after it, overlap (the services are independent: each has its own
    template and trigger)."""
    web = lab.with_role("web")[0]
    hostid = hosts_of(lab, zabbix, ["web"])[web]
    stopped_at = int(lab.run(web, "date +%s").stdout)

    def opened(problem):
        return [p for p in open_problems(zabbix, [hostid])
                if problem in p["name"] and p["lastchange"] >= stopped_at]

    lab.run(web, f"systemctl stop {' '.join(faults)}")
    try:
        # (how fast: bench/monitoring_alerts.py; a test asserts it opens)
        for service, problem in faults.items():
            wait_for(lambda p=problem: opened(p), 120, f"the problem '{problem}' on {web} after stopping {service}",
                     interval=2)
    finally:
        lab.run(web, f"systemctl start {' '.join(faults)}")
    for service, problem in faults.items():
        wait_for(lambda p=problem: not [o for o in open_problems(zabbix, [hostid]) if p in o["name"]], 120,
                 f"the problem '{problem}' on {web} resolved after starting {service}", interval=2)
    # nothing else of the web tier stays broken (peers saw the brick away, for instance)
    hosts = hosts_of(lab, zabbix, ["web", "lb", "arbitrator"])
    wait_for(lambda: not [p for p in open_problems(zabbix, hosts.values()) if p["lastchange"] >= stopped_at],
             180, f"every problem opened since {' and '.join(faults)} stopped on {web} resolved", interval=1)


def test_stopping_glusterd_and_sentinel_on_a_web_node_opens_their_problems_and_starting_them_resolves_them(
        lab, zabbix):  # noqa: F811
    stop_opens_and_start_resolves(lab, zabbix, {"glusterd": "glusterd does not answer",
                                                "redis-sentinel": "Redis Sentinel does not answer"})
