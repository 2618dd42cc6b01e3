/* fuzz-manifest.c — manifests of expected hashes: the Hugging Face tree listing,
 * the model info's siblings, and modelgate's own {"files": …}. A manifest that
 * loads is looked up and checked against a report. */
#include "fuzz.h"
#include "fuzz-tmpfile.h"
#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct manifest_set *s = NULL;
        char err[MANIFEST_ERROR_MAX], key[PATH_MAX];
        const char *path = fuzz_tmp_write("manifest.json", data, size);

        if (manifest_set_new(&s) < 0)
                abort();
        /* Every other input with an explicit root that does not exist (--manifest
         * with a root), the rest relative to the manifest's directory or its "root". */
        if (manifest_set_add(s, path, size & 1 ? "/nonexistent/models" : NULL, err, sizeof(err)) == 0) {
                snprintf(key, sizeof(key), "%s/model.safetensors", fuzz_tmpdir);
                const struct manifest_entry *e = manifest_lookup(s, key);
                if (!e)
                        e = manifest_lookup(s, "/nonexistent/models/model.safetensors");
                (void) manifest_set_covers(s, key);
                (void) manifest_set_is_manifest(s, path);
                if (e) {
                        (void) manifest_hash_flags(e);
                        report_init(&fuzz_report);
                        fuzz_report.size = size;
                        manifest_check(e, &fuzz_report);
                        fuzz_check_report(&fuzz_report);
                }
        } else if (!memchr(err, '\0', sizeof(err)) || !report_string_valid(err))
                abort();   /* the message is printed and logged: one escaped line */
        manifest_set_free(s);
        return 0;
}
