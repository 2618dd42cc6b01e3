/* keras.c — judges a serialized Keras config (a json_value tree) as Keras 2, tf.keras
 * and Keras 3 would deserialize it: every object that carries a class_name, wherever
 * it nests. Owns KERAS_LAMBDA and KERAS_UNSAFE_CLASS; reads no file and parses no JSON
 * text beyond handing bytes to json_parse(). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "keras.h"

/* Nesting of JSON values the walk follows. A Keras object costs ~4 levels (object,
 * config, layers, list); real models nest < 40. Deeper trees are reported, never
 * skipped silently. Also bounds the walk's recursion. */
#define KERAS_DEPTH_MAX 128

/* The path kept for messages: a model nested ten deep in wrappers fits. */
#define KERAS_PATH_MAX 1024

/* What a message quotes of the path (the end, nearest the finding) and of one
 * name taken from the file. */
#define KERAS_PATH_SHOWN 150
#define KERAS_NAME_SHOWN 64

struct keras_walk {
        struct scan_ctx *ctx;
        char path[KERAS_PATH_MAX];
        size_t path_len;
        bool at_label;            /* the path ends with an object's label, not a key */
        bool depth_reported;
        bool path_cut;            /* the path overflowed KERAS_PATH_MAX */
};

/* Python packages whose import alone, or whose attributes, run commands, code or
 * I/O: a module naming one of them is a critical finding, any other non-Keras
 * module a high one. */
static const char *const code_modules[] = {
        "__builtin__", "__main__", "_io", "_pickle", "_posixsubprocess", "asyncio", "bdb", "builtins",
        "cProfile", "code", "codeop", "commands", "ctypes", "dill", "distutils", "ensurepip", "ftplib",
        "functools", "http", "imp", "importlib", "inspect", "io", "joblib", "marshal", "multiprocessing",
        "nt", "numpy", "operator", "os", "pathlib", "pdb", "pickle", "pip", "pkgutil", "platform",
        "posix", "profile", "pty", "runpy", "setuptools", "shelve", "shutil", "smtplib", "socket",
        "subprocess", "sys", "telnetlib", "tempfile", "timeit", "torch", "trace", "types", "urllib",
        "webbrowser", "zipimport",
};

/* Python's builtins (lower-case names of dir(builtins), Python 3.11). Keras 3 resolves
 * {"class_name": "function", "module": "builtins"} in its own built-in modules first
 * and then, before 3.9, by importing builtins: these names reach Python's own. */
static const char *const python_builtins[] = {
        "__build_class__", "__debug__", "__doc__", "__import__", "__loader__", "__name__", "__package__",
        "__spec__", "abs", "aiter", "all", "anext", "any", "ascii", "bin", "bool", "breakpoint",
        "bytearray", "bytes", "callable", "chr", "classmethod", "compile", "complex", "copyright",
        "credits", "delattr", "dict", "dir", "divmod", "enumerate", "eval", "exec", "exit", "filter",
        "float", "format", "frozenset", "getattr", "globals", "hasattr", "hash", "help", "hex", "id",
        "input", "int", "isinstance", "issubclass", "iter", "len", "license", "list", "locals", "map",
        "max", "memoryview", "min", "next", "object", "oct", "open", "ord", "pow", "print", "property",
        "quit", "range", "repr", "reversed", "round", "set", "setattr", "slice", "sorted",
        "staticmethod", "str", "sum", "super", "tuple", "type", "vars", "zip",
};

/* Functions inside Keras itself that fetch files, load other models or switch
 * safe mode off: reachable as {"class_name": "function", "module": "keras..."}
 * (CVE-2025-8747 used keras.utils.get_file). */
static const char *const keras_unsafe_functions[] = {
        "deserialize_keras_object", "enable_unsafe_deserialization", "func_load", "get_file",
        "load_model", "load_weights", "model_from_config", "model_from_json", "model_from_yaml",
};

/* TFOpLambda's "function" names a TensorFlow API symbol it calls with the layer's
 * inputs; these reach files or Python code. */
static const char *const tf_op_unsafe_parts[] = {
        "io.", "gfile", "write_file", "read_file", "raw_ops", "py_func", "py_function",
        "numpy_function", "load_library", "load_op_library", "saved_model", "summary.",
};

static bool in_list(const char *s, size_t n, const char *const *list, size_t count) {
        for (size_t i = 0; i < count; i++)
                if (strlen(list[i]) == n && memcmp(list[i], s, n) == 0)
                        return true;
        return false;
}

static bool str_is(const struct json_value *v, const char *s) {
        return v && v->type == JSON_STRING && v->len == strlen(s) && memcmp(v->str, s, v->len) == 0;
}

/* "pkg" or "pkg.anything". */
static bool in_package(const char *s, size_t n, const char *pkg) {
        size_t k = strlen(pkg);
        return n >= k && memcmp(s, pkg, k) == 0 && (n == k || s[k] == '.');
}

/* Modules Keras' own configs name: Keras 3 resolves these through its export
 * table, and from 3.9 on imports nothing else. */
static bool module_is_keras(const struct json_value *m) {
        static const char *const pkgs[] = { "keras", "tf_keras", "tensorflow", "keras_hub", "keras_cv", "keras_nlp" };

        for (size_t i = 0; i < sizeof(pkgs) / sizeof(pkgs[0]); i++)
                if (in_package(m->str, m->len, pkgs[i]))
                        return true;
        return false;
}

static bool module_runs_code(const struct json_value *m) {
        const char *dot = memchr(m->str, '.', m->len);
        size_t top = dot ? (size_t) (dot - m->str) : m->len;

        return in_list(m->str, top, code_modules, sizeof(code_modules) / sizeof(code_modules[0]));
}

/* ---- the path shown in messages ---- */

static void path_append(struct keras_walk *w, const char *s, size_t n) {
        if (w->path_len + n >= sizeof(w->path)) {
                w->path_cut = true;
                n = sizeof(w->path) - 1 - w->path_len;
        }
        memcpy(w->path + w->path_len, s, n);
        w->path_len += n;
        w->path[w->path_len] = '\0';
}

/* A name from the file, cut short; report_escape() escapes it later. Its control
 * characters are left for that. */
static void path_append_name(struct keras_walk *w, const char *s, size_t n) {
        if (n > KERAS_NAME_SHOWN) {
                n = KERAS_NAME_SHOWN;
                while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
                        n--;
                path_append(w, s, n);
                path_append(w, "…", strlen("…"));
                return;
        }
        path_append(w, s, n);
}

static void path_key(struct keras_walk *w, const char *key, size_t n) {
        if (w->path_len > 0)
                path_append(w, w->at_label ? " → " : ".", w->at_label ? strlen(" → ") : 1);
        path_append_name(w, key, n);
        w->at_label = false;
}

static void path_index(struct keras_walk *w, size_t i) {
        char b[32];
        int n = snprintf(b, sizeof(b), "[%zu]", i);

        if (w->path_len > 0 && w->at_label)
                path_append(w, " → ", strlen(" → "));
        path_append(w, b, (size_t) n);
        w->at_label = false;
}

/* The object's name: config.name (Keras 2 and 3), else its own "name" (Keras 3
 * functional layer entries). */
static const struct json_value *object_name(const struct json_value *obj) {
        const struct json_value *cfg = json_get(obj, "config");
        const struct json_value *n = json_get(cfg, "name");

        if (n && n->type == JSON_STRING)
                return n;
        n = json_get(obj, "name");
        return n && n->type == JSON_STRING ? n : NULL;
}

static void path_label(struct keras_walk *w, const struct json_value *obj) {
        const struct json_value *cls = json_get(obj, "class_name");
        const struct json_value *name = object_name(obj);

        if (w->path_len > 0)
                path_append(w, " → ", strlen(" → "));
        if (cls && cls->type == JSON_STRING)
                path_append_name(w, cls->str, cls->len);
        else
                path_append(w, "object", 6);
        if (name) {
                path_append(w, " '", 2);
                path_append_name(w, name->str, name->len);
                path_append(w, "'", 1);
        }
        w->at_label = true;
}

/* Where the object at the current path sits, for a message: "at the top level" or
 * "inside <path>" with the path's tail when it is long. */
static void where(const struct keras_walk *w, size_t upto, char *buf, size_t size) {
        const char *p = w->path;
        size_t n = upto;

        if (n == 0) {
                snprintf(buf, size, "at the top level");
                return;
        }
        if (n > KERAS_PATH_SHOWN) {
                p += n - KERAS_PATH_SHOWN;
                while (((unsigned char) *p & 0xc0) == 0x80)
                        p++;
                n = (size_t) (w->path + upto - p);
                snprintf(buf, size, "inside …%.*s", (int) n, p);
                return;
        }
        snprintf(buf, size, "inside %.*s%s", (int) n, p, w->path_cut ? "…" : "");
}

/* ---- findings ---- */

static void finding(struct keras_walk *w, enum mg_rule rule, enum mg_severity sev, const char *global,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void finding(struct keras_walk *w, enum mg_rule rule, enum mg_severity sev, const char *global,
                    const char *fmt, ...) {
        char msg[REPORT_MESSAGE_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        report_add_finding(w->ctx->report, rule, sev, VIA_NONE, w->ctx->member, global, "%s", msg);
}

/* "module:name" for the finding's global field, cut to what a report holds. */
static void global_name(char *buf, size_t size, const struct json_value *module, const char *name, size_t n) {
        snprintf(buf, size, "%.*s:%.*s", (int) (module->len < REPORT_NAME_MAX - 1 ? module->len : REPORT_NAME_MAX - 1),
                 module->str, (int) (n < REPORT_NAME_MAX - 1 ? n : REPORT_NAME_MAX - 1), name);
}

/* A short, printable quote of a string from the file. */
static void quote(char *buf, size_t size, const struct json_value *s) {
        size_t n;

        if (!s || s->type != JSON_STRING) {
                snprintf(buf, size, "?");
                return;
        }
        n = s->len < KERAS_NAME_SHOWN ? s->len : KERAS_NAME_SHOWN;
        while (n < s->len && n > 0 && ((unsigned char) s->str[n] & 0xc0) == 0x80)
                n--;
        snprintf(buf, size, "%.*s%s", (int) n, s->str, n < s->len ? "…" : "");
}

/* What a Lambda layer's config.function holds, in words. */
static void lambda_function_kind(const struct json_value *obj, char *buf, size_t size) {
        const struct json_value *cfg = json_get(obj, "config");
        const struct json_value *fn = json_get(cfg, "function");
        const struct json_value *ftype = json_get(cfg, "function_type");
        char q[96], m[96];

        if (fn && fn->type == JSON_OBJECT && str_is(json_get(fn, "class_name"), "__lambda__"))
                snprintf(buf, size, "marshalled Python bytecode (Keras 3 \"__lambda__\")");
        else if (str_is(ftype, "lambda") || (fn && fn->type == JSON_ARRAY))
                snprintf(buf, size, "marshalled Python bytecode (Keras 2 function_type \"lambda\")");
        else if (fn && fn->type == JSON_OBJECT && str_is(json_get(fn, "class_name"), "function")) {
                quote(q, sizeof(q), json_get(fn, "config"));
                quote(m, sizeof(m), json_get(fn, "module"));
                snprintf(buf, size, "the function '%s' from module '%s'", q, m);
        } else if (fn && fn->type == JSON_STRING) {
                quote(q, sizeof(q), fn);
                snprintf(buf, size, str_is(ftype, "function") ? "the function '%s' looked up by name"
                                                              : "'%s' (marshalled bytecode when base64)", q);
        } else
                snprintf(buf, size, "Python code");
}

/* The checks on one object that has a class_name. `lambda_parent` is the Lambda layer
 * whose config holds this object (its function is then reported with the layer). */
static bool check_object(struct keras_walk *w, const struct json_value *obj, const struct json_value *lambda_fn) {
        const struct json_value *cls = json_get(obj, "class_name");
        const struct json_value *module = json_get(obj, "module");
        const struct json_value *reg = json_get(obj, "registered_name");
        const struct json_value *cfg = json_get(obj, "config");
        const struct json_value *name = object_name(obj);
        bool is_lambda = false, lambda_by_reg = false;
        unsigned n_cls = 0, n_mod = 0, n_reg = 0, n_cfg = 0;
        char at[REPORT_MESSAGE_MAX / 2], q[96], qn[96], glob[2 * REPORT_NAME_MAX];

        where(w, w->path_len, at, sizeof(at));
        quote(qn, sizeof(qn), name);

        /* Every value of a duplicated key: Python keeps the last, other readers
         * the first; a Lambda under either is reported. */
        for (const struct json_value *c = obj->child; c; c = c->next) {
                if (strcmp(c->key, "class_name") == 0 && c->key_len == 10) {
                        n_cls++;
                        is_lambda |= str_is(c, "Lambda");
                } else if (strcmp(c->key, "registered_name") == 0 && c->key_len == 15) {
                        n_reg++;
                        lambda_by_reg |= str_is(c, "Lambda");
                } else if (strcmp(c->key, "module") == 0 && c->key_len == 6)
                        n_mod++;
                else if (strcmp(c->key, "config") == 0 && c->key_len == 6)
                        n_cfg++;
        }
        if (n_cls > 1 || n_mod > 1 || n_reg > 1 || n_cfg > 1)
                finding(w, RULE_MALFORMED, SEV_MEDIUM, NULL,
                        "Keras object '%s' %s has a duplicated key (%s): Python's json keeps the last, other readers the first",
                        qn, at, n_cls > 1 ? "class_name" : n_mod > 1 ? "module" : n_reg > 1 ? "registered_name" : "config");

        if (is_lambda || lambda_by_reg) {
                char kind[256];
                lambda_function_kind(obj, kind, sizeof(kind));
                if (lambda_by_reg && !is_lambda) {
                        quote(q, sizeof(q), cls);
                        finding(w, RULE_KERAS_LAMBDA, SEV_CRITICAL, NULL,
                                "Lambda layer '%s' %s (class_name '%s' with registered_name 'Lambda': Keras 3 before 3.9 falls back to the registered name): its function is %s, which runs when the model is loaded or called",
                                qn, at, q, kind);
                } else
                        finding(w, RULE_KERAS_LAMBDA, SEV_CRITICAL, NULL,
                                "Lambda layer '%s' %s: its function is %s, which runs when the model is loaded or called",
                                qn, at, kind);
        } else if (str_is(cls, "__lambda__") && obj != lambda_fn)
                finding(w, RULE_KERAS_LAMBDA, SEV_CRITICAL, NULL,
                        "Python lambda serialized as marshalled bytecode (\"__lambda__\") %s: Keras 3 runs it when loaded with safe_mode=False",
                        at);

        /* module: what Keras 3 imports when no registered object matches. */
        for (const struct json_value *c = obj->child; c; c = c->next) {
                const struct json_value *fname = NULL;
                const char *what;

                if (!(c->key_len == 6 && strcmp(c->key, "module") == 0) || c->type != JSON_STRING)
                        continue;
                if (str_is(cls, "function")) {
                        fname = cfg && cfg->type == JSON_STRING ? cfg : NULL;
                        what = "function";
                } else if (str_is(cls, "__typespec__")) {
                        fname = json_get(obj, "spec_name");
                        fname = fname && fname->type == JSON_STRING ? fname : NULL;
                        what = "type spec";
                } else {
                        fname = cls && cls->type == JSON_STRING ? cls : NULL;
                        what = "class";
                }
                quote(q, sizeof(q), fname);
                global_name(glob, sizeof(glob), c, fname ? fname->str : "", fname ? fname->len : 0);
                if (module_is_keras(c)) {
                        if (str_is(cls, "function") && fname &&
                            in_list(fname->str, fname->len, keras_unsafe_functions,
                                    sizeof(keras_unsafe_functions) / sizeof(keras_unsafe_functions[0])))
                                finding(w, RULE_KERAS_UNSAFE_CLASS, SEV_CRITICAL, glob,
                                        "Keras function %s %s: it fetches files, loads other models or turns safe mode off",
                                        glob, at);
                        continue;
                }
                if (str_is(c, "builtins") && str_is(cls, "function")) {
                        /* Keras looks the name up in its own built-ins first; only
                         * a name that is also Python's reaches Python's. */
                        if (fname && in_list(fname->str, fname->len, python_builtins,
                                             sizeof(python_builtins) / sizeof(python_builtins[0])))
                                finding(w, RULE_KERAS_UNSAFE_CLASS, SEV_CRITICAL, glob,
                                        "function %s %s: Keras 3 before 3.9 resolves it to Python's builtins.%s",
                                        glob, at, q);
                        continue;
                }
                if (module_runs_code(c))
                        finding(w, RULE_KERAS_UNSAFE_CLASS, SEV_CRITICAL, glob,
                                "%s %s %s: Keras 3 before 3.9 imports any module a config names and takes the name from it",
                                what, glob, at);
                else
                        finding(w, RULE_KERAS_UNSAFE_CLASS, SEV_HIGH, glob,
                                "%s %s %s comes from outside Keras: Keras 3 before 3.9 imports the module when the loading program registered no such object",
                                what, glob, at);
        }

        /* A registered custom object without a module to import: Keras resolves it
         * only to what the loading program registered. Reported, not denied. (With
         * a module, the module rules above judge it.) */
        if (reg && reg->type == JSON_STRING && memchr(reg->str, '>', reg->len) && !(module && module->type == JSON_STRING)) {
                quote(q, sizeof(q), reg);
                finding(w, RULE_KERAS_UNSAFE_CLASS, SEV_LOW, NULL,
                        "custom object '%s' %s: loads only when the loading program registered it, and then runs that program's code",
                        q, at);
        }

        if (str_is(cls, "TFSMLayer")) {
                quote(q, sizeof(q), json_get(cfg, "filepath"));
                finding(w, RULE_KERAS_UNSAFE_CLASS, SEV_HIGH, NULL,
                        "TFSMLayer '%s' %s loads the TensorFlow SavedModel at '%s', outside this file, and runs its graph",
                        qn, at, q);
        }
        if (str_is(cls, "TFOpLambda") || str_is(cls, "SlicingOpLambda")) {
                const struct json_value *fn = json_get(cfg, "function");
                if (fn && fn->type == JSON_STRING)
                        for (size_t i = 0; i < sizeof(tf_op_unsafe_parts) / sizeof(tf_op_unsafe_parts[0]); i++)
                                if (memmem(fn->str, fn->len, tf_op_unsafe_parts[i], strlen(tf_op_unsafe_parts[i]))) {
                                        quote(q, sizeof(q), fn);
                                        finding(w, RULE_KERAS_UNSAFE_CLASS, SEV_HIGH, NULL,
                                                "TFOpLambda '%s' %s calls tf.%s, which reaches files or Python code",
                                                qn, at, q);
                                        break;
                                }
        }
        return is_lambda || lambda_by_reg;
}

/* Any object with a string class_name is treated as a Keras object: Keras 3
 * deserializes every dict with class_name and config, Keras 2 the ones it is handed,
 * and a class_name without config is still worth a look. */
static bool is_keras_object(const struct json_value *v) {
        if (v->type != JSON_OBJECT)
                return false;
        for (const struct json_value *c = v->child; c; c = c->next)
                if (c->key_len == 10 && strcmp(c->key, "class_name") == 0 && c->type == JSON_STRING)
                        return true;
        return false;
}

static void walk(struct keras_walk *w, const struct json_value *v, unsigned depth, const struct json_value *lambda_fn) {
        size_t saved_len = w->path_len;
        bool saved_label = w->at_label;
        const struct json_value *next_lambda_fn = NULL;
        bool keras = false;

        if (depth > KERAS_DEPTH_MAX) {
                if (!w->depth_reported) {
                        char at[REPORT_MESSAGE_MAX / 2];
                        where(w, w->path_len, at, sizeof(at));
                        finding(w, RULE_MALFORMED, SEV_HIGH, NULL,
                                "Keras config nests more than %d levels deep (%s); what lies deeper was not inspected",
                                KERAS_DEPTH_MAX, at);
                }
                w->depth_reported = true;
                return;
        }
        if (v->type == JSON_ARRAY) {
                size_t i = 0;
                for (const struct json_value *c = v->child; c; c = c->next, i++) {
                        path_index(w, i);
                        walk(w, c, depth + 1, lambda_fn);
                        w->path_len = saved_len;
                        w->path[saved_len] = '\0';
                        w->at_label = saved_label;
                }
                return;
        }
        if (v->type != JSON_OBJECT)
                return;

        if (is_keras_object(v)) {
                keras = true;
                if (check_object(w, v, lambda_fn)) {
                        const struct json_value *cfg = json_get(v, "config");
                        next_lambda_fn = json_get(cfg, "function");
                }
                path_label(w, v);
        }
        size_t label_len = w->path_len;
        bool label_at = w->at_label;
        for (const struct json_value *c = v->child; c; c = c->next) {
                const struct json_value *child_lambda_fn = lambda_fn;
                /* config is implied by the label: "Bidirectional 'bi' → forward_layer". */
                if (!(keras && c->key_len == 6 && strcmp(c->key, "config") == 0))
                        path_key(w, c->key, c->key_len);
                if (keras)
                        child_lambda_fn = c->key_len == 6 && strcmp(c->key, "config") == 0 ? next_lambda_fn : NULL;
                walk(w, c, depth + 1, child_lambda_fn);
                w->path_len = label_len;
                w->path[label_len] = '\0';
                w->at_label = label_at;
        }
        w->path_len = saved_len;
        w->path[saved_len] = '\0';
        w->at_label = saved_label;
}

bool keras_config_sniff(const struct json_value *root) {
        const struct json_value *cfg;

        if (!root || root->type != JSON_OBJECT || !json_get_string(root, "class_name"))
                return false;
        cfg = json_get(root, "config");
        return cfg && cfg->type == JSON_OBJECT;
}

void keras_config_scan(struct scan_ctx *ctx, const struct json_value *root) {
        struct keras_walk w = { .ctx = ctx };

        if (root)
                walk(&w, root, 0, NULL);
}

int keras_json_parse(const uint8_t *buf, size_t len, struct json_doc **ret, char *err, size_t errsz) {
        /* Python's json.loads(bytes) accepts a UTF-8 byte order mark. */
        if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
                buf += 3;
                len -= 3;
        }
        return json_parse(buf, len, JSON_PYTHON, KERAS_JSON_NODES_MAX, ret, err, errsz);
}
