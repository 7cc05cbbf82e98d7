/* Unit tests for sdk/src/xml.c: writer, reader/XPath, XXE refusal, C14N, XSD validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ewtp/decimal.h>
#include <ewtp/errors.h>
#include <ewtp/xml.h>

#define CEB_NS "http://www.chinaport.gov.cn/ceb"
#define CN_REF EWTP_SHARED_DIR "/reference/cn"

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Replaces the first occurrence of from by to (same or any length); returns a new string and
 * the 1-based line of the replacement. */
static char *replace(const char *s, const char *from, const char *to, int *line)
{
    const char *p = strstr(s, from);
    assert_non_null(p);
    *line = 1;
    for (const char *q = s; q < p; q++)
        if (*q == '\n')
            (*line)++;
    size_t n = strlen(s) - strlen(from) + strlen(to);
    char *r = malloc(n + 1);
    assert_non_null(r);
    memcpy(r, s, (size_t)(p - s));
    strcpy(r + (p - s), to);
    strcat(r, p + strlen(from));
    return r;
}

/* ---- Writer ---- */

static void test_writer_exact(void **state)
{
    (void)state;
    struct ewtp_arena *a = ewtp_arena_new();
    struct ewtp_xml_writer *w = ewtp_xml_writer_new(0);
    assert_non_null(w);
    struct ewtp_dec d1, d2;
    assert_int_equal(ewtp_dec_parse("1.50", &d1), 0);
    assert_int_equal(ewtp_dec_parse("2.345", &d2), 0);
    assert_int_equal(ewtp_xml_start(w, "ceb", "CEB311Message"), 0);
    assert_int_equal(ewtp_xml_ns(w, "ceb", CEB_NS), 0);
    assert_int_equal(ewtp_xml_attr(w, NULL, "guid", "A\"B<&>"), 0);
    assert_int_equal(ewtp_xml_attr(w, NULL, "skipped", NULL), 0);
    assert_int_equal(ewtp_xml_start(w, "ceb", "Order"), 0);
    assert_int_equal(ewtp_xml_elem(w, "ceb", "name", "x<y&z>\xe4\xb8\xad"), 0);
    assert_int_equal(ewtp_xml_elem(w, "ceb", "absent", NULL), 0);
    assert_int_equal(ewtp_xml_elem(w, "ceb", "empty", ""), 0);
    assert_int_equal(ewtp_xml_elem_dec(w, "ceb", "price", &d1), 0);
    assert_int_equal(ewtp_xml_elem_dec(w, "ceb", "none", NULL), 0);
    assert_int_equal(ewtp_xml_elem_dec_places(w, "ceb", "rounded", &d2, 2), 0);
    assert_int_equal(ewtp_xml_elem_int(w, "ceb", "qty", -42), 0);
    assert_int_equal(ewtp_xml_elemf(w, NULL, "f", "%s-%d", "n", 7), 0);
    assert_int_equal(ewtp_xml_start(w, NULL, "leaf"), 0);
    assert_int_equal(ewtp_xml_end(w), 0);
    /* Order and root left open: finish closes them. */
    const char *out;
    size_t len;
    assert_int_equal(ewtp_xml_writer_finish(w, a, &out, &len), 0);
    const char *want =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ceb:CEB311Message xmlns:ceb=\"http://www.chinaport.gov.cn/ceb\" "
        "guid=\"A&quot;B&lt;&amp;&gt;\"><ceb:Order><ceb:name>x&lt;y&amp;z&gt;\xe4\xb8\xad"
        "</ceb:name><ceb:empty></ceb:empty><ceb:price>1.50</ceb:price>"
        "<ceb:rounded>2.35</ceb:rounded><ceb:qty>-42</ceb:qty><f>n-7</f><leaf/>"
        "</ceb:Order></ceb:CEB311Message>\n";
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(want));
    /* Nothing after finish. */
    assert_int_equal(ewtp_xml_start(w, NULL, "x"), -EWTP_EINVAL);
    ewtp_xml_writer_free(w);

    /* Indented, no declaration. */
    w = ewtp_xml_writer_new(EWTP_XML_INDENT | EWTP_XML_NO_DECL);
    ewtp_xml_start(w, NULL, "a");
    ewtp_xml_ns(w, NULL, "urn:x");
    ewtp_xml_start(w, NULL, "b");
    ewtp_xml_elem(w, NULL, "c", "1");
    ewtp_xml_end(w);
    ewtp_xml_elem(w, NULL, "d", "2");
    ewtp_xml_end(w);
    assert_int_equal(ewtp_xml_writer_finish(w, a, &out, &len), 0);
    assert_string_equal(out,
                        "<a xmlns=\"urn:x\">\n  <b>\n    <c>1</c>\n  </b>\n  <d>2</d>\n</a>\n");
    ewtp_xml_writer_free(w);
    ewtp_arena_free(a);
}

static void test_writer_errors_sticky(void **state)
{
    (void)state;
    struct ewtp_arena *a = ewtp_arena_new();
    const char *out = NULL;
    size_t len;
    struct ewtp_xml_writer *w = ewtp_xml_writer_new(0);
    ewtp_xml_start(w, NULL, "a");
    assert_int_equal(ewtp_xml_elem(w, NULL, "b", "bell\x07"), -EWTP_EFORMAT);
    assert_int_equal(ewtp_xml_elem(w, NULL, "c", "fine"), -EWTP_EFORMAT); /* sticky */
    assert_int_equal(ewtp_xml_writer_finish(w, a, &out, &len), -EWTP_EFORMAT);
    assert_null(out);
    ewtp_xml_writer_free(w);

    w = ewtp_xml_writer_new(0);
    ewtp_xml_start(w, NULL, "a");
    assert_int_equal(ewtp_xml_elem(w, NULL, "b", "bad utf8 \xc3\x28"), -EWTP_EFORMAT);
    ewtp_xml_writer_free(w);
    w = ewtp_xml_writer_new(0);
    assert_int_equal(ewtp_xml_start(w, NULL, "1abc"), -EWTP_EINVAL);
    ewtp_xml_writer_free(w);
    w = ewtp_xml_writer_new(0);
    assert_int_equal(ewtp_xml_start(w, "a b", "x"), -EWTP_EINVAL);
    ewtp_xml_writer_free(w);
    w = ewtp_xml_writer_new(0);
    assert_int_equal(ewtp_xml_end(w), -EWTP_EINVAL);
    ewtp_xml_writer_free(w);
    w = ewtp_xml_writer_new(0);
    ewtp_xml_start(w, NULL, "a");
    assert_int_equal(ewtp_xml_attr(w, NULL, "x", "surrogate \xed\xa0\x80"), -EWTP_EFORMAT);
    ewtp_xml_writer_free(w);
    ewtp_arena_free(a);
}

/* ---- Reader ---- */

static const char order_doc[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                "<o:Order xmlns:o=\"urn:order\" id=\"42\">\n"
                                "  <o:line n=\"1\"><o:sku>A-1</o:sku><o:qty>2</o:qty></o:line>\n"
                                "  <o:line n=\"2\"><o:sku>B-2</o:sku><o:qty>5</o:qty></o:line>\n"
                                "  <o:note>a &amp; b</o:note>\n"
                                "</o:Order>\n";

static void test_reader_xpath(void **state)
{
    (void)state;
    struct ewtp_arena *a = ewtp_arena_new();
    struct ewtp_xml_doc *d = NULL;
    assert_int_equal(ewtp_xml_parse(order_doc, strlen(order_doc), NULL, &d), 0);
    /* Prefixes come from the registration, not from the document. */
    assert_int_equal(ewtp_xml_ns_register(d, "x", "urn:order"), 0);
    const char *s;
    assert_int_equal(ewtp_xml_xpath_string(d, NULL, "/x:Order/@id", a, &s), 0);
    assert_string_equal(s, "42");
    assert_int_equal(ewtp_xml_xpath_string(d, NULL, "//x:note", a, &s), 0);
    assert_string_equal(s, "a & b");
    assert_int_equal(ewtp_xml_xpath_string(d, NULL, "sum(//x:qty)", a, &s), 0);
    assert_string_equal(s, "7");
    assert_int_equal(ewtp_xml_xpath_string(d, NULL, "//x:missing", a, &s), -EWTP_ENOTFOUND);
    assert_int_equal(ewtp_xml_xpath_string(d, NULL, "//o:note", a, &s), -EWTP_EINVAL);
    assert_int_equal(ewtp_xml_xpath_string(d, NULL, "//x:[", a, &s), -EWTP_EINVAL);
    size_t n = 99;
    assert_int_equal(ewtp_xml_xpath_count(d, NULL, "//x:line", &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ewtp_xml_xpath_count(d, NULL, "//x:nothing", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ewtp_xml_xpath_count(d, NULL, "count(//x:line)", &n), -EWTP_EINVAL);

    const struct ewtp_xml_node **lines;
    assert_int_equal(ewtp_xml_xpath_nodes(d, NULL, "//x:line", a, &lines, &n), 0);
    assert_int_equal(n, 2);
    const char *skus[2] = {"A-1", "B-2"};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(ewtp_xml_node_name(lines[i]), "line");
        assert_string_equal(ewtp_xml_node_ns(lines[i]), "urn:order");
        assert_int_equal(ewtp_xml_node_line(lines[i]), 3 + (long)i);
        assert_int_equal(ewtp_xml_xpath_string(d, lines[i], "x:sku", a, &s), 0);
        assert_string_equal(s, skus[i]);
        assert_int_equal(ewtp_xml_xpath_string(d, lines[i], "@n", a, &s), 0);
        assert_int_equal(atoi(s), (int)i + 1);
    }
    assert_string_equal(ewtp_xml_node_name(ewtp_xml_root(d)), "Order");
    ewtp_xml_free(d);
    ewtp_arena_free(a);
}

static void test_reader_errors(void **state)
{
    (void)state;
    struct ewtp_errors *e = ewtp_errors_new();
    struct ewtp_xml_doc *d = NULL;
    const char *bad = "<a>\n<b></a>";
    assert_int_equal(ewtp_xml_parse(bad, strlen(bad), e, &d), -EWTP_EFORMAT);
    assert_null(d);
    assert_true(ewtp_errors_count(e) >= 1);
    assert_string_equal(ewtp_errors_at(e, 0)->code, "format");
    assert_non_null(strstr(ewtp_errors_at(e, 0)->message, "line 2"));
    ewtp_errors_clear(e);
    assert_int_equal(ewtp_xml_parse("", 0, e, &d), -EWTP_EFORMAT);
    assert_true(ewtp_errors_count(e) >= 1);
    ewtp_errors_free(e);
}

/* XXE and entity bombs: any DOCTYPE is refused, nothing is read from disk. */
static void test_reader_xxe_refused(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
        "<r>&x;</r>",
        "<!DOCTYPE r SYSTEM \"http://127.0.0.1:9/evil.dtd\"><r/>",
        "<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
        "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;\">"
        "]><r>&d;&d;&d;&d;</r>",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        struct ewtp_errors *e = ewtp_errors_new();
        struct ewtp_xml_doc *d = NULL;
        assert_int_equal(ewtp_xml_parse(docs[i], strlen(docs[i]), e, &d), -EWTP_EFORMAT);
        assert_null(d);
        assert_true(ewtp_errors_has(e, "", "unsupported"));
        ewtp_errors_free(e);
    }
    /* An undeclared entity reference is simply malformed, not resolved. */
    struct ewtp_xml_doc *d = NULL;
    assert_int_equal(ewtp_xml_parse("<r>&x;</r>", 10, NULL, &d), -EWTP_EFORMAT);
}

/* ---- C14N ---- */

static const char *c14n_of(struct ewtp_arena *a, const char *xml, const char *xpath,
                           enum ewtp_c14n mode, bool comments)
{
    struct ewtp_xml_doc *d = NULL;
    assert_int_equal(ewtp_xml_parse(xml, strlen(xml), NULL, &d), 0);
    ewtp_xml_ns_register(d, "a", "urn:a");
    const char *out = NULL;
    size_t len;
    assert_int_equal(ewtp_xml_c14n(d, xpath, mode, comments, NULL, a, &out, &len), 0);
    assert_int_equal(strlen(out), len);
    ewtp_xml_free(d);
    return out;
}

/* W3C Canonical XML 1.0, examples 3.1 and 3.3 (their DOCTYPEs left out: we refuse DTDs). */
static void test_c14n_w3c_examples(void **state)
{
    (void)state;
    struct ewtp_arena *a = ewtp_arena_new();
    const char *ex31 = "<?xml version=\"1.0\"?>\n\n"
                       "<?xml-stylesheet   href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n\n"
                       "<doc>Hello, world!<!-- Comment 1 --></doc>\n\n"
                       "<?pi-without-data     ?>\n\n<!-- Comment 2 -->\n\n<!-- Comment 3 -->\n";
    assert_string_equal(c14n_of(a, ex31, NULL, EWTP_C14N_10, false),
                        "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n"
                        "<doc>Hello, world!</doc>\n<?pi-without-data?>");
    assert_string_equal(c14n_of(a, ex31, NULL, EWTP_C14N_10, true),
                        "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n"
                        "<doc>Hello, world!<!-- Comment 1 --></doc>\n<?pi-without-data?>\n"
                        "<!-- Comment 2 -->\n<!-- Comment 3 -->");
    const char *ex33 = "<doc>\n"
                       "   <e1   />\n"
                       "   <e2   ></e2>\n"
                       "   <e3   name = \"elem3\"   id=\"elem3\"   />\n"
                       "   <e4   name=\"elem4\"   id=\"elem4\"   ></e4>\n"
                       "   <e5 a:attr=\"out\" b:attr=\"sorted\" attr2=\"all\" attr=\"I'm\"\n"
                       "      xmlns:b=\"http://www.ietf.org\"\n"
                       "      xmlns:a=\"http://www.w3.org\"\n"
                       "      xmlns=\"http://example.org\"/>\n"
                       "   <e6 xmlns=\"\" xmlns:a=\"http://www.w3.org\">\n"
                       "      <e7 xmlns=\"http://www.ietf.org\">\n"
                       "         <e8 xmlns=\"\" xmlns:a=\"http://www.w3.org\">\n"
                       "            <e9 xmlns=\"\" xmlns:a=\"http://www.ietf.org\"/>\n"
                       "         </e8>\n"
                       "      </e7>\n"
                       "   </e6>\n"
                       "</doc>";
    assert_string_equal(c14n_of(a, ex33, NULL, EWTP_C14N_10, false),
                        "<doc>\n"
                        "   <e1></e1>\n"
                        "   <e2></e2>\n"
                        "   <e3 id=\"elem3\" name=\"elem3\"></e3>\n"
                        "   <e4 id=\"elem4\" name=\"elem4\"></e4>\n"
                        "   <e5 xmlns=\"http://example.org\" xmlns:a=\"http://www.w3.org\" "
                        "xmlns:b=\"http://www.ietf.org\" attr=\"I'm\" attr2=\"all\" "
                        "b:attr=\"sorted\" a:attr=\"out\"></e5>\n"
                        "   <e6 xmlns:a=\"http://www.w3.org\">\n"
                        "      <e7 xmlns=\"http://www.ietf.org\">\n"
                        "         <e8 xmlns=\"\">\n"
                        "            <e9 xmlns:a=\"http://www.ietf.org\"></e9>\n"
                        "         </e8>\n"
                        "      </e7>\n"
                        "   </e6>\n"
                        "</doc>");
    ewtp_arena_free(a);
}

static void test_c14n_subtree(void **state)
{
    (void)state;
    struct ewtp_arena *a = ewtp_arena_new();
    const char *xml = "<r xmlns=\"urn:d\" xmlns:a=\"urn:a\" xmlns:c=\"urn:c\">"
                      "<a:x b=\"2\" a:y=\"1\"><z/><!-- c --></a:x><a:x>second</a:x></r>";
    /* Inclusive: the apex carries every namespace in scope. */
    assert_string_equal(c14n_of(a, xml, "(//a:x)[1]", EWTP_C14N_10, false),
                        "<a:x xmlns=\"urn:d\" xmlns:a=\"urn:a\" xmlns:c=\"urn:c\" b=\"2\" "
                        "a:y=\"1\"><z></z></a:x>");
    /* Exclusive: only the namespaces visibly used. */
    assert_string_equal(c14n_of(a, xml, "(//a:x)[1]", EWTP_C14N_EXCL_10, true),
                        "<a:x xmlns:a=\"urn:a\" b=\"2\" a:y=\"1\"><z xmlns=\"urn:d\"></z>"
                        "<!-- c --></a:x>");
    /* Two apexes, in document order. */
    assert_string_equal(c14n_of(a, xml, "//a:x", EWTP_C14N_EXCL_10, false),
                        "<a:x xmlns:a=\"urn:a\" b=\"2\" a:y=\"1\"><z xmlns=\"urn:d\"></z></a:x>"
                        "<a:x xmlns:a=\"urn:a\">second</a:x>");
    struct ewtp_xml_doc *d = NULL;
    assert_int_equal(ewtp_xml_parse(xml, strlen(xml), NULL, &d), 0);
    ewtp_xml_ns_register(d, "a", "urn:a");
    const char *out;
    size_t len;
    /* Exclusive with an InclusiveNamespaces PrefixList: "c" is rendered although unused. */
    static const char *const incl[] = {"c", NULL};
    assert_int_equal(ewtp_xml_c14n(d, "(//a:x)[2]", EWTP_C14N_EXCL_10, false, incl, a, &out, &len),
                     0);
    assert_string_equal(out, "<a:x xmlns:a=\"urn:a\" xmlns:c=\"urn:c\">second</a:x>");
    assert_int_equal(ewtp_xml_c14n(d, "//nothing", EWTP_C14N_10, false, NULL, a, &out, &len),
                     -EWTP_ENOTFOUND);
    assert_int_equal(ewtp_xml_c14n(d, NULL, (enum ewtp_c14n)9, false, NULL, a, &out, &len),
                     -EWTP_EINVAL);
    ewtp_xml_free(d);
    assert_string_equal(ewtp_c14n_uri(EWTP_C14N_10, false),
                        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315");
    assert_string_equal(ewtp_c14n_uri(EWTP_C14N_EXCL_10, true),
                        "http://www.w3.org/2001/10/xml-exc-c14n#WithComments");
    ewtp_arena_free(a);
}

/* Our canonical form of a real sample equals xmllint's (which keeps comments). */
static void test_c14n_matches_xmllint(void **state)
{
    (void)state;
    static const char *const samples[] = {"import/CEB311Message.xml", "import/CEB621Message.xml",
                                          "dxp/DxpMsg-CEB311-constructed.xml"};
    struct ewtp_arena *a = ewtp_arena_new();
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        char path[512], cmd[700];
        snprintf(path, sizeof(path), CN_REF "/samples/%s", samples[i]);
        if (access(path, R_OK) != 0)
            fail_msg("missing sample %s", path);
        snprintf(cmd, sizeof(cmd), "xmllint --c14n '%s'", path);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        size_t cap = 1 << 20, got = 0;
        char *want = malloc(cap);
        size_t r;
        while ((r = fread(want + got, 1, cap - got, p)) > 0)
            got += r;
        assert_int_equal(pclose(p), 0);
        assert_true(got > 100 && got < cap);
        size_t len;
        char *xml = read_all(path, &len);
        struct ewtp_xml_doc *d = NULL;
        assert_int_equal(ewtp_xml_parse(xml, len, NULL, &d), 0);
        const char *out;
        size_t olen;
        assert_int_equal(ewtp_xml_c14n(d, NULL, EWTP_C14N_10, true, NULL, a, &out, &olen), 0);
        assert_int_equal(olen, got);
        assert_memory_equal(out, want, got);
        ewtp_xml_free(d);
        free(xml);
        free(want);
    }
    ewtp_arena_free(a);
}

/* ---- XSD ---- */

struct validate_job {
    const struct ewtp_xsd *xsd;
    const char *xml;
    size_t len;
    int failures;
};

static void *validate_many(void *arg)
{
    struct validate_job *j = arg;
    for (int i = 0; i < 10; i++) {
        struct ewtp_errors *e = ewtp_errors_new();
        if (ewtp_xsd_validate(j->xsd, j->xml, j->len, e) != 0 || ewtp_errors_count(e) != 0)
            j->failures++;
        ewtp_errors_free(e);
    }
    return NULL;
}

static void test_xsd_ceb311(void **state)
{
    (void)state;
    struct ewtp_errors *e = ewtp_errors_new();
    struct ewtp_xsd *xsd = NULL;
    assert_int_equal(ewtp_xsd_load(CN_REF "/xsd/by-root/CEB311Message.xsd", e, &xsd), 0);
    assert_int_equal(ewtp_errors_count(e), 0);
    size_t len;
    char *xml = read_all(CN_REF "/samples/import/CEB311Message.xml", &len);
    /* VALIDATION.md: this sample validates. */
    assert_int_equal(ewtp_xsd_validate(xsd, xml, len, e), 0);
    assert_int_equal(ewtp_errors_count(e), 0);

    /* Two faults: appTime must have 14 characters, orderType 1; both are reported. */
    int l1, l2;
    char *b1 = replace(xml, "<ceb:appTime>20160308112701<", "<ceb:appTime>2016<", &l1);
    char *b2 = replace(b1, "<ceb:orderType>I<", "<ceb:orderType>II<", &l2);
    assert_int_equal(ewtp_xsd_validate(xsd, b2, strlen(b2), e), -EWTP_EINVAL);
    assert_true(ewtp_errors_count(e) >= 2);
    char l1s[32], l2s[32];
    snprintf(l1s, sizeof(l1s), "line %d:", l1);
    snprintf(l2s, sizeof(l2s), "line %d:", l2);
    bool seen1 = false, seen2 = false;
    for (size_t i = 0; i < ewtp_errors_count(e); i++) {
        const struct ewtp_error *er = ewtp_errors_at(e, i);
        assert_string_equal(er->code, "schema");
        if (strstr(er->message, l1s) && strstr(er->message, "appTime"))
            seen1 = true;
        if (strstr(er->message, l2s) && strstr(er->message, "orderType"))
            seen2 = true;
    }
    assert_true(seen1);
    assert_true(seen2);
    ewtp_errors_clear(e);

    /* Not well-formed: format errors, not schema errors. */
    assert_int_equal(ewtp_xsd_validate(xsd, "<ceb:x", 6, e), -EWTP_EFORMAT);
    assert_true(ewtp_errors_has(e, "", "format"));
    ewtp_errors_clear(e);

    /* The same schema from two threads at once. */
    struct validate_job jobs[2] = {{xsd, xml, len, 0}, {xsd, xml, len, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, validate_many, &jobs[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(jobs[i].failures, 0);
    }

    /* Validation of a parsed document. */
    struct ewtp_xml_doc *d = NULL;
    assert_int_equal(ewtp_xml_parse(b2, strlen(b2), NULL, &d), 0);
    assert_int_equal(ewtp_xsd_validate_doc(xsd, d, e), -EWTP_EINVAL);
    assert_true(ewtp_errors_count(e) >= 2);
    ewtp_xml_free(d);
    ewtp_errors_clear(e);

    struct ewtp_xsd *none = NULL;
    assert_int_equal(ewtp_xsd_load("/nonexistent/x.xsd", e, &none), -EWTP_ENOTFOUND);
    assert_null(none);
    free(b1);
    free(b2);
    free(xml);
    ewtp_xsd_free(xsd);
    ewtp_errors_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_exact),       cmocka_unit_test(test_writer_errors_sticky),
        cmocka_unit_test(test_reader_xpath),       cmocka_unit_test(test_reader_errors),
        cmocka_unit_test(test_reader_xxe_refused), cmocka_unit_test(test_c14n_w3c_examples),
        cmocka_unit_test(test_c14n_subtree),       cmocka_unit_test(test_c14n_matches_xmllint),
        cmocka_unit_test(test_xsd_ceb311),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
