/* json.c — strict JSON for untrusted bytes: recursive descent bounded by
 * JSON_DEPTH_MAX, values and decoded strings in one arena. Never trusts a length
 * from the input; never reads past [buf, buf+len); never points into the input. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "text-codec.h"

/* Arena blocks: large enough that a safetensors header of a few thousand tensors
 * takes a handful of allocations. */
#define JSON_ARENA_BLOCK ((size_t) 64 << 10)

struct arena_block {
        struct arena_block *next;
        size_t used, size;
        _Alignas(max_align_t) unsigned char data[];
};

struct json_doc {
        struct arena_block *blocks;
        struct json_value *root;
};

struct parser {
        const uint8_t *buf;
        size_t len, pos;
        uint32_t flags;
        size_t nodes, max_nodes;
        struct json_doc *doc;
        char *err;
        size_t errsz;
        int error;
};

static void *arena_alloc(struct json_doc *doc, size_t n) {
        struct arena_block *b = doc->blocks;

        n = (n + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1);
        if (!b || b->size - b->used < n) {
                size_t size = n > JSON_ARENA_BLOCK ? n : JSON_ARENA_BLOCK;
                b = malloc(sizeof(*b) + size);
                if (!b)
                        return NULL;
                b->size = size;
                b->used = 0;
                b->next = doc->blocks;
                doc->blocks = b;
        }
        void *p = b->data + b->used;
        b->used += n;
        return p;
}

static int fail(struct parser *p, int error, const char *fmt, ...) {
        va_list ap;
        int n;

        if (p->error)
                return p->error;
        p->error = error;
        if (p->errsz) {
                n = snprintf(p->err, p->errsz, "%s at byte %zu: ", error == -E2BIG ? "JSON too large" : "invalid JSON", p->pos);
                if (n >= 0 && (size_t) n < p->errsz) {
                        va_start(ap, fmt);
                        vsnprintf(p->err + n, p->errsz - (size_t) n, fmt, ap);
                        va_end(ap);
                }
        }
        return error;
}

static void skip_ws(struct parser *p) {
        while (p->pos < p->len) {
                uint8_t c = p->buf[p->pos];
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
                        return;
                p->pos++;
        }
}

static bool literal(struct parser *p, const char *word) {
        size_t n = strlen(word);
        if (p->len - p->pos < n || memcmp(p->buf + p->pos, word, n) != 0)
                return false;
        p->pos += n;
        return true;
}

static struct json_value *new_value(struct parser *p, enum json_type type) {
        struct json_value *v;

        if (p->max_nodes && p->nodes >= p->max_nodes) {
                fail(p, -E2BIG, "more than %zu values", p->max_nodes);
                return NULL;
        }
        v = arena_alloc(p->doc, sizeof(*v));
        if (!v) {
                fail(p, -ENOMEM, "out of memory");
                return NULL;
        }
        memset(v, 0, sizeof(*v));
        v->type = type;
        p->nodes++;
        return v;
}

static int hex4(struct parser *p, uint32_t *ret) {
        uint32_t v = 0;

        if (p->len - p->pos < 4)
                return fail(p, -EBADMSG, "unfinished \\u escape");
        for (int i = 0; i < 4; i++) {
                int d = hex_digit_value(p->buf[p->pos + (size_t) i]);
                if (d < 0)
                        return fail(p, -EBADMSG, "bad hex digit in \\u escape");
                v = v << 4 | (uint32_t) d;
        }
        p->pos += 4;
        *ret = v;
        return 0;
}

/* Length in bytes of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t utf8_valid_len(const uint8_t *s, size_t n) {
        uint8_t c = s[0];
        size_t k;
        uint32_t cp;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                k = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
                k = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
                k = 3, cp = c & 0x07;
        else
                return 0;
        if (n < k + 1)
                return 0;
        for (size_t i = 1; i <= k; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return k + 1;
}

/* Parses a string at p->pos (the opening quote). The decoded text never exceeds
 * the raw length, so one allocation of raw length + 1 holds it. */
static int parse_string(struct parser *p, const char **ret, size_t *ret_len) {
        size_t start = ++p->pos, end = start;
        char *out, *o;

        /* Find the closing quote first, to size the buffer. */
        for (;;) {
                if (end >= p->len)
                        return fail(p, -EBADMSG, "unterminated string");
                uint8_t c = p->buf[end];
                if (c == '"')
                        break;
                end += c == '\\' && end + 1 < p->len ? 2 : 1;
        }
        out = arena_alloc(p->doc, end - start + 1);
        if (!out)
                return fail(p, -ENOMEM, "out of memory");
        o = out;
        while (p->pos < end) {
                uint8_t c = p->buf[p->pos];
                if (c < 0x20)
                        return fail(p, -EBADMSG, "control character 0x%02x in a string", c);
                if (c >= 0x80) {
                        size_t n = utf8_valid_len(p->buf + p->pos, end - p->pos);
                        if (n == 0)
                                return fail(p, -EBADMSG, "invalid UTF-8 in a string");
                        memcpy(o, p->buf + p->pos, n);
                        o += n;
                        p->pos += n;
                        continue;
                }
                if (c != '\\') {
                        *o++ = (char) c;
                        p->pos++;
                        continue;
                }
                p->pos++;
                c = p->buf[p->pos++];
                switch (c) {
                case '"': *o++ = '"'; break;
                case '\\': *o++ = '\\'; break;
                case '/': *o++ = '/'; break;
                case 'b': *o++ = '\b'; break;
                case 'f': *o++ = '\f'; break;
                case 'n': *o++ = '\n'; break;
                case 'r': *o++ = '\r'; break;
                case 't': *o++ = '\t'; break;
                case 'u': {
                        uint32_t cp, lo;
                        if (hex4(p, &cp) < 0)
                                return p->error;
                        if (cp >= 0xd800 && cp <= 0xdbff && end - p->pos >= 6 && p->buf[p->pos] == '\\' &&
                            p->buf[p->pos + 1] == 'u') {
                                size_t save = p->pos;
                                p->pos += 2;
                                if (hex4(p, &lo) < 0)
                                        return p->error;
                                if (lo >= 0xdc00 && lo <= 0xdfff)
                                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                else
                                        p->pos = save;   /* not a pair: the high half stands alone */
                        }
                        if (cp >= 0xd800 && cp <= 0xdfff) {
                                if (!(p->flags & JSON_PYTHON))
                                        return fail(p, -EBADMSG, "lone surrogate \\u%04x", cp);
                                cp = 0xfffd;
                        }
                        /* Six escaped bytes make at most four: the buffer bound holds. */
                        o += utf8_encode(cp, (uint8_t *) o);
                        break;
                }
                default:
                        p->pos--;
                        return fail(p, -EBADMSG, "bad escape \\%c", c >= 0x20 && c < 0x7f ? c : '?');
                }
                if (p->pos > end)
                        return fail(p, -EBADMSG, "unterminated string");
        }
        *o = '\0';
        p->pos = end + 1;
        *ret = out;
        *ret_len = (size_t) (o - out);
        return 0;
}

static int parse_number(struct parser *p, struct json_value *v) {
        size_t start = p->pos;
        const uint8_t *b = p->buf;
        char *out;

        if (p->pos < p->len && b[p->pos] == '-')
                p->pos++;
        if ((p->flags & JSON_PYTHON) && literal(p, "Infinity"))
                goto done;
        if (p->pos >= p->len || b[p->pos] < '0' || b[p->pos] > '9')
                return fail(p, -EBADMSG, "expected a value");
        if (b[p->pos] == '0')
                p->pos++;
        else
                while (p->pos < p->len && b[p->pos] >= '0' && b[p->pos] <= '9')
                        p->pos++;
        if (p->pos < p->len && b[p->pos] == '.') {
                p->pos++;
                if (p->pos >= p->len || b[p->pos] < '0' || b[p->pos] > '9')
                        return fail(p, -EBADMSG, "expected a digit after '.'");
                while (p->pos < p->len && b[p->pos] >= '0' && b[p->pos] <= '9')
                        p->pos++;
        }
        if (p->pos < p->len && (b[p->pos] == 'e' || b[p->pos] == 'E')) {
                p->pos++;
                if (p->pos < p->len && (b[p->pos] == '+' || b[p->pos] == '-'))
                        p->pos++;
                if (p->pos >= p->len || b[p->pos] < '0' || b[p->pos] > '9')
                        return fail(p, -EBADMSG, "expected a digit in an exponent");
                while (p->pos < p->len && b[p->pos] >= '0' && b[p->pos] <= '9')
                        p->pos++;
        }
done:
        out = arena_alloc(p->doc, p->pos - start + 1);
        if (!out)
                return fail(p, -ENOMEM, "out of memory");
        memcpy(out, b + start, p->pos - start);
        out[p->pos - start] = '\0';
        v->str = out;
        v->len = p->pos - start;
        return 0;
}

static struct json_value *parse_value(struct parser *p, unsigned depth);

static int parse_container(struct parser *p, struct json_value *v, unsigned depth) {
        bool object = v->type == JSON_OBJECT;
        uint8_t close = object ? '}' : ']';
        struct json_value **tail = &v->child;

        p->pos++;
        skip_ws(p);
        if (p->pos < p->len && p->buf[p->pos] == close) {
                p->pos++;
                return 0;
        }
        for (;;) {
                const char *key = NULL;
                size_t key_len = 0;
                struct json_value *c;

                if (object) {
                        skip_ws(p);
                        if (p->pos >= p->len || p->buf[p->pos] != '"')
                                return fail(p, -EBADMSG, "expected a string key");
                        if (parse_string(p, &key, &key_len) < 0)
                                return p->error;
                        skip_ws(p);
                        if (p->pos >= p->len || p->buf[p->pos] != ':')
                                return fail(p, -EBADMSG, "expected ':' after a key");
                        p->pos++;
                }
                c = parse_value(p, depth + 1);
                if (!c)
                        return p->error;
                c->key = key;
                c->key_len = key_len;
                *tail = c;
                tail = &c->next;
                v->n++;
                skip_ws(p);
                if (p->pos >= p->len)
                        return fail(p, -EBADMSG, "unterminated %s", object ? "object" : "array");
                if (p->buf[p->pos] == ',') {
                        p->pos++;
                        continue;
                }
                if (p->buf[p->pos] == close) {
                        p->pos++;
                        return 0;
                }
                return fail(p, -EBADMSG, "expected ',' or '%c'", close);
        }
}

static struct json_value *parse_value(struct parser *p, unsigned depth) {
        struct json_value *v;
        uint8_t c;

        if (depth > JSON_DEPTH_MAX) {
                fail(p, -E2BIG, "nested more than %d levels deep", JSON_DEPTH_MAX);
                return NULL;
        }
        skip_ws(p);
        if (p->pos >= p->len) {
                fail(p, -EBADMSG, "expected a value, found the end");
                return NULL;
        }
        c = p->buf[p->pos];
        switch (c) {
        case '{':
        case '[':
                v = new_value(p, c == '{' ? JSON_OBJECT : JSON_ARRAY);
                if (!v || parse_container(p, v, depth) < 0)
                        return NULL;
                return v;
        case '"':
                v = new_value(p, JSON_STRING);
                if (!v || parse_string(p, &v->str, &v->len) < 0)
                        return NULL;
                return v;
        case 't':
        case 'f':
        case 'n':
                if (literal(p, "true"))
                        return new_value(p, JSON_TRUE);
                if (literal(p, "false"))
                        return new_value(p, JSON_FALSE);
                if (literal(p, "null"))
                        return new_value(p, JSON_NULL);
                break;
        case 'N':
                if ((p->flags & JSON_PYTHON) && p->len - p->pos >= 3 && memcmp(p->buf + p->pos, "NaN", 3) == 0) {
                        v = new_value(p, JSON_NUMBER);
                        if (!v)
                                return NULL;
                        p->pos += 3;
                        v->str = "NaN";
                        v->len = 3;
                        return v;
                }
                break;
        default:
                if (c == '-' || (c >= '0' && c <= '9') || c == 'I') {
                        if (c == 'I' && !(p->flags & JSON_PYTHON))
                                break;
                        v = new_value(p, JSON_NUMBER);
                        if (!v || parse_number(p, v) < 0)
                                return NULL;
                        return v;
                }
                break;
        }
        fail(p, -EBADMSG, "expected a value");
        return NULL;
}

int json_parse(const uint8_t *buf, size_t len, uint32_t flags, size_t max_nodes, struct json_doc **ret, char *err,
               size_t errsz) {
        struct parser p = {
                .buf = buf, .len = len, .flags = flags, .max_nodes = max_nodes, .err = err, .errsz = errsz,
        };
        struct json_value *root;

        if (errsz)
                err[0] = '\0';
        p.doc = calloc(1, sizeof(*p.doc));
        if (!p.doc)
                return -ENOMEM;
        root = parse_value(&p, 0);
        if (root) {
                skip_ws(&p);
                if (p.pos != p.len)
                        fail(&p, -EBADMSG, "extra data after the value");
        }
        if (!root || p.error) {
                int r = p.error ? p.error : -EBADMSG;
                json_free(p.doc);
                return r;
        }
        p.doc->root = root;
        *ret = p.doc;
        return 0;
}

void json_free(struct json_doc *doc) {
        if (!doc)
                return;
        for (struct arena_block *b = doc->blocks, *next; b; b = next) {
                next = b->next;
                free(b);
        }
        free(doc);
}

const struct json_value *json_root(const struct json_doc *doc) {
        return doc->root;
}

const struct json_value *json_get(const struct json_value *v, const char *key) {
        const struct json_value *found = NULL;
        size_t n = strlen(key);

        if (!v || v->type != JSON_OBJECT)
                return NULL;
        for (const struct json_value *c = v->child; c; c = c->next)
                if (c->key_len == n && memcmp(c->key, key, n) == 0)
                        found = c;
        return found;
}

const char *json_get_string(const struct json_value *v, const char *key) {
        const struct json_value *m = json_get(v, key);
        return m && m->type == JSON_STRING ? m->str : NULL;
}

static int key_compare(const void *a, const void *b) {
        const struct json_value *x = *(const struct json_value *const *) a, *y = *(const struct json_value *const *) b;
        size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
        int c = memcmp(x->key, y->key, n);
        return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

bool json_has_duplicate_key(const struct json_value *v, const char **ret_key) {
        const struct json_value **sorted;
        size_t i = 0;
        bool dup = false;

        if (!v || v->type != JSON_OBJECT || v->n < 2)
                return false;
        sorted = malloc(v->n * sizeof(*sorted));
        if (!sorted) {
                /* Cannot tell: quadratic fallback rather than a wrong "no". */
                for (const struct json_value *a = v->child; a && !dup; a = a->next)
                        for (const struct json_value *b = a->next; b; b = b->next)
                                if (a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0) {
                                        if (ret_key)
                                                *ret_key = a->key;
                                        dup = true;
                                        break;
                                }
                return dup;
        }
        for (const struct json_value *c = v->child; c; c = c->next)
                sorted[i++] = c;
        qsort(sorted, i, sizeof(*sorted), key_compare);
        for (size_t k = 1; k < i; k++)
                if (key_compare(&sorted[k - 1], &sorted[k]) == 0) {
                        if (ret_key)
                                *ret_key = sorted[k]->key;
                        dup = true;
                        break;
                }
        free(sorted);
        return dup;
}

int json_u64(const struct json_value *v, uint64_t *ret) {
        uint64_t n = 0;

        if (!v || v->type != JSON_NUMBER || v->len == 0)
                return -EINVAL;
        for (size_t i = 0; i < v->len; i++) {
                char c = v->str[i];
                if (c < '0' || c > '9')
                        return -EINVAL;
                if (n > (UINT64_MAX - (uint64_t) (c - '0')) / 10)
                        return -ERANGE;
                n = n * 10 + (uint64_t) (c - '0');
        }
        *ret = n;
        return 0;
}
