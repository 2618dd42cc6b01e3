#!/bin/bash
# run.sh — builds modelgate's libFuzzer targets with clang (ASan + UBSan), apart from
# the autotools build, into $FUZZ_OUT; seeds them from the fixtures, runs each for
# FUZZ_SECONDS and prints per target: runs, coverage (cov/ft), corpus size, CPU time
# and crashes; then replays every committed regression input through its target.
#
#   tests/fuzz/run.sh [--build] [--replay] [--tap] [TARGET...]
#     (none)    build, seed, fuzz every target (or those named), replay regressions
#     --build   build only
#     --replay  build, then only replay tests/fuzz/regressions/<target>/*
#     --tap     print TAP (one case per target and per regression input)
#
# Environment: FUZZ_SECONDS (60 per target), FUZZ_JOBS (targets at once: nproc),
# FUZZ_OUT (tests/fuzz/out in the build tree), FIXTURES (generated fixtures, for
# seeds), CLANG (clang), FUZZ_ARGS (more libFuzzer options), PYTHON3.
# Exit: 0 clean, 1 a crash, hang, leak or failing regression, 77 no clang/libFuzzer.
set -u
srcdir=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${TOP_BUILDDIR:-$srcdir}
OUT=${FUZZ_OUT:-$builddir/tests/fuzz/out}
SECONDS_PER=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
CLANG=${CLANG:-clang}
PYTHON3=${PYTHON3:-python3}
FIXTURES=${FIXTURES:-$builddir/tests/fixtures-out}
# A target that runs longer than this on one input is a hang (and an artifact).
TIMEOUT=${FUZZ_TIMEOUT:-10}
# Well above what a real scan needs (the worker's own limit is lower); beyond it
# libFuzzer reports an out-of-memory input.
RSS_MB=${FUZZ_RSS_MB:-2048}

mode=fuzz
tap=0
targets=()
for a in "$@"; do
        case $a in
        --build) mode=build ;;
        --replay) mode=replay ;;
        --tap) tap=1 ;;
        -*) echo "run.sh: unknown option $a" >&2; exit 2 ;;
        *) targets+=("${a#fuzz-}") ;;
        esac
done
if [ ${#targets[@]} -eq 0 ]; then
        for f in "$srcdir"/tests/fuzz/fuzz-*.c; do
                t=${f##*/fuzz-}
                targets+=("${t%.c}")
        done
fi

# Dictionaries per target (libFuzzer takes one: they are concatenated).
dicts_of() {
        case $1 in
        scan) echo pickle joblib zip npy gguf hdf5 safetensors json template keras onnx lfs tar ;;
        joblib) echo pickle joblib ;;
        archive) echo zip pickle npy ;;
        tar) echo tar pickle ;;
        npy) echo npy pickle ;;
        safetensors) echo safetensors json ;;
        gguf) echo gguf template ;;
        keras) echo keras json template ;;
        hdf5) echo hdf5 keras ;;
        *) echo "$1" ;;
        esac
}

say() { [ $tap -eq 1 ] && sed 's/^/# /' <<<"$*" || echo "$*"; }

# ---- build ------------------------------------------------------------------
mkdir -p "$OUT/obj" "$OUT/bin" "$OUT/dict" "$OUT/logs"
probe="$OUT/obj/probe"
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }\n' >"$probe.c"
if ! command -v "$CLANG" >/dev/null 2>&1; then
        reason="$CLANG not found (apt-get install clang)"
elif ! "$CLANG" -fsanitize=fuzzer,address,undefined "$probe.c" -o "$probe" 2>"$probe.log"; then
        reason="$CLANG cannot link -fsanitize=fuzzer,address,undefined (libclang_rt.fuzzer: apt-get install libclang-rt-14-dev)"
else
        reason=
fi
if [ -n "$reason" ]; then
        [ $tap -eq 1 ] && echo "1..0 # SKIP $reason" || echo "run.sh: $reason" >&2
        exit 77
fi

# What configure's config.h gives the sources.
printf '#define _GNU_SOURCE 1\n#define PACKAGE_VERSION "fuzz"\n' >"$OUT/obj/config.h"
CFLAGS="-std=gnu11 -O2 -gline-tables-only -fno-omit-frame-pointer -include $OUT/obj/config.h
        -fsanitize=address,undefined -fno-sanitize-recover=undefined
        -Wall -Wextra -Wno-unused-parameter -I$srcdir/scanner -I$srcdir/policy"
LIBS="-lz -lcjson -lcrypto -lm $(pkg-config --libs libseccomp 2>/dev/null)"

# Every scanner and policy source without a main(), in one archive: each target
# links only what it reaches.
newest_header=$(ls -t "$srcdir"/scanner/*.h "$srcdir"/policy/*.h "$0" | head -1)
lib_srcs=()
for f in "$srcdir"/scanner/*.c "$srcdir"/policy/*.c; do
        grep -q '^int main' "$f" || lib_srcs+=("$f")
done
exec 9>"$OUT/lock"
flock 9
build_failed=0
for f in "${lib_srcs[@]}"; do
        d=${f%/*}
        o="$OUT/obj/${d##*/}-$(basename "$f" .c).o"
        [ -f "$o" ] && [ "$o" -nt "$f" ] && [ "$o" -nt "$newest_header" ] && continue
        echo "$f $o"
done | CC=$CLANG FLAGS=$CFLAGS xargs -r -P "$JOBS" -n 2 \
        sh -c '$CC $FLAGS -fsanitize=fuzzer-no-link -c "$0" -o "$1" || { rm -f "$1"; exit 255; }' \
        2>"$OUT/logs/build.log" || build_failed=1
if [ $build_failed -eq 0 ]; then
        rm -f "$OUT/libmodelgate-fuzz.a"
        ar rcs "$OUT/libmodelgate-fuzz.a" "$OUT"/obj/*.o 2>>"$OUT/logs/build.log" || build_failed=1
fi
for t in "${targets[@]}"; do
        [ $build_failed -eq 0 ] || break
        src="$srcdir/tests/fuzz/fuzz-$t.c"
        bin="$OUT/bin/fuzz-$t"
        if [ ! -f "$src" ]; then
                echo "run.sh: no target $t ($src)" >&2
                exit 2
        fi
        if [ ! -f "$bin" ] || [ "$OUT/libmodelgate-fuzz.a" -nt "$bin" ] || [ "$src" -nt "$bin" ] ||
           [ "$srcdir/tests/fuzz/fuzz.h" -nt "$bin" ] || [ "$srcdir/tests/fuzz/fuzz-tmpfile.h" -nt "$bin" ]; then
                # shellcheck disable=SC2086
                "$CLANG" $CFLAGS -fsanitize=fuzzer "$src" "$OUT/libmodelgate-fuzz.a" $LIBS -o "$bin" \
                        2>>"$OUT/logs/build.log" || { build_failed=1; break; }
        fi
        : >"$OUT/dict/$t.dict"
        for d in $(dicts_of "$t"); do
                [ -f "$srcdir/tests/fuzz/$d.dict" ] && cat "$srcdir/tests/fuzz/$d.dict" >>"$OUT/dict/$t.dict"
        done
done
has_target() {
        local t
        for t in "${targets[@]}"; do
                [ "$t" = "$1" ] && return 0
        done
        return 1
}
if [ $build_failed -eq 0 ] && has_target worker-proto; then
        # shellcheck disable=SC2086
        "$CLANG" $CFLAGS "$srcdir/tests/fuzz/seed-worker-proto.c" "$OUT/libmodelgate-fuzz.a" $LIBS \
                -fsanitize=fuzzer-no-link -o "$OUT/bin/seed-worker-proto" 2>>"$OUT/logs/build.log" || build_failed=1
fi
flock -u 9
if [ $build_failed -ne 0 ]; then
        cat "$OUT/logs/build.log" >&2
        [ $tap -eq 1 ] && echo "1..1" && echo "not ok 1 - build the fuzz targets with $CLANG"
        exit 1
fi
[ "$mode" = build ] && { say "fuzz targets built in $OUT/bin"; exit 0; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

n=0
fail=0
result() {   # ok|not_ok, text
        n=$((n + 1))
        if [ $tap -eq 1 ]; then
                [ "$1" = ok ] && echo "ok $n - $2" || echo "not ok $n - $2"
        else
                [ "$1" = ok ] && echo "ok:   $2" || echo "FAIL: $2"
        fi
        [ "$1" = ok ] || fail=1
}

# ---- seeds --------------------------------------------------------------------
seed_target() {
        local t=$1 s="$OUT/seeds/$1"
        mkdir -p "$s"
        [ -d "$srcdir/tests/fuzz/seeds/$t" ] && cp "$srcdir/tests/fuzz/seeds/$t"/* "$s"/ 2>/dev/null
        [ -d "$srcdir/tests/fuzz/regressions/$t" ] && cp "$srcdir/tests/fuzz/regressions/$t"/* "$s"/ 2>/dev/null
        case $t in
        policy) cp "$srcdir/policy/policy.json" "$s/shipped-policy.json" ;;
        worker-proto)
                local files=()
                [ -d "$FIXTURES/malicious" ] && files=("$FIXTURES"/malicious/*)
                "$OUT/bin/seed-worker-proto" "$s" "${files[@]}" >/dev/null 2>&1 ;;
        esac
        [ -n "$(ls -A "$s")" ] || printf '\n' >"$s/newline"
}
if [ "$mode" = fuzz ]; then
        rm -rf "$OUT/seeds"
        mkdir -p "$OUT/seeds"
        if [ -f "$FIXTURES/EXPECT" ] && "$PYTHON3" -c 'import zipfile' 2>/dev/null; then
                say "seeds from $FIXTURES: $("$PYTHON3" "$srcdir/tests/fuzz/seeds.py" "$FIXTURES" "$OUT/seeds")"
        else
                say "no fixtures at $FIXTURES (make check TESTS=tests/fixtures-check.sh): committed seeds only"
        fi
        for t in "${targets[@]}"; do
                seed_target "$t"
        done
fi

# ---- fuzz -------------------------------------------------------------------------
# One target: libFuzzer for SECONDS_PER seconds on its corpus (kept between runs)
# and its seeds; the shell's `times` gives the CPU time of the run.
# The smoke test (--tap) starts from the seeds alone, every time: a corpus grown
# by long runs would take longer to load than the few seconds it has.
corpus=corpus
[ $tap -eq 1 ] && corpus=corpus-smoke && rm -rf "$OUT/corpus-smoke"
fuzz_one() {
        local t=$1 bin="$OUT/bin/fuzz-$1" log="$OUT/logs/fuzz-$1.log"
        mkdir -p "$OUT/$corpus/$t" "$OUT/artifacts/$t"
        touch "$log.start"   # artifacts newer than this are this run's
        (
                # shellcheck disable=SC2086
                "$bin" -max_total_time="$SECONDS_PER" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" \
                        -print_final_stats=1 -dict="$OUT/dict/$t.dict" -artifact_prefix="$OUT/artifacts/$t/" \
                        ${FUZZ_ARGS:-} "$OUT/$corpus/$t" "$OUT/seeds/$t" >"$log" 2>&1
                echo "exit $?" >"$log.status"
                times >"$log.times"   # not in a pipe: that would be another process
        )
}

cpu_seconds() {   # the children line of `times`, "0m1.5s 0m0.2s" -> 2
        tail -1 "$1" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.0f", t }'
}

summary() {
        local t=$1 log="$OUT/logs/fuzz-$1.log"
        local runs cov ft corp st cpu crashes
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
        ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
        corp=$(ls "$OUT/$corpus/$t" | wc -l)
        st=$(cut -d' ' -f2 "$log.status")
        cpu=$(cpu_seconds "$log.times")
        crashes=$(find "$OUT/artifacts/$t" -type f -newer "$log.start" | grep -cE '/(crash|leak|timeout|oom)-')
        printf '%-18s %6ss %12s %7s %8s %7s %8s\n' "fuzz-$t" "$cpu" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$corp" "$crashes" >>"$OUT/logs/summary"
        if [ "$st" = 0 ] && [ "$crashes" -eq 0 ]; then
                result ok "fuzz-$t: ${cpu} s CPU, ${runs:-?} runs, cov ${cov:-?}, ft ${ft:-?}, no crash"
        else
                result not_ok "fuzz-$t: exit $st, $crashes artifact(s) in $OUT/artifacts/$t (log: $log)"
                grep -E '^==[0-9]+==ERROR|^SUMMARY|runtime error|ALARM|out-of-memory|fuzz:' "$log" | head -5 |
                        sed 's/^/# /'
        fi
}

count_regressions() {
        local c=0
        for t in "${targets[@]}"; do
                [ -d "$srcdir/tests/fuzz/regressions/$t" ] && c=$((c + $(ls "$srcdir/tests/fuzz/regressions/$t" | wc -l)))
        done
        echo $c
}

if [ $tap -eq 1 ]; then
        planned=$(count_regressions)
        [ "$mode" = fuzz ] && planned=$((planned + ${#targets[@]}))
        echo "1..$planned"
fi

if [ "$mode" = fuzz ]; then
        : >"$OUT/logs/summary"
        say "fuzzing ${#targets[@]} targets, ${SECONDS_PER} s each, $JOBS at a time (logs: $OUT/logs)"
        running=0
        for t in "${targets[@]}"; do
                if [ $running -ge "$JOBS" ]; then
                        wait -n
                        running=$((running - 1))
                fi
                fuzz_one "$t" &
                running=$((running + 1))
        done
        wait
        for t in "${targets[@]}"; do
                summary "$t"
        done
        {
                printf '%-18s %7s %12s %7s %8s %7s %8s\n' target cpu runs cov ft corpus crashes
                cat "$OUT/logs/summary"
                awk '{ c += $2; r += $3 } END { printf "total: %d s CPU, %d runs\n", c, r }' "$OUT/logs/summary"
        } | if [ $tap -eq 1 ]; then sed 's/^/# /'; else cat; fi
fi

# ---- regressions: every committed crashing input, once through its target --------
for t in "${targets[@]}"; do
        [ -d "$srcdir/tests/fuzz/regressions/$t" ] || continue
        for f in "$srcdir/tests/fuzz/regressions/$t"/*; do
                [ -f "$f" ] || continue
                log="$OUT/logs/regression-$t-${f##*/}.log"
                if "$OUT/bin/fuzz-$t" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" "$f" >"$log" 2>&1; then
                        result ok "regression fuzz-$t/${f##*/}"
                else
                        result not_ok "regression fuzz-$t/${f##*/} (log: $log)"
                        grep -E '^==[0-9]+==ERROR|^SUMMARY|runtime error|fuzz:' "$log" | head -3 | sed 's/^/# /'
                fi
        done
done
exit $fail
