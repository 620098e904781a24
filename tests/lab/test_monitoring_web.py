"""Monitoring of the web tier (issue 10), on the lab.

A healthy lab raises no problem on the web and lb hosts (the shipped Nginx,
PHP-FPM, Redis and HAProxy templates find their status pages through the
host macros mon1 sets per role), their items have fresh data, and the
repo's own nginx, GlusterFS and Redis Sentinel templates see a stopped
nginx, glusterd and Sentinel on one web node, and their return; nginx's
problem and recovery reach the lab mailbox and the webhook (issue 10).

Needs the lab up with orch.site applied, as tests/lab/test_monitoring.py
(whose `mon1` and `zabbix` fixtures these tests share). Tests that stop a
service start it again in `finally`.
"""

import json
import time

import yaml

from lemplab import wait_for
from test_monitoring import MAILBOX, POSTS, REPO, mails, mon1, webhook_posts, zabbix  # noqa: F401  (shared fixtures)

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


def stop_opens_and_start_resolves(lab, zabbix, faults, while_stopped=None, once_resolved=None):  # noqa: F811
    """Stop each service of `faults` ({service: problem}) on the first web
    node at once: for each, the problem whose name holds its `problem`
    opens on it; start them: those problems resolve. One stop for all: each
    fault's problem and recovery cycle, and the wait for the tier to settle
    after it, overlap (the services are independent: each has its own
    template and trigger). `while_stopped(web, stopped_at)` runs once every
    problem is open, before the start; `once_resolved()` once every one
    has resolved (what else a fault must show: its mails, its posts)."""
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
        if while_stopped:
            while_stopped(web, stopped_at)
    finally:
        lab.run(web, f"systemctl start {' '.join(faults)}")
    for service, problem in faults.items():
        wait_for(lambda p=problem: not [o for o in open_problems(zabbix, [hostid]) if p in o["name"]], 120,
                 f"the problem '{problem}' on {web} resolved after starting {service}", interval=2)
    if once_resolved:
        once_resolved()
    # nothing else of the web tier stays broken (peers saw the brick away, for instance)
    hosts = hosts_of(lab, zabbix, ["web", "lb", "arbitrator"])
    wait_for(lambda: not [p for p in open_problems(zabbix, hosts.values()) if p["lastchange"] >= stopped_at],
             180, f"every problem opened since {' and '.join(faults)} stopped on {web} resolved", interval=1)


def test_stopping_nginx_glusterd_and_sentinel_on_a_web_node_opens_mails_and_posts_problems_starting_resolves(
        lab, zabbix, mon1):  # noqa: F811
    """One stop of nginx, glusterd and Redis Sentinel on the first web node
    (issue 10): each one's problem opens and resolves; nginx's is seen by
    each of the problem's channels: the alert mail and its recovery in the
    lab mailbox, and a JSON POST naming the host, severity, problem and
    status to the webhook receiver, for the problem and for its recovery.
    One stop for the three: each stop costs a problem and a recovery cycle
    (was two tests, nginx's in test_monitoring.py)."""
    before = len(mails(lab, mon1))
    posts_before = len(webhook_posts(lab, mon1))
    seen = {}

    def nginx_posts(web, status):
        found = []
        for post in webhook_posts(lab, mon1)[posts_before:]:
            body = json.loads(post["body"])
            if body.get("host") == web and "nginx" in body.get("problem", "").lower() \
                    and body.get("status") == status:
                found.append(body)
        return found

    def problem_mailed_and_posted(web, stopped_at):
        seen["web"] = web
        wait_for(lambda: any(web in m and "nginx" in m.lower() for m in mails(lab, mon1)[before:]), 180,
                 f"an alert mail about nginx on {web} in {mon1}:{MAILBOX}", interval=1)
        body = wait_for(lambda: nginx_posts(web, "PROBLEM"), 300,
                        f"a webhook POST about nginx on {web} on {mon1}:{POSTS}", interval=1)[0]
        assert body["severity"] and body["problem"], body
        # recovery mails come after the start: count from here
        seen["after_problem"] = len(mails(lab, mon1))

    def recovery_mailed_and_posted():
        web, after_problem = seen["web"], seen["after_problem"]
        wait_for(lambda: any("resolved" in m.lower() and web in m and "nginx" in m.lower()
                             for m in mails(lab, mon1)[after_problem:]), 180,
                 f"the recovery mail about nginx on {web}", interval=1)
        wait_for(lambda: nginx_posts(web, "RESOLVED"), 300, f"the webhook POST of the recovery of nginx on {web}",
                 interval=1)

    stop_opens_and_start_resolves(lab, zabbix, {"nginx": "nginx is down",
                                                "glusterd": "glusterd does not answer",
                                                "redis-sentinel": "Redis Sentinel does not answer"},
                                  while_stopped=problem_mailed_and_posted, once_resolved=recovery_mailed_and_posted)
