"""Every state, orchestration, reactor and pillar file renders with the lab pillar."""

import json
import pathlib
import re

import pytest
import yaml

import lemp_release  # tests/conftest.py puts _modules on the path

REPO = pathlib.Path(__file__).resolve().parents[2]
# The version pillar/app.sls names (the sample app's; read, not repeated here,
# so a new sample release does not break these tests), and its fingerprint as
# orch.deploy records it (lemp_release.fingerprint).
PILLAR_APP_VERSION = re.search(r"^  version: (\S+)$", (REPO / "pillar" / "app.sls").read_text(), re.M).group(1)
PILLAR_APP_BASE = lemp_release.fingerprint(PILLAR_APP_VERSION, {"path": "salt://app"})


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
    "enrol": {"enrol": {"node": "web3"}},
    "scale_in": {"node": "web3"},
    "rotate_secret": {"secret": "app_db"},
    "autoscale": {"scale_request": {"sender": "mon1", "direction": "out"}},
    "nginx.maintenance": {"nginx_maintenance": {"enabled": True, "reason": "restore"}},
    "restore": {"restore": {"backup": "latest", "until": "latest"}},
}


def applied_by_common(sls):
    """Whether salt/common includes this sls (or the formula it is part of,
    e.g. firewall.config): every machine applies it."""
    included = ["common"] + yaml.safe_load((REPO / "salt" / "common" / "init.sls").read_text())["include"]
    return any(sls == name or sls.startswith(name + ".") for name in included)


def minion_for(sls, topology, representatives):
    """The representative minion whose roles apply this component."""
    component = sls.split(".")[0]
    # the most specific applier first: zabbix.watchdog.* on the master,
    # zabbix.server.* on the monitor, then any role applying the component
    # (zabbix.agent, which common includes, is not its own: zabbix.server's
    # machine applies common too), then common's own (firewall: no role names it)
    # A role naming the sls itself comes first: `redis` on a web node, not on
    # an LB, which applies only redis.sentinel (and holds no Redis password).
    parts = sls.split(".")
    declared = yaml.safe_load((REPO / "pillar" / "roles.yaml").read_text())

    def naming(name):
        return [role for role, decl in declared.items() if name in ((decl or {}).get("states") or [])]

    prefixes = [".".join(parts[:n]) for n in range(len(parts), 0, -1)]
    roles = next((r for r in (naming(p) or roles_applying(p) for p in prefixes) if r), None)
    if not roles and applied_by_common(sls):
        return representatives[0]
    roles = roles or [NOT_YET_APPLIED.get(component)]
    known = {**topology["machines"], **topology.get("pool_machines", {})}
    for role in roles:
        for name in representatives:
            if role in known[name]["roles"]:
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


def batchable(sls):
    """Rendered with the others of its minion in one call: not a clean.sls
    (it removes what its component's states make, with IDs of its own that
    may meet theirs) nor a file that needs pillar on the command line."""
    return not (sls == "clean" or sls.endswith(".clean")) and sls not in COMMAND_LINE_PILLAR


@pytest.fixture(scope="session")
def rendered_in_batches(salt_cli, topology, representatives, pool_representative):
    """The state files that rendered without an error in one
    `state.show_sls a,b,c...` per representative minion. One call per file
    (116) was about 40% of these tests' time, which they spend beside the
    lab's bring-up and tests on the same 2 cores. A batch with any error
    proves nothing per file: its files then render one by one, so that the
    failure names its file."""
    batches = {}
    for path in state_files():
        sls = sls_name(path, REPO / "salt")
        minion = minion_for(sls, topology, representatives + [pool_representative])
        if minion and batchable(sls):
            batches.setdefault(minion, []).append(sls)
    clean = set()
    for minion, names in batches.items():
        if not render_errors(salt_cli.run("state.show_sls", ",".join(names), minion_tgt=minion)):
            clean.update(names)
    return clean


@pytest.mark.parametrize("path", state_files(), ids=lambda p: str(p.relative_to(REPO / "salt")))
def test_state_file_renders(path, salt_cli, topology, representatives, pool_representative, rendered_in_batches):
    sls = sls_name(path, REPO / "salt")
    minion = minion_for(sls, topology, representatives + [pool_representative])
    assert minion, f"{sls}: no role in pillar/roles.yaml applies it; wire it or remove it"
    if sls in rendered_in_batches:
        return
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


# orch.rotate_secret for each secret it rotates (_runners/lemp_secrets.py ROTATIONS)
ROTATABLE = ["app_db", "redis_sessions", "redis_check", "redis_sentinel", "redis_monitor", "redis_admin",
             "redis_replication", "sentinel_auth", "zabbix_psk"]


@pytest.mark.parametrize("secret", ROTATABLE)
def test_rotate_secret_renders_for_each_rotatable_secret(secret, salt_run_cli):
    ret = salt_run_cli.run("state.orchestrate_show_sls", "orch.rotate_secret", f"pillar={json.dumps({'secret': secret})}")
    assert ret.returncode == 0, ret
    for steps in ret.data.values():
        assert isinstance(steps, dict), steps
        # a plan, or a refusal because the render's minions are no live cluster; never "cannot be rotated"
        assert not any("cannot be rotated" in json.dumps(step) or "unknown secret" in json.dumps(step)
                       for step in steps.values()), steps


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
    # pillar/app.sls names PILLAR_APP_VERSION; orch.deploy recorded 1.0.1 while it did.
    web = a_web_node(topology, representatives)
    record = pathlib.Path(salt_roots["record"])
    record.write_text(json.dumps({"app": {"version": "1.0.1", "base": PILLAR_APP_BASE,
                                          "source": {"path": "salt://app"}}}))
    try:
        ret = salt_cli.run("state.show_sls", "webapp.switch", minion_tgt=web)
        assert "webapp-app-release-1.0.1-is-current" in ret.data, render_errors(ret) or ret.data
        extra = f"pillar={json.dumps({'app': {'version': '1.0.2'}})}"
        ret = salt_cli.run("state.show_sls", "webapp.switch", extra, minion_tgt=web)
        assert "webapp-app-release-1.0.2-is-current" in ret.data, render_errors(ret) or ret.data
    finally:
        record.unlink()


SPEND = "spend-deployed-release-records-pillar-app-moved-away-from"


def test_orch_site_spends_a_record_pillar_app_moved_away_from_and_keeps_a_current_one(salt_run_cli, salt_roots):
    record = pathlib.Path(salt_roots["record"])
    try:
        for base, state in ((PILLAR_APP_BASE, "test.succeed_without_changes"),
                            (lemp_release.fingerprint("0.9.0", {"path": "salt://app"}), "salt.runner")):
            record.write_text(json.dumps({"app": {"version": "1.0.1", "base": base, "source": {}}}))
            ret = salt_run_cli.run("state.orchestrate_show_sls", "orch.site")
            assert ret.returncode == 0, ret
            steps = next(iter(ret.data.values()))
            assert isinstance(steps, dict), steps
            module, function = state.split(".")
            assert function in steps[SPEND].get(module, []), steps[SPEND]
            assert "spend-deployed-release-records-pillar-app-moved-away-from" in str(
                steps["apply-highstate-on-master-tier"]), "the highstates come after it"
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
    "common.ssh": ("ssh", "reload"),
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


def test_haproxy_records_a_reload_only_when_its_master_confirms_it(salt_cli, topology, representatives):
    # `haproxy -c` passes on a configuration that fails at load time; the
    # master's verdict (lemp_haproxy.reload_confirmed) decides.
    minion = minion_for("haproxy", topology, representatives)
    ret = salt_cli.run("state.show_sls", "haproxy.service", minion_tgt=minion)
    assert not render_errors(ret), render_errors(ret)
    args = _args(ret.data["haproxy-runs-its-current-configuration"], "config_loaded")
    assert args["confirm_fun"] == "lemp_haproxy.reload_confirmed"
    assert args["confirm_kwargs"] == {"timeout": 15, "unit": "haproxy"}
    functions = salt_cli.run("sys.list_functions", "lemp_haproxy", minion_tgt=minion)
    assert args["confirm_fun"] in functions.data, functions


def test_sentinel_is_restarted_when_it_does_not_monitor_the_sessions_master(salt_cli, topology, representatives):
    minion = minion_for("redis.sentinel", topology, representatives)
    ret = salt_cli.run("state.show_sls", "redis.sentinel", minion_tgt=minion)
    body = ret.data["redis-sentinel-monitors-the-sessions-master"]
    args = _args(body, "run")
    assert args["name"] == "systemctl restart redis-sentinel"
    assert "SENTINEL MASTER sessions" in args["unless"]


def test_masterauth_is_applied_live_from_an_include_that_restarts_nothing(salt_cli, topology, representatives):
    """redis_replication's rotation: lemp-ha.conf (whose change restarts
    Redis) only includes the file with masterauth, which a state applies live;
    a restart is skipped when Redis already runs the files' values (the upgrade)."""
    minion = minion_for("redis", topology, representatives)
    states = salt_cli.run("state.show_sls", "redis", minion_tgt=minion).data
    settings = _args(states["redis-lemp-ha-settings-file-managed"], "managed")["contents"]
    assert "include /etc/redis/lemp-ha-replication.conf" in settings and "masterauth" not in settings.replace(
        "masteruser/masterauth", "")
    assert "masterauth " in _args(states["redis-replication-settings-file-managed"], "managed")["contents"]
    restart = _args(states["redis-server-runs-its-current-settings"], "config_loaded")
    assert restart["paths"] == ["/etc/redis/lemp-ha.conf"] and restart["applied_fun"] == "lemp_redis.runs_settings"
    live = _args(states["redis-replication-password-applied-live"], "replication_auth_applied")
    assert live["masteruser"] == "replication" and live["masterauth"]
    # orch.rotate_secret applies it alone
    alone = salt_cli.run("state.show_sls", "redis.replication", minion_tgt=minion).data
    assert "redis-replication-password-applied-live" in alone, alone


def test_issue_14_redis_settings_reach_a_running_node_live(salt_cli, topology, representatives):
    """replica-serve-stale-data and Sentinel's 1 s down-after reach a running
    node without a restart (a restart of the master is a failover)."""
    minion = minion_for("redis", topology, representatives)
    states = salt_cli.run("state.show_sls", "redis", minion_tgt=minion).data
    settings = _args(states["redis-lemp-ha-settings-file-managed"], "managed")["contents"]
    assert "\nreplica-serve-stale-data no\n" in settings and "\nmin-replicas-to-write 0\n" in settings
    live = _args(states["redis-server-live-settings-applied"], "settings_applied_live")
    assert "replica-serve-stale-data" in live["settings"] and live["name"] == "/etc/redis/lemp-ha.conf"
    restart = _args(states["redis-server-runs-its-current-settings"], "config_loaded")
    assert {"lemp_redis": "redis-server-live-settings-applied"} in restart["require"]
    sentinel = salt_cli.run("state.show_sls", "redis.sentinel", minion_tgt=minion).data
    conf = _args(sentinel["redis-sentinel-config-file-written-once"], "managed")["contents"]
    assert "sentinel down-after-milliseconds sessions 1000" in conf
    applied = _args(sentinel["redis-sentinel-down-after-milliseconds-applied"], "run")
    assert "SENTINEL SET sessions down-after-milliseconds 1000" in applied["name"]
    assert "grep -qxF 1000" in applied["unless"]


def test_sentinel_accepts_its_passwords_live_and_restarts_only_for_requirepass(salt_cli, topology,
                                                                             representatives):
    """sentinel_auth's rotation: redis.sentinel_accepts (alone: every
    Sentinel accepts old or new, then only new, live) and redis.sentinel's
    restart with the new requirepass, which accepts the previous one too."""
    minion = minion_for("redis.sentinel", topology, representatives)
    alone = salt_cli.run("state.show_sls", "redis.sentinel_accepts", minion_tgt=minion).data
    accepts = _args(alone["redis-sentinel-accepts-its-current-passwords-live"], "sentinel_accepts_passwords")
    assert accepts["password"] and accepts["previous_password"] == ""
    states = salt_cli.run("state.show_sls", "redis.sentinel", minion_tgt=minion).data
    assert "redis-sentinel-accepts-its-current-passwords-live" in states
    auth = _args(states["redis-sentinel-requires-its-password-and-logs-in-as-its-user"], "sentinel_authenticated")
    assert auth["previous_requirepass"] == ""


def _firewall_rules(salt_cli, minion, *extra):
    ret = salt_cli.run("state.show_sls", "firewall.config", *extra, minion_tgt=minion)
    if render_errors(ret):
        return None, render_errors(ret)
    return _args(ret.data["firewall-nftables-config-file-managed"], "managed")["context"]["rules"], []


def test_every_machine_gets_the_firewall_rules_of_its_roles(salt_cli, topology, representatives,
                                                           pool_representative):
    import lemp_firewall

    services = lemp_firewall.check_services(yaml.safe_load((REPO / "pillar" / "ports.yaml").read_text()), topology)
    # a slot of the scaling pool too: it is firewalled as what it serves (web_pool) before it is enrolled
    for name in representatives + [pool_representative]:
        rules, errors = _firewall_rules(salt_cli, name)
        assert not errors, (name, errors)
        assert rules == lemp_firewall.machine_rules(topology, services, name), name


def test_a_bad_admin_network_stops_the_firewall_render_naming_the_pillar_key(salt_cli, representatives):
    extra = f"pillar={json.dumps({'firewall': {'lookup': {'admin_networks': ['everyone']}}})}"
    _, errors = _firewall_rules(salt_cli, representatives[0], extra)
    assert any("firewall:lookup:admin_networks: 'everyone' is not an IPv4 address" in e for e in errors), errors


def test_every_machine_takes_ssh_keys_only(salt_cli, representatives):
    for name in representatives:
        ret = salt_cli.run("state.show_sls", "common.ssh", minion_tgt=name)
        assert not render_errors(ret), (name, render_errors(ret))
        body = ret.data["common-ssh-keys-only-config-file-managed"]["file"]
        contents = next(item["contents"] for item in body if isinstance(item, dict) and "contents" in item)
        for line in ("PasswordAuthentication no", "KbdInteractiveAuthentication no",
                     "PermitRootLogin prohibit-password"):
            assert line in contents.splitlines(), (name, contents)


def show(salt_cli, sls, pillar, minion):
    return salt_cli.run("state.show_sls", sls, f"pillar={json.dumps(pillar)}", minion_tgt=minion)


WORDPRESS = {"app": {
    "name": "blog", "version": "6.1.9",
    "source": {"path": "", "package": {"name": "wordpress", "path": "/usr/share/wordpress", "version": "6.1.9+dfsg1-0+deb12u1",
                                     "with": ["wordpress-theme-twentytwentythree"]}},
    "docroot": ".", "config_file": "wp-config.php", "url": "https://www.example.com",
    "php": {"extensions": ["xml", "mbstring"], "ini": {"upload_max_filesize": "64M", "post_max_size": "70M"}},
    "shared_paths": ["wp-content/uploads"], "writable_paths": ["wp-content/cache"],
}}


def test_a_packaged_app_with_shared_paths_renders_its_links_and_static_locations(salt_cli, topology, representatives):
    web = a_web_node(topology, representatives)
    ret = show(salt_cli, "webapp.release", WORDPRESS, web)
    assert not render_errors(ret), render_errors(ret)
    ids = set(ret.data)
    assert "webapp-blog-package-wordpress-installed" in ids
    assert "webapp-blog-release-6.1.9-files-copied-from-package" in ids
    assert "webapp-blog-release-6.1.9-wp-content/uploads-linked-to-shared-volume" in ids
    assert "webapp-blog-release-6.1.9-wp-content/cache-linked-to-this-node" in ids
    # a half-built release goes before the copy; the marker records the links
    assert "webapp-blog-release-6.1.9-half-built-copy-removed" in ids
    marker = _args(ret.data["webapp-blog-release-6.1.9-marked-complete"], "managed")["contents"]
    assert json.loads(marker)["links"][0]["target"] == "/srv/www-uploads/blog/wp-content/uploads"
    nginx = show(salt_cli, "nginx.config", WORDPRESS, web)
    assert not render_errors(nginx), render_errors(nginx)
    site = json.dumps(nginx.data["nginx-app-site-file-managed"])
    assert '"client_max_body_size": "70m"' in site
    assert '"static_urls": ["/wp-content/uploads/", "/wp-content/cache/"]' in site
    php = show(salt_cli, "phpfpm.config", WORDPRESS, web)
    assert "php8.2-xml" in json.dumps(php.data["phpfpm-packages-installed"])
    assert "upload_max_filesize = 64M" in json.dumps(php.data["phpfpm-app-cli-ini-file-managed"])


BAD_APP = [
    ("unknown extension", "phpfpm.package", {"php": {"extensions": ["nosuchext"]}},
     "apt on this machine knows no package php8.2-nosuchext"),
    ("shared path escaping", "webapp.release", {"shared_paths": ["../etc"]},
     'app:shared_paths entry "../etc" must be a relative path inside the release'),
    ("missing secret", "webapp.release", {"secrets": ["wp_nonce_salt"]},
     "secret app_secrets:wp_nonce_salt is missing from the pillar"),
    ("bad url", "nginx.config", {"url": "ftp://www.example.com"}, 'app:url "ftp://www.example.com" is invalid'),
]


@pytest.mark.parametrize("case, sls, app, message", BAD_APP, ids=[b[0] for b in BAD_APP])
def test_bad_app_settings_stop_the_render_before_any_change(salt_cli, topology, representatives, case, sls, app, message):
    errors = render_errors(show(salt_cli, sls, {"app": app}, a_web_node(topology, representatives)))
    assert any(message in e for e in errors), errors


def test_bad_zabbix_settings_stop_the_render_naming_the_key(salt_cli, topology, representatives):
    mon = minion_for("zabbix.server", topology, representatives)
    extra = f"pillar={json.dumps({'zabbix': {'lookup': {'server': {'api': {'users': [{'username': 'jdoe'}]}}}}})}"
    errors = render_errors(salt_cli.run("state.show_sls", "zabbix.server.api", extra, minion_tgt=mon))
    assert any("zabbix:lookup:server:api:users:jdoe has no group" in e for e in errors), errors


def test_every_machine_runs_a_zabbix_agent_announcing_its_roles(salt_cli, topology, representatives,
                                                               pool_representative):
    known = {**topology["machines"], **topology["pool_machines"]}
    for name in representatives + [pool_representative]:
        ret = salt_cli.run("state.show_sls", "common", minion_tgt=name)
        assert not render_errors(ret), (name, render_errors(ret))
        context = _args(ret.data["zabbix-agent-config-file-managed"], "managed")["context"]
        roles = ";".join(f"role={r}" for r in known[name]["roles"])
        assert context["host_metadata"] == f"lemp-ha;{roles};", name
        assert context["servers"] == [m["address"] for m in topology["roles"]["monitor"]["members"]]


def test_nginx_keeps_its_own_body_limit_when_the_app_sets_no_upload_size(salt_cli, topology, representatives):
    ret = show(salt_cli, "nginx.config", {"app": {"php": {"ini": {}}}}, a_web_node(topology, representatives))
    assert not render_errors(ret), render_errors(ret)
    assert '"client_max_body_size": "20m"' in json.dumps(ret.data["nginx-app-site-file-managed"])


def test_the_php_version_names_the_packages_service_and_paths(salt_cli, topology, representatives):
    web = a_web_node(topology, representatives)
    ret = show(salt_cli, "phpfpm", {"phpfpm": {"lookup": {"version": "8.3"}}}, web)
    assert not render_errors(ret), render_errors(ret)
    text = json.dumps(ret.data)
    assert "8.2" not in text
    loaded = _args(ret.data["phpfpm-runs-its-current-configuration"], "config_loaded")
    assert loaded["name"] == "php8.3-fpm"
    assert loaded["paths"] == ["/etc/php/8.3/fpm"]
    assert loaded["verify_cmd"] == "/usr/sbin/php-fpm8.3 -t"
    assert "php8.3-fpm" in json.dumps(ret.data["phpfpm-packages-installed"])


# --- staff access through a directory (salt/openldap, zabbix.server.ldap) ---
def a_monitor(topology, representatives):
    return next(name for name in representatives if "monitor" in topology["machines"][name]["roles"])


def test_the_lab_directory_and_the_ldap_sync_render_on_the_monitor(salt_cli, topology, representatives):
    ret = salt_cli.run("state.show_sls", "zabbix.server.ldap", minion_tgt=a_monitor(topology, representatives))
    assert not render_errors(ret), render_errors(ret)
    for sid in ("openldap-slapd-debconf-preseeded-before-first-install", "openldap-slapd-listens-on-loopback-only",
                "openldap-lab-directory-seeded-from-pillar", "zabbix-ldap-authentication-configured",
                "zabbix-ldap-users-synced-from-directory-at-deploy", "zabbix-ldap-sync-timer-running"):
        assert sid in ret.data, sid
    # the admin password is preseeded before the first install only
    preseed = ret.data["openldap-slapd-debconf-preseeded-before-first-install"]["debconf"]
    assert any("unless" in arg for arg in preseed if isinstance(arg, dict)), preseed


def test_without_a_directory_neither_slapd_nor_the_sync_is_applied(salt_cli, topology, representatives):
    extra = f"pillar={json.dumps({'zabbix': {'lookup': {'ldap': {'lab_directory': False}}}})}"
    mon = a_monitor(topology, representatives)
    for sls in ("openldap", "zabbix.server.ldap"):
        ret = salt_cli.run("state.show_sls", sls, extra, minion_tgt=mon)
        assert not render_errors(ret), render_errors(ret)
        assert not [sid for sid in ret.data if "openldap" in sid or "zabbix-ldap" in sid], (sls, sorted(ret.data))


def test_a_bad_ldap_host_stops_the_render_naming_the_key(salt_cli, topology, representatives):
    extra = f"pillar={json.dumps({'zabbix': {'lookup': {'ldap': {'host': 'ldap.example.com'}}}})}"
    errors = render_errors(salt_cli.run("state.show_sls", "zabbix.server.ldap", extra,
                                        minion_tgt=a_monitor(topology, representatives)))
    assert any("zabbix:lookup:ldap:host 'ldap.example.com' must be ldap://host or ldaps://host" in e
               for e in errors), errors
