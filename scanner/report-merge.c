/* report-merge.c — `modelgate report merge` (see report-merge.h). The reports
 * are untrusted input: size-capped, parsed with cJSON, every value checked
 * against what a scan writes; a report that does not fit is refused, naming it.
 * Files are put back in the walk's order (roots as given, then names component
 * by component) and rendered again through output.c, so every format and the
 * summary come out exactly as one scan of the whole tree would write them. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "output.h"
#include "report-merge.h"
#include "repository.h"
#include "text-codec.h"

#define MERGE_REPORT_MAX ((off_t) 1 << 30)   /* 1 GiB of JSON, ~2 million files; parsed, it takes a few times that */
#define MERGE_PATH_MAX 16384                 /* an escaped path: 4 bytes per raw byte of PATH_MAX */
#define MERGE_ERROR_MAX 2560

struct merge_input {
        const char *name;
        cJSON *doc;
        unsigned shard;
};

struct merge_entry {
        const cJSON *file;
        size_t root;
        char *rel;              /* raw bytes below the root ("" for a file root) */
        size_t input;
};

static int merge_fail(const char *name, const char *what) {
        char esc[MERGE_PATH_MAX];
        report_escape(esc, sizeof(esc), (const uint8_t *) name, strlen(name), NULL);
        fprintf(stderr, "modelgate report merge: %s: %s\n", esc, what);
        return -EINVAL;
}

/* Undoes report_escape(): \xNN back to its byte. Refuses what report_escape()
 * cannot have written (a lone backslash, a NUL, control characters). */
static int unescape(const char *esc, char *raw, size_t size) {
        size_t o = 0;

        if (!report_string_valid(esc))
                return -EINVAL;
        for (const char *p = esc; *p; p++) {
                int hi, lo;
                if (o + 1 >= size)
                        return -ENAMETOOLONG;
                if (*p != '\\') {
                        raw[o++] = *p;
                        continue;
                }
                /* Exactly two hex digits: sscanf("%2x") would take " 4" or "-1". */
                if (p[1] != 'x' || (hi = hex_digit_value((unsigned char) p[2])) < 0 || (lo = hex_digit_value((unsigned char) p[3])) < 0 || (hi | lo) == 0)
                        return -EINVAL;
                raw[o++] = (char) (hi << 4 | lo);
                p += 3;
        }
        raw[o] = '\0';
        return 0;
}

static int read_report(struct merge_input *in) {
        char msg[MERGE_ERROR_MAX];
        struct stat st;
        char *text;
        ssize_t n;
        size_t got = 0;
        int fd = open(in->name, O_RDONLY | O_CLOEXEC | O_NOCTTY);

        if (fd < 0) {
                snprintf(msg, sizeof(msg), "cannot open: %s", strerror(errno));
                return merge_fail(in->name, msg);
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return merge_fail(in->name, "not a regular file");
        }
        if (st.st_size > MERGE_REPORT_MAX) {
                close(fd);
                snprintf(msg, sizeof(msg), "larger than %lld bytes; not a report this merge reads",
                         (long long) MERGE_REPORT_MAX);
                return merge_fail(in->name, msg);
        }
        text = malloc((size_t) st.st_size + 1);
        if (!text) {
                close(fd);
                return merge_fail(in->name, "out of memory");
        }
        while (got < (size_t) st.st_size && (n = read(fd, text + got, (size_t) st.st_size - got)) != 0) {
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        snprintf(msg, sizeof(msg), "cannot read: %s", strerror(errno));
                        free(text);
                        close(fd);
                        return merge_fail(in->name, msg);
                }
                got += (size_t) n;
        }
        close(fd);
        text[got] = '\0';
        in->doc = cJSON_ParseWithLength(text, got);
        if (!in->doc) {
                const char *at = cJSON_GetErrorPtr();
                snprintf(msg, sizeof(msg), "not valid JSON (at byte %lld)",
                         at && at >= text && at <= text + got ? (long long) (at - text) : -1LL);
                free(text);
                return merge_fail(in->name, msg);
        }
        free(text);
        return 0;
}

static const char *get_string(const cJSON *o, const char *key) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
        return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* A number that is a whole count from 0 to 2^53. */
static bool get_count(const cJSON *o, const char *key, uint64_t *ret) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
        if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 9007199254740992.0 ||
            x->valuedouble != (double) (uint64_t) x->valuedouble)
                return false;
        *ret = (uint64_t) x->valuedouble;
        return true;
}

static bool roots_equal(const cJSON *a, const cJSON *b) {
        if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
                return false;
        for (const cJSON *x = a->child, *y = b->child; x && y; x = x->next, y = y->next)
                if (strcmp(x->valuestring, y->valuestring) != 0)
                        return false;
        return true;
}

/* The top level of one report, and its agreement with the first. */
static int check_header(struct merge_input *in, const struct merge_input *first) {
        const cJSON *d = in->doc, *pol, *roots, *shard, *files, *summary;
        char msg[MERGE_ERROR_MAX];
        uint64_t idx, cnt;

        if (!cJSON_IsObject(d) || !get_string(d, "tool") || strcmp(get_string(d, "tool"), "modelgate") != 0)
                return merge_fail(in->name, "not a modelgate report (no \"tool\":\"modelgate\")");
        pol = cJSON_GetObjectItemCaseSensitive(d, "policy");
        if (!get_string(d, "version") || !cJSON_IsObject(pol) || !get_string(pol, "source") || !get_string(pol, "sha256"))
                return merge_fail(in->name, "not a modelgate JSON report (no version or policy)");
        roots = cJSON_GetObjectItemCaseSensitive(d, "roots");
        if (!cJSON_IsArray(roots) || cJSON_GetArraySize(roots) < 1)
                return merge_fail(in->name, "no \"roots\": not written by modelgate scan --format json of this version");
        for (const cJSON *r = roots->child; r; r = r->next)
                if (!cJSON_IsString(r) || !report_string_valid(r->valuestring))
                        return merge_fail(in->name, "\"roots\" holds something other than escaped paths");
        shard = cJSON_GetObjectItemCaseSensitive(d, "shard");
        if (!cJSON_IsObject(shard))
                return merge_fail(in->name, "no \"shard\": not a report of modelgate scan --shard I/N");
        if (!get_count(shard, "index", &idx) || !get_count(shard, "count", &cnt) || cnt < 1 || cnt > SHARD_COUNT_MAX ||
            idx < 1 || idx > cnt)
                return merge_fail(in->name, "\"shard\" is not {\"index\":I,\"count\":N} with 1 <= I <= N");
        in->shard = (unsigned) idx;
        files = cJSON_GetObjectItemCaseSensitive(d, "files");
        summary = cJSON_GetObjectItemCaseSensitive(d, "summary");
        if (!cJSON_IsArray(files) || !cJSON_IsObject(summary))
                return merge_fail(in->name, "no \"files\" array or \"summary\" object (a report cut short?)");
        if (!first)
                return 0;
        if (strcmp(get_string(d, "version"), get_string(first->doc, "version")) != 0) {
                snprintf(msg, sizeof(msg), "written by modelgate %.64s, but %.200s by modelgate %.64s",
                         get_string(d, "version"), first->name, get_string(first->doc, "version"));
                return merge_fail(in->name, msg);
        }
        if (strcmp(get_string(pol, "sha256"), get_string(cJSON_GetObjectItemCaseSensitive(first->doc, "policy"), "sha256")) != 0) {
                snprintf(msg, sizeof(msg), "scanned under another policy than %.200s (policy sha256 differs)", first->name);
                return merge_fail(in->name, msg);
        }
        if (!roots_equal(roots, cJSON_GetObjectItemCaseSensitive(first->doc, "roots"))) {
                snprintf(msg, sizeof(msg), "scanned other PATHs (\"roots\") than %.200s", first->name);
                return merge_fail(in->name, msg);
        }
        get_count(cJSON_GetObjectItemCaseSensitive(first->doc, "shard"), "count", &idx);
        if (cnt != idx) {
                snprintf(msg, sizeof(msg), "is a shard of %llu, but %.200s one of %llu", (unsigned long long) cnt,
                         first->name, (unsigned long long) idx);
                return merge_fail(in->name, msg);
        }
        return 0;
}

/* The root a path was found under (the first that contains it) and the raw
 * path below it. */
static int entry_place(struct merge_entry *e, const cJSON *roots, const char *path) {
        char raw[MERGE_PATH_MAX];
        size_t i = 0;

        for (const cJSON *r = roots->child; r; r = r->next, i++) {
                const char *root = r->valuestring;
                size_t rl = strlen(root);
                if (strncmp(path, root, rl) != 0)
                        continue;
                if (path[rl] != '\0' && path[rl] != '/' && !(rl > 0 && root[rl - 1] == '/'))
                        continue;
                const char *rel = path + rl;
                while (*rel == '/')
                        rel++;
                if (unescape(rel, raw, sizeof(raw)) < 0 || !(e->rel = strdup(raw)))
                        return -EINVAL;
                e->root = i;
                return 0;
        }
        return -ENOENT;
}

/* The walk's order: roots as given; below a root, sorted names at each level,
 * i.e. '/' ranks below every byte a name may hold ("a/x" before "a-b"). */
static int cmp_walk(const struct merge_entry *a, const struct merge_entry *b) {
        const unsigned char *x = (const unsigned char *) a->rel, *y = (const unsigned char *) b->rel;

        if (a->root != b->root)
                return a->root < b->root ? -1 : 1;
        for (;; x++, y++) {
                int cx = *x == '/' ? 0 : *x ? *x + 1 : -1;
                int cy = *y == '/' ? 0 : *y ? *y + 1 : -1;
                if (cx != cy)
                        return cx < cy ? -1 : 1;
                if (cx < 0)
                        return 0;
        }
}

static int cmp_entries(const void *a, const void *b) {
        const struct merge_entry *x = a, *y = b;
        int c = cmp_walk(x, y);
        return c ? c : x->input < y->input ? -1 : x->input > y->input;
}

static bool copy_string(char *dst, size_t size, const char *s) {
        size_t n = strlen(s);
        if (n >= size || !report_string_valid(s))
                return false;
        memcpy(dst, s, n + 1);
        return true;
}

static int name_index(const char *name, const char *(*fn)(int), int max) {
        for (int i = 0; i < max; i++)
                if (fn(i) && strcmp(fn(i), name) == 0)
                        return i;
        return -1;
}

static const char *format_name_i(int i) {
        return format_name((enum mg_format) i);
}

static const char *via_name_i(int i) {
        return via_name((enum mg_via) i);
}

/* A file entry back into the report a scan made of it. Returns NULL when all is
 * well, else what is wrong. */
static const char *file_to_report(const cJSON *f, struct scan_report *r, bool *ret_deny, const char **ret_repo) {
        const cJSON *x, *globals, *findings;
        const char *v, *s;
        uint64_t size;

        report_init(r);
        if (!cJSON_IsObject(f) || !get_string(f, "path"))
                return "a file entry without a path";
        x = cJSON_GetObjectItemCaseSensitive(f, "repository");
        if (cJSON_IsString(x) && report_string_valid(x->valuestring) && strlen(x->valuestring) < 4 * REPOSITORY_MAX)
                *ret_repo = x->valuestring;
        else if (cJSON_IsNull(x))
                *ret_repo = NULL;
        else
                return "\"repository\" is not an escaped string or null";
        v = get_string(f, "verdict");
        if (!v || (strcmp(v, "allow") != 0 && strcmp(v, "deny") != 0))
                return "\"verdict\" is not allow or deny";
        *ret_deny = strcmp(v, "deny") == 0;
        s = get_string(f, "format");
        int fmt = s ? name_index(s, format_name_i, _FMT_MAX) : -1;
        if (fmt < 0)
                return "\"format\" is not a format modelgate names";
        r->format = (uint8_t) fmt;
        if (!get_count(f, "size", &size))
                return "\"size\" is not a byte count";
        r->size = size;
        x = cJSON_GetObjectItemCaseSensitive(f, "sha256");
        if (cJSON_IsString(x)) {
                if (strlen(x->valuestring) != 64 || strspn(x->valuestring, "0123456789abcdef") != 64)
                        return "\"sha256\" is not 64 lowercase hex digits";
                memcpy(r->sha256, x->valuestring, 65);
                r->has_sha256 = true;
        } else if (!cJSON_IsNull(x))
                return "\"sha256\" is not a string or null";
        x = cJSON_GetObjectItemCaseSensitive(f, "license");
        if (cJSON_IsString(x)) {
                if (!copy_string(r->license, sizeof(r->license), x->valuestring))
                        return "\"license\" is too long or not an escaped string";
                r->has_license = true;
        } else if (!cJSON_IsNull(x))
                return "\"license\" is not a string or null";
        globals = cJSON_GetObjectItemCaseSensitive(f, "globals");
        if (!cJSON_IsArray(globals) || cJSON_GetArraySize(globals) > REPORT_GLOBALS_MAX)
                return "\"globals\" is not an array of at most 512 names";
        for (x = globals->child; x; x = x->next) {
                struct report_global *g = &r->globals[r->n_globals];
                const char *colon = cJSON_IsString(x) ? strchr(x->valuestring, ':') : NULL;
                if (!colon || (size_t) (colon - x->valuestring) >= sizeof(g->module))
                        return "a global is not module:qualname";
                memset(g, 0, sizeof(*g));
                memcpy(g->module, x->valuestring, (size_t) (colon - x->valuestring));
                if (!copy_string(g->qualname, sizeof(g->qualname), colon + 1) || !report_string_valid(g->module))
                        return "a global is not module:qualname";
                r->n_globals++;
        }
        findings = cJSON_GetObjectItemCaseSensitive(f, "findings");
        if (!cJSON_IsArray(findings) || cJSON_GetArraySize(findings) > REPORT_FINDINGS_MAX)
                return "\"findings\" is not an array of at most 128 findings";
        for (x = findings->child; x; x = x->next) {
                struct finding *fi = &r->findings[r->n_findings];
                const cJSON *y;
                int k;
                memset(fi, 0, sizeof(*fi));
                if (!cJSON_IsObject(x) || !(s = get_string(x, "rule")) || (k = rule_from_name(s)) < 0)
                        return "a finding's \"rule\" is not a rule code";
                fi->rule = (uint8_t) k;
                if (!(s = get_string(x, "severity")) || (k = severity_from_name(s)) < 0)
                        return "a finding's \"severity\" is not a severity";
                fi->severity = (uint8_t) k;
                if (!(s = get_string(x, "message")) || !copy_string(fi->message, sizeof(fi->message), s))
                        return "a finding's \"message\" is missing or too long";
                y = cJSON_GetObjectItemCaseSensitive(x, "global");
                if (cJSON_IsString(y) ? !copy_string(fi->global, sizeof(fi->global), y->valuestring) : !cJSON_IsNull(y))
                        return "a finding's \"global\" is not a name or null";
                y = cJSON_GetObjectItemCaseSensitive(x, "via");
                if (cJSON_IsString(y)) {
                        if ((k = name_index(y->valuestring, via_name_i, _VIA_MAX)) < 0)
                                return "a finding's \"via\" is not an opcode modelgate names";
                        fi->via = (uint8_t) k;
                } else if (!cJSON_IsNull(y))
                        return "a finding's \"via\" is not a string or null";
                y = cJSON_GetObjectItemCaseSensitive(x, "member");
                if (cJSON_IsString(y) ? !copy_string(fi->member, sizeof(fi->member), y->valuestring) : !cJSON_IsNull(y))
                        return "a finding's \"member\" is not a name or null";
                r->n_findings++;
        }
        return NULL;
}

static int merge_write(FILE *out, enum output_format format, struct merge_input *in, size_t n_in,
                       struct merge_entry *e, size_t n_e, struct scan_report *r, bool *ret_denied) {
        const cJSON *first = in[0].doc, *pol = cJSON_GetObjectItemCaseSensitive(first, "policy");
        const cJSON *roots = cJSON_GetObjectItemCaseSensitive(first, "roots");
        size_t n_roots = (size_t) cJSON_GetArraySize(roots), i = 0;
        char **raw_roots = calloc(n_roots, sizeof(*raw_roots));
        struct output o;
        bool interrupted = false;
        char raw[MERGE_PATH_MAX];

        if (!raw_roots)
                return -ENOMEM;
        for (const cJSON *x = roots->child; x; x = x->next, i++)
                if (unescape(x->valuestring, raw, sizeof(raw)) < 0 || !(raw_roots[i] = strdup(raw))) {
                        for (size_t k = 0; k < i; k++)
                                free(raw_roots[k]);
                        free(raw_roots);
                        return merge_fail(in[0].name, "a root is not an escaped path");
                }
        for (size_t k = 0; k < n_in; k++)
                interrupted |= cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetObjectItemCaseSensitive(in[k].doc, "summary"), "interrupted"));

        const struct output_run run = {
                .version = get_string(first, "version"),
                .policy_source = get_string(pol, "source"),
                .policy_sha256 = get_string(pol, "sha256"),
                .roots = raw_roots, .n_roots = n_roots,
        };
        output_begin_run(&o, out, format, NULL, &run);
        for (i = 0; i < n_e; i++) {
                bool deny;
                const char *repo;
                file_to_report(e[i].file, r, &deny, &repo);   /* checked before */
                unescape(get_string(e[i].file, "path"), raw, sizeof(raw));
                output_file_repo(&o, raw, repo, r, deny ? VERDICT_DENY : VERDICT_ALLOW);
        }
        o.summary.interrupted = interrupted;
        *ret_denied = o.denied > 0;
        output_end(&o);
        for (i = 0; i < n_roots; i++)
                free(raw_roots[i]);
        free(raw_roots);
        return ferror(out) ? -EIO : 0;
}

static int cmd_merge(int argc, char **argv, void (*usage)(FILE *f)) {
        static const struct option opts[] = {
                { "output", required_argument, NULL, 'o' },
                { "format", required_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *out_path = NULL;
        int format = OUTPUT_JSON, c, ret = 2;
        struct merge_input *in = NULL;
        struct merge_entry *e = NULL;
        size_t n_in, n_e = 0, cap_e = 0;
        unsigned *seen = NULL;
        struct scan_report *r = NULL;
        char msg[MERGE_ERROR_MAX], tmp[4096] = "";
        FILE *out = stdout;
        bool denied = false;

        while ((c = getopt_long(argc, argv, "o:f:h", opts, NULL)) != -1) {
                switch (c) {
                case 'o':
                        out_path = optarg;
                        break;
                case 'f':
                        if ((format = output_format_from_name(optarg)) < 0) {
                                fprintf(stderr, "modelgate report merge: --format %s: expected json, text, csv or sarif\n", optarg);
                                return 2;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind >= argc) {
                fputs("modelgate report merge: no REPORT.json given\n", stderr);
                usage(stderr);
                return 2;
        }
        n_in = (size_t) (argc - optind);
        if (n_in > SHARD_COUNT_MAX) {
                fprintf(stderr, "modelgate report merge: more than %d reports\n", SHARD_COUNT_MAX);
                return 2;
        }
        in = calloc(n_in, sizeof(*in));
        r = malloc(sizeof(*r));
        if (!in || !r)
                goto oom;
        for (size_t i = 0; i < n_in; i++) {
                in[i].name = argv[optind + i];
                if (read_report(&in[i]) < 0 || check_header(&in[i], i ? &in[0] : NULL) < 0)
                        goto done;
        }

        /* Every shard exactly once. */
        {
                uint64_t count;
                get_count(cJSON_GetObjectItemCaseSensitive(in[0].doc, "shard"), "count", &count);
                if (!(seen = calloc((size_t) count + 1, sizeof(*seen))))
                        goto oom;
                for (size_t i = 0; i < n_in; i++) {
                        if (seen[in[i].shard]) {
                                snprintf(msg, sizeof(msg), "shard %u/%llu again (also in %.200s)", in[i].shard,
                                         (unsigned long long) count, in[seen[in[i].shard] - 1].name);
                                merge_fail(in[i].name, msg);
                                goto done;
                        }
                        seen[in[i].shard] = (unsigned) i + 1;
                }
                for (unsigned k = 1; k <= count; k++)
                        if (!seen[k]) {
                                fprintf(stderr, "modelgate report merge: shard %u/%llu is missing: give the report of every shard\n",
                                        k, (unsigned long long) count);
                                goto done;
                        }
        }

        /* Every file entry checked and placed before anything is written. */
        for (size_t i = 0; i < n_in; i++) {
                const cJSON *roots = cJSON_GetObjectItemCaseSensitive(in[i].doc, "roots"), *f;
                size_t k = 0;
                cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(in[i].doc, "files")) {
                        bool deny;
                        const char *repo, *why = file_to_report(f, r, &deny, &repo);
                        char raw[MERGE_PATH_MAX];
                        if (!why && unescape(get_string(f, "path"), raw, sizeof(raw)) < 0)
                                why = "a path is not an escaped path";
                        if (why) {
                                snprintf(msg, sizeof(msg), "files[%zu]: %s", k, why);
                                merge_fail(in[i].name, msg);
                                goto done;
                        }
                        if (n_e == cap_e) {
                                size_t nc = cap_e ? cap_e * 2 : 1024;
                                struct merge_entry *ne = realloc(e, nc * sizeof(*e));
                                if (!ne)
                                        goto oom;
                                e = ne;
                                cap_e = nc;
                        }
                        memset(&e[n_e], 0, sizeof(e[n_e]));
                        e[n_e].file = f;
                        e[n_e].input = i;
                        if (entry_place(&e[n_e], roots, get_string(f, "path")) < 0) {
                                snprintf(msg, sizeof(msg), "files[%zu]: the path is under none of the roots", k);
                                merge_fail(in[i].name, msg);
                                goto done;
                        }
                        n_e++;
                        k++;
                }
        }
        if (n_e)
                qsort(e, n_e, sizeof(*e), cmp_entries);
        for (size_t i = 1; i < n_e; i++)
                if (cmp_walk(&e[i - 1], &e[i]) == 0) {
                        snprintf(msg, sizeof(msg), "%.2000s is listed twice (also in %.200s)", get_string(e[i].file, "path"),
                                 in[e[i - 1].input].name);
                        merge_fail(in[e[i].input].name, msg);
                        goto done;
                }

        if (out_path) {
                /* Written beside the target and renamed over it: never a torn report. */
                if ((size_t) snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out_path, (int) getpid()) >= sizeof(tmp) ||
                    !(out = fopen(tmp, "wxe"))) {
                        snprintf(msg, sizeof(msg), "cannot create: %s", strerror(errno ? errno : ENAMETOOLONG));
                        merge_fail(out_path, msg);
                        tmp[0] = '\0';
                        out = stdout;
                        goto done;
                }
        }
        if (merge_write(out, (enum output_format) format, in, n_in, e, n_e, r, &denied) < 0)
                goto done;
        if (out_path) {
                bool ok = fflush(out) == 0 && fsync(fileno(out)) == 0;
                ok &= fclose(out) == 0;
                out = stdout;
                if (!ok || rename(tmp, out_path) < 0) {
                        snprintf(msg, sizeof(msg), "cannot write: %s", strerror(errno ? errno : EIO));
                        merge_fail(out_path, msg);
                        goto done;
                }
                tmp[0] = '\0';
        } else if (fflush(stdout) != 0) {
                fputs("modelgate report merge: cannot write to standard output\n", stderr);
                goto done;
        }
        ret = denied ? 1 : 0;
        goto done;
oom:
        fputs("modelgate report merge: out of memory\n", stderr);
done:
        if (out != stdout)
                fclose(out);
        if (tmp[0])
                unlink(tmp);
        for (size_t i = 0; i < n_e; i++)
                free(e[i].rel);
        free(e);
        free(seen);
        free(r);
        if (in)
                for (size_t i = 0; i < n_in; i++)
                        cJSON_Delete(in[i].doc);
        free(in);
        return ret;
}

int cmd_report(int argc, char **argv, void (*usage)(FILE *f)) {
        if (argc >= 2 && strcmp(argv[1], "merge") == 0)
                return cmd_merge(argc - 1, argv + 1, usage);
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                usage(stdout);
                return 0;
        }
        fprintf(stderr, "modelgate report: %s%s%s\n", argc >= 2 ? "unknown command '" : "expected a command: merge",
                argc >= 2 ? argv[1] : "", argc >= 2 ? "' (expected merge)" : "");
        usage(stderr);
        return 2;
}
