/* xml_internal.h — what dsig.c needs from xml.c beyond the public ewtp/xml.h.
 * Internal to libewtp: names start with ewtpi_ so the version script does not export them. */
#ifndef EWTP_XML_INTERNAL_H
#define EWTP_XML_INTERNAL_H

#include <ewtp/xml.h>

#include <libxml/tree.h>
#include <libxml/xpath.h>

struct xml_nsreg {
    char *prefix;
    char *uri;
};

struct ewtp_xml_doc {
    xmlDocPtr doc;
    xmlXPathContextPtr xp; /* created on first query, cached */
    struct xml_nsreg *ns;
    size_t nns;
};

/* Canonicalises doc: everything (napex 0) or the subtrees rooted at apex[0..napex), minus the
 * subtree rooted at exclude (may be NULL; the enveloped-signature transform). Output is
 * copied into the arena. 0, -EWTP_ENOMEM, -EWTP_EINVAL (mode), -EWTP_EFORMAT (libxml2
 * failed). */
int ewtpi_xml_c14n_nodes(xmlDocPtr doc, xmlNodePtr *apex, size_t napex, xmlNodePtr exclude,
                         enum ewtp_c14n mode, bool with_comments,
                         const char *const *inclusive_prefixes, struct ewtp_arena *a,
                         const char **out, size_t *len);

/* Evaluates xpath (context node ctx, NULL = document) to a node set; the caller frees *res
 * with xmlXPathFreeObject. -EWTP_EINVAL when the expression fails or is not a node set. */
int ewtpi_xml_eval_nodes(struct ewtp_xml_doc *d, xmlNodePtr ctx, const char *xpath,
                         xmlXPathObjectPtr *res);

/* True when s is valid UTF-8 made only of XML 1.0 characters. */
bool ewtpi_xml_text_ok(const char *s, size_t len);

#endif
