"""The Zabbix side of scaling (issue #12), without a server: the web tier's
load item and its triggers read the pillar's thresholds through global
macros; one script and one action per direction, compared field by field so
that a second run changes nothing; staff see each decision as an event."""

import pathlib
import re

import pytest
import yaml

import lemp_zabbix

REPO = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = yaml.safe_load((REPO / "salt" / "zabbix" / "server" / "files" / "templates" / "lemp-ha-scaling.yaml")
                          .read_text())["zabbix_export"]["templates"]
SCALING = yaml.safe_load((REPO / "salt" / "scaling" / "defaults.yaml").read_text())["scaling"]
ZABBIX = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]
PHPFPM = yaml.safe_load((REPO / "salt" / "phpfpm" / "defaults.yaml").read_text())["phpfpm"]


def template(name):
    return next(t for t in TEMPLATE if t["template"] == name)


def test_the_load_item_sums_the_web_group_and_the_triggers_read_the_pillar_macros():
    load = template("lemp-ha Web tier load")
    item = load["items"][0]
    assert item["type"] == "CALCULATED" and item["key"] == "lemp.web.busy_ratio"
    assert 'group="lemp-ha/web"' in item["params"] and "{$LEMP.SCALE.FPM_MAX_CHILDREN}" in item["params"]
    triggers = {t["tags"][0]["value"]: t for t in item["triggers"]}
    assert triggers["out"]["expression"] == \
        "min(/lemp-ha Web tier load/lemp.web.busy_ratio,{$LEMP.SCALE.WINDOW})>{$LEMP.SCALE.HIGH}"
    assert triggers["in"]["expression"] == \
        "max(/lemp-ha Web tier load/lemp.web.busy_ratio,{$LEMP.SCALE.WINDOW})<{$LEMP.SCALE.LOW}"
    assert all(t["tags"][0]["tag"] == lemp_zabbix.SCALING_TAG for t in triggers.values())
    # information only: the ops mail (min severity warning) is not for load
    assert {t["priority"] for t in triggers.values()} == {"INFO"}
    # no template macro: it would win over the pillar's global one
    assert "macros" not in load


def test_the_load_item_counts_every_web_tier_role_group_the_pool_included():
    """Every role of tier web (web, and web_pool: the enrolled pool nodes)
    is in each of the item's three filters: without web_pool a scale-out
    would not lower the ratio, and the tier would scale out to max."""
    roles = yaml.safe_load((REPO / "pillar" / "roles.yaml").read_text())
    host_roles = ZABBIX["server"]["api"]["roles"]
    groups = {(host_roles.get(r) or {}).get("group") or f"lemp-ha/{r}"
              for r, decl in roles.items() if decl.get("tier") == "web"}
    assert groups >= {"lemp-ha/web", "lemp-ha/web_pool"}
    params = template("lemp-ha Web tier load")["items"][0]["params"]
    filters = re.findall(r"lemp\.phpfpm\.active\?\[([^\]]*)\]", params)
    assert len(filters) == 3
    for text in filters:
        assert set(re.findall(r'group="([^"]+)"', text)) == groups, text
        assert re.sub(r'group="[^"]+"', "G", text).replace(" or ", "|") == "|".join("G" * len(groups))


def test_the_macros_come_from_the_pillar_and_phpfpm(topology):
    macros = lemp_zabbix.scaling_macros(SCALING, PHPFPM["pool"]["max_children"])
    assert macros == {"{$LEMP.SCALE.HIGH}": "0.7", "{$LEMP.SCALE.LOW}": "0.15", "{$LEMP.SCALE.WINDOW}": "5m",
                      "{$LEMP.SCALE.FPM_MAX_CHILDREN}": "20", "{$LEMP.SCALE.INTERVAL}": "1m",
                      "{$LEMP.SCALE.STALE}": "180s"}
    used = set(re.findall(r"\{\$LEMP\.SCALE\.[A-Z_]+\}", yaml.safe_dump(TEMPLATE)))
    assert used == set(macros)
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match="phpfpm:lookup:pool:max_children 0"):
        lemp_zabbix.scaling_macros(SCALING, 0)


def test_a_silent_node_drops_out_of_the_ratio_after_three_intervals():
    assert [lemp_zabbix.scaling_stale_period(v) for v in ("5s", "10", "1m", "1h")] == ["15s", "30s", "180s",
                                                                                       "10800s"]
    lab = lemp_zabbix.scaling_macros({"autoscale": {"high": 0.6, "low": 0.1, "window": "25s", "interval": "5s"}}, 16)
    assert (lab["{$LEMP.SCALE.INTERVAL}"], lab["{$LEMP.SCALE.STALE}"]) == ("5s", "15s")
    with pytest.raises(lemp_zabbix.ZabbixSettingsError, match="scaling:autoscale:interval 'often'"):
        lemp_zabbix.scaling_stale_period("often")


def test_each_web_node_is_read_at_the_scaling_interval_by_its_own_item():
    """The stock PHP-FPM template polls once a minute with no macro for it;
    the ratio reads lemp-ha's own item, polled (no agent buffer) every
    {$LEMP.SCALE.INTERVAL}, from a UserParameter of roles web and web_pool,
    and is computed as often, over values no older than {$LEMP.SCALE.STALE}."""
    node = template("lemp-ha Web node load")
    item = node["items"][0]
    assert (item["type"], item["key"], item["delay"], item["value_type"]) == \
        ("ZABBIX_PASSIVE", "lemp.phpfpm.active", "{$LEMP.SCALE.INTERVAL}", "UNSIGNED")
    assert "macros" not in node      # a template macro would win over the pillar's global one
    ratio = template("lemp-ha Web tier load")["items"][0]
    assert ratio["delay"] == "{$LEMP.SCALE.INTERVAL}"
    periods = re.findall(r"last_foreach\(/\*/([^?]+)\?\[[^\]]*\],([^)]*)\)", ratio["params"])
    assert periods == [("lemp.phpfpm.active", "{$LEMP.SCALE.STALE}")] * 3
    roles = ZABBIX["server"]["api"]["roles"]
    params = ZABBIX["agent"]["user_parameters"]
    for role in ("web", "web_pool"):
        assert "lemp-ha Web node load" in roles[role]["templates"], role
        assert "lemp.phpfpm.active" in params[role], role
    assert not any("lemp-ha Web node load" in decl["templates"] for role, decl in roles.items()
                   if role not in ("web", "web_pool"))


def test_the_userparameter_reads_nginxs_loopback_fpm_status_page():
    nginx = yaml.safe_load((REPO / "salt" / "nginx" / "defaults.yaml").read_text())["nginx"]["status"]
    url = f"http://{nginx['listen']}:{nginx['port']}{nginx['fpm_status_path']}"
    for role in ("web", "web_pool"):
        lines = lemp_zabbix.agent_user_parameters([role], ZABBIX["agent"]["user_parameters"],
                                                  {"vip": "10.0.0.9", "fpm_status_url": url})
        assert [line for line in lines if line.startswith("UserParameter=lemp.phpfpm.")] == [
            "UserParameter=lemp.phpfpm.active,curl -fsS --max-time 3 http://127.0.0.1:8081/fpm-status"
            " | sed -n 's/^active processes: *//p'"]
    # the same page as the stock template's macros of the role
    macros = ZABBIX["server"]["api"]["roles"]["web"]["macros"]
    assert url == f"http://{macros['{$PHP_FPM.HOST}']}:{macros['{$PHP_FPM.PORT}']}/{macros['{$PHP_FPM.STATUS.PAGE}']}"
    # curl gives up before the agent does
    assert 3 < int(ZABBIX["agent"]["settings"]["Timeout"])


def test_each_decision_is_an_information_event_on_the_masters_host():
    decisions = template("lemp-ha Scaling decisions")
    item = decisions["items"][0]
    assert (item["type"], item["key"], item["value_type"]) == ("TRAP", "lemp.scale.decision", "TEXT")
    trigger = item["triggers"][0]
    assert trigger["type"] == "MULTIPLE" and trigger["priority"] == "INFO"
    assert "nodata(/lemp-ha Scaling decisions/lemp.scale.decision" in trigger["recovery_expression"]
    roles = ZABBIX["server"]["api"]["roles"]
    assert "lemp-ha Scaling decisions" in roles["master"]["templates"]
    assert "lemp-ha Web tier load" in roles["monitor"]["templates"]


def test_the_script_runs_exactly_the_sudoers_command_on_the_server():
    script = lemp_zabbix.scaling_script("out", "/usr/local/sbin/lemp-scale-request")
    assert script["command"] == "sudo -n /usr/local/sbin/lemp-scale-request out"
    assert (script["execute_on"], script["scope"], script["type"]) == (1, 1, 0)


def test_the_action_matches_its_tag_and_repeats_while_the_problem_lasts():
    action = lemp_zabbix.scaling_action("in", "42", "15m")
    assert action["esc_period"] == "15m" and action["status"] == 0
    assert {"conditiontype": 26, "operator": 0, "value2": "lemp-scale", "value": "in"} in action["filter"]["conditions"]
    operation = action["operations"][0]
    assert operation["opcommand"] == {"scriptid": "42"} and operation["esc_step_to"] == 0
    assert lemp_zabbix.scaling_action("in", "42", "15m", enabled=False)["status"] == 1


def test_an_action_as_the_server_returns_it_needs_no_change():
    desired = lemp_zabbix.scaling_action("out", "42", "15m")
    served = {"actionid": "7", "name": desired["name"], "status": "0", "esc_period": "15m",
              "filter": {"evaltype": "0", "conditions": [
                  {"conditiontype": "26", "operator": "0", "value": "out", "value2": "lemp-scale", "formulaid": "A"},
                  {"conditiontype": "16", "operator": "11", "value": "", "value2": "", "formulaid": "B"}]},
              "operations": [{"operationid": "9", "operationtype": "1", "esc_step_from": "1", "esc_step_to": "0",
                              "esc_period": "0", "opcommand": {"scriptid": "42"},
                              "opcommand_hst": [{"opcommand_hstid": "3", "hostid": "0"}]}]}
    assert lemp_zabbix.scaling_action_changes(served, desired) == {}
    assert lemp_zabbix.scaling_action_changes(None, desired) is None
    changed = lemp_zabbix.scaling_action_changes(served, lemp_zabbix.scaling_action("out", "42", "30m"))
    assert changed == {"esc_period": "30m"}
    assert set(lemp_zabbix.scaling_action_changes(served, lemp_zabbix.scaling_action("out", "43", "15m"))) == \
        {"operations"}
