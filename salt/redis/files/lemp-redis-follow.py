#!/usr/bin/python3
"""lemp-redis-follow: before redis-server starts, follow the master the
other Sentinels name, so that a returning node never serves as a second
master.

Why: a node that was master when it stopped comes back as master, with its
old sessions, until Sentinel sees it and demotes it (up to ten seconds). In
that window HAProxy's role:master check can route PHP sessions to it, and
every session written there is lost when it resyncs from the real master.

Run as redis-server's ExecStartPre (salt/redis/init.sls): ask every other
Sentinel, over a short timeout, which address is master. When the address
most of the answering Sentinels name (at least the quorum) is another node, write
`replicaof ADDRESS PORT` into redis.conf (the line Sentinel itself rewrites),
so Redis starts as its replica. When no Sentinel answers (the whole tier is
starting) or they name this node, redis.conf is left as it is. Never fails
the start: a Sentinel that cannot be asked is a vote not cast.

    lemp-redis-follow --me 10.77.0.21 --master-name sessions --quorum 2 \
        --sentinels 10.77.0.11,10.77.0.22 --sentinel-port 26379 --config /etc/redis/redis.conf
"""

import argparse
import collections
import concurrent.futures
import ipaddress
import os
import re
import socket
import sys
import tempfile

REPLICAOF = re.compile(r"^\s*(replicaof|slaveof)\s", re.IGNORECASE)


def ask(host, port, master_name, timeout=1.0, password=""):
    """(ip, port) the Sentinel at ``host``:``port`` names as master of
    ``master_name``, or None when it does not answer or knows no master.
    With ``password``, AUTH first (the Sentinels require one); its reply
    line is dropped, and a refused AUTH leaves a NOAUTH error: no vote."""
    auth = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(password.encode()), password.encode()) if password else b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(auth + f"SENTINEL get-master-addr-by-name {master_name}\r\n".encode())
            reply = b""
            while True:
                body = reply.split(b"\r\n", 1)[1] if auth and b"\r\n" in reply else (b"" if auth else reply)
                if body.count(b"\r\n") >= 5 or body.startswith((b"-", b"*-1", b"$-1")) and body.endswith(b"\r\n"):
                    break
                chunk = conn.recv(4096)
                if not chunk:
                    break
                reply += chunk
    except (OSError, ValueError):
        return None
    if auth:
        reply = reply.split(b"\r\n", 1)[1] if b"\r\n" in reply else b""
    return parse_reply(reply.decode(errors="replace"))


def parse_reply(text):
    """(ip, port) from a RESP array of two bulk strings, else None: also
    when the address is not an IP address or the port is out of range (the
    answer is written into redis.conf as root)."""
    lines = text.split("\r\n")
    if len(lines) < 5 or lines[0] != "*2" or not lines[1].startswith("$") or not lines[3].startswith("$"):
        return None
    ip, port = lines[2], lines[4]
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return None
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return None
    return ip, int(port)


def choose(me, answers, quorum=1):
    """The master to follow: the (ip, port) most answering Sentinels name,
    when at least ``quorum`` of them name it and it is not ``me``; None to
    leave the configuration as it is (too few answers, a tie, or this node
    named), so that one stale Sentinel never decides alone."""
    votes = collections.Counter(a for a in answers if a)
    if not votes:
        return None
    ranked = votes.most_common(2)
    if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
        return None
    master, count = ranked[0]
    return None if master[0] == me or count < quorum else master


def with_replicaof(text, master):
    """``text`` (redis.conf) with one `replicaof IP PORT` line, at the end,
    in place of any replicaof/slaveof line."""
    kept = [line for line in text.splitlines() if not REPLICAOF.match(line)]
    return "\n".join(kept + [f"replicaof {master[0]} {master[1]}"]) + "\n"


def write_keeping_owner(path, text):
    st = os.stat(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".lemp-redis-follow.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chown(tmp, st.st_uid, st.st_gid)
        os.chmod(tmp, st.st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv=None):
    """Never fails the start: any error is printed, and Redis starts as
    configured (Sentinel demotes it, as it would without this script)."""
    try:
        return follow(argv)
    except SystemExit as exc:  # argparse: a bad command line
        print(f"lemp-redis-follow: bad arguments ({exc}); starting as configured")
    except Exception as exc:  # noqa: BLE001  (any error: start as configured)
        print(f"lemp-redis-follow: {type(exc).__name__}: {exc}; starting as configured")
    return 0


def follow(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--me", required=True, help="this node's address")
    p.add_argument("--master-name", required=True)
    p.add_argument("--sentinels", default="", help="the other Sentinels' addresses, comma-separated")
    p.add_argument("--sentinel-port", type=int, required=True)
    p.add_argument("--quorum", type=int, default=1, help="Sentinels that must name the same master")
    p.add_argument("--config", required=True, help="redis.conf")
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--password-file", default="", help="the Sentinels' password (requirepass), root-only file")
    args = p.parse_args(argv)
    password = ""
    if args.password_file:
        try:
            with open(args.password_file, encoding="utf-8") as handle:
                password = handle.read().strip()
        except OSError as exc:  # no vote without it: the Sentinels refuse the question
            print(f"lemp-redis-follow: cannot read {args.password_file} ({exc}); asking without a password")
    sentinels = [s for s in args.sentinels.split(",") if s]
    if not sentinels:
        print("lemp-redis-follow: starting as configured (no other Sentinel)")
        return 0
    # asked at once: a Sentinel that is down costs one timeout, not one each
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(sentinels)) as pool:
        answers = list(pool.map(lambda s: ask(s, args.sentinel_port, args.master_name, args.timeout, password), sentinels))
    named = ", ".join(f"{s}: {a[0]}:{a[1]}" if a else f"{s}: no answer" for s, a in zip(sentinels, answers))
    master = choose(args.me, answers, args.quorum)
    if master is None:
        print(f"lemp-redis-follow: starting as configured ({named})")
        return 0
    with open(args.config, encoding="utf-8") as handle:
        text = handle.read()
    wanted = with_replicaof(text, master)
    if wanted != text:
        try:
            write_keeping_owner(args.config, wanted)
        except OSError as exc:  # start anyway: Sentinel demotes it, as before this script
            print(f"lemp-redis-follow: could not write {args.config} ({exc}); starting as configured")
            return 0
    print(f"lemp-redis-follow: starting as a replica of {master[0]}:{master[1]} ({named})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
