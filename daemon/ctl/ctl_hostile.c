/* The hostile-answer corpus and its checks (contract in ctl_hostile.h). */
#include "ctl_hostile.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG_BODY (10u << 20)       /* the 10 MB answers */
#define HUGE_HEADER (1u << 20)     /* one 1 MB header value */
#define MANY_HEADERS 2000          /* and that many small headers beside it */
#define DEEP_NESTING 100000        /* levels of [ or <a> */
#define V(v) (1u << (unsigned)(v)) /* a set of verdicts */
#define RETRY_OR_REJECTED (V(EWTP_V_RETRY) | V(EWTP_V_REJECTED))

/* How a body is made: literal text, or generated (too large to write out). */
enum body_gen {
    GEN_TEXT = 0,
    GEN_BIG_JSON,       /* {"padding":"AAAA..."} of BIG_BODY bytes */
    GEN_BIG_XML,        /* <Response><Padding>AAAA...</Padding></Response> */
    GEN_BIG_BINARY,     /* BIG_BODY bytes of every value, NULs included */
    GEN_DEEP_JSON,      /* DEEP_NESTING '[' */
    GEN_DEEP_XML,       /* DEEP_NESTING "<a>" */
    GEN_UTF16_JSON,     /* {"status":"accepted"} in UTF-16LE with a BOM */
    GEN_BILLION_LAUGHS, /* nine levels of ten entity references */
};

/* Which headers come with it. */
enum header_set {
    HDR_NONE = 0,
    HDR_JSON,
    HDR_XML,
    HDR_HTML,
    HDR_UTF16,
    HDR_HUGE, /* a 1 MB value, MANY_HEADERS more, an overflowing Retry-After */
};

struct hostile {
    const char *name;
    int status;
    const char *transport_error;
    enum header_set headers;
    enum body_gen gen;
    const char *text; /* GEN_TEXT */
    size_t len;       /* GEN_TEXT: bytes of text (may hold NULs and invalid UTF-8) */
    unsigned allow;   /* verdicts accepted from interpret */
};

#define TEXT(s) GEN_TEXT, s, sizeof(s) - 1

/* The corpus. Keep it the one place such answers are listed. */
static const struct hostile corpus[] = {
    {"empty-200", 200, NULL, HDR_NONE, TEXT(""), RETRY_OR_REJECTED | V(EWTP_V_SUBMITTED)},
    {"empty-502", 502, NULL, HDR_NONE, TEXT(""), RETRY_OR_REJECTED},
    {"empty-400", 400, NULL, HDR_JSON, TEXT(""), RETRY_OR_REJECTED},
    {"truncated-json", 200, NULL, HDR_JSON,
     TEXT("{\"reference\":\"R-1\",\"status\":\"accepted\",\"submissionUid\":\"S1\",\"accep"),
     RETRY_OR_REJECTED},
    {"truncated-xml", 200, NULL, HDR_XML,
     TEXT("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Status>accepted</Status>"
          "<Reference>R-1</Refer"),
     RETRY_OR_REJECTED},
    {"html-200", 200, NULL, HDR_HTML,
     TEXT("<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><h1>Session "
          "expired</h1><form action=\"/login\"><input name=\"user\"></form></body></html>\n"),
     RETRY_OR_REJECTED},
    {"html-502", 502, NULL, HDR_HTML,
     TEXT("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 "
          "Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"),
     RETRY_OR_REJECTED},
    {"html-403", 403, NULL, HDR_HTML,
     TEXT("<html><body><h1>Request blocked</h1><p>Web application firewall, incident "
          "4f2a</p></body></html>"),
     RETRY_OR_REJECTED},
    {"big-10mb-json", 200, NULL, HDR_JSON, GEN_BIG_JSON, NULL, 0, RETRY_OR_REJECTED},
    {"big-10mb-xml", 200, NULL, HDR_XML, GEN_BIG_XML, NULL, 0, RETRY_OR_REJECTED},
    {"big-10mb-binary", 200, NULL, HDR_NONE, GEN_BIG_BINARY, NULL, 0, RETRY_OR_REJECTED},
    {"invalid-utf8-json", 200, NULL, HDR_JSON,
     TEXT("{\"reference\":\"R-\xff\xfe\",\"status\":\"accepted\",\"uuid\":\"\xc3\x28\"}"),
     RETRY_OR_REJECTED},
    {"invalid-utf8-xml", 200, NULL, HDR_XML,
     TEXT("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Status>accepted\xc3\x28"
          "</Status><Reference>\xff</Reference></Response>"),
     RETRY_OR_REJECTED},
    {"utf16-json", 200, NULL, HDR_UTF16, GEN_UTF16_JSON, NULL, 0, RETRY_OR_REJECTED},
    {"wrong-declared-encoding", 200, NULL, HDR_XML,
     TEXT("<?xml version=\"1.0\" encoding=\"UTF-16\"?><Response><Status>accepted</Status>"
          "</Response>"),
     RETRY_OR_REJECTED},
    {"doctype-billion-laughs", 200, NULL, HDR_XML, GEN_BILLION_LAUGHS, NULL, 0, RETRY_OR_REJECTED},
    {"doctype-external-entity", 200, NULL, HDR_XML,
     TEXT("<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "
          "\"file:///etc/passwd\">]>\n<Response><Status>&xxe;</Status><Reference>&xxe;"
          "</Reference></Response>"),
     RETRY_OR_REJECTED},
    {"deep-json", 200, NULL, HDR_JSON, GEN_DEEP_JSON, NULL, 0, RETRY_OR_REJECTED},
    {"deep-xml", 200, NULL, HDR_XML, GEN_DEEP_XML, NULL, 0, RETRY_OR_REJECTED},
    {"json-wrong-types", 200, NULL, HDR_JSON,
     TEXT("{\"reference\":12,\"status\":[\"accepted\"],\"uuid\":{},\"errors\":{\"code\":1},"
          "\"error\":[],\"acceptedDocuments\":\"all\",\"rejectedDocuments\":7,\"submissionUid\":"
          "null,\"validationResults\":\"Valid\"}"),
     RETRY_OR_REJECTED},
    {"json-array", 200, NULL, HDR_JSON, TEXT("[\"accepted\"]"), RETRY_OR_REJECTED},
    {"nul-inside", 200, NULL, HDR_JSON, TEXT("{\"status\":\"rejected\"}\0<html>"),
     RETRY_OR_REJECTED},
    {"transport-error", 0, "connection reset by peer", HDR_NONE, TEXT(""), RETRY_OR_REJECTED},
    {"status-0-no-error", 0, NULL, HDR_NONE, TEXT(""), RETRY_OR_REJECTED},
    {"huge-header-503", 503, NULL, HDR_HUGE, TEXT(""), RETRY_OR_REJECTED},
    {"huge-header-200", 200, NULL, HDR_HUGE, TEXT("{\"status\":"), RETRY_OR_REJECTED},
};

#define N_CORPUS (sizeof(corpus) / sizeof(corpus[0]))

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fputs("ewtpctl: out of memory\n", stderr);
        exit(2);
    }
    return p;
}

/* Appends s to buf at *n (buf large enough). */
static void put(char *buf, size_t *n, const char *s)
{
    size_t l = strlen(s);
    memcpy(buf + *n, s, l);
    *n += l;
}

/* The body of h, malloc'd to exactly *len bytes (NULL when empty). */
static char *make_body(const struct hostile *h, size_t *len)
{
    char *b = NULL;
    size_t n = 0;
    switch (h->gen) {
    case GEN_TEXT:
        if (h->len == 0)
            break;
        b = xmalloc(h->len);
        memcpy(b, h->text, h->len);
        n = h->len;
        break;
    case GEN_BIG_JSON:
    case GEN_BIG_XML: {
        bool json = h->gen == GEN_BIG_JSON;
        const char *head = json ? "{\"padding\":\"" : "<?xml version=\"1.0\"?><Response><Padding>";
        const char *tail = json ? "\",\"status\":\"accepted\"" : "</Padding>";
        b = xmalloc(BIG_BODY);
        put(b, &n, head);
        size_t fill = BIG_BODY - n - strlen(tail) - (json ? 1 : strlen("</Response>"));
        memset(b + n, 'A', fill);
        n += fill;
        put(b, &n, tail);
        /* the closing brace or element is left off: the body is also truncated */
        memset(b + n, ' ', BIG_BODY - n);
        n = BIG_BODY;
        break;
    }
    case GEN_BIG_BINARY:
        b = xmalloc(BIG_BODY);
        for (size_t i = 0; i < BIG_BODY; i++)
            b[i] = (char)(unsigned char)((i * 2654435761u) >> 13);
        n = BIG_BODY;
        break;
    case GEN_DEEP_JSON:
        b = xmalloc(DEEP_NESTING);
        memset(b, '[', DEEP_NESTING);
        n = DEEP_NESTING;
        break;
    case GEN_DEEP_XML:
        b = xmalloc(3 * DEEP_NESTING);
        for (size_t i = 0; i < DEEP_NESTING; i++)
            put(b, &n, "<a>");
        break;
    case GEN_UTF16_JSON: {
        static const char ascii[] = "{\"status\":\"accepted\",\"reference\":\"R-1\"}";
        b = xmalloc(2 + 2 * (sizeof(ascii) - 1));
        b[n++] = (char)0xff;
        b[n++] = (char)0xfe;
        for (size_t i = 0; i + 1 < sizeof(ascii); i++) {
            b[n++] = ascii[i];
            b[n++] = '\0';
        }
        break;
    }
    case GEN_BILLION_LAUGHS: {
        b = xmalloc(4096);
        put(b, &n, "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
        for (int level = 1; level <= 9; level++) {
            char line[256];
            int k = snprintf(line, sizeof(line), " <!ENTITY lol%d \"", level);
            for (int r = 0; r < 10; r++)
                k += snprintf(line + k, sizeof(line) - (size_t)k, "&lol%.0d;", level - 1);
            snprintf(line + k, sizeof(line) - (size_t)k, "\">\n");
            put(b, &n, line);
        }
        put(b, &n,
            "]>\n<Response><Status>&lol9;</Status><Reference>&lol9;</Reference>"
            "</Response>\n");
        break;
    }
    }
    *len = n;
    return b;
}

/* The headers of h (malloc'd array, values borrowed from statics or *big). */
static struct ewtp_header *make_headers(const struct hostile *h, size_t *n, char **big)
{
    *big = NULL;
    *n = 0;
    const char *type = h->headers == HDR_JSON    ? "application/json"
                       : h->headers == HDR_XML   ? "application/xml; charset=utf-8"
                       : h->headers == HDR_HTML  ? "text/html; charset=iso-8859-1"
                       : h->headers == HDR_UTF16 ? "application/json; charset=utf-16"
                                                 : NULL;
    size_t cap = h->headers == HDR_HUGE ? MANY_HEADERS + 4 : 2;
    struct ewtp_header *hs = xmalloc(cap * sizeof(*hs));
    memset(hs, 0, cap * sizeof(*hs));
    if (type)
        hs[(*n)++] = (struct ewtp_header)EWTP_HEADER_INIT(.name = "Content-Type", .value = type);
    if (h->headers == HDR_HUGE) {
        *big = xmalloc(HUGE_HEADER + 1);
        memset(*big, 'x', HUGE_HEADER);
        (*big)[HUGE_HEADER] = '\0';
        hs[(*n)++] = (struct ewtp_header)EWTP_HEADER_INIT(.name = "X-Huge", .value = *big);
        hs[(*n)++] =
            (struct ewtp_header)EWTP_HEADER_INIT(.name = "Retry-After",
                                                 .value = "999999999999999999999999999999");
        hs[(*n)++] = (struct ewtp_header)EWTP_HEADER_INIT(.name = "Content-Type", .value = *big);
        for (size_t i = 0; i < MANY_HEADERS; i++)
            hs[(*n)++] = (struct ewtp_header)EWTP_HEADER_INIT(.name = "X-Repeat", .value = "x");
    }
    return hs;
}

static bool nonempty(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static void report(struct ctl_tally *t, const char *what, const char *name, const char *why)
{
    if (why == NULL) {
        printf("ok   hostile %s %s\n", what, name);
        t->passed++;
    } else {
        printf("FAIL hostile %s %s: %s\n", what, name, why);
        t->failed++;
    }
}

/* NULL when o is an acceptable answer to h, else why (in buf). */
static const char *judge(const struct hostile *h, int rc, const struct ewtp_outcome *o, char *buf,
                         size_t size)
{
    if (rc != 0) {
        snprintf(buf, size, "returned %s instead of an outcome", ewtp_strerror(rc));
        return buf;
    }
    if (!(h->allow & V(o->verdict))) {
        snprintf(buf, size, "verdict %s (code %s), expected %s", ewtp_verdict_name(o->verdict),
                 o->code ? o->code : "none",
                 h->allow & V(EWTP_V_SUBMITTED) ? "retry, rejected or submitted"
                                                : "retry or rejected");
        return buf;
    }
    if (!nonempty(o->code) || !nonempty(o->message)) {
        snprintf(buf, size, "verdict %s without %s", ewtp_verdict_name(o->verdict),
                 !nonempty(o->code) ? "a code" : "a message");
        return buf;
    }
    return NULL;
}

/* One answer of the corpus as a response (free with free_response). */
struct built {
    struct ewtp_response resp;
    char *body, *big;
    struct ewtp_header *headers;
    const struct ewtp_header **ptrs; /* the plugin ABI's array of pointers to headers */
};

static void build(const struct hostile *h, unsigned request_index, struct built *b)
{
    size_t len = 0, n_headers = 0;
    b->body = make_body(h, &len);
    b->headers = make_headers(h, &n_headers, &b->big);
    b->ptrs = xmalloc((n_headers + 1) * sizeof(*b->ptrs));
    for (size_t i = 0; i < n_headers; i++)
        b->ptrs[i] = &b->headers[i];
    b->resp = (struct ewtp_response){.size = sizeof(struct ewtp_response),
                                     .status = h->status,
                                     .headers = b->ptrs,
                                     .n_headers = n_headers,
                                     .body = b->body,
                                     .body_len = len,
                                     .request_index = request_index,
                                     .transport_error = h->transport_error};
}

static void unbuild(struct built *b)
{
    free(b->body);
    free(b->big);
    free(b->headers);
    free(b->ptrs);
}

void ctl_hostile_interpret(const struct ewtp_plugin *p, const void *state,
                           const struct ewtp_call *c, size_t n_requests, const char *label,
                           struct ctl_tally *t)
{
    for (size_t ri = 0; ri < (n_requests ? n_requests : 1); ri++) {
        for (size_t i = 0; i < N_CORPUS; i++) {
            struct built b;
            build(&corpus[i], (unsigned)ri, &b);
            struct ewtp_call hc = *c;
            hc.arena = ewtp_arena_new();
            struct ewtp_outcome o = EWTP_OUTCOME_INIT();
            char why[512];
            const char *bad = NULL;
            if (hc.arena == NULL) {
                bad = "out of memory";
            } else {
                int rc = p->interpret(state, &hc, &b.resp, &o);
                bad = judge(&corpus[i], rc, &o, why, sizeof(why));
            }
            char what[128];
            snprintf(what, sizeof(what), "interpret (%s, request %zu)", label, ri);
            report(t, what, corpus[i].name, bad);
            ewtp_arena_free(hc.arena);
            unbuild(&b);
        }
    }
}

void ctl_hostile_interpret_batch(const struct ewtp_plugin *p, const void *state,
                                 const struct ewtp_call *c, struct ctl_tally *t)
{
    if (p->size < offsetof(struct ewtp_plugin, interpret_batch) + sizeof(p->interpret_batch) ||
        p->interpret_batch == NULL || p->batch == NULL || p->batch->max_documents == 0)
        return;
    for (size_t i = 0; i < N_CORPUS; i++) {
        struct built b;
        build(&corpus[i], 0, &b);
        struct ewtp_call hc[2] = {*c, *c};
        struct ewtp_arena *a = ewtp_arena_new();
        hc[0].arena = hc[1].arena = a;
        const struct ewtp_call *const calls[2] = {&hc[0], &hc[1]};
        struct ewtp_outcome o[2] = {EWTP_OUTCOME_INIT(), EWTP_OUTCOME_INIT()};
        struct ewtp_outcome *const op[2] = {&o[0], &o[1]};
        char why[512];
        const char *bad = a ? NULL : "out of memory";
        if (a) {
            int rc = p->interpret_batch(state, calls, 2, &b.resp, op);
            for (size_t k = 0; k < 2 && bad == NULL; k++)
                bad = judge(&corpus[i], rc, &o[k], why, sizeof(why));
        }
        report(t, "interpret_batch (2 calls)", corpus[i].name, bad);
        ewtp_arena_free(a);
        unbuild(&b);
    }
}

void ctl_hostile_receive(const struct ewtp_plugin *p, const void *state,
                         const struct ewtp_host *host, int64_t now_ms, struct ctl_tally *t)
{
    if (p->size < offsetof(struct ewtp_plugin, receive) + sizeof(p->receive) || p->receive == NULL)
        return;
    static const char *const sources[] = {"http", "spool"};
    for (size_t s = 0; s < 2; s++) {
        for (size_t i = 0; i < N_CORPUS; i++) {
            if (corpus[i].status == 0)
                continue; /* nothing arrives without an answer */
            struct built b;
            build(&corpus[i], 0, &b);
            struct ewtp_arena *a = ewtp_arena_new();
            struct ewtp_inbound in = {
                .size = sizeof(in),
                .source = sources[s],
                .name = s == 0 ? "/v1/inbound/hostile" : "hostile-receipt.xml",
                .headers = b.ptrs,
                .n_headers = b.resp.n_headers,
                .body = b.body,
                .body_len = b.resp.body_len,
                .now_ms = now_ms,
                .arena = a,
                .host = host,
            };
            struct ewtp_correlation to = EWTP_CORRELATION_INIT();
            struct ewtp_outcome o = EWTP_OUTCOME_INIT();
            char why[512];
            const char *bad = a ? NULL : "out of memory";
            if (a) {
                int rc = p->receive(state, &in, &to, &o);
                /* "not mine" (or any refusal) is the expected answer to garbage; a claimed
                 * receipt must be a retry or a rejection with its code and message. */
                if (rc == 0)
                    bad = judge(&corpus[i], 0, &o, why, sizeof(why));
            }
            char what[64];
            snprintf(what, sizeof(what), "receive (%s)", sources[s]);
            report(t, what, corpus[i].name, bad);
            ewtp_arena_free(a);
            unbuild(&b);
        }
    }
}
