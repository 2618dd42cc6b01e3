/* onnx.h — ONNX models: a protobuf ModelProto walked as onnx.load and ONNX Runtime
 * read it, reporting external_data locations that leave the model's directory
 * (ONNX_EXTERNAL_DATA), the license in metadata_props, operators from custom
 * domains, and any structure a protobuf parser would refuse (MALFORMED). */
#ifndef MODELGATE_ONNX_H
#define MODELGATE_ONNX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cursor.h"
#include "scan.h"

/* Protobuf messages nested inside each other. A subgraph (If/Loop/Scan body) costs
 * three levels (graph, node, attribute) and a tensor two more; real models nest
 * subgraphs fewer than 5 deep. 64 keeps the recursive walk's stack small. */
#define ONNX_MESSAGE_DEPTH_MAX 64

/* ir_version that a file starting with field 1 may carry to be taken for a model
 * when the rest of it does not parse (IR 10 is ONNX 1.16's; room for growth). */
#define ONNX_IR_VERSION_MAX 32

/* Protobuf wire types (https://protobuf.dev/programming-guides/encoding/). */
enum pb_wire {
        PB_WIRE_VARINT = 0,
        PB_WIRE_I64 = 1,
        PB_WIRE_LEN = 2,
        PB_WIRE_SGROUP = 3,
        PB_WIRE_EGROUP = 4,
        PB_WIRE_I32 = 5,
};

/* Outcome of reading one field. Everything from PB_ERR_VARINT_CUT on is an error:
 * a protobuf parser refuses the whole message. */
enum pb_status {
        PB_OK,                  /* a field was read */
        PB_END,                 /* the message ended cleanly */
        PB_ERR_VARINT_CUT,      /* a varint runs past the end of the message */
        PB_ERR_VARINT_LONG,     /* a varint longer than 10 bytes */
        PB_ERR_VARINT_OVERFLOW, /* a 10-byte varint with more than 64 bits */
        PB_ERR_TAG_RANGE,       /* field number 0 or above 2^29-1 */
        PB_ERR_WIRE_TYPE,       /* wire type 6 or 7 */
        PB_ERR_GROUP,           /* wire type 3 or 4: groups, never used by ONNX */
        PB_ERR_LENGTH,          /* a length-delimited field runs past the end */
        PB_ERR_FIXED_CUT,       /* a 32/64-bit field runs past the end */
};

struct pb_field {
        uint32_t number;
        uint8_t wire;           /* enum pb_wire */
        size_t offset;          /* of the tag, within the message */
        uint64_t value;         /* VARINT, I64 and I32 values; LEN: the length */
        const uint8_t *data;    /* LEN: the payload */
        size_t len;             /* LEN: the payload's length */
};

/* A base-128 varint at the cursor: 0, or -ENODATA when the buffer ends inside it,
 * -E2BIG when it is longer than 10 bytes, -EOVERFLOW when its 10th byte carries
 * bits beyond 64. The cursor moves only on success. */
int pb_varint(struct cursor *c, uint64_t *ret);

/* The next field of the message under the cursor. On PB_OK the cursor is past the
 * field. On an error, ret->number, ->wire, ->offset (and ->value for a length)
 * say as much as was read, and the cursor is where the error was found. */
enum pb_status pb_next(struct cursor *c, struct pb_field *ret);

/* A short description of an error status, e.g. "a varint longer than 10 bytes". */
const char *pb_status_text(enum pb_status st);

/* ONNX has no magic number: true when [buf, buf+len) is a protobuf ModelProto —
 * the whole buffer parses at the top level and holds a graph, training_info or
 * functions field whose payload parses too — or a damaged one: it starts with an
 * ir_version (1..ONNX_IR_VERSION_MAX) followed by another ModelProto field. */
bool onnx_sniff(const uint8_t *buf, size_t len);

/* Walks the model and adds findings to ctx. Returns FMT_ONNX. */
enum mg_format onnx_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len);

#endif
