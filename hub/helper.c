/* helper.c - the hub's helper thread: half of a big batch runs on it while
 * the hub's thread runs the other half (the second core is otherwise idle
 * while the caller waits). One job at a time: while a hub's job runs,
 * another hub's is refused and runs on its own thread. A hub that ends
 * stops the thread (after the job it holds, if any); the next big batch
 * starts a new one. */
#include "hub/hub_internal.h"

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int running;  /* the thread is there */
    int stopping; /* helper_stop is joining it */
    int busy;     /* a job is handed over and not done */
    helper_fn fn;
    void *arg;
    unsigned long long handed, done; /* jobs handed over and done, in order */
    pthread_t thread;
} helper = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *helper_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&helper.lock);
    for (;;) {
        while (!helper.busy && !helper.stopping)
            pthread_cond_wait(&helper.cond, &helper.lock);
        if (!helper.busy)
            break; /* stopping, with nothing handed over */
        /* a job handed over runs, stopping or not: its hub waits for it */
        helper_fn fn = helper.fn;
        void *arg = helper.arg;
        pthread_mutex_unlock(&helper.lock);
        fn(arg);
        pthread_mutex_lock(&helper.lock);
        helper.busy = 0;
        helper.done++;
        pthread_cond_broadcast(&helper.cond);
    }
    pthread_mutex_unlock(&helper.lock);
    return NULL;
}

int helper_submit(helper_fn fn, void *arg, unsigned long long *ticket)
{
    pthread_mutex_lock(&helper.lock);
    if (!helper.running && !helper.stopping &&
        pthread_create(&helper.thread, NULL, helper_main, NULL) == 0)
        helper.running = 1;
    /* Another hub's batch has it, or it is being stopped: this one runs on
     * its own thread. */
    int ok = helper.running && !helper.stopping && !helper.busy;
    if (ok) {
        helper.fn = fn;
        helper.arg = arg;
        helper.busy = 1;
        *ticket = ++helper.handed;
        pthread_cond_broadcast(&helper.cond);
    }
    pthread_mutex_unlock(&helper.lock);
    return ok ? 0 : -1;
}

void helper_wait(unsigned long long ticket)
{
    pthread_mutex_lock(&helper.lock);
    while (helper.done < ticket)
        pthread_cond_wait(&helper.cond, &helper.lock);
    pthread_mutex_unlock(&helper.lock);
}

void helper_stop(void)
{
    pthread_mutex_lock(&helper.lock);
    if (!helper.running || helper.stopping) {
        /* none, or another hub is stopping it: done when that is */
        while (helper.stopping)
            pthread_cond_wait(&helper.cond, &helper.lock);
        pthread_mutex_unlock(&helper.lock);
        return;
    }
    helper.stopping = 1;
    pthread_t thread = helper.thread;
    pthread_cond_broadcast(&helper.cond);
    pthread_mutex_unlock(&helper.lock);
    pthread_join(thread, NULL);
    pthread_mutex_lock(&helper.lock);
    helper.running = 0;
    helper.stopping = 0;
    pthread_cond_broadcast(&helper.cond);
    pthread_mutex_unlock(&helper.lock);
}
