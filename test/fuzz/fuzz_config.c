/* fuzz_config - the --config file: JSON parsed and applied over a buffer
 * (options_config_from_buffer), node fields, the tls object and the hub's
 * fields (hub_config_from_json: strategies, hooks, static child specs). */
#include "test/fuzz/fuzz_common.h"
#include "cnode/options.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    options o;
    char err[512];
    (void)options_config_from_buffer(&o, (const char *)data, size, err, sizeof err);
    options_free(&o);
    return 0;
}
