#!/bin/bash
# agent-bench.sh — what modelgated costs per open(), measured in one run on the same
# files, against no watcher and against the least any FAN_OPEN_PERM listener costs
# (fanotify-floor). Not a test: it prints a table and the ratios to the targets.
#
#  (a) no watcher                 (b) fanotify-floor (allow-all, filesystem mark)
#  (c) modelgated, cached         every file decided once before the measured runs
#  (d) modelgated, first sight    files rewritten in place before each run, each then
#                                 opened once: a file the running daemon has not decided
#                                 (its cache key has ctime; a write clears ignore marks),
#                                 as when a checkpoint lands. A fresh daemon per run would
#                                 measure its cold start instead.
#  (e) modelgated + ignore marks  kernel ignore marks opted in, warmed like (c)
#  (f) small-file opens while another process opens a 2 GB file the daemon has not
#      seen, which it hashes whole: cached (f-c) and first-sight (f-d) small files
# Each with 1 and 4 opener threads; each run 3 times, the best kept.
#
# The files live in a private tmpfs mounted for the run (FANOTIFY.md's figures are on
# tmpfs), so the watchers' filesystem marks see only this benchmark's opens and a
# watcher left behind by a killed run can hold up nothing else.
#
# With one opener, an allow-all listener costs ~8 µs per open when the scheduler puts
# it on the opener's CPU and ~50 µs when it wakes on another (measured here, 2 vCPUs),
# and unpinned runs land in either mode. PLACEMENT=same pins watcher and openers to
# CPU 0, PLACEMENT=split pins openers to CPU 0 and the watcher (its workers too) to
# the others; the default, free, pins nothing. Compare rows of one placement only.
#
# Environment: BENCH_BIN (dir with fanotify-floor and open-latency; default: this
# script's dir), MODELGATE_DAEMON (modelgated; rows c-f are skipped without it),
# MODELGATE_POLICY (--policy for modelgated; default policy/policy.json of the
# source tree; row (e) runs on a copy with "ignore_marks": true),
# MODELGATE_IGNORE_ARGS (instead, the modelgated arguments that opt in to ignore
# marks, e.g. "--policy FILE"), OPENS (opens per thread, default 20000),
# OPENS_F (opens per thread in row f, default 5000), BIG_SRC (the big file,
# default /var/tmp/modelgate-bench/zip-2gb.pt; a 2 GB fallocated file without it),
# PLACEMENT (free, same or split), REPS (runs per row, the best kept; default 3).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${BENCH_BIN:-$here}
daemon=${MODELGATE_DAEMON:-$top/modelgated}
policy=${MODELGATE_POLICY:-$top/policy/policy.json}
[ -f "$policy" ] || policy=
PYTHON3=${PYTHON3:-python3}
OPENS=${OPENS:-20000}
OPENS_F=${OPENS_F:-5000}
BIG_SRC=${BIG_SRC:-/var/tmp/modelgate-bench/zip-2gb.pt}
NFILES=200              # half pickles, half text; divisible by both thread counts
THREADS="1 4"
REPS=${REPS:-3}
PLACEMENT=${PLACEMENT:-free}
RUN_TIMEOUT=300         # seconds any one opener run may take before it is killed
READY_TIMEOUT=20        # seconds a watcher may take to place its marks
BIG_HEAD_START=0.05     # seconds the big open gets before the small opens start (f)

floor=$bin/fanotify-floor
opener=$bin/open-latency
for b in "$floor" "$opener"; do
        [ -x "$b" ] || { echo "agent-bench: $b not built (make bench)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "agent-bench: skipped: fanotify permission events need root" >&2; exit 77; }
ncpu=$(nproc)
case $PLACEMENT in
free)   pin_opener=(); pin_watcher=() ;;
same)   pin_opener=(taskset -c 0); pin_watcher=(taskset -c 0) ;;
split)  ((ncpu >= 2)) || { echo "agent-bench: PLACEMENT=split needs 2 CPUs" >&2; exit 1; }
        pin_opener=(taskset -c 0); pin_watcher=(taskset -c "1-$((ncpu - 1))") ;;
*)      echo "agent-bench: PLACEMENT=$PLACEMENT: expected free, same or split" >&2; exit 1 ;;
esac
have_daemon=false
[ -x "$daemon" ] && have_daemon=true

# ---- background processes: every one is in pids, every one is stopped on exit ----
work=$(mktemp -d /var/tmp/modelgate-agent-bench.XXXXXX)
pids=()
notes=$work/notes       # printed under the table
: >"$notes"

forget_pid() {   # PID: no longer ours to stop
        local keep=() p
        for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
        pids=("${keep[@]+"${keep[@]}"}")
}

stop_pid() {    # PID: SIGTERM, up to 5 s, then SIGKILL; its exit status in $stopped_rc
        local pid=$1 i
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        stopped_rc=0
        wait "$pid" 2>/dev/null || stopped_rc=$?
        forget_pid "$pid"
}

cleanup() {
        local p
        for p in "${pids[@]+"${pids[@]}"}"; do stop_pid "$p"; done
        if mountpoint -q "$work/fs"; then umount "$work/fs"; fi
        rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

wait_for_line() {       # FILE PATTERN PID: until FILE has PATTERN; fails if PID dies
        local deadline=$((SECONDS + READY_TIMEOUT))
        until grep -q "$2" "$1" 2>/dev/null; do
                kill -0 "$3" 2>/dev/null || { echo "agent-bench: watcher exited before ready:" >&2; cat "$1" >&2; return 1; }
                ((SECONDS < deadline)) || { echo "agent-bench: watcher not ready in ${READY_TIMEOUT}s" >&2; return 1; }
                sleep 0.02
        done
}

watcher=
start_floor() {
        "${pin_watcher[@]}" "$floor" "$fs" >"$work/floor.out" 2>&1 &
        watcher=$!; pids+=("$watcher")
        wait_for_line "$work/floor.out" '^ready$' "$watcher"
}

start_daemon() {        # POLICY ("": modelgated's default) [more modelgated arguments...]
        local args=(--watch "$fs")
        [ -z "$1" ] || args+=(--policy "$1")
        shift
        "${pin_watcher[@]}" env -u NOTIFY_SOCKET "$daemon" "${args[@]}" "$@" >"$work/daemon.log" 2>&1 &
        watcher=$!; pids+=("$watcher")
        wait_for_line "$work/daemon.log" '^modelgated: ready' "$watcher"
}

stop_watcher() {        # NAME
        stop_pid "$watcher"
        [ "$stopped_rc" = 0 ] || echo "$1 exited $stopped_rc on SIGTERM (expected 0)" >>"$notes"
        watcher=
}

# ---- the files ----------------------------------------------------------------
fs=$work/fs
mkdir -p "$fs"
if ! mount -t tmpfs -o size=3g,mode=0755 modelgate-bench "$fs"; then
        echo "agent-bench: cannot mount a tmpfs at $fs" >&2; exit 1
fi
small=$fs/small
src=$work/src           # pristine copies on /var/tmp, unwatched: the rewrite source
mkdir -p "$small" "$src"
"$PYTHON3" - "$src" "$NFILES" <<'EOF'
import os, pickle, sys
out, n = sys.argv[1], int(sys.argv[2])
for i in range(n // 2):         # benign pickles, 2-6 KB: builtin containers only
    obj = {"name": "layer%d" % i, "shape": [i % 7 + 1, 64],
           "values": list(range(300 + 37 * (i % 25))), "note": "x" * (i % 50)}
    with open(os.path.join(out, "w%03d.pkl" % i), "wb") as f:
        pickle.dump(obj, f, protocol=2 + i % 4)
for i in range(n - n // 2):     # plain text, 2-6 KB
    with open(os.path.join(out, "notes%03d.txt" % i), "w") as f:
        f.write("line %d of a plain text file\n" % i * (80 + 2 * (i % 80)))
EOF
cp -- "$src"/* "$small"/
rewrite_small() { cp -- "$src"/* "$small"/; }  # O_TRUNC in place: same inodes, new ctime

# The big file of row (f) is a Hugging Face cache blob (.../blobs/<its sha256>):
# modelgated hashes such a file whole before its verdict, which is the multi-GB
# first-sight work. Under any other name a torch zip is decided from its directory
# and pickle (a 2 GB one in milliseconds), and row (f) would overlap nothing.
big=
if $have_daemon; then
        big_tmp=$fs/big.tmp
        if [ -f "$BIG_SRC" ]; then
                cp -- "$BIG_SRC" "$big_tmp"
        else
                fallocate -l 2G "$big_tmp"
        fi
        big_sha=$("$PYTHON3" -c '
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    while b := f.read(1 << 20):
        h.update(b)
print(h.hexdigest())' "$big_tmp")
        mkdir -p "$fs/big/models--bench--big/blobs"
        big=$fs/big/models--bench--big/blobs/$big_sha
        mv -- "$big_tmp" "$big"
fi

# ---- measuring -------------------------------------------------------------------
declare -A res
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

run_opener() {  # open-latency arguments...: its line in $opener_line
        local pid rc=0
        # in the background, so that a signal to this script is handled at once
        timeout -k 5 "$RUN_TIMEOUT" "${pin_opener[@]}" "$opener" "$@" >"$work/opener.out" &
        pid=$!; pids+=("$pid")
        wait "$pid" || rc=$?
        forget_pid "$pid"
        if ((rc != 0)); then
                echo "agent-bench: open-latency $* failed or timed out (status $rc)" >&2
                return 1
        fi
        opener_line=$(<"$work/opener.out")
        [ "$(field "$opener_line" denied)" = 0 ] ||
                echo "open-latency $*: $(field "$opener_line" denied) opens denied" >>"$notes"
}

best_of() {     # KEY THREADS OPENS_PER_THREAD [PREP]: best opens/s of REPS runs
        local key=$1 t=$2 n=$3 prep=${4:-} line best='' r
        for ((r = 0; r < REPS; r++)); do
                [ -z "$prep" ] || $prep
                run_opener -t "$t" -n "$n" "$small"
                line=$opener_line
                if [ -z "$best" ] || awk -v a="$(field "$line" opens_per_s)" -v b="$(field "$best" opens_per_s)" 'BEGIN { exit !(a > b) }'; then
                        best=$line
                fi
        done
        res[$key]=$best
}

warm() { run_opener -t 1 -n "$NFILES" "$small"; }

# (f): one rep = the big file made new to the daemon (touch: ctime changes), opened
# by another process; BIG_HEAD_START later the small opens start. Keeps the rep with
# the lowest small-open p99, and the worst small-open max of all reps.
big_scan_best_of() {    # KEY THREADS OPENS_PER_THREAD [PREP]
        local key=$1 t=$2 n=$3 prep=${4:-} r line bigline bigpid best='' worst=0
        for ((r = 0; r < REPS; r++)); do
                [ -z "$prep" ] || $prep
                touch "$big"
                timeout -k 5 "$RUN_TIMEOUT" "${pin_opener[@]}" "$opener" -t 1 -n 1 "$big" >"$work/big.out" &
                bigpid=$!; pids+=("$bigpid")
                sleep "$BIG_HEAD_START"
                run_opener -t "$t" -n "$n" "$small"
                line=$opener_line
                wait "$bigpid" || { echo "agent-bench: the big open failed" >&2; return 1; }
                forget_pid "$bigpid"
                bigline=$(cat "$work/big.out")
                line="$line big_us=$(field "$bigline" mean_us)"
                worst=$(awk -v a="$(field "$line" max_us)" -v b="$worst" 'BEGIN { print (a > b) ? a : b }')
                if [ -z "$best" ] || awk -v a="$(field "$line" p99_us)" -v b="$(field "$best" p99_us)" 'BEGIN { exit !(a < b) }'; then
                        best=$line
                fi
        done
        res[$key]="$best worst_max_us=$worst"
}

ignore_marks() {        # kernel ignore marks the watcher holds (inode marks, ignored_mask != 0)
        cat /proc/"$watcher"/fdinfo/* 2>/dev/null | grep '^fanotify ino:' | grep -vc 'ignored_mask:0\b' || true
}

echo "agent-bench: $NFILES files ($((NFILES / 2)) benign pickles, $((NFILES - NFILES / 2)) text, 2-6 KB) on $(stat -f -c %T "$fs") at $fs"
echo "agent-bench: $ncpu CPUs, kernel $(uname -r), placement $PLACEMENT; $OPENS opens per thread per run, best of $REPS"

for t in $THREADS; do best_of "a$t" "$t" "$OPENS"; done

start_floor
for t in $THREADS; do best_of "b$t" "$t" "$OPENS"; done
stop_watcher fanotify-floor

skip_c='' skip_d='' skip_e='' skip_f=''
if ! $have_daemon; then
        skip_c="skipped: modelgated not built"; skip_d=$skip_c; skip_e=$skip_c; skip_f=$skip_c
elif ! start_daemon "$policy"; then
        stop_pid "$watcher"
        skip_c="skipped: modelgated did not become ready"; skip_d=$skip_c; skip_e=$skip_c; skip_f=$skip_c
else
        warm
        for t in $THREADS; do best_of "c$t" "$t" "$OPENS"; done
        for t in $THREADS; do best_of "d$t" "$t" "$((NFILES / t))" rewrite_small; done
        warm
        for t in $THREADS; do big_scan_best_of "fc$t" "$t" "$OPENS_F"; done
        for t in $THREADS; do big_scan_best_of "fd$t" "$t" "$((NFILES / t))" rewrite_small; done
        stop_watcher modelgated

        # Opting in to ignore marks: MODELGATE_IGNORE_ARGS if given, else the policy
        # key ignore_marks (a copy of the policy with it true), else a --help flag.
        help=$(timeout 5 "$daemon" --help 2>&1 || true)
        ignore_policy=$policy ignore_args=()
        if [ -n "${MODELGATE_IGNORE_ARGS:-}" ]; then
                ignore_policy=''
                read -ra ignore_args <<<"$MODELGATE_IGNORE_ARGS"
        elif [ -n "$policy" ] && grep -q '"ignore_marks"' "$policy"; then
                ignore_policy=$work/policy-ignore-marks.json
                "$PYTHON3" -c '
import json, sys
p = json.load(open(sys.argv[1]))
p["ignore_marks"] = True
json.dump(p, open(sys.argv[2], "w"), indent=2)' "$policy" "$ignore_policy"
        elif flag=$(grep -o -- '--[a-z-]*ignore[a-z-]*' <<<"$help" | head -n 1) && [ -n "$flag" ]; then
                ignore_args=("$flag")
        else
                skip_e="skipped: neither modelgated --help nor its policy mentions ignore marks"
        fi
        how=${ignore_args[*]:-ignore_marks: true in a copy of $policy}
        if [ -z "$skip_e" ] && ! start_daemon "$ignore_policy" "${ignore_args[@]}"; then
                stop_pid "$watcher"
                skip_e="skipped: modelgated ($how) did not become ready"
        elif [ -z "$skip_e" ]; then
                warm
                echo "(e) modelgated with $how: $(ignore_marks) kernel ignore marks after one pass over $NFILES files" >>"$notes"
                for t in $THREADS; do best_of "e$t" "$t" "$OPENS"; done
                stop_watcher "modelgated ($how)"
        fi
fi

# ---- the table --------------------------------------------------------------------
row() {         # LABEL KEY SKIP
        local t line
        for t in $THREADS; do
                line=${res[$2$t]:-}
                if [ -n "$3" ]; then
                        printf '%-37s %7s   %s\n' "$1" "$t" "$3"
                else
                        printf '%-37s %7s %9.2f %9.2f %9.2f %10.0f\n' "$1" "$t" "$(field "$line" mean_us)" \
                                "$(field "$line" p50_us)" "$(field "$line" p99_us)" "$(field "$line" opens_per_s)"
                fi
        done
}
echo
# (µ is two bytes: printf would pad these by one too few)
printf '%-37s %7s %10s %10s %10s %10s\n' "row" "openers" "µs/open" "p50 µs" "p99 µs" "opens/s"
row "(a) no watcher" a ""
row "(b) fanotify-floor" b ""
row "(c) modelgated, cached" c "$skip_c"
row "(d) modelgated, first sight" d "$skip_d"
row "(e) modelgated, ignore marks" e "$skip_e"
row "(f-c) cached, during a 2 GB hash" fc "$skip_f"
row "(f-d) first sight, during 2 GB hash" fd "$skip_f"

ratio() {       # LABEL EXPR(awk, a b) A B TARGET(awk on r) TARGET_TEXT
        local r
        r=$(awk -v a="$3" -v b="$4" "BEGIN { printf \"%.2f\", $2 }")
        printf '%-52s %8s   target %s: %s\n' "$1" "$r" "$6" \
                "$(awk -v r="$r" "BEGIN { print ($5) ? \"met\" : \"MISSED\" }")"
}
echo
if [ -n "$skip_c" ]; then
        echo "ratios: $skip_c"
else
        ratio "cached / floor, µs per open, 1 opener" 'a / b' "$(field "${res[c1]}" mean_us)" "$(field "${res[b1]}" mean_us)" 'r <= 1.1' '<= 1.10x'
        ratio "cached / floor, opens/s, 4 openers" 'a / b' "$(field "${res[c4]}" opens_per_s)" "$(field "${res[b4]}" opens_per_s)" 'r >= 0.85' '>= 0.85'
        if [ -z "$skip_e" ]; then
                ratio "ignore marks - no watcher, µs per open, 1 opener" 'a - b' "$(field "${res[e1]}" mean_us)" "$(field "${res[a1]}" mean_us)" 'r <= 2' '<= +2 µs'
        else
                echo "ignore marks - no watcher: $skip_e"
        fi
        for k in fc1 fc4 fd1 fd4; do
                line=${res[$k]}
                big_ms=$(awk -v u="$(field "$line" big_us)" 'BEGIN { printf "%.0f", u / 1000 }')
                if awk -v e="$(field "$line" elapsed_s)" -v h="$BIG_HEAD_START" -v b="$big_ms" 'BEGIN { exit !(e + h > b / 1e3) }'; then
                        echo "($k) not measured: the big open ($big_ms ms) ended before the small opens did ($(field "$line" elapsed_s) s after a $BIG_HEAD_START s head start)"
                        continue
                fi
                # a small open that waited behind the hash would cost a good part of it
                ratio "($k) small-open p99 / the big file's first open" 'a / b' "$(field "$line" p99_us)" "$(field "$line" big_us)" 'r < 0.01' '< 0.01'
                echo "      big open $big_ms ms; worst small-open max of $REPS runs $(field "$line" worst_max_us) µs"
        done
fi
sed 's/^/note: /' "$notes"
