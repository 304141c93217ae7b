/*
 * memory_setup.h - how phnode asks glibc's malloc to behave, before
 * anything else runs.
 */
#ifndef PHNODE_MEMORY_SETUP_H
#define PHNODE_MEMORY_SETUP_H

/* Re-executes phnode (same pid, same arguments) with glibc's
 * glibc.malloc.hugetlb=1 tunable when transparent huge pages are in
 * "madvise" mode and GLIBC_TUNABLES does not mention the tunable yet.
 * Returns only when no re-exec was needed or it failed (then phnode runs
 * with 4 KiB pages, as before). */
void memory_setup_huge_pages(char **argv);

/* Keeps big buffers in the heap and the heap once grown. */
void memory_setup_tune_malloc(void);

#endif
