"""
The lab's cloud engine: boots and destroys the web pool's machines with
Vagrant, on the lab host, for the master's orchestrations (orch.scale_out,
orch.scale_in). Loaded only by the lab host's own minion, ``labhost``
(tools/lab/labhost.sh, started by ./lab up), whose configuration whitelists
this module and ``test`` alone: a master can ask it for nothing else, and
cannot push it code (no ``saltutil``, no states).

Production has no such minion: orch.scale_out's boot step is salt-cloud
with an EC2 profile there (docs/scaling.md).

    salt labhost lemp_labcloud.up web3        vagrant up web3 (it then enrols itself)
    salt labhost lemp_labcloud.destroy web3   vagrant destroy -f web3 (its key leaves the master)
    salt labhost lemp_labcloud.status         {name: state} for every pool name

Safety, decided here and not by the master:

* a name is accepted only when the lab host's own checkout lists it in
  ``scaling.web.pool`` of its topology (not the master's pillar): a fixed
  machine (salt1, db1, web1...) or any other name is refused;
* Vagrant runs in that checkout with the environment ./lab uses
  (:func:`vagrant_env`), never a shell;
* the pool machine's address must be routed over the lab bridge
  (``ip route get``), as every lab command checks before it talks to one.

The pure functions (:func:`check_name`, :func:`pool_names`,
:func:`vagrant_env`, :func:`parse_status`) are unit-tested
(tests/unit/test_labcloud.py).
"""

import contextlib
import fcntl
import os
import pathlib
import re
import subprocess
import sys
import time

__virtualname__ = "lemp_labcloud"

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What ./lab exports for Vagrant (tools/lab/lib.sh), and what the lab's
# scripts read from the environment; nothing else reaches Vagrant.
PASSED_THROUGH = ("HOME", "LANG", "LEMP_HA_STATE", "LEMP_HA_CACHE", "LEMP_HA_TOPOLOGY", "LEMP_HA_WEB_BOX",
                  "VAGRANT_HOME")
NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
TIMEOUT = 900  # seconds a `vagrant up` may take (the plain box installs the web packages)

try:  # Salt's error shows as the job's error; the unit tests run without Salt
    from salt.exceptions import CommandExecutionError as LabCloudError
except ImportError:  # pragma: no cover
    LabCloudError = ValueError


def __virtual__():
    # Synced to every minion with the other modules; only the lab host's
    # minion, whose configuration names lemp_labcloud, loads it.
    if (globals().get("__opts__") or {}).get("lemp_labcloud"):
        return __virtualname__
    return (False, "lemp_labcloud: only the lab host's minion (labhost, tools/lab/labhost.sh) runs the lab's cloud")


# -- pure ------------------------------------------------------------------------


def pool_names(topology):
    """The names of the web pool, in topology order (a derived topology,
    lemp_topology.load, whose pool is a list of {name, address...})."""
    return [slot["name"] for slot in ((topology.get("scaling") or {}).get("web") or {}).get("pool") or []]


def pool_address(topology, name):
    return next(slot["address"] for slot in topology["scaling"]["web"]["pool"] if slot["name"] == name)


def check_name(name, pool):
    """NAME when it is one of the pool's names; else an error naming the
    pool and the fix. A fixed machine is never the lab cloud's to touch."""
    if not isinstance(name, str) or not NAME.match(name):
        raise LabCloudError(f"lemp_labcloud: {name!r} is not a machine name (a-z 0-9 -)")
    if name not in pool:
        raise LabCloudError(
            f"lemp_labcloud: {name} is not in the web pool ({', '.join(pool) or 'empty'}): only the pool's "
            "machines are booted or destroyed here; add it to scaling.web.pool in pillar/topology.yaml")
    return name


def vagrant_env(repo, environ):
    """The environment Vagrant runs with: ./lab's (tools/lab/lib.sh) in
    checkout REPO, plus the few variables of ENVIRON the lab reads."""
    env = {key: environ[key] for key in PASSED_THROUGH if environ.get(key)}
    env.setdefault("HOME", "/root")
    env.update({
        "PATH": PATH,
        "VAGRANT_CWD": str(repo),
        "VAGRANT_DEFAULT_PROVIDER": "lxc",
        "VAGRANT_CHECKPOINT_DISABLE": "1",
    })
    return env


def parse_status(text, names):
    """{name: state} for NAMES from `vagrant status --machine-readable`
    (lines ``time,target,type,data``); a name Vagrant does not report is
    ``not_created``."""
    states = {name: "not_created" for name in names}
    for line in text.splitlines():
        parts = line.split(",", 3)
        if len(parts) == 4 and parts[2] == "state" and parts[1] in states:
            states[parts[1]] = parts[3].strip()
    return states


def tail(text, lines=15):
    return "\n".join(text.strip().splitlines()[-lines:])


# -- on the lab host ---------------------------------------------------------------


def _repo():
    """The checkout the lab host runs (minion option lemp_labcloud:repo,
    else the one this file is in)."""
    configured = ((globals().get("__opts__") or {}).get("lemp_labcloud") or {}).get("repo")
    return pathlib.Path(configured or pathlib.Path(__file__).resolve().parents[1])


def _topology(repo):
    modules = str(repo / "_modules")
    if modules not in sys.path:
        sys.path.insert(0, modules)
    import lemp_topology  # the checkout's validator: names the entry at fault

    path = os.environ.get("LEMP_HA_TOPOLOGY") or str(repo / "pillar" / "topology.yaml")
    return lemp_topology.load(path)


def _require_bridge_route(address, bridge):
    out = subprocess.run(["ip", "-o", "route", "get", address], capture_output=True, text=True).stdout
    words = out.split()
    device = words[words.index("dev") + 1] if "dev" in words[:-1] else None
    if device != bridge:
        raise LabCloudError(f"lemp_labcloud: {address} is routed via '{device or 'nothing'}', not the lab "
                            f"bridge {bridge}: the lab is not up; run ./lab up")


def _vagrant(repo, *args, timeout=TIMEOUT):
    return subprocess.run(["vagrant", *args], cwd=str(repo), env=vagrant_env(repo, os.environ),
                          capture_output=True, text=True, timeout=timeout, check=False)


def _checked(name):
    repo = _repo()
    topology = _topology(repo)
    check_name(name, pool_names(topology))
    _require_bridge_route(pool_address(topology, name), topology["network"]["bridge"])
    return repo, topology


def status():
    """{name: Vagrant state} for every machine of the web pool."""
    repo = _repo()
    names = pool_names(_topology(repo))
    proc = _vagrant(repo, "status", "--machine-readable", *names, timeout=120)
    if proc.returncode != 0:
        raise LabCloudError(f"lemp_labcloud: vagrant status failed: {tail(proc.stderr or proc.stdout)}")
    return parse_status(proc.stdout, names)


@contextlib.contextmanager
def machine_lock(name, lock_dir="/run/lock"):
    """One Vagrant command at a time per pool machine: a second `up` of a
    name waits for the first, then finds it running and leaves it as it
    is. Two at once would both mint its key (the Vagrantfile mints before a
    machine exists) and the second would fail: "the master did not make a
    key for web4" (CI rehearsal 9, two scale-outs' boots overlapping)."""
    with open(os.path.join(lock_dir, f"lemp-labcloud-{name}.lock"), "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def up(name):
    """Boot pool machine NAME (`vagrant up NAME`): the Vagrantfile has the
    master mint its key first, then starts its minion, which enrols itself
    through the reactor. A running machine is left as it is."""
    repo, _ = _checked(name)
    started = time.monotonic()
    with machine_lock(name):
        proc = _vagrant(repo, "up", "--provider=lxc", name)
    if proc.returncode != 0:
        raise LabCloudError(f"lemp_labcloud: vagrant up {name} failed: {tail(proc.stderr or proc.stdout)}; "
                            f"fix: on the lab host, vagrant up {name} in {repo} shows the whole output")
    return {"name": name, "action": "up", "seconds": round(time.monotonic() - started, 1)}


def destroy(name):
    """Destroy pool machine NAME (`vagrant destroy -f NAME`; the Vagrantfile
    has the master forget its key first). An absent machine is no error."""
    repo, _ = _checked(name)
    started = time.monotonic()
    with machine_lock(name):
        proc = _vagrant(repo, "destroy", "-f", name, timeout=300)
    if proc.returncode != 0:
        raise LabCloudError(f"lemp_labcloud: vagrant destroy -f {name} failed: {tail(proc.stderr or proc.stdout)}")
    return {"name": name, "action": "destroy", "seconds": round(time.monotonic() - started, 1)}
