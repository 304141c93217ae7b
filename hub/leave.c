/* leave.c - graceful leave: members take over our children before we stop. */
#include "hub/hub_internal.h"
#include "strategies/migration/migration_ops.h"

/* --- graceful leave ------------------------------------------------------- */

/* Posted by the hub when every member has taken over our children (or
 * there are none); hub_leave() waits for it. */
static sem_t leave_sem;

int leave_init(void)
{
    static int ready;
    if (!ready && sem_init(&leave_sem, 0, 0) != 0)
        return -1;
    ready = 1;
    return 0;
}

void leave_confirmed(hub *h, uint32_t node)
{
    for (int i = 0; i < h->n_leave_wait; i++)
        if (h->leave_wait[i] == node) {
            h->leave_wait[i] = h->leave_wait[--h->n_leave_wait];
            if (h->n_leave_wait == 0)
                sem_post(&leave_sem);
            return;
        }
}

/* SIGTERM: our ring loses this node, so starts still
 * arriving are forwarded to their new owners, and the migration strategy
 * decides how our children reach them: restarted afresh by each member
 * when told we leave (cold_swap), or moved there with their state first
 * (hot_swap with handover). Our children run until the node stops. */
void begin_leave(hub *h, ph_ctx *ctx)
{
    if (h->leaving)
        return;
    h->leaving = 1;
    strategy_node_removed(h, h->self_node);
    h->migration->leave(h, ctx);
}

/* Tells every member we leave; each takes over the children of ours it
 * now owns (those not moved already) and confirms. */
void leave_announce(hub *h, ph_ctx *ctx)
{
    if (h->members.n > 0)
        h->leave_wait = calloc((size_t)h->members.n, sizeof *h->leave_wait);
    if (!h->leave_wait) {
        sem_post(&leave_sem);
        return;
    }
    LOG_I("hub", "%s: leaving the hub cluster; %d member(s) take over our children", h->cfg.hub_id,
          h->members.n);
    for (int i = 0; i < h->members.n; i++) {
        h->leave_wait[h->n_leave_wait++] = h->members.members[i].node;
        send_hub_message(h, ctx, h->members.members[i].node, HM_LEAVE);
    }
}

int hub_leave(const hub_config *c)
{
    ph_buf b;
    struct timespec deadline;
    if (ph_buf_init(&b) != 0)
        return -1;
    int rc = hub_msg_begin(&b, HM_GRACEFUL_LEAVE) == 0 &&
                     ph_send_named(NULL, c->hub_id, NULL, ph_buf_term(&b)) == 0
                 ? 0
                 : -1;
    ph_buf_free(&b);
    if (rc != 0)
        return -1; /* no hub */
    /* With handovers first: each move's start, then its retention. */
    unsigned wait_ms = c->migr_base_timeout +
                       (c->hot_swap && c->handover ? c->child_migration_timeout + c->retention : 0);
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while ((rc = sem_timedwait(&leave_sem, &deadline)) != 0 && errno == EINTR)
        ;
    return rc == 0 ? 0 : -1;
}
