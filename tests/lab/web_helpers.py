"""Helpers for tests/lab/test_web_lb.py: waits with deadlines (lemplab.wait_for,
never a bare sleep as a wait), a bounded load loop that logs every failure,
and readers of the lab's state (who holds the VIP, what each node serves)."""

import re
import threading
import time

from lemplab import wait_for

REQUEST_TIMEOUT = 5


def base_url(lab):
    return f"https://{lab.vip}"


def get_json(lab, path, session=None, timeout=REQUEST_TIMEOUT):
    http = session or lab.http
    resp = http.get(base_url(lab) + path, timeout=timeout, verify=lab.ca_cert_path)
    resp.raise_for_status()
    return resp.json()


def new_session(lab):
    """A fresh client (own cookies) that trusts the lab CA."""
    return lab.new_session()


def vip_holders(lab):
    """Names of the lb machines that have the VIP on an interface."""
    holders = []
    for name in lb_names(lab):
        out = lab.run(name, "ip -4 -o addr show", check=False)
        text = out if isinstance(out, str) else getattr(out, "stdout", str(out))
        if f" {lab.vip}/" in text:
            holders.append(name)
    return holders


def lb_names(lab):
    return lab.with_role("lb")


def web_names(lab):
    return lab.with_role("web")


def wait_single_vip_holder(lab, timeout=30, not_on=None):
    def one():
        holders = vip_holders(lab)
        if len(holders) == 1 and holders[0] != not_on:
            return holders[0]
        return None

    return wait_for(one, timeout, f"exactly one lb holding {lab.vip}" + (f", not {not_on}" if not_on else ""),
                    interval=0.2)


def wait_app_answers(lab, timeout=60):
    return wait_for(lambda: get_json(lab, "/api/info", session=new_session(lab)), timeout,
                    "the app to answer via the VIP", interval=0.2)


def nodes_and_versions(lab, requests_count=20):
    """{node: version} seen over ``requests_count`` fresh requests."""
    seen = {}
    for _ in range(requests_count):
        info = get_json(lab, "/?format=json", session=new_session(lab))
        seen[info["node"]] = info["version"]
    return seen


def salt_ret(result, minion):
    """The return of ``minion`` from lab.salt's JSON, whatever the wrapping."""
    if isinstance(result, dict) and minion in result:
        result = result[minion]
        if isinstance(result, dict) and "ret" in result:
            result = result["ret"]
    return result


def haproxy_state(lab, lb, server, backend="web"):
    return salt_ret(lab.salt(lb, "haproxy_runtime.state", backend, server), lb)


def haproxy_states(lab, server, backend="web"):
    """{lb: state of ``server``} on every lb, in one salt call."""
    return haproxy_states_of(lab, [server], backend)[server]


def haproxy_states_of(lab, servers, backend="web"):
    """{server: {lb: its state}} for every server of ``servers`` on every lb,
    in ONE salt call (haproxy_runtime.states): the per-test checks of the
    lab's wholeness ask this once for all web nodes, not once per node. A
    state is the lb's answer as it is where it is not a state (haproxy down,
    minion unreachable, a server the lb does not know)."""
    lbs = lb_names(lab)
    result = lab.salt("-L", ",".join(lbs), "haproxy_runtime.states", backend, ",".join(servers))
    states = {server: {} for server in servers}
    for lb in lbs:
        ret = salt_ret(result, lb)
        for server in servers:
            states[server][lb] = ret.get(server) if isinstance(ret, dict) and server in ret else ret
    return states


def _ready_and_up(st):
    return isinstance(st, dict) and st.get("admin") == "ready" and str(st.get("status", "")).startswith("UP")


def wait_webs_up_on_all_lbs(lab, servers=None, timeout=90):
    """wait_web_up_on_all_lbs for every server of ``servers`` (default: every
    web node) at once: one salt call a poll (haproxy_states_of)."""
    servers = list(servers or web_names(lab))
    last = {}

    def up():
        last["states"] = haproxy_states_of(lab, servers)
        return all(_ready_and_up(st) for per_lb in last["states"].values() for st in per_lb.values())

    try:
        wait_for(up, timeout, f"{', '.join(servers)} ready and UP on every lb", interval=1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last states: {last.get('states')}") from None


def wait_web_up_on_all_lbs(lab, server, timeout=90):
    wait_webs_up_on_all_lbs(lab, [server], timeout)


# A killed service stays down without masking its unit: `systemctl mask`
# reloads systemd, and a masked unit loses its drop-ins (systemd loads none
# for it), so the ExecStopPost= that runs after a real crash (haproxy's track
# file, keepalived's VIP removal: salt/keepalived/init.sls) would not run.
# A runtime drop-in that turns Restart= off keeps the unit as a crash finds it.
NO_RESTART_DROPIN = "/run/systemd/system/{unit}.service.d/zz-lemp-ha-no-restart.conf"


def no_restart_command(unit):
    """Shell: systemd will not restart ``unit`` after a kill."""
    path = NO_RESTART_DROPIN.format(unit=unit)
    return (f"mkdir -p {path.rsplit('/', 1)[0]} && printf '[Service]\\nRestart=no\\n' > {path} "
            f"&& systemctl daemon-reload")


def restart_allowed_command(unit):
    """Shell: undoes no_restart_command (idempotent; also an older run's mask)."""
    return (f"rm -f {NO_RESTART_DROPIN.format(unit=unit)}; systemctl unmask --runtime {unit}; "
            f"systemctl daemon-reload")


def stick_servers(lab, lbs, table="galera"):
    """{lb: the server HAProxy's stick table ``table`` sends the endpoint's
    clients to, or None while it is empty} on each of ``lbs`` (one salt
    call). The LBs share the table (the peers section): the writer, or the
    Redis master, that one chose is the other's."""
    result = lab.salt("-L", ",".join(lbs), "haproxy_runtime.command", f"show table {table}")
    out = {}
    for lb in lbs:
        found = re.search(r"server_key=(\S+)", str(salt_ret(result, lb)))
        out[lb] = found.group(1) if found else None
    return out


def keepalived_check_passed(lab, lb):
    """keepalived runs on ``lb`` and its HAProxy check has passed since it
    started: the LB could hold the VIP now (with nopreempt it takes it only
    in an election, never from a holder). Read from this run's journal
    (the unit's invocation: a container shares the host's boot id, so
    `journalctl -b` also shows the runs before a restart)."""
    out = lab.run(lb, "systemctl is-active -q keepalived && journalctl --no-pager -o cat "
                  "_SYSTEMD_INVOCATION_ID=$(systemctl show -p InvocationID --value keepalived) "
                  "| grep -c 'VRRP_Script(chk_haproxy) succeeded'", check=False)
    return out.returncode == 0 and out.stdout.strip() not in ("", "0")


class LoadLoop:
    """Steady HTTPS load through the VIP in a background thread, bounded in
    requests and seconds; every failure is logged with its time and reason.

        with LoadLoop(lab) as load:
            ...  # break something
        assert load.failures == []

    ``retry_dropped``: the client retries a GET once on a connection that
    was dropped or reset, as browsers do with idempotent requests (RFC 9110
    9.2.2); each retried request is logged in ``retried`` with its reason.
    A planned VIP move needs it: the keep-alive connection open on the LB
    giving the VIPs up is reset by the one taking them (no TCP state there).
    """

    def __init__(self, lab, path="/api/info", max_requests=20000, max_seconds=600, pause=0.02, retry_dropped=False,
                 check=None):
        self.lab, self.path = lab, path
        # check(response): None, or why a 200 answer is still wrong (a failure)
        self.check = check
        self.max_requests, self.max_seconds, self.pause = max_requests, max_seconds, pause
        self.retry_dropped = retry_dropped
        self.ok = 0
        self.failures = []
        self.retried = []
        self.nodes = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _session(self):
        session = new_session(self.lab)
        if self.retry_dropped:
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry

            retry = Retry(total=1, connect=1, read=1, status=0, other=1, redirect=0, allowed_methods=["GET"],
                          raise_on_status=False)
            session.mount("https://", HTTPAdapter(max_retries=retry))
        return session

    def _run(self):
        session = self._session()
        started = time.monotonic()
        for _ in range(self.max_requests):
            if self._stop.is_set() or time.monotonic() - started > self.max_seconds:
                break
            at = time.monotonic() - started
            try:
                resp = session.get(base_url(self.lab) + self.path, timeout=REQUEST_TIMEOUT)
                problem = self.check(resp) if self.check and resp.status_code == 200 else None
                if resp.status_code != 200:
                    self.failures.append((round(at, 2), f"HTTP {resp.status_code}: {resp.text[:200]}"))
                elif problem:
                    self.failures.append((round(at, 2), problem))
                else:
                    self.ok += 1
                    history = getattr(getattr(resp.raw, "retries", None), "history", None)
                    if history:
                        self.retried.append((round(at, 2), repr(history[-1].error)[:300]))
                    node = resp.json().get("node")
                    self.nodes[node] = self.nodes.get(node, 0) + 1
            except Exception as exc:  # noqa: BLE001 - every failure is recorded
                self.failures.append((round(at, 2), repr(exc)[:300]))
                session = self._session()
            self._stop.wait(self.pause)

    def wait_for_requests(self, count, timeout=60):
        target = self.ok + count
        wait_for(lambda: self.ok >= target, timeout, f"{count} more successful requests under load", interval=0.2)

    def __enter__(self):
        self._thread.start()
        self.wait_for_requests(5)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(REQUEST_TIMEOUT + 5)
        return False

    def report(self):
        retried = f", {len(self.retried)} retried: {self.retried[:20]}" if self.retry_dropped else ""
        return f"{self.ok} ok, {len(self.failures)} failed: {self.failures[:20]}{retried}"
