/* tombs.c - the tombs: ids this node stopped in the last TOMB_MS, with the
 * stop's stamp, so that a hand-off or registration sent before the stop
 * and arriving after it does not bring the child back. (The store is
 * tomb_log.c.) */
#include "hub/hub_internal.h"

/* How long a stopped id refuses hand-offs. A hand-off races a stop only
 * while both are in flight; 30 s covers any move (migr_base_timeout) and
 * any orphan check. */
#define TOMB_MS 30000

uint64_t tomb_expiry(void)
{
    return monotonic_ms() + TOMB_MS;
}

void tomb_add(hub *h, const char *key, uint32_t key_len, uint32_t hash, uint64_t stamp,
              uint64_t until_ms)
{
    /* This runs per stopped child. A tomb already there (the id stopped
     * again within TOMB_MS) keeps the latest stop's stamp. */
    if (tomb_log_put(h->tombs, key, key_len, hash, stamp, until_ms) != 0)
        LOG_W("hub", "%s: out of memory remembering a stopped id", h->cfg.hub_id);
}

void tombs_reserve(hub *h, uint32_t extra)
{
    /* a hint: out of memory, the puts grow the index themselves */
    (void)tomb_log_reserve(h->tombs, extra);
}

void tomb_prefetch(hub *h, uint32_t hash)
{
    tomb_log_prefetch(h->tombs, hash);
}

void tomb_clear(hub *h, const char *key, uint32_t key_len)
{
    /* no hash when there is no tomb at all, the common case */
    if (tomb_log_count(h->tombs))
        tomb_log_delete(h->tombs, key, key_len, registry_hash(key, key_len));
}

static uint64_t stamp_of(hub *h, const char *key, uint32_t key_len, uint32_t hash)
{
    uint64_t stamp;
    if (!tomb_log_get(h->tombs, key, key_len, hash, &stamp))
        return 0;
    return stamp ? stamp : 1;
}

uint64_t tomb_stamp(hub *h, const char *key, uint32_t key_len)
{
    /* asked for every registered row a member publishes */
    return tomb_log_count(h->tombs) ? stamp_of(h, key, key_len, registry_hash(key, key_len)) : 0;
}

int tomb_holds(hub *h, const reg_row *row)
{
    return tomb_log_count(h->tombs) && stamp_of(h, row->data, row->key_len, row->hash) > row->stamp;
}

void tombs_prune(hub *h)
{
    tomb_log_prune(h->tombs, monotonic_ms());
}
