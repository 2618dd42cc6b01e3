/* seed-worker-proto.c — writes seed inputs for fuzz-worker-proto: real reports
 * (made by scanning each file given, or built by hand) framed as that target reads
 * them (one control byte, then the message body). Not a fuzz target.
 *
 *     seed-worker-proto OUTDIR [FILE...]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"
#include "scan.h"
#include "worker-proto.h"

static struct scan_report report;

static void put(FILE *f, uint8_t control, const void *body) {
        fputc(control, f);
        fwrite(body, sizeof(((struct wp_msg *) 0)->u), 1, f);
}

static int write_seed(const char *dir, unsigned n, const struct scan_report *r) {
        char path[4096];
        struct wp_msg m;
        FILE *f;

        snprintf(path, sizeof(path), "%s/report-%03u", dir, n);
        f = fopen(path, "wb");
        if (!f)
                return -1;
        for (uint32_t i = 0; i < r->n_globals; i++) {
                memset(&m, 0, sizeof(m));
                m.u.global = r->globals[i];
                put(f, WP_GLOBAL, &m.u);
        }
        for (uint32_t i = 0; i < r->n_findings; i++) {
                memset(&m, 0, sizeof(m));
                m.u.finding = r->findings[i];
                put(f, WP_FINDING, &m.u);
        }
        memset(&m, 0, sizeof(m));
        m.u.done.format = r->format;
        m.u.done.size = r->size;
        m.u.done.n_globals = r->n_globals;
        m.u.done.n_findings = r->n_findings;
        m.u.done.has_license = r->has_license;
        memcpy(m.u.done.license, r->license, sizeof(m.u.done.license));
        put(f, WP_DONE, &m.u);
        return fclose(f);
}

int main(int argc, char **argv) {
        unsigned n = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s OUTDIR [FILE...]\n", argv[0]);
                return 2;
        }
        /* A hand-made report: every kind of message, a license, unicode names. */
        report_init(&report);
        report_add_global(&report, (const uint8_t *) "os", 2, (const uint8_t *) "system", 6, VIA_STACK_GLOBAL, "archive/data.pkl");
        report_add_global(&report, (const uint8_t *) "caf\xc3\xa9", 5, (const uint8_t *) "a.b", 3, VIA_GLOBAL, NULL);
        report_add_finding(&report, RULE_MALFORMED, SEV_HIGH, VIA_NONE, "m", NULL, "header too large: %d", 8);
        report.has_license = true;
        snprintf(report.license, sizeof(report.license), "cc-by-nc-4.0");
        report.format = FMT_PYTORCH_ZIP;
        if (write_seed(argv[1], n++, &report) < 0)
                return 1;

        for (int i = 2; i < argc; i++) {
                int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                        if (fd >= 0)
                                close(fd);
                        continue;
                }
                report_init(&report);
                if (scan_fd(fd, &report) == 0 && (report.n_globals || report.n_findings) &&
                    write_seed(argv[1], n++, &report) < 0)
                        return 1;
                close(fd);
        }
        return 0;
}
