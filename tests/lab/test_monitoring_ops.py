"""Acceptance of issue 10's maintenance windows, webhook and dashboard, on
the lab (orch.site applied, mon1 up). Talks to Zabbix through its API with
the zabbix_utils client (the `zabbix` fixture of test_monitoring.py: HTTPS
to mon1 trusting only the lab CA, Admin with the generated secret).

* orch.deploy opens a maintenance window and closes it: read afterwards in
  Zabbix's audit log (resource "maintenance", added then deleted, named
  after orch.deploy), so the test needs no sleep and no race with the run.
  Checked by assert_orch_deploy_opened_and_closed_one_window below, called
  from tests/lab/test_web_lb.py's rolling deploy: an orch.deploy run costs
  about a minute, and that test runs one anyway;
* a problem opened by stopping nginx on web1 reaches the lab's webhook
  receiver on mon1 (salt/zabbix/server/webhook_receiver.sls, on in the lab
  pillar) as a JSON POST naming the host, severity, problem and status:
  checked in test_monitoring.py's nginx stop, which sees the same problem
  reach the mailbox (one stop, one problem and recovery cycle, for both);
* the "Platform overview" dashboard exists, shared read-only with staff and
  read-write with ops, with its widgets.
"""

import pathlib

import yaml

from test_monitoring import mon1, zabbix  # noqa: F401  (fixtures)

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]
DASHBOARD = DEFAULTS["server"]["api"]["dashboard"]
AUDIT_MAINTENANCE = 27          # auditlog resourcetype "maintenance" (6.0)
AUDIT_ADD, AUDIT_DELETE = 0, 2  # auditlog actions


def assert_orch_deploy_opened_and_closed_one_window(zabbix, started):  # noqa: F811
    """The orch.deploy run that started at `started` (epoch seconds, read on
    a lab machine) opened one maintenance window named after orch.deploy
    and closed it: Zabbix's audit log has it added then deleted, and no
    window of that name is left."""
    records = zabbix.auditlog.get(output="extend", filter={"resourcetype": AUDIT_MAINTENANCE},
                                  time_from=started - 5, sortfield="clock", sortorder="ASC")
    ours = [r for r in records if "orch.deploy" in r.get("resourcename", "")]
    names = {r["resourcename"] for r in ours}
    assert len(names) == 1, f"one window named after orch.deploy, got {names} ({records})"
    actions = [int(r["action"]) for r in ours]
    assert actions[0] == AUDIT_ADD and AUDIT_DELETE in actions, ours
    # closed: nothing of this run is left open
    assert not zabbix.maintenance.get(output=["name"], filter={"name": names.pop()})


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
