/* convert.c — the conversion plan of a checkpoint held in memory: finds its pickle
 * and its tensor bytes (zip members, legacy storage records, npy data), flattens
 * the state dict torch-state.c evaluated into dotted names, turns scalar values
 * into metadata, and merges tensors that share storage as safetensors' save_model
 * does. Reads only; runs in the sandboxed worker; anything it cannot express
 * faithfully is refused with a message naming the key. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "convert.h"
#include "npy.h"
#include "pickle.h"
#include "tar.h"
#include "torch-state.h"
#include "zip.h"

/* torch.serialization: the legacy format's magic number (as LONG1 bytes) and
 * protocol version. */
static const uint8_t torch_magic[] = { 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 };
#define TORCH_PROTOCOL_VERSION 1001

enum leaf_kind {
        LEAF_TENSOR,
        LEAF_VALUE,
};

struct leaf {
        char *name;
        uint8_t kind;
        bool tied;                 /* dropped for sharing storage with leaves[kept] */
        size_t kept;
        const struct ts_tensor *t; /* LEAF_TENSOR */
        char *text;                /* LEAF_VALUE: JSON text */
        uint64_t lo, hi;           /* bytes of the root storage a tensor reads */
};

struct dropped {
        char *name, *why;
};

struct conv {
        struct plan *plan;
        struct ts_state *ts;
        struct leaf *leaves;
        size_t n_leaves, cap_leaves, n_tensors, n_values;
        struct dropped *dropped;
        size_t n_dropped, cap_dropped;
        size_t visits;
        char path[PLAN_NAME_MAX];
};

static int fail(struct conv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct conv *c, const char *fmt, ...) {
        char msg[REPORT_MESSAGE_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return plan_fail(c->plan, -EINVAL, "%s", msg);
}

static int nomem(struct conv *c) {
        return plan_fail(c->plan, -ENOMEM, "out of memory");
}

/* ---- names and values ---------------------------------------------------------- */

/* The current path for a message: "" at the top becomes "(the top level)". */
static const char *where(const struct conv *c, size_t len) {
        static char buf[PLAN_NAME_MAX + 2];
        if (len == 0)
                return "(the top level)";
        snprintf(buf, sizeof(buf), "'%.*s'", (int) len, c->path);
        return buf;
}

/* Printable UTF-8 of n bytes with no NUL (what a plan name may hold). */
static bool printable(const uint8_t *s, size_t n) {
        char tmp[PLAN_NAME_MAX];
        if (n >= sizeof(tmp) || memchr(s, '\0', n))
                return false;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        return report_string_valid(tmp);
}

static int path_push(struct conv *c, size_t len, const char *key, size_t klen, size_t *ret) {
        size_t need = len + (len ? 1 : 0) + klen;
        if (need >= PLAN_NAME_MAX)
                return fail(c, "%s: a key under it makes a name longer than %d bytes", where(c, len), PLAN_NAME_MAX - 1);
        if (len)
                c->path[len++] = '.';
        memcpy(c->path + len, key, klen);
        c->path[need] = '\0';
        *ret = need;
        return 0;
}

/* JSON text of a str: quotes, escapes, and \u escapes for every control
 * character, so that the text is printable. False when it does not fit. */
static bool json_str(const uint8_t *s, size_t n, char *out, size_t size) {
        size_t o = 0;

        if (size < 3)
                return false;
        out[o++] = '"';
        for (size_t i = 0; i < n; i++) {
                uint8_t ch = s[i];
                char esc[8];
                size_t k;
                if (ch == '"' || ch == '\\')
                        k = (size_t) snprintf(esc, sizeof(esc), "\\%c", ch);
                else if (ch < 0x20 || ch == 0x7f)
                        k = (size_t) snprintf(esc, sizeof(esc), "\\u%04x", ch);
                else if (ch == 0xc2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] < 0xa0) {
                        k = (size_t) snprintf(esc, sizeof(esc), "\\u%04x", s[i + 1]);   /* C1 control */
                        i++;
                } else {
                        esc[0] = (char) ch;
                        k = 1;
                }
                if (o + k + 2 > size)
                        return false;
                memcpy(out + o, esc, k);
                o += k;
        }
        out[o++] = '"';
        out[o] = '\0';
        return true;
}

/* UTF-8 validity as Python's strict decoder sees it (no surrogates). */
static bool utf8_ok(const uint8_t *s, size_t n) {
        for (size_t i = 0; i < n;) {
                uint8_t ch = s[i];
                size_t k;
                uint32_t cp;
                if (ch < 0x80) {
                        i++;
                        continue;
                }
                if (ch >= 0xc2 && ch <= 0xdf)
                        k = 1, cp = ch & 0x1f;
                else if (ch >= 0xe0 && ch <= 0xef)
                        k = 2, cp = ch & 0x0f;
                else if (ch >= 0xf0 && ch <= 0xf4)
                        k = 3, cp = ch & 0x07;
                else
                        return false;
                if (n - i <= k)
                        return false;
                for (size_t j = 1; j <= k; j++) {
                        if ((s[i + j] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (s[i + j] & 0x3f);
                }
                if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
                        return false;
                i += k + 1;
        }
        return true;
}

static bool is_scalar(const struct ts_value *v) {
        return v->kind == TS_NONE || v->kind == TS_BOOL || v->kind == TS_INT || v->kind == TS_FLOAT ||
               v->kind == TS_STR;
}

/* JSON text of a scalar, as Python's json.dumps would accept back. Returns NULL,
 * or why it cannot be written. */
static const char *json_scalar(const struct ts_value *v, char *out, size_t size) {
        switch (v->kind) {
        case TS_NONE:
                snprintf(out, size, "null");
                return NULL;
        case TS_BOOL:
                snprintf(out, size, "%s", v->i ? "true" : "false");
                return NULL;
        case TS_INT:
                snprintf(out, size, "%lld", (long long) v->i);
                return NULL;
        case TS_FLOAT:
                if (isnan(v->f))
                        snprintf(out, size, "NaN");
                else if (isinf(v->f))
                        snprintf(out, size, "%s", v->f > 0 ? "Infinity" : "-Infinity");
                else {
                        /* The shortest text that reads back as the same double. */
                        for (int prec = 1; prec <= 17; prec++) {
                                snprintf(out, size, "%.*g", prec, v->f);
                                if (strtod(out, NULL) == v->f)
                                        break;
                        }
                        if (!strpbrk(out, ".e"))
                                strncat(out, ".0", size - strlen(out) - 1);
                }
                return NULL;
        case TS_STR:
                if (!utf8_ok(v->s, v->aux))
                        return "a str that is not valid UTF-8";
                if (!json_str(v->s, v->aux, out, size))
                        return "a str too long for metadata";
                return NULL;
        case TS_BIGINT:
                return "an int beyond 64 bits";
        case TS_BYTES:
                return "bytes";
        case TS_CALLABLE:
                return "a class or function";
        default:
                return "a value metadata cannot hold";
        }
}

/* ---- leaves -------------------------------------------------------------------- */

static int add_leaf(struct conv *c, size_t len, enum leaf_kind kind, const struct ts_tensor *t, const char *text) {
        struct leaf *l;

        if (kind == LEAF_TENSOR && c->n_tensors >= PLAN_TENSORS_MAX)
                return fail(c, "more than %u tensors; the converter's limit", PLAN_TENSORS_MAX);
        if (kind == LEAF_VALUE && c->n_values >= PLAN_META_MAX) {
                c->plan->dropped_unlisted++;
                return 0;
        }
        if (c->n_leaves == c->cap_leaves) {
                size_t nc = c->cap_leaves ? c->cap_leaves * 2 : 256;
                struct leaf *n = realloc(c->leaves, nc * sizeof(*n));
                if (!n)
                        return nomem(c);
                c->leaves = n;
                c->cap_leaves = nc;
        }
        l = &c->leaves[c->n_leaves];
        memset(l, 0, sizeof(*l));
        l->kind = (uint8_t) kind;
        l->t = t;
        l->name = strndup(c->path, len);
        l->text = text ? strdup(text) : NULL;
        if (!l->name || (text && !l->text)) {
                free(l->name);
                free(l->text);
                return nomem(c);
        }
        c->n_leaves++;
        if (kind == LEAF_TENSOR)
                c->n_tensors++;
        else
                c->n_values++;
        return 0;
}

static int add_dropped(struct conv *c, size_t len, const char *why) {
        if (c->n_dropped >= PLAN_META_MAX) {
                c->plan->dropped_unlisted++;
                return 0;
        }
        if (c->n_dropped == c->cap_dropped) {
                size_t nc = c->cap_dropped ? c->cap_dropped * 2 : 64;
                struct dropped *n = realloc(c->dropped, nc * sizeof(*n));
                if (!n)
                        return nomem(c);
                c->dropped = n;
                c->cap_dropped = nc;
        }
        struct dropped *d = &c->dropped[c->n_dropped];
        d->name = len ? strndup(c->path, len) : strdup("(the top level)");
        d->why = strdup(why);
        if (!d->name || !d->why) {
                free(d->name);
                free(d->why);
                return nomem(c);
        }
        c->n_dropped++;
        return 0;
}

/* ---- flattening ------------------------------------------------------------------ */

static int walk(struct conv *c, const struct ts_value *v, size_t len, unsigned depth);

struct dict_key {
        const struct ts_value *k;
        uint32_t idx;
};

static int cmp_dict_key(const void *pa, const void *pb) {
        const struct dict_key *a = pa, *b = pb;
        if (a->k->kind != b->k->kind)
                return a->k->kind < b->k->kind ? -1 : 1;
        if (a->k->kind == TS_INT) {
                if (a->k->i != b->k->i)
                        return a->k->i < b->k->i ? -1 : 1;
        } else {
                size_t n = a->k->aux < b->k->aux ? a->k->aux : b->k->aux;
                int d = memcmp(a->k->s, b->k->s, n);
                if (d)
                        return d;
                if (a->k->aux != b->k->aux)
                        return a->k->aux < b->k->aux ? -1 : 1;
        }
        return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static bool same_key(const struct ts_value *a, const struct ts_value *b) {
        if (a->kind != b->kind)
                return false;
        if (a->kind == TS_INT)
                return a->i == b->i;
        return a->aux == b->aux && memcmp(a->s, b->s, a->aux) == 0;
}

static int walk_dict(struct conv *c, const struct ts_value *v, size_t len, unsigned depth) {
        size_t n = v->seq->n / 2;
        struct dict_key *keys;
        bool *keep;
        int r = 0;

        if (n == 0) {
                if (len == 0)
                        return 0;
                return add_leaf(c, len, LEAF_VALUE, NULL, "{}");
        }
        /* Every entry is sorted, kept or not: it counts, so that one big dict
         * reached many times through the memo cannot multiply the work. */
        c->visits += n;
        if (c->visits > CONVERT_VISITS_MAX)
                return fail(c, "the object graph has more than %zu entries to flatten", CONVERT_VISITS_MAX);
        for (size_t i = 0; i < n; i++) {
                const struct ts_value *k = &v->seq->v[2 * i];
                if (k->kind != TS_STR && k->kind != TS_INT)
                        return fail(c, "%s: a dict key is %s; only str and int keys can name tensors",
                                    where(c, len), k->kind == TS_BOOL ? "a bool" : k->kind == TS_FLOAT ? "a float" :
                                    k->kind == TS_BYTES ? "bytes" : k->kind == TS_TUPLE ? "a tuple" : "not a str");
                if (k->kind == TS_STR && !printable(k->s, k->aux))
                        return fail(c, "%s: a key is not printable UTF-8 or longer than %d bytes", where(c, len),
                                    PLAN_NAME_MAX - 1);
        }
        /* A key set twice keeps its last value, as a Python dict does. */
        keys = calloc(n, sizeof(*keys));
        keep = calloc(n, sizeof(*keep));
        if (!keys || !keep) {
                free(keys);
                free(keep);
                return nomem(c);
        }
        for (size_t i = 0; i < n; i++)
                keys[i] = (struct dict_key) { .k = &v->seq->v[2 * i], .idx = (uint32_t) i };
        qsort(keys, n, sizeof(*keys), cmp_dict_key);
        for (size_t i = 0; i < n; i++)
                if (i + 1 == n || !same_key(keys[i].k, keys[i + 1].k))
                        keep[keys[i].idx] = true;
        for (size_t i = 0; i < n && r == 0; i++) {
                const struct ts_value *k = &v->seq->v[2 * i];
                char num[24];
                size_t nl;
                if (!keep[i])
                        continue;
                if (k->kind == TS_INT) {
                        int w = snprintf(num, sizeof(num), "%lld", (long long) k->i);
                        r = path_push(c, len, num, (size_t) w, &nl);
                } else
                        r = path_push(c, len, (const char *) k->s, k->aux, &nl);
                if (r == 0)
                        r = walk(c, &v->seq->v[2 * i + 1], nl, depth + 1);
        }
        free(keys);
        free(keep);
        return r;
}

static int walk_seq(struct conv *c, const struct ts_value *v, size_t len, unsigned depth) {
        const struct ts_seq *q = v->seq;
        bool scalars = true;

        c->visits += q->n;
        if (c->visits > CONVERT_VISITS_MAX)
                return fail(c, "the object graph has more than %zu entries to flatten", CONVERT_VISITS_MAX);
        for (size_t i = 0; i < q->n; i++)
                scalars &= is_scalar(&q->v[i]);
        if (scalars && len > 0) {
                char out[PLAN_VALUE_MAX], item[PLAN_VALUE_MAX];
                size_t o = 0;
                const char *why = NULL;

                if (q->n > CONVERT_LIST_MAX) {
                        char msg[96];
                        snprintf(msg, sizeof(msg), "a list of %u values, more than the %d metadata takes", q->n,
                                 CONVERT_LIST_MAX);
                        return add_dropped(c, len, msg);
                }
                out[o++] = '[';
                for (size_t i = 0; i < q->n && !why; i++) {
                        why = json_scalar(&q->v[i], item, sizeof(item));
                        if (why)
                                break;
                        size_t k = strlen(item);
                        if (o + k + 4 > sizeof(out))
                                why = "a list too long for metadata";
                        else {
                                if (i)
                                        out[o++] = ',', out[o++] = ' ';
                                memcpy(out + o, item, k);
                                o += k;
                        }
                }
                if (why) {
                        char msg[96];
                        snprintf(msg, sizeof(msg), "%s%s", strncmp(why, "a list", 6) ? "a list holding " : "", why);
                        return add_dropped(c, len, msg);
                }
                out[o++] = ']';
                out[o] = '\0';
                return add_leaf(c, len, LEAF_VALUE, NULL, out);
        }
        for (size_t i = 0; i < q->n; i++) {
                char num[24];
                size_t nl;
                int w = snprintf(num, sizeof(num), "%zu", i), r;
                if ((r = path_push(c, len, num, (size_t) w, &nl)) < 0 || (r = walk(c, &q->v[i], nl, depth + 1)) < 0)
                        return r;
        }
        return 0;
}

static int walk(struct conv *c, const struct ts_value *v, size_t len, unsigned depth) {
        char text[PLAN_VALUE_MAX];
        const char *why;

        if (depth > CONVERT_DEPTH_MAX)
                return fail(c, "%s: containers nested more than %d deep (or a cycle)", where(c, len), CONVERT_DEPTH_MAX);
        if (++c->visits > CONVERT_VISITS_MAX)
                return fail(c, "the object graph has more than %zu entries to flatten", CONVERT_VISITS_MAX);
        if (len == 0 && depth > 0)
                return fail(c, "an empty key under a container would name a value ''");

        switch (v->kind) {
        case TS_TENSOR: {
                const struct ts_storage *st = v->t->st;
                if (st->dtype < 0)
                        return fail(c, "%s: a tensor on a %s: safetensors has no such dtype", where(c, len), st->type_name);
                return add_leaf(c, len, LEAF_TENSOR, v->t, NULL);
        }
        case TS_DICT:
                return walk_dict(c, v, len, depth);
        case TS_LIST:
        case TS_TUPLE:
                return walk_seq(c, v, len, depth);
        case TS_STORAGE:
                return fail(c, "%s: a bare storage, not a tensor", where(c, len));
        case TS_FOREIGN: {
                const char *what = ts_foreign_what(c->ts, v->aux);
                if (what)
                        return fail(c, "%s: %s (%s), which the converter does not write", where(c, len), what,
                                    ts_foreign_name(c->ts, v->aux));
                return fail(c, "%s: an object built by %s, a global outside the converter's allowlist", where(c, len),
                            ts_foreign_name(c->ts, v->aux));
        }
        default:
                if (len == 0)
                        return 0;   /* a bare scalar: no tensors, refused later */
                why = json_scalar(v, text, sizeof(text));
                if (why)
                        return add_dropped(c, len, why);
                return add_leaf(c, len, LEAF_VALUE, NULL, text);
        }
}

/* ---- tensors that share storage --------------------------------------------------- */

static const struct conv *sort_conv;

static int cmp_leaf_name(const void *a, const void *b) {
        const struct leaf *la = &sort_conv->leaves[*(const size_t *) a], *lb = &sort_conv->leaves[*(const size_t *) b];
        return strcmp(la->name, lb->name);
}

static int cmp_leaf_range(const void *a, const void *b) {
        const struct leaf *la = &sort_conv->leaves[*(const size_t *) a], *lb = &sort_conv->leaves[*(const size_t *) b];
        uintptr_t ra = (uintptr_t) la->t->st->root, rb = (uintptr_t) lb->t->st->root;
        if (ra != rb)
                return ra < rb ? -1 : 1;
        if (la->lo != lb->lo)
                return la->lo < lb->lo ? -1 : 1;
        if (la->hi != lb->hi)
                return la->hi < lb->hi ? -1 : 1;
        return strcmp(la->name, lb->name);
}

static uint64_t tensor_numel(const struct ts_tensor *t) {
        uint64_t n = 1;
        for (unsigned i = 0; i < t->ndim; i++)
                n *= t->shape[i];   /* checked for overflow when built */
        return n;
}

static uint64_t tensor_extent(const struct ts_tensor *t) {
        uint64_t last = 0;
        if (tensor_numel(t) == 0)
                return 0;
        for (unsigned i = 0; i < t->ndim; i++)
                last += (t->shape[i] - 1) * t->stride[i];   /* checked when built */
        return last + 1;
}

static bool same_layout(const struct ts_tensor *a, const struct ts_tensor *b) {
        if (a->st != b->st || a->offset != b->offset || a->ndim != b->ndim)
                return false;
        for (unsigned i = 0; i < a->ndim; i++)
                if (a->shape[i] != b->shape[i] || a->stride[i] != b->stride[i])
                        return false;
        return true;
}

/* Tensors whose bytes overlap in one storage form a group. safetensors' save_model
 * keeps, of each group, the first name (in sorted order) of a tensor covering the
 * whole storage and records the others in __metadata__ as dropped: kept. A group
 * of identical views needs no covering tensor; any other group without one is
 * refused, as safetensors refuses it. */
static int merge_shared(struct conv *c, size_t *idx, size_t n) {
        sort_conv = c;
        qsort(idx, n, sizeof(*idx), cmp_leaf_range);
        for (size_t g = 0; g < n;) {
                const struct leaf *first = &c->leaves[idx[g]];
                uint64_t end = first->hi;
                size_t e = g + 1, keep = SIZE_MAX;
                bool identical = true;

                while (e < n && c->leaves[idx[e]].t->st->root == first->t->st->root && c->leaves[idx[e]].lo < end) {
                        if (c->leaves[idx[e]].hi > end)
                                end = c->leaves[idx[e]].hi;
                        e++;
                }
                if (e - g > 1) {
                        for (size_t k = g; k < e; k++) {
                                const struct leaf *l = &c->leaves[idx[k]];
                                const struct ts_storage *root = l->t->st->root;
                                uint64_t numel = tensor_numel(l->t);
                                bool complete = l->lo == 0 && l->hi == root->nbytes && tensor_extent(l->t) == numel &&
                                                numel * root->elsize == root->nbytes;
                                identical &= same_layout(l->t, first->t);
                                if (complete && (keep == SIZE_MAX || strcmp(l->name, c->leaves[keep].name) < 0))
                                        keep = idx[k];
                        }
                        if (keep == SIZE_MAX && identical)
                                for (size_t k = g; k < e; k++)
                                        if (keep == SIZE_MAX || strcmp(c->leaves[idx[k]].name, c->leaves[keep].name) < 0)
                                                keep = idx[k];
                        if (keep == SIZE_MAX)
                                return fail(c, "'%s' and '%s' share parts of one storage and neither covers it whole; "
                                            "safetensors cannot hold that (clone them before saving)",
                                            c->leaves[idx[g]].name, c->leaves[idx[g + 1]].name);
                        for (size_t k = g; k < e; k++)
                                if (idx[k] != keep) {
                                        c->leaves[idx[k]].tied = true;
                                        c->leaves[idx[k]].kept = keep;
                                }
                }
                g = e;
        }
        return 0;
}

/* ---- the plan --------------------------------------------------------------------- */

static int finish(struct conv *c) {
        struct plan *p = c->plan;
        size_t *idx, n_shared = 0;
        int r = 0;

        if (ts_foreign_count(c->ts) > 0) {
                const char *what = ts_foreign_what(c->ts, 0);
                return fail(c, "the pickle imports %s at offset %zu%s%s, a global outside the converter's allowlist",
                            ts_foreign_name(c->ts, 0), ts_foreign_offset(c->ts, 0), what ? " for " : "", what ? what : "");
        }
        if (c->n_tensors == 0)
                return fail(c, "the file holds no tensors");
        for (size_t i = 0; i < c->n_leaves; i++)
                if (!c->leaves[i].name[0] && c->n_leaves > 1)
                        return fail(c, "an unnamed tensor beside other values");

        idx = calloc(c->n_leaves ? c->n_leaves : 1, sizeof(*idx));
        if (!idx)
                return nomem(c);
        /* Two values that flatten to one name ("a.b" and a["b"]) cannot both be written. */
        for (size_t i = 0; i < c->n_leaves; i++)
                idx[i] = i;
        sort_conv = c;
        qsort(idx, c->n_leaves, sizeof(*idx), cmp_leaf_name);
        for (size_t i = 1; i < c->n_leaves; i++)
                if (strcmp(c->leaves[idx[i - 1]].name, c->leaves[idx[i]].name) == 0) {
                        r = fail(c, "'%s': two values flatten to this name", c->leaves[idx[i]].name);
                        goto out;
                }

        for (size_t i = 0; i < c->n_leaves; i++) {
                struct leaf *l = &c->leaves[i];
                if (l->kind != LEAF_TENSOR)
                        continue;
                const struct ts_storage *st = l->t->st;
                if (!st->root->located) {
                        r = fail(c, "'%s': its storage '%.*s' has no data in the file", l->name, (int) st->root->key_len,
                                 st->root->key);
                        goto out;
                }
                l->lo = st->view_offset + l->t->offset * st->elsize;
                l->hi = l->lo + tensor_extent(l->t) * st->elsize;
                if (tensor_numel(l->t) > 0)
                        idx[n_shared++] = i;
        }
        if ((r = merge_shared(c, idx, n_shared)) < 0)
                goto out;

        for (size_t i = 0; i < c->n_leaves && r == 0; i++) {
                const struct leaf *l = &c->leaves[i];
                struct plan_tensor pt;
                if (l->kind != LEAF_TENSOR || l->tied)
                        continue;
                memset(&pt, 0, sizeof(pt));
                snprintf(pt.name, sizeof(pt.name), "%s", l->name);
                pt.dtype = (uint8_t) l->t->st->root->dtype;
                pt.ndim = l->t->ndim;
                memcpy(pt.shape, l->t->shape, sizeof(pt.shape));
                memcpy(pt.stride, l->t->stride, sizeof(pt.stride));
                pt.storage_offset = l->t->offset;
                pt.storage_start = l->t->st->root->file_offset + l->t->st->view_offset;
                pt.storage_len = l->t->st->nbytes;
                if ((r = plan_add_tensor(p, &pt)) < 0)
                        r = plan_fail(p, r, "too many tensors");
        }
        /* Metadata: tied names first, then values, then what was dropped. */
        for (size_t i = 0; i < c->n_leaves && r == 0; i++) {
                const struct leaf *l = &c->leaves[i];
                if (l->kind == LEAF_TENSOR && l->tied) {
                        if (plan_meta_key_reserved(l->name) || p->n_meta >= PLAN_META_MAX)
                                p->dropped_unlisted++;
                        else
                                r = plan_add_meta(p, PM_TIED, l->name, c->leaves[l->kept].name);
                }
        }
        for (size_t i = 0; i < c->n_leaves && r == 0; i++) {
                const struct leaf *l = &c->leaves[i];
                if (l->kind != LEAF_VALUE)
                        continue;
                if (p->n_meta >= PLAN_META_MAX)
                        p->dropped_unlisted++;
                else if (plan_meta_key_reserved(l->name))
                        r = plan_add_meta(p, PM_DROPPED, l->name, "its name is a key modelgate writes into __metadata__");
                else
                        r = plan_add_meta(p, PM_VALUE, l->name, l->text);
        }
        for (size_t i = 0; i < c->n_dropped && r == 0; i++) {
                if (p->n_meta >= PLAN_META_MAX)
                        p->dropped_unlisted++;
                else
                        r = plan_add_meta(p, PM_DROPPED, c->dropped[i].name, c->dropped[i].why);
        }
        if (r < 0 && !p->error)
                plan_fail(p, r, "out of memory");
out:
        free(idx);
        return r;
}

static void conv_free(struct conv *c) {
        for (size_t i = 0; i < c->n_leaves; i++) {
                free(c->leaves[i].name);
                free(c->leaves[i].text);
        }
        free(c->leaves);
        for (size_t i = 0; i < c->n_dropped; i++) {
                free(c->dropped[i].name);
                free(c->dropped[i].why);
        }
        free(c->dropped);
        ts_free(c->ts);
}

/* Flattens root and fills the plan. */
static int plan_from_tree(struct conv *c, const struct ts_value *root) {
        int r;

        c->path[0] = '\0';
        if ((r = walk(c, root, 0, 0)) < 0)
                return r;
        return finish(c);
}

static int eval_error(struct conv *c, int r, const char *what) {
        if (r == -ENOMEM)
                return plan_fail(c->plan, -ENOMEM, "%s: out of memory", what);
        return fail(c, "%s: %s", what, ts_error(c->ts));
}

/* ---- PyTorch zip checkpoints ------------------------------------------------------- */

/* The scan has judged the archive already; a conversion takes only a clean one:
 * any structural finding made from index `from` on refuses it. */
static int archive_clean(struct conv *c, const struct scan_report *rep, uint32_t from) {
        for (uint32_t i = from; i < rep->n_findings; i++) {
                const struct finding *f = &rep->findings[i];
                if (f->rule == RULE_ARCHIVE_TAMPERED || f->rule == RULE_MALFORMED || f->rule == RULE_UNSUPPORTED_CONTAINER)
                        return fail(c, "the archive is damaged or tampered with (%s%s%s)", f->member,
                                    f->member[0] ? ": " : "", f->message);
        }
        return 0;
}

static bool caseeq(const uint8_t *a, size_t n, const char *b) {
        if (strlen(b) != n)
                return false;
        for (size_t i = 0; i < n; i++) {
                uint8_t x = a[i], y = (uint8_t) b[i];
                if ((x >= 'A' && x <= 'Z' ? x + 32 : x) != (y >= 'A' && y <= 'Z' ? y + 32 : y))
                        return false;
        }
        return true;
}

/* "<prefix>/" followed by a record name torch.save (1.6 to 2.x) writes: the
 * pickle, its version records, and data/<key> storages. */
static bool torch_record_known(const struct zip_entry *e, const char *prefix) {
        static const char *const records[] = { "data.pkl", "version", ".data/version", "byteorder",
                                               ".data/serialization_id", ".format_version",
                                               ".storage_alignment" };
        size_t pl = strlen(prefix), n;
        const uint8_t *rest;

        if (e->name_len <= pl || memcmp(e->name, prefix, pl) != 0 || e->name[pl] != '/')
                return false;
        rest = e->name + pl + 1;
        n = e->name_len - pl - 1;
        if (n == 0 || (rest[n - 1] == '/' && e->size == 0))
                return true;   /* the folder itself, or a directory entry */
        for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++)
                if (caseeq(rest, n, records[i]))
                        return true;
        if (n > 5 && caseeq(rest, 5, "data/")) {
                for (size_t i = 5; i < n; i++)
                        if (!((rest[i] >= '0' && rest[i] <= '9') || (rest[i] >= 'a' && rest[i] <= 'z') ||
                              (rest[i] >= 'A' && rest[i] <= 'Z') || rest[i] == '_'))
                                return false;
                return true;
        }
        return false;
}

static int convert_torch_zip(struct conv *c, const uint8_t *buf, size_t len, const struct zip_reader *z,
                             struct scan_ctx *ctx, const char *prefix) {
        char name[1024];   /* prefix (<= 511) + "/data/" + key (<= 64) */
        const struct zip_entry *e;
        const uint8_t *data;
        uint8_t *owned = NULL;
        size_t dlen, used;
        struct ts_value root;
        int r;

        snprintf(name, sizeof(name), "%s/constants.pkl", prefix);
        if (zip_find(z, name))
                return fail(c, "a TorchScript archive: it carries code, not a state dict");
        /* Only what torch.save writes: anything else in the archive (a second
         * pickle under another name) would be silently left behind. */
        for (size_t i = 0; i < zip_count(z); i++) {
                e = zip_get(z, i);
                if (!torch_record_known(e, prefix)) {
                        char esc[REPORT_MEMBER_MAX];
                        zip_entry_name(e, esc);
                        return fail(c, "'%s' is not a record torch.save writes; only plain checkpoints are converted", esc);
                }
        }
        snprintf(name, sizeof(name), "%s/byteorder", prefix);
        if ((e = zip_find(z, name))) {
                r = zip_read(ctx, z, e, 16, &data, &dlen, &owned);
                bool little = r == ZIP_READ_WHOLE && dlen == 6 && memcmp(data, "little", 6) == 0;
                free(owned);
                owned = NULL;
                if (!little)
                        return fail(c, "the byteorder record does not say 'little'; big-endian data is not converted");
        }
        snprintf(name, sizeof(name), "%s/data.pkl", prefix);
        if (!(e = zip_find(z, name)))
                return fail(c, "no %s record", name);
        r = zip_read(ctx, z, e, SCAN_INFLATE_MAX, &data, &dlen, &owned);
        if (r >= 0 && archive_clean(c, ctx->report, 0) < 0) {
                free(owned);
                return -EINVAL;
        }
        if (r != ZIP_READ_WHOLE) {
                free(owned);
                if (r == -ENOMEM)
                        return nomem(c);
                return fail(c, "%s cannot be read whole (larger than %zu MiB or damaged)", name, SCAN_INFLATE_MAX >> 20);
        }
        r = ts_eval(c->ts, data, dlen, TS_MODE_ZIP, &root, &used);
        if (r < 0) {
                r = eval_error(c, r, "data.pkl");
                free(owned);
                return r;
        }

        /* Each storage is the stored record <prefix>/data/<key>, its bytes copied as
         * they are: torch reads them without inflating or checking the CRC. */
        for (struct ts_storage *st = ts_storages(c->ts); st; st = st->next_root) {
                snprintf(name, sizeof(name), "%s/data/%.*s", prefix, (int) st->key_len, st->key);
                e = zip_find(z, name);
                if (!e)
                        r = fail(c, "storage '%.*s' has no %s record", (int) st->key_len, st->key, name);
                else if (e->method != ZIP_METHOD_STORED)
                        r = fail(c, "storage record %s is compressed; only stored records are copied", name);
                else if (!e->readable || e->comp_size != e->size || e->data_offset > len || e->size > len - e->data_offset)
                        r = fail(c, "storage record %s lies outside the file", name);
                else if (e->size != st->nbytes)
                        r = fail(c, "storage record %s holds %llu bytes; the pickle declares %llu", name,
                                 (unsigned long long) e->size, (unsigned long long) st->nbytes);
                if (r < 0)
                        break;
                st->file_offset = e->data_offset;
                st->located = true;
        }
        if (r == 0)
                r = plan_from_tree(c, &root);
        free(owned);   /* the tree points into it: after the plan is made */
        return r;
}

/* ---- npy and npz ---------------------------------------------------------------------- */

static int npy_dtype(const char *descr) {
        static const struct {
                const char *descr;
                enum plan_dtype dtype;
        } map[] = {
                { "<f2", PD_F16 }, { "<f4", PD_F32 }, { "<f8", PD_F64 }, { "|i1", PD_I8 }, { "<i1", PD_I8 },
                { "|u1", PD_U8 },  { "<u1", PD_U8 },  { "|b1", PD_BOOL }, { "<i2", PD_I16 }, { "<i4", PD_I32 },
                { "<i8", PD_I64 }, { "<u2", PD_U16 }, { "<u4", PD_U32 },  { "<u8", PD_U64 },
        };
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                if (strcmp(descr, map[i].descr) == 0)
                        return map[i].dtype;
        return -1;
}

/* One array at [buf, buf+len), whose bytes start at `base` in the file. */
static int npy_tensor(struct conv *c, struct scan_ctx *ctx, const uint8_t *buf, size_t len, uint64_t base,
                      const char *array) {
        const char *name = array[0] ? array : "(the array)";
        struct npy_header h;
        struct plan_tensor pt;
        int r, dtype;

        r = npy_header_parse(ctx, buf, len, &h);
        if (r == -ENODATA)
                return fail(c, "'%s': the file ends inside the npy header", name);
        if (r == -ENOMEM)
                return nomem(c);
        if (r < 0)
                return fail(c, "'%s': invalid npy header", name);
        if (h.has_object)
                return fail(c, "'%s': an object array (its data is a pickle), not numbers", name);
        dtype = npy_dtype(h.descr);
        if (dtype < 0)
                return fail(c, "'%s': dtype '%s' is not one safetensors holds (little-endian numbers and bools only)", name,
                            h.descr[0] ? h.descr : "(structured)");
        if (!h.shape_kept)
                return fail(c, "'%s': more than %d dimensions", name, NPY_SHAPE_KEEP);
        if (!h.size_known || h.data_size > len - h.data_offset)
                return fail(c, "'%s': the array needs %llu bytes of data, the file has %zu", name,
                            (unsigned long long) h.data_size, len - h.data_offset);
        memset(&pt, 0, sizeof(pt));
        snprintf(pt.name, sizeof(pt.name), "%s", array);
        pt.dtype = (uint8_t) dtype;
        pt.ndim = h.ndim;
        memcpy(pt.shape, h.shape, sizeof(pt.shape));
        /* Row-major strides, or column-major for fortran_order: the front end
         * gathers those into row-major order. */
        uint64_t s = 1;
        for (unsigned i = 0; i < h.ndim; i++) {
                unsigned d = h.fortran_order ? i : h.ndim - 1 - i;
                pt.stride[d] = s;
                s *= h.shape[d] ? h.shape[d] : 1;   /* bounded by data_size when non-empty */
        }
        pt.storage_start = base + h.data_offset;
        pt.storage_len = h.data_size;
        if ((r = plan_add_tensor(c->plan, &pt)) < 0)
                return r == -ENOMEM ? nomem(c) : fail(c, "more than %u arrays", PLAN_TENSORS_MAX);
        return 0;
}

static int convert_npz(struct conv *c, const uint8_t *buf, size_t len, const struct zip_reader *z,
                       struct scan_ctx *ctx) {
        char name[ZIP_NAME_LEN_MAX + 1];
        int r;

        for (size_t i = 0; i < zip_count(z); i++) {
                const struct zip_entry *e = zip_get(z, i);
                if (e->name_len > 0 && e->name[e->name_len - 1] == '/' && e->size == 0)
                        continue;
                if (!printable(e->name, e->name_len))
                        return fail(c, "an npz member name is not printable UTF-8");
                snprintf(name, sizeof(name), "%.*s", (int) e->name_len, e->name);
                if (e->name_len < 5 || strcmp(name + e->name_len - 4, ".npy") != 0)
                        return fail(c, "npz member '%s' is not an .npy array", name);
                name[e->name_len - 4] = '\0';
                if (!name[0])
                        return fail(c, "an npz member is named only '.npy'");
                if (e->method != ZIP_METHOD_STORED)
                        return fail(c, "npz member '%s.npy' is compressed (np.savez_compressed); only stored arrays are copied", name);
                if (!e->readable || e->comp_size != e->size || e->data_offset > len || e->size > len - e->data_offset)
                        return fail(c, "npz member '%s.npy' lies outside the file", name);
                if ((r = npy_tensor(c, ctx, buf + e->data_offset, (size_t) e->size, e->data_offset, name)) < 0)
                        return r;
        }
        if (c->plan->n_tensors == 0)
                return fail(c, "the npz holds no arrays");
        /* npz member names are unique (zip_open refuses duplicates): nothing to merge. */
        return 0;
}

static int convert_zip(struct conv *c, const uint8_t *buf, size_t len) {
        struct scan_report *rep = malloc(sizeof(*rep));
        struct scan_ctx ctx = { .report = rep };
        struct zip_reader z;
        const struct zip_entry *first;
        const uint8_t *slash;
        char prefix[ZIP_NAME_LEN_MAX + 1];
        bool all_npy = true;
        int r;

        if (!rep)
                return nomem(c);
        report_init(rep);
        r = zip_open(&ctx, buf, len, &z);
        if (r < 0) {
                r = r == -ENOMEM ? nomem(c)
                                 : fail(c, "not a readable zip archive%s%s", rep->n_findings ? ": " : "",
                                        rep->n_findings ? rep->findings[0].message : "");
                free(rep);
                return r;
        }
        if ((r = archive_clean(c, rep, 0)) < 0)
                goto out;
        first = zip_get(&z, 0);
        for (size_t i = 0; i < zip_count(&z); i++) {
                const struct zip_entry *e = zip_get(&z, i);
                if (!(e->name_len > 0 && e->name[e->name_len - 1] == '/' && e->size == 0) &&
                    !(e->name_len >= 4 && memcmp(e->name + e->name_len - 4, ".npy", 4) == 0))
                        all_npy = false;
        }
        if (first && (slash = memchr(first->name, '/', first->name_len)) && slash != first->name &&
            !memchr(first->name, '\0', (size_t) (slash - first->name)) && !all_npy) {
                snprintf(prefix, sizeof(prefix), "%.*s", (int) (slash - first->name), first->name);
                c->plan->format = FMT_PYTORCH_ZIP;
                r = convert_torch_zip(c, buf, len, &z, &ctx, prefix);
        } else if (first && all_npy) {
                c->plan->format = FMT_NPZ;
                r = convert_npz(c, buf, len, &z, &ctx);
        } else
                r = fail(c, "a zip archive that is neither a PyTorch checkpoint nor an npz");
out:
        zip_close(&z);
        free(rep);
        return r;
}

/* ---- legacy torch.save (_use_new_zipfile_serialization=False) ---------------------------- */

static bool is_torch_magic(const struct ts_value *v) {
        size_t n;
        if (v->kind != TS_BIGINT)
                return false;
        n = v->aux;
        /* Redundant sign bytes do not change the value torch compares. */
        while (n > sizeof(torch_magic) && v->s[n - 1] == 0 && !(v->s[n - 2] & 0x80))
                n--;
        return n == sizeof(torch_magic) && memcmp(v->s, torch_magic, n) == 0;
}

static const struct ts_value *dict_get(const struct ts_value *d, const char *key) {
        const struct ts_value *found = NULL;
        if (d->kind != TS_DICT)
                return NULL;
        for (size_t i = 0; i + 1 < d->seq->n; i += 2) {
                const struct ts_value *k = &d->seq->v[i];
                if (k->kind == TS_STR && k->aux == strlen(key) && memcmp(k->s, key, k->aux) == 0)
                        found = &d->seq->v[i + 1];   /* the last one wins */
        }
        return found;
}

static int convert_legacy(struct conv *c, const uint8_t *buf, size_t len) {
        struct ts_value v, root, keys;
        size_t pos = 0, used;
        int r;

        c->plan->format = FMT_PYTORCH_LEGACY;
        /* torch.serialization._legacy_load: magic, protocol version, sys_info, the
         * data, the storage keys; then one raw record per key, in that order. */
        if ((r = ts_eval(c->ts, buf, len, TS_MODE_PLAIN, &v, &used)) < 0)
                return eval_error(c, r, "the first pickle");
        if (!is_torch_magic(&v))
                return fail(c, "a pickle that is not a PyTorch checkpoint (no torch magic number)");
        pos += used;
        if ((r = ts_eval(c->ts, buf + pos, len - pos, TS_MODE_PLAIN, &v, &used)) < 0)
                return eval_error(c, r, "the protocol version pickle");
        if (v.kind != TS_INT || v.i != TORCH_PROTOCOL_VERSION)
                return fail(c, "legacy protocol version is not %d", TORCH_PROTOCOL_VERSION);
        pos += used;
        if ((r = ts_eval(c->ts, buf + pos, len - pos, TS_MODE_PLAIN, &v, &used)) < 0)
                return eval_error(c, r, "the sys_info pickle");
        const struct ts_value *le = dict_get(&v, "little_endian");
        if (v.kind != TS_DICT || (le && !(le->kind == TS_BOOL && le->i)))
                return fail(c, "saved on a big-endian machine (sys_info), or sys_info is not a dict");
        pos += used;
        if ((r = ts_eval(c->ts, buf + pos, len - pos, TS_MODE_LEGACY, &root, &used)) < 0)
                return eval_error(c, r, "the data pickle");
        pos += used;
        if ((r = ts_eval(c->ts, buf + pos, len - pos, TS_MODE_PLAIN, &keys, &used)) < 0)
                return eval_error(c, r, "the storage keys pickle");
        pos += used;
        if (keys.kind != TS_LIST)
                return fail(c, "the storage keys pickle is %s, not a list", keys.kind == TS_TUPLE ? "a tuple" : "not a list");

        for (size_t i = 0; i < keys.seq->n; i++) {
                const struct ts_value *k = &keys.seq->v[i];
                struct ts_storage *st;
                uint64_t count;

                if (k->kind != TS_STR || !(st = ts_storage_find(c->ts, k->s, k->aux)) || st->root != st)
                        return fail(c, "storage key %zu of the keys list names no storage of the data pickle", i);
                if (st->located)
                        return fail(c, "storage '%.*s' is listed twice", (int) st->key_len, st->key);
                /* An 8-byte little-endian element count, then the bytes. */
                if (len - pos < 8)
                        return fail(c, "the file ends before the record of storage '%.*s'", (int) st->key_len, st->key);
                count = 0;
                for (int b = 0; b < 8; b++)
                        count |= (uint64_t) buf[pos + (size_t) b] << (8 * b);
                if (count != st->numel)
                        return fail(c, "storage '%.*s' has a record of %llu elements; the pickle declares %llu",
                                    (int) st->key_len, st->key, (unsigned long long) count, (unsigned long long) st->numel);
                pos += 8;
                if (st->nbytes > len - pos)
                        return fail(c, "the file ends inside the record of storage '%.*s'", (int) st->key_len, st->key);
                st->file_offset = pos;
                st->located = true;
                pos += (size_t) st->nbytes;
        }
        for (struct ts_storage *st = ts_storages(c->ts); st; st = st->next_root)
                if (!st->located)
                        return fail(c, "storage '%.*s' is not in the keys list: torch would leave it uninitialised",
                                    (int) st->key_len, st->key);
        return plan_from_tree(c, &root);
}

/* ---- entry points ------------------------------------------------------------------------ */

int convert_plan_buffer(const uint8_t *buf, size_t len, struct plan *ret) {
        struct conv c = { .plan = ret };
        int r;

        plan_init(ret);
        if (!(c.ts = ts_new()))
                return plan_fail(ret, -ENOMEM, "out of memory");
        if (len >= 4 && (memcmp(buf, "PK\x03\x04", 4) == 0 || memcmp(buf, "PK\x05\x06", 4) == 0))
                r = convert_zip(&c, buf, len);
        else if (npy_sniff(buf, len)) {
                struct scan_report *rep = malloc(sizeof(*rep));
                struct scan_ctx ctx = { .report = rep };
                ret->format = FMT_NPY;
                if (!rep)
                        r = nomem(&c);
                else {
                        report_init(rep);
                        r = npy_tensor(&c, &ctx, buf, len, 0, "");
                        free(rep);
                }
        } else if (tar_sniff(buf, len))
                r = fail(&c, "the pre-1.0 PyTorch tar layout is not converted");
        else if (pickle_sniff(buf, len))
                r = convert_legacy(&c, buf, len);
        else
                r = fail(&c, "not a PyTorch checkpoint, .npy or .npz");
        conv_free(&c);
        if (r < 0) {
                if (!ret->error)
                        plan_fail(ret, r, "conversion failed");
                ret->n_tensors = ret->n_meta = 0;
                return ret->error;
        }
        return 0;
}

int convert_plan_fd(int fd, struct plan *ret) {
        struct stat st;
        void *map;
        int r;

        plan_init(ret);
        /* The fd-only fstat: the worker's filter refuses newfstatat. */
        if (syscall(SYS_fstat, fd, &st) < 0)
                return plan_fail(ret, -errno, "cannot stat the input: %s", strerror(errno));
        if (!S_ISREG(st.st_mode))
                return plan_fail(ret, -EBADFD, "the input is not a regular file");
        if (st.st_size == 0)
                return plan_fail(ret, -EINVAL, "the input is empty");
        if ((uint64_t) st.st_size > SIZE_MAX)
                return plan_fail(ret, -EFBIG, "the input is too large to map");
        map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
                return plan_fail(ret, -errno, "cannot map the input: %s", strerror(errno));
        r = convert_plan_buffer(map, (size_t) st.st_size, ret);
        munmap(map, (size_t) st.st_size);
        return r;
}
