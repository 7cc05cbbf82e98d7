/* ewtp/dsig.h — XML-DSig 1.0 enveloped signatures on top of the host's signer.
 *
 * The plugin never holds key material: ewtp_dsig_sign builds the ds:Signature element,
 * computes the reference digest itself, canonicalises SignedInfo and asks host->sign (and
 * host->cert for KeyInfo) to do the private-key operation. The output verifies with
 * `xmlsec1 --verify` (RSA, ECDSA) and with the openssl CLI (SM2, see tests/unit/test_dsig.c).
 *
 * What is signed (the profile China's CEB messages use, FACTS.md §6, and the common one):
 *   - one Reference URI="" (the whole document) with the transform
 *     http://www.w3.org/2000/09/xmldsig#enveloped-signature; its digest input is the
 *     document without the Signature element, canonicalised with inclusive C14N 1.0 without
 *     comments (the implicit node-set-to-octets step of XML-DSig; URI="" drops comments
 *     anyway). EWTP_DSIG_REF_EXCL_C14N adds an explicit exclusive C14N transform instead.
 *   - SignedInfo canonicalised with options.c14n (CanonicalizationMethod): default inclusive
 *     C14N 1.0 without comments, http://www.w3.org/TR/2001/REC-xml-c14n-20010315, which is
 *     what the CEB specification names. Inclusive C14N renders the namespaces SignedInfo
 *     inherits (e.g. xmlns:ceb) on it; that is why the signature is computed in place, after
 *     the Signature element has been inserted into the document.
 *
 * Algorithm URIs (defaults; each may be overridden in the options):
 *   EWTP_SIGN_RSA_SHA1     http://www.w3.org/2000/09/xmldsig#rsa-sha1
 *                          digest http://www.w3.org/2000/09/xmldsig#sha1
 *   EWTP_SIGN_RSA_SHA256   http://www.w3.org/2001/04/xmldsig-more#rsa-sha256
 *                          digest http://www.w3.org/2001/04/xmlenc#sha256
 *   EWTP_SIGN_ECDSA_SHA256 http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256
 *                          digest http://www.w3.org/2001/04/xmlenc#sha256; SignatureValue is
 *                          r||s (XML-DSig 1.1), converted from the host's DER
 *   EWTP_SIGN_SM2_SM3      http://www.chinaport.gov.cn/2022/04/xmldsig#sm2-sm3
 *                          digest http://www.chinaport.gov.cn/2022/04/xmldsig#sm3
 *     These are the URIs of the CEB specification 2022-05 and of 18 of its 19 signed
 *     official samples. A popular third-party signer writes
 *     http://www.w3.org/2000/09/xmldsig#sm2-sm3 with a SHA-1 digest instead
 *     (EWTP_DSIG_URI_SM2_SM3_W3C; set signature_method_uri and digest = EWTP_DIGEST_SHA1 to
 *     imitate it). The SM2 distinguishing id is "1234567812345678" (GM/T 0009 default, done
 *     by the host); SignatureValue holds the DER (r,s) the host returns, or the 64-byte r||s
 *     with EWTP_DSIG_SM2_RAW: which one China E-port expects is not documented.
 *
 * KeyInfo (options.keyinfo): KeyName first (CEB puts the certificate number there; by default
 * the certificate serial as lowercase hex with an even number of digits, e.g. "01691fe9"),
 * then X509Data with X509IssuerSerial and/or X509Certificate (Base64 DER from host->cert).
 *
 * Threads: all functions are reentrant; concurrency is the host's sign/cert functions'.
 */
#ifndef EWTP_DSIG_H
#define EWTP_DSIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/arena.h>
#include <ewtp/crypto.h>
#include <ewtp/errors.h>
#include <ewtp/host.h>
#include <ewtp/xml.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EWTP_DSIG_NS "http://www.w3.org/2000/09/xmldsig#"
#define EWTP_DSIG_ENVELOPED "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
#define EWTP_DSIG_URI_RSA_SHA1 "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
#define EWTP_DSIG_URI_RSA_SHA256 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
#define EWTP_DSIG_URI_ECDSA_SHA256 "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
#define EWTP_DSIG_URI_SM2_SM3 "http://www.chinaport.gov.cn/2022/04/xmldsig#sm2-sm3"
#define EWTP_DSIG_URI_SM2_SM3_W3C "http://www.w3.org/2000/09/xmldsig#sm2-sm3"
#define EWTP_DSIG_URI_SHA1 "http://www.w3.org/2000/09/xmldsig#sha1"
#define EWTP_DSIG_URI_SHA256 "http://www.w3.org/2001/04/xmlenc#sha256"
#define EWTP_DSIG_URI_SM3 "http://www.chinaport.gov.cn/2022/04/xmldsig#sm3"

/* options.keyinfo bits */
#define EWTP_DSIG_KEYNAME 0x1u   /* <KeyName> */
#define EWTP_DSIG_X509_CERT 0x2u /* <X509Data><X509Certificate> */
#define EWTP_DSIG_X509_ISSUER_SERIAL                                                               \
    0x4u /* <X509Data><X509IssuerSerial> (RFC 2253 issuer,                                         \
            decimal serial) */

/* options.flags bits */
#define EWTP_DSIG_PRETTY                                                                           \
    0x1u                             /* a newline before each child element inside Signature       \
                                        and Base64 wrapped at 76 columns, like the CEB samples;    \
                                        nothing is added outside the Signature element */
#define EWTP_DSIG_REF_EXCL_C14N 0x2u /* Reference transforms: enveloped, then exclusive C14N */
#define EWTP_DSIG_SM2_RAW 0x4u       /* SM2 SignatureValue as r||s (64 bytes), not DER */

/* Options. Initialise with ewtp_dsig_options_init, then set what differs: members are only
 * ever appended and the library reads only the first `size` bytes, so a plugin built against
 * an older header keeps working. */
struct ewtp_dsig_options {
    size_t size;            /* sizeof(struct ewtp_dsig_options), set by _init */
    enum ewtp_sign_alg alg; /* required */
    const char *key_name;   /* the host's key name (an instance setting); required */
    /* Where the Signature goes: the first element parent_xpath selects (NULL: the document
     * element), as its last child, or before the first node before_xpath selects relative to
     * that parent (e.g. "ceb:ExtendMessage" for the export schema, which wants ds:Signature
     * before it); when before_xpath selects nothing, last child again. */
    const char *parent_xpath;
    const char *before_xpath;
    const char *const *ns;     /* {"ceb", "http://www.chinaport.gov.cn/ceb", ..., NULL}: prefixes
                                  for the two XPaths */
    const char *ds_prefix;     /* default "ds"; "" declares the namespace as default */
    enum ewtp_c14n c14n;       /* SignedInfo canonicalisation; default EWTP_C14N_10 */
    bool c14n_comments;        /* default false */
    unsigned keyinfo;          /* default EWTP_DSIG_KEYNAME | EWTP_DSIG_X509_CERT; 0: no KeyInfo */
    const char *key_name_text; /* KeyName text; NULL: the certificate serial in hex */
    const char *signature_method_uri; /* NULL: the default for alg (table above) */
    const char *digest_method_uri;    /* NULL: the default for digest */
    enum ewtp_digest_alg digest;      /* 0: the default for alg */
    const char *signature_id;         /* Id attribute of Signature; NULL: none */
    unsigned flags;                   /* EWTP_DSIG_PRETTY, ... */
#ifdef EWTP_ABI_TEST_GROWN            /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

/* Sets every member to its default (size, CEB profile) plus alg and key_name. */
void ewtp_dsig_options_init(struct ewtp_dsig_options *o, enum ewtp_sign_alg alg,
                            const char *key_name);

/* Default URIs for an algorithm (NULL for an unknown one). */
const char *ewtp_dsig_signature_method_uri(enum ewtp_sign_alg alg);
const char *ewtp_dsig_digest_method_uri(enum ewtp_digest_alg alg);

/* Signs len bytes of XML (parsed as ewtp_xml_parse does: no DOCTYPE) with an enveloped
 * signature and writes the signed document (UTF-8, XML declaration, otherwise unchanged
 * bytes-for-canonical-form) into the arena, NUL-terminated. Returns 0, -EWTP_EINVAL (bad
 * options or XPath), -EWTP_EFORMAT (not well-formed), -EWTP_ENOTFOUND (parent not found, or
 * the host's key or certificate), -EWTP_EUNSUPP (the host has no sign/cert function, or the
 * key does not do alg), -EWTP_ECRYPTO, -EWTP_ENOMEM. */
int ewtp_dsig_sign(const struct ewtp_host *host, const struct ewtp_dsig_options *opt,
                   const void *doc, size_t len, struct ewtp_arena *a, const char **out,
                   size_t *out_len);

/* Verifies the first ds:Signature of a document, for simulators and tests: exactly one
 * Reference URI="" with the enveloped transform (and optionally a C14N transform), any of
 * the algorithm URIs above, inclusive/exclusive C14N with or without comments. The public
 * key is taken from cert_der (DER X.509, the trust decision is the caller's); with
 * cert_der NULL the certificate in KeyInfo/X509Data/X509Certificate is used, which proves
 * integrity only, not who signed (anyone can embed a certificate of their own: to decide who
 * signed, use ewtp_dsig_verify_trusted with a trust store). SM2 SignatureValue may be DER or r||s.
 * Returns 0 when valid; -EWTP_ECRYPTO when the digest or the signature does not match,
 * -EWTP_EFORMAT / -EWTP_ENOTFOUND for a malformed or missing signature, -EWTP_EUNSUPP for an
 * unknown algorithm or transform; the reason is appended to errs (may be NULL) with code
 * "signature". */
int ewtp_dsig_verify(const void *doc, size_t len, const unsigned char *cert_der, size_t cert_len,
                     struct ewtp_errors *errs);

/* 1.7: what ewtp_dsig_verify_trusted trusts: DER X.509 certificates, each either a trust
 * anchor (a CA whose chain the signing certificate must verify to) or a pinned signing
 * certificate (trusted as itself). Initialise with EWTP_DSIG_TRUST_INIT(...); the library reads
 * only the first `size` bytes. */
struct ewtp_dsig_trust {
    size_t size;                       /* sizeof(struct ewtp_dsig_trust) of the caller */
    const unsigned char *const *certs; /* n_certs DER certificates */
    const size_t *cert_lens;           /* their lengths */
    size_t n_certs;
    int64_t at_ms; /* validity checked at this time (ms since the epoch); 0: now */
};
#define EWTP_DSIG_TRUST_INIT(...)                                                                  \
    {                                                                                              \
        .size = sizeof(struct ewtp_dsig_trust), __VA_ARGS__                                        \
    }

/* 1.7 (symbol node EWTP_1.7): verifies the first ds:Signature as ewtp_dsig_verify does, and
 * then that the certificate which verified it is trusted: it is one of trust->certs, or its
 * chain verifies (X509_verify_cert, validity at trust->at_ms) to one of them. The certificates
 * the document carries are used as the signer's only, never as anchors: a document signed by
 * any key with its own certificate embedded is refused. A document without an
 * X509Certificate is verified with each trusted certificate in turn. Returns 0 when valid and
 * trusted; -EWTP_ECRYPTO when the digest, the signature or the trust does not hold (errs says
 * which, code "signature"); -EWTP_EINVAL when trust holds no certificate; otherwise as
 * ewtp_dsig_verify. */
int ewtp_dsig_verify_trusted(const void *doc, size_t len, const struct ewtp_dsig_trust *trust,
                             struct ewtp_errors *errs);

#ifdef __cplusplus
}
#endif
#endif
