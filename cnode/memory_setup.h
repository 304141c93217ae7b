/*
 * memory_setup.h - how phnode asks glibc's malloc to behave, before
 * anything else runs.
 */
#ifndef PHNODE_MEMORY_SETUP_H
#define PHNODE_MEMORY_SETUP_H

/* Keeps the heap once grown, with its first 128 MB reserved in
 * transparent huge pages and one arena for every thread (nothing under a
 * sanitizer, which brings its own allocator). */
void memory_setup_tune_malloc(void);

#endif
