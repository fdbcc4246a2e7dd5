/*
 * plugins/static/static_cache.h - the static plugin's open-file cache, one
 * per worker (nginx's open_file_cache, uWSGI's static-cache-paths): a hot
 * file costs no open() and no stat() per request.
 *
 * An entry is keyed by the filesystem path asked for and remembers what
 * opening it gave: a regular file (kept open, with its stat and canonical
 * path), a directory, nothing, or a refusal.  Entries are trusted for `ttl`
 * milliseconds; after that one stat() tells whether the same file is still
 * there (same device, inode, size and mtime) or it must be opened again.
 * The least recently used entries are dropped beyond `max` entries.
 *
 * Reference counts: the table holds one reference, and every response
 * sending the file holds one until the transport releases it, so an entry
 * dropped from the table (or replaced) is closed only once nobody sends
 * from it.  Single-threaded: the worker's loop thread only.  libc only.
 */
#ifndef WHARF_STATIC_CACHE_H
#define WHARF_STATIC_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum st_kind {
    ST_MISSING,  /* ENOENT, ENOTDIR, ENAMETOOLONG, ELOOP */
    ST_FILE,     /* a regular file, open */
    ST_DIR,      /* a directory (not kept open) */
    ST_OTHER,    /* a FIFO, socket or device: never served */
    ST_NOACCESS, /* EACCES/EPERM */
};

struct st_file {
    /* cache bookkeeping, private */
    struct st_file *hnext, *lru_prev, *lru_next;
    uint32_t hash;
    unsigned refs;
    bool in_table;
    int64_t checked_ms;

    enum st_kind kind;
    int fd;                  /* ST_FILE: open read-only, close-on-exec */
    dev_t dev;
    ino_t ino;
    uint64_t size;
    int64_t mtime;           /* seconds */
    long mtime_ns;
    char *real;              /* canonical path (ST_FILE, ST_DIR) */
    size_t real_len;

    /* filled once by the plugin, kept with the entry */
    bool prepared;
    const char *mime;        /* Content-Type */
    size_t mime_len;
    char etag[48];           /* "<mtime-hex>-<size-hex>", quotes included */
    size_t etag_len;
    char last_modified[32];  /* IMF-fixdate */
    char length[24];         /* decimal size */
    size_t length_len;

    size_t path_len;
    char path[];             /* the key */
};

struct st_cache;

/* max = 0 or ttl_ms = 0: nothing is cached, every lookup opens the file
 * (and the entry is freed when its last reference goes). */
struct st_cache *st_cache_new(size_t max, int64_t ttl_ms);
/* Drop every entry from the table; entries still being sent are freed by
 * their last st_file_unref(). */
void st_cache_free(struct st_cache *);

/* Look `path` up (opening it if needed) and return it with a reference
 * the caller must drop with st_file_unref().  `cache_missing`: remember a
 * missing file too (for .gz/.br siblings, which are usually absent; a
 * missing main file is not remembered, so a file created a moment ago is
 * found at once).  NULL with errno on a system error (EMFILE, ENOMEM...). */
struct st_file *st_cache_get(struct st_cache *, const char *path, size_t len, int64_t now_ms,
                             bool cache_missing);
void st_file_ref(struct st_file *);
void st_file_unref(struct st_file *);

/* Entries in the table now (for tests). */
size_t st_cache_count(const struct st_cache *);

#endif
