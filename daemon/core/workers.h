/* workers.h — a small thread pool whose results come back on the event loop.
 *
 * The event loop never blocks: parsing, validation, translation, signing and store calls
 * other than accepts run as jobs here. ewtp_workers_submit() queues work(arg) on a worker
 * thread; when it returns, done(arg) runs on the event loop thread (through one event made
 * active, so a burst of completions costs one wake-up). done may submit more work.
 * ewtp_workers_free() stops taking jobs, finishes the queued ones, runs no more done
 * callbacks, and joins the threads; call it from the loop thread.
 *
 * Two lanes (issue 20). Delivery jobs block in I/O (fsync of spool files and of the store,
 * HTTPS to an authority), and with both threads of a 2-core pool in fsync an API request
 * waited behind them: accepts ran at a tenth of their rate while a backlog was delivered.
 * Jobs a client is waiting on go to the interactive lane (ewtp_workers_submit_interactive):
 * it has threads of its own, one per online CPU (at most 8), which take nothing else, and
 * the general threads take its jobs too when they have none of their own. CPU-bound work
 * of both lanes then shares the cores through the scheduler, and no API job waits for an
 * fsync that is not its own.
 *
 * Background priority (delivery.nice). With the cores busy, CPU-bound delivery work
 * (translating, signing) took half the CPU from the accepts a client waits on (issue 20: 955k
 * instructions per accepted message for the process, 523k of them the accept's own). General
 * threads may run at a lower priority (a higher nice value, set per thread): the scheduler
 * then gives the accepts the cores first and delivery what is left, which is all of it when
 * no request comes in. Such threads take no interactive jobs, which would run at their
 * priority.
 */
#ifndef EWTP_WORKERS_H
#define EWTP_WORKERS_H

#include <stddef.h>

struct event_base;
struct ewtp_workers;

typedef void (*ewtp_work_fn)(void *arg);

/* n general threads (at least 1) general_nice above the process's nice value (0: at its
 * priority; 1-19: lower, see above; at most 19 in all) and the interactive lane's own threads (one
 * per online CPU, at most 8). NULL on failure. */
struct ewtp_workers *ewtp_workers_new(struct event_base *base, unsigned n, int general_nice);
void ewtp_workers_free(struct ewtp_workers *w);
/* 0, or -EWTP_EINVAL when shutting down, -EWTP_ENOMEM. done may be NULL. */
int ewtp_workers_submit(struct ewtp_workers *w, ewtp_work_fn work, ewtp_work_fn done, void *arg);
/* The same on the interactive lane: for jobs a client waits on (API requests), never queued
 * behind general (delivery) jobs. */
int ewtp_workers_submit_interactive(struct ewtp_workers *w, ewtp_work_fn work, ewtp_work_fn done,
                                    void *arg);
/* Jobs queued or running (for metrics and back-pressure). */
size_t ewtp_workers_pending(struct ewtp_workers *w);
/* Called by a work function: its done callback is not to run (the job handed its argument on
 * to another thread that answers for it, and may free it as soon as it is handed over). The
 * job then ends on its worker, without waking the loop (issue 20: a wake-up per accepted
 * message). */
void ewtp_workers_skip_done(void);

#endif
