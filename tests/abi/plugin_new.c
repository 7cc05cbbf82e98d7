/* A plugin from the future (abi/compat): compiled with EWTP_ABI_TEST_GROWN, the headers' pretend
 * next minor, so its descriptor says so and every growable struct it sees has abi_test_grown.
 * Today's loader refuses it; tests/abi/compat_driver.c calls it directly with older, smaller host
 * structs to show that it follows the growth rule of ewtp/abi.h: it reads and writes a member
 * newer than the host's of a host-allocated struct only after EWTP_HAS, and hands libewtp
 * documents, requests and headers of its own (bigger) size, which libewtp copies by the smaller
 * size. */
#include <string.h>

#include <ewtp/plugin.h>

#ifndef EWTP_ABI_TEST_GROWN
#error "tests/abi/plugin_new.c is built with EWTP_ABI_TEST_GROWN"
#endif

static int xb_create(const struct ewtp_host *h, const struct ewtp_settings *s, void **state,
                     struct ewtp_errors *why)
{
    (void)s;
    *state = NULL;
    /* A host of an older minor has a shorter table: the newer function is simply absent. */
    if (EWTP_HOST_HAS(h, abi_test_grown)) {
        ewtp_errors_add(why, "", "abi", "an older host has no abi_test_grown function");
        return -EWTP_EINVAL;
    }
    return 0;
}

static void xb_destroy(void *state)
{
    (void)state;
}

static void xb_classify(const void *state, const struct ewtp_call *c, struct ewtp_route_info *r)
{
    (void)state;
    r->ordering_key = "xb";
    ewtp_route_add_relation_key(r, c->arena, "xb:1");
    if (EWTP_HAS(r, struct ewtp_route_info, abi_test_grown))
        r->abi_test_grown[0] = 7;
}

static void xb_validate(const void *state, const struct ewtp_call *c, struct ewtp_errors *errs)
{
    (void)state;
    if (EWTP_HAS(c, struct ewtp_call, abi_test_grown))
        ewtp_errors_add(errs, "", "abi", "an older call has no abi_test_grown");
    if (c->chain && EWTP_HAS(c->chain, struct ewtp_chain, abi_test_grown))
        ewtp_errors_add(errs, "", "abi", "an older chain has no abi_test_grown");
}

static int xb_translate(const void *state, const struct ewtp_call *c, struct ewtp_out *out,
                        struct ewtp_errors *errs)
{
    (void)state;
    (void)errs;
    struct ewtp_document doc = EWTP_DOCUMENT_INIT(.name = "XB-1.txt", .content_type = "text/plain",
                                                  .data = "xb", .len = 2);
    doc.abi_test_grown[0] = 0x1111; /* an older libewtp does not know it and must not copy it */
    int rc = ewtp_out_add_document(out, &doc);
    if (rc != 0)
        return rc;
    const struct ewtp_header **h = ewtp_arena_alloc(c->arena, 2 * sizeof(*h));
    struct ewtp_header *own = ewtp_arena_alloc(c->arena, sizeof(*own));
    if (h == NULL || own == NULL)
        return -EWTP_ENOMEM;
    *own = (struct ewtp_header)EWTP_HEADER_INIT(.name = "X-Own", .value = "1");
    own->abi_test_grown[0] = 0x2222;
    h[0] = own;
    h[1] = ewtp_header_new(c->arena, "X-Lib", "2", true);
    struct ewtp_request req =
        EWTP_REQUEST_INIT(.method = "POST", .path = "/xb", .headers = h, .n_headers = 2,
                          .body = "xb", .body_len = 2, .body_doc = "XB-1.txt", .final = true);
    req.abi_test_grown[0] = 0x3333;
    return ewtp_out_add_request(out, &req);
}

static int xb_interpret(const void *state, const struct ewtp_call *c,
                        const struct ewtp_response *resp, struct ewtp_outcome *o)
{
    (void)state;
    (void)c;
    ewtp_outcome_clear(o);
    o->verdict = resp->status == 200 ? EWTP_V_APPROVED : EWTP_V_RETRY;
    o->code = EWTP_HAS(resp, struct ewtp_response, abi_test_grown) ? "grown" : "xb";
    o->authority_ref = ewtp_response_header(resp, "X-Ref");
    if (EWTP_HAS(o, struct ewtp_outcome, abi_test_grown))
        o->abi_test_grown[0] = 42;
    return 0;
}

static int xb_receive(const void *state, const struct ewtp_inbound *in, struct ewtp_correlation *to,
                      struct ewtp_outcome *o)
{
    (void)state;
    struct ewtp_outcome mine = EWTP_OUTCOME_INIT(.verdict = EWTP_V_APPROVED, .code = "xb-receipt");
    mine.abi_test_grown[0] = 43;
    ewtp_outcome_copy(o, &mine); /* by the smaller size: the host's size stays */
    ewtp_sized_clear(to);
    to->message_id = in->name;
    if (EWTP_HAS(to, struct ewtp_correlation, abi_test_grown))
        to->abi_test_grown[0] = 44;
    return 0;
}

EWTP_PLUGIN_DESCRIPTOR(.name = "xb", .country = "XB", .authority = "abi/compat (a newer plugin)",
                       .version = "9.9.0", .kinds = EWTP_KIND_BIT(EWTP_KIND_ORDER),
                       .create = xb_create, .destroy = xb_destroy, .classify = xb_classify,
                       .validate = xb_validate, .translate = xb_translate,
                       .interpret = xb_interpret, .receive = xb_receive);
