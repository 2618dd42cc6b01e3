/* archive.h — zip containers as model files: tells a PyTorch checkpoint, a
 * TorchScript archive and an npz from any other zip, and scans every member whose
 * bytes a loader could unpickle. Tensor data is never read. */
#ifndef MODELGATE_ARCHIVE_H
#define MODELGATE_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "report.h"
#include "scan.h"

/* Bytes read from the start of each member to decide what it is: an npy header
 * under numpy's 10000-character cap fits, and so does what scan_sniff() needs. */
#define ARCHIVE_SNIFF_MAX ((size_t) 16 << 10)

/* Bytes all members of one archive may inflate to in total, sniffing included.
 * One member may take SCAN_INFLATE_MAX; this stops an archive of many such members
 * (or of many entries pointing at one bomb) from multiplying it. */
#define ARCHIVE_INFLATE_BUDGET (2 * SCAN_INFLATE_MAX)

/* Scans the zip in [buf, buf+len) under ctx (findings name members as
 * "ctx->member/name"). Returns FMT_PYTORCH_ZIP, FMT_TORCHSCRIPT, FMT_NPZ, FMT_KERAS
 * (a top-level config.json that is a Keras model, walked by keras_config_scan()), or
 * FMT_ZIP for anything else (with an UNSUPPORTED_CONTAINER finding) and for a zip
 * without a usable directory (with a MALFORMED finding). */
enum mg_format zip_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len);

#endif
