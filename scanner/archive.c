/* archive.c — classifies a zip (PyTorch, TorchScript, npz, other) and sends members
 * to their scanners by content. A name can only add a scan (torch unpickles data.pkl
 * whatever it looks like) or skip a torch tensor storage, which is never read. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "json.h"
#include "keras.h"
#include "npy.h"
#include "pickle.h"
#include "zip.h"

struct archive_scan {
        struct scan_ctx *ctx;
        struct zip_reader z;
        const uint8_t *prefix;    /* torch's top folder: the first entry's name up to '/' */
        size_t prefix_len;
        enum mg_format kind;      /* FMT_PYTORCH_ZIP, FMT_TORCHSCRIPT, or FMT_ZIP */
        bool has_code;            /* <prefix>/code/... */
        size_t budget;            /* bytes the rest of the archive may inflate to */
        bool budget_reported;
        size_t n_content, n_npy;  /* members with content, and those that are npy */
};

/* A member's bytes as read so far. */
struct member_data {
        const uint8_t *data;
        size_t len;
        uint8_t *owned;
        int state;                /* enum zip_read_result */
};

static void member_data_release(struct member_data *md) {
        free(md->owned);
        *md = (struct member_data) { 0 };
}

static int ascii_lower(int c) {
        return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool bytes_caseeq(const uint8_t *a, const char *b, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (ascii_lower(a[i]) != ascii_lower((unsigned char) b[i]))
                        return false;
        return true;
}

/* Does the entry's name start with "<prefix>/"? Compared as torch's
 * getAllRecords() does, byte for byte. */
static bool under_prefix(const struct archive_scan *a, const struct zip_entry *e) {
        return a->prefix && e->name_len > a->prefix_len &&
               memcmp(e->name, a->prefix, a->prefix_len) == 0 && e->name[a->prefix_len] == '/';
}

/* The part of the name after "<prefix>/", or NULL. */
static const uint8_t *torch_rest(const struct archive_scan *a, const struct zip_entry *e, size_t *ret_len) {
        if (!under_prefix(a, e))
                return NULL;
        *ret_len = e->name_len - a->prefix_len - 1;
        return e->name + a->prefix_len + 1;
}

/* "<prefix>/<record>", matched without regard to case as miniz locates records. */
static bool is_torch_record(const struct archive_scan *a, const struct zip_entry *e, const char *record) {
        size_t rn = strlen(record);

        if (!a->prefix || e->name_len != a->prefix_len + 1 + rn ||
            !bytes_caseeq(e->name, (const char *) a->prefix, a->prefix_len) || e->name[a->prefix_len] != '/')
                return false;
        return bytes_caseeq(e->name + a->prefix_len + 1, record, rn);
}

/* "<prefix>/<dir>/<digits>": a tensor storage, read by torch as raw bytes. */
static bool is_storage(const struct archive_scan *a, const struct zip_entry *e, const char *dir) {
        size_t n, dn = strlen(dir);
        const uint8_t *rest;

        if (!a->prefix || e->name_len <= a->prefix_len + 1 ||
            !bytes_caseeq(e->name, (const char *) a->prefix, a->prefix_len) || e->name[a->prefix_len] != '/')
                return false;
        rest = e->name + a->prefix_len + 1;
        n = e->name_len - a->prefix_len - 1;
        if (n <= dn + 1 || !bytes_caseeq(rest, dir, dn) || rest[dn] != '/')
                return false;
        for (size_t i = dn + 1; i < n; i++)
                if (rest[i] < '0' || rest[i] > '9')
                        return false;
        return true;
}

static bool ends_with_ci(const struct zip_entry *e, const char *suffix) {
        size_t n = strlen(suffix);
        return e->name_len >= n && bytes_caseeq(e->name + e->name_len - n, suffix, n);
}

static bool is_directory(const struct zip_entry *e) {
        return e->name_len > 0 && e->name[e->name_len - 1] == '/' && e->size == 0;
}

/* PyTorchStreamReader takes the archive's folder from the first central directory
 * entry; torch.load calls it TorchScript when constants.pkl is there and a
 * checkpoint when data.pkl is. */
static void torch_classify(struct archive_scan *a) {
        const struct zip_entry *first = zip_get(&a->z, 0);
        bool has_data = false, has_constants = false;
        const uint8_t *slash;

        a->kind = FMT_ZIP;
        if (!first || !(slash = memchr(first->name, '/', first->name_len)) || slash == first->name)
                return;
        a->prefix = first->name;
        a->prefix_len = (size_t) (slash - first->name);
        for (size_t i = 0; i < zip_count(&a->z); i++) {
                const struct zip_entry *e = zip_get(&a->z, i);
                const uint8_t *rest;
                size_t n;

                has_data |= is_torch_record(a, e, "data.pkl");
                has_constants |= is_torch_record(a, e, "constants.pkl");
                rest = torch_rest(a, e, &n);
                if (rest && n > 5 && memcmp(rest, "code/", 5) == 0)
                        a->has_code = true;
        }
        if (has_constants)
                a->kind = FMT_TORCHSCRIPT;
        else if (has_data)
                a->kind = FMT_PYTORCH_ZIP;
        else
                a->prefix = NULL;
}

static void member_finding(struct archive_scan *a, const struct zip_entry *e, enum mg_rule rule,
                           const char *msg) {
        char member[REPORT_MEMBER_MAX];

        zip_entry_member(a->ctx, e, member);
        report_add_finding(a->ctx->report, rule, SEV_HIGH, VIA_NONE, member, NULL, "%s", msg);
}

/* Reads the first `want` bytes of a member into *md, charging inflated bytes to
 * the archive's budget. want == SCAN_INFLATE_MAX means the whole member: one
 * longer than that is reported. */
static int member_read(struct archive_scan *a, const struct zip_entry *e, size_t want, struct member_data *md) {
        bool whole = want == SCAN_INFLATE_MAX;
        size_t limit = want;
        struct member_data n = { 0 };
        int r;

        if (e->method == ZIP_METHOD_DEFLATED) {
                if (a->budget == 0) {
                        if (!a->budget_reported)
                                scan_finding(a->ctx, RULE_SCAN_ERROR, SEV_HIGH,
                                             "zip: members inflate to more than %zu MiB in total; the rest was not scanned",
                                             (size_t) ARCHIVE_INFLATE_BUDGET >> 20);
                        a->budget_reported = true;
                        return -ENOSPC;
                }
                if (limit > a->budget)
                        limit = a->budget;
        }
        r = zip_read(a->ctx, &a->z, e, limit, &n.data, &n.len, &n.owned);
        if (r == -ENOMEM)
                member_finding(a, e, RULE_SCAN_ERROR, "zip: out of memory reading this member");
        if (r < 0)
                return r;
        n.state = r;
        if (e->method == ZIP_METHOD_DEFLATED)
                a->budget -= n.len;
        if (r == ZIP_READ_PREFIX && whole) {
                if (limit < want) {
                        if (!a->budget_reported)
                                scan_finding(a->ctx, RULE_SCAN_ERROR, SEV_HIGH,
                                             "zip: members inflate to more than %zu MiB in total; the rest was not scanned",
                                             (size_t) ARCHIVE_INFLATE_BUDGET >> 20);
                        a->budget_reported = true;
                } else {
                        char msg[REPORT_MESSAGE_MAX];
                        snprintf(msg, sizeof(msg),
                                 "zip: member too large to scan (more than %zu MiB); only its start was scanned",
                                 (size_t) SCAN_INFLATE_MAX >> 20);
                        member_finding(a, e, RULE_SCAN_ERROR, msg);
                }
        }
        member_data_release(md);
        *md = n;
        return 0;
}

/* Findings of the member's scanners name it "outer/name". */
static void member_enter(struct archive_scan *a, const struct zip_entry *e, char saved[static REPORT_MEMBER_MAX]) {
        char member[REPORT_MEMBER_MAX];

        memcpy(saved, a->ctx->member, REPORT_MEMBER_MAX);
        zip_entry_member(a->ctx, e, member);
        memcpy(a->ctx->member, member, REPORT_MEMBER_MAX);
}

static void member_leave(struct archive_scan *a, const char saved[static REPORT_MEMBER_MAX]) {
        memcpy(a->ctx->member, saved, REPORT_MEMBER_MAX);
}

static void scan_pickle_member(struct archive_scan *a, const struct zip_entry *e, struct member_data *md) {
        char saved[REPORT_MEMBER_MAX];

        if (md->state == ZIP_READ_PREFIX && member_read(a, e, SCAN_INFLATE_MAX, md) < 0)
                return;
        member_enter(a, e, saved);
        pickle_scan_all(a->ctx, md->data, md->len);
        member_leave(a, saved);
}

/* A numeric array is judged from its header and the directory's size, without
 * inflating its data; an object array's pickle is read in full. */
static void scan_npy_member(struct archive_scan *a, const struct zip_entry *e, struct member_data *md) {
        char saved[REPORT_MEMBER_MAX];
        struct npy_header h;
        int r;

        member_enter(a, e, saved);
        r = npy_scan_prefix(a->ctx, md->data, md->len,
                            md->state == ZIP_READ_PREFIX ? e->size : md->len, &h);
        if (r == -ENODATA && md->len < NPY_PREFIX_MAX) {
                /* A header longer than the sniffed bytes: read just enough. */
                member_leave(a, saved);
                if (member_read(a, e, NPY_PREFIX_MAX, md) < 0)
                        return;
                member_enter(a, e, saved);
                r = npy_scan_prefix(a->ctx, md->data, md->len,
                                    md->state == ZIP_READ_PREFIX ? e->size : md->len, &h);
        }
        member_leave(a, saved);
        if (r == 0)
                return;
        if (md->state == ZIP_READ_PREFIX && member_read(a, e, SCAN_INFLATE_MAX, md) < 0)
                return;
        member_enter(a, e, saved);
        if (r == 1)
                npy_scan_objects(a->ctx, &h, md->data, md->len);
        else
                npy_scan(a->ctx, md->data, md->len);
        member_leave(a, saved);
}

static void scan_other_member(struct archive_scan *a, const struct zip_entry *e, struct member_data *md) {
        char name[REPORT_MEMBER_MAX];

        if (md->state == ZIP_READ_PREFIX && member_read(a, e, SCAN_INFLATE_MAX, md) < 0)
                return;
        zip_entry_name(e, name);
        scan_nested(a->ctx, name, md->data, md->len);
}

static void scan_member(struct archive_scan *a, const struct zip_entry *e) {
        struct member_data md = { 0 };
        bool force_pickle;

        /* Records torch unpickles by name, whatever their bytes look like. */
        force_pickle = is_torch_record(a, e, "data.pkl") || is_torch_record(a, e, "constants.pkl") ||
                       ends_with_ci(e, ".pkl");
        if (member_read(a, e, ARCHIVE_SNIFF_MAX, &md) < 0)
                return;
        if (npy_sniff(md.data, md.len)) {
                a->n_npy++;
                scan_npy_member(a, e, &md);
        } else if (force_pickle || pickle_sniff(md.data, md.len))
                scan_pickle_member(a, e, &md);
        else {
                enum mg_format f = scan_sniff(md.data, md.len);
                if (f != FMT_UNKNOWN && f != FMT_EMPTY)
                        scan_other_member(a, e, &md);
        }
        member_data_release(&md);
}

/* Keras 3 opens config.json with Python's zipfile: the last central-directory entry
 * of exactly that name, compared byte for byte after ZipInfo cuts it at a NUL. */
static const struct zip_entry *keras_config_entry(const struct archive_scan *a) {
        const struct zip_entry *found = NULL;

        for (size_t i = 0; i < zip_count(&a->z); i++) {
                const struct zip_entry *e = zip_get(&a->z, i);
                const uint8_t *nul = memchr(e->name, 0, e->name_len);
                size_t n = nul ? (size_t) (nul - e->name) : e->name_len;

                if (n == 11 && memcmp(e->name, "config.json", 11) == 0)
                        found = e;
        }
        return found;
}

/* A .keras model: the top-level config.json is JSON that Keras would deserialize.
 * Only the format is decided here: the member is scanned by content like any
 * other, and scan_text() walks every JSON member that is a Keras config (so a
 * decoy config.json beside the real one is walked too, and nothing twice). */
static bool keras_archive_scan(struct archive_scan *a) {
        const struct zip_entry *e = keras_config_entry(a);
        struct member_data md = { 0 };
        struct json_doc *doc = NULL;
        char err[128];
        bool keras = false;
        int r;

        if (!e || !e->readable || (e->method != ZIP_METHOD_STORED && e->method != ZIP_METHOD_DEFLATED))
                return false;
        if (member_read(a, e, SCAN_INFLATE_MAX, &md) < 0)
                return false;
        r = keras_json_parse(md.data, md.len, &doc, err, sizeof(err));
        if (r == 0) {
                keras = keras_config_sniff(json_root(doc));
                json_free(doc);
        } else if (r == -E2BIG || r == -ENOMEM)
                keras = true;   /* scan_text() reports what it could not hold */
        member_data_release(&md);
        return keras;
}

enum mg_format zip_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len) {
        struct archive_scan a = { .ctx = ctx, .budget = ARCHIVE_INFLATE_BUDGET };
        enum mg_format fmt;
        bool keras;
        int r;

        r = zip_open(ctx, buf, len, &a.z);
        if (r == -ENOMEM)
                scan_finding(ctx, RULE_SCAN_ERROR, SEV_HIGH, "zip: out of memory reading the central directory");
        if (r < 0)
                return FMT_ZIP;

        /* Bytes before the first member: torch.load, seeing no local header at
         * offset 0, unpickles the file from its first byte. */
        if (a.z.first_local_offset > 0) {
                size_t head = a.z.first_local_offset < len ? (size_t) a.z.first_local_offset : len;
                if (pickle_sniff(buf, head))
                        pickle_scan_all(ctx, buf, head);
        }

        torch_classify(&a);
        if (a.kind == FMT_TORCHSCRIPT)
                scan_finding(ctx, RULE_TORCHSCRIPT_CODE, SEV_HIGH, "%s",
                             a.has_code ? "TorchScript archive: code/ carries Python code that torch.jit runs"
                                        : "TorchScript archive (constants.pkl): torch.load hands it to torch.jit, which runs code from it");

        keras = keras_archive_scan(&a);

        for (size_t i = 0; i < zip_count(&a.z); i++) {
                const struct zip_entry *e = zip_get(&a.z, i);

                if (is_directory(e))
                        continue;
                a.n_content++;
                if (a.kind != FMT_ZIP) {
                        if (!under_prefix(&a, e))
                                member_finding(&a, e, RULE_ARCHIVE_TAMPERED,
                                               "zip: member outside the archive's top folder (PyTorch refuses to list it)");
                        /* torch reads storages as raw bytes and never unpickles
                         * them; their bytes may look like anything. */
                        if (is_storage(&a, e, "data") ||
                            (a.kind == FMT_TORCHSCRIPT && is_storage(&a, e, "constants")))
                                continue;
                }
                if (!e->readable || (e->method != ZIP_METHOD_STORED && e->method != ZIP_METHOD_DEFLATED))
                        continue;   /* already reported by zip_open() */
                if (e->size == 0 && e->comp_size == 0)
                        continue;
                scan_member(&a, e);
        }

        if (a.kind != FMT_ZIP)
                fmt = a.kind;
        else if (keras)
                fmt = FMT_KERAS;
        else if (a.n_content > 0 && a.n_npy == a.n_content)
                fmt = FMT_NPZ;
        else {
                fmt = FMT_ZIP;
                scan_finding(ctx, RULE_UNSUPPORTED_CONTAINER, SEV_HIGH,
                             "zip archive that is neither a PyTorch checkpoint nor an npz: its members may be unpacked and loaded by other means");
        }
        zip_close(&a.z);
        return fmt;
}
