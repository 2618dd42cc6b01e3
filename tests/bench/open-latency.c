/* open-latency.c — the opener side of tests/bench/agent-bench.sh: T threads open()
 * and close() a set of files round-robin and report what each open cost. Only the
 * open(O_RDONLY|O_CLOEXEC) is timed; nothing is read. Prints one key=value line. */
#ifndef _GNU_SOURCE            /* config.h defines it in the automake build */
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Latencies kept per thread (8 MB); past this, every k-th open is kept instead. */
#define SAMPLE_MAX (1UL << 20)
/* More threads than this measure the scheduler, not the open. */
#define THREADS_MAX 256

struct opener {
        pthread_t thread;
        unsigned index;
        uint64_t *sample_ns;
        size_t nsample;
        uint64_t total_ns, max_ns;
        unsigned long denied, failed;
        int first_errno;
};

static char **files;
static size_t nfiles;
static unsigned nthreads = 1;
static unsigned long opens_per_thread = 10000;
static pthread_barrier_t start_line;

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* Thread i starts at file i*N/T: with opens_per_thread = N/T every file is opened
 * exactly once in all (first sight); with more, threads stay on different files. */
static void *opener_run(void *arg) {
        struct opener *o = arg;
        unsigned long stride = opens_per_thread / SAMPLE_MAX + 1;
        size_t next = (size_t) o->index * nfiles / nthreads;

        pthread_barrier_wait(&start_line);
        for (unsigned long i = 0; i < opens_per_thread; i++) {
                uint64_t t0 = now_ns();
                int fd = open(files[next], O_RDONLY | O_CLOEXEC);
                uint64_t dt = now_ns() - t0;

                if (fd >= 0) {
                        close(fd);
                } else {
                        if (o->first_errno == 0)
                                o->first_errno = errno;
                        if (errno == EPERM || errno == EACCES)
                                o->denied++;
                        else
                                o->failed++;
                }
                o->total_ns += dt;
                if (dt > o->max_ns)
                        o->max_ns = dt;
                if (i % stride == 0)
                        o->sample_ns[o->nsample++] = dt;
                if (++next == nfiles)
                        next = 0;
        }
        return NULL;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int add_file(const char *path) {
        char **grown = realloc(files, (nfiles + 1) * sizeof *files);

        if (!grown)
                return -ENOMEM;
        files = grown;
        files[nfiles] = strdup(path);
        if (!files[nfiles])
                return -ENOMEM;
        nfiles++;
        return 0;
}

/* The regular files directly in dir, sorted so every run opens the same sequence. */
static int add_dir(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t first = nfiles;
        int r = 0;

        if (!d)
                return -errno;
        while (r == 0 && (de = readdir(d))) {
                char path[PATH_MAX];
                struct stat st;

                if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int) sizeof path) {
                        r = -ENAMETOOLONG;
                        break;
                }
                if (de->d_type == DT_REG || (de->d_type == DT_UNKNOWN && stat(path, &st) == 0 && S_ISREG(st.st_mode)))
                        r = add_file(path);
        }
        closedir(d);
        qsort(files + first, nfiles - first, sizeof *files, cmp_str);
        return r;
}

static int parse_count(const char *s, unsigned long max, unsigned long *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v == 0 || v > max || s[0] == '-')
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Only main reports: each failure is one line on stderr and exit status 1. */
static int fail(const char *what, int err) {
        fprintf(stderr, "open-latency: %s: %s\n", what, strerror(err));
        return 1;
}

int main(int argc, char **argv) {
        unsigned long v;
        struct stat st;
        int opt, r;

        while ((opt = getopt(argc, argv, "t:n:")) != -1) {
                if (opt == 't' && parse_count(optarg, THREADS_MAX, &v) == 0)
                        nthreads = (unsigned) v;
                else if (opt == 'n' && parse_count(optarg, ULONG_MAX / THREADS_MAX, &v) == 0)
                        opens_per_thread = v;
                else
                        goto usage;
        }
        if (optind >= argc)
                goto usage;
        if (optind == argc - 1 && stat(argv[optind], &st) == 0 && S_ISDIR(st.st_mode))
                r = add_dir(argv[optind]);
        else
                for (r = 0; r == 0 && optind < argc; optind++)
                        r = add_file(argv[optind]);
        if (r < 0)
                return fail("listing files", -r);
        if (nfiles == 0)
                return fail("listing files", ENOENT);

        struct opener *op = calloc(nthreads, sizeof *op);
        size_t per_thread = opens_per_thread < SAMPLE_MAX ? opens_per_thread : SAMPLE_MAX;
        if (!op)
                return fail("calloc", ENOMEM);
        if ((r = pthread_barrier_init(&start_line, NULL, nthreads + 1)) != 0)
                return fail("pthread_barrier_init", r);
        for (unsigned i = 0; i < nthreads; i++) {
                op[i].index = i;
                op[i].sample_ns = malloc(per_thread * sizeof *op[i].sample_ns);
                if (!op[i].sample_ns)
                        return fail("malloc", ENOMEM);
                if ((r = pthread_create(&op[i].thread, NULL, opener_run, &op[i])) != 0)
                        return fail("pthread_create", r);
        }
        pthread_barrier_wait(&start_line);
        uint64_t t0 = now_ns();
        for (unsigned i = 0; i < nthreads; i++)
                pthread_join(op[i].thread, NULL);
        double elapsed = (double) (now_ns() - t0) / 1e9;

        uint64_t total_ns = 0, max_ns = 0;
        unsigned long denied = 0, failed = 0;
        size_t nsample = 0;
        int first_errno = 0;
        for (unsigned i = 0; i < nthreads; i++) {
                total_ns += op[i].total_ns;
                max_ns = op[i].max_ns > max_ns ? op[i].max_ns : max_ns;
                denied += op[i].denied;
                failed += op[i].failed;
                nsample += op[i].nsample;
                if (!first_errno)
                        first_errno = op[i].first_errno;
        }
        uint64_t *all = malloc(nsample * sizeof *all);
        if (!all)
                return fail("malloc", ENOMEM);
        for (size_t i = 0, k = 0; i < nthreads; k += op[i].nsample, i++)
                memcpy(all + k, op[i].sample_ns, op[i].nsample * sizeof *all);
        qsort(all, nsample, sizeof *all, cmp_u64);

        double opens = (double) nthreads * (double) opens_per_thread;
        printf("opens=%.0f threads=%u files=%zu elapsed_s=%.6f opens_per_s=%.0f mean_us=%.2f "
               "p50_us=%.2f p99_us=%.2f max_us=%.2f denied=%lu failed=%lu\n",
               opens, nthreads, nfiles, elapsed, opens / elapsed, (double) total_ns / opens / 1e3,
               (double) all[(nsample - 1) * 50 / 100] / 1e3, (double) all[(nsample - 1) * 99 / 100] / 1e3,
               (double) max_ns / 1e3, denied, failed);
        if (first_errno)
                fail("first failed open", first_errno);
        for (unsigned i = 0; i < nthreads; i++)
                free(op[i].sample_ns);
        free(op);
        free(all);
        for (size_t i = 0; i < nfiles; i++)
                free(files[i]);
        free(files);
        return failed ? 1 : 0;

usage:
        fprintf(stderr, "usage: %s [-t THREADS] [-n OPENS_PER_THREAD] DIR | FILE...\n"
                "  THREADS threads (default 1) each open() and close() N files (default 10000),\n"
                "  round-robin over the regular files of DIR or the FILEs given\n", argv[0]);
        return 2;
}
