/* ctl_term.c - Erlang terms as JSON values and as short text, for the
 * output of `phnode ctl` (see ctl_term.h). */
#include "cnode/ctl_term.h"

#include "ei_glue/ei_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int printable_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
            return 0;
    /* jansson rejects invalid UTF-8; let it decide. */
    json_t *probe = json_stringn(s, n);
    if (!probe)
        return 0;
    json_decref(probe);
    return 1;
}

/* ei's own text for anything without a nicer form (pids, refs, funs). */
static json_t *printed(ph_term t)
{
    char *s = NULL;
    int index = t.index;
    /* ei's buffer: freed with ei_free (ei_glue/ei_alloc.c) */
    if (ei_s_print_term(&s, t.buf, &index) < 0 || !s) {
        ei_free(s);
        return json_string("?");
    }
    json_t *j = json_string(s);
    ei_free(s);
    return j ? j : json_string("?");
}

json_t *ctl_term_to_json(ph_term t)
{
    int size = 0;
    int type = ph_term_type(t, &size);
    switch (type) {
    case ERL_ATOM_EXT: {
        char a[PH_ATOM_BUF];
        if (ph_match(t, "~a", a) != 1)
            return printed(t);
        if (strcmp(a, "true") == 0)
            return json_true();
        if (strcmp(a, "false") == 0)
            return json_false();
        if (strcmp(a, "nil") == 0 || strcmp(a, "undefined") == 0)
            return json_null();
        return json_string(a);
    }
    case ERL_SMALL_INTEGER_EXT:
    case ERL_INTEGER_EXT:
    case ERL_SMALL_BIG_EXT:
    case ERL_LARGE_BIG_EXT: {
        long v;
        if (ph_match(t, "~i", &v) == 1)
            return json_integer(v);
        return printed(t);
    }
    case ERL_FLOAT_EXT:
    case NEW_FLOAT_EXT: {
        double d;
        if (ph_match(t, "~f", &d) == 1)
            return json_real(d);
        return printed(t);
    }
    case ERL_BINARY_EXT: {
        const char *b;
        size_t n;
        if (ph_match(t, "~b", &b, &n) == 1 && printable_utf8(b, n))
            return json_stringn(b, n);
        return printed(t);
    }
    case ERL_NIL_EXT:
    case ERL_LIST_EXT:
    case ERL_STRING_EXT:
    case ERL_SMALL_TUPLE_EXT:
    case ERL_LARGE_TUPLE_EXT: {
        json_t *arr = json_array();
        ph_iter it;
        ph_term e;
        if (!arr)
            return NULL;
        if (ph_iter_begin(&it, t) < 0) {
            json_decref(arr); /* an improper list */
            return printed(t);
        }
        while (ph_iter_next(&it, &e) > 0)
            json_array_append_new(arr, ctl_term_to_json(e));
        return arr;
    }
    case ERL_MAP_EXT: {
        json_t *obj = json_object();
        ph_iter it;
        ph_term k, v;
        if (!obj)
            return NULL;
        if (ph_iter_begin(&it, t) < 0)
            return obj;
        while (ph_iter_next(&it, &k) > 0 && ph_iter_next(&it, &v) > 0) {
            char key[512];
            ctl_term_text(k, key, sizeof key);
            json_object_set_new(obj, key, ctl_term_to_json(v));
        }
        return obj;
    }
    default:
        return printed(t);
    }
}

void ctl_term_text(ph_term t, char *out, size_t size)
{
    json_t *j = ctl_term_to_json(t);
    if (j && json_is_string(j)) {
        snprintf(out, size, "%s", json_string_value(j));
    } else if (j && json_is_integer(j)) {
        snprintf(out, size, "%lld", (long long)json_integer_value(j));
    } else {
        char *s = NULL;
        int index = t.index;
        if (ei_s_print_term(&s, t.buf, &index) >= 0 && s)
            snprintf(out, size, "%s", s);
        else
            snprintf(out, size, "?");
        ei_free(s);
    }
    json_decref(j);
}
