/* fuzz-tar.c — the tar reader (ustar, GNU long names, pax) and the legacy PyTorch
 * tar layout read on top of it. */
#include "fuzz.h"
#include "tar.h"
#include "torch-tar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct scan_ctx ctx = fuzz_ctx();
        struct tar_reader t;
        struct tar_member m;
        int r;

        (void) tar_sniff(data, size);
        tar_open(&ctx, data, size, &t);
        while ((r = tar_next(&t, &m)) > 0) {
                if (m.data && (m.data < data || m.size > (uint64_t) (data + size - m.data))) {
                        fprintf(stderr, "tar: member data outside the input\n");
                        abort();
                }
                if (m.name_len > TAR_NAME_MAX)
                        abort();
        }
        fuzz_check_report(&fuzz_report);

        ctx = fuzz_ctx();
        fuzz_report.format = (uint8_t) torch_tar_scan(&ctx, data, size);
        fuzz_check_report(&fuzz_report);
        return 0;
}
