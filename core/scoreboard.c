/*
 * core/scoreboard.c - shared memory the master and all workers see: one
 * slot per worker process (state, counters, the request each app thread is
 * running), the cached readiness checks and plugin counters.  Each field
 * has a single writer (the worker for its slot, the checker process for
 * checks, the master for server counters), so nobody locks on the hot
 * path; readers tolerate a torn URI, which is only diagnostic.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SB_MAGIC 0x57534231u /* "WSB1" */

static size_t slot_size(unsigned threads)
{
    size_t s = sizeof(struct wharf_sb_worker) + (size_t)threads * sizeof(struct wharf_sb_thread);
    return (s + 63) & ~(size_t)63;
}

/* A check's writers' lock.  Writers are the checker and, during a reload,
 * the previous image's checker (it keeps results fresh until the new one
 * has finished a round) and the new master here.  A writer killed while
 * holding it (SIGKILL) leaves it set: after 200 ms it is taken anyway. */
static void check_lock(struct wharf_sb_check *c)
{
    struct timespec ts = { 0, 100000 };
    for (int i = 0; i < 2000 && atomic_exchange(&c->writing, true); i++)
        nanosleep(&ts, NULL);
}

static void check_unlock(struct wharf_sb_check *c)
{
    atomic_store(&c->writing, false);
}

void wharf_sb_check_store(struct wharf_server *s, size_t i, const struct wharf_check *result)
{
    struct wharf_sb_check *dst = &s->sb->checks[i];
    check_lock(dst);
    atomic_fetch_add_explicit(&dst->seq, 1, memory_order_acq_rel);
    memcpy(&dst->check, result, sizeof *result);
    atomic_fetch_add_explicit(&dst->seq, 1, memory_order_release);
    atomic_store(&dst->updated_ns, wharf_monotonic_ns());
    check_unlock(dst);
}

static void init_names(struct wharf_server *s, struct wharf_scoreboard *sb, bool adopted)
{
    s->checks_kept = adopted && sb->nchecks == s->nchecks;
    sb->nchecks = (unsigned)s->nchecks;
    for (size_t i = 0; i < WHARF_MAX_CHECKS; i++) {
        struct wharf_sb_check *c = &sb->checks[i];
        const char *name = i < s->nchecks ? s->plugins[s->check_plugins[i]].p->name : "";
        /* A reload keeps the last result of a check that is still there:
         * readiness must not flap to 503 (old and new workers share this
         * memory) while the new checker runs its first round.  The result
         * still goes stale after WHARF_CHECK_STALE_MS like any other. */
        check_lock(c);
        bool torn = atomic_load(&c->seq) & 1; /* a checker died mid-write */
        if (adopted && !torn && name[0] && strncmp(c->check.name, name, sizeof c->check.name) == 0 &&
            atomic_load(&c->updated_ns) != 0) {
            check_unlock(c);
            continue;
        }
        if (i < s->nchecks)
            s->checks_kept = false;
        if (torn)
            atomic_fetch_add(&c->seq, 1);
        memset(&c->check, 0, sizeof c->check);
        if (name[0]) {
            snprintf(c->check.name, sizeof c->check.name, "%s", name);
            snprintf(c->check.message, sizeof c->check.message, "not checked yet");
        }
        check_unlock(c);
    }
    for (size_t i = 0; i < WHARF_MAX_METRICS; i++) {
        const char *name = i < s->nmetrics ? s->metrics[i].name : "";
        if (adopted && strncmp(sb->metric_names[i], name, sizeof sb->metric_names[i] - 1) == 0)
            continue;
        /* a different counter now lives at this index: start it at 0 */
        snprintf(sb->metric_names[i], sizeof sb->metric_names[i], "%s", name);
        atomic_store(&sb->server_metrics[i], 0);
        for (unsigned k = 0; k < sb->slots; k++)
            atomic_store(&wharf_sb_slot(s, k)->metrics[i], 0);
    }
}

static int adopt(struct wharf_server *s, size_t want_size)
{
    const char *env = getenv("WHARF__SCOREBOARD");
    if (!env)
        return 0;
    int fd = -1;
    size_t size = 0;
    if (sscanf(env, "%d,%zu", &fd, &size) != 2 || fd < 3)
        fd = -1;
    unsetenv("WHARF__SCOREBOARD");
    if (fd < 0)
        return 0;
    wharf_set_cloexec(fd, true);
    void *p = size == want_size ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    struct wharf_scoreboard *sb = p;
    if (p == MAP_FAILED || sb->magic != SB_MAGIC || sb->slots != (unsigned)s->conf.processes * 2 ||
        sb->threads != (unsigned)s->conf.threads) {
        /* processes or threads changed: a new scoreboard, old workers are
         * drained by pid */
        if (p != MAP_FAILED)
            munmap(p, size);
        close(fd);
        return 0;
    }
    s->sb = sb;
    s->sb_size = size;
    s->sb_fd = fd;
    atomic_store(&sb->stopping, false);
    init_names(s, sb, true);
    return 1;
}

void wharf_scoreboard_export(struct wharf_server *s)
{
    if (!s->sb || s->sb_fd < 0)
        return;
    wharf_set_cloexec(s->sb_fd, false);
    char v[64];
    snprintf(v, sizeof v, "%d,%zu", s->sb_fd, s->sb_size);
    setenv("WHARF__SCOREBOARD", v, 1);
}

int wharf_scoreboard_create(struct wharf_server *s)
{
    unsigned slots = (unsigned)s->conf.processes * 2;
    unsigned threads = (unsigned)s->conf.threads;
    size_t hdr = (sizeof(struct wharf_scoreboard) + 63) & ~(size_t)63;
    size_t size = hdr + (size_t)slots * slot_size(threads);
    int adopted = adopt(s, size);
    if (adopted)
        return 1;
    /* a memfd rather than anonymous memory: it can be handed to a new
     * master image by file descriptor */
    int fd = memfd_create("wharf-scoreboard", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
        wharf_log(WHARF_LOG_ERROR, "scoreboard: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        wharf_log(WHARF_LOG_ERROR, "scoreboard: mmap: %s", strerror(errno));
        close(fd);
        return -1;
    }
    struct wharf_scoreboard *sb = p;
    sb->magic = SB_MAGIC;
    sb->slots = slots;
    sb->threads = threads;
    sb->slot_size = slot_size(threads);
    s->sb = sb;
    s->sb_size = size;
    s->sb_fd = fd;
    init_names(s, sb, false);
    return 0;
}

struct wharf_sb_worker *wharf_sb_slot(struct wharf_server *s, unsigned slot)
{
    size_t hdr = (sizeof(struct wharf_scoreboard) + 63) & ~(size_t)63;
    return (struct wharf_sb_worker *)((char *)s->sb + hdr + (size_t)slot * s->sb->slot_size);
}

struct wharf_sb_thread *wharf_sb_thread_slot(struct wharf_sb_worker *w, unsigned thread)
{
    return (struct wharf_sb_thread *)(w + 1) + thread;
}

/* ------------------------------------------------------------ API */

WHARF_EXPORT bool wharf_worker_info(struct wharf_server *s, unsigned index,
                                    struct wharf_worker_info *out)
{
    if (!s->sb || index >= s->sb->slots)
        return false;
    struct wharf_sb_worker *w = wharf_sb_slot(s, index);
    memset(out, 0, sizeof *out);
    out->pid = atomic_load(&w->pid);
    out->state = (enum wharf_worker_state)atomic_load(&w->state);
    out->generation = w->generation;
    out->started_ns = w->started_ns;
    out->requests = atomic_load(&w->requests);
    out->rss_bytes = atomic_load(&w->rss_bytes);
    out->in_flight = atomic_load(&w->in_flight);
    out->connections = atomic_load(&w->connections);
    out->total_requests = atomic_load(&w->total_requests);
    for (int i = 0; i < 6; i++)
        out->status_class[i] = atomic_load(&w->status_class[i]);
    for (int i = 0; i < WHARF_LATENCY_BUCKETS; i++)
        out->latency_bucket[i] = atomic_load(&w->latency_bucket[i]);
    out->latency_sum_us = atomic_load(&w->latency_sum_us);
    out->bytes_sent = atomic_load(&w->bytes_sent);
    out->respawns = atomic_load(&w->respawns);
    return true;
}

WHARF_EXPORT bool wharf_worker_request(struct wharf_server *s, unsigned index, unsigned thread,
                                       struct wharf_slot_request *out)
{
    if (!s->sb || index >= s->sb->slots || thread >= s->sb->threads)
        return false;
    struct wharf_sb_thread *t = wharf_sb_thread_slot(wharf_sb_slot(s, index), thread);
    /* retry once if the request changed while we copied it */
    for (int attempt = 0; attempt < 2; attempt++) {
        int64_t a = atomic_load_explicit(&t->start_ns, memory_order_acquire);
        memcpy(out->method, t->method, sizeof out->method);
        memcpy(out->uri, t->uri, sizeof out->uri);
        int64_t b = atomic_load_explicit(&t->start_ns, memory_order_acquire);
        out->method[sizeof out->method - 1] = '\0';
        out->uri[sizeof out->uri - 1] = '\0';
        out->start_ns = b;
        if (a == b)
            break;
    }
    return true;
}

WHARF_EXPORT size_t wharf_checks(struct wharf_server *s, struct wharf_check *out, size_t max)
{
    if (!s->sb)
        return 0;
    size_t n = s->sb->nchecks;
    for (size_t i = 0; i < n && i < max; i++) {
        struct wharf_sb_check *c = &s->sb->checks[i];
        for (int attempt = 0; attempt < 100; attempt++) {
            uint32_t a = atomic_load_explicit(&c->seq, memory_order_acquire);
            if (a & 1)
                continue;
            memcpy(&out[i], &c->check, sizeof out[i]);
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&c->seq, memory_order_relaxed) == a)
                break;
        }
        out[i].name[sizeof out[i].name - 1] = '\0';
        out[i].message[sizeof out[i].message - 1] = '\0';
        /* a result the checker has not refreshed for a while says nothing
         * about now: report it failed rather than trust it */
        int64_t updated = atomic_load(&c->updated_ns);
        int64_t age_ms = updated ? (wharf_monotonic_ns() - updated) / 1000000 : 0;
        if (age_ms > WHARF_CHECK_STALE_MS) {
            out[i].ok = false;
            snprintf(out[i].message, sizeof out[i].message,
                     "stale: no result for %lld s (checker stuck?)", (long long)(age_ms / 1000));
        }
    }
    return n;
}

WHARF_EXPORT int wharf_metric_register(struct wharf_server *s, const char *name, const char *help)
{
    if (s->sb) {
        wharf_log(WHARF_LOG_ERROR, "metric '%s' registered after setup", name);
        return -1;
    }
    for (size_t i = 0; i < s->nmetrics; i++)
        if (strcmp(s->metrics[i].name, name) == 0)
            return (int)i;
    if (s->nmetrics == WHARF_MAX_METRICS)
        return -1;
    s->metrics[s->nmetrics].name = wharf_xstrdup(name);
    s->metrics[s->nmetrics].help = wharf_xstrdup(help ? help : name);
    return (int)s->nmetrics++;
}

WHARF_EXPORT void wharf_metric_add(struct wharf_worker *w, int id, uint64_t delta)
{
    if (w && id >= 0 && id < WHARF_MAX_METRICS)
        atomic_fetch_add_explicit(&w->sb->metrics[id], delta, memory_order_relaxed);
}

WHARF_EXPORT void wharf_metric_add_server(struct wharf_server *s, int id, uint64_t delta)
{
    if (s->sb && id >= 0 && id < WHARF_MAX_METRICS)
        atomic_fetch_add_explicit(&s->sb->server_metrics[id], delta, memory_order_relaxed);
}

WHARF_EXPORT bool wharf_metric_at(struct wharf_server *s, size_t index, const char **name,
                                  const char **help, uint64_t *value)
{
    if (index >= s->nmetrics || !s->sb)
        return false;
    uint64_t v = atomic_load(&s->sb->server_metrics[index]);
    for (unsigned i = 0; i < s->sb->slots; i++)
        v += atomic_load(&wharf_sb_slot(s, i)->metrics[index]);
    *name = s->metrics[index].name;
    *help = s->metrics[index].help;
    *value = v;
    return true;
}

WHARF_EXPORT void wharf_worker_set_app_ready(struct wharf_worker *w, bool ready)
{
    atomic_store(&w->sb->app_ready, ready);
}

WHARF_EXPORT bool wharf_worker_app_ready(struct wharf_worker *w)
{
    return atomic_load(&w->sb->app_ready);
}
