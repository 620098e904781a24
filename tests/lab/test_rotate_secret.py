"""Secret rotation on the lab (orch.rotate_secret, docs/secrets.md "Rotation"):
the app's database password is replaced under steady HTTPS load on a page
that reads the database, with no failed request; afterwards the old password
is refused and the new one accepted (over TLS: the account REQUIREs SSL),
and the lab host's copy holds the new value. The same for PHP's Redis
password (user sessions), on the session page: sessions survive. And one
machine's Zabbix agent PSK (lb2): its agent keeps reporting to mon1 over
the new key, the old key is gone from its file, no problem is left open."""

import shlex

from web_helpers import LoadLoop, base_url, new_session

# Log in as the app from a web node, the password on stdin: prints "ok" or
# the server's error number (1045: access denied).
LOGIN = r'''
import sys
import pymysql
host, port = sys.argv[1], int(sys.argv[2])
try:
    pymysql.connect(host=host, port=port, user="app", password=sys.stdin.read(), database="app", connect_timeout=5,
                    ssl={"ca": "/usr/local/share/ca-certificates/lemp-ha-platform-ca.crt"}).close()
    print("ok")
except pymysql.err.OperationalError as exc:
    print(exc.args[0])
'''


def login(lab, web, password):
    host, port = lab.db_endpoint
    proc = lab.run(web, f"/opt/salt/bin/python -c {shlex.quote(LOGIN)} {host} {port}", input=password)
    return proc.stdout.strip()


def test_rotating_the_app_db_password_fails_no_request_and_the_old_one_is_refused(lab):
    web = lab.with_role("web")[0]
    old = lab.secrets["passwords"]["app_db"]
    # a row to read: GET /api/items/<id> runs a SELECT through the app's account
    created = new_session(lab).post(base_url(lab) + "/api/items", json={"note": "rotation"}, timeout=10)
    assert created.status_code == 201, created.text
    with LoadLoop(lab, path=f"/api/items/{created.json()['id']}", max_seconds=120) as load:
        ok, detail, new = lab.rotate_secret("app_db", timeout=300)
        load.wait_for_requests(5)
    assert ok, detail
    assert load.failures == [], load.report()
    assert new and new != old
    assert lab.secrets["passwords"]["app_db"] == new  # the lab host's copy: tests and ./lab up use it
    assert login(lab, web, new) == "ok"
    assert login(lab, web, old) == "1045"


class SessionCounter:
    """LoadLoop's check for /api/info: the session counter goes up by one
    per request. The app answers 200 with a null counter when the session
    store refuses it (app/public/index.php), so a 200 alone would hide a
    refused password; a counter back at 1 is a lost session."""

    def __init__(self):
        self.last = None

    def __call__(self, resp):
        counter = resp.json().get("session_counter")
        if counter is None:
            return "session store unavailable (session_counter null)"
        if self.last is not None and counter != self.last + 1:
            problem = f"session counter went from {self.last} to {counter}"
            self.last = counter
            return problem
        self.last = counter
        return None


def test_rotating_the_php_redis_password_fails_no_request_keeps_sessions_and_refuses_the_old_one(lab):
    from test_redis_acl import redis_cli  # tests/lab: redis-cli on a machine, the password on stdin

    web = lab.with_role("web")[0]
    old = lab.secrets["passwords"]["redis_sessions"]
    visitor = new_session(lab)  # a session opened before, used again after
    first = visitor.get(base_url(lab) + "/api/info", timeout=10).json()["session_counter"]
    assert first is not None
    with LoadLoop(lab, path="/api/info", max_seconds=240, check=SessionCounter()) as load:
        ok, detail, new = lab.rotate_secret("redis_sessions", timeout=300)
        load.wait_for_requests(5)
    assert ok, detail
    assert load.failures == [], load.report()
    assert visitor.get(base_url(lab) + "/api/info", timeout=10).json()["session_counter"] == first + 1
    assert new and new != old
    assert lab.secrets["passwords"]["redis_sessions"] == new  # the lab host's copy
    assert redis_cli(lab, web, "PING", user="sessions", password=new) == "PONG"
    refused = redis_cli(lab, web, "PING", user="sessions", password=old)
    assert "WRONGPASS" in refused or "NOAUTH" in refused, refused



def test_rotating_one_machines_zabbix_psk_keeps_it_reporting_and_leaves_no_problem(lab):
    import pathlib
    import ssl

    import yaml
    from zabbix_utils import ZabbixAPI

    from lemplab import wait_for

    repo = pathlib.Path(__file__).resolve().parents[2]
    agent = yaml.safe_load((repo / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]["agent"]
    machine = lab.with_role("lb")[-1]  # lb2: the VIP's backup, the cheapest agent to cut for seconds
    mon = lab.with_role("monitor")[0]
    old = lab.secrets["per_machine"]["zabbix_psk"][machine]
    started = int(lab.run(mon, "date +%s").stdout)
    ok, detail, new = lab.rotate_secret("zabbix_psk", machine=machine, timeout=300)
    assert ok, detail
    assert set(new) == {machine} and new[machine] != old
    assert lab.secrets["per_machine"]["zabbix_psk"][machine] == new[machine]  # the lab host's copy
    # the agent's key file holds the new key: the old one is gone
    assert lab.run(machine, f"cat {agent['psk_file']}").stdout.strip() == new[machine]
    address = lab.machines[mon]["address"]
    lab.require_route(address)
    api = ZabbixAPI(url=f"https://{address}/api_jsonrpc.php",
                    ssl_context=ssl.create_default_context(cafile=lab.ca_cert_path))
    api.login(user="Admin", password=lab.secrets["passwords"]["zabbix_admin"])
    try:
        hostid = api.host.get(output=["hostid"], filter={"host": machine})[0]["hostid"]
        done = int(lab.run(mon, "date +%s").stdout)

        def heartbeat_after_the_run():
            items = api.item.get(output=["lastclock"], hostids=hostid,
                                 filter={"key_": "vfs.file.exists[/proc/uptime]"})  # lemp-ha agent reachable
            return bool(items) and int(items[0]["lastclock"] or 0) > done

        # mon1 takes the agent's data over the new key (the agent accepts no other)
        wait_for(heartbeat_after_the_run, 60, f"a heartbeat of {machine} after its PSK rotation", interval=2)
        # the window is closed: a problem opened meanwhile and still open would be mailed now
        still_open = [p["name"] for p in api.problem.get(output=["name", "r_eventid"], hostids=hostid,
                                                         time_from=started, recent=True) if p["r_eventid"] == "0"]
        assert still_open == [], still_open
    finally:
        api.logout()
