"""Shared fixtures: the repository, and the topology every test reads."""

import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "_modules"))

import lemp_topology  # noqa: E402  (after the path set-up above)


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="session")
def topology():
    return lemp_topology.load(REPO / "pillar" / "topology.yaml")
