"""Watching the watcher (issue #10 item 9), on the lab: stop zabbix-server on
mon1 and the watchdog on the Salt master mails its own local mailbox within
the promised window; start it and the recovery mail follows.

Only lxc-attach (no network from the host). zabbix-server is started again
in `finally`, and the test waits for the watchdog to see it back, so the
next test starts with a quiet watchdog.
"""

import pathlib
import re

import pytest
import yaml

from lemplab import wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]
WATCHDOG = yaml.safe_load((REPO / "salt" / "zabbix" / "defaults.yaml").read_text())["zabbix"]["watchdog"]
MAILBOX = "/var/mail/" + WATCHDOG["mail"]["mailbox"]
# The promise: an e-mail within 2 minutes of the stop. The settings
# keep interval * threshold + timeout below it (lemp_zabbix_watchdog).
WINDOW = 120


@pytest.fixture(scope="module")
def watcher(lab):
    role = WATCHDOG["role"]
    names = lab.with_role(role)
    assert names, f"the topology has no machine with role {role} (zabbix:lookup:watchdog:role)"
    return names[0]


@pytest.fixture(scope="module")
def mon1(lab):
    return lab.with_role(WATCHDOG["targets_role"])[0]


def mails(lab, machine):
    out = lab.run(machine, f"cat {MAILBOX} 2>/dev/null || true").stdout
    return [m for m in re.split(r"(?m)^From ", out) if m.strip()]


def watchdog_status(lab, watcher, mon1):
    out = lab.run(watcher, f"cat {WATCHDOG['state_file']} 2>/dev/null || echo '{{}}'").stdout
    return (yaml.safe_load(out) or {}).get(mon1, {}).get("status")


def test_the_watchdog_timer_runs_and_finds_the_server_healthy(lab, watcher, mon1):
    assert lab.run(watcher, f"systemctl is-active {WATCHDOG['unit']}.timer", check=False).stdout.strip() == "active"
    wait_for(lambda: watchdog_status(lab, watcher, mon1) == "ok", 3 * WATCHDOG["interval"],
             f"the watchdog on {watcher} to find zabbix-server on {mon1} healthy", interval=2)


def test_stopping_zabbix_server_mails_the_watchdog_mailbox_then_the_recovery(lab, watcher, mon1):
    wait_for(lambda: watchdog_status(lab, watcher, mon1) == "ok", 3 * WATCHDOG["interval"],
             f"a quiet watchdog on {watcher} before the stop", interval=2)
    before = len(mails(lab, watcher))
    lab.run(mon1, "systemctl stop zabbix-server")
    try:
        problem = wait_for(
            lambda: [m for m in mails(lab, watcher)[before:] if "PROBLEM" in m and mon1 in m], WINDOW,
            f"the watchdog's problem mail about {mon1} in {watcher}:{MAILBOX}", interval=2)
        assert "connection refused" in problem[0], problem[0]
    finally:
        lab.run(mon1, "systemctl start zabbix-server")
    after = len(mails(lab, watcher))
    wait_for(lambda: any("RESOLVED" in m and mon1 in m for m in mails(lab, watcher)[after:]), WINDOW,
             f"the watchdog's recovery mail about {mon1} in {watcher}:{MAILBOX}", interval=2)
    # one mail per transition: no second problem mail while it was down
    sent = mails(lab, watcher)[before:]
    assert sum("PROBLEM" in m for m in sent) == 1, sent
    assert sum("RESOLVED" in m for m in sent) == 1, sent
    assert lab.run(mon1, "systemctl is-active zabbix-server", check=False).stdout.strip() == "active"
