/* httpc.h — the HTTP(S) client ewtpd talks to authorities and webhook receivers with.
 *
 * One request per connection over libevent's evhttp; https through bufferevent_openssl with
 * the peer verified against ca_file (or the system store) and its host name (or IP
 * address) checked, and a client certificate when configured. Plain http is refused except
 * to loopback addresses (development, simulators, tests). Each request is bounded by a
 * total timeout; its completion callback runs on the loop thread exactly once, unless the
 * transport is freed first, which drops pending requests without calling back (their
 * owners free their own state). Loop thread only.
 */
#ifndef EWTP_HTTPC_H
#define EWTP_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include <ewtp/plugin.h>

struct event_base;
struct ewtp_httpc;

struct ewtp_httpc_tls {
    const char *ca_file;     /* NULL: the system's default CA paths */
    const char *client_cert; /* PEM; NULL: none */
    const char *client_key;
};

/* An answer, everything malloc'd and owned by the struct. */
struct ewtp_httpc_resp {
    int status;                  /* 0 when the transport failed */
    struct ewtp_header *headers; /* name/value strings owned here */
    size_t n_headers;
    char *body; /* NUL-terminated after body_len bytes */
    size_t body_len;
    char *error; /* "connection refused", "timeout" ... when status is 0, else NULL */
    char *peer;  /* https: "sha256:<hex>" of the server's certificate, or NULL (evidence) */
};
void ewtp_httpc_resp_free(struct ewtp_httpc_resp *r);

/* The callee owns resp (free with ewtp_httpc_resp_free). */
typedef void (*ewtp_httpc_fn)(void *arg, struct ewtp_httpc_resp *resp);

struct ewtp_httpc *ewtp_httpc_new(struct event_base *base);
void ewtp_httpc_free(struct ewtp_httpc *t);

/* Sends method url with headers and body. 0: cb will be called once; negative (with *why
 * malloc'd when why is not NULL): a bad URL, plain http to a non-loopback host, TLS files
 * that do not load; cb will not be called. */
int ewtp_httpc_send(struct ewtp_httpc *t, const char *url, const char *method,
                    const struct ewtp_header *headers, size_t n_headers, const void *body,
                    size_t len, const struct ewtp_httpc_tls *tls, int64_t timeout_ms,
                    ewtp_httpc_fn cb, void *arg, char **why);

/* endpoint + path with exactly one '/' between them (malloc'd). */
char *ewtp_httpc_join(const char *endpoint, const char *path);

#endif
