/*
 * hello.c - a minimal out-of-tree wharf plugin: copy this directory, rename
 * "hello", and build with `make` (needs wharf.h and wharf.pc: wharf-dev).
 *
 * It shows the three things most plugins do:
 *   - options, declared in a table and filled by the core (never parsed here);
 *   - a request hook in the CONTENT phase answering one path from the event
 *     loop (it must not block);
 *   - a readiness check, run by the core's checker about once a second and
 *     shown by /healthz/ready (healthz plugin).
 *
 * Load it with `plugin = hello` (from plugins-dir, where `make install` puts
 * it), `plugin = /path/to/hello_plugin.so`, or just by using `hello-path`.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <wharf.h>

struct hello_conf {
    char *path;       /* hello-path */
    char *text;       /* hello-text */
    char *ready_file; /* hello-ready-file */
};

#define OPT(field) offsetof(struct hello_conf, field)

static const struct wharf_option hello_options[] = {
    { "hello-path", WHARF_OPT_STRING, OPT(path), "/hello",
      "path the hello plugin answers", 0, 0 },
    { "hello-text", WHARF_OPT_STRING, OPT(text), "hello from a plugin",
      "body of the answer", 0, 0 },
    { "hello-ready-file", WHARF_OPT_STRING, OPT(ready_file), NULL,
      "readiness fails while this file does not exist", 0, 0 },
    WHARF_OPTIONS_END
};

/* Master, once, after the config is read: reject bad values here, with the
 * option's origin (file:line), so --check-config catches them. */
static int hello_setup(struct wharf_server *s, void *conf)
{
    struct hello_conf *c = conf;
    if (c->path[0] != '/') {
        wharf_config_error(wharf_option_origin(s, "hello-path"), "hello-path",
                           "'%s' must start with '/'", c->path);
        return WHARF_ERROR;
    }
    return WHARF_OK;
}

/* Loop thread: answer our path, pass everything else on. */
static int hello_handle(struct wharf_request *r, void *conf)
{
    struct hello_conf *c = conf;
    size_t n = strlen(c->path);
    if (r->path_len != n || memcmp(r->path, c->path, n) != 0)
        return WHARF_DECLINED;
    char body[512];
    size_t len = (size_t)snprintf(body, sizeof body, "%s\n", c->text);
    if (len >= sizeof body)
        len = sizeof body - 1;
    if (wharf_response_simple(r, 200, "text/plain; charset=utf-8", body, len) < 0)
        return WHARF_ERROR;
    return WHARF_DONE;
}

/* The core's checker process, about once a second (may block briefly). */
static int hello_check(void *conf, struct wharf_check *check)
{
    struct hello_conf *c = conf;
    strcpy(check->name, "hello");
    check->ok = !c->ready_file || access(c->ready_file, F_OK) == 0;
    snprintf(check->message, sizeof check->message, "%s",
             check->ok ? "ok" : "waiting for the ready file");
    return WHARF_OK;
}

WHARF_EXPORT const struct wharf_plugin wharf_plugin = {
    WHARF_PLUGIN_HEADER_INIT,
    .name = "hello",
    .version = "1.0",
    .options = hello_options,
    .config_size = sizeof(struct hello_conf),
    .setup = hello_setup,
    .handle = hello_handle,
    .phases = WHARF_PHASE_BIT(WHARF_PHASE_CONTENT),
    .check = hello_check,
};
