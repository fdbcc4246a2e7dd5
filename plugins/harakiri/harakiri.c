/*
 * plugins/harakiri/harakiri.c - kill and replace a worker stuck on one
 * request (uWSGI's harakiri).  The master's tick reads each app thread's
 * request start time from the scoreboard; past the limit it logs the
 * request, asks the worker for its application stack (the python plugin
 * answers SIGURG with a faulthandler dump of every thread) and kills it
 * after a short grace.  The master then starts a new worker.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wharf.h"

struct harakiri_conf {
    int64_t limit_ms;          /* harakiri */
    bool verbose;              /* harakiri-verbose */
    int64_t graceful_ms;       /* harakiri-graceful-timeout */

    int metric;
    /* per scoreboard slot: the request being killed and when to SIGKILL */
    struct victim {
        pid_t pid;
        int64_t request_start;
        int64_t kill_at;
    } *victims;
    unsigned nvictims;
};

#define OPT(f) offsetof(struct harakiri_conf, f)

static const struct wharf_option harakiri_options[] = {
    { "harakiri", WHARF_OPT_DURATION, OPT(limit_ms), "0",
      "kill a worker whose request runs longer than this (0 = never)", 0, 86400000 },
    { "harakiri-verbose", WHARF_OPT_BOOL, OPT(verbose), "false",
      "also log the worker's connections and request counts on harakiri", 0, 0 },
    { "harakiri-graceful-timeout", WHARF_OPT_DURATION, OPT(graceful_ms), "0",
      "after the stack dump, let the worker's other requests finish this long before SIGKILL", 0,
      3600000 },
    { "harakiri-no-arh", WHARF_OPT_COMPAT, 0, NULL, "not needed: only the app's time counts", 0, 0 },
    WHARF_OPTIONS_END
};

/* Time for faulthandler to print the stack before the process goes. */
#define DUMP_GRACE_MS 300

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int harakiri_setup(struct wharf_server *s, void *confp)
{
    struct harakiri_conf *c = confp;
    c->metric = wharf_metric_register(s, "harakiri", "workers killed by harakiri");
    c->nvictims = wharf_server_processes(s) * 2;
    c->victims = calloc(c->nvictims, sizeof *c->victims);
    return c->victims ? WHARF_OK : WHARF_ERROR;
}

static void harakiri_tick(struct wharf_server *s, void *confp)
{
    struct harakiri_conf *c = confp;
    if (c->limit_ms <= 0)
        return;
    int64_t t = now_ns();
    unsigned threads = wharf_server_threads(s);
    for (unsigned i = 0; i < c->nvictims; i++) {
        struct wharf_worker_info wi;
        if (!wharf_worker_info(s, i, &wi) || wi.pid <= 0) {
            c->victims[i].pid = 0;
            continue;
        }
        struct victim *v = &c->victims[i];
        if (v->pid == wi.pid && v->kill_at) {
            if (t >= v->kill_at) {
                v->kill_at = 0;
                wharf_worker_stop(s, i, false, "harakiri");
            }
            continue;
        }
        for (unsigned th = 0; th < threads; th++) {
            struct wharf_slot_request rq;
            if (!wharf_worker_request(s, i, th, &rq) || rq.start_ns == 0)
                continue;
            int64_t elapsed_ms = (t - rq.start_ns) / 1000000;
            if (elapsed_ms < c->limit_ms)
                continue;
            if (v->pid == wi.pid && v->request_start == rq.start_ns)
                break; /* already handled */
            wharf_log(WHARF_LOG_ERROR,
                      "HARAKIRI: worker pid %d thread %u: %s %s running for %" PRId64
                      " ms (harakiri = %" PRId64 " ms); dumping its stack and killing it",
                      (int)wi.pid, th, rq.method, rq.uri, elapsed_ms, c->limit_ms);
            if (c->verbose)
                wharf_log(WHARF_LOG_ERROR,
                          "HARAKIRI: worker pid %d had served %" PRIu64 " requests, %u in flight, %u connections",
                          (int)wi.pid, wi.requests, wi.in_flight, wi.connections);
            wharf_worker_dump_stack(s, i);
            wharf_metric_add_server(s, c->metric, 1);
            v->pid = wi.pid;
            v->request_start = rq.start_ns;
            if (c->graceful_ms > 0) {
                /* a replacement starts now; the stuck worker drains what it
                 * can until the deadline */
                wharf_worker_stop(s, i, true, "harakiri");
                v->kill_at = t + c->graceful_ms * 1000000;
            } else {
                v->kill_at = t + (int64_t)DUMP_GRACE_MS * 1000000;
            }
            break;
        }
    }
}

WHARF_EXPORT const struct wharf_plugin wharf_plugin = {
    WHARF_PLUGIN_HEADER_INIT,
    .name = "harakiri",
    .version = "1.0",
    .options = harakiri_options,
    .config_size = sizeof(struct harakiri_conf),
    .setup = harakiri_setup,
    .tick = harakiri_tick,
};
