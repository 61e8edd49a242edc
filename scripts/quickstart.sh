#!/usr/bin/env bash
# The whole Kilnflow journey on the bundled example project, on a machine
# with only Python: create a project, run it from source, inspect the
# recorded session, package it, install the wheel into a fresh environment
# and run it from a folder with no project files.
#
#   bash scripts/quickstart.sh [WORKDIR]     (default: a new temporary folder)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${1:-}" ]; then mkdir -p "$1" && work="$(cd "$1" && pwd)"; else work="$(mktemp -d)"; fi
step() { printf '\n== %s\n' "$*"; }

step "Install Kilnflow into a development environment ($work/dev)"
python3 -m venv "$work/dev"
"$work/dev/bin/python" -m pip install -q "$repo[build]"   # the build extra: new, package
kilnflow="$work/dev/bin/kilnflow"

step "kilnflow new demo"
cd "$work" && rm -rf demo && "$kilnflow" new demo
cd demo

step "kilnflow run (project mode)"
"$kilnflow" run --params min_valid=0
cat data/reporting/report.txt

step "kilnflow session list"
"$kilnflow" session list --limit 1

step "kilnflow package"
"$kilnflow" package

step "Install the wheel into a fresh production environment ($work/prod)"
"$work/dev/bin/python" -m pip wheel -q --wheel-dir "$work/wheels" "$repo"
python3 -m venv "$work/prod"
"$work/prod/bin/python" -m pip install -q --no-index --find-links "$work/wheels" dist/demo-0.1.0-py3-none-any.whl

step "python -m demo, from a folder holding only the input data (packaged mode)"
mkdir -p "$work/anywhere/data/raw"
cp data/raw/readings.json "$work/anywhere/data/raw/"
cd "$work/anywhere"
"$work/prod/bin/python" -m demo
cat data/reporting/report.txt
printf '\nDone: the same pipeline ran from source and from the installed wheel (%s).\n' "$work"
