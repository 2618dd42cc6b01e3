/* fuzz.h — what every libFuzzer target shares: one scan context over a static
 * report, and the check that a report the scanner produced would be accepted by
 * the front end's receiver (worker-proto.h), i.e. that no parser ever writes an
 * out-of-range enum, an unterminated or non-UTF-8 string into a report. */
#ifndef MODELGATE_FUZZ_H
#define MODELGATE_FUZZ_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "scan.h"
#include "worker-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ~400 KB: static, reset per input (report_init clears only the counters). */
static struct scan_report fuzz_report;
static struct scan_report fuzz_rx_report;

static inline struct scan_ctx fuzz_ctx(void) {
        report_init(&fuzz_report);
        return (struct scan_ctx) { .report = &fuzz_report };
}

static inline void fuzz_die(const char *what, unsigned i) {
        fprintf(stderr, "fuzz: the receiver rejects the scanner's own report: %s %u\n", what, i);
        abort();
}

/* The messages wp_send_report() would send for r (built in memory, as it builds
 * them), fed through wp_receiver_feed(). A rejection means a real worker's report
 * would be treated as a protocol violation: abort, so libFuzzer keeps the input. */
static inline void fuzz_check_report(const struct scan_report *r) {
        struct wp_receiver rx;
        struct wp_msg m;

        wp_receiver_start(&rx, 42, &fuzz_rx_report);
        for (uint32_t i = 0; i < r->n_globals; i++) {
                memset(&m, 0, sizeof(m));
                m.magic = WORKER_MAGIC;
                m.type = WP_GLOBAL;
                m.job = 42;
                m.u.global = r->globals[i];
                if (wp_receiver_feed(&rx, &m, sizeof(m)) != 0) {
                        fprintf(stderr, "global %s:%s member %s\n", r->globals[i].module, r->globals[i].qualname,
                                r->globals[i].member);
                        fuzz_die("global", i);
                }
        }
        for (uint32_t i = 0; i < r->n_findings; i++) {
                memset(&m, 0, sizeof(m));
                m.magic = WORKER_MAGIC;
                m.type = WP_FINDING;
                m.job = 42;
                m.u.finding = r->findings[i];
                if (wp_receiver_feed(&rx, &m, sizeof(m)) != 0) {
                        fprintf(stderr, "finding rule %u member \"%s\" global \"%s\" message \"%s\"\n",
                                r->findings[i].rule, r->findings[i].member, r->findings[i].global,
                                r->findings[i].message);
                        fuzz_die("finding", i);
                }
        }
        memset(&m, 0, sizeof(m));
        m.magic = WORKER_MAGIC;
        m.type = WP_DONE;
        m.job = 42;
        m.u.done.format = r->format;
        m.u.done.size = r->size;
        m.u.done.n_globals = r->n_globals;
        m.u.done.n_findings = r->n_findings;
        m.u.done.globals_dropped = r->globals_dropped;
        m.u.done.findings_dropped = r->findings_dropped;
        m.u.done.has_license = r->has_license;
        m.u.done.has_sha256 = r->has_sha256;
        m.u.done.has_git_sha1 = r->has_git_sha1;
        memcpy(m.u.done.license, r->license, sizeof(m.u.done.license));
        memcpy(m.u.done.sha256, r->sha256, sizeof(m.u.done.sha256));
        memcpy(m.u.done.git_sha1, r->git_sha1, sizeof(m.u.done.git_sha1));
        if (wp_receiver_feed(&rx, &m, sizeof(m)) != 1) {
                fprintf(stderr, "done: format %u license \"%.*s\"\n", r->format, (int) sizeof(r->license), r->license);
                fuzz_die("done", 0);
        }
}

#endif
