/* timers.h - delayed messages (send_after) on one timer thread. */
#ifndef PH_TIMERS_H
#define PH_TIMERS_H

#include <processhub/worker.h>
#include <stdint.h>

int timers_start(void);
void timers_stop(void);
/* Delivers the versioned message to `to` (from `to`) after ms. */
int timers_add(ph_pid to, unsigned ms, const char *msg, uint32_t len, ph_ref *ref);
uint64_t monotonic_ms(void);
uint64_t monotonic_us(void);

#endif
