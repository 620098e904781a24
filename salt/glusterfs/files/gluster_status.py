#!/usr/bin/python3
"""
GlusterFS health for the Zabbix agent (template "lemp-ha GlusterFS").

Written by Salt (salt/glusterfs/monitoring.sls) and run as root by the
systemd timer lemp-ha-gluster-status.timer: the gluster CLI needs root, and
a timer that writes a small JSON file the agent reads (vfs.file.contents)
gives the agent's user no privilege at all, where a sudo rule would let it
run the gluster CLI as root.

    gluster_status.py VOLUME OUTPUT

Writes OUTPUT atomically (mode 0644: volume health is no secret):

    {"time": 1700000000, "glusterd": 1, "volume": "uploads", "started": 1,
     "bricks": 3, "bricks_online": 3, "heal_pending": 0, "error": ""}

Pure functions (parse_*, summary) are unit-tested on sample CLI output
(tests/unit/test_zabbix_web.py).
"""

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

GLUSTER = "/usr/sbin/gluster"
TIMEOUT = 8  # seconds per CLI call; the timer runs every 10 s


def _op_ok(root):
    return root is not None and (root.findtext("opRet") or "-1").strip() == "0"


def _xml(text):
    try:
        return ET.fromstring(text)
    except ET.ParseError:
        return None


def parse_volume_info(text):
    """(started, bricks) from `gluster volume info VOL --xml`; (0, 0) when
    the volume is unknown or the output is not gluster's XML."""
    root = _xml(text)
    if not _op_ok(root):
        return 0, 0
    volume = root.find("volInfo/volumes/volume")
    if volume is None:
        return 0, 0
    started = 1 if (volume.findtext("status") or "").strip() == "1" else 0
    bricks = len(volume.findall("bricks/brick"))
    if not bricks:
        bricks = int((volume.findtext("brickCount") or "0").strip() or 0)
    return started, bricks


def parse_volume_status(text):
    """Bricks online from `gluster volume status VOL --xml`: the nodes whose
    path is a brick directory (not the self-heal daemon's "localhost") and
    whose status is 1."""
    root = _xml(text)
    if not _op_ok(root):
        return 0
    online = 0
    for node in root.findall("volStatus/volumes/volume/node"):
        if (node.findtext("path") or "").startswith("/") and (node.findtext("status") or "").strip() == "1":
            online += 1
    return online


def parse_heal_count(text):
    """Entries waiting for heal, summed over the bricks, from `gluster
    volume heal VOL statistics heal-count`. A brick that cannot answer
    ("Number of entries: -") adds nothing here: it is counted offline by
    parse_volume_status."""
    total = 0
    for line in (text or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Number of entries" and value.strip().isdigit():
            total += int(value.strip())
    return total


def summary(volume, now, glusterd, info, status, heal, error=""):
    """The status document from the CLI outputs (None: that call failed)."""
    started, bricks = parse_volume_info(info) if info is not None else (0, 0)
    return {
        "time": int(now),
        "glusterd": 1 if glusterd else 0,
        "volume": volume,
        "started": started,
        "bricks": bricks,
        # glusterd answers but this call failed (a cluster-wide lock held by
        # another node's CLI, seen in the lab as "0 of 3 bricks online"):
        # unknown (null, the item goes unsupported), not zero
        "bricks_online": parse_volume_status(status) if status is not None else (None if glusterd else 0),
        "heal_pending": parse_heal_count(heal) if heal is not None else (None if glusterd else 0),
        "error": error,
    }


def _gluster(*args):
    """stdout of a gluster CLI call, or None when it fails (glusterd down:
    "Connection failed. Please check if gluster daemon is operational.")."""
    try:
        proc = subprocess.run([GLUSTER, "--mode=script", *args], capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def collect(volume):
    info = _gluster("volume", "info", volume, "--xml")
    if info is None:
        return summary(volume, time.time(), False, None, None, None,
                       "gluster volume info failed: glusterd does not answer")
    status = _retried("volume", "status", volume, "--xml")
    heal = _retried("volume", "heal", volume, "statistics", "heal-count")
    failed = [name for name, out in (("volume status", status), ("heal-count", heal)) if out is None]
    return summary(volume, time.time(), True, info, status, heal,
                   f"gluster {', '.join(failed)} failed (another node's command holds the lock?)" if failed else "")


def _retried(*args, attempts=3):
    """Every web node asks every 10 s: the cluster lock is sometimes held
    by another's command for a moment; try again before saying unknown."""
    for attempt in range(attempts):
        out = _gluster(*args)
        if out is not None:
            return out
        if attempt + 1 < attempts:
            time.sleep(1)  # the other node's command holds the lock for well under a second
    return None


def write_atomically(path, doc):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: gluster_status.py VOLUME OUTPUT\n")
        return 2
    write_atomically(argv[2], collect(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
