/* fuzz_term - terms from the network: validation (ph_term_from_external,
 * term_external_end), then what the runtime and the hub do with a valid
 * one: skipping without checks (term_skip_valid must land where validation
 * ended), comparing, formatting, iterating, copying, matching. */
#include "test/fuzz/fuzz_common.h"
#include "ei_glue/term_trust.h"

#include <processhub/term.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 24))
        return 0;
    char *buf = fuzz_copy(data, size);
    if (!buf)
        return 0;
    int end = term_external_end(buf, (int)size);
    ph_term t = ph_term_from_external(buf, (int)size);
    if ((end < 0) != (t.buf == NULL))
        abort(); /* the two gates disagree */
    if (t.buf) {
        int index = 1;
        if (term_skip_valid(buf, &index) != 0 || index != end)
            abort();
        char text[256];
        ph_term_format(t, text, sizeof text);
        if (ph_term_compare(t, t) != 0 || !ph_term_equal(t, t))
            abort();
        ph_iter it;
        ph_term e, v;
        if (ph_iter_begin(&it, t) >= 0)
            while (ph_iter_next(&it, &e) > 0)
                (void)ph_term_compare(e, t);
        (void)ph_match(t, "{~t, [_ | ~t]}", &e, &v);
        (void)ph_map_get_atom(t, "id", &v);
        ph_buf copy;
        if (ph_buf_init(&copy) == 0) {
            if (ph_buf_append_term(&copy, t) != 0 || !ph_term_equal(ph_buf_term(&copy), t))
                abort();
            ph_buf_free(&copy);
        }
    }
    free(buf);
    return 0;
}
