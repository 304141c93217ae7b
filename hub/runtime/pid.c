/* pid.c - pids and references: equality, encoding, decoding, making refs. */
#include "hub/runtime/atoms.h"
#include "hub/runtime/runtime.h"

#include <stdatomic.h>
#include <string.h>

int ph_pid_equal(ph_pid a, ph_pid b)
{
    return a.node == b.node && a.num == b.num && a.serial == b.serial && a.creation == b.creation;
}

int ph_ref_equal(const ph_ref *a, const ph_ref *b)
{
    if (a->node != b->node || a->creation != b->creation || a->len != b->len)
        return 0;
    return memcmp(a->n, b->n, a->len * sizeof a->n[0]) == 0;
}

const char *ph_pid_node_name(ph_pid pid)
{
    return atom_text(pid.node);
}

int ph_encode_pid(ph_buf *b, ph_pid pid)
{
    erlang_pid e;
    const char *node = atom_text(pid.node);
    if (!*node)
        return -1;
    memset(&e, 0, sizeof e);
    strcpy(e.node, node); /* atom texts are shorter than MAXATOMLEN_UTF8 */
    e.num = pid.num;
    e.serial = pid.serial;
    e.creation = pid.creation;
    return ei_x_encode_pid(b, &e) == 0 ? 0 : -1;
}

/* The node atom this thread decoded last. A member's registry (100k rows)
 * and a batch of exits carry one node name pid after pid: decoding the name
 * again (UTF-8 checks, strlen, the atom table's hash and probe) was a tenth
 * of a joining node's CPU. */
static _Thread_local uint32_t last_node = ATOM_NONE;

/* A NEW_PID_EXT whose node is a UTF-8 atom naming last_node: *pid from
 * its numbers, decoded by ei from a copy with a one-letter node (so they
 * mean exactly what ei_decode_pid makes of them). 0, or -1 to decode it
 * the long way. */
static int decode_pid_same_node(const char *buf, ph_pid *pid)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t len, head;
    if (last_node == ATOM_NONE || p[0] != ERL_NEW_PID_EXT)
        return -1;
    if (p[1] == ERL_SMALL_ATOM_UTF8_EXT) {
        len = p[2];
        head = 3;
    } else if (p[1] == ERL_ATOM_UTF8_EXT) {
        len = (size_t)p[2] << 8 | p[3];
        head = 4;
    } else {
        return -1;
    }
    const char *text = atom_text(last_node); /* "" once the atoms were reset */
    if (strlen(text) != len || memcmp(text, p + head, len) != 0)
        return -1;
    char one[3 + 1 + 12] = {ERL_NEW_PID_EXT, ERL_SMALL_ATOM_UTF8_EXT, 1, 'n'};
    memcpy(one + 4, p + head + len, 12); /* ID, Serial, Creation */
    erlang_pid e;
    int index = 0;
    if (ei_decode_pid(one, &index, &e) != 0)
        return -1;
    pid->node = last_node;
    pid->num = e.num;
    pid->serial = e.serial;
    pid->creation = e.creation;
    return 0;
}

int ph_decode_pid(ph_term t, ph_pid *pid)
{
    if (!t.buf)
        return -1;
    if (decode_pid_same_node(t.buf + t.index, pid) == 0)
        return 0;
    erlang_pid e;
    int index = t.index;
    if (ei_decode_pid(t.buf, &index, &e) != 0)
        return -1;
    uint32_t node = atom_intern(e.node);
    if (node == ATOM_NONE)
        return -1;
    last_node = node;
    pid->node = node;
    pid->num = e.num;
    pid->serial = e.serial;
    pid->creation = e.creation;
    return 0;
}

int ph_encode_ref(ph_buf *b, const ph_ref *ref)
{
    erlang_ref e;
    const char *node = atom_text(ref->node);
    if (!*node || ref->len == 0 || ref->len > 5)
        return -1;
    memset(&e, 0, sizeof e);
    strcpy(e.node, node);
    e.len = (int)ref->len;
    memcpy(e.n, ref->n, ref->len * sizeof ref->n[0]);
    e.creation = ref->creation;
    return ei_x_encode_ref(b, &e) == 0 ? 0 : -1;
}

int ph_decode_ref(ph_term t, ph_ref *ref)
{
    erlang_ref e;
    int index = t.index;
    if (!t.buf || ei_decode_ref(t.buf, &index, &e) != 0 || e.len < 1 || e.len > 5)
        return -1;
    uint32_t node = atom_intern(e.node);
    if (node == ATOM_NONE)
        return -1;
    memset(ref, 0, sizeof *ref);
    ref->node = node;
    ref->creation = e.creation;
    ref->len = (uint32_t)e.len;
    memcpy(ref->n, e.n, (size_t)e.len * sizeof e.n[0]);
    return 0;
}

ph_ref ph_make_ref(void)
{
    static _Atomic uint64_t counter = 1;
    uint64_t c = atomic_fetch_add(&counter, 1);
    ph_ref r;
    memset(&r, 0, sizeof r);
    r.node = runtime_self_node();
    r.creation = runtime_creation();
    r.len = 3;
    r.n[0] = (uint32_t)(c & 0x3ffff); /* first word of a ref holds 18 bits */
    r.n[1] = (uint32_t)(c >> 18);
    r.n[2] = (uint32_t)(c >> 50);
    return r;
}
