/* Unit tests: the metrics registry and rendering (hub/runtime/metrics.c)
 * and the handshake failure classification (ei_glue/handshake_diag.c). */
#include "ei_glue/handshake_diag.h"
#include "hub/runtime/metrics.h"

#include <arpa/inet.h>
#include <check.h>

#include "check_run.h"
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

METRIC_COUNTER(t_count, "test_things_total", "", "Things counted by the test.");
METRIC_COUNTER(t_red, "test_colours_total", "colour=\"red\"", "Colours.");
METRIC_COUNTER(t_blue, "test_colours_total", "colour=\"blue\"", "Colours.");
METRIC_GAUGE(t_gauge, "test_level", "", "A level.");

static void collect(metrics_out *out)
{
    metrics_out_family(out, "test_collected", METRIC_TYPE_GAUGE, "From a collector.");
    metrics_out_sample(out, "test_collected", "k=\"v\"", 42);
}

static void *add_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++)
        metric_inc(&t_count);
    return NULL;
}

START_TEST(counters_add_up_across_threads)
{
    uint64_t before = metric_counter_value(&t_count);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, add_many, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_uint_eq(metric_counter_value(&t_count), before + 400000);
}
END_TEST

START_TEST(render_families_once_with_labels)
{
    metric_add(&t_red, 3);
    metric_inc(&t_blue);
    metric_gauge_set(&t_gauge, -5);
    ck_assert_int_eq(metrics_add_collector(collect), 0);
    ck_assert_int_eq(metrics_add_collector(collect), 0); /* once only */
    size_t len;
    char *text = metrics_render(&len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(strlen(text), len);
    const char *type = "# TYPE test_colours_total counter\n";
    char *first = strstr(text, type);
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_null(strstr(first + 1, type));
    ck_assert_ptr_nonnull(strstr(text, "test_colours_total{colour=\"red\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(text, "test_colours_total{colour=\"blue\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "# TYPE test_level gauge\ntest_level -5\n"));
    char *c = strstr(text, "test_collected{k=\"v\"} 42\n");
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_null(strstr(c + 1, "test_collected{k=\"v\"} 42\n"));
    free(text);
}
END_TEST

static void begin(int outgoing, unsigned short port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    handshake_diag_reset();
    handshake_diag_begin(&sa, sizeof sa, outgoing);
}

/* A 'N' name packet for node name (2-byte length included). */
static size_t name_packet(char *buf, const char *name)
{
    size_t n = strlen(name), body = 1 + 8 + 4 + 2 + n;
    buf[0] = (char)(body >> 8);
    buf[1] = (char)body;
    buf[2] = 'N';
    memset(buf + 3, 0, 12);
    buf[15] = (char)(n >> 8);
    buf[16] = (char)n;
    memcpy(buf + 17, name, n);
    return 2 + body;
}

START_TEST(classify_incoming)
{
    handshake_report r;
    /* idle accept timeout: nothing accepted */
    handshake_diag_reset();
    handshake_diag_classify(1, ETIMEDOUT, &r);
    ck_assert_int_eq(r.kind, HS_IDLE);

    begin(0, 40000);
    handshake_diag_rx("zGARBAGE", 8);
    handshake_diag_classify(1, EIO, &r);
    ck_assert_int_eq(r.kind, HS_GARBAGE);
    ck_assert_str_eq(r.peer, "127.0.0.1:40000");
    ck_assert_str_eq(r.reason, "garbage");

    begin(0, 40001);
    handshake_diag_classify(1, ETIMEDOUT, &r);
    ck_assert_int_eq(r.kind, HS_TIMEOUT);

    char buf[128];
    size_t n = name_packet(buf, "beam@127.0.0.1");
    begin(0, 40002);
    handshake_diag_rx(buf, n);
    handshake_diag_rx("\0\x15r", 3); /* the challenge reply: 'r', 4 + 16 bytes */
    handshake_diag_rx("01234567890123456789", 20);
    handshake_diag_classify(1, EIO, &r);
    ck_assert_int_eq(r.kind, HS_BAD_COOKIE);
    ck_assert_str_eq(r.node, "beam@127.0.0.1");

    begin(0, 40003);
    handshake_diag_rx(buf, n);
    handshake_diag_classify(1, EIO, &r);
    ck_assert_int_eq(r.kind, HS_CLOSED);
}
END_TEST

START_TEST(classify_outgoing)
{
    handshake_report r;
    begin(1, 4369); /* only epmd was reached */
    handshake_diag_classify(0, EIO, &r);
    ck_assert_int_eq(r.kind, HS_NOT_RUNNING);

    begin(1, 40010);
    handshake_diag_connect_error(ECONNREFUSED);
    handshake_diag_classify(0, ECONNREFUSED, &r);
    ck_assert_int_eq(r.kind, HS_NOT_RUNNING);

    begin(1, 40011);
    handshake_diag_rx("\0\x04snok", 6);
    handshake_diag_classify(0, EIO, &r);
    ck_assert_int_eq(r.kind, HS_REFUSED);
    ck_assert_str_eq(r.detail, "nok");

    begin(1, 40012);
    handshake_diag_rx("\0\x03sok", 5);
    handshake_diag_tx("\0\x15r01234567890123456789", 23);
    handshake_diag_classify(0, EIO, &r);
    ck_assert_int_eq(r.kind, HS_BAD_COOKIE);

    begin(1, 40013);
    handshake_diag_rx("\0\x03sok", 5);
    handshake_diag_classify(0, ETIMEDOUT, &r);
    ck_assert_int_eq(r.kind, HS_TIMEOUT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, counters_add_up_across_threads);
    tcase_add_test(tc, render_families_once_with_labels);
    tcase_add_test(tc, classify_incoming);
    tcase_add_test(tc, classify_outgoing);
    suite_add_tcase(s, tc);
    return check_run(s);
}
