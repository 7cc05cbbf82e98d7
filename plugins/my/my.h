/* my.h — the Malaysia plugin's private contract: LHDN MyInvois e-invoices (UBL 2.1, v1.1).
 *
 * Files: my_plugin.c (descriptor, settings, classify, validate), my_ubl.c (the UBL document
 * as a neutral tree, written as XML or as UBL JSON), my_sign.c (the MyInvois signature:
 * document digest, .NET-style SignedProperties digest, certificate digest, RSA-SHA256 over
 * the transformed document, not over SignedInfo), my_api.c (submission requests, batches,
 * interpret, poll, cancel), the code tables (my_codes.h, generated from data/ at build time). */
#ifndef MY_H
#define MY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/plugin.h>
#include <ewtp/xml.h>

/* ---- code tables ----
 * LHDN's tables, generated at build time from the JSON files in data/ (CMakeLists.txt):
 * my_codes_<name>, rows {code, name}, looked up with ewtp_code_table_find (ewtp/codes.h). */
#include "my_codes.h"

/* ---- settings ---- */
enum my_format { MY_FMT_XML = 0, MY_FMT_JSON };
enum my_hash_enc { MY_HASH_HEX = 0, MY_HASH_BASE64 };

/* Immutable after create. */
struct my_state {
    enum my_format format;
    const char *version;     /* "1.1" (signed) or "1.0" (unsigned) */
    const char *sign_key;    /* host key name */
    const char *issuer_name; /* X509IssuerName override; NULL: from the certificate */
    enum my_hash_enc hash_enc;
    const char *taxpayer_tin; /* NULL: not checked */
    bool intermediary;        /* send onbehalfof: <TIN>[:<BRN>] */
    const char *onbehalfof;   /* fixed onbehalfof value; NULL: derived from the issuer */
    const char *msic_code, *business_activity; /* fallbacks for ext.my */
    int64_t max_issue_age_ms;                  /* IssueDate window (72 h) */
    int64_t cancel_window_ms;                  /* cancel window after validation (72 h) */
    bool fx_tax_in_myr;                        /* FX invoices: tax amounts in MYR */
    const char *portal_url;                    /* validation link base */
    struct ewtp_xsd *xsd;                      /* XSD checked before signing, or NULL */
};

/* ---- my_plugin.c ---- */
void my_validate(const void *state, const struct ewtp_call *c, struct ewtp_errors *errs);
/* The issuer of the document: the seller, or the buyer for self-billed documents. */
bool my_self_billed(const struct ewtp_message *m);
const char *my_ext_string(const struct ewtp_message *m, const char *member);
const char *my_ext_line_string(const struct ewtp_message *m, size_t i, const char *member);
/* A note's original invoice among the related messages (same number and issuer: the relation
 * key "my-invoice:<issuer TIN>:<number>" holds both), or NULL. */
const struct ewtp_related *my_original(const struct ewtp_call *c);
/* A note's original LHDN UUID: ext.my.original_uuid, else the authority reference of its
 * original (my_original) unless that was rejected or cancelled; NULL when neither is known. */
const char *my_original_uuid(const struct ewtp_call *c);
/* Credit, debit and refund notes (they reference an original invoice). */
bool my_is_note(const struct ewtp_invoice *inv);
/* MyInvois invoice type code "01".."14". */
const char *my_type_code(const struct ewtp_message *m);
/* Region -> state code "01".."17" (code or name, case-insensitive), NULL when unknown. */
const char *my_state_code(const char *region);
/* MyInvois payment means code from UNCL 4461 or a MyInvois code; NULL when unknown. */
const char *my_payment_code(const char *code);

/* ---- my_ubl.c ---- */
/* The unsigned document in the instance's format. For signing, body_only leaves out the
 * UBLExtensions and cac:Signature (XML) / "UBLExtensions" and "Signature" (JSON). */
struct my_sig_parts; /* my_sign.c: the signature values to embed */
int my_ubl_build(const struct my_state *st, const struct ewtp_call *c, enum my_format fmt,
                 const struct my_sig_parts *sig, bool body_only, const char **out, size_t *len);

/* ---- my_sign.c ---- */
struct my_sig_parts {
    const char *doc_digest, *props_digest, *signature_value, *cert_b64;
    const char *signing_time, *cert_digest, *issuer_name, *serial, *subject_name;
    const char *props_json; /* JSON: the QualifyingProperties object exactly as digested */
};
/* The .NET XmlWriter serialisation of xades:SignedProperties that LHDN digests. */
char *my_xml_signed_props(struct ewtp_arena *a, const char *signing_time, const char *cert_digest,
                          const char *issuer, const char *serial);
/* Base64(SHA-256(data)). */
char *my_b64_sha256(struct ewtp_arena *a, const void *data, size_t len);
/* Issuer DN (as .NET renders it: last RDN first, ", " between), decimal serial and subject
 * of a DER certificate; -EWTP_EFORMAT when it is not one. */
int my_cert_facts(struct ewtp_arena *a, const unsigned char *der, size_t len, const char **issuer,
                  const char **serial, const char **subject);
/* Signs: builds the body, digests, signs through the host, returns the signed document. */
int my_sign_document(const struct my_state *st, const struct ewtp_call *c, enum my_format fmt,
                     const char **out, size_t *len);
/* The MyInvois transform of a signed or unsigned document (XML: without UBLExtensions and
 * the top-level cac:Signature, whitespace-only text dropped, inclusive C14N 1.0; JSON:
 * minified without Invoice[0].UBLExtensions/Signature). */
int my_transform_xml(struct ewtp_arena *a, const char *doc, size_t len, const char **out,
                     size_t *out_len);
int my_transform_json(struct ewtp_arena *a, const char *doc, size_t len, const char **out,
                      size_t *out_len);
/* Recomputes and checks every digest of a signed document and verifies its RSA-SHA256
 * signature value over the transformed document with the embedded certificate's key
 * (ewtp_sig_verify): the simulator's and the tests' verifier. Returns 0, or -EWTP_ECRYPTO
 * with the DS3xx code of the first mismatch in *code and a sentence in *why. Certificate
 * validity, chain and subject (DS304, DS329, DS310-312) are not checked here. */
int my_verify_digests(struct ewtp_arena *a, const char *doc, size_t len, bool json,
                      const char **code, const char **why);

/* ---- my_api.c ---- */
int my_translate(const void *state, const struct ewtp_call *c, struct ewtp_out *out,
                 struct ewtp_errors *errs);
int my_translate_batch(const void *state, const struct ewtp_call *const *calls, size_t n,
                       struct ewtp_out *out, struct ewtp_errors *errs);
int my_interpret(const void *state, const struct ewtp_call *c, const struct ewtp_response *resp,
                 struct ewtp_outcome *o);
int my_interpret_batch(const void *state, const struct ewtp_call *const *calls, size_t n,
                       const struct ewtp_response *resp, struct ewtp_outcome *const *outcomes);
int my_poll(const void *state, const struct ewtp_call *c, struct ewtp_out *out);

/* MyInvois limits [SUBMIT]. */
#define MY_MAX_DOCS 100
#define MY_MAX_SUBMISSION_BYTES (5u * 1024u * 1024u)
#define MY_MAX_DOC_BYTES (300u * 1024u)

#endif
