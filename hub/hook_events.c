/* hook_events.c - firing ProcessHub's hooks with their data (the handlers are
 * kept by hooks.c). */
#include "hub/hub_internal.h"

/* --- hooks -------------------------------------------------------------- */

void fire(hub *h, ph_ctx *ctx, const char *key, ph_term data)
{
    hooks_dispatch(h->hooks, ctx, key, &data, NULL);
}

void fire_insert(hub *h, ph_ctx *ctx, const reg_row *row)
{
    if (!hooks_has(h->hooks, "registry_pid_insert_hook"))
        return;
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return;
    if (ei_x_encode_tuple_header(&b, 2) == 0 && ph_buf_append_term(&b, reg_row_key(row)) == 0 &&
        registry_encode_nodes(&b, row) == 0)
        fire(h, ctx, "registry_pid_insert_hook", ph_buf_term(&b));
    ph_buf_free(&b);
}

void fire_remove(hub *h, ph_ctx *ctx, ph_term key, uint32_t node)
{
    if (!hooks_has(h->hooks, "registry_pid_remove_hook"))
        return;
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return;
    if (ph_build(&b, "{~t, [~a]}", key, atom_text(node)) == 0)
        fire(h, ctx, "registry_pid_remove_hook", ph_buf_term(&b));
    ph_buf_free(&b);
}

/* Appends the child_data of hooks for spec: #{hub_id, nodes => [Node],
 * child_id, child_spec, metadata}. 0, or -1 if spec does not parse. */
int add_child_data(const hub *h, elist *out, uint32_t node, ph_term spec, ph_term meta)
{
    spec_info s;
    if (parse_spec(spec, &s) != 0)
        return -1;
    elist_add(out,
              "#{hub_id => ~a, nodes => [~a], child_id => ~t, child_spec => ~t, metadata => ~t}",
              h->cfg.hub_id, atom_text(node), s.id, spec, meta);
    return 0;
}

void fire_node_hook(hub *h, ph_ctx *ctx, const char *key, uint32_t node)
{
    ph_buf b;
    if (!hooks_has(h->hooks, key) || ph_buf_init(&b) != 0)
        return;
    if (ph_build(&b, "~a", atom_text(node)) == 0)
        fire(h, ctx, key, ph_buf_term(&b));
    ph_buf_free(&b);
}

/* pre/post_nodes_redistribution_hook: {nodeup | nodedown, Node} */
void fire_redistribution_hook(hub *h, ph_ctx *ctx, const char *key, const char *event,
                              uint32_t node)
{
    ph_buf b;
    if (!hooks_has(h->hooks, key) || ph_buf_init(&b) != 0)
        return;
    if (ph_build(&b, "{~a, ~a}", event, atom_text(node)) == 0)
        fire(h, ctx, key, ph_buf_term(&b));
    ph_buf_free(&b);
}
