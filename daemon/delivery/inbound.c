/* inbound.c — inbound receipts: POST /v1/inbound, the spool in-folders and AMQP receipt queues,
 * correlated to their message (by the document's own id first) and recorded; the API's answers.
 * Part of the dispatcher (dispatcher.h); what its files share is delivery_int.h. */
#include "delivery_int.h"

/* ---- inbound ------------------------------------------------------------------------------- */

/* Finds the message an inbound item concerns (issue 19): by the document's own id first (ABI
 * 1.7, unique per tenant and message), then by message id, then by authority reference, always
 * among this instance's messages, and never by guessing between tenants: a message id or a
 * reference that messages of two tenants hold finds nothing (the store refuses such a
 * reference; here a message id found for a second tenant). */
static int correlate(struct job *j, const struct ewtp_correlation *to, struct ewtp_store_msg **m)
{
    struct ewtp_store *st = dsp_store_of(j);
    const char *inst = j->gi->conf->name;
    *m = NULL;
    const char *doc = EWTP_HAS(to, struct ewtp_correlation, document_id) ? to->document_id : NULL;
    if (doc && doc[0]) {
        char *ref = ewtp_asprintf("doc:%s", doc);
        int rc = ref ? ewtp_store_find_by_authority_ref(st, inst, ref, m) : -EWTP_ENOMEM;
        free(ref);
        if (rc == 0)
            return 0;
    }
    if (to->message_id && to->tenant && ewtp_store_get(st, to->tenant, to->message_id, m) == 0) {
        if (strcmp((*m)->plugin, inst) == 0)
            return 0;
        ewtp_store_msgs_free(*m, 1);
        *m = NULL;
    }
    if (to->message_id && to->tenant == NULL) {
        const struct ewtp_config *c = ewtp_gen_config(j->gen);
        struct ewtp_store_msg *found = NULL;
        bool several = false;
        for (size_t i = 0; i < c->n_tenants && !several; i++) {
            struct ewtp_store_msg *x = NULL;
            if (ewtp_store_get(st, c->tenants[i].id, to->message_id, &x) != 0)
                continue;
            if (strcmp(x->plugin, inst) != 0) {
                ewtp_store_msgs_free(x, 1);
            } else if (found) {
                several = true;
                ewtp_store_msgs_free(x, 1);
            } else {
                found = x;
            }
        }
        if (found && !several) {
            *m = found;
            return 0;
        }
        if (found)
            ewtp_store_msgs_free(found, 1);
    }
    if (to->authority_ref && ewtp_store_find_by_authority_ref(st, inst, to->authority_ref, m) == 0)
        return 0;
    *m = NULL;
    return -EWTP_ENOTFOUND;
}

/* One inbound item through receive: the job's answer (dsp_result(); j->res_id when OK). */
static enum ewtp_dispatch_result inbound_one(struct job *j, const char *source, const char *name,
                                             const struct ewtp_header *h, size_t nh,
                                             const void *data, size_t len)
{
    const struct ewtp_plugin *p = j->gi->plugin;
    free(j->res_id);
    j->res_id = NULL;
    if (!PLUGIN_HAS(p, receive))
        return dsp_result(j, EWTP_DISPATCH_UNSUPPORTED, "plugin %s takes no inbound receipts",
                          p->name);
    struct ewtp_arena *a = ewtp_arena_new();
    if (a == NULL)
        return dsp_result(j, EWTP_DISPATCH_FAILED, "out of memory");
    int64_t now = ewtpd_now_ms();
    struct ewtp_inbound in = {.size = sizeof(in),
                              .source = source,
                              .name = name,
                              .headers = dsp_header_ptrs(a, h, nh),
                              .n_headers = nh,
                              .body = data,
                              .body_len = len,
                              .now_ms = now,
                              .arena = a,
                              .host = ewtp_gen_host(j->gen)};
    if (in.headers == NULL)
        in.n_headers = 0;
    struct ewtp_correlation to = EWTP_CORRELATION_INIT();
    struct ewtp_outcome o = EWTP_OUTCOME_INIT();
    int rc = p->receive(ewtp_instance_state(j->gi->inst), &in, &to, &o);
    struct ewtp_store_msg *m = NULL;
    enum ewtp_dispatch_result res;
    if (rc != 0) {
        res = dsp_result(j, EWTP_DISPATCH_UNRECOGNISED, "plugin %s does not recognise this item",
                         p->name);
    } else if (correlate(j, &to, &m) != 0) {
        res = dsp_result(j, EWTP_DISPATCH_NOT_FOUND, "no message matches %s %s",
                         to.message_id ? "id" : "authority reference",
                         to.message_id ? to.message_id
                                       : (to.authority_ref ? to.authority_ref : "(none)"));
    } else {
        /* A cancellation confirmed by a receipt file (China's 624) ends the message as a
         * cancel answer would. Not recorded, it is not taken: the file stays in its folder,
         * the HTTP sender is told to send it again. */
        int rr = dsp_record_receipt(j, m, &o,
                                    o.verdict == EWTP_V_CANCELLED ? EWTP_OP_CANCEL : EWTP_OP_SUBMIT,
                                    data, len, source, now);
        j->res_id = rr == 0 ? strdup(m->id) : NULL;
        res = rr != 0 ? dsp_result(j, EWTP_DISPATCH_FAILED, "the receipt could not be recorded: %s",
                                   ewtp_strerror(rr))
              : j->res_id ? dsp_result(j, EWTP_DISPATCH_OK, NULL)
                          : dsp_result(j, EWTP_DISPATCH_FAILED, "out of memory");
        ewtp_store_msgs_free(m, 1);
    }
    ewtp_arena_free(a);
    return res;
}

static void inbound_work(void *arg)
{
    struct job *j = arg;
    if (j->gi == NULL) {
        dsp_result(j, EWTP_DISPATCH_NOT_FOUND, "no plugin instance %s", j->instance);
        return;
    }
    inbound_one(j, "http", j->instance, j->hdrs, j->n_hdrs, j->data, j->len);
}

static void reply_done(void *arg)
{
    struct job *j = arg;
    if (j->reply) {
        const struct ewtp_dispatch_reply r = {.result = j->res,
                                              .message = j->res_text,
                                              .errors = j->res_errs,
                                              .id = j->res_id,
                                              .state = j->res_state};
        j->reply(j->reply_arg, &r);
        j->reply = NULL;
    }
    /* A cancel on disk: the dispatcher claims it now (or once the authority has the message). */
    if (j->kind == J_CANCELREQ && j->res == EWTP_DISPATCH_OK && !j->ds->stopped)
        ewtp_dispatcher_kick(j->ds->d);
    dsp_job_end(j);
}

/* Answers an API request at once with res and a sentence. */
static void reply_now(ewtpd_reply_fn reply, void *arg, enum ewtp_dispatch_result res,
                      const char *message)
{
    const struct ewtp_dispatch_reply r = {.result = res, .message = message};
    reply(arg, &r);
}

void ewtp_dispatcher_webhook_counts(struct ewtpd *d, uint64_t *delivered, uint64_t *failed)
{
    struct ewtp_dispatcher *ds = d->dispatcher;
    *delivered = ds && ds->wh ? ewtp_webhooks_delivered(ds->wh) : 0;
    *failed = ds && ds->wh ? ewtp_webhooks_failed(ds->wh) : 0;
}

/* A job that answers an API request through reply, holding the current generation; NULL
 * (after answering 503) when the dispatcher is not running. */
struct job *dsp_reply_job(struct ewtpd *d, enum job_kind kind, ewtpd_reply_fn reply, void *arg)
{
    struct ewtp_dispatcher *ds = d->dispatcher;
    struct job *j = ds && !ds->stopped ? dsp_job_new(ds, kind) : NULL;
    if (j == NULL) {
        reply_now(reply, arg, EWTP_DISPATCH_UNAVAILABLE, "the dispatcher is not running");
        return NULL;
    }
    j->reply = reply;
    j->reply_arg = arg;
    j->res = EWTP_DISPATCH_FAILED; /* until the work says otherwise */
    j->gen = ewtpd_gen_acquire(d);
    return j;
}

/* Queues work for a reply_job; answers 503 instead when the job could not be filled in
 * (!filled: out of memory) or queued. */
void dsp_reply_submit(struct ewtpd *d, struct job *j, bool filled, ewtp_work_fn work)
{
    ewtpd_reply_fn reply = j->reply;
    void *arg = j->reply_arg;
    if (!filled) {
        dsp_job_free(j);
        reply_now(reply, arg, EWTP_DISPATCH_FAILED, "out of memory");
    } else if (ewtp_workers_submit(d->workers, work, reply_done, j) != 0) {
        dsp_job_free(j);
        reply_now(reply, arg, EWTP_DISPATCH_UNAVAILABLE, "shutting down");
    }
}

/* A NUL-terminated copy of len bytes: plugins get NUL-terminated bodies, whatever the
 * transport. */
static char *copy_nul(const void *p, size_t len)
{
    char *c = malloc(len + 1);
    if (c) {
        if (len)
            memcpy(c, p, len);
        c[len] = '\0';
    }
    return c;
}

void ewtp_dispatcher_inbound(struct ewtpd *d, const char *instance,
                             const struct ewtp_header *headers, size_t n_headers, const void *body,
                             size_t len, ewtpd_reply_fn reply, void *arg)
{
    struct job *j = dsp_reply_job(d, J_INBOUND, reply, arg);
    if (j == NULL)
        return;
    j->gi = ewtp_gen_instance(j->gen, instance);
    j->instance = strdup(instance);
    j->hdrs = n_headers ? calloc(n_headers, sizeof(*j->hdrs)) : NULL;
    for (size_t i = 0; j->hdrs && i < n_headers; i++) {
        j->hdrs[i].name = strdup(headers[i].name ? headers[i].name : "");
        j->hdrs[i].value = strdup(headers[i].value ? headers[i].value : "");
        j->hdrs[i].secret = headers[i].secret;
        j->n_hdrs++;
    }
    j->data = copy_nul(body, len);
    if (j->data)
        j->len = len;
    dsp_reply_submit(d, j, j->instance && j->data && (!n_headers || j->hdrs), inbound_work);
}

/* Spool in-folders: every file is one inbound item; handled ones go to done/, items no
 * plugin recognises (or unmatched for too long) to failed/. The folder is shared with the
 * other side: everything is relative to the directory opened once, a planted link is moved
 * (never followed) and the subfolders are opened without following links. */
static void spool_move_n(int dfd, const char *dir, const char *sub, const char *const *names,
                         size_t n)
{
    mkdirat(dfd, sub, 0750);
    int sfd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    for (size_t k = 0; k < n; k++)
        if (sfd < 0 || renameat(dfd, names[k], sfd, names[k]) != 0)
            ewtpd_log(LOG_ERR, "spool: cannot move %s/%s to %s/: %s", dir, names[k], sub,
                      strerror(errno));
    if (sfd >= 0)
        close(sfd);
}

static void spool_move(int dfd, const char *dir, const char *sub, const char *name)
{
    spool_move_n(dfd, dir, sub, &name, 1);
}

/* Receipt files recorded in one go, their durability shared: at most SPOOL_BATCH, so that
 * a full folder does not hold its first answers back for long. */
#define SPOOL_BATCH 64
struct spool_batch {
    char done[SPOOL_BATCH][sizeof(((struct dirent *)0)->d_name)]; /* to done/ once durable */
    size_t n;
};

/* The batch's records made durable (one sync for all of them), then its files moved to done/;
 * when the sync fails they stay, and are read and recorded again at the next scan. */
static void spool_batch_end(struct job *j, struct spool_batch *b, int dfd, const char *dir)
{
    int rc = ewtp_store_durable_end(dsp_store_of(j));
    if (rc != 0)
        ewtpd_log(LOG_ERR,
                  "spool %s: %zu receipts are not on stable storage (%s): kept for the"
                  " next scan",
                  dir, b->n, ewtp_strerror(rc));
    const char *names[SPOOL_BATCH];
    for (size_t k = 0; k < b->n; k++)
        names[k] = b->done[k];
    if (rc == 0 && b->n > 0)
        spool_move_n(dfd, dir, "done", names, b->n);
    b->n = 0;
}

static void spool_work(void *arg)
{
    struct job *j = arg;
    size_t ni = ewtp_gen_instance_count(j->gen);
    static _Thread_local struct spool_batch b; /* 16 KiB: not on the stack */
    b.n = 0;
    for (size_t i = 0; i < ni; i++) {
        j->gi = ewtp_gen_instance_at(j->gen, i);
        const char *dir = j->gi->conf->spool_in;
        DIR *dh = dir ? opendir(dir) : NULL;
        if (dh == NULL)
            continue;
        int dfd = dirfd(dh);
        struct dirent *e;
        /* Each receipt's record used to wait for a sync of its own, one after another (issue
         * 20: receipts were recorded at a third of the rate messages went out); a batch of
         * them now shares one. */
        ewtp_store_durable_defer(dsp_store_of(j));
        while ((e = readdir(dh)) != NULL) {
            struct stat sb;
            if (e->d_name[0] == '.' || fstatat(dfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
                S_ISDIR(sb.st_mode))
                continue; /* done/, failed/ and the other side's hidden temporaries */
            char *data = NULL;
            size_t len = 0;
            const char *why = NULL;
            enum ewtp_dispatch_result res;
            if (ewtp_spool_read(dfd, e->d_name, INBOUND_MAX_BYTES, &data, &len, &sb, &why) == 0)
                res = inbound_one(j, "spool", e->d_name, NULL, 0, data, len);
            else
                res = dsp_result(j, EWTP_DISPATCH_UNRECOGNISED, "refused: %s (at most %d bytes)",
                                 why, INBOUND_MAX_BYTES);
            int64_t age = ewtpd_now_ms() - (int64_t)sb.st_mtime * 1000;
            if (res == EWTP_DISPATCH_OK) {
                /* Moved once the batch is durable (a rename meanwhile would not change what
                 * readdir shows next: done/ is a subfolder, never read as a receipt). */
                snprintf(b.done[b.n++], sizeof(b.done[0]), "%s", e->d_name);
            } else if (res == EWTP_DISPATCH_UNSUPPORTED || res == EWTP_DISPATCH_UNRECOGNISED ||
                       (res == EWTP_DISPATCH_NOT_FOUND && age > SPOOL_UNMATCHED_KEEP_MS)) {
                ewtpd_log(LOG_WARNING, "spool %s: %s: %s", dir, e->d_name,
                          j->res_text ? j->res_text : "");
                spool_move(dfd, dir, "failed", e->d_name);
            }
            free(data);
            if (b.n == SPOOL_BATCH) {
                spool_batch_end(j, &b, dfd, dir);
                ewtp_store_durable_defer(dsp_store_of(j));
            }
        }
        spool_batch_end(j, &b, dfd, dir);
        closedir(dh);
    }
    j->gi = NULL;
}

static void spool_done(void *arg)
{
    struct job *j = arg;
    j->ds->spooling = false;
    dsp_job_end(j);
}

/* Starts an inbound scan (spool folders, AMQP queues) on the workers; *busy stays set until
 * its done clears it. */
void dsp_scan_start(struct ewtp_dispatcher *ds, ewtp_work_fn work, ewtp_work_fn done, bool *busy)
{
    struct job *j = dsp_job_new(ds, J_SPOOL);
    if (j == NULL)
        return;
    j->gen = ewtpd_gen_acquire(ds->d);
    *busy = true;
    if (ewtp_workers_submit(ds->d->workers, work, done, j) != 0) {
        *busy = false;
        dsp_job_free(j);
    }
}

void dsp_spool_scan(struct ewtp_dispatcher *ds)
{
    if (ds->spooling)
        return;
    struct ewtp_gen *g = ds->d->gen;
    bool any = false;
    for (size_t i = 0; i < ewtp_gen_instance_count(g) && !any; i++)
        any = ewtp_gen_instance_at(g, i)->conf->spool_in != NULL;
    if (any)
        dsp_scan_start(ds, spool_work, spool_done, &ds->spooling);
}

/* AMQP receipt queues: each message is one inbound item, acked once recorded. One that
 * matches no message yet goes back to the tail of its queue (the receipt may overtake the
 * record of its submission) for as long as a spool file would wait; then, like one no
 * plugin recognises, it is rejected (dead-lettered when the queue has a dead-letter
 * exchange). */
#define AMQP_FETCH_MAX 64

static enum ewtp_amqp_disposition amqp_receipt(void *arg, const struct ewtp_amqp_delivery *d)
{
    struct job *j = arg;
    const char *queue = j->gi->conf->amqp.receipt_queue;
    char *data = copy_nul(d->body, d->len);
    if (data == NULL)
        return EWTP_AMQP_LATER;
    enum ewtp_dispatch_result res =
        inbound_one(j, "amqp", d->message_id ? d->message_id : queue, NULL, 0, data, d->len);
    free(data);
    enum ewtp_amqp_disposition disp = EWTP_AMQP_ACK;
    if (res == EWTP_DISPATCH_NOT_FOUND &&
        ewtpd_now_ms() - d->first_seen_ms <= SPOOL_UNMATCHED_KEEP_MS)
        disp = EWTP_AMQP_LATER;
    else if (res == EWTP_DISPATCH_FAILED || res == EWTP_DISPATCH_UNAVAILABLE)
        disp = EWTP_AMQP_LATER;
    else if (res != EWTP_DISPATCH_OK) {
        ewtpd_log(LOG_WARNING, "amqp %s: queue %s: message %s rejected: %s", j->gi->conf->name,
                  queue, d->message_id ? d->message_id : "(no id)", j->res_text ? j->res_text : "");
        disp = EWTP_AMQP_REJECT;
    }
    return disp;
}

static void amqp_work(void *arg)
{
    struct job *j = arg;
    size_t ni = ewtp_gen_instance_count(j->gen);
    for (size_t i = 0; i < ni; i++) {
        j->gi = ewtp_gen_instance_at(j->gen, i);
        const struct ewtp_instance_conf *ic = j->gi->conf;
        if (ic->transport != EWTP_TRANSPORT_AMQP || ic->amqp.receipt_queue == NULL)
            continue;
        size_t n = 0;
        char *why = NULL;
        /* Not logged here: the pool logs each outage once, and this runs every scan. */
        ewtp_amqp_fetch(j->ds->amqp, ic, AMQP_FETCH_MAX, dsp_policy_conf(j)->request_timeout_ms,
                        amqp_receipt, j, &n, &why);
        free(why);
    }
    j->gi = NULL;
}

static void amqp_done(void *arg)
{
    struct job *j = arg;
    j->ds->amqp_fetching = false;
    dsp_job_end(j);
}

void dsp_amqp_scan(struct ewtp_dispatcher *ds)
{
    if (ds->amqp_fetching || ds->amqp == NULL)
        return;
    struct ewtp_gen *g = ds->d->gen;
    bool any = false;
    for (size_t i = 0; i < ewtp_gen_instance_count(g) && !any; i++) {
        const struct ewtp_instance_conf *ic = ewtp_gen_instance_at(g, i)->conf;
        any = ic->transport == EWTP_TRANSPORT_AMQP && ic->amqp.receipt_queue != NULL;
    }
    if (any)
        dsp_scan_start(ds, amqp_work, amqp_done, &ds->amqp_fetching);
}
