/* test_message.c — ewtp_message_parse() and the helpers of ewtp/message.h.
 *
 * The corpus (tests/corpus): every valid/ *.json file parses without blocking errors; every
 * invalid/ *.json file reports at least each "pointer code" of its .expect (pointer "" written as
 * two double quotes). Then edge cases built here: size, depth, NUL, UTF-8, duplicate keys,
 * accessors, canonical form, time conversion. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ewtp/json.h>
#include <ewtp/message.h>

#define CORPUS EWTP_SOURCE_DIR "/tests/corpus"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static void dump_errors(const char *what, const struct ewtp_errors *e)
{
    char *j = ewtp_errors_to_json(e);
    print_message("%s: %s\n", what, j ? j : "(oom)");
    free(j);
}

static int parse_text(const char *text, struct ewtp_message **m, struct ewtp_errors *e)
{
    return ewtp_message_parse(text, strlen(text), NULL, m, e);
}

/* Names of the *.json files in dir, sorted; NULL-terminated; caller frees. */
static char **list_json(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
            continue;
        names = realloc(names, (n + 2) * sizeof *names);
        assert_non_null(names);
        names[n++] = strdup(de->d_name);
        names[n] = NULL;
    }
    closedir(d);
    for (size_t i = 0; i + 1 < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    *count = n;
    return names;
}

static void free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Reads CORPUS/sub/name and parses it: the bytes (caller frees), *m, *rc, errors in e. */
static char *parse_corpus_file(const char *sub, const char *name, struct ewtp_message **m,
                               struct ewtp_errors *e, int *rc)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", CORPUS, sub, name);
    size_t len;
    char *data = read_file(path, &len);
    assert_non_null(data);
    *rc = ewtp_message_parse(data, len, NULL, m, e);
    return data;
}

static void test_corpus_valid(void **state)
{
    (void)state;
    size_t n;
    char **names = list_json(CORPUS "/valid", &n);
    assert_true(n >= 25);
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        struct ewtp_errors *e = ewtp_errors_new();
        struct ewtp_message *m = NULL;
        int rc;
        char *data = parse_corpus_file("valid", names[i], &m, e, &rc);
        if (rc != 0 || ewtp_errors_count(e) != 0) {
            print_message("valid/%s: rc %d\n", names[i], rc);
            dump_errors(names[i], e);
            failures++;
        } else {
            /* Every valid message has its body, named by kind, and nothing else. */
            assert_non_null(m->schema);
            assert_non_null(m->id);
            assert_non_null(ewtp_message_body_pointer(m));
            int bodies = !!m->order + !!m->payment + !!m->waybill + !!m->declaration +
                         !!m->invoice + !!m->status + !!m->return_ + !!m->manifest + !!m->summary;
            assert_int_equal(bodies, 1);
            /* The canonical form is a fixed point: parsing it again gives it back. */
            char *canon = ewtp_message_canonical(m);
            assert_non_null(canon);
            struct ewtp_message *m2 = NULL;
            assert_int_equal(ewtp_message_parse(canon, strlen(canon), NULL, &m2, e), 0);
            assert_int_equal(ewtp_errors_count(e), 0);
            char *canon2 = ewtp_message_canonical(m2);
            assert_string_equal(canon, canon2);
            free(canon);
            free(canon2);
            ewtp_message_free(m2);
        }
        ewtp_message_free(m);
        ewtp_errors_free(e);
        free(data);
    }
    free_list(names, n);
    assert_int_equal(failures, 0);
}

static void test_corpus_invalid(void **state)
{
    (void)state;
    size_t n;
    char **names = list_json(CORPUS "/invalid", &n);
    assert_true(n >= 35);
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        struct ewtp_errors *e = ewtp_errors_new();
        struct ewtp_message *m = NULL;
        int rc;
        char *data = parse_corpus_file("invalid", names[i], &m, e, &rc);
        if (rc != 0 && rc != -EWTP_EFORMAT) {
            print_message("invalid/%s: rc %d\n", names[i], rc);
            failures++;
        }
        /* -EWTP_EFORMAT gives no message and one error; 0 gives a message. */
        if (rc == -EWTP_EFORMAT && (m != NULL || ewtp_errors_count(e) != 1)) {
            print_message("invalid/%s: refused but m %p, %zu errors\n", names[i], (void *)m,
                          ewtp_errors_count(e));
            failures++;
        }
        if (ewtp_errors_blocking(e) == 0) {
            print_message("invalid/%s: no blocking error\n", names[i]);
            failures++;
        }
        /* The .expect next to it. */
        char path[1024];
        snprintf(path, sizeof path, "%s/invalid/%.*s.expect", CORPUS, (int)(strlen(names[i]) - 5),
                 names[i]);
        size_t elen;
        char *exp = read_file(path, &elen);
        if (!exp) {
            print_message("invalid/%s: no .expect\n", names[i]);
            failures++;
        } else {
            exp = realloc(exp, elen + 1);
            exp[elen] = '\0';
            int entries = 0;
            char *save = NULL;
            for (char *line = strtok_r(exp, "\n", &save); line;
                 line = strtok_r(NULL, "\n", &save)) {
                if (line[0] == '#' || line[0] == '\0')
                    continue;
                char *sp = strrchr(line, ' ');
                assert_non_null(sp);
                *sp = '\0';
                const char *ptr = strcmp(line, "\"\"") == 0 ? "" : line;
                entries++;
                if (!ewtp_errors_has(e, ptr, sp + 1)) {
                    print_message("invalid/%s: expected \"%s\" %s\n", names[i], ptr, sp + 1);
                    dump_errors(names[i], e);
                    failures++;
                }
            }
            if (entries == 0) {
                print_message("invalid/%s: empty .expect\n", names[i]);
                failures++;
            }
            free(exp);
        }
        ewtp_message_free(m);
        ewtp_errors_free(e);
        free(data);
    }
    free_list(names, n);
    assert_int_equal(failures, 0);
}

/* The first error, which for refused input is the only one. */
static const struct ewtp_error *only_error(const struct ewtp_errors *e)
{
    assert_int_equal(ewtp_errors_count(e), 1);
    return ewtp_errors_at(e, 0);
}

static void test_depth(void **state)
{
    (void)state;
    const size_t deep = 10000;
    char *buf = malloc(2 * deep + 64);
    assert_non_null(buf);
    size_t n = (size_t)sprintf(buf, "{\"schema\":\"ewtp/1\",\"ext\":{\"cn\":");
    for (size_t i = 0; i < deep; i++)
        buf[n++] = '[';
    for (size_t i = 0; i < deep; i++)
        buf[n++] = ']';
    n += (size_t)sprintf(buf + n, "}}");
    struct ewtp_errors *e = ewtp_errors_new();
    struct ewtp_message *m = (struct ewtp_message *)buf; /* must be reset to NULL */
    assert_int_equal(ewtp_message_parse(buf, n, NULL, &m, e), -EWTP_EFORMAT);
    assert_null(m);
    const struct ewtp_error *err = only_error(e);
    assert_string_equal(err->code, "depth");
    assert_string_equal(err->pointer, "");
    assert_non_null(strstr(err->message, "column"));
    ewtp_errors_free(e);

    /* Exactly the limit passes the depth check (ext may nest up to 32 levels in all),
     * one more is refused; brackets inside strings do not count. */
    char ok[512];
    int len =
        snprintf(ok, sizeof ok,
                 "{\"schema\":\"ewtp/1\",\"id\":\"d\",\"kind\":\"status\",\"destination\":"
                 "\"CN\",\"status\":{\"waybill_number\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                 "[[[[\",\"event\":\"lost\",\"at\":\"2026-11-22T10:00:00Z\"},\"ext\":{\"cn\":");
    for (int i = 0; i < 29; i++)
        ok[len++] = '[';
    for (int i = 0; i < 29; i++)
        ok[len++] = ']';
    len += snprintf(ok + len, sizeof ok - (size_t)len, "}}");
    /* Depth: the message, ext, then 29 arrays: 31, within the default 32. */
    e = ewtp_errors_new();
    assert_int_equal(ewtp_message_parse(ok, (size_t)len, NULL, &m, e), 0);
    /* ext.cn is an array, not an object: a model error, but parsing got through. */
    assert_true(ewtp_errors_has(e, "/ext/cn", "type"));
    assert_int_equal(ewtp_errors_count(e), 1);
    ewtp_message_free(m);
    ewtp_errors_free(e);

    struct ewtp_parse_opts opts = {.size = sizeof(struct ewtp_parse_opts), .max_depth = 30};
    e = ewtp_errors_new();
    assert_int_equal(ewtp_message_parse(ok, (size_t)len, &opts, &m, e), -EWTP_EFORMAT);
    assert_string_equal(only_error(e)->code, "depth");
    ewtp_errors_free(e);
    free(buf);
}

static void test_size(void **state)
{
    (void)state;
    size_t n = 2u * 1024u * 1024u;
    char *buf = malloc(n);
    assert_non_null(buf);
    memset(buf, ' ', n);
    memcpy(buf, "{\"schema\":\"ewtp/1\",\"note\":\"", 27);
    memcpy(buf + n - 3, "\"}\n", 3);
    struct ewtp_errors *e = ewtp_errors_new();
    struct ewtp_message *m = NULL;
    assert_int_equal(ewtp_message_parse(buf, n, NULL, &m, e), -EWTP_EFORMAT);
    assert_null(m);
    const struct ewtp_error *err = only_error(e);
    assert_string_equal(err->code, "size");
    assert_string_equal(err->pointer, "");
    ewtp_errors_free(e);

    /* A smaller limit by option; the default limit itself is accepted at its size. */
    struct ewtp_parse_opts opts = {.size = sizeof(struct ewtp_parse_opts), .max_bytes = 10};
    e = ewtp_errors_new();
    assert_int_equal(ewtp_message_parse("{\"a\":\"bcdefgh\"}", 15, &opts, &m, e), -EWTP_EFORMAT);
    assert_string_equal(only_error(e)->code, "size");
    ewtp_errors_free(e);
    e = ewtp_errors_new();
    assert_int_equal(ewtp_message_parse(buf, EWTP_MESSAGE_MAX_DEFAULT, NULL, &m, e), -EWTP_EFORMAT);
    /* Cut at 1 MiB the string is unterminated: a syntax error, not a size error. */
    assert_string_equal(only_error(e)->code, "format");
    ewtp_errors_free(e);
    free(buf);
}

static void test_encoding(void **state)
{
    (void)state;
    struct ewtp_message *m = NULL;
    struct ewtp_errors *e = ewtp_errors_new();
    static const char nul[] = "{\"schema\":\"ewtp/1\",\n\"id\":\"a\0b\"}";
    assert_int_equal(ewtp_message_parse(nul, sizeof nul - 1, NULL, &m, e), -EWTP_EFORMAT);
    const struct ewtp_error *err = only_error(e);
    assert_string_equal(err->code, "encoding");
    assert_non_null(strstr(err->message, "line 2"));
    ewtp_errors_free(e);

    e = ewtp_errors_new();
    assert_int_equal(parse_text("{\"schema\":\"ewtp/1\",\"id\":\"a\\u0000b\"}", &m, e),
                     -EWTP_EFORMAT);
    assert_string_equal(only_error(e)->code, "encoding");
    ewtp_errors_free(e);

    /* Lone continuation byte, overlong "/", a UTF-16 surrogate, beyond U+10FFFF, truncated. */
    static const char *const bad[] = {"\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                      "\xe4\xb8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char buf[128];
        int n = snprintf(buf, sizeof buf, "{\"schema\":\"ewtp/1\",\"id\":\"%s\"}", bad[i]);
        e = ewtp_errors_new();
        assert_int_equal(ewtp_message_parse(buf, (size_t)n, NULL, &m, e), -EWTP_EFORMAT);
        assert_null(m);
        assert_string_equal(only_error(e)->code, "encoding");
        ewtp_errors_free(e);
    }
    /* Valid multi-byte text passes (Chinese, Amharic, an emoji). */
    e = ewtp_errors_new();
    assert_int_equal(parse_text("{\"schema\":\"ewtp/1\",\"id\":\"u\",\"kind\":\"status\","
                                "\"destination\":\"ET\",\"status\":{\"waybill_number\":"
                                "\"杭州-ኢትዮጵያ-\xf0\x9f\x93\xa6\",\"event\":\"lost\",\"at\":"
                                "\"2026-11-22T10:00:00Z\"}}",
                                &m, e),
                     0);
    assert_int_equal(ewtp_errors_count(e), 0);
    assert_string_equal(m->status->waybill_number, "杭州-ኢትዮጵያ-\xf0\x9f\x93\xa6");
    assert_int_equal(m->status->event, EWTP_EVENT_LOST);
    assert_string_equal(m->status->event_name, "lost");
    ewtp_message_free(m);
    ewtp_errors_free(e);
}

static void test_syntax(void **state)
{
    (void)state;
    struct ewtp_message *m = NULL;
    struct ewtp_errors *e = ewtp_errors_new();
    assert_int_equal(parse_text("{\"a\": 1, \"a\": 2}", &m, e), -EWTP_EFORMAT);
    const struct ewtp_error *err = only_error(e);
    assert_string_equal(err->code, "duplicate");
    assert_non_null(strstr(err->message, "line 1"));
    ewtp_errors_free(e);

    static const char *const notjson[] = {"", "{", "{\"a\":}", "{\"a\":1,}", "nul", "{} {}"};
    for (size_t i = 0; i < sizeof notjson / sizeof notjson[0]; i++) {
        e = ewtp_errors_new();
        assert_int_equal(parse_text(notjson[i], &m, e), -EWTP_EFORMAT);
        assert_string_equal(only_error(e)->code, "format");
        assert_non_null(strstr(ewtp_errors_at(e, 0)->message, "column"));
        ewtp_errors_free(e);
    }
    static const char *const notobj[] = {"[]", "\"ewtp/1\"", "1", "null"};
    for (size_t i = 0; i < sizeof notobj / sizeof notobj[0]; i++) {
        e = ewtp_errors_new();
        /* jansson reads only objects and arrays at the top without JSON_DECODE_ANY. */
        assert_int_equal(parse_text(notobj[i], &m, e), -EWTP_EFORMAT);
        assert_null(m);
        ewtp_errors_free(e);
    }
    /* Bad arguments. */
    e = ewtp_errors_new();
    assert_int_equal(ewtp_message_parse(NULL, 3, NULL, &m, e), -EWTP_EINVAL);
    assert_int_equal(ewtp_message_parse("{}", 2, NULL, NULL, e), -EWTP_EINVAL);
    ewtp_errors_free(e);
}

static struct ewtp_message *load(const char *rel, struct ewtp_errors *e)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", CORPUS, rel);
    size_t len;
    char *data = read_file(path, &len);
    assert_non_null(data);
    struct ewtp_message *m = NULL;
    assert_int_equal(ewtp_message_parse(data, len, NULL, &m, e), 0);
    free(data);
    return m;
}

static void test_spec_example_structs(void **state)
{
    (void)state;
    struct ewtp_errors *e = ewtp_errors_new();
    struct ewtp_message *m = load("valid/spec-example-order.json", e);
    assert_int_equal(ewtp_errors_count(e), 0);
    assert_string_equal(m->schema, "ewtp/1");
    assert_string_equal(m->id, "ord-20261122-0001");
    assert_int_equal(m->kind, EWTP_KIND_ORDER);
    assert_string_equal(m->destination, "CN");
    assert_int_equal(m->direction, EWTP_DIR_IMPORT);
    assert_string_equal(ewtp_message_body_pointer(m), "/order");
    assert_null(m->payment);
    assert_null(m->parties[EWTP_ROLE_SELLER]);
    const struct ewtp_party *buyer = m->parties[EWTP_ROLE_BUYER];
    assert_non_null(buyer);
    assert_string_equal(buyer->name, "Li Lei");
    assert_string_equal(ewtp_party_id(buyer, "CN-RIC"), "110101199003077774");
    assert_null(ewtp_party_id(buyer, "CN-CUSTOMS"));
    assert_null(ewtp_party_id(NULL, "CN-RIC"));
    const struct ewtp_party *cons = m->parties[EWTP_ROLE_CONSIGNEE];
    assert_non_null(cons->address);
    assert_int_equal(cons->address->n_lines, 1);
    assert_string_equal(cons->address->lines[0], "1 Wensan Road");
    assert_string_equal(cons->address->country, "CN");
    assert_null(cons->endpoint);
    const struct ewtp_order *o = m->order;
    assert_string_equal(o->paid_total.text, "227.97");
    assert_int_equal((int64_t)o->paid_total.value.units, 22797);
    assert_int_equal(o->paid_total.value.scale, 2);
    assert_string_equal(o->discount.text, "0");
    const struct ewtp_line *const *lines;
    assert_int_equal(ewtp_message_lines(m, &lines), 1);
    assert_ptr_equal(lines, o->lines);
    assert_int_equal(lines[0]->line, 1);
    assert_string_equal(lines[0]->unit, "H87");
    assert_string_equal(lines[0]->hs_code, "6117100000");
    assert_null(lines[0]->discount.text);
    assert_null(lines[0]->packages);
    assert_int_equal(lines[0]->kind, EWTP_LINE_UNSPECIFIED);

    /* ext.cn through the JSON accessors; absent country and NULL give NULL. */
    const struct ewtp_json *cn = ewtp_message_ext(m, "cn");
    assert_non_null(cn);
    assert_int_equal(ewtp_json_type(cn), EWTP_JSON_OBJECT);
    assert_string_equal(ewtp_json_get_string(cn, "buyer_reg_no"), "lilei-0001");
    assert_null(ewtp_message_ext(m, "be"));
    assert_null(ewtp_message_ext(m, NULL));
    assert_null(ewtp_message_ext(NULL, "cn"));
    const struct ewtp_json *all = ewtp_message_json(m);
    assert_string_equal(ewtp_json_get_string(all, "kind"), "order");
    ewtp_message_free(m);
    ewtp_errors_free(e);
}

static void test_bodies(void **state)
{
    (void)state;
    struct ewtp_errors *e = ewtp_errors_new();
    struct ewtp_message *m = load("valid/be-invoice-peppol.json", e);
    assert_int_equal(ewtp_errors_count(e), 0);
    const struct ewtp_invoice *inv = m->invoice;
    assert_int_equal(inv->type, EWTP_INV_INVOICE);
    assert_int_equal(inv->n_lines, 3);
    assert_int_equal(inv->lines[1]->kind, EWTP_LINE_SERVICE);
    assert_int_equal(inv->lines[1]->n_taxes, 1);
    assert_string_equal(inv->lines[2]->taxes[0]->category, "AA");
    assert_string_equal(inv->totals->gross.text, "777.50");
    assert_null(inv->billing_period);
    assert_string_equal(inv->payment_means->code, "30");
    assert_string_equal(m->parties[EWTP_ROLE_SELLER]->endpoint->scheme, "0208");
    assert_int_equal(m->direction, EWTP_DIR_NONE);
    ewtp_message_free(m);

    ewtp_errors_clear(e);
    m = load("valid/cn-declaration-low-value.json", e);
    assert_int_equal(ewtp_errors_count(e), 0);
    const struct ewtp_declaration *d = m->declaration;
    assert_int_equal(d->type, EWTP_DECL_LOW_VALUE);
    assert_true(d->has_packages);
    assert_int_equal(d->packages, 1);
    assert_string_equal(d->transport->mode, "4");
    assert_string_equal(d->transport->arrival->location, "CNHGH");
    assert_null(d->transport->arrival->date);
    assert_non_null(d->lines[0]->packages);
    assert_true(d->lines[0]->packages->has_count);
    assert_string_equal(d->lines[0]->packages->kind, "CT");
    assert_string_equal(d->lines[0]->supplementary_unit, "KGM");
    assert_null(d->lines[1]->packages);
    ewtp_message_free(m);

    ewtp_errors_clear(e);
    m = load("valid/cn-manifest.json", e);
    assert_int_equal(m->manifest->n_waybills, 3);
    assert_string_equal(m->manifest->waybills[2], "EX123456791CN");
    const struct ewtp_line *const *lines = (const struct ewtp_line *const *)1;
    assert_int_equal(ewtp_message_lines(m, &lines), 0);
    assert_null(lines);
    ewtp_message_free(m);

    ewtp_errors_clear(e);
    m = load("valid/cn-summary-export.json", e);
    assert_string_equal(m->summary->period->end, "2026-11-30");
    assert_int_equal(m->summary->n_declarations, 2);
    assert_int_equal(ewtp_message_lines(m, NULL), 1);
    ewtp_message_free(m);
    ewtp_errors_free(e);
}

/* An invalid message still yields its structs, with the bad members absent. */
static void test_partial_structs(void **state)
{
    (void)state;
    struct ewtp_errors *e = ewtp_errors_new();
    struct ewtp_message *m = load("invalid/many-errors-at-once.json", e);
    assert_non_null(m->invoice);
    assert_null(m->invoice->currency);
    assert_null(m->invoice->lines[0]->unit);
    assert_string_equal(m->invoice->lines[0]->description, "Office chairs");
    assert_null(m->parties[EWTP_ROLE_SELLER]->country);
    assert_true(ewtp_errors_blocking(e) >= 8);
    ewtp_message_free(m);
    ewtp_errors_free(e);
}

static void test_canonical(void **state)
{
    (void)state;
    const char *a = "{\"schema\":\"ewtp/1\",\"id\":\"x1\",\"kind\":\"payment\",\"destination\":"
                    "\"MY\",\"payment\":{\"number\":\"1\",\"order_number\":\"2\",\"paid_at\":"
                    "\"2026-11-22T00:00:00Z\",\"amount\":\"10.50\",\"currency\":\"MYR\"}}";
    const char *b = "{ \"payment\" : { \"currency\":\"MYR\", \"amount\":\"10.50\",\n"
                    "\"paid_at\":\"2026-11-22T00:00:00Z\", \"order_number\":\"2\",\"number\":"
                    "\"1\"},\n \"destination\":\"MY\",\"kind\":\"payment\",\"id\":\"x1\","
                    "\"schema\":\"ewtp/1\" }";
    const char *c = "{\"schema\":\"ewtp/1\",\"id\":\"x1\",\"kind\":\"payment\",\"destination\":"
                    "\"MY\",\"payment\":{\"number\":\"1\",\"order_number\":\"2\",\"paid_at\":"
                    "\"2026-11-22T00:00:00Z\",\"amount\":\"10.5\",\"currency\":\"MYR\"}}";
    struct ewtp_errors *e = ewtp_errors_new();
    struct ewtp_message *ma, *mb, *mc;
    assert_int_equal(parse_text(a, &ma, e), 0);
    assert_int_equal(parse_text(b, &mb, e), 0);
    assert_int_equal(parse_text(c, &mc, e), 0);
    assert_int_equal(ewtp_errors_count(e), 0);
    char *ca = ewtp_message_canonical(ma), *cb = ewtp_message_canonical(mb);
    char *cc = ewtp_message_canonical(mc);
    assert_non_null(ca);
    assert_string_equal(ca, cb);
    /* "10.5" and "10.50" are different JSON values, so different messages. */
    assert_string_not_equal(ca, cc);
    assert_non_null(strstr(ca, "\"amount\":\"10.50\",\"currency\""));
    assert_int_equal(strncmp(ca, "{\"destination\":\"MY\",\"id\":\"x1\"", 29), 0);
    free(ca);
    free(cb);
    free(cc);
    assert_null(ewtp_message_canonical(NULL));
    ewtp_message_free(ma);
    ewtp_message_free(mb);
    ewtp_message_free(mc);
    ewtp_message_free(NULL);
    ewtp_errors_free(e);
}

static void test_extra_destinations(void **state)
{
    (void)state;
    const char *zz =
        "{\"schema\":\"ewtp/1\",\"id\":\"z\",\"kind\":\"status\",\"destination\":\"ZZ\","
        "\"status\":{\"waybill_number\":\"W\",\"event\":\"arrived\",\"at\":"
        "\"2026-11-22T10:00:00+00:00\",\"location\":\"x\"},\"parties\":{\"carrier\":"
        "{\"name\":\"c\",\"country\":\"ZZ\"}},\"ext\":{\"zz\":{}}}";
    struct ewtp_errors *e = ewtp_errors_new();
    struct ewtp_message *m;
    assert_int_equal(parse_text(zz, &m, e), 0);
    assert_true(ewtp_errors_has(e, "/destination", "format"));
    assert_null(m->destination);
    ewtp_message_free(m);

    static const char *const extra[] = {"ZZ", NULL};
    struct ewtp_parse_opts opts = {.size = sizeof(struct ewtp_parse_opts),
                                   .extra_destinations = extra};
    ewtp_errors_clear(e);
    assert_int_equal(ewtp_message_parse(zz, strlen(zz), &opts, &m, e), 0);
    assert_false(ewtp_errors_has(e, "/destination", NULL));
    assert_string_equal(m->destination, "ZZ");
    /* Only as destination: the carrier's country is still checked against ISO 3166. */
    assert_true(ewtp_errors_has(e, "/parties/carrier/country", "format"));
    assert_int_equal(ewtp_errors_count(e), 1);
    ewtp_message_free(m);
    ewtp_errors_free(e);
}

static void test_pointer_escaping(void **state)
{
    (void)state;
    struct ewtp_errors *e = ewtp_errors_new();
    struct ewtp_message *m;
    assert_int_equal(parse_text("{\"schema\":\"ewtp/1\",\"a/b~c\":1}", &m, e), 0);
    assert_true(ewtp_errors_has(e, "/a~1b~0c", "unknown_member"));
    assert_true(ewtp_errors_has(e, "/id", "required"));
    assert_true(ewtp_errors_has(e, "/kind", "required"));
    assert_true(ewtp_errors_has(e, "/destination", "required"));
    ewtp_message_free(m);
    ewtp_errors_free(e);
}

static void test_names(void **state)
{
    (void)state;
    for (int k = 0; k < EWTP_KIND_COUNT; k++) {
        const char *n = ewtp_kind_name((enum ewtp_kind)k);
        assert_non_null(n);
        assert_int_equal(ewtp_kind_from_name(n), k);
    }
    assert_string_equal(ewtp_kind_name(EWTP_KIND_WAYBILL), "waybill");
    assert_string_equal(ewtp_kind_name(EWTP_KIND_RETURN), "return");
    assert_null(ewtp_kind_name(EWTP_KIND_NONE));
    assert_null(ewtp_kind_name(EWTP_KIND_COUNT));
    assert_int_equal(ewtp_kind_from_name("Order"), EWTP_KIND_NONE);
    assert_int_equal(ewtp_kind_from_name(NULL), EWTP_KIND_NONE);
    assert_string_equal(ewtp_role_name(EWTP_ROLE_PAYMENT_PROVIDER), "payment_provider");
    assert_string_equal(ewtp_role_name(EWTP_ROLE_CARRIER), "carrier");
    assert_null(ewtp_role_name(EWTP_ROLE_COUNT));
}

static void test_formats(void **state)
{
    (void)state;
    assert_true(ewtp_is_hs_code("610910"));
    assert_true(ewtp_is_hs_code("6117100000"));
    assert_false(ewtp_is_hs_code("61091"));
    assert_false(ewtp_is_hs_code("61171000001"));
    assert_false(ewtp_is_hs_code("6109.10"));
    assert_false(ewtp_is_hs_code(NULL));

    assert_true(ewtp_is_cn_ric("110101199003077774"));
    assert_true(ewtp_is_cn_ric("330106198512310026"));
    assert_false(ewtp_is_cn_ric("110101199003077775"));
    assert_false(ewtp_is_cn_ric("11010119900307777"));
    assert_false(ewtp_is_cn_ric("1101011990030777x4"));
    /* A check value of 10 is written X. */
    assert_true(ewtp_is_cn_ric("11010519491231002X"));
    assert_false(ewtp_is_cn_ric("11010519491231002x"));

    assert_true(ewtp_is_date("2028-02-29"));
    assert_true(ewtp_is_date("2000-02-29"));
    assert_false(ewtp_is_date("1900-02-29"));
    assert_false(ewtp_is_date("2026-02-29"));
    assert_false(ewtp_is_date("2026-04-31"));
    assert_false(ewtp_is_date("2026-13-01"));
    assert_false(ewtp_is_date("2026-1-01"));
    assert_false(ewtp_is_date("2026-01-01 "));
    assert_false(ewtp_is_date(NULL));

    assert_true(ewtp_is_rfc3339("2026-11-22T10:00:00+08:00"));
    assert_true(ewtp_is_rfc3339("2026-11-22T10:00:00Z"));
    assert_true(ewtp_is_rfc3339("2026-11-22T10:00:00.5-03:30"));
    assert_false(ewtp_is_rfc3339("2026-11-22T10:00:00"));
    assert_false(ewtp_is_rfc3339("2026-11-22 10:00:00Z"));
    assert_false(ewtp_is_rfc3339("2026-11-22T10:00:00+0800"));
    assert_false(ewtp_is_rfc3339("2026-11-22T10:00:00.Z"));
    assert_false(ewtp_is_rfc3339("2026-11-22T10:60:00Z"));
    assert_false(ewtp_is_rfc3339("2026-11-22T10:00:00+24:00"));
    assert_false(ewtp_is_rfc3339("2026-11-31T10:00:00Z"));
    assert_false(ewtp_is_rfc3339("2026-11-22T10:00:00Zjunk"));
    assert_false(ewtp_is_rfc3339(""));
}

static void test_time(void **state)
{
    (void)state;
    int64_t ms;
    assert_true(ewtp_time_parse("1970-01-01T00:00:00Z", &ms));
    assert_int_equal(ms, 0);
    assert_true(ewtp_time_parse("1970-01-01T08:00:00+08:00", &ms));
    assert_int_equal(ms, 0);
    assert_true(ewtp_time_parse("2026-11-22T10:00:00+08:00", &ms));
    assert_int_equal(ms, INT64_C(1795312800000));
    assert_true(ewtp_time_parse("2026-11-22T02:00:00.123456Z", &ms));
    assert_int_equal(ms, INT64_C(1795312800123));
    assert_true(ewtp_time_parse("1969-12-31T23:59:59.9Z", &ms));
    assert_int_equal(ms, -100);
    assert_true(ewtp_time_parse("2000-03-01T00:00:00-00:30", &ms));
    assert_int_equal(ms, INT64_C(951870600000));
    assert_false(ewtp_time_parse("2026-11-22", &ms));

    char buf[40];
    assert_string_equal(ewtp_time_format(INT64_C(1795312800000), 480, buf, sizeof buf),
                        "2026-11-22T10:00:00+08:00");
    assert_string_equal(ewtp_time_format(INT64_C(1795312800123), 0, buf, sizeof buf),
                        "2026-11-22T02:00:00.123Z");
    assert_string_equal(ewtp_time_format(-100, 0, buf, sizeof buf), "1969-12-31T23:59:59.900Z");
    assert_string_equal(ewtp_time_format(0, -210, buf, sizeof buf), "1969-12-31T20:30:00-03:30");
    assert_string_equal(ewtp_time_format(INT64_C(951782400000), 0, buf, sizeof buf),
                        "2000-02-29T00:00:00Z");

    /* Round trips over a spread of instants and offsets. */
    static const int offsets[] = {0, 60, 330, 480, 840, -300, -570, -720};
    for (int64_t t = INT64_C(-2208988800000); t < INT64_C(4102444800000);
         t += INT64_C(987654321987)) {
        for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
            ewtp_time_format(t, offsets[i], buf, sizeof buf);
            assert_true(ewtp_is_rfc3339(buf));
            assert_true(ewtp_time_parse(buf, &ms));
            assert_int_equal(ms, t);
        }
    }
}

/* Many lines: uniqueness and rules stay linear enough, and every line is reported. */
static void test_many_lines(void **state)
{
    (void)state;
    const size_t n = 2000;
    size_t cap = 256 + n * 160;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t len = (size_t)snprintf(buf, cap,
                                  "{\"schema\":\"ewtp/1\",\"id\":\"big\",\"kind\":\"return\","
                                  "\"destination\":\"CN\",\"return\":{\"number\":\"R\","
                                  "\"order_number\":\"O\",\"lines\":[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len,
                                "%s{\"line\":%zu,\"description\":\"d\",\"quantity\":\"3\","
                                "\"unit_price\":\"0.10\",\"amount\":\"%s\"}",
                                i ? "," : "", i % 2 ? i : i + 1, i % 500 ? "0.30" : "0.31");
    len += (size_t)snprintf(buf + len, cap - len, "]}}");
    struct ewtp_errors *e = ewtp_errors_new();
    struct ewtp_message *m;
    assert_int_equal(ewtp_message_parse(buf, len, NULL, &m, e), 0);
    assert_int_equal(ewtp_message_lines(m, NULL), n);
    /* Lines 1,1,3,3,...: every odd index repeats the line number before it. */
    assert_true(ewtp_errors_has(e, "/return/lines/1/line", "duplicate"));
    assert_true(ewtp_errors_has(e, "/return/lines/1999/line", "duplicate"));
    assert_false(ewtp_errors_has(e, "/return/lines/2/line", NULL));
    assert_true(ewtp_errors_has(e, "/return/lines/500/amount", "rule"));
    assert_false(ewtp_errors_has(e, "/return/lines/501/amount", NULL));
    assert_int_equal(ewtp_errors_count(e), n / 2 + 4);
    ewtp_message_free(m);
    ewtp_errors_free(e);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_valid),
        cmocka_unit_test(test_corpus_invalid),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_spec_example_structs),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_partial_structs),
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_extra_destinations),
        cmocka_unit_test(test_pointer_escaping),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_many_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
