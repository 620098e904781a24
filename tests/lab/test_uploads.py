"""Uploads live on a GlusterFS volume replicated across the web nodes, with
an arbiter brick on the arbitrator: a file written on one web node is on the
others, and losing a web node loses no file and blocks no write."""

import uuid

from lemplab import wait_for

MOUNT = "/srv/www-uploads"


def read(lab, machine, name):
    return lab.run(machine, f"cat {MOUNT}/{name} 2>/dev/null", check=False).stdout


def test_a_file_written_on_one_web_node_is_read_on_the_others(lab):
    webs = lab.with_role("web")
    name = f"probe-{uuid.uuid4().hex}"
    lab.run(webs[0], f"echo hello > {MOUNT}/{name}")
    try:
        for web in webs[1:]:
            assert wait_for(lambda w=web: read(lab, w, name) == "hello\n", 30, f"{name} on {web}")
    finally:
        lab.run(webs[0], f"rm -f {MOUNT}/{name}", check=False)


def test_losing_a_web_node_loses_no_upload_and_blocks_no_write(lab):
    webs = lab.with_role("web")
    victim, survivor = webs[0], webs[1]
    before, during = f"before-{uuid.uuid4().hex}", f"during-{uuid.uuid4().hex}"
    lab.run(victim, f"echo kept > {MOUNT}/{before}")
    wait_for(lambda: read(lab, survivor, before) == "kept\n", 30, f"{before} on {survivor}")
    lab.stop(victim)
    try:
        assert read(lab, survivor, before) == "kept\n"
        lab.run(survivor, f"echo written > {MOUNT}/{during}", timeout=60)
        assert read(lab, survivor, during) == "written\n"
    finally:
        lab.start(victim)
    # the returning node mounts the volume again and sees what it missed
    wait_for(lambda: read(lab, victim, during) == "written\n", 120, f"{during} on {victim} after its return")
    lab.run(survivor, f"rm -f {MOUNT}/{before} {MOUNT}/{during}", check=False)
