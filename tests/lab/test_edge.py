"""Edge protection on the VIP (issue #13 item 4), as a user sees it: a client
over the rate limit gets 429 while others are served, a slowloris client is
cut off while others are served, TLS below 1.2 is refused, responses carry
the security headers and no versions, the stats pages want a login, and
/healthz's details go only to the LBs and the admin network (the lab host).

The lab host is the admin network (exempt from the rate limit, pillar/lb.sls):
the over-limit client runs on mon1, a machine that is not exempt."""

import json
import re
import socket
import ssl
import time

import requests

import web_helpers as wh
from lemplab import wait_for

CURL = "curl -sk --max-time 10"  # on lab machines; the test is about limits, not the VIP's certificate


def live_config(lab):
    holder = wh.wait_single_vip_holder(lab)
    return lab.run(holder, "cat /etc/haproxy/haproxy.cfg").stdout


def https_frontend(lab):
    config = live_config(lab)
    return config.split("\nfrontend https-on-vip\n")[1].split("\n\n")[0]


def status_from(lab, machine, path="/api/info"):
    return lab.run(machine, f"{CURL} -o /dev/null -w '%{{http_code}}' 'https://{lab.vip}{path}'", check=False).stdout


def test_a_client_over_the_rate_limit_gets_429_while_others_are_served(lab):
    frontend = https_frontend(lab)
    limit = int(re.search(r"sc_http_req_rate\(0\) gt (\d+)", frontend).group(1))
    assert lab.network["host"] in re.search(r"acl edge_rate_exempt src (.*)", frontend).group(1).split()
    flooder, other = "mon1", lab.master
    # one connection, limit + 50 requests, as fast as the VIP answers
    burst = lab.run(flooder, f"{CURL} -o /dev/null -w '%{{http_code}}\\n' "
                             f"'https://{lab.vip}/api/info?n=[1-{limit + 50}]'", timeout=60).stdout.split()
    try:
        assert burst[0] == "200" and "429" in burst, burst[:5] + burst[-5:]
        assert set(burst) <= {"200", "429"}, sorted(set(burst))
        # meanwhile: another lab machine and the lab host are served
        assert status_from(lab, other) == "200"
        for _ in range(5):
            wh.get_json(lab, "/api/info", session=wh.new_session(lab))
    finally:
        # leave the lab as found: the flooder's rate falls below the limit
        wait_for(lambda: status_from(lab, flooder) == "200", 30, f"{flooder} served again", interval=1)


def test_a_client_sending_its_headers_one_byte_a_second_is_cut_off(lab):
    frontend = https_frontend(lab)
    timeout = int(re.search(r"timeout http-request (\d+)s", frontend).group(1))
    context = ssl.create_default_context(cafile=lab.ca_cert_path)
    context.check_hostname = False
    served = 0
    started = time.monotonic()
    raw = socket.create_connection((lab.vip, 443), timeout=5)
    with context.wrap_socket(raw) as conn:
        conn.settimeout(1)  # the slow client's pace: one byte, then up to a second for an answer
        answer = b""
        for byte in b"GET / HTTP/1.1\r\nHost: www\r\nX-Slow: " + b"a" * (timeout * 3):
            try:
                conn.sendall(bytes([byte]))
                answer = conn.recv(4096)
                break  # an answer (408) or the close
            except (socket.timeout, ssl.SSLWantReadError):
                pass
            except OSError:
                break
            # a normal client is served meanwhile
            wh.get_json(lab, "/api/info", session=wh.new_session(lab))
            served += 1
        elapsed = time.monotonic() - started
    assert elapsed < timeout + 5, f"the slow client was still connected after {elapsed:.0f}s"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert served >= timeout - 2


def handshake(lab, version):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(lab.ca_cert_path)
    context.check_hostname = False
    context.set_ciphers("DEFAULT@SECLEVEL=0")  # Debian's client would refuse TLS 1.1 itself otherwise
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = version
    with socket.create_connection((lab.vip, 443), timeout=5) as raw:
        with context.wrap_socket(raw) as conn:
            return conn.version()


def test_tls_below_1_2_is_refused_on_the_vip_and_1_2_works(lab):
    for version in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
        try:
            got = handshake(lab, version)
        except ssl.SSLError as exc:
            # the server's refusal, not our own client's
            assert "PROTOCOL_VERSION" in str(exc).upper() or "ALERT" in str(exc).upper(), exc
        else:
            raise AssertionError(f"the VIP accepted {got}")
    assert handshake(lab, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"


def test_responses_carry_security_headers_and_no_versions(lab):
    resp = lab.new_session().get(f"https://{lab.vip}/api/info", timeout=wh.REQUEST_TIMEOUT)
    assert resp.status_code == 200
    assert resp.headers.get("X-Content-Type-Options") == "nosniff"
    assert resp.headers.get("X-Frame-Options") == "SAMEORIGIN"
    assert resp.headers.get("Referrer-Policy") == "strict-origin-when-cross-origin"
    assert "camera=()" in resp.headers.get("Permissions-Policy", "")
    assert resp.headers.get("Strict-Transport-Security")
    assert "Server" not in resp.headers and "X-Powered-By" not in resp.headers
    # nginx's own error pages name no version either (asked on a web node directly)
    web = wh.web_names(lab)[0]
    page = lab.run(web, "curl -sk https://127.0.0.1/.hidden", check=False).stdout
    assert "nginx/" not in page


def test_the_stats_pages_want_a_login_except_zabbix_agent_on_the_lb_itself(lab):
    lb = wh.lb_names(lab)[0]
    address = lab.machines[lb]["address"]
    login = ("haproxy-stats", lab.secrets["passwords"]["haproxy_stats"])
    session = requests.Session()
    session.trust_env = False
    assert session.get(f"http://{address}:8404/;csv", timeout=5).status_code == 401
    assert session.get(f"http://{address}:8404/;csv", auth=login, timeout=5).status_code == 200
    # The monitoring stats (8405) reach nobody but the LB itself: the firewall
    # drops them from anywhere else (tests/lab/test_firewall.py), so their
    # login, which stands behind it, cannot be reached from here.
    # what the agent's web.page.get does: from the LB, to its own address
    code = lab.run(lb, f"curl -s -o /dev/null -w '%{{http_code}}' 'http://{address}:8405/stats;csv'").stdout
    assert code == "200"


def test_healthz_details_go_to_the_admin_network_and_the_public_gets_the_status(lab):
    # both checks, the shallow one HAProxy routes on and the deep one (the database too)
    for path, check in (("/healthz", "shallow"), ("/healthz/deep", "deep")):
        detailed = wh.get_json(lab, path, session=wh.new_session(lab))
        assert detailed["status"] == "ok" and detailed.get("node") and "release" in detailed, detailed
        assert detailed["check"] == check, detailed
        public = lab.run("mon1", f"{CURL} 'https://{lab.vip}{path}'").stdout
        assert json.loads(public) == {"status": "ok"}, (path, public)
