/* China customs simulator (ewtp-sim --country cn): the customs side of the cross-border
 * e-commerce unified system as a hub sees it through the E-port customs client's folders.
 *
 * It watches spool_out (the gateway's out-folder; a framework timer every poll_ms, at most
 * SCAN_MAX files per scan), takes each DxpMsg envelope, checks it against the terminal-node
 * XSD, decodes the Base64 payload, validates it against the official 2022-05 XSD of its root
 * (xsd_dir/<root>.xsd), verifies its XML signature (ewtp_dsig_verify with the certificate in
 * KeyInfo) and answers asynchronously (delay_ms between stages) with the real receipt messages
 * of the specification, DxpMsg-wrapped as E-port returns them, written atomically into
 * spool_in. Handled files move to spool_out/sent/ as the customs client does.
 *
 *   311 -> 312 (2, then 120)        411 -> 412 (2, 120)          511 -> 512 (2, 120)
 *   513 -> 514 (2, 120)             711 -> 712 (2, 120)          625 -> 626 (2, 399)
 *   621 -> 622 (2 with preNo; then the three-document match against what this simulator
 *          received before: 120 with the customs invtNo, tax bill 816, 800 released; or a
 *          negative code)
 *   623 -> 624 (2, then 399 cancelled) for an inventory this simulator released
 *   export 303/403/505/507/509/607/701 -> 304/404/506/508/510/608/702 (2, 120), 603 -> 604
 *          (2, 120 with an invtNo, 800), 605 -> 606 (2, 399); no cross-document checks
 *   payload not valid against the XSD, or a bad signature -> CEB900 (oriBizMessage: the
 *   payload, Base64), envelope errors -> DxpRep with the DXP error code (0002, 1001 ...)
 *
 * Per-platform state: orders by ebpCode+orderNo, payments by payCode+payTransactionId (and
 * ebpCode+orderNo), waybills by logisticsCode+logisticsNo, inventories by copNo and invtNo.
 * A resend with the same guid is a duplicate (recorded, the last receipt is repeated); a new
 * guid for an existing key with appType 1 is refused (-301010, -401007, -504015, -621004).
 *
 * The codes of the three-document match are not in the material we have (FACTS.md §4/§5
 * names -621005 and -621029 only); the simulator's choices are documented in README.md
 * ("Simulator") and above match_621 below.
 *
 * HTTP face: POST /dxp takes one DxpMsg (another enterprise's own channel, e.g. a payment
 * company with its own customs client) and answers DxpRep; receipts go to spool_in like the
 * rest. GET /_sim/received (framework) lists the business keys received
 * ("CEB311:<ebpCode>:<orderNo>", "CEB621:<copNo>", ... the plugin's correlation keys). */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <ewtp/crypto.h>
#include <ewtp/decimal.h>
#include <ewtp/dsig.h>
#include <ewtp/sim.h>
#include <ewtp/xml.h>

#ifndef CN_SIM_XSD_DIR
#define CN_SIM_XSD_DIR "xsd/by-root"
#endif

#define NS_CEB "http://www.chinaport.gov.cn/ceb"
#define NS_DXP "http://www.chinaport.gov.cn/dxp"
#define NS_DS "http://www.w3.org/2000/09/xmldsig#"

#define SCAN_MAX 64 /* files per scan: a full folder cannot stall the loop */
#define FILE_MAX ((size_t)16 * 1024 * 1024) /* larger files are refused (DxpRep 0001) */
#define RECORDS_MAX 100000                  /* state bound: older records are kept, new refused */
#define DEFAULT_DELAY_MS 200
#define DEFAULT_POLL_MS 200
#define DEFAULT_MATCH_WAIT_MS 10000
#define DEFAULT_DXP_ID "DXPEDCCEB0000002"
#define DEFAULT_RECEIVERS "DXPEDCCEB0000002 DXPEDCCEB0000003"
#define DEFAULT_LIMIT "5000"
/* Cross-border retail import tax: duty 0 within the limit, VAT and consumption tax at 70%;
 * 13% VAT x 0.7 = 0.091 of the dutiable price (tax policy, not the CEB spec). */
#define DEFAULT_VAT_RATE "0.091"
/* preNo of a refusal that never got one (the receipt's schema requires 18 characters). */
#define NO_PRE_NO "B00000000000000000"

struct kv {
    char *name, *value;
};
struct fields {
    struct kv *kv;
    size_t n;
};

/* One business document as received (one entity of a CEB message). */
struct rec {
    struct rec *next;
    int no;       /* 311, 411, 511, 513, 621, 623, 625, 711 */
    char *key;    /* "CEB311:<ebp>:<orderNo>" ... the plugin's correlation key */
    char *guid;   /* the entity's guid */
    char *sender; /* DXP SenderId to answer */
    struct fields head;
    struct fields *lines;
    size_t n_lines;
    char *pre_no, *invt_no;  /* 621: assigned by E-port / customs */
    const char *last_status; /* last returnStatus sent (static string or owned by info) */
    char *last_info;
    int64_t received_ms;
    bool busy; /* stages pending */
    bool cancelled;
};

/* A pending stage of one record (a timer's argument). */
struct step {
    struct step *next;
    struct cn_sim *st;
    struct rec *r;
    int stage;
    struct ewtp_sim_timer *t;
};

struct xsd_entry {
    char *root;
    struct ewtp_xsd *xsd;
};

struct cn_sim {
    struct ewtp_sim *sim;
    /* settings */
    char *spool_out, *spool_in, *xsd_dir, *dxp_id, *receivers;
    int64_t delay_ms, poll_ms, match_wait_ms;
    struct ewtp_dec limit, vat_rate;
    bool has_limit;
    bool verify_signatures;
    /* state */
    struct rec *recs;
    size_t n_recs;
    struct step *steps;
    struct xsd_entry *xsds;
    size_t n_xsds;
    struct ewtp_sim_spool_watch *watch; /* of spool_out, once create has finished */
    bool ready;                         /* create has finished */
    uint64_t serial;                    /* preNo/invtNo/guid counter */
};

enum { STAGE_ACK = 1, STAGE_DECIDE, STAGE_TAX, STAGE_RELEASE };

/* ---- small helpers ----------------------------------------------------------------------- */

static const char *fget(const struct fields *f, const char *name)
{
    for (size_t i = 0; f && i < f->n; i++)
        if (strcmp(f->kv[i].name, name) == 0)
            return f->kv[i].value;
    return NULL;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static bool same(const char *a, const char *b)
{
    return strcmp(nz(a), nz(b)) == 0;
}

static void fields_free(struct fields *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->kv[i].name);
        free(f->kv[i].value);
    }
    free(f->kv);
    f->kv = NULL;
    f->n = 0;
}

static void rec_clear(struct rec *r)
{
    fields_free(&r->head);
    for (size_t i = 0; i < r->n_lines; i++)
        fields_free(&r->lines[i]);
    free(r->lines);
    r->lines = NULL;
    r->n_lines = 0;
}

static void rec_free(struct rec *r)
{
    rec_clear(r);
    free(r->key);
    free(r->guid);
    free(r->sender);
    free(r->pre_no);
    free(r->invt_no);
    free(r->last_info);
    free(r);
}

/* Reads the child elements of node (name -> trimmed text) into f. */
static int read_fields(struct ewtp_xml_doc *doc, const struct ewtp_xml_node *node,
                       struct ewtp_arena *a, struct fields *f)
{
    const struct ewtp_xml_node **kids = NULL;
    size_t n = 0;
    if (ewtp_xml_xpath_nodes(doc, node, "ceb:*", a, &kids, &n) != 0)
        return -EWTP_EINVAL;
    f->kv = calloc(n ? n : 1, sizeof(*f->kv));
    if (f->kv == NULL)
        return -EWTP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *v = NULL;
        ewtp_xml_xpath_string(doc, kids[i], "string(.)", a, &v);
        v = nz(v);
        while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
            v++;
        size_t len = strlen(v);
        while (len && (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\n' ||
                       v[len - 1] == '\r'))
            len--;
        f->kv[f->n].name = strdup(ewtp_xml_node_name(kids[i]));
        f->kv[f->n].value = strndup(v, len);
        f->n++;
        if (f->kv[f->n - 1].name == NULL || f->kv[f->n - 1].value == NULL)
            return -EWTP_ENOMEM;
    }
    return 0;
}

/* Beijing time (UTC+08:00), which every CEB time uses. */
static void bj_tm(int64_t ms, struct tm *tm)
{
    time_t t = (time_t)(ms / 1000) + 8 * 3600;
    gmtime_r(&t, tm);
}

static const char *return_time(struct ewtp_arena *a, int64_t ms)
{
    struct tm tm;
    bj_tm(ms, &tm);
    return ewtp_arena_printf(a, "%04d%02d%02d%02d%02d%02d%03d", tm.tm_year + 1900, tm.tm_mon + 1,
                             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* A fresh upper-case UUID (v5 of a counter and the time: unique within a run and across
 * restarts, no randomness needed). */
static const char *new_guid(struct cn_sim *st, struct ewtp_arena *a)
{
    char name[64], out[EWTP_UUID_STRLEN];
    int n = snprintf(name, sizeof(name), "cn-sim/%lld/%llu", (long long)ewtp_sim_now_ms(st->sim),
                     (unsigned long long)++st->serial);
    if (ewtp_uuid_v5(EWTP_UUID_NS_EWTP, name, (size_t)n, out) != 0)
        return NULL;
    for (char *p = out; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    return ewtp_arena_strdup(a, out);
}

/* ---- schemas ----------------------------------------------------------------------------- */

/* The official schema of a root ("CEB621Message", "DxpMsg"), loaded once. NULL with a log
 * line when it cannot be loaded. Only names of that shape reach the file system. */
static struct ewtp_xsd *xsd_for(struct cn_sim *st, const char *root)
{
    bool ok = strcmp(root, "DxpMsg") == 0;
    if (!ok && strlen(root) == 13 && strncmp(root, "CEB", 3) == 0 &&
        strcmp(root + 6, "Message") == 0)
        ok = root[3] >= '0' && root[3] <= '9' && root[4] >= '0' && root[4] <= '9' &&
             root[5] >= '0' && root[5] <= '9';
    if (!ok)
        return NULL;
    for (size_t i = 0; i < st->n_xsds; i++)
        if (strcmp(st->xsds[i].root, root) == 0)
            return st->xsds[i].xsd;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.xsd", st->xsd_dir, root);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return NULL;
    struct ewtp_xsd *x = NULL;
    struct ewtp_errors *errs = ewtp_errors_new();
    if (ewtp_xsd_load(path, errs, &x) != 0) {
        ewtp_sim_log(st->sim, EWTP_LOG_ERR, "cannot load %s: %s", path,
                     errs && ewtp_errors_count(errs) ? ewtp_errors_at(errs, 0)->message : "?");
        ewtp_errors_free(errs);
        return NULL;
    }
    ewtp_errors_free(errs);
    struct xsd_entry *n = realloc(st->xsds, (st->n_xsds + 1) * sizeof(*n));
    char *r = strdup(root);
    if (n == NULL || r == NULL) {
        if (n)
            st->xsds = n;
        free(r);
        ewtp_xsd_free(x);
        return NULL;
    }
    st->xsds = n;
    st->xsds[st->n_xsds].root = r;
    st->xsds[st->n_xsds].xsd = x;
    st->n_xsds++;
    return x;
}

/* ---- answers ----------------------------------------------------------------------------- */

/* Logs (as a bug) a document of ours that its schema, the one of root xsd_root, refuses. */
static void check_ours(struct cn_sim *st, const char *xsd_root, const char *what, const char *xml,
                       size_t len)
{
    struct ewtp_xsd *x = xsd_for(st, xsd_root);
    struct ewtp_errors *errs = ewtp_errors_new();
    if (x && errs && ewtp_xsd_validate(x, xml, len, errs) != 0)
        ewtp_sim_log(st->sim, EWTP_LOG_ERR, "BUG: our %s is not schema-valid: %s", what,
                     ewtp_errors_count(errs) ? ewtp_errors_at(errs, 0)->message : "?");
    ewtp_errors_free(errs);
}

/* Finishes w into *xml (in a) and frees it; 0 or the error. */
static int writer_done(struct ewtp_xml_writer *w, struct ewtp_arena *a, const char **xml,
                       size_t *len)
{
    *xml = NULL;
    *len = 0;
    int rc = ewtp_xml_writer_finish(w, a, xml, len);
    ewtp_xml_writer_free(w);
    return rc;
}

/* Wraps a receipt in a DxpMsg from E-port to the enterprise and writes it into spool_in. The
 * receipt is checked against its own official schema first: a simulator that answered with
 * invalid receipts would test nothing. */
static void send_doc(struct cn_sim *st, struct ewtp_arena *a, const char *root, const char *to,
                     const char *xml, size_t len)
{
    check_ours(st, root, root, xml, len);
    if (st->spool_in == NULL) {
        ewtp_sim_log(st->sim, EWTP_LOG_WARNING, "no spool_in: %s not delivered", root);
        return;
    }
    const char *id = new_guid(st, a);
    struct tm tm;
    bj_tm(ewtp_sim_now_ms(st->sim), &tm);
    struct ewtp_xml_writer *w = ewtp_xml_writer_new(0);
    ewtp_xml_start(w, "dxp", "DxpMsg");
    ewtp_xml_ns(w, "dxp", NS_DXP);
    ewtp_xml_attr(w, NULL, "ver", "1.0");
    ewtp_xml_start(w, "dxp", "TransInfo");
    ewtp_xml_elem(w, "dxp", "CopMsgId", id);
    ewtp_xml_elem(w, "dxp", "SenderId", st->dxp_id);
    ewtp_xml_start(w, "dxp", "ReceiverIds");
    ewtp_xml_elem(w, "dxp", "ReceiverId", to && *to ? to : "DXPENTUNKNOWN000");
    ewtp_xml_end(w);
    ewtp_xml_elemf(w, "dxp", "CreatTime", "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    ewtp_xml_elem(w, "dxp", "MsgType", root);
    ewtp_xml_end(w);
    ewtp_xml_elem(w, "dxp", "Data", ewtp_base64_encode(a, xml, len));
    ewtp_xml_end(w);
    const char *env;
    size_t env_len;
    int rc = writer_done(w, a, &env, &env_len);
    if (rc != 0 || id == NULL) {
        ewtp_sim_log(st->sim, EWTP_LOG_ERR, "cannot build the %s envelope", root);
        return;
    }
    const char *name = ewtp_arena_printf(a, "%s_%s.xml", root, id);
    if (ewtp_sim_spool_write(st->sim, st->spool_in, name, env, env_len) != 0)
        ewtp_sim_log(st->sim, EWTP_LOG_ERR, "cannot write %s/%s", st->spool_in, name);
}

/* Starts <CEBnnnMessage xmlns=ceb guid version> <Entity>. */
static struct ewtp_xml_writer *ceb_begin(const char *root, const char *guid, const char *entity)
{
    struct ewtp_xml_writer *w = ewtp_xml_writer_new(0);
    ewtp_xml_start(w, NULL, root);
    ewtp_xml_ns(w, NULL, NS_CEB);
    ewtp_xml_attr(w, NULL, "guid", guid);
    ewtp_xml_attr(w, NULL, "version", "1.0");
    ewtp_xml_start(w, NULL, entity);
    return w;
}

/* Starts <CEBnnnMessage xmlns=ceb guid version> <Entity> <guid/>, as the official receipts:
 * they repeat the guid of the document they answer (the CEB312 sample's is its CEB311's, the
 * CEB626's its CEB625's, the CEB712's its CEB711's, and 312's returnInfo quotes it), so echo is
 * that guid; NULL (CEB900) a fresh one. */
static struct ewtp_xml_writer *receipt_begin(struct cn_sim *st, struct ewtp_arena *a,
                                             const char *root, const char *entity, const char *echo)
{
    const char *g = echo && echo[0] ? echo : new_guid(st, a);
    struct ewtp_xml_writer *w = ceb_begin(root, g, entity);
    ewtp_xml_elem(w, NULL, "guid", g);
    return w;
}

static void receipt_end(struct cn_sim *st, struct ewtp_arena *a, struct ewtp_xml_writer *w,
                        const char *root, const struct rec *r, const char *status, const char *info)
{
    ewtp_xml_elem(w, NULL, "returnStatus", status);
    ewtp_xml_elem(w, NULL, "returnTime", return_time(a, ewtp_sim_now_ms(st->sim)));
    ewtp_xml_elem(w, NULL, "returnInfo", info);
    ewtp_xml_end(w);
    ewtp_xml_end(w);
    const char *xml;
    size_t len;
    int rc = writer_done(w, a, &xml, &len);
    if (rc != 0) {
        ewtp_sim_log(st->sim, EWTP_LOG_ERR, "cannot build %s: %s", root, ewtp_strerror(rc));
        return;
    }
    send_doc(st, a, root, r->sender, xml, len);
}

static void opt_elem(struct ewtp_xml_writer *w, const char *name, const char *v)
{
    if (v && *v)
        ewtp_xml_elem(w, NULL, name, v);
}

/* Export receipts: root, entity and the fields between guid and returnStatus in schema
 * order ("?": optional, left out when empty). */
struct export_receipt {
    int no; /* the request's number */
    const char *root, *entity;
    const char *fields[10];
};
static const struct export_receipt export_receipts[] = {
    {303, "CEB304Message", "OrderReturn", {"ebpCode", "ebcCode", "orderNo", NULL}},
    {403, "CEB404Message", "ReceiptsReturn", {"ebcCode", "orderNo", "?payNo", NULL}},
    {505, "CEB506Message", "LogisticsReturn", {"logisticsCode", "logisticsNo", NULL}},
    {507,
     "CEB508Message",
     "ArrivalReturn",
     {"operatorCode", "logisticsCode", "preNo", "copNo", "billNo", "msgSeqNo", NULL}},
    {509,
     "CEB510Message",
     "DepartureReturn",
     {"logisticsCode", "copNo", "preNo", "msgSeqNo", NULL}},
    {603,
     "CEB604Message",
     "InventoryReturn",
     {"agentCode", "copNo", "preNo", "invtNo", "ebcCode", "ebpCode", "orderNo", "statisticsFlag",
      NULL}},
    {605, "CEB606Message", "InvtCancelReturn", {"agentCode", "copNo", "preNo", "invtNo", NULL}},
    {607,
     "CEB608Message",
     "WayBillReturn",
     {"agentCode", "logisticsCode", "copNo", "preNo", "billNo", "msgSeqNo", NULL}},
    {701,
     "CEB702Message",
     "SummaryReturn",
     {"agentCode", "ebcCode", "copNo", "preNo", "?sumNo", "msgSeqNo", NULL}},
    {0, NULL, NULL, {NULL}},
};

static const struct export_receipt *export_receipt_of(int no)
{
    for (size_t i = 0; export_receipts[i].no; i++)
        if (export_receipts[i].no == no)
            return &export_receipts[i];
    return NULL;
}

/* A field of an export receipt: what E-port assigns, else the request's own value. */
static const char *export_value(const struct rec *r, const char *f)
{
    if (strcmp(f, "preNo") == 0)
        return r->pre_no;
    if (strcmp(f, "invtNo") == 0 || strcmp(f, "sumNo") == 0)
        return r->invt_no ? r->invt_no : fget(&r->head, f);
    const char *v = fget(&r->head, f);
    if ((v == NULL || *v == '\0') && strcmp(f, "msgSeqNo") == 0)
        return "1";
    if ((v == NULL || *v == '\0') && strcmp(f, "statisticsFlag") == 0)
        return "A";
    return v;
}

/* The receipt of a record with returnStatus status; remembered so a resend can repeat it. */
static void answer(struct cn_sim *st, struct rec *r, const char *status, const char *info)
{
    struct ewtp_arena *a = ewtp_arena_new();
    if (a == NULL)
        return;
    if (info != r->last_info) {
        char *copy = strdup(info);
        free(r->last_info);
        r->last_info = copy;
    }
    r->last_status = status;
    const struct fields *h = &r->head;
    struct ewtp_xml_writer *w = NULL;
    const char *root = NULL;
    switch (r->no) {
    case 311:
        w = receipt_begin(st, a, root = "CEB312Message", "OrderReturn", r->guid);
        ewtp_xml_elem(w, NULL, "ebpCode", fget(h, "ebpCode"));
        ewtp_xml_elem(w, NULL, "ebcCode", fget(h, "ebcCode"));
        ewtp_xml_elem(w, NULL, "orderNo", fget(h, "orderNo"));
        break;
    case 411:
        w = receipt_begin(st, a, root = "CEB412Message", "PaymentReturn", r->guid);
        ewtp_xml_elem(w, NULL, "payCode", fget(h, "payCode"));
        ewtp_xml_elem(w, NULL, "payTransactionId", fget(h, "payTransactionId"));
        break;
    case 511:
        w = receipt_begin(st, a, root = "CEB512Message", "LogisticsReturn", r->guid);
        ewtp_xml_elem(w, NULL, "logisticsCode", fget(h, "logisticsCode"));
        ewtp_xml_elem(w, NULL, "logisticsNo", fget(h, "logisticsNo"));
        break;
    case 513:
        w = receipt_begin(st, a, root = "CEB514Message", "LogisticsStatusReturn", r->guid);
        ewtp_xml_elem(w, NULL, "logisticsCode", fget(h, "logisticsCode"));
        ewtp_xml_elem(w, NULL, "logisticsNo", fget(h, "logisticsNo"));
        ewtp_xml_elem(w, NULL, "logisticsStatus", fget(h, "logisticsStatus"));
        break;
    case 621:
    case 623:
    case 625:
        w = receipt_begin(st, a,
                          root = r->no == 621   ? "CEB622Message"
                                 : r->no == 623 ? "CEB624Message"
                                                : "CEB626Message",
                          r->no == 621   ? "InventoryReturn"
                          : r->no == 623 ? "InvtCancelReturn"
                                         : "InvtRefundReturn",
                          r->guid);
        opt_elem(w, "customsCode", fget(h, "customsCode"));
        if (r->no == 621) {
            opt_elem(w, "ebpCode", fget(h, "ebpCode"));
            opt_elem(w, "ebcCode", fget(h, "ebcCode"));
            opt_elem(w, "agentCode", fget(h, "agentCode"));
        } else {
            opt_elem(w, "agentCode", fget(h, "agentCode"));
            opt_elem(w, "ebpCode", fget(h, "ebpCode"));
            opt_elem(w, "ebcCode", fget(h, "ebcCode"));
        }
        ewtp_xml_elem(w, NULL, "copNo", fget(h, "copNo"));
        ewtp_xml_elem(w, NULL, "preNo", r->pre_no);
        opt_elem(w, "invtNo", r->invt_no);
        break;
    case 711:
        w = receipt_begin(st, a, root = "CEB712Message", "DeliveryReturn", r->guid);
        opt_elem(w, "customsCode", fget(h, "customsCode"));
        opt_elem(w, "operatorCode", fget(h, "operatorCode"));
        opt_elem(w, "copNo", fget(h, "copNo"));
        opt_elem(w, "preNo", r->pre_no);
        break;
    default: {
        const struct export_receipt *x = export_receipt_of(r->no);
        if (x == NULL) {
            ewtp_arena_free(a);
            return;
        }
        w = receipt_begin(st, a, root = x->root, x->entity, r->guid);
        for (size_t i = 0; x->fields[i]; i++) {
            const char *f = x->fields[i];
            bool optional = f[0] == '?';
            f += optional;
            const char *v = export_value(r, f);
            if (!optional || (v && *v))
                ewtp_xml_elem(w, NULL, f, nz(v));
        }
        break;
    }
    }
    ewtp_sim_log(st->sim, EWTP_LOG_INFO, "%s %s -> %s %s", r->key, nz(r->guid), root, status);
    receipt_end(st, a, w, root, r, status, info);
    ewtp_arena_free(a);
}

/* CEB900: the payload failed the format check; oriBizMessage carries it (Base64) so that the
 * sender can tell which of its documents this was. */
static void answer_900(struct cn_sim *st, const char *to, const char *cop_msg_id,
                       const char *msg_type, const void *payload, size_t len, const char *status,
                       const char *info)
{
    struct ewtp_arena *a = ewtp_arena_new();
    if (a == NULL)
        return;
    struct ewtp_xml_writer *w = receipt_begin(st, a, "CEB900Message", "MessageReturn", NULL);
    ewtp_xml_elem(w, NULL, "returnStatus", status);
    /* returnInfo is at most 5000 characters; libxml2's messages are ASCII. */
    ewtp_xml_elem(w, NULL, "returnInfo",
                  strlen(info) > 4000 ? ewtp_arena_strndup(a, info, 4000) : info);
    ewtp_xml_elem(w, NULL, "returnTime", return_time(a, ewtp_sim_now_ms(st->sim)));
    ewtp_xml_elem(w, NULL, "oriCopMsgId", nz(cop_msg_id));
    ewtp_xml_elem(w, NULL, "oriMessageType",
                  msg_type && strlen(msg_type) <= 15 ? msg_type : "Unknown");
    ewtp_xml_elem(w, NULL, "oriBizMessage", ewtp_base64_encode(a, payload, len));
    ewtp_xml_end(w);
    ewtp_xml_end(w);
    const char *xml;
    size_t xl;
    int rc = writer_done(w, a, &xml, &xl);
    ewtp_sim_log(st->sim, EWTP_LOG_INFO, "DXP:%s -> CEB900Message %s", nz(cop_msg_id), status);
    if (rc == 0)
        send_doc(st, a, "CEB900Message", to, xml, xl);
    ewtp_arena_free(a);
}

/* DxpRep: the envelope itself was refused (spec §7.1 codes). Into spool_in, and as the HTTP
 * answer when out is not NULL. */
static void answer_dxprep(struct cn_sim *st, struct ewtp_arena *a, const char *to,
                          const char *cop_msg_id, const char *msg_type, const char *code,
                          const char *info, bool write, const char **out, size_t *out_len)
{
    struct tm tm;
    int64_t now = ewtp_sim_now_ms(st->sim);
    bj_tm(now, &tm);
    struct ewtp_xml_writer *w = ewtp_xml_writer_new(0);
    ewtp_xml_start(w, "dxp", "DxpRep");
    ewtp_xml_ns(w, "dxp", NS_DXP);
    ewtp_xml_attr(w, NULL, "ver", "1.0");
    ewtp_xml_elem(w, "dxp", "RecevierId", to && *to && strlen(to) <= 16 ? to : "UNKNOWN");
    ewtp_xml_start(w, "dxp", "Response");
    ewtp_xml_elem(w, "dxp", "ResponseCode", code);
    ewtp_xml_elem(w, "dxp", "ResponseInfo",
                  strlen(info) > 290 ? ewtp_arena_strndup(a, info, 290) : info);
    ewtp_xml_elemf(w, "dxp", "NoticeTime", "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                   tm.tm_mday);
    ewtp_xml_start(w, "dxp", "OriHead");
    ewtp_xml_elem(w, "dxp", "CopMsgId", cop_msg_id && *cop_msg_id ? cop_msg_id : "UNKNOWN");
    ewtp_xml_elem(w, "dxp", "SenderId", to && *to && strlen(to) <= 16 ? to : "UNKNOWN");
    ewtp_xml_start(w, "dxp", "ReceiverIds");
    ewtp_xml_elem(w, "dxp", "ReceiverId", st->dxp_id);
    ewtp_xml_end(w);
    ewtp_xml_elemf(w, "dxp", "CreatTime", "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    ewtp_xml_elem(w, "dxp", "MsgType",
                  msg_type && *msg_type && strlen(msg_type) <= 30 ? msg_type : "Unknown");
    ewtp_xml_end(w);
    ewtp_xml_end(w);
    ewtp_xml_end(w);
    const char *xml;
    size_t len;
    if (writer_done(w, a, &xml, &len) != 0)
        return;
    check_ours(st, "DxpMsg", "DxpRep", xml, len);
    if (out) {
        *out = xml;
        *out_len = len;
    }
    if (write && st->spool_in && strcmp(code, "0") != 0)
        ewtp_sim_spool_write(st->sim, st->spool_in,
                             ewtp_arena_printf(a, "DxpRep_%s.xml", new_guid(st, a)), xml, len);
}

/* ---- stages ------------------------------------------------------------------------------ */

static void run_stage(struct cn_sim *st, struct rec *r, int stage);

static void step_fire(struct ewtp_sim *sim, void *arg)
{
    (void)sim;
    struct step *s = arg;
    struct cn_sim *st = s->st;
    for (struct step **p = &st->steps; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    struct rec *r = s->r;
    int stage = s->stage;
    free(s);
    run_stage(st, r, stage);
}

static void schedule_in(struct cn_sim *st, struct rec *r, int stage, int64_t delay_ms)
{
    struct step *s = calloc(1, sizeof(*s));
    if (s) {
        s->st = st;
        s->r = r;
        s->stage = stage;
        s->t = ewtp_sim_timer_add(st->sim, delay_ms, step_fire, s);
    }
    if (s == NULL || s->t == NULL) {
        free(s);
        ewtp_sim_log(st->sim, EWTP_LOG_ERR, "%s: out of memory, stage %d dropped", r->key, stage);
        r->busy = false;
        return;
    }
    s->next = st->steps;
    st->steps = s;
    r->busy = true;
}

static void schedule(struct cn_sim *st, struct rec *r, int stage)
{
    schedule_in(st, r, stage, st->delay_ms);
}

static struct rec *find(struct cn_sim *st, int no, const char *key)
{
    for (struct rec *r = st->recs; r; r = r->next)
        if (r->no == no && strcmp(r->key, key) == 0)
            return r;
    return NULL;
}

/* The payment of an order: the 411 with the same ebpCode and orderNo (the newest). */
static struct rec *payment_of(struct cn_sim *st, const char *ebp, const char *order_no)
{
    for (struct rec *r = st->recs; r; r = r->next)
        if (r->no == 411 && same(fget(&r->head, "ebpCode"), ebp) &&
            same(fget(&r->head, "orderNo"), order_no))
            return r;
    return NULL;
}

static bool dec_of(const char *s, struct ewtp_dec *d)
{
    /* The schema's decimals: 19 digits, at most 5 after the point. */
    return s && *s && ewtp_dec_parse_ex(s, strlen(s), 19, 5, d) == 0;
}

static bool dec_eq(const char *a, const char *b)
{
    struct ewtp_dec x, y;
    if (!dec_of(a, &x) || !dec_of(b, &y))
        return same(a, b);
    return ewtp_dec_cmp(x, y) == 0;
}

static const struct fields *line_by_gnum(const struct rec *r, const char *gnum)
{
    for (size_t i = 0; i < r->n_lines; i++)
        if (same(fget(&r->lines[i], "gnum"), gnum))
            return &r->lines[i];
    return NULL;
}

/* Customs codes of the three-document match (the simulator's choice where FACTS.md has none):
 *   -621010 no order (311) for ebpCode + orderNo      -621011 no payment (411) for the order
 *   -621012 no waybill (511) for logisticsCode + No   -621013 inventory differs from the order
 *   -621014 payment amount differs from the order's acturalPaid (or payer is not the buyer)
 *   -621016 waybill differs (order number, freight)   -621005 over the single-transaction limit
 * missing documents are waited for up to match_wait_ms, as customs holds an inventory until
 * the other documents arrive. */
struct verdict {
    const char *code;
    char info[900];
};

static void add_reason(struct verdict *v, const char *code, const char *text)
{
    if (v->code == NULL)
        v->code = code;
    size_t n = strlen(v->info);
    snprintf(v->info + n, sizeof(v->info) - n, "%s%s %s", n ? "; " : "", code, text);
}

/* false: a document is missing and there is still time to wait. */
static bool match_621(struct cn_sim *st, struct rec *inv, struct verdict *v, bool final)
{
    const struct fields *h = &inv->head;
    const char *ebp = fget(h, "ebpCode"), *ono = fget(h, "orderNo");
    struct ewtp_arena *a = ewtp_arena_new();
    if (a == NULL)
        return true;
    struct rec *order = find(st, 311, ewtp_arena_printf(a, "CEB311:%s:%s", nz(ebp), nz(ono)));
    struct rec *pay = payment_of(st, ebp, ono);
    struct rec *wb = find(st, 511,
                          ewtp_arena_printf(a, "CEB511:%s:%s", nz(fget(h, "logisticsCode")),
                                            nz(fget(h, "logisticsNo"))));
    ewtp_arena_free(a);
    if ((order == NULL || pay == NULL || wb == NULL) && !final)
        return false;
    if (order == NULL)
        add_reason(v, "-621010", "电子订单不存在 (no order for ebpCode+orderNo)");
    if (pay == NULL)
        add_reason(v, "-621011", "支付单不存在 (no payment for the order)");
    if (wb == NULL)
        add_reason(v, "-621012", "运单不存在 (no waybill for logisticsCode+logisticsNo)");
    if (order) {
        const struct fields *o = &order->head;
        bool diff = !same(fget(h, "ebcCode"), fget(o, "ebcCode")) ||
                    !same(fget(h, "buyerIdNumber"), fget(o, "buyerIdNumber")) ||
                    !same(fget(h, "buyerName"), fget(o, "buyerName")) ||
                    inv->n_lines != order->n_lines;
        for (size_t i = 0; !diff && i < inv->n_lines; i++) {
            const struct fields *il = &inv->lines[i];
            const struct fields *ol = line_by_gnum(order, fget(il, "gnum"));
            diff = ol == NULL || !same(fget(il, "gname"), fget(ol, "itemName")) ||
                   !dec_eq(fget(il, "qty"), fget(ol, "qty")) ||
                   !dec_eq(fget(il, "price"), fget(ol, "price")) ||
                   !dec_eq(fget(il, "totalPrice"), fget(ol, "totalPrice"));
        }
        if (diff)
            add_reason(v, "-621013",
                       "清单与电子订单信息不一致 (inventory differs from the order: merchant, "
                       "buyer or goods lines)");
        if (pay && !dec_eq(fget(&pay->head, "amountPaid"), fget(o, "acturalPaid")))
            add_reason(v, "-621014",
                       "支付单支付金额与电子订单实际支付金额不一致 (payment amountPaid differs "
                       "from the order's acturalPaid)");
        else if (pay && !same(fget(&pay->head, "payerIdNumber"), fget(o, "buyerIdNumber")))
            add_reason(v, "-621014", "支付人与订购人不一致 (payer is not the buyer)");
    }
    if (wb && (!same(fget(&wb->head, "orderNo"), ono) ||
               !dec_eq(fget(&wb->head, "freight"), fget(h, "freight"))))
        add_reason(v, "-621016", "清单与运单信息不一致 (waybill order number or freight differs)");
    if (st->has_limit) {
        struct ewtp_dec sum = ewtp_dec_from_int(0), x;
        for (size_t i = 0; i < inv->n_lines; i++)
            if (dec_of(fget(&inv->lines[i], "totalPrice"), &x))
                ewtp_dec_add(sum, x, &sum);
        if (dec_of(fget(h, "freight"), &x))
            ewtp_dec_add(sum, x, &sum);
        if (dec_of(fget(h, "insuredFee"), &x))
            ewtp_dec_add(sum, x, &sum);
        if (ewtp_dec_cmp(sum, st->limit) > 0)
            add_reason(v, "-621005", "超过单次交易限值 (over the single-transaction limit)");
    }
    return true;
}

static void send_tax(struct cn_sim *st, struct rec *r)
{
    struct ewtp_arena *a = ewtp_arena_new();
    if (a == NULL)
        return;
    const struct fields *h = &r->head;
    const char *g = new_guid(st, a);
    struct ewtp_xml_writer *w = ceb_begin("CEB816Message", g, "Tax");
    /* Per line: VAT share of the line's total; freight and insurance are not apportioned
     * (the simulator's simplification). */
    struct ewtp_dec total = ewtp_dec_from_int(0);
    struct ewtp_dec *vat = calloc(r->n_lines ? r->n_lines : 1, sizeof(*vat));
    for (size_t i = 0; vat && i < r->n_lines; i++) {
        struct ewtp_dec price, v = ewtp_dec_from_int(0);
        if (dec_of(fget(&r->lines[i], "totalPrice"), &price) &&
            ewtp_dec_mul(price, st->vat_rate, &v) == 0)
            ewtp_dec_round(v, 2, &v);
        vat[i] = v;
        ewtp_dec_add(total, v, &total);
    }
    char buf[EWTP_DEC_STRMAX];
    ewtp_xml_start(w, NULL, "TaxHeadRd");
    ewtp_xml_elem(w, NULL, "guid", g);
    ewtp_xml_elem(w, NULL, "returnTime", return_time(a, ewtp_sim_now_ms(st->sim)));
    ewtp_xml_elem(w, NULL, "invtNo", r->invt_no);
    ewtp_xml_elem(w, NULL, "taxNo", ewtp_arena_printf(a, "%s01", r->invt_no));
    ewtp_xml_elem(w, NULL, "customsTax", "0");
    ewtp_dec_format_places(total, 2, buf, sizeof(buf));
    ewtp_xml_elem(w, NULL, "valueAddedTax", buf);
    ewtp_xml_elem(w, NULL, "consumptionTax", "0");
    ewtp_xml_elem(w, NULL, "status", "1");
    opt_elem(w, "assureCode", fget(h, "assureCode"));
    opt_elem(w, "ebcCode", fget(h, "ebcCode"));
    opt_elem(w, "logisticsCode", fget(h, "logisticsCode"));
    opt_elem(w, "agentCode", fget(h, "agentCode"));
    opt_elem(w, "customsCode", fget(h, "customsCode"));
    ewtp_xml_end(w);
    for (size_t i = 0; vat && i < r->n_lines && i < 99; i++) {
        ewtp_xml_start(w, NULL, "TaxListRd");
        ewtp_xml_elem(w, NULL, "gnum", fget(&r->lines[i], "gnum"));
        ewtp_xml_elem(w, NULL, "gcode", fget(&r->lines[i], "gcode"));
        ewtp_xml_elem(w, NULL, "taxPrice", fget(&r->lines[i], "totalPrice"));
        ewtp_xml_elem(w, NULL, "customsTax", "0");
        ewtp_dec_format_places(vat[i], 2, buf, sizeof(buf));
        ewtp_xml_elem(w, NULL, "valueAddedTax", buf);
        ewtp_xml_elem(w, NULL, "consumptionTax", "0");
        ewtp_xml_end(w);
    }
    free(vat);
    ewtp_xml_end(w);
    ewtp_xml_end(w);
    const char *xml;
    size_t len;
    if (writer_done(w, a, &xml, &len) == 0) {
        ewtp_sim_log(st->sim, EWTP_LOG_INFO, "%s -> CEB816Message tax bill for %s", r->key,
                     r->invt_no);
        send_doc(st, a, "CEB816Message", r->sender, xml, len);
    }
    ewtp_arena_free(a);
}

static struct rec *inventory_by_invt(struct cn_sim *st, const char *invt_no, const char *cop_no)
{
    for (struct rec *r = st->recs; r; r = r->next)
        if (r->no == 621 && ((invt_no && *invt_no && same(r->invt_no, invt_no)) ||
                             ((invt_no == NULL || *invt_no == '\0') && cop_no &&
                              same(fget(&r->head, "copNo"), cop_no))))
            return r;
    return NULL;
}

/* The number customs assigns (invtNo, sumNo): 18 characters, customs code, year, flag
 * (I import, E export, S summary) and a serial. */
static void assign_number(struct cn_sim *st, struct rec *r, char flag)
{
    if (r->invt_no)
        return;
    struct tm tm;
    bj_tm(ewtp_sim_now_ms(st->sim), &tm);
    const char *cc = fget(&r->head, "customsCode");
    char buf[64];
    snprintf(buf, sizeof(buf), "%.4s%04d%c%09llu", cc && strlen(cc) == 4 ? cc : "0000",
             tm.tm_year + 1900, flag, (unsigned long long)(++st->serial % 1000000000ULL));
    r->invt_no = strdup(buf);
}

static void run_stage(struct cn_sim *st, struct rec *r, int stage)
{
    r->busy = false;
    switch (stage) {
    case STAGE_ACK: {
        char info[128];
        snprintf(info, sizeof(info), "新增申报成功[%s]", nz(r->guid));
        if (r->no == 623) {
            /* A cancel names a released inventory by invtNo; it needs that inventory's preNo
             * and copNo in its receipts. */
            struct rec *inv =
                inventory_by_invt(st, fget(&r->head, "invtNo"), fget(&r->head, "copNo"));
            if (inv == NULL || inv->invt_no == NULL) {
                if (r->pre_no == NULL)
                    r->pre_no = strdup(NO_PRE_NO);
                answer(st, r, "-623001",
                       "撤销清单对应的清单不存在或未放行 (no released "
                       "inventory with this invtNo)");
                return;
            }
            free(r->pre_no);
            free(r->invt_no);
            r->pre_no = strdup(inv->pre_no);
            r->invt_no = strdup(inv->invt_no);
        }
        answer(st, r, "2", info);
        schedule(st, r, STAGE_DECIDE);
        return;
    }
    case STAGE_DECIDE:
        if (r->no == 621) {
            struct verdict v = {0};
            int64_t waited = ewtp_sim_now_ms(st->sim) - r->received_ms;
            if (!match_621(st, r, &v, waited >= st->match_wait_ms)) {
                /* Hold until the other documents arrive (never a busy loop). */
                schedule_in(st, r, STAGE_DECIDE, st->delay_ms > 50 ? st->delay_ms : 50);
                return;
            }
            if (v.code) {
                answer(st, r, v.code, v.info);
                return;
            }
            assign_number(st, r, 'I');
            answer(st, r, "120", "入库成功，已生成清单编号 (stored by customs, invtNo assigned)");
            schedule(st, r, STAGE_TAX);
            return;
        }
        if (r->no == 623) {
            struct rec *inv = inventory_by_invt(st, r->invt_no, NULL);
            if (inv)
                inv->cancelled = true;
            answer(st, r, "399", "撤销申请审结 (cancellation concluded)");
            return;
        }
        if (r->no == 625) {
            answer(st, r, "399", "退货申请审结 (return concluded)");
            return;
        }
        if (r->no == 605) {
            answer(st, r, "399", "撤销申请审结 (cancellation concluded)");
            return;
        }
        if (r->no == 603 || r->no == 701) {
            /* The export inventory gets its invtNo, the summary its sumNo; the inventory is
             * then released like an import one. */
            assign_number(st, r, r->no == 603 ? 'E' : 'S');
            answer(st, r, "120", "入库成功 (stored by customs)");
            if (r->no == 603)
                schedule(st, r, STAGE_RELEASE);
            return;
        }
        answer(st, r, "120", "入库成功 (stored by customs)");
        return;
    case STAGE_TAX:
        send_tax(st, r);
        schedule(st, r, STAGE_RELEASE);
        return;
    case STAGE_RELEASE:
        answer(st, r, "800", "放行 (released)");
        return;
    default:
        return;
    }
}

/* ---- receiving --------------------------------------------------------------------------- */

/* What a request root holds: entity path, head (relative, "." for flat entities), lines. */
struct doc_kind {
    int no;
    const char *entity, *head, *lines;
    const char *dup_code; /* appType 1 with a known key and a new guid */
};
static const struct doc_kind kinds[] = {
    {311, "/*/ceb:Order", "ceb:OrderHead", "ceb:OrderList", "-301010"},
    {411, "/*/ceb:Payment", "ceb:PaymentHead", NULL, "-401007"},
    {511, "/*/ceb:Logistics", "ceb:LogisticsHead", NULL, "-504015"},
    {513, "/*/ceb:LogisticsStatus", ".", NULL, NULL},
    {621, "/*/ceb:Inventory", "ceb:InventoryHead", "ceb:InventoryList", "-621004"},
    {623, "/*/ceb:InvtCancel", ".", NULL, NULL},
    {625, "/*/ceb:InvtRefund", "ceb:InvtRefundHead", "ceb:InvtRefundList", NULL},
    {711, "/*/ceb:Delivery", "ceb:DeliveryHead", "ceb:DeliveryList", NULL},
    /* export (the export schema: same namespace, other content) */
    {303, "/*/ceb:Order", "ceb:OrderHead", "ceb:OrderList", "-301010"},
    {403, "/*/ceb:Receipts", ".", NULL, NULL},
    {505, "/*/ceb:Logistics", ".", NULL, NULL},
    {507, "/*/ceb:Arrival", "ceb:ArrivalHead", "ceb:ArrivalList", NULL},
    {509, "/*/ceb:Departure", "ceb:DepartureHead", "ceb:DepartureList", NULL},
    {603, "/*/ceb:Inventory", "ceb:InventoryHead", "ceb:InventoryList", NULL},
    {605, "/*/ceb:InvtCancel", ".", NULL, NULL},
    {607, "/*/ceb:WayBill", "ceb:WayBillHead", "ceb:WayBillList", NULL},
    {701, "/*/ceb:SummaryApply", "ceb:SummaryApplyHead", "ceb:SummaryApplyList", NULL},
    {0, NULL, NULL, NULL, NULL},
};

static const char *key_of(struct ewtp_arena *a, int no, const struct fields *h)
{
    switch (no) {
    case 311:
    case 303:
        return ewtp_arena_printf(a, "CEB%d:%s:%s", no, nz(fget(h, "ebpCode")),
                                 nz(fget(h, "orderNo")));
    case 403:
        return ewtp_arena_printf(a, "CEB403:%s:%s", nz(fget(h, "ebcCode")), nz(fget(h, "orderNo")));
    case 411:
        return ewtp_arena_printf(a, "CEB411:%s:%s", nz(fget(h, "payCode")),
                                 nz(fget(h, "payTransactionId")));
    case 511:
    case 513:
    case 505:
        return ewtp_arena_printf(a, "CEB%d:%s:%s", no, nz(fget(h, "logisticsCode")),
                                 nz(fget(h, "logisticsNo")));
    default:
        return ewtp_arena_printf(a, "CEB%d:%s", no, nz(fget(h, "copNo")));
    }
}

/* One entity of a valid, verified request. */
static void take_entity(struct cn_sim *st, struct ewtp_xml_doc *doc, const struct doc_kind *k,
                        const struct ewtp_xml_node *ent, const char *sender, struct ewtp_arena *a)
{
    struct rec *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return;
    r->no = k->no;
    const struct ewtp_xml_node **hn = NULL, **ln = NULL;
    size_t nh = 0, nl = 0;
    int rc = strcmp(k->head, ".") == 0
                 ? read_fields(doc, ent, a, &r->head)
                 : (ewtp_xml_xpath_nodes(doc, ent, k->head, a, &hn, &nh) == 0 && nh == 1
                        ? read_fields(doc, hn[0], a, &r->head)
                        : -EWTP_EINVAL);
    if (rc == 0 && k->lines && ewtp_xml_xpath_nodes(doc, ent, k->lines, a, &ln, &nl) == 0 && nl) {
        r->lines = calloc(nl, sizeof(*r->lines));
        for (size_t i = 0; r->lines && rc == 0 && i < nl; i++, r->n_lines++)
            rc = read_fields(doc, ln[i], a, &r->lines[i]);
        if (r->lines == NULL)
            rc = -EWTP_ENOMEM;
    }
    const char *key = rc == 0 ? key_of(a, k->no, &r->head) : NULL;
    r->key = key ? strdup(key) : NULL;
    r->guid = strdup(nz(fget(&r->head, "guid")));
    r->sender = strdup(nz(sender));
    r->received_ms = ewtp_sim_now_ms(st->sim);
    if (rc != 0 || r->key == NULL || r->guid == NULL || r->sender == NULL) {
        rec_free(r);
        return;
    }
    ewtp_sim_record(st->sim, r->key);
    struct rec *old = k->no == 623 ? NULL : find(st, k->no, r->key);
    if (old && same(old->guid, r->guid)) {
        /* The same document again (a resend after a crash): nothing new; the sender gets the
         * last receipt again unless more are on their way. */
        if (!old->busy && old->last_status)
            answer(st, old, old->last_status, old->last_info);
        rec_free(r);
        return;
    }
    const char *app_type = fget(&r->head, "appType");
    if (old && k->dup_code && (app_type == NULL || strcmp(app_type, "1") == 0)) {
        /* A second declaration of the same key: refused, the first one stands. The refusal
         * is answered through a throw-away record with the new guid. */
        if (k->no == 621)
            r->pre_no = strdup(old->pre_no ? old->pre_no : NO_PRE_NO);
        answer(st, r, k->dup_code, "同一编号的单证已存在 (a document with this number exists)");
        rec_free(r);
        return;
    }
    if (old) {
        /* appType 2 (change): the new content replaces the old under the same key. */
        rec_clear(old);
        old->head = r->head;
        old->lines = r->lines;
        old->n_lines = r->n_lines;
        r->head.kv = NULL;
        r->head.n = 0;
        r->lines = NULL;
        r->n_lines = 0;
        free(old->guid);
        old->guid = r->guid;
        r->guid = NULL;
        old->received_ms = r->received_ms;
        rec_free(r);
        r = old;
    } else {
        if (st->n_recs >= RECORDS_MAX) {
            ewtp_sim_log(st->sim, EWTP_LOG_ERR, "state full (%d documents): %s dropped",
                         RECORDS_MAX, r->key);
            rec_free(r);
            return;
        }
        r->next = st->recs;
        st->recs = r;
        st->n_recs++;
    }
    if (r->no != 623 && r->pre_no == NULL) { /* a cancel takes its inventory's */
        struct tm tm;
        bj_tm(r->received_ms, &tm);
        char buf[64];
        snprintf(buf, sizeof(buf), "B%04d%02d%02d%09llu", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, (unsigned long long)(++st->serial % 1000000000ULL));
        r->pre_no = strdup(buf);
    }
    schedule(st, r, STAGE_ACK);
}

/* Checks one payload (the decoded Data) and takes its entities. */
static void take_payload(struct cn_sim *st, const char *sender, const char *cop_msg_id,
                         const char *msg_type, const unsigned char *data, size_t len,
                         struct ewtp_arena *a)
{
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        data += 3;
        len -= 3;
    }
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ewtp_xml_doc *doc = NULL;
    if (errs == NULL)
        return;
    if (ewtp_xml_parse(data, len, errs, &doc) != 0) {
        ewtp_sim_record(st->sim, ewtp_arena_printf(a, "DXP:%s", nz(cop_msg_id)));
        answer_900(
            st, sender, cop_msg_id, msg_type, data, len, "-1",
            ewtp_arena_printf(a, "报文格式错误 (not well-formed XML): %s",
                              ewtp_errors_count(errs) ? ewtp_errors_at(errs, 0)->message : "?"));
        ewtp_errors_free(errs);
        return;
    }
    ewtp_xml_ns_register(doc, "ceb", NS_CEB);
    ewtp_xml_ns_register(doc, "ds", NS_DS);
    const struct ewtp_xml_node *root = ewtp_xml_root(doc);
    const char *name = ewtp_xml_node_name(root), *ns = ewtp_xml_node_ns(root);
    const struct doc_kind *k = NULL;
    int no = ns && strcmp(ns, NS_CEB) == 0 && strncmp(name, "CEB", 3) == 0 ? atoi(name + 3) : 0;
    for (size_t i = 0; kinds[i].no && no; i++)
        if (kinds[i].no == no)
            k = &kinds[i];
    struct ewtp_xsd *x = k ? xsd_for(st, name) : NULL;
    const char *fail = NULL;
    if (k == NULL)
        fail = ewtp_arena_printf(a, "不支持的报文类型 (message type %s is not handled here)", name);
    else if (msg_type && strcmp(msg_type, name) != 0)
        fail = ewtp_arena_printf(a, "MsgType %s differs from the payload root %s", msg_type, name);
    else if (x == NULL)
        fail = ewtp_arena_printf(a, "no schema for %s in %s", name, st->xsd_dir);
    else if (ewtp_xsd_validate_doc(x, doc, errs) != 0) {
        size_t n = ewtp_errors_count(errs);
        char *all = ewtp_arena_printf(a, "报文格式校验失败 (XSD):");
        for (size_t i = 0; i < n && i < 8; i++)
            all = ewtp_arena_printf(a, "%s %s", all, ewtp_errors_at(errs, i)->message);
        fail = all;
    }
    if (fail) {
        ewtp_sim_record(st->sim, ewtp_arena_printf(a, "DXP:%s", nz(cop_msg_id)));
        answer_900(st, sender, cop_msg_id, msg_type ? msg_type : name, data, len, "-1", fail);
        ewtp_errors_free(errs);
        ewtp_xml_free(doc);
        return;
    }
    size_t nsig = 0;
    ewtp_xml_xpath_count(doc, NULL, "/*/ds:Signature", &nsig);
    if (nsig > 0 && st->verify_signatures) {
        ewtp_errors_clear(errs);
        if (ewtp_dsig_verify(data, len, NULL, 0, errs) != 0) {
            const char *why = ewtp_errors_count(errs) ? ewtp_errors_at(errs, 0)->message : "?";
            ewtp_sim_record(st->sim, ewtp_arena_printf(a, "DXP:%s", nz(cop_msg_id)));
            ewtp_sim_log(st->sim, EWTP_LOG_WARNING, "%s %s: signature: %s", name, nz(cop_msg_id),
                         why);
            /* The inventory has its own code for this (-621029); other documents get the
             * format-check receipt. */
            const struct ewtp_xml_node **ents = NULL;
            size_t ne = 0;
            if (no == 621 &&
                ewtp_xml_xpath_nodes(doc, NULL, "/*/ceb:Inventory/ceb:InventoryHead", a, &ents,
                                     &ne) == 0 &&
                ne > 0) {
                /* A throw-away record: the refused inventory is not kept. */
                struct rec *r = calloc(1, sizeof(*r));
                if (r && read_fields(doc, ents[0], a, &r->head) == 0) {
                    r->no = 621;
                    r->key = strdup(key_of(a, 621, &r->head));
                    r->sender = strdup(nz(sender));
                    r->pre_no = strdup(NO_PRE_NO);
                    r->guid = strdup(nz(fget(&r->head, "guid")));
                    if (r->key && r->sender && r->pre_no && r->guid)
                        answer(st, r, "-621029",
                               ewtp_arena_printf(a, "电子签名验证失败 (signature check failed): %s",
                                                 why));
                }
                if (r)
                    rec_free(r);
            } else {
                answer_900(st, sender, cop_msg_id, name, data, len, "-1",
                           ewtp_arena_printf(a, "签名验证失败 (signature check failed): %s", why));
            }
            ewtp_errors_free(errs);
            ewtp_xml_free(doc);
            return;
        }
    }
    ewtp_errors_free(errs);
    const struct ewtp_xml_node **ents = NULL;
    size_t ne = 0;
    if (ewtp_xml_xpath_nodes(doc, NULL, k->entity, a, &ents, &ne) == 0)
        for (size_t i = 0; i < ne; i++)
            take_entity(st, doc, k, ents[i], sender, a);
    ewtp_xml_free(doc);
}

static bool receiver_ok(const struct cn_sim *st, const char *id)
{
    if (id == NULL || *id == '\0')
        return false;
    size_t n = strlen(id);
    for (const char *p = st->receivers; p && (p = strstr(p, id)) != NULL; p += n)
        if ((p == st->receivers || p[-1] == ' ' || p[-1] == ',') &&
            (p[n] == '\0' || p[n] == ' ' || p[n] == ','))
            return true;
    return false;
}

/* One DxpMsg (a file's bytes or an HTTP body): refused with a DxpRep (into spool_in when
 * write_rep; into *rep for the HTTP face), or its payload is taken. */
static void take_envelope(struct cn_sim *st, const void *data, size_t len, struct ewtp_arena *a,
                          bool write_rep, const char **rep, size_t *rep_len)
{
    struct ewtp_errors *errs = ewtp_errors_new();
    struct ewtp_xml_doc *doc = NULL;
    const char *code = "0", *info = "成功 (accepted)";
    const char *id = NULL, *sender = NULL, *receiver = NULL, *type = NULL, *b64 = NULL;
    if (errs == NULL)
        return;
    if (len > FILE_MAX) {
        code = "0001";
        info = "报文过大 (message too large)";
    } else if (ewtp_xml_parse(data, len, errs, &doc) != 0) {
        code = "0001";
        info = "报文不是合法的XML (not well-formed XML)";
    } else {
        ewtp_xml_ns_register(doc, "dxp", NS_DXP);
        ewtp_xml_xpath_string(doc, NULL, "/dxp:DxpMsg/dxp:TransInfo/dxp:CopMsgId", a, &id);
        ewtp_xml_xpath_string(doc, NULL, "/dxp:DxpMsg/dxp:TransInfo/dxp:SenderId", a, &sender);
        ewtp_xml_xpath_string(doc, NULL, "/dxp:DxpMsg/dxp:TransInfo/dxp:ReceiverIds/dxp:ReceiverId",
                              a, &receiver);
        ewtp_xml_xpath_string(doc, NULL, "/dxp:DxpMsg/dxp:TransInfo/dxp:MsgType", a, &type);
        ewtp_xml_xpath_string(doc, NULL, "/dxp:DxpMsg/dxp:Data", a, &b64);
        struct ewtp_xsd *x = xsd_for(st, "DxpMsg");
        const struct ewtp_xml_node *root = ewtp_xml_root(doc);
        if (strcmp(ewtp_xml_node_name(root), "DxpMsg") != 0 ||
            !same(ewtp_xml_node_ns(root), NS_DXP) ||
            (x && ewtp_xsd_validate_doc(x, doc, errs) != 0)) {
            code = "0002";
            info = ewtp_arena_printf(a, "传输报文格式校验失败 (envelope not valid): %s",
                                     ewtp_errors_count(errs) ? ewtp_errors_at(errs, 0)->message
                                                             : "not a DxpMsg");
        } else if (!receiver_ok(st, receiver)) {
            code = "2001";
            info = ewtp_arena_printf(a, "接收方不存在 (unknown receiver %s)", nz(receiver));
        }
    }
    unsigned char *payload = NULL;
    size_t plen = 0;
    if (strcmp(code, "0") == 0 &&
        (b64 == NULL ||
         ewtp_base64_decode(a, b64, strlen(b64), EWTP_BASE64_ALLOW_WS, &payload, &plen) != 0)) {
        code = "0002";
        info = "Data is not Base64";
    }
    if (strcmp(code, "0") != 0) {
        ewtp_sim_record(st->sim, ewtp_arena_printf(a, "DXP:%s", id ? id : "?"));
        ewtp_sim_log(st->sim, EWTP_LOG_WARNING, "DxpMsg %s refused: %s %s", nz(id), code, info);
    }
    answer_dxprep(st, a, sender, id, type, code, info, write_rep, rep, rep_len);
    ewtp_xml_free(doc);
    ewtp_errors_free(errs);
    if (strcmp(code, "0") == 0)
        take_payload(st, sender, id, type, payload, plen, a);
}

/* ---- spool watcher ----------------------------------------------------------------------- */

/* One file of the out-folder: a DxpMsg, answered into spool_in. */
static void take_file(void *arg, const char *name, const char *data, size_t len,
                      struct ewtp_arena *a)
{
    (void)name;
    take_envelope(arg, data, len, a, true, NULL, NULL);
}

/* Watches spool_out (every poll_ms) once create has finished; again after either changes. */
static void rewatch(struct cn_sim *st)
{
    ewtp_sim_spool_unwatch(st->watch);
    st->watch = st->ready ? ewtp_sim_spool_watch(st->sim, st->spool_out, st->poll_ms, SCAN_MAX,
                                                 FILE_MAX, take_file, st)
                          : NULL;
}

/* ---- module ------------------------------------------------------------------------------ */

/* An empty value restores the default, as no value does (the E-port client's habit). */
static int set_str(char **field, const char *value, const char *def)
{
    return ewtp_sim_set_string_ex(field, value, def, EWTP_SIM_EMPTY_IS_DEFAULT);
}

static int set_ms(int64_t *field, const char *key, const char *value, int64_t def, int64_t min,
                  struct ewtp_errors *why)
{
    return ewtp_sim_set_int_ex(key, value, def, min, 86400000, EWTP_SIM_EMPTY_IS_DEFAULT, why,
                               field);
}

static int cn_sim_set(void *state, const char *key, const char *value, struct ewtp_errors *why)
{
    struct cn_sim *st = state;
    if (strcmp(key, "spool_out") == 0) {
        int rc = set_str(&st->spool_out, value, NULL);
        rewatch(st);
        return rc;
    }
    if (strcmp(key, "spool_in") == 0)
        return set_str(&st->spool_in, value, NULL);
    if (strcmp(key, "dxp_id") == 0)
        return set_str(&st->dxp_id, value, DEFAULT_DXP_ID);
    if (strcmp(key, "receivers") == 0)
        return set_str(&st->receivers, value, DEFAULT_RECEIVERS);
    if (strcmp(key, "xsd_dir") == 0) {
        /* Schemas already loaded from the old folder stay until restart. */
        return set_str(&st->xsd_dir, value, CN_SIM_XSD_DIR);
    }
    if (strcmp(key, "delay_ms") == 0)
        return set_ms(&st->delay_ms, key, value, DEFAULT_DELAY_MS, 0, why);
    if (strcmp(key, "poll_ms") == 0) {
        int rc = set_ms(&st->poll_ms, key, value, DEFAULT_POLL_MS, 10, why);
        if (rc == 0 && st->watch)
            rewatch(st);
        return rc;
    }
    if (strcmp(key, "match_wait_ms") == 0)
        return set_ms(&st->match_wait_ms, key, value, DEFAULT_MATCH_WAIT_MS, 0, why);
    if (strcmp(key, "verify_signatures") == 0)
        return ewtp_sim_set_bool(key, value && *value ? value : NULL, true, why,
                                 &st->verify_signatures);
    if (strcmp(key, "transaction_limit") == 0) {
        const char *v = value ? value : DEFAULT_LIMIT;
        if (*v == '\0') {
            st->has_limit = false;
            return 0;
        }
        if (ewtp_dec_parse(v, &st->limit) != 0) {
            ewtp_errors_add(why, key, "format", "transaction_limit must be a decimal amount");
            return -EWTP_EINVAL;
        }
        st->has_limit = true;
        return 0;
    }
    if (strcmp(key, "vat_rate") == 0) {
        if (ewtp_dec_parse(value ? value : DEFAULT_VAT_RATE, &st->vat_rate) != 0) {
            ewtp_errors_add(why, key, "format", "vat_rate must be a decimal (0.091)");
            return -EWTP_EINVAL;
        }
        return 0;
    }
    return -EWTP_ENOTFOUND;
}

static void cn_sim_destroy(void *state)
{
    struct cn_sim *st = state;
    if (st == NULL)
        return;
    ewtp_sim_spool_unwatch(st->watch);
    while (st->steps) {
        struct step *s = st->steps;
        st->steps = s->next;
        ewtp_sim_timer_cancel(st->sim, s->t);
        free(s);
    }
    while (st->recs) {
        struct rec *r = st->recs;
        st->recs = r->next;
        rec_free(r);
    }
    for (size_t i = 0; i < st->n_xsds; i++) {
        free(st->xsds[i].root);
        ewtp_xsd_free(st->xsds[i].xsd);
    }
    free(st->xsds);
    free(st->spool_out);
    free(st->spool_in);
    free(st->xsd_dir);
    free(st->dxp_id);
    free(st->receivers);
    free(st);
}

static int cn_sim_create(struct ewtp_sim *sim, const struct ewtp_settings *settings, void **state,
                         struct ewtp_errors *why)
{
    struct cn_sim *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -EWTP_ENOMEM;
    st->sim = sim;
    static const char *const defaults[] = {
        "dxp_id",        "receivers",         "xsd_dir",           "delay_ms", "poll_ms",
        "match_wait_ms", "verify_signatures", "transaction_limit", "vat_rate", NULL};
    int rc = ewtp_sim_apply_settings(st, cn_sim_set, defaults, settings,
                                     "spool_out spool_in delay_ms poll_ms match_wait_ms dxp_id "
                                     "receivers xsd_dir verify_signatures transaction_limit "
                                     "vat_rate",
                                     why);
    if (rc == 0 && xsd_for(st, "DxpMsg") == NULL) {
        ewtp_errors_add(why, "xsd_dir", "format", "no DxpMsg.xsd in %s", st->xsd_dir);
        rc = -EWTP_EINVAL;
    }
    if (rc != 0) {
        cn_sim_destroy(st);
        return rc;
    }
    st->ready = true; /* from now on a new spool_out (POST /_sim/control) starts the scan */
    rewatch(st);
    if (st->spool_out == NULL)
        ewtp_sim_log(sim, EWTP_LOG_WARNING, "no spool_out: only POST /dxp is served");
    *state = st;
    return 0;
}

static int cn_sim_handle(void *state, const struct ewtp_sim_request *req,
                         struct ewtp_sim_response *resp)
{
    struct cn_sim *st = state;
    if (!ewtp_sim_route(req->path, "/dxp", req->arena, NULL, 0)) {
        ewtp_sim_reply_error(req, resp, 404, "404", "no such endpoint (POST /dxp)", NULL);
        return 0;
    }
    if (strcmp(req->method, "POST") != 0) {
        ewtp_sim_reply_error(req, resp, 405, "405", "use POST", NULL);
        return 0;
    }
    const char *rep = NULL;
    size_t rep_len = 0;
    take_envelope(st, req->body, req->body_len, req->arena, false, &rep, &rep_len);
    if (rep == NULL)
        ewtp_sim_reply_error(req, resp, 500, "3001", "out of memory", NULL);
    else
        ewtp_sim_reply(resp, 200, "application/xml", rep, rep_len);
    return 0;
}

EWTP_SIM_MODULE(.name = "cn", .country = "CN",
                .authority = "China customs (GACC) cross-border e-commerce, via E-port DXP",
                .create = cn_sim_create, .handle = cn_sim_handle, .destroy = cn_sim_destroy,
                .set = cn_sim_set);
