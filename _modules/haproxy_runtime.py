"""
Drive HAProxy servers through the runtime API (the admin socket).

Used by the rolling deploy (orch/deploy.sls) to take one web node out of the
load balancers' rotation without dropping a request:

    drain        -> ``set server BE/SRV state drain``: no new connections,
                    the ones in flight finish;
    wait_drained -> poll ``show stat`` until the server's ``scur`` is 0;
    enable       -> ``set server BE/SRV state ready``;
    disable      -> ``set server BE/SRV state maint`` (also stops checks).

The socket must be declared with ``level admin``, e.g.
``stats socket /run/haproxy/admin.sock mode 660 level admin``.

Every function raises ``CommandExecutionError`` naming the backend/server and
HAProxy's answer when the socket is unreachable or a name is unknown, so that
an orchestration step fails with a readable reason.
"""

import csv
import socket as _socketlib
import time

try:
    from salt.exceptions import CommandExecutionError
except ImportError:  # pragma: no cover - tests without salt

    class CommandExecutionError(Exception):
        pass


__virtualname__ = "haproxy_runtime"

DEFAULT_SOCKET = "/run/haproxy/admin.sock"

# srv_admin_state bits (HAProxy src/server.h, SRV_ADMF_*)
_ADMF_FMAINT = 0x01  # forced maintenance (CLI / stats page)
_ADMF_IMAINT = 0x02  # inherited maintenance (tracked server)
_ADMF_CMAINT = 0x04  # maintenance from the configuration ("disabled")
_ADMF_FDRAIN = 0x08  # forced drain (CLI / stats page)
_ADMF_IDRAIN = 0x10  # inherited drain
_ADMF_RMAINT = 0x20  # maintenance: address resolution failed
_ADMF_HMAINT = 0x40  # maintenance: hostname changed
# CMAINT is not in the mask: a server declared "disabled" starts with
# FMAINT|CMAINT (5), and `set server ... state ready` clears FMAINT only; the
# server then serves with CMAINT (4) left as a marker of where its maintenance
# came from (seen with HAProxy 2.6: the scaling pool's slots, salt/haproxy).
_MAINT = _ADMF_FMAINT | _ADMF_IMAINT | _ADMF_RMAINT | _ADMF_HMAINT
_DRAIN = _ADMF_FDRAIN | _ADMF_IDRAIN

# HAProxy answers these (or starts with them) when a command is refused.
_ERROR_MARKERS = (
    "No such",
    "Unknown command",
    "Permission denied",
    "Require ",
    "unknown",
    "Invalid",
    "expects",
)


def __virtual__():
    return __virtualname__


def _sock_path(socket):
    return socket or DEFAULT_SOCKET


def command(cmd, socket=None, timeout=10):
    """Send one runtime-API command and return HAProxy's answer (text).

    CLI Example::

        salt lb1 haproxy_runtime.command 'show info'
    """
    path = _sock_path(socket)
    conn = _socketlib.socket(_socketlib.AF_UNIX, _socketlib.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(path)
        conn.sendall(cmd.encode() + b"\n")
        chunks = []
        while True:
            data = conn.recv(65536)
            if not data:
                break
            chunks.append(data)
    except OSError as exc:
        raise CommandExecutionError(
            f"haproxy runtime API: cannot talk to {path} ({exc}); is haproxy running "
            f"with 'stats socket {path} level admin'?"
        )
    finally:
        conn.close()
    return b"".join(chunks).decode(errors="replace")


def _checked(cmd, socket, what):
    answer = command(cmd, socket=socket).strip()
    if answer and any(answer.startswith(m) or m in answer.split("\n")[0] for m in _ERROR_MARKERS):
        raise CommandExecutionError(f"haproxy refused '{cmd}' for {what}: {answer}")
    return answer


def show_stat(socket=None):
    """``show stat`` as a list of dicts (one per frontend/backend/server row).

    CLI Example::

        salt lb1 haproxy_runtime.show_stat
    """
    text = command("show stat", socket=socket)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        raise CommandExecutionError(f"haproxy runtime API: unexpected 'show stat' answer: {text[:200]!r}")
    lines[0] = lines[0][2:]
    return [dict(row) for row in csv.DictReader(lines)]


def show_servers_state(backend=None, socket=None):
    """``show servers state [BACKEND]`` as a list of dicts.

    CLI Example::

        salt lb1 haproxy_runtime.show_servers_state web
    """
    cmd = "show servers state" + (f" {backend}" if backend else "")
    text = command(cmd, socket=socket)
    lines = [line for line in text.splitlines() if line.strip()]
    # line 0: format version ("1"); line 1: "# be_id be_name srv_id srv_name ..."
    header = None
    rows = []
    for line in lines:
        if line.startswith("# "):
            header = line[2:].split()
            continue
        if header is None:
            if line.strip().isdigit():
                continue
            raise CommandExecutionError(f"haproxy refused '{cmd}': {text.strip()}")
        rows.append(dict(zip(header, line.split())))
    return rows


def _server_row(backend, server, stats):
    for row in stats:
        if row.get("pxname") == backend and row.get("svname") == server:
            return row
    known = sorted({r["pxname"] for r in stats if r.get("svname") not in ("FRONTEND", "BACKEND")})
    raise CommandExecutionError(
        f"haproxy: no server {backend}/{server} (backends with servers: {', '.join(known) or 'none'})"
    )


def _state_of(backend, server, row, servers_state):
    """One server's state from its ``show stat`` row (:func:`_server_row`)
    and the ``show servers state BACKEND`` rows; see :func:`state`."""
    admin = "ready"
    for srv in servers_state:
        if srv.get("srv_name") == server:
            bits = int(srv.get("srv_admin_state", "0"))
            if bits & _MAINT:
                admin = "maint"
            elif bits & _DRAIN:
                admin = "drain"
            break
    return {
        "backend": backend,
        "server": server,
        "admin": admin,
        "status": row.get("status", ""),
        "scur": int(row.get("scur") or 0),
        "qcur": int(row.get("qcur") or 0),
        "weight": int(row.get("weight") or 0),
        "check_status": row.get("check_status", ""),
    }


def state(backend, server, socket=None):
    """The server's state: ``admin`` (ready|drain|maint), ``status`` as in
    ``show stat`` (UP, DOWN, DRAIN, MAINT, no check...), ``scur`` (current
    sessions), ``weight``, ``check_status``.

    CLI Example::

        salt lb1 haproxy_runtime.state web web1
    """
    row = _server_row(backend, server, show_stat(socket=socket))  # an unknown name is named before anything else is asked
    return _state_of(backend, server, row, show_servers_state(backend, socket=socket))


def states(backend, servers, socket=None):
    """{server: its :func:`state`} for each of ``servers`` (a list, or a
    comma-separated string), from one reading of the two tables; a server
    HAProxy does not know maps to the error's text. For a check of several
    servers at once (one call, one consistent reading).

    CLI Example::

        salt lb1 haproxy_runtime.states web web1,web2
    """
    if isinstance(servers, str):
        servers = [s for s in servers.split(",") if s]
    stats, servers_state = show_stat(socket=socket), None
    out = {}
    for server in servers:
        try:
            row = _server_row(backend, server, stats)
            if servers_state is None:
                servers_state = show_servers_state(backend, socket=socket)
            out[server] = _state_of(backend, server, row, servers_state)
        except CommandExecutionError as exc:
            out[server] = f"ERROR: {exc}"
    return out


def _set_state(backend, server, new, socket):
    _server_row(backend, server, show_stat(socket=socket))  # clear error for unknown names
    _checked(f"set server {backend}/{server} state {new}", socket, f"{backend}/{server}")
    return state(backend, server, socket=socket)


def drain(backend, server, socket=None):
    """Stop sending new connections to the server; in-flight ones finish.

    CLI Example::

        salt lb1 haproxy_runtime.drain web web1
    """
    return _set_state(backend, server, "drain", socket)


def enable(backend, server, socket=None):
    """Put the server back in rotation (``state ready``).

    CLI Example::

        salt lb1 haproxy_runtime.enable web web1
    """
    return _set_state(backend, server, "ready", socket)


def disable(backend, server, socket=None):
    """Put the server in maintenance (no traffic, no health checks).

    CLI Example::

        salt lb1 haproxy_runtime.disable web web1
    """
    return _set_state(backend, server, "maint", socket)


def wait_drained(backend, server, timeout=60, interval=0.2, socket=None):
    """Wait until the server has no current session (``scur`` = 0) nor queued
    request; raise after ``timeout`` seconds naming what is still open.

    Refuses to wait on a server that is still in rotation (``ready``): its
    sessions would never reach 0 under load.

    CLI Example::

        salt lb1 haproxy_runtime.wait_drained web web1 timeout=120
    """
    deadline = time.monotonic() + float(timeout)
    while True:
        current = state(backend, server, socket=socket)
        if current["admin"] == "ready":
            raise CommandExecutionError(
                f"haproxy: {backend}/{server} is still in rotation (ready); drain it first"
            )
        if current["scur"] == 0 and current["qcur"] == 0:
            return current
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"haproxy: {backend}/{server} still has {current['scur']} session(s) and "
                f"{current['qcur']} queued after {timeout}s"
            )
        time.sleep(float(interval))


def wait_up(backend, server, timeout=60, interval=0.2, socket=None):
    """Wait until the server is in rotation (``ready``) and its health check
    says UP; raise after ``timeout`` seconds with its last state.

    CLI Example::

        salt lb1 haproxy_runtime.wait_up web web1 timeout=30
    """
    deadline = time.monotonic() + float(timeout)
    while True:
        current = state(backend, server, socket=socket)
        if current["admin"] == "ready" and current["status"].startswith(("UP", "no check")):
            return current
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"haproxy: {backend}/{server} is not up after {timeout}s: admin {current['admin']}, "
                f"status {current['status']}, check {current['check_status']}"
            )
        time.sleep(float(interval))
