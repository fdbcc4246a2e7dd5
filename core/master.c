/*
 * core/master.c - the master process: startup (bind, drop privileges,
 * plugin setup, scoreboard, pidfile), then supervision: forks workers,
 * respawns them (backing off when they crash at start), replaces them one
 * by one (recycling, reload) so a new worker accepts before the old one
 * drains, runs plugin ticks at 1 Hz, and stops gracefully on SIGTERM or at
 * once on SIGINT/SIGQUIT.
 *
 * Each logical worker N owns two scoreboard slots (2N-2, 2N-1): the one
 * serving and, during a replacement, the one starting beside it.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct slot {
    pid_t pid;
    unsigned logical;
    int64_t spawned_ms;
    bool ready;
    bool draining;
    int64_t kill_at_ms;   /* graceful deadline while draining, 0 = none */
    int replaces;         /* slot this one replaces once ready, or -1 */
    bool replace_pending; /* asked to be replaced while its pair's other
                             slot was still taken: done once it is free */
};

enum mode { RUNNING, STOP_DELAY, STOPPING, FAST_STOP };

struct master {
    struct wharf_server *s;
    struct slot *slots;
    unsigned nslots;
    int sigfd;
    enum mode mode;
    int64_t stop_at_ms;
    int64_t fast_deadline_ms;
    bool ever_ready;
    bool notified_ready;
    unsigned *failures;        /* per logical worker: failed starts in a row */
    int64_t *respawn_at_ms;    /* per logical worker: pending respawn, 0 = none */
    pid_t checker;
    int64_t checker_respawn_ms;
    /* reload: the previous image's checker keeps the readiness results
     * fresh until ours has finished a round (an app import can take longer
     * than results stay valid) */
    pid_t old_checker;
    bool old_checker_told;
    /* rolling replacement of every worker (reload) */
    bool rolling;
    unsigned roll_next;        /* next logical worker to replace */
    int roll_waiting_slot;     /* replacement we wait for, -1 */
    int64_t *touch_mtime;      /* ns; 0 = missing */
    size_t ntouch;
    int64_t last_tick_ms;
    int64_t last_plugin_tick_ms;
    int exit_status;

    /* reload by re-exec: workers of the previous image, drained one by one
     * as new ones become ready */
    struct old_worker {
        pid_t pid;
        int64_t kill_at_ms;
    } *old;
    size_t nold, old_next;
    pid_t preflight;           /* `wharf --check-config` before a reload */
    /* binary upgrade (SIGUSR2) */
    pid_t upgrade;             /* the new master we started */
    int upgrade_fd;            /* it writes "READY" here */
    int notify_fd;             /* we are that new master: tell the old one */
    bool upgraded;             /* a new master took over our sockets */
    bool reloaded;             /* this image replaced a previous one */
    char exe[4096];            /* our binary's path, for exec */
};

static struct master *M;

static int64_t now_ms(void)
{
    return wharf_monotonic_ns() / 1000000;
}

static unsigned first_slot(unsigned logical)
{
    return (logical - 1) * 2;
}

static unsigned sibling(unsigned slot)
{
    return slot ^ 1u;
}

static unsigned alive_workers(struct master *m)
{
    unsigned n = 0;
    for (unsigned i = 0; i < m->nslots; i++)
        if (m->slots[i].pid > 0)
            n++;
    for (size_t i = 0; i < m->nold; i++)
        if (m->old[i].pid > 0)
            n++;
    return n;
}

/* Drain the next worker of the previous image (reload by re-exec). */
static void drain_one_old(struct master *m)
{
    while (m->old_next < m->nold) {
        struct old_worker *o = &m->old[m->old_next++];
        if (o->pid <= 0)
            continue;
        wharf_log(WHARF_LOG_INFO, "previous worker pid %d: graceful stop (replaced by the reload)", (int)o->pid);
        kill(o->pid, SIGTERM);
        o->kill_at_ms = now_ms() + m->s->conf.graceful_timeout;
        return;
    }
}

static void drain_all_old(struct master *m)
{
    while (m->old_next < m->nold)
        drain_one_old(m);
}

/* ------------------------------------------------------------ spawning */

static void init_sb_slot(struct master *m, unsigned slot, unsigned logical)
{
    struct wharf_sb_worker *w = wharf_sb_slot(m->s, slot);
    if (atomic_load(&w->started_ns) != 0)
        atomic_fetch_add(&w->respawns, 1);
    atomic_store(&w->pid, 0);
    atomic_store(&w->state, WHARF_WORKER_STARTING);
    w->logical = logical;
    w->generation = m->s->generation;
    w->started_ns = wharf_monotonic_ns();
    atomic_store(&w->app_ready, false);
    atomic_store(&w->requests, 0);
    atomic_store(&w->in_flight, 0);
    atomic_store(&w->connections, 0);
    atomic_store(&w->rss_bytes, 0);
    for (unsigned t = 0; t < m->s->sb->threads; t++)
        atomic_store(&wharf_sb_thread_slot(w, t)->start_ns, 0);
}

static int spawn(struct master *m, unsigned slot, unsigned logical, int replaces)
{
    init_sb_slot(m, slot, logical);
    pid_t pid = fork();
    if (pid < 0) {
        wharf_log(WHARF_LOG_ERROR, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        close(m->sigfd);
        wharf_worker_main(m->s, slot, logical);
    }
    struct slot *sl = &m->slots[slot];
    memset(sl, 0, sizeof *sl);
    sl->pid = pid;
    sl->logical = logical;
    sl->spawned_ms = now_ms();
    sl->replaces = replaces;
    atomic_store(&wharf_sb_slot(m->s, slot)->pid, pid);
    wharf_log(WHARF_LOG_INFO, "spawned worker %u (pid %d)%s", logical, (int)pid,
              replaces >= 0 ? " to replace the running one" : "");
    return 0;
}

static void spawn_checker(struct master *m)
{
    struct wharf_server *s = m->s;
    if (s->nchecks == 0)
        return;
    pid_t pid = fork();
    if (pid < 0) {
        wharf_log(WHARF_LOG_ERROR, "fork (checker): %s", strerror(errno));
        m->checker_respawn_ms = now_ms() + 1000;
        return;
    }
    if (pid > 0) {
        m->checker = pid;
        return;
    }
    /* The checker runs plugin readiness checks (database, Redis) once a
     * second, away from the master's supervision loop and from the
     * workers' request loops, and caches results in the scoreboard. */
    close(m->sigfd);
    wharf_log_set_role("checker");
    prctl(PR_SET_NAME, "wharf-checker");
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    for (;;) {
        for (size_t i = 0; i < s->nchecks; i++) {
            struct wharf_loaded_plugin *lp = &s->plugins[s->check_plugins[i]];
            struct wharf_check c;
            memset(&c, 0, sizeof c);
            snprintf(c.name, sizeof c.name, "%s", lp->p->name);
            int64_t t0 = wharf_monotonic_ns();
            if (lp->p->check(lp->conf, &c) != WHARF_OK) {
                c.ok = false;
                if (!c.message[0])
                    snprintf(c.message, sizeof c.message, "check failed");
            }
            if (!c.latency_ms)
                c.latency_ms = (uint32_t)((wharf_monotonic_ns() - t0) / 1000000);
            /* a SIGTERM (the next image's checker took over) waits until
             * the result is written whole */
            sigprocmask(SIG_BLOCK, &term, NULL);
            wharf_sb_check_store(s, i, &c);
            sigprocmask(SIG_UNBLOCK, &term, NULL);
        }
        atomic_store(&s->sb->checker_round_pid, (int32_t)getpid());
        struct timespec ts = { 1, 0 };
        nanosleep(&ts, NULL);
    }
}

/* ------------------------------------------------------------ control */

static void drain_slot(struct master *m, unsigned slot, const char *why)
{
    struct slot *sl = &m->slots[slot];
    if (sl->pid <= 0 || sl->draining)
        return;
    sl->draining = true;
    sl->kill_at_ms = now_ms() + m->s->conf.graceful_timeout;
    wharf_log(WHARF_LOG_INFO, "worker %u (pid %d): graceful stop (%s)", sl->logical, (int)sl->pid, why);
    kill(sl->pid, SIGTERM);
}

/* Start a new worker beside `slot`; the old one drains once the new one
 * accepts.  Nothing is dropped: both accept on the same sockets meanwhile. */
static int replace_slot(struct master *m, unsigned slot)
{
    struct slot *sl = &m->slots[slot];
    if (m->mode != RUNNING || sl->pid <= 0 || sl->draining)
        return -1;
    unsigned sib = sibling(slot);
    if (m->slots[sib].pid > 0)
        return -1; /* a replacement is already under way */
    return spawn(m, sib, sl->logical, (int)slot);
}

/* The serving slot of a logical worker (not a starting replacement). */
static int serving_slot(struct master *m, unsigned logical)
{
    unsigned a = first_slot(logical), b = a + 1;
    if (m->slots[a].pid > 0 && m->slots[a].replaces < 0 && !m->slots[a].draining)
        return (int)a;
    if (m->slots[b].pid > 0 && m->slots[b].replaces < 0 && !m->slots[b].draining)
        return (int)b;
    return -1;
}

static void roll_step(struct master *m)
{
    while (m->rolling && m->roll_waiting_slot < 0) {
        if (m->roll_next > (unsigned)m->s->conf.processes) {
            m->rolling = false;
            drain_all_old(m); /* fewer workers than before: the rest go */
            wharf_log(WHARF_LOG_INFO, "reload: all workers replaced");
            wharf_sd_notify("READY=1");
            return;
        }
        unsigned logical = m->roll_next++;
        int slot = serving_slot(m, logical);
        if (slot >= 0) {
            if (wharf_sb_slot(m->s, (unsigned)slot)->generation == m->s->generation)
                continue; /* started by this image: runs the new config already */
            if (replace_slot(m, (unsigned)slot) == 0) {
                m->roll_waiting_slot = (int)sibling((unsigned)slot);
            } else {
                /* the other slot of the pair is taken (a recycled worker
                 * still draining): wait for it, never skip this worker,
                 * which would keep running the old config; timers() and
                 * on_worker_exit() come back here */
                m->roll_next--;
                return;
            }
        } else if (m->slots[first_slot(logical)].pid <= 0 && m->slots[first_slot(logical) + 1].pid <= 0) {
            /* a new image after re-exec: nothing of ours serves yet; the
             * previous image's workers do until this one is ready */
            if (spawn(m, first_slot(logical), logical, -1) == 0)
                m->roll_waiting_slot = (int)first_slot(logical);
        }
    }
}

static void begin_drain_all(struct master *m)
{
    m->mode = STOPPING;
    m->rolling = false;
    /* before any worker closes its copy: from now on no new connection is
     * established, so none can be left in a queue nobody accepts from */
    if (!m->upgraded && m->upgrade <= 0)
        wharf_listeners_stop_new(m->s);
    for (unsigned i = 0; i < m->nslots; i++)
        drain_slot(m, i, "server stopping");
    drain_all_old(m);
    /* the workers accept what is queued and close their copies; ours
     * close once the queues are empty (timers()), see listen.c */
    if (m->upgraded || m->upgrade > 0)
        wharf_listeners_close_all(m->s); /* they live on in the new master */
    else
        wharf_listeners_close_drained(m->s, now_ms());
    if (m->checker > 0)
        kill(m->checker, SIGTERM);
    if (m->old_checker > 0)
        kill(m->old_checker, SIGTERM);
}

static void graceful_stop(struct master *m, const char *why)
{
    if (m->mode != RUNNING)
        return;
    wharf_log(WHARF_LOG_INFO, "%s: graceful stop (graceful-timeout %" PRId64 " ms)", why,
              m->s->conf.graceful_timeout);
    wharf_sd_notify("STOPPING=1");
    atomic_store(&m->s->sb->stopping, true);
    if (m->s->conf.shutdown_delay > 0) {
        /* keep serving while readiness fails, so load balancers move away
         * before the sockets close */
        m->mode = STOP_DELAY;
        m->stop_at_ms = now_ms() + m->s->conf.shutdown_delay;
        wharf_log(WHARF_LOG_INFO, "readiness now fails; closing sockets in %" PRId64 " ms (shutdown-delay)",
                  m->s->conf.shutdown_delay);
        return;
    }
    begin_drain_all(m);
}

static void fast_stop(struct master *m, const char *why)
{
    if (m->mode == FAST_STOP)
        return;
    wharf_log(WHARF_LOG_INFO, "%s: fast stop", why);
    wharf_sd_notify("STOPPING=1");
    m->mode = FAST_STOP;
    m->fast_deadline_ms = now_ms() + 3000;
    atomic_store(&m->s->sb->stopping, true);
    for (unsigned i = 0; i < m->nslots; i++)
        if (m->slots[i].pid > 0)
            kill(m->slots[i].pid, SIGINT);
    for (size_t i = 0; i < m->nold; i++)
        if (m->old[i].pid > 0)
            kill(m->old[i].pid, SIGINT);
    if (m->checker > 0)
        kill(m->checker, SIGKILL);
    if (m->old_checker > 0)
        kill(m->old_checker, SIGKILL);
}

/* ------------------------------------------------------------ events */

static void on_worker_ready(struct master *m, unsigned slot, pid_t pid)
{
    if (slot >= m->nslots || m->slots[slot].pid != pid)
        return;
    struct slot *sl = &m->slots[slot];
    sl->ready = true;
    m->failures[sl->logical - 1] = 0;
    if (sl->replaces >= 0) {
        unsigned old = (unsigned)sl->replaces;
        sl->replaces = -1;
        if (m->slots[old].pid > 0 && m->slots[old].logical == sl->logical)
            drain_slot(m, old, "replaced by a new worker");
    }
    if ((int)slot == m->roll_waiting_slot) {
        m->roll_waiting_slot = -1;
        drain_one_old(m);
        roll_step(m);
    }
    if (!m->notified_ready) {
        unsigned ready = 0;
        for (unsigned i = 0; i < m->nslots; i++)
            ready += m->slots[i].pid > 0 && m->slots[i].ready;
        if (ready >= (unsigned)m->s->conf.processes) {
            m->notified_ready = true;
            m->ever_ready = true;
            wharf_log(WHARF_LOG_INFO, "ready: %u worker(s) accepting", ready);
            wharf_sd_notify("READY=1");
            if (m->notify_fd >= 0) {
                /* binary upgrade: the old master may go now */
                ssize_t w = write(m->notify_fd, "READY\n", 6);
                (void)w;
                close(m->notify_fd);
                m->notify_fd = -1;
            }
        }
    }
}

static void read_worker_messages(struct master *m)
{
    struct wharf_master_msg msg;
    while (read(m->s->master_pipe[0], &msg, sizeof msg) == (ssize_t)sizeof msg) {
        if (msg.type == WHARF_MSG_READY)
            on_worker_ready(m, msg.slot, msg.pid);
        else if (msg.type == WHARF_MSG_RECYCLE && msg.slot < m->nslots &&
                 m->slots[msg.slot].pid == msg.pid && replace_slot(m, msg.slot) < 0)
            /* the worker it replaced may still be draining in the other
             * slot of the pair; the worker asks only once */
            m->slots[msg.slot].replace_pending = true;
    }
}

static void describe_exit(int status, char *buf, size_t n)
{
    if (WIFEXITED(status))
        snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, n, "status %#x", status);
}

static void on_worker_exit(struct master *m, unsigned slot, int status)
{
    struct slot sl = m->slots[slot];
    char how[96];
    describe_exit(status, how, sizeof how);
    m->slots[slot].pid = 0;
    m->slots[slot].ready = false;
    m->slots[slot].draining = false;
    atomic_store(&wharf_sb_slot(m->s, slot)->state, WHARF_WORKER_EMPTY);
    atomic_store(&wharf_sb_slot(m->s, slot)->pid, 0);
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (sl.draining && clean)
        wharf_log(WHARF_LOG_INFO, "worker %u (pid %d) finished draining", sl.logical, (int)sl.pid);
    else if (m->mode == RUNNING)
        wharf_log(WHARF_LOG_WARN, "worker %u (pid %d) died: %s", sl.logical, (int)sl.pid, how);
    else
        wharf_log(WHARF_LOG_INFO, "worker %u (pid %d) stopped: %s", sl.logical, (int)sl.pid, how);
    if (m->mode != RUNNING)
        return;
    if ((int)slot == m->roll_waiting_slot)
        m->roll_waiting_slot = -1;

    unsigned li = sl.logical - 1;
    bool failed_start = !sl.ready;
    if (failed_start) {
        if (!m->ever_ready && !m->reloaded && WIFEXITED(status) &&
            WEXITSTATUS(status) == WHARF_WORKER_EXIT_FAILED) {
            /* need-app: a server that cannot start its app must say so
             * and stop, not loop forever */
            wharf_log(WHARF_LOG_ERROR, "worker %u could not start (see the error above); stopping", sl.logical);
            m->exit_status = 1;
            fast_stop(m, "startup failed");
            return;
        }
        m->failures[li]++;
    }
    /* Is a worker of this logical id still there (the replacement, or the
     * one being replaced)?  Then it carries on; else start a new one. */
    unsigned sib = sibling(slot);
    if (m->slots[sib].pid > 0 && !m->slots[sib].draining) {
        if (m->rolling)
            roll_step(m);
        return;
    }
    if (m->failures[li] > 0) {
        int64_t delay = 100LL << (m->failures[li] > 7 ? 7 : m->failures[li] - 1);
        if (delay > 10000)
            delay = 10000;
        wharf_log(WHARF_LOG_WARN, "worker %u failed %u time(s) in a row; next start in %" PRId64 " ms",
                  sl.logical, m->failures[li], delay);
        m->respawn_at_ms[li] = now_ms() + delay;
    } else {
        spawn(m, first_slot(sl.logical) + (slot & 1u), sl.logical, -1);
    }
    if (m->rolling)
        roll_step(m);
}

/* ------------------------------------------------------------ reload, upgrade */

/* The environment of a new master image: our listening sockets by fd. */
static void export_sockets(struct master *m)
{
    char *fds = wharf_listeners_export(m->s);
    setenv("WHARF__FDS", fds, 1);
    free(fds);
}

static void unexport_sockets(struct master *m)
{
    unsetenv("WHARF__FDS");
    unsetenv("WHARF__OLD_WORKERS");
    for (size_t i = 0; i < m->s->nlisteners; i++)
        if (m->s->listeners[i].fd >= 0)
            wharf_set_cloexec(m->s->listeners[i].fd, true);
}

/* SIGHUP, second half: the new config passed `--check-config`; become a
 * new image of ourselves (same pid, so containers and systemd see nothing)
 * that re-reads the config, re-imports the app and replaces our workers
 * one by one.  They are handed over by pid and keep serving meanwhile. */
static void reexec(struct master *m)
{
    struct wharf_server *s = m->s;
    wharf_log(WHARF_LOG_INFO, "reload: starting a new image of %s", m->exe);
    wharf_sd_notify("RELOADING=1");
    /* the checker lives on (the new image stops it once its own checker
     * has results); one left by the reload before is stopped now */
    if (m->old_checker > 0) {
        kill(m->old_checker, SIGKILL);
        waitpid(m->old_checker, NULL, 0);
        m->old_checker = 0;
    }
    if (m->checker > 0) {
        char checker[16];
        snprintf(checker, sizeof checker, "%d", (int)m->checker);
        setenv("WHARF__OLD_CHECKER", checker, 1);
    }
    size_t cap = 32;
    for (unsigned i = 0; i < m->nslots; i++)
        cap += 12;
    cap += m->nold * 12;
    /* A replacement still starting (recycling) would look like a second
     * serving worker to the new image, which would keep both; stop it now
     * and hand it over as draining: the one it replaces keeps serving until
     * the new image replaces it. */
    for (unsigned i = 0; i < m->nslots; i++) {
        struct slot *sl = &m->slots[i];
        if (sl->pid > 0 && !sl->draining && sl->replaces >= 0) {
            wharf_log(WHARF_LOG_INFO, "worker %u (pid %d): stopping it, the reload replaces it",
                      sl->logical, (int)sl->pid);
            kill(sl->pid, SIGTERM);
            sl->draining = true;
            sl->replaces = -1;
        }
    }
    char *pids = wharf_xmalloc(cap);
    size_t len = 0;
    pids[0] = '\0';
    for (unsigned i = 0; i < m->nslots; i++)
        if (m->slots[i].pid > 0 && !m->slots[i].draining)
            len += (size_t)snprintf(pids + len, cap - len, "%s%d", len ? "," : "", (int)m->slots[i].pid);
    /* workers already draining keep draining; the new image reaps them */
    for (unsigned i = 0; i < m->nslots; i++)
        if (m->slots[i].pid > 0 && m->slots[i].draining)
            len += (size_t)snprintf(pids + len, cap - len, "%s-%d", len ? "," : "", (int)m->slots[i].pid);
    for (size_t i = 0; i < m->nold; i++)
        if (m->old[i].pid > 0)
            len += (size_t)snprintf(pids + len, cap - len, "%s%s%d", len ? "," : "",
                                    i < m->old_next ? "-" : "", (int)m->old[i].pid);
    setenv("WHARF__OLD_WORKERS", pids, 1);
    free(pids);
    char gen[16];
    snprintf(gen, sizeof gen, "%u", s->generation + 1);
    setenv("WHARF__GENERATION", gen, 1);
    export_sockets(m);
    /* the scoreboard and the workers' message pipe go along: the new image
     * adopts the old workers in their slots and counters continue */
    wharf_scoreboard_export(s);
    char pipefds[32];
    snprintf(pipefds, sizeof pipefds, "%d,%d", s->master_pipe[0], s->master_pipe[1]);
    wharf_set_cloexec(s->master_pipe[0], false);
    wharf_set_cloexec(s->master_pipe[1], false);
    setenv("WHARF__PIPE", pipefds, 1);
    execv(m->exe, s->argv);
    wharf_log(WHARF_LOG_ERROR, "reload: cannot execute %s: %s; still serving", m->exe, strerror(errno));
    unexport_sockets(m);
    unsetenv("WHARF__GENERATION");
    unsetenv("WHARF__SCOREBOARD");
    unsetenv("WHARF__PIPE");
    unsetenv("WHARF__OLD_CHECKER");
    wharf_set_cloexec(s->sb_fd, true);
    wharf_set_cloexec(s->master_pipe[0], true);
    wharf_set_cloexec(s->master_pipe[1], true);
}

/* SIGHUP, first half: validate the new config in a child so that a broken
 * file never replaces a working server. */
static void start_reload(struct master *m, const char *why)
{
    if (m->mode != RUNNING || m->upgraded)
        return;
    if (m->preflight > 0 || m->rolling) {
        wharf_log(WHARF_LOG_INFO, "reload (%s) ignored: a reload is already in progress", why);
        return;
    }
    wharf_log(WHARF_LOG_INFO, "reload (%s): checking the configuration", why);
    pid_t pid = fork();
    if (pid < 0) {
        wharf_log(WHARF_LOG_ERROR, "reload: fork: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        char **argv = wharf_xcalloc((size_t)m->s->argc + 2, sizeof *argv);
        for (int i = 0; i < m->s->argc; i++)
            argv[i] = m->s->argv[i];
        argv[m->s->argc] = "--check-config";
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 1); /* "configuration OK" is not news; errors go to the log */
        execv(m->exe, argv);
        _exit(127);
    }
    m->preflight = pid;
}

/* SIGUSR2: start the binary on disk as a new master with our sockets; once
 * its workers accept, we drain and leave (nginx/unicorn style). */
static void start_upgrade(struct master *m)
{
    if (m->mode != RUNNING || m->upgrade > 0 || m->upgraded)
        return;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        wharf_log(WHARF_LOG_ERROR, "upgrade: pipe: %s", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        wharf_log(WHARF_LOG_ERROR, "upgrade: fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return;
    }
    if (pid == 0) {
        close(p[0]);
        wharf_set_cloexec(p[1], false);
        char fd[16];
        snprintf(fd, sizeof fd, "%d", p[1]);
        setenv("WHARF__UPGRADE_NOTIFY", fd, 1);
        export_sockets(m);
        execv(m->exe, m->s->argv);
        wharf_log(WHARF_LOG_ERROR, "upgrade: cannot execute %s: %s", m->exe, strerror(errno));
        _exit(127);
    }
    close(p[1]);
    wharf_set_nonblock(p[0], true);
    m->upgrade = pid;
    m->upgrade_fd = p[0];
    wharf_log(WHARF_LOG_INFO, "binary upgrade: started %s as new master pid %d", m->exe, (int)pid);
}

static void on_upgrade_message(struct master *m)
{
    char buf[16];
    ssize_t n = read(m->upgrade_fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    close(m->upgrade_fd);
    m->upgrade_fd = -1;
    if (n >= 5 && memcmp(buf, "READY", 5) == 0) {
        wharf_log(WHARF_LOG_INFO, "binary upgrade: new master pid %d is serving; draining this one",
                  (int)m->upgrade);
        char msg[64];
        snprintf(msg, sizeof msg, "MAINPID=%d", (int)m->upgrade);
        wharf_sd_notify(msg);
        m->upgraded = true;
        begin_drain_all(m);
        m->mode = STOPPING;
    }
}

static void reap(struct master *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        char how[96];
        describe_exit(status, how, sizeof how);
        if (pid == m->old_checker) {
            m->old_checker = 0;
            continue;
        }
        if (pid == m->checker) {
            m->checker = 0;
            if (m->mode == RUNNING) {
                wharf_log(WHARF_LOG_WARN, "checker (pid %d) died: %s; restarting", (int)pid, how);
                m->checker_respawn_ms = now_ms() + 1000;
            }
            continue;
        }
        if (pid == m->preflight) {
            m->preflight = 0;
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && m->mode == RUNNING)
                reexec(m);
            else
                wharf_log(WHARF_LOG_ERROR,
                          "reload aborted: the configuration does not pass --check-config (%s; see above); "
                          "still serving the current one", how);
            continue;
        }
        if (pid == m->upgrade) {
            m->upgrade = 0;
            if (!m->upgraded)
                wharf_log(WHARF_LOG_ERROR, "binary upgrade failed: the new master %s; still serving", how);
            continue;
        }
        bool found = false;
        for (unsigned i = 0; i < m->nslots && !found; i++)
            if (m->slots[i].pid == pid) {
                on_worker_exit(m, i, status);
                found = true;
            }
        for (size_t i = 0; i < m->nold && !found; i++)
            if (m->old[i].pid == pid) {
                wharf_log(WHARF_LOG_INFO, "previous worker pid %d exited: %s", (int)pid, how);
                m->old[i].pid = 0;
                found = true;
            }
    }
}

static void on_signal(struct master *m)
{
    struct signalfd_siginfo si;
    while (read(m->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        switch (si.ssi_signo) {
        case SIGCHLD: reap(m); break;
        case SIGTERM: graceful_stop(m, "SIGTERM"); break;
        case SIGINT: fast_stop(m, "SIGINT"); break;
        case SIGQUIT: fast_stop(m, "SIGQUIT"); break;
        case SIGHUP:
            wharf_log_reopen();
            start_reload(m, "SIGHUP");
            break;
        case SIGUSR2:
            start_upgrade(m);
            break;
        case SIGUSR1:
            for (unsigned i = 0; i < m->nslots; i++) {
                struct wharf_worker_info wi;
                if (m->slots[i].pid > 0 && wharf_worker_info(m->s, i, &wi))
                    wharf_log(WHARF_LOG_INFO, "worker %u pid %d state %d requests %" PRIu64
                              " in-flight %u connections %u rss %" PRIu64 " KiB",
                              m->slots[i].logical, (int)wi.pid, (int)wi.state, wi.requests,
                              wi.in_flight, wi.connections, wi.rss_bytes / 1024);
            }
            break;
        default: break;
        }
    }
}

/* ------------------------------------------------------------ tick */

/* Modification time in ns, 0 when missing: a second touch within the same
 * second (a deploy script touching twice) is a change too. */
static int64_t touch_mtime(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static void check_touch_files(struct master *m)
{
    const struct wharf_list *lists[2] = { &m->s->conf.touch_reload, &m->s->conf.touch_chain_reload };
    size_t k = 0;
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < lists[l]->count; i++, k++) {
            int64_t mt = touch_mtime(lists[l]->items[i].value);
            if (k < m->ntouch && mt != m->touch_mtime[k]) {
                bool changed = m->touch_mtime[k] != 0 || mt != 0;
                m->touch_mtime[k] = mt;
                if (changed) {
                    wharf_log(WHARF_LOG_INFO, "%s was touched", lists[l]->items[i].value);
                    start_reload(m, "touch-reload");
                }
            }
        }
}

static void tick(struct master *m)
{
    struct wharf_server *s = m->s;
    int64_t t = now_ms();
    for (unsigned i = 0; i < m->nslots; i++) {
        struct slot *sl = &m->slots[i];
        if (sl->pid <= 0)
            continue;
        uint64_t rss = wharf_process_rss(sl->pid);
        atomic_store(&wharf_sb_slot(s, i)->rss_bytes, rss);
        if (s->conf.reload_on_rss > 0 && m->mode == RUNNING && sl->ready && !sl->draining &&
            rss > (uint64_t)s->conf.reload_on_rss * 1024 * 1024) {
            if (replace_slot(m, i) == 0)
                wharf_log(WHARF_LOG_INFO, "worker %u uses %" PRIu64 " MiB > reload-on-rss %ld: replacing it",
                          sl->logical, rss >> 20, s->conf.reload_on_rss);
        }
    }
    if (m->mode == RUNNING)
        check_touch_files(m);
    (void)t;
}

static void plugin_ticks(struct master *m)
{
    struct wharf_server *s = m->s;
    if (m->mode != RUNNING)
        return;
    for (size_t i = 0; i < s->nplugins; i++)
        if (s->plugins[i].p->tick)
            s->plugins[i].p->tick(s, s->plugins[i].conf);
}

static void timers(struct master *m)
{
    int64_t t = now_ms();
    if (m->old_checker > 0 && !m->old_checker_told && m->checker > 0 &&
        atomic_load(&m->s->sb->checker_round_pid) == (int32_t)m->checker) {
        kill(m->old_checker, SIGTERM); /* ours has a full round of results */
        m->old_checker_told = true;
    }
    for (unsigned i = 0; i < m->nslots; i++) {
        struct slot *sl = &m->slots[i];
        if (sl->pid > 0 && sl->draining && sl->kill_at_ms && t >= sl->kill_at_ms) {
            struct wharf_worker_info wi;
            wharf_worker_info(m->s, i, &wi);
            wharf_log(WHARF_LOG_WARN,
                      "worker %u (pid %d) still busy after graceful-timeout (%u request(s) in flight): killing it",
                      sl->logical, (int)sl->pid, wi.in_flight);
            kill(sl->pid, SIGKILL);
            sl->kill_at_ms = 0;
        }
    }
    for (size_t i = 0; i < m->nold; i++) {
        struct old_worker *o = &m->old[i];
        if (o->pid > 0 && o->kill_at_ms && t >= o->kill_at_ms) {
            wharf_log(WHARF_LOG_WARN, "previous worker pid %d still busy after graceful-timeout: killing it",
                      (int)o->pid);
            kill(o->pid, SIGKILL);
            o->kill_at_ms = 0;
        }
    }
    if (m->mode == RUNNING) {
        for (unsigned i = 0; i < m->nslots; i++) {
            struct slot *sl = &m->slots[i];
            if (sl->replace_pending && (sl->pid <= 0 || sl->draining))
                sl->replace_pending = false;
            else if (sl->replace_pending && !m->rolling && replace_slot(m, i) == 0)
                sl->replace_pending = false;
        }
        if (m->rolling && m->roll_waiting_slot < 0)
            roll_step(m);
        for (unsigned l = 1; l <= (unsigned)m->s->conf.processes; l++) {
            unsigned li = l - 1;
            if (m->respawn_at_ms[li] && t >= m->respawn_at_ms[li]) {
                m->respawn_at_ms[li] = 0;
                unsigned a = first_slot(l);
                if (m->slots[a].pid <= 0 && m->slots[a + 1].pid <= 0)
                    spawn(m, a, l, -1);
            }
        }
        if (m->checker == 0 && m->checker_respawn_ms && t >= m->checker_respawn_ms) {
            m->checker_respawn_ms = 0;
            spawn_checker(m);
        }
    }
    if (m->mode == STOP_DELAY && t >= m->stop_at_ms)
        begin_drain_all(m);
    if (m->mode == STOPPING)
        wharf_listeners_close_drained(m->s, t);
    if (m->mode == FAST_STOP && t >= m->fast_deadline_ms) {
        for (unsigned i = 0; i < m->nslots; i++)
            if (m->slots[i].pid > 0)
                kill(m->slots[i].pid, SIGKILL);
        m->fast_deadline_ms = t + 1000;
    }
    if (t - m->last_plugin_tick_ms >= 100) {
        m->last_plugin_tick_ms = t;
        plugin_ticks(m);
    }
    if (t - m->last_tick_ms >= 1000) {
        m->last_tick_ms = t;
        tick(m);
    }
}

/* ------------------------------------------------------------ API */

WHARF_EXPORT int wharf_worker_dump_stack(struct wharf_server *s, unsigned index)
{
    (void)s;
    if (!M || index >= M->nslots || M->slots[index].pid <= 0)
        return -1;
    return kill(M->slots[index].pid, WHARF_SIGNAL_STACKDUMP);
}

WHARF_EXPORT int wharf_worker_stop(struct wharf_server *s, unsigned index, bool graceful,
                                   const char *reason)
{
    (void)s;
    if (!M || index >= M->nslots || M->slots[index].pid <= 0)
        return -1;
    struct slot *sl = &M->slots[index];
    if (graceful) {
        if (replace_slot(M, index) < 0)
            drain_slot(M, index, reason ? reason : "requested");
        return 0;
    }
    wharf_log(WHARF_LOG_WARN, "killing worker %u (pid %d): %s", sl->logical, (int)sl->pid,
              reason ? reason : "requested");
    return kill(sl->pid, SIGKILL);
}

/* ------------------------------------------------------------ startup */

static int drop_privileges(struct wharf_server *s)
{
    const char *uid_s = s->conf.uid, *gid_s = s->conf.gid;
    if (!uid_s && !gid_s)
        return 0;
    gid_t gid = (gid_t)-1;
    uid_t uid = (uid_t)-1;
    const char *user = NULL;
    if (gid_s) {
        struct group *gr = getgrnam(gid_s);
        char *end;
        long v = strtol(gid_s, &end, 10);
        if (gr)
            gid = gr->gr_gid;
        else if (*gid_s && !*end && v >= 0)
            gid = (gid_t)v;
        else {
            wharf_config_error(wharf_option_origin(s, "gid"), "gid", "unknown group '%s'", gid_s);
            return -1;
        }
    }
    if (uid_s) {
        struct passwd *pw = getpwnam(uid_s);
        char *end;
        long v = strtol(uid_s, &end, 10);
        if (!pw && *uid_s && !*end && v >= 0)
            pw = getpwuid((uid_t)v);
        if (pw) {
            uid = pw->pw_uid;
            user = pw->pw_name;
            if (gid == (gid_t)-1)
                gid = pw->pw_gid;
        } else if (*uid_s && !*end && v >= 0) {
            uid = (uid_t)v;
        } else {
            wharf_config_error(wharf_option_origin(s, "uid"), "uid", "unknown user '%s'", uid_s);
            return -1;
        }
    }
    if (gid != (gid_t)-1) {
        if (setgid(gid) < 0) {
            wharf_log(WHARF_LOG_ERROR, "setgid(%u): %s", (unsigned)gid, strerror(errno));
            return -1;
        }
        /* drop root's supplementary groups; take the user's own */
        if (getuid() == 0) {
            if (user ? initgroups(user, gid) < 0 : setgroups(1, &gid) < 0) {
                wharf_log(WHARF_LOG_ERROR, "setgroups: %s", strerror(errno));
                return -1;
            }
        }
    }
    if (uid != (uid_t)-1 && setuid(uid) < 0) {
        wharf_log(WHARF_LOG_ERROR, "setuid(%u): %s", (unsigned)uid, strerror(errno));
        return -1;
    }
    if (uid != (uid_t)-1 && uid != 0 && setuid(0) == 0) {
        wharf_log(WHARF_LOG_ERROR, "could regain root after setuid(%u): refusing to run", (unsigned)uid);
        return -1;
    }
    wharf_log(WHARF_LOG_INFO, "running as uid %u gid %u", (unsigned)getuid(), (unsigned)getgid());
    return 0;
}

static int write_pidfile(struct wharf_server *s)
{
    if (!s->conf.pidfile)
        return 0;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", s->conf.pidfile, (int)getpid());
    FILE *f = fopen(tmp, "we");
    if (!f) {
        wharf_config_error(wharf_option_origin(s, "pidfile"), "pidfile", "cannot write %s: %s",
                           s->conf.pidfile, strerror(errno));
        return -1;
    }
    fprintf(f, "%d\n", (int)getpid());
    /* written whole, then renamed: a reader never sees half a pid */
    if (fclose(f) != 0 || rename(tmp, s->conf.pidfile) != 0) {
        wharf_config_error(wharf_option_origin(s, "pidfile"), "pidfile", "cannot write %s: %s",
                           s->conf.pidfile, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int apply_env(struct wharf_server *s)
{
    for (size_t i = 0; i < s->conf.env.count; i++) {
        const char *kv = s->conf.env.items[i].value;
        const char *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            wharf_config_error(s->conf.env.items[i].origin, "env", "'%s' is not KEY=VALUE", kv);
            return -1;
        }
        char *key = wharf_xstrndup(kv, (size_t)(eq - kv));
        setenv(key, eq + 1, 1);
        free(key);
    }
    return 0;
}

static void summary(struct wharf_server *s)
{
    char plugins[512] = "";
    size_t n = 0;
    for (size_t i = 0; i < s->nplugins; i++)
        n += (size_t)snprintf(plugins + n, n < sizeof plugins ? sizeof plugins - n : 0, "%s%s",
                              i ? " " : "", s->plugins[i].p->name);
    char socks[512] = "";
    n = 0;
    for (size_t i = 0; i < s->nlisteners; i++)
        if (s->listeners[i].fd >= 0)
            n += (size_t)snprintf(socks + n, n < sizeof socks ? sizeof socks - n : 0, "%s%s",
                                  n ? " " : "", s->listeners[i].address);
#if defined(__SANITIZE_ADDRESS__)
    const char *alloc = "AddressSanitizer (sanitizer build)";
#elif defined(WHARF_WITH_JEMALLOC)
    const char *alloc = "jemalloc " WHARF_JEMALLOC_VERSION;
#else
    const char *alloc = "glibc malloc";
#endif
    wharf_log(WHARF_LOG_INFO, "wharf %s (ABI %d.%d, %s): %ld worker(s) x %ld thread(s); plugins: %s; listening on %s",
              PACKAGE_VERSION, WHARF_ABI_MAJOR, WHARF_ABI_MINOR, alloc, s->conf.processes,
              s->conf.threads, plugins[0] ? plugins : "none", socks[0] ? socks : "nothing");
}

static void teardown(struct wharf_server *s)
{
    for (size_t i = s->nplugins; i-- > 0;)
        if (s->plugins[i].p->teardown)
            s->plugins[i].p->teardown(s, s->plugins[i].conf);
    if (s->conf.vacuum) {
        wharf_listeners_vacuum(s);
        if (s->conf.pidfile && unlink(s->conf.pidfile) == 0)
            wharf_log(WHARF_LOG_INFO, "vacuum: removed %s", s->conf.pidfile);
    }
}

/* Is plugin `i` the owner of a command-line action that was given
 * (`--migrate`)?  Then the run is a one-shot job, not a server. */
static bool plugin_has_action(struct wharf_server *s, size_t i)
{
    for (size_t k = 0; k < s->options.count; k++) {
        const struct wharf_optdef *d = &s->options.defs[k];
        if (d->owner == (int)i && (d->opt->type & WHARF_OPT_ACTION) && d->set &&
            *(bool *)((char *)d->conf + d->opt->offset))
            return true;
    }
    return false;
}

static bool action_requested(struct wharf_server *s)
{
    for (size_t i = 0; i < s->nplugins; i++)
        if (plugin_has_action(s, i))
            return true;
    return false;
}

static int run_setup(struct wharf_server *s, size_t i)
{
    struct wharf_loaded_plugin *lp = &s->plugins[i];
    if (!lp->p->setup)
        return 0;
    int rc = lp->p->setup(s, lp->conf);
    if (rc == WHARF_EXIT)
        return 2;
    if (rc != WHARF_OK) {
        wharf_log(WHARF_LOG_ERROR, "plugin %s: setup failed", lp->p->name);
        return 1;
    }
    return 0;
}

/* A one-shot action (`wharf --ini app.ini --migrate`, the Kubernetes Job):
 * it may run on a host where the server with the same ini is up, so it
 * binds nothing, writes no pidfile and loads no app; only the plugins that
 * own the requested actions run their setup. */
static int run_action(struct wharf_server *s)
{
    if (drop_privileges(s) < 0)
        return 1;
    for (size_t i = 0; i < s->nplugins; i++) {
        if (!plugin_has_action(s, i))
            continue;
        int rc = run_setup(s, i);
        if (rc != 0)
            return rc;
    }
    return 2;
}

/* Everything up to forking workers; shared by normal runs and
 * --check-config (which stops before binding anything for real). */
static int prepare(struct wharf_server *s)
{
    if (s->conf.chdir_path && chdir(s->conf.chdir_path) < 0) {
        wharf_config_error(wharf_option_origin(s, "chdir"), "chdir", "cannot change to %s: %s",
                           s->conf.chdir_path, strerror(errno));
        return 1;
    }
    if (apply_env(s) < 0 || wharf_accesslog_setup(s) < 0)
        return 1;
    if (!s->check_only && action_requested(s))
        return run_action(s);
    if (!s->check_only)
        wharf_listeners_inherit(s);
    if (wharf_listeners_prebind(s) < 0)
        return 1;
    if (!s->check_only) {
        if (write_pidfile(s) < 0 || drop_privileges(s) < 0)
            return 1;
    }
    /* Plugins that load apps (APP phase) set up last, so that what the app
     * needs at import is ready: migrations run (migrate-on-start), sockets
     * bound, other plugins configured. */
    for (int app_pass = 0; app_pass < 2; app_pass++)
        for (size_t i = 0; i < s->nplugins; i++) {
            bool is_app = s->plugins[i].p->phases & WHARF_PHASE_BIT(WHARF_PHASE_APP);
            if (is_app != (app_pass == 1))
                continue;
            int rc = run_setup(s, i);
            if (rc != 0)
                return rc;
        }
    return 0;
}

/* Workers of the previous image: "pid,pid,-pid" (a leading '-': already
 * draining). */
static void adopt_old_workers(struct master *m)
{
    const char *env = getenv("WHARF__OLD_WORKERS");
    if (!env || !*env)
        return;
    char *copy = wharf_xstrdup(env), *save = NULL;
    size_t cap = 8;
    m->old = wharf_xcalloc(cap, sizeof *m->old);
    size_t draining = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        bool d = tok[0] == '-';
        pid_t pid = (pid_t)atoi(d ? tok + 1 : tok);
        if (pid <= 0)
            continue;
        if (m->nold == cap) {
            cap *= 2;
            m->old = wharf_xrealloc(m->old, cap * sizeof *m->old);
        }
        m->old[m->nold].pid = pid;
        /* already draining: keep its place at the front, already "next" */
        m->old[m->nold].kill_at_ms = d ? now_ms() + m->s->conf.graceful_timeout : 0;
        if (d)
            draining++;
        m->nold++;
    }
    free(copy);
    /* draining ones first so drain_one_old() starts with the serving ones */
    for (size_t i = 0, j = 0; i < m->nold; i++)
        if (m->old[i].kill_at_ms) {
            struct old_worker t = m->old[j];
            m->old[j++] = m->old[i];
            m->old[i] = t;
        }
    m->old_next = draining;
    m->reloaded = m->nold > 0;
    unsetenv("WHARF__OLD_WORKERS");
}

/* After adopting the previous image's scoreboard: its workers take their
 * slots again, so replacing them is the ordinary one-by-one replacement. */
static void adopt_old_slots(struct master *m)
{
    for (unsigned i = 0; i < m->nslots; i++) {
        struct wharf_sb_worker *w = wharf_sb_slot(m->s, i);
        pid_t pid = atomic_load(&w->pid);
        if (pid <= 0)
            continue;
        for (size_t k = 0; k < m->nold; k++) {
            if (m->old[k].pid != pid)
                continue;
            struct slot *sl = &m->slots[i];
            sl->pid = pid;
            sl->logical = w->logical;
            sl->ready = true;
            sl->replaces = -1;
            sl->spawned_ms = now_ms();
            if (m->old[k].kill_at_ms) {
                sl->draining = true;
                sl->kill_at_ms = m->old[k].kill_at_ms;
            }
            m->old[k].pid = 0;
            break;
        }
        if (m->slots[i].pid != pid) {
            /* not ours any more (exited meanwhile): free the slot */
            atomic_store(&w->pid, 0);
            atomic_store(&w->state, WHARF_WORKER_EMPTY);
        }
    }
}

/* A reload whose new image cannot start (the app does not import, a
 * plugin setup fails): the previous workers keep serving until the next
 * SIGHUP fixes it, or until a stop. */
static int degraded(struct master *m)
{
    wharf_log(WHARF_LOG_ERROR,
              "reload failed: the new configuration could not start (see above); the %zu worker(s) "
              "of the previous one keep serving; fix it and send SIGHUP again",
              m->nold);
    wharf_sd_notify("READY=1");
    for (;;) {
        size_t alive = 0;
        for (size_t i = 0; i < m->nold; i++)
            alive += m->old[i].pid > 0;
        if (alive == 0)
            return m->mode == RUNNING ? 1 : m->exit_status;
        struct pollfd pfd = { m->sigfd, POLLIN, 0 };
        if (poll(&pfd, 1, 100) > 0) {
            struct signalfd_siginfo si;
            while (read(m->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGCHLD)
                    reap(m);
                else if (si.ssi_signo == SIGHUP && m->mode == RUNNING)
                    start_reload(m, "SIGHUP");
                else if (si.ssi_signo == SIGTERM && m->mode == RUNNING) {
                    m->mode = STOPPING;
                    drain_all_old(m);
                } else if (si.ssi_signo == SIGINT || si.ssi_signo == SIGQUIT)
                    fast_stop(m, "signal");
            }
        }
        timers(m);
    }
}

int wharf_master_run(struct wharf_server *s)
{
    wharf_log_set_role("master");
    s->master_pid = getpid();
    const char *gen = getenv("WHARF__GENERATION");
    if (gen) {
        s->generation = (unsigned)atoi(gen);
        unsetenv("WHARF__GENERATION");
    }

    static struct master m;
    M = &m;
    m.s = s;
    m.roll_waiting_slot = -1;
    m.upgrade_fd = -1;
    m.notify_fd = -1;
    const char *notify = getenv("WHARF__UPGRADE_NOTIFY");
    if (notify) {
        m.notify_fd = atoi(notify);
        wharf_set_cloexec(m.notify_fd, true);
        unsetenv("WHARF__UPGRADE_NOTIFY");
    }
    /* our binary, for reloads and upgrades: the path on disk, so that an
     * upgraded package's new binary is what runs next */
    ssize_t n = readlink("/proc/self/exe", m.exe, sizeof m.exe - 1);
    m.exe[n > 0 ? n : 0] = '\0';
    char *deleted = strstr(m.exe, " (deleted)");
    if (deleted)
        *deleted = '\0';

    /* Signals go to a signalfd from the start: a SIGTERM during a slow
     * startup (app import) is then handled, not fatal by default. */
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2 };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&set, sigs[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (!s->check_only) {
        m.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        if (m.sigfd < 0) {
            wharf_log(WHARF_LOG_ERROR, "signalfd: %s", strerror(errno));
            return 1;
        }
        adopt_old_workers(&m);
        const char *oc = getenv("WHARF__OLD_CHECKER");
        if (oc)
            m.old_checker = (pid_t)atoi(oc);
    }
    unsetenv("WHARF__OLD_CHECKER");

    int rc = prepare(s);
    if (rc == 2)
        return 0;
    if (rc != 0)
        return m.nold ? degraded(&m) : 1;
    if (s->check_only) {
        printf("configuration OK: %zu plugin(s), %zu socket(s)\n", s->nplugins, s->nlisteners);
        return 0;
    }
    wharf_listeners_close_unused(s);
    wharf_listeners_close_unclaimed(s);
    int adopted = wharf_scoreboard_create(s);
    if (adopted < 0)
        return m.nold ? degraded(&m) : 1;
    if (m.old_checker > 0 && !s->checks_kept) {
        /* other checks now, or a new scoreboard: its results mean nothing */
        kill(m.old_checker, SIGTERM);
        m.old_checker_told = true;
    }
    const char *pipefds = getenv("WHARF__PIPE");
    if (pipefds && sscanf(pipefds, "%d,%d", &s->master_pipe[0], &s->master_pipe[1]) == 2) {
        wharf_set_cloexec(s->master_pipe[0], true);
        wharf_set_cloexec(s->master_pipe[1], true);
    } else if (pipe2(s->master_pipe, O_CLOEXEC) < 0) {
        wharf_log(WHARF_LOG_ERROR, "pipe: %s", strerror(errno));
        return 1;
    }
    unsetenv("WHARF__PIPE");
    wharf_set_nonblock(s->master_pipe[0], true);
    prctl(PR_SET_NAME, "wharf-master");

    m.nslots = (unsigned)s->conf.processes * 2;
    m.slots = wharf_xcalloc(m.nslots, sizeof *m.slots);
    m.failures = wharf_xcalloc((size_t)s->conf.processes, sizeof *m.failures);
    m.respawn_at_ms = wharf_xcalloc((size_t)s->conf.processes, sizeof *m.respawn_at_ms);
    m.ntouch = s->conf.touch_reload.count + s->conf.touch_chain_reload.count;
    m.touch_mtime = wharf_xcalloc(m.ntouch + 1, sizeof *m.touch_mtime);
    for (unsigned i = 0; i < m.nslots; i++)
        m.slots[i].replaces = -1;
    if (adopted == 1)
        adopt_old_slots(&m);
    {
        size_t k = 0;
        const struct wharf_list *lists[2] = { &s->conf.touch_reload, &s->conf.touch_chain_reload };
        for (int l = 0; l < 2; l++)
            for (size_t i = 0; i < lists[l]->count; i++, k++) {
                m.touch_mtime[k] = touch_mtime(lists[l]->items[i].value);
            }
    }

    summary(s);
    if (m.reloaded) {
        /* a reload: bring workers up one by one, each replacing one of the
         * previous image's; READY=1 once the last one is replaced, not as
         * soon as enough workers (old and new) accept */
        m.notified_ready = true;
        wharf_log(WHARF_LOG_INFO, "reload: replacing the previous workers one by one%s",
                  adopted == 1 ? " (scoreboard kept)" : "");
        m.rolling = true;
        m.roll_next = 1;
        roll_step(&m);
    } else {
        for (unsigned l = 1; l <= (unsigned)s->conf.processes; l++)
            spawn(&m, first_slot(l), l, -1);
    }
    spawn_checker(&m);
    m.last_tick_ms = now_ms();

    for (;;) {
        if (m.mode != RUNNING && m.mode != STOP_DELAY && alive_workers(&m) == 0)
            break;
        struct pollfd pfd[3] = { { m.sigfd, POLLIN, 0 }, { s->master_pipe[0], POLLIN, 0 },
                                 { m.upgrade_fd, POLLIN, 0 } };
        int nfds = m.upgrade_fd >= 0 ? 3 : 2;
        int r = poll(pfd, (nfds_t)nfds, 50);
        if (r < 0 && errno != EINTR) {
            wharf_log(WHARF_LOG_ERROR, "poll: %s", strerror(errno));
            break;
        }
        if (r > 0 && (pfd[0].revents & POLLIN))
            on_signal(&m);
        if (r > 0 && (pfd[1].revents & POLLIN))
            read_worker_messages(&m);
        if (r > 0 && nfds == 3 && (pfd[2].revents & (POLLIN | POLLHUP)))
            on_upgrade_message(&m);
        timers(&m);
    }
    if (m.checker > 0) {
        kill(m.checker, SIGKILL);
        waitpid(m.checker, NULL, 0);
    }
    if (m.old_checker > 0) {
        kill(m.old_checker, SIGKILL);
        waitpid(m.old_checker, NULL, 0);
    }
    if (m.upgraded) {
        /* the sockets and the pidfile belong to the new master now */
        s->conf.vacuum = false;
        wharf_log(WHARF_LOG_INFO, "handed over to pid %d", (int)m.upgrade);
    }
    teardown(s);
    wharf_log(WHARF_LOG_INFO, "bye");
    return m.exit_status;
}
