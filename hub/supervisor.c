/* supervisor.c - exits of children: restarts by restart type, restart intensity. */
#include "hub/hub_internal.h"

static int is_shutdown_reason(ph_term reason);
static int intensity_exceeded(hub *h);

/* --- exits of children (supervision) ----------------------------------- */

static int is_shutdown_reason(ph_term reason)
{
    return ph_match(reason, "normal") == 1 || ph_match(reason, "shutdown") == 1 ||
           ph_match(reason, "{shutdown, _}") == 1;
}

/* Restart intensity: 0 if another restart is allowed now. */
static int intensity_exceeded(hub *h)
{
    if (h->cfg.dsup_max_restarts == 0)
        return 1;
    uint64_t now = monotonic_ms();
    uint64_t window = (uint64_t)h->cfg.dsup_max_seconds * 1000u;
    uint32_t max = h->cfg.dsup_max_restarts;
    if (h->restart_n == max && now - h->restarts[h->restart_next] <= window)
        return 1;
    h->restarts[h->restart_next] = now;
    h->restart_next = (h->restart_next + 1) % max;
    if (h->restart_n < max)
        h->restart_n++;
    return 0;
}

void child_exited(hub *h, ph_ctx *ctx, child *c, ph_term reason)
{
    if (c->stopping) {
        if (c->wait) {
            c->wait->outstanding--;
            stop_wait_done(c->wait);
        }
        child_remove(h, c);
        return;
    }
    reg_row *row = registry_get(h->reg, c->key, c->key_len);
    int restart = row && (c->restart == RESTART_PERMANENT ||
                          (c->restart == RESTART_TRANSIENT && !is_shutdown_reason(reason)));
    char text[200];
    if (restart && intensity_exceeded(h)) {
        metric_inc(&hm_restart_limit);
        LOG_E("hub", "%s: restart intensity exceeded (%u restarts in %u s): %s not restarted",
              h->cfg.hub_id, h->cfg.dsup_max_restarts, h->cfg.dsup_max_seconds,
              ph_term_format(reg_row_key(row), text, sizeof text));
        restart = 0;
    }
    if (restart) {
        spec_info s;
        ph_buf why;
        ph_pid pid;
        ph_buf_init(&why);
        if (parse_spec(reg_row_spec(row), &s) == 0 && spawn_child(ctx, &s, &pid, &why) == 0) {
            child *nc = child_add(h, pid, c->key, c->key_len, &s);
            registry_set_node(h->reg, row, h->self_node, pid);
            child_remove(h, c);
            if (nc) {
                metric_inc(&hm_restarts);
                fire_insert(h, ctx, row);
                note_registered(h, row, pid);
                signal_role(h, ctx, row, pid); /* a fresh copy is told its role again */
                fire_pid_update(h, ctx, h->self_node, pid);
            }
            ph_buf_free(&why);
            return;
        }
        LOG_E("hub", "%s: restart of %s failed: %s", h->cfg.hub_id,
              ph_term_format(reg_row_key(row), text, 100),
              ph_term_format(ph_buf_term(&why), text + 100, 100));
        ph_buf_free(&why);
    }
    unregister_local(h, ctx, c->key, c->key_len);
    child_remove(h, c);
}
