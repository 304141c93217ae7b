/* replication.c - the active replica of a child; see replication.h. */
#include "strategies/redundancy/replication.h"

#include <stdint.h>
#include <string.h>

/* Sum of the code points of UTF-8 text; invalid bytes count as themselves
 * (ProcessHub would crash on them; a node must not). */
static uint64_t code_point_sum(const unsigned char *s, size_t len)
{
    uint64_t sum = 0;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        int extra = c >= 0xF0 && c < 0xF8 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
        if (c >= 0xF8 || (c >= 0x80 && c < 0xC0)) { /* not a lead byte */
            sum += c;
            i++;
            continue;
        }
        unsigned cp = extra == 3 ? c & 0x07 : extra == 2 ? c & 0x0F : extra == 1 ? c & 0x1F : c;
        int ok = 1;
        for (int k = 1; k <= extra; k++) {
            if (i + (size_t)k >= len || (s[i + k] & 0xC0) != 0x80) {
                ok = 0;
                break;
            }
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (!ok) {
            sum += c;
            i++;
            continue;
        }
        sum += cp;
        i += (size_t)extra + 1;
    }
    return sum;
}

/* Latin-1 atom text (ATOM_EXT) counts each byte as its code point. */
int replication_master(ph_term id, const char *const *nodes, int n)
{
    if (n <= 0)
        return -1;
    int type, size, index = id.index;
    uint64_t sum = 0;
    /* ei_get_type reports every atom encoding as ERL_ATOM_EXT: the tag
     * byte says where the text starts */
    if (ei_get_type(id.buf, &index, &type, &size) != 0 || size < 0)
        return -1;
    const unsigned char *p = (const unsigned char *)id.buf + index;
    switch (p[0]) {
    case ERL_BINARY_EXT: /* 4-byte length */
        sum = code_point_sum(p + 5, (size_t)size);
        break;
    case ERL_ATOM_EXT: /* latin-1, 2-byte length: each byte is its code point */
    case ERL_SMALL_ATOM_EXT: {
        const unsigned char *text = p + (p[0] == ERL_ATOM_EXT ? 3 : 2);
        for (int i = 0; i < size; i++)
            sum += text[i];
        break;
    }
    case ERL_ATOM_UTF8_EXT:
        sum = code_point_sum(p + 3, (size_t)size);
        break;
    case ERL_SMALL_ATOM_UTF8_EXT:
        sum = code_point_sum(p + 2, (size_t)size);
        break;
    default:
        return -1;
    }
    /* the position in the sorted list, mapped back to the caller's order */
    int want = (int)(sum % (uint64_t)n);
    for (int i = 0; i < n; i++) {
        int rank = 0;
        for (int j = 0; j < n; j++)
            rank += strcmp(nodes[j], nodes[i]) < 0;
        if (rank == want)
            return i;
    }
    return -1;
}
