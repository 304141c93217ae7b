/*
 * framing.h - the distribution's data-phase framing, as pure functions:
 * <Len:32/big> then Len bytes; Len 0 is a tick; otherwise the bytes start
 * with 'p' (pass-through: no atom cache, which we never negotiate), then the
 * versioned control tuple and an optional versioned message.
 */
#ifndef PH_FRAMING_H
#define PH_FRAMING_H

#include <stddef.h>
#include <stdint.h>

typedef enum frame_kind {
    FRAME_INCOMPLETE, /* need more bytes; *needed = total bytes of the frame if known */
    FRAME_TICK,
    FRAME_DATA,
    FRAME_BAD, /* not a pass-through frame, or longer than max_frame (then total
                  says how long it claimed to be) */
} frame_kind;

typedef struct frame {
    frame_kind kind;
    size_t total;     /* bytes the frame occupies in the buffer, header included */
    const char *body; /* FRAME_DATA: the bytes after 'p' */
    size_t body_len;
} frame;

frame framing_next(const char *buf, size_t len, size_t max_frame);

/* Writes the 5-byte header of a data frame whose body (after 'p') is
 * body_len bytes long. */
void framing_header(unsigned char out[5], size_t body_len);

#define FRAMING_HEADER_LEN 5
#define FRAMING_MAX_FRAME ((size_t)0x7fffffff)

#endif
