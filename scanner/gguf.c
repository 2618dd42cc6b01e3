/* gguf.c — walks a GGUF file's header, metadata and tensor infos with the checks of
 * ggml's gguf_init_from_file(), records general.license and hands chat templates
 * to template.c. Reads only metadata and tensor infos: tensor data is measured
 * against the file size, never touched, so a 20 GB model costs what its header
 * costs. Never allocates by a count read from the file.
 *
 * Byte order: GGUF v3 allowed big-endian files (for s390x). llama.cpp refuses them
 * on a little-endian host but loads them natively on a big-endian one, so both
 * orders are parsed here (the byte order is told by the version field) and their
 * templates checked: refusing would be a false positive on s390x, and ignoring them
 * would let a template through there. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "gguf.h"
#include "template.h"

/* Highest GGUF version ggml reads (GGUF_VERSION); v1 (32-bit counts) is refused by
 * llama.cpp since 2023. */
#define GGUF_VERSION_MAX 3

/* ggml's GGUF_MAX_STRING_LENGTH and GGUF_MAX_ARRAY_ELEMENTS: past these the loader
 * fails, so the file is malformed for every reader that matters. */
#define GGUF_STRING_MAX ((uint64_t) 1 << 30)
#define GGUF_ARRAY_MAX  ((uint64_t) 1 << 30)

/* The GGUF spec caps a key at 65535 bytes. */
#define GGUF_KEY_MAX 65535

/* Arrays of arrays: the spec allows them, ggml refuses them, gguf-py reads them. No
 * real file nests at all; 8 levels bound the recursion here. */
#define GGUF_ARRAY_DEPTH_MAX 8

/* Key/value pairs and tensors per file. Real models carry ~50 keys and a few
 * thousand tensors per shard; the caps bound the duplicate-name tables. */
#define GGUF_KV_MAX      ((uint64_t) 1 << 20)
#define GGUF_TENSORS_MAX ((uint64_t) 1 << 20)

/* The smallest encodings, for "claims N entries but only M bytes follow": a key/
 * value pair is a length (8), one key byte, a type (4) and a one-byte value; a
 * tensor info a length (8), a type (4), n_dims (4) and an offset (8). */
#define GGUF_KV_MIN_BYTES     14
#define GGUF_TENSOR_MIN_BYTES 24

/* ggml: GGML_MAX_DIMS, GGML_MAX_NAME (names are shorter than this), and the default
 * of general.alignment. */
#define GGML_MAX_DIMS 4
#define GGML_MAX_NAME 64
#define GGUF_DEFAULT_ALIGNMENT 32

/* Bytes of a key quoted in messages; the printf arguments for the current key. */
#define GGUF_QUOTE 80
#define KEY_ARG(p) (int) ((p)->key_len < GGUF_QUOTE ? (p)->key_len : GGUF_QUOTE), (const char *) (p)->key

enum gguf_type {
        GGUF_UINT8,
        GGUF_INT8,
        GGUF_UINT16,
        GGUF_INT16,
        GGUF_UINT32,
        GGUF_INT32,
        GGUF_FLOAT32,
        GGUF_BOOL,
        GGUF_STRING,
        GGUF_ARRAY,
        GGUF_UINT64,
        GGUF_INT64,
        GGUF_FLOAT64,
        _GGUF_TYPE_MAX,
};

static const uint8_t gguf_type_size[_GGUF_TYPE_MAX] = {
        [GGUF_UINT8] = 1, [GGUF_INT8] = 1, [GGUF_UINT16] = 2, [GGUF_INT16] = 2,
        [GGUF_UINT32] = 4, [GGUF_INT32] = 4, [GGUF_FLOAT32] = 4, [GGUF_BOOL] = 1,
        [GGUF_UINT64] = 8, [GGUF_INT64] = 8, [GGUF_FLOAT64] = 8,
};

struct ggml_type_info {
        const char *name;
        uint32_t block;     /* elements per block; 0: removed or never assigned */
        uint32_t size;      /* bytes per block */
};

/* ggml's type_traits (blck_size, type_size) for every ggml_type a GGUF may hold,
 * up to GGML_TYPE_Q2_0 = 42. The gaps (4-5, 31-33, 36-38) are types that were
 * removed from GGUF and that ggml refuses. */
static const struct ggml_type_info ggml_types[] = {
        [0] = { "F32", 1, 4 },
        [1] = { "F16", 1, 2 },
        [2] = { "Q4_0", 32, 18 },
        [3] = { "Q4_1", 32, 20 },
        [6] = { "Q5_0", 32, 22 },
        [7] = { "Q5_1", 32, 24 },
        [8] = { "Q8_0", 32, 34 },
        [9] = { "Q8_1", 32, 36 },
        [10] = { "Q2_K", 256, 84 },
        [11] = { "Q3_K", 256, 110 },
        [12] = { "Q4_K", 256, 144 },
        [13] = { "Q5_K", 256, 176 },
        [14] = { "Q6_K", 256, 210 },
        [15] = { "Q8_K", 256, 292 },
        [16] = { "IQ2_XXS", 256, 66 },
        [17] = { "IQ2_XS", 256, 74 },
        [18] = { "IQ3_XXS", 256, 98 },
        [19] = { "IQ1_S", 256, 50 },
        [20] = { "IQ4_NL", 32, 18 },
        [21] = { "IQ3_S", 256, 110 },
        [22] = { "IQ2_S", 256, 82 },
        [23] = { "IQ4_XS", 256, 136 },
        [24] = { "I8", 1, 1 },
        [25] = { "I16", 1, 2 },
        [26] = { "I32", 1, 4 },
        [27] = { "I64", 1, 8 },
        [28] = { "F64", 1, 8 },
        [29] = { "IQ1_M", 256, 56 },
        [30] = { "BF16", 1, 2 },
        [34] = { "TQ1_0", 256, 54 },
        [35] = { "TQ2_0", 256, 66 },
        [39] = { "MXFP4", 32, 17 },
        [40] = { "NVFP4", 64, 36 },
        [41] = { "Q1_0", 128, 18 },
        [42] = { "Q2_0", 64, 18 },
};

/* Names seen so far (keys, then tensor names), for duplicates: an open-addressing
 * table that grows with the names actually read, never by a count from the file. */
struct gguf_name {
        const uint8_t *p;
        size_t n;
};

struct gguf_names {
        struct gguf_name *slot;
        size_t cap, used;
};

struct gguf_parser {
        struct scan_ctx *ctx;
        struct cursor c;
        bool big_endian;
        bool failed;
        uint64_t alignment;
        const uint8_t *key;     /* the key being read, for messages */
        size_t key_len;
};

static void gguf_fail(struct gguf_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gguf_fail(struct gguf_parser *p, const char *fmt, ...) {
        char msg[REPORT_MESSAGE_MAX];
        va_list ap;

        if (p->failed)
                return;
        p->failed = true;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        scan_finding(p->ctx, RULE_MALFORMED, SEV_HIGH, "GGUF: %s", msg);
}

static int gguf_u32(struct gguf_parser *p, uint32_t *ret) {
        uint32_t v;

        if (cursor_le32(&p->c, &v) < 0)
                return -ENODATA;
        *ret = p->big_endian ? __builtin_bswap32(v) : v;
        return 0;
}

static int gguf_u64(struct gguf_parser *p, uint64_t *ret) {
        uint64_t v;

        if (cursor_le64(&p->c, &v) < 0)
                return -ENODATA;
        *ret = p->big_endian ? __builtin_bswap64(v) : v;
        return 0;
}

bool gguf_sniff(const uint8_t *buf, size_t len) {
        struct cursor c = cursor_make(buf, len);
        const uint8_t *magic;
        uint32_t v;

        if (cursor_take(&c, 4, &magic) < 0 || memcmp(magic, GGUF_MAGIC, 4) != 0 || cursor_le32(&c, &v) < 0)
                return false;
        return (v >= 1 && v <= 0xffff) || (__builtin_bswap32(v) >= 1 && __builtin_bswap32(v) <= 0xffff);
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
        uint64_t h = 0xcbf29ce484222325ULL;

        for (size_t i = 0; i < n; i++)
                h = (h ^ p[i]) * 0x100000001b3ULL;
        return h;
}

/* Adds a name; returns 1 when it was there already, 0 when added, -ENOMEM. */
static int gguf_names_add(struct gguf_names *s, const uint8_t *p, size_t n) {
        if (2 * (s->used + 1) > s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 64;
                struct gguf_name *slot = calloc(cap, sizeof(*slot));
                if (!slot)
                        return -ENOMEM;
                for (size_t i = 0; i < s->cap; i++) {
                        if (!s->slot[i].p)
                                continue;
                        size_t j = fnv1a(s->slot[i].p, s->slot[i].n) & (cap - 1);
                        while (slot[j].p)
                                j = (j + 1) & (cap - 1);
                        slot[j] = s->slot[i];
                }
                free(s->slot);
                s->slot = slot;
                s->cap = cap;
        }
        for (size_t j = fnv1a(p, n) & (s->cap - 1);; j = (j + 1) & (s->cap - 1)) {
                if (!s->slot[j].p) {
                        s->slot[j] = (struct gguf_name) { p ? p : (const uint8_t *) "", n };
                        s->used++;
                        return 0;
                }
                if (s->slot[j].n == n && memcmp(s->slot[j].p, p, n) == 0)
                        return 1;
        }
}

static void gguf_names_clear(struct gguf_names *s) {
        free(s->slot);
        *s = (struct gguf_names) { 0 };
}

/* A gguf_string: u64 length, then that many bytes (no NUL). */
static int gguf_string(struct gguf_parser *p, const char *what, const uint8_t **ret, uint64_t *ret_len) {
        size_t at = p->c.pos;
        uint64_t n;

        if (gguf_u64(p, &n) < 0) {
                gguf_fail(p, "file ends inside the length of %s at byte %zu of %zu", what, at, p->c.len);
                return -EBADMSG;
        }
        if (n > GGUF_STRING_MAX) {
                gguf_fail(p, "%s at byte %zu claims %llu bytes, over ggml's limit of %llu",
                          what, at, (unsigned long long) n, (unsigned long long) GGUF_STRING_MAX);
                return -EBADMSG;
        }
        if (cursor_take(&p->c, (size_t) n, ret) < 0) {
                gguf_fail(p, "%s at byte %zu claims %llu bytes, past the end of the %zu-byte file",
                          what, at, (unsigned long long) n, p->c.len);
                return -EBADMSG;
        }
        *ret_len = n;
        return 0;
}

static bool key_is(const struct gguf_parser *p, const char *k) {
        return p->key_len == strlen(k) && memcmp(p->key, k, p->key_len) == 0;
}

static bool key_is_chat_template(const struct gguf_parser *p) {
        static const char base[] = "tokenizer.chat_template";
        size_t n = sizeof(base) - 1;

        return p->key_len >= n && memcmp(p->key, base, n) == 0 &&
               (p->key_len == n || (p->key_len > n + 1 && p->key[n] == '.'));
}

static void gguf_template(struct gguf_parser *p, const uint8_t *s, uint64_t n) {
        char where[REPORT_NAME_MAX];

        report_escape(where, sizeof(where), p->key, p->key_len, NULL);
        template_check(p->ctx, where, s, (size_t) n);
}

/* One value of type `type`; arrays recurse up to GGUF_ARRAY_DEPTH_MAX. Strings in
 * a chat-template key (or an array under it) go to template_check(). */
static int gguf_value(struct gguf_parser *p, uint32_t type, unsigned depth) {
        const uint8_t *s;
        uint64_t n, count;
        uint32_t etype;
        size_t at = p->c.pos;

        if (type < _GGUF_TYPE_MAX && gguf_type_size[type]) {
                if (cursor_skip(&p->c, gguf_type_size[type]) < 0) {
                        gguf_fail(p, "file ends inside the value of key '%.*s'", KEY_ARG(p));
                        return -EBADMSG;
                }
                return 0;
        }
        if (type == GGUF_STRING) {
                char what[GGUF_QUOTE + 32];
                snprintf(what, sizeof(what), "a string in key '%.*s'", KEY_ARG(p));
                if (gguf_string(p, what, &s, &n) < 0)
                        return -EBADMSG;
                if (key_is_chat_template(p))
                        gguf_template(p, s, n);
                return 0;
        }
        if (type != GGUF_ARRAY) {
                gguf_fail(p, "key '%.*s' has invalid value type %u", KEY_ARG(p), type);
                return -EBADMSG;
        }
        if (depth >= GGUF_ARRAY_DEPTH_MAX) {
                gguf_fail(p, "key '%.*s' nests arrays more than %d deep", KEY_ARG(p),
                          GGUF_ARRAY_DEPTH_MAX);
                return -EBADMSG;
        }
        if (gguf_u32(p, &etype) < 0 || gguf_u64(p, &count) < 0) {
                gguf_fail(p, "file ends inside the array header of key '%.*s'", KEY_ARG(p));
                return -EBADMSG;
        }
        if (count > GGUF_ARRAY_MAX) {
                gguf_fail(p, "key '%.*s' has an array of %llu elements (at byte %zu), over ggml's limit of %llu",
                          KEY_ARG(p), (unsigned long long) count, at,
                          (unsigned long long) GGUF_ARRAY_MAX);
                return -EBADMSG;
        }
        if (etype < _GGUF_TYPE_MAX && gguf_type_size[etype]) {
                if (count > cursor_left(&p->c) / gguf_type_size[etype]) {
                        gguf_fail(p, "key '%.*s' has an array of %llu %u-byte elements, past the end of the %zu-byte file",
                                  KEY_ARG(p), (unsigned long long) count,
                                  gguf_type_size[etype], p->c.len);
                        return -EBADMSG;
                }
                (void) cursor_skip(&p->c, (size_t) count * gguf_type_size[etype]);
                return 0;
        }
        if (etype != GGUF_STRING && etype != GGUF_ARRAY) {
                gguf_fail(p, "key '%.*s' has an array of invalid type %u", KEY_ARG(p), etype);
                return -EBADMSG;
        }
        /* Each element takes at least 8 (string length) or 12 (array header) bytes. */
        if (count > cursor_left(&p->c) / (etype == GGUF_STRING ? 8 : 12)) {
                gguf_fail(p, "key '%.*s' has an array of %llu %s, more than the remaining %zu bytes can hold",
                          KEY_ARG(p), (unsigned long long) count,
                          etype == GGUF_STRING ? "strings" : "arrays", cursor_left(&p->c));
                return -EBADMSG;
        }
        for (uint64_t i = 0; i < count; i++)
                if (gguf_value(p, etype, depth + 1) < 0)
                        return -EBADMSG;
        return 0;
}

static int gguf_kv(struct gguf_parser *p, struct gguf_names *keys, uint64_t index) {
        const uint8_t *k;
        uint64_t klen;
        uint32_t type;
        int r;

        p->key = (const uint8_t *) "";
        p->key_len = 0;
        if (gguf_string(p, "a key", &k, &klen) < 0)
                return -EBADMSG;
        if (klen == 0 || klen > GGUF_KEY_MAX) {
                gguf_fail(p, "key/value pair %llu has a key of %llu bytes (keys are 1 to %d bytes)",
                          (unsigned long long) index, (unsigned long long) klen, GGUF_KEY_MAX);
                return -EBADMSG;
        }
        p->key = k;
        p->key_len = (size_t) klen;
        r = gguf_names_add(keys, k, (size_t) klen);
        if (r < 0) {
                scan_finding(p->ctx, RULE_SCAN_ERROR, SEV_HIGH, "GGUF metadata could not be checked: out of memory");
                p->failed = true;
                return r;
        }
        if (r > 0) {
                gguf_fail(p, "the key '%.*s' appears twice", KEY_ARG(p));
                return -EBADMSG;
        }
        if (gguf_u32(p, &type) < 0) {
                gguf_fail(p, "file ends inside the type of key '%.*s'", KEY_ARG(p));
                return -EBADMSG;
        }
        if (key_is(p, "general.alignment")) {
                uint32_t a;
                if (type != GGUF_UINT32) {
                        gguf_fail(p, "general.alignment has type %u, not uint32", type);
                        return -EBADMSG;
                }
                if (gguf_u32(p, &a) < 0) {
                        gguf_fail(p, "file ends inside the value of general.alignment");
                        return -EBADMSG;
                }
                if (a == 0 || (a & (a - 1)) != 0) {
                        gguf_fail(p, "general.alignment %u is not a power of two", a);
                        return -EBADMSG;
                }
                p->alignment = a;
                return 0;
        }
        if (key_is(p, "general.license") && type == GGUF_STRING) {
                const uint8_t *s;
                uint64_t n;
                if (gguf_string(p, "the value of general.license", &s, &n) < 0)
                        return -EBADMSG;
                if (n > 0) {
                        p->ctx->report->has_license = true;
                        report_escape(p->ctx->report->license, sizeof(p->ctx->report->license), s, (size_t) n, NULL);
                }
                return 0;
        }
        return gguf_value(p, type, 0);
}

/* ceil(x / a) * a for a power of two a; false on overflow. */
static bool align_up(uint64_t x, uint64_t a, uint64_t *ret) {
        if (x > UINT64_MAX - (a - 1))
                return false;
        *ret = (x + a - 1) & ~(a - 1);
        return true;
}

struct gguf_tensor {
        const uint8_t *name;
        uint64_t name_len;
        uint64_t offset;
        uint64_t nbytes;
};

/* One tensor info: the checks of gguf_init_from_file_impl() in order, then its
 * offset against the running size of the data section (*expected). */
static int gguf_tensor_info(struct gguf_parser *p, struct gguf_names *names, uint64_t index,
                            uint64_t *expected, struct gguf_tensor *ret) {
        const uint8_t *name;
        uint64_t name_len, ne[GGML_MAX_DIMS] = { 1, 1, 1, 1 }, nelem = 1, offset, nbytes, padded;
        uint32_t n_dims, type;
        const struct ggml_type_info *t;
        int r;

        if (gguf_string(p, "a tensor name", &name, &name_len) < 0)
                return -EBADMSG;
        if (name_len >= GGML_MAX_NAME) {
                gguf_fail(p, "tensor %llu has a name of %llu bytes; ggml allows at most %d",
                          (unsigned long long) index, (unsigned long long) name_len, GGML_MAX_NAME - 1);
                return -EBADMSG;
        }
        r = gguf_names_add(names, name, (size_t) name_len);
        if (r < 0) {
                scan_finding(p->ctx, RULE_SCAN_ERROR, SEV_HIGH, "GGUF tensors could not be checked: out of memory");
                p->failed = true;
                return r;
        }
        if (r > 0) {
                gguf_fail(p, "two tensors are named '%.*s'", (int) name_len, (const char *) name);
                return -EBADMSG;
        }
        if (gguf_u32(p, &n_dims) < 0) {
                gguf_fail(p, "file ends inside tensor info '%.*s'", (int) name_len, (const char *) name);
                return -EBADMSG;
        }
        if (n_dims > GGML_MAX_DIMS) {
                gguf_fail(p, "tensor '%.*s' has %u dimensions; ggml allows at most %d",
                          (int) name_len, (const char *) name, n_dims, GGML_MAX_DIMS);
                return -EBADMSG;
        }
        for (uint32_t d = 0; d < n_dims; d++) {
                if (gguf_u64(p, &ne[d]) < 0) {
                        gguf_fail(p, "file ends inside tensor info '%.*s'", (int) name_len, (const char *) name);
                        return -EBADMSG;
                }
                if (ne[d] > INT64_MAX) {
                        gguf_fail(p, "tensor '%.*s' dimension %u is negative as ggml reads it (int64)",
                                  (int) name_len, (const char *) name, d);
                        return -EBADMSG;
                }
        }
        /* ggml's representability check: the element count stays below INT64_MAX. */
        if (ne[0] == 0 || ne[1] == 0 || ne[2] == 0 || ne[3] == 0)
                nelem = 0;
        else if ((uint64_t) INT64_MAX / ne[1] <= ne[0] || (uint64_t) INT64_MAX / ne[2] <= ne[0] * ne[1] ||
                 (uint64_t) INT64_MAX / ne[3] <= ne[0] * ne[1] * ne[2]) {
                gguf_fail(p, "tensor '%.*s' has shape [%llu, %llu, %llu, %llu]: its element count overflows int64",
                          (int) name_len, (const char *) name, (unsigned long long) ne[0],
                          (unsigned long long) ne[1], (unsigned long long) ne[2], (unsigned long long) ne[3]);
                return -EBADMSG;
        } else
                nelem = ne[0] * ne[1] * ne[2] * ne[3];
        if (gguf_u32(p, &type) < 0) {
                gguf_fail(p, "file ends inside tensor info '%.*s'", (int) name_len, (const char *) name);
                return -EBADMSG;
        }
        t = type < sizeof(ggml_types) / sizeof(ggml_types[0]) ? &ggml_types[type] : NULL;
        if (!t || t->block == 0) {
                gguf_fail(p, "tensor '%.*s' has unknown or removed ggml type %u",
                          (int) name_len, (const char *) name, type);
                return -EBADMSG;
        }
        if (ne[0] % t->block != 0) {
                gguf_fail(p, "tensor '%.*s' of type %s has rows of %llu elements, not a multiple of its %u-element block",
                          (int) name_len, (const char *) name, t->name, (unsigned long long) ne[0], t->block);
                return -EBADMSG;
        }
        if (nelem / t->block > UINT64_MAX / t->size) {
                gguf_fail(p, "tensor '%.*s': its size in bytes overflows 64 bits", (int) name_len, (const char *) name);
                return -EBADMSG;
        }
        nbytes = nelem / t->block * t->size;
        if (gguf_u64(p, &offset) < 0) {
                gguf_fail(p, "file ends inside tensor info '%.*s'", (int) name_len, (const char *) name);
                return -EBADMSG;
        }
        /* ggml requires the tensors in file order, each padded to the alignment. */
        if (offset != *expected) {
                gguf_fail(p, "tensor '%.*s' has data offset %llu, expected %llu (tensors follow each other, each padded to %llu bytes)",
                          (int) name_len, (const char *) name, (unsigned long long) offset,
                          (unsigned long long) *expected, (unsigned long long) p->alignment);
                return -EBADMSG;
        }
        if (!align_up(nbytes, p->alignment, &padded) || padded > UINT64_MAX - *expected) {
                gguf_fail(p, "tensor '%.*s': the data section size overflows 64 bits", (int) name_len, (const char *) name);
                return -EBADMSG;
        }
        *expected += padded;
        *ret = (struct gguf_tensor) { name, name_len, offset, nbytes };
        return 0;
}

enum mg_format gguf_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len) {
        struct gguf_parser p = { .ctx = ctx, .c = cursor_make(buf, len), .alignment = GGUF_DEFAULT_ALIGNMENT };
        struct gguf_names names = { 0 };
        struct gguf_tensor last = { 0 };
        uint32_t version;
        uint64_t n_tensors, n_kv, expected = 0, data_start;

        if (cursor_skip(&p.c, 4) < 0 || cursor_le32(&p.c, &version) < 0)
                return FMT_GGUF;   /* not sniffed as such */
        if ((version & 0xffff) == 0) {
                p.big_endian = true;
                version = __builtin_bswap32(version);
        }
        if (version < 2 || version > GGUF_VERSION_MAX) {
                gguf_fail(&p, "version %u is unsupported%s: llama.cpp reads versions 2 and 3", version,
                          version == 1 ? " (GGUFv1, with 32-bit counts, was dropped in 2023)" : "");
                return FMT_GGUF;
        }
        if (gguf_u64(&p, &n_tensors) < 0 || gguf_u64(&p, &n_kv) < 0) {
                gguf_fail(&p, "file ends inside the header (%zu bytes)", len);
                return FMT_GGUF;
        }
        if (n_kv > GGUF_KV_MAX || n_kv > cursor_left(&p.c) / GGUF_KV_MIN_BYTES) {
                gguf_fail(&p, "header claims %llu key/value pairs, but the %zu bytes that follow hold at most %zu",
                          (unsigned long long) n_kv, cursor_left(&p.c), cursor_left(&p.c) / GGUF_KV_MIN_BYTES);
                return FMT_GGUF;
        }
        if (n_tensors > GGUF_TENSORS_MAX || n_tensors > cursor_left(&p.c) / GGUF_TENSOR_MIN_BYTES) {
                gguf_fail(&p, "header claims %llu tensors, but the %zu bytes that follow hold at most %zu tensor infos",
                          (unsigned long long) n_tensors, cursor_left(&p.c), cursor_left(&p.c) / GGUF_TENSOR_MIN_BYTES);
                return FMT_GGUF;
        }
        for (uint64_t i = 0; i < n_kv; i++)
                if (gguf_kv(&p, &names, i) < 0)
                        goto out;
        gguf_names_clear(&names);
        for (uint64_t i = 0; i < n_tensors; i++)
                if (gguf_tensor_info(&p, &names, i, &expected, &last) < 0)
                        goto out;
        if (n_tensors == 0)
                goto out;
        if (!align_up(p.c.pos, p.alignment, &data_start) || data_start > len) {
                gguf_fail(&p, "data section would start past the end of the %zu-byte file (tensor infos end at byte %zu, aligned to %llu)",
                          len, p.c.pos, (unsigned long long) p.alignment);
                goto out;
        }
        if (last.offset > len - data_start || last.nbytes > len - data_start - last.offset)
                gguf_fail(&p, "tensor '%.*s' (%llu bytes at offset %llu of the data section, which starts at byte %llu) runs past the end of the %zu-byte file",
                          (int) last.name_len, (const char *) last.name, (unsigned long long) last.nbytes,
                          (unsigned long long) last.offset, (unsigned long long) data_start, len);
out:
        gguf_names_clear(&names);
        return FMT_GGUF;
}
