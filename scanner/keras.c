/* keras.c — placeholder until the Keras walker lands: recognises nothing. */
#include "keras.h"

bool keras_config_sniff(const struct json_value *root) {
        (void) root;
        return false;
}

void keras_config_scan(struct scan_ctx *ctx, const struct json_value *root) {
        (void) ctx;
        (void) root;
}
