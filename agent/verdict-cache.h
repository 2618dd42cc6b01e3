/* verdict-cache.h — decided files, keyed on what any change to their content
 * changes: (dev, ino, ctime, size) and the policy generation. mtime is not in the
 * key: it can be set back with utimensat, ctime cannot. Bounded; old entries are
 * replaced, never grown. */
#ifndef MODELGATE_VERDICT_CACHE_H
#define MODELGATE_VERDICT_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "report.h"

struct cache_key {
        uint64_t dev, ino, size;
        int64_t ctime_sec, ctime_nsec;
        uint64_t generation;
};

struct cache_value {
        uint8_t deny;           /* verdict */
        uint8_t rule;           /* worst finding's rule (for the log of a cached denial) */
        uint8_t severity;
        uint8_t has_rule;
        char global[96];        /* its global, truncated, or "" */
        char sha256[65];        /* "" when not computed */
        char git_sha1[41];      /* "" when not computed */
        uint64_t expires_ms;    /* monotonic; 0 = until evicted (a failure is kept a while only) */
};

struct verdict_cache;

/* entries: capacity, rounded up to a power of two (memory ~ 200 bytes each). */
struct verdict_cache *verdict_cache_new(unsigned entries);
void verdict_cache_free(struct verdict_cache *c);

void cache_key_from_stat(struct cache_key *k, const struct stat *st, uint64_t generation);
bool verdict_cache_get(struct verdict_cache *c, const struct cache_key *k, struct cache_value *ret);
void verdict_cache_put(struct verdict_cache *c, const struct cache_key *k, const struct cache_value *v);
unsigned long verdict_cache_size(const struct verdict_cache *c);

#endif
