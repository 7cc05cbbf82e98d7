/* be.h — the Belgium plugin's private contract.
 *
 * Two authorities behind one destination, BE:
 *   kind=declaration, type=low_value: the EU H7 customs declaration lodged in IDMS-H7
 *     (FOD Financiën, Liège e-commerce hub) over the EO Notification Gateway (HTTPS POST of
 *     our H7 XML, schema/be-h7.xsd; answers IE928/IE906/IE416/IE428/IE429/IE451 pushed to the
 *     gateway's call-back URL /v1/inbound/be).
 *   kind=invoice: Peppol BIS Billing 3.0 UBL 2.1 Invoice / CreditNote, handed to an external
 *     Peppol access point (its outbound spool folder or its HTTP API).
 * create() reads and checks the settings once; every other callback is pure. */
#ifndef BE_H
#define BE_H

#include <ewtp/plugin.h>

/* Our own H7 schema's namespace (the Belgian XSDs are not public: see README.md). */
#define BE_H7_NS "urn:ewtp:be:idms-h7:1"

#define BE_UBL_INVOICE_NS "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
#define BE_UBL_CREDITNOTE_NS "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
#define BE_UBL_CAC_NS "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
#define BE_UBL_CBC_NS "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
#define BE_UBL_AR_NS "urn:oasis:names:specification:ubl:schema:xsd:ApplicationResponse-2"

#define BE_PEPPOL_CUSTOMIZATION                                                                    \
    "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
#define BE_PEPPOL_PROFILE "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

/* Prefix of an LRN derived by hashing a message id that does not fit DE 12 09 (an..22). */
#define BE_LRN_HASH_PREFIX "EWTPH"

/* A configured exchange rate: EUR per one unit of currency. */
struct be_rate {
    char currency[4];
    struct ewtp_dec eur_per_unit;
};

enum be_delivery { BE_DELIVER_SPOOL = 0, BE_DELIVER_HTTP };

/* Immutable after create. */
struct be_state {
    /* H7 / IDMS */
    const char *declarant_eori;     /* NULL: any declarant EORI of the message */
    const char *customs_office;     /* default office of lodgement */
    const char *location_of_goods;  /* UN/LOCODE default */
    const char *transport_doc_type; /* DE 12 05 type code for waybill_number */
    const char *vat_payment_method; /* DE 14 03 method of payment when VAT is paid at import */
    const char *idms_path;          /* POST path relative to the EONGW endpoint */
    const char *idms_token_file;    /* access token file (NULL: test token) */
    struct ewtp_dec threshold_eur;  /* 150.00 */
    bool split_is_error;            /* consignment splitting: error instead of warning */
    char **excise_prefixes;         /* HS prefixes refused for H7, NULL-terminated */
    struct be_rate *rates;          /* configured exchange rates */
    size_t n_rates;
    /* Peppol */
    enum be_delivery delivery;
    const char *ap_path;       /* HTTP API path of the access point */
    const char *ap_token_file; /* NULL: test token */
    const char *profile;       /* BT-23 */
};

/* Validation (be_validate.c). */
void be_validate(const void *state, const struct ewtp_call *c, struct ewtp_errors *errs);
/* Relation key of an H7 declaration (consignee + day), in the arena, or NULL. */
const char *be_split_key(const struct ewtp_message *m, struct ewtp_arena *a);
/* Intrinsic value of a low-value declaration in EUR (rounded half-up to cents); 0, or
 * -EWTP_ENOTFOUND when no exchange rate is known, -EWTP_ERANGE on overflow. */
int be_intrinsic_eur(const struct be_state *st, const struct ewtp_declaration *d,
                     struct ewtp_dec *eur);
/* LRN (DE 12 09) for a message id, in the arena. */
const char *be_lrn(const char *id, struct ewtp_arena *a);
/* Belgian enterprise number check (10 digits, mod 97 of the first 8). */
bool be_kbo_valid(const char *digits10);
/* IOSS number of the message (platform, seller, merchant), or NULL; *pointer gets the
 * pointer of the party holding it. */
const char *be_ioss(const struct ewtp_message *m, const char **party_pointer);

/* One row of the VAT breakdown (BG-23): lines grouped by category and rate. */
struct be_vat_group {
    const char *category;
    const struct ewtp_num *rate; /* NULL for category O */
    struct ewtp_dec taxable;     /* BT-116: sum of line nets */
    struct ewtp_dec tax;         /* BT-117: taxable x rate / 100, half-up to cents */
    const char *reason;          /* BT-120/121: first exemption reason of the group */
};
/* The line's VAT tax (type VAT), or NULL. */
const struct ewtp_tax *be_line_vat(const struct ewtp_line *l);
/* Groups the invoice lines; lines without a VAT tax are skipped (validate reports them).
 * 0, -EWTP_ERANGE or -EWTP_ENOMEM. */
int be_vat_breakdown(const struct ewtp_invoice *inv, struct ewtp_arena *a,
                     struct be_vat_group **out, size_t *n);

/* Documents and requests (be_peppol.c, be_h7.c). */
int be_peppol_translate(const struct be_state *st, const struct ewtp_call *c, struct ewtp_out *out,
                        struct ewtp_errors *errs);
int be_h7_translate(const struct be_state *st, const struct ewtp_call *c, struct ewtp_out *out,
                    struct ewtp_errors *errs);
/* The Peppol participant id (scheme, value) a party gets as EndpointID, derived from its
 * endpoint or its Belgian VAT number; false when none. */
bool be_party_endpoint(const struct ewtp_party *p, struct ewtp_arena *a, const char **scheme,
                       const char **value);
/* Stable UUID of one message and operation (resends carry the same id). */
void be_message_uuid(const struct ewtp_call *c, const char *what, char out[37]);
/* Reads a bearer token file through the host, or "test-token". */
int be_bearer(const struct ewtp_call *c, const char *token_file, const char **header_value);

/* Answers (be_interpret.c). */
int be_interpret(const void *state, const struct ewtp_call *c, const struct ewtp_response *resp,
                 struct ewtp_outcome *o);
int be_receive(const void *state, const struct ewtp_inbound *in, struct ewtp_correlation *to,
               struct ewtp_outcome *o);

#endif
