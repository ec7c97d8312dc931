/* Bad values in the environment: a warning on stderr naming the setting,
 * and the default kept; PYHEAP_MALLOCSTATS=1 prints the allocator
 * statistics at exit. */
// pyheap-test: modes pymalloc
// pyheap-test: env PYHEAP_GC_THRESHOLD=lots
// pyheap-test: env PYHEAP_CONF=gc_debug:-3,nonsense:1
// pyheap-test: env PYHEAP_MALLOCSTATS=1
// pyheap-test: exit 0
// pyheap-test: stderr pyheap: warning: ValueError: gc_threshold: "lots" is not three thresholds (like 700/10/10) (environment)
// pyheap-test: stderr pyheap: warning: ValueError: gc_debug: "-3" is not a set of debug flags
// pyheap-test: stderr "nonsense" is not a setting
// pyheap-test: stderr Small block threshold = 512, in 32 size classes.
#include "compat.h"
#include "harness.h"

int main(void) {
    Py_ssize_t t[3];
    PyHeap_GC_GetThreshold(&t[0], &t[1], &t[2]);
    CHECK(t[0] == 700 && t[1] == 10 && t[2] == 10);
    CHECK(PyHeap_GC_GetDebug() == 0);
    void *p = PyObject_Malloc(100);
    PyObject_Free(p);
    return harness_summary();
}
