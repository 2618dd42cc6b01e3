/* test-policy.c — unit tests of policy/: the global pattern grammar, deny
 * matching of dotted names, licenses, loading and merging of policy files with
 * every error path, the canonical hash, and evaluate() on hand-built reports. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest.h"
#include "policy.h"
#include "report.h"
#include "tap.h"

/* Every case writes its files here; main() removes the directory at the end. */
static char tmpdir[PATH_MAX / 2];

static const char *tmp_path(const char *name) {
        static char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
        return path;
}

static const char *write_file(const char *name, const char *text, size_t len) {
        const char *path = tmp_path(name);
        FILE *f = fopen(path, "we");
        TAP_CHECK(f);
        TAP_CHECK(fwrite(text, 1, len, f) == len);
        TAP_CHECK(fclose(f) == 0);
        return path;
}

static const char *write_policy(const char *name, const char *text) {
        return write_file(name, text, strlen(text));
}

static struct policy *load_ok(const char *path) {
        struct policy *p = NULL;
        char err[POLICY_ERROR_MAX] = "";
        int r = policy_load(path, &p, err, sizeof(err));
        if (r < 0)
                fprintf(stderr, "# policy_load(%s): %d: %s\n", path ? path : "NULL", r, err);
        TAP_CHECK(r == 0);
        TAP_CHECK(p);
        return p;
}

static struct policy *load_text_ok(const char *text) {
        return load_ok(write_policy("policy.json", text));
}

/* Loads text as a policy file, expects failure with r, and returns the message
 * (which must be one line and start with the file name). */
static const char *load_text_fail(const char *text, int expected) {
        static char err[POLICY_ERROR_MAX];
        struct policy *sentinel = (struct policy *) 0x1, *p = sentinel;
        const char *path = write_policy("bad.json", text);
        int r = policy_load(path, &p, err, sizeof(err));
        fprintf(stderr, "# %d: %s\n", r, err);
        TAP_CHECK(r == expected);
        TAP_CHECK(p == sentinel);   /* *ret untouched on failure */
        TAP_CHECK(strncmp(err, path, strlen(path)) == 0);
        TAP_CHECK(!strchr(err, '\n'));
        return err;
}

static struct scan_report *report_new(enum mg_format format) {
        struct scan_report *r = calloc(1, sizeof(*r));
        TAP_CHECK(r);
        report_init(r);
        r->format = (uint8_t) format;
        return r;
}

static void add_global(struct scan_report *r, const char *module, const char *qualname, enum mg_via via,
                       const char *member) {
        report_add_global(r, (const uint8_t *) module, strlen(module), (const uint8_t *) qualname,
                          strlen(qualname), via, member);
}

static void set_license(struct scan_report *r, const char *license) {
        r->has_license = true;
        snprintf(r->license, sizeof(r->license), "%s", license);
}

static const struct finding *find_rule(const struct scan_report *r, enum mg_rule rule) {
        for (size_t i = 0; i < r->n_findings; i++)
                if (r->findings[i].rule == rule)
                        return &r->findings[i];
        return NULL;
}

/* ---- the pattern grammar ---- */

static void test_exact_pattern_matches_only_that_global(void) {
        TAP_CHECK(policy_match_global("os:system", "os", "system"));
        TAP_CHECK(!policy_match_global("os:system", "os", "systemx"));
        TAP_CHECK(!policy_match_global("os:system", "osx", "system"));
        TAP_CHECK(!policy_match_global("os:system", "os.path", "system"));
        TAP_CHECK(!policy_match_global("os:system", "o", "s:system"));
}

static void test_exact_pattern_with_dotted_qualname_matches_exactly(void) {
        TAP_CHECK(policy_match_global("code:InteractiveInterpreter.runcode", "code", "InteractiveInterpreter.runcode"));
        TAP_CHECK(!policy_match_global("code:InteractiveInterpreter.runcode", "code", "InteractiveInterpreter"));
        TAP_CHECK(!policy_match_global("code:InteractiveInterpreter", "code", "InteractiveInterpreter.runcode"));
}

static void test_module_wildcard_matches_simple_names_in_that_module_only(void) {
        TAP_CHECK(policy_match_global("os:*", "os", "system"));
        TAP_CHECK(policy_match_global("os:*", "os", "getcwd"));
        TAP_CHECK(!policy_match_global("os:*", "os.path", "join"));
        TAP_CHECK(!policy_match_global("os:*", "osx", "system"));
        TAP_CHECK(!policy_match_global("os:*", "o", "system"));
}

static void test_package_wildcard_matches_package_and_submodules(void) {
        TAP_CHECK(policy_match_global("ultralytics.*", "ultralytics", "YOLO"));
        TAP_CHECK(policy_match_global("ultralytics.*", "ultralytics.nn.tasks", "DetectionModel"));
        TAP_CHECK(policy_match_global("torch.nn.*", "torch.nn.modules.conv", "Conv2d"));
        TAP_CHECK(!policy_match_global("ultralytics.*", "ultralyticsx", "YOLO"));
        TAP_CHECK(!policy_match_global("ultralytics.*", "ultralyticsx.nn", "YOLO"));
        TAP_CHECK(!policy_match_global("torch.nn.*", "torch", "nn"));
}

static void test_wildcard_never_matches_dotted_qualname(void) {
        TAP_CHECK(!policy_match_global("torch.*", "torch", "os.system"));
        TAP_CHECK(!policy_match_global("torch:*", "torch", "os.system"));
        TAP_CHECK(!policy_match_global("builtins:*", "builtins", "print.__class__.__base__.__subclasses__"));
        TAP_CHECK(!policy_match_global("ultralytics.*", "ultralytics.nn", "Model.__reduce__"));
}

static void test_invalid_pattern_never_matches(void) {
        TAP_CHECK(!policy_match_global("", "os", "system"));
        TAP_CHECK(!policy_match_global("*", "os", "system"));
        TAP_CHECK(!policy_match_global("*:*", "os", "system"));
        TAP_CHECK(!policy_match_global("os", "os", "system"));
        TAP_CHECK(!policy_match_global("os: system", "os", " system"));
        TAP_CHECK(!policy_match_global(".*", "os", "system"));
        TAP_CHECK(!policy_match_global("os.:*", "os.", "system"));
        TAP_CHECK(!policy_match_global("os:sys*", "os", "system"));
        TAP_CHECK(!policy_match_global("o*.*", "os", "system"));
        TAP_CHECK(!policy_match_global(NULL, "os", "system"));
}

static void test_deny_catches_dotted_qualname_by_first_part(void) {
        TAP_CHECK(policy_match_deny("builtins:getattr", "builtins", "getattr"));
        TAP_CHECK(policy_match_deny("builtins:getattr", "builtins", "getattr.__call__"));
        TAP_CHECK(policy_match_deny("code.*", "code", "InteractiveInterpreter.runcode"));
        TAP_CHECK(policy_match_deny("bdb.*", "bdb", "Bdb.run"));
        TAP_CHECK(policy_match_deny("torch.utils._config_module.*", "torch.utils._config_module",
                                    "ConfigModule.load_config"));
        TAP_CHECK(!policy_match_deny("builtins:getattr", "builtins", "getattrx.y"));
}

static void test_deny_catches_module_reached_through_an_attribute(void) {
        /* ("torch", "os.system"): torch.os is the os module. */
        TAP_CHECK(policy_match_deny("os.*", "torch", "os.system"));
        TAP_CHECK(policy_match_deny("os:system", "torch", "os.system"));
        TAP_CHECK(policy_match_deny("subprocess.*", "numpy", "testing._private.utils.subprocess.Popen"));
        /* submodule walk: torch.hub reached as an attribute of torch */
        TAP_CHECK(policy_match_deny("torch.hub.*", "torch", "hub.load"));
        TAP_CHECK(policy_match_deny("torch.hub:load", "torch", "hub.load"));
        TAP_CHECK(!policy_match_deny("os.*", "collections", "OrderedDict.fromkeys"));
        TAP_CHECK(!policy_match_deny("os:system", "torch", "os.getcwd"));
}

static void test_deny_fails_closed_on_absurdly_dotted_qualname(void) {
        char q[128] = "a";
        for (int i = 0; i < 20; i++)
                strcat(q, ".a");
        TAP_CHECK(policy_match_deny("os:system", "x", q));
        TAP_CHECK(!policy_match_deny("os:system", "x", "a.a.a.a.a.a.a.a"));
}

static void test_deny_plain_wildcard_like_allow_grammar(void) {
        TAP_CHECK(policy_match_deny("os.*", "os.path", "join"));
        TAP_CHECK(policy_match_deny("sys:*", "sys", "modules"));
        TAP_CHECK(!policy_match_deny("sys:*", "sysconfig", "get_paths"));
        TAP_CHECK(!policy_match_deny("", "os", "system"));
}

/* ---- licenses ---- */

static void test_license_match_ignores_case_spaces_and_underscores(void) {
        TAP_CHECK(policy_match_license("cc-by-nc-*", "cc-by-nc-4.0"));
        TAP_CHECK(policy_match_license("cc-by-nc-*", "CC BY-NC 4.0"));
        TAP_CHECK(policy_match_license("cc-by-nc-*", "CC_BY_NC_4.0"));
        TAP_CHECK(policy_match_license("cc-by-nc-*", "  CC - BY -- NC  4.0 "));
        TAP_CHECK(policy_match_license("CC BY-NC *", "cc-by-nc-4.0"));
        TAP_CHECK(!policy_match_license("cc-by-nc-*", "cc-by-4.0"));
        TAP_CHECK(!policy_match_license("cc-by-nc-*", "cc-by-nc"));
}

static void test_license_glob_star_and_question_mark(void) {
        TAP_CHECK(policy_match_license("*research*only*", "Research Use Only"));
        TAP_CHECK(policy_match_license("agpl-?.0", "AGPL-3.0"));
        TAP_CHECK(!policy_match_license("agpl-?.0", "agpl-3.0-only"));
        TAP_CHECK(policy_match_license("*", "anything"));
        TAP_CHECK(policy_match_license("a*b*c", "axxbyyc"));
        TAP_CHECK(!policy_match_license("a*b*c", "axxbyy"));
        TAP_CHECK(!policy_match_license("*-nc-*", ""));
}

/* The built-in restricted list against spellings met in real metadata: Hub
 * license ids, SPDX ids and free text. */
static void test_builtin_restricted_licenses_catch_real_spellings(void) {
        struct policy *p = load_ok(NULL);
        static const char *const restricted[] = {
                "cc-by-nc-4.0", "CC-BY-NC-SA-4.0", "cc-by-nc-nd-3.0", "CC BY-NC 4.0", "cc_by_nc_2.0", "cc-by-nc",
                "Creative Commons Attribution-NonCommercial 4.0 International",
                "Attribution-NonCommercial-ShareAlike 4.0", "non-commercial", "Non Commercial Use Only",
                "research-only", "Research Use Only", "for research use only", "not for commercial use",
                "agpl-3.0", "AGPL-3.0-or-later", "AGPL-3.0-only", "agpl", "GNU Affero General Public License v3.0",
                "msr-la-nc", "deepfloyd-if-license", "intel-research", "apple-amlr",
        };
        static const char *const fine[] = {
                "apache-2.0", "Apache License 2.0", "mit", "MIT", "bsd-3-clause", "cc-by-4.0", "cc-by-sa-4.0", "cc0-1.0",
                "openrail", "creativeml-openrail-m", "bigscience-openrail-m", "llama2", "llama3.1", "gemma", "other",
                "gpl-3.0", "lgpl-3.0", "mpl-2.0", "unlicense", "wtfpl", "artistic-2.0", "afl-3.0", "ncsa",
        };
        for (size_t i = 0; i < sizeof(restricted) / sizeof(*restricted); i++)
                if (!policy_license_restricted(p, restricted[i])) {
                        fprintf(stderr, "# not restricted: %s\n", restricted[i]);
                        exit(1);
                }
        for (size_t i = 0; i < sizeof(fine) / sizeof(*fine); i++)
                if (policy_license_restricted(p, fine[i])) {
                        fprintf(stderr, "# restricted by mistake: %s\n", fine[i]);
                        exit(1);
                }
        policy_free(p);
}

/* ---- loading ---- */

static void test_builtin_policy_has_documented_defaults(void) {
        struct policy *p = load_ok(NULL);
        TAP_CHECK_STR(policy_source(p), "builtin");
        TAP_CHECK(policy_mode(p) == POLICY_MODE_ENFORCE);
        TAP_CHECK(policy_pickle_mode(p) == POLICY_PICKLE_ALLOWLIST);
        TAP_CHECK(policy_fail_severity(p) == SEV_HIGH);
        TAP_CHECK(policy_on_error(p) == VERDICT_DENY);
        TAP_CHECK(!policy_require_license(p));
        TAP_CHECK(policy_watch_count(p) == 0);
        TAP_CHECK(policy_manifest_count(p) == 0);
        TAP_CHECK(policy_watch(p, 0) == NULL);
        TAP_CHECK(strlen(policy_sha256(p)) == 64);
        TAP_CHECK(strspn(policy_sha256(p), "0123456789abcdef") == 64);
        policy_free(p);
}

/* Calls fn(module, qualname) for every entry of a list key of the built-in JSON. */
static void builtin_list_foreach(const char *key, void (*fn)(const struct policy *, const char *),
                                 const struct policy *p) {
        cJSON *root = cJSON_Parse(policy_builtin_json()), *item;
        TAP_CHECK(root);
        cJSON *list = cJSON_GetObjectItemCaseSensitive(root, key);
        TAP_CHECK(cJSON_IsArray(list));
        TAP_CHECK(cJSON_GetArraySize(list) > 0);
        cJSON_ArrayForEach(item, list) {
                TAP_CHECK(cJSON_IsString(item));
                fn(p, item->valuestring);
        }
        cJSON_Delete(root);
}

static void check_allowed_and_not_denied(const struct policy *p, const char *pattern) {
        char module[256];
        const char *colon = strchr(pattern, ':');
        TAP_CHECK(colon);   /* the built-in allowlist has exact entries only */
        snprintf(module, sizeof(module), "%.*s", (int) (colon - pattern), pattern);
        if (policy_global_severity(p, module, colon + 1) != -1) {
                fprintf(stderr, "# %s is not allowed\n", pattern);
                exit(1);
        }
        /* no deny entry may even match it, or a later edit of the order in
         * policy_global_severity() would break real checkpoints */
        cJSON *root = cJSON_Parse(policy_builtin_json()), *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(root, "deny_globals"))
                if (policy_match_deny(item->valuestring, module, colon + 1)) {
                        fprintf(stderr, "# %s is matched by deny %s\n", pattern, item->valuestring);
                        exit(1);
                }
        cJSON_Delete(root);
}

static void test_builtin_allowlist_is_exact_and_never_denied(void) {
        struct policy *p = load_ok(NULL);
        builtin_list_foreach("allow_globals", check_allowed_and_not_denied, p);
        policy_free(p);
}

static void check_critical(const struct policy *p, const char *pattern) {
        char module[256], qualname[256];
        const char *colon = strchr(pattern, ':');
        if (colon) {
                snprintf(module, sizeof(module), "%.*s", (int) (colon - pattern), pattern);
                snprintf(qualname, sizeof(qualname), "%s", strcmp(colon + 1, "*") == 0 ? "anything" : colon + 1);
        } else {
                snprintf(module, sizeof(module), "%.*s.sub", (int) (strlen(pattern) - 2), pattern);
                snprintf(qualname, sizeof(qualname), "anything");
        }
        if (policy_global_severity(p, module, qualname) != SEV_CRITICAL) {
                fprintf(stderr, "# deny %s: %s:%s is not critical\n", pattern, module, qualname);
                exit(1);
        }
}

static void test_builtin_deny_entries_are_critical(void) {
        struct policy *p = load_ok(NULL);
        builtin_list_foreach("deny_globals", check_critical, p);
        policy_free(p);
}

/* torch 1.13's torch._weights_only_unpickler._get_allowed_globals(), as
 * "module:name": every one must be allowed by the default. */
static const char *const torch_weights_only_globals[] = {
        "collections:OrderedDict", "torch:BFloat16Storage", "torch:BFloat16Tensor",
        "torch:BoolStorage", "torch:BoolTensor", "torch:ByteStorage", "torch:ByteTensor",
        "torch:CharStorage", "torch:CharTensor", "torch:ComplexDoubleStorage",
        "torch:ComplexFloatStorage", "torch:DoubleStorage", "torch:DoubleTensor",
        "torch:FloatStorage", "torch:FloatTensor", "torch:HalfStorage", "torch:HalfTensor",
        "torch:IntStorage", "torch:IntTensor", "torch:LongStorage", "torch:LongTensor",
        "torch:QInt32Storage", "torch:QInt8Storage", "torch:QUInt2x4Storage",
        "torch:QUInt4x2Storage", "torch:QUInt8Storage", "torch:ShortStorage", "torch:ShortTensor",
        "torch:Size", "torch:Tensor", "torch._utils:_rebuild_meta_tensor_no_storage",
        "torch._utils:_rebuild_parameter", "torch._utils:_rebuild_sparse_csr_tensor",
        "torch._utils:_rebuild_sparse_tensor", "torch._utils:_rebuild_tensor",
        "torch._utils:_rebuild_tensor_v2", "torch:complex128", "torch:complex32", "torch:complex64",
        "torch.cuda:BFloat16Storage", "torch.cuda:BFloat16Tensor", "torch.cuda:BoolStorage",
        "torch.cuda:BoolTensor", "torch.cuda:ByteStorage", "torch.cuda:ByteTensor",
        "torch.cuda:CharStorage", "torch.cuda:CharTensor", "torch.cuda:ComplexDoubleStorage",
        "torch.cuda:ComplexFloatStorage", "torch.cuda:DoubleStorage", "torch.cuda:DoubleTensor",
        "torch.cuda:FloatStorage", "torch.cuda:FloatTensor", "torch.cuda:HalfStorage",
        "torch.cuda:HalfTensor", "torch.cuda:IntStorage", "torch.cuda:IntTensor",
        "torch.cuda:LongStorage", "torch.cuda:LongTensor", "torch.cuda:ShortStorage",
        "torch.cuda:ShortTensor", "torch.cuda.sparse:BFloat16Tensor",
        "torch.cuda.sparse:ByteTensor", "torch.cuda.sparse:CharTensor",
        "torch.cuda.sparse:DoubleTensor", "torch.cuda.sparse:FloatTensor",
        "torch.cuda.sparse:HalfTensor", "torch.cuda.sparse:IntTensor",
        "torch.cuda.sparse:LongTensor", "torch.cuda.sparse:ShortTensor", "torch:float16",
        "torch:float32", "torch:float64", "torch:int16", "torch:int32", "torch:int64", "torch:int8",
        "torch.nn.parameter:Parameter", "torch.serialization:_get_layout",
        "torch.sparse:BFloat16Tensor", "torch.sparse:ByteTensor", "torch.sparse:CharTensor",
        "torch.sparse:DoubleTensor", "torch.sparse:FloatTensor", "torch.sparse:HalfTensor",
        "torch.sparse:IntTensor", "torch.sparse:LongTensor", "torch.sparse:ShortTensor",
        "torch.storage:TypedStorage", "torch.storage:UntypedStorage",
};

static void test_builtin_allowlist_covers_torch_weights_only(void) {
        struct policy *p = load_ok(NULL);
        for (size_t i = 0; i < sizeof(torch_weights_only_globals) / sizeof(torch_weights_only_globals[0]); i++) {
                char module[128];
                const char *g = torch_weights_only_globals[i], *colon = strchr(g, ':');
                snprintf(module, sizeof(module), "%.*s", (int) (colon - g), g);
                if (policy_global_severity(p, module, colon + 1) != -1) {
                        fprintf(stderr, "# %s not allowed\n", g);
                        exit(1);
                }
        }
        policy_free(p);
}

static void test_builtin_json_is_a_valid_policy_file(void) {
        struct policy *b = load_ok(NULL);
        struct policy *p = load_text_ok(policy_builtin_json());
        TAP_CHECK_STR(policy_sha256(p), policy_sha256(b));
        policy_free(b);
        policy_free(p);
}

static void test_merge_adds_lists_and_replaces_scalars(void) {
        struct policy *p = load_text_ok(
                "{\"mode\":\"audit\",\"fail_severity\":\"critical\",\"require_license\":true,"
                "\"allow_globals\":[\"ultralytics.*\",\"xgboost.core:Booster\"],"
                "\"watch\":[\"/srv/models\",\"/opt/models\"],\"manifests\":[\"/etc/modelgate/manifests\"]}");
        TAP_CHECK(policy_mode(p) == POLICY_MODE_AUDIT);
        TAP_CHECK(policy_fail_severity(p) == SEV_CRITICAL);
        TAP_CHECK(policy_require_license(p));
        /* scalars the file leaves out keep the default */
        TAP_CHECK(policy_pickle_mode(p) == POLICY_PICKLE_ALLOWLIST);
        TAP_CHECK(policy_on_error(p) == VERDICT_DENY);
        /* lists: the file's entries are added, the defaults stay */
        TAP_CHECK(policy_global_severity(p, "ultralytics.nn.tasks", "DetectionModel") == -1);
        TAP_CHECK(policy_global_severity(p, "xgboost.core", "Booster") == -1);
        TAP_CHECK(policy_global_severity(p, "torch._utils", "_rebuild_tensor_v2") == -1);
        TAP_CHECK(policy_global_severity(p, "os", "system") == SEV_CRITICAL);
        TAP_CHECK(policy_watch_count(p) == 2);
        TAP_CHECK_STR(policy_watch(p, 0), "/opt/models");
        TAP_CHECK_STR(policy_watch(p, 1), "/srv/models");
        TAP_CHECK(policy_manifest_count(p) == 1);
        TAP_CHECK_STR(policy_manifest(p, 0), "/etc/modelgate/manifests");
        TAP_CHECK(strcmp(policy_source(p), tmp_path("policy.json")) == 0);
        policy_free(p);
}

static void test_merge_adds_restricted_licenses(void) {
        struct policy *p = load_text_ok("{\"restricted_licenses\":[\"Llama2\"]}");
        TAP_CHECK(policy_license_restricted(p, "llama2"));
        TAP_CHECK(policy_license_restricted(p, "cc-by-nc-4.0"));
        TAP_CHECK(!policy_license_restricted(p, "apache-2.0"));
        policy_free(p);
}

static void test_paths_are_normalised_and_deduplicated(void) {
        struct policy *p = load_text_ok("{\"watch\":[\"/srv//models/\",\"/srv/models\",\"///\"]}");
        TAP_CHECK(policy_watch_count(p) == 2);
        TAP_CHECK_STR(policy_watch(p, 0), "/");
        TAP_CHECK_STR(policy_watch(p, 1), "/srv/models");
        policy_free(p);
}

static void test_empty_object_is_the_builtin_policy(void) {
        struct policy *b = load_ok(NULL);
        struct policy *p = load_text_ok("{}");
        TAP_CHECK_STR(policy_sha256(p), policy_sha256(b));
        TAP_CHECK_STR(policy_canonical_json(p), policy_canonical_json(b));
        policy_free(b);
        policy_free(p);
}

/* ---- every error path ---- */

static void test_unknown_key_is_named(void) {
        const char *err = load_text_fail("{\"mode\":\"audit\",\"fail_severty\":\"high\"}", -EINVAL);
        TAP_CHECK(strstr(err, ": key \"fail_severty\": unknown key"));
        TAP_CHECK(strstr(err, "fail_severity"));   /* lists the known keys */
}

static void test_unknown_key_with_newline_stays_one_line(void) {
        const char *err = load_text_fail("{\"a\\nb\":1}", -EINVAL);
        TAP_CHECK(strstr(err, "key \"a\\x0ab\""));
}

static void test_bad_enum_value_lists_allowed_values(void) {
        char expected[PATH_MAX + 200];
        const char *err = load_text_fail("{\"fail_severity\":\"severe\"}", -EINVAL);
        snprintf(expected, sizeof(expected),
                 "%s: key \"fail_severity\": expected one of critical, high, medium, low, info, got \"severe\"",
                 tmp_path("bad.json"));
        TAP_CHECK_STR(err, expected);
        TAP_CHECK(strstr(load_text_fail("{\"mode\":\"Enforce\"}", -EINVAL),
                         "key \"mode\": expected one of enforce, audit, got \"Enforce\""));
        TAP_CHECK(strstr(load_text_fail("{\"pickle\":\"none\"}", -EINVAL),
                         "key \"pickle\": expected one of allowlist, denylist"));
        TAP_CHECK(strstr(load_text_fail("{\"on_error\":\"ignore\"}", -EINVAL),
                         "key \"on_error\": expected one of allow, deny"));
}

static void test_bad_enum_value_is_escaped_and_cut(void) {
        const char *err = load_text_fail("{\"mode\":\"x\\\"y\\u0007AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
                                         -EINVAL);
        TAP_CHECK(strstr(err, "got \"x\\x22y\\x07AAAA"));
        TAP_CHECK(strstr(err, "...\""));
}

static void test_wrong_type_names_key_and_expected_type(void) {
        TAP_CHECK(strstr(load_text_fail("{\"mode\":1}", -EINVAL),
                         "key \"mode\": expected a string (one of enforce, audit), got a number"));
        TAP_CHECK(strstr(load_text_fail("{\"watch\":\"/srv/models\"}", -EINVAL),
                         "key \"watch\": expected a list of strings, got a string"));
        TAP_CHECK(strstr(load_text_fail("{\"allow_globals\":[\"a:b\",3]}", -EINVAL),
                         "key \"allow_globals\": index 1: expected a string, got a number"));
        TAP_CHECK(strstr(load_text_fail("{\"require_license\":\"yes\"}", -EINVAL),
                         "key \"require_license\": expected true or false, got a string"));
        TAP_CHECK(strstr(load_text_fail("{\"require_license\":null}", -EINVAL),
                         "key \"require_license\": expected true or false, got null"));
        TAP_CHECK(strstr(load_text_fail("{\"manifests\":{}}", -EINVAL),
                         "key \"manifests\": expected a list of strings, got an object"));
}

static void test_bad_pattern_names_key_index_and_pattern(void) {
        TAP_CHECK(strstr(load_text_fail("{\"allow_globals\":[\"a:b\",\"os system\"]}", -EINVAL),
                         "key \"allow_globals\": index 1: invalid pattern \"os system\": contains whitespace"));
        TAP_CHECK(strstr(load_text_fail("{\"deny_globals\":[\"os\"]}", -EINVAL),
                         "key \"deny_globals\": index 0: invalid pattern \"os\": expected"));
        TAP_CHECK(strstr(load_text_fail("{\"deny_globals\":[\":system\"]}", -EINVAL),
                         "index 0: invalid pattern \":system\": empty module"));
        TAP_CHECK(strstr(load_text_fail("{\"deny_globals\":[\"os:\"]}", -EINVAL),
                         "index 0: invalid pattern \"os:\": empty qualname"));
        TAP_CHECK(strstr(load_text_fail("{\"deny_globals\":[\"a..b:c\"]}", -EINVAL),
                         "index 0: invalid pattern \"a..b:c\": a name has an empty part"));
        TAP_CHECK(strstr(load_text_fail("{\"deny_globals\":[\"os:sys*\"]}", -EINVAL),
                         "index 0: invalid pattern \"os:sys*\": '*' is allowed only"));
        TAP_CHECK(strstr(load_text_fail("{\"deny_globals\":[\"a:b:c\"]}", -EINVAL),
                         "index 0: invalid pattern \"a:b:c\": more than one ':'"));
        TAP_CHECK(strstr(load_text_fail("{\"deny_globals\":[\"\"]}", -EINVAL),
                         "index 0: invalid pattern \"\": empty pattern"));
        TAP_CHECK(strstr(load_text_fail("{\"deny_globals\":[\"os:\\tsystem\"]}", -EINVAL),
                         "invalid pattern \"os:\\x09system\": contains whitespace"));
}

static void test_bad_path_names_key_index_and_path(void) {
        TAP_CHECK(strstr(load_text_fail("{\"watch\":[\"srv/models\"]}", -EINVAL),
                         "key \"watch\": index 0: invalid path \"srv/models\": must be an absolute path"));
        TAP_CHECK(strstr(load_text_fail("{\"manifests\":[\"/etc\",\"/etc/../x\"]}", -EINVAL),
                         "key \"manifests\": index 1: invalid path \"/etc/../x\""));
        TAP_CHECK(strstr(load_text_fail("{\"watch\":[\"\"]}", -EINVAL), "must be an absolute path"));
}

static void test_bad_license_pattern_is_refused(void) {
        TAP_CHECK(strstr(load_text_fail("{\"restricted_licenses\":[\" _ \"]}", -EINVAL),
                         "key \"restricted_licenses\": index 0: invalid license pattern"));
}

static void test_invalid_json_names_line_and_column(void) {
        const char *err = load_text_fail("{\n  \"mode\": \"audit\",\n  \"watch\": [\"/a\",]\n}\n", -EINVAL);
        TAP_CHECK(strstr(err, ": invalid JSON at line 3, column "));
        TAP_CHECK(strstr(load_text_fail("{\"mode\":\"audit\"} trailing", -EINVAL), "invalid JSON at line 1"));
        TAP_CHECK(strstr(load_text_fail("", -EINVAL), "invalid JSON: the file is empty"));
        TAP_CHECK(strstr(load_text_fail("  \n", -EINVAL), "invalid JSON: the file is empty"));
}

static void test_nul_byte_and_nul_escape_are_refused(void) {
        const char *path = write_file("nul.json", "{\"mode\":\"audit\"}\0{", 18);
        struct policy *p = NULL;
        char err[POLICY_ERROR_MAX];
        TAP_CHECK(policy_load(path, &p, err, sizeof(err)) == -EINVAL);
        TAP_CHECK(strstr(err, "NUL byte"));
        TAP_CHECK(strstr(load_text_fail("{\"watch\":[\"/srv\\u0000/x\"]}", -EINVAL), "\\u0000"));
        /* an escaped backslash followed by "u0000" is not a NUL */
        TAP_CHECK(strstr(load_text_fail("{\"allow_globals\":[\"a:b\\\\u0000\"]}", -EINVAL),
                         "invalid pattern \"a:b\\x5cu0000\": contains a backslash"));
}

static void test_top_level_must_be_an_object(void) {
        TAP_CHECK(strstr(load_text_fail("[]", -EINVAL), "expected a JSON object at the top level, got a list"));
        TAP_CHECK(strstr(load_text_fail("\"x\"", -EINVAL), "got a string"));
}

static void test_duplicate_key_is_refused(void) {
        TAP_CHECK(strstr(load_text_fail("{\"mode\":\"audit\",\"mode\":\"enforce\"}", -EINVAL),
                         "key \"mode\": given more than once"));
}

static void test_missing_file_is_named(void) {
        struct policy *p = NULL;
        char err[POLICY_ERROR_MAX];
        const char *path = tmp_path("does-not-exist.json");
        TAP_CHECK(policy_load(path, &p, err, sizeof(err)) == -ENOENT);
        TAP_CHECK(!p);
        TAP_CHECK(strncmp(err, path, strlen(path)) == 0);
        TAP_CHECK(strstr(err, "cannot open: No such file or directory"));
}

static void test_directory_instead_of_file_is_refused(void) {
        struct policy *p = NULL;
        char err[POLICY_ERROR_MAX];
        TAP_CHECK(policy_load(tmpdir, &p, err, sizeof(err)) == -EISDIR);
        TAP_CHECK(!p);
        TAP_CHECK(strstr(err, "not a regular file (a directory)"));
}

static void test_fifo_is_refused_without_blocking(void) {
        struct policy *p = NULL;
        char err[POLICY_ERROR_MAX];
        const char *path = tmp_path("fifo.json");
        TAP_CHECK(mkfifo(path, 0600) == 0);
        alarm(10);   /* a blocking open would hang here */
        TAP_CHECK(policy_load(path, &p, err, sizeof(err)) == -EBADFD);
        TAP_CHECK(strstr(err, "not a regular file (a FIFO)"));
}

static void test_oversized_file_is_refused(void) {
        size_t len = (2 << 20);
        char *big = malloc(len + 1);
        TAP_CHECK(big);
        memset(big, ' ', len);
        big[0] = '{';
        big[len - 1] = '}';
        big[len] = '\0';
        TAP_CHECK(strstr(load_text_fail(big, -EFBIG), "file is larger than 1048576 bytes"));
        free(big);
}

static void test_too_many_entries_are_refused(void) {
        size_t n = 5000, o = 0;
        char *text = malloc(n * 16 + 64);
        TAP_CHECK(text);
        o += (size_t) sprintf(text, "{\"allow_globals\":[");
        for (size_t i = 0; i < n; i++)
                o += (size_t) sprintf(text + o, "%s\"m%zu:f\"", i ? "," : "", i);
        sprintf(text + o, "]}");
        TAP_CHECK(strstr(load_text_fail(text, -E2BIG), "key \"allow_globals\": more than 4096 entries"));
        free(text);
}

static void test_error_buffer_may_be_null(void) {
        struct policy *p = NULL;
        TAP_CHECK(policy_load(write_policy("x.json", "{\"foo\":1}"), &p, NULL, 0) == -EINVAL);
        TAP_CHECK(!p);
}

/* ---- manifests of expected hashes ---- */

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* A disagreement found after two entries for the same file were merged once used
 * to leave the merged entry's freed path in the table: manifest_set_free() freed it
 * again (found by tests/fuzz/fuzz-manifest). The same within one manifest (JSON
 * allows a key twice) and across a Hub listing and modelgate's own format. */
static void test_manifest_disagreement_after_a_merge_is_an_error_not_a_double_free(void) {
        struct manifest_set *s = NULL;
        char err[MANIFEST_ERROR_MAX] = "";
        const char *path;

        path = write_policy("dup.json", "{\"files\":{\"m\":{\"sha256\":\"" SHA_A "\"},\"m\":{\"sha256\":\"" SHA_A
                                        "\"},\"m\":{\"sha256\":\"" SHA_B "\"}}}");
        TAP_CHECK(manifest_set_new(&s) == 0);
        TAP_CHECK(manifest_set_add(s, path, NULL, err, sizeof(err)) == -EINVAL);
        TAP_CHECK(strstr(err, "the entry for ") && strstr(err, "/m disagrees with "));
        manifest_set_free(s);

        s = NULL;
        err[0] = '\0';
        TAP_CHECK(manifest_set_new(&s) == 0);
        TAP_CHECK(manifest_set_add(s, write_policy("hub.json",
                                                   "[{\"type\":\"file\",\"path\":\"a\",\"size\":1,\"lfs\":{\"oid\":\"" SHA_A "\",\"size\":1}},"
                                                   "{\"type\":\"file\",\"path\":\"b\",\"size\":1,\"lfs\":{\"oid\":\"" SHA_A "\",\"size\":1}}]"),
                                   tmpdir, err, sizeof(err)) == 0);
        TAP_CHECK(manifest_set_count(s) == 2);
        TAP_CHECK(manifest_set_add(s, write_policy("own.json",
                                                   "{\"files\":{\"a\":{\"sha256\":\"" SHA_A "\",\"size\":1},"
                                                   "\"b\":{\"sha256\":\"" SHA_B "\",\"size\":1}}}"),
                                   tmpdir, err, sizeof(err)) == -EINVAL);
        TAP_CHECK(strstr(err, "own.json: the entry for ") && strstr(err, "/b disagrees with ") && strstr(err, "hub.json"));
        manifest_set_free(s);
}

/* ---- the canonical hash ---- */

static void test_sha256_stable_across_key_and_list_order(void) {
        struct policy *a = load_ok(write_policy("a.json",
                "{\"mode\":\"audit\",\"allow_globals\":[\"b:x\",\"a:y\"],\"watch\":[\"/b\",\"/a\"],"
                "\"restricted_licenses\":[\"Foo Bar\"]}"));
        struct policy *b = load_ok(write_policy("b.json",
                "{\"restricted_licenses\":[\"foo_bar\"],\"watch\":[\"/a/\",\"/b\",\"/a\"],"
                "\"allow_globals\":[\"a:y\",\"b:x\",\"a:y\"],\"mode\":\"audit\"}"));
        TAP_CHECK_STR(policy_sha256(a), policy_sha256(b));
        TAP_CHECK_STR(policy_canonical_json(a), policy_canonical_json(b));
        policy_free(a);
        policy_free(b);
}

static void test_sha256_same_when_file_restates_defaults(void) {
        struct policy *b = load_ok(NULL);
        struct policy *p = load_text_ok("{\"mode\":\"enforce\",\"fail_severity\":\"high\","
                                        "\"allow_globals\":[\"torch:FloatStorage\"],\"deny_globals\":[\"os.*\"]}");
        TAP_CHECK_STR(policy_sha256(p), policy_sha256(b));
        policy_free(b);
        policy_free(p);
}

static void test_canonical_json_reloads_to_same_hash(void) {
        struct policy *a = load_text_ok("{\"mode\":\"audit\",\"allow_globals\":[\"x.*\"],\"watch\":[\"/m\"]}");
        struct policy *b = load_ok(write_policy("again.json", policy_canonical_json(a)));
        TAP_CHECK_STR(policy_sha256(a), policy_sha256(b));
        policy_free(a);
        policy_free(b);
}

static void test_attestation_keys_are_lists_of_paths_outside_the_hash(void) {
        struct policy *b = load_ok(NULL);
        TAP_CHECK(policy_attestation_key_count(b) == 0 && policy_attestation_count(b) == 0);
        struct policy *p = load_text_ok("{\"attestation_keys\":[\"/etc/modelgate/keys/ci.pem\",\"/etc/modelgate/keys/a.pem\"],"
                                        "\"attestations\":[\"/var/lib/modelgate/attestations\"]}");
        TAP_CHECK(policy_attestation_key_count(p) == 2 && policy_attestation_count(p) == 1);
        TAP_CHECK_STR(policy_attestation_key(p, 0), "/etc/modelgate/keys/a.pem");
        TAP_CHECK_STR(policy_attestation(p, 0), "/var/lib/modelgate/attestations");
        /* Which statements are trusted is not how a file is judged: same hash, so
         * adding an attestation never invalidates those already signed. */
        TAP_CHECK_STR(policy_sha256(p), policy_sha256(b));
        TAP_CHECK(!strstr(policy_canonical_json(p), "attestation"));
        TAP_CHECK(strstr(load_text_fail("{\"attestation_keys\":\"/k.pem\"}", -EINVAL),
                         "key \"attestation_keys\": expected a list of strings"));
        TAP_CHECK(strstr(load_text_fail("{\"attestations\":[\"relative/x\"]}", -EINVAL),
                         "key \"attestations\": index 0: invalid path"));
        policy_free(p);
        policy_free(b);
}

static void test_sha256_changes_when_a_value_changes(void) {
        struct policy *b = load_ok(NULL);
        const char *variants[] = {
                "{\"mode\":\"audit\"}",
                "{\"pickle\":\"denylist\"}",
                "{\"fail_severity\":\"critical\"}",
                "{\"on_error\":\"allow\"}",
                "{\"require_license\":true}",
                "{\"watch\":[\"/srv/models\"]}",
                "{\"manifests\":[\"/srv/m.json\"]}",
                "{\"allow_globals\":[\"ultralytics.*\"]}",
                "{\"deny_globals\":[\"foo:bar\"]}",
                "{\"restricted_licenses\":[\"llama2\"]}",
        };
        char seen[10][65];
        for (size_t i = 0; i < 10; i++) {
                char name[32];
                snprintf(name, sizeof(name), "v%zu.json", i);
                struct policy *p = load_ok(write_policy(name, variants[i]));
                TAP_CHECK(strcmp(policy_sha256(p), policy_sha256(b)) != 0);
                snprintf(seen[i], sizeof(seen[i]), "%s", policy_sha256(p));
                for (size_t j = 0; j < i; j++)
                        TAP_CHECK(strcmp(seen[i], seen[j]) != 0);
                policy_free(p);
        }
        policy_free(b);
}

/* ---- evaluate ---- */

static void test_evaluate_os_system_is_critical(void) {
        struct policy *p = load_ok(NULL);
        struct scan_report *r = report_new(FMT_PYTORCH_ZIP);
        add_global(r, "collections", "OrderedDict", VIA_GLOBAL, "archive/data.pkl");
        add_global(r, "os", "system", VIA_STACK_GLOBAL, "archive/data.pkl");
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
        TAP_CHECK(r->n_findings == 1);
        const struct finding *f = &r->findings[0];
        TAP_CHECK(f->rule == RULE_UNSAFE_IMPORT);
        TAP_CHECK(f->severity == SEV_CRITICAL);
        TAP_CHECK(f->via == VIA_STACK_GLOBAL);
        TAP_CHECK_STR(f->message, "os:system (via STACK_GLOBAL)");
        TAP_CHECK_STR(f->global, "os:system");
        TAP_CHECK_STR(f->member, "archive/data.pkl");
        free(r);
        policy_free(p);
}

static void test_evaluate_unknown_global_is_high(void) {
        struct policy *p = load_ok(NULL);
        struct scan_report *r = report_new(FMT_PICKLE);
        add_global(r, "sklearn.linear_model", "LogisticRegression", VIA_GLOBAL, NULL);
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
        TAP_CHECK(r->n_findings == 1);
        TAP_CHECK(r->findings[0].severity == SEV_HIGH);
        TAP_CHECK_STR(r->findings[0].message, "sklearn.linear_model:LogisticRegression (via GLOBAL)");
        TAP_CHECK_STR(r->findings[0].member, "");
        free(r);
        policy_free(p);
}

static void test_evaluate_allows_torch_and_numpy_reconstruction(void) {
        struct policy *p = load_ok(NULL);
        struct scan_report *r = report_new(FMT_PYTORCH_ZIP);
        add_global(r, "collections", "OrderedDict", VIA_GLOBAL, "m/data.pkl");
        add_global(r, "torch._utils", "_rebuild_tensor_v2", VIA_GLOBAL, "m/data.pkl");
        add_global(r, "torch", "FloatStorage", VIA_GLOBAL, "m/data.pkl");
        add_global(r, "torch", "bfloat16", VIA_STACK_GLOBAL, "m/data.pkl");
        add_global(r, "torch._utils", "_rebuild_parameter", VIA_GLOBAL, "m/data.pkl");
        add_global(r, "numpy.core.multiarray", "_reconstruct", VIA_GLOBAL, "m/data.pkl");
        add_global(r, "numpy._core.multiarray", "scalar", VIA_STACK_GLOBAL, "m/data.pkl");
        add_global(r, "numpy", "ndarray", VIA_GLOBAL, "m/data.pkl");
        add_global(r, "numpy", "dtype", VIA_GLOBAL, "m/data.pkl");
        add_global(r, "_codecs", "encode", VIA_GLOBAL, "m/data.pkl");
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_ALLOW);
        TAP_CHECK(r->n_findings == 0);
        free(r);
        policy_free(p);
}

static void test_evaluate_dotted_qualname_of_allowed_name_is_not_allowed(void) {
        struct policy *p = load_ok(NULL);
        struct scan_report *r = report_new(FMT_PICKLE);
        add_global(r, "torch._utils", "_rebuild_tensor_v2.__globals__", VIA_STACK_GLOBAL, NULL);
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
        TAP_CHECK(r->findings[0].severity == SEV_HIGH);
        free(r);
        policy_free(p);
}

static void test_evaluate_dotted_alias_of_os_is_critical(void) {
        struct policy *p = load_ok(NULL);
        struct scan_report *r = report_new(FMT_PICKLE);
        add_global(r, "torch", "os.system", VIA_STACK_GLOBAL, NULL);
        add_global(r, "builtins", "getattr.__call__", VIA_STACK_GLOBAL, NULL);
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
        TAP_CHECK(r->n_findings == 2);
        TAP_CHECK(r->findings[0].severity == SEV_CRITICAL);
        TAP_CHECK(r->findings[1].severity == SEV_CRITICAL);
        free(r);
        policy_free(p);
}

static void test_evaluate_exact_allow_overrides_wildcard_deny(void) {
        struct policy *p = load_text_ok("{\"allow_globals\":[\"os:getcwd\",\"logging:getLogger\"]}");
        TAP_CHECK(policy_global_severity(p, "os", "getcwd") == -1);
        TAP_CHECK(policy_global_severity(p, "logging", "getLogger") == -1);
        TAP_CHECK(policy_global_severity(p, "os", "system") == SEV_CRITICAL);
        TAP_CHECK(policy_global_severity(p, "os", "getcwd.__self__") == SEV_CRITICAL);
        policy_free(p);
}

static void test_evaluate_exact_allow_cannot_override_exact_deny(void) {
        struct policy *p = load_text_ok("{\"allow_globals\":[\"builtins:getattr\"]}");
        TAP_CHECK(policy_global_severity(p, "builtins", "getattr") == SEV_CRITICAL);
        policy_free(p);
}

static void test_evaluate_exact_deny_removes_default_allow_entry(void) {
        struct policy *p = load_text_ok("{\"deny_globals\":[\"torch._utils:_rebuild_meta_tensor_no_storage\"]}");
        TAP_CHECK(policy_global_severity(p, "torch._utils", "_rebuild_meta_tensor_no_storage") == SEV_CRITICAL);
        TAP_CHECK(policy_global_severity(p, "torch._utils", "_rebuild_tensor_v2") == -1);
        policy_free(p);
}

static void test_evaluate_wildcard_allow_does_not_override_deny(void) {
        struct policy *p = load_text_ok("{\"allow_globals\":[\"torch.*\",\"numpy.*\"]}");
        TAP_CHECK(policy_global_severity(p, "torch.hub", "load") == SEV_CRITICAL);
        TAP_CHECK(policy_global_severity(p, "torch", "load") == SEV_CRITICAL);
        TAP_CHECK(policy_global_severity(p, "numpy.testing._private.utils", "runstring") == SEV_CRITICAL);
        TAP_CHECK(policy_global_severity(p, "torch.nn.modules.linear", "Linear") == -1);
        TAP_CHECK(policy_global_severity(p, "torch.nn.modules.linear", "Linear.forward") == SEV_HIGH);
        policy_free(p);
}

static void test_evaluate_denylist_mode_flags_only_deny_matches(void) {
        struct policy *p = load_text_ok("{\"pickle\":\"denylist\"}");
        struct scan_report *r = report_new(FMT_PICKLE);
        add_global(r, "sklearn.linear_model", "LogisticRegression", VIA_GLOBAL, NULL);
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_ALLOW);
        TAP_CHECK(r->n_findings == 0);
        add_global(r, "subprocess", "Popen", VIA_INST, NULL);
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
        TAP_CHECK(r->n_findings == 1);
        TAP_CHECK(r->findings[0].severity == SEV_CRITICAL);
        TAP_CHECK_STR(r->findings[0].message, "subprocess:Popen (via INST)");
        free(r);
        policy_free(p);
}

static void test_evaluate_restricted_license_is_denied(void) {
        struct policy *p = load_ok(NULL);
        const char *licenses[] = { "cc-by-nc-4.0", "CC BY-NC 4.0", "cc-by-nc-sa-4.0", "AGPL-3.0",
                                   "Creative Commons Attribution-NonCommercial 4.0", "research-only" };
        for (size_t i = 0; i < sizeof(licenses) / sizeof(licenses[0]); i++) {
                struct scan_report *r = report_new(FMT_UNKNOWN);
                char expected[256];
                set_license(r, licenses[i]);
                TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
                const struct finding *f = find_rule(r, RULE_RESTRICTED_LICENSE);
                TAP_CHECK(f);
                TAP_CHECK(f->severity == SEV_HIGH);
                snprintf(expected, sizeof(expected), "Restricted license detected: '%s'", licenses[i]);
                TAP_CHECK_STR(f->message, expected);
                TAP_CHECK(r->n_findings == 1);
                free(r);
        }
        policy_free(p);
}

static void test_evaluate_permissive_license_is_allowed(void) {
        struct policy *p = load_ok(NULL);
        const char *licenses[] = { "apache-2.0", "MIT", "llama2", "openrail", "other", "cc-by-4.0", "gpl-3.0" };
        for (size_t i = 0; i < sizeof(licenses) / sizeof(licenses[0]); i++) {
                struct scan_report *r = report_new(FMT_UNKNOWN);
                set_license(r, licenses[i]);
                TAP_CHECK(policy_evaluate(p, r) == VERDICT_ALLOW);
                TAP_CHECK(r->n_findings == 0);
                free(r);
        }
        policy_free(p);
}

static void test_evaluate_require_license(void) {
        struct policy *p = load_text_ok("{\"require_license\":true}");
        struct scan_report *r = report_new(FMT_PICKLE);
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
        const struct finding *f = find_rule(r, RULE_MISSING_LICENSE);
        TAP_CHECK(f);
        TAP_CHECK(f->severity == SEV_HIGH);
        free(r);

        /* a license present: no finding */
        r = report_new(FMT_PICKLE);
        set_license(r, "apache-2.0");
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_ALLOW);
        free(r);

        /* an empty license is no license */
        r = report_new(FMT_PICKLE);
        set_license(r, " ");
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
        TAP_CHECK(find_rule(r, RULE_MISSING_LICENSE));
        free(r);

        /* text, empty files and unknown data carry no license metadata */
        enum mg_format none[] = { FMT_TEXT, FMT_EMPTY, FMT_UNKNOWN };
        for (size_t i = 0; i < 3; i++) {
                r = report_new(none[i]);
                TAP_CHECK(policy_evaluate(p, r) == VERDICT_ALLOW);
                TAP_CHECK(r->n_findings == 0);
                free(r);
        }
        policy_free(p);

        /* off by default */
        p = load_ok(NULL);
        r = report_new(FMT_PICKLE);
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_ALLOW);
        free(r);
        policy_free(p);
}

static void test_evaluate_fail_severity_is_the_threshold(void) {
        struct policy *p = load_text_ok("{\"fail_severity\":\"critical\"}");
        struct scan_report *r = report_new(FMT_PICKLE);
        add_global(r, "sklearn.svm", "SVC", VIA_GLOBAL, NULL);
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_ALLOW);
        TAP_CHECK(r->n_findings == 1);   /* the finding is still reported */
        add_global(r, "posix", "system", VIA_GLOBAL, NULL);
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
        free(r);
        policy_free(p);

        p = load_text_ok("{\"fail_severity\":\"info\"}");
        r = report_new(FMT_ZIP);
        report_add_finding(r, RULE_SCAN_ERROR, SEV_INFO, VIA_NONE, NULL, NULL, "note");
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
        free(r);
        policy_free(p);
}

static void test_evaluate_counts_scanner_findings(void) {
        struct policy *p = load_ok(NULL);
        struct scan_report *r = report_new(FMT_PYTORCH_ZIP);
        report_add_finding(r, RULE_ARCHIVE_TAMPERED, SEV_HIGH, VIA_NONE, "x/data.pkl", NULL, "CRC mismatch");
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
        free(r);

        r = report_new(FMT_PYTORCH_ZIP);
        report_add_finding(r, RULE_LFS_POINTER, SEV_MEDIUM, VIA_NONE, NULL, NULL, "pointer");
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_ALLOW);
        free(r);
        policy_free(p);
}

static void test_evaluate_dropped_globals_fail_closed(void) {
        struct policy *p = load_text_ok("{\"pickle\":\"denylist\"}");
        struct scan_report *r = report_new(FMT_PICKLE);
        r->globals_dropped = 3;
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
        TAP_CHECK(find_rule(r, RULE_UNSAFE_IMPORT));
        free(r);
        policy_free(p);
}

static void test_evaluate_possibly_truncated_name_is_never_allowed(void) {
        struct policy *p = load_text_ok("{\"allow_globals\":[\"ultralytics.*\"]}");
        char q[REPORT_NAME_MAX + 64];
        memset(q, 'A', sizeof(q) - 1);
        q[sizeof(q) - 1] = '\0';
        struct scan_report *r = report_new(FMT_PICKLE);
        add_global(r, "ultralytics", q, VIA_STACK_GLOBAL, NULL);   /* truncated by the report */
        add_global(r, "ultralytics", "YOLO", VIA_STACK_GLOBAL, NULL);
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
        TAP_CHECK(r->n_findings == 1);
        TAP_CHECK(r->findings[0].severity == SEV_HIGH);
        free(r);
        policy_free(p);
}

static void test_evaluate_global_without_via_has_plain_message(void) {
        struct policy *p = load_ok(NULL);
        struct scan_report *r = report_new(FMT_PICKLE);
        add_global(r, "webbrowser", "open", VIA_NONE, "a.npz/b.npy");
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
        TAP_CHECK_STR(r->findings[0].message, "webbrowser:open");
        TAP_CHECK(r->findings[0].via == VIA_NONE);
        TAP_CHECK_STR(r->findings[0].member, "a.npz/b.npy");
        free(r);
        policy_free(p);
}

static void test_evaluate_in_audit_mode_still_computes_the_verdict(void) {
        struct policy *p = load_text_ok("{\"mode\":\"audit\"}");
        struct scan_report *r = report_new(FMT_PICKLE);
        add_global(r, "os", "system", VIA_GLOBAL, NULL);
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
        free(r);
        policy_free(p);
}

static void test_evaluate_escaped_global_never_matches_allow(void) {
        struct policy *p = load_ok(NULL);
        struct scan_report *r = report_new(FMT_PICKLE);
        /* "torch\n" escaped by the report as torch\x0a: not the torch module */
        report_add_global(r, (const uint8_t *) "torch\n", 6, (const uint8_t *) "Size", 4, VIA_GLOBAL, NULL);
        TAP_CHECK(policy_evaluate(p, r) == VERDICT_DENY);
        TAP_CHECK(r->findings[0].severity == SEV_HIGH);
        free(r);
        policy_free(p);
}

/* The cases create plain files (and one FIFO) directly in tmpdir, nothing deeper. */
static void remove_tmpdir(void) {
        DIR *d = opendir(tmpdir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        (void) rmdir(tmpdir);
}

int main(void) {
        static const struct tap_case cases[] = {
                TAP_CASE(test_exact_pattern_matches_only_that_global),
                TAP_CASE(test_exact_pattern_with_dotted_qualname_matches_exactly),
                TAP_CASE(test_module_wildcard_matches_simple_names_in_that_module_only),
                TAP_CASE(test_package_wildcard_matches_package_and_submodules),
                TAP_CASE(test_wildcard_never_matches_dotted_qualname),
                TAP_CASE(test_invalid_pattern_never_matches),
                TAP_CASE(test_deny_catches_dotted_qualname_by_first_part),
                TAP_CASE(test_deny_catches_module_reached_through_an_attribute),
                TAP_CASE(test_deny_fails_closed_on_absurdly_dotted_qualname),
                TAP_CASE(test_deny_plain_wildcard_like_allow_grammar),
                TAP_CASE(test_license_match_ignores_case_spaces_and_underscores),
                TAP_CASE(test_license_glob_star_and_question_mark),
                TAP_CASE(test_builtin_restricted_licenses_catch_real_spellings),
                TAP_CASE(test_builtin_policy_has_documented_defaults),
                TAP_CASE(test_builtin_allowlist_is_exact_and_never_denied),
                TAP_CASE(test_builtin_deny_entries_are_critical),
                TAP_CASE(test_builtin_allowlist_covers_torch_weights_only),
                TAP_CASE(test_builtin_json_is_a_valid_policy_file),
                TAP_CASE(test_merge_adds_lists_and_replaces_scalars),
                TAP_CASE(test_merge_adds_restricted_licenses),
                TAP_CASE(test_paths_are_normalised_and_deduplicated),
                TAP_CASE(test_empty_object_is_the_builtin_policy),
                TAP_CASE(test_unknown_key_is_named),
                TAP_CASE(test_unknown_key_with_newline_stays_one_line),
                TAP_CASE(test_bad_enum_value_lists_allowed_values),
                TAP_CASE(test_bad_enum_value_is_escaped_and_cut),
                TAP_CASE(test_wrong_type_names_key_and_expected_type),
                TAP_CASE(test_bad_pattern_names_key_index_and_pattern),
                TAP_CASE(test_bad_path_names_key_index_and_path),
                TAP_CASE(test_bad_license_pattern_is_refused),
                TAP_CASE(test_invalid_json_names_line_and_column),
                TAP_CASE(test_nul_byte_and_nul_escape_are_refused),
                TAP_CASE(test_top_level_must_be_an_object),
                TAP_CASE(test_duplicate_key_is_refused),
                TAP_CASE(test_missing_file_is_named),
                TAP_CASE(test_directory_instead_of_file_is_refused),
                TAP_CASE(test_fifo_is_refused_without_blocking),
                TAP_CASE(test_oversized_file_is_refused),
                TAP_CASE(test_too_many_entries_are_refused),
                TAP_CASE(test_error_buffer_may_be_null),
                TAP_CASE(test_manifest_disagreement_after_a_merge_is_an_error_not_a_double_free),
                TAP_CASE(test_sha256_stable_across_key_and_list_order),
                TAP_CASE(test_sha256_same_when_file_restates_defaults),
                TAP_CASE(test_canonical_json_reloads_to_same_hash),
                TAP_CASE(test_sha256_changes_when_a_value_changes),
                TAP_CASE(test_attestation_keys_are_lists_of_paths_outside_the_hash),
                TAP_CASE(test_evaluate_os_system_is_critical),
                TAP_CASE(test_evaluate_unknown_global_is_high),
                TAP_CASE(test_evaluate_allows_torch_and_numpy_reconstruction),
                TAP_CASE(test_evaluate_dotted_qualname_of_allowed_name_is_not_allowed),
                TAP_CASE(test_evaluate_dotted_alias_of_os_is_critical),
                TAP_CASE(test_evaluate_exact_allow_overrides_wildcard_deny),
                TAP_CASE(test_evaluate_exact_allow_cannot_override_exact_deny),
                TAP_CASE(test_evaluate_exact_deny_removes_default_allow_entry),
                TAP_CASE(test_evaluate_wildcard_allow_does_not_override_deny),
                TAP_CASE(test_evaluate_denylist_mode_flags_only_deny_matches),
                TAP_CASE(test_evaluate_restricted_license_is_denied),
                TAP_CASE(test_evaluate_permissive_license_is_allowed),
                TAP_CASE(test_evaluate_require_license),
                TAP_CASE(test_evaluate_fail_severity_is_the_threshold),
                TAP_CASE(test_evaluate_counts_scanner_findings),
                TAP_CASE(test_evaluate_dropped_globals_fail_closed),
                TAP_CASE(test_evaluate_possibly_truncated_name_is_never_allowed),
                TAP_CASE(test_evaluate_global_without_via_has_plain_message),
                TAP_CASE(test_evaluate_in_audit_mode_still_computes_the_verdict),
                TAP_CASE(test_evaluate_escaped_global_never_matches_allow),
        };
        const char *base = getenv("TMPDIR");
        int r;

        snprintf(tmpdir, sizeof(tmpdir), "%s/test-policy.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 99;
        }
        r = tap_run(cases, sizeof(cases) / sizeof(cases[0]));
        remove_tmpdir();
        return r;
}
