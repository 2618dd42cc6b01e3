/* fuzz-archive.c — zip_scan(): classification of a zip (PyTorch, TorchScript, npz,
 * .keras, other) and the scan of every member by content. */
#include "archive.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct scan_ctx ctx = fuzz_ctx();

        fuzz_report.format = (uint8_t) zip_scan(&ctx, data, size);
        fuzz_check_report(&fuzz_report);
        return 0;
}
