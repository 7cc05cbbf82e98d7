/* Belgium's simulator (ewtp-sim --country be): an IDMS-H7 lodgement service on the EONGW shape
 * and a Peppol access point stub.
 *
 *   POST /h7/declarations   Bearer token; body validated against schema/be-h7.xsd (our own
 *                           schema: the simulator does not trust the plugin's output)
 *                           -> 400 IE906 (schema errors), 409 (LRN already lodged), or
 *                              202 IE928 (received) and later, by call-back:
 *                              IE906 H7-150 (intrinsic value > EUR 150), IE906 H7-EXCISE,
 *                              IE906 H7-CUR (no rate), IE416 FRCT (LRN contains refuse_lrn),
 *                              else IE428 (MRN) then IE429 released, or IE451 not released
 *                              when the LRN contains not_release_lrn.
 *   POST /api/v1/outbound   access point: acknowledges at once, validates after, as a real
 *                           one does -> 422 {"errors":[{code,message}]} when the body is not
 *                              well-formed XML, else 202 {"id":"AP-n","status":"queued"} and
 *                              later, by call-back (and into spool_in), a Peppol Message Level
 *                              Status receipt (UBL ApplicationResponse, DocumentReference/ID =
 *                              AP-n): AP accepted, or RE with StatusReasonCode BV (fatal
 *                              schematron assert) / SV (UBL XSD) and "<rule>: <message>" of the
 *                              first problem in StatusReason.
 *                           The official artefacts of peppol_validate decide. A worker thread
 *                           takes every queued document at once through ap_validate_batch.sh
 *                           (validate.sh's steps, one JVM per stage for the whole batch), so a
 *                           burst costs about what one invoice does and never blocks the loop.
 * Settings (--set): token, callback_url, callback_token, spool_in, decision_delay_ms (200),
 * eur_rates ("USD=0.92,CNY=0.13"), refuse_lrn ("frct"), not_release_lrn ("notrel"),
 * peppol_validate (path of validate.sh; empty: well-formedness only), xsd. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ewtp/decimal.h>
#include <ewtp/json.h>
#include <ewtp/sim.h>
#include <ewtp/xml.h>

#include "be.h"

#ifndef BE_XSD_DEFAULT
#define BE_XSD_DEFAULT "schema/be-h7.xsd"
#endif
#ifndef BE_PEPPOL_VALIDATE_DEFAULT
#define BE_PEPPOL_VALIDATE_DEFAULT ""
#endif
#ifndef BE_AP_BATCH
#define BE_AP_BATCH "ap_validate_batch.sh"
#endif

/* One document the access point acknowledged and has yet to decide. The loop thread makes it;
 * the worker fills status/first; the loop sends the receipt and frees it. */
struct ap_job {
    struct ap_job *next;
    unsigned long n; /* AP-<n> */
    char *doc;
    size_t len;
    int status;  /* validate.sh's exit: 0 valid, 1 fatal assert, 2 XSD, 3 not validated */
    char *first; /* its first line: "KIND<TAB>rule<TAB>xpath<TAB>message", or NULL */
};

/* The access point's validation queue: todo (loop -> worker) and done (worker -> loop), both
 * under mu; the loop drains done on a timer while anything is outstanding. */
struct ap_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct ap_job *todo, *done;
    char *validate; /* the worker's copy of peppol_validate */
    bool started, stop;
    pid_t child; /* the running batch (its own process group), 0 when none */
    pthread_t thread;
    size_t outstanding; /* loop only: acknowledged, receipt not sent yet */
    struct ewtp_sim_timer *drain;
};

struct be_decl {
    char *lrn, *mrn, *outcome, *code, *reason, *pointer;
    int stage; /* 0 lodged, 1 accepted (IE428 sent), 2 decided */
    struct ewtp_sim_timer *timer;
    struct be_sim *st;
};

struct be_sim {
    struct ewtp_sim *sim;
    struct ewtp_xsd *xsd;
    char *token, *callback_url, *callback_token, *spool_in, *eur_rates, *refuse_lrn,
        *not_release_lrn, *peppol_validate;
    int64_t delay_ms;
    struct be_decl **decls;
    size_t n_decls, cap_decls;
    unsigned long invoices;
    struct ap_queue ap;
};

static int be_sim_set(void *state, const char *key, const char *value, struct ewtp_errors *why)
{
    struct be_sim *st = state;
    if (strcmp(key, "token") == 0)
        return ewtp_sim_set_string(&st->token, value, NULL);
    if (strcmp(key, "callback_url") == 0)
        return ewtp_sim_set_string(&st->callback_url, value, NULL);
    if (strcmp(key, "callback_token") == 0)
        return ewtp_sim_set_string(&st->callback_token, value, NULL);
    if (strcmp(key, "spool_in") == 0)
        return ewtp_sim_set_string(&st->spool_in, value, NULL);
    if (strcmp(key, "eur_rates") == 0)
        return ewtp_sim_set_string(&st->eur_rates, value, "USD=0.92,CNY=0.13,GBP=1.15");
    if (strcmp(key, "refuse_lrn") == 0)
        return ewtp_sim_set_string(&st->refuse_lrn, value, "frct");
    if (strcmp(key, "not_release_lrn") == 0)
        return ewtp_sim_set_string(&st->not_release_lrn, value, "notrel");
    if (strcmp(key, "peppol_validate") == 0) {
        ewtp_sim_set_string(&st->peppol_validate, value, BE_PEPPOL_VALIDATE_DEFAULT);
        char *copy = st->peppol_validate ? strdup(st->peppol_validate) : NULL;
        pthread_mutex_lock(&st->ap.mu);
        free(st->ap.validate);
        st->ap.validate = copy;
        pthread_mutex_unlock(&st->ap.mu);
        return 0;
    }
    if (strcmp(key, "decision_delay_ms") == 0)
        return ewtp_sim_set_int(key, value, 200, 0, 86400000, why, &st->delay_ms);
    if (strcmp(key, "xsd") == 0) {
        struct ewtp_xsd *x = NULL;
        const char *path = value && *value ? value : BE_XSD_DEFAULT;
        if (ewtp_xsd_load(path, why, &x) != 0)
            return -EWTP_EINVAL;
        ewtp_xsd_free(st->xsd);
        st->xsd = x;
        return 0;
    }
    return -EWTP_ENOTFOUND;
}

static void decl_free(struct be_decl *d)
{
    free(d->lrn);
    free(d->mrn);
    free(d->outcome);
    free(d->code);
    free(d->reason);
    free(d->pointer);
    free(d);
}

static void ap_jobs_free(struct ap_job *j)
{
    while (j) {
        struct ap_job *next = j->next;
        free(j->doc);
        free(j->first);
        free(j);
        j = next;
    }
}

static void be_sim_destroy(void *state)
{
    struct be_sim *st = state;
    if (st == NULL)
        return;
    /* The worker stops after its batch; a running validator is ended, not waited for. */
    pthread_mutex_lock(&st->ap.mu);
    st->ap.stop = true;
    if (st->ap.child > 0)
        kill(-st->ap.child, SIGTERM);
    pthread_cond_signal(&st->ap.cv);
    pthread_mutex_unlock(&st->ap.mu);
    if (st->ap.started)
        pthread_join(st->ap.thread, NULL);
    ewtp_sim_timer_cancel(st->sim, st->ap.drain);
    ap_jobs_free(st->ap.todo);
    ap_jobs_free(st->ap.done);
    free(st->ap.validate);
    pthread_mutex_destroy(&st->ap.mu);
    pthread_cond_destroy(&st->ap.cv);
    for (size_t i = 0; i < st->n_decls; i++) {
        ewtp_sim_timer_cancel(st->sim, st->decls[i]->timer);
        decl_free(st->decls[i]);
    }
    free(st->decls);
    ewtp_xsd_free(st->xsd);
    char **f[] = {&st->token,     &st->callback_url, &st->callback_token,  &st->spool_in,
                  &st->eur_rates, &st->refuse_lrn,   &st->not_release_lrn, &st->peppol_validate};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        free(*f[i]);
    free(st);
}

static int be_sim_create(struct ewtp_sim *sim, const struct ewtp_settings *settings, void **state,
                         struct ewtp_errors *why)
{
    struct be_sim *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -EWTP_ENOMEM;
    st->sim = sim;
    st->delay_ms = 200;
    pthread_mutex_init(&st->ap.mu, NULL);
    pthread_cond_init(&st->ap.cv, NULL);
    static const char *const defaults[] = {"eur_rates",       "refuse_lrn", "not_release_lrn",
                                           "peppol_validate", "xsd",        NULL};
    int rc = ewtp_sim_apply_settings(st, be_sim_set, defaults, settings, NULL, why);
    if (rc != 0) {
        be_sim_destroy(st);
        return rc;
    }
    *state = st;
    return 0;
}

/* ---- IDMS notifications ------------------------------------------------------------------- */

/* MRN check digit, ISO 6346 weighting (letters skip multiples of 11). */
static char mrn_check(const char *s)
{
    static const int letters[26] = {10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24,
                                    25, 26, 27, 28, 29, 30, 31, 32, 34, 35, 36, 37, 38};
    long sum = 0, weight = 1;
    for (; *s; s++, weight *= 2)
        sum += weight * (*s >= 'A' && *s <= 'Z' ? letters[*s - 'A'] : *s - '0');
    return (char)('0' + (sum % 11) % 10);
}

static const char *notification(struct ewtp_arena *a, int64_t now, const char *type,
                                const struct be_decl *d, const char *code, const char *reason,
                                const char *pointer)
{
    struct ewtp_xml_writer *w = ewtp_xml_writer_new(EWTP_XML_INDENT);
    char t[40];
    ewtp_time_format(now, 0, t, sizeof(t));
    ewtp_xml_start(w, "h7", type);
    ewtp_xml_ns(w, "h7", BE_H7_NS);
    ewtp_xml_start(w, "h7", "MessageHeader");
    ewtp_xml_elem(w, "h7", "MessageIdentification",
                  ewtp_arena_printf(a, "IDMS-%s-%s", type, d->lrn));
    ewtp_xml_elem(w, "h7", "MessageType", type);
    ewtp_xml_elem(w, "h7", "PreparationDateAndTime", t);
    ewtp_xml_elem(w, "h7", "Sender", "IDMS-H7-SIM");
    ewtp_xml_end(w);
    ewtp_xml_elem(w, "h7", "LRN", d->lrn);
    ewtp_xml_elem(w, "h7", "MRN", d->mrn);
    ewtp_xml_elem(w, "h7", "DateAndTime", t);
    if (code) {
        ewtp_xml_start(w, "h7", "Error");
        ewtp_xml_elem(w, "h7", "ErrorCode", code);
        ewtp_xml_elem(w, "h7", "ErrorReason", reason);
        ewtp_xml_elem(w, "h7", "ErrorPointer", pointer);
        ewtp_xml_end(w);
    }
    const char *out = NULL;
    size_t len = 0;
    int rc = ewtp_xml_writer_finish(w, a, &out, &len);
    ewtp_xml_writer_free(w);
    return rc == 0 ? out : NULL;
}

static void announce(struct be_sim *st, const char *name, const char *body, const char *ctype)
{
    struct ewtp_sim_deliver_to to = {st->callback_url, st->callback_token, st->spool_in};
    if (body)
        ewtp_sim_deliver(st->sim, &to, name, ctype, body, strlen(body));
}

static void decide(struct ewtp_sim *sim, void *arg)
{
    struct be_decl *d = arg;
    struct be_sim *st = d->st;
    d->timer = NULL;
    struct ewtp_arena *a = ewtp_arena_new();
    if (a == NULL)
        return;
    int64_t now = ewtp_sim_now_ms(sim);
    const char *type = d->outcome;
    if (d->stage == 0 && (strcmp(d->outcome, "IE429") == 0 || strcmp(d->outcome, "IE451") == 0)) {
        type = "IE428"; /* accepted with an MRN first; release decided later */
        d->stage = 1;
        d->timer = ewtp_sim_timer_add(sim, st->delay_ms, decide, d);
    } else {
        d->stage = 2;
    }
    const char *body =
        notification(a, now, type, d, d->stage == 2 ? d->code : NULL, d->reason, d->pointer);
    announce(st, ewtp_arena_printf(a, "%s-%s.xml", d->lrn, type), body, "application/xml");
    ewtp_arena_free(a);
}

static bool eur_rate(const struct be_sim *st, const char *cur, struct ewtp_dec *rate)
{
    if (strcmp(cur, "EUR") == 0) {
        *rate = ewtp_dec_from_int(1);
        return true;
    }
    for (const char *p = st->eur_rates; p && *p;) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (eq && (size_t)(eq - p) == 3 && strncmp(p, cur, 3) == 0)
            return ewtp_dec_parse_ex(eq + 1, n - 4, 18, 6, rate) == 0;
        p = end ? end + 1 : NULL;
    }
    return false;
}

/* The decision IDMS will take: its own reading of the declaration, not the plugin's. */
static void judge(struct be_sim *st, struct ewtp_xml_doc *doc, struct ewtp_arena *a,
                  struct be_decl *d)
{
    const struct ewtp_xml_node **items = NULL;
    size_t n = 0;
    ewtp_xml_xpath_nodes(doc, NULL, "//h7:GoodsItem", a, &items, &n);
    struct ewtp_dec total = ewtp_dec_from_int(0);
    for (size_t i = 0; i < n; i++) {
        const char *hs = NULL, *val = NULL, *cur = NULL;
        ewtp_xml_xpath_string(doc, items[i], "h7:HarmonizedSystemSubHeadingCode", a, &hs);
        ewtp_xml_xpath_string(doc, items[i], "h7:IntrinsicValue", a, &val);
        ewtp_xml_xpath_string(doc, items[i], "h7:IntrinsicValue/@currency", a, &cur);
        if (hs && (strncmp(hs, "220", 3) == 0 && hs[3] >= '3' && hs[3] <= '8'
                       ? true
                       : strncmp(hs, "240", 3) == 0 && hs[3] >= '2' && hs[3] <= '4')) {
            d->outcome = strdup("IE906");
            d->code = strdup("H7-EXCISE");
            d->reason = strdup("excise goods cannot be declared with H7");
            d->pointer = strdup(ewtp_arena_printf(
                a, "Declaration/GoodsItem[%zu]/HarmonizedSystemSubHeadingCode", i + 1));
            return;
        }
        struct ewtp_dec v, rate, eur;
        if (val == NULL || cur == NULL || ewtp_dec_parse(val, &v) != 0 ||
            !eur_rate(st, cur, &rate)) {
            d->outcome = strdup("IE906");
            d->code = strdup("H7-CUR");
            d->reason = strdup("no exchange rate for the currency of the intrinsic value");
            d->pointer =
                strdup(ewtp_arena_printf(a, "Declaration/GoodsItem[%zu]/IntrinsicValue", i + 1));
            return;
        }
        if (ewtp_dec_mul(v, rate, &eur) == 0)
            ewtp_dec_add(total, eur, &total);
    }
    struct ewtp_dec rounded;
    ewtp_dec_round(total, 2, &rounded);
    if (ewtp_dec_cmp(rounded, ewtp_dec_from_int(150)) > 0) {
        d->outcome = strdup("IE906");
        d->code = strdup("H7-150");
        d->reason = strdup("intrinsic value of the consignment exceeds EUR 150");
        d->pointer = strdup("Declaration/GoodsItem[1]/IntrinsicValue");
    } else if (st->refuse_lrn && strstr(d->lrn, st->refuse_lrn)) {
        d->outcome = strdup("IE416");
        d->code = strdup("FRCT");
        d->reason = strdup("insufficient balance on the FRCT account");
    } else if (st->not_release_lrn && strstr(d->lrn, st->not_release_lrn)) {
        d->outcome = strdup("IE451");
        d->code = strdup("CTRL");
        d->reason = strdup("not released after physical control");
    } else {
        d->outcome = strdup("IE429");
    }
}

static void lodge(struct be_sim *st, const struct ewtp_sim_request *req,
                  struct ewtp_sim_response *resp)
{
    struct ewtp_errors *errs = ewtp_errors_new();
    struct be_decl tmp = {.lrn = "UNKNOWN"};
    struct ewtp_xml_doc *doc = ewtp_sim_body_xml(req, resp, st->xsd, NULL, errs);
    if (doc == NULL) {
        const struct ewtp_error *e = ewtp_errors_at(errs, 0);
        const char *body =
            notification(req->arena, ewtp_sim_now_ms(st->sim), "IE906", &tmp, "H7-XSD",
                         e ? ewtp_arena_strndup(req->arena, e->message, 500) : "invalid", NULL);
        ewtp_sim_reply(resp, 400, "application/xml", body, body ? strlen(body) : 0);
        ewtp_errors_free(errs);
        return;
    }
    ewtp_errors_free(errs);
    ewtp_xml_ns_register(doc, "h7", BE_H7_NS);
    const char *lrn = NULL;
    ewtp_xml_xpath_string(doc, NULL, "//h7:Declaration/h7:LRN", req->arena, &lrn);
    if (ewtp_sim_record(st->sim, lrn) > 1) {
        ewtp_sim_reply_error(req, resp, 409, "EONGW-409", "LRN already lodged", NULL);
        ewtp_xml_free(doc);
        return;
    }
    if (st->n_decls == st->cap_decls) {
        size_t cap = st->cap_decls ? 2 * st->cap_decls : 32;
        struct be_decl **g = realloc(st->decls, cap * sizeof(*g));
        if (g == NULL) {
            ewtp_xml_free(doc);
            ewtp_sim_reply_error(req, resp, 500, "EONGW-500", "out of memory", NULL);
            return;
        }
        st->decls = g;
        st->cap_decls = cap;
    }
    struct be_decl *d = calloc(1, sizeof(*d));
    if (d == NULL || (d->lrn = strdup(lrn)) == NULL) {
        free(d);
        ewtp_xml_free(doc);
        ewtp_sim_reply_error(req, resp, 500, "EONGW-500", "out of memory", NULL);
        return;
    }
    d->st = st;
    st->decls[st->n_decls++] = d;
    judge(st, doc, req->arena, d);
    ewtp_xml_free(doc);
    if (d->outcome && strcmp(d->outcome, "IE906") != 0 && strcmp(d->outcome, "IE416") != 0) {
        /* 2-digit year, BE, 12 alphanumerics, R (H7), ISO 6346 check digit: 18 characters. */
        char t[40];
        ewtp_time_format(ewtp_sim_now_ms(st->sim), 0, t, sizeof(t));
        unsigned long seq = (unsigned long)(st->n_decls % 1000000000000UL);
        char buf[64];
        snprintf(buf, sizeof(buf), "%c%cBE%012luR", t[2], t[3], seq);
        char *m = strlen(buf) == 17 ? malloc(19) : NULL;
        if (m) {
            memcpy(m, buf, 18);
            m[17] = mrn_check(buf);
            m[18] = '\0';
            d->mrn = m;
        }
    }
    d->timer = ewtp_sim_timer_add(st->sim, st->delay_ms, decide, d);
    const char *body =
        notification(req->arena, ewtp_sim_now_ms(st->sim), "IE928", d, NULL, NULL, NULL);
    /* The MRN is not known to the trader before IE428. */
    if (body) {
        char *no_mrn = ewtp_arena_strdup(req->arena, body);
        char *s = strstr(no_mrn, "<h7:MRN>"), *e = s ? strstr(s, "</h7:MRN>") : NULL;
        if (s && e) {
            memmove(s, e + 9, strlen(e + 9) + 1);
        }
        body = no_mrn;
    }
    ewtp_sim_reply(resp, 202, "application/xml", body, body ? strlen(body) : 0);
}

/* ---- Access point stub --------------------------------------------------------------------- */

/* How often the loop looks for decided documents while any is outstanding. */
#define AP_DRAIN_MS 50

/* Runs the batch validator over one batch (worker thread): each job gets validate.sh's exit
 * status and first line for its document, or status 3 when it could not be validated. */
static void ap_validate(struct ap_queue *q, const char *validate, struct ap_job *batch)
{
    for (struct ap_job *j = batch; j; j = j->next)
        j->status = -1;
    char dir[] = "/tmp/be-sim-ap-XXXXXX";
    if (mkdtemp(dir) == NULL)
        goto unseen;
    char path[64];
    for (struct ap_job *j = batch; j; j = j->next) {
        snprintf(path, sizeof(path), "%s/%lu.xml", dir, j->n);
        FILE *f = fopen(path, "wb");
        bool ok = f && fwrite(j->doc, 1, j->len, f) == j->len;
        if (f && fclose(f) != 0)
            ok = false;
        if (!ok) {
            j->status = 3;
            j->first = strdup("IO\t-\t-\tthe access point could not store the document");
        }
    }
    int fds[2];
    if (pipe(fds) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            /* Its own process group, so that destroy can end the JVMs with it. */
            setpgid(0, 0);
            dup2(fds[1], STDOUT_FILENO);
            close(fds[0]);
            close(fds[1]);
            execl("/bin/sh", "sh", BE_AP_BATCH, validate, dir, (char *)NULL);
            _exit(127);
        }
        close(fds[1]);
        FILE *out = pid > 0 ? fdopen(fds[0], "r") : NULL;
        if (pid > 0) {
            setpgid(pid, pid);
            pthread_mutex_lock(&q->mu);
            q->child = pid;
            if (q->stop)
                kill(-pid, SIGTERM);
            pthread_mutex_unlock(&q->mu);
        }
        /* "<n>.xml<TAB><status><TAB><first line>", the first line per document counts. */
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while (out && (len = getline(&line, &cap, out)) > 0) {
            line[strcspn(line, "\n")] = '\0';
            char *end = NULL;
            unsigned long n = strtoul(line, &end, 10);
            if (strncmp(end, ".xml\t", 5) != 0 || end[5] < '0' || end[5] > '3')
                continue;
            for (struct ap_job *j = batch; j; j = j->next) {
                if (j->n != n || j->status >= 0)
                    continue;
                j->status = end[5] - '0';
                if (end[6] == '\t' && end[7] != '\0')
                    j->first = strdup(end + 7);
            }
        }
        free(line);
        if (out)
            fclose(out);
        else
            close(fds[0]);
        if (pid > 0) {
            waitpid(pid, NULL, 0);
            pthread_mutex_lock(&q->mu);
            q->child = 0;
            pthread_mutex_unlock(&q->mu);
        }
    }
    for (struct ap_job *j = batch; j; j = j->next) {
        snprintf(path, sizeof(path), "%s/%lu.xml", dir, j->n);
        unlink(path);
    }
    rmdir(dir);
unseen:
    for (struct ap_job *j = batch; j; j = j->next) {
        if (j->status < 0) {
            j->status = 3;
            j->first = strdup("SETUP\t-\t-\tthe access point could not run the Peppol validator "
                              "(see the simulator's log)");
        }
    }
}

static void *ap_worker(void *arg)
{
    struct ap_queue *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->stop && q->todo == NULL)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->stop)
            break;
        /* Everything queued so far is one batch. */
        struct ap_job *batch = q->todo;
        q->todo = NULL;
        bool check = q->validate != NULL;
        char *validate = check ? strdup(q->validate) : NULL;
        pthread_mutex_unlock(&q->mu);
        if (check && validate)
            ap_validate(q, validate, batch);
        for (struct ap_job *j = batch; j; j = j->next) {
            if (!check) /* well-formedness only, checked when it came in */
                j->status = 0;
            else if (validate == NULL)
                j->status = 3;
        }
        free(validate);
        pthread_mutex_lock(&q->mu);
        struct ap_job **tail = &q->done;
        while (*tail)
            tail = &(*tail)->next;
        *tail = batch;
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* The Message Level Status receipt (Peppol MLS, UBL ApplicationResponse) of one document. */
static const char *mls(struct ewtp_arena *a, int64_t now, const struct ap_job *j,
                       const char *reason)
{
    struct ewtp_xml_writer *w = ewtp_xml_writer_new(EWTP_XML_INDENT);
    char t[40];
    ewtp_time_format(now, 0, t, sizeof(t));
    ewtp_xml_start(w, NULL, "ApplicationResponse");
    ewtp_xml_ns(w, NULL, BE_UBL_AR_NS);
    ewtp_xml_ns(w, "cac", BE_UBL_CAC_NS);
    ewtp_xml_ns(w, "cbc", BE_UBL_CBC_NS);
    ewtp_xml_elem(w, "cbc", "CustomizationID", "urn:peppol:edec:mls:1.0");
    ewtp_xml_elem(w, "cbc", "ProfileID", "urn:peppol:edec:mls");
    ewtp_xml_elem(w, "cbc", "ID", ewtp_arena_printf(a, "MLS-AP-%lu", j->n));
    ewtp_xml_elem(w, "cbc", "IssueDate", ewtp_arena_strndup(a, t, 10));
    ewtp_xml_elem(w, "cbc", "IssueTime", ewtp_arena_printf(a, "%.8sZ", t + 11));
    ewtp_xml_start(w, "cac", "DocumentResponse");
    ewtp_xml_start(w, "cac", "Response");
    ewtp_xml_elem(w, "cbc", "ResponseCode", j->status == 0 ? "AP" : "RE");
    if (j->status != 0) {
        ewtp_xml_start(w, "cac", "Status");
        ewtp_xml_elem(w, "cbc", "StatusReasonCode", j->status == 1 ? "BV" : "SV");
        ewtp_xml_elem(w, "cbc", "StatusReason", reason);
        ewtp_xml_end(w);
    }
    ewtp_xml_end(w);
    ewtp_xml_start(w, "cac", "DocumentReference");
    ewtp_xml_elem(w, "cbc", "ID", ewtp_arena_printf(a, "AP-%lu", j->n));
    ewtp_xml_end(w);
    ewtp_xml_end(w);
    const char *out = NULL;
    size_t len = 0;
    int rc = ewtp_xml_writer_finish(w, a, &out, &len);
    ewtp_xml_writer_free(w);
    return rc == 0 ? out : NULL;
}

/* Sends the receipts of the documents the worker has decided (loop thread). */
static void ap_drain(struct ewtp_sim *sim, void *arg)
{
    struct be_sim *st = arg;
    st->ap.drain = NULL;
    pthread_mutex_lock(&st->ap.mu);
    struct ap_job *done = st->ap.done;
    st->ap.done = NULL;
    pthread_mutex_unlock(&st->ap.mu);
    struct ewtp_arena *a = ewtp_arena_new();
    for (struct ap_job *j = done; j; j = j->next) {
        st->ap.outstanding--;
        if (a == NULL)
            continue;
        /* "KIND<TAB>rule<TAB>xpath<TAB>message" -> "rule: message" */
        const char *reason = "the document is not a valid Peppol BIS 3.0 document";
        char *rule = j->first ? strchr(j->first, '\t') : NULL;
        char *xp = rule ? strchr(rule + 1, '\t') : NULL;
        char *msg = xp ? strchr(xp + 1, '\t') : NULL;
        if (msg) {
            *xp = '\0';
            reason = strcmp(rule + 1, "-") == 0
                         ? ewtp_arena_strndup(a, msg + 1, 1000)
                         : ewtp_arena_printf(a, "%s: %.1000s", rule + 1, msg + 1);
        }
        if (j->status == 3)
            ewtp_sim_log(sim, EWTP_LOG_ERR, "AP-%lu not validated: %s", j->n, reason);
        const char *body = mls(a, ewtp_sim_now_ms(sim), j, reason);
        if (body == NULL) /* a reason that is not UTF-8 */
            body = mls(a, ewtp_sim_now_ms(sim), j, "the document is not a valid Peppol document");
        if (st->callback_url == NULL && st->spool_in == NULL)
            ewtp_sim_log(sim, EWTP_LOG_WARNING,
                         "AP-%lu decided (%s) but neither callback_url nor spool_in is set", j->n,
                         j->status == 0 ? "AP" : "RE");
        announce(st, ewtp_arena_printf(a, "AP-%lu-mls.xml", j->n), body, "application/xml");
    }
    ewtp_arena_free(a);
    ap_jobs_free(done);
    if (st->ap.outstanding > 0)
        st->ap.drain = ewtp_sim_timer_add(sim, AP_DRAIN_MS, ap_drain, st);
}

static void ap_send(struct be_sim *st, const struct ewtp_sim_request *req,
                    struct ewtp_sim_response *resp)
{
    /* The door checks only that it is XML; the Peppol rules are decided after the answer. */
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ewtp_xml_doc *doc = ewtp_sim_body_xml(req, resp, NULL, NULL, errs);
    ewtp_xml_free(doc);
    if (doc == NULL) {
        const struct ewtp_error *e = ewtp_errors_at(errs, 0);
        ewtp_sim_reply_error(req, resp, 422, "AP-INVALID",
                             ewtp_arena_printf(req->arena,
                                               "the document is not well-formed XML: %.500s",
                                               e && e->message ? e->message : "unreadable"),
                             NULL);
        ewtp_errors_free(errs);
        return;
    }
    ewtp_errors_free(errs);
    struct ap_job *j = calloc(1, sizeof(*j));
    if (j)
        j->doc = malloc(req->body_len ? req->body_len : 1);
    if (j == NULL || j->doc == NULL ||
        (!st->ap.started && pthread_create(&st->ap.thread, NULL, ap_worker, &st->ap) != 0)) {
        ap_jobs_free(j);
        ewtp_sim_reply_error(req, resp, 500, "AP-500", "cannot queue the document", NULL);
        return;
    }
    st->ap.started = true;
    memcpy(j->doc, req->body, req->body_len);
    j->len = req->body_len;
    unsigned long n = j->n = ++st->invoices;
    pthread_mutex_lock(&st->ap.mu);
    struct ap_job **tail = &st->ap.todo;
    while (*tail)
        tail = &(*tail)->next;
    *tail = j;
    pthread_cond_signal(&st->ap.cv);
    pthread_mutex_unlock(&st->ap.mu);
    st->ap.outstanding++;
    if (st->ap.drain == NULL)
        st->ap.drain = ewtp_sim_timer_add(st->sim, AP_DRAIN_MS, ap_drain, st);
    ewtp_sim_reply_json(
        resp, 202, ewtp_arena_printf(req->arena, "{\"id\":\"AP-%lu\",\"status\":\"queued\"}", n));
}

static int be_sim_handle(void *state, const struct ewtp_sim_request *req,
                         struct ewtp_sim_response *resp)
{
    struct be_sim *st = state;
    bool post = strcmp(req->method, "POST") == 0;
    if (strcmp(req->path, "/h7/declarations") == 0) {
        if (!post)
            ewtp_sim_reply_error(req, resp, 405, "EONGW-405", "use POST", NULL);
        else if (ewtp_sim_require_bearer(req, resp, st->token, "EONGW", "EONGW-401"))
            lodge(st, req, resp);
    } else if (strcmp(req->path, "/api/v1/outbound") == 0) {
        if (!post)
            ewtp_sim_reply_error(req, resp, 405, "AP-405", "use POST", NULL);
        else if (ewtp_sim_require_bearer(req, resp, st->token, "EONGW", "EONGW-401"))
            ap_send(st, req, resp);
    } else {
        ewtp_sim_reply_error(req, resp, 404, "SIM-404", "no such endpoint", NULL);
    }
    return 0;
}

EWTP_SIM_MODULE(.name = "be", .country = "BE",
                .authority = "IDMS-H7 (EONGW) and a Peppol access point (simulated)",
                .create = be_sim_create, .handle = be_sim_handle, .destroy = be_sim_destroy,
                .set = be_sim_set);
