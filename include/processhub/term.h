/*
 * processhub/term.h - build and match Erlang terms without ei_decode_* chains.
 *
 * Terms travel in the external term format. A ph_term is a read-only view
 * of one encoded term inside a buffer; a ph_buf is a growable buffer that
 * terms are appended to (it is ei's ei_x_buff, so every ei_x_encode_* call
 * works on it too).
 *
 * Both ph_build() and ph_match() take a small pattern language that reads
 * like Erlang:
 *
 *   {a, B, c}     tuple              [a, b]      proper list ([] is nil)
 *   ok, 'Quoted'  atom literal       42, -7      integer literal
 *   "text"        binary literal (an Elixir string)
 *   #{k => v}     map (ph_build only; use ph_map_get() to read maps)
 *   _             anything (ph_match only)
 *
 * and directives that take arguments (build: value; match: pointer to out):
 *
 *   ~a  atom        const char *          / char[PH_ATOM_BUF] (NUL-terminated)
 *   ~i  integer     long                  / long *
 *   ~u  unsigned    unsigned long long    / unsigned long long *
 *   ~f  float       double                / double *
 *   ~s  binary      const char * (C string)/ (no match form; use ~b)
 *   ~b  binary      const void *, size_t  / const char **, size_t * (points
 *                                            into the matched buffer)
 *   ~p  pid         const erlang_pid *    / erlang_pid *
 *   ~r  reference   const erlang_ref *    / erlang_ref *
 *   ~t  any term    ph_term               / ph_term *
 *   ~l  list of N   (build only) int N, then N ph_term values: a proper list
 *   ~B  boolean     int (0/1)             / int *  (atoms true/false)
 *
 * Whitespace between elements is ignored. ph_build() appends exactly one
 * term per call (use commas only inside tuples/lists/maps). Quoted atoms and
 * binary literals take the escapes \\ \' \" \n \r \t. Atoms are UTF-8 both
 * ways.
 *
 * Matching is strict like Erlang's: ~i and integer literals match integers
 * only (~i: any integer that fits a long, ~u: 0..2^64-1), ~f matches floats
 * only, ~b matches binaries (not bitstrings), a list pattern matches a proper
 * list of exactly that length. A NULL output pointer skips that output.
 * Erlang sends lists of small integers 0..255 as a byte string (STRING_EXT);
 * such lists match list patterns like any other, except that ~t cannot bind
 * one of their elements (there is no encoded element to point at): ph_match
 * then returns -1. Bind the whole list with ~t and use ph_iter instead.
 *
 * ~t and ~l values given to ph_build() must not point into the buffer being
 * built (it may move while growing); ph_buf_append_term() allows that.
 *
 * Bounds: a ph_term carries no length. ph_term_from_external() is the gate
 * for bytes from outside: it returns a valid view only if one well-formed
 * term lies completely within len bytes. Every other function checks the
 * structure of its terms (tags, nesting, sizes) and returns -1 on garbage,
 * but trusts that the bytes it is pointed at are there, as ei does. Terms
 * may be nested to any depth (walking them uses no recursion); comparing
 * two terms below 64 levels of nesting orders them by their encodings.
 * Patterns are limited to PH_MAX_DEPTH levels. Views into the
 * message a callback is handling (or into its parts, as the functions here
 * return them) are not walked again: the runtime validated that message
 * whole on arrival. Such a view must start where a term starts.
 */
#ifndef PROCESSHUB_TERM_H
#define PROCESSHUB_TERM_H

#include <ei.h>
#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Big enough for any atom (255 UTF-8 characters) plus the NUL. */
#define PH_ATOM_BUF MAXATOMLEN_UTF8

/* Deepest nesting of tuples/lists/maps accepted in patterns (terms: any). */
#define PH_MAX_DEPTH 512

/* A growable encode buffer; the same struct as ei's ei_x_buff. */
typedef ei_x_buff ph_buf;

/* A view of one encoded term: buf[index] is the term's first tag byte. */
typedef struct ph_term {
    const char *buf;
    int index;
} ph_term;

/* Buffer lifecycle. ph_buf_init makes an empty buffer without a version
 * byte; ph_buf_init_versioned starts it with the 131 version byte. Both
 * return 0, or -1 when out of memory. ph_buf_reset empties it for reuse,
 * keeping the version byte if the buffer starts with one. ph_buf_free may
 * be called twice. */
int ph_buf_init(ph_buf *b);
int ph_buf_init_versioned(ph_buf *b);
void ph_buf_reset(ph_buf *b);
/* Makes room for at least extra more bytes, growing geometrically (ei's own
 * growth is linear, which makes building a large term quadratic). ph_build
 * and ph_buf_append_term call it; call it before long runs of ei_x_encode_*.
 * 0 or -1. */
int ph_buf_reserve(ph_buf *b, size_t extra);
void ph_buf_free(ph_buf *b);

/* Appends one term described by fmt. Returns 0, or -1 on a malformed
 * pattern, an unencodable argument (NULL string, invalid UTF-8 atom, NaN,
 * undecodable ~t term) or out of memory (the buffer is then restored to its
 * previous length). */
int ph_build(ph_buf *b, const char *fmt, ...);
int ph_vbuild(ph_buf *b, const char *fmt, va_list ap);

/* Matches the term t against pattern. Returns 1 on a match (all outputs
 * written), 0 on no match (outputs may be partly written), -1 when the
 * pattern itself is malformed or the term cannot be decoded. */
int ph_match(ph_term t, const char *pattern, ...);
int ph_vmatch(ph_term t, const char *pattern, va_list ap);

/* The term that starts a buffer: skips a leading version byte if present.
 * A buffer built with ph_buf_init holds one term at index 0. An empty
 * buffer gives an invalid view (buf == NULL). */
ph_term ph_buf_term(const ph_buf *b);

/* The view that starts just after the version byte of a received message,
 * or an invalid view (buf == NULL) if the version byte is missing or the
 * bytes after it are not one well-formed term that ends within len (the
 * whole term is checked, so views derived from the result are safe). */
ph_term ph_term_from_external(const char *buf, int len);

/* Index just past t, or -1 if t cannot be decoded. */
int ph_term_end(ph_term t);

/* ei's ERL_*_EXT type of t (ERL_ATOM_EXT for every atom encoding, ...),
 * and the arity/length/size in *size; -1 on error. */
int ph_term_type(ph_term t, int *size);

/* Compares two terms in Erlang term order: <0, 0, >0. Like Erlang's ==,
 * integers and floats compare by value (1 and 1.0 compare equal). A term
 * that cannot be decoded sorts after every valid term. */
int ph_term_compare(ph_term a, ph_term b);

/* Exact equality, Erlang's =:= (1 and 1.0 differ): 1 or 0 (also 0 when a
 * term cannot be decoded). Encoding differences such as ATOM_EXT vs
 * SMALL_ATOM_UTF8_EXT or STRING_EXT vs LIST_EXT do not matter. */
int ph_term_equal(ph_term a, ph_term b);

/* Appends the encoded term t to b (a byte copy; t may point into b).
 * 0 or -1. */
int ph_buf_append_term(ph_buf *b, ph_term t);

/* Looks key (an encoded term) up in the map m, comparing keys with
 * ph_term_equal. Returns 1 and the value in *value, 0 when absent or when m
 * is not a map, -1 on a decode error. */
int ph_map_get(ph_term m, ph_term key, ph_term *value);

/* Same with an atom key given as a C string. */
int ph_map_get_atom(ph_term m, const char *key, ph_term *value);

/* Elements of a tuple, proper list or map, one at a time:
 *   ph_iter it; ph_term e;
 *   if (ph_iter_begin(&it, list) < 0) ...;
 *   while (ph_iter_next(&it, &e) > 0) ...
 * ph_iter_begin returns the number of elements ph_iter_next will yield, or
 * -1 if t is not a tuple, proper list or map (or cannot be decoded).
 * ph_iter_next returns 1 and the next element, 0 at the end, -1 on a decode
 * error. For maps, elements alternate key, value (2 per pair). The element
 * of a byte-string list (STRING_EXT) is a view of a copy inside the
 * iterator, valid until the next ph_iter_next call. */
typedef struct ph_iter {
    const char *buf;
    int index;
    int remaining;   /* elements left in the current tuple/map/list segment */
    int kind;        /* internal: what is being walked */
    char scratch[2]; /* internal: the current STRING_EXT element */
    int pending;     /* internal: the element at index was returned, not yet skipped */
} ph_iter;
int ph_iter_begin(ph_iter *it, ph_term t);
int ph_iter_next(ph_iter *it, ph_term *element);

/* Writes a printable form of t (Erlang syntax, truncated with "..." to fit)
 * into out, always NUL-terminated when out_size > 0; returns out. For log
 * lines. */
char *ph_term_format(ph_term t, char *out, size_t out_size);

#ifdef __cplusplus
}
#endif

#endif
