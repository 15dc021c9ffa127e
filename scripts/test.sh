#!/usr/bin/env bash
# Run the whole test suite (installs first when .venv is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/uvctl ] || bash scripts/install.sh
exec .venv/bin/python -m pytest "$@"
