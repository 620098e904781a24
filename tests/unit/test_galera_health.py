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
