/*
 * tests/fuzz/fuzz_ini.c - libFuzzer harness for the config reader (ini/).
 *
 * The reader takes file names, not buffers (includes, %d and @(file) need
 * a real path), so each input is written to one file whose name is fixed
 * for the process (/tmp/wharf-fuzz-ini-PID.ini, removed at exit) and read
 * twice: as ini and as yaml.  Each read is finished (all expansions) and
 * freed; ASan/UBSan and these checks catch the rest:
 *   - a failing call leaves a one-line, non-empty message;
 *   - a finished config has only complete entries.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iini \
 *       ini/[a-z]*.c tests/fuzz/fuzz_ini.c $(pkg-config --cflags --libs inih yaml-0.1) -o fuzz_ini
 *   ./fuzz_ini -dict=tests/fuzz/fuzz_ini.dict NEW_DIR tests/fuzz/corpus/ini
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../ini/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void remove_input(void)
{
    unlink(path);
}

static void check(const struct wharf_cfg *cfg, int rc)
{
    if (rc != 0) {
        if (rc != -1 || !cfg->error[0] || strchr(cfg->error, '\n'))
            abort();
        return;
    }
    for (size_t i = 0; i < cfg->count; i++) {
        const struct wharf_cfg_entry *e = &cfg->entries[i];
        if (!e->key || !*e->key || !e->value || !e->origin || e->source != WHARF_CFG_FILE)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/wharf-fuzz-ini-%ld.ini", (long)getpid());
        atexit(remove_input);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0)
            abort();
        done += (size_t)n;
    }
    close(fd);

    for (int yaml = 0; yaml < 2; yaml++) {
        struct wharf_cfg cfg;
        wharf_cfg_init(&cfg);
        int rc = wharf_cfg_load_file(&cfg, path, yaml, NULL);
        if (rc == 0)
            rc = wharf_cfg_finish(&cfg);
        check(&cfg, rc);
        wharf_cfg_free(&cfg);
    }
    return 0;
}
