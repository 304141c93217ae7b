/* membership.c - see membership.h. A small array: hub clusters have few
 * nodes next to the children they run. */
#include "hub/membership.h"

#include <stdlib.h>

void membership_free(membership *m)
{
    free(m->members);
    m->members = NULL;
    m->n = m->cap = 0;
}

member *membership_find(membership *m, uint32_t node)
{
    for (int i = 0; i < m->n; i++)
        if (m->members[i].node == node)
            return &m->members[i];
    return NULL;
}

member *membership_find_monitor(membership *m, const ph_ref *ref)
{
    for (int i = 0; i < m->n; i++)
        if (ph_ref_equal(&m->members[i].monitor, ref))
            return &m->members[i];
    return NULL;
}

int membership_add(membership *m, uint32_t node, ph_pid hub, const ph_ref *monitor)
{
    if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 8;
        member *n = realloc(m->members, (size_t)cap * sizeof *n);
        if (!n)
            return -1;
        m->members = n;
        m->cap = cap;
    }
    m->members[m->n++] = (member){node, hub, *monitor};
    return 0;
}

void membership_remove(membership *m, member *e)
{
    *e = m->members[--m->n];
}
