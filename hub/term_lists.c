/* term_lists.c - growing lists of encoded terms (elist), proper lists walked with
 * ei, and the small term helpers every part of the hub uses. */
#include "hub/hub_internal.h"

#include <limits.h>

int elist_init(elist *l)
{
    l->n = 0;
    return ph_buf_init(&l->b);
}

void elist_free(elist *l)
{
    ph_buf_free(&l->b);
}

void elist_add(elist *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (ph_vbuild(&l->b, fmt, ap) == 0)
        l->n++;
    va_end(ap);
}

int elist_append(elist *to, const elist *from)
{
    if (from->n == 0)
        return 0;
    if (ph_buf_reserve(&to->b, (size_t)from->b.index) != 0 ||
        ei_x_append_buf(&to->b, from->b.buff, from->b.index) != 0)
        return -1;
    to->n += from->n;
    return 0;
}

int elist_to(ph_buf *out, const elist *l)
{
    if (l->n && (ei_x_encode_list_header(out, l->n) != 0 ||
                 ei_x_append_buf(out, l->b.buff, l->b.index) != 0))
        return -1;
    return ei_x_encode_empty_list(out) == 0 ? 0 : -1;
}

ph_term elist_term(elist *l, ph_buf *scratch)
{
    ph_buf_reset(scratch);
    elist_to(scratch, l);
    return ph_buf_term(scratch);
}

/* A pid as a term, in a small buffer the caller provides. */
ph_term pid_term(ph_pid pid, ph_buf *tmp)
{
    ph_buf_reset(tmp);
    ph_encode_pid(tmp, pid);
    return ph_buf_term(tmp);
}

/* Sends the hub itself the term of fmt (ph_build) after ms: its timers. */
void send_self_after(ph_ctx *ctx, unsigned ms, const char *fmt, ...)
{
    ph_buf b;
    ph_ref timer;
    va_list ap;
    if (ph_buf_init(&b) != 0)
        return;
    va_start(ap, fmt);
    int rc = ph_vbuild(&b, fmt, ap);
    va_end(ap);
    if (rc == 0)
        ph_send_after(ctx, ms, ph_buf_term(&b), &timer);
    ph_buf_free(&b);
}

/* Elements of the proper list at buf[index] (a LIST_EXT or NIL_EXT,
 * following tails that are lists themselves), or -1 when its tail is not
 * [] (an improper list) or it is not a list. The list is part of a
 * validated message or was encoded by ei, so skipping is safe. */
static int proper_length(const char *buf, int index)
{
    long long total = 0;
    for (;;) {
        int type, size;
        if (ei_get_type(buf, &index, &type, &size) != 0)
            return -1;
        if (type == ERL_NIL_EXT)
            return total <= INT_MAX ? (int)total : -1;
        if (type != ERL_LIST_EXT || ei_decode_list_header(buf, &index, &size) != 0 || size <= 0)
            return -1;
        total += size;
        for (int i = 0; i < size; i++)
            if (term_skip_valid(buf, &index) != 0)
                return -1;
    }
}

/* The last lists counted on this thread in the message being delivered:
 * a start's list is begun by several steps in turn (the hand-off's check,
 * the batch, its preparation), each a walk of every child otherwise. */
#define COUNTED_LISTS 4
static _Thread_local struct counted_list {
    const char *buf;
    int index, total;
    unsigned long long epoch;
} counted[COUNTED_LISTS];
static _Thread_local unsigned counted_next;

static int counted_length(ph_term list)
{
    if (!term_is_trusted(list))
        return proper_length(list.buf, list.index);
    unsigned long long epoch = term_trust_epoch();
    for (int i = 0; i < COUNTED_LISTS; i++)
        if (counted[i].buf == list.buf && counted[i].index == list.index &&
            counted[i].epoch == epoch)
            return counted[i].total;
    int total = proper_length(list.buf, list.index);
    if (total >= 0)
        counted[counted_next++ % COUNTED_LISTS] =
            (struct counted_list){list.buf, list.index, total, epoch};
    return total;
}

/* Element count of a proper list (0 for []), or -1 for anything else,
 * an improper list included: every request's list arguments go through
 * here or ph_iter_begin, which refuse them alike. */
int list_begin(list_walk *w, ph_term list)
{
    int first = list_begin_trusted(w, list);
    if (first <= 0)
        return first; /* [], or not a list */
    return counted_length(list);
}

int list_begin_trusted(list_walk *w, ph_term list)
{
    int type, size, index = list.index;
    w->buf = list.buf;
    w->left = 0;
    if (!list.buf || ei_get_type(list.buf, &index, &type, &size) != 0)
        return -1;
    w->index = index;
    if (type == ERL_NIL_EXT)
        return 0;
    if (type != ERL_LIST_EXT || ei_decode_list_header(list.buf, &index, &size) != 0)
        return -1;
    w->index = index;
    w->left = size;
    return size;
}

int list_at(list_walk *w, ph_term *e)
{
    if (w->left <= 0) {
        /* [A | [B | []]] is a proper list too: follow a tail that is a list. */
        int type, size, index = w->index;
        if (!w->buf || ei_get_type(w->buf, &index, &type, &size) != 0 || type != ERL_LIST_EXT ||
            ei_decode_list_header(w->buf, &index, &size) != 0 || size <= 0)
            return 0;
        w->index = index;
        w->left = size;
    }
    *e = (ph_term){w->buf, w->index};
    return 1;
}

void list_past(list_walk *w, int end)
{
    w->index = end;
    w->left--;
}

int list_next(list_walk *w, ph_term *e)
{
    if (list_at(w, e) <= 0)
        return 0;
    int end = e->index;
    if (term_skip_valid(w->buf, &end) != 0)
        return -1;
    list_past(w, end);
    return 1;
}

int has_option(ph_term opts, const char *name)
{
    ph_iter it;
    ph_term e;
    if (ph_iter_begin(&it, opts) < 0)
        return 0;
    char a[PH_ATOM_BUF];
    while (ph_iter_next(&it, &e) > 0)
        if (ph_match(e, "~a", a) == 1 && strcmp(a, name) == 0)
            return 1;
    return 0;
}

/* Appends the elements of list (a term) to l. */
void elist_extend(elist *l, ph_term list)
{
    list_walk w;
    ph_term e;
    int index = list.index, n, i = 0;
    /* A proper list as ei writes it (one LIST_EXT, elements, NIL): its
     * elements are one run of bytes, appended at once. (Lists reach here
     * from validated messages or the hub's own encoders.) */
    if (ei_decode_list_header(list.buf, &index, &n) == 0 && n > 0) {
        int first = index;
        while (i < n && term_skip_valid(list.buf, &index) == 0)
            i++;
        if (i == n && (unsigned char)list.buf[index] == ERL_NIL_EXT) {
            /* Grown by doubling: ei alone reallocates to the exact size, a
             * copy of the whole list per merged owner's answer. */
            if (ph_buf_reserve(&l->b, (size_t)(index - first)) == 0 &&
                ei_x_append_buf(&l->b, list.buf + first, index - first) == 0)
                l->n += n;
            return;
        }
    }
    if (list_begin(&w, list) < 0)
        return;
    while (list_next(&w, &e) > 0)
        if (ph_buf_append_term(&l->b, e) == 0)
            l->n++;
}

/* [Opt | Opts], Opt given as a ph_build format and its arguments. */
int opts_with(ph_buf *out, ph_term opts, const char *fmt, ...)
{
    ph_iter it;
    ph_term opt;
    va_list ap;
    int n = ph_iter_begin(&it, opts);
    if (n < 0 || ei_x_encode_list_header(out, n + 1) != 0)
        return -1;
    va_start(ap, fmt);
    int rc = ph_vbuild(out, fmt, ap);
    va_end(ap);
    if (rc != 0)
        return -1;
    while (ph_iter_next(&it, &opt) > 0)
        if (ph_buf_append_term(out, opt) != 0)
            return -1;
    return ei_x_encode_empty_list(out);
}
