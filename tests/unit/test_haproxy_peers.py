"""Issue #14, the load balancers' HAProxy: the peers section (lemp_haproxy.peers,
the stick tables of the database and Redis endpoints shared by the LBs), and
the fault settings of haproxy.cfg.j2 (short connect timeouts, live-traffic
errors, slow start, faster database and Redis checks). The rendered file
passes `haproxy -c`; two real HAProxy processes on loopback, peers of each
other, show that the writer one LB chose is the writer of the other."""

import copy
import http.server
import os
import re
import socket
import socketserver
import subprocess
import threading
import time

import jinja2
import pytest
import yaml

import lemp_edge  # tests/conftest.py puts _modules on the path
import lemp_haproxy
from by_path import REPO, lab_pillar, load
from loopback import free_port

runtime = load("haproxy_runtime_peers", "_modules/haproxy_runtime.py")

HAPROXY = yaml.safe_load((REPO / "salt" / "haproxy" / "defaults.yaml").read_text())["haproxy"]
PORTS = yaml.safe_load((REPO / "pillar" / "ports.yaml").read_text())
LBS = [{"name": "lb1", "address": "10.77.0.11"}, {"name": "lb2", "address": "10.77.0.12"}]



# -- lemp_haproxy.peers ---------------------------------------------------------------------


def test_every_lb_is_a_peer_and_the_local_one_is_named_by_minion_id():
    for me in ("lb1", "lb2"):
        got = lemp_haproxy.peers(LBS, me, 10000)
        assert got == {"name": "lbs", "local": me,
                       "peers": [{"name": "lb1", "address": "10.77.0.11", "port": 10000},
                                 {"name": "lb2", "address": "10.77.0.12", "port": 10000}]}


def test_a_single_lb_is_its_own_peer_so_a_reload_keeps_the_tables():
    assert lemp_haproxy.peers(LBS[:1], "lb1", 10000)["peers"] == [
        {"name": "lb1", "address": "10.77.0.11", "port": 10000}]


@pytest.mark.parametrize("members, me, port, name, message", [
    (LBS, "web1", 10000, "lbs", "web1 is not a member of topology.roles.lb (lb1, lb2)"),
    ([], "lb1", 10000, "lbs", "lb1 is not a member of topology.roles.lb (none)"),
    (LBS, "lb1", 0, "lbs", "haproxy:lookup:peers:port must be a TCP port (1-65535), not 0"),
    (LBS, "lb1", "10000", "lbs", "haproxy:lookup:peers:port must be a TCP port"),
    (LBS, "lb1", True, "lbs", "haproxy:lookup:peers:port must be a TCP port"),
    (LBS, "lb1", 10000, "two words", "haproxy:lookup:peers:name must be a word"),
    ([{"name": "lb1"}], "lb1", 10000, "lbs", "needs a name and an address"),
])
def test_a_bad_peer_setting_is_refused_naming_the_key(members, me, port, name, message):
    with pytest.raises(lemp_haproxy.LimitsError) as err:
        lemp_haproxy.peers(members, me, port, name)
    assert message in str(err.value)


def test_the_peers_port_is_the_one_the_firewall_opens_between_the_lbs_only():
    entry = PORTS["lb"]["haproxy-peers"]
    assert entry["proto"] == "tcp" and entry["ports"] == [HAPROXY["peers"]["port"]]
    assert entry["from"] == ["lb"] and "to" not in entry  # the LBs' own addresses, not a VIP


# -- haproxy.cfg.j2 -------------------------------------------------------------------------


def render(haproxy=None, network=None, db_nodes=None, me="lb1", lbs=LBS, peers_port=10000):
    haproxy = copy.deepcopy(haproxy or HAPROXY)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(REPO / "salt" / "haproxy" / "files")),
                             extensions=["jinja2.ext.do"])
    machines = {lb["name"]: {"address": lb["address"]} for lb in lbs}
    return env.get_template("haproxy.cfg.j2").render(
        haproxy=haproxy,
        network=network or {"vip": "10.77.0.100", "internal_vip": "10.77.0.101", "subnet": "10.77.0.0/24"},
        web_nodes=[{"name": "web1", "address": "10.77.0.21"}, {"name": "web2", "address": "10.77.0.22"}],
        missing_web_nodes=[], pool_slots=[], db_nodes=db_nodes or [
            {"name": "db1", "address": "10.77.0.31"}, {"name": "db2", "address": "10.77.0.32"}],
        redis_password="pw", edge=lemp_edge.haproxy(haproxy["edge"], machines, me),
        stats_login=lemp_edge.stats_login(haproxy["stats_user"], "s3cretStatsPassw0rd4lab"),
        limits=lemp_haproxy.limits(haproxy["limits"]),
        peers=lemp_haproxy.peers(lbs, me, peers_port, haproxy["peers"]["name"])) + "\n"


def sections(config):
    """{'listen galera': [its lines without comments], ...}"""
    out, name = {}, None
    for line in config.splitlines():
        if line and not line.startswith((" ", "#")):
            name = line.strip()
            out[name] = []
        elif name and line.strip() and not line.strip().startswith("#"):
            out[name].append(line.strip())
    return out


def default_server(lines):
    return next(line for line in lines if line.startswith("default-server "))


def test_the_web_backend_fails_over_fast_and_lets_requests_in_flight_finish():
    parts = sections(render())
    web = parts["backend web"]
    # the connect timeout covers the TLS handshake: a busy node's is slow, not dead
    assert "timeout connect 2s" in web
    server = default_server(web)
    for option in ("check inter 1s fastinter 250ms fall 2 rise 2", "observe layer4 error-limit 3 on-error fail-check",
                   "slowstart 10s"):
        assert option in server, server
    assert "shutdown-sessions" not in " ".join(web)  # requests in flight on a node marked down finish
    assert "timeout connect 2s" in parts["defaults"]  # the others keep the default


def test_the_database_endpoint_checks_fast_never_cuts_on_return_and_shares_its_table():
    galera = sections(render())["listen galera"]
    assert "timeout connect 500ms" in galera and "timeout check 1s" in galera
    server = default_server(galera)
    assert "inter 500ms fall 2 rise 2" in server and "on-marked-down shutdown-sessions" in server
    assert "shutdown-backup-sessions" not in " ".join(galera)
    assert "stick-table type ip size 1 peers lbs" in galera and "stick on dst" in galera


def test_the_redis_endpoint_sees_a_new_master_within_a_check_and_shares_its_table():
    redis = sections(render())["listen redis-sessions"]
    assert "timeout connect 300ms" in redis
    assert "inter 250ms fall 2 rise 1" in default_server(redis)
    assert "stick-table type ip size 1 peers lbs" in redis
    # while no master is UP (a failover), a connection waits for one in redis-hold
    assert "server redis-hold 127.0.0.1:6390 backup non-stick" in redis and "option redispatch 1" in redis
    hold = sections(render())["listen redis-hold"]
    assert "tcp-request inspect-delay 3s" in hold
    assert "tcp-request content accept if { nbsrv(redis-hold) gt 0 }" in hold
    assert "tcp-request content accept if WAIT_END" in hold
    assert any(line.endswith("track redis-sessions/redis-web1") for line in hold)


def test_every_lb_renders_the_same_peers_and_names_itself():
    configs = {me: render(me=me) for me in ("lb1", "lb2")}
    for me, config in configs.items():
        parts = sections(config)
        assert f"localpeer {me}" in parts["global"]
        assert parts["peers lbs"] == ["peer lb1 10.77.0.11:10000", "peer lb2 10.77.0.12:10000"]
    # the same table, the same servers (peers send the server's id and name)
    strip = [sections(c)["listen galera"] for c in configs.values()]
    assert strip[0] == strip[1]


def test_the_lab_pillar_keeps_the_fault_settings():
    lab = lab_pillar("lb")["haproxy"]["lookup"]
    merged = copy.deepcopy(HAPROXY)
    merged["web"].update(lab["web"])
    merged["web"]["check"] = dict(HAPROXY["web"]["check"], **lab["web"]["check"])
    assert merged["web"]["check"]["fastinter"] == "250ms"
    assert "peers" not in lab or lab["peers"]["port"] == HAPROXY["peers"]["port"]


def test_the_rendered_file_passes_haproxy_check(host_tool, tmp_path):
    config = render()
    # haproxy -c reads the certificates: stand-ins; the chroot and log socket are the machine's
    haproxy = copy.deepcopy(HAPROXY)
    haproxy["tls_dir"] = str(tmp_path)
    _self_signed(host_tool, tmp_path)
    (tmp_path / "ca.pem").write_text((tmp_path / "cert.pem").read_text())
    config = render(haproxy=haproxy)
    config = re.sub(r"^    chroot .*\n", "", config, flags=re.M)
    config = re.sub(r"^    (user|group) haproxy\n", "", config, flags=re.M)
    config = re.sub(r"^    log /dev/\S+ (\S+)\n", r"    log stdout \1\n", config, flags=re.M)
    config = re.sub(r"^    stats socket \S+", f"    stats socket {tmp_path}/admin.sock", config, flags=re.M)
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    check = subprocess.run([host_tool("haproxy"), "-c", "-f", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "WARNING" not in check.stdout + check.stderr, check.stdout + check.stderr


def _self_signed(host_tool, folder):
    subprocess.run([host_tool("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", f"{folder}/key.pem", "-out", f"{folder}/cert.pem", "-days", "1", "-subj",
                    "/CN=vip"], check=True, capture_output=True)
    (folder / "vip.pem").write_text((folder / "cert.pem").read_text() + (folder / "key.pem").read_text())


# -- two LBs on loopback, peers of each other ------------------------------------------------


class _Banner(socketserver.ThreadingTCPServer):
    """A db node's stand-in: says its name to every client."""
    allow_reuse_address = True
    daemon_threads = True


def _db(address, port, name):
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(name.encode() + b"\n")

    server = _Banner((address, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _health(address, port):
    """galera-health's stand-in: 200."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_OPTIONS = do_GET  # noqa: N815  (option httpchk sends OPTIONS /)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _served_by(port, address="127.0.0.6"):
    with socket.create_connection((address, port), timeout=5) as conn:
        return conn.recv(64).decode().strip()


def _wait(predicate, what, timeout=15):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_the_writer_chosen_on_one_lb_is_the_writer_on_the_other(host_tool, tmp_path):
    """Both LBs bind the one internal VIP (127.0.0.6 here, on a port each)
    so the stick table's key, the destination address, is the same on both,
    as in the lab. lb1 sends its clients to db2 (db1 in maintenance there):
    lb2, where db1 is healthy, sends its own to db2 too."""
    haproxy_bin = host_tool("haproxy")
    db_port, check_port, peers_port = free_port(), free_port(), free_port()
    lbs = [{"name": "lb1", "address": "127.0.0.4"}, {"name": "lb2", "address": "127.0.0.5"}]
    dbs = [{"name": "db1", "address": "127.0.0.1"}, {"name": "db2", "address": "127.0.0.2"}]
    stand_ins = [_db("127.0.0.1", db_port, "db1"), _db("127.0.0.2", db_port, "db2"),
                 _health("127.0.0.1", check_port), _health("127.0.0.2", check_port)]
    haproxy = copy.deepcopy(HAPROXY)
    haproxy["galera"].update(port=db_port, check_port=check_port)
    haproxy["redis"]["enabled"] = False
    procs, front = {}, {}
    try:
        for lb in lbs:
            me = lb["name"]
            config = render(haproxy=haproxy, me=me, lbs=lbs, db_nodes=dbs, peers_port=peers_port,
                            network={"vip": "127.0.0.6", "internal_vip": "127.0.0.6", "subnet": "127.0.0.0/8"})
            parts = config.split("\npeers lbs\n", 1)[1]
            peers_section = "peers lbs\n" + parts.split("\n\n", 1)[0]
            galera = "listen galera\n" + config.split("\nlisten galera\n", 1)[1].split("\n\n", 1)[0]
            front[me] = free_port()
            galera = galera.replace(f"bind 127.0.0.6:{db_port}", f"bind 127.0.0.6:{front[me]}")
            sock = tmp_path / f"{me}.sock"
            text = (f"global\n    log stdout local0\n    localpeer {me}\n    stats socket {sock} level admin\n\n"
                    "defaults\n    mode tcp\n    timeout connect 500ms\n    timeout client 30s\n"
                    "    timeout server 30s\n\n" + peers_section + "\n\n" + galera + "\n")
            path = tmp_path / f"{me}.cfg"
            path.write_text(text)
            check = subprocess.run([haproxy_bin, "-c", "-f", str(path)], capture_output=True, text=True)
            assert check.returncode == 0, text + check.stdout + check.stderr
            procs[me] = (subprocess.Popen([haproxy_bin, "-db", "-f", str(path)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL), str(sock))

        def ask(me, cmd):
            return runtime.command(cmd, socket=procs[me][1], timeout=5)

        def up(me):
            """{server: status} of listen galera on ``me`` (show stat's CSV)."""
            if not os.path.exists(procs[me][1]):
                return {}
            rows = [line.split(",") for line in ask(me, "show stat").splitlines() if line.startswith("galera,")]
            return {row[1]: row[17] for row in rows if row[1] in ("db1", "db2")}

        for me in procs:
            _wait(lambda me=me: up(me) == {"db1": "UP", "db2": "UP"}, f"db1 and db2 UP on {me}")
        ask("lb1", "disable server galera/db1")
        assert _served_by(front["lb1"]) == "db2"
        _wait(lambda: "server_key=db2" in ask("lb2", "show table galera"), "lb2 to learn the writer from lb1")
        assert _served_by(front["lb2"]) == "db2"  # db1 is UP there, yet the shared table wins
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait(10)
        for server in stand_ins:
            server.shutdown()
            server.server_close()
