/* json_mutate.h — structure-aware mutation of a JSON document for the libFuzzer builds of
 * tests/fuzz/ (fuzz_validate's messages, fuzz_http's request bodies): one value of the parsed
 * document changed (a string's bytes mutated by libFuzzer, an awkward number, type or string, a
 * copy of another value of the document, a member or element removed or repeated, a number
 * nudged). Byte-level mutations of JSON mostly stop at the parser; these reach what is behind
 * it. Static functions: include it once, in a target built with EWTP_FUZZ_LIBFUZZER. */
#ifndef EWTP_FUZZ_JSON_MUTATE_H
#define EWTP_FUZZ_JSON_MUTATE_H

#include <stdint.h>
#include <string.h>

#include <jansson.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

#define MUT_MAX_NODES 4096

struct mut_node {
    json_t *value, *parent; /* parent NULL: the root */
    const char *key;        /* member name in an object parent */
    size_t index;           /* element index in an array parent */
};

static size_t mut_collect(json_t *v, json_t *parent, const char *key, size_t index,
                          struct mut_node *nodes, size_t n)
{
    if (n == MUT_MAX_NODES)
        return n;
    nodes[n++] = (struct mut_node){v, parent, key, index};
    if (json_is_object(v)) {
        const char *k;
        json_t *child;
        json_object_foreach(v, k, child) n = mut_collect(child, v, k, 0, nodes, n);
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            n = mut_collect(json_array_get(v, i), v, NULL, i, nodes, n);
    }
    return n;
}

static json_t *awkward_value(unsigned r)
{
    static const char *const strings[] = {"",
                                          " ",
                                          "0",
                                          "-1",
                                          "1e400",
                                          "0.000000001",
                                          "99999999999999999999.99",
                                          "2026-02-30",
                                          "2026-11-22T25:61:00Z",
                                          "ZZ",
                                          "XX",
                                          "\xe4\xb9\xb0\xe5\xae\xb6",
                                          "a\"b<c>&d",
                                          "../../etc/passwd",
                                          "%s%n"};
    switch (r % 8) {
    case 0:
        return json_integer((json_int_t[]){0, -1, 1, INT32_MAX, INT64_MAX, INT64_MIN, 100000,
                                           4294967296}[(r >> 3) % 8]);
    case 1:
        return json_real((double[]){0.5, -0.01, 1e300, 12.345678, 1e-300}[(r >> 3) % 5]);
    case 2:
        return json_null();
    case 3:
        return json_boolean((r >> 3) & 1);
    case 4:
        return json_array();
    case 5:
        return json_object();
    default:
        return json_string(strings[(r >> 3) % (sizeof(strings) / sizeof(strings[0]))]);
    }
}

/* Puts v (a new reference, taken) where node is. */
static void mut_replace(const struct mut_node *node, json_t *v, json_t **root)
{
    if (v == NULL)
        return;
    if (node->parent == NULL) {
        json_decref(*root);
        *root = v;
    } else if (json_is_object(node->parent)) {
        json_object_set_new(node->parent, node->key, v);
    } else {
        json_array_set_new(node->parent, node->index, v);
    }
}

/* Changes one value of *root (which it may replace) as r says. */
static void mutate_json(json_t **root, unsigned r)
{
    static struct mut_node nodes[MUT_MAX_NODES];
    size_t n = mut_collect(*root, NULL, NULL, 0, nodes, 0);
    struct mut_node *node = &nodes[(r >> 4) % n];
    struct mut_node *other = &nodes[(r >> 16) % n];
    switch (r % 6) {
    case 0: { /* a string's bytes, mutated by libFuzzer (valid UTF-8 kept) */
        if (!json_is_string(node->value))
            break;
        uint8_t buf[4096];
        size_t len = json_string_length(node->value);
        if (len > sizeof(buf) / 2)
            len = sizeof(buf) / 2;
        memcpy(buf, json_string_value(node->value), len);
        len = LLVMFuzzerMutate(buf, len, sizeof(buf));
        mut_replace(node, json_stringn((const char *)buf, len), root);
        break;
    }
    case 1:
        mut_replace(node, awkward_value(r >> 8), root);
        break;
    case 2: /* another value of the message here */
        if (other->value != node->value)
            mut_replace(node, json_deep_copy(other->value), root);
        break;
    case 3: /* gone */
        if (node->parent && json_is_object(node->parent))
            json_object_del(node->parent, node->key);
        else if (node->parent)
            json_array_remove(node->parent, node->index);
        break;
    case 4: /* repeated */
        if (node->parent && json_is_array(node->parent))
            json_array_insert_new(node->parent, node->index, json_deep_copy(node->value));
        else if (json_is_array(node->value) && json_array_size(node->value) > 0)
            json_array_append_new(node->value, json_deep_copy(json_array_get(node->value, 0)));
        break;
    default: /* a number nudged */
        if (json_is_integer(node->value))
            /* wraps rather than overflows (json_int_t is signed) */
            mut_replace(node,
                        json_integer((json_int_t)((uint64_t)json_integer_value(node->value) +
                                                  (uint64_t)(json_int_t[]){
                                                      1, -1, 1000000, -1000000}[(r >> 8) % 4])),
                        root);
        else if (json_is_real(node->value))
            mut_replace(node, json_real(json_real_value(node->value) * -1.0001), root);
        else
            mut_replace(node, awkward_value(r >> 8), root);
        break;
    }
}

#endif
