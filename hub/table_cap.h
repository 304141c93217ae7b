/*
 * table_cap.h - sizing of the open-addressing tables (registry rows, the
 * hub's children): the power-of-two capacity that keeps them at most 3/4
 * full with `want` entries in use.
 */
#ifndef PH_TABLE_CAP_H
#define PH_TABLE_CAP_H

#include <stdint.h>

/* 0 and *out (>= cap), or -1 when that would exceed 2^31 slots. */
static inline int table_cap_for(uint32_t cap, uint64_t want, uint32_t *out)
{
    while (want * 4 > (uint64_t)cap * 3) {
        if (cap > (1u << 30))
            return -1;
        cap *= 2;
    }
    *out = cap;
    return 0;
}

#endif
