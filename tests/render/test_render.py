"""Every state, orchestration, reactor and pillar file renders with the lab pillar."""

import json
import pathlib

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]


def sls_name(path, root):
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "init":
        parts.pop()
    return ".".join(parts)


def state_files():
    return sorted(p for p in (REPO / "salt").rglob("*.sls") if p.name != "top.sls")


def roles_applying(component):
    roles = yaml.safe_load((REPO / "pillar" / "roles.yaml").read_text())
    return [role for role, decl in roles.items()
            if any(s == component or s.startswith(component + ".") for s in ((decl or {}).get("states") or []))]


# Written but applied by no role: still rendered, on a machine of the role
# it is written for.
NOT_YET_APPLIED = {}

# States and orchestrations that only run with pillar given on the command line.
COMMAND_LINE_PILLAR = {
    "webapp.rollback": {"app": {"rollback_to": "1.0.0"}},
    "deploy": {"app": {"version": "1.0.1"}},
    "rollback": {"app": {"rollback_to": "1.0.0"}},
}


def applied_by_common():
    """Components salt/common includes: every machine applies them."""
    included = yaml.safe_load((REPO / "salt" / "common" / "init.sls").read_text())["include"]
    return {"common"} | {sls.split(".")[0] for sls in included}


def minion_for(sls, topology, representatives):
    """The representative minion whose roles apply this component."""
    component = sls.split(".")[0]
    if component in applied_by_common():
        return representatives[0]
    roles = roles_applying(component) or [NOT_YET_APPLIED.get(component)]
    for role in roles:
        for name in representatives:
            if role in topology["machines"][name]["roles"]:
                return name
    return None


def render_errors(ret):
    data = ret.data
    if isinstance(data, list):
        return data
    if isinstance(data, str):
        return [data]
    if ret.returncode != 0:
        return [ret.stdout or ret.stderr]
    return []


def test_pillar_renders_for_every_kind_of_machine(salt_cli, salt_minions):
    for name in salt_minions:
        ret = salt_cli.run("pillar.items", minion_tgt=name)
        assert ret.returncode == 0, ret
        assert "_errors" not in ret.data, (name, ret.data.get("_errors"))
        assert "topology" in ret.data


def test_highstate_renders_for_every_kind_of_machine(salt_cli, salt_minions):
    for name in salt_minions:
        ret = salt_cli.run("state.show_highstate", minion_tgt=name)
        assert not render_errors(ret), (name, render_errors(ret))


@pytest.mark.parametrize("path", state_files(), ids=lambda p: str(p.relative_to(REPO / "salt")))
def test_state_file_renders(path, salt_cli, topology, representatives):
    sls = sls_name(path, REPO / "salt")
    minion = minion_for(sls, topology, representatives)
    assert minion, f"{sls}: no role in pillar/roles.yaml applies it; wire it or remove it"
    extra = [f"pillar={json.dumps(COMMAND_LINE_PILLAR[sls])}"] if sls in COMMAND_LINE_PILLAR else []
    ret = salt_cli.run("state.show_sls", sls, *extra, minion_tgt=minion)
    assert not render_errors(ret), (sls, minion, render_errors(ret))


def orchestrations():
    return sorted(p for p in (REPO / "orch").glob("*.sls"))


@pytest.mark.parametrize("path", orchestrations(), ids=lambda p: p.name)
def test_orchestration_renders(path, salt_run_cli):
    extra = [f"pillar={json.dumps(COMMAND_LINE_PILLAR[path.stem])}"] if path.stem in COMMAND_LINE_PILLAR else []
    ret = salt_run_cli.run("state.orchestrate_show_sls", f"orch.{path.stem}", *extra)
    assert ret.returncode == 0, ret
    # {master id: steps}, or {master id: [render errors]}
    for steps in ret.data.values():
        assert isinstance(steps, dict), steps


def a_web_node(topology, representatives):
    return next(name for name in representatives if "web" in topology["machines"][name]["roles"])


def test_a_missing_secret_stops_the_render_naming_the_key_and_the_fix(salt_cli, topology, representatives):
    # The web nodes do not receive the load balancers' VIP certificate.
    web = a_web_node(topology, representatives)
    errors = render_errors(salt_cli.run("state.show_sls", "haproxy.config", minion_tgt=web))
    assert any("secret tls:vip:cert is missing from the pillar" in e and "docs/secrets.md" in e for e in errors), errors


def test_bad_app_settings_stop_the_render_naming_the_key(salt_cli, topology, representatives):
    web = a_web_node(topology, representatives)
    extra = f"pillar={json.dumps({'app': {'version': '1..2'}})}"
    errors = render_errors(salt_cli.run("state.show_sls", "webapp.release", extra, minion_tgt=web))
    assert any('app:version "1..2" is invalid' in e for e in errors), errors


CRON_JOB = {"name": "reindex", "schedule": "*:0/5", "command": "php bin/reindex.php"}


def test_a_cron_job_renders_a_timer_on_every_web_node(salt_cli, topology, representatives):
    web = a_web_node(topology, representatives)
    extra = f"pillar={json.dumps({'app': {'cron': [CRON_JOB]}})}"
    ret = salt_cli.run("state.show_sls", "webapp.cron", extra, minion_tgt=web)
    assert not render_errors(ret), render_errors(ret)
    timer = ret.data["webapp-cron-lemp-cron-app-reindex-timer-unit-file-managed"]["file"]
    contents = next(arg["contents"] for arg in timer if isinstance(arg, dict) and "contents" in arg)
    assert "OnCalendar=*-*-* *:00/5:00\n" in contents
    assert "webapp-cron-lemp-cron-app-reindex-timer-running" in ret.data


def test_a_bad_cron_schedule_stops_the_render_naming_the_job(salt_cli, topology, representatives):
    web = a_web_node(topology, representatives)
    extra = f"pillar={json.dumps({'app': {'cron': [dict(CRON_JOB, schedule='every day')]}})}"
    errors = render_errors(salt_cli.run("state.show_sls", "webapp", extra, minion_tgt=web))
    assert any('app:cron:reindex:schedule "every day" is not a systemd calendar expression' in e for e in errors), errors


def test_the_deployed_release_stays_current_until_the_pillar_names_another(salt_cli, salt_roots, topology,
                                                                           representatives):
    # pillar/app.sls names 1.0.0; orch.deploy recorded 1.0.1 while it did.
    web = a_web_node(topology, representatives)
    record = pathlib.Path(salt_roots["record"])
    record.write_text(json.dumps({"app": {"version": "1.0.1", "base": "1.0.0", "source": {"path": "salt://app"}}}))
    try:
        ret = salt_cli.run("state.show_sls", "webapp.switch", minion_tgt=web)
        assert "webapp-app-release-1.0.1-is-current" in ret.data, render_errors(ret) or ret.data
        extra = f"pillar={json.dumps({'app': {'version': '1.0.2'}})}"
        ret = salt_cli.run("state.show_sls", "webapp.switch", extra, minion_tgt=web)
        assert "webapp-app-release-1.0.2-is-current" in ret.data, render_errors(ret) or ret.data
    finally:
        record.unlink()


# Every service whose configuration Salt writes runs what is on disk after the
# next successful run, also when the run that wrote it failed (issue #9):
# a lemp_service.config_loaded state per service. {sls: (service, action)}
CONVERGENCE = {
    "nginx": ("nginx", "reload"),
    "phpfpm": ("php8.2-fpm", "reload"),
    "haproxy": ("haproxy", "reload"),
    "keepalived": ("keepalived", "reload"),
    "redis": ("redis-server", "restart"),
    # a highstate never restarts a Galera node: it only reports
    "galera": ("mariadb", "none"),
    "firewall": ("nftables", "reload"),
}


def _args(body, function):
    """The arguments of the `function` call of a show_sls state body, as a dict."""
    calls = [v for key, v in body.items() if not key.startswith("__") and function in v]
    args = {}
    for item in (calls[0] if calls else []):
        if isinstance(item, dict):
            args.update(item)
    return args if calls else None


@pytest.mark.parametrize("sls", sorted(CONVERGENCE))
def test_each_service_applies_its_configuration_on_content_not_only_on_watch(sls, salt_cli, topology,
                                                                            representatives):
    service, action = CONVERGENCE[sls]
    minion = minion_for(sls, topology, representatives)
    ret = salt_cli.run("state.show_sls", sls, minion_tgt=minion)
    assert not render_errors(ret), render_errors(ret)
    states = {sid: body for sid, body in ret.data.items() if isinstance(body, dict)}
    converging = [args for body in states.values()
                  if (args := _args(body, "config_loaded")) and args.get("name") == service]
    assert len(converging) == 1, f"{sls}: no lemp_service.config_loaded for {service}"
    assert converging[0].get("action", "reload") == action
    assert converging[0].get("paths")
    # Nothing reloads twice: the service.running state watches no file that the
    # convergence state covers (only a file written once may restart it).
    for sid, body in states.items():
        args = _args(body, "running")
        if "service" in body and args and args.get("name") == service:
            watched = [list(w.values())[0] for w in args.get("watch", [])]
            assert all("written-once" in w for w in watched), (sid, watched)


def test_sentinel_is_restarted_when_it_does_not_monitor_the_sessions_master(salt_cli, topology, representatives):
    minion = minion_for("redis.sentinel", topology, representatives)
    ret = salt_cli.run("state.show_sls", "redis.sentinel", minion_tgt=minion)
    body = ret.data["redis-sentinel-monitors-the-sessions-master"]
    args = _args(body, "run")
    assert args["name"] == "systemctl restart redis-sentinel"
    assert "SENTINEL MASTER sessions" in args["unless"]


def _firewall_rules(salt_cli, minion, *extra):
    ret = salt_cli.run("state.show_sls", "firewall.config", *extra, minion_tgt=minion)
    if render_errors(ret):
        return None, render_errors(ret)
    return _args(ret.data["firewall-nftables-config-file-managed"], "managed")["context"]["rules"], []


def test_every_machine_gets_the_firewall_rules_of_its_roles(salt_cli, topology, representatives):
    import lemp_firewall

    services = lemp_firewall.check_services(yaml.safe_load((REPO / "pillar" / "ports.yaml").read_text()), topology)
    for name in representatives:
        rules, errors = _firewall_rules(salt_cli, name)
        assert not errors, (name, errors)
        assert rules == lemp_firewall.machine_rules(topology, services, name), name


def test_a_bad_admin_network_stops_the_firewall_render_naming_the_pillar_key(salt_cli, representatives):
    extra = f"pillar={json.dumps({'firewall': {'lookup': {'admin_networks': ['everyone']}}})}"
    _, errors = _firewall_rules(salt_cli, representatives[0], extra)
    assert any("firewall:lookup:admin_networks: 'everyone' is not an IPv4 address" in e for e in errors), errors
