/* signer_server.h — ewtp-signer's mutually authenticated TLS listener and its HTTP protocol.
 *
 * Protocol (HTTP/1.1 over TLS 1.2 or later, one request per connection, answered with
 * "Connection: close"; every client presents a certificate that chains to tls.client_ca, or
 * the handshake fails):
 *   POST /v1/sign   {"key": NAME, "alg": ALG, "data": BASE64}
 *       200 {"key": NAME, "alg": ALG, "signature": BASE64}
 *       400 bad_request (not JSON, a member missing or of the wrong type, data not Base64)
 *       403 forbidden   (no such key, or this client is not among the key's clients: one
 *                        answer for both, so that a client cannot list the keys)
 *       411 length_required, 413 too_large (body over limits.max_request_bytes)
 *       422 bad_alg     (unknown algorithm, or one that does not fit the key)
 *       502 sign_failed (the token, library or command failed: retry later)
 *   GET /v1/keys    200 {"keys": [NAME, ...]}: the keys this client may use (a health check)
 *   anything else   404 not_found / 405 method_not_allowed
 * Errors are {"error": CODE, "message": SENTENCE}. The request head is at most 8 KiB; a
 * connection gets limits.timeout_ms from accept to the end of its answer.
 * One log line per request on stderr: client, key, alg, bytes, status, milliseconds; never the
 * data or the signature.
 *
 * Threads: limits.workers threads each accept and serve one connection at a time, so at most
 * that many are served at once; the others wait in the listen queue.
 */
#ifndef EWTP_SIGNER_SERVER_H
#define EWTP_SIGNER_SERVER_H

#include "signer_conf.h"
#include "signer_keys.h"

struct signer_server;

/* Sets up TLS and binds the listening socket. 0 and *out, or -1 with the reason on stderr. */
int signer_server_new(const struct signer_conf *conf, struct signer_keys *keys,
                      struct signer_server **out);
/* The bound port (the one chosen when listen asked for port 0). */
unsigned signer_server_port(const struct signer_server *s);
/* Starts the worker threads. 0 or -1. */
int signer_server_start(struct signer_server *s);
/* Stops accepting, waits for the connections being served, joins the threads and frees. */
void signer_server_free(struct signer_server *s);

#endif
