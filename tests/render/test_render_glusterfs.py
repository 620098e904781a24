"""The uploads volume's access control (issue 13 item 3) as the minions
render it: auth.allow from the topology, set before the volume starts, and
TLS on every server and client of the volume when glusterfs:lookup:tls:enabled."""

import json

import lemp_glusterfs  # tests/conftest.py puts _modules on the path

# TLS is on by default (salt/glusterfs/defaults.yaml); a deployment whose
# volume was made without it keeps it off with this pillar
TLS_OFF = f"pillar={json.dumps({'glusterfs': {'lookup': {'tls': {'enabled': False}}}})}"
TLS_FILES = ("glusterfs-tls-certificate-file-managed", "glusterfs-tls-key-file-managed",
             "glusterfs-tls-ca-file-managed", "glusterfs-tls-management-secure-access-file-managed")


def _args(body, function):
    return {k: v for a in body[function] if isinstance(a, dict) for k, v in a.items()}


def _show(salt_cli, sls, minion, *extra):
    ret = salt_cli.run("state.show_sls", sls, *extra, minion_tgt=minion)
    assert isinstance(ret.data, dict), (sls, minion, ret.data)
    return ret.data


def _option(data, option):
    return _args(data[f"glusterfs-volume-uploads-option-{option}-set"], "lemp_glusterfs")


def _requires(body, function):
    return [next(iter(r.items())) for r in _args(body, function).get("require", [])]


def test_the_first_web_node_sets_auth_allow_from_the_topology_before_starting_the_volume(salt_cli, topology):
    data = _show(salt_cli, "glusterfs", "web1", TLS_OFF)
    assert _option(data, "auth.allow")["value"] == lemp_glusterfs.auth_allow(topology)
    assert _option(data, "network.ping-timeout")["value"] == "5"
    started = _requires(data["glusterfs-volume-uploads-started"], "cmd")
    assert ("lemp_glusterfs", "glusterfs-volume-uploads-option-auth.allow-set") in started
    create = _args(data["glusterfs-volume-uploads-created"], "cmd")["name"]
    assert "replica 3 arbiter 1 10.77.0.21:/srv/gluster/bricks/uploads 10.77.0.22:/srv/gluster/bricks/uploads " \
           "10.77.0.39:/srv/gluster/bricks/uploads force" in create
    assert "start" not in create
    # no TLS when switched off
    assert not set(TLS_FILES) & set(data)
    assert not any("ssl" in state_id for state_id in data)


def test_a_pillar_auth_allow_stops_the_render_naming_the_key(salt_cli):
    wide = f"pillar={json.dumps({'glusterfs': {'lookup': {'options': {'auth.allow': '*'}}}})}"
    ret = salt_cli.run("state.show_sls", "glusterfs", wide, minion_tgt="web1")
    errors = ret.data if isinstance(ret.data, list) else [str(ret.data)]
    assert any("glusterfs:lookup:options: auth.allow is computed from the topology" in e for e in errors), errors


def test_with_tls_every_server_and_client_gets_its_certificate_and_the_volume_its_ssl_options(
        salt_cli, topology, pool_representative):
    data = _show(salt_cli, "glusterfs", "web1")
    assert set(TLS_FILES) <= set(data)
    assert _option(data, "server.ssl")["value"] == _option(data, "client.ssl")["value"] == "on"
    assert _option(data, "auth.ssl-allow")["value"] == lemp_glusterfs.ssl_allow(topology)
    key = _args(data["glusterfs-tls-key-file-managed"], "file")
    assert key["name"] == "/usr/lib/ssl/glusterfs.key" and key["mode"] == "0600" and key["contents_pillar"] == "tls:key"
    # glusterd restarts on them (it reads secure-access when it starts), by
    # content, before it probes a peer or serves the mount
    loaded = _args(data["glusterfs-daemon-runs-its-current-tls-files"], "lemp_service")
    assert loaded["name"] == "glusterd" and loaded["action"] == "restart"
    assert "/var/lib/glusterd/secure-access" in loaded["paths"] and "/usr/lib/ssl/glusterfs.key" in loaded["paths"]
    assert ("lemp_service", "glusterfs-daemon-runs-its-current-tls-files") in _requires(
        data["glusterfs-volume-uploads-mounted"], "mount")

    arbiter = _show(salt_cli, "glusterfs.arbiter", "arb1")
    assert set(TLS_FILES) <= set(arbiter)

    client = _show(salt_cli, "glusterfs.client", pool_representative)
    assert set(TLS_FILES) <= set(client)
    mount = _requires(client["glusterfs-volume-uploads-mounted-as-client"], "mount")
    assert ("file", "glusterfs-tls-management-secure-access-file-managed") in mount
