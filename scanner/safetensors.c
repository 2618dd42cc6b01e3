/* safetensors.c — checks a safetensors header the way the reference Rust crate does
 * (length, UTF-8, JSON, dtypes, shapes, offsets covering the data exactly) and
 * reads __metadata__'s license. Never reads tensor data: only the first 8 + N bytes
 * of the mapping are touched, however large the file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cursor.h"
#include "json.h"
#include "pickle.h"
#include "safetensors.h"

/* JSON values in one header: a tensor takes about ten (object, dtype, shape and its
 * dimensions, data_offsets and its pair), so this admits ~400k tensors in one file,
 * far above any real checkpoint shard, and keeps the tree well inside the worker's
 * memory limit. */
#define ST_JSON_NODES_MAX 4000000

/* Tensor names are quoted in messages up to this many bytes. */
#define ST_NAME_QUOTE 80

struct st_dtype {
        const char *name;
        unsigned bits;
};

/* Dtype::bitsize() of the reference crate (0.6 and later, with the FNUZ float8
 * variants of 0.8): every dtype a current loader accepts. */
static const struct st_dtype st_dtypes[] = {
        { "BOOL", 8 },
        { "F4", 4 },
        { "F6_E2M3", 6 },
        { "F6_E3M2", 6 },
        { "U8", 8 },
        { "I8", 8 },
        { "F8_E5M2", 8 },
        { "F8_E4M3", 8 },
        { "F8_E8M0", 8 },
        { "F8_E4M3FNUZ", 8 },
        { "F8_E5M2FNUZ", 8 },
        { "I16", 16 },
        { "U16", 16 },
        { "F16", 16 },
        { "BF16", 16 },
        { "I32", 32 },
        { "U32", 32 },
        { "F32", 32 },
        { "C64", 64 },
        { "F64", 64 },
        { "I64", 64 },
        { "U64", 64 },
};

struct st_tensor {
        const char *name;
        size_t name_len;
        uint64_t begin, end;
};

static bool is_json_space(uint8_t c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool safetensors_sniff(const uint8_t *buf, size_t len) {
        struct cursor c = cursor_make(buf, len);
        uint64_t n;

        if (cursor_le64(&c, &n) < 0 || n < 2 || n >= SAFETENSORS_SNIFF_LEN_LIMIT)
                return false;
        for (uint64_t i = 0; i < n; i++) {
                uint8_t ch;
                if (cursor_u8(&c, &ch) < 0)
                        return false;
                if (!is_json_space(ch))
                        return ch == '{';
        }
        return false;
}

/* "8 MB", "134 bytes": sizes for messages, decimal units as file managers show. */
static const char *size_words(uint64_t n, char *buf, size_t bufsz) {
        if (n >= 1000000000)
                snprintf(buf, bufsz, "%llu GB", (unsigned long long) ((n + 500000000) / 1000000000));
        else if (n >= 1000000)
                snprintf(buf, bufsz, "%llu MB", (unsigned long long) ((n + 500000) / 1000000));
        else if (n >= 10000)
                snprintf(buf, bufsz, "%llu kB", (unsigned long long) ((n + 500) / 1000));
        else
                snprintf(buf, bufsz, "%llu-byte", (unsigned long long) n);
        return buf;
}

/* Offset of the first byte that breaks UTF-8 as Rust's str::from_utf8 reads it (no
 * overlong forms, no surrogates, nothing above U+10FFFF), or len when it is valid. */
static size_t utf8_invalid_at(const uint8_t *s, size_t len) {
        size_t i = 0;

        while (i < len) {
                uint8_t c = s[i];
                size_t k;
                uint8_t lo = 0x80, hi = 0xbf;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        k = 1;
                else if (c >= 0xe0 && c <= 0xef) {
                        k = 2;
                        if (c == 0xe0)
                                lo = 0xa0;
                        else if (c == 0xed)
                                hi = 0x9f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        k = 3;
                        if (c == 0xf0)
                                lo = 0x90;
                        else if (c == 0xf4)
                                hi = 0x8f;
                } else
                        return i;
                if (len - i <= k)
                        return i;
                if (s[i + 1] < lo || s[i + 1] > hi)
                        return i;
                for (size_t j = 2; j <= k; j++)
                        if ((s[i + j] & 0xc0) != 0x80)
                                return i;
                i += k + 1;
        }
        return len;
}

static bool key_is(const struct json_value *v, const char *key) {
        return v->key && v->key_len == strlen(key) && memcmp(v->key, key, v->key_len) == 0;
}

static const struct st_dtype *st_dtype_find(const struct json_value *v) {
        if (!v || v->type != JSON_STRING)
                return NULL;
        for (size_t i = 0; i < sizeof(st_dtypes) / sizeof(st_dtypes[0]); i++)
                if (v->len == strlen(st_dtypes[i].name) && memcmp(v->str, st_dtypes[i].name, v->len) == 0)
                        return &st_dtypes[i];
        return NULL;
}

/* The license named in __metadata__: "license", else the same key in another case
 * ("License", "LICENSE": the metadata is free-form and both are written), else
 * "modelspec.license" (Stability AI's ModelSpec, which many safetensors carry). */
static const struct json_value *st_license(const struct json_value *meta) {
        const struct json_value *v = json_get(meta, "license");

        if (v && v->type == JSON_STRING)
                return v;
        for (const struct json_value *m = meta->child; m; m = m->next)
                if (m->type == JSON_STRING && m->key_len == 7 && strncasecmp(m->key, "license", 7) == 0)
                        return m;
        v = json_get(meta, "modelspec.license");
        return v && v->type == JSON_STRING ? v : NULL;
}

static int st_metadata(struct scan_ctx *ctx, const struct json_value *meta) {
        const struct json_value *lic;
        const char *dup;

        if (meta->type == JSON_NULL)
                return 0;   /* Option<HashMap>: null is None */
        if (meta->type != JSON_OBJECT) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "safetensors __metadata__ is not an object of strings");
                return -EBADMSG;
        }
        for (const struct json_value *m = meta->child; m; m = m->next)
                if (m->type != JSON_STRING) {
                        scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                                     "safetensors __metadata__ value '%.*s' is not a string (the format allows only string -> string)",
                                     ST_NAME_QUOTE, m->key);
                        return -EBADMSG;
                }
        if (json_has_duplicate_key(meta, &dup)) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "safetensors __metadata__ has the key '%.*s' twice", ST_NAME_QUOTE, dup);
                return -EBADMSG;
        }
        lic = st_license(meta);
        if (lic && lic->len > 0) {
                ctx->report->has_license = true;
                report_escape(ctx->report->license, sizeof(ctx->report->license),
                              (const uint8_t *) lic->str, lic->len, NULL);
        }
        return 0;
}

/* One tensor entry: dtype, shape and data_offsets as TensorInfo deserializes them,
 * and the byte count the dtype and shape need. */
static int st_tensor_check(struct scan_ctx *ctx, const struct json_value *t, struct st_tensor *ret) {
        const struct json_value *dtype, *shape, *offs;
        const struct st_dtype *dt;
        const char *name = t->key, *dup;
        uint64_t nelem = 1, nbits, b, e;
        bool overflow = false;

        if (t->type != JSON_OBJECT) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "safetensors tensor '%.*s' is not an object",
                             ST_NAME_QUOTE, name);
                return -EBADMSG;
        }
        if (json_has_duplicate_key(t, &dup)) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "safetensors tensor '%.*s' has the field '%.*s' twice",
                             ST_NAME_QUOTE, name, ST_NAME_QUOTE, dup);
                return -EBADMSG;
        }
        dtype = json_get(t, "dtype");
        shape = json_get(t, "shape");
        offs = json_get(t, "data_offsets");
        if (!dtype || !shape || !offs) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "safetensors tensor '%.*s' has no %s",
                             ST_NAME_QUOTE, name, !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
                return -EBADMSG;
        }
        dt = st_dtype_find(dtype);
        if (!dt) {
                if (dtype->type == JSON_STRING)
                        scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "safetensors tensor '%.*s' has unknown dtype '%.*s'",
                                     ST_NAME_QUOTE, name, ST_NAME_QUOTE, dtype->str);
                else
                        scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "safetensors tensor '%.*s' has a dtype that is not a string",
                                     ST_NAME_QUOTE, name);
                return -EBADMSG;
        }
        if (shape->type != JSON_ARRAY) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "safetensors tensor '%.*s' has a shape that is not a list",
                             ST_NAME_QUOTE, name);
                return -EBADMSG;
        }
        for (const struct json_value *d = shape->child; d; d = d->next) {
                uint64_t dim;
                if (d->type != JSON_NUMBER || json_u64(d, &dim) < 0) {
                        scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                                     "safetensors tensor '%.*s' has a shape entry that is not a non-negative 64-bit integer",
                                     ST_NAME_QUOTE, name);
                        return -EBADMSG;
                }
                if (dim != 0 && nelem > UINT64_MAX / dim)
                        overflow = true;
                else
                        nelem *= dim;
        }
        if (offs->type != JSON_ARRAY || offs->n != 2 || offs->child->type != JSON_NUMBER ||
            offs->child->next->type != JSON_NUMBER || json_u64(offs->child, &b) < 0 ||
            json_u64(offs->child->next, &e) < 0) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "safetensors tensor '%.*s' has data_offsets that are not two non-negative 64-bit integers",
                             ST_NAME_QUOTE, name);
                return -EBADMSG;
        }
        /* A zero dimension makes the product 0 whatever came before (try_fold with
         * checked_mul would have failed first on the overflow, so report it). */
        if (overflow || nelem > UINT64_MAX / dt->bits) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "safetensors tensor '%.*s': the element count of its shape overflows 64 bits",
                             ST_NAME_QUOTE, name);
                return -EBADMSG;
        }
        nbits = nelem * dt->bits;
        if (nbits % 8 != 0) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "safetensors tensor '%.*s': %llu elements of %s (%u bits) do not fill whole bytes",
                             ST_NAME_QUOTE, name, (unsigned long long) nelem, dt->name, dt->bits);
                return -EBADMSG;
        }
        if (e < b) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "safetensors tensor '%.*s' has data_offsets [%llu, %llu]: the end is before the start",
                             ST_NAME_QUOTE, name, (unsigned long long) b, (unsigned long long) e);
                return -EBADMSG;
        }
        if (e - b != nbits / 8) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "safetensors tensor '%.*s' is %s with %llu elements = %llu bytes, but its data_offsets [%llu, %llu] span %llu bytes",
                             ST_NAME_QUOTE, name, dt->name, (unsigned long long) nelem, (unsigned long long) (nbits / 8),
                             (unsigned long long) b, (unsigned long long) e, (unsigned long long) (e - b));
                return -EBADMSG;
        }
        ret->name = name;
        ret->name_len = t->key_len;
        ret->begin = b;
        ret->end = e;
        return 0;
}

static int st_tensor_cmp(const void *a, const void *b) {
        const struct st_tensor *x = a, *y = b;

        if (x->begin != y->begin)
                return x->begin < y->begin ? -1 : 1;
        if (x->end != y->end)
                return x->end < y->end ? -1 : 1;
        return 0;
}

/* Metadata::validate(): sorted by offsets, each tensor starts where the previous
 * ended, the first at 0, and the last ends exactly at the end of the file. */
static void st_layout_check(struct scan_ctx *ctx, struct st_tensor *t, size_t n, uint64_t data_len) {
        uint64_t start = 0;

        if (n > 0)
                qsort(t, n, sizeof(*t), st_tensor_cmp);
        for (size_t i = 0; i < n; i++) {
                if (t[i].begin > start && i == 0) {
                        scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                                     "safetensors tensor '%.*s' is the first in the data but starts at byte %llu, not 0",
                                     ST_NAME_QUOTE, t[i].name, (unsigned long long) t[i].begin);
                        return;
                }
                if (t[i].begin > start) {
                        scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                                     "safetensors tensor '%.*s' starts at byte %llu but the previous tensor '%.*s' ends at %llu: a gap of %llu bytes",
                                     ST_NAME_QUOTE, t[i].name, (unsigned long long) t[i].begin, ST_NAME_QUOTE, t[i - 1].name,
                                     (unsigned long long) start, (unsigned long long) (t[i].begin - start));
                        return;
                }
                if (t[i].begin < start) {
                        scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                                     "safetensors tensors '%.*s' and '%.*s' overlap: one starts at byte %llu, inside the other, which ends at %llu",
                                     ST_NAME_QUOTE, t[i].name, ST_NAME_QUOTE, t[i - 1].name,
                                     (unsigned long long) t[i].begin, (unsigned long long) start);
                        return;
                }
                start = t[i].end;
        }
        if (start > data_len)
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "safetensors tensor '%.*s' ends at byte %llu of the data, but the file holds only %llu bytes after the header",
                             ST_NAME_QUOTE, t[n - 1].name, (unsigned long long) start, (unsigned long long) data_len);
        else if (start < data_len)
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "safetensors tensors cover %llu bytes but %llu bytes follow the header: %llu bytes belong to no tensor",
                             (unsigned long long) start, (unsigned long long) data_len, (unsigned long long) (data_len - start));
}

enum mg_format safetensors_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len) {
        struct cursor c = cursor_make(buf, len);
        struct json_doc *doc = NULL;
        const struct json_value *root;
        struct st_tensor *tensors = NULL;
        const uint8_t *header;
        char err[160], w1[32], w2[32];
        const char *dup;
        uint64_t n;
        size_t bad, nt = 0, i = 0;
        int r;

        if (cursor_le64(&c, &n) < 0)
                return FMT_SAFETENSORS;   /* not sniffed as such */
        if (n > SAFETENSORS_HEADER_MAX) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "header too large: %s (%llu bytes) header, over the %d-byte limit of safetensors, in a %llu-byte file",
                             size_words(n, w1, sizeof(w1)), (unsigned long long) n, SAFETENSORS_HEADER_MAX,
                             (unsigned long long) len);
                return FMT_SAFETENSORS;
        }
        if (cursor_take(&c, (size_t) n, &header) < 0) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "header too large: %s header in a %s file",
                             size_words(n, w1, sizeof(w1)), size_words(len, w2, sizeof(w2)));
                return FMT_SAFETENSORS;
        }
        bad = utf8_invalid_at(header, (size_t) n);
        if (bad < n) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "safetensors header is not valid UTF-8 (byte %zu of the header)", bad);
                return FMT_SAFETENSORS;
        }
        r = json_parse(header, (size_t) n, 0, ST_JSON_NODES_MAX, &doc, err, sizeof(err));
        if (r < 0) {
                if (r == -EBADMSG)
                        scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "safetensors header is not valid JSON: %s", err);
                else if (r == -E2BIG)
                        scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "safetensors header is beyond the scanner's limits: %s", err);
                else
                        scan_finding(ctx, RULE_SCAN_ERROR, SEV_HIGH, "safetensors header could not be read: out of memory");
                return FMT_SAFETENSORS;
        }
        root = json_root(doc);
        if (root->type != JSON_OBJECT) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "safetensors header is JSON but not an object");
                goto out;
        }
        if (json_has_duplicate_key(root, &dup)) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "safetensors header names '%.*s' twice: readers disagree on which entry counts",
                             ST_NAME_QUOTE, dup);
                goto out;
        }
        for (const struct json_value *m = root->child; m; m = m->next)
                if (!key_is(m, "__metadata__"))
                        nt++;
        if (nt > 0) {
                tensors = calloc(nt, sizeof(*tensors));
                if (!tensors) {
                        scan_finding(ctx, RULE_SCAN_ERROR, SEV_HIGH, "safetensors header could not be checked: out of memory");
                        goto out;
                }
        }
        for (const struct json_value *m = root->child; m; m = m->next) {
                if (key_is(m, "__metadata__")) {
                        if (st_metadata(ctx, m) < 0)
                                goto out;
                        continue;
                }
                if (st_tensor_check(ctx, m, &tensors[i]) < 0)
                        goto out;
                i++;
        }
        st_layout_check(ctx, tensors, nt, (uint64_t) cursor_left(&c));
        /* One file, two readings: the length's first byte may be a pickle opcode
         * whose argument swallows the header, and torch.load's legacy path or
         * pickle.load would run what follows in the tensor data. */
        if (pickle_sniff(buf, len)) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "safetensors file is also a pickle stream; scanned as one too");
                pickle_scan_all(ctx, buf, len);
        }
out:
        free(tensors);
        json_free(doc);
        return FMT_SAFETENSORS;
}
