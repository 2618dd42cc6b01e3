/* keras.h — Keras model configs, wherever they come from (config.json of a .keras
 * zip, the model_config attribute of an .h5 file, a standalone JSON file): walks
 * every layer, through nested models and wrappers, and reports Lambda layers
 * (KERAS_LAMBDA) and classes outside Keras/TensorFlow (KERAS_UNSAFE_CLASS). */
#ifndef MODELGATE_KERAS_H
#define MODELGATE_KERAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "scan.h"

/* True when root looks like a serialized Keras object: an object with a string
 * "class_name" and an object "config". */
bool keras_config_sniff(const struct json_value *root);

/* Walks the config and adds findings to ctx. */
void keras_config_scan(struct scan_ctx *ctx, const struct json_value *root);

/* Values a config may hold before it is refused: the largest real models
 * (EfficientNet-B7, ~800 layers) serialize to ~10^5 values; 4M keep the tree
 * under ~300 MB of the worker's memory. */
#define KERAS_JSON_NODES_MAX ((size_t) 4 << 20)

/* json_parse() as Keras reads a config: Python's json.loads (JSON_PYTHON, a UTF-8
 * byte order mark skipped), at most KERAS_JSON_NODES_MAX values. Same returns. */
int keras_json_parse(const uint8_t *buf, size_t len, struct json_doc **ret, char *err, size_t errsz);

#endif
