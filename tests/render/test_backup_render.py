"""Backups (issue #11, docs/backups.md) render with the lab pillar: the timers
on arb1 follow the pillar's schedules, bad settings stop the render naming
the key, and the data nodes' key may run only the stream wrapper."""

import json

from test_render import _args, minion_for, render_errors


def a_machine_with(role, topology, representatives):
    return next(name for name in representatives if role in topology["machines"][name]["roles"])


def test_the_backup_timers_run_on_the_pillars_schedules(salt_cli, topology, representatives):
    store = a_machine_with("backup", topology, representatives)
    extra = f"pillar={json.dumps({'backup': {'schedule': {'incremental': '*-*-* *:05'}}})}"
    ret = salt_cli.run("state.show_sls", "backup", extra, minion_tgt=store)
    assert not render_errors(ret), render_errors(ret)
    timer = json.dumps(ret.data["backup-incremental-timer-unit-managed"])
    assert "OnCalendar=*-*-* *:05:00" in timer and "Unit=lemp-backup@incremental.service" in timer
    assert "OnCalendar=*-*-* 01:30:00" in json.dumps(ret.data["backup-full-timer-unit-managed"])
    archive = json.dumps(ret.data["backup-binlog-archive-service-unit-managed"])
    assert "Restart=always" in archive and "ExecStart=/usr/local/sbin/lemp-backup archive" in archive
    # the settings the job reads: data nodes and the endpoint from the topology, never a secret
    settings = json.dumps(ret.data["backup-settings-file-managed"])
    assert topology["network"]["internal_vip"] in settings and topology["network"]["vip"] not in settings
    assert all(m["address"] in settings for m in topology["roles"]["db"]["members"])
    assert "password" not in settings.replace("option_file", "")


def test_a_bad_backup_schedule_or_retention_stops_the_render_naming_the_key(salt_cli, topology, representatives):
    store = a_machine_with("backup", topology, representatives)
    extra = f"pillar={json.dumps({'backup': {'schedule': {'full': 'every night'}}})}"
    errors = render_errors(salt_cli.run("state.show_sls", "backup", extra, minion_tgt=store))
    assert any('backup:schedule:full "every night" is not a systemd calendar expression' in e for e in errors), errors
    extra = f"pillar={json.dumps({'backup': {'retention': {'daily_fulls': 0, 'hourly_incrementals': 48}}})}"
    errors = render_errors(salt_cli.run("state.show_sls", "backup", extra, minion_tgt=store))
    assert any("backup:retention:daily_fulls is 0" in e for e in errors), errors


def test_the_backup_key_may_only_run_the_stream_wrapper_from_the_backup_machines(salt_cli, topology,
                                                                                 representatives):
    db = a_machine_with("db", topology, representatives)
    ret = salt_cli.run("state.show_sls", "galera.backup_source", minion_tgt=db)
    assert not render_errors(ret), render_errors(ret)
    keys = json.dumps(ret.data["galera-backup-source-authorized-key-managed"])
    stores = [m["address"] for m in topology["roles"]["backup"]["members"]]
    assert f'restrict,from=\\"{",".join(stores)}\\",command=\\"sudo -n /usr/local/sbin/lemp-backup-stream' in keys
    assert "ecdsa-sha2-nistp256 " in keys and "PRIVATE KEY" not in keys


def test_the_restore_drill_runs_on_its_own_timer_as_the_jobs_user(salt_cli, topology, representatives):
    store = a_machine_with("backup", topology, representatives)
    ret = salt_cli.run("state.show_sls", "backup", minion_tgt=store)
    assert not render_errors(ret), render_errors(ret)
    unit = json.dumps(ret.data["backup-drill-service-unit-managed"])
    assert "ExecStart=/usr/local/sbin/lemp-backup drill" in unit and "User=lemp-backup" in unit
    assert "OnCalendar=*-*-* 04:30:00" in json.dumps(ret.data["backup-drill-timer-unit-managed"])
    settings = json.dumps(ret.data["backup-settings-file-managed"])
    assert "/var/lib/lemp-backup/monitoring/backup-status.json" in settings
    # mariadbd alone for the scratch server, never the mariadb service
    packages = json.dumps(ret.data["backup-packages-installed"])
    assert "mariadb-server-core" in packages and '"mariadb-server"' not in packages


def test_the_maintenance_switch_writes_or_removes_the_flag_the_site_checks(salt_cli, topology, representatives):
    web = a_machine_with("web", topology, representatives)
    on = salt_cli.run("state.show_sls", "nginx.maintenance",
                      f"pillar={json.dumps({'nginx_maintenance': {'enabled': True, 'reason': 'restore'}})}",
                      minion_tgt=web)
    assert not render_errors(on), render_errors(on)
    flag = json.dumps(on.data["nginx-maintenance-page-on"])
    assert "/var/lib/lemp-ha/maintenance.json" in flag
    off = salt_cli.run("state.show_sls", "nginx.maintenance",
                       f"pillar={json.dumps({'nginx_maintenance': {'enabled': False}})}", minion_tgt=web)
    assert "nginx-maintenance-page-off" in off.data
    errors = render_errors(salt_cli.run("state.show_sls", "nginx.maintenance", minion_tgt=web))
    assert any("pillar nginx_maintenance:enabled is None; give true" in e for e in errors), errors
    site = salt_cli.run("state.show_sls", "nginx.config", minion_tgt=web)
    assert not render_errors(site), render_errors(site)
    assert "/usr/local/share/lemp-ha/maintenance/maintenance.html" in json.dumps(
        site.data["nginx-maintenance-page-file-managed"])


def test_orch_restore_refuses_bad_input_before_any_step(salt_run_cli):
    for pillar, message in [(None, "pillar restore is missing"),
                            ({"restore": {"backup": "latest", "until": "latest", "confirm": "yes"}},
                             "restore:confirm 'yes' must be true or false")]:
        extra = [f"pillar={json.dumps(pillar)}"] if pillar else []
        ret = salt_run_cli.run("state.orchestrate_show_sls", "orch.restore", *extra)
        assert ret.returncode == 0, ret
        (steps,) = ret.data.values()
        assert list(steps) == ["restore-refused-nothing-changed"], steps
        assert message in json.dumps(steps)


def test_only_the_job_and_the_zabbix_agents_group_can_read_the_backup_status_file(salt_cli, topology,
                                                                                   representatives):
    store = a_machine_with("backup", topology, representatives)
    ret = salt_cli.run("state.show_sls", "backup", minion_tgt=store)
    assert not render_errors(ret), render_errors(ret)
    folder = _args(ret.data["backup-monitoring-directory-present"], "directory")
    assert (folder["name"], folder["user"], folder["group"], folder["mode"]) == (
        "/var/lib/lemp-backup/monitoring", "lemp-backup", "zabbix", "2750")
    # the group exists once the agent's package is in
    assert {"pkg": "zabbix-agent-package-installed"} in folder["require"]
    home = _args(ret.data["backup-home-directory-traversable"], "directory")
    assert (home["name"], home["mode"]) == ("/var/lib/lemp-backup", "0711")


def test_mon1_imports_and_links_the_backup_store_template_with_the_roles_thresholds(salt_cli, topology,
                                                                                     representatives):
    mon = minion_for("zabbix.server", topology, representatives)
    ret = salt_cli.run("state.show_sls", "zabbix.server.api", minion_tgt=mon)
    assert not render_errors(ret), render_errors(ret)
    files = _args(ret.data["zabbix-api-repo-templates-imported"], "templates_imported")["files"]
    assert any(f.endswith("lemp-ha-backup.yaml") for f in files), files
    roles = _args(ret.data["zabbix-api-role-macros-on-each-host"], "role_macros_present")["settings"]["roles"]
    assert "lemp-ha backup store" in roles["backup"]["templates"]
    # defaults.yaml's threshold for the hourly schedule, and the lab's shorter archive-lag one (pillar/monitor.sls)
    assert roles["backup"]["macros"] == {"{$LEMP.BACKUP.NEWEST.MAX_AGE}": "2h", "{$LEMP.BACKUP.ARCHIVE.LAG.MAX}": "30s"}
