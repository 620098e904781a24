"""
The one judge of a web node's health answer, shared by every gate that
decides "this node is healthy, go on": orch.deploy and orch.rollback
(_runners/lemp_web.py), orch.patch (_runners/lemp_patch.py), orch.enrol
(_runners/lemp_enrol.py), ./lab up's last check (tools/lab/cmd_up.sh) and
tools/smoke-test.

What a web node answers (salt/nginx/files/healthz.php, site.conf.j2):

* healthy: 200 ``{"status": "ok", "node", "release", "check": "deep"}``
  (``"check": "shallow"`` for /healthz);
* down: 503 ``{"status": "down", ..., "reason": ...}``;
* maintenance: 200 ``{"status": "maintenance"}`` while the node's
  maintenance flag is set (orch.restore): nginx answers it without PHP, so
  that HAProxy keeps the node and users get the maintenance page. A 200, but
  not healthy for a gate: the node serves no app.

The details (node, release, check, reason) go only to the sources nginx
allows (loopback, the load balancers, nginx:lookup:health:details_from);
anyone else gets ``{"status": ...}`` alone. Every gate run by Salt asks from
an allowed source (the node's own loopback, or a load balancer), so it
requires the details: a bare ``{"status": "ok"}`` there is not the
platform's check (an app's own /healthz/deep, another nginx). Only the smoke
test from an admin workstation outside details_from accepts the public
answer (``details=False``), and says so.

    salt web1 lemp_healthz.wait https://127.0.0.1/healthz/deep insecure=True release=1.2.0
    python3 _modules/lemp_healthz.py wait https://VIP/healthz/deep --cacert ca.pem   # ./lab up

The judge is a pure function, unit-tested (tests/unit/test_healthz_judge.py);
``wait`` fetches with curl, as the gates always did (the same TLS checks,
--resolve for a node's name from a load balancer).
"""

import json
import socket
import subprocess
import sys
import time

try:
    from salt.exceptions import CommandExecutionError
except ImportError:  # the unit tests, ./lab up and the smoke test import this file without salt

    class CommandExecutionError(Exception):
        pass


__virtualname__ = "lemp_healthz"

CHECKS = ("deep", "shallow")
MAINTENANCE = ("maintenance: the node's maintenance flag is set (orch.restore, state nginx.maintenance); "
               "it serves the maintenance page, not the app")


def __virtual__():
    return __virtualname__


def _show(body, size=120):
    text = (body or "").strip()
    return repr(text[:size] + ("..." if len(text) > size else ""))


def judge(code, body, check="deep", release=None, details=True):
    """``(healthy, why)`` of one answer: HTTP ``code`` (an int, 0 for no
    answer) and its ``body``.

    Healthy only if the code is 200, the body is a JSON object with
    ``"status": "ok"`` and, with ``details`` (the caller is a source nginx
    shows the details to), ``"check"`` equals ``check`` and, when
    ``release`` is given, ``"release"`` equals it. Without ``details`` a
    bare ``{"status": "ok"}`` (the public answer) is healthy; a ``check``
    that is there must still be the right one. ``why`` is one line an
    operator can read: "ok: ...", "maintenance: ...", "down: <reason>",
    "not JSON: ...", "shallow answer ...", "no details ...".
    """
    if check not in CHECKS:
        raise ValueError(f"check {check!r} is not one of {', '.join(CHECKS)}")
    try:
        code = int(code)
    except (TypeError, ValueError):
        code = 0
    try:
        data = json.loads(body or "")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return False, f"not JSON (HTTP {code}): {_show(body)}: not a lemp-ha web node's /healthz answer"
    status = data.get("status")
    if status == "maintenance":
        return False, MAINTENANCE
    if status == "down" or (code != 200 and status != "ok"):
        reason = data.get("reason") or ("no reason shown" if status == "down" else f"status {status!r}")
        return False, f"down: {reason} (HTTP {code})"
    if code != 200:
        return False, f"down: HTTP {code} with status {status!r}"
    if status != "ok":
        return False, f"status {status!r}, not 'ok': {_show(body)}"
    seen = data.get("check")
    if seen is None:
        if details:
            return False, ("no details: the answer has no 'check' ({}): this address is not one nginx shows the "
                           "details to (loopback, the load balancers, nginx:lookup:health:details_from), or it "
                           "is not the platform's /healthz".format(_show(body)))
        return True, "ok (status only: this address does not see the details, 'check' not verified)"
    if seen != check:
        return False, f"{seen} answer: 'check' is {seen!r}, not {check!r} (the wrong /healthz location)"
    if details and release is not None and str(data.get("release")) != str(release):
        return False, f"serves release {data.get('release')!r}, not {str(release)!r}"
    shown = ", ".join(f"{key} {data[key]}" for key in ("node", "release", "check") if data.get(key) is not None)
    return True, f"ok: {shown}"


def fetch(url, cacert=None, resolve=None, insecure=False, timeout=2):
    """``(code, body)`` of GET ``url`` with curl; ``(0, curl's error)`` when
    nothing answered. ``resolve``: curl's --resolve (``name:443:address``)."""
    argv = ["curl", "-sS", "--max-time", str(timeout), "-o", "-", "-w", "\n%{http_code}"]
    if cacert:
        argv += ["--cacert", str(cacert)]
    if insecure:
        argv.append("-k")
    if resolve:
        argv += ["--resolve", str(resolve)]
    argv.append(url)
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=float(timeout) + 5, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 0, f"curl: {exc}"
    body, _, code = out.stdout.rpartition("\n")
    if out.returncode != 0 or not code.isdigit() or code == "000":
        return 0, (out.stderr.strip() or f"curl exited {out.returncode}")
    return int(code), body


def verdict(code, body, **judged):
    """``judge``, with ``no answer`` when curl got nothing."""
    if not code:
        return False, f"no answer: {body}"
    return judge(code, body, **judged)


def wait(url, check="deep", release=None, cacert=None, resolve=None, insecure=False, details=True,
         attempts=100, interval=0.3, timeout=2):
    """Ask ``url`` until :func:`judge` calls the answer healthy, up to
    ``attempts`` times ``interval`` seconds apart; return the "ok: ..." line,
    or raise CommandExecutionError with the last reason (the step fails).

    CLI Example::

        salt web1 lemp_healthz.wait https://127.0.0.1/healthz/deep insecure=True release=1.2.0
    """
    why = "not asked"
    for attempt in range(max(1, int(attempts))):
        if attempt:
            time.sleep(float(interval))
        code, body = fetch(url, cacert=cacert, resolve=resolve, insecure=insecure, timeout=timeout)
        healthy, why = verdict(code, body, check=check, release=release, details=details)
        if healthy:
            return f"{url} from {socket.gethostname()}: {why}"
    raise CommandExecutionError(f"{url} is not healthy from {socket.gethostname()} after {attempts} tries: {why}")


def _main(argv=None):
    """``lemp_healthz.py wait URL [--cacert CA] ...``: ./lab up's check.
    Exit 0 when healthy, 1 with the reason otherwise."""
    import argparse  # pylint: disable=import-outside-toplevel

    parser = argparse.ArgumentParser(prog="lemp_healthz.py", description="Wait until a lemp-ha /healthz answer "
                                     "is healthy: 200, status ok, check deep (or shallow), with the details.")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("wait")
    cmd.add_argument("url")
    cmd.add_argument("--cacert")
    cmd.add_argument("--check", choices=CHECKS, default="deep")
    cmd.add_argument("--release")
    cmd.add_argument("--attempts", type=int, default=100)
    cmd.add_argument("--interval", type=float, default=0.3)
    cmd.add_argument("--timeout", type=float, default=2)
    args = parser.parse_args(argv)
    try:
        print(wait(args.url, check=args.check, release=args.release, cacert=args.cacert, attempts=args.attempts,
                   interval=args.interval, timeout=args.timeout))
    except CommandExecutionError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
