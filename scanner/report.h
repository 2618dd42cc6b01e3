/* report.h — the facts a scan produces about one file, and the finding type.
 * A report has a fixed maximum size so that it can cross the worker socket as a
 * bounded sequence of fixed-size messages (see worker-proto.h). */
#ifndef MODELGATE_REPORT_H
#define MODELGATE_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Rule codes: DESIGN.md "Rule codes". Order is part of the worker protocol. */
enum mg_rule {
        RULE_UNSAFE_IMPORT,
        RULE_PICKLE_OBFUSCATION,
        RULE_NESTED_PICKLE,
        RULE_MALFORMED,
        RULE_ARCHIVE_TAMPERED,
        RULE_UNSUPPORTED_CONTAINER,
        RULE_LFS_POINTER,
        RULE_HASH_MISMATCH,
        RULE_RESTRICTED_LICENSE,
        RULE_MISSING_LICENSE,
        RULE_KERAS_LAMBDA,
        RULE_KERAS_UNSAFE_CLASS,
        RULE_ONNX_EXTERNAL_DATA,
        RULE_TEMPLATE_INJECTION,
        RULE_TORCHSCRIPT_CODE,
        RULE_SCAN_ERROR,
        RULE_SCAN_TIMEOUT,
        _RULE_MAX,
};

enum mg_severity {
        SEV_INFO,
        SEV_LOW,
        SEV_MEDIUM,
        SEV_HIGH,
        SEV_CRITICAL,
        _SEV_MAX,
};

/* How a pickle reached a global. */
enum mg_via {
        VIA_NONE,
        VIA_GLOBAL,
        VIA_STACK_GLOBAL,
        VIA_INST,
        VIA_EXT1,
        VIA_EXT2,
        VIA_EXT4,
        _VIA_MAX,
};

enum mg_format {
        FMT_UNKNOWN,
        FMT_EMPTY,
        FMT_TEXT,
        FMT_PICKLE,
        FMT_PYTORCH_ZIP,
        FMT_PYTORCH_LEGACY,
        FMT_PYTORCH_LEGACY_TAR,
        FMT_TORCHSCRIPT,
        FMT_NPY,
        FMT_NPZ,
        FMT_JOBLIB,
        FMT_ZIP,
        FMT_7Z,
        FMT_TAR,
        FMT_GZIP,
        FMT_BZIP2,
        FMT_XZ,
        FMT_ZSTD,
        FMT_RAR,
        FMT_SAFETENSORS,
        FMT_GGUF,
        FMT_ONNX,
        FMT_KERAS,          /* .keras: a zip with config.json */
        FMT_KERAS_H5,       /* HDF5 with a model_config attribute */
        FMT_HDF5,
        FMT_LFS_POINTER,
        FMT_JSON,
        FMT_TEMPLATE,       /* a standalone Jinja2 template */
        _FMT_MAX,
};

/* Sizes include the terminating NUL. Strings in a report are always valid UTF-8
 * with no control characters: report_escape() is applied at the source. */
#define REPORT_NAME_MAX      192   /* module or qualname; longer names are truncated and flagged */
#define REPORT_MEMBER_MAX    192   /* archive member path, "a.zip/b.npy" for nesting */
#define REPORT_MESSAGE_MAX   384
#define REPORT_LICENSE_MAX   128
#define REPORT_GLOBALS_MAX   512   /* distinct globals per file; real checkpoints use < 50 */
#define REPORT_FINDINGS_MAX  128   /* the most severe are kept when more are made */

struct report_global {
        char module[REPORT_NAME_MAX];
        char qualname[REPORT_NAME_MAX];
        char member[REPORT_MEMBER_MAX];   /* "" for the file itself */
        uint8_t via;                      /* enum mg_via */
};

struct finding {
        uint8_t rule;                     /* enum mg_rule */
        uint8_t severity;                 /* enum mg_severity */
        uint8_t via;                      /* enum mg_via, VIA_NONE when not about a global */
        char global[2 * REPORT_NAME_MAX]; /* "module:qualname" or "" */
        char member[REPORT_MEMBER_MAX];
        char message[REPORT_MESSAGE_MAX];
};

struct scan_report {
        uint8_t format;                   /* enum mg_format */
        uint64_t size;
        bool has_license;
        char license[REPORT_LICENSE_MAX];
        bool has_sha256;
        char sha256[65];
        bool has_git_sha1;
        char git_sha1[41];                /* git blob id: SHA-1 of "blob <size>\0" + content */
        uint32_t n_globals;
        uint32_t n_findings;
        uint32_t globals_dropped;         /* distinct globals beyond REPORT_GLOBALS_MAX */
        uint32_t findings_dropped;        /* less severe findings pushed out */
        struct report_global globals[REPORT_GLOBALS_MAX];
        struct finding findings[REPORT_FINDINGS_MAX];
};

void report_init(struct scan_report *r);

/* The one place a finding is created. member/global may be NULL. The message is
 * printf-formatted and escaped. When the report is full, the least severe finding
 * gives way to a more severe one; otherwise the new one is counted as dropped. */
void report_add_finding(struct scan_report *r, enum mg_rule rule, enum mg_severity sev,
                        enum mg_via via, const char *member, const char *global,
                        const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Records a global (raw bytes from the pickle; escaped here). Duplicates of
 * (module, qualname, via, member) are recorded once. Returns true when the global
 * was new. */
bool report_add_global(struct scan_report *r, const uint8_t *module, size_t module_len,
                       const uint8_t *qualname, size_t qualname_len, enum mg_via via,
                       const char *member);

/* Copies src into dst (size dstsize, always NUL-terminated), keeping valid UTF-8
 * printable characters and writing everything else (controls, DEL, invalid UTF-8,
 * and each byte in `extra`, e.g. ":" for names) as \xNN. Returns false when the
 * result was truncated. */
bool report_escape(char *dst, size_t dstsize, const uint8_t *src, size_t len, const char *extra);

/* True when s is a string report_escape() could have produced: valid UTF-8 with
 * no control characters. For checking what crosses the worker socket. */
bool report_string_valid(const char *s);

/* Highest severity among the findings, or -1 when there are none. */
int report_worst_severity(const struct scan_report *r);

const char *rule_name(enum mg_rule rule);
const char *rule_description(enum mg_rule rule);   /* one sentence, for SARIF and man pages */
const char *severity_name(enum mg_severity sev);       /* "critical" … "info" */
const char *severity_name_upper(enum mg_severity sev); /* "CRITICAL" … "INFO" */
const char *via_name(enum mg_via via);                 /* NULL for VIA_NONE */
const char *format_name(enum mg_format fmt);
int severity_from_name(const char *name);              /* -1 when unknown */
int rule_from_name(const char *name);                  /* -1 when unknown */

#endif
