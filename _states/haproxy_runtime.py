"""
States over the HAProxy runtime API (see _modules/haproxy_runtime.py).

    drain-web1-on-this-lb:
      haproxy_runtime.drained:
        - name: web1
        - backend: web
        - wait: True
        - timeout: 120

    enable-web1-on-this-lb:
      haproxy_runtime.ready:
        - name: web1
        - backend: web

    maint-web1-on-this-lb:
      haproxy_runtime.maint:
        - name: web1
        - backend: web
"""

__virtualname__ = "haproxy_runtime"


def __virtual__():
    if "haproxy_runtime.state" in __salt__:  # noqa: F821
        return __virtualname__
    return (False, "haproxy_runtime execution module is not loaded (run saltutil.sync_modules)")


def _ret(name):
    return {"name": name, "result": False, "changes": {}, "comment": ""}


def _apply(name, backend, wanted, setter, socket, wait=False, timeout=60):
    from salt.exceptions import CommandExecutionError  # pylint: disable=import-outside-toplevel

    ret = _ret(name)
    try:
        before = __salt__["haproxy_runtime.state"](backend, name, socket=socket)  # noqa: F821
        if before["admin"] == wanted:
            if wait:
                if __opts__["test"]:  # noqa: F821
                    ret.update(result=None if before["scur"] else True,
                               comment=f"{backend}/{name} is {wanted}; would wait for {before['scur']} session(s) to end")
                    return ret
                __salt__["haproxy_runtime.wait_drained"](backend, name, timeout=timeout, socket=socket)  # noqa: F821
            ret.update(result=True, comment=f"{backend}/{name} is already {wanted}"
                       + (" and has no session" if wait else ""))
            return ret
        if __opts__["test"]:  # noqa: F821
            ret.update(result=None, changes={"admin": {"old": before["admin"], "new": wanted}},
                       comment=f"{backend}/{name} would be set {wanted} (now {before['admin']})")
            return ret
        after = __salt__[setter](backend, name, socket=socket)  # noqa: F821
        ret["changes"] = {"admin": {"old": before["admin"], "new": after["admin"]}}
        if after["admin"] != wanted:
            ret["comment"] = f"{backend}/{name} is {after['admin']} after asking for {wanted}"
            return ret
        if wait:
            __salt__["haproxy_runtime.wait_drained"](backend, name, timeout=timeout, socket=socket)  # noqa: F821
        ret.update(result=True, comment=f"{backend}/{name} set {wanted}" + (" and has no session left" if wait else ""))
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
    return ret


def drained(name, backend, wait=True, timeout=60, socket=None):
    """Server ``name`` of ``backend`` takes no new connection; with ``wait``,
    also has none left (``scur`` = 0) within ``timeout`` seconds."""
    return _apply(name, backend, "drain", "haproxy_runtime.drain", socket, wait=wait, timeout=timeout)


def ready(name, backend, socket=None):
    """Server ``name`` of ``backend`` is in rotation."""
    return _apply(name, backend, "ready", "haproxy_runtime.enable", socket)


def maint(name, backend, socket=None):
    """Server ``name`` of ``backend`` is in maintenance (no traffic, no checks)."""
    return _apply(name, backend, "maint", "haproxy_runtime.disable", socket)
