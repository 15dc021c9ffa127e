"""uvctl's reliability trials: crashes, network faults, concurrency, full and read-only disks.

Run them all with ``.venv/bin/python -m reliability.run`` (figures in
``reliability/last-run.json``); tests/reliability runs a fast subset of the same code.
"""
