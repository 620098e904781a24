#!py
"""Pillar by role: every machine gets `topology`, then the pillar files its
roles declare in pillar/roles.yaml. Secrets come from
/srv/lemp-ha-secrets/minions/<id>.sls on the master: GPG-encrypted, one file
per machine holding only what its roles use (pillar/secrets.spec.yaml)."""

import importlib.util
import os


def run():
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("lemp_pillar_derived", os.path.join(here, "_derived.py"))
    derived = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(derived)
    topology = derived.derived_topology()
    base = {"*": ["topology", "enrolled", "ports"]}
    # The pool's VMs (scaling.web.pool) get their role's pillars like any machine.
    for name, machine in sorted({**topology["machines"], **topology.get("pool_machines", {})}.items()):
        if machine["pillars"]:
            base[name] = list(machine["pillars"])
    # The same minion again, as a compound target so that the keys differ.
    base[f"L@{__grains__['id']}"] = [  # noqa: F821  (injected by the renderer)
        {"match": "compound"}, {"ignore_missing": True}, f"minions.{__grains__['id']}"]  # noqa: F821
    return {"base": base}
