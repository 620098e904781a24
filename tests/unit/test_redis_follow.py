"""lemp-redis-follow (salt/redis/files/lemp-redis-follow.py): a starting
Redis follows the master the other Sentinels name, so that a returning node
never serves as a second master. The decisions on sample data, then the
script against a real Sentinel (redis-server --sentinel) on loopback."""

import os
import subprocess
import time

import pytest
from by_path import load
from loopback import free_port

follow = load("lemp_redis_follow", "salt/redis/files/lemp-redis-follow.py")
SCRIPT = follow.__file__

CONF = "include /etc/redis/lemp-ha.conf\ndir /var/lib/redis\nreplicaof 10.77.0.21 6379\n"


def test_a_sentinels_answer_is_read_and_a_nil_or_an_error_is_no_answer():
    assert follow.parse_reply("*2\r\n$10\r\n10.77.0.22\r\n$4\r\n6379\r\n") == ("10.77.0.22", 6379)
    assert follow.parse_reply("*-1\r\n") is None
    assert follow.parse_reply("-ERR unknown command\r\n") is None
    assert follow.parse_reply("") is None
    # written into redis.conf as root: only an IP address and a port
    assert follow.parse_reply("*2\r\n$20\r\n10.0.0.1\ninclude /x\r\n$4\r\n6379\r\n") is None
    assert follow.parse_reply("*2\r\n$10\r\n10.77.0.22\r\n$5\r\n70000\r\n") is None


def test_the_master_most_sentinels_name_is_followed_unless_it_is_this_node():
    web1, web2 = ("10.77.0.21", 6379), ("10.77.0.22", 6379)
    assert follow.choose("10.77.0.21", [web2, web2, None]) == web2
    assert follow.choose("10.77.0.21", [web2, web1, web2]) == web2
    assert follow.choose("10.77.0.22", [web2, web2, web2]) is None, "named master itself: start as configured"
    assert follow.choose("10.77.0.21", [None, None]) is None, "no Sentinel answers: the tier is starting"
    assert follow.choose("10.77.0.21", [web1, web2]) is None, "a tie decides nothing"
    assert follow.choose("10.77.0.21", []) is None
    # one Sentinel alone (a stale one, say) never decides when the quorum is 2
    assert follow.choose("10.77.0.21", [web2, None, None], quorum=2) is None
    assert follow.choose("10.77.0.21", [web2, web2, None], quorum=2) == web2


def test_redis_conf_gets_one_replicaof_line_in_place_of_any_other():
    text = follow.with_replicaof(CONF + "slaveof 10.77.0.23 6379\n", ("10.77.0.22", 6379))
    assert text == "include /etc/redis/lemp-ha.conf\ndir /var/lib/redis\nreplicaof 10.77.0.22 6379\n"
    assert follow.with_replicaof("dir /var/lib/redis\n", ("10.77.0.22", 6379)).endswith("replicaof 10.77.0.22 6379\n")



def _wait_answers(port):
    deadline = time.monotonic() + 10
    while follow.ask("127.0.0.1", port, "sessions") is None:
        assert time.monotonic() < deadline, "the Sentinel did not answer on loopback"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def sentinel(host_tool, tmp_path_factory):
    """A real Redis master and a real Sentinel monitoring it, on loopback."""
    server = host_tool("redis-server")
    folder = tmp_path_factory.mktemp("sentinel")
    master_port, sentinel_port = free_port(), free_port()
    procs = [subprocess.Popen([server, "--bind", "127.0.0.1", "--port", str(master_port), "--save", "",
                               "--appendonly", "no", "--dir", str(folder)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    conf = folder / "sentinel.conf"
    conf.write_text(f"bind 127.0.0.1\nport {sentinel_port}\ndir {folder}\n"
                    f"sentinel monitor sessions 127.0.0.1 {master_port} 1\n")
    procs.append(subprocess.Popen([server, str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL))
    try:
        _wait_answers(sentinel_port)
        yield {"master": master_port, "port": sentinel_port}
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


def run(conf, me, sentinel_port, sentinels="127.0.0.1"):
    return subprocess.run(["python3", SCRIPT, "--me", me, "--master-name", "sessions",
                           "--sentinels", sentinels, "--sentinel-port", str(sentinel_port), "--config", str(conf),
                           "--timeout", "0.5"], capture_output=True, text=True, timeout=30)


def test_a_returning_node_starts_as_a_replica_of_the_master_the_sentinel_names(sentinel, tmp_path):
    conf = tmp_path / "redis.conf"
    conf.write_text(CONF)
    conf.chmod(0o640)
    proc = run(conf, "10.77.0.21", sentinel["port"])
    assert proc.returncode == 0, proc.stderr
    assert conf.read_text().splitlines()[-1] == f"replicaof 127.0.0.1 {sentinel['master']}"
    assert conf.read_text().count("replicaof") == 1
    assert oct(os.stat(conf).st_mode & 0o777) == "0o640", "redis.conf keeps its mode"
    assert "starting as a replica of 127.0.0.1" in proc.stdout


def test_the_node_the_sentinel_names_and_a_silent_sentinel_leave_redis_conf_as_it_is(sentinel, tmp_path):
    conf = tmp_path / "redis.conf"
    conf.write_text(CONF)
    proc = run(conf, "127.0.0.1", sentinel["port"])
    assert proc.returncode == 0 and conf.read_text() == CONF, proc.stdout + proc.stderr
    proc = run(conf, "10.77.0.21", free_port())  # nothing listens there
    assert proc.returncode == 0 and conf.read_text() == CONF, proc.stdout + proc.stderr
    assert "starting as configured (127.0.0.1: no answer)" in proc.stdout


def test_a_bad_command_line_or_no_other_sentinel_never_stops_redis_from_starting(tmp_path):
    conf = tmp_path / "redis.conf"
    conf.write_text(CONF)
    # the topology's only Sentinel is this node's own: nobody to ask
    proc = run(conf, "10.77.0.21", 26379, sentinels="")
    assert proc.returncode == 0 and conf.read_text() == CONF, proc.stdout + proc.stderr
    assert "no other Sentinel" in proc.stdout
    proc = subprocess.run(["python3", SCRIPT, "--no-such-option"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "starting as configured" in proc.stdout, proc.stdout + proc.stderr
