"""
The uploads volume (salt/glusterfs): who holds a brick, who may mount it,
and its options as the ``gluster`` CLI reports them.

The rules (pure functions of the derived topology, unit-tested in
tests/unit/test_glusterfs.py):

1. ``layout``: one data brick per web node (role ``web``), plus an arbiter
   brick on the first arbitrator when there are exactly two web nodes
   (``replica 3 arbiter 1``); with more web nodes the volume is a plain
   ``replica N`` and no arbitrator holds a brick. Fewer than two web nodes
   cannot make a replica: refused.
2. ``clients``: the machines the bricks admit (volume option ``auth.allow``,
   and ``auth.ssl-allow`` with TLS): the brick holders (their own mounts, the
   self-heal daemon, ``gluster volume heal``) and every slot of the web tier's
   scaling pool (role ``web_pool``: a pool VM mounts the volume as a client),
   enrolled or not, so that scaling out needs no change to the volume. An
   arbitrator that holds no brick is not admitted.
3. A machine's TLS identity is the common name of its certificate,
   ``<name>.<network.domain>`` (tools/lab/lab_secrets.py makes the lab's so;
   a production CA must issue the same CN, see docs/security.md).

Why both the list and TLS: without TLS, ``auth.allow`` is the only gate of a
brick. glusterd hands a client on another machine a volume file without
credentials, and the brick then admits it only if its address is listed;
a mount of ``localhost`` on a peer gets the trusted volume file and is
admitted regardless (glusterd-handshake.c, "trusted volfiles"). An address
can be borrowed on a shared subnet; a certificate's key cannot, hence
``auth.ssl-allow`` once TLS is on.
"""

import ipaddress
import time

__virtualname__ = "lemp_glusterfs"

# Values gluster prints for a boolean option, whatever was set.
TRUE_WORDS = ("on", "yes", "true", "enable")
FALSE_WORDS = ("off", "no", "false", "disable")
# Options volume_options computes; the pillar may not set them.
COMPUTED = ("auth.allow", "auth.ssl-allow", "client.ssl", "server.ssl")


class GlusterError(ValueError):
    """The topology cannot make the volume; the message says why and the fix."""


def __virtual__():
    return __virtualname__


def _member(entry):
    return {"name": entry["name"], "address": entry["address"]}


def layout(topology):
    """{servers, arbiter, brick_hosts}: the web nodes holding a data brick
    (topology order), the arbitrator holding the arbiter brick or None, and
    every brick holder, data bricks first (the order of ``volume create``)."""
    roles = topology.get("roles") or {}
    servers = [_member(m) for m in (roles.get("web") or {}).get("members", [])]
    if len(servers) < 2:
        raise GlusterError(f"glusterfs: a replicated volume needs at least 2 web nodes, topology has {len(servers)} "
                           "(pillar/topology.yaml: give role web to a second machine)")
    arbitrators = [_member(m) for m in (roles.get("arbitrator") or {}).get("members", [])]
    arbiter = arbitrators[0] if len(servers) == 2 and arbitrators else None
    return {"servers": servers, "arbiter": arbiter, "brick_hosts": servers + ([arbiter] if arbiter else [])}


def clients(topology):
    """{name, address} of every machine the bricks admit: the brick holders,
    then the scaling pool's slots by address."""
    admitted = list(layout(topology)["brick_hosts"])
    pool = sorted((topology.get("pool_machines") or {}).values(), key=lambda m: ipaddress.IPv4Address(m["address"]))
    admitted.extend(_member(m) for m in pool)
    return admitted


def auth_allow(topology):
    """The volume option ``auth.allow``: the clients' addresses, comma-separated."""
    return ",".join(m["address"] for m in clients(topology))


def common_name(topology, name):
    """The CN of a machine's certificate (the first DNS name lab_secrets gives it)."""
    domain = (topology.get("network") or {}).get("domain")
    return f"{name}.{domain}" if domain else name


def ssl_allow(topology):
    """The volume option ``auth.ssl-allow``: the clients' certificate CNs."""
    return ",".join(common_name(topology, m["name"]) for m in clients(topology))


def volume_options(topology, options, tls):
    """Every option the volume gets, as {option: value}: ``options``
    (pillar glusterfs:lookup:options), ``auth.allow`` from the topology and,
    with ``tls``, TLS on the I/O path with ``auth.ssl-allow``. The pillar
    may not set the computed ones: a typo there must not widen who mounts,
    nor turn TLS on without the certificates."""
    options = {str(k): str(v) for k, v in (options or {}).items()}
    computed = sorted(set(options) & set(COMPUTED))
    if computed:
        raise GlusterError(f"glusterfs:lookup:options: {', '.join(computed)} is computed from the topology "
                           "(_modules/lemp_glusterfs.py); remove it, and use glusterfs:lookup:tls:enabled for TLS")
    wanted = dict(options, **{"auth.allow": auth_allow(topology)})
    if tls:
        wanted.update({"client.ssl": "on", "server.ssl": "on", "auth.ssl-allow": ssl_allow(topology)})
    return wanted


def parse_volume_get(text):
    """{option: value} from ``gluster volume get VOLUME OPTION|all``:
    a header line, a dashed line, then `option   value` rows."""
    values, rows = {}, False
    for line in text.splitlines():
        if not rows:
            rows = line.startswith("-")
            continue
        parts = line.split(None, 1)
        if parts:
            values[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return values


def _normal(value):
    value = str(value).strip()
    if value.lower() in TRUE_WORDS:
        return "on"
    if value.lower() in FALSE_WORDS:
        return "off"
    if "," in value:
        return frozenset(item.strip() for item in value.split(",") if item.strip())
    return value


def same_value(current, wanted):
    """True when gluster's value means what is wanted: booleans whatever
    their spelling, comma-separated lists in any order."""
    if current is None:
        return False
    return _normal(current) == _normal(wanted)


def parse_volume_info(text):
    """{status, client_ssl} of one volume from ``gluster volume info VOLUME``:
    its ``Status:`` line and the ``client.ssl`` option if it was set
    (``Options Reconfigured``; not set means off)."""
    info = {"status": None, "client_ssl": "off"}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Status":
            info["status"] = value.strip()
        elif key.strip() == "client.ssl":
            info["client_ssl"] = _normal(value)
    return info


def tls_switch_refusal(volume, info, wanted):
    """Why TLS may not follow the pillar now, or None. A started volume
    keeps the TLS it runs with: a glusterd with secure-access cannot talk to
    one without, and no client or brick switches without a remount, so the
    switch is the maintenance of docs/sessions.md, never a highstate.
    ``info``: parse_volume_info, or None when there is no volume to ask
    (not created yet, glusterd stopped for that maintenance, no gluster CLI)."""
    if not info or info.get("status") != "Started":
        return None
    running = info.get("client_ssl") == "on"
    if running == bool(wanted):
        return None
    return (f"glusterfs:lookup:tls:enabled is {bool(wanted)}, but volume {volume} is started with TLS "
            f"{'on' if running else 'off'}: switching a running volume is a maintenance window "
            "(docs/sessions.md, \"Turning TLS on for a running volume\"), not a highstate; nothing was changed. "
            f"Set glusterfs:lookup:tls:enabled to {running} to leave it as it is.")


# -- Salt execution-module functions ---------------------------------------


def tls_switch_check(volume, wanted):
    """Stop (CommandExecutionError) before any TLS file is written when the
    pillar would switch TLS on a started volume (tls_switch_refusal);
    True otherwise, also where there is no volume to ask.

    CLI Example::

        salt-call lemp_glusterfs.tls_switch_check uploads True
    """
    from salt.exceptions import CommandExecutionError  # pylint: disable=import-outside-toplevel

    info = None
    if __salt__["cmd.which"]("gluster"):  # noqa: F821  (a pool VM mounts with the client only)
        try:
            info = parse_volume_info(_gluster("volume", "info", volume))
        except CommandExecutionError:
            info = None   # no such volume yet, or glusterd stopped (the maintenance's step 5)
    refusal = tls_switch_refusal(volume, info, wanted)
    if refusal:
        raise CommandExecutionError(refusal)
    return True


def plan(brick_dir, options=None, tls=False):
    """The volume's layout, its bricks (``address:brick_dir``, the order of
    ``volume create``), clients and every option it gets (volume_options)
    from pillar ``topology``, for salt/glusterfs/map.jinja; ``options`` and
    ``tls``: glusterfs:lookup:options and glusterfs:lookup:tls:enabled.

    CLI Example::

        salt-call lemp_glusterfs.plan /srv/gluster/bricks/uploads
    """
    from salt.exceptions import CommandExecutionError  # pylint: disable=import-outside-toplevel

    topology = __salt__["pillar.get"]("topology", {}, unmask=True)  # noqa: F821  (injected by the loader)
    if not topology:
        raise CommandExecutionError("glusterfs: pillar `topology` is missing (pillar/top.sls gives it to every "
                                    "machine; see salt-call pillar.items)")
    try:
        shape = layout(topology)
        return dict(shape, bricks=[f"{m['address']}:{brick_dir}" for m in shape["brick_hosts"]],
                    clients=clients(topology),
                    options=volume_options(topology, options, bool(tls)))
    except GlusterError as exc:
        raise CommandExecutionError(str(exc))


# glusterd's cluster-wide lock: a command while another peer's runs (a
# peer's highstate, its monitoring's `volume status`) is refused with one of
# these, and succeeds a moment later (lab up: `volume set` on web1 refused
# while web2's highstate ran its gluster commands).
LOCK_BUSY = ("Another transaction is in progress", "Locking failed on")


def _gluster(*args, lock_wait=30.0, pause=1.0, sleep=time.sleep, clock=time.monotonic):
    """Run the gluster CLI; retry while another peer holds the cluster lock,
    up to ``lock_wait`` seconds, then fail with gluster's words."""
    from salt.exceptions import CommandExecutionError  # pylint: disable=import-outside-toplevel

    cmd = ["gluster", "--mode=script", *args]
    give_up = clock() + lock_wait
    while True:
        proc = __salt__["cmd.run_all"](cmd, python_shell=False, ignore_retcode=True)  # noqa: F821
        if proc["retcode"] == 0:
            return proc["stdout"]
        words = (proc["stderr"] or proc["stdout"]).strip()
        if not any(busy in words for busy in LOCK_BUSY) or clock() >= give_up:
            raise CommandExecutionError(f"{' '.join(cmd)}: {words}")
        sleep(pause)


def option_get(volume, option):
    """The value of one option of a volume, as gluster reports it.

    CLI Example::

        salt-call lemp_glusterfs.option_get uploads auth.allow
    """
    return parse_volume_get(_gluster("volume", "get", volume, option)).get(option)


def option_set(volume, option, value):
    """Set one option of a volume; return its value read back.

    CLI Example::

        salt-call lemp_glusterfs.option_set uploads network.ping-timeout 5
    """
    _gluster("volume", "set", volume, option, str(value))
    return option_get(volume, option)
