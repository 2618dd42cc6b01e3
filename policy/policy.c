/* policy.c — loads the policy (built-in default + one JSON file merged onto it),
 * keeps it canonical with its SHA-256, and turns a report's facts into findings and
 * a verdict. Reads only the file it is given; never logs, returns -errno + one line. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "global-pattern.h"
#include "license-pattern.h"
#include "policy.h"

/* A policy file is a few KiB (the whole built-in default is ~10 KiB); 1 MiB is
 * far beyond any honest file and small enough to read in one go. */
#define POLICY_FILE_MAX ((size_t) 1 << 20)

/* Entries per list key after merging. The default has ~300; thousands of globals
 * would mean the allowlist has stopped meaning anything, and evaluation is
 * O(globals × patterns) on the agent's hot path. */
#define POLICY_LIST_MAX 4096

/* How much of an offending value an error message quotes. */
#define POLICY_ERROR_VALUE_MAX 64

/* report_escape() stops at most 4 bytes short of its buffer when it truncates, so
 * a name this long may have been cut: it is never matched by an allow entry. */
#define POLICY_NAME_MAYBE_TRUNCATED (REPORT_NAME_MAX - 4)

#define _cleanup_(f) __attribute__((cleanup(f)))

static void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static void cjson_deletep(cJSON **j) {
        cJSON_Delete(*j);
}

enum policy_key {
        KEY_MODE,
        KEY_WATCH,
        KEY_PICKLE,
        KEY_ALLOW_GLOBALS,
        KEY_DENY_GLOBALS,
        KEY_RESTRICTED_LICENSES,
        KEY_REQUIRE_LICENSE,
        KEY_MANIFESTS,
        KEY_FAIL_SEVERITY,
        KEY_ON_ERROR,
        KEY_IGNORE_MARKS,
        KEY_REQUIRE_MANIFEST,
        KEY_HASH_FILES,
        KEY_ATTESTATION_KEYS,
        KEY_ATTESTATIONS,
        _KEY_MAX,
};

enum key_kind {
        KIND_ENUM,
        KIND_BOOL,
        KIND_PATHS,
        KIND_GLOBAL_PATTERNS,
        KIND_LICENSE_PATTERNS,
};

static const char *const mode_values[] = { [POLICY_MODE_ENFORCE] = "enforce", [POLICY_MODE_AUDIT] = "audit", NULL };
static const char *const pickle_values[] = { [POLICY_PICKLE_ALLOWLIST] = "allowlist", [POLICY_PICKLE_DENYLIST] = "denylist", NULL };
static const char *const severity_values[] = { "critical", "high", "medium", "low", "info", NULL };
static const char *const on_error_values[] = { [VERDICT_ALLOW] = "allow", [VERDICT_DENY] = "deny", NULL };

static const struct key_def {
        const char *name;
        enum key_kind kind;
        const char *const *values;    /* KIND_ENUM, NULL-terminated */
} keys[_KEY_MAX] = {
        [KEY_MODE] = { "mode", KIND_ENUM, mode_values },
        [KEY_WATCH] = { "watch", KIND_PATHS, NULL },
        [KEY_PICKLE] = { "pickle", KIND_ENUM, pickle_values },
        [KEY_ALLOW_GLOBALS] = { "allow_globals", KIND_GLOBAL_PATTERNS, NULL },
        [KEY_DENY_GLOBALS] = { "deny_globals", KIND_GLOBAL_PATTERNS, NULL },
        [KEY_RESTRICTED_LICENSES] = { "restricted_licenses", KIND_LICENSE_PATTERNS, NULL },
        [KEY_REQUIRE_LICENSE] = { "require_license", KIND_BOOL, NULL },
        [KEY_IGNORE_MARKS] = { "ignore_marks", KIND_BOOL, NULL },
        [KEY_REQUIRE_MANIFEST] = { "require_manifest", KIND_BOOL, NULL },
        [KEY_HASH_FILES] = { "hash_files", KIND_BOOL, NULL },
        [KEY_MANIFESTS] = { "manifests", KIND_PATHS, NULL },
        [KEY_FAIL_SEVERITY] = { "fail_severity", KIND_ENUM, severity_values },
        [KEY_ON_ERROR] = { "on_error", KIND_ENUM, on_error_values },
        [KEY_ATTESTATION_KEYS] = { "attestation_keys", KIND_PATHS, NULL },
        [KEY_ATTESTATIONS] = { "attestations", KIND_PATHS, NULL },
};

struct str_list {
        char **items;
        size_t n;
};

/* What one JSON text says: scalars are -1 when the text leaves them out. Scalars
 * are stored as the index into the key's values (or 0/1 for booleans). */
struct policy_doc {
        int scalar[_KEY_MAX];
        struct str_list list[_KEY_MAX];
};

struct policy {
        char *source;
        enum policy_mode mode;
        enum policy_pickle pickle;
        enum mg_severity fail_severity;
        enum mg_verdict on_error;
        bool require_license;
        bool ignore_marks;
        bool require_manifest;
        bool hash_files;
        struct str_list list[_KEY_MAX];     /* sorted, without duplicates */
        struct global_pattern *allow, *deny; /* parsed list[KEY_*_GLOBALS], same order */
        char *canonical;
        char sha256[2 * 32 + 1];
};

static void str_list_done(struct str_list *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->items[i]);
        free(l->items);
        *l = (struct str_list) {};
}

/* Takes ownership of s, also on failure. */
static int str_list_push(struct str_list *l, char *s) {
        char **items;

        items = realloc(l->items, (l->n + 1) * sizeof(char *));
        if (!items) {
                free(s);
                return -ENOMEM;
        }
        l->items = items;
        l->items[l->n++] = s;
        return 0;
}

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void str_list_sort_unique(struct str_list *l) {
        size_t o = 0;

        if (l->n == 0)
                return;
        qsort(l->items, l->n, sizeof(char *), strcmp_ptr);
        for (size_t i = 1; i < l->n; i++) {
                if (strcmp(l->items[i], l->items[o]) == 0)
                        free(l->items[i]);
                else
                        l->items[++o] = l->items[i];
        }
        l->n = o + 1;
}

static void policy_doc_init(struct policy_doc *d) {
        *d = (struct policy_doc) {};
        for (size_t k = 0; k < _KEY_MAX; k++)
                d->scalar[k] = -1;
}

static void policy_doc_done(struct policy_doc *d) {
        for (size_t k = 0; k < _KEY_MAX; k++)
                str_list_done(&d->list[k]);
}

/* ---- error messages: one line, every piece from outside escaped ---- */

static int policy_error(char *err, size_t errsz, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int policy_error(char *err, size_t errsz, int r, const char *fmt, ...) {
        va_list ap;

        if (err && errsz > 0) {
                va_start(ap, fmt);
                vsnprintf(err, errsz, fmt, ap);
                va_end(ap);
        }
        return r;
}

/* Escapes s for quoting in a message: non-printables and '"' as \xNN, cut at
 * POLICY_ERROR_VALUE_MAX with "..." appended. */
struct quoted {
        char s[POLICY_ERROR_VALUE_MAX + 4];
};

static const char *quote(struct quoted *q, const char *s) {
        if (!report_escape(q->s, POLICY_ERROR_VALUE_MAX, (const uint8_t *) s, strlen(s), "\""))
                strcat(q->s, "...");
        return q->s;
}

/* The file name leads every message; it is escaped but not cut. */
struct file_label {
        char s[PATH_MAX];
};

static const char *label(struct file_label *l, const char *name) {
        report_escape(l->s, sizeof(l->s), (const uint8_t *) name, strlen(name), NULL);
        return l->s;
}

static const char *json_type_name(const cJSON *j) {
        if (cJSON_IsBool(j))
                return "a boolean";
        if (cJSON_IsNull(j))
                return "null";
        if (cJSON_IsNumber(j))
                return "a number";
        if (cJSON_IsString(j))
                return "a string";
        if (cJSON_IsArray(j))
                return "a list";
        if (cJSON_IsObject(j))
                return "an object";
        return "an invalid value";
}

static void values_joined(const char *const *values, char *buf, size_t bufsz) {
        size_t o = 0;

        buf[0] = '\0';
        for (size_t i = 0; values[i]; i++) {
                int n = snprintf(buf + o, bufsz - o, "%s%s", i > 0 ? ", " : "", values[i]);
                if (n < 0 || (size_t) n >= bufsz - o)
                        return;
                o += (size_t) n;
        }
}

/* ---- list items ---- */

/* Absolute, no control characters, no "." or ".." parts; "//" and a trailing
 * "/" are dropped so that one directory has one spelling. */
static int path_normalize(const char *s, char **ret, const char **ret_reason) {
        _cleanup_free_ char *n = NULL;
        size_t o = 0, len = strlen(s);

        if (s[0] != '/') {
                *ret_reason = "must be an absolute path";
                return -EINVAL;
        }
        if (len >= PATH_MAX) {
                *ret_reason = "longer than PATH_MAX";
                return -EINVAL;
        }
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] < ' ' || s[i] == 0x7f) {
                        *ret_reason = "contains a control character";
                        return -EINVAL;
                }

        n = malloc(len + 1);
        if (!n)
                return -ENOMEM;
        for (const char *p = s; *p;) {
                size_t part;

                while (*p == '/')
                        p++;
                part = strcspn(p, "/");
                if (part == 0)
                        break;
                if ((part == 1 && p[0] == '.') || (part == 2 && p[0] == '.' && p[1] == '.')) {
                        *ret_reason = "must not contain \".\" or \"..\" components";
                        return -EINVAL;
                }
                n[o++] = '/';
                memcpy(n + o, p, part);
                o += part;
                p += part;
        }
        if (o == 0)
                n[o++] = '/';
        n[o] = '\0';

        *ret = n;
        n = NULL;
        return 0;
}

static int item_normalize(enum key_kind kind, const char *s, char **ret, const char **ret_reason,
                          const char **ret_what) {
        char buf[LICENSE_PATTERN_MAX];
        struct global_pattern gp;
        char *n;
        int r;

        switch (kind) {
        case KIND_PATHS:
                *ret_what = "path";
                return path_normalize(s, ret, ret_reason);

        case KIND_GLOBAL_PATTERNS:
                *ret_what = "pattern";
                r = global_pattern_parse(s, &gp, ret_reason);
                if (r < 0)
                        return r;
                n = strdup(s);
                break;

        case KIND_LICENSE_PATTERNS:
                *ret_what = "license pattern";
                r = license_normalize(s, buf, sizeof(buf));
                if (r == -ENAMETOOLONG) {
                        *ret_reason = "too long";
                        return -EINVAL;
                }
                if (r < 0) {
                        *ret_reason = "empty or contains a control character";
                        return -EINVAL;
                }
                n = strdup(buf);
                break;

        default:
                return -EINVAL;
        }
        if (!n)
                return -ENOMEM;
        *ret = n;
        return 0;
}

/* ---- one JSON text ---- */

static int parse_key(struct policy_doc *d, enum policy_key k, const cJSON *v, const char *file,
                     char *err, size_t errsz) {
        const struct key_def *def = &keys[k];
        struct file_label fl;
        struct quoted q;
        char joined[128];
        const cJSON *item;
        size_t index = 0;
        int r;

        switch (def->kind) {
        case KIND_ENUM:
                values_joined(def->values, joined, sizeof(joined));
                if (!cJSON_IsString(v))
                        return policy_error(err, errsz, -EINVAL,
                                            "%s: key \"%s\": expected a string (one of %s), got %s",
                                            label(&fl, file), def->name, joined, json_type_name(v));
                for (size_t i = 0; def->values[i]; i++)
                        if (strcmp(v->valuestring, def->values[i]) == 0) {
                                d->scalar[k] = (int) i;
                                return 0;
                        }
                return policy_error(err, errsz, -EINVAL, "%s: key \"%s\": expected one of %s, got \"%s\"",
                                    label(&fl, file), def->name, joined, quote(&q, v->valuestring));

        case KIND_BOOL:
                if (!cJSON_IsBool(v))
                        return policy_error(err, errsz, -EINVAL, "%s: key \"%s\": expected true or false, got %s",
                                            label(&fl, file), def->name, json_type_name(v));
                d->scalar[k] = cJSON_IsTrue(v);
                return 0;

        case KIND_PATHS:
        case KIND_GLOBAL_PATTERNS:
        case KIND_LICENSE_PATTERNS:
                if (!cJSON_IsArray(v))
                        return policy_error(err, errsz, -EINVAL, "%s: key \"%s\": expected a list of strings, got %s",
                                            label(&fl, file), def->name, json_type_name(v));
                cJSON_ArrayForEach(item, v) {
                        const char *reason = NULL, *what = NULL;
                        char *n = NULL;

                        if (index >= POLICY_LIST_MAX)
                                return policy_error(err, errsz, -E2BIG, "%s: key \"%s\": more than %d entries",
                                                    label(&fl, file), def->name, POLICY_LIST_MAX);
                        if (!cJSON_IsString(item))
                                return policy_error(err, errsz, -EINVAL,
                                                    "%s: key \"%s\": index %zu: expected a string, got %s",
                                                    label(&fl, file), def->name, index, json_type_name(item));
                        r = item_normalize(def->kind, item->valuestring, &n, &reason, &what);
                        if (r == -ENOMEM)
                                return policy_error(err, errsz, r, "%s: out of memory", label(&fl, file));
                        if (r < 0)
                                return policy_error(err, errsz, -EINVAL, "%s: key \"%s\": index %zu: invalid %s \"%s\": %s",
                                                    label(&fl, file), def->name, index, what,
                                                    quote(&q, item->valuestring), reason);
                        r = str_list_push(&d->list[k], n);
                        if (r < 0)
                                return policy_error(err, errsz, r, "%s: out of memory", label(&fl, file));
                        index++;
                }
                return 0;
        }
        return -EINVAL;
}

static void offset_to_line(const char *text, size_t offset, size_t *ret_line, size_t *ret_column) {
        size_t line = 1, column = 1;

        for (size_t i = 0; i < offset; i++) {
                if (text[i] == '\n') {
                        line++;
                        column = 1;
                } else
                        column++;
        }
        *ret_line = line;
        *ret_column = column;
}

/* cJSON turns "\u0000" into the end of a C string and would silently cut the
 * value there; such strings are refused. Finds the escape outside of "\\". */
static const char *find_nul_escape(const char *text, size_t len) {
        for (size_t i = 0; i + 1 < len; i++) {
                if (text[i] != '\\')
                        continue;
                if (text[i + 1] == 'u' && i + 5 < len && strncmp(text + i + 2, "0000", 4) == 0)
                        return text + i;
                i++;   /* skip the escaped character, so "\\u0000" is not one */
        }
        return NULL;
}

/* Parses text[0..len) (text[len] must be '\0') named `file` into d. */
static int policy_doc_parse(struct policy_doc *d, const char *file, const char *text, size_t len,
                            char *err, size_t errsz) {
        _cleanup_(cjson_deletep) cJSON *root = NULL;
        const char *end = NULL, *nul;
        const cJSON *child;
        struct file_label fl;
        struct quoted q;
        bool seen[_KEY_MAX] = {};
        size_t line, column;
        char known[256];
        int r;

        nul = memchr(text, '\0', len);
        if (nul) {
                offset_to_line(text, (size_t) (nul - text), &line, &column);
                return policy_error(err, errsz, -EINVAL, "%s: invalid JSON at line %zu, column %zu: NUL byte",
                                    label(&fl, file), line, column);
        }
        nul = find_nul_escape(text, len);
        if (nul) {
                offset_to_line(text, (size_t) (nul - text), &line, &column);
                return policy_error(err, errsz, -EINVAL, "%s: line %zu, column %zu: \"\\u0000\" is not allowed in strings",
                                    label(&fl, file), line, column);
        }

        if (strspn(text, " \t\r\n") == len)
                return policy_error(err, errsz, -EINVAL, "%s: invalid JSON: the file is empty, expected an object",
                                    label(&fl, file));

        /* len + 1: cJSON wants to see the terminating NUL to reject trailing garbage. */
        root = cJSON_ParseWithLengthOpts(text, len + 1, &end, true);
        if (!root) {
                size_t offset = end && end >= text ? (size_t) (end - text) : 0;
                if (offset > len)
                        offset = len;
                offset_to_line(text, offset, &line, &column);
                return policy_error(err, errsz, -EINVAL, "%s: invalid JSON at line %zu, column %zu (offset %zu)",
                                    label(&fl, file), line, column, offset);
        }
        if (!cJSON_IsObject(root))
                return policy_error(err, errsz, -EINVAL, "%s: expected a JSON object at the top level, got %s",
                                    label(&fl, file), json_type_name(root));

        cJSON_ArrayForEach(child, root) {
                enum policy_key k;

                for (k = 0; k < _KEY_MAX; k++)
                        if (strcmp(child->string, keys[k].name) == 0)
                                break;
                if (k == _KEY_MAX) {
                        size_t o = 0;
                        for (size_t i = 0; i < _KEY_MAX; i++)
                                o += (size_t) snprintf(known + o, sizeof(known) - o, "%s%s",
                                                       i > 0 ? ", " : "", keys[i].name);
                        return policy_error(err, errsz, -EINVAL, "%s: key \"%s\": unknown key (known keys: %s)",
                                            label(&fl, file), quote(&q, child->string), known);
                }
                if (seen[k])
                        return policy_error(err, errsz, -EINVAL, "%s: key \"%s\": given more than once",
                                            label(&fl, file), keys[k].name);
                seen[k] = true;

                r = parse_key(d, k, child, file, err, errsz);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- the file ---- */

static const char *file_type_name(mode_t m) {
        if (S_ISDIR(m))
                return "a directory";
        if (S_ISFIFO(m))
                return "a FIFO";
        if (S_ISSOCK(m))
                return "a socket";
        if (S_ISCHR(m))
                return "a character device";
        if (S_ISBLK(m))
                return "a block device";
        return "not a regular file";
}

static int policy_read_file(const char *path, char **ret, size_t *ret_len, char *err, size_t errsz) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct file_label fl;
        struct stat st;
        size_t len = 0;

        /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                int r = -errno;
                return policy_error(err, errsz, r, "%s: cannot open: %s", label(&fl, path), strerror(-r));
        }
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                return policy_error(err, errsz, r, "%s: cannot stat: %s", label(&fl, path), strerror(-r));
        }
        if (!S_ISREG(st.st_mode))
                return policy_error(err, errsz, S_ISDIR(st.st_mode) ? -EISDIR : -EBADFD,
                                    "%s: not a regular file (%s)", label(&fl, path), file_type_name(st.st_mode));
        if ((uint64_t) st.st_size > POLICY_FILE_MAX)
                return policy_error(err, errsz, -EFBIG, "%s: file is larger than %zu bytes",
                                    label(&fl, path), POLICY_FILE_MAX);

        /* The size may change under us: read up to one byte past the limit. */
        buf = malloc(POLICY_FILE_MAX + 2);
        if (!buf)
                return policy_error(err, errsz, -ENOMEM, "%s: out of memory", label(&fl, path));
        for (;;) {
                ssize_t n = read(fd, buf + len, POLICY_FILE_MAX + 1 - len);
                if (n < 0) {
                        int r = -errno;
                        if (r == -EINTR)
                                continue;
                        return policy_error(err, errsz, r, "%s: cannot read: %s", label(&fl, path), strerror(-r));
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > POLICY_FILE_MAX)
                        return policy_error(err, errsz, -EFBIG, "%s: file is larger than %zu bytes",
                                            label(&fl, path), POLICY_FILE_MAX);
        }
        buf[len] = '\0';

        *ret = buf;
        buf = NULL;
        *ret_len = len;
        return 0;
}

/* ---- the merged policy ---- */

static int canonical_add_list(cJSON *o, const char *name, const struct str_list *l) {
        cJSON *a = cJSON_AddArrayToObject(o, name);
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                cJSON *s = cJSON_CreateString(l->items[i]);
                if (!s)
                        return -ENOMEM;
                if (!cJSON_AddItemToArray(a, s)) {
                        cJSON_Delete(s);
                        return -ENOMEM;
                }
        }
        return 0;
}

/* Keys in alphabetical order, lists sorted and unique, license patterns and paths
 * normalised: two files with the same effect serialise (and hash) the same. */
static int policy_canonicalize(struct policy *p) {
        _cleanup_(cjson_deletep) cJSON *o = NULL;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        int r;

        o = cJSON_CreateObject();
        if (!o)
                return -ENOMEM;
        if ((r = canonical_add_list(o, "allow_globals", &p->list[KEY_ALLOW_GLOBALS])) < 0 ||
            (r = canonical_add_list(o, "deny_globals", &p->list[KEY_DENY_GLOBALS])) < 0)
                return r;
        if (!cJSON_AddStringToObject(o, "fail_severity", severity_name(p->fail_severity)) ||
            !cJSON_AddBoolToObject(o, "hash_files", p->hash_files) ||
            !cJSON_AddBoolToObject(o, "ignore_marks", p->ignore_marks) ||
            !cJSON_AddBoolToObject(o, "require_manifest", p->require_manifest))
                return -ENOMEM;
        if ((r = canonical_add_list(o, "manifests", &p->list[KEY_MANIFESTS])) < 0)
                return r;
        if (!cJSON_AddStringToObject(o, "mode", mode_values[p->mode]) ||
            !cJSON_AddStringToObject(o, "on_error", on_error_values[p->on_error]) ||
            !cJSON_AddStringToObject(o, "pickle", pickle_values[p->pickle]) ||
            !cJSON_AddBoolToObject(o, "require_license", p->require_license))
                return -ENOMEM;
        if ((r = canonical_add_list(o, "restricted_licenses", &p->list[KEY_RESTRICTED_LICENSES])) < 0 ||
            (r = canonical_add_list(o, "watch", &p->list[KEY_WATCH])) < 0)
                return r;

        p->canonical = cJSON_PrintUnformatted(o);
        if (!p->canonical)
                return -ENOMEM;

        if (EVP_Digest(p->canonical, strlen(p->canonical), md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
                return -EIO;
        for (unsigned i = 0; i < md_len; i++)
                snprintf(p->sha256 + 2 * i, 3, "%02x", md[i]);
        return 0;
}

static int parse_patterns(const struct str_list *l, struct global_pattern **ret) {
        struct global_pattern *a;
        const char *reason;

        a = calloc(l->n ? l->n : 1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++)
                if (global_pattern_parse(l->items[i], &a[i], &reason) < 0) {
                        free(a);
                        return -EINVAL;   /* cannot happen: checked when the doc was parsed */
                }
        *ret = a;
        return 0;
}

static void policy_freep(struct policy **p) {
        policy_free(*p);
}

/* Scalars of `top` replace those of `base`; lists are the union of both. */
static int policy_build(const struct policy_doc *base, const struct policy_doc *top, const char *source,
                        struct policy **ret, char *err, size_t errsz) {
        _cleanup_(policy_freep) struct policy *p = NULL;
        const char *file = source ? source : "builtin";
        struct file_label fl;
        int scalar[_KEY_MAX];
        int r;

        for (size_t k = 0; k < _KEY_MAX; k++) {
                scalar[k] = top && top->scalar[k] >= 0 ? top->scalar[k] : base->scalar[k];
                if ((keys[k].kind == KIND_ENUM || keys[k].kind == KIND_BOOL) && scalar[k] < 0)
                        return policy_error(err, errsz, -EINVAL, "builtin: key \"%s\": missing", keys[k].name);
        }

        p = calloc(1, sizeof(*p));
        if (!p)
                return policy_error(err, errsz, -ENOMEM, "%s: out of memory", label(&fl, file));
        p->source = strdup(source ? source : "builtin");
        if (!p->source)
                return policy_error(err, errsz, -ENOMEM, "%s: out of memory", label(&fl, file));

        p->mode = (enum policy_mode) scalar[KEY_MODE];
        p->pickle = (enum policy_pickle) scalar[KEY_PICKLE];
        p->fail_severity = (enum mg_severity) severity_from_name(severity_values[scalar[KEY_FAIL_SEVERITY]]);
        p->on_error = (enum mg_verdict) scalar[KEY_ON_ERROR];
        p->require_license = scalar[KEY_REQUIRE_LICENSE] > 0;
        p->ignore_marks = scalar[KEY_IGNORE_MARKS] > 0;
        p->require_manifest = scalar[KEY_REQUIRE_MANIFEST] > 0;
        p->hash_files = scalar[KEY_HASH_FILES] > 0;

        for (size_t k = 0; k < _KEY_MAX; k++) {
                const struct policy_doc *docs[] = { base, top };

                for (size_t d = 0; d < 2; d++) {
                        if (!docs[d])
                                continue;
                        for (size_t i = 0; i < docs[d]->list[k].n; i++) {
                                char *s = strdup(docs[d]->list[k].items[i]);
                                if (!s || str_list_push(&p->list[k], s) < 0) {
                                        free(s);
                                        return policy_error(err, errsz, -ENOMEM, "%s: out of memory", label(&fl, file));
                                }
                        }
                }
                str_list_sort_unique(&p->list[k]);
                if (p->list[k].n > POLICY_LIST_MAX)
                        return policy_error(err, errsz, -E2BIG, "%s: key \"%s\": more than %d entries with the defaults",
                                            label(&fl, file), keys[k].name, POLICY_LIST_MAX);
        }

        r = parse_patterns(&p->list[KEY_ALLOW_GLOBALS], &p->allow);
        if (r >= 0)
                r = parse_patterns(&p->list[KEY_DENY_GLOBALS], &p->deny);
        if (r >= 0)
                r = policy_canonicalize(p);
        if (r < 0)
                return policy_error(err, errsz, r, "%s: cannot build the policy: %s", label(&fl, file), strerror(-r));

        *ret = p;
        p = NULL;
        return 0;
}

int policy_load(const char *path, struct policy **ret, char *err, size_t errsz) {
        _cleanup_(policy_doc_done) struct policy_doc builtin;
        _cleanup_(policy_doc_done) struct policy_doc file;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;

        policy_doc_init(&builtin);
        policy_doc_init(&file);

        r = policy_doc_parse(&builtin, "builtin", policy_builtin_json(), strlen(policy_builtin_json()), err, errsz);
        if (r < 0)
                return r;
        if (path) {
                r = policy_read_file(path, &text, &len, err, errsz);
                if (r < 0)
                        return r;
                r = policy_doc_parse(&file, path, text, len, err, errsz);
                if (r < 0)
                        return r;
        }
        return policy_build(&builtin, path ? &file : NULL, path, ret, err, errsz);
}

void policy_free(struct policy *p) {
        if (!p)
                return;
        for (size_t k = 0; k < _KEY_MAX; k++)
                str_list_done(&p->list[k]);
        free(p->allow);
        free(p->deny);
        cJSON_free(p->canonical);
        free(p->source);
        free(p);
}

const char *policy_source(const struct policy *p) {
        return p->source;
}

const char *policy_sha256(const struct policy *p) {
        return p->sha256;
}

const char *policy_canonical_json(const struct policy *p) {
        return p->canonical;
}

enum policy_mode policy_mode(const struct policy *p) {
        return p->mode;
}

enum policy_pickle policy_pickle_mode(const struct policy *p) {
        return p->pickle;
}

enum mg_severity policy_fail_severity(const struct policy *p) {
        return p->fail_severity;
}

enum mg_verdict policy_on_error(const struct policy *p) {
        return p->on_error;
}

bool policy_require_license(const struct policy *p) {
        return p->require_license;
}

bool policy_hash_files(const struct policy *p) {
        return p->hash_files;
}

bool policy_require_manifest(const struct policy *p) {
        return p->require_manifest;
}

bool policy_ignore_marks(const struct policy *p) {
        return p->ignore_marks;
}

size_t policy_watch_count(const struct policy *p) {
        return p->list[KEY_WATCH].n;
}

const char *policy_watch(const struct policy *p, size_t i) {
        return i < p->list[KEY_WATCH].n ? p->list[KEY_WATCH].items[i] : NULL;
}

size_t policy_attestation_key_count(const struct policy *p) {
        return p->list[KEY_ATTESTATION_KEYS].n;
}

const char *policy_attestation_key(const struct policy *p, size_t i) {
        return i < p->list[KEY_ATTESTATION_KEYS].n ? p->list[KEY_ATTESTATION_KEYS].items[i] : NULL;
}

size_t policy_attestation_count(const struct policy *p) {
        return p->list[KEY_ATTESTATIONS].n;
}

const char *policy_attestation(const struct policy *p, size_t i) {
        return i < p->list[KEY_ATTESTATIONS].n ? p->list[KEY_ATTESTATIONS].items[i] : NULL;
}

size_t policy_manifest_count(const struct policy *p) {
        return p->list[KEY_MANIFESTS].n;
}

const char *policy_manifest(const struct policy *p, size_t i) {
        return i < p->list[KEY_MANIFESTS].n ? p->list[KEY_MANIFESTS].items[i] : NULL;
}

/* ---- evaluation ---- */

static bool any_exact(const struct global_pattern *a, size_t n, const char *module, const char *qualname) {
        for (size_t i = 0; i < n; i++)
                if (a[i].kind == GLOBAL_PATTERN_EXACT && global_pattern_match(&a[i], module, qualname))
                        return true;
        return false;
}

static bool any_allow(const struct global_pattern *a, size_t n, const char *module, const char *qualname) {
        for (size_t i = 0; i < n; i++)
                if (global_pattern_match(&a[i], module, qualname))
                        return true;
        return false;
}

int policy_global_severity(const struct policy *p, const char *module, const char *qualname) {
        size_t n_allow = p->list[KEY_ALLOW_GLOBALS].n, n_deny = p->list[KEY_DENY_GLOBALS].n;
        bool maybe_truncated = strlen(module) >= POLICY_NAME_MAYBE_TRUNCATED ||
                               strlen(qualname) >= POLICY_NAME_MAYBE_TRUNCATED;

        if (any_exact(p->deny, n_deny, module, qualname))
                return SEV_CRITICAL;
        if (!maybe_truncated && any_exact(p->allow, n_allow, module, qualname))
                return -1;
        if (global_pattern_match_deny(p->deny, n_deny, module, qualname))
                return SEV_CRITICAL;
        if (p->pickle == POLICY_PICKLE_DENYLIST)
                return -1;
        if (!maybe_truncated && any_allow(p->allow, n_allow, module, qualname))
                return -1;
        return SEV_HIGH;
}

bool policy_license_restricted(const struct policy *p, const char *license) {
        char n[LICENSE_PATTERN_MAX];

        if (license_normalize(license, n, sizeof(n)) < 0)
                return false;
        for (size_t i = 0; i < p->list[KEY_RESTRICTED_LICENSES].n; i++)
                if (license_glob_match(p->list[KEY_RESTRICTED_LICENSES].items[i], n))
                        return true;
        return false;
}

/* Formats that are models or containers of them; text, empty files and unknown
 * data are not expected to carry a license. */
/* Model files: a config, a template or a text file is not asked for a license
 * (an LFS pointer is already critical on its own). */
static bool format_wants_license(uint8_t format) {
        return format != FMT_UNKNOWN && format != FMT_EMPTY && format != FMT_TEXT && format != FMT_JSON &&
               format != FMT_TEMPLATE && format != FMT_LFS_POINTER;
}

enum mg_verdict policy_evaluate(const struct policy *p, struct scan_report *r) {
        char norm[LICENSE_PATTERN_MAX];
        bool has_license = false;
        int worst;

        /* The report may have crossed a socket: never trust its counts or strings. */
        if (r->n_globals > REPORT_GLOBALS_MAX)
                r->n_globals = REPORT_GLOBALS_MAX;
        if (r->n_findings > REPORT_FINDINGS_MAX)
                r->n_findings = REPORT_FINDINGS_MAX;
        r->license[sizeof(r->license) - 1] = '\0';

        for (size_t i = 0; i < r->n_globals; i++) {
                struct report_global *g = &r->globals[i];
                char global[2 * REPORT_NAME_MAX];
                const char *via;
                int sev;

                g->module[sizeof(g->module) - 1] = '\0';
                g->qualname[sizeof(g->qualname) - 1] = '\0';
                g->member[sizeof(g->member) - 1] = '\0';

                sev = policy_global_severity(p, g->module, g->qualname);
                if (sev < 0)
                        continue;

                snprintf(global, sizeof(global), "%s:%s", g->module, g->qualname);
                via = via_name((enum mg_via) g->via);
                if (via)
                        report_add_finding(r, RULE_UNSAFE_IMPORT, (enum mg_severity) sev, (enum mg_via) g->via,
                                           g->member, global, "%s (via %s)", global, via);
                else
                        report_add_finding(r, RULE_UNSAFE_IMPORT, (enum mg_severity) sev, VIA_NONE,
                                           g->member, global, "%s", global);
        }

        /* Globals the report had no room for were never seen here: fail closed. */
        if (r->globals_dropped > 0)
                report_add_finding(r, RULE_UNSAFE_IMPORT, SEV_HIGH, VIA_NONE, NULL, NULL,
                                   "%u more globals than a report holds were not checked",
                                   (unsigned) r->globals_dropped);

        if (r->has_license && license_normalize(r->license, norm, sizeof(norm)) >= 0) {
                has_license = true;
                for (size_t i = 0; i < p->list[KEY_RESTRICTED_LICENSES].n; i++)
                        if (license_glob_match(p->list[KEY_RESTRICTED_LICENSES].items[i], norm)) {
                                report_add_finding(r, RULE_RESTRICTED_LICENSE, SEV_HIGH, VIA_NONE, NULL, NULL,
                                                   "Restricted license detected: '%s'", r->license);
                                break;
                        }
        }
        if (p->require_license && !has_license && format_wants_license(r->format))
                report_add_finding(r, RULE_MISSING_LICENSE, SEV_HIGH, VIA_NONE, NULL, NULL,
                                   "No license in the file's metadata, and the policy requires one");

        worst = report_worst_severity(r);
        return worst >= 0 && worst >= (int) p->fail_severity ? VERDICT_DENY : VERDICT_ALLOW;
}
