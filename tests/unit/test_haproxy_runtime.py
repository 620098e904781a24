"""haproxy_runtime: the execution module and its state, against a real HAProxy
on loopback (admin socket under /tmp) when haproxy is installed, and against a
fake socket for the error paths."""

import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest
from salt.exceptions import CommandExecutionError

from by_path import load  # tests/unit/by_path.py
from loopback import free_port


def _load(kind):
    return load(f"haproxy_runtime_{kind}", f"{kind}/haproxy_runtime.py")


mod = _load("_modules")



def _wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class _Backend(http.server.ThreadingHTTPServer):
    daemon_threads = True


def _backend_server(release):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/slow":
                release.wait(20)
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = _Backend(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def haproxy(host_tool):
    """A real haproxy on 127.0.0.1 with backend 'web' = web1, web2 (both the
    same local Python server) and an admin socket in a private /tmp folder."""
    binary = host_tool("haproxy")
    release = threading.Event()
    backend = _backend_server(release)
    workdir = tempfile.mkdtemp(prefix="hart-", dir="/tmp")
    sock = os.path.join(workdir, "admin.sock")
    front = free_port()
    cfg = os.path.join(workdir, "haproxy.cfg")
    with open(cfg, "w", encoding="utf-8") as handle:
        handle.write(f"""
global
    stats socket {sock} mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:{front}
    default_backend web
backend web
    balance roundrobin
    server web1 127.0.0.1:{backend.server_port}
    server web2 127.0.0.1:{backend.server_port}
    # a scaling-pool slot, as salt/haproxy writes one not enrolled
    server web3 127.0.0.1:{backend.server_port} disabled
""")
    proc = subprocess.Popen([binary, "-db", "-f", cfg], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: os.path.exists(sock) or proc.poll() is not None, what="haproxy admin socket")
        if proc.poll() is not None:
            pytest.fail("haproxy did not start: " + proc.stdout.read().decode())
        yield {"socket": sock, "url": f"http://127.0.0.1:{front}", "release": release}
    finally:
        release.set()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        backend.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def lb(haproxy):
    """Every test starts with both servers ready and no request held."""
    for srv in ("web1", "web2"):
        mod.enable("web", srv, socket=haproxy["socket"])
    haproxy["release"].set()
    _wait_for(lambda: all(mod.state("web", s, socket=haproxy["socket"])["scur"] == 0 for s in ("web1", "web2")),
              what="no session left from an earlier test")
    haproxy["release"].clear()
    yield haproxy
    haproxy["release"].set()


def _hold_requests(lb, count):
    """Start ``count`` slow requests through haproxy; they end on lb['release']."""
    results = []

    def get():
        try:
            with urllib.request.urlopen(lb["url"] + "/slow", timeout=30) as resp:
                results.append(resp.status)
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            results.append(exc)

    threads = [threading.Thread(target=get, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


# -- against a real haproxy ----------------------------------------------------


def test_state_of_a_ready_server(lb):
    st = mod.state("web", "web1", socket=lb["socket"])
    assert st["admin"] == "ready"
    assert st["scur"] == 0
    assert st["status"].startswith(("UP", "no check"))


def test_drain_enable_disable_round_trip(lb):
    s = lb["socket"]
    assert mod.drain("web", "web1", socket=s)["admin"] == "drain"
    assert mod.state("web", "web1", socket=s)["status"] == "DRAIN"
    assert mod.enable("web", "web1", socket=s)["admin"] == "ready"
    assert mod.disable("web", "web1", socket=s)["admin"] == "maint"
    assert mod.state("web", "web1", socket=s)["status"] == "MAINT"
    assert mod.enable("web", "web1", socket=s)["admin"] == "ready"


def test_drained_server_gets_no_new_request(lb):
    s = lb["socket"]
    mod.drain("web", "web1", socket=s)
    before = int(mod.state("web", "web1", socket=s)["scur"])
    stats = {r["svname"]: int(r["stot"]) for r in mod.show_stat(socket=s) if r["pxname"] == "web"}
    for _ in range(6):
        with urllib.request.urlopen(lb["url"] + "/", timeout=5) as resp:
            assert resp.status == 200
    after = {r["svname"]: int(r["stot"]) for r in mod.show_stat(socket=s) if r["pxname"] == "web"}
    assert after["web1"] == stats["web1"], "a drained server must get no new request"
    assert after["web2"] == stats["web2"] + 6
    assert before == 0


def test_wait_drained_returns_when_in_flight_requests_end(lb):
    s = lb["socket"]
    mod.disable("web", "web2", socket=s)  # every request goes to web1
    threads, results = _hold_requests(lb, 2)
    _wait_for(lambda: mod.state("web", "web1", socket=s)["scur"] == 2, what="2 sessions on web1")
    mod.drain("web", "web1", socket=s)
    threading.Timer(0.5, lb["release"].set).start()
    started = time.monotonic()
    st = mod.wait_drained("web", "web1", timeout=15, socket=s)
    assert st["scur"] == 0
    assert time.monotonic() - started >= 0.4, "must have waited for the in-flight requests"
    for thread in threads:
        thread.join(10)
    assert results == [200, 200], "draining must not break requests in flight"


def test_wait_drained_times_out_naming_the_server(lb):
    s = lb["socket"]
    mod.disable("web", "web2", socket=s)
    _hold_requests(lb, 1)
    _wait_for(lambda: mod.state("web", "web1", socket=s)["scur"] == 1, what="1 session on web1")
    mod.drain("web", "web1", socket=s)
    with pytest.raises(CommandExecutionError, match=r"web/web1 still has 1 session"):
        mod.wait_drained("web", "web1", timeout=0.5, socket=s)


def test_wait_drained_refuses_a_server_in_rotation(lb):
    with pytest.raises(CommandExecutionError, match="still in rotation"):
        mod.wait_drained("web", "web1", timeout=1, socket=lb["socket"])


def test_unknown_server_or_backend_is_named(lb):
    with pytest.raises(CommandExecutionError, match=r"no server web/web9"):
        mod.drain("web", "web9", socket=lb["socket"])
    with pytest.raises(CommandExecutionError, match=r"no server nope/web1 \(backends with servers: web\)"):
        mod.state("nope", "web1", socket=lb["socket"])


# -- the state module -----------------------------------------------------------


def _state_module(socket_path, test=False):
    st = _load("_states")
    st.__salt__ = {
        "haproxy_runtime.state": mod.state,
        "haproxy_runtime.drain": mod.drain,
        "haproxy_runtime.enable": mod.enable,
        "haproxy_runtime.disable": mod.disable,
        "haproxy_runtime.wait_drained": mod.wait_drained,
    }
    st.__opts__ = {"test": test}
    return st


def test_state_virtual_needs_the_execution_module():
    st = _load("_states")
    st.__salt__ = {}
    assert st.__virtual__()[0] is False
    st.__salt__ = {"haproxy_runtime.state": mod.state}
    assert st.__virtual__() == "haproxy_runtime"


def test_state_test_mode_changes_nothing(lb):
    st = _state_module(lb["socket"], test=True)
    ret = st.drained("web1", backend="web", socket=lb["socket"])
    assert ret["result"] is None
    assert ret["changes"] == {"admin": {"old": "ready", "new": "drain"}}
    assert mod.state("web", "web1", socket=lb["socket"])["admin"] == "ready"


def test_state_drained_then_ready_is_idempotent(lb):
    st = _state_module(lb["socket"])
    ret = st.drained("web1", backend="web", timeout=5, socket=lb["socket"])
    assert ret["result"] is True, ret
    assert ret["changes"] == {"admin": {"old": "ready", "new": "drain"}}
    again = st.drained("web1", backend="web", timeout=5, socket=lb["socket"])
    assert again["result"] is True and again["changes"] == {}
    back = st.ready("web1", backend="web", socket=lb["socket"])
    assert back["result"] is True and back["changes"] == {"admin": {"old": "drain", "new": "ready"}}
    assert set(back) == {"name", "result", "changes", "comment"}


def test_state_fails_with_the_reason(lb):
    st = _state_module(lb["socket"])
    ret = st.maint("web9", backend="web", socket=lb["socket"])
    assert ret["result"] is False
    assert "no server web/web9" in ret["comment"]


# -- without haproxy: fake or missing socket --------------------------------------


def test_missing_socket_is_a_clear_error(tmp_path):
    path = str(tmp_path / "nope.sock")
    with pytest.raises(CommandExecutionError, match=f"cannot talk to {path}"):
        mod.state("web", "web1", socket=path)


@pytest.fixture
def fake_socket():
    """A unix socket answering each command from a dict; records the commands."""
    workdir = tempfile.mkdtemp(prefix="hart-fake-", dir="/tmp")
    path = os.path.join(workdir, "fake.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    answers, seen = {}, []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                cmd = conn.recv(4096).decode().strip()
                seen.append(cmd)
                conn.sendall(answers.get(cmd, "Unknown command.\n").encode())

    threading.Thread(target=serve, daemon=True).start()
    yield path, answers, seen
    server.close()
    shutil.rmtree(workdir, ignore_errors=True)


STAT = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,weight,check_status\n"
    "web,web1,0,0,3,5,,10,UP,1,L7OK\n"
    "web,BACKEND,0,0,3,5,,10,UP,1,\n"
)
SERVERS = (
    "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state\n"
    "3 web 1 web1 10.77.0.21 2 8\n"
)


def test_parses_stat_and_admin_bits(fake_socket):
    path, answers, _ = fake_socket
    answers["show stat"] = STAT
    answers["show servers state web"] = SERVERS
    st = mod.state("web", "web1", socket=path)
    assert st == {"backend": "web", "server": "web1", "admin": "drain", "status": "UP",
                  "scur": 3, "qcur": 0, "weight": 1, "check_status": "L7OK"}


def test_refused_command_is_reported(fake_socket):
    path, answers, seen = fake_socket
    answers["show stat"] = STAT
    answers["set server web/web1 state drain"] = "Permission denied\n"
    with pytest.raises(CommandExecutionError, match="haproxy refused 'set server web/web1 state drain'.*Permission denied"):
        mod.drain("web", "web1", socket=path)
    assert "set server web/web1 state drain" in seen


def test_garbage_stat_answer_is_reported(fake_socket):
    path, answers, _ = fake_socket
    answers["show stat"] = "Permission denied\n"
    with pytest.raises(CommandExecutionError, match="unexpected 'show stat' answer"):
        mod.show_stat(socket=path)


def test_states_reads_several_servers_at_once_as_state_reads_each(lb):
    """One reading for many servers (the lab tests' "every web node UP on
    every LB" check, one salt call a poll): what state gives for each, also
    drained and in maintenance; an unknown server is its error's text."""
    s = lb["socket"]

    def same():
        got = mod.states("web", "web1,web2,web3", socket=s)
        assert got == {srv: mod.state("web", srv, socket=s) for srv in ("web1", "web2", "web3")}

    same()
    mod.drain("web", "web1", socket=s)
    mod.disable("web", "web2", socket=s)
    same()
    assert mod.states("web", ["web9"], socket=s)["web9"].startswith("ERROR: ") and "web/web9" in \
        mod.states("web", ["web9"], socket=s)["web9"]


def test_wait_up_returns_for_a_ready_server_and_times_out_in_maint(lb):
    s = lb["socket"]
    assert mod.wait_up("web", "web1", timeout=5, socket=s)["admin"] == "ready"
    mod.disable("web", "web1", socket=s)
    with pytest.raises(CommandExecutionError, match=r"web/web1 is not up after 0.3s: admin maint"):
        mod.wait_up("web", "web1", timeout=0.3, socket=s)


def test_a_pool_slot_declared_disabled_joins_and_leaves_at_runtime_without_a_reload(lb):
    s = lb["socket"]
    assert mod.state("web", "web3", socket=s)["admin"] == "maint"
    try:
        assert mod.enable("web", "web3", socket=s)["admin"] == "ready"
        assert mod.wait_up("web", "web3", timeout=5, socket=s)["admin"] == "ready"

        def served():
            return next(int(r["stot"]) for r in mod.show_stat(socket=s) if r["svname"] == "web3")

        before = served()
        for _ in range(6):
            with urllib.request.urlopen(lb["url"] + "/", timeout=10) as resp:
                assert resp.status == 200
        assert served() > before, "the enabled slot got no request"
    finally:
        assert mod.disable("web", "web3", socket=s)["admin"] == "maint"
