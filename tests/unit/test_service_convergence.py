"""lemp_service: a service whose configuration changed is reloaded by the next
successful run, also when the run that wrote the files failed (issue #9).

The decision is a pure function (sample digests, mtimes, start times); the
digest runs over real files in a temporary folder; the state runs with the
execution module loaded as Salt would, real check commands, and systemd's
answers given as samples (no systemd in a unit test)."""

import os
import shlex
import subprocess
import sys
import time

import pytest
from salt.exceptions import CommandExecutionError

from by_path import load  # tests/unit/by_path.py

mod = load("lemp_service_modules", "_modules/lemp_service.py")
state = load("lemp_service_states", "_states/lemp_service.py")

DIGEST_A, DIGEST_B = "a" * 64, "b" * 64
T_WRITE = 1_700_000_100.0  # the newest config change


# -- decide: the rules of the module docstring ---------------------------------------


# (digest on disk, stamp of what it loaded, running, started at) -> decision, a word of its reason
@pytest.mark.parametrize("digest, stamp, running, started, decision, why", [
    pytest.param(DIGEST_A, DIGEST_A, True, T_WRITE - 50, "current", "",
                 id="a service that loaded the files on disk is left alone"),
    # The stamp holds what nginx loaded before the failed run; it has run since.
    pytest.param(DIGEST_B, DIGEST_A, True, T_WRITE - 3600, "apply", "differs",
                 id="a config written by a failed run is applied by the next run"),
    pytest.param(DIGEST_A, None, True, T_WRITE + 2, "record", "",
                 id="a fresh machine whose service started after its config is not bounced"),
    pytest.param(DIGEST_A, None, True, T_WRITE - 2, "apply", "no record",
                 id="without a record a service started before its config is reloaded"),
    pytest.param(DIGEST_B, DIGEST_A, True, T_WRITE + 0.001, "record", "",
                 id="a service restarted after the change is only recorded"),
    pytest.param(DIGEST_B, DIGEST_A, True, T_WRITE, "apply", "",
                 id="a start in the same instant as the write is not trusted"),
    pytest.param(DIGEST_B, DIGEST_A, False, None, "record", "",
                 id="a stopped service is only recorded its start loads the files"),
    pytest.param(DIGEST_B, None, True, None, "apply", "",
                 id="an unknown start time means apply"),
])
def test_the_decision(digest, stamp, running, started, decision, why):
    got, reason = mod.decide(digest, stamp, running, started, T_WRITE)
    assert got == decision
    assert why in reason


def test_action_none_reports_a_pending_restart_instead_of_applying():
    assert mod.decide(DIGEST_B, DIGEST_A, True, T_WRITE - 10, T_WRITE, action="none")[0] == "pending"
    # ... and still records after the orchestration restarted the node.
    assert mod.decide(DIGEST_B, DIGEST_A, True, T_WRITE + 10, T_WRITE, action="none")[0] == "record"


def test_a_stand_in_is_only_recorded_its_replacement_loads_the_files():
    # Debian's first-install MariaDB, started before galera.cnf was written:
    # not a pending restart, the orchestration starts a cluster node instead.
    assert mod.decide(DIGEST_A, None, True, T_WRITE - 10, T_WRITE, action="none", stand_in=True)[0] == "record"
    # ... and a record that is current stays current
    assert mod.decide(DIGEST_A, DIGEST_A, True, T_WRITE - 10, T_WRITE, action="none", stand_in=True)[0] == "current"


def test_settings_the_running_service_already_has_are_only_recorded():
    # Redis answering CONFIG GET with every value of the changed file (the
    # upgrade that moved masterauth into an include): no restart
    assert mod.decide(DIGEST_B, DIGEST_A, True, T_WRITE - 10, T_WRITE, action="restart", applied=True)[0] == "record"
    assert mod.decide(DIGEST_B, DIGEST_A, True, T_WRITE - 10, T_WRITE, action="restart")[0] == "apply"


def test_an_unknown_action_is_refused_naming_it():
    with pytest.raises(CommandExecutionError, match="'bounce' is not one of reload, restart, none"):
        mod.decide(DIGEST_A, None, True, None, None, action="bounce")


# -- systemd's answers -----------------------------------------------------------------


def test_systemctl_show_is_parsed_and_the_monotonic_start_becomes_wall_clock():
    props = mod.parse_systemctl_show("ActiveState=active\nInactiveExitTimestampMonotonic=5000000\n")
    assert props == {"ActiveState": "active", "InactiveExitTimestampMonotonic": "5000000"}
    # started 5 s after boot; now is 105 s after boot at wall clock 1000.
    assert mod.started_at(props, now_real=1000.0, now_mono=105.0) == pytest.approx(900.0)


def test_a_unit_that_never_started_has_no_start_time():
    assert mod.started_at({"InactiveExitTimestampMonotonic": "0"}, 1000.0, 105.0) is None
    assert mod.started_at({}, 1000.0, 105.0) is None


# -- the digest, over real files ---------------------------------------------------------


@pytest.fixture
def etc(tmp_path):
    root = tmp_path / "nginx"
    (root / "sites-enabled").mkdir(parents=True)
    (root / "conf.d").mkdir()
    (root / "nginx.conf").write_text("include conf.d/*.conf;\n")
    (root / "sites-available").mkdir()
    (root / "sites-available" / "app.conf").write_text("server { listen 443; }\n")
    (root / "sites-enabled" / "app.conf").symlink_to(root / "sites-available" / "app.conf")
    return root


def test_the_digest_is_stable_and_follows_content(etc):
    first = mod.config_digest([str(etc)])
    assert first == mod.config_digest([str(etc)])
    assert first["files"] == 3
    (etc / "sites-available" / "app.conf").write_text("server { listen 443; client_max_body_size 1k; }\n")
    assert mod.config_digest([str(etc)])["digest"] != first["digest"]


def test_a_new_or_removed_file_changes_the_digest(etc):
    before = mod.config_digest([str(etc)])["digest"]
    stray = etc / "conf.d" / "zz-broken.conf"
    stray.write_text("this is not nginx;\n")
    with_stray = mod.config_digest([str(etc)])["digest"]
    assert with_stray != before
    stray.unlink()
    assert mod.config_digest([str(etc)])["digest"] == before


def test_an_explicit_file_that_is_absent_counts_and_globs_expand(etc):
    absent = mod.config_digest([str(etc / "sites-enabled" / "default")])
    assert absent["files"] == 0 and absent["newest_mtime"] is None
    globbed = mod.config_digest([str(etc / "sites-*" / "*.conf")])
    assert globbed["files"] == 2


def test_a_symlinked_directory_counts_by_its_target(etc, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    link = etc / "modules-enabled"
    link.symlink_to(tmp_path / "a")
    to_a = mod.config_digest([str(etc)])["digest"]
    assert mod.config_digest([str(link)])["files"] == 0
    link.unlink()
    link.symlink_to(tmp_path / "b")
    assert mod.config_digest([str(etc)])["digest"] != to_a


def test_the_newest_mtime_sees_files_and_removals(etc):
    old = 1_600_000_000
    for path in [etc, *etc.rglob("*")]:
        os.utime(path, (old, old), follow_symlinks=False)
    assert mod.config_digest([str(etc)])["newest_mtime"] == old
    (etc / "conf.d" / "x.conf").write_text("")
    (etc / "conf.d" / "x.conf").unlink()
    # the file is gone, but its directory changed when it went
    assert mod.config_digest([str(etc)])["newest_mtime"] > old


def test_the_stamp_is_private_and_round_trips(tmp_path):
    stamps = tmp_path / "loaded"
    assert mod.read_stamp("nginx", str(stamps)) is None
    path = mod.write_stamp("nginx", DIGEST_A, str(stamps))
    assert mod.read_stamp("nginx", str(stamps)) == DIGEST_A
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(stamps).st_mode & 0o777 == 0o700


def test_a_service_name_with_a_slash_is_refused():
    with pytest.raises(CommandExecutionError, match="not a systemd service name"):
        mod.read_stamp("../etc/passwd")


# -- the state, with the module loaded as Salt does ------------------------------------------


class Machine:
    """What the state sees of a machine: real commands for the checks, and
    systemd as a sample (ActiveState, start time), with every systemctl
    reload/restart recorded."""

    def __init__(self, running=True, started=None):
        # by default: started 10 s ago, before the files the test writes
        self.running, self.started = running, time.time() - 10 if started is None else started
        self.actions = []

    def run_all(self, cmd, python_shell=False, ignore_retcode=True):
        argv = cmd if isinstance(cmd, list) else shlex.split(cmd)
        if argv[:2] == ["systemctl", "show"]:
            mono = int((time.monotonic() - (time.time() - self.started)) * 1e6) if self.started else 0
            state = "active" if self.running else "inactive"
            return {"retcode": 0, "stdout": f"ActiveState={state}\nInactiveExitTimestampMonotonic={mono}",
                    "stderr": ""}
        if argv[0] == "systemctl":
            self.actions.append(argv[1:])
            return {"retcode": 0, "stdout": "", "stderr": ""}
        proc = subprocess.run(argv, capture_output=True, text=True)
        return {"retcode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def _wire(machine, test=False):
    mod.__salt__ = {"cmd.run_all": machine.run_all}
    state.__salt__ = {f"lemp_service.{f}": getattr(mod, f) for f in ("status", "check", "apply", "write_stamp")}
    state.__opts__ = {"test": test}


CHECK_OK = f"{sys.executable} -c pass"
CHECK_FAILS = f"{sys.executable} -c \"import sys; sys.exit('nginx: [emerg] unknown directive \\\"this\\\" in zz-broken.conf')\""


def test_a_failed_check_reloads_nothing_then_the_next_run_reloads_once_and_the_third_does_nothing(etc, tmp_path):
    stamps = str(tmp_path / "loaded")
    machine = Machine()
    _wire(machine)
    mod.write_stamp("nginx", mod.config_digest([str(etc)])["digest"], stamps)
    (etc / "sites-available" / "app.conf").write_text("server { client_max_body_size 1k; }\n")

    failed = state.config_loaded("nginx", [str(etc)], verify_cmd=CHECK_FAILS, stamp_dir=stamps)
    assert failed["result"] is False and failed["changes"] == {}
    assert "zz-broken.conf" in failed["comment"] and "keeps running its previous configuration" in failed["comment"]
    assert machine.actions == []

    fixed = state.config_loaded("nginx", [str(etc)], verify_cmd=CHECK_OK, stamp_dir=stamps)
    assert fixed["result"] is True and "reload" in fixed["changes"], fixed
    assert machine.actions == [["reload", "nginx"]]

    again = state.config_loaded("nginx", [str(etc)], verify_cmd=CHECK_OK, stamp_dir=stamps)
    assert again["result"] is True and again["changes"] == {}, again
    assert machine.actions == [["reload", "nginx"]]


def test_test_mode_says_what_would_happen_and_does_nothing(etc, tmp_path):
    stamps = str(tmp_path / "loaded")
    machine = Machine()
    _wire(machine, test=True)
    ret = state.config_loaded("nginx", [str(etc)], verify_cmd=CHECK_FAILS, stamp_dir=stamps)
    assert ret["result"] is None and "would check and reload" in ret["comment"]
    assert machine.actions == [] and mod.read_stamp("nginx", stamps) is None


def test_a_first_run_on_a_fresh_machine_records_without_reloading(etc, tmp_path):
    stamps = str(tmp_path / "loaded")
    written = time.time() - 60  # a moment ago (systemd's clock starts at boot)
    for path in [etc, *etc.rglob("*")]:
        os.utime(path, (written, written), follow_symlinks=False)
    machine = Machine(started=written + 30)  # started after its files were written
    _wire(machine)
    ret = state.config_loaded("nginx", [str(etc)], verify_cmd=CHECK_OK, stamp_dir=stamps)
    assert ret["result"] is True and "recorded" in ret["comment"], ret
    assert machine.actions == []


def test_galera_only_reports_a_pending_restart_and_how_to_apply_it(etc, tmp_path):
    stamps = str(tmp_path / "loaded")
    machine = Machine()
    _wire(machine)
    ret = state.config_loaded("mariadb", [str(etc)], action="none", stamp_dir=stamps,
                              apply_with="salt-run state.orchestrate orch.galera_rolling_restart")
    assert ret["result"] is True and ret["changes"] == {}
    assert "restart pending" in ret["comment"] and "orch.galera_rolling_restart" in ret["comment"]
    assert machine.actions == [] and mod.read_stamp("mariadb", stamps) is None


def test_a_fresh_galera_node_has_no_restart_pending_and_the_next_run_changes_nothing(etc, tmp_path):
    """orch.site's first run on a fresh db node: Debian's standalone server
    runs, started before Salt wrote /etc/mysql; the orchestration then
    replaces it by a cluster node (nothing written since). The first run
    records, the second finds the record current."""
    stamps = str(tmp_path / "loaded")
    machine = Machine()  # started before the files
    _wire(machine)
    asked = []

    def first_install_server():
        asked.append(True)
        return True

    mod.__salt__["galera.is_first_install_server"] = first_install_server
    kwargs = {"action": "none", "stamp_dir": stamps, "stand_in_fun": "galera.is_first_install_server",
              "apply_with": "salt-run state.orchestrate orch.galera_rolling_restart"}
    first = state.config_loaded("mariadb", [str(etc)], **kwargs)
    assert first["result"] is True and "recorded" in first["comment"], first
    assert "restart pending" not in first["comment"]
    assert first["changes"]["loaded"]["old"] is None
    # the orchestration's bootstrap/join starts the cluster node; then orch.site again
    machine.started = time.time()
    second = state.config_loaded("mariadb", [str(etc)], **kwargs)
    assert second["result"] is True and second["changes"] == {}, second
    assert machine.actions == [] and len(asked) == 1, "asked only while the record differed"


def test_a_cluster_node_that_is_not_a_stand_in_still_reports_its_pending_restart(etc, tmp_path):
    stamps = str(tmp_path / "loaded")
    machine = Machine()
    _wire(machine)
    mod.__salt__["galera.is_first_install_server"] = lambda: False
    ret = state.config_loaded("mariadb", [str(etc)], action="none", stamp_dir=stamps,
                              stand_in_fun="galera.is_first_install_server")
    assert ret["result"] is True and ret["changes"] == {} and "restart pending" in ret["comment"], ret
    assert mod.read_stamp("mariadb", stamps) is None


def test_a_stand_in_function_that_is_not_loaded_is_named(etc, tmp_path):
    _wire(Machine())
    ret = state.config_loaded("mariadb", [str(etc)], action="none", stamp_dir=str(tmp_path / "loaded"),
                              stand_in_fun="galera.no_such_function")
    assert ret["result"] is False and "galera.no_such_function is not a loaded Salt function" in ret["comment"]


# -- confirm_fun: the service says whether the reload loaded the files (HAProxy) ------------


class Master:
    """lemp_haproxy.reload_confirmed as the state sees it: the answer HAProxy's
    master gives, and the moments it was asked about."""

    def __init__(self, *answers):
        self.answers, self.asked = list(answers), []

    def confirmed(self, since, timeout=15, unit="haproxy"):
        self.asked.append((since, timeout, unit))
        return self.answers.pop(0)


LOAD_FAILURE = ("haproxy's master logged:\n[ALERT]    (4100) : [haproxy.main()] Cannot raise FD limit to 20970, "
                "limit is 19999.\n[WARNING]  (4100) : Loading failure!")
CONFIRM = {"confirm_fun": "lemp_haproxy.reload_confirmed", "confirm_kwargs": {"timeout": 15, "unit": "haproxy"}}


def _haproxy(etc, tmp_path, master, test=False):
    stamps = str(tmp_path / "loaded")
    machine = Machine()
    _wire(machine, test=test)
    state.__salt__["lemp_haproxy.reload_confirmed"] = master.confirmed
    mod.write_stamp("haproxy", mod.config_digest([str(etc)])["digest"], stamps)
    (etc / "nginx.conf").write_text("global\n    maxconn 20970\n")  # passes the check, fails at load
    return machine, stamps


def test_a_reload_the_master_failed_to_load_fails_records_nothing_and_is_retried(etc, tmp_path):
    master = Master({"loaded": False, "why": LOAD_FAILURE},
                    {"loaded": True, "why": "haproxy's master logged \"Loading success.\""})
    machine, stamps = _haproxy(etc, tmp_path, master)
    before = mod.read_stamp("haproxy", stamps)

    failed = state.config_loaded("haproxy", [str(etc)], verify_cmd=CHECK_OK, stamp_dir=stamps, **CONFIRM)
    assert failed["result"] is False, failed
    assert "Cannot raise FD limit to 20970, limit is 19999" in failed["comment"]
    assert "keeps running its previous configuration" in failed["comment"]
    assert "next run tries again" in failed["comment"]
    assert mod.read_stamp("haproxy", stamps) == before, "the new digest is not recorded"
    assert master.asked[0][1:] == (15, "haproxy")
    assert time.time() - 5 < master.asked[0][0] <= time.time(), "asked about the moment the reload began"

    # the cause fixed (the limit raised): the next run reloads again, and records
    retried = state.config_loaded("haproxy", [str(etc)], verify_cmd=CHECK_OK, stamp_dir=stamps, **CONFIRM)
    assert retried["result"] is True and "reload" in retried["changes"], retried
    assert "reloaded" in retried["comment"] and "Loading success." in retried["comment"]
    assert mod.read_stamp("haproxy", stamps) == mod.config_digest([str(etc)])["digest"]
    assert machine.actions == [["reload", "haproxy"], ["reload", "haproxy"]]


def test_no_answer_from_the_master_is_not_a_reload(etc, tmp_path):
    # reload_confirmed's timeout: neither verdict in the journal
    master = Master({"loaded": False, "why": "haproxy's master logged neither ... within 15 s"})
    _, stamps = _haproxy(etc, tmp_path, master)
    before = mod.read_stamp("haproxy", stamps)
    ret = state.config_loaded("haproxy", [str(etc)], verify_cmd=CHECK_OK, stamp_dir=stamps, **CONFIRM)
    assert ret["result"] is False and "within 15 s" in ret["comment"], ret
    assert mod.read_stamp("haproxy", stamps) == before


def test_a_failed_check_asks_no_confirmation_and_test_mode_neither(etc, tmp_path):
    master = Master()
    machine, stamps = _haproxy(etc, tmp_path, master)
    failed = state.config_loaded("haproxy", [str(etc)], verify_cmd=CHECK_FAILS, stamp_dir=stamps, **CONFIRM)
    assert failed["result"] is False and "keeps running its previous configuration" in failed["comment"]
    state.__opts__ = {"test": True}
    would = state.config_loaded("haproxy", [str(etc)], verify_cmd=CHECK_OK, stamp_dir=stamps, **CONFIRM)
    assert would["result"] is None and "would check and reload" in would["comment"], would
    assert master.asked == [] and machine.actions == []


def test_a_confirmation_function_that_is_not_loaded_stops_before_the_reload(etc, tmp_path):
    machine, stamps = _haproxy(etc, tmp_path, Master())
    ret = state.config_loaded("haproxy", [str(etc)], verify_cmd=CHECK_OK, stamp_dir=stamps,
                              confirm_fun="lemp_haproxy.no_such_function")
    assert ret["result"] is False and "lemp_haproxy.no_such_function is not a loaded Salt function" in ret["comment"]
    assert machine.actions == []
