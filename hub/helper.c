/* helper.c - the hub's helper thread: half of a big batch runs on it while
 * the hub's thread runs the other half (the second core is otherwise idle
 * while the caller waits). One job at a time: while a hub's job runs,
 * another hub's is refused and runs on its own thread. */
#include "hub/hub_internal.h"

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int running, busy, stop;
    helper_fn fn;
    void *arg;
    pthread_t thread;
} helper = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *helper_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&helper.lock);
    for (;;) {
        while (!helper.busy && !helper.stop)
            pthread_cond_wait(&helper.cond, &helper.lock);
        if (helper.stop)
            break;
        helper_fn fn = helper.fn;
        void *arg = helper.arg;
        pthread_mutex_unlock(&helper.lock);
        fn(arg);
        pthread_mutex_lock(&helper.lock);
        helper.busy = 0;
        pthread_cond_broadcast(&helper.cond);
    }
    pthread_mutex_unlock(&helper.lock);
    return NULL;
}

int helper_submit(helper_fn fn, void *arg)
{
    pthread_mutex_lock(&helper.lock);
    if (!helper.running && !helper.stop &&
        pthread_create(&helper.thread, NULL, helper_main, NULL) == 0)
        helper.running = 1;
    /* Another hub's batch has it: this one runs on its own thread. */
    int ok = helper.running && !helper.busy;
    if (ok) {
        helper.fn = fn;
        helper.arg = arg;
        helper.busy = 1;
        pthread_cond_broadcast(&helper.cond);
    }
    pthread_mutex_unlock(&helper.lock);
    return ok ? 0 : -1;
}

void helper_wait(void)
{
    pthread_mutex_lock(&helper.lock);
    while (helper.busy)
        pthread_cond_wait(&helper.cond, &helper.lock);
    pthread_mutex_unlock(&helper.lock);
}

void helper_stop(void)
{
    pthread_mutex_lock(&helper.lock);
    int running = helper.running;
    helper.stop = 1;
    pthread_cond_broadcast(&helper.cond);
    pthread_mutex_unlock(&helper.lock);
    if (running)
        pthread_join(helper.thread, NULL);
}
