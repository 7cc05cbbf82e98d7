/* batch.h — the dispatcher's batching rules for plugins with translate_batch
 * (spec/plugin-abi.md): messages with the same batch key share one request, up to the
 * descriptor's limits (documents, bytes per request, bytes per document) or its maximum wait.
 * Pure functions (no clock, no I/O): the dispatcher passes now, so tests can pin it.
 *
 * How the dispatcher uses them: claimed messages of a batching instance are held per
 * (instance, batch key); a held batch is sent as soon as it has max_documents messages, or
 * when ewtp_batch_wait() says its oldest message has waited long enough. Byte sizes are only
 * known after translation: ewtp_batch_fit() then says whether the request goes out, is split
 * into smaller batches (each translated again), or, for a single message, is rejected because
 * its document alone is over the authority's limit.
 */
#ifndef EWTP_BATCH_H
#define EWTP_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/plugin.h>

/* How many more ms a held batch of n messages, the oldest held since since_ms, may wait for
 * more: 0 means send now (full, no maximum wait declared, or waited enough). The wait never
 * exceeds a quarter of lease_ms (when > 0), so that a held message's lease cannot expire and
 * send it twice. */
int64_t ewtp_batch_wait(const struct ewtp_batch_limits *l, size_t n, int64_t since_ms, int64_t now,
                        int64_t lease_ms);

/* At most this many messages in one batch (max_documents, at least 1). */
size_t ewtp_batch_max(const struct ewtp_batch_limits *l);

enum ewtp_batch_fit {
    EWTP_BATCH_FITS = 0, /* send it */
    EWTP_BATCH_SPLIT,    /* n > 1 and too big: translate *pieces smaller batches instead */
    EWTP_BATCH_TOO_BIG,  /* n == 1 and its request or document is over a limit: reject */
};

/* Whether the translation of n messages fits the limits. request_bytes: the body size of each
 * wire request; doc_bytes: the size of each business document (not those that are a request
 * body themselves). *pieces: for SPLIT, how many batches of about equal size (>= 2, <= n) are
 * expected to fit; *what and *size, for TOO_BIG and SPLIT: "request" or "document" and the
 * offending size, *limit the limit it broke. */
enum ewtp_batch_fit ewtp_batch_fit(const struct ewtp_batch_limits *l, size_t n,
                                   const size_t *request_bytes, size_t n_requests,
                                   const size_t *doc_bytes, size_t n_docs, size_t *pieces,
                                   const char **what, size_t *size, size_t *limit);

/* Piece i of n items split into k pieces in order, as equal as possible: its first index in
 * *start, its length returned. */
size_t ewtp_batch_piece(size_t n, size_t k, size_t i, size_t *start);

#endif
