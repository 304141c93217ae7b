/* framing.c - see framing.h. */
#include "ei_glue/framing.h"

frame framing_next(const char *buf, size_t len, size_t max_frame)
{
    frame f = {FRAME_INCOMPLETE, 0, NULL, 0};
    if (len < 4)
        return f;
    const unsigned char *u = (const unsigned char *)buf;
    size_t n = ((size_t)u[0] << 24) | ((size_t)u[1] << 16) | ((size_t)u[2] << 8) | u[3];
    if (n == 0) {
        f.kind = FRAME_TICK;
        f.total = 4;
        return f;
    }
    if (n > max_frame) {
        f.kind = FRAME_BAD;
        f.total = 4 + n; /* for the log line */
        return f;
    }
    f.total = 4 + n;
    if (len >= 5 && u[4] != 'p') {
        f.kind = FRAME_BAD;
        return f;
    }
    if (len < f.total)
        return f;
    f.kind = FRAME_DATA;
    f.body = buf + 5;
    f.body_len = n - 1;
    return f;
}

void framing_header(unsigned char out[5], size_t body_len)
{
    size_t n = body_len + 1;
    out[0] = (unsigned char)(n >> 24);
    out[1] = (unsigned char)(n >> 16);
    out[2] = (unsigned char)(n >> 8);
    out[3] = (unsigned char)n;
    out[4] = 'p';
}
