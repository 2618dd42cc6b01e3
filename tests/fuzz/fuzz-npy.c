/* fuzz-npy.c — numpy .npy: the header (a Python dict literal), object arrays (a
 * pickle after the header), and the prefix-only path used for zip members whose
 * data is not inflated. */
#include "fuzz.h"
#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct scan_ctx ctx = fuzz_ctx();
        struct npy_header h;

        (void) npy_sniff(data, size);
        npy_scan(&ctx, data, size);
        fuzz_check_report(&fuzz_report);

        ctx = fuzz_ctx();
        memset(&h, 0, sizeof(h));
        if (npy_header_parse(&ctx, data, size, &h) >= 0 && h.data_offset > size) {
                fprintf(stderr, "npy: data offset %zu past the end (%zu)\n", h.data_offset, size);
                abort();
        }
        fuzz_check_report(&fuzz_report);

        /* A member of which only a prefix was inflated: the real length is larger. */
        ctx = fuzz_ctx();
        size_t prefix = size < NPY_PREFIX_MAX ? size : NPY_PREFIX_MAX;
        memset(&h, 0, sizeof(h));
        if (npy_scan_prefix(&ctx, data, prefix, (uint64_t) size + (size & 0xff), &h) >= 0 && h.data_offset > prefix) {
                fprintf(stderr, "npy: prefix data offset %zu past the prefix (%zu)\n", h.data_offset, prefix);
                abort();
        }
        fuzz_check_report(&fuzz_report);
        return 0;
}
