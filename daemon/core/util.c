/* util.c — see util.h. */
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <ewtp/crypto.h>
#include <ewtp/errors.h>

int64_t ewtp_clock_ms(int64_t now)
{
    if (now > 0)
        return now;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *ewtp_fmt_time(char *buf, size_t size, int64_t ms)
{
    /* Floor division so that times before 1970 still print the right second. */
    int64_t sec = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        sec -= 1;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, size, "1970-01-01T00:00:00.000Z");
        return buf;
    }
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    return buf;
}

char *ewtp_vasprintf(const char *fmt, va_list ap)
{
    char *s = NULL;
    return vasprintf(&s, fmt, ap) < 0 ? NULL : s;
}

char *ewtp_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = ewtp_vasprintf(fmt, ap);
    va_end(ap);
    return s;
}

uint64_t ewtp_rnd64(void)
{
    uint64_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        r = (uint64_t)ewtp_clock_ms(0) * 6364136223846793005u;
    return r;
}

int ewtp_sha256_hex(const void *data, size_t len, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EWTP_DIGEST_MAX];
    size_t mdlen = 0;
    hex[0] = '\0';
    if (ewtp_digest(EWTP_DIGEST_SHA256, data, len, md, &mdlen) != 0 || mdlen != 32)
        return -1;
    for (size_t i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    OPENSSL_cleanse(md, sizeof(md));
    return 0;
}

int ewtp_read_file(const char *path, size_t max, char **data, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL)
        return -EWTP_EIO;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    int rc = 0;
    while (buf != NULL) {
        if (n == cap) {
            if (n > max)
                break; /* one byte past the limit is enough to say "too large" */
            char *grown = realloc(buf, cap * 2 + 1);
            if (grown == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                rc = -EWTP_EIO;
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (buf == NULL)
        return -EWTP_ENOMEM;
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

char *ewtp_redact(const char *line)
{
    if (line == NULL)
        return NULL;
    char *out = strdup(line);
    if (out == NULL)
        return NULL;
    /* A run of letters and digits that holds six or more digits is an identifier (ID card,
     * passport, phone, account): all but its last two characters become '*'. */
    for (char *p = out; *p;) {
        if (!isalnum((unsigned char)*p)) {
            p++;
            continue;
        }
        char *start = p;
        size_t digits = 0;
        while (*p && isalnum((unsigned char)*p)) {
            if (isdigit((unsigned char)*p))
                digits++;
            p++;
        }
        if (digits >= 6 && p - start > 2)
            memset(start, '*', (size_t)(p - start) - 2);
    }
    return out;
}
