#!py
"""Pillar `app_deployed`: the release orch.deploy / orch.rollback last made
current, per app name, with a fingerprint of the version and source
pillar/app.sls named then (`base`); orch.site's first step spends it once the
pillar has moved away from `base` (runner lemp_web.spend).
Written on the master by the runner lemp_web.record_deployed into
/var/lib/lemp-ha/deployed.json (master option lemp_ha_deployed_record), read
here at every pillar render; salt/webapp/map.jinja decides with it
(_modules/lemp_release.py effective_app). Roles web and master."""

import importlib.util
import os


def run():
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "lemp_pillar_release", os.path.join(here, os.pardir, "_modules", "lemp_release.py"))
    release = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(release)
    path = __opts__.get(release.OPTION) or release.RECORD_PATH  # noqa: F821  (injected by the renderer)
    return {"app_deployed": release.read_record(path)}
