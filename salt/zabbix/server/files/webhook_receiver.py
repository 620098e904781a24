#!/usr/bin/python3
"""Lab only: a webhook receiver that appends each POST body, one JSON line
per request, to a file (tests/lab/test_monitoring_ops.py reads it). Applied
by salt/zabbix/server/webhook_receiver.sls when pillar
zabbix:lookup:server:webhook_receiver:enabled is true. Listens on loopback:
the Zabbix server on the same machine is its only client."""

import argparse
import http.server
import json
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the stdlib's name)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 65536)).decode("utf-8", "replace")
            with open(args.log, "a", encoding="utf-8") as out:
                out.write(json.dumps({"time": int(time.time()), "path": self.path, "body": body}) + "\n")
            self.send_response(204)
            self.end_headers()

    http.server.HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
