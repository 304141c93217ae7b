/*
 * by_name.c - a user-defined distribution strategy (type "by_name"), built
 * as a shared object and named in the config:
 *
 *   "distribution_strategy": {"type": "by_name", "library": "/path/libby_name_strategy.so"}
 *
 * It places by comparing node names: the nodes sorted by name, a child goes
 * to the one at (sum of its id's bytes) mod count, its replicas to the next
 * ones in that order. Option "reverse": true sorts the names backwards.
 * The example of docs/strategies.md, and what the integration tests load.
 */
#include <processhub/strategy.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct by_name {
    char **nodes; /* sorted */
    int n, cap;
    int reverse;
} by_name;

static void *by_name_init(ph_term config, char *err, size_t err_size)
{
    by_name *s = calloc(1, sizeof *s);
    ph_buf key;
    ph_term v;
    if (!s || ph_buf_init(&key) != 0) {
        free(s);
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    if (ph_build(&key, "~s", "reverse") == 0 && ph_map_get(config, ph_buf_term(&key), &v) == 1 &&
        ph_match(v, "~B", &s->reverse) != 1) {
        snprintf(err, err_size, "distribution_strategy.reverse must be true or false");
        ph_buf_free(&key);
        free(s);
        return NULL;
    }
    ph_buf_free(&key);
    return s;
}

static void by_name_free(void *state)
{
    by_name *s = state;
    for (int i = 0; i < s->n; i++)
        free(s->nodes[i]);
    free(s->nodes);
    free(s);
}

static int before(const by_name *s, const char *a, const char *b)
{
    int c = strcmp(a, b);
    return s->reverse ? c > 0 : c < 0;
}

static int by_name_added(void *state, const char *node)
{
    by_name *s = state;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        char **n = realloc(s->nodes, (size_t)cap * sizeof *n);
        if (!n)
            return -1;
        s->nodes = n;
        s->cap = cap;
    }
    char *copy = strdup(node);
    if (!copy)
        return -1;
    int at = 0;
    while (at < s->n && before(s, s->nodes[at], node))
        at++;
    memmove(&s->nodes[at + 1], &s->nodes[at], (size_t)(s->n - at) * sizeof *s->nodes);
    s->nodes[at] = copy;
    s->n++;
    return 0;
}

static int by_name_removed(void *state, const char *node)
{
    by_name *s = state;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->nodes[i], node) == 0) {
            free(s->nodes[i]);
            memmove(&s->nodes[i], &s->nodes[i + 1], (size_t)(s->n - i - 1) * sizeof *s->nodes);
            s->n--;
            return 0;
        }
    return -1;
}

static int by_name_place(void *state, ph_term id, int rf, const char **out, int max)
{
    by_name *s = state;
    const char *bytes;
    size_t len;
    char atom[PH_ATOM_BUF];
    if (ph_match(id, "~b", &bytes, &len) != 1) {
        if (ph_match(id, "~a", atom) != 1)
            return -1;
        bytes = atom;
        len = strlen(atom);
    }
    if (s->n == 0)
        return 0;
    unsigned long sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += (unsigned char)bytes[i];
    int want = rf < s->n ? rf : s->n;
    if (want > max)
        want = max;
    for (int i = 0; i < want; i++)
        out[i] = s->nodes[(sum + (unsigned long)i) % (unsigned long)s->n];
    return want;
}

static uint64_t by_name_digest(void *state)
{
    by_name *s = state;
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)s->reverse; /* FNV-1a over the names */
    for (int i = 0; i < s->n; i++)
        for (const char *p = s->nodes[i]; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static const ph_distribution_ops by_name_strategy = {
    .api_version = PH_DISTRIBUTION_API,
    .type = "by_name",
    .init = by_name_init,
    .free = by_name_free,
    .node_added = by_name_added,
    .node_removed = by_name_removed,
    .place = by_name_place,
    .digest = by_name_digest,
};

const ph_distribution_ops *ph_distribution_strategy = &by_name_strategy;
