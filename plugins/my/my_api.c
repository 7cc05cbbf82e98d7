/* The MyInvois API flow (FACTS.md §1): one submission request per batch of documents, the
 * 202 answer mapped per document, polling of the document status, cancellation. The token
 * (identity service, OAuth2 client credentials, onbehalfof) is the host's: its oauth2 auth
 * adds "Authorization: Bearer" to every request. */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include <ewtp/crypto.h>
#include <ewtp/json.h>

#include "my.h"

#define SUBMIT_PATH "/api/v1.0/documentsubmissions/"

/* Headers of every MyInvois call [HDR]; onbehalfof when acting as intermediary [LOGIN]. */
static int headers(const struct my_state *st, const struct ewtp_call *c, bool body,
                   const struct ewtp_header ***out, size_t *n)
{
    const struct ewtp_header **h = ewtp_arena_alloc(c->arena, 4 * sizeof(*h));
    if (h == NULL)
        return -EWTP_ENOMEM;
    size_t k = 0;
    h[k++] = ewtp_header_new(c->arena, "Accept", "application/json", false);
    h[k++] = ewtp_header_new(c->arena, "Accept-Language", "en", false);
    if (body)
        h[k++] = ewtp_header_new(c->arena, "Content-Type", "application/json", false);
    if (st->intermediary) {
        const char *obo = st->onbehalfof;
        if (obo == NULL) {
            const struct ewtp_message *m = c->msg;
            const struct ewtp_party *issuer =
                m->parties[my_self_billed(m) ? EWTP_ROLE_BUYER : EWTP_ROLE_SELLER];
            const char *tin = issuer ? ewtp_party_id(issuer, "TIN") : NULL;
            const char *brn = issuer ? ewtp_party_id(issuer, "BRN") : NULL;
            obo = tin && brn ? ewtp_arena_printf(c->arena, "%s:%s", tin, brn) : tin;
        }
        if (obo)
            h[k++] = ewtp_header_new(c->arena, "onbehalfof", obo, false);
    }
    *out = h;
    *n = k;
    return 0;
}

static const char *doc_name(const struct ewtp_call *c, enum my_format fmt, const char *suffix)
{
    return ewtp_arena_printf(c->arena, "MY-%s%s.%s", c->msg->invoice->number, suffix,
                             fmt == MY_FMT_JSON ? "json" : "xml");
}

/* One document, signed unless the call is unsigned or the version is 1.0. */
static int build_one(const struct my_state *st, const struct ewtp_call *c, struct ewtp_out *out,
                     struct ewtp_errors *errs, const char **doc, size_t *len)
{
    enum my_format fmt = st->format;
    const struct ewtp_invoice *inv = c->msg->invoice;
    if (inv && inv->original_invoice && my_is_note(inv) && my_original_uuid(c) == NULL) {
        /* Never sent with an unknown reference (MyInvois would answer CF501). */
        ewtp_errors_add(errs, "/invoice/original_invoice", "rule",
                        "the LHDN UUID of invoice %s is not known: a note is sent only once its "
                        "original is validated (or with ext.my.original_uuid)",
                        inv->original_invoice);
        return -EWTP_EINVAL;
    }
    int rc = my_ubl_build(st, c, fmt, NULL, false, doc, len);
    if (rc != 0)
        return rc;
    if (st->xsd && fmt == MY_FMT_XML) {
        /* Before signing: libxml2 cannot validate xs:integer serials over 24 digits. */
        struct ewtp_errors *x = ewtp_errors_new();
        if (x == NULL)
            return -EWTP_ENOMEM;
        rc = ewtp_xsd_validate(st->xsd, *doc, *len, x);
        for (size_t i = 0; rc != 0 && i < ewtp_errors_count(x); i++)
            ewtp_errors_add(errs, "", "schema", "UBL 2.1 schema: %s",
                            ewtp_errors_at(x, i)->message);
        ewtp_errors_free(x);
        if (rc != 0)
            return -EWTP_EINVAL;
    }
    bool is_signed = false;
    if (!c->unsigned_ && strcmp(st->version, "1.1") == 0) {
        rc = my_sign_document(st, c, fmt, doc, len);
        if (rc == -EWTP_ENOTFOUND || rc == -EWTP_EUNSUPP) {
            /* Say what is missing: a bare ENOTFOUND reads as "no plugin" to a host. */
            ewtp_errors_add(errs, "", "config",
                            "cannot sign: the host has no RSA key and certificate named \"%s\" "
                            "(setting sign_key)",
                            st->sign_key);
            return -EWTP_EINVAL;
        }
        if (rc != 0)
            return rc;
        is_signed = true;
    }
    if (*len > MY_MAX_DOC_BYTES) {
        ewtp_errors_add(errs, "/invoice/lines", "size",
                        "document %s is %zu bytes; MyInvois accepts at most %u per document "
                        "(split the invoice)",
                        c->msg->id, *len, MY_MAX_DOC_BYTES);
        return -EWTP_EINVAL;
    }
    struct ewtp_document d = {.size = sizeof(struct ewtp_document),
                              .name = doc_name(c, fmt, ""),
                              .content_type =
                                  fmt == MY_FMT_JSON ? "application/json" : "application/xml",
                              .data = *doc,
                              .len = *len,
                              .signed_ = is_signed};
    return ewtp_out_add_document(out, &d);
}

static const char *document_hash(const struct my_state *st, struct ewtp_arena *a, const char *doc,
                                 size_t len)
{
    unsigned char md[EWTP_DIGEST_MAX];
    size_t md_len = 0;
    if (ewtp_digest(EWTP_DIGEST_SHA256, doc, len, md, &md_len) != 0)
        return NULL;
    return st->hash_enc == MY_HASH_BASE64 ? ewtp_base64_encode(a, md, md_len)
                                          : ewtp_hex_encode(a, md, md_len);
}

/* A JSON body sent to the API and kept as the document ewtpctl translate --out saves (the
 * submission and the cancellation both go out this way). */
static int add_json_request(const struct my_state *st, const struct ewtp_call *c,
                            struct ewtp_out *out, const char *name, const char *body, size_t len,
                            const char *method, const char *path, bool final)
{
    struct ewtp_document d = {.size = sizeof(struct ewtp_document),
                              .name = name,
                              .content_type = "application/json",
                              .data = body,
                              .len = len};
    int rc = ewtp_out_add_document(out, &d);
    if (rc != 0)
        return rc;
    const struct ewtp_header **h = NULL;
    size_t nh = 0;
    if ((rc = headers(st, c, true, &h, &nh)) != 0)
        return rc;
    struct ewtp_request r = {.size = sizeof(struct ewtp_request),
                             .method = method,
                             .path = path,
                             .headers = h,
                             .n_headers = nh,
                             .body = body,
                             .body_len = len,
                             .body_doc = name,
                             .final = final};
    return ewtp_out_add_request(out, &r);
}

static int cancel_request(const struct my_state *st, const struct ewtp_call *c,
                          struct ewtp_out *out)
{
    if (c->authority_ref == NULL)
        return -EWTP_EINVAL;
    struct ewtp_jsonw *w = ewtp_jsonw_new(c->arena, false);
    if (w == NULL)
        return -EWTP_ENOMEM;
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "status", "cancelled");
    ewtp_jsonw_kv_string(w, "reason", c->cancel_reason ? c->cancel_reason : "");
    ewtp_jsonw_object_end(w);
    const char *body = NULL;
    size_t len = 0;
    int rc = ewtp_jsonw_finish(w, &body, &len);
    if (rc != 0)
        return rc;
    const char *name = ewtp_arena_printf(c->arena, "MY-%s-cancel.json", c->msg->invoice->number);
    const char *path =
        ewtp_arena_printf(c->arena, "/api/v1.0/documents/state/%s/state", c->authority_ref);
    return add_json_request(st, c, out, name, body, len, "PUT", path, true);
}

int my_translate_batch(const void *state, const struct ewtp_call *const *calls, size_t n,
                       struct ewtp_out *out, struct ewtp_errors *errs)
{
    const struct my_state *st = state;
    if (n == 0 || n > MY_MAX_DOCS)
        return -EWTP_EINVAL;
    const struct ewtp_call *c0 = calls[0];
    if (c0->op == EWTP_OP_CANCEL) /* cancellations are one document each */
        return n == 1 ? cancel_request(st, c0, out) : -EWTP_EINVAL;
    struct ewtp_jsonw *w = ewtp_jsonw_new(c0->arena, false);
    if (w == NULL)
        return -EWTP_ENOMEM;
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_key(w, "documents");
    ewtp_jsonw_array_begin(w);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct ewtp_call *c = calls[i];
        const char *doc = NULL;
        size_t len = 0;
        if (c->msg->invoice == NULL)
            return -EWTP_EINVAL;
        rc = build_one(st, c, out, errs, &doc, &len);
        if (rc != 0)
            break;
        const char *hash = document_hash(st, c0->arena, doc, len);
        const char *b64 = ewtp_base64_encode(c0->arena, doc, len);
        if (hash == NULL || b64 == NULL)
            return -EWTP_ENOMEM;
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_string(w, "format", st->format == MY_FMT_JSON ? "JSON" : "XML");
        ewtp_jsonw_kv_string(w, "documentHash", hash);
        ewtp_jsonw_kv_string(w, "codeNumber", c->msg->invoice->number);
        ewtp_jsonw_kv_string(w, "document", b64);
        ewtp_jsonw_object_end(w);
    }
    if (rc != 0)
        return rc;
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_object_end(w);
    const char *body = NULL;
    size_t len = 0;
    if ((rc = ewtp_jsonw_finish(w, &body, &len)) != 0)
        return rc;
    if (len > MY_MAX_SUBMISSION_BYTES) {
        ewtp_errors_add(errs, "", "size",
                        "the submission is %zu bytes; MyInvois accepts at most %u", len,
                        MY_MAX_SUBMISSION_BYTES);
        return -EWTP_EINVAL;
    }
    const char *name =
        n == 1 ? ewtp_arena_printf(c0->arena, "MY-%s-submission.json", c0->msg->invoice->number)
               : ewtp_arena_printf(c0->arena, "MY-submission-%s.json", c0->msg->id);
    return add_json_request(st, c0, out, name, body, len, "POST", SUBMIT_PATH, false);
}

int my_translate(const void *state, const struct ewtp_call *c, struct ewtp_out *out,
                 struct ewtp_errors *errs)
{
    const struct ewtp_call *const calls[1] = {c};
    return my_translate_batch(state, calls, 1, out, errs);
}

int my_poll(const void *state, const struct ewtp_call *c, struct ewtp_out *out)
{
    const struct my_state *st = state;
    if (c->authority_ref == NULL)
        return -EWTP_EINVAL;
    const struct ewtp_header **h = NULL;
    size_t nh = 0;
    int rc = headers(st, c, false, &h, &nh);
    if (rc != 0)
        return rc;
    /* The document's details carry its status and, when Invalid, the validation errors in
     * one call (the submission status would need a second call for the errors). */
    struct ewtp_request r = {
        .size = sizeof(struct ewtp_request),
        .method = "GET",
        .path = ewtp_arena_printf(c->arena, "/api/v1.0/documents/%s/details", c->authority_ref),
        .headers = h,
        .n_headers = nh,
        .final = true,
    };
    return ewtp_out_add_request(out, &r);
}

/* ---- answers ---- */

/* The rejection explainer (ABI 1.6): the plain cause of the most specific code MyInvois gave
 * (data/errors.tsv) and the common-message member its propertyPath names
 * (data/property-path.tsv: the longest element path found in it), else the code's own. */
static void explain(struct ewtp_outcome *o, const char *code, const char *icode, const char *path)
{
    const char *const *row = ewtp_code_table_find(&my_codes_errors, icode);
    if (row == NULL)
        row = ewtp_code_table_find(&my_codes_errors, code);
    if (row == NULL)
        return;
    const char *pointer = NULL;
    size_t best = 0;
    for (size_t i = 0; path && ewtp_code_table_row(&my_codes_property_path, i); i++) {
        const char *const *pr = ewtp_code_table_row(&my_codes_property_path, i);
        size_t len = strlen(pr[0]);
        if (len > best && strstr(path, pr[0])) {
            best = len;
            pointer = pr[1];
        }
    }
    ewtp_outcome_set_cause(o, row[1], pointer ? pointer : row[2]);
}

/* MyInvois error objects come as {errorCode, error, propertyPath, innerError[]} [ERR] or
 * {code, message, propertyPath, details[]} (submission answers); take the most specific. */
static void take_error(struct ewtp_arena *a, const struct ewtp_json *e, const char *step,
                       struct ewtp_outcome *o)
{
    if (e == NULL)
        return;
    const struct ewtp_json *inner = ewtp_json_index(ewtp_json_get(e, "innerError"), 0);
    if (inner == NULL)
        inner = ewtp_json_index(ewtp_json_get(e, "details"), 0);
    const char *code = ewtp_json_get_string(e, "errorCode");
    if (code == NULL)
        code = ewtp_json_get_string(e, "code");
    const char *text = ewtp_json_get_string(e, "error");
    if (text == NULL)
        text = ewtp_json_get_string(e, "message");
    const char *icode = ewtp_json_get_string(inner, "errorCode");
    if (icode == NULL)
        icode = ewtp_json_get_string(inner, "code");
    const char *itext = ewtp_json_get_string(inner, "error");
    if (itext == NULL)
        itext = ewtp_json_get_string(inner, "message");
    const char *path = ewtp_json_get_string(inner ? inner : e, "propertyPath");
    if (path == NULL)
        path = ewtp_json_get_string(e, "propertyPath");
    /* Codes are reused across validators (DS302): keep the step name with the code. */
    o->code = icode && code ? ewtp_arena_printf(a, "%s/%s", code, icode)
              : icode       ? icode
              : code        ? code
                            : o->code;
    o->message = ewtp_arena_printf(a, "%s%s%s%s%s%s%s", step ? step : "", step ? ": " : "",
                                   text ? text : "", itext && text ? " — " : "", itext ? itext : "",
                                   path ? " at " : "", path ? path : "");
    explain(o, code, icode, path);
}

/* Transport failures, throttling and server errors: the same for every message. */
static bool transient(struct ewtp_arena *a, const struct ewtp_response *resp, int64_t now_ms,
                      struct ewtp_outcome *o)
{
    o->retry_after_ms = ewtp_response_retry_after_ms(resp, now_ms);
    if (resp->status == 0) {
        o->verdict = EWTP_V_RETRY;
        o->code = "transport";
        o->message = resp->transport_error ? resp->transport_error : "no answer";
        return true;
    }
    if (resp->status == 429 || resp->status >= 500 || resp->status == 401) {
        o->verdict = EWTP_V_RETRY;
        o->code = ewtp_arena_printf(a, "HTTP %d", resp->status);
        o->message = resp->status == 429   ? "MyInvois rate limit: retry after the given time"
                     : resp->status == 401 ? "MyInvois refused the token (expired or wrong "
                                             "client credentials)"
                                           : "MyInvois is unavailable";
        return true;
    }
    return false;
}

int my_interpret_batch(const void *state, const struct ewtp_call *const *calls, size_t n,
                       const struct ewtp_response *resp, struct ewtp_outcome *const *outcomes)
{
    (void)state;
    if (n == 0)
        return -EWTP_EINVAL;
    struct ewtp_arena *a = calls[0]->arena;
    for (size_t i = 0; i < n; i++)
        ewtp_outcome_clear(outcomes[i]);
    struct ewtp_outcome common = EWTP_OUTCOME_INIT();
    const struct ewtp_json *body =
        resp->body_len ? ewtp_json_parse(a, resp->body, resp->body_len, NULL) : NULL;
    if (!transient(a, resp, calls[0]->now_ms, &common)) {
        if (resp->status == 202 && ewtp_json_type(body) == EWTP_JSON_OBJECT) {
            const char *sub = ewtp_json_get_string(body, "submissionUid");
            const struct ewtp_json *acc = ewtp_json_get(body, "acceptedDocuments");
            const struct ewtp_json *rej = ewtp_json_get(body, "rejectedDocuments");
            for (size_t i = 0; i < n; i++) {
                const char *num = calls[i]->msg->invoice ? calls[i]->msg->invoice->number : "";
                struct ewtp_outcome *o = outcomes[i];
                o->verdict = EWTP_V_RETRY;
                o->code = "not_in_answer";
                o->message = "MyInvois' answer lists this document neither as accepted nor as "
                             "rejected";
                for (size_t k = 0; k < ewtp_json_size(acc); k++) {
                    const struct ewtp_json *d = ewtp_json_index(acc, k);
                    const char *cn = ewtp_json_get_string(d, "invoiceCodeNumber");
                    const char *uuid = ewtp_json_get_string(d, "uuid");
                    if (cn && uuid && strcmp(cn, num) == 0) {
                        o->verdict = EWTP_V_SUBMITTED;
                        o->poll = true;
                        o->authority_ref = uuid;
                        o->code = "accepted";
                        o->message = ewtp_arena_printf(
                            a, "accepted for validation in submission %s", sub ? sub : "?");
                    }
                }
                for (size_t k = 0; k < ewtp_json_size(rej); k++) {
                    const struct ewtp_json *d = ewtp_json_index(rej, k);
                    const char *cn = ewtp_json_get_string(d, "invoiceCodeNumber");
                    if (cn && strcmp(cn, num) == 0) {
                        o->verdict = EWTP_V_REJECTED;
                        o->code = "rejected";
                        o->message = "MyInvois rejected the document";
                        take_error(a, ewtp_json_get(d, "error"), NULL, o);
                    }
                }
            }
            return 0;
        }
        if (resp->status == 422) {
            /* DuplicateSubmission: the same payload within 10 minutes; wait and resend. */
            common.verdict = EWTP_V_RETRY;
            common.code = "DuplicateSubmission";
            common.message = "MyInvois saw the same submission in the last 10 minutes";
            take_error(a, ewtp_json_get(body, "error"), NULL, &common);
        } else if (resp->status >= 400 && resp->status < 500) {
            common.verdict = EWTP_V_REJECTED;
            common.code = ewtp_arena_printf(a, "HTTP %d", resp->status);
            common.message = resp->status == 403 ? "MyInvois refused the submitter "
                                                   "(IncorrectSubmitter: onbehalfof permission?)"
                                                 : "MyInvois refused the submission";
            take_error(a, ewtp_json_get(body, "error"), NULL, &common);
        } else {
            common.verdict = EWTP_V_RETRY;
            common.code = ewtp_arena_printf(a, "HTTP %d", resp->status);
            common.message = "MyInvois answered the submission with an unexpected status or body";
        }
    }
    for (size_t i = 0; i < n; i++)
        ewtp_outcome_copy(outcomes[i], &common);
    return 0;
}

static int interpret_status(const struct my_state *st, const struct ewtp_call *c,
                            const struct ewtp_response *resp, struct ewtp_outcome *o)
{
    struct ewtp_arena *a = c->arena;
    const struct ewtp_json *body = ewtp_json_parse(a, resp->body, resp->body_len, NULL);
    if (resp->status == 404) {
        o->verdict = EWTP_V_RETRY; /* just submitted: not visible yet */
        o->code = "HTTP 404";
        o->message = "MyInvois does not know the document yet";
        return 0;
    }
    const char *status = ewtp_json_get_string(body, "status");
    if (resp->status != 200 || status == NULL) {
        o->verdict = EWTP_V_RETRY;
        o->code = ewtp_arena_printf(a, "HTTP %d", resp->status);
        o->message = "MyInvois' document status answer is not the JSON its API promises";
        return 0;
    }
    o->authority_ref = ewtp_json_get_string(body, "uuid");
    if (o->authority_ref == NULL)
        o->authority_ref = c->authority_ref;
    o->code = status;
    if (strcmp(status, "Valid") == 0) {
        o->verdict = EWTP_V_APPROVED;
        const char *long_id = ewtp_json_get_string(body, "longId");
        o->message = long_id ? ewtp_arena_printf(a, "Valid; validation link %s/%s/share/%s",
                                                 st->portal_url, o->authority_ref, long_id)
                             : "Valid";
    } else if (strcmp(status, "Invalid") == 0) {
        o->verdict = EWTP_V_REJECTED;
        o->message = "MyInvois found the document invalid";
        const struct ewtp_json *steps = ewtp_json_at(body, "/validationResults/validationSteps");
        for (size_t i = 0; i < ewtp_json_size(steps); i++) {
            const struct ewtp_json *s = ewtp_json_index(steps, i);
            const char *ss = ewtp_json_get_string(s, "status");
            if (ss && strcmp(ss, "Invalid") == 0) {
                take_error(a, ewtp_json_get(s, "error"), ewtp_json_get_string(s, "name"), o);
                break;
            }
        }
    } else if (strcmp(status, "Cancelled") == 0) {
        o->verdict = c->op == EWTP_OP_CANCEL ? EWTP_V_CANCELLED : EWTP_V_INFO;
        o->message = "the document was cancelled";
    } else if (strcmp(status, "Submitted") == 0) {
        o->verdict = EWTP_V_SUBMITTED;
        o->poll = true;
        o->message = "MyInvois is still validating the document";
    } else {
        o->verdict = EWTP_V_RETRY;
        o->message = ewtp_arena_printf(a, "unknown MyInvois document status \"%s\"", status);
    }
    return 0;
}

int my_interpret(const void *state, const struct ewtp_call *c, const struct ewtp_response *resp,
                 struct ewtp_outcome *o)
{
    const struct my_state *st = state;
    ewtp_outcome_clear(o);
    if (transient(c->arena, resp, c->now_ms, o))
        return 0;
    ewtp_outcome_clear(o);
    if (c->op == EWTP_OP_CANCEL) {
        /* The answer is {"uuid","status":"Cancelled"}; any other 2xx body (a proxy's page, a
         * truncated answer) proves nothing: ask again (a repeated cancel is refused with
         * IncorrectState once it is done, which the poll then settles). */
        const char *answered = ewtp_json_get_string(
            ewtp_json_parse(c->arena, resp->body, resp->body_len, NULL), "status");
        if (resp->status >= 200 && resp->status < 300 &&
            (answered == NULL || strcmp(answered, "Cancelled") != 0)) {
            o->verdict = EWTP_V_RETRY;
            o->code = ewtp_arena_printf(c->arena, "HTTP %d", resp->status);
            o->message = "MyInvois' cancel answer is not the {\"uuid\",\"status\":\"Cancelled\"} "
                         "its API promises";
            return 0;
        }
        if (resp->status >= 200 && resp->status < 300) {
            o->verdict = EWTP_V_CANCELLED;
            o->code = "cancelled";
            o->message = "MyInvois cancelled the document";
            o->authority_ref = c->authority_ref;
            return 0;
        }
        /* OperationPeriodOver (72 h), IncorrectState, ActiveReferencingDocuments, Forbidden */
        const struct ewtp_json *body = ewtp_json_parse(c->arena, resp->body, resp->body_len, NULL);
        o->verdict = EWTP_V_REJECTED;
        o->code = ewtp_arena_printf(c->arena, "HTTP %d", resp->status);
        o->message = "MyInvois refused the cancellation";
        take_error(c->arena, ewtp_json_get(body, "error"), NULL, o);
        return 0;
    }
    /* A GET (poll) answers with a document; the submission answers with 202. */
    const struct ewtp_json *probe = ewtp_json_parse(c->arena, resp->body, resp->body_len, NULL);
    bool submission = resp->status == 202 || resp->status == 422 ||
                      ewtp_json_get(probe, "acceptedDocuments") != NULL ||
                      (resp->status >= 400 && resp->status != 404);
    if (submission) {
        const struct ewtp_call *const calls[1] = {c};
        struct ewtp_outcome *const outcomes[1] = {o};
        return my_interpret_batch(state, calls, 1, resp, outcomes);
    }
    return interpret_status(st, c, resp, o);
}
