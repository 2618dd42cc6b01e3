/* fuzz-template.c — Jinja2 chat templates: the compile check (template_compiles,
 * template_sniff) and the injection check (template_check) on any text. */
#include "fuzz.h"
#include "template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct scan_ctx ctx = fuzz_ctx();

        (void) template_sniff(data, size);
        (void) template_compiles(data, size);
        (void) template_check(&ctx, "chat_template", data, size);
        fuzz_check_report(&fuzz_report);
        return 0;
}
