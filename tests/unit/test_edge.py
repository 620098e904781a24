"""Edge protection (issue #13 item 4): _modules/lemp_edge.py checks the
pillar, and haproxy.cfg.j2 rendered from it runs in a real HAProxy on
loopback (the public frontend with a stand-in backend), where a client over
the rate limit gets 429, a slow client is cut off, and the headers and the
stats login are what a user sees."""

import copy
import http.client
import http.server
import os
import re
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import jinja2
import pytest
import yaml

import lemp_edge  # tests/conftest.py puts _modules on the path
import lemp_haproxy
from by_path import REPO, lab_pillar
from loopback import free_port

HAPROXY = yaml.safe_load((REPO / "salt" / "haproxy" / "defaults.yaml").read_text())["haproxy"]
EDGE = HAPROXY["edge"]
PASSWORD = "s3cretStatsPassw0rd4lab"


def edge_with(**changes):
    edge = copy.deepcopy(EDGE)
    for path, value in changes.items():
        node = edge
        keys = path.split("__")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return edge


# -- the pillar, checked ---------------------------------------------------------


def test_the_defaults_give_a_rate_limit_timeouts_and_headers_without_csp():
    checked = lemp_edge.haproxy(EDGE, {"lb1": {"address": "10.77.0.11"}}, "lb1")
    assert checked["rate_limit"] == {"enabled": True, "requests": 1000, "period": "10s", "retry_after": 10,
                                     "table_size": 100000, "exempt": []}
    assert checked["timeouts"] == {"client": "30s", "http_request": "10s", "http_keep_alive": "5s"}
    assert checked["request"] == {"max_headers": 100, "max_body_bytes": 100 * 1024 ** 2}
    names = [h["name"] for h in checked["headers"]]
    assert {"X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Permissions-Policy"} == set(names)
    assert checked["hide_headers"] == ["Server", "X-Powered-By"]
    assert checked["local_stats_readers"] == ["127.0.0.1", "10.77.0.11"]


def test_the_lab_exempts_the_lab_host_only_and_limits_low_enough_to_test():
    limit = lab_pillar("lb")["haproxy"]["lookup"]["edge"]["rate_limit"]
    topology = yaml.safe_load((REPO / "pillar" / "topology.yaml").read_text())
    assert limit["exempt"] == [topology["network"]["host"]]
    assert lemp_edge.haproxy(edge_with(rate_limit=dict(EDGE["rate_limit"], **limit)))["rate_limit"]["requests"] <= 300


@pytest.mark.parametrize("changes, message", [
    ({"rate_limit__requests": 0}, "haproxy:lookup:edge:rate_limit:requests 0 must be a whole number above 0"),
    ({"rate_limit__requests": "many"}, 'haproxy:lookup:edge:rate_limit:requests "many" must be a whole number'),
    ({"rate_limit__period": "ten seconds"}, 'haproxy:lookup:edge:rate_limit:period "ten seconds" is not a HAProxy time'),
    ({"rate_limit__exempt": ["10.77.0.1/24"]}, 'haproxy:lookup:edge:rate_limit:exempt: "10.77.0.1/24" is not an address'),
    ({"rate_limit__exempt": "10.77.0.1"}, "haproxy:lookup:edge:rate_limit:exempt must be a list"),
    ({"rate_limit__enabled": "yes"}, 'haproxy:lookup:edge:rate_limit:enabled "yes" must be true or false'),
    ({"timeouts__http_request": "1m"}, "haproxy:lookup:edge:timeouts:http_request (1m) is longer than"),
    ({"timeouts__client": "soon"}, 'haproxy:lookup:edge:timeouts:client "soon" is not a HAProxy time'),
    ({"request__max_headers": 200}, "haproxy:lookup:edge:request:max_headers 200 is above HAProxy's own limit"),
    ({"request__max_body": "lots"}, 'haproxy:lookup:edge:request:max_body "lots" is not a size'),
    ({"headers__X-Frame-Options": "it's"}, "haproxy:lookup:edge:headers:X-Frame-Options \"it's\" cannot be written"),
    ({"headers__Content-Security-Policy": "default-src 'self'"}, "the content security policy is the app's"),
    ({"headers__Bad Name": "x"}, 'haproxy:lookup:edge:headers: "Bad Name" is not a header name'),
    ({"hide_headers": ["Content-Length"]}, "hide_headers: Content-Length is not the edge's to change"),
    ({"hide_headers": ["X-Frame-Options"]}, "x-frame-options is both in headers and in hide_headers"),
])
def test_a_bad_edge_setting_is_refused_naming_the_key(changes, message):
    with pytest.raises(lemp_edge.EdgeSettingsError, match=re.escape(message)):
        lemp_edge.haproxy(edge_with(**changes))


def test_a_header_value_is_quoted_for_haproxy_and_a_default_header_can_be_turned_off():
    checked = lemp_edge.haproxy(edge_with(**{"headers__X-Frame-Options": None, "headers__X-Test": "50% off"}))
    assert {"name": "X-Test", "value": "'50%% off'"} in checked["headers"]
    assert "X-Frame-Options" not in [h["name"] for h in checked["headers"]]


def test_the_stats_login_is_checked():
    assert lemp_edge.stats_login("haproxy-stats", PASSWORD) == {"user": "haproxy-stats", "password": PASSWORD}
    with pytest.raises(lemp_edge.EdgeSettingsError, match="secret haproxy:stats_password must be 16 to 128"):
        lemp_edge.stats_login("haproxy-stats", "short")
    with pytest.raises(lemp_edge.EdgeSettingsError, match="haproxy:lookup:stats_user"):
        lemp_edge.stats_login("Stats User", PASSWORD)


def test_healthz_details_go_to_loopback_the_lbs_and_the_admin_network_only():
    assert lemp_edge.healthz_details_from(["10.77.0.1"], ["10.77.0.11", "10.77.0.12"]) == [
        "127.0.0.1", "10.77.0.11", "10.77.0.12", "10.77.0.1"]
    assert lemp_edge.healthz_details_from([], []) == ["127.0.0.1"]
    with pytest.raises(lemp_edge.EdgeSettingsError, match="nginx:lookup:health:details_from: \"everyone\" is not an address"):
        lemp_edge.healthz_details_from(["everyone"], [])
    assert lab_pillar("web")["nginx"]["lookup"]["health"]["details_from"] == ["10.77.0.1"]


def test_nginx_hides_its_version_and_gives_healthz_details_by_address():
    site = (REPO / "salt" / "nginx" / "files" / "site.conf.j2").read_text()
    assert "\nserver_tokens off;\n" in site
    assert "fastcgi_param LEMP_HEALTHZ_DETAILS $lemp_healthz_details;" in site
    script = (REPO / "salt" / "nginx" / "files" / "healthz.php").read_text()
    assert "$_SERVER['LEMP_HEALTHZ_DETAILS']" in script and "$out = ['status' => $out['status']];" in script
    phpfpm = (REPO / "salt" / "phpfpm" / "config.sls").read_text()
    assert "expose_php=Off" in phpfpm


# -- the rendered haproxy.cfg in a real HAProxy ------------------------------------



class _Backend(http.server.ThreadingHTTPServer):
    daemon_threads = True


def _backend():
    """The web node's stand-in: a version header like nginx's and PHP's, and
    on /framed the app's own X-Frame-Options."""
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            body = b"ok\n"
            self.send_response(200)
            self.send_header("X-Powered-By", "PHP/8.2.7")
            if self.path == "/framed":
                self.send_header("X-Frame-Options", "DENY")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET  # noqa: N815

        def version_string(self):
            return "nginx/1.22.1"

        def log_message(self, *args):
            pass

    server = _Backend(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def render(edge, workdir, backend_port):
    """haproxy.cfg.j2 as salt/haproxy/config.sls renders it, on loopback:
    VIP 127.0.0.1, this LB 127.0.0.4, no galera/redis."""
    haproxy = copy.deepcopy(HAPROXY)
    haproxy.update(tls_dir=workdir, galera=dict(haproxy["galera"], enabled=False),
                   redis=dict(haproxy["redis"], enabled=False), web=dict(haproxy["web"], port=backend_port))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(REPO / "salt" / "haproxy" / "files")),
                             extensions=["jinja2.ext.do"])
    return env.get_template("haproxy.cfg.j2").render(
        haproxy=haproxy, network={"vip": "127.0.0.1", "subnet": "127.0.0.0/8"},
        web_nodes=[{"name": "web1", "address": "127.0.0.1"}], missing_web_nodes=[], pool_slots=[], db_nodes=[],
        redis_password="", edge=lemp_edge.haproxy(edge, {"lb1": {"address": "127.0.0.4"}}, "lb1"),
        stats_login=lemp_edge.stats_login(haproxy["stats_user"], PASSWORD),
        limits=lemp_haproxy.limits(haproxy["limits"]),
        peers=lemp_haproxy.peers([{"name": "lb1", "address": "127.0.0.4"}], "lb1", free_port()))


@pytest.fixture(scope="module")
def edge_lb(host_tool):
    haproxy_bin, openssl = host_tool("haproxy"), host_tool("openssl")
    workdir = tempfile.mkdtemp(prefix="edge-", dir="/tmp")
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", f"{workdir}/key.pem", "-out", f"{workdir}/cert.pem", "-days", "1", "-subj", "/CN=vip"],
                   check=True, capture_output=True)
    with open(f"{workdir}/vip.pem", "w") as pem:
        pem.write(open(f"{workdir}/cert.pem").read() + open(f"{workdir}/key.pem").read())
    backend = _backend()
    ports = {name: free_port() for name in ("http", "https", "stats", "monitoring")}
    edge = edge_with(rate_limit__requests=5, rate_limit__exempt=["127.0.0.2"], timeouts__http_request="1s",
                     timeouts__client="5s", request__max_headers=20, request__max_body="1k")
    config = render(edge, workdir, backend.server_port)
    # Loopback stand-ins: free ports, a plain-HTTP backend, no chroot nor system socket.
    config = config.replace("127.0.0.1:80\n", f"127.0.0.1:{ports['http']}\n")
    config = config.replace("127.0.0.1:443 ssl", f"127.0.0.1:{ports['https']} ssl")
    # the stats listeners bind the LB's own addresses (loopback and 127.0.0.4 here)
    config = re.sub(r"(127\.0\.0\.[14]):8404\n", rf"\1:{ports['stats']}\n", config)
    config = re.sub(r"(127\.0\.0\.[14]):8405\n", rf"\1:{ports['monitoring']}\n", config)
    config = re.sub(r" ssl verify required ca-file \S+", "", config).replace(" verifyhost web1", "")
    config = "global\n    log stdout local0\n    localpeer lb1\n\ndefaults\n" + config.split("\ndefaults\n", 1)[1]
    path = os.path.join(workdir, "haproxy.cfg")
    with open(path, "w") as handle:
        handle.write(config + "\n")  # Salt keeps the trailing newline Jinja drops
    check = subprocess.run([haproxy_bin, "-c", "-f", path], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    proc = subprocess.Popen([haproxy_bin, "-db", "-f", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", ports["https"]), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "haproxy did not start"
                time.sleep(0.05)
        yield ports
    finally:
        proc.terminate()
        proc.wait(10)
        backend.shutdown()
        subprocess.run(["rm", "-rf", workdir], check=False)


def request(port, path="/", source="127.0.0.1", tls=True, method="GET", headers=None, body=None, auth=None):
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context, source_address=(source, 0))
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    headers = dict(headers or {})
    if auth:
        import base64
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def test_a_client_over_the_rate_limit_gets_429_while_others_are_served(edge_lb):
    statuses = [request(edge_lb["https"], source="127.0.0.5").status for _ in range(8)]
    assert statuses[:5] == [200] * 5 and set(statuses[5:]) == {429}, statuses
    limited = request(edge_lb["https"], source="127.0.0.5")
    assert limited.status == 429 and limited.getheader("Retry-After") == "10"
    # another client, and the exempt admin address, are not limited
    assert request(edge_lb["https"], source="127.0.0.6").status == 200
    assert {request(edge_lb["https"], source="127.0.0.2").status for _ in range(10)} == {200}


def test_a_client_sending_its_headers_slowly_is_cut_off(edge_lb):
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", edge_lb["https"]), source_address=("127.0.0.7", 0))
    with context.wrap_socket(raw) as conn:
        conn.settimeout(0.3)
        started, answer = time.monotonic(), b""
        for byte in b"GET / HTTP/1.1\r\nHost: vip\r\nX-Slow: " + b"a" * 100:
            try:
                conn.sendall(bytes([byte]))
                chunk = conn.recv(4096)  # waits 0.3 s: the pace of the slow client
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except OSError:
                break
            answer += chunk
            if not chunk or answer:
                break
        elapsed = time.monotonic() - started
    assert elapsed < 3, f"still connected after {elapsed:.1f}s (timeout http-request 1s)"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert request(edge_lb["https"], source="127.0.0.8").status == 200


def test_responses_carry_the_security_headers_unless_the_app_set_them_and_no_versions(edge_lb):
    resp = request(edge_lb["https"], source="127.0.0.9")
    assert resp.getheader("X-Content-Type-Options") == "nosniff"
    assert resp.getheader("X-Frame-Options") == "SAMEORIGIN"
    assert resp.getheader("Referrer-Policy") == "strict-origin-when-cross-origin"
    assert resp.getheader("Permissions-Policy") == EDGE["headers"]["Permissions-Policy"]
    assert resp.getheader("Strict-Transport-Security") == "max-age=31536000"
    assert resp.getheader("Server") is None and resp.getheader("X-Powered-By") is None
    assert resp.getheader("Content-Security-Policy") is None
    assert request(edge_lb["https"], "/framed", source="127.0.0.9").getheader("X-Frame-Options") == "DENY"


def test_too_many_headers_and_a_too_large_body_are_refused(edge_lb):
    many = {f"X-H{i}": "x" for i in range(25)}
    assert request(edge_lb["https"], source="127.0.0.10", headers=many).status == 431
    assert request(edge_lb["https"], source="127.0.0.10", method="POST", body=b"x" * 2048).status == 413
    assert request(edge_lb["https"], source="127.0.0.10", method="POST", body=b"x" * 512).status == 200


def test_the_stats_pages_ask_for_the_login_except_the_lb_itself_on_the_monitoring_one(edge_lb):
    login = ("haproxy-stats", PASSWORD)
    assert request(edge_lb["stats"], "/;csv", tls=False).status == 401
    assert request(edge_lb["stats"], "/;csv", tls=False, auth=("haproxy-stats", "wrong" * 4)).status == 401
    assert request(edge_lb["stats"], "/;csv", tls=False, auth=login).status == 200
    assert request(edge_lb["monitoring"], "/stats;csv", tls=False, source="127.0.0.3").status == 401
    assert request(edge_lb["monitoring"], "/stats;csv", tls=False, source="127.0.0.3", auth=login).status == 200
    # the agent on the LB reads from the LB's own address (HOST.CONN) or loopback
    assert request(edge_lb["monitoring"], "/stats;csv", tls=False, source="127.0.0.4").status == 200
