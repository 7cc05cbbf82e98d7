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
 * Versioning: to add a member, append it, bump EWTP_ABI_MINOR and add a line below.
 * Removing, reordering or changing the meaning of a member bumps EWTP_ABI_MAJOR.
 *
 * History:
 *   1.0  first release: descriptor, call, route info, out, response, outcome, inbound.
 */
#ifndef EWTP_PLUGIN_H
#define EWTP_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/arena.h>
#include <ewtp/errors.h>
#include <ewtp/host.h>
#include <ewtp/message.h>
#include <ewtp/settings.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EWTP_ABI_MAJOR 1
#define EWTP_ABI_MINOR 0
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

/* Another message with the same relation key, as the host knows it. */
struct ewtp_related {
    const struct ewtp_message *msg;
    const char *tenant;
    const char *state;         /* "accepted", "submitted", "approved" ... */
    const char *authority_ref; /* NULL until known */
};

/* Chain position, for messages whose classify set needs_chain. */
struct ewtp_chain {
    bool present;
    uint64_t number;      /* last accepted + 1 */
    const char *prev_ref; /* authority reference of the last accepted, NULL for the first */
};

/* The context of every per-message call. Read-only. */
struct ewtp_call {
    size_t size; /* sizeof(struct ewtp_call) of the host; members are only appended */
    const char *tenant;
    const struct ewtp_message *msg;
    enum ewtp_op op;
    const char *cancel_reason; /* op == CANCEL */
    const struct ewtp_related *related;
    size_t n_related;
    const char *authority_ref; /* this message's, once known (poll, cancel), else NULL */
    unsigned attempt;          /* 1 for the first delivery */
    int64_t now_ms;            /* the clock: ms since the epoch (ewtpctl --now fixes it) */
    struct ewtp_chain chain;
    struct ewtp_arena *arena; /* everything returned is allocated here */
    const struct ewtp_host *host;
    /* Produce documents without signatures (ewtpctl translate --unsigned, golden vectors):
     * the plugin then calls no host signing function. */
    bool unsigned_;
};

/* classify's answer; strings in c->arena. */
#define EWTP_MAX_RELATION_KEYS 4
struct ewtp_route_info {
    const char *ordering_key; /* NULL: no ordering constraint */
    bool needs_chain;
    const char *relation_keys[EWTP_MAX_RELATION_KEYS];
    size_t n_relation_keys;
    const char *batch_key; /* batching plugins; NULL: sent alone */
};

struct ewtp_header {
    const char *name, *value;
    bool secret; /* masked as "***" in requests.json and logs */
};

/* One wire request, sent in order. path is relative to the instance's endpoint
 * (https transport) or a file name (spool transport). */
struct ewtp_request {
    const char *method; /* "POST", "GET", "PUT"; "SPOOL" for a spool file */
    const char *path;
    const struct ewtp_header *headers;
    size_t n_headers;
    const void *body;
    size_t body_len;
    const char *body_doc; /* name of the document the body is, for requests.json; or NULL */
    bool final;           /* the answer is the decision (no receipt follows) */
};

/* A business document, as ewtpctl translate --out saves it. */
struct ewtp_document {
    const char *name;         /* file name: "CEB311-ord-1.xml" */
    const char *content_type; /* "application/xml", "application/json" */
    const void *data;
    size_t len;
    bool signed_; /* true when it carries a signature (compared by verifying) */
};

/* translate's output; append with the functions below. */
struct ewtp_out;
int ewtp_out_add_document(struct ewtp_out *out, const struct ewtp_document *doc);
int ewtp_out_add_request(struct ewtp_out *out, const struct ewtp_request *req);
size_t ewtp_out_documents(const struct ewtp_out *out, const struct ewtp_document **docs);
size_t ewtp_out_requests(const struct ewtp_out *out, const struct ewtp_request **reqs);
/* Hosts: a new empty out in the arena; the arrays stay valid as long as the arena. */
struct ewtp_out *ewtp_out_new(struct ewtp_arena *a);

/* The authority's answer to one request. */
struct ewtp_response {
    int status; /* HTTP status; 0 when the transport failed (see transport_error) */
    const struct ewtp_header *headers;
    size_t n_headers;
    const void *body;
    size_t body_len;
    unsigned request_index;      /* which of translate's requests this answers */
    const char *transport_error; /* "connection refused", "timeout" ... or NULL */
};
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

struct ewtp_outcome {
    enum ewtp_verdict verdict;
    const char *code;          /* the authority's own code ("2", "BR-CO-15", "HTTP 503") */
    const char *message;       /* its text, translated where useful */
    const char *authority_ref; /* GUID, submission UID, MRN, IRN ... once known */
    const char *pointer;       /* JSON Pointer of the common-message member at fault */
    int64_t retry_after_ms;    /* RETRY: the authority's wish, 0 when unknown */
    bool poll;                 /* SUBMITTED: the host should poll for the decision */
};

/* Something that arrived without a request: a receipt file in the spool in-folder or a
 * callback POSTed to /v1/inbound/{plugin}. */
struct ewtp_inbound {
    size_t size;
    const char *source; /* "spool", "http" or "amqp" */
    const char *name;   /* file name, or request path */
    const struct ewtp_header *headers;
    size_t n_headers;
    const void *body;
    size_t body_len;
    int64_t now_ms;
    struct ewtp_arena *arena;
    const struct ewtp_host *host;
};

/* Which message an inbound item concerns: message_id, or authority_ref, or both. */
struct ewtp_correlation {
    const char *message_id;
    const char *authority_ref;
    const char *tenant; /* when the plugin knows it; NULL otherwise */
};

/* Batching limits (translate_batch plugins); 0 means no limit of that kind. */
struct ewtp_batch_limits {
    size_t max_documents;
    size_t max_request_bytes;
    size_t max_document_bytes;
    int64_t max_wait_ms;
};

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
    struct ewtp_batch_limits batch;

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
    /* Batching plugins only (batch.max_documents > 0). outcomes has n entries. */
    int (*translate_batch)(const void *state, const struct ewtp_call *const *calls, size_t n,
                           struct ewtp_out *out, struct ewtp_errors *errs);
    int (*interpret_batch)(const void *state, const struct ewtp_call *const *calls, size_t n,
                           const struct ewtp_response *resp, struct ewtp_outcome *outcomes);
};

/* The smallest descriptor a host of this major accepts (everything up to interpret). */
#define EWTP_PLUGIN_MIN_SIZE (offsetof(struct ewtp_plugin, poll))

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
