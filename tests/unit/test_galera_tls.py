"""Galera's own TLS (replication, IST, SST, garbd) comes from a CA of its own,
which only the data nodes and the arbitrators hold a certificate of
(issue 13 item 3): the stages of a move between CAs (_modules/galera.py),
the lab's generator (tools/lab/lab_secrets.py) and the MariaDB config."""

import pathlib
import subprocess
import sys

import jinja2
import pytest
import yaml

import galera  # tests/conftest.py puts _modules on the path

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "lab"))

import lab_secrets  # noqa: E402

ORDER = ["platform", "both", "dedicated"]


def test_a_fresh_cluster_trusts_and_presents_the_galera_ca_only():
    assert galera.tls_sources() == {"ca": ["galera:tls:ca_cert"], "cert": "galera:tls:cert", "key": "galera:tls:key"}


def test_the_first_step_of_a_move_keeps_the_platform_certificate_and_trusts_both():
    assert galera.tls_sources("platform") == {"ca": ["galera:tls:ca_cert", "tls:ca_cert"],
                                              "cert": "tls:cert", "key": "tls:key"}


def test_each_stage_trusts_what_its_neighbours_present():
    """A rolling restart leaves nodes of two neighbouring stages side by side
    (and, for the first, nodes still on the platform CA alone): each must
    accept the other's certificate, or the restarted node cannot rejoin."""
    assert list(galera.TLS_STAGES) == ORDER
    ca_of = {"galera:tls:cert": "galera:tls:ca_cert", "tls:cert": "tls:ca_cert"}
    before = {"ca": ["tls:ca_cert"], "cert": "tls:cert"}  # a cluster that used the platform CA
    plans = [before] + [galera.tls_sources(stage) for stage in ORDER]
    for older, newer in zip(plans, plans[1:]):
        assert ca_of[older["cert"]] in newer["ca"], (older, newer)
        assert ca_of[newer["cert"]] in older["ca"], (older, newer)


def test_an_unknown_stage_names_the_pillar_key_and_the_choices():
    with pytest.raises(galera.CommandExecutionError, match=r"galera:lookup:tls:stage is 'new'; use one of "
                                                           r"platform, both, dedicated"):
        galera.tls_sources("new")


def test_a_bundle_holds_each_certificate_once_each_ending_with_a_newline():
    a = "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----"
    b = "-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n"
    assert galera.tls_bundle([a, b, a + "\n"]) == a + "\n" + b


# -- the lab's generator ------------------------------------------------------


def test_only_the_roles_naming_the_ca_hold_its_certificates():
    machines = {"db1": {"secrets": ["galera_sst", "ca_galera"]}, "web1": {"secrets": ["app_db"]},
                "arb1": {"secrets": ["ca_galera"]}}
    assert lab_secrets.ca_holders(machines, "galera") == ["db1", "arb1"]
    assert lab_secrets.secret_name("cas", "galera") == "ca_galera"


def _verifies(ca_pem, cert_pem, tmp_path):
    (tmp_path / "ca.pem").write_text(ca_pem)
    (tmp_path / "cert.pem").write_text(cert_pem)
    return subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "cert.pem")],
                          capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    folder = lab_secrets.generate(state, REPO / "pillar" / "topology.yaml", REPO / "pillar" / "secrets.spec.yaml")
    return {path.stem: yaml.safe_load(path.read_text()) for path in (folder / "minions").glob("*.yaml")}


def test_the_data_nodes_and_the_arbitrator_get_a_galera_certificate_and_nobody_else(generated, topology):
    holders = {name for name, pillar in generated.items() if "tls" in (pillar.get("galera") or {})}
    expected = {m["name"] for role in ("db", "arbitrator") for m in topology["roles"][role]["members"]}
    assert holders == expected and expected
    assert {"ca_cert", "cert", "key"} == set(generated[sorted(expected)[0]]["galera"]["tls"])


def test_a_galera_certificate_is_not_a_lab_certificate_and_the_reverse(generated, topology, tmp_path):
    db = topology["roles"]["db"]["members"][0]["name"]
    web = topology["roles"]["web"]["members"][0]["name"]
    galera_tls, lab_tls = generated[db]["galera"]["tls"], generated[db]["tls"]
    assert galera_tls["ca_cert"] != lab_tls["ca_cert"]
    assert _verifies(galera_tls["ca_cert"], galera_tls["cert"], tmp_path)
    # what a web node holds does not pass the Galera CA: it cannot join
    assert not _verifies(galera_tls["ca_cert"], generated[web]["tls"]["cert"], tmp_path)
    assert not _verifies(galera_tls["ca_cert"], lab_tls["cert"], tmp_path)
    assert not _verifies(lab_tls["ca_cert"], galera_tls["cert"], tmp_path)


def test_the_galera_certificate_names_the_node_like_its_lab_certificate(generated, topology, tmp_path):
    db = topology["roles"]["db"]["members"][0]
    (tmp_path / "cert.pem").write_text(generated[db["name"]]["galera"]["tls"]["cert"])
    text = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(tmp_path / "cert.pem")],
                          capture_output=True, text=True, check=True).stdout
    assert f"IP Address:{db['address']}" in text and f"DNS:{db['name']}" in text


# -- the MariaDB configuration ------------------------------------------------


def render_cnf(**tls):
    defaults = yaml.safe_load((REPO / "salt" / "galera" / "defaults.yaml").read_text())["galera"]
    defaults["tls"].update(tls)
    defaults.update(address="10.77.0.31", server_id=1, arbitrators=[], cluster_addresses=["10.77.0.31"],
                    sst_password="x", evs_options=galera.evs_options(defaults["evs"]))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(REPO / "salt" / "galera" / "files")),
                             extensions=["jinja2.ext.do"])
    text = env.get_template("galera.cnf.jinja").render(galera=defaults, node_name="db1")
    sections, current = {}, None
    for line in text.splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        elif "=" in line and not line.startswith("#") and current is not None:
            key, value = line.split("=", 1)
            current[key.strip()] = value.strip()
    return sections


def test_replication_and_sst_use_the_galera_ca_and_clients_the_platform_ca():
    cnf = render_cnf()
    options = dict(o.strip().split("=", 1) for o in cnf["galera"]["wsrep_provider_options"].strip('"').split(";"))
    assert options["socket.ssl_ca"] == "/etc/mysql/ssl/galera-ca.pem"
    assert options["socket.ssl_cert"] == "/etc/mysql/ssl/galera-cert.pem"
    assert options["socket.ssl_key"] == "/etc/mysql/ssl/galera-key.pem"
    assert cnf["sst"] == {"ssl-mode": "VERIFY_CA", "tca": "/etc/mysql/ssl/galera-ca.pem",
                          "tcert": "/etc/mysql/ssl/galera-cert.pem", "tkey": "/etc/mysql/ssl/galera-key.pem"}
    assert cnf["mysqld"]["ssl_ca"] == "/etc/mysql/ssl/ca.pem"
    # the DB endpoint's certificate (the internal VIP's name), for the app's identity check
    # (salt/galera/config.sls writes tls:db_endpoint there; the path never changes, so FLUSH SSL applies it)
    assert cnf["mysqld"]["ssl_cert"] == "/etc/mysql/ssl/server-cert.pem"
