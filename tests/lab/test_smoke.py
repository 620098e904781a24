"""The on-premises procedure's smoke test, run against the lab (issue #15):
the command docs/install/on-prem.md quotes, with the lab's values in place of
SITE, CA_FILE, MON1, LB1 and LB2, exits 0 and prints what a user sees."""

import re
import shlex
import subprocess
import sys

SMOKE = "tools/smoke-test"


def on_prem_command(repo):
    text = (repo / "docs" / "install" / "on-prem.md").read_text()
    commands = [line.strip() for line in text.splitlines() if line.strip().startswith(SMOKE + " ")]
    assert len(commands) == 1, commands
    return commands[0]


def test_the_on_prem_smoke_test_passes_against_the_lab(lab, repo):
    values = {"SITE": lab.vip, "CA_FILE": lab.ca_cert_path,
              "MON1": lab.machines[lab.with_role("monitor")[0]]["address"],
              "LB1": lab.machines[lab.with_role("lb")[0]]["address"],
              "LB2": lab.machines[lab.with_role("lb")[1]]["address"]}
    # every address the command reaches is routed over the lab bridge (the script checks it too)
    for address in values.values():
        if address != lab.ca_cert_path:
            lab.require_route(address)
    argv = [re.sub(r"\b(SITE|CA_FILE|MON1|LB1|LB2)\b", lambda m: values[m.group(1)], arg)
            for arg in shlex.split(on_prem_command(repo))]
    out = subprocess.run([sys.executable, str(repo / argv[0]), *argv[1:]], capture_output=True, text=True,
                         timeout=120, cwd=repo)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout
    assert f"smoke test of https://{lab.vip}/" in lines
    assert re.search(rf"ok +app page +https://{re.escape(lab.vip)}/ -> 200", lines), lines
    assert re.search(rf"ok +health +https://{re.escape(lab.vip)}/healthz/deep -> 200, status 'ok'", lines), lines
    assert re.search(rf"ok +HTTP to HTTPS +http://{re.escape(lab.vip)}/ -> 301 to https://{re.escape(lab.vip)}/",
                     lines), lines
    assert re.search(r"ok +Zabbix UI .*-> 200, the sign-in page", lines), lines
    assert len(re.findall(r"ok +HAProxy stats .*:8404/ -> 401, asks for a login", lines)) == 2, lines
    assert "all 6 checks passed" in lines
