/*
 * malloc-count.so — counts a process's heap allocations (LD_PRELOAD), for
 * scripts/count-allocations.sh. Every malloc, calloc, realloc and aligned
 * allocation goes on to the allocator the process would have used without it
 * (the next `malloc` the dynamic linker finds: jemalloc in tradewired, glibc's
 * elsewhere), and free goes to that same allocator. At exit the totals are
 * appended to the file named by MALLOC_COUNT_FILE as "allocations=N bytes=M".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong allocations;
static atomic_ulong allocated_bytes;

static void *(*next_malloc)(size_t);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static void *(*next_memalign)(size_t, size_t);
static int (*next_posix_memalign)(void **, size_t, size_t);
static void (*next_free)(void *);

/* dlsym may allocate while the next allocator is being looked up: those few
 * blocks come from here, and are never freed. */
static _Alignas(64) char bootstrap[16384];
static atomic_size_t bootstrap_used;
static _Thread_local int resolving;

static int from_bootstrap(const void *p) {
    return (const char *)p >= bootstrap && (const char *)p < bootstrap + sizeof bootstrap;
}

static void *bootstrap_alloc(size_t size) {
    size_t rounded = (size + 63) & ~(size_t)63;
    size_t at = atomic_fetch_add(&bootstrap_used, rounded);
    if (at + rounded > sizeof bootstrap) return NULL;
    return bootstrap + at; /* zeroed: static storage, never reused */
}

static int resolve(void) {
    if (next_free != NULL) return 1;
    if (resolving) return 0;
    resolving = 1;
    next_malloc = dlsym(RTLD_NEXT, "malloc");
    next_calloc = dlsym(RTLD_NEXT, "calloc");
    next_realloc = dlsym(RTLD_NEXT, "realloc");
    next_memalign = dlsym(RTLD_NEXT, "memalign");
    next_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    next_free = dlsym(RTLD_NEXT, "free");
    resolving = 0;
    return next_free != NULL;
}

static void count(size_t size) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&allocated_bytes, size, memory_order_relaxed);
}

void *malloc(size_t size) {
    if (!resolve()) return bootstrap_alloc(size);
    count(size);
    return next_malloc(size);
}

void *calloc(size_t n, size_t size) {
    if (size != 0 && n > SIZE_MAX / size) return NULL;
    if (!resolve()) return bootstrap_alloc(n * size);
    count(n * size);
    return next_calloc(n, size);
}

void *realloc(void *p, size_t size) {
    if (!resolve()) return bootstrap_alloc(size);
    count(size);
    if (from_bootstrap(p)) {
        /* The old block's size is unknown: copy what fits, never past the array. */
        size_t left = (size_t)(bootstrap + sizeof bootstrap - (char *)p);
        void *moved = next_malloc(size);
        if (moved != NULL) memcpy(moved, p, size < left ? size : left);
        return moved;
    }
    return next_realloc(p, size);
}

void free(void *p) {
    if (p == NULL || from_bootstrap(p)) return;
    if (resolve()) next_free(p);
}

void *memalign(size_t alignment, size_t size) {
    if (!resolve()) return NULL;
    count(size);
    return next_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (!resolve()) return 12; /* ENOMEM */
    count(size);
    return next_posix_memalign(out, alignment, size);
}

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (path == NULL) return;
    FILE *f = fopen(path, "a");
    if (f == NULL) return;
    fprintf(f, "allocations=%lu bytes=%lu\n", atomic_load(&allocations), atomic_load(&allocated_bytes));
    fclose(f);
}
