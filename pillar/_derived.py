"""The derived topology for the pillar files written in Python (topology.sls,
top.sls): the repo's validator, loaded fresh from this checkout at every
render, so that a long-running master never serves a stale copy."""

import importlib.util
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def derived_topology():
    path = os.path.join(HERE, os.pardir, "_modules", "lemp_topology.py")
    spec = importlib.util.spec_from_file_location("lemp_topology_for_pillar", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load(os.path.join(HERE, "topology.yaml"), os.path.join(HERE, "roles.yaml"))
