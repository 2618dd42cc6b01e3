/* test-json.c — the JSON reader: what it accepts, what it refuses and why, the
 * limits, duplicate keys (the last wins, as in Python and serde_json). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tap.h"

static struct json_doc *parse_ok(const char *text, uint32_t flags) {
        struct json_doc *d = NULL;
        char err[256];
        int r = json_parse((const uint8_t *) text, strlen(text), flags, 0, &d, err, sizeof(err));
        if (r < 0)
                fprintf(stderr, "# %s: %s\n", text, err);
        TAP_CHECK(r == 0 && d);
        return d;
}

static void parse_fails(const char *text, size_t len, uint32_t flags, int want, const char *reason) {
        struct json_doc *d = NULL;
        char err[256];
        int r = json_parse((const uint8_t *) text, len, flags, 0, &d, err, sizeof(err));
        if (r != want || !strstr(err, reason))
                fprintf(stderr, "# %.*s: r=%d err=%s\n", (int) len, text, r, err);
        TAP_CHECK(r == want);
        TAP_CHECK(d == NULL);
        TAP_CHECK(strstr(err, reason) != NULL);
}

static void test_values_and_structure(void) {
        struct json_doc *d = parse_ok(" {\"a\": [1, -2.5e3, true, false, null, \"x\"], \"b\": {}} ", 0);
        const struct json_value *root = json_root(d), *a = json_get(root, "a");
        TAP_CHECK(root->type == JSON_OBJECT && root->n == 2);
        TAP_CHECK(a && a->type == JSON_ARRAY && a->n == 6);
        TAP_CHECK(a->child->type == JSON_NUMBER && strcmp(a->child->str, "1") == 0);
        TAP_CHECK(strcmp(a->child->next->str, "-2.5e3") == 0);
        TAP_CHECK(a->child->next->next->type == JSON_TRUE);
        TAP_CHECK(json_get(root, "b")->type == JSON_OBJECT && json_get(root, "b")->n == 0);
        TAP_CHECK(json_get(root, "missing") == NULL);
        TAP_CHECK(json_get(a, "a") == NULL);   /* not an object */
        json_free(d);
}

static void test_string_escapes_decode(void) {
        struct json_doc *d = parse_ok("[\"\\u00e9\\ud83d\\ude00\\n\\\"\\/\\u0000z\"]", 0);
        const struct json_value *s = json_root(d)->child;
        TAP_CHECK(s->len == 2 + 4 + 1 + 1 + 1 + 1 + 1);
        TAP_CHECK(memcmp(s->str, "\xc3\xa9\xf0\x9f\x98\x80\n\"/\0z", s->len) == 0);
        json_free(d);
}

static void test_last_duplicate_key_wins(void) {
        struct json_doc *d = parse_ok("{\"class_name\": \"Dense\", \"x\": 1, \"class_name\": \"Lambda\"}", 0);
        const char *k = NULL;
        TAP_CHECK_STR(json_get_string(json_root(d), "class_name"), "Lambda");
        TAP_CHECK(json_has_duplicate_key(json_root(d), &k) && strcmp(k, "class_name") == 0);
        json_free(d);
        d = parse_ok("{\"a\": 1, \"ab\": 2, \"b\": 3}", 0);
        TAP_CHECK(!json_has_duplicate_key(json_root(d), NULL));
        json_free(d);
}

static void test_refusals_name_the_reason(void) {
        parse_fails("", 0, 0, -EBADMSG, "found the end");
        parse_fails("{\"a\" 1}", 7, 0, -EBADMSG, "expected ':'");
        parse_fails("[1,]", 4, 0, -EBADMSG, "expected a value");
        parse_fails("[1 2]", 5, 0, -EBADMSG, "expected ','");
        parse_fails("\"abc", 4, 0, -EBADMSG, "unterminated string");
        parse_fails("\"a\x01\"", 4, 0, -EBADMSG, "control character");
        parse_fails("\"\xc3\x28\"", 4, 0, -EBADMSG, "invalid UTF-8");
        parse_fails("\"\xed\xa0\x80\"", 5, 0, -EBADMSG, "invalid UTF-8");   /* encoded surrogate */
        parse_fails("\"\\x41\"", 6, 0, -EBADMSG, "bad escape");
        parse_fails("\"\\u12\"", 6, 0, -EBADMSG, "\\u escape");
        parse_fails("\"\\u12zz\"", 8, 0, -EBADMSG, "hex digit");
        parse_fails("\"\\ud800\"", 8, 0, -EBADMSG, "lone surrogate");
        parse_fails("01", 2, 0, -EBADMSG, "extra data");
        parse_fails("1.", 2, 0, -EBADMSG, "digit after");
        parse_fails("NaN", 3, 0, -EBADMSG, "expected a value");
        parse_fails("{} {}", 5, 0, -EBADMSG, "extra data");
        parse_fails("[1]\0", 4, 0, -EBADMSG, "at byte 3: extra data");
}

static void test_python_leniency(void) {
        struct json_doc *d = parse_ok("[NaN, -Infinity, Infinity, \"\\udc00x\"]", JSON_PYTHON);
        const struct json_value *v = json_root(d)->child;
        TAP_CHECK_STR(v->str, "NaN");
        TAP_CHECK_STR(v->next->str, "-Infinity");
        TAP_CHECK(memcmp(v->next->next->next->str, "\xef\xbf\xbdx", 4) == 0);
        json_free(d);
}

static void test_depth_and_node_limits(void) {
        size_t n = JSON_DEPTH_MAX + 2;
        char *deep = malloc(2 * n);
        struct json_doc *d = NULL;
        char err[256];
        TAP_CHECK(deep);
        memset(deep, '[', n);
        memset(deep + n, ']', n);
        TAP_CHECK(json_parse((uint8_t *) deep, 2 * n, 0, 0, &d, err, sizeof(err)) == -E2BIG);
        TAP_CHECK(strstr(err, "nested more than"));
        n = JSON_DEPTH_MAX;
        memset(deep, '[', n);
        memset(deep + n, ']', n);
        TAP_CHECK(json_parse((uint8_t *) deep, 2 * n, 0, 0, &d, err, sizeof(err)) == 0);
        json_free(d);
        TAP_CHECK(json_parse((const uint8_t *) "[1,2,3,4]", 9, 0, 4, &d, err, sizeof(err)) == -E2BIG);
        TAP_CHECK(json_parse((const uint8_t *) "[1,2,3]", 7, 0, 4, &d, err, sizeof(err)) == 0);
        json_free(d);
        free(deep);
}

static void test_u64(void) {
        struct json_doc *d = parse_ok("[0, 18446744073709551615, 18446744073709551616, -1, 1.0, 1e3]", 0);
        const struct json_value *v = json_root(d)->child;
        uint64_t x;
        TAP_CHECK(json_u64(v, &x) == 0 && x == 0);
        TAP_CHECK(json_u64(v->next, &x) == 0 && x == UINT64_MAX);
        TAP_CHECK(json_u64(v->next->next, &x) == -ERANGE);
        TAP_CHECK(json_u64(v->next->next->next, &x) == -EINVAL);
        TAP_CHECK(json_u64(v->next->next->next->next, &x) == -EINVAL);
        TAP_CHECK(json_u64(v->next->next->next->next->next, &x) == -EINVAL);
        json_free(d);
}

static void test_every_truncation_is_refused_cleanly(void) {
        const char *text = "{\"a\": [1, 2.5, \"x\\u00e9\\ud83d\\ude00\", {\"b\": null}], \"c\": true}";
        size_t len = strlen(text);
        for (size_t i = 0; i < len; i++) {
                struct json_doc *d = NULL;
                char err[128];
                char *copy = malloc(i ? i : 1);   /* exact-size copy: ASan sees any overread */
                TAP_CHECK(copy);
                memcpy(copy, text, i);
                TAP_CHECK(json_parse((uint8_t *) copy, i, 0, 0, &d, err, sizeof(err)) == -EBADMSG);
                TAP_CHECK(err[0] != '\0');
                free(copy);
        }
}

int main(void) {
        static const struct tap_case cases[] = {
                { "values, arrays and objects parse into a tree", test_values_and_structure },
                { "string escapes decode to UTF-8, surrogate pairs included", test_string_escapes_decode },
                { "the last of duplicate keys wins, and duplicates are detectable", test_last_duplicate_key_wins },
                { "invalid JSON is refused with the byte and the reason", test_refusals_name_the_reason },
                { "JSON_PYTHON accepts NaN/Infinity and lone surrogates as Python does", test_python_leniency },
                { "depth and node limits are enforced", test_depth_and_node_limits },
                { "json_u64 takes exact unsigned integers only", test_u64 },
                { "every truncation of a valid document is refused without overreading", test_every_truncation_is_refused_cleanly },
        };
        return tap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
