"""Acceptance of the log forwarding (issue 10, item 8), on the lab.

Every machine forwards its logs to mon1 (salt/rsyslog); mon1 keeps them in
/var/log/remote/<host>/<program>.log and Zabbix watches error patterns
there (template "lemp-ha Central logs"). A request through the VIP is read
back from mon1's copies; a PHP fatal error opens the Zabbix problem. Talks
to Zabbix only through its API (zabbix_utils) over HTTPS trusting the lab
CA. What a test adds (a PHP file on the web nodes, a problem) it removes.
"""

import pathlib
import uuid

import yaml

from lemplab import wait_for
from test_monitoring import mon1, zabbix  # noqa: F401  (shared fixtures)
from web_helpers import base_url

REPO = pathlib.Path(__file__).resolve().parents[2]
RSYSLOG = yaml.safe_load((REPO / "salt" / "rsyslog" / "defaults.yaml").read_text())["rsyslog"]
REMOTE = RSYSLOG["server"]["directory"]
FORWARDED = 60  # seconds: a line reaches mon1's copy within this
PROBLEM = 120   # seconds: the log item's problem opens within this


def hosts_whose_copy_holds(lab, mon1, program, marker):
    """Machines whose /var/log/remote/<host>/<program>.log on mon1 holds marker."""
    out = lab.run(mon1, f"grep -l -F -- {marker} {REMOTE}/*/{program}.log || true").stdout
    return sorted(pathlib.PurePosixPath(line).parent.name for line in out.split())


def test_a_request_through_the_vip_is_in_mons_copies_of_the_haproxy_and_nginx_access_logs(lab, mon1):
    lab.require_up()
    marker = f"lemp-ha-logtest-{uuid.uuid4().hex}"
    lab.http.get(f"{base_url(lab)}/{marker}", timeout=5)  # the app answers 404; the logs have it

    def copied():
        copied.last = {"haproxy": hosts_whose_copy_holds(lab, mon1, "haproxy", marker),
                       "nginx-access": hosts_whose_copy_holds(lab, mon1, "nginx-access", marker)}
        return all(copied.last.values())

    wait_for(copied, FORWARDED, f"{marker} in mon1's copies of haproxy.log and nginx-access.log")
    assert set(copied.last["haproxy"]) <= set(lab.with_role("lb")), copied.last
    assert set(copied.last["nginx-access"]) <= set(lab.with_role("web")), copied.last
    # readable by the log group only, not by everyone on mon1
    host = copied.last["nginx-access"][0]
    mode = lab.run(mon1, f"stat -c '%U %G %a' {REMOTE}/{host}/nginx-access.log").stdout.split()
    assert mode == ["root", RSYSLOG["server"]["group"], "640"], mode


# The `root` of a server block itself, not one inside a location (the
# maintenance page's `location @lemp_maintenance` has its own root): awk
# counts the braces, and a server-level directive is at depth 1.
SERVER_ROOT = ("awk '$1 == \"root\" && depth == 1 {sub(/;.*/, \"\", $2); print $2; exit} "
               "{depth += gsub(/{/, \"{\"); depth -= gsub(/}/, \"}\")}' /etc/nginx/sites-enabled/*")


def release_public_dirs(lab, webs):
    """The folder nginx serves on each web node: its site's `root`, resolved
    (the master masks pillar values in its answers, so not from pillar)."""
    dirs = {}
    for web in webs:
        root = lab.run(web, SERVER_ROOT).stdout.strip()
        served = lab.run(web, f"readlink -f {root}").stdout.strip() if root else ""
        assert served, f"{web}: no document root in /etc/nginx/sites-enabled"
        dirs[web] = served
    return dirs


def php_fatal_problems(zabbix, hostid, since=0):
    return [p for p in zabbix.problem.get(output=["eventid", "name", "clock"], hostids=hostid)
            if "PHP fatal error" in p["name"] and int(p["clock"]) >= since]


def test_a_php_fatal_error_opens_the_php_fatal_error_problem(lab, zabbix, mon1):
    lab.require_up()
    webs = lab.with_role("web")
    marker = f"lemp_ha_logtest_{uuid.uuid4().hex}"
    script = f"{marker}.php"
    host = zabbix.host.get(output=["hostid"], filter={"host": mon1})[0]
    # One problem per trigger (it stays open 10 minutes after the last
    # error): an older one, from an earlier run, is closed first.
    older = [p["eventid"] for p in php_fatal_problems(zabbix, host["hostid"])]
    if older:
        zabbix.event.acknowledge(eventids=older, action=1, message="lemp-ha lab test: closed before the check")
        wait_for(lambda: not php_fatal_problems(zabbix, host["hostid"]), 60, "older PHP fatal problems closed",
                 interval=2)
    started = int(lab.run(mon1, "date +%s").stdout)
    dirs = release_public_dirs(lab, webs)
    opened = []
    try:
        # on every web node: the VIP may send the request to any of them
        for web, folder in dirs.items():
            lab.run(web, f"printf '<?php {marker}();\\n' > {folder}/{script} && chmod 0644 {folder}/{script}")
        resp = lab.http.get(f"{base_url(lab)}/{script}", timeout=5)
        assert resp.status_code == 500, (resp.status_code, resp.text[:200])

        def problem():
            problem.last = php_fatal_problems(zabbix, host["hostid"], since=started)
            return problem.last

        wait_for(problem, PROBLEM, "the 'PHP fatal error on a web node' problem on mon1", interval=5)
        opened = [p["eventid"] for p in problem.last]
        # staff read the line, with its node, in the item's last value and in mon1's copy
        items = zabbix.item.get(output=["lastvalue"], hostids=host["hostid"],
                                search={"key_": "_watched/php"})
        assert any(marker in i["lastvalue"] for i in items), items
        assert hosts_whose_copy_holds(lab, mon1, "nginx-error", marker), "not in mon1's nginx-error.log copies"
    finally:
        for web, folder in dirs.items():
            lab.run(web, f"rm -f {folder}/{script}", check=False)
        if opened:
            zabbix.event.acknowledge(eventids=opened, action=1, message="lemp-ha lab test: closed after the check")
