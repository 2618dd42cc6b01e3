/* license-pattern.h — license identifiers and the glob patterns that restrict
 * them, internal to policy/. Both sides are normalised the same way before they
 * meet, so "CC BY-NC 4.0", "cc_by_nc_4.0" and "cc-by-nc-4.0" are one license. */
#ifndef MODELGATE_LICENSE_PATTERN_H
#define MODELGATE_LICENSE_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

#include "report.h"

/* Longest license pattern or license string that is matched: twice what a report
 * can carry, so that a report's license always fits. */
#define LICENSE_PATTERN_MAX (2 * REPORT_LICENSE_MAX)

/* Writes the normal form of s into buf: ASCII letters lowercased, whitespace and
 * '_' turned into '-', runs of '-' collapsed, '-' trimmed at both ends. Returns
 * the length, -ENAMETOOLONG when it does not fit in bufsz, -EINVAL when s holds a
 * control character or nothing is left. */
int license_normalize(const char *s, char *buf, size_t bufsz);

/* Glob match of two normalised strings: '*' any run, '?' any one byte. */
bool license_glob_match(const char *pattern, const char *s);

#endif
