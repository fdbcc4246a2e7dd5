/*
 * core/threadpool.c - app threads (`threads = N`, N > 1).  The loop thread
 * hands APP-phase requests to a FIFO; a free app thread runs the handlers
 * (which may block) and posts the request back to the loop when done.
 * With threads = 1 there is no pool: the app runs inline on the loop
 * thread, without any hand-off.
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct wharf_threadpool {
    struct wharf_worker *worker;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct wharf_request **queue; /* ring buffer */
    size_t cap, head, count;
    bool stopping;
    unsigned nthreads;
    pthread_t *threads;
};

struct thread_arg {
    struct wharf_threadpool *pool;
    unsigned index;
};

static void *app_thread(void *argp)
{
    struct thread_arg *arg = argp;
    struct wharf_threadpool *pool = arg->pool;
    wharf_thread_slot = arg->index;
    free(arg);
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        while (pool->count == 0 && !pool->stopping)
            pthread_cond_wait(&pool->cond, &pool->lock);
        if (pool->count == 0 && pool->stopping) {
            pthread_mutex_unlock(&pool->lock);
            return NULL;
        }
        struct wharf_request *r = pool->queue[pool->head];
        pool->head = (pool->head + 1) % pool->cap;
        pool->count--;
        pthread_mutex_unlock(&pool->lock);
        wharf_request_run_app(r);
    }
}

struct wharf_threadpool *wharf_threadpool_start(struct wharf_worker *w, unsigned n)
{
    struct wharf_threadpool *pool = wharf_xcalloc(1, sizeof *pool);
    pool->worker = w;
    pool->cap = 1024;
    pool->queue = wharf_xcalloc(pool->cap, sizeof *pool->queue);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->cond, NULL);
    pool->threads = wharf_xcalloc(n, sizeof *pool->threads);
    /* App threads must not take the worker's signals (the loop reads them
     * from a signalfd); the caller has them blocked already and threads
     * inherit the mask. */
    for (unsigned i = 0; i < n; i++) {
        struct thread_arg *arg = wharf_xmalloc(sizeof *arg);
        arg->pool = pool;
        arg->index = i;
        int rc = pthread_create(&pool->threads[i], NULL, app_thread, arg);
        if (rc != 0) {
            wharf_log(WHARF_LOG_ERROR, "cannot start app thread %u: %s", i, strerror(rc));
            free(arg);
            break;
        }
        pool->nthreads++;
    }
    if (pool->nthreads == 0) {
        wharf_threadpool_stop(pool);
        return NULL;
    }
    return pool;
}

void wharf_threadpool_submit(struct wharf_threadpool *pool, struct wharf_request *r)
{
    pthread_mutex_lock(&pool->lock);
    if (pool->count == pool->cap) {
        /* grow: requests wait here instead of being refused */
        size_t ncap = pool->cap * 2;
        struct wharf_request **q = wharf_xcalloc(ncap, sizeof *q);
        for (size_t i = 0; i < pool->count; i++)
            q[i] = pool->queue[(pool->head + i) % pool->cap];
        free(pool->queue);
        pool->queue = q;
        pool->head = 0;
        pool->cap = ncap;
    }
    pool->queue[(pool->head + pool->count) % pool->cap] = r;
    pool->count++;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
}

void wharf_threadpool_stop(struct wharf_threadpool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->nthreads; i++)
        pthread_join(pool->threads[i], NULL);
    free(pool->threads);
    free(pool->queue);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->cond);
    free(pool);
}
