/* stamp.c - the hub's hybrid logical clock: the start stamps of children's
 * lines of copies and the stamps of stops (docs/cluster.md, "Stops made
 * during a split").
 *
 * A stamp is the wall clock in ms (48 bits) and a counter (16 bits). Each
 * stamp this node makes is above every stamp it has made or seen, so a
 * start made after this node learnt of a stop is stamped after it, even
 * when the node's wall clock is behind the stopping node's. */
#include "hub/hub_internal.h"

#include <time.h>

/* A stamp further ahead of our wall clock than this is used as it is
 * (compared with others), but does not move our clock: one bad peer
 * must not pin every later stamp of the cluster in the far future. */
#define STAMP_AHEAD_MAX_MS (3600u * 1000u)

static uint64_t wall_stamp(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) != 0)
        return 0; /* the counter alone orders them then */
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    return ms << 16;
}

uint64_t hub_stamp_now(hub *h)
{
    uint64_t wall = wall_stamp();
    h->clock = wall > h->clock ? wall : h->clock + 1;
    return h->clock;
}

void hub_stamp_seen(hub *h, uint64_t stamp)
{
    if (stamp <= h->clock)
        return;
    uint64_t wall = wall_stamp();
    if (wall && stamp > wall + ((uint64_t)STAMP_AHEAD_MAX_MS << 16)) {
        LOG_W("hub", "%s: a stamp %llu ms ahead of this node's clock was not taken into it",
              h->cfg.hub_id, (unsigned long long)((stamp - wall) >> 16));
        return;
    }
    h->clock = stamp;
}
