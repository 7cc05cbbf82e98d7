/* ewtp/errors.h — return codes and the list of input errors.
 *
 * Functions return 0 or a negative EWTP_E* code. Problems with *input* (a message, an
 * authority answer, a setting) are not return codes but entries in a struct ewtp_errors:
 * {pointer (RFC 6901 JSON Pointer into the input), code (a stable machine word from the
 * spec: "required", "type", "format", "range", "unknown_member", "rule", "duplicate",
 * "size", "depth", "encoding", "unsupported"), message (a sentence for a person),
 * severity}. Validation appends every error it finds; it never stops at the first.
 * An ewtp_errors list is not thread-safe; each call gets its own.
 */
#ifndef EWTP_ERRORS_H
#define EWTP_ERRORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum ewtp_rc {
    EWTP_OK = 0,
    EWTP_ENOMEM = 1,    /* out of memory */
    EWTP_EINVAL = 2,    /* bad argument or invalid input (details in an ewtp_errors list) */
    EWTP_ERANGE = 3,    /* value out of range (decimal overflow, too long) */
    EWTP_EFORMAT = 4,   /* malformed text (decimal, JSON, XML, Base64) */
    EWTP_EIO = 5,       /* file or system error */
    EWTP_ENOTFOUND = 6, /* no such key, file, member */
    EWTP_EUNSUPP = 7,   /* not supported by this build, plugin or host */
    EWTP_ECRYPTO = 8,   /* signing, digest or certificate failure */
};

/* A short English description of an EWTP_E* code (positive or negative). Never NULL. */
const char *ewtp_strerror(int rc);

enum ewtp_severity { EWTP_SEV_ERROR = 0, EWTP_SEV_WARNING = 1 };

/* Longest JSON Pointer kept; longer ones are truncated with "...". */
#define EWTP_POINTER_MAX 256

/* One entry, allocated by libewtp (read it through ewtp_errors_at; members newer than 1.0
 * only after EWTP_HAS, see ewtp/abi.h). */
struct ewtp_error {
    size_t size;         /* sizeof(struct ewtp_error) of libewtp */
    const char *pointer; /* "" for the whole document */
    const char *code;    /* "required", "format", "rule", ... */
    const char *message; /* a sentence naming what is wrong */
    enum ewtp_severity severity;
#ifdef EWTP_ABI_TEST_GROWN /* test-only (tests/abi) */
    uint64_t abi_test_grown[3];
#endif
};

struct ewtp_errors;

/* New empty list; caller frees with ewtp_errors_free(). NULL when out of memory. */
struct ewtp_errors *ewtp_errors_new(void);
void ewtp_errors_free(struct ewtp_errors *e);
/* Empties the list, keeping its memory. */
void ewtp_errors_clear(struct ewtp_errors *e);

/* Appends an error (severity error) or a warning. pointer and code are copied; message is
 * printf-formatted. Out of memory is recorded and reported by ewtp_errors_oom(). */
void ewtp_errors_add(struct ewtp_errors *e, const char *pointer, const char *code, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));
void ewtp_errors_warn(struct ewtp_errors *e, const char *pointer, const char *code, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));
void ewtp_errors_add_sev(struct ewtp_errors *e, enum ewtp_severity sev, const char *pointer,
                         const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Appends every entry of src, with prefix put before each pointer (NULL or "" for none). */
void ewtp_errors_append(struct ewtp_errors *dst, const struct ewtp_errors *src, const char *prefix);

size_t ewtp_errors_count(const struct ewtp_errors *e);
/* Number of entries with severity error (those block acceptance). */
size_t ewtp_errors_blocking(const struct ewtp_errors *e);
/* Entry i (0-based) or NULL; borrowed until the list changes or is freed. */
const struct ewtp_error *ewtp_errors_at(const struct ewtp_errors *e, size_t i);
/* True when an allocation failed while adding: the list is incomplete. */
bool ewtp_errors_oom(const struct ewtp_errors *e);
/* True when some entry has this pointer (and this code, unless code is NULL). */
bool ewtp_errors_has(const struct ewtp_errors *e, const char *pointer, const char *code);

/* {"errors":[{"pointer":..,"code":..,"message":..[,"severity":"warning"]},...]} as a
 * NUL-terminated malloc'd string; caller frees with free(). Warnings carry "severity". */
char *ewtp_errors_to_json(const struct ewtp_errors *e);

/* Builds a JSON Pointer from printf arguments into buf (EWTP_POINTER_MAX bytes), escaping
 * nothing: use for pointers made of fixed member names and indexes. Returns buf. */
const char *ewtp_pointer(char buf[EWTP_POINTER_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
