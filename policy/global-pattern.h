/* global-pattern.h — parsing and matching of pickle global patterns, internal to
 * policy/. A parsed pattern points into the text it was parsed from; it owns
 * nothing. The public wrappers are policy_match_global() and policy_match_deny(). */
#ifndef MODELGATE_GLOBAL_PATTERN_H
#define MODELGATE_GLOBAL_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

#include "report.h"

/* Longest pattern text: a full "module:qualname" as a report can hold it. */
#define GLOBAL_PATTERN_MAX (2 * REPORT_NAME_MAX)

/* Dotted qualnames with more parts than this are not walked for deny matching but
 * count as denied: no real qualname has more than a handful of parts, and the walk
 * is quadratic in the number of parts. */
#define GLOBAL_PATTERN_DENY_PARTS_MAX 8

enum global_pattern_kind {
        GLOBAL_PATTERN_EXACT,         /* module:qualname */
        GLOBAL_PATTERN_MODULE_ANY,    /* module:*  — simple names in exactly that module */
        GLOBAL_PATTERN_PACKAGE_ANY,   /* pkg.*     — simple names in pkg or any pkg.sub… */
};

struct global_pattern {
        enum global_pattern_kind kind;
        const char *module;
        size_t module_len;
        const char *qualname;         /* GLOBAL_PATTERN_EXACT only, else NULL */
        size_t qualname_len;
};

/* Parses text. On failure returns -EINVAL and sets *ret_reason to a short static
 * phrase saying what is wrong; *ret is untouched. */
int global_pattern_parse(const char *text, struct global_pattern *ret, const char **ret_reason);

/* The grammar's match: exact, or a wildcard and a qualname without a dot. */
bool global_pattern_match(const struct global_pattern *p, const char *module, const char *qualname);

/* Deny matching: like global_pattern_match(), but a dotted qualname is also judged
 * by what the attribute walk can reach (see policy_match_deny() in policy.h).
 * Returns true when any of the n patterns matches. */
bool global_pattern_match_deny(const struct global_pattern *patterns, size_t n,
                               const char *module, const char *qualname);

#endif
