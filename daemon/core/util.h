/* util.h — small helpers every layer of ewtpd and ewtpctl uses (the bottom of daemon/).
 *
 * Pure functions over their arguments: no globals, thread-safe. Depends on libc (and
 * libewtp for digests) only, so any module may include it.
 */
#ifndef EWTP_UTIL_H
#define EWTP_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* now when > 0, else CLOCK_REALTIME in ms since the epoch. */
int64_t ewtp_clock_ms(int64_t now);

/* RFC 3339 UTC with milliseconds, "2026-11-22T02:00:00.000Z", into buf (at least 32 bytes);
 * returns buf. */
const char *ewtp_fmt_time(char *buf, size_t size, int64_t ms);

/* malloc'd printf; NULL when out of memory. */
char *ewtp_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same with a va_list. */
char *ewtp_vasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* SHA-256 of len bytes as 64 lower-case hex digits and a NUL into hex. 0, or -1 when
 * OpenSSL fails (hex is then ""). */
int ewtp_sha256_hex(const void *data, size_t len, char hex[65]);

/* 64 random bits (OpenSSL's RAND_bytes; the clock mixed if that fails): jitter, not secrets. */
uint64_t ewtp_rnd64(void);

/* Reads a whole file ("-" = stdin) up to max bytes (+1 to detect too large): 0 and a
 * malloc'd NUL-terminated buffer, or -EWTP_EIO with errno set. */
int ewtp_read_file(const char *path, size_t max, char **data, size_t *len);

/* A copy of a log line with personal data masked: runs of 6+ digits (ID card, phone,
 * account numbers) keep their last 2 characters ("110101199003077774" -> "****************74").
 * Caller frees. */
char *ewtp_redact(const char *line);

#endif
