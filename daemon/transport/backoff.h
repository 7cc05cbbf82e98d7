/* backoff.h — when to try a delivery again, and what an authority's verdict does to a
 * message. Pure functions (no clock, no randomness of their own): the dispatcher passes
 * now and a random number, so tests can pin both.
 *
 * Delays are "full jitter" (AWS architecture blog, "Exponential Backoff And Jitter"): a
 * uniform draw in [0, min(max, base * 2^(attempt-1))], which spreads a burst of retries
 * after an authority's outage instead of hammering it in lockstep; an authority's
 * Retry-After is a floor, honoured even above the cap.
 */
#ifndef EWTP_BACKOFF_H
#define EWTP_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#include <ewtp/plugin.h>

#include "store.h"

struct ewtp_backoff_policy {
    unsigned max_attempts; /* attempts >= this: dead (0: no limit) */
    int64_t max_age_ms;    /* older than this since accept: dead (0: no limit) */
    int64_t base_ms;       /* first delay's cap */
    int64_t max_ms;        /* cap of every delay */
};

/* The delay before attempt + 1, after attempt (1 for the first) failed: full jitter from
 * rnd, at least retry_after_ms. Never negative. */
int64_t ewtp_backoff_delay(const struct ewtp_backoff_policy *p, unsigned attempt,
                           int64_t retry_after_ms, uint64_t rnd);

/* A transient failure of attempt (attempts made so far) of a message created at
 * created_at: EWTP_STORE_RETRYING with *next_at, or EWTP_STORE_DEAD (then *next_at = 0)
 * when the attempts or the age are used up. */
enum ewtp_store_state ewtp_backoff_decide(const struct ewtp_backoff_policy *p, unsigned attempt,
                                          int64_t created_at, int64_t now, int64_t retry_after_ms,
                                          uint64_t rnd, int64_t *next_at);

/* Retry-After values are parsed by ewtp_retry_after_ms() (ewtp/plugin.h). */

/* The state a delivery's verdict moves a message to (EWTP_V_RETRY: retrying; the caller
 * then asks ewtp_backoff_decide). false for verdicts that change nothing (EWTP_V_INFO),
 * and for EWTP_V_CANCELLED of a submit, which no authority may answer. */
bool ewtp_backoff_verdict_state(enum ewtp_verdict v, enum ewtp_op op, enum ewtp_store_state *out);

#endif
