/* transport.h — how a plugin's wire requests reach the authority: one interface, three
 * transports (https, spool, amqp), as store_backend.h is one interface for stores.
 *
 * A transport sends one request at a time and reports its end through done, exactly once,
 * with a struct ewtp_httpc_resp: the authority's answer (https), an empty 200 when the
 * request was handed over (spool file written and synced, AMQP broker confirmed), or status
 * 0 and resp->error when it failed. The dispatcher sends a job's requests in order (the next
 * only after a 2xx) and every completion, whatever the transport, returns through the same
 * path (complete() in delivery/deliver.c), which interprets the answer or records the
 * hand-over.
 *
 * Threads: a blocking transport (spool, amqp) sends on a worker thread and has called done
 * before send returns; the other (https) is started on the loop thread and calls done later
 * on the loop. Transports keep no state of their own: what they use is in the env.
 */
#ifndef EWTP_TRANSPORT_H
#define EWTP_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include <ewtp/arena.h>
#include <ewtp/plugin.h>

#include "config.h"
#include "httpc.h"

struct ewtp_amqp_pool;

/* What the transports share, owned by the dispatcher. */
struct ewtp_transport_env {
    struct ewtp_httpc *http;     /* https: the loop's HTTP client */
    struct ewtp_amqp_pool *amqp; /* amqp: broker connections (amqp_transport.h) */
};

/* One request to send; borrowed for the call (a non-blocking transport copies what it
 * keeps). */
struct ewtp_transport_req {
    const struct ewtp_instance_conf *ic;
    const struct ewtp_request *req;
    const char *auth_header; /* https: the host's Authorization, replacing a plugin's; or NULL */
    int64_t timeout_ms;
    struct ewtp_arena *arena; /* for texts that live as long as the job */
};

/* resp is the callee's (ewtp_httpc_resp_free); NULL only when out of memory. */
typedef void (*ewtp_transport_done_fn)(void *arg, struct ewtp_httpc_resp *resp);

struct ewtp_transport_ops {
    const char *name; /* "https", "spool", "amqp": also the code of its failures */
    bool blocking;    /* send runs on a worker and has completed when it returns */
    /* The authority answers each request (https): the plugin's interpret reads the answer,
     * and poll requests can be sent. Otherwise a send hands the message over and its
     * decision comes back later as a receipt (inbound): the outcome is "submitted" with
     * handed_code/handed_message and the reference the plugin knows before sending. */
    bool answers;
    const char *handed_code;
    const char *handed_message;
    void (*send)(const struct ewtp_transport_env *env, const struct ewtp_transport_req *r,
                 ewtp_transport_done_fn done, void *arg);
};

extern const struct ewtp_transport_ops ewtp_transport_https;
extern const struct ewtp_transport_ops ewtp_transport_spool;
extern const struct ewtp_transport_ops ewtp_transport_amqp;

/* Reads the file name of the spool in-folder dirfd without trusting the other side, who
 * shares the folder: opened with O_NOFOLLOW|O_NONBLOCK (a symbolic link or a FIFO planted
 * there is neither followed nor waited on), fstat'ed into *sb, regular files of at most max
 * bytes only. 0 with *data (malloc'd, NUL after len bytes) and *len; otherwise a negative
 * EWTP_E* and *why, a static sentence ("a symbolic link, not followed", "not a regular
 * file", "too large", strerror). */
int ewtp_spool_read(int dirfd, const char *name, size_t max, char **data, size_t *len,
                    struct stat *sb, const char **why);

/* The transport of an instance's configured kind. */
const struct ewtp_transport_ops *ewtp_transport_of(enum ewtp_transport_kind kind);

/* A failed send's answer: status 0 and a copy of why (NULL when out of memory). */
struct ewtp_httpc_resp *ewtp_transport_failure(const char *why);

#endif
