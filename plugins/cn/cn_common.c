/* Helpers shared by validate, translate and interpret: code look-ups, ext.cn access, Beijing
 * time, the deterministic ids and correlation keys. All pure. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include <ewtp/crypto.h>

#include "cn.h"

const char *cn_code(const struct ewtp_code_table *table, const char *key)
{
    return ewtp_code_table_get(table, key, 1);
}

const char *cn_code_find(const struct cn_code *table, const char *key)
{
    if (key == NULL)
        return NULL;
    for (size_t i = 0; table[i].key; i++)
        if (strcmp(table[i].key, key) == 0)
            return table[i].value;
    return NULL;
}

const char *cn_unit(const struct cn_state *st, const char *rec20)
{
    const char *v = cn_code_find(st->unit_overrides, rec20);
    return v ? v : cn_code(&cn_codes_unit, rec20);
}

bool cn_doc_is_export(int number)
{
    return number < 311 || number == 403 || number == 505 || number == 507 || number == 509 ||
           number == 603 || number == 605 || number == 607 || number == 701;
}

int cn_doc_number(const struct ewtp_call *c)
{
    const struct ewtp_message *m = c->msg;
    bool exp = m->direction == EWTP_DIR_EXPORT;
    if (c->op == EWTP_OP_CANCEL)
        return m->kind == EWTP_KIND_DECLARATION ? (exp ? 605 : 623) : 0;
    switch (m->kind) {
    case EWTP_KIND_ORDER:
        return exp ? 303 : 311;
    case EWTP_KIND_PAYMENT:
        return exp ? 403 : 411;
    case EWTP_KIND_WAYBILL:
        return exp ? 505 : 511;
    case EWTP_KIND_STATUS:
        if (m->status == NULL)
            return 0;
        if (m->status->event == EWTP_EVENT_DELIVERED && !exp)
            return 513;
        if (m->status->event == EWTP_EVENT_ARRIVED && exp)
            return 507;
        if (m->status->event == EWTP_EVENT_DEPARTED && exp)
            return 509;
        return 0;
    case EWTP_KIND_DECLARATION:
        return exp ? 603 : 621;
    case EWTP_KIND_RETURN:
        return exp ? 0 : 625;
    case EWTP_KIND_MANIFEST:
        return exp ? 607 : 711;
    case EWTP_KIND_SUMMARY:
        return m->direction == EWTP_DIR_IMPORT ? 0 : 701;
    default:
        return 0;
    }
}

const char *cn_party_code(const struct ewtp_party *p)
{
    if (p == NULL)
        return NULL;
    const char *v = ewtp_party_id(p, "CN-CUSTOMS");
    return v ? v : ewtp_party_id(p, "CN-USCC");
}

const struct ewtp_json *cn_ext(const struct ewtp_message *m)
{
    return ewtp_message_ext(m, "cn");
}

const char *cn_ext_str(const struct ewtp_message *m, const char *key)
{
    return ewtp_json_get_string(cn_ext(m), key);
}

const struct ewtp_json *cn_ext_line(const struct ewtp_message *m, int64_t line)
{
    const struct ewtp_json *lines = ewtp_json_get(cn_ext(m), "lines");
    for (size_t i = 0; i < ewtp_json_size(lines); i++) {
        int64_t n = 0;
        const struct ewtp_json *e = ewtp_json_index(lines, i);
        if (ewtp_json_int(ewtp_json_get(e, "line"), &n) && n == line)
            return e;
    }
    return NULL;
}

const char *cn_ext_line_str(const struct ewtp_message *m, int64_t line, const char *key)
{
    return ewtp_json_get_string(cn_ext_line(m, line), key);
}

void cn_time14(int64_t ms, char buf[16])
{
    char t[40];
    /* CEB times are Beijing time without a zone (FACTS §2): format at +08:00 and keep the
     * digits of "YYYY-MM-DDThh:mm:ss". */
    ewtp_time_format(ms, 480, t, sizeof(t));
    size_t k = 0;
    for (size_t i = 0; t[i] && i < 19 && k < 14; i++)
        if (t[i] >= '0' && t[i] <= '9')
            buf[k++] = t[i];
    buf[k] = '\0';
}

bool cn_time14_of(const char *rfc3339, char buf[16])
{
    int64_t ms = 0;
    if (rfc3339 == NULL || !ewtp_time_parse(rfc3339, &ms))
        return false;
    cn_time14(ms, buf);
    return true;
}

static void uuid_of(const struct ewtp_call *c, const char *what, char out[EWTP_UUID_STRLEN])
{
    char name[512];
    int n =
        snprintf(name, sizeof(name), "cn/%s/%s/%s", c->tenant ? c->tenant : "", c->msg->id, what);
    if (n < 0)
        n = 0;
    ewtp_uuid_v5(EWTP_UUID_NS_EWTP, name, (size_t)n < sizeof(name) ? (size_t)n : sizeof(name) - 1,
                 out);
    for (char *p = out; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
}

const char *cn_guid(const struct ewtp_call *c, const char *what)
{
    char u[EWTP_UUID_STRLEN];
    uuid_of(c, what, u);
    return ewtp_arena_strdup(c->arena, u);
}

const char *cn_cop_no(const struct ewtp_call *c)
{
    const char *v = cn_ext_str(c->msg, "cop_no");
    if (v)
        return v;
    char u[EWTP_UUID_STRLEN], hex[21];
    /* Another tenant must not be able to compute it (issue 19: a copNo known in advance lets
     * a tenant file an inventory under it and take the victim's receipts): keyed by the
     * host's instance secret (ABI 1.7). Without one (ewtpctl translate offline) the public
     * UUID v5 below, fit for golden vectors only. */
    unsigned char mac[32];
    if (c->host && EWTP_HOST_HAS(c->host, instance_mac)) {
        char name[512];
        int n =
            snprintf(name, sizeof(name), "cn/copno/%s/%s", c->tenant ? c->tenant : "", c->msg->id);
        if (n > 0 && (size_t)n < sizeof(name) &&
            c->host->instance_mac(c->host->ctx, name, (size_t)n, mac) == 0) {
            static const char digits[] = "0123456789ABCDEF";
            for (size_t i = 0; i < 10; i++) {
                hex[2 * i] = digits[mac[i] >> 4];
                hex[2 * i + 1] = digits[mac[i] & 15];
            }
            hex[20] = '\0';
            return ewtp_arena_strdup(c->arena, hex);
        }
    }
    uuid_of(c, "copno", u);
    size_t k = 0;
    for (size_t i = 0; u[i] && k < 20; i++)
        if (u[i] != '-')
            hex[k++] = u[i];
    hex[k] = '\0';
    return ewtp_arena_strdup(c->arena, hex);
}

const char *cn_correlation_key(const struct ewtp_call *c)
{
    const struct ewtp_message *m = c->msg;
    const char *platform = cn_party_code(m->parties[EWTP_ROLE_PLATFORM]);
    const char *merchant = cn_party_code(m->parties[EWTP_ROLE_MERCHANT]);
    const char *logistics = cn_party_code(m->parties[EWTP_ROLE_LOGISTICS]);
    const char *pay = cn_party_code(m->parties[EWTP_ROLE_PAYMENT_PROVIDER]);
    struct ewtp_arena *a = c->arena;
    int no = cn_doc_number(c);
    switch (no) {
    case 311:
    case 303:
        return ewtp_arena_printf(a, "CEB%d:%s:%s", no, platform, m->order->number);
    case 411:
        return ewtp_arena_printf(a, "CEB411:%s:%s", pay, m->payment->number);
    case 403:
        return ewtp_arena_printf(a, "CEB403:%s:%s", merchant, m->payment->order_number);
    case 511:
    case 505:
        return ewtp_arena_printf(a, "CEB%d:%s:%s", no, logistics, m->waybill->number);
    case 513:
        return ewtp_arena_printf(a, "CEB513:%s:%s", logistics, m->status->waybill_number);
    case 623: /* a cancel's receipts belong to its inventory: same copNo */
        return ewtp_arena_printf(a, "CEB621:%s", cn_cop_no(c));
    case 605:
        return ewtp_arena_printf(a, "CEB603:%s", cn_cop_no(c));
    case 0:
        return NULL;
    default:
        return ewtp_arena_printf(a, "CEB%d:%s", no, cn_cop_no(c));
    }
}

const char *cn_address(struct ewtp_arena *a, const struct ewtp_party *p)
{
    if (p == NULL || p->address == NULL)
        return NULL;
    const struct ewtp_address *ad = p->address;
    const char *parts[16];
    size_t n = 0;
    if (ad->region)
        parts[n++] = ad->region;
    if (ad->city)
        parts[n++] = ad->city;
    for (size_t i = 0; i < ad->n_lines && n < 16; i++)
        parts[n++] = ad->lines[i];
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(parts[i]) + 1;
    char *s = ewtp_arena_alloc(a, len);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(s, " ");
        strcat(s, parts[i]);
    }
    return s;
}
