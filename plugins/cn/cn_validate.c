/* Checks before sending: everything E-port or customs would refuse hours later that one
 * message (and the related messages the host hands over) can show now. Pointers always
 * name members of the common message being validated. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <ewtp/codes.h>

#include "cn.h"

struct vctx {
    const struct cn_state *st;
    const struct ewtp_call *c;
    const struct ewtp_message *m;
    struct ewtp_errors *errs;
    const char *body; /* "/order" ... */
};

static const char *ptr(char buf[EWTP_POINTER_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *ptr(char buf[EWTP_POINTER_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, EWTP_POINTER_MAX, fmt, ap);
    va_end(ap);
    return buf;
}

/* Characters, not bytes: the XSD lengths count characters. */
static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static bool empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

static void need(struct vctx *v, const char *p, const char *value, const char *what)
{
    if (empty(value))
        ewtp_errors_add(v->errs, p, "required", "China customs (CEB) needs %s", what);
}

static void max_len(struct vctx *v, const char *p, const char *value, size_t n)
{
    if (value && utf8_len(value) > n)
        ewtp_errors_add(v->errs, p, "format", "at most %zu characters in the CEB message", n);
}

/* CEB decimals are N19,5: a sixth significant decimal would be refused by the schema. */
static void dec5(struct vctx *v, const char *p, const struct ewtp_num *n)
{
    if (n->text == NULL || n->value.scale <= 5)
        return;
    struct ewtp_dec r;
    if (ewtp_dec_round(n->value, 5, &r) != 0 || ewtp_dec_cmp(r, n->value) != 0)
        ewtp_errors_add(v->errs, p, "format", "China customs accepts at most 5 decimals");
}

static void need_num(struct vctx *v, const char *p, const struct ewtp_num *n, const char *what)
{
    if (n->text == NULL)
        ewtp_errors_add(v->errs, p, "required", "China customs (CEB) needs %s", what);
    else
        dec5(v, p, n);
}

static void cny(struct vctx *v, const char *p, const char *currency)
{
    if (currency && strcmp(currency, "CNY") != 0)
        ewtp_errors_add(v->errs, p, "rule",
                        "cross-border retail import amounts must be in CNY (customs code 142)");
}

static void mapped_currency(struct vctx *v, const char *p, const char *currency)
{
    if (currency && cn_code(&cn_codes_currency, currency) == NULL)
        ewtp_errors_add(v->errs, p, "unsupported",
                        "currency %s has no China customs code in the plugin's table", currency);
}

/* A party with its customs registration code (CN-CUSTOMS, or an 18-character CN-USCC). */
static const struct ewtp_party *party_code(struct vctx *v, enum ewtp_role role, const char *what)
{
    char p[EWTP_POINTER_MAX];
    const struct ewtp_party *party = v->m->parties[role];
    if (party == NULL) {
        ewtp_errors_add(v->errs, ptr(p, "/parties/%s", ewtp_role_name(role)), "required",
                        "China customs needs the %s with its customs registration code", what);
        return NULL;
    }
    const char *code = cn_party_code(party);
    if (code == NULL)
        ewtp_errors_add(v->errs, ptr(p, "/parties/%s/ids", ewtp_role_name(role)), "required",
                        "the %s needs an id with scheme CN-CUSTOMS (customs registration code) "
                        "or CN-USCC",
                        what);
    else if (strlen(code) > 18)
        ewtp_errors_add(v->errs, ptr(p, "/parties/%s/ids", ewtp_role_name(role)), "format",
                        "a customs registration code has at most 18 characters");
    max_len(v, ptr(p, "/parties/%s/name", ewtp_role_name(role)), party->name, 100);
    return party;
}

/* Buyer (= payer for 411): real name, resident ID card number, phone. */
static const struct ewtp_party *buyer(struct vctx *v, bool phone)
{
    const struct ewtp_party *b = v->m->parties[EWTP_ROLE_BUYER];
    if (b == NULL) {
        ewtp_errors_add(v->errs, "/parties/buyer", "required",
                        "China customs needs the buyer's real name and resident ID card number");
        return NULL;
    }
    need(v, "/parties/buyer/name", b->name, "the buyer's real name");
    max_len(v, "/parties/buyer/name", b->name, 60);
    const char *ric = ewtp_party_id(b, "CN-RIC");
    if (ric == NULL) {
        ewtp_errors_add(v->errs, "/parties/buyer/ids", "required",
                        "China customs needs the buyer's resident ID card number (scheme "
                        "CN-RIC; buyerIdType 1)");
    } else if (!ewtp_is_cn_ric(ric)) {
        for (size_t i = 0; i < b->n_ids; i++) {
            char p[EWTP_POINTER_MAX];
            if (strcmp(b->ids[i]->scheme, "CN-RIC") == 0 && b->ids[i]->value == ric)
                ewtp_errors_add(v->errs, ptr(p, "/parties/buyer/ids/%zu/value", i), "format",
                                "not an 18-character resident ID number with a valid check "
                                "character");
        }
    }
    if (phone) {
        need(v, "/parties/buyer/phone", b->phone, "the buyer's telephone");
        max_len(v, "/parties/buyer/phone", b->phone, 30);
    }
    return b;
}

static void consignee(struct vctx *v)
{
    const struct ewtp_party *p = v->m->parties[EWTP_ROLE_CONSIGNEE];
    if (p == NULL) {
        ewtp_errors_add(v->errs, "/parties/consignee", "required",
                        "China customs needs the consignee's name, phone and address");
        return;
    }
    max_len(v, "/parties/consignee/name", p->name, 100);
    need(v, "/parties/consignee/phone", p->phone, "the consignee's telephone");
    max_len(v, "/parties/consignee/phone", p->phone, 50);
    if (p->address == NULL)
        ewtp_errors_add(v->errs, "/parties/consignee/address", "required",
                        "China customs needs the consignee's address");
    else {
        const char *a = cn_address(v->c->arena, p);
        if (empty(a))
            ewtp_errors_add(v->errs, "/parties/consignee/address", "required",
                            "the consignee's address is empty");
        max_len(v, "/parties/consignee/address", a, 200);
    }
}

static void declarant(struct vctx *v)
{
    if (v->m->parties[EWTP_ROLE_DECLARANT] || v->st->agent_code == NULL)
        party_code(v, EWTP_ROLE_DECLARANT, "declarant (agent)");
}

static void hs10(struct vctx *v, const char *p, const char *hs)
{
    if (hs == NULL)
        ewtp_errors_add(v->errs, p, "required", "China customs needs a 10-digit HS code");
    else if (strlen(hs) != 10)
        ewtp_errors_add(v->errs, p, "format",
                        "China customs needs the 10-digit HS code (8 tariff + 2 statistical "
                        "digits), not %zu digits",
                        strlen(hs));
}

static void unit_mapped(struct vctx *v, const char *p, const struct ewtp_line *l)
{
    if (cn_ext_line_str(v->m, l->line, "unit_code"))
        return;
    if (l->unit == NULL)
        ewtp_errors_add(v->errs, p, "required",
                        "China customs needs a unit (or ext.cn.lines[].unit_code)");
    else if (cn_unit(v->st, l->unit) == NULL)
        ewtp_errors_add(v->errs, p, "unsupported",
                        "unit %s has no China customs unit code in the plugin's table; set "
                        "ext.cn.lines[].unit_code",
                        l->unit);
}

static void country_mapped(struct vctx *v, const char *p, const char *alpha2, bool required,
                           const char *override)
{
    if (override)
        return;
    if (alpha2 == NULL) {
        if (required)
            ewtp_errors_add(v->errs, p, "required", "China customs needs a country here");
    } else if (cn_code(&cn_codes_country, alpha2) == NULL) {
        ewtp_errors_add(v->errs, p, "unsupported",
                        "country %s has no China customs country code in the plugin's table",
                        alpha2);
    }
}

/* Lines numbered 1..n in order (gnum), at most max, each with CEB's required members. */
static void lines_common(struct vctx *v, const struct ewtp_line *const *lines, size_t n, size_t max,
                         bool need_hs, size_t sku_max, bool sku_required)
{
    char p[EWTP_POINTER_MAX];
    if (n > max)
        ewtp_errors_add(v->errs, ptr(p, "%s/lines", v->body), "range",
                        "a CEB document carries at most %zu lines", max);
    for (size_t i = 0; i < n; i++) {
        const struct ewtp_line *l = lines[i];
        if (l->line != (int64_t)i + 1)
            ewtp_errors_add(v->errs, ptr(p, "%s/lines/%zu/line", v->body, i), "rule",
                            "CEB line numbers (gnum) run 1, 2, 3 ... in order");
        if (need_hs)
            hs10(v, ptr(p, "%s/lines/%zu/hs_code", v->body, i), l->hs_code);
        if (sku_required)
            need(v, ptr(p, "%s/lines/%zu/sku", v->body, i), l->sku, "the item number (sku)");
        max_len(v, ptr(p, "%s/lines/%zu/sku", v->body, i), l->sku, sku_max);
        max_len(v, ptr(p, "%s/lines/%zu/description", v->body, i), l->description, 250);
        need_num(v, ptr(p, "%s/lines/%zu/quantity", v->body, i), &l->quantity, "a quantity");
        unit_mapped(v, ptr(p, "%s/lines/%zu/unit", v->body, i), l);
        dec5(v, ptr(p, "%s/lines/%zu/unit_price", v->body, i), &l->unit_price);
        dec5(v, ptr(p, "%s/lines/%zu/amount", v->body, i), &l->amount);
        if (l->discount.text && !ewtp_dec_is_zero(l->discount.value))
            ewtp_errors_add(v->errs, ptr(p, "%s/lines/%zu/discount", v->body, i), "unsupported",
                            "CEB lines have no discount: totalPrice must be price x qty");
        const char *gm = cn_ext_line_str(v->m, l->line, "gmodel");
        max_len(v, ptr(p, "%s/lines/%zu/model", v->body, i), gm, 250);
    }
}

static void limit_check(struct vctx *v, const char *p, struct ewtp_dec total)
{
    if (v->st->has_limit && ewtp_dec_cmp(total, v->st->limit) > 0) {
        char lim[EWTP_DEC_STRMAX];
        ewtp_dec_format(v->st->limit, lim, sizeof(lim));
        ewtp_errors_add(v->errs, p, "rule",
                        "the goods value with freight exceeds the per-transaction limit of "
                        "cross-border retail imports (CNY %s; customs error -621005)",
                        lim);
    }
}

static void add(struct ewtp_dec *acc, const struct ewtp_num *n)
{
    if (n->text)
        ewtp_dec_add(*acc, n->value, acc);
}

/* ---- ext.cn ---------------------------------------------------------------------------- */

static const char *const ext_strings[] = {"app_type",
                                          "app_status",
                                          "ebp_name_cn",
                                          "ebc_name_cn",
                                          "pay_name_cn",
                                          "logistics_name_cn",
                                          "agent_name_cn",
                                          "buyer_reg_no",
                                          "consignee_district",
                                          "pay_transaction_id",
                                          "batch_numbers",
                                          "trade_mode",
                                          "port_code",
                                          "assure_code",
                                          "ems_no",
                                          "area_code",
                                          "area_name",
                                          "bill_no",
                                          "loct_no",
                                          "license_no",
                                          "wrap_type",
                                          "insured_fee",
                                          "cop_no",
                                          "statistics_flag",
                                          "pod",
                                          "customs_code",
                                          "traf_mode",
                                          "domestic_traf_no",
                                          "operator_name_cn",
                                          "summary_flag",
                                          "item_name_flag",
                                          NULL};
static const char *const ext_line_strings[] = {
    "name_cn",        "gmodel",        "qty1",      "unit1",        "qty2", "unit2",
    "item_record_no", "trade_country", "unit_code", "country_code", NULL};

static bool in_list(const char *const *list, const char *key)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], key) == 0)
            return true;
    return false;
}

static void ext_decimal(struct vctx *v, const char *p, const char *s)
{
    struct ewtp_dec d;
    struct ewtp_num n = {.text = s};
    if (s == NULL)
        return;
    if (ewtp_dec_parse(s, &d) != 0) {
        ewtp_errors_add(v->errs, p, "format", "a decimal string is expected (\"1.5\")");
        return;
    }
    n.value = d;
    dec5(v, p, &n);
}

static void ext_fixed(struct vctx *v, const char *key, const char *const *allowed)
{
    const char *s = cn_ext_str(v->m, key);
    if (s == NULL || in_list(allowed, s))
        return;
    char p[EWTP_POINTER_MAX];
    ewtp_errors_add(v->errs, ptr(p, "/ext/cn/%s", key), "format",
                    "ext.cn.%s: \"%s\" is not allowed", key, s);
}

static void validate_ext(struct vctx *v)
{
    const struct ewtp_json *ext = cn_ext(v->m);
    char p[EWTP_POINTER_MAX];
    if (ext == NULL)
        return;
    if (ewtp_json_type(ext) != EWTP_JSON_OBJECT) {
        ewtp_errors_add(v->errs, "/ext/cn", "type", "ext.cn must be an object");
        return;
    }
    const char *key;
    const struct ewtp_json *val;
    for (size_t i = 0; ewtp_json_member(ext, i, &key, &val); i++) {
        if (strcmp(key, "lines") == 0) {
            if (ewtp_json_type(val) != EWTP_JSON_ARRAY) {
                ewtp_errors_add(v->errs, "/ext/cn/lines", "type", "ext.cn.lines must be an array");
                continue;
            }
            for (size_t k = 0; k < ewtp_json_size(val); k++) {
                const struct ewtp_json *e = ewtp_json_index(val, k);
                int64_t line = 0;
                if (ewtp_json_type(e) != EWTP_JSON_OBJECT ||
                    !ewtp_json_int(ewtp_json_get(e, "line"), &line)) {
                    ewtp_errors_add(v->errs, ptr(p, "/ext/cn/lines/%zu", k), "type",
                                    "each ext.cn.lines entry is an object with an integer line");
                    continue;
                }
                const char *lk;
                const struct ewtp_json *lv;
                for (size_t j = 0; ewtp_json_member(e, j, &lk, &lv); j++) {
                    if (strcmp(lk, "line") == 0)
                        continue;
                    if (!in_list(ext_line_strings, lk))
                        ewtp_errors_add(v->errs, ptr(p, "/ext/cn/lines/%zu/%s", k, lk),
                                        "unknown_member", "ext.cn.lines[] has no member \"%s\"",
                                        lk);
                    else if (ewtp_json_type(lv) != EWTP_JSON_STRING)
                        ewtp_errors_add(v->errs, ptr(p, "/ext/cn/lines/%zu/%s", k, lk), "type",
                                        "ext.cn.lines[].%s must be a string", lk);
                    else if (strcmp(lk, "qty1") == 0 || strcmp(lk, "qty2") == 0)
                        ext_decimal(v, ptr(p, "/ext/cn/lines/%zu/%s", k, lk), ewtp_json_string(lv));
                    else if ((strcmp(lk, "unit1") == 0 || strcmp(lk, "unit2") == 0 ||
                              strcmp(lk, "unit_code") == 0 || strcmp(lk, "country_code") == 0) &&
                             strlen(ewtp_json_string(lv)) != 3)
                        ewtp_errors_add(v->errs, ptr(p, "/ext/cn/lines/%zu/%s", k, lk), "format",
                                        "a China customs code of 3 characters is expected");
                }
                if ((ewtp_json_get(e, "qty2") == NULL) != (ewtp_json_get(e, "unit2") == NULL))
                    ewtp_errors_add(v->errs, ptr(p, "/ext/cn/lines/%zu", k), "rule",
                                    "qty2 and unit2 go together (customs error -625009)");
            }
            continue;
        }
        if (!in_list(ext_strings, key))
            ewtp_errors_add(v->errs, ptr(p, "/ext/cn/%s", key), "unknown_member",
                            "ext.cn has no member \"%s\" (see plugins/cn/ext.schema.json)", key);
        else if (ewtp_json_type(val) != EWTP_JSON_STRING)
            ewtp_errors_add(v->errs, ptr(p, "/ext/cn/%s", key), "type",
                            "ext.cn.%s must be a string", key);
    }
    ext_decimal(v, "/ext/cn/insured_fee", cn_ext_str(v->m, "insured_fee"));
    static const char *const app_types[] = {"1", "2", "3", NULL};
    static const char *const app_statuses[] = {"1", "2", NULL};
    static const char *const stat_flags[] = {"A", "B", NULL};
    ext_fixed(v, "app_type", app_types);
    ext_fixed(v, "app_status", app_statuses);
    ext_fixed(v, "statistics_flag", stat_flags);
    const char *cop = cn_ext_str(v->m, "cop_no");
    max_len(v, "/ext/cn/cop_no", cop, 20);
    const char *d = cn_ext_str(v->m, "consignee_district");
    if (d && strlen(d) != 6)
        ewtp_errors_add(v->errs, "/ext/cn/consignee_district", "format",
                        "a 6-digit administrative division code (GB/T 2260) is expected");
    static const char *const four[] = {"port_code", "customs_code", "trade_mode", NULL};
    for (size_t i = 0; four[i]; i++) {
        const char *s = cn_ext_str(v->m, four[i]);
        if (s && strlen(s) != 4)
            ewtp_errors_add(v->errs, ptr(p, "/ext/cn/%s", four[i]), "format",
                            "a 4-character China customs code is expected");
    }
    static const char *const one[] = {"wrap_type", "traf_mode", NULL};
    for (size_t i = 0; one[i]; i++) {
        const char *s = cn_ext_str(v->m, one[i]);
        if (s && strlen(s) != 1)
            ewtp_errors_add(v->errs, ptr(p, "/ext/cn/%s", one[i]), "format",
                            "a 1-character China customs code is expected");
    }
}

/* ---- per document ---------------------------------------------------------------------- */

static void v_order(struct vctx *v, bool import)
{
    const struct ewtp_order *o = v->m->order;
    party_code(v, EWTP_ROLE_PLATFORM, "platform (ebp)");
    if (import || v->m->parties[EWTP_ROLE_EXPORTER] == NULL)
        party_code(v, EWTP_ROLE_MERCHANT, "e-commerce enterprise (merchant, ebc)");
    else
        party_code(v, EWTP_ROLE_EXPORTER, "e-commerce enterprise (exporter, ebc)");
    need(v, "/order/number", o->number, "the order number");
    max_len(v, "/order/number", o->number, 60);
    need_num(v, "/order/goods_value", &o->goods_value, "the goods value");
    dec5(v, "/order/freight", &o->freight);
    if (import) {
        buyer(v, true);
        consignee(v);
        need(v, "/ext/cn/buyer_reg_no", cn_ext_str(v->m, "buyer_reg_no"),
             "the buyer's account on the platform (buyerRegNo)");
        max_len(v, "/ext/cn/buyer_reg_no", cn_ext_str(v->m, "buyer_reg_no"), 60);
        need_num(v, "/order/paid_total", &o->paid_total, "the amount actually paid");
        dec5(v, "/order/discount", &o->discount);
        dec5(v, "/order/tax_total", &o->tax_total);
        cny(v, "/order/currency", o->currency);
        if (o->insurance.text && !ewtp_dec_is_zero(o->insurance.value))
            ewtp_errors_add(v->errs, "/order/insurance", "unsupported",
                            "CEB311 has no insurance: acturalPaid = goods + freight + tax - "
                            "discount");
        if (v->m->parties[EWTP_ROLE_PAYMENT_PROVIDER])
            party_code(v, EWTP_ROLE_PAYMENT_PROVIDER, "payment enterprise");
        struct ewtp_dec total = ewtp_dec_from_int(0);
        add(&total, &o->goods_value);
        add(&total, &o->freight);
        limit_check(v, "/order/goods_value", total);
    } else {
        mapped_currency(v, "/order/currency", o->currency);
    }
    lines_common(v, o->lines, o->n_lines, import ? 99 : 100, false, 30, !import);
    char p[EWTP_POINTER_MAX];
    for (size_t i = 0; i < o->n_lines; i++) {
        need_num(v, ptr(p, "/order/lines/%zu/unit_price", i), &o->lines[i]->unit_price,
                 "the unit price");
        need_num(v, ptr(p, "/order/lines/%zu/amount", i), &o->lines[i]->amount, "the line total");
        if (import)
            country_mapped(v, ptr(p, "/order/lines/%zu/origin", i), o->lines[i]->origin, true,
                           cn_ext_line_str(v->m, o->lines[i]->line, "country_code"));
    }
}

static void v_payment(struct vctx *v, bool import)
{
    const struct ewtp_payment *pm = v->m->payment;
    party_code(v, EWTP_ROLE_PLATFORM, "platform (ebp)");
    need(v, "/payment/order_number", pm->order_number, "the order number");
    max_len(v, "/payment/order_number", pm->order_number, 60);
    need_num(v, "/payment/amount", &pm->amount, "the amount paid");
    need(v, "/payment/paid_at", pm->paid_at, "the payment time");
    if (import) {
        party_code(v, EWTP_ROLE_PAYMENT_PROVIDER, "payment enterprise");
        need(v, "/payment/number", pm->number, "the payment transaction id");
        max_len(v, "/payment/number", pm->number, 60);
        buyer(v, false); /* payer = buyer: ewtp/1 has no payer role */
        cny(v, "/payment/currency", pm->currency);
    } else {
        party_code(v, EWTP_ROLE_MERCHANT, "e-commerce enterprise (merchant, ebc)");
        if (v->m->parties[EWTP_ROLE_PAYMENT_PROVIDER] == NULL)
            ewtp_errors_add(v->errs, "/parties/payment_provider", "required",
                            "CEB403 needs the payment enterprise's name");
        mapped_currency(v, "/payment/currency", pm->currency);
    }
}

static void v_waybill(struct vctx *v, bool import)
{
    const struct ewtp_waybill *w = v->m->waybill;
    party_code(v, EWTP_ROLE_LOGISTICS, "logistics enterprise");
    need(v, "/waybill/number", w->number, "the waybill number");
    max_len(v, "/waybill/number", w->number, import ? 60 : 32);
    need_num(v, "/waybill/gross_weight_kg", &w->gross_weight_kg, "the gross weight");
    dec5(v, "/waybill/freight", &w->freight);
    max_len(v, "/waybill/goods_description", w->goods_description, 200);
    if (w->has_packages && w->packages != 1 && import)
        ewtp_errors_add(v->errs, "/waybill/packages", "rule",
                        "a cross-border retail import waybill is one parcel (packNo 1)");
    if (import) {
        need(v, "/waybill/order_number", w->order_number, "the order number");
        consignee(v);
        cny(v, "/waybill/currency", w->currency);
    } else {
        need(v, "/waybill/goods_description", w->goods_description, "the goods description");
        mapped_currency(v, "/waybill/currency", w->currency);
    }
}

static void v_status(struct vctx *v, int no)
{
    const struct ewtp_status *s = v->m->status;
    party_code(v, EWTP_ROLE_LOGISTICS, "logistics enterprise");
    need(v, "/status/waybill_number", s->waybill_number, "the waybill number");
    max_len(v, "/status/waybill_number", s->waybill_number, no == 513 ? 60 : 32);
    need(v, "/status/at", s->at, "the time of the event");
    if (no != 513) {
        need(v, "/ext/cn/customs_code", cn_ext_str(v->m, "customs_code"),
             "the 4-digit customs office (ext.cn.customs_code)");
        need(v, "/ext/cn/traf_mode", cn_ext_str(v->m, "traf_mode"),
             "the customs transport mode (ext.cn.traf_mode)");
        if (no == 507) {
            need(v, "/ext/cn/domestic_traf_no", cn_ext_str(v->m, "domestic_traf_no"),
                 "the domestic transport number (ext.cn.domestic_traf_no)");
            if (v->m->parties[EWTP_ROLE_DECLARANT])
                party_code(v, EWTP_ROLE_DECLARANT, "site operator (declarant)");
        }
    }
}

static void v_lines_621(struct vctx *v, const struct ewtp_line *const *lines, size_t n, bool import)
{
    char p[EWTP_POINTER_MAX];
    for (size_t i = 0; i < n; i++) {
        const struct ewtp_line *l = lines[i];
        need_num(v, ptr(p, "/declaration/lines/%zu/unit_price", i), &l->unit_price,
                 "the unit price");
        need_num(v, ptr(p, "/declaration/lines/%zu/amount", i), &l->amount, "the line total");
        country_mapped(v, ptr(p, "/declaration/lines/%zu/origin", i), l->origin, true,
                       cn_ext_line_str(v->m, l->line, "country_code"));
        const char *qty1 = cn_ext_line_str(v->m, l->line, "qty1");
        const char *unit1 = cn_ext_line_str(v->m, l->line, "unit1");
        if (qty1 == NULL || unit1 == NULL)
            ewtp_errors_add(v->errs, ptr(p, "/declaration/lines/%zu", i), "required",
                            "China customs needs the quantity in the first statutory unit: "
                            "ext.cn.lines[] qty1 and unit1 for line %lld",
                            (long long)l->line);
        if (import && cn_ext_str(v->m, "trade_mode") &&
            strcmp(cn_ext_str(v->m, "trade_mode"), "1210") == 0 &&
            cn_ext_line_str(v->m, l->line, "item_record_no") == NULL)
            ewtp_errors_add(v->errs, ptr(p, "/declaration/lines/%zu", i), "required",
                            "bonded import (1210) needs ext.cn.lines[].item_record_no");
    }
}

static void v_declaration(struct vctx *v, bool import)
{
    const struct ewtp_declaration *d = v->m->declaration;
    if (import && d->type != EWTP_DECL_LOW_VALUE)
        ewtp_errors_add(v->errs, "/declaration/type", "unsupported",
                        "the CEB inventory (621) is the low_value declaration of cross-border "
                        "retail imports");
    party_code(v, EWTP_ROLE_PLATFORM, "platform (ebp)");
    party_code(v, EWTP_ROLE_LOGISTICS, "logistics enterprise");
    declarant(v);
    need(v, "/declaration/order_number", d->order_number, "the order number");
    max_len(v, "/declaration/order_number", d->order_number, 60);
    need(v, "/declaration/waybill_number", d->waybill_number, "the waybill number");
    max_len(v, "/declaration/waybill_number", d->waybill_number, import ? 60 : 32);
    const char *co = d->customs_office;
    if (co == NULL)
        ewtp_errors_add(v->errs, "/declaration/customs_office", "required",
                        "China customs needs the 4-digit customs office (e.g. 2928 Hangzhou "
                        "e-commerce)");
    else if (strlen(co) != 4)
        ewtp_errors_add(v->errs, "/declaration/customs_office", "format",
                        "a China customs office code has 4 digits");
    need_num(v, "/declaration/gross_weight_kg", &d->gross_weight_kg, "the gross weight");
    need_num(v, "/declaration/net_weight_kg", &d->net_weight_kg, "the net weight");
    if (d->gross_weight_kg.text && d->net_weight_kg.text &&
        ewtp_dec_cmp(d->net_weight_kg.value, d->gross_weight_kg.value) > 0)
        ewtp_errors_add(v->errs, "/declaration/net_weight_kg", "rule",
                        "the net weight exceeds the gross weight");
    dec5(v, "/declaration/freight", &d->freight);
    dec5(v, "/declaration/insurance", &d->insurance);
    const char *mode = d->transport ? d->transport->mode : NULL;
    if (cn_ext_str(v->m, "traf_mode") == NULL) {
        if (mode == NULL)
            ewtp_errors_add(v->errs, "/declaration/transport/mode", "required",
                            "China customs needs the transport mode");
        else if (cn_code(&cn_codes_transport_mode, mode) == NULL)
            ewtp_errors_add(v->errs, "/declaration/transport/mode", "unsupported",
                            "transport mode %s has no China customs code; set ext.cn.traf_mode",
                            mode);
    }
    const char *tm = cn_ext_str(v->m, "trade_mode");
    if (import) {
        party_code(v, EWTP_ROLE_MERCHANT, "e-commerce enterprise (merchant, ebc)");
        buyer(v, true);
        const struct ewtp_party *cons = v->m->parties[EWTP_ROLE_CONSIGNEE];
        if (cons == NULL || cons->address == NULL)
            ewtp_errors_add(v->errs, "/parties/consignee/address", "required",
                            "China customs needs the consignee's address");
        cny(v, "/declaration/currency", d->currency);
        if (d->has_packages && d->packages != 1)
            ewtp_errors_add(v->errs, "/declaration/packages", "rule",
                            "a cross-border retail import inventory is one parcel (packNo 1)");
        if (tm && strcmp(tm, "9610") != 0 && strcmp(tm, "1210") != 0)
            ewtp_errors_add(v->errs, "/ext/cn/trade_mode", "format",
                            "import trade mode is 9610 (direct purchase) or 1210 (bonded)");
        if (tm == NULL || strcmp(tm, "9610") == 0) {
            if (d->transport == NULL || d->transport->means_id == NULL)
                ewtp_errors_add(v->errs, "/declaration/transport/means_id", "required",
                                "direct purchase import (9610) needs the means of transport");
            if (d->transport == NULL || d->transport->voyage == NULL)
                ewtp_errors_add(v->errs, "/declaration/transport/voyage", "required",
                                "direct purchase import (9610) needs the voyage/flight number");
            need(v, "/ext/cn/bill_no", cn_ext_str(v->m, "bill_no"),
                 "the master bill for direct purchase import (ext.cn.bill_no)");
            const struct ewtp_place *dep = d->transport ? d->transport->departure : NULL;
            country_mapped(v, "/declaration/transport/departure/country", dep ? dep->country : NULL,
                           true, NULL);
        } else {
            need(v, "/ext/cn/ems_no", cn_ext_str(v->m, "ems_no"),
                 "the bonded account book (ext.cn.ems_no)");
            need(v, "/ext/cn/area_code", cn_ext_str(v->m, "area_code"),
                 "the bonded area enterprise (ext.cn.area_code)");
            need(v, "/ext/cn/area_name", cn_ext_str(v->m, "area_name"),
                 "the bonded area enterprise name (ext.cn.area_name)");
        }
        struct ewtp_dec total = ewtp_dec_from_int(0);
        for (size_t i = 0; i < d->n_lines; i++)
            add(&total, &d->lines[i]->amount);
        add(&total, &d->freight);
        add(&total, &d->insurance);
        limit_check(v, "/declaration/lines", total);
    } else {
        if (v->m->parties[EWTP_ROLE_SELLER] == NULL)
            party_code(v, EWTP_ROLE_SELLER, "producer/seller (owner)");
        else
            party_code(v, EWTP_ROLE_SELLER, "producer/seller (owner)");
        if (v->m->parties[EWTP_ROLE_MERCHANT] == NULL)
            party_code(v, EWTP_ROLE_EXPORTER, "e-commerce enterprise (exporter)");
        need(v, "/ext/cn/port_code", cn_ext_str(v->m, "port_code"),
             "the 4-digit port of exit (ext.cn.port_code)");
        need(v, "/ext/cn/pod", cn_ext_str(v->m, "pod"), "the destination port (ext.cn.pod)");
        need(v, "/ext/cn/wrap_type", cn_ext_str(v->m, "wrap_type"),
             "the package type (ext.cn.wrap_type)");
        const struct ewtp_place *arr = d->transport ? d->transport->arrival : NULL;
        const struct ewtp_place *dep = d->transport ? d->transport->departure : NULL;
        country_mapped(v, "/declaration/transport/arrival/country", arr ? arr->country : NULL, true,
                       NULL);
        if (dep == NULL || dep->date == NULL)
            ewtp_errors_add(v->errs, "/declaration/transport/departure/date", "required",
                            "CEB603 needs the export date (ieDate)");
        mapped_currency(v, "/declaration/currency", d->currency);
        need(v, "/declaration/currency", d->currency, "the currency");
    }
    lines_common(v, d->lines, d->n_lines, import ? 99 : 100, true, 20, !import);
    v_lines_621(v, d->lines, d->n_lines, import);
}

static void v_cancel(struct vctx *v, bool import)
{
    const struct ewtp_declaration *d = v->m->declaration;
    if (empty(v->c->authority_ref))
        ewtp_errors_add(v->errs, "", "rule",
                        "a CEB inventory can only be cancelled once customs assigned its "
                        "inventory number (invtNo)");
    else if (strlen(v->c->authority_ref) > (import ? 18u : 20u))
        ewtp_errors_add(v->errs, "", "format",
                        "the authority reference is not an inventory number (invtNo)");
    if (empty(v->c->cancel_reason))
        ewtp_errors_add(v->errs, "", "required", "a CEB cancellation needs a reason");
    if (d->customs_office == NULL || strlen(d->customs_office) != 4)
        ewtp_errors_add(v->errs, "/declaration/customs_office", "required",
                        "the cancellation names the 4-digit customs office");
    declarant(v);
    if (import) {
        party_code(v, EWTP_ROLE_PLATFORM, "platform (ebp)");
        party_code(v, EWTP_ROLE_MERCHANT, "e-commerce enterprise (merchant, ebc)");
        party_code(v, EWTP_ROLE_LOGISTICS, "logistics enterprise");
        buyer(v, true);
    }
}

static void v_return(struct vctx *v)
{
    const struct ewtp_return *r = v->m->return_;
    party_code(v, EWTP_ROLE_PLATFORM, "platform (ebp)");
    party_code(v, EWTP_ROLE_MERCHANT, "e-commerce enterprise (merchant, ebc)");
    party_code(v, EWTP_ROLE_LOGISTICS, "logistics enterprise");
    declarant(v);
    buyer(v, true);
    need(v, "/return/declaration_ref", r->declaration_ref,
         "the inventory number (invtNo) of the cleared inventory");
    max_len(v, "/return/declaration_ref", r->declaration_ref, 18);
    need(v, "/return/order_number", r->order_number, "the order number");
    need(v, "/return/waybill_number", r->waybill_number, "the waybill number");
    need(v, "/return/reason", r->reason, "the reason of the return");
    const char *cc = cn_ext_str(v->m, "customs_code");
    if (cc == NULL)
        ewtp_errors_add(v->errs, "/ext/cn/customs_code", "required",
                        "CEB625 needs the 4-digit customs office of the inventory "
                        "(ext.cn.customs_code)");
    if (r->n_lines == 0)
        ewtp_errors_add(v->errs, "/return/lines", "required",
                        "CEB625 names the returned inventory lines");
    char p[EWTP_POINTER_MAX];
    if (r->n_lines > 99)
        ewtp_errors_add(v->errs, "/return/lines", "range", "at most 99 lines");
    for (size_t i = 0; i < r->n_lines; i++) {
        hs10(v, ptr(p, "/return/lines/%zu/hs_code", i), r->lines[i]->hs_code);
        need_num(v, ptr(p, "/return/lines/%zu/quantity", i), &r->lines[i]->quantity,
                 "the quantity returned");
        unit_mapped(v, ptr(p, "/return/lines/%zu/unit", i), r->lines[i]);
    }
}

static void v_manifest(struct vctx *v, bool import)
{
    const struct ewtp_manifest *mf = v->m->manifest;
    party_code(v, EWTP_ROLE_LOGISTICS, "logistics enterprise");
    if (mf->customs_office == NULL || strlen(mf->customs_office) != 4)
        ewtp_errors_add(v->errs, "/manifest/customs_office", "required",
                        "China customs needs the 4-digit customs office");
    const struct ewtp_transport *t = mf->transport;
    if (t == NULL || t->mode == NULL)
        ewtp_errors_add(v->errs, "/manifest/transport/mode", "required",
                        "China customs needs the transport mode");
    else if (cn_ext_str(v->m, "traf_mode") == NULL &&
             cn_code(&cn_codes_transport_mode, t->mode) == NULL)
        ewtp_errors_add(v->errs, "/manifest/transport/mode", "unsupported",
                        "transport mode %s has no China customs code; set ext.cn.traf_mode",
                        t->mode);
    if (t == NULL || t->means_id == NULL)
        ewtp_errors_add(v->errs, "/manifest/transport/means_id", "required",
                        "China customs needs the means of transport");
    if (t == NULL || t->voyage == NULL)
        ewtp_errors_add(v->errs, "/manifest/transport/voyage", "required",
                        "China customs needs the voyage/flight number");
    need(v, "/manifest/master_waybill", mf->master_waybill, "the master bill number");
    max_len(v, "/manifest/master_waybill", mf->master_waybill, 37);
    if (mf->n_waybills == 0)
        ewtp_errors_add(v->errs, "/manifest/waybills", "required",
                        "the list names at least one waybill");
    char p[EWTP_POINTER_MAX];
    for (size_t i = 0; i < mf->n_waybills; i++)
        max_len(v, ptr(p, "/manifest/waybills/%zu", i), mf->waybills[i], import ? 60 : 32);
    if (!import) {
        declarant(v);
        need_num(v, "/manifest/gross_weight_kg", &mf->gross_weight_kg, "the gross weight");
    }
}

static void v_summary(struct vctx *v)
{
    const struct ewtp_summary *s = v->m->summary;
    party_code(v, EWTP_ROLE_MERCHANT, "e-commerce enterprise (merchant, ebc)");
    declarant(v);
    if (s->customs_office == NULL || strlen(s->customs_office) != 4)
        ewtp_errors_add(v->errs, "/summary/customs_office", "required",
                        "China customs needs the 4-digit customs office");
    if (s->n_declarations == 0)
        ewtp_errors_add(v->errs, "/summary/declarations", "required",
                        "the summary lists the inventory numbers (invtNo) it covers");
    char p[EWTP_POINTER_MAX];
    for (size_t i = 0; i < s->n_declarations; i++)
        max_len(v, ptr(p, "/summary/declarations/%zu", i), s->declarations[i], 20);
}

/* ---- the three-document match of a 621, against the related messages ----------------- */

static bool same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static bool num_differs(const struct ewtp_num *a, const struct ewtp_num *b)
{
    return a->text && b->text && ewtp_dec_cmp(a->value, b->value) != 0;
}

static void match_order(struct vctx *v, const struct ewtp_message *om)
{
    const struct ewtp_declaration *d = v->m->declaration;
    const struct ewtp_order *o = om->order;
    char p[EWTP_POINTER_MAX];
    /* Only the fact of a mismatch: the order may belong to another tenant. */
    const char *ric = ewtp_party_id(v->m->parties[EWTP_ROLE_BUYER], "CN-RIC");
    const char *oric = ewtp_party_id(om->parties[EWTP_ROLE_BUYER], "CN-RIC");
    if (ric && oric && strcmp(ric, oric) != 0)
        ewtp_errors_add(v->errs, "/parties/buyer/ids", "rule",
                        "the buyer's ID number differs from the order's (three-document match)");
    const struct ewtp_party *b = v->m->parties[EWTP_ROLE_BUYER];
    const struct ewtp_party *ob = om->parties[EWTP_ROLE_BUYER];
    if (b && ob && b->name && ob->name && strcmp(b->name, ob->name) != 0)
        ewtp_errors_add(v->errs, "/parties/buyer/name", "rule",
                        "the buyer's name differs from the order's");
    const char *ebc = cn_party_code(v->m->parties[EWTP_ROLE_MERCHANT]);
    const char *oebc = cn_party_code(om->parties[EWTP_ROLE_MERCHANT]);
    if (ebc && oebc && strcmp(ebc, oebc) != 0)
        ewtp_errors_add(v->errs, "/parties/merchant/ids", "rule",
                        "the e-commerce enterprise differs from the order's");
    if (num_differs(&d->freight, &o->freight))
        ewtp_errors_add(v->errs, "/declaration/freight", "rule",
                        "the freight differs from the order's");
    for (size_t i = 0; i < d->n_lines; i++) {
        const struct ewtp_line *l = d->lines[i], *ol = NULL;
        for (size_t k = 0; k < o->n_lines; k++)
            if (o->lines[k]->line == l->line)
                ol = o->lines[k];
        if (ol == NULL) {
            ewtp_errors_add(v->errs, ptr(p, "/declaration/lines/%zu/line", i), "rule",
                            "the order has no line %lld (gnum must match the order)",
                            (long long)l->line);
            continue;
        }
        if (num_differs(&l->quantity, &ol->quantity))
            ewtp_errors_add(v->errs, ptr(p, "/declaration/lines/%zu/quantity", i), "rule",
                            "the quantity differs from the order line's");
        if (num_differs(&l->unit_price, &ol->unit_price))
            ewtp_errors_add(v->errs, ptr(p, "/declaration/lines/%zu/unit_price", i), "rule",
                            "the unit price differs from the order line's");
        if (num_differs(&l->amount, &ol->amount))
            ewtp_errors_add(v->errs, ptr(p, "/declaration/lines/%zu/amount", i), "rule",
                            "the line total differs from the order line's");
        const char *g = cn_ext_line_str(v->m, l->line, "name_cn");
        const char *og = cn_ext_line_str(om, ol->line, "name_cn");
        if (!same(g ? g : l->description, og ? og : ol->description))
            ewtp_errors_add(v->errs, ptr(p, "/declaration/lines/%zu/description", i), "rule",
                            "the goods name differs from the order line's");
    }
    if (o->n_lines != d->n_lines)
        ewtp_errors_add(v->errs, "/declaration/lines", "rule",
                        "the inventory has %zu lines, the order %zu (gnum 1:1 with the order)",
                        d->n_lines, o->n_lines);
}

/* Whether related message i is another tenant's: its mismatches are then reported as one
 * generic error (DECISIONS "Tenants and party codes": nothing of it is echoed, no pointer
 * tells which member differs, so nothing can be guessed member by member). */
static bool foreign(const struct vctx *v, size_t i)
{
    const char *tenant = v->c->related[i]->tenant;
    return tenant != NULL && !same(tenant, v->c->tenant);
}

/* Runs check(v, i) with its errors collected apart when related message i (or the order,
 * io) is another tenant's: returns true when such a check found a mismatch. */
static bool match_one(struct vctx *v, struct ewtp_errors *apart, bool is_foreign,
                      void (*check)(struct vctx *, const struct ewtp_message *, const void *),
                      const struct ewtp_message *r, const void *arg)
{
    if (!is_foreign) {
        check(v, r, arg);
        return false;
    }
    if (apart == NULL)
        return true; /* out of memory: fail closed, as one generic mismatch */
    struct ewtp_errors *own = v->errs;
    ewtp_errors_clear(apart);
    v->errs = apart;
    check(v, r, arg);
    v->errs = own;
    return ewtp_errors_blocking(apart) > 0;
}

static void check_order(struct vctx *v, const struct ewtp_message *om, const void *arg)
{
    (void)arg;
    match_order(v, om);
}

static void check_payment(struct vctx *v, const struct ewtp_message *r, const void *arg)
{
    const struct ewtp_declaration *d = v->m->declaration;
    const struct ewtp_message *order = arg;
    if (order && num_differs(&r->payment->amount, &order->order->paid_total))
        ewtp_errors_add(v->errs, "/declaration/order_number", "rule",
                        "the payment for this order does not equal the order's paid "
                        "total (three-document match)");
    if (d->payment_number && r->payment->number &&
        strcmp(d->payment_number, r->payment->number) != 0)
        ewtp_errors_add(v->errs, "/declaration/payment_number", "rule",
                        "differs from the payment transaction of this order");
}

static void check_waybill(struct vctx *v, const struct ewtp_message *r, const void *arg)
{
    (void)arg;
    const struct ewtp_declaration *d = v->m->declaration;
    if (r->waybill->order_number && !same(r->waybill->order_number, d->order_number))
        ewtp_errors_add(v->errs, "/declaration/waybill_number", "rule",
                        "this waybill belongs to another order");
    if (num_differs(&r->waybill->freight, &d->freight))
        ewtp_errors_add(v->errs, "/declaration/freight", "rule",
                        "the freight differs from the waybill's");
}

/* The three-document match. Within the tenant each mismatch has its precise pointer; a
 * mismatch with another tenant's order, payment or waybill is one `/declaration` rule error
 * that echoes nothing of it (issue 19: a buyer's ID number must not be guessable). */
static void match_related(struct vctx *v)
{
    const struct ewtp_declaration *d = v->m->declaration;
    const struct ewtp_message *order = NULL;
    bool order_foreign = false, mismatch = false;
    const char *platform = cn_party_code(v->m->parties[EWTP_ROLE_PLATFORM]);
    for (size_t i = 0; i < v->c->n_related; i++) {
        const struct ewtp_message *r = v->c->related[i]->msg;
        if (r == NULL || r->direction == EWTP_DIR_EXPORT)
            continue;
        /* The host hands the tenant's own messages first, newest first: the first match is
         * the one to compare with. */
        if (order == NULL && r->order && same(r->order->number, d->order_number) &&
            same(cn_party_code(r->parties[EWTP_ROLE_PLATFORM]), platform)) {
            order = r;
            order_foreign = foreign(v, i);
        }
    }
    struct ewtp_errors *apart = ewtp_errors_new();
    if (order)
        mismatch |= match_one(v, apart, order_foreign, check_order, order, NULL);
    for (size_t i = 0; i < v->c->n_related; i++) {
        const struct ewtp_message *r = v->c->related[i]->msg;
        if (r == NULL)
            continue;
        if (r->payment && same(r->payment->order_number, d->order_number) &&
            same(cn_party_code(r->parties[EWTP_ROLE_PLATFORM]), platform))
            mismatch |=
                match_one(v, apart, foreign(v, i) || order_foreign, check_payment, r, order);
        if (r->waybill && same(r->waybill->number, d->waybill_number) &&
            same(cn_party_code(r->parties[EWTP_ROLE_LOGISTICS]),
                 cn_party_code(v->m->parties[EWTP_ROLE_LOGISTICS])))
            mismatch |= match_one(v, apart, foreign(v, i), check_waybill, r, NULL);
    }
    ewtp_errors_free(apart);
    if (mismatch)
        ewtp_errors_add(v->errs, "/declaration", "rule",
                        "does not agree with the related messages of another tenant for this "
                        "order (three-document match)");
}

/* FACTS §4: a CEB411's amountPaid equals its order's acturalPaid. Checked when the order is
 * already known (a related message with the same platform code and order number); customs
 * checks it again at the 621's three-document match. Within the tenant the pointer is precise;
 * an order of another tenant (the platform, when a payment firm sends) gets one generic error
 * that echoes nothing of it. */
static void match_payment(struct vctx *v)
{
    const struct ewtp_payment *pm = v->m->payment;
    const char *platform = cn_party_code(v->m->parties[EWTP_ROLE_PLATFORM]);
    if (pm->amount.text == NULL || platform == NULL)
        return;
    for (size_t i = 0; i < v->c->n_related; i++) {
        const struct ewtp_message *r = v->c->related[i]->msg;
        if (r == NULL || r->order == NULL || r->direction == EWTP_DIR_EXPORT ||
            !same(r->order->number, pm->order_number) ||
            !same(cn_party_code(r->parties[EWTP_ROLE_PLATFORM]), platform) ||
            !num_differs(&pm->amount, &r->order->paid_total))
            continue;
        const char *tenant = v->c->related[i]->tenant;
        if (tenant == NULL || same(tenant, v->c->tenant))
            ewtp_errors_add(v->errs, "/payment/amount", "rule",
                            "the amount paid differs from the order's paid total (CEB411 "
                            "amountPaid must equal CEB311 acturalPaid)");
        else
            ewtp_errors_add(v->errs, "/payment", "rule",
                            "does not agree with the related order of this order number");
        return;
    }
}

void cn_validate(const void *state, const struct ewtp_call *c, struct ewtp_errors *errs)
{
    struct vctx v = {.st = state, .c = c, .m = c->msg, .errs = errs};
    v.body = ewtp_message_body_pointer(c->msg);
    if (v.body == NULL)
        return;
    validate_ext(&v);
    int no = cn_doc_number(c);
    if (no == 0) {
        ewtp_errors_add(errs, c->op == EWTP_OP_CANCEL ? "" : "/kind", "unsupported",
                        c->op == EWTP_OP_CANCEL
                            ? "only inventories (declarations) can be cancelled in CEB"
                            : "no CEB message for this kind, direction and event (see the cn "
                              "plugin's README)");
        return;
    }
    bool import = !cn_doc_is_export(no);
    switch (no) {
    case 311:
    case 303:
        v_order(&v, import);
        break;
    case 411:
    case 403:
        v_payment(&v, import);
        if (import)
            match_payment(&v);
        break;
    case 511:
    case 505:
        v_waybill(&v, import);
        break;
    case 513:
    case 507:
    case 509:
        v_status(&v, no);
        break;
    case 621:
    case 603:
        v_declaration(&v, import);
        if (import)
            match_related(&v);
        break;
    case 623:
    case 605:
        v_cancel(&v, import);
        break;
    case 625:
        v_return(&v);
        break;
    case 711:
    case 607:
        v_manifest(&v, import);
        break;
    case 701:
        v_summary(&v);
        break;
    default:
        break;
    }
}
