/* Rwanda's authorities, simulated (ewtp-sim --country rw).
 *
 * VSDC (RRA EBM 2.1), every call POST + JSON, answered HTTP 200 with the VSDC envelope
 * {"resultCd","resultMsg","resultDt","data"} (FACTS.md B.2, B.3):
 *   /initializer/selectInitInfo  {tin,bhfId,dvcSrlNo} -> 000 + data.info (sdicId, mrcNo,
 *                                lastSaleInvcNo = setting last_invoice_no); 902 when the
 *                                branch is already installed (with the same info)
 *   /items/saveItems             registers or updates an item (000)
 *   /trnsSales/saveSales         a sale or refund receipt: 000 + data {rcptNo, totRcptNo,
 *                                intrlData, rcptSign, vsdcRcptPbctDate, sdcId, mrcNo}
 *   /code/selectCodes            the tax types (class 04) with the rates in use
 * Result codes: 901 sale on a branch that was never initialised; 910 a missing or malformed
 * field, an unknown item ("itemCd ... is not registered"), an invoice number out of sequence
 * ("invcNo N is out of sequence: expected M") or totals that do not add up; 911 empty body;
 * 912 not POST; 921 an invoice number already used by other sales data. An identical resend of
 * an accepted sale (a lost answer) gets its original receipt again (README: assumption).
 *   GET /sim/rw/sales            {"branches":[{"tin","bhfId","last","accepted":[invcNo...],
 *                                "received":[invcNo...],"refunds":{invcNo:orgInvcNo}}]} (tests)
 *
 * ASYCUDA (single window): every poll_ms the spool_out folder is read; each declaration is
 * validated against the ASYCUDA schema (xsd setting) and written back into spool_in as
 * ASYCUDA-<ref>-answer.xml: the same declaration with Identification/Registration,
 * Assessment and receipt filled (released), or, when invalid, an ASYCUDA document with
 * "REJECTED <code>: <reason>" in General_information/Comments_free_text. Handled files move to
 * spool_out/sent/. Settings: spool_out, spool_in, poll_ms (200), xsd, last_invoice_no (0),
 * reject_office (declarations for this office are refused, code RW-OFFICE). */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ewtp/decimal.h>
#include <ewtp/json.h>
#include <ewtp/sim.h>
#include <ewtp/xml.h>

#ifndef RW_SIM_XSD
#define RW_SIM_XSD "asycuda421-autobot.xsd"
#endif
#define FILE_MAX (8u * 1024u * 1024u)
#define SCAN_MAX 256

struct sale {
    int64_t no;
    int64_t org;    /* orgInvcNo of a refund, else 0 */
    char *body;     /* the request as received (identical resends get the same receipt) */
    char *response; /* the answer's data object */
};

struct branch {
    struct branch *next;
    char tin[16], bhf[8];
    bool installed;
    int64_t last; /* last accepted invcNo */
    int64_t rcpt_s, rcpt_r, rcpt_total;
    char **items;
    size_t n_items, cap_items;
    struct sale *sales;
    size_t n_sales, cap_sales;
    int64_t *received; /* every invcNo received, in order */
    size_t n_received, cap_received;
};

struct rw_sim {
    struct ewtp_sim *sim;
    struct branch *branches;
    char *spool_out, *spool_in, *xsd_path, *reject_office;
    struct ewtp_xsd *xsd;
    int64_t poll_ms, last_invoice_no;
    int64_t reg_no;
    struct ewtp_sim_spool_watch *watch; /* of spool_out, once create has finished */
    bool ready;
};

static bool grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, nc * size);
    if (p == NULL)
        return false;
    *arr = p;
    *cap = nc;
    return true;
}

static struct branch *branch_get(struct rw_sim *st, const char *tin, const char *bhf)
{
    for (struct branch *b = st->branches; b; b = b->next)
        if (strcmp(b->tin, tin) == 0 && strcmp(b->bhf, bhf) == 0)
            return b;
    struct branch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    snprintf(b->tin, sizeof(b->tin), "%s", tin);
    snprintf(b->bhf, sizeof(b->bhf), "%s", bhf);
    b->last = st->last_invoice_no;
    b->next = st->branches;
    st->branches = b;
    return b;
}

static void branch_free(struct branch *b)
{
    for (size_t i = 0; i < b->n_items; i++)
        free(b->items[i]);
    free(b->items);
    for (size_t i = 0; i < b->n_sales; i++) {
        free(b->sales[i].body);
        free(b->sales[i].response);
    }
    free(b->sales);
    free(b->received);
    free(b);
}

static const char *now_text(struct rw_sim *st, struct ewtp_arena *a, bool date_only)
{
    time_t t = (time_t)(ewtp_sim_now_ms(st->sim) / 1000) + 7200; /* Kigali, UTC+2 */
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof(buf), date_only ? "%d/%m/%Y" : "%Y%m%d%H%M%S", &tm);
    return ewtp_arena_strdup(a, buf);
}

static void answer(struct rw_sim *st, const struct ewtp_sim_request *req,
                   struct ewtp_sim_response *resp, const char *code, const char *msg,
                   const char *data_json)
{
    struct ewtp_jsonw *w = ewtp_jsonw_new(req->arena, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_kv_string(w, "resultCd", code);
    ewtp_jsonw_kv_string(w, "resultMsg", msg);
    ewtp_jsonw_kv_string(w, "resultDt", now_text(st, req->arena, false));
    ewtp_jsonw_key(w, "data");
    if (data_json)
        ewtp_jsonw_raw(w, data_json);
    else
        ewtp_jsonw_null(w);
    ewtp_jsonw_object_end(w);
    const char *out = NULL;
    size_t len = 0;
    if (ewtp_jsonw_finish(w, &out, &len) != 0)
        out = "{\"resultCd\":\"999\",\"resultMsg\":\"simulator error\",\"data\":null}";
    ewtp_sim_reply_json(resp, 200, out);
}

/* A required string member; NULL after answering 910 when absent. */
static const char *need(struct rw_sim *st, const struct ewtp_sim_request *req,
                        struct ewtp_sim_response *resp, const struct ewtp_json *j, const char *key,
                        size_t max)
{
    const char *v = ewtp_json_get_string(j, key);
    if (v == NULL || v[0] == '\0' || strlen(v) > max) {
        answer(st, req, resp, "910",
               ewtp_arena_printf(req->arena, "Invalid parameter: %s is missing or too long", key),
               NULL);
        return NULL;
    }
    return v;
}

static bool dec_of(const struct ewtp_json *j, const char *key, struct ewtp_dec *out)
{
    const char *t = ewtp_json_number_text(ewtp_json_get(j, key));
    if (t == NULL || ewtp_json_type(ewtp_json_get(j, key)) == EWTP_JSON_STRING)
        return false;
    return ewtp_dec_parse_ex(t, strlen(t), 18, 6, out) == 0;
}

static const char *info_json(struct rw_sim *st, struct ewtp_arena *a, const struct branch *b)
{
    return ewtp_arena_printf(
        a,
        "{\"info\":{\"tin\":\"%s\",\"taxprNm\":\"Taxpayer%s\",\"bsnsActv\":\"business\","
        "\"bhfId\":\"%s\",\"bhfNm\":\"%s\",\"bhfOpenDt\":\"20200226\",\"prvncNm\":\"KIGALI "
        "CITY\",\"dstrtNm\":\"GASABO\",\"sctrNm\":\"KACYIRU\",\"locDesc\":null,\"hqYn\":\"%s\","
        "\"mgrNm\":\"manager\",\"mgrTelNo\":\"0789000000\",\"mgrEmail\":\"manager@example.rw\","
        "\"dvcId\":\"%s%s0000001\",\"sdicId\":\"SDC0100000%s\",\"mrcNo\":\"WIS0100%s\","
        "\"cmcKey\":\"SIMULATED-KEY\",\"lastSaleInvcNo\":%lld,\"lastPchsInvcNo\":0,"
        "\"lastSaleRcptNo\":%lld,\"lastInvcNo\":%lld,\"lastTrainInvcNo\":0,"
        "\"lastProfrmInvcNo\":0,\"lastCopyInvcNo\":0}}",
        b->tin, b->tin + 5, b->bhf, strcmp(b->bhf, "00") == 0 ? "Headquarter" : "Branch",
        strcmp(b->bhf, "00") == 0 ? "Y" : "N", b->tin, b->bhf, b->bhf, b->bhf, (long long)b->last,
        (long long)b->rcpt_s, (long long)b->last);
    (void)st;
}

static void do_init(struct rw_sim *st, const struct ewtp_sim_request *req,
                    struct ewtp_sim_response *resp, const struct ewtp_json *j)
{
    const char *tin = need(st, req, resp, j, "tin", 9);
    const char *bhf = tin ? need(st, req, resp, j, "bhfId", 2) : NULL;
    const char *dvc = bhf ? need(st, req, resp, j, "dvcSrlNo", 100) : NULL;
    if (dvc == NULL)
        return;
    struct branch *b = branch_get(st, tin, bhf);
    if (b == NULL) {
        answer(st, req, resp, "999", "out of memory", NULL);
        return;
    }
    ewtp_sim_record(st->sim, ewtp_arena_printf(req->arena, "init:%s:%s", tin, bhf));
    if (b->installed) {
        answer(st, req, resp, "902", "This device is installed", info_json(st, req->arena, b));
        return;
    }
    b->installed = true;
    answer(st, req, resp, "000", "It is succeeded", info_json(st, req->arena, b));
}

static void do_item(struct rw_sim *st, const struct ewtp_sim_request *req,
                    struct ewtp_sim_response *resp, const struct ewtp_json *j)
{
    static const char *const req_fields[] = {
        "tin",       "bhfId",     "itemCd",    "itemClsCd", "itemTyCd",    "itemNm",
        "orgnNatCd", "pkgUnitCd", "qtyUnitCd", "taxTyCd",   "isrcAplcbYn", "useYn",
        "regrId",    "regrNm",    "modrId",    "modrNm",    NULL};
    for (size_t i = 0; req_fields[i]; i++)
        if (need(st, req, resp, j, req_fields[i], 200) == NULL)
            return;
    const char *tax = ewtp_json_get_string(j, "taxTyCd");
    struct ewtp_dec price;
    if (strlen(tax) != 1 || tax[0] < 'A' || tax[0] > 'D' || !dec_of(j, "dftPrc", &price)) {
        answer(st, req, resp, "910", "Invalid parameter: taxTyCd or dftPrc", NULL);
        return;
    }
    struct branch *b =
        branch_get(st, ewtp_json_get_string(j, "tin"), ewtp_json_get_string(j, "bhfId"));
    const char *code = ewtp_json_get_string(j, "itemCd");
    if (b == NULL) {
        answer(st, req, resp, "999", "out of memory", NULL);
        return;
    }
    for (size_t i = 0; i < b->n_items; i++)
        if (strcmp(b->items[i], code) == 0) {
            answer(st, req, resp, "000", "It is succeeded", NULL); /* an update */
            return;
        }
    if (!grow((void **)&b->items, &b->cap_items, b->n_items, sizeof(char *)) ||
        (b->items[b->n_items] = strdup(code)) == NULL) {
        answer(st, req, resp, "999", "out of memory", NULL);
        return;
    }
    b->n_items++;
    ewtp_sim_record(st->sim, ewtp_arena_printf(req->arena, "item:%s", code));
    answer(st, req, resp, "000", "It is succeeded", NULL);
}

static bool item_known(const struct branch *b, const char *code)
{
    for (size_t i = 0; code && i < b->n_items; i++)
        if (strcmp(b->items[i], code) == 0)
            return true;
    return false;
}

/* 26 and 16 characters of base32 from a hash of the sale: stand-ins for the SDC's internal
 * data and signature. */
static const char *b32(struct ewtp_arena *a, uint64_t h, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    char *s = ewtp_arena_alloc(a, n + 1);
    for (size_t i = 0; s && i < n; i++) {
        h = h * 6364136223846793005ull + 1442695040888963407ull;
        s[i] = al[(h >> 59) & 31];
    }
    return s;
}

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void do_sale(struct rw_sim *st, const struct ewtp_sim_request *req,
                    struct ewtp_sim_response *resp, const struct ewtp_json *j)
{
    struct ewtp_arena *a = req->arena;
    static const char *const req_fields[] = {
        "tin",          "bhfId",  "salesTyCd", "rcptTyCd", "salesSttsCd", "cfmDt", "salesDt",
        "prchrAcptcYn", "regrId", "regrNm",    "modrId",   "modrNm",      NULL};
    for (size_t i = 0; req_fields[i]; i++)
        if (need(st, req, resp, j, req_fields[i], 400) == NULL)
            return;
    int64_t no = 0, org = 0, cnt = 0;
    if (!ewtp_json_int(ewtp_json_get(j, "invcNo"), &no) || no < 1 ||
        !ewtp_json_int(ewtp_json_get(j, "orgInvcNo"), &org) ||
        !ewtp_json_int(ewtp_json_get(j, "totItemCnt"), &cnt)) {
        answer(st, req, resp, "910", "Invalid parameter: invcNo, orgInvcNo or totItemCnt", NULL);
        return;
    }
    struct branch *b =
        branch_get(st, ewtp_json_get_string(j, "tin"), ewtp_json_get_string(j, "bhfId"));
    if (b == NULL) {
        answer(st, req, resp, "999", "out of memory", NULL);
        return;
    }
    if (grow((void **)&b->received, &b->cap_received, b->n_received, sizeof(int64_t)))
        b->received[b->n_received++] = no;
    if (!b->installed) {
        answer(st, req, resp, "901", "It is not valid device (not initialised)", NULL);
        return;
    }
    const char *rcpt_ty = ewtp_json_get_string(j, "rcptTyCd");
    if ((strcmp(rcpt_ty, "S") != 0 && strcmp(rcpt_ty, "R") != 0) ||
        (strcmp(rcpt_ty, "R") == 0 && org < 1)) {
        answer(st, req, resp, "910", "Invalid parameter: rcptTyCd (S, or R with orgInvcNo)", NULL);
        return;
    }
    /* A number used before: the same sale again gets its receipt; other data is refused. */
    for (size_t i = 0; i < b->n_sales; i++) {
        if (b->sales[i].no != no)
            continue;
        if (strlen(b->sales[i].body) == req->body_len &&
            memcmp(b->sales[i].body, req->body, req->body_len) == 0) {
            ewtp_sim_record(st->sim,
                            ewtp_arena_printf(a, "sale:%s:%s:%lld", b->tin, b->bhf, (long long)no));
            answer(st, req, resp, "000", "It is succeeded", b->sales[i].response);
            return;
        }
        answer(st, req, resp, "921",
               ewtp_arena_printf(a,
                                 "Sales data that has been declared cannot be received: "
                                 "invcNo %lld",
                                 (long long)no),
               NULL);
        return;
    }
    if (no != b->last + 1) {
        answer(st, req, resp, "910",
               ewtp_arena_printf(a, "invcNo %lld is out of sequence: expected %lld", (long long)no,
                                 (long long)(b->last + 1)),
               NULL);
        return;
    }
    const struct ewtp_json *items = ewtp_json_get(j, "itemList");
    if (ewtp_json_size(items) == 0 || (int64_t)ewtp_json_size(items) != cnt) {
        answer(st, req, resp, "910", "Invalid parameter: itemList does not match totItemCnt", NULL);
        return;
    }
    struct ewtp_dec sum = ewtp_dec_from_int(0), tax = ewtp_dec_from_int(0), v;
    for (size_t i = 0; i < ewtp_json_size(items); i++) {
        const struct ewtp_json *it = ewtp_json_index(items, i);
        const char *code = ewtp_json_get_string(it, "itemCd");
        if (!item_known(b, code)) {
            answer(st, req, resp, "910",
                   ewtp_arena_printf(a,
                                     "Invalid parameter: itemCd %s is not registered "
                                     "(unknown item)",
                                     code ? code : "(none)"),
                   NULL);
            return;
        }
        struct ewtp_dec tot, t;
        if (!dec_of(it, "totAmt", &tot) || !dec_of(it, "taxAmt", &t) || !dec_of(it, "prc", &v) ||
            !dec_of(it, "qty", &v)) {
            answer(st, req, resp, "910",
                   ewtp_arena_printf(a, "Invalid parameter: itemList[%zu] amounts", i), NULL);
            return;
        }
        ewtp_dec_add(sum, tot, &sum);
        ewtp_dec_add(tax, t, &tax);
    }
    struct ewtp_dec tot_amt, tot_tax;
    if (!dec_of(j, "totAmt", &tot_amt) || !dec_of(j, "totTaxAmt", &tot_tax) ||
        ewtp_dec_cmp(tot_amt, sum) != 0 || ewtp_dec_cmp(tot_tax, tax) != 0) {
        answer(st, req, resp, "910",
               "Invalid parameter: totAmt / totTaxAmt differ from the sum of itemList", NULL);
        return;
    }
    bool refund = strcmp(rcpt_ty, "R") == 0;
    int64_t rcpt = refund ? ++b->rcpt_r : ++b->rcpt_s;
    b->rcpt_total++;
    uint64_t h = hash(req->body, req->body_len);
    const char *data = ewtp_arena_printf(
        a,
        "{\"rcptNo\":%lld,\"totRcptNo\":%lld,\"intrlData\":\"%s\",\"rcptSign\":\"%s\","
        "\"vsdcRcptPbctDate\":\"%s\",\"sdcId\":\"SDC0100000%s\",\"mrcNo\":\"WIS0100%s\"}",
        (long long)rcpt, (long long)b->rcpt_total, b32(a, h, 26), b32(a, h ^ 0x5a5a5a5aull, 16),
        now_text(st, a, false), b->bhf, b->bhf);
    if (!grow((void **)&b->sales, &b->cap_sales, b->n_sales, sizeof(struct sale))) {
        answer(st, req, resp, "991", "out of memory", NULL);
        return;
    }
    struct sale *s = &b->sales[b->n_sales];
    s->no = no;
    s->org = refund ? org : 0;
    s->body = strndup(req->body, req->body_len);
    s->response = strdup(data);
    if (s->body == NULL || s->response == NULL) {
        free(s->body);
        free(s->response);
        answer(st, req, resp, "991", "out of memory", NULL);
        return;
    }
    b->n_sales++;
    b->last = no;
    ewtp_sim_record(st->sim,
                    ewtp_arena_printf(a, "sale:%s:%s:%lld", b->tin, b->bhf, (long long)no));
    answer(st, req, resp, "000", "It is succeeded", data);
}

static void do_codes(struct rw_sim *st, const struct ewtp_sim_request *req,
                     struct ewtp_sim_response *resp)
{
    answer(st, req, resp, "000", "It is succeeded",
           "{\"clsList\":[{\"cdCls\":\"04\",\"cdClsNm\":\"Taxation Type\",\"dtlList\":["
           "{\"cd\":\"A\",\"cdNm\":\"A-EX\",\"userDfnCd1\":\"0\"},"
           "{\"cd\":\"B\",\"cdNm\":\"B-18.00%\",\"userDfnCd1\":\"18\"},"
           "{\"cd\":\"C\",\"cdNm\":\"C\",\"userDfnCd1\":\"0\"},"
           "{\"cd\":\"D\",\"cdNm\":\"D\",\"userDfnCd1\":\"0\"}]}]}");
}

static void do_log(struct rw_sim *st, const struct ewtp_sim_request *req,
                   struct ewtp_sim_response *resp)
{
    struct ewtp_jsonw *w = ewtp_jsonw_new(req->arena, false);
    ewtp_jsonw_object_begin(w);
    ewtp_jsonw_key(w, "branches");
    ewtp_jsonw_array_begin(w);
    for (struct branch *b = st->branches; b; b = b->next) {
        ewtp_jsonw_object_begin(w);
        ewtp_jsonw_kv_string(w, "tin", b->tin);
        ewtp_jsonw_kv_string(w, "bhfId", b->bhf);
        ewtp_jsonw_kv_int(w, "last", b->last);
        ewtp_jsonw_key(w, "installed");
        ewtp_jsonw_bool(w, b->installed);
        ewtp_jsonw_key(w, "accepted");
        ewtp_jsonw_array_begin(w);
        for (size_t i = 0; i < b->n_sales; i++)
            ewtp_jsonw_int(w, b->sales[i].no);
        ewtp_jsonw_array_end(w);
        ewtp_jsonw_key(w, "received");
        ewtp_jsonw_array_begin(w);
        for (size_t i = 0; i < b->n_received; i++)
            ewtp_jsonw_int(w, b->received[i]);
        ewtp_jsonw_array_end(w);
        ewtp_jsonw_kv_int(w, "items", (int64_t)b->n_items);
        ewtp_jsonw_key(w, "refunds"); /* refund invcNo -> orgInvcNo */
        ewtp_jsonw_object_begin(w);
        for (size_t i = 0; i < b->n_sales; i++)
            if (b->sales[i].org)
                ewtp_jsonw_kv_int(w,
                                  ewtp_arena_printf(req->arena, "%lld", (long long)b->sales[i].no),
                                  b->sales[i].org);
        ewtp_jsonw_object_end(w);
        ewtp_jsonw_object_end(w);
    }
    ewtp_jsonw_array_end(w);
    ewtp_jsonw_object_end(w);
    const char *out = NULL;
    size_t len = 0;
    if (ewtp_jsonw_finish(w, &out, &len) != 0)
        out = "{}";
    ewtp_sim_reply_json(resp, 200, out);
}

static int rw_sim_handle(void *state, const struct ewtp_sim_request *req,
                         struct ewtp_sim_response *resp)
{
    struct rw_sim *st = state;
    if (strcmp(req->path, "/sim/rw/sales") == 0) {
        do_log(st, req, resp);
        return 0;
    }
    static const char *const known[] = {"/initializer/selectInitInfo", "/items/saveItems",
                                        "/trnsSales/saveSales", "/code/selectCodes", NULL};
    size_t k = 0;
    while (known[k] && strcmp(known[k], req->path) != 0)
        k++;
    if (known[k] == NULL) {
        ewtp_sim_reply_error(req, resp, 404, "404",
                             "no such VSDC endpoint (this simulator serves selectInitInfo, "
                             "saveItems, saveSales, selectCodes)",
                             NULL);
        return 0;
    }
    if (strcmp(req->method, "POST") != 0) {
        answer(st, req, resp, "912", "Request method error: use POST", NULL);
        return 0;
    }
    if (req->body_len == 0) {
        answer(st, req, resp, "911", "There is no request full text", NULL);
        return 0;
    }
    const struct ewtp_json *j = ewtp_sim_body_json(req, resp, NULL);
    if (j == NULL) {
        answer(st, req, resp, "910", "Invalid parameter: the body is not a JSON object", NULL);
        return 0;
    }
    const char *tin = ewtp_json_get_string(j, "tin");
    const char *bhf = ewtp_json_get_string(j, "bhfId");
    if (tin == NULL || strlen(tin) != 9 || bhf == NULL || strlen(bhf) != 2) {
        answer(st, req, resp, "900", "Header information is missing: tin (9) and bhfId (2)", NULL);
        return 0;
    }
    switch (k) {
    case 0:
        do_init(st, req, resp, j);
        break;
    case 1:
        do_item(st, req, resp, j);
        break;
    case 2:
        do_sale(st, req, resp, j);
        break;
    default:
        do_codes(st, req, resp);
        break;
    }
    return 0;
}

/* ---- ASYCUDA through the spool ------------------------------------------------------------ */

/* Replaces the element <name>...</name> (or <name/>) that follows after in text by repl. */
static char *replace_elem(struct ewtp_arena *a, const char *text, const char *after,
                          const char *name, const char *repl)
{
    const char *from = after ? strstr(text, after) : text;
    if (from == NULL)
        return NULL;
    const char *open = strstr(from, ewtp_arena_printf(a, "<%s>", name));
    const char *self = strstr(from, ewtp_arena_printf(a, "<%s/>", name));
    const char *end;
    if (self && (open == NULL || self < open)) {
        open = self;
        end = self + strlen(name) + 3;
    } else {
        if (open == NULL)
            return NULL;
        const char *close = strstr(open, ewtp_arena_printf(a, "</%s>", name));
        if (close == NULL)
            return NULL;
        end = close + strlen(name) + 3;
    }
    return ewtp_arena_printf(a, "%.*s%s%s", (int)(open - text), text, repl, end);
}

static void write_answer(struct rw_sim *st, struct ewtp_arena *a, const char *ref, const char *xml)
{
    if (st->spool_in == NULL) {
        ewtp_sim_log(st->sim, EWTP_LOG_WARNING, "no spool_in: the answer to %s is lost", ref);
        return;
    }
    /* A file name from the reference: letters, digits, '.', '-', '_' only. */
    char *safe = ewtp_arena_strdup(a, ref);
    for (char *p = safe; p && *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_'))
            *p = '_';
    const char *name = ewtp_arena_printf(a, "ASYCUDA-%s-answer.xml", safe);
    if (ewtp_sim_spool_write(st->sim, st->spool_in, name, xml, strlen(xml)) != 0)
        ewtp_sim_log(st->sim, EWTP_LOG_ERR, "cannot write %s/%s", st->spool_in, name);
}

static void reject_decl(struct rw_sim *st, struct ewtp_arena *a, const char *ref, const char *code,
                        const char *why)
{
    struct ewtp_xml_writer *w = ewtp_xml_writer_new(EWTP_XML_INDENT);
    const char *out = NULL;
    size_t len = 0;
    ewtp_xml_start(w, NULL, "ASYCUDA");
    ewtp_xml_start(w, NULL, "Declarant");
    ewtp_xml_start(w, NULL, "Reference");
    ewtp_xml_elem(w, NULL, "Number", ref);
    ewtp_xml_end(w);
    ewtp_xml_end(w);
    ewtp_xml_start(w, NULL, "General_information");
    ewtp_xml_elem(w, NULL, "Comments_free_text",
                  ewtp_arena_printf(a, "REJECTED %s: %s", code, why));
    ewtp_xml_end(w);
    ewtp_xml_end(w);
    if (ewtp_xml_writer_finish(w, a, &out, &len) == 0)
        write_answer(st, a, ref, out);
    ewtp_xml_writer_free(w);
    ewtp_sim_record(st->sim, ewtp_arena_printf(a, "declaration:%s:rejected", ref));
}

static void take_declaration(struct rw_sim *st, struct ewtp_arena *a, const char *file,
                             const char *xml, size_t len)
{
    struct ewtp_xml_doc *doc = NULL;
    struct ewtp_errors *errs = ewtp_errors_new();
    const char *ref = NULL, *office = NULL;
    if (ewtp_xml_parse(xml, len, errs, &doc) == 0) {
        ewtp_xml_xpath_string(doc, NULL, "normalize-space(/ASYCUDA/Declarant/Reference/Number)", a,
                              &ref);
        ewtp_xml_xpath_string(doc, NULL,
                              "normalize-space(/ASYCUDA/Identification/Office_segment/"
                              "Customs_clearance_office_code)",
                              a, &office);
    }
    if (ref == NULL || ref[0] == '\0') {
        ewtp_sim_log(st->sim, EWTP_LOG_WARNING, "%s: no Declarant/Reference/Number: ignored", file);
        goto out;
    }
    if (ewtp_xsd_validate(st->xsd, xml, len, errs) != 0) {
        const struct ewtp_error *e = ewtp_errors_at(errs, 0);
        reject_decl(st, a, ref, "SCHEMA", e ? e->message : "not valid against the schema");
        goto out;
    }
    if (st->reject_office && office && strcmp(office, st->reject_office) == 0) {
        reject_decl(st, a, ref, "RW-OFFICE",
                    ewtp_arena_printf(a, "office %s does not clear this procedure", office));
        goto out;
    }
    int64_t n = ++st->reg_no;
    const char *day = now_text(st, a, true);
    char *t = (char *)xml;
    static const char *const blocks[][2] = {
        {"Registration", "C"}, {"Assessment", "L"}, {"receipt", "R"}};
    for (size_t i = 0; t && i < 3; i++)
        t = replace_elem(a, t, "<Identification>", blocks[i][0],
                         ewtp_arena_printf(a,
                                           "<%s><Serial_number>%s</Serial_number><Number>%lld"
                                           "</Number><Date>%s</Date></%s>",
                                           blocks[i][0], blocks[i][1], (long long)n, day,
                                           blocks[i][0]));
    if (t == NULL) {
        reject_decl(st, a, ref, "FORMAT",
                    "Identification/Registration, Assessment or receipt "
                    "is missing");
        goto out;
    }
    ewtp_sim_record(st->sim, ewtp_arena_printf(a, "declaration:%s", ref));
    write_answer(st, a, ref, t);
out:
    ewtp_xml_free(doc);
    ewtp_errors_free(errs);
}

static void take_file(void *arg, const char *name, const char *data, size_t len,
                      struct ewtp_arena *a)
{
    take_declaration(arg, a, name, data, len);
}

/* Watches spool_out (every poll_ms) once create has finished; again after either changes. */
static void rewatch(struct rw_sim *st)
{
    ewtp_sim_spool_unwatch(st->watch);
    st->watch = st->ready ? ewtp_sim_spool_watch(st->sim, st->spool_out, st->poll_ms, SCAN_MAX,
                                                 FILE_MAX, take_file, st)
                          : NULL;
}

/* ---- module -------------------------------------------------------------------------------- */

/* An empty value restores the default, as no value does. */
static int set_str(char **field, const char *value, const char *def)
{
    return ewtp_sim_set_string_ex(field, value, def, EWTP_SIM_EMPTY_IS_DEFAULT);
}

static int rw_sim_set(void *state, const char *key, const char *value, struct ewtp_errors *why)
{
    struct rw_sim *st = state;
    if (strcmp(key, "spool_out") == 0) {
        int rc = set_str(&st->spool_out, value, NULL);
        rewatch(st);
        return rc;
    }
    if (strcmp(key, "spool_in") == 0)
        return set_str(&st->spool_in, value, NULL);
    if (strcmp(key, "reject_office") == 0)
        return set_str(&st->reject_office, value, NULL);
    if (strcmp(key, "xsd") == 0) {
        struct ewtp_xsd *x = NULL;
        const char *path = value && *value ? value : RW_SIM_XSD;
        if (ewtp_xsd_load(path, why, &x) != 0)
            return -EWTP_EINVAL;
        ewtp_xsd_free(st->xsd);
        st->xsd = x;
        return set_str(&st->xsd_path, path, NULL);
    }
    if (strcmp(key, "poll_ms") == 0) {
        int rc = ewtp_sim_set_int_ex(key, value, 200, 10, 60000, EWTP_SIM_EMPTY_IS_DEFAULT, why,
                                     &st->poll_ms);
        if (rc == 0 && st->watch)
            rewatch(st);
        return rc;
    }
    if (strcmp(key, "last_invoice_no") == 0)
        return ewtp_sim_set_int_ex(key, value, 0, 0, 999999999, EWTP_SIM_EMPTY_IS_DEFAULT, why,
                                   &st->last_invoice_no);
    return -EWTP_ENOTFOUND;
}

static void rw_sim_destroy(void *state)
{
    struct rw_sim *st = state;
    if (st == NULL)
        return;
    ewtp_sim_spool_unwatch(st->watch);
    while (st->branches) {
        struct branch *b = st->branches;
        st->branches = b->next;
        branch_free(b);
    }
    ewtp_xsd_free(st->xsd);
    free(st->spool_out);
    free(st->spool_in);
    free(st->xsd_path);
    free(st->reject_office);
    free(st);
}

static int rw_sim_create(struct ewtp_sim *sim, const struct ewtp_settings *settings, void **state,
                         struct ewtp_errors *why)
{
    struct rw_sim *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -EWTP_ENOMEM;
    st->sim = sim;
    static const char *const defaults[] = {"poll_ms", "last_invoice_no", NULL};
    int rc = ewtp_sim_apply_settings(st, rw_sim_set, defaults, settings,
                                     "spool_out spool_in poll_ms xsd last_invoice_no "
                                     "reject_office",
                                     why);
    if (rc == 0 && st->xsd == NULL)
        rc = rw_sim_set(st, "xsd", NULL, why);
    if (rc != 0) {
        rw_sim_destroy(st);
        return rc;
    }
    st->ready = true;
    rewatch(st);
    if (st->spool_out == NULL)
        ewtp_sim_log(sim, EWTP_LOG_WARNING, "no spool_out: only the VSDC is served");
    *state = st;
    return 0;
}

EWTP_SIM_MODULE(.name = "rw", .country = "RW",
                .authority = "Rwanda Revenue Authority: VSDC (EBM 2.1) and ASYCUDA World",
                .create = rw_sim_create, .handle = rw_sim_handle, .destroy = rw_sim_destroy,
                .set = rw_sim_set);
