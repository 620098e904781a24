#!py
"""The pillar key `topology`: pillar/topology.yaml validated, with what
follows from it and from pillar/roles.yaml (members by role, the master,
server ids, garbd, tiers, the scaling pool). Formulas and orchestrations only
read it; see _modules/lemp_topology.py."""

import importlib.util
import os


def run():
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("lemp_pillar_derived", os.path.join(here, "_derived.py"))
    derived = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(derived)
    return {"topology": derived.derived_topology()}
