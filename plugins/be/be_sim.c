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
 *   POST /api/v1/outbound   access point: runs peppol_validate (../shared/.../validate.sh)
 *                           -> 422 {"errors":[{code,message}]} (first fatal rule) or
 *                              202 {"id","status":"queued"}. (No MLS receipts yet.)
 * Settings (--set): token, callback_url, callback_token, spool_in, decision_delay_ms (200),
 * eur_rates ("USD=0.92,CNY=0.13"), refuse_lrn ("frct"), not_release_lrn ("notrel"),
 * peppol_validate (path of validate.sh; empty: well-formedness only), xsd. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
};

static int set_str(char **f, const char *v, const char *def)
{
    const char *s = v ? v : def;
    char *copy = s && *s ? strdup(s) : NULL;
    free(*f);
    *f = copy;
    return 0;
}

static int be_sim_set(void *state, const char *key, const char *value, struct ewtp_errors *why)
{
    struct be_sim *st = state;
    if (strcmp(key, "token") == 0)
        return set_str(&st->token, value, NULL);
    if (strcmp(key, "callback_url") == 0)
        return set_str(&st->callback_url, value, NULL);
    if (strcmp(key, "callback_token") == 0)
        return set_str(&st->callback_token, value, NULL);
    if (strcmp(key, "spool_in") == 0)
        return set_str(&st->spool_in, value, NULL);
    if (strcmp(key, "eur_rates") == 0)
        return set_str(&st->eur_rates, value, "USD=0.92,CNY=0.13,GBP=1.15");
    if (strcmp(key, "refuse_lrn") == 0)
        return set_str(&st->refuse_lrn, value, "frct");
    if (strcmp(key, "not_release_lrn") == 0)
        return set_str(&st->not_release_lrn, value, "notrel");
    if (strcmp(key, "peppol_validate") == 0)
        return set_str(&st->peppol_validate, value, BE_PEPPOL_VALIDATE_DEFAULT);
    if (strcmp(key, "decision_delay_ms") == 0) {
        int64_t v = 200;
        if (value && ewtp_sim_parse_int(value, 0, 86400000, &v) != 0) {
            ewtp_errors_add(why, key, "range", "decision_delay_ms must be 0 to 86400000");
            return -EWTP_EINVAL;
        }
        st->delay_ms = v;
        return 0;
    }
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

static void be_sim_destroy(void *state)
{
    struct be_sim *st = state;
    if (st == NULL)
        return;
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
    static const char *const defaults[] = {"eur_rates", "refuse_lrn", "not_release_lrn",
                                           "peppol_validate", "xsd"};
    int rc = 0;
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]) && rc == 0; i++)
        rc = be_sim_set(st, defaults[i], NULL, why);
    for (size_t i = 0; rc == 0 && i < ewtp_settings_count(settings); i++) {
        const char *name = NULL;
        const struct ewtp_settings *v = ewtp_settings_index(settings, i, &name);
        rc = be_sim_set(st, name, ewtp_settings_value_string(v), why);
        if (rc == -EWTP_ENOTFOUND) {
            ewtp_errors_add(why, name, "unknown_member", "unknown setting %s", name);
            rc = -EWTP_EINVAL;
        }
    }
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
    if (body == NULL)
        return;
    if (st->callback_url)
        ewtp_sim_post(st->sim, st->callback_url, st->callback_token, ctype, body, strlen(body));
    if (st->spool_in)
        ewtp_sim_spool_write(st->sim, st->spool_in, name, body, strlen(body));
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

static bool authorised(struct be_sim *st, const struct ewtp_sim_request *req,
                       struct ewtp_sim_response *resp)
{
    const char *auth = ewtp_sim_request_header(req, "Authorization");
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0 || auth[7] == '\0' ||
        (st->token && strcmp(auth + 7, st->token) != 0)) {
        ewtp_sim_reply_error(req, resp, 401, "EONGW-401", "a valid access token is required", NULL);
        return false;
    }
    return true;
}

static void lodge(struct be_sim *st, const struct ewtp_sim_request *req,
                  struct ewtp_sim_response *resp)
{
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ewtp_xml_doc *doc = NULL;
    struct be_decl tmp = {.lrn = "UNKNOWN"};
    if (ewtp_xml_parse(req->body, req->body_len, errs, &doc) != 0 ||
        ewtp_xsd_validate_doc(st->xsd, doc, errs) != 0) {
        const struct ewtp_error *e = ewtp_errors_at(errs, 0);
        const char *body =
            notification(req->arena, ewtp_sim_now_ms(st->sim), "IE906", &tmp, "H7-XSD",
                         e ? ewtp_arena_strndup(req->arena, e->message, 500) : "invalid", NULL);
        ewtp_sim_reply(resp, 400, "application/xml", body, body ? strlen(body) : 0);
        ewtp_xml_free(doc);
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

static void ap_send(struct be_sim *st, const struct ewtp_sim_request *req,
                    struct ewtp_sim_response *resp)
{
    char path[] = "/tmp/be-sim-ap-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, req->body, req->body_len) != (ssize_t)req->body_len) {
        if (fd >= 0)
            close(fd), unlink(path);
        ewtp_sim_reply_error(req, resp, 500, "AP-500", "cannot store the document", NULL);
        return;
    }
    close(fd);
    int status = 0;
    char first[512] = "";
    if (st->peppol_validate) {
        /* The official artefacts decide (a test stub: this blocks the loop for a few s). */
        char *cmd = ewtp_arena_printf(req->arena, "QUIET_WARNINGS=1 sh '%s' '%s' 2>/dev/null",
                                      st->peppol_validate, path);
        FILE *p = popen(cmd, "r");
        if (p) {
            if (fgets(first, sizeof(first), p) == NULL)
                first[0] = '\0';
            char sink[512];
            while (fgets(sink, sizeof(sink), p))
                ;
            int w = pclose(p);
            status = WIFEXITED(w) ? WEXITSTATUS(w) : 3;
        }
    } else {
        struct ewtp_xml_doc *doc = NULL;
        status = ewtp_xml_parse(req->body, req->body_len, NULL, &doc) == 0 ? 0 : 2;
        ewtp_xml_free(doc);
    }
    unlink(path);
    if (status != 0) {
        /* "FATAL<TAB>rule<TAB>xpath<TAB>message" */
        char *rule = strchr(first, '\t');
        char *xp = rule ? strchr(rule + 1, '\t') : NULL;
        char *msg = xp ? strchr(xp + 1, '\t') : NULL;
        if (xp)
            *xp = '\0';
        if (msg)
            msg[strcspn(msg, "\n")] = '\0';
        ewtp_sim_reply_error(req, resp, 422, rule ? rule + 1 : "AP-INVALID",
                             msg ? msg + 1 : "the document is not a valid Peppol BIS 3.0 document",
                             NULL);
        return;
    }
    st->invoices++;
    const char *id = ewtp_arena_printf(req->arena, "AP-%lu", st->invoices);
    ewtp_sim_reply_json(resp, 202,
                        ewtp_arena_printf(req->arena, "{\"id\":\"%s\",\"status\":\"queued\"}", id));
}

static int be_sim_handle(void *state, const struct ewtp_sim_request *req,
                         struct ewtp_sim_response *resp)
{
    struct be_sim *st = state;
    bool post = strcmp(req->method, "POST") == 0;
    if (strcmp(req->path, "/h7/declarations") == 0) {
        if (!post)
            ewtp_sim_reply_error(req, resp, 405, "EONGW-405", "use POST", NULL);
        else if (authorised(st, req, resp))
            lodge(st, req, resp);
    } else if (strcmp(req->path, "/api/v1/outbound") == 0) {
        if (!post)
            ewtp_sim_reply_error(req, resp, 405, "AP-405", "use POST", NULL);
        else if (authorised(st, req, resp))
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
