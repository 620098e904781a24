"""
Enrolment of the web tier's pool machines, decided on the master.

The credential is a pre-seeded minion key, as salt-cloud does it: ``mint``
makes a key pair for a pool name and accepts its public half on the master
(``key.gen_accept``); the private half travels once into the new VM. It is
single-use: ``mint`` refuses a name outside ``scaling.web.pool`` of
pillar/topology.yaml and a name that already has a key (accepted, pending,
rejected or denied: the slot is in use), and every mint makes a fresh pair,
so a copy of an older private key no longer matches the master's
(``forget``, at scale-in, deletes it).

When the new VM's minion starts, the reactor (reactor/web_start.sls) runs
orch.enrol with the authenticated minion id only; ``plan`` turns that id
into the runbook, or into "not a pool node" (a fixed machine, or any id
that is not a pool name with an accepted key). The enrolled pool members
are kept in a small store on the master (``/var/lib/lemp-ha/enrolled.json``,
master option ``lemp_ha_enrolled_store``): pillar/enrolled.sls serves it to
every minion as ``scaling:enrolled``, which the HAProxy config (a slot is
enabled iff enrolled) and the Zabbix host list read. Writes are atomic and
serialised by a lock beside the store: orch.enrol runs side by side for
VMs booting at once (the reactor's ``queue: True`` does not hold runners in
Salt 3008), and orch.scale_in may remove a member at the same time.

A failed step leaves the node out: ``failed`` removes it from the store
(when the run had recorded it), puts its slot back to maintenance on the
load balancers, removes its Zabbix host, logs why in
``/var/log/lemp-ha/enrol.log`` and fires ``lemp-ha/enrol/failed``
``{"node", "step", "reason"}``.

The pure functions are unit-tested with sample data (tests/unit/test_enrol.py).
"""

import contextlib
import datetime
import fcntl
import importlib.util
import json
import logging
import os
import tempfile

log = logging.getLogger(__name__)

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("lemp_runner_steps", os.path.join(HERE, "_steps.py"))
_steps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_steps)

STORE_PATH = "/var/lib/lemp-ha/enrolled.json"
STORE_OPTION = "lemp_ha_enrolled_store"  # master option naming another path
LOG_PATH = "/var/log/lemp-ha/enrol.log"
LOG_OPTION = "lemp_ha_enrol_log"
TOPOLOGY_FILE = os.path.join(HERE, os.pardir, "pillar", "topology.yaml")
KEY_STATUSES = ("minions", "minions_pre", "minions_rejected", "minions_denied")
DONE_TAG = "lemp-ha/enrol/done"
FAILED_TAG = "lemp-ha/enrol/failed"
NOT_A_POOL_NODE = "not a pool node"
# The load balancers' copy of the lab CA (salt/haproxy defaults tls_dir).
LB_CA_FILE = "/etc/haproxy/tls/ca.pem"
# From each load balancer, through the name HAProxy verifies: up to ~60 s,
# judged by lemp_healthz.wait (200, "status": "ok", the expected "check";
# the load balancers see the details; never the 200 "maintenance" answer).
# {path}: a new node is gated on /healthz/deep (it must serve the app, so it
# must reach the database: a node that cannot is not enrolled); an enrolled
# node's re-check (its minion restarted) asks what HAProxy routes on, the
# shallow /healthz, so a database hiccup at that moment does not report a
# serving node's enrolment as failed (Zabbix watches /healthz/deep).
HEALTHZ_DEEP, HEALTHZ_SHALLOW = "/healthz/deep", "/healthz"
HEALTHZ_WAIT = {"attempts": 120, "interval": 0.5, "timeout": 2}


def healthz_wait(node, address, path, ca_file):
    """(arg, kwarg) of lemp_healthz.wait on a load balancer for ``node``'s
    ``path``: its name over TLS (``ca_file``), connected at ``address``."""
    return [f"https://{node}{path}"], {"check": "shallow" if path == HEALTHZ_SHALLOW else "deep",
                                       "cacert": ca_file, "resolve": f"{node}:443:{address}", **HEALTHZ_WAIT}


__virtualname__ = "lemp_enrol"


class EnrolError(ValueError):
    """Enrolment refused or the store is unusable; the message says why and the fix."""


def __virtual__():
    return __virtualname__


# -- the enrolled store (pure, on a path) ------------------------------------


def store_path(opts):
    """The store's path: master option ``lemp_ha_enrolled_store``, else STORE_PATH."""
    return (opts or {}).get(STORE_OPTION) or STORE_PATH


def read_store(path=STORE_PATH):
    """{name: {since, by}}; {} when there is none yet. A file that is not a
    JSON object stops the reader: serving nothing would take every pool
    member out of HAProxy at the next reload."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise EnrolError(f"{path} (the enrolled pool members) is unreadable: {exc}; fix it, or delete it and "
                         "enrol the running pool VMs again (restart their salt-minion)") from exc
    if not isinstance(data, dict):
        raise EnrolError(f"{path} (the enrolled pool members) is not a JSON object; fix it, or delete it and "
                         "enrol the running pool VMs again (restart their salt-minion)")
    return data


def write_store(store, path=STORE_PATH):
    """Write ``store`` atomically (a temporary file renamed over it),
    root-only: a reader sees the old list or the new one, never half."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".enrolled.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(store, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def locked(path=STORE_PATH):
    """Hold an exclusive lock beside the store for a read-change-write."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, mode=0o700, exist_ok=True)
    with open(path + ".lock", "a", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def with_member(store, name, since, by):
    """``store`` with ``name`` enrolled; an enrolled name keeps its record
    (a second start event changes nothing)."""
    out = dict(store or {})
    if name not in out:
        out[name] = {"since": since, "by": by}
    return out


def with_served(store, name, at):
    """``store`` with ``name``'s record marked as serving since ``at``
    (orch.enrol's last step: both load balancers see it UP and Zabbix has
    it). A name not enrolled is left out: a failed run took it back out.
    An older mark is kept (a restarted minion's re-check changes nothing)."""
    out = dict(store or {})
    if name in out and not out[name].get("served"):
        out[name] = dict(out[name], served=at)
    return out


def is_served(store, name):
    """True when ``name`` is enrolled and orch.enrol finished with it
    (``served``); a record without it is a run still in progress."""
    return bool(((store or {}).get(name) or {}).get("served"))


def without_member(store, name):
    out = dict(store or {})
    out.pop(name, None)
    return out


def record_in(path, name, by, now=None):
    """Enrol ``name`` in the store at ``path``, under the lock. True when it
    was not enrolled yet."""
    since = (now or datetime.datetime.now(datetime.timezone.utc)).isoformat(timespec="seconds")
    with locked(path):
        store = read_store(path)
        if name in store:
            return False
        write_store(with_member(store, name, since, by), path)
        return True


def mark_served_in(path, name, now=None):
    """Mark ``name`` serving in the store at ``path``, under the lock. True
    when it is enrolled (marked now or before)."""
    at = (now or datetime.datetime.now(datetime.timezone.utc)).isoformat(timespec="seconds")
    with locked(path):
        store = read_store(path)
        if name not in store:
            return False
        updated = with_served(store, name, at)
        if updated != store:
            write_store(updated, path)
        return True


def remove_from(path, name):
    """Remove ``name`` from the store at ``path``, under the lock. True when it was there."""
    with locked(path):
        store = read_store(path)
        if name not in store:
            return False
        write_store(without_member(store, name), path)
        return True


def member_names(store):
    return sorted(store or {})


# -- keys and the decision (pure) --------------------------------------------


def key_status(keys, name):
    """Where the master holds ``name``'s key (``keys`` as key.list_all
    returns them): 'minions' (accepted), 'minions_pre'..., or None."""
    for status in KEY_STATUSES:
        if name in ((keys or {}).get(status) or []):
            return status
    return None


def refused(message):
    """A refusal, as salt-run and orchestrations see a failure: salt-run
    prints the reason and exits 1 (``retcode``), an orchestration's
    salt.runner step fails (``Error``). Raising SaltInvocationError would
    print the docstring and exit 0 (Salt takes it for a TypeError), and any
    other exception prints a traceback."""
    log.warning("lemp_enrol: %s", message)
    return {"Error": message, "retcode": 1}


def mint_refusal(pool_names, name, keys):
    """Why ``name`` may not get a new key, or None."""
    if name not in pool_names:
        return (f"enrol: {name!r} is not a name of scaling.web.pool in pillar/topology.yaml "
                f"(pool: {', '.join(pool_names) or 'empty'}); add it there first")
    status = key_status(keys, name)
    if status == "minions":
        return (f"enrol: {name} already has an accepted key: its pool slot is in use (a key enrols one "
                f"machine once); scale it in first (orch.scale_in), or `salt-run lemp_enrol.forget {name}` "
                "if its VM is gone")
    if status:
        return (f"enrol: the master holds a key for {name} in {status}: a machine tried to join under this "
                f"name; see `salt-key -f {name}`, delete it (`salt-key -d {name}`), then mint again")
    return None


def classify(pool_names, minion_id, keys, enrolled):
    """What orch.enrol does for ``minion_id``: 'new' (a pool name with an
    accepted key, not yet enrolled), 'enrolled' (re-check only), or
    NOT_A_POOL_NODE (a fixed machine, an unknown name, or no accepted key)."""
    if minion_id not in pool_names or key_status(keys, minion_id) != "minions":
        return NOT_A_POOL_NODE
    return "enrolled" if minion_id in (enrolled or []) else "new"


def _failure_handler(node, item, previous, reason, undo, lbs, monitors, backend):
    """Runs only when ``item`` itself failed (its predecessor succeeded)."""
    args = {"node": node, "step": item["id"], "reason": reason, "undo": undo, "lbs": lbs,
            "monitors": monitors, "backend": backend}
    handler = _steps.step(f"report-{node}-enrol-failed-at-{item['id']}", "salt.runner",
                          name="lemp_enrol.failed", **args)
    handler["args"].append({"onfail": [_steps.requisite(item)]})
    if previous:
        handler["args"].append({"require": [_steps.requisite(previous)]})
    return handler


def enrol_steps(node, address, lbs, monitors, backend, kind, ca_file=LB_CA_FILE):
    """The runbook of orch.enrol for ``node`` (``kind`` from classify).

    new: sync modules, refresh pillar and mine, highstate, wait for
    /healthz/deep (the node serves the app and reaches the database) from
    both load balancers, record it enrolled, render its slot enabled
    in the load balancers' config, enable it at runtime, wait until both
    see it UP, register it in Zabbix, announce it. Each step has a failure
    handler that reports it; from the record on, the handler also takes the
    node back out (store, slot, Zabbix host).

    enrolled: re-check only (sync, mine, the shallow /healthz HAProxy routes
    on, announce): no highstate,
    no runtime change, so a restarted minion never drains nor re-enables a
    node (orch.scale_in may be draining it).

    Anything else: one step that says so and changes nothing.
    """
    if kind == NOT_A_POOL_NODE:
        return [_steps.step(f"ignore-{node}-{NOT_A_POOL_NODE.replace(' ', '-')}", "test.succeed_without_changes",
                            name=f"enrol: {node}: {NOT_A_POOL_NODE} (a fixed machine, or no accepted pool key): "
                                 "nothing to do")]
    if not lbs:
        return [_steps.refuse(f"refuse-to-enrol-{node}-without-load-balancers",
                              "enrol: the topology has no machine with role lb")]
    path = HEALTHZ_SHALLOW if kind == "enrolled" else HEALTHZ_DEEP
    healthz_arg, healthz_kwarg = healthz_wait(node, address, path, ca_file)
    head = [
        # the load balancers and the monitor too: they render the slot and
        # the host list with lemp_pool, which a long-running lab may lack
        (_steps.function(f"sync-custom-modules-on-{node}-the-lbs-and-the-monitor", "saltutil.sync_all",
                         [node] + list(lbs) + list(monitors)),
         f"syncing the custom modules on {node}, the load balancers or the monitor failed", False),
        (_steps.function(f"refresh-pillar-on-{node}", "saltutil.refresh_pillar", node, kwarg={"wait": True}),
         f"{node} could not refresh its pillar", False),
        (_steps.function(f"publish-{node}-in-the-mine", "mine.update", node),
         f"{node} could not update its mine entries", False),
    ]
    check = (_steps.function(f"wait-for-healthz-of-{node}-from-both-lbs", "lemp_healthz.wait", lbs,
                             arg=healthz_arg, kwarg=healthz_kwarg),
             f"https://{node}{path} was not healthy from the load balancers (the step's error says why: "
             "down, maintenance, not the platform's answer)", False)
    done = (_steps.step(f"announce-{node}-enrolled", "salt.runner", name="lemp_enrol.done", node=node,
                        already=kind == "enrolled"),
            f"could not announce {node} enrolled", kind == "new")
    if kind == "enrolled":
        body = head + [check, done]
    else:
        body = head + [
            # queued: a second start event (a minion restarted while it
            # enrols) runs a second orch.enrol side by side, as the reactor
            # does not queue runners; its highstate then waits, and passes
            (_steps.state(f"apply-highstate-on-{node}", None, node, highstate=True, queue=True),
             f"the highstate of {node} failed (see the orchestration's output)", False),
            check,
            (_steps.step(f"record-{node}-enrolled-on-the-master", "salt.runner", name="lemp_enrol.record",
                         node=node, by="orch.enrol"),
             f"could not record {node} in the enrolled store", True),
            (_steps.state(f"render-{node}-slot-enabled-in-haproxy-config-on-both-lbs", "haproxy.config", lbs,
                          queue=True),
             f"rendering the haproxy config with {node} enabled failed", True),
            (_steps.function(f"enable-{node}-on-both-lbs", "haproxy_runtime.enable", lbs, arg=[backend, node]),
             f"the load balancers refused to enable {backend}/{node}", True),
            (_steps.function(f"wait-until-{node}-is-up-on-both-lbs", "haproxy_runtime.wait_up", lbs,
                             arg=[backend, node], kwarg={"timeout": 60}),
             f"{backend}/{node} did not come UP on both load balancers within 60 s", True),
        ]
        # after HAProxy: the node serves as soon as it can (the join-time goal);
        # a failure here still takes it back out, drained first
        if monitors:
            body.append((_steps.state(f"register-{node}-in-zabbix-on-{monitors[0]}", "zabbix.server.api",
                                      monitors[0], queue=True),
                         f"registering {node} in Zabbix on {monitors[0]} failed", True))
        body.append(done)
    main = _steps.chain([item for item, _, _ in body])
    out, previous = [], None
    for item, (_, reason, undo) in zip(main, body):
        out.append(item)
        out.append(_failure_handler(node, item, previous, reason, undo, lbs, monitors, backend))
        previous = item
    return out


def log_line(now, node, step, reason):
    return f"{now.isoformat(timespec='seconds')} enrol {node} failed at {step}: {reason}\n"


# -- runner functions -----------------------------------------------------


def _opts():
    return __opts__  # noqa: F821  (injected by the loader)


def _topology():
    """The derived topology of this checkout, as the pillar serves it."""
    return _steps.repo_module("lemp_topology").load(TOPOLOGY_FILE)


def _pool_names(topology=None):
    return _steps.repo_module("lemp_pool").pool_names(topology or _topology())


def _wheel(fun, *args, **kwargs):
    import salt.wheel  # pylint: disable=import-outside-toplevel

    with salt.wheel.WheelClient(_opts()) as wheel:
        return wheel.cmd(fun, list(args), kwarg=kwargs or None, print_event=False)


def _keys():
    return _wheel("key.list_all")


def _fire(tag, data):
    import salt.utils.event  # pylint: disable=import-outside-toplevel

    opts = _opts()
    with salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=False) as bus:
        bus.fire_event(data, tag)


def mint(name):
    """Make a key pair for pool name ``name``, accept its public half and
    return both: ``{"name", "private", "public"}``. Refuses a name outside
    the pool and a name that already has a key.

    CLI Example::

        salt-run lemp_enrol.mint name=web3 --out=json
    """
    refusal = mint_refusal(_pool_names(), name, _keys())
    if refusal:
        return refused(refusal)
    pair = _wheel("key.gen_accept", name, keysize=int(_opts().get("keysize") or 2048))
    if not pair or not pair.get("priv"):
        return refused(f"enrol: the master did not make a key for {name} (one appeared meanwhile?)")
    log.info("lemp_enrol: minted and accepted a key for pool name %s", name)
    return {"name": name, "private": pair["priv"], "public": pair["pub"]}


def forget(name):
    """Delete pool name ``name``'s key (scale-in): a copy of its private key
    can no longer authenticate. Refuses a name outside the pool.

    CLI Example::

        salt-run lemp_enrol.forget name=web3
    """
    pool = _pool_names()
    if name not in pool:
        return refused(f"enrol: refusing to delete the key of {name!r}: not a name of scaling.web.pool "
                                  f"(pool: {', '.join(pool)})")
    had = key_status(_keys(), name)
    if had:
        _wheel("key.delete", name)
    return {"name": name, "deleted": bool(had)}


def check(minion_id):
    """{"id", "pool", "accepted", "enrolled", "kind"} for ``minion_id``.

    CLI Example::

        salt-run lemp_enrol.check web3
    """
    pool = _pool_names()
    keys = _keys()
    members = member_names(read_store(store_path(_opts())))
    return {"id": minion_id, "pool": minion_id in pool, "accepted": key_status(keys, minion_id) == "minions",
            "enrolled": minion_id in members, "kind": classify(pool, minion_id, keys, members)}


def enrolled():
    """The enrolled pool members, by name.

    CLI Example::

        salt-run lemp_enrol.enrolled
    """
    return member_names(read_store(store_path(_opts())))


def record(node, by="orch.enrol"):
    """Record ``node`` enrolled (the next pillar render of every minion
    lists it in scaling:enrolled). Refuses a name outside the pool."""
    if node not in _pool_names():
        return refused(f"enrol: refusing to record {node!r}: not a name of scaling.web.pool")
    return {"node": node, "recorded": record_in(store_path(_opts()), node, by)}


def remove(node):
    """Remove ``node`` from the enrolled store (scale-in, or a failed enrolment)."""
    return {"node": node, "removed": remove_from(store_path(_opts()), node)}


def plan(minion_id, topology=None, backend="web", ca_file=LB_CA_FILE):
    """orch.enrol's runbook for the authenticated ``minion_id`` (enrol_steps).

    CLI Example::

        salt-run lemp_enrol.plan web3
    """
    topology = topology or _topology()
    pool = _steps.repo_module("lemp_pool").pool(topology)
    kind = check(minion_id)["kind"]
    address = next((e["address"] for e in pool if e["name"] == minion_id), "")
    return _steps.plan(enrol_steps(minion_id, address, _steps.role(topology, "lb"),
                                   _steps.role(topology, "monitor"), backend, kind, ca_file=ca_file))


def done(node, already=False):
    """Mark ``node`` serving in the enrolled store and fire
    lemp-ha/enrol/done. orch.scale_out waits for the mark, not for the
    event alone: a fast VM may enrol before ``vagrant up`` has returned,
    that is before scale_out listens (lemp_scale.wait_enrolled)."""
    if not mark_served_in(store_path(_opts()), node):
        return refused(f"enrol: {node} is not in the enrolled store any more (scaled in meanwhile?): "
                                  "not announced")
    _fire(DONE_TAG, {"node": node, "already": bool(already)})
    return {"node": node, "event": DONE_TAG}


def failed(node, step, reason, undo=False, lbs=(), monitors=(), backend="web"):
    """A step of orch.enrol failed: keep ``node`` out (with ``undo``: out of
    the store, its slot back to maintenance on ``lbs``, its Zabbix host
    removed on the monitor), log why in /var/log/lemp-ha/enrol.log and fire
    lemp-ha/enrol/failed {"node", "step", "reason"}. The orchestration
    ends failed anyway: the step it reports failed."""
    opts = _opts()
    notes = []
    if undo:
        try:
            if remove_from(store_path(opts), node):
                notes.append("removed from the enrolled store")
            if lbs:
                _steps.ask(opts, list(lbs), "state.apply", arg=["haproxy.config"], kwarg={"queue": True},
                           tgt_type="list")
                # drained first: a node that already served finishes its requests
                _steps.ask(opts, list(lbs), "haproxy_runtime.drain", arg=[backend, node], tgt_type="list")
                _steps.ask(opts, list(lbs), "haproxy_runtime.wait_drained", arg=[backend, node],
                           kwarg={"timeout": 30}, tgt_type="list")
                _steps.ask(opts, list(lbs), "haproxy_runtime.disable", arg=[backend, node], tgt_type="list")
                notes.append("slot back to maintenance on " + ", ".join(lbs))
            if monitors:
                _steps.ask(opts, monitors[0], "lemp_zabbix.host_absent", arg=[node])
                notes.append(f"Zabbix host removed on {monitors[0]}")
        except Exception as exc:  # pylint: disable=broad-except
            notes.append(f"undo incomplete: {exc}")
    full = reason + (f" ({'; '.join(notes)})" if notes else "")
    path = opts.get(LOG_OPTION) or LOG_PATH
    try:
        os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(log_line(datetime.datetime.now(datetime.timezone.utc), node, step, full))
    except OSError as exc:
        log.error("lemp_enrol: cannot write %s: %s", path, exc)
    log.error("lemp_enrol: enrolment of %s failed at %s: %s", node, step, full)
    _fire(FAILED_TAG, {"node": node, "step": step, "reason": full})
    return {"node": node, "step": step, "reason": full, "event": FAILED_TAG}
