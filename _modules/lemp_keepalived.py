"""
keepalived's VRRP instance on a load balancer, decided from the topology.

``instance`` takes pillar ``keepalived:lookup`` (merged over
salt/keepalived/defaults.yaml), ``topology.roles.lb.members`` and this
minion's id, and returns what salt/keepalived/files/keepalived.conf.j2
writes: this LB, its unicast peers (every other LB), its priority.

The rules, checked here so that a setting that cannot move the VIP stops
the render (naming the key) before keepalived.conf changes:

* priority of the n-th LB in topology order: ``priority_top - n *
  priority_step``, each within 1..254 (255 is the address owner's);
* ``nopreempt`` (the default): a returning LB never takes the VIP back
  from the one holding it, so failback moves nothing and costs no request.
  Priorities then only break ties (a split brain that heals: the higher one
  keeps the VIP). A failing HAProxy check must therefore put the holder in
  FAULT, which gives the VIP up: ``check:weight`` must be 0 (a failing
  script with weight 0 means FAULT). A negative weight would only lower the
  holder's priority, and with nopreempt the other LB would never take over;
* without nopreempt, a negative weight must take the top LB below the next
  one (``weight < -priority_step``), or be 0 (FAULT).

Unit tests: tests/unit/test_keepalived.py.
"""

__virtualname__ = "lemp_keepalived"

KEY = "keepalived:lookup"
MAX_PRIORITY = 254  # 255 is reserved for the owner of the address


class KeepalivedError(ValueError):
    """The VRRP settings are unusable; the message names the pillar key."""


def __virtual__():
    return __virtualname__


def _int(settings, key, path=None):
    value = settings.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise KeepalivedError(f"{KEY}:{path or key} must be a whole number, not {value!r}")
    return value


def instance(settings, members, minion_id):
    """{"me": {name, address}, "peers": [{name, address}], "priority": int,
    "nopreempt": bool} of ``minion_id``'s VRRP instance. Raises
    KeepalivedError naming the key (or the topology) when it is unusable."""
    members = list(members or [])
    names = [m.get("name") for m in members if isinstance(m, dict)]
    if minion_id not in names:
        raise KeepalivedError(f"keepalived: {minion_id} has no role lb in the topology "
                              f"(topology.roles.lb: {', '.join(map(str, names)) or 'none'})")
    top = _int(settings, "priority_top")
    step = _int(settings, "priority_step")
    check = settings.get("check") or {}
    weight = _int(check, "weight", "check:weight")
    nopreempt = settings.get("nopreempt", True)
    if not isinstance(nopreempt, bool):
        raise KeepalivedError(f"{KEY}:nopreempt must be True or False, not {nopreempt!r}")
    if not 1 <= top <= MAX_PRIORITY:
        raise KeepalivedError(f"{KEY}:priority_top ({top}) must be within 1..{MAX_PRIORITY}")
    if step < 1:
        raise KeepalivedError(f"{KEY}:priority_step ({step}) must be above 0: two LBs with one priority")
    lowest = top - (len(members) - 1) * step
    if lowest < 1:
        raise KeepalivedError(f"{KEY}:priority_top ({top}) and priority_step ({step}) leave the last of "
                              f"{len(members)} LBs a priority of {lowest}: it must be at least 1")
    if not -253 <= weight <= 253:
        raise KeepalivedError(f"{KEY}:check:weight ({weight}) must be within -253..253")
    if nopreempt and weight != 0:
        raise KeepalivedError(
            f"{KEY}:check:weight ({weight}) must be 0 with nopreempt: a failing HAProxy check must put the LB "
            "in FAULT to give the VIP up; a lower priority alone never moves it when the other LB does not "
            "preempt")
    if not nopreempt and weight != 0 and len(members) > 1 and not weight < -step:
        raise KeepalivedError(
            f"{KEY}:check:weight ({weight}) cannot move the VIP: it must take the top LB below the next one "
            f"(weight < -priority_step, -{step}), or be 0 (a failing check means FAULT)")
    index = names.index(minion_id)
    me = members[index]
    return {"me": {"name": me["name"], "address": me["address"]},
            "peers": [{"name": m["name"], "address": m["address"]} for m in members if m["name"] != minion_id],
            "priority": top - index * step, "nopreempt": nopreempt}


def checked(settings, members, minion_id):
    """``instance`` for a state (salt/keepalived/init.sls): a bad setting
    stops the render with the key at fault.

    CLI Example::

        salt lb1 lemp_keepalived.checked '{...}' '[{"name": "lb1", "address": "10.77.0.11"}]' lb1
    """
    from salt.exceptions import CommandExecutionError  # pylint: disable=import-outside-toplevel

    try:
        return instance(settings, members, minion_id)
    except KeepalivedError as exc:
        raise CommandExecutionError(str(exc))
