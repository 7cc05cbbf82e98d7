/* Every official CEB sample through the cn plugin's receive (dlopened as the daemon would),
 * plus constructed DXP-wrapped, DxpRep, CEB900 and tax bill receipts: receipts map to the
 * expected verdict and correlation key, requests and garbage are "not mine" (never a crash).
 * Samples: ../shared/reference/cn/samples (see its VALIDATION.md). */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ewtp/crypto.h>
#include <ewtp/plugin.h>

struct expect {
    const char *file; /* under samples/, or NULL for inline bodies */
    const char *body; /* inline */
    int rc;           /* 0 or -EWTP_ENOTFOUND */
    int verdict;      /* enum ewtp_verdict, when rc == 0 */
    const char *key;  /* correlation key, when rc == 0 */
    const char *code; /* outcome code, or NULL */
};

static const struct ewtp_plugin *plugin;
static void *state;
static int failures;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

static void run(const char *label, const void *body, size_t len, const struct expect *e)
{
    struct ewtp_arena *a = ewtp_arena_new();
    struct ewtp_inbound in = {.size = sizeof(in),
                              .source = "spool",
                              .name = label,
                              .body = body,
                              .body_len = len,
                              .arena = a};
    struct ewtp_correlation to = EWTP_CORRELATION_INIT();
    struct ewtp_outcome o = EWTP_OUTCOME_INIT();
    int rc = plugin->receive(state, &in, &to, &o);
    const char *why = NULL;
    if (rc != e->rc)
        why = "return code";
    else if (rc == 0 && (int)o.verdict != e->verdict)
        why = "verdict";
    else if (rc == 0 && (to.authority_ref == NULL || strcmp(to.authority_ref, e->key) != 0))
        why = "correlation key";
    else if (rc == 0 && e->code && (o.code == NULL || strcmp(o.code, e->code) != 0))
        why = "code";
    if (why) {
        printf("FAIL %s: %s (rc %d verdict %s key %s code %s message %s)\n", label, why, rc,
               rc == 0 ? ewtp_verdict_name(o.verdict) : "-", rc == 0 ? to.authority_ref : "-",
               rc == 0 ? o.code : "-", rc == 0 && o.message ? o.message : "-");
        failures++;
    } else {
        printf("ok   %s%s%s%s%s\n", label, rc == 0 ? " -> " : " (not a receipt)",
               rc == 0 ? ewtp_verdict_name(o.verdict) : "", rc == 0 ? " " : "",
               rc == 0 ? o.code : "");
    }
    ewtp_arena_free(a);
}

#define V_SUB EWTP_V_SUBMITTED
#define V_OK EWTP_V_APPROVED
#define V_NO EWTP_V_REJECTED
#define NF (-EWTP_ENOTFOUND)

static const struct expect samples[] = {
    /* import receipts */
    {"import/CEB312Message.xml", NULL, 0, V_SUB, "CEB311:1105910159:order20160321116420545",
     "CEB312:2"},
    {"import/CEB412Message.xml", NULL, 0, V_OK, NULL, "CEB412:120"},
    {"import/CEB512Message.xml", NULL, 0, V_SUB, NULL, "CEB512:2"},
    {"import/CEB514Message.xml", NULL, 0, V_SUB, NULL, "CEB514:18"},
    {"import/CEB622Message.xml", NULL, 0, V_SUB, "CEB621:cop2016032211000", "CEB622:1"},
    {"import/CEB624Message.xml", NULL, 0, V_SUB, "CEB621:cop2016032210052", "CEB624:23"},
    {"import/CEB626Message.xml", NULL, 0, V_SUB, "CEB625:cop201604270088", "CEB626:18"},
    {"import/CEB712Message.xml", NULL, 0, V_SUB, "CEB711:cop0160308021", "CEB712:18"},
    /* import requests are not receipts */
    {"import/CEB311Message.xml", NULL, NF, 0, NULL, NULL},
    {"import/CEB411Message.xml", NULL, NF, 0, NULL, NULL},
    {"import/CEB511Message.xml", NULL, NF, 0, NULL, NULL},
    {"import/CEB513Message.xml", NULL, NF, 0, NULL, NULL},
    {"import/CEB621Message.xml", NULL, NF, 0, NULL, NULL},
    {"import/CEB623Message.xml", NULL, NF, 0, NULL, NULL},
    {"import/CEB625Message.xml", NULL, NF, 0, NULL, NULL},
    {"import/CEB711Message.xml", NULL, NF, 0, NULL, NULL},
    /* export receipts (214 has the wrong root name in the official sample; 213/215 are not
     * sent by this plugin, so their receipts are not ours) */
    {"export/CEB304Message.xml", NULL, 0, V_SUB, NULL, "CEB304:2"},
    {"export/CEB404Message.xml", NULL, 0, V_SUB, NULL, "CEB404:2"},
    {"export/CEB506Message.xml", NULL, 0, V_SUB, NULL, "CEB506:2"},
    {"export/CEB508Message.xml", NULL, 0, V_SUB, "CEB507:Cop20180507001", "CEB508:2"},
    {"export/CEB510Message.xml", NULL, 0, V_SUB, NULL, NULL},
    {"export/CEB604Message.xml", NULL, 0, V_SUB, "CEB603:Cop20180507001", "CEB604:2"},
    {"export/CEB606Message.xml", NULL, 0, V_SUB, "CEB603:Cop20180507001", "CEB606:2"},
    {"export/CEB608Message.xml", NULL, 0, V_SUB, NULL, NULL},
    {"export/CEB702Message.xml", NULL, 0, V_SUB, NULL, NULL},
    {"export/CEB792Message.xml", NULL, 0, EWTP_V_INFO, NULL, NULL},
    {"export/CEB214Message.xml", NULL, NF, 0, NULL, NULL},
    {"export/CEB216Message.xml", NULL, NF, 0, NULL, NULL},
    {"export/CEB303Message.xml", NULL, NF, 0, NULL, NULL},
    {"dxp/DxpMsg-CEB311-constructed.xml", NULL, NF, 0, NULL, NULL},
};

#define NS "xmlns=\"http://www.chinaport.gov.cn/ceb\""
static const struct expect inline_cases[] = {
    {"622 released",
     "<CEB622Message " NS " guid=\"A\" version=\"1.0\"><InventoryReturn>"
     "<guid>A</guid><copNo>C1</copNo><preNo>B20260000000000001</preNo>"
     "<invtNo>292820261000000001</invtNo><returnStatus>800</returnStatus>"
     "<returnTime>20261122120000000</returnTime><returnInfo>放行</returnInfo>"
     "</InventoryReturn></CEB622Message>",
     0, V_OK, "CEB621:C1", "CEB622:800"},
    {"622 rejected -621005",
     "<CEB622Message " NS " guid=\"A\" version=\"1.0\"><InventoryReturn>"
     "<guid>A</guid><copNo>C1</copNo><preNo>B20260000000000001</preNo>"
     "<returnStatus>-621005</returnStatus><returnTime>20261122120000000</returnTime>"
     "<returnInfo>超过单次限值</returnInfo></InventoryReturn></CEB622Message>",
     0, V_NO, "CEB621:C1", "CEB622:-621005"},
    {"622 customs 100",
     "<CEB622Message " NS " guid=\"A\" version=\"1.0\"><InventoryReturn>"
     "<guid>A</guid><copNo>C1</copNo><preNo>B20260000000000001</preNo>"
     "<returnStatus>100</returnStatus><returnTime>20261122120000000</returnTime>"
     "<returnInfo>退单</returnInfo></InventoryReturn></CEB622Message>",
     0, V_NO, "CEB621:C1", "CEB622:100"},
    {"622 forwarding failed 4",
     "<CEB622Message " NS " guid=\"A\" version=\"1.0\">"
     "<InventoryReturn><guid>A</guid><copNo>C1</copNo><preNo>B20260000000000001</preNo>"
     "<returnStatus>4</returnStatus><returnTime>20261122120000000</returnTime>"
     "<returnInfo>x</returnInfo></InventoryReturn></CEB622Message>",
     0, EWTP_V_RETRY, "CEB621:C1", "CEB622:4"},
    {"624 cancelled",
     "<CEB624Message " NS " guid=\"A\" version=\"1.0\"><InvtCancelReturn>"
     "<guid>A</guid><copNo>C1</copNo><preNo>B20260000000000001</preNo>"
     "<invtNo>292820261000000001</invtNo><returnStatus>399</returnStatus>"
     "<returnTime>20261122120000000</returnTime><returnInfo>审结</returnInfo>"
     "</InvtCancelReturn></CEB624Message>",
     0, EWTP_V_CANCELLED, "CEB621:C1", "CEB624:399"},
    {"624 refused keeps state",
     "<CEB624Message " NS " guid=\"A\" version=\"1.0\">"
     "<InvtCancelReturn><guid>A</guid><copNo>C1</copNo><preNo>B20260000000000001</preNo>"
     "<returnStatus>100</returnStatus><returnTime>20261122120000000</returnTime>"
     "<returnInfo>退单</returnInfo></InvtCancelReturn></CEB624Message>",
     0, EWTP_V_INFO, "CEB621:C1", "CEB624:100"},
    {"312 stored 120",
     "<CEB312Message " NS " guid=\"A\" version=\"1.0\"><OrderReturn>"
     "<guid>A</guid><ebpCode>P1</ebpCode><ebcCode>E1</ebcCode><orderNo>SO-1</orderNo>"
     "<returnStatus>120</returnStatus><returnTime>20261122120000000</returnTime>"
     "<returnInfo>入库</returnInfo></OrderReturn></CEB312Message>",
     0, V_OK, "CEB311:P1:SO-1", "CEB312:120"},
    {"900 format error",
     "<CEB900Message " NS " guid=\"A\" version=\"1.0\"><MessageReturn>"
     "<guid>A</guid><returnStatus>-1</returnStatus><returnInfo>报文格式错误</returnInfo>"
     "<returnTime>20261122120000000</returnTime><oriCopMsgId>M-1</oriCopMsgId>"
     "<oriMessageType>CEB621Message</oriMessageType><oriBizMessage></oriBizMessage>"
     "</MessageReturn></CEB900Message>",
     0, V_NO, "DXP:M-1", "CEB900:-1"},
    /* The simulator (and E-port) put the refused message into oriBizMessage: the receipt
     * then belongs to that message's own key, which the host knows. */
    {"900 with the original 621 (Base64)",
     "<CEB900Message " NS " guid=\"A\" version=\"1.0\"><MessageReturn>"
     "<guid>A</guid><returnStatus>-1</returnStatus><returnInfo>XSD</returnInfo>"
     "<returnTime>20261122120000000</returnTime><oriCopMsgId>M-3</oriCopMsgId>"
     "<oriMessageType>CEB621Message</"
     "oriMessageType><oriBizMessage>"
     "PENFQjYyMU1lc3NhZ2UgeG1sbnM9Imh0dHA6Ly93d3cuY2hpbmFwb3J0Lmdvdi5jbi9jZWIiIGd1aWQ9IkciIHZlcnNpb"
     "249IjEuMCI+PEludmVudG9yeT48SW52ZW50b3J5SGVhZD48Z3VpZD5HPC9ndWlkPjxjb3BObz5DOTwvY29wTm8+"
     "PC9JbnZlbnRvcnlIZWFkPjwvSW52ZW50b3J5PjwvQ0VCNjIxTWVzc2FnZT4=</oriBizMessage>"
     "</MessageReturn></CEB900Message>",
     0, V_NO, "CEB621:C9", "CEB900:-1"},
    {"900 with the original 311 (XML text)",
     "<CEB900Message " NS " guid=\"A\" version=\"1.0\"><MessageReturn>"
     "<guid>A</guid><returnStatus>-1</returnStatus><returnInfo>XSD</returnInfo>"
     "<returnTime>20261122120000000</returnTime><oriCopMsgId>M-4</oriCopMsgId>"
     "<oriMessageType>CEB311Message</oriMessageType><oriBizMessage>&lt;CEB311Message "
     "xmlns=\"http://www.chinaport.gov.cn/ceb\" guid=\"G\" "
     "version=\"1.0\">&lt;Order>&lt;OrderHead>&lt;guid>G&lt;/guid>&lt;orderNo>SO-9&lt;/"
     "orderNo>&lt;ebpCode>P9&lt;/ebpCode>&lt;/OrderHead>&lt;/Order>&lt;/CEB311Message></"
     "oriBizMessage>"
     "</MessageReturn></CEB900Message>",
     0, V_NO, "CEB311:P9:SO-9", "CEB900:-1"},
    {"816 tax bill",
     "<CEB816Message " NS " guid=\"A\" version=\"1.0\"><Tax><TaxHeadRd>"
     "<guid>A</guid><returnTime>20261122120000000</returnTime>"
     "<invtNo>292820261000000001</invtNo><taxNo>T1</taxNo><customsTax>0</customsTax>"
     "<valueAddedTax>12.3</valueAddedTax><consumptionTax>0</consumptionTax><status>1</status>"
     "</TaxHeadRd></Tax></CEB816Message>",
     0, EWTP_V_INFO, "292820261000000001", "CEB816:1"},
    {"818 tax status",
     "<CEB818Message " NS " guid=\"A\" version=\"1.0\"><Tax><TaxHeadStatus>"
     "<guid>A</guid><returnTime>20261122120000000</returnTime>"
     "<invtNo>292820261000000001</invtNo><taxNo>T1</taxNo><status>2</status>"
     "</TaxHeadStatus></Tax></CEB818Message>",
     0, EWTP_V_INFO, "292820261000000001", "CEB818:2"},
    {"DxpRep signature error 1001",
     "<DxpRep xmlns=\"http://www.chinaport.gov.cn/dxp\" "
     "ver=\"1.0\"><RecevierId>DXPENT0000000001</RecevierId><Response>"
     "<ResponseCode>1001</ResponseCode><ResponseInfo>签名无效</ResponseInfo>"
     "<NoticeTime>2026-11-22</NoticeTime><OriHead><CopMsgId>M-2</CopMsgId></OriHead>"
     "</Response></DxpRep>",
     0, V_NO, "DXP:M-2", "DXP:1001"},
    {"DxpRep system timeout 3003",
     "<DxpRep xmlns=\"http://www.chinaport.gov.cn/dxp\" "
     "ver=\"1.0\"><RecevierId>X</RecevierId><Response><ResponseCode>3003</ResponseCode>"
     "<NoticeTime>2026-11-22</NoticeTime><OriHead><CopMsgId>M-3</CopMsgId></OriHead>"
     "</Response></DxpRep>",
     0, EWTP_V_RETRY, "DXP:M-3", "DXP:3003"},
    {"not XML", "garbage <<<", NF, 0, NULL, NULL},
    {"empty", "", NF, 0, NULL, NULL},
    {"DOCTYPE refused", "<!DOCTYPE x [<!ENTITY a 'b'>]><x/>", NF, 0, NULL, NULL},
    {"receipt without status",
     "<CEB312Message " NS " guid=\"A\" version=\"1.0\"><OrderReturn>"
     "<ebpCode>P1</ebpCode><orderNo>SO-1</orderNo></OrderReturn></CEB312Message>",
     NF, 0, NULL, NULL},
    {"bad Base64 in DxpMsg",
     "<DxpMsg xmlns=\"http://www.chinaport.gov.cn/dxp\" ver=\"1.0\">"
     "<Data>!!!</Data></DxpMsg>",
     NF, 0, NULL, NULL},
};

int main(void)
{
    void *h = dlopen(CN_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        printf("FAIL dlopen %s: %s\n", CN_PLUGIN_PATH, dlerror());
        return 1;
    }
    plugin = dlsym(h, EWTP_PLUGIN_SYMBOL);
    struct ewtp_errors *why = ewtp_errors_new();
    if (plugin == NULL || plugin->create(NULL, NULL, &state, why) != 0) {
        printf("FAIL create\n");
        return 1;
    }
    const char *shared = getenv("EWTP_SHARED_DIR");
    char path[4096];
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        snprintf(path, sizeof(path), "%s/reference/cn/samples/%s", shared ? shared : "../shared",
                 samples[i].file);
        size_t len = 0;
        char *body = slurp(path, &len);
        if (body == NULL) {
            printf("FAIL %s: cannot read\n", path);
            failures++;
            continue;
        }
        struct expect e = samples[i];
        if (e.rc == 0 && e.key == NULL) {
            /* key not pinned: only check it is present */
            struct ewtp_arena *a = ewtp_arena_new();
            struct ewtp_inbound in = {
                .size = sizeof(in), .body = body, .body_len = len, .arena = a};
            struct ewtp_correlation to = EWTP_CORRELATION_INIT();
            struct ewtp_outcome o = EWTP_OUTCOME_INIT();
            if (plugin->receive(state, &in, &to, &o) == 0 && to.authority_ref)
                e.key = strdup(to.authority_ref);
            ewtp_arena_free(a);
        }
        run(samples[i].file, body, len, &e);
        if (samples[i].key == NULL && e.key)
            free((char *)e.key);
        /* The same receipt wrapped in a DxpMsg, as the customs client delivers it. */
        if (e.rc == 0) {
            struct ewtp_arena *a = ewtp_arena_new();
            char *b64 = ewtp_base64_encode(a, body, len);
            char *env = ewtp_arena_printf(
                a,
                "<dxp:DxpMsg xmlns:dxp=\"http://www.chinaport.gov.cn/dxp\" ver=\"1.0\">"
                "<dxp:TransInfo><dxp:CopMsgId>X</dxp:CopMsgId></dxp:TransInfo>"
                "<dxp:Data>%s</dxp:Data></dxp:DxpMsg>",
                b64);
            char label[600];
            snprintf(label, sizeof(label), "DxpMsg(%s)", samples[i].file);
            struct expect e2 = samples[i];
            if (e2.key == NULL) {
                struct ewtp_inbound in = {
                    .size = sizeof(in), .body = body, .body_len = len, .arena = a};
                struct ewtp_correlation to = EWTP_CORRELATION_INIT();
                struct ewtp_outcome o = EWTP_OUTCOME_INIT();
                plugin->receive(state, &in, &to, &o);
                e2.key = to.authority_ref;
            }
            run(label, env, strlen(env), &e2);
            ewtp_arena_free(a);
        }
        free(body);
    }
    for (size_t i = 0; i < sizeof(inline_cases) / sizeof(inline_cases[0]); i++)
        run(inline_cases[i].file, inline_cases[i].body, strlen(inline_cases[i].body),
            &inline_cases[i]);
    /* Every truncation of a receipt: never a crash (ASan/UBSan watch). */
    const char *b = inline_cases[0].body;
    for (size_t n = 0; n < strlen(b); n++) {
        struct ewtp_arena *a = ewtp_arena_new();
        struct ewtp_inbound in = {.size = sizeof(in), .body = b, .body_len = n, .arena = a};
        struct ewtp_correlation to = EWTP_CORRELATION_INIT();
        struct ewtp_outcome o = EWTP_OUTCOME_INIT();
        plugin->receive(state, &in, &to, &o);
        ewtp_arena_free(a);
    }
    plugin->destroy(state);
    ewtp_errors_free(why);
    printf("%s\n", failures ? "FAILED" : "all receipts ok");
    return failures ? 1 : 0;
}
