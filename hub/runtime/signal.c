/* signal.c - allocation of mailbox signals (header and payload in one block). */
#include "hub/runtime/atoms.h"
#include "hub/runtime/process.h"

#include <stdlib.h>
#include <string.h>

proc_signal *signal_new(sig_kind kind, ph_pid from, const char *payload, uint32_t len)
{
    proc_signal *s = malloc(sizeof *s + len);
    if (!s)
        return NULL;
    s->next = NULL;
    s->kind = (uint8_t)kind;
    s->checked = 0;
    s->name = ATOM_NONE;
    s->id = 0;
    s->from = from;
    memset(&s->ref, 0, sizeof s->ref);
    s->len = len;
    if (len)
        memcpy(s->payload, payload, len);
    return s;
}

void signal_free(proc_signal *s)
{
    free(s);
}
