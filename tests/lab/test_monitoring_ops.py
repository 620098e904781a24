"""Acceptance of issue 10's maintenance windows, webhook and dashboard, on
the lab (orch.site applied, mon1 up). Talks to Zabbix through its API with
the zabbix_utils client (the `zabbix` fixture of test_monitoring.py: HTTPS
to mon1 trusting only the lab CA, Admin with the generated secret).

* orch.deploy opens a maintenance window and closes it: read afterwards in
  Zabbix's audit log (resource "maintenance", added then deleted, named
  after orch.deploy), so the test needs no sleep and no race with the run;
* a problem opened by stopping nginx on web1 reaches the lab's webhook
  receiver on mon1 (salt/zabbix/server/webhook_receiver.sls, on in the lab
  pillar) as a JSON POST naming the host, severity, problem and status;
* the "Platform overview" dashboard exists, shared read-only with staff and
  read-write with ops, with its widgets.
"""

import json
import pathlib

import yaml

from lemplab import wait_for
from test_monitoring import mon1, zabbix  # noqa: F401  (fixtures)
from web_helpers import web_names

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]
RECEIVER = DEFAULTS["server"]["webhook_receiver"]
POSTS = f"/var/log/{RECEIVER['service']}/posts.jsonl"
DASHBOARD = DEFAULTS["server"]["api"]["dashboard"]
APP_DIR = "/srv/www/app"
AUDIT_MAINTENANCE = 27          # auditlog resourcetype "maintenance" (6.0)
AUDIT_ADD, AUDIT_DELETE = 0, 2  # auditlog actions


def text(out):
    return (out if isinstance(out, str) else getattr(out, "stdout", str(out))).strip()


def test_orch_deploy_opens_a_maintenance_window_and_closes_it(lab, zabbix):
    web = web_names(lab)[0]
    # redeploy the current release: the window is what is under test
    version = text(lab.run(web, f"readlink {APP_DIR}/current")).rsplit("/", 1)[-1]
    started = int(text(lab.run(web, "date +%s")))
    ok, detail = lab.orchestrate("orch.deploy", {"app": {"version": version}})
    assert ok, detail

    records = zabbix.auditlog.get(output="extend", filter={"resourcetype": AUDIT_MAINTENANCE},
                                  time_from=started - 5, sortfield="clock", sortorder="ASC")
    ours = [r for r in records if "orch.deploy" in r.get("resourcename", "")]
    names = {r["resourcename"] for r in ours}
    assert len(names) == 1, f"one window named after orch.deploy, got {names} ({records})"
    actions = [int(r["action"]) for r in ours]
    assert actions[0] == AUDIT_ADD and AUDIT_DELETE in actions, ours
    # closed: nothing of this run is left open
    assert not zabbix.maintenance.get(output=["name"], filter={"name": names.pop()})


def posts(lab, mon):
    out = text(lab.run(mon, f"cat {POSTS} 2>/dev/null || true"))
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_a_problem_reaches_the_webhook_receiver(lab, zabbix, mon1):  # noqa: F811
    web = web_names(lab)[0]
    before = len(posts(lab, mon1))

    def nginx_posts(status):
        found = []
        for post in posts(lab, mon1)[before:]:
            body = json.loads(post["body"])
            if body.get("host") == web and "nginx" in body.get("problem", "").lower() \
                    and body.get("status") == status:
                found.append(body)
        return found

    lab.run(web, "systemctl stop nginx")
    try:
        wait_for(lambda: nginx_posts("PROBLEM"), 300, f"a webhook POST about nginx on {web} on {mon1}:{POSTS}",
                 interval=5)
    finally:
        lab.run(web, "systemctl start nginx")
    body = nginx_posts("PROBLEM")[0]
    assert body["severity"] and body["problem"], body
    wait_for(lambda: nginx_posts("RESOLVED"), 300, f"the webhook POST of the recovery of nginx on {web}", interval=5)


def test_the_platform_overview_dashboard_is_shared_and_has_its_widgets(lab, zabbix, mon1):  # noqa: F811
    # orch.site (./lab up) wrote it; what Zabbix discovered since (HAProxy's
    # frontends) is shown through item prototypes, so ONE apply now changes
    # nothing (it took two, then three, when discovered items were listed).
    states = lab.salt(mon1, "state.apply", "zabbix.server.api", timeout=900).get(mon1) or {}
    dash = states.get("lemp_zabbix_|-zabbix-api-platform-overview-dashboard-present_|-"
                      "zabbix-api-platform-overview-dashboard-present_|-dashboard_present") or {}
    assert dash.get("result"), dash
    assert not dash.get("changes"), dash
    rows = zabbix.dashboard.get(output="extend", filter={"name": DASHBOARD["name"]}, selectPages="extend",
                                selectUserGroups="extend")
    assert rows, f"no dashboard {DASHBOARD['name']!r}"
    groups = {g["usrgrpid"]: g["name"] for g in zabbix.usergroup.get(output=["usrgrpid", "name"])}
    shared = {groups[g["usrgrpid"]]: int(g["permission"]) for g in rows[0]["userGroups"]}
    assert shared == {"staff": 2, "ops": 3}, shared
    widgets = {w["name"]: w for page in rows[0]["pages"] for w in page["widgets"]}
    assert {"Hosts up", "Problem hosts"} <= set(widgets), sorted(widgets)
    # the lab's templates give these items (the web and lb roles' shipped ones)
    for name in ("PHP-FPM busy workers", "Redis master"):
        assert name in widgets, f"{name}: missing (its items were not found at apply time?) {sorted(widgets)}"
        assert any(f["name"] == "itemids" for f in widgets[name]["fields"]), widgets[name]
    # HAProxy's request rates are discovered: a graph prototype widget per load balancer
    for lb in sorted(n for n, m in lab.machines.items() if "lb" in m["roles"]):
        name = f"Requests/s (HAProxy): {lb}"
        assert name in widgets and widgets[name]["type"] == "graphprototype", sorted(widgets)
        assert any(f["name"] == "itemid" and str(f["type"]) == "5" for f in widgets[name]["fields"]), widgets[name]
