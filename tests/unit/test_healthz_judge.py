"""The gates' one judge of a /healthz answer (_modules/lemp_healthz.py):
healthy only for 200 + "status": "ok" + the expected "check" (and release),
never for the 200 "maintenance" answer nginx gives while a node's maintenance
flag is set, an answer from another server, or a shallow answer to a deep
gate. Its wait loop and its command line (./lab up) against a loopback
server, and the smoke test's health line. The gates' steps (orch.deploy,
orch.patch, orch.enrol) are checked in test_web_plans.py, test_patch.py and
test_enrol.py. What only the lab shows (a real node in maintenance refused
by orch.deploy's gate) is not covered here."""

import http.server
import importlib.machinery
import importlib.util
import pathlib
import re
import subprocess
import sys
import threading

import pytest

import lemp_healthz  # tests/conftest.py puts _modules on the path

REPO = pathlib.Path(__file__).resolve().parents[2]

OK = '{"status":"ok","node":"web1","release":"1.1.0","check":"deep"}\n'
SHALLOW = '{"status":"ok","node":"web1","release":"1.1.0","check":"shallow"}\n'
MAINT = '{"status":"maintenance"}\n'
DOWN = '{"status":"down","node":"web1","release":"1.1.0","check":"deep","reason":"database: Connection refused"}\n'


@pytest.mark.parametrize("code, body, kwargs, healthy, why", [
    (200, OK, {}, True, "ok: node web1, release 1.1.0, check deep"),
    (200, OK, {"release": "1.1.0"}, True, "ok: node web1"),
    (200, SHALLOW, {"check": "shallow"}, True, "check shallow"),
    # a node in maintenance answers 200: not healthy for a gate
    (200, MAINT, {}, False, "maintenance: the node's maintenance flag is set"),
    (200, MAINT, {"details": False}, False, "maintenance"),
    (200, MAINT, {"check": "shallow"}, False, "maintenance"),
    (503, DOWN, {}, False, "down: database: Connection refused (HTTP 503)"),
    (503, '{"status":"down","reason":"php-fpm does not answer"}', {}, False, "down: php-fpm does not answer"),
    (503, '{"status":"down"}', {"details": False}, False, "down: no reason shown"),
    # a 200 from somewhere else: an HTML page, another app's JSON
    (200, "<html><body>Welcome to nginx!</body></html>", {}, False, "not JSON (HTTP 200): '<html>"),
    (200, "", {}, False, "not JSON (HTTP 200)"),
    (200, '["ok"]', {}, False, "not JSON"),
    (502, "<html>Bad Gateway</html>", {}, False, "not JSON (HTTP 502)"),
    (200, '{"status":"ok"}', {}, False, "no details: the answer has no 'check'"),
    (200, '{"status":"healthy"}', {}, False, "status 'healthy', not 'ok'"),
    # the shallow check (or the deep one) answering a gate that asked for the other
    (200, SHALLOW, {}, False, "shallow answer: 'check' is 'shallow', not 'deep'"),
    (200, OK, {"check": "shallow"}, False, "deep answer"),
    (200, OK, {"release": "1.2.0"}, False, "serves release '1.1.0', not '1.2.0'"),
    (503, '{"status":"ok","check":"deep"}', {}, False, "down: HTTP 503"),
    # the public view (an address outside details_from): status only, accepted only without details
    (200, '{"status":"ok"}', {"details": False}, True, "'check' not verified"),
    (200, SHALLOW, {"details": False}, False, "shallow answer"),
])
def test_the_judge_accepts_only_a_real_ok(code, body, kwargs, healthy, why):
    got, reason = lemp_healthz.judge(code, body, **kwargs)
    assert got is healthy and why in reason, reason


def test_the_judge_refuses_an_unknown_check():
    with pytest.raises(ValueError, match="check 'full' is not one of deep, shallow"):
        lemp_healthz.judge(200, OK, check="full")


@pytest.fixture
def server():
    """A loopback HTTP server answering /healthz/deep from a script of
    (code, body); the last answer repeats."""
    script, asked = [], []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            asked.append(self.path)
            code, body = script[0] if len(script) == 1 else script.pop(0)
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.script, httpd.asked = script, asked
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_wait_goes_on_through_maintenance_and_passes_once_the_node_is_ok(server, host_tool):
    host_tool("curl")
    server.script[:] = [(200, MAINT), (503, DOWN), (200, OK)]
    out = lemp_healthz.wait(server.base + "healthz/deep", release="1.1.0", attempts=5, interval=0)
    assert out.endswith("ok: node web1, release 1.1.0, check deep") and server.asked == ["/healthz/deep"] * 3


def test_wait_fails_with_the_last_reason(server, host_tool):
    host_tool("curl")
    server.script[:] = [(200, MAINT)]
    with pytest.raises(lemp_healthz.CommandExecutionError, match=r"is not healthy from .* after 3 tries: "
                                                                 r"maintenance: the node's maintenance flag"):
        lemp_healthz.wait(server.base + "healthz/deep", attempts=3, interval=0)
    assert len(server.asked) == 3


def test_wait_names_no_answer(server, host_tool):
    host_tool("curl")
    url = server.base + "healthz/deep"
    server.shutdown()
    server.server_close()
    with pytest.raises(lemp_healthz.CommandExecutionError, match=r"after 1 tries: no answer: curl: \(7\)"):
        lemp_healthz.wait(url, attempts=1, interval=0, timeout=2)


def test_the_command_line_of_lab_up_exits_1_with_the_reason_and_0_when_ok(server, host_tool):
    host_tool("curl")
    argv = [sys.executable, str(REPO / "_modules" / "lemp_healthz.py"), "wait", server.base + "healthz/deep",
            "--attempts", "2", "--interval", "0"]
    server.script[:] = [(200, "<html>another server</html>")]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 1 and "after 2 tries: not JSON (HTTP 200)" in out.stderr, out
    server.script[:] = [(200, OK)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0 and "ok: node web1, release 1.1.0, check deep" in out.stdout, out


def test_lab_up_and_every_salt_gate_use_the_judge_not_the_http_code():
    cmd_up = (REPO / "tools" / "lab" / "cmd_up.sh").read_text()
    assert '"$HOST_PYTHON" "$LAB_REPO/_modules/lemp_healthz.py" wait "https://$vip/healthz/deep"' in cmd_up
    for path in ["tools/lab/cmd_up.sh", *(str(p.relative_to(REPO)) for p in (REPO / "_runners").glob("*.py")),
                 *(str(p.relative_to(REPO)) for p in (REPO / "orch").glob("*.sls"))]:
        text = (REPO / path).read_text()
        # no gate asks with curl and decides on the code alone (-w %{http_code}, -f)
        assert "http_code" not in text and not re.search(r"curl -f", text), path


# -- tools/smoke-test's health line ---------------------------------------------------

# a script without .py: loaded as test_install_docs.py does
_loader = importlib.machinery.SourceFileLoader("smoke_test_script", str(REPO / "tools" / "smoke-test"))
smoke = importlib.util.module_from_spec(importlib.util.spec_from_loader(_loader.name, _loader))
_loader.exec_module(smoke)


def test_the_smoke_test_uses_the_gates_judge(server):
    server.script[:] = [(200, MAINT)]
    ok, line = smoke.check_health(server.base, None, details=True)
    assert not ok and "-> 200, status 'maintenance': maintenance: the node's maintenance flag is set" in line
    server.script[:] = [(200, OK)]
    ok, line = smoke.check_health(server.base, None, details=True)
    assert ok and line.endswith("healthz/deep -> 200, status 'ok' (node web1, release 1.1.0, check deep)"), line
    server.script[:] = [(200, SHALLOW)]
    ok, line = smoke.check_health(server.base, None, details=True)
    assert not ok and "shallow answer" in line
    server.script[:] = [(200, "<html>hello</html>")]
    ok, line = smoke.check_health(server.base, None, details=True)
    assert not ok and "-> 200, not JSON (HTTP 200)" in line


def test_the_smoke_test_from_outside_details_from_accepts_the_public_ok_and_says_so(server):
    server.script[:] = [(200, '{"status":"ok"}')]
    ok, line = smoke.check_health(server.base, None, details=False)
    assert ok and "'check' not verified" in line
    # on the lab host (which sees the details) the same answer is not the platform's
    ok, line = smoke.check_health(server.base, None, details=True)
    assert not ok and "no details" in line
