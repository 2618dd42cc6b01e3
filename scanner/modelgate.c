/* modelgate.c — the `modelgate` command: `scan` walks paths, opens each regular
 * file, hands the fd to a pool of sandboxed workers (re-executions of this binary
 * as `modelgate worker`), applies the policy to what they report, and prints the
 * result in submission order (on SIGINT/SIGTERM: what was decided, in a closed
 * document). `report` is in report-merge.c. `convert` has a file scanned, then a
 * worker plan its conversion, and writes what the plan names. This process parses
 * no file content itself. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "attest-cmd.h"
#include "convert-plan.h"
#include "convert-write.h"
#include "manifest.h"
#include "output.h"
#include "policy.h"
#include "progress.h"
#include "report-merge.h"
#include "repository.h"
#include "verdict-store.h"
#include "worker-pool.h"
#include "worker-proto.h"
#include "worker.h"

#define JOBS_MAX 256                 /* workers; each holds one file */
#define SCAN_TIMEOUT_DEFAULT_S 300   /* a 10 GB legacy pickle at 100 MB/s fits */
#define REORDER_PER_JOB 8            /* decided files held back to keep output in order */
#define WALK_DEPTH_MAX 256           /* directory nesting before the walk gives up */
#define WORKER_RESTARTS_MAX 64       /* consecutive failed starts before giving up */
#define STOP_GRACE_MS 2000           /* after SIGINT/SIGTERM, in-flight files get this long */
#define WAIT_SLICE_MS 200            /* longest poll: signals and the progress line are seen this often */
/* scan --store records a file's verdict only when its ctime is at least this far
 * in the past when it is opened: a write in the same timestamp tick as the last
 * change would leave (size, ctime) as they were, and coarse file systems tick in
 * up to 2 s (FAT; some network file systems). A settled file's next change always
 * moves ctime past what was recorded. */
#define STORE_SETTLE_S 2

/* The first SIGINT or SIGTERM a scan receives, and how many it has received. */
static volatile sig_atomic_t stop_signal, stop_count;

/* ---- the directory walk: sorted, depth-first, one path at a time ---------- */

struct walk_dir {
        char *path;
        char **names;
        size_t n, next;
        dev_t dev;
        ino_t ino;
};

struct walk {
        char **roots;
        size_t n_roots, next_root;
        const char *root;       /* the PATH argument being walked */
        struct walk_dir stack[WALK_DEPTH_MAX];
        size_t depth;
        unsigned long errors;   /* inputs that could not be read */
        uint64_t size;          /* of the file walk_next() returned last */
        bool link;              /* ... and whether its name was a symbolic link */
        unsigned shard_index, shard_count;   /* only files of this shard; count 0: all */
        bool quiet;             /* no notes about skipped files */
        bool silent;            /* no messages at all (the counting pre-walk) */
        struct progress *progress;           /* cleared before a message, or NULL */
        /* `scan` lists each such input in the report too: walk_next() returns it
         * with what went wrong here (NULL for a file to scan). */
        bool list_errors;
        const char *error_what;
        int error_errno;
};

static int cmp_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static char *path_join(const char *dir, const char *name) {
        size_t dl = strlen(dir);
        char *p = malloc(dl + strlen(name) + 2);
        if (!p)
                return NULL;
        sprintf(p, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", name);
        return p;
}

/* An input that cannot be read belongs to one shard, as a file would: only that
 * shard names it, lists it and exits 2 for it, so merged shards equal one run. */
static void walk_error(struct walk *w, const char *path, const char *what, int err) {
        char esc[16384];
        if (w->shard_count > 1 && shard_of(path, w->root, w->shard_count) != w->shard_index)
                return;
        w->errors++;
        if (w->silent)
                return;
        if (w->progress)
                progress_clear(w->progress);
        report_escape(esc, sizeof(esc), (const uint8_t *) path, strlen(path), NULL);
        if (err)
                fprintf(stderr, "modelgate: %s: %s: %s\n", esc, what, strerror(err));
        else
                fprintf(stderr, "modelgate: %s: %s\n", esc, what);
        w->error_what = what;
        w->error_errno = err;
}

static void walk_note(struct walk *w, const char *path, const char *what) {
        char esc[16384];
        if (w->silent || w->quiet)
                return;
        if (w->progress)
                progress_clear(w->progress);
        report_escape(esc, sizeof(esc), (const uint8_t *) path, strlen(path), NULL);
        fprintf(stderr, "modelgate: %s: skipped: %s\n", esc, what);
}

static int walk_push_dir(struct walk *w, const char *path, const struct stat *st) {
        struct walk_dir *d;
        DIR *dir;
        struct dirent *de;
        size_t cap = 0;

        for (size_t i = 0; i < w->depth; i++)
                if (w->stack[i].dev == st->st_dev && w->stack[i].ino == st->st_ino) {
                        walk_error(w, path, "directory loop (already being walked higher up), not entered", 0);
                        return 0;
                }
        if (w->depth >= WALK_DEPTH_MAX) {
                walk_error(w, path, "directories nested too deep, not entered", 0);
                return 0;
        }
        dir = opendir(path);
        if (!dir) {
                walk_error(w, path, "cannot open directory", errno);
                return 0;
        }
        d = &w->stack[w->depth];
        memset(d, 0, sizeof(*d));
        d->dev = st->st_dev;
        d->ino = st->st_ino;
        d->path = strdup(path);
        while ((errno = 0, de = readdir(dir))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (d->n == cap) {
                        cap = cap ? cap * 2 : 64;
                        char **nn = realloc(d->names, cap * sizeof(*nn));
                        if (!nn)
                                break;
                        d->names = nn;
                }
                d->names[d->n++] = strdup(de->d_name);
        }
        if (errno)
                walk_error(w, path, "error reading directory", errno);
        closedir(dir);
        if (d->n)
                qsort(d->names, d->n, sizeof(*d->names), cmp_names);
        w->depth++;
        return 0;
}

static void walk_pop_dir(struct walk *w) {
        struct walk_dir *d = &w->stack[--w->depth];
        for (size_t i = 0; i < d->n; i++)
                free(d->names[i]);
        free(d->names);
        free(d->path);
}

/* Next regular file to scan (malloc'd path), or NULL when the walk is done.
 * Top-level arguments follow symlinks; inside directories, symlinks to files are
 * followed (as a loader would) and symlinks to directories are not. */
static char *walk_next(struct walk *w) {
        struct stat st;

        for (;;) {
                char *path;
                bool top;

                if (w->depth > 0) {
                        struct walk_dir *d = &w->stack[w->depth - 1];
                        if (d->next >= d->n) {
                                walk_pop_dir(w);
                                continue;
                        }
                        path = path_join(d->path, d->names[d->next++]);
                        top = false;
                } else if (w->next_root < w->n_roots) {
                        w->root = w->roots[w->next_root];
                        path = strdup(w->roots[w->next_root++]);
                        top = true;
                } else
                        return NULL;
                if (!path)
                        return NULL;
                w->error_what = NULL;

                if (lstat(path, &st) < 0) {
                        walk_error(w, path, "cannot access", errno);
                        if (w->list_errors && w->error_what)
                                return path;
                        free(path);
                        continue;
                }
                w->link = S_ISLNK(st.st_mode);
                if (S_ISLNK(st.st_mode)) {
                        if (stat(path, &st) < 0) {
                                walk_error(w, path, "dangling symbolic link", errno);
                                if (w->list_errors && w->error_what)
                                        return path;
                                free(path);
                                continue;
                        }
                        if (S_ISDIR(st.st_mode) && !top) {
                                walk_note(w, path, "symbolic link to a directory (not followed)");
                                free(path);
                                continue;
                        }
                }
                if (S_ISDIR(st.st_mode)) {
                        walk_push_dir(w, path, &st);
                        if (w->error_what && w->list_errors)
                                return path;
                        free(path);
                        continue;
                }
                if (!S_ISREG(st.st_mode)) {
                        if (top) {
                                walk_error(w, path, "not a regular file or directory", 0);
                                if (w->list_errors && w->error_what)
                                        return path;
                        } else
                                walk_note(w, path, S_ISFIFO(st.st_mode) ? "a FIFO"
                                               : S_ISSOCK(st.st_mode) ? "a socket" : "a device");
                        free(path);
                        continue;
                }
                if (w->shard_count > 1 && shard_of(path, w->root, w->shard_count) != w->shard_index) {
                        free(path);
                        continue;
                }
                w->size = (uint64_t) st.st_size;
                return path;
        }
}

/* ---- the job loop ---------------------------------------------------------- */

struct job {
        uint64_t id;
        char *path;
        char *repository;       /* escaped, or NULL */
        struct scan_report *report;
        bool decided;
        enum mg_verdict verdict;
        /* What the file must hash to: a manifest entry, or the name of a Hugging
         * Face cache blob (then `blob` holds the expectation). */
        const struct manifest_entry *expect;
        struct manifest_entry blob;
        bool unlisted;          /* require_manifest and no entry */
        bool plain_name;        /* the walk found it under its own name, not through a link */
        uint64_t size;          /* from fstat when opened */
        /* scan --store: the inode's key when opened, and whether it may be recorded */
        struct store_key key;
        bool keyed, settled;
        bool from_store;        /* decided by a stored verdict, not by a worker */
};

struct scan_run {
        const struct policy *policy;
        const struct manifest_set *manifests;
        bool hash_only;         /* `modelgate manifest`: hash, do not scan */
        bool hash_all;          /* scan --sha256: every file's hash in the report */
        const char *manifest_dir;   /* its DIR, as given */
        const char *manifest_out;   /* resolved -o FILE, skipped by the walk */
        void *manifest_files;       /* cJSON object being built */
        unsigned long hash_errors;
        struct output out;
        struct progress progress;
        bool progress_over_output;  /* stdout is the terminal the progress line is on */
        struct worker workers[JOBS_MAX];
        struct job *worker_job[JOBS_MAX];
        size_t n_workers;
        uint64_t timeout_ms;
        /* Jobs in submission order, a ring; output is written from the head. */
        struct job *ring;
        size_t ring_cap, ring_head, ring_len;
        uint64_t next_id;
        unsigned restarts;
        bool failed;
        struct attest_writer *attest;   /* scan --attest: the statement being built */
        unsigned long attest_errors;
        struct verdict_store *store;    /* scan --store DIR, or NULL */
        char store_name[256];           /* DIR, escaped and shortened, for messages */
        unsigned long store_hits, store_appends, store_append_errors;
        int store_append_error;         /* the first failure, -errno */
};

/* A file that could not be scanned: the policy's on_error decides how much it weighs. */
static void job_fail(struct scan_run *s, struct job *j, enum mg_rule rule, const char *what, const char *detail) {
        enum mg_severity sev = policy_on_error(s->policy) == VERDICT_DENY ? SEV_HIGH : SEV_LOW;
        if (detail)
                report_add_finding(j->report, rule, sev, VIA_NONE, NULL, NULL, "%s: %s", what, detail);
        else
                report_add_finding(j->report, rule, sev, VIA_NONE, NULL, NULL, "%s", what);
}

static void job_store(struct scan_run *s, struct job *j);

static void job_decide(struct scan_run *s, struct job *j) {
        if (s->hash_only) {
                j->decided = true;
                return;
        }
        if (j->expect)
                manifest_check(j->expect, j->report);
        else if (j->unlisted)
                report_add_finding(j->report, RULE_HASH_MISMATCH, SEV_HIGH, VIA_NONE, NULL, NULL,
                                   "No manifest lists this file, and the policy requires one (require_manifest)");
        if (j->from_store) {
                /* The stored finding already carries the policy's judgement: evaluating
                 * again would judge a report without globals or license (a
                 * require_license policy would add MISSING_LICENSE). */
                int worst = report_worst_severity(j->report);
                j->verdict = worst >= 0 && worst >= (int) policy_fail_severity(s->policy) ? VERDICT_DENY : VERDICT_ALLOW;
        } else {
                j->verdict = policy_evaluate(s->policy, j->report);
                if (s->store && j->keyed)
                        job_store(s, j);
        }
        j->decided = true;
}

/* scan --store: records the content verdict of a file a worker just scanned. The
 * expected-hash check is left out, as modelgated does (verdict-store.h): it only
 * ever adds HASH_MISMATCH findings, and policy_evaluate's verdict is "the worst
 * severity reaches fail_severity", so the same comparison over every other
 * finding is the verdict the content alone gets. That is simpler than evaluating
 * twice, and a record means the same whether the agent or a scan wrote it. A scan
 * that failed (SCAN_ERROR, SCAN_TIMEOUT) is never recorded: it may be transient. */
static void job_store(struct scan_run *s, struct job *j) {
        const struct scan_report *r = j->report;
        const struct finding *cw = NULL;
        struct store_verdict sv = { 0 };

        if (!j->settled)
                return;
        for (uint32_t i = 0; i < r->n_findings && i < REPORT_FINDINGS_MAX; i++) {
                const struct finding *f = &r->findings[i];
                if (f->rule == RULE_SCAN_ERROR || f->rule == RULE_SCAN_TIMEOUT || f->rule >= _RULE_MAX)
                        return;
                if (f->rule != RULE_HASH_MISMATCH && (!cw || f->severity > cw->severity))
                        cw = f;
        }
        if (cw) {
                sv.has_rule = 1;
                sv.rule = cw->rule;
                sv.severity = cw->severity;
                sv.deny = cw->severity >= policy_fail_severity(s->policy);
        }
        if (r->has_sha256)
                sv.has_sha256 = sha256_from_hex(r->sha256, sv.sha256);
        if (r->format < _FMT_MAX) {
                sv.has_format = 1;
                sv.format = r->format;
        }
        int e = verdict_store_put(s->store, &j->key, &sv);
        if (e == 0)
                s->store_appends++;
        else if (!s->store_append_errors++)
                s->store_append_error = e;
}

/* Whether a stored content verdict can speak for this file in this run: written
 * by a scan (it knows the format), consistent with the policy's fail_severity, a
 * deny naming the rule it was for. Anything else is scanned again. */
static bool stored_verdict_usable(const struct scan_run *s, const struct job *j, const struct store_verdict *v) {
        char hex[65];

        if (!v->has_format || v->format >= _FMT_MAX)
                return false;
        if (v->has_rule && (v->rule >= _RULE_MAX || v->severity >= _SEV_MAX || v->rule == RULE_SCAN_ERROR ||
                            v->rule == RULE_SCAN_TIMEOUT || v->rule == RULE_HASH_MISMATCH))
                return false;
        if (v->deny != (v->has_rule && v->severity >= policy_fail_severity(s->policy)))
                return false;
        if (s->hash_all && !v->has_sha256)
                return false;   /* --sha256 and hash_files promise every file's hash */
        if (j->expect) {
                /* The check is repeated on every run, against the stored hash: only
                 * a SHA-256 expectation can be, and only when the record has one. */
                if (!j->expect->sha256[0] || !v->has_sha256)
                        return false;
                sha256_to_hex(v->sha256, hex);
                if (strcmp(hex, j->expect->sha256) != 0)
                        return false;
        }
        return true;
}

/* scan --store: decides the file from the store when an earlier run recorded a
 * verdict for this very inode, size and ctime under this policy. The report holds
 * what the record knows: format, size, SHA-256, and for a deny one finding with
 * the worst rule and its severity; no globals, license or other findings. */
static bool job_from_store(struct scan_run *s, struct job *j, const struct stat *st) {
        struct store_verdict v;
        struct scan_report *r = j->report;
        struct timespec now;

        store_key_from_stat(&j->key, st);
        j->keyed = true;
        clock_gettime(CLOCK_REALTIME, &now);
        j->settled = st->st_ctim.tv_sec + STORE_SETTLE_S <= now.tv_sec;
        if (!verdict_store_get(s->store, &j->key, &v) || !stored_verdict_usable(s, j, &v))
                return false;
        r->format = v.format;
        r->size = j->size;
        if (v.has_sha256) {
                sha256_to_hex(v.sha256, r->sha256);
                r->has_sha256 = true;
        }
        if (v.deny)
                report_add_finding(r, (enum mg_rule) v.rule, (enum mg_severity) v.severity, VIA_NONE, NULL, NULL,
                                   "%s: the worst finding of an earlier scan of this file under this policy, "
                                   "from the store %s (run without --store for every finding)",
                                   rule_name((enum mg_rule) v.rule), s->store_name);
        j->from_store = true;
        s->store_hits++;
        job_decide(s, j);
        return true;
}

static void manifest_collect(struct scan_run *s, struct job *j);

static void job_write(struct scan_run *s, struct job *j) {
        if (s->hash_only) {
                manifest_collect(s, j);
                return;
        }
        if (s->progress_over_output)
                progress_clear(&s->progress);
        if (s->store)
                output_file_from(&s->out, j->path, j->repository, j->report, j->verdict, j->from_store ? "store" : "scan");
        else
                output_file_repo(&s->out, j->path, j->repository, j->report, j->verdict);
        if (s->attest && attest_cmd_collect(s->attest, j->path, j->report, j->verdict) < 0)
                s->attest_errors++;
        progress_file_done(&s->progress, j->size, j->verdict == VERDICT_DENY);
}

static void job_free(struct job *j) {
        free(j->path);
        free(j->repository);
        free(j->report);
        memset(j, 0, sizeof(*j));
}

static void flush_ready(struct scan_run *s) {
        while (s->ring_len > 0 && s->ring[s->ring_head].decided) {
                struct job *j = &s->ring[s->ring_head];
                job_write(s, j);
                job_free(j);
                s->ring_head = (s->ring_head + 1) % s->ring_cap;
                s->ring_len--;
        }
}

/* After a stop: every decided file, in order, and the undecided ones dropped. */
static void flush_decided(struct scan_run *s) {
        while (s->ring_len > 0) {
                struct job *j = &s->ring[s->ring_head];
                if (j->decided)
                        job_write(s, j);
                job_free(j);
                s->ring_head = (s->ring_head + 1) % s->ring_cap;
                s->ring_len--;
        }
}

static int start_worker(struct scan_run *s, size_t i) {
        int r = worker_start(&s->workers[i], "/proc/self/exe");
        if (r < 0) {
                fprintf(stderr, "modelgate: cannot start a scanner worker: %s\n", strerror(-r));
                return r;
        }
        return 0;
}

static void worker_failed(struct scan_run *s, size_t i, enum mg_rule rule, const char *why) {
        struct job *j = s->worker_job[i];
        worker_stop(&s->workers[i]);
        if (j) {
                job_fail(s, j, rule, why, NULL);
                job_decide(s, j);
                s->worker_job[i] = NULL;
        }
        if (++s->restarts > WORKER_RESTARTS_MAX || start_worker(s, i) < 0) {
                s->failed = true;
                s->workers[i].pid = -1;
        }
}

static void collect(struct scan_run *s, size_t i) {
        struct job *j = s->worker_job[i];
        int r = worker_read(&s->workers[i]);

        if (r == 0)
                return;
        if (r < 0) {
                worker_failed(s, i, RULE_SCAN_ERROR,
                              r == -EPIPE ? "the scanner worker died while scanning this file (crash or sandbox violation)"
                                          : "the scanner worker broke protocol while scanning this file");
                return;
        }
        if (s->workers[i].rx.error < 0)
                job_fail(s, j, RULE_SCAN_ERROR, "cannot scan", strerror(-s->workers[i].rx.error));
        job_decide(s, j);
        s->worker_job[i] = NULL;
        s->restarts = 0;
}

/* Waits for any worker to finish or time out. */
static void wait_some(struct scan_run *s) {
        struct pollfd pfd[JOBS_MAX];
        size_t map[JOBS_MAX], n = 0;
        uint64_t now = monotonic_ms(), next = UINT64_MAX;

        for (size_t i = 0; i < s->n_workers; i++)
                if (s->worker_job[i]) {
                        pfd[n] = (struct pollfd) { .fd = s->workers[i].sock, .events = POLLIN };
                        map[n++] = i;
                        if (s->workers[i].deadline_ms < next)
                                next = s->workers[i].deadline_ms;
                }
        if (n == 0)
                return;
        int timeout = next <= now ? 0 : next - now > WAIT_SLICE_MS ? WAIT_SLICE_MS : (int) (next - now);
        int r = poll(pfd, n, timeout);
        progress_tick(&s->progress);
        if (r < 0 && errno != EINTR)
                return;
        now = monotonic_ms();
        for (size_t k = 0; k < n; k++) {
                size_t i = map[k];
                if (r > 0 && (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
                        collect(s, i);
                if (s->worker_job[i] && s->workers[i].deadline_ms <= now) {
                        char why[128];
                        snprintf(why, sizeof(why), "the scan did not finish within %llu s; the worker was killed",
                                 (unsigned long long) (s->timeout_ms / 1000));
                        worker_failed(s, i, RULE_SCAN_TIMEOUT, why);
                }
        }
}

static struct job *ring_push(struct scan_run *s, char *path) {
        struct job *j = &s->ring[(s->ring_head + s->ring_len) % s->ring_cap];
        memset(j, 0, sizeof(*j));
        j->id = ++s->next_id;
        j->path = path;
        j->report = malloc(sizeof(*j->report));
        if (!j->report)
                return NULL;
        report_init(j->report);
        s->ring_len++;
        return j;
}

/* A Hugging Face cache blob: ".../blobs/<64 hex>" is named by its SHA-256 (LFS
 * files), ".../blobs/<40 hex>" by its git blob id. Looked for in the fully
 * resolved path: snapshots/<rev>/<name> is a symlink to such a blob. */
static bool hf_blob_expectation(const char *resolved, struct manifest_entry *ret) {
        const char *b = strstr(resolved, "/blobs/");
        for (; b; b = strstr(b + 1, "/blobs/")) {
                const char *name = b + 7;
                size_t n = strlen(name), i;
                if (n != 64 && n != 40)
                        continue;
                for (i = 0; i < n && ((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')); i++)
                        ;
                if (i != n)
                        continue;
                memset(ret, 0, sizeof(*ret));
                memcpy(n == 64 ? ret->sha256 : ret->git_sha1, name, n + 1);
                ret->source = "the Hugging Face cache blob name";
                return true;
        }
        return false;
}

/* Whether a file name could be a cache blob's: 40 or 64 lowercase hex digits. */
static bool blob_like_name(const char *path) {
        const char *b = strrchr(path, '/');
        size_t n;

        b = b ? b + 1 : path;
        n = strlen(b);
        return (n == 40 || n == 64) && strspn(b, "0123456789abcdef") == n;
}

static void job_expectation(struct scan_run *s, struct job *j) {
        char key[PATH_MAX], resolved[PATH_MAX];
        bool have_resolved;

        /* Without manifests only a blob name can set an expectation, and a file
         * that is not a link keeps its name when resolved: most files of a mass
         * audit need no realpath() (a readlink per path component). */
        if (!s->manifests && j->plain_name && !blob_like_name(j->path)) {
                j->unlisted = policy_require_manifest(s->policy);
                return;
        }
        have_resolved = realpath(j->path, resolved) != NULL;

        if (s->manifests && manifest_path_key(j->path, key, sizeof(key)) == 0) {
                j->expect = manifest_lookup(s->manifests, key);
                if (!j->expect && have_resolved)
                        j->expect = manifest_lookup(s->manifests, resolved);
                if (j->expect)
                        return;
                if (have_resolved && manifest_set_is_manifest(s->manifests, resolved))
                        return;   /* the manifest itself */
        }
        if (have_resolved && hf_blob_expectation(resolved, &j->blob)) {
                j->expect = &j->blob;
                return;
        }
        j->unlisted = policy_require_manifest(s->policy);
}

static void submit(struct scan_run *s, struct walk *w, struct job *j) {
        int fd = open(j->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat st;

        if (fd < 0) {
                int e = errno;
                walk_error(w, j->path, "cannot open", e);
                job_fail(s, j, RULE_SCAN_ERROR, "cannot open", strerror(e));
                job_decide(s, j);
                return;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                walk_error(w, j->path, "changed into something other than a regular file", 0);
                job_fail(s, j, RULE_SCAN_ERROR, "not a regular file when opened", NULL);
                job_decide(s, j);
                close(fd);
                return;
        }
        j->size = (uint64_t) st.st_size;
        if (!s->hash_only)
                job_expectation(s, j);
        if (s->store && job_from_store(s, j, &st)) {
                close(fd);
                return;
        }
        for (;;) {
                size_t i;
                for (i = 0; i < s->n_workers; i++)
                        if (!s->worker_job[i] && s->workers[i].pid > 0)
                                break;
                if (i == s->n_workers) {
                        if (stop_signal)
                                break;   /* left undecided: not reported */
                        if (s->failed) {
                                job_fail(s, j, RULE_SCAN_ERROR, "no scanner worker could be started", NULL);
                                job_decide(s, j);
                                break;
                        }
                        wait_some(s);
                        continue;
                }
                uint32_t flags = s->hash_only ? WP_FLAG_SHA256 | WP_FLAG_HASH_ONLY : manifest_hash_flags(j->expect);
                if (s->hash_all)
                        flags |= WP_FLAG_SHA256;
                int r = worker_submit(&s->workers[i], j->id, flags, fd, j->report, monotonic_ms() + s->timeout_ms);
                if (r < 0) {
                        worker_failed(s, i, RULE_SCAN_ERROR, "the scanner worker could not take the file");
                        if (j->decided)
                                break;
                        continue;
                }
                s->worker_job[i] = j;
                break;
        }
        close(fd);
}

static int busy_workers(const struct scan_run *s) {
        int n = 0;
        for (size_t i = 0; i < s->n_workers; i++)
                n += s->worker_job[i] != NULL;
        return n;
}

static void usage(FILE *f) {
        fputs("usage: modelgate scan [--policy FILE] [--manifest FILE]... [--root DIR] [--sha256]\n"
              "                      [--format text|json|sarif|csv] [--jobs N] [--timeout SECONDS]\n"
              "                      [--shard I/N] [--progress|--no-progress] [--quiet] [--store DIR]\n"
              "                      [--attest FILE --signing-key KEY.pem] PATH...\n"
              "       modelgate report merge [--output FILE] [--format json|text|csv|sarif] REPORT.json...\n"
              "       modelgate attest verify --key PUBLIC.pem [--policy FILE] ENVELOPE\n"
              "       modelgate manifest [--output FILE] [--jobs N] DIR\n"
              "       modelgate convert [--policy FILE] [--force] [--timeout SECONDS] IN OUT.safetensors\n"
              "       modelgate --version\n"
              "Scans model files (pickle, PyTorch, numpy, joblib, safetensors, GGUF, ONNX, Keras,\n"
              "chat templates, Git LFS pointers, and their containers) in sandboxed workers,\n"
              "checks expected hashes, and applies a policy. Exit status: 0 all allowed, 1 at\n"
              "least one denied, 2 usage error, unreadable input or invalid policy, 130/143\n"
              "stopped by SIGINT/SIGTERM (the report holds the files decided until then).\n"
              "--shard I/N scans the I-th of N deterministic parts of the tree (a repository is\n"
              "never split); report merge joins the shards' JSON reports into the report one\n"
              "machine would have written.\n"
              "--store DIR keeps each file's verdict in DIR/verdicts.db; a later scan answers a\n"
              "file unchanged since (same inode, size and ctime, same policy) from it, with its\n"
              "verdict and worst rule only.\n"
              "manifest writes the SHA-256 and size of every file under DIR, for --manifest.\n"
              "convert re-writes a PyTorch checkpoint (zip or legacy), .npy or .npz as\n"
              "safetensors without running it, once the scan allows it. Exit status: 0\n"
              "written, 1 refused (denied, or not convertible faithfully), 2 usage or I/O error.\n"
              "See modelgate(1) and modelgate-policy(5).\n", f);
}

static int scan_run_all(struct scan_run *s, struct walk *w, long jobs, long timeout);
static void catch_stop_signals(void);
static void scan_count(const struct walk *conf, struct progress *p);

enum { OPT_SHARD = 0x100, OPT_PROGRESS, OPT_NO_PROGRESS, OPT_STORE };

/* Opens scan --store's DIR for the policy's hash (the bytes modelgated opens its
 * store with). Returns 0, or 2 with a message. */
static int scan_store_open(struct scan_run *s, const char *dir, bool quiet) {
        struct store_load_info info;
        uint8_t bin[32];
        char esc[4096];
        int r;

        report_escape(esc, sizeof(esc), (const uint8_t *) dir, strlen(dir), NULL);
        snprintf(s->store_name, sizeof(s->store_name), "%.240s%s", esc, strlen(esc) > 240 ? "..." : "");
        r = sha256_from_hex(policy_sha256(s->policy), bin) ? verdict_store_open(dir, bin, 0, &s->store, &info) : -EINVAL;
        if (r == -EBUSY) {
                fprintf(stderr, "modelgate: --store %s: in use: a modelgated or another scan holds its lock\n", esc);
                return 2;
        }
        if (r == -EPERM) {
                fprintf(stderr, "modelgate: --store %s: refused: the directory or its %s belongs to another user, "
                        "or others can write the directory\n", esc, STORE_FILE_NAME);
                return 2;
        }
        if (r < 0) {
                fprintf(stderr, "modelgate: --store %s: cannot open the store: %s\n", esc, strerror(-r));
                return 2;
        }
        if (info.aside[0])
                fprintf(stderr, "modelgate: --store %s: %s was not a verdict store; moved aside, started anew\n", esc,
                        STORE_FILE_NAME);
        if (!quiet && (info.corrupt || info.torn_bytes))
                fprintf(stderr, "modelgate: --store %s: %lu damaged record%s skipped, %lu torn byte%s cut\n", esc,
                        info.corrupt, info.corrupt == 1 ? "" : "s", info.torn_bytes, info.torn_bytes == 1 ? "" : "s");
        return 0;
}

/* Signs and writes what scan --attest collected. A file left out (no hash) makes
 * the run fail, though the others are signed. */
static int attest_scan_finish(struct scan_run *s, const char *out, const char *key) {
        char err[ATTEST_ERROR_MAX];
        if (attest_writer_finish(s->attest, key, out, err, sizeof(err)) < 0) {
                fprintf(stderr, "modelgate: cannot write the attestation: %s\n", err);
                return -EIO;
        }
        return s->attest_errors ? -EIO : 0;
}

static int cmd_scan(int argc, char **argv) {
        static const struct option opts[] = {
                { "policy", required_argument, NULL, 'p' },
                { "manifest", required_argument, NULL, 'm' },
                { "format", required_argument, NULL, 'f' },
                { "jobs", required_argument, NULL, 'j' },
                { "timeout", required_argument, NULL, 't' },
                { "root", required_argument, NULL, 'r' },
                { "sha256", no_argument, NULL, 's' },
                { "shard", required_argument, NULL, OPT_SHARD },
                { "progress", no_argument, NULL, OPT_PROGRESS },
                { "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
                { "quiet", no_argument, NULL, 'q' },
                { "attest", required_argument, NULL, 'A' },
                { "signing-key", required_argument, NULL, 'K' },
                { "store", required_argument, NULL, OPT_STORE },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *policy_path = NULL, *root = NULL, *attest_out = NULL, *signing_key = NULL, *store_dir = NULL;
        int progress = -1;      /* -1: when standard error is a terminal */
        bool quiet = false;
        unsigned shard_index = 0, shard_count = 0;
        const char *manifest_args[JOBS_MAX];
        size_t n_manifest_args = 0;
        struct manifest_set *manifests = NULL;
        int format = OUTPUT_TEXT;
        long jobs = sysconf(_SC_NPROCESSORS_ONLN), timeout = SCAN_TIMEOUT_DEFAULT_S;
        struct policy *policy = NULL;
        char err[POLICY_ERROR_MAX];
        struct scan_run *s;
        struct walk w = { 0 };
        char *end;
        int c, r;

        bool hash_all = false;

        while ((c = getopt_long(argc, argv, "p:m:f:j:t:r:sqA:K:h", opts, NULL)) != -1) {
                switch (c) {
                case 'p':
                        policy_path = optarg;
                        break;
                case OPT_SHARD:
                        if (shard_parse(optarg, &shard_index, &shard_count, err, sizeof(err)) < 0) {
                                fprintf(stderr, "modelgate: --shard %s: %s\n", optarg, err);
                                return 2;
                        }
                        break;
                case OPT_PROGRESS:
                        progress = 1;
                        break;
                case OPT_NO_PROGRESS:
                        progress = 0;
                        break;
                case OPT_STORE:
                        store_dir = optarg;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'A':
                        attest_out = optarg;
                        break;
                case 'K':
                        signing_key = optarg;
                        break;
                case 'm':
                        if (n_manifest_args == JOBS_MAX) {
                                fprintf(stderr, "modelgate: more than %d --manifest options\n", JOBS_MAX);
                                return 2;
                        }
                        manifest_args[n_manifest_args++] = optarg;
                        break;
                case 'r':
                        root = optarg;
                        break;
                case 's':
                        hash_all = true;
                        break;
                case 'f':
                        if ((format = output_format_from_name(optarg)) < 0) {
                                fprintf(stderr, "modelgate: --format %s: expected text, json, sarif or csv\n", optarg);
                                return 2;
                        }
                        break;
                case 'j':
                        errno = 0;
                        jobs = strtol(optarg, &end, 10);
                        if (errno || *end || jobs < 1 || jobs > JOBS_MAX) {
                                fprintf(stderr, "modelgate: --jobs %s: expected a number from 1 to %d\n", optarg, JOBS_MAX);
                                return 2;
                        }
                        break;
                case 't':
                        errno = 0;
                        timeout = strtol(optarg, &end, 10);
                        if (errno || *end || timeout < 1 || timeout > 86400) {
                                fprintf(stderr, "modelgate: --timeout %s: expected seconds from 1 to 86400\n", optarg);
                                return 2;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind >= argc) {
                fputs("modelgate scan: no PATH given\n", stderr);
                usage(stderr);
                return 2;
        }
        if (!attest_out != !signing_key) {
                fputs("modelgate scan: --attest and --signing-key go together\n", stderr);
                return 2;
        }
        if (store_dir && attest_out) {
                fputs("modelgate scan: --store and --attest do not go together: an attestation lists every rule "
                      "a file failed, a stored verdict only the worst\n", stderr);
                return 2;
        }
        if (jobs < 1)
                jobs = 1;
        if (jobs > JOBS_MAX)
                jobs = JOBS_MAX;

        r = policy_load(policy_path, &policy, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "modelgate: invalid policy: %s\n", err);
                return 2;
        }
        if (root && n_manifest_args == 0) {
                fputs("modelgate: --root applies to --manifest files; none was given\n", stderr);
                policy_free(policy);
                return 2;
        }
        if (n_manifest_args > 0 || policy_manifest_count(policy) > 0) {
                char merr[MANIFEST_ERROR_MAX];
                r = manifest_set_new(&manifests);
                for (size_t i = 0; r == 0 && i < n_manifest_args; i++)
                        r = manifest_set_add(manifests, manifest_args[i], root, merr, sizeof(merr));
                for (size_t i = 0; r == 0 && i < policy_manifest_count(policy); i++)
                        r = manifest_set_add(manifests, policy_manifest(policy, i), NULL, merr, sizeof(merr));
                if (r < 0) {
                        fprintf(stderr, "modelgate: invalid manifest: %s\n", r == -ENOMEM && !manifests ? "out of memory" : merr);
                        manifest_set_free(manifests);
                        policy_free(policy);
                        return 2;
                }
        }

        s = calloc(1, sizeof(*s));
        if (!s) {
                policy_free(policy);
                manifest_set_free(manifests);
                fputs("modelgate: out of memory\n", stderr);
                return 2;
        }
        s->policy = policy;
        s->manifests = manifests;
        s->hash_all = hash_all || policy_hash_files(policy) || attest_out;
        if (store_dir && scan_store_open(s, store_dir, quiet) != 0) {
                free(s);
                policy_free(policy);
                manifest_set_free(manifests);
                return 2;
        }
        if (attest_out && attest_writer_new(policy_sha256(policy), &s->attest) < 0) {
                fputs("modelgate: out of memory\n", stderr);
                free(s);
                policy_free(policy);
                manifest_set_free(manifests);
                return 2;
        }
        w.roots = argv + optind;
        w.n_roots = (size_t) (argc - optind);
        w.shard_index = shard_index;
        w.shard_count = shard_count;
        w.quiet = quiet;
        w.progress = &s->progress;
        w.list_errors = true;
        catch_stop_signals();
        if (progress < 0)
                progress = !quiet && isatty(STDERR_FILENO);
        progress_init(&s->progress, progress ? stderr : NULL);
        s->progress_over_output = progress && isatty(STDOUT_FILENO);
        if (progress)
                scan_count(&w, &s->progress);
        {
                const struct output_run run = {
                        .roots = w.roots, .n_roots = w.n_roots,
                        .shard_index = shard_index, .shard_count = shard_count,
                };
                output_begin_run(&s->out, stdout, (enum output_format) format, policy, &run);
        }
        r = scan_run_all(s, &w, jobs, timeout);
        while (w.depth > 0)
                walk_pop_dir(&w);   /* a stopped walk */
        progress_done(&s->progress);
        if (r == 0) {
                s->out.summary.interrupted = stop_signal != 0;
                output_end(&s->out);
                r = stop_signal ? 128 + stop_signal : w.errors ? 2 : s->out.denied ? 1 : 0;
                if (w.errors)
                        fprintf(stderr, "modelgate: %lu input%s could not be read\n", w.errors, w.errors == 1 ? "" : "s");
                /* A report cut short (a full disk, a closed pipe) must not pass for
                 * a complete one. */
                if (fflush(stdout) != 0 || ferror(stdout)) {
                        fputs("modelgate: the report could not be written in full to standard output\n", stderr);
                        r = 2;
                }
                if (s->attest && attest_scan_finish(s, attest_out, signing_key) < 0)
                        r = 2;
                if (stop_signal)
                        fprintf(stderr, "modelgate: stopped by %s: %lu file%s reported, the rest not scanned\n",
                                stop_signal == SIGINT ? "SIGINT" : "SIGTERM", s->out.files, s->out.files == 1 ? "" : "s");
                if (s->store && !quiet)
                        fprintf(stderr, "modelgate: --store %s: %lu of %lu file%s answered from the store, "
                                "%lu verdict%s recorded\n", s->store_name, s->store_hits, s->out.files,
                                s->out.files == 1 ? "" : "s", s->store_appends, s->store_appends == 1 ? "" : "s");
                if (s->store_append_errors)
                        fprintf(stderr, "modelgate: --store %s: %lu verdict%s could not be recorded: %s\n", s->store_name,
                                s->store_append_errors, s->store_append_errors == 1 ? "" : "s",
                                s->store_append_error == -ENOSPC ? "the store is full" : strerror(-s->store_append_error));
        }
        verdict_store_close(s->store);
        attest_writer_free(s->attest);
        free(s);
        policy_free(policy);
        manifest_set_free(manifests);
        return r;
}

static void job_repository(struct job *j, const struct walk *w) {
        char raw[REPOSITORY_MAX], esc[4 * REPOSITORY_MAX];

        if (w->root && repository_of(j->path, w->root, raw, sizeof(raw))) {
                report_escape(esc, sizeof(esc), (const uint8_t *) raw, strlen(raw), NULL);
                j->repository = strdup(esc);
        }
}

/* After the first SIGINT/SIGTERM nothing more is submitted: files in flight get
 * STOP_GRACE_MS (none after a second signal), then their workers are killed and
 * what was decided is written, in order. */
static void scan_stop(struct scan_run *s) {
        uint64_t deadline = monotonic_ms() + STOP_GRACE_MS;

        while (busy_workers(s) > 0 && stop_count < 2 && monotonic_ms() < deadline) {
                wait_some(s);
                flush_ready(s);
        }
        for (size_t i = 0; i < s->n_workers; i++)
                if (s->worker_job[i]) {
                        worker_stop(&s->workers[i]);
                        s->worker_job[i] = NULL;
                }
        flush_decided(s);
        for (size_t i = 0; i < s->n_workers; i++)
                worker_finish(&s->workers[i]);
        free(s->ring);
}

static void on_stop_signal(int sig) {
        if (!stop_signal)
                stop_signal = sig;
        stop_count++;
}

/* SA_RESTART keeps stdio writes of the report whole; poll() is never restarted,
 * and the job loop's polls are short anyway (WAIT_SLICE_MS). */
static void catch_stop_signals(void) {
        struct sigaction sa = { .sa_handler = on_stop_signal, .sa_flags = SA_RESTART };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
}

/* The counting pre-walk behind the progress line: the same walk (shard
 * included) with stat only and no messages. */
static void scan_count(const struct walk *conf, struct progress *p) {
        struct walk *w = calloc(1, sizeof(*w));
        uint64_t files = 0, bytes = 0;
        char *path;

        if (!w)
                return;
        w->roots = conf->roots;
        w->n_roots = conf->n_roots;
        w->shard_index = conf->shard_index;
        w->shard_count = conf->shard_count;
        w->silent = true;
        while (!stop_signal && (path = walk_next(w))) {
                files++;
                bytes += w->size;
                free(path);
                progress_counted(p, files, bytes, false);
        }
        while (w->depth > 0)
                walk_pop_dir(w);
        free(w);
        progress_counted(p, files, bytes, true);
}

/* Starts the workers, walks, submits and collects until every file is decided
 * (or a stop signal came: see scan_stop()).
 * Returns 0, or 2 when it could not run at all (message printed). */
static int scan_run_all(struct scan_run *s, struct walk *w, long jobs, long timeout) {
        s->timeout_ms = (uint64_t) timeout * 1000;
        s->n_workers = (size_t) jobs;
        s->ring_cap = (size_t) jobs * REORDER_PER_JOB + 1;
        s->ring = calloc(s->ring_cap, sizeof(*s->ring));
        for (size_t i = 0; i < s->n_workers; i++)
                s->workers[i].pid = -1;
        if (!s->ring) {
                fputs("modelgate: out of memory\n", stderr);
                return 2;
        }
        for (size_t i = 0; i < s->n_workers; i++)
                if (start_worker(s, i) < 0) {
                        for (size_t k = 0; k < i; k++)
                                worker_stop(&s->workers[k]);
                        free(s->ring);
                        return 2;
                }
        for (;;) {
                /* Keep the ring from filling behind a slow head: wait instead. */
                while (s->ring_len + 1 >= s->ring_cap && !stop_signal) {
                        wait_some(s);
                        flush_ready(s);
                }
                if (stop_signal)
                        break;
                char *path = walk_next(w);
                if (!path)
                        break;
                if (s->manifest_out) {
                        char resolved[PATH_MAX];
                        if (realpath(path, resolved) && strcmp(resolved, s->manifest_out) == 0) {
                                free(path);
                                continue;   /* the manifest being written */
                        }
                }
                struct job *j = ring_push(s, path);
                if (!j) {
                        fputs("modelgate: out of memory\n", stderr);
                        return 2;
                }
                job_repository(j, w);
                j->plain_name = !w->link;
                if (w->error_what) {   /* could not be read: listed, not scanned */
                        job_fail(s, j, RULE_SCAN_ERROR, w->error_what, w->error_errno ? strerror(w->error_errno) : NULL);
                        job_decide(s, j);
                } else
                        submit(s, w, j);
                flush_ready(s);
        }
        while (busy_workers(s) > 0 && !stop_signal) {
                wait_some(s);
                flush_ready(s);
        }
        if (stop_signal) {
                scan_stop(s);
                return 0;
        }
        flush_ready(s);
        for (size_t i = 0; i < s->n_workers; i++)
                worker_finish(&s->workers[i]);
        free(s->ring);
        return 0;
}

/* ---- modelgate manifest ---------------------------------------------------- */

static void manifest_collect(struct scan_run *s, struct job *j) {
        cJSON *files = s->manifest_files, *e;
        size_t dl = strlen(s->manifest_dir);
        const char *rel = j->path;

        while (dl > 1 && s->manifest_dir[dl - 1] == '/')
                dl--;
        if (strncmp(rel, s->manifest_dir, dl) == 0 && rel[dl] == '/')
                rel += dl + 1;
        while (rel[0] == '.' && rel[1] == '/')
                rel += 2;
        if (!j->report->has_sha256) {
                char esc[PATH_MAX];
                report_escape(esc, sizeof(esc), (const uint8_t *) j->path, strlen(j->path), NULL);
                fprintf(stderr, "modelgate: %s: cannot hash: %s\n", esc,
                        j->report->n_findings ? j->report->findings[0].message : "the worker returned no hash");
                s->hash_errors++;
                return;
        }
        e = cJSON_CreateObject();
        if (!e || !cJSON_AddStringToObject(e, "sha256", j->report->sha256) ||
            !cJSON_AddNumberToObject(e, "size", (double) j->size) || !cJSON_AddItemToObject(files, rel, e)) {
                cJSON_Delete(e);
                s->hash_errors++;
        }
}

static int cmp_json_keys(const void *a, const void *b) {
        return strcmp((*(cJSON *const *) a)->string, (*(cJSON *const *) b)->string);
}

static int write_manifest(cJSON *doc, const char *out) {
        cJSON *files = cJSON_GetObjectItemCaseSensitive(doc, "files");
        size_t n = (size_t) cJSON_GetArraySize(files), i = 0;
        cJSON **items = calloc(n ? n : 1, sizeof(*items));
        char *text, tmp[PATH_MAX];
        FILE *f;
        int ok;

        if (!items)
                return -ENOMEM;
        /* Sorted by path, so that two manifests of the same tree are identical. */
        for (cJSON *c = files->child; c; c = c->next)
                items[i++] = c;
        qsort(items, n, sizeof(*items), cmp_json_keys);
        files->child = n ? items[0] : NULL;
        for (i = 0; i < n; i++) {
                items[i]->prev = i ? items[i - 1] : items[n - 1];
                items[i]->next = i + 1 < n ? items[i + 1] : NULL;
        }
        free(items);
        text = cJSON_Print(doc);
        if (!text)
                return -ENOMEM;
        if (!out) {
                ok = fputs(text, stdout) >= 0 && fputc('\n', stdout) != EOF && fflush(stdout) == 0;
                cJSON_free(text);
                return ok ? 0 : -EIO;
        }
        /* Written beside the target and renamed over it: never a torn manifest. */
        if ((size_t) snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out, (int) getpid()) >= sizeof(tmp)) {
                cJSON_free(text);
                return -ENAMETOOLONG;
        }
        f = fopen(tmp, "wxe");
        if (!f) {
                int e = errno;
                cJSON_free(text);
                return -e;
        }
        ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF && fflush(f) == 0 && fsync(fileno(f)) == 0;
        ok &= fclose(f) == 0;
        cJSON_free(text);
        if (!ok || rename(tmp, out) < 0) {
                int e = errno ? errno : EIO;
                unlink(tmp);
                return -e;
        }
        return 0;
}

static int cmd_manifest(int argc, char **argv) {
        static const struct option opts[] = {
                { "output", required_argument, NULL, 'o' },
                { "jobs", required_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        long jobs = sysconf(_SC_NPROCESSORS_ONLN);
        const char *out = NULL;
        char out_resolved[PATH_MAX], *end;
        char dir_esc[PATH_MAX], out_esc[PATH_MAX] = "";
        struct policy *policy = NULL;
        struct scan_run *s;
        struct walk w = { 0 };
        struct stat st;
        cJSON *doc;
        char err[POLICY_ERROR_MAX];
        int c, r;

        while ((c = getopt_long(argc, argv, "o:j:h", opts, NULL)) != -1) {
                switch (c) {
                case 'o':
                        out = optarg;
                        break;
                case 'j':
                        errno = 0;
                        jobs = strtol(optarg, &end, 10);
                        if (errno || *end || jobs < 1 || jobs > JOBS_MAX) {
                                fprintf(stderr, "modelgate: --jobs %s: expected a number from 1 to %d\n", optarg, JOBS_MAX);
                                return 2;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc - 1) {
                fputs("modelgate manifest: expected exactly one DIR\n", stderr);
                usage(stderr);
                return 2;
        }
        report_escape(dir_esc, sizeof(dir_esc), (const uint8_t *) argv[optind], strlen(argv[optind]), NULL);
        if (out)
                report_escape(out_esc, sizeof(out_esc), (const uint8_t *) out, strlen(out), NULL);
        if (stat(argv[optind], &st) < 0) {
                fprintf(stderr, "modelgate manifest: %s: %s\n", dir_esc, strerror(errno));
                return 2;
        }
        if (!S_ISDIR(st.st_mode)) {
                fprintf(stderr, "modelgate manifest: %s: not a directory\n", dir_esc);
                return 2;
        }
        if (jobs < 1)
                jobs = 1;
        if (jobs > JOBS_MAX)
                jobs = JOBS_MAX;
        if ((r = policy_load(NULL, &policy, err, sizeof(err))) < 0) {
                fprintf(stderr, "modelgate: %s\n", err);
                return 2;
        }
        s = calloc(1, sizeof(*s));
        doc = cJSON_CreateObject();
        if (!s || !doc || !(s->manifest_files = cJSON_AddObjectToObject(doc, "files"))) {
                fputs("modelgate: out of memory\n", stderr);
                return 2;
        }
        s->policy = policy;
        s->hash_only = true;
        s->manifest_dir = argv[optind];
        if (out) {
                /* The output may not exist yet: resolve its directory. */
                if ((r = manifest_path_key(out, out_resolved, sizeof(out_resolved))) < 0) {
                        fprintf(stderr, "modelgate manifest: --output %s: %s\n", out_esc, strerror(-r));
                        return 2;
                }
                s->manifest_out = out_resolved;
        }
        w.roots = argv + optind;
        w.n_roots = 1;
        r = scan_run_all(s, &w, jobs, SCAN_TIMEOUT_DEFAULT_S);
        if (r == 0) {
                if ((r = write_manifest(doc, out)) < 0) {
                        fprintf(stderr, "modelgate manifest: cannot write %s: %s\n", out ? out_esc : "to stdout", strerror(-r));
                        r = 2;
                } else
                        r = w.errors || s->hash_errors ? 2 : 0;
        }
        if (w.errors || s->hash_errors)
                fprintf(stderr, "modelgate: %lu file%s could not be read or hashed; the manifest leaves %s out\n",
                        w.errors + s->hash_errors, w.errors + s->hash_errors == 1 ? "" : "s",
                        w.errors + s->hash_errors == 1 ? "it" : "them");
        cJSON_Delete(doc);
        free(s);
        policy_free(policy);
        return r;
}

/* ---- modelgate convert ------------------------------------------------------- */

static int wait_readable(int fd, uint64_t deadline_ms) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };

        for (;;) {
                uint64_t now = monotonic_ms();
                if (now >= deadline_ms)
                        return -ETIMEDOUT;
                uint64_t left = deadline_ms - now;
                int r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int) left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r > 0)
                        return 0;
        }
}

/* The report of the job the worker has: 0, or -ETIMEDOUT, -EPIPE, -EBADMSG. */
static int convert_wait_report(struct worker *w, uint64_t deadline_ms) {
        for (;;) {
                int r = wait_readable(w->sock, deadline_ms);
                if (r < 0)
                        return r;
                r = worker_read(w);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
}

/* The plan of the job the worker has, fed through the strict receiver. */
static int convert_wait_plan(struct worker *w, struct plan_receiver *rx, uint64_t deadline_ms) {
        struct wp_msg m;

        for (;;) {
                int r = wait_readable(w->sock, deadline_ms);
                if (r < 0)
                        return r;
                for (;;) {
                        ssize_t n = recv(w->sock, &m, sizeof(m), MSG_TRUNC);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0 && errno == EAGAIN)
                                break;
                        if (n <= 0)
                                return -EPIPE;
                        r = plan_receiver_feed(rx, &m, (size_t) n);
                        if (r != 0)
                                return r < 0 ? r : 0;
                }
        }
}

static const char *worker_trouble(int r) {
        return r == -ETIMEDOUT ? "the worker did not finish in time and was killed"
               : r == -EPIPE   ? "the worker died (crash or sandbox violation)"
                               : "the worker broke protocol";
}

static void print_size(FILE *f, uint64_t n) {
        if (n >= (uint64_t) 1 << 30)
                fprintf(f, "%.1f GiB", (double) n / (double) ((uint64_t) 1 << 30));
        else if (n >= (uint64_t) 1 << 20)
                fprintf(f, "%.1f MiB", (double) n / (double) ((uint64_t) 1 << 20));
        else
                fprintf(f, "%llu bytes", (unsigned long long) n);
}

/* What the plan did beyond writing tensors: tied names and dropped values. */
static void convert_print_summary(const char *out_esc, const char *in_esc, const struct plan *p,
                                  const struct convert_layout *l) {
        size_t values = 0, tied = 0, dropped = 0;

        for (size_t i = 0; i < p->n_meta; i++) {
                values += p->meta[i].kind == PM_VALUE;
                tied += p->meta[i].kind == PM_TIED;
                dropped += p->meta[i].kind == PM_DROPPED;
        }
        printf("modelgate convert: wrote %s: %zu tensor%s, ", out_esc, p->n_tensors, p->n_tensors == 1 ? "" : "s");
        print_size(stdout, l->data_len);
        printf(" of data, %zu metadata value%s, from %s %s\n", values, values == 1 ? "" : "s",
               format_name((enum mg_format) p->format), in_esc);
        for (size_t i = 0; i < p->n_meta; i++)
                if (p->meta[i].kind == PM_TIED)
                        printf("  tied: %s shares its storage with %s: only %s is written, __metadata__ records \"%s\": \"%s\"\n",
                               p->meta[i].key, p->meta[i].value, p->meta[i].value, p->meta[i].key, p->meta[i].value);
        for (size_t i = 0; i < p->n_meta; i++)
                if (p->meta[i].kind == PM_DROPPED)
                        printf("  dropped: %s: %s\n", p->meta[i].key, p->meta[i].value);
        if (p->dropped_unlisted)
                printf("  dropped: %u more value%s, not listed\n", p->dropped_unlisted, p->dropped_unlisted == 1 ? "" : "s");
        (void) tied;
        (void) dropped;
}

/* The name a lone array gets: the input's file name without its extension. */
static void convert_stem(const char *in, char *ret, size_t size) {
        const char *b = strrchr(in, '/');
        char *dot;

        b = b ? b + 1 : in;
        report_escape(ret, size, (const uint8_t *) b, strlen(b), NULL);
        dot = strrchr(ret, '.');
        if (dot && dot != ret)
                *dot = '\0';
        if (!ret[0])
                snprintf(ret, size, "tensor");
}

static bool same_file_state(const struct stat *a, const struct stat *b) {
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
               a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int cmd_convert(int argc, char **argv) {
        static const struct option opts[] = {
                { "policy", required_argument, NULL, 'p' },
                { "force", no_argument, NULL, 'f' },
                { "timeout", required_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *policy_path = NULL, *in, *out;
        char in_esc[PATH_MAX], out_esc[PATH_MAX], err[CONVERT_ERROR_MAX] = "", perr[POLICY_ERROR_MAX];
        char stem[256], sha[65] = "", *end, *dir;
        struct stat in_st, out_st, st2;
        bool force = false, out_exists = false, hashing = false;
        long timeout = SCAN_TIMEOUT_DEFAULT_S;
        struct policy *policy = NULL;
        struct manifest_set *manifests = NULL;
        struct scan_run *s = NULL;
        struct job j = { .id = 1 };
        struct worker w = { .pid = -1, .sock = -1 }, hw = { .pid = -1, .sock = -1 };
        struct scan_report *hash_report = NULL;
        struct plan plan;
        struct plan_receiver rx;
        struct convert_layout layout = { 0 };
        struct convert_out o = { .fd = -1, .dir_fd = -1 };
        struct output output;
        int c, r, in_fd = -1, ret = 2;

        plan_init(&plan);
        while ((c = getopt_long(argc, argv, "p:ft:h", opts, NULL)) != -1) {
                switch (c) {
                case 'p':
                        policy_path = optarg;
                        break;
                case 'f':
                        force = true;
                        break;
                case 't':
                        errno = 0;
                        timeout = strtol(optarg, &end, 10);
                        if (errno || *end || timeout < 1 || timeout > 86400) {
                                fprintf(stderr, "modelgate: --timeout %s: expected seconds from 1 to 86400\n", optarg);
                                return 2;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (argc - optind != 2) {
                fputs("modelgate convert: expected IN and OUT.safetensors\n", stderr);
                usage(stderr);
                return 2;
        }
        in = argv[optind];
        out = argv[optind + 1];
        report_escape(in_esc, sizeof(in_esc), (const uint8_t *) in, strlen(in), NULL);
        report_escape(out_esc, sizeof(out_esc), (const uint8_t *) out, strlen(out), NULL);

        /* The output first: cheap to check, and nothing is read for a run that
         * could not write anyway. */
        if (lstat(out, &out_st) == 0) {
                if (S_ISDIR(out_st.st_mode)) {
                        fprintf(stderr, "modelgate convert: %s is a directory\n", out_esc);
                        return 2;
                }
                if (!force) {
                        fprintf(stderr, "modelgate convert: %s exists; --force replaces it\n", out_esc);
                        return 2;
                }
                out_exists = true;
        } else if (errno != ENOENT) {
                fprintf(stderr, "modelgate convert: %s: %s\n", out_esc, strerror(errno));
                return 2;
        }
        if (!(dir = strdup(out))) {
                fputs("modelgate: out of memory\n", stderr);
                return 2;
        }
        {
                char *d = dirname(dir);
                int e = stat(d, &st2) < 0 ? errno : S_ISDIR(st2.st_mode) ? 0 : ENOTDIR;
                if (e) {
                        report_escape(perr, sizeof(perr), (const uint8_t *) d, strlen(d), NULL);
                        fprintf(stderr, "modelgate convert: %s: its directory %s %s\n", out_esc, perr,
                                e == ENOENT ? "does not exist" : e == ENOTDIR ? "is not a directory" : strerror(e));
                        free(dir);
                        return 2;
                }
        }
        free(dir);

        in_fd = open(in, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (in_fd < 0) {
                fprintf(stderr, "modelgate convert: cannot open %s: %s\n", in_esc, strerror(errno));
                return 2;
        }
        if (fstat(in_fd, &in_st) < 0 || !S_ISREG(in_st.st_mode)) {
                fprintf(stderr, "modelgate convert: %s is not a regular file\n", in_esc);
                goto done;
        }
        if (out_exists && out_st.st_dev == in_st.st_dev && out_st.st_ino == in_st.st_ino) {
                fprintf(stderr, "modelgate convert: %s and %s are the same file\n", in_esc, out_esc);
                goto done;
        }

        if (policy_load(policy_path, &policy, perr, sizeof(perr)) < 0) {
                fprintf(stderr, "modelgate: invalid policy: %s\n", perr);
                goto done;
        }
        if (policy_manifest_count(policy) > 0) {
                char merr[MANIFEST_ERROR_MAX];
                r = manifest_set_new(&manifests);
                for (size_t i = 0; r == 0 && i < policy_manifest_count(policy); i++)
                        r = manifest_set_add(manifests, policy_manifest(policy, i), NULL, merr, sizeof(merr));
                if (r < 0) {
                        fprintf(stderr, "modelgate: invalid manifest: %s\n", r == -ENOMEM && !manifests ? "out of memory" : merr);
                        goto done;
                }
        }
        s = calloc(1, sizeof(*s));
        j.report = malloc(sizeof(*j.report));
        hash_report = malloc(sizeof(*hash_report));
        if (!s || !j.report || !hash_report) {
                fputs("modelgate: out of memory\n", stderr);
                goto done;
        }
        s->policy = policy;
        s->manifests = manifests;
        s->timeout_ms = (uint64_t) timeout * 1000;
        j.path = (char *) in;
        report_init(j.report);
        j.size = (uint64_t) in_st.st_size;
        job_expectation(s, &j);

        /* 1. The normal scan and policy. The source hash __metadata__ needs is
         * taken meanwhile by a second worker (hashing reads, it parses nothing):
         * reading every byte is the slowest step, so it starts first. A manifest
         * that wants the hash for the verdict has the scan take it instead. */
        if ((r = worker_start(&w, "/proc/self/exe")) < 0) {
                fprintf(stderr, "modelgate: cannot start a scanner worker: %s\n", strerror(-r));
                goto done;
        }
        if (!(manifest_hash_flags(j.expect) & WP_FLAG_SHA256)) {
                if ((r = worker_start(&hw, "/proc/self/exe")) < 0 ||
                    (r = worker_submit(&hw, 3, WP_FLAG_SHA256 | WP_FLAG_HASH_ONLY, in_fd, hash_report,
                                       monotonic_ms() + s->timeout_ms)) < 0) {
                        fprintf(stderr, "modelgate: cannot start a hashing worker: %s\n", strerror(-r));
                        goto done;
                }
                hashing = true;
        }
        r = worker_submit(&w, j.id, manifest_hash_flags(j.expect), in_fd, j.report, monotonic_ms() + s->timeout_ms);
        if (r == 0)
                r = convert_wait_report(&w, monotonic_ms() + s->timeout_ms);
        if (r < 0) {
                job_fail(s, &j, r == -ETIMEDOUT ? RULE_SCAN_TIMEOUT : RULE_SCAN_ERROR, worker_trouble(r), NULL);
                worker_stop(&w);
        } else if (w.rx.error < 0)
                job_fail(s, &j, RULE_SCAN_ERROR, "cannot scan", strerror(-w.rx.error));
        job_decide(s, &j);
        output_begin(&output, stdout, OUTPUT_TEXT, policy);
        output_file(&output, in, j.report, j.verdict);
        output_end(&output);
        fflush(stdout);
        if (j.verdict == VERDICT_DENY) {
                fprintf(stderr, "modelgate convert: %s: refused: the policy denies this file; nothing was written\n", in_esc);
                ret = 1;
                goto done;
        }

        /* 2. The plan, worked out in the sandbox and checked here. */
        if (w.pid <= 0 && (r = worker_start(&w, "/proc/self/exe")) < 0) {
                fprintf(stderr, "modelgate: cannot start a scanner worker: %s\n", strerror(-r));
                goto done;
        }
        plan_receiver_start(&rx, 2, (uint64_t) in_st.st_size, &plan);
        r = wp_send_request(w.sock, 2, WP_FLAG_CONVERT, in_fd);
        if (r == 0)
                r = convert_wait_plan(&w, &rx, monotonic_ms() + s->timeout_ms);
        if (r < 0) {
                fprintf(stderr, "modelgate convert: %s: refused: %s\n", in_esc,
                        r == -EBADMSG && plan.message[0] ? plan.message : worker_trouble(r));
                ret = 1;
                goto done;
        }
        if (plan.error) {
                fprintf(stderr, "modelgate convert: %s: %s: %s; nothing was written\n", in_esc,
                        plan.error == -EINVAL ? "cannot convert" : "error", plan.message);
                ret = plan.error == -EINVAL ? 1 : 2;
                goto done;
        }

        /* 3. Write; the hash comes in at the end. */
        convert_stem(in, stem, sizeof(stem));
        r = convert_layout(&plan, stem, j.report->has_license ? j.report->license : NULL, &layout, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "modelgate convert: %s: cannot convert: %s; nothing was written\n", in_esc, err);
                ret = r == -ENOMEM ? 2 : 1;
                goto done;
        }
        if ((r = convert_out_open(out, &o, err, sizeof(err))) < 0) {
                fprintf(stderr, "modelgate convert: %s: %s\n", out_esc, err);
                goto done;
        }
        if ((r = convert_copy_data(in_fd, &plan, &layout, &o, err, sizeof(err))) < 0) {
                fprintf(stderr, "modelgate convert: %s: %s; nothing was written\n", out_esc, err);
                goto done;
        }
        if (hashing) {
                r = convert_wait_report(&hw, hw.deadline_ms);
                if (r < 0 || hw.rx.error < 0 || !hash_report->has_sha256) {
                        fprintf(stderr, "modelgate convert: %s: cannot hash: %s; nothing was written\n", in_esc,
                                r < 0 ? worker_trouble(r) : strerror(hw.rx.error < 0 ? -hw.rx.error : EIO));
                        goto done;
                }
                memcpy(sha, hash_report->sha256, sizeof(sha));
        } else if (j.report->has_sha256)
                memcpy(sha, j.report->sha256, sizeof(sha));
        else {
                fprintf(stderr, "modelgate convert: %s: the scan returned no hash; nothing was written\n", in_esc);
                goto done;
        }
        convert_set_sha256(&layout, sha);
        /* The bytes copied must be the bytes scanned, planned and hashed. */
        if (fstat(in_fd, &st2) < 0 || !same_file_state(&in_st, &st2)) {
                fprintf(stderr, "modelgate convert: %s changed while it was converted; nothing was written\n", in_esc);
                goto done;
        }
        if ((r = convert_out_commit(&o, &layout, out, force, err, sizeof(err))) < 0) {
                fprintf(stderr, "modelgate convert: %s: %s; nothing was written\n", out_esc, err);
                goto done;
        }
        convert_print_summary(out_esc, in_esc, &plan, &layout);
        ret = 0;
done:
        convert_out_abort(&o);
        convert_layout_free(&layout);
        plan_free(&plan);
        for (struct worker *x = &w; x; x = x == &w ? &hw : NULL)
                if (x->pid > 0) {
                        if (x->busy)
                                worker_stop(x);
                        else
                                worker_finish(x);
                }
        if (in_fd >= 0)
                close(in_fd);
        free(j.report);
        free(hash_report);
        free(s);
        policy_free(policy);
        manifest_set_free(manifests);
        return ret;
}

int main(int argc, char **argv) {
        if (argc >= 2 && strcmp(argv[1], "worker") == 0)
                return worker_main();
        /* A worker that dies must not kill us through a write to its socket. */
        signal(SIGPIPE, SIG_IGN);
        if (argc >= 2 && strcmp(argv[1], "scan") == 0)
                return cmd_scan(argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "report") == 0)
                return cmd_report(argc - 1, argv + 1, usage);
        if (argc >= 2 && strcmp(argv[1], "manifest") == 0)
                return cmd_manifest(argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "convert") == 0)
                return cmd_convert(argc - 1, argv + 1);
        if (argc >= 2 && strcmp(argv[1], "attest") == 0)
                return attest_cmd_main(argc - 1, argv + 1);
        if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) {
                printf("modelgate %s\n", PACKAGE_VERSION);
                return 0;
        }
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)) {
                usage(stdout);
                return 0;
        }
        if (argc >= 2)
                fprintf(stderr, "modelgate: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
}
