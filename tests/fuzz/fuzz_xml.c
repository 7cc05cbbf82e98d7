/* fuzz_xml.c — libFuzzer target for the XML reader (sdk/src/xml.c): ewtp_xml_parse(), the
 * XPath helpers plugins use on authority answers and receipts, serialisation and C14N.
 * Built and run by tests/fuzz/run.sh.
 *
 * The XPath expressions are fixed (plugins' are constants); the document is the input. Any
 * input must give a document or -EWTP_EFORMAT, never a crash, leak, hang or sanitizer
 * report. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ewtp/arena.h>
#include <ewtp/errors.h>
#include <ewtp/xml.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ewtp_arena *a = ewtp_arena_new();
    struct ewtp_errors *e = ewtp_errors_new();
    uint8_t *copy = malloc(size ? size : 1); /* exact size: no NUL is promised */
    struct ewtp_xml_doc *doc = NULL;
    if (a == NULL || e == NULL || copy == NULL)
        goto out;
    memcpy(copy, data, size);
    if (ewtp_xml_parse(copy, size, e, &doc) != 0)
        goto out;
    const struct ewtp_xml_node *root = ewtp_xml_root(doc);
    (void)ewtp_xml_node_name(root);
    (void)ewtp_xml_node_ns(root);
    (void)ewtp_xml_node_line(root);
    (void)ewtp_xml_ns_register(doc, "ceb", "http://www.chinaport.gov.cn/ceb");
    (void)ewtp_xml_ns_register(doc, "ds", "http://www.w3.org/2000/09/xmldsig#");
    (void)ewtp_xml_ns_register(
        doc, "cbc", "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2");
    static const char *const exprs[] = {
        "string(/*)", "//ceb:returnStatus", "/*/*[1]",  "//*[local-name()='ID'][1]",
        "count(//*)", "//ds:SignedInfo",    "//cbc:ID", "//@*",
        "//text()",   "//comment()",
    };
    for (size_t k = 0; k < sizeof(exprs) / sizeof(exprs[0]); k++) {
        const char *s = NULL;
        size_t n = 0;
        if (ewtp_xml_xpath_string(doc, NULL, exprs[k], a, &s) == 0 && s)
            (void)strlen(s);
        (void)ewtp_xml_xpath_count(doc, NULL, exprs[k], &n);
    }
    const struct ewtp_xml_node **nodes = NULL;
    size_t n = 0;
    if (ewtp_xml_xpath_nodes(doc, root, "*", a, &nodes, &n) == 0) {
        for (size_t k = 0; k < n && k < 16; k++) {
            const char *s = NULL;
            (void)ewtp_xml_node_name(nodes[k]);
            (void)ewtp_xml_xpath_string(doc, nodes[k], "*[1]", a, &s);
            (void)ewtp_xml_xpath_string(doc, nodes[k], "@*", a, &s);
        }
    }
    const char *out = NULL;
    size_t len = 0;
    (void)ewtp_xml_serialize(doc, a, &out, &len);
    (void)ewtp_xml_c14n(doc, NULL, EWTP_C14N_EXCL_10, false, NULL, a, &out, &len);
    (void)ewtp_xml_c14n(doc, "/*/*[1]", EWTP_C14N_10, true, NULL, a, &out, &len);
out:
    ewtp_xml_free(doc);
    free(copy);
    ewtp_errors_free(e);
    ewtp_arena_free(a);
    return 0;
}
