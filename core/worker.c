/*
 * core/worker.c - a worker process: signals through a signalfd in its
 * event loop, plugin worker_start/worker_stop, the app thread pool, and
 * the graceful drain (stop accepting, let in-flight requests finish, let
 * keep-alive connections close, exit 0).
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

struct wharf_worker *wharf_current_worker;
__thread unsigned wharf_thread_slot;

void wharf_worker_tell_master(struct wharf_worker *w, enum wharf_master_msg_type type)
{
    struct wharf_master_msg m = { (uint32_t)type, w->slot, getpid() };
    /* one small write to a pipe is atomic: messages from different
     * workers never mix */
    while (write(w->server->master_pipe[1], &m, sizeof m) < 0 && errno == EINTR)
        ;
}

void wharf_worker_begin_drain(struct wharf_worker *w, const char *why)
{
    if (w->draining)
        return;
    w->draining = true;
    atomic_store(&w->sb->state, WHARF_WORKER_DRAINING);
    wharf_log(WHARF_LOG_INFO, "worker %u draining (%s): %u connection(s) open", w->id, why, w->nconns);
    wharf_loop_close_listeners(w);
    /* let plugins close idle keep-alive connections right away */
    wharf_loop_fire_timers_now(w);
}

static void on_signal(struct wharf_worker *w, int fd, unsigned events, void *arg)
{
    (void)events;
    (void)arg;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGHUP:
            wharf_worker_begin_drain(w, si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGHUP");
            break;
        case SIGINT:
        case SIGQUIT:
            w->stop_now = true;
            break;
        case WHARF_ACCEPT_NUDGE_SIGNAL:
            wharf_loop_accept_now(w);
            break;
        default:
            break;
        }
    }
}

/* The signals the loop reads from its signalfd.  Blocked in every thread
 * (app threads inherit the mask), so no handler ever runs in the middle of
 * app code.  SIGURG (stack dump) is deliberately not here: the python
 * plugin's faulthandler catches it with a real handler. */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGUSR2);
    sigaddset(set, SIGCHLD);
    sigprocmask(SIG_BLOCK, set, NULL);
}

static uint64_t recycle_threshold(struct wharf_server *s, unsigned id)
{
    if (s->conf.max_requests <= 0)
        return 0;
    uint64_t n = (uint64_t)s->conf.max_requests;
    n += (uint64_t)s->conf.max_requests_delta * id;
    if (s->conf.max_requests_jitter > 0) {
        uint32_t r;
        wharf_random_bytes(&r, sizeof r);
        n += r % ((uint64_t)s->conf.max_requests_jitter + 1);
    }
    return n;
}

void wharf_worker_main(struct wharf_server *s, unsigned slot, unsigned logical)
{
    static struct wharf_worker worker;
    struct wharf_worker *w = &worker;
    wharf_current_worker = w;
    w->server = s;
    w->slot = slot;
    w->id = logical;
    w->sb = wharf_sb_slot(s, slot);
    wharf_thread_slot = 0;

    char role[32];
    snprintf(role, sizeof role, "worker %u", logical);
    wharf_log_set_role(role);
    char comm[16];
    snprintf(comm, sizeof comm, "%s%u", s->conf.procname_prefix ? s->conf.procname_prefix : "wharf-worker-",
             logical);
    prctl(PR_SET_NAME, comm);
    /* if the master dies, drain and go rather than serve orphaned */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != s->master_pid)
        _exit(0);

    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    block_signals(&set);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);

    close(s->master_pipe[0]);
    if (s->nphase_handlers[WHARF_PHASE_APP] == 0)
        atomic_store(&w->sb->app_ready, true); /* nothing to load */
    w->recycle_after = recycle_threshold(s, logical);

    if (wharf_loop_init(w) < 0 || sfd < 0 ||
        wharf_loop_add(w, sfd, WHARF_EV_READ | WHARF_EV_NOT_CLIENT, on_signal, NULL) < 0)
        _exit(WHARF_WORKER_EXIT_FAILED);
    for (size_t i = 0; i < s->nlisteners; i++)
        if (s->listeners[i].fd >= 0 && s->listeners[i].on_accept &&
            wharf_loop_add_listener(w, (int)i) < 0)
            _exit(WHARF_WORKER_EXIT_FAILED);

    for (size_t i = 0; i < s->nplugins; i++) {
        struct wharf_loaded_plugin *lp = &s->plugins[i];
        if (lp->p->worker_start && lp->p->worker_start(w, lp->conf) != WHARF_OK) {
            wharf_log(WHARF_LOG_ERROR, "worker %u: plugin %s failed to start", logical, lp->p->name);
            _exit(WHARF_WORKER_EXIT_FAILED);
        }
    }
    if (s->conf.threads > 1 && s->nphase_handlers[WHARF_PHASE_APP] > 0) {
        w->pool = wharf_threadpool_start(w, (unsigned)s->conf.threads);
        if (!w->pool)
            _exit(WHARF_WORKER_EXIT_FAILED);
    }

    atomic_store(&w->sb->state, WHARF_WORKER_READY);
    wharf_worker_tell_master(w, WHARF_MSG_READY);
    wharf_loop_run(w);

    wharf_accesslog_flush();
    if (w->stop_now)
        _exit(0); /* fast stop: no goodbyes */
    atomic_store(&w->sb->state, WHARF_WORKER_STOPPED);
    wharf_threadpool_stop(w->pool);
    for (size_t i = s->nplugins; i-- > 0;) {
        struct wharf_loaded_plugin *lp = &s->plugins[i];
        if (lp->p->worker_stop)
            lp->p->worker_stop(w, lp->conf);
    }
    wharf_log(WHARF_LOG_INFO, "worker %u exiting after %lu request(s)", logical,
              (unsigned long)atomic_load(&w->sb->requests));
    exit(0);
}
