/* workers.h — a small thread pool whose results come back on the event loop.
 *
 * The event loop never blocks: parsing, validation, translation, signing and store calls
 * other than accepts run as jobs here. ewtp_workers_submit() queues work(arg) on a worker
 * thread; when it returns, done(arg) runs on the event loop thread (through one event made
 * active, so a burst of completions costs one wake-up). done may submit more work.
 * ewtp_workers_free() stops taking jobs, finishes the queued ones, runs no more done
 * callbacks, and joins the threads; call it from the loop thread.
 */
#ifndef EWTP_WORKERS_H
#define EWTP_WORKERS_H

#include <stddef.h>

struct event_base;
struct ewtp_workers;

typedef void (*ewtp_work_fn)(void *arg);

/* n threads (at least 1). NULL on failure. */
struct ewtp_workers *ewtp_workers_new(struct event_base *base, unsigned n);
void ewtp_workers_free(struct ewtp_workers *w);
/* 0, or -EWTP_EINVAL when shutting down, -EWTP_ENOMEM. done may be NULL. */
int ewtp_workers_submit(struct ewtp_workers *w, ewtp_work_fn work, ewtp_work_fn done, void *arg);
/* Jobs queued or running (for metrics and back-pressure). */
size_t ewtp_workers_pending(struct ewtp_workers *w);

#endif
