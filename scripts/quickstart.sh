#!/usr/bin/env bash
# The main job on the embedded default (SQLite in the data dir), end to end:
# create the schema, import the example Ultravisor data dir into the journal,
# assign the built-in sql backend, flush, and print the status.
set -euo pipefail
cd "$(dirname "$0")/.."
UVCTL=.venv/bin/uvctl
[ -x "$UVCTL" ] || bash scripts/install.sh
set -x
"$UVCTL" schema ensure
"$UVCTL" journal import examples/ultravisor-datadir
"$UVCTL" persistence assign --backend sql
"$UVCTL" flush
"$UVCTL" persistence status
