/* test-store.c — the verdict store: what is written is read back, a record made
 * under another policy is never used, and no torn, cut, flipped or appended byte
 * ever turns into a verdict. Also `test-store generate DIR N POLICY_SHA256`: a
 * store of N made-up entries, and `test-store load DIR POLICY_SHA256`: the time to
 * load one, for the agent benchmark. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "verdict-store.h"

static const uint8_t POLICY_A[32] = { 0xaa, 1, 2, 3 };
static const uint8_t POLICY_B[32] = { 0xbb, 1, 2, 3 };

static char parent[128];

/* Every directory of every case lives in one parent, made before the cases
 * fork and removed after them. */
static char *tmpdir(void) {
        char t[160];
        snprintf(t, sizeof(t), "%s/XXXXXX", parent);
        TAP_CHECK(mkdtemp(t));
        return strdup(t);
}

static struct store_key key_n(unsigned n) {
        struct store_key k = { .dev = 42, .ino = 1000 + n, .size = 25 + n, .ctime_sec = 1700000000 + n,
                               .ctime_nsec = 123456789 };
        return k;
}

static struct store_verdict verdict_n(unsigned n) {
        struct store_verdict v = { .deny = n % 2, .has_rule = n % 2, .rule = n % 2, .severity = n % 2 ? 4 : 0,
                                   .has_sha256 = 1 };
        memset(v.sha256, (int) (0x10 + n), sizeof(v.sha256));
        return v;
}

static struct verdict_store *open_ok(const char *dir, const uint8_t *policy, struct store_load_info *info) {
        struct verdict_store *s = NULL;
        int r = verdict_store_open(dir, policy, 0, &s, info);
        if (r < 0)
                fprintf(stderr, "# verdict_store_open: %s\n", strerror(-r));
        TAP_CHECK(r == 0 && s);
        return s;
}

static void write_n(const char *dir, const uint8_t *policy, unsigned n) {
        struct store_load_info info;
        struct verdict_store *s = open_ok(dir, policy, &info);
        for (unsigned i = 0; i < n; i++) {
                struct store_key k = key_n(i);
                struct store_verdict v = verdict_n(i);
                TAP_CHECK(verdict_store_put(s, &k, &v) == 0);
        }
        verdict_store_close(s);
}

/* Exactly the first `n` entries are there, each with the verdict written. */
static void check_first(struct verdict_store *s, unsigned n, unsigned total) {
        for (unsigned i = 0; i < total; i++) {
                struct store_key k = key_n(i);
                struct store_verdict want = verdict_n(i), got;
                bool hit = verdict_store_get(s, &k, &got);
                TAP_CHECK(hit == (i < n));
                if (hit)
                        TAP_CHECK(memcmp(&got, &want, sizeof(got)) == 0);
        }
}

static off_t file_size(const char *dir) {
        char p[256];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", dir, STORE_FILE_NAME);
        TAP_CHECK(stat(p, &st) == 0);
        return st.st_size;
}

static void copy_store(const char *from, const char *to, off_t len, const void *append, size_t append_len) {
        char a[256], b[256], *buf = malloc((size_t) len + append_len + 1);
        snprintf(a, sizeof(a), "%s/%s", from, STORE_FILE_NAME);
        snprintf(b, sizeof(b), "%s/%s", to, STORE_FILE_NAME);
        int in = open(a, O_RDONLY), out = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        TAP_CHECK(in >= 0 && out >= 0 && buf);
        TAP_CHECK(pread(in, buf, (size_t) len, 0) == len);
        if (append_len)
                memcpy(buf + len, append, append_len);
        TAP_CHECK(write(out, buf, (size_t) len + append_len) == (ssize_t) (len + (off_t) append_len));
        close(in);
        close(out);
        free(buf);
}

static void test_written_verdicts_are_read_back_after_a_restart(void) {
        char *d = tmpdir();
        struct store_load_info info;
        struct stat st;
        char p[256];
        write_n(d, POLICY_A, 5);
        struct verdict_store *s = open_ok(d, POLICY_A, &info);
        TAP_CHECK(info.loaded == 5 && info.records == 5 && info.corrupt == 0 && info.torn_bytes == 0);
        check_first(s, 5, 6);
        struct store_verdict v = verdict_n(3), got;
        TAP_CHECK(verdict_store_get_content(s, v.sha256, &got) && got.deny == v.deny);
        verdict_store_close(s);
        snprintf(p, sizeof(p), "%s/%s", d, STORE_FILE_NAME);
        TAP_CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0600);
        TAP_CHECK(file_size(d) == 6 * STORE_RECORD_SIZE);
}

static void test_other_policy_records_are_ignored_and_kept(void) {
        char *d = tmpdir();
        struct store_load_info info;
        write_n(d, POLICY_A, 4);
        struct verdict_store *s = open_ok(d, POLICY_B, &info);
        TAP_CHECK(info.loaded == 0 && info.other_policy == 4);
        check_first(s, 0, 4);
        struct store_key k = key_n(0);
        struct store_verdict v = verdict_n(1);   /* the other verdict, under B */
        TAP_CHECK(verdict_store_put(s, &k, &v) == 0);
        verdict_store_close(s);
        s = open_ok(d, POLICY_A, &info);         /* A restored: its entries still hit */
        TAP_CHECK(info.loaded == 4 && info.other_policy == 1);
        check_first(s, 4, 4);
        /* and a reload's index for B, built from the same file, has B's only */
        struct store_index *x = NULL;
        TAP_CHECK(verdict_store_load_index(s, POLICY_B, &x, &info) == 0 && info.loaded == 1);
        verdict_store_use_index(s, POLICY_B, x);
        struct store_verdict got;
        TAP_CHECK(verdict_store_get(s, &k, &got) && got.deny == 1);
        k = key_n(2);
        TAP_CHECK(!verdict_store_get(s, &k, &got));
        verdict_store_close(s);
}

static void test_torn_last_record_at_every_offset_is_ignored(void) {
        char *d = tmpdir();
        write_n(d, POLICY_A, 3);
        off_t full = file_size(d);
        for (off_t cut = 0; cut < STORE_RECORD_SIZE; cut++) {
                char *t = tmpdir();
                struct store_load_info info;
                copy_store(d, t, full - STORE_RECORD_SIZE + cut, NULL, 0);
                struct verdict_store *s = open_ok(t, POLICY_A, &info);
                TAP_CHECK(info.loaded == 2 && info.corrupt == 0 && info.torn_bytes == (unsigned long) cut);
                check_first(s, 2, 3);
                /* The tail was cut: the next record lands aligned and reads back. */
                TAP_CHECK(file_size(t) == full - STORE_RECORD_SIZE);
                struct store_key k = key_n(7);
                struct store_verdict v = verdict_n(7), got;
                TAP_CHECK(verdict_store_put(s, &k, &v) == 0);
                verdict_store_close(s);
                s = open_ok(t, POLICY_A, &info);
                TAP_CHECK(info.loaded == 3 && info.corrupt == 0 && info.torn_bytes == 0);
                TAP_CHECK(verdict_store_get(s, &k, &got) && memcmp(&got, &v, sizeof(v)) == 0);
                verdict_store_close(s);
                free(t);
        }
}

static void test_any_flipped_byte_drops_that_record_only(void) {
        char *d = tmpdir();
        write_n(d, POLICY_A, 3);
        off_t full = file_size(d);
        char src[256];
        snprintf(src, sizeof(src), "%s/%s", d, STORE_FILE_NAME);
        for (int i = 0; i < STORE_RECORD_SIZE; i++) {
                char *t = tmpdir(), p[256];
                struct store_load_info info;
                copy_store(d, t, full, NULL, 0);
                snprintf(p, sizeof(p), "%s/%s", t, STORE_FILE_NAME);
                int fd = open(p, O_RDWR);
                uint8_t b;
                off_t at = 2 * STORE_RECORD_SIZE + i;   /* the second record (index 1) */
                TAP_CHECK(fd >= 0 && pread(fd, &b, 1, at) == 1);
                b ^= 0x01;
                TAP_CHECK(pwrite(fd, &b, 1, at) == 1);
                close(fd);
                struct verdict_store *s = open_ok(t, POLICY_A, &info);
                TAP_CHECK(info.corrupt == 1 && info.loaded == 2);
                struct store_verdict got, v0 = verdict_n(0), v2 = verdict_n(2);
                struct store_key k0 = key_n(0), k1 = key_n(1), k2 = key_n(2);
                TAP_CHECK(!verdict_store_get(s, &k1, &got));
                TAP_CHECK(verdict_store_get(s, &k0, &got) && memcmp(&got, &v0, sizeof(got)) == 0);
                TAP_CHECK(verdict_store_get(s, &k2, &got) && memcmp(&got, &v2, sizeof(got)) == 0);
                verdict_store_close(s);
                free(t);
        }
}

static void test_garbage_appended_yields_no_entry(void) {
        char *d = tmpdir();
        write_n(d, POLICY_A, 3);
        off_t full = file_size(d);
        uint8_t junk[3 * STORE_RECORD_SIZE + 17];
        srandom(7);
        for (size_t len = 1; len <= sizeof(junk); len += 13) {
                char *t = tmpdir();
                struct store_load_info info;
                for (size_t i = 0; i < sizeof(junk); i++)
                        junk[i] = (uint8_t) random();
                copy_store(d, t, full, junk, len);
                struct verdict_store *s = open_ok(t, POLICY_A, &info);
                TAP_CHECK(info.loaded == 3 && info.corrupt == len / STORE_RECORD_SIZE &&
                          info.torn_bytes == len % STORE_RECORD_SIZE);
                check_first(s, 3, 3);
                TAP_CHECK(verdict_store_count(s) == 3);
                verdict_store_close(s);
                free(t);
        }
}

static void test_a_file_that_is_not_a_store_is_moved_aside(void) {
        char *d = tmpdir(), p[256];
        struct store_load_info info;
        snprintf(p, sizeof(p), "%s/%s", d, STORE_FILE_NAME);
        FILE *f = fopen(p, "w");
        TAP_CHECK(f);
        for (int i = 0; i < 300; i++)
                fputs("not a verdict store ", f);
        fclose(f);
        struct verdict_store *s = open_ok(d, POLICY_A, &info);
        TAP_CHECK(info.aside[0] && access(info.aside, F_OK) == 0 && info.loaded == 0);
        TAP_CHECK(file_size(d) == STORE_RECORD_SIZE);
        verdict_store_close(s);
}

static void test_later_record_of_a_key_wins(void) {
        char *d = tmpdir();
        struct store_load_info info;
        struct verdict_store *s = open_ok(d, POLICY_A, &info);
        struct store_key k = key_n(0);
        struct store_verdict a = verdict_n(0), b = verdict_n(1), got;
        TAP_CHECK(verdict_store_put(s, &k, &a) == 0 && verdict_store_put(s, &k, &b) == 0);
        TAP_CHECK(verdict_store_put(s, &k, &b) == 0);   /* the same again: not appended */
        verdict_store_close(s);
        TAP_CHECK(file_size(d) == 3 * STORE_RECORD_SIZE);
        s = open_ok(d, POLICY_A, &info);
        TAP_CHECK(info.loaded == 1 && info.superseded == 1);
        TAP_CHECK(verdict_store_get(s, &k, &got) && memcmp(&got, &b, sizeof(b)) == 0);
        verdict_store_close(s);
}

/* modelgate scan --store's format byte: read back; a record without it (the
 * agent's) is completed by a later put of the same verdict with a format. */
static void test_format_is_kept_and_completes_an_earlier_record(void) {
        char *d = tmpdir();
        struct store_load_info info;
        struct verdict_store *s = open_ok(d, POLICY_A, &info);
        struct store_key k0 = key_n(0), k1 = key_n(1);
        struct store_verdict a = verdict_n(0), b = verdict_n(1), got;
        TAP_CHECK(verdict_store_put(s, &k0, &a) == 0);
        a.has_format = 1;
        a.format = 19;
        b.has_format = 1;
        b.format = 3;
        TAP_CHECK(verdict_store_put(s, &k0, &a) == 0 && verdict_store_put(s, &k1, &b) == 0);
        verdict_store_close(s);
        TAP_CHECK(file_size(d) == 4 * STORE_RECORD_SIZE);
        s = open_ok(d, POLICY_A, &info);
        TAP_CHECK(info.loaded == 2 && info.corrupt == 0);
        TAP_CHECK(verdict_store_get(s, &k0, &got) && got.has_format && got.format == 19);
        TAP_CHECK(verdict_store_get(s, &k1, &got) && memcmp(&got, &b, sizeof(b)) == 0);
        verdict_store_close(s);
}

static void test_mostly_dead_store_is_compacted_to_current_policy(void) {
        char *d = tmpdir();
        struct store_load_info info;
        write_n(d, POLICY_A, 10);
        write_n(d, POLICY_B, 2000);   /* A's 10 are too few to compact for */
        struct verdict_store *s = open_ok(d, POLICY_A, &info);
        TAP_CHECK(info.compacted && info.loaded == 10);
        check_first(s, 10, 11);
        TAP_CHECK(file_size(d) == 11 * STORE_RECORD_SIZE);
        struct store_key k = key_n(50);
        struct store_verdict v = verdict_n(50);
        TAP_CHECK(verdict_store_put(s, &k, &v) == 0);   /* appends go to the new file */
        verdict_store_close(s);
        s = open_ok(d, POLICY_A, &info);
        TAP_CHECK(!info.compacted && info.loaded == 11 && info.other_policy == 0);
        verdict_store_close(s);
        s = open_ok(d, POLICY_B, &info);
        TAP_CHECK(info.loaded == 0);   /* dropped by the compaction */
        verdict_store_close(s);
}

static void test_cap_bounds_entries(void) {
        char *d = tmpdir();
        struct store_load_info info;
        struct verdict_store *s = NULL;
        TAP_CHECK(verdict_store_open(d, POLICY_A, 2, &s, &info) == 0);
        for (unsigned i = 0; i < 3; i++) {
                struct store_key k = key_n(i);
                struct store_verdict v = verdict_n(i);
                TAP_CHECK(verdict_store_put(s, &k, &v) == (i < 2 ? 0 : -ENOSPC));
        }
        TAP_CHECK(verdict_store_count(s) == 2);
        verdict_store_close(s);
}

static void test_second_opener_is_refused(void) {
        char *d = tmpdir();
        struct store_load_info info;
        struct verdict_store *s = open_ok(d, POLICY_A, &info), *s2 = NULL;
        TAP_CHECK(verdict_store_open(d, POLICY_A, 0, &s2, &info) == -EBUSY && !s2);
        verdict_store_close(s);
}

static void test_a_store_others_can_write_is_refused(void) {
        char *d = tmpdir();
        struct store_load_info info;
        struct verdict_store *s = NULL;
        TAP_CHECK(chmod(d, 0777) == 0);
        TAP_CHECK(verdict_store_open(d, POLICY_A, 0, &s, &info) == -EPERM && !s);
        TAP_CHECK(chmod(d, 0700) == 0);
        s = open_ok(d, POLICY_A, &info);
        verdict_store_close(s);
}

static int generate(const char *dir, const char *count, const char *policy_hex) {
        uint8_t policy[32];
        struct store_load_info info;
        struct verdict_store *s = NULL;
        unsigned long n = strtoul(count, NULL, 10);
        if (!sha256_from_hex(policy_hex, policy) || verdict_store_open(dir, policy, 0, &s, &info) < 0) {
                fprintf(stderr, "test-store generate: bad policy hash or cannot open %s\n", dir);
                return 2;
        }
        for (unsigned long i = 0; i < n; i++) {
                /* Made-up inodes on a made-up device: never an existing file. */
                struct store_key k = { .dev = 0xfffffff0, .ino = i + 1, .size = 4096 + i, .ctime_sec = 1600000000,
                                       .ctime_nsec = (int64_t) (i % 1000000000) };
                struct store_verdict v = { .deny = i % 7 == 0, .has_sha256 = 1 };
                for (int b = 0; b < 32; b++)
                        v.sha256[b] = (uint8_t) ((i * 2654435761u) >> (b % 4 * 8)) ^ (uint8_t) b;
                if (verdict_store_put(s, &k, &v) < 0) {
                        fprintf(stderr, "test-store generate: write failed at %lu\n", i);
                        return 2;
                }
        }
        verdict_store_close(s);
        return 0;
}

/* `test-store load DIR POLICY`: opens the store as the agent does at its start and
 * prints what it loaded and the CPU and wall time it took (for the benchmark). */
static int load(const char *dir, const char *policy_hex) {
        uint8_t policy[32];
        struct store_load_info info;
        struct verdict_store *s = NULL;
        struct timespec c0, c1, w0, w1;
        if (!sha256_from_hex(policy_hex, policy))
                return 2;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        clock_gettime(CLOCK_MONOTONIC, &w0);
        int r = verdict_store_open(dir, policy, 0, &s, &info);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        clock_gettime(CLOCK_MONOTONIC, &w1);
        if (r < 0) {
                fprintf(stderr, "test-store load: %s\n", strerror(-r));
                return 2;
        }
        printf("%lu %.3f %.3f\n", info.loaded, (c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) / 1e6,
               (w1.tv_sec - w0.tv_sec) * 1e3 + (w1.tv_nsec - w0.tv_nsec) / 1e6);
        verdict_store_close(s);
        return 0;
}

int main(int argc, char **argv) {
        static const struct tap_case cases[] = {
                { "written verdicts are read back after a restart", test_written_verdicts_are_read_back_after_a_restart },
                { "records of another policy are ignored, and still there when it returns",
                  test_other_policy_records_are_ignored_and_kept },
                { "a last record cut at every byte offset is ignored, the tail cut, appends stay aligned",
                  test_torn_last_record_at_every_offset_is_ignored },
                { "a flipped bit at every offset of a record drops that record only",
                  test_any_flipped_byte_drops_that_record_only },
                { "random garbage appended yields no entry", test_garbage_appended_yields_no_entry },
                { "a file that is not a store is renamed aside, a new one started",
                  test_a_file_that_is_not_a_store_is_moved_aside },
                { "the later record of a key wins; the same verdict is not appended twice",
                  test_later_record_of_a_key_wins },
                { "the format byte is kept, and completes a record written without one",
                  test_format_is_kept_and_completes_an_earlier_record },
                { "a mostly dead store is compacted to the current policy's entries",
                  test_mostly_dead_store_is_compacted_to_current_policy },
                { "the entry cap bounds the store", test_cap_bounds_entries },
                { "a second opener of the same store is refused (EBUSY)", test_second_opener_is_refused },
                { "a store directory others can write is refused (EPERM)", test_a_store_others_can_write_is_refused },
        };
        const char *base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
        char cmd[200];
        int r;

        if (argc == 5 && strcmp(argv[1], "generate") == 0)
                return generate(argv[2], argv[3], argv[4]);
        if (argc == 4 && strcmp(argv[1], "load") == 0)
                return load(argv[2], argv[3]);
        snprintf(parent, sizeof(parent), "%s/mg-store-XXXXXX", base);
        if (!mkdtemp(parent)) {
                perror("mkdtemp");
                return 99;
        }
        r = tap_run(cases, sizeof(cases) / sizeof(cases[0]));
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", parent);
        if (system(cmd) != 0)
                fprintf(stderr, "# could not remove %s\n", parent);
        return r;
}
