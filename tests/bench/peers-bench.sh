#!/bin/bash
# peers-bench.sh — modelgated side by side with fapolicyd and ClamAV's clamonacc: one
# run, one machine, the same files, the same opener (open-latency). Not a test: it
# prints a table of µs per open (1 opener) and opens/s (1 and 4 openers), each with its
# ratio to nothing watching.
#
#  none                     nothing watching
#  floor                    tests/bench/fanotify-floor: an allow-all FAN_OPEN_PERM listener
#  floor -2                 the same, its answers written by a second thread (fapolicyd's
#                           shape, a reader and a decider, without any decision)
#  modelgated, cached       every file decided once before the measured runs
#  modelgated, first sight  before each run the files are deleted and written anew (new
#                           inodes, never seen), then each is opened exactly once
#  fapolicyd                Debian's fapolicyd, permissive, uid = root, trust = file,
#                           compiled.rules "allow perm=open all : all"; cached and first
#                           sight as above
#  clamonacc                Debian's clamd (a one-line custom .ndb signature database)
#                           with clamonacc --fdpass, OnAccessPrevention yes, on the same
#                           directory; cached and first sight as above
# Each row with 1 and 4 opener threads, each run REPS times, the best kept.
#
# Installs fapolicyd and clamav-daemon with apt-get when they are missing (the packages'
# services are kept from starting and their units are disabled again), or exits 77
# saying why. Refuses (77) when a fapolicyd, clamd or clamonacc already runs here.
#
# Nothing on the host is changed by the measuring: the script re-executes itself in a
# private mount namespace (unshare), where the files live on a tmpfs of their own and
# fapolicyd's configuration, database and run directories are bind mounts of scratch
# directories over /etc/fapolicyd, /var/lib/fapolicyd and /run/fapolicyd. fapolicyd
# marks mounts (watch_fs = tmpfs), and a mount mark placed in a private namespace sees
# only opens made through that namespace's mounts: the other processes of the machine
# are never held up by it. clamd and clamonacc take their own configuration file. Every
# daemon started is stopped on exit (SIGTERM, then SIGKILL), and the namespace's mounts
# go with it.
#
# Placement (2 vCPUs here): PLACEMENT=split (the default) pins the openers to CPU 0
# and every watcher (modelgated and its workers, fapolicyd, clamd and clamonacc) to
# the others; free pins nothing; same pins all to CPU 0.
#
# Environment: BENCH_BIN (dir with fanotify-floor and open-latency; default: this
# script's dir), MODELGATE_DAEMON (modelgated), MODELGATE_POLICY (--policy for it;
# default policy/policy.json of the source tree), OPENS (opens per thread in cached
# rows, default 10000), REPS (runs per row, best kept; default 3), PLACEMENT, PYTHON3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${BENCH_BIN:-$here}
daemon=${MODELGATE_DAEMON:-$top/modelgated}
policy=${MODELGATE_POLICY:-$top/policy/policy.json}
[ -f "$policy" ] || policy=
PYTHON3=${PYTHON3:-python3}
OPENS=${OPENS:-10000}
REPS=${REPS:-3}
PLACEMENT=${PLACEMENT:-split}
NFILES=200              # half pickles, half text, 2-6 KB; divisible by both thread counts
THREADS="1 4"
RUN_TIMEOUT=300         # seconds any one opener run may take before it is killed
READY_TIMEOUT=60        # seconds a watcher may take to start (clamd loads its database)

skip() { echo "peers-bench: skipped: $*" >&2; exit 77; }

floor=$bin/fanotify-floor
opener=$bin/open-latency
for b in "$floor" "$opener" "$daemon"; do
        [ -x "$b" ] || { echo "peers-bench: $b not built (make bench)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || skip "fanotify permission events, fapolicyd and clamonacc need root"

# ---- outside the namespace: the peers installed, none running ----------------------
if [ -z "${PEERS_BENCH_IN_NS:-}" ]; then
        need=()
        command -v fapolicyd >/dev/null || need+=(fapolicyd)
        { command -v clamd && command -v clamonacc; } >/dev/null || need+=(clamav-daemon)
        if ((${#need[@]})); then
                command -v apt-get >/dev/null || skip "${need[*]} missing and no apt-get to install them"
                echo "peers-bench: installing ${need[*]} with apt-get" >&2
                # The packages' maintainer scripts would start their services: a
                # policy-rc.d that refuses, unless one is there already.
                own_policy_rc=false
                if [ ! -e /usr/sbin/policy-rc.d ]; then
                        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
                        chmod 755 /usr/sbin/policy-rc.d
                        own_policy_rc=true
                fi
                rc=0
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                        -o DPkg::Lock::Timeout=300 "${need[@]}" >&2 || rc=$?
                if ((rc != 0)); then
                        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
                        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                                -o DPkg::Lock::Timeout=300 "${need[@]}" >&2 && rc=0 || rc=$?
                fi
                if $own_policy_rc; then rm -f /usr/sbin/policy-rc.d; fi
                ((rc == 0)) || skip "apt-get install ${need[*]} failed (status $rc)"
                # A systemd booted on this machine later would start them: not ours to decide.
                if command -v systemctl >/dev/null; then
                        systemctl disable fapolicyd.service clamav-daemon.service clamav-daemon.socket \
                                clamav-freshclam.service >/dev/null 2>&1 || true
                fi
        fi
        for d in fapolicyd clamd clamonacc; do
                command -v "$d" >/dev/null || skip "$d is not installed"
                if pgrep -x "$d" >/dev/null; then
                        skip "a $d already runs on this machine (pid $(pgrep -x "$d" | head -n 1)): it would be measured too, and it is not this script's to stop"
                fi
        done
        command -v unshare >/dev/null || skip "unshare (util-linux) is missing"
        unshare --mount --propagation private true 2>/dev/null || skip "cannot make a private mount namespace (unshare --mount)"
        exec env PEERS_BENCH_IN_NS=1 unshare --mount --propagation private "$BASH" "$0" "$@"
fi

# ---- inside the private mount namespace ----------------------------------------------
ncpu=$(nproc)
case $PLACEMENT in
free)   pin_opener=(); pin_watcher=() ;;
same)   pin_opener=(taskset -c 0); pin_watcher=(taskset -c 0) ;;
split)  ((ncpu >= 2)) || { echo "peers-bench: PLACEMENT=split needs 2 CPUs" >&2; exit 1; }
        pin_opener=(taskset -c 0); pin_watcher=(taskset -c "1-$((ncpu - 1))") ;;
*)      echo "peers-bench: PLACEMENT=$PLACEMENT: expected free, same or split" >&2; exit 1 ;;
esac

work=$(mktemp -d /var/tmp/modelgate-peers-bench.XXXXXX)
pids=()
made_run_dir=false
notes=$work/notes
: >"$notes"

forget_pid() {
        local keep=() p
        for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
        pids=("${keep[@]+"${keep[@]}"}")
}

stop_pid() {    # PID: SIGTERM, up to 10 s, then SIGKILL; its exit status in $stopped_rc
        local pid=$1 i
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        stopped_rc=0
        wait "$pid" 2>/dev/null || stopped_rc=$?
        forget_pid "$pid"
}

cleanup() {
        local p m
        # The last started first: clamonacc before clamd.
        for ((p = ${#pids[@]} - 1; p >= 0; p--)); do stop_pid "${pids[p]}"; done
        for m in /run/fapolicyd /var/lib/fapolicyd /etc/fapolicyd "$work/fs"; do
                if mountpoint -q "$m"; then umount "$m" || umount -l "$m"; fi
        done
        if $made_run_dir; then rmdir /run/fapolicyd 2>/dev/null || true; fi
        rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

wait_until() {          # WHAT PID COMMAND...: until COMMAND succeeds; fails if PID dies
        local what=$1 pid=$2 deadline=$((SECONDS + READY_TIMEOUT))
        shift 2
        until "$@"; do
                kill -0 "$pid" 2>/dev/null || { echo "peers-bench: $what exited before it was ready" >&2; return 1; }
                ((SECONDS < deadline)) || { echo "peers-bench: $what not ready in ${READY_TIMEOUT}s" >&2; return 1; }
                sleep 0.05
        done
}

# ---- the files ------------------------------------------------------------------------
fs=$work/fs
mkdir -p "$fs"
mount -t tmpfs -o size=256m,mode=0755 modelgate-peers "$fs" || { echo "peers-bench: cannot mount a tmpfs" >&2; exit 1; }
small=$fs/small
probe=$fs/probe         # not opened by the benchmark: proves clamonacc is enforcing
src=$work/src           # pristine copies on /var/tmp, outside every watch
mkdir -p "$small" "$probe" "$src"
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
# First sight: new files (new inodes), as when a checkpoint lands. Every watcher here
# keys its cache on the inode; rewriting in place would not be new to all of them.
renew_small() { rm -f -- "$small"/*; cp -- "$src"/* "$small"/; }

marker=modelgate-peers-bench-marker     # clamd's signature: a file holding this string
printf '%s\n' "$marker" >"$probe/marker.txt"

# ---- measuring -------------------------------------------------------------------------
declare -A res
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

run_opener() {  # open-latency arguments...: its line in $opener_line
        local pid rc=0
        timeout -k 5 "$RUN_TIMEOUT" "${pin_opener[@]}" "$opener" "$@" >"$work/opener.out" &
        pid=$!; pids+=("$pid")
        wait "$pid" || rc=$?
        forget_pid "$pid"
        if ((rc != 0)); then
                echo "peers-bench: open-latency $* failed or timed out (status $rc)" >&2
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

measure() {     # KEY: cached rows (files seen once), then first-sight rows
        local t
        warm
        for t in $THREADS; do best_of "$1-cached$t" "$t" "$OPENS"; done
        for t in $THREADS; do best_of "$1-first$t" "$t" "$((NFILES / t))" renew_small; done
}

watcher_pids=()
stop_watchers() {       # NAME: stops what start_* started, the last first
        local i
        for ((i = ${#watcher_pids[@]} - 1; i >= 0; i--)); do
                stop_pid "${watcher_pids[i]}"
                [ "$stopped_rc" = 0 ] || [ "$stopped_rc" = 143 ] ||
                        echo "$1 (pid ${watcher_pids[i]}) exited $stopped_rc on SIGTERM" >>"$notes"
        done
        watcher_pids=()
}

start_bg() {    # LOG COMMAND...: in the background, pinned; its pid in $bg
        "${pin_watcher[@]}" "${@:2}" >"$1" 2>&1 &
        bg=$!; pids+=("$bg"); watcher_pids+=("$bg")
}

# modelgated
start_modelgated() {
        local args=(--watch "$fs")
        [ -z "$policy" ] || args+=(--policy "$policy")
        start_bg "$work/modelgated.log" env -u NOTIFY_SOCKET "$daemon" "${args[@]}"
        wait_until modelgated "$bg" grep -q '^modelgated: ready' "$work/modelgated.log"
}

# fapolicyd: its own /etc/fapolicyd, /var/lib/fapolicyd and /run/fapolicyd, in this
# namespace only.
start_fapolicyd() {
        local etc=$work/fapolicyd-etc
        mkdir -p "$etc/rules.d" "$etc/trust.d" "$work/fapolicyd-lib" "$work/fapolicyd-run"
        cat >"$etc/fapolicyd.conf" <<'EOF'
permissive = 1
nice_val = 0
q_size = 640
uid = root
gid = root
do_stat_report = 0
detailed_report = 0
db_max_size = 50
subj_cache_size = 1549
obj_cache_size = 8191
watch_fs = tmpfs
trust = file
integrity = none
syslog_format = rule,dec,perm,auid,pid,exe,:,path,ftype,trust
rpm_sha256_only = 0
allow_filesystem_mark = 0
EOF
        printf 'allow perm=open all : all\nallow perm=execute all : all\n' >"$etc/compiled.rules"
        : >"$etc/fapolicyd.trust"
        if [ ! -d /run/fapolicyd ]; then mkdir /run/fapolicyd; made_run_dir=true; fi
        mount --bind "$etc" /etc/fapolicyd
        mount --bind "$work/fapolicyd-lib" /var/lib/fapolicyd
        mount --bind "$work/fapolicyd-run" /run/fapolicyd
        # --debug-deny: in the foreground, a line only per denial (none: permissive,
        # and the rule allows). nice_val = 0: the same priority as the others here.
        start_bg "$work/fapolicyd.log" fapolicyd --permissive --debug-deny
        wait_until fapolicyd "$bg" grep -q 'Starting to listen for events' "$work/fapolicyd.log"
        grep -q "added $fs mount point" "$work/fapolicyd.log" ||
                { echo "peers-bench: fapolicyd did not mark $fs:" >&2; cat "$work/fapolicyd.log" >&2; return 1; }
}

# clamd + clamonacc: clamd reads the files through the descriptors clamonacc passes
# (--fdpass), so its own reads raise no events.
start_clamonacc() {
        mkdir -p "$work/clamdb" "$work/clamtmp"
        printf 'ModelgatePeersBench.Marker:0:*:%s\n' "$(printf '%s' "$marker" | od -An -tx1 | tr -d ' \n')" \
                >"$work/clamdb/peers-bench.ndb"
        cat >"$work/clamd.conf" <<EOF
LocalSocket $work/clamd.sock
FixStaleSocket true
LocalSocketMode 600
Foreground true
LogFile $work/clamd-file.log
LogTime true
PidFile $work/clamd.pid
DatabaseDirectory $work/clamdb
TemporaryDirectory $work/clamtmp
SelfCheck 0
Bytecode false
OnAccessIncludePath $fs
OnAccessPrevention yes
OnAccessExcludeUname clamav
EOF
        start_bg "$work/clamd.log" clamd --config-file="$work/clamd.conf"
        wait_until clamd "$bg" test -S "$work/clamd.sock"
        start_bg "$work/clamonacc.log" clamonacc --foreground --fdpass --config-file="$work/clamd.conf" \
                --log="$work/clamonacc-file.log"
        # Ready when it refuses the marker file (opened from another process).
        wait_until clamonacc "$bg" bash -c '! cat -- "$1" >/dev/null 2>&1' _ "$probe/marker.txt"
}

printf '%s\n' "peers-bench: $NFILES files ($((NFILES / 2)) benign pickles, $((NFILES - NFILES / 2)) text, 2-6 KB) on $(stat -f -c %T "$fs") at $small" \
        "peers-bench: $ncpu CPUs, kernel $(uname -r), placement $PLACEMENT; cached rows $OPENS opens per thread per run, best of $REPS" \
        "peers-bench: fapolicyd $(dpkg-query -W -f '${Version}' fapolicyd 2>/dev/null || echo '?'), clamav $(dpkg-query -W -f '${Version}' clamav-daemon 2>/dev/null || echo '?')"

for t in $THREADS; do best_of "none$t" "$t" "$OPENS"; done

start_bg "$work/floor.log" "$floor" "$fs"
wait_until fanotify-floor "$bg" grep -q '^ready$' "$work/floor.log"
for t in $THREADS; do best_of "floor$t" "$t" "$OPENS"; done
stop_watchers fanotify-floor
# The same, answered by a second thread (fapolicyd's shape: a reader and a decider).
start_bg "$work/floor2.log" "$floor" -2 "$fs"
wait_until "fanotify-floor -2" "$bg" grep -q '^ready$' "$work/floor2.log"
for t in $THREADS; do best_of "floor2-$t" "$t" "$OPENS"; done
stop_watchers "fanotify-floor -2"

skip_m='' skip_f='' skip_c=''
if start_modelgated; then measure mg; else skip_m="skipped: modelgated did not start"; cat "$work/modelgated.log" >&2; fi
stop_watchers modelgated
if start_fapolicyd; then measure fa; else skip_f="skipped: fapolicyd did not start"; cat "$work/fapolicyd.log" >&2; fi
stop_watchers fapolicyd
if start_clamonacc; then measure ca; else skip_c="skipped: clamonacc did not start"; cat "$work/clamd.log" "$work/clamonacc.log" >&2; fi
stop_watchers clamonacc

# ---- the table (Markdown) ------------------------------------------------------------------
n1=$(field "${res[none1]}" mean_us) o1=$(field "${res[none1]}" opens_per_s) o4=$(field "${res[none4]}" opens_per_s)
row() {         # LABEL KEY SKIP
        local l1 l4
        if [ -n "$3" ]; then
                printf '| %s | %s | | | | | | | |\n' "$1" "$3"
                return
        fi
        l1=${res[${2}1]} l4=${res[${2}4]}
        awk -v label="$1" -v m="$(field "$l1" mean_us)" -v p50="$(field "$l1" p50_us)" -v p99="$(field "$l1" p99_us)" \
            -v r1="$(field "$l1" opens_per_s)" -v r4="$(field "$l4" opens_per_s)" -v n1="$n1" -v o1="$o1" -v o4="$o4" \
            'BEGIN { printf "| %s | %.2f | %.1f× | %.1f | %.1f | %.0f | %.3f | %.0f | %.3f |\n",
                     label, m, m / n1, p50, p99, r1, r1 / o1, r4, r4 / o4 }'
}
echo
echo "| row | 1 opener: µs/open (mean) | ratio to none | p50 µs | p99 µs | 1 opener: opens/s | ratio to none | 4 openers: opens/s | ratio to none |"
echo "|---|---|---|---|---|---|---|---|---|"
awk -v label="nothing watching" -v r4="$o4" -v m="$n1" -v r1="$o1" -v p50="$(field "${res[none1]}" p50_us)" \
        -v p99="$(field "${res[none1]}" p99_us)" \
        'BEGIN { printf "| %s | %.2f | 1× | %.1f | %.1f | %.0f | 1 | %.0f | 1 |\n", label, m, p50, p99, r1, r4 }'
row "allow-all fanotify listener (fanotify-floor)" floor ""
row "the same, answered by a 2nd thread (fanotify-floor -2)" floor2- ""
row "modelgated, cached (second open)" mg-cached "$skip_m"
row "modelgated, first sight (new file)" mg-first "$skip_m"
row "fapolicyd permissive, cached" fa-cached "$skip_f"
row "fapolicyd permissive, first sight" fa-first "$skip_f"
row "clamonacc prevention + clamd, cached" ca-cached "$skip_c"
row "clamonacc prevention + clamd, first sight" ca-first "$skip_c"
echo
echo "ratio to none: µs/open divided by none's (how many times slower); opens/s divided by none's (the share kept)."
echo "First-sight rows open each of the $NFILES new files exactly once per run ($NFILES opens in all, split between the openers)."
sed 's/^/note: /' "$notes"
