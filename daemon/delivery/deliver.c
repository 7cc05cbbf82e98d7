/* deliver.c — delivery: translate, sign and send a claimed batch (worker steps), then the
 * transport's completion, the authority's answer and the outcome (loop steps). Part of the
 * dispatcher (dispatcher.h); what its files share is delivery_int.h. */
#include "delivery_int.h"

/* ---- delivery: worker steps ---------------------------------------------------------------- */

static void interpret_done(void *arg);

/* The plugin's byte limits (spec/plugin-abi.md) on what translate made: false when the job
 * is done here, split into smaller batches (j->split) or its message rejected. */
static bool fits_limits(struct job *j, const struct ewtp_out *out)
{
    const struct ewtp_plugin *p = j->gi->plugin;
    const struct ewtp_document *const *docs = NULL;
    size_t nd = ewtp_out_documents(out, &docs);
    size_t *req_bytes = ewtp_arena_alloc(j->arena, (j->n_reqs + 1) * sizeof(size_t));
    size_t *doc_bytes = ewtp_arena_alloc(j->arena, (nd + 1) * sizeof(size_t));
    if (req_bytes == NULL || doc_bytes == NULL)
        return true; /* the authority will say it */
    size_t k = 0;
    for (size_t i = 0; i < j->n_reqs; i++)
        req_bytes[i] = j->reqs[i]->body_len;
    for (size_t i = 0; i < nd; i++) {
        /* A document that is a request's body (the submission envelope) counts as a request. */
        bool body = false;
        for (size_t r = 0; r < j->n_reqs && !body; r++)
            body = j->reqs[r]->body_doc && docs[i]->name &&
                   strcmp(j->reqs[r]->body_doc, docs[i]->name) == 0;
        if (!body)
            doc_bytes[k++] = docs[i]->len;
    }
    size_t pieces = 1, size = 0, limit = 0;
    const char *what = NULL;
    enum ewtp_batch_fit fit = ewtp_batch_fit(dsp_batch_of(p), j->n, req_bytes, j->n_reqs, doc_bytes,
                                             k, &pieces, &what, &size, &limit);
    if (fit == EWTP_BATCH_FITS)
        return true;
    if (fit == EWTP_BATCH_SPLIT) {
        j->split = pieces;
        return false;
    }
    char *text = ewtp_asprintf("the %s to the %s authority would be %zu bytes; plugin %s "
                               "accepts at most %zu bytes per %s",
                               what, p->country, size, p->name, limit, what);
    char *ej = dsp_one_error("", "size", text, NULL);
    dsp_record_local(j, &j->msgs[0], EWTP_V_REJECTED, "size", text, ej);
    free(ej);
    free(text);
    return false;
}

void dsp_deliver_prepare(void *arg)
{
    struct job *j = arg;
    int64_t now = ewtpd_now_ms();
    j->started_us = ewtp_metrics_now_us();
    if (j->gi == NULL) {
        for (size_t i = 0; i < j->n; i++)
            dsp_record_local(j, &j->msgs[i], EWTP_V_RETRY, "no_instance",
                             "the plugin instance of this message is not in the configuration",
                             NULL);
        return;
    }
    const struct ewtp_plugin *p = j->gi->plugin;
    const void *state = ewtp_instance_state(j->gi->inst);
    j->arena = ewtp_arena_new();
    j->calls = calloc(j->n, sizeof(*j->calls));
    j->callp = calloc(j->n, sizeof(*j->callp));
    j->chain_number = calloc(j->n, sizeof(*j->chain_number));
    struct ewtp_errors *errs = ewtp_errors_new();
    if (!j->arena || !j->calls || !j->callp || !j->chain_number || !errs) {
        ewtp_errors_free(errs);
        for (size_t i = 0; i < j->n; i++)
            dsp_record_local(j, &j->msgs[i], EWTP_V_RETRY, "internal", "out of memory", NULL);
        return;
    }
    for (size_t i = 0; i < j->n; i++) {
        const struct ewtp_store_msg *m = &j->msgs[i];
        struct ewtp_message *msg = dsp_parse_stored(j, m);
        if (msg == NULL) {
            /* Send nothing of a batch that cannot be built whole. */
            for (size_t k = 0; k < j->n; k++)
                dsp_record_local(j, &j->msgs[k], EWTP_V_RETRY, "unparsable",
                                 "the stored message no longer parses with the loaded plugins",
                                 NULL);
            ewtp_errors_free(errs);
            return;
        }
        dsp_call_init(j, &j->calls[i], m, msg, EWTP_OP_SUBMIT, now);
        int rrc = dsp_add_related(j, &j->calls[i], m);
        if (rrc != 0) {
            /* Never translated without its related messages: again later. */
            for (size_t k = 0; k < j->n; k++)
                dsp_record_local(j, &j->msgs[k], EWTP_V_RETRY, "related",
                                 "the related messages could not be read", NULL);
            ewtpd_log(LOG_ERR, "%s/%s: related messages not read: %s", m->tenant, m->id,
                      ewtp_strerror(rrc));
            ewtp_errors_free(errs);
            return;
        }
        if (m->needs_chain && m->ordering_key) {
            int64_t last = 0;
            char *ref = NULL;
            struct ewtp_chain *ch = ewtp_arena_alloc(j->arena, sizeof(*ch));
            int crc = ch ? ewtp_store_chain_get(dsp_store_of(j), m->ordering_key, &last, &ref)
                         : -EWTP_ENOMEM;
            if (crc != 0) {
                /* Never sent without its number: the whole job again later. */
                ewtpd_log(LOG_ERR, "%s/%s: chain of %s not read: %s", m->tenant, m->id,
                          m->ordering_key, ewtp_strerror(crc));
                for (size_t k = 0; k < j->n; k++)
                    dsp_record_local(j, &j->msgs[k], EWTP_V_RETRY, "store",
                                     "the chain position could not be read", NULL);
                ewtp_errors_free(errs);
                return;
            }
            *ch = (struct ewtp_chain)EWTP_CHAIN_INIT(.number = (uint64_t)last + 1,
                                                     .prev_ref = ewtp_arena_strdup(j->arena, ref));
            j->calls[i].chain = ch;
            j->chain_number[i] = last + 1;
            free(ref);
        }
        if (m->ordering_key && p->abi_minor >= 2) {
            /* ABI 1.2: the state the plugin keeps for the key (a device's initialisation). */
            void *ks = NULL;
            size_t ks_len = 0;
            int krc = ewtp_store_key_state_get(dsp_store_of(j), m->ordering_key, &ks, &ks_len);
            if (krc != 0 && krc != -EWTP_ENOTFOUND) {
                ewtpd_log(LOG_ERR, "%s/%s: state of key %s not read: %s", m->tenant, m->id,
                          m->ordering_key, ewtp_strerror(krc));
                for (size_t k = 0; k < j->n; k++)
                    dsp_record_local(j, &j->msgs[k], EWTP_V_RETRY, "store",
                                     "the ordering key's state could not be read", NULL);
                ewtp_errors_free(errs);
                return;
            }
            if (krc == 0) {
                j->calls[i].key_state = ewtp_arena_memdup(j->arena, ks, ks_len);
                j->calls[i].key_state_len = j->calls[i].key_state ? ks_len : 0;
            }
            free(ks);
        }
        j->callp[i] = &j->calls[i];
    }
    struct ewtp_out *out = ewtp_out_new(j->arena);
    int rc = out ? 0 : -EWTP_ENOMEM;
    if (rc == 0 && j->n > 1)
        rc = p->translate_batch(state, j->callp, j->n, out, errs);
    else if (rc == 0)
        rc = p->translate(state, &j->calls[0], out, errs);
    if (rc == 0 && ewtp_errors_blocking(errs) == 0) {
        j->n_reqs = ewtp_out_requests(out, &j->reqs);
        if (j->n_reqs == 0)
            rc = -EWTP_EINVAL;
    }
    if (j->n > 1 && ewtp_errors_blocking(errs) > 0) {
        /* translate_batch cannot say whose input it was: halve the batch until the message
         * is alone, so that one bad message does not take the others down with it. */
        ewtp_errors_free(errs);
        j->split = 2;
        return;
    }
    if (rc != 0 || ewtp_errors_blocking(errs) > 0) {
        bool input = ewtp_errors_blocking(errs) > 0;
        char *ej = input ? dsp_errors_array(errs) : NULL;
        for (size_t i = 0; i < j->n; i++)
            dsp_record_local(
                j, &j->msgs[i], input ? EWTP_V_REJECTED : EWTP_V_RETRY,
                input ? "translate" : "internal",
                input ? "the plugin cannot build the authority's document" : ewtp_strerror(rc), ej);
        free(ej);
        ewtp_errors_free(errs);
        return;
    }
    ewtp_errors_free(errs);
    if (!fits_limits(j, out))
        return;
    dsp_transport_start(j);
}

/* Ends attempt op_attempt of a J_CANCEL job's operation (fenced by its lease in the store). */
void dsp_op_end(struct job *j, enum ewtp_store_op_end end, int64_t next_at, const char *code,
                const char *message, int64_t now)
{
    json_t *d = json_pack("{s:s,s:s?,s:s?}", "op", "cancel", "code", code, "message", message);
    char *det = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    int rc = ewtp_store_op_finish(dsp_store_of(j), j->op_id, j->op_attempt, end, next_at, det, now);
    free(det);
    if (rc != 0)
        ewtpd_log(rc == -EWTP_EINVAL ? LOG_INFO : LOG_ERR,
                  "%s/%s: cancel attempt %u not recorded: %s (the lease decides)",
                  j->msgs[0].tenant, j->msgs[0].id, j->op_attempt,
                  rc == -EWTP_EINVAL ? "its lease was lost" : ewtp_strerror(rc));
    else
        ewtpd_log(end == EWTP_STORE_OP_FAILED ? LOG_WARNING : LOG_INFO, "%s/%s: cancel %s%s%s",
                  j->msgs[0].tenant, j->msgs[0].id,
                  end == EWTP_STORE_OP_DONE    ? "answered"
                  : end == EWTP_STORE_OP_RETRY ? "to be sent again"
                                               : "given up",
                  code ? ": " : "", code ? code : "");
}

/* A transient failure of the cancel: again after the delivery policy's backoff, or given up
 * when its attempts or age are used up. */
void dsp_op_retry(struct job *j, const char *code, const char *message, int64_t retry_after_ms,
                  int64_t now)
{
    struct ewtp_backoff_policy pol = dsp_policy(j);
    int64_t next = 0;
    bool dead = ewtp_backoff_decide(&pol, j->op_attempt, j->op_created, now, retry_after_ms,
                                    ewtp_rnd64(), &next) == EWTP_STORE_DEAD;
    dsp_op_end(j, dead ? EWTP_STORE_OP_FAILED : EWTP_STORE_OP_RETRY, next, code, message, now);
}

/* The reference the plugin knows before sending call k's message (ABI 1.4 reference); for an
 * older plugin, what its interpret says of an empty 200 answer, for one message alone. */
static const char *known_reference(struct job *j, size_t k)
{
    const struct ewtp_plugin *p = j->gi->plugin;
    const void *state = ewtp_instance_state(j->gi->inst);
    if (PLUGIN_HAS(p, reference))
        return p->reference(state, &j->calls[k]);
    if (j->n != 1)
        return NULL;
    struct ewtp_outcome pi = EWTP_OUTCOME_INIT();
    const struct ewtp_response sr = EWTP_RESPONSE_INIT(.status = 200);
    if (p->interpret(state, &j->calls[k], &sr, &pi) == 0 && pi.verdict == EWTP_V_SUBMITTED)
        return pi.authority_ref;
    return NULL;
}

/* Worker, J_DELIVER: the evidence of this attempt of message i (store.h, issue 18): each
 * request body exactly as sent (after signing) with its endpoint, and the answer with the
 * peer it came from (https: the server certificate's SHA-256; spool: the folder; amqp: the
 * exchange and routing key), into *a for the message's outcome (record_delivery), which
 * commits them in one transaction. Nothing (a->n == 0) when nothing was sent or memory ran
 * out; free with dsp_attempt_evidence_free(). */
void dsp_attempt_evidence(struct job *j, size_t i, const struct ewtp_httpc_resp *tr, int64_t now,
                          struct attempt_evidence *a)
{
    memset(a, 0, sizeof(*a));
    if (j->kind != J_DELIVER || j->n_reqs == 0 || i >= j->n)
        return;
    const struct ewtp_instance_conf *ic = j->gi->conf;
    const char *kind = j->tp ? j->tp->name : "https";
    char *where = ic->transport == EWTP_TRANSPORT_SPOOL
                      ? ewtp_asprintf("spool:%s", ic->spool_out ? ic->spool_out : "")
                  : ic->transport == EWTP_TRANSPORT_AMQP
                      ? ewtp_asprintf("amqp:%s/%s", ic->amqp.exchange ? ic->amqp.exchange : "",
                                      ic->amqp.routing_key ? ic->amqp.routing_key : "")
                      : NULL;
    const char *peer = where ? where : tr && tr->peer ? tr->peer : NULL;
    size_t last = j->next_req < j->n_reqs ? j->next_req : j->n_reqs - 1;
    size_t cap = last + 2;
    a->e = calloc(cap, sizeof(*a->e));
    a->texts = calloc(2 * cap, sizeof(*a->texts));
    if (!a->e || !a->texts) {
        free(where);
        dsp_attempt_evidence_free(a);
        return;
    }
    uint32_t att = j->msgs[i].attempts;
    size_t k = 0;
    for (size_t r = 0; r <= last; r++, k++) {
        const struct ewtp_request *rq = j->reqs[r];
        const char *doc = rq->body_doc && rq->body_doc[0] ? rq->body_doc : "body";
        json_t *m = json_pack("{s:i,s:i,s:s,s:s,s:s?}", "attempt", (json_int_t)att, "request",
                              (json_int_t)r, "transport", kind, "method",
                              rq->method ? rq->method : "", "path", rq->path);
        if (m && ic->endpoint && ic->transport == EWTP_TRANSPORT_HTTPS)
            json_object_set_new(m, "endpoint", json_string(ic->endpoint));
        if (m && peer)
            json_object_set_new(m, "peer", json_string(peer));
        a->texts[2 * k] = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(m);
        a->texts[2 * k + 1] = ewtp_asprintf("attempt-%u/request-%zu-%s", (unsigned)att, r, doc);
        a->e[k] = (struct ewtp_store_evidence){.kind = "request",
                                               .name = a->texts[2 * k + 1],
                                               .meta = a->texts[2 * k],
                                               .body = rq->body,
                                               .body_len = rq->body_len,
                                               .at = now};
    }
    if (tr) {
        json_t *m = json_pack("{s:i,s:i,s:s,s:i,s:s?}", "attempt", (json_int_t)att, "request",
                              (json_int_t)last, "transport", kind, "status", (json_int_t)tr->status,
                              "transport_error", tr->error);
        if (m && peer)
            json_object_set_new(m, "peer", json_string(peer));
        a->texts[2 * k] = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(m);
        a->texts[2 * k + 1] = ewtp_asprintf("attempt-%u/answer", (unsigned)att);
        a->e[k] = (struct ewtp_store_evidence){.kind = "answer",
                                               .name = a->texts[2 * k + 1],
                                               .meta = a->texts[2 * k],
                                               .body = tr->body,
                                               .body_len = tr->body_len,
                                               .at = now};
        k++;
    }
    a->n = k;
    free(where);
    for (size_t t = 0; t < k; t++)
        if (a->e[t].name == NULL) { /* out of memory: the outcome goes without evidence */
            ewtpd_log(LOG_ERR, "%s/%s: out of memory keeping the evidence of attempt %u",
                      j->msgs[i].tenant, j->msgs[i].id, (unsigned)att);
            dsp_attempt_evidence_free(a);
            return;
        }
}

/* The end of a send on a transport that hands messages over (spool, amqp): submitted with
 * the reference the plugin knows, or retried with the transport's error. */
static void handed_over(struct job *j, int64_t now)
{
    const struct ewtp_httpc_resp *tr = j->resp;
    const struct ewtp_transport_ops *tp = j->tp;
    bool ok = tr->status >= 200 && tr->status < 300;
    const char *why = tr->error ? tr->error : "the transport failed";
    j->send = false;
    if (j->kind == J_CANCEL) {
        /* Sent; the authority's answer to the cancel comes back as a receipt. */
        if (ok)
            dsp_op_end(j, EWTP_STORE_OP_DONE, 0, tp->handed_code, tp->handed_message, now);
        else
            dsp_op_retry(j, tp->name, why, 0, now);
        return;
    }
    if (j->kind != J_DELIVER)
        return;
    for (size_t k = 0; k < j->n; k++) {
        struct ewtp_outcome o = EWTP_OUTCOME_INIT(.verdict = ok ? EWTP_V_SUBMITTED : EWTP_V_RETRY,
                                                  .code = ok ? tp->handed_code : tp->name,
                                                  .message = ok ? tp->handed_message : why);
        /* Receipts come back as files or queue messages and are correlated by the reference
         * the plugin names for the message (China: the CEB key). */
        if (ok)
            o.authority_ref = known_reference(j, k);
        struct attempt_evidence ev;
        dsp_attempt_evidence(j, k, tr, now, &ev);
        dsp_record_delivery(j, &j->msgs[k], &o, j->chain_number[k], NULL, (unsigned)j->next_req,
                            NULL, &ev, now);
        dsp_attempt_evidence_free(&ev);
    }
}

/* Every completion of a send, whatever the transport, ends here (on a worker): the answer is
 * interpreted (https) or the hand-over recorded (spool, amqp). */
static void complete(struct job *j)
{
    int64_t now = ewtpd_now_ms();
    if (!j->tp->answers) {
        handed_over(j, now);
        return;
    }
    const struct ewtp_plugin *p = j->gi->plugin;
    const void *state = ewtp_instance_state(j->gi->inst);
    struct ewtp_httpc_resp *tr = j->resp;
    struct ewtp_response resp =
        EWTP_RESPONSE_INIT(.status = tr->status,
                           .headers = dsp_header_ptrs(j->arena, tr->headers, tr->n_headers),
                           .n_headers = tr->n_headers, .body = tr->body, .body_len = tr->body_len,
                           .request_index = (unsigned)j->next_req, .transport_error = tr->error);
    if (resp.headers == NULL)
        resp.n_headers = 0;
    struct ewtp_outcome **o = dsp_outcomes_new(j->arena, j->n);
    int rc = o ? 0 : -EWTP_ENOMEM;
    if (rc == 0 && j->n > 1 && PLUGIN_HAS(p, interpret_batch))
        rc = p->interpret_batch(state, j->callp, j->n, &resp, o);
    else if (rc == 0)
        rc = p->interpret(state, &j->calls[0], &resp, o[0]);
    struct ewtp_outcome fail =
        EWTP_OUTCOME_INIT(.verdict = EWTP_V_RETRY, .code = "interpret",
                          .message = "the plugin could not read the authority's answer");
    j->send = false;
    if (j->kind == J_DELIVER) {
        for (size_t i = 0; i < j->n; i++) {
            struct attempt_evidence ev;
            dsp_attempt_evidence(j, i, tr, now, &ev);
            dsp_record_delivery(j, &j->msgs[i], rc == 0 ? o[i] : &fail, j->chain_number[i], tr,
                                (unsigned)j->next_req, NULL, &ev, now);
            dsp_attempt_evidence_free(&ev);
        }
        return;
    }
    const struct ewtp_outcome *oc = rc == 0 ? o[0] : &fail;
    if (j->kind == J_POLL) {
        /* Only answers that say something new are kept: a poll every interval that says
         * "still received" would bury the receipts. */
        if (oc->verdict != EWTP_V_SUBMITTED && oc->verdict != EWTP_V_RETRY)
            dsp_record_receipt(j, &j->msgs[0], oc, EWTP_OP_SUBMIT, tr->body, tr->body_len, "poll",
                               now);
        return;
    }
    /* J_CANCEL: the answer is a receipt of the message; the operation ends with it, once it
     * is recorded (else the cancel is asked again later: the answer would be lost). */
    if (oc->verdict != EWTP_V_RETRY) {
        if (dsp_record_receipt(j, &j->msgs[0], oc, EWTP_OP_CANCEL, tr->body, tr->body_len, "cancel",
                               now) == 0)
            dsp_op_end(j,
                       oc->verdict == EWTP_V_REJECTED ? EWTP_STORE_OP_FAILED : EWTP_STORE_OP_DONE,
                       0, oc->code, oc->message, now);
        else
            dsp_op_retry(j, "store", "the answer could not be recorded", 0, now);
        return;
    }
    dsp_op_retry(j, oc->code, oc->message, oc->retry_after_ms, now);
}

static void interpret_step(void *arg)
{
    complete(arg);
}

/* ---- delivery: loop steps ------------------------------------------------------------------ */

void dsp_job_end(struct job *j)
{
    struct ewtp_dispatcher *ds = j->ds;
    if (j->kind == J_DELIVER && ds->in_flight > 0)
        ds->in_flight--;
    bool kick = j->kind == J_DELIVER;
    dsp_job_free(j);
    if (kick && !ds->stopped)
        ewtp_dispatcher_kick(ds->d);
}

void dsp_submit(struct job *j, ewtp_work_fn work, ewtp_work_fn done)
{
    if (ewtp_workers_submit(j->ds->d->workers, work, done, j) != 0) {
        ewtpd_log(LOG_ERR, "dispatcher: cannot queue work (shutting down?)");
        dsp_job_end(j);
    }
}

static void interpret_done(void *arg)
{
    dsp_job_end(arg);
}

void dsp_on_answer(void *arg, struct ewtp_httpc_resp *resp)
{
    struct job *j = arg;
    if (resp == NULL)
        resp = calloc(1, sizeof(*resp));
    if (resp == NULL) {
        dsp_job_end(j);
        return;
    }
    if (resp->status == 401)
        dsp_token_refused(j);
    if (resp->status >= 200 && resp->status < 300 && j->next_req + 1 < j->n_reqs) {
        ewtp_httpc_resp_free(resp);
        j->next_req++;
        dsp_send_next(j);
        return;
    }
    ewtp_httpc_resp_free(j->resp);
    j->resp = resp;
    dsp_submit(j, interpret_step, interpret_done);
}

static struct ewtp_transport_req transport_req(struct job *j)
{
    return (struct ewtp_transport_req){.ic = j->gi->conf,
                                       .req = j->reqs[j->next_req],
                                       .auth_header = j->auth_header,
                                       .timeout_ms = dsp_policy_conf(j)->request_timeout_ms,
                                       .arena = j->arena};
}

/* Loop: the next request on a transport that sends from the loop (https). */
void dsp_send_next(struct job *j)
{
    if (dsp_need_token(j))
        return; /* sent once the token arrives */
    const struct ewtp_transport_env env = {.http = j->ds->tr, .amqp = j->ds->amqp};
    const struct ewtp_transport_req r = transport_req(j);
    j->tp->send(&env, &r, dsp_on_answer, j);
}

static void keep_resp(void *arg, struct ewtp_httpc_resp *resp)
{
    *(struct ewtp_httpc_resp **)arg = resp;
}

/* Worker: every request on a blocking transport (spool, amqp), in order, the next only after
 * a 2xx; then the same completion as an answer from the loop. */
static void send_blocking(struct job *j)
{
    const struct ewtp_transport_env env = {.http = NULL, .amqp = j->ds->amqp};
    struct ewtp_httpc_resp *resp = NULL;
    for (;;) {
        const struct ewtp_transport_req r = transport_req(j);
        resp = NULL;
        j->tp->send(&env, &r, keep_resp, &resp);
        if (resp == NULL || resp->status < 200 || resp->status >= 300 ||
            j->next_req + 1 >= j->n_reqs)
            break;
        ewtp_httpc_resp_free(resp);
        j->next_req++;
    }
    if (resp == NULL)
        resp = ewtp_transport_failure("out of memory");
    if (resp == NULL)
        return; /* the lease expires; sent again later */
    ewtp_httpc_resp_free(j->resp);
    j->resp = resp;
    complete(j);
}

/* Worker, after the job's requests are built: a blocking transport sends now; the others
 * from the loop once the worker step is done (prepared). */
void dsp_transport_start(struct job *j)
{
    j->tp = ewtp_transport_of(j->gi->conf->transport);
    j->next_req = 0;
    if (j->tp->blocking) {
        send_blocking(j);
        return;
    }
    dsp_read_auth(j);
    j->send = true;
}

/* A batch over the plugin's limits goes out as j->split smaller batches, each translated
 * again (the leases and attempt numbers stay). */
static void split_job(struct job *j)
{
    struct ewtp_dispatcher *ds = j->ds;
    ewtpd_log(LOG_INFO,
              "instance %s: a batch of %zu does not fit the plugin's limits or has a "
              "refused message: sent as %zu smaller batches",
              j->gi ? j->gi->conf->name : "?", j->n, j->split);
    for (size_t i = 0; i < j->split && !ds->stopped; i++) {
        size_t start = 0, len = ewtp_batch_piece(j->n, j->split, i, &start);
        struct ewtp_store_msg *group = len ? calloc(len, sizeof(*group)) : NULL;
        if (group == NULL)
            continue; /* those leases expire; sent again later */
        memcpy(group, &j->msgs[start], len * sizeof(*group));
        memset(&j->msgs[start], 0, len * sizeof(*group));
        dsp_start_one(ds, J_DELIVER, j->gen, group, len);
    }
}

void dsp_prepared(void *arg)
{
    struct job *j = arg;
    if (j->split > 1) {
        split_job(j);
        dsp_job_end(j);
        return;
    }
    if (j->send && !j->ds->stopped) {
        dsp_send_next(j);
        return;
    }
    dsp_job_end(j);
}
