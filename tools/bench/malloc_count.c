/* LD_PRELOAD allocation counter for the daemon benchmark: counts malloc-family calls per thread and,
 * at exit, prints each thread's name and count to stderr ("malloc_count THREAD N"). Run the daemon
 * with N and with 2N readings: the difference over N is allocations per reading on each thread.
 *   gcc -O2 -shared -fPIC -o malloc_count.so tools/bench/malloc_count.c -ldl -lpthread */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define MAXT 256
struct slot { char name[17]; _Atomic unsigned long long n; int used; };
static struct slot slots[MAXT];
static _Atomic int nslots;
static __thread int mine = -1;
static __thread int naming;

static void count(void) {
    if (mine < 0) {
        if (naming) return;           /* prctl itself does not allocate, but be safe */
        naming = 1;
        int i = atomic_fetch_add(&nslots, 1);
        if (i >= MAXT) { naming = 0; return; }
        mine = i;
        slots[i].used = 1;
        naming = 0;
    }
    atomic_fetch_add_explicit(&slots[mine].n, 1, memory_order_relaxed);
    /* Thread names are set after start: refresh the recorded name now and then. */
    if ((slots[mine].n & 63) == 1) prctl(PR_GET_NAME, slots[mine].name, 0, 0, 0);
}

void *malloc(size_t s) { count(); return __libc_malloc(s); }
void *calloc(size_t n, size_t s) { count(); return __libc_calloc(n, s); }
void *realloc(void *p, size_t s) { count(); return __libc_realloc(p, s); }
void *memalign(size_t a, size_t s) { count(); return __libc_memalign(a, s); }
void *aligned_alloc(size_t a, size_t s) { count(); return __libc_memalign(a, s); }
int posix_memalign(void **out, size_t a, size_t s) {
    count();
    void *p = __libc_memalign(a, s);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

__attribute__((destructor)) static void report(void) {
    int n = atomic_load(&nslots);
    for (int i = 0; i < n && i < MAXT; i++)
        if (slots[i].used) fprintf(stderr, "malloc_count %s %llu\n", slots[i].name[0] ? slots[i].name : "?", (unsigned long long)slots[i].n);
}
