#ifndef AIOT_MALLOC_COUNTER_H
#define AIOT_MALLOC_COUNTER_H
/// Number of heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc,
/// memalign) made by this process since it started. Only meaningful in an executable that
/// links this target: its definitions interpose glibc's.
unsigned long long aiot_malloc_count(void);
#endif
