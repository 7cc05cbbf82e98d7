/* The China plugin's descriptor, settings and classification. */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "cn.h"

/* Settings (all optional; empty settings give a clearly marked TEST identity). README.md
 * "Settings" says what each one is and where its value comes from in production. */
static const char *const cn_known_settings[] = {
    "cop_code",          "cop_name",      "dxp_id",     "receiver_import",      "receiver_export",
    "sign_key",          "sign_alg",      "cert_no",    "signature_method_uri", "digest_method_uri",
    "sm2_signature",     "sign_optional", "app_status", "agent_code",           "agent_name",
    "transaction_limit", "units",         NULL};

struct setting_reader {
    const struct ewtp_settings *s;
    struct ewtp_errors *why;
};

static const char *str_setting(struct setting_reader *r, const char *name, const char *def,
                               size_t max_len)
{
    bool ok = true;
    const char *v = ewtp_settings_string(r->s, name, def, &ok);
    if (!ok) {
        char p[EWTP_POINTER_MAX];
        ewtp_errors_add(r->why, ewtp_pointer(p, "/%s", name), "type", "setting %s must be a string",
                        name);
        return def;
    }
    if (v && max_len && strlen(v) > max_len) {
        char p[EWTP_POINTER_MAX];
        ewtp_errors_add(r->why, ewtp_pointer(p, "/%s", name), "format",
                        "setting %s must have at most %zu characters", name, max_len);
    }
    return v;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void cn_destroy(void *state)
{
    struct cn_state *st = state;
    if (st == NULL)
        return;
    free((char *)st->cop_code);
    free((char *)st->cop_name);
    free((char *)st->dxp_id);
    free((char *)st->receiver_import);
    free((char *)st->receiver_export);
    free((char *)st->sign_key);
    free((char *)st->cert_no);
    free((char *)st->signature_method_uri);
    free((char *)st->digest_method_uri);
    free((char *)st->app_status);
    free((char *)st->agent_code);
    free((char *)st->agent_name);
    for (size_t i = 0; i < CN_MAX_UNIT_OVERRIDES && st->unit_overrides[i].key; i++) {
        free((char *)st->unit_overrides[i].key);
        free((char *)st->unit_overrides[i].value);
    }
    free(st);
}

static int cn_create(const struct ewtp_host *h, const struct ewtp_settings *s, void **state,
                     struct ewtp_errors *why)
{
    (void)h;
    *state = NULL;
    ewtp_settings_check_known(s, "", cn_known_settings, why);
    struct setting_reader r = {s, why};
    /* The TEST defaults are visibly fake: E-port would refuse them. */
    const char *cop_code = str_setting(&r, "cop_code", "TEST000000", 18);
    const char *cop_name = str_setting(&r, "cop_name", "EWTP TEST ENTERPRISE", 100);
    const char *dxp_id = str_setting(&r, "dxp_id", "DXPENTTEST000000", 16);
    const char *rcv_i = str_setting(&r, "receiver_import", "DXPEDCCEB0000002", 16);
    const char *rcv_e = str_setting(&r, "receiver_export", "DXPEDCCEB0000003", 16);
    const char *key = str_setting(&r, "sign_key", "cn-sign", 0);
    const char *alg = str_setting(&r, "sign_alg", "sm2-sm3", 0);
    const char *cert_no = str_setting(&r, "cert_no", NULL, 0);
    const char *smu = str_setting(&r, "signature_method_uri", NULL, 0);
    const char *dmu = str_setting(&r, "digest_method_uri", NULL, 0);
    const char *sm2 = str_setting(&r, "sm2_signature", "der", 0);
    const char *app_status = str_setting(&r, "app_status", "2", 0);
    const char *agent_code = str_setting(&r, "agent_code", NULL, 18);
    const char *agent_name = str_setting(&r, "agent_name", NULL, 100);
    const char *limit = str_setting(&r, "transaction_limit", "5000", 0);
    bool ok = true;
    bool sign_optional = ewtp_settings_bool(s, "sign_optional", true, &ok);
    if (!ok)
        ewtp_errors_add(why, "/sign_optional", "type", "setting sign_optional must be a boolean");
    enum ewtp_sign_alg sa = EWTP_SIGN_SM2_SM3;
    if (alg && strcmp(alg, "rsa-sha1") == 0)
        sa = EWTP_SIGN_RSA_SHA1;
    else if (alg == NULL || strcmp(alg, "sm2-sm3") != 0)
        ewtp_errors_add(why, "/sign_alg", "format",
                        "setting sign_alg must be \"sm2-sm3\" or \"rsa-sha1\"");
    if (sm2 == NULL || (strcmp(sm2, "der") != 0 && strcmp(sm2, "raw") != 0))
        ewtp_errors_add(why, "/sm2_signature", "format",
                        "setting sm2_signature must be \"der\" or \"raw\"");
    if (app_status == NULL || (strcmp(app_status, "1") != 0 && strcmp(app_status, "2") != 0))
        ewtp_errors_add(why, "/app_status", "format",
                        "setting app_status must be \"1\" (staging) or \"2\" (declare)");
    if (cop_code == NULL || cop_code[0] == '\0')
        ewtp_errors_add(why, "/cop_code", "format", "setting cop_code must not be empty");
    struct ewtp_dec lim = {0};
    bool has_limit = limit && limit[0] != '\0';
    if (has_limit && (ewtp_dec_parse(limit, &lim) != 0 || ewtp_dec_is_negative(lim)))
        ewtp_errors_add(why, "/transaction_limit", "format",
                        "setting transaction_limit must be a decimal string (CNY), \"\" for none");
    const struct ewtp_settings *units = ewtp_settings_child(s, "units");
    size_t n_units = ewtp_settings_count(units);
    if (n_units > CN_MAX_UNIT_OVERRIDES)
        ewtp_errors_add(why, "/units", "range", "setting units has more than %d entries",
                        CN_MAX_UNIT_OVERRIDES);
    for (size_t i = 0; i < n_units && i < CN_MAX_UNIT_OVERRIDES; i++) {
        const char *name = NULL;
        const char *v = ewtp_settings_value_string(ewtp_settings_index(units, i, &name));
        if (v == NULL || strlen(v) != 3) {
            char p[EWTP_POINTER_MAX];
            ewtp_errors_add(why, ewtp_pointer(p, "/units/%s", name ? name : "?"), "format",
                            "a customs unit code has 3 characters");
        }
    }
    if (ewtp_errors_blocking(why) > 0)
        return -EWTP_EINVAL;
    struct cn_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -EWTP_ENOMEM;
    st->cop_code = strdup(cop_code);
    st->cop_name = strdup(cop_name ? cop_name : "");
    st->dxp_id = strdup(dxp_id ? dxp_id : "");
    st->receiver_import = strdup(rcv_i ? rcv_i : "");
    st->receiver_export = strdup(rcv_e ? rcv_e : "");
    st->sign_key = key && key[0] ? strdup(key) : NULL;
    st->sign_alg = sa;
    st->cert_no = dup_or_null(cert_no);
    st->signature_method_uri = dup_or_null(smu);
    st->digest_method_uri = dup_or_null(dmu);
    st->sm2_raw = strcmp(sm2, "raw") == 0;
    st->sign_optional = sign_optional;
    st->app_status = strdup(app_status);
    st->agent_code = dup_or_null(agent_code);
    st->agent_name = dup_or_null(agent_name);
    st->limit = lim;
    st->has_limit = has_limit;
    for (size_t i = 0; i < n_units && i < CN_MAX_UNIT_OVERRIDES; i++) {
        const char *name = NULL;
        const char *v = ewtp_settings_value_string(ewtp_settings_index(units, i, &name));
        st->unit_overrides[i].key = dup_or_null(name);
        st->unit_overrides[i].value = dup_or_null(v);
    }
    *state = st;
    return 0;
}

/* Relation keys: the three-document match of a 621 joins order, payment and inventory by
 * platform code + order number, and waybill and inventory by logistics code + waybill
 * number (FACTS §3).
 *
 * Ordering: only as narrow as customs needs (issue 20). The documents of one order (311,
 * 411, 511, 621 with the same platform code + order number) go out in accept order, per
 * tenant and per channel (dxp_id: the plugin does not see its instance name); everything
 * else is unordered. A whole channel is never serialised, and a dead message blocks only its
 * own order. A 621 whose order comes from another tenant is not held for it: customs itself
 * holds an inventory until its order, payment and waybill arrived (the -621010/-621011
 * match), so a route wait would only add a timeout the authority does not have. */
static void cn_classify(const void *state, const struct ewtp_call *c, struct ewtp_route_info *r)
{
    const struct cn_state *st = state;
    const struct ewtp_message *m = c->msg;
    r->ordering_key = NULL;
    const char *platform = cn_party_code(m->parties[EWTP_ROLE_PLATFORM]);
    const char *logistics = cn_party_code(m->parties[EWTP_ROLE_LOGISTICS]);
    const char *order = m->order         ? m->order->number
                        : m->payment     ? m->payment->order_number
                        : m->waybill     ? m->waybill->order_number
                        : m->declaration ? m->declaration->order_number
                                         : NULL;
    const char *waybill = m->waybill       ? m->waybill->number
                          : m->declaration ? m->declaration->waybill_number
                                           : NULL;
    if (platform && order) {
        ewtp_route_add_relation_key(r, c->arena,
                                    ewtp_arena_printf(c->arena, "cn-order:%s:%s", platform, order));
        r->ordering_key = ewtp_arena_printf(c->arena, "cn:%s:%s:%s:%s", c->tenant ? c->tenant : "",
                                            st->dxp_id, platform, order);
    }
    if (logistics && waybill)
        ewtp_route_add_relation_key(
            r, c->arena, ewtp_arena_printf(c->arena, "cn-waybill:%s:%s", logistics, waybill));
}

/* ABI 1.5: who sends each CEB document (FACTS §3: the declaring enterprise of each). The
 * import inventory (621, its cancel 623) and the return (625) are declared by the platform
 * (ebpCode; an agent declares on its behalf), logistics statuses and manifests by the
 * logistics company, summaries (701) by the declarant; the rest as the host's default. */
static enum ewtp_role cn_sender_role(const void *state, const struct ewtp_call *c)
{
    (void)state;
    switch (cn_doc_number(c)) {
    case 311:
    case 303:
        return EWTP_ROLE_PLATFORM;
    case 411:
    case 403:
        return EWTP_ROLE_PAYMENT_PROVIDER;
    case 511:
    case 505:
    case 513:
    case 507:
    case 509:
    case 711:
    case 607:
        return EWTP_ROLE_LOGISTICS;
    case 621:
    case 623:
    case 625:
        return EWTP_ROLE_PLATFORM;
    case 603:
    case 605:
    case 701:
        return EWTP_ROLE_DECLARANT;
    default:
        return EWTP_ROLE_COUNT;
    }
}

EWTP_PLUGIN_DESCRIPTOR(.name = "cn", .country = "CN",
                       .authority = "GACC cross-border e-commerce (CEB 2022-05)",
                       .version = "0.9.0",
                       .kinds = EWTP_KIND_BIT(EWTP_KIND_ORDER) | EWTP_KIND_BIT(EWTP_KIND_PAYMENT) |
                                EWTP_KIND_BIT(EWTP_KIND_WAYBILL) |
                                EWTP_KIND_BIT(EWTP_KIND_DECLARATION) |
                                EWTP_KIND_BIT(EWTP_KIND_STATUS) | EWTP_KIND_BIT(EWTP_KIND_RETURN) |
                                EWTP_KIND_BIT(EWTP_KIND_MANIFEST) |
                                EWTP_KIND_BIT(EWTP_KIND_SUMMARY),
                       .ops = EWTP_OP_BIT(EWTP_OP_SUBMIT) | EWTP_OP_BIT(EWTP_OP_CANCEL),
                       .create = cn_create, .destroy = cn_destroy, .classify = cn_classify,
                       .validate = cn_validate, .translate = cn_translate,
                       .interpret = cn_interpret, .receive = cn_receive, .reference = cn_reference,
                       .sender_role = cn_sender_role, .document_id = cn_document_id);
