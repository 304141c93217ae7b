/* child_spec.c - reading child specs (%{id, start, restart, shutdown}) in place. */
#include "hub/hub_internal.h"

static int atom_bytes(const char *buf, int index, const char **text, int *len);
static int atom_is(const char *text, int len, const char *name);
static int atom_at_is(const char *buf, int index, const char *name);

/* --- child specs -------------------------------------------------------- */

int atom_at(const char *buf, int *index, char *out)
{
    int type, size;
    if (ei_get_type(buf, index, &type, &size) != 0 ||
        (type != ERL_ATOM_EXT && type != ERL_SMALL_ATOM_EXT && type != ERL_ATOM_UTF8_EXT &&
         type != ERL_SMALL_ATOM_UTF8_EXT))
        return -1;
    return ei_decode_atom(buf, index, out);
}

/* The bytes of the atom at buf[index], in any of its four encodings; for
 * comparing with ASCII names, whose bytes are the same in Latin-1 and
 * UTF-8. 0, or -1 when the term there is not an atom. */
static int atom_bytes(const char *buf, int index, const char **text, int *len)
{
    const unsigned char *p = (const unsigned char *)buf + index;
    switch (p[0]) {
    case ERL_SMALL_ATOM_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        *len = p[1];
        *text = buf + index + 2;
        return 0;
    case ERL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
        *len = p[1] << 8 | p[2];
        *text = buf + index + 3;
        return 0;
    }
    return -1;
}

static int atom_is(const char *text, int len, const char *name)
{
    return (size_t)len == strlen(name) && memcmp(text, name, (size_t)len) == 0;
}

/* The atom at buf[index] is name. */
static int atom_at_is(const char *buf, int index, const char *name)
{
    const char *text;
    int len;
    return atom_bytes(buf, index, &text, &len) == 0 && atom_is(text, len, name);
}

/* One pass over the spec map (the message was validated when it arrived;
 * this is the hot path of a 100k-child start): keys and atoms are compared
 * in place, only the module name is decoded. */
int parse_spec(ph_term spec, spec_info *s)
{
    const char *buf = spec.buf;
    int index = spec.index, arity, size;
    char fun[PH_ATOM_BUF];
    int have_id = 0, have_start = 0;
    memset(s, 0, sizeof *s);
    s->restart = RESTART_PERMANENT;
    s->shutdown_ms = DEFAULT_SHUTDOWN_MS;
    if (!buf || ei_decode_map_header(buf, &index, &arity) != 0)
        return -1;
    for (int i = 0; i < arity; i++) {
        const char *key;
        int key_len;
        int is_atom = atom_bytes(buf, index, &key, &key_len) == 0;
        if (term_skip_valid(buf, &index) != 0)
            return -1;
        int value = index;
        if (!is_atom) {
            /* not one of ours: skip the value below */
        } else if (atom_is(key, key_len, "id")) {
            const char *text;
            int len;
            if ((unsigned char)buf[value] != ERL_BINARY_EXT &&
                atom_bytes(buf, value, &text, &len) != 0)
                return -1;
            s->id = (ph_term){buf, value};
            have_id = 1;
        } else if (atom_is(key, key_len, "start")) {
            int t = value;
            if (ei_decode_tuple_header(buf, &t, &size) != 0 || size != 3 ||
                atom_at(buf, &t, s->module) != 0 || atom_at(buf, &t, fun) != 0)
                return -1;
            s->args = (ph_term){buf, t};
            have_start = 1;
        } else if (atom_is(key, key_len, "restart")) {
            if (atom_at_is(buf, value, "permanent"))
                s->restart = RESTART_PERMANENT;
            else if (atom_at_is(buf, value, "transient"))
                s->restart = RESTART_TRANSIENT;
            else if (atom_at_is(buf, value, "temporary"))
                s->restart = RESTART_TEMPORARY;
            else
                return -1;
        } else if (atom_is(key, key_len, "shutdown")) {
            int t = value;
            long ms;
            if (atom_at_is(buf, value, "brutal_kill"))
                s->shutdown_ms = SHUTDOWN_BRUTAL;
            else if (atom_at_is(buf, value, "infinity"))
                s->shutdown_ms = SHUTDOWN_INFINITY;
            else if (ei_decode_long(buf, &t, &ms) == 0 && ms >= 0)
                s->shutdown_ms = ms;
            else
                return -1;
        }
        if (term_skip_valid(buf, &index) != 0)
            return -1;
    }
    return have_id && have_start ? 0 : -1;
}
