"""galera-health's answer (salt/galera/files/galera-health.py): what makes a
node fit to be the writer behind HAProxy."""


import pytest

from by_path import load  # tests/unit/by_path.py

health = load("galera_health", "salt/galera/files/galera-health.py")

SYNCED = {"wsrep_on": "ON", "wsrep_cluster_status": "Primary", "wsrep_local_state": "4", "wsrep_ready": "ON",
          "read_only": "OFF", "wsrep_desync": "OFF"}


def test_a_synced_node_is_healthy():
    assert health.evaluate(SYNCED) == (True, "synced")


def test_mariabackup_s_moment_of_donor_desynced_keeps_the_writer_healthy():
    # measured in the lab: local_state 2 for about 0.2 s of a backup, wsrep_desync stays OFF
    assert health.evaluate(dict(SYNCED, wsrep_local_state="2")) == (True, "donor/desynced by mariabackup, serving")


@pytest.mark.parametrize("name, value", [
    ("wsrep_desync", "ON"),           # desynced on purpose: the backup of a non-writer
    ("wsrep_local_state", "1"),       # joining
    ("wsrep_local_state", "3"),       # joined, catching up
    ("wsrep_cluster_status", "non-Primary"),
    ("wsrep_ready", "OFF"),
    ("read_only", "ON"),
    ("wsrep_on", "OFF"),
])
def test_anything_else_is_refused_naming_the_variable(name, value):
    healthy, reason = health.evaluate(dict(SYNCED, **{name: value}))
    assert not healthy and reason.startswith(f"{name} is {value!r}")


def test_an_answer_is_reused_for_a_quarter_of_a_second_then_asked_again(monkeypatch):
    # many checkers (two LBs, every 500 ms) share one query; a change reaches them within 0.25 s
    clock = [100.0]
    monkeypatch.setattr(health.time, "monotonic", lambda: clock[0])
    checker = health.Checker("/usr/bin/mariadb", 3)
    answers = iter([(True, "synced"), (False, "wsrep_ready is 'OFF', needs 'ON'")])
    asked = []
    monkeypatch.setattr(checker, "_query", lambda: asked.append(clock[0]) or next(answers))
    assert checker.check() == (True, "synced")
    clock[0] += 0.2
    assert checker.check() == (True, "synced") and len(asked) == 1
    clock[0] += 0.1
    assert checker.check()[0] is False and len(asked) == 2


def test_the_cache_length_comes_from_the_command_line(monkeypatch):
    seen = {}

    class Server:
        def __init__(self, address, handler):
            seen["address"] = address
            self.daemon_threads = False

        def serve_forever(self):
            pass

    monkeypatch.setattr(health.http.server, "ThreadingHTTPServer", Server)
    monkeypatch.setattr(health, "Checker", lambda client, timeout, cache: seen.update(cache=cache, timeout=timeout))
    health.main(["--bind", "127.0.0.1", "--cache-seconds", "0.5", "--timeout", "2"])
    assert seen == {"address": ("127.0.0.1", 9200), "cache": 0.5, "timeout": 2.0}
