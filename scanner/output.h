/* output.h — the reports `modelgate scan` prints: text, JSON (DESIGN.md), SARIF
 * 2.1.0 and CSV. Each file is written as soon as it is decided, so memory does not
 * grow with the number of files; only per-rule counters are kept. */
#ifndef MODELGATE_OUTPUT_H
#define MODELGATE_OUTPUT_H

#include <stdio.h>

#include "policy.h"
#include "report.h"

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
};

int output_format_from_name(const char *name);   /* -1 when unknown */

void output_begin(struct output *o, FILE *f, enum output_format format, const struct policy *p);
void output_file(struct output *o, const char *path, const struct scan_report *r, enum mg_verdict v);
void output_end(struct output *o);

#endif
