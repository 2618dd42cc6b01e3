/* test-pickle.c — the pickle VM on hand-assembled streams: every way of reaching an
 * import that THREATS.md lists, the obfuscations, the limits, and the multi-stream
 * layouts (legacy torch, joblib). Each case names the behaviour it checks. */
#include <stdlib.h>
#include <string.h>

#include "pickle.h"
#include "policy.h"
#include "report.h"
#include "scan.h"
#include "tap.h"

static struct scan_report *scan_bytes(const void *buf, size_t len) {
        struct scan_report *r = malloc(sizeof(*r));
        TAP_CHECK(r);
        report_init(r);
        scan_buffer(r, buf, len);
        return r;
}

#define SCAN(lit) scan_bytes(lit, sizeof(lit) - 1)

static bool has_global(const struct scan_report *r, const char *name, enum mg_via via) {
        for (uint32_t i = 0; i < r->n_globals; i++) {
                char g[2 * REPORT_NAME_MAX + 1];
                snprintf(g, sizeof(g), "%s:%s", r->globals[i].module, r->globals[i].qualname);
                if (strcmp(g, name) == 0 && (via == VIA_NONE || r->globals[i].via == via))
                        return true;
        }
        return false;
}

static const struct finding *find_rule(const struct scan_report *r, enum mg_rule rule) {
        for (uint32_t i = 0; i < r->n_findings; i++)
                if (r->findings[i].rule == rule)
                        return &r->findings[i];
        return NULL;
}

static void dump(const struct scan_report *r) {
        fprintf(stderr, "# format %s, %u globals, %u findings\n", format_name(r->format), r->n_globals, r->n_findings);
        for (uint32_t i = 0; i < r->n_globals; i++)
                fprintf(stderr, "#   global %s:%s via %s member '%s'\n", r->globals[i].module, r->globals[i].qualname,
                        via_name(r->globals[i].via), r->globals[i].member);
        for (uint32_t i = 0; i < r->n_findings; i++)
                fprintf(stderr, "#   %s %s: %s [%s]\n", severity_name(r->findings[i].severity),
                        rule_name(r->findings[i].rule), r->findings[i].message, r->findings[i].member);
}

#define EXPECT(cond, r) do { if (!(cond)) { dump(r); TAP_CHECK(cond); } } while (0)

static void protocol0_global_reduce_is_seen(void) {
        struct scan_report *r = SCAN("cos\nsystem\n(S'true'\ntR.");
        EXPECT(r->format == FMT_PICKLE, r);
        EXPECT(has_global(r, "os:system", VIA_GLOBAL), r);
        EXPECT(r->n_findings == 0, r);
}

static void protocol2_python2_names_are_mapped(void) {
        struct scan_report *r = SCAN("\x80\x02" "c__builtin__\neval\nq\x00X\x04\x00\x00\x00" "1+1q\x01\x85q\x02Rq\x03.");
        EXPECT(has_global(r, "builtins:eval", VIA_GLOBAL), r);
        EXPECT(!has_global(r, "__builtin__:eval", VIA_NONE), r);
}

static void protocol3_names_are_not_mapped(void) {
        struct scan_report *r = SCAN("\x80\x03" "c__builtin__\neval\nq\x00.");
        EXPECT(has_global(r, "__builtin__:eval", VIA_GLOBAL), r);
}

static void stack_global_through_memo(void) {
        struct scan_report *r = SCAN("\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93\x94\x8c\x04true\x85R.");
        EXPECT(has_global(r, "os:system", VIA_STACK_GLOBAL), r);
        EXPECT(!find_rule(r, RULE_PICKLE_OBFUSCATION), r);
}

static void stack_global_with_decoys_pushed_and_popped(void) {
        struct scan_report *r = SCAN("\x80\x04\x8c\x05torch\x8c\x04Size0\x8c\x02os\x8c\x05" "decoy0\x8c\x06system\x93N\x85R.");
        EXPECT(has_global(r, "os:system", VIA_STACK_GLOBAL), r);
        EXPECT(!has_global(r, "torch:Size", VIA_NONE), r);
}

static void stack_global_with_bytes_typed_strings(void) {
        struct scan_report *r = SCAN("\x80\x04U\x02osT\x06\x00\x00\x00system\x93N\x85R.");
        EXPECT(has_global(r, "os:system", VIA_STACK_GLOBAL), r);
}

static void stack_global_with_computed_operand_is_obfuscation(void) {
        /* module name computed by a call: builtins.str("os") */
        struct scan_report *r = SCAN("\x80\x04\x8c\x08" "builtins\x8c\x03str\x93\x8c\x02os\x85R\x8c\x06system\x93N\x85R.");
        EXPECT(find_rule(r, RULE_PICKLE_OBFUSCATION), r);
        EXPECT(has_global(r, "builtins:str", VIA_STACK_GLOBAL), r);
}

static void dotted_qualname_is_obfuscation(void) {
        const struct finding *f;
        struct scan_report *r = SCAN("\x80\x04\x8c\x05torch\x8c\x09os.system\x93N\x85R.");
        EXPECT((f = find_rule(r, RULE_PICKLE_OBFUSCATION)) && strcmp(f->global, "torch:os.system") == 0, r);
        EXPECT(has_global(r, "torch:os.system", VIA_STACK_GLOBAL), r);
}

static void build_on_imported_object_is_obfuscation(void) {
        /* setattr(collections.OrderedDict, "x", 1) via BUILD (None, {"x": 1}) */
        struct scan_report *r = SCAN("\x80\x04\x8c\x0b" "collections\x8c\x0bOrderedDict\x93N}\x8c\x01xK\x01s\x86" "b.");
        const struct finding *f = find_rule(r, RULE_PICKLE_OBFUSCATION);
        EXPECT(f && strcmp(f->global, "collections:OrderedDict") == 0, r);
}

static void ext_codes_are_obfuscation(void) {
        struct scan_report *r = SCAN("\x80\x02\x82\x05N\x85R.");
        const struct finding *f = find_rule(r, RULE_PICKLE_OBFUSCATION);
        EXPECT(f && f->via == VIA_EXT1, r);
        r = SCAN("\x80\x02\x83\x05\x01N\x85R.");
        EXPECT((f = find_rule(r, RULE_PICKLE_OBFUSCATION)) && f->via == VIA_EXT2, r);
        r = SCAN("\x80\x02\x84\x05\x01\x00\x00N\x85R.");
        EXPECT((f = find_rule(r, RULE_PICKLE_OBFUSCATION)) && f->via == VIA_EXT4, r);
}

static void payload_then_garbage_keeps_findings_and_is_malformed(void) {
        struct scan_report *r = SCAN("\x80\x02" "cos\nsystem\nX\x04\x00\x00\x00true\x85R\xff\xff\xff");
        EXPECT(has_global(r, "os:system", VIA_GLOBAL), r);
        const struct finding *f = find_rule(r, RULE_MALFORMED);
        EXPECT(f && f->severity == SEV_HIGH, r);
}

static void second_stream_is_scanned(void) {
        struct scan_report *r = SCAN("\x80\x02K\x01.\x80\x02" "cos\nsystem\nX\x04\x00\x00\x00true\x85R.");
        EXPECT(has_global(r, "os:system", VIA_GLOBAL), r);
        EXPECT(!find_rule(r, RULE_MALFORMED), r);
}

static void trailing_non_pickle_bytes_are_low_malformed(void) {
        struct scan_report *r = SCAN("\x80\x02K\x01.\x00\x00\x00\x00garbage");
        const struct finding *f = find_rule(r, RULE_MALFORMED);
        EXPECT(f && f->severity == SEV_LOW, r);
}

static void frame_straddle_is_obfuscation_and_both_readings_are_scanned(void) {
        /* A 4-byte FRAME holds "\x8c\x0a" "AB"; the 10-byte string runs past it.
         * In memory the string is "AB12345678" and "C\x0c" then swallows the
         * GLOBAL; a reader that drops the frame's tail reads "12345678C\x0c" and
         * then executes the GLOBAL. */
        static const char s[] = "\x80\x04\x95\x04\x00\x00\x00\x00\x00\x00\x00"
                                "\x8c\x0a" "AB" "12345678" "C\x0c" "cos\nsystem\n" "0" ".";
        struct scan_report *r = scan_bytes(s, sizeof(s) - 1);
        EXPECT(find_rule(r, RULE_PICKLE_OBFUSCATION), r);
        EXPECT(has_global(r, "os:system", VIA_GLOBAL), r);
}

static void raw_nested_pickle_is_scanned_as_member(void) {
        /* pickle.loads(b"<inner>") with inner = os.system pickle */
        static const char s[] = "\x80\x04\x8c\x06pickle\x8c\x05loads\x93"
                                "C\x19\x80\x02" "cos\nsystem\nX\x04\x00\x00\x00true\x85R." "\x85R.";
        struct scan_report *r = scan_bytes(s, sizeof(s) - 1);
        EXPECT(has_global(r, "pickle:loads", VIA_STACK_GLOBAL), r);
        EXPECT(find_rule(r, RULE_NESTED_PICKLE), r);
        EXPECT(has_global(r, "os:system", VIA_GLOBAL), r);
        bool member = false;
        for (uint32_t i = 0; i < r->n_globals; i++)
                if (strcmp(r->globals[i].qualname, "system") == 0 && strncmp(r->globals[i].member, "embedded@", 9) == 0)
                        member = true;
        EXPECT(member, r);
}

static void base64_encoded_nested_pickle_is_decoded(void) {
        /* pickle.loads(base64.b64decode("<b64 of inner>")) */
        static const char s[] = "\x80\x04\x8c\x06pickle\x8c\x05loads\x93"
                                "\x8c\x06" "base64\x8c\x09" "b64decode\x93"
                                "\x8c\x24" "gAJjb3MKc3lzdGVtClgEAAAAdHJ1ZYVSLg=="
                                "\x85R\x85R.";
        struct scan_report *r = scan_bytes(s, sizeof(s) - 1);
        EXPECT(find_rule(r, RULE_NESTED_PICKLE), r);
        EXPECT(has_global(r, "os:system", VIA_GLOBAL), r);
}

static void raw_unicode_escape_names_are_decoded(void) {
        struct scan_report *r = SCAN("\x80\x04Vo\\u0073\nVsy\\u0073tem\n\x93N\x85R.");
        EXPECT(has_global(r, "os:system", VIA_STACK_GLOBAL), r);
}

static void string_escapes_are_decoded(void) {
        struct scan_report *r = SCAN("\x80\x04S'\\x6fs'\nS'sys\\164em'\n\x93N\x85R.");
        EXPECT(has_global(r, "os:system", VIA_STACK_GLOBAL), r);
}

static void int_arguments_in_other_bases_do_not_hide_what_follows(void) {
        /* pickle.loads runs this: INT takes "0x10" (base 0), PUT takes "1_0". */
        struct scan_report *r = SCAN("I0x10\n0cos\ngetcwd\n)R.");
        EXPECT(r->format == FMT_PICKLE && has_global(r, "os:getcwd", VIA_GLOBAL), r);
        r = SCAN("\x80\x02L0o17L\np1_0\n0cos\ngetcwd\n)R.");
        EXPECT(has_global(r, "os:getcwd", VIA_GLOBAL), r);
}

static void inst_and_obj_are_recorded(void) {
        struct scan_report *r = SCAN("(S'true'\nios\nsystem\n.");
        EXPECT(has_global(r, "os:system", VIA_INST), r);
        r = SCAN("\x80\x02(cos\nsystem\nX\x04\x00\x00\x00trueo.");
        EXPECT(has_global(r, "os:system", VIA_GLOBAL), r);
        EXPECT(!find_rule(r, RULE_MALFORMED), r);
}

static void memo_limit_is_a_finding(void) {
        struct scan_report *r = SCAN("\x80\x02Nr\xff\xff\xff\xff.");
        const struct finding *f = find_rule(r, RULE_SCAN_ERROR);
        EXPECT(f && f->severity == SEV_HIGH, r);
}

static void stack_limit_is_a_finding(void) {
        size_t n = (1u << 21) + 3;
        char *b = malloc(n);
        TAP_CHECK(b);
        b[0] = (char) 0x80;
        b[1] = 2;
        memset(b + 2, 'N', n - 3);
        b[n - 1] = '.';
        struct scan_report *r = scan_bytes(b, n);
        EXPECT(find_rule(r, RULE_SCAN_ERROR), r);
}

static void stack_underflow_below_mark_is_malformed(void) {
        /* POP right after MARK pops the mark (CPython's split stacks), then N: valid */
        struct scan_report *r = SCAN("\x80\x02N(0" "0N.");
        EXPECT(!find_rule(r, RULE_MALFORMED), r);
        /* REDUCE cannot reach N below the mark fence */
        r = SCAN("\x80\x02N(R.");
        EXPECT(find_rule(r, RULE_MALFORMED), r);
}

static void headerless_protocol0_is_sniffed_and_text_is_not(void) {
        TAP_CHECK(pickle_sniff((const uint8_t *) "(lp0\nI1\naI2\na.", 14));
        TAP_CHECK(pickle_sniff((const uint8_t *) "cos\nsystem\n(S'x'\ntR\xff", 20));
        TAP_CHECK(!pickle_sniff((const uint8_t *) "Hello world, this is a README.\n", 31));
        TAP_CHECK(!pickle_sniff((const uint8_t *) "cd build\nmake install\n", 22));
        /* A Type 1 font (PFB) starts with 0x80 0x01 and a segment length. */
        TAP_CHECK(!pickle_sniff((const uint8_t *) "\x80\x01\xc9\x17\x00\x00%!PS-AdobeFont", 22));
        /* A truncated pickle that made progress is still a pickle (MALFORMED). */
        TAP_CHECK(pickle_sniff((const uint8_t *) "\x80\x02]q\x00(K\x01K\x02", 11));
        struct scan_report *r = SCAN("This model is licensed under Apache-2.0.\n");
        EXPECT(r->format == FMT_TEXT, r);
}

static void legacy_torch_streams_then_raw_storage(void) {
        static const char s[] =
                "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."   /* magic */
                "\x80\x02M\xe9\x03."                                         /* protocol 1001 */
                "\x80\x02}q\x00."                                            /* sys_info */
                "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\nq\x00N\x85R."   /* data */
                "\x80\x02]q\x00X\x01\x00\x00\x00" "0a."                          /* keys */
                "\x80\x00\x00\x00\x00\x00\x00\x00" "cos\nsystem\n";          /* storage bytes */
        struct scan_report *r = scan_bytes(s, sizeof(s) - 1);
        EXPECT(r->format == FMT_PYTORCH_LEGACY, r);
        EXPECT(has_global(r, "torch._utils:_rebuild_tensor_v2", VIA_GLOBAL), r);
        EXPECT(!has_global(r, "os:system", VIA_NONE), r);
        EXPECT(r->n_findings == 0, r);
}

static void joblib_array_bytes_are_skipped(void) {
        /* joblib 1.2 layout: wrapper, BUILD, padding byte + pad, 12 raw bytes that
         * happen to spell opcodes, then the rest of the pickle with a payload. */
        static const char s[] =
                "\x80\x04\x95\xd1\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01" "a\x94\x8c\x13joblib.numpy_pickle\x94"
                "\x8c\x11NumpyArrayWrapper\x94\x93\x94)\x81\x94}\x94(\x8c\x08subclass\x94\x8c\x05numpy\x94"
                "\x8c\x07ndarray\x94\x93\x94\x8c\x05shape\x94K\x03\x85\x94\x8c\x05order\x94\x8c\x01" "C\x94"
                "\x8c\x05" "dtype\x94h\x08h\x0f\x93\x94\x8c\x02" "f4\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01<\x94"
                "NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94" "b\x8c\nallow_mmap\x94\x88\x8c\x1bnumpy_array_alignment_bytes"
                "\x94K\x10ub" "\x03\xff\xff\xff" "cos\nsystem\n" "\x00" "s.";
        struct scan_report *r = scan_bytes(s, sizeof(s) - 1);
        EXPECT(r->format == FMT_JOBLIB, r);
        EXPECT(has_global(r, "joblib.numpy_pickle:NumpyArrayWrapper", VIA_STACK_GLOBAL), r);
        EXPECT(has_global(r, "numpy:dtype", VIA_STACK_GLOBAL), r);
        EXPECT(!has_global(r, "os:system", VIA_NONE), r);
        EXPECT(!find_rule(r, RULE_MALFORMED), r);
}

static void findings_overflow_keeps_most_severe(void) {
        struct scan_report *r = malloc(sizeof(*r));
        TAP_CHECK(r);
        report_init(r);
        for (int i = 0; i < REPORT_FINDINGS_MAX + 10; i++)
                report_add_finding(r, RULE_MALFORMED, SEV_LOW, VIA_NONE, NULL, NULL, "low %d", i);
        report_add_finding(r, RULE_UNSAFE_IMPORT, SEV_CRITICAL, VIA_NONE, NULL, "os:system", "crit");
        TAP_CHECK(r->n_findings == REPORT_FINDINGS_MAX);
        TAP_CHECK(report_worst_severity(r) == SEV_CRITICAL);
        TAP_CHECK(r->findings_dropped == 11);
}

static void names_are_escaped(void) {
        struct scan_report *r = SCAN("\x80\x04\x8c\x04o s\n\x8c\x03" "a:b\x93.");
        EXPECT(has_global(r, "o\\x20s\\x0a:a\\x3ab", VIA_STACK_GLOBAL), r);
}

TAP_MAIN(
        TAP_CASE(protocol0_global_reduce_is_seen),
        TAP_CASE(protocol2_python2_names_are_mapped),
        TAP_CASE(protocol3_names_are_not_mapped),
        TAP_CASE(stack_global_through_memo),
        TAP_CASE(stack_global_with_decoys_pushed_and_popped),
        TAP_CASE(stack_global_with_bytes_typed_strings),
        TAP_CASE(stack_global_with_computed_operand_is_obfuscation),
        TAP_CASE(dotted_qualname_is_obfuscation),
        TAP_CASE(build_on_imported_object_is_obfuscation),
        TAP_CASE(ext_codes_are_obfuscation),
        TAP_CASE(payload_then_garbage_keeps_findings_and_is_malformed),
        TAP_CASE(second_stream_is_scanned),
        TAP_CASE(trailing_non_pickle_bytes_are_low_malformed),
        TAP_CASE(frame_straddle_is_obfuscation_and_both_readings_are_scanned),
        TAP_CASE(raw_nested_pickle_is_scanned_as_member),
        TAP_CASE(base64_encoded_nested_pickle_is_decoded),
        TAP_CASE(raw_unicode_escape_names_are_decoded),
        TAP_CASE(string_escapes_are_decoded),
        TAP_CASE(int_arguments_in_other_bases_do_not_hide_what_follows),
        TAP_CASE(inst_and_obj_are_recorded),
        TAP_CASE(memo_limit_is_a_finding),
        TAP_CASE(stack_limit_is_a_finding),
        TAP_CASE(stack_underflow_below_mark_is_malformed),
        TAP_CASE(headerless_protocol0_is_sniffed_and_text_is_not),
        TAP_CASE(legacy_torch_streams_then_raw_storage),
        TAP_CASE(joblib_array_bytes_are_skipped),
        TAP_CASE(findings_overflow_keeps_most_severe),
        TAP_CASE(names_are_escaped),
)
