/* fuzz-onnx.c — ONNX: the protobuf wire-format reader (pb_next over the top-level
 * message) and the ModelProto walk (graphs, subgraphs, functions, external data). */
#include "fuzz.h"
#include "onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct scan_ctx ctx = fuzz_ctx();
        struct cursor c = cursor_make(data, size);
        struct pb_field f;
        enum pb_status st;

        while ((st = pb_next(&c, &f)) == PB_OK) {
                if (f.wire == PB_WIRE_LEN && (f.data < data || f.len > (size_t) (data + size - f.data))) {
                        fprintf(stderr, "onnx: field %u payload outside the input\n", f.number);
                        abort();
                }
        }
        (void) pb_status_text(st);

        (void) onnx_sniff(data, size);
        fuzz_report.format = (uint8_t) onnx_scan(&ctx, data, size);
        fuzz_check_report(&fuzz_report);
        return 0;
}
