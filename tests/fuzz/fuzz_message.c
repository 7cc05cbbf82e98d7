/* fuzz_message.c — libFuzzer target for ewtp_message_parse() (STYLE §6).
 *
 * tests/fuzz/run.sh builds and runs it with the other targets (README.md there). By hand
 * (not part of the default build):
 *   clang -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Isdk/include \
 *     -Isdk/src tests/fuzz/fuzz_message.c sdk/src/[a-z]*.c build/sdk/codes_data.c \
 *     $(pkg-config --cflags --libs jansson libxml-2.0 openssl) -o fuzz_message
 *   ./fuzz_message tests/corpus/valid tests/corpus/invalid
 * Any input must give 0 or a negative code, never a crash, leak or sanitizer report; a
 * parsed message must serialise canonically. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <ewtp/message.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ewtp_errors *e = ewtp_errors_new();
    struct ewtp_message *m = NULL;
    if (!e)
        return 0;
    if (ewtp_message_parse(data, size, NULL, &m, e) == 0) {
        const struct ewtp_line *const *lines;
        size_t n = ewtp_message_lines(m, &lines);
        for (size_t i = 0; i < n; i++) /* every line pointer is readable */
            (void)lines[i]->line;
        (void)ewtp_message_ext(m, "cn");
        free(ewtp_message_canonical(m));
        ewtp_message_free(m);
    }
    ewtp_errors_free(e);
    return 0;
}
