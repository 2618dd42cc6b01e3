/* json.h — a strict, bounded JSON reader for untrusted bytes (safetensors headers,
 * Keras configs, tokenizer files). Builds a read-only tree in one arena; nothing
 * in it points into the input, so the input may go away after json_parse(). */
#ifndef MODELGATE_JSON_H
#define MODELGATE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting deeper than this is refused. Real Keras configs nest < 40 levels;
 * the recursion in json_parse() is bounded by it. */
#define JSON_DEPTH_MAX 256

enum json_type {
        JSON_NULL,
        JSON_FALSE,
        JSON_TRUE,
        JSON_NUMBER,
        JSON_STRING,
        JSON_ARRAY,
        JSON_OBJECT,
};

struct json_value {
        enum json_type type;
        /* JSON_STRING: the decoded UTF-8 bytes, NUL-terminated (may contain an
         * escaped NUL: use len). JSON_NUMBER: the number's text as written. */
        const char *str;
        size_t len;
        /* A member of an object: its decoded key (NUL-terminated) and length. */
        const char *key;
        size_t key_len;
        /* JSON_ARRAY / JSON_OBJECT: the children in document order, and how many. */
        struct json_value *child;
        size_t n;
        struct json_value *next;   /* next sibling */
};

/* How lenient to be, per who reads the file for real. */
#define JSON_PYTHON  UINT32_C(0x1)   /* as Python's json.loads: NaN/Infinity/-Infinity
                                        allowed; a lone \uD800..\uDFFF escape decodes to
                                        U+FFFD instead of failing. Without it: RFC 8259
                                        as serde_json reads it. */

struct json_doc;

/* Parses [buf, buf+len) as exactly one JSON value with optional whitespace around
 * it. Limits: JSON_DEPTH_MAX, and at most `max_nodes` values in all (0: no limit
 * beyond memory). Returns 0 with *ret (free with json_free), -EBADMSG with a
 * one-line reason in err ("invalid JSON at byte 12: expected ':' after a key"),
 * -E2BIG past a limit (reason in err), -ENOMEM. *ret is untouched on failure. */
int json_parse(const uint8_t *buf, size_t len, uint32_t flags, size_t max_nodes,
               struct json_doc **ret, char *err, size_t errsz);
void json_free(struct json_doc *doc);
const struct json_value *json_root(const struct json_doc *doc);

/* The LAST member of object v named key (Python's json and serde_json both keep the
 * last of duplicate keys), or NULL. NULL when v is not an object. */
const struct json_value *json_get(const struct json_value *v, const char *key);
/* Same, but only when the member is a string; returns its bytes or NULL. */
const char *json_get_string(const struct json_value *v, const char *key);
/* True when two members of object v have the same key; *ret_key names one. */
bool json_has_duplicate_key(const struct json_value *v, const char **ret_key);

/* A JSON_NUMBER that is a non-negative integer written without fraction or
 * exponent and fits in uint64_t. Returns 0 or -ERANGE / -EINVAL. */
int json_u64(const struct json_value *v, uint64_t *ret);

#endif
