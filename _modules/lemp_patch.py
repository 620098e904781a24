"""
Security updates on one machine, the steps orch.patch runs on each node in
turn once it is out of service (docs/security.md "Security updates").

    pending      -> the packages with an upgrade from the Debian security
                    archive (``apt-get -s upgrade``, origins parsed);
    upgrade      -> install exactly those, nothing else from the archive;
    needs_restart-> what needrestart (batch, list mode) says runs old code;
    restart      -> restart those services (``policy`` needed|always|never),
                    except the held ones, which are reported.

Why ``apt-get -s`` and an explicit package list rather than
unattended-upgrades' origin pattern: no extra package or configuration to
keep in step, the list the step upgrades is in its output (what changed on
which node), and the parser is a pure function with tests. A security
update that needs a new dependency gets it: ``apt-get install`` of the
listed packages pulls what they depend on.

needrestart is installed by ``common.updates`` in list mode only
(``$nrconf{restart} = 'l'``): an apt run never restarts a service behind
the orchestration's back.

The pure functions (parse_simulation, parse_needrestart, restart_plan) are
unit-tested (tests/unit/test_patch.py).
"""

import fnmatch
import os
import re
import subprocess

try:
    from salt.exceptions import CommandExecutionError
except ImportError:  # pragma: no cover - tests without salt

    class CommandExecutionError(Exception):
        pass


__virtualname__ = "lemp_patch"

POLICIES = ("needed", "always", "never")

# The Debian security archive's suite: bookworm-security, stable-security.
SECURITY_SUITE = r"-security$"

# Services never restarted from a Salt job, whatever needrestart says:
# the minion running this job (its return would be lost), the session and
# login daemons needrestart itself leaves alone by default.
HOLD_ALWAYS = ("salt-minion", "dbus", "systemd-logind", "user@*", "getty@*", "serial-getty@*",
               "console-getty", "container-getty@*")

# How some services are restarted: a Galera node through galera.restart,
# which refuses a node that is not Synced and waits until it is again.
RESTART_VIA = {"mariadb": "galera.restart"}
# needrestart's names that are not units: systemd itself (PID 1) runs old
# libraries; it re-executes in place, keeping every unit running.
RESTART_CMD = {"systemd-manager": ["systemctl", "daemon-reexec"]}

APT_ENV = {
    "DEBIAN_FRONTEND": "noninteractive",
    # needrestart's apt hook: orch.patch asks it afterwards (needs_restart)
    "NEEDRESTART_SUSPEND": "1",
    "APT_LISTCHANGES_FRONTEND": "none",
}
# Wait for an apt run already going (a highstate installing a package).
APT_OPTIONS = ["-q", "-o", "DPkg::Lock::Timeout=600"]

# Inst libssl3 [3.0.11-1~deb12u1] (3.0.13-1~deb12u2 Debian-Security:12/stable-security [amd64])
_INST = re.compile(r"^Inst (?P<name>\S+) (?:\[(?P<old>[^\]]*)\] )?\((?P<new>\S+) (?P<origins>.*?)(?: \[[^\]]*\])?\)")


def __virtual__():
    return __virtualname__


# -- pure functions (unit-tested) -------------------------------------------


def parse_simulation(text, suite=SECURITY_SUITE):
    """The upgrades of ``apt-get -s upgrade`` output whose candidate comes
    from a suite matching ``suite`` (a regex): [{name, old, new, origins}],
    in apt's order. New installs (no old version) are left out: an upgrade
    of the listed packages pulls them in when it needs them."""
    wanted = re.compile(suite)
    found = []
    for line in (text or "").splitlines():
        match = _INST.match(line.strip())
        if not match or not match.group("old"):
            continue
        origins = [o.strip() for o in match.group("origins").split(",") if o.strip()]
        if any(wanted.search(origin.rsplit("/", 1)[-1]) for origin in origins):
            found.append({"name": match.group("name"), "old": match.group("old"), "new": match.group("new"),
                          "origins": origins})
    return found


def parse_needrestart(text):
    """``needrestart -b -r l`` output: {services: [unit names without
    .service, sorted], kernel: {current, expected, status}}. Kernel status
    (NEEDRESTART-KSTA): 0 unknown, 1 current, 2 ABI-compatible upgrade
    pending, 3 version upgrade pending (a reboot is due)."""
    services, kernel = set(), {"current": "", "expected": "", "status": 0}
    keys = {"NEEDRESTART-KCUR": "current", "NEEDRESTART-KEXP": "expected"}
    for line in (text or "").splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "NEEDRESTART-SVC" and value:
            services.add(value[:-len(".service")] if value.endswith(".service") else value)
        elif key in keys:
            kernel[keys[key]] = value
        elif key == "NEEDRESTART-KSTA":
            kernel["status"] = int(value) if value.isdigit() else 0
    return {"services": sorted(services), "kernel": kernel}


def _unit(name):
    return name[:-len(".service")] if name.endswith(".service") else name


def restart_plan(policy, needed, always=(), hold=()):
    """(restart, held): the services to restart, in order (``always`` first
    when the policy is ``always``, then what needrestart listed), and those
    needrestart listed that match a ``hold`` pattern (or HOLD_ALWAYS), left
    running for an operator. Raises ValueError naming a bad policy."""
    if policy not in POLICIES:
        raise ValueError(f"pillar restart: {policy!r} is not one of {', '.join(POLICIES)}")
    if policy == "never":
        return [], []
    patterns = list(HOLD_ALWAYS) + [_unit(h) for h in hold or ()]
    restart, held = [], []
    wanted = [_unit(s) for s in always] if policy == "always" else []
    for name in wanted + [_unit(s) for s in needed or ()]:
        if name in restart or name in held:
            continue
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            held.append(name)
        else:
            restart.append(name)
    return restart, held


# -- execution functions -----------------------------------------------------


def _run(cmd, what):
    env = dict(os.environ, **APT_ENV)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise CommandExecutionError(f"{what} failed ({proc.returncode}): `{' '.join(cmd)}`: "
                                    f"{(proc.stderr or proc.stdout).strip()[-1500:]}")
    return proc.stdout


def pending(update=True, suite=SECURITY_SUITE):
    """The security updates pending here: [{name, old, new, origins}].

    CLI Example::

        salt '*' lemp_patch.pending
    """
    if update:
        _run(["apt-get"] + APT_OPTIONS + ["update"], "apt-get update")
    return parse_simulation(_run(["apt-get", "-s"] + APT_OPTIONS + ["upgrade"], "apt-get -s upgrade"), suite)


def upgrade(update=True, suite=SECURITY_SUITE):
    """Install the pending security updates, keeping changed configuration
    files (--force-confold: Salt manages them). Returns {upgraded: [...]}.

    CLI Example::

        salt web1 lemp_patch.upgrade
    """
    todo = pending(update, suite)
    if not todo:
        return {"upgraded": [], "comment": "no security update pending"}
    _run(["apt-get", "-y"] + APT_OPTIONS + ["-o", "Dpkg::Options::=--force-confdef", "-o",
                                             "Dpkg::Options::=--force-confold", "install", "--only-upgrade"]
         + [p["name"] for p in todo], "apt-get install --only-upgrade")
    return {"upgraded": [f"{p['name']} {p['old']} -> {p['new']}" for p in todo]}


def needs_restart():
    """What runs code an upgrade replaced: {services, kernel} (needrestart).

    CLI Example::

        salt '*' lemp_patch.needs_restart
    """
    if not os.path.exists("/usr/sbin/needrestart"):
        raise CommandExecutionError("needrestart is not installed here: apply common.updates "
                                    "(salt <minion> state.apply common.updates)")
    return parse_needrestart(_run(["/usr/sbin/needrestart", "-b", "-r", "l"], "needrestart -b -r l"))


def restart(policy="needed", always=None, hold=None):
    """Restart what needs it (``policy`` needed), also ``always`` (policy
    always), or nothing (never); held services are reported, not touched.
    Returns {restarted, held, kernel}; a kernel upgrade pending says so
    (orch.patch does not reboot).

    CLI Example::

        salt web1 lemp_patch.restart policy=always always='[nginx, php8.2-fpm]'
    """
    found = needs_restart() if policy != "never" else {"services": [], "kernel": {}}
    try:
        todo, held = restart_plan(policy, found["services"], always or [], hold or [])
    except ValueError as exc:
        raise CommandExecutionError(str(exc))
    done = []
    for name in todo:
        via = RESTART_VIA.get(name)
        if name in RESTART_CMD:
            _run(RESTART_CMD[name], f"restarting {name}")
        elif via and via in __salt__:  # noqa: F821
            __salt__[via]()  # noqa: F821  (raises when it fails)
        elif not __salt__["service.restart"](name):  # noqa: F821
            raise CommandExecutionError(f"restarting {name} failed (after: {', '.join(done) or 'none'}); "
                                        f"see journalctl -u {name}")
        done.append(name)
    result = {"restarted": done, "held": held, "kernel": found["kernel"]}
    if held:
        result["comment"] = (f"left running on old code: {', '.join(held)}; restart them by hand "
                             "(docs/security.md 'Security updates')")
    if (found["kernel"] or {}).get("status", 0) >= 2:
        result["reboot"] = f"kernel {found['kernel'].get('expected')} pending: reboot this machine by hand"
    return result
