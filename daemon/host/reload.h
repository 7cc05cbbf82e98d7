/* reload.h — the generations ewtpd runs on (host layer: a generation is a configuration with
 * its plugins, gen.h). The loop thread holds the current one in struct ewtpd (daemon.h);
 * requests and deliveries take a reference and keep it to their end, so a reload never
 * changes the configuration under a request in flight. A replaced generation is freed after
 * its last user; one still in use after 30 s is logged.
 */
#ifndef EWTP_RELOAD_H
#define EWTP_RELOAD_H

#include <stdbool.h>
#include <stdint.h>

struct ewtpd;
struct ewtp_gen;
struct ewtp_errors;

/* The current generation with a new reference (loop thread); caller unrefs. */
struct ewtp_gen *ewtpd_gen_acquire(struct ewtpd *d);

/* Called on the loop when a reload ended: ok and the generation now in use, or the reasons
 * (borrowed for the call) while the running generation stays. */
typedef void (*ewtpd_reload_fn)(void *arg, bool ok, uint64_t gen_id, const struct ewtp_errors *why);
/* Starts a reload (SIGHUP, ewtpctl reload): the new generation is built on a worker, off the
 * loop, and swapped in on the loop; requests in flight keep the one they hold. done may be
 * NULL. 0, or -EWTP_EINVAL while stopping. Loop thread. */
int ewtpd_reload(struct ewtpd *d, ewtpd_reload_fn done, void *arg);

/* Frees the replaced generations nobody uses any more, and logs those still in use after the
 * drain timeout (their last user frees them). Loop thread, about once a second. */
void ewtpd_retired_sweep(struct ewtpd *d);
/* Drops every replaced generation (at exit, after the loop ended). */
void ewtpd_retired_free_all(struct ewtpd *d);

#endif
