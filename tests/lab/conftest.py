"""The lab fixture: real machines, reached only over the lab bridge.

Every test here talks to the running Vagrant lab through the lab driver
(tools/lab/lemplab.py). Before anything is sent, `lab` checks that each lab
address is routed through the lab bridge: while the lab is down those
addresses are routed out of this machine, and no traffic may go there.
"""

import pytest

import lemplab
from lab_guard import (  # noqa: F401 (hooks: a failure's reason at once, a deadline, time per module)
    pytest_runtest_makereport, pytest_sessionstart, pytest_terminal_summary)


@pytest.fixture(scope="session")
def lab(topology):
    lab = lemplab.Lab(topology)
    try:
        lab.require_up()
    except lemplab.LabNotUp as exc:
        pytest.exit(str(exc), returncode=3)
    return lab


@pytest.fixture(scope="module")
def autoscaling_paused(lab):
    """Autoscaling paused for the module (salt-run lemp_scale.pause), as an
    operator would while booting or removing pool VMs by hand: otherwise the
    lab's short settings let Zabbix's low-load trigger scale in a node the
    test just booted (the light test load is below the low threshold)."""
    code, data = lab.salt_run("lemp_scale.pause", "reason=lab test by hand", "minutes=60")
    assert code == 0, data
    yield
    code, data = lab.salt_run("lemp_scale.resume")
    assert code == 0, data


def pytest_collection_modifyitems(items):
    # The check that `./lab up`'s orch.site converged runs first, before any
    # test changes a machine. Tests that replace the database (restores) run
    # after the others, so that a failure there cannot fail every later test;
    # the teardown test destroys the lab, so it runs after everything else.
    # The sort keeps file order within each group.
    items.sort(key=lambda item: (item.get_closest_marker("destroys_lab") is not None,
                                 item.get_closest_marker("replaces_data") is not None,
                                 item.get_closest_marker("right_after_up") is None))


def pytest_configure(config):
    config.addinivalue_line("markers", "right_after_up: checks what `./lab up` left; runs first")
    config.addinivalue_line("markers", "destroys_lab: tears the lab down; runs last, only in CI")
    config.addinivalue_line("markers", "replaces_data: restores the database; runs after the other lab tests")
