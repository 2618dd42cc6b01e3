/* fuzz-pickle.c — the pickle VM over every stream of a file (pickle_scan_all, which
 * runs pickle_scan_one per stream), and the sniffer. */
#include "fuzz.h"
#include "pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct scan_ctx ctx = fuzz_ctx();

        (void) pickle_sniff(data, size);
        pickle_scan_all(&ctx, data, size);
        fuzz_check_report(&fuzz_report);
        return 0;
}
