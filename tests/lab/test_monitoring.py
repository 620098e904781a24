"""Acceptance of monitoring (issue 10), on the lab: the first checks.

Needs the lab up with orch.site applied (mon1 last, the `monitoring` tier).
Talks to Zabbix only through its API with the `zabbix_utils` client, over
HTTPS to mon1's address trusting only the lab CA, after the `lab` fixture
checked that every lab address is routed over the lab bridge. Logs in as
Admin with the generated secret (the packaged default must be gone).
mails() and webhook_posts() read the alert mail in mon1's local mailbox
(/var/mail/alerts) and the lab's webhook receiver's log with lab.run, for
the nginx fault of test_monitoring_web.py.
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


# A stopped nginx on a web node opens a problem, mails the lab mailbox and
# posts to the webhook, for the problem and its recovery: proved by
# test_monitoring_web.py's
# test_stopping_nginx_glusterd_and_sentinel_on_a_web_node_opens_mails_and_posts_problems_starting_resolves
# (one stop of nginx, glusterd and Sentinel: their problem cycles overlap;
# mails() and webhook_posts() above are its readers).


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
