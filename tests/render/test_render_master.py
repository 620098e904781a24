"""salt/master renders the master's configuration from defaults and pillar,
refuses auto-acceptance at render, and orch.site never syncs code to the lab
host's cloud engine."""

import json

import yaml

from test_render import render_errors


def contents(ret, state_id):
    args = ret.data[state_id]["file"]
    return next(arg["contents"] for arg in args if isinstance(arg, dict) and "contents" in arg)


def test_the_master_config_carries_the_reactor_and_no_auto_acceptance(salt_cli, topology):
    ret = salt_cli.run("state.show_sls", "master", minion_tgt=topology["master"])
    assert not render_errors(ret), render_errors(ret)
    config = yaml.safe_load(contents(ret, "master-config-file-managed"))
    assert config["id"] == topology["master"]
    assert {"salt/minion/*/start": ["/srv/lemp-ha-extras/reactor/web_start.sls"]} in config["reactor"]
    assert {"lemp-ha/scale/request": ["/srv/lemp-ha-extras/reactor/scale_request.sls"]} in config["reactor"]
    assert config["auto_accept"] is False and config["publisher_acl"] == {}
    # only root drives minions, no minion drives another (_modules/lemp_master.py)
    assert "external_auth" not in config and config["peer"] == {} and config["peer_run"] == {}
    assert config["publisher_acl_blacklist"] == {"users": ["(?!(root|sudo_.+)$).*"]}
    assert not [key for key in config if key.startswith("autosign")]
    check = ret.data["master-config-file-managed"]["file"]
    assert any(isinstance(a, dict) and "lemp_master.py check" in str(a.get("check_cmd", "")) for a in check)
    restart = ret.data["master-restart-deferred-until-no-run-uses-the-master"]["cmd"]
    assert any(isinstance(a, dict) and a.get("onchanges") for a in restart)


def test_a_reaction_switched_off_in_pillar_is_left_out(salt_cli, topology):
    extra = f"pillar={json.dumps({'master': {'reactor': {'lemp-ha/scale/request': []}}})}"
    ret = salt_cli.run("state.show_sls", "master.config", extra, minion_tgt=topology["master"])
    config = yaml.safe_load(contents(ret, "master-config-file-managed"))
    assert [list(r) for r in config["reactor"]] == [["salt/minion/*/start"]]


def test_an_auto_accept_setting_in_pillar_stops_the_render_naming_the_key(salt_cli, topology):
    bad = {"master": {"lookup": {"extra": {"autosign_grains_dir": "/etc/salt/autosign_grains"}}}}
    ret = salt_cli.run("state.show_sls", "master.config", f"pillar={json.dumps(bad)}", minion_tgt=topology["master"])
    errors = render_errors(ret)
    assert any("master:extra:autosign_grains_dir would accept minion keys by themselves" in e for e in errors), errors


def test_orch_site_syncs_every_minion_but_the_lab_cloud_engine(salt_run_cli):
    ret = salt_run_cli.run("state.orchestrate_show_sls", "orch.site")
    steps = next(iter(ret.data.values()))
    sync = steps["sync-custom-modules-and-pillar-everywhere"]["salt"]
    assert {"tgt": "* and not labhost"} in sync and {"tgt_type": "compound"} in sync


def test_every_reactor_file_the_config_names_is_linked_from_the_checkout(salt_cli, topology):
    """The master config names reactor files under the extras folder: the
    state links that folder to the checkout's reactor/ (an on-premises master
    has no lab provisioner to do it), and the checkout holds each file."""
    import pathlib

    repo = pathlib.Path(__file__).resolve().parents[2]
    ret = salt_cli.run("state.show_sls", "master.config", minion_tgt=topology["master"])
    assert not render_errors(ret), render_errors(ret)
    config = yaml.safe_load(contents(ret, "master-config-file-managed"))
    links = {}
    for sid, body in ret.data.items():
        args = body.get("file") if isinstance(body, dict) else None
        if isinstance(args, list) and "symlink" in args:
            kw = {k: v for a in args if isinstance(a, dict) for k, v in a.items()}
            links[kw["name"]] = kw["target"]
            assert {"file": "master-config-file-managed"} in kw["require_in"], sid
    files = [path for reaction in config["reactor"] for paths in reaction.values() for path in paths]
    assert files
    for path in files:
        folder, name = path.rsplit("/", 1)
        assert folder in links, (path, links)
        target = pathlib.Path(links[folder])
        assert target.name == "reactor" and (repo / target.name / name).is_file(), (path, target)
