/* core/main.c - `wharf`: read the config, then act (help, version,
 * show-config, check-config) or run the master. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static void print_version(struct wharf_server *s)
{
#if defined(__SANITIZE_ADDRESS__)
    const char *alloc = "AddressSanitizer (sanitizer build)";
#elif defined(WHARF_WITH_JEMALLOC)
    const char *alloc = "jemalloc " WHARF_JEMALLOC_VERSION;
#else
    const char *alloc = "glibc malloc";
#endif
    printf("wharf %s (plugin ABI %d.%d, allocator: %s)\n", PACKAGE_VERSION, WHARF_ABI_MAJOR,
           WHARF_ABI_MINOR, alloc);
    printf("plugins-dir: %s\n", s->conf.plugins_dir);
}

int main(int argc, char **argv)
{
    static struct wharf_server server;
    struct wharf_server *s = &server;
    s->sb_fd = -1;
    s->master_pipe[0] = s->master_pipe[1] = -1;

    int rc = wharf_config_load(s, argc, argv, environ);
    if (rc == 1)
        return 1;
    if (s->conf.help) {
        wharf_config_print_help(s, stdout);
        return 0;
    }
    if (s->conf.version) {
        print_version(s);
        return 0;
    }
    if (s->conf.show_config) {
        wharf_config_show(s, stdout);
        return 0;
    }
    if (wharf_log_open(s->conf.logto) < 0)
        return 1;
    s->check_only = s->conf.check_config;
    return wharf_master_run(s);
}
