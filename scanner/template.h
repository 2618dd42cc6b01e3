/* template.h — Jinja2 chat templates (GGUF tokenizer.chat_template, a
 * tokenizer_config.json "chat_template", standalone .jinja files): finds the
 * constructs that reach Python internals from a template (server-side template
 * injection, llama-cpp-python CVE-2024-34359) and reports TEMPLATE_INJECTION. */
#ifndef MODELGATE_TEMPLATE_H
#define MODELGATE_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan.h"

struct json_value;

/* Checks the template text [text, text+len) (UTF-8, not NUL-terminated). `where`
 * names it in messages ("tokenizer.chat_template", "chat_template.tool_use").
 * Adds findings to ctx; returns true when at least one was made. */
bool template_check(struct scan_ctx *ctx, const char *where, const uint8_t *text, size_t len);

/* True when Jinja2 would compile text as a template: no error it raises at compile
 * time (unterminated or empty blocks, unknown tags, characters it has no token
 * for, mismatched brackets) is present. Text that does not compile never renders,
 * so a text file is checked as a template only when this holds. */
bool template_compiles(const uint8_t *text, size_t len);

/* True when text contains Jinja2 syntax at all ("{{", "{%" or "{#"): how a plain
 * text file is recognised as a template worth checking. */
bool template_sniff(const uint8_t *text, size_t len);

/* A parsed tokenizer_config.json (or chat_template.json): checks "chat_template"
 * when it is a string, and each {"name": ..., "template": ...} when it is a list
 * (transformers' named templates), as "chat_template" / "chat_template.<name>".
 * Every member named chat_template is checked, not only the last one. */
void template_check_tokenizer_config(struct scan_ctx *ctx, const struct json_value *root);

#endif
