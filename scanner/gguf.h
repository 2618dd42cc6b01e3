/* gguf.h — GGUF model files (llama.cpp, ggml): header, metadata key/value pairs and
 * tensor infos, checked the way ggml's gguf_init_from_file() checks them, without
 * reading tensor data. Chat templates in the metadata go to template_check(). */
#ifndef MODELGATE_GGUF_H
#define MODELGATE_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan.h"

#define GGUF_MAGIC "GGUF"

/* "GGUF" and a version field that reads as 1..0xffff in one byte order or the
 * other (a text file starting with "GGUF" has printable bytes there, which reads
 * as 0x20202020 or more either way). */
bool gguf_sniff(const uint8_t *buf, size_t len);

/* Versions 2 and 3, little- or big-endian (see gguf.c for why both are parsed).
 * Findings: MALFORMED with the reason; the license (general.license); whatever
 * template_check() finds in tokenizer.chat_template and
 * tokenizer.chat_template.<name>. Returns FMT_GGUF. */
enum mg_format gguf_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len);

#endif
