/* The template plugin's descriptor, settings and checks. */
/* strdup, and nothing else beyond C11: plugins build with plain -std=c11 out of tree. */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "zz.h"

/* Overridable so that tests can build a second version of the same plugin (hitless upgrade). */
#ifndef ZZ_PLUGIN_VERSION
#define ZZ_PLUGIN_VERSION "1.0.0"
#endif

/* TODO(country): the settings your authority needs (your ids there, credentials, endpoints
 * are the instance's); keep empty settings working with a clearly marked test identity.
 * Settings (all optional: empty settings give a clearly marked test identity):
 *   sender_id   our id at the authority        default "ZZ-TEST-SENDER"
 *   token_file  file holding the bearer token  default none (the simulator needs none)
 *   sign_key    host key name to sign with     default "zz-test" (a test identity)
 *   chain_numbering  number submissions per sender, gap-free (Header/Sequence)  default false */
static const char *const zz_known_settings[] = {"sender_id", "token_file", "sign_key",
                                                "chain_numbering", NULL};

static int zz_create(const struct ewtp_host *h, const struct ewtp_settings *s, void **state,
                     struct ewtp_errors *why)
{
    (void)h;
    *state = NULL;
    ewtp_settings_check_known(s, "", zz_known_settings, why);
    bool ok_sender = true, ok_token = true, ok_key = true, ok_chain = true;
    const char *sender = ewtp_settings_string(s, "sender_id", "ZZ-TEST-SENDER", &ok_sender);
    const char *token = ewtp_settings_string(s, "token_file", NULL, &ok_token);
    const char *key = ewtp_settings_string(s, "sign_key", "zz-test", &ok_key);
    bool chain = ewtp_settings_bool(s, "chain_numbering", false, &ok_chain);
    if (!ok_sender)
        ewtp_errors_add(why, "/sender_id", "type", "setting sender_id must be a string");
    if (!ok_token)
        ewtp_errors_add(why, "/token_file", "type", "setting token_file must be a file path");
    if (!ok_key)
        ewtp_errors_add(why, "/sign_key", "type", "setting sign_key must be a key name");
    if (!ok_chain)
        ewtp_errors_add(why, "/chain_numbering", "type",
                        "setting chain_numbering must be true or false");
    if (ok_sender && (sender[0] == '\0' || strlen(sender) > 35))
        ewtp_errors_add(why, "/sender_id", "format",
                        "setting sender_id must have 1 to 35 "
                        "characters");
    if (ewtp_errors_blocking(why) > 0)
        return -EWTP_EINVAL;
    /* The settings tree is only borrowed during create: keep copies. */
    struct zz_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -EWTP_ENOMEM;
    st->sender_id = strdup(sender);
    st->token_file = token ? strdup(token) : NULL;
    st->sign_key = key[0] ? strdup(key) : NULL;
    st->chain_numbering = chain;
    *state = st;
    return 0;
}

static void zz_destroy(void *state)
{
    struct zz_state *st = state;
    if (st == NULL)
        return;
    free((char *)st->sender_id);
    free((char *)st->token_file);
    free((char *)st->sign_key);
    free(st);
}

/* One sender's messages go in order; orders, payments and declarations that share an order
 * number are related (so validate could check them against each other). With
 * chain_numbering the authority checks a gap-free number per sender, so the sender is also
 * the chain: the host then keeps its last accepted number and reference. */
static void zz_classify(const void *state, const struct ewtp_call *c, struct ewtp_route_info *r)
{
    const struct zz_state *st = state;
    r->ordering_key = ewtp_arena_printf(c->arena, "zz:%s", st->sender_id);
    r->needs_chain = st->chain_numbering;
    const struct ewtp_message *m = c->msg;
    const char *order = m->order         ? m->order->number
                        : m->payment     ? m->payment->order_number
                        : m->declaration ? m->declaration->order_number
                        : m->invoice     ? m->invoice->order_number
                                         : NULL;
    if (order)
        ewtp_route_add_relation_key(r, c->arena, ewtp_arena_printf(c->arena, "order:%s", order));
}

/* TODO(country): the authority's fields the common model lacks (ext.schema.json), and its
 * own rules below in zz_validate (code lists, formats, limits), each with its pointer.
 * ext.zz: {"priority": "normal" | "high"} */
static void validate_ext(const struct ewtp_message *m, struct ewtp_errors *errs)
{
    const struct ewtp_json *ext = ewtp_message_ext(m, "zz");
    if (ext == NULL)
        return;
    if (ewtp_json_type(ext) != EWTP_JSON_OBJECT) {
        ewtp_errors_add(errs, "/ext/zz", "type", "ext.zz must be an object");
        return;
    }
    const char *key;
    const struct ewtp_json *value;
    for (size_t i = 0; ewtp_json_member(ext, i, &key, &value); i++) {
        if (strcmp(key, "priority") != 0) {
            char p[EWTP_POINTER_MAX];
            ewtp_errors_add(errs, ewtp_pointer(p, "/ext/zz/%s", key), "unknown_member",
                            "ext.zz has no member \"%s\" (known: priority)", key);
            continue;
        }
        const char *prio = ewtp_json_string(value);
        if (prio == NULL || (strcmp(prio, "normal") != 0 && strcmp(prio, "high") != 0))
            ewtp_errors_add(errs, "/ext/zz/priority", "format",
                            "ext.zz.priority must be \"normal\" or \"high\"");
    }
}

void zz_validate(const void *state, const struct ewtp_call *c, struct ewtp_errors *errs)
{
    (void)state;
    const struct ewtp_message *m = c->msg;
    validate_ext(m, errs);
    /* The ZZ authority classifies goods itself from the HS code: every goods line needs one
     * (the common model makes it optional for orders and invoices). */
    const struct ewtp_line *const *lines = NULL;
    size_t n = ewtp_message_lines(m, &lines);
    const char *body = ewtp_message_body_pointer(m);
    for (size_t i = 0; i < n; i++) {
        if (lines[i]->kind == EWTP_LINE_SERVICE || lines[i]->hs_code != NULL)
            continue;
        char p[EWTP_POINTER_MAX];
        ewtp_errors_add(errs, ewtp_pointer(p, "%s/lines/%zu/hs_code", body, i), "required",
                        "the ZZ authority needs an HS code on every goods line");
    }
    if (c->op == EWTP_OP_CANCEL && (c->cancel_reason == NULL || c->cancel_reason[0] == '\0'))
        ewtp_errors_add(errs, "", "required", "a cancellation needs a reason");
}

#if EWTP_ABI_MINOR >= 5 /* the template also builds against the 1.0 headers (tests/abi) */
/* ABI 1.5: the role of the party that sends each kind. The host checks that party's codes
 * against the tenant's configured parties (DECISIONS "Tenants and party codes"); without this
 * hook it uses the same default table. TODO(country): where the authority says otherwise (a
 * self-billed invoice is sent by its buyer; an inventory declared by the platform),
 * return that role; EWTP_ROLE_COUNT checks nothing. */
static enum ewtp_role zz_sender_role(const void *state, const struct ewtp_call *c)
{
    (void)state;
    switch (c->msg->kind) {
    case EWTP_KIND_ORDER:
        return EWTP_ROLE_PLATFORM;
    case EWTP_KIND_PAYMENT:
        return EWTP_ROLE_PAYMENT_PROVIDER;
    case EWTP_KIND_DECLARATION:
        return EWTP_ROLE_DECLARANT;
    case EWTP_KIND_INVOICE:
        return EWTP_ROLE_SELLER;
    default:
        return EWTP_ROLE_COUNT;
    }
}
#define ZZ_SENDER_ROLE , .sender_role = zz_sender_role
#else
#define ZZ_SENDER_ROLE
#endif

/* TODO(country): the authority's name (.authority), the kinds and operations it takes. */
EWTP_PLUGIN_DESCRIPTOR(.name = "zz", .country = "ZZ", .authority = "ZZ test authority (template)",
                       .version = ZZ_PLUGIN_VERSION,
                       .kinds = EWTP_KIND_BIT(EWTP_KIND_ORDER) | EWTP_KIND_BIT(EWTP_KIND_PAYMENT) |
                                EWTP_KIND_BIT(EWTP_KIND_DECLARATION) |
                                EWTP_KIND_BIT(EWTP_KIND_INVOICE),
                       .ops = EWTP_OP_BIT(EWTP_OP_SUBMIT) | EWTP_OP_BIT(EWTP_OP_CANCEL),
                       .create = zz_create, .destroy = zz_destroy, .classify = zz_classify,
                       .validate = zz_validate, .translate = zz_translate,
                       .interpret = zz_interpret, .poll = zz_poll,
                       .receive = zz_receive ZZ_SENDER_ROLE);
