/*
 * handover.h - a worker's side of HotSwap migration: handing its state to
 * its new copy, and waiting for that state before serving anything
 * (docs/strategies.md, "The handover protocol").
 *
 * The old copy, told {process_hub, send_handover_state, NewPid, Cid, Opts},
 * encodes its state with prepare_handover_state, sends it to the new copy
 * and from then on forwards every message it receives to the new copy, so
 * a call or cast that reaches the old pid after the snapshot is not lost.
 * The new copy, told {'$ph_handover', await, Cid, Ms} by the hub right
 * after its spawn (before anyone else knows its pid), defers every other
 * message until {process_hub, handover, Cid, {State, Opts}} arrives (or Ms
 * pass), adopts the state with alter_handover_state, then serves what it
 * deferred, in order.
 */
#ifndef PH_HANDOVER_H
#define PH_HANDOVER_H

#include "hub/runtime/process.h"

/* A message for a process in the middle of a handover (p->handover set):
 * returns HANDOVER_PASS when the worker handles it as usual,
 * HANDOVER_KEPT when it was deferred (the signal now belongs to the
 * handover), HANDOVER_DONE when it was forwarded (the caller frees it). */
enum { HANDOVER_PASS, HANDOVER_KEPT, HANDOVER_DONE };
int handover_divert(process *p, proc_signal *s, ph_term msg);

/* A message of the handover protocol, handled by the runtime rather than
 * the worker: 1 when msg was one, 0 otherwise. */
int handover_message(process *p, ph_term msg);

/* The process exits: what it deferred vanishes, as messages to a dead
 * process do. */
void handover_release(process *p);

#endif
