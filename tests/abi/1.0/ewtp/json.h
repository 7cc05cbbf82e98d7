/* ewtp/json.h — JSON reading (jansson inside) and exact JSON writing for plugins.
 *
 * Reader: an immutable tree of struct ewtp_json nodes. Nodes returned by accessors are
 * borrowed from the tree that holds them (the message, or a tree parsed into an arena)
 * and live as long as it. NULL in, NULL or the zero value out, so chains of accessors
 * need no checks in between. Thread-safe for reading.
 *
 * Writer: builds compact JSON into an arena. ewtp_jsonw_decimal() writes a decimal string
 * as a JSON number byte for byte ("87.63" -> 87.63), never through binary floating point, which is
 * what UBL JSON (MyInvois) needs.
 */
#ifndef EWTP_JSON_H
#define EWTP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/arena.h>
#include <ewtp/errors.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ewtp_json;

enum ewtp_json_type {
    EWTP_JSON_NONE = 0, /* absent (NULL node) */
    EWTP_JSON_OBJECT,
    EWTP_JSON_ARRAY,
    EWTP_JSON_STRING,
    EWTP_JSON_INTEGER,
    EWTP_JSON_REAL,
    EWTP_JSON_TRUE,
    EWTP_JSON_FALSE,
    EWTP_JSON_NULL,
};

/* Parses bytes (need not be NUL-terminated) into a tree owned by the arena: freed with it.
 * Duplicate keys, invalid UTF-8 and NUL are rejected; nesting deeper than 64 levels too.
 * Returns NULL on error and, when why is not NULL, adds one "format" error with the line
 * and column. */
const struct ewtp_json *ewtp_json_parse(struct ewtp_arena *a, const void *data, size_t len,
                                        struct ewtp_errors *why);

enum ewtp_json_type ewtp_json_type(const struct ewtp_json *j);
/* Member of an object, or NULL. */
const struct ewtp_json *ewtp_json_get(const struct ewtp_json *obj, const char *key);
/* RFC 6901 pointer from j ("/a/0/b"), or NULL. */
const struct ewtp_json *ewtp_json_at(const struct ewtp_json *j, const char *pointer);
/* String value (borrowed, NUL-terminated) or NULL when not a string. */
const char *ewtp_json_string(const struct ewtp_json *j);
/* Member's string or NULL: ewtp_json_string(ewtp_json_get(obj, key)). */
const char *ewtp_json_get_string(const struct ewtp_json *obj, const char *key);
/* Integer value; false when not an integer. */
bool ewtp_json_int(const struct ewtp_json *j, int64_t *out);
/* Boolean value; false when not true/false. */
bool ewtp_json_bool(const struct ewtp_json *j, bool *out);
/* Array length (0 when not an array) and element i (NULL past the end). */
size_t ewtp_json_size(const struct ewtp_json *j);
const struct ewtp_json *ewtp_json_index(const struct ewtp_json *arr, size_t i);
/* Object iteration in document order: i from 0; returns false past the end. */
bool ewtp_json_member(const struct ewtp_json *obj, size_t i, const char **key,
                      const struct ewtp_json **value);
/* Number of members of an object (0 otherwise). */
size_t ewtp_json_members(const struct ewtp_json *obj);
/* The text of a number exactly as written in the source when it was parsed by
 * ewtp_json_parse (so 87.630 stays "87.630"); for strings the string; otherwise NULL. */
const char *ewtp_json_number_text(const struct ewtp_json *j);
/* Compact serialisation into the arena (keys in document order). */
char *ewtp_json_dump(struct ewtp_arena *a, const struct ewtp_json *j);

/* Writer. Calls after an error are ignored; ewtp_jsonw_finish reports it. */
struct ewtp_jsonw;
struct ewtp_jsonw *ewtp_jsonw_new(struct ewtp_arena *a, bool pretty);
void ewtp_jsonw_object_begin(struct ewtp_jsonw *w);
void ewtp_jsonw_object_end(struct ewtp_jsonw *w);
void ewtp_jsonw_array_begin(struct ewtp_jsonw *w);
void ewtp_jsonw_array_end(struct ewtp_jsonw *w);
/* Member key inside an object; the next value call gives its value. */
void ewtp_jsonw_key(struct ewtp_jsonw *w, const char *key);
void ewtp_jsonw_string(struct ewtp_jsonw *w, const char *s); /* NULL writes null */
void ewtp_jsonw_stringn(struct ewtp_jsonw *w, const char *s, size_t len);
void ewtp_jsonw_int(struct ewtp_jsonw *w, int64_t v);
void ewtp_jsonw_bool(struct ewtp_jsonw *w, bool v);
void ewtp_jsonw_null(struct ewtp_jsonw *w);
/* A decimal string written as a JSON number, exactly as given; the text must match
 * -?[0-9]+(\.[0-9]+)? or the writer fails with -EWTP_EFORMAT at finish. */
void ewtp_jsonw_decimal(struct ewtp_jsonw *w, const char *dec);
/* Copies an already serialised JSON value verbatim (caller guarantees it is valid). */
void ewtp_jsonw_raw(struct ewtp_jsonw *w, const char *json);
/* Key + value shortcuts; the _opt forms write nothing when the value is NULL. */
void ewtp_jsonw_kv_string(struct ewtp_jsonw *w, const char *key, const char *s);
void ewtp_jsonw_kv_string_opt(struct ewtp_jsonw *w, const char *key, const char *s);
void ewtp_jsonw_kv_decimal(struct ewtp_jsonw *w, const char *key, const char *dec);
void ewtp_jsonw_kv_int(struct ewtp_jsonw *w, const char *key, int64_t v);
/* Ends the document: 0 and *out (NUL-terminated, in the arena) with *len, or
 * -EWTP_EINVAL (unbalanced, key without value), -EWTP_EFORMAT, -EWTP_ENOMEM. */
int ewtp_jsonw_finish(struct ewtp_jsonw *w, const char **out, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
