"""common.time renders both branches: chrony with the pillar's servers where
the machine keeps its own clock, a no-op saying why in a container."""

import json

from test_render import render_errors


def show(salt_cli, minion, mode):
    pillar = {"common": {"lookup": {"time": {"mode": mode, "servers": ["ntp1.example.net", "ntp2.example.net"]}}}}
    ret = salt_cli.run("state.show_sls", "common.time", f"pillar={json.dumps(pillar)}", minion_tgt=minion)
    assert not render_errors(ret), render_errors(ret)
    return ret.data


def test_a_machine_with_its_own_clock_gets_chrony_with_the_pillars_servers(salt_cli, representatives):
    data = show(salt_cli, representatives[0], "chrony")
    assert set(data) == {"common-time-chrony-installed", "common-time-chrony-config-file-managed",
                         "common-time-chrony-service-running"}
    args = {k: v for a in data["common-time-chrony-config-file-managed"]["file"] if isinstance(a, dict)
            for k, v in a.items()}
    assert args["name"] == "/etc/chrony/chrony.conf"
    lines = args["contents"].splitlines()
    assert "pool ntp1.example.net iburst" in lines and "pool ntp2.example.net iburst" in lines
    # only the pillar's sources: Debian's default pool is not kept beside them
    assert not [line for line in lines if "debian.pool" in line]
    service = data["common-time-chrony-service-running"]["service"]
    assert {"watch": [{"file": "common-time-chrony-config-file-managed"}]} in service


def test_a_container_installs_nothing_and_the_state_says_why(salt_cli, representatives):
    data = show(salt_cli, representatives[0], "host")
    assert list(data) == ["common-time-host-clock-serves"]
    body = data["common-time-host-clock-serves"]["test"]
    assert "succeed_without_changes" in body
    name = next(a["name"] for a in body if isinstance(a, dict) and "name" in a)
    assert "the host's clock serves" in name


def test_the_default_decides_from_the_grains(salt_cli, representatives):
    # whatever this host is, auto renders one of the two branches, and every
    # machine applies it (common includes common.time)
    data = show(salt_cli, representatives[0], "auto")
    assert "common-time-host-clock-serves" in data or "common-time-chrony-installed" in data


def test_a_bad_mode_stops_the_render_naming_the_key(salt_cli, representatives):
    pillar = {"common": {"lookup": {"time": {"mode": "ntpd"}}}}
    ret = salt_cli.run("state.show_sls", "common.time", f"pillar={json.dumps(pillar)}",
                       minion_tgt=representatives[0])
    assert any("common:lookup:time:mode 'ntpd' is not one of" in e for e in render_errors(ret)), ret.data
