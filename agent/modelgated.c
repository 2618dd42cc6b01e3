/* modelgated.c — the agent. Owns the fanotify group and its marks, the event loop
 * (one thread: it reads events, answers them, and never opens a file or waits on
 * logging), the verdict cache, the worker pool and its deadlines, policy reload
 * and shutdown. It never parses file content: workers do, in their sandbox.
 * Every permission event read from the kernel is answered exactly once: by the
 * fast paths, by a verdict, or by the policy's on_error (worker crash, deadline,
 * too many outstanding events, shutdown). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "attestation.h"
#include "journal-queue.h"
#include "manifest.h"
#include "mount-map.h"
#include "policy.h"
#include "verdict-cache.h"
#include "verdict-store.h"
#include "worker-pool.h"

#define WORKERS_MAX 64
#define OUTSTANDING_MAX 16384          /* event fds held at once; LimitNOFILE is sized above it */
#define OUTSTANDING_MIN 16             /* below this many waiting opens, refuse to start */
/* Descriptors needed besides event fds: stdio, both fanotify groups, signalfd,
 * the reload pipe, mountinfo, journald and sd_notify sockets, a directory in
 * ignore_outside_dir(), the reload thread's policy and manifest files; and per
 * worker its socket, a hash fd and the pair made while it is restarted. */
#define FD_RESERVE_FIXED 32
#define FD_RESERVE_PER_WORKER 4
#define JOBS_MAX 4096                  /* distinct files waiting or being scanned */
#define WAITERS_MAX 1024               /* opens of one file waiting on one scan */
#define SCAN_TIMEOUT_DEFAULT_S 60
#define PROBE_TIMEOUT_MS 5000          /* a restarted worker scans an empty file: milliseconds when healthy */
#define PROBE_STALLED_MS 1000          /* ... so a probe this late, at the fd bound, waits in the event queue */
#define RESTART_BACKOFF_MIN_MS 100     /* after a failed probe; doubled at each failure in a row */
#define RESTART_BACKOFF_MAX_MS 5000    /* a crash loop costs each worker slot a start every 5 s */
#define CACHE_ENTRIES_DEFAULT 65536
#define BIG_FILE_BYTES ((off_t) 256 << 20)   /* files this big never take the last free worker */
/* A job that hashes reads every byte: its deadline grows by the time that takes at
 * this rate (a slow disk or network filesystem; SHA-256 itself runs at ~1.8 GB/s),
 * so a 50 GB GGUF blob is not refused for being big. */
#define HASH_MIN_BYTES_PER_S ((uint64_t) 100 << 20)
#define STORE_SETTLE_S 2               /* a verdict is persisted once its file is this old (ctime) */
#define RELOAD_EXIT_WAIT_MS 2000       /* at exit, a reload still reading files is waited for this long */
#define FAILURE_CACHE_MS 60000         /* a file that hung or crashed a worker is refused this long without a rescan */
#define TICK_MS 100                    /* deadlines, watchdog and status are checked this often */
#define STATUS_EVERY_MS 5000
#define SHUTDOWN_GRACE_MS 2000         /* scans in flight get this long to finish on SIGTERM */
#define EVENT_BUF_BYTES 65536
#define ROOTS_MAX 64

#ifndef BINDIR
#define BINDIR "/usr/local/bin"
#endif
#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
/* The unit's StateDirectory=modelgate: the verdict store lives here. */
#define STATE_DIR_DEFAULT "/var/lib/modelgate"
#define WARNINGS_MAX 8192              /* bytes of skipped-attestation lines kept per load */

struct waiter {
        int fd;
        pid_t pid;
        char exe[256];          /* taken when the open arrives: the opener may be gone by the log */
        char uid[16];
};

/* A job's life:
 *   QUEUED --a worker takes it--> SCANNING --report--> decided
 *   QUEUED --prehash--> PREHASHING --hash--> decided from an attestation or the
 *                                            store's content index,
 *                                        or --> QUEUED again (prehash off) for a scan
 *   decided as a denial without a hash --> HASHING, for the log only (answered).
 * "decided" = every waiter answered, then cache, store, log. A job prehashes when
 * attestations are configured, or when the store knows a verdict for the hash the
 * file is expected to have: a hash costs one read of the file, a scan can cost
 * more, and a known hash answers without one. */
enum job_phase { JOB_QUEUED, JOB_SCANNING, JOB_HASHING, JOB_PREHASHING };

/* What a file must hash to, copied out of a manifest entry or a Hugging Face
 * cache blob name: a job outlives a reload that frees the manifests. */
struct expectation {
        char sha256[65];                /* "" when not expected */
        char git_sha1[41];
        bool has_size;
        uint64_t size;
        char source[96];                /* the manifest's name, for the message */
};

static bool expectation_set(const struct expectation *x) {
        return x->sha256[0] || x->git_sha1[0];
}

static bool expectation_equal(const struct expectation *a, const struct expectation *b) {
        return strcmp(a->sha256, b->sha256) == 0 && strcmp(a->git_sha1, b->git_sha1) == 0 &&
               a->has_size == b->has_size && a->size == b->size;
}

struct job {
        bool used;
        uint64_t id;
        enum job_phase phase;
        struct cache_key key;
        struct timespec seen;           /* CLOCK_REALTIME when the key was taken */
        off_t size;
        char path[PATH_MAX];            /* escaped, for logs */
        struct expectation expect;      /* manifest entry or blob name; empty when none */
        bool unlisted;                  /* require_manifest, and no manifest lists it */
        struct waiter *waiters;
        unsigned n_waiters, cap_waiters;
        int hash_fd;                    /* kept after a denial, to hash it for the log */
        int worker;                     /* -1 while queued */
        uint64_t queued_ms;
        struct scan_report *report;
        enum mg_verdict verdict;
        struct log_record deny_log;     /* prepared at the verdict, queued after the hash */
        struct cache_value decided;     /* the verdict's rule, severity, global: for those records */
        uint8_t decided_format;         /* the scan's format, kept across the hash round */
        bool prehash;                   /* hash first: attested or stored content may answer */
        char known_sha256[65];          /* from the hash-first round, "" before or without */
        const char *source;             /* where the verdict came from: "scan", "store", ... */
        bool stored;                    /* stored_as went to the verdict store */
        struct store_verdict stored_as; /* completed with the hash of a denial's HASHING round */
};

struct daemon {
        int fan_fd, sig_fd, reload_pipe[2];
        pid_t self_pid;                 /* getpid() is a system call: once, not per event */
        struct policy *policy;
        struct manifest_set *manifests; /* the policy's "manifests", loaded with it */
        const char *policy_path;
        uint64_t generation;
        bool audit;                     /* in effect: --audit, or the policy's mode */
        bool audit_flag;                /* --audit given */
        char *roots[ROOTS_MAX];         /* as given, resolved */
        char *root_fs_path[ROOTS_MAX];  /* the same directory within its filesystem */
        dev_t root_dev[ROOTS_MAX];
        size_t n_roots;
        const char *worker_exe;
        struct worker workers[WORKERS_MAX];
        struct job *worker_job[WORKERS_MAX];
        size_t n_workers;
        unsigned long restarts;         /* worker starts that failed (retried every tick) */
        /* A restarted worker scans an empty file (the probe) before any real one;
         * a worker that fails it is started again only after a back-off. */
        int probe_fd;
        bool probing[WORKERS_MAX];
        struct scan_report *probe_report[WORKERS_MAX];
        unsigned probe_failures_in_row[WORKERS_MAX];
        uint64_t next_start_ms[WORKERS_MAX];
        unsigned long probe_failures;
        uint64_t timeout_ms;
        struct verdict_cache *cache;
        struct job jobs[JOBS_MAX];
        size_t n_jobs;
        uint64_t next_job_id;
        unsigned outstanding;
        unsigned outstanding_max;       /* event fds held at once: OUTSTANDING_MAX, or what RLIMIT_NOFILE allows */
        unsigned long fd_refusals;      /* events the kernel denied: no fd could be installed */
        bool stopping;
        bool reloading;
        pthread_t reload_thread;        /* joined: it reads the policy and the store */
        /* counters for STATUS= */
        unsigned long events, allowed_fast, cache_hits, scans, denied, failures, overflow;
        unsigned long ignore_marks, ignore_mark_failures, outside_marks, flushes;
        int moves_fd;                   /* notification group: directory moves */
        int mountinfo_fd;               /* POLLPRI when the mount table changes */
        bool no_outside_marks;          /* without those watches, no ignore marks outside */
        const char *state_dir;          /* NULL with --no-store */
        struct verdict_store *store;    /* NULL: disabled, or it could not be opened */
        struct attest_set *attest;      /* the attestations trusted under this policy */
        unsigned long store_hits, attest_hits, store_appends, store_append_failures;
        bool store_append_failure_logged;
        uint64_t last_progress_ms, last_status_ms, watchdog_usec, last_watchdog_ms;
};

static struct daemon D;

/* ---- answering ------------------------------------------------------------ */

static bool path_under(const char *path, const char *root);
static bool in_scope(int fd, pid_t pid, const struct stat *st, const char *path);

static void respond(int fd, bool allow) {
        struct fanotify_response resp = { .fd = fd, .response = allow ? FAN_ALLOW : FAN_DENY };
        ssize_t n;
        do
                n = write(D.fan_fd, &resp, sizeof(resp));
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t) sizeof(resp))
                fprintf(stderr, "modelgated: cannot answer an event: %s\n", strerror(errno));
        close(fd);
        if (D.outstanding > 0)
                D.outstanding--;
}

/* Opt-in (policy ignore_marks): an allowed file's later opens skip the daemon.
 * The kernel drops the mark on write and truncate (no SURV_MODIFY), evicts it
 * under memory pressure, and silently refuses it while the file is open for
 * writing; the limits are in modelgated(8). */
/* 40 or 64 lowercase hex digits: what a Hugging Face blob is named (its git blob
 * id or SHA-256), which makes its name expect a hash. */
static bool blob_like_name(const char *name, size_t len) {
        if (len != 40 && len != 64)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
                        return false;
        return true;
}

static void place_ignore_mark(int fd, const char *path) {
        struct stat st;
        if (!policy_ignore_marks(D.policy) || D.audit)
                return;
        /* A mark is on the inode: every name of it then opens unchecked. Names
         * can differ in verdict by what they are expected to hold: a manifest's
         * path, require_manifest, a blob name (which may be reached through a
         * bind mount without its /blobs/ directory in the path). So no mark
         * where manifests are in force, on an inode with several links, or on a
         * blob-like name; a file linked or moved to a blob-like name later drops
         * every mark (read_moves()). */
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (policy_manifest_count(D.policy) > 0 || policy_require_manifest(D.policy) ||
            blob_like_name(base, strlen(base)) || fstat(fd, &st) < 0 || st.st_nlink > 1)
                return;
        if (fanotify_mark(D.fan_fd, FAN_MARK_ADD | FAN_MARK_IGNORE | FAN_MARK_EVICTABLE, FAN_OPEN_PERM, fd, NULL) < 0)
                D.ignore_mark_failures++;
        else
                D.ignore_marks++;
}

/* An open outside every watched root: its directory gets an ignore mark for events
 * on its children, so further opens there cost no round trip. Safe against files
 * moved or linked into a root (their new parent has no mark); a directory moved
 * into a root, or a mount change, flushes every such mark (see read_moves()).
 * The directory is resolved by path in this namespace; one that is not (another
 * namespace's view) is simply not marked. */
static void ignore_outside_dir(const char *path, const struct stat *file_st) {
        char dir[PATH_MAX];
        const char *slash = strrchr(path, '/');
        size_t len = strlen(path);
        struct stat dst, fst;

        if (!slash || path[0] != '/' || D.audit || D.no_outside_marks)
                return;
        /* An unlinked file's path names nothing now; another namespace's path means
         * something else here. Neither is resolved. */
        if (len >= 10 && strcmp(path + len - 10, " (deleted)") == 0)
                return;
        size_t n = slash == path ? 1 : (size_t) (slash - path);
        if (n >= sizeof(dir))
                return;
        memcpy(dir, path, n);
        dir[n] = '\0';
        for (size_t i = 0; i < D.n_roots; i++)
                if (path_under(D.roots[i], dir) || path_under(dir, D.roots[i]))
                        return;
        /* Resolve without following symbolic links (the path from /proc is already
         * canonical), then make
         * sure the name in that directory is still the file of this event: a path
         * swapped under us must not put a mark on a directory inside a root. */
        struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                                .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
        int dfd = (int) syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof(how));
        if (dfd < 0)
                return;
        if (fstat(dfd, &dst) == 0 && fstatat(dfd, slash + 1, &fst, AT_SYMLINK_NOFOLLOW) == 0 &&
            fst.st_dev == file_st->st_dev && fst.st_ino == file_st->st_ino && dst.st_dev == file_st->st_dev &&
            !in_scope(dfd, 0, &dst, dir) &&
            fanotify_mark(D.fan_fd, FAN_MARK_ADD | FAN_MARK_IGNORE | FAN_MARK_IGNORED_SURV_MODIFY | FAN_MARK_EVICTABLE,
                          FAN_OPEN_PERM | FAN_EVENT_ON_CHILD, dfd, ".") == 0)   /* "." of an O_PATH fd */
                D.outside_marks++;
        close(dfd);
}

/* A directory was moved somewhere on a watched filesystem, or the mount table
 * changed: an ignore mark might now sit on a directory inside a root. Drop them all
 * (inode marks only; the filesystem marks stay); they come back with the next opens. */
static void flush_ignore_marks(void) {
        fanotify_mark(D.fan_fd, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL);
        D.flushes++;
}

static void log_open_from(const char *source, enum log_kind kind, bool deny, const struct waiter *who,
                          const char *path, const struct job *j, const char *rule, const char *sev, const char *global,
                          const char *sha, bool cached, const char *message) {
        struct log_record r;
        pid_t pid = who ? who->pid : 0;
        memset(&r, 0, sizeof(r));
        if (who) {
                snprintf(r.exe, sizeof(r.exe), "%s", who->exe);
                snprintf(r.uid, sizeof(r.uid), "%s", who->uid);
        }
        r.kind = kind;
        r.deny = deny;
        r.priority = deny ? LOG_WARNING : kind == LOG_AUDIT_DENY ? LOG_NOTICE : LOG_INFO;
        r.pid = pid;
        r.cached = cached;
        snprintf(r.path, sizeof(r.path), "%s", path);
        snprintf(r.rule, sizeof(r.rule), "%s", rule ? rule : "");
        snprintf(r.severity, sizeof(r.severity), "%s", sev ? sev : "");
        snprintf(r.global, sizeof(r.global), "%s", global ? global : "");
        snprintf(r.sha256, sizeof(r.sha256), "%s", sha ? sha : "");
        snprintf(r.format, sizeof(r.format), "%s", j && j->report ? format_name(j->report->format) : "");
        snprintf(r.mode, sizeof(r.mode), "%s", D.audit ? "audit" : "enforce");
        snprintf(r.source, sizeof(r.source), "%s", source);
        snprintf(r.message, sizeof(r.message), "%s", message);
        journal_queue_push(&r);
}

/* MODELGATE_SOURCE: the job's, else a cached verdict's, else a failure's. */
static void log_open(enum log_kind kind, bool deny, const struct waiter *who, const char *path, const struct job *j,
                     const char *rule, const char *sev, const char *global, const char *sha, bool cached,
                     const char *message) {
        log_open_from(j && j->source ? j->source : cached ? "cache" : "error", kind, deny, who, path, j, rule, sev,
                      global, sha, cached, message);
}

static void log_daemon(enum log_kind kind, int priority, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void log_daemon(enum log_kind kind, int priority, const char *fmt, ...) {
        struct log_record r;
        va_list ap;
        memset(&r, 0, sizeof(r));
        r.kind = kind;
        r.priority = priority;
        va_start(ap, fmt);
        vsnprintf(r.message, sizeof(r.message), fmt, ap);
        va_end(ap);
        journal_queue_push(&r);
}

/* ---- jobs ------------------------------------------------------------------- */

/* The job table is large (a job holds a path and a log record: ~10 KB each), so
 * its loops stop at the last job in use, never walk its JOBS_MAX slots for nothing:
 * one slot is one cache line and often one page, on every wakeup of the loop. */
static struct job *job_find(const struct cache_key *k) {
        for (size_t i = 0, left = D.n_jobs; i < JOBS_MAX && left; i++)
                if (D.jobs[i].used) {
                        left--;
                        if (D.jobs[i].phase != JOB_HASHING && memcmp(&D.jobs[i].key, k, sizeof(*k)) == 0)
                                return &D.jobs[i];
                }
        return NULL;
}

static struct job *job_new(void) {
        for (size_t i = 0; i < JOBS_MAX; i++)
                if (!D.jobs[i].used) {
                        struct job *j = &D.jobs[i];
                        memset(j, 0, sizeof(*j));
                        j->report = malloc(sizeof(*j->report));
                        if (!j->report)
                                return NULL;
                        report_init(j->report);
                        j->used = true;
                        j->id = ++D.next_job_id;
                        j->worker = -1;
                        j->hash_fd = -1;
                        j->queued_ms = monotonic_ms();
                        j->source = "scan";
                        D.n_jobs++;
                        return j;
                }
        return NULL;
}

static void job_free(struct job *j) {
        if (j->hash_fd >= 0)
                close(j->hash_fd);
        free(j->waiters);
        free(j->report);
        memset(j, 0, sizeof(*j));
        D.n_jobs--;
}

static bool job_add_waiter(struct job *j, int fd, pid_t pid) {
        struct waiter w = { .fd = fd, .pid = pid };
        if (j->n_waiters == j->cap_waiters) {
                unsigned nc = j->cap_waiters ? j->cap_waiters * 2 : 4;
                if (nc > WAITERS_MAX)
                        return false;
                struct waiter *nw = realloc(j->waiters, nc * sizeof(*nw));
                if (!nw)
                        return false;
                j->waiters = nw;
                j->cap_waiters = nc;
        }
        process_identity(pid, w.exe, sizeof(w.exe), w.uid, sizeof(w.uid));
        j->waiters[j->n_waiters++] = w;
        return true;
}

/* The failure path: every waiter gets the policy's on_error answer. */
static void job_fail(struct job *j, const char *rule, const char *why) {
        bool allow = policy_on_error(D.policy) == VERDICT_ALLOW || D.audit;
        char msg[512];
        D.failures++;
        j->source = "error";
        for (unsigned i = 0; i < j->n_waiters; i++) {
                respond(j->waiters[i].fd, allow);
                snprintf(msg, sizeof(msg), "%s %.300s: %.150s; on_error=%s", allow ? "allowed" : "denied", j->path, why,
                         policy_on_error(D.policy) == VERDICT_ALLOW ? "allow" : "deny");
                log_open(LOG_SCAN_FAILURE, !allow, &j->waiters[i], j->path, j, rule,
                         allow ? "low" : "high", NULL, NULL, false, msg);
        }
        j->n_waiters = 0;
        job_free(j);
}

static const struct finding *worst_finding(const struct scan_report *r) {
        const struct finding *w = NULL;
        for (uint32_t i = 0; i < r->n_findings; i++)
                if (!w || r->findings[i].severity > w->severity)
                        w = &r->findings[i];
        return w;
}

/* Does anyone hold the file open for writing, or mapped writable? Such a file's
 * content can change without its ctime changing (a write through a shared mapping
 * to a dirty page; tmpfs never updates it for mapped writes), so its verdict is not
 * cached or trusted from the cache. A read lease is refused exactly then. Without
 * the right to take leases (not the owner, no CAP_LEASE) this cannot be told:
 * false. */
static bool writers_present(int fd) {
        if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
                fcntl(fd, F_SETLEASE, F_UNLCK);
                return false;
        }
        return errno == EAGAIN;
}

static uint64_t job_deadline(const struct job *j, bool hashing) {
        uint64_t ms = D.timeout_ms;
        if (hashing && j->size > 0)
                ms += (uint64_t) j->size * 1000 / HASH_MIN_BYTES_PER_S;
        return monotonic_ms() + ms;
}

/* The expected-hash check: what the path says the content must hash to. */
static void check_expectation(const struct job *j, struct scan_report *r) {
        if (expectation_set(&j->expect)) {
                struct manifest_entry e = { .source = j->expect.source, .has_size = j->expect.has_size,
                                            .size = j->expect.size };
                memcpy(e.sha256, j->expect.sha256, sizeof(e.sha256));
                memcpy(e.git_sha1, j->expect.git_sha1, sizeof(e.git_sha1));
                manifest_check(&e, r);
        } else if (j->unlisted)
                report_add_finding(r, RULE_HASH_MISMATCH, SEV_HIGH, VIA_NONE, NULL, NULL,
                                   "No manifest lists this file, and the policy requires one (require_manifest)");
}

static struct store_key store_key_of(const struct cache_key *k) {
        struct store_key s = { .dev = k->dev, .ino = k->ino, .size = k->size, .ctime_sec = k->ctime_sec,
                               .ctime_nsec = k->ctime_nsec };
        return s;
}

/* Appends the content verdict; a failure costs a rescan after a restart, and is
 * logged once. One write() of one record on this thread, nothing more. */
static void store_append(const struct cache_key *k, const struct store_verdict *v) {
        if (!D.store)
                return;
        struct store_key sk = store_key_of(k);
        int r = verdict_store_put(D.store, &sk, v);
        if (r == 0) {
                D.store_appends++;
                return;
        }
        D.store_append_failures++;
        if (!D.store_append_failure_logged) {
                D.store_append_failure_logged = true;
                log_daemon(LOG_STATE, LOG_WARNING, "verdict store: cannot record verdicts (%s); they are kept in memory only",
                           r == -ENOSPC ? "it is full until the next start compacts it" : strerror(-r));
        }
}

/* The file still is what the job's key names: same size, same ctime. A scan and
 * its hash are reads of their own (a hash-first round, then a scan; or a scan,
 * then a denial's hash round), and the file can be rewritten in between or
 * during either: a verdict is then cached, marked or stored only if nothing
 * changed since the open arrived, or the store could pair the verdict of one
 * content with the hash of another, and answer for that other content by hash
 * anywhere. On kernels with multigrain timestamps (6.13+: ext4, xfs, btrfs,
 * tmpfs) the fstat at the open makes any later change move ctime. */
static bool file_unchanged(int fd, const struct cache_key *k) {
        struct stat st;
        return fd >= 0 && fstat(fd, &st) == 0 && (uint64_t) st.st_size == k->size &&
               (int64_t) st.st_ctim.tv_sec == k->ctime_sec && (int64_t) st.st_ctim.tv_nsec == k->ctime_nsec;
}

/* Only verdicts of files unchanged for STORE_SETTLE_S before their open outlive
 * the process, as with `modelgate scan --store`: where ctime is coarse, a write
 * in the same tick as the stat leaves it as it was, so a file must have been
 * left alone for a while when the key was taken (not merely by the time the
 * scan ends: a write right after the open would keep the key). */
static bool settled(const struct job *j) {
        int64_t ds = (int64_t) j->seen.tv_sec - j->key.ctime_sec;   /* times far apart: seconds decide */
        if (ds > STORE_SETTLE_S)
                return true;
        if (ds < STORE_SETTLE_S - 1)
                return false;
        return ds * 1000000000 + ((int64_t) j->seen.tv_nsec - j->key.ctime_nsec) >=
               (int64_t) STORE_SETTLE_S * 1000000000;
}

/* The scan of this very file hung or crashed its worker: each new open would
 * spend a worker for as long again (up to --timeout) to fail the same way, which
 * is how one file could keep every worker busy. The on_error denial is cached
 * for FAILURE_CACHE_MS, for this size and ctime only (any change rescans), never
 * stored, never an ignore mark. With on_error=allow nothing is remembered: an
 * allow must come from a scan. */
static void cache_failure(struct job *j, enum mg_rule rule) {
        if (!j->n_waiters || policy_on_error(D.policy) == VERDICT_ALLOW || writers_present(j->waiters[0].fd) ||
            !file_unchanged(j->waiters[0].fd, &j->key))
                return;
        struct cache_value cv = { .deny = 1, .has_rule = 1, .rule = rule, .severity = SEV_HIGH,
                                  .expires_ms = monotonic_ms() + FAILURE_CACHE_MS };
        verdict_cache_put(D.cache, &j->key, &cv);
}

static void job_conclude(struct job *j, size_t worker, const struct store_verdict *sv, bool persist);

/* The scan is done: the verdict, and the content verdict the store keeps (the
 * same without the expected-hash check, which is path-dependent; verdicts of a
 * scan that failed are never stored: the failure may be transient). */
static void job_decide(struct job *j, size_t worker) {
        struct scan_report *r = j->report;
        struct store_verdict sv = { 0 };
        const struct finding *cw = NULL;
        bool persist = true;

        if (!r->has_sha256 && j->known_sha256[0]) {   /* hashed in a first round */
                r->has_sha256 = true;
                memcpy(r->sha256, j->known_sha256, sizeof(r->sha256));
        }
        check_expectation(j, r);
        j->verdict = policy_evaluate(D.policy, r);
        for (uint32_t i = 0; i < r->n_findings; i++) {
                const struct finding *f = &r->findings[i];
                if (f->rule == RULE_SCAN_ERROR || f->rule == RULE_SCAN_TIMEOUT)
                        persist = false;
                if (f->rule != RULE_HASH_MISMATCH && (!cw || f->severity > cw->severity))
                        cw = f;
        }
        if (cw) {
                sv.has_rule = 1;
                sv.rule = cw->rule;
                sv.severity = cw->severity;
                sv.deny = cw->severity >= policy_fail_severity(D.policy);
        }
        if (r->has_sha256)
                sv.has_sha256 = sha256_from_hex(r->sha256, sv.sha256);
        j->source = "scan";
        D.scans++;
        job_conclude(j, worker, &sv, persist);
}

/* Decided from what is known of the content (its hash was just computed): an
 * attestation or the store's content index gives the content verdict; the
 * expected-hash check is still made here, so a HASH_MISMATCH still denies. */
static void job_decide_known(struct job *j, size_t worker, const struct store_verdict *sv, const char *source) {
        struct scan_report *r = j->report;   /* the hash round's: hashes and size, no findings */
        bool valid_rule = sv->has_rule && sv->rule < _RULE_MAX && sv->severity < _SEV_MAX;

        r->n_findings = 0;
        r->size = (uint64_t) j->size;   /* a hash-only round reports none; the manifest check needs it */
        check_expectation(j, r);
        const struct finding *w = worst_finding(r);
        bool hash_bad = w && w->severity >= policy_fail_severity(D.policy);
        if (sv->deny && valid_rule)
                report_add_finding(r, (enum mg_rule) sv->rule, (enum mg_severity) sv->severity, VIA_NONE, NULL, NULL,
                                   "%s (the verdict of this content, from the %s)", rule_name((enum mg_rule) sv->rule),
                                   source);
        else if (sv->deny)
                report_add_finding(r, RULE_SCAN_ERROR, policy_fail_severity(D.policy), VIA_NONE, NULL, NULL,
                                   "denied by the verdict of this content, from the %s", source);
        j->verdict = sv->deny || hash_bad ? VERDICT_DENY : VERDICT_ALLOW;
        j->source = source;
        /* Attested verdicts are never written to the store: removing a key from
         * attestation_keys must revoke them at the next reload. */
        job_conclude(j, worker, sv, strcmp(source, "store") == 0);
}

/* Answer every waiter, cache, store, then log. */
static void job_conclude(struct job *j, size_t worker, const struct store_verdict *sv, bool persist) {
        struct scan_report *r = j->report;
        char msg[512];
        bool deny = j->verdict == VERDICT_DENY;
        const struct finding *w = worst_finding(r);
        struct cache_value cv = { .deny = deny };
        if (w) {
                cv.has_rule = 1;
                cv.rule = w->rule;
                cv.severity = w->severity;
                snprintf(cv.global, sizeof(cv.global), "%.95s", w->global);
        }
        if (r->has_sha256)
                snprintf(cv.sha256, sizeof(cv.sha256), "%s", r->sha256);
        if (r->has_git_sha1)
                snprintf(cv.git_sha1, sizeof(cv.git_sha1), "%s", r->git_sha1);
        /* The cache is keyed by inode, which may have other names (hard links,
         * bind mounts, containers): it holds the content verdict, as the store
         * does, and a hit checks the name's expectation against the hashes kept
         * with it. A HASH_MISMATCH or an unlisted file under this name is not a
         * denial of the content. */
        struct cache_value content = cv;
        const struct finding *cw = NULL;
        for (uint32_t i = 0; i < r->n_findings; i++)
                if (r->findings[i].rule != RULE_HASH_MISMATCH && (!cw || r->findings[i].severity > cw->severity))
                        cw = &r->findings[i];
        content.deny = sv->deny;
        content.has_rule = cw != NULL;
        content.rule = cw ? cw->rule : 0;
        content.severity = cw ? cw->severity : 0;
        snprintf(content.global, sizeof(content.global), "%.95s", cw ? cw->global : "");

        bool cacheable = j->n_waiters && !writers_present(j->waiters[0].fd) &&
                         file_unchanged(j->waiters[0].fd, &j->key);
        /* Answer first. */
        for (unsigned i = 0; i < j->n_waiters; i++) {
                if (deny && !D.audit && j->hash_fd < 0 && !r->has_sha256)
                        j->hash_fd = dup(j->waiters[i].fd);   /* to hash it for the log */
                if (!deny && i == 0 && cacheable)
                        place_ignore_mark(j->waiters[i].fd, j->path);
                respond(j->waiters[i].fd, !deny || D.audit);
        }
        if (cacheable)
                verdict_cache_put(D.cache, &j->key, &content);
        if (cacheable && persist && !D.stopping && settled(j)) {
                store_append(&j->key, sv);
                j->stored = true;
                j->stored_as = *sv;
        }

        if (!deny) {
                if (strcmp(j->source, "scan") == 0)
                        snprintf(msg, sizeof(msg), "allowed %.400s (%s)", j->path, format_name(r->format));
                else
                        snprintf(msg, sizeof(msg), "allowed %.400s (verdict from the %s)", j->path, j->source);
                log_open(LOG_ALLOW, false, j->n_waiters ? &j->waiters[0] : NULL, j->path, j, NULL, NULL, NULL,
                         r->has_sha256 ? r->sha256 : NULL, false, msg);
                job_free(j);
                return;
        }
        D.denied++;
        snprintf(msg, sizeof(msg), "%s %.250s: %s %s: %.150s", D.audit ? "would deny (audit mode)" : "denied open of",
                 j->path, w ? severity_name_upper(w->severity) : "", w ? rule_name(w->rule) : "",
                 w ? w->message : "");
        enum log_kind kind = D.audit ? LOG_AUDIT_DENY : LOG_DENY;
        /* Hash the file for the record, then log (the opener has its answer). */
        if (j->hash_fd >= 0 && worker < D.n_workers) {
                j->phase = JOB_HASHING;
                /* The per-waiter records are written when the hash arrives. */
                memset(&j->deny_log, 0, sizeof(j->deny_log));
                struct log_record *l = &j->deny_log;
                l->kind = kind;
                snprintf(l->message, sizeof(l->message), "%s", msg);
                j->decided_format = r->format;   /* the hash-only round reports no format */
                j->decided = cv;
                report_init(r);
                if (worker_submit(&D.workers[worker], j->id, WP_FLAG_SHA256 | WP_FLAG_HASH_ONLY, j->hash_fd, r,
                                  job_deadline(j, true)) == 0) {
                        D.worker_job[worker] = j;
                        j->worker = (int) worker;
                        return;
                }
        }
        for (unsigned i = 0; i < j->n_waiters; i++)
                log_open(kind, !D.audit, &j->waiters[i], j->path, j, w ? rule_name(w->rule) : NULL,
                         w ? severity_name(w->severity) : NULL, w ? w->global : NULL,
                         r->has_sha256 ? r->sha256 : NULL, false, msg);
        job_free(j);
}

/* ---- workers ---------------------------------------------------------------- */

static int start_worker(size_t i) {
        int r = worker_start(&D.workers[i], D.worker_exe);
        if (r < 0)
                fprintf(stderr, "modelgated: cannot start a scanner worker (%s): %s\n", D.worker_exe, strerror(-r));
        return r;
}

static bool is_worker_pid(pid_t pid) {
        for (size_t i = 0; i < D.n_workers; i++)
                if (D.workers[i].pid == pid)
                        return true;
        return false;
}

static void dispatch(void);
static void job_after_prehash(struct job *j, size_t worker);

/* Worker slot i is empty. It is filled again at once, unless its last worker never
 * got through its probe: then only after a delay that doubles with each such
 * failure in a row, up to RESTART_BACKOFF_MAX_MS. A binary that crashes at start
 * (or cannot be executed, or cannot apply its sandbox) so costs a few starts a
 * second, not one per open; a worker that passed its probe and then died on a
 * file (a hostile one, say) is replaced at once, so one file does not slow the
 * others down. */
static void worker_schedule_restart(size_t i, bool probe_failed) {
        uint64_t delay = 0;
        if (probe_failed) {
                unsigned n = ++D.probe_failures_in_row[i];
                D.probe_failures++;
                delay = (uint64_t) RESTART_BACKOFF_MIN_MS << (n - 1 < 10 ? n - 1 : 10);
                if (delay > RESTART_BACKOFF_MAX_MS)
                        delay = RESTART_BACKOFF_MAX_MS;
        }
        D.workers[i].pid = -1;
        D.next_start_ms[i] = monotonic_ms() + delay;
}

/* Starts a worker in slot i and hands it the probe. */
static void worker_restart(size_t i) {
        int r = start_worker(i);
        if (r == 0) {
                if (!D.probe_report[i])
                        D.probe_report[i] = malloc(sizeof(*D.probe_report[i]));
                r = D.probe_report[i] ? worker_submit(&D.workers[i], 0, 0, D.probe_fd, D.probe_report[i],
                                                      monotonic_ms() + PROBE_TIMEOUT_MS)
                                      : -ENOMEM;
                if (r == 0) {
                        D.probing[i] = true;
                        return;
                }
                worker_stop(&D.workers[i]);
        } else
                D.restarts++;
        worker_schedule_restart(i, true);
}

/* No worker is running and every slot waits out a back-off: nothing can scan for
 * a while, so opens are not kept waiting for one. */
static bool workers_all_failing(void) {
        for (size_t i = 0; i < D.n_workers; i++)
                if (D.workers[i].pid > 0 || D.probe_failures_in_row[i] == 0)
                        return false;
        return true;
}

static void worker_broken(size_t i, const char *rule, const char *why) {
        struct job *j = D.worker_job[i];
        bool probe_failed = D.probing[i];
        worker_stop(&D.workers[i]);
        D.worker_job[i] = NULL;
        D.probing[i] = false;
        if (j) {
                if (j->phase == JOB_HASHING) {
                        /* The denial stands; only the hash is missing from the log. */
                        const struct cache_value *cv = &j->decided;
                        for (unsigned k = 0; k < j->n_waiters; k++)
                                log_open(j->deny_log.kind, !D.audit, &j->waiters[k], j->path, j,
                                         cv->has_rule ? rule_name(cv->rule) : NULL,
                                         cv->has_rule ? severity_name(cv->severity) : NULL, cv->global, NULL, false,
                                         j->deny_log.message);
                        job_free(j);
                } else {
                        /* A worker that died or ran out of time on a file it was
                         * scanning: the file's doing, most likely. */
                        if (j->phase == JOB_SCANNING || j->phase == JOB_PREHASHING)
                                cache_failure(j, rule && strcmp(rule, "SCAN_TIMEOUT") == 0 ? RULE_SCAN_TIMEOUT
                                                                                         : RULE_SCAN_ERROR);
                        job_fail(j, rule, why);
                }
        }
        /* Never given up: queued opens meanwhile get on_error at their deadline,
         * or at once while every slot is backing off. */
        worker_schedule_restart(i, probe_failed);
        if (D.next_start_ms[i] <= monotonic_ms())
                worker_restart(i);
}

/* The hash-first round is back: a verdict known for this content answers now;
 * otherwise the job goes back to the queue for a full scan (the hash kept, not
 * computed again). An attested verdict counts only for the size it names. */
static void job_after_prehash(struct job *j, size_t worker) {
        struct scan_report *r = j->report;
        struct store_verdict sv = { 0 };
        struct attest_fact f;
        uint8_t sha[32];

        if (D.workers[worker].rx.error == 0 && r->has_sha256 && sha256_from_hex(r->sha256, sha)) {
                if (attest_set_lookup(D.attest, sha, &f) && f.size == (uint64_t) j->size) {
                        sv.deny = f.deny;
                        sv.has_rule = f.rule >= 0;
                        sv.rule = f.rule >= 0 ? (uint8_t) f.rule : 0;
                        sv.severity = policy_fail_severity(D.policy);
                        sv.has_sha256 = 1;
                        memcpy(sv.sha256, sha, sizeof(sha));
                        D.attest_hits++;
                        job_decide_known(j, worker, &sv, "attestation");
                        return;
                }
                if (D.store && verdict_store_get_content(D.store, sha, &sv)) {
                        D.store_hits++;
                        job_decide_known(j, worker, &sv, "store");
                        return;
                }
                memcpy(j->known_sha256, r->sha256, sizeof(j->known_sha256));
        }
        report_init(r);
        j->prehash = false;
        j->phase = JOB_QUEUED;
        j->queued_ms = monotonic_ms();
        dispatch();
}

static void collect(size_t i) {
        struct job *j = D.worker_job[i];
        int r = worker_read(&D.workers[i]);

        if (r == 0)
                return;
        if (D.probing[i]) {
                if (r < 0 || D.workers[i].rx.error < 0)
                        worker_broken(i, NULL, NULL);
                else {
                        D.probing[i] = false;
                        D.probe_failures_in_row[i] = 0;
                }
                dispatch();
                return;
        }
        if (r < 0) {
                worker_broken(i, "SCAN_ERROR",
                              r == -EPIPE ? "the scanner worker died (crash or sandbox violation)"
                                          : "the scanner worker broke protocol");
                return;
        }
        D.worker_job[i] = NULL;
        D.last_progress_ms = monotonic_ms();
        if (!j)
                return;
        j->worker = -1;
        if (j->phase == JOB_HASHING) {
                /* The denial was answered already; now its records, with the hash. */
                const char *sha = j->report->has_sha256 ? j->report->sha256 : NULL;
                j->report->format = j->decided_format;
                struct cache_value cv = { 0 };
                bool unchanged = file_unchanged(j->hash_fd, &j->key);
                if (unchanged && verdict_cache_get(D.cache, &j->key, &cv) && sha) {
                        snprintf(cv.sha256, sizeof(cv.sha256), "%s", sha);
                        verdict_cache_put(D.cache, &j->key, &cv);
                }
                cv = j->decided;   /* the records say what was decided, changed file or not */
                /* The stored denial learns its content hash: the same bytes under
                 * another name are then known by content too. */
                if (j->stored && unchanged && sha && !D.stopping && sha256_from_hex(sha, j->stored_as.sha256)) {
                        j->stored_as.has_sha256 = 1;
                        store_append(&j->key, &j->stored_as);
                }
                /* A file changed since its open: the hash is of other bytes than those
                 * judged, and is left out of the record. */
                for (unsigned k = 0; k < j->n_waiters; k++)
                        log_open(j->deny_log.kind, !D.audit, &j->waiters[k], j->path, j,
                                 cv.has_rule ? rule_name(cv.rule) : NULL, cv.has_rule ? severity_name(cv.severity) : NULL,
                                 cv.global, unchanged ? sha : NULL, false, j->deny_log.message);
                job_free(j);
                return;
        }
        if (j->phase == JOB_PREHASHING) {
                job_after_prehash(j, i);
                return;
        }
        if (D.workers[i].rx.error < 0) {
                char why[128];
                snprintf(why, sizeof(why), "cannot scan: %s", strerror(-D.workers[i].rx.error));
                job_fail(j, "SCAN_ERROR", why);
                return;
        }
        job_decide(j, i);
}

static size_t busy_big(void) {
        size_t n = 0;
        for (size_t i = 0; i < D.n_workers; i++)
                if (D.worker_job[i] && D.worker_job[i]->size >= BIG_FILE_BYTES)
                        n++;
        return n;
}

/* Hands queued jobs to idle workers, oldest first. A big file never takes the last
 * free worker, so small files are not stuck behind a multi-GB scan. */
static void dispatch(void) {
        if (workers_all_failing()) {
                for (size_t k = 0; k < JOBS_MAX; k++)
                        if (D.jobs[k].used && D.jobs[k].phase == JOB_QUEUED)
                                job_fail(&D.jobs[k], "SCAN_ERROR",
                                         "no scanner worker is running: the last starts all failed their probe");
                return;
        }
        for (size_t i = 0; i < D.n_workers; i++) {
                if (D.worker_job[i] || D.probing[i] || D.workers[i].pid <= 0)
                        continue;
                struct job *best = NULL;
                bool big_ok = busy_big() + 1 < D.n_workers;
                for (size_t k = 0, left = D.n_jobs; k < JOBS_MAX && left; k++) {
                        struct job *j = &D.jobs[k];
                        if (!j->used)
                                continue;
                        left--;
                        if (j->phase != JOB_QUEUED)
                                continue;
                        if (j->size >= BIG_FILE_BYTES && !big_ok)
                                continue;
                        if (!best || j->id < best->id)
                                best = j;
                }
                if (!best)
                        return;
                uint32_t flags = ((best->expect.sha256[0] || policy_hash_files(D.policy)) && !best->known_sha256[0]
                                          ? WP_FLAG_SHA256 : 0) |
                                 (best->expect.git_sha1[0] ? WP_FLAG_GIT_SHA1 : 0);
                if (best->prehash)
                        flags = WP_FLAG_SHA256 | WP_FLAG_HASH_ONLY | (best->expect.git_sha1[0] ? WP_FLAG_GIT_SHA1 : 0);
                if (worker_submit(&D.workers[i], best->id, flags, best->waiters[0].fd, best->report,
                                  job_deadline(best, flags & (WP_FLAG_SHA256 | WP_FLAG_GIT_SHA1))) < 0) {
                        worker_broken(i, "SCAN_ERROR", "the scanner worker could not take the file");
                        continue;
                }
                best->phase = best->prehash ? JOB_PREHASHING : JOB_SCANNING;
                best->worker = (int) i;
                D.worker_job[i] = best;
        }
}

/* ---- events ------------------------------------------------------------------ */

static bool path_under(const char *path, const char *root) {
        size_t n = strlen(root);
        if (strcmp(root, "/") == 0)
                return true;
        return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Is the file under a watched root? Either way counts: the path it was opened by
 * (so a directory bind-mounted into a root is covered), or its device and path
 * within the filesystem (so a root's content reached through a bind mount or a
 * container's mount elsewhere is covered). When the mapping fails for a file on a
 * watched filesystem, it is in scope (scanned): fail closed. */
static bool in_scope(int fd, pid_t pid, const struct stat *st, const char *path) {
        char fs_path[PATH_MAX];
        uint64_t mnt;
        bool same_dev = false;

        for (size_t i = 0; i < D.n_roots; i++) {
                if (path_under(path, D.roots[i]))
                        return true;
                same_dev |= D.root_dev[i] == st->st_dev;
        }
        if (!same_dev)
                return false;
        if (mount_id_of_fd(fd, &mnt) < 0 || mount_map_fs_path(mnt, pid, path, fs_path, sizeof(fs_path)) < 0)
                return true;
        for (size_t i = 0; i < D.n_roots; i++)
                if (D.root_dev[i] == st->st_dev && path_under(fs_path, D.root_fs_path[i]))
                        return true;
        return false;
}

/* What the opened file must hash to. A manifest entry for its resolved path
 * first; else a Hugging Face cache blob: ".../blobs/<64 hex>" names its SHA-256
 * (LFS files), ".../blobs/<40 hex>" its git blob id. No file I/O: the manifests
 * were loaded with the policy. */
static void find_expectation(const char *path, struct expectation *ret, bool *ret_unlisted) {
        const struct manifest_entry *e = manifest_lookup(D.manifests, path);

        memset(ret, 0, sizeof(*ret));
        *ret_unlisted = false;
        if (e) {
                memcpy(ret->sha256, e->sha256, sizeof(ret->sha256));
                memcpy(ret->git_sha1, e->git_sha1, sizeof(ret->git_sha1));
                ret->has_size = e->has_size;
                ret->size = e->size;
                const char *base = strrchr(e->source, '/');
                snprintf(ret->source, sizeof(ret->source), "%s", base ? base + 1 : e->source);
                return;
        }
        for (const char *b = strstr(path, "/blobs/"); b; b = strstr(b + 1, "/blobs/")) {
                const char *name = b + 7;
                size_t n = strlen(name), i;
                if (n != 64 && n != 40)
                        continue;
                for (i = 0; i < n && ((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')); i++)
                        ;
                if (i != n)
                        continue;
                memcpy(n == 64 ? ret->sha256 : ret->git_sha1, name, n + 1);
                snprintf(ret->source, sizeof(ret->source), "the Hugging Face cache blob name");
                return;
        }
        *ret_unlisted = policy_require_manifest(D.policy) && !manifest_set_is_manifest(D.manifests, path);
}

/* Does a stored content verdict answer for this open? Only when it can vouch for
 * the expected hash, if any: the store keeps SHA-256, never the git blob id. */
static bool stored_verdict_fits(const struct store_verdict *sv, const struct expectation *x, const struct stat *st) {
        char hex[65];
        if (x->git_sha1[0])
                return false;
        if (x->has_size && x->size != (uint64_t) st->st_size)
                return false;
        if (x->sha256[0]) {
                if (!sv->has_sha256)
                        return false;
                sha256_to_hex(sv->sha256, hex);
                return strcmp(hex, x->sha256) == 0;
        }
        return true;
}

static void answer_from_store(const struct fanotify_event_metadata *m, const char *path, const struct cache_key *key,
                              const struct store_verdict *sv) {
        struct waiter who = { .pid = m->pid };
        struct cache_value cv = { .deny = sv->deny };
        bool valid_rule = sv->has_rule && sv->rule < _RULE_MAX && sv->severity < _SEV_MAX;
        char msg[512];

        D.store_hits++;
        if (valid_rule) {
                cv.has_rule = 1;
                cv.rule = sv->rule;
                cv.severity = sv->severity;
        }
        if (sv->has_sha256)
                sha256_to_hex(sv->sha256, cv.sha256);
        process_identity(m->pid, who.exe, sizeof(who.exe), who.uid, sizeof(who.uid));
        if (!sv->deny)
                place_ignore_mark(m->fd, path);
        respond(m->fd, !sv->deny || D.audit);
        verdict_cache_put(D.cache, key, &cv);
        if (!sv->deny) {
                snprintf(msg, sizeof(msg), "allowed %.400s (verdict from the store)", path);
                log_open_from("store", LOG_ALLOW, false, &who, path, NULL, NULL, NULL, NULL, cv.sha256, false, msg);
                return;
        }
        D.denied++;
        snprintf(msg, sizeof(msg), "%s %.300s (verdict from the store): %s", D.audit ? "would deny" : "denied open of",
                 path, valid_rule ? rule_name((enum mg_rule) sv->rule) : "");
        log_open_from("store", D.audit ? LOG_AUDIT_DENY : LOG_DENY, !D.audit, &who, path, NULL,
                      valid_rule ? rule_name((enum mg_rule) sv->rule) : NULL,
                      valid_rule ? severity_name((enum mg_severity) sv->severity) : NULL, NULL, cv.sha256, false, msg);
}

static void handle_event(const struct fanotify_event_metadata *m) {
        struct stat st;
        char link[64], raw[PATH_MAX], path[PATH_MAX];
        ssize_t n;

        D.events++;
        if (m->fd < 0) {
                D.overflow++;
                return;
        }
        if (!(m->mask & FAN_OPEN_PERM)) {
                close(m->fd);
                return;
        }
        D.outstanding++;
        /* Our own opens (the reload thread's) and our workers' (exec) at once. */
        if (m->pid == D.self_pid || is_worker_pid(m->pid)) {
                D.allowed_fast++;
                respond(m->fd, true);
                return;
        }
        if (fstat(m->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                D.allowed_fast++;
                respond(m->fd, true);
                return;
        }
        snprintf(link, sizeof(link), "/proc/self/fd/%d", m->fd);
        n = readlink(link, raw, sizeof(raw) - 1);
        bool unnamed = n < 0;
        if (unnamed)   /* a path longer than a page: cannot tell where it is, so scan it */
                n = snprintf(raw, sizeof(raw), "?");
        raw[n] = '\0';
        if (!unnamed && !in_scope(m->fd, m->pid, &st, raw)) {
                D.allowed_fast++;
                ignore_outside_dir(raw, &st);
                respond(m->fd, true);
                return;
        }
        report_escape(path, sizeof(path), (const uint8_t *) raw, (size_t) n, NULL);

        struct cache_key key;
        struct cache_value cv;
        cache_key_from_stat(&key, &st, D.generation);
        /* A Hugging Face blob's name is a hash to check, whatever name the cached
         * verdict was reached by (a hard link): a cached entry without that hash
         * is not used. */
        struct expectation expect = { 0 };
        bool unlisted = false;
        /* An empty blob is being created (opened for writing): nothing to verify
         * yet, and an empty file runs nothing. */
        if (st.st_size > 0 && !unnamed)
                find_expectation(raw, &expect, &unlisted);
        else if (st.st_size > 0)   /* unnamed: no manifest can list a path we cannot read */
                unlisted = policy_require_manifest(D.policy);
        /* A cached verdict carries the SHA-256 it was checked against (if any); an
         * expectation it cannot vouch for means a scan of its own. A cached denial
         * stands whatever is expected (an expectation can only add a denial): so
         * does a remembered failure, for a Hugging Face blob too. */
        if (verdict_cache_get(D.cache, &key, &cv) && (!cv.expires_ms || monotonic_ms() < cv.expires_ms) &&
            (cv.deny ||
             (!unlisted &&
              (!expectation_set(&expect) ||
               ((!expect.sha256[0] || strcmp(cv.sha256, expect.sha256) == 0) &&
                (!expect.git_sha1[0] || strcmp(cv.git_sha1, expect.git_sha1) == 0) &&
                (!expect.has_size || expect.size == (uint64_t) st.st_size))) &&
              !writers_present(m->fd)))) {
                D.cache_hits++;
                struct waiter who = { .pid = m->pid };
                if (cv.deny)   /* before answering: the opener may be gone right after */
                        process_identity(m->pid, who.exe, sizeof(who.exe), who.uid, sizeof(who.uid));
                else
                        place_ignore_mark(m->fd, path);
                respond(m->fd, !cv.deny || D.audit);
                if (cv.deny) {
                        char msg[512];
                        snprintf(msg, sizeof(msg), "%s %.300s (cached verdict): %s", D.audit ? "would deny" : "denied open of",
                                 path, cv.has_rule ? rule_name(cv.rule) : "");
                        log_open(D.audit ? LOG_AUDIT_DENY : LOG_DENY, !D.audit, &who, path, NULL,
                                 cv.has_rule ? rule_name(cv.rule) : NULL, cv.has_rule ? severity_name(cv.severity) : NULL,
                                 cv.global, cv.sha256, true, msg);
                }
                return;
        }

        /* The store: a content verdict from before a restart or a reload, for this
         * very inode and ctime; the expected-hash check is made again here. */
        struct store_key sk = store_key_of(&key);
        struct store_verdict sv;
        if (D.store && !unlisted && verdict_store_get(D.store, &sk, &sv) && stored_verdict_fits(&sv, &expect, &st) &&
            (sv.deny || !writers_present(m->fd))) {
                answer_from_store(m, path, &key, &sv);
                return;
        }

        struct job *j = D.stopping ? NULL : job_find(&key);
        if (j && (!expectation_equal(&j->expect, &expect) || j->unlisted != unlisted)) {
                if (j->phase == JOB_QUEUED && !expectation_set(&j->expect) && !j->unlisted) {
                        j->expect = expect;
                        j->unlisted = unlisted;
                } else
                        j = NULL;   /* a scan of its own, with its own expectation */
        }
        if (!j && !D.stopping && D.outstanding <= D.outstanding_max)
                j = job_new();
        if (!j || !job_add_waiter(j, m->fd, m->pid)) {
                bool allow = policy_on_error(D.policy) == VERDICT_ALLOW || D.audit;
                char msg[512];
                struct waiter who = { .pid = m->pid };
                process_identity(m->pid, who.exe, sizeof(who.exe), who.uid, sizeof(who.uid));
                D.failures++;
                respond(m->fd, allow);
                snprintf(msg, sizeof(msg), "%s %.300s: %.100s; on_error applied", allow ? "allowed" : "denied", path,
                         D.stopping ? "modelgated is stopping" : "too many opens waiting for scans");
                log_open(LOG_SCAN_FAILURE, !allow, &who, path, NULL, "SCAN_ERROR", "high", NULL, NULL, false, msg);
                if (j && j->n_waiters == 0)
                        job_free(j);
                return;
        }
        if (j->n_waiters == 1) {
                j->key = key;
                clock_gettime(CLOCK_REALTIME, &j->seen);
                j->size = st.st_size;
                snprintf(j->path, sizeof(j->path), "%s", path);
                j->expect = expect;
                j->unlisted = unlisted;
                j->phase = JOB_QUEUED;
                uint8_t want[32];
                struct store_verdict known;
                j->prehash = attest_set_count(D.attest) > 0 ||
                             (D.store && expect.sha256[0] && sha256_from_hex(expect.sha256, want) &&
                              verdict_store_get_content(D.store, want, &known));
        }
        dispatch();
}

static void read_events(void) {
        char buf[EVENT_BUF_BYTES] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
        for (;;) {
                /* The kernel installs an fd for every event a read copies out, and
                 * denies the open of any it cannot: read no more events than the fd
                 * budget has room for (each is FAN_EVENT_METADATA_LEN bytes: no info
                 * records are asked for). The rest wait in the kernel's queue. */
                size_t room = D.outstanding < D.outstanding_max ? D.outstanding_max - D.outstanding : 0;
                if (room == 0)
                        return;
                size_t want = room < sizeof(buf) / FAN_EVENT_METADATA_LEN ? room * FAN_EVENT_METADATA_LEN : sizeof(buf);
                ssize_t len = read(D.fan_fd, buf, want);
                if (len < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EMFILE || errno == ENFILE)
                                D.fd_refusals++;   /* that event was denied by the kernel */
                        return;   /* EAGAIN: drained */
                }
                if (len == 0)
                        return;
                const struct fanotify_event_metadata *m = (const void *) buf;
                for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
                        if (m->vers != FANOTIFY_METADATA_VERSION) {
                                fprintf(stderr, "modelgated: fanotify metadata version %u, expected %u\n", m->vers,
                                        FANOTIFY_METADATA_VERSION);
                                if (m->fd >= 0) {
                                        /* A permission event must still be answered. */
                                        struct fanotify_response resp = { .fd = m->fd, .response = FAN_DENY };
                                        if (write(D.fan_fd, &resp, sizeof(resp)) < 0) { /* nothing more to do */ }
                                        close(m->fd);
                                }
                                continue;
                        }
                        handle_event(m);
                }
        }
}

/* The name in a FAN_REPORT_DFID_NAME event's info record, or NULL. */
static const char *event_name(const struct fanotify_event_metadata *m) {
        const char *p = (const char *) m + m->metadata_len, *end = (const char *) m + m->event_len;
        while (p + sizeof(struct fanotify_event_info_header) <= end) {
                const struct fanotify_event_info_header *h = (const void *) p;
                if (h->len < sizeof(*h) || p + h->len > end)
                        return NULL;
                if (h->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME &&
                    h->len >= sizeof(struct fanotify_event_info_fid) + sizeof(struct file_handle)) {
                        const struct fanotify_event_info_fid *fid = (const void *) p;
                        const struct file_handle *fh = (const void *) fid->handle;
                        const char *name = (const char *) fh->f_handle + fh->handle_bytes;
                        if (name >= p + h->len || !memchr(name, '\0', (size_t) (p + h->len - name)))
                                return NULL;
                        return name;
                }
                p += h->len;
        }
        return NULL;
}

static void read_moves(void) {
        char buf[4096] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
        bool flush = false;
        ssize_t len;
        while ((len = read(D.moves_fd, buf, sizeof(buf))) > 0) {
                const struct fanotify_event_metadata *m = (const void *) buf;
                for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
                        if (m->mask & FAN_ONDIR) {
                                if (m->mask & FAN_MOVED_TO)
                                        flush = true;   /* a directory moved: the outside marks */
                        } else if (m->mask & FAN_Q_OVERFLOW)
                                flush = true;
                        else if (m->mask & FAN_MOVED_TO) {
                                /* A file moved to a blob-like name: an ignore mark it
                                 * carries would skip its new name's hash check. This
                                 * queue is read after the fact: an open racing the move
                                 * can still pass once (modelgate-policy(5)). Links are
                                 * not watched: FAN_CREATE on a whole file system
                                 * overflowed this queue under load, and an overflow
                                 * flushes every mark. */
                                const char *name = event_name(m);
                                if (name && blob_like_name(name, strlen(name)) && policy_ignore_marks(D.policy))
                                        flush = true;
                        }
                }
        }
        if (flush)
                flush_ignore_marks();
}

/* ---- stderr ------------------------------------------------------------------- */

/* Under systemd stderr is a stream socket to journald; under a supervisor, often
 * a pipe. If its reader stalls, a blocking write would stop the event loop and
 * with it every open under the roots. Our lines go through a stream that never
 * waits: a socket is written with MSG_DONTWAIT, a pipe through a description of
 * our own opened O_NONBLOCK (fd 2's stays as it was, for the workers that
 * inherit it and for whoever else shares it). A line that does not fit is lost
 * (the records that matter go to the journal through the logger's own bounded
 * queue); one cut short is ended before the next, so lines never run together. */
static struct {
        int fd;
        bool socket, torn;
} E = { .fd = -1 };

static ssize_t stderr_put(const char *buf, size_t n) {
        return E.socket ? send(E.fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) : write(E.fd, buf, n);
}

static ssize_t stderr_cookie_write(void *cookie, const char *buf, size_t n) {
        (void) cookie;
        if (E.torn) {
                if (stderr_put("\n", 1) != 1)
                        return (ssize_t) n;   /* still full: this one is lost too */
                E.torn = false;
        }
        ssize_t w = stderr_put(buf, n);
        if (w >= 0 && (size_t) w < n && (w == 0 || buf[w - 1] != '\n'))
                E.torn = true;
        return (ssize_t) n;   /* never an error: stdio would keep it and retry */
}

static void stderr_never_blocks(void) {
        struct stat st;
        if (fstat(STDERR_FILENO, &st) < 0)
                return;
        if (S_ISSOCK(st.st_mode)) {
                E.fd = STDERR_FILENO;
                E.socket = true;
        } else if (S_ISFIFO(st.st_mode)) {
                E.fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
                if (E.fd < 0) {
                        /* No /proc, or a pipe we may not open again (another user's,
                         * without CAP_DAC_OVERRIDE): then fd 2's own description,
                         * shared or not; never a write that waits. */
                        int fl = fcntl(STDERR_FILENO, F_GETFL);
                        if (fl >= 0 && fcntl(STDERR_FILENO, F_SETFL, fl | O_NONBLOCK) == 0)
                                E.fd = STDERR_FILENO;
                }
        }
        if (E.fd < 0)
                return;
        FILE *f = fopencookie(NULL, "w", (cookie_io_functions_t) { .write = stderr_cookie_write });
        if (!f || setvbuf(f, NULL, _IOLBF, 4096) != 0) {
                if (f)
                        fclose(f);
                if (E.fd != STDERR_FILENO)
                        close(E.fd);
                E.fd = -1;
                return;
        }
        fflush(stderr);
        stderr = f;
}

/* ---- reload, status, watchdog ------------------------------------------------ */

/* Loads a policy and the manifests it names, as one unit: a manifest that cannot
 * be loaded makes the whole load fail, with the reason in err. */
static int load_policy_and_manifests(const char *path, struct policy **ret_p, struct manifest_set **ret_m, char *err,
                                     size_t errsz) {
        struct policy *p = NULL;
        struct manifest_set *m = NULL;
        char merr[MANIFEST_ERROR_MAX];
        int r = policy_load(path, &p, err, errsz);

        if (r < 0)
                return r;
        if ((r = manifest_set_new(&m)) < 0) {
                snprintf(err, errsz, "out of memory");
                policy_free(p);
                return r;
        }
        for (size_t i = 0; i < policy_manifest_count(p); i++)
                if ((r = manifest_set_add(m, policy_manifest(p, i), NULL, merr, sizeof(merr))) < 0) {
                        snprintf(err, errsz, "manifest %.*s", (int) (errsz > 16 ? errsz - 16 : 0), merr);
                        manifest_set_free(m);
                        policy_free(p);
                        return r;
                }
        *ret_p = p;
        *ret_m = m;
        return 0;
}

struct reload_msg {
        struct policy *p;               /* NULL when the load failed */
        struct manifest_set *m;
        struct attest_set *a;
        struct store_index *idx;        /* the store's index for a new policy hash, or NULL */
        struct store_load_info idx_info;
        char warnings[WARNINGS_MAX];    /* skipped keys and attestations, one per line */
        char err[POLICY_ERROR_MAX];
};

/* Collects the lines attest_set_load() reports, for the event thread to log. */
static void collect_warning(void *ud, const char *line) {
        char *buf = ud;
        size_t n = strlen(buf);
        if (n + 2 < WARNINGS_MAX)
                snprintf(buf + n, WARNINGS_MAX - n, "%s\n", line);
}

static void log_warnings(const char *lines) {
        for (const char *l = lines; *l;) {
                const char *nl = strchr(l, '\n');
                int n = nl ? (int) (nl - l) : (int) strlen(l);
                log_daemon(LOG_STATE, LOG_WARNING, "%.*s", n, l);
                fprintf(stderr, "modelgated: %.*s\n", n, l);
                l += n + (nl ? 1 : 0);
        }
}

/* The attestations of p (never fails but for memory: each bad one is a line in
 * warnings). */
static struct attest_set *load_attestations(const struct policy *p, char warnings[WARNINGS_MAX]) {
        struct attest_set *a = NULL;
        if (attest_set_load(p, &a, collect_warning, warnings) < 0)
                collect_warning(warnings, "attestations: out of memory; none is trusted");
        return a;
}

static void reload_msg_free(struct reload_msg *msg) {
        policy_free(msg->p);
        manifest_set_free(msg->m);
        attest_set_free(msg->a);
        store_index_free(msg->idx);
        free(msg);
}

static void *reload_thread(void *arg) {
        (void) arg;
        struct policy *p = NULL;
        struct manifest_set *m = NULL;
        char err[POLICY_ERROR_MAX];
        /* This thread may open files on a marked filesystem: the event thread is
         * free to answer them, which is why loading never happens there. */
        int r = load_policy_and_manifests(D.policy_path, &p, &m, err, sizeof(err));
        struct reload_msg *msg = calloc(1, sizeof(*msg));
        if (msg) {
                msg->p = r < 0 ? NULL : p;
                msg->m = r < 0 ? NULL : m;
                snprintf(msg->err, sizeof(msg->err), "%s", r < 0 ? err : "");
                if (r == 0)
                        msg->a = load_attestations(p, msg->warnings);
                /* A new policy hash: its verdicts from the store (the file is read
                 * with pread while the event thread appends to it). */
                uint8_t bin[32];
                if (r == 0 && D.store && strcmp(policy_sha256(p), policy_sha256(D.policy)) != 0 &&
                    sha256_from_hex(policy_sha256(p), bin) &&
                    verdict_store_load_index(D.store, bin, &msg->idx, &msg->idx_info) < 0) {
                        msg->idx = NULL;
                        collect_warning(msg->warnings, "verdict store: cannot read it for the new policy; starting empty");
                }
                if (write(D.reload_pipe[1], &msg, sizeof(msg)) != (ssize_t) sizeof(msg))
                        reload_msg_free(msg);
        } else {
                /* Out of memory: a NULL message still ends the reload. */
                if (r == 0) {
                        policy_free(p);
                        manifest_set_free(m);
                }
                if (write(D.reload_pipe[1], &msg, sizeof(msg)) != (ssize_t) sizeof(msg))
                        return NULL;
        }
        return NULL;
}

static void start_reload(void) {
        if (D.reloading)
                return;
        D.reloading = true;
        if (pthread_create(&D.reload_thread, NULL, reload_thread, NULL) != 0) {
                D.reloading = false;
                log_daemon(LOG_RELOAD_FAILED, LOG_ERR, "policy reload failed: cannot start a thread");
                return;
        }
}

/* At exit: a reload in flight reads D.policy and D.store, which are about to be
 * freed. It is waited for (after the fanotify fd is closed, so that an open of
 * its own on a watched filesystem is not left waiting for an answer), for
 * RELOAD_EXIT_WAIT_MS at most, and what it loaded is dropped. Returns false when
 * it is still running (stuck in a read of some file system): the caller then
 * frees nothing it could read, and the process ends with it. */
static bool abandon_reload(void) {
        struct reload_msg *msg;
        struct timespec until;
        if (!D.reloading)
                return true;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += RELOAD_EXIT_WAIT_MS / 1000;
        if (pthread_clockjoin_np(D.reload_thread, NULL, CLOCK_MONOTONIC, &until) != 0)
                return false;
        D.reloading = false;
        if (read(D.reload_pipe[0], &msg, sizeof(msg)) == (ssize_t) sizeof(msg) && msg)
                reload_msg_free(msg);
        return true;
}

static void finish_reload(void) {
        struct reload_msg *msg;
        if (read(D.reload_pipe[0], &msg, sizeof(msg)) != (ssize_t) sizeof(msg))
                return;
        pthread_join(D.reload_thread, NULL);   /* it has written its message: it is returning */
        D.reloading = false;
        if (!msg) {
                log_daemon(LOG_RELOAD_FAILED, LOG_ERR, "policy reload refused, the previous policy stays: out of memory");
                journal_queue_notify("READY=1");
                return;
        }
        if (!msg->p) {
                log_daemon(LOG_RELOAD_FAILED, LOG_ERR, "policy reload refused, the previous policy stays: %s", msg->err);
                fprintf(stderr, "modelgated: policy reload refused, the previous policy stays: %s\n", msg->err);
        } else {
                bool same_hash = strcmp(policy_sha256(msg->p), policy_sha256(D.policy)) == 0;
                policy_free(D.policy);
                manifest_set_free(D.manifests);
                attest_set_free(D.attest);
                D.policy = msg->p;
                D.manifests = msg->m;
                D.attest = msg->a;
                if (D.store && !same_hash) {
                        uint8_t bin[32];
                        if (!msg->idx || !sha256_from_hex(policy_sha256(D.policy), bin)) {
                                /* No index for the new policy: stop using the store rather
                                 * than answer from the old policy's. */
                                verdict_store_close(D.store);
                                D.store = NULL;
                                store_index_free(msg->idx);
                                log_daemon(LOG_STATE, LOG_WARNING, "verdict store: closed (cannot index it for the new policy)");
                        } else {
                                verdict_store_use_index(D.store, bin, msg->idx);
                                log_daemon(LOG_STATE, LOG_INFO, "verdict store: %lu verdicts for policy sha256 %s",
                                           msg->idx_info.loaded, policy_sha256(D.policy));
                        }
                        msg->idx = NULL;
                }
                log_warnings(msg->warnings);
                if (policy_attestation_count(D.policy))
                        log_daemon(LOG_STATE, LOG_INFO, "attestations: %zu attested files trusted under policy sha256 %s",
                                   attest_set_count(D.attest), policy_sha256(D.policy));
                D.generation++;   /* every cached verdict is now stale */
                /* ... and so is every ignore mark: drop all inode marks (the
                 * filesystem marks stay). */
                fanotify_mark(D.fan_fd, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL);
                D.audit = D.audit_flag || policy_mode(D.policy) == POLICY_MODE_AUDIT;
                log_daemon(LOG_RELOAD, LOG_NOTICE, "policy reloaded from %s (sha256 %s)", policy_source(D.policy),
                           policy_sha256(D.policy));
        }
        free(msg);
        journal_queue_notify("READY=1");
}

static void send_status(void) {
        char status[768];
        snprintf(status, sizeof(status),
                 "STATUS=%lu events, %lu scans, %lu denied, %lu cache hits, %lu store hits, %lu attested, "
                 "%lu ignore marks (%lu refused), "
                 "%lu outside marks, %lu flushes, %lu failures, %lu failed worker starts, %lu failed worker probes, "
                 "%lu overflows, %zu jobs, "
                 "%u open events (at most %u), %lu denied by the kernel for want of an fd, %lu journal records dropped",
                 D.events, D.scans, D.denied, D.cache_hits, D.store_hits, D.attest_hits, D.ignore_marks,
                 D.ignore_mark_failures, D.outside_marks,
                 D.flushes, D.failures, D.restarts, D.probe_failures, D.overflow, D.n_jobs, D.outstanding, D.outstanding_max,
                 D.fd_refusals, journal_queue_dropped());
        journal_queue_notify(status);
}

static void tick(void) {
        uint64_t now = monotonic_ms();

        for (size_t i = 0; i < D.n_workers; i++) {
                if (D.workers[i].pid <= 0 && D.next_start_ms[i] <= now)
                        worker_restart(i);
                if ((D.worker_job[i] || D.probing[i]) && D.workers[i].pid > 0 && D.workers[i].deadline_ms <= now) {
                        char why[128];
                        snprintf(why, sizeof(why), "the scan did not finish within %llu s; the worker was killed",
                                 (unsigned long long) (D.timeout_ms / 1000));
                        worker_broken(i, "SCAN_TIMEOUT", why);
                }
        }
        /* At the fd bound the event queue is not read, and a worker being started
         * waits in it for the answers to its own opens (exec, libraries) when its
         * binary is on a watched file system. With no worker able to scan and a
         * probe that late, the queued opens get on_error now: that frees their fds,
         * the queue is read again and the workers can start. */
        bool any_ready = false, probe_stalled = false;
        for (size_t i = 0; i < D.n_workers; i++) {
                any_ready |= D.workers[i].pid > 0 && !D.probing[i];
                probe_stalled |= D.probing[i] && D.workers[i].deadline_ms - PROBE_TIMEOUT_MS + PROBE_STALLED_MS <= now;
        }
        if (D.outstanding >= D.outstanding_max && !any_ready && probe_stalled)
                for (size_t k = 0; k < JOBS_MAX; k++)
                        if (D.jobs[k].used && D.jobs[k].phase == JOB_QUEUED)
                                job_fail(&D.jobs[k], "SCAN_ERROR", "too many opens waiting while no scanner worker "
                                                                   "could start");
        /* A job no worker took within the deadline (all busy with big files, or no
         * worker can be started) gets on_error: an opener never waits for ever. */
        for (size_t k = 0, left = D.n_jobs; k < JOBS_MAX && left; k++) {
                struct job *j = &D.jobs[k];
                if (!j->used)
                        continue;
                left--;   /* counted before job_fail() frees it */
                if (j->phase == JOB_QUEUED && now - j->queued_ms >= D.timeout_ms)
                        job_fail(j, "SCAN_TIMEOUT", "no scanner worker was free before the deadline");
        }
        dispatch();
        /* Watchdog: the loop is alive, and workers progress or have nothing to do. */
        if (D.watchdog_usec && now - D.last_watchdog_ms >= D.watchdog_usec / 2000) {
                bool busy = false;
                for (size_t i = 0; i < D.n_workers; i++)
                        busy |= D.worker_job[i] != NULL;
                if (!busy || now - D.last_progress_ms < D.timeout_ms + 5000) {
                        journal_queue_notify("WATCHDOG=1");
                        D.last_watchdog_ms = now;
                }
        }
        if (now - D.last_status_ms >= STATUS_EVERY_MS) {
                send_status();
                D.last_status_ms = now;
        }
}

/* ---- startup ------------------------------------------------------------------ */

static void usage(FILE *f) {
        fputs("usage: modelgated [--policy FILE] [--watch DIR]... [--audit] [--workers N]\n"
              "                  [--timeout SECONDS] [--worker-exe PATH] [--state-dir DIR | --no-store]\n"
              "Blocks open() of model files that fail the policy, under each watched directory,\n"
              "with fanotify permission events. See modelgated(8).\n", f);
}

/* The worker binary: --worker-exe, else `modelgate` beside this executable (a build
 * tree), else the installed one. */
static const char *find_worker(void) {
        static char path[PATH_MAX];
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = '\0';
                char *slash = strrchr(self, '/');
                if (slash) {
                        *slash = '\0';
                        if ((size_t) snprintf(path, sizeof(path), "%.*s/modelgate", (int) sizeof(path) - 11, self) < sizeof(path) &&
                            access(path, X_OK) == 0)
                                return path;
                }
        }
        return BINDIR "/modelgate";
}

/* Starts each worker and has it scan an empty in-memory file: proves the sandbox
 * can be applied here before any open is made to depend on it. The file stays
 * open as D.probe_fd: restarted workers scan it too. */
static int probe_workers(void) {
        int fd = memfd_create("modelgate-probe", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        D.probe_fd = fd;
        for (size_t i = 0; i < D.n_workers; i++) {
                struct scan_report *r = malloc(sizeof(*r));
                int ret = r ? start_worker(i) : -ENOMEM;
                if (ret == 0)
                        ret = worker_submit(&D.workers[i], 0, 0, fd, r, monotonic_ms() + 5000);
                while (ret == 0) {
                        struct pollfd p = { .fd = D.workers[i].sock, .events = POLLIN };
                        int left = (int) (D.workers[i].deadline_ms - monotonic_ms());
                        if (left <= 0 || poll(&p, 1, left) <= 0) {
                                ret = -ETIMEDOUT;
                                break;
                        }
                        ret = worker_read(&D.workers[i]);
                        if (ret == 1) {
                                ret = D.workers[i].rx.error;
                                break;
                        }
                }
                free(r);
                if (ret < 0)
                        return ret;
        }
        return 0;
}

static int add_root(const char *dir) {
        char real[PATH_MAX], fs_path[PATH_MAX];
        struct stat st;
        uint64_t mnt;
        int fd, r;

        if (D.n_roots >= ROOTS_MAX) {
                fprintf(stderr, "modelgated: more than %d watched directories\n", ROOTS_MAX);
                return -E2BIG;
        }
        if (!realpath(dir, real) || stat(real, &st) < 0) {
                r = -errno;
                fprintf(stderr, "modelgated: watched directory %s: %s\n", dir, strerror(errno));
                return r;
        }
        if (!S_ISDIR(st.st_mode)) {
                fprintf(stderr, "modelgated: watched directory %s: not a directory\n", dir);
                return -ENOTDIR;
        }
        fd = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || (r = mount_id_of_fd(fd, &mnt)) < 0 ||
            (r = mount_map_fs_path(mnt, getpid(), real, fs_path, sizeof(fs_path))) < 0) {
                r = fd < 0 ? -errno : r;
                fprintf(stderr, "modelgated: watched directory %s: cannot tell where it is in its filesystem: %s\n",
                        dir, strerror(-r));
                if (fd >= 0)
                        close(fd);
                return r;
        }
        close(fd);
        D.roots[D.n_roots] = strdup(real);
        D.root_fs_path[D.n_roots] = strdup(fs_path);
        D.root_dev[D.n_roots] = st.st_dev;
        D.n_roots++;
        return 0;
}

/* Raises RLIMIT_NOFILE to its hard limit and fits the number of event fds held at
 * once under it, leaving the reserve the daemon needs for itself. Returns 0 with
 * that number in ret_max, or -EMFILE when the limit leaves room for fewer than
 * OUTSTANDING_MIN waiting opens (ret_limit and ret_need then say what there is and
 * what is needed), or -errno. */
static int size_fd_budget(size_t n_workers, unsigned *ret_max, unsigned long *ret_limit, unsigned long *ret_need) {
        struct rlimit rl;
        rlim_t reserve = FD_RESERVE_FIXED + FD_RESERVE_PER_WORKER * (rlim_t) n_workers;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) < 0)
                        return -errno;
        }
        if (rl.rlim_cur < reserve + OUTSTANDING_MIN) {
                *ret_limit = (unsigned long) rl.rlim_cur;
                *ret_need = (unsigned long) (reserve + OUTSTANDING_MIN);
                return -EMFILE;
        }
        *ret_max = rl.rlim_cur - reserve > OUTSTANDING_MAX ? OUTSTANDING_MAX : (unsigned) (rl.rlim_cur - reserve);
        return 0;
}

static void shutdown_now(void) {
        uint64_t until = monotonic_ms() + SHUTDOWN_GRACE_MS;
        D.stopping = true;
        journal_queue_notify("STOPPING=1");
        log_daemon(LOG_STOPPING, LOG_NOTICE, "stopping: answering %u pending opens", D.outstanding);
        read_events();
        /* Scans in flight get a short grace; the rest get on_error. */
        while (monotonic_ms() < until) {
                struct pollfd p[WORKERS_MAX];
                size_t map[WORKERS_MAX], n = 0;
                for (size_t i = 0; i < D.n_workers; i++)
                        if (D.worker_job[i] && D.worker_job[i]->phase == JOB_SCANNING) {
                                p[n] = (struct pollfd) { .fd = D.workers[i].sock, .events = POLLIN };
                                map[n++] = i;
                        }
                if (n == 0)
                        break;
                if (poll(p, n, (int) (until - monotonic_ms())) <= 0)
                        break;
                for (size_t k = 0; k < n; k++)
                        if (p[k].revents)
                                collect(map[k]);
        }
        for (size_t i = 0; i < JOBS_MAX; i++)
                if (D.jobs[i].used) {
                        if (D.jobs[i].phase == JOB_HASHING)
                                job_free(&D.jobs[i]);
                        else
                                job_fail(&D.jobs[i], "SCAN_ERROR", "modelgated is stopping");
                }
        read_events();
        for (size_t i = 0; i < D.n_workers; i++)
                worker_stop(&D.workers[i]);
}

static void open_store(void) {
        struct store_load_info info;
        uint8_t bin[32];
        int r = sha256_from_hex(policy_sha256(D.policy), bin) ? 0 : -EINVAL;

        if (r == 0)
                r = verdict_store_open(D.state_dir, bin, 0, &D.store, &info);
        if (r < 0) {
                const char *why = r == -EBUSY ? "another modelgated holds it"
                                  : r == -EPERM ? "it belongs to another user, or others can write the directory"
                                                : strerror(-r);
                D.store = NULL;
                log_daemon(LOG_STATE, LOG_WARNING, "verdict store in %s: cannot open it (%s); running without it",
                           D.state_dir, why);
                fprintf(stderr, "modelgated: verdict store in %s: cannot open it (%s); running without it\n",
                        D.state_dir, why);
                return;
        }
        if (info.aside[0]) {
                log_daemon(LOG_STATE, LOG_WARNING, "verdict store: not a store of this version; moved to %s, started anew",
                           info.aside);
                fprintf(stderr, "modelgated: verdict store: unreadable, moved to %s\n", info.aside);
        }
        log_daemon(LOG_STATE, info.corrupt || info.torn_bytes ? LOG_WARNING : LOG_INFO,
                   "verdict store %s/%s: %lu verdicts for policy sha256 %s; %lu records, %lu of other policies, "
                   "%lu superseded, %lu damaged (skipped), %lu torn bytes cut, %lu over the cap%s",
                   D.state_dir, STORE_FILE_NAME, info.loaded, policy_sha256(D.policy), info.records, info.other_policy,
                   info.superseded, info.corrupt, info.torn_bytes, info.over_cap, info.compacted ? "; compacted" : "");
        fprintf(stderr, "modelgated: verdict store: %lu verdicts loaded (%lu records, %lu damaged, %lu torn bytes)\n",
                info.loaded, info.records, info.corrupt, info.torn_bytes);
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "policy", required_argument, NULL, 'p' },
                { "watch", required_argument, NULL, 'w' },
                { "audit", no_argument, NULL, 'a' },
                { "workers", required_argument, NULL, 'n' },
                { "timeout", required_argument, NULL, 't' },
                { "worker-exe", required_argument, NULL, 'x' },
                { "state-dir", required_argument, NULL, 'S' },
                { "no-store", no_argument, NULL, 'N' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {}
        };
        const char *watch[ROOTS_MAX];
        size_t n_watch = 0;
        long workers = sysconf(_SC_NPROCESSORS_ONLN) + 1, timeout = SCAN_TIMEOUT_DEFAULT_S;
        char err[POLICY_ERROR_MAX], *end;
        int c, r;

        D.policy_path = NULL;
        D.state_dir = STATE_DIR_DEFAULT;
        while ((c = getopt_long(argc, argv, "p:w:an:t:x:S:NhV", opts, NULL)) != -1) {
                switch (c) {
                case 'S':
                        if (optarg[0] != '/') {
                                fprintf(stderr, "modelgated: --state-dir %s: expected an absolute path\n", optarg);
                                return 1;
                        }
                        D.state_dir = optarg;
                        break;
                case 'N':
                        D.state_dir = NULL;
                        break;
                case 'p':
                        D.policy_path = optarg;
                        break;
                case 'w':
                        if (n_watch >= ROOTS_MAX) {
                                fprintf(stderr, "modelgated: too many --watch\n");
                                return 1;
                        }
                        watch[n_watch++] = optarg;
                        break;
                case 'a':
                        D.audit_flag = true;
                        break;
                case 'n':
                        workers = strtol(optarg, &end, 10);
                        if (*end || workers < 1 || workers > WORKERS_MAX) {
                                fprintf(stderr, "modelgated: --workers %s: expected 1 to %d\n", optarg, WORKERS_MAX);
                                return 1;
                        }
                        break;
                case 't':
                        timeout = strtol(optarg, &end, 10);
                        if (*end || timeout < 1 || timeout > 3600) {
                                fprintf(stderr, "modelgated: --timeout %s: expected 1 to 3600 seconds\n", optarg);
                                return 1;
                        }
                        break;
                case 'x':
                        D.worker_exe = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("modelgated %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return 1;
                }
        }
        if (optind < argc) {
                usage(stderr);
                return 1;
        }
        if (!D.policy_path && access(SYSCONFDIR "/modelgate/policy.json", F_OK) == 0)
                D.policy_path = SYSCONFDIR "/modelgate/policy.json";
        if ((r = load_policy_and_manifests(D.policy_path, &D.policy, &D.manifests, err, sizeof(err))) < 0) {
                fprintf(stderr, "modelgated: invalid policy: %s\n", err);
                return 1;
        }
        D.audit = D.audit_flag || policy_mode(D.policy) == POLICY_MODE_AUDIT;
        for (size_t i = 0; i < policy_watch_count(D.policy); i++)
                if (add_root(policy_watch(D.policy, i)) < 0)
                        return 1;
        for (size_t i = 0; i < n_watch; i++)
                if (add_root(watch[i]) < 0)
                        return 1;
        if (D.n_roots == 0) {
                fprintf(stderr, "modelgated: nothing to watch: give --watch DIR or \"watch\" in the policy\n");
                return 1;
        }
        if (!D.worker_exe)
                D.worker_exe = find_worker();
        D.n_workers = (size_t) (workers < 2 ? 2 : workers);
        D.timeout_ms = (uint64_t) timeout * 1000;
        D.cache = verdict_cache_new(CACHE_ENTRIES_DEFAULT);
        if (!D.cache) {
                fprintf(stderr, "modelgated: out of memory\n");
                return 1;
        }
        /* Attestations are read now, and the store below, before any mark: these
         * opens would otherwise wait for this very process. Neither can stop the
         * start. */
        char warnings[WARNINGS_MAX] = "";
        D.attest = load_attestations(D.policy, warnings);
        log_warnings(warnings);
        if (policy_attestation_count(D.policy))
                log_daemon(LOG_STATE, LOG_INFO, "attestations: %zu attested files trusted under policy sha256 %s",
                           attest_set_count(D.attest), policy_sha256(D.policy));
        unsigned long nofile = 0, nofile_need = 0;
        if (size_fd_budget(D.n_workers, &D.outstanding_max, &nofile, &nofile_need) < 0) {
                fprintf(stderr, "modelgated: RLIMIT_NOFILE is %lu, too low: each open waiting for a verdict holds a file "
                                "descriptor, and the kernel refuses an open it cannot give one to. At least %lu are "
                                "needed with %zu workers (the unit sets LimitNOFILE=65536)\n", nofile, nofile_need,
                        D.n_workers);
                return 1;
        }
        D.self_pid = getpid();
        signal(SIGPIPE, SIG_IGN);
        signal(SIGIO, SIG_IGN);   /* lease-break notices for the read leases taken and dropped at once */

        D.fan_fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE |
                                         FAN_UNLIMITED_MARKS,
                                 O_RDONLY | O_LARGEFILE | O_CLOEXEC);
        if (D.fan_fd < 0) {
                if (errno == EINVAL || errno == ENOSYS)
                        fprintf(stderr, "modelgated: this kernel lacks fanotify permission events "
                                        "(CONFIG_FANOTIFY_ACCESS_PERMISSIONS): %s\n", strerror(errno));
                else
                        fprintf(stderr, "modelgated: fanotify_init: %s (needs CAP_SYS_ADMIN)\n", strerror(errno));
                return 1;
        }
        if ((r = probe_workers()) < 0) {
                fprintf(stderr, "modelgated: the scanner sandbox cannot be applied (%s, worker %s): %s\n",
                        "a probe scan failed", D.worker_exe, strerror(-r));
                return 1;
        }
        /* The store after the workers are forked (they need none of its memory),
         * before any mark. */
        if (D.state_dir)
                open_store();
        stderr_never_blocks();

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGCHLD);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);   /* before any thread exists */
        D.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (D.sig_fd < 0 || pipe2(D.reload_pipe, O_CLOEXEC | O_NONBLOCK) < 0 || journal_queue_start() < 0) {
                fprintf(stderr, "modelgated: cannot set up signals, pipes or the logger: %s\n", strerror(errno));
                return 1;
        }

        /* Filesystem marks: every mount of the filesystem, in every mount namespace. */
        for (size_t i = 0; i < D.n_roots; i++) {
                if (fanotify_mark(D.fan_fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN_PERM, AT_FDCWD, D.roots[i]) < 0) {
                        fprintf(stderr, "modelgated: cannot mark the filesystem of %s: %s\n", D.roots[i], strerror(errno));
                        return 1;
                }
        }
        /* Directory moves and mount changes invalidate the ignore marks on
         * directories outside the roots; watch for both. */
        D.moves_fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY);
        for (size_t i = 0; D.moves_fd >= 0 && i < D.n_roots; i++)
                if (fanotify_mark(D.moves_fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_MOVED_TO | FAN_ONDIR, AT_FDCWD,
                                  D.roots[i]) < 0) {
                        close(D.moves_fd);
                        D.moves_fd = -1;
                }
        D.mountinfo_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
        if (D.moves_fd < 0 || D.mountinfo_fd < 0) {
                fprintf(stderr, "modelgated: cannot watch directory moves or mounts (%s); opens outside the "
                                "watched directories will each cost a round trip\n", strerror(errno));
                D.no_outside_marks = true;
        }
        journal_queue_notify("READY=1");
        const char *wd = getenv("WATCHDOG_USEC");
        if (wd)
                D.watchdog_usec = strtoull(wd, NULL, 10);
        D.last_progress_ms = D.last_status_ms = monotonic_ms();
        send_status();
        log_daemon(LOG_STARTED, LOG_NOTICE, "watching %zu director%s with %zu workers, policy %s (%s mode)", D.n_roots,
                   D.n_roots == 1 ? "y" : "ies", D.n_workers, policy_source(D.policy), D.audit ? "audit" : "enforce");
        fprintf(stderr, "modelgated: ready\n");

        while (!D.stopping) {
                enum { P_FAN, P_SIG, P_RELOAD, P_MOVES, P_MOUNTS, P_FIXED };
                struct pollfd p[P_FIXED + WORKERS_MAX];
                size_t map[WORKERS_MAX], n = P_FIXED;
                /* At the fd budget, new opens wait in the kernel's queue. */
                p[P_FAN] = (struct pollfd) { .fd = D.fan_fd,
                                             .events = D.outstanding < D.outstanding_max ? POLLIN : 0 };
                p[P_SIG] = (struct pollfd) { .fd = D.sig_fd, .events = POLLIN };
                p[P_RELOAD] = (struct pollfd) { .fd = D.reload_pipe[0], .events = POLLIN };
                p[P_MOVES] = (struct pollfd) { .fd = D.moves_fd, .events = POLLIN };
                p[P_MOUNTS] = (struct pollfd) { .fd = D.mountinfo_fd, .events = POLLPRI };
                for (size_t i = 0; i < D.n_workers; i++)
                        if ((D.worker_job[i] || D.probing[i]) && D.workers[i].sock >= 0) {
                                p[n] = (struct pollfd) { .fd = D.workers[i].sock, .events = POLLIN };
                                map[n - P_FIXED] = i;
                                n++;
                        }
                int ready = poll(p, n, TICK_MS);
                if (ready < 0 && errno != EINTR)
                        break;
                /* Moves first: a flush must not come after an open it should precede. */
                if (ready > 0 && p[P_MOVES].revents)
                        read_moves();
                if (ready > 0 && (p[P_MOUNTS].revents & (POLLPRI | POLLERR))) {
                        /* Reading the table to its end re-arms the notification. */
                        char discard[4096];
                        lseek(D.mountinfo_fd, 0, SEEK_SET);
                        while (read(D.mountinfo_fd, discard, sizeof(discard)) > 0)
                                ;
                        flush_ignore_marks();
                }
                if (ready > 0 && p[P_SIG].revents) {
                        struct signalfd_siginfo si;
                        while (read(D.sig_fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                                if (si.ssi_signo == SIGHUP) {
                                        journal_queue_notify("RELOADING=1");
                                        start_reload();
                                } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                                        D.stopping = true;
                                else if (si.ssi_signo == SIGCHLD)
                                        worker_reap_orphans();
                        }
                }
                if (ready > 0) {
                        for (size_t k = P_FIXED; k < n; k++)
                                if (p[k].revents)
                                        collect(map[k - P_FIXED]);
                        if (p[P_FAN].revents)
                                read_events();
                        if (p[P_RELOAD].revents)
                                finish_reload();
                }
                tick();
        }
        shutdown_now();
        close(D.fan_fd);
        bool reload_done = abandon_reload();
        journal_queue_stop();
        fprintf(stderr, "modelgated: stopped (%lu events, %lu scans, %lu denied, %lu store hits, %lu attested)\n",
                D.events, D.scans, D.denied, D.store_hits, D.attest_hits);
        if (!reload_done) {
                /* The reload thread may still read the policy and the store. */
                fprintf(stderr, "modelgated: a policy reload was still reading files after %d ms; exiting without it\n",
                        RELOAD_EXIT_WAIT_MS);
                fflush(NULL);
                _exit(0);   /* no atexit teardown (OpenSSL's) under a thread that may wake up */
        }
        policy_free(D.policy);
        manifest_set_free(D.manifests);
        verdict_cache_free(D.cache);
        verdict_store_close(D.store);
        attest_set_free(D.attest);
        for (size_t i = 0; i < D.n_roots; i++) {
                free(D.roots[i]);
                free(D.root_fs_path[i]);
        }
        return 0;
}
