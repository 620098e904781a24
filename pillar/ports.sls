#!py
"""The pillar key `ports`: pillar/ports.yaml (what each role serves, and who
may reach it) validated against the derived topology by
_modules/lemp_firewall.py, so that a bad declaration stops the pillar with
the key at fault instead of writing a firewall. salt/firewall reads it
through lemp_firewall.ruleset."""

import importlib.util
import os

import yaml


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run():
    here = os.path.dirname(os.path.abspath(__file__))
    derived = _load("lemp_pillar_derived", os.path.join(here, "_derived.py"))
    firewall = _load("lemp_firewall_for_pillar", os.path.join(here, os.pardir, "_modules", "lemp_firewall.py"))
    topology = derived.derived_topology()
    with open(os.path.join(here, "ports.yaml"), encoding="utf-8") as handle:
        declared = yaml.safe_load(handle)
    return {"ports": firewall.check_services(declared, topology)}
