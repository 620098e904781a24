"""Acceptance of monitoring (issue 10), on the lab: the first checks.

Needs the lab up with orch.site applied (mon1 last, the `monitoring` tier).
Talks to Zabbix only through its API with the `zabbix_utils` client, over
HTTPS to mon1's address trusting only the lab CA, after the `lab` fixture
checked that every lab address is routed over the lab bridge. Logs in as
Admin with the generated secret (the packaged default must be gone).
Reads alert mail in mon1's local mailbox (/var/mail/alerts) and the lab's
webhook receiver's log with lab.run. Tests that break something put it back
in `finally`.
"""

import json
import pathlib
import re
import ssl
import time

import pytest
import yaml
from zabbix_utils import ZabbixAPI

from lemplab import wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]
MAILBOX = "/var/mail/" + DEFAULTS["server"]["mail"]["mailbox"]
# the lab's webhook receiver on mon1 (salt/zabbix/server/webhook_receiver.sls, on in pillar/monitor.sls)
POSTS = f"/var/log/{DEFAULTS['server']['webhook_receiver']['service']}/posts.jsonl"
FRESH = 300  # seconds: "fresh data" is newer than this


@pytest.fixture(scope="module")
def mon1(lab):
    monitors = lab.with_role("monitor")
    assert monitors, "the topology has no machine with role monitor"
    return monitors[0]


@pytest.fixture(scope="module")
def zabbix(lab, mon1):
    address = lab.machines[mon1]["address"]
    lab.require_route(address)
    context = ssl.create_default_context(cafile=lab.ca_cert_path)
    api = ZabbixAPI(url=f"https://{address}/api_jsonrpc.php", ssl_context=context)
    api.login(user="Admin", password=lab.secrets["passwords"]["zabbix_admin"])
    yield api
    api.logout()


def role_templates(roles):
    wanted = set()
    for role in roles:
        wanted.update(DEFAULTS["server"]["api"]["roles"].get(role, {}).get("templates", []))
    return wanted


def test_the_packaged_admin_password_no_longer_works(lab, mon1, zabbix):
    # `zabbix` logged in with the generated secret: the server answers; the
    # refusal below is about the password, not the connection
    address = lab.machines[mon1]["address"]
    api = ZabbixAPI(url=f"https://{address}/api_jsonrpc.php",
                    ssl_context=ssl.create_default_context(cafile=lab.ca_cert_path))
    with pytest.raises(Exception) as refused:
        api.login(user="Admin", password="zabbix")
    assert "incorrect user name or password" in str(refused.value).lower(), str(refused.value)


def test_every_lab_machine_is_registered_with_its_role_templates_and_fresh_data(lab, zabbix):
    machines = {name: m["roles"] for name, m in lab.machines.items()}

    def registered():
        hosts = zabbix.host.get(output=["hostid", "host"], filter={"host": sorted(machines)},
                                selectParentTemplates=["host"], selectGroups=["name"])
        by_name = {h["host"]: h for h in hosts}
        missing = {}
        for name, roles in machines.items():
            host = by_name.get(name)
            if not host:
                missing[name] = "no host"
                continue
            have = {t["host"] for t in host["parentTemplates"]}
            lacking = role_templates(roles) - have
            groups = {g["name"] for g in host["groups"]}
            lacking_groups = {f"lemp-ha/{r}" for r in roles} - groups
            if lacking or lacking_groups:
                missing[name] = f"templates {sorted(lacking)} groups {sorted(lacking_groups)}"
        registered.last = missing
        return not missing

    wait_for(registered, 300, "every machine registered with its roles' templates and groups", interval=5)

    def fresh():
        now = time.time()
        hosts = zabbix.host.get(output=["hostid", "host"], filter={"host": sorted(machines)})
        stale = []
        for host in hosts:
            items = zabbix.item.get(output=["key_", "lastclock"], hostids=host["hostid"],
                                    filter={"key_": "agent.ping"})
            if not items or now - int(items[0]["lastclock"] or 0) > FRESH:
                stale.append(host["host"])
        fresh.last = stale
        return not stale and len(hosts) == len(machines)

    wait_for(fresh, 300, "fresh agent.ping data from every machine", interval=5)


def mails(lab, mon1):
    out = lab.run(mon1, f"cat {MAILBOX} 2>/dev/null || true").stdout
    return [m for m in re.split(r"(?m)^From ", out) if m.strip()]


def webhook_posts(lab, mon1):
    out = lab.run(mon1, f"cat {POSTS} 2>/dev/null || true").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_stopping_nginx_on_web1_opens_a_problem_mails_the_lab_mailbox_and_posts_to_the_webhook(lab, zabbix, mon1):
    """One stop of nginx, seen by each of the problem's channels: the
    problem in Zabbix, the alert mail and its recovery in the lab mailbox,
    and a JSON POST naming the host, severity, problem and status to the
    webhook receiver, for the problem and for its recovery (one stop for
    both channels: each stop costs a problem and a recovery cycle)."""
    web = lab.with_role("web")[0]
    host = zabbix.host.get(output=["hostid"], filter={"host": web})[0]
    before = len(mails(lab, mon1))
    posts_before = len(webhook_posts(lab, mon1))

    def nginx_posts(status):
        found = []
        for post in webhook_posts(lab, mon1)[posts_before:]:
            body = json.loads(post["body"])
            if body.get("host") == web and "nginx" in body.get("problem", "").lower() \
                    and body.get("status") == status:
                found.append(body)
        return found

    stopped_at = int(lab.run(web, "date +%s").stdout)

    def nginx_problems():
        # only problems opened by this stop: an older one may still be open
        return [p for p in zabbix.problem.get(output=["eventid", "name", "r_eventid", "clock"],
                                              hostids=host["hostid"], recent=True)
                if "nginx" in p["name"].lower() and int(p["clock"]) >= stopped_at]

    lab.run(web, "systemctl stop nginx")
    try:
        wait_for(lambda: any(p["r_eventid"] == "0" for p in nginx_problems()), 300,
                 f"a Zabbix problem about nginx on {web}", interval=1)
        wait_for(lambda: any(web in m and "nginx" in m.lower() for m in mails(lab, mon1)[before:]), 180,
                 f"an alert mail about nginx on {web} in {mon1}:{MAILBOX}", interval=1)
        wait_for(lambda: nginx_posts("PROBLEM"), 300, f"a webhook POST about nginx on {web} on {mon1}:{POSTS}",
                 interval=1)
    finally:
        lab.run(web, "systemctl start nginx")
    body = nginx_posts("PROBLEM")[0]
    assert body["severity"] and body["problem"], body
    after_problem = len(mails(lab, mon1))
    wait_for(lambda: all(p["r_eventid"] != "0" for p in nginx_problems()), 300,
             f"the nginx problem on {web} resolved", interval=1)
    wait_for(lambda: any("resolved" in m.lower() and web in m and "nginx" in m.lower()
                         for m in mails(lab, mon1)[after_problem:]), 180,
             f"the recovery mail about nginx on {web}", interval=1)
    wait_for(lambda: nginx_posts("RESOLVED"), 300, f"the webhook POST of the recovery of nginx on {web}", interval=1)


def test_a_second_highstate_on_mon1_makes_no_api_change(lab, mon1):
    # A first apply takes in what the platform grew since orch.site: the
    # dashboard's widgets follow the items Zabbix discovers meanwhile (LLD of
    # HAProxy's frontends...), a change of data, not of configuration. The
    # apply right after it must change nothing.
    first = lab.salt(mon1, "state.apply", "zabbix.server.api", timeout=900).get(mon1) or {}
    assert isinstance(first, dict), first
    assert all(s.get("result") for s in first.values()), {k: s.get("comment") for k, s in first.items()
                                                          if not s.get("result")}
    result = lab.salt(mon1, "state.apply", "zabbix.server.api", timeout=900)
    states = result.get(mon1) or {}
    assert isinstance(states, dict), states
    changed = {sid: s.get("changes") for sid, s in states.items() if s.get("changes")}
    failed = {sid: s.get("comment") for sid, s in states.items() if not s.get("result")}
    assert not failed, failed
    assert not changed, changed
