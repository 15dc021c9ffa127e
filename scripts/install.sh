#!/usr/bin/env bash
# Create .venv (if missing) and install uvctl, its three plugin distributions and the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check \
  -e '.[test,postgres,mysql]' -e plugins/memory -e plugins/meadowproxy -e plugins/legacy_beacons
echo "uvctl installed in .venv ($(.venv/bin/uvctl --version))"
