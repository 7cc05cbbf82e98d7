/* fuzz_json.c — libFuzzer target for ewtp_json_parse() (STYLE §6), the reader every plugin
 * uses for authority answers (sdk/src/json.c). Built and run by tests/fuzz/run.sh.
 *
 * A parsed tree is walked completely (types, integers, number texts, pointers) and dumped
 * again; the dump must parse back, so the writer and the reader agree. Any input must give
 * a tree or NULL, never a crash, leak or sanitizer report. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ewtp/arena.h>
#include <ewtp/errors.h>
#include <ewtp/json.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct ewtp_json *j, unsigned depth)
{
    int64_t i64;
    bool b;
    if (j == NULL || depth > 80)
        return;
    (void)ewtp_json_int(j, &i64);
    (void)ewtp_json_bool(j, &b);
    const char *s = ewtp_json_string(j);
    if (s)
        (void)strlen(s);
    s = ewtp_json_number_text(j);
    if (s)
        (void)strlen(s);
    for (size_t k = 0; k < ewtp_json_size(j); k++)
        walk(ewtp_json_index(j, k), depth + 1);
    const char *key;
    const struct ewtp_json *v;
    for (size_t k = 0; ewtp_json_member(j, k, &key, &v); k++) {
        (void)ewtp_json_get(j, key);
        walk(v, depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ewtp_arena *a = ewtp_arena_new();
    struct ewtp_errors *e = ewtp_errors_new();
    if (a == NULL || e == NULL) {
        ewtp_arena_free(a);
        ewtp_errors_free(e);
        return 0;
    }
    /* An exact-size copy: the parser must not read past len (no NUL is promised). */
    uint8_t *copy = malloc(size ? size : 1);
    if (copy) {
        memcpy(copy, data, size);
        const struct ewtp_json *j = ewtp_json_parse(a, copy, size, e);
        if (j) {
            walk(j, 0);
            static const char *const pointers[] = {"",      "/0", "/a",    "/a/0/b",
                                                   "/~0~1", "/-", "/0/0/0"};
            for (size_t k = 0; k < sizeof(pointers) / sizeof(pointers[0]); k++)
                walk(ewtp_json_at(j, pointers[k]), 0);
            char *dump = ewtp_json_dump(a, j);
            if (dump && ewtp_json_parse(a, dump, strlen(dump), NULL) == NULL)
                abort(); /* the dump of a parsed tree must parse back */
        }
        free(copy);
    }
    ewtp_errors_free(e);
    ewtp_arena_free(a);
    return 0;
}
