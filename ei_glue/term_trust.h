/*
 * term_trust.h - the runtime tells the term helpers which message it is
 * delivering on this thread. That message was validated whole on arrival
 * (ph_term_from_external), so the helpers need not walk it again on every
 * call: a handler that tries ten patterns on a 2 MB message would otherwise
 * walk 20 MB. Push before the callback, pop (restoring) after it; the
 * buffer must stay alive and unchanged in between.
 */
#ifndef PH_TERM_TRUST_H
#define PH_TERM_TRUST_H

#include "processhub/term.h"

struct term_trust {
    /* a delivered message (version byte at 0), or a buffer the caller
     * encoded itself with ei (with or without the version byte) */
    const char *buf;
    int len;
    unsigned long long epoch; /* set by term_trust_push: see term_trust_epoch */
};

struct term_trust term_trust_push(const char *buf, int len);
/* This thread's trusted message, for a helper thread working on it. */
struct term_trust term_trust_current(void);
void term_trust_pop(struct term_trust saved);
/* The number term_trust_push gave the trusted message (a pop restores the
 * outer one's): a fact noted about the trusted message (a list's length)
 * holds while the number is the same. */
unsigned long long term_trust_epoch(void);
/* Whether t lies in this thread's trusted message. */
int term_is_trusted(ph_term t);

/* Steps *index past the term there, which must be part of a term already
 * validated (a delivered message) or encoded by ei: no checks beyond the
 * tags, no decoding, no recursion. ei_skip_term decodes every atom on the
 * way (a UTF-8 to Latin-1 conversion each), which made it the top cost of
 * walking a 100k-child start. 0, or -1 on a tag it does not know. */
int term_skip_valid(const char *buf, int *index);

/* The index just past the versioned term at the start of buf[0..len),
 * validated as ph_term_from_external does but never reading past len;
 * -1 when it is malformed or truncated. For bytes from the network. */
int term_external_end(const char *buf, int len);

#endif
