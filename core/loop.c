/*
 * core/loop.c - the worker's event loop: epoll (level-triggered), periodic
 * timers, a cross-thread post queue (eventfd), accepting on the shared
 * listening sockets, and the cached clock and HTTP date.
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256
/* Connections accepted per wake-up: enough to empty a burst, few enough
 * that one worker does not take everything while the others idle. */
#define ACCEPT_BATCH 16

static uint64_t pack(int fd, uint32_t gen)
{
    return (uint64_t)(uint32_t)fd | ((uint64_t)gen << 32);
}

static struct wharf_fd_entry *entry(struct wharf_worker *w, int fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= w->nfds_cap) {
        size_t cap = w->nfds_cap ? w->nfds_cap : 256;
        while (cap <= (size_t)fd)
            cap *= 2;
        w->fds = wharf_xrealloc(w->fds, cap * sizeof *w->fds);
        memset(w->fds + w->nfds_cap, 0, (cap - w->nfds_cap) * sizeof *w->fds);
        w->nfds_cap = cap;
    }
    return &w->fds[fd];
}

static uint32_t to_epoll(unsigned ev)
{
    uint32_t e = 0;
    if (ev & WHARF_EV_READ)
        e |= EPOLLIN | EPOLLRDHUP;
    if (ev & WHARF_EV_WRITE)
        e |= EPOLLOUT;
    /* A muted fd (events 0) still reports errors and hang-ups, which
     * epoll cannot mask; level-triggered, a client that resets while an
     * app thread owns its connection would wake the loop without end.
     * Edge-triggered, the loop hears it once. */
    if (e == 0)
        e = EPOLLET;
    return e;
}

void wharf_loop_update_clock(struct wharf_worker *w)
{
    w->now_ms = wharf_monotonic_ns() / 1000000;
    time_t now = time(NULL);
    if (now != w->date_sec) {
        w->date_sec = now;
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(w->date, sizeof w->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    }
}

static void run_posts(struct wharf_worker *w, int fd, unsigned events, void *arg)
{
    (void)events;
    (void)arg;
    uint64_t v;
    if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
        wharf_log(WHARF_LOG_WARN, "post queue: %s", strerror(errno));
    for (;;) {
        pthread_mutex_lock(&w->post_lock);
        size_t n = w->nposts;
        if (n == 0) {
            pthread_mutex_unlock(&w->post_lock);
            return;
        }
        struct wharf_post batch[64];
        if (n > 64)
            n = 64;
        memcpy(batch, w->posts, n * sizeof *batch);
        memmove(w->posts, w->posts + n, (w->nposts - n) * sizeof *batch);
        w->nposts -= n;
        pthread_mutex_unlock(&w->post_lock);
        for (size_t i = 0; i < n; i++)
            batch[i].fn(w, batch[i].arg);
    }
}

int wharf_loop_init(struct wharf_worker *w)
{
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        wharf_log(WHARF_LOG_ERROR, "epoll_create1: %s", strerror(errno));
        return -1;
    }
    pthread_mutex_init(&w->post_lock, NULL);
    w->post_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->post_fd < 0) {
        wharf_log(WHARF_LOG_ERROR, "eventfd: %s", strerror(errno));
        return -1;
    }
    w->loop_thread = pthread_self();
    wharf_loop_update_clock(w);
    return wharf_loop_add(w, w->post_fd, WHARF_EV_READ | WHARF_EV_NOT_CLIENT, run_posts, NULL);
}

WHARF_EXPORT int wharf_loop_add(struct wharf_worker *w, int fd, unsigned events,
                                wharf_event_fn cb, void *arg)
{
    struct wharf_fd_entry *e = entry(w, fd);
    if (!e || e->used) {
        wharf_log(WHARF_LOG_ERROR, "wharf_loop_add: fd %d is %s", fd, e ? "already registered" : "invalid");
        return -1;
    }
    uint32_t gen = ++w->next_gen;
    struct epoll_event ev = { .events = to_epoll(events), .data.u64 = pack(fd, gen) };
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        wharf_log(WHARF_LOG_ERROR, "epoll_ctl add fd %d: %s", fd, strerror(errno));
        return -1;
    }
    e->cb = cb;
    e->arg = arg;
    e->events = events & (WHARF_EV_READ | WHARF_EV_WRITE);
    e->gen = gen;
    e->used = true;
    e->listener = -1;
    e->is_client = !(events & WHARF_EV_NOT_CLIENT);
    if (e->is_client) {
        w->nconns++;
        atomic_store_explicit(&w->sb->connections, w->nconns, memory_order_relaxed);
    }
    return 0;
}

WHARF_EXPORT int wharf_loop_mod(struct wharf_worker *w, int fd, unsigned events)
{
    struct wharf_fd_entry *e = entry(w, fd);
    if (!e || !e->used)
        return -1;
    events &= WHARF_EV_READ | WHARF_EV_WRITE;
    if (e->events == events)
        return 0;
    struct epoll_event ev = { .events = to_epoll(events), .data.u64 = pack(fd, e->gen) };
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
        wharf_log(WHARF_LOG_ERROR, "epoll_ctl mod fd %d: %s", fd, strerror(errno));
        return -1;
    }
    e->events = events;
    return 0;
}

WHARF_EXPORT void wharf_loop_del(struct wharf_worker *w, int fd)
{
    struct wharf_fd_entry *e = entry(w, fd);
    if (!e || !e->used)
        return;
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
    if (e->is_client && w->nconns > 0) {
        w->nconns--;
        atomic_store_explicit(&w->sb->connections, w->nconns, memory_order_relaxed);
    }
    e->used = false;
    e->cb = NULL;
}

WHARF_EXPORT int wharf_loop_every(struct wharf_worker *w, unsigned interval_ms, wharf_timer_fn fn,
                                  void *arg)
{
    w->timers = wharf_xrealloc(w->timers, (w->ntimers + 1) * sizeof *w->timers);
    struct wharf_timer *t = &w->timers[w->ntimers++];
    t->interval_ms = interval_ms ? interval_ms : 1;
    t->next_ms = w->now_ms + t->interval_ms;
    t->fn = fn;
    t->arg = arg;
    return 0;
}

WHARF_EXPORT void wharf_loop_post(struct wharf_worker *w, wharf_timer_fn fn, void *arg)
{
    pthread_mutex_lock(&w->post_lock);
    if (w->nposts == w->capposts) {
        w->capposts = w->capposts ? w->capposts * 2 : 64;
        w->posts = wharf_xrealloc(w->posts, w->capposts * sizeof *w->posts);
    }
    w->posts[w->nposts].fn = fn;
    w->posts[w->nposts].arg = arg;
    w->nposts++;
    pthread_mutex_unlock(&w->post_lock);
    uint64_t one = 1;
    if (write(w->post_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        wharf_log(WHARF_LOG_ERROR, "post queue: %s", strerror(errno));
}

WHARF_EXPORT int64_t wharf_now_ms(struct wharf_worker *w)
{
    return w->now_ms;
}

WHARF_EXPORT const char *wharf_http_date(struct wharf_worker *w)
{
    return w->date;
}

WHARF_EXPORT struct wharf_server *wharf_worker_server(struct wharf_worker *w)
{
    return w->server;
}

WHARF_EXPORT unsigned wharf_worker_id(struct wharf_worker *w)
{
    return w->id;
}

WHARF_EXPORT bool wharf_worker_draining(struct wharf_worker *w)
{
    if (w->draining)
        return true;
    /* A drain asked for but not read yet: with threads = 1 the app runs
     * inline on the loop thread, which reads its signalfd only after the
     * request; the response being built must still say Connection: close.
     * The signals stay pending until the loop reads them. */
    sigset_t pending;
    return sigpending(&pending) == 0 &&
           (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGHUP) == 1);
}

void wharf_loop_fire_timers_now(struct wharf_worker *w)
{
    for (size_t i = 0; i < w->ntimers; i++) {
        w->timers[i].next_ms = w->now_ms + w->timers[i].interval_ms;
        w->timers[i].fn(w, w->timers[i].arg);
    }
}

/* ------------------------------------------------------------ accept */

/*
 * Out of file descriptors (EMFILE/ENFILE) or kernel memory: the connection
 * stays in the backlog, so the level-triggered listener would wake the loop
 * again at once -- a busy loop writing one warning per turn (hundreds of
 * thousands of log lines a second under a connection flood).  Instead the
 * listeners are taken out of epoll for ACCEPT_PAUSE_MS (nginx does the
 * same), and the warning is written at most once a second with the number
 * of failures it stands for.  Connections already open are served
 * meanwhile; once some close, accepting works again.
 */
#define ACCEPT_PAUSE_MS 100

static void on_listener(struct wharf_worker *w, int fd, unsigned events, void *arg);

/* Take the listeners out of epoll for `ms`; the other workers, waiting in
 * epoll on the same sockets, are woken instead. */
static void stop_accepting_for(struct wharf_worker *w, int ms)
{
    if (w->accept_resume_ms)
        return;
    for (size_t i = 0; i < w->server->nlisteners; i++) {
        int fd = w->server->listeners[i].fd;
        struct wharf_fd_entry *e = fd >= 0 ? entry(w, fd) : NULL;
        if (e && e->used && !e->is_client && e->cb == on_listener) {
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
            e->used = false;
        }
    }
    w->accept_resume_ms = w->now_ms + ms;
}

static void pause_accepting(struct wharf_worker *w, const struct wharf_listener *l, int err)
{
    w->accept_failures++;
    if (!w->accept_warned_ms || w->now_ms - w->accept_warned_ms >= 1000) {
        wharf_log(WHARF_LOG_WARN, "accept on %s: %s: not accepting for %d ms (%lu failure(s) since the last warning)",
                  l->address, strerror(err), ACCEPT_PAUSE_MS, w->accept_failures);
        w->accept_warned_ms = w->now_ms;
        w->accept_failures = 0;
    }
    stop_accepting_for(w, ACCEPT_PAUSE_MS);
}

/* EPOLLEXCLUSIVE wakes one waiting worker per connection, but in a burst
 * it is often the same one (it is back in epoll_wait first), so one worker
 * can end up holding every keep-alive connection while the others idle.
 * A worker holding clearly more than its share of the server's open
 * connections steps back from accepting for a moment and nudges the idle
 * peer (WHARF_ACCEPT_NUDGE_SIGNAL): EPOLLEXCLUSIVE wakes a waiter only when
 * a connection arrives, so without the nudge the connections already
 * queued would wait for this worker's pause to end. */
#define SHARE_PAUSE_MS 20
#define SHARE_SLACK 4

/* The pid of a peer that should take the next connections instead of us,
 * or 0. */
static pid_t underloaded_peer(struct wharf_worker *w)
{
    struct wharf_server *s = w->server;
    if (s->conf.processes < 2 || w->nconns <= SHARE_SLACK)
        return 0;
    /* step back only for a peer that will take the next connection at
     * once: ready, idle, and holding clearly fewer connections */
    for (unsigned i = 0; i < s->sb->slots; i++) {
        struct wharf_sb_worker *o = wharf_sb_slot(s, i);
        if (o == w->sb || atomic_load_explicit(&o->state, memory_order_relaxed) != WHARF_WORKER_READY ||
            atomic_load_explicit(&o->in_flight, memory_order_relaxed) != 0)
            continue;
        if (atomic_load_explicit(&o->connections, memory_order_relaxed) + SHARE_SLACK < w->nconns)
            return atomic_load_explicit(&o->pid, memory_order_relaxed);
    }
    return 0;
}

static void resume_accepting(struct wharf_worker *w)
{
    w->accept_resume_ms = 0;
    if (w->draining || w->listeners_closed)
        return;
    for (size_t i = 0; i < w->server->nlisteners; i++) {
        const struct wharf_listener *l = &w->server->listeners[i];
        if (l->fd >= 0 && l->on_accept && !entry(w, l->fd)->used)
            wharf_loop_add_listener(w, (int)i);
    }
}

static void on_listener(struct wharf_worker *w, int fd, unsigned events, void *arg)
{
    (void)events;
    struct wharf_listener *l = &w->server->listeners[(size_t)(intptr_t)arg];
    for (int i = 0; i < ACCEPT_BATCH && !w->draining; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int c = accept4(fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EINVAL) {
                /* the master shut the socket down (graceful stop; our
                 * SIGTERM is on its way): stop watching it */
                epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
                entry(w, fd)->used = false;
                return;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pause_accepting(w, l, errno);
            else if (errno != EAGAIN && errno != EWOULDBLOCK)
                wharf_log(WHARF_LOG_WARN, "accept on %s: %s", l->address, strerror(errno));
            return;
        }
        l->on_accept(w, c, (struct sockaddr *)&peer, plen, l->arg);
        pid_t peer_pid = underloaded_peer(w);
        if (peer_pid > 0) {
            stop_accepting_for(w, SHARE_PAUSE_MS);
            kill(peer_pid, WHARF_ACCEPT_NUDGE_SIGNAL);
            return;
        }
    }
}

void wharf_loop_accept_now(struct wharf_worker *w)
{
    for (size_t i = 0; i < w->server->nlisteners; i++) {
        int fd = w->server->listeners[i].fd;
        struct wharf_fd_entry *e = fd >= 0 ? entry(w, fd) : NULL;
        if (e && e->used && e->cb == on_listener) /* accepting, not paused */
            on_listener(w, fd, WHARF_EV_READ, e->arg);
    }
}

/* Draining: accept what already waits in the queue before closing our
 * copy.  With EPOLLEXCLUSIVE this worker may be the one the kernel woke for
 * it, and in a graceful stop nobody else may be left to accept it; closing
 * the last copy of a socket resets every connection still queued.  At most
 * a backlog's worth: during a reload the queue keeps filling, and the other
 * workers take the rest. */
static void accept_queued(struct wharf_worker *w, int index)
{
    struct wharf_listener *l = &w->server->listeners[index];
    long max = w->server->conf.listen_backlog + 1;
    for (long i = 0; i < max && l->fd >= 0; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int c = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        l->on_accept(w, c, (struct sockaddr *)&peer, plen, l->arg);
    }
}

int wharf_loop_add_listener(struct wharf_worker *w, int index)
{
    struct wharf_listener *l = &w->server->listeners[index];
    struct wharf_fd_entry *e = entry(w, l->fd);
    uint32_t gen = ++w->next_gen;
    /* EPOLLEXCLUSIVE: one idle worker is woken per connection, not all of
     * them (the thundering herd uWSGI needs thunder-lock for). */
    struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = pack(l->fd, gen) };
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0) {
        wharf_log(WHARF_LOG_ERROR, "epoll_ctl listener %s: %s", l->address, strerror(errno));
        return -1;
    }
    e->cb = on_listener;
    e->arg = (void *)(intptr_t)index;
    e->events = WHARF_EV_READ;
    e->gen = gen;
    e->used = true;
    e->is_client = false;
    e->listener = index;
    return 0;
}

/* Stop accepting: this worker's copies of the listening sockets go away
 * (the master and other workers keep theirs). */
void wharf_loop_close_listeners(struct wharf_worker *w)
{
    if (w->listeners_closed)
        return;
    w->listeners_closed = true;
    for (size_t i = 0; i < w->server->nlisteners; i++) {
        int fd = w->server->listeners[i].fd;
        if (fd < 0)
            continue;
        struct wharf_fd_entry *e = entry(w, fd);
        if (e->used) {
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
            e->used = false;
        }
        if (w->server->listeners[i].on_accept)
            accept_queued(w, (int)i);
        close(fd);
        w->server->listeners[i].fd = -1;
    }
}

/* ------------------------------------------------------------ run */

static int next_timeout(struct wharf_worker *w)
{
    int64_t best = w->now_ms + 1000;
    for (size_t i = 0; i < w->ntimers; i++)
        if (w->timers[i].next_ms < best)
            best = w->timers[i].next_ms;
    if (w->accept_resume_ms && w->accept_resume_ms < best)
        best = w->accept_resume_ms;
    int64_t d = best - w->now_ms;
    return d < 0 ? 0 : (int)d;
}

static void fire_due_timers(struct wharf_worker *w)
{
    for (size_t i = 0; i < w->ntimers; i++) {
        struct wharf_timer *t = &w->timers[i];
        if (t->next_ms <= w->now_ms) {
            t->next_ms = w->now_ms + t->interval_ms;
            t->fn(w, t->arg);
        }
    }
}

void wharf_loop_run(struct wharf_worker *w)
{
    struct epoll_event evs[MAX_EVENTS];
    while (!w->stop_now) {
        if (w->draining && w->nconns == 0)
            break;
        wharf_accesslog_flush(); /* this turn's access lines, in one write */
        int n = epoll_wait(w->epfd, evs, MAX_EVENTS, next_timeout(w));
        wharf_loop_update_clock(w);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            wharf_log(WHARF_LOG_ERROR, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            int fd = (int)(uint32_t)evs[i].data.u64;
            uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
            struct wharf_fd_entry *e = entry(w, fd);
            if (!e->used || e->gen != gen)
                continue; /* closed (and maybe reused) earlier in this batch */
            unsigned ev = 0;
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP))
                ev |= WHARF_EV_READ;
            if (evs[i].events & EPOLLOUT)
                ev |= WHARF_EV_WRITE;
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                ev |= WHARF_EV_ERROR | (e->events & (WHARF_EV_READ | WHARF_EV_WRITE));
            e->cb(w, fd, ev, e->arg);
        }
        fire_due_timers(w);
        if (w->accept_resume_ms && w->now_ms >= w->accept_resume_ms)
            resume_accepting(w);
    }
}
