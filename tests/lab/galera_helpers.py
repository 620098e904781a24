"""Helpers for the Galera lab tests: SQL inside the lab, the writer that
proves no acknowledged row is lost. Polling is lemplab.wait_for.

Everything runs inside the lab containers through the `lab` fixture
(lab.run(machine, shell_command, check=...)); nothing here talks to the lab
network from the host."""

import json
import shlex

import lemp_topology
from lemplab import wait_for


def tier_of(topology):
    """The database tier: data nodes, the arbitrators that vote (only with an
    even number of data nodes), the web node the writer runs on, the master,
    the cluster size and every machine's address."""
    dbs = sorted(lemp_topology.with_role(topology, "db"))
    arbs = sorted(lemp_topology.with_role(topology, "arbitrator")) if len(dbs) % 2 == 0 else []
    webs = sorted(lemp_topology.with_role(topology, "web"))
    return {
        "dbs": dbs,
        "arbs": arbs,
        "web": webs[0],
        "master": topology["master"],
        "size": len(dbs) + len(arbs),
        "address": {n: m["address"] for n, m in topology["machines"].items()},
    }


def wait_cluster_healthy(lab, tier, timeout=300):
    for name in tier["dbs"]:
        wait_for(lambda n=name: synced(lab, n, tier["size"]), timeout, f"{name} Synced in a cluster of {tier['size']}")


def out(proc):
    text = proc.stdout
    if isinstance(text, bytes):
        text = text.decode()
    return (text or "").strip()


def sql(lab, machine, statement, check=True):
    """Run SQL as root (unix socket) on a db machine; rows as lists."""
    proc = lab.run(machine, "mariadb --batch --skip-column-names -e " + shlex.quote(statement), check=check)
    return [line.split("\t") for line in out(proc).splitlines() if line]


def sql_ok(lab, machine, statement):
    proc = lab.run(machine, "mariadb --batch --skip-column-names -e " + shlex.quote(statement), check=False)
    return proc.returncode == 0


def wsrep(lab, machine):
    """wsrep status of a node as a dict ({} when the server does not answer)."""
    proc = lab.run(
        machine,
        "mariadb --batch --skip-column-names --connect-timeout=3 -e "
        + shlex.quote("SHOW GLOBAL STATUS LIKE 'wsrep_%'; SHOW GLOBAL STATUS LIKE 'Uptime'"),
        check=False,
    )
    if proc.returncode != 0:
        return {}
    return dict(line.split("\t", 1) for line in out(proc).splitlines() if "\t" in line)


def synced(lab, machine, size=None):
    st = wsrep(lab, machine)
    ok = (
        st.get("wsrep_cluster_status") == "Primary"
        and st.get("wsrep_local_state") == "4"
        and st.get("wsrep_ready") == "ON"
    )
    if ok and size is not None:
        ok = int(st.get("wsrep_cluster_size", 0)) == size
    return st if ok else False


def health_code(lab, machine, address, port=9200):
    proc = lab.run(
        machine,
        f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 http://{address}:{port}/",
        check=False,
    )
    return out(proc)


def salt_run_json(lab, master, args, timeout_note=""):
    """salt-run on the master with JSON output; returns the parsed result."""
    proc = lab.run(master, "salt-run --out=json --state-verbose=True " + args, check=False)
    text = out(proc)
    try:
        return json.loads(text[text.index("{"):]) if "{" in text else {}
    except ValueError:
        raise AssertionError(f"salt-run {args}: output is not JSON: {text[-2000:]}")


def orch_steps(result):
    """{state_key: step} of an orchestration result."""
    data = result.get("data", result)
    if isinstance(data, dict) and len(data) == 1:
        (only,) = data.values()
        if isinstance(only, dict):
            return only
    return data


def orch_ok(result):
    steps = orch_steps(result)
    failed = {k: v.get("comment") for k, v in steps.items() if isinstance(v, dict) and v.get("result") is not True}
    return not failed and bool(steps), failed


# -- the writer ---------------------------------------------------------------

WRITER = r'''
import os, sys, time
import pymysql
host, port, user, password, db, table, workdir = sys.argv[1:8]
port = int(port)
acks = open(os.path.join(workdir, "acked"), "a")
stop = os.path.join(workdir, "stop")
conn = None
i = int(open(os.path.join(workdir, "next")).read()) if os.path.exists(os.path.join(workdir, "next")) else 1
while not os.path.exists(stop):
    try:
        if conn is None:
            # TLS, as the app: its account REQUIRE SSLs; the server is checked against the
            # platform CA salt/webapp put on the web node, and its name (the internal VIP)
            conn = pymysql.connect(host=host, port=port, user=user, password=password, database=db,
                                   connect_timeout=3, read_timeout=10, write_timeout=10, autocommit=False,
                                   ssl={"ca": "/usr/local/share/ca-certificates/lemp-ha-platform-ca.crt"})
            with conn.cursor() as cur:
                cur.execute("SELECT @@wsrep_node_name")
                open(os.path.join(workdir, "node"), "w").write(cur.fetchone()[0])
        with conn.cursor() as cur:
            cur.execute("INSERT INTO `" + table + "` (id, payload) VALUES (%s, %s)", (i, "x" * 64))
        conn.commit()
        acks.write("%d\n" % i)
        acks.flush()
        os.fsync(acks.fileno())
    except Exception as exc:
        with open(os.path.join(workdir, "errors"), "a") as err:
            err.write("%d %s\n" % (i, exc))
        try:
            conn and conn.close()
        except Exception:
            pass
        conn = None
        time.sleep(0.2)
    i += 1  # an unacknowledged id is never reused: it may or may not exist
    open(os.path.join(workdir, "next"), "w").write(str(i))
    time.sleep(0.01)
'''


class Writer:
    """A client inserting rows through the platform's DB endpoint from a web
    machine, logging every acknowledged (committed) id."""

    def __init__(self, lab, machine, endpoint, password, table, user="app", db="app"):
        self.lab, self.machine = lab, machine
        self.host, self.port = endpoint
        self.password, self.table, self.user, self.db = password, table, user, db
        self.workdir = f"/tmp/galera-writer-{table}"

    def start(self):
        self.lab.run(self.machine, f"mkdir -p {self.workdir} && rm -f {self.workdir}/stop")
        self.lab.run(self.machine, f"cat > {self.workdir}/writer.py <<'PYEOF'\n{WRITER}\nPYEOF")
        args = " ".join(shlex.quote(str(a)) for a in (
            self.host, self.port, self.user, self.password, self.db, self.table, self.workdir))
        self.lab.run(
            self.machine,
            f"setsid nohup /opt/salt/bin/python {self.workdir}/writer.py {args} "
            f">{self.workdir}/log 2>&1 </dev/null & echo $! > {self.workdir}/pid",
        )

    def stop(self):
        self.lab.run(self.machine, f"touch {self.workdir}/stop")
        wait_for(
            lambda: self.lab.run(self.machine, f"kill -0 $(cat {self.workdir}/pid) 2>/dev/null", check=False).returncode != 0,
            30, "the writer to stop",
        )

    def acked(self):
        text = out(self.lab.run(self.machine, f"cat {self.workdir}/acked 2>/dev/null || true", check=False))
        return [int(x) for x in text.split()]

    def node(self):
        return out(self.lab.run(self.machine, f"cat {self.workdir}/node 2>/dev/null || true", check=False))

    def errors(self):
        return out(self.lab.run(self.machine, f"tail -5 {self.workdir}/errors 2>/dev/null || true", check=False))


def acked_after(writer, count, timeout, what, interval=0.5):
    """Wait until `writer` has `count` more acknowledged rows than now."""
    base = len(writer.acked())
    return wait_for(lambda: len(writer.acked()) >= base + count, timeout,
                    f"{count} more acknowledged writes {what} (errors: {writer.errors()})", interval=interval)
