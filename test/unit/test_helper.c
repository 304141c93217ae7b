/* Unit tests: the hub's helper thread (hub/helper.c): a job runs on it and
 * is waited for by ticket; while one hub's job runs another's is refused
 * (that hub runs it on its own thread); a stop runs the job it holds first,
 * even one handed over a moment before; the next job after a stop starts a
 * new thread; two hubs ending at once stop it once. */
#include "hub/hub_internal.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>

#include "check_run.h"

/* A job that notes the thread it ran on and, when gate is set, waits for
 * the test to open it. */
typedef struct job {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int gated, open, started, done;
    pthread_t ran_on;
} job;

static void job_init(job *j, int gated)
{
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->cond, NULL);
    j->gated = gated;
    j->open = j->started = j->done = 0;
}

static void job_destroy(job *j)
{
    pthread_mutex_destroy(&j->lock);
    pthread_cond_destroy(&j->cond);
}

static void job_run(void *arg)
{
    job *j = arg;
    pthread_mutex_lock(&j->lock);
    j->ran_on = pthread_self();
    j->started = 1;
    pthread_cond_broadcast(&j->cond);
    while (j->gated && !j->open)
        pthread_cond_wait(&j->cond, &j->lock);
    j->done = 1;
    pthread_mutex_unlock(&j->lock);
}

static void job_wait_started(job *j)
{
    pthread_mutex_lock(&j->lock);
    while (!j->started)
        pthread_cond_wait(&j->cond, &j->lock);
    pthread_mutex_unlock(&j->lock);
}

static void job_open(job *j)
{
    pthread_mutex_lock(&j->lock);
    j->open = 1;
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->lock);
}

static int job_done(job *j)
{
    pthread_mutex_lock(&j->lock);
    int d = j->done;
    pthread_mutex_unlock(&j->lock);
    return d;
}

/* Hands j to the helper, which must take it; its ticket. */
static unsigned long long submit(job *j)
{
    unsigned long long ticket = 0;
    ck_assert_int_eq(helper_submit(job_run, j, &ticket), 0);
    return ticket;
}

START_TEST(a_job_runs_on_the_helper_and_is_waited_for_by_ticket)
{
    job j;
    job_init(&j, 0);
    unsigned long long ticket = submit(&j);
    ck_assert_uint_gt(ticket, 0);
    helper_wait(ticket);
    ck_assert(job_done(&j));
    ck_assert(!pthread_equal(j.ran_on, pthread_self()));
    /* the next one gets the next ticket, on the same thread */
    job k;
    job_init(&k, 0);
    unsigned long long next = submit(&k);
    ck_assert_uint_eq(next, ticket + 1);
    helper_wait(next);
    ck_assert(pthread_equal(k.ran_on, j.ran_on));
    helper_stop();
    job_destroy(&j);
    job_destroy(&k);
}
END_TEST

START_TEST(a_second_hubs_job_is_refused_while_one_runs)
{
    job first, second;
    job_init(&first, 1);
    job_init(&second, 0);
    unsigned long long t1 = 0, t2 = 0;
    ck_assert_int_eq(helper_submit(job_run, &first, &t1), 0);
    job_wait_started(&first);
    /* refused: the caller runs it on its own thread; no ticket taken */
    ck_assert_int_eq(helper_submit(job_run, &second, &t2), -1);
    ck_assert_uint_eq(t2, 0);
    job_run(&second);
    ck_assert(pthread_equal(second.ran_on, pthread_self()));
    ck_assert(!job_done(&first));
    job_open(&first);
    helper_wait(t1);
    ck_assert(job_done(&first));
    /* free again */
    job third;
    job_init(&third, 0);
    ck_assert_int_eq(helper_submit(job_run, &third, &t2), 0);
    ck_assert_uint_eq(t2, t1 + 1);
    helper_wait(t2);
    ck_assert(job_done(&third));
    helper_stop();
    job_destroy(&first);
    job_destroy(&second);
    job_destroy(&third);
}
END_TEST

static void *stop_helper(void *arg)
{
    (void)arg;
    helper_stop();
    return NULL;
}

START_TEST(a_stop_runs_the_job_it_holds_and_the_next_job_restarts_it)
{
    helper_stop(); /* nothing running: returns at once */
    job held;
    job_init(&held, 1);
    unsigned long long t = submit(&held);
    job_wait_started(&held);
    pthread_t stopper;
    ck_assert_int_eq(pthread_create(&stopper, NULL, stop_helper, NULL), 0);
    /* while it holds that job, nothing new is handed to it */
    job during;
    job_init(&during, 0);
    unsigned long long td = 0;
    ck_assert_int_eq(helper_submit(job_run, &during, &td), -1);
    job_open(&held);
    ck_assert_int_eq(pthread_join(stopper, NULL), 0);
    ck_assert(job_done(&held)); /* run to its end, not dropped */
    helper_wait(t);
    /* the next big batch starts a new thread */
    job after;
    job_init(&after, 0);
    unsigned long long ta = submit(&after);
    helper_wait(ta);
    ck_assert(job_done(&after));
    helper_stop();
    job_destroy(&held);
    job_destroy(&during);
    job_destroy(&after);
}
END_TEST

/* A stop that comes right after a job was handed over, before the thread
 * has picked it up: the job still runs, and the stop returns after it. */
START_TEST(a_job_handed_over_just_before_a_stop_still_runs)
{
    for (int round = 0; round < 2000; round++) {
        job j;
        job_init(&j, 0);
        unsigned long long t = submit(&j);
        helper_stop();
        ck_assert_msg(job_done(&j), "round %d: the handed job was dropped by the stop", round);
        helper_wait(t);
        job_destroy(&j);
    }
}
END_TEST

START_TEST(two_hubs_ending_at_once_stop_it_once)
{
    for (int round = 0; round < 20; round++) {
        job j;
        job_init(&j, 0);
        unsigned long long t = submit(&j);
        helper_wait(t);
        pthread_t a, b;
        ck_assert_int_eq(pthread_create(&a, NULL, stop_helper, NULL), 0);
        ck_assert_int_eq(pthread_create(&b, NULL, stop_helper, NULL), 0);
        ck_assert_int_eq(pthread_join(a, NULL), 0);
        ck_assert_int_eq(pthread_join(b, NULL), 0);
        job_destroy(&j);
    }
    /* and it still serves afterwards */
    job j;
    job_init(&j, 0);
    unsigned long long t = submit(&j);
    helper_wait(t);
    ck_assert(job_done(&j));
    helper_stop();
    job_destroy(&j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("helper");
    TCase *tc = tcase_create("thread");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_job_runs_on_the_helper_and_is_waited_for_by_ticket);
    tcase_add_test(tc, a_second_hubs_job_is_refused_while_one_runs);
    tcase_add_test(tc, a_stop_runs_the_job_it_holds_and_the_next_job_restarts_it);
    tcase_add_test(tc, a_job_handed_over_just_before_a_stop_still_runs);
    tcase_add_test(tc, two_hubs_ending_at_once_stop_it_once);
    suite_add_tcase(s, tc);
    return check_run(s);
}
