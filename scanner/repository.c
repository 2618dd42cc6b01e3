/* repository.c — the repository a path belongs to and the shard of a file, from
 * the path's bytes alone (see repository.h). Never touches the file system and
 * never allocates: the same answer on every machine that walks the same tree. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repository.h"

uint64_t fnv1a64(const void *data, size_t len) {
        const unsigned char *p = data;
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t i = 0; i < len; i++) {
                h ^= p[i];
                h *= 0x100000001b3ULL;
        }
        return h;
}

/* The part of path below root ("" when path is root itself). */
static const char *path_below(const char *path, const char *root) {
        size_t rl = strlen(root);
        if (strncmp(path, root, rl) != 0)
                return NULL;
        if (path[rl] != '\0' && path[rl] != '/' && !(rl > 0 && root[rl - 1] == '/'))
                return NULL;
        path += rl;
        while (*path == '/')
                path++;
        return path;
}

/* A cache directory name: models--ORG--NAME and its kin. Returns the ORG--NAME
 * part and its length, or NULL; *ret_prefix is what the Hub puts before ORG/NAME
 * in its addresses ("" for a model, "datasets/", "spaces/"), so that a dataset and
 * a model of the same name are two repositories. */
static const char *hf_cache_name(const char *c, size_t len, size_t *ret_len, const char **ret_prefix) {
        static const struct {
                const char *dir, *prefix;
        } kinds[] = { { "models--", "" }, { "datasets--", "datasets/" }, { "spaces--", "spaces/" } };
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
                size_t kl = strlen(kinds[k].dir);
                if (len > kl && strncmp(c, kinds[k].dir, kl) == 0) {
                        *ret_len = len - kl;
                        *ret_prefix = kinds[k].prefix;
                        return c + kl;
                }
        }
        return NULL;
}

bool repository_of(const char *path, const char *root, char *ret, size_t size) {
        const char *best = NULL, *rel, *prefix = "";
        size_t best_len = 0;

        /* A Hugging Face cache, anywhere in the path (the PATH given may be a
         * models--org--name directory itself); the file name does not count. */
        for (const char *c = path; *c;) {
                const char *end = strchr(c, '/');
                if (!end)
                        break;
                size_t n;
                const char *kind;
                const char *name = hf_cache_name(c, (size_t) (end - c), &n, &kind);
                if (name) {
                        best = name;
                        best_len = n;
                        prefix = kind;
                }
                c = end + 1;
        }
        if (best) {
                const char *sep = NULL;
                for (size_t i = 0; i + 1 < best_len; i++)
                        if (best[i] == '-' && best[i + 1] == '-') {
                                sep = best + i;
                                break;
                        }
                if (sep && (sep == best || sep + 2 == best + best_len))
                        sep = NULL;   /* "--name" or "org--": keep it whole */
                size_t pl = strlen(prefix);
                if (pl + best_len + 1 > size)
                        return false;
                memcpy(ret, prefix, pl);
                ret += pl;
                if (sep) {
                        size_t ol = (size_t) (sep - best);
                        memcpy(ret, best, ol);
                        ret[ol] = '/';
                        memcpy(ret + ol + 1, sep + 2, best_len - ol - 2);
                        ret[best_len - 1] = '\0';
                } else {
                        memcpy(ret, best, best_len);
                        ret[best_len] = '\0';
                }
                return true;
        }

        /* root/ORG/NAME/.../file */
        rel = path_below(path, root);
        if (!rel || !*rel)
                return false;
        const char *s1 = strchr(rel, '/');
        if (!s1)
                return false;
        const char *name = s1 + 1;
        while (*name == '/')
                name++;
        const char *s2 = strchr(name, '/');
        if (!s2 || s2 == name)
                return false;
        size_t ol = (size_t) (s1 - rel), nl = (size_t) (s2 - name);
        if (ol + 1 + nl + 1 > size)
                return false;
        memcpy(ret, rel, ol);
        ret[ol] = '/';
        memcpy(ret + ol + 1, name, nl);
        ret[ol + 1 + nl] = '\0';
        return true;
}

unsigned shard_of(const char *path, const char *root, unsigned count) {
        char repo[REPOSITORY_MAX];
        const char *key;

        if (count <= 1)
                return 1;
        if (repository_of(path, root, repo, sizeof(repo)))
                key = repo;
        else {
                key = path_below(path, root);
                if (!key || !*key) {
                        /* A file given directly: its name, so that file arguments spread. */
                        const char *end = path + strlen(path);
                        while (end > path && end[-1] == '/')
                                end--;
                        const char *b = end;
                        while (b > path && b[-1] != '/')
                                b--;
                        return (unsigned) (fnv1a64(b, (size_t) (end - b)) % count) + 1;
                }
        }
        return (unsigned) (fnv1a64(key, strlen(key)) % count) + 1;
}

int shard_parse(const char *arg, unsigned *ret_index, unsigned *ret_count, char *err, size_t errsz) {
        char *end;
        unsigned long i, n;

        if (arg[0] < '0' || arg[0] > '9') {
                snprintf(err, errsz, "expected I/N, e.g. 2/8 for the second of eight shards");
                return -EINVAL;
        }
        errno = 0;
        i = strtoul(arg, &end, 10);
        if (errno || *end != '/' || end[1] < '0' || end[1] > '9') {
                snprintf(err, errsz, "expected I/N, e.g. 2/8 for the second of eight shards");
                return -EINVAL;
        }
        n = strtoul(end + 1, &end, 10);
        if (errno || *end) {
                snprintf(err, errsz, "expected I/N, e.g. 2/8 for the second of eight shards");
                return -EINVAL;
        }
        if (n < 1 || n > SHARD_COUNT_MAX) {
                snprintf(err, errsz, "the number of shards N must be from 1 to %d", SHARD_COUNT_MAX);
                return -EINVAL;
        }
        if (i < 1 || i > n) {
                snprintf(err, errsz, "the shard I must be from 1 to N (%lu); shards are numbered from 1", n);
                return -EINVAL;
        }
        *ret_index = (unsigned) i;
        *ret_count = (unsigned) n;
        return 0;
}
