"""Monitoring of the backup store (issue #11 item 5, issue #10), on the lab.

The agent on the backup machine reads lemp-backup's status file (0640
lemp-backup:zabbix, nobody else), the template "lemp-ha backup store" has
fresh values, and a stopped binlog archiver raises the archive-lag problem,
which resolves when it runs again.

Needs the lab up with orch.site applied, as tests/lab/test_monitoring.py
(whose `mon1` and `zabbix` fixtures these tests share). The archiver is
started again in `finally`: it resumes from its store, so nothing is lost.
"""

import json
import time

import yaml

from lemplab import wait_for
from test_monitoring import REPO, mon1, zabbix  # noqa: F401  (shared fixtures)
from test_monitoring_web import hosts_of, open_problems

BACKUP = yaml.safe_load((REPO / "salt" / "backup" / "defaults.yaml").read_text())["backup"]
STATUS_FILE = BACKUP["lookup"]["monitoring"]["status_file"]
KEYS = ["lemp.backup.drill.ok", "lemp.backup.restorable.age", "lemp.backup.newest.age", "lemp.backup.archive.lag",
        "lemp.backup.status.elapsed"]
LAG_PROBLEM = "Binlog archive is"


def test_only_the_job_and_the_agents_group_read_the_status_file(lab):
    store = lab.with_role("backup")[0]
    assert lab.run(store, f"stat -c '%a %U %G' {STATUS_FILE}").stdout.split() == ["640", "lemp-backup", "zabbix"]
    doc = json.loads(lab.run(store, f"runuser -u zabbix -- cat {STATUS_FILE}").stdout)
    assert time.time() - doc["updated_ts"] < 60, doc  # the archiver rewrites it every 2 s
    assert lab.run(store, f"runuser -u nobody -- cat {STATUS_FILE}", check=False).returncode != 0


def test_the_backup_store_items_have_fresh_values_and_the_archive_keeps_up(lab, zabbix):  # noqa: F811
    store = lab.with_role("backup")[0]
    hostid = hosts_of(lab, zabbix, ["backup"])[store]

    def values():
        items = zabbix.item.get(output=["key_", "lastclock", "lastvalue", "state", "error"], hostids=hostid,
                                filter={"key_": KEYS})
        found = {i["key_"]: i for i in items}
        values.last = found
        now = time.time()
        return len(found) == len(KEYS) and all(
            i["state"] == "0" and now - int(i["lastclock"] or 0) < 120 for i in found.values())

    try:
        wait_for(values, 300, f"fresh values of {KEYS} on {store}", interval=2)
    except AssertionError:
        raise AssertionError(f"items: {json.dumps(values.last, indent=1)}") from None
    assert float(values.last["lemp.backup.archive.lag"]["lastvalue"]) < 60, values.last


def test_a_stopped_binlog_archiver_raises_the_archive_lag_problem_and_its_return_resolves_it(lab, zabbix):  # noqa: F811
    store = lab.with_role("backup")[0]
    hostid = hosts_of(lab, zabbix, ["backup"])[store]
    stopped_at = int(lab.run(store, "date +%s").stdout)

    def mine():
        return [p for p in open_problems(zabbix, [hostid]) if p["name"].startswith(LAG_PROBLEM)]

    lab.run(store, "systemctl stop lemp-binlog-archive")
    try:
        # 30 s of lag ({$LEMP.BACKUP.ARCHIVE.LAG.MAX}: the lab's host macro, pillar/monitor.sls; the
        # template's default is 60 s) + a 10 s item + the agent's 5 s buffer
        wait_for(lambda: [p for p in mine() if p["lastchange"] >= stopped_at], 180,
                 f"the archive lag problem on {store} after stopping lemp-binlog-archive", interval=1)
        # the stale-file problem depends on it: not raised on top
        assert not [p for p in open_problems(zabbix, [hostid]) if p["name"].startswith("Backup status is stale")]
    finally:
        lab.run(store, "systemctl start lemp-binlog-archive")
    wait_for(lambda: not mine(), 180, f"the archive lag problem on {store} resolved", interval=1)
