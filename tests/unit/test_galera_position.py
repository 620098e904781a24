"""_modules/galera.py: reading positions and choosing the bootstrap node.

The choice decides which data survives a full outage, so every refusal case
is here: unreadable or missing state, different clusters, unknown seqno."""

import pathlib
import shutil

import pytest

import galera
from galera import UnsafeBootstrap, choose_bootstrap_node

DATA = pathlib.Path(__file__).resolve().parent / "data" / "grastate"
UUID = "6f8c2a1e-8d3b-11ee-9a51-2b1d8c4f0a11"
OTHER = "9a1b2c3d-0000-11ee-8000-aabbccddeeff"


def grastate(name):
    return galera.read_grastate(DATA / name)


class FakeSalt(dict):
    """__salt__ with cmd.run_all answering systemctl and the recovery run."""

    def __init__(self, service="inactive", recovery_output=""):
        super().__init__()
        self.service = service
        self.recovery_output = recovery_output
        self.commands = []
        self["cmd.run_all"] = self.run_all

    def run_all(self, cmd, **kwargs):
        self.commands.append(cmd)
        if cmd[:2] == ["systemctl", "is-active"]:
            return {"retcode": 0 if self.service == "active" else 3, "stdout": self.service, "stderr": ""}
        if "galera_recovery" in cmd[0] or "--wsrep-recover" in cmd:
            return {"retcode": 0, "stdout": "", "stderr": self.recovery_output}
        if cmd[0] == "mariadb":
            return {"retcode": 1, "stdout": "", "stderr": "Can't connect to local server"}
        raise AssertionError(f"unexpected command {cmd}")


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A data directory holding one of the sample grastate.dat files."""

    def make(sample=None, **fake):
        if sample:
            shutil.copy(DATA / sample, tmp_path / "grastate.dat")
        salt = FakeSalt(**fake)
        monkeypatch.setattr(galera, "DATADIR", str(tmp_path), raising=False)
        monkeypatch.setattr(galera, "__salt__", salt, raising=False)
        return salt

    return make


# -- parsing ----------------------------------------------------------------


def test_clean_shutdown_file_is_parsed():
    assert grastate("clean-shutdown-last.dat") == {"uuid": UUID, "seqno": 1234, "safe_to_bootstrap": 1}
    assert grastate("crashed.dat") == {"uuid": UUID, "seqno": -1, "safe_to_bootstrap": 0}


def test_corrupt_file_is_refused():
    with pytest.raises(ValueError, match="no valid uuid"):
        grastate("corrupt.dat")


@pytest.mark.parametrize("sample", ["recovery-mariadbd.log", "recovery-galera_recovery.out"])
def test_recovered_position_is_found_in_server_output(sample):
    text = (DATA / sample).read_text()
    assert galera.parse_recovered_position(text) == (UUID, 1241)


def test_no_recovered_position_gives_none():
    assert galera.parse_recovered_position("WSREP: skipping position recovery") is None


# -- position() on a node ------------------------------------------------------


def test_position_of_a_cleanly_stopped_node_needs_no_recovery(node):
    salt = node("clean-shutdown-last.dat")
    pos = galera.position()
    assert pos == {"uuid": UUID, "seqno": 1234, "safe_to_bootstrap": 1, "source": "grastate"}
    assert not [c for c in salt.commands if "--wsrep-recover" in c or "galera_recovery" in c[0]]


def test_position_of_a_crashed_node_is_recovered(node):
    node("crashed.dat", recovery_output=(DATA / "recovery-mariadbd.log").read_text())
    pos = galera.position()
    assert pos == {"uuid": UUID, "seqno": 1241, "safe_to_bootstrap": 0, "source": "wsrep-recover"}


def test_position_when_recovery_finds_nothing_is_an_error(node):
    node("crashed.dat", recovery_output="[ERROR] Aborting")
    pos = galera.position()
    assert "wsrep recovery gave no position" in pos["error"]


def test_position_when_grastate_is_missing_or_unreadable(node):
    node(None)
    assert "does not exist" in galera.position()["error"]
    node("corrupt.dat")
    assert "cannot read" in galera.position()["error"]


# -- choose_bootstrap_node ---------------------------------------------------------


def pos(name, **override):
    p = dict(grastate(name), source="grastate")
    p.update(override)
    return p


def test_the_node_marked_safe_to_bootstrap_wins():
    positions = {"db1": pos("clean-shutdown-earlier.dat"), "db2": pos("clean-shutdown-last.dat")}
    assert choose_bootstrap_node(positions) == "db2"


def test_after_a_crash_the_highest_recovered_seqno_wins():
    positions = {
        "db1": pos("crashed.dat", seqno=1241, source="wsrep-recover"),
        "db2": pos("crashed.dat", seqno=1239, source="wsrep-recover"),
    }
    assert choose_bootstrap_node(positions) == "db1"


def test_mixed_clean_and_crashed_takes_the_highest():
    positions = {
        "db1": pos("clean-shutdown-earlier.dat"),  # 1230, stopped first
        "db2": pos("crashed.dat", seqno=1241, source="wsrep-recover"),
    }
    assert choose_bootstrap_node(positions) == "db2"


def test_ties_are_broken_by_name_every_time():
    positions = {
        "db3": pos("crashed.dat", seqno=7),
        "db1": pos("crashed.dat", seqno=7),
        "db2": pos("crashed.dat", seqno=5),
    }
    assert choose_bootstrap_node(positions) == "db1"
    assert choose_bootstrap_node(dict(reversed(list(positions.items())))) == "db1"


def test_an_empty_node_is_skipped_not_chosen():
    positions = {"db1": pos("empty-node.dat"), "db2": pos("clean-shutdown-earlier.dat")}
    assert choose_bootstrap_node(positions) == "db2"


@pytest.mark.parametrize("positions, message", [
    ({"db1": pos("clean-shutdown-last.dat"), "db2": {"error": "cannot read grastate.dat"}},
     "db2: cannot read grastate.dat"),
    ({"db1": pos("clean-shutdown-last.dat"), "db2": "Minion did not return"},
     "db2: no usable answer"),
    ({"db1": pos("clean-shutdown-last.dat"), "db2": None}, "db2: no usable answer"),
    ({"db1": pos("clean-shutdown-last.dat"), "db2": pos("other-cluster.dat")},
     "different clusters"),
    ({"db1": pos("crashed.dat"), "db2": pos("clean-shutdown-earlier.dat")},
     "db1: seqno is -1"),
    ({"db1": pos("empty-node.dat"), "db2": pos("empty-node.dat")}, "fresh cluster"),
    ({"db1": pos("clean-shutdown-last.dat"), "db2": pos("crashed.dat", seqno=2000)},
     "db1 is marked safe_to_bootstrap with seqno 1234 but db2 has seqno 2000"),
    ({"db1": pos("clean-shutdown-last.dat"), "db2": dict(pos("crashed.dat"), running=True)},
     "db2: mariadb is still running"),
    ({}, "no node positions"),
], ids=["unreadable", "no-answer", "none", "different-uuids", "unknown-seqno", "all-empty",
        "safe-flag-contradicted", "still-running", "nothing"])
def test_unsafe_situations_are_refused_with_the_reason(positions, message):
    with pytest.raises(UnsafeBootstrap, match=message):
        choose_bootstrap_node(positions)


def test_choose_wraps_refusals_as_command_errors():
    with pytest.raises(galera.CommandExecutionError, match="different clusters"):
        galera.choose({"db1": pos("clean-shutdown-last.dat"), "db2": pos("other-cluster.dat")})


# -- mark_safe_to_bootstrap ----------------------------------------------------------


def test_mark_safe_to_bootstrap_rewrites_only_that_line(node, tmp_path):
    node("crashed.dat")
    assert galera.mark_safe_to_bootstrap()["changed"] is True
    text = (tmp_path / "grastate.dat").read_text()
    assert "safe_to_bootstrap: 1" in text and "seqno:   -1" in text and UUID in text
    assert galera.mark_safe_to_bootstrap()["changed"] is False  # already marked


def test_mark_safe_to_bootstrap_refuses_while_running(node):
    node("crashed.dat", service="active")
    with pytest.raises(galera.CommandExecutionError, match="running"):
        galera.mark_safe_to_bootstrap()


# -- accounts ----------------------------------------------------------------------


def test_native_password_hash_matches_the_server():
    # SELECT PASSWORD('password') on MariaDB
    assert galera.mysql_native_hash("password") == "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"


def test_grants_are_parsed_without_quotes_and_usage():
    grants = galera.parse_grants([
        "GRANT USAGE ON *.* TO `app`@`10.77.0.%` IDENTIFIED BY PASSWORD '*ABC'",
        "GRANT SELECT, INSERT, UPDATE ON `app`.* TO `app`@`10.77.0.%`",
    ])
    assert grants == {"*.*": set(), "app.*": {"SELECT", "INSERT", "UPDATE"}}


def test_user_ensure_is_idempotent_and_least_privilege(monkeypatch):
    executed = []
    state = {"grants": ["GRANT USAGE ON *.* TO `app`@`10.77.0.%`",
                        "GRANT SELECT, INSERT, DROP ON `app`.* TO `app`@`10.77.0.%`",
                        "GRANT SELECT ON `other`.* TO `app`@`10.77.0.%`"]}

    def fake_query(sql, timeout=30):
        if sql.startswith("SELECT plugin"):
            return [["mysql_native_password", galera.mysql_native_hash("pw")]]
        if sql.startswith("SHOW CREATE USER"):
            return [[f"CREATE USER `app`@`10.77.0.%` IDENTIFIED BY PASSWORD '{galera.mysql_native_hash('pw')}'"]]
        if sql.startswith("SHOW GRANTS"):
            return [[g] for g in state["grants"]]
        executed.append(sql)
        return []

    monkeypatch.setattr(galera, "query", fake_query)
    changes = galera.user_ensure("app", "10.77.0.%", password="pw", grants={"app.*": ["SELECT", "INSERT"]})
    sql = executed[0]
    # only what goes is revoked: SELECT and INSERT are never lost for a moment
    assert "REVOKE DROP ON `app`.* FROM 'app'@'10.77.0.%'" in sql
    assert "GRANT" not in sql and "REVOKE ALL" not in sql
    assert "REVOKE SELECT ON `other`.* FROM 'app'@'10.77.0.%'" in sql
    assert "ALTER USER" not in sql and "pw" not in sql.replace("'app'", "")
    assert len(changes) == 2
    executed.clear()
    state["grants"] = ["GRANT USAGE ON *.* TO `app`@`10.77.0.%`",
                       "GRANT SELECT, INSERT ON `app`.* TO `app`@`10.77.0.%`"]
    assert galera.user_ensure("app", "10.77.0.%", password="pw", grants={"app.*": ["SELECT", "INSERT"]}) == []
    assert executed == []


def fake_account(monkeypatch, ssl_type="", grants=None):
    """An existing account app@10.77.0.% (password "pw") on a fake server;
    returns the list of statements the module runs."""
    executed = []

    def fake_query(sql, timeout=30):
        if sql.startswith("SELECT plugin"):
            return [["mysql_native_password", galera.mysql_native_hash("pw"), ssl_type]]
        if sql.startswith("SHOW CREATE USER"):
            return [[f"CREATE USER `app`@`10.77.0.%` IDENTIFIED BY PASSWORD '{galera.mysql_native_hash('pw')}'"]]
        if sql.startswith("SHOW GRANTS"):
            return [[g] for g in (grants or ["GRANT USAGE ON *.* TO `app`@`10.77.0.%`"])]
        executed.append(sql)
        return []

    monkeypatch.setattr(galera, "query", fake_query)
    return executed


def test_require_ssl_is_set_once_and_left_alone_when_not_managed(monkeypatch):
    executed = fake_account(monkeypatch, ssl_type="")
    assert galera.user_ensure("app", "10.77.0.%", password="pw", require_ssl=True) == ["REQUIRE SSL"]
    assert executed == ["ALTER USER 'app'@'10.77.0.%' REQUIRE SSL;"]
    executed = fake_account(monkeypatch, ssl_type="ANY")
    assert galera.user_ensure("app", "10.77.0.%", password="pw", require_ssl=True) == []
    # None: the account keeps REQUIRE SSL (orch.site set it; a highstate does not undo it)
    assert galera.user_ensure("app", "10.77.0.%", password="pw") == []
    assert galera.user_ensure("app", "10.77.0.%", password="pw", require_ssl=False) == ["REQUIRE NONE"]
    assert executed == ["ALTER USER 'app'@'10.77.0.%' REQUIRE NONE;"]


def test_require_ssl_in_test_mode_runs_nothing(monkeypatch):
    executed = fake_account(monkeypatch, ssl_type="")
    assert galera.user_ensure("app", "10.77.0.%", password="pw", require_ssl=True, test=True) == ["REQUIRE SSL"]
    assert executed == []


def test_a_runtime_account_that_held_ddl_is_converged_down_to_dml(monkeypatch):
    # the grants of the account before this change: DML + CREATE, ALTER, INDEX, DROP
    executed = fake_account(monkeypatch, ssl_type="ANY", grants=[
        "GRANT USAGE ON *.* TO `app`@`10.77.0.%` IDENTIFIED BY PASSWORD '*X' REQUIRE SSL",
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON `app`.* TO `app`@`10.77.0.%`"])
    dml = ["SELECT", "INSERT", "UPDATE", "DELETE", "CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE"]
    changes = galera.user_ensure("app", "10.77.0.%", password="pw", grants={"app.*": dml}, require_ssl=True)
    assert changes == ["grants on app.*: ['ALTER', 'CREATE', 'DELETE', 'DROP', 'INDEX', 'INSERT', 'SELECT', "
                       "'UPDATE'] -> ['CREATE TEMPORARY TABLES', 'DELETE', 'EXECUTE', 'INSERT', 'LOCK TABLES', "
                       "'SELECT', 'UPDATE']"]
    sql = executed[0]
    assert sql.index("REVOKE ALTER, CREATE, DROP, INDEX ON `app`.*") < sql.index(
        "GRANT CREATE TEMPORARY TABLES, EXECUTE, LOCK TABLES ON `app`.*")
    assert "REVOKE ALL" not in sql and "ALTER USER" not in sql


def test_unknown_privileges_are_refused_before_any_sql(monkeypatch):
    executed = fake_account(monkeypatch)
    with pytest.raises(galera.CommandExecutionError, match="SELCT"):
        galera.user_ensure("app", "10.77.0.%", password="pw", grants={"app.*": ["SELCT"]})
    assert executed == []


def test_all_privileges_only_on_a_database_the_account_owns(monkeypatch):
    """Zabbix's account owns its database (SHOW GRANTS says ALL PRIVILEGES
    there): allowed on db.*, refused on *.* before any SQL."""
    executed = fake_account(monkeypatch)
    galera.user_ensure("zabbix", "localhost", password="pw", grants={"zabbix.*": ["ALL PRIVILEGES"]})
    assert any("GRANT ALL PRIVILEGES ON `zabbix`.*" in sql for sql in executed), executed
    executed.clear()
    with pytest.raises(galera.CommandExecutionError, match="ALL is refused"):
        galera.user_ensure("zabbix", "localhost", password="pw", grants={"*.*": ["ALL PRIVILEGES"]})
    assert executed == []


def test_app_accounts_split_runtime_dml_from_migration_ddl():
    accounts = galera.app_accounts({
        "name": "app", "user": "app",
        "privileges": ["select", "INSERT", "UPDATE", "DELETE", "CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE"],
        "migrate_privileges": ["CREATE", "ALTER", "INDEX", "DROP", "REFERENCES"],
    })
    assert accounts["runtime"] == {"user": "app", "privileges": [
        "CREATE TEMPORARY TABLES", "DELETE", "EXECUTE", "INSERT", "LOCK TABLES", "SELECT", "UPDATE"]}
    assert accounts["migrate"]["user"] == "app_migrate"
    assert {"CREATE", "ALTER", "DROP", "SELECT"} <= set(accounts["migrate"]["privileges"])


@pytest.mark.parametrize("database, key", [
    pytest.param({"user": "app", "privileges": ["SELECT", "DROPP"]}, "app:database:privileges", id="typo"),
    pytest.param({"user": "app", "privileges": "SELECT, INSERT"}, "app:database:privileges", id="a string"),
    pytest.param({"user": "app", "privileges": ["ALL"]}, "app:database:privileges", id="ALL"),
    pytest.param({"user": "app", "privileges": ["SELECT"], "migrate_privileges": ["SUPER"]},
                 "app:database:migrate_privileges", id="a global privilege"),
    pytest.param({"user": "app", "privileges": ["SELECT"], "migrate_user": "app"}, "app:database:migrate_user",
                 id="the same account twice"),
    pytest.param({"user": "app'; --", "privileges": ["SELECT"]}, "app:database:user", id="odd user"),
])
def test_bad_app_database_pillar_is_refused_naming_the_key(database, key):
    with pytest.raises(galera.CommandExecutionError, match=key):
        galera.app_accounts(database)


def test_odd_identifiers_are_refused():
    with pytest.raises(galera.CommandExecutionError):
        galera.user_ensure("app'; DROP", "%", password="x")


# -- the first-install server (lemp_service.config_loaded's stand-in) --------

FRESH_STANDALONE = {"running": True, "wsrep_on": False, "cluster_status": None, "grastate": None}


@pytest.mark.parametrize("st, expected", [
    pytest.param(FRESH_STANDALONE, True, id="debian's first-install server: wsrep off, no grastate.dat"),
    pytest.param(dict(FRESH_STANDALONE, grastate={"uuid": galera.ZERO_UUID, "seqno": -1, "safe_to_bootstrap": 0}),
                 True, id="a grastate.dat of a node never in a cluster"),
    pytest.param(dict(FRESH_STANDALONE, grastate={"uuid": UUID, "seqno": 42, "safe_to_bootstrap": 0}),
                 False, id="wsrep off for maintenance on a node with galera data"),
    pytest.param(dict(FRESH_STANDALONE, grastate={"error": "grastate.dat has no valid uuid"}),
                 False, id="an unreadable grastate.dat is not taken for a fresh node"),
    pytest.param(dict(FRESH_STANDALONE, wsrep_on=True, cluster_status="Primary"), False, id="a cluster node"),
    pytest.param(dict(FRESH_STANDALONE, running=False), False, id="a stopped server"),
])
def test_the_first_install_server_is_told_from_a_cluster_node(st, expected):
    assert galera.is_first_install_server(st) is expected
