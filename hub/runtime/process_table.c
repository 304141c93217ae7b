/*
 * process_table.c - pid -> process.
 *
 * A pid's 28 bits (15-bit num, 13-bit serial, as a BEAM local pid) hold a
 * 20-bit slot index and an 8-bit generation. Freed slots are reused in FIFO
 * order, so a pid number comes back only after the whole table has cycled
 * 256 times; stale pids of earlier incarnations of the node differ in
 * creation and never match.
 *
 * Lookups lock one of 64 shard mutexes just long enough to take a reference.
 *
 * The tables are sized for the capacity (a million slots by default) but
 * mapped, not filled: the kernel's zero pages stand for slots never used,
 * and slots never used are handed out in order before the freed ones, so
 * a node pays in memory and page faults only for the slots it has used
 * (filling the free list and zeroing 13 MB took 40-50 ms of a new node's
 * start).
 */
#include "hub/runtime/atoms.h"
#include "hub/runtime/log.h"
#include "hub/runtime/process.h"
#include "hub/runtime/runtime.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define INDEX_BITS 20
#define MAX_CAPACITY (1u << INDEX_BITS)
#define SHARDS 64

static process **slots;
static uint8_t *generations;
static uint32_t capacity;
static pthread_mutex_t shard_locks[SHARDS];

/* FIFO ring of freed slot indexes, after the slots never used: as if the
 * ring began with fresh_next .. capacity - 1. */
static uint32_t *free_ring;
static uint32_t free_head, free_count;
static uint32_t fresh_next;
static pthread_mutex_t free_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint32_t live_count;
/* One past the highest slot ever handed out: scans stop there. */
static _Atomic uint32_t high_water;

/* Zeroed memory of its own mapping: untouched pages cost nothing. */
static void *map_zeroed(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void unmap(void *p, size_t len)
{
    if (p && munmap(p, len) != 0)
        LOG_W("process", "munmap of the process table failed");
}

static void unmap_tables(uint32_t cap)
{
    unmap(slots, (size_t)cap * sizeof *slots);
    unmap(generations, cap);
    unmap(free_ring, (size_t)cap * sizeof *free_ring);
    slots = NULL;
    generations = NULL;
    free_ring = NULL;
}

int process_table_init(uint32_t cap)
{
    if (cap == 0 || cap > MAX_CAPACITY)
        cap = MAX_CAPACITY;
    slots = map_zeroed((size_t)cap * sizeof *slots);
    generations = map_zeroed(cap);
    free_ring = map_zeroed((size_t)cap * sizeof *free_ring);
    if (!slots || !generations || !free_ring) {
        unmap_tables(cap);
        return -1;
    }
    capacity = cap;
    /* Slot 0 is never used: <node.0.0> is ei's "self" pid by convention. */
    fresh_next = 1;
    free_head = 0;
    free_count = 0;
    atomic_store(&high_water, 1);
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_init(&shard_locks[i], NULL);
    atomic_store(&live_count, 0);
    return 0;
}

void process_table_shutdown(void)
{
    unmap_tables(capacity);
    capacity = 0;
}

static uint32_t pid_id(ph_pid pid)
{
    return (pid.num & 0x7fff) | ((pid.serial & 0x1fff) << 15);
}

static int alloc_slot(uint32_t *index)
{
    pthread_mutex_lock(&free_lock);
    if (fresh_next < capacity) {
        *index = fresh_next++;
    } else if (free_count > 0) {
        *index = free_ring[free_head];
        free_head = (free_head + 1) % capacity;
        free_count--;
    } else {
        pthread_mutex_unlock(&free_lock);
        return -1;
    }
    if (*index + 1 > atomic_load(&high_water))
        atomic_store(&high_water, *index + 1);
    pthread_mutex_unlock(&free_lock);
    return 0;
}

static void release_slot(uint32_t index)
{
    pthread_mutex_lock(&free_lock);
    free_ring[(free_head + free_count) % capacity] = index;
    free_count++;
    pthread_mutex_unlock(&free_lock);
}

process *process_create(const ph_worker_module *module)
{
    uint32_t index;
    if (alloc_slot(&index) != 0) {
        LOG_E("process", "process table full (%u processes)", capacity - 1);
        return NULL;
    }
    process *p = calloc(1, sizeof *p);
    if (!p) {
        release_slot(index);
        return NULL;
    }
    uint32_t id = index | ((uint32_t)(++generations[index]) << INDEX_BITS);
    p->pid.node = runtime_self_node();
    p->pid.creation = runtime_creation();
    p->pid.num = id & 0x7fff;
    p->pid.serial = id >> 15;
    p->module = module;
    p->name = ATOM_NONE;
    p->alive = 1;
    atomic_init(&p->refs, 1);
    atomic_init(&p->scheduled, 0);
    atomic_init(&p->inbox, NULL);
    atomic_flag_clear(&p->relations_lock);
    return p;
}

void process_publish(process *p)
{
    uint32_t index = pid_id(p->pid) & (MAX_CAPACITY - 1);
    process_ref(p); /* the table's reference */
    pthread_mutex_lock(&shard_locks[index % SHARDS]);
    __atomic_store_n(&slots[index], p, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&shard_locks[index % SHARDS]);
    atomic_fetch_add(&live_count, 1);
}

void process_unpublish(process *p)
{
    uint32_t index = pid_id(p->pid) & (MAX_CAPACITY - 1);
    int removed = 0;
    pthread_mutex_lock(&shard_locks[index % SHARDS]);
    if (slots[index] == p) {
        __atomic_store_n(&slots[index], NULL, __ATOMIC_RELAXED);
        removed = 1;
    }
    pthread_mutex_unlock(&shard_locks[index % SHARDS]);
    if (removed) {
        atomic_fetch_sub(&live_count, 1);
        process_put(p);
    }
}

process *process_get(ph_pid pid)
{
    if (!pid_is_local(pid) || !slots)
        return NULL;
    uint32_t index = pid_id(pid) & (MAX_CAPACITY - 1);
    if (index >= capacity)
        return NULL;
    process *p;
    pthread_mutex_lock(&shard_locks[index % SHARDS]);
    p = slots[index];
    if (p && p->pid.num == pid.num && p->pid.serial == pid.serial)
        process_ref(p);
    else
        p = NULL;
    pthread_mutex_unlock(&shard_locks[index % SHARDS]);
    return p;
}

void process_ref(process *p)
{
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

void process_put(process *p)
{
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Last reference: nobody can push any more. Answer what is left. */
    proc_signal *list = atomic_exchange(&p->inbox, NULL);
    proc_signal *rev = NULL;
    while (list) {
        proc_signal *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    if (p->queue_tail) {
        p->queue_tail->next = rev;
        rev = p->queue_head;
    }
    process_answer_dead_signals(p->pid, rev);
    relations_free(p);
    release_slot(pid_id(p->pid) & (MAX_CAPACITY - 1));
    free(p);
}

void process_for_each(void (*fn)(process *p, void *arg), void *arg)
{
    uint32_t end = atomic_load(&high_water);
    for (uint32_t i = 0; i < end; i++) {
        /* Empty slots are skipped without their lock; a process published
         * during the scan may be missed, as with any snapshot. */
        if (!__atomic_load_n(&slots[i], __ATOMIC_RELAXED))
            continue;
        process *p = NULL;
        pthread_mutex_lock(&shard_locks[i % SHARDS]);
        if (slots[i]) {
            p = slots[i];
            process_ref(p);
        }
        pthread_mutex_unlock(&shard_locks[i % SHARDS]);
        if (p) {
            fn(p, arg);
            process_put(p);
        }
    }
}

uint32_t process_count(void)
{
    return atomic_load(&live_count);
}
