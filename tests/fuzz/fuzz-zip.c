/* fuzz-zip.c — the zip reader itself: central directory, local headers, names,
 * and reading (inflating) every member with a small limit and a whole one. */
#include "fuzz.h"
#include "zip.h"

/* Enough to reach the CRC check of the small members in the corpus, small
 * enough that a deflate bomb costs nothing. */
#define FUZZ_ZIP_READ_LIMIT ((size_t) 1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct scan_ctx ctx = fuzz_ctx();
        struct zip_reader z;

        if (zip_open(&ctx, data, size, &z) < 0) {
                fuzz_check_report(&fuzz_report);
                return 0;
        }
        for (size_t i = 0; i < zip_count(&z); i++) {
                const struct zip_entry *e = zip_get(&z, i);
                char name[REPORT_MEMBER_MAX], member[REPORT_MEMBER_MAX];
                const uint8_t *out;
                uint8_t *owned = NULL;
                size_t out_len = 0;

                zip_entry_name(e, name);
                zip_entry_member(&ctx, e, member);
                if (!memchr(name, '\0', sizeof(name)) || !memchr(member, '\0', sizeof(member)))
                        abort();
                if (e->readable && (e->data_offset > size || e->extent_end > size)) {
                        fprintf(stderr, "zip: readable member %zu with data at %llu..%llu of %zu\n", i,
                                (unsigned long long) e->data_offset, (unsigned long long) e->extent_end, size);
                        abort();
                }
                int r = zip_read(&ctx, &z, e, i % 2 ? 64 : FUZZ_ZIP_READ_LIMIT, &out, &out_len, &owned);
                if (r >= 0 && out_len) {
                        /* Touch the first and last byte: ASan checks they are ours. */
                        volatile uint8_t sink = out[0] ^ out[out_len - 1];
                        (void) sink;
                }
                free(owned);
        }
        (void) zip_find(&z, "archive/data.pkl");
        zip_close(&z);
        fuzz_check_report(&fuzz_report);
        return 0;
}
