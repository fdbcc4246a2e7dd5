/*
 * wharf.h - the public plugin API of the wharf application server.
 *
 * This header is the whole contract between the wharf core and its plugins,
 * in the spirit of redismodule.h: a plugin includes this file and nothing
 * else from wharf, and exports exactly one symbol:
 *
 *     WHARF_EXPORT const struct wharf_plugin wharf_plugin = {
 *         WHARF_PLUGIN_HEADER_INIT,
 *         .name = "hello", .version = "1.0",
 *         .options = hello_options, .config_size = sizeof(struct hello_conf),
 *         .handle = hello_handle,
 *         .phases = WHARF_PHASE_BIT(WHARF_PHASE_CONTENT),
 *     };
 *
 * Build it out of tree with
 *     cc -shared $(pkg-config --cflags wharf) -o hello_plugin.so hello.c
 * and load it with `plugin = hello` (looked up in `plugins-dir`) or by using
 * one of its options.
 *
 * Versioning.  WHARF_ABI_MAJOR changes when anything in this file changes in
 * an incompatible way (a field moves, a hook changes signature, a function is
 * removed).  WHARF_ABI_MINOR changes when something is added (new hooks go at
 * the end of struct wharf_plugin, new functions are appended).  The loader
 * reads the header first: a plugin with a different major is refused, and a
 * plugin built against a newer minor than the running core is refused too
 * (it may call functions this core lacks).  An older minor is accepted.
 *
 * Threads.  Each worker process runs one event-loop thread.  ROUTE, CONTENT,
 * RESPONSE and LOG handlers run on it and must not block.  APP handlers may
 * block: with `threads = 1` they run inline on the loop thread, with
 * `threads = N > 1` on one of N app threads.  Functions marked "any thread"
 * may be called from app threads; everything else is loop-thread (or master)
 * only.
 */
#ifndef WHARF_H
#define WHARF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <signal.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Versioning                                                               */
/* ------------------------------------------------------------------------ */

#define WHARF_ABI_MAJOR 1
#define WHARF_ABI_MINOR 1
#define WHARF_PLUGIN_MAGIC 0x46524857u /* "WHRF" little-endian */

#define WHARF_EXPORT __attribute__((visibility("default")))

/* Must be the first member of struct wharf_plugin.  The loader reads it
 * before touching anything else, so its layout never changes. */
struct wharf_plugin_header {
    uint32_t magic;       /* WHARF_PLUGIN_MAGIC */
    uint16_t abi_major;   /* WHARF_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor;   /* WHARF_ABI_MINOR the plugin was built with */
    uint32_t struct_size; /* sizeof(struct wharf_plugin) at build time */
};

#define WHARF_PLUGIN_HEADER struct wharf_plugin_header header
#define WHARF_PLUGIN_HEADER_INIT                                             \
    .header = { WHARF_PLUGIN_MAGIC, WHARF_ABI_MAJOR, WHARF_ABI_MINOR,         \
                (uint32_t)sizeof(struct wharf_plugin) }

/* ------------------------------------------------------------------------ */
/* Opaque core objects                                                      */
/* ------------------------------------------------------------------------ */

struct wharf_server;  /* the whole server; lives in the master and is
                         inherited by every worker */
struct wharf_worker;  /* the current worker process (loop thread + app
                         threads) */
struct wharf_request; /* one HTTP request, see below */

/* ------------------------------------------------------------------------ */
/* Options                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * A plugin declares its options in a table; the core allocates the plugin's
 * config struct (config_size bytes, zeroed), applies each option's default,
 * then every value from ini/yaml/env/command line, converting and
 * validating by type.  Field types by option type:
 *
 *   WHARF_OPT_STRING    char *            NULL when unset and no default
 *   WHARF_OPT_INT       long
 *   WHARF_OPT_BOOL      bool              true/false/1/0/yes/no/on/off;
 *                                         a bare `--flag` means true
 *   WHARF_OPT_SIZE      size_t            bytes: 65535, 64k, 8m, 1g (x1024)
 *   WHARF_OPT_DURATION  int64_t           milliseconds: "30" = 30 s (a bare
 *                                         number is seconds, as in uWSGI),
 *                                         "500ms", "2m", "1h"
 *   WHARF_OPT_ADDRESS   char *            "host:port", ":port", "[v6]:port"
 *                                         or a unix socket path (has a '/')
 *   WHARF_OPT_LIST      struct wharf_list repeatable key, one item per line
 *   WHARF_OPT_COMPAT    (no field)        accepted for uWSGI/gunicorn
 *                                         compatibility; `help` says why it
 *                                         is not needed ("always on")
 *   WHARF_OPT_ALIAS     (no field)        another name for the option named
 *                                         in `def`
 *
 * WHARF_OPT_ADDRESS may be or-ed with WHARF_OPT_LIST (a repeatable address)
 * and WHARF_OPT_LISTEN (the core binds it, see wharf_listen()).  BOOL may
 * carry WHARF_OPT_ACTION.
 * All strings are owned by the core and live until the process exits.
 * Values of type INT, SIZE and DURATION are range-checked against min/max
 * when max > min.
 */
enum wharf_option_type {
    WHARF_OPT_STRING = 1,
    WHARF_OPT_INT,
    WHARF_OPT_BOOL,
    WHARF_OPT_SIZE,
    WHARF_OPT_DURATION,
    WHARF_OPT_ADDRESS,
    WHARF_OPT_COMPAT,
    WHARF_OPT_ALIAS,
    WHARF_OPT_TYPE_MASK = 0xff,
    WHARF_OPT_LIST = 0x100,   /* flag: repeatable; field is struct wharf_list */
    WHARF_OPT_LISTEN = 0x200, /* flag on ADDRESS: a socket the core binds
                                 before privileges drop (see wharf_listen) */
    WHARF_OPT_ACTION = 0x400, /* flag on BOOL: a one-shot command-line
                                 action (`--migrate`).  When one is given the
                                 run is a job, not a server: nothing is bound,
                                 no pidfile is written, and only the plugins
                                 owning given actions run setup(), which
                                 returns WHARF_EXIT (exit 0) or WHARF_ERROR. */
};

struct wharf_list_item {
    const char *value;
    const char *origin; /* "app.ini:12", "env UWSGI_ROUTE", "command line" */
};

struct wharf_list {
    size_t count;
    const struct wharf_list_item *items;
};

struct wharf_option {
    const char *name;   /* as written in the ini: "http-socket" */
    unsigned type;      /* enum wharf_option_type, maybe | WHARF_OPT_LIST */
    size_t offset;      /* offsetof(struct my_conf, field) */
    const char *def;    /* default as text (parsed like a config value), or
                           NULL; for WHARF_OPT_ALIAS the target's name */
    const char *help;   /* one line for --help and the README */
    long long min, max; /* accepted range for INT/SIZE/DURATION (ms) when
                           max > min */
};

#define WHARF_OPTIONS_END { 0 }

/* ------------------------------------------------------------------------ */
/* Plugin descriptor                                                        */
/* ------------------------------------------------------------------------ */

/* Return values of hooks. */
enum {
    WHARF_OK = 0,
    WHARF_DECLINED = 0, /* handle(): not mine, try the next handler */
    WHARF_DONE = 1,     /* handle(): response produced (or started) */
    WHARF_ERROR = -1,   /* handle(): internal error, core answers 500;
                           other hooks: failure, reason already logged */
    WHARF_EXIT = 2,     /* setup(): the plugin did a one-shot job
                           (e.g. --migrate); stop here with exit status 0 */
};

/* Request phases, run in this order.  A plugin's `phases` is a bitmask of
 * WHARF_PHASE_BIT(x) for every phase its handle() wants to see; inside
 * handle(), wharf_request_phase() tells which one is running. */
enum wharf_phase {
    WHARF_PHASE_NONE = 0,
    WHARF_PHASE_ROUTE,    /* rewrite, redirect, break, add headers */
    WHARF_PHASE_CONTENT,  /* answered from the loop: healthz, static */
    WHARF_PHASE_APP,      /* may block: python; runs on app threads */
    WHARF_PHASE_RESPONSE, /* just before the response head is sent: may
                             add or remove response headers; any thread */
    WHARF_PHASE_LOG,      /* after the response is complete; loop thread */
};
#define WHARF_PHASE_BIT(p) (1u << (p))

struct wharf_check; /* see "Readiness checks" */

struct wharf_plugin {
    WHARF_PLUGIN_HEADER;
    const char *name;    /* "static": the file is static_plugin.so */
    const char *version;

    const struct wharf_option *options; /* terminated by WHARF_OPTIONS_END */
    size_t config_size;                 /* size of the plugin's config */

    /* Master, after all config is read, before binding privileges are
     * dropped and before workers fork.  Validate, open listeners, compile
     * regexes, load apps that are preloaded.  Return WHARF_OK, WHARF_ERROR
     * (after wharf_config_error/wharf_log) or WHARF_EXIT. */
    int (*setup)(struct wharf_server *, void *conf);

    /* Each worker process, after fork (and after each respawn). */
    int (*worker_start)(struct wharf_worker *, void *conf);

    /* Request hook for each phase in `phases`.  Returns WHARF_DECLINED,
     * WHARF_DONE or WHARF_ERROR (RESPONSE and LOG: the value is only
     * logged).  In ROUTE, CONTENT and LOG it must not block. */
    int (*handle)(struct wharf_request *, void *conf);
    unsigned phases;  /* WHARF_PHASE_BIT(WHARF_PHASE_CONTENT) | ... */

    /* Master, ten times a second (harakiri needs the precision): keep it
     * cheap and never block. */
    void (*tick)(struct wharf_server *, void *conf);

    /* Readiness check, run by the core's checker process about once a
     * second (never per probe).  Fill `check` and return WHARF_OK; the
     * result is shown by /healthz/ready.  May block for a short time. */
    int (*check)(void *conf, struct wharf_check *check);

    /* Each worker process, before it exits. */
    void (*worker_stop)(struct wharf_worker *, void *conf);

    /* Master, before it exits. */
    void (*teardown)(struct wharf_server *, void *conf);
};

/* ------------------------------------------------------------------------ */
/* Logging (any thread)                                                     */
/* ------------------------------------------------------------------------ */

enum wharf_log_level {
    WHARF_LOG_ERROR = 0,
    WHARF_LOG_WARN,
    WHARF_LOG_INFO,
    WHARF_LOG_DEBUG,
};

/* One line, prefixed with time, pid and level; a trailing newline is added.
 * Lines are written with one write(2) so concurrent processes never
 * interleave inside a line. */
WHARF_EXPORT void wharf_log(enum wharf_log_level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
WHARF_EXPORT void wharf_vlog(enum wharf_log_level, const char *fmt, va_list);
/* Raw text to the log as is (e.g. a traceback); may contain newlines. */
WHARF_EXPORT void wharf_log_raw(const char *text, size_t len);
/* The log's file descriptor, e.g. for Python's faulthandler. */
WHARF_EXPORT int wharf_log_fd(void);

/* A configuration error found in setup(): prints
 *     <origin>: <option>: <message>
 * (the same one-line form the core uses) and makes startup fail with exit
 * status 1 once setup() returns WHARF_ERROR.  `origin` is the item's origin
 * from struct wharf_list_item, or wharf_option_origin(). */
WHARF_EXPORT void wharf_config_error(const char *origin, const char *option,
                                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------ */
/* Server (master)                                                          */
/* ------------------------------------------------------------------------ */

/* Where the value of a (single-valued) option came from: "app.ini:12",
 * "env WHARF_PROCESSES", "command line" or "default".  Any option name of
 * any loaded plugin or of the core. */
WHARF_EXPORT const char *wharf_option_origin(struct wharf_server *,
                                             const char *option);
/* Whether the option was given explicitly (not just its default). */
WHARF_EXPORT bool wharf_option_is_set(struct wharf_server *,
                                      const char *option);

/* Where a list item stands among the items of every list option, in the
 * order the config gave them (files in reading order, then environment,
 * then command line).  For plugins whose list options form one ordered
 * table, as uWSGI's route, route-host, route-label... do: sort the items
 * of all of them by this number.  Master (setup); 0 when `item` is not an
 * item of a loaded list option.  ABI 1.1. */
WHARF_EXPORT uint64_t wharf_list_item_seq(struct wharf_server *,
                                          const struct wharf_list_item *item);

/* Number of worker processes and app threads per worker. */
WHARF_EXPORT unsigned wharf_server_processes(struct wharf_server *);
WHARF_EXPORT unsigned wharf_server_threads(struct wharf_server *);

/* The server is stopping (SIGTERM received): readiness must fail, even
 * while the sockets still accept during shutdown-delay.  Any process. */
WHARF_EXPORT bool wharf_server_stopping(struct wharf_server *);

/* True when the core runs a config check only (--check-config): setup()
 * must validate but not touch the network or start anything. */
WHARF_EXPORT bool wharf_server_check_only(struct wharf_server *);

/* Listening sockets.  The core owns them: it binds every value of options
 * flagged WHARF_OPT_LISTEN before dropping privileges (`uid`/`gid`) and
 * before any setup() runs (so apps are never imported as root), takes them
 * over from a previous master on reload/binary upgrade or from systemd
 * socket activation, applies `listen` (backlog) and `chmod-socket`, and
 * removes unix sockets on `vacuum`.  A protocol plugin claims one by
 * address in setup(); returns the listener index (>= 0) or -1 after
 * logging.  When a worker accepts a connection on it, `on_accept` runs on
 * the loop thread with the new non-blocking, close-on-exec socket, which
 * it then owns. */
struct sockaddr;
typedef void (*wharf_accept_fn)(struct wharf_worker *, int fd,
                                const struct sockaddr *peer,
                                unsigned peer_len, void *arg);
WHARF_EXPORT int wharf_listen(struct wharf_server *, const char *address,
                              wharf_accept_fn on_accept, void *arg);
/* The address text and the fd of listener `index` (for logging, getsockname) */
WHARF_EXPORT const char *wharf_listener_address(struct wharf_server *, int index);
WHARF_EXPORT int wharf_listener_fd(struct wharf_server *, int index);

/* ------------------------------------------------------------------------ */
/* Worker and event loop (loop thread unless noted)                         */
/* ------------------------------------------------------------------------ */

WHARF_EXPORT struct wharf_server *wharf_worker_server(struct wharf_worker *);
/* 1-based worker number (the uWSGI worker id). */
WHARF_EXPORT unsigned wharf_worker_id(struct wharf_worker *);
/* The worker is draining (graceful stop, reload, recycle): stop keeping
 * connections alive; the core exits the worker once no connection is left. */
WHARF_EXPORT bool wharf_worker_draining(struct wharf_worker *);

enum {
    WHARF_EV_READ = 1,
    WHARF_EV_WRITE = 2,
    WHARF_EV_ERROR = 4,      /* reported only: error or hang-up */
    WHARF_EV_NOT_CLIENT = 8, /* wharf_loop_add() flag: this fd is not a
                                client connection and does not keep a
                                draining worker alive */
};
typedef void (*wharf_event_fn)(struct wharf_worker *, int fd,
                               unsigned events, void *arg);

/* Watch `fd` for `events` (WHARF_EV_READ|WHARF_EV_WRITE, may be 0 to keep
 * the fd registered but quiet).  Level-triggered.  A client connection must
 * stay registered for as long as it is open, even while an app thread owns
 * it, because the worker counts registered connections to know when a
 * drain is over; other fds pass WHARF_EV_NOT_CLIENT.  A muted fd (events
 * 0) reports an error or hang-up once (edge-triggered), not on every
 * loop turn. */
WHARF_EXPORT int wharf_loop_add(struct wharf_worker *, int fd,
                                unsigned events, wharf_event_fn, void *arg);
WHARF_EXPORT int wharf_loop_mod(struct wharf_worker *, int fd,
                                unsigned events);
/* Unregister (before close). */
WHARF_EXPORT void wharf_loop_del(struct wharf_worker *, int fd);

/* Call `fn` every `interval_ms` on the loop thread, and once immediately
 * when the worker starts draining. */
typedef void (*wharf_timer_fn)(struct wharf_worker *, void *arg);
WHARF_EXPORT int wharf_loop_every(struct wharf_worker *, unsigned interval_ms,
                                  wharf_timer_fn, void *arg);

/* Run `fn(worker, arg)` on the loop thread soon.  Any thread. */
WHARF_EXPORT void wharf_loop_post(struct wharf_worker *, wharf_timer_fn,
                                  void *arg);

/* Cached clocks, updated once per loop iteration (cheap). */
WHARF_EXPORT int64_t wharf_now_ms(struct wharf_worker *);   /* monotonic */
/* The current IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), 29 chars. */
WHARF_EXPORT const char *wharf_http_date(struct wharf_worker *);

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

/* A header as received; name and value are NUL-terminated in place (the
 * lengths exclude the NUL).  Names keep their case as sent. */
struct wharf_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/*
 * A protocol plugin (http) fills the public part of a request and gives the
 * core a transport: how to read the body and how to write the response on
 * its connection.  The core runs the phases and calls the transport.
 */
struct wharf_transport {
    /* Read up to `len` body bytes (already de-chunked).  Returns the number
     * read, 0 at the end of the body, -1 on error or timeout (logged).
     * Blocks (with the transport's timeout) when the request is detached,
     * i.e. while APP handlers run. */
    ssize_t (*read_body)(struct wharf_request *, void *buf, size_t len);
    /* Send the response head (if not sent yet, from req->status and the
     * core's header list) followed by `iov`.  `last` marks the end of the
     * response (iov may then be empty).  Returns 0 or -1 (client gone).
     * Detached: may block until the data is written.  Attached (loop
     * thread): must not block; queue what the socket does not take. */
    int (*write)(struct wharf_request *, const struct iovec *iov, int iovcnt,
                 bool last);
    /* Send `len` bytes of `fd` from `offset` (sendfile).  The transport
     * calls release(arg) once done with the fd, whatever the outcome. */
    int (*sendfile)(struct wharf_request *, int fd, off_t offset, size_t len,
                    void (*release)(void *), void *arg);
    /* The request moves to an app thread (or runs blocking inline): the
     * transport stops reacting to loop events for this connection and
     * switches to blocking I/O.  Loop thread. */
    void (*detach)(struct wharf_request *);
    /* The response is complete and the core ran LOG handlers: free the
     * request, go on with the connection (keep-alive) or close it.  Loop
     * thread. */
    void (*done)(struct wharf_request *);
};

struct wharf_request {
    struct wharf_worker *worker;
    const struct wharf_transport *transport;
    void *transport_data;            /* the protocol plugin's connection */

    /* Request line, NUL-terminated.  `uri` is the raw request-target as
     * sent; `path` is its percent-decoded path (PATH_INFO, no query) and
     * `query` the raw query string without '?' ("" when none).  ROUTE
     * handlers may repoint path/query (rewrite) at wharf_request_alloc()
     * memory. */
    const char *method;   size_t method_len;
    const char *uri;      size_t uri_len;
    const char *path;     size_t path_len;
    const char *query;    size_t query_len;
    const char *protocol;            /* "HTTP/1.1" */
    int version;                     /* 10 or 11 */

    struct wharf_header *headers;
    size_t header_count;

    /* Body: content_length >= 0 when known; -1 when chunked. */
    int64_t content_length;

    /* Peer and server, NUL-terminated text.  remote_addr honours
     * X-Forwarded-For when the peer is trusted (forwarded-allow-ips). */
    const char *remote_addr;
    unsigned remote_port;
    const char *server_name;
    unsigned server_port;
    const char *scheme;              /* "http" or "https" */

    /* Set by the core. */
    const char *request_id;          /* X-Request-ID given or generated */
    int64_t start_ns;                /* CLOCK_MONOTONIC at request start */

    /* The connection must close after this response: set by the protocol
     * plugin from the request (Connection: close, HTTP/1.0), by the core
     * when the worker drains or the response was cut short. */
    bool close_connection;

    /* Response state, maintained by the core's response functions. */
    int status;                      /* 0 until wharf_response_start() */
    bool head_sent;                  /* the transport wrote the head */
    bool head_only;                  /* HEAD request: no body is sent */
    int64_t response_length;         /* Content-Length given, or -1 */
    uint64_t bytes_sent;             /* body bytes handed to the transport */
};

/* The phase whose handlers are running for this request. */
WHARF_EXPORT enum wharf_phase wharf_request_phase(const struct wharf_request *);

/* Header lookup, case-insensitive; NULL when absent.  `len` may be NULL. */
WHARF_EXPORT const char *wharf_request_header(const struct wharf_request *,
                                              const char *name, size_t *len);

/* Memory that lives as long as the request.  Any thread (the thread that
 * currently runs the request). */
WHARF_EXPORT void *wharf_request_alloc(struct wharf_request *, size_t size);
WHARF_EXPORT char *wharf_request_strndup(struct wharf_request *,
                                         const char *s, size_t len);

/* Read the request body (see struct wharf_transport.read_body). */
WHARF_EXPORT ssize_t wharf_request_read(struct wharf_request *, void *buf,
                                        size_t len);

/*
 * Request variables: named values a plugin attaches to a request for
 * others, without the plugins knowing each other.  The python plugin puts
 * each of them in the WSGI environ as "wharf.<name>".
 *
 * A plain variable is a string.  A lazy variable is backed by callbacks,
 * for values that are expensive to get (a session in Redis): load() runs
 * on first use only, store() only when the user changed the value.  Both
 * run on the thread that runs the request.
 */
WHARF_EXPORT int wharf_request_var_set(struct wharf_request *,
                                       const char *name, const char *value,
                                       size_t len);
WHARF_EXPORT const char *wharf_request_var_get(struct wharf_request *,
                                               const char *name, size_t *len);

enum {
    WHARF_VAR_DELETE = 1,     /* store(): drop the value (logout) */
    WHARF_VAR_REGENERATE = 2, /* store(): keep the value under a new id */
};
struct wharf_lazy_var_ops {
    /* Fill *value and *len (memory from wharf_request_alloc), return 0;
     * return 1 when there is no value yet, -1 when the backend failed (the
     * user then sees an empty value that is not saved). */
    int (*load)(struct wharf_request *, void *data, const char **value,
                size_t *len);
    /* Save `value`; flags as above.  Return 0 or -1 (logged). */
    int (*store)(struct wharf_request *, void *data, const char *value,
                 size_t len, unsigned flags);
};
WHARF_EXPORT int wharf_request_lazy_var_set(struct wharf_request *,
                                            const char *name,
                                            const struct wharf_lazy_var_ops *,
                                            void *data);
/* Iterate over all variables: index 0, 1, ... until it returns false.
 * Exactly one of *value (plain) or *ops (lazy) is set. */
WHARF_EXPORT bool wharf_request_var_at(struct wharf_request *, size_t index,
                                       const char **name, const char **value,
                                       size_t *value_len,
                                       const struct wharf_lazy_var_ops **ops,
                                       void **data);

/* ------------------------------------------------------------------------ */
/* Responses (any thread: the one running the request)                     */
/* ------------------------------------------------------------------------ */

/* Begin the response.  `reason` NULL gives the standard phrase.  Headers
 * added before this call (e.g. by ROUTE `addheader`) are kept. */
WHARF_EXPORT int wharf_response_start(struct wharf_request *, int status,
                                      const char *reason);
/* Add a response header (copied).  Before the head is sent only. */
WHARF_EXPORT int wharf_response_header(struct wharf_request *,
                                       const char *name, size_t name_len,
                                       const char *value, size_t value_len);
/* Remove every response header with this name; returns how many. */
WHARF_EXPORT int wharf_response_header_del(struct wharf_request *,
                                           const char *name);
/* Look up / iterate response headers (case-insensitive). */
WHARF_EXPORT const char *wharf_response_header_get(struct wharf_request *,
                                                   const char *name,
                                                   size_t *len);
WHARF_EXPORT bool wharf_response_header_at(struct wharf_request *,
                                           size_t index,
                                           struct wharf_header *out);
/* Reason phrase used for a status ("Not Found"); never NULL. */
WHARF_EXPORT const char *wharf_status_reason(int status);
/* The reason phrase of this response (as given to wharf_response_start,
 * or the standard one): for transports writing the status line. */
WHARF_EXPORT const char *wharf_response_reason(struct wharf_request *);

/* Body.  The first write (or end) runs the RESPONSE phase and sends the
 * head.  Returns 0, or -1 when the client is gone (stop producing). */
WHARF_EXPORT int wharf_response_write(struct wharf_request *, const void *,
                                      size_t len);
WHARF_EXPORT int wharf_response_writev(struct wharf_request *,
                                       const struct iovec *, int iovcnt);
WHARF_EXPORT int wharf_response_sendfile(struct wharf_request *, int fd,
                                         off_t offset, size_t len,
                                         void (*release)(void *), void *arg);
/* Finish the response (sends the head if needed).  After this the request
 * belongs to the core again: do not touch it. */
WHARF_EXPORT int wharf_response_end(struct wharf_request *);

/* A complete small response in one call: status, optional content type and
 * body (copied), then end.  For errors, `break:200`, health probes. */
WHARF_EXPORT int wharf_response_simple(struct wharf_request *, int status,
                                       const char *content_type,
                                       const char *body, size_t len);

/* Protocol plugins only.  wharf_request_new() allocates a zeroed request
 * (the core keeps private state behind the public part); the plugin fills
 * the public fields (they may point into its read buffer, which must stay
 * valid until done()) and calls wharf_request_process() on the loop thread.
 * The core calls transport->done() when everything is over (possibly later,
 * from the loop thread); done() ends with wharf_request_free(). */
WHARF_EXPORT struct wharf_request *wharf_request_new(
    struct wharf_worker *, const struct wharf_transport *, void *transport_data);
WHARF_EXPORT void wharf_request_process(struct wharf_request *);
WHARF_EXPORT void wharf_request_free(struct wharf_request *);

/* ------------------------------------------------------------------------ */
/* Readiness checks and metrics                                             */
/* ------------------------------------------------------------------------ */

#define WHARF_CHECK_NAME_MAX 32
#define WHARF_CHECK_MESSAGE_MAX 160

struct wharf_check {
    char name[WHARF_CHECK_NAME_MAX];       /* "postgres", "redis" */
    bool ok;
    uint32_t latency_ms;
    char message[WHARF_CHECK_MESSAGE_MAX]; /* "at head", "connection refused" */
};

/* Latest cached results (healthz): returns how many checks exist and copies
 * up to `max` of them.  Any process.  A check not run yet is failed ("not
 * checked yet"); so is a result older than WHARF_CHECK_STALE_MS (the
 * checker is stuck), whatever it said. */
#define WHARF_CHECK_STALE_MS 5000
WHARF_EXPORT size_t wharf_checks(struct wharf_server *, struct wharf_check *out,
                                 size_t max);
/* The app is loaded in this worker (python sets it; healthz reads it).
 * A server without any APP-phase plugin counts as loaded. */
WHARF_EXPORT void wharf_worker_set_app_ready(struct wharf_worker *, bool);
WHARF_EXPORT bool wharf_worker_app_ready(struct wharf_worker *);

/* Plugin counters, shown by /metrics as wharf_<name>_total.  Register in
 * setup() (master); returns an id, or -1.  Add from any worker thread. */
WHARF_EXPORT int wharf_metric_register(struct wharf_server *, const char *name,
                                       const char *help);
WHARF_EXPORT void wharf_metric_add(struct wharf_worker *, int id,
                                   uint64_t delta);

/* ------------------------------------------------------------------------ */
/* Scoreboard (read by the master's tick and by /metrics)                   */
/* ------------------------------------------------------------------------ */

enum wharf_worker_state {
    WHARF_WORKER_EMPTY = 0,  /* slot unused */
    WHARF_WORKER_STARTING,
    WHARF_WORKER_READY,      /* accepting */
    WHARF_WORKER_DRAINING,
    WHARF_WORKER_STOPPED,
};

#define WHARF_URI_MAX 128
/* One app thread's current request (thread 0 is the loop thread). */
struct wharf_slot_request {
    int64_t start_ns;     /* CLOCK_MONOTONIC; 0 when idle */
    char method[12];
    char uri[WHARF_URI_MAX];
};

/* Upper bounds (ms) of the request latency histogram buckets; the last
 * bucket counts everything slower (+Inf). */
#define WHARF_LATENCY_BUCKETS_MS \
    { 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000 }
#define WHARF_LATENCY_BUCKETS 13

/* A copy of one worker's scoreboard entry. */
struct wharf_worker_info {
    pid_t pid;
    enum wharf_worker_state state;
    unsigned generation;      /* config generation the worker runs */
    int64_t started_ns;       /* CLOCK_MONOTONIC */
    uint64_t requests;        /* served by this process */
    uint64_t rss_bytes;       /* last sample by the master */
    unsigned in_flight;       /* requests being processed now */
    unsigned connections;     /* open client connections */
    /* Cumulative for this slot across respawns (Prometheus counters must
     * not go back when a worker is replaced). */
    uint64_t total_requests;
    uint64_t status_class[6]; /* [1]..[5] = 1xx..5xx, [0] = other */
    uint64_t latency_bucket[WHARF_LATENCY_BUCKETS];
    uint64_t latency_sum_us;
    uint64_t bytes_sent;
    uint64_t respawns;        /* times this slot's worker was replaced */
};

/* Scoreboard slot `index` (0-based); false when out of range.  There are
 * 2 x processes slots: slots 2N-2 and 2N-1 belong to worker N (the one
 * serving and, during a replacement, the one starting beside it). */
WHARF_EXPORT bool wharf_worker_info(struct wharf_server *, unsigned index,
                                    struct wharf_worker_info *out);
/* App thread `thread` of worker `index`; false when out of range. */
WHARF_EXPORT bool wharf_worker_request(struct wharf_server *, unsigned index,
                                       unsigned thread,
                                       struct wharf_slot_request *out);
/* Master: ask worker `index` to dump its application stack to the log
 * (SIGURG, see WHARF_SIGNAL_STACKDUMP), or to stop: gracefully (drain) or
 * at once (SIGKILL).  The master respawns it. */
#define WHARF_SIGNAL_STACKDUMP SIGURG
WHARF_EXPORT int wharf_worker_dump_stack(struct wharf_server *, unsigned index);
WHARF_EXPORT int wharf_worker_stop(struct wharf_server *, unsigned index,
                                   bool graceful, const char *reason);
/* Master: count an event in a plugin counter outside any worker (e.g.
 * harakiri kills, counted by the master). */
WHARF_EXPORT void wharf_metric_add_server(struct wharf_server *, int id,
                                          uint64_t delta);
/* Plugin counters, summed over workers and master: false past the end. */
WHARF_EXPORT bool wharf_metric_at(struct wharf_server *, size_t index,
                                  const char **name, const char **help,
                                  uint64_t *value);

#ifdef __cplusplus
}
#endif

#endif /* WHARF_H */
