/* ewtp/message.h — the common trade message ewtp/1 as typed, read-only C structs.
 *
 * The spec is ../shared/spec/ewtp-message-1.md (published as sdk/schema/ewtp-1.schema.json).
 * ewtp_message_parse() reads JSON (jansson) and checks everything the common model defines:
 * syntax, size, depth, UTF-8, duplicate keys, required members, types, formats, unknown
 * members, code lists, party id formats and the arithmetic rules. It reports *every* error,
 * each with its JSON Pointer, and builds the structs even from an invalid message where it
 * can (members that failed are left absent), so that callers see the whole picture; only
 * a message without blocking errors may be handed to a plugin.
 *
 * Conventions: an absent string is NULL; an absent decimal has .text == NULL; an absent
 * integer has its has_ flag false; arrays are pointer + count (count 0, pointer may be NULL),
 * and arrays of structs are arrays of pointers. Every struct here but ewtp_num is allocated by
 * libewtp and starts with size (the growth rule of ewtp/abi.h: members are only appended;
 * EWTP_HAS tells whether an instance has one); struct ewtp_num is a frozen value type.
 * All memory belongs to the struct ewtp_message and is freed by ewtp_message_free().
 * A parsed message is immutable and may be read from several threads at once.
 */
#ifndef EWTP_MESSAGE_H
#define EWTP_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/abi.h>
#include <ewtp/decimal.h>
#include <ewtp/errors.h>
#include <ewtp/json.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EWTP_SCHEMA_ID "ewtp/1"
/* Default largest message accepted, in bytes (1 MiB). */
#define EWTP_MESSAGE_MAX_DEFAULT (1024u * 1024u)
/* Deepest JSON nesting accepted (the model itself needs 6; ext gets the rest). */
#define EWTP_MESSAGE_MAX_DEPTH 32

enum ewtp_kind {
    EWTP_KIND_ORDER = 0,
    EWTP_KIND_PAYMENT,
    EWTP_KIND_WAYBILL,
    EWTP_KIND_DECLARATION,
    EWTP_KIND_INVOICE,
    EWTP_KIND_STATUS,
    EWTP_KIND_RETURN,
    EWTP_KIND_MANIFEST,
    EWTP_KIND_SUMMARY,
    EWTP_KIND_COUNT,
    EWTP_KIND_NONE = -1,
};
#define EWTP_KIND_BIT(k) (1u << (unsigned)(k))
#define EWTP_KINDS_ALL ((1u << EWTP_KIND_COUNT) - 1u)

/* "order" ... "summary"; NULL for an invalid kind. */
const char *ewtp_kind_name(enum ewtp_kind k);
/* EWTP_KIND_NONE when the name is not a kind. */
enum ewtp_kind ewtp_kind_from_name(const char *name);

enum ewtp_direction { EWTP_DIR_NONE = 0, EWTP_DIR_IMPORT, EWTP_DIR_EXPORT };

enum ewtp_role {
    EWTP_ROLE_SELLER = 0,
    EWTP_ROLE_BUYER,
    EWTP_ROLE_PLATFORM,
    EWTP_ROLE_MERCHANT,
    EWTP_ROLE_LOGISTICS,
    EWTP_ROLE_PAYMENT_PROVIDER,
    EWTP_ROLE_DECLARANT,
    EWTP_ROLE_IMPORTER,
    EWTP_ROLE_EXPORTER,
    EWTP_ROLE_CONSIGNEE,
    EWTP_ROLE_CARRIER,
    EWTP_ROLE_COUNT,
};
const char *ewtp_role_name(enum ewtp_role r); /* "seller" ... "carrier" */

/* A decimal member: the text exactly as sent and its exact value. A frozen value type for
 * major 1 (embedded by value in the model; it never grows). */
struct ewtp_num {
    const char *text; /* NULL when absent */
    struct ewtp_dec value;
};
EWTP_STATIC_ASSERT(sizeof(struct ewtp_num) == 3 * sizeof(ewtp_int128),
                   "struct ewtp_num is frozen for ABI major 1");

struct ewtp_party_id {
    size_t size;        /* sizeof(struct ewtp_party_id) of the allocator (libewtp) */
    const char *scheme; /* upper-case token: CN-CUSTOMS, CN-USCC, CN-RIC, EORI, VAT, TIN ... */
    const char *value;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_address {
    size_t size; /* sizeof(struct ewtp_address) of the allocator (libewtp) */
    const char *const *lines;
    size_t n_lines;
    const char *city, *region, *postcode, *country;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_endpoint {
    size_t size;        /* sizeof(struct ewtp_endpoint) of the allocator (libewtp) */
    const char *scheme; /* e.g. Peppol EAS "0208" */
    const char *value;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_party {
    size_t size; /* sizeof(struct ewtp_party) of the allocator (libewtp) */
    const char *name;
    const struct ewtp_party_id *const *ids; /* n_ids pointers */
    size_t n_ids;
    const char *country;
    const struct ewtp_address *address; /* NULL when absent */
    const char *email, *phone;
    const struct ewtp_endpoint *endpoint; /* NULL when absent */
#ifdef EWTP_ABI_TEST_GROWN                /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_tax {
    size_t size;          /* sizeof(struct ewtp_tax) of the allocator (libewtp) */
    const char *type;     /* VAT, SST, GST, EXCISE, DUTY ... */
    const char *category; /* authority's category code: S, Z, E, AE, 01..06, A, B ... */
    struct ewtp_num rate; /* percent */
    struct ewtp_num amount;
    const char *exemption_reason;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_packages {
    size_t size; /* sizeof(struct ewtp_packages) of the allocator (libewtp) */
    int64_t count;
    bool has_count;
    const char *kind; /* UN/ECE Rec. 21 */
    const char *marks;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

enum ewtp_line_kind { EWTP_LINE_UNSPECIFIED = 0, EWTP_LINE_GOODS, EWTP_LINE_SERVICE };

struct ewtp_line {
    size_t size;  /* sizeof(struct ewtp_line) of the allocator (libewtp) */
    int64_t line; /* 1-based, unique within its array */
    const char *sku, *description, *hs_code, *origin;
    struct ewtp_num quantity;
    const char *unit; /* UN/ECE Rec. 20 */
    struct ewtp_num unit_price, amount, discount;
    struct ewtp_num net_weight_kg, gross_weight_kg;
    const char *barcode, *brand, *model;
    enum ewtp_line_kind kind;
    const struct ewtp_tax *const *taxes; /* n_taxes pointers */
    size_t n_taxes;
    /* declaration lines */
    const struct ewtp_packages *packages; /* NULL when absent */
    const char *procedure, *preference;
    struct ewtp_num supplementary_quantity;
    const char *supplementary_unit;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

/* A place and date of departure or arrival. */
struct ewtp_place {
    size_t size; /* sizeof(struct ewtp_place) of the allocator (libewtp) */
    const char *country;
    const char *location;  /* UN/LOCODE */
    const char *date;      /* YYYY-MM-DD */
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_transport {
    size_t size;      /* sizeof(struct ewtp_transport) of the allocator (libewtp) */
    const char *mode; /* UN/ECE Rec. 19 digit */
    const char *means_id, *voyage;
    const struct ewtp_place *departure, *arrival; /* NULL when absent */
#ifdef EWTP_ABI_TEST_GROWN                        /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_period {
    size_t size;             /* sizeof(struct ewtp_period) of the allocator (libewtp) */
    const char *start, *end; /* YYYY-MM-DD */
#ifdef EWTP_ABI_TEST_GROWN   /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_document_ref {
    size_t size; /* sizeof(struct ewtp_document_ref) of the allocator (libewtp) */
    const char *type, *number, *date, *issuer;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_payment_means {
    size_t size;      /* sizeof(struct ewtp_payment_means) of the allocator (libewtp) */
    const char *code; /* UNCL 4461 */
    const char *account, *reference;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_order {
    size_t size; /* sizeof(struct ewtp_order) of the allocator (libewtp) */
    const char *number, *ordered_at, *currency;
    struct ewtp_num goods_value, freight, discount, insurance, tax_total, paid_total;
    const struct ewtp_line *const *lines; /* n_lines pointers */
    size_t n_lines;
    const char *note;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_payment {
    size_t size; /* sizeof(struct ewtp_payment) of the allocator (libewtp) */
    const char *number, *order_number, *paid_at;
    struct ewtp_num amount;
    const char *currency, *method;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_waybill {
    size_t size; /* sizeof(struct ewtp_waybill) of the allocator (libewtp) */
    const char *number, *order_number;
    const char *transport_mode;
    const struct ewtp_place *departure, *arrival;
    struct ewtp_num freight, insured_value;
    const char *currency;
    struct ewtp_num gross_weight_kg;
    int64_t packages;
    bool has_packages;
    const char *goods_description;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

enum ewtp_declaration_type { EWTP_DECL_NONE = 0, EWTP_DECL_LOW_VALUE, EWTP_DECL_STANDARD };

struct ewtp_declaration {
    size_t size; /* sizeof(struct ewtp_declaration) of the allocator (libewtp) */
    enum ewtp_declaration_type type;
    const char *order_number, *waybill_number, *payment_number;
    const char *customs_office, *procedure;
    const char *const *additional_procedures;
    size_t n_additional_procedures;
    const struct ewtp_transport *transport; /* NULL when absent */
    const char *location_of_goods, *incoterm, *currency;
    struct ewtp_num exchange_rate;
    const char *invoice_number, *invoice_date;
    struct ewtp_num invoice_value, freight, insurance, gross_weight_kg, net_weight_kg;
    int64_t packages;
    bool has_packages;
    const struct ewtp_document_ref *const *documents; /* n_documents pointers */
    size_t n_documents;
    const struct ewtp_line *const *lines; /* n_lines pointers */
    size_t n_lines;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

enum ewtp_invoice_type {
    EWTP_INV_NONE = 0,
    EWTP_INV_INVOICE,
    EWTP_INV_CREDIT_NOTE,
    EWTP_INV_DEBIT_NOTE,
    EWTP_INV_REFUND_NOTE,
};

struct ewtp_totals {
    size_t size; /* sizeof(struct ewtp_totals) of the allocator (libewtp) */
    struct ewtp_num net, tax, gross, payable;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_invoice {
    size_t size; /* sizeof(struct ewtp_invoice) of the allocator (libewtp) */
    const char *number;
    enum ewtp_invoice_type type;
    const char *issued_at, *due_date, *currency;
    struct ewtp_num exchange_rate;
    const char *original_invoice, *reason;
    const struct ewtp_period *billing_period; /* NULL when absent */
    const char *order_number;
    const struct ewtp_line *const *lines; /* n_lines pointers */
    size_t n_lines;
    const struct ewtp_totals *totals; /* NULL only in an invalid message */
    const char *buyer_reference;
    const struct ewtp_payment_means *payment_means; /* NULL when absent */
    const char *note;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

enum ewtp_status_event {
    EWTP_EVENT_NONE = 0,
    EWTP_EVENT_DEPARTED,
    EWTP_EVENT_ARRIVED,
    EWTP_EVENT_CLEARED,
    EWTP_EVENT_DELIVERED,
    EWTP_EVENT_RETURNED,
    EWTP_EVENT_LOST,
};

struct ewtp_status {
    size_t size; /* sizeof(struct ewtp_status) of the allocator (libewtp) */
    const char *waybill_number, *order_number;
    enum ewtp_status_event event;
    const char *event_name; /* the event as sent ("delivered") */
    const char *at, *location;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_return {
    size_t size; /* sizeof(struct ewtp_return) of the allocator (libewtp) */
    const char *number, *order_number, *waybill_number, *declaration_ref, *reason;
    const struct ewtp_line *const *lines; /* n_lines pointers */
    size_t n_lines;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_manifest {
    size_t size; /* sizeof(struct ewtp_manifest) of the allocator (libewtp) */
    const char *number, *master_waybill;
    const struct ewtp_transport *transport; /* NULL when absent */
    const char *customs_office;
    const char *const *waybills;
    size_t n_waybills;
    int64_t packages;
    bool has_packages;
    struct ewtp_num gross_weight_kg;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_summary {
    size_t size; /* sizeof(struct ewtp_summary) of the allocator (libewtp) */
    const char *number;
    const struct ewtp_period *period; /* NULL when absent */
    const char *customs_office;
    const char *const *declarations;
    size_t n_declarations;
    const char *currency;
    struct ewtp_num total_value;
    const struct ewtp_line *const *lines; /* n_lines pointers */
    size_t n_lines;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_message {
    size_t size;        /* sizeof(struct ewtp_message) of the allocator (libewtp) */
    const char *schema; /* "ewtp/1" */
    const char *id;
    enum ewtp_kind kind;
    const char *destination;
    enum ewtp_direction direction;
    const char *created_at;
    /* Indexed by enum ewtp_role, n_parties entries (libewtp's EWTP_ROLE_COUNT, never fewer
     * than the plugin's); NULL when the role is absent. */
    const struct ewtp_party *const *parties;
    size_t n_parties;
    /* Exactly one body is set, the one named by kind (the others are NULL). */
    const struct ewtp_order *order;
    const struct ewtp_payment *payment;
    const struct ewtp_waybill *waybill;
    const struct ewtp_declaration *declaration;
    const struct ewtp_invoice *invoice;
    const struct ewtp_status *status;
    const struct ewtp_return *return_; /* "return" is a C keyword */
    const struct ewtp_manifest *manifest;
    const struct ewtp_summary *summary;
    /* Private to libewtp: the JSON tree (ext, canonical form). */
    const void *priv_;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

/* Options of ewtp_message_parse: EWTP_PARSE_OPTS_INIT(...) means the defaults but for the
 * members given; read by the smaller of its size and libewtp's. */
struct ewtp_parse_opts {
    size_t size;        /* sizeof(struct ewtp_parse_opts) of the caller: EWTP_PARSE_OPTS_INIT */
    size_t max_bytes;   /* 0: EWTP_MESSAGE_MAX_DEFAULT */
    unsigned max_depth; /* 0: EWTP_MESSAGE_MAX_DEPTH */
    /* User-assigned destination codes a loaded plugin serves ("ZZ"), NULL-terminated;
     * they are accepted as destination only. NULL: none. */
    const char *const *extra_destinations;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};
#define EWTP_PARSE_OPTS_INIT(...)                                                                  \
    {                                                                                              \
        .size = sizeof(struct ewtp_parse_opts), __VA_ARGS__                                        \
    }

/* Parses and checks a message.
 * Returns 0 and *out when the bytes are a JSON object (check ewtp_errors_blocking(errs) to
 * know whether it is valid: errs gets every problem found, warnings included);
 * -EWTP_EFORMAT with *out NULL when the bytes are not JSON at all, or break size, depth,
 * UTF-8, NUL or duplicate-key limits (one entry in errs says what and where: HTTP 400);
 * -EWTP_ENOMEM. The caller frees *out with ewtp_message_free(). */
int ewtp_message_parse(const void *data, size_t len, const struct ewtp_parse_opts *opts,
                       struct ewtp_message **out, struct ewtp_errors *errs);
void ewtp_message_free(struct ewtp_message *m);

/* ext.<cc> (cc lower case, e.g. "cn") as a read-only JSON node, or NULL when absent. */
const struct ewtp_json *ewtp_message_ext(const struct ewtp_message *m, const char *cc);
/* The whole message as a read-only JSON node (for tools; plugins use the structs). */
const struct ewtp_json *ewtp_message_json(const struct ewtp_message *m);
/* Canonical serialisation (keys sorted, compact) into a malloc'd string the caller frees:
 * two messages are the same JSON value exactly when these are equal (idempotency). */
char *ewtp_message_canonical(const struct ewtp_message *m);

/* The lines of the body, whatever the kind (order, declaration, invoice, return, summary);
 * 0 and NULL for kinds without lines. */
size_t ewtp_message_lines(const struct ewtp_message *m, const struct ewtp_line *const **lines);
/* m->parties[role], or NULL when absent or role is beyond the message's n_parties. */
const struct ewtp_party *ewtp_message_party(const struct ewtp_message *m, enum ewtp_role role);
/* The JSON Pointer of the body ("/order"), NULL for an invalid kind. */
const char *ewtp_message_body_pointer(const struct ewtp_message *m);
/* The first id of a party with the given scheme, or NULL. */
const char *ewtp_party_id(const struct ewtp_party *p, const char *scheme);

/* Format checks also used by plugins; all pure. */
bool ewtp_is_rfc3339(const char *s); /* 2026-11-22T10:00:00+08:00, Z, fraction allowed */
bool ewtp_is_date(const char *s);    /* YYYY-MM-DD, a real calendar day */
bool ewtp_is_hs_code(const char *s); /* 6 to 10 digits */
bool ewtp_is_cn_ric(const char *s);  /* 18-character resident ID with a valid check digit */
/* Milliseconds since the epoch of an RFC 3339 time; false when malformed. */
bool ewtp_time_parse(const char *s, int64_t *ms);
/* Formats ms since the epoch as RFC 3339 with the given UTC offset in minutes
 * ("2026-11-22T10:00:00+08:00"); buf of at least 32 bytes. Returns buf. */
const char *ewtp_time_format(int64_t ms, int offset_min, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
