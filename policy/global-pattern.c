/* global-pattern.c — the grammar of pickle global patterns ("module:qualname",
 * "module:*", "pkg.*"), matched plainly for allowing and with an attribute walk for
 * denying. Pure string work on names already escaped by report.c; no allocation. */
#include <errno.h>
#include <string.h>

#include "global-pattern.h"
#include "policy.h"

/* A name that is either one slice `a`, or `a` "." `b`: the module reached by
 * walking an attribute path below a module, without copying it anywhere. */
struct dotted_name {
        const char *a;
        size_t a_len;
        const char *b;                /* NULL: just a */
        size_t b_len;
};

static size_t dotted_name_len(const struct dotted_name *n) {
        return n->b ? n->a_len + 1 + n->b_len : n->a_len;
}

static char dotted_name_at(const struct dotted_name *n, size_t i) {
        if (i < n->a_len)
                return n->a[i];
        if (i == n->a_len)
                return '.';
        return n->b[i - n->a_len - 1];
}

static bool dotted_name_has_prefix(const struct dotted_name *n, const char *s, size_t len) {
        if (dotted_name_len(n) < len)
                return false;
        for (size_t i = 0; i < len; i++)
                if (dotted_name_at(n, i) != s[i])
                        return false;
        return true;
}

static bool dotted_name_equals(const struct dotted_name *n, const char *s, size_t len) {
        return dotted_name_len(n) == len && dotted_name_has_prefix(n, s, len);
}

/* A dotted name as patterns allow it: non-empty parts separated by single dots,
 * none containing ':' or '*'. Other characters were checked by the caller. */
static const char *dotted_name_check(const char *s, size_t len, const char *what_empty) {
        if (len == 0)
                return what_empty;
        if (s[0] == '.' || s[len - 1] == '.')
                return "a name starts or ends with '.'";
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '.' && s[i + 1] == '.')
                        return "a name has an empty part ('..')";
                if (s[i] == '*')
                        return "'*' is allowed only as the whole qualname (\"module:*\") or after a final '.' (\"pkg.*\")";
                if (s[i] == ':')
                        return "more than one ':'";
        }
        return NULL;
}

int global_pattern_parse(const char *text, struct global_pattern *ret, const char **ret_reason) {
        struct global_pattern p = {};
        char escaped[GLOBAL_PATTERN_MAX];
        const char *colon, *reason;
        size_t len;

        len = strlen(text);
        if (len == 0) {
                *ret_reason = "empty pattern";
                return -EINVAL;
        }
        if (len >= GLOBAL_PATTERN_MAX) {
                *ret_reason = "pattern too long";
                return -EINVAL;
        }
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) text[i];
                if (c <= ' ' || c == 0x7f) {
                        *ret_reason = "contains whitespace or a control character";
                        return -EINVAL;
                }
                if (c == '\\') {
                        *ret_reason = "contains a backslash";
                        return -EINVAL;
                }
        }
        /* Names in reports are escaped by report_escape(); a pattern that escaping
         * would change (invalid UTF-8, non-printable characters) can never match. */
        if (!report_escape(escaped, sizeof(escaped), (const uint8_t *) text, len, NULL) ||
            strcmp(escaped, text) != 0) {
                *ret_reason = "contains invalid UTF-8 or a non-printable character";
                return -EINVAL;
        }

        colon = strchr(text, ':');
        if (colon) {
                p.module = text;
                p.module_len = (size_t) (colon - text);
                reason = dotted_name_check(p.module, p.module_len, "empty module before ':'");
                if (reason) {
                        *ret_reason = reason;
                        return -EINVAL;
                }
                if (strcmp(colon + 1, "*") == 0)
                        p.kind = GLOBAL_PATTERN_MODULE_ANY;
                else {
                        p.kind = GLOBAL_PATTERN_EXACT;
                        p.qualname = colon + 1;
                        p.qualname_len = strlen(colon + 1);
                        reason = dotted_name_check(p.qualname, p.qualname_len, "empty qualname after ':'");
                        if (reason) {
                                *ret_reason = reason;
                                return -EINVAL;
                        }
                }
        } else {
                if (len < 3 || strcmp(text + len - 2, ".*") != 0) {
                        *ret_reason = "expected \"module:qualname\", \"module:*\" or \"pkg.*\"";
                        return -EINVAL;
                }
                p.kind = GLOBAL_PATTERN_PACKAGE_ANY;
                p.module = text;
                p.module_len = len - 2;
                reason = dotted_name_check(p.module, p.module_len, "empty package before \".*\"");
                if (reason) {
                        *ret_reason = reason;
                        return -EINVAL;
                }
        }

        *ret = p;
        return 0;
}

/* The match itself, on a module that may be composed (see struct dotted_name). */
static bool pattern_match_name(const struct global_pattern *p, const struct dotted_name *module,
                               const char *qualname, size_t qualname_len) {
        switch (p->kind) {
        case GLOBAL_PATTERN_EXACT:
                return qualname_len == p->qualname_len &&
                       memcmp(qualname, p->qualname, qualname_len) == 0 &&
                       dotted_name_equals(module, p->module, p->module_len);
        case GLOBAL_PATTERN_MODULE_ANY:
                return qualname_len > 0 && !memchr(qualname, '.', qualname_len) &&
                       dotted_name_equals(module, p->module, p->module_len);
        case GLOBAL_PATTERN_PACKAGE_ANY:
                if (qualname_len == 0 || memchr(qualname, '.', qualname_len))
                        return false;
                if (!dotted_name_has_prefix(module, p->module, p->module_len))
                        return false;
                return dotted_name_len(module) == p->module_len ||
                       dotted_name_at(module, p->module_len) == '.';
        }
        return false;
}

bool global_pattern_match(const struct global_pattern *p, const char *module, const char *qualname) {
        struct dotted_name m = { .a = module, .a_len = strlen(module) };
        return pattern_match_name(p, &m, qualname, strlen(qualname));
}

static bool any_match(const struct global_pattern *patterns, size_t n, const struct dotted_name *module,
                      const char *qualname, size_t qualname_len) {
        for (size_t i = 0; i < n; i++)
                if (pattern_match_name(&patterns[i], module, qualname, qualname_len))
                        return true;
        return false;
}

/* Python resolves a dotted qualname by getattr from the module, part by part, so
 * "module:a.b.c" can reach: the attribute `a` of module (whatever it then does with
 * it), a submodule "module.a" and its attribute `b`, or — when `a` is a module
 * imported under its own name, as in ("torch", "os.system") — the module "a" and
 * its attribute `b`. Each of these is tried as a (module, simple name) pair. */
bool global_pattern_match_deny(const struct global_pattern *patterns, size_t n,
                               const char *module, const char *qualname) {
        struct dotted_name m = { .a = module, .a_len = strlen(module) };
        size_t q_len = strlen(qualname);
        const char *part[GLOBAL_PATTERN_DENY_PARTS_MAX];
        size_t part_len[GLOBAL_PATTERN_DENY_PARTS_MAX];
        size_t n_parts = 0;

        /* The plain grammar first: exact entries with dotted qualnames, wildcards. */
        if (any_match(patterns, n, &m, qualname, q_len))
                return true;
        if (!memchr(qualname, '.', q_len))
                return false;

        for (const char *s = qualname;;) {
                const char *dot = strchr(s, '.');
                if (n_parts == GLOBAL_PATTERN_DENY_PARTS_MAX)
                        return true;   /* fail closed, see GLOBAL_PATTERN_DENY_PARTS_MAX */
                part[n_parts] = s;
                part_len[n_parts] = dot ? (size_t) (dot - s) : strlen(s);
                n_parts++;
                if (!dot)
                        break;
                s = dot + 1;
        }

        /* (module, first part): deny "builtins:getattr" catches "builtins:getattr.__call__". */
        if (any_match(patterns, n, &m, part[0], part_len[0]))
                return true;

        for (size_t k = 1; k < n_parts; k++) {
                /* Submodule walk: ("module" "." parts[0..k-1], parts[k]). */
                struct dotted_name sub = {
                        .a = module, .a_len = m.a_len,
                        .b = qualname, .b_len = (size_t) (part[k - 1] + part_len[k - 1] - qualname),
                };
                if (any_match(patterns, n, &sub, part[k], part_len[k]))
                        return true;

                /* Alias walk: (parts[j..k-1], parts[k]) for every j < k. */
                for (size_t j = 0; j < k; j++) {
                        struct dotted_name alias = {
                                .a = part[j],
                                .a_len = (size_t) (part[k - 1] + part_len[k - 1] - part[j]),
                        };
                        if (any_match(patterns, n, &alias, part[k], part_len[k]))
                                return true;
                }
        }
        return false;
}

bool policy_match_global(const char *pattern, const char *module, const char *qualname) {
        struct global_pattern p;
        const char *reason;

        if (!pattern || !module || !qualname)
                return false;
        if (global_pattern_parse(pattern, &p, &reason) < 0)
                return false;
        return global_pattern_match(&p, module, qualname);
}

bool policy_match_deny(const char *pattern, const char *module, const char *qualname) {
        struct global_pattern p;
        const char *reason;

        if (!pattern || !module || !qualname)
                return false;
        if (global_pattern_parse(pattern, &p, &reason) < 0)
                return false;
        return global_pattern_match_deny(&p, 1, module, qualname);
}
