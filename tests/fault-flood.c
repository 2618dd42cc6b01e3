/* fault-flood.c — the openers of tests/agent-faults.py. Each opener is a process
 * of its own, so one that the kernel keeps waiting can be seen (its open has been
 * in flight too long) and killed: nothing here ever waits for an open without a
 * deadline. Prints key=value lines (flood) or one line per file (open-all).
 *
 *   fault-flood flood DIR SECONDS READERS WRITERS BOUND_MS [malicious-only]
 *     DIR holds clean-N.pkl, evil-N.pkl and mut-N.pkl (made by the caller).
 *     Readers open them at random; writers create new files of both kinds, replace
 *     mut-N.pkl by rename with content of either kind, and rewrite a clean file of
 *     their own in place. An allowed open's content is read through its fd: a
 *     malicious one is a violation. A refusal of a clean file is a false denial.
 *     Malicious content is always MAL_SIZE bytes and clean content never is, so
 *     a refused mut-N.pkl whose inode did not change across the open is judged
 *     by its size; one replaced meanwhile is counted as raced, not judged.
 *
 *   fault-flood open-all BOUND_MS FILE...
 *     One process per file, all at once; prints "started" once all are forked,
 *     then "RESULT LATENCY_MS FILE" per file, RESULT being ok, an errno name, or
 *     hang (not answered within BOUND_MS of the start; the opener is killed). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAL_SIZE 25
#define OPENERS_MAX 64
#define FILES_MAX 4096

static int64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One opener's numbers, in memory shared with the parent. */
struct slot {
        volatile int64_t in_open_since;   /* 0 when not inside open() */
        volatile int done;
        unsigned long opens, allowed, denied, violations, false_denies, raced, errors;
        unsigned long created, replaced, rewritten;
        int64_t max_latency_ns;
        char first_problem[256];
};

struct shared {
        volatile int stop;
        struct slot slot[OPENERS_MAX];
};

static struct shared *S;
static bool malicious_only;   /* readers open only evil-N.pkl: every open is a refusal to log */

/* os.system(<4 chars>): always MAL_SIZE bytes. */
static size_t malicious_content(char *buf, unsigned k) {
        return (size_t) sprintf(buf, "\x80\x02" "cos\nsystem\nX\x04%c%c%ctr%02u\x85R.", 0, 0, 0, k % 100);
}

/* A pickle of one string, never MAL_SIZE bytes. */
static size_t clean_content(char *buf, unsigned k) {
        unsigned n = 10 + k % 30;
        if (8 + n + 1 == MAL_SIZE)
                n++;
        buf[0] = (char) 0x80;
        buf[1] = 2;
        buf[2] = 'X';
        buf[3] = (char) n;
        buf[4] = buf[5] = buf[6] = 0;
        for (unsigned i = 0; i < n; i++)
                buf[7 + i] = (char) ('a' + (k + i) % 26);
        buf[7 + n] = '.';
        return 8 + n;
}

static void problem(struct slot *s, const char *what, const char *path) {
        if (!s->first_problem[0])
                snprintf(s->first_problem, sizeof(s->first_problem), "%.60s: %.180s", what, path);
}

/* One timed open. Returns the fd or -errno. */
static int timed_open(struct slot *s, const char *path, int flags) {
        int64_t t0 = now_ns();
        s->in_open_since = t0;
        int fd = open(path, flags | O_CLOEXEC, 0644);
        int err = errno;
        s->in_open_since = 0;
        int64_t dt = now_ns() - t0;
        if (dt > s->max_latency_ns)
                s->max_latency_ns = dt;
        s->opens++;
        return fd < 0 ? -err : fd;
}

static int write_file(struct slot *s, const char *path, const char *buf, size_t len, int flags) {
        int fd = timed_open(s, path, O_WRONLY | flags);
        if (fd < 0)
                return fd;
        ssize_t n = write(fd, buf, len);
        close(fd);
        return n == (ssize_t) len ? 0 : -EIO;
}

/* Opens path for reading and judges the answer. expect: 1 malicious, 0 clean,
 * -1 unknown (decided by content, or by size when the inode held still). */
static void check_open(struct slot *s, const char *path, int expect) {
        struct stat before, after;
        bool have_before = expect < 0 && stat(path, &before) == 0;
        int fd = timed_open(s, path, O_RDONLY);
        if (fd >= 0) {
                char buf[128];
                ssize_t n = read(fd, buf, sizeof(buf));
                close(fd);
                s->allowed++;
                if (n > 0 && memmem(buf, (size_t) n, "system", 6)) {
                        s->violations++;
                        problem(s, "malicious content was allowed", path);
                }
                return;
        }
        if (fd != -EPERM) {
                s->errors++;
                problem(s, strerror(-fd), path);
                return;
        }
        s->denied++;
        if (expect == 0) {
                s->false_denies++;
                problem(s, "a clean file was refused", path);
        } else if (expect < 0) {
                if (!have_before || stat(path, &after) != 0 || before.st_ino != after.st_ino ||
                    before.st_ctim.tv_sec != after.st_ctim.tv_sec || before.st_ctim.tv_nsec != after.st_ctim.tv_nsec)
                        s->raced++;
                else if (after.st_size != MAL_SIZE) {
                        s->false_denies++;
                        problem(s, "a clean replacement was refused", path);
                }
        }
}

static unsigned rnd(unsigned *state) {
        *state ^= *state << 13;
        *state ^= *state >> 17;
        *state ^= *state << 5;
        return *state;
}

static void reader(struct slot *s, const char *dir, unsigned seed, unsigned n_clean, unsigned n_evil, unsigned n_mut) {
        char path[4096];
        unsigned st = seed * 2654435761u + 1;
        while (!S->stop) {
                unsigned r = rnd(&st), kind = malicious_only ? 1 : r % 3, i;
                if (kind == 0) {
                        i = (r >> 8) % n_clean;
                        snprintf(path, sizeof(path), "%s/clean-%u.pkl", dir, i);
                        check_open(s, path, 0);
                } else if (kind == 1) {
                        i = (r >> 8) % n_evil;
                        snprintf(path, sizeof(path), "%s/evil-%u.pkl", dir, i);
                        check_open(s, path, 1);
                } else {
                        i = (r >> 8) % n_mut;
                        snprintf(path, sizeof(path), "%s/mut-%u.pkl", dir, i);
                        check_open(s, path, -1);
                }
        }
}

static void writer(struct slot *s, const char *dir, unsigned w, unsigned n_mut) {
        char path[4096], tmp[4096], buf[128];
        unsigned st = w * 40503u + 7;
        unsigned k;
        for (k = 0; !S->stop; k++) {
                /* A new file, created empty (nothing to refuse yet), then filled. */
                bool mal = k % 3 == 0;
                size_t len = mal ? malicious_content(buf, k) : clean_content(buf, k);
                snprintf(path, sizeof(path), "%s/new-%d-%u.pkl", dir, (int) getpid(), k);
                int r = write_file(s, path, buf, len, O_CREAT | O_EXCL);
                if (r < 0) {
                        s->errors++;
                        problem(s, strerror(-r), path);
                } else {
                        s->created++;
                        check_open(s, path, mal);
                }
                if (k >= 64) {   /* the directory stays small */
                        snprintf(path, sizeof(path), "%s/new-%d-%u.pkl", dir, (int) getpid(), k - 64);
                        unlink(path);
                }
                if (k % 3 == 1) {
                        /* mut-N.pkl replaced by rename (no open of the old file). */
                        bool m = rnd(&st) % 2;
                        len = m ? malicious_content(buf, k) : clean_content(buf, k);
                        snprintf(tmp, sizeof(tmp), "%s/.tmp-%u", dir, w);
                        snprintf(path, sizeof(path), "%s/mut-%u.pkl", dir, rnd(&st) % n_mut);
                        unlink(tmp);
                        if (write_file(s, tmp, buf, len, O_CREAT | O_EXCL) == 0 && rename(tmp, path) == 0)
                                s->replaced++;
                } else if (k % 3 == 2) {
                        /* A clean file rewritten in place with other clean content. */
                        len = clean_content(buf, k);
                        snprintf(path, sizeof(path), "%s/inplace-%u.pkl", dir, w);
                        r = write_file(s, path, buf, len, O_CREAT | O_TRUNC);
                        if (r == -EPERM) {
                                s->false_denies++;
                                problem(s, "a clean file was refused for writing", path);
                        } else if (r == 0) {
                                s->rewritten++;
                                check_open(s, path, 0);
                        }
                }
        }
        for (unsigned j = k > 64 ? k - 64 : 0; j < k; j++) {   /* what this writer leaves: nothing */
                snprintf(path, sizeof(path), "%s/new-%d-%u.pkl", dir, (int) getpid(), j);
                unlink(path);
        }
}

static unsigned count_files(const char *dir, const char *prefix) {
        char path[4096];
        unsigned n = 0;
        for (; n < FILES_MAX; n++) {
                snprintf(path, sizeof(path), "%s/%s-%u.pkl", dir, prefix, n);
                if (access(path, F_OK) != 0)
                        break;
        }
        return n;
}

static int flood(const char *dir, double seconds, int readers, int writers, int bound_ms) {
        unsigned n_clean = count_files(dir, "clean"), n_evil = count_files(dir, "evil"), n_mut = count_files(dir, "mut");
        int n = readers + writers;
        pid_t pids[OPENERS_MAX];
        if (n < 1 || n > OPENERS_MAX || !n_clean || !n_evil || !n_mut) {
                fprintf(stderr, "fault-flood: need 1..%d openers and clean-0.pkl, evil-0.pkl, mut-0.pkl in %s\n",
                        OPENERS_MAX, dir);
                return 2;
        }
        int64_t t0 = now_ns(), end = t0 + (int64_t) (seconds * 1e9), bound = (int64_t) bound_ms * 1000000;
        for (int i = 0; i < n; i++) {
                pids[i] = fork();
                if (pids[i] < 0) {
                        perror("fork");
                        S->stop = 1;
                        n = i;
                        break;
                }
                if (pids[i] == 0) {
                        if (i < readers)
                                reader(&S->slot[i], dir, (unsigned) i + 1, n_clean, n_evil, n_mut);
                        else
                                writer(&S->slot[i], dir, (unsigned) (i - readers), n_mut);
                        S->slot[i].done = 1;
                        _exit(0);
                }
        }
        /* Watch: an open in flight longer than the bound is a hang. */
        int64_t longest = 0;
        int hung = 0;
        while (now_ns() < end) {
                usleep(20000);
                for (int i = 0; i < n; i++) {
                        int64_t since = S->slot[i].in_open_since;
                        if (since && now_ns() - since > longest)
                                longest = now_ns() - since;
                }
                if (longest > bound)
                        break;
        }
        S->stop = 1;
        int64_t stopped = now_ns();
        double elapsed = (double) (stopped - t0) / 1e9;
        /* Each opener finishes its current open within the bound, or is killed. */
        for (int i = 0; i < n; i++) {
                int status;
                while (waitpid(pids[i], &status, WNOHANG) == 0) {
                        if (now_ns() - stopped > bound) {
                                hung++;
                                kill(pids[i], SIGKILL);
                                waitpid(pids[i], &status, 0);
                                break;
                        }
                        usleep(10000);
                }
        }
        struct slot t = { 0 };
        const char *first = "";
        for (int i = 0; i < n; i++) {
                struct slot *s = &S->slot[i];
                t.opens += s->opens;
                t.allowed += s->allowed;
                t.denied += s->denied;
                t.violations += s->violations;
                t.false_denies += s->false_denies;
                t.raced += s->raced;
                t.errors += s->errors;
                t.created += s->created;
                t.replaced += s->replaced;
                t.rewritten += s->rewritten;
                if (s->max_latency_ns > t.max_latency_ns)
                        t.max_latency_ns = s->max_latency_ns;
                if (!first[0] && s->first_problem[0])
                        first = s->first_problem;
        }
        if (longest > t.max_latency_ns)
                t.max_latency_ns = longest;
        printf("seconds=%.2f\nopens=%lu\nopens_per_s=%.0f\nallowed=%lu\ndenied=%lu\nviolations=%lu\n"
               "false_denies=%lu\nraced=%lu\nerrors=%lu\ncreated=%lu\nreplaced=%lu\nrewritten=%lu\n"
               "max_latency_ms=%.1f\nhung=%d\nfirst_problem=%s\n",
               elapsed, t.opens, (double) t.opens / elapsed, t.allowed, t.denied, t.violations, t.false_denies, t.raced,
               t.errors, t.created, t.replaced, t.rewritten, (double) t.max_latency_ns / 1e6,
               hung + (longest > bound ? 1 : 0), first);
        return 0;
}

static int open_all(int bound_ms, int argc, char **argv) {
        struct result {
                volatile int state;   /* 0 waiting, 1 answered */
                int err;
                int64_t latency_ns;
        } *res = mmap(NULL, sizeof(*res) * (size_t) argc, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        pid_t *pids = calloc((size_t) argc, sizeof(*pids));
        if (res == MAP_FAILED || !pids)
                return 2;
        int64_t t0 = now_ns(), bound = (int64_t) bound_ms * 1000000;
        for (int i = 0; i < argc; i++) {
                pids[i] = fork();
                if (pids[i] == 0) {
                        int64_t t = now_ns();
                        int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
                        res[i].err = fd < 0 ? errno : 0;
                        res[i].latency_ns = now_ns() - t;
                        res[i].state = 1;
                        _exit(0);
                }
        }
        printf("started\n");
        fflush(stdout);
        for (int i = 0; i < argc; i++) {
                if (pids[i] < 0)
                        continue;
                while (waitpid(pids[i], NULL, WNOHANG) == 0) {
                        if (now_ns() - t0 > bound) {
                                kill(pids[i], SIGKILL);
                                waitpid(pids[i], NULL, 0);
                                break;
                        }
                        usleep(5000);
                }
        }
        for (int i = 0; i < argc; i++) {
                const char *r = pids[i] < 0 ? "nofork" : !res[i].state ? "hang" : res[i].err == 0 ? "ok"
                                : res[i].err == EPERM ? "EPERM" : strerrorname_np(res[i].err);
                printf("%s %.1f %s\n", r, res[i].state ? (double) res[i].latency_ns / 1e6 : (double) bound_ms, argv[i]);
        }
        return 0;
}

int main(int argc, char **argv) {
        S = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (S == MAP_FAILED)
                return 2;
        setvbuf(stdout, NULL, _IOLBF, 0);
        malicious_only = argc == 8 && strcmp(argv[7], "malicious-only") == 0;
        if ((argc == 7 || malicious_only) && strcmp(argv[1], "flood") == 0)
                return flood(argv[2], atof(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
        if (argc >= 4 && strcmp(argv[1], "open-all") == 0)
                return open_all(atoi(argv[2]), argc - 3, argv + 3);
        fprintf(stderr, "usage: fault-flood flood DIR SECONDS READERS WRITERS BOUND_MS [malicious-only]\n"
                        "       fault-flood open-all BOUND_MS FILE...\n");
        return 2;
}
