/* fuzz-gguf.c — GGUF: header, metadata key/value pairs (nested arrays, strings),
 * tensor infos, the chat template and the license. */
#include "fuzz.h"
#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct scan_ctx ctx = fuzz_ctx();

        (void) gguf_sniff(data, size);
        fuzz_report.format = (uint8_t) gguf_scan(&ctx, data, size);
        fuzz_check_report(&fuzz_report);
        return 0;
}
