/* torch-tar.c — the pre-1.0 PyTorch tar layout. legacy_load extracts 'storages'
 * (a count, then per storage an argument pickle and raw bytes, then a views
 * pickle), 'tensors' (a count pickle, then binary records) and unpickles 'pickle'.
 * Every pickle torch would run is scanned; raw storage bytes are skipped by the
 * sizes torch would use. Any other tar is reported as an unsupported container. */
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "pickle.h"
#include "tar.h"
#include "torch-tar.h"

/* Storages one legacy file may declare before the scan calls it implausible. */
#define TORCH_TAR_STORAGES_MAX (1u << 20)

enum torch_member { TM_SYS_INFO, TM_STORAGES, TM_TENSORS, TM_PICKLE, _TM_MAX };

static const char *const torch_member_names[_TM_MAX] = {
        [TM_SYS_INFO] = "sys_info", [TM_STORAGES] = "storages", [TM_TENSORS] = "tensors", [TM_PICKLE] = "pickle",
};

/* torch._utils._element_size of each legacy storage class. */
static unsigned storage_element_size(const char *global) {
        static const struct { const char *name; unsigned size; } sizes[] = {
                { "torch:DoubleStorage", 8 }, { "torch:FloatStorage", 4 }, { "torch:HalfStorage", 2 },
                { "torch:BFloat16Storage", 2 }, { "torch:LongStorage", 8 }, { "torch:IntStorage", 4 },
                { "torch:ShortStorage", 2 }, { "torch:CharStorage", 1 }, { "torch:ByteStorage", 1 },
                { "torch:BoolStorage", 1 }, { "torch:ComplexFloatStorage", 8 },
                { "torch:ComplexDoubleStorage", 16 }, { "torch:QInt8Storage", 1 }, { "torch:QUInt8Storage", 1 },
                { "torch:QInt32Storage", 4 }, { "torch:QUInt4x2Storage", 1 }, { "torch:QUInt2x4Storage", 1 },
        };
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
                if (strcmp(global, sizes[i].name) == 0)
                        return sizes[i].size;
        return 0;
}

static bool result_count(const struct pickle_result *r, uint64_t *ret) {
        if (!r->complete || !r->result_is_int || r->result_int_big)
                return false;
        int64_t v = 0;
        memcpy(&v, r->result_int_bytes, sizeof(v));
        if (v < 0)
                return false;
        *ret = (uint64_t) v;
        return true;
}

static void scan_storages(struct scan_ctx *ctx, const uint8_t *buf, size_t len) {
        struct pickle_result res;
        struct cursor c = cursor_make(buf, len);
        uint64_t count;

        pickle_scan_one(ctx, buf, len, &res);
        if (!res.complete)
                return;
        if (!result_count(&res, &count) || count > TORCH_TAR_STORAGES_MAX) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "legacy torch storages: the first pickle is not a storage count");
                return;
        }
        c.pos = res.consumed;
        for (uint64_t i = 0; i < count; i++) {
                uint64_t numel;
                pickle_scan_one(ctx, c.base + c.pos, cursor_left(&c), &res);
                if (!res.complete)
                        return;
                c.pos += res.consumed;
                unsigned elem = storage_element_size(res.result_last_global);
                if (elem == 0) {
                        scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                                     "legacy torch storage %llu: unknown storage type '%s'; its bytes cannot be located",
                                     (unsigned long long) i, res.result_last_global);
                        return;
                }
                if (cursor_le64(&c, &numel) < 0 || numel > cursor_left(&c) / elem ||
                    cursor_skip(&c, (size_t) (numel * elem)) < 0) {
                        scan_finding(ctx, RULE_MALFORMED, SEV_HIGH,
                                     "legacy torch storage %llu: data runs past the end of the member",
                                     (unsigned long long) i);
                        return;
                }
        }
        /* storage_views */
        pickle_scan_one(ctx, c.base + c.pos, cursor_left(&c), &res);
}

static void scan_torch_member(struct scan_ctx *ctx, enum torch_member which, const struct tar_member *m) {
        char saved[REPORT_MEMBER_MAX];
        struct pickle_result res;

        if (!scan_member_enter(ctx, torch_member_names[which], saved))
                return;
        if (!m->is_file || (m->type != '0' && m->type != '7'))
                scan_finding(ctx, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                             "legacy torch member '%s' is not a regular file (type '%c'); torch extracts it and opens what it points to",
                             torch_member_names[which], m->type);
        else if (m->size == 0)
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "legacy torch member '%s' is empty", torch_member_names[which]);
        else if (which == TM_STORAGES)
                scan_storages(ctx, m->data, (size_t) m->size);
        else if (which == TM_TENSORS)
                pickle_scan_one(ctx, m->data, (size_t) m->size, &res);   /* a count, then binary records */
        else
                pickle_scan_all(ctx, m->data, (size_t) m->size);
        scan_member_leave(ctx, saved);
}

static int torch_member_of(const struct tar_member *m) {
        for (int i = 0; i < _TM_MAX; i++)
                if (m->name_len == strlen(torch_member_names[i]) && memcmp(m->name, torch_member_names[i], m->name_len) == 0)
                        return i;
        return -1;
}

enum mg_format torch_tar_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len) {
        struct tar_reader t;
        struct tar_member m;
        unsigned seen[_TM_MAX] = { 0 };
        bool torch = false;
        int r;

        /* First pass, into a scratch report (the second pass reports structure
         * problems): is this torch's layout? */
        struct scan_report *scratch = malloc(sizeof(*scratch));
        if (!scratch) {
                scan_finding(ctx, RULE_SCAN_ERROR, SEV_HIGH, "tar: out of memory");
                return FMT_TAR;
        }
        report_init(scratch);
        struct scan_ctx probe = { .report = scratch, .depth = ctx->depth };
        tar_open(&probe, buf, len, &t);
        while ((r = tar_next(&t, &m)) > 0) {
                int which = torch_member_of(&m);
                if (which >= 0) {
                        seen[which]++;
                        if (which != TM_SYS_INFO)
                                torch = true;
                }
        }
        free(scratch);

        if (!torch) {
                scan_finding(ctx, RULE_UNSUPPORTED_CONTAINER, SEV_HIGH,
                             "tar archive: its members may be unpacked and loaded by a helper script");
                tar_open(ctx, buf, len, &t);
                while (tar_next(&t, &m) > 0) {
                        char name[REPORT_MEMBER_MAX];
                        if (!m.is_file || m.size == 0)
                                continue;
                        report_escape(name, sizeof(name), (const uint8_t *) m.name, m.name_len, NULL);
                        scan_nested(ctx, name, m.data, (size_t) m.size);
                }
                return FMT_TAR;
        }

        for (int i = 0; i < _TM_MAX; i++) {
                if (seen[i] > 1)
                        scan_finding(ctx, RULE_ARCHIVE_TAMPERED, SEV_HIGH,
                                     "legacy torch tar has %u members named '%s'; tarfile uses the last one",
                                     seen[i], torch_member_names[i]);
                if (seen[i] == 0 && i != TM_SYS_INFO)
                        scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "legacy torch tar has no '%s' member",
                                     torch_member_names[i]);
        }
        /* Second pass: every copy of each member, in archive order. */
        tar_open(ctx, buf, len, &t);
        while (tar_next(&t, &m) > 0) {
                int which = torch_member_of(&m);
                if (which >= 0)
                        scan_torch_member(ctx, (enum torch_member) which, &m);
        }
        return FMT_PYTORCH_LEGACY_TAR;
}
