/* fuzz_frames - a connection's incoming byte stream: frame splitting
 * (framing_next) and, for each data frame, the control message decoder
 * (control_decode: the control tuple, pids, refs, reasons, the message). */
#include "test/fuzz/fuzz_common.h"
#include "ei_glue/control.h"
#include "ei_glue/framing.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t off = 0;
    while (off < size) {
        frame f = framing_next(buf + off, size - off, 1u << 20);
        if (f.kind == FRAME_INCOMPLETE || f.kind == FRAME_BAD)
            break;
        if (f.kind == FRAME_DATA) {
            control_op op;
            if (control_decode(1, f.body, f.body_len, &op) == 0)
                control_op_free(&op);
        }
        off += f.total;
    }
    return 0;
}
