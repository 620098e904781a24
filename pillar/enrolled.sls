#!py
"""Pillar `scaling:enrolled`: the pool members orch.enrol has enrolled, by
name, for every machine (the load balancers enable their HAProxy slot, the
monitor makes them Zabbix hosts). Written on the master by the runner
lemp_enrol (record/remove) into /var/lib/lemp-ha/enrolled.json (master
option lemp_ha_enrolled_store), read here at every pillar render.

A pillar file rather than an ext_pillar: it is rendered on the master,
where the store lives, with the checkout's own reader (no sync step, as
pillar/deployed.sls), and the render tests serve it like any other file."""

import importlib.util
import os


def run():
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "lemp_pillar_enrol", os.path.join(here, os.pardir, "_runners", "lemp_enrol.py"))
    enrol = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(enrol)
    store = enrol.read_store(enrol.store_path(__opts__))  # noqa: F821  (injected by the renderer)
    return {"scaling": {"enrolled": enrol.member_names(store)}}
