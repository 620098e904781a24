"""The release orch.deploy made current survives the next highstate (issue 9):
orch.deploy records it on the master (/var/lib/lemp-ha/deployed.json, pillar
app_deployed) and salt/webapp/map.jinja keeps it while pillar/app.sls still
names the version and source it named at the deploy; once orch.site has seen
pillar/app.sls move away, the record is spent: reverting the pillar does not
bring the deployed release back.

Needs the lab up (./lab up). Puts the lab back as it found it: the release
that was current, and the master's record as it was.
"""

import json
import pathlib
import re
import shlex
import time

from web_helpers import nodes_and_versions, wait_web_up_on_all_lbs, web_names

APP_PILLAR = pathlib.Path(__file__).resolve().parents[2] / "pillar" / "app.sls"
APP_DIR = "/srv/www/app"
RECORD = "/var/lib/lemp-ha/deployed.json"
HEALTHZ = "curl -ksS --max-time 5 https://127.0.0.1/healthz"


def current_release(lab, web):
    return lab.run(web, f"readlink {APP_DIR}/current").stdout.strip()


def healthz_release(lab, web):
    out = lab.run(web, HEALTHZ, check=False).stdout
    try:
        return json.loads(out).get("release")
    except ValueError:
        return f"no JSON from /healthz: {out[:200]}"


def read_record(lab):
    proc = lab.run(lab.master, f"cat {RECORD}", check=False)
    return proc.stdout if proc.returncode == 0 else None


def restore_record(lab, text):
    if text is None:
        lab.run(lab.master, f"rm -f {RECORD}")
    else:
        lab.run(lab.master, f"printf %s {shlex.quote(text)} > {RECORD}.tmp && chmod 600 {RECORD}.tmp"
                            f" && mv {RECORD}.tmp {RECORD}")


def test_a_deployed_version_stays_current_after_orch_site(lab):
    webs = web_names(lab)
    before = {web: current_release(lab, web) for web in webs}
    assert len(set(before.values())) == 1, before
    original = next(iter(before.values())).split("/", 1)[1]
    record_before = read_record(lab)
    version = f"7.{int(time.time())}"
    try:
        ok, detail = lab.orchestrate("orch.deploy", {"app": {"version": version}})
        assert ok, detail
        record = json.loads(read_record(lab) or "{}")
        assert record.get("app", {}).get("version") == version, record

        ok, detail = lab.orchestrate("orch.site")
        assert ok, detail
        for web in webs:
            assert current_release(lab, web) == f"releases/{version}", web
            assert healthz_release(lab, web) == version, web
        assert set(nodes_and_versions(lab, 6).values()) == {version}
    finally:
        ok, detail = lab.orchestrate("orch.deploy", {"app": {"version": original}})
        restore_record(lab, record_before)
        for web in webs:
            wait_web_up_on_all_lbs(lab, web, timeout=120)
        assert ok, detail
        assert {web: current_release(lab, web) for web in webs} == before


def test_a_pillar_reverted_to_the_deploys_base_runs_the_pillars_release_not_the_deployed_one(lab):
    # pillar P; orch.deploy D (base P); pillar edited to M and applied by
    # orch.site; pillar reverted to P: the web nodes run P, not D.
    webs = web_names(lab)
    before = {web: current_release(lab, web) for web in webs}
    record_before = read_record(lab)
    original = APP_PILLAR.read_text()
    pillar_version = re.search(r"^  version: *(\S+)$", original, re.M).group(1)
    stamp = int(time.time())
    deployed, moved = f"7.{stamp}", f"8.{stamp}"
    try:
        ok, detail = lab.orchestrate("orch.deploy", {"app": {"version": deployed}})
        assert ok, detail
        APP_PILLAR.write_text(re.sub(r"^  version: .*$", f"  version: {moved}", original, flags=re.M))
        ok, detail = lab.orchestrate("orch.site")
        assert ok, detail
        assert "version" not in json.loads(read_record(lab) or "{}").get("app", {}), "the record is spent"
        assert {current_release(lab, web) for web in webs} == {f"releases/{moved}"}
        APP_PILLAR.write_text(original)
        ok, detail = lab.orchestrate("orch.site")
        assert ok, detail
        for web in webs:
            assert current_release(lab, web) == f"releases/{pillar_version}", web
            assert healthz_release(lab, web) == pillar_version, web
    finally:
        APP_PILLAR.write_text(original)
        restore_record(lab, record_before)
        ok, detail = lab.orchestrate("orch.site")
        for web in webs:
            wait_web_up_on_all_lbs(lab, web, timeout=120)
        assert ok, detail
        assert {web: current_release(lab, web) for web in webs} == before
