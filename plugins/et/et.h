/* et.h — the Ethiopia plugin's private contract: Ministry of Revenue e-invoicing (EIMS).
 *
 * The EIMS API is not published; README.md lists which fact comes from which client and
 * which are our assumptions. Every assumption lives in data/ (code tables) or in a setting,
 * so that it can be corrected when the MoR's specification arrives.
 *
 * Files: et_plugin.c (descriptor, settings, classify), et_validate.c (checks before sending),
 * et_eims.c (the /v1/register document as exact JSON), et_api.c (translate, poll, interpret,
 * login, the RSA-SHA512 envelope), et_codes.c (look-ups over the tables generated from
 * data/ TSV files), et_sim.c (the simulator, ewtp-sim --country et). */
#ifndef ET_H
#define ET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/json.h>
#include <ewtp/plugin.h>

/* ---- code tables (et_codes.c over data/ TSV files; rows: code, value, source) ---- */
struct et_code_row {
    const char *col[4];
};
enum et_table {
    ET_T_UNITS,     /* Rec. 20 unit -> EIMS Unit */
    ET_T_TAX_CODES, /* VAT category -> EIMS TaxCode, rate */
    ET_T_ID_TYPES,  /* party id scheme -> EIMS IdType */
    ET_T_PAY_MODES, /* UNCL 4461 payment means -> EIMS PaymentDetails.Mode */
    ET_T_ERRORS,    /* EIMS statusCode / rule code -> plain cause, pointer */
    ET_T_CANCEL,    /* cancel ReasonCode -> meaning (assumed) */
};
const struct et_code_row *et_code_find(enum et_table t, const char *code);

/* ---- settings (immutable after create) ---- */
struct et_tax_code {
    char *category; /* common-model VAT category: S, Z, E ... */
    char *code;     /* EIMS TaxCode */
    char *rate;     /* required rate in percent, NULL: any */
};

struct et_state {
    char *tin;           /* the seller TIN this instance registers for; NULL: not checked */
    char *system_type;   /* SourceSystem.SystemType */
    char *system_number; /* SourceSystem.SystemNumber */
    char *client_id;     /* login clientId */
    char *client_secret_file, *api_key_file; /* login secrets (files, read through the host) */
    bool sign_requests;                      /* wrap every request in the RSA-SHA512 envelope */
    char *sign_key;                          /* host key (RSA + certificate) for the envelope */
    int64_t first_document_number;           /* DocumentNumber of chain number 1 */
    char *first_previous_irn;                /* PreviousIrn of chain number 1; NULL: null */
    int64_t counter_offset;                  /* InvoiceCounter = DocumentNumber + counter_offset */
    char *cancel_reason_code;                /* ReasonCode when the cancel reason names none */
    bool verify_after_register;              /* register -> submitted, then poll /v1/verify */
    char *deferred_payment_term;             /* PaymentTerm when the invoice has a due date */
    int64_t sequence_retry_ms;               /* retry delay when EIMS is behind our chain */
    struct et_tax_code *tax_codes;           /* data/tax_codes.tsv plus settings tax_codes */
    size_t n_tax_codes;
};

/* ---- et_plugin.c / et_validate.c ---- */
void et_validate(const void *state, const struct ewtp_call *c, struct ewtp_errors *errs);
const struct ewtp_json *et_ext(const struct ewtp_message *m, const char *member);
const char *et_ext_string(const struct ewtp_message *m, const char *member);
/* The EIMS TaxCode of a VAT category, or NULL when not configured. */
const struct et_tax_code *et_tax_code(const struct et_state *st, const char *category);
/* EIMS document type: INV, CRE, DEB. */
const char *et_doc_type(const struct ewtp_invoice *inv);
/* IRN of the original invoice of a note: ext.et.related_irn, else the authority reference
 * of the related message whose invoice number is original_invoice; NULL when unknown.
 * *state_out (may be NULL) gets that message's state. */
const char *et_related_irn(const struct ewtp_call *c, const char **state_out);
/* The buyer's id for BuyerDetails: IdType and IdNumber, or false. */
bool et_buyer_id(const struct ewtp_message *m, const char **type, const char **number);
/* The VAT tax of a line, or NULL. */
const struct ewtp_tax *et_line_tax(const struct ewtp_line *l, const char *type);
/* Document number and invoice counter of the call (chain position and settings). */
void et_numbers(const struct et_state *st, const struct ewtp_call *c, int64_t *doc_no,
                int64_t *counter, const char **prev_irn);

/* ---- et_eims.c ---- */
/* The /v1/register payload (compact JSON, keys as the clients send them). */
int et_register_json(const struct et_state *st, const struct ewtp_call *c, struct ewtp_errors *errs,
                     const char **out, size_t *len);
/* dd-mm-yyyyTHH:MM:SS in EAT (UTC+3) of an RFC 3339 time; false when malformed. */
bool et_eims_date(const char *rfc3339, char out[24]);

/* ---- et_plugin.c ---- */
/* The ordering key of c's message: et:<tenant>:<seller TIN>:<system_number> (in c->arena). */
const char *et_ordering_key(const struct et_state *st, const struct ewtp_call *c);

/* ---- et_api.c ---- */
int et_translate(const void *state, const struct ewtp_call *c, struct ewtp_out *out,
                 struct ewtp_errors *errs);
int et_poll(const void *state, const struct ewtp_call *c, struct ewtp_out *out);
int et_interpret(const void *state, const struct ewtp_call *c, const struct ewtp_response *resp,
                 struct ewtp_outcome *o);
/* ABI 1.3: the login hook (the host's token cache) and EWTP_SIGN_RSA_SHA512. */
int et_login(const void *state, const struct ewtp_call *c, struct ewtp_out *out);
int et_login_answer(const void *state, const struct ewtp_call *c, const struct ewtp_response *resp,
                    struct ewtp_token *tok);
/* Parses "... expected : N" out of an EIMS error text; false when absent. */
bool et_expected_number(const char *text, int64_t *n);

#define ET_REASON_MAX 300
#define ET_ITEM_CODE_MAX 15
#define ET_DESCRIPTION_MAX 300

#endif
