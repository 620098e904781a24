#!/usr/bin/env python3
"""Galera failover, measured with the lab tests' Writer (tests/lab/galera_helpers.py):
a client on a web node inserting rows through the DB endpoint on the VIP
(HAProxy, single writer) and logging every acknowledged id.

Scenarios:
  writer-kill   the db node the writer is connected to is hard-stopped
                (lxc-stop -k). Measured: seconds without an acknowledged write
                (longest pause between two acknowledged rows around the kill,
                from the rows' server-side timestamps), seconds until the survivor is Primary
                without it, lost acknowledged rows (acked ids missing in the
                table afterwards; reported, 0 expected); then lxc-start and the
                seconds until the node is Synced again (IST or SST, from its log).
  full-outage   every db node and the arbitrator stopped (lxc-stop, or -k with
                --hard-outage), started again, then
                `salt-run state.orchestrate orch.galera_recover`: its wall time,
                the time until the cluster is whole, lost acknowledged rows.

Writes the section `db_failover` of docs/bench.md. Needs root and the lab up
(exits 3 otherwise). Never asserts a figure.
"""

import time
import uuid

import common  # first: it puts the lab driver and the lab tests' helpers on sys.path
import galera_helpers as gh
from common import log, wait_for


def make_table(lab, tier):
    name = "bench_" + uuid.uuid4().hex[:8]
    # ts: when the row was written, server side (every container shares the host's clock)
    gh.sql(lab, tier["dbs"][0], f"CREATE TABLE app.{name} (id INT PRIMARY KEY, payload VARCHAR(100), "
                                "ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB")
    return name


def drop_table(lab, tier, table, writer):
    lab.run(tier["web"], f"touch {writer.workdir}/stop", check=False)
    try:
        writer.stop()
    except AssertionError as exc:
        log(f"cleanup: {exc}")
    lab.run(tier["web"], f"rm -rf {writer.workdir}", check=False)
    for name in tier["dbs"]:
        if gh.sql_ok(lab, name, f"DROP TABLE IF EXISTS app.{table}"):
            return
    log(f"cleanup: could not drop app.{table}")


def rows_with_ts(lab, machine, table):
    return {int(i): float(t) for i, t in gh.sql(lab, machine, f"SELECT id, UNIX_TIMESTAMP(ts) FROM app.{table}")}


def writer_kill(lab, tier, args):
    table = make_table(lab, tier)
    writer = gh.Writer(lab, tier["web"], lab.db_endpoint, lab.secrets["passwords"]["app_db"], table)
    row = {"scenario": "writer db node killed (lxc-stop -k)"}
    victim = None
    try:
        writer.start()
        gh.acked_after(writer, 50, 120, "before the failure", interval=0.3)
        victim = writer.node()
        if victim not in tier["dbs"]:
            raise common.BenchError(f"the writer is connected to {victim!r}, not a db node")
        survivor = next(n for n in tier["dbs"] if n != victim)
        row["scenario"] += f": {victim}"
        log(f"[writer-kill] writer on {tier['web']} writes to {victim}; lxc-stop -k {victim}")
        t_kill_wall, t_kill = time.time(), time.monotonic()
        lab.stop(victim, kill=True)
        wait_for(lambda: gh.synced(lab, survivor, tier["size"] - 1), 120,
                 f"{survivor} to go on without {victim}", interval=0.2)
        row["primary_s"] = time.monotonic() - t_kill
        log(f"[writer-kill] {survivor} Primary without {victim} after {row['primary_s']:.2f}s")
        gh.acked_after(writer, 50, 180, f"after {victim} stopped", interval=0.3)
        t_resumed_wall = time.time()
        row["new_writer"] = writer.node()
        log(f"[writer-kill] writes resumed on {row['new_writer']}; lxc-start {victim}")
        t_start = time.monotonic()
        lab.start(victim)
        row["boot_s"] = time.monotonic() - t_start
        wait_for(lambda: gh.synced(lab, victim, tier["size"]), 900, f"{victim} to rejoin", interval=0.5)
        row["rejoin_s"] = time.monotonic() - t_start
        journal = gh.out(lab.run(victim, "journalctl -u mariadb -b --no-pager; "
                                         "cat /var/log/mysql/error.log 2>/dev/null", check=False))
        row["transfer"] = ("IST" if ("IST received" in journal or "Receiving IST" in journal)
                           else "SST" if "SST" in journal and "State transfer" in journal else "not found in log")
        log(f"[writer-kill] {victim} Synced {row['rejoin_s']:.1f}s after lxc-start (booted in "
            f"{row['boot_s']:.1f}s), by {row['transfer']}")
        writer.stop()
        acked = set(writer.acked())
        wait_for(lambda: len({gh.wsrep(lab, n).get("wsrep_last_committed") for n in tier["dbs"]}) == 1,
                 60, "equal wsrep_last_committed on every node", interval=0.5)
        rows = rows_with_ts(lab, survivor, table)
        row["acked"] = len(acked)
        row["lost"] = max(len(acked - set(rows)), len(acked - set(rows_with_ts(lab, victim, table))))
        # the longest pause between two acknowledged writes from just before the
        # kill until writes had resumed (lxc-stop -k itself takes a moment)
        stamps = sorted(rows[i] for i in acked if i in rows and t_kill_wall - 1 <= rows[i] <= t_resumed_wall)
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        row["write_gap_s"] = max(gaps) if gaps else None
        log(f"[writer-kill] no acknowledged write for {common.fmt(row['write_gap_s'])}s; "
            f"{row['lost']} of {row['acked']} acknowledged rows missing")
        return row
    finally:
        if victim:
            common.restoring(lab, [victim])
        common.wait_db_healthy(lab, tier, timeout=900)
        drop_table(lab, tier, table, writer)


def full_outage(lab, tier, args):
    machines = tier["arbs"] + tier["dbs"]
    table = make_table(lab, tier)
    writer = gh.Writer(lab, tier["web"], lab.db_endpoint, lab.secrets["passwords"]["app_db"], table)
    row = {"scenario": f"full outage ({'lxc-stop -k' if args.hard_outage else 'lxc-stop'} "
                       f"{', '.join(machines)}) + orch.galera_recover"}
    recovered = False
    try:
        writer.start()
        gh.acked_after(writer, 50, 120, "before the outage", interval=0.3)
        t0 = time.monotonic()
        for name in machines:
            log(f"[full-outage] lxc-stop {'-k ' if args.hard_outage else ''}{name}")
            lab.stop(name, kill=args.hard_outage)
        for name in machines:
            log(f"[full-outage] lxc-start {name}")
            lab.start(name)
        row["boot_s"] = time.monotonic() - t0
        writer.stop()
        acked = set(writer.acked())
        log("[full-outage] salt-run state.orchestrate orch.galera_recover")
        t_orch = time.monotonic()
        ok, failed = lab.orchestrate("orch.galera_recover")
        row["orch_s"] = time.monotonic() - t_orch
        failed = failed[:500] if not ok else ""
        row["orch_ok"] = "ok" if ok else f"FAILED: {failed}"
        log(f"[full-outage] orch.galera_recover {'ok' if ok else 'FAILED'} in {row['orch_s']:.1f}s")
        common.wait_db_healthy(lab, tier, timeout=600)
        recovered = True
        row["total_s"] = time.monotonic() - t0
        row["acked"] = len(acked)
        row["lost"] = max(len(acked - set(rows_with_ts(lab, n, table))) for n in tier["dbs"])
        log(f"[full-outage] cluster whole {row['total_s']:.1f}s after the first stop; "
            f"{row['lost']} of {row['acked']} acknowledged rows missing")
        if not ok:
            raise common.BenchError(f"orch.galera_recover failed: {failed}")
        return row
    finally:
        common.restoring(lab, machines)
        if not recovered:
            healthy = all(gh.synced(lab, n, tier["size"]) for n in tier["dbs"])
            if not healthy:
                log("restoring: salt-run state.orchestrate orch.galera_recover")
                ok, detail = lab.orchestrate("orch.galera_recover")
                log(f"restoring: orch.galera_recover {'ok' if ok else 'FAILED: ' + detail[:1000]}")
        common.wait_db_healthy(lab, tier, timeout=600)
        drop_table(lab, tier, table, writer)


def main():
    p = common.parser(__doc__)
    p.add_argument("--scenarios", default="writer-kill,full-outage",
                   help="comma list of writer-kill, full-outage (default: both)")
    p.add_argument("--hard-outage", action="store_true", help="full outage with lxc-stop -k instead of lxc-stop")
    args = p.parse_args()
    kinds = common.scenarios(p, args, ("writer-kill", "full-outage"))

    lab = common.open_lab()
    tier = gh.tier_of(lab.topology)
    results = {}
    try:
        common.wait_lab_healthy(lab)
        for kind in kinds:
            log(f"== {kind}")
            results[kind] = writer_kill(lab, tier, args) if kind == "writer-kill" else full_outage(lab, tier, args)
        common.wait_web_healthy(lab, timeout=300)
    finally:
        common.restoring(lab, tier["dbs"] + tier["arbs"])
    headers = ["scenario", "figure", "value"]
    rows = []
    r = results.get("writer-kill")
    if r:
        rows += [[r["scenario"], "seconds without an acknowledged write", r.get("write_gap_s")],
                 [r["scenario"], "seconds until the survivor is Primary alone", r.get("primary_s")],
                 [r["scenario"], "writes resumed on", r.get("new_writer")],
                 [r["scenario"], "acknowledged rows lost (of acked)", f"{r.get('lost')} (of {r.get('acked')})"],
                 [r["scenario"], "lxc-start until booted + minion answers (s)", r.get("boot_s")],
                 [r["scenario"], "lxc-start until Synced again (s)", r.get("rejoin_s")],
                 [r["scenario"], "state transfer", r.get("transfer")]]
    r = results.get("full-outage")
    if r:
        rows += [[r["scenario"], "stop + start of the machines (s)", r.get("boot_s")],
                 [r["scenario"], "orch.galera_recover wall time (s)", r.get("orch_s")],
                 [r["scenario"], "orch.galera_recover result", r.get("orch_ok")],
                 [r["scenario"], "first stop until every node Synced (s)", r.get("total_s")],
                 [r["scenario"], "acknowledged rows lost (of acked)", f"{r.get('lost')} (of {r.get('acked')})"]]
    notes = [f"Writer: tests/lab/galera_helpers.Writer on {tier['web']}, through {lab.db_endpoint[0]}:"
             f"{lab.db_endpoint[1]} (HAProxy single writer); one INSERT+COMMIT at a time.",
             "Write gap: longest pause between the server-side timestamps of two consecutive acknowledged "
             "rows, from 1 s before the kill until writes had resumed. Lost rows: acknowledged ids missing from the table on a db node afterwards (0 expected)."]
    common.report(args, "db_failover", "Galera failover and recovery", headers, rows, notes)
    return 0


if __name__ == "__main__":
    common.main_wrapper(main)
