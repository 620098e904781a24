#!/usr/bin/python3
"""Watching the watcher: is each Zabbix server alive and processing?

Run by a systemd timer (lemp-zabbix-watchdog.timer) on a machine other than
the monitor (salt/zabbix/watchdog). One run probes each target once, then
walks a small state machine per target, kept in a JSON file:

    ok --fail--> failing(1) --fail--> ... failing(N) ==> alerted   (ONE problem mail)
    failing(k) --pass--> ok                                        (no mail: a blip)
    alerted --fail--> alerted                                      (no mail)
    alerted --pass==> ok                                           (ONE recovery mail)

A mail that cannot be sent leaves the state where it was, so the next run
tries again; nothing is lost and nothing is sent twice.

The probe proves the server works, not just the host: it asks the server's
trapper (port 10051, the Zabbix protocol, as `zabbix_get` / the
`zabbix[stats,...]` item do) for its internal statistics
(`{"request": "zabbix.stats"}`; the server answers only the addresses in
its StatsAllowedIP, which salt/zabbix/server/config.sls extends with the
watchdog's). A server answers only when its trapper processes run, which
needs its database at start-up; the history write cache's free share tells
whether the history syncers still write to the database (a full cache means
they do not). A refused connection means the host is up but the server is
not listening; a connect timeout means the host is unreachable.

Mail goes through the local MTA (SMTP on localhost:25, exim4 on this
machine), not through mon1: in the lab it lands in /var/mail/<mailbox> here;
in production exim relays to the pillar's smarthost.

Only the standard library: it runs with Debian's /usr/bin/python3.

    lemp-zabbix-watchdog.py --config /etc/lemp-ha/zabbix-watchdog.json
"""

import argparse
import email.message
import email.utils
import json
import os
import pathlib
import smtplib
import socket
import struct
import sys
import time

HEADER = b"ZBXD\x01"

OK, FAILING, ALERTED = "ok", "failing", "alerted"
PROBLEM, RECOVERY = "problem", "recovery"


# -- the Zabbix protocol (pure) -------------------------------------------------

def frame(payload):
    """A Zabbix protocol message: header, 4-byte little-endian length, 4
    reserved bytes, then the JSON payload."""
    data = json.dumps(payload).encode()
    return HEADER + struct.pack("<II", len(data), 0) + data


def unframe(raw):
    """The JSON payload of a Zabbix protocol message; ValueError when it is not one."""
    if len(raw) < 13 or not raw.startswith(HEADER):
        raise ValueError(f"not a Zabbix protocol answer ({raw[:16]!r})")
    length, _reserved = struct.unpack("<II", raw[5:13])
    body = raw[13:13 + length]
    if len(body) != length:
        raise ValueError(f"truncated Zabbix answer: {len(body)} of {length} bytes")
    return json.loads(body.decode())


# -- the probe ------------------------------------------------------------------

def ask(address, port, payload, timeout):
    """Send one request to a Zabbix trapper and return its answer, or raise
    OSError (ConnectionRefusedError, socket.timeout, ...) / ValueError."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(frame(payload))
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return unframe(b"".join(chunks))


def assess(answer, min_history_free):
    """(healthy, reason) of a zabbix.stats answer."""
    if not isinstance(answer, dict) or answer.get("response") != "success":
        info = answer.get("info") if isinstance(answer, dict) else answer
        return False, f"the server refused its statistics: {info!r} (is the watchdog in StatsAllowedIP?)"
    data = answer.get("data") or {}
    if "uptime" not in data:
        return False, f"the server's statistics carry no uptime: {sorted(data)}"
    pfree = ((data.get("wcache") or {}).get("history") or {}).get("pfree")
    if pfree is not None and float(pfree) < min_history_free:
        return False, (f"the history write cache is {100 - float(pfree):.0f}% full: the server no longer "
                       f"writes to its database")
    return True, f"up {int(data['uptime'])} s, {data.get('hosts', '?')} hosts, {data.get('items', '?')} items"


def probe(target, timeout, min_history_free):
    """(healthy, reason) of one target {name, address, port}."""
    where = f"{target['name']} ({target['address']}:{target['port']})"
    try:
        answer = ask(target["address"], target["port"], {"request": "zabbix.stats"}, timeout)
    except ConnectionRefusedError:
        return False, f"{where}: connection refused: the host is up but zabbix-server is not listening"
    except socket.timeout:
        return False, f"{where}: no answer within {timeout} s: the host or the server is down or hung"
    except (OSError, ValueError) as exc:
        return False, f"{where}: {type(exc).__name__}: {exc}"
    healthy, reason = assess(answer, min_history_free)
    return healthy, f"{where}: {reason}"


# -- the state machine (pure) -----------------------------------------------------

def step(previous, healthy, reason, threshold, now):
    """The next state of a target and the mail to send (None, PROBLEM or
    RECOVERY). A state is {status, failures, since, reason}; `since` is
    when the current failure run began."""
    state = dict(previous or {"status": OK, "failures": 0, "since": None, "reason": ""})
    if healthy:
        mail = RECOVERY if state["status"] == ALERTED else None
        return {"status": OK, "failures": 0, "since": None, "reason": reason}, mail
    failures = state["failures"] + 1
    since = state["since"] if state["status"] != OK and state["since"] else now
    if state["status"] == ALERTED:
        return {"status": ALERTED, "failures": failures, "since": since, "reason": reason}, None
    if failures >= threshold:
        return {"status": ALERTED, "failures": failures, "since": since, "reason": reason}, PROBLEM
    return {"status": FAILING, "failures": failures, "since": since, "reason": reason}, None


def unsent(previous, proposed, mail):
    """The state to keep when `mail` could not be sent: the previous one, so
    that the next run decides (and sends) again; counts still move on."""
    kept = dict(previous or {"status": OK, "failures": 0, "since": None, "reason": ""})
    if mail == PROBLEM:
        kept.update(status=FAILING, failures=proposed["failures"], since=proposed["since"],
                    reason=proposed["reason"])
    return kept


def compose(kind, target, state, config, now):
    """The e-mail for a transition of `target`."""
    msg = email.message.EmailMessage()
    name = target["name"]
    since = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(state["since"] or now))
    if kind == PROBLEM:
        msg["Subject"] = f"PROBLEM: Zabbix server on {name} is down (lemp-ha watchdog)"
        body = [f"The Zabbix server on {name} has failed {state['failures']} checks in a row, since {since}.",
                f"Last check: {state['reason']}",
                "",
                "While it is down, Zabbix sends no alert: see docs/monitoring.md, \"When mon1 is down\".",
                f"First steps: ./lab ssh {name}; systemctl status zabbix-server; "
                "tail /var/log/zabbix-server/zabbix_server.log"]
    else:
        msg["Subject"] = f"RESOLVED: Zabbix server on {name} is back (lemp-ha watchdog)"
        body = [f"The Zabbix server on {name} answers again.", f"Last check: {state['reason']}"]
    body += ["", f"-- lemp-zabbix-watchdog on {socket.gethostname()}, every {config['interval']} s, "
                 f"alerting after {config['threshold']} failed checks"]
    msg["From"] = config["mail_from"]
    msg["To"] = ", ".join(config["mail_to"])
    msg["Date"] = email.utils.formatdate(now, localtime=True)
    msg.set_content("\n".join(body) + "\n")
    return msg


# -- one run --------------------------------------------------------------------

def send(msg, config):
    with smtplib.SMTP(config.get("smtp_host", "localhost"), int(config.get("smtp_port", 25)), timeout=10) as smtp:
        smtp.send_message(msg)


def load_state(path):
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return {}


def save_state(path, states):
    path = pathlib.Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(states, indent=1, sort_keys=True))
    os.replace(tmp, path)


def run(config, probe_fn=probe, send_fn=send, now=None):
    """Probe every target, walk its state, send the mails; the new states
    and the log lines."""
    now = time.time() if now is None else now
    states = load_state(config["state_file"])
    lines = []
    for target in config["targets"]:
        previous = states.get(target["name"])
        healthy, reason = probe_fn(target, config["timeout"], config["min_history_free"])
        state, mail = step(previous, healthy, reason, config["threshold"], now)
        if mail:
            try:
                send_fn(compose(mail, target, state, config, now), config)
                lines.append(f"{target['name']}: sent the {mail} mail to {', '.join(config['mail_to'])}")
            except (OSError, smtplib.SMTPException) as exc:
                state = unsent(previous, state, mail)
                lines.append(f"{target['name']}: could not send the {mail} mail ({exc}); next run retries")
        states[target["name"]] = state
        lines.append(f"{target['name']}: {state['status']} ({state['failures']} failed) {reason}")
    save_state(config["state_file"], states)
    return states, lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="/etc/lemp-ha/zabbix-watchdog.json")
    args = p.parse_args(argv)
    config = json.loads(pathlib.Path(args.config).read_text())
    _states, lines = run(config)
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
