"""The execution modules that share code load under Salt's own loader, as a
minion runs them after saltutil.sync_all: lemp_backup_job and lemp_restore
import lemp_backup (the file beside them) by name, and lemp_backup_job checks
a schedule with lemp_cron.calendar through __salt__.

In a fresh Python with only the synced files: this test process has
_modules on its path (tests/conftest.py), where `import lemp_backup` would
succeed whatever the loader does."""

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

REPO_MODULES = ("lemp_backup", "lemp_backup_job", "lemp_restore", "lemp_cron")

PROBE = textwrap.dedent("""
    import json, sys
    import salt.config, salt.loader
    root = sys.argv[1]
    opts = salt.config.minion_config(None)
    opts.update({"extension_modules": root + "/extmods", "cachedir": root + "/cache", "file_client": "local",
                 "grains": {}, "pillar": {}})
    mods = salt.loader.minion_mods(opts, whitelist=["lemp_backup_job", "lemp_restore", "lemp_cron", "cmdmod"])
    found = {name: getattr(mods[fun], "func", mods[fun]).__globals__["lemp_backup"].__file__
             for name, fun in (("lemp_backup_job", "lemp_backup_job.check_schedule"),
                               ("lemp_restore", "lemp_restore.check_stamp"))}
    print(json.dumps({"lemp_backup": found,
                      "schedule": mods["lemp_backup_job.check_schedule"]("backup:schedule:full", "daily")}))
""")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, repo, host_tool):
    host_tool("systemd-analyze")  # what lemp_cron.calendar runs
    root = tmp_path_factory.mktemp("minion")
    synced = root / "extmods" / "modules"
    synced.mkdir(parents=True)
    for name in REPO_MODULES:
        shutil.copy(repo / "_modules" / f"{name}.py", synced)
    proc = subprocess.run([sys.executable, "-c", PROBE, str(root)], capture_output=True, text=True, timeout=300,
                          cwd=root, env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), synced


def test_the_backup_modules_find_lemp_backup_beside_them_under_the_loader(loaded):
    answer, synced = loaded
    assert answer["lemp_backup"] == {name: str(synced / "lemp_backup.py") for name in ("lemp_backup_job", "lemp_restore")}


def test_the_backup_schedule_check_runs_systemd_analyze_through_lemp_cron(loaded):
    answer, _ = loaded
    assert answer["schedule"] == "*-*-* 00:00:00"
