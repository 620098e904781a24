"""Edge protection (issue #13 item 4) renders from the lab pillar: the load
balancers' haproxy.cfg gets the rate limit (the lab host exempt) and the
stats login, nginx the addresses that see /healthz's details; a bad key
stops the render, named."""

import json

from test_render import render_errors


def arg(ret, state_id, name):
    return next(a[name] for a in ret.data[state_id]["file"] if isinstance(a, dict) and name in a)


def member(topology, representatives, role):
    return next(name for name in representatives if role in topology["machines"][name]["roles"])


def test_the_lbs_render_the_edge_with_the_lab_host_exempt_and_the_stats_login(salt_cli, topology, representatives):
    lb = member(topology, representatives, "lb")
    ret = salt_cli.run("state.show_sls", "haproxy.config", minion_tgt=lb)
    assert not render_errors(ret), render_errors(ret)
    context = arg(ret, "haproxy-config-file-managed", "context")
    assert context["edge"]["rate_limit"]["exempt"] == [topology["network"]["host"]]
    assert context["edge"]["rate_limit"]["requests"] == 200
    assert context["edge"]["local_stats_readers"] == ["127.0.0.1", topology["machines"][lb]["address"]]
    assert context["stats_login"]["user"] == "haproxy-stats" and len(context["stats_login"]["password"]) == 32


def test_a_bad_edge_setting_stops_the_render_naming_the_key(salt_cli, topology, representatives):
    lb = member(topology, representatives, "lb")
    extra = f"pillar={json.dumps({'haproxy': {'lookup': {'edge': {'rate_limit': {'requests': 0}}}}})}"
    errors = render_errors(salt_cli.run("state.show_sls", "haproxy.config", extra, minion_tgt=lb))
    assert any("haproxy:lookup:edge:rate_limit:requests 0 must be a whole number above 0" in e for e in errors), errors


def test_nginx_gives_healthz_details_to_loopback_the_lbs_and_the_lab_host(salt_cli, topology, representatives):
    web = member(topology, representatives, "web")
    ret = salt_cli.run("state.show_sls", "nginx.config", minion_tgt=web)
    assert not render_errors(ret), render_errors(ret)
    sources = arg(ret, "nginx-app-site-file-managed", "context")["healthz_details_from"]
    lbs = [m["address"] for m in topology["roles"]["lb"]["members"]]
    assert sources == ["127.0.0.1", *lbs, topology["network"]["host"]]
    extra = f"pillar={json.dumps({'nginx': {'lookup': {'health': {'details_from': ['the office']}}}})}"
    errors = render_errors(salt_cli.run("state.show_sls", "nginx.config", extra, minion_tgt=web))
    assert any('nginx:lookup:health:details_from: "the office" is not an address' in e for e in errors), errors
