/* The template plugin's reading of the ZZ authority's answers: interpret and receive.
 * Every answer maps to a verdict; nothing the authority sends can crash the plugin. */
/* strdup, and nothing else beyond C11: plugins build with plain -std=c11 out of tree. */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include <ewtp/json.h>

#include "zz.h"

/* TODO(country): the authority's status words, its error codes and texts, and which of them
 * are final (rejected) or transient (retry); anything unreadable stays a retry.
 * Maps the authority's "status" word; false when unknown. */
static bool map_status(const char *status, enum ewtp_verdict *v)
{
    if (status == NULL)
        return false;
    if (strcmp(status, "received") == 0)
        *v = EWTP_V_SUBMITTED;
    else if (strcmp(status, "accepted") == 0)
        *v = EWTP_V_APPROVED;
    else if (strcmp(status, "rejected") == 0)
        *v = EWTP_V_REJECTED;
    else if (strcmp(status, "cancelled") == 0)
        *v = EWTP_V_CANCELLED;
    else
        return false;
    return true;
}

/* The first entry of "errors": the authority's code, text and the member at fault. The ZZ
 * authority names members by the common message's own pointers ("path"). */
static void take_first_error(const struct ewtp_json *body, struct ewtp_outcome *o)
{
    const struct ewtp_json *e = ewtp_json_index(ewtp_json_get(body, "errors"), 0);
    if (e == NULL)
        return;
    o->code = ewtp_json_get_string(e, "code");
    o->message = ewtp_json_get_string(e, "message");
    const char *path = ewtp_json_get_string(e, "path");
    if (path && path[0] == '/')
        o->pointer = path;
}

static void set_retry(struct ewtp_outcome *o, const char *code, const char *message)
{
    o->verdict = EWTP_V_RETRY;
    o->code = code;
    o->message = message;
}

int zz_interpret(const void *state, const struct ewtp_call *c, const struct ewtp_response *resp,
                 struct ewtp_outcome *o)
{
    (void)state;
    ewtp_outcome_clear(o);
    if (resp->status == 0) {
        set_retry(o, "transport", resp->transport_error ? resp->transport_error : "no answer");
        return 0;
    }
    o->retry_after_ms = ewtp_response_retry_after_ms(resp, c->now_ms);
    if (resp->status == 429 || resp->status >= 500) {
        set_retry(o, ewtp_arena_printf(c->arena, "HTTP %d", resp->status),
                  resp->status == 429 ? "the authority asks us to slow down"
                                      : "the authority is unavailable");
        return 0;
    }
    if (resp->status == 401 || resp->status == 403) {
        /* Our credentials, not the message: retried until an admin fixes them (then dead). */
        set_retry(o, ewtp_arena_printf(c->arena, "HTTP %d", resp->status),
                  "the authority refused our credentials (check token_file)");
        return 0;
    }
    const struct ewtp_json *body = ewtp_json_parse(c->arena, resp->body, resp->body_len, NULL);
    if (ewtp_json_type(body) != EWTP_JSON_OBJECT) {
        if (resp->status >= 400 && resp->status < 500)
            o->verdict = EWTP_V_REJECTED;
        else
            o->verdict = EWTP_V_RETRY;
        o->code = ewtp_arena_printf(c->arena, "HTTP %d", resp->status);
        o->message = "the authority's answer is not the JSON object its API promises";
        return 0;
    }
    o->authority_ref = ewtp_json_get_string(body, "reference");
    if (resp->status == 409 && c->op == EWTP_OP_CANCEL) {
        /* A resent cancel finds the submission cancelled; any other conflict refuses it. */
        const char *s = ewtp_json_get_string(body, "status");
        bool done = s && strcmp(s, "cancelled") == 0;
        o->verdict = done ? EWTP_V_CANCELLED : EWTP_V_REJECTED;
        o->code = done ? "cancelled" : "HTTP 409";
        o->message = done ? "the authority had cancelled it already"
                          : "the authority refused the cancellation";
        if (!done)
            take_first_error(body, o);
        return 0;
    }
    if (resp->status == 409) {
        /* Already received under the same X-Request-Id: the earlier submission stands. */
        o->verdict = EWTP_V_SUBMITTED;
        o->poll = true;
        o->code = "duplicate";
        o->message = "the authority already had this submission";
        return 0;
    }
    if (resp->status >= 400) {
        o->verdict = EWTP_V_REJECTED;
        o->code = ewtp_arena_printf(c->arena, "HTTP %d", resp->status);
        o->message = "the authority refused the request";
        take_first_error(body, o);
        return 0;
    }
    enum ewtp_verdict v;
    if (!map_status(ewtp_json_get_string(body, "status"), &v)) {
        set_retry(o, "unknown_status", "the authority answered with an unknown status");
        return 0;
    }
    if (v == EWTP_V_CANCELLED && c->op != EWTP_OP_CANCEL)
        v = EWTP_V_REJECTED; /* a submission cannot come back cancelled: treat as refused */
    o->verdict = v;
    o->poll = v == EWTP_V_SUBMITTED;
    o->code = ewtp_json_get_string(body, "status");
    if (v == EWTP_V_REJECTED)
        take_first_error(body, o);
    if (v == EWTP_V_SUBMITTED && o->authority_ref == NULL)
        set_retry(o, "no_reference", "the authority received the request but gave no reference");
    return 0;
}

/* Receipts POSTed to /v1/inbound/zz: {"reference","status","code","message"}. */
int zz_receive(const void *state, const struct ewtp_inbound *in, struct ewtp_correlation *to,
               struct ewtp_outcome *o)
{
    (void)state;
    ewtp_outcome_clear(o);
    ewtp_sized_clear(to);
    const struct ewtp_json *body = ewtp_json_parse(in->arena, in->body, in->body_len, NULL);
    const char *ref = ewtp_json_get_string(body, "reference");
    enum ewtp_verdict v;
    if (ref == NULL || !map_status(ewtp_json_get_string(body, "status"), &v))
        return -EWTP_ENOTFOUND; /* not a ZZ receipt */
    to->authority_ref = ref;
    o->verdict = v;
    o->authority_ref = ref;
    o->code = ewtp_json_get_string(body, "code");
    o->message = ewtp_json_get_string(body, "message");
    return 0;
}
