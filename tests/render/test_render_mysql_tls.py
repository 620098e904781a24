"""Issue #13: the app reaches MySQL over TLS (REQUIRE SSL, the server checked
against the platform CA and the internal VIP's name), its runtime account
holds data rights only and migrations run as a second account. Rendered on
the render master of tests/render/conftest.py with the lab pillar."""

import json

from test_render import _args, render_errors
from test_render_internal_endpoints import member, render_file, show

DML = ["CREATE TEMPORARY TABLES", "DELETE", "EXECUTE", "INSERT", "LOCK TABLES", "SELECT", "UPDATE"]


def test_runtime_account_gets_dml_and_the_migration_account_ddl(salt_cli, topology, representatives):
    db = member(topology, representatives, "db")
    states = show(salt_cli, "galera.databases", db)
    runtime = _args(states["galera-app-user-app-present"], "user_present")
    assert runtime["grants"] == {"app.*": DML}
    # a highstate leaves the runtime account's REQUIRE SSL as it is: orch.site sets it after the web tier
    assert runtime["require_ssl"] is None
    migrate = _args(states["galera-app-migration-user-app_migrate-present"], "user_present")
    assert {"CREATE", "ALTER", "DROP", "INDEX"} <= set(migrate["grants"]["app.*"]) and set(DML) <= set(
        migrate["grants"]["app.*"])
    assert migrate["require_ssl"] is True and migrate["password"] != runtime["password"]
    states = show(salt_cli, "galera.databases", db, {"app_db_require_ssl": True})
    assert _args(states["galera-app-user-app-present"], "user_present")["require_ssl"] is True


def test_an_unknown_privilege_stops_the_render_naming_the_key(salt_cli, topology, representatives):
    db = member(topology, representatives, "db")
    pillar = {"app": {"database": {"privileges": ["SELECT", "DELET"]}}}
    errors = render_errors(salt_cli.run("state.show_sls", "galera.databases", f"pillar={json.dumps(pillar)}",
                                        minion_tgt=db))
    assert "app:database:privileges" in str(errors) and "DELET" in str(errors), errors


def test_the_app_config_names_the_ca_and_never_the_migration_account(salt_cli, topology, representatives):
    web = member(topology, representatives, "web")
    states = show(salt_cli, "webapp.migrate", web)
    ca = _args(states["webapp-platform-ca-file-managed"], "managed")
    assert ca["contents_pillar"] == "tls:ca_cert"
    config_id = next(i for i in states if i.endswith("-config-file-managed") and i.startswith("webapp-app-release-"))
    text, context = render_file(states, config_id, "webapp/files/config.php.j2")
    assert f"'ssl_ca' => '{ca['name']}'" in text
    assert f"'host' => '{topology['network']['internal_vip']}'" in text
    assert "migrate_password" not in json.dumps(context) and "'user' => 'app'" in text
    migrated = next(body for i, body in states.items() if i.endswith("-migrated"))
    env = _args(migrated, "run")["env"]
    env = {k: v for item in env for k, v in item.items()} if isinstance(env, list) else env
    assert env["LEMP_DB_MIGRATE_USER"] == "app_migrate" and env["LEMP_DB_MIGRATE_PASSWORD"]
    assert env["LEMP_DB_MIGRATE_PASSWORD"] not in text


def test_the_data_nodes_show_clients_the_db_endpoint_certificate(salt_cli, topology, representatives):
    db = member(topology, representatives, "db")
    states = show(salt_cli, "galera.config", db)
    assert _args(states["galera-ssl-endpoint-cert-managed"], "managed")["contents_pillar"] == "tls:db_endpoint:cert"
    reload = _args(states["galera-client-tls-reloaded"], "run")
    assert "FLUSH SSL" in reload["name"]


def test_orch_site_requires_tls_of_the_app_account_after_the_web_tier(salt_run_cli):
    ret = salt_run_cli.run("state.orchestrate_show_sls", "orch.site")
    steps = next(iter(ret.data.values()))
    step = steps["require-tls-for-the-app-database-account"]
    args = _args(step, "state")
    assert args["sls"] == "galera.databases" and args["pillar"] == {"app_db_require_ssl": True}
    assert {"salt": "apply-highstate-on-web-tier"} in args["require"] or "apply-highstate-on-web-tier" in str(
        args["require"])
