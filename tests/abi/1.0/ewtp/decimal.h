/* ewtp/decimal.h — exact decimals on 128-bit scaled integers.
 *
 * Money, quantities, weights and rates are decimal strings everywhere (spec: "Decimals").
 * A struct ewtp_dec holds value = units / 10^scale exactly. Nothing here uses binary
 * floating point. Every operation that could overflow 128 bits returns -EWTP_ERANGE and
 * leaves *out unchanged; callers report that as a "range" error on the member concerned.
 * All functions are pure and thread-safe.
 */
#ifndef EWTP_DECIMAL_H
#define EWTP_DECIMAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ewtp/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

__extension__ typedef __int128 ewtp_int128;

/* Largest scale any operation produces or accepts. */
#define EWTP_DEC_MAX_SCALE 18
/* Buffer size that holds any formatted decimal (sign, 39 digits, point, NUL). */
#define EWTP_DEC_STRMAX 48

struct ewtp_dec {
    ewtp_int128 units; /* the value times 10^scale */
    unsigned scale;    /* digits after the point, 0..EWTP_DEC_MAX_SCALE */
};
/* A frozen value type for major 1: passed and embedded by value, it never grows. */
EWTP_STATIC_ASSERT(sizeof(struct ewtp_dec) == 2 * sizeof(ewtp_int128),
                   "struct ewtp_dec is frozen for ABI major 1");

/* Parses the spec's decimal syntax exactly: ^-?[0-9]{1,18}(\.[0-9]{1,6})?$ .
 * Returns 0, or -EWTP_EFORMAT for anything else ("1e3", "+1", "1,5", " 1", "", ".5",
 * "1.", 19 integer digits, 7 decimals). "-0" and "-0.00" parse (to zero). The scale of the
 * result is the number of decimals written ("1.50" has scale 2). */
int ewtp_dec_parse(const char *s, struct ewtp_dec *out);
/* Same, with the limits given (for authority answers with other precisions):
 * max_int_digits 1..38, max_scale 0..EWTP_DEC_MAX_SCALE. len is the length of s
 * (s need not be NUL-terminated). */
int ewtp_dec_parse_ex(const char *s, size_t len, unsigned max_int_digits, unsigned max_scale,
                      struct ewtp_dec *out);

/* Writes the value with exactly its scale ("1.50" stays "1.50"; zero is "0" or "0.00",
 * never "-0"). Returns the length, or -EWTP_ERANGE when size is too small. */
int ewtp_dec_format(struct ewtp_dec d, char *buf, size_t size);
/* Rounds half-up (away from zero at .5) to places decimals, then formats with exactly that
 * many decimals ("2.345" at 2 -> "2.35", "-2.345" -> "-2.35", "7" at 2 -> "7.00"). */
int ewtp_dec_format_places(struct ewtp_dec d, unsigned places, char *buf, size_t size);

/* A value from an integer (scale 0). */
struct ewtp_dec ewtp_dec_from_int(int64_t v);
/* Exact arithmetic; the result's scale is max(a.scale, b.scale) for add/sub and
 * a.scale + b.scale for mul (-EWTP_ERANGE beyond EWTP_DEC_MAX_SCALE or 128 bits). */
int ewtp_dec_add(struct ewtp_dec a, struct ewtp_dec b, struct ewtp_dec *out);
int ewtp_dec_sub(struct ewtp_dec a, struct ewtp_dec b, struct ewtp_dec *out);
int ewtp_dec_mul(struct ewtp_dec a, struct ewtp_dec b, struct ewtp_dec *out);
/* Divides, rounding half-up to places decimals; -EWTP_EINVAL when b is zero. */
int ewtp_dec_div(struct ewtp_dec a, struct ewtp_dec b, unsigned places, struct ewtp_dec *out);
/* Rounds half-up (away from zero) to places decimals; a value already at or below that scale
 * is rescaled exactly (scale becomes places). */
int ewtp_dec_round(struct ewtp_dec d, unsigned places, struct ewtp_dec *out);
/* Same value with a larger scale (exact); -EWTP_ERANGE on overflow, -EWTP_EINVAL when
 * scale is smaller than d.scale and digits would be lost. */
int ewtp_dec_rescale(struct ewtp_dec d, unsigned scale, struct ewtp_dec *out);

/* -1, 0, 1 by value (1.50 == 1.5). Never overflows. */
int ewtp_dec_cmp(struct ewtp_dec a, struct ewtp_dec b);
bool ewtp_dec_is_zero(struct ewtp_dec d);
bool ewtp_dec_is_negative(struct ewtp_dec d);
struct ewtp_dec ewtp_dec_neg(struct ewtp_dec d);
struct ewtp_dec ewtp_dec_abs(struct ewtp_dec d);
/* |a - b| <= tolerance, exact; false when the difference overflows. */
bool ewtp_dec_within(struct ewtp_dec a, struct ewtp_dec b, struct ewtp_dec tolerance);
/* One minor unit for a currency with n decimals: 10^-n (n=2 -> 0.01). */
struct ewtp_dec ewtp_dec_minor_unit(unsigned n);
/* Integer part when the value is a whole number that fits; -EWTP_EINVAL / -EWTP_ERANGE. */
int ewtp_dec_to_int(struct ewtp_dec d, int64_t *out);

#ifdef __cplusplus
}
#endif
#endif
