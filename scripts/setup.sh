#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for tykky and runs a first real example:
# installs Apptainer and the build tools (scripts/setup-host.sh), the development venv,
# builds dist/tykky.pyz, builds an installation from examples/requirements.txt and runs it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

bash scripts/setup-host.sh
if [ ! -x .venv/bin/pytest ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
fi
.venv/bin/python build_zipapp.py

example=$(mktemp -d /tmp/tykky-example.XXXXXX)
trap 'rm -rf "$example"' EXIT
echo "== Building an installation from examples/requirements.txt into $example/inst"
CW_GLOBAL_YAML=debian-test python3 dist/tykky.pyz pip-containerize new --prefix "$example/inst" examples/requirements.txt
echo "== Running it"
"$example/inst/bin/python" -c 'import sys, six, yaml; print("python", sys.version.split()[0], "at", sys.executable); print("six", six.__version__, "yaml", yaml.__version__)'
ls "$example/inst" "$example/inst/bin"
