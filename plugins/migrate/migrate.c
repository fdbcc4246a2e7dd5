/*
 * plugins/migrate/migrate.c - schema migrations that run once, safely,
 * before a rolling update: the seed's Kubernetes migrate Job
 * (`wharf --ini app.ini --migrate`), optionally the master before workers
 * fork (`migrate-on-start`), and a readiness check that can hold traffic
 * back until the database is at the code's head revision.
 *
 * One migration run:
 *   1. wait for PostgreSQL with PQping and back-off, up to migrate-wait;
 *   2. take a session-level advisory lock on a fixed key on a dedicated
 *      connection (pg_try_advisory_lock in a loop, up to
 *      migrate-lock-timeout), so concurrent Jobs or replicas migrate once:
 *      the others wait, then find the database at head and change nothing;
 *   3. read alembic_version, run Alembic as a child (Debian's
 *      /usr/bin/python3, or migrate-command through /bin/sh -c) with the
 *      DSN in DATABASE_URL, its output passed through to the wharf log;
 *   4. read alembic_version again and log "migrated <old> -> <new>" or
 *      "already at head <rev>";
 *   5. unlock and close the connection, whatever happened (the server
 *      also drops a session lock when its connection goes away, so even a
 *      SIGKILLed wharf never leaves it held).
 *
 * The head revision (readiness, --migrate-status) is asked from Alembic's
 * own ScriptDirectory through a few lines of Python run once in setup:
 * parsing the scripts ourselves would break on merge revisions, tuple
 * down_revisions, typed `revision: str = ...` templates and custom
 * script templates.  Alembic knows its scripts; the C side only compares.
 *
 * Passwords never reach the log: every message (ours, libpq's, and each
 * line the child prints) goes through mask() first.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "wharf.h"

#define PYTHON "/usr/bin/python3"
/* pg_advisory_lock key: "wharfmig" as a big-endian int64 */
#define LOCK_KEY "8604242567853565287"
#define CHECK_DEADLINE_MS 2000
#define MAX_SECRETS 2

struct migrate_conf {
    char *dsn;             /* migrate-dsn */
    char *ini;             /* migrate-ini */
    char *dir;             /* migrate-dir */
    char *command;         /* migrate-command */
    bool on_start;         /* migrate-on-start */
    int64_t wait_ms;       /* migrate-wait */
    int64_t lock_ms;       /* migrate-lock-timeout */
    bool ready;            /* migrate-ready */
    bool run_now;          /* --migrate */
    bool status;           /* --migrate-status */
};

#define OPT(f) offsetof(struct migrate_conf, f)

static const struct wharf_option migrate_options[] = {
    { "migrate-dsn", WHARF_OPT_STRING, OPT(dsn), NULL,
      "PostgreSQL connection (libpq URI or key=value), usually $(DATABASE_URL)", 0, 0 },
    { "migrate-ini", WHARF_OPT_STRING, OPT(ini), NULL,
      "alembic.ini of the migrations (default: <migrate-dir>/alembic.ini when it exists)", 0, 0 },
    { "migrate-dir", WHARF_OPT_STRING, OPT(dir), NULL,
      "Alembic script directory (overrides script_location, as Flask-Migrate does)", 0, 0 },
    { "migrate-command", WHARF_OPT_STRING, OPT(command), NULL,
      "run this through /bin/sh -c instead of Alembic (e.g. 'flask db upgrade')", 0, 0 },
    { "migrate-on-start", WHARF_OPT_BOOL, OPT(on_start), "false",
      "migrate in the master before the workers start", 0, 0 },
    { "migrate-wait", WHARF_OPT_DURATION, OPT(wait_ms), "30",
      "how long to wait for the database to accept connections", 0, 86400000 },
    { "migrate-lock-timeout", WHARF_OPT_DURATION, OPT(lock_ms), "300",
      "how long to wait while another process holds the migration lock", 0, 86400000 },
    { "migrate-ready", WHARF_OPT_BOOL, OPT(ready), "false",
      "readiness fails until the database is at the head revision (or newer)", 0, 0 },
    { "migrate", WHARF_OPT_BOOL | WHARF_OPT_ACTION, OPT(run_now), "false",
      "(command line) run the migrations and exit 0, or 1 on failure", 0, 0 },
    { "migrate-status", WHARF_OPT_BOOL | WHARF_OPT_ACTION, OPT(status), "false",
      "(command line) print the current and head revisions and exit", 0, 0 },
    WHARF_OPTIONS_END
};

/* What setup learnt, inherited by the checker process. */
static struct {
    char *secret[MAX_SECRETS]; /* password as written and as decoded */
    char *display;             /* user@host:port/db, no password */
    char *url;                 /* DATABASE_URL for the child */
    char *ini;                 /* resolved migrate-ini (or NULL) */
    char *heads;               /* "rev" or "rev1,rev2" sorted; NULL unknown */
    char **revs;               /* every revision in the scripts */
    size_t nrevs;
} G;

/* ------------------------------------------------------------ util */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* SIGTERM/SIGINT/SIGQUIT arrived while we run in setup (the master keeps
 * them blocked for its signalfd, so they are pending, not lost): a Job
 * being deleted must not wait for the whole migrate-wait. */
static bool interrupted(void)
{
    sigset_t p;
    if (sigpending(&p) < 0)
        return false;
    return sigismember(&p, SIGTERM) == 1 || sigismember(&p, SIGINT) == 1 ||
           sigismember(&p, SIGQUIT) == 1;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        abort();
    return d;
}

/* Replace every secret in `in` by "***" into out (always terminated). */
static void mask(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    while (*in && o + 1 < cap) {
        size_t skip = 0;
        for (int i = 0; i < MAX_SECRETS && !skip; i++)
            if (G.secret[i] && G.secret[i][0] &&
                strncmp(in, G.secret[i], strlen(G.secret[i])) == 0)
                skip = strlen(G.secret[i]);
        if (skip) {
            for (const char *m = "***"; *m && o + 1 < cap; m++)
                out[o++] = *m;
            in += skip;
        } else {
            out[o++] = *in++;
        }
    }
    out[o] = '\0';
}

__attribute__((format(printf, 2, 3))) static void mlog(enum wharf_log_level lvl, const char *fmt,
                                                       ...)
{
    char raw[2048], safe[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    mask(raw, safe, sizeof safe);
    wharf_log(lvl, "migrate: %s", safe);
}

/* libpq messages are multi-line ("...failed: Connection refused\n\tIs the
 * server running..."): keep the first line, drop the "connection to
 * server at ... failed: " preamble, mask. */
static void short_reason(const char *msg, char *out, size_t cap)
{
    char line[512];
    const char *p = msg ? msg : "";
    const char *f = strstr(p, " failed: ");
    if (f && f < p + strcspn(p, "\n"))
        p = f + 9;
    size_t n = strcspn(p, "\n");
    if (n >= sizeof line)
        n = sizeof line - 1;
    memcpy(line, p, n);
    line[n] = '\0';
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (!n)
        snprintf(line, sizeof line, "unknown error");
    mask(line, out, cap);
}

static void quiet_notices(void *arg, const char *msg)
{
    (void)arg;
    char safe[512];
    short_reason(msg, safe, sizeof safe);
    wharf_log(WHARF_LOG_DEBUG, "migrate: server: %s", safe);
}

/* ------------------------------------------------------------ DSN */

static void pct_append(char **buf, size_t *len, size_t *cap, const char *s, bool keep_slash)
{
    for (; *s; s++) {
        if (*len + 4 >= *cap) {
            *cap = *cap * 2 + 64;
            *buf = realloc(*buf, *cap);
            if (!*buf)
                abort();
        }
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c) || (keep_slash && c == '/'))
            (*buf)[(*len)++] = (char)c;
        else
            *len += (size_t)sprintf(*buf + *len, "%%%02X", c);
    }
    (*buf)[*len] = '\0';
}

static void str_append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 >= *cap) {
        *cap = *cap * 2 + n + 64;
        *buf = realloc(*buf, *cap);
        if (!*buf)
            abort();
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

/* Parse the DSN once: the secrets to mask, a display form for messages
 * and the SQLAlchemy-style URL the child gets in DATABASE_URL (libpq takes
 * key=value strings and postgres:// URIs, SQLAlchemy wants postgresql://).
 * Returns 0, or -1 with a masked reason in err. */
static int parse_dsn(const char *dsn, char *err, size_t errcap)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &perr);
    if (!opts) {
        /* the text may quote the DSN: mask what we can find by hand */
        short_reason(perr ? perr : "invalid connection string", err, errcap);
        PQfreemem(perr);
        return -1;
    }
    const char *user = NULL, *pass = NULL, *host = NULL, *port = NULL, *db = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !o->val[0])
            continue;
        if (!strcmp(o->keyword, "user"))
            user = o->val;
        else if (!strcmp(o->keyword, "password"))
            pass = o->val;
        else if (!strcmp(o->keyword, "host"))
            host = o->val;
        else if (!strcmp(o->keyword, "port"))
            port = o->val;
        else if (!strcmp(o->keyword, "dbname"))
            db = o->val;
    }
    if (pass) {
        G.secret[0] = xstrdup(pass);
        /* as written in a URI: user:p%40ss@host */
        const char *at = strstr(dsn, "://") ? strchr(strstr(dsn, "://") + 3, '@') : NULL;
        if (at) {
            const char *start = strstr(dsn, "://") + 3;
            const char *colon = memchr(start, ':', (size_t)(at - start));
            if (colon && at > colon + 1)
                G.secret[1] = strndup(colon + 1, (size_t)(at - colon - 1));
        }
    }
    char disp[512];
    snprintf(disp, sizeof disp, "%s%s%s%s%s/%s", user ? user : "", user ? "@" : "",
             host ? host : "localhost", port ? ":" : "", port ? port : "", db ? db : "");
    G.display = xstrdup(disp);

    if (!strncmp(dsn, "postgresql://", 13)) {
        G.url = xstrdup(dsn);
    } else if (!strncmp(dsn, "postgres://", 11)) {
        size_t n = strlen(dsn) + 8;
        G.url = malloc(n);
        if (!G.url)
            abort();
        snprintf(G.url, n, "postgresql://%s", dsn + 11);
    } else {
        /* key=value: rebuild as a URI, every other parameter as a query
         * argument (SQLAlchemy's psycopg2 dialect passes them to libpq) */
        size_t len = 0, cap = 128;
        char *u = malloc(cap);
        if (!u)
            abort();
        u[0] = '\0';
        str_append(&u, &len, &cap, "postgresql://");
        if (user) {
            pct_append(&u, &len, &cap, user, false);
            if (pass) {
                str_append(&u, &len, &cap, ":");
                pct_append(&u, &len, &cap, pass, false);
            }
            str_append(&u, &len, &cap, "@");
        }
        bool host_is_path = host && host[0] == '/';
        if (host && !host_is_path)
            pct_append(&u, &len, &cap, host, false);
        if (port && !host_is_path) {
            str_append(&u, &len, &cap, ":");
            pct_append(&u, &len, &cap, port, false);
        }
        str_append(&u, &len, &cap, "/");
        if (db)
            pct_append(&u, &len, &cap, db, false);
        char sep = '?';
        for (PQconninfoOption *o = opts; o->keyword; o++) {
            if (!o->val || !o->val[0] || !strcmp(o->keyword, "user") ||
                !strcmp(o->keyword, "password") || !strcmp(o->keyword, "dbname") ||
                (!strcmp(o->keyword, "host") && !host_is_path) ||
                (!strcmp(o->keyword, "port") && !host_is_path))
                continue;
            char s[2] = { sep, 0 };
            str_append(&u, &len, &cap, s);
            str_append(&u, &len, &cap, o->keyword);
            str_append(&u, &len, &cap, "=");
            pct_append(&u, &len, &cap, o->val, true);
            sep = '&';
        }
        G.url = u;
    }
    PQconninfoFree(opts);
    return 0;
}

/* A blocking connection for the migration run (connect_timeout 10 s
 * unless the DSN says otherwise). */
static PGconn *connect_blocking(const char *dsn, char *err, size_t errcap)
{
    const char *k[] = { "connect_timeout", "fallback_application_name", "dbname", NULL };
    const char *v[] = { "10", "wharf-migrate", dsn, NULL };
    PGconn *c = PQconnectdbParams(k, v, 1);
    if (!c) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        short_reason(PQerrorMessage(c), err, errcap);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, quiet_notices, NULL);
    return c;
}

/* One-row, one-column query; returns a malloc'd value ("" for NULL), or
 * NULL with a reason. */
static char *query_value(PGconn *c, const char *sql, char *err, size_t errcap)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        short_reason(PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : PQerrorMessage(c),
                     err, errcap);
        PQclear(r);
        return NULL;
    }
    char *v = xstrdup(PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return v;
}

static const char *VERSION_EXISTS_SQL = "SELECT to_regclass('alembic_version') IS NOT NULL";
static const char *VERSION_SQL =
    "SELECT string_agg(version_num, ',' ORDER BY version_num COLLATE \"C\") FROM alembic_version";

/* The current revision(s), "" for an empty database; NULL on error. */
static char *read_version(PGconn *c, char *err, size_t errcap)
{
    char *exists = query_value(c, VERSION_EXISTS_SQL, err, errcap);
    if (!exists)
        return NULL;
    bool have = exists[0] == 't';
    free(exists);
    if (!have)
        return xstrdup("");
    return query_value(c, VERSION_SQL, err, errcap);
}

static const char *rev_or_base(const char *rev)
{
    return rev && rev[0] ? rev : "base";
}

/* ------------------------------------------------------------ waiting */

static int wait_for_database(struct migrate_conf *conf)
{
    const char *k[] = { "connect_timeout", "dbname", NULL };
    const char *v[] = { "5", conf->dsn, NULL };
    int64_t start = now_ms(), deadline = start + conf->wait_ms, backoff = 100;
    bool told = false;
    for (;;) {
        PGPing p = PQpingParams(k, v, 1);
        if (p == PQPING_OK) {
            if (told)
                mlog(WHARF_LOG_INFO, "database at %s is up (waited %.1f s)", G.display,
                     (double)(now_ms() - start) / 1000.0);
            return 0;
        }
        if (p == PQPING_NO_ATTEMPT) {
            mlog(WHARF_LOG_ERROR, "cannot connect to %s: invalid connection parameters",
                 G.display);
            return -1;
        }
        int64_t t = now_ms();
        if (t >= deadline || interrupted()) {
            char err[512];
            PGconn *c = connect_blocking(conf->dsn, err, sizeof err);
            if (c) { /* it came up just now */
                PQfinish(c);
                return 0;
            }
            mlog(WHARF_LOG_ERROR, "database at %s not reachable%s after %.1f s: %s", G.display,
                 interrupted() ? " (interrupted)" : "", (double)(t - start) / 1000.0, err);
            return -1;
        }
        if (!told) {
            /* one real attempt for the reason: a refused connection is
             * worth waiting for, a malformed parameter is not */
            char err[512];
            PGconn *c = connect_blocking(conf->dsn, err, sizeof err);
            if (c) {
                PQfinish(c);
                return 0;
            }
            if (!strncmp(err, "invalid ", 8)) {
                mlog(WHARF_LOG_ERROR, "cannot connect to %s: %s", G.display, err);
                return -1;
            }
            mlog(WHARF_LOG_INFO, "waiting for the database at %s (%s; up to %.0f s)", G.display,
                 p == PQPING_REJECT ? "it rejects connections, starting up?" : err,
                 (double)conf->wait_ms / 1000.0);
            told = true;
        }
        sleep_ms(backoff < deadline - t ? backoff : deadline - t);
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }
}

static int take_lock(PGconn *c, struct migrate_conf *conf)
{
    int64_t start = now_ms(), deadline = start + conf->lock_ms, backoff = 100;
    bool told = false;
    for (;;) {
        char err[512];
        char *got = query_value(c, "SELECT pg_try_advisory_lock(" LOCK_KEY ")", err, sizeof err);
        if (!got) {
            mlog(WHARF_LOG_ERROR, "cannot take the migration lock: %s", err);
            return -1;
        }
        bool ok = got[0] == 't';
        free(got);
        if (ok) {
            if (told)
                mlog(WHARF_LOG_INFO, "got the migration lock after %.1f s",
                     (double)(now_ms() - start) / 1000.0);
            return 0;
        }
        int64_t t = now_ms();
        if (t >= deadline || interrupted()) {
            mlog(WHARF_LOG_ERROR,
                 "another migration still holds the lock after %.1f s%s (migrate-lock-timeout)",
                 (double)(t - start) / 1000.0, interrupted() ? " (interrupted)" : "");
            return -1;
        }
        if (!told) {
            mlog(WHARF_LOG_INFO, "another migration holds the lock; waiting (up to %.0f s)",
                 (double)conf->lock_ms / 1000.0);
            told = true;
        }
        sleep_ms(backoff < deadline - t ? backoff : deadline - t);
        backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
    }
}

static void release_lock(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT pg_advisory_unlock(" LOCK_KEY ")");
    PQclear(r);
    PQfinish(c); /* closing the session drops the lock in any case */
}

/* ------------------------------------------------------------ child */

/* Few lines of Python against Alembic's own API: `heads` prints the head
 * revisions and every known revision, `upgrade` runs upgrade head.  Used
 * when a script directory is configured (migrate-dir, the Flask-Migrate
 * layout, where alembic.ini has no script_location), and always for
 * heads. */
static const char HELPER[] =
    "import sys\n"
    "from alembic.config import Config\n"
    "action, ini, d = sys.argv[1:4]\n"
    "cfg = Config(ini) if ini else Config()\n"
    "if d:\n"
    "    cfg.set_main_option('script_location', d)\n"
    "if action == 'heads':\n"
    "    from alembic.script import ScriptDirectory\n"
    "    s = ScriptDirectory.from_config(cfg)\n"
    "    print('WHARF-HEADS ' + ','.join(sorted(s.get_heads(), key=lambda h: h.encode())))\n"
    "    print('WHARF-REVS ' + ' '.join(r.revision for r in s.walk_revisions()))\n"
    "else:\n"
    "    from alembic import command\n"
    "    command.upgrade(cfg, 'head')\n";

struct child_out {
    const char *tag;     /* log prefix */
    char last_error[1024];
    char last_line[1024];
    char *heads, *revs;  /* helper markers */
};

static bool looks_like_error(const char *line)
{
    if (!strncmp(line, "FAILED:", 7) || !strncmp(line, "ERROR", 5) || strstr(line, "Error: ") ||
        strstr(line, "Exception: "))
        return true;
    /* "sqlalchemy.exc.ProgrammingError: (...)" */
    size_t n = strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.");
    return n > 5 && line[n] == ':' &&
           (strstr(line, "Error") || strstr(line, "Exception")) && strstr(line, "Error") < line + n;
}

static void on_line(struct child_out *out, char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
        line[--n] = '\0';
    if (!strncmp(line, "WHARF-HEADS ", 12)) {
        free(out->heads);
        out->heads = xstrdup(line + 12);
        return;
    }
    if (!strncmp(line, "WHARF-REVS ", 11)) {
        free(out->revs);
        out->revs = xstrdup(line + 11);
        return;
    }
    if (!n)
        return;
    char safe[1024];
    mask(line, safe, sizeof safe);
    wharf_log(WHARF_LOG_INFO, "migrate: %s: %s", out->tag, safe);
    snprintf(out->last_line, sizeof out->last_line, "%s", safe);
    if (looks_like_error(safe))
        snprintf(out->last_error, sizeof out->last_error, "%s", safe);
}

/* Run argv with its output read line by line into the log.  Returns the
 * exit status, or -1 (reason logged). */
static int run_child(char *const argv[], struct child_out *out)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        mlog(WHARF_LOG_ERROR, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        mlog(WHARF_LOG_ERROR, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        /* the master blocks its signals for a signalfd: give the child a
         * normal set, and make it die with us (a SIGKILLed wharf drops the
         * lock; a migration must not go on unlocked) */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        if (G.url)
            setenv("DATABASE_URL", G.url, 1);
        setenv("PYTHONUNBUFFERED", "1", 1);
        execv(argv[0], argv);
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    char buf[8192];
    size_t have = 0;
    bool term_sent = false;
    int64_t kill_at = 0;
    for (;;) {
        if (!term_sent && interrupted()) {
            mlog(WHARF_LOG_WARN, "stop requested: stopping the migration (pid %d)", (int)pid);
            kill(pid, SIGTERM);
            term_sent = true;
            kill_at = now_ms() + 10000;
        }
        if (term_sent && now_ms() >= kill_at) {
            kill(pid, SIGKILL);
            kill_at = INT64_MAX;
        }
        struct pollfd pfd = { fds[0], POLLIN, 0 };
        int r = poll(&pfd, 1, 200);
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        ssize_t n = read(fds[0], buf + have, sizeof buf - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        char *start = buf, *nl;
        while ((nl = memchr(start, '\n', have - (size_t)(start - buf)))) {
            *nl = '\0';
            on_line(out, start);
            start = nl + 1;
        }
        have -= (size_t)(start - buf);
        memmove(buf, start, have);
        if (have == sizeof buf - 1) { /* a very long line: log it in pieces */
            buf[have] = '\0';
            on_line(out, buf);
            have = 0;
        }
    }
    if (have) {
        buf[have] = '\0';
        on_line(out, buf);
    }
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    mlog(WHARF_LOG_ERROR, "%s killed by signal %d", out->tag, WTERMSIG(st));
    return -1;
}

/* The upgrade: `python3 -m alembic -c INI upgrade head` (the form every
 * Alembic user knows), the helper when a script directory is configured,
 * or the user's command. */
static int run_upgrade(struct migrate_conf *conf, struct child_out *out)
{
    if (conf->command) {
        char *argv[] = { "/bin/sh", "-c", conf->command, NULL };
        out->tag = "command";
        mlog(WHARF_LOG_INFO, "running: %s", conf->command);
        return run_child(argv, out);
    }
    out->tag = "alembic";
    if (!conf->dir) {
        char *argv[] = { PYTHON, "-m", "alembic", "-c", G.ini, "upgrade", "head", NULL };
        mlog(WHARF_LOG_INFO, "running: %s -m alembic -c %s upgrade head", PYTHON, G.ini);
        return run_child(argv, out);
    }
    char *argv[] = { PYTHON, "-c", (char *)HELPER, "upgrade", G.ini ? G.ini : "", conf->dir, NULL };
    mlog(WHARF_LOG_INFO, "running: alembic upgrade head (scripts in %s)", conf->dir);
    return run_child(argv, out);
}

/* Ask Alembic for the head revision(s) and all revisions.  0 or -1. */
static int load_heads(struct migrate_conf *conf, enum wharf_log_level lvl)
{
    struct child_out out = { .tag = "alembic" };
    char *argv[] = { PYTHON, "-c", (char *)HELPER, "heads", G.ini ? G.ini : "",
                     conf->dir ? conf->dir : "", NULL };
    int rc = run_child(argv, &out);
    if (rc != 0 || !out.heads) {
        mlog(lvl, "cannot read the head revision from the migration scripts%s%s",
             out.last_error[0] || out.last_line[0] ? ": " : "",
             out.last_error[0] ? out.last_error : out.last_line);
        free(out.heads);
        free(out.revs);
        return -1;
    }
    G.heads = out.heads;
    char *save = NULL;
    for (char *t = strtok_r(out.revs ? out.revs : (char *)"", " ", &save); t;
         t = strtok_r(NULL, " ", &save)) {
        G.revs = realloc(G.revs, (G.nrevs + 1) * sizeof *G.revs);
        if (!G.revs)
            abort();
        G.revs[G.nrevs++] = xstrdup(t);
    }
    free(out.revs);
    return 0;
}

/* ------------------------------------------------------------ runs */

/* One full migration run; 0 on success. */
static int migrate_run(struct migrate_conf *conf)
{
    if (wait_for_database(conf) < 0)
        return -1;
    char err[512];
    PGconn *c = connect_blocking(conf->dsn, err, sizeof err);
    if (!c) {
        mlog(WHARF_LOG_ERROR, "cannot connect to %s: %s", G.display, err);
        return -1;
    }
    if (take_lock(c, conf) < 0) {
        PQfinish(c);
        return -1;
    }
    int rc = -1;
    char *before = read_version(c, err, sizeof err), *after = NULL;
    if (!before) {
        mlog(WHARF_LOG_ERROR, "cannot read alembic_version: %s", err);
        goto out;
    }
    struct child_out out = { 0 };
    int64_t t0 = now_ms();
    int st = run_upgrade(conf, &out);
    free(out.heads);
    free(out.revs);
    after = read_version(c, err, sizeof err);
    if (st != 0) {
        mlog(WHARF_LOG_ERROR, "migration failed (%s %s%d) at revision %s: %s", out.tag,
             st < 0 ? "error" : "exit status ", st < 0 ? 0 : st,
             rev_or_base(after ? after : before),
             out.last_error[0] ? out.last_error : out.last_line[0] ? out.last_line : "no output");
        goto out;
    }
    if (!after) {
        mlog(WHARF_LOG_ERROR, "cannot read alembic_version after the upgrade: %s", err);
        goto out;
    }
    if (strcmp(before, after) != 0)
        mlog(WHARF_LOG_INFO, "migrated %s -> %s in %.1f s", rev_or_base(before),
             rev_or_base(after), (double)(now_ms() - t0) / 1000.0);
    else
        mlog(WHARF_LOG_INFO, "already at head %s", rev_or_base(after));
    rc = 0;
out:
    free(before);
    free(after);
    release_lock(c);
    return rc;
}

static bool rev_known(const char *rev)
{
    for (size_t i = 0; i < G.nrevs; i++)
        if (!strcmp(G.revs[i], rev))
            return true;
    return false;
}

enum state { AT_HEAD, BEHIND, AHEAD, UNKNOWN_HEAD };

/* Compare the current revision(s) with the scripts' head(s).  A database
 * NEWER than this code's head (a revision the scripts do not know) counts
 * as fine: additive-first migrations run before a rolling update, so the
 * old replicas must stay ready while the new schema is in place. */
static enum state compare(const char *cur)
{
    if (!G.heads)
        return UNKNOWN_HEAD;
    if (!strcmp(cur, G.heads))
        return AT_HEAD;
    if (!cur[0])
        return BEHIND;
    char *copy = xstrdup(cur), *save = NULL;
    bool all_known = true;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        all_known &= rev_known(t);
    free(copy);
    return all_known ? BEHIND : AHEAD;
}

static int migrate_status(struct migrate_conf *conf)
{
    if (load_heads(conf, WHARF_LOG_ERROR) < 0)
        return -1;
    char err[512];
    PGconn *c = connect_blocking(conf->dsn, err, sizeof err);
    if (!c) {
        mlog(WHARF_LOG_ERROR, "cannot connect to %s: %s", G.display, err);
        return -1;
    }
    char *cur = read_version(c, err, sizeof err);
    PQfinish(c);
    if (!cur) {
        mlog(WHARF_LOG_ERROR, "cannot read alembic_version: %s", err);
        return -1;
    }
    enum state s = compare(cur);
    printf("current: %s\nhead: %s\nstatus: %s\n", rev_or_base(cur), rev_or_base(G.heads),
           s == AT_HEAD ? "at head" : s == BEHIND ? "behind" : "ahead of these scripts");
    fflush(stdout);
    free(cur);
    return 0;
}

/* ------------------------------------------------------------ check */

static PGconn *chk;

static bool wait_fd(PGconn *c, bool write, int64_t deadline)
{
    int64_t left = deadline - now_ms();
    if (left <= 0)
        return false;
    struct pollfd pfd = { PQsocket(c), (short)(write ? POLLOUT : POLLIN), 0 };
    return poll(&pfd, 1, (int)left) > 0;
}

/* Non-blocking connect with our own deadline: connect_timeout has a 2 s
 * floor and counts per host; a check must stay short. */
static PGconn *check_connect(const char *dsn, int64_t deadline, char *err, size_t errcap)
{
    const char *k[] = { "dbname", "fallback_application_name", NULL };
    const char *v[] = { dsn, "wharf-readiness", NULL };
    PGconn *c = PQconnectStartParams(k, v, 1);
    if (!c || PQstatus(c) == CONNECTION_BAD) {
        short_reason(c ? PQerrorMessage(c) : "out of memory", err, errcap);
        PQfinish(c);
        return NULL;
    }
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    for (;;) {
        if (st == PGRES_POLLING_OK)
            break;
        if (st == PGRES_POLLING_FAILED) {
            short_reason(PQerrorMessage(c), err, errcap);
            PQfinish(c);
            return NULL;
        }
        if (!wait_fd(c, st == PGRES_POLLING_WRITING, deadline)) {
            snprintf(err, errcap, "timeout");
            PQfinish(c);
            return NULL;
        }
        st = PQconnectPoll(c);
    }
    PQsetNoticeProcessor(c, quiet_notices, NULL);
    return c;
}

static char *check_query(PGconn *c, const char *sql, int64_t deadline, char *err, size_t errcap)
{
    if (!PQsendQuery(c, sql)) {
        short_reason(PQerrorMessage(c), err, errcap);
        return NULL;
    }
    while (PQflush(c) == 1)
        if (!wait_fd(c, true, deadline))
            goto timeout;
    while (PQisBusy(c)) {
        if (!wait_fd(c, false, deadline))
            goto timeout;
        if (!PQconsumeInput(c)) {
            short_reason(PQerrorMessage(c), err, errcap);
            return NULL;
        }
    }
    char *v = NULL;
    PGresult *r;
    while ((r = PQgetResult(c))) {
        if (!v && PQresultStatus(r) == PGRES_TUPLES_OK)
            v = xstrdup(PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "");
        else if (!v)
            short_reason(PQresultErrorMessage(r), err, errcap);
        PQclear(r);
    }
    return v;
timeout:
    snprintf(err, errcap, "timeout");
    return NULL;
}

static char *check_version(PGconn *c, int64_t deadline, char *err, size_t errcap)
{
    char *exists = check_query(c, VERSION_EXISTS_SQL, deadline, err, errcap);
    if (!exists)
        return NULL;
    bool have = exists[0] == 't';
    free(exists);
    return have ? check_query(c, VERSION_SQL, deadline, err, errcap) : xstrdup("");
}

/* The checker process, once a second: one connection kept open and
 * replaced when lost; never more than ~2 s. */
static int migrate_check(void *confp, struct wharf_check *out)
{
    struct migrate_conf *conf = confp;
    if (!conf->dsn) {
        out->ok = true;
        snprintf(out->message, sizeof out->message, "no migrate-dsn");
        return WHARF_OK;
    }
    int64_t deadline = now_ms() + CHECK_DEADLINE_MS;
    char err[256] = "";
    char *cur = NULL;
    for (int attempt = 0; attempt < 2 && !cur; attempt++) {
        bool fresh = false;
        if (chk && PQstatus(chk) != CONNECTION_OK) {
            PQfinish(chk);
            chk = NULL;
        }
        if (!chk) {
            chk = check_connect(conf->dsn, deadline, err, sizeof err);
            if (!chk)
                break;
            fresh = true;
        }
        cur = check_version(chk, deadline, err, sizeof err);
        if (!cur) {
            PQfinish(chk); /* a server restart or a timeout: start over */
            chk = NULL;
            if (fresh)
                break;
        }
    }
    if (!cur) {
        out->ok = !conf->ready;
        snprintf(out->message, sizeof out->message, "unreachable: %s", err);
        return WHARF_OK;
    }
    switch (compare(cur)) {
    case AT_HEAD:
        out->ok = true;
        snprintf(out->message, sizeof out->message, "at head %s", rev_or_base(cur));
        break;
    case BEHIND:
        out->ok = !conf->ready;
        snprintf(out->message, sizeof out->message, "behind (%s < %s)", rev_or_base(cur),
                 G.heads);
        break;
    case AHEAD:
        out->ok = true;
        snprintf(out->message, sizeof out->message, "ahead (%s, newer than head %s)",
                 rev_or_base(cur), G.heads);
        break;
    case UNKNOWN_HEAD:
        out->ok = true;
        snprintf(out->message, sizeof out->message, "at %s", rev_or_base(cur));
        break;
    }
    free(cur);
    return WHARF_OK;
}

/* ------------------------------------------------------------ setup */

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int validate(struct wharf_server *s, struct migrate_conf *conf)
{
    bool acts = conf->run_now || conf->status || conf->on_start || conf->ready;
    if (!conf->dsn || !conf->dsn[0]) {
        if (acts || wharf_option_is_set(s, "migrate-ini") || wharf_option_is_set(s, "migrate-dir")) {
            wharf_config_error(wharf_option_origin(s, "migrate-dsn"), "migrate-dsn",
                               "a PostgreSQL connection string is needed (e.g. "
                               "migrate-dsn = $(DATABASE_URL))");
            return -1;
        }
        conf->dsn = NULL;
        return 0;
    }
    char err[512];
    if (parse_dsn(conf->dsn, err, sizeof err) < 0) {
        wharf_config_error(wharf_option_origin(s, "migrate-dsn"), "migrate-dsn",
                           "not a valid libpq connection string: %s", err);
        return -1;
    }
    if (conf->dir && !is_dir(conf->dir)) {
        wharf_config_error(wharf_option_origin(s, "migrate-dir"), "migrate-dir",
                           "'%s' is not a directory", conf->dir);
        return -1;
    }
    if (conf->ini) {
        if (!is_file(conf->ini)) {
            wharf_config_error(wharf_option_origin(s, "migrate-ini"), "migrate-ini",
                               "'%s' does not exist", conf->ini);
            return -1;
        }
        G.ini = xstrdup(conf->ini);
    } else if (conf->dir) {
        char p[4096];
        snprintf(p, sizeof p, "%s/alembic.ini", conf->dir);
        if (is_file(p))
            G.ini = xstrdup(p);
    }
    if (!conf->command && !conf->ini && !conf->dir && acts) {
        wharf_config_error(wharf_option_origin(s, "migrate-ini"), "migrate-ini",
                           "say where the migrations are: migrate-ini (alembic.ini), "
                           "migrate-dir (script directory) or migrate-command");
        return -1;
    }
    if ((conf->ready || conf->status) && !conf->ini && !conf->dir) {
        wharf_config_error(wharf_option_origin(s, conf->ready ? "migrate-ready" : "migrate-status"),
                           conf->ready ? "migrate-ready" : "migrate-status",
                           "needs migrate-ini or migrate-dir to know the head revision");
        return -1;
    }
    return 0;
}

static int migrate_setup(struct wharf_server *s, void *confp)
{
    struct migrate_conf *conf = confp;
    if (validate(s, conf) < 0)
        return WHARF_ERROR;
    if (wharf_server_check_only(s) || !conf->dsn)
        return WHARF_OK;
    if (conf->status)
        return migrate_status(conf) == 0 ? WHARF_EXIT : WHARF_ERROR;
    if (conf->run_now)
        return migrate_run(conf) == 0 ? WHARF_EXIT : WHARF_ERROR;
    if (conf->on_start && migrate_run(conf) < 0)
        return WHARF_ERROR;
    if (conf->ini || conf->dir) {
        /* the checker compares against these; without migrate-ready a
         * failure here only makes the check less precise */
        if (load_heads(conf, conf->ready ? WHARF_LOG_ERROR : WHARF_LOG_WARN) < 0 && conf->ready)
            return WHARF_ERROR;
    }
    return WHARF_OK;
}

WHARF_EXPORT const struct wharf_plugin wharf_plugin = {
    WHARF_PLUGIN_HEADER_INIT,
    .name = "migrate",
    .version = "1.0",
    .options = migrate_options,
    .config_size = sizeof(struct migrate_conf),
    .setup = migrate_setup,
    .check = migrate_check,
};
