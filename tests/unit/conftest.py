"""Fixtures shared by the unit tests (tests/conftest.py has the repository's)."""

import pathlib
import subprocess

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def analyze(host_tool):
    """systemd-analyze calendar of this host, as the minion runs it: the
    ``analyze`` argument of lemp_cron.plan and lemp_backup_job.check_settings."""
    binary = host_tool("systemd-analyze")

    def run(schedule):
        proc = subprocess.run([binary, "calendar", "--", schedule], capture_output=True, text=True, timeout=30)
        return proc.returncode, proc.stdout, proc.stderr

    return run


@pytest.fixture
def sample_app():
    """The webapp defaults merged with the sample app's pillar, as
    salt/webapp/map.jinja does: the app the PHP pool limits are computed for."""
    app = yaml.safe_load((REPO / "salt" / "webapp" / "defaults.yaml").read_text())["webapp"]
    app.update({"name": "app", "version": "1.1.0", "source": {"path": "salt://app"}, "docroot": "public"})
    return app
