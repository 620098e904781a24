"""Who may mount the uploads volume (issue 13 item 3, salt/glusterfs,
_modules/lemp_glusterfs.py): only the machines the topology admits.

Which machine proves what. Two controls stand in front of the bricks, and a
test from the wrong machine proves only one of them:

* the host firewall (pillar/ports.yaml) admits GlusterFS's ports only from
  web, web_pool and arbitrator: tests/lab/test_firewall.py proves that no
  other machine reaches glusterd or a brick port (a mount from mon1 would
  only prove it again, at the cost of installing a client there).
* the volume's auth.allow (or, with TLS, auth.ssl-allow) lists the brick
  holders and every slot of the scaling pool. To prove it refuses, the
  client must pass the firewall yet not be listed. By design no lab machine
  is both: the two lists agree. arb1 passes the firewall but is listed (it
  holds the arbiter brick). So the test takes arb1 off the list for a
  moment, mounts from it and is refused, and puts the list back. It mounts
  `web1:/uploads`, never `localhost`: glusterd hands a client on its own
  machine the *trusted* volume file, whose credentials the bricks admit
  whatever the list says (glusterd-handshake.c), which is how the web
  nodes' own `localhost` mounts and arb1's self-heal daemon keep working
  while arb1 is off the list. The same mount with arb1 listed succeeds
  first, so the refusal is the list's doing, not the network's.
* the option itself: `gluster volume get uploads auth.allow` equals the
  topology's list, so that a machine added to it is what the volume admits.

While the list changes, the web nodes keep their mounts: a brick that gets a
new list re-checks its connected clients and drops those no longer admitted
(server.c reconfigure), and none of theirs is.
"""

import shlex
import uuid

import pytest

import lemp_glusterfs
from lemplab import wait_for

VOLUME = "uploads"
MOUNT = "/srv/www-uploads"
# mount.glusterfs waits for the volume file and the bricks; a dropped SYN
# would hold it for minutes without this
MOUNT_TIMEOUT = 60


def option(lab, machine, name):
    proc = lab.run(machine, f"gluster volume get {VOLUME} {name}")
    return lemp_glusterfs.parse_volume_get(proc.stdout).get(name)


def set_option(lab, machine, name, value):
    lab.run(machine, f"gluster --mode=script volume set {VOLUME} {name} {shlex.quote(value)}")


def try_mount(lab, machine, server):
    """Mount SERVER:/uploads on a fresh directory of MACHINE; return
    (mounted, log). Always unmounted and cleaned up afterwards."""
    target = f"/mnt/lemp-ha-test-{uuid.uuid4().hex[:8]}"
    log = f"/tmp/{target.rsplit('/', 1)[1]}.log"
    try:
        lab.run(machine, f"mkdir -p {target}")
        lab.run(machine, f"timeout {MOUNT_TIMEOUT} mount -t glusterfs -o log-file={log} {server}:/{VOLUME} {target}",
                check=False, timeout=MOUNT_TIMEOUT + 30)
        # mounted means listed: a refused client leaves no fuse mount behind
        mounted = lab.run(machine, f"findmnt -n -t fuse.glusterfs {target} && ls {target} >/dev/null",
                          check=False).returncode == 0
        text = lab.run(machine, f"cat {log} 2>/dev/null", check=False).stdout
        return mounted, text
    finally:
        lab.run(machine, f"umount -l {target} 2>/dev/null; pkill -f -- ' {target}$' 2>/dev/null; "
                         f"rmdir {target} 2>/dev/null; rm -f {log}", check=False)


def web_mounts_work(lab):
    webs = lab.with_role("web")
    name = f"access-{uuid.uuid4().hex}"
    lab.run(webs[0], f"echo still > {MOUNT}/{name}")
    try:
        for web in webs:
            assert lab.run(web, f"findmnt -n -t fuse.glusterfs {MOUNT}", check=False).returncode == 0, \
                f"{web}: {MOUNT} is no longer mounted"
            assert wait_for(lambda w=web: lab.run(w, f"cat {MOUNT}/{name}", check=False).stdout == "still\n",
                            30, f"{name} on {web}")
    finally:
        lab.run(webs[0], f"rm -f {MOUNT}/{name}", check=False)


@pytest.fixture(scope="module")
def first_web(lab):
    return lab.with_role("web")[0]


@pytest.fixture(scope="module")
def tls(lab, first_web):
    return lemp_glusterfs.same_value(option(lab, first_web, "server.ssl"), "on")


def test_the_volume_admits_exactly_the_machines_of_the_topology(lab, topology, first_web, tls):
    assert lemp_glusterfs.same_value(option(lab, first_web, "auth.allow"), lemp_glusterfs.auth_allow(topology))
    if tls:
        assert lemp_glusterfs.same_value(option(lab, first_web, "client.ssl"), "on")
        assert lemp_glusterfs.same_value(option(lab, first_web, "auth.ssl-allow"), lemp_glusterfs.ssl_allow(topology))


def test_a_machine_the_firewall_admits_but_the_volume_does_not_list_cannot_mount(lab, topology, first_web, tls):
    arbiter = lemp_glusterfs.layout(topology)["arbiter"]
    if arbiter is None:
        pytest.skip("no arbiter brick (more than 2 web nodes): no machine passes the firewall outside the list")
    server = lemp_glusterfs.layout(topology)["servers"][0]["address"]
    # what lists arb1: its CN with TLS (the bricks then check the certificate), else its address
    name = "auth.ssl-allow" if tls else "auth.allow"
    listed = lemp_glusterfs.ssl_allow(topology) if tls else lemp_glusterfs.auth_allow(topology)
    identity = lemp_glusterfs.common_name(topology, arbiter["name"]) if tls else arbiter["address"]
    without = ",".join(item for item in listed.split(",") if item != identity)
    assert without != listed

    mounted, log = try_mount(lab, arbiter["name"], server)
    assert mounted, f"{arbiter['name']} is listed yet could not mount {server}:/{VOLUME}:\n{log[-2000:]}"

    set_option(lab, first_web, name, without)
    try:
        mounted, log = try_mount(lab, arbiter["name"], server)
        assert not mounted, f"{arbiter['name']} mounted {server}:/{VOLUME} while off {name}"
        assert "Authentication failed" in log or "AUTH_FAILED" in log, log[-2000:]
        web_mounts_work(lab)
    finally:
        set_option(lab, first_web, name, listed)
    assert lemp_glusterfs.same_value(option(lab, first_web, name), listed)
    web_mounts_work(lab)
