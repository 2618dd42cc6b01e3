/* output.h — the reports `modelgate scan` prints: text, JSON (DESIGN.md), SARIF
 * 2.1.0 and CSV. Each file is written as soon as it is decided, so memory does not
 * grow with the number of files; only counters and capped tables (summary.h)
 * are kept. */
#ifndef MODELGATE_OUTPUT_H
#define MODELGATE_OUTPUT_H

#include <stdio.h>

#include "policy.h"
#include "report.h"
#include "summary.h"

enum output_format {
        OUTPUT_TEXT,
        OUTPUT_JSON,
        OUTPUT_SARIF,
        OUTPUT_CSV,
};

struct output {
        FILE *f;
        enum output_format format;
        const struct policy *policy;
        unsigned long files, allowed, denied;
        unsigned long by_rule[_RULE_MAX];
        unsigned long written;  /* entries written, for JSON/SARIF separators */
        struct summary summary; /* the closing summary; set summary.interrupted before output_end */
};

/* What a report says about the run beside the files: JSON top-level keys and
 * SARIF run properties. NULL members take this build's and the policy's. */
struct output_run {
        const char *version;
        const char *policy_source, *policy_sha256;
        char *const *roots;     /* the PATH arguments, raw; n_roots == 0: no "roots" key */
        size_t n_roots;
        unsigned shard_index, shard_count;   /* shard_count == 0: not sharded, no "shard" key */
};

int output_format_from_name(const char *name);   /* -1 when unknown */

void output_begin(struct output *o, FILE *f, enum output_format format, const struct policy *p);
void output_begin_run(struct output *o, FILE *f, enum output_format format, const struct policy *p,
                      const struct output_run *run);
void output_file(struct output *o, const char *path, const struct scan_report *r, enum mg_verdict v);
/* repository: already escaped (report_escape), or NULL. */
void output_file_repo(struct output *o, const char *path, const char *repository, const struct scan_report *r,
                      enum mg_verdict v);
/* source: "scan" or "store" (scan --store: whether a worker scanned the file or
 * the verdict store answered), written as the JSON entry's "source"; NULL: none. */
void output_file_from(struct output *o, const char *path, const char *repository, const struct scan_report *r,
                      enum mg_verdict v, const char *source);
void output_end(struct output *o);

#endif
