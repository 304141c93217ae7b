/*
 * adopt.c - a hub that was killed (Process.exit(hub, :kill)) is restarted
 * by the node's supervisor (hub/system/node_sup.c); its children outlive it
 * and the new hub re-adopts them.
 *
 * The dying hub (terminate with reason killed) leaves its children running
 * and writes down, for each, its spec, metadata and pid. The new hub's init
 * puts them back in its registry and child table and links to each: a
 * child that died meanwhile answers the link with EXIT noproc, which the
 * supervisor code handles like any exit (a permanent child is restarted).
 * In a hub cluster the members saw the old hub go down; the new one
 * announces itself, rejoins, and its registry is merged with theirs as on
 * any join (docs/cluster.md).
 */
#include "hub/hub_internal.h"

/* [{Spec, Metadata, Pid}] of the last hub killed; empty when none. The
 * runtime runs one hub at a time, and its init and terminate run on the
 * thread that runs it, so a plain buffer is enough. */
static ph_buf stash;
static int stash_n;

int adopt_stash(hub *h)
{
    if (!stash.buff && ph_buf_init(&stash) != 0)
        return -1;
    ph_buf_reset(&stash);
    stash_n = 0;
    for (uint32_t i = 0; i < h->cap; i++) {
        child *c = h->children[i];
        if (!c || c == GONE || c->stopping)
            continue;
        reg_row *row = registry_get(h->reg, c->key, c->key_len);
        if (!row)
            continue;
        if (ei_x_encode_list_header(&stash, 1) != 0 || ei_x_encode_tuple_header(&stash, 3) != 0 ||
            ph_buf_append_term(&stash, reg_row_spec(row)) != 0 ||
            ph_buf_append_term(&stash, reg_row_meta(row)) != 0 ||
            ph_encode_pid(&stash, c->pid) != 0)
            return -1;
        stash_n++;
    }
    return ei_x_encode_empty_list(&stash) == 0 ? stash_n : -1;
}

void adopt_run(hub *h, ph_ctx *ctx)
{
    if (!stash.buff || stash.index == 0)
        return;
    list_walk w;
    ph_term e, spec, meta, pid_t;
    ph_pid pid;
    int adopted = 0, failed = 0;
    list_begin(&w, ph_buf_term(&stash));
    while (list_next(&w, &e) > 0) {
        spec_info s;
        ph_buf *key = &h->start_key;
        key->index = 0;
        if (ph_match(e, "{~t, ~t, ~t}", &spec, &meta, &pid_t) != 1 ||
            ph_decode_pid(pid_t, &pid) != 0 || parse_spec(spec, &s) != 0 ||
            registry_key(s.id, key) != 0) {
            failed++;
            continue;
        }
        reg_row *row = register_copy(h, key->buff, (uint32_t)key->index, spec, meta, pid, NULL);
        if (!row || !child_add(h, pid, key->buff, (uint32_t)key->index, &s) ||
            ph_link(ctx, pid) != 0) {
            failed++;
            continue;
        }
        adopted++;
    }
    adopt_release();
    log_write(failed ? LOG_ERROR : LOG_WARN, "hub",
              "%s: restarted; re-adopted %d running child(ren)%s", h->cfg.hub_id, adopted,
              failed ? " (some could not be re-adopted)" : "");
}

int adopt_pending(void)
{
    return stash.buff && stash.index > 0;
}

void adopt_release(void)
{
    if (stash.buff)
        ph_buf_free(&stash);
    memset(&stash, 0, sizeof stash);
    stash_n = 0;
}
