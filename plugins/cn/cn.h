/* cn.h — the China plugin's private contract: GACC cross-border e-commerce (CEB) messages of
 * the 2022-05 specification, XML-DSig (SM2-SM3 or RSA-SHA1), DXP terminal-node envelopes
 * written to the customs client's spool folder, and the receipts that come back there.
 * Facts and sources: ../../shared/reference/cn/FACTS.md; mapping and choices: README.md. */
#ifndef CN_H
#define CN_H

#include <stdbool.h>

#include <ewtp/decimal.h>
#include <ewtp/json.h>
#include <ewtp/plugin.h>
#include <ewtp/xml.h>

#define CN_NS_CEB "http://www.chinaport.gov.cn/ceb"
#define CN_NS_DXP "http://www.chinaport.gov.cn/dxp"
#define CN_NS_DS "http://www.w3.org/2000/09/xmldsig#"
#define CN_MAX_UNIT_OVERRIDES 16

/* The code tables of codes/ (ISO/UN code -> China customs code), generated at build time:
 * cn_codes_currency, cn_codes_country, cn_codes_unit, cn_codes_transport_mode; rows {key,
 * value}, read with cn_code() or ewtp_code_table_find (ewtp/codes.h). */
#include "cn_codes.h"

/* A unit override (setting units.<rec20>); the list ends with {0, 0}. */
struct cn_code {
    const char *key, *value;
};

/* Immutable after create (strings owned by the state). */
struct cn_state {
    const char *cop_code, *cop_name; /* BaseTransfer: the transmitting enterprise */
    const char *dxp_id;              /* our DXP user id (SenderId, dxpId) */
    const char *receiver_import, *receiver_export;
    const char *sign_key; /* host key name */
    enum ewtp_sign_alg sign_alg;
    const char *cert_no;                 /* KeyName text; NULL: certificate serial in hex */
    const char *signature_method_uri;    /* NULL: the spec's */
    const char *digest_method_uri;       /* NULL: the spec's */
    bool sm2_raw;                        /* SignatureValue r||s instead of DER */
    bool sign_optional;                  /* also sign 311/411/511/513 and export messages */
    const char *app_status;              /* default appStatus: "2" declare, "1" staging */
    const char *agent_code, *agent_name; /* fallback declarant */
    struct ewtp_dec limit;               /* per-transaction limit of retail imports, CNY */
    bool has_limit;
    struct cn_code unit_overrides[CN_MAX_UNIT_OVERRIDES + 1];
};

/* Code look-ups; NULL when unknown. cn_code: the customs code of key in a codes/ table;
 * cn_code_find: in the unit overrides. */
const char *cn_code(const struct ewtp_code_table *table, const char *key);
const char *cn_code_find(const struct cn_code *table, const char *key);
const char *cn_unit(const struct cn_state *st, const char *rec20);

/* Which CEB document a call becomes: its number (311 ...), root name, or 0 when none. */
int cn_doc_number(const struct ewtp_call *c);
bool cn_doc_is_export(int number);

/* Shared helpers (cn_common.c). */
const char *cn_party_code(const struct ewtp_party *p); /* CN-CUSTOMS, else CN-USCC */
const struct ewtp_json *cn_ext(const struct ewtp_message *m);
const char *cn_ext_str(const struct ewtp_message *m, const char *key);
/* ext.cn.lines[] entry whose "line" equals line, or NULL. */
const struct ewtp_json *cn_ext_line(const struct ewtp_message *m, int64_t line);
const char *cn_ext_line_str(const struct ewtp_message *m, int64_t line, const char *key);
/* Beijing time (UTC+08:00) as YYYYMMDDhhmmss (14) of ms since the epoch, into buf[16]. */
void cn_time14(int64_t ms, char buf[16]);
/* RFC 3339 -> YYYYMMDDhhmmss in Beijing time; false when malformed. */
bool cn_time14_of(const char *rfc3339, char buf[16]);
/* The deterministic ids of a message: guid (upper-case UUID v5 of tenant/id/what) and copNo
 * (ext.cn.cop_no, else 20 upper-case hex digits of the host's instance_mac of tenant and id, ABI
 * 1.7, so that no other tenant can compute it; offline, without the host's secret, of the UUID
 * v5 for "copno"). In arena. */
const char *cn_guid(const struct ewtp_call *c, const char *what);
const char *cn_cop_no(const struct ewtp_call *c);
/* The correlation key a receipt of the call's document carries (README "Receipts"). */
const char *cn_correlation_key(const struct ewtp_call *c);
/* Consignee address: region, city and lines joined by spaces, in the arena. */
const char *cn_address(struct ewtp_arena *a, const struct ewtp_party *p);

void cn_validate(const void *state, const struct ewtp_call *c, struct ewtp_errors *errs);
int cn_translate(const void *state, const struct ewtp_call *c, struct ewtp_out *out,
                 struct ewtp_errors *errs);
int cn_interpret(const void *state, const struct ewtp_call *c, const struct ewtp_response *resp,
                 struct ewtp_outcome *o);
/* ABI 1.4 descriptor reference: the CEB key of a submission, the reference of a cancel. */
const char *cn_reference(const void *state, const struct ewtp_call *c);
int cn_receive(const void *state, const struct ewtp_inbound *in, struct ewtp_correlation *to,
               struct ewtp_outcome *o);

/* Reads one receipt (CEB receipt, CEB900, DxpMsg-wrapped, or DxpRep) for interpret and
 * receive: 0 with *key (correlation key) and the outcome, or -EWTP_ENOTFOUND when the bytes
 * are no receipt this plugin knows. is_cancel: the receipt answers a cancel (624/606). */
int cn_read_receipt(struct ewtp_arena *a, const void *data, size_t len, const char **key,
                    const char **guid, struct ewtp_outcome *o);
/* ABI 1.7 descriptor document_id: the guid of c's document (cn_guid of "CEB<number>"). */
const char *cn_document_id(const void *state, const struct ewtp_call *c);

#endif
