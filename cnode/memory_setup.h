/*
 * memory_setup.h - how phnode asks glibc's malloc to behave, before
 * anything else runs.
 */
#ifndef PHNODE_MEMORY_SETUP_H
#define PHNODE_MEMORY_SETUP_H

/* Keeps big buffers in the heap and the heap once grown. */
void memory_setup_tune_malloc(void);
/* The heap's first HUGE_HEAP bytes in transparent huge pages, one arena
 * (called by memory_setup_tune_malloc). */
void memory_setup_huge_heap(void);

#endif
