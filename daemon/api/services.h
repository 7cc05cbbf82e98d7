/* services.h — the end of a daemon's life: every service wired into struct ewtpd (daemon.h)
 * stopped and freed in the one order that is safe. Here, in the top library, because it
 * touches every layer; ewtpd.c's main() and the in-process fuzz target (tests/fuzz/fuzz_http.c)
 * both end with it.
 */
#ifndef EWTP_SERVICES_H
#define EWTP_SERVICES_H

#include "daemon.h"

/* Stops accepting and claiming, then frees the admin socket, the workers (first: their pending
 * jobs may still use the dispatcher and the store), the HTTP API, the dispatcher, the store,
 * the metrics, every generation and the event base. After the loop ended; fields of d that
 * were never set (NULL) are skipped. d itself is the caller's. */
void ewtpd_services_free(struct ewtpd *d);

#endif
