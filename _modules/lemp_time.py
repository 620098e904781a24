"""
Time sync on every machine (salt/common/time.sls, issue #13 item 7): Galera
and TLS need clocks that agree. Decided here, rendered there:

    salt['lemp_time.plan'](grains, mode)  ->  {"chrony": bool, "why": str}

Rules (:func:`plan`):

* ``mode`` ``chrony``: run chrony; ``host``: the machine's clock is its
  host's, install nothing; ``auto`` (the default, pillar
  ``common:lookup:time:mode``) decides from the grains;
* auto: a container (grains ``virtual`` ``container`` with any
  ``virtual_subtype``, e.g. LXC, Docker, Podman; or ``systemd-nspawn``,
  ``openvz``, ``chroot``) shares the host's kernel clock: the host keeps it,
  chronyd inside could not set it (no CAP_SYS_TIME), so nothing is
  installed. Salt 3008 reports an LXC container (the lab) as
  ``virtual: container``, ``virtual_subtype: LXC`` (systemd-detect-virt, or
  ``container=lxc`` in PID 1's environment);
* auto, anything else (a VM, bare metal): its own clock drifts, chrony keeps
  it.
"""

__virtualname__ = "lemp_time"

MODES = ("auto", "chrony", "host")
# grains `virtual` values of containers that share the host's clock
CONTAINER_VIRTUAL = ("container", "systemd-nspawn", "openvz", "chroot", "lxc")

try:  # Salt's error shows in the render as it is; the unit tests run without Salt
    from salt.exceptions import CommandExecutionError as TimeConfigError
except ImportError:  # pragma: no cover
    TimeConfigError = ValueError


def __virtual__():
    return __virtualname__


def is_container(grains: dict) -> bool:
    """Whether the grains describe a container, whose clock is its host's."""
    return str((grains or {}).get("virtual") or "").lower() in CONTAINER_VIRTUAL


def plan(grains: dict, mode: str = "auto") -> dict:
    """``{"chrony": bool, "why": str}``: whether this machine runs chrony,
    and the reason, which the state shows when it installs nothing."""
    if mode not in MODES:
        raise TimeConfigError(f"common:lookup:time:mode {mode!r} is not one of {', '.join(MODES)}: "
                              "auto decides from the grains, chrony forces it, host trusts the host's clock")
    grains = grains or {}
    kind = grains.get("virtual") or "unknown"
    subtype = grains.get("virtual_subtype")
    seen = f"grains virtual={kind}" + (f", virtual_subtype={subtype}" if subtype else "")
    if mode == "host":
        return {"chrony": False, "why": f"common:lookup:time:mode is host: the host's clock serves ({seen}); "
                                        "no chrony installed"}
    if mode == "chrony":
        return {"chrony": True, "why": f"common:lookup:time:mode is chrony ({seen})"}
    if is_container(grains):
        return {"chrony": False, "why": f"a container ({seen}) reads its host's clock, which the host keeps in "
                                        "sync; chronyd here could not set it: no chrony installed"}
    return {"chrony": True, "why": f"this machine keeps its own clock ({seen}): chrony keeps it in sync"}
