"""Network-fault trials: a flush through :class:`FaultProxy` to a real meadow REST server
(the meadowproxy backend, direct transport) or to PostgreSQL or MariaDB (the sql backend).

``uvctl flush`` runs as a separate process again and again until it reports success (or
``max_runs`` is reached). Every failed run must stop cleanly: a non-zero exit, one
``uvctl: error:`` line and no traceback. At the end the target must equal the journal.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from . import procs
from .compare import compare_target
from .faultproxy import FaultProxy
from .workload import record, traffic

REPO = Path(__file__).resolve().parent.parent
HARNESS = REPO / "tests" / "meadowproxy" / "meadow_harness.py"
ROUTE_HASH = "uv-reliability"


def _test_module(name: str, path: Path):
    """A helper module of the test suite, imported once as ``name``."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def meadow_harness():
    """The meadowproxy tests' harness module (a real meadow-endpoints server on node)."""
    return _test_module("meadow_harness", HARNESS)


def _stubs():
    """The meadowproxy tests' coordinator and databeacon stubs (protocol-faithful, in-process)."""
    return _test_module("coordinator_stub", HARNESS.with_name("coordinator_stub.py"))


def _meadow_server(work_dir: Path):
    """A started meadow REST server on ``work_dir/meadow.sqlite`` (tables created once); ``(server, db_file)``."""
    harness = meadow_harness()
    work_dir.mkdir(parents=True, exist_ok=True)
    db_file = work_dir / "meadow.sqlite"
    if not db_file.exists():
        harness.create_tables(db_file)
    return harness.MeadowServer(harness.install(), db_file, ROUTE_HASH).start(), db_file


def clean_failure(stderr: str) -> bool:
    """One ``uvctl: error:`` line, nothing else of note, no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return len(lines) == 1 and lines[0].startswith("uvctl: error:") and "Traceback" not in stderr \
        and not lines[0].startswith("uvctl: error: unexpected ")


def _journal(data_dir: Path, records: int, seed: int, prefix: str):
    from uvctl.journal import Journal

    data_dir.mkdir(parents=True, exist_ok=True)
    with Journal.open(data_dir / "journal.sqlite") as journal:
        if journal.last_seq() == 0:
            record(journal, traffic(records, prefix=prefix, seed=seed))


def flush_until_done(data_dir: Path, target_url: str, proxy: FaultProxy, max_runs: int, log, batch_size=500) -> dict:
    """Run ``uvctl flush`` until it succeeds; figures of the runs; then compare the target."""
    from uvctl.journal import Journal

    figures = {"runs": 0, "runs_failed": 0, "unclean_failures": 0, "completed": False, "first_unclean": None}
    while figures["runs"] < max_runs:
        result = procs.run(data_dir, "flush", "--batch-size", batch_size, timeout=600)
        figures["runs"] += 1
        if result.returncode == 0:
            figures["completed"] = True
            break
        figures["runs_failed"] += 1
        if not clean_failure(result.stderr):
            figures["unclean_failures"] += 1
            figures["first_unclean"] = figures["first_unclean"] or result.stderr[-600:]
        if figures["runs"] % 10 == 0:
            log(f"  run {figures['runs']}: {result.stderr.strip()[:160]}")
    figures["faults_injected"] = proxy.faults
    figures["faults_by_kind"] = {k: v for k, v in sorted(proxy.counts.items()) if k != "passed"}
    figures["requests_passed"] = proxy.counts.get("passed", 0)
    proxy.set_rate(0.0)
    with Journal.open(data_dir / "journal.sqlite") as journal:
        result = compare_target(target_url, journal)
    figures.update({"records_compared": result.compared, "lost": result.lost, "duplicated": result.duplicated,
                    "differing": result.differing, "first_problem": result.first_problem})
    return figures


def meadow_trial(work_dir, records: int = 10000, rate: float = 0.2, seed: int = 3, max_runs: int = 300,
                 kinds=None, log=print, batch_size: int = 500) -> dict:
    """A ``records``-record flush to a meadow REST server through the proxy at ``rate``."""
    work_dir = Path(work_dir)
    server, db_file = _meadow_server(work_dir)
    try:
        with FaultProxy(server.port, mode="http", rate=rate, seed=seed, kinds=kinds) as proxy:
            data_dir = work_dir / "data"
            _journal(data_dir, records, seed, "net")
            assign = procs.run(data_dir, "persistence", "assign", "--backend", "meadowproxy", "--transport", "direct",
                               "--url", proxy.url, "--route-hash", ROUTE_HASH)
            figures = flush_until_done(data_dir, f"sqlite:///{db_file}", proxy, max_runs, log, batch_size)
            figures["assign_exit"] = assign.returncode
    finally:
        server.stop()
    figures.update({"records": records, "fault_rate": rate})
    return figures


def mesh_trial(work_dir, records: int = 10000, rate: float = 0.2, seed: int = 5, max_runs: int = 300,
               kinds=None, log=print, batch_size: int = 100) -> dict:
    """The same flush over the mesh: uvctl → proxy → coordinator → databeacon → meadow server."""
    stubs = _stubs()
    work_dir = Path(work_dir)
    server, db_file = _meadow_server(work_dir)
    coordinator = stubs.CoordinatorStub()
    beacon = stubs.DataBeaconStub(coordinator.url, "db1", server, "UV Reliability")
    port = int(coordinator.url.rsplit(":", 1)[1])
    try:
        with FaultProxy(port, mode="http", rate=rate, seed=seed, kinds=kinds) as proxy:
            data_dir = work_dir / "data"
            _journal(data_dir, records, seed, "mesh")
            assign = procs.run(data_dir, "persistence", "assign", "--backend", "meadowproxy", "--transport", "mesh",
                               "--url", proxy.url, "--beacon", "db1", "--connection", "1")
            figures = flush_until_done(data_dir, f"sqlite:///{db_file}", proxy, max_runs, log, batch_size)
            figures["assign_exit"] = assign.returncode
    finally:
        beacon.close()
        coordinator.close()
        server.stop()
    figures.update({"records": records, "fault_rate": rate})
    return figures


def sql_trial(work_dir, kind: str = "postgres", records: int = 10000, rate: float = 0.2, seed: int = 4,
              max_runs: int = 300, log=print, batch_size: int = 500) -> dict:
    """A ``records``-record flush to a fresh PostgreSQL (``postgres``) or MariaDB/MySQL
    (``mysql``) database through the proxy (tcp mode) at ``rate``."""
    from sqlalchemy.engine import make_url

    work_dir = Path(work_dir)
    url = procs.create_database(kind)
    parsed = make_url(url)
    try:
        port, prefix = _SERVER_KINDS[kind]
        with FaultProxy(parsed.port or port, mode="tcp", rate=rate, seed=seed) as proxy:
            via = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            data_dir = work_dir / "data"
            _journal(data_dir, records, seed, prefix)
            assign = procs.run(data_dir, "persistence", "assign", "--backend", "sql", "--db", via)
            figures = flush_until_done(data_dir, url, proxy, max_runs, log, batch_size)
            figures["assign_exit"] = assign.returncode
    finally:
        procs.drop_database(url)
    figures.update({"records": records, "fault_rate": rate})
    return figures


#: Per server kind: its default port, and the prefix of the trial's journal records.
_SERVER_KINDS = {"postgres": (5432, "pgnet"), "mysql": (3306, "mynet")}
