/* membership.c - see membership.h. A small array: hub clusters have few
 * nodes next to the children they run. */
#include "hub/membership.h"

#include <stdlib.h>
#include <string.h>

void membership_free(membership *m)
{
    free(m->members);
    m->members = NULL;
    m->n = m->cap = 0;
    free(m->lost);
    m->lost = NULL;
    m->n_lost = m->cap_lost = 0;
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
    m->members[m->n++] = (member){.node = node, .hub = hub, .monitor = *monitor};
    return 0;
}

void membership_remove(membership *m, member *e)
{
    *e = m->members[--m->n];
}

int membership_lost_add(membership *m, uint32_t node)
{
    membership_lost_remove(m, node);
    if (m->n_lost == MEMBERSHIP_LOST_MAX) { /* the oldest goes */
        memmove(m->lost, m->lost + 1, (size_t)(m->n_lost - 1) * sizeof *m->lost);
        m->n_lost--;
    }
    if (m->n_lost == m->cap_lost) {
        int cap = m->cap_lost ? m->cap_lost * 2 : 8;
        uint32_t *n = realloc(m->lost, (size_t)cap * sizeof *n);
        if (!n)
            return -1;
        m->lost = n;
        m->cap_lost = cap;
    }
    m->lost[m->n_lost++] = node;
    return 0;
}

void membership_lost_remove(membership *m, uint32_t node)
{
    for (int i = 0; i < m->n_lost; i++)
        if (m->lost[i] == node) {
            memmove(m->lost + i, m->lost + i + 1, (size_t)(m->n_lost - i - 1) * sizeof *m->lost);
            m->n_lost--;
            return;
        }
}
