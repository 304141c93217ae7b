/* consistent_hashing.c - see consistent_hashing.h. */
#include "strategies/distribution/consistent_hashing.h"
#include "strategies/distribution/md5_short.h"
#include "hub/runtime/log.h"

#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VNODES_PER_NODE 256
#define MAX_NODE_NAME 255

typedef struct vnode {
    uint32_t hash;
    uint16_t seq;
    uint16_t node; /* index into nodes[] */
} vnode;

struct ring {
    ring_atom_encoding encoding;
    /* OpenSSL's MD5, for ids longer than md5_short takes: fetched once
     * (EVP_Digest(EVP_md5()) looks the algorithm up on every call), when
     * first needed (the fetch loads OpenSSL's provider: 2 ms of a joining
     * node's start). */
    EVP_MD *_Atomic md5;
    char **nodes;
    int n_nodes, cap_nodes;
    vnode *vnodes;   /* n_nodes * VNODES_PER_NODE, sorted */
    uint64_t digest; /* XOR of the node names' hashes: equal sets, equal rings */
};

/* FNV-1a: the node set's fingerprint, not part of the placement. */
static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

uint64_t ring_digest(const ring *r)
{
    return r->digest;
}

/* The ring's OpenSSL MD5, fetched by the first thread that needs it. */
static EVP_MD *ring_md5(const ring *r)
{
    ring *w = (ring *)(uintptr_t)r; /* the cache is the one field that changes */
    EVP_MD *md = atomic_load(&w->md5), *none = NULL;
    if (md)
        return md;
    if (!(md = EVP_MD_fetch(NULL, "MD5", NULL))) {
        static atomic_int told;
        if (!atomic_exchange(&told, 1))
            LOG_E("ring", "OpenSSL has no MD5 (a FIPS-only provider?): children whose ids are "
                          "longer than 55 bytes encoded cannot be placed and start where asked");
        return NULL;
    }
    if (!atomic_compare_exchange_strong(&w->md5, &none, md)) {
        EVP_MD_free(md); /* another thread's came first */
        md = none;
    }
    return md;
}

static int md5_last4(const ring *r, const unsigned char *data, size_t len, uint32_t *out)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD *md;
    /* Ids longer than a block: OpenSSL, with a context of the call's own
     * (the hub's helper thread places children while the hub's thread
     * does). */
    if (md5_short(data, len, digest) != 0 &&
        (!(md = ring_md5(r)) || EVP_Digest(data, len, digest, &n, md, NULL) != 1 || n != 16))
        return -1;
    *out = ((uint32_t)digest[12] << 24) | ((uint32_t)digest[13] << 16) |
           ((uint32_t)digest[14] << 8) | digest[15];
    return 0;
}

/* Appends an atom as term_to_binary would encode it. */
static size_t put_atom(const ring *r, unsigned char *p, const char *text, size_t len)
{
    if (r->encoding == RING_ATOMS_OTP25) {
        p[0] = 100; /* ATOM_EXT */
        p[1] = (unsigned char)(len >> 8);
        p[2] = (unsigned char)len;
        memcpy(p + 3, text, len);
        return 3 + len;
    }
    p[0] = 119; /* SMALL_ATOM_UTF8_EXT */
    p[1] = (unsigned char)len;
    memcpy(p + 2, text, len);
    return 2 + len;
}

static int vnode_hash(const ring *r, int seq, const char *node, uint32_t *out)
{
    unsigned char buf[8 + MAX_NODE_NAME * 4];
    size_t n = 0, len = strlen(node);
    buf[n++] = 131;
    buf[n++] = 104; /* SMALL_TUPLE_EXT */
    buf[n++] = 2;
    buf[n++] = 97; /* SMALL_INTEGER_EXT: seq < 256 */
    buf[n++] = (unsigned char)seq;
    n += put_atom(r, buf + n, node, len);
    return md5_last4(r, buf, n, out);
}

static int compare_vnodes(const void *a, const void *b, void *arg)
{
    const vnode *x = a, *y = b;
    const ring *r = arg;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return strcmp(r->nodes[x->node], r->nodes[y->node]);
}

static int rebuild(ring *r)
{
    size_t n = (size_t)r->n_nodes * VNODES_PER_NODE;
    vnode *v = n ? malloc(n * sizeof *v) : NULL;
    if (n && !v)
        return -1;
    for (int i = 0; i < r->n_nodes; i++) {
        for (int seq = 0; seq < VNODES_PER_NODE; seq++) {
            vnode *e = &v[(size_t)i * VNODES_PER_NODE + (size_t)seq];
            e->seq = (uint16_t)seq;
            e->node = (uint16_t)i;
            if (vnode_hash(r, seq, r->nodes[i], &e->hash) != 0) {
                free(v);
                return -1;
            }
        }
    }
    if (n) /* qsort_r (GNU): the comparator needs the node names */
        qsort_r(v, n, sizeof *v, compare_vnodes, r);
    free(r->vnodes);
    r->vnodes = v;
    return 0;
}

ring *ring_new(ring_atom_encoding encoding)
{
    ring *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->encoding = encoding;
    return r;
}

void ring_free(ring *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_nodes; i++)
        free(r->nodes[i]);
    free(r->nodes);
    free(r->vnodes);
    EVP_MD_free(atomic_load(&r->md5));
    free(r);
}

static int find_node(const ring *r, const char *node)
{
    for (int i = 0; i < r->n_nodes; i++)
        if (strcmp(r->nodes[i], node) == 0)
            return i;
    return -1;
}

int ring_add_node(ring *r, const char *node)
{
    if (strlen(node) > MAX_NODE_NAME || find_node(r, node) >= 0 || r->n_nodes >= 0xffff)
        return -1;
    if (r->n_nodes == r->cap_nodes) {
        int cap = r->cap_nodes ? r->cap_nodes * 2 : 8;
        char **n = realloc(r->nodes, (size_t)cap * sizeof *n);
        if (!n)
            return -1;
        r->nodes = n;
        r->cap_nodes = cap;
    }
    char *copy = strdup(node);
    if (!copy)
        return -1;
    r->nodes[r->n_nodes++] = copy;
    if (rebuild(r) != 0) {
        free(r->nodes[--r->n_nodes]);
        return -1;
    }
    r->digest ^= name_hash(node);
    return 0;
}

int ring_remove_node(ring *r, const char *node)
{
    int i = find_node(r, node);
    if (i < 0)
        return -1;
    r->digest ^= name_hash(node);
    free(r->nodes[i]);
    memmove(&r->nodes[i], &r->nodes[i + 1], (size_t)(r->n_nodes - i - 1) * sizeof r->nodes[0]);
    r->n_nodes--;
    return rebuild(r);
}

int ring_node_count(const ring *r)
{
    return r->n_nodes;
}

int64_t ring_key_hash(const ring *r, ph_term key)
{
    int index = key.index, type, size;
    if (!key.buf || ei_get_type(key.buf, &index, &type, &size) != 0)
        return -1;
    uint32_t h;
    if (type == ERL_BINARY_EXT) {
        /* term_to_binary(<<...>>) = 131 + the BINARY_EXT bytes as they are */
        size_t n = 5 + (size_t)size;
        unsigned char small[256]; /* ids are short: no allocation per key */
        unsigned char *buf = n + 1 <= sizeof small ? small : malloc(n + 1);
        if (!buf)
            return -1;
        buf[0] = 131;
        memcpy(buf + 1, key.buf + key.index, n);
        int rc = md5_last4(r, buf, n + 1, &h);
        if (buf != small)
            free(buf);
        return rc == 0 ? (int64_t)h : -1;
    }
    char atom[MAXATOMLEN_UTF8];
    if ((type == ERL_ATOM_EXT || type == ERL_SMALL_ATOM_EXT || type == ERL_ATOM_UTF8_EXT ||
         type == ERL_SMALL_ATOM_UTF8_EXT) &&
        ei_decode_atom(key.buf, &index, atom) == 0) {
        unsigned char buf[4 + MAXATOMLEN_UTF8];
        buf[0] = 131;
        size_t n = 1 + put_atom(r, buf + 1, atom, strlen(atom));
        return md5_last4(r, buf, n, &h) == 0 ? (int64_t)h : -1;
    }
    return -1;
}

int ring_key_nodes(const ring *r, ph_term key, int replication_factor, const char **out, int max)
{
    int64_t h = ring_key_hash(r, key);
    if (h < 0)
        return -1;
    size_t n = (size_t)r->n_nodes * VNODES_PER_NODE;
    int want = replication_factor < r->n_nodes ? replication_factor : r->n_nodes;
    if (want > max)
        want = max;
    if (n == 0 || want <= 0)
        return 0;
    /* lower bound: the first vnode with hash >= h */
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->vnodes[mid].hash < (uint32_t)h)
            lo = mid + 1;
        else
            hi = mid;
    }
    int found = 0;
    for (size_t k = 0; k < n && found < want; k++) {
        const vnode *v = &r->vnodes[(lo + k) % n];
        const char *name = r->nodes[v->node];
        int seen = 0;
        for (int j = 0; j < found && !seen; j++)
            seen = out[j] == name;
        if (!seen)
            out[found++] = name;
    }
    return found;
}

/* --- as a distribution strategy (include/processhub/strategy.h) ---------- */

static void *ch_init(ph_term config, char *err, size_t err_size)
{
    ph_buf key;
    ph_term enc;
    char text[16] = "otp25";
    int found = 0;
    if (ph_buf_init(&key) != 0 || ph_build(&key, "~s", "atom_encoding") != 0) {
        ph_buf_free(&key);
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    found = ph_map_get(config, ph_buf_term(&key), &enc) == 1;
    ph_buf_free(&key);
    const char *bytes;
    size_t len;
    if (found) {
        if (ph_match(enc, "~b", &bytes, &len) != 1 || len >= sizeof text) {
            snprintf(err, err_size,
                     "distribution_strategy.atom_encoding must be \"otp25\" or \"otp26\"");
            return NULL;
        }
        memcpy(text, bytes, len);
        text[len] = 0;
    }
    if (strcmp(text, "otp25") != 0 && strcmp(text, "otp26") != 0) {
        snprintf(err, err_size,
                 "distribution_strategy.atom_encoding must be \"otp25\" or \"otp26\"");
        return NULL;
    }
    ring *r = ring_new(strcmp(text, "otp26") == 0 ? RING_ATOMS_OTP26 : RING_ATOMS_OTP25);
    if (!r)
        snprintf(err, err_size, "out of memory");
    return r;
}

static void ch_free(void *st)
{
    ring_free(st);
}

static int ch_node_added(void *st, const char *node)
{
    return ring_add_node(st, node);
}

static int ch_node_removed(void *st, const char *node)
{
    return ring_remove_node(st, node);
}

static int ch_place(void *st, ph_term id, int rf, const char **out, int max)
{
    return ring_key_nodes(st, id, rf, out, max);
}

static uint64_t ch_digest(void *st)
{
    return ring_digest(st);
}

const ph_distribution_ops consistent_hashing_strategy = {
    .api_version = PH_DISTRIBUTION_API,
    .type = "consistent_hashing",
    .init = ch_init,
    .free = ch_free,
    .node_added = ch_node_added,
    .node_removed = ch_node_removed,
    .place = ch_place,
    .digest = ch_digest,
};
