/* policy.h — the policy: the built-in default, a JSON file merged onto it, and
 * evaluate(report) -> verdict. Knows nothing of files or kernels; turns the facts
 * in a scan_report into findings (UNSAFE_IMPORT, licenses) and a verdict. */
#ifndef MODELGATE_POLICY_H
#define MODELGATE_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "report.h"

enum mg_verdict {
        VERDICT_ALLOW,
        VERDICT_DENY,
};

enum policy_mode {
        POLICY_MODE_ENFORCE,
        POLICY_MODE_AUDIT,
};

enum policy_pickle {
        POLICY_PICKLE_ALLOWLIST,
        POLICY_PICKLE_DENYLIST,
};

struct policy;

#define POLICY_ERROR_MAX 512

/* Loads the built-in default, then merges the file at `path` onto it (path NULL:
 * built-in only). On failure returns -errno or -EINVAL and writes a one-line
 * message naming the file, the key and what is wrong into err. *ret is untouched
 * on failure. */
int policy_load(const char *path, struct policy **ret, char *err, size_t errsz);
void policy_free(struct policy *p);

/* "builtin" or the path given to policy_load(). */
const char *policy_source(const struct policy *p);
/* SHA-256 (64 lowercase hex) of the effective, merged policy in canonical form. */
const char *policy_sha256(const struct policy *p);

enum policy_mode policy_mode(const struct policy *p);
enum policy_pickle policy_pickle_mode(const struct policy *p);
enum mg_severity policy_fail_severity(const struct policy *p);
enum mg_verdict policy_on_error(const struct policy *p);
bool policy_require_license(const struct policy *p);
/* The agent may cache allow verdicts as kernel ignore marks (modelgated(8) has the limits). */
bool policy_ignore_marks(const struct policy *p);
/* Every file must have an entry in a manifest (else HASH_MISMATCH, high). */
bool policy_require_manifest(const struct policy *p);
/* Hash every file scanned (its SHA-256 in every report and journal record), not
 * only those with an expected hash. */
bool policy_hash_files(const struct policy *p);
size_t policy_watch_count(const struct policy *p);
const char *policy_watch(const struct policy *p, size_t i);

/* Adds UNSAFE_IMPORT (and license) findings to r from its facts, then decides:
 * deny when any finding's severity reaches fail_severity. In audit mode the
 * verdict is still computed; the caller decides what to do with it. */
enum mg_verdict policy_evaluate(const struct policy *p, struct scan_report *r);

/* Pattern grammar (DESIGN.md): "module:qualname" exact; "pkg.*" = any simple
 * name in pkg or its submodules; "module:*" = any simple name in module. A
 * qualname containing a dot never matches a wildcard. */
bool policy_match_global(const char *pattern, const char *module, const char *qualname);

/* ---- additions to the API above ---- */

/* The built-in default policy as JSON text, in the form a policy file takes: what
 * `modelgate policy show --builtin` prints and /etc/modelgate/policy.json can be
 * generated from. */
const char *policy_builtin_json(void);

/* The effective policy as compact JSON: keys sorted, lists sorted and unique,
 * license patterns and paths normalised. policy_sha256() is the hash of exactly
 * this text. It is also a valid policy file with the same effect on verdicts
 * (attestation_keys and attestations are left out: see below). */
const char *policy_canonical_json(const struct policy *p);

/* Attestations (modelgate-policy(5)): PEM public keys whose signed verdicts the
 * agent trusts, and envelope files or directories of them. Neither is part of
 * policy_canonical_json() nor so of policy_sha256(): they choose which verdicts
 * computed under this hash are trusted, not how a file is judged, and adding an
 * attestation file must not invalidate every statement already signed. */
size_t policy_attestation_key_count(const struct policy *p);
const char *policy_attestation_key(const struct policy *p, size_t i);
size_t policy_attestation_count(const struct policy *p);
const char *policy_attestation(const struct policy *p, size_t i);

/* Manifest paths of the effective policy (absolute, normalised, sorted). */
size_t policy_manifest_count(const struct policy *p);
const char *policy_manifest(const struct policy *p, size_t i);

/* Deny matching. Same grammar as policy_match_global(), but a dotted qualname is
 * not let off by its dot: Python resolves "module:a.b.c" by getattr part by part,
 * so it is also tried as (module, "a") — deny "builtins:getattr" catches
 * "builtins:getattr.__call__" —, as the submodule walk ("module.a", "b"), and as
 * the alias walk ("a", "b"), ("a.b", "c") … — deny "os.*" catches
 * ("torch", "os.system"). A qualname of more than 8 parts always matches. */
bool policy_match_deny(const char *pattern, const char *module, const char *qualname);

/* What the policy makes of one global: -1 when allowed, else the severity of its
 * UNSAFE_IMPORT finding. In order:
 *   1. an exact deny entry equal to module:qualname      -> SEV_CRITICAL
 *   2. an exact allow entry equal to module:qualname     -> allowed
 *      (so an exact allow overrides wildcard deny entries and the dotted walk of
 *      policy_match_deny(), but never an identical exact deny entry; an exact deny
 *      entry in a policy file thus removes a default allow entry)
 *   3. any deny entry matches per policy_match_deny()    -> SEV_CRITICAL
 *   4. pickle: denylist                                  -> allowed
 *   5. any allow entry matches per policy_match_global() -> allowed
 *   6. otherwise                                         -> SEV_HIGH
 * Names long enough to have been truncated by the report are never allowed by
 * an allow entry. */
int policy_global_severity(const struct policy *p, const char *module, const char *qualname);

/* License matching: both sides are normalised (ASCII lowercase, whitespace and
 * '_' become '-', runs of '-' collapse, '-' trimmed at both ends) and the pattern
 * is a glob with '*' and '?'. Strings over 255 bytes once normalised never match. */
bool policy_match_license(const char *pattern, const char *license);
bool policy_license_restricted(const struct policy *p, const char *license);

#endif
