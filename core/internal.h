/*
 * core/internal.h - what the core's files share with each other.  Nothing
 * here is visible to plugins (the core is compiled -fvisibility=hidden and
 * only WHARF_EXPORT functions from wharf.h are exported).
 */
#ifndef WHARF_INTERNAL_H
#define WHARF_INTERNAL_H

#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "wharf.h"

struct wharf_cfg;

#define WHARF_MAX_PLUGINS 64
#define WHARF_MAX_METRICS 64
#define WHARF_MAX_CHECKS 16
#define WHARF_MAX_LISTENERS 32

/* Exit status a worker uses when it could not start (plugin worker_start
 * failed, app import failed): the master counts it as a crash. */
#define WHARF_WORKER_EXIT_FAILED 22

/* ---------------------------------------------------------------- util.c */
void *wharf_xmalloc(size_t);
void *wharf_xcalloc(size_t, size_t);
void *wharf_xrealloc(void *, size_t);
char *wharf_xstrdup(const char *);
char *wharf_xstrndup(const char *, size_t);
char *wharf_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t wharf_monotonic_ns(void);
int wharf_set_nonblock(int fd, bool on);
int wharf_set_cloexec(int fd, bool on);
/* Damerau-Levenshtein distance (optimal string alignment), for did-you-mean. */
unsigned wharf_edit_distance(const char *a, const char *b);
/* RSS of a process in bytes from /proc, 0 if unknown. */
uint64_t wharf_process_rss(pid_t);
/* Fill `buf` with random bytes (getrandom); never fails (aborts instead). */
void wharf_random_bytes(void *buf, size_t len);
bool wharf_strcaseeq(const char *a, size_t alen, const char *b, size_t blen);

/* ---------------------------------------------------------------- log.c */
/* Open the log (logto file or stderr).  Returns 0 or -1 (message printed). */
int wharf_log_open(const char *logto);
/* Reopen after rotation (SIGHUP / reload). */
void wharf_log_reopen(void);
/* The process name shown in log lines, e.g. "master", "worker 2". */
void wharf_log_set_role(const char *role);
extern int wharf_log_level_max;
/* Write bytes to the log as they are (no flush of buffered access lines). */
void wharf_log_write(const char *text, size_t len);

/* ---------------------------------------------------------------- options.c */

/* One option known to the server: a row of a table plus where it writes. */
struct wharf_optdef {
    const struct wharf_option *opt;  /* the row */
    const struct wharf_option *target; /* alias resolved (== opt otherwise) */
    int owner;                       /* plugin index, -1 for the core */
    void *conf;                      /* base of the owner's config struct */
    const char *origin;              /* where the value came from */
    bool set;                        /* given explicitly */
    /* list items as they are collected (flushed into the field at the end) */
    struct wharf_list_item *items;
    uint64_t *item_seq;              /* each item's place in config order */
    size_t nitems, capitems;
};

struct wharf_options {
    struct wharf_optdef *defs;
    size_t count, cap;
};

void wharf_options_init(struct wharf_options *);
void wharf_options_free(struct wharf_options *);
/* Register every row of `table` (owner -1 = core).  Duplicate names across
 * owners are refused: returns -1 naming both. */
int wharf_options_register(struct wharf_options *, const struct wharf_option *table,
                           int owner, const char *owner_name, void *conf);
struct wharf_optdef *wharf_options_find(struct wharf_options *, const char *name);
/* Apply defaults of every registered option (before any value). */
int wharf_options_apply_defaults(struct wharf_options *);
/* Set one value; `err` receives a one-line message on failure. */
int wharf_options_set(struct wharf_options *, struct wharf_optdef *, const char *value,
                      const char *origin, char *err, size_t errlen);
/* Write collected list items into their fields. */
void wharf_options_finish(struct wharf_options *);

/* Typed value parsers (shared with tests).  Return 0 or -1. */
int wharf_parse_bool(const char *s, bool *out);
int wharf_parse_int(const char *s, long *out);
int wharf_parse_size(const char *s, size_t *out);
int wharf_parse_duration_ms(const char *s, int64_t *out);
int wharf_parse_address(const char *s, char *err, size_t errlen);
/* What a type expects, for error messages ("a size such as 65536, 64k or 8m"). */
const char *wharf_option_expected(unsigned type);
const char *wharf_option_type_name(unsigned type);
/* Render a field's current value as text (for --show-config); returns a
 * malloc'd string. */
char *wharf_option_value_text(const struct wharf_optdef *);

/* ---------------------------------------------------------------- plugin.c */

struct wharf_loaded_plugin {
    const struct wharf_plugin *p;
    void *handle;        /* dlopen handle */
    char *path;
    void *conf;
    bool explicit_load;  /* plugin = NAME */
};

/* A plugin .so found in plugins-dir while looking for an option's owner. */
struct wharf_plugin_index_entry {
    char *name;
    char *path;
    void *handle;                   /* kept open while indexing */
    const struct wharf_plugin *p;   /* NULL when unusable */
    char *unusable;                 /* why it cannot be loaded */
};

/* Open and verify a plugin file.  Returns the descriptor or NULL with a
 * one-line reason in err ("x_plugin.so: ABI 2.0, this wharf speaks 1.0"). */
const struct wharf_plugin *wharf_plugin_open(const char *path, void **handle,
                                             char *err, size_t errlen);
/* "python3" -> "python"; other names unchanged. */
const char *wharf_plugin_canonical_name(const char *name);
/* "<dir>/<name>_plugin.so" (malloc'd). */
char *wharf_plugin_path(const char *dir, const char *name);

/* ---------------------------------------------------------------- scoreboard.c */

struct wharf_sb_thread {
    _Atomic int64_t start_ns;  /* 0 = idle */
    char method[12];
    char uri[WHARF_URI_MAX];
};

struct wharf_sb_worker {
    _Atomic pid_t pid;
    _Atomic int state;            /* enum wharf_worker_state */
    unsigned logical;             /* 1-based worker id this slot serves */
    unsigned generation;
    int64_t started_ns;
    _Atomic bool app_ready;
    _Atomic uint64_t requests;    /* this process */
    _Atomic uint64_t rss_bytes;
    _Atomic unsigned in_flight;
    _Atomic unsigned connections;
    /* cumulative for the slot */
    _Atomic uint64_t total_requests;
    _Atomic uint64_t status_class[6];
    _Atomic uint64_t latency_bucket[WHARF_LATENCY_BUCKETS];
    _Atomic uint64_t latency_sum_us;
    _Atomic uint64_t bytes_sent;
    _Atomic uint64_t respawns;
    _Atomic uint64_t metrics[WHARF_MAX_METRICS];
    /* followed by `threads` struct wharf_sb_thread */
};

struct wharf_sb_check {
    struct wharf_check check;
    _Atomic int64_t updated_ns;
    _Atomic uint32_t seq;         /* odd while being written */
    _Atomic bool writing;         /* writers' lock: during a reload the old
                                     and the new checker overlap */
};

struct wharf_scoreboard {
    uint32_t magic;
    unsigned slots;               /* 2 x processes: a replacement can start
                                     beside the worker it replaces */
    unsigned threads;             /* request slots per worker */
    size_t slot_size;
    _Atomic bool stopping;        /* server-wide drain (readiness 503) */
    unsigned nchecks;
    struct wharf_sb_check checks[WHARF_MAX_CHECKS];
    _Atomic int32_t checker_round_pid; /* pid of the checker that finished
                                          the latest full round */
    /* names of the plugin counters, so a reloaded image that registers
     * other counters does not inherit someone else's numbers */
    char metric_names[WHARF_MAX_METRICS][48];
    _Atomic uint64_t server_metrics[WHARF_MAX_METRICS];
    _Atomic uint64_t respawns_total;
    /* followed by the slots */
};

/* Create the scoreboard, or adopt the previous image's (reload) when it
 * has the same shape: counters then continue and old workers keep their
 * slots.  Returns 1 when adopted, 0 when new, -1 on error. */
int wharf_scoreboard_create(struct wharf_server *);
/* The checker's write of check i's result (under the check's writers'
 * lock, with a seqlock for the readers). */
void wharf_sb_check_store(struct wharf_server *, size_t i, const struct wharf_check *);
/* Hand the scoreboard to a new image: "fd,size" in WHARF__SCOREBOARD. */
void wharf_scoreboard_export(struct wharf_server *);
struct wharf_sb_worker *wharf_sb_slot(struct wharf_server *, unsigned slot);
struct wharf_sb_thread *wharf_sb_thread_slot(struct wharf_sb_worker *, unsigned thread);

/* ---------------------------------------------------------------- listen.c */

struct wharf_listener {
    char *address;
    int fd;
    int family;
    char *unix_path;      /* for vacuum */
    wharf_accept_fn on_accept;
    void *arg;
    bool inherited;
    bool from_systemd;    /* socket activation: systemd owns the socket (and
                             its file): never filtered, shut down or vacuumed */
    int64_t stop_ms;      /* when new connections were stopped (graceful stop) */
};

/* Take over sockets passed by a previous master (WHARF__FDS) or systemd
 * (LISTEN_FDS); called once at startup. */
void wharf_listeners_inherit(struct wharf_server *);
/* Close inherited sockets nobody asked for (config changed). */
void wharf_listeners_close_unused(struct wharf_server *);
/* "addr=fd;addr=fd" for a new master image, with FD_CLOEXEC cleared. */
char *wharf_listeners_export(struct wharf_server *);
void wharf_listeners_vacuum(struct wharf_server *);
/* Graceful stop, first step (master): no new connection gets in any more
 * (TCP: new SYNs are dropped by a socket filter; unix: connect() is
 * refused), while those already in the accept queue stay there for the
 * draining workers, which accept them before they close their copies. */
void wharf_listeners_stop_new(struct wharf_server *);
/* Second step, called until it returns true: close each socket of ours
 * once its accept queue is empty (TCP: shut down first, so that new
 * connections are refused at once rather than after the last worker). */
bool wharf_listeners_close_drained(struct wharf_server *, int64_t now_ms);
/* Close the master's copies now (binary upgrade: the sockets live on in
 * the new master). */
void wharf_listeners_close_all(struct wharf_server *);
/* Bind every WHARF_OPT_LISTEN address (before privileges drop). */
int wharf_listeners_prebind(struct wharf_server *);
void wharf_listeners_close_unclaimed(struct wharf_server *);

/* ---------------------------------------------------------------- core options */

struct wharf_core_conf {
    long processes;
    long threads;
    struct wharf_list plugins;
    char *plugins_dir;
    bool strict;
    struct wharf_list env;
    char *logto;
    char *log_format;
    bool disable_logging;
    bool log_x_forwarded_for;
    char *pidfile;
    bool vacuum;
    char *uid;
    char *gid;
    char *chdir_path;
    long listen_backlog;
    char *chmod_socket;
    int64_t graceful_timeout;
    int64_t shutdown_delay;
    long max_requests;
    long max_requests_delta;
    long max_requests_jitter;
    long reload_on_rss;          /* MB */
    struct wharf_list touch_reload;
    struct wharf_list touch_chain_reload;
    char *procname_prefix;
    /* command-line actions */
    bool help;
    bool version;
    bool show_config;
    bool check_config;
};

/* ---------------------------------------------------------------- server */

struct wharf_metric_def {
    char *name;
    char *help;
};

struct wharf_server {
    struct wharf_core_conf conf;
    struct wharf_options options;
    struct wharf_loaded_plugin plugins[WHARF_MAX_PLUGINS];
    size_t nplugins;
    struct wharf_plugin_index_entry *index;  /* plugins-dir scan, on demand */
    size_t nindex;
    bool indexed;

    /* phase handlers in plugin load order */
    size_t phase_handlers[WHARF_PHASE_LOG + 1][WHARF_MAX_PLUGINS];
    size_t nphase_handlers[WHARF_PHASE_LOG + 1];

    struct wharf_listener listeners[WHARF_MAX_LISTENERS];
    size_t nlisteners;
    struct wharf_listener inherited[WHARF_MAX_LISTENERS];
    size_t ninherited;

    struct wharf_metric_def metrics[WHARF_MAX_METRICS];
    size_t nmetrics;
    size_t check_plugins[WHARF_MAX_CHECKS];  /* plugin indexes with check() */
    size_t nchecks;

    struct wharf_scoreboard *sb;
    bool checks_kept;                /* reload: the adopted scoreboard holds
                                        the same checks, with their results */
    size_t sb_size;
    int sb_fd;

    int argc;
    char **argv;             /* for re-exec on reload */
    bool check_only;
    unsigned generation;
    int master_pipe[2];      /* workers -> master notifications */
    pid_t master_pid;
};

/* config.c */
/* Read every source, load plugins, apply options.  Returns 0, or 1 when
 * startup must stop with exit status 1 (the error is printed), or 2 when
 * an action (--help, --version, --show-config) is done (exit 0). */
int wharf_config_load(struct wharf_server *, int argc, char **argv, char **envp);
void wharf_config_print_help(struct wharf_server *, FILE *);
void wharf_config_show(struct wharf_server *, FILE *);
extern const struct wharf_option wharf_core_options[];
/* Ensure every plugin in plugins-dir is indexed (for --help). */
void wharf_plugins_index_all(struct wharf_server *);

/* master.c */
int wharf_master_run(struct wharf_server *);

/* worker.c: the worker process main; never returns. */
void wharf_worker_main(struct wharf_server *, unsigned slot, unsigned logical)
    __attribute__((noreturn));

/* notify.c: sd_notify without libsystemd. */
void wharf_sd_notify(const char *state);

/* ---------------------------------------------------------------- worker / loop */

struct wharf_fd_entry {
    wharf_event_fn cb;
    void *arg;
    unsigned events;
    uint32_t gen;       /* guards against a reused fd number in one batch */
    bool used;
    bool is_client;
    int listener;       /* listener index, or -1 */
};

struct wharf_timer {
    unsigned interval_ms;
    int64_t next_ms;
    wharf_timer_fn fn;
    void *arg;
};

struct wharf_post {
    wharf_timer_fn fn;
    void *arg;
};

struct wharf_threadpool;

struct wharf_worker {
    struct wharf_server *server;
    unsigned slot;            /* scoreboard slot */
    unsigned id;              /* logical worker id, 1-based */
    struct wharf_sb_worker *sb;
    int epfd;
    struct wharf_fd_entry *fds;
    size_t nfds_cap;
    unsigned nconns;          /* registered client connections */
    struct wharf_timer *timers;
    size_t ntimers;
    int post_fd;              /* eventfd */
    pthread_mutex_t post_lock;
    struct wharf_post *posts;
    size_t nposts, capposts;
    int signal_fd;
    int64_t now_ms;
    time_t date_sec;
    char date[32];
    bool draining;
    bool stop_now;
    bool recycle_requested;
    uint64_t recycle_after;   /* max-requests with delta/jitter, 0 = never */
    struct wharf_threadpool *pool;
    pthread_t loop_thread;
    uint32_t next_gen;
    bool listeners_closed;
    int64_t accept_resume_ms; /* accepting paused (out of fds) until then; 0 = not */
    int64_t accept_warned_ms; /* last "cannot accept" warning, 0 = never */
    unsigned long accept_failures; /* failed accepts since that warning */
};

/* The worker of this process (NULL in the master). */
extern struct wharf_worker *wharf_current_worker;
/* Scoreboard request slot of the calling thread: 0 = loop thread. */
extern __thread unsigned wharf_thread_slot;

int wharf_loop_init(struct wharf_worker *);
int wharf_loop_add_listener(struct wharf_worker *, int index);
void wharf_loop_close_listeners(struct wharf_worker *);
/* A peer holding more than its share of connections asks this worker to
 * accept what is queued now (it sends WHARF_ACCEPT_NUDGE_SIGNAL). */
#define WHARF_ACCEPT_NUDGE_SIGNAL SIGUSR2
void wharf_loop_accept_now(struct wharf_worker *);
void wharf_loop_run(struct wharf_worker *);
void wharf_loop_update_clock(struct wharf_worker *);
void wharf_loop_fire_timers_now(struct wharf_worker *);
void wharf_worker_begin_drain(struct wharf_worker *, const char *why);

/* request.c */
void wharf_request_run_app(struct wharf_request *); /* APP phase, any thread */
void wharf_request_finish_on_loop(struct wharf_worker *, void *req);

/* threadpool.c */
struct wharf_threadpool *wharf_threadpool_start(struct wharf_worker *, unsigned n);
void wharf_threadpool_submit(struct wharf_threadpool *, struct wharf_request *);
void wharf_threadpool_stop(struct wharf_threadpool *);

/* accesslog.c */
int wharf_accesslog_setup(struct wharf_server *);
void wharf_accesslog_write(struct wharf_request *, int64_t duration_us);
/* Write out this thread's buffered access lines (the loop does before it
 * waits; every other log line does first, to keep the order). */
void wharf_accesslog_flush(void);

/* Worker -> master messages over server->master_pipe. */
enum wharf_master_msg_type {
    WHARF_MSG_READY = 1,     /* worker accepting */
    WHARF_MSG_RECYCLE = 2,   /* worker asks to be replaced (max-requests) */
};
struct wharf_master_msg {
    uint32_t type;
    uint32_t slot;
    pid_t pid;
};
void wharf_worker_tell_master(struct wharf_worker *, enum wharf_master_msg_type);

#endif
