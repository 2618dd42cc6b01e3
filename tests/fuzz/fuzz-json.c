/* fuzz-json.c — the JSON reader, strict (serde_json's RFC 8259) and Python's
 * json.loads, with and without a node limit; the tree is walked with every
 * accessor, and both modes must agree on what strict JSON is. */
#include "fuzz.h"
#include "json.h"

/* Small enough that the limit is hit by the fuzzer's inputs. */
#define FUZZ_JSON_NODES 64

static void walk(const struct json_value *v, unsigned depth) {
        uint64_t u;
        const char *key;

        if (depth > JSON_DEPTH_MAX + 1)
                abort();
        if (v->type == JSON_STRING || v->type == JSON_NUMBER) {
                if (!v->str || v->str[v->len] != '\0')
                        abort();
        }
        if (v->type == JSON_NUMBER)
                (void) json_u64(v, &u);
        if (v->type == JSON_OBJECT) {
                (void) json_has_duplicate_key(v, &key);
                for (const struct json_value *c = v->child; c; c = c->next) {
                        if (!c->key || c->key[c->key_len] != '\0')
                                abort();
                        if (!json_get(v, c->key) && memchr(c->key, '\0', c->key_len) == NULL)
                                abort();   /* a member's own key must find a member */
                        (void) json_get_string(v, c->key);
                }
        }
        size_t n = 0;
        for (const struct json_value *c = v->child; c; c = c->next, n++)
                walk(c, depth + 1);
        if ((v->type == JSON_ARRAY || v->type == JSON_OBJECT) && n != v->n)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct json_doc *doc = NULL;
        char err[160];
        int strict, python;

        strict = json_parse(data, size, 0, 0, &doc, err, sizeof(err));
        if (strict == 0) {
                walk(json_root(doc), 0);
                json_free(doc);
                doc = NULL;
        }
        python = json_parse(data, size, JSON_PYTHON, 0, &doc, err, sizeof(err));
        if (python == 0) {
                walk(json_root(doc), 0);
                json_free(doc);
                doc = NULL;
        }
        /* Python's reader is the more lenient one: strict JSON is Python JSON. */
        if (strict == 0 && python != 0) {
                fprintf(stderr, "json: strict accepts, python refuses (%d: %s)\n", python, err);
                abort();
        }
        if (json_parse(data, size, JSON_PYTHON, FUZZ_JSON_NODES, &doc, err, sizeof(err)) == 0) {
                walk(json_root(doc), 0);
                json_free(doc);
        }
        return 0;
}
