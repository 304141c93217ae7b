/* atoms.h - interned strings: node names and registered names become small
 * integers so pids, links and monitors stay compact. Append-only: an atom's
 * index and text never change, so reading atom_text needs no lock. */
#ifndef PH_ATOMS_H
#define PH_ATOMS_H

#include <ei.h>
#include <stdint.h>

#define ATOM_NONE UINT32_MAX

/* Returns the index of text (interning it on first use) or ATOM_NONE when
 * text is longer than an atom may be or memory is exhausted. */
uint32_t atom_intern(const char *text);
/* Index of text if already interned, else ATOM_NONE. */
uint32_t atom_lookup(const char *text);
/* The text of an interned atom; "" for ATOM_NONE or an unknown index. */
const char *atom_text(uint32_t atom);
/* Appends the atom to b as the UTF-8 it is (ei_x_encode_atom would take
 * the text for Latin-1 and garble any name that is not ASCII). 0 or -1. */
int atom_encode(ei_x_buff *b, uint32_t atom);
/* The same for UTF-8 text that is not (yet) an atom of the table. */
int atom_encode_text(ei_x_buff *b, const char *text);
void atoms_shutdown(void);

#endif
