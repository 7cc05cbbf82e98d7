/* abi_compat_driver NEW.so — the reverse half of abi/compat (tests/abi/compat.sh).
 *
 * NEW.so is tests/abi/plugin_new.c: built with the grown headers, it claims the next minor and
 * its structs are bigger than this host's. 1) The loader refuses it with its sentence. 2) Opened
 * directly, as a host that chose to degrade would, every callback gets this host's structs malloc'd
 * to the byte, so AddressSanitizer reports any access past them; what comes back is checked:
 * libewtp kept its own size for the plugin's bigger documents and requests, the plugin wrote
 * no member this host does not have, and the host read the plugin's headers by the members
 * it knows. Prints one line per check; exit 0 when all pass. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ewtp/plugin.h>

#include "loader.h"

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            printf("ok   ");                                                                       \
        } else {                                                                                   \
            printf("FAIL ");                                                                       \
            failures++;                                                                            \
        }                                                                                          \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
    } while (0)

/* A host struct of exactly this host's size, zeroed but for size. */
static void *host_alloc(size_t size)
{
    void *p = calloc(1, size);
    if (p == NULL) {
        perror("calloc");
        exit(2);
    }
    memcpy(p, &size, sizeof(size));
    return p;
}

static void check_refused(const char *path)
{
    struct ewtp_plugin_handle *h = NULL;
    char *why = NULL;
    int rc = ewtp_plugin_load(path, NULL, &h, &why);
    char want[128];
    snprintf(want, sizeof(want), "needs plugin ABI %d.%d but this host offers only %d.%d",
             EWTP_ABI_MAJOR, EWTP_ABI_MINOR + 1, EWTP_ABI_MAJOR, EWTP_ABI_MINOR);
    CHECK(rc != 0 && why && strstr(why, want), "the loader refuses a plugin of the next minor: %s",
          why ? why : "(accepted)");
    if (rc == 0)
        ewtp_plugin_unref(h);
    free(why);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: abi_compat_driver NEW.so\n");
        return 2;
    }
    check_refused(argv[1]);

    void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    const struct ewtp_plugin *p = so ? dlsym(so, EWTP_PLUGIN_SYMBOL) : NULL;
    if (p == NULL) {
        fprintf(stderr, "abi_compat_driver: %s\n", dlerror());
        return 2;
    }
    CHECK(p->abi_minor == EWTP_ABI_MINOR + 1 && p->size > sizeof(struct ewtp_plugin),
          "its descriptor: ABI %u.%u, %zu bytes (this host knows %zu; it reads no more)",
          p->abi_major, p->abi_minor, p->size, sizeof(struct ewtp_plugin));

    struct ewtp_host host = EWTP_HOST_INIT(.ctx = NULL);
    struct ewtp_errors *errs = ewtp_errors_new();
    void *state = NULL;
    CHECK(p->create(&host, NULL, &state, errs) == 0,
          "create: the newer host function is absent from this host's table");

    struct ewtp_arena *a = ewtp_arena_new();
    struct ewtp_chain *chain = host_alloc(sizeof(*chain));
    chain->number = 1;
    struct ewtp_call *c = host_alloc(sizeof(*c));
    c->tenant = "t1";
    c->attempt = 1;
    c->chain = chain;
    c->arena = a;
    c->host = &host;
    c->unsigned_ = true;

    struct ewtp_route_info *ri = host_alloc(sizeof(*ri));
    p->classify(state, c, ri);
    CHECK(ri->n_relation_keys == 1 && strcmp(ri->relation_keys[0], "xb:1") == 0 &&
              ri->size == sizeof(*ri),
          "classify: wrote only within a %zu-byte route info", sizeof(*ri));

    p->validate(state, c, errs);
    CHECK(ewtp_errors_count(errs) == 0,
          "validate: saw no newer member in this host's call and chain");

    struct ewtp_out *out = ewtp_out_new(a);
    int rc = p->translate(state, c, out, errs);
    const struct ewtp_document *const *docs = NULL;
    const struct ewtp_request *const *reqs = NULL;
    size_t nd = ewtp_out_documents(out, &docs), nr = ewtp_out_requests(out, &reqs);
    CHECK(rc == 0 && nd == 1 && docs[0]->size == sizeof(struct ewtp_document) &&
              strcmp(docs[0]->name, "XB-1.txt") == 0 && docs[0]->len == 2,
          "translate: libewtp kept its %zu-byte copy of the plugin's bigger document",
          sizeof(struct ewtp_document));
    CHECK(nr == 1 && reqs[0]->size == sizeof(struct ewtp_request) && reqs[0]->final &&
              reqs[0]->n_headers == 2 && strcmp(reqs[0]->headers[0]->name, "X-Own") == 0 &&
              reqs[0]->headers[0]->size > sizeof(struct ewtp_header) && reqs[0]->headers[1]->secret,
          "translate: the request copied by the smaller size, its headers read by the members "
          "this host knows");

    struct ewtp_header *ref = host_alloc(sizeof(*ref));
    ref->name = "X-Ref";
    ref->value = "XB-REF-1";
    const struct ewtp_header *const hs[1] = {ref};
    struct ewtp_response *resp = host_alloc(sizeof(*resp));
    resp->status = 200;
    resp->headers = hs;
    resp->n_headers = 1;
    struct ewtp_outcome *o = host_alloc(sizeof(*o));
    rc = p->interpret(state, c, resp, o);
    CHECK(rc == 0 && o->size == sizeof(*o) && o->verdict == EWTP_V_APPROVED &&
              strcmp(o->code, "xb") == 0 && o->authority_ref &&
              strcmp(o->authority_ref, "XB-REF-1") == 0,
          "interpret: a %zu-byte outcome, no newer member written or read", sizeof(*o));

    struct ewtp_inbound *in = host_alloc(sizeof(*in));
    in->source = "http";
    in->name = "MSG-1";
    in->body = "";
    in->arena = a;
    in->host = &host;
    struct ewtp_correlation *to = host_alloc(sizeof(*to));
    struct ewtp_outcome *o2 = host_alloc(sizeof(*o2));
    rc = p->receive(state, in, to, o2);
    CHECK(rc == 0 && o2->size == sizeof(*o2) && o2->verdict == EWTP_V_APPROVED &&
              strcmp(o2->code, "xb-receipt") == 0 && to->size == sizeof(*to) && to->message_id &&
              strcmp(to->message_id, "MSG-1") == 0,
          "receive: the plugin's bigger outcome copied into the host's by the smaller size");

    p->destroy(state);
    free(chain);
    free(c);
    free(ri);
    free(ref);
    free(resp);
    free(o);
    free(in);
    free(to);
    free(o2);
    ewtp_arena_free(a);
    ewtp_errors_free(errs);
    dlclose(so);
    printf("%s\n", failures ? "abi_compat_driver: FAILED" : "abi_compat_driver: all passed");
    return failures ? 1 : 0;
}
