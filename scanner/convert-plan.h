/* convert-plan.h — a conversion plan: what `modelgate convert` writes into a
 * safetensors file, worked out by a sandboxed worker from a checkpoint it parsed
 * and checked again, message by message, by the front end that writes the file.
 * A plan names each tensor (dtype, shape) and where its bytes lie in the input
 * (a byte range and, for a strided tensor, the strides to gather it with). */
#ifndef MODELGATE_CONVERT_PLAN_H
#define MODELGATE_CONVERT_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report.h"

/* Sizes include the terminating NUL. A flattened name of a real checkpoint
 * ("optimizer.state.117.exp_avg_sq", "model.encoder.layers.23.self_attn.in_proj_weight")
 * is < 128 bytes; a longer one is refused, never truncated. */
#define PLAN_NAME_MAX   384
/* A metadata value (JSON text): hyper-parameters and small lists of them. */
#define PLAN_VALUE_MAX  512
/* Dimensions of a tensor: conv3d weights have 5; torch allows more, none seen in
 * checkpoints goes past 8. */
#define PLAN_DIMS_MAX   8
/* Tensors in one plan: a large training checkpoint (weights plus two optimizer
 * moments) holds tens of thousands. Bounds the front end's memory (~150 MB). */
#define PLAN_TENSORS_MAX (1u << 18)
/* Metadata entries (values, tied names, dropped values) carried in one plan;
 * past it, dropped values are only counted. */
#define PLAN_META_MAX   4096

/* Element types safetensors can hold and the converter writes. */
enum plan_dtype {
        PD_BOOL,
        PD_U8,
        PD_I8,
        PD_I16,
        PD_U16,
        PD_I32,
        PD_U32,
        PD_I64,
        PD_U64,
        PD_F16,
        PD_BF16,
        PD_F32,
        PD_F64,
        _PD_MAX,
};

unsigned plan_dtype_size(enum plan_dtype d);             /* bytes per element */
const char *plan_dtype_name(enum plan_dtype d);          /* safetensors' "F32", … */

enum plan_meta_kind {
        PM_VALUE,       /* key: value (JSON text) goes into __metadata__ */
        PM_TIED,        /* key: a tensor dropped for sharing storage; value: the name kept.
                         * Goes into __metadata__, as safetensors' save_model() records it */
        PM_DROPPED,     /* key: a value not carried over; value: why. Printed, not written */
        _PM_MAX,
};

/* Keys modelgate itself writes into __metadata__; a checkpoint value with one of
 * these names is dropped (and listed) rather than overwrite it. */
#define PLAN_META_FORMAT  "format"
#define PLAN_META_SHA256  "source_sha256"
#define PLAN_META_LICENSE "license"
#define PLAN_META_SOURCE  "source_format"
bool plan_meta_key_reserved(const char *key);

struct plan_tensor {
        char name[PLAN_NAME_MAX];         /* "" only for the single array of a .npy */
        uint8_t dtype;                    /* enum plan_dtype */
        uint8_t ndim;
        uint8_t reserved[6];
        uint64_t shape[PLAN_DIMS_MAX];    /* unused dimensions are 0 */
        uint64_t stride[PLAN_DIMS_MAX];   /* in elements; unused 0 */
        uint64_t storage_offset;          /* elements from storage_start to element [0,…,0] */
        uint64_t storage_start;           /* absolute byte offset of the storage in the input */
        uint64_t storage_len;             /* bytes of the storage */
};

struct plan_meta {
        uint8_t kind;                     /* enum plan_meta_kind */
        char key[PLAN_NAME_MAX];
        char value[PLAN_VALUE_MAX];
};

struct plan_done {
        int32_t error;                    /* 0; -EINVAL refused (message says why); other -errno */
        uint8_t format;                   /* enum mg_format of the input */
        uint8_t reserved[3];
        uint32_t n_tensors;               /* must equal the WP_PLAN_TENSOR messages */
        uint32_t n_meta;                  /* must equal the WP_PLAN_META messages */
        uint32_t dropped_unlisted;        /* dropped values beyond PLAN_META_MAX */
        char message[REPORT_MESSAGE_MAX];
};

/* A whole plan, on either side. */
struct plan {
        uint8_t format;
        struct plan_tensor *tensors;
        size_t n_tensors, cap_tensors;
        struct plan_meta *meta;
        size_t n_meta, cap_meta;
        uint32_t dropped_unlisted;
        int error;
        char message[REPORT_MESSAGE_MAX];
};

void plan_init(struct plan *p);
void plan_free(struct plan *p);

/* Sets the plan's error (first one wins) with a printf-formatted message,
 * escaped for printing. Returns the error. */
int plan_fail(struct plan *p, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Appends an entry; -ENOSPC past the limits, -ENOMEM. */
int plan_add_tensor(struct plan *p, const struct plan_tensor *t);
int plan_add_meta(struct plan *p, enum plan_meta_kind kind, const char *key, const char *value);

/* Elements and bytes of a tensor, and whether its strides are those of a
 * row-major contiguous layout. Return false on overflow. */
bool plan_tensor_numel(const struct plan_tensor *t, uint64_t *ret);
bool plan_tensor_nbytes(const struct plan_tensor *t, uint64_t *ret);
bool plan_tensor_contiguous(const struct plan_tensor *t);

/* The elements a tensor reads from its storage: the highest linear index reached
 * plus one (0 for an empty tensor). False on overflow. */
bool plan_tensor_extent(const struct plan_tensor *t, uint64_t *ret);

/* Front end: everything a tensor entry must satisfy, against the input's size.
 * Returns NULL when valid, else what is wrong. */
const char *plan_tensor_check(const struct plan_tensor *t, uint64_t input_size);

/* ---- the worker protocol's part (see worker-proto.h) ---- */

/* Worker side: sends the plan as WP_PLAN_TENSOR…, WP_PLAN_META…, WP_PLAN_DONE. */
int wp_send_plan(int fd, uint64_t job, const struct plan *p);

/* Front-end side: validates each message as the report receiver does (sizes,
 * magic, job, types, terminated printable strings, ranges inside the input). */
struct plan_receiver {
        uint64_t job;
        uint64_t input_size;
        struct plan *plan;
        bool done;
};

void plan_receiver_start(struct plan_receiver *rx, uint64_t job, uint64_t input_size, struct plan *p);

/* Returns 1 when the plan is complete, 0 when more is expected, -EBADMSG on a
 * protocol violation (p->message says which), -ENOMEM. */
int plan_receiver_feed(struct plan_receiver *rx, const void *msg, size_t len);

#endif
