/* record.c — recording: an attempt's outcome, a local verdict and a receipt in the store, with
 * their events, evidence, metrics and webhooks. Part of the dispatcher (dispatcher.h); what its
 * files share is delivery_int.h. */
#include "delivery_int.h"

/* ---- recording ---------------------------------------------------------------------------- */

/* The rejection explainer (ABI 1.6) in an event's detail: the authority's raw code, the
 * plugin's plain cause and the common-message pointer, each when known. */
static void explain_detail(json_t *det, const char *code, const struct ewtp_outcome *o)
{
    if (det == NULL)
        return;
    if (code)
        json_object_set_new(det, "code", json_string(code));
    if (o && o->cause && o->cause[0])
        json_object_set_new(det, "cause", json_string(o->cause));
    if (o && o->pointer && o->pointer[0])
        json_object_set_new(det, "pointer", json_string(o->pointer));
}

void dsp_attempt_evidence_free(struct attempt_evidence *a)
{
    for (size_t t = 0; a->texts && a->e && t < 2 * a->n; t++)
        free(a->texts[t]);
    free(a->texts);
    free(a->e);
    memset(a, 0, sizeof(*a));
}

/* ABI 1.7: the unique id the plugin wrote into message m's document (its document_id), as the
 * reference the store keeps beside the authority's ("doc:" + id, so that it never meets an
 * authority reference of the same text); NULL when the plugin names none. Malloc'd. */
static char *doc_ref_of(struct job *j, const struct ewtp_store_msg *m)
{
    const struct ewtp_plugin *p = j->gi ? j->gi->plugin : NULL;
    if (p == NULL || !PLUGIN_HAS(p, document_id) || j->calls == NULL || m < j->msgs ||
        m >= j->msgs + j->n || j->calls[m - j->msgs].msg == NULL)
        return NULL;
    const char *id = p->document_id(ewtp_instance_state(j->gi->inst), &j->calls[m - j->msgs]);
    return id && id[0] ? ewtp_asprintf("doc:%s", id) : NULL;
}

/* Records the outcome of attempt m->attempts of m, with what follows: poll schedule, chain,
 * webhook. o->verdict RETRY goes through the backoff. ev (NULL when nothing was sent): the
 * attempt's evidence, committed in the outcome's own transaction. */
void dsp_record_delivery(struct job *j, const struct ewtp_store_msg *m,
                         const struct ewtp_outcome *o, int64_t chain_number,
                         const struct ewtp_httpc_resp *resp, unsigned req_index,
                         const char *errors_json, const struct attempt_evidence *ev, int64_t now)
{
    enum ewtp_store_state st;
    const char *code = o->code, *text = o->message;
    if (!ewtp_backoff_verdict_state(o->verdict, EWTP_OP_SUBMIT, &st)) {
        st = EWTP_STORE_RETRYING;
        code = "unexpected_verdict";
        text = "the plugin gave a verdict a submission cannot have";
    }
    int64_t next = 0;
    if (st == EWTP_STORE_RETRYING) {
        int64_t ra = o->retry_after_ms;
        for (size_t i = 0; ra == 0 && resp && i < resp->n_headers; i++)
            if (strcasecmp(resp->headers[i].name, "Retry-After") == 0)
                ra = ewtp_retry_after_ms(resp->headers[i].value, now);
        struct ewtp_backoff_policy p = dsp_policy(j);
        st = ewtp_backoff_decide(&p, m->attempts, m->created_at, now, ra, ewtp_rnd64(), &next);
    }
    /* ABI 1.2 key_blocked: the authority's numbering and the key's chain disagree. The message
     * is dead instead of rejected, and a dead message holds every later one of its key (the
     * claim's blocking states), so nothing more of the key is sent until an admin sets the
     * chain (ewtpctl chain set) and replays it. */
    bool blocked = o->key_blocked && m->ordering_key && st != EWTP_STORE_SUBMITTED &&
                   st != EWTP_STORE_APPROVED;
    if (blocked) {
        st = EWTP_STORE_DEAD;
        ewtpd_log(LOG_ERR,
                  "%s/%s: ordering key %s blocked: %s %s; no later message of the key is sent "
                  "until `ewtpctl chain set %s NUMBER` and `ewtpctl replay %s --tenant %s`",
                  m->tenant, m->id, m->ordering_key, code ? code : "", text ? text : "",
                  m->ordering_key, m->id, m->tenant);
    }
    struct ewtp_store_receipt rec = {.state = st, .code = code, .message = text, .at = now};
    if (resp && resp->body_len) {
        rec.raw = resp->body;
        rec.raw_len = resp->body_len;
    }
    char *errs = NULL;
    if (errors_json)
        errs = strdup(errors_json);
    else if (st == EWTP_STORE_SUBMITTED || st == EWTP_STORE_APPROVED)
        errs = strdup("[]");
    else
        errs = dsp_one_error(o->pointer, code, text, code == o->code ? o->cause : NULL);
    json_t *det = json_object();
    if (resp) {
        json_object_set_new(det, "http_status", json_integer(resp->status));
        json_object_set_new(det, "request", json_integer(req_index));
        if (resp->error)
            json_object_set_new(det, "transport_error", json_string(resp->error));
    }
    explain_detail(det, code, code == o->code ? o : NULL);
    char *detail = json_dumps(det, JSON_COMPACT);
    json_decref(det);
    struct ewtp_store_chain_advance ch = {
        .key = m->ordering_key, .number = chain_number, .ref = o->authority_ref};
    bool chained = m->needs_chain && m->ordering_key && chain_number > 0 &&
                   (st == EWTP_STORE_SUBMITTED || st == EWTP_STORE_APPROVED);
    struct ewtp_store_outcome out = {.key = m->key,
                                     .attempt = m->attempts,
                                     .state = st,
                                     .authority_ref = o->authority_ref,
                                     .receipt = &rec,
                                     .next_attempt_at = next,
                                     .errors = errs,
                                     .detail = detail,
                                     .chain = chained ? &ch : NULL,
                                     .now = now,
                                     .webhook = ewtp_webhooks_wanted(j->gen, m->tenant),
                                     .owner = m->lease_owner,
                                     .evidence = ev ? ev->e : NULL,
                                     .n_evidence = ev ? ev->n : 0};
    /* ABI 1.2: the plugin's state of the key and the chain's first number, in the same
     * transaction (o is always a host-allocated outcome of this host's size). */
    if (m->ordering_key && (o->key_state_out || o->chain_first > 0)) {
        out.okey = m->ordering_key;
        out.key_state = o->key_state_out;
        out.key_state_len = o->key_state_out ? o->key_state_out_len : 0;
        out.chain_first = o->chain_first <= (uint64_t)INT64_MAX ? (int64_t)o->chain_first : 0;
    }
    char *doc_ref = j->kind == J_DELIVER ? doc_ref_of(j, m) : NULL;
    out.doc_ref = doc_ref;
    /* Its next poll in the outcome's own transaction (not a second one, with its own sync). */
    if (st == EWTP_STORE_SUBMITTED) {
        bool poll = o->poll && j->gi && PLUGIN_HAS(j->gi->plugin, poll);
        out.poll_at = poll ? now + dsp_policy_conf(j)->poll_interval_ms : -1;
    }
    int rc = ewtp_store_record_outcome(dsp_store_of(j), &out);
    free(doc_ref);
    if (rc == -EWTP_ERANGE && chained) {
        /* Cannot happen with one message in flight per key; keep the answer anyway. */
        ewtpd_log(LOG_ERR, "%s/%s: chain %s out of sequence at %" PRId64, m->tenant, m->id,
                  m->ordering_key, chain_number);
        out.chain = NULL;
        rc = ewtp_store_record_outcome(dsp_store_of(j), &out);
    }
    free(errs);
    free(detail);
    if (rc == -EWTP_EINVAL) {
        ewtpd_log(LOG_INFO, "%s/%s: outcome of attempt %u not recorded: decided meanwhile",
                  m->tenant, m->id, m->attempts);
        /* The lease was lost (expired, or a receipt decided first), but what this attempt
         * sent did reach the authority: its evidence is kept beside the lease_expired or
         * receipt event that ended the attempt. */
        int erc = ev && ev->n ? ewtp_store_evidence_add(dsp_store_of(j), m->key, ev->e, ev->n) : 0;
        if (erc < 0 && erc != -EWTP_EUNSUPP)
            ewtpd_log(LOG_ERR, "%s/%s: cannot keep the evidence of attempt %u: %s", m->tenant,
                      m->id, m->attempts, ewtp_strerror(erc));
        return;
    }
    if (rc < 0) {
        ewtpd_log(LOG_ERR,
                  "%s/%s: cannot record the outcome and evidence of attempt %u: %s (the lease "
                  "will expire and the message be sent again)",
                  m->tenant, m->id, m->attempts, ewtp_strerror(rc));
        return;
    }
    if (j->started_us)
        ewtp_metrics_delivery(j->ds->d->metrics, m->plugin, ewtp_store_state_name(st),
                              ewtp_metrics_now_us() - j->started_us);
    /* MESSAGE_ID: journalctl MESSAGE_ID=<it> lists every delivery outcome. */
    ewtpd_log_msg(st == EWTP_STORE_DEAD ? LOG_WARNING : LOG_INFO,
                  "6d3c1b9e0f8a4f2b9a1d7e5c4b3a2f10", m->id, m->tenant, m->plugin,
                  "attempt %u -> %s%s%s", m->attempts, ewtp_store_state_name(st), code ? " " : "",
                  code ? code : "");
    dsp_hooks_kick(j);
}

/* A failure before anything was sent. */
void dsp_record_local(struct job *j, const struct ewtp_store_msg *m, enum ewtp_verdict v,
                      const char *code, const char *text, const char *errors_json)
{
    struct ewtp_outcome o = EWTP_OUTCOME_INIT(.verdict = v, .code = code, .message = text);
    dsp_record_delivery(j, m, &o, 0, NULL, 0, errors_json, NULL, ewtpd_now_ms());
}

/* A receipt (poll, inbound, cancel answer) for m. */
int dsp_record_receipt(struct job *j, const struct ewtp_store_msg *m, const struct ewtp_outcome *o,
                       enum ewtp_op op, const void *raw, size_t raw_len, const char *source,
                       int64_t now)
{
    enum ewtp_store_state st = m->state;
    bool set = ewtp_backoff_verdict_state(o->verdict, op, &st);
    if (o->verdict == EWTP_V_RETRY) {
        set = false;
        st = m->state;
    }
    if (o->verdict == EWTP_V_SUBMITTED &&
        (m->state == EWTP_STORE_SUBMITTED || op == EWTP_OP_CANCEL))
        set = false;
    if (o->verdict == EWTP_V_APPROVED && op == EWTP_OP_CANCEL)
        set = false; /* "cancel request received" is not a cancellation */
    if (o->verdict == EWTP_V_REJECTED && op == EWTP_OP_CANCEL)
        set = false; /* a refused cancellation leaves the message as it was */
    if (!set)
        st = m->state;
    struct ewtp_store_receipt rec = {.state = st,
                                     .code = o->code,
                                     .message = o->message,
                                     .raw = raw_len ? raw : NULL,
                                     .raw_len = raw_len,
                                     .at = now};
    json_t *det =
        json_pack("{s:s,s:s}", "source", source, "op", op == EWTP_OP_CANCEL ? "cancel" : "submit");
    explain_detail(det, o->code, o);
    char *detail = det ? json_dumps(det, JSON_COMPACT) : NULL;
    json_decref(det);
    /* As for a synchronous answer: a decision by receipt replaces the message's errors (a
     * callback rejection keeps the authority's code and the member at fault). */
    char *errs = NULL;
    if (set && st != m->state)
        errs = st == EWTP_STORE_SUBMITTED || st == EWTP_STORE_APPROVED || st == EWTP_STORE_CANCELLED
                   ? strdup("[]")
                   : dsp_one_error(o->pointer, o->code, o->message, o->cause);
    struct ewtp_store_receipt_rec r = {.key = m->key,
                                       .set_state = set,
                                       .state = st,
                                       .authority_ref = o->authority_ref,
                                       .receipt = &rec,
                                       .detail = detail,
                                       .now = now,
                                       .cancel_confirmed = op == EWTP_OP_CANCEL,
                                       .errors = errs,
                                       .webhook = ewtp_webhooks_wanted(j->gen, m->tenant)};
    int rc = ewtp_store_record_receipt(dsp_store_of(j), &r);
    free(detail);
    free(errs);
    if (rc < 0) {
        ewtpd_log(LOG_ERR, "%s/%s: cannot record a receipt: %s", m->tenant, m->id,
                  ewtp_strerror(rc));
        return rc;
    }
    bool changes =
        !ewtp_store_state_terminal(m->state) ||
        (op == EWTP_OP_CANCEL && st == EWTP_STORE_CANCELLED && m->state == EWTP_STORE_APPROVED);
    if (set && st != m->state && changes) {
        ewtpd_log(LOG_INFO, "%s/%s: %s receipt -> %s", m->tenant, m->id, source,
                  ewtp_store_state_name(st));
        dsp_hooks_kick(j);
    }
    return 0;
}
