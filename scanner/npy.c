/* npy.c — reads a .npy header as numpy.lib.format does, with a small literal parser
 * instead of eval. Never interprets array data: an object array's data goes to the
 * pickle VM, a numeric array's data is only measured. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "npy.h"
#include "text-codec.h"
#include "pickle.h"

/* numpy's _MAX_HEADER_SIZE: read_array() refuses a longer header unless
 * allow_pickle=True, which lifts the cap. */
#define NPY_HEADER_NUMPY_MAX 10000

/* Nesting of tuples/lists/dicts in a header: a structured dtype nested a few
 * levels deep needs < 10; the cap keeps the recursive parser's stack small. */
#define NPY_LITERAL_DEPTH_MAX 32

enum lit_type {
        LIT_DICT,
        LIT_LIST,
        LIT_TUPLE,
        LIT_STR,
        LIT_INT,
        LIT_BOOL,
        LIT_NONE,
};

#define LIT_NIL UINT32_MAX

struct lit {
        uint8_t type;
        bool big;               /* LIT_INT outside int64 */
        int64_t i;              /* LIT_INT, LIT_BOOL */
        uint32_t first, last;   /* children, LIT_NIL when none */
        uint32_t next;          /* sibling */
        uint32_t n;             /* number of children */
        const char *s;          /* LIT_STR, decoded, inside the pool */
        size_t slen;
};

struct lit_parser {
        struct cursor c;
        struct lit *nodes;
        size_t n_nodes, cap;
        char *pool;             /* decoded string bytes; never longer than the input */
        size_t pool_used, pool_cap;
        unsigned depth;
        bool py2_long;          /* accept the 'L' suffix numpy's _filter_header drops */
        const char *error;
};

/* A structured or simple dtype as far as the scan needs it. */
struct dtype_info {
        uint64_t itemsize;
        bool object;            /* holds Python objects: the data is a pickle */
        bool unknown;           /* not understood: its size cannot be checked */
};

static int lit_peek(const struct lit_parser *p) {
        struct cursor t = p->c;
        uint8_t ch;

        if (cursor_u8(&t, &ch) < 0)
                return -1;
        return ch;
}

static int lit_peek2(const struct lit_parser *p) {
        struct cursor t = p->c;
        uint8_t ch;

        if (cursor_skip(&t, 1) < 0 || cursor_u8(&t, &ch) < 0)
                return -1;
        return ch;
}

static void lit_skip_ws(struct lit_parser *p) {
        for (;;) {
                int ch = lit_peek(p);
                if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r' && ch != '\f' && ch != '\v')
                        return;
                (void) cursor_skip(&p->c, 1);
        }
}

static bool is_ident(int ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
}

static int lit_fail(struct lit_parser *p, const char *why) {
        if (!p->error)
                p->error = why;
        return -EBADMSG;
}

static int lit_new(struct lit_parser *p, enum lit_type type, uint32_t *ret) {
        if (p->n_nodes >= p->cap)
                return lit_fail(p, "too many values");
        struct lit *l = &p->nodes[p->n_nodes];
        memset(l, 0, sizeof(*l));
        l->type = (uint8_t) type;
        l->first = l->last = l->next = LIT_NIL;
        *ret = (uint32_t) p->n_nodes++;
        return 0;
}

static void lit_append(struct lit_parser *p, uint32_t parent, uint32_t child) {
        struct lit *pa = &p->nodes[parent];

        if (pa->last == LIT_NIL)
                pa->first = child;
        else
                p->nodes[pa->last].next = child;
        pa->last = child;
        pa->n++;
}

static void pool_put(struct lit_parser *p, const uint8_t *s, size_t n) {
        /* The pool is as long as the input and decoding never grows text. */
        memcpy(p->pool + p->pool_used, s, n);
        p->pool_used += n;
}

static void pool_put_utf8(struct lit_parser *p, uint32_t cp) {
        uint8_t b[4];
        pool_put(p, b, utf8_encode(cp, b));
}

/* One quoted piece: the opening quote is at the cursor. Every escape is shorter
 * than or as long as what it decodes to in UTF-8 except \u/\U, whose 6/10 source
 * bytes decode to at most 4: the pool never overflows. */
static int lit_string_piece(struct lit_parser *p, bool raw) {
        uint8_t q, ch;

        (void) cursor_u8(&p->c, &q);
        if (lit_peek(p) == q && lit_peek2(p) == q)
                return lit_fail(p, "triple-quoted string");
        for (;;) {
                if (cursor_u8(&p->c, &ch) < 0)
                        return lit_fail(p, "unterminated string");
                if (ch == q)
                        return 0;
                if (ch == '\n')
                        return lit_fail(p, "newline in string");
                if (ch != '\\') {
                        pool_put(p, &ch, 1);
                        continue;
                }
                if (cursor_u8(&p->c, &ch) < 0)
                        return lit_fail(p, "unterminated string");
                if (raw) {
                        uint8_t two[2] = { '\\', ch };
                        pool_put(p, two, 2);
                        continue;
                }
                switch (ch) {
                case '\n': break;
                case '\\': case '\'': case '"': pool_put(p, &ch, 1); break;
                case 'n': pool_put_utf8(p, '\n'); break;
                case 'r': pool_put_utf8(p, '\r'); break;
                case 't': pool_put_utf8(p, '\t'); break;
                case 'a': pool_put_utf8(p, '\a'); break;
                case 'b': pool_put_utf8(p, '\b'); break;
                case 'f': pool_put_utf8(p, '\f'); break;
                case 'v': pool_put_utf8(p, '\v'); break;
                case 'x': case 'u': case 'U': {
                        unsigned digits = ch == 'x' ? 2 : ch == 'u' ? 4 : 8;
                        uint32_t cp = 0;
                        for (unsigned k = 0; k < digits; k++) {
                                uint8_t d;
                                if (cursor_u8(&p->c, &d) < 0 || hex_digit_value(d) < 0)
                                        return lit_fail(p, "bad escape in string");
                                cp = cp << 4 | (uint32_t) hex_digit_value(d);
                        }
                        if (cp > 0x10ffff)
                                return lit_fail(p, "bad escape in string");
                        pool_put_utf8(p, cp);
                        break;
                }
                case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
                        uint32_t cp = (uint32_t) (ch - '0');
                        for (unsigned k = 1; k < 3; k++) {
                                int d = lit_peek(p);
                                if (d < '0' || d > '7')
                                        break;
                                (void) cursor_skip(&p->c, 1);
                                cp = cp * 8 + (uint32_t) (d - '0');
                        }
                        pool_put_utf8(p, cp);
                        break;
                }
                case 'N':
                        return lit_fail(p, "named escape in string");
                default: {
                        /* Python keeps an unknown escape as written. */
                        uint8_t two[2] = { '\\', ch };
                        pool_put(p, two, 2);
                        break;
                }
                }
        }
}

/* A string, with adjacent literals concatenated as the Python parser does. */
static int lit_string(struct lit_parser *p, uint32_t *ret) {
        size_t start = p->pool_used;
        uint32_t id;
        int r;

        r = lit_new(p, LIT_STR, &id);
        if (r < 0)
                return r;
        for (;;) {
                int ch = lit_peek(p);
                bool raw = false;

                if (ch == 'u' || ch == 'U' || ch == 'r' || ch == 'R') {
                        raw = ch == 'r' || ch == 'R';
                        (void) cursor_skip(&p->c, 1);
                        ch = lit_peek(p);
                }
                if (ch != '\'' && ch != '"')
                        return lit_fail(p, "expected a string");
                r = lit_string_piece(p, raw);
                if (r < 0)
                        return r;
                lit_skip_ws(p);
                ch = lit_peek(p);
                if (ch != '\'' && ch != '"' &&
                    !((ch == 'u' || ch == 'U' || ch == 'r' || ch == 'R') &&
                      (lit_peek2(p) == '\'' || lit_peek2(p) == '"')))
                        break;
        }
        p->nodes[id].s = p->pool + start;
        p->nodes[id].slen = p->pool_used - start;
        *ret = id;
        return 0;
}

static int lit_int(struct lit_parser *p, uint32_t *ret) {
        bool neg = false, big = false, any = false;
        unsigned base = 10;
        uint64_t v = 0;
        uint32_t id;
        int ch, r;

        while ((ch = lit_peek(p)) == '-' || ch == '+') {
                if (ch == '-')
                        neg = !neg;
                (void) cursor_skip(&p->c, 1);
                lit_skip_ws(p);
        }
        if (lit_peek(p) == '0') {
                int x = lit_peek2(p);
                if (x == 'x' || x == 'X')
                        base = 16;
                else if (x == 'o' || x == 'O')
                        base = 8;
                else if (x == 'b' || x == 'B')
                        base = 2;
                if (base != 10)
                        (void) cursor_skip(&p->c, 2);
        }
        for (;;) {
                int d;
                ch = lit_peek(p);
                if (ch == '_' && any) {
                        (void) cursor_skip(&p->c, 1);
                        continue;
                }
                d = hex_digit_value(ch);
                if (d < 0 || (unsigned) d >= base)
                        break;
                (void) cursor_skip(&p->c, 1);
                any = true;
                if (v > (UINT64_MAX - (unsigned) d) / base)
                        big = true;
                else
                        v = v * base + (unsigned) d;
        }
        if (!any)
                return lit_fail(p, "expected a number");
        ch = lit_peek(p);
        if (ch == '.' || ch == 'e' || ch == 'E' || ch == 'j' || ch == 'J')
                return lit_fail(p, "not an integer");
        if (p->py2_long) {
                /* numpy's _filter_header drops a NAME token "L" after a number. */
                struct cursor save = p->c;
                lit_skip_ws(p);
                if (lit_peek(p) == 'L' && !is_ident(lit_peek2(p)))
                        (void) cursor_skip(&p->c, 1);
                else
                        p->c = save;
        }
        if (is_ident(lit_peek(p)))
                return lit_fail(p, "bad number");

        r = lit_new(p, LIT_INT, &id);
        if (r < 0)
                return r;
        if (big || v > (uint64_t) INT64_MAX + (neg ? 1 : 0))
                p->nodes[id].big = true;
        else
                p->nodes[id].i = neg ? (int64_t) (0 - v) : (int64_t) v;
        *ret = id;
        return 0;
}

static int lit_value(struct lit_parser *p, uint32_t *ret);

/* Containers: what follows the opening bracket, up to and including the closing
 * one. A parenthesised single value without a comma is that value. */
static int lit_container(struct lit_parser *p, uint8_t open, uint32_t *ret) {
        uint8_t close = open == '{' ? '}' : open == '[' ? ']' : ')';
        enum lit_type type = open == '{' ? LIT_DICT : open == '[' ? LIT_LIST : LIT_TUPLE;
        bool comma = false;
        uint32_t id, child;
        int r;

        if (++p->depth > NPY_LITERAL_DEPTH_MAX)
                return lit_fail(p, "nested too deeply");
        r = lit_new(p, type, &id);
        if (r < 0)
                return r;
        for (;;) {
                lit_skip_ws(p);
                if (lit_peek(p) == close) {
                        (void) cursor_skip(&p->c, 1);
                        break;
                }
                if (p->nodes[id].n > 0 && !comma)
                        return lit_fail(p, "expected a comma");
                r = lit_value(p, &child);
                if (r < 0)
                        return r;
                lit_append(p, id, child);
                lit_skip_ws(p);
                if (type == LIT_DICT) {
                        if (lit_peek(p) != ':')
                                return lit_fail(p, "expected ':' in dict");
                        (void) cursor_skip(&p->c, 1);
                        r = lit_value(p, &child);
                        if (r < 0)
                                return r;
                        lit_append(p, id, child);
                        lit_skip_ws(p);
                }
                comma = lit_peek(p) == ',';
                if (comma)
                        (void) cursor_skip(&p->c, 1);
                else if (lit_peek(p) != close)
                        return lit_fail(p, "expected a comma");
                else if (type == LIT_TUPLE && p->nodes[id].n == 1) {
                        /* "(x)" is x, not a tuple. */
                        (void) cursor_skip(&p->c, 1);
                        p->depth--;
                        *ret = child;   /* the shell node stays unused */
                        return 0;
                }
        }
        p->depth--;
        *ret = id;
        return 0;
}

static int lit_value(struct lit_parser *p, uint32_t *ret) {
        int ch;

        lit_skip_ws(p);
        ch = lit_peek(p);
        if (ch == '{' || ch == '[' || ch == '(') {
                (void) cursor_skip(&p->c, 1);
                return lit_container(p, (uint8_t) ch, ret);
        }
        if (ch == '\'' || ch == '"' ||
            ((ch == 'u' || ch == 'U' || ch == 'r' || ch == 'R') && (lit_peek2(p) == '\'' || lit_peek2(p) == '"')))
                return lit_string(p, ret);
        if (ch == '-' || ch == '+' || (ch >= '0' && ch <= '9'))
                return lit_int(p, ret);
        if (is_ident(ch)) {
                static const struct {
                        const char *word;
                        enum lit_type type;
                        int64_t value;
                } words[] = {
                        { "True", LIT_BOOL, 1 }, { "False", LIT_BOOL, 0 }, { "None", LIT_NONE, 0 },
                };
                const uint8_t *w = NULL;
                size_t n = 0;
                struct cursor t = p->c;
                uint8_t b;

                while (cursor_u8(&t, &b) == 0 && is_ident(b))
                        n++;
                t = p->c;
                (void) cursor_take(&t, n, &w);
                for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++)
                        if (strlen(words[k].word) == n && memcmp(words[k].word, w, n) == 0) {
                                uint32_t id;
                                int r = lit_new(p, words[k].type, &id);
                                if (r < 0)
                                        return r;
                                p->nodes[id].i = words[k].value;
                                (void) cursor_skip(&p->c, n);
                                *ret = id;
                                return 0;
                        }
                return lit_fail(p, "a name that is not a literal");
        }
        return lit_fail(p, ch < 0 ? "header ends early" : "unexpected character");
}

static bool str_is(const struct lit *l, const char *s) {
        return l->type == LIT_STR && l->slen == strlen(s) && memcmp(l->s, s, l->slen) == 0;
}

static bool mul_ok(uint64_t a, uint64_t b, uint64_t *ret) {
        if (a != 0 && b > UINT64_MAX / a)
                return false;
        *ret = a * b;
        return true;
}

/* numpy.dtype(str) for the spellings numpy writes (dtype.str: "<f8", "|b1",
 * "|O", "<U10", "<M8[ns]") and common names; anything else is unknown, and counts
 * as an object dtype when it mentions one. */
static void dtype_str_eval(const char *s, size_t n, struct dtype_info *ret) {
        static const struct {
                const char *name;
                uint64_t size;
                bool object;
        } names[] = {
                { "bool", 1, false }, { "bool_", 1, false }, { "int8", 1, false }, { "uint8", 1, false },
                { "int16", 2, false }, { "uint16", 2, false }, { "int32", 4, false }, { "uint32", 4, false },
                { "int64", 8, false }, { "uint64", 8, false }, { "int", 8, false }, { "float", 8, false },
                { "float16", 2, false }, { "float32", 4, false }, { "float64", 8, false },
                { "complex", 16, false }, { "complex64", 8, false }, { "complex128", 16, false },
                { "object", 8, true }, { "object_", 8, true }, { "O", 8, true },
        };
        static const struct {
                char code;
                uint8_t size;
        } codes[] = {
                { '?', 1 }, { 'b', 1 }, { 'B', 1 }, { 'h', 2 }, { 'H', 2 }, { 'i', 4 }, { 'I', 4 },
                { 'l', 8 }, { 'L', 8 }, { 'q', 8 }, { 'Q', 8 }, { 'p', 8 }, { 'P', 8 }, { 'e', 2 },
                { 'f', 4 }, { 'd', 8 }, { 'g', 16 }, { 'F', 8 }, { 'D', 16 }, { 'G', 32 }, { 'c', 1 },
                { 'S', 0 }, { 'a', 0 }, { 'U', 0 }, { 'V', 0 }, { 'M', 8 }, { 'm', 8 },
        };
        const char *t = s;
        size_t tn = n;
        uint64_t num = 0;
        size_t i;

        memset(ret, 0, sizeof(*ret));
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strlen(names[i].name) == n && memcmp(names[i].name, s, n) == 0) {
                        ret->itemsize = names[i].size;
                        ret->object = names[i].object;
                        return;
                }

        if (tn > 1 && (t[0] == '<' || t[0] == '>' || t[0] == '|' || t[0] == '='))
                t++, tn--;
        if (tn == 0)
                goto unknown;
        char kind = t[0];
        size_t d = 1;
        while (d < tn && t[d] >= '0' && t[d] <= '9') {
                if (num > (UINT64_MAX - 9) / 10)
                        goto unknown;
                num = num * 10 + (uint64_t) (t[d] - '0');
                d++;
        }
        bool digits = d > 1;
        if ((kind == 'M' || kind == 'm') && d < tn && t[d] == '[') {
                size_t e = d + 1;
                while (e < tn && ((t[e] >= 'a' && t[e] <= 'z') || (t[e] >= 'A' && t[e] <= 'Z') ||
                                  (t[e] >= '0' && t[e] <= '9')))
                        e++;
                if (e >= tn || t[e] != ']')
                        goto unknown;
                d = e + 1;
        }
        if (d != tn)
                goto unknown;

        if (kind == 'O') {
                if (digits && num != 8)
                        goto unknown;
                ret->itemsize = 8;
                ret->object = true;
                return;
        }
        if (!digits) {
                for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
                        if (codes[i].code == kind) {
                                ret->itemsize = codes[i].size;
                                return;
                        }
                goto unknown;
        }
        switch (kind) {
        case 'b':
                if (num != 1)
                        goto unknown;
                break;
        case 'i': case 'u':
                if (num != 1 && num != 2 && num != 4 && num != 8)
                        goto unknown;
                break;
        case 'f':
                if (num != 2 && num != 4 && num != 8 && num != 16)
                        goto unknown;
                break;
        case 'c':
                if (num != 8 && num != 16 && num != 32)
                        goto unknown;
                break;
        case 'M': case 'm':
                if (num != 8)
                        goto unknown;
                break;
        case 'S': case 'a': case 'V':
                break;
        case 'U':
                if (!mul_ok(num, 4, &num))
                        goto unknown;
                break;
        default:
                goto unknown;
        }
        ret->itemsize = num;
        return;

unknown:
        ret->unknown = true;
        /* numpy accepts more spellings ("i4,O", "Object0"); one that mentions an
         * object type is treated as one. */
        for (i = 0; i < n; i++)
                if (s[i] == 'O' || (n - i >= 6 && memcmp(s + i, "object", 6) == 0))
                        ret->object = true;
}

/* The product of a shape given as an int or a tuple of ints. */
static bool shape_count(const struct lit_parser *p, uint32_t id, uint64_t *ret) {
        const struct lit *l = &p->nodes[id];
        uint64_t count = 1;

        if (l->type == LIT_INT || l->type == LIT_BOOL) {
                if (l->big || l->i < 0)
                        return false;
                *ret = (uint64_t) l->i;
                return true;
        }
        if (l->type != LIT_TUPLE)
                return false;
        for (uint32_t c = l->first; c != LIT_NIL; c = p->nodes[c].next) {
                const struct lit *k = &p->nodes[c];
                if ((k->type != LIT_INT && k->type != LIT_BOOL) || k->big || k->i < 0)
                        return false;
                if (!mul_ok(count, (uint64_t) k->i, &count))
                        return false;
        }
        *ret = count;
        return true;
}

static void dtype_merge(struct dtype_info *acc, const struct dtype_info *f, uint64_t times) {
        uint64_t size;

        acc->object |= f->object;
        acc->unknown |= f->unknown;
        if (!mul_ok(f->itemsize, times, &size) || size > UINT64_MAX - acc->itemsize) {
                acc->unknown = true;
                return;
        }
        acc->itemsize += size;
}

/* numpy.lib.format.descr_to_dtype() over the literal: a string, a (descr, shape)
 * subarray tuple, or a list of (name, descr[, shape]) fields. */
static void descr_eval(const struct lit_parser *p, uint32_t id, struct dtype_info *ret) {
        const struct lit *l = &p->nodes[id];

        memset(ret, 0, sizeof(*ret));
        if (l->type == LIT_STR) {
                dtype_str_eval(l->s, l->slen, ret);
                return;
        }
        if (l->type == LIT_TUPLE && l->n == 2) {
                struct dtype_info base;
                uint64_t count;
                descr_eval(p, l->first, &base);
                if (!shape_count(p, p->nodes[l->first].next, &count) || (base.itemsize == 0 && !base.object)) {
                        ret->unknown = true;
                        ret->object = base.object;
                        return;
                }
                dtype_merge(ret, &base, count);
                return;
        }
        if (l->type != LIT_LIST) {
                ret->unknown = true;
                return;
        }
        for (uint32_t f = l->first; f != LIT_NIL; f = p->nodes[f].next) {
                const struct lit *fl = &p->nodes[f];
                struct dtype_info fd;
                uint64_t count = 1;

                if (fl->type == LIT_STR && fl->slen == 2) {
                        /* A 2-character string unpacks as (name, descr). */
                        dtype_str_eval(fl->s + 1, 1, &fd);
                        dtype_merge(ret, &fd, 1);
                        continue;
                }
                if ((fl->type != LIT_TUPLE && fl->type != LIT_LIST) || (fl->n != 2 && fl->n != 3)) {
                        ret->unknown = true;
                        if (fl->type == LIT_STR) {
                                dtype_str_eval(fl->s, fl->slen, &fd);
                                ret->object |= fd.object;
                        }
                        continue;
                }
                const struct lit *name = &p->nodes[fl->first];
                uint32_t descr = name->next;
                if (name->type != LIT_STR && !(name->type == LIT_TUPLE && name->n == 2))
                        ret->unknown = true;
                descr_eval(p, descr, &fd);
                if (fl->n == 3 && !shape_count(p, p->nodes[descr].next, &count)) {
                        ret->unknown = true;
                        ret->object |= fd.object;
                        continue;
                }
                dtype_merge(ret, &fd, count);
        }
}

bool npy_sniff(const uint8_t *buf, size_t len) {
        struct cursor c = cursor_make(buf, len);
        const uint8_t *m;

        return cursor_take(&c, NPY_MAGIC_LEN, &m) == 0 && memcmp(m, NPY_MAGIC, NPY_MAGIC_LEN) == 0;
}

/* Characters numpy counts against its cap: bytes for latin-1 headers (1.0, 2.0),
 * code points for UTF-8 (3.0); -1 when a 3.0 header is not valid UTF-8. */
static long header_chars(const uint8_t *h, size_t n, bool utf8) {
        struct cursor c = cursor_make(h, n);
        long chars = 0;
        uint8_t b;

        if (!utf8)
                return (long) n;
        while (cursor_u8(&c, &b) == 0) {
                size_t more = b < 0x80 ? 0 : (b & 0xe0) == 0xc0 ? 1 : (b & 0xf0) == 0xe0 ? 2 :
                              (b & 0xf8) == 0xf0 ? 3 : 4;
                uint32_t cp = more == 1 ? b & 0x1fu : more == 2 ? b & 0x0fu : b & 0x07u;
                if (more == 4 || (more == 1 && b < 0xc2) || (more == 3 && b > 0xf4))
                        return -1;
                for (size_t k = 0; k < more; k++) {
                        uint8_t x;
                        if (cursor_u8(&c, &x) < 0 || (x & 0xc0) != 0x80)
                                return -1;
                        cp = cp << 6 | (x & 0x3fu);
                }
                if ((more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
                    (more == 3 && (cp < 0x10000 || cp > 0x10ffff)))
                        return -1;
                chars++;
        }
        return chars;
}

static int header_dict_check(struct scan_ctx *ctx, const struct lit_parser *p, uint32_t root,
                             struct npy_header *h) {
        const struct lit *d = &p->nodes[root];
        uint32_t descr = LIT_NIL, fortran = LIT_NIL, shape = LIT_NIL;
        struct dtype_info dt;
        uint64_t count;

        if (d->type != LIT_DICT) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "npy: header is not a dict");
                return -EBADMSG;
        }
        for (uint32_t k = d->first; k != LIT_NIL; k = p->nodes[p->nodes[k].next].next) {
                const struct lit *key = &p->nodes[k];
                uint32_t v = key->next;
                /* Later duplicates win, as in a Python dict display. */
                if (str_is(key, "descr"))
                        descr = v;
                else if (str_is(key, "fortran_order"))
                        fortran = v;
                else if (str_is(key, "shape"))
                        shape = v;
                else {
                        scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                                     "npy: header has a key other than descr, fortran_order and shape");
                        return -EBADMSG;
                }
        }
        if (descr == LIT_NIL || fortran == LIT_NIL || shape == LIT_NIL) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "npy: header lacks descr, fortran_order or shape");
                return -EBADMSG;
        }
        if (p->nodes[shape].type != LIT_TUPLE || !shape_count(p, shape, &count)) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "npy: shape is not a tuple of non-negative integers whose product fits 64 bits");
                return -EBADMSG;
        }
        if (p->nodes[fortran].type != LIT_BOOL) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "npy: fortran_order is not a bool");
                return -EBADMSG;
        }
        h->fortran_order = p->nodes[fortran].i != 0;
        if (p->nodes[descr].type == LIT_STR && p->nodes[descr].slen < sizeof(h->descr) &&
            !memchr(p->nodes[descr].s, '\0', p->nodes[descr].slen))
                memcpy(h->descr, p->nodes[descr].s, p->nodes[descr].slen);
        if (p->nodes[shape].n <= NPY_SHAPE_KEEP) {
                h->shape_kept = true;
                for (uint32_t c = p->nodes[shape].first; c != LIT_NIL; c = p->nodes[c].next)
                        h->shape[h->ndim++] = (uint64_t) p->nodes[c].i;
        }

        descr_eval(p, descr, &dt);
        h->has_object = dt.object;
        if (dt.unknown) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "npy: dtype description not understood%s",
                             dt.object ? "; it names an object type, so the data is scanned as a pickle" : "");
                return 0;
        }
        if (!dt.object) {
                if (!mul_ok(count, dt.itemsize, &h->data_size)) {
                        scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "npy: array size overflows 64 bits");
                        return -EBADMSG;
                }
                h->size_known = true;
        }
        return 0;
}

int npy_header_parse(struct scan_ctx *ctx, const uint8_t *buf, size_t len, struct npy_header *ret) {
        struct cursor c = cursor_make(buf, len);
        struct npy_header h = { 0 };
        struct lit_parser p = { 0 };
        const uint8_t *magic, *hdr;
        uint32_t hlen, root;
        uint16_t hlen16;
        long chars;
        int r;

        if (cursor_take(&c, NPY_MAGIC_LEN, &magic) < 0 || cursor_u8(&c, &h.major) < 0 ||
            cursor_u8(&c, &h.minor) < 0)
                return -ENODATA;
        if (memcmp(magic, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "npy: no \\x93NUMPY magic");
                return -EBADMSG;
        }
        if (!((h.major == 1 || h.major == 2 || h.major == 3) && h.minor == 0)) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "npy: unsupported format version %u.%u",
                             h.major, h.minor);
                return -EBADMSG;
        }
        if (h.major == 1) {
                if (cursor_le16(&c, &hlen16) < 0)
                        return -ENODATA;
                hlen = hlen16;
        } else if (cursor_le32(&c, &hlen) < 0)
                return -ENODATA;
        if (hlen > NPY_HEADER_PARSE_MAX) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "npy: header is %u bytes, more than the %d modelgate reads (numpy's own limit is %d)",
                             hlen, NPY_HEADER_PARSE_MAX, NPY_HEADER_NUMPY_MAX);
                return -EBADMSG;
        }
        if (cursor_take(&c, hlen, &hdr) < 0)
                return -ENODATA;
        h.data_offset = c.pos;

        chars = header_chars(hdr, hlen, h.major == 3);
        if (chars < 0) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "npy: version 3.0 header is not valid UTF-8");
                return -EBADMSG;
        }
        if (chars > NPY_HEADER_NUMPY_MAX)
                /* numpy refuses it by default and reads it with allow_pickle=True
                 * or a larger max_header_size. Either way the header is parsed
                 * here in full, so this is a fact, not a blind spot: medium. */
                scan_finding(ctx, RULE_MALFORMED, SEV_MEDIUM,
                             "npy: header is %ld characters; numpy refuses more than %d unless allow_pickle=True",
                             chars, NPY_HEADER_NUMPY_MAX);

        p.c = cursor_make(hdr, hlen);
        p.cap = (size_t) hlen + 1;      /* every value takes at least one byte */
        p.pool_cap = (size_t) hlen + 1;
        p.py2_long = h.major <= 2;
        p.nodes = calloc(p.cap, sizeof(*p.nodes));
        p.pool = malloc(p.pool_cap);
        if (!p.nodes || !p.pool) {
                free(p.nodes);
                free(p.pool);
                scan_finding(ctx, RULE_SCAN_ERROR, SEV_HIGH, "npy: out of memory");
                return -ENOMEM;
        }

        r = lit_value(&p, &root);
        if (r == 0) {
                lit_skip_ws(&p);
                if (cursor_left(&p.c) > 0)
                        r = lit_fail(&p, "text after the dict");
        }
        if (r < 0)
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "npy: header is not a valid literal (%s)",
                             p.error ? p.error : "parse error");
        else
                r = header_dict_check(ctx, &p, root, &h);
        free(p.nodes);
        free(p.pool);
        if (r < 0)
                return r;
        *ret = h;
        return 0;
}

static void npy_check_size(struct scan_ctx *ctx, const struct npy_header *h, uint64_t total_len) {
        uint64_t have = total_len - h->data_offset;

        if (!h->size_known)
                return;
        if (have < h->data_size)
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                             "npy: array needs %llu bytes of data, the file has %llu",
                             (unsigned long long) h->data_size, (unsigned long long) have);
        else if (have > h->data_size)
                scan_finding(ctx, RULE_MALFORMED, SEV_LOW,
                             "npy: %llu bytes after the array data",
                             (unsigned long long) (have - h->data_size));
}

void npy_scan_objects(struct scan_ctx *ctx, const struct npy_header *h, const uint8_t *buf, size_t len) {
        struct cursor c = cursor_make(buf, len);

        if (cursor_seek(&c, h->data_offset) < 0 || cursor_left(&c) == 0) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "npy: object array without pickle data");
                return;
        }
        pickle_scan_all(ctx, c.base + c.pos, cursor_left(&c));
}

void npy_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len) {
        struct npy_header h;
        int r;

        r = npy_header_parse(ctx, buf, len, &h);
        if (r == -ENODATA) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "npy: file ends inside the header");
                return;
        }
        if (r < 0)
                return;
        if (h.has_object)
                npy_scan_objects(ctx, &h, buf, len);
        else
                npy_check_size(ctx, &h, len);
}

int npy_scan_prefix(struct scan_ctx *ctx, const uint8_t *buf, size_t prefix_len, uint64_t total_len,
                    struct npy_header *ret) {
        struct npy_header h;
        int r;

        if (prefix_len > total_len)
                prefix_len = (size_t) total_len;
        r = npy_header_parse(ctx, buf, prefix_len, &h);
        if (r == -ENODATA) {
                if (prefix_len < total_len)
                        return -ENODATA;
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "npy: file ends inside the header");
                return 0;
        }
        if (r < 0)
                return 0;
        if (h.has_object) {
                *ret = h;
                return 1;
        }
        npy_check_size(ctx, &h, total_len);
        return 0;
}
