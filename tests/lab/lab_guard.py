"""pytest hooks for the lab tests: say why a test failed the moment it
fails, and stop the run at a deadline.

A broken lab makes every later test wait out its own timeouts. CI then
runs into its job limit and is killed before pytest prints a single
failure (stop 25: 60% of the lab tests in 90 minutes, no reason shown).
So:
- each failure prints one line at once: the test, the phase, the error;
- after LEMP_HA_LAB_TESTS_DEADLINE seconds (default 4200; the suite
  takes 35-50 minutes) no further test starts, and pytest ends
  normally: its summary, then ./lab test's verdicts and the lab's
  teardown still run;
- at the end, the time each test module took (setup, call and teardown),
  longest first: where the suite's time budget goes.
tests/lab/conftest.py imports the hooks.
"""

import os
import time

import pytest

DEADLINE_ENV = "LEMP_HA_LAB_TESTS_DEADLINE"
DEFAULT_DEADLINE = 4200  # seconds of lab tests: CI kills the whole job at 5400 s, lab up included
REASON_CHARS = 600

_started = time.monotonic()


def deadline_seconds(environ=os.environ):
    """The deadline from the environment, else the default. A value that is
    not a number of seconds is an error, not a silent default."""
    raw = environ.get(DEADLINE_ENV, "").strip()
    if not raw:
        return DEFAULT_DEADLINE
    try:
        value = float(raw)
    except ValueError:
        raise pytest.UsageError(f"{DEADLINE_ENV}={raw!r}: expected a number of seconds") from None
    if value < 0:
        raise pytest.UsageError(f"{DEADLINE_ENV}={raw!r}: expected a number of seconds >= 0")
    return value


def failure_reason(report):
    """One line: the error pytest will show in full at the end."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = getattr(crash, "message", None)
    if not text:  # a skip's tuple, a collection error's text
        lines = str(report.longrepr or "").strip().splitlines()
        text = lines[-1] if lines else "?"
    line = " ".join(text.split())
    return line if len(line) <= REASON_CHARS else line[:REASON_CHARS] + " ..."


def pytest_sessionstart(session):
    global _started
    _started = time.monotonic()
    session.config._lab_deadline = deadline_seconds()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        terminal = item.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.write_line("")
            terminal.write_line(f"{report.when.upper()} FAILED {item.nodeid}: {failure_reason(report)}", red=True)
    spent = item.config.__dict__.setdefault("_lab_module_seconds", {})
    module = item.nodeid.split("::", 1)[0]
    spent[module] = spent.get(module, 0.0) + report.duration
    if report.when == "teardown":
        deadline = getattr(item.config, "_lab_deadline", DEFAULT_DEADLINE)
        elapsed = time.monotonic() - _started
        if elapsed >= deadline and not item.session.shouldstop:
            item.session.shouldstop = (f"the lab tests ran {elapsed:.0f} s, past their deadline of {deadline:.0f} s "
                                       f"({DEADLINE_ENV}): no further test starts")


def module_times(spent, total):
    """Lines of the time per module, longest first, with its share."""
    lines = [f"{seconds:7.0f} s {100 * seconds / total if total else 0:5.1f}%  {module}"
             for module, seconds in sorted(spent.items(), key=lambda kv: -kv[1])]
    return lines + [f"{total:7.0f} s in all"]


def pytest_terminal_summary(terminalreporter, config):
    spent = getattr(config, "_lab_module_seconds", None)
    if spent:
        terminalreporter.section("lab test time per module (setup, call, teardown)")
        for line in module_times(spent, sum(spent.values())):
            terminalreporter.write_line(line)
