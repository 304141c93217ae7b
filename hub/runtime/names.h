/* names.h - registered names on this node (atom -> local pid). */
#ifndef PH_NAMES_H
#define PH_NAMES_H

#include <processhub/worker.h>
#include <stdint.h>

/* 0, or -1 if the name is taken (*holder then set when not NULL). */
int names_register(uint32_t name, ph_pid pid, ph_pid *holder);
/* Removes name only if it still belongs to pid. */
void names_unregister(uint32_t name, ph_pid pid);
int names_whereis(uint32_t name, ph_pid *pid);
void names_shutdown(void);

#endif
