/* torch-tar.h — tar archives: the old PyTorch tar layout (members sys_info,
 * storages, tensors, pickle), read as torch.serialization.legacy_load reads it,
 * and any other tar, which is an unsupported container. */
#ifndef MODELGATE_TORCH_TAR_H
#define MODELGATE_TORCH_TAR_H

#include "scan.h"

/* Returns FMT_PYTORCH_LEGACY_TAR or FMT_TAR. */
enum mg_format torch_tar_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len);

#endif
