"""The fast subset of the reliability trials (``python -m reliability.run`` runs them in full:
50 kill -9 trials per target, 10k-record flushes at a 20% fault rate; see docs/reliability.md)."""

from __future__ import annotations

import pytest

from reliability import concurrency, crash, disk, network


def _assert_no_loss(figures: dict) -> None:
    assert figures["lost"] == 0 and figures["duplicated"] == 0 and figures["differing"] == 0, figures
    assert figures["records_compared"] > 0, figures


@pytest.mark.slow
def test_kill_9_during_flush_into_sqlite_then_rerun(tmp_path):
    figures = crash.flush_trials(tmp_path, lambda n: f"sqlite:///{tmp_path}/target-{n}.sqlite", trials=3,
                                 records=1000, batch_size=20, seed=7, log=lambda *_: None)
    _assert_no_loss(figures)
    assert figures["reruns_ok"] == 3 and figures["pending_after_rerun"] == 0, figures


@pytest.mark.slow
@pytest.mark.parametrize("kind", [pytest.param("postgres", marks=pytest.mark.postgres),
                                  pytest.param("mysql", marks=pytest.mark.mysql)])
def test_kill_9_during_flush_into_a_server_database_then_rerun(tmp_path, kind):
    from reliability import procs

    figures = crash.flush_trials(tmp_path, lambda n: procs.create_database(kind), procs.drop_database, trials=2,
                                 records=800, batch_size=20, seed=8, log=lambda *_: None)
    _assert_no_loss(figures)
    assert figures["reruns_ok"] == 2 and figures["pending_after_rerun"] == 0, figures


@pytest.mark.slow
def test_kill_9_during_journal_import_then_rerun(tmp_path):
    figures = crash.import_trials(tmp_path, trials=3, records=2000, seed=9, log=lambda *_: None)
    _assert_no_loss(figures)
    assert figures["reruns_ok"] == 3 and figures["log_mismatches"] == 0, figures


@pytest.mark.slow
@pytest.mark.node
@pytest.mark.parametrize(
    "trial, records, seed",
    [
        pytest.param(network.meadow_trial, 600, 5, id="direct-to-meadow"),
        pytest.param(network.mesh_trial, 300, 6, id="over-the-mesh-through-a-faulty-coordinator-link"),
    ],
)
def test_flush_through_a_faulty_network_to_meadow_completes_row_for_row(tmp_path, trial, records, seed):
    figures = trial(tmp_path, records=records, rate=0.2, seed=seed, max_runs=200, batch_size=50, log=lambda *_: None)
    assert figures["completed"], figures
    assert figures["faults_injected"] > 0 and figures["unclean_failures"] == 0, figures
    _assert_no_loss(figures)


@pytest.mark.slow
@pytest.mark.postgres
def test_flush_through_a_faulty_network_to_postgres_completes_row_for_row(tmp_path):
    figures = network.sql_trial(tmp_path, "postgres", records=600, rate=0.3, seed=6, max_runs=200, batch_size=100,
                                     log=lambda *_: None)
    assert figures["completed"] and figures["unclean_failures"] == 0, figures
    _assert_no_loss(figures)


@pytest.mark.slow
def test_four_writers_and_a_flush_lose_and_duplicate_nothing(tmp_path):
    figures = concurrency.trial(tmp_path, f"sqlite:///{tmp_path}/target.sqlite", writers=4, items=25, manifests=4,
                                log=lambda *_: None)
    assert figures["calls"] > 0 and figures["calls_failed"] == 0 and figures["writer_errors"] == 0, figures
    assert figures["lost"] == 0 and figures["duplicated"] == 0, figures
    assert figures["seq_order_violations"] == 0 and figures["wrong_record_at_seq"] == 0, figures
    assert figures["event_seq_violations"] == 0, figures
    assert figures["lost_in_target"] == figures["duplicated_in_target"] == figures["differing"] == 0, figures
    assert figures["pending_after_final_flush"] == 0, figures


needs_mount = pytest.mark.skipif(not disk.can_mount(), reason="mounting a tmpfs needs root")


@needs_mount
def test_a_full_disk_gives_a_clear_error_and_corrupts_nothing(tmp_path):
    figures = disk.disk_full_trial(tmp_path, size="600k", chunk=150)
    assert figures["imports_ok"] > 0 and figures["imports_failed"] == 1, figures
    assert figures["unclean_errors"] == 0, figures
    assert figures["journal_integrity"] == "ok" and figures["journal_unchanged_by_failed_import"], figures
    assert figures["log_records"] == figures["log_records_expected"], figures
    assert figures["stats_exit_on_full_disk"] == 0 and figures["flush_exit_after_space"] == 0, figures
    _assert_no_loss(figures)


@needs_mount
def test_a_read_only_data_dir_refuses_writes_clearly_and_keeps_reads(tmp_path):
    figures = disk.read_only_trial(tmp_path)
    assert figures["unclean_errors"] == 0 and figures["unexpected_success"] == 0, figures
    assert figures["reads_ok"] == figures["reads"], figures
    assert figures["journal_integrity"] == "ok" and figures["journal_unchanged"], figures
    assert figures["flush_after_rw_exit"] == 0, figures
    _assert_no_loss(figures)
