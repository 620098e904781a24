"""lemp_haproxy.reload_confirmed: a reload counts only when HAProxy's master
says it loaded the new configuration (Debian's haproxy 2.6, master-worker:
``systemctl reload`` returns before the master has read the files, and a
failure at load time keeps the old worker and its configuration serving).

The journal text is the input here (as ``journalctl -u haproxy -o
short-unix`` prints it, the master's lines as src/haproxy.c writes them),
given through the ``cmd.run_all`` boundary; the answer is what the state
shows."""

import pytest
from salt.exceptions import CommandExecutionError

from by_path import load  # tests/unit/by_path.py

SINCE = 1_700_000_100.250000  # the moment systemctl reload began

# an earlier reload in the same second, before SINCE: not this one's verdict
BEFORE = """\
1700000100.100000 lb1 haproxy[4100]: [WARNING]  (4100) : Loading failure!
"""
RELOADING = """\
1700000100.300000 lb1 systemd[1]: Reloading haproxy.service - HAProxy Load Balancer...
1700000100.350000 lb1 systemd[1]: Reloaded haproxy.service - HAProxy Load Balancer.
1700000100.360000 lb1 haproxy[4100]: [WARNING]  (4100) : Reexecuting Master process
"""
SUCCESS = """\
1700000100.600000 lb1 haproxy[4100]: [NOTICE]   (4100) : New worker (4321) forked
1700000100.610000 lb1 haproxy[4100]: [NOTICE]   (4100) : Loading success.
"""
FAILURE = """\
1700000100.500000 lb1 haproxy[4100]: [NOTICE]   (4100) : haproxy version is 2.6.12-1+deb12u1
1700000100.510000 lb1 haproxy[4100]: [ALERT]    (4100) : [haproxy.main()] Cannot raise FD limit to 20970, limit is 19999.
1700000100.520000 lb1 haproxy[4100]: [WARNING]  (4100) : Loading failure!
"""


class Journal:
    """journalctl as the minion runs it: each call returns the next text
    (the journal as it grows while the master reloads), the last one stays."""

    def __init__(self, *texts, retcode=0, stderr=""):
        self.texts, self.retcode, self.stderr = list(texts), retcode, stderr
        self.calls = []

    def run_all(self, cmd, python_shell=False, ignore_retcode=True):
        self.calls.append(cmd)
        text = self.texts.pop(0) if len(self.texts) > 1 else self.texts[0]
        return {"retcode": self.retcode, "stdout": text, "stderr": self.stderr}


def confirm(journal, **kwargs):
    mod = load("lemp_haproxy_reload", "_modules/lemp_haproxy.py")
    mod.__salt__ = {"cmd.run_all": journal.run_all}
    kwargs.setdefault("interval", 0.01)
    return mod.reload_confirmed(SINCE, **kwargs)


def test_a_reload_the_master_loaded_is_confirmed_once_its_verdict_appears():
    journal = Journal(BEFORE + RELOADING, BEFORE + RELOADING + SUCCESS)
    ret = confirm(journal, timeout=5)
    assert ret == {"loaded": True, "why": 'haproxy\'s master logged "Loading success."'}
    assert len(journal.calls) == 2, "it waited for the verdict, and stopped there"
    assert journal.calls[0] == ["journalctl", "-u", "haproxy", "--since", "@1700000100", "-o", "short-unix",
                                "--no-pager", "-q"]


def test_a_load_failure_is_not_confirmed_and_says_what_the_master_logged():
    ret = confirm(Journal(BEFORE + RELOADING + FAILURE), timeout=5)
    assert ret["loaded"] is False
    assert "[ALERT]    (4100) : [haproxy.main()] Cannot raise FD limit to 20970, limit is 19999." in ret["why"]
    assert ret["why"].rstrip().endswith("Loading failure!")
    # the systemd lines say the reload "succeeded"; the earlier failure is not this reload's
    assert "Reloaded haproxy.service" in ret["why"] and "1700000100.100000" not in ret["why"]


def test_no_verdict_within_the_timeout_is_not_confirmed():
    journal = Journal(BEFORE + RELOADING)
    ret = confirm(journal, timeout=0.05)
    assert ret["loaded"] is False
    assert 'logged neither "Loading success." nor "Loading failure!" within 0.05 s' in ret["why"]
    assert "not known to run the new configuration" in ret["why"]
    assert len(journal.calls) >= 2, "it looked again before giving up"


def test_a_restart_is_confirmed_by_the_new_masters_verdict():
    started = """\
1700000101.000000 lb1 systemd[1]: Starting haproxy.service - HAProxy Load Balancer...
1700000101.200000 lb1 haproxy[5000]: [NOTICE]   (5000) : New worker (5002) forked
1700000101.210000 lb1 haproxy[5000]: [NOTICE]   (5000) : Loading success.
1700000101.220000 lb1 systemd[1]: Started haproxy.service - HAProxy Load Balancer.
"""
    assert confirm(Journal(BEFORE + started), timeout=1, unit="haproxy")["loaded"] is True


def test_an_unreadable_journal_is_an_error_naming_the_unit():
    with pytest.raises(CommandExecutionError, match="journalctl -u haproxy failed: Failed to open journal"):
        confirm(Journal("", retcode=1, stderr="Failed to open journal"), timeout=1)


def test_the_verdict_is_the_first_after_the_action_and_lines_before_it_are_ignored():
    mod = load("lemp_haproxy_verdict", "_modules/lemp_haproxy.py")
    assert mod.reload_verdict(BEFORE, SINCE) is None
    assert mod.reload_verdict("-- No entries --\n", SINCE) is None
    assert mod.reload_verdict(BEFORE + FAILURE + SUCCESS, SINCE)["loaded"] is False
