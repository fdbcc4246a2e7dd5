/*
 * ini/cfg_internal.h - what the pieces of the config reader share
 * (config.c, blocks.c, expand.c, ini_reader.c, yaml_reader.c).  Not for the core:
 * the core only sees ini/cfg.h.
 */
#ifndef WHARF_INI_CFG_INTERNAL_H
#define WHARF_INI_CFG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cfg.h"

/* Limits.  None of them truncates anything: passing one is an error that
 * says which limit was hit.  They exist so that a hostile or broken input
 * (an include of /dev/zero, a placeholder that doubles at every level, a
 * `for-times = 999999999`) fails fast instead of eating the machine. */
#define WHARF_CFG_MAX_INCLUDE_DEPTH 32      /* files open inside each other */
#define WHARF_CFG_MAX_ITEMS 100000          /* entries + placeholders */
#define WHARF_CFG_MAX_VALUE (1024 * 1024)   /* one line, one value, one @(file) */
#define WHARF_CFG_MAX_NESTING 100           /* $( @( %( inside each other, placeholder chains */
#define WHARF_CFG_MAX_LOOP 10000            /* iterations of one for block */

#define WHARF_CFG_NONE ((size_t)-1)

/* One loaded config file.  Kept until wharf_cfg_free() because every item
 * read from it points here for its magic variables (%d, %n...), which are
 * expanded in wharf_cfg_finish(), long after the file was closed. */
struct cfg_file {
    struct cfg_file *next; /* list of all files, for freeing */
    char *display;         /* path as given or resolved; origins use it (%o) */
    char *real;            /* realpath(), for include cycle detection */
    char *section;         /* the section asked with file:section, or NULL */
    char *abs;             /* %p: absolute path, the file's own name kept */
    char *dir;             /* %d: absolute directory, with a trailing '/' */
    const char *name;      /* %s: points into abs */
    char *stem;            /* %n */
    const char *ext;       /* %e: points into name, "" without extension */
    char *dirname;         /* %c: last component of dir */
    bool yaml;
};

/* One key = value as read.  Items are the reader's ordered list: the public
 * entries plus the placeholder-only definitions (set-placeholder), which
 * take part in the "first value of a key" rule but are no option. */
struct cfg_item {
    char *key;
    char *raw;                   /* value before $( @( %( and magic expansion */
    char *origin;
    const struct cfg_file *file; /* NULL for env and command line */
    char *section;               /* %x; NULL outside files */
    size_t entry;                /* index in cfg->entries, or WHARF_CFG_NONE */
    bool done;                   /* value is expanded (cycles are found on
                                    the expansion stack, not here) */
    char *value;                 /* expanded value, once done */
};

/* Hash of keys to the first item with that key (%(key) lookups) and
 * whether some %(key) used it (placeholder_used). */
struct cfg_slot {
    size_t item; /* WHARF_CFG_NONE when empty */
    bool used;
};

struct wharf_cfg_priv {
    struct cfg_item *items;
    size_t nitems, items_cap;
    size_t entries_cap;
    struct cfg_slot *slots;
    size_t nslots, slots_used;
    struct cfg_file *files;           /* every file loaded */
    const struct cfg_file *first;     /* first top-level file: %O %P %S %D ... */
    const struct cfg_file *last_top;  /* for `--ini :section` */
    bool finished;
    /* host magic variables, filled on first use */
    long long start_sec, start_usec;  /* %t %T: taken by wharf_cfg_init() */
    char *hostname, *user, *group, *cwd, *binary;
};

/* The state of one file being read; the readers fill `section` and call
 * wharf_cfg_file_pair() for each key. */
struct cfg_load {
    struct wharf_cfg *cfg;
    struct cfg_file *file;
    struct cfg_load *includer;  /* the file that included this one, or NULL */
    unsigned depth;             /* 1 for a top-level file */
    char *section;              /* section being read (%x), set by
                                   wharf_cfg_section_begin() */
    bool found;                 /* a wanted section was seen */
    char *seen;                 /* "[a], [b]": sections seen, for errors */
    size_t seen_len;
    /* the open for/if block, if any (uWSGI's logic options) */
    char *block_key;
    unsigned long block_line;
    char **block_vals;          /* one emission per element; a NULL element
                                   emits the line without %(_) substitution */
    size_t block_nvals;
};

/* Growing string; `len` excludes the terminating NUL that is always kept. */
struct cfg_buf {
    char *s;
    size_t len, cap;
};

/* config.c */
int wharf_cfg_fail(struct wharf_cfg *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int wharf_cfg_oom(struct wharf_cfg *);
int wharf_cfg_buf_add(struct cfg_buf *, const char *, size_t);
bool wharf_cfg_section_begin(struct cfg_load *, const char *name);
int wharf_cfg_read_line(FILE *, struct cfg_buf *, bool *too_long);
char *wharf_cfg_resolve(const char *base_dir, const char *path);
int wharf_cfg_pair(struct wharf_cfg *, struct cfg_load *, const char *key, const char *value,
                   const char *origin, enum wharf_cfg_source);
size_t wharf_cfg_lookup(const struct wharf_cfg *, const char *key);
void wharf_cfg_mark_used(struct wharf_cfg *, const char *key);

/* blocks.c: every key a reader finds in a wanted section (`value` NULL
 * for a bare key), for/if blocks */
int wharf_cfg_file_pair(struct cfg_load *, const char *key, const char *value,
                        unsigned long line);
bool wharf_cfg_is_block_key(const char *key);
void wharf_cfg_block_clear(struct cfg_load *);

/* ini_reader.c, yaml_reader.c: read one file into wharf_cfg_file_pair() */
int wharf_cfg_read_ini(struct cfg_load *, FILE *);
int wharf_cfg_read_yaml(struct cfg_load *, FILE *);

/* expand.c */
int wharf_cfg_expand_now(struct wharf_cfg *, const struct cfg_file *,
                         const char *section, const char *origin,
                         const char *in, char **out);
int wharf_cfg_expand_all(struct wharf_cfg *);
void wharf_cfg_free_host(struct wharf_cfg_priv *);
const char *wharf_cfg_hostname(struct wharf_cfg *); /* NULL when out of memory */

#endif
