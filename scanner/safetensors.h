/* safetensors.h — the safetensors format (8-byte little-endian header length, a
 * JSON header, then raw tensor bytes), validated the way the reference Rust crate
 * (safetensors::SafeTensors::read_metadata) does before a loader maps the data. */
#ifndef MODELGATE_SAFETENSORS_H
#define MODELGATE_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan.h"

/* MAX_HEADER_SIZE of the reference crate: a longer header is HeaderTooLarge. */
#define SAFETENSORS_HEADER_MAX 100000000

/* A header length at or above this is not taken for safetensors at all: its top
 * three bytes are not zero. Text and most binary formats fail this at once, while
 * every header the format allows (and the 100 MB limit x 10000) passes. */
#define SAFETENSORS_SNIFF_LEN_LIMIT ((uint64_t) 1 << 40)

/* Content test: a header length N with 2 <= N < SAFETENSORS_SNIFF_LEN_LIMIT, then
 * within the header's bytes (as far as the file goes) optional JSON whitespace and
 * '{'. A file that passes claims to be safetensors: everything wrong after that,
 * including a header longer than the file, is MALFORMED. */
bool safetensors_sniff(const uint8_t *buf, size_t len);

/* Validates header and layout; reads only the first 8 + N bytes. Records
 * __metadata__'s license in the report. Returns FMT_SAFETENSORS. */
enum mg_format safetensors_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len);

#endif
