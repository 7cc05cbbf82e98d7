/* ctl_hostile.h — the hostile-answer corpus of `ewtpctl plugin check PATH.so`.
 *
 * One table (ctl_hostile.c) of answers an authority, a proxy or a broken network may give:
 * an empty body, truncated JSON and XML, HTML error pages, 10 MB bodies, invalid UTF-8 and a
 * wrong encoding, XML with a DOCTYPE and entities (billion laughs, an external entity), deep
 * nesting, type confusion, status 0 with and without a transport error, a huge header. Each
 * is fed to a plugin's interpret (per request of a translated vector), interpret_batch
 * (batching plugins) and receive; the plugin must not crash and must answer RETRY or
 * REJECTED with a non-empty code and message (an empty 200, which is how the spool and AMQP
 * transports report a written file, may also be SUBMITTED; receive may also say "not mine").
 * Bodies are allocated to their exact length (no NUL after them), so that a read past
 * body_len shows under AddressSanitizer.
 *
 * Each check prints one line ("ok   hostile ..." or "FAIL hostile ...: why") on stdout and
 * counts into the tally. Not thread-safe (ewtpctl is single-threaded). */
#ifndef EWTP_CTL_HOSTILE_H
#define EWTP_CTL_HOSTILE_H

#include <stddef.h>
#include <stdint.h>

#include <ewtp/plugin.h>

struct ctl_tally {
    unsigned passed, failed;
};

/* Every corpus answer to p->interpret, once per request index below n_requests (at least
 * once), each with a copy of c in a fresh arena. label names the call ("submit", "cancel"). */
void ctl_hostile_interpret(const struct ewtp_plugin *p, const void *state,
                           const struct ewtp_call *c, size_t n_requests, const char *label,
                           struct ctl_tally *t);

/* Every corpus answer to p->interpret_batch for a batch of two copies of c (nothing when the
 * plugin does not batch). */
void ctl_hostile_interpret_batch(const struct ewtp_plugin *p, const void *state,
                                 const struct ewtp_call *c, struct ctl_tally *t);

/* Every corpus body (and its headers) to p->receive as an HTTP callback and as a spool file
 * (nothing when the plugin has no receive). */
void ctl_hostile_receive(const struct ewtp_plugin *p, const void *state,
                         const struct ewtp_host *host, int64_t now_ms, struct ctl_tally *t);

#endif
