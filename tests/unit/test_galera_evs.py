"""Galera's failure-detection timers (pillar galera:lookup:evs): every member
(data nodes and garbd) gets the same values, in the order Galera accepts
(issue #14: the write gap after the writer's or arb1's loss)."""

import pathlib

import jinja2
import pytest
import yaml

import galera  # tests/conftest.py puts _modules on the path
from test_galera_tls import render_cnf

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "salt" / "galera" / "defaults.yaml").read_text())["galera"]
WANTED = {"evs.keepalive_period": "PT0.5S", "evs.inactive_check_period": "PT0.5S", "evs.suspect_timeout": "PT2S",
          "evs.inactive_timeout": "PT4S", "evs.install_timeout": "PT4S"}


def provider_options(text):
    return dict(o.strip().split("=", 1) for o in text.strip('"').split(";"))


def test_the_defaults_detect_a_dead_member_after_four_missed_keepalives():
    options = dict(o.split("=", 1) for o in galera.evs_options(DEFAULTS["evs"]))
    assert options == WANTED
    assert galera.iso_seconds(options["evs.suspect_timeout"], "x") == 4 * galera.iso_seconds(
        options["evs.keepalive_period"], "x")


def test_the_data_nodes_and_garbd_get_the_same_timers():
    cnf = provider_options(render_cnf()["galera"]["wsrep_provider_options"])
    assert {k: v for k, v in cnf.items() if k.startswith("evs.")} == WANTED
    assert cnf["gcache.recover"] == "yes" and cnf["socket.ssl_ca"].endswith("galera-ca.pem")  # the rest stays

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(REPO / "salt" / "garbd" / "files")))
    text = env.get_template("garb.jinja").render(
        garbd={"ssl_dir": "/etc/garb/ssl", "port": 4567}, nodes=["10.77.0.31", "10.77.0.32"], cluster_name="lemp-ha",
        evs_options=galera.evs_options(DEFAULTS["evs"]))
    line = next(line for line in text.splitlines() if line.startswith("GALERA_OPTIONS="))
    garb = provider_options(line.split("=", 1)[1])
    assert {k: v for k, v in garb.items() if k.startswith("evs.")} == WANTED
    assert garb["socket.ssl_key"] == "/etc/garb/ssl/key.pem"


@pytest.mark.parametrize("change, key, words", [
    ({"keepalive_period": "PT1S"}, "keepalive_period", "a third of suspect_timeout"),
    ({"inactive_check_period": "PT1.5S"}, "inactive_check_period", "half of suspect_timeout"),
    ({"inactive_timeout": "PT1.5S", "install_timeout": "PT1.5S"}, "inactive_timeout", "longer than suspect_timeout"),
    ({"install_timeout": "PT5S"}, "install_timeout", "between keepalive_period and inactive_timeout"),
    ({"install_timeout": "PT0.2S"}, "install_timeout", "between keepalive_period and inactive_timeout"),
    ({"suspect_timeout": "1.5"}, "suspect_timeout", "ISO 8601"),
    ({"suspect_timout": "PT2S"}, "suspect_timout", "is not one of"),
])
def test_a_value_galera_would_refuse_stops_the_render_naming_the_key(change, key, words):
    with pytest.raises(galera.CommandExecutionError) as err:
        galera.evs_options(dict(DEFAULTS["evs"], **change))
    assert f"galera:lookup:evs:{key}" in str(err.value) and words in str(err.value)


def test_a_missing_timer_is_named():
    evs = dict(DEFAULTS["evs"])
    evs.pop("install_timeout")
    with pytest.raises(galera.CommandExecutionError, match="galera:lookup:evs:install_timeout is missing"):
        galera.evs_options(evs)


def test_the_wan_values_of_codership_s_note_are_accepted():
    # Codership, "WAN replication": keepalive PT3S, suspect PT30S, inactive PT1M, install PT1M
    evs = {"keepalive_period": "PT3S", "inactive_check_period": "PT1S", "suspect_timeout": "PT30S",
           "inactive_timeout": "PT1M", "install_timeout": "PT1M"}
    assert "evs.inactive_timeout=PT1M" in galera.evs_options(evs)
    assert galera.iso_seconds("PT1H30M", "x") == 5400
