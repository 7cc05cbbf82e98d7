/* cancel.c — cancel: POST /v1/messages/{id}/cancel recorded as a durable operation, and a claimed
 * operation built by the plugin and sent once the authority has the message.
 * Part of the dispatcher (dispatcher.h); what its files share is delivery_int.h. */
#include "delivery_int.h"

/* ---- cancel -------------------------------------------------------------------------------- */

/* Builds the cancel of j->msgs[0] (op CANCEL call, validate, translate) into j. 0 with the
 * requests in j->reqs; input problems in errs; a negative code otherwise. */
static int cancel_build(struct job *j, int64_t now, struct ewtp_errors *errs)
{
    const struct ewtp_plugin *p = j->gi->plugin;
    j->arena = ewtp_arena_new();
    j->calls = calloc(1, sizeof(*j->calls));
    j->callp = calloc(1, sizeof(*j->callp));
    if (!j->arena || !j->calls || !j->callp)
        return -EWTP_ENOMEM;
    struct ewtp_message *msg = dsp_parse_stored(j, &j->msgs[0]);
    if (msg == NULL)
        return -EWTP_EFORMAT;
    dsp_call_init(j, &j->calls[0], &j->msgs[0], msg, EWTP_OP_CANCEL, now);
    j->callp[0] = &j->calls[0];
    const void *state = ewtp_instance_state(j->gi->inst);
    p->validate(state, &j->calls[0], errs);
    if (ewtp_errors_blocking(errs) > 0)
        return 0;
    struct ewtp_out *out = ewtp_out_new(j->arena);
    int rc = out ? p->translate(state, &j->calls[0], out, errs) : -EWTP_ENOMEM;
    if (rc == 0 && ewtp_errors_blocking(errs) == 0 &&
        (j->n_reqs = ewtp_out_requests(out, &j->reqs)) == 0)
        rc = -EWTP_EINVAL;
    return rc;
}

/* POST /v1/messages/{id}/cancel (worker): checks what can be checked now, then records the
 * cancel in the store before answering 202, so that the promise survives a crash; the
 * dispatcher sends it once the authority has the message (cancel_prepare). */
static void cancel_work(void *arg)
{
    struct job *j = arg;
    struct ewtp_store_msg *m = NULL;
    int rc = ewtp_store_get(dsp_store_of(j), j->tenant, j->id, &m);
    if (rc != 0) {
        if (rc == -EWTP_ENOTFOUND)
            dsp_result(j, EWTP_DISPATCH_NOT_FOUND, "no such message");
        else
            dsp_result(j, EWTP_DISPATCH_FAILED, "%s", ewtp_strerror(rc));
        return;
    }
    j->msgs = m;
    j->n = 1;
    j->gi = ewtp_gen_instance(j->gen, m->plugin);
    if (j->gi == NULL) {
        dsp_result(j, EWTP_DISPATCH_CONFLICT, "plugin instance %s is not configured now",
                   m->plugin);
        return;
    }
    const struct ewtp_plugin *p = j->gi->plugin;
    if (!(p->ops & EWTP_OP_BIT(EWTP_OP_CANCEL))) {
        dsp_result(j, EWTP_DISPATCH_CONFLICT,
                   "the %s authority takes no cancellation through plugin %s", p->country, p->name);
        return;
    }
    if (m->state == EWTP_STORE_REJECTED || m->state == EWTP_STORE_CANCELLED) {
        dsp_result(j, EWTP_DISPATCH_CONFLICT, "the message is %s: there is nothing to cancel",
                   ewtp_store_state_name(m->state));
        return;
    }
    int64_t now = ewtpd_now_ms();
    /* A message the authority has gets its cancel built now, so that one the plugin refuses
     * (a closed window, a missing reference) is answered here rather than failing later. */
    if ((m->state == EWTP_STORE_SUBMITTED || m->state == EWTP_STORE_APPROVED) && m->authority_ref) {
        struct ewtp_errors *errs = ewtp_errors_new();
        rc = errs ? cancel_build(j, now, errs) : -EWTP_ENOMEM;
        if (rc != 0 || ewtp_errors_blocking(errs) > 0) {
            if (errs && ewtp_errors_count(errs)) {
                dsp_result(j, EWTP_DISPATCH_CONFLICT, "the plugin refuses this cancel");
                j->res_errs = errs;
                return;
            }
            if (rc == -EWTP_EINVAL)
                dsp_result(j, EWTP_DISPATCH_CONFLICT, "the plugin cannot build a cancel request");
            else
                dsp_result(j, EWTP_DISPATCH_FAILED, "%s", ewtp_strerror(rc));
            ewtp_errors_free(errs);
            return;
        }
        ewtp_errors_free(errs);
    }
    bool repeat = false;
    enum ewtp_store_state st = m->state;
    rc = ewtp_store_op_request(dsp_store_of(j), j->tenant, j->id, "cancel", j->reason, now, &repeat,
                               &st);
    if (rc != 0) {
        if (rc == -EWTP_EINVAL)
            dsp_result(j, EWTP_DISPATCH_CONFLICT, "the message is %s: there is nothing to cancel",
                       ewtp_store_state_name(st));
        else
            dsp_result(j, EWTP_DISPATCH_UNAVAILABLE, "the cancel could not be recorded: %s",
                       ewtp_strerror(rc));
        return;
    }
    j->res_id = strdup(m->id);
    j->res_state = st;
    if (j->res_id)
        dsp_result(j, EWTP_DISPATCH_OK, NULL);
    else
        dsp_result(j, EWTP_DISPATCH_FAILED, "out of memory");
}

/* A claimed cancel (worker): closes it when its message ended without the authority, builds
 * it, and hands it to the transport; its end is recorded with the lease's attempt. */
static void cancel_prepare(void *arg)
{
    struct job *j = arg;
    const struct ewtp_store_msg *m = &j->msgs[0];
    int64_t now = ewtpd_now_ms();
    if (m->state == EWTP_STORE_REJECTED || m->state == EWTP_STORE_CANCELLED) {
        char *text = ewtp_asprintf("the message was %s before its cancel was sent",
                                   ewtp_store_state_name(m->state));
        dsp_op_end(j, m->state == EWTP_STORE_CANCELLED ? EWTP_STORE_OP_DONE : EWTP_STORE_OP_FAILED,
                   0, "message_ended", text, now);
        free(text);
        return;
    }
    if (j->gi == NULL) {
        dsp_op_retry(j, "no_instance",
                     "the plugin instance of this message is not in the configuration", 0, now);
        return;
    }
    struct ewtp_errors *errs = ewtp_errors_new();
    int rc = errs ? cancel_build(j, now, errs) : -EWTP_ENOMEM;
    if (errs && ewtp_errors_blocking(errs) > 0) {
        char *ej = ewtp_errors_to_json(errs);
        dsp_op_end(j, EWTP_STORE_OP_FAILED, 0, "translate",
                   ej ? ej : "the plugin refused the cancel", now);
        free(ej);
        ewtp_errors_free(errs);
        return;
    }
    ewtp_errors_free(errs);
    if (rc != 0) {
        dsp_op_retry(j, "internal", ewtp_strerror(rc), 0, now);
        return;
    }
    dsp_transport_start(j);
}

/* Moves a claimed operation into a J_CANCEL job of its own. */
void dsp_start_cancel(struct ewtp_dispatcher *ds, struct ewtp_gen *gen, struct ewtp_store_op *op)
{
    struct job *cj = dsp_job_new(ds, J_CANCEL);
    struct ewtp_store_msg *m = cj ? malloc(sizeof(*m)) : NULL;
    if (m == NULL) {
        if (cj)
            dsp_job_free(cj);
        return; /* the lease expires; claimed again later */
    }
    *m = op->msg;
    memset(&op->msg, 0, sizeof(op->msg));
    ewtp_gen_ref(gen);
    cj->gen = gen;
    cj->msgs = m;
    cj->n = 1;
    cj->reason = op->reason ? op->reason : strdup("");
    op->reason = NULL;
    cj->op_id = op->oid;
    cj->op_attempt = op->attempts;
    cj->op_created = op->created_at;
    cj->gi = ewtp_gen_instance(gen, m->plugin);
    dsp_submit(cj, cancel_prepare, dsp_prepared);
}

void ewtp_dispatcher_cancel(struct ewtpd *d, const char *tenant, const char *id, const char *reason,
                            ewtpd_reply_fn reply, void *arg)
{
    struct job *j = dsp_reply_job(d, J_CANCELREQ, reply, arg);
    if (j == NULL)
        return;
    j->tenant = strdup(tenant);
    j->id = strdup(id);
    j->reason = strdup(reason ? reason : "");
    dsp_reply_submit(d, j, j->tenant && j->id && j->reason, cancel_work);
}
