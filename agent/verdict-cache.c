/* verdict-cache.c — a set-associative table: each key hashes to a bucket of
 * CACHE_WAYS slots; a full bucket replaces its least recently used slot. No
 * allocation after creation, O(1) per lookup, used only by the event thread. */
#include <stdlib.h>
#include <string.h>

#include "verdict-cache.h"

#define CACHE_WAYS 4

struct slot {
        struct cache_key key;
        struct cache_value value;
        uint64_t used;          /* last use tick; 0 = empty */
};

struct verdict_cache {
        struct slot *slots;
        unsigned buckets;       /* power of two */
        uint64_t tick;
        unsigned long count;
};

struct verdict_cache *verdict_cache_new(unsigned entries) {
        struct verdict_cache *c = calloc(1, sizeof(*c));
        unsigned b = 1;

        if (!c)
                return NULL;
        while (b * CACHE_WAYS < entries)
                b <<= 1;
        c->buckets = b;
        c->slots = calloc((size_t) b * CACHE_WAYS, sizeof(*c->slots));
        if (!c->slots) {
                free(c);
                return NULL;
        }
        return c;
}

void verdict_cache_free(struct verdict_cache *c) {
        if (c) {
                free(c->slots);
                free(c);
        }
}

void cache_key_from_stat(struct cache_key *k, const struct stat *st, uint64_t generation) {
        memset(k, 0, sizeof(*k));
        k->dev = st->st_dev;
        k->ino = st->st_ino;
        k->size = (uint64_t) st->st_size;
        k->ctime_sec = st->st_ctim.tv_sec;
        k->ctime_nsec = st->st_ctim.tv_nsec;
        k->generation = generation;
}

static uint64_t mix(uint64_t h, uint64_t v) {
        h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
        return h * 0xff51afd7ed558ccdULL;
}

static struct slot *bucket_of(struct verdict_cache *c, const struct cache_key *k) {
        uint64_t h = mix(mix(mix(mix(mix(mix(0, k->dev), k->ino), k->size), (uint64_t) k->ctime_sec),
                             (uint64_t) k->ctime_nsec), k->generation);
        return &c->slots[(size_t) (h & (c->buckets - 1)) * CACHE_WAYS];
}

static bool key_eq(const struct cache_key *a, const struct cache_key *b) {
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->ctime_sec == b->ctime_sec &&
               a->ctime_nsec == b->ctime_nsec && a->generation == b->generation;
}

bool verdict_cache_get(struct verdict_cache *c, const struct cache_key *k, struct cache_value *ret) {
        struct slot *b = bucket_of(c, k);
        for (int i = 0; i < CACHE_WAYS; i++)
                if (b[i].used && key_eq(&b[i].key, k)) {
                        b[i].used = ++c->tick;
                        *ret = b[i].value;
                        return true;
                }
        return false;
}

void verdict_cache_put(struct verdict_cache *c, const struct cache_key *k, const struct cache_value *v) {
        struct slot *b = bucket_of(c, k), *victim = &b[0];
        for (int i = 0; i < CACHE_WAYS; i++) {
                if (b[i].used && key_eq(&b[i].key, k)) {
                        victim = &b[i];
                        break;
                }
                if (b[i].used < victim->used)
                        victim = &b[i];
        }
        if (!victim->used)
                c->count++;
        victim->key = *k;
        victim->value = *v;
        victim->used = ++c->tick;
}

unsigned long verdict_cache_size(const struct verdict_cache *c) {
        return c->count;
}
