#!/usr/bin/python3
"""galera-health: tells a load balancer whether this Galera node may take
writes.

HTTP 200 only when the node is Synced (wsrep_local_state 4) in a Primary
component, wsrep_ready is ON, the server is not read_only and not desynced
on purpose (wsrep_desync OFF); 503 otherwise, including when MariaDB does not
answer within the timeout.

Donor/Desynced (wsrep_local_state 2) with wsrep_desync OFF is healthy too,
as Percona's clustercheck does with AVAILABLE_WHEN_DONOR: Galera shows that
state for a moment while mariabackup holds BACKUP STAGE BLOCK_COMMIT, and
for the whole of a mariabackup SST on the donor. Both keep serving; a 503
then made HAProxy move the writer at every backup (seen in the lab). A node
desynced on purpose (wsrep_desync ON: the backup of a non-writer) stays 503. Any path, GET or HEAD. The body says why, for humans.

Runs as an unprivileged system user that MariaDB authenticates by unix_socket
(the account has no privilege beyond USAGE). Stdlib only: the mariadb client
is called with a timeout; an answer is reused for --cache-seconds (a
quarter of a second by default) so that many checkers cannot overload the
server, while a state change still reaches HAProxy quickly.
"""

import argparse
import http.server
import subprocess
import sys
import threading
import time

QUERY = (
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state', 'wsrep_ready',"
    " 'wsrep_cluster_status');"
    " SHOW GLOBAL VARIABLES WHERE Variable_name IN ('read_only', 'wsrep_desync', 'wsrep_on');"
)


def evaluate(values):
    """(healthy, reason) from lower-cased status/variable values."""
    checks = [
        ("wsrep_on", ("ON",)),
        ("wsrep_cluster_status", ("Primary",)),
        ("wsrep_local_state", ("4", "2")),  # Synced, or Donor/Desynced by mariabackup (see above)
        ("wsrep_ready", ("ON",)),
        ("read_only", ("OFF",)),
        ("wsrep_desync", ("OFF",)),
    ]
    for name, wanted in checks:
        if values.get(name) not in wanted:
            return False, f"{name} is {values.get(name)!r}, needs {' or '.join(map(repr, wanted))}"
    return True, "synced" if values.get("wsrep_local_state") == "4" else "donor/desynced by mariabackup, serving"


class Checker:
    def __init__(self, client, timeout, cache_seconds=0.25):
        self.client = client
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.lock = threading.Lock()
        self.last = (0.0, False, "not checked yet")

    def check(self):
        with self.lock:
            at, healthy, reason = self.last
            if time.monotonic() - at < self.cache_seconds:
                return healthy, reason
            healthy, reason = self._query()
            self.last = (time.monotonic(), healthy, reason)
            return healthy, reason

    def _query(self):
        cmd = [self.client, "--batch", "--skip-column-names",
               f"--connect-timeout={max(1, int(self.timeout))}", "-e", QUERY]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            return False, f"MariaDB did not answer within {self.timeout}s"
        except OSError as exc:
            return False, f"cannot run {self.client}: {exc}"
        if res.returncode != 0:
            return False, "MariaDB query failed: " + res.stderr.strip()[-200:]
        values = {}
        for line in res.stdout.splitlines():
            name, _, value = line.partition("\t")
            values[name.strip().lower()] = value.strip()
        return evaluate(values)


def make_handler(checker):
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "galera-health/1"
        timeout = 5  # a stalled client does not hold a thread

        def _answer(self, body=True):
            healthy, reason = checker.check()
            payload = (("OK " if healthy else "DOWN ") + reason + "\n").encode()
            self.send_response(200 if healthy else 503)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            if body:
                self.wfile.write(payload)

        def do_GET(self):  # noqa: N802
            self._answer()

        def do_OPTIONS(self):  # noqa: N802  (HAProxy's default httpchk method)
            self._answer()

        def do_HEAD(self):  # noqa: N802
            self._answer(body=False)

        def log_message(self, fmt, *args):
            pass  # one line per check would flood the journal

    return Handler


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--client", default="/usr/bin/mariadb")
    parser.add_argument("--cache-seconds", type=float, default=0.25)
    args = parser.parse_args(argv)
    checker = Checker(args.client, args.timeout, args.cache_seconds)
    server = http.server.ThreadingHTTPServer((args.bind, args.port), make_handler(checker))
    server.daemon_threads = True
    print(f"galera-health listening on {args.bind}:{args.port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
