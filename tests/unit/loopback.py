"""Loopback ports for the unit tests' real daemons (haproxy, redis, a
backend): one helper, so that no two listeners of a run share a port."""

import socket

_handed_out = set()


def free_port():
    """A loopback TCP port nothing listens on, never the same one twice in a
    run. The kernel may hand a port it just gave out, once closed, to the
    next caller: test_edge's http and stats listeners once got the same one,
    and the stats page answered with the http redirect."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
