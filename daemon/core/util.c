/* util.c — see util.h. */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <ewtp/crypto.h>

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
