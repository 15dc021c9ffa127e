"""Flush 20k journal records into a real meadow REST server: uvctl's way vs upstream's way.

uvctl: ``uvctl.flush.flush()`` through the meadowproxy backend (direct transport):
batches of 500, bulk create, updates folded into the rows they follow, natural-key IDs
cached, missing IDs looked up many at a time.
Upstream (Ultravisor's MeadowProxy bridges): one request per record; every update is a
filtered lookup plus a ``PUT`` (a re-upserted manifest too); removal is lookup + DELETE.
Both use the same keep-alive httpx transport against the same server (fresh tables).

With ``--transport mesh`` every request is a MeadowProxy work item through the test
suite's coordinator and databeacon stubs (Python, HTTP polling every 5 ms) in front of
the same server: the figures then include that hop.

Run: .venv/bin/python benchmarks/bench_meadowproxy_flush.py [--records 20000] [--transport mesh]
Prints records/s, the ratio, and p50/p99 per request for both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import load_test_module


class Timed:
    """A transport wrapper that times every request."""

    def __init__(self, inner):
        self.inner, self.seconds = inner, []

    def request(self, method, path, body=None):
        start = time.perf_counter()
        try:
            return self.inner.request(method, path, body)
        finally:
            self.seconds.append(time.perf_counter() - start)

    def __getattr__(self, name):  # beacon, coordinator, run(), ... of the wrapped transport
        return getattr(self.inner, name)


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def upstream(actions, transport, bases):
    """Ultravisor's translation: one request per record, lookup + PUT per update."""
    from uvctl_meadowproxy import routes
    from uvctl_meadowproxy.translate import WRITES, project

    def lookup(table, key_values, include_deleted=False):
        terms = [routes.fbv(c, v) for c, v in zip(routes.NATURAL_KEYS[table], key_values)]
        if include_deleted:
            terms.append(routes.fbv("Deleted", 0, "GE"))
        answer = transport.request("GET", routes.filtered_path(bases[table], terms))
        rows = json.loads(answer.text)
        return rows[0] if rows else None

    for action in actions:
        table, record_key, kind = WRITES[action.name]
        settings, pk = action.settings, routes.primary_key(table)
        if kind in ("insert", "upsert"):
            body = project(table, settings[record_key])
            answer = transport.request("POST", bases[table], json.dumps(body))
            if answer.status != 200 and kind == "upsert":  # the row exists: update it instead
                key = [settings[record_key][c] for c in routes.NATURAL_KEYS[table]]
                row = lookup(table, key, include_deleted=True)
                if row["Deleted"]:
                    transport.request("GET", f"{bases[table]}/Undelete/{row[pk]}")
                transport.request("PUT", bases[table], json.dumps({pk: row[pk], **body}))
        elif kind == "update":
            key = [settings[c] for c in routes.NATURAL_KEYS[table]]
            row = lookup(table, key)
            if row:
                body = project(table, settings["Patch"])
                transport.request("PUT", bases[table], json.dumps({pk: row[pk], **body}))
        else:
            row = lookup(table, [settings["RunHash"]])
            if row:
                transport.request("DELETE", f"{bases[table]}/{row[pk]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--transport", choices=("direct", "mesh"), default="direct")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of both (default 2)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-meadowproxy-"))
    os.environ["UVCTL_DATA_DIR"] = str(work / "data")
    harness = load_test_module("meadow_harness", "tests/meadowproxy/meadow_harness.py")
    traffic = load_test_module("uvctl_flush_traffic", "tests/flush/conftest.py")

    from uvctl import assignment, flush, host
    from uvctl.actions import MANIFEST, QUEUE
    from uvctl.journal import Journal
    from uvctl_meadowproxy import config

    items = max(1, args.records * 20 // 185)  # about 9 records per work item, plus its manifests
    with Journal.open() as journal:
        traffic.record(journal, traffic.traffic(items, manifests=items // 20, seed=3))
        actions = journal.read(QUEUE, 0, 10**9) + journal.read(MANIFEST, 0, 10**9)
    total = len(actions)

    db_file = work / "meadow.sqlite"
    harness.create_tables(db_file)
    server = harness.MeadowServer(harness.install(), db_file, "uv-bench").start()
    options = {"Transport": "direct", "Url": server.url, "RouteHash": "uv-bench"}
    stubs = []
    if args.transport == "mesh":
        mesh = load_test_module("coordinator_stub", "tests/meadowproxy/coordinator_stub.py")
        stubs.append(mesh.CoordinatorStub())
        stubs.append(mesh.DataBeaconStub(stubs[0].url, "db1", server, "UV Bench"))
        options = {"Transport": "mesh", "Url": stubs[0].url, "Beacon": "db1", "RouteHash": "uv-bench"}
    def ours():
        """The real flush service over the assigned backend (replayed from the first record)."""
        harness.truncate(db_file)
        assignment.assign("meadowproxy", options)
        state = config.session(assignment.backend_for(QUEUE))  # the handle flush will use
        state["ids"].clear()  # the tables were emptied behind its back
        inner = state["transport"]
        state["transport"] = timed = Timed(inner.inner if isinstance(inner, Timed) else inner)
        start = time.perf_counter()
        report = flush.flush(bridges=(QUEUE, MANIFEST), replay=True).to_dict()
        assert report["Success"], report["Error"]
        return time.perf_counter() - start, timed.seconds

    def theirs():
        harness.truncate(db_file)
        backend = host.open_backend("meadowproxy", options)
        transport = Timed(config.session(backend)["transport"])
        start = time.perf_counter()
        upstream(actions, transport, config.bases(backend))
        host.close(backend)
        return time.perf_counter() - start, transport.seconds

    results = {"uvctl flush (batched)": [], "upstream (per record)": []}
    counts = []
    try:
        warm = host.open_backend("meadowproxy", options)  # warm the server up (JIT, caches)
        upstream(actions[:300], config.session(warm)["transport"], config.bases(warm))
        host.close(warm)
        for _ in range(args.rounds):  # alternate, so machine load falls on both alike
            for label, run in (("uvctl flush (batched)", ours), ("upstream (per record)", theirs)):
                results[label].append(run())
                counts.append({t: len(harness.rows(db_file, t)) for t in harness.UV_TABLES})
    finally:
        for stub in reversed(stubs):
            stub.close()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    assert all(c == counts[0] for c in counts), counts
    print(f"transport: {args.transport}; records: {total} journal records ({counts[0]}); rounds: {args.rounds}")
    best = {}
    for label, runs in results.items():
        for n, (seconds, requests) in enumerate(runs, 1):
            print(f"{label:24} round {n}: {seconds:7.2f} s  {total / seconds:8.0f} records/s  {len(requests):6d} requests"
                  f"  p50 {percentile(requests, 0.5):7.2f} ms  p99 {percentile(requests, 0.99):7.2f} ms"
                  f"  mean {statistics.mean(requests) * 1000:7.2f} ms")
        best[label] = statistics.median(seconds for seconds, _ in runs)
    ratio = best["upstream (per record)"] / best["uvctl flush (batched)"]
    print(f"ratio (median seconds): uvctl is {ratio:.1f}x faster (target: at least 3x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
