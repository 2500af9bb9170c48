/* LD_PRELOAD allocation tracer: where a thread's heap allocations come from. For every malloc-family
 * call on threads whose name starts with $MT_THREAD, after the first $MT_SKIP of them (start-up;
 * default 20000), it records the call stack (14 frames) and counts identical stacks; at exit it
 * writes "STACK count" blocks of "object offset" frames to $MT_OUT (default /tmp/malloc_trace.txt).
 * tools/bench/malloc_trace.py symbolizes them (addr2line + swift demangle) and prints the largest.
 *   gcc -O2 -shared -fPIC -o malloc_trace.so tools/bench/malloc_trace.c -ldl -lpthread
 *   MT_THREAD=aiotd-process LD_PRELOAD=./malloc_trace.so aiotd --config ...   (then SIGTERM it)
 * Found the copy-on-write of a sensor's accuracy state per forecast (docs/performance.md). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
#define DEPTH 14
#define NST 4096
struct st { void *pc[DEPTH]; int n; unsigned long long c; };
static struct st tab[NST];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static __thread int busy;
static __thread unsigned long long seen;
static void rec(void) {
    if (busy) return;
    busy = 1;
    char name[17] = {0};
    prctl(PR_GET_NAME, name, 0, 0, 0);
    const char *want = getenv("MT_THREAD");
    if (want && strncmp(name, want, strlen(want)) == 0) {
        seen++;
        unsigned long long skip = getenv("MT_SKIP") ? strtoull(getenv("MT_SKIP"), 0, 10) : 20000;
        if (seen > skip) {
            void *pc[DEPTH]; int n = backtrace(pc, DEPTH);
            unsigned long h = 1469598103934665603UL;
            for (int i = 0; i < n; i++) h = (h ^ (unsigned long)pc[i]) * 1099511628211UL;
            pthread_mutex_lock(&mu);
            for (unsigned long k = 0; k < NST; k++) {
                struct st *s = &tab[(h + k) % NST];
                if (s->n == 0) { memcpy(s->pc, pc, sizeof pc); s->n = n; s->c = 1; break; }
                if (s->n == n && memcmp(s->pc, pc, n * sizeof(void *)) == 0) { s->c++; break; }
            }
            pthread_mutex_unlock(&mu);
        }
    }
    busy = 0;
}
void *malloc(size_t s) { rec(); return __libc_malloc(s); }
void *calloc(size_t n, size_t s) { rec(); return __libc_calloc(n, s); }
void *realloc(void *p, size_t s) { rec(); return __libc_realloc(p, s); }
void *memalign(size_t a, size_t s) { rec(); return __libc_memalign(a, s); }
void *aligned_alloc(size_t a, size_t s) { rec(); return __libc_memalign(a, s); }
int posix_memalign(void **out, size_t a, size_t s) { rec(); void *p = __libc_memalign(a, s); if (!p) return ENOMEM; *out = p; return 0; }
__attribute__((destructor)) static void report(void) {
    busy = 1;
    FILE *f = fopen(getenv("MT_OUT") ? getenv("MT_OUT") : "/tmp/malloc_trace.txt", "w");
    if (!f) return;
    for (int i = 0; i < NST; i++) if (tab[i].n) {
        fprintf(f, "STACK %llu\n", tab[i].c);
        for (int j = 1; j < tab[i].n; j++) {
            Dl_info d; if (dladdr(tab[i].pc[j], &d) && d.dli_fname) fprintf(f, "  %s 0x%lx\n", d.dli_fname, (unsigned long)((char *)tab[i].pc[j] - (char *)d.dli_fbase - 1));
            else fprintf(f, "  ? %p\n", tab[i].pc[j]);
        }
    }
    fclose(f);
}
