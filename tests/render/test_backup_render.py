"""Backups (issue #11, docs/backups.md) render with the lab pillar: the timers
on arb1 follow the pillar's schedules, bad settings stop the render naming
the key, and the data nodes' key may run only the stream wrapper."""

import json

from test_render import render_errors


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
    assert topology["network"]["vip"] in settings
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
