"""Shared fixtures: the repository, and the topology every test reads.
The lab driver (tools/lab/lemplab.py) and the topology validator are importable."""

import pathlib
import shutil
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "_modules"))
sys.path.insert(0, str(REPO / "tools" / "lab"))

import lemp_topology  # noqa: E402  (after the path set-up above)


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="session")
def topology():
    return lemp_topology.load(REPO / "pillar" / "topology.yaml")


@pytest.fixture(scope="session")
def host_tool():
    """host_tool("NAME"): the path of a host program a test runs. A missing
    one fails the test, never skips it: ./lab test installs every host
    package the tests use (TEST_HOST_PACKAGES in tools/lab/prereqs.sh), and
    tools/lab/host_requirements.py finds these names to check them on a
    fresh Debian 12 root."""

    def find(name):
        path = shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        if not path:
            pytest.fail(f"{name} is not installed on this host: ./lab test installs it "
                        "(TEST_HOST_PACKAGES in tools/lab/prereqs.sh)")
        return path

    return find
