// The one jemalloc call tradewired makes itself: reading the allocator's version at start-up
// (which also proves jemalloc, not the C library, serves malloc). Linking the library is what
// matters: its malloc and free take the place of glibc's for the whole process (see README,
// "Why jemalloc").
#include <stddef.h>

int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
