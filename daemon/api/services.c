/* services.c — stopping and freeing what struct ewtpd holds (services.h). */
#include "services.h"

#include <stdlib.h>

#include <event2/event.h>

#include "admin.h"
#include "dispatcher.h"
#include "gen.h"
#include "http.h"
#include "metrics.h"
#include "reload.h"
#include "store.h"
#include "workers.h"

void ewtpd_services_free(struct ewtpd *d)
{
    d->stopping = true;
    ewtp_admin_free(d->admin);
    d->admin = NULL;
    if (d->http)
        ewtp_http_stop(d);
    if (d->dispatcher)
        ewtp_dispatcher_stop(d);
    /* Workers first: their pending jobs may still use the dispatcher and the store. */
    ewtp_workers_free(d->workers);
    d->workers = NULL;
    ewtp_http_free(d);
    ewtp_dispatcher_free(d);
    ewtp_store_close(d->store);
    d->store = NULL;
    ewtp_metrics_free(d->metrics);
    d->metrics = NULL;
    ewtpd_retired_free_all(d);
    ewtp_gen_unref(d->gen);
    d->gen = NULL;
    free(d->last_reload_error);
    d->last_reload_error = NULL;
    if (d->base)
        event_base_free(d->base);
    d->base = NULL;
}
