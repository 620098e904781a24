"""The app's scheduled jobs (pillar app:cron) are checked and planned by one
pure function, _modules/lemp_cron.py: a bad job stops the render naming the
key and the fix; the units the node needs, and the stale ones, are listed.
Schedules are checked with the host's real systemd-analyze."""

import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time

import pytest

import lemp_cron  # tests/conftest.py puts _modules on the path
from loopback import free_port

REPO = pathlib.Path(__file__).resolve().parents[2]

SETTINGS = {
    "node": "web1", "user": "www-data", "app_dir": "/srv/www/shop", "redis_host": "10.77.0.100",
    "redis_port": 6379, "lock_ttl": 3600, "timeout": 3600, "wrapper": "/usr/local/sbin/lemp-cron-once",
    "command_dir": "/etc/lemp-ha/cron", "auth_file": "/etc/lemp-ha/cron-redis.auth",
}


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
        assert plan["stale_timers"] == ["lemp-cron-shop-reindex.timer"], "the timers to stop before removing"


def test_a_job_has_a_time_limit_so_a_hang_cannot_stop_its_timer_for_good(analyze):
    service = lemp_cron.plan(app_with(job()), dict(SETTINGS, timeout=900), [], analyze)["jobs"][0]["service"]
    assert "Type=oneshot\n" in service and "TimeoutStartSec=900\n" in service


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
    ("app_dir", "/srv/www/my shop"), ("app_dir", "relative"), ("user", "Www Data"), ("lock_ttl", 0), ("timeout", 0), ("timeout", "1h"),
    ("redis_port", "6379"), ("redis_host", ""),
])
def test_settings_that_cannot_go_into_a_unit_file_are_refused(analyze, field, value):
    with pytest.raises(lemp_cron.CronError, match=f"app:cron: {field}"):
        lemp_cron.plan(app_with(job()), dict(SETTINGS, **{field: value}), [], analyze)


def test_the_wrapper_passes_the_password_in_the_environment_only_and_not_to_the_job():
    text = (REPO / "salt" / "webapp" / "files" / "lemp-cron-once").read_text()
    assert "REDISCLI_AUTH=$auth timeout 5 redis-cli" in text, "redis-cli gets the password and a time limit"
    assert "export REDISCLI_AUTH" not in text and "-a " not in text and "AUTH " not in text
    assert 'SET "$key" "$node" NX EX "$LEMP_CRON_TTL"' in text
    assert 'runuser -u "$LEMP_CRON_USER"' in text


# -- lemp-cron-once against a real redis-server on loopback --------------------
# The wrapper as the service runs it: as root, the job's user a real other
# user (nobody), the lock in a real Redis with a password.

WRAPPER = REPO / "salt" / "webapp" / "files" / "lemp-cron-once"
PASSWORD = "cron-test-password"
LOG_RE = re.compile(r"^lemp-cron: job=(?P<job>\S+) slot=(?P<slot>\S+) "
                    r"(?:ran on (?P<ran>\S+) rc=(?P<rc>\d+)|skipped: taken by (?P<taken>\S+))$", re.M)



@pytest.fixture(scope="module")
def redis_server(host_tool, tmp_path_factory):
    server, cli = host_tool("redis-server"), host_tool("redis-cli")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([server, "--bind", "127.0.0.1", "--port", str(port), "--requirepass", PASSWORD,
                             "--save", "", "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def redis(*args):
        out = subprocess.run([cli, "--no-auth-warning", "-p", str(port), *args], capture_output=True, text=True,
                             env=dict(os.environ, REDISCLI_AUTH=PASSWORD), timeout=10)
        return out.stdout.strip()

    deadline = time.monotonic() + 10
    while redis("PING") != "PONG":
        assert time.monotonic() < deadline, "redis-server did not answer on loopback"
        time.sleep(0.1)
    yield {"port": port, "redis": redis}
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def node(redis_server):
    """A web node's files for one job: a release dir the job's user can enter,
    a command file, the root-only password file; run(node) starts the wrapper."""
    assert os.geteuid() == 0, "lemp-cron-once runs as root (runuser); ./lab test runs the tests as root"
    root = pathlib.Path(tempfile.mkdtemp(prefix="lemp-cron-"))
    root.chmod(0o755)
    current = root / "current"
    current.mkdir(mode=0o755)
    out = root / "out"
    out.mkdir()
    out.chmod(0o777)
    auth = root / "auth"
    auth.write_text(PASSWORD)
    auth.chmod(0o600)
    command = root / "job.command"
    # What the job sees: its user, its directory, how sh was started.
    command.write_text(f'id -un > {out}/user; pwd > {out}/pwd; env > {out}/env;'
                       f' tr "\\\\0" " " < /proc/$$/cmdline > {out}/argv\n')
    command.chmod(0o644)
    job_name = f"job{free_port()}"  # a fresh lock key per test

    def run(name="web1"):
        env = dict(os.environ, LEMP_CRON_APP="shop", LEMP_CRON_JOB=job_name, LEMP_CRON_NODE=name,
                   LEMP_CRON_USER="nobody", LEMP_CRON_DIR=str(current), LEMP_CRON_REDIS_HOST="127.0.0.1",
                   LEMP_CRON_REDIS_PORT=str(redis_server["port"]), LEMP_CRON_TTL="60",
                   LEMP_CRON_AUTH_FILE=str(auth))
        proc = subprocess.run(["/bin/bash", str(WRAPPER), str(command)], capture_output=True, text=True,
                              env=env, timeout=60)
        return proc.returncode, proc.stdout + proc.stderr

    def lock_key():
        keys = redis_server["redis"]("KEYS", f"lemp-cron:shop:{job_name}:*").split()
        return keys[0] if keys else None

    yield {"run": run, "out": out, "command": command, "current": current, "lock_key": lock_key,
           "job": job_name, "redis": redis_server["redis"]}
    shutil.rmtree(root)


def test_the_node_that_takes_the_slot_runs_the_job_as_the_app_user_and_logs_it(node):
    rc, log = node["run"]("web1")
    assert rc == 0, log
    line = LOG_RE.search(log)
    assert line and line["job"] == node["job"] and line["ran"] == "web1" and line["rc"] == "0", log
    assert (node["out"] / "user").read_text().strip() == "nobody"
    assert (node["out"] / "pwd").read_text().strip() == str(node["current"])
    assert node["redis"]("GET", node["lock_key"]()) == "web1"
    assert PASSWORD not in (node["out"] / "env").read_text(), "the job does not inherit the Redis password"


def test_the_command_is_not_in_the_process_list_sh_reads_it_from_its_file(node):
    assert node["run"]("web1")[0] == 0
    argv = (node["out"] / "argv").read_text().strip()
    assert argv == f"/bin/sh {node['command']}", argv
    assert "pwd" not in argv


def test_another_node_skips_the_slot_naming_the_node_that_took_it(node):
    assert node["run"]("web1")[0] == 0
    (node["out"] / "user").unlink()
    rc, log = node["run"]("web2")
    assert rc == 0, log
    line = LOG_RE.search(log)
    assert line and line["taken"] == "web1", log
    assert not (node["out"] / "user").exists(), "web2 did not run the job"


def test_a_lost_reply_to_our_own_lock_still_runs_the_job(node):
    # The first SET took the lock but its OK never arrived; the retry gets
    # nil. The lock is already ours, as the wrapper finds it then.
    slot = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
    key = f"lemp-cron:shop:{node['job']}:{slot}"
    node["redis"]("SET", key, "web1", "EX", "60")
    rc, log = node["run"]("web1")
    line = LOG_RE.search(log)
    assert rc == 0 and line and line["ran"] == "web1", log
    if line["slot"] != slot:
        pytest.fail(f"the minute turned during the test (slot {line['slot']}, not {slot}): run it again")
    assert (node["out"] / "user").exists()


@pytest.mark.parametrize("broken", ["no-release", "unreadable-command"])
def test_a_node_that_cannot_run_the_job_leaves_the_slot_to_the_others(node, broken):
    if broken == "no-release":
        node["current"].rmdir()
    else:
        node["command"].chmod(0o600)  # root's only: the job's user could not read it
    rc, log = node["run"]("web1")
    assert rc == 1 and "not run on web1" in log and "cannot read" in log, log
    assert node["lock_key"]() is None, "the slot was not taken"
    assert not LOG_RE.search(log)
