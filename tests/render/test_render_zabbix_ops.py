"""Bad Zabbix pillar stops the render of zabbix.server.api naming the key,
before any API state (nothing changes); the webhook, dashboard and
maintenance steps render with the lab pillar."""

import json

import pytest

from test_render import minion_for, render_errors

BAD_ZABBIX = [
    ("unknown template", {"roles": {"web": {"templates": ["Nginx by Zabbix agnet"]}}},
     "zabbix:lookup:server:api:roles:web:templates names unknown template(s) Nginx by Zabbix agnet"),
    ("user with no group", {"users": [{"username": "jdoe"}]},
     "zabbix:lookup:server:api:users:jdoe has no group"),
    ("malformed webhook URL", {"webhook": {"url": "hooks.example.com/zabbix"}},
     "zabbix:lookup:server:api:webhook:url 'hooks.example.com/zabbix' is not a URL"),
    ("webhook without a URL", {"webhook": {"name": "pager", "url": ""}},
     "zabbix:lookup:server:api:webhook:url is missing"),
    ("dashboard shared with an undeclared group", {"dashboard": {"share": {"viewers": "read"}}},
     "zabbix:lookup:server:api:dashboard:share:viewers is not declared"),
]


def show_api(salt_cli, minion, api):
    extra = f"pillar={json.dumps({'zabbix': {'lookup': {'server': {'api': api}}}})}"
    return salt_cli.run("state.show_sls", "zabbix.server.api", extra, minion_tgt=minion)


@pytest.mark.parametrize("case, api, message", BAD_ZABBIX, ids=[b[0] for b in BAD_ZABBIX])
def test_bad_zabbix_pillar_stops_the_render_naming_the_key(salt_cli, topology, representatives, case, api, message):
    ret = show_api(salt_cli, minion_for("zabbix.server", topology, representatives), api)
    errors = render_errors(ret)
    # a render error: no state of the sls exists, so none can run
    assert any(message in e for e in errors), errors


def test_the_webhook_and_dashboard_states_render_with_the_lab_pillar(salt_cli, topology, representatives):
    mon = minion_for("zabbix.server", topology, representatives)
    ret = salt_cli.run("state.show_sls", "zabbix.server", minion_tgt=mon)
    assert not render_errors(ret), render_errors(ret)
    for sid in ("zabbix-api-webhook-media-user-and-action", "zabbix-api-platform-overview-dashboard-present",
                "zabbix-webhook-receiver-service-running"):
        assert sid in ret.data, sorted(ret.data)


def test_orch_deploy_opens_a_maintenance_window_first_and_closes_it_whatever_happens(salt_run_cli):
    ret = salt_run_cli.run("state.orchestrate_show_sls", "orch.deploy", f"pillar={json.dumps({'app': {'version': '1.0.1'}})}")
    assert ret.returncode == 0, ret
    steps = next(iter(ret.data.values()))
    assert isinstance(steps, dict), steps
    opened = [s for s in steps if s.startswith("open-maintenance-window-on-")]
    assert opened, sorted(steps)
    assert "close-maintenance-window-on-mon1-after-the-last-step" in steps
    on_fail = steps["close-maintenance-window-on-mon1-after-a-failed-step"]["salt"]
    assert any("onfail" in arg for arg in on_fail if isinstance(arg, dict)), on_fail
