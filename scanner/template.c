/* template.c — finds server-side template injection in Jinja2 chat templates. It
 * tokenizes the code inside {{ }} and {% %} the way Jinja2's lexer does and applies
 * the rules below to the tokens; it never evaluates or renders anything, and it
 * treats the text between blocks as data (with one exception, see R8).
 *
 * Why these rules. llama-cpp-python rendered GGUF chat templates in an unsandboxed
 * jinja2.Environment (CVE-2024-34359). There, any object reaches its class, its
 * module's globals and os by dunder attributes: cycler.__init__.__globals__.os,
 * ''.__class__.__mro__[1].__subclasses__(). Jinja2 looks an attribute up by name
 * in four ways: `.name`, `[expr]` (getitem falls back to getattr for strings),
 * the attr() filter, and the attribute arguments of map/selectattr/rejectattr/
 * groupby/sort/sum/unique/min/max. So a template is hostile when a dunder name
 * reaches one of those, either written out or computed. The rules:
 *
 *  R1 a name containing "__" anywhere in a block (x.__class__, dict(__x=1)).
 *  R2 a string literal that contains "__" once decoded (escapes, and adjacent
 *     literals which Jinja2 concatenates: '_' '_class__'), that spells '_' with an
 *     escape (\x5f, \u005f, \U0000005f, \137), or that uses \N{...}.
 *  R3 an attribute looked up by a computed name: attr(), map('attr', ...) and the
 *     attribute arguments above with anything but one plain literal, or a literal
 *     or `.name` whose (dotted) part starts with '_' (private attribute).
 *  R4 the pieces of a runtime-built underscore: a literal that starts or ends with
 *     '_' and is concatenated, repeated, joined, formatted or passed on (anything
 *     but output or comparison); "%c" (a character from a number); string/pprint
 *     of a generator or a Jinja global (their reprs contain '_'); picking
 *     characters out of such text; a keyword argument named with a leading or
 *     trailing '_' (dict(_=1)|first is "_").
 *  R5 a Jinja global that SSTI payloads start from (lipsum, cycler, joiner,
 *     namespace, self, config, request, url_for, get_flashed_messages) used as an
 *     object: followed by '.', '[' or '|' rather than called.
 *  R6 a subscript whose key is built at runtime (concatenation, repetition,
 *     formatting, a builder filter or method, a call) or is a variable the
 *     template built that way or took from a special token (bos_token,
 *     eos_token, ...: their text comes from the model file, so from the attacker).
 *  R7 str.format()/format_map() on a computed string ("{0.__class__}" walks
 *     attributes).
 *  R8 text captured as a value — the body of {% set x %}...{% endset %},
 *     {% macro %} and {% call %} — that contains "__": that text becomes a string
 *     the template can look attributes up with.
 *
 * R1-R3 and R8 name an internal outright: critical. R4-R7 build one: high (denied
 * by the default policy). Legit chat templates (Llama, Mistral, ChatML, Gemma,
 * Qwen, Phi, DeepSeek, tool-use templates with namespace(), loop, raise_exception,
 * strftime_now, tojson) use none of these constructs. A static check is not a
 * proof: it covers every published technique and the building blocks they use. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "json.h"
#include "template.h"
#include "text-codec.h"

/* Findings per template: one hostile template needs one; more only repeat. */
#define TEMPLATE_FINDINGS_MAX 8

/* Tokens in one {{ }} or {% %} block. Real chat templates have a few thousand in
 * all; a block beyond this is refused (fail closed) rather than analysed. */
#define TEMPLATE_BLOCK_TOKENS_MAX (1u << 20)

/* Bracket nesting inside one block. Real templates nest < 10; the cap keeps the
 * subscript checks linear (each token sits inside at most this many). */
#define TEMPLATE_BRACKET_DEPTH_MAX 64

/* Variables the template builds (R6), remembered by name across blocks. Real
 * templates set ~20 names; a template that builds more is refused. */
#define TEMPLATE_BUILT_MAX 256
#define TEMPLATE_NAME_MAX  64

/* Bytes of source quoted in a message. */
#define TEMPLATE_QUOTE 60

enum tpl_kind {
        TK_NAME,
        TK_STRING,
        TK_NUMBER,
        TK_OP,
};

#define TF_ESC_UNDERSCORE 0x1   /* a string spells '_' with an escape */
#define TF_ESC_NAMED      0x2   /* a string uses \N{...} */
#define TF_FLAGGED        0x4   /* a finding was made for this token */

struct tpl_tok {
        uint8_t kind;
        uint8_t flags;
        uint32_t line;
        const uint8_t *src;     /* source text of the token (strings: with quotes) */
        size_t src_len;
        size_t val, val_len;    /* strings: decoded bytes in the pool */
        size_t match;           /* brackets: index of the partner, or SIZE_MAX */
};

struct tpl_pending {
        uint8_t sev;
        char msg[REPORT_MESSAGE_MAX];
};

struct tpl {
        struct scan_ctx *ctx;
        const char *where;
        struct cursor c;
        uint32_t line;
        bool stmt;              /* the block being analysed is {% %} */
        bool stop;              /* a limit was hit: analysis ended (reported) */
        struct tpl_tok *tok;
        size_t n, cap;
        size_t *stack;          /* bracket matching, as large as tok */
        uint8_t *pool;
        size_t pool_used, pool_cap;
        struct tpl_pending pending[TEMPLATE_FINDINGS_MAX];
        unsigned n_pending, dropped;
        unsigned capture;       /* open {% set x %}, {% macro %}, {% call %} */
        char built[TEMPLATE_BUILT_MAX][TEMPLATE_NAME_MAX];
        size_t n_built;
};

/* ---- findings ---- */

/* Findings wait here until the template is done: identical ones are made once,
 * and past TEMPLATE_FINDINGS_MAX the most severe are kept. */
static void tpl_report(struct tpl *t, enum mg_severity sev, uint32_t line, const char *what,
                       const uint8_t *src, size_t src_len) {
        char msg[REPORT_MESSAGE_MAX];
        unsigned victim = UINT32_MAX;

        snprintf(msg, sizeof(msg), "%s, line %u: %s: %.*s", t->where, line, what,
                 (int) (src_len < TEMPLATE_QUOTE ? src_len : TEMPLATE_QUOTE), (const char *) src);
        for (unsigned i = 0; i < t->n_pending; i++) {
                if (strcmp(t->pending[i].msg, msg) == 0)
                        return;
                if (t->pending[i].sev < sev && (victim == UINT32_MAX || t->pending[i].sev < t->pending[victim].sev))
                        victim = i;
        }
        if (t->n_pending < TEMPLATE_FINDINGS_MAX)
                victim = t->n_pending++;
        else {
                t->dropped++;
                if (victim == UINT32_MAX)
                        return;
        }
        t->pending[victim].sev = (uint8_t) sev;
        memcpy(t->pending[victim].msg, msg, sizeof(msg));
}

/* A finding about tokens [i, j]: quoted as written, except a lone string
 * literal, quoted decoded (what Jinja2 sees). */
static void range_report(struct tpl *t, size_t i, size_t j, enum mg_severity sev, const char *what) {
        struct tpl_tok *k = &t->tok[i];
        uint8_t quote[TEMPLATE_QUOTE + 2];

        if (k->flags & TF_FLAGGED)
                return;
        k->flags |= TF_FLAGGED;
        if (i == j && k->kind == TK_STRING) {
                size_t n = k->val_len < TEMPLATE_QUOTE ? k->val_len : TEMPLATE_QUOTE;
                quote[0] = '\'';
                memcpy(quote + 1, t->pool + k->val, n);
                quote[n + 1] = '\'';
                tpl_report(t, sev, k->line, what, quote, n + 2);
                return;
        }
        tpl_report(t, sev, k->line, what, k->src, (size_t) (t->tok[j].src + t->tok[j].src_len - k->src));
}

static void tok_report(struct tpl *t, size_t i, enum mg_severity sev, const char *what) {
        range_report(t, i, i, sev, what);
}

/* ---- small predicates over tokens ---- */

static bool mem_has(const uint8_t *p, size_t n, const char *needle) {
        size_t m = strlen(needle);

        for (size_t i = 0; i + m <= n; i++)
                if (memcmp(p + i, needle, m) == 0)
                        return true;
        return false;
}

static bool tok_is(const struct tpl *t, size_t i, enum tpl_kind kind, const char *s) {
        return i < t->n && t->tok[i].kind == kind && t->tok[i].src_len == strlen(s) &&
               memcmp(t->tok[i].src, s, t->tok[i].src_len) == 0;
}

static bool op_is(const struct tpl *t, size_t i, const char *s) {
        return tok_is(t, i, TK_OP, s);
}

static bool name_is(const struct tpl *t, size_t i, const char *s) {
        return tok_is(t, i, TK_NAME, s);
}

static bool name_in(const struct tpl *t, size_t i, const char *const *set) {
        for (; *set; set++)
                if (name_is(t, i, *set))
                        return true;
        return false;
}

static const uint8_t *tok_val(const struct tpl *t, size_t i, size_t *ret_len) {
        const struct tpl_tok *k = &t->tok[i];

        if (k->kind == TK_STRING) {
                *ret_len = k->val_len;
                return t->pool + k->val;
        }
        *ret_len = k->src_len;
        return k->src;
}

/* The token before i, or SIZE_MAX at the start of the block. */
static size_t prev_of(size_t i) {
        return i == 0 ? SIZE_MAX : i - 1;
}

/* A filter name: after '|', or the first name of {% filter NAME %}. */
static bool is_filter_at(const struct tpl *t, size_t i) {
        return i < t->n && t->tok[i].kind == TK_NAME && i > 0 &&
               (op_is(t, i - 1, "|") || (t->stmt && i == 1 && name_is(t, 0, "filter")));
}

/* '[' after something subscriptable: a subscript, not a list literal. */
static bool is_subscript(const struct tpl *t, size_t i) {
        size_t p = prev_of(i);

        if (!op_is(t, i, "[") || p == SIZE_MAX)
                return false;
        return (t->tok[p].kind == TK_NAME &&
                !name_in(t, p, (const char *const[]) { "in", "and", "or", "not", "if", "elif", "else", "is", "set",
                                                       "for", "with", "include", "import", "from", "extends", NULL })) ||
               t->tok[p].kind == TK_STRING || op_is(t, p, ")") || op_is(t, p, "]") || op_is(t, p, "}");
}

static const char *const gadget_names[] = {
        "lipsum", "cycler", "joiner", "namespace", "self", "config", "request", "url_for",
        "get_flashed_messages", NULL,
};

/* Filters that make or rearrange text. */
static const char *const text_filters[] = {
        "join", "format", "replace", "reverse", "string", "pprint", "tojson", "xmlattr", "urlencode",
        "truncate", "wordwrap", "center", "indent", NULL,
};

/* Filters that pick pieces out of a sequence (a character out of a text). */
static const char *const pick_filters[] = {
        "list", "first", "last", "batch", "slice", "random", "min", "max", "sum", "map", NULL,
};

/* str methods that make text from other text. */
static const char *const builder_methods[] = {
        "format", "format_map", "join", "replace", "ljust", "rjust", "center", "zfill", "translate",
        "expandtabs", "decode", "encode", NULL,
};

/* Filters whose output repr holds '_' when applied to a generator or a global. */
static const char *const generator_filters[] = {
        "select", "reject", "selectattr", "rejectattr", "map", "items", "batch", "slice", "groupby",
        "dictsort", "unique", NULL,
};

/* Context variables whose text comes from the model file (token texts). */
static bool is_special_token_name(const struct tpl *t, size_t i) {
        const struct tpl_tok *k = &t->tok[i];

        return k->kind == TK_NAME && k->src_len > 6 && memcmp(k->src + k->src_len - 6, "_token", 6) == 0 &&
               !(i > 0 && op_is(t, i - 1, "."));
}

/* The name a variable is remembered by: "x", or "ns.x" for a namespace
 * attribute (the name at i is the x). 0 when it cannot be named. */
static size_t built_key(const struct tpl *t, size_t i, char key[TEMPLATE_NAME_MAX]) {
        const struct tpl_tok *k = &t->tok[i];

        if (k->kind != TK_NAME)
                return 0;
        if (i > 0 && op_is(t, i - 1, ".")) {
                const struct tpl_tok *base = i > 1 ? &t->tok[i - 2] : NULL;
                if (!base || base->kind != TK_NAME || base->src_len + 1 + k->src_len >= TEMPLATE_NAME_MAX)
                        return 0;
                memcpy(key, base->src, base->src_len);
                key[base->src_len] = '.';
                memcpy(key + base->src_len + 1, k->src, k->src_len);
                key[base->src_len + 1 + k->src_len] = '\0';
                return base->src_len + 1 + k->src_len;
        }
        if (k->src_len >= TEMPLATE_NAME_MAX)
                return 0;
        memcpy(key, k->src, k->src_len);
        key[k->src_len] = '\0';
        return k->src_len;
}

static bool is_built_name(const struct tpl *t, size_t i) {
        char key[TEMPLATE_NAME_MAX];

        if (is_special_token_name(t, i))
                return true;
        if (built_key(t, i, key) == 0)
                return false;
        for (size_t j = 0; j < t->n_built; j++)
                if (strcmp(t->built[j], key) == 0)
                        return true;
        return false;
}

/* Remembers the variable named at i (a set or for target) as built. */
static void built_add(struct tpl *t, size_t i) {
        char key[TEMPLATE_NAME_MAX];

        if (is_built_name(t, i))
                return;
        if (built_key(t, i, key) == 0 || t->n_built >= TEMPLATE_BUILT_MAX) {
                /* Cannot remember it: refuse rather than forget (fail closed). */
                tok_report(t, i, SEV_HIGH, "builds more (or longer-named) strings than the checker tracks");
                return;
        }
        memcpy(t->built[t->n_built++], key, sizeof(key));
}

/* Set and for targets: names, and ns.attr (not the ns of it). */
static void built_add_targets(struct tpl *t, size_t a, size_t b) {
        for (size_t i = a; i < b; i++)
                if (t->tok[i].kind == TK_NAME && !op_is(t, i + 1, "."))
                        built_add(t, i);
}

/* What counts as building a string, by where the expression is used. */
enum build_use {
        USE_KEY,        /* a subscript key: anything computed beyond arithmetic */
        USE_SET,        /* {% set x = ... %}: x is built when text is made */
        USE_FOR,        /* {% for x in ... %}: like set, but calls (items(), range()) do not count */
};

/* Tokens [a, b) build a string at runtime (R6; also marks {% set %} and
 * {% for %} variables as built). Arithmetic on numbers is not building: '+', '*'
 * and '%' count only next to a string literal or a built variable. */
static bool range_builds(const struct tpl *t, size_t a, size_t b, enum build_use use) {
        bool has_text = false, has_arith = false;

        for (size_t i = a; i < b; i++) {
                const struct tpl_tok *k = &t->tok[i];
                bool attr = i > a && op_is(t, i - 1, ".");

                bool built = k->kind == TK_NAME && !op_is(t, i + 1, ".") && is_built_name(t, i);

                if (k->kind == TK_STRING || built)
                        has_text = true;
                if (op_is(t, i, "~"))
                        return true;
                if (op_is(t, i, "+") || op_is(t, i, "*") || op_is(t, i, "%"))
                        has_arith = true;
                if (is_filter_at(t, i) && (name_in(t, i, text_filters) || (use == USE_KEY && name_in(t, i, pick_filters))))
                        return true;
                if (k->kind == TK_NAME && attr && name_in(t, i, builder_methods) && op_is(t, i + 1, "("))
                        return true;
                if (built && use != USE_FOR)
                        return true;
                /* A call (not a filter's arguments): caller(), a macro, a method. */
                if (use != USE_FOR && k->kind == TK_NAME && i + 1 < b && op_is(t, i + 1, "(") && !is_filter_at(t, i))
                        return true;
        }
        return has_arith && has_text;
}

/* ---- arguments of a call: '(' at `open`, ')' at t->tok[open].match ---- */

struct tpl_arg {
        size_t a, b;            /* value tokens [a, b) */
        size_t kw;              /* keyword name token, or SIZE_MAX */
};

/* The i-th positional argument, or the keyword argument `kw`: false when absent. */
static bool call_arg(const struct tpl *t, size_t open, size_t pos, const char *kw, struct tpl_arg *ret) {
        size_t close = t->tok[open].match, start = open + 1, npos = 0;

        if (close == SIZE_MAX)
                return false;
        for (size_t i = start; i <= close; i++) {
                if (i < close && t->tok[i].match != SIZE_MAX && t->tok[i].match > i) {
                        i = t->tok[i].match;   /* skip a nested bracket */
                        continue;
                }
                if (i < close && !op_is(t, i, ","))
                        continue;
                if (i > start) {
                        struct tpl_arg arg = { start, i, SIZE_MAX };
                        if (i - start >= 2 && t->tok[start].kind == TK_NAME && op_is(t, start + 1, "=")) {
                                arg.kw = start;
                                arg.a = start + 2;
                        }
                        if (arg.kw == SIZE_MAX && kw == NULL && npos == pos) {
                                *ret = arg;
                                return true;
                        }
                        if (arg.kw != SIZE_MAX && kw && name_is(t, arg.kw, kw)) {
                                *ret = arg;
                                return true;
                        }
                        if (arg.kw == SIZE_MAX)
                                npos++;
                }
                start = i + 1;
        }
        return false;
}

static bool arg_is_literal(const struct tpl *t, const struct tpl_arg *arg) {
        if (arg->b - arg->a == 1)
                return t->tok[arg->a].kind == TK_STRING || t->tok[arg->a].kind == TK_NUMBER;
        return arg->b - arg->a == 2 && op_is(t, arg->a, "-") && t->tok[arg->a + 1].kind == TK_NUMBER;
}

/* A literal attribute path ("a.b"): a part starting with '_' is private. */
static bool literal_path_private(const struct tpl *t, size_t i) {
        size_t n;
        const uint8_t *v = tok_val(t, i, &n);

        if (t->tok[i].kind != TK_STRING)
                return false;
        for (size_t j = 0; j < n; j++)
                if (v[j] == '_' && (j == 0 || v[j - 1] == '.'))
                        return true;
        return false;
}

/* R3: the attribute-name argument of a filter call at `open`. */
static void check_attr_arg(struct tpl *t, size_t filter, size_t open, size_t pos, const char *kw) {
        struct tpl_arg arg;
        bool found = kw ? call_arg(t, open, 0, kw, &arg) : call_arg(t, open, pos, NULL, &arg);

        if (!found)
                return;
        if (!arg_is_literal(t, &arg))
                range_report(t, filter, t->tok[open].match, SEV_CRITICAL, "looks up an attribute whose name is computed");
        else if (literal_path_private(t, arg.a))
                tok_report(t, arg.a, SEV_CRITICAL, "looks up a private attribute");
}

/* R4: is the value of tokens [a, b) an object whose text holds '_': a generator
 * (the last filter applied is select, map, items, ...) or a Jinja global itself?
 * (messages|selectattr(...)|list|length) is a number: not one. */
static bool operand_is_internal(const struct tpl *t, size_t a, size_t b) {
        size_t last = SIZE_MAX;

        while (b > a + 1 && op_is(t, b - 1, ")") && t->tok[b - 1].match == a)
                a++, b--;
        for (size_t j = a; j < b; j++) {
                if (t->tok[j].match != SIZE_MAX && t->tok[j].match > j && t->tok[j].match < b) {
                        j = t->tok[j].match;
                        continue;
                }
                if (op_is(t, j, "|") && j + 1 < b && t->tok[j + 1].kind == TK_NAME)
                        last = j + 1;
        }
        if (last != SIZE_MAX)
                return name_in(t, last, generator_filters);
        return a < b && name_in(t, a, gadget_names);
}

/* The start of the operand of the filter whose '|' is at `bar`: back over names,
 * literals, '.', '|' and bracketed groups, to an operator, a keyword or an open
 * bracket. */
static size_t filter_operand_start(const struct tpl *t, size_t bar) {
        static const char *const keywords[] = { "in", "and", "or", "not", "if", "else", "is", "set", "for",
                                                "filter", NULL };
        size_t j = bar;

        while (j > 0) {
                size_t q = j - 1;
                const struct tpl_tok *k = &t->tok[q];

                if ((op_is(t, q, ")") || op_is(t, q, "]") || op_is(t, q, "}")) && k->match != SIZE_MAX) {
                        j = k->match;
                        continue;
                }
                if (k->kind == TK_OP && !op_is(t, q, "|") && !op_is(t, q, "."))
                        break;
                if (k->kind == TK_NAME && name_in(t, q, keywords))
                        break;
                j = q;
        }
        return j;
}

static void check_filter(struct tpl *t, size_t i) {
        size_t open = i + 1;
        bool args = op_is(t, open, "(") && t->tok[open].match != SIZE_MAX;

        if (args && name_is(t, i, "attr")) {
                check_attr_arg(t, i, open, 0, NULL);
        } else if (args && name_in(t, i, (const char *const[]) { "selectattr", "rejectattr", "groupby", NULL })) {
                check_attr_arg(t, i, open, 0, NULL);
                check_attr_arg(t, i, open, 0, "attribute");
        } else if (args && name_in(t, i, (const char *const[]) { "sort", "sum", "unique", "min", "max", NULL })) {
                check_attr_arg(t, i, open, 0, "attribute");
        } else if (args && name_is(t, i, "map")) {
                struct tpl_arg first;
                check_attr_arg(t, i, open, 0, "attribute");
                if (call_arg(t, open, 0, NULL, &first)) {
                        size_t n;
                        const uint8_t *v = tok_val(t, first.a, &n);
                        if (!arg_is_literal(t, &first))
                                range_report(t, i, t->tok[open].match, SEV_CRITICAL, "applies a filter whose name is computed");
                        else if (n == 4 && memcmp(v, "attr", 4) == 0)
                                check_attr_arg(t, i, open, 1, NULL);
                }
        }

        /* R4: the text of a generator or a global, or characters picked out of it. */
        if (name_is(t, i, "string") || name_is(t, i, "pprint")) {
                size_t start = filter_operand_start(t, i - 1);
                if (operand_is_internal(t, start, i - 1)) {
                        t->tok[start].flags &= (uint8_t) ~TF_FLAGGED;
                        range_report(t, start, i, SEV_HIGH, "turns an internal object into text");
                }
                if (op_is(t, i + 1, "|") && name_in(t, i + 2, pick_filters))
                        tok_report(t, i, SEV_HIGH, "picks characters out of an object's text");
        }
}

/* R6 and R4 (characters picked out of text) for the subscript at '[' i. */
static void check_subscript(struct tpl *t, size_t i) {
        size_t close = t->tok[i].match, p = i - 1;

        if (close == SIZE_MAX)
                return;
        if (range_builds(t, i + 1, close, USE_KEY))
                range_report(t, i, close, SEV_HIGH, "looks up an attribute or item by a computed name");
        if (op_is(t, p, ")") && t->tok[p].match != SIZE_MAX) {
                for (size_t j = t->tok[p].match + 1; j < p; j++)
                        if (is_filter_at(t, j) && (name_is(t, j, "string") || name_is(t, j, "pprint"))) {
                                range_report(t, t->tok[p].match, close, SEV_HIGH, "picks characters out of an object's text");
                                break;
                        }
        }
}

/* R4: where an underscore-edged literal sits. Output on its own and comparisons
 * are data; everything else may feed a name. */
static bool literal_in_data_position(const struct tpl *t, size_t i) {
        static const char *const cmp_ops[] = { "==", "!=", "<", ">", "<=", ">=", NULL };
        static const char *const cmp_words[] = { "in", "not", "is", NULL };
        size_t p = prev_of(i), q = i + 1;

        for (const char *const *o = cmp_ops; *o; o++)
                if ((p != SIZE_MAX && op_is(t, p, *o)) || op_is(t, q, *o))
                        return true;
        if ((p != SIZE_MAX && name_in(t, p, cmp_words)) || name_in(t, q, cmp_words))
                return true;
        return !t->stmt && p == SIZE_MAX && q == t->n;
}

/* ---- statements that bind names or capture text ---- */

static size_t find_top_level(const struct tpl *t, size_t from, bool (*pred)(const struct tpl *, size_t)) {
        for (size_t i = from; i < t->n; i++) {
                if (t->tok[i].match != SIZE_MAX && t->tok[i].match > i) {
                        i = t->tok[i].match;
                        continue;
                }
                if (pred(t, i))
                        return i;
        }
        return SIZE_MAX;
}

static bool is_assign(const struct tpl *t, size_t i) {
        return op_is(t, i, "=");
}

static bool is_in_word(const struct tpl *t, size_t i) {
        return name_is(t, i, "in");
}

static bool is_for_tail(const struct tpl *t, size_t i) {
        return name_is(t, i, "if") || name_is(t, i, "recursive");
}

static void statement(struct tpl *t) {
        if (t->n == 0 || t->tok[0].kind != TK_NAME)
                return;
        if (name_is(t, 0, "set")) {
                size_t eq = find_top_level(t, 1, is_assign);
                if (eq == SIZE_MAX) {
                        /* {% set x %}...{% endset %}: the body is a string value. */
                        size_t bar = 1;
                        t->capture++;
                        while (bar < t->n && !op_is(t, bar, "|"))
                                bar++;
                        built_add_targets(t, 1, bar);
                        return;
                }
                if (range_builds(t, eq + 1, t->n, USE_SET))
                        built_add_targets(t, 1, eq);
        } else if (name_is(t, 0, "for")) {
                size_t in = find_top_level(t, 1, is_in_word), end;
                if (in == SIZE_MAX)
                        return;
                end = find_top_level(t, in + 1, is_for_tail);
                if (range_builds(t, in + 1, end == SIZE_MAX ? t->n : end, USE_FOR))
                        built_add_targets(t, 1, in);
        } else if (name_is(t, 0, "macro") || name_is(t, 0, "call")) {
                t->capture++;
        } else if (name_in(t, 0, (const char *const[]) { "endset", "endmacro", "endcall", NULL })) {
                if (t->capture > 0)
                        t->capture--;
        }
}

/* ---- the rules over one block's tokens ---- */

static void analyse_block(struct tpl *t) {
        if (t->stmt)
                statement(t);
        for (size_t i = 0; i < t->n && !t->stop; i++) {
                struct tpl_tok *k = &t->tok[i];
                size_t p = prev_of(i), n;
                const uint8_t *v = tok_val(t, i, &n);

                switch (k->kind) {
                case TK_NAME:
                        if (mem_has(v, n, "__"))
                                tok_report(t, i, SEV_CRITICAL, "names a Python internal");
                        else if (p != SIZE_MAX && op_is(t, p, ".") && v[0] == '_')
                                tok_report(t, i, SEV_CRITICAL, "reads a private attribute");
                        else if (name_in(t, i, gadget_names) && !(p != SIZE_MAX && op_is(t, p, ".")) &&
                                 !op_is(t, i + 1, "=") &&
                                 (op_is(t, i + 1, ".") || op_is(t, i + 1, "[") || op_is(t, i + 1, "|")))
                                tok_report(t, i, SEV_HIGH, "uses a Jinja global as an object");
                        else if (op_is(t, i + 1, "=") && p != SIZE_MAX && (op_is(t, p, "(") || op_is(t, p, ",")) &&
                                 (v[0] == '_' || v[n - 1] == '_') &&
                                 !(t->stmt && (name_is(t, 0, "set") || name_is(t, 0, "macro"))))
                                tok_report(t, i, SEV_HIGH, "names a keyword argument with '_' at its edge");
                        if (is_filter_at(t, i))
                                check_filter(t, i);
                        else if (p != SIZE_MAX && op_is(t, p, ".") && (name_is(t, i, "format") || name_is(t, i, "format_map")) &&
                                 op_is(t, i + 1, "(") && !(i >= 2 && t->tok[i - 2].kind == TK_STRING))
                                tok_report(t, i, SEV_HIGH, "formats a computed string with str.format");
                        break;
                case TK_STRING:
                        if (mem_has(v, n, "__"))
                                tok_report(t, i, SEV_CRITICAL, "string names a Python internal");
                        else if (k->flags & TF_ESC_UNDERSCORE)
                                tok_report(t, i, SEV_CRITICAL, "string spells '_' with an escape");
                        else if (k->flags & TF_ESC_NAMED)
                                tok_report(t, i, SEV_CRITICAL, "string uses a \\N{...} escape");
                        else if (n > 0 && (v[0] == '_' || v[n - 1] == '_') && !literal_in_data_position(t, i))
                                tok_report(t, i, SEV_HIGH, "builds a name from underscore pieces");
                        else if (mem_has(v, n, "%c"))
                                tok_report(t, i, SEV_HIGH, "formats characters from numbers (%c)");
                        break;
                case TK_OP:
                        if (is_subscript(t, i))
                                check_subscript(t, i);
                        break;
                default:
                        break;
                }
        }
}

/* ---- the lexer ---- */

static int peek(const struct tpl *t, size_t k) {
        if (k >= cursor_left(&t->c))
                return -1;
        return t->c.base[t->c.pos + k];
}

static void advance(struct tpl *t, size_t k) {
        for (size_t j = 0; j < k; j++)
                if (peek(t, 0) == '\n')
                        t->line++, (void) cursor_skip(&t->c, 1);
                else
                        (void) cursor_skip(&t->c, 1);
}

static bool pool_reserve(struct tpl *t, size_t n) {
        if (n <= t->pool_cap - t->pool_used)
                return true;
        size_t cap = t->pool_cap ? t->pool_cap : 4096;
        while (cap - t->pool_used < n)
                cap *= 2;
        uint8_t *p = realloc(t->pool, cap);
        if (!p)
                return false;
        t->pool = p;
        t->pool_cap = cap;
        return true;
}

static void pool_put_cp(struct tpl *t, uint32_t cp) {
        t->pool_used += utf8_encode(cp, t->pool + t->pool_used);
}

/* A string literal at the cursor (Jinja2's string_re), decoded as Jinja2 does:
 * newlines normalised, then Python's unicode-escape. Returns false when it is not
 * terminated (the template does not compile). */
static bool lex_string(struct tpl *t, struct tpl_tok *k) {
        int q = peek(t, 0);
        size_t start = t->c.pos;

        /* Decoding never grows the text except \N{LOW LINE}-style escapes, which
         * shrink: the source length bounds the decoded length (+4 for one cp). */
        k->val = t->pool_used;
        advance(t, 1);
        for (;;) {
                int ch = peek(t, 0);
                if (ch < 0)
                        return false;
                if (!pool_reserve(t, 8))
                        return false;
                if (ch == q) {
                        advance(t, 1);
                        break;
                }
                if (ch != '\\') {
                        /* _normalize_newlines(): "\r\n" and "\r" become "\n". */
                        t->pool[t->pool_used++] = ch == '\r' ? '\n' : (uint8_t) ch;
                        advance(t, 1);
                        if (ch == '\r' && peek(t, 0) == '\n')
                                advance(t, 1);
                        continue;
                }
                int e = peek(t, 1);
                if (e < 0)
                        return false;
                advance(t, 2);
                uint32_t cp = UINT32_MAX;
                switch (e) {
                case '\n':
                        break;
                case '\r':
                        if (peek(t, 0) == '\n')
                                advance(t, 1);
                        break;
                case '\\': case '\'': case '"': cp = (uint32_t) e; break;
                case 'a': cp = 7; break;
                case 'b': cp = 8; break;
                case 'f': cp = 12; break;
                case 'n': cp = 10; break;
                case 'r': cp = 13; break;
                case 't': cp = 9; break;
                case 'v': cp = 11; break;
                case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
                        cp = (uint32_t) (e - '0');
                        for (int d = 0; d < 2 && peek(t, 0) >= '0' && peek(t, 0) <= '7'; d++) {
                                cp = cp * 8 + (uint32_t) (peek(t, 0) - '0');
                                advance(t, 1);
                        }
                        break;
                case 'x': case 'u': case 'U': {
                        int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                        uint32_t v = 0;
                        bool ok = true;
                        for (int d = 0; d < digits; d++)
                                if (hex_digit_value(peek(t, (size_t) d)) < 0)
                                        ok = false;
                                else
                                        v = v << 4 | (uint32_t) hex_digit_value(peek(t, (size_t) d));
                        if (ok && v <= 0x10ffff) {
                                advance(t, (size_t) digits);
                                cp = v;
                        } else {
                                /* Python refuses it: the template does not compile. */
                                t->pool[t->pool_used++] = '\\';
                                cp = (uint32_t) e;
                        }
                        break;
                }
                case 'N': {
                        /* \N{NAME}: not resolved here; no chat template needs it. */
                        static const char low_line[] = "{LOW LINE}";
                        k->flags |= TF_ESC_NAMED;
                        if (peek(t, 0) == '{') {
                                size_t m = 0;
                                bool is_low_line;
                                while (peek(t, m) >= 0 && peek(t, m) != '}' && peek(t, m) != q)
                                        m++;
                                is_low_line = peek(t, m) == '}' && m + 1 == sizeof(low_line) - 1;
                                for (size_t j = 0; is_low_line && j < m; j++) {
                                        int a = peek(t, j), b = low_line[j];
                                        if ((a >= 'a' && a <= 'z' ? a - 'a' + 'A' : a) != b)
                                                is_low_line = false;
                                }
                                if (peek(t, m) == '}')
                                        advance(t, m + 1);
                                cp = is_low_line ? '_' : '?';
                        } else {
                                t->pool[t->pool_used++] = '\\';
                                cp = 'N';
                        }
                        break;
                }
                default:
                        /* Python keeps an unknown escape as written. */
                        t->pool[t->pool_used++] = '\\';
                        cp = (uint32_t) e;
                        break;
                }
                if (cp == UINT32_MAX)
                        continue;
                if (cp == '_' && e != '_')
                        k->flags |= TF_ESC_UNDERSCORE;
                pool_put_cp(t, cp);
        }
        k->val_len = t->pool_used - k->val;
        k->src = t->c.base + start;
        k->src_len = t->c.pos - start;
        return true;
}

static bool is_name_start(int ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch >= 0x80;
}

static bool is_name_char(int ch) {
        return is_name_start(ch) || (ch >= '0' && ch <= '9');
}

static struct tpl_tok *tok_new(struct tpl *t, enum tpl_kind kind) {
        if (t->n >= t->cap) {
                size_t cap = t->cap ? 2 * t->cap : 256;
                if (cap > TEMPLATE_BLOCK_TOKENS_MAX)
                        return NULL;
                struct tpl_tok *tok = realloc(t->tok, cap * sizeof(*tok));
                if (!tok)
                        return NULL;
                t->tok = tok;
                size_t *stack = realloc(t->stack, cap * sizeof(*stack));
                if (!stack)
                        return NULL;
                t->stack = stack;
                t->cap = cap;
        }
        struct tpl_tok *k = &t->tok[t->n++];
        *k = (struct tpl_tok) { .kind = (uint8_t) kind, .line = t->line, .src = t->c.base + t->c.pos,
                                .match = SIZE_MAX };
        return k;
}

/* Lexes one block whose opening delimiter has been consumed, up to and including
 * its closing delimiter ("}}" or "%}", with a '-' or '+' modifier) at bracket depth
 * 0 (Jinja2 does not end a block inside brackets). Returns 0, -ENODATA when the
 * template ends first (it does not compile; what was lexed is still analysed),
 * -E2BIG/-ENOMEM past a limit. */
static int lex_block(struct tpl *t) {
        const int end = t->stmt ? '%' : '}';
        size_t depth = 0;

        t->n = 0;
        t->pool_used = 0;
        if (peek(t, 0) == '-' || peek(t, 0) == '+')
                advance(t, 1);
        for (;;) {
                int ch = peek(t, 0);
                struct tpl_tok *k;

                if (ch < 0)
                        return -ENODATA;
                if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v') {
                        advance(t, 1);
                        continue;
                }
                if (depth == 0) {
                        size_t m = (ch == '-' || ch == '+') ? 1 : 0;
                        if (peek(t, m) == end && peek(t, m + 1) == '}') {
                                advance(t, m + 2);
                                return 0;
                        }
                }
                if (ch == '\'' || ch == '"') {
                        bool merge = t->n > 0 && t->tok[t->n - 1].kind == TK_STRING;
                        struct tpl_tok s = { .kind = TK_STRING, .line = t->line, .match = SIZE_MAX };
                        if (!lex_string(t, &s))
                                return -ENODATA;
                        if (merge) {
                                /* 'a' 'b' is one literal "ab": the decoded bytes are adjacent. */
                                struct tpl_tok *prev = &t->tok[t->n - 1];
                                prev->src_len = (size_t) (s.src + s.src_len - prev->src);
                                prev->val_len += s.val_len;
                                prev->flags |= s.flags;
                                continue;
                        }
                        k = tok_new(t, TK_STRING);
                        if (!k)
                                return -E2BIG;
                        *k = s;
                        continue;
                }
                if (is_name_start(ch)) {
                        size_t m = 1;
                        while (is_name_char(peek(t, m)))
                                m++;
                        k = tok_new(t, TK_NAME);
                        if (!k)
                                return -E2BIG;
                        k->src_len = m;
                        advance(t, m);
                        continue;
                }
                if (ch >= '0' && ch <= '9') {
                        size_t m = 1;
                        for (;;) {
                                int d = peek(t, m);
                                if (is_name_char(d) || (d == '.' && peek(t, m + 1) >= '0' && peek(t, m + 1) <= '9'))
                                        m++;
                                else
                                        break;
                        }
                        k = tok_new(t, TK_NUMBER);
                        if (!k)
                                return -E2BIG;
                        k->src_len = m;
                        advance(t, m);
                        continue;
                }
                k = tok_new(t, TK_OP);
                if (!k)
                        return -E2BIG;
                k->src_len = 1;
                {
                        int d = peek(t, 1);
                        if ((ch == '/' && d == '/') || (ch == '*' && d == '*') || (d == '=' && strchr("=!<>", ch)))
                                k->src_len = 2;
                }
                if (ch == '(' || ch == '[' || ch == '{') {
                        if (depth >= TEMPLATE_BRACKET_DEPTH_MAX)
                                return -E2BIG;
                        t->stack[depth++] = t->n - 1;
                } else if ((ch == ')' || ch == ']' || ch == '}') && depth > 0) {
                        size_t o = t->stack[--depth];
                        t->tok[o].match = t->n - 1;
                        k->match = o;
                }
                advance(t, k->src_len);
        }
}

/* The end of {% raw %}: "{%" [-+] "endraw" [-+] "%}". Returns false if absent. */
static bool skip_raw(struct tpl *t) {
        for (;;) {
                const uint8_t *rest = t->c.base + t->c.pos;
                const uint8_t *b = memchr(rest, '{', cursor_left(&t->c));
                if (!b)
                        return false;
                advance(t, (size_t) (b - rest));
                size_t m = 2;
                if (peek(t, 1) != '%') {
                        advance(t, 1);
                        continue;
                }
                if (peek(t, m) == '-' || peek(t, m) == '+')
                        m++;
                while (peek(t, m) == ' ' || peek(t, m) == '\t' || peek(t, m) == '\n' || peek(t, m) == '\r')
                        m++;
                if (cursor_left(&t->c) - m >= 6 && memcmp(t->c.base + t->c.pos + m, "endraw", 6) == 0) {
                        m += 6;
                        while (peek(t, m) == ' ' || peek(t, m) == '\t' || peek(t, m) == '\n' || peek(t, m) == '\r')
                                m++;
                        if (peek(t, m) == '-' || peek(t, m) == '+')
                                m++;
                        if (peek(t, m) == '%' && peek(t, m + 1) == '}') {
                                advance(t, m + 2);
                                return true;
                        }
                }
                advance(t, 1);
        }
}

/* "{% raw %}" at the cursor (after "{%")? Consumes it when so. */
static bool at_raw(struct tpl *t) {
        size_t m = 0;

        if (peek(t, m) == '-' || peek(t, m) == '+')
                m++;
        while (peek(t, m) == ' ' || peek(t, m) == '\t' || peek(t, m) == '\n' || peek(t, m) == '\r')
                m++;
        if (cursor_left(&t->c) - m < 3 || memcmp(t->c.base + t->c.pos + m, "raw", 3) != 0)
                return false;
        m += 3;
        while (peek(t, m) == ' ' || peek(t, m) == '\t' || peek(t, m) == '\n' || peek(t, m) == '\r')
                m++;
        if (peek(t, m) == '-' || peek(t, m) == '+')
                m++;
        if (peek(t, m) != '%' || peek(t, m + 1) != '}')
                return false;
        advance(t, m + 2);
        return true;
}

/* Text between blocks: data, unless a {% set %}/{% macro %}/{% call %} captures
 * it as a string (R8). */
static void text_segment(struct tpl *t, size_t n) {
        const uint8_t *s = t->c.base + t->c.pos;
        uint32_t line = t->line;

        if (t->capture > 0) {
                for (size_t i = 0; i + 1 < n; i++) {
                        if (s[i] == '\n')
                                line++;
                        if (s[i] == '_' && s[i + 1] == '_') {
                                size_t a = i > 20 ? i - 20 : 0;
                                tpl_report(t, SEV_CRITICAL, line,
                                           "text captured as a string by {% set %}, {% macro %} or {% call %} names a Python internal",
                                           s + a, n - a);
                                break;
                        }
                }
        }
        advance(t, n);
}

/* ---- does it compile? ----
 * Jinja2 compiles a whole template before it renders any of it, so text with a
 * syntax error anywhere never runs. A text file is taken for a template only when
 * none of these errors, each one Jinja2 raises at compile time, is present:
 * an unterminated block or comment, an empty {{ }} or {% %}, a {% %} whose first
 * token is not a tag the chat-template environments know (Jinja2's own tags plus
 * those of the loopcontrols, do, i18n and transformers' generation extensions), a
 * character the lexer has no token for, or a bracket closed by the wrong kind; and
 * in a {{ }} expression (whose grammar is small), two operands with no operator
 * between them ("var x"), an '=' outside a call's parentheses, or a {...} that is
 * not a dict ({x}). Python, JavaScript or C source with "{{" or "{%s" in its
 * strings fails one of these. */

/* Words that may stand next to an operand in an expression. */
static const char *const expr_keywords[] = { "and", "or", "not", "in", "is", "if", "else", NULL };

static bool is_operand(const struct tpl *t, size_t i) {
        return t->tok[i].kind != TK_OP && !(t->tok[i].kind == TK_NAME && name_in(t, i, expr_keywords));
}

/* A {...} in an expression is a dict: empty, or with a ':' at its own level. */
static bool brace_is_dict(const struct tpl *t, size_t open) {
        size_t close = t->tok[open].match;
        if (close == open + 1)
                return true;
        for (size_t i = open + 1; i < close; i++) {
                if (op_is(t, i, ":"))
                        return true;
                if (t->tok[i].kind == TK_OP && t->tok[i].match != SIZE_MAX && t->tok[i].match > i)
                        i = t->tok[i].match;   /* skip a nested bracket */
        }
        return false;
}

static const char *const known_tags[] = {
        "for", "endfor", "if", "elif", "else", "endif", "set", "endset", "macro", "endmacro", "call", "endcall",
        "filter", "endfilter", "block", "endblock", "extends", "include", "import", "from", "with", "endwith", "print",
        "autoescape", "endautoescape", "raw", "endraw", "do", "break", "continue", "trans", "pluralize",
        "endtrans", "generation", "endgeneration", NULL,
};

/* Tokens [.., i] end a test name after "is" or "is not" ("x is divisibleby 3",
 * "x is foo.bar y"): Jinja2 takes one operand after it as the test's argument. */
static bool ends_test_name(const struct tpl *t, size_t i) {
        if (t->tok[i].kind != TK_NAME)
                return false;
        while (i >= 2 && op_is(t, i - 1, ".") && t->tok[i - 2].kind == TK_NAME)
                i -= 2;
        if (i >= 2 && name_is(t, i - 1, "not"))
                i--;
        return i >= 1 && name_is(t, i - 1, "is");
}

static bool block_compiles(const struct tpl *t) {
        if (t->n == 0)
                return false;
        if (t->stmt && (t->tok[0].kind != TK_NAME || !name_in(t, 0, known_tags)))
                return false;
        for (size_t i = 0; i < t->n; i++) {
                const struct tpl_tok *k = &t->tok[i];
                if (k->kind != TK_OP)
                        continue;
                uint8_t ch = k->src[0];
                if (!strchr("+-/*%~[](){}=.:|,;<>!", ch) || (ch == '!' && k->src_len != 2))
                        return false;
                if (ch == '(' || ch == '[' || ch == '{') {
                        if (k->match == SIZE_MAX)
                                return false;
                        uint8_t close = t->tok[k->match].src[0];
                        if ((ch == '(' && close != ')') || (ch == '[' && close != ']') || (ch == '{' && close != '}'))
                                return false;
                } else if ((ch == ')' || ch == ']' || ch == '}') && k->match == SIZE_MAX)
                        return false;
        }
        if (t->stmt)
                return true;   /* statements have their own grammar: only the checks above */
        size_t depth = 0;
        for (size_t i = 0; i < t->n; i++) {
                const struct tpl_tok *k = &t->tok[i];
                if (i > 0 && is_operand(t, i - 1) && is_operand(t, i) && !ends_test_name(t, i - 1))
                        return false;
                if (k->kind != TK_OP)
                        continue;
                if (k->src[0] == '(' || k->src[0] == '[' || k->src[0] == '{') {
                        if (k->src[0] == '{' && !brace_is_dict(t, i))
                                return false;
                        depth++;
                } else if (k->src[0] == ')' || k->src[0] == ']' || k->src[0] == '}')
                        depth--;
                else if (k->src[0] == '=' && k->src_len == 1 && depth == 0)
                        return false;
        }
        return true;
}

static bool template_run(struct scan_ctx *ctx, const char *where, const uint8_t *text, size_t len, bool validate,
                         bool *ret_compiles);

bool template_compiles(const uint8_t *text, size_t len) {
        bool ok = false;
        (void) template_run(NULL, "", text, len, true, &ok);
        return ok;
}

bool template_check(struct scan_ctx *ctx, const char *where, const uint8_t *text, size_t len) {
        return template_run(ctx, where, text, len, false, NULL);
}

static bool template_run(struct scan_ctx *ctx, const char *where, const uint8_t *text, size_t len, bool validate,
                         bool *ret_compiles) {
        struct tpl t = { .ctx = ctx, .where = where, .c = cursor_make(text, len), .line = 1 };
        bool any, compiles = true;

        while (cursor_left(&t.c) > 0 && !t.stop) {
                const uint8_t *rest = t.c.base + t.c.pos, *b = rest;
                size_t left = cursor_left(&t.c);

                /* The next "{{", "{%" or "{#". */
                for (;;) {
                        b = memchr(b, '{', left - (size_t) (b - rest));
                        if (!b || (size_t) (b - rest) + 1 >= left) {
                                b = NULL;
                                break;
                        }
                        if (b[1] == '{' || b[1] == '%' || b[1] == '#')
                                break;
                        b++;
                }
                if (validate)
                        advance(&t, b ? (size_t) (b - rest) : left);
                else
                        text_segment(&t, b ? (size_t) (b - rest) : left);
                if (!b)
                        break;
                int kind = peek(&t, 1);
                advance(&t, 2);
                if (kind == '#') {
                        const uint8_t *r = t.c.base + t.c.pos, *e = r;
                        size_t l = cursor_left(&t.c);
                        while ((e = memchr(e, '#', l - (size_t) (e - r))) && (size_t) (e - r) + 1 < l && e[1] != '}')
                                e++;
                        if (!e || (size_t) (e - r) + 1 >= l) {
                                compiles = false;   /* unterminated comment: the template does not compile */
                                break;
                        }
                        advance(&t, (size_t) (e - r) + 2);
                        continue;
                }
                if (kind == '%' && at_raw(&t)) {
                        if (!skip_raw(&t)) {
                                compiles = false;
                                break;
                        }
                        continue;
                }
                t.stmt = kind == '%';
                int r = lex_block(&t);
                if (validate) {
                        if (r == -E2BIG || r == -ENOMEM)
                                break;   /* cannot tell: taken for a template, whose check fails closed */
                        if (r < 0 || !block_compiles(&t)) {
                                compiles = false;
                                break;
                        }
                        continue;
                }
                if (r == -E2BIG || r == -ENOMEM) {
                        tpl_report(&t, SEV_HIGH, t.line, "a block too large or nested too deeply to check",
                                   (const uint8_t *) "", 0);
                        t.stop = true;
                        break;
                }
                analyse_block(&t);
                if (r == -ENODATA)
                        break;
        }
        for (unsigned i = 0; i < t.n_pending; i++)
                scan_finding(ctx, RULE_TEMPLATE_INJECTION, (enum mg_severity) t.pending[i].sev, "%s", t.pending[i].msg);
        if (t.dropped > 0)
                scan_finding(ctx, RULE_TEMPLATE_INJECTION, SEV_HIGH, "%s: %u more template findings not listed",
                             where, t.dropped);
        any = t.n_pending > 0;
        if (ret_compiles)
                *ret_compiles = compiles;
        free(t.tok);
        free(t.stack);
        free(t.pool);
        return any;
}

bool template_sniff(const uint8_t *text, size_t len) {
        for (const uint8_t *p = text; len > 1 && (p = memchr(p, '{', len - 1 - (size_t) (p - text)));) {
                if (p[1] == '{' || p[1] == '%' || p[1] == '#')
                        return true;
                p++;
        }
        return false;
}

static void check_config_template(struct scan_ctx *ctx, const struct json_value *v) {
        if (v->type == JSON_STRING) {
                template_check(ctx, "chat_template", (const uint8_t *) v->str, v->len);
                return;
        }
        if (v->type != JSON_ARRAY)
                return;
        for (const struct json_value *e = v->child; e; e = e->next) {
                const struct json_value *tpl = json_get(e, "template");
                const struct json_value *name = json_get(e, "name");
                char where[REPORT_NAME_MAX], esc[REPORT_NAME_MAX - 16];

                if (!tpl || tpl->type != JSON_STRING)
                        continue;
                if (name && name->type == JSON_STRING) {
                        report_escape(esc, sizeof(esc), (const uint8_t *) name->str, name->len, NULL);
                        snprintf(where, sizeof(where), "chat_template.%s", esc);
                } else
                        snprintf(where, sizeof(where), "chat_template");
                template_check(ctx, where, (const uint8_t *) tpl->str, tpl->len);
        }
}

void template_check_tokenizer_config(struct scan_ctx *ctx, const struct json_value *root) {
        if (!root || root->type != JSON_OBJECT)
                return;
        for (const struct json_value *m = root->child; m; m = m->next)
                if (m->key && m->key_len == 13 && memcmp(m->key, "chat_template", 13) == 0)
                        check_config_template(ctx, m);
}
