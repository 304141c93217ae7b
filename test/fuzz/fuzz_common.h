/* fuzz_common.h: what every libFuzzer harness here shares: logs quiet but
 * for errors, and inputs copied to an exact-size heap buffer. */
#ifndef PHNODE_FUZZ_COMMON_H
#define PHNODE_FUZZ_COMMON_H

#include "hub/runtime/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Decoders log what they refuse; at this rate only errors are worth it. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR);
    return 0;
}

/* An exact-size copy of the input, so reading one byte past its end is
 * caught (libFuzzer's own buffer may be larger). NULL if out of memory. */
static inline char *fuzz_copy(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf)
        memcpy(buf, data, size);
    return buf;
}

#endif
