/* Rwanda EBM 2.1: invoices and refunds through the VSDC JSON API (FACTS.md B, C.1, C.2).
 *
 * One instance is one VSDC device: a TIN and a branch (bhfId). Its invoices are numbered
 * gap-free by the host's chain for the ordering key rw:ebm:<tenant>:<tin>:<bhf> (invcNo = the
 * chain position). The host keeps one state blob per key for us (ABI 1.2, c->key_state): the
 * device's initialisation data and the item codes already registered, as compact JSON
 *   {"v":1,"sdcId":..,"mrcNo":..,"dvcId":..,"lastSaleInvcNo":N,"items":["RW2NTXU0001234",..]}
 * Without it the first translate of a branch sends /initializer/selectInitInfo alone; its
 * answer is kept (c->key_state_out) with the chain's first number (init's lastSaleInvcNo + 1,
 * or the setting first_invoice_number when larger) and the message is sent again at once
 * (RETRY without delay): initialisation happens once per branch, never on each start.
 * Then each translate sends /items/saveItems for every item of the invoice not yet
 * registered, and /trnsSales/saveSales, in that order. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "rw.h"

#define RW_MAX_ITEMS_KEPT 4000 /* registered item codes kept per branch (older ones re-sent) */

static bool has_key_state_abi(const struct ewtp_call *c)
{
    return EWTP_HAS(c, struct ewtp_call, key_state_len);
}

const char *rw_inv_ordering_key(const struct rw_state *st, const struct ewtp_call *c)
{
    return ewtp_arena_printf(c->arena, "rw:ebm:%s:%s:%s", c->tenant ? c->tenant : "",
                             st->tin ? st->tin : "-", st->bhf_id);
}

const char *rw_inv_relation_key(const struct rw_state *st, struct ewtp_arena *a, const char *number)
{
    return ewtp_arena_printf(a, "rw:inv:%s:%s:%s", st->tin ? st->tin : "-", st->bhf_id, number);
}

/* ---- numbers ------------------------------------------------------------------------------- */

/* A decimal as a VSDC JSON number: rounded half-up to 2 places, trailing zeros dropped
 * ("7000.00" -> 7000, "10.50" -> 10.5), as the official examples write them. */
static const char *num(struct ewtp_arena *a, struct ewtp_dec d)
{
    char buf[EWTP_DEC_STRMAX];
    if (ewtp_dec_format_places(d, 2, buf, sizeof(buf)) < 0)
        return "0";
    char *dot = strchr(buf, '.');
    if (dot) {
        size_t n = strlen(buf);
        while (n > 0 && buf[n - 1] == '0')
            buf[--n] = '\0';
        if (n > 0 && buf[n - 1] == '.')
            buf[--n] = '\0';
    }
    if (strcmp(buf, "-0") == 0)
        return "0";
    return ewtp_arena_strdup(a, buf);
}

static int cat_index(const char *cat)
{
    if (cat && cat[0] >= 'A' && cat[0] <= 'D' && cat[1] == '\0')
        return cat[0] - 'A';
    return -1;
}

/* round(gross * rate / (100 + rate)) to places: the VAT inside a VAT-inclusive amount. */
static int tax_in_gross(struct ewtp_dec gross, struct ewtp_dec rate, unsigned places,
                        struct ewtp_dec *out)
{
    struct ewtp_dec num_, den;
    if (ewtp_dec_mul(gross, rate, &num_) != 0 ||
        ewtp_dec_add(rate, ewtp_dec_from_int(100), &den) != 0)
        return -EWTP_ERANGE;
    return ewtp_dec_div(num_, den, places, out);
}

static unsigned rwf_places(void)
{
    unsigned mu = 0;
    return ewtp_code_currency("RWF", &mu) ? mu : 0;
}

/* ---- lines --------------------------------------------------------------------------------- */

struct rw_line {
    const struct ewtp_line *l;
    int cat;               /* 0..3 = A..D */
    struct ewtp_dec tax;   /* the line's VAT */
    struct ewtp_dec gross; /* amount + tax: VSDC's splyAmt/taxblAmt/totAmt */
    struct ewtp_dec price; /* gross / quantity: the VAT-inclusive unit price, 2 places */
    const char *qty_unit, *pkg_unit, *item_type, *item_class, *item_code, *origin;
};

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* The item code (FACTS B.7): origin (2) + product type (1) + packaging unit (2) + quantity
 * unit (2, a one-letter unit padded with X as in the official example RW1NTXU0000006,
 * longer ones cut to 2) + a 7-digit sequence: the SKU when it is at most 7 digits, else a
 * hash of the SKU (or of the description without one). ext.rw.lines[n].item_code wins. */
static const char *item_code(struct ewtp_arena *a, const struct rw_line *rl)
{
    const char *sku = rl->l->sku;
    bool numeric = sku && strlen(sku) <= 7 && strlen(sku) > 0;
    for (const char *p = sku; numeric && *p; p++)
        numeric = *p >= '0' && *p <= '9';
    unsigned long n = 0;
    if (numeric)
        for (const char *p = sku; *p; p++)
            n = n * 10 + (unsigned long)(*p - '0');
    else
        n = fnv1a(sku ? sku : rl->l->description) % 10000000ul;
    char qu[3];
    if (strlen(rl->qty_unit) == 1) {
        qu[0] = 'X';
        qu[1] = rl->qty_unit[0];
    } else {
        qu[0] = rl->qty_unit[0];
        qu[1] = rl->qty_unit[1];
    }
    qu[2] = '\0';
    return ewtp_arena_printf(a, "%.2s%.1s%.2s%s%07lu", rl->origin, rl->item_type, rl->pkg_unit, qu,
                             n);
}

/* Fills rl for line i; errors (with pointers) go to errs when it is not NULL. */
static bool line_of(const struct rw_state *st, const struct ewtp_call *c, size_t i,
                    struct rw_line *rl, struct ewtp_errors *errs)
{
    const struct ewtp_message *m = c->msg;
    const struct ewtp_line *l = m->invoice->lines[i];
    const struct ewtp_json *xl = rw_ext_line(m, i);
    struct ewtp_arena *a = c->arena;
    bool ok = true;
    memset(rl, 0, sizeof(*rl));
    rl->l = l;
    rl->cat = -1;
    const struct ewtp_tax *t = l->n_taxes ? l->taxes[0] : NULL;
    if (t == NULL) {
        ewtp_errors_add(errs, rw_ptr(a, "/invoice/lines/%zu/taxes", i), "required",
                        "every EBM line has one tax category (A exempt, B 18 %%, C, D)");
        ok = false;
    } else {
        if (l->n_taxes > 1) {
            ewtp_errors_add(errs, rw_ptr(a, "/invoice/lines/%zu/taxes/1", i), "rule",
                            "an EBM line has exactly one tax category");
            ok = false;
        }
        rl->cat = cat_index(t->category);
        if (rl->cat < 0) {
            ewtp_errors_add(errs, rw_ptr(a, "/invoice/lines/%zu/taxes/0/category", i), "format",
                            "\"%s\" is not an EBM tax category (A exempt, B 18 %%, C, D)",
                            t->category ? t->category : "");
            ok = false;
        } else if (t->rate.text && ewtp_dec_cmp(t->rate.value, st->rate[rl->cat]) != 0) {
            char want[EWTP_DEC_STRMAX];
            ewtp_dec_format(st->rate[rl->cat], want, sizeof(want));
            ewtp_errors_add(errs, rw_ptr(a, "/invoice/lines/%zu/taxes/0/rate", i), "rule",
                            "EBM category %s is taxed at %s %%, not %s %%", t->category, want,
                            t->rate.text);
            ok = false;
        }
        if (t->amount.text == NULL) {
            ewtp_errors_add(errs, rw_ptr(a, "/invoice/lines/%zu/taxes/0/amount", i), "required",
                            "the VSDC needs the tax amount of every line");
            ok = false;
        } else {
            rl->tax = t->amount.value;
        }
    }
    const char *unit = l->unit ? l->unit : "H87";
    const char *u = ewtp_code_table_get(&rw_codes_unit, unit, 1);
    if (u == NULL) {
        ewtp_errors_add(errs, rw_ptr(a, "/invoice/lines/%zu/unit", i), "format",
                        "unit %s has no RRA quantity unit (known: H87 C62 NAR KGM LTR MTR MTK MTQ "
                        "SET PR TNE GRM)",
                        unit);
        ok = false;
    } else {
        rl->qty_unit = u;
    }
    if (l->description && strlen(l->description) > 200) {
        ewtp_errors_add(errs, rw_ptr(a, "/invoice/lines/%zu/description", i), "format",
                        "the VSDC takes item names of at most 200 characters");
        ok = false;
    }
    if (l->quantity.text == NULL || l->unit_price.text == NULL || l->amount.text == NULL) {
        ewtp_errors_add(errs, rw_ptr(a, "/invoice/lines/%zu", i), "required",
                        "the VSDC needs quantity, unit_price and amount on every line");
        ok = false;
    } else if (!ewtp_dec_is_negative(l->quantity.value) && ewtp_dec_is_zero(l->quantity.value)) {
        ewtp_errors_add(errs, rw_ptr(a, "/invoice/lines/%zu/quantity", i), "range",
                        "an EBM receipt line needs a quantity above zero");
        ok = false;
    }
    rl->pkg_unit = ewtp_json_get_string(xl, "package_unit");
    if (rl->pkg_unit == NULL)
        rl->pkg_unit = "NT";
    rl->item_type = ewtp_json_get_string(xl, "item_type");
    if (rl->item_type == NULL)
        rl->item_type = l->kind == EWTP_LINE_SERVICE ? "3" : "2";
    rl->item_class = ewtp_json_get_string(xl, "item_class_code");
    if (rl->item_class == NULL) {
        ewtp_errors_add(errs, rw_ptr(a, "/ext/rw/lines/%zu/item_class_code", i), "required",
                        "the VSDC needs the 10-digit item classification code of every line "
                        "(RRA's /itemClass/selectItemsClass list)");
        ok = false;
    }
    rl->origin = l->origin ? l->origin : "RW";
    if (!ok)
        return false;
    if (ewtp_dec_add(l->amount.value, rl->tax, &rl->gross) != 0)
        return false;
    /* The VAT-inclusive unit price from the line's own gross, so that prc x qty gives back the
     * amount the VSDC taxes (3500 x 2 = 7000 in the official example, where unit_price x 1.18
     * would give 3499.88). */
    if (ewtp_dec_div(rl->gross, l->quantity.value, 2, &rl->price) != 0)
        return false;
    rl->item_code = ewtp_json_get_string(xl, "item_code");
    if (rl->item_code == NULL)
        rl->item_code = item_code(a, rl);
    return true;
}

/* ---- validate ------------------------------------------------------------------------------ */

static bool nine_digits(const char *s)
{
    if (s == NULL || strlen(s) != 9)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* The original invoice's VSDC number (orgInvcNo): ext.rw.original_invoice_no, else the third
 * part of the authority reference ("SDC010000005/27/41") of the related original. 0: unknown;
 * *known (may be NULL) tells whether the original is at least known to the gateway (it may
 * still be on its way: the note waits for it). */
static int64_t original_no(const struct rw_state *st, const struct ewtp_call *c, bool *known)
{
    const struct ewtp_invoice *inv = c->msg->invoice;
    int64_t n = 0;
    if (known)
        *known = false;
    if (ewtp_json_int(ewtp_json_get(rw_ext(c->msg), "original_invoice_no"), &n))
        return n;
    (void)st;
    for (size_t i = 0; inv->original_invoice && i < c->n_related; i++) {
        const struct ewtp_related *r = c->related[i];
        const struct ewtp_message *o = r->msg;
        if (o == NULL || o->invoice == NULL || o->invoice->number == NULL ||
            strcmp(o->invoice->number, inv->original_invoice) != 0 ||
            (c->tenant && r->tenant && strcmp(c->tenant, r->tenant) != 0))
            continue;
        if (known)
            *known = true;
        if (r->authority_ref == NULL)
            continue;
        const char *slash = strrchr(r->authority_ref, '/');
        long long v = 0;
        if (slash && sscanf(slash + 1, "%lld", &v) == 1 && v > 0)
            return v;
    }
    return 0;
}

/* The note's original is known (its number given, or the message itself is here). */
static bool known_original(const struct rw_state *st, const struct ewtp_call *c)
{
    bool known = false;
    return original_no(st, c, &known) > 0 || known;
}

void rw_inv_validate(const struct rw_state *st, const struct ewtp_call *c, struct ewtp_errors *errs)
{
    const struct ewtp_message *m = c->msg;
    const struct ewtp_invoice *inv = m->invoice;
    struct ewtp_arena *a = c->arena;
    if (inv == NULL)
        return;
    if (st->tin == NULL || st->device_serial == NULL) {
        ewtp_errors_add(errs, "", "unsupported",
                        "this Rwanda instance is not a VSDC device: its settings need tin and "
                        "device_serial to send EBM invoices");
        return;
    }
    if (inv->type == EWTP_INV_DEBIT_NOTE) {
        ewtp_errors_add(errs, "/invoice/type", "unsupported",
                        "EBM has no debit note: issue a new sales receipt for the extra amount");
        return;
    }
    const struct ewtp_party *seller = ewtp_message_party(m, EWTP_ROLE_SELLER);
    const char *stin = seller ? ewtp_party_id(seller, "TIN") : NULL;
    if (seller == NULL)
        ewtp_errors_add(errs, "/parties/seller", "required", "an EBM receipt needs the seller");
    else if (stin == NULL || strcmp(stin, st->tin) != 0)
        ewtp_errors_add(errs, "/parties/seller/ids", "rule",
                        "the seller's TIN (scheme TIN) must be the TIN of this VSDC device");
    const struct ewtp_party *buyer = ewtp_message_party(m, EWTP_ROLE_BUYER);
    const char *btin = buyer ? ewtp_party_id(buyer, "TIN") : NULL;
    if (btin && !nine_digits(btin))
        ewtp_errors_add(errs, "/parties/buyer/ids", "format",
                        "a Rwandan TIN has 9 digits (custTin)");
    if (buyer && buyer->name && strlen(buyer->name) > 60)
        ewtp_errors_add(errs, "/parties/buyer/name", "format",
                        "the VSDC takes buyer names of at most 60 characters (custNm)");
    if (inv->currency && strcmp(inv->currency, "RWF") != 0)
        ewtp_errors_add(errs, "/invoice/currency", "rule",
                        "EBM receipts are in Rwandan francs: send the invoice in RWF");
    if (inv->note && strlen(inv->note) > 400)
        ewtp_errors_add(errs, "/invoice/note", "format",
                        "the VSDC takes remarks of at most 400 characters");
    if (inv->type != EWTP_INV_INVOICE) {
        if (inv->original_invoice == NULL)
            ewtp_errors_add(errs, "/invoice/original_invoice", "required",
                            "an EBM refund receipt names the original invoice");
        else if (!known_original(st, c))
            ewtp_errors_add(errs, "/invoice/original_invoice", "rule",
                            "the original invoice is not known: send the original through this "
                            "gateway first, or give ext.rw.original_invoice_no");
    }
    if (inv->n_lines > 999)
        ewtp_errors_add(errs, "/invoice/lines", "size", "an EBM receipt has at most 999 lines");
    /* Per line: category, rate, unit, classification; then the VAT inside the VAT-inclusive
     * amounts, per line and per category, within rounding (FACTS C.4.6). */
    struct ewtp_dec gross[4], tax[4];
    size_t n_in[4] = {0};
    for (int k = 0; k < 4; k++)
        gross[k] = tax[k] = ewtp_dec_from_int(0);
    unsigned places = rwf_places();
    struct ewtp_dec unit = ewtp_dec_minor_unit(places);
    for (size_t i = 0; i < inv->n_lines && i < 999; i++) {
        struct rw_line rl;
        if (!line_of(st, c, i, &rl, errs))
            continue;
        struct ewtp_dec want;
        if (tax_in_gross(rl.gross, st->rate[rl.cat], places, &want) == 0 &&
            !ewtp_dec_within(want, rl.tax, unit))
            ewtp_errors_add(errs, rw_ptr(a, "/invoice/lines/%zu/taxes/0/amount", i), "rule",
                            "the VSDC takes the VAT from the VAT-inclusive amount: %s for "
                            "this line, more than one franc from the one sent",
                            num(a, want));
        ewtp_dec_add(gross[rl.cat], rl.gross, &gross[rl.cat]);
        ewtp_dec_add(tax[rl.cat], rl.tax, &tax[rl.cat]);
        n_in[rl.cat]++;
    }
    for (int k = 0; k < 4; k++) {
        struct ewtp_dec want, tol;
        if (n_in[k] == 0 || tax_in_gross(gross[k], st->rate[k], places, &want) != 0 ||
            ewtp_dec_mul(unit, ewtp_dec_from_int((int64_t)n_in[k]), &tol) != 0)
            continue;
        if (!ewtp_dec_within(want, tax[k], tol))
            ewtp_errors_add(errs, "/invoice/totals/tax", "rule",
                            "category %c: the VAT of the VAT-inclusive total is %s, the lines "
                            "sum to %s (more than rounding apart)",
                            'A' + k, num(a, want), num(a, tax[k]));
    }
}

/* ---- translate ----------------------------------------------------------------------------- */

/* YYYYMMDDhhmmss (or YYYYMMDD when date_only) in Kigali time (UTC+2, no DST). */
static const char *kigali(struct ewtp_arena *a, const char *rfc3339, int64_t fallback_ms,
                          bool date_only)
{
    int64_t ms = fallback_ms;
    if (rfc3339)
        ewtp_time_parse(rfc3339, &ms);
    char buf[40];
    ewtp_time_format(ms, 120, buf, sizeof(buf)); /* 2026-11-22T14:00:00+02:00 */
    if (date_only)
        return ewtp_arena_printf(a, "%.4s%.2s%.2s", buf, buf + 5, buf + 8);
    return ewtp_arena_printf(a, "%.4s%.2s%.2s%.2s%.2s%.2s", buf, buf + 5, buf + 8, buf + 11,
                             buf + 14, buf + 17);
}

static const struct ewtp_json *key_state(const struct ewtp_call *c)
{
    if (!has_key_state_abi(c) || c->key_state == NULL || c->key_state_len == 0)
        return NULL;
    const struct ewtp_json *j = ewtp_json_parse(c->arena, c->key_state, c->key_state_len, NULL);
    return ewtp_json_type(j) == EWTP_JSON_OBJECT ? j : NULL;
}

static bool item_known(const struct ewtp_json *ks, const char *code_)
{
    const struct ewtp_json *items = ewtp_json_get(ks, "items");
    for (size_t i = 0; i < ewtp_json_size(items); i++) {
        const char *s = ewtp_json_string(ewtp_json_index(items, i));
        if (s && strcmp(s, code_) == 0)
            return true;
    }
    return false;
}

static void envelope(struct ewtp_jsonw *w, const struct rw_state *st)
{
    ewtp_jsonw_kv_string(w, "tin", st->tin);
    ewtp_jsonw_kv_string(w, "bhfId", st->bhf_id);
}

static void kv_null_or(struct ewtp_jsonw *w, const char *key, const char *v)
{
    ewtp_jsonw_key(w, key);
    ewtp_jsonw_string(w, v); /* NULL writes null */
}

static int add_post(const struct rw_state *st, const struct ewtp_call *c, struct ewtp_out *out,
                    const char *path, const char *doc_name, struct ewtp_jsonw *w, bool final)
{
    const char *body = NULL;
    size_t len = 0;
    int rc = ewtp_jsonw_finish(w, &body, &len);
    if (rc != 0)
        return rc;
    struct ewtp_document doc =
        EWTP_DOCUMENT_INIT(.name = doc_name, .content_type = "application/json", .data = body,
                           .len = len);
    if ((rc = ewtp_out_add_document(out, &doc)) != 0)
        return rc;
    const struct ewtp_header **h = ewtp_arena_alloc(c->arena, 4 * sizeof(*h));
    if (h == NULL)
        return -EWTP_ENOMEM;
    size_t nh = 0;
    h[nh++] = ewtp_header_new(c->arena, "Content-Type", "application/json", false);
    if (st->cmc_key_file && EWTP_HOST_HAS(c->host, read_secret)) {
        /* OSCU-style endpoints want the communication key (FACTS B.1); a local VSDC keeps it. */
        const char *key = NULL;
        size_t klen = 0;
        if (c->host->read_secret(c->host->ctx, st->cmc_key_file, c->arena, &key, &klen) == 0) {
            while (klen > 0 && (key[klen - 1] == '\n' || key[klen - 1] == '\r'))
                klen--;
            h[nh++] = ewtp_header_new(c->arena, "tin", st->tin, false);
            h[nh++] = ewtp_header_new(c->arena, "bhfId", st->bhf_id, false);
            h[nh++] =
                ewtp_header_new(c->arena, "cmcKey", ewtp_arena_strndup(c->arena, key, klen), true);
        }
    }
    struct ewtp_request req =
        EWTP_REQUEST_INIT(.method = "POST", .path = path, .headers = h, .n_headers = nh,
                          .body = body, .body_len = len, .body_doc = doc_name, .final = final);
    return ewtp_out_add_request(out, &req);
}

static int translate_init(const struct rw_state *st, const struct ewtp_call *c,
                          struct ewtp_out *out)
{
    struct ewtp_jsonw *w = ewtp_jsonw_new(c->arena, false);
    if (w == NULL)
        return -EWTP_ENOMEM;
    ewtp_jsonw_object_begin(w);
    envelope(w, st);
    ewtp_jsonw_kv_string(w, "dvcSrlNo", st->device_serial);
    ewtp_jsonw_object_end(w);
    return add_post(st, c, out, "/initializer/selectInitInfo", "selectInitInfo.json", w, false);
}

static int translate_item(const struct rw_state *st, const struct ewtp_call *c,
                          struct ewtp_out *out, const struct rw_line *rl, size_t i)
{
    struct ewtp_arena *a = c->arena;
    struct ewtp_jsonw *w = ewtp_jsonw_new(a, false);
    if (w == NULL)
        return -EWTP_ENOMEM;
    ewtp_jsonw_object_begin(w);
    envelope(w, st);
    ewtp_jsonw_kv_string(w, "itemCd", rl->item_code);
    ewtp_jsonw_kv_string(w, "itemClsCd", rl->item_class);
    ewtp_jsonw_kv_string(w, "itemTyCd", rl->item_type);
    ewtp_jsonw_kv_string(w, "itemNm", rl->l->description);
    kv_null_or(w, "itemStdNm", NULL);
    ewtp_jsonw_kv_string(w, "orgnNatCd", rl->origin);
    ewtp_jsonw_kv_string(w, "pkgUnitCd", rl->pkg_unit);
    ewtp_jsonw_kv_string(w, "qtyUnitCd", rl->qty_unit);
    ewtp_jsonw_kv_string(w, "taxTyCd", rl->l->taxes[0]->category);
    kv_null_or(w, "btchNo", NULL);
    kv_null_or(w, "bcd", rl->l->barcode);
    /* Member order and the price groups as in the official example. */
    const char *price = num(a, rl->price);
    ewtp_jsonw_kv_decimal(w, "dftPrc", price);
    for (int k = 1; k <= 4; k++)
        ewtp_jsonw_kv_decimal(w, ewtp_arena_printf(a, "grpPrcL%d", k), price);
    kv_null_or(w, "grpPrcL5", NULL);
    kv_null_or(w, "addInfo", NULL);
    kv_null_or(w, "sftyQty", NULL);
    ewtp_jsonw_kv_string(w, "isrcAplcbYn", "N");
    ewtp_jsonw_kv_string(w, "useYn", "Y");
    ewtp_jsonw_kv_string(w, "regrNm", st->operator_name);
    ewtp_jsonw_kv_string(w, "regrId", st->operator_id);
    ewtp_jsonw_kv_string(w, "modrNm", st->operator_name);
    ewtp_jsonw_kv_string(w, "modrId", st->operator_id);
    ewtp_jsonw_object_end(w);
    return add_post(st, c, out, "/items/saveItems",
                    ewtp_arena_printf(a, "saveItems-%zu-%s.json", i + 1, rl->item_code), w, false);
}

static const char *payment_type(const struct ewtp_message *m)
{
    const char *t = ewtp_json_get_string(rw_ext(m), "payment_type");
    if (t)
        return t;
    const struct ewtp_payment_means *pm = m->invoice->payment_means;
    const char *t2 = pm ? ewtp_code_table_get(&rw_codes_payment, pm->code, 1) : NULL;
    return t2 ? t2 : "01";
}

static int translate_sale(const struct rw_state *st, const struct ewtp_call *c,
                          struct ewtp_out *out, const struct rw_line *rls, size_t n)
{
    const struct ewtp_message *m = c->msg;
    const struct ewtp_invoice *inv = m->invoice;
    const struct ewtp_json *ext = rw_ext(m);
    struct ewtp_arena *a = c->arena;
    bool refund = inv->type != EWTP_INV_INVOICE;
    const struct ewtp_party *buyer = ewtp_message_party(m, EWTP_ROLE_BUYER);
    const char *btin = buyer ? ewtp_party_id(buyer, "TIN") : NULL;
    struct ewtp_dec gross[4], tax[4], tg = ewtp_dec_from_int(0), tt = ewtp_dec_from_int(0);
    bool goods = false;
    for (int k = 0; k < 4; k++)
        gross[k] = tax[k] = ewtp_dec_from_int(0);
    for (size_t i = 0; i < n; i++) {
        if (ewtp_dec_add(gross[rls[i].cat], rls[i].gross, &gross[rls[i].cat]) != 0 ||
            ewtp_dec_add(tax[rls[i].cat], rls[i].tax, &tax[rls[i].cat]) != 0)
            return -EWTP_ERANGE;
        goods = goods || strcmp(rls[i].item_type, "3") != 0;
    }
    for (int k = 0; k < 4; k++)
        if (ewtp_dec_add(tg, gross[k], &tg) != 0 || ewtp_dec_add(tt, tax[k], &tt) != 0)
            return -EWTP_ERANGE;
    const char *cfm = kigali(a, inv->issued_at, c->now_ms, false);
    const char *purchase_accept = ewtp_json_get_string(ext, "purchase_accept");
    if (purchase_accept == NULL)
        purchase_accept = "N";

    struct ewtp_jsonw *w = ewtp_jsonw_new(a, false);
    if (w == NULL)
        return -EWTP_ENOMEM;
    ewtp_jsonw_object_begin(w);
    envelope(w, st);
    ewtp_jsonw_kv_int(w, "invcNo", (int64_t)c->chain->number);
    ewtp_jsonw_kv_int(w, "orgInvcNo", refund ? original_no(st, c, NULL) : 0);
    kv_null_or(w, "custTin", btin);
    kv_null_or(w, "custNm", buyer ? buyer->name : NULL);
    const char *sales_type = ewtp_json_get_string(ext, "sales_type");
    ewtp_jsonw_kv_string(w, "salesTyCd", sales_type ? sales_type : "N");
    ewtp_jsonw_kv_string(w, "rcptTyCd", refund ? "R" : "S");
    ewtp_jsonw_kv_string(w, "pmtTyCd", payment_type(m));
    ewtp_jsonw_kv_string(w, "salesSttsCd", refund ? "05" : "02");
    ewtp_jsonw_kv_string(w, "cfmDt", cfm);
    ewtp_jsonw_kv_string(w, "salesDt", ewtp_arena_strndup(a, cfm, 8));
    kv_null_or(w, "stockRlsDt", goods ? cfm : NULL);
    kv_null_or(w, "cnclReqDt", NULL);
    kv_null_or(w, "cnclDt", NULL);
    kv_null_or(w, "rfdDt", refund ? cfm : NULL);
    const char *reason = ewtp_json_get_string(ext, "refund_reason");
    kv_null_or(w, "rfdRsnCd", refund ? (reason ? reason : "06") : NULL);
    ewtp_jsonw_kv_int(w, "totItemCnt", (int64_t)n);
    static const char *const cats[4] = {"A", "B", "C", "D"};
    for (int k = 0; k < 4; k++)
        ewtp_jsonw_kv_decimal(w, ewtp_arena_printf(a, "taxblAmt%s", cats[k]), num(a, gross[k]));
    for (int k = 0; k < 4; k++)
        ewtp_jsonw_kv_decimal(w, ewtp_arena_printf(a, "taxRt%s", cats[k]), num(a, st->rate[k]));
    for (int k = 0; k < 4; k++)
        ewtp_jsonw_kv_decimal(w, ewtp_arena_printf(a, "taxAmt%s", cats[k]), num(a, tax[k]));
    ewtp_jsonw_kv_decimal(w, "totTaxblAmt", num(a, tg));
    ewtp_jsonw_kv_decimal(w, "totTaxAmt", num(a, tt));
    ewtp_jsonw_kv_decimal(w, "totAmt", num(a, tg));
    ewtp_jsonw_kv_string(w, "prchrAcptcYn", purchase_accept);
    kv_null_or(w, "remark", inv->note);
    ewtp_jsonw_kv_string(w, "regrId", st->operator_id);
    ewtp_jsonw_kv_string(w, "regrNm", st->operator_name);
    ewtp_jsonw_kv_string(w, "modrId", st->operator_id);
    ewtp_jsonw_kv_string(w, "modrNm", st->operator_name);
    ewtp_jsonw_key(w, "receipt");
    ewtp_jsonw_object_begin(w);
    /* The buyer's TIN travels in the header (custTin); the official example leaves the
     * receipt's copy null, and so do we. */
    kv_null_or(w, "custTin", NULL);
    kv_null_or(w, "custMblNo", buyer ? buyer->phone : NULL);
    /* rptNo: "report number", not documented further (FACTS C.1 [?]): the invoice number. */
    ewtp_jsonw_kv_int(w, "rptNo", (int64_t)c->chain->number);
    /* The receipt's trade name (20 characters) and address are the branch's, as printed on
     * its receipts: settings, not the seller's legal name. */
    kv_null_or(w, "trdeNm", st->trade_name);
    kv_null_or(w, "adrs", st->branch_address);
    kv_null_or(w, "topMsg", st->receipt_top);
    kv_null_or(w, "btmMsg", st->receipt_bottom);
    ewtp_jsonw_kv_string(w, "prchrAcptcYn", purchase_accept);
    ewtp_jsonw_object_end(w);
    ewtp_jsonw_key(w, "itemList");
    ewtp_jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++) {
        const struct rw_line *rl = &rls[i];
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_int(w, "itemSeq", rl->l->line);
        ewtp_jsonw_kv_string(w, "itemCd", rl->item_code);
        ewtp_jsonw_kv_string(w, "itemClsCd", rl->item_class);
        ewtp_jsonw_kv_string(w, "itemNm", rl->l->description);
        kv_null_or(w, "bcd", rl->l->barcode);
        ewtp_jsonw_kv_string(w, "pkgUnitCd", rl->pkg_unit);
        ewtp_jsonw_kv_decimal(w, "pkg", num(a, rl->l->quantity.value));
        ewtp_jsonw_kv_string(w, "qtyUnitCd", rl->qty_unit);
        ewtp_jsonw_kv_decimal(w, "qty", num(a, rl->l->quantity.value));
        ewtp_jsonw_kv_decimal(w, "prc", num(a, rl->price));
        ewtp_jsonw_kv_decimal(w, "splyAmt", num(a, rl->gross));
        ewtp_jsonw_kv_int(w, "dcRt", 0);
        ewtp_jsonw_kv_int(w, "dcAmt", 0);
        kv_null_or(w, "isrccCd", NULL);
        kv_null_or(w, "isrccNm", NULL);
        kv_null_or(w, "isrcRt", NULL);
        kv_null_or(w, "isrcAmt", NULL);
        ewtp_jsonw_kv_string(w, "taxTyCd", rl->l->taxes[0]->category);
        ewtp_jsonw_kv_decimal(w, "taxblAmt", num(a, rl->gross));
        ewtp_jsonw_kv_decimal(w, "taxAmt", num(a, rl->tax));
        ewtp_jsonw_kv_decimal(w, "totAmt", num(a, rl->gross));
        ewtp_jsonw_object_end(w);
    }
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_object_end(w);
    return add_post(
        st, c, out, "/trnsSales/saveSales",
        ewtp_arena_printf(a, "saveSales-%llu.json", (unsigned long long)c->chain->number), w, true);
}

static struct rw_line *lines_all(const struct rw_state *st, const struct ewtp_call *c,
                                 struct ewtp_errors *errs, size_t *n)
{
    const struct ewtp_invoice *inv = c->msg->invoice;
    *n = inv->n_lines;
    struct rw_line *rls = ewtp_arena_alloc(c->arena, (inv->n_lines + 1) * sizeof(*rls));
    if (rls == NULL)
        return NULL;
    for (size_t i = 0; i < inv->n_lines; i++)
        if (!line_of(st, c, i, &rls[i], errs))
            return NULL;
    return rls;
}

int rw_inv_translate(const struct rw_state *st, const struct ewtp_call *c, struct ewtp_out *out,
                     struct ewtp_errors *errs)
{
    if (c->msg->invoice == NULL)
        return -EWTP_EINVAL;
    if (c->chain == NULL || c->chain->number == 0) {
        ewtp_errors_add(errs, "", "unsupported",
                        "an EBM invoice needs its branch's next invoice number from the host's "
                        "chain (the host gave none)");
        return -EWTP_EINVAL;
    }
    const struct ewtp_json *ks = key_state(c);
    /* A host that keeps the branch state (ABI 1.2) and has none yet: initialise first. */
    if (has_key_state_abi(c) && ks == NULL)
        return translate_init(st, c, out);
    if (c->msg->invoice->type != EWTP_INV_INVOICE && original_no(st, c, NULL) == 0) {
        /* The note waited for its original (classify): without its number now, the original
         * never got one. */
        ewtp_errors_add(errs, "/invoice/original_invoice", "rule",
                        "the original invoice has no VSDC number (it was not approved): a "
                        "refund receipt needs its orgInvcNo");
        return -EWTP_EINVAL;
    }
    size_t n = 0;
    struct rw_line *rls = lines_all(st, c, errs, &n);
    if (rls == NULL)
        return ewtp_errors_blocking(errs) ? -EWTP_EINVAL : -EWTP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (item_known(ks, rls[i].item_code))
            continue;
        bool earlier = false;
        for (size_t k = 0; k < i && !earlier; k++)
            earlier = strcmp(rls[k].item_code, rls[i].item_code) == 0;
        if (earlier)
            continue;
        int rc = translate_item(st, c, out, &rls[i], i);
        if (rc != 0)
            return rc;
    }
    return translate_sale(st, c, out, rls, n);
}

/* ---- interpret ----------------------------------------------------------------------------- */

/* The new branch state: ks (may be NULL) with init data replaced when init is not NULL and
 * the invoice's items added when items is not NULL. */
static void state_out(const struct ewtp_call *c, struct ewtp_outcome *o, const struct ewtp_json *ks,
                      const struct ewtp_json *init, const struct rw_line *items, size_t n_items)
{
    if (!EWTP_HAS(o, struct ewtp_outcome, key_state_out_len))
        return;
    struct ewtp_arena *a = c->arena;
    struct ewtp_jsonw *w = ewtp_jsonw_new(a, false);
    if (w == NULL)
        return;
    const struct ewtp_json *src = init ? init : ks;
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_int(w, "v", 1);
    static const char *const keep[] = {"sdcId", "mrcNo", "dvcId", "bhfNm", "taxprNm", NULL};
    for (size_t i = 0; keep[i]; i++) {
        const char *s = ewtp_json_get_string(src, keep[i]);
        if (s)
            ewtp_jsonw_kv_string(w, keep[i], s);
    }
    int64_t last = 0;
    if (ewtp_json_int(ewtp_json_get(src, "lastSaleInvcNo"), &last))
        ewtp_jsonw_kv_int(w, "lastSaleInvcNo", last);
    ewtp_jsonw_key(w, "items");
    ewtp_jsonw_array_begin(w);
    const struct ewtp_json *old = ewtp_json_get(ks, "items");
    size_t n_old = ewtp_json_size(old), skip = 0;
    if (n_old + n_items > RW_MAX_ITEMS_KEPT)
        skip = n_old + n_items - RW_MAX_ITEMS_KEPT;
    for (size_t i = skip; i < n_old; i++)
        ewtp_jsonw_string(w, ewtp_json_string(ewtp_json_index(old, i)));
    for (size_t i = 0; i < n_items; i++) {
        bool dup = item_known(ks, items[i].item_code);
        for (size_t k = 0; k < i && !dup; k++)
            dup = strcmp(items[k].item_code, items[i].item_code) == 0;
        if (!dup)
            ewtp_jsonw_string(w, items[i].item_code);
    }
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_object_end(w);
    const char *s = NULL;
    size_t len = 0;
    if (ewtp_jsonw_finish(w, &s, &len) == 0) {
        o->key_state_out = s;
        o->key_state_out_len = len;
    }
}

static void http_failure(const struct ewtp_call *c, const struct ewtp_response *resp,
                         struct ewtp_outcome *o)
{
    struct ewtp_arena *a = c->arena;
    if (resp->status == 0) {
        o->verdict = EWTP_V_RETRY;
        o->code = "transport";
        o->message = ewtp_arena_printf(a, "the VSDC could not be reached: %s",
                                       resp->transport_error ? resp->transport_error : "no answer");
        return;
    }
    o->code = ewtp_arena_printf(a, "HTTP %d", resp->status);
    o->retry_after_ms = ewtp_response_retry_after_ms(resp, c->now_ms);
    if (resp->status == 429 || resp->status == 408 || resp->status >= 500) {
        o->verdict = EWTP_V_RETRY;
        o->message = ewtp_arena_printf(a, "the VSDC answered %d %s: sent again later", resp->status,
                                       ewtp_http_reason(resp->status));
    } else {
        o->verdict = EWTP_V_REJECTED;
        o->message = ewtp_arena_printf(a, "the VSDC refused the request with %d %s", resp->status,
                                       ewtp_http_reason(resp->status));
    }
}

/* The line whose item code a VSDC message names, as a pointer; NULL when none. */
static const char *line_named(const struct rw_state *st, const struct ewtp_call *c,
                              const char *text)
{
    if (text == NULL)
        return NULL;
    for (size_t i = 0; i < c->msg->invoice->n_lines; i++) {
        struct rw_line rl;
        if (line_of(st, c, i, &rl, NULL) && strstr(text, rl.item_code))
            return rw_ptr(c->arena, "/invoice/lines/%zu", i);
    }
    return NULL;
}

int rw_inv_interpret(const struct rw_state *st, const struct ewtp_call *c,
                     const struct ewtp_response *resp, struct ewtp_outcome *o)
{
    struct ewtp_arena *a = c->arena;
    const struct ewtp_json *ks = key_state(c);
    bool init = has_key_state_abi(c) && ks == NULL;
    if (resp->status < 200 || resp->status >= 300) {
        http_failure(c, resp, o);
        return 0;
    }
    const struct ewtp_json *j = ewtp_json_parse(a, resp->body, resp->body_len, NULL);
    const char *rc = ewtp_json_get_string(j, "resultCd");
    const char *msg = ewtp_json_get_string(j, "resultMsg");
    if (rc == NULL) {
        o->verdict = EWTP_V_RETRY;
        o->code = ewtp_arena_printf(a, "HTTP %d", resp->status);
        o->message = "the VSDC's answer is not its JSON envelope (no resultCd): asked again";
        return 0;
    }
    const char *kind = ewtp_code_table_get(&rw_codes_result_code, rc, 1);
    const char *cause = ewtp_code_table_get(&rw_codes_result_code, rc, 2);
    if (cause == NULL)
        cause = "a result code the VSDC documentation does not list";
    o->code = rc;
    const struct ewtp_json *data = ewtp_json_get(j, "data");
    if (init) {
        if (strcmp(rc, "000") == 0 || strcmp(rc, "902") == 0) {
            const struct ewtp_json *info = ewtp_json_get(data, "info");
            int64_t last = 0, first = st->first_invoice_number;
            if (ewtp_json_int(ewtp_json_get(info, "lastSaleInvcNo"), &last) && last + 1 > first)
                first = last + 1;
            state_out(c, o, NULL, info ? info : ewtp_json_parse(a, "{}", 2, NULL), NULL, 0);
            if (EWTP_HAS(o, struct ewtp_outcome, chain_first))
                o->chain_first = (uint64_t)first;
            /* The invoice itself follows at once: a retry without delay, no number used. */
            o->verdict = EWTP_V_RETRY;
            o->retry_after_ms = 1;
            o->code = "initialised";
            o->message = ewtp_arena_printf(
                a, "VSDC device initialised (%s, sdcId %s); invoices of this branch start at %lld",
                strcmp(rc, "902") == 0 ? "already installed" : "first time",
                ewtp_json_get_string(info, "sdicId") ? ewtp_json_get_string(info, "sdicId") : "-",
                (long long)first);
            return 0;
        }
    } else if (strcmp(rc, "000") == 0) {
        const char *sdc = ewtp_json_get_string(data, "sdcId");
        const char *rcpt = ewtp_json_number_text(ewtp_json_get(data, "rcptNo"));
        if (sdc == NULL || rcpt == NULL) {
            o->verdict = EWTP_V_RETRY;
            o->code = "000";
            o->message = "the VSDC said success but sent no receipt (sdcId, rcptNo): asked again";
            return 0;
        }
        o->verdict = EWTP_V_APPROVED;
        o->authority_ref =
            ewtp_arena_printf(a, "%s/%s/%llu", sdc, rcpt, (unsigned long long)c->chain->number);
        const char *tot = ewtp_json_number_text(ewtp_json_get(data, "totRcptNo"));
        const char *intr = ewtp_json_get_string(data, "intrlData");
        const char *sign = ewtp_json_get_string(data, "rcptSign");
        const char *when = ewtp_json_get_string(data, "vsdcRcptPbctDate");
        const char *mrc = ewtp_json_get_string(data, "mrcNo");
        /* What the printed receipt must show; the raw answer is kept with the receipt too. */
        o->message = ewtp_arena_printf(
            a,
            "signed: invcNo %llu, rcptNo %s, totRcptNo %s, intrlData %s, rcptSign %s, "
            "vsdcRcptPbctDate %s, sdcId %s, mrcNo %s",
            (unsigned long long)c->chain->number, rcpt, tot ? tot : "-", intr ? intr : "-",
            sign ? sign : "-", when ? when : "-", sdc, mrc ? mrc : "-");
        size_t n = 0;
        struct rw_line *rls = lines_all(st, c, NULL, &n);
        state_out(c, o, ks, NULL, rls, rls ? n : 0);
        return 0;
    }
    /* Out of sequence: the VSDC holds another number than our chain (921 duplicate number with
     * other content, or the simulator's 910 "out of sequence"). Every later invoice of the
     * branch would fail the same way. */
    /* The rejection explainer (ABI 1.6): the plain cause of data/result-code.tsv. */
    ewtp_outcome_set_cause(o, ewtp_code_table_get(&rw_codes_result_code, rc, 2), NULL);
    bool sequence = strcmp(rc, "921") == 0 || strcmp(rc, "994") == 0 ||
                    (strcmp(rc, "910") == 0 && msg && strstr(msg, "sequence"));
    if (sequence) {
        o->verdict = EWTP_V_REJECTED;
        o->message = ewtp_arena_printf(
            a,
            "out of sequence: %s (invcNo %llu: %s); the branch's chain and the VSDC disagree: "
            "set it with ewtpctl chain set and replay",
            cause, (unsigned long long)c->chain->number, msg ? msg : "");
        if (EWTP_HAS(o, struct ewtp_outcome, key_blocked))
            o->key_blocked = true;
        return 0;
    }
    if (kind == NULL)
        kind = "retry";
    o->message = ewtp_arena_printf(a, "%s%s%s", cause, msg ? ": " : "", msg ? msg : "");
    if (strcmp(kind, "rejected") == 0) {
        o->verdict = EWTP_V_REJECTED;
        o->pointer = line_named(st, c, msg);
    } else {
        /* retry, config (ends dead after the attempts: an admin fixes and replays) and codes
         * we do not know. */
        o->verdict = EWTP_V_RETRY;
        if (strcmp(rc, "990") == 0)
            o->retry_after_ms = 60000;
    }
    return 0;
}
