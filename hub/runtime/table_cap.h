/*
 * table_cap.h - sizing of the open-addressing tables (registry rows, the
 * hub's children). Linear probing slows down sharply past half full, and
 * deleted slots (tombstones) count as full for a lookup that misses: a
 * round of 100k stops followed by 100k starts would otherwise probe
 * through the previous round's tombstones. So a table rehashes when its
 * used slots (live + deleted) would pass half the capacity, and a rehash
 * drops the tombstones and sizes for at most 3/8 live, which leaves room
 * before the next one.
 */
#ifndef PH_TABLE_CAP_H
#define PH_TABLE_CAP_H

#include <stdint.h>

/* True when `used` slots plus `extra` more would pass half of `cap`. */
static inline int table_needs_rehash(uint32_t used, uint64_t extra, uint32_t cap)
{
    return ((uint64_t)used + extra) * 2 > (uint64_t)cap;
}

/* 0 and *out: the smallest power-of-two capacity >= cap (never shrinking)
 * that holds `live` entries at most 3/8 full; -1 past 2^31 slots. */
static inline int table_cap_for(uint32_t cap, uint64_t live, uint32_t *out)
{
    if (cap < 64)
        cap = 64;
    while (live * 8 > (uint64_t)cap * 3) {
        if (cap > (1u << 30))
            return -1;
        cap *= 2;
    }
    *out = cap;
    return 0;
}

#endif
