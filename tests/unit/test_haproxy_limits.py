"""HAProxy's connection limits (_modules/lemp_haproxy.py): the maxconn of every
listener and server, from salt/haproxy/defaults.yaml and the backends' own
limits (pillar/lb.sls)."""

import copy
import pathlib

import pytest
import yaml
from salt.exceptions import CommandExecutionError

import lemp_haproxy
from lemp_haproxy import LimitsError

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "salt" / "haproxy" / "defaults.yaml").read_text())["haproxy"]["limits"]
SAMPLE = {"php_max_children": 10, "requests_per_child": 3, "db_max_connections": 150, "db_reserved": 10,
          "redis_maxclients": 1000, "redis_reserved": 24, "redis_maxconn": 500, "public_maxconn": 2000,
          "stats_maxconn": 8}


def with_(**changes):
    settings = copy.deepcopy(SAMPLE)
    settings.update(changes)
    return settings


def test_each_limit_is_sized_from_what_stands_behind_it():
    assert lemp_haproxy.limits(SAMPLE) == {
        "web_server": 30,  # 10 PHP workers x 3
        "db": 140,  # max_connections less the nodes' own users
        "redis": 500,
        "public": 2000,
        "stats": 8,
        # the HTTP and HTTPS frontends, galera, redis-sessions, the two stats listeners
        "global": 2 * 2000 + 140 + 500 + 2 * 8,
    }


def test_the_defaults_give_every_listener_room_and_the_process_their_sum():
    got = lemp_haproxy.limits(DEFAULTS)
    assert set(DEFAULTS) == set(lemp_haproxy.KEYS)
    assert got["web_server"] == DEFAULTS["php_max_children"] * DEFAULTS["requests_per_child"]
    assert got["db"] == DEFAULTS["db_max_connections"] - DEFAULTS["db_reserved"]
    assert got["redis"] <= DEFAULTS["redis_maxclients"] - DEFAULTS["redis_reserved"]
    assert got["global"] == 2 * got["public"] + got["db"] + got["redis"] + 2 * got["stats"]


def test_the_lab_pillar_sizes_the_db_endpoint_from_galeras_max_connections(repo):
    # pillar/lb.sls passes galera:lookup:max_connections on (tests/render checks the rendered pillar)
    galera = yaml.safe_load((repo / "pillar" / "galera.sls").read_text())["galera"]["lookup"]
    got = lemp_haproxy.limits(dict(DEFAULTS, db_max_connections=galera["max_connections"]))
    assert got["db"] == galera["max_connections"] - DEFAULTS["db_reserved"] > 0


def test_redis_maxconn_may_take_all_the_room_the_reserve_leaves():
    assert lemp_haproxy.limits(with_(redis_maxconn=976))["redis"] == 976


def test_one_connection_left_for_the_app_is_enough():
    assert lemp_haproxy.limits(with_(db_reserved=149))["db"] == 1


@pytest.mark.parametrize("key", lemp_haproxy.KEYS)
@pytest.mark.parametrize("value", [None, 0, -3, "16", 2.5, True])
def test_a_missing_or_unusable_figure_is_refused_naming_its_key(key, value):
    settings = with_(**{key: value})
    if value is None:
        del settings[key]
    with pytest.raises(LimitsError) as err:
        lemp_haproxy.limits(settings)
    assert str(err.value) == f"haproxy:lookup:limits:{key} must be a positive integer, not {value!r}"


def test_reserves_that_leave_the_app_no_database_connection_are_refused():
    with pytest.raises(LimitsError) as err:
        lemp_haproxy.limits(with_(db_reserved=150))
    message = str(err.value)
    assert message.startswith("haproxy:lookup:limits:db_reserved (150) leaves no connection of "
                              "db_max_connections (150, galera:lookup:max_connections)")
    assert "lower it or raise max_connections" in message


def test_a_redis_maxconn_above_maxclients_less_the_reserve_is_refused():
    with pytest.raises(LimitsError) as err:
        lemp_haproxy.limits(with_(redis_maxconn=977))
    assert str(err.value) == ("haproxy:lookup:limits:redis_maxconn (977) is above Redis's maxclients less "
                              "redis_reserved (976): lower it")


def test_an_unknown_key_is_refused_listing_the_known_ones():
    with pytest.raises(LimitsError) as err:
        lemp_haproxy.limits(with_(maxconn=10, db_maxconn=5))
    assert str(err.value).startswith("haproxy:lookup:limits has unknown key(s) db_maxconn, maxconn; known: "
                                     "php_max_children, requests_per_child,")


@pytest.mark.parametrize("settings", [None, [], "4096"])
def test_limits_that_are_not_a_mapping_are_refused(settings):
    with pytest.raises(LimitsError, match=r"haproxy:lookup:limits must be a mapping \(salt/haproxy/defaults.yaml"):
        lemp_haproxy.limits(settings)


def test_checked_returns_the_limits_for_the_state():
    assert lemp_haproxy.checked(SAMPLE) == lemp_haproxy.limits(SAMPLE)


def test_checked_stops_the_render_with_the_key_at_fault():
    with pytest.raises(CommandExecutionError) as err:
        lemp_haproxy.checked(with_(public_maxconn=0))
    assert "haproxy:lookup:limits:public_maxconn must be a positive integer, not 0" in str(err.value)
    # the state sees Salt's error, never the module's own
    assert not isinstance(err.value, LimitsError)


def test_the_pillar_example_documents_every_limit_with_usable_values():
    example = yaml.safe_load((REPO / "salt" / "haproxy" / "pillar.example").read_text())["haproxy"]["lookup"]["limits"]
    assert set(example) == set(lemp_haproxy.KEYS)
    assert lemp_haproxy.limits(example) == lemp_haproxy.limits(DEFAULTS)
