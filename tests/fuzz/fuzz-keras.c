/* fuzz-keras.c — a Keras model config (config.json of a .keras, the model_config
 * attribute of an .h5) and a tokenizer config's chat templates, as scan_text()
 * reads a JSON text file. */
#include "fuzz.h"
#include "keras.h"
#include "template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct scan_ctx ctx = fuzz_ctx();
        struct json_doc *doc = NULL;
        char err[160];

        if (keras_json_parse(data, size, &doc, err, sizeof(err)) == 0) {
                const struct json_value *root = json_root(doc);
                template_check_tokenizer_config(&ctx, root);
                /* The walk must hold for any JSON, not only what the sniff lets in. */
                (void) keras_config_sniff(root);
                keras_config_scan(&ctx, root);
                json_free(doc);
        }
        fuzz_check_report(&fuzz_report);
        return 0;
}
