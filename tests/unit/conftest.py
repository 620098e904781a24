"""Fixtures shared by the unit tests (tests/conftest.py has the repository's)."""

import subprocess

import pytest


@pytest.fixture(scope="module")
def analyze(host_tool):
    """systemd-analyze calendar of this host, as the minion runs it: the
    ``analyze`` argument of lemp_cron.plan and lemp_backup_job.check_settings."""
    binary = host_tool("systemd-analyze")

    def run(schedule):
        proc = subprocess.run([binary, "calendar", "--", schedule], capture_output=True, text=True, timeout=30)
        return proc.returncode, proc.stdout, proc.stderr

    return run
