/*
 * plugins/static/static_cache.c - the per-worker open-file cache (see
 * static_cache.h for what it promises).
 */
#include "static_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct st_cache {
    size_t max, count, nbuckets;
    int64_t ttl_ms;
    struct st_file **buckets;
    struct st_file lru; /* sentinel: lru.lru_next is the most recent */
};

static uint32_t path_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

struct st_cache *st_cache_new(size_t max, int64_t ttl_ms)
{
    struct st_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->max = ttl_ms > 0 ? max : 0;
    c->ttl_ms = ttl_ms;
    c->lru.lru_next = c->lru.lru_prev = &c->lru;
    if (c->max) {
        size_t n = 64;
        while (n < c->max * 2)
            n *= 2;
        c->buckets = calloc(n, sizeof *c->buckets);
        if (!c->buckets) {
            free(c);
            return NULL;
        }
        c->nbuckets = n;
    }
    return c;
}

static void file_free(struct st_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    free(f->real);
    free(f);
}

void st_file_ref(struct st_file *f)
{
    f->refs++;
}

void st_file_unref(struct st_file *f)
{
    if (f && --f->refs == 0)
        file_free(f);
}

static void lru_unlink(struct st_file *f)
{
    f->lru_prev->lru_next = f->lru_next;
    f->lru_next->lru_prev = f->lru_prev;
}

static void lru_push(struct st_cache *c, struct st_file *f)
{
    f->lru_next = c->lru.lru_next;
    f->lru_prev = &c->lru;
    c->lru.lru_next->lru_prev = f;
    c->lru.lru_next = f;
}

static void table_remove(struct st_cache *c, struct st_file *f)
{
    struct st_file **pp = &c->buckets[f->hash & (c->nbuckets - 1)];
    while (*pp && *pp != f)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = f->hnext;
    lru_unlink(f);
    f->in_table = false;
    c->count--;
    st_file_unref(f);
}

void st_cache_free(struct st_cache *c)
{
    if (!c)
        return;
    while (c->lru.lru_next != &c->lru)
        table_remove(c, c->lru.lru_next);
    free(c->buckets);
    free(c);
}

size_t st_cache_count(const struct st_cache *c)
{
    return c->count;
}

/* Close idle cached files to get file descriptors back (EMFILE). */
static bool evict_idle(struct st_cache *c)
{
    bool any = false;
    for (struct st_file *f = c->lru.lru_prev, *prev; f != &c->lru; f = prev) {
        prev = f->lru_prev;
        if (f->refs == 1 && f->fd >= 0) {
            table_remove(c, f);
            any = true;
        }
    }
    return any;
}

/* Where the open file really is: the kernel's name for the descriptor,
 * which follows every symlink and cannot race with renames the way a
 * separate realpath() would. */
static char *real_path_of(int fd, const char *path)
{
    char link[64], buf[PATH_MAX + 1];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, sizeof buf - 1);
    if (n > 0 && buf[0] == '/') {
        buf[n] = '\0';
        return strdup(buf);
    }
    return realpath(path, NULL); /* no /proc (chroot): resolve by name */
}

static struct st_file *open_entry(struct st_cache *c, const char *path, size_t len, uint32_t hash)
{
    struct st_file *f = calloc(1, sizeof *f + len + 1);
    if (!f)
        return NULL;
    memcpy(f->path, path, len);
    f->path[len] = '\0';
    f->path_len = len;
    f->hash = hash;
    f->refs = 1;
    f->fd = -1;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (the loop
     * thread would hang); it is refused below anyway. */
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && evict_idle(c))
        fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        switch (errno) {
        case ENOENT:
        case ENOTDIR:
        case ENAMETOOLONG:
        case ELOOP:
            f->kind = ST_MISSING;
            return f;
        case EACCES:
        case EPERM:
            f->kind = ST_NOACCESS;
            return f;
        default: {
            int e = errno;
            free(f);
            errno = e;
            return NULL;
        }
        }
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        free(f);
        errno = e;
        return NULL;
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->size = (uint64_t)st.st_size;
    f->mtime = (int64_t)st.st_mtim.tv_sec;
    f->mtime_ns = st.st_mtim.tv_nsec;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
        f->real = real_path_of(fd, f->path);
        if (!f->real) {
            int e = errno;
            close(fd);
            free(f);
            errno = e;
            return NULL;
        }
        f->real_len = strlen(f->real);
    }
    if (S_ISREG(st.st_mode)) {
        f->kind = ST_FILE;
        f->fd = fd;
        return f;
    }
    close(fd);
    f->kind = S_ISDIR(st.st_mode) ? ST_DIR : ST_OTHER;
    return f;
}

/* Is the cached entry still what is on disk?  One stat() by name. */
static bool still_valid(const struct st_file *f)
{
    struct stat st;
    if (stat(f->path, &st) < 0)
        return false;
    switch (f->kind) {
    case ST_FILE:
        return S_ISREG(st.st_mode) && st.st_dev == f->dev && st.st_ino == f->ino &&
               (uint64_t)st.st_size == f->size && (int64_t)st.st_mtim.tv_sec == f->mtime &&
               st.st_mtim.tv_nsec == f->mtime_ns;
    case ST_DIR:
        return S_ISDIR(st.st_mode) && st.st_dev == f->dev && st.st_ino == f->ino;
    default:
        return false; /* it exists now: open it properly */
    }
}

struct st_file *st_cache_get(struct st_cache *c, const char *path, size_t len, int64_t now_ms,
                             bool cache_missing)
{
    uint32_t h = path_hash(path, len);
    if (c->max) {
        struct st_file *f = c->buckets[h & (c->nbuckets - 1)];
        while (f && !(f->hash == h && f->path_len == len && memcmp(f->path, path, len) == 0))
            f = f->hnext;
        if (f) {
            bool fresh = now_ms - f->checked_ms < c->ttl_ms;
            if (!fresh && f->kind != ST_MISSING && still_valid(f)) {
                f->checked_ms = now_ms;
                fresh = true;
            }
            if (fresh) {
                lru_unlink(f);
                lru_push(c, f);
                f->refs++;
                return f;
            }
            table_remove(c, f);
        }
    }
    struct st_file *f = open_entry(c, path, len, h);
    if (!f)
        return NULL;
    if (!c->max || (f->kind == ST_MISSING && !cache_missing))
        return f;
    f->checked_ms = now_ms;
    f->in_table = true;
    f->refs++; /* the table's reference */
    size_t b = h & (c->nbuckets - 1);
    f->hnext = c->buckets[b];
    c->buckets[b] = f;
    lru_push(c, f);
    c->count++;
    while (c->count > c->max)
        table_remove(c, c->lru.lru_prev);
    return f;
}
