/* transport.c — the transports by kind (see transport.h). */
#include "transport.h"

#include <stdlib.h>
#include <string.h>

const struct ewtp_transport_ops *ewtp_transport_of(enum ewtp_transport_kind kind)
{
    switch (kind) {
    case EWTP_TRANSPORT_SPOOL:
        return &ewtp_transport_spool;
    case EWTP_TRANSPORT_AMQP:
        return &ewtp_transport_amqp;
    case EWTP_TRANSPORT_HTTPS:
        break;
    }
    return &ewtp_transport_https;
}

struct ewtp_httpc_resp *ewtp_transport_failure(const char *why)
{
    struct ewtp_httpc_resp *r = calloc(1, sizeof(*r));
    if (r) {
        r->error = strdup(why ? why : "the transport failed");
        if (r->error == NULL) {
            free(r);
            return NULL;
        }
    }
    return r;
}
