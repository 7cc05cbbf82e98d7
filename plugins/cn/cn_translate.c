/* The CEB documents (2022-05 schemas), their signature and the DXP envelope that goes to the
 * customs client's spool folder: translate. Element order follows the XSD sequences exactly
 * (xmllint validates every vector's output in tests/conformance.sh). */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include <ewtp/crypto.h>
#include <ewtp/dsig.h>

#include "cn.h"

struct tctx {
    const struct cn_state *st;
    const struct ewtp_call *c;
    const struct ewtp_message *m;
    struct ewtp_xml_writer *w;
    int no;
    char now14[16];
};

#define E(name, text) ewtp_xml_elem(t->w, "ceb", (name), (text))
#define OPEN(name) ewtp_xml_start(t->w, "ceb", (name))
#define CLOSE() ewtp_xml_end(t->w)

/* A decimal as CEB wants it: at most 5 decimals (validate refused a 6th significant one);
 * absent values are written as def (CEB's "0 when none"), or omitted when def is NULL. */
static void dec(struct tctx *t, const char *name, const struct ewtp_num *n, const char *def)
{
    if (n == NULL || n->text == NULL) {
        E(name, def);
        return;
    }
    struct ewtp_dec d = n->value;
    if (d.scale > 5)
        ewtp_dec_round(d, 5, &d);
    ewtp_xml_elem_dec(t->w, "ceb", name, &d);
}

/* A decimal string of ext.cn (validated). */
static void dec_text(struct tctx *t, const char *name, const char *s, const char *def)
{
    struct ewtp_num n = {0};
    if (s && ewtp_dec_parse(s, &n.value) == 0)
        n.text = s;
    dec(t, name, &n, def);
}

static const char *ext(struct tctx *t, const char *key)
{
    return cn_ext_str(t->m, key);
}

static const char *code_of(struct tctx *t, enum ewtp_role role)
{
    return cn_party_code(t->m->parties[role]);
}

/* Registered (Chinese) name from ext.cn, else the party's name. */
static const char *name_of(struct tctx *t, enum ewtp_role role, const char *ext_key)
{
    const char *v = ext_key ? ext(t, ext_key) : NULL;
    if (v)
        return v;
    return t->m->parties[role] ? t->m->parties[role]->name : NULL;
}

static const char *phone_of(struct tctx *t, enum ewtp_role role)
{
    return t->m->parties[role] ? t->m->parties[role]->phone : NULL;
}

/* The declarant (agent), with the instance's fallback. */
static const char *agent_code(struct tctx *t)
{
    const char *v = code_of(t, EWTP_ROLE_DECLARANT);
    return v ? v : t->st->agent_code;
}

static const char *agent_name(struct tctx *t)
{
    if (t->m->parties[EWTP_ROLE_DECLARANT])
        return name_of(t, EWTP_ROLE_DECLARANT, "agent_name_cn");
    return t->st->agent_name ? t->st->agent_name : t->st->agent_code;
}

/* The e-commerce enterprise: the merchant; for export the exporter when no merchant. */
static enum ewtp_role ebc_role(struct tctx *t)
{
    if (t->m->parties[EWTP_ROLE_MERCHANT] == NULL && t->m->parties[EWTP_ROLE_EXPORTER])
        return EWTP_ROLE_EXPORTER;
    return EWTP_ROLE_MERCHANT;
}

static const char *currency(const char *iso)
{
    const char *v = cn_code(&cn_codes_currency, iso);
    return v ? v : "142";
}

static const char *line_unit(struct tctx *t, const struct ewtp_line *l)
{
    const char *v = cn_ext_line_str(t->m, l->line, "unit_code");
    return v ? v : cn_unit(t->st, l->unit);
}

static const char *line_country(struct tctx *t, const struct ewtp_line *l, const char *alpha2)
{
    const char *v = cn_ext_line_str(t->m, l->line, "country_code");
    return v ? v : cn_code(&cn_codes_country, alpha2);
}

static const char *line_name(struct tctx *t, const struct ewtp_line *l)
{
    const char *v = cn_ext_line_str(t->m, l->line, "name_cn");
    return v ? v : l->description;
}

/* gmodel (specification for classification): ext.cn, else description|brand|model, the
 * customs habit of "|"-separated declaration elements. */
static const char *line_gmodel(struct tctx *t, const struct ewtp_line *l)
{
    const char *v = cn_ext_line_str(t->m, l->line, "gmodel");
    if (v)
        return v;
    return ewtp_arena_printf(t->c->arena, "%s%s%s%s%s", l->description ? l->description : "",
                             l->brand ? "|" : "", l->brand ? l->brand : "", l->model ? "|" : "",
                             l->model ? l->model : "");
}

static const char *date8(struct tctx *t, const char *date)
{
    if (date == NULL || strlen(date) != 10)
        return NULL;
    return ewtp_arena_printf(t->c->arena, "%.4s%.2s%.2s", date, date + 5, date + 8);
}

static const char *time14(struct tctx *t, const char *rfc3339)
{
    char b[16];
    return cn_time14_of(rfc3339, b) ? ewtp_arena_strdup(t->c->arena, b) : NULL;
}

static const char *traf_mode(struct tctx *t, const struct ewtp_transport *tr)
{
    const char *v = ext(t, "traf_mode");
    if (v)
        return v;
    return cn_code(&cn_codes_transport_mode, tr ? tr->mode : NULL);
}

/* guid, appType, appTime, appStatus: the head of every request. */
static void head(struct tctx *t, const char *guid)
{
    const char *app_type = ext(t, "app_type");
    const char *app_status = ext(t, "app_status");
    E("guid", guid);
    E("appType", app_type ? app_type : "1");
    E("appTime", t->now14);
    E("appStatus", app_status ? app_status : t->st->app_status);
}

static void buyer(struct tctx *t)
{
    const struct ewtp_party *b = t->m->parties[EWTP_ROLE_BUYER];
    E("buyerIdType", "1");
    E("buyerIdNumber", ewtp_party_id(b, "CN-RIC"));
    E("buyerName", b ? b->name : NULL);
    E("buyerTelephone", b ? b->phone : NULL);
}

static void parties_ebp_ebc(struct tctx *t)
{
    E("ebpCode", code_of(t, EWTP_ROLE_PLATFORM));
    E("ebpName", name_of(t, EWTP_ROLE_PLATFORM, "ebp_name_cn"));
    E("ebcCode", code_of(t, ebc_role(t)));
    E("ebcName", name_of(t, ebc_role(t), "ebc_name_cn"));
}

static void logistics(struct tctx *t)
{
    E("logisticsCode", code_of(t, EWTP_ROLE_LOGISTICS));
    E("logisticsName", name_of(t, EWTP_ROLE_LOGISTICS, "logistics_name_cn"));
}

/* ---- import ---------------------------------------------------------------------------- */

static void ceb311(struct tctx *t, const char *guid)
{
    const struct ewtp_order *o = t->m->order;
    const struct ewtp_party *cons = t->m->parties[EWTP_ROLE_CONSIGNEE];
    OPEN("Order");
    OPEN("OrderHead");
    head(t, guid);
    E("orderType", "I");
    E("orderNo", o->number);
    parties_ebp_ebc(t);
    dec(t, "goodsValue", &o->goods_value, "0");
    dec(t, "freight", &o->freight, "0");
    dec(t, "discount", &o->discount, "0");
    dec(t, "taxTotal", &o->tax_total, "0");
    dec(t, "acturalPaid", &o->paid_total, "0");
    E("currency", "142");
    E("buyerRegNo", ext(t, "buyer_reg_no"));
    const struct ewtp_party *b = t->m->parties[EWTP_ROLE_BUYER];
    E("buyerName", b ? b->name : NULL);
    E("buyerTelephone", b ? b->phone : NULL);
    E("buyerIdType", "1");
    E("buyerIdNumber", ewtp_party_id(b, "CN-RIC"));
    if (t->m->parties[EWTP_ROLE_PAYMENT_PROVIDER]) {
        E("payCode", code_of(t, EWTP_ROLE_PAYMENT_PROVIDER));
        E("payName", name_of(t, EWTP_ROLE_PAYMENT_PROVIDER, "pay_name_cn"));
    }
    E("payTransactionId", ext(t, "pay_transaction_id"));
    E("batchNumbers", ext(t, "batch_numbers"));
    E("consignee", cons ? cons->name : NULL);
    E("consigneeTelephone", cons ? cons->phone : NULL);
    E("consigneeAddress", cn_address(t->c->arena, cons));
    E("consigneeDistrict", ext(t, "consignee_district"));
    E("note", o->note);
    CLOSE();
    for (size_t i = 0; i < o->n_lines; i++) {
        const struct ewtp_line *l = o->lines[i];
        OPEN("OrderList");
        ewtp_xml_elem_int(t->w, "ceb", "gnum", l->line);
        E("itemNo", l->sku);
        E("itemName", line_name(t, l));
        E("gmodel", line_gmodel(t, l));
        E("itemDescribe", l->description);
        E("barCode", l->barcode);
        E("unit", line_unit(t, l));
        dec(t, "qty", &l->quantity, "0");
        dec(t, "price", &l->unit_price, "0");
        dec(t, "totalPrice", &l->amount, "0");
        E("currency", "142");
        E("country", line_country(t, l, l->origin));
        CLOSE();
    }
    CLOSE();
}

static void ceb411(struct tctx *t, const char *guid)
{
    const struct ewtp_payment *p = t->m->payment;
    const struct ewtp_party *b = t->m->parties[EWTP_ROLE_BUYER];
    OPEN("Payment");
    OPEN("PaymentHead");
    head(t, guid);
    E("payCode", code_of(t, EWTP_ROLE_PAYMENT_PROVIDER));
    E("payName", name_of(t, EWTP_ROLE_PAYMENT_PROVIDER, "pay_name_cn"));
    E("payTransactionId", p->number);
    E("orderNo", p->order_number);
    E("ebpCode", code_of(t, EWTP_ROLE_PLATFORM));
    E("ebpName", name_of(t, EWTP_ROLE_PLATFORM, "ebp_name_cn"));
    E("payerIdType", "1");
    E("payerIdNumber", ewtp_party_id(b, "CN-RIC"));
    E("payerName", b ? b->name : NULL);
    E("telephone", b ? b->phone : NULL);
    dec(t, "amountPaid", &p->amount, "0");
    E("currency", "142");
    E("payTime", time14(t, p->paid_at));
    CLOSE();
    CLOSE();
}

static void ceb511(struct tctx *t, const char *guid)
{
    const struct ewtp_waybill *wb = t->m->waybill;
    const struct ewtp_party *cons = t->m->parties[EWTP_ROLE_CONSIGNEE];
    OPEN("Logistics");
    OPEN("LogisticsHead");
    head(t, guid);
    logistics(t);
    E("logisticsNo", wb->number);
    E("billNo", ext(t, "bill_no"));
    E("orderNo", wb->order_number);
    dec(t, "freight", &wb->freight, NULL);
    dec_text(t, "insuredFee", ext(t, "insured_fee"), NULL);
    E("currency", "142");
    dec(t, "weight", &wb->gross_weight_kg, "0");
    ewtp_xml_elem_int(t->w, "ceb", "packNo", wb->has_packages ? wb->packages : 1);
    E("goodsInfo", wb->goods_description);
    E("consignee", cons ? cons->name : NULL);
    E("consigneeAddress", cn_address(t->c->arena, cons));
    E("consigneeTelephone", cons ? cons->phone : NULL);
    CLOSE();
    CLOSE();
}

static void ceb513(struct tctx *t, const char *guid)
{
    const struct ewtp_status *s = t->m->status;
    OPEN("LogisticsStatus");
    head(t, guid);
    logistics(t);
    E("logisticsNo", s->waybill_number);
    E("logisticsStatus", "S"); /* signed for by the consignee */
    E("logisticsTime", time14(t, s->at));
    CLOSE();
}

/* itemName to barCode: the same in the lines of both inventories (621 and 603). */
static void inventory_goods(struct tctx *t, const struct ewtp_line *l)
{
    E("itemName", line_name(t, l));
    E("gcode", l->hs_code);
    E("gname", line_name(t, l));
    E("gmodel", line_gmodel(t, l));
    E("barCode", l->barcode ? l->barcode : "无"); /* the spec's "none" */
}

static void inventory_line_621(struct tctx *t, const struct ewtp_line *l)
{
    const struct ewtp_message *m = t->m;
    OPEN("InventoryList");
    ewtp_xml_elem_int(t->w, "ceb", "gnum", l->line);
    E("itemRecordNo", cn_ext_line_str(m, l->line, "item_record_no"));
    E("itemNo", l->sku);
    inventory_goods(t, l);
    E("country", line_country(t, l, l->origin));
    E("tradeCountry", cn_ext_line_str(m, l->line, "trade_country"));
    E("currency", "142");
    dec(t, "qty", &l->quantity, "0");
    E("unit", line_unit(t, l));
    dec_text(t, "qty1", cn_ext_line_str(m, l->line, "qty1"), "0");
    E("unit1", cn_ext_line_str(m, l->line, "unit1"));
    dec_text(t, "qty2", cn_ext_line_str(m, l->line, "qty2"), NULL);
    E("unit2", cn_ext_line_str(m, l->line, "unit2"));
    dec(t, "price", &l->unit_price, "0");
    dec(t, "totalPrice", &l->amount, "0");
    CLOSE();
}

static void ceb621(struct tctx *t, const char *guid)
{
    const struct ewtp_declaration *d = t->m->declaration;
    const struct ewtp_transport *tr = d->transport;
    const char *tm = ext(t, "trade_mode") ? ext(t, "trade_mode") : "9610";
    bool bonded = strcmp(tm, "1210") == 0;
    const char *port = ext(t, "port_code");
    const char *assure = ext(t, "assure_code");
    OPEN("Inventory");
    OPEN("InventoryHead");
    head(t, guid);
    E("orderNo", d->order_number);
    parties_ebp_ebc(t);
    E("logisticsNo", d->waybill_number);
    logistics(t);
    E("copNo", cn_cop_no(t->c));
    E("assureCode", assure ? assure : agent_code(t));
    E("emsNo", ext(t, "ems_no"));
    E("ieFlag", "I");
    E("declTime", ewtp_arena_strndup(t->c->arena, t->now14, 8));
    E("customsCode", d->customs_office);
    E("portCode", port ? port : d->customs_office);
    E("ieDate", date8(t, tr && tr->arrival ? tr->arrival->date : NULL));
    buyer(t);
    E("consigneeAddress", cn_address(t->c->arena, t->m->parties[EWTP_ROLE_CONSIGNEE]));
    E("agentCode", agent_code(t));
    E("agentName", agent_name(t));
    E("areaCode", ext(t, "area_code"));
    E("areaName", ext(t, "area_name"));
    E("tradeMode", tm);
    E("trafMode", traf_mode(t, tr));
    E("trafNo", tr ? tr->means_id : NULL);
    E("voyageNo", tr ? tr->voyage : NULL);
    E("billNo", ext(t, "bill_no"));
    E("loctNo", ext(t, "loct_no"));
    E("licenseNo", ext(t, "license_no"));
    E("country",
      bonded ? "142"
             : cn_code(&cn_codes_country, tr && tr->departure ? tr->departure->country : NULL));
    dec(t, "freight", &d->freight, "0");
    dec(t, "insuredFee", &d->insurance, "0");
    E("currency", "142");
    E("wrapType", ext(t, "wrap_type"));
    ewtp_xml_elem_int(t->w, "ceb", "packNo", d->has_packages ? d->packages : 1);
    dec(t, "grossWeight", &d->gross_weight_kg, "0");
    dec(t, "netWeight", &d->net_weight_kg, "0");
    CLOSE();
    for (size_t i = 0; i < d->n_lines; i++)
        inventory_line_621(t, d->lines[i]);
    CLOSE();
}

/* customsCode to reason: one sequence in the 623 cancel and the 625 refund head. */
static void invt_head(struct tctx *t, const char *customs, const char *order_no,
                      const char *logistics_no, const char *invt_no, const char *reason)
{
    E("customsCode", customs);
    E("orderNo", order_no);
    parties_ebp_ebc(t);
    E("logisticsNo", logistics_no);
    logistics(t);
    E("copNo", cn_cop_no(t->c));
    E("invtNo", invt_no);
    buyer(t);
    E("agentCode", agent_code(t));
    E("agentName", agent_name(t));
    E("reason", reason);
}

static void ceb623(struct tctx *t, const char *guid)
{
    const struct ewtp_declaration *d = t->m->declaration;
    OPEN("InvtCancel");
    head(t, guid);
    invt_head(t, d->customs_office, d->order_number, d->waybill_number, t->c->authority_ref,
              t->c->cancel_reason);
    CLOSE();
}

static void ceb625(struct tctx *t, const char *guid)
{
    const struct ewtp_return *r = t->m->return_;
    OPEN("InvtRefund");
    OPEN("InvtRefundHead");
    head(t, guid);
    invt_head(t, ext(t, "customs_code"), r->order_number, r->waybill_number, r->declaration_ref,
              r->reason);
    CLOSE();
    for (size_t i = 0; i < r->n_lines; i++) {
        const struct ewtp_line *l = r->lines[i];
        OPEN("InvtRefundList");
        ewtp_xml_elem_int(t->w, "ceb", "gnum", l->line);
        E("gcode", l->hs_code);
        E("gname", line_name(t, l));
        dec(t, "qty", &l->quantity, "0");
        E("unit", line_unit(t, l));
        CLOSE();
    }
    CLOSE();
}

/* The waybills of a manifest (711 and 607), numbered from 1. */
static void waybill_list(struct tctx *t, const char *elem, const struct ewtp_manifest *mf)
{
    for (size_t i = 0; i < mf->n_waybills; i++) {
        OPEN(elem);
        ewtp_xml_elem_int(t->w, "ceb", "gnum", (int64_t)i + 1);
        E("logisticsNo", mf->waybills[i]);
        CLOSE();
    }
}

/* The site operator of 711/507: the declarant, else the transmitting enterprise. */
static void operator(struct tctx *t)
{
    if (t->m->parties[EWTP_ROLE_DECLARANT]) {
        E("operatorCode", code_of(t, EWTP_ROLE_DECLARANT));
        E("operatorName", name_of(t, EWTP_ROLE_DECLARANT, "operator_name_cn"));
    } else {
        E("operatorCode", t->st->cop_code);
        E("operatorName", t->st->cop_name);
    }
}

static void ceb711(struct tctx *t, const char *guid)
{
    const struct ewtp_manifest *mf = t->m->manifest;
    OPEN("Delivery");
    OPEN("DeliveryHead");
    head(t, guid);
    E("customsCode", mf->customs_office);
    E("copNo", cn_cop_no(t->c));
    operator(t);
    E("ieFlag", "I");
    E("trafMode", traf_mode(t, mf->transport));
    E("trafNo", mf->transport ? mf->transport->means_id : NULL);
    E("voyageNo", mf->transport ? mf->transport->voyage : NULL);
    E("billNo", mf->master_waybill);
    logistics(t);
    CLOSE();
    waybill_list(t, "DeliveryList", mf);
    CLOSE();
}

/* ---- export ---------------------------------------------------------------------------- */

static void ceb303(struct tctx *t, const char *guid)
{
    const struct ewtp_order *o = t->m->order;
    const char *cur = currency(o->currency);
    OPEN("Order");
    OPEN("OrderHead");
    head(t, guid);
    E("orderType", "E");
    E("orderNo", o->number);
    parties_ebp_ebc(t);
    dec(t, "goodsValue", &o->goods_value, "0");
    dec(t, "freight", &o->freight, "0");
    E("currency", cur);
    E("note", o->note);
    CLOSE();
    for (size_t i = 0; i < o->n_lines; i++) {
        const struct ewtp_line *l = o->lines[i];
        OPEN("OrderList");
        ewtp_xml_elem_int(t->w, "ceb", "gnum", l->line);
        E("itemNo", l->sku);
        E("itemName", line_name(t, l));
        E("itemDescribe", l->description);
        E("barCode", l->barcode);
        E("unit", line_unit(t, l));
        E("currency", cur);
        dec(t, "qty", &l->quantity, "0");
        dec(t, "price", &l->unit_price, "0");
        dec(t, "totalPrice", &l->amount, "0");
        CLOSE();
    }
    CLOSE();
}

static void ceb403(struct tctx *t, const char *guid)
{
    const struct ewtp_payment *p = t->m->payment;
    OPEN("Receipts");
    head(t, guid);
    parties_ebp_ebc(t);
    E("orderNo", p->order_number);
    E("payCode", code_of(t, EWTP_ROLE_PAYMENT_PROVIDER));
    E("payName", name_of(t, EWTP_ROLE_PAYMENT_PROVIDER, "pay_name_cn"));
    E("payNo", p->number);
    dec(t, "charge", &p->amount, "0");
    E("currency", currency(p->currency));
    E("accountingDate", time14(t, p->paid_at));
    CLOSE();
}

static void ceb505(struct tctx *t, const char *guid)
{
    const struct ewtp_waybill *wb = t->m->waybill;
    OPEN("Logistics");
    head(t, guid);
    logistics(t);
    E("logisticsNo", wb->number);
    dec(t, "freight", &wb->freight, "0");
    dec_text(t, "insuredFee", ext(t, "insured_fee"), "0");
    E("currency", currency(wb->currency));
    dec(t, "grossWeight", &wb->gross_weight_kg, "0");
    ewtp_xml_elem_int(t->w, "ceb", "packNo", wb->has_packages ? wb->packages : 1);
    E("goodsInfo", wb->goods_description);
    if (t->m->parties[ebc_role(t)]) {
        E("ebcCode", code_of(t, ebc_role(t)));
        E("ebcName", name_of(t, ebc_role(t), "ebc_name_cn"));
        E("ebcTelephone", phone_of(t, ebc_role(t)));
    }
    CLOSE();
}

static void ceb507_509(struct tctx *t, const char *guid)
{
    const struct ewtp_status *s = t->m->status;
    bool arrival = t->no == 507;
    OPEN(arrival ? "Arrival" : "Departure");
    OPEN(arrival ? "ArrivalHead" : "DepartureHead");
    head(t, guid);
    E("customsCode", ext(t, "customs_code"));
    E("copNo", cn_cop_no(t->c));
    if (arrival) {
        operator(t);
        E("loctNo", ext(t, "loct_no"));
        E("ieFlag", "E");
        E("trafMode", ext(t, "traf_mode"));
        E("billNo", ext(t, "bill_no"));
        E("domesticTrafNo", ext(t, "domestic_traf_no"));
        logistics(t);
    } else {
        logistics(t);
        E("trafMode", ext(t, "traf_mode"));
        E("billNo", ext(t, "bill_no"));
        E("leaveTime", time14(t, s->at));
    }
    E("msgCount", "1");
    E("msgSeqNo", "1");
    CLOSE();
    OPEN(arrival ? "ArrivalList" : "DepartureList");
    E("gnum", "1");
    E("logisticsNo", s->waybill_number);
    CLOSE();
    CLOSE();
}

static void ceb603(struct tctx *t, const char *guid)
{
    const struct ewtp_declaration *d = t->m->declaration;
    const struct ewtp_transport *tr = d->transport;
    const char *cur = currency(d->currency);
    const char *tm = ext(t, "trade_mode");
    const char *sf = ext(t, "statistics_flag");
    OPEN("Inventory");
    OPEN("InventoryHead");
    head(t, guid);
    E("customsCode", d->customs_office);
    E("ebpCode", code_of(t, EWTP_ROLE_PLATFORM));
    E("ebpName", name_of(t, EWTP_ROLE_PLATFORM, "ebp_name_cn"));
    E("orderNo", d->order_number);
    logistics(t);
    E("logisticsNo", d->waybill_number);
    E("copNo", cn_cop_no(t->c));
    E("ieFlag", "E");
    E("portCode", ext(t, "port_code"));
    E("ieDate", date8(t, tr && tr->departure ? tr->departure->date : NULL));
    E("statisticsFlag", sf ? sf : "A");
    E("agentCode", agent_code(t));
    E("agentName", agent_name(t));
    E("ebcCode", code_of(t, ebc_role(t)));
    E("ebcName", name_of(t, ebc_role(t), "ebc_name_cn"));
    E("ownerCode", code_of(t, EWTP_ROLE_SELLER));
    E("ownerName", name_of(t, EWTP_ROLE_SELLER, NULL));
    E("emsNo", ext(t, "ems_no"));
    E("tradeMode", tm ? tm : "9610");
    E("trafMode", traf_mode(t, tr));
    E("trafName", tr ? tr->means_id : NULL);
    E("voyageNo", tr ? tr->voyage : NULL);
    E("billNo", ext(t, "bill_no"));
    E("loctNo", ext(t, "loct_no"));
    E("licenseNo", ext(t, "license_no"));
    E("country", cn_code(&cn_codes_country, tr && tr->arrival ? tr->arrival->country : NULL));
    E("POD", ext(t, "pod"));
    dec(t, "freight", &d->freight, "0");
    E("fCurrency", cur);
    E("fFlag", "3"); /* total amount */
    dec(t, "insuredFee", &d->insurance, "0");
    E("iCurrency", cur);
    E("iFlag", "3");
    E("wrapType", ext(t, "wrap_type"));
    ewtp_xml_elem_int(t->w, "ceb", "packNo", d->has_packages ? d->packages : 1);
    dec(t, "grossWeight", &d->gross_weight_kg, "0");
    dec(t, "netWeight", &d->net_weight_kg, "0");
    CLOSE();
    for (size_t i = 0; i < d->n_lines; i++) {
        const struct ewtp_line *l = d->lines[i];
        const struct ewtp_message *m = t->m;
        OPEN("InventoryList");
        ewtp_xml_elem_int(t->w, "ceb", "gnum", l->line);
        E("itemNo", l->sku);
        E("itemRecordNo", cn_ext_line_str(m, l->line, "item_record_no"));
        inventory_goods(t, l);
        E("country",
          line_country(t, l, tr && tr->arrival ? tr->arrival->country : NULL)); /* destination */
        E("currency", cur);
        dec(t, "qty", &l->quantity, "0");
        dec_text(t, "qty1", cn_ext_line_str(m, l->line, "qty1"), "0");
        dec_text(t, "qty2", cn_ext_line_str(m, l->line, "qty2"), NULL);
        E("unit", line_unit(t, l));
        E("unit1", cn_ext_line_str(m, l->line, "unit1"));
        E("unit2", cn_ext_line_str(m, l->line, "unit2"));
        dec(t, "price", &l->unit_price, "0");
        dec(t, "totalPrice", &l->amount, "0");
        CLOSE();
    }
    CLOSE();
}

static void ceb605(struct tctx *t, const char *guid)
{
    OPEN("InvtCancel");
    head(t, guid);
    E("customsCode", t->m->declaration->customs_office);
    E("copNo", cn_cop_no(t->c));
    E("invtNo", t->c->authority_ref);
    E("reason", t->c->cancel_reason);
    E("agentCode", agent_code(t));
    E("agentName", agent_name(t));
    E("ebcCode", code_of(t, ebc_role(t)));
    E("ebcName", name_of(t, ebc_role(t), "ebc_name_cn"));
    CLOSE();
}

static void ceb607(struct tctx *t, const char *guid)
{
    const struct ewtp_manifest *mf = t->m->manifest;
    const struct ewtp_transport *tr = mf->transport;
    OPEN("WayBill");
    OPEN("WayBillHead");
    head(t, guid);
    E("customsCode", mf->customs_office);
    E("copNo", cn_cop_no(t->c));
    E("agentCode", agent_code(t));
    E("agentName", agent_name(t));
    E("loctNo", ext(t, "loct_no"));
    E("trafMode", traf_mode(t, tr));
    E("trafName", tr ? tr->means_id : NULL);
    E("voyageNo", tr ? tr->voyage : NULL);
    E("billNo", mf->master_waybill);
    E("domesticTrafNo", ext(t, "domestic_traf_no"));
    dec(t, "grossWeight", &mf->gross_weight_kg, "0");
    logistics(t);
    E("msgCount", "1");
    E("msgSeqNo", "1");
    CLOSE();
    waybill_list(t, "WayBillList", mf);
    CLOSE();
}

static void ceb701(struct tctx *t, const char *guid)
{
    const struct ewtp_summary *s = t->m->summary;
    const char *sf = ext(t, "summary_flag"), *inf = ext(t, "item_name_flag");
    OPEN("SummaryApply");
    OPEN("SummaryApplyHead");
    head(t, guid);
    E("customsCode", s->customs_office);
    E("copNo", cn_cop_no(t->c));
    E("agentCode", agent_code(t));
    E("agentName", agent_name(t));
    E("ebcCode", code_of(t, EWTP_ROLE_MERCHANT));
    E("ebcName", name_of(t, EWTP_ROLE_MERCHANT, "ebc_name_cn"));
    E("declAgentCode", agent_code(t));
    E("declAgentName", agent_name(t));
    if (s->period && s->period->start && s->period->end) {
        E("startTime", ewtp_arena_printf(t->c->arena, "%s000000", date8(t, s->period->start)));
        E("endTime", ewtp_arena_printf(t->c->arena, "%s235959", date8(t, s->period->end)));
    }
    E("loctNo", ext(t, "loct_no"));
    E("summaryFlag", sf ? sf : "1");
    E("itemNameFlag", inf ? inf : "1");
    E("msgCount", "1");
    E("msgSeqNo", "1");
    CLOSE();
    for (size_t i = 0; i < s->n_declarations; i++) {
        OPEN("SummaryApplyList");
        E("invtNo", s->declarations[i]);
        CLOSE();
    }
    CLOSE();
}

/* ---- document, signature, envelope ----------------------------------------------------- */

static int build(struct tctx *t, const char *root, const char *guid, const char **xml, size_t *len)
{
    t->w = ewtp_xml_writer_new(EWTP_XML_INDENT);
    if (t->w == NULL)
        return -EWTP_ENOMEM;
    ewtp_xml_start(t->w, "ceb", root);
    ewtp_xml_ns(t->w, "ceb", CN_NS_CEB);
    ewtp_xml_attr(t->w, NULL, "guid", guid);
    ewtp_xml_attr(t->w, NULL, "version", "1.0");
    switch (t->no) {
    case 311:
        ceb311(t, guid);
        break;
    case 411:
        ceb411(t, guid);
        break;
    case 511:
        ceb511(t, guid);
        break;
    case 513:
        ceb513(t, guid);
        break;
    case 621:
        ceb621(t, guid);
        break;
    case 623:
        ceb623(t, guid);
        break;
    case 625:
        ceb625(t, guid);
        break;
    case 711:
        ceb711(t, guid);
        break;
    case 303:
        ceb303(t, guid);
        break;
    case 403:
        ceb403(t, guid);
        break;
    case 505:
        ceb505(t, guid);
        break;
    case 507:
    case 509:
        ceb507_509(t, guid);
        break;
    case 603:
        ceb603(t, guid);
        break;
    case 605:
        ceb605(t, guid);
        break;
    case 607:
        ceb607(t, guid);
        break;
    case 701:
        ceb701(t, guid);
        break;
    default:
        break;
    }
    OPEN("BaseTransfer");
    E("copCode", t->st->cop_code);
    E("copName", t->st->cop_name);
    E("dxpMode", "DXP");
    E("dxpId", t->st->dxp_id);
    CLOSE();
    CLOSE();
    int rc = ewtp_xml_writer_finish(t->w, t->c->arena, xml, len);
    ewtp_xml_writer_free(t->w);
    t->w = NULL;
    return rc;
}

/* 621/623/625/711 must carry ds:Signature (XSD); the others may (sign_optional). */
static bool must_sign(int no)
{
    return no == 621 || no == 623 || no == 625 || no == 711;
}

static int sign(const struct cn_state *st, const struct ewtp_call *c, const char **xml, size_t *len)
{
    static const char *const ns[] = {"ceb", CN_NS_CEB, NULL};
    struct ewtp_dsig_options opt;
    ewtp_dsig_options_init(&opt, st->sign_alg, st->sign_key);
    opt.ns = ns;
    /* The export schema wants ds:Signature before ExtendMessage (we write none). */
    opt.before_xpath = "ceb:ExtendMessage";
    opt.keyinfo = EWTP_DSIG_KEYNAME | EWTP_DSIG_X509_CERT;
    opt.key_name_text = st->cert_no; /* certificate number; NULL: the serial in hex */
    opt.signature_method_uri = st->signature_method_uri;
    opt.digest_method_uri = st->digest_method_uri;
    opt.flags = EWTP_DSIG_PRETTY | (st->sm2_raw ? EWTP_DSIG_SM2_RAW : 0u);
    const char *out = NULL;
    size_t out_len = 0;
    int rc = ewtp_dsig_sign(c->host, &opt, *xml, *len, c->arena, &out, &out_len);
    if (rc == 0) {
        *xml = out;
        *len = out_len;
    }
    return rc;
}

/* The DXP terminal-node envelope: the signed CEB document, Base64, addressed to the
 * cross-border system (import and export have different receivers). */
static int envelope(struct tctx *t, const char *msg_type, const char *cop_msg_id, const char *xml,
                    size_t len, const char **out, size_t *out_len)
{
    struct ewtp_xml_writer *w = ewtp_xml_writer_new(EWTP_XML_INDENT);
    if (w == NULL)
        return -EWTP_ENOMEM;
    char created[40];
    ewtp_time_format(t->c->now_ms, 480, created, sizeof(created));
    created[19] = '\0'; /* yyyy-mm-ddThh:mm:ss, Beijing time, as the spec shows it */
    ewtp_xml_start(w, "dxp", "DxpMsg");
    ewtp_xml_ns(w, "dxp", CN_NS_DXP);
    ewtp_xml_attr(w, NULL, "ver", "1.0");
    ewtp_xml_start(w, "dxp", "TransInfo");
    ewtp_xml_elem(w, "dxp", "CopMsgId", cop_msg_id);
    ewtp_xml_elem(w, "dxp", "SenderId", t->st->dxp_id);
    ewtp_xml_start(w, "dxp", "ReceiverIds");
    ewtp_xml_elem(w, "dxp", "ReceiverId",
                  cn_doc_is_export(t->no) ? t->st->receiver_export : t->st->receiver_import);
    ewtp_xml_end(w);
    ewtp_xml_elem(w, "dxp", "CreatTime", created);
    ewtp_xml_elem(w, "dxp", "MsgType", msg_type);
    ewtp_xml_end(w);
    ewtp_xml_elem(w, "dxp", "Data", ewtp_base64_encode(t->c->arena, xml, len));
    ewtp_xml_end(w);
    int rc = ewtp_xml_writer_finish(w, t->c->arena, out, out_len);
    ewtp_xml_writer_free(w);
    return rc;
}

static int add_xml(struct ewtp_out *out, const char *name, const char *xml, size_t len,
                   bool is_signed)
{
    struct ewtp_document doc = {.size = sizeof(struct ewtp_document),
                                .name = name,
                                .content_type = "application/xml",
                                .data = xml,
                                .len = len,
                                .signed_ = is_signed};
    return ewtp_out_add_document(out, &doc);
}

int cn_translate(const void *state, const struct ewtp_call *c, struct ewtp_out *out,
                 struct ewtp_errors *errs)
{
    const struct cn_state *st = state;
    struct tctx t = {.st = st, .c = c, .m = c->msg};
    t.no = cn_doc_number(c);
    if (t.no == 0) {
        ewtp_errors_add(errs, "/kind", "unsupported", "no CEB message for this message");
        return -EWTP_EINVAL;
    }
    cn_time14(c->now_ms, t.now14);
    char root[24], what[16];
    snprintf(root, sizeof(root), "CEB%dMessage", t.no);
    snprintf(what, sizeof(what), "CEB%d", t.no);
    const char *guid = cn_guid(c, what);
    const char *xml = NULL;
    size_t len = 0;
    int rc = build(&t, root, guid, &xml, &len);
    if (rc != 0)
        return rc;
    bool is_signed = false;
    if (!c->unsigned_ && st->sign_key && (st->sign_optional || must_sign(t.no))) {
        if ((rc = sign(st, c, &xml, &len)) != 0)
            return rc;
        is_signed = true;
    }
    const char *name = ewtp_arena_printf(c->arena, "%s-%s.xml", root, c->msg->id);
    if ((rc = add_xml(out, name, xml, len, is_signed)) != 0)
        return rc;
    /* CopMsgId is stable per message and document: a resend after a crash is the same DXP
     * message, and a CEB900 names it (oriCopMsgId). */
    char dxp_what[24];
    snprintf(dxp_what, sizeof(dxp_what), "DXP-%d", t.no);
    const char *cop_msg_id = cn_guid(c, dxp_what);
    const char *env = NULL;
    size_t env_len = 0;
    if ((rc = envelope(&t, root, cop_msg_id, xml, len, &env, &env_len)) != 0)
        return rc;
    const char *env_name = ewtp_arena_printf(c->arena, "DxpMsg-%s-%s.xml", root, c->msg->id);
    if ((rc = add_xml(out, env_name, env, env_len, is_signed)) != 0)
        return rc;
    struct ewtp_request req = {
        .size = sizeof(struct ewtp_request),
        .method = "SPOOL",
        .path = ewtp_arena_printf(c->arena, "%s_%s.xml", root, cop_msg_id),
        .body = env,
        .body_len = env_len,
        .body_doc = env_name,
        .final = false,
    };
    return ewtp_out_add_request(out, &req);
}
