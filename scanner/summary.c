/* summary.c — the end-of-report summary (see summary.h). Holds counters and two
 * capped tables of names; never a per-file list. Ties in the top lists are broken
 * by name, so the order never depends on the order files were decided in. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "repository.h"
#include "summary.h"

#define TABLE_SLOTS (2 * SUMMARY_DISTINCT_MAX)

void summary_init(struct summary *s) {
        memset(s, 0, sizeof(*s));
}

static void table_free(struct summary_table *t) {
        if (t->slots)
                for (size_t i = 0; i < TABLE_SLOTS; i++)
                        free(t->slots[i].name);
        free(t->slots);
        t->slots = NULL;
}

void summary_free(struct summary *s) {
        table_free(&s->globals);
        table_free(&s->licenses);
        free(s->repo_hashes);
        s->repo_hashes = NULL;
}

/* The entry for name, created when there is room; NULL when the table is full
 * (or memory is). */
static struct summary_entry *table_get(struct summary_table *t, const char *name) {
        size_t i;

        if (!t->slots && !(t->slots = calloc(TABLE_SLOTS, sizeof(*t->slots)))) {
                t->capped = true;
                return NULL;
        }
        for (i = fnv1a64(name, strlen(name)) % TABLE_SLOTS; t->slots[i].name; i = (i + 1) % TABLE_SLOTS)
                if (strcmp(t->slots[i].name, name) == 0)
                        return &t->slots[i];
        if (t->n >= SUMMARY_DISTINCT_MAX || !(t->slots[i].name = strdup(name))) {
                t->capped = true;
                return NULL;
        }
        t->n++;
        return &t->slots[i];
}

static void repo_add(struct summary *s, const char *repository) {
        uint64_t h = fnv1a64(repository, strlen(repository));
        size_t i;

        if (h == 0)
                h = 1;
        if (s->repositories * 2 >= s->repo_cap) {
                size_t cap = s->repo_cap ? s->repo_cap * 2 : 1024;
                uint64_t *nt;
                if (s->repositories >= SUMMARY_REPOSITORIES_MAX || !(nt = calloc(cap, sizeof(*nt)))) {
                        /* Full: only repositories already seen are told apart. */
                        if (!s->repo_cap) {
                                s->repositories_capped = true;
                                return;
                        }
                        for (i = h % s->repo_cap; s->repo_hashes[i]; i = (i + 1) % s->repo_cap)
                                if (s->repo_hashes[i] == h)
                                        return;
                        s->repositories_capped = true;
                        return;
                }
                for (size_t k = 0; k < s->repo_cap; k++)
                        if (s->repo_hashes[k]) {
                                for (i = s->repo_hashes[k] % cap; nt[i]; i = (i + 1) % cap)
                                        ;
                                nt[i] = s->repo_hashes[k];
                        }
                free(s->repo_hashes);
                s->repo_hashes = nt;
                s->repo_cap = cap;
        }
        for (i = h % s->repo_cap; s->repo_hashes[i]; i = (i + 1) % s->repo_cap)
                if (s->repo_hashes[i] == h)
                        return;
        s->repo_hashes[i] = h;
        s->repositories++;
}

void summary_add_file(struct summary *s, bool denied, const char *repository, const struct scan_report *r) {
        bool rules[_RULE_MAX] = { false }, restricted = false;

        s->files++;
        if (denied)
                s->denied++;
        else
                s->allowed++;
        if (repository)
                repo_add(s, repository);
        for (uint32_t i = 0; i < r->n_findings; i++) {
                unsigned rule = r->findings[i].rule < _RULE_MAX ? r->findings[i].rule : RULE_SCAN_ERROR;
                s->by_rule[rule]++;
                rules[rule] = true;
                restricted |= rule == RULE_RESTRICTED_LICENSE;
        }
        if (denied)
                for (int i = 0; i < _RULE_MAX; i++)
                        s->failed_by_rule[i] += rules[i];
        if (r->has_license && (denied || restricted)) {
                struct summary_entry *e = table_get(&s->licenses, r->license);
                if (e) {
                        e->files++;
                        e->restricted |= restricted;
                }
        }
        if (!denied)
                return;
        /* Each global a finding of a denied file names, once per file. */
        for (uint32_t i = 0; i < r->n_findings; i++) {
                const char *g = r->findings[i].global;
                bool seen = !g[0];
                for (uint32_t k = 0; k < i && !seen; k++)
                        seen = strcmp(r->findings[k].global, g) == 0;
                if (!seen) {
                        struct summary_entry *e = table_get(&s->globals, g);
                        if (e)
                                e->files++;
                }
        }
}

static int cmp_entries(const void *a, const void *b) {
        const struct summary_entry *x = *(const struct summary_entry *const *) a;
        const struct summary_entry *y = *(const struct summary_entry *const *) b;
        if (x->files != y->files)
                return x->files > y->files ? -1 : 1;
        return strcmp(x->name, y->name);
}

/* The table's entries, most files first; *ret_n of them (at most `top`). The
 * caller frees the array. */
static const struct summary_entry **table_top(const struct summary_table *t, size_t top, size_t *ret_n) {
        const struct summary_entry **v;
        size_t n = 0;

        *ret_n = 0;
        if (!t->slots || t->n == 0)
                return NULL;
        if (!(v = malloc(t->n * sizeof(*v))))
                return NULL;
        for (size_t i = 0; i < TABLE_SLOTS; i++)
                if (t->slots[i].name)
                        v[n++] = &t->slots[i];
        qsort(v, n, sizeof(*v), cmp_entries);
        *ret_n = n < top ? n : top;
        return v;
}

/* Rules failed files fail on, most files first, then in rule-code order. */
static size_t failed_rules_sorted(const struct summary *s, int order[_RULE_MAX]) {
        size_t n = 0;
        for (int i = 0; i < _RULE_MAX; i++)
                if (s->failed_by_rule[i])
                        order[n++] = i;
        for (size_t i = 1; i < n; i++)
                for (size_t k = i; k > 0 && s->failed_by_rule[order[k]] > s->failed_by_rule[order[k - 1]]; k--) {
                        int t = order[k];
                        order[k] = order[k - 1];
                        order[k - 1] = t;
                }
        return n;
}

/* Percent of failed files, in tenths, rounded half up. */
static unsigned long tenths_of_failures(const struct summary *s, unsigned long files) {
        return s->denied ? (files * 1000 + s->denied / 2) / s->denied : 0;
}

void *summary_json(const struct summary *s) {
        cJSON *j = cJSON_CreateObject(), *by, *fail, *arr;
        const struct summary_entry **v;
        int order[_RULE_MAX];
        size_t n;

        if (!j)
                return NULL;
        cJSON_AddNumberToObject(j, "files", (double) s->files);
        cJSON_AddNumberToObject(j, "allowed", (double) s->allowed);
        cJSON_AddNumberToObject(j, "denied", (double) s->denied);
        by = cJSON_AddObjectToObject(j, "by_rule");
        for (int i = 0; i < _RULE_MAX; i++)
                if (s->by_rule[i])
                        cJSON_AddNumberToObject(by, rule_name(i), (double) s->by_rule[i]);
        cJSON_AddNumberToObject(j, "repositories", (double) s->repositories);
        fail = cJSON_AddObjectToObject(j, "failures_by_rule");
        n = failed_rules_sorted(s, order);
        for (size_t i = 0; i < n; i++) {
                cJSON *x = cJSON_AddObjectToObject(fail, rule_name(order[i]));
                cJSON_AddNumberToObject(x, "files", (double) s->failed_by_rule[order[i]]);
                cJSON_AddNumberToObject(x, "percent", (double) tenths_of_failures(s, s->failed_by_rule[order[i]]) / 10.0);
        }
        arr = cJSON_AddArrayToObject(j, "top_globals");
        v = table_top(&s->globals, SUMMARY_TOP_GLOBALS, &n);
        for (size_t i = 0; i < n; i++) {
                cJSON *x = cJSON_CreateObject();
                cJSON_AddStringToObject(x, "global", v[i]->name);
                cJSON_AddNumberToObject(x, "files", (double) v[i]->files);
                cJSON_AddItemToArray(arr, x);
        }
        free(v);
        arr = cJSON_AddArrayToObject(j, "licenses");
        v = table_top(&s->licenses, SUMMARY_TOP_LICENSES, &n);
        for (size_t i = 0; i < n; i++) {
                cJSON *x = cJSON_CreateObject();
                cJSON_AddStringToObject(x, "license", v[i]->name);
                cJSON_AddNumberToObject(x, "files", (double) v[i]->files);
                cJSON_AddBoolToObject(x, "restricted", v[i]->restricted);
                cJSON_AddItemToArray(arr, x);
        }
        free(v);
        cJSON_AddBoolToObject(j, "tables_capped", s->globals.capped || s->licenses.capped || s->repositories_capped);
        cJSON_AddBoolToObject(j, "interrupted", s->interrupted);
        return j;
}

void summary_print_text(const struct summary *s, FILE *f) {
        const struct summary_entry **v;
        int order[_RULE_MAX];
        size_t n;
        bool first = true;

        fprintf(f, "%lu file%s scanned: %lu allowed, %lu denied", s->files, s->files == 1 ? "" : "s",
                s->allowed, s->denied);
        for (int i = 0; i < _RULE_MAX; i++)
                if (s->by_rule[i]) {
                        fprintf(f, "%s%s %lu", first ? " (" : ", ", rule_name(i), s->by_rule[i]);
                        first = false;
                }
        fputs(first ? "\n" : ")\n", f);
        if (s->repositories)
                fprintf(f, "%s%zu repositor%s scanned\n", s->repositories_capped ? "more than " : "", s->repositories,
                        s->repositories == 1 ? "y" : "ies");
        n = failed_rules_sorted(s, order);
        if (n) {
                fputs("Failures by rule (denied files with a finding of the rule; a file may count under several):\n", f);
                for (size_t i = 0; i < n; i++) {
                        unsigned long t = tenths_of_failures(s, s->failed_by_rule[order[i]]);
                        fprintf(f, "  %s %lu (%lu.%lu%% of failures)\n", rule_name(order[i]),
                                s->failed_by_rule[order[i]], t / 10, t % 10);
                }
        }
        v = table_top(&s->globals, SUMMARY_TOP_GLOBALS, &n);
        if (n) {
                if (s->globals.capped)
                        fprintf(f, "Top offending globals (denied files naming them; more than %d distinct, only the first %d counted):\n",
                                SUMMARY_DISTINCT_MAX, SUMMARY_DISTINCT_MAX);
                else
                        fputs("Top offending globals (denied files naming them):\n", f);
                for (size_t i = 0; i < n; i++)
                        fprintf(f, "  %s %lu\n", v[i]->name, v[i]->files);
        }
        free(v);
        v = table_top(&s->licenses, SUMMARY_TOP_LICENSES, &n);
        if (n) {
                if (s->licenses.capped)
                        fprintf(f, "Licenses among failures (files; more than %d distinct, only the first %d counted):\n",
                                SUMMARY_DISTINCT_MAX, SUMMARY_DISTINCT_MAX);
                else
                        fputs("Licenses among failures (files):\n", f);
                for (size_t i = 0; i < n; i++)
                        fprintf(f, "  %s %lu%s\n", v[i]->name, v[i]->files, v[i]->restricted ? " (restricted)" : "");
        }
        free(v);
        if (s->interrupted)
                fprintf(f, "Interrupted: the scan was stopped early; the %lu file%s above %s those decided before it stopped.\n",
                        s->files, s->files == 1 ? "" : "s", s->files == 1 ? "is" : "are");
}
