/* fuzz-safetensors.c — safetensors: the 8-byte length, the JSON header, dtypes,
 * shapes and data offsets, __metadata__ (license). */
#include "fuzz.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct scan_ctx ctx = fuzz_ctx();

        (void) safetensors_sniff(data, size);
        fuzz_report.format = (uint8_t) safetensors_scan(&ctx, data, size);
        fuzz_check_report(&fuzz_report);
        return 0;
}
