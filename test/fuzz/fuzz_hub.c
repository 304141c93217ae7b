/* fuzz_hub - what the hub reads from other nodes: a validated term decoded
 * as an inter-hub message (hub_msg_decode), its lists walked (list_begin,
 * list_next, which refuse improper lists), and read as a child spec and as
 * start options (parse_spec, parse_opts), as a request's arguments are. */
#include "test/fuzz/fuzz_common.h"
#include "hub/hub_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 22))
        return 0;
    char *buf = fuzz_copy(data, size);
    if (!buf)
        return 0;
    ph_term t = ph_term_from_external(buf, (int)size);
    if (t.buf) {
        /* delivered messages are trusted by the helpers, as in the runtime */
        struct term_trust saved = term_trust_push(buf, (int)size);
        hub_msg m;
        (void)hub_msg_decode(t, &m);
        list_walk w;
        ph_term e;
        if (list_begin(&w, t) >= 0)
            while (list_next(&w, &e) > 0) {
                spec_info s;
                (void)parse_spec(e, &s);
            }
        spec_info s;
        (void)parse_spec(t, &s);
        start_opts o;
        ph_buf reply;
        if (ph_buf_init(&reply) == 0) {
            (void)parse_opts(t, &o, &reply);
            ph_buf key;
            if (ph_buf_init(&key) == 0) {
                (void)registry_key(t, &key);
                ph_buf_free(&key);
            }
            ph_buf_free(&reply);
        }
        term_trust_pop(saved);
    }
    free(buf);
    return 0;
}
