/* keras.h — Keras model configs, wherever they come from (config.json of a .keras
 * zip, the model_config attribute of an .h5 file, a standalone JSON file): walks
 * every layer, through nested models and wrappers, and reports Lambda layers
 * (KERAS_LAMBDA) and classes outside Keras/TensorFlow (KERAS_UNSAFE_CLASS). */
#ifndef MODELGATE_KERAS_H
#define MODELGATE_KERAS_H

#include <stdbool.h>

#include "json.h"
#include "scan.h"

/* True when root looks like a serialized Keras object: an object with a string
 * "class_name" and an object "config". */
bool keras_config_sniff(const struct json_value *root);

/* Walks the config and adds findings to ctx. */
void keras_config_scan(struct scan_ctx *ctx, const struct json_value *root);

#endif
