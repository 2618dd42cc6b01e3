#!/bin/bash
# fuzz-smoke.sh — every libFuzzer target (tests/fuzz/fuzz-*.c) built with clang and
# run for a few seconds from the fixtures' seeds, and every committed crashing
# input (tests/fuzz/regressions/<target>/*) replayed once through its target. A
# crash, hang, leak or sanitizer report fails. Skips without clang or libFuzzer.
# `make fuzz` runs the same targets for longer.
set -u
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# Seeds come from the generated fixtures when Debian's loaders can make them.
if [ -n "${FIXTURES:-}" ]; then
        bash "$srcdir/tests/fixtures-gen.sh" >/dev/null 2>&1 || true
fi
export FUZZ_SECONDS=${FUZZ_SMOKE_SECONDS:-3}
exec bash "$srcdir/tests/fuzz/run.sh" --tap
