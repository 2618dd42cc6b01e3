#!/bin/bash
# convert.sh — `modelgate convert` end to end (see convert.py).
exec "${PYTHON3:-python3}" "${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/convert.py"
