/* onnx.c — ONNX ModelProto files through a small protobuf wire-format reader: the
 * external_data of every tensor (graphs, subgraphs, functions, training graphs),
 * custom operator domains and the license in metadata_props. Judges external_data
 * names only: never opens a file, never decodes tensor data. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "onnx.h"
#include "pickle.h"
#include "tar.h"
#include "torch-tar.h"

/* The largest protobuf field number (2^29 - 1). */
#define PB_FIELD_NUMBER_MAX 0x1fffffffu

/* A varint is at most 10 bytes: 64 bits in 7-bit groups. */
#define PB_VARINT_BYTES_MAX 10

/* ONNX_EXTERNAL_DATA findings made one by one; more are counted into one summary
 * finding, so that a model with 10^5 hostile tensors cannot flood the report. */
#define ONNX_EXTERNAL_FINDINGS_MAX 16

/* Distinct custom operator domains reported; real models use one or two. */
#define ONNX_CUSTOM_DOMAINS_MAX 8

/* Distinct domains of the model's own functions remembered; nodes calling a
 * model-local function are not custom operators. Exporters emit a handful. */
#define ONNX_FUNCTION_DOMAINS_MAX 32

/* Where in the model a finding is: "graph 'main' > node 'if0' (If) > ...". Longer
 * paths are cut; the report's message holds 384 bytes anyway. */
#define ONNX_PATH_MAX 256

/* Bytes of a name or location shown in a message. */
#define ONNX_SHOW_MAX 96

/* TensorProto.DataLocation.EXTERNAL */
#define ONNX_DATA_LOCATION_EXTERNAL 1

/* ---- the protobuf wire format ------------------------------------------ */

int pb_varint(struct cursor *c, uint64_t *ret) {
        struct cursor t = *c;
        uint64_t v = 0;

        for (unsigned i = 0; i < PB_VARINT_BYTES_MAX; i++) {
                uint8_t b;
                if (cursor_u8(&t, &b) < 0)
                        return -ENODATA;
                if (i == PB_VARINT_BYTES_MAX - 1) {
                        if (b & 0x80)
                                return -E2BIG;
                        if (b > 1)
                                return -EOVERFLOW;
                }
                v |= (uint64_t) (b & 0x7f) << (7 * i);
                if (!(b & 0x80)) {
                        *c = t;
                        *ret = v;
                        return 0;
                }
        }
        return -E2BIG;   /* not reached: the 10th byte returns above */
}

static enum pb_status varint_status(int r) {
        return r == -ENODATA ? PB_ERR_VARINT_CUT : r == -EOVERFLOW ? PB_ERR_VARINT_OVERFLOW : PB_ERR_VARINT_LONG;
}

enum pb_status pb_next(struct cursor *c, struct pb_field *ret) {
        struct cursor t = *c;
        struct pb_field f = { .offset = c->pos };
        uint64_t tag;
        uint32_t u32 = 0;
        int r;

        if (cursor_left(c) == 0) {
                *ret = f;
                return PB_END;
        }
        r = pb_varint(&t, &tag);
        if (r < 0) {
                *ret = f;
                return varint_status(r);
        }
        if (tag >> 3 == 0 || tag >> 3 > PB_FIELD_NUMBER_MAX) {
                f.value = tag;
                *ret = f;
                return PB_ERR_TAG_RANGE;
        }
        f.number = (uint32_t) (tag >> 3);
        f.wire = (uint8_t) (tag & 7);
        enum pb_status st = PB_OK;
        switch (f.wire) {
        case PB_WIRE_VARINT:
                r = pb_varint(&t, &f.value);
                if (r < 0)
                        st = varint_status(r);
                break;
        case PB_WIRE_I64:
                if (cursor_le64(&t, &f.value) < 0)
                        st = PB_ERR_FIXED_CUT;
                break;
        case PB_WIRE_I32:
                if (cursor_le32(&t, &u32) < 0)
                        st = PB_ERR_FIXED_CUT;
                f.value = u32;
                break;
        case PB_WIRE_LEN:
                r = pb_varint(&t, &f.value);
                if (r < 0)
                        st = varint_status(r);
                else if (f.value > cursor_left(&t))
                        st = PB_ERR_LENGTH;
                else {
                        f.len = (size_t) f.value;
                        (void) cursor_take(&t, f.len, &f.data);
                }
                break;
        case PB_WIRE_SGROUP:
        case PB_WIRE_EGROUP:
                st = PB_ERR_GROUP;
                break;
        default:
                st = PB_ERR_WIRE_TYPE;
                break;
        }
        *ret = f;
        if (st == PB_OK)
                *c = t;
        return st;
}

const char *pb_status_text(enum pb_status st) {
        switch (st) {
        case PB_OK: return "a field";
        case PB_END: return "the end of the message";
        case PB_ERR_VARINT_CUT: return "a varint cut off by the end of the message";
        case PB_ERR_VARINT_LONG: return "a varint longer than 10 bytes";
        case PB_ERR_VARINT_OVERFLOW: return "a varint over 64 bits";
        case PB_ERR_TAG_RANGE: return "a field number out of range";
        case PB_ERR_WIRE_TYPE: return "a wire type that does not exist";
        case PB_ERR_GROUP: return "a group (wire type 3 or 4), which ONNX never writes";
        case PB_ERR_LENGTH: return "a length past the end of the message";
        case PB_ERR_FIXED_CUT: return "a fixed-size value cut off by the end of the message";
        }
        return "an unknown error";
}

/* True when [p, p+n) parses as one message at its top level. */
static bool pb_message_valid(const uint8_t *p, size_t n) {
        struct cursor c = cursor_make(p, n);
        struct pb_field f;
        enum pb_status st;

        while ((st = pb_next(&c, &f)) == PB_OK)
                ;
        return st == PB_END;
}

/* ---- the ONNX schema (onnx/onnx.proto, IR version 10 and later) ------------ */

enum onnx_msg {
        MSG_NONE = -1,   /* a field whose content is not walked */
        MSG_MODEL,
        MSG_GRAPH,
        MSG_NODE,
        MSG_ATTRIBUTE,
        MSG_TENSOR,
        MSG_SPARSE_TENSOR,
        MSG_FUNCTION,
        MSG_TRAINING_INFO,
        _MSG_MAX,
};

#define W(x) (1u << PB_WIRE_##x)

struct onnx_field {
        uint32_t number;
        const char *name;
        uint8_t wires;          /* accepted wire types; packed repeated scalars take both */
        int8_t child;           /* enum onnx_msg walked into, or MSG_NONE */
};

static const struct onnx_field model_fields[] = {
        { 1, "ir_version", W(VARINT), MSG_NONE },
        { 2, "producer_name", W(LEN), MSG_NONE },
        { 3, "producer_version", W(LEN), MSG_NONE },
        { 4, "domain", W(LEN), MSG_NONE },
        { 5, "model_version", W(VARINT), MSG_NONE },
        { 6, "doc_string", W(LEN), MSG_NONE },
        { 7, "graph", W(LEN), MSG_GRAPH },
        { 8, "opset_import", W(LEN), MSG_NONE },
        { 14, "metadata_props", W(LEN), MSG_NONE },
        { 20, "training_info", W(LEN), MSG_TRAINING_INFO },
        { 25, "functions", W(LEN), MSG_FUNCTION },
        { 26, "configuration", W(LEN), MSG_NONE },
        { 0 },
};

static const struct onnx_field graph_fields[] = {
        { 1, "node", W(LEN), MSG_NODE },
        { 2, "name", W(LEN), MSG_NONE },
        { 5, "initializer", W(LEN), MSG_TENSOR },
        { 10, "doc_string", W(LEN), MSG_NONE },
        { 11, "input", W(LEN), MSG_NONE },
        { 12, "output", W(LEN), MSG_NONE },
        { 13, "value_info", W(LEN), MSG_NONE },
        { 14, "quantization_annotation", W(LEN), MSG_NONE },
        { 15, "sparse_initializer", W(LEN), MSG_SPARSE_TENSOR },
        { 16, "metadata_props", W(LEN), MSG_NONE },
        { 0 },
};

static const struct onnx_field node_fields[] = {
        { 1, "input", W(LEN), MSG_NONE },
        { 2, "output", W(LEN), MSG_NONE },
        { 3, "name", W(LEN), MSG_NONE },
        { 4, "op_type", W(LEN), MSG_NONE },
        { 5, "attribute", W(LEN), MSG_ATTRIBUTE },
        { 6, "doc_string", W(LEN), MSG_NONE },
        { 7, "domain", W(LEN), MSG_NONE },
        { 8, "overload", W(LEN), MSG_NONE },
        { 9, "metadata_props", W(LEN), MSG_NONE },
        { 10, "device_configurations", W(LEN), MSG_NONE },
        { 0 },
};

static const struct onnx_field attribute_fields[] = {
        { 1, "name", W(LEN), MSG_NONE },
        { 2, "f", W(I32), MSG_NONE },
        { 3, "i", W(VARINT), MSG_NONE },
        { 4, "s", W(LEN), MSG_NONE },
        { 5, "t", W(LEN), MSG_TENSOR },
        { 6, "g", W(LEN), MSG_GRAPH },
        { 7, "floats", W(I32) | W(LEN), MSG_NONE },
        { 8, "ints", W(VARINT) | W(LEN), MSG_NONE },
        { 9, "strings", W(LEN), MSG_NONE },
        { 10, "tensors", W(LEN), MSG_TENSOR },
        { 11, "graphs", W(LEN), MSG_GRAPH },
        { 13, "doc_string", W(LEN), MSG_NONE },
        { 14, "tp", W(LEN), MSG_NONE },
        { 15, "type_protos", W(LEN), MSG_NONE },
        { 20, "type", W(VARINT), MSG_NONE },
        { 21, "ref_attr_name", W(LEN), MSG_NONE },
        { 22, "sparse_tensor", W(LEN), MSG_SPARSE_TENSOR },
        { 23, "sparse_tensors", W(LEN), MSG_SPARSE_TENSOR },
        { 0 },
};

static const struct onnx_field tensor_fields[] = {
        { 1, "dims", W(VARINT) | W(LEN), MSG_NONE },
        { 2, "data_type", W(VARINT), MSG_NONE },
        { 3, "segment", W(LEN), MSG_NONE },
        { 4, "float_data", W(I32) | W(LEN), MSG_NONE },
        { 5, "int32_data", W(VARINT) | W(LEN), MSG_NONE },
        { 6, "string_data", W(LEN), MSG_NONE },
        { 7, "int64_data", W(VARINT) | W(LEN), MSG_NONE },
        { 8, "name", W(LEN), MSG_NONE },
        { 9, "raw_data", W(LEN), MSG_NONE },
        { 10, "double_data", W(I64) | W(LEN), MSG_NONE },
        { 11, "uint64_data", W(VARINT) | W(LEN), MSG_NONE },
        { 12, "doc_string", W(LEN), MSG_NONE },
        { 13, "external_data", W(LEN), MSG_NONE },
        { 14, "data_location", W(VARINT), MSG_NONE },
        { 16, "metadata_props", W(LEN), MSG_NONE },
        { 0 },
};

static const struct onnx_field sparse_tensor_fields[] = {
        { 1, "values", W(LEN), MSG_TENSOR },
        { 2, "indices", W(LEN), MSG_TENSOR },
        { 3, "dims", W(VARINT) | W(LEN), MSG_NONE },
        { 0 },
};

static const struct onnx_field function_fields[] = {
        { 1, "name", W(LEN), MSG_NONE },
        { 4, "input", W(LEN), MSG_NONE },
        { 5, "output", W(LEN), MSG_NONE },
        { 6, "attribute", W(LEN), MSG_NONE },
        { 7, "node", W(LEN), MSG_NODE },
        { 8, "doc_string", W(LEN), MSG_NONE },
        { 9, "opset_import", W(LEN), MSG_NONE },
        { 10, "domain", W(LEN), MSG_NONE },
        { 11, "attribute_proto", W(LEN), MSG_ATTRIBUTE },
        { 12, "value_info", W(LEN), MSG_NONE },
        { 13, "overload", W(LEN), MSG_NONE },
        { 14, "metadata_props", W(LEN), MSG_NONE },
        { 0 },
};

static const struct onnx_field training_info_fields[] = {
        { 1, "initialization", W(LEN), MSG_GRAPH },
        { 2, "algorithm", W(LEN), MSG_GRAPH },
        { 3, "initialization_binding", W(LEN), MSG_NONE },
        { 4, "update_binding", W(LEN), MSG_NONE },
        { 0 },
};

static const struct {
        const char *name;
        const struct onnx_field *fields;
} onnx_msgs[_MSG_MAX] = {
        [MSG_MODEL] = { "ModelProto", model_fields },
        [MSG_GRAPH] = { "GraphProto", graph_fields },
        [MSG_NODE] = { "NodeProto", node_fields },
        [MSG_ATTRIBUTE] = { "AttributeProto", attribute_fields },
        [MSG_TENSOR] = { "TensorProto", tensor_fields },
        [MSG_SPARSE_TENSOR] = { "SparseTensorProto", sparse_tensor_fields },
        [MSG_FUNCTION] = { "FunctionProto", function_fields },
        [MSG_TRAINING_INFO] = { "TrainingInfoProto", training_info_fields },
};

static const struct onnx_field *field_def(enum onnx_msg kind, uint32_t number) {
        for (const struct onnx_field *d = onnx_msgs[kind].fields; d->number; d++)
                if (d->number == number)
                        return d;
        return NULL;
}

/* The field as protobuf parsers read it: a known field with a wire type they do
 * not expect is kept as an unknown field, and its content is never used. */
static const struct onnx_field *field_known(enum onnx_msg kind, const struct pb_field *f) {
        const struct onnx_field *d = field_def(kind, f->number);
        return d && (d->wires & (1u << f->wire)) ? d : NULL;
}

/* Operator domains of ONNX itself and the ones built into ONNX Runtime. */
static const char *const standard_domains[] = {
        "", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training",
        "com.microsoft", "com.microsoft.nchwc", "com.microsoft.experimental",
};

/* ---- the walk ----------------------------------------------------------- */

struct span {
        const uint8_t *p;
        size_t n;
};

struct custom_domain {
        struct span domain;
        struct span first_op;
        uint64_t nodes;
};

struct onnx_walker {
        struct scan_ctx *ctx;
        const uint8_t *base;            /* the model's first byte, for byte offsets */
        bool stop;                      /* a protobuf error or a limit: nothing more is walked */
        char path[ONNX_PATH_MAX];
        unsigned external_reported;
        uint64_t external_dropped;
        struct span function_domains[ONNX_FUNCTION_DOMAINS_MAX];
        unsigned n_function_domains;
        struct custom_domain custom[ONNX_CUSTOM_DOMAINS_MAX];
        unsigned n_custom;
        uint64_t custom_more_nodes;     /* nodes in domains beyond the table */
        struct span license;
        bool has_license;
        bool license_conflict;          /* reported once */
};

static bool span_is(struct span s, const char *str) {
        size_t n = strlen(str);
        return s.n == n && memcmp(s.p, str, n) == 0;
}

static bool span_eq(struct span a, struct span b) {
        return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static bool span_is_nocase(struct span s, const char *str) {
        size_t n = strlen(str);
        if (s.n != n)
                return false;
        for (size_t i = 0; i < n; i++) {
                uint8_t ch = s.p[i];
                if (ch >= 'A' && ch <= 'Z')
                        ch = (uint8_t) (ch - 'A' + 'a');
                if (ch != (uint8_t) str[i])
                        return false;
        }
        return true;
}

/* A name or location for a message: controls become '?', long ones end in "...".
 * report_add_finding() escapes whatever else is not printable UTF-8. */
static const char *show(char dst[ONNX_SHOW_MAX + 4], struct span s) {
        size_t n = s.n < ONNX_SHOW_MAX ? s.n : ONNX_SHOW_MAX;
        for (size_t i = 0; i < n; i++)
                dst[i] = s.p[i] < 0x20 || s.p[i] == 0x7f ? '?' : (char) s.p[i];
        if (s.n > n)
                memcpy(dst + n, "...", 3), n += 3;
        dst[n] = '\0';
        return dst;
}

static size_t path_push(struct onnx_walker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(struct onnx_walker *w, const char *fmt, ...) {
        size_t saved = strlen(w->path);
        size_t o = saved;
        va_list ap;

        if (o > 0 && o + 3 < sizeof(w->path)) {
                memcpy(w->path + o, " > ", 4);
                o += 3;
        }
        if (o < sizeof(w->path) - 1) {
                va_start(ap, fmt);
                vsnprintf(w->path + o, sizeof(w->path) - o, fmt, ap);
                va_end(ap);
        }
        return saved;
}

static void path_pop(struct onnx_walker *w, size_t saved) {
        w->path[saved] = '\0';
}

static size_t offset_of(const struct onnx_walker *w, const uint8_t *p) {
        return (size_t) (p - w->base);
}

/* A protobuf error: the parser of any loader refuses the whole model. */
static void walk_fail(struct onnx_walker *w, enum onnx_msg kind, const struct cursor *msg,
                      const struct pb_field *f, enum pb_status st) {
        const struct onnx_field *d = f->number ? field_def(kind, f->number) : NULL;
        size_t at = offset_of(w, msg->base) + f->offset;
        size_t end = offset_of(w, msg->base) + msg->len;
        const char *whole = kind == MSG_MODEL ? "file" : "message";
        char field[96], detail[160];

        if (f->number)
                snprintf(field, sizeof(field), "field %u%s%s%s at byte %zu", f->number,
                         d ? " (" : "", d ? d->name : "", d ? ")" : "", at);
        else
                snprintf(field, sizeof(field), "field tag at byte %zu", at);
        switch (st) {
        case PB_ERR_LENGTH:
                snprintf(detail, sizeof(detail), "length %llu runs past the end of the %s at byte %zu",
                         (unsigned long long) f->value, whole, end);
                break;
        case PB_ERR_VARINT_CUT:
                snprintf(detail, sizeof(detail), "a varint is cut off by the end of the %s at byte %zu", whole, end);
                break;
        case PB_ERR_FIXED_CUT:
                snprintf(detail, sizeof(detail), "its %d-byte value runs past the end of the %s at byte %zu",
                         f->wire == PB_WIRE_I64 ? 8 : 4, whole, end);
                break;
        case PB_ERR_TAG_RANGE:
                snprintf(detail, sizeof(detail), "field number %llu is out of range (1..%u)",
                         (unsigned long long) (f->value >> 3), PB_FIELD_NUMBER_MAX);
                break;
        case PB_ERR_WIRE_TYPE:
                snprintf(detail, sizeof(detail), "wire type %u does not exist", f->wire);
                break;
        case PB_ERR_GROUP:
                snprintf(detail, sizeof(detail), "wire type %u is a group, which ONNX never writes", f->wire);
                break;
        default:
                snprintf(detail, sizeof(detail), "%s", pb_status_text(st));
                break;
        }
        scan_finding(w->ctx, RULE_MALFORMED, SEV_HIGH, "onnx: %s%s%s: %s: %s; %s",
                     onnx_msgs[kind].name, w->path[0] ? " in " : "", w->path, field, detail,
                     st == PB_ERR_GROUP ? "parsers skip a group in an unknown field, but the file was not made by an ONNX writer"
                                        : "no loader parses this model");
        w->stop = true;
}

/* Every field of a message, checked; false (reported) on a protobuf error. */
static bool message_check(struct onnx_walker *w, enum onnx_msg kind, struct cursor msg) {
        struct pb_field f;
        enum pb_status st;

        while ((st = pb_next(&msg, &f)) == PB_OK)
                ;
        if (st == PB_END)
                return true;
        walk_fail(w, kind, &msg, &f, st);
        return false;
}

/* key and value of a StringStringEntryProto; false when it does not parse. */
static bool entry_parse(struct onnx_walker *w, const char *what, const struct pb_field *e,
                        struct span *ret_key, struct span *ret_value) {
        struct cursor c = cursor_make(e->data, e->len);
        struct pb_field f;
        enum pb_status st;

        *ret_key = *ret_value = (struct span) { (const uint8_t *) "", 0 };
        while ((st = pb_next(&c, &f)) == PB_OK) {
                if (f.wire != PB_WIRE_LEN)
                        continue;
                if (f.number == 1)
                        *ret_key = (struct span) { f.data, f.len };
                else if (f.number == 2)
                        *ret_value = (struct span) { f.data, f.len };
        }
        if (st == PB_END)
                return true;
        scan_finding(w->ctx, RULE_MALFORMED, SEV_HIGH,
                     "onnx: StringStringEntryProto (%s) in %s: field at byte %zu: %s; no loader parses this model",
                     what, w->path[0] ? w->path : "ModelProto", offset_of(w, e->data) + f.offset, pb_status_text(st));
        w->stop = true;
        return false;
}

/* Why a location may leave the model's directory, or NULL when it stays inside. */
static const char *location_problem(struct span loc) {
        if (loc.n == 0)
                return "is empty: it names the model's directory, not a file in it";
        if (memchr(loc.p, '\0', loc.n))
                return "contains a NUL byte: Python refuses it, C readers cut the path there";
        if (loc.p[0] == '/' || loc.p[0] == '\\')
                return "is an absolute path: the loader reads a file outside the model's directory";
        if (loc.n >= 2 && loc.p[1] == ':' &&
            ((loc.p[0] >= 'a' && loc.p[0] <= 'z') || (loc.p[0] >= 'A' && loc.p[0] <= 'Z')))
                return "is a Windows drive path: the loader reads a file outside the model's directory";
        for (size_t i = 0; i < loc.n;) {
                size_t j = i;
                while (j < loc.n && loc.p[j] != '/' && loc.p[j] != '\\')
                        j++;
                if (j - i == 2 && loc.p[i] == '.' && loc.p[i + 1] == '.')
                        return "has a '..' component: the loader reads a file outside the model's directory";
                i = j + 1;
        }
        return NULL;
}

/* A TensorProto: its external_data entries, and the location an EXTERNAL tensor
 * needs. Every location is judged, whatever data_location says: protobuf merges
 * a singular message field given twice, so the entries of one copy may meet the
 * EXTERNAL of another. */
static void tensor_check(struct onnx_walker *w, struct cursor msg, const char *edge) {
        struct pb_field f;
        struct span name = { (const uint8_t *) "", 0 };
        uint32_t data_location = 0;
        bool has_location = false;
        char shown_name[ONNX_SHOW_MAX + 4], shown_loc[ONNX_SHOW_MAX + 4];

        for (struct cursor c = msg; pb_next(&c, &f) == PB_OK;) {
                if (f.number == 8 && f.wire == PB_WIRE_LEN)
                        name = (struct span) { f.data, f.len };
                else if (f.number == 14 && f.wire == PB_WIRE_VARINT)
                        data_location = (uint32_t) f.value;   /* an int32 enum: parsers keep the low 32 bits */
        }
        for (struct cursor c = msg; !w->stop && pb_next(&c, &f) == PB_OK;) {
                struct span key, value;
                const char *why;

                if (f.number != 13 || f.wire != PB_WIRE_LEN)
                        continue;
                if (!entry_parse(w, "external_data", &f, &key, &value) || !span_is(key, "location"))
                        continue;
                has_location = true;
                why = location_problem(value);
                if (!why)
                        continue;
                if (w->external_reported >= ONNX_EXTERNAL_FINDINGS_MAX) {
                        w->external_dropped++;
                        continue;
                }
                w->external_reported++;
                scan_finding(w->ctx, RULE_ONNX_EXTERNAL_DATA, SEV_CRITICAL,
                             "%s '%s' in %s: external_data location '%s' %s",
                             edge, show(shown_name, name), w->path, show(shown_loc, value), why);
        }
        if (!w->stop && data_location == ONNX_DATA_LOCATION_EXTERNAL && !has_location)
                scan_finding(w->ctx, RULE_MALFORMED, SEV_HIGH,
                             "onnx: %s '%s' in %s: data_location is EXTERNAL but external_data has no location",
                             edge, show(shown_name, name), w->path);
}

/* metadata_props of the model: the license. */
static void model_metadata(struct onnx_walker *w, const struct pb_field *f) {
        struct span key, value;
        char a[ONNX_SHOW_MAX + 4], b[ONNX_SHOW_MAX + 4];

        if (!entry_parse(w, "metadata_props", f, &key, &value) || !span_is_nocase(key, "license") || value.n == 0)
                return;
        if (!w->has_license) {
                w->license = value;
                w->has_license = true;
        } else if (!w->license_conflict && !span_eq(w->license, value)) {
                w->license_conflict = true;
                /* Which one a tool shows is up to the tool: fail closed. */
                scan_finding(w->ctx, RULE_MALFORMED, SEV_HIGH,
                             "onnx: metadata_props has two different license entries, '%s' and '%s'",
                             show(a, w->license), show(b, value));
        }
}

static void node_domain(struct onnx_walker *w, struct span domain, struct span op_type) {
        for (size_t i = 0; i < sizeof(standard_domains) / sizeof(standard_domains[0]); i++)
                if (span_is(domain, standard_domains[i]))
                        return;
        for (unsigned i = 0; i < w->n_custom; i++)
                if (span_eq(w->custom[i].domain, domain)) {
                        w->custom[i].nodes++;
                        return;
                }
        if (w->n_custom >= ONNX_CUSTOM_DOMAINS_MAX) {
                w->custom_more_nodes++;
                return;
        }
        w->custom[w->n_custom++] = (struct custom_domain) { domain, op_type, 1 };
}

/* Pass 1 checks the message and reads its names (a name may come after the
 * children it names); pass 2 walks the children. */
/* What a message is called in paths, by its kind and the field that holds it. */
static const char *label(enum onnx_msg kind, const char *field) {
        switch (kind) {
        case MSG_GRAPH: return "graph";
        case MSG_NODE: return "node";
        case MSG_ATTRIBUTE: return "attribute";
        case MSG_FUNCTION: return "function";
        case MSG_TRAINING_INFO: return "training_info";
        case MSG_TENSOR:
                return strcmp(field, "initializer") == 0 ? "initializer" :
                       strcmp(field, "values") == 0 ? "values of sparse tensor" :
                       strcmp(field, "indices") == 0 ? "indices of sparse tensor" : "tensor";
        default: return field;
        }
}

static void walk(struct onnx_walker *w, enum onnx_msg kind, struct cursor msg, const char *edge,
                 unsigned index, unsigned depth) {
        struct span name = { (const uint8_t *) "", 0 }, op_type = name, domain = name;
        char shown[ONNX_SHOW_MAX + 4], shown2[ONNX_SHOW_MAX + 4];
        unsigned counts[32] = { 0 };   /* occurrences of fields 1..31, for "#index" labels */
        struct pb_field f;
        size_t saved;

        if (w->stop)
                return;
        if (depth >= ONNX_MESSAGE_DEPTH_MAX) {
                scan_finding(w->ctx, RULE_SCAN_ERROR, SEV_HIGH,
                             "onnx: messages nested more than %d deep (graphs inside node attributes) in %s; the rest was not scanned",
                             ONNX_MESSAGE_DEPTH_MAX, w->path);
                w->stop = true;
                return;
        }
        if (!message_check(w, kind, msg))
                return;
        for (struct cursor c = msg; pb_next(&c, &f) == PB_OK;) {
                const struct onnx_field *d = field_known(kind, &f);
                if (!d || f.wire != PB_WIRE_LEN)
                        continue;
                struct span s = { f.data, f.len };
                if (strcmp(d->name, "name") == 0)
                        name = s;
                else if (strcmp(d->name, "op_type") == 0)
                        op_type = s;
                else if (strcmp(d->name, "domain") == 0)
                        domain = s;
        }

        switch (kind) {
        case MSG_TENSOR:
                tensor_check(w, msg, edge);
                return;
        case MSG_MODEL:
                saved = strlen(w->path);
                break;
        case MSG_NODE:
                node_domain(w, domain, op_type);
                if (name.n)
                        saved = path_push(w, "%s '%s' (%s)", edge, show(shown, name), show(shown2, op_type));
                else
                        saved = path_push(w, "%s #%u (%s)", edge, index, show(shown2, op_type));
                break;
        default:
                if (name.n)
                        saved = path_push(w, "%s '%s'", edge, show(shown, name));
                else
                        saved = path_push(w, "%s #%u", edge, index);
                break;
        }

        for (struct cursor c = msg; !w->stop && pb_next(&c, &f) == PB_OK;) {
                const struct onnx_field *d = field_known(kind, &f);
                if (!d)
                        continue;
                unsigned i = f.number < 32 ? counts[f.number]++ : 0;
                if (kind == MSG_MODEL && f.number == 14)
                        model_metadata(w, &f);
                else if (d->child != MSG_NONE)
                        walk(w, (enum onnx_msg) d->child, cursor_make(f.data, f.len),
                             label((enum onnx_msg) d->child, d->name), i, depth + 1);
        }
        path_pop(w, saved);
}

/* Domains of the model's own functions: nodes in them call the model, not a
 * library. Read before the walk (functions come after the graph). */
static void function_domains(struct onnx_walker *w, const uint8_t *buf, size_t len) {
        struct cursor c = cursor_make(buf, len);
        struct pb_field f, g;

        while (pb_next(&c, &f) == PB_OK) {
                if (f.number != 25 || f.wire != PB_WIRE_LEN)
                        continue;
                for (struct cursor fc = cursor_make(f.data, f.len); pb_next(&fc, &g) == PB_OK;) {
                        if (g.number != 10 || g.wire != PB_WIRE_LEN || w->n_function_domains >= ONNX_FUNCTION_DOMAINS_MAX)
                                continue;
                        w->function_domains[w->n_function_domains++] = (struct span) { g.data, g.len };
                }
        }
}

static void report_custom_domains(struct onnx_walker *w) {
        char a[ONNX_SHOW_MAX + 4], b[ONNX_SHOW_MAX + 4];

        for (unsigned i = 0; i < w->n_custom; i++) {
                const struct custom_domain *cd = &w->custom[i];
                bool local = false;
                for (unsigned k = 0; k < w->n_function_domains; k++)
                        local |= span_eq(w->function_domains[k], cd->domain);
                if (local)
                        continue;
                /* A fact, not a threat: the file carries no code for these
                 * operators; the application registers their kernels. */
                scan_finding(w->ctx, RULE_UNSAFE_IMPORT, SEV_INFO,
                             "onnx: custom operator domain '%s' (%llu node%s, e.g. '%s'): its kernels come from a library the application registers, not from this file",
                             show(a, cd->domain), (unsigned long long) cd->nodes, cd->nodes == 1 ? "" : "s",
                             show(b, cd->first_op));
        }
        if (w->custom_more_nodes)
                scan_finding(w->ctx, RULE_UNSAFE_IMPORT, SEV_INFO,
                             "onnx: %llu more nodes in custom operator domains beyond the first %d domains",
                             (unsigned long long) w->custom_more_nodes, ONNX_CUSTOM_DOMAINS_MAX);
}

/* ---- entry points --------------------------------------------------------- */

static bool model_field_ok(uint32_t number, uint8_t wire) {
        struct pb_field f = { .number = number, .wire = wire };
        return field_known(MSG_MODEL, &f) != NULL;
}

bool onnx_sniff(const uint8_t *buf, size_t len) {
        struct cursor c = cursor_make(buf, len);
        struct pb_field f;
        enum pb_status st;
        bool model_part = false, damaged = false;

        /* A model as loaders take it: protobuf to the last byte, with a graph,
         * training graphs or functions that parse too. No ir_version needed:
         * onnx.load() does not look at it. */
        while ((st = pb_next(&c, &f)) == PB_OK) {
                if (f.wire != PB_WIRE_LEN || (f.number != 7 && f.number != 20 && f.number != 25))
                        continue;
                if (pb_message_valid(f.data, f.len))
                        model_part = true;
                else
                        damaged = true;
        }
        if (st != PB_END)
                damaged = true;
        if (!damaged)
                return model_part;

        /* A damaged model: what every writer puts first, ir_version, then any
         * ModelProto field whose tag at least parses. */
        c = cursor_make(buf, len);
        if (pb_next(&c, &f) != PB_OK || f.number != 1 || f.wire != PB_WIRE_VARINT ||
            f.value < 1 || f.value > ONNX_IR_VERSION_MAX)
                return false;
        st = pb_next(&c, &f);
        if (st == PB_END || f.number == 0)
                return false;
        return model_field_ok(f.number, f.wire);
}

enum mg_format onnx_scan(struct scan_ctx *ctx, const uint8_t *buf, size_t len) {
        struct onnx_walker walker = { .ctx = ctx, .base = buf }, *w = &walker;

        function_domains(w, buf, len);
        walk(w, MSG_MODEL, cursor_make(buf, len), "model", 0, 0);
        if (w->external_dropped)
                scan_finding(ctx, RULE_ONNX_EXTERNAL_DATA, SEV_CRITICAL,
                             "onnx: %llu more tensors have external_data locations outside the model's directory",
                             (unsigned long long) w->external_dropped);
        report_custom_domains(w);
        if (w->has_license && !ctx->report->has_license) {
                report_escape(ctx->report->license, sizeof(ctx->report->license), w->license.p, w->license.n, NULL);
                ctx->report->has_license = true;
        }

        /* One file, two readings: a loader of the other format would run what
         * the ONNX walk never looked at. */
        if (pickle_sniff(buf, len)) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "onnx: the model is also a pickle stream; scanned as one too");
                pickle_scan_all(ctx, buf, len);
        }
        if (tar_sniff(buf, len)) {
                scan_finding(ctx, RULE_MALFORMED, SEV_HIGH, "onnx: the model is also a tar archive; scanned as one too");
                torch_tar_scan(ctx, buf, len);
        }
        return FMT_ONNX;
}
