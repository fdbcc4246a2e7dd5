/* core/log.c - the server log: one line per write(2), so lines from the
 * master, workers and app threads never interleave inside a line. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;
static char *log_path;
static char log_role[32] = "wharf";
int wharf_log_level_max = WHARF_LOG_INFO;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

int wharf_log_open(const char *logto)
{
    if (!logto || !*logto)
        return 0;
    int fd = open(logto, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        fprintf(stderr, "wharf: logto: cannot open '%s': %s\n", logto, strerror(errno));
        return -1;
    }
    /* Keep fd 2 pointing at the log too, so that whatever a library or the
     * app prints to stderr lands in the same place (as uWSGI does). */
    if (dup2(fd, 2) < 0) {
        close(fd);
        return -1;
    }
    close(fd);
    log_fd = 2;
    free(log_path);
    log_path = wharf_xstrdup(logto);
    return 0;
}

void wharf_log_reopen(void)
{
    if (log_path)
        wharf_log_open(log_path);
}

void wharf_log_set_role(const char *role)
{
    snprintf(log_role, sizeof log_role, "%s", role);
}

WHARF_EXPORT int wharf_log_fd(void)
{
    return log_fd;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

void wharf_log_write(const char *text, size_t len)
{
    write_all(log_fd, text, len);
}

WHARF_EXPORT void wharf_log_raw(const char *text, size_t len)
{
    wharf_accesslog_flush();
    write_all(log_fd, text, len);
}

WHARF_EXPORT void wharf_vlog(enum wharf_log_level level, const char *fmt, va_list ap)
{
    if ((int)level > wharf_log_level_max)
        return;
    char line[4096];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, ".%03d [%s %d] %s: ",
                  (int)(tv.tv_usec / 1000), log_role, (int)getpid(),
                  level_names[level <= WHARF_LOG_DEBUG ? level : WHARF_LOG_DEBUG]);
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* long message: cut, the line stays whole */
    line[len++] = '\n';
    wharf_accesslog_flush();
    write_all(log_fd, line, len);
}

WHARF_EXPORT void wharf_log(enum wharf_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wharf_vlog(level, fmt, ap);
    va_end(ap);
}

/* Config errors are the user's first contact with wharf: print them bare,
 * without the log prefix, exactly "<origin>: <option>: <message>". */
WHARF_EXPORT void wharf_config_error(const char *origin, const char *option,
                                     const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char line[2600];
    int n;
    if (option && *option)
        n = snprintf(line, sizeof line, "%s: %s: %s\n", origin ? origin : "wharf", option, msg);
    else
        n = snprintf(line, sizeof line, "%s: %s\n", origin ? origin : "wharf", msg);
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    write_all(2, line, (size_t)n);
}
