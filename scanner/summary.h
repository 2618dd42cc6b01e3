/* summary.h — what a whole scan adds up to, for the end of a report: counts by
 * verdict and rule, repositories, the rules failed files fail on, the globals
 * and licenses seen among failures. Fed one decided file at a time, by the
 * scan and by `modelgate report merge` alike, so both print the same summary.
 * Memory is bounded: distinct names beyond a cap are counted as dropped. */
#ifndef MODELGATE_SUMMARY_H
#define MODELGATE_SUMMARY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "report.h"

#define SUMMARY_DISTINCT_MAX 4096     /* distinct globals, and licenses, counted */
#define SUMMARY_REPOSITORIES_MAX (1u << 20)   /* distinct repositories counted (8 MiB of hashes at most) */
#define SUMMARY_TOP_GLOBALS 10
#define SUMMARY_TOP_LICENSES 20

struct summary_entry {
        char *name;
        unsigned long files;
        bool restricted;        /* licenses: a file with it had RESTRICTED_LICENSE */
};

struct summary_table {
        struct summary_entry *slots;  /* open addressing, 2 * SUMMARY_DISTINCT_MAX, allocated on first use */
        size_t n;
        bool capped;                  /* a new name found the table full */
};

struct summary {
        unsigned long files, allowed, denied;
        unsigned long by_rule[_RULE_MAX];          /* findings */
        unsigned long failed_by_rule[_RULE_MAX];   /* denied files with a finding of the rule */
        uint64_t *repo_hashes;                     /* open addressing set of FNV-1a 64, 0 = empty */
        size_t repo_cap, repositories;
        bool repositories_capped;
        struct summary_table globals, licenses;
        bool interrupted;
};

void summary_init(struct summary *s);
void summary_free(struct summary *s);

/* repository: escaped, or NULL. */
void summary_add_file(struct summary *s, bool denied, const char *repository, const struct scan_report *r);

/* The JSON "summary" object (DESIGN.md's keys first). NULL when out of memory. */
void *summary_json(const struct summary *s);   /* cJSON * */

/* The closing lines of the text report. */
void summary_print_text(const struct summary *s, FILE *f);

#endif
