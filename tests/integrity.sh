#!/bin/bash
# integrity.sh — expected hashes through the real CLI (see integrity.py).
exec "${PYTHON3:-python3}" "${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/integrity.py"
