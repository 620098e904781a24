"""Maintenance windows, the webhook media type and the "Platform overview"
dashboard (_modules/lemp_zabbix.py, _runners/_steps.py): what they would
write, computed from sample API answers (Zabbix 6.0's shapes)."""

import pathlib
import sys

import pytest
import yaml

import lemp_topology
import lemp_zabbix  # tests/conftest.py puts _modules on the path
from by_path import load

REPO = pathlib.Path(__file__).resolve().parents[2]
# The runners by path, not _runners on sys.path (see test_galera_plans.py).
_steps = load("lemp_runner_steps", "_runners/_steps.py")
lemp_web = load("lemp_web_runner", "_runners/lemp_web.py")

DEFAULTS = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]
API = DEFAULTS["server"]["api"]
SCRIPT = (REPO / "salt" / "zabbix" / "server" / "files" / "webhook.js").read_text()


@pytest.fixture()
def topo():
    return lemp_topology.load(REPO / "pillar" / "topology.yaml")


def ids(steps):
    return [s["id"] for s in steps]


def arg(step, key):
    return next(a[key] for a in step["args"] if key in a)


# -- maintenance windows ------------------------------------------------------

def test_a_window_runs_from_now_until_its_safety_expiry():
    window = lemp_zabbix.maintenance_window("lemp-ha maintenance: orch.deploy 1", ["10", 11], 1000, 30)
    assert window["active_since"] == 1000 and window["active_till"] == 1000 + 1800
    assert window["hosts"] == [{"hostid": "10"}, {"hostid": "11"}] and window["maintenance_type"] == 0
    assert window["timeperiods"] == [{"timeperiod_type": 0, "start_date": 1000, "period": 1800}]
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match="expiry_minutes"):
        lemp_zabbix.maintenance_window("x", ["1"], 1000, 0)


def test_only_our_expired_windows_are_removed():
    rows = [{"maintenanceid": "1", "name": "lemp-ha maintenance: orch.deploy a", "active_till": "900"},
            {"maintenanceid": "2", "name": "lemp-ha maintenance: orch.deploy b", "active_till": "5000"},
            {"maintenanceid": "3", "name": "Sunday patching", "active_till": "900"}]
    assert lemp_zabbix.expired_windows(rows, 1000) == ["1"]


def test_the_deploy_opens_a_window_first_and_closes_it_last_or_on_a_failure(topo):
    webs, lbs = lemp_web.members(topo)
    body = lemp_web.deploy_steps(webs, lbs, "web", "1.1.0", {"path": "salt://app"}, "app", "1.0.0")
    steps = _steps.with_maintenance(body, topo, "orch.deploy", "R1", webs + lbs, lemp_web.deploy_expiry(webs))
    opened, first, close, on_fail = steps[0], steps[1], steps[-2], steps[-1]
    assert opened["id"] == "open-maintenance-window-on-mon1-for-lb1-lb2-web1-web2"
    assert arg(opened, "name") == "lemp_zabbix.maintenance_open" and arg(opened, "tgt") == "mon1"
    assert arg(opened, "kwarg") == {"name": "lemp-ha maintenance: orch.deploy R1",
                                    "hosts": ["lb1", "lb2", "web1", "web2"], "expiry_minutes": 35}
    assert arg(first, "require") == [{"salt": opened["id"]}]
    assert ids(steps[1:-2]) == ids(body)
    assert arg(close, "require") == [{"salt": body[-1]["id"]}]
    assert arg(close, "kwarg") == arg(on_fail, "kwarg") == {"name": "lemp-ha maintenance: orch.deploy R1"}
    # every step, the open included, can trigger the close after a failure
    assert arg(on_fail, "onfail") == [{"salt": i} for i in [opened["id"]] + ids(body)]


def test_without_a_monitor_machine_or_when_switched_off_the_plan_says_so_and_runs_as_is(topo):
    body = [_steps.function("a", "test.ping", "web1"), _steps.function("b", "test.ping", "web2")]
    no_monitor = dict(topo, roles={k: v for k, v in topo["roles"].items() if k != "monitor"})
    steps = _steps.with_maintenance(body, no_monitor, "orch.deploy", "R1", ["web1"], 10)
    assert ids(steps) == ["no-maintenance-window-no-monitor-machine-in-the-topology", "a", "b"]
    assert "no Zabbix maintenance window" in arg(steps[0], "name")
    off = _steps.with_maintenance(body, topo, "orch.deploy", "R1", ["web1"], 10, enabled=False)
    assert ids(off)[0] == "no-maintenance-window-pillar-maintenance-is-false"


def test_a_refusal_opens_no_window(topo):
    refusal = [_steps.refuse("galera-rolling-restart-refused", "not Synced")]
    assert _steps.with_maintenance(refusal, topo, "orch.galera_rolling_restart", "R", ["db1"], 60) == refusal


def test_run_ids_differ():
    assert _steps.run_id() != _steps.run_id()


# -- webhook ------------------------------------------------------------------

WEBHOOK = {"name": "lemp-ha webhook", "url": "http://127.0.0.1:8765/zabbix"}


def test_the_webhook_media_type_posts_host_severity_problem_and_status():
    desired = lemp_zabbix.webhook_mediatype(WEBHOOK, SCRIPT)
    params = {p["name"]: p["value"] for p in desired["parameters"]}
    assert params["url"] == WEBHOOK["url"] and params["host"] == "{HOST.NAME}"
    assert {"severity", "problem", "status"} <= set(params)
    assert desired["type"] == 4 and "HttpRequest" in desired["script"]
    for key in ("host", "severity", "problem", "status"):
        assert f"{key}: params.{key}" in SCRIPT


def test_the_webhook_as_the_server_has_it_needs_no_change_and_a_new_url_is_written():
    desired = lemp_zabbix.webhook_mediatype(WEBHOOK, SCRIPT)
    answer = dict(desired, mediatypeid="30", type="4", status="0",
                  parameters=list(reversed(desired["parameters"])),
                  message_templates=[dict(t, eventsource="0", recovery=str(t["recovery"]))
                                     for t in desired["message_templates"]])
    assert lemp_zabbix.webhook_changes(answer, desired) == {}
    moved = lemp_zabbix.webhook_mediatype(dict(WEBHOOK, url="https://hooks.example.com/z"), SCRIPT)
    assert list(lemp_zabbix.webhook_changes(answer, moved)) == ["parameters"]
    assert lemp_zabbix.webhook_changes(None, desired) is None


def test_the_webhook_action_posts_to_its_user_and_skips_suppressed_problems():
    action = lemp_zabbix.webhook_action("lemp-ha: post problems to lemp-ha webhook", "7", "30")
    assert action["operations"][0]["opmessage_usr"] == [{"userid": "7"}]
    assert "opmessage_grp" not in action["operations"][0]
    assert {"conditiontype": 16, "operator": 11} in action["filter"]["conditions"]
    other_user = lemp_zabbix.webhook_action("x", "8", "30")
    assert lemp_zabbix.action_changes(action, other_user) == {"operations": other_user["operations"]}


def test_webhook_settings_are_completed_and_checked():
    ok = lemp_zabbix.validate_ops(dict(API, webhook={"url": "https://hooks.example.com/z"}))["webhook"]
    assert ok["user"] == "lemp-ha-webhook" and ok["user_group"] == "staff"
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match="zabbix:lookup:server:api:webhook:url is missing"):
        lemp_zabbix.validate_ops(dict(API, webhook={"name": "hook"}))
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match="zabbix:lookup:server:api:webhook:url 'hooks"):
        lemp_zabbix.validate_ops(dict(API, webhook={"url": "hooks.example.com/z"}))
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match="webhook:user_group 'pager'"):
        lemp_zabbix.validate_ops(dict(API, webhook={"url": "https://h.example.com/", "user_group": "pager"}))
    assert lemp_zabbix.validate_ops(API)["webhook"] == {}


# -- dashboard ----------------------------------------------------------------

def test_widgets_with_no_item_yet_are_skipped_and_named():
    specs = API["dashboard"]["widgets"]
    widgets, skipped = lemp_zabbix.dashboard_widgets(specs, {"PHP-FPM busy workers": ["120", "99", "120"]})
    assert [w["name"] for w in widgets] == ["Hosts up", "Problem hosts", "PHP-FPM busy workers"]
    php = widgets[2]
    assert php["type"] == "plaintext"
    assert [f["value"] for f in php["fields"] if f["name"] == "itemids"] == ["99", "120"]
    assert (php["x"], php["y"], php["width"]) == (16, 0, 8)
    assert any(s.startswith("Backup age (no item or item prototype matches *backup*age*") for s in skipped)
    assert len(skipped) == len(specs) - 3


def test_the_dashboard_is_shared_read_only_with_staff_and_read_write_with_ops():
    desired = lemp_zabbix.dashboard_object("Platform overview", [], {"staff": "8", "ops": "9", "x": "1"},
                                           API["dashboard"]["share"])
    assert desired["userGroups"] == [{"usrgrpid": "8", "permission": 2}, {"usrgrpid": "9", "permission": 3}]
    assert desired["private"] == 1


def test_the_dashboard_as_the_server_has_it_needs_no_change():
    widgets, _ = lemp_zabbix.dashboard_widgets(API["dashboard"]["widgets"], {"VIP holder": ["5"]})
    desired = lemp_zabbix.dashboard_object("Platform overview", widgets, {"staff": "8", "ops": "9"},
                                           API["dashboard"]["share"])
    answer = as_stored(widgets)
    assert lemp_zabbix.dashboard_changes(answer, desired) == {}
    more, _ = lemp_zabbix.dashboard_widgets(API["dashboard"]["widgets"], {"VIP holder": ["5"], "Backup age": ["6"]})
    grown = lemp_zabbix.dashboard_object("Platform overview", more, {"staff": "8", "ops": "9"},
                                         API["dashboard"]["share"])
    assert list(lemp_zabbix.dashboard_changes(answer, grown)) == ["pages"]
    assert lemp_zabbix.dashboard_changes(None, desired) is None


def as_stored(widgets):
    """dashboard.get's answer for ``widgets``: ids added, every number a string."""
    return {"dashboardid": "3", "name": "Platform overview", "private": "1",
            "userGroups": [{"usrgrpid": "9", "permission": "3"}, {"usrgrpid": "8", "permission": "2"}],
            "pages": [{"dashboard_pageid": "4", "widgets": [
                dict(w, widgetid=str(i), view_mode="0", x=str(w["x"]), y=str(w["y"]),
                     width=str(w["width"]), height=str(w["height"]),
                     fields=[{"type": str(f["type"]), "name": f["name"], "value": str(f["value"])}
                             for f in w["fields"]])
                for i, w in enumerate(widgets)]}]}


# item.get / itemprototype.get answers on lb1 and lb2 (Zabbix 6.0's shapes), for
# 'haproxy.frontend.req_rate*': the prototype of "HAProxy by Zabbix agent"
REQ_RATE = "haproxy.frontend.req_rate[{#PXNAME}:{#SVNAME}]"
PROTOTYPES = [
    {"itemid": "702", "key_": REQ_RATE, "hosts": [{"hostid": "11", "host": "lb2"}]},
    {"itemid": "701", "key_": REQ_RATE, "hosts": [{"hostid": "10", "host": "lb1"}]},
]
DISCOVERED = [{"itemid": "801", "flags": "4"}, {"itemid": "802", "flags": "4"}]


def test_discovered_items_are_left_out_and_their_prototypes_shown_per_host():
    assert lemp_zabbix.template_itemids([{"itemid": "5", "flags": "0"}] + DISCOVERED) == ["5"]
    sources = lemp_zabbix.prototype_sources(PROTOTYPES)
    assert [(p["host"], p["itemid"]) for p in sources] == [("lb1", "701"), ("lb2", "702")]
    widgets, skipped = lemp_zabbix.dashboard_widgets(API["dashboard"]["widgets"], {},
                                                     {"Requests/s (HAProxy)": sources + sources[:1]})
    haproxy = [w for w in widgets if w["name"].startswith("Requests/s (HAProxy)")]
    assert [w["name"] for w in haproxy] == ["Requests/s (HAProxy): lb1", "Requests/s (HAProxy): lb2"]
    assert {w["type"] for w in haproxy} == {"graphprototype"}
    fields = {f["name"]: (f["type"], f["value"]) for f in haproxy[0]["fields"]}
    assert fields["itemid"] == (5, "701") and fields["source_type"] == (0, 3)
    assert not any(s.startswith("Requests/s") for s in skipped)


def test_items_discovered_after_the_run_change_nothing_on_the_dashboard():
    """orch.site links the templates; HAProxy's frontends are discovered
    minutes later. The dashboard written before must still be in sync."""
    def dashboard(item_rows):
        found = {"Requests/s (HAProxy)": lemp_zabbix.template_itemids(item_rows), "VIP holder": ["5"]}
        widgets, _ = lemp_zabbix.dashboard_widgets(API["dashboard"]["widgets"], found,
                                                   {"Requests/s (HAProxy)": lemp_zabbix.prototype_sources(PROTOTYPES)})
        return lemp_zabbix.dashboard_object("Platform overview", widgets, {"staff": "8", "ops": "9"},
                                            API["dashboard"]["share"])

    written = dashboard([])
    assert lemp_zabbix.dashboard_changes(as_stored(written["pages"][0]["widgets"]), dashboard(DISCOVERED)) == {}


def test_dashboard_settings_name_the_key_when_wrong():
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match="dashboard:share:viewers is not declared"):
        lemp_zabbix.validate_ops(dict(API, dashboard={"share": {"viewers": "read"}}))
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match=r"dashboard:widgets\[0\] needs a name"):
        lemp_zabbix.validate_ops(dict(API, dashboard={"widgets": [{"name": "x"}]}))


# -- templates a render can check ---------------------------------------------

def test_the_render_knows_the_shipped_and_the_repo_templates():
    files = sorted((REPO / "salt" / "zabbix" / "server" / "files" / "templates").glob("*.yaml"))
    known = lemp_zabbix.render_known_templates(API["shipped_templates"], files)
    lemp_zabbix.validate(API, known)
    bad = dict(API, roles={"web": {"templates": ["Nginx by HTTP, misspelt"]}})
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match="roles:web:templates names unknown template"):
        lemp_zabbix.validate(bad, known)


def test_hosts_are_in_maintenance_only_when_every_one_is():
    assert lemp_zabbix.hosts_in_maintenance([{"maintenance_status": "1"}, {"maintenance_status": 1}])
    assert not lemp_zabbix.hosts_in_maintenance([{"maintenance_status": "1"}, {"maintenance_status": "0"}])
    assert not lemp_zabbix.hosts_in_maintenance([])


def test_opening_a_window_asks_the_server_to_reload_its_cache_and_says_when_that_failed(monkeypatch):
    calls = []

    def run_all(cmd, **_kwargs):
        calls.append(cmd)
        return {"retcode": 1, "stdout": "", "stderr": "cannot connect to the server"}

    monkeypatch.setattr(lemp_zabbix, "__salt__", {"cmd.run_all": run_all}, raising=False)
    said = lemp_zabbix._reload_server_config_cache()
    assert calls == [["zabbix_server", "-R", "config_cache_reload"]]
    assert said and "cannot connect to the server" in said[0] and "next cache update" in said[0]
    monkeypatch.setattr(lemp_zabbix, "__salt__", {"cmd.run_all": lambda cmd, **kw: {"retcode": 0}}, raising=False)
    assert lemp_zabbix._reload_server_config_cache() == []

    def missing(cmd, **_kwargs):
        raise OSError("Unable to run command: zabbix_server: not found")

    monkeypatch.setattr(lemp_zabbix, "__salt__", {"cmd.run_all": missing}, raising=False)
    assert "not found" in lemp_zabbix._reload_server_config_cache()[0]
