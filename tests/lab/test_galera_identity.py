"""Only holders of a Galera certificate can join the cluster (issue 13 item 3).

Galera's own traffic uses a CA of its own (docs/security.md "Galera: a CA of
its own"), which issues certificates only to the data nodes and the
arbitrators. Every machine also holds a certificate of the lab CA (MariaDB
client TLS, HTTPS): that one must not open Galera's door.

Where the attempt runs: a web or LB node cannot even reach a data node's
4567 (the host firewall drops it, tests/lab/test_firewall.py), and no machine
that the firewall admits lacks a Galera certificate, by design. So the
handshake is tried on a data node, to its own address (loopback passes the
firewall), with the lab-CA certificate MariaDB shows its clients
(/etc/mysql/ssl/server-cert.pem, the DB endpoint's; the same CA as a web node's): Galera must refuse it, and accept the node's
Galera certificate (/etc/mysql/ssl/galera-cert.pem).

TLS 1.2 on purpose: there the server checks the client's certificate before
the handshake ends, so `openssl s_client` fails on a refusal; with TLS 1.3 the
client would finish first and only read the alert later.

The SST (port 4444) is not tried live: socat listens there only while a
transfer runs, on the joiner. Its configuration is checked instead: VERIFY_CA
against the Galera CA, as MariaDB's SST script reads it (my_print_defaults).
"""

import pytest

from galera_helpers import out, sql, tier_of

SSL = "/etc/mysql/ssl"
GALERA_PORT = 4567
TIMEOUT = 5  # seconds per handshake: a local one takes milliseconds


@pytest.fixture(scope="module")
def tier(topology):
    return tier_of(topology)


@pytest.fixture(scope="module")
def db(tier):
    return tier["dbs"][0]


def handshake(lab, machine, address, cert=None, key=None):
    """`openssl s_client` to Galera's port, trusting the Galera CA (so that a
    failure is the server refusing us, not us refusing the server)."""
    client = f"-cert {cert} -key {key}" if cert else ""
    # printable text only: once in, Galera's own bytes follow the handshake;
    # pipefail keeps s_client's exit status
    command = (f"set -o pipefail; timeout {TIMEOUT} openssl s_client -connect {address}:{GALERA_PORT} -tls1_2 "
               f"-CAfile {SSL}/galera-ca.pem -verify_return_error {client} </dev/null 2>&1 "
               "| LC_ALL=C tr -cd '\\11\\12\\40-\\176'")
    return lab.run(machine, command, check=False)


def test_galera_refuses_a_lab_certificate_and_accepts_a_galera_one(lab, tier, db):
    address = tier["address"][db]
    # the lab certificate is a valid one, of the other CA
    assert lab.run(db, f"openssl verify -CAfile {SSL}/ca.pem {SSL}/server-cert.pem", check=False).returncode == 0
    assert lab.run(db, f"openssl verify -CAfile {SSL}/galera-ca.pem {SSL}/server-cert.pem",
                   check=False).returncode != 0

    refused = handshake(lab, db, address, f"{SSL}/server-cert.pem", f"{SSL}/server-key.pem")
    assert refused.returncode not in (0, 124), f"a lab certificate was let in (or no answer):\n{out(refused)}"
    assert "alert" in out(refused).lower(), out(refused)

    anonymous = handshake(lab, db, address)
    assert anonymous.returncode not in (0, 124), f"no client certificate was let in:\n{out(anonymous)}"

    accepted = handshake(lab, db, address, f"{SSL}/galera-cert.pem", f"{SSL}/galera-key.pem")
    assert accepted.returncode == 0, f"the node's own Galera certificate was refused:\n{out(accepted)}"


def test_the_running_nodes_and_garbd_use_the_galera_ca(lab, tier):
    galera_ca = {}
    for name in tier["dbs"]:
        options = sql(lab, name, "SHOW GLOBAL VARIABLES LIKE 'wsrep_provider_options'")[0][1]
        assert f"socket.ssl_ca = {SSL}/galera-ca.pem" in options, (name, options)
        galera_ca[name] = out(lab.run(name, f"cat {SSL}/galera-ca.pem"))
    assert len(set(galera_ca.values())) == 1, "the data nodes trust different Galera CAs"
    assert out(lab.run(tier["dbs"][0], f"cat {SSL}/ca.pem")) not in galera_ca.values()
    for arb in tier["arbs"]:
        assert out(lab.run(arb, "cat /etc/garb/ssl/ca.pem")) in galera_ca.values(), arb
        assert out(lab.run(arb, "systemctl is-active garb", check=False)) == "active", arb


def test_no_web_or_lb_machine_holds_a_galera_certificate(lab):
    for name in lab.with_role("web") + lab.with_role("lb"):
        found = lab.run(name, f"ls {SSL}/galera-key.pem /etc/garb/ssl/key.pem 2>/dev/null", check=False)
        assert not out(found), f"{name} holds a Galera key: {out(found)}"
        # what the master gives the machine
        assert not lab.salt("--timeout=10", name, "pillar.get", "galera:tls:key").get(name), \
            f"{name} receives galera:tls:key in its pillar"


def test_the_sst_checks_the_peer_against_the_galera_ca(lab, db):
    options = out(lab.run(db, "my_print_defaults sst")).splitlines()
    assert "--ssl-mode=VERIFY_CA" in options, options
    assert f"--tca={SSL}/galera-ca.pem" in options, options
    assert f"--tcert={SSL}/galera-cert.pem" in options and f"--tkey={SSL}/galera-key.pem" in options, options
    # the SST script's own check (verify_ca_matches_cert) passes with these files
    check = f"openssl verify -CAfile {SSL}/galera-ca.pem {SSL}/galera-cert.pem"
    assert lab.run(db, check, check=False).returncode == 0
