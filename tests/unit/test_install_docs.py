"""The install docs say what the code does (issue #15).

- docs/install/lab.md: every machine and address of its table is the
  topology's, and every URL it gives reaches a port that pillar/ports.yaml
  serves on that address (or on the VIP);
- docs/install/aws.md: its security-group table is pillar/ports.yaml, both ways;
- tools/smoke-test: --help works, the command on-prem.md and lab.md quote
  parses, and against a fake platform on loopback it passes when all is well
  and names the failure when not.
"""

import importlib.machinery
import importlib.util
import json
import re
import shlex
import ssl
import subprocess
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import yaml

INSTALL = "docs/install"
SMOKE = "tools/smoke-test"
SCHEME_PORTS = {"http": 80, "https": 443}


@pytest.fixture(scope="module")
def ports(repo):
    return yaml.safe_load((repo / "pillar" / "ports.yaml").read_text())


@pytest.fixture(scope="module")
def smoke(repo):
    loader = importlib.machinery.SourceFileLoader("smoke_test", str(repo / SMOKE))
    module = types.ModuleType(loader.name)
    module.__file__ = str(repo / SMOKE)
    loader.exec_module(module)
    return module


def table_rows(text, first_header):
    """The body rows (lists of cells) of the Markdown table whose first header cell is ``first_header``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_header:
            rows = []
            for body in lines[i + 2:]:
                if not body.startswith("|"):
                    break
                rows.append([c.strip() for c in body.strip().strip("|").split("|")])
            return rows
    raise AssertionError(f"no table starting with | {first_header} |")


def served(ports, topology, address, port):
    """The (group, service) rows of the port matrix that serve ``port`` on ``address``."""
    members = {role: {m["address"] for m in decl["members"]} for role, decl in topology["roles"].items()}
    members["machines"] = {m["address"] for m in topology["machines"].values()}
    found = []
    for group, services in ports.items():
        for name, spec in services.items():
            if port not in [p for p in spec.get("ports", []) if isinstance(p, int)]:
                continue
            to = spec.get("to")
            if (to and topology["network"][to] == address) or (not to and address in members.get(group, ())):
                found.append((group, name))
    return found


def test_lab_doc_machines_and_addresses_are_the_topology(repo, topology):
    rows = table_rows((repo / INSTALL / "lab.md").read_text(), "machine")
    documented = {row[0]: row[1] for row in rows}
    assert documented == {name: m["address"] for name, m in topology["machines"].items()}
    text = (repo / INSTALL / "lab.md").read_text()
    for key in ("vip", "internal_vip", "subnet", "bridge", "host"):
        assert str(topology["network"][key]) in text, f"lab.md does not name network.{key}"


def test_every_url_in_the_lab_doc_reaches_a_port_the_matrix_serves_there(repo, topology, ports):
    text = (repo / INSTALL / "lab.md").read_text()
    urls = sorted(set(re.findall(r"https?://10\.[0-9.]+(?::\d+)?/?[\w./?=-]*", text)))
    assert len(urls) >= 5, urls
    hosts = {urlsplit(u).hostname for u in urls}
    assert {topology["network"]["vip"], topology["machines"]["mon1"]["address"]} <= hosts
    assert {m["address"] for m in topology["roles"]["lb"]["members"]} <= hosts, "a stats URL per LB"
    for url in urls:
        parts = urlsplit(url)
        port = parts.port or SCHEME_PORTS[parts.scheme]
        assert served(ports, topology, parts.hostname, port), \
            f"lab.md: {url}: nothing in pillar/ports.yaml serves {parts.hostname}:{port}"


def test_the_stats_url_port_is_haproxys(repo):
    defaults = yaml.safe_load((repo / "salt" / "haproxy" / "defaults.yaml").read_text())["haproxy"]
    text = (repo / INSTALL / "lab.md").read_text()
    assert f":{defaults['stats_port']}/" in text and defaults["stats_user"] in text


def test_aws_security_groups_are_the_port_matrix_both_ways(repo, ports):
    rows = table_rows((repo / INSTALL / "aws.md").read_text(), "security group")
    documented = set()
    for group, service, protocol, _ in rows:
        proto, _, port_text = protocol.partition(" ")
        documented.add((group.strip("`").removeprefix("sg-"), service, proto,
                        "" if proto == "vrrp" else port_text))
    declared = {(group, name, spec["proto"], ",".join(str(p) for p in spec.get("ports", [])))
                for group, services in ports.items() for name, spec in services.items()}
    assert documented - declared == set(), "aws.md rows that pillar/ports.yaml does not declare"
    assert declared - documented == set(), "pillar/ports.yaml services missing from aws.md"


def test_smoke_test_help_works(repo):
    out = subprocess.run([str(repo / SMOKE), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "--cacert" in out.stdout and "--zabbix" in out.stdout and "--stats" in out.stdout


def quoted_smoke_commands(text):
    return [line.strip() for line in text.splitlines() if line.strip().startswith(SMOKE + " ")]


def test_the_quoted_smoke_commands_parse_and_the_lab_one_names_the_lab(repo, smoke, topology, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    on_prem = quoted_smoke_commands((repo / INSTALL / "on-prem.md").read_text())
    lab = quoted_smoke_commands((repo / INSTALL / "lab.md").read_text())
    assert len(on_prem) == 1 and len(lab) == 1, (on_prem, lab)
    for command in on_prem + lab:
        argv = [str(ca) if a in ("CA_FILE", "/var/lib/lemp-ha/secrets/ca.pem") else a for a in shlex.split(command)[1:]]
        smoke.parse_args(argv)
    args = shlex.split(lab[0])
    assert args[1] == f"https://{topology['network']['vip']}/"
    assert args[args.index("--zabbix") + 1] == f"https://{topology['machines']['mon1']['address']}/"
    # the lab command is the on-prem one with the lab's values
    lab_values = {"SITE": topology["network"]["vip"], "CA_FILE": "/var/lib/lemp-ha/secrets/ca.pem",
                  "MON1": topology["machines"]["mon1"]["address"],
                  "LB1": topology["machines"]["lb1"]["address"], "LB2": topology["machines"]["lb2"]["address"]}
    assert re.sub(r"\b(SITE|CA_FILE|MON1|LB1|LB2)\b", lambda m: lab_values[m.group(1)], on_prem[0]) == lab[0]


# -- the smoke test against a fake platform on loopback ---------------------------------------------


def make_ca_and_cert(tmp_path):
    """A CA and a certificate for 127.0.0.1 signed by it (openssl)."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
        "-subj", "/CN=smoke CA", "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "site.key", "-out", "site.csr")
    (tmp_path / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "site.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
        "-extfile", "ext.cnf", "-out", "site.pem")
    return tmp_path / "ca.pem", tmp_path / "site.pem", tmp_path / "site.key"


class FakePlatform:
    """HTTPS (app, /healthz/deep, Zabbix's index.php), HTTP (the redirect) and a stats page on loopback."""

    def __init__(self, tmp_path):
        self.health = {"status": "ok", "node": "web1", "release": "1.1.0", "check": "deep"}
        self.stats_login = True
        self.redirect_to = None
        ca, cert, key = make_ca_and_cert(tmp_path)
        self.ca = str(ca)
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, code, body, content_type="text/html", headers=()):
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                port = self.server.server_address[1]
                if port == platform.http_port:
                    self.answer(301, "", headers=[("Location", platform.redirect_to or
                                                   f"https://127.0.0.1:{platform.https_port}/")])
                elif port == platform.stats_port:
                    if platform.stats_login:
                        self.answer(401, "login", headers=[("WWW-Authenticate", 'Basic realm="haproxy-stats"')])
                    else:
                        self.answer(200, "stats for everyone")
                elif self.path == "/healthz/deep":
                    # nginx answers the maintenance flag with a 200, as a healthy node
                    code = 200 if platform.health["status"] in ("ok", "maintenance") else 503
                    self.answer(code, json.dumps(platform.health), "application/json")
                elif self.path == "/index.php":
                    self.answer(200, '<form><button name="enter" value="Sign in">Sign in</button></form>')
                else:
                    self.answer(200, "<!doctype html><title>app</title><h1>app 1.1.0</h1>")

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(3)]
        https, http, stats = self.servers
        https.socket = context.wrap_socket(https.socket, server_side=True)
        self.https_port, self.http_port, self.stats_port = (s.server_address[1] for s in self.servers)
        for server in self.servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def argv(self):
        base = f"https://127.0.0.1:{self.https_port}/"
        return [base, "--cacert", self.ca, "--zabbix", base, "--stats", f"http://127.0.0.1:{self.stats_port}/"]

    def close(self):
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def platform(tmp_path, monkeypatch, smoke):
    fake = FakePlatform(tmp_path)
    # the redirect check goes to port 80 of the site's host: here, the fake's HTTP port
    monkeypatch.setattr(smoke, "HTTP_PORT", fake.http_port)
    monkeypatch.setenv("LEMP_HA_STATE", str(tmp_path / "no-lab"))
    yield fake
    fake.close()


def test_smoke_test_passes_on_a_healthy_platform(smoke, platform, capsys):
    assert smoke.main(platform.argv()) == 0
    out = capsys.readouterr().out
    assert "all 5 checks passed" in out  # one stats page here
    assert re.search(r"ok +health .*-> 200, status 'ok' \(node web1, release 1\.1\.0, check deep\)$", out, re.M), out
    assert re.search(r"ok +Zabbix UI .*-> 200, the sign-in page", out), out
    assert re.search(r"ok +HAProxy stats .*-> 401, asks for a login", out), out
    assert re.search(r'ok +app page .*-> 200 \(title "app"\)', out), out
    assert re.search(r"ok +HTTP to HTTPS +http://127\.0\.0\.1:\d+/ -> 301 to https://127\.0\.0\.1:\d+/", out), out


def test_smoke_test_names_what_fails(smoke, platform, capsys):
    platform.health = {"status": "down", "node": "web1", "reason": "database: Access denied"}
    platform.stats_login = False
    platform.redirect_to = "https://elsewhere.example/"
    assert smoke.main(platform.argv()) == 1
    out = capsys.readouterr().out
    assert re.search(r"FAIL +health .*-> 503, status 'down' .*reason database: Access denied", out), out
    assert re.search(r"FAIL +HAProxy stats .*-> 200, shown WITHOUT a login", out), out
    assert re.search(r"FAIL +HTTP to HTTPS .*-> 301 to https://elsewhere\.example/", out), out
    assert "3 of 5 checks FAILED" in out


def test_smoke_test_fails_a_node_in_maintenance_and_verifies_only_what_it_sees(smoke, platform, capsys):
    # a restore's maintenance page: /healthz/deep answers 200, and the site is not up
    platform.health = {"status": "maintenance"}
    assert smoke.main(platform.argv()) == 1
    assert re.search(r"FAIL +health .*-> 200, status 'maintenance': maintenance: the node's maintenance flag is set",
                     capsys.readouterr().out)
    # an address outside nginx:lookup:health:details_from gets the status only: accepted, and said
    platform.health = {"status": "ok"}
    assert smoke.main(platform.argv()) == 0
    assert re.search(r"ok +health .*-> 200, status 'ok': ok \(status only: this address does not see the details, "
                     r"'check' not verified\)", capsys.readouterr().out)


def test_smoke_test_refuses_a_ca_that_did_not_sign_the_site(smoke, platform, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    wrong_ca, _, _ = make_ca_and_cert(other)
    argv = platform.argv()
    argv[argv.index("--cacert") + 1] = str(wrong_ca)
    assert smoke.main(argv) == 1
    assert re.search(r"FAIL +app page +SSLCertVerificationError", capsys.readouterr().out)


def test_on_the_lab_host_an_address_off_the_bridge_is_refused_before_anything_is_sent(smoke, topology,
                                                                                      monkeypatch, capsys, tmp_path):
    (tmp_path / "secrets").mkdir()
    monkeypatch.setenv("LEMP_HA_STATE", str(tmp_path))
    sent = []
    monkeypatch.setattr(smoke, "fetch", lambda *a, **k: sent.append(a))
    sys.path.insert(0, str(smoke.REPO / "tools" / "lab"))
    import lemplab

    monkeypatch.setattr(lemplab, "route_device", lambda address: "eth0")
    vip = topology["network"]["vip"]
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    assert smoke.main([f"https://{vip}/", "--cacert", str(ca)]) == 3
    assert sent == []
    assert f"lab not up: {vip} is routed via 'eth0', not the lab bridge {topology['network']['bridge']}" \
        in capsys.readouterr().err
