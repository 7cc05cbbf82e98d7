/* xml.c — XML writer, safe reader with XPath, XSD validation and C14N over libxml2.
 * See ewtp/xml.h for the contract. */
#include "xml_internal.h"

#include <ewtp/errors.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/c14n.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlIO.h>
#include <libxml/xmlschemas.h>
#include <libxml/xmlwriter.h>
#include <libxml/xpathInternals.h>

/* Most errors reported per call: a broken document can yield thousands. */
#define MAX_REPORTED 100
/* Longest prefix:name the writer builds. */
#define QNAME_MAX 512

/* libxml2 2.9's xmlInitParser is not safe to race; run it once when libewtp is loaded,
 * before any thread of the host can call us. */
__attribute__((constructor)) static void xml_lib_init(void)
{
    xmlInitParser();
}

/* ---- Character checks ---- */

bool ewtpi_xml_text_ok(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        unsigned cp;
        size_t n;
        if (c < 0x80) {
            cp = c;
            n = 1;
        } else if ((c & 0xe0) == 0xc0) {
            cp = c & 0x1f;
            n = 2;
        } else if ((c & 0xf0) == 0xe0) {
            cp = c & 0x0f;
            n = 3;
        } else if ((c & 0xf8) == 0xf0) {
            cp = c & 0x07;
            n = 4;
        } else {
            return false;
        }
        if (i + n > len)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and beyond U+10FFFF are not UTF-8. */
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        /* XML 1.0 Char production. */
        if (!(cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
              (cp >= 0xe000 && cp <= 0xfffd) || cp >= 0x10000))
            return false;
        i += n;
    }
    return true;
}

static bool name_ok(const char *name)
{
    return name != NULL && name[0] != '\0' && xmlValidateNCName(BAD_CAST name, 0) == 0;
}

/* ---- Writer ---- */

struct ewtp_xml_writer {
    xmlBufferPtr buf;
    xmlTextWriterPtr tw;
    int err;      /* first error, sticky */
    size_t depth; /* open elements */
    bool finished;
};

struct ewtp_xml_writer *ewtp_xml_writer_new(unsigned flags)
{
    struct ewtp_xml_writer *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->buf = xmlBufferCreate();
    if (w->buf != NULL)
        w->tw = xmlNewTextWriterMemory(w->buf, 0);
    if (w->tw == NULL) {
        ewtp_xml_writer_free(w);
        return NULL;
    }
    if (flags & EWTP_XML_INDENT) {
        xmlTextWriterSetIndent(w->tw, 1);
        xmlTextWriterSetIndentString(w->tw, BAD_CAST "  ");
    }
    if (!(flags & EWTP_XML_NO_DECL) && xmlTextWriterStartDocument(w->tw, NULL, "UTF-8", NULL) < 0)
        w->err = -EWTP_ENOMEM;
    return w;
}

void ewtp_xml_writer_free(struct ewtp_xml_writer *w)
{
    if (w == NULL)
        return;
    if (w->tw != NULL)
        xmlFreeTextWriter(w->tw);
    if (w->buf != NULL)
        xmlBufferFree(w->buf);
    free(w);
}

/* Records the first error; returns the sticky one. */
static int wfail(struct ewtp_xml_writer *w, int rc)
{
    if (w->err == 0)
        w->err = rc;
    return w->err;
}

static int wcheck(struct ewtp_xml_writer *w)
{
    if (w == NULL)
        return -EWTP_EINVAL;
    if (w->err != 0)
        return w->err;
    if (w->finished)
        return wfail(w, -EWTP_EINVAL);
    return 0;
}

/* Builds prefix:name into buf; -EWTP_EINVAL for a bad name, -EWTP_ERANGE when too long. */
static int qname(char buf[QNAME_MAX], const char *prefix, const char *name)
{
    if (!name_ok(name))
        return -EWTP_EINVAL;
    int n;
    if (prefix != NULL && prefix[0] != '\0') {
        if (!name_ok(prefix))
            return -EWTP_EINVAL;
        n = snprintf(buf, QNAME_MAX, "%s:%s", prefix, name);
    } else {
        n = snprintf(buf, QNAME_MAX, "%s", name);
    }
    return n < 0 || n >= QNAME_MAX ? -EWTP_ERANGE : 0;
}

int ewtp_xml_start(struct ewtp_xml_writer *w, const char *prefix, const char *name)
{
    int rc = wcheck(w);
    if (rc < 0)
        return rc;
    char q[QNAME_MAX];
    if ((rc = qname(q, prefix, name)) < 0)
        return wfail(w, rc);
    if (xmlTextWriterStartElement(w->tw, BAD_CAST q) < 0)
        return wfail(w, -EWTP_EINVAL);
    w->depth++;
    return 0;
}

static int write_attr(struct ewtp_xml_writer *w, const char *q, const char *value)
{
    if (!ewtpi_xml_text_ok(value, strlen(value)))
        return wfail(w, -EWTP_EFORMAT);
    if (xmlTextWriterWriteAttribute(w->tw, BAD_CAST q, BAD_CAST value) < 0)
        return wfail(w, -EWTP_EINVAL);
    return 0;
}

int ewtp_xml_ns(struct ewtp_xml_writer *w, const char *prefix, const char *uri)
{
    int rc = wcheck(w);
    if (rc < 0)
        return rc;
    if (uri == NULL)
        return wfail(w, -EWTP_EINVAL);
    char q[QNAME_MAX];
    if ((rc = qname(q, prefix != NULL && prefix[0] != '\0' ? "xmlns" : NULL,
                    prefix != NULL && prefix[0] != '\0' ? prefix : "xmlns")) < 0)
        return wfail(w, rc);
    return write_attr(w, q, uri);
}

int ewtp_xml_attr(struct ewtp_xml_writer *w, const char *prefix, const char *name,
                  const char *value)
{
    int rc = wcheck(w);
    if (rc < 0 || value == NULL)
        return rc;
    char q[QNAME_MAX];
    if ((rc = qname(q, prefix, name)) < 0)
        return wfail(w, rc);
    return write_attr(w, q, value);
}

int ewtp_xml_text(struct ewtp_xml_writer *w, const char *text)
{
    int rc = wcheck(w);
    if (rc < 0 || text == NULL)
        return rc;
    if (w->depth == 0)
        return wfail(w, -EWTP_EINVAL); /* text outside the document element */
    if (!ewtpi_xml_text_ok(text, strlen(text)))
        return wfail(w, -EWTP_EFORMAT);
    if (xmlTextWriterWriteString(w->tw, BAD_CAST text) < 0)
        return wfail(w, -EWTP_EINVAL);
    return 0;
}

int ewtp_xml_end(struct ewtp_xml_writer *w)
{
    int rc = wcheck(w);
    if (rc < 0)
        return rc;
    if (w->depth == 0)
        return wfail(w, -EWTP_EINVAL);
    if (xmlTextWriterEndElement(w->tw) < 0)
        return wfail(w, -EWTP_EINVAL);
    w->depth--;
    return 0;
}

int ewtp_xml_elem(struct ewtp_xml_writer *w, const char *prefix, const char *name, const char *text)
{
    int rc = wcheck(w);
    if (rc < 0 || text == NULL)
        return rc;
    char q[QNAME_MAX];
    if ((rc = qname(q, prefix, name)) < 0)
        return wfail(w, rc);
    if (!ewtpi_xml_text_ok(text, strlen(text)))
        return wfail(w, -EWTP_EFORMAT);
    /* WriteElement writes <a></a> for "", which keeps an explicitly empty value visible. */
    if (xmlTextWriterWriteElement(w->tw, BAD_CAST q, BAD_CAST text) < 0)
        return wfail(w, -EWTP_EINVAL);
    return 0;
}

int ewtp_xml_elemf(struct ewtp_xml_writer *w, const char *prefix, const char *name, const char *fmt,
                   ...)
{
    int rc = wcheck(w);
    if (rc < 0)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return wfail(w, -EWTP_ENOMEM);
    rc = ewtp_xml_elem(w, prefix, name, s);
    free(s);
    return rc;
}

int ewtp_xml_elem_int(struct ewtp_xml_writer *w, const char *prefix, const char *name, int64_t v)
{
    return ewtp_xml_elemf(w, prefix, name, "%lld", (long long)v);
}

int ewtp_xml_elem_dec(struct ewtp_xml_writer *w, const char *prefix, const char *name,
                      const struct ewtp_dec *d)
{
    int rc = wcheck(w);
    if (rc < 0 || d == NULL)
        return rc;
    char buf[EWTP_DEC_STRMAX];
    if (ewtp_dec_format(*d, buf, sizeof(buf)) < 0)
        return wfail(w, -EWTP_ERANGE);
    return ewtp_xml_elem(w, prefix, name, buf);
}

int ewtp_xml_elem_dec_places(struct ewtp_xml_writer *w, const char *prefix, const char *name,
                             const struct ewtp_dec *d, unsigned places)
{
    int rc = wcheck(w);
    if (rc < 0 || d == NULL)
        return rc;
    char buf[EWTP_DEC_STRMAX];
    if (ewtp_dec_format_places(*d, places, buf, sizeof(buf)) < 0)
        return wfail(w, -EWTP_ERANGE);
    return ewtp_xml_elem(w, prefix, name, buf);
}

int ewtp_xml_writer_finish(struct ewtp_xml_writer *w, struct ewtp_arena *a, const char **out,
                           size_t *len)
{
    int rc = wcheck(w);
    if (rc < 0)
        return rc;
    if (out == NULL || len == NULL)
        return wfail(w, -EWTP_EINVAL);
    w->finished = true;
    if (xmlTextWriterEndDocument(w->tw) < 0 || xmlTextWriterFlush(w->tw) < 0)
        return wfail(w, -EWTP_ENOMEM);
    w->depth = 0;
    size_t n = (size_t)xmlBufferLength(w->buf);
    char *s = ewtp_arena_memdup(a, xmlBufferContent(w->buf), n);
    if (s == NULL)
        return wfail(w, -EWTP_ENOMEM);
    *out = s;
    *len = n;
    return 0;
}

/* ---- Reader ---- */

struct err_sink {
    struct ewtp_errors *errs;
    const char *code;
    size_t count;
    bool dtd; /* a DOCTYPE was seen: refused */
};

static void sink_add(struct err_sink *s, const xmlError *e)
{
    if (e == NULL || e->level < XML_ERR_ERROR || s->dtd)
        return;
    s->count++;
    if (s->errs == NULL || s->count > MAX_REPORTED)
        return;
    const char *msg = e->message != NULL ? e->message : "error";
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    if (s->count == MAX_REPORTED)
        ewtp_errors_add(s->errs, "", s->code, "line %d: %.*s (further errors not listed)", e->line,
                        (int)n, msg);
    else
        ewtp_errors_add(s->errs, "", s->code, "line %d: %.*s", e->line, (int)n, msg);
}

/* Parser contexts pass themselves as the error callback's data (ctxt->userData). */
static void parse_serror(void *data, xmlErrorPtr e)
{
    xmlParserCtxtPtr c = data;
    sink_add(c->_private, e);
}

static void parse_refuse_dtd(void *data, const xmlChar *name, const xmlChar *ext_id,
                             const xmlChar *sys_id)
{
    (void)name, (void)ext_id, (void)sys_id;
    xmlParserCtxtPtr c = data;
    struct err_sink *s = c->_private;
    s->dtd = true;
    xmlStopParser(c);
}

static void silent_serror(void *data, xmlErrorPtr e)
{
    (void)data, (void)e;
}

static int parse_doc(const void *data, size_t len, struct ewtp_errors *errs, xmlDocPtr *out)
{
    if (data == NULL && len > 0)
        return -EWTP_EINVAL;
    if (len > INT_MAX) {
        if (errs != NULL)
            ewtp_errors_add(errs, "", "size", "document too large (%zu bytes)", len);
        return -EWTP_ERANGE;
    }
    xmlParserCtxtPtr c = xmlNewParserCtxt();
    if (c == NULL)
        return -EWTP_ENOMEM;
    struct err_sink sink = {.errs = errs, .code = "format"};
    c->_private = &sink;
    c->sax->serror = parse_serror;
    c->sax->internalSubset = parse_refuse_dtd;
    /* No NOENT (no entity substitution), no DTDLOAD/DTDATTR/DTDVALID, no network. */
    int opts = XML_PARSE_NONET | XML_PARSE_NOWARNING;
    xmlDocPtr doc = xmlCtxtReadMemory(c, len > 0 ? data : "", (int)len, NULL, NULL, opts);
    bool ok = doc != NULL && c->wellFormed && !sink.dtd && xmlDocGetRootElement(doc) != NULL;
    if (!ok) {
        if (sink.dtd && errs != NULL)
            ewtp_errors_add(errs, "", "unsupported",
                            "a DOCTYPE is not allowed (DTDs and entities are refused)");
        else if (sink.count == 0 && errs != NULL)
            ewtp_errors_add(errs, "", "format", "not a well-formed XML document");
        if (doc != NULL)
            xmlFreeDoc(doc);
        xmlFreeParserCtxt(c);
        return -EWTP_EFORMAT;
    }
    xmlFreeParserCtxt(c);
    *out = doc;
    return 0;
}

int ewtp_xml_parse(const void *data, size_t len, struct ewtp_errors *errs,
                   struct ewtp_xml_doc **out)
{
    if (out == NULL)
        return -EWTP_EINVAL;
    struct ewtp_xml_doc *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return -EWTP_ENOMEM;
    int rc = parse_doc(data, len, errs, &d->doc);
    if (rc < 0) {
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void ewtp_xml_free(struct ewtp_xml_doc *doc)
{
    if (doc == NULL)
        return;
    if (doc->xp != NULL)
        xmlXPathFreeContext(doc->xp);
    for (size_t i = 0; i < doc->nns; i++) {
        free(doc->ns[i].prefix);
        free(doc->ns[i].uri);
    }
    free(doc->ns);
    xmlFreeDoc(doc->doc);
    free(doc);
}

int ewtp_xml_ns_register(struct ewtp_xml_doc *doc, const char *prefix, const char *uri)
{
    if (doc == NULL || !name_ok(prefix) || uri == NULL)
        return -EWTP_EINVAL;
    char *u = strdup(uri);
    if (u == NULL)
        return -EWTP_ENOMEM;
    size_t i;
    for (i = 0; i < doc->nns; i++)
        if (strcmp(doc->ns[i].prefix, prefix) == 0)
            break;
    if (i == doc->nns) {
        struct xml_nsreg *n = realloc(doc->ns, (doc->nns + 1) * sizeof(*n));
        char *p = strdup(prefix);
        if (n != NULL)
            doc->ns = n;
        if (n == NULL || p == NULL) {
            free(p);
            free(u);
            return -EWTP_ENOMEM;
        }
        doc->ns[i].prefix = p;
        doc->ns[i].uri = NULL;
        doc->nns++;
    }
    free(doc->ns[i].uri);
    doc->ns[i].uri = u;
    if (doc->xp != NULL && xmlXPathRegisterNs(doc->xp, BAD_CAST prefix, BAD_CAST u) != 0)
        return -EWTP_ENOMEM;
    return 0;
}

const struct ewtp_xml_node *ewtp_xml_root(const struct ewtp_xml_doc *doc)
{
    return doc == NULL ? NULL : (const struct ewtp_xml_node *)xmlDocGetRootElement(doc->doc);
}

const char *ewtp_xml_node_name(const struct ewtp_xml_node *node)
{
    const xmlNode *n = (const xmlNode *)node;
    return n == NULL ? NULL : (const char *)n->name;
}

const char *ewtp_xml_node_ns(const struct ewtp_xml_node *node)
{
    const xmlNode *n = (const xmlNode *)node;
    if (n == NULL || (n->type != XML_ELEMENT_NODE && n->type != XML_ATTRIBUTE_NODE) ||
        n->ns == NULL)
        return NULL;
    return (const char *)n->ns->href;
}

long ewtp_xml_node_line(const struct ewtp_xml_node *node)
{
    return node == NULL ? 0 : xmlGetLineNo((const xmlNode *)node);
}

static xmlXPathContextPtr xpath_ctx(struct ewtp_xml_doc *d)
{
    if (d->xp != NULL)
        return d->xp;
    xmlXPathContextPtr xp = xmlXPathNewContext(d->doc);
    if (xp == NULL)
        return NULL;
    xp->error = silent_serror; /* failures are return codes, not stderr noise */
    for (size_t i = 0; i < d->nns; i++) {
        if (xmlXPathRegisterNs(xp, BAD_CAST d->ns[i].prefix, BAD_CAST d->ns[i].uri) != 0) {
            xmlXPathFreeContext(xp);
            return NULL;
        }
    }
    d->xp = xp;
    return xp;
}

static int eval(struct ewtp_xml_doc *d, xmlNodePtr ctx, const char *xpath, xmlXPathObjectPtr *res)
{
    if (d == NULL || xpath == NULL || res == NULL)
        return -EWTP_EINVAL;
    xmlXPathContextPtr xp = xpath_ctx(d);
    if (xp == NULL)
        return -EWTP_ENOMEM;
    xp->node = ctx != NULL ? ctx : (xmlNodePtr)d->doc;
    *res = xmlXPathEvalExpression(BAD_CAST xpath, xp);
    return *res == NULL ? -EWTP_EINVAL : 0;
}

int ewtpi_xml_eval_nodes(struct ewtp_xml_doc *d, xmlNodePtr ctx, const char *xpath,
                         xmlXPathObjectPtr *res)
{
    int rc = eval(d, ctx, xpath, res);
    if (rc < 0)
        return rc;
    if ((*res)->type != XPATH_NODESET) {
        xmlXPathFreeObject(*res);
        *res = NULL;
        return -EWTP_EINVAL;
    }
    if ((*res)->nodesetval != NULL)
        xmlXPathNodeSetSort((*res)->nodesetval);
    return 0;
}

static size_t set_len(xmlXPathObjectPtr r)
{
    return r->nodesetval == NULL ? 0 : (size_t)r->nodesetval->nodeNr;
}

int ewtp_xml_xpath_string(struct ewtp_xml_doc *doc, const struct ewtp_xml_node *ctx,
                          const char *xpath, struct ewtp_arena *a, const char **out)
{
    if (out == NULL)
        return -EWTP_EINVAL;
    xmlXPathObjectPtr r;
    int rc = eval(doc, (xmlNodePtr)ctx, xpath, &r);
    if (rc < 0)
        return rc;
    xmlChar *s;
    if (r->type == XPATH_NODESET) {
        if (set_len(r) == 0) {
            xmlXPathFreeObject(r);
            return -EWTP_ENOTFOUND;
        }
        xmlXPathNodeSetSort(r->nodesetval);
        s = xmlXPathCastNodeToString(r->nodesetval->nodeTab[0]);
    } else {
        s = xmlXPathCastToString(r);
    }
    xmlXPathFreeObject(r);
    if (s == NULL)
        return -EWTP_ENOMEM;
    *out = ewtp_arena_strdup(a, (const char *)s);
    xmlFree(s);
    return *out == NULL ? -EWTP_ENOMEM : 0;
}

int ewtp_xml_xpath_count(struct ewtp_xml_doc *doc, const struct ewtp_xml_node *ctx,
                         const char *xpath, size_t *count)
{
    if (count == NULL)
        return -EWTP_EINVAL;
    xmlXPathObjectPtr r;
    int rc = ewtpi_xml_eval_nodes(doc, (xmlNodePtr)ctx, xpath, &r);
    if (rc < 0)
        return rc;
    *count = set_len(r);
    xmlXPathFreeObject(r);
    return 0;
}

int ewtp_xml_xpath_nodes(struct ewtp_xml_doc *doc, const struct ewtp_xml_node *ctx,
                         const char *xpath, struct ewtp_arena *a,
                         const struct ewtp_xml_node ***nodes, size_t *n)
{
    if (nodes == NULL || n == NULL)
        return -EWTP_EINVAL;
    xmlXPathObjectPtr r;
    int rc = ewtpi_xml_eval_nodes(doc, (xmlNodePtr)ctx, xpath, &r);
    if (rc < 0)
        return rc;
    size_t cnt = set_len(r);
    const struct ewtp_xml_node **arr = ewtp_arena_alloc(a, (cnt + 1) * sizeof(*arr));
    if (arr == NULL) {
        xmlXPathFreeObject(r);
        return -EWTP_ENOMEM;
    }
    for (size_t i = 0; i < cnt; i++)
        arr[i] = (const struct ewtp_xml_node *)r->nodesetval->nodeTab[i];
    xmlXPathFreeObject(r);
    *nodes = arr;
    *n = cnt;
    return 0;
}

/* ---- XSD ---- */

struct ewtp_xsd {
    xmlSchemaPtr schema;
};

static void sink_serror(void *data, xmlErrorPtr e)
{
    sink_add(data, e);
}

int ewtp_xsd_load(const char *path, struct ewtp_errors *errs, struct ewtp_xsd **out)
{
    if (path == NULL || out == NULL)
        return -EWTP_EINVAL;
    if (access(path, R_OK) != 0) {
        if (errs != NULL)
            ewtp_errors_add(errs, "", "format", "cannot read schema %s: %s", path, strerror(errno));
        return errno == ENOENT ? -EWTP_ENOTFOUND : -EWTP_EIO;
    }
    struct ewtp_xsd *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return -EWTP_ENOMEM;
    xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(path);
    if (pc == NULL) {
        free(x);
        return -EWTP_ENOMEM;
    }
    struct err_sink sink = {.errs = errs, .code = "format"};
    xmlSchemaSetParserStructuredErrors(pc, sink_serror, &sink);
    x->schema = xmlSchemaParse(pc);
    xmlSchemaFreeParserCtxt(pc);
    if (x->schema == NULL) {
        if (sink.count == 0 && errs != NULL)
            ewtp_errors_add(errs, "", "format", "cannot compile schema %s", path);
        free(x);
        return -EWTP_EFORMAT;
    }
    *out = x;
    return 0;
}

void ewtp_xsd_free(struct ewtp_xsd *xsd)
{
    if (xsd == NULL)
        return;
    xmlSchemaFree(xsd->schema);
    free(xsd);
}

static int validate(const struct ewtp_xsd *xsd, xmlDocPtr doc, struct ewtp_errors *errs)
{
    xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(xsd->schema);
    if (vc == NULL)
        return -EWTP_ENOMEM;
    struct err_sink sink = {.errs = errs, .code = "schema"};
    xmlSchemaSetValidStructuredErrors(vc, sink_serror, &sink);
    int r = xmlSchemaValidateDoc(vc, doc);
    xmlSchemaFreeValidCtxt(vc);
    if (r == 0)
        return 0;
    if (r < 0)
        return -EWTP_ENOMEM; /* libxml2's internal error */
    if (sink.count == 0 && errs != NULL)
        ewtp_errors_add(errs, "", "schema", "document is not valid against the schema");
    return -EWTP_EINVAL;
}

int ewtp_xsd_validate(const struct ewtp_xsd *xsd, const void *data, size_t len,
                      struct ewtp_errors *errs)
{
    if (xsd == NULL)
        return -EWTP_EINVAL;
    xmlDocPtr doc;
    int rc = parse_doc(data, len, errs, &doc);
    if (rc < 0)
        return rc;
    rc = validate(xsd, doc, errs);
    xmlFreeDoc(doc);
    return rc;
}

int ewtp_xsd_validate_doc(const struct ewtp_xsd *xsd, const struct ewtp_xml_doc *doc,
                          struct ewtp_errors *errs)
{
    if (xsd == NULL || doc == NULL)
        return -EWTP_EINVAL;
    return validate(xsd, doc->doc, errs);
}

/* ---- C14N ---- */

const char *ewtp_c14n_uri(enum ewtp_c14n mode, bool with_comments)
{
    switch (mode) {
    case EWTP_C14N_10:
        return with_comments ? "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"
                             : "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
    case EWTP_C14N_EXCL_10:
        return with_comments ? "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
                             : "http://www.w3.org/2001/10/xml-exc-c14n#";
    case EWTP_C14N_11:
        return with_comments ? "http://www.w3.org/2006/12/xml-c14n11#WithComments"
                             : "http://www.w3.org/2006/12/xml-c14n11";
    }
    return NULL;
}

struct c14n_vis {
    xmlNodePtr *apex;
    size_t napex;
    xmlNodePtr exclude;
};

/* A node is visible when it lies in one of the apex subtrees (or anywhere, without apexes)
 * and not inside the excluded subtree. Attributes and namespace nodes go by their element;
 * libxml2 passes that element as parent (an xmlNs shares xmlNode's type field offset). */
static int c14n_visible(void *user, xmlNodePtr node, xmlNodePtr parent)
{
    const struct c14n_vis *v = user;
    xmlNodePtr n = node;
    if (node == NULL)
        return 0;
    if (node->type == XML_NAMESPACE_DECL || node->type == XML_ATTRIBUTE_NODE)
        n = parent;
    for (xmlNodePtr p = n; p != NULL; p = p->parent) {
        if (p == v->exclude)
            return 0;
        for (size_t i = 0; i < v->napex; i++)
            if (p == v->apex[i])
                return 1;
    }
    return v->napex == 0;
}

int ewtpi_xml_c14n_nodes(xmlDocPtr doc, xmlNodePtr *apex, size_t napex, xmlNodePtr exclude,
                         enum ewtp_c14n mode, bool with_comments,
                         const char *const *inclusive_prefixes, struct ewtp_arena *a,
                         const char **out, size_t *len)
{
    int m;
    switch (mode) {
    case EWTP_C14N_10:
        m = XML_C14N_1_0;
        break;
    case EWTP_C14N_EXCL_10:
        m = XML_C14N_EXCLUSIVE_1_0;
        break;
    case EWTP_C14N_11:
        m = XML_C14N_1_1;
        break;
    default:
        return -EWTP_EINVAL;
    }
    if (doc == NULL || out == NULL || len == NULL)
        return -EWTP_EINVAL;
    xmlOutputBufferPtr buf = xmlAllocOutputBuffer(NULL);
    if (buf == NULL)
        return -EWTP_ENOMEM;
    struct c14n_vis vis = {.apex = apex, .napex = napex, .exclude = exclude};
    /* libxml2 takes a non-const list it does not modify. */
    int r = xmlC14NExecute(doc, c14n_visible, &vis, m,
                           m == XML_C14N_EXCLUSIVE_1_0 ? (xmlChar **)inclusive_prefixes : NULL,
                           with_comments ? 1 : 0, buf);
    int rc = 0;
    if (r < 0) {
        rc = -EWTP_EFORMAT;
    } else {
        size_t n = xmlOutputBufferGetSize(buf);
        const char *s = ewtp_arena_memdup(a, xmlOutputBufferGetContent(buf), n);
        if (s == NULL) {
            rc = -EWTP_ENOMEM;
        } else {
            *out = s;
            *len = n;
        }
    }
    xmlOutputBufferClose(buf);
    return rc;
}

int ewtp_xml_c14n(struct ewtp_xml_doc *doc, const char *xpath, enum ewtp_c14n mode,
                  bool with_comments, const char *const *inclusive_prefixes, struct ewtp_arena *a,
                  const char **out, size_t *len)
{
    if (doc == NULL)
        return -EWTP_EINVAL;
    if (xpath == NULL)
        return ewtpi_xml_c14n_nodes(doc->doc, NULL, 0, NULL, mode, with_comments,
                                    inclusive_prefixes, a, out, len);
    xmlXPathObjectPtr r;
    int rc = ewtpi_xml_eval_nodes(doc, NULL, xpath, &r);
    if (rc < 0)
        return rc;
    if (set_len(r) == 0) {
        xmlXPathFreeObject(r);
        return -EWTP_ENOTFOUND;
    }
    rc = ewtpi_xml_c14n_nodes(doc->doc, r->nodesetval->nodeTab, set_len(r), NULL, mode,
                              with_comments, inclusive_prefixes, a, out, len);
    xmlXPathFreeObject(r);
    return rc;
}

int ewtp_xml_serialize(const struct ewtp_xml_doc *doc, struct ewtp_arena *a, const char **out,
                       size_t *len)
{
    if (doc == NULL || out == NULL || len == NULL)
        return -EWTP_EINVAL;
    xmlChar *mem = NULL;
    int n = 0;
    xmlDocDumpMemoryEnc(doc->doc, &mem, &n, "UTF-8");
    if (mem == NULL)
        return -EWTP_ENOMEM;
    const char *s = ewtp_arena_memdup(a, mem, (size_t)n);
    xmlFree(mem);
    if (s == NULL)
        return -EWTP_ENOMEM;
    *out = s;
    *len = (size_t)n;
    return 0;
}
