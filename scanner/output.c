/* output.c — rendering of decided files. Paths come from the file system and are
 * escaped here (invalid UTF-8 and control characters as \xNN) before any format
 * sees them; report strings are already escaped by report.c. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

#define OUTPUT_PATH_MAX 16384   /* escaped path: 4 bytes per raw byte of PATH_MAX */

static const char *const output_names[] = {
        [OUTPUT_TEXT] = "text", [OUTPUT_JSON] = "json", [OUTPUT_SARIF] = "sarif", [OUTPUT_CSV] = "csv",
};

int output_format_from_name(const char *name) {
        for (size_t i = 0; i < sizeof(output_names) / sizeof(output_names[0]); i++)
                if (strcmp(name, output_names[i]) == 0)
                        return (int) i;
        return -1;
}

static void escape_path(char *dst, size_t size, const char *path) {
        report_escape(dst, size, (const uint8_t *) path, strlen(path), NULL);
}

static void put_json(FILE *f, cJSON *item) {
        char *s = cJSON_PrintUnformatted(item);
        if (s) {
                fputs(s, f);
                free(s);
        } else
                fputs("null", f);
}

static void put_json_string(FILE *f, const char *s) {
        cJSON *j = cJSON_CreateString(s);
        put_json(f, j);
        cJSON_Delete(j);
}

static const char *sarif_level(enum mg_severity s) {
        return s >= SEV_HIGH ? "error" : s == SEV_MEDIUM ? "warning" : "note";
}

/* ,"roots":[...] and ,"shard":{...} when the run has them. */
static void put_run_keys(FILE *f, const struct output_run *run) {
        if (run && run->n_roots) {
                fputs(",\"roots\":[", f);
                for (size_t i = 0; i < run->n_roots; i++) {
                        char esc[OUTPUT_PATH_MAX];
                        escape_path(esc, sizeof(esc), run->roots[i]);
                        fputs(i ? "," : "", f);
                        put_json_string(f, esc);
                }
                fputs("]", f);
        }
        if (run && run->shard_count)
                fprintf(f, ",\"shard\":{\"index\":%u,\"count\":%u}", run->shard_index, run->shard_count);
}

void output_begin(struct output *o, FILE *f, enum output_format format, const struct policy *p) {
        output_begin_run(o, f, format, p, NULL);
}

void output_begin_run(struct output *o, FILE *f, enum output_format format, const struct policy *p,
                      const struct output_run *run) {
        const char *version = run && run->version ? run->version : PACKAGE_VERSION;
        const char *source = run && run->policy_source ? run->policy_source : policy_source(p);
        const char *sha = run && run->policy_sha256 ? run->policy_sha256 : policy_sha256(p);

        memset(o, 0, sizeof(*o));
        o->f = f;
        o->format = format;
        o->policy = p;
        summary_init(&o->summary);

        switch (format) {
        case OUTPUT_JSON:
                fputs("{\"tool\":\"modelgate\",\"version\":", f);
                put_json_string(f, version);
                fputs(",\"policy\":{\"source\":", f);
                put_json_string(f, source);
                fputs(",\"sha256\":", f);
                put_json_string(f, sha);
                fputs("}", f);
                put_run_keys(f, run);
                fputs(",\"files\":[", f);
                break;
        case OUTPUT_SARIF:
                fputs("{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\",\"version\":\"2.1.0\","
                      "\"runs\":[{\"tool\":{\"driver\":{\"name\":\"modelgate\",\"version\":", f);
                put_json_string(f, version);
                fputs(",\"rules\":[", f);
                for (int i = 0; i < _RULE_MAX; i++) {
                        cJSON *rule = cJSON_CreateObject();
                        cJSON_AddStringToObject(rule, "id", rule_name(i));
                        cJSON *sd = cJSON_AddObjectToObject(rule, "shortDescription");
                        cJSON_AddStringToObject(sd, "text", rule_description(i));
                        fputs(i ? "," : "", f);
                        put_json(f, rule);
                        cJSON_Delete(rule);
                }
                fputs("]}},\"properties\":{\"policy\":{\"source\":", f);
                put_json_string(f, source);
                fputs(",\"sha256\":", f);
                put_json_string(f, sha);
                fputs("}", f);
                put_run_keys(f, run);
                fputs("},\"results\":[", f);
                break;
        case OUTPUT_CSV:
                fputs("path,repository,verdict,format,size,sha256,license,rule,severity,global,via,member,message\r\n", f);
                break;
        case OUTPUT_TEXT:
                break;
        }
}

/* A spreadsheet evaluates a cell that starts with = + - or @ as a formula, and
 * these cells carry names a model file chose (globals, members, licenses,
 * paths): that first character is written as its \xNN escape, the one every
 * format already uses, so the value stays exact for a reader that unescapes. */
static void csv_field(FILE *f, const char *s, bool last) {
        bool quote = strpbrk(s, ",\"\r\n") != NULL;
        if (quote)
                fputc('"', f);
        if (*s && strchr("=+-@", *s)) {
                fprintf(f, "\\x%02x", (unsigned char) *s);
                s++;
        }
        for (; *s; s++) {
                if (quote && *s == '"')
                        fputc('"', f);
                fputc(*s, f);
        }
        if (quote)
                fputc('"', f);
        fputs(last ? "\r\n" : ",", f);
}

/* Percent-encodes a path into a relative URI reference for SARIF: from the raw
 * bytes, so that the URI names the file itself (%FF, %0A), not its \xNN escape. */
static void uri_encode(char *dst, size_t size, const char *path) {
        size_t o = 0;
        for (const unsigned char *p = (const unsigned char *) path; *p && o + 4 < size; p++) {
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                    strchr("-._~/", *p))
                        dst[o++] = (char) *p;
                else
                        o += (size_t) snprintf(dst + o, size - o, "%%%02X", *p);
        }
        dst[o] = '\0';
}

static void output_file_json(struct output *o, const char *path, const char *repository,
                             const struct scan_report *r, enum mg_verdict v, const char *source) {
        cJSON *file = cJSON_CreateObject();

        cJSON_AddStringToObject(file, "path", path);
        if (repository)
                cJSON_AddStringToObject(file, "repository", repository);
        else
                cJSON_AddNullToObject(file, "repository");
        cJSON_AddStringToObject(file, "verdict", v == VERDICT_DENY ? "deny" : "allow");
        cJSON_AddStringToObject(file, "format", format_name(r->format));
        cJSON_AddNumberToObject(file, "size", (double) r->size);
        if (r->has_sha256)
                cJSON_AddStringToObject(file, "sha256", r->sha256);
        else
                cJSON_AddNullToObject(file, "sha256");
        if (r->has_license)
                cJSON_AddStringToObject(file, "license", r->license);
        else
                cJSON_AddNullToObject(file, "license");
        cJSON *globals = cJSON_AddArrayToObject(file, "globals");
        for (uint32_t i = 0; i < r->n_globals; i++) {
                char g[2 * REPORT_NAME_MAX + 1];
                bool dup = false;
                snprintf(g, sizeof(g), "%s:%s", r->globals[i].module, r->globals[i].qualname);
                for (uint32_t j = 0; j < i && !dup; j++)
                        dup = strcmp(r->globals[j].module, r->globals[i].module) == 0 &&
                              strcmp(r->globals[j].qualname, r->globals[i].qualname) == 0;
                if (!dup)
                        cJSON_AddItemToArray(globals, cJSON_CreateString(g));
        }
        cJSON *findings = cJSON_AddArrayToObject(file, "findings");
        for (uint32_t i = 0; i < r->n_findings; i++) {
                const struct finding *f = &r->findings[i];
                cJSON *x = cJSON_CreateObject();
                cJSON_AddStringToObject(x, "rule", rule_name(f->rule));
                cJSON_AddStringToObject(x, "severity", severity_name(f->severity));
                cJSON_AddStringToObject(x, "message", f->message);
                if (f->global[0])
                        cJSON_AddStringToObject(x, "global", f->global);
                else
                        cJSON_AddNullToObject(x, "global");
                if (via_name(f->via))
                        cJSON_AddStringToObject(x, "via", via_name(f->via));
                else
                        cJSON_AddNullToObject(x, "via");
                if (f->member[0])
                        cJSON_AddStringToObject(x, "member", f->member);
                else
                        cJSON_AddNullToObject(x, "member");
                cJSON_AddItemToArray(findings, x);
        }
        if (source)
                cJSON_AddStringToObject(file, "source", source);
        fputs(o->written ? "," : "", o->f);
        put_json(o->f, file);
        cJSON_Delete(file);
        o->written++;
}

static void output_file_sarif(struct output *o, const char *raw_path, const char *repository,
                              const struct scan_report *r, enum mg_verdict v) {
        char uri[OUTPUT_PATH_MAX];

        uri_encode(uri, sizeof(uri), raw_path);
        for (uint32_t i = 0; i < r->n_findings; i++) {
                const struct finding *f = &r->findings[i];
                cJSON *res = cJSON_CreateObject();
                cJSON_AddStringToObject(res, "ruleId", rule_name(f->rule));
                cJSON_AddNumberToObject(res, "ruleIndex", f->rule);
                cJSON_AddStringToObject(res, "level", sarif_level(f->severity));
                cJSON *msg = cJSON_AddObjectToObject(res, "message");
                cJSON_AddStringToObject(msg, "text", f->message);
                cJSON *locs = cJSON_AddArrayToObject(res, "locations");
                cJSON *loc = cJSON_CreateObject();
                cJSON *phys = cJSON_AddObjectToObject(loc, "physicalLocation");
                cJSON *art = cJSON_AddObjectToObject(phys, "artifactLocation");
                cJSON_AddStringToObject(art, "uri", uri);
                cJSON_AddItemToArray(locs, loc);
                cJSON *props = cJSON_AddObjectToObject(res, "properties");
                cJSON_AddStringToObject(props, "severity", severity_name(f->severity));
                cJSON_AddStringToObject(props, "verdict", v == VERDICT_DENY ? "deny" : "allow");
                cJSON_AddStringToObject(props, "format", format_name(r->format));
                if (repository)
                        cJSON_AddStringToObject(props, "repository", repository);
                if (r->has_license)
                        cJSON_AddStringToObject(props, "license", r->license);
                if (f->global[0])
                        cJSON_AddStringToObject(props, "global", f->global);
                if (via_name(f->via))
                        cJSON_AddStringToObject(props, "via", via_name(f->via));
                if (f->member[0])
                        cJSON_AddStringToObject(props, "member", f->member);
                fputs(o->written ? "," : "", o->f);
                put_json(o->f, res);
                cJSON_Delete(res);
                o->written++;
        }
}

static void output_file_csv(struct output *o, const char *path, const char *repository,
                            const struct scan_report *r, enum mg_verdict v) {
        char size[32];

        snprintf(size, sizeof(size), "%llu", (unsigned long long) r->size);
        for (uint32_t i = 0; i < (r->n_findings ? r->n_findings : 1); i++) {
                const struct finding *f = r->n_findings ? &r->findings[i] : NULL;
                csv_field(o->f, path, false);
                csv_field(o->f, repository ? repository : "", false);
                csv_field(o->f, v == VERDICT_DENY ? "deny" : "allow", false);
                csv_field(o->f, format_name(r->format), false);
                csv_field(o->f, size, false);
                csv_field(o->f, r->has_sha256 ? r->sha256 : "", false);
                csv_field(o->f, r->has_license ? r->license : "", false);
                csv_field(o->f, f ? rule_name(f->rule) : "", false);
                csv_field(o->f, f ? severity_name(f->severity) : "", false);
                csv_field(o->f, f ? f->global : "", false);
                csv_field(o->f, f && via_name(f->via) ? via_name(f->via) : "", false);
                csv_field(o->f, f ? f->member : "", false);
                csv_field(o->f, f ? f->message : "", true);
        }
}

static void output_file_text(struct output *o, const char *path, const struct scan_report *r, enum mg_verdict v) {
        fprintf(o->f, "%s: %s %s", path, v == VERDICT_DENY ? "DENY" : "ALLOW", format_name(r->format));
        if (r->has_license)
                fprintf(o->f, ", license %s", r->license);
        fputc('\n', o->f);
        for (uint32_t i = 0; i < r->n_findings; i++) {
                const struct finding *f = &r->findings[i];
                fprintf(o->f, "%s: %s %s: %s", path, severity_name_upper(f->severity), rule_name(f->rule), f->message);
                if (f->member[0])
                        fprintf(o->f, " [%s]", f->member);
                if (r->has_license)
                        fprintf(o->f, " (license %s)", r->license);
                fputc('\n', o->f);
        }
}

void output_file(struct output *o, const char *raw_path, const struct scan_report *r, enum mg_verdict v) {
        output_file_repo(o, raw_path, NULL, r, v);
}

void output_file_repo(struct output *o, const char *raw_path, const char *repository, const struct scan_report *r,
                      enum mg_verdict v) {
        output_file_from(o, raw_path, repository, r, v, NULL);
}

void output_file_from(struct output *o, const char *raw_path, const char *repository, const struct scan_report *r,
                      enum mg_verdict v, const char *source) {
        char path[OUTPUT_PATH_MAX];

        escape_path(path, sizeof(path), raw_path);
        o->files++;
        if (v == VERDICT_DENY)
                o->denied++;
        else
                o->allowed++;
        for (uint32_t i = 0; i < r->n_findings; i++)
                o->by_rule[r->findings[i].rule < _RULE_MAX ? r->findings[i].rule : RULE_SCAN_ERROR]++;
        summary_add_file(&o->summary, v == VERDICT_DENY, repository, r);

        switch (o->format) {
        case OUTPUT_JSON:
                output_file_json(o, path, repository, r, v, source);
                break;
        case OUTPUT_SARIF:
                output_file_sarif(o, raw_path, repository, r, v);
                break;
        case OUTPUT_CSV:
                output_file_csv(o, path, repository, r, v);
                break;
        case OUTPUT_TEXT:
                output_file_text(o, path, r, v);
                break;
        }
}

void output_end(struct output *o) {
        switch (o->format) {
        case OUTPUT_JSON: {
                cJSON *summary = summary_json(&o->summary);
                fputs("],\"summary\":", o->f);
                put_json(o->f, summary);
                fputs("}\n", o->f);
                cJSON_Delete(summary);
                break;
        }
        case OUTPUT_SARIF: {
                fputs("],\"properties\":{\"summary\":", o->f);
                cJSON *summary = cJSON_CreateObject();
                cJSON_AddNumberToObject(summary, "files", (double) o->files);
                cJSON_AddNumberToObject(summary, "allowed", (double) o->allowed);
                cJSON_AddNumberToObject(summary, "denied", (double) o->denied);
                cJSON_AddBoolToObject(summary, "interrupted", o->summary.interrupted);
                put_json(o->f, summary);
                cJSON_Delete(summary);
                fputs("}}]}\n", o->f);
                break;
        }
        case OUTPUT_TEXT:
                summary_print_text(&o->summary, o->f);
                break;
        case OUTPUT_CSV:
                break;
        }
        fflush(o->f);
        summary_free(&o->summary);
}
