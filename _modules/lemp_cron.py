"""
Scheduled jobs of the web application (pillar ``app:cron``), run once per
schedule across the web tier, not once per web node.

Every web node has a systemd timer per job; when it fires, its service runs
``lemp-cron-once`` (salt/webapp/files/lemp-cron-once), which takes the lock
of that job's time slot in the sessions Redis (``SET lemp-cron:<app>:<job>:<slot>
<node> NX EX <ttl>``, through the VIP) and runs the command only when it got
it. So a job runs once per slot while any one web node is down, and no cron
daemon on a chosen node is a single point of failure. docs/your-app.md
("Cron") says why Redis and what a Redis failover does.

``plan`` checks the jobs and returns the unit files ``salt/webapp/cron.sls``
writes, and the ``lemp-cron-*`` units on the node that are no longer
planned (a job removed or renamed, the app renamed). A bad job stops the
render, naming the key and the fix, so that nothing changes.

The functions are pure: the schedule check takes ``systemd-analyze
calendar`` as a callable (default: run on the minion through
``cmd.run_all``), so tests/unit/test_cron.py runs them without Salt.
"""

import json
import re

__virtualname__ = "lemp_cron"

JOB_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
UNIT_PREFIX = "lemp-cron-"
# Values written into unit files unquoted: nothing systemd would expand or split.
SAFE_PATH_RE = re.compile(r"^/[A-Za-z0-9._/-]+$")
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$")

try:  # Salt's error shows in the render as it is; the unit tests run without Salt
    from salt.exceptions import CommandExecutionError as CronError
except ImportError:  # pragma: no cover
    CronError = ValueError


def __virtual__():
    return __virtualname__


def calendar(schedule):
    """``systemd-analyze calendar -- SCHEDULE`` on this minion: (rc, stdout,
    stderr), the ``analyze`` of normalized_schedule, and of
    lemp_backup_job.check_schedule (through ``__salt__``, so one copy).

    CLI Example: ``salt web1 lemp_cron.calendar '*:0/5'``"""
    ret = __salt__["cmd.run_all"](  # noqa: F821  (injected by the loader)
        ["systemd-analyze", "calendar", "--", schedule], python_shell=False, ignore_retcode=True)
    return ret["retcode"], ret["stdout"], ret["stderr"]


def normalized_schedule(key, schedule, analyze):
    """The normalized form of ``schedule`` (systemd OnCalendar syntax) as
    ``analyze(schedule) -> (rc, stdout, stderr)`` (``systemd-analyze
    calendar``) gives it, or raise naming ``key``.

    The lock slot is the minute the timer fired in (see lemp-cron-once), so
    a schedule must fire on whole minutes: at second 0, at most once a
    minute. Two elapses in one minute would share one slot and the second
    would be skipped on every node."""
    schedule = "" if schedule is None else str(schedule)
    if not schedule.strip() or any(ord(c) < 32 or c in "%\\" for c in schedule):
        raise CronError(f"{key} {json.dumps(schedule)} is empty or holds a control character, % or \\: "
                        "write a systemd OnCalendar expression such as '*:0/5' or 'Mon *-*-* 02:30'")
    rc, out, err = analyze(schedule)
    if rc != 0:
        reason = (err or out or "").strip().splitlines()
        raise CronError(f"{key} {json.dumps(schedule)} is not a systemd calendar expression"
                        f" ({reason[-1] if reason else f'systemd-analyze calendar exited {rc}'}):"
                        " see man systemd.time, e.g. '*:0/5' (every 5 minutes) or 'daily'")
    normalized = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                       if line.strip().startswith("Normalized form:")), "")
    if not normalized:
        raise CronError(f"{key} {json.dumps(schedule)}: systemd-analyze calendar gave no normalized form")
    seconds = [tok.split(":")[2] for tok in normalized.split() if tok.count(":") == 2]
    if seconds != ["00"]:
        raise CronError(f"{key} {json.dumps(schedule)} fires off the minute or more than once a minute"
                        f" ({normalized}): lemp-cron locks one slot per minute; use second 0, e.g. '*:0/1'")
    return normalized


def unit_name(app_name, job_name):
    return f"{UNIT_PREFIX}{app_name}-{job_name}"


def timer_unit(app_name, job_name, schedule):
    """The .timer: fires at ``schedule`` on this node; the lock decides
    whether this node runs it."""
    return (
        "# Written by Salt (salt/webapp/cron.sls): lemp-cron, see docs/your-app.md \"Cron\".\n"
        "[Unit]\n"
        f"Description=lemp-cron timer: job {job_name} of {app_name}\n"
        "\n"
        "[Timer]\n"
        f"OnCalendar={schedule}\n"
        # Every node fires within 1 s of the scheduled time, so all of them
        # compute the same minute slot (lemp-cron-once).
        "AccuracySec=1s\n"
        "RandomizedDelaySec=0\n"
        # No catch-up run after a boot: its slot would be the boot's minute,
        # a new lock, i.e. a second run of a slot another node already ran.
        "Persistent=false\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )


def service_unit(app_name, job_name, settings):
    """The .service the timer starts: lemp-cron-once with the job's settings
    in its environment (no secret: the Redis password is in the root-only
    ``settings['auth_file']``). ``settings['timeout']`` bounds the run: a
    oneshot unit has no start timeout by default, and while it is still
    starting its timer fires no more, so one hung job would stop the job on
    this node for good."""
    env = {
        "LEMP_CRON_APP": app_name,
        "LEMP_CRON_JOB": job_name,
        "LEMP_CRON_NODE": settings["node"],
        "LEMP_CRON_USER": settings["user"],
        "LEMP_CRON_DIR": f"{settings['app_dir']}/current",
        "LEMP_CRON_REDIS_HOST": settings["redis_host"],
        "LEMP_CRON_REDIS_PORT": str(settings["redis_port"]),
        "LEMP_CRON_TTL": str(settings["lock_ttl"]),
        "LEMP_CRON_AUTH_FILE": settings["auth_file"],
    }
    lines = "".join(f"Environment={key}={value}\n" for key, value in env.items())
    return (
        "# Written by Salt (salt/webapp/cron.sls): lemp-cron, see docs/your-app.md \"Cron\".\n"
        "[Unit]\n"
        f"Description=lemp-cron: job {job_name} of {app_name}, once per schedule across the web tier\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "SyslogIdentifier=lemp-cron\n"
        f"TimeoutStartSec={settings['timeout']}\n"
        f"{lines}"
        f"ExecStart={settings['wrapper']} {settings['command_dir']}/{unit_name(app_name, job_name)}.command\n"
    )


def _check_settings(settings):
    checks = (
        ("app_dir", SAFE_PATH_RE, "app:root and app:name give it: an absolute path of A-Z a-z 0-9 . _ / -"),
        ("wrapper", SAFE_PATH_RE, "an absolute path"),
        ("command_dir", SAFE_PATH_RE, "an absolute path"),
        ("auth_file", SAFE_PATH_RE, "an absolute path"),
        ("user", USER_RE, "app:user: a system user name"),
        ("node", NODE_RE, "the minion id"),
        ("redis_host", HOST_RE, "topology network.internal_vip"),
    )
    for field, rule, what in checks:
        value = str(settings.get(field, ""))
        if not rule.match(value) or ".." in value:
            raise CronError(f"app:cron: {field} {json.dumps(value)} cannot go into a unit file ({what})")
    for field in ("redis_port", "lock_ttl", "timeout"):
        value = settings.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise CronError(f"app:cron: {field} {json.dumps(value)} must be a positive integer")


def check_jobs(jobs, analyze):
    """The jobs of pillar ``app:cron`` as [{name, schedule (normalized),
    command}], or raise naming the entry and the fix."""
    if jobs in (None, "", {}):
        return []
    if not isinstance(jobs, list):
        raise CronError("app:cron must be a list of {name, schedule, command}")
    checked, seen = [], set()
    for index, job in enumerate(jobs):
        where = f"app:cron[{index}]"
        if not isinstance(job, dict) or set(job) != {"name", "schedule", "command"}:
            got = ", ".join(sorted(job)) if isinstance(job, dict) else type(job).__name__
            raise CronError(f"{where} must have exactly name, schedule and command (got: {got})")
        name = str(job["name"])
        if not JOB_NAME_RE.match(name):
            raise CronError(f"{where}:name {json.dumps(name)} is invalid: 1-40 of a-z 0-9 -, starting with a letter or digit")
        if name in seen:
            raise CronError(f"{where}:name {json.dumps(name)} is used twice: job names must be unique")
        seen.add(name)
        command = job["command"]
        if not isinstance(command, str) or not command.strip():
            raise CronError(f"app:cron:{name}:command is empty: the shell command to run in the current release")
        checked.append({"name": name, "schedule": normalized_schedule(f"app:cron:{name}:schedule", job["schedule"], analyze),
                        "command": command})
    return checked


def stale_units(existing, planned):
    """The file names among ``existing`` (names found in the unit directory)
    that are lemp-cron units not in ``planned``: a job or an app removed or
    renamed. The unit directory holds only this platform's lemp-cron units."""
    planned = set(planned)
    names = {str(path).rsplit("/", 1)[-1] for path in existing or []}
    return sorted(name for name in names
                  if name.startswith(UNIT_PREFIX) and name.endswith((".timer", ".service")) and name not in planned)


def plan(app, settings, existing=(), analyze=None):
    """What salt/webapp/cron.sls writes on this node:

    ``jobs``: [{name, unit, schedule, command, timer, service}] where
    ``timer`` and ``service`` are the unit files' contents; ``files``: the
    planned unit file names; ``stale``: the lemp-cron unit files in
    ``existing`` (``settings['unit_dir']``'s) that are not planned;
    ``stale_timers``: those of ``stale`` that are timers, to stop before
    their file goes.

    ``app`` is the merged app settings (map.jinja's ``app``); ``settings``:
    node, user, app_dir, redis_host, redis_port, lock_ttl, timeout, wrapper,
    command_dir, auth_file.
    """
    _check_settings(settings)
    jobs = check_jobs((app or {}).get("cron"), analyze or calendar)
    out = []
    for job in jobs:
        unit = unit_name(app["name"], job["name"])
        out.append(dict(job, unit=unit,
                        timer=timer_unit(app["name"], job["name"], job["schedule"]),
                        service=service_unit(app["name"], job["name"], settings)))
    files = [f"{job['unit']}.{kind}" for job in out for kind in ("timer", "service")]
    stale = stale_units(existing, files)
    return {"jobs": out, "files": files, "stale": stale,
            "stale_timers": [name for name in stale if name.endswith(".timer")]}
