"""The log forwarding (salt/rsyslog) renders what each kind of machine
forwards, and bad collector settings stop the render naming the key."""

import json

from test_render import render_errors


def with_role(role, topology, representatives):
    return next(name for name in representatives if role in topology["machines"][name]["roles"])


def client_context(salt_cli, minion):
    ret = salt_cli.run("state.show_sls", "rsyslog.client", minion_tgt=minion)
    assert not render_errors(ret), render_errors(ret)
    state = ret.data["rsyslog-forward-to-collector-config-file-managed"]["file"]
    return next(arg["context"] for arg in state if isinstance(arg, dict) and "context" in arg)


def test_a_load_balancer_forwards_haproxys_socket_to_mon1(salt_cli, topology, representatives):
    context = client_context(salt_cli, with_role("lb", topology, representatives))
    assert context["collector"]["name"] == "mon1"
    assert context["haproxy"] == {"socket": "/var/lib/haproxy/dev/rsyslog.sock"}


def test_a_web_node_forwards_its_nginx_and_php_fpm_files(salt_cli, topology, representatives):
    context = client_context(salt_cli, with_role("web", topology, representatives))
    tags = {i["tag"] for i in context["inputs"]}
    assert {"nginx-access", "nginx-error", "php-fpm"} <= tags
    assert context["haproxy"] is None


def test_the_collector_keeps_the_lab_retention(salt_cli, topology, representatives):
    ret = salt_cli.run("state.show_sls", "rsyslog.server", minion_tgt=with_role("monitor", topology, representatives))
    assert not render_errors(ret), render_errors(ret)
    state = ret.data["rsyslog-remote-logs-logrotate-file-managed"]["file"]
    context = next(arg["context"] for arg in state if isinstance(arg, dict) and "context" in arg)
    assert context["server"]["retention_days"] == 14


def test_a_bad_retention_stops_the_render_naming_the_key(salt_cli, topology, representatives):
    extra = f"pillar={json.dumps({'rsyslog': {'lookup': {'server': {'retention_days': 0}}}})}"
    errors = render_errors(salt_cli.run("state.show_sls", "rsyslog.server", extra,
                                        minion_tgt=with_role("monitor", topology, representatives)))
    assert any("rsyslog:lookup:server:retention_days: 0 must be a whole number" in e for e in errors), errors


def test_rsyslog_is_fingerprinted_after_every_package_of_the_highstate(salt_cli, topology, representatives):
    """Debian's haproxy drops /etc/rsyslog.d/49-haproxy.conf: on a load
    balancer, the fingerprint taken before it made orch.site's second run
    restart rsyslog. Every package is installed before it, on every kind of
    machine."""
    for minion in representatives:
        ret = salt_cli.run("state.show_lowstate", minion_tgt=minion)
        # a list of chunks (dicts), in the order the highstate runs them; errors are strings
        assert ret.returncode == 0 and all(isinstance(c, dict) for c in ret.data), (minion, ret.data)
        ids = [(chunk["state"], chunk["__id__"]) for chunk in ret.data]
        if ("lemp_service", "rsyslog-runs-its-current-configuration") not in ids:
            continue
        at = ids.index(("lemp_service", "rsyslog-runs-its-current-configuration"))
        later = [sid for state, sid in ids[at + 1:] if state == "pkg"]
        assert not later, f"{minion}: packages installed after rsyslog's fingerprint: {later}"
        if "lb" in topology["machines"][minion]["roles"]:
            assert ids.index(("pkg", "haproxy-package-installed")) < at
