/* ewtp/plugin.h — the plugin ABI. Semantics: ../shared/spec/plugin-abi.md.
 *
 * A plugin is a shared object that exports exactly one symbol, ewtp_plugin_v1, a const
 * struct ewtp_plugin filled by EWTP_PLUGIN_DESCRIPTOR(). The host dlopens it with
 * RTLD_NOW|RTLD_LOCAL and accepts it when abi_major == EWTP_ABI_MAJOR, abi_minor <=
 * EWTP_ABI_MINOR and size >= EWTP_PLUGIN_MIN_SIZE; it reads a member added later only when
 * size covers it. Every callback but create/destroy is pure: no I/O, no globals, no
 * threads, no timers; state is immutable after create and callbacks may run concurrently.
 * Everything a callback returns lives in the call's arena (c->arena, in->arena).
 *
 * Versioning (the full rule is in ewtp/abi.h): the host's version is h->abi_major/abi_minor
 * in create() (and ewtp_abi_minor() from libewtp); a plugin whose minor is newer than the
 * host's is refused. Every struct here that may grow starts with `size_t size`, set by whoever
 * allocated the instance (host: call, related, chain, route info, response, outcome, inbound,
 * correlation; plugin: descriptor, document, request, header, batch limits, filled with the
 * EWTP_*_INIT(...) macros). Arrays of structs cross as arrays of pointers. A minor version may
 * only append members (whose zero value means "as before"), host functions, libewtp functions
 * (in a new symbol node) and enum values; it bumps EWTP_ABI_MINOR and adds a History line.
 *   - A plugin reads a member newer than 1.0 of a host-allocated struct, and writes one into
 *     an outcome, route info or correlation, only after EWTP_HAS(ptr, struct type, member);
 *     it never clears such a struct with its own sizeof (ewtp_outcome_clear() keeps size).
 *   - The host reads a member of the descriptor newer than 1.0 only when desc->size covers it,
 *     and of a document, request, header or batch limits only after EWTP_HAS (libewtp copies
 *     documents and requests by the smaller of the two sizes and zeroes the rest).
 *   - struct ewtp_dec and struct ewtp_num are frozen value types for major 1 (size pinned by
 *     _Static_assert); nothing else is embedded by value.
 * Removing, reordering or retyping a member, or changing a meaning, bumps EWTP_ABI_MAJOR.
 *
 * History:
 *   1.0  first release: descriptor, call, related, chain, route info, out (document, request,
 *        header), response, outcome, inbound, correlation, batch limits; all sized, arrays of
 *        pointers; libewtp exports in node EWTP_1.0.
 *   1.1  route info wait_for / wait_state: a message waits for another before it is sent.
 *   1.2  per ordering key, a state blob the host keeps for the plugin (call key_state /
 *        key_state_len in, outcome key_state_out / key_state_out_len out, written durably with
 *        the outcome), the chain's first number from the plugin (outcome chain_first) and an
 *        out-of-sequence answer that blocks the key (outcome key_blocked).
 *   1.3  descriptor login / login_answer (the authority's own login, built and read by the
 *        plugin, the token kept by the host's cache) and struct ewtp_token;
 *        EWTP_SIGN_RSA_SHA512 (host.h).
 *   1.4  descriptor reference: the authority reference a plugin knows before sending (China:
 *        the CEB key it wrote into the document), asked by the host when a transport hands a
 *        message over without an answer (spool, AMQP); older plugins are asked interpret with
 *        an empty 200 answer instead.
 *   1.5  descriptor sender_role: the role of the party that sends a message (DECISIONS "Tenants
 *        and party codes"; the host checks that party's codes against the tenant's parties and
 *        uses a default table without it); call instance: the plugin instance's name (keys
 *        scoped to the instance).
 *   1.6  outcome cause: a plain sentence for a person on why the authority refused (or what it
 *        said), from the plugin's code -> cause table, beside code / message / pointer; the
 *        host keeps it with the receipt and the errors and shows it in status, events and
 *        webhooks (ewtp_outcome_set_cause writes it after EWTP_HAS).
 *   1.7  descriptor document_id and correlation document_id: receipts are correlated by the
 *        document's own unique id first (the id the plugin wrote into it and the authority
 *        echoes), before message ids and authority references; host.h instance_mac (ids no
 *        other tenant can compute); libewtp node EWTP_1.7: ewtp_dsig_verify_trusted.
 */
#ifndef EWTP_PLUGIN_H
#define EWTP_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/abi.h>
#include <ewtp/arena.h>
#include <ewtp/errors.h>
#include <ewtp/host.h>
#include <ewtp/message.h>
#include <ewtp/settings.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EWTP_PLUGIN_SYMBOL "ewtp_plugin_v1"

enum ewtp_op { EWTP_OP_SUBMIT = 0, EWTP_OP_CANCEL = 1 };
#define EWTP_OP_BIT(op) (1u << (unsigned)(op))

/* What an authority's answer means for the message. */
enum ewtp_verdict {
    EWTP_V_SUBMITTED = 0, /* received; the decision comes later (poll or inbound receipt) */
    EWTP_V_APPROVED,      /* final yes (cleared, released, valid, registered) */
    EWTP_V_REJECTED,      /* final no; the authority's code and text are kept */
    EWTP_V_RETRY,         /* transient: send again later (retry_after_ms when known) */
    EWTP_V_CANCELLED,     /* a cancel request was confirmed (op == CANCEL only) */
    EWTP_V_INFO,          /* a receipt that changes nothing (e.g. a tax bill): recorded only */
};
const char *ewtp_verdict_name(enum ewtp_verdict v); /* "submitted" ... */

/* Another message with the same relation key, as the host knows it. Host-allocated. */
struct ewtp_related {
    size_t size; /* sizeof(struct ewtp_related) of the host */
    const struct ewtp_message *msg;
    const char *tenant;
    const char *state;         /* "accepted", "submitted", "approved" ... */
    const char *authority_ref; /* NULL until known */
#ifdef EWTP_ABI_TEST_GROWN     /* test-only (tests/abi): a member a later minor appends */
    uint64_t abi_test_grown[3];
#endif
};
#define EWTP_RELATED_INIT(...)                                                                     \
    {                                                                                              \
        .size = sizeof(struct ewtp_related), __VA_ARGS__                                           \
    }

/* Chain position, for messages whose classify set needs_chain. Host-allocated. */
struct ewtp_chain {
    size_t size;           /* sizeof(struct ewtp_chain) of the host */
    uint64_t number;       /* last accepted + 1 */
    const char *prev_ref;  /* authority reference of the last accepted, NULL for the first */
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};
#define EWTP_CHAIN_INIT(...)                                                                       \
    {                                                                                              \
        .size = sizeof(struct ewtp_chain), __VA_ARGS__                                             \
    }

/* The context of every per-message call. Read-only. Host-allocated. */
struct ewtp_call {
    size_t size; /* sizeof(struct ewtp_call) of the host; members are only appended */
    const char *tenant;
    const struct ewtp_message *msg;
    enum ewtp_op op;
    const char *cancel_reason;                 /* op == CANCEL */
    const struct ewtp_related *const *related; /* n_related pointers */
    size_t n_related;
    const char *authority_ref;      /* this message's, once known (poll, cancel), else NULL */
    unsigned attempt;               /* 1 for the first delivery */
    int64_t now_ms;                 /* the clock: ms since the epoch (ewtpctl --now fixes it) */
    const struct ewtp_chain *chain; /* NULL when the message has no chain position */
    struct ewtp_arena *arena;       /* everything returned is allocated here */
    const struct ewtp_host *host;
    /* Produce documents without signatures (ewtpctl translate --unsigned, golden vectors):
     * the plugin then calls no host signing function. */
    bool unsigned_;
    /* 1.2: the state blob the host keeps for the plugin per ordering key (the last
     * key_state_out of an outcome of that key, e.g. a device's initialisation data); NULL and 0
     * when there is none yet or the message has no ordering key. Read after EWTP_HAS. */
    const void *key_state;
    size_t key_state_len;
    /* 1.5: the name of the plugin instance the message goes through ("cn", "cn-bonded"); NULL
     * when the host does not know it (ewtpctl translate). Read after EWTP_HAS. Ordering and
     * correlation keys include it (and c->tenant) so that instances and tenants never share
     * one. */
    const char *instance;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};
#define EWTP_CALL_INIT(...)                                                                        \
    {                                                                                              \
        .size = sizeof(struct ewtp_call), __VA_ARGS__                                              \
    }

/* What a message that waits for another needs that other to have reached (1.1). */
enum ewtp_wait_state {
    EWTP_WAIT_SUBMITTED = 0, /* submitted or approved: the authority has it, with its reference */
    EWTP_WAIT_APPROVED = 1,  /* approved (valid, cleared, registered) */
};

/* classify's answer; strings in c->arena. Host-allocated and zeroed (but for size) before
 * classify; the plugin writes members newer than 1.0 only after EWTP_HAS. */
struct ewtp_route_info {
    size_t size;              /* sizeof(struct ewtp_route_info) of the host */
    const char *ordering_key; /* NULL: no ordering constraint */
    bool needs_chain;
    /* n_relation_keys strings, as many as needed: the array lives in c->arena (allocated by
     * the plugin, or grown by ewtp_route_add_relation_key). */
    const char *const *relation_keys;
    size_t n_relation_keys;
    const char *batch_key; /* batching plugins; NULL: sent alone */
    /* 1.1: the message waits for another (DECISIONS "Waiting for another message"): it is not
     * sent until a message with relation key wait_for (any tenant's) is in wait_state, and is
     * rejected with a plain cause when that one is rejected or cancelled first, or when the
     * host's wait timeout passes. A credit note for its original's reference, a cancel for its
     * message. Write only after EWTP_HAS(r, struct ewtp_route_info, wait_state). */
    const char *wait_for;            /* a relation key; NULL: waits for nothing */
    enum ewtp_wait_state wait_state; /* what the other must have reached */
#ifdef EWTP_ABI_TEST_GROWN           /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};
#define EWTP_ROUTE_INFO_INIT(...)                                                                  \
    {                                                                                              \
        .size = sizeof(struct ewtp_route_info), __VA_ARGS__                                        \
    }
/* Appends key (kept as is: it must live in arena a, or be static) to r's relation keys,
 * growing the array in a. 0, -EWTP_EINVAL (NULL argument) or -EWTP_ENOMEM. */
int ewtp_route_add_relation_key(struct ewtp_route_info *r, struct ewtp_arena *a, const char *key);

/* An HTTP header. Allocated by the plugin for its requests (EWTP_HEADER_INIT or
 * ewtp_header_new), by the host for responses and inbound items. */
struct ewtp_header {
    size_t size; /* sizeof(struct ewtp_header) of the allocator */
    const char *name, *value;
    bool secret;           /* masked as "***" in requests.json and logs */
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};
#define EWTP_HEADER_INIT(...)                                                                      \
    {                                                                                              \
        .size = sizeof(struct ewtp_header), __VA_ARGS__                                            \
    }
/* A header in the arena (name and value kept as given: they must live as long as a). NULL
 * when out of memory (ewtp_out_add_request then refuses the request). */
const struct ewtp_header *ewtp_header_new(struct ewtp_arena *a, const char *name, const char *value,
                                          bool secret);

/* One wire request, sent in order. path is relative to the instance's endpoint
 * (https transport) or a file name (spool transport). Plugin-allocated: EWTP_REQUEST_INIT. */
struct ewtp_request {
    size_t size;        /* sizeof(struct ewtp_request) of the allocator */
    const char *method; /* "POST", "GET", "PUT"; "SPOOL" for a spool file */
    const char *path;
    const struct ewtp_header *const *headers; /* n_headers pointers, in the arena */
    size_t n_headers;
    const void *body;
    size_t body_len;
    const char *body_doc;  /* name of the document the body is, for requests.json; or NULL */
    bool final;            /* the answer is the decision (no receipt follows) */
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};
#define EWTP_REQUEST_INIT(...)                                                                     \
    {                                                                                              \
        .size = sizeof(struct ewtp_request), __VA_ARGS__                                           \
    }

/* A business document, as ewtpctl translate --out saves it. Plugin-allocated:
 * EWTP_DOCUMENT_INIT. */
struct ewtp_document {
    size_t size;              /* sizeof(struct ewtp_document) of the allocator */
    const char *name;         /* file name: "CEB311-ord-1.xml" */
    const char *content_type; /* "application/xml", "application/json" */
    const void *data;
    size_t len;
    bool signed_;          /* true when it carries a signature (compared by verifying) */
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};
#define EWTP_DOCUMENT_INIT(...)                                                                    \
    {                                                                                              \
        .size = sizeof(struct ewtp_document), __VA_ARGS__                                          \
    }

/* translate's output; append with the functions below. They copy the struct (by the smaller
 * of its size and libewtp's, the rest zeroed), not what it points to (which must live in the
 * arena). -EWTP_EINVAL when size is 0 (not initialised with EWTP_*_INIT), a required member
 * (name and data; method and path) is NULL, or a header pointer is NULL or incomplete. */
struct ewtp_out;
int ewtp_out_add_document(struct ewtp_out *out, const struct ewtp_document *doc);
int ewtp_out_add_request(struct ewtp_out *out, const struct ewtp_request *req);
/* The copies, as arrays of pointers (libewtp's size); valid as long as the arena. */
size_t ewtp_out_documents(const struct ewtp_out *out, const struct ewtp_document *const **docs);
size_t ewtp_out_requests(const struct ewtp_out *out, const struct ewtp_request *const **reqs);
/* Hosts: a new empty out in the arena; the arrays stay valid as long as the arena. */
struct ewtp_out *ewtp_out_new(struct ewtp_arena *a);

/* The authority's answer to one request. Host-allocated. */
struct ewtp_response {
    size_t size; /* sizeof(struct ewtp_response) of the host */
    int status;  /* HTTP status; 0 when the transport failed (see transport_error) */
    const struct ewtp_header *const *headers; /* n_headers pointers */
    size_t n_headers;
    const void *body;
    size_t body_len;
    unsigned request_index;      /* which of translate's requests this answers */
    const char *transport_error; /* "connection refused", "timeout" ... or NULL */
#ifdef EWTP_ABI_TEST_GROWN       /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};
#define EWTP_RESPONSE_INIT(...)                                                                    \
    {                                                                                              \
        .size = sizeof(struct ewtp_response), __VA_ARGS__                                          \
    }
/* Case-insensitive header lookup, NULL when absent. */
const char *ewtp_response_header(const struct ewtp_response *r, const char *name);
/* A Retry-After value (RFC 9110 §10.2.3: delay-seconds or an IMF-fixdate HTTP-date) as
 * milliseconds from now_ms, capped at one day; 0 when absent, malformed or in the past. */
int64_t ewtp_retry_after_ms(const char *value, int64_t now_ms);
/* The RFC 9110 reason phrase of an HTTP status ("Content Too Large" for 413); "OK" or "Error"
 * for codes without one here. For simulators and hosts answering HTTP. */
const char *ewtp_http_reason(int status);
/* The same for the response's Retry-After header. */
int64_t ewtp_response_retry_after_ms(const struct ewtp_response *r, int64_t now_ms);

/* A verdict. Host-allocated (one per call; interpret_batch gets n pointers) and zeroed but for
 * size; the plugin writes members newer than 1.0 only after EWTP_HAS(o, struct ewtp_outcome,
 * member), and resets one with ewtp_outcome_clear(), never with its own sizeof. */
struct ewtp_outcome {
    size_t size; /* sizeof(struct ewtp_outcome) of the host */
    enum ewtp_verdict verdict;
    const char *code;          /* the authority's own code ("2", "BR-CO-15", "HTTP 503") */
    const char *message;       /* its text, translated where useful */
    const char *authority_ref; /* GUID, submission UID, MRN, IRN ... once known */
    const char *pointer;       /* JSON Pointer of the common-message member at fault */
    int64_t retry_after_ms;    /* RETRY: the authority's wish, 0 when unknown */
    bool poll;                 /* SUBMITTED: the host should poll for the decision */
    /* 1.2 (write only after EWTP_HAS), for messages with an ordering key:
     * key_state_out: key_state_out_len bytes (in the arena) that replace the key's state blob,
     * whatever the verdict, in the same transaction as the outcome; NULL keeps it.
     * chain_first: when > 0 and the key has no chain yet, the key's next message gets this
     * number (a device that continues an existing numbering); an admin's ewtpctl chain set
     * wins. key_blocked: the authority says the key's numbering and its own disagree (out of
     * sequence): the host sends no later message of the key until an admin sets the chain
     * (ewtpctl chain set) and replays. */
    const void *key_state_out;
    size_t key_state_out_len;
    uint64_t chain_first;
    bool key_blocked;
    /* 1.6 (write only after EWTP_HAS, or with ewtp_outcome_set_cause): why, in a plain sentence
     * for a person, from the plugin's table of the authority's codes ("the buyer's ID number
     * does not match the name on record"); NULL when the plugin does not know the code. code
     * stays the authority's own, pointer the common-message member when the plugin can tell. */
    const char *cause;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};
#define EWTP_OUTCOME_INIT(...)                                                                     \
    {                                                                                              \
        .size = sizeof(struct ewtp_outcome), __VA_ARGS__                                           \
    }
/* 1.6: sets o->cause (and o->pointer, when pointer is not NULL and o has none) when o is
 * large enough to hold a cause; an older host's outcome keeps only its code and message. */
static inline void ewtp_outcome_set_cause(struct ewtp_outcome *o, const char *cause,
                                          const char *pointer)
{
    if (cause == NULL || cause[0] == '\0' || !EWTP_HAS(o, struct ewtp_outcome, cause))
        return;
    o->cause = cause;
    if (pointer && pointer[0] && (o->pointer == NULL || o->pointer[0] == '\0'))
        o->pointer = pointer;
}
/* Zeroes every member of o but size, over o->size bytes (the allocator's size). */
void ewtp_outcome_clear(struct ewtp_outcome *o);
/* Copies the members of src (a plugin's own, e.g. EWTP_OUTCOME_INIT()) into the host-allocated
 * dst, by the smaller of the two sizes, zeroing the rest and keeping dst->size. Never assign
 * one outcome to another with '='. */
void ewtp_outcome_copy(struct ewtp_outcome *dst, const struct ewtp_outcome *src);

/* Something that arrived without a request: a receipt file in the spool in-folder or a
 * callback POSTed to /v1/inbound/{plugin}. Host-allocated. */
struct ewtp_inbound {
    size_t size;                              /* sizeof(struct ewtp_inbound) of the host */
    const char *source;                       /* "spool", "http" or "amqp" */
    const char *name;                         /* file name, or request path */
    const struct ewtp_header *const *headers; /* n_headers pointers */
    size_t n_headers;
    const void *body;
    size_t body_len;
    int64_t now_ms;
    struct ewtp_arena *arena;
    const struct ewtp_host *host;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};
#define EWTP_INBOUND_INIT(...)                                                                     \
    {                                                                                              \
        .size = sizeof(struct ewtp_inbound), __VA_ARGS__                                           \
    }

/* Which message an inbound item concerns: message_id, or authority_ref, or both.
 * Host-allocated and zeroed but for size; members newer than 1.0 only after EWTP_HAS. */
struct ewtp_correlation {
    size_t size; /* sizeof(struct ewtp_correlation) of the host */
    const char *message_id;
    const char *authority_ref;
    const char *tenant; /* when the plugin knows it; NULL otherwise */
    /* 1.7 (write only after EWTP_HAS): the unique id of the document the item answers, as the
     * plugin's document_id gave it for that document (China: the guid a receipt echoes). The
     * host looks it up first, among this instance's messages; message_id and authority_ref
     * (business keys) only when it finds nothing by it. A reference held by messages of
     * several tenants finds nothing: a receipt is never given to a tenant by guessing. */
    const char *document_id;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};
#define EWTP_CORRELATION_INIT(...)                                                                 \
    {                                                                                              \
        .size = sizeof(struct ewtp_correlation), __VA_ARGS__                                       \
    }

/* 1.3: a bearer token read by a plugin's login_answer. Host-allocated and zeroed but for
 * size; strings in c->arena (the host copies them). */
struct ewtp_token {
    size_t size;           /* sizeof(struct ewtp_token) of the host */
    const char *value;     /* the token, sent as "Authorization: Bearer <value>"; NULL: none */
    int64_t lifetime_ms;   /* how long it is valid from now; 0: unknown (the host's default) */
    const char *error;     /* no token: why, a sentence for the hub admin */
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};
#define EWTP_TOKEN_INIT(...)                                                                       \
    {                                                                                              \
        .size = sizeof(struct ewtp_token), __VA_ARGS__                                             \
    }

/* Batching limits (translate_batch plugins); 0 means no limit of that kind. Plugin-allocated
 * (a static const object the descriptor points to): EWTP_BATCH_LIMITS_INIT. */
struct ewtp_batch_limits {
    size_t size; /* sizeof(struct ewtp_batch_limits) of the plugin */
    size_t max_documents;
    size_t max_request_bytes;
    size_t max_document_bytes;
    int64_t max_wait_ms;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};
#define EWTP_BATCH_LIMITS_INIT(...)                                                                \
    {                                                                                              \
        .size = sizeof(struct ewtp_batch_limits), __VA_ARGS__                                      \
    }

/* The descriptor. abi_major, abi_minor and size are set by EWTP_PLUGIN_DESCRIPTOR; the host
 * reads a member newer than 1.0 only when size covers it (EWTP_PLUGIN_HAS). */
struct ewtp_plugin {
    uint32_t abi_major;
    uint32_t abi_minor;
    size_t size;           /* sizeof(struct ewtp_plugin) the plugin was built with */
    const char *name;      /* "cn": instance and file name (ewtp-cn.so) */
    const char *country;   /* destination it serves: "CN"; "ZZ" for the template */
    const char *authority; /* "GACC cross-border e-commerce (CEB)" */
    const char *version;   /* the plugin's own version, "1.2.0" */
    uint32_t kinds;        /* EWTP_KIND_BIT(...) of the kinds it serves */
    uint32_t ops;          /* EWTP_OP_BIT(...) it supports; 0 means submit only */
    const struct ewtp_batch_limits *batch; /* batching plugins; NULL: no batching */

    /* Required: create, destroy, validate, translate, interpret. */
    int (*create)(const struct ewtp_host *h, const struct ewtp_settings *s, void **state,
                  struct ewtp_errors *why);
    void (*destroy)(void *state);
    /* Optional; without it: no ordering key, no chain, no relations, no batch. */
    void (*classify)(const void *state, const struct ewtp_call *c, struct ewtp_route_info *r);
    void (*validate)(const void *state, const struct ewtp_call *c, struct ewtp_errors *errs);
    /* 0 or a negative EWTP_E*; input problems go into errs (never a crash). */
    int (*translate)(const void *state, const struct ewtp_call *c, struct ewtp_out *out,
                     struct ewtp_errors *errs);
    int (*interpret)(const void *state, const struct ewtp_call *c, const struct ewtp_response *resp,
                     struct ewtp_outcome *o);
    /* Optional: the status request for a submitted message (c->authority_ref set). */
    int (*poll)(const void *state, const struct ewtp_call *c, struct ewtp_out *out);
    /* Optional: inbound receipts. -EWTP_ENOTFOUND when the item is not for this plugin. */
    int (*receive)(const void *state, const struct ewtp_inbound *in, struct ewtp_correlation *to,
                   struct ewtp_outcome *o);
    /* Batching plugins only (batch->max_documents > 0). outcomes has n pointers, one per
     * call, each host-allocated like interpret's o. */
    int (*translate_batch)(const void *state, const struct ewtp_call *const *calls, size_t n,
                           struct ewtp_out *out, struct ewtp_errors *errs);
    int (*interpret_batch)(const void *state, const struct ewtp_call *const *calls, size_t n,
                           const struct ewtp_response *resp, struct ewtp_outcome *const *outcomes);
    /* 1.3, optional (both or neither; the host tests EWTP_PLUGIN_HAS(d, login_answer)): the
     * authority's own login, used for instances whose auth is none or json_login. login
     * builds the token request into out: one request, its path relative to the instance's
     * endpoint (auth.token_url, when set, replaces the whole URL); c has no message (c->msg,
     * c->tenant and c->chain NULL). login_answer reads the answer into tok (a token, or an
     * error sentence); both return 0 or a negative EWTP_E*. The host caches the token per
     * instance, sends it as "Authorization: Bearer", fetches a new one before it expires and
     * after a 401. */
    int (*login)(const void *state, const struct ewtp_call *c, struct ewtp_out *out);
    int (*login_answer)(const void *state, const struct ewtp_call *c,
                        const struct ewtp_response *resp, struct ewtp_token *tok);
    /* 1.4, optional (the host tests EWTP_PLUGIN_HAS(d, reference)): the authority reference
     * the plugin knows before sending c's message (a key it wrote into the document that the
     * authority's receipts will quote), or NULL when it knows none. Pure, like interpret; the
     * string lives in c->arena (or the plugin's state). The host asks it after a transport
     * handed the message over without an answer (spool written, AMQP broker confirmed), keeps
     * it as the message's authority reference and correlates later receipts by it. */
    const char *(*reference)(const void *state, const struct ewtp_call *c);
    /* 1.5, optional (the host tests EWTP_PLUGIN_HAS(d, sender_role)): the role of the party
     * that sends c's message, whose codes the host checks against the tenant's configured
     * parties before classify (403 when that party carries a code the tenant may not act as);
     * EWTP_ROLE_COUNT: nothing to check. Pure; c->related is empty. Without it the host
     * uses its default table: order -> platform, payment -> payment_provider, waybill ->
     * logistics, declaration -> declarant, invoice -> seller, other kinds unchecked. */
    enum ewtp_role (*sender_role)(const void *state, const struct ewtp_call *c);
    /* 1.7, optional (the host tests EWTP_PLUGIN_HAS(d, document_id)): the unique id the plugin
     * writes into c's document that the authority's receipts echo (China: the CEB guid), or NULL.
     * It must be unique per tenant and message (derived from c->tenant and the message id),
     * never chosen by the sender. Pure; in c->arena. The host keeps it with the delivery's
     * outcome, scoped to the instance, and correlates receive's document_id by it first. */
    const char *(*document_id)(const void *state, const struct ewtp_call *c);
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

/* The smallest descriptor a host of this major accepts (everything up to interpret). */
#define EWTP_PLUGIN_MIN_SIZE (offsetof(struct ewtp_plugin, poll))
/* True when the descriptor d covers member (a host test before reading one newer than 1.0). */
#define EWTP_PLUGIN_HAS(d, member)                                                                 \
    ((d)->size >= offsetof(struct ewtp_plugin, member) + sizeof((d)->member))

#define EWTP_PLUGIN_DESCRIPTOR(...)                                                                \
    __attribute__((visibility("default")))                                                         \
    const struct ewtp_plugin ewtp_plugin_v1 = {.abi_major = EWTP_ABI_MAJOR,                        \
                                               .abi_minor = EWTP_ABI_MINOR,                        \
                                               .size = sizeof(struct ewtp_plugin),                 \
                                               __VA_ARGS__}

#ifdef __cplusplus
}
#endif
#endif
