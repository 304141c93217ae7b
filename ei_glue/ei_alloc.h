/* ei_alloc.h - erl_interface's allocator, replaced (ei_alloc.c). The
 * prototypes are those of libei's internal ei_malloc.h. */
#ifndef PH_EI_ALLOC_H
#define PH_EI_ALLOC_H

void *ei_malloc(long size);
void *ei_realloc(void *orig, long size);
void ei_free(void *ptr);

#endif
