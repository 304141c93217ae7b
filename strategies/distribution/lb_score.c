/* lb_score.c - the CentralizedLoadBalancer's arithmetic (see lb_score.h). */
#include "strategies/distribution/lb_score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double cap01(double x)
{
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

double lb_score(const lb_sample *s)
{
    return 0.4 * cap01(s->sched) + 0.3 * cap01((double)s->runq / 100.0) +
           0.2 * cap01((double)s->procs / 10000.0) +
           0.1 * cap01((double)s->mem / (double)(1ULL << 30));
}

int lb_history_init(lb_history *h, int cap)
{
    if (cap < 1)
        cap = 1;
    if (cap > LB_MAX_HISTORY)
        cap = LB_MAX_HISTORY;
    h->s = calloc((size_t)cap, sizeof *h->s);
    h->cap = h->s ? cap : 0;
    h->n = h->head = 0;
    return h->s ? 0 : -1;
}

void lb_history_free(lb_history *h)
{
    free(h->s);
    h->s = NULL;
    h->cap = h->n = h->head = 0;
}

void lb_history_push(lb_history *h, double score)
{
    if (h->cap < 1)
        return;
    h->head = (h->head + 1) % h->cap;
    h->s[h->head] = score;
    if (h->n < h->cap)
        h->n++;
}

double lb_history_score(const lb_history *h, double decay)
{
    double num = 0, den = 0, w = 1;
    if (h->n < 1)
        return -1;
    for (int i = 0; i < h->n; i++) {
        num += h->s[(h->head - i + h->cap) % h->cap] * w;
        den += w;
        w *= decay;
    }
    return den > 0 ? num / den : -1;
}

double lb_capacity(double score)
{
    double c = 1.0 - score;
    return c < 0.1 ? 0.1 : c;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t lb_hash(const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

int lb_pick(uint64_t key_hash, const uint64_t *node_hash, const double *capacity, int n)
{
    int best = -1;
    double best_key = 0;
    for (int i = 0; i < n; i++) {
        uint64_t x = mix64(key_hash ^ mix64(node_hash[i]));
        /* a uniform draw in (0, 1) from the pair, then the key of an
         * exponential race with rate capacity: the smallest wins */
        double u = ((double)(x >> 11) + 0.5) / 9007199254740992.0;
        double c = capacity[i] > 0 ? capacity[i] : 1e-9;
        double k = -log(u) / c;
        if (best < 0 || k < best_key) {
            best = i;
            best_key = k;
        }
    }
    return best;
}

int lb_leader(const uint64_t *started, const char *const *names, int n)
{
    int best = -1;
    for (int i = 0; i < n; i++) {
        uint64_t si = started[i] ? started[i] : UINT64_MAX;
        if (best < 0) {
            best = i;
            continue;
        }
        uint64_t sb = started[best] ? started[best] : UINT64_MAX;
        if (si < sb || (si == sb && strcmp(names[i], names[best]) < 0))
            best = i;
    }
    return best;
}
