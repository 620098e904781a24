"""Self-registration of pool VMs (issue 12), on the running lab.

`vagrant up web3` and nothing else: the Vagrantfile mints web3's one-time
key on the master (lemp_enrol.mint) and seeds it into the VM; its minion's
start event runs orch.enrol through the reactor; web3 ends up serving behind
both load balancers. Under steady HTTPS load through the VIP no request
fails, and no backend is ever declared twice.

Meanwhile `orch.scale_out` by hand boots the next free name (web4): both
join, once each. Also: a restarted minion changes nothing; a used key
cannot enrol another machine; a name outside the pool gets no key; a pool
VM whose highstate fails (web5) never enters the pool. Last, `orch.scale_in`
of web4 and web3 under load fails no request and leaves no trace (HAProxy,
Zabbix, the key list, the VM).

Written for the lab; every address is checked to be routed over the lab
bridge (lemplab) before anything is sent.
"""

import fnmatch
import json
import os
import subprocess
import threading
import time

import pytest

from lemplab import PATH as LAB_PATH
from lemplab import REPO, wait_for
from web_helpers import LoadLoop, haproxy_state, lb_names, salt_ret, wait_web_up_on_all_lbs

# Autoscaling stays out of the way of the VMs booted by hand here.
pytestmark = pytest.mark.usefixtures("autoscaling_paused")

VAGRANT_ENV = {"VAGRANT_CWD": str(REPO), "VAGRANT_DEFAULT_PROVIDER": "lxc", "VAGRANT_CHECKPOINT_DISABLE": "1"}
BACKEND = "web"
ENROL_TIMEOUT = 600


def pool(lab):
    return {e["name"]: e["address"] for e in lab.topology["scaling"]["web"]["pool"]}


def vagrant(*args, timeout=900):
    proc = subprocess.run(["vagrant", *args], env={**os.environ, **VAGRANT_ENV}, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"vagrant {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def enrolled(lab):
    code, data = lab.salt_run("lemp_enrol.enrolled")
    assert code == 0, data
    return data


def web_rows(lab, lb):
    """(server name, admin state) of every server of the web backend on ``lb``."""
    rows = salt_ret(lab.salt(lb, "haproxy_runtime.show_stat"), lb)
    assert isinstance(rows, list), rows
    return [r["svname"] for r in rows if r.get("pxname") == BACKEND and r.get("svname") not in ("FRONTEND", "BACKEND")]


def assert_no_duplicate_backend(lab):
    for lb in lb_names(lab):
        names = web_rows(lab, lb)
        assert len(names) == len(set(names)), f"{lb}: a server is declared twice in backend {BACKEND}: {names}"


def admin_states(lab):
    return {(lb, name): haproxy_state(lab, lb, name)["admin"] for lb in lb_names(lab) for name in web_rows(lab, lb)}


PROBE_TAG = "lemp-ha/test/event-waiter-subscribed"


class EventWaiter:
    """Listen on the master's event bus (salt-run state.event) from before
    an action until an event of ``tag`` (fnmatch) for which ``match(data)``
    holds, so that the event is not missed; ``data()`` waits for it.
    ``wanted`` ({key: (tag, match)}) waits for several events on the one
    listener, and ``data(key)`` returns each: one subscription, not one per
    event (each costs a salt-run start and a probe on the master).
    Entering returns once the listener has seen a probe event of its own:
    subscribed, not merely started."""

    def __init__(self, lab, tag=None, match=lambda data: True, timeout=ENROL_TIMEOUT, wanted=None):
        self.lab, self.timeout = lab, timeout
        self.wanted = dict(wanted) if wanted else {None: (tag, match)}
        self.found = {}
        self.seen = []
        self._proc = None
        self._token = f"{os.getpid()}-{id(self)}-{time.monotonic_ns()}"
        self._subscribed = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def _read(self):
        for line in self._proc.stdout:
            tag, _, body = line.rstrip("\n").partition("\t")
            try:
                data = json.loads(body)
            except ValueError:
                continue
            if tag == PROBE_TAG:
                if (data.get("data") or {}).get("token") == self._token or data.get("token") == self._token:
                    self._subscribed.set()
                continue
            keys = [key for key, (pattern, _) in self.wanted.items()
                    if key not in self.found and fnmatch.fnmatch(tag, pattern)]
            if not keys:
                continue
            self.seen.append(tag)
            for key in keys:
                if self.wanted[key][1](data):
                    self.found[key] = data
            if len(self.found) == len(self.wanted):
                return

    def __enter__(self):
        # the same way into the master as lab.run (lxc-attach), but streamed;
        # every tag: the probe below and ours, filtered here
        self._proc = subprocess.Popen(
            ["lxc-attach", "-n", f"lemp-ha-{self.lab.master}", "--clear-env", "--set-var", f"PATH={LAB_PATH}",
             "--", "bash", "-c", f"exec timeout {self.timeout} salt-run state.event count=-1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._thread.start()
        probe = json.dumps({"token": self._token})
        deadline = time.monotonic() + 60
        while not self._subscribed.is_set():
            assert time.monotonic() < deadline and self._proc.poll() is None, \
                "salt-run state.event on the master never saw its own probe event within 60 s"
            self.lab.run(self.lab.master, f"salt-run event.send {PROBE_TAG} '{probe}'", check=False)
            self._subscribed.wait(2)
        return self

    def __exit__(self, *exc):
        if self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)
        return False

    def data(self, key=None):
        """The event wanted under ``key``, once seen (the listener ends by its
        ``timeout``: the reading thread then ends too)."""
        deadline = time.monotonic() + self.timeout + 30
        while key not in self.found and self._thread.is_alive() and time.monotonic() < deadline:
            self._thread.join(0.2)
        tag = self.wanted[key][0]
        assert key in self.found, f"no {tag} event matched within {self.timeout}s (saw {self.seen[-20:]})"
        return self.found[key]


def orchestration_of(node):
    """An orch.enrol run for ``node`` has ended (its runner return event)."""
    return lambda data: data.get("fun") == "runner.state.orchestrate" and "orch.enrol" in json.dumps(
        data.get("fun_args")) and f'"{node}"' in json.dumps(data.get("fun_args"))


def take_out(lab, node):
    """Cleanup: the node out of both LBs, the store, Zabbix and the key
    list, its VM destroyed (what orch.scale_in does, done here so that this
    module does not depend on it)."""
    for lb in lb_names(lab):
        lab.salt(lb, "haproxy_runtime.drain", BACKEND, node)
        lab.salt(lb, "haproxy_runtime.wait_drained", BACKEND, node, "timeout=60")
        lab.salt(lb, "haproxy_runtime.disable", BACKEND, node)
    lab.salt_run("lemp_enrol.remove", f"node={node}")
    lab.salt("-L", ",".join(lb_names(lab)), "state.apply", "haproxy.config", "queue=True")
    monitors = lab.with_role("monitor")
    if monitors:
        lab.salt(monitors[0], "lemp_zabbix.host_absent", node)
    lab.salt_run("lemp_enrol.forget", f"name={node}")
    vagrant("destroy", "-f", node)


def accepted_keys(lab):
    out = lab.run(lab.master, "salt-key --list=accepted --out=json")
    return json.loads(out.stdout).get("minions", [])


@pytest.fixture(scope="module")
def web3(lab):
    """Under steady load through the VIP, at the same time: `vagrant up web3`
    and nothing else, and `orch.scale_out` by hand, which boots the next free
    name of the pool (web4). Both join; whatever is left at the end of the
    module is taken out (the last test scales both in)."""
    names = ["web3", "web4"]
    for name in names:
        lab.require_route(pool(lab)[name])
        assert lab.state(name) != "RUNNING", f"{name} is already running: destroy it first (vagrant destroy -f {name})"
        assert name not in enrolled(lab)
    record = {"name": "web3"}
    try:
        with LoadLoop(lab) as load, EventWaiter(lab, "lemp-ha/enrol/done",
                                                lambda data: data.get("node") == "web3") as done:
            errors = []

            def boot():
                try:
                    vagrant("up", "web3")
                except Exception as exc:  # noqa: BLE001  (reported below, from the test's thread)
                    errors.append(f"web3: {exc}")
            started = time.monotonic()
            booting = threading.Thread(target=boot)
            booting.start()
            # web3's key is minted before its VM boots: from then on it holds
            # its pool slot, and orch.scale_out takes the next one
            wait_for(lambda: "web3" in accepted_keys(lab) or not booting.is_alive(), 300,
                     "the Vagrantfile to have web3's key minted")
            ok, detail = lab.orchestrate("orch.scale_out", timeout=1200)
            record["scale_out"] = (ok, detail)
            wait_for(lambda: load.nodes.get("web3", 0) > 0 or not booting.is_alive() and errors, ENROL_TIMEOUT,
                     "web3 to serve a request through the VIP", interval=0.2)
            assert not errors, errors
            record["seconds_to_first_request"] = round(time.monotonic() - started, 1)
            booting.join(900)
            assert not errors, errors
            record["event"] = done.data()
            for name in names:
                wait_web_up_on_all_lbs(lab, name)
                wait_for(lambda n=name: load.nodes.get(n, 0) > 0, 120, f"{name} to serve a request through the VIP",
                         interval=0.2)
            load.wait_for_requests(100)
        record["load"] = load
        print(f"web3: {record['seconds_to_first_request']} s from `vagrant up` to its first request served "
              "(web4 booting by orch.scale_out meanwhile)")
        yield record
    finally:
        for name in names:
            if lab.state(name) == "RUNNING" or name in enrolled(lab):
                take_out(lab, name)


def test_a_booted_pool_vm_joins_by_itself_without_a_failed_request(lab, web3):
    load = web3["load"]
    assert load.failures == [], load.report()
    assert load.nodes.get("web3", 0) > 0, load.report()
    assert web3["event"].get("node") == "web3", web3["event"]
    assert "web3" in enrolled(lab)
    for lb in lb_names(lab):
        assert haproxy_state(lab, lb, "web3")["admin"] == "ready", lb
    assert_no_duplicate_backend(lab)
    # a reload keeps it: the config on disk has the slot enabled
    for lb in lb_names(lab):
        line = lab.run(lb, "grep -E '^\\s+server web3 ' /etc/haproxy/haproxy.cfg").stdout
        assert "disabled" not in line, (lb, line)


def test_orch_scale_out_meanwhile_boots_the_next_free_name_and_both_join_once(lab, web3):
    ok, detail = web3["scale_out"]
    assert ok, detail
    load = web3["load"]
    assert load.nodes.get("web4", 0) > 0, load.report()
    members = enrolled(lab)
    assert members.count("web3") == 1 and members.count("web4") == 1, members
    assert_no_duplicate_backend(lab)
    for lb in lb_names(lab):
        for name in ("web3", "web4"):
            assert haproxy_state(lab, lb, name)["admin"] == "ready", (lb, name)
            line = lab.run(lb, f"grep -E '^\\s+server {name} ' /etc/haproxy/haproxy.cfg").stdout
            assert line.count("\n") == 1 and "disabled" not in line, (lb, line)
    log = lab.run(lab.master, "cat /var/log/lemp-ha/scaling.log").stdout
    assert "scale-out web4 (from by hand)" in log, log[-2000:]


def test_restarting_salt_minion_on_a_serving_node_changes_nothing(lab, web3):
    before = admin_states(lab)
    nodes = ("web1", "web3")
    with LoadLoop(lab) as load:
        # both restarted at once, one listener waiting for both reactions'
        # ends: the restarts and the waits overlap, and the listener's
        # start is paid once
        wanted = {node: ("salt/run/*/ret", orchestration_of(node)) for node in nodes}
        with EventWaiter(lab, wanted=wanted, timeout=300) as waiter:
            for node in nodes:
                lab.run(node, "systemctl restart salt-minion")
            rets = {node: waiter.data(node) for node in nodes}
        # the reaction of each start event has ended, without a failed
        # step (web1: not a pool node; web3: re-checked), and nothing moved
        for node, ret in rets.items():
            assert ret.get("success") is True, (node, ret)
        assert admin_states(lab) == before
        load.wait_for_requests(50)
    assert load.failures == [], load.report()
    assert_no_duplicate_backend(lab)
    assert enrolled(lab).count("web3") == 1


def test_a_used_key_cannot_enrol_another_machine_and_a_name_outside_the_pool_gets_none(lab, web3):
    code, data = lab.salt_run("lemp_enrol.mint", "name=web3")
    assert code != 0 and "already has an accepted key" in json.dumps(data), data
    code, data = lab.salt_run("lemp_enrol.mint", "name=web9")
    assert code != 0 and "not a name of scaling.web.pool" in json.dumps(data), data
    # web3's key, copied onto another machine that calls itself web6
    rogue_dir = "/tmp/lemp-ha-rogue-minion"
    master = lab.topology["master_address"]
    lab.run("web1", f"rm -rf {rogue_dir} && mkdir -p {rogue_dir}/pki && chmod 700 {rogue_dir}")
    key = lab.run("web3", "cat /etc/salt/pki/minion/minion.pem").stdout
    pub = lab.run("web3", "cat /etc/salt/pki/minion/minion.pub").stdout
    try:
        config = "\n".join(["id: web6", f"master: {master}", f"pki_dir: {rogue_dir}/pki",
                            f"cachedir: {rogue_dir}/cache", f"log_file: {rogue_dir}/log",
                            "acceptance_wait_time: 1", "auth_tries: 1", ""])
        lab.run("web1", f"cat > {rogue_dir}/pki/minion.pem <<'EOF'\n{key}EOF\n"
                        f"cat > {rogue_dir}/pki/minion.pub <<'EOF'\n{pub}EOF\n"
                        f"chmod 600 {rogue_dir}/pki/minion.pem\n"
                        f"cat > {rogue_dir}/minion <<'EOF'\n{config}EOF\n")
        out = lab.run("web1", f"timeout 60 salt-call -c {rogue_dir} test.ping", check=False)
        assert out.returncode != 0, out.stdout
        code, data = lab.salt_run("lemp_enrol.check", "web6")
        assert code == 0 and data["accepted"] is False and data["kind"] == "not a pool node", data
        assert "web6" not in enrolled(lab)
    finally:
        lab.run("web1", f"rm -rf {rogue_dir}", check=False)
        lab.run(lab.master, "salt-key -y -d web6", check=False)


def test_a_pool_vm_whose_highstate_fails_never_enters_the_pool(lab):
    name, address = "web5", pool(lab)["web5"]
    lab.require_route(address)
    assert lab.state(name) != "RUNNING", f"{name} is already running: destroy it first (vagrant destroy -f {name})"
    # A pillar override that breaks web5's highstate: its own pillar file on
    # the master (GPG-rendered YAML; a plain value is fine) names a bad version.
    pillar = f"/srv/lemp-ha-secrets/minions/{name}.sls"
    lab.run(lab.master, f"cp -p {pillar} {pillar}.test-backup && printf '\\napp:\\n  version: \"1..2\"\\n' >> {pillar}")
    try:
        with LoadLoop(lab) as load, EventWaiter(lab, "lemp-ha/enrol/failed",
                                                lambda data: data.get("node") == name) as failed:
            vagrant("up", name)
            event = failed.data()
            load.wait_for_requests(50)
        assert event.get("node") == name and event.get("step") == f"apply-highstate-on-{name}", event
        assert load.failures == [], load.report()
        assert load.nodes.get(name, 0) == 0, load.report()
        assert name not in enrolled(lab)
        for lb in lb_names(lab):
            assert haproxy_state(lab, lb, name)["admin"] == "maint", lb
        assert_no_duplicate_backend(lab)
        log = lab.run(lab.master, "cat /var/log/lemp-ha/enrol.log").stdout
        assert f"enrol {name} failed at apply-highstate-on-{name}" in log, log[-2000:]
    finally:
        lab.run(lab.master, f"mv -f {pillar}.test-backup {pillar}", check=False)
        lab.salt_run("lemp_enrol.forget", f"name={name}")
        if lab.state(name):
            vagrant("destroy", "-f", name)


def test_orch_scale_in_under_load_fails_no_request_and_leaves_no_trace(lab, web3):
    """Last of the module: web3 and web4 scaled in by hand, both runs at
    once (as two operators, or the reactor, run orchestrations side by side:
    each run's HAProxy render is queued behind the other's)."""
    mon = lab.with_role("monitor")[0]
    results = {}

    def scale_in(name):
        try:
            results[name] = lab.orchestrate("orch.scale_in", {"node": name}, timeout=900)
        except Exception as exc:  # noqa: BLE001  (reported below, from the test's thread)
            results[name] = (False, f"{type(exc).__name__}: {exc}")

    with LoadLoop(lab) as load:
        runs = [threading.Thread(target=scale_in, args=(name,)) for name in ("web4", "web3")]
        for run in runs:
            run.start()
        for run in runs:
            run.join(960)
        for name in ("web4", "web3"):
            ok, detail = results.get(name, (False, "orch.scale_in did not return within 960 s"))
            assert ok, (name, detail)
        load.wait_for_requests(50)
    assert load.failures == [], load.report()
    for name in ("web3", "web4"):
        assert name not in enrolled(lab)
        assert name not in accepted_keys(lab)
        assert lab.state(name) != "RUNNING", name
        assert name not in (salt_ret(lab.salt(mon, "lemp_zabbix.host_names"), mon) or []), name
        for lb in lb_names(lab):
            assert haproxy_state(lab, lb, name)["admin"] == "maint", (lb, name)
            # a reload keeps it out: the config renders the slot disabled
            line = lab.run(lb, f"grep -E '^\\s+server {name} ' /etc/haproxy/haproxy.cfg").stdout
            assert "disabled" in line, (lb, line)
    assert_no_duplicate_backend(lab)
    log = lab.run(lab.master, "cat /var/log/lemp-ha/scaling.log").stdout
    assert "scale-in web3 (from by hand)" in log and "scale-in web4 (from by hand)" in log, log[-2000:]
