"""The release orch.deploy made current survives the next highstate (issue 9):
orch.deploy records it on the master (/var/lib/lemp-ha/deployed.json, pillar
app_deployed) and salt/webapp/map.jinja keeps it while pillar/app.sls still
names the version and source it named at the deploy; once orch.site has seen
pillar/app.sls move away, the record is spent: reverting the pillar does not
bring the deployed release back.

Needs the lab up (./lab up). Puts the lab back as it found it: the release
that was current, and the master's record as it was.

orch.site runs twice (each about 80 s on the lab): after the deploy, and
after the pillar moved away, the two claims about orch.site itself (it
keeps the deployed release; it spends the record). The revert is applied by
the highstate orch.site gives the web tier, all that a revert changes once
the record is spent.
"""

import json
import pathlib
import re
import shlex
import time

from web_helpers import nodes_and_versions, salt_ret, wait_web_up_on_all_lbs, web_names

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


def highstate_web_tier(lab, webs):
    """orch.site's apply-highstate-on-web-tier step on its own: a highstate
    of every web node at once, which must succeed."""
    # --timeout: without it the salt CLI may stop waiting for a busy minion
    # (its find_job answer late) and print no return for it; this test then
    # read web1's release while web1's highstate was still running (CI
    # rehearsal 5 and this session: the switch ran after the CLI returned).
    result = lab.salt("--timeout=900", "-L", ",".join(webs), "state.highstate", timeout=960)
    for web in webs:
        assert web in result, f"{web}: no return from its highstate: {result}"
        ret = salt_ret(result, web)
        assert isinstance(ret, dict), f"{web}: the highstate did not run: {ret}"
        failed = {key: st.get("comment") for key, st in ret.items() if isinstance(st, dict) and st.get("result") is False}
        assert not failed, (web, failed)


def test_a_deployed_version_stays_current_after_orch_site_until_the_pillar_moves_on(lab):
    """pillar P; orch.deploy D (base P); orch.site: D stays current. Pillar
    edited to M and applied by orch.site: M, and the record is spent; pillar
    reverted to P: the web nodes run P, not D. One deploy for both claims:
    each orch.deploy is a rolling deploy of every web node."""
    webs = web_names(lab)
    before = {web: current_release(lab, web) for web in webs}
    assert len(set(before.values())) == 1, before
    record_before = read_record(lab)
    original = APP_PILLAR.read_text()
    pillar_version = re.search(r"^  version: *(\S+)$", original, re.M).group(1)
    stamp = int(time.time())
    deployed, moved = f"7.{stamp}", f"8.{stamp}"
    try:
        # No Zabbix maintenance window (pillar maintenance: false, a path a
        # user has too): the record is the claim here, the window is
        # test_monitoring_ops.py's, and opening and closing it costs time.
        ok, detail = lab.orchestrate("orch.deploy", {"app": {"version": deployed}, "maintenance": False})
        assert ok, detail
        record = json.loads(read_record(lab) or "{}")
        assert record.get("app", {}).get("version") == deployed, record
        ok, detail = lab.orchestrate("orch.site")
        assert ok, detail
        for web in webs:
            assert current_release(lab, web) == f"releases/{deployed}", web
            assert healthz_release(lab, web) == deployed, web
        assert set(nodes_and_versions(lab, 6).values()) == {deployed}

        # quoted: unquoted, YAML reads 8.1795702970 as the float 8.179570297
        APP_PILLAR.write_text(re.sub(r"^  version: .*$", f"  version: '{moved}'", original, flags=re.M))
        ok, detail = lab.orchestrate("orch.site")
        assert ok, detail
        assert "version" not in json.loads(read_record(lab) or "{}").get("app", {}), "the record is spent"
        assert {current_release(lab, web) for web in webs} == {f"releases/{moved}"}
        APP_PILLAR.write_text(original)
        # The record is spent (above): orch.site's other steps have nothing
        # left to do with it, and the web tier's highstate is what decides
        # which release runs (salt/webapp/map.jinja).
        highstate_web_tier(lab, webs)
        for web in webs:
            assert current_release(lab, web) == f"releases/{pillar_version}", web
            assert healthz_release(lab, web) == pillar_version, web
    finally:
        APP_PILLAR.write_text(original)
        restore_record(lab, record_before)
        if {web: current_release(lab, web) for web in webs} != before:
            ok, detail = lab.orchestrate("orch.site")
            assert ok, detail
        for web in webs:
            wait_web_up_on_all_lbs(lab, web, timeout=120)
        assert {web: current_release(lab, web) for web in webs} == before
