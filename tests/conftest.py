"""Shared fixtures: the repository, and the topology every test reads.
The lab driver (tools/lab/lemplab.py) and the topology validator are importable."""

import pathlib
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
