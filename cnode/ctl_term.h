/* ctl_term.h - Erlang terms as JSON values and as short text, for the
 * output of `phnode ctl`: atoms and printable binaries become strings
 * (true/false/nil become JSON's), tuples and lists arrays, maps objects;
 * pids, refs and anything else their Erlang text. */
#ifndef PH_CTL_TERM_H
#define PH_CTL_TERM_H

#include <jansson.h>
#include <processhub/term.h>
#include <stddef.h>

json_t *ctl_term_to_json(ph_term t);
/* A string or integer as is, anything else as Erlang text. */
void ctl_term_text(ph_term t, char *out, size_t size);

#endif
