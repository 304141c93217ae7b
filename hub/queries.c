/* queries.c - the read-only API: lookups, process lists, dumps, tag queries. */
#include "hub/hub_internal.h"

static reg_row *row_of(hub *h, ph_term cid);
static void append_cid_cell(ph_buf *reply, const reg_row *row, const ph_pid *local_pid);

/* --- queries ------------------------------------------------------------- */

/* The queries answer for running children only: an orphan (its copies
 * ran on members that left, its owner is restarting it) is not listed
 * until it runs again. */

/* The registry row of a running child id, or NULL. */
static reg_row *row_of(hub *h, ph_term cid)
{
    reg_row *row = registry_find(h->reg, cid, &h->key_scratch);
    return row && row->n_nodes ? row : NULL;
}

ph_result reply_lookup(hub *h, ph_term cid, int with_metadata, ph_buf *reply)
{
    reg_row *row = row_of(h, cid);
    if (!row)
        return ph_build(reply, "nil") == 0 ? PH_REPLY : PH_NOREPLY;
    ei_x_encode_tuple_header(reply, with_metadata ? 3 : 2);
    ph_buf_append_term(reply, reg_row_spec(row));
    registry_encode_nodes(reply, row);
    if (with_metadata)
        ph_buf_append_term(reply, reg_row_meta(row));
    return PH_REPLY;
}

ph_result reply_pids(hub *h, ph_term cid, int first_only, ph_buf *reply)
{
    reg_row *row = row_of(h, cid);
    if (first_only) {
        /* a replicated child: the copy here if there is one, else the
         * active one, else the first */
        ph_pid pid;
        if (!row || !row->n_nodes) {
            ph_build(reply, "nil");
            return PH_REPLY;
        }
        pid = row->nodes[0].pid;
        if (row->n_nodes > 1 && !row_local_pid(h, row, &pid)) {
            uint32_t active = hub_active_node(h, reg_row_key(row));
            pid = row->nodes[0].pid;
            for (uint16_t i = 0; i < row->n_nodes; i++)
                if (row->nodes[i].node == active)
                    pid = row->nodes[i].pid;
        }
        ph_encode_pid(reply, pid);
        return PH_REPLY;
    }
    for (uint16_t i = 0; row && i < row->n_nodes; i++) {
        ei_x_encode_list_header(reply, 1);
        ph_encode_pid(reply, row->nodes[i].pid);
    }
    ei_x_encode_empty_list(reply);
    return PH_REPLY;
}

/* Appends one list cell [{Cid, PidOrNodePids} | ...] for row. */
static void append_cid_cell(ph_buf *reply, const reg_row *row, const ph_pid *local_pid)
{
    ph_buf_reserve(reply, 128);
    ei_x_encode_list_header(reply, 1);
    ei_x_encode_tuple_header(reply, 2);
    ph_buf_append_term(reply, reg_row_key(row));
    if (local_pid)
        ph_encode_pid(reply, *local_pid);
    else
        registry_encode_nodes(reply, row);
}

ph_result reply_process_list(hub *h, int local, ph_buf *reply)
{
    uint32_t i = 0;
    reg_row *row;
    ph_pid pid;
    while ((row = registry_next(h->reg, &i)) != NULL) {
        if (local ? !row_local_pid(h, row, &pid) : !row->n_nodes)
            continue;
        append_cid_cell(reply, row, local ? &pid : NULL);
    }
    ei_x_encode_empty_list(reply);
    return PH_REPLY;
}

/* Rows that name a running copy (orphans aside). */
uint32_t running_count(hub *h)
{
    return registry_running(h->reg);
}

ph_result reply_dump(hub *h, ph_buf *reply)
{
    uint32_t i = 0, n = 0;
    reg_row *row;
    /* counted here, not taken from registry_running: the map's arity must
     * be exactly the entries that follow */
    while ((row = registry_next(h->reg, &i)) != NULL)
        n += row->n_nodes != 0;
    ei_x_encode_map_header(reply, n);
    i = 0;
    while ((row = registry_next(h->reg, &i)) != NULL) {
        if (!row->n_nodes)
            continue;
        ph_buf_reserve(reply, 128);
        ph_buf_append_term(reply, reg_row_key(row));
        ei_x_encode_tuple_header(reply, 3);
        ph_buf_append_term(reply, reg_row_spec(row));
        registry_encode_nodes(reply, row);
        ph_buf_append_term(reply, reg_row_meta(row));
    }
    return PH_REPLY;
}

ph_result reply_tag_query(hub *h, ph_term tag, ph_buf *reply)
{
    uint32_t i = 0;
    reg_row *row;
    ph_term v;
    while ((row = registry_next(h->reg, &i)) != NULL) {
        if (!row->n_nodes || ph_map_get_atom(reg_row_meta(row), "tag", &v) != 1 ||
            !ph_term_equal(v, tag))
            continue;
        append_cid_cell(reply, row, NULL);
    }
    ei_x_encode_empty_list(reply);
    return PH_REPLY;
}

/* The copy of row on node, if it has one. */
static int row_pid_on(const reg_row *row, uint32_t node, ph_pid *pid)
{
    for (uint16_t i = 0; i < row->n_nodes; i++)
        if (row->nodes[i].node == node) {
            *pid = row->nodes[i].pid;
            return 1;
        }
    return 0;
}

void encode_which_children(hub *h, uint32_t node, ph_buf *reply)
{
    uint32_t i = 0;
    reg_row *row;
    ph_pid pid;
    ei_x_encode_tuple_header(reply, 2);
    atom_encode(reply, node);
    while ((row = registry_next(h->reg, &i)) != NULL) {
        spec_info s;
        if (!row_pid_on(row, node, &pid) || parse_spec(reg_row_spec(row), &s) != 0)
            continue;
        ei_x_encode_list_header(reply, 1);
        ei_x_encode_tuple_header(reply, 4);
        ph_buf_append_term(reply, reg_row_key(row));
        ph_encode_pid(reply, pid);
        ei_x_encode_atom(reply, "worker");
        ph_build(reply, "[~a]", s.module);
    }
    ei_x_encode_empty_list(reply);
}
