"""Watching the watcher (issue #10 item 9): the watchdog's state machine,
its probe against a real Zabbix-protocol server on loopback, its mails, and
what Salt computes for it (_modules/lemp_zabbix_watchdog.py)."""

import json
import pathlib
import socket
import socketserver
import threading

import pytest
import yaml

import lemp_zabbix_watchdog as lzw  # tests/conftest.py puts _modules on the path
from by_path import load  # tests/unit/by_path.py

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "salt" / "zabbix" / "watchdog" / "files" / "lemp-zabbix-watchdog.py"
DEFAULTS = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]

wd = load("lemp_zabbix_watchdog_script", SCRIPT)

STATS = {"response": "success", "data": {"uptime": 1234, "hosts": 9, "items": 900,
                                         "wcache": {"history": {"pfree": 99.5}}}}


# -- the state machine ---------------------------------------------------------------

def walk(results, threshold=3):
    """Feed a series of check results; the mails sent, in order."""
    state, mails = None, []
    for i, healthy in enumerate(results):
        state, mail = wd.step(state, healthy, f"check {i}", threshold, now=1000 + 20 * i)
        if mail:
            mails.append((i, mail))
    return state, mails


def test_three_failures_in_a_row_send_one_problem_mail_and_one_recovery():
    state, mails = walk([True, False, False, False, False, False, True, True])
    assert mails == [(3, wd.PROBLEM), (6, wd.RECOVERY)]
    assert state["status"] == wd.OK


def test_a_blip_shorter_than_the_threshold_sends_nothing():
    state, mails = walk([False, False, True, False, False, True])
    assert mails == []
    assert state == {"status": wd.OK, "failures": 0, "since": None, "reason": "check 5"}


def test_the_problem_mail_says_since_when_it_fails():
    state = None
    for i in range(3):
        state, mail = wd.step(state, False, "refused", 3, now=100 + 20 * i)
    assert mail == wd.PROBLEM and state["since"] == 100 and state["failures"] == 3


def test_a_mail_that_could_not_be_sent_is_sent_by_the_next_run():
    previous = {"status": wd.FAILING, "failures": 2, "since": 100, "reason": "x"}
    proposed, mail = wd.step(previous, False, "refused", 3, now=160)
    assert mail == wd.PROBLEM
    kept = wd.unsent(previous, proposed, mail)
    again, mail = wd.step(kept, False, "refused", 3, now=180)
    assert mail == wd.PROBLEM and again["since"] == 100
    # a recovery mail that failed: still alerted, so the next pass mails it
    alerted = {"status": wd.ALERTED, "failures": 5, "since": 100, "reason": "x"}
    proposed, mail = wd.step(alerted, True, "up", 3, now=200)
    assert mail == wd.RECOVERY
    assert wd.step(wd.unsent(alerted, proposed, mail), True, "up", 3, now=220)[1] == wd.RECOVERY


# -- the probe, against a real server on loopback -------------------------------------

class FakeTrapper(socketserver.BaseRequestHandler):
    answer = STATS

    def handle(self):
        head = self.request.recv(13)
        length = int.from_bytes(head[5:9], "little")
        body = b""
        while len(body) < length:
            body += self.request.recv(length - len(body))
        self.server.requests.append(json.loads(body))
        self.request.sendall(wd.frame(self.server.answer))


@pytest.fixture
def trapper():
    server = socketserver.TCPServer(("127.0.0.1", 0), FakeTrapper)
    server.requests, server.answer = [], STATS
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def target(port):
    return {"name": "mon1", "address": "127.0.0.1", "port": port}


def test_a_server_that_answers_its_statistics_is_healthy(trapper):
    healthy, reason = wd.probe(target(trapper.server_address[1]), 2, 10)
    assert healthy, reason
    assert trapper.requests == [{"request": "zabbix.stats"}]
    assert "up 1234 s" in reason and "9 hosts" in reason


def test_a_server_that_refuses_the_watchdog_names_stats_allowed_ip(trapper):
    trapper.answer = {"response": "failed", "info": "Permission denied."}
    healthy, reason = wd.probe(target(trapper.server_address[1]), 2, 10)
    assert not healthy and "StatsAllowedIP" in reason


def test_a_full_history_cache_means_the_server_no_longer_writes():
    full = {"response": "success", "data": {"uptime": 5, "wcache": {"history": {"pfree": 2.0}}}}
    healthy, reason = wd.assess(full, 10)
    assert not healthy and "98% full" in reason


def test_a_closed_port_means_the_host_is_up_but_the_server_is_not_listening():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    healthy, reason = wd.probe(target(port), 2, 10)
    assert not healthy and "connection refused" in reason


def test_frames_round_trip_and_garbage_is_refused():
    assert wd.unframe(wd.frame({"a": 1})) == {"a": 1}
    with pytest.raises(ValueError):
        wd.unframe(b"HTTP/1.1 400 Bad Request\r\n\r\n")


# -- one run: states kept on disk, one mail per transition ------------------------------

def test_runs_walk_the_state_on_disk_and_mail_each_transition_once(tmp_path):
    config = {"targets": [target(10051)], "interval": 20, "threshold": 3, "timeout": 1, "min_history_free": 10,
              "mail_to": ["alerts@localhost"], "mail_from": "zabbix-watchdog@localhost",
              "state_file": str(tmp_path / "state.json")}
    sent = []
    results = iter([False] * 5 + [True] * 2)

    def probe(t, timeout, min_free):
        return (next(results), "mon1 (127.0.0.1:10051): connection refused")

    for i in range(7):
        wd.run(config, probe_fn=probe, send_fn=lambda msg, cfg: sent.append(msg), now=1000 + 20 * i)
    assert [m["Subject"].split(":")[0] for m in sent] == ["PROBLEM", "RESOLVED"]
    assert "mon1" in sent[0]["Subject"] and sent[0]["To"] == "alerts@localhost"
    assert "failed 3 checks in a row" in sent[0].get_content()
    assert json.loads((tmp_path / "state.json").read_text())["mon1"]["status"] == wd.OK


def test_a_failed_send_is_logged_and_retried(tmp_path):
    config = {"targets": [target(10051)], "interval": 20, "threshold": 1, "timeout": 1, "min_history_free": 10,
              "mail_to": ["alerts@localhost"], "mail_from": "w@localhost", "state_file": str(tmp_path / "s.json")}

    def refuse(msg, cfg):
        raise ConnectionRefusedError("no MTA")

    _, lines = wd.run(config, probe_fn=lambda *a: (False, "down"), send_fn=refuse, now=1)
    assert any("could not send the problem mail" in line for line in lines)
    sent = []
    wd.run(config, probe_fn=lambda *a: (False, "down"), send_fn=lambda m, c: sent.append(m), now=21)
    assert len(sent) == 1


# -- what Salt computes -------------------------------------------------------------------

def test_the_watchdog_checks_every_monitor_on_its_trapper_port(topology):
    config = lzw.watchdog_config(topology, DEFAULTS["watchdog"], DEFAULTS["server"]["settings"]["ListenPort"])
    monitors = topology["roles"]["monitor"]["members"]
    assert config["targets"] == [{"name": m["name"], "address": m["address"], "port": 10051} for m in monitors]
    # the promise: an e-mail within 2 minutes
    assert config["interval"] * config["threshold"] + config["timeout"] <= 120


def test_the_labs_faster_watchdog_is_valid_and_reaches_the_master(topology):
    # pillar/watchdog.sls (plain YAML) shortens the interval for the lab's test
    lab = yaml.safe_load((REPO / "pillar" / "watchdog.sls").read_text())["zabbix"]["lookup"]["watchdog"]
    config = lzw.watchdog_config(topology, dict(DEFAULTS["watchdog"], **lab),
                                 DEFAULTS["server"]["settings"]["ListenPort"])
    assert config["interval"] == 10 and config["threshold"] == DEFAULTS["watchdog"]["threshold"]
    roles = yaml.safe_load((REPO / "pillar" / "roles.yaml").read_text())
    assert "watchdog" in roles[DEFAULTS["watchdog"]["role"]]["pillars"]


def test_the_server_lets_the_watchdog_read_its_statistics(topology):
    settings = lzw.server_settings(DEFAULTS["server"]["settings"], topology, DEFAULTS["watchdog"]["role"])
    masters = [m["address"] for m in topology["roles"]["master"]["members"]]
    assert settings["StatsAllowedIP"].split(",") == ["127.0.0.1"] + masters
    # applied twice, nothing more
    assert lzw.server_settings(settings, topology, "master") == settings
    assert DEFAULTS["server"]["settings"]["StatsAllowedIP"] == "127.0.0.1"  # the input is not changed


@pytest.mark.parametrize("change, message", [
    ({"interval": 50, "threshold": 3}, "exceeds the 2 minutes"),
    ({"interval": 5}, "interval is 5"),
    ({"mail_to": ["alerts"]}, "is not an address"),
    ({"mail_to": []}, "no recipient"),
    ({"targets_role": "nosuchrole"}, "no machine has role 'nosuchrole'"),
])
def test_bad_watchdog_settings_name_the_pillar_key(topology, change, message):
    settings = dict(DEFAULTS["watchdog"], **change)
    with pytest.raises(lzw.WatchdogSettingsError, match="zabbix:lookup:watchdog") as err:
        lzw.watchdog_config(topology, settings, 10051)
    assert message in str(err.value)
