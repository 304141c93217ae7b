/* start_parts.c - a big awaited start's started list sent to its caller in
 * parts while the hub is still registering the rest (result_parts,
 * docs/api.md), and the result that ends it.
 *
 * The caller decodes and stores (its cache) part k while the hub registers
 * the children of part k+1: what the raw call does after the whole result
 * has come overlaps the start itself. The parts are sent to the caller's
 * pid on the connection the reply takes, so they all arrive before it. */
#include "hub/hub_internal.h"

#include <sys/uio.h>

/* {phnode_start_part, Ref, Seq, [Entry]}: Seq the number of the last
 * message of the registry_seq subscription sent so far (undefined
 * without one); the entries are started's own bytes, not copied. */
void start_part_send(hub *h, ph_ctx *ctx, const start_opts *o, start_result *r, int min)
{
    static const char nil = ERL_NIL_EXT;
    int n = r->started.n - r->part_n;
    if (!o->parts || n < min || n <= 0)
        return;
    long long seq = o->has_sub ? subscription_last_seq(h, &o->sub) : -1;
    ph_buf head;
    if (ph_buf_init_versioned(&head) != 0)
        return;
    if (ei_x_encode_tuple_header(&head, 4) == 0 &&
        ei_x_encode_atom(&head, "phnode_start_part") == 0 &&
        ph_buf_append_term(&head, o->parts_ref) == 0 &&
        (seq >= 0 ? ei_x_encode_longlong(&head, seq) : ei_x_encode_atom(&head, "undefined")) == 0 &&
        ei_x_encode_list_header(&head, n) == 0) {
        struct iovec pieces[3] = {
            {head.buff, (size_t)head.index},
            {r->started.b.buff + r->part_off, (size_t)(r->started.b.index - r->part_off)},
            {(void *)&nil, 1}};
        /* written or copied before this returns: started may grow after */
        route_message_pieces(ph_self(ctx), o->parts_to, pieces, 3);
        r->parts_sent++;
        r->part_n = r->started.n;
        r->part_off = r->started.b.index;
    }
    ph_buf_free(&head);
}

int encode_start_result_rest(ph_buf *out, const start_result *r, int rollback, long long seq,
                             long long omitted)
{
    int rest = r->started.n - r->part_n;
    const elist *errors = &r->errors;
    if (ph_buf_reserve(out, (size_t)(r->started.b.index - r->part_off) + (size_t)errors->b.index +
                                256u) != 0 ||
        ei_x_encode_tuple_header(out, 2) != 0 || ei_x_encode_atom(out, "ok") != 0 ||
        ei_x_encode_map_header(out, 5 + (seq >= 0) + (omitted >= 0)) != 0 ||
        (seq >= 0 &&
         (ei_x_encode_atom(out, "registry_seq") != 0 || ei_x_encode_longlong(out, seq) != 0)) ||
        (omitted >= 0 && (ei_x_encode_atom(out, "registry_omitted") != 0 ||
                          ei_x_encode_longlong(out, omitted) != 0)) ||
        ei_x_encode_atom(out, "result_parts") != 0 ||
        ei_x_encode_longlong(out, r->parts_sent) != 0 || ei_x_encode_atom(out, "status") != 0 ||
        ei_x_encode_atom(out, errors->n ? "error" : "ok") != 0 ||
        ei_x_encode_atom(out, "started") != 0 ||
        (rest > 0 && (ei_x_encode_list_header(out, rest) != 0 ||
                      ei_x_append_buf(out, r->started.b.buff + r->part_off,
                                      r->started.b.index - r->part_off) != 0)) ||
        ei_x_encode_empty_list(out) != 0 || ei_x_encode_atom(out, "errors") != 0 ||
        elist_to(out, errors) != 0 || ei_x_encode_atom(out, "rollback") != 0 ||
        ei_x_encode_atom(out, rollback ? "true" : "false") != 0)
        return -1;
    return 0;
}
