/* manifest.c — loads manifests of expected hashes (the Hub's tree listing, the Hub's
 * model info "siblings", modelgate's own {"files":{…}}) into one table sorted by
 * absolute path, and compares a scan report against an entry. Reads only the
 * manifest files it is given; never the model files themselves. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest.h"
#include "worker-proto.h"

/* Manifests in one directory given as a policy "manifests" entry. */
#define MANIFEST_DIR_FILES_MAX 4096

struct manifest_set {
        struct manifest_entry *entries;
        size_t n, cap;
        char **sources;            /* resolved manifest paths, owned */
        char **roots;              /* resolved roots, one per source */
        size_t n_sources;
};

/* The message names manifest files and entries, which are untrusted bytes (a
 * listing from the Hub, a name with a newline or an escape sequence): it is
 * escaped once here, as report strings are, before any caller prints or logs it. */
static int set_error(char *err, size_t errsz, int r, const char *fmt, ...) {
        char raw[MANIFEST_ERROR_MAX];
        va_list ap;
        if (errsz) {
                va_start(ap, fmt);
                vsnprintf(raw, sizeof(raw), fmt, ap);
                va_end(ap);
                report_escape(err, errsz, (const uint8_t *) raw, strlen(raw), NULL);
        }
        return r;
}

int manifest_set_new(struct manifest_set **ret) {
        struct manifest_set *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

void manifest_set_free(struct manifest_set *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n; i++)
                free(s->entries[i].path);
        for (size_t i = 0; i < s->n_sources; i++) {
                free(s->sources[i]);
                free(s->roots[i]);
        }
        free(s->entries);
        free(s->sources);
        free(s->roots);
        free(s);
}

size_t manifest_set_count(const struct manifest_set *s) {
        return s ? s->n : 0;
}

static int cmp_entry(const void *a, const void *b) {
        return strcmp(((const struct manifest_entry *) a)->path, ((const struct manifest_entry *) b)->path);
}

const struct manifest_entry *manifest_lookup(const struct manifest_set *s, const char *key) {
        struct manifest_entry k = { .path = (char *) key };
        if (!s || s->n == 0)
                return NULL;
        return bsearch(&k, s->entries, s->n, sizeof(k), cmp_entry);
}

static bool path_under(const char *path, const char *root) {
        size_t n = strlen(root);
        if (n == 1 && root[0] == '/')
                return path[0] == '/';
        return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

bool manifest_set_is_manifest(const struct manifest_set *s, const char *abs_path) {
        for (size_t i = 0; s && i < s->n_sources; i++)
                if (strcmp(s->sources[i], abs_path) == 0)
                        return true;
        return false;
}

bool manifest_set_covers(const struct manifest_set *s, const char *abs_path) {
        for (size_t i = 0; s && i < s->n_sources; i++)
                if (path_under(abs_path, s->roots[i]))
                        return true;
        return false;
}

int manifest_path_key(const char *path, char *ret, size_t retsz) {
        char dir[PATH_MAX], resolved[PATH_MAX];
        const char *slash = strrchr(path, '/'), *base;
        size_t dl;

        if (!slash) {
                snprintf(dir, sizeof(dir), ".");
                base = path;
        } else {
                dl = slash == path ? 1 : (size_t) (slash - path);
                if (dl >= sizeof(dir))
                        return -ENAMETOOLONG;
                memcpy(dir, path, dl);
                dir[dl] = '\0';
                base = slash + 1;
        }
        if (!realpath(dir, resolved))
                return -errno;
        if ((size_t) snprintf(ret, retsz, "%s%s%s", resolved, strcmp(resolved, "/") ? "/" : "", base) >= retsz)
                return -ENAMETOOLONG;
        return 0;
}

/* A relative path as a manifest may give it: no leading '/', no empty, "." or
 * ".." component. */
static bool rel_path_ok(const char *rel) {
        const char *p = rel;
        if (!rel[0] || rel[0] == '/')
                return false;
        for (;;) {
                const char *e = strchr(p, '/');
                size_t n = e ? (size_t) (e - p) : strlen(p);
                if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                if (!e)
                        return true;
                p = e + 1;
        }
}

/* Lowercases a hex digest of exactly n digits into out (n + 1 bytes). */
static bool hex_digest(const char *s, size_t n, char *out) {
        if (!s || strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c >= 'A' && c <= 'F')
                        c = (char) (c - 'A' + 'a');
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                        return false;
                out[i] = c;
        }
        out[n] = '\0';
        return true;
}

static bool json_size(const cJSON *v, uint64_t *ret) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 9007199254740992.0 ||
            floor(v->valuedouble) != v->valuedouble)
                return false;
        *ret = (uint64_t) v->valuedouble;
        return true;
}

struct loading {
        struct manifest_set *s;
        const char *source;        /* resolved, owned by s->sources */
        const char *root;
        char *err;
        size_t errsz;
};

static int add_entry_alias(struct loading *l, const struct manifest_entry *e, const char *path) {
        struct manifest_set *s = l->s;
        if (s->n == s->cap) {
                size_t cap = 2 * s->cap;
                struct manifest_entry *n = realloc(s->entries, cap * sizeof(*n));
                if (!n)
                        return set_error(l->err, l->errsz, -ENOMEM, "%s: out of memory", l->source);
                s->entries = n;
                s->cap = cap;
        }
        s->entries[s->n] = *e;
        s->entries[s->n].path = strdup(path);
        if (!s->entries[s->n].path)
                return set_error(l->err, l->errsz, -ENOMEM, "%s: out of memory", l->source);
        s->n++;
        return 0;
}

static int add_entry(struct loading *l, const char *rel, const char *sha256, const char *git_sha1, bool has_size,
                     uint64_t size) {
        struct manifest_set *s = l->s;
        struct manifest_entry e = { .source = l->source, .has_size = has_size, .size = size };
        char joined[PATH_MAX], key[PATH_MAX];

        if (!rel_path_ok(rel))
                return set_error(l->err, l->errsz, -EINVAL, "%s: entry \"%.200s\": a path must be relative, without '.' or '..' components",
                                 l->source, rel);
        if (sha256 && !hex_digest(sha256, 64, e.sha256))
                return set_error(l->err, l->errsz, -EINVAL, "%s: entry \"%.200s\": sha256 is not 64 hex digits", l->source, rel);
        if (git_sha1 && !hex_digest(git_sha1, 40, e.git_sha1))
                return set_error(l->err, l->errsz, -EINVAL, "%s: entry \"%.200s\": git blob id is not 40 hex digits", l->source, rel);
        if (!e.sha256[0] && !e.git_sha1[0])
                return set_error(l->err, l->errsz, -EINVAL, "%s: entry \"%.200s\" gives no hash", l->source, rel);
        if ((size_t) snprintf(joined, sizeof(joined), "%s%s%s", l->root, strcmp(l->root, "/") ? "/" : "", rel) >= sizeof(joined))
                return set_error(l->err, l->errsz, -ENAMETOOLONG, "%s: entry \"%.200s\": path too long", l->source, rel);
        /* Resolve the directories as a walk of the tree will see them; a tree that
         * does not exist yet keeps the plain join. */
        if (manifest_path_key(joined, key, sizeof(key)) < 0)
                snprintf(key, sizeof(key), "%s", joined);

        if (s->n == s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 64;
                struct manifest_entry *n = realloc(s->entries, cap * sizeof(*n));
                if (!n)
                        return set_error(l->err, l->errsz, -ENOMEM, "%s: out of memory", l->source);
                s->entries = n;
                s->cap = cap;
        }
        e.path = strdup(key);
        if (!e.path)
                return set_error(l->err, l->errsz, -ENOMEM, "%s: out of memory", l->source);
        s->entries[s->n++] = e;

        /* When the entry is a symbolic link (a Hugging Face snapshot's links to
         * blobs/), the kernel names the file by its target: modelgated finds the
         * entry under that name too. Resolved now; a link made later is not. */
        char resolved[PATH_MAX];
        if (realpath(joined, resolved) && strcmp(resolved, key) != 0)
                return add_entry_alias(l, &e, resolved);
        return 0;
}

/* [{"type":"file","path":…,"oid":<git sha1>,"size":N,"lfs":{"oid":<sha256>,"size":N}}, …]
 * For an LFS file, "oid" is the id of the pointer, not of the content: only lfs.oid
 * and lfs.size describe the bytes on disk. */
static int load_hub_tree(struct loading *l, const cJSON *arr) {
        const cJSON *it;
        size_t i = 0;

        cJSON_ArrayForEach(it, arr) {
                const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "type"));
                const char *rel = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "path"));
                const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(it, "lfs");
                uint64_t size;
                int r;

                i++;
                if (!cJSON_IsObject(it) || !rel)
                        return set_error(l->err, l->errsz, -EINVAL, "%s: item %zu of the tree listing has no \"path\"", l->source, i);
                if (type && strcmp(type, "file") != 0)
                        continue;   /* "directory" */
                if (cJSON_IsObject(lfs)) {
                        const char *oid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(lfs, "oid"));
                        if (!oid)   /* older listings: lfs.sha256 */
                                oid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(lfs, "sha256"));
                        if (!json_size(cJSON_GetObjectItemCaseSensitive(lfs, "size"), &size))
                                return set_error(l->err, l->errsz, -EINVAL, "%s: \"%.200s\": lfs.size is not a size", l->source, rel);
                        r = add_entry(l, rel, oid ? oid : "", NULL, true, size);
                } else {
                        const char *oid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "oid"));
                        bool has_size = json_size(cJSON_GetObjectItemCaseSensitive(it, "size"), &size);
                        r = add_entry(l, rel, NULL, oid ? oid : "", has_size, has_size ? size : 0);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The model info's "siblings" (with files_metadata): rfilename, blobId, size, lfs. */
static int load_hub_siblings(struct loading *l, const cJSON *arr) {
        const cJSON *it;
        size_t i = 0;

        cJSON_ArrayForEach(it, arr) {
                const char *rel = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "rfilename"));
                const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(it, "lfs");
                uint64_t size;
                int r;

                i++;
                if (!rel)
                        return set_error(l->err, l->errsz, -EINVAL, "%s: sibling %zu has no \"rfilename\"", l->source, i);
                if (cJSON_IsObject(lfs)) {
                        const char *oid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(lfs, "sha256"));
                        if (!json_size(cJSON_GetObjectItemCaseSensitive(lfs, "size"), &size))
                                return set_error(l->err, l->errsz, -EINVAL, "%s: \"%.200s\": lfs.size is not a size", l->source, rel);
                        r = add_entry(l, rel, oid ? oid : "", NULL, true, size);
                } else {
                        const char *oid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "blobId"));
                        bool has_size = json_size(cJSON_GetObjectItemCaseSensitive(it, "size"), &size);
                        if (!oid)
                                continue;   /* a listing without files_metadata: nothing to check */
                        r = add_entry(l, rel, NULL, oid, has_size, has_size ? size : 0);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* modelgate's own: {"root": "/abs" (optional), "files": {"rel": {"sha256", "size", "git_sha1"}}} */
static int load_own(struct loading *l, const cJSON *files) {
        const cJSON *it;

        cJSON_ArrayForEach(it, files) {
                const cJSON *sz = cJSON_GetObjectItemCaseSensitive(it, "size");
                const char *sha = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "sha256"));
                const char *git = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "git_sha1"));
                uint64_t size = 0;
                int r;

                if (!cJSON_IsObject(it))
                        return set_error(l->err, l->errsz, -EINVAL, "%s: files.\"%.200s\" is not an object", l->source, it->string);
                for (const cJSON *k = it->child; k; k = k->next)
                        if (strcmp(k->string, "size") && strcmp(k->string, "sha256") && strcmp(k->string, "git_sha1"))
                                return set_error(l->err, l->errsz, -EINVAL, "%s: files.\"%.200s\": unknown key \"%.60s\"",
                                                 l->source, it->string, k->string);
                if (sz && !json_size(sz, &size))
                        return set_error(l->err, l->errsz, -EINVAL, "%s: files.\"%.200s\": size is not a size", l->source, it->string);
                if ((r = add_entry(l, it->string, sha ? sha : NULL, git ? git : NULL, sz != NULL, size)) < 0)
                        return r;
        }
        return 0;
}

static int read_small_file(const char *path, char **ret, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat st;
        char *buf;
        size_t got = 0;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EINVAL;
        }
        if ((uint64_t) st.st_size > MANIFEST_FILE_MAX) {
                close(fd);
                return -EFBIG;
        }
        buf = malloc((size_t) st.st_size + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        while (got < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t) st.st_size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t) n;
        }
        close(fd);
        buf[got] = '\0';
        *ret = buf;
        *ret_len = got;
        return 0;
}

/* Sorts the table and merges entries for the same file; two that disagree are an
 * error naming both manifests. Whatever it returns, the table stays consistent
 * (each path owned by one entry, n counting them): on a disagreement the later
 * entry is dropped and the merge goes on, so that manifest_set_free() never sees
 * a path freed here, nor one copied down but also left at its old place. */
static int sort_and_merge(struct manifest_set *s, char *err, size_t errsz) {
        size_t out = 0;
        int r = 0;

        /* An empty listing ("[]") leaves entries NULL, which qsort() must not get
         * even with a count of 0 (found by tests/fuzz/fuzz-manifest). */
        if (s->n > 1)
                qsort(s->entries, s->n, sizeof(*s->entries), cmp_entry);
        for (size_t i = 0; i < s->n; i++) {
                struct manifest_entry *e = &s->entries[i];
                if (out > 0 && strcmp(s->entries[out - 1].path, e->path) == 0) {
                        struct manifest_entry *old = &s->entries[out - 1];
                        if ((old->sha256[0] && e->sha256[0] && strcmp(old->sha256, e->sha256) != 0) ||
                            (old->git_sha1[0] && e->git_sha1[0] && strcmp(old->git_sha1, e->git_sha1) != 0) ||
                            (old->has_size && e->has_size && old->size != e->size)) {
                                if (r == 0)
                                        r = set_error(err, errsz, -EINVAL, "%s: the entry for %.200s disagrees with %s",
                                                      e->source, e->path, old->source);
                                free(e->path);
                                continue;
                        }
                        if (!old->sha256[0])
                                memcpy(old->sha256, e->sha256, sizeof(old->sha256));
                        if (!old->git_sha1[0])
                                memcpy(old->git_sha1, e->git_sha1, sizeof(old->git_sha1));
                        if (!old->has_size) {
                                old->has_size = e->has_size;
                                old->size = e->size;
                        }
                        free(e->path);
                        continue;
                }
                s->entries[out++] = *e;
        }
        s->n = out;
        return r;
}

static int add_file(struct manifest_set *s, const char *path, const char *root, char *err, size_t errsz) {
        char resolved[PATH_MAX], rootbuf[PATH_MAX];
        struct loading l = { .s = s, .err = err, .errsz = errsz };
        cJSON *doc = NULL;
        char *text = NULL, **ns, **nr;
        size_t len = 0;
        int r;

        if (!realpath(path, resolved))
                return set_error(err, errsz, -errno, "%s: %s", path, strerror(errno));
        if (manifest_set_is_manifest(s, resolved))
                return 0;
        if ((r = read_small_file(resolved, &text, &len)) < 0)
                return set_error(err, errsz, r, "%s: %s", path,
                                 r == -EFBIG ? "larger than a manifest may be" : r == -EINVAL ? "not a regular file" : strerror(-r));
        doc = cJSON_ParseWithLength(text, len);
        free(text);
        if (!doc)
                return set_error(err, errsz, -EINVAL, "%s: not valid JSON", path);

        const cJSON *files = cJSON_GetObjectItemCaseSensitive(doc, "files");
        const cJSON *siblings = cJSON_GetObjectItemCaseSensitive(doc, "siblings");
        const char *own_root = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "root"));
        if (!cJSON_IsArray(doc) && !cJSON_IsObject(files) && !cJSON_IsArray(siblings)) {
                cJSON_Delete(doc);
                return set_error(err, errsz, -EINVAL,
                                 "%s: neither a Hugging Face tree listing ([{\"path\",\"oid\",…}]) nor a modelgate manifest ({\"files\":{…}})", path);
        }
        if (cJSON_IsObject(files) && own_root && own_root[0] != '/') {
                cJSON_Delete(doc);
                return set_error(err, errsz, -EINVAL, "%s: \"root\" must be an absolute path", path);
        }
        if (!root && cJSON_IsObject(files) && own_root)
                root = own_root;
        if (root) {
                if (!realpath(root, rootbuf))
                        snprintf(rootbuf, sizeof(rootbuf), "%s", root);   /* not there yet: as given */
        } else {
                snprintf(rootbuf, sizeof(rootbuf), "%s", resolved);
                char *slash = strrchr(rootbuf, '/');
                if (slash == rootbuf)
                        slash[1] = '\0';
                else
                        *slash = '\0';
        }

        ns = realloc(s->sources, (s->n_sources + 1) * sizeof(*ns));
        if (ns)
                s->sources = ns;
        nr = realloc(s->roots, (s->n_sources + 1) * sizeof(*nr));
        if (nr)
                s->roots = nr;
        if (!ns || !nr || !(s->sources[s->n_sources] = strdup(resolved)) || !(s->roots[s->n_sources] = strdup(rootbuf))) {
                if (ns && nr && s->sources[s->n_sources])
                        free(s->sources[s->n_sources]);
                cJSON_Delete(doc);
                return set_error(err, errsz, -ENOMEM, "%s: out of memory", path);
        }
        l.source = s->sources[s->n_sources];
        l.root = s->roots[s->n_sources];
        s->n_sources++;

        if (cJSON_IsArray(doc))
                r = load_hub_tree(&l, doc);
        else if (cJSON_IsObject(files))
                r = load_own(&l, files);
        else
                r = load_hub_siblings(&l, siblings);
        cJSON_Delete(doc);
        if (r < 0)
                return r;
        return sort_and_merge(s, err, errsz);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int manifest_set_add(struct manifest_set *s, const char *path, const char *root, char *err, size_t errsz) {
        struct stat st;
        DIR *d;
        struct dirent *de;
        char *names[MANIFEST_DIR_FILES_MAX];
        size_t n = 0;
        int r = 0;

        if (stat(path, &st) < 0)
                return set_error(err, errsz, -errno, "%s: %s", path, strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return add_file(s, path, root, err, errsz);
        d = opendir(path);
        if (!d)
                return set_error(err, errsz, -errno, "%s: %s", path, strerror(errno));
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0 || de->d_name[0] == '.')
                        continue;
                if (n == MANIFEST_DIR_FILES_MAX) {
                        r = set_error(err, errsz, -E2BIG, "%s: more than %d manifests in one directory", path, MANIFEST_DIR_FILES_MAX);
                        break;
                }
                if (asprintf(&names[n], "%s/%s", path, de->d_name) < 0) {
                        r = set_error(err, errsz, -ENOMEM, "%s: out of memory", path);
                        break;
                }
                n++;
        }
        closedir(d);
        qsort(names, n, sizeof(*names), cmp_str);
        for (size_t i = 0; i < n; i++) {
                if (r == 0)
                        r = add_file(s, names[i], root, err, errsz);
                free(names[i]);
        }
        return r;
}

uint32_t manifest_hash_flags(const struct manifest_entry *e) {
        if (!e)
                return 0;
        return e->sha256[0] ? WP_FLAG_SHA256 : e->git_sha1[0] ? WP_FLAG_GIT_SHA1 : 0;
}

static const char *base_name(const char *path) {
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

void manifest_check(const struct manifest_entry *e, struct scan_report *r) {
        const char *kind = e->sha256[0] ? "sha256" : "git blob id";
        const char *want = e->sha256[0] ? e->sha256 : e->git_sha1;
        bool have = e->sha256[0] ? r->has_sha256 : r->has_git_sha1;
        const char *got = e->sha256[0] ? r->sha256 : r->git_sha1;
        char want_size[32] = "", got_size[32];

        if (e->has_size)
                snprintf(want_size, sizeof(want_size), " (%" PRIu64 " bytes)", e->size);
        snprintf(got_size, sizeof(got_size), " (%" PRIu64 " bytes)", r->size);
        if (!have) {
                report_add_finding(r, RULE_HASH_MISMATCH, SEV_CRITICAL, VIA_NONE, NULL, NULL,
                                   "expected %s %s%s per %s, but the file could not be hashed", kind, want, want_size,
                                   base_name(e->source));
                return;
        }
        if (strcmp(want, got) == 0 && (!e->has_size || e->size == r->size))
                return;
        report_add_finding(r, RULE_HASH_MISMATCH, SEV_CRITICAL, VIA_NONE, NULL, NULL,
                           "File differs from %s: expected %s %s%s, got %s%s", base_name(e->source), kind, want,
                           want_size, got, got_size);
}
