/* fuzz-lfs.c — Git LFS pointer files: the parser must accept exactly what git-lfs
 * decodes, and a parsed oid is always 64 lowercase hex digits. */
#include "fuzz.h"
#include "lfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct scan_ctx ctx = fuzz_ctx();
        char oid[65];
        uint64_t sz;

        if (lfs_pointer_parse(data, size, oid, &sz)) {
                if (strlen(oid) != 64 || strspn(oid, "0123456789abcdef") != 64) {
                        fprintf(stderr, "lfs: parsed oid \"%.65s\"\n", oid);
                        abort();
                }
        }
        if (lfs_sniff(data, size))
                lfs_scan(&ctx, data, size);
        fuzz_check_report(&fuzz_report);
        return 0;
}
