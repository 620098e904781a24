"""The lab fixture: real machines, reached only over the lab bridge.

Every test here talks to the running Vagrant lab. Before anything is sent,
`lab` checks that each lab address is routed through the lab bridge: while
the lab is down those addresses are routed out of this machine, and no
traffic may go there.
"""

import json
import os
import pathlib
import shlex
import subprocess
import time

import pytest
import yaml

STATE = pathlib.Path(os.environ.get("LEMP_HA_STATE", "/var/lib/lemp-ha"))
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def route_device(address):
    out = subprocess.run(["ip", "-o", "route", "get", address], capture_output=True, text=True).stdout
    words = out.split()
    return words[words.index("dev") + 1] if "dev" in words else None


def wait_for(predicate, timeout, what, interval=0.5):
    """Poll `predicate` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # noqa: BLE001  (keep polling; report the last error)
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Lab:
    def __init__(self, topology):
        self.topology = topology
        self.network = topology["network"]
        self.vip = self.network["vip"]
        self.master = topology["master"]
        self.machines = topology["machines"]
        self.state_dir = STATE
        # a str, not a Path: requests takes only a str as a CA bundle
        self.ca_cert_path = str(STATE / "secrets" / "ca.pem")
        # The app's database endpoint: HAProxy on the VIP, single writer.
        self.db_endpoint = (self.vip, 3306)
        self._http = None

    @property
    def secrets(self):
        return {"passwords": yaml.safe_load((STATE / "secrets" / "passwords.yaml").read_text())}

    @property
    def http(self):
        """HTTPS to the lab, trusting the lab CA (route already checked)."""
        if self._http is None:
            import requests

            self._http = requests.Session()
            # No proxy or CA bundle from the environment: straight to the lab.
            self._http.trust_env = False
            self._http.verify = self.ca_cert_path
        return self._http

    def with_role(self, role):
        return [n for n, m in self.machines.items() if role in m["roles"]]

    def require_route(self, address):
        dev = route_device(address)
        if dev != self.network["bridge"]:
            pytest.exit(f"lab not up: {address} is routed via {dev!r}, not the lab bridge "
                        f"{self.network['bridge']}; run ./lab up", returncode=3)

    # -- commands inside machines (lxc-attach: no network involved) -------
    def run(self, machine, command, check=True, timeout=300):
        proc = subprocess.run(
            ["lxc-attach", "-n", f"lemp-ha-{machine}", "--clear-env", "--set-var", f"PATH={PATH}",
             "--set-var", "LANG=C.UTF-8", "--", "bash", "-c", command],
            capture_output=True, text=True, timeout=timeout,
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

    # -- whole machines -----------------------------------------------------
    def state(self, machine):
        return subprocess.run(["lxc-info", "-s", "-H", "-n", f"lemp-ha-{machine}"],
                              capture_output=True, text=True).stdout.strip()

    def stop(self, machine, kill=False):
        subprocess.run(["lxc-stop", "-n", f"lemp-ha-{machine}"] + (["-k"] if kill else []), check=True)

    def start(self, machine):
        subprocess.run(["lxc-start", "-n", f"lemp-ha-{machine}"], check=True)
        # Not `systemctl is-system-running --wait`: after a full outage a
        # Galera node's start job waits for peers, and boot never "ends".
        wait_for(lambda: self.run(machine, "systemctl is-active salt-minion", check=False, timeout=20)
                 .stdout.strip() == "active", 120, f"{machine} to boot")
        wait_for(lambda: self.salt("--timeout=5", machine, "test.ping").get(machine) is True, 120,
                 f"{machine}'s minion to answer")


@pytest.fixture(scope="session")
def lab(topology):
    lab = Lab(topology)
    for machine in topology["machines"].values():
        lab.require_route(machine["address"])
    lab.require_route(topology["network"]["vip"])
    for name in topology["machines"]:
        if lab.state(name) != "RUNNING":
            pytest.exit(f"lab not up: {name} is {lab.state(name) or 'absent'}; run ./lab up", returncode=3)
    return lab


def pytest_collection_modifyitems(items):
    # The teardown test destroys the lab, so it runs after everything else.
    items.sort(key=lambda item: item.get_closest_marker("destroys_lab") is not None)


def pytest_configure(config):
    config.addinivalue_line("markers", "destroys_lab: tears the lab down; runs last, only in CI")
