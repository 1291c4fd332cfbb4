#!/usr/bin/env bash
# Runs the whole test suite on a Debian 12 machine, setting it up first when needed
# (idempotent: nothing is installed twice).
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

bash scripts/setup-host.sh || exit 1
# The two-node Slurm cluster (on this machine) and MPI image of the Slurm tests; starts the daemons when needed.
bash scripts/setup-slurm.sh || exit 1
# The CPython that the conda-mode tests package (built once, a few minutes, then cached).
bash scripts/build-test-python.sh || exit 1
if [ ! -x .venv/bin/pytest ]; then
    python3 -m venv .venv && .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' || exit 1
fi
.venv/bin/ruff check src tests shim zipapp build_zipapp.py bench || exit 1
.venv/bin/pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit "$status"
