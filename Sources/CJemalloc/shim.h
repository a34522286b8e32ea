// The one jemalloc call tradewired makes itself: `mallctl("version", …)`, for the allocator it
// names in its first log line. Linking the library is what matters: its malloc and free take
// the place of glibc's for the whole process (see the README, "Why jemalloc").
#include <stddef.h>

int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
