/* fuzz-joblib.c — joblib files: a pickle with NumpyArrayWrapper objects whose raw
 * array bytes sit inline after each BUILD, optionally zlib-compressed as a whole.
 * Same VM as fuzz-pickle, seeded and guided (dictionary) towards the wrappers. */
#include "fuzz.h"
#include "pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct scan_ctx ctx = fuzz_ctx();

        if (size >= 2 && data[0] == 0x78) {
                /* joblib's compress=True: a zlib stream around the pickle. */
                scan_buffer(&fuzz_report, data, size);
        } else
                pickle_scan_all(&ctx, data, size);
        fuzz_check_report(&fuzz_report);
        return 0;
}
