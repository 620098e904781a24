#!/usr/bin/python3
"""The lab driver: the one piece of code that knows how to reach the lab.

Used by ./lab (through the command line below), by the lab tests
(tests/lab/conftest.py) and by the bench scripts (bench/common.py).

Two ways in, and nothing else:

* commands inside a machine go through ``lxc-attach -n lemp-ha-NAME
  --clear-env``: no network is involved;
* anything that talks to a lab address first checks that ``ip route get
  ADDR`` goes over the lab bridge (topology ``network.bridge``). While the
  lab is down those addresses are routed out of this machine, and no traffic
  may go there: the check stops with "lab not up: ... run ./lab up".

Runs with Debian's /usr/bin/python3 and python3-yaml: no pytest, and
``requests`` only when an HTTP session is asked for.

Command line (for ./lab; the topology is ``$LEMP_HA_TOPOLOGY`` or
pillar/topology.yaml, or the derived JSON given with --topology-json)::

    lemplab.py topo EXPR          evaluate EXPR over the derived topology `t`
    lemplab.py status             MACHINE ADDRESS STATE ROLES, one line each
    lemplab.py require-route ADDR exit 3 unless ADDR is routed over the bridge
"""

import argparse
import json
import os
import pathlib
import shlex
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO / "_modules") not in sys.path:
    sys.path.insert(0, str(REPO / "_modules"))

import lemp_topology  # noqa: E402  (after the path set-up above)

STATE = pathlib.Path(os.environ.get("LEMP_HA_STATE", "/var/lib/lemp-ha"))
TOPOLOGY = pathlib.Path(os.environ.get("LEMP_HA_TOPOLOGY", REPO / "pillar" / "topology.yaml"))
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The app's database endpoint on the VIP: HAProxy, single writer.
DB_PORT = 3306
STATUS_FORMAT = "  {:<8} {:<15} {:<10} {}"


class LabNotUp(Exception):
    """The lab cannot be reached safely; ``reason`` says why."""

    def __init__(self, reason):
        self.reason = reason
        super().__init__(f"lab not up: {reason}; run ./lab up")


def load_topology(path=None):
    """The derived topology (lemp_topology.load) of the lab's topology file."""
    return lemp_topology.load(path or TOPOLOGY)


# -- pure helpers ----------------------------------------------------------------


def parse_route_device(text):
    """The outgoing device in `ip -o route get ADDR` output, or None."""
    words = text.split()
    return words[words.index("dev") + 1] if "dev" in words[:-1] else None


def route_device(address):
    out = subprocess.run(["ip", "-o", "route", "get", address], capture_output=True, text=True).stdout
    return parse_route_device(out)


def route_problem(address, device, bridge):
    """Why `address` must not be used when it is routed via `device`, or None."""
    if device == bridge:
        return None
    return f"{address} is routed via '{device or 'nothing'}', not the lab bridge {bridge}"


def wait_for(predicate, timeout, what, interval=0.5):
    """Poll `predicate` until it returns something truthy, and return that.
    After `timeout` seconds fail with AssertionError naming `what` and the
    last value or error (an exception only means: not yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            last = predicate()
        except Exception as exc:  # noqa: BLE001  (keep polling; report the last error)
            last = f"{type(exc).__name__}: {exc}"
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def format_status(rows):
    """The `./lab status` table of (name, address, state, roles) rows; an
    empty state (no such container) shows as `absent`."""
    lines = [STATUS_FORMAT.format("MACHINE", "ADDRESS", "STATE", "ROLES")]
    lines += [STATUS_FORMAT.format(name, address, (state or "absent").lower(), ",".join(roles))
              for name, address, state, roles in rows]
    return "\n".join(lines)


def topo_eval(topology, expr):
    """Evaluate EXPR over the topology `t`; a list prints one item a line."""
    result = eval(expr, {"t": topology})  # noqa: S307  (the lab's own scripts write EXPR)
    return "\n".join(map(str, result)) if isinstance(result, list) else str(result)


def failed_states(result):
    """Every state/step in a Salt JSON result whose result is False."""
    failures = []

    def walk(node, key=""):
        if isinstance(node, dict):
            if node.get("result") is False:
                failures.append(f"{key}: {node.get('comment', '')}"[:500])
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)

    walk(result)
    return failures


def orchestration_outcome(returncode, data):
    """(ok, detail) of `salt-run --out=json state.orchestrate`: its exit code
    and parsed output. A render error (bad input) is a failure too."""
    text = json.dumps(data)
    failures = failed_states(data)
    retcode = data.get("retcode", 0) if isinstance(data, dict) else 0
    bad_output = not isinstance(data, dict) or "unparsed" in data
    if returncode or retcode or failures or bad_output or "Rendering SLS" in text or "TemplateError" in text:
        return False, "\n".join(failures) or f"exit {returncode}: {text[:2000]}"
    return True, text


# -- the lab ---------------------------------------------------------------------


class Lab:
    """The running lab of a topology: its machines, run through lxc-attach,
    and HTTPS to it trusting the lab CA."""

    def __init__(self, topology=None):
        self.topology = topology if topology is not None else load_topology()
        self.network = self.topology["network"]
        self.vip = self.network["vip"]
        self.master = self.topology["master"]
        self.machines = self.topology["machines"]
        self.state_dir = STATE
        # a str, not a Path: requests takes only a str as a CA bundle
        self.ca_cert_path = str(STATE / "secrets" / "ca.pem")
        # the internal endpoints (database, Redis sessions): from web machines only
        self.internal_vip = self.network["internal_vip"]
        self.db_endpoint = (self.internal_vip, DB_PORT)
        self._http = None

    def with_role(self, role):
        """Names of the machines holding `role`, in topology order."""
        return [m["name"] for m in self.topology["roles"].get(role, {}).get("members", [])]

    @property
    def secrets(self):
        import yaml

        app_secrets = STATE / "secrets" / "app_secrets.yaml"
        per_machine = STATE / "secrets" / "per_machine.yaml"
        return {"passwords": yaml.safe_load((STATE / "secrets" / "passwords.yaml").read_text()),
                "app_secrets": (yaml.safe_load(app_secrets.read_text()) if app_secrets.exists() else None) or {},
                # per-machine keys by kind then machine (zabbix_psk: {lb2: hex, ...})
                "per_machine": (yaml.safe_load(per_machine.read_text()) if per_machine.exists() else None) or {}}

    # -- safety: nothing goes to a lab address unless it is routed over the bridge
    def require_route(self, address):
        problem = route_problem(address, route_device(address), self.network["bridge"])
        if problem:
            raise LabNotUp(problem)

    def require_up(self):
        """Every machine's address and the VIP routed over the bridge, every
        machine RUNNING; else LabNotUp."""
        for machine in self.machines.values():
            self.require_route(machine["address"])
        self.require_route(self.vip)
        for name in self.machines:
            state = self.state(name)
            if state != "RUNNING":
                raise LabNotUp(f"{name} is {state or 'absent'}")

    def is_up(self):
        """The bridge exists and every machine is RUNNING (no traffic sent)."""
        bridge = subprocess.run(["ip", "link", "show", self.network["bridge"]], capture_output=True)
        return bridge.returncode == 0 and all(self.state(n) == "RUNNING" for n in self.machines)

    # -- HTTPS, only after require_up() -----------------------------------------
    def new_session(self):
        """A fresh HTTPS client (own cookies) that trusts only the lab CA."""
        import requests

        session = requests.Session()
        # No proxy or CA bundle from the environment: straight to the lab.
        session.trust_env = False
        session.verify = self.ca_cert_path
        return session

    @property
    def http(self):
        """One shared session of new_session()."""
        if self._http is None:
            self._http = self.new_session()
        return self._http

    # -- commands inside machines (lxc-attach: no network involved) -------------
    def run(self, machine, command, check=True, timeout=300, input=None):
        """`bash -c COMMAND` as root in `machine`; the CompletedProcess.
        With check, a non-zero exit fails with AssertionError. ``input``
        goes to its stdin (a secret never goes on a command line)."""
        proc = subprocess.run(
            ["lxc-attach", "-n", f"lemp-ha-{machine}", "--clear-env", "--set-var", f"PATH={PATH}",
             "--set-var", "LANG=C.UTF-8", "--", "bash", "-c", command],
            capture_output=True, text=True, timeout=timeout, input=input,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{machine}: `{command}` failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def salt(self, *args, timeout=600):
        """`salt --out=json --static ARGS` on the master, parsed."""
        out = self.run(self.master, "salt --out=json --static " + " ".join(map(shlex.quote, args)),
                       check=False, timeout=timeout)
        return json.loads(out.stdout or "{}")

    def salt_run(self, *args, timeout=1800):
        """`salt-run --out=json ARGS` on the master: (returncode, parsed output)."""
        out = self.run(self.master, "salt-run --out=json " + " ".join(map(shlex.quote, args)),
                       check=False, timeout=timeout)
        try:
            data = json.loads(out.stdout)
        except ValueError:
            data = {"unparsed": out.stdout[-5000:], "stderr": out.stderr[-5000:]}
        return out.returncode, data

    def orchestrate(self, sls, pillar=None, timeout=1800):
        """`salt-run state.orchestrate SLS [pillar=JSON]`: (ok, detail), where
        detail names the failed steps (or is the whole output when ok)."""
        args = ["state.orchestrate", sls] + (["pillar=" + json.dumps(pillar)] if pillar is not None else [])
        return orchestration_outcome(*self.salt_run(*args, timeout=timeout))

    # -- secret rotation (orch.rotate_secret, docs/secrets.md "Rotation") ---------
    ROTATION_DIR = "/srv/lemp-ha-secrets/rotation"

    def _stage_rotation_value(self, staged, value):
        """``value`` GPG-encrypted on the master at ``staged`` (the plain
        value goes through stdin only)."""
        self.run(self.master,
                 f"umask 077 && install -d -m 0700 {self.ROTATION_DIR} && gpg --homedir /etc/salt/gpgkeys --batch "
                 f"--yes --armor --trust-model always --encrypt -r 'lemp-ha pillar' -o {shlex.quote(staged)}.tmp "
                 f"&& mv {shlex.quote(staged)}.tmp {shlex.quote(staged)}", input=value)

    def _used(self, staged):
        """Whether the run used the staged file (the runner deletes it once
        the master's pillar holds its value); an unused one is removed."""
        if self.run(self.master, f"test -e {shlex.quote(staged)}", check=False).returncode == 0:
            self.run(self.master, f"rm -f {shlex.quote(staged)}")
            return False
        return True

    def rotate_secret(self, name, timeout=600, machine=None):
        """Rotate password ``name`` as an operator would: a new random value,
        GPG-encrypted on the master to the pillar key (the plain value goes
        through stdin only), then orch.rotate_secret. Once the run has used
        it (the master's pillar holds it: the staged file is gone), the lab
        host's copy gets it too, so tests and a later `./lab up` use it.
        Returns (ok, detail, new value or None). A per-machine key
        (zabbix_psk): one value per machine (``machine`` alone, or every
        one), and the new values as {machine: value} ({} when none was used)."""
        import lab_secrets  # noqa: E402  (tools/lab, beside this file)
        import yaml

        spec = yaml.safe_load((REPO / "pillar" / "secrets.spec.yaml").read_text())
        if name in (spec.get("per_machine") or {}):
            return self._rotate_machine_key(name, spec["per_machine"][name], machine, timeout)
        value = lab_secrets.random_value()
        staged = f"{self.ROTATION_DIR}/{name}.asc"
        self._stage_rotation_value(staged, value)
        pillar = {"secret": name, **({"machine": machine} if machine else {})}
        ok, detail = self.orchestrate("orch.rotate_secret", pillar, timeout=timeout)
        if not self._used(staged):
            # not used (refused, or an unfinished rotation kept its own value)
            return ok, detail, None
        folder = self.state_dir / "secrets"
        passwords = yaml.safe_load((folder / "passwords.yaml").read_text()) or {}
        passwords[name] = value
        lab_secrets._write_private(folder / "passwords.yaml", yaml.safe_dump(passwords, default_flow_style=False))
        lab_secrets.generate(self.state_dir, TOPOLOGY, REPO / "pillar" / "secrets.spec.yaml")
        return ok, detail, value

    def _rotate_machine_key(self, kind, kind_spec, machine, timeout):
        """rotate_secret for a per-machine key: a file per machine
        (<kind>-<machine>.asc, lemp_secrets.begin_machine), the lab's
        per_machine.yaml follows for each one the run used."""
        import lab_secrets  # noqa: E402  (tools/lab, beside this file)
        import yaml

        names = [machine] if machine else list(self.machines) + list(self.topology.get("pool_machines") or {})
        values = {n: lab_secrets.random_hex_key(int(kind_spec.get("bytes", 32))) for n in names}
        for n, value in values.items():
            self._stage_rotation_value(f"{self.ROTATION_DIR}/{kind}-{n}.asc", value)
        pillar = {"secret": kind, **({"machine": machine} if machine else {})}
        ok, detail = self.orchestrate("orch.rotate_secret", pillar, timeout=timeout)
        used = {n: v for n, v in values.items() if self._used(f"{self.ROTATION_DIR}/{kind}-{n}.asc")}
        if used:
            folder = self.state_dir / "secrets"
            stored = yaml.safe_load((folder / "per_machine.yaml").read_text()) or {}
            stored.setdefault(kind, {}).update(used)
            lab_secrets._write_private(folder / "per_machine.yaml", yaml.safe_dump(stored, default_flow_style=False))
            lab_secrets.generate(self.state_dir, TOPOLOGY, REPO / "pillar" / "secrets.spec.yaml")
        return ok, detail, used

    # -- whole machines -----------------------------------------------------------
    def state(self, machine):
        """lxc-info's state (RUNNING, STOPPED), or "" when there is no container."""
        return subprocess.run(["lxc-info", "-s", "-H", "-n", f"lemp-ha-{machine}"],
                              capture_output=True, text=True).stdout.strip()

    def stop(self, machine, kill=False):
        subprocess.run(["lxc-stop", "-n", f"lemp-ha-{machine}"] + (["-k"] if kill else []), check=True)

    def start(self, *machines):
        """Start the containers, all at once (as power coming back starts
        every machine); return once each one's minion answers the master."""
        for machine in machines:
            subprocess.run(["lxc-start", "-n", f"lemp-ha-{machine}"], check=True)
        for machine in machines:
            # Not `systemctl is-system-running --wait`: after a full outage a
            # Galera node's start job waits for peers, and boot never "ends".
            wait_for(lambda m=machine: self.run(m, "systemctl is-active salt-minion", check=False, timeout=20)
                     .stdout.strip() == "active", 120, f"{machine} to boot")
            wait_for(lambda m=machine: self.salt("--timeout=5", m, "test.ping").get(m) is True, 120,
                     f"{machine}'s minion to answer")

    def ensure_running(self, names, log=print):
        """Start every machine of `names` that is not RUNNING (for `finally`)."""
        for name in names:
            if self.state(name) != "RUNNING":
                log(f"restoring: starting {name}")
                self.start(name)

    def status(self):
        return format_status([(name, m["address"], self.state(name), m["roles"])
                              for name, m in self.machines.items()])


# -- command line (for ./lab) ------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(prog="lemplab.py", description="The lab driver's command line (for ./lab).")
    p.add_argument("--topology-json", help="the derived topology as JSON (default: load $LEMP_HA_TOPOLOGY)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("topo", help="evaluate EXPR over the topology `t`").add_argument("expr")
    sub.add_parser("status", help="what runs where")
    sub.add_parser("require-route", help="exit 3 unless ADDR goes over the lab bridge").add_argument("address")
    rotate = sub.add_parser("rotate-secret", help="orch.rotate_secret with a new random value; the lab's copy follows")
    rotate.add_argument("secret")
    rotate.add_argument("machine", nargs="?", help="a per-machine key (zabbix_psk): this machine only")
    args = p.parse_args(argv)
    try:
        topology = json.loads(args.topology_json) if args.topology_json else load_topology()
    except (lemp_topology.TopologyError, OSError, ValueError) as exc:  # TopologyError is a ValueError
        print(exc if isinstance(exc, lemp_topology.TopologyError) else f"lemplab: no usable topology: {exc}",
              file=sys.stderr)
        return 1
    if args.command == "topo":
        print(topo_eval(topology, args.expr))
    elif args.command == "status":
        print(Lab(topology).status())
    elif args.command == "rotate-secret":
        ok, detail, value = Lab(topology).rotate_secret(args.secret, machine=args.machine)
        print(f"orch.rotate_secret {args.secret}: {'ok' if ok else 'FAILED'}"
              + ("; the lab's copy holds the new value" if value else "; the lab's copy is unchanged"),
              file=sys.stderr)
        if not ok:
            print(detail[-3000:], file=sys.stderr)
        return 0 if ok else 1
    else:
        try:
            Lab(topology).require_route(args.address)
        except LabNotUp as exc:
            print(f"lab not up: {exc.reason}", file=sys.stderr)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
