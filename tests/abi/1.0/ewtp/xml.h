/* ewtp/xml.h — writing, reading, validating and canonicalising XML (libxml2 underneath).
 *
 * Writer: builds a UTF-8 document in memory, element by element. Errors are sticky: every
 * call returns 0 or -EWTP_E*, and after the first error further calls do nothing and return
 * that same error, so a plugin may write a whole document and check only
 * ewtp_xml_writer_finish(). Text and attribute values must be valid UTF-8 made of XML 1.0
 * characters (no NUL or other C0 controls except tab, LF, CR): anything else is
 * -EWTP_EFORMAT, never malformed output. Names must be XML NCNames.
 *
 * Reader: parses bytes into a document that stays immutable afterwards. The parser never
 * touches the network, never loads external DTDs or entities and refuses any document with a
 * DOCTYPE (so XXE and entity expansion bombs cannot happen). XPath 1.0 queries use the
 * namespace prefixes registered on the document (ewtp_xml_ns), never the document's own.
 *
 * Threads: a writer and a document belong to one thread at a time (the XPath context is
 * cached in the document). A loaded schema (struct ewtp_xsd) is immutable and may be used by
 * any number of threads at once. Everything handed out in an arena lives until the arena is
 * freed; node pointers are borrowed until the document is freed.
 */
#ifndef EWTP_XML_H
#define EWTP_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/arena.h>
#include <ewtp/decimal.h>
#include <ewtp/errors.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Writer ----------------------------------------------------------------------------- */

struct ewtp_xml_writer;

#define EWTP_XML_INDENT 0x1u  /* two spaces per level, elements on their own lines */
#define EWTP_XML_NO_DECL 0x2u /* no <?xml version="1.0" encoding="UTF-8"?> line */

/* New writer (the XML declaration is written at once unless EWTP_XML_NO_DECL); caller frees
 * with ewtp_xml_writer_free(). NULL when out of memory. */
struct ewtp_xml_writer *ewtp_xml_writer_new(unsigned flags);
void ewtp_xml_writer_free(struct ewtp_xml_writer *w); /* NULL is a no-op */

/* Opens <prefix:name> (prefix NULL or "" for none). The prefix's namespace is declared
 * with ewtp_xml_ns on this element or an ancestor; the writer does not check that. */
int ewtp_xml_start(struct ewtp_xml_writer *w, const char *prefix, const char *name);
/* Declares xmlns:prefix="uri" (prefix NULL or "": xmlns="uri") on the element just opened;
 * call before any child or text. */
int ewtp_xml_ns(struct ewtp_xml_writer *w, const char *prefix, const char *uri);
/* Attribute on the element just opened; value NULL writes nothing (returns 0). */
int ewtp_xml_attr(struct ewtp_xml_writer *w, const char *prefix, const char *name,
                  const char *value);
/* Escaped character data; NULL writes nothing. */
int ewtp_xml_text(struct ewtp_xml_writer *w, const char *text);
/* Closes the innermost open element (-EWTP_EINVAL when none is open). An element with
 * neither children nor text is written <a/>. */
int ewtp_xml_end(struct ewtp_xml_writer *w);

/* Shortcuts for <prefix:name>text</prefix:name>. NULL text (or NULL d) writes nothing and
 * returns 0: optional members simply vanish. "" writes <a></a>. */
int ewtp_xml_elem(struct ewtp_xml_writer *w, const char *prefix, const char *name,
                  const char *text);
/* printf-formatted text; always writes the element. */
int ewtp_xml_elemf(struct ewtp_xml_writer *w, const char *prefix, const char *name, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
int ewtp_xml_elem_int(struct ewtp_xml_writer *w, const char *prefix, const char *name, int64_t v);
/* A decimal with exactly its own scale ("1.50" stays "1.50"). */
int ewtp_xml_elem_dec(struct ewtp_xml_writer *w, const char *prefix, const char *name,
                      const struct ewtp_dec *d);
/* A decimal rounded half-up to exactly places decimals (ewtp_dec_format_places). */
int ewtp_xml_elem_dec_places(struct ewtp_xml_writer *w, const char *prefix, const char *name,
                             const struct ewtp_dec *d, unsigned places);

/* Closes every open element, ends the document and copies it (NUL-terminated, *len without
 * the NUL) into the arena. Returns 0 or the first error of any earlier call. The writer
 * accepts nothing afterwards; free it. */
int ewtp_xml_writer_finish(struct ewtp_xml_writer *w, struct ewtp_arena *a, const char **out,
                           size_t *len);

/* ---- Reader ----------------------------------------------------------------------------- */

struct ewtp_xml_doc;
struct ewtp_xml_node; /* a libxml2 node, opaque; borrowed while the document lives */

/* Parses len bytes (UTF-8, or the encoding its declaration names). On success *out is a new
 * document (caller frees with ewtp_xml_free). On failure returns -EWTP_EFORMAT (not
 * well-formed, or a DOCTYPE: code "unsupported") and appends one entry per parser error to
 * errs (may be NULL): pointer "", code "format", message "line N: ...". -EWTP_ENOMEM. */
int ewtp_xml_parse(const void *data, size_t len, struct ewtp_errors *errs,
                   struct ewtp_xml_doc **out);
void ewtp_xml_free(struct ewtp_xml_doc *doc); /* NULL is a no-op */

/* Registers a prefix for XPath queries on this document (0, -EWTP_EINVAL, -EWTP_ENOMEM).
 * Registering a prefix again replaces its URI. */
int ewtp_xml_ns_register(struct ewtp_xml_doc *doc, const char *prefix, const char *uri);

/* The document element (never NULL for a parsed document). */
const struct ewtp_xml_node *ewtp_xml_root(const struct ewtp_xml_doc *doc);
/* Local name, namespace URI (NULL when none) and source line of an element. The strings are
 * borrowed from the document. */
const char *ewtp_xml_node_name(const struct ewtp_xml_node *node);
const char *ewtp_xml_node_ns(const struct ewtp_xml_node *node);
long ewtp_xml_node_line(const struct ewtp_xml_node *node);

/* XPath 1.0. ctx is the context node for relative expressions ("ceb:gcode" from a line
 * element); NULL means the document. An invalid expression or unknown prefix is
 * -EWTP_EINVAL. */

/* The string value of the result (XPath string()): for a node set, of its first node in
 * document order. -EWTP_ENOTFOUND when the expression selects no node. The string is in the
 * arena. */
int ewtp_xml_xpath_string(struct ewtp_xml_doc *doc, const struct ewtp_xml_node *ctx,
                          const char *xpath, struct ewtp_arena *a, const char **out);
/* Number of nodes selected (0 is not an error). -EWTP_EINVAL when the result is not a node
 * set. */
int ewtp_xml_xpath_count(struct ewtp_xml_doc *doc, const struct ewtp_xml_node *ctx,
                         const char *xpath, size_t *count);
/* The selected nodes in document order, as an array in the arena (*n may be 0; the array is
 * then non-NULL but empty). Iterate and query each node with relative XPath. */
int ewtp_xml_xpath_nodes(struct ewtp_xml_doc *doc, const struct ewtp_xml_node *ctx,
                         const char *xpath, struct ewtp_arena *a,
                         const struct ewtp_xml_node ***nodes, size_t *n);

/* ---- XSD validation --------------------------------------------------------------------- */

struct ewtp_xsd;

/* Loads and compiles the schema at path (its includes and imports are resolved relative to
 * it; schema files are trusted configuration). 0 and *out (caller frees with ewtp_xsd_free),
 * or -EWTP_EIO / -EWTP_EFORMAT with the schema parser's messages appended to errs (may be
 * NULL). */
int ewtp_xsd_load(const char *path, struct ewtp_errors *errs, struct ewtp_xsd **out);
void ewtp_xsd_free(struct ewtp_xsd *xsd); /* NULL is a no-op */

/* Validates a document's bytes (parsed as ewtp_xml_parse does). Returns 0 when valid;
 * -EWTP_EINVAL when not, with every schema error appended to errs as pointer "", code
 * "schema", message "line N: <libxml2's message>" (the element path in the message);
 * -EWTP_EFORMAT when not well-formed (errors as ewtp_xml_parse). Thread-safe. */
int ewtp_xsd_validate(const struct ewtp_xsd *xsd, const void *data, size_t len,
                      struct ewtp_errors *errs);
/* Same on an already parsed document (which validation does not change). */
int ewtp_xsd_validate_doc(const struct ewtp_xsd *xsd, const struct ewtp_xml_doc *doc,
                          struct ewtp_errors *errs);

/* ---- Canonical XML ---------------------------------------------------------------------- */

enum ewtp_c14n {
    EWTP_C14N_10 = 0,      /* http://www.w3.org/TR/2001/REC-xml-c14n-20010315 (inclusive) */
    EWTP_C14N_EXCL_10 = 1, /* http://www.w3.org/2001/10/xml-exc-c14n# (exclusive) */
    EWTP_C14N_11 = 2,      /* http://www.w3.org/2006/12/xml-c14n11 */
};

/* The algorithm URI (with "#WithComments" appended for comments), never NULL for a known
 * mode. */
const char *ewtp_c14n_uri(enum ewtp_c14n mode, bool with_comments);

/* Canonical form of the document (xpath NULL) or of the subtrees rooted at the elements
 * xpath selects (e.g. "//ds:SignedInfo"), in document order; a subtree keeps the namespace
 * context of its ancestors as C14N of a document subset requires (inclusive modes render
 * in-scope namespaces on the apex; exclusive renders only those visibly used).
 * inclusive_prefixes is the exclusive mode's InclusiveNamespaces PrefixList (NULL-terminated
 * array, or NULL). Output in the arena (NUL-terminated; *len excludes it). -EWTP_ENOTFOUND
 * when xpath selects nothing, -EWTP_EINVAL for a bad xpath or mode. */
int ewtp_xml_c14n(struct ewtp_xml_doc *doc, const char *xpath, enum ewtp_c14n mode,
                  bool with_comments, const char *const *inclusive_prefixes, struct ewtp_arena *a,
                  const char **out, size_t *len);

/* Serialises the document as UTF-8 with an XML declaration, unchanged otherwise (no
 * reindentation), into the arena. */
int ewtp_xml_serialize(const struct ewtp_xml_doc *doc, struct ewtp_arena *a, const char **out,
                       size_t *len);

#ifdef __cplusplus
}
#endif
#endif
