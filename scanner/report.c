/* report.c — creation of findings and globals, and the names of enums.
 * This is the only place a struct finding is filled in; every string that enters
 * a report is escaped here, so outputs never see raw bytes from a file. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "report.h"

static const char *const rule_names[_RULE_MAX] = {
        [RULE_UNSAFE_IMPORT] = "UNSAFE_IMPORT",
        [RULE_PICKLE_OBFUSCATION] = "PICKLE_OBFUSCATION",
        [RULE_NESTED_PICKLE] = "NESTED_PICKLE",
        [RULE_MALFORMED] = "MALFORMED",
        [RULE_ARCHIVE_TAMPERED] = "ARCHIVE_TAMPERED",
        [RULE_UNSUPPORTED_CONTAINER] = "UNSUPPORTED_CONTAINER",
        [RULE_LFS_POINTER] = "LFS_POINTER",
        [RULE_HASH_MISMATCH] = "HASH_MISMATCH",
        [RULE_RESTRICTED_LICENSE] = "RESTRICTED_LICENSE",
        [RULE_MISSING_LICENSE] = "MISSING_LICENSE",
        [RULE_KERAS_LAMBDA] = "KERAS_LAMBDA",
        [RULE_KERAS_UNSAFE_CLASS] = "KERAS_UNSAFE_CLASS",
        [RULE_ONNX_EXTERNAL_DATA] = "ONNX_EXTERNAL_DATA",
        [RULE_TEMPLATE_INJECTION] = "TEMPLATE_INJECTION",
        [RULE_TORCHSCRIPT_CODE] = "TORCHSCRIPT_CODE",
        [RULE_SCAN_ERROR] = "SCAN_ERROR",
        [RULE_SCAN_TIMEOUT] = "SCAN_TIMEOUT",
};

static const char *const rule_descriptions[_RULE_MAX] = {
        [RULE_UNSAFE_IMPORT] = "A pickle imports a name outside the policy's allowlist, or on its deny list.",
        [RULE_PICKLE_OBFUSCATION] = "A pickle hides what it imports or changes: computed import operands, dotted names, BUILD on imported objects, EXT codes, frame tricks.",
        [RULE_NESTED_PICKLE] = "A pickle embedded in another file's strings, scanned as a member of its own.",
        [RULE_MALFORMED] = "The file's structure is truncated or invalid; what a loader does with it cannot be predicted.",
        [RULE_ARCHIVE_TAMPERED] = "A zip archive differs from a well-formed one in ways that make readers disagree.",
        [RULE_UNSUPPORTED_CONTAINER] = "A container whose content the scanner cannot inspect (7z, rar, bzip2, xz, tar, foreign zip).",
        [RULE_LFS_POINTER] = "A Git LFS pointer file stands where the model's bytes should be.",
        [RULE_HASH_MISMATCH] = "The file's hash differs from the one its manifest or cache name expects.",
        [RULE_RESTRICTED_LICENSE] = "The license in the file's metadata is on the policy's restricted list.",
        [RULE_MISSING_LICENSE] = "The policy requires a license and the file declares none.",
        [RULE_KERAS_LAMBDA] = "A Keras Lambda layer carries Python code.",
        [RULE_KERAS_UNSAFE_CLASS] = "A Keras config names a class outside Keras and TensorFlow.",
        [RULE_ONNX_EXTERNAL_DATA] = "An ONNX external_data location reaches outside the model's directory.",
        [RULE_TEMPLATE_INJECTION] = "A chat template reaches Python internals (server-side template injection).",
        [RULE_TORCHSCRIPT_CODE] = "A TorchScript archive carries code that torch.jit runs.",
        [RULE_SCAN_ERROR] = "The scan could not be completed (limit reached, worker crashed, file unreadable).",
        [RULE_SCAN_TIMEOUT] = "The scan did not finish before its deadline.",
};

static const char *const severity_names[_SEV_MAX] = {
        [SEV_INFO] = "info", [SEV_LOW] = "low", [SEV_MEDIUM] = "medium",
        [SEV_HIGH] = "high", [SEV_CRITICAL] = "critical",
};

static const char *const severity_names_upper[_SEV_MAX] = {
        [SEV_INFO] = "INFO", [SEV_LOW] = "LOW", [SEV_MEDIUM] = "MEDIUM",
        [SEV_HIGH] = "HIGH", [SEV_CRITICAL] = "CRITICAL",
};

static const char *const via_names[_VIA_MAX] = {
        [VIA_NONE] = NULL, [VIA_GLOBAL] = "GLOBAL", [VIA_STACK_GLOBAL] = "STACK_GLOBAL",
        [VIA_INST] = "INST", [VIA_EXT1] = "EXT1", [VIA_EXT2] = "EXT2", [VIA_EXT4] = "EXT4",
};

static const char *const format_names[_FMT_MAX] = {
        [FMT_UNKNOWN] = "unknown",
        [FMT_EMPTY] = "empty",
        [FMT_TEXT] = "text",
        [FMT_PICKLE] = "pickle",
        [FMT_PYTORCH_ZIP] = "pytorch",
        [FMT_PYTORCH_LEGACY] = "pytorch-legacy",
        [FMT_PYTORCH_LEGACY_TAR] = "pytorch-legacy-tar",
        [FMT_TORCHSCRIPT] = "torchscript",
        [FMT_NPY] = "npy",
        [FMT_NPZ] = "npz",
        [FMT_JOBLIB] = "joblib",
        [FMT_ZIP] = "zip",
        [FMT_7Z] = "7z",
        [FMT_TAR] = "tar",
        [FMT_GZIP] = "gzip",
        [FMT_BZIP2] = "bzip2",
        [FMT_XZ] = "xz",
        [FMT_ZSTD] = "zstd",
        [FMT_RAR] = "rar",
        [FMT_SAFETENSORS] = "safetensors",
        [FMT_GGUF] = "gguf",
        [FMT_ONNX] = "onnx",
        [FMT_KERAS] = "keras",
        [FMT_KERAS_H5] = "keras-h5",
        [FMT_HDF5] = "hdf5",
        [FMT_LFS_POINTER] = "lfs-pointer",
        [FMT_JSON] = "json",
        [FMT_TEMPLATE] = "jinja",
};

const char *rule_name(enum mg_rule rule) {
        return (unsigned) rule < _RULE_MAX ? rule_names[rule] : "SCAN_ERROR";
}

const char *rule_description(enum mg_rule rule) {
        return (unsigned) rule < _RULE_MAX ? rule_descriptions[rule] : "";
}

const char *severity_name(enum mg_severity sev) {
        return (unsigned) sev < _SEV_MAX ? severity_names[sev] : "critical";
}

const char *severity_name_upper(enum mg_severity sev) {
        return (unsigned) sev < _SEV_MAX ? severity_names_upper[sev] : "CRITICAL";
}

const char *via_name(enum mg_via via) {
        return (unsigned) via < _VIA_MAX ? via_names[via] : NULL;
}

const char *format_name(enum mg_format fmt) {
        return (unsigned) fmt < _FMT_MAX ? format_names[fmt] : "unknown";
}

int severity_from_name(const char *name) {
        for (int i = 0; i < _SEV_MAX; i++)
                if (strcmp(name, severity_names[i]) == 0)
                        return i;
        return -1;
}

int rule_from_name(const char *name) {
        for (int i = 0; i < _RULE_MAX; i++)
                if (strcmp(name, rule_names[i]) == 0)
                        return i;
        return -1;
}

void report_init(struct scan_report *r) {
        memset(r, 0, offsetof(struct scan_report, globals));
}

/* Length of the valid UTF-8 sequence at s (1..4) that encodes a printable
 * character, or 0. Overlongs, surrogates and C1 controls are rejected. */
static size_t utf8_valid_len(const uint8_t *s, size_t left) {
        uint8_t c = s[0];
        size_t n;
        uint32_t cp;

        if (c >= 0x20 && c < 0x7f)
                return 1;
        if (c >= 0xc2 && c <= 0xdf) {
                n = 2;
                cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                cp = c & 0x07;
        } else
                return 0;
        if (left < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
                return 0;
        if (cp >= 0xd800 && cp <= 0xdfff)
                return 0;
        if (cp >= 0x80 && cp < 0xa0)
                return 0;
        if (cp == 0x2028 || cp == 0x2029)   /* line separators would split text lines */
                return 0;
        return n;
}

bool report_escape(char *dst, size_t dstsize, const uint8_t *src, size_t len, const char *extra) {
        size_t o = 0;

        if (dstsize == 0)
                return false;
        for (size_t i = 0; i < len;) {
                size_t n = utf8_valid_len(src + i, len - i);
                if (n == 1 && (src[i] == '\\' || (extra && strchr(extra, src[i]))))
                        n = 0;
                if (n > 0) {
                        if (o + n >= dstsize)
                                goto truncated;
                        memcpy(dst + o, src + i, n);
                        o += n;
                        i += n;
                } else {
                        if (o + 4 >= dstsize)
                                goto truncated;
                        snprintf(dst + o, 5, "\\x%02x", src[i]);
                        o += 4;
                        i++;
                }
        }
        dst[o] = '\0';
        return true;

truncated:
        /* Never leave half a UTF-8 sequence or half an escape: o is at a boundary. */
        dst[o] = '\0';
        return false;
}

bool report_string_valid(const char *s) {
        const uint8_t *p = (const uint8_t *) s;
        size_t len = strlen(s);
        for (size_t i = 0; i < len;) {
                size_t n = utf8_valid_len(p + i, len - i);
                if (n == 0)
                        return false;
                i += n;
        }
        return true;
}

/* Member names and globals are built by the scanner from names it has already
 * escaped; they are copied as they are (escaping again would turn "\x00" into
 * "\x5cx00"), but only up to the first byte that is not valid UTF-8: a caller's
 * snprintf() may have cut a character in two, and the worker receiver refuses a
 * report with such a string (found by tests/fuzz/fuzz-pickle: a long dotted name). */
static void copy_escaped(char *dst, size_t dstsize, const char *src) {
        size_t len = src ? strlen(src) : 0, o = 0;

        while (o < len) {
                size_t n = utf8_valid_len((const uint8_t *) src + o, len - o);
                if (n == 0 || o + n >= dstsize)
                        break;
                o += n;
        }
        if (o)
                memcpy(dst, src, o);
        dst[o] = '\0';
}

void report_add_finding(struct scan_report *r, enum mg_rule rule, enum mg_severity sev,
                        enum mg_via via, const char *member, const char *global,
                        const char *fmt, ...) {
        struct finding *f;
        char raw[REPORT_MESSAGE_MAX];
        va_list ap;

        if ((unsigned) rule >= _RULE_MAX)
                rule = RULE_SCAN_ERROR;
        if ((unsigned) sev >= _SEV_MAX)
                sev = SEV_CRITICAL;

        struct finding nf;
        memset(&nf, 0, sizeof(nf));
        nf.rule = (uint8_t) rule;
        nf.severity = (uint8_t) sev;
        nf.via = (uint8_t) ((unsigned) via < _VIA_MAX ? via : VIA_NONE);
        copy_escaped(nf.member, sizeof(nf.member), member);
        /* A global is already escaped by report_add_global(); keep ':' as is. */
        copy_escaped(nf.global, sizeof(nf.global), global);
        va_start(ap, fmt);
        vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
        report_escape(nf.message, sizeof(nf.message), (const uint8_t *) raw, strlen(raw), NULL);

        /* The same finding twice (two readings of one stream) is recorded once. */
        for (size_t i = 0; i < r->n_findings; i++) {
                const struct finding *o = &r->findings[i];
                if (o->rule == nf.rule && o->severity == nf.severity && o->via == nf.via &&
                    strcmp(o->member, nf.member) == 0 && strcmp(o->global, nf.global) == 0 &&
                    strcmp(o->message, nf.message) == 0)
                        return;
        }

        if (r->n_findings < REPORT_FINDINGS_MAX)
                f = &r->findings[r->n_findings++];
        else {
                /* Full: the least severe finding gives way to a more severe one. */
                size_t weakest = 0;
                for (size_t i = 1; i < REPORT_FINDINGS_MAX; i++)
                        if (r->findings[i].severity < r->findings[weakest].severity)
                                weakest = i;
                r->findings_dropped++;
                if (r->findings[weakest].severity >= sev)
                        return;
                f = &r->findings[weakest];
        }

        *f = nf;
}

bool report_add_global(struct scan_report *r, const uint8_t *module, size_t module_len,
                       const uint8_t *qualname, size_t qualname_len, enum mg_via via,
                       const char *member) {
        struct report_global g;

        memset(&g, 0, sizeof(g));
        /* ':' and whitespace would break "module:qualname"; an empty part is made
         * visible rather than left empty. */
        if (module_len == 0)
                snprintf(g.module, sizeof(g.module), "\\x00");
        else
                report_escape(g.module, sizeof(g.module), module, module_len, ": ");
        if (qualname_len == 0)
                snprintf(g.qualname, sizeof(g.qualname), "\\x00");
        else
                report_escape(g.qualname, sizeof(g.qualname), qualname, qualname_len, ": ");
        copy_escaped(g.member, sizeof(g.member), member);
        g.via = (uint8_t) via;

        for (size_t i = 0; i < r->n_globals; i++) {
                const struct report_global *o = &r->globals[i];
                if (o->via == g.via && strcmp(o->module, g.module) == 0 &&
                    strcmp(o->qualname, g.qualname) == 0 && strcmp(o->member, g.member) == 0)
                        return false;
        }
        if (r->n_globals >= REPORT_GLOBALS_MAX) {
                r->globals_dropped++;
                return true;
        }
        r->globals[r->n_globals++] = g;
        return true;
}

int report_worst_severity(const struct scan_report *r) {
        int worst = -1;
        for (size_t i = 0; i < r->n_findings; i++)
                if (r->findings[i].severity > worst)
                        worst = r->findings[i].severity;
        return worst;
}
