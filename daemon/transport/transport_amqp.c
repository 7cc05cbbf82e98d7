/* transport_amqp.c — requests published to the instance's AMQP broker (amqp_transport.h), on
 * a worker (blocking until the broker's confirm). A confirm is a hand-over: the authority's
 * answer comes back as a receipt in the instance's receipt queue. */
#include "transport.h"

#include <stdlib.h>

#include "amqp_transport.h"

static void amqp_send(const struct ewtp_transport_env *env, const struct ewtp_transport_req *t,
                      ewtp_transport_done_fn done, void *arg)
{
    char *why = NULL;
    if (ewtp_amqp_publish(env->amqp, t->ic, t->req, t->timeout_ms, &why) != 0) {
        done(arg, ewtp_transport_failure(why ? why : "AMQP publish failed"));
        free(why);
        return;
    }
    free(why);
    struct ewtp_httpc_resp *ok = calloc(1, sizeof(*ok));
    if (ok)
        ok->status = 200;
    done(arg, ok);
}

const struct ewtp_transport_ops ewtp_transport_amqp = {
    .name = "amqp",
    .blocking = true,
    .answers = false,
    .handed_code = "published",
    .handed_message = "confirmed by the AMQP broker",
    .send = amqp_send,
};
