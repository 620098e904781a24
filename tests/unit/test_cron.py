"""The app's scheduled jobs (pillar app:cron) are checked and planned by one
pure function, _modules/lemp_cron.py: a bad job stops the render naming the
key and the fix; the units the node needs, and the stale ones, are listed.
Schedules are checked with the host's real systemd-analyze."""

import pathlib
import subprocess

import pytest

import lemp_cron  # tests/conftest.py puts _modules on the path

REPO = pathlib.Path(__file__).resolve().parents[2]

SETTINGS = {
    "node": "web1", "user": "www-data", "app_dir": "/srv/www/shop", "redis_host": "10.77.0.100",
    "redis_port": 6379, "lock_ttl": 3600, "wrapper": "/usr/local/sbin/lemp-cron-once",
    "command_dir": "/etc/lemp-ha/cron", "auth_file": "/etc/lemp-ha/cron-redis.auth",
}


@pytest.fixture(scope="module")
def analyze(host_tool):
    """systemd-analyze calendar of this host, as the minion runs it."""
    binary = host_tool("systemd-analyze")

    def run(schedule):
        proc = subprocess.run([binary, "calendar", "--", schedule], capture_output=True, text=True, timeout=30)
        return proc.returncode, proc.stdout, proc.stderr

    return run


def app_with(*jobs):
    return {"name": "shop", "cron": list(jobs)}


def job(name="reindex", schedule="*:0/5", command="php bin/console app:reindex"):
    return {"name": name, "schedule": schedule, "command": command}


def test_a_job_gets_a_timer_on_its_schedule_and_a_service_running_the_wrapper(analyze):
    plan = lemp_cron.plan(app_with(job()), SETTINGS, [], analyze)
    (planned,) = plan["jobs"]
    assert planned["unit"] == "lemp-cron-shop-reindex"
    assert plan["files"] == ["lemp-cron-shop-reindex.timer", "lemp-cron-shop-reindex.service"]
    assert "OnCalendar=*-*-* *:00/5:00\n" in planned["timer"]
    assert "AccuracySec=1s\n" in planned["timer"] and "RandomizedDelaySec=0\n" in planned["timer"]
    assert "Persistent=false\n" in planned["timer"]
    assert ("ExecStart=/usr/local/sbin/lemp-cron-once /etc/lemp-ha/cron/lemp-cron-shop-reindex.command\n"
            in planned["service"])
    for line in ("LEMP_CRON_JOB=reindex", "LEMP_CRON_NODE=web1", "LEMP_CRON_USER=www-data",
                 "LEMP_CRON_DIR=/srv/www/shop/current", "LEMP_CRON_REDIS_HOST=10.77.0.100",
                 "LEMP_CRON_REDIS_PORT=6379", "LEMP_CRON_TTL=3600"):
        assert f"Environment={line}\n" in planned["service"]
    assert planned["command"] == "php bin/console app:reindex"


def test_the_redis_password_is_never_in_a_unit(analyze):
    plan = lemp_cron.plan(app_with(job()), dict(SETTINGS), [], analyze)
    service = plan["jobs"][0]["service"]
    assert "REDISCLI_AUTH" not in service and "password" not in service.lower()
    assert "Environment=LEMP_CRON_AUTH_FILE=/etc/lemp-ha/cron-redis.auth\n" in service


def test_no_jobs_plan_nothing_and_every_lemp_cron_unit_is_stale(analyze):
    existing = ["/etc/systemd/system/lemp-cron-shop-reindex.timer", "/etc/systemd/system/lemp-cron-shop-reindex.service"]
    for app in ({"name": "shop"}, app_with()):
        plan = lemp_cron.plan(app, SETTINGS, existing, analyze)
        assert plan["jobs"] == [] and plan["files"] == []
        assert plan["stale"] == ["lemp-cron-shop-reindex.service", "lemp-cron-shop-reindex.timer"]


def test_a_renamed_job_or_app_leaves_its_old_units_stale_and_nothing_else(analyze):
    existing = ["/etc/systemd/system/lemp-cron-shop-reindex.timer", "/etc/systemd/system/lemp-cron-shop-reindex.service",
                "/etc/systemd/system/lemp-cron-old-app-purge.timer", "/etc/systemd/system/lemp-cron-shop-purge.timer",
                "/etc/systemd/system/lemp-cron-notes.txt", "/etc/systemd/system/nginx.service"]
    plan = lemp_cron.plan(app_with(job("purge", "daily", "php purge.php")), SETTINGS, existing, analyze)
    assert plan["stale"] == ["lemp-cron-old-app-purge.timer", "lemp-cron-shop-reindex.service",
                             "lemp-cron-shop-reindex.timer"]


@pytest.mark.parametrize("schedule", ["every five minutes", "*:61", "Mon..Funday 02:00", "25:00"])
def test_a_schedule_systemd_does_not_parse_stops_the_render_naming_the_job(analyze, schedule):
    with pytest.raises(lemp_cron.CronError, match=r"app:cron:reindex:schedule .* is not a systemd calendar expression"):
        lemp_cron.plan(app_with(job(schedule=schedule)), SETTINGS, [], analyze)


@pytest.mark.parametrize("schedule", ["*:*:0/30", "*:*:*", "*:0/5:15", "*:*:00,30"])
def test_a_schedule_off_the_minute_or_twice_a_minute_is_refused(analyze, schedule):
    # Its slot is its minute: two elapses in one minute would share one lock.
    with pytest.raises(lemp_cron.CronError, match="fires off the minute or more than once a minute"):
        lemp_cron.plan(app_with(job(schedule=schedule)), SETTINGS, [], analyze)


@pytest.mark.parametrize("schedule, normalized", [
    ("daily", "*-*-* 00:00:00"),
    ("Mon 02:30 Europe/Paris", "Mon *-*-* 02:30:00 Europe/Paris"),
    ("*:0/1", "*-*-* *:00/1:00"),
])
def test_good_schedules_are_written_in_systemds_normalized_form(analyze, schedule, normalized):
    plan = lemp_cron.plan(app_with(job(schedule=schedule)), SETTINGS, [], analyze)
    assert f"OnCalendar={normalized}\n" in plan["jobs"][0]["timer"]


@pytest.mark.parametrize("schedule", ["daily\nExecStart=/bin/evil", "*:0/5 %n", "", None])
def test_a_schedule_that_could_break_the_unit_file_is_refused_before_systemd_sees_it(schedule):
    def never(_):
        raise AssertionError("systemd-analyze must not be asked")

    with pytest.raises(lemp_cron.CronError, match="app:cron:reindex:schedule"):
        lemp_cron.plan(app_with(job(schedule=schedule)), SETTINGS, [], never)


@pytest.mark.parametrize("name", ["Reindex", "-x", "a_b", "x" * 41, "", "a b", "a/b"])
def test_a_bad_job_name_is_refused_naming_the_rule(analyze, name):
    with pytest.raises(lemp_cron.CronError, match=r"app:cron\[0\]:name .* is invalid: 1-40 of a-z 0-9 -"):
        lemp_cron.plan(app_with(job(name=name)), SETTINGS, [], analyze)


def test_names_of_40_characters_and_digits_first_are_accepted(analyze):
    plan = lemp_cron.plan(app_with(job(name="0" + "a" * 39)), SETTINGS, [], analyze)
    assert plan["jobs"][0]["unit"] == "lemp-cron-shop-0" + "a" * 39


def test_a_job_name_used_twice_is_refused(analyze):
    with pytest.raises(lemp_cron.CronError, match=r"app:cron\[1\]:name \"reindex\" is used twice"):
        lemp_cron.plan(app_with(job(), job()), SETTINGS, [], analyze)


@pytest.mark.parametrize("entry, message", [
    ({"name": "x", "schedule": "daily"}, r"app:cron\[0\] must have exactly name, schedule and command"),
    ({"name": "x", "schedule": "daily", "command": "ls", "user": "root"}, r"must have exactly .* \(got: command, name, schedule, user\)"),
    ("php x.php", r"app:cron\[0\] must have exactly .* \(got: str\)"),
    ({"name": "x", "schedule": "daily", "command": "  "}, r"app:cron:x:command is empty"),
])
def test_an_incomplete_job_is_refused_naming_what_is_missing(analyze, entry, message):
    with pytest.raises(lemp_cron.CronError, match=message):
        lemp_cron.plan({"name": "shop", "cron": [entry]}, SETTINGS, [], analyze)


def test_cron_must_be_a_list(analyze):
    with pytest.raises(lemp_cron.CronError, match="app:cron must be a list"):
        lemp_cron.plan({"name": "shop", "cron": {"reindex": job()}}, SETTINGS, [], analyze)


@pytest.mark.parametrize("field, value", [
    ("app_dir", "/srv/www/my shop"), ("app_dir", "relative"), ("user", "Www Data"), ("lock_ttl", 0),
    ("redis_port", "6379"), ("redis_host", ""),
])
def test_settings_that_cannot_go_into_a_unit_file_are_refused(analyze, field, value):
    with pytest.raises(lemp_cron.CronError, match=f"app:cron: {field}"):
        lemp_cron.plan(app_with(job()), dict(SETTINGS, **{field: value}), [], analyze)


def test_the_wrapper_passes_the_password_in_the_environment_only_and_not_to_the_job():
    text = (REPO / "salt" / "webapp" / "files" / "lemp-cron-once").read_text()
    assert "REDISCLI_AUTH=$auth redis-cli" in text
    assert "export REDISCLI_AUTH" not in text and "-a " not in text and "AUTH " not in text
    assert 'SET "$key" "$node" NX EX "$LEMP_CRON_TTL"' in text
    assert 'runuser -u "$LEMP_CRON_USER"' in text
