/* zz.h — the template plugin's private contract (destination ZZ, the "ZZ test authority").
 *
 * TODO(country): your authority's protocol here and in zz_translate.c / zz_interpret.c:
 * endpoints, methods, authentication, the document it takes and the answers it gives.
 * The ZZ authority is a small REST service, like most tax and customs APIs:
 *   POST {endpoint}/v1/submissions   body: the ZZ XML document, Bearer token, X-Request-Id
 *   GET  {endpoint}/v1/submissions/{reference}        status of a submission (poll)
 *   answers: JSON
 * {"reference","status":"received|accepted|rejected","errors":[{code,message,path}]} A country team
 * replaces these three files' protocol with its authority's, keeps the shape: create() reads and
 * checks settings once; every other callback is pure. */
#ifndef ZZ_H
#define ZZ_H

#include <ewtp/plugin.h>

#define ZZ_NS "urn:ewtp:template:zz:1"

/* Immutable after create. */
struct zz_state {
    const char *sender_id;  /* our id at the authority */
    const char *token_file; /* bearer token, read through the host at send time; NULL: test */
    const char *sign_key;   /* host key name; NULL: documents are not signed */
    bool chain_numbering;   /* submissions carry the host's chain position (Header/Sequence) */
};

void zz_validate(const void *state, const struct ewtp_call *c, struct ewtp_errors *errs);
int zz_translate(const void *state, const struct ewtp_call *c, struct ewtp_out *out,
                 struct ewtp_errors *errs);
/* Signs *xml in place (enveloped XML-DSig, RSA-SHA256) with the instance's key. */
int zz_sign(const struct zz_state *st, const struct ewtp_call *c, const char **xml, size_t *len);
int zz_poll(const void *state, const struct ewtp_call *c, struct ewtp_out *out);
int zz_interpret(const void *state, const struct ewtp_call *c, const struct ewtp_response *resp,
                 struct ewtp_outcome *o);
int zz_receive(const void *state, const struct ewtp_inbound *in, struct ewtp_correlation *to,
               struct ewtp_outcome *o);

#endif
