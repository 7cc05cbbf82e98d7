/* replay_main.c — runs a libFuzzer target without libFuzzer: every file named on the command
 * line, or every regular file of a folder named there, is fed once to LLVMFuzzerTestOneInput
 * (after LLVMFuzzerInitialize, when the target has one). make test builds each target of
 * tests/fuzz/ with gcc and ASan+UBSan against this main and runs it over the target's seeds and
 * its committed regression inputs (tests/fuzz/regress/<target>/), so a fixed finding stays
 * fixed where clang and libFuzzer are not installed.
 *
 *   fuzz_<t>_replay [--min N] FILE|DIR...
 *
 * A folder that does not exist is skipped (a target may have no regression inputs yet); fewer
 * than N inputs in all (default 1) fails, so an empty or missing corpus cannot pass. Each
 * input gets its own exact-size allocation, as under libFuzzer, so a read past its end is
 * reported. Exit 0 when every input ran; a sanitizer report aborts with its own status. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target: weak, so that a target without it links. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* libFuzzer's own default -max_len is 4096 for a fresh corpus; inputs of the seed corpora can
 * be larger (samples), which libFuzzer also runs whole when they are given as seeds. */
#define REPLAY_MAX_INPUT (16u << 20)

static size_t ran;

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || (uintmax_t)st.st_size > REPLAY_MAX_INPUT) {
        fprintf(stderr, "replay: %s: not a readable file of at most %u bytes\n", path,
                REPLAY_MAX_INPUT);
        fclose(f);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size ? size : 1);
    if (data == NULL || fread(data, 1, size, f) != size) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(data);
        fclose(f);
        return -1;
    }
    fclose(f);
    if (getenv("EWTP_REPLAY_VERBOSE"))
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    ran++;
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, by_name);
    if (n < 0) {
        fprintf(stderr, "replay: cannot list %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char file[4096];
        if (names[i]->d_name[0] != '.' && rc == 0 &&
            (size_t)snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name) < sizeof(file) &&
            stat(file, &st) == 0 && S_ISREG(st.st_mode))
            rc = run_file(file);
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    size_t min = 1;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--min") == 0) {
        min = strtoul(argv[2], NULL, 10);
        first = 3;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: %s [--min N] FILE|DIR...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = first; i < argc; i++)
        if (run_path(argv[i]) != 0)
            return 1;
    printf("replay: %zu inputs\n", ran);
    if (ran < min) {
        fprintf(stderr, "replay: %zu inputs, fewer than the %zu expected\n", ran, min);
        return 1;
    }
    return 0;
}
