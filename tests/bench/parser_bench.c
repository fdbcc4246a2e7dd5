/*
 * parser_bench - nanoseconds per request for wharf_http_parse_head() on a
 * typical ~400-byte browser request (not wired into make).
 *
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Iplugins/http \
 *       tests/bench/parser_bench.c plugins/http/http_parser.c -o /tmp/pb
 *   /tmp/pb [iterations]
 *
 * Each iteration copies the request into the read buffer (the parser
 * writes NULs in place, as it does on a live connection) and parses it.
 * The cost of the copy alone is measured and printed separately, and
 * subtracted; also printed: the same request fed in two reads (the head
 * split in the middle of a field line), and a 4-request pipelined batch.
 */
#include "http_parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char request[] =
    "GET /static/js/app.3f2a1c.js?v=20240101 HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "Connection: keep-alive\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
    "Accept: */*\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Fetch-Mode: no-cors\r\n"
    "Referer: https://www.example.com/\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Cookie: session=9f8e7d6c5b4a; theme=dark\r\n"
    "\r\n";

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile size_t sink;

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 5000000;
    size_t n = sizeof request - 1;
    static char buf[8192];
    struct wharf_http_header hdrs[64];
    static char scratch[8192];
    struct wharf_http_request req;
    struct wharf_http_limits lim;
    wharf_http_limits_default(&lim);

    /* sanity */
    memcpy(buf, request, n);
    wharf_http_request_init(&req, hdrs, 64, scratch, sizeof scratch);
    if (wharf_http_parse_head(&req, &lim, buf, n) != WHARF_HTTP_COMPLETE ||
        req.head_len != n) {
        fprintf(stderr, "request did not parse: %d %s\n", req.status,
                req.reason ? req.reason : "");
        return 1;
    }

    double best_parse = 1e30, best_copy = 1e30, best_split = 1e30,
           best_pipe = 1e30;
    for (int round = 0; round < 5; round++) {
        double t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            memcpy(buf, request, n);
            __asm__ volatile("" ::: "memory");
            sink += (size_t)buf[i & 63];
        }
        double copy = (now_ns() - t0) / (double)iters;

        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            memcpy(buf, request, n);
            wharf_http_request_init(&req, hdrs, 64, scratch, sizeof scratch);
            sink += (size_t)wharf_http_parse_head(&req, &lim, buf, n) + req.header_count;
        }
        double parse = (now_ns() - t0) / (double)iters;

        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            memcpy(buf, request, n);
            wharf_http_request_init(&req, hdrs, 64, scratch, sizeof scratch);
            sink += (size_t)wharf_http_parse_head(&req, &lim, buf, 200);
            sink += (size_t)wharf_http_parse_head(&req, &lim, buf, n);
        }
        double split = (now_ns() - t0) / (double)iters;

        long piters = iters / 4;
        t0 = now_ns();
        for (long i = 0; i < piters; i++) {
            for (int k = 0; k < 4; k++)
                memcpy(buf + (size_t)k * n, request, n);
            size_t off = 0;
            for (int k = 0; k < 4; k++) {
                wharf_http_request_init(&req, hdrs, 64, scratch, sizeof scratch);
                sink += (size_t)wharf_http_parse_head(&req, &lim, buf + off, 4 * n - off);
                off += req.head_len;
            }
        }
        double pipe = (now_ns() - t0) / (double)(piters * 4);

        if (copy < best_copy) best_copy = copy;
        if (parse < best_parse) best_parse = parse;
        if (split < best_split) best_split = split;
        if (pipe < best_pipe) best_pipe = pipe;
    }
    printf("request: %zu bytes, %zu fields, %ld iterations x 5 rounds (best)\n",
           n, req.header_count, iters);
    printf("memcpy of the request alone:      %6.1f ns\n", best_copy);
    printf("parse (incl. copy):               %6.1f ns/request\n", best_parse);
    printf("parse (copy subtracted):          %6.1f ns/request  (%.2f GB/s)\n",
           best_parse - best_copy, (double)n / (best_parse - best_copy));
    printf("parse in two reads (copy subtr.): %6.1f ns/request\n",
           best_split - best_copy);
    printf("4 pipelined requests (per req.):  %6.1f ns/request (incl. copy)\n",
           best_pipe);
    return 0;
}
