/* decimal.c — exact decimals on 128-bit scaled integers (ewtp/decimal.h).
 *
 * Values are kept as signed 128-bit units; every multiplication and addition goes through
 * __builtin_*_overflow. The most negative 128-bit value is treated as out of range so that
 * negation and absolute value are always defined.
 */
#include <ewtp/decimal.h>
#include <ewtp/errors.h>

#include <string.h>

__extension__ typedef unsigned __int128 u128;

#define I128_MAX ((ewtp_int128)(~(u128)0 >> 1))
#define I128_MIN (-I128_MAX - 1)

/* 10^n for n <= 38 (fits in a signed 128-bit integer). */
static ewtp_int128 p10(unsigned n)
{
    ewtp_int128 v = 1;
    while (n--)
        v *= 10;
    return v;
}

static u128 magnitude(ewtp_int128 v)
{
    return v < 0 ? (u128)0 - (u128)v : (u128)v;
}

/* units * 10^k, or false on overflow. */
static bool scale_up(ewtp_int128 units, unsigned k, ewtp_int128 *out)
{
    if (k > 38)
        return units == 0 ? (*out = 0, true) : false;
    ewtp_int128 r;
    if (__builtin_mul_overflow(units, p10(k), &r) || r == I128_MIN)
        return false;
    *out = r;
    return true;
}

int ewtp_dec_parse_ex(const char *s, size_t len, unsigned max_int_digits, unsigned max_scale,
                      struct ewtp_dec *out)
{
    if (!s || !out || max_int_digits < 1 || max_int_digits > 38 || max_scale > EWTP_DEC_MAX_SCALE)
        return -EWTP_EINVAL;
    size_t i = 0;
    bool neg = false;
    if (i < len && s[i] == '-') {
        neg = true;
        i++;
    }
    ewtp_int128 v = 0;
    size_t int_digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (++int_digits > max_int_digits)
            return -EWTP_EFORMAT;
        v = v * 10 + (s[i] - '0'); /* at most 38 digits: cannot overflow */
        i++;
    }
    if (int_digits == 0)
        return -EWTP_EFORMAT;
    unsigned scale = 0;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (++scale > max_scale)
                return -EWTP_EFORMAT;
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[i] - '0', &v))
                return -EWTP_ERANGE;
            i++;
        }
        if (scale == 0)
            return -EWTP_EFORMAT;
    }
    if (i != len)
        return -EWTP_EFORMAT;
    out->units = neg ? -v : v;
    out->scale = scale;
    return 0;
}

int ewtp_dec_parse(const char *s, struct ewtp_dec *out)
{
    if (!s)
        return -EWTP_EFORMAT;
    return ewtp_dec_parse_ex(s, strlen(s), 18, 6, out);
}

int ewtp_dec_format(struct ewtp_dec d, char *buf, size_t size)
{
    if (d.scale > EWTP_DEC_MAX_SCALE || !buf)
        return -EWTP_ERANGE;
    char tmp[EWTP_DEC_STRMAX + 24];
    size_t n = sizeof tmp;
    u128 m = magnitude(d.units);
    tmp[--n] = 0;
    unsigned digits = 0;
    /* Digits from the right: the scale's decimals, the point, then at least one more. */
    do {
        if (digits == d.scale && d.scale > 0)
            tmp[--n] = '.';
        tmp[--n] = (char)('0' + (unsigned)(m % 10));
        m /= 10;
        digits++;
    } while (m != 0 || digits <= d.scale);
    if (d.units < 0)
        tmp[--n] = '-';
    size_t len = sizeof tmp - 1 - n;
    if (len + 1 > size)
        return -EWTP_ERANGE;
    memcpy(buf, tmp + n, len + 1);
    return (int)len;
}

int ewtp_dec_format_places(struct ewtp_dec d, unsigned places, char *buf, size_t size)
{
    struct ewtp_dec r;
    int rc = ewtp_dec_round(d, places, &r);
    if (rc < 0)
        return rc;
    return ewtp_dec_format(r, buf, size);
}

struct ewtp_dec ewtp_dec_from_int(int64_t v)
{
    return (struct ewtp_dec){.units = v, .scale = 0};
}

/* Brings a and b to the larger scale. */
static int align(struct ewtp_dec *a, struct ewtp_dec *b)
{
    if (a->scale > EWTP_DEC_MAX_SCALE || b->scale > EWTP_DEC_MAX_SCALE)
        return -EWTP_ERANGE;
    if (a->scale < b->scale) {
        if (!scale_up(a->units, b->scale - a->scale, &a->units))
            return -EWTP_ERANGE;
        a->scale = b->scale;
    } else if (b->scale < a->scale) {
        if (!scale_up(b->units, a->scale - b->scale, &b->units))
            return -EWTP_ERANGE;
        b->scale = a->scale;
    }
    return 0;
}

int ewtp_dec_add(struct ewtp_dec a, struct ewtp_dec b, struct ewtp_dec *out)
{
    int rc = align(&a, &b);
    if (rc < 0)
        return rc;
    ewtp_int128 r;
    if (__builtin_add_overflow(a.units, b.units, &r) || r == I128_MIN)
        return -EWTP_ERANGE;
    out->units = r;
    out->scale = a.scale;
    return 0;
}

int ewtp_dec_sub(struct ewtp_dec a, struct ewtp_dec b, struct ewtp_dec *out)
{
    int rc = align(&a, &b);
    if (rc < 0)
        return rc;
    ewtp_int128 r;
    if (__builtin_sub_overflow(a.units, b.units, &r) || r == I128_MIN)
        return -EWTP_ERANGE;
    out->units = r;
    out->scale = a.scale;
    return 0;
}

int ewtp_dec_mul(struct ewtp_dec a, struct ewtp_dec b, struct ewtp_dec *out)
{
    if (a.scale + b.scale > EWTP_DEC_MAX_SCALE)
        return -EWTP_ERANGE;
    ewtp_int128 r;
    if (__builtin_mul_overflow(a.units, b.units, &r) || r == I128_MIN)
        return -EWTP_ERANGE;
    out->units = r;
    out->scale = a.scale + b.scale;
    return 0;
}

/* n / d rounded half-up away from zero; d != 0. Magnitudes avoid overflow in 2*r. */
static int div_round(ewtp_int128 n, ewtp_int128 d, ewtp_int128 *out)
{
    bool neg = (n < 0) != (d < 0);
    u128 un = magnitude(n), ud = magnitude(d);
    u128 q = un / ud, r = un % ud;
    if (r >= ud - r)
        q++;
    if (q > (u128)I128_MAX)
        return -EWTP_ERANGE;
    *out = neg ? -(ewtp_int128)q : (ewtp_int128)q;
    return 0;
}

int ewtp_dec_div(struct ewtp_dec a, struct ewtp_dec b, unsigned places, struct ewtp_dec *out)
{
    if (b.units == 0)
        return -EWTP_EINVAL;
    if (places > EWTP_DEC_MAX_SCALE || a.scale > EWTP_DEC_MAX_SCALE || b.scale > EWTP_DEC_MAX_SCALE)
        return -EWTP_ERANGE;
    /* a/b at scale places = a.units * 10^(b.scale + places - a.scale) / b.units. */
    int e = (int)b.scale + (int)places - (int)a.scale;
    ewtp_int128 n = a.units, d = b.units;
    if (e >= 0) {
        if (!scale_up(n, (unsigned)e, &n))
            return -EWTP_ERANGE;
    } else if (!scale_up(d, (unsigned)-e, &d)) {
        /* The divisor outgrew 128 bits: the quotient rounds to zero. */
        out->units = 0;
        out->scale = places;
        return 0;
    }
    ewtp_int128 q;
    if (div_round(n, d, &q) < 0)
        return -EWTP_ERANGE;
    out->units = q;
    out->scale = places;
    return 0;
}

int ewtp_dec_round(struct ewtp_dec d, unsigned places, struct ewtp_dec *out)
{
    if (places > EWTP_DEC_MAX_SCALE || d.scale > EWTP_DEC_MAX_SCALE)
        return -EWTP_ERANGE;
    if (places >= d.scale)
        return ewtp_dec_rescale(d, places, out);
    ewtp_int128 q;
    if (div_round(d.units, p10(d.scale - places), &q) < 0)
        return -EWTP_ERANGE;
    out->units = q;
    out->scale = places;
    return 0;
}

int ewtp_dec_rescale(struct ewtp_dec d, unsigned scale, struct ewtp_dec *out)
{
    if (scale > EWTP_DEC_MAX_SCALE || d.scale > EWTP_DEC_MAX_SCALE)
        return -EWTP_ERANGE;
    if (scale < d.scale) {
        ewtp_int128 f = p10(d.scale - scale);
        if (d.units % f != 0)
            return -EWTP_EINVAL;
        out->units = d.units / f;
        out->scale = scale;
        return 0;
    }
    ewtp_int128 u;
    if (!scale_up(d.units, scale - d.scale, &u))
        return -EWTP_ERANGE;
    out->units = u;
    out->scale = scale;
    return 0;
}

int ewtp_dec_cmp(struct ewtp_dec a, struct ewtp_dec b)
{
    int sa = a.units < 0 ? -1 : a.units > 0, sb = b.units < 0 ? -1 : b.units > 0;
    if (sa != sb)
        return sa < sb ? -1 : 1;
    if (sa == 0)
        return 0;
    /* Same sign: compare magnitudes at a common scale; a magnitude that overflows 128 bits
     * when scaled up is necessarily the larger one. */
    u128 ma = magnitude(a.units), mb = magnitude(b.units);
    int c;
    unsigned k = a.scale > b.scale ? a.scale - b.scale : b.scale - a.scale;
    u128 f = (u128)p10(k > 38 ? 38 : k);
    u128 *lo = a.scale < b.scale ? &ma : &mb;
    bool over = k > 38 ? *lo != 0 : __builtin_mul_overflow(*lo, f, lo);
    if (over)
        c = lo == &ma ? 1 : -1;
    else
        c = ma < mb ? -1 : ma > mb;
    return sa < 0 ? -c : c;
}

bool ewtp_dec_is_zero(struct ewtp_dec d)
{
    return d.units == 0;
}

bool ewtp_dec_is_negative(struct ewtp_dec d)
{
    return d.units < 0;
}

struct ewtp_dec ewtp_dec_neg(struct ewtp_dec d)
{
    if (d.units != I128_MIN) /* unreachable through this API; avoids undefined negation */
        d.units = -d.units;
    return d;
}

struct ewtp_dec ewtp_dec_abs(struct ewtp_dec d)
{
    return d.units < 0 ? ewtp_dec_neg(d) : d;
}

bool ewtp_dec_within(struct ewtp_dec a, struct ewtp_dec b, struct ewtp_dec tolerance)
{
    struct ewtp_dec diff;
    if (ewtp_dec_sub(a, b, &diff) < 0)
        return false;
    return ewtp_dec_cmp(ewtp_dec_abs(diff), tolerance) <= 0;
}

struct ewtp_dec ewtp_dec_minor_unit(unsigned n)
{
    if (n > EWTP_DEC_MAX_SCALE)
        n = EWTP_DEC_MAX_SCALE;
    return (struct ewtp_dec){.units = 1, .scale = n};
}

int ewtp_dec_to_int(struct ewtp_dec d, int64_t *out)
{
    if (d.scale > EWTP_DEC_MAX_SCALE)
        return -EWTP_ERANGE;
    ewtp_int128 f = p10(d.scale);
    if (d.units % f != 0)
        return -EWTP_EINVAL;
    ewtp_int128 v = d.units / f;
    if (v > INT64_MAX || v < INT64_MIN)
        return -EWTP_ERANGE;
    *out = (int64_t)v;
    return 0;
}
