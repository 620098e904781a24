"""Galera's TLS files on the data nodes and garbd's on the arbitrator come
from the dedicated Galera CA; no other machine receives it (issue 13 item 3)."""

import json
import pathlib

from test_render import _args, render_errors

STATE = "state/secrets"


def member(topology, representatives, role):
    return next(name for name in representatives if role in topology["machines"][name]["roles"])


def galera_ca(salt_roots):
    return (pathlib.Path(salt_roots["root"]) / STATE / "ca-galera.pem").read_text()


def lab_ca(salt_roots):
    return (pathlib.Path(salt_roots["root"]) / STATE / "ca.pem").read_text()


def show(salt_cli, sls, minion, pillar=None):
    extra = [f"pillar={json.dumps(pillar)}"] if pillar else []
    ret = salt_cli.run("state.show_sls", sls, *extra, minion_tgt=minion)
    assert not render_errors(ret), (sls, minion, render_errors(ret))
    return ret.data


def test_a_data_node_trusts_and_presents_the_galera_ca_only(salt_cli, salt_roots, topology, representatives):
    states = show(salt_cli, "galera.config", member(topology, representatives, "db"))
    bundle = _args(states["galera-tls-ca-bundle-managed"], "managed")
    assert bundle["name"] == "/etc/mysql/ssl/galera-ca.pem"
    assert bundle["contents"] == galera_ca(salt_roots) != lab_ca(salt_roots)
    assert _args(states["galera-tls-node-cert-managed"], "managed")["contents_pillar"] == "galera:tls:cert"
    assert _args(states["galera-tls-node-key-managed"], "managed")["contents_pillar"] == "galera:tls:key"
    # MariaDB's client TLS keeps the platform CA
    assert _args(states["galera-ssl-ca-cert-managed"], "managed")["contents_pillar"] == "tls:ca_cert"


def test_garbd_uses_the_galera_ca_like_the_data_nodes(salt_cli, salt_roots, topology, representatives):
    states = show(salt_cli, "garbd.config", member(topology, representatives, "arbitrator"))
    assert _args(states["garbd-ssl-ca-managed"], "managed")["contents"] == galera_ca(salt_roots)
    assert _args(states["garbd-ssl-cert-managed"], "managed")["contents_pillar"] == "galera:tls:cert"
    assert _args(states["garbd-ssl-key-managed"], "managed")["contents_pillar"] == "galera:tls:key"


def test_moving_a_running_cluster_trusts_both_cas_at_the_first_step(salt_cli, salt_roots, topology, representatives):
    pillar = {"galera": {"lookup": {"tls": {"stage": "platform"}}}}
    for sls, ca_id, cert_id in (("galera.config", "galera-tls-ca-bundle-managed", "galera-tls-node-cert-managed"),
                                ("garbd.config", "garbd-ssl-ca-managed", "garbd-ssl-cert-managed")):
        role = "db" if sls.startswith("galera") else "arbitrator"
        states = show(salt_cli, sls, member(topology, representatives, role), pillar)
        bundle = _args(states[ca_id], "managed")["contents"]
        assert galera_ca(salt_roots) in bundle and lab_ca(salt_roots) in bundle, sls
        assert _args(states[cert_id], "managed")["contents_pillar"] == "tls:cert", sls


def test_an_unknown_stage_stops_the_render_naming_the_key(salt_cli, topology, representatives):
    ret = salt_cli.run("state.show_sls", "galera.config",
                       f"pillar={json.dumps({'galera': {'lookup': {'tls': {'stage': 'new'}}}})}",
                       minion_tgt=member(topology, representatives, "db"))
    assert any("galera:lookup:tls:stage is 'new'" in e for e in render_errors(ret)), render_errors(ret)


def test_no_other_machine_receives_a_galera_certificate(salt_cli, salt_minions, topology):
    for name in salt_minions:
        roles = {**topology["machines"], **topology.get("pool_machines", {})}[name]["roles"]
        ret = salt_cli.run("pillar.get", "galera:tls:key", minion_tgt=name)
        assert ret.returncode == 0, ret
        assert bool(ret.data) == bool({"db", "arbitrator"} & set(roles)), name


# -- the evs timers (issue #14): every member agrees -------------------------


def test_the_data_nodes_and_garbd_render_the_same_evs_timers(salt_cli, topology, representatives):
    pillar = {"galera": {"lookup": {"evs": {"suspect_timeout": "PT3S", "inactive_timeout": "PT6S",
                                            "install_timeout": "PT6S"}}}}
    for extra in (None, pillar):
        db = show(salt_cli, "galera.config", member(topology, representatives, "db"), extra)
        arb = show(salt_cli, "garbd.config", member(topology, representatives, "arbitrator"), extra)
        on_db = _args(db["galera-config-file-managed"], "managed")["context"]["galera"]["evs_options"]
        on_arb = _args(arb["garbd-config-file-managed"], "managed")["context"]["evs_options"]
        assert on_db == on_arb and "evs.keepalive_period=PT0.5S" in on_db, extra
        assert ("evs.suspect_timeout=PT3S" if extra else "evs.suspect_timeout=PT2S") in on_db


def test_an_evs_timer_galera_would_refuse_stops_the_render_naming_the_key(salt_cli, topology, representatives):
    pillar = {"galera": {"lookup": {"evs": {"keepalive_period": "PT1S"}}}}
    ret = salt_cli.run("state.show_sls", "garbd.config", f"pillar={json.dumps(pillar)}",
                       minion_tgt=member(topology, representatives, "arbitrator"))
    assert any("galera:lookup:evs:keepalive_period is PT1S" in e for e in render_errors(ret)), render_errors(ret)
