/* transport_https.c — requests to the instance's endpoint over HTTPS (httpc.h), from the loop.
 * The host's own Authorization (a bearer token file or a cached login) replaces a plugin's. */
#include "transport.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ewtp/errors.h>

static void https_send(const struct ewtp_transport_env *env, const struct ewtp_transport_req *t,
                       ewtp_transport_done_fn done, void *arg)
{
    const struct ewtp_instance_conf *ic = t->ic;
    const struct ewtp_request *r = t->req;
    char *url = ewtp_httpc_join(ic->endpoint ? ic->endpoint : "", r->path);
    size_t nh = r->n_headers;
    struct ewtp_header *h = calloc(nh + 1, sizeof(*h));
    if (url == NULL || h == NULL) {
        free(url);
        free(h);
        done(arg, NULL);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < nh; i++) {
        /* The host's own credentials to the authority win over a plugin's. */
        if (t->auth_header && r->headers[i]->name &&
            strcasecmp(r->headers[i]->name, "Authorization") == 0)
            continue;
        /* The plugin allocated it with its own size: copy by the smaller of the two. */
        ewtp_sized_copy(&h[k++], sizeof(*h), r->headers[i]);
    }
    if (t->auth_header)
        h[k++] = (struct ewtp_header)EWTP_HEADER_INIT(.name = "Authorization",
                                                      .value = t->auth_header, .secret = true);
    /* The client pair in use now: client_next takes over at its from (config.h). */
    struct ewtp_httpc_tls tls = {ic->ca_file, NULL, NULL};
    ewtp_instance_client_pair(ic, ewtp_clock_ms(0), &tls.client_cert, &tls.client_key);
    char *why = NULL;
    int rc = ewtp_httpc_send(env->http, url, r->method, h, k, r->body, r->body_len, &tls,
                             t->timeout_ms, done, arg, &why);
    free(h);
    free(url);
    if (rc != 0) {
        /* Not sent at all (a bad URL, TLS files that do not load): a transport error. */
        struct ewtp_httpc_resp *resp = ewtp_transport_failure(why ? why : ewtp_strerror(rc));
        free(why);
        done(arg, resp);
        return;
    }
    free(why);
}

const struct ewtp_transport_ops ewtp_transport_https = {
    .name = "https",
    .blocking = false,
    .answers = true,
    .send = https_send,
};
