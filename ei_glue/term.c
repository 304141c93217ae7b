/*
 * ei_glue/term.c - the pattern-based term helpers of processhub/term.h.
 *
 * Terms are read with ei's decoders, and ei trusts its input: a bad length
 * or tag makes it read past the term. So every public entry point first
 * walks the whole term with term_span(), which checks the structure of every
 * nested term (and its bounds, where the length is known) and rejects what
 * the ei decoders used later could not cope with. Code behind that check may
 * treat a failing ei call as "cannot happen" but still checks it.
 *
 * No global mutable state: everything lives in the caller's buffers, the
 * iterator, or on the stack.
 */
#include <processhub/term.h>

#include "ei_glue/ei_alloc.h"
#include "ei_glue/term_trust.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERSION_MAGIC 131

/* Views carry no length: their bytes are trusted to exist, so the walk is
 * bounded only by what int indices can address. */
#define UNBOUNDED INT_MAX

/* ei_x_buff sizes are ints and ei adds its own slack when growing; keep
 * well clear of overflowing them. */
#define BUF_SLACK 4096

/* Atom, pid and fun decoding needs ~1-2 KB buffers. Keeping those functions
 * out of line keeps the buffers out of the recursive frames, so deep terms
 * (up to PH_MAX_DEPTH) need little stack. */
#define LEAF __attribute__((noinline))

/* Term classes in Erlang term order:
 * number < atom < reference < fun < port < pid < tuple < map < nil < list
 * < bit string. */
enum term_class {
    CL_NUMBER,
    CL_ATOM,
    CL_REF,
    CL_FUN,
    CL_PORT,
    CL_PID,
    CL_TUPLE,
    CL_MAP,
    CL_NIL,
    CL_LIST,
    CL_BITS,
    CL_BAD
};

/* What a ph_iter walks. */
enum { IT_SEQ = 1, IT_LIST, IT_STRING };

/* The tail of a byte-string list, which has no encoded tail of its own. */
static const char nil_ext[1] = {ERL_NIL_EXT};

/* ------------------------------------------------------------------------
 * Bytes
 */

static unsigned get8(const char *p)
{
    return (unsigned char)p[0];
}

static uint32_t get16(const char *p)
{
    return (uint32_t)get8(p) << 8 | get8(p + 1);
}

static uint32_t get32(const char *p)
{
    return get16(p) << 16 | get16(p + 2);
}

static double get_double(const char *p)
{
    uint64_t bits = 0;
    double d;

    for (int i = 0; i < 8; i++)
        bits = bits << 8 | get8(p + i);
    memcpy(&d, &bits, sizeof d);
    return d;
}

static int order(long long c)
{
    return (c > 0) - (c < 0);
}

static int tag_of(ph_term t)
{
    return (int)get8(t.buf + t.index);
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

/* Characters after the first in an unquoted atom. */
static int is_name_char(char c)
{
    return is_lower(c) || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '@';
}

/* ------------------------------------------------------------------------
 * Validation: term_span() returns the index just past the term at pos, or
 * -1. Positions are long long so that 32-bit sizes cannot overflow them.
 */

/* The bytes a term may occupy, and how strictly to check them. */
struct bytes {
    const char *buf;
    int len;           /* readable: buf[0..len) */
    int distinct_keys; /* also refuse maps with duplicate keys (a sort each) */
};

static long long term_span(const struct bytes *s, long long pos);
static int keys_distinct(ph_term *keys, long long n);

/* End of n bytes starting at pos, or -1 when they run past the end. */
static long long take(const struct bytes *s, long long pos, long long n)
{
    return pos >= 0 && n >= 0 && pos + n <= s->len ? pos + n : -1;
}

/* A count of nested terms; kept small enough that doubling it (maps) and
 * storing it in ei's int arities is safe. */
static long long count_at(const struct bytes *s, long long pos, int wide)
{
    long long n = wide ? get32(s->buf + pos) : get8(s->buf + pos);
    return n <= INT_MAX / 2 ? n : -1;
}

static long long atom_span(const struct bytes *s, long long pos)
{
    if (take(s, pos, 1) < 0)
        return -1;
    int tag = (int)get8(s->buf + pos);
    int wide = tag == ERL_ATOM_EXT || tag == ERL_ATOM_UTF8_EXT;
    int utf8 = tag == ERL_ATOM_UTF8_EXT || tag == ERL_SMALL_ATOM_UTF8_EXT;

    if (!wide && !utf8 && tag != ERL_SMALL_ATOM_EXT)
        return -1;
    long long p = take(s, pos + 1, wide ? 2 : 1);
    if (p < 0)
        return -1;
    long long n = wide ? get16(s->buf + pos + 1) : get8(s->buf + pos + 1);
    /* ei_decode_atom_as() into PH_ATOM_BUF must succeed later: latin-1
     * atoms have at most 255 characters (510 bytes as UTF-8). */
    if (n > (utf8 ? PH_ATOM_BUF - 1 : MAXATOMLEN - 1))
        return -1;
    return take(s, p, n);
}

/* Pids, ports and references: a node atom, then `fixed` bytes. */
static long long node_span(const struct bytes *s, long long pos, long long fixed)
{
    long long p = atom_span(s, pos);
    return p < 0 ? -1 : take(s, p, fixed);
}

static long long pid_span(const struct bytes *s, long long pos)
{
    if (take(s, pos, 1) < 0)
        return -1;
    switch (get8(s->buf + pos)) {
    case ERL_PID_EXT:
        return node_span(s, pos + 1, 9);
    case ERL_NEW_PID_EXT:
        return node_span(s, pos + 1, 12);
    }
    return -1;
}

static long long ref_span(const struct bytes *s, long long pos, int tag)
{
    if (tag == ERL_REFERENCE_EXT)
        return node_span(s, pos + 1, 5);
    if (take(s, pos, 3) < 0)
        return -1;
    long long words = get16(s->buf + pos + 1);
    if (words > 5) /* erlang_ref holds 5 words; ei_decode_ref refuses more */
        return -1;
    return node_span(s, pos + 3, (tag == ERL_NEW_REFERENCE_EXT ? 1 : 4) + 4 * words);
}

static long long int_span(const struct bytes *s, long long pos)
{
    if (take(s, pos, 1) < 0)
        return -1;
    switch (get8(s->buf + pos)) {
    case ERL_SMALL_INTEGER_EXT:
        return take(s, pos, 2);
    case ERL_INTEGER_EXT:
        return take(s, pos, 5);
    }
    return -1;
}

static long long big_span(const struct bytes *s, long long pos, int tag)
{
    int wide = tag == ERL_LARGE_BIG_EXT;
    long long head = take(s, pos, wide ? 6 : 3);

    if (head < 0 || get8(s->buf + head - 1) > 1) /* the sign byte */
        return -1;
    return take(s, head, wide ? get32(s->buf + pos + 1) : get8(s->buf + pos + 1));
}

static long long float_span(const struct bytes *s, long long pos, int tag)
{
    long long end = take(s, pos + 1, tag == NEW_FLOAT_EXT ? 8 : 31);
    const char *p = s->buf + pos + 1;

    if (end < 0)
        return -1;
    if (tag == NEW_FLOAT_EXT) /* Erlang has no NaN or infinity */
        return isfinite(get_double(p)) ? end : -1;
    /* Old text floats: ei runs sscanf() on the 31 bytes, so they must hold
     * a NUL-terminated number. */
    char text[32], *stop;
    if (!memchr(p, '\0', 31))
        return -1;
    memcpy(text, p, 31);
    text[31] = '\0';
    double d = strtod(text, &stop);
    return stop != text && isfinite(d) ? end : -1;
}

static long long bits_span(const struct bytes *s, long long pos, int tag)
{
    long long head = take(s, pos, tag == ERL_BIT_BINARY_EXT ? 6 : 5);

    if (head < 0)
        return -1;
    long long n = get32(s->buf + pos + 1);
    if (tag == ERL_BIT_BINARY_EXT) {
        unsigned last = get8(s->buf + pos + 5); /* bits used in the last byte */
        if (last > 8 || (last == 0) != (n == 0))
            return -1;
    }
    return take(s, head, n);
}

static long long string_span(const struct bytes *s, long long pos)
{
    if (take(s, pos, 3) < 0)
        return -1;
    long long n = get16(s->buf + pos + 1);
    /* ei writes "" as NIL_EXT; an empty STRING_EXT would be a second nil */
    return n > 0 ? take(s, pos + 3, n) : -1;
}

/* EXPORT_EXT: Module, Function, Arity. */
static long long export_span(const struct bytes *s, long long pos)
{
    long long p = atom_span(s, pos + 1);
    p = p < 0 ? -1 : atom_span(s, p);
    return p < 0 ? -1 : int_span(s, p);
}

static long long scalar_span(const struct bytes *s, long long pos, int tag)
{
    switch (tag) {
    case ERL_SMALL_INTEGER_EXT:
    case ERL_INTEGER_EXT:
        return int_span(s, pos);
    case ERL_SMALL_BIG_EXT:
    case ERL_LARGE_BIG_EXT:
        return big_span(s, pos, tag);
    case ERL_FLOAT_EXT:
    case NEW_FLOAT_EXT:
        return float_span(s, pos, tag);
    case ERL_ATOM_EXT:
    case ERL_SMALL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        return atom_span(s, pos);
    case ERL_NIL_EXT:
        return pos + 1;
    case ERL_STRING_EXT:
        return string_span(s, pos);
    case ERL_BINARY_EXT:
    case ERL_BIT_BINARY_EXT:
        return bits_span(s, pos, tag);
    }
    return -1;
}

static long long identity_span(const struct bytes *s, long long pos, int tag)
{
    switch (tag) {
    case ERL_PID_EXT:
    case ERL_NEW_PID_EXT:
        return pid_span(s, pos);
    case ERL_PORT_EXT:
        return node_span(s, pos + 1, 5);
    case ERL_NEW_PORT_EXT:
        return node_span(s, pos + 1, 8);
    case ERL_V4_PORT_EXT:
        return node_span(s, pos + 1, 12);
    case ERL_REFERENCE_EXT:
    case ERL_NEW_REFERENCE_EXT:
    case ERL_NEWER_REFERENCE_EXT:
        return ref_span(s, pos, tag);
    case ERL_EXPORT_EXT:
        return export_span(s, pos);
    }
    return -1;
}

/* The walk keeps its own stack instead of recursing, so a term nested a
 * million levels deep (which the BEAM sends and receives) costs memory on
 * the heap, not the thread's stack. A frame is a run of sibling terms still
 * to walk. Plain runs (tuple elements, list elements and tails, the pairs of
 * a map with fewer than two keys) have nothing to check when they end, and
 * two of them on top of each other are one run whose counts add up: [[[...]]]
 * or {{{...}}} keep one frame whatever their depth. Only a map with keys to
 * check for duplicates and a fun (whose terms must end exactly at its Size)
 * open frames of their own, so the stack grows with the nesting of maps and
 * funs only, each of which takes at least 6 bytes of the input. */
enum walk_kind { W_RUN, W_MAP, W_FUN };

struct walk_frame {
    long long remaining; /* terms still to walk in this frame */
    long long aux;       /* W_MAP: its first key in keys[]; W_FUN: its end */
    int kind;
    int outer_len; /* W_FUN: the bound in force outside the fun */
};

/* Every frame received is walked once, and most terms need a frame or two
 * and no keys: the first ones live in the walk itself, so that a walk
 * allocates only for deep nesting of maps and funs or for big maps. */
#define WALK_INLINE_FRAMES 8
#define WALK_INLINE_KEYS 16

struct walk {
    struct walk_frame *stack;
    long long depth, cap;
    ph_term *keys; /* the keys of the open W_MAP frames, in order */
    long long n_keys, cap_keys;
    struct walk_frame stack_inline[WALK_INLINE_FRAMES];
    ph_term keys_inline[WALK_INLINE_KEYS];
};

static void walk_init(struct walk *w)
{
    w->stack = w->stack_inline;
    w->cap = WALK_INLINE_FRAMES;
    w->keys = w->keys_inline;
    w->cap_keys = WALK_INLINE_KEYS;
    w->depth = w->n_keys = 0;
}

static void walk_free(struct walk *w)
{
    if (w->stack != w->stack_inline)
        free(w->stack);
    if (w->keys != w->keys_inline)
        free(w->keys);
}

/* Grows *p (whose first buffer is inline, not from malloc) to hold need. */
static int walk_grow(void **p, const void *inline_buf, long long *cap, long long need, size_t size)
{
    if (need <= *cap)
        return 0;
    long long c = *cap * 2;
    while (c < need)
        c *= 2;
    void *n = *p == inline_buf ? malloc((size_t)c * size) : realloc(*p, (size_t)c * size);
    if (!n)
        return -1;
    if (*p == inline_buf)
        memcpy(n, inline_buf, (size_t)*cap * size);
    *p = n;
    *cap = c;
    return 0;
}

/* Opens a frame of n terms: folded into a plain run on top when it is one. */
static int walk_push(struct walk *w, int kind, long long n, long long aux, int outer_len)
{
    if (kind == W_RUN && w->depth > 0 && w->stack[w->depth - 1].kind == W_RUN) {
        w->stack[w->depth - 1].remaining += n;
        return 0;
    }
    if (walk_grow((void **)&w->stack, w->stack_inline, &w->cap, w->depth + 1, sizeof *w->stack) !=
        0)
        return -1;
    w->stack[w->depth++] = (struct walk_frame){n, aux, kind, outer_len};
    return 0;
}

/* A NEW_FUN_EXT: tag, Size(4, counts itself), Arity(1), Uniq(16),
 * Index(4), NumFree(4), Module, OldIndex, OldUniq, Pid, free variables.
 * ei_decode_fun walks the inner terms unchecked, so they are checked here,
 * against Size. Returns where the free variables start and sets *end and
 * *nfree; -1 when malformed. */
static long long fun_head(const struct bytes *s, long long pos, long long *end, long long *nfree)
{
    if (take(s, pos, 30) < 0)
        return -1;
    long long size = get32(s->buf + pos + 1);
    *end = take(s, pos + 1, size);
    if (size < 29 || *end < 0)
        return -1;
    struct bytes fun = {s->buf, (int)*end, s->distinct_keys};
    *nfree = get32(s->buf + pos + 26);
    long long p = atom_span(&fun, pos + 30);
    p = p < 0 ? -1 : int_span(&fun, p);
    p = p < 0 ? -1 : int_span(&fun, p);
    return p < 0 ? -1 : pid_span(&fun, p);
}

/* Closes the frame on top, which has no terms left; 0, or -1 when what it
 * checks fails. */
static int walk_close(struct walk *w, struct bytes *s, long long pos)
{
    struct walk_frame *f = &w->stack[--w->depth];
    if (f->kind == W_FUN) {
        s->len = f->outer_len;
        return pos == f->aux ? 0 : -1;
    }
    if (f->kind == W_MAP) {
        long long n = w->n_keys - f->aux;
        int ok = keys_distinct(w->keys + f->aux, n);
        w->n_keys = f->aux;
        return ok ? 0 : -1;
    }
    return 0;
}

/* One term at pos: steps over a leaf, or opens the frame of a container.
 * Returns the position after the term's own header (or the whole leaf). */
static long long walk_term(struct walk *w, struct bytes *s, long long pos)
{
    if (take(s, pos, 1) < 0)
        return -1;
    int tag = (int)get8(s->buf + pos);
    long long n, end, head;
    switch (tag) {
    case ERL_SMALL_TUPLE_EXT:
    case ERL_LARGE_TUPLE_EXT: {
        int wide = tag == ERL_LARGE_TUPLE_EXT;
        if ((head = take(s, pos, wide ? 5 : 2)) < 0 || (n = count_at(s, pos + 1, wide)) < 0)
            return -1;
        return n == 0 || walk_push(w, W_RUN, n, 0, 0) == 0 ? head : -1;
    }
    case ERL_LIST_EXT:
        if (take(s, pos, 5) < 0)
            return -1;
        n = count_at(s, pos + 1, 1);
        if (n <= 0) /* ei writes [] as NIL_EXT, never as an empty LIST_EXT */
            return -1;
        return walk_push(w, W_RUN, n + 1, 0, 0) == 0 ? pos + 5 : -1; /* elements, tail */
    case ERL_MAP_EXT:
        if (take(s, pos, 5) < 0)
            return -1;
        n = count_at(s, pos + 1, 1);
        /* each pair takes at least 2 bytes: a forged count must not make
         * the key array huge */
        if (n < 0 || n > (s->len - pos - 5) / 2)
            return -1;
        if (n == 0)
            return pos + 5;
        if (!s->distinct_keys || n == 1)
            return walk_push(w, W_RUN, 2 * n, 0, 0) == 0 ? pos + 5 : -1;
        if (walk_grow((void **)&w->keys, w->keys_inline, &w->cap_keys, w->n_keys + n,
                      sizeof *w->keys) != 0)
            return -1;
        return walk_push(w, W_MAP, 2 * n, w->n_keys, 0) == 0 ? pos + 5 : -1;
    case ERL_NEW_FUN_EXT:
        if ((head = fun_head(s, pos, &end, &n)) < 0 || walk_push(w, W_FUN, n, end, s->len) != 0)
            return -1;
        s->len = (int)end; /* its free variables stay inside its Size */
        return head;
    }
    end = scalar_span(s, pos, tag);
    return end >= 0 ? end : identity_span(s, pos, tag);
}

/* Old FUN_EXT (pre-R8), ATOM_CACHE_REF, compressed and local terms never
 * reach a C node in practice and are rejected. */
static long long term_span(const struct bytes *bounds, long long pos)
{
    struct walk w = {
        0}; /* (the inline buffers too: gcc cannot see they are written before copied) */
    walk_init(&w);
    struct bytes s = *bounds;
    if (walk_push(&w, W_RUN, 1, 0, 0) != 0)
        return -1;
    while (pos >= 0) {
        struct walk_frame *f = &w.stack[w.depth - 1];
        if (f->remaining == 0) {
            if (walk_close(&w, &s, pos) != 0)
                pos = -1;
            else if (w.depth == 0)
                break;
            continue;
        }
        if (f->kind == W_MAP && f->remaining % 2 == 0) /* a key comes next */
            w.keys[w.n_keys++] = (ph_term){s.buf, (int)pos};
        f->remaining--;
        /* a finished plain run goes before its last term opens a frame, so
         * that frame can fold into the run below */
        if (f->remaining == 0 && f->kind == W_RUN && w.depth > 1)
            w.depth--;
        pos = walk_term(&w, &s, pos);
    }
    walk_free(&w);
    return pos;
}

/* ------------------------------------------------------------------------
 * Skipping validated terms: a count of terms still to step over replaces
 * the recursion, and atoms are stepped over by their length byte(s).
 */

/* Past the atom at pos (inside a validated term). */
static long long valid_atom_end(const char *b, long long pos)
{
    switch (get8(b + pos)) {
    case ERL_SMALL_ATOM_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        return pos + 2 + get8(b + pos + 1);
    default: /* ATOM_EXT, ATOM_UTF8_EXT */
        return pos + 3 + get16(b + pos + 1);
    }
}

int term_skip_valid(const char *b, int *index)
{
    long long pos = *index, pending = 1;
    while (pending-- > 0) {
        int tag = (int)get8(b + pos);
        switch (tag) {
        case ERL_SMALL_INTEGER_EXT:
            pos += 2;
            break;
        case ERL_INTEGER_EXT:
            pos += 5;
            break;
        case NEW_FLOAT_EXT:
            pos += 9;
            break;
        case ERL_FLOAT_EXT:
            pos += 32;
            break;
        case ERL_ATOM_EXT:
        case ERL_SMALL_ATOM_EXT:
        case ERL_ATOM_UTF8_EXT:
        case ERL_SMALL_ATOM_UTF8_EXT:
            pos = valid_atom_end(b, pos);
            break;
        case ERL_NIL_EXT:
            pos += 1;
            break;
        case ERL_STRING_EXT:
            pos += 3 + get16(b + pos + 1);
            break;
        case ERL_BINARY_EXT:
            pos += 5 + (long long)get32(b + pos + 1);
            break;
        case ERL_BIT_BINARY_EXT:
            pos += 6 + (long long)get32(b + pos + 1);
            break;
        case ERL_SMALL_BIG_EXT:
            pos += 3 + get8(b + pos + 1);
            break;
        case ERL_LARGE_BIG_EXT:
            pos += 6 + (long long)get32(b + pos + 1);
            break;
        case ERL_SMALL_TUPLE_EXT:
            pending += get8(b + pos + 1);
            pos += 2;
            break;
        case ERL_LARGE_TUPLE_EXT:
            pending += get32(b + pos + 1);
            pos += 5;
            break;
        case ERL_LIST_EXT: /* the elements and the tail */
            pending += (long long)get32(b + pos + 1) + 1;
            pos += 5;
            break;
        case ERL_MAP_EXT:
            pending += 2 * (long long)get32(b + pos + 1);
            pos += 5;
            break;
        case ERL_PID_EXT:
            pos = valid_atom_end(b, pos + 1) + 9;
            break;
        case ERL_NEW_PID_EXT:
            pos = valid_atom_end(b, pos + 1) + 12;
            break;
        case ERL_PORT_EXT:
            pos = valid_atom_end(b, pos + 1) + 5;
            break;
        case ERL_NEW_PORT_EXT:
            pos = valid_atom_end(b, pos + 1) + 8;
            break;
        case ERL_V4_PORT_EXT:
            pos = valid_atom_end(b, pos + 1) + 12;
            break;
        case ERL_REFERENCE_EXT:
            pos = valid_atom_end(b, pos + 1) + 5;
            break;
        case ERL_NEW_REFERENCE_EXT:
        case ERL_NEWER_REFERENCE_EXT: {
            long long words = get16(b + pos + 1);
            pos = valid_atom_end(b, pos + 3) + (tag == ERL_NEW_REFERENCE_EXT ? 1 : 4) + 4 * words;
            break;
        }
        case ERL_EXPORT_EXT: /* module, function, arity */
            pending += 3;
            pos += 1;
            break;
        case ERL_NEW_FUN_EXT: /* Size counts itself */
            pos += 1 + (long long)get32(b + pos + 1);
            break;
        default:
            return -1;
        }
    }
    if (pos > INT_MAX)
        return -1;
    *index = (int)pos;
    return 0;
}

/* The message the runtime is delivering on this thread, validated whole
 * when it arrived (see term_trust.h): views into it skip the second walk. */
static _Thread_local struct term_trust trusted;
/* Every push gives the message its own number (a pop restores the one
 * before): what was learned about the trusted message holds while the
 * number stays the same. */
static _Thread_local unsigned long long trust_pushes;

struct term_trust term_trust_push(const char *buf, int len)
{
    struct term_trust saved = trusted;
    trusted.buf = buf;
    trusted.len = len;
    trusted.epoch = ++trust_pushes;
    return saved;
}

unsigned long long term_trust_epoch(void)
{
    return trusted.epoch;
}

struct term_trust term_trust_current(void)
{
    return trusted;
}

void term_trust_pop(struct term_trust saved)
{
    trusted = saved;
}

static int is_trusted(ph_term t)
{
    return t.buf && t.buf == trusted.buf && t.index >= 0 && t.index < trusted.len;
}

int term_is_trusted(ph_term t)
{
    return is_trusted(t);
}

/* Index past a term given as a view, or -1; the gate of every entry point.
 * Views are trusted for their bounds (see term.h) and for map keys. */
static long long checked_end(ph_term t)
{
    struct bytes s = {t.buf, UNBOUNDED, 0};

    if (!t.buf || t.index < 0)
        return -1;
    if (is_trusted(t)) {
        int index = t.index;
        return term_skip_valid(t.buf, &index) == 0 && index <= trusted.len ? index : -1;
    }
    return term_span(&s, t.index);
}

/* The gate of the entry points that only need to know the term is sound. */
static int checked_ok(ph_term t)
{
    return is_trusted(t) || checked_end(t) >= 0;
}

/* Just past a view inside a checked term. */
static long long skip_term(const char *buf, int index)
{
    struct bytes s = {buf, UNBOUNDED, 0};
    if (buf && buf == trusted.buf)
        return term_skip_valid(buf, &index) == 0 ? index : -1;
    return term_span(&s, index);
}

/* ------------------------------------------------------------------------
 * Buffers and views
 */

static int has_version(const ph_buf *b)
{
    return b->buff && b->index > 0 && get8(b->buff) == VERSION_MAGIC;
}

/* Whether n more bytes can be appended without overflowing ei's ints. */
static int room_for(const ph_buf *b, size_t n)
{
    return b->index >= 0 && n <= (size_t)(INT_MAX - BUF_SLACK - b->index);
}

int ph_buf_init(ph_buf *b)
{
    return ei_x_new(b) == 0 ? 0 : -1;
}

int ph_buf_init_versioned(ph_buf *b)
{
    return ei_x_new_with_version(b) == 0 ? 0 : -1;
}

int ph_buf_reserve(ph_buf *b, size_t extra)
{
    if (!b || !b->buff || b->index < 0 || extra > (size_t)(INT_MAX / 2))
        return -1;
    /* ei reallocates (to the exact size) unless 100 bytes beyond what it
     * writes are free: keep more than that. */
    size_t need = (size_t)b->index + extra + 256;
    if (need <= (size_t)b->buffsz)
        return 0;
    size_t size = (size_t)b->buffsz * 2;
    if (size < need + 64)
        size = need + 64;
    if (size > (size_t)INT_MAX)
        size = (size_t)INT_MAX;
    char *n = ei_realloc(b->buff, (long)size); /* ei's allocator: ei_alloc.c */
    if (!n)
        return -1;
    b->buff = n;
    b->buffsz = (int)size;
    return 0;
}

void ph_buf_reset(ph_buf *b)
{
    b->index = has_version(b) ? 1 : 0;
}

void ph_buf_free(ph_buf *b)
{
    if (b->buff)
        ei_x_free(b);
    b->buff = NULL;
    b->buffsz = 0;
    b->index = 0;
}

ph_term ph_buf_term(const ph_buf *b)
{
    ph_term t = {NULL, 0};
    int start = has_version(b) ? 1 : 0;

    if (b->buff && b->index > start) {
        t.buf = b->buff;
        t.index = start;
    }
    return t;
}

ph_term ph_term_from_external(const char *buf, int len)
{
    ph_term t = {NULL, 0};

    struct bytes s = {buf, len, 1};

    if (!buf || len < 2 || get8(buf) != VERSION_MAGIC || term_span(&s, 1) < 0)
        return t;
    t.buf = buf;
    t.index = 1;
    return t;
}

int term_external_end(const char *buf, int len)
{
    struct bytes s = {buf, len, 1};
    if (!buf || len < 2 || get8(buf) != VERSION_MAGIC)
        return -1;
    long long end = term_span(&s, 1);
    return end < 0 ? -1 : (int)end;
}

int ph_term_end(ph_term t)
{
    long long end = checked_end(t);
    return end < 0 ? -1 : (int)end;
}

int ph_term_type(ph_term t, int *size)
{
    int type, n, index = t.index;

    if (!checked_ok(t) || ei_get_type(t.buf, &index, &type, &n) != 0)
        return -1;
    if (size)
        *size = n;
    return type;
}

/* Appending bytes of b to b: ei_x_append_buf would read them after a
 * realloc may have moved them, so copy them out first. */
static int append_own(ph_buf *b, int index, int n)
{
    char *copy = malloc((size_t)n);
    if (!copy)
        return -1;
    memcpy(copy, b->buff + index, (size_t)n);
    int r = ei_x_append_buf(b, copy, n);
    free(copy);
    return r == 0 ? 0 : -1;
}

static int points_into(const ph_buf *b, const char *p)
{
    uintptr_t start = (uintptr_t)b->buff, at = (uintptr_t)p;
    return b->buff && at >= start && at < start + (uintptr_t)b->buffsz;
}

int ph_buf_append_term(ph_buf *b, ph_term t)
{
    long long end = checked_end(t);

    if (!b || end < 0 || !room_for(b, (size_t)(end - t.index)))
        return -1;
    int n = (int)(end - t.index);
    if (points_into(b, t.buf))
        return append_own(b, (int)(t.buf - b->buff) + t.index, n);
    if (ph_buf_reserve(b, (size_t)n) != 0)
        return -1;
    return ei_x_append_buf(b, t.buf + t.index, n) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------
 * Walking tuples, maps and lists. Internal helpers assume a checked term.
 */

static int term_class(ph_term t)
{
    switch (tag_of(t)) {
    case ERL_SMALL_INTEGER_EXT:
    case ERL_INTEGER_EXT:
    case ERL_SMALL_BIG_EXT:
    case ERL_LARGE_BIG_EXT:
    case ERL_FLOAT_EXT:
    case NEW_FLOAT_EXT:
        return CL_NUMBER;
    case ERL_ATOM_EXT:
    case ERL_SMALL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        return CL_ATOM;
    case ERL_REFERENCE_EXT:
    case ERL_NEW_REFERENCE_EXT:
    case ERL_NEWER_REFERENCE_EXT:
        return CL_REF;
    case ERL_NEW_FUN_EXT:
    case ERL_EXPORT_EXT:
        return CL_FUN;
    case ERL_PORT_EXT:
    case ERL_NEW_PORT_EXT:
    case ERL_V4_PORT_EXT:
        return CL_PORT;
    case ERL_PID_EXT:
    case ERL_NEW_PID_EXT:
        return CL_PID;
    case ERL_SMALL_TUPLE_EXT:
    case ERL_LARGE_TUPLE_EXT:
        return CL_TUPLE;
    case ERL_MAP_EXT:
        return CL_MAP;
    case ERL_NIL_EXT:
        return CL_NIL;
    case ERL_STRING_EXT:
    case ERL_LIST_EXT:
        return CL_LIST;
    case ERL_BINARY_EXT:
    case ERL_BIT_BINARY_EXT:
        return CL_BITS;
    }
    return CL_BAD;
}

/* Opens the tuple or map t; returns how many terms it holds (2 per pair). */
static int iter_seq_open(ph_iter *it, ph_term t)
{
    int index = t.index, n;

    if (tag_of(t) == ERL_MAP_EXT) {
        if (ei_decode_map_header(t.buf, &index, &n) != 0)
            return -1;
        n *= 2;
    } else if (ei_decode_tuple_header(t.buf, &index, &n) != 0) {
        return -1;
    }
    it->buf = t.buf;
    it->index = index;
    it->remaining = n;
    it->kind = IT_SEQ;
    it->pending = 0;
    return n;
}

/* Positions it at the list segment (NIL_EXT, LIST_EXT or STRING_EXT) that
 * starts at index. For NIL_EXT, index is left at the nil: the tail. */
static int iter_list_at(ph_iter *it, const char *buf, int index)
{
    int type, n;

    it->buf = buf;
    it->index = index;
    it->remaining = 0;
    it->kind = IT_LIST;
    it->pending = 0;
    if (ei_get_type(buf, &index, &type, &n) != 0)
        return -1;
    switch (type) {
    case ERL_NIL_EXT:
        return 0;
    case ERL_STRING_EXT:
        it->kind = IT_STRING;
        it->remaining = n;
        it->index = index + 3;
        return 0;
    case ERL_LIST_EXT:
        if (ei_decode_list_header(buf, &index, &n) != 0)
            return -1;
        it->remaining = n;
        it->index = index;
        return 0;
    }
    return -1;
}

/* After a LIST_EXT segment: continues into a tail that is itself a list.
 * 1 when it did, 0 at the real end (the tail is at it->index). */
static int iter_refill(ph_iter *it)
{
    if (it->kind != IT_LIST)
        return 0;
    int tag = (int)get8(it->buf + it->index);
    if (tag != ERL_LIST_EXT && tag != ERL_STRING_EXT)
        return 0;
    return iter_list_at(it, it->buf, it->index) < 0 ? -1 : 1;
}

static int iter_step(ph_iter *it, ph_term *e)
{
    if (it->pending) {
        /* Skipped only now: a pattern that binds the last element of a
         * big tuple never walks that element. */
        long long end = skip_term(it->buf, it->index);
        if (end < 0)
            return -1;
        it->index = (int)end;
        it->pending = 0;
    }
    while (it->remaining == 0) {
        int r = iter_refill(it);
        if (r <= 0)
            return r;
    }
    it->remaining--;
    if (it->kind == IT_STRING) {
        /* a byte of a STRING_EXT is a small integer without its own tag */
        it->scratch[0] = ERL_SMALL_INTEGER_EXT;
        it->scratch[1] = it->buf[it->index++];
        *e = (ph_term){it->scratch, 0};
        return 1;
    }
    *e = (ph_term){it->buf, it->index};
    it->pending = 1;
    return 1;
}

/* The tail of a list whose cells iter_step has used up. */
static ph_term iter_tail(const ph_iter *it)
{
    if (it->kind == IT_STRING)
        return (ph_term){nil_ext, 0};
    return (ph_term){it->buf, it->index};
}

static int iter_at_nil(const ph_iter *it)
{
    return term_class(iter_tail(it)) == CL_NIL;
}

/* Counts the cells of a list and insists on a proper one. */
static int iter_list_open(ph_iter *it, ph_term t)
{
    ph_iter probe;
    ph_term e;
    int n = 0, r;

    if (iter_list_at(it, t.buf, t.index) < 0)
        return -1;
    probe = *it;
    while ((r = iter_step(&probe, &e)) > 0)
        n++;
    return r < 0 || !iter_at_nil(&probe) ? -1 : n;
}

int ph_iter_begin(ph_iter *it, ph_term t)
{
    if (!it)
        return -1;
    it->buf = NULL;
    if (!checked_ok(t))
        return -1;
    switch (term_class(t)) {
    case CL_TUPLE:
    case CL_MAP:
        return iter_seq_open(it, t);
    case CL_NIL:
    case CL_LIST:
        return iter_list_open(it, t);
    }
    return -1;
}

int ph_iter_next(ph_iter *it, ph_term *element)
{
    if (!it || !element || !it->buf)
        return -1;
    return iter_step(it, element);
}

/* ------------------------------------------------------------------------
 * Numbers. Integers become sign + little-endian magnitude (bigs point into
 * the buffer), so small, big and float values compare exactly.
 */

/* Bytes of the integer part of the largest double (< 2^1024), plus room
 * for the shifted 53-bit mantissa. */
#define FLOAT_MAG_MAX 136

struct num {
    int is_float;
    double d;
    int neg;
    const unsigned char *mag; /* little-endian, no high zero bytes */
    size_t n;
    unsigned char local[8];
};

static size_t trim(const unsigned char *mag, size_t n)
{
    while (n > 0 && mag[n - 1] == 0)
        n--;
    return n;
}

static void big_load(ph_term t, struct num *x)
{
    const char *p = t.buf + t.index;
    int wide = tag_of(t) == ERL_LARGE_BIG_EXT;
    size_t n = wide ? get32(p + 1) : get8(p + 1);
    const char *sign = p + (wide ? 5 : 2);

    x->neg = get8(sign) != 0;
    x->mag = (const unsigned char *)sign + 1;
    x->n = trim(x->mag, n);
}

static int num_load(ph_term t, struct num *x)
{
    int index = t.index;
    int tag = tag_of(t);
    long long v;

    x->is_float = tag == ERL_FLOAT_EXT || tag == NEW_FLOAT_EXT;
    if (x->is_float)
        return ei_decode_double(t.buf, &index, &x->d) == 0 ? 0 : -1;
    if (tag == ERL_SMALL_BIG_EXT || tag == ERL_LARGE_BIG_EXT) {
        big_load(t, x);
        return 0;
    }
    if (ei_decode_longlong(t.buf, &index, &v) != 0)
        return -1;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    for (int i = 0; i < 8; i++)
        x->local[i] = (unsigned char)(u >> (8 * i));
    x->neg = v < 0;
    x->mag = x->local;
    x->n = trim(x->local, 8);
    return 0;
}

static int cmp_mag(const unsigned char *a, size_t an, const unsigned char *b, size_t bn)
{
    if (an != bn)
        return an < bn ? -1 : 1;
    while (an-- > 0) {
        if (a[an] != b[an])
            return a[an] < b[an] ? -1 : 1;
    }
    return 0;
}

static int int_sign(const struct num *x)
{
    return x->n == 0 ? 0 : x->neg ? -1 : 1;
}

static int cmp_ints(const struct num *x, const struct num *y)
{
    int sx = int_sign(x), sy = int_sign(y);

    if (sx != sy)
        return sx < sy ? -1 : 1;
    int c = cmp_mag(x->mag, x->n, y->mag, y->n);
    return sx < 0 ? -c : c;
}

/* The integer part of a (finite, >= 0) as a little-endian magnitude. Exact:
 * a double is a 53-bit integer times a power of two. */
static size_t float_mag(double a, unsigned char out[FLOAT_MAG_MAX])
{
    int e;
    double f = floor(a);

    memset(out, 0, FLOAT_MAG_MAX);
    if (f < 1)
        return 0;
    uint64_t bits = (uint64_t)ldexp(frexp(f, &e), 53); /* f = bits * 2^(e-53) */
    int shift = e - 53;
    if (shift < 0) { /* the dropped bits are zero: f is an integer */
        bits >>= -shift;
        shift = 0;
    }
    bits <<= shift % 8; /* at most 60 bits */
    for (int i = shift / 8; bits != 0; i++, bits >>= 8)
        out[i] = (unsigned char)bits;
    return trim(out, FLOAT_MAG_MAX);
}

static int cmp_int_float(const struct num *x, double d)
{
    int sx = int_sign(x), sd = (d > 0) - (d < 0);
    unsigned char fm[FLOAT_MAG_MAX];

    if (sx != sd)
        return sx < sd ? -1 : 1;
    if (sx == 0)
        return 0;
    double a = fabs(d);
    int c = cmp_mag(x->mag, x->n, fm, float_mag(a, fm));
    if (c == 0 && a > floor(a)) /* same integer part; d has a fraction */
        c = -1;
    return sx < 0 ? -c : c;
}

/* ------------------------------------------------------------------------
 * Term order. exact selects =:= semantics (map-key order: every integer
 * sorts before every float); otherwise numbers compare by value like ==.
 */

struct cmp_ctx {
    int exact;
    int failed; /* a decode failed that checking should have ruled out */
    int depth;  /* nesting reached: bounded by CMP_MAX_DEPTH */
};

/* Comparing recurses once per level of nesting. Below this depth two terms
 * of the same class are ordered by their encodings instead (a total order,
 * and equal terms encoded alike are equal), so a peer's deeply nested term
 * costs no stack: docs/security.md. */
#define CMP_MAX_DEPTH 64

static int cmp_terms(struct cmp_ctx *c, ph_term a, ph_term b);

static int fail(struct cmp_ctx *c)
{
    c->failed = 1;
    return 0;
}

static int cmp_exact(struct cmp_ctx *c, ph_term a, ph_term b)
{
    struct cmp_ctx e = {1, 0, c->depth};
    int r = cmp_terms(&e, a, b);

    if (e.failed)
        c->failed = 1;
    return r;
}

static int cmp_numbers(struct cmp_ctx *c, ph_term a, ph_term b)
{
    struct num x, y;

    if (num_load(a, &x) != 0 || num_load(b, &y) != 0)
        return fail(c);
    if (x.is_float && y.is_float)
        return (x.d > y.d) - (x.d < y.d);
    if (!x.is_float && !y.is_float)
        return cmp_ints(&x, &y);
    if (c->exact)
        return x.is_float ? 1 : -1;
    return x.is_float ? -cmp_int_float(&y, x.d) : cmp_int_float(&x, y.d);
}

/* The UTF-8 text of an atom (every encoding), NUL-terminated. */
static int atom_text(ph_term t, char out[PH_ATOM_BUF])
{
    int index = t.index;
    int r = ei_decode_atom_as(t.buf, &index, out, PH_ATOM_BUF, ERLANG_UTF8, NULL, NULL);
    return r == 0 ? 0 : -1;
}

/* Byte order of UTF-8 is code point order, which is Erlang's atom order. */
static LEAF int cmp_atoms(struct cmp_ctx *c, ph_term a, ph_term b)
{
    char x[PH_ATOM_BUF], y[PH_ATOM_BUF];

    if (atom_text(a, x) != 0 || atom_text(b, y) != 0)
        return fail(c);
    return order(strcmp(x, y));
}

static LEAF int cmp_pids(struct cmp_ctx *c, ph_term a, ph_term b)
{
    erlang_pid x, y;
    int i = a.index, j = b.index;

    if (ei_decode_pid(a.buf, &i, &x) != 0 || ei_decode_pid(b.buf, &j, &y) != 0)
        return fail(c);
    return order(ei_cmp_pids(&x, &y));
}

static LEAF int cmp_ports(struct cmp_ctx *c, ph_term a, ph_term b)
{
    erlang_port x, y;
    int i = a.index, j = b.index;

    if (ei_decode_port(a.buf, &i, &x) != 0 || ei_decode_port(b.buf, &j, &y) != 0)
        return fail(c);
    return order(ei_cmp_ports(&x, &y));
}

static LEAF int cmp_refs(struct cmp_ctx *c, ph_term a, ph_term b)
{
    erlang_ref x, y;
    int i = a.index, j = b.index;

    if (ei_decode_ref(a.buf, &i, &x) != 0 || ei_decode_ref(b.buf, &j, &y) != 0)
        return fail(c);
    return order(ei_cmp_refs(&x, &y));
}

/* Funs: ordered by their encoding, which is stable for one fun. */
static int cmp_raw(struct cmp_ctx *c, ph_term a, ph_term b)
{
    long long ea = checked_end(a), eb = checked_end(b);

    if (ea < 0 || eb < 0)
        return fail(c);
    size_t na = (size_t)(ea - a.index), nb = (size_t)(eb - b.index);
    int r = memcmp(a.buf + a.index, b.buf + b.index, na < nb ? na : nb);
    return r != 0 ? order(r) : (na > nb) - (na < nb);
}

static int bits_load(ph_term t, const char **data, size_t *nbits)
{
    int index = t.index;
    unsigned int offset;

    if (ei_decode_bitstring(t.buf, &index, data, &offset, nbits) != 0 || offset != 0)
        return -1;
    return 0;
}

/* Bit strings compare bit by bit; a prefix sorts first. */
static int cmp_bits(struct cmp_ctx *c, ph_term a, ph_term b)
{
    const char *x, *y;
    size_t nx, ny;

    if (bits_load(a, &x, &nx) != 0 || bits_load(b, &y, &ny) != 0)
        return fail(c);
    size_t common = nx < ny ? nx : ny;
    int r = memcmp(x, y, common / 8);
    if (r != 0)
        return order(r);
    if (common % 8) { /* the last bits sit at the top of their byte */
        unsigned mask = (0xff00u >> (common % 8)) & 0xffu;
        unsigned bx = get8(x + common / 8) & mask, by = get8(y + common / 8) & mask;
        if (bx != by)
            return bx < by ? -1 : 1;
    }
    return (nx > ny) - (nx < ny);
}

/* Pairwise over two iterators known to hold the same number of terms. */
static int cmp_elements(struct cmp_ctx *c, ph_iter *x, ph_iter *y)
{
    ph_term ea, eb;
    int r;

    while ((r = iter_step(x, &ea)) > 0) {
        if (iter_step(y, &eb) <= 0)
            return fail(c);
        int d = cmp_terms(c, ea, eb);
        if (d != 0 || c->failed)
            return d;
    }
    return r < 0 ? fail(c) : 0;
}

static int cmp_tuples(struct cmp_ctx *c, ph_term a, ph_term b)
{
    ph_iter x, y;
    int na = iter_seq_open(&x, a), nb = iter_seq_open(&y, b);

    if (na < 0 || nb < 0)
        return fail(c);
    if (na != nb)
        return na < nb ? -1 : 1;
    return cmp_elements(c, &x, &y);
}

/* One list ran out of cells (r == 0): its tail against the rest of the
 * other, which is either also a tail or a non-empty list. */
static int cmp_list_ends(struct cmp_ctx *c, ph_iter *x, int rx, ph_iter *y, int ry)
{
    if (rx == 0 && ry == 0)
        return cmp_terms(c, iter_tail(x), iter_tail(y));
    /* tails are never lists (those are walked into), so only the class of
     * the tail decides against a list */
    if (rx == 0)
        return term_class(iter_tail(x)) < CL_LIST ? -1 : 1;
    return term_class(iter_tail(y)) < CL_LIST ? 1 : -1;
}

static int cmp_lists(struct cmp_ctx *c, ph_term a, ph_term b)
{
    ph_iter x, y;
    ph_term ea, eb;

    if (iter_list_at(&x, a.buf, a.index) < 0 || iter_list_at(&y, b.buf, b.index) < 0)
        return fail(c);
    for (;;) {
        int rx = iter_step(&x, &ea), ry = iter_step(&y, &eb);
        if (rx < 0 || ry < 0)
            return fail(c);
        if (rx == 0 || ry == 0)
            return cmp_list_ends(c, &x, rx, &y, ry);
        int d = cmp_terms(c, ea, eb);
        if (d != 0 || c->failed)
            return d;
    }
}

/* A map key test: 1 when key k is the one looked for, 0 if not, -1. */
typedef int (*key_test)(ph_term k, const void *wanted);

/* Scans the pairs of the map m (which is known to be a map). */
static int map_scan(ph_term m, key_test test, const void *wanted, ph_term *value)
{
    ph_iter it;
    ph_term k, v;
    int r;

    if (iter_seq_open(&it, m) < 0)
        return -1;
    while ((r = iter_step(&it, &k)) > 0) {
        if (iter_step(&it, &v) <= 0)
            return -1;
        r = test(k, wanted);
        if (r != 0) {
            if (r > 0 && value)
                *value = v;
            return r;
        }
    }
    return r;
}

static int key_is_term(ph_term k, const void *wanted)
{
    struct cmp_ctx c = {1, 0, 0};
    int r = cmp_terms(&c, k, *(const ph_term *)wanted);
    return c.failed ? -1 : r == 0;
}

/* The smallest key of m (in map-key order) that other lacks; 1 if any. */
static int min_missing_key(struct cmp_ctx *c, ph_term m, ph_term other, ph_term *out)
{
    ph_iter it;
    ph_term k, v;
    int found = 0, r;

    if (iter_seq_open(&it, m) < 0)
        return fail(c);
    while ((r = iter_step(&it, &k)) > 0 && (r = iter_step(&it, &v)) > 0) {
        int has = map_scan(other, key_is_term, &k, NULL);
        if (has < 0)
            return fail(c);
        if (!has && (!found || cmp_exact(c, k, *out) < 0)) {
            *out = k;
            found = 1;
        }
    }
    return r < 0 ? fail(c) : found;
}

/* Same keys: the values decide, taken in key order. */
static int cmp_map_values(struct cmp_ctx *c, ph_term a, ph_term b)
{
    ph_iter it;
    ph_term k, va, vb = {NULL, 0}, first = {NULL, 0};
    int result = 0;

    if (iter_seq_open(&it, a) < 0)
        return fail(c);
    while (iter_step(&it, &k) > 0 && iter_step(&it, &va) > 0 && !c->failed) {
        if (map_scan(b, key_is_term, &k, &vb) != 1)
            return fail(c);
        int d = cmp_terms(c, va, vb);
        if (d != 0 && (result == 0 || cmp_exact(c, k, first) < 0)) {
            result = d;
            first = k;
        }
    }
    return c->failed ? 0 : result;
}

/* Maps: size, then the sorted key lists, then values in key order. The
 * first difference of the sorted key lists is the smallest key that only
 * one map has, which avoids sorting (and allocating): O(n^2) compares. */
static int cmp_maps(struct cmp_ctx *c, ph_term a, ph_term b)
{
    ph_iter x, y;
    ph_term ka, kb;
    int na = iter_seq_open(&x, a), nb = iter_seq_open(&y, b);

    if (na < 0 || nb < 0)
        return fail(c);
    if (na != nb)
        return na < nb ? -1 : 1;
    int ha = min_missing_key(c, a, b, &ka), hb = min_missing_key(c, b, a, &kb);
    if (c->failed)
        return 0;
    if (ha && hb)
        return cmp_exact(c, ka, kb) < 0 ? -1 : 1;
    if (ha || hb)
        return ha ? -1 : 1;
    return cmp_map_values(c, a, b);
}

static int cmp_same_class(struct cmp_ctx *c, int cls, ph_term a, ph_term b)
{
    switch (cls) {
    case CL_NUMBER:
        return cmp_numbers(c, a, b);
    case CL_ATOM:
        return cmp_atoms(c, a, b);
    case CL_REF:
        return cmp_refs(c, a, b);
    case CL_FUN:
        return cmp_raw(c, a, b);
    case CL_PORT:
        return cmp_ports(c, a, b);
    case CL_PID:
        return cmp_pids(c, a, b);
    case CL_TUPLE:
        return cmp_tuples(c, a, b);
    case CL_MAP:
        return cmp_maps(c, a, b);
    case CL_NIL:
        return 0;
    case CL_LIST:
        return cmp_lists(c, a, b);
    case CL_BITS:
        return cmp_bits(c, a, b);
    }
    return fail(c);
}

/* Two checked terms ordered by their encodings. */
static int cmp_encodings(struct cmp_ctx *c, ph_term a, ph_term b)
{
    int ea = a.index, eb = b.index;
    if (term_skip_valid(a.buf, &ea) != 0 || term_skip_valid(b.buf, &eb) != 0)
        return fail(c);
    int na = ea - a.index, nb = eb - b.index;
    int r = memcmp(a.buf + a.index, b.buf + b.index, (size_t)(na < nb ? na : nb));
    return r ? order(r) : order((long long)na - nb);
}

static int cmp_terms(struct cmp_ctx *c, ph_term a, ph_term b)
{
    int ca = term_class(a), cb = term_class(b);

    if (ca != cb)
        return ca < cb ? -1 : 1;
    if (c->depth >= CMP_MAX_DEPTH)
        return cmp_encodings(c, a, b);
    c->depth++;
    int r = cmp_same_class(c, ca, a, b);
    c->depth--;
    return r;
}

int ph_term_compare(ph_term a, ph_term b)
{
    int va = checked_ok(a), vb = checked_ok(b);
    struct cmp_ctx c = {0, 0, 0};

    if (!va || !vb) /* undecodable terms sort last */
        return vb - va;
    int r = cmp_terms(&c, a, b);
    return c.failed ? 0 : r;
}

int ph_term_equal(ph_term a, ph_term b)
{
    long long ea = checked_end(a), eb = checked_end(b);
    struct cmp_ctx c = {1, 0, 0};

    if (ea < 0 || eb < 0)
        return 0;
    /* the common case: the very same encoding */
    if (ea - a.index == eb - b.index &&
        memcmp(a.buf + a.index, b.buf + b.index, (size_t)(ea - a.index)) == 0)
        return 1;
    return cmp_terms(&c, a, b) == 0 && !c.failed;
}

/* ------------------------------------------------------------------------
 * Duplicate map keys: the BEAM refuses them (binary_to_term) and lookups
 * and comparisons would be ambiguous. Only the gate checks them: sorting
 * the keys of every map on every call would cost too much.
 */

/* qsort order of ph_term keys: map-key order (exact). */
static int key_order(const void *a, const void *b)
{
    struct cmp_ctx c = {1, 0, 0};
    return cmp_terms(&c, *(const ph_term *)a, *(const ph_term *)b);
}

/* The encoded length of a leaf whose tag has one encoding per value (two
 * of them of the same tag are the same term exactly when their bytes are),
 * or 0 for any other term. */
static size_t canonical_leaf_len(const char *p)
{
    switch ((unsigned char)p[0]) {
    case ERL_SMALL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_EXT:
        return 2 + (size_t)(unsigned char)p[1];
    case ERL_ATOM_UTF8_EXT:
    case ERL_ATOM_EXT:
        return 3 + ((size_t)(unsigned char)p[1] << 8 | (unsigned char)p[2]);
    case ERL_SMALL_INTEGER_EXT:
        return 2;
    case ERL_INTEGER_EXT:
        return 5;
    case ERL_BINARY_EXT:
        return 5 + (size_t)get32(p + 1);
    }
    return 0;
}

/* Whether two checked keys are the same map key: by their bytes when both
 * are leaves of one such tag (a child spec's keys are atoms), else by the
 * exact comparison. */
static int same_key(ph_term a, ph_term b)
{
    const char *pa = a.buf + a.index, *pb = b.buf + b.index;
    size_t la;
    if (pa[0] == pb[0] && (la = canonical_leaf_len(pa)) != 0)
        return la == canonical_leaf_len(pb) && memcmp(pa, pb, la) == 0;
    return key_order(&a, &b) == 0;
}

/* Up to this many keys are compared pair by pair: a child spec's three or
 * four cost a sort's set-up several times over (10% of a 100k start's
 * validation went to sorting them). */
#define KEYS_PAIRWISE_MAX 8

/* The keys are checked terms; a big map's are sorted in place. */
static int keys_distinct(ph_term *keys, long long n)
{
    int distinct = 1;

    if (n <= KEYS_PAIRWISE_MAX) {
        for (long long i = 1; i < n; i++)
            for (long long j = 0; j < i; j++)
                if (same_key(keys[i], keys[j]))
                    return 0;
        return 1;
    }
    qsort(keys, (size_t)n, sizeof *keys, key_order);
    for (long long i = 1; distinct && i < n; i++)
        distinct = key_order(&keys[i - 1], &keys[i]) != 0;
    return distinct;
}

/* ------------------------------------------------------------------------
 * Map lookup
 */

int ph_map_get(ph_term m, ph_term key, ph_term *value)
{
    if (!checked_ok(m) || !checked_ok(key))
        return -1;
    if (term_class(m) != CL_MAP)
        return 0;
    return map_scan(m, key_is_term, &key, value);
}

static LEAF int key_is_atom(ph_term k, const void *wanted)
{
    char text[PH_ATOM_BUF];

    if (term_class(k) != CL_ATOM)
        return 0;
    if (atom_text(k, text) != 0)
        return -1;
    return strcmp(text, wanted) == 0;
}

int ph_map_get_atom(ph_term m, const char *key, ph_term *value)
{
    if (!key || !checked_ok(m))
        return -1;
    if (term_class(m) != CL_MAP)
        return 0;
    return map_scan(m, key_is_atom, key, value);
}

/* ------------------------------------------------------------------------
 * Pattern syntax. Patterns are checked completely before anything is built
 * or matched, so a malformed pattern is -1 no matter where the error is.
 */

enum mode { MODE_BUILD, MODE_MATCH };

#define QUOTE_END (-2)

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static int unescape(char c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case '\\':
    case '\'':
    case '"':
        return c;
    }
    return -1;
}

/* One character of quoted text at *pp, unescaped, advancing *pp past it;
 * QUOTE_END after the closing quote; -1 on a bad escape or missing quote. */
static int quoted_char(const char **pp, char quote)
{
    const char *p = *pp;
    int c = (unsigned char)*p;

    if (c == '\0')
        return -1;
    *pp = p + 1;
    if (c == quote)
        return QUOTE_END;
    if (c != '\\')
        return c;
    *pp = p + 2;
    return unescape(p[1]);
}

/* The quoted text after an opening quote at p: unescaped into out (when
 * not NULL, at most cap bytes), its length in *n. Returns the position
 * after the closing quote, or NULL. */
static const char *quoted(const char *p, char quote, char *out, size_t cap, size_t *n)
{
    size_t k = 0;
    int c;

    while ((c = quoted_char(&p, quote)) >= 0) {
        if (out) {
            if (k >= cap)
                return NULL;
            out[k] = (char)c;
        }
        k++;
    }
    *n = k;
    return c == QUOTE_END ? p : NULL;
}

/* Whether the quoted text at p equals data[0..size). */
static int quoted_equals(const char *p, char quote, const char *data, size_t size)
{
    size_t k = 0;
    int c;

    while ((c = quoted_char(&p, quote)) >= 0) {
        if (k >= size || (unsigned char)data[k] != c)
            return 0;
        k++;
    }
    return k == size;
}

static const char *bare_atom_end(const char *p)
{
    if (!is_lower(*p))
        return NULL;
    const char *end = p + 1;
    while (is_name_char(*end))
        end++;
    return end - p < MAXATOMLEN ? end : NULL;
}

/* A decimal long: -?[0-9]+. Returns the end, or NULL (also on overflow). */
static const char *integer(const char *p, long *v)
{
    int neg = *p == '-';
    unsigned long limit = neg ? (unsigned long)LONG_MAX + 1 : LONG_MAX, u = 0;

    p += neg;
    if (!is_digit(*p))
        return NULL;
    for (; is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (u > (limit - d) / 10)
            return NULL;
        u = u * 10 + d;
    }
    if (!neg)
        *v = (long)u;
    else
        *v = u > LONG_MAX ? LONG_MIN : -(long)u;
    return p;
}

static int directive_ok(char d, enum mode mode)
{
    const char *set = mode == MODE_BUILD ? "aiufsbprtlB" : "aiufbprtB";
    return d != '\0' && strchr(set, d) != NULL;
}

static const char *syn_term(const char *p, enum mode mode, int depth);

/* An element of a sequence: a term, or for maps `key => value`. */
static const char *syn_element(const char *p, enum mode mode, int depth, int pair)
{
    p = syn_term(p, mode, depth);
    if (!p || !pair)
        return p;
    p = skip_ws(p);
    if (p[0] != '=' || p[1] != '>')
        return NULL;
    return syn_term(p + 2, mode, depth);
}

/* Comma-separated elements up to close (p is past the opening bracket).
 * Returns the position after close and the element count, or NULL. */
static const char *syn_seq(const char *p, char close, enum mode mode, int depth, int pair,
                           int *count)
{
    *count = 0;
    p = skip_ws(p);
    if (*p == close)
        return p + 1;
    for (;;) {
        p = syn_element(p, mode, depth, pair);
        if (!p)
            return NULL;
        ++*count;
        p = skip_ws(p);
        if (*p == close)
            return p + 1;
        if (*p != ',')
            return NULL;
        p++;
    }
}

static const char *syn_literal(const char *p, enum mode mode)
{
    size_t n = 0;
    long v;

    switch (*p) {
    case '~':
        return directive_ok(p[1], mode) ? p + 2 : NULL;
    case '\'':
        p = quoted(p + 1, '\'', NULL, 0, &n);
        return n < PH_ATOM_BUF ? p : NULL;
    case '"':
        return quoted(p + 1, '"', NULL, 0, &n);
    case '_':
        return mode == MODE_MATCH && !is_name_char(p[1]) ? p + 1 : NULL;
    }
    if (*p == '-' || is_digit(*p))
        return integer(p, &v);
    return bare_atom_end(p);
}

static const char *syn_term(const char *p, enum mode mode, int depth)
{
    int n;

    p = skip_ws(p);
    if (depth > PH_MAX_DEPTH)
        return NULL;
    switch (*p) {
    case '{':
        return syn_seq(p + 1, '}', mode, depth + 1, 0, &n);
    case '[':
        return syn_seq(p + 1, ']', mode, depth + 1, 0, &n);
    case '#':
        if (mode != MODE_BUILD || p[1] != '{')
            return NULL;
        return syn_seq(p + 2, '}', mode, depth + 1, 1, &n);
    }
    return syn_literal(p, mode);
}

/* Exactly one term, nothing but whitespace after it. */
static int syntax_ok(const char *fmt, enum mode mode)
{
    const char *end = fmt ? syn_term(fmt, mode, 0) : NULL;
    return end && *skip_ws(end) == '\0';
}

/* Element count of the sequence after an opening bracket (syntax known). */
static int seq_count(const char *p, char close, enum mode mode, int pair)
{
    int n;
    return syn_seq(p, close, mode, 0, pair, &n) ? n : -1;
}

/* Moves past the ',' or closing bracket that follows an element. */
static const char *next_element(const char *p)
{
    return skip_ws(p) + 1;
}

/* ------------------------------------------------------------------------
 * Building
 */

struct builder {
    ph_buf *b;
    const char *p; /* the pattern, at the next term */
    va_list ap;
};

enum seq_kind { SEQ_TUPLE, SEQ_LIST, SEQ_MAP };

static int build_term(struct builder *bd);

static int ok(int ei_result)
{
    return ei_result == 0 ? 0 : -1;
}

static int encode_atom(ph_buf *b, const char *text, size_t n)
{
    if (n >= PH_ATOM_BUF)
        return -1;
    return ok(ei_x_encode_atom_len_as(b, text, (int)n, ERLANG_UTF8, ERLANG_UTF8));
}

static int encode_binary(ph_buf *b, const void *data, size_t n)
{
    if ((!data && n > 0) || !room_for(b, n))
        return -1;
    return ok(ei_x_encode_binary(b, data ? data : "", (int)n));
}

static int seq_header(ph_buf *b, enum seq_kind kind, int n)
{
    switch (kind) {
    case SEQ_TUPLE:
        return ok(ei_x_encode_tuple_header(b, n));
    case SEQ_MAP:
        return ok(ei_x_encode_map_header(b, n));
    case SEQ_LIST:
        break;
    }
    return ok(n > 0 ? ei_x_encode_list_header(b, n) : ei_x_encode_empty_list(b));
}

static int build_element(struct builder *bd, int pair)
{
    if (build_term(bd) != 0)
        return -1;
    if (!pair)
        return 0;
    bd->p = skip_ws(bd->p) + 2; /* past "=>" */
    return build_term(bd);
}

/* p is past the opening bracket. */
static int build_seq(struct builder *bd, const char *p, char close, enum seq_kind kind)
{
    int n = seq_count(p, close, MODE_BUILD, kind == SEQ_MAP);

    if (n < 0 || seq_header(bd->b, kind, n) != 0)
        return -1;
    bd->p = n == 0 ? skip_ws(p) + 1 : p;
    for (int i = 0; i < n; i++) {
        if (build_element(bd, kind == SEQ_MAP) != 0)
            return -1;
        bd->p = next_element(bd->p);
    }
    if (kind == SEQ_LIST && n > 0)
        return ok(ei_x_encode_empty_list(bd->b));
    return 0;
}

static int build_list_arg(struct builder *bd)
{
    int n = va_arg(bd->ap, int);

    if (n < 0 || seq_header(bd->b, SEQ_LIST, n) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        if (ph_buf_append_term(bd->b, va_arg(bd->ap, ph_term)) != 0)
            return -1;
    }
    return n > 0 ? ok(ei_x_encode_empty_list(bd->b)) : 0;
}

static int build_string_arg(ph_buf *b, const char *s)
{
    return s ? encode_binary(b, s, strlen(s)) : -1;
}

static int build_bytes_arg(struct builder *bd)
{
    const void *data = va_arg(bd->ap, const void *);
    size_t n = va_arg(bd->ap, size_t);
    return encode_binary(bd->b, data, n);
}

/* ei's own finiteness check is compiled out in some builds (no
 * HAVE_ISFINITE), and the BEAM refuses NaN and infinities. */
static int build_double_arg(ph_buf *b, double d)
{
    return isfinite(d) ? ok(ei_x_encode_double(b, d)) : -1;
}

static int build_pid_arg(ph_buf *b, const erlang_pid *pid)
{
    return pid ? ok(ei_x_encode_pid(b, pid)) : -1;
}

static int build_ref_arg(ph_buf *b, const erlang_ref *ref)
{
    return ref ? ok(ei_x_encode_ref(b, ref)) : -1;
}

static int build_atom_arg(ph_buf *b, const char *s)
{
    return s ? encode_atom(b, s, strnlen(s, PH_ATOM_BUF)) : -1;
}

static int build_directive(struct builder *bd, char d)
{
    ph_buf *b = bd->b;

    switch (d) {
    case 'a':
        return build_atom_arg(b, va_arg(bd->ap, const char *));
    case 'i':
        return ok(ei_x_encode_long(b, va_arg(bd->ap, long)));
    case 'u':
        return ok(ei_x_encode_ulonglong(b, va_arg(bd->ap, unsigned long long)));
    case 'f':
        return build_double_arg(b, va_arg(bd->ap, double));
    case 's':
        return build_string_arg(b, va_arg(bd->ap, const char *));
    case 'b':
        return build_bytes_arg(bd);
    case 'p':
        return build_pid_arg(b, va_arg(bd->ap, const erlang_pid *));
    case 'r':
        return build_ref_arg(b, va_arg(bd->ap, const erlang_ref *));
    case 't':
        return ph_buf_append_term(b, va_arg(bd->ap, ph_term));
    case 'l':
        return build_list_arg(bd);
    case 'B':
        return ok(ei_x_encode_boolean(b, va_arg(bd->ap, int)));
    }
    return -1;
}

static LEAF int build_quoted_atom(struct builder *bd, const char *p)
{
    char text[PH_ATOM_BUF];
    size_t n;

    bd->p = quoted(p, '\'', text, sizeof text, &n);
    return bd->p ? encode_atom(bd->b, text, n) : -1;
}

static int build_binary_literal(struct builder *bd, const char *p)
{
    size_t n;

    if (!quoted(p, '"', NULL, 0, &n))
        return -1;
    char *bytes = malloc(n + 1);
    if (!bytes)
        return -1;
    bd->p = quoted(p, '"', bytes, n, &n);
    int r = bd->p ? encode_binary(bd->b, bytes, n) : -1;
    free(bytes);
    return r;
}

static int build_literal(struct builder *bd, const char *p)
{
    long v;

    if (*p == '\'')
        return build_quoted_atom(bd, p + 1);
    if (*p == '"')
        return build_binary_literal(bd, p + 1);
    if (*p == '-' || is_digit(*p)) {
        bd->p = integer(p, &v);
        return bd->p ? ok(ei_x_encode_long(bd->b, v)) : -1;
    }
    bd->p = bare_atom_end(p);
    return bd->p ? encode_atom(bd->b, p, (size_t)(bd->p - p)) : -1;
}

static int build_term(struct builder *bd)
{
    const char *p = skip_ws(bd->p);

    switch (*p) {
    case '{':
        return build_seq(bd, p + 1, '}', SEQ_TUPLE);
    case '[':
        return build_seq(bd, p + 1, ']', SEQ_LIST);
    case '#':
        return build_seq(bd, p + 2, '}', SEQ_MAP);
    case '~':
        bd->p = p + 2;
        return build_directive(bd, p[1]);
    }
    return build_literal(bd, p);
}

int ph_vbuild(ph_buf *b, const char *fmt, va_list ap)
{
    struct builder bd = {.b = b, .p = fmt};

    if (!b || !syntax_ok(fmt, MODE_BUILD) || ph_buf_reserve(b, 64) != 0)
        return -1;
    int old = b->index;
    va_copy(bd.ap, ap);
    int r = build_term(&bd);
    va_end(bd.ap);
    if (r != 0)
        b->index = old;
    return r;
}

int ph_build(ph_buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int r = ph_vbuild(b, fmt, ap);
    va_end(ap);
    return r;
}

/* ------------------------------------------------------------------------
 * Matching: 1 match, 0 no match, -1 error. On no match the walk stops at
 * once, so the position in the pattern no longer matters.
 */

struct matcher {
    const char *p; /* the pattern, at the next term */
    va_list ap;
};

static int match_term(struct matcher *m, ph_term t, int bindable);

static int is_integer(ph_term t)
{
    return term_class(t) == CL_NUMBER && tag_of(t) != ERL_FLOAT_EXT && tag_of(t) != NEW_FLOAT_EXT;
}

/* ~i and integer literals: integers that fit a long. */
static int integer_value(ph_term t, long *v)
{
    int index = t.index;
    long long w;

    if (!is_integer(t) || ei_decode_longlong(t.buf, &index, &w) != 0 || w < LONG_MIN ||
        w > LONG_MAX)
        return 0;
    *v = (long)w;
    return 1;
}

static int match_long(ph_term t, long *out)
{
    long v;

    if (!integer_value(t, &v))
        return 0;
    if (out)
        *out = v;
    return 1;
}

static int match_ulonglong(ph_term t, unsigned long long *out)
{
    int index = t.index;
    unsigned long long v;

    /* ei refuses negative values and values past 64 bits: no match */
    if (!is_integer(t) || ei_decode_ulonglong(t.buf, &index, &v) != 0)
        return 0;
    if (out)
        *out = v;
    return 1;
}

static int match_double(ph_term t, double *out)
{
    int index = t.index;
    double d;

    if (tag_of(t) != ERL_FLOAT_EXT && tag_of(t) != NEW_FLOAT_EXT)
        return 0;
    if (ei_decode_double(t.buf, &index, &d) != 0)
        return -1;
    if (out)
        *out = d;
    return 1;
}

static int match_atom_out(ph_term t, char *out)
{
    int index = t.index;

    if (term_class(t) != CL_ATOM)
        return 0;
    if (ei_decode_atom_as(t.buf, &index, out, PH_ATOM_BUF, ERLANG_UTF8, NULL, NULL) != 0)
        return -1;
    return 1;
}

/* Whether t is the atom with the UTF-8 text s[0..n). */
static LEAF int atom_is(ph_term t, const char *s, size_t n)
{
    char text[PH_ATOM_BUF];

    if (term_class(t) != CL_ATOM)
        return 0;
    if (atom_text(t, text) != 0)
        return -1;
    return strlen(text) == n && memcmp(text, s, n) == 0;
}

static int match_bool(ph_term t, int *out)
{
    int is_true = atom_is(t, "true", 4);
    int is_false = is_true == 1 ? 0 : atom_is(t, "false", 5);

    if (is_true < 0 || is_false < 0)
        return -1;
    if (!is_true && !is_false)
        return 0;
    if (out)
        *out = is_true;
    return 1;
}

static int match_binary_out(ph_term t, const char **data, size_t *size)
{
    const char *p;
    size_t nbits;

    if (tag_of(t) != ERL_BINARY_EXT)
        return 0;
    if (bits_load(t, &p, &nbits) != 0)
        return -1;
    if (data)
        *data = p;
    if (size)
        *size = nbits / 8;
    return 1;
}

static int match_pid(ph_term t, erlang_pid *out)
{
    int index = t.index;

    if (term_class(t) != CL_PID)
        return 0;
    return ei_decode_pid(t.buf, &index, out) == 0 ? 1 : -1;
}

static int match_ref(ph_term t, erlang_ref *out)
{
    int index = t.index;

    if (term_class(t) != CL_REF)
        return 0;
    return ei_decode_ref(t.buf, &index, out) == 0 ? 1 : -1;
}

static int match_any(ph_term t, ph_term *out, int bindable)
{
    if (!bindable) /* a STRING_EXT byte: nothing in the buffer to point at */
        return -1;
    if (out)
        *out = t;
    return 1;
}

static int match_bytes_arg(struct matcher *m, ph_term t)
{
    const char **data = va_arg(m->ap, const char **);
    size_t *size = va_arg(m->ap, size_t *);
    return match_binary_out(t, data, size);
}

static int match_directive(struct matcher *m, char d, ph_term t, int bindable)
{
    switch (d) {
    case 'a':
        return match_atom_out(t, va_arg(m->ap, char *));
    case 'i':
        return match_long(t, va_arg(m->ap, long *));
    case 'u':
        return match_ulonglong(t, va_arg(m->ap, unsigned long long *));
    case 'f':
        return match_double(t, va_arg(m->ap, double *));
    case 'b':
        return match_bytes_arg(m, t);
    case 'p':
        return match_pid(t, va_arg(m->ap, erlang_pid *));
    case 'r':
        return match_ref(t, va_arg(m->ap, erlang_ref *));
    case 't':
        return match_any(t, va_arg(m->ap, ph_term *), bindable);
    case 'B':
        return match_bool(t, va_arg(m->ap, int *));
    }
    return -1;
}

/* n pattern elements against the next n terms of it. */
static int match_elements(struct matcher *m, ph_iter *it, int n)
{
    ph_term e;

    for (int i = 0; i < n; i++) {
        int r = iter_step(it, &e);
        if (r <= 0)
            return r; /* 0: the list is shorter */
        r = match_term(m, e, it->kind != IT_STRING);
        if (r != 1)
            return r;
        m->p = next_element(m->p);
    }
    return 1;
}

/* m->p is past the '{'. */
static int match_tuple(struct matcher *m, ph_term t)
{
    ph_iter it;
    int n = seq_count(m->p, '}', MODE_MATCH, 0);

    if (term_class(t) != CL_TUPLE)
        return 0;
    int arity = iter_seq_open(&it, t);
    if (arity < 0 || n < 0)
        return -1;
    if (arity != n)
        return 0;
    if (n == 0)
        m->p = next_element(m->p);
    return match_elements(m, &it, n);
}

/* m->p is past the '['. A proper list of exactly n elements matches. */
static int match_list(struct matcher *m, ph_term t)
{
    ph_iter it;
    ph_term e;
    int n = seq_count(m->p, ']', MODE_MATCH, 0);
    int cls = term_class(t);

    if (cls != CL_LIST && cls != CL_NIL)
        return 0;
    if (n < 0 || iter_list_at(&it, t.buf, t.index) < 0)
        return -1;
    if (n == 0)
        m->p = next_element(m->p);
    int r = match_elements(m, &it, n);
    if (r != 1)
        return r;
    r = iter_step(&it, &e);
    if (r != 0) /* longer than the pattern, or an error */
        return r > 0 ? 0 : -1;
    return iter_at_nil(&it);
}

static LEAF int match_quoted_atom(struct matcher *m, const char *p, ph_term t)
{
    char text[PH_ATOM_BUF];
    size_t n;

    m->p = quoted(p, '\'', text, sizeof text, &n);
    return m->p ? atom_is(t, text, n) : -1;
}

static int match_binary_literal(struct matcher *m, const char *p, ph_term t)
{
    const char *data;
    size_t n;

    m->p = quoted(p, '"', NULL, 0, &n);
    if (!m->p)
        return -1;
    int r = match_binary_out(t, &data, &n);
    return r == 1 ? quoted_equals(p, '"', data, n) : r;
}

static int match_literal(struct matcher *m, const char *p, ph_term t)
{
    long want, got;

    if (*p == '\'')
        return match_quoted_atom(m, p + 1, t);
    if (*p == '"')
        return match_binary_literal(m, p + 1, t);
    if (*p == '-' || is_digit(*p)) {
        m->p = integer(p, &want);
        return m->p ? integer_value(t, &got) && got == want : -1;
    }
    m->p = bare_atom_end(p);
    return m->p ? atom_is(t, p, (size_t)(m->p - p)) : -1;
}

static int match_term(struct matcher *m, ph_term t, int bindable)
{
    const char *p = skip_ws(m->p);

    switch (*p) {
    case '{':
        m->p = p + 1;
        return match_tuple(m, t);
    case '[':
        m->p = p + 1;
        return match_list(m, t);
    case '~':
        m->p = p + 2;
        return match_directive(m, p[1], t, bindable);
    case '_':
        m->p = p + 1;
        return 1;
    }
    return match_literal(m, p, t);
}

int ph_vmatch(ph_term t, const char *pattern, va_list ap)
{
    struct matcher m = {.p = pattern};

    if (!syntax_ok(pattern, MODE_MATCH) || !checked_ok(t))
        return -1;
    va_copy(m.ap, ap);
    int r = match_term(&m, t, 1);
    va_end(m.ap);
    return r;
}

int ph_match(ph_term t, const char *pattern, ...)
{
    va_list ap;

    va_start(ap, pattern);
    int r = ph_vmatch(t, pattern, ap);
    va_end(ap);
    return r;
}

/* ------------------------------------------------------------------------
 * Formatting, in the compact style of io_lib:format("~0p", [T]) (strings
 * are recognised only in STRING_EXT lists). Written by hand rather than
 * with ei_s_print_term: that one
 * overflows a 2000-byte stack buffer on bignums of ~1000 bytes, leaks the
 * decoded fun, fails on non-latin-1 atoms and copies whole binaries. This
 * one stops walking as soon as the output is full.
 */

struct out {
    char *s;
    size_t cap; /* bytes available before the NUL */
    size_t pos;
    int full; /* something did not fit */
};

static void fmt_term(struct out *o, ph_term t);

static void put(struct out *o, const char *text, size_t n)
{
    if (o->full)
        return;
    if (n > o->cap - o->pos) {
        n = o->cap - o->pos;
        o->full = 1;
    }
    memcpy(o->s + o->pos, text, n);
    o->pos += n;
}

static void puts_out(struct out *o, const char *text)
{
    put(o, text, strlen(text));
}

__attribute__((format(printf, 2, 3))) static void putf(struct out *o, const char *fmt, ...)
{
    char text[64];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(o, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

/* Shortest text that reads back as d, like Erlang's ~p: the fewest
 * significant digits that round-trip, written positionally (100.0) or with
 * an exponent (1.0e20), whichever is shorter. */
static void float_text(double d, char text[64])
{
    char sci[32], pos[64];
    int digits, exp;

    for (digits = 1; digits < 17; digits++) {
        snprintf(sci, sizeof sci, "%.*e", digits - 1, d);
        if (strtod(sci, NULL) == d)
            break;
    }
    snprintf(sci, sizeof sci, "%.*e", digits - 1, d);
    char *e = strchr(sci, 'e');
    exp = atoi(e + 1);
    *e = '\0'; /* sci is now the mantissa */
    snprintf(text, 64, "%s%se%d", sci, strchr(sci, '.') ? "" : ".0", exp);
    if (exp < -10 || exp > 20) /* positional would be long (and not fit) */
        return;
    snprintf(pos, sizeof pos, "%.*f", digits - 1 - exp > 0 ? digits - 1 - exp : 0, d);
    if (!strchr(pos, '.'))
        strcat(pos, ".0");
    if (strlen(pos) <= strlen(text))
        strcpy(text, pos);
}

/* Bigger than 64 bits: Erlang's 16#... syntax, no division needed. */
static void fmt_big_hex(struct out *o, const struct num *x)
{
    puts_out(o, x->neg ? "-16#" : "16#");
    putf(o, "%X", x->mag[x->n - 1]);
    for (size_t i = x->n - 1; i-- > 0 && !o->full;)
        putf(o, "%02X", x->mag[i]);
}

static void fmt_number(struct out *o, ph_term t)
{
    struct num x;
    char text[64];

    if (num_load(t, &x) != 0) {
        puts_out(o, "?");
    } else if (x.is_float) {
        float_text(x.d, text);
        puts_out(o, text);
    } else if (x.n > 8) {
        fmt_big_hex(o, &x);
    } else {
        unsigned long long u = 0;
        for (size_t i = x.n; i-- > 0;)
            u = u << 8 | x.mag[i];
        putf(o, "%s%llu", x.neg && u ? "-" : "", u);
    }
}

/* Text between quotes, with Erlang escapes. */
static void fmt_quoted(struct out *o, char quote, const char *s, size_t n)
{
    put(o, &quote, 1);
    for (size_t i = 0; i < n && !o->full; i++) {
        char c = s[i];
        if (c == quote || c == '\\')
            put(o, "\\", 1);
        if (c == '\n')
            puts_out(o, "\\n");
        else if (c == '\r')
            puts_out(o, "\\r");
        else if (c == '\t')
            puts_out(o, "\\t");
        else
            put(o, &c, 1);
    }
    put(o, &quote, 1);
}

static LEAF void fmt_atom(struct out *o, ph_term t)
{
    char text[PH_ATOM_BUF];
    const char *end;

    if (atom_text(t, text) != 0) {
        puts_out(o, "?");
        return;
    }
    end = bare_atom_end(text);
    if (end && *end == '\0')
        puts_out(o, text);
    else
        fmt_quoted(o, '\'', text, strlen(text));
}

static LEAF void fmt_pid(struct out *o, ph_term t)
{
    erlang_pid pid;
    int index = t.index;

    if (ei_decode_pid(t.buf, &index, &pid) != 0) {
        puts_out(o, "?");
        return;
    }
    puts_out(o, "<");
    puts_out(o, pid.node);
    putf(o, ".%u.%u>", pid.num, pid.serial);
}

static LEAF void fmt_port(struct out *o, ph_term t)
{
    erlang_port port;
    int index = t.index;

    if (ei_decode_port(t.buf, &index, &port) != 0) {
        puts_out(o, "?");
        return;
    }
    puts_out(o, "#Port<");
    puts_out(o, port.node);
    putf(o, ".%llu>", (unsigned long long)port.id);
}

static LEAF void fmt_ref(struct out *o, ph_term t)
{
    erlang_ref ref;
    int index = t.index;

    if (ei_decode_ref(t.buf, &index, &ref) != 0) {
        puts_out(o, "?");
        return;
    }
    puts_out(o, "#Ref<");
    puts_out(o, ref.node);
    for (int i = ref.len; i-- > 0;)
        putf(o, ".%u", ref.n[i]);
    puts_out(o, ">");
}

static LEAF void fmt_fun(struct out *o, ph_term t)
{
    erlang_fun fun;
    int index = t.index;

    /* zeroed so that free_fun is safe even after a failed decode */
    memset(&fun, 0, sizeof fun);
    if (ei_decode_fun(t.buf, &index, &fun) != 0) {
        puts_out(o, "#Fun<?>");
    } else if (fun.type == EI_FUN_EXPORT) {
        puts_out(o, "fun ");
        puts_out(o, fun.module);
        puts_out(o, ":");
        puts_out(o, fun.u.exprt.func);
        putf(o, "/%ld", fun.arity);
    } else {
        puts_out(o, "#Fun<");
        puts_out(o, fun.module);
        putf(o, ".%ld.%ld>", fun.u.closure.index, fun.u.closure.uniq);
    }
    free_fun(&fun);
}

/* Terms of it, separated by ","; for maps, alternately " => " and ",". */
static void fmt_items(struct out *o, ph_iter *it, int pairs)
{
    ph_term e;

    for (long i = 0; !o->full && iter_step(it, &e) > 0; i++) {
        if (i > 0)
            puts_out(o, pairs && i % 2 ? " => " : ",");
        fmt_term(o, e);
    }
}

static void fmt_seq(struct out *o, ph_term t, const char *open, int pairs)
{
    ph_iter it;

    puts_out(o, open);
    if (iter_seq_open(&it, t) >= 0)
        fmt_items(o, &it, pairs);
    puts_out(o, "}");
}

static int printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < ' ' || c > '~') && c != '\n' && c != '\r' && c != '\t')
            return 0;
    }
    return 1;
}

static void fmt_list(struct out *o, ph_term t)
{
    ph_iter it;
    int n;

    if (tag_of(t) == ERL_STRING_EXT) {
        const char *s = t.buf + t.index + 3;
        n = (int)get16(t.buf + t.index + 1);
        if (printable(s, (size_t)n)) {
            fmt_quoted(o, '"', s, (size_t)n);
            return;
        }
    }
    puts_out(o, "[");
    if (iter_list_at(&it, t.buf, t.index) == 0) {
        fmt_items(o, &it, 0);
        if (!o->full && !iter_at_nil(&it)) {
            puts_out(o, "|");
            fmt_term(o, iter_tail(&it));
        }
    }
    puts_out(o, "]");
}

/* Printable binaries as <<"text">>, others as <<1,2,3>> (and <<...,5:3>>
 * for a bit string). Only what can be shown is inspected. */
static void fmt_bits(struct out *o, ph_term t)
{
    const char *s;
    size_t nbits;

    if (bits_load(t, &s, &nbits) != 0) {
        puts_out(o, "<<?>>");
        return;
    }
    size_t n = nbits / 8, shown = n < o->cap ? n : o->cap;
    puts_out(o, "<<");
    if (nbits % 8 == 0 && n > 0 && printable(s, shown)) {
        fmt_quoted(o, '"', s, n);
    } else {
        for (size_t i = 0; i < n && !o->full; i++)
            putf(o, i ? ",%u" : "%u", get8(s + i));
        if (nbits % 8)
            putf(o, n ? ",%u:%u" : "%u:%u", get8(s + n) >> (8 - nbits % 8), (unsigned)(nbits % 8));
    }
    puts_out(o, ">>");
}

static void fmt_identity(struct out *o, int cls, ph_term t)
{
    if (cls == CL_REF)
        fmt_ref(o, t);
    else if (cls == CL_FUN)
        fmt_fun(o, t);
    else if (cls == CL_PORT)
        fmt_port(o, t);
    else
        fmt_pid(o, t);
}

static void fmt_term(struct out *o, ph_term t)
{
    int cls = term_class(t);

    if (cls == CL_NUMBER)
        fmt_number(o, t);
    else if (cls == CL_ATOM)
        fmt_atom(o, t);
    else if (cls >= CL_REF && cls <= CL_PID)
        fmt_identity(o, cls, t);
    else if (cls == CL_TUPLE || cls == CL_MAP)
        fmt_seq(o, t, cls == CL_MAP ? "#{" : "{", cls == CL_MAP);
    else if (cls == CL_NIL)
        puts_out(o, "[]");
    else if (cls == CL_LIST)
        fmt_list(o, t);
    else if (cls == CL_BITS)
        fmt_bits(o, t);
    else
        puts_out(o, "?");
}

char *ph_term_format(ph_term t, char *out, size_t out_size)
{
    if (!out || out_size == 0)
        return out;
    struct out o = {out, out_size - 1, 0, 0};

    if (checked_end(t) < 0)
        puts_out(&o, "<invalid term>");
    else
        fmt_term(&o, t);
    if (o.full) { /* mark the cut with "..." */
        size_t dots = o.pos < 3 ? o.pos : 3;
        memset(out + o.pos - dots, '.', dots);
    }
    out[o.pos] = '\0';
    return out;
}
