/* The EIMS API flow (FACTS.md A.2-A.8): registration, verification (poll), cancellation,
 * login, the optional RSA-SHA512 envelope, and the reading of every answer.
 *
 * The bearer token is the host's: the descriptor's login/login_answer (ABI 1.3) build the
 * /auth/login request and read its answer, and the host adds "Authorization: Bearer" to every
 * request and logs in again after a 401. */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ewtp/crypto.h>
#include <ewtp/json.h>

#include "et.h"

#define REGISTER_PATH "/v1/register"
#define VERIFY_PATH "/v1/verify"
#define CANCEL_PATH "/v1/cancel"
#define LOGIN_PATH "/auth/login"
#define DEFAULT_TOKEN_LIFE_S 3600 /* clients assume this when expiresIn is absent (TX, U2) */
#define RATE_LIMIT_RETRY_MS 2000  /* clients back off 2^n s, at most ~10 s (TX) */

/* ---- requests ---- */

static const char *pem_of_der(struct ewtp_arena *a, const unsigned char *der, size_t len)
{
    const char *b64 = ewtp_base64_encode_ex(a, der, len, 0, 64);
    return b64 ? ewtp_arena_printf(
                     a, "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n", b64)
               : NULL;
}

/* {"request": <payload bytes as they are>, "signature": base64(RSA-SHA512(payload)),
 *  "certificate": base64(PEM)} (FACTS.md A.3, U2 signAndWrap): the signature covers exactly
 * the bytes sent, which are never serialised again. */
static int envelope(const struct et_state *st, const struct ewtp_call *c, const char *payload,
                    size_t len, struct ewtp_errors *errs, const char **out, size_t *out_len)
{
    const struct ewtp_host *h = c->host;
    const unsigned char *sig = NULL, *der = NULL;
    size_t sig_len = 0, der_len = 0;
    int rc = -EWTP_EUNSUPP;
    if (EWTP_HOST_HAS(h, sign) && EWTP_HOST_HAS(h, cert) && h->abi_minor >= 3) {
        rc = h->sign(h->ctx, st->sign_key, EWTP_SIGN_RSA_SHA512, payload, len, c->arena, &sig,
                     &sig_len);
        if (rc == 0)
            rc = h->cert(h->ctx, st->sign_key, c->arena, &der, &der_len);
    }
    if (rc == -EWTP_ENOTFOUND || rc == -EWTP_EUNSUPP) {
        if (errs)
            ewtp_errors_add(errs, "", "config",
                            "cannot sign the EIMS request: the host has no RSA key with a "
                            "certificate named \"%s\" that signs RSA-SHA512 (setting sign_key)",
                            st->sign_key);
        return -EWTP_EINVAL;
    }
    if (rc != 0)
        return rc;
    const char *pem = pem_of_der(c->arena, der, der_len);
    struct ewtp_jsonw *w = ewtp_jsonw_new(c->arena, false);
    if (w == NULL || pem == NULL)
        return -EWTP_ENOMEM;
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_key(w, "request");
    ewtp_jsonw_raw(w, payload);
    ewtp_jsonw_kv_string(w, "signature", ewtp_base64_encode(c->arena, sig, sig_len));
    ewtp_jsonw_kv_string(w, "certificate", ewtp_base64_encode(c->arena, pem, strlen(pem)));
    ewtp_jsonw_object_end(w);
    return ewtp_jsonw_finish(w, out, out_len);
}

static const struct ewtp_header *const *json_headers(struct ewtp_arena *a, size_t *n)
{
    const struct ewtp_header **h = ewtp_arena_alloc(a, 2 * sizeof(*h));
    if (h == NULL)
        return NULL;
    h[0] = ewtp_header_new(a, "Content-Type", "application/json", false);
    h[1] = ewtp_header_new(a, "Accept", "application/json", false);
    *n = 2;
    return h;
}

/* The payload as a document, signed into its envelope when the instance signs, and the
 * request that sends it. */
static int add_call(const struct et_state *st, const struct ewtp_call *c, struct ewtp_out *out,
                    struct ewtp_errors *errs, const char *name, const char *payload, size_t len,
                    const char *path, bool final)
{
    struct ewtp_document d = EWTP_DOCUMENT_INIT(.name = name, .content_type = "application/json",
                                                .data = payload, .len = len);
    int rc = ewtp_out_add_document(out, &d);
    if (rc != 0)
        return rc;
    const char *body = payload, *body_doc = name;
    size_t body_len = len;
    if (st->sign_requests && !c->unsigned_) {
        if ((rc = envelope(st, c, payload, len, errs, &body, &body_len)) != 0)
            return rc;
        body_doc = ewtp_arena_printf(c->arena, "%.*s-signed.json", (int)(strlen(name) - 5), name);
        struct ewtp_document e =
            EWTP_DOCUMENT_INIT(.name = body_doc, .content_type = "application/json", .data = body,
                               .len = body_len, .signed_ = true);
        if ((rc = ewtp_out_add_document(out, &e)) != 0)
            return rc;
    }
    size_t nh = 0;
    const struct ewtp_header *const *h = json_headers(c->arena, &nh);
    if (h == NULL)
        return -EWTP_ENOMEM;
    struct ewtp_request r =
        EWTP_REQUEST_INIT(.method = "POST", .path = path, .headers = h, .n_headers = nh,
                          .body = body, .body_len = body_len, .body_doc = body_doc, .final = final);
    return ewtp_out_add_request(out, &r);
}

/* "N:remark" picks ReasonCode N (1-4); otherwise the setting's code and the whole text. */
static void cancel_reason(const struct et_state *st, const char *reason, const char **code,
                          const char **remark, struct ewtp_arena *a)
{
    *code = st->cancel_reason_code;
    *remark = reason ? reason : "";
    if (reason && reason[0] >= '1' && reason[0] <= '4' && reason[1] == ':') {
        *code = ewtp_arena_strndup(a, reason, 1);
        *remark = reason + 2;
        while (**remark == ' ')
            (*remark)++;
    }
}

int et_translate(const void *state, const struct ewtp_call *c, struct ewtp_out *out,
                 struct ewtp_errors *errs)
{
    const struct et_state *st = state;
    const struct ewtp_message *m = c->msg;
    if (m->invoice == NULL) {
        ewtp_errors_add(errs, "/kind", "unsupported",
                        "the Ethiopia plugin sends invoices only (EIMS); customs declarations "
                        "have no public interface");
        return -EWTP_EINVAL;
    }
    const char *payload = NULL;
    size_t len = 0;
    int rc;
    if (c->op == EWTP_OP_CANCEL) {
        if (c->authority_ref == NULL) {
            ewtp_errors_add(errs, "", "rule",
                            "only a registered invoice (with an IRN) can be "
                            "cancelled");
            return -EWTP_EINVAL;
        }
        const char *code = NULL, *remark = NULL;
        cancel_reason(st, c->cancel_reason, &code, &remark, c->arena);
        struct ewtp_jsonw *w = ewtp_jsonw_new(c->arena, false);
        if (w == NULL)
            return -EWTP_ENOMEM;
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_string(w, "Irn", c->authority_ref);
        ewtp_jsonw_kv_string(w, "ReasonCode", code);
        ewtp_jsonw_kv_string(w, "Remark", remark);
        ewtp_jsonw_object_end(w);
        if ((rc = ewtp_jsonw_finish(w, &payload, &len)) != 0)
            return rc;
        return add_call(st, c, out, errs, ewtp_arena_printf(c->arena, "ET-%s-cancel.json", m->id),
                        payload, len, CANCEL_PATH, true);
    }
    if ((rc = et_register_json(st, c, errs, &payload, &len)) != 0)
        return rc;
    return add_call(st, c, out, errs, ewtp_arena_printf(c->arena, "ET-%s.json", m->id), payload,
                    len, REGISTER_PATH, !st->verify_after_register);
}

int et_poll(const void *state, const struct ewtp_call *c, struct ewtp_out *out)
{
    const struct et_state *st = state;
    if (c->authority_ref == NULL)
        return -EWTP_EINVAL;
    struct ewtp_jsonw *w = ewtp_jsonw_new(c->arena, false);
    if (w == NULL)
        return -EWTP_ENOMEM;
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "irn", c->authority_ref);
    ewtp_jsonw_object_end(w);
    const char *payload = NULL;
    size_t len = 0;
    int rc = ewtp_jsonw_finish(w, &payload, &len);
    if (rc != 0)
        return rc;
    const char *name =
        ewtp_arena_printf(c->arena, "ET-%s-verify.json", c->msg && c->msg->id ? c->msg->id : "irn");
    return add_call(st, c, out, NULL, name, payload, len, VERIFY_PATH, true);
}

/* ---- answers ---- */

bool et_expected_number(const char *text, int64_t *n)
{
    const char *p = text ? strstr(text, "expected") : NULL;
    if (p == NULL)
        return false;
    p += strlen("expected");
    while (*p == ' ' || *p == ':')
        p++;
    if (*p < '0' || *p > '9')
        return false;
    int64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*p - '0');
    }
    *n = v;
    return true;
}

/* The error texts of an answer: body[].errorMessage[] (or body.errorMessage, or message),
 * joined with "; ", and the first rule code (errorCode, or a leading number "7020: ..."). */
static const char *error_texts(struct ewtp_arena *a, const struct ewtp_json *root,
                               const char **rule_code, int64_t *exp_doc, int64_t *exp_counter,
                               bool *has_doc, bool *has_counter)
{
    const struct ewtp_json *body = ewtp_json_get(root, "body");
    size_t n = ewtp_json_type(body) == EWTP_JSON_ARRAY ? ewtp_json_size(body) : 1;
    char *acc = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct ewtp_json *e =
            ewtp_json_type(body) == EWTP_JSON_ARRAY ? ewtp_json_index(body, i) : body;
        if (*rule_code == NULL)
            *rule_code = ewtp_json_get_string(e, "errorCode");
        const struct ewtp_json *msgs = ewtp_json_get(e, "errorMessage");
        size_t k = ewtp_json_type(msgs) == EWTP_JSON_ARRAY ? ewtp_json_size(msgs) : 1;
        for (size_t j = 0; j < k; j++) {
            const char *t = ewtp_json_type(msgs) == EWTP_JSON_ARRAY
                                ? ewtp_json_string(ewtp_json_index(msgs, j))
                                : ewtp_json_string(msgs);
            if (t == NULL)
                continue;
            int64_t v = 0;
            if (strstr(t, "ocument number") && et_expected_number(t, &v))
                *exp_doc = v, *has_doc = true;
            else if (strstr(t, "nvoice counter") && et_expected_number(t, &v))
                *exp_counter = v, *has_counter = true;
            if (*rule_code == NULL && t[0] >= '1' && t[0] <= '9') {
                size_t d = strspn(t, "0123456789");
                if (d >= 3 && d <= 6 && (t[d] == ':' || t[d] == ' '))
                    *rule_code = ewtp_arena_strndup(a, t, d);
            }
            acc = acc ? ewtp_arena_printf(a, "%s; %s", acc, t) : ewtp_arena_strdup(a, t);
        }
    }
    if (acc == NULL)
        acc = (char *)ewtp_json_get_string(root, "message");
    return acc;
}

/* The plain cause of an EIMS code (data/errors.tsv) and, when known, the member at fault. */
static const char *plain_cause(const char *code, const char **pointer)
{
    const char *const *row = et_code_find(ET_T_ERRORS, code);
    if (row && pointer && row[2] && row[2][0])
        *pointer = row[2];
    return row ? row[1] : NULL;
}

static void retry(struct ewtp_outcome *o, const char *code, const char *message, int64_t after)
{
    o->verdict = EWTP_V_RETRY;
    o->code = code;
    o->message = message;
    ewtp_outcome_set_cause(o, plain_cause(code, NULL), NULL);
    if (after > o->retry_after_ms)
        o->retry_after_ms = after;
}

/* Out of sequence (406/417 with "expected : N", FACTS.md A.6). */
static void sequence(const struct et_state *st, const struct ewtp_call *c, const char *code,
                     const char *text, int64_t exp_doc, bool has_doc, int64_t exp_counter,
                     bool has_counter, struct ewtp_outcome *o)
{
    int64_t doc_no = 0, counter = 0;
    const char *prev = NULL;
    et_numbers(st, c, &doc_no, &counter, &prev);
    int64_t want = has_doc ? exp_doc : has_counter ? exp_counter - st->counter_offset : 0;
    o->code = code;
    /* ABI 1.2: a rejection for the key's numbering blocks the key (DECISIONS "Chains"): the
     * host sends nothing more of it until an admin sets the chain and replays. */
    if (EWTP_HAS(o, struct ewtp_outcome, key_blocked))
        o->key_blocked = !(has_doc || has_counter) || want >= doc_no;
    const char *key = et_ordering_key(st, c);
    if (!has_doc && !has_counter) {
        o->verdict = EWTP_V_REJECTED;
        o->message = ewtp_arena_printf(
            c->arena,
            "EIMS refused document number %lld (invoice counter %lld) as out of sequence "
            "without saying which number it expects: compare the chain with the last IRN "
            "registered for system %s (ewtpctl chain set) and replay (EIMS: %s)",
            (long long)doc_no, (long long)counter, st->system_number, text ? text : "");
        return;
    }
    if (want < doc_no) {
        /* EIMS is behind us: numbers want .. doc_no - 1 were taken by this gateway and have
         * not reached EIMS. The gap is ours: retried (the key stays blocked meanwhile) so
         * that it can be repaired without losing the message. */
        retry(o, code,
              ewtp_arena_printf(c->arena,
                                "EIMS expects document number %lld but this gateway is at %lld: "
                                "numbers %lld to %lld were taken here and never registered (the "
                                "gap is ours); retried every %lld s until the chain of %s is "
                                "repaired (ewtpctl chain set KEY %lld PREVIOUS-IRN)",
                                (long long)want, (long long)doc_no, (long long)want,
                                (long long)(doc_no - 1), (long long)(st->sequence_retry_ms / 1000),
                                key, (long long)(want - st->first_document_number + 1)),
              st->sequence_retry_ms);
        return;
    }
    o->verdict = EWTP_V_REJECTED;
    o->message = ewtp_arena_printf(
        c->arena,
        "out of sequence: this gateway sent document number %lld, EIMS expects %lld (invoice "
        "counter: sent %lld, expected %lld): EIMS already holds documents of system %s up to "
        "%lld, registered outside this gateway or before its chain started; nothing more of "
        "%s is sent until the chain is set (ewtpctl chain set %s %lld LAST-IRN) and this "
        "message replayed",
        (long long)doc_no, (long long)want, (long long)counter,
        (long long)(has_counter ? exp_counter : want + st->counter_offset), st->system_number,
        (long long)(want - 1), key, key, (long long)(want - st->first_document_number + 1));
}

int et_interpret(const void *state, const struct ewtp_call *c, const struct ewtp_response *resp,
                 struct ewtp_outcome *o)
{
    const struct et_state *st = state;
    ewtp_outcome_clear(o);
    struct ewtp_arena *a = c->arena;
    if (resp->status == 0) {
        retry(o, "transport", resp->transport_error ? resp->transport_error : "no answer", 0);
        return 0;
    }
    o->retry_after_ms = ewtp_response_retry_after_ms(resp, c->now_ms);
    const struct ewtp_json *root = ewtp_json_parse(a, resp->body, resp->body_len, NULL);
    if (ewtp_json_type(root) != EWTP_JSON_OBJECT)
        root = NULL;
    int64_t sc = resp->status;
    bool has_sc = root && ewtp_json_int(ewtp_json_get(root, "statusCode"), &sc);
    if (!has_sc)
        sc = resp->status;
    const char *msg = root ? ewtp_json_get_string(root, "message") : NULL;
    bool register_call = c->op == EWTP_OP_SUBMIT && c->authority_ref == NULL;
    if (resp->status == 401 || sc == 401) {
        retry(o, "401", plain_cause("401", NULL), 0);
        return 0;
    }
    if (resp->status == 429 || sc == 429 || (msg && strstr(msg, "Too many requests"))) {
        retry(o, "429", plain_cause("429", NULL), RATE_LIMIT_RETRY_MS);
        return 0;
    }
    if (resp->status >= 500) {
        retry(o, ewtp_arena_printf(a, "HTTP %d", resp->status),
              register_call ? "EIMS is unavailable; the registration is sent again with the same "
                              "number (an identical resend returns the original IRN)"
                            : "EIMS is unavailable",
              0);
        return 0;
    }
    if (root == NULL) {
        const char *code = ewtp_arena_printf(a, "HTTP %d", resp->status);
        if (resp->status >= 200 && resp->status < 300)
            retry(o, code,
                  "EIMS answered with something that is not its JSON envelope; sent again (an "
                  "identical resend returns the original IRN)",
                  0);
        else {
            o->verdict = EWTP_V_REJECTED;
            o->code = code;
            o->message = "EIMS refused the request without a JSON answer";
        }
        return 0;
    }
    const struct ewtp_json *body = ewtp_json_get(root, "body");
    if (resp->status >= 200 && resp->status < 300 && !has_sc) {
        /* Every EIMS answer carries statusCode (A.4): anything else is not EIMS speaking. */
        retry(o, ewtp_arena_printf(a, "HTTP %d", resp->status),
              "EIMS answered without its statusCode envelope; sent again", 0);
        return 0;
    }
    if (resp->status >= 200 && resp->status < 300 && sc >= 200 && sc < 300) {
        if (c->op == EWTP_OP_CANCEL) {
            o->verdict = EWTP_V_CANCELLED;
            o->code = msg ? msg : "SUCCESS";
            o->authority_ref = c->authority_ref;
            const char *when = ewtp_json_get_string(body, "cancellationDate");
            const char *text = ewtp_json_get_string(body, "message");
            o->message = ewtp_arena_printf(a, "cancelled at EIMS%s%s%s%s", when ? " on " : "",
                                           when ? when : "", text ? ": " : "", text ? text : "");
            return 0;
        }
        if (!register_call) { /* /v1/verify */
            const char *status = ewtp_json_get_string(body, "status");
            if (status == NULL)
                status = ewtp_json_get_string(body, "Status");
            o->authority_ref = c->authority_ref;
            o->code = status ? status : "ACTIVE";
            if (status == NULL || strcasecmp(status, "ACTIVE") == 0 ||
                strcasecmp(status, "REGISTERED") == 0) {
                o->verdict = EWTP_V_APPROVED;
                o->message = ewtp_arena_printf(a, "verified at EIMS: IRN %s is %s",
                                               c->authority_ref, status ? status : "registered");
            } else if (strcasecmp(status, "CANCELLED") == 0) {
                o->verdict = EWTP_V_REJECTED;
                o->message = "EIMS says this invoice was cancelled";
            } else {
                o->verdict = EWTP_V_SUBMITTED;
                o->poll = true;
                o->message = ewtp_arena_printf(a, "EIMS status %s", status);
            }
            return 0;
        }
        const char *irn = ewtp_json_get_string(body, "irn");
        if (irn == NULL || irn[0] == '\0') {
            retry(o, "no_irn",
                  "EIMS accepted the registration but gave no IRN; sent again (an identical "
                  "resend returns the original IRN)",
                  0);
            return 0;
        }
        const char *ack = ewtp_json_get_string(body, "ackDate");
        const char *qr = ewtp_json_get_string(body, "signedQR");
        o->authority_ref = irn;
        o->code = msg ? msg : "SUCCESS";
        /* The receipt keeps the QR data the invoice must show (FACTS.md C). */
        o->message =
            ewtp_arena_printf(a, "registered as IRN %s%s%s; signedQR %s", irn,
                              ack ? ", acknowledged " : "", ack ? ack : "", qr ? qr : "(none)");
        if (st->verify_after_register) {
            o->verdict = EWTP_V_SUBMITTED;
            o->poll = true;
        } else {
            o->verdict = EWTP_V_APPROVED;
        }
        return 0;
    }
    const char *rule = NULL;
    int64_t exp_doc = 0, exp_counter = 0;
    bool has_doc = false, has_counter = false;
    const char *text = error_texts(a, root, &rule, &exp_doc, &exp_counter, &has_doc, &has_counter);
    const char *code = rule ? rule : ewtp_arena_printf(a, "%lld", (long long)sc);
    if ((sc == 406 || sc == 417 || resp->status == 406 || resp->status == 417) && register_call &&
        rule == NULL) {
        sequence(st, c, code, text, exp_doc, has_doc, exp_counter, has_counter, o);
        ewtp_outcome_set_cause(o, plain_cause(code, NULL), NULL);
        return 0;
    }
    o->verdict = EWTP_V_REJECTED;
    o->code = code;
    const char *pointer = NULL;
    const char *cause = plain_cause(code, &pointer);
    o->pointer = c->op == EWTP_OP_SUBMIT ? pointer : NULL;
    ewtp_outcome_set_cause(o, cause, NULL);
    o->message = cause ? ewtp_arena_printf(a, "%s (EIMS: %s)", cause, text ? text : code)
                       : ewtp_arena_printf(a, "EIMS refused the %s: %s",
                                           c->op == EWTP_OP_CANCEL ? "cancellation"
                                           : register_call         ? "registration"
                                                                   : "verification",
                                           text ? text : code);
    return 0;
}

/* ---- login (ABI 1.3) ---- */

static const char *secret(const struct ewtp_call *c, const char *file)
{
    const char *data = NULL;
    size_t len = 0;
    if (file == NULL || !EWTP_HOST_HAS(c->host, read_secret) ||
        c->host->read_secret(c->host->ctx, file, c->arena, &data, &len) != 0)
        return NULL;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    return ewtp_arena_strndup(c->arena, data, len);
}

int et_login(const void *state, const struct ewtp_call *c, struct ewtp_out *out)
{
    const struct et_state *st = state;
    const char *client_secret = secret(c, st->client_secret_file);
    const char *api_key = secret(c, st->api_key_file);
    if (st->client_id == NULL || client_secret == NULL || api_key == NULL || st->tin == NULL)
        return -EWTP_EINVAL; /* the host says: check client_id, the secret files and tin */
    struct ewtp_jsonw *w = ewtp_jsonw_new(c->arena, false);
    if (w == NULL)
        return -EWTP_ENOMEM;
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "clientId", st->client_id);
    ewtp_jsonw_kv_string(w, "clientSecret", client_secret);
    ewtp_jsonw_kv_string(w, "apikey", api_key);
    ewtp_jsonw_kv_string(w, "tin", st->tin);
    ewtp_jsonw_object_end(w);
    const char *payload = NULL;
    size_t len = 0;
    int rc = ewtp_jsonw_finish(w, &payload, &len);
    if (rc != 0)
        return rc;
    const char *body = payload;
    size_t body_len = len;
    if (st->sign_requests && (rc = envelope(st, c, payload, len, NULL, &body, &body_len)) != 0)
        return rc;
    size_t nh = 0;
    const struct ewtp_header *const *h = json_headers(c->arena, &nh);
    if (h == NULL)
        return -EWTP_ENOMEM;
    struct ewtp_request r =
        EWTP_REQUEST_INIT(.method = "POST", .path = LOGIN_PATH, .headers = h, .n_headers = nh,
                          .body = body, .body_len = body_len, .final = true);
    return ewtp_out_add_request(out, &r);
}

int et_login_answer(const void *state, const struct ewtp_call *c, const struct ewtp_response *resp,
                    struct ewtp_token *tok)
{
    (void)state;
    const struct ewtp_json *root =
        resp->status ? ewtp_json_parse(c->arena, resp->body, resp->body_len, NULL) : NULL;
    const struct ewtp_json *data = ewtp_json_get(root, "data");
    const char *token = ewtp_json_get_string(data, "accessToken");
    int64_t sc = resp->status, life = 0;
    ewtp_json_int(ewtp_json_get(root, "statusCode"), &sc);
    if (resp->status >= 200 && resp->status < 300 && sc >= 200 && sc < 300 && token && token[0]) {
        if (!ewtp_json_int(ewtp_json_get(data, "expiresIn"), &life) || life <= 0 ||
            life > 30 * 86400)
            life = DEFAULT_TOKEN_LIFE_S;
        tok->value = token;
        tok->lifetime_ms = life * 1000;
        return 0;
    }
    const char *msg = ewtp_json_get_string(root, "message");
    tok->error =
        resp->status == 0
            ? ewtp_arena_printf(c->arena, "EIMS login: %s",
                                resp->transport_error ? resp->transport_error : "no answer")
        : sc == 401 || sc == 403 || resp->status == 401 || resp->status == 403 ||
                resp->status == 400
            ? ewtp_arena_printf(c->arena,
                                "EIMS login refused (HTTP %d%s%s): check client_id, "
                                "client_secret_file, api_key_file and tin",
                                resp->status, msg ? ", " : "", msg ? msg : "")
            : ewtp_arena_printf(c->arena, "EIMS login answered HTTP %d without an accessToken%s%s",
                                resp->status, msg ? ": " : "", msg ? msg : "");
    return 0;
}
