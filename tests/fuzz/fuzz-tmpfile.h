/* fuzz-tmpfile.h — policy_load() and manifest_set_add() take a path: each input is
 * written to one file in a private temporary directory (under /dev/shm when there
 * is one), removed again at exit. */
#ifndef MODELGATE_FUZZ_TMPFILE_H
#define MODELGATE_FUZZ_TMPFILE_H

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char fuzz_tmpdir[PATH_MAX];
static char fuzz_tmpfile[PATH_MAX];

static void fuzz_tmp_cleanup(void) {
        unlink(fuzz_tmpfile);
        rmdir(fuzz_tmpdir);
}

/* Creates <tmp>/modelgate-fuzz.XXXXXX/<name> on first use; returns its path. */
static inline const char *fuzz_tmp_write(const char *name, const uint8_t *data, size_t size) {
        if (!fuzz_tmpdir[0]) {
                const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
                snprintf(fuzz_tmpdir, sizeof(fuzz_tmpdir), "%s/modelgate-fuzz.XXXXXX", base);
                if (!mkdtemp(fuzz_tmpdir)) {
                        perror("mkdtemp");
                        abort();
                }
                snprintf(fuzz_tmpfile, sizeof(fuzz_tmpfile), "%s/%s", fuzz_tmpdir, name);
                atexit(fuzz_tmp_cleanup);
        }
        int fd = open(fuzz_tmpfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                perror(fuzz_tmpfile);
                abort();
        }
        for (size_t off = 0; off < size;) {
                ssize_t n = write(fd, data + off, size - off);
                if (n <= 0) {
                        perror("write");
                        abort();
                }
                off += (size_t) n;
        }
        close(fd);
        return fuzz_tmpfile;
}

#endif
