/* atoms.h - interned strings: node names and registered names become small
 * integers so pids, links and monitors stay compact. Append-only: an atom's
 * index and text never change, so reading atom_text needs no lock. */
#ifndef PH_ATOMS_H
#define PH_ATOMS_H

#include <stdint.h>

#define ATOM_NONE UINT32_MAX

/* Returns the index of text (interning it on first use) or ATOM_NONE when
 * text is longer than an atom may be or memory is exhausted. */
uint32_t atom_intern(const char *text);
/* Index of text if already interned, else ATOM_NONE. */
uint32_t atom_lookup(const char *text);
/* The text of an interned atom; "" for ATOM_NONE or an unknown index. */
const char *atom_text(uint32_t atom);
void atoms_shutdown(void);

#endif
