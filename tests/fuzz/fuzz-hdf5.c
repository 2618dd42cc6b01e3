/* fuzz-hdf5.c — HDF5: superblock search (user blocks), object headers, attribute
 * messages, the Keras .h5 model_config attribute. */
#include "fuzz.h"
#include "hdf5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct scan_ctx ctx = fuzz_ctx();
        uint64_t off;

        (void) hdf5_sniff(data, size);
        (void) hdf5_sniff_userblock(data, size);
        if (hdf5_find_superblock(data, size, &off) && off >= size) {
                fprintf(stderr, "hdf5: superblock at %llu of %zu\n", (unsigned long long) off, size);
                abort();
        }
        fuzz_report.format = (uint8_t) hdf5_scan(&ctx, data, size);
        fuzz_check_report(&fuzz_report);
        return 0;
}
