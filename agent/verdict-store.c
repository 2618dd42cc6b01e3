/* verdict-store.c — the verdict store's file and its index. Owns
 * STATE_DIR/verdicts.db: a header record, then fixed-size records appended one
 * write() each. Trusts nothing it reads back: a record counts only with the right
 * magic, version and CRC-32; anything else is skipped. Never parses file content
 * and never logs: the caller reports what the load info says. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "verdict-store.h"

#define HEADER_MAGIC "MGVSTORE"
#define RECORD_MAGIC UINT32_C(0x5256474d)      /* "MGVR" read as little-endian */
#define STORE_VERSION 1
#define RECORD_FLAG_RULE 0x1
#define RECORD_FLAG_SHA256 0x2
/* The format byte holds the detected format (modelgate scan --store). A record
 * without the flag must have a zero format byte, as when it was reserved: records
 * written before the flag existed stay valid, and no version bump is needed. */
#define RECORD_FLAG_FORMAT 0x4
#define RECORD_FLAGS (RECORD_FLAG_RULE | RECORD_FLAG_SHA256 | RECORD_FLAG_FORMAT)
#define READ_CHUNK_RECORDS 2048                /* 256 KiB per pread while loading */
/* A file smaller than this is never worth rewriting, however dead. */
#define COMPACT_MIN_RECORDS 1024
#define INDEX_MIN_SLOTS 1024

/* Host byte order: a store belongs to one host and is never copied elsewhere. */
struct store_header {
        char magic[8];
        uint32_t version;
        uint32_t record_size;
        uint8_t zero[108];
        uint32_t crc;           /* CRC-32 of the bytes before it */
};

struct store_record {
        uint32_t magic;
        uint16_t version;
        uint8_t deny;
        uint8_t flags;          /* RECORD_FLAG_* */
        uint8_t rule;
        uint8_t severity;
        uint8_t format;         /* with RECORD_FLAG_FORMAT, else 0 */
        uint8_t reserved[5];
        uint8_t policy[32];     /* the policy_sha256() it was decided under */
        uint64_t dev, ino, size;
        int64_t ctime_sec, ctime_nsec;
        uint8_t sha256[32];
        uint32_t reserved2;
        uint32_t crc;           /* CRC-32 of the bytes before it */
};

_Static_assert(sizeof(struct store_header) == STORE_RECORD_SIZE, "header size");
_Static_assert(sizeof(struct store_record) == STORE_RECORD_SIZE, "record size");

struct store_entry {
        struct store_key key;
        struct store_verdict v;
};

/* Entries in an array; two open-addressing tables of (index + 1) find them by
 * inode key and by content hash. Load factor at most one half. */
struct store_index {
        struct store_entry *entries;
        unsigned long n, cap_entries, limit;
        uint64_t *by_key, *by_sha;
        unsigned long slots;    /* power of two */
};

struct verdict_store {
        int dir_fd;             /* holds the flock: one agent per store */
        int fd;                 /* O_APPEND */
        char path[PATH_MAX];
        uint8_t policy[32];
        unsigned long records, limit;
        bool failed;            /* a write failed: no more appends until restarted */
        struct store_index *idx;
};

void store_key_from_stat(struct store_key *k, const struct stat *st) {
        memset(k, 0, sizeof(*k));
        k->dev = st->st_dev;
        k->ino = st->st_ino;
        k->size = (uint64_t) st->st_size;
        k->ctime_sec = st->st_ctim.tv_sec;
        k->ctime_nsec = st->st_ctim.tv_nsec;
}

bool sha256_from_hex(const char *hex, uint8_t ret[32]) {
        uint8_t out[32];
        for (size_t i = 0; i < 64; i++) {
                char c = hex[i];
                int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                if (v < 0)
                        return false;
                if (i % 2 == 0)
                        out[i / 2] = (uint8_t) (v << 4);
                else
                        out[i / 2] |= (uint8_t) v;
        }
        if (hex[64] != '\0')
                return false;
        memcpy(ret, out, 32);
        return true;
}

void sha256_to_hex(const uint8_t sha[32], char ret[65]) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < 32; i++) {
                ret[2 * i] = digits[sha[i] >> 4];
                ret[2 * i + 1] = digits[sha[i] & 15];
        }
        ret[64] = '\0';
}

static uint32_t crc_of(const void *p, size_t n) {
        return (uint32_t) crc32(crc32(0L, Z_NULL, 0), p, (uInt) n);
}

/* ---- index ------------------------------------------------------------------ */

static uint64_t mix(uint64_t h, uint64_t v) {
        h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
        return h * 0xff51afd7ed558ccdULL;
}

/* Linear probing needs the low bits well mixed: a final avalanche folds the high
 * bits of the product down (inode numbers and sizes come in runs). */
static uint64_t key_hash(const struct store_key *k) {
        uint64_t h = mix(mix(mix(mix(mix(0, k->dev), k->ino), k->size), (uint64_t) k->ctime_sec), (uint64_t) k->ctime_nsec);
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ULL;
        return h ^ (h >> 33);
}

static uint64_t sha_hash(const uint8_t sha[32]) {
        uint64_t h;
        memcpy(&h, sha, sizeof(h));   /* a digest's bytes: already uniform */
        return h;
}

static bool key_eq(const struct store_key *a, const struct store_key *b) {
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->ctime_sec == b->ctime_sec &&
               a->ctime_nsec == b->ctime_nsec;
}

/* A slot holds (tag << 32 | entry index + 1), 0 when empty: the tag (high bits
 * of the hash) settles most mismatches without touching the entry. */
#define SLOT_INDEX(s) ((uint32_t) (s))
#define SLOT_TAG(h) ((uint64_t) ((h) >> 32) << 32)

/* The index's arrays are few and large, and probed at random: on transparent
 * huge pages (where the system allows them on request) and filled by the kernel
 * in one call, a 100,000-entry store loads in 50 ms of CPU instead of 130 on a
 * VM, where TLB misses and a trap per first-touched page dominated. Both hints
 * may be refused (older kernels): the pages are then faulted in as touched.
 * Zeroed, like calloc. */
static void *big_alloc(size_t bytes) {
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return NULL;
        madvise(p, bytes, MADV_HUGEPAGE);
        madvise(p, bytes, MADV_POPULATE_WRITE);
        return p;
}

static void big_free(void *p, size_t bytes) {
        if (p)
                munmap(p, bytes);
}

static struct store_index *index_new(unsigned long limit, unsigned long expect) {
        struct store_index *x = calloc(1, sizeof(*x));
        if (!x)
                return NULL;
        x->limit = limit;
        x->slots = INDEX_MIN_SLOTS;
        if (expect > limit)
                expect = limit;
        while (x->slots < 2 * expect)   /* sized once for what the file holds */
                x->slots <<= 1;
        x->by_key = big_alloc(x->slots * sizeof(*x->by_key));
        x->by_sha = big_alloc(x->slots * sizeof(*x->by_sha));
        if (expect) {
                x->entries = big_alloc(expect * sizeof(*x->entries));
                x->cap_entries = x->entries ? expect : 0;
        }
        if (!x->by_key || !x->by_sha) {
                store_index_free(x);
                return NULL;
        }
        return x;
}

void store_index_free(struct store_index *x) {
        if (x) {
                big_free(x->entries, x->cap_entries * sizeof(*x->entries));
                big_free(x->by_key, x->slots * sizeof(*x->by_key));
                big_free(x->by_sha, x->slots * sizeof(*x->by_sha));
                free(x);
        }
}

static uint64_t *key_slot(const struct store_index *x, const struct store_key *k, uint64_t h) {
        unsigned long m = x->slots - 1;
        for (unsigned long i = h & m;; i = (i + 1) & m) {
                uint64_t s = x->by_key[i];
                if (!s || ((s & ~(uint64_t) UINT32_MAX) == SLOT_TAG(h) && key_eq(&x->entries[SLOT_INDEX(s) - 1].key, k)))
                        return &x->by_key[i];
        }
}

static uint64_t *sha_slot(const struct store_index *x, const uint8_t sha[32], uint64_t h) {
        unsigned long m = x->slots - 1;
        for (unsigned long i = h & m;; i = (i + 1) & m) {
                uint64_t s = x->by_sha[i];
                if (!s)
                        return &x->by_sha[i];
                if ((s & ~(uint64_t) UINT32_MAX) != SLOT_TAG(h))
                        continue;
                const struct store_entry *e = &x->entries[SLOT_INDEX(s) - 1];
                if (e->v.has_sha256 && memcmp(e->v.sha256, sha, 32) == 0)
                        return &x->by_sha[i];
        }
}

static int index_grow(struct store_index *x) {
        unsigned long slots = x->slots * 2;
        uint64_t *bk = big_alloc(slots * sizeof(*bk)), *bs = big_alloc(slots * sizeof(*bs));
        if (!bk || !bs) {
                big_free(bk, slots * sizeof(*bk));
                big_free(bs, slots * sizeof(*bs));
                return -ENOMEM;
        }
        big_free(x->by_key, x->slots * sizeof(*x->by_key));
        big_free(x->by_sha, x->slots * sizeof(*x->by_sha));
        x->by_key = bk;
        x->by_sha = bs;
        x->slots = slots;
        for (unsigned long i = 0; i < x->n; i++) {
                uint64_t h = key_hash(&x->entries[i].key);
                *key_slot(x, &x->entries[i].key, h) = SLOT_TAG(h) | (i + 1);
                if (x->entries[i].v.has_sha256) {
                        uint64_t hs = sha_hash(x->entries[i].v.sha256);
                        uint64_t *s = sha_slot(x, x->entries[i].v.sha256, hs);
                        if (!*s)
                                *s = SLOT_TAG(hs) | (i + 1);
                }
        }
        return 0;
}

/* Adds or replaces. Returns 1 when a key was replaced, 0 when added, -ENOSPC at
 * the limit, -ENOMEM. */
static int index_put(struct store_index *x, const struct store_key *k, const struct store_verdict *v) {
        uint64_t h = key_hash(k);
        uint64_t *ks = key_slot(x, k, h);
        int replaced = *ks != 0;

        if (!replaced) {
                if (x->n >= x->limit)
                        return -ENOSPC;
                if ((x->n + 1) * 2 > x->slots) {
                        if (index_grow(x) < 0)
                                return -ENOMEM;
                        ks = key_slot(x, k, h);
                }
                if (x->n == x->cap_entries) {
                        unsigned long nc = x->cap_entries ? x->cap_entries * 2 : 1024;
                        struct store_entry *ne = x->entries
                                ? mremap(x->entries, x->cap_entries * sizeof(*ne), nc * sizeof(*ne), MREMAP_MAYMOVE)
                                : big_alloc(nc * sizeof(*ne));
                        if (!ne || ne == MAP_FAILED)
                                return -ENOMEM;
                        x->entries = ne;
                        x->cap_entries = nc;
                }
                x->entries[x->n].key = *k;
                *ks = SLOT_TAG(h) | ++x->n;
        }
        uint32_t idx = SLOT_INDEX(*ks);
        struct store_entry *e = &x->entries[idx - 1];
        e->v = *v;
        if (v->has_sha256) {
                uint64_t hs = sha_hash(v->sha256);
                uint64_t *s = sha_slot(x, v->sha256, hs);
                if (!*s)
                        *s = SLOT_TAG(hs) | idx;
        }
        return replaced;
}

/* ---- records ------------------------------------------------------------------ */

static void header_init(struct store_header *h) {
        memset(h, 0, sizeof(*h));
        memcpy(h->magic, HEADER_MAGIC, sizeof(h->magic));
        h->version = STORE_VERSION;
        h->record_size = STORE_RECORD_SIZE;
        h->crc = crc_of(h, offsetof(struct store_header, crc));
}

static bool header_valid(const struct store_header *h) {
        struct store_header want;
        header_init(&want);
        return memcmp(h, &want, sizeof(want)) == 0;
}

static void record_init(struct store_record *r, const uint8_t policy[32], const struct store_key *k,
                        const struct store_verdict *v) {
        memset(r, 0, sizeof(*r));
        r->magic = RECORD_MAGIC;
        r->version = STORE_VERSION;
        r->deny = v->deny ? 1 : 0;
        r->flags = (v->has_rule ? RECORD_FLAG_RULE : 0) | (v->has_sha256 ? RECORD_FLAG_SHA256 : 0) |
                   (v->has_format ? RECORD_FLAG_FORMAT : 0);
        r->rule = v->has_rule ? v->rule : 0;
        r->severity = v->has_rule ? v->severity : 0;
        r->format = v->has_format ? v->format : 0;
        memcpy(r->policy, policy, 32);
        r->dev = k->dev;
        r->ino = k->ino;
        r->size = k->size;
        r->ctime_sec = k->ctime_sec;
        r->ctime_nsec = k->ctime_nsec;
        if (v->has_sha256)
                memcpy(r->sha256, v->sha256, 32);
        r->crc = crc_of(r, offsetof(struct store_record, crc));
}

/* A record is what it says only if every check passes; reserved bytes must be
 * zero so that a future layout is never half-read by this one. */
static bool record_valid(const struct store_record *r) {
        static const uint8_t zero[5];
        return r->magic == RECORD_MAGIC && r->version == STORE_VERSION && r->deny <= 1 &&
               (r->flags & ~RECORD_FLAGS) == 0 && ((r->flags & RECORD_FLAG_FORMAT) || r->format == 0) &&
               memcmp(r->reserved, zero, sizeof(r->reserved)) == 0 && r->reserved2 == 0 &&
               r->crc == crc_of(r, offsetof(struct store_record, crc));
}

static void record_verdict(const struct store_record *r, struct store_key *ret_k, struct store_verdict *ret_v) {
        memset(ret_k, 0, sizeof(*ret_k));
        memset(ret_v, 0, sizeof(*ret_v));
        ret_k->dev = r->dev;
        ret_k->ino = r->ino;
        ret_k->size = r->size;
        ret_k->ctime_sec = r->ctime_sec;
        ret_k->ctime_nsec = r->ctime_nsec;
        ret_v->deny = r->deny;
        ret_v->has_rule = (r->flags & RECORD_FLAG_RULE) != 0;
        ret_v->rule = r->rule;
        ret_v->severity = r->severity;
        ret_v->has_sha256 = (r->flags & RECORD_FLAG_SHA256) != 0;
        if (ret_v->has_sha256)
                memcpy(ret_v->sha256, r->sha256, 32);
        ret_v->has_format = (r->flags & RECORD_FLAG_FORMAT) != 0;
        ret_v->format = r->format;
}

/* Reads whole records after the header up to `end`, indexing `policy`'s. */
static int load_records(int fd, off_t end, const uint8_t policy[32], unsigned long limit, struct store_index **ret,
                        struct store_load_info *info) {
        struct store_record *buf = malloc(READ_CHUNK_RECORDS * sizeof(*buf));
        struct store_index *x = index_new(limit, end > STORE_RECORD_SIZE ? (unsigned long) (end / STORE_RECORD_SIZE - 1) : 0);
        off_t off = STORE_RECORD_SIZE;
        int r = 0;

        if (!buf || !x) {
                free(buf);
                store_index_free(x);
                return -ENOMEM;
        }
        while (off + STORE_RECORD_SIZE <= end) {
                size_t want = (size_t) ((end - off) / STORE_RECORD_SIZE);
                if (want > READ_CHUNK_RECORDS)
                        want = READ_CHUNK_RECORDS;
                ssize_t n = pread(fd, buf, want * STORE_RECORD_SIZE, off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n < STORE_RECORD_SIZE)
                        break;   /* shrank under us */
                size_t got = (size_t) n / STORE_RECORD_SIZE;
                for (size_t i = 0; i < got; i++) {
                        struct store_key k;
                        struct store_verdict v;
                        info->records++;
                        if (!record_valid(&buf[i])) {
                                info->corrupt++;
                                continue;
                        }
                        if (memcmp(buf[i].policy, policy, 32) != 0) {
                                info->other_policy++;
                                continue;
                        }
                        record_verdict(&buf[i], &k, &v);
                        int p = index_put(x, &k, &v);
                        if (p == -ENOSPC)
                                info->over_cap++;
                        else if (p < 0) {
                                r = p;
                                break;
                        } else if (p == 1)
                                info->superseded++;
                }
                if (r < 0)
                        break;
                off += (off_t) got * STORE_RECORD_SIZE;
        }
        free(buf);
        if (r < 0) {
                store_index_free(x);
                return r;
        }
        info->loaded = x->n;
        *ret = x;
        return 0;
}

static int write_all(int fd, const void *p, size_t n) {
        const uint8_t *b = p;
        while (n > 0) {
                ssize_t w = write(fd, b, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return w < 0 ? -errno : -EIO;
                b += w;
                n -= (size_t) w;
        }
        return 0;
}

/* Writes the live entries to a new file, fsyncs it and renames it over the
 * store: a crash at any point leaves either the old file or the new one whole. */
static int compact(struct verdict_store *s) {
        static const char tmp[] = STORE_FILE_NAME ".new";
        struct store_header h;
        struct store_record *buf;
        int fd, r = 0;

        /* Every name relative to the directory opened and checked at start. */
        unlinkat(s->dir_fd, tmp, 0);   /* a leftover of a crash in here */
        fd = openat(s->dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        buf = malloc(READ_CHUNK_RECORDS * sizeof(*buf));
        header_init(&h);
        r = buf ? write_all(fd, &h, sizeof(h)) : -ENOMEM;
        for (unsigned long i = 0; r == 0 && i < s->idx->n;) {
                size_t n = 0;
                for (; n < READ_CHUNK_RECORDS && i < s->idx->n; n++, i++)
                        record_init(&buf[n], s->policy, &s->idx->entries[i].key, &s->idx->entries[i].v);
                r = write_all(fd, buf, n * sizeof(*buf));
        }
        free(buf);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && renameat(s->dir_fd, tmp, s->dir_fd, STORE_FILE_NAME) < 0)
                r = -errno;
        if (r < 0) {
                close(fd);
                unlinkat(s->dir_fd, tmp, 0);
                return r;
        }
        fsync(s->dir_fd);
        close(fd);
        int nfd = openat(s->dir_fd, STORE_FILE_NAME, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
        if (nfd < 0) {
                /* s->fd is the replaced file now: appends there would be lost. */
                r = -errno;
                s->failed = true;
                return r;
        }
        close(s->fd);
        s->fd = nfd;
        s->records = s->idx->n;
        return 0;
}

/* A new, empty store: the header, fsynced. */
static int start_file(int fd) {
        struct store_header h;
        int r;
        header_init(&h);
        if (ftruncate(fd, 0) < 0)
                return -errno;
        if ((r = write_all(fd, &h, sizeof(h))) < 0)
                return r;
        return fsync(fd) < 0 ? -errno : 0;
}

int verdict_store_open(const char *dir, const uint8_t policy[32], unsigned long cap, struct verdict_store **ret,
                       struct store_load_info *info) {
        struct verdict_store *s = calloc(1, sizeof(*s));
        struct store_header h;
        struct stat st;
        int r = -EIO;

        memset(info, 0, sizeof(*info));
        if (!s)
                return -ENOMEM;
        s->fd = -1;
        memcpy(s->policy, policy, 32);
        s->limit = cap ? cap : STORE_ENTRIES_MAX;
        if ((size_t) snprintf(s->path, sizeof(s->path), "%s/%s", dir, STORE_FILE_NAME) >= sizeof(s->path)) {
                free(s);
                return -ENAMETOOLONG;
        }
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                r = -errno;
                free(s);
                return r;
        }
        s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dir_fd < 0) {
                r = -errno;
                free(s);
                return r;
        }
        /* The records carry a checksum, not a signature: only the file system's
         * permissions keep them ours. A directory or file that another user owns
         * or can write is refused. */
        if (fstat(s->dir_fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
                r = -EPERM;
                goto fail;
        }
        if (flock(s->dir_fd, LOCK_EX | LOCK_NB) < 0) {
                r = errno == EWOULDBLOCK ? -EBUSY : -errno;
                goto fail;
        }
        s->fd = openat(s->dir_fd, STORE_FILE_NAME, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (s->fd < 0 || fstat(s->fd, &st) < 0) {
                r = -errno;
                goto fail;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -EINVAL;
                goto fail;
        }
        if (st.st_uid != geteuid()) {
                r = -EPERM;
                goto fail;
        }
        fchmod(s->fd, 0600);   /* root-only, whatever made it */
        if (st.st_size < (off_t) sizeof(h)) {
                /* New, or torn while its header was written. */
                if ((r = start_file(s->fd)) < 0)
                        goto fail;
                st.st_size = sizeof(h);
        } else if (pread(s->fd, &h, sizeof(h), 0) != (ssize_t) sizeof(h) || !header_valid(&h)) {
                /* Not a store of this version: keep it for a human, start anew. */
                char aside[64];
                snprintf(aside, sizeof(aside), "%s.bad-%lld", STORE_FILE_NAME, (long long) time(NULL));
                snprintf(info->aside, sizeof(info->aside), "%s/%s", dir, aside);
                if (renameat(s->dir_fd, STORE_FILE_NAME, s->dir_fd, aside) < 0) {
                        r = -errno;
                        goto fail;
                }
                close(s->fd);
                s->fd = openat(s->dir_fd, STORE_FILE_NAME, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                               0600);
                if (s->fd < 0 || (r = start_file(s->fd)) < 0) {
                        r = s->fd < 0 ? -errno : r;
                        goto fail;
                }
                st.st_size = sizeof(h);
        }
        off_t whole = (st.st_size / STORE_RECORD_SIZE) * STORE_RECORD_SIZE;
        if (whole != st.st_size) {
                /* A torn last record: cut it, or every later append would be misaligned. */
                info->torn_bytes = (unsigned long) (st.st_size - whole);
                if (ftruncate(s->fd, whole) < 0) {
                        r = -errno;
                        goto fail;
                }
        }
        if ((r = load_records(s->fd, whole, policy, s->limit, &s->idx, info)) < 0)
                goto fail;
        s->records = info->records;
        if (s->records >= COMPACT_MIN_RECORDS && s->records - s->idx->n > s->idx->n) {
                if (compact(s) == 0)
                        info->compacted = true;
        }
        *ret = s;
        return 0;
fail:
        if (s->fd >= 0)
                close(s->fd);
        close(s->dir_fd);
        store_index_free(s->idx);
        free(s);
        return r;
}

void verdict_store_close(struct verdict_store *s) {
        if (!s)
                return;
        close(s->fd);
        close(s->dir_fd);
        store_index_free(s->idx);
        free(s);
}

int verdict_store_load_index(struct verdict_store *s, const uint8_t policy[32], struct store_index **ret,
                             struct store_load_info *info) {
        struct stat st;
        memset(info, 0, sizeof(*info));
        if (fstat(s->fd, &st) < 0)
                return -errno;
        return load_records(s->fd, (st.st_size / STORE_RECORD_SIZE) * STORE_RECORD_SIZE, policy, s->limit, ret, info);
}

void verdict_store_use_index(struct verdict_store *s, const uint8_t policy[32], struct store_index *idx) {
        store_index_free(s->idx);
        s->idx = idx;
        memcpy(s->policy, policy, 32);
}

bool verdict_store_get(const struct verdict_store *s, const struct store_key *k, struct store_verdict *ret) {
        uint32_t i = SLOT_INDEX(*key_slot(s->idx, k, key_hash(k)));
        if (!i)
                return false;
        *ret = s->idx->entries[i - 1].v;
        return true;
}

bool verdict_store_get_content(const struct verdict_store *s, const uint8_t sha256[32], struct store_verdict *ret) {
        uint32_t i = SLOT_INDEX(*sha_slot(s->idx, sha256, sha_hash(sha256)));
        if (!i)
                return false;
        *ret = s->idx->entries[i - 1].v;
        return true;
}

int verdict_store_put(struct verdict_store *s, const struct store_key *k, const struct store_verdict *v) {
        struct store_record rec;
        struct store_verdict old;
        ssize_t n;

        /* The same verdict again (a reopened file after a restart): nothing to add. */
        if (verdict_store_get(s, k, &old) && old.deny == v->deny && old.has_sha256 >= v->has_sha256 &&
            (!v->has_sha256 || memcmp(old.sha256, v->sha256, 32) == 0) && old.has_format >= v->has_format)
                return 0;
        if (s->failed)
                return -EIO;
        if (s->records >= STORE_RECORDS_MAX)
                return -ENOSPC;
        int p = index_put(s->idx, k, v);
        if (p < 0)
                return p;
        record_init(&rec, s->policy, k, v);
        do
                n = write(s->fd, &rec, sizeof(rec));
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t) sizeof(rec)) {
                int e = n < 0 ? -errno : -EIO;
                /* A short write (disk full) would misalign every later record: cut
                 * it now, and stop appending until the next start. */
                if (n > 0 && ftruncate(s->fd, (off_t) (s->records + 1) * STORE_RECORD_SIZE) < 0) { /* cut at the next start */ }
                s->failed = true;
                return e;
        }
        s->records++;
        return 0;
}

unsigned long verdict_store_count(const struct verdict_store *s) {
        return s->idx->n;
}
