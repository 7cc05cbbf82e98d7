/* message_util.c — names and the pure format checks of ewtp/message.h (kinds, roles, RFC 3339
 * times, dates, HS codes, CN resident ID numbers) and time conversion without the C library's
 * time zone machinery: days-from-civil arithmetic on integers only, so results do not depend
 * on TZ, locale or the platform's time_t. */
#include <stdio.h>
#include <string.h>

#include <ewtp/message.h>

static const char *const role_names[EWTP_ROLE_COUNT] = {
    "seller",    "buyer",    "platform", "merchant",  "logistics", "payment_provider",
    "declarant", "importer", "exporter", "consignee", "carrier",
};

const char *ewtp_kind_name(enum ewtp_kind k)
{
    static const char *const names[EWTP_KIND_COUNT] = {
        "order",  "payment", "waybill",  "declaration", "invoice",
        "status", "return",  "manifest", "summary",
    };
    if ((int)k < 0 || (int)k >= EWTP_KIND_COUNT)
        return NULL;
    return names[k];
}

enum ewtp_kind ewtp_kind_from_name(const char *name)
{
    if (!name)
        return EWTP_KIND_NONE;
    for (int k = 0; k < EWTP_KIND_COUNT; k++)
        if (strcmp(name, ewtp_kind_name((enum ewtp_kind)k)) == 0)
            return (enum ewtp_kind)k;
    return EWTP_KIND_NONE;
}

const char *ewtp_role_name(enum ewtp_role r)
{
    if ((int)r < 0 || (int)r >= EWTP_ROLE_COUNT)
        return NULL;
    return role_names[r];
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Value of n digits at s, or -1 when one of them is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* YYYY-MM-DD at s (exactly 10 characters, a real calendar day). */
static bool parse_date(const char *s, int *y, int *m, int *d)
{
    if (s[4] != '-' || s[7] != '-')
        return false;
    *y = digits(s, 4);
    *m = digits(s + 5, 2);
    *d = digits(s + 8, 2);
    if (*y < 0 || *m < 1 || *m > 12 || *d < 1)
        return false;
    return *d <= days_in_month(*y, *m);
}

bool ewtp_is_date(const char *s)
{
    int y, m, d;
    if (!s || strlen(s) != 10)
        return false;
    return parse_date(s, &y, &m, &d);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Longest fraction of a second accepted; milliseconds are kept, the rest is truncated. */
#define FRACTION_MAX 9

bool ewtp_time_parse(const char *s, int64_t *ms)
{
    int y, mo, d;
    if (!s || strlen(s) < 20 || !parse_date(s, &y, &mo, &d) || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':')
        return false;
    int hh = digits(s + 11, 2), mi = digits(s + 14, 2), ss = digits(s + 17, 2);
    /* Leap seconds (:60) are refused: no authority we serve sends them and they do not map
     * onto epoch milliseconds. */
    if (hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 59)
        return false;
    const char *p = s + 19;
    int frac_ms = 0;
    if (*p == '.') {
        int n = 0;
        p++;
        while (is_digit(p[n])) {
            if (n < 3)
                frac_ms = frac_ms * 10 + (p[n] - '0');
            n++;
        }
        if (n == 0 || n > FRACTION_MAX)
            return false;
        for (int i = n; i < 3; i++)
            frac_ms *= 10;
        p += n;
    }
    int offset_min = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh = digits(p + 1, 2);
        if (oh < 0 || p[3] != ':')
            return false;
        int om = digits(p + 4, 2);
        if (oh > 23 || om < 0 || om > 59)
            return false;
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0')
        return false;
    if (ms) {
        int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
        int64_t secs = days * 86400 + hh * 3600 + mi * 60 + ss - (int64_t)offset_min * 60;
        *ms = secs * 1000 + frac_ms;
    }
    return true;
}

bool ewtp_is_rfc3339(const char *s)
{
    return ewtp_time_parse(s, NULL);
}

const char *ewtp_time_format(int64_t ms, int offset_min, char *buf, size_t size)
{
    if (!buf || size == 0)
        return buf;
    int64_t local = ms + (int64_t)offset_min * 60000;
    /* Floor division so that times before 1970 format correctly. */
    int64_t days = local / 86400000;
    int64_t rem = local % 86400000;
    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int hh = (int)(rem / 3600000), mi = (int)(rem / 60000 % 60), ss = (int)(rem / 1000 % 60);
    int milli = (int)(rem % 1000);
    char frac[8] = "";
    if (milli)
        snprintf(frac, sizeof frac, ".%03d", milli);
    /* Offset 0 is written "Z", the form RFC 3339 recommends for UTC. */
    char off[8] = "Z";
    if (offset_min) {
        int a = offset_min < 0 ? -offset_min : offset_min;
        snprintf(off, sizeof off, "%c%02d:%02d", offset_min < 0 ? '-' : '+', a / 60 % 100, a % 60);
    }
    snprintf(buf, size, "%04lld-%02u-%02uT%02d:%02d:%02d%s%s", (long long)y, m, d, hh, mi, ss, frac,
             off);
    return buf;
}

bool ewtp_is_hs_code(const char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n < 6 || n > 10)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]))
            return false;
    return true;
}

/* GB 11643-1999: 17 digits, then the ISO 7064 MOD 11-2 check character (0-9 or X). */
bool ewtp_is_cn_ric(const char *s)
{
    static const int weight[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[12] = "10X98765432";
    if (!s || strlen(s) != 18)
        return false;
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        if (!is_digit(s[i]))
            return false;
        sum += (s[i] - '0') * weight[i];
    }
    return s[17] == check[sum % 11];
}
