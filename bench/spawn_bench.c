/*
 * spawn_bench - starts 100k idle `counter` workers in one runtime and
 * reports the time and the resident memory per worker (process, mailbox,
 * state and table slot), as a JSON line.
 */
#include "cnode/workers/workers.h"
#include "hub/runtime/process.h"
#include "hub/runtime/runtime.h"
#include "hub/runtime/timers.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static long rss_bytes(void)
{
    long pages_total, pages_resident;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    return pages_resident * sysconf(_SC_PAGESIZE);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    runtime_config rc = {"bench@127.0.0.1", 4242, 2, 0, 0, 0};
    if (runtime_init(&rc) != 0 || bundled_workers_register() != 0)
        return 1;
    ph_buf args;
    if (ph_buf_init(&args) != 0 || ph_build(&args, "[0]") != 0)
        return 1;
    long before = rss_bytes();
    uint64_t t0 = monotonic_ms();
    for (long i = 0; i < n; i++) {
        ph_pid pid;
        if (ph_spawn(NULL, "counter", ph_buf_term(&args), NULL, &pid, NULL) != 0) {
            fprintf(stderr, "spawn %ld failed\n", i);
            return 1;
        }
    }
    uint64_t t1 = monotonic_ms();
    long after = rss_bytes();
    printf("{\"workers\": %ld, \"spawn_ms\": %llu, \"bytes_per_worker\": %ld}\n", n,
           (unsigned long long)(t1 - t0), (after - before) / n);
    ph_buf_free(&args);
    runtime_shutdown();
    return 0;
}
