/* Configuration precedence: defaults < PYHEAP_CONF < PYHEAP_* variables <
 * PyHeap_Initialize < PyHeap_SetOption, shown by PyHeap_PrintConfig; bad
 * values leave a setting unchanged with an error. */
// pyheap-test: modes pymalloc
// pyheap-test: env PYHEAP_CONF=gc_threshold:500/5/5,gc_debug:2,tracemalloc:4
// pyheap-test: env PYHEAP_GC_THRESHOLD=600,6,6
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "compat.h"
#include "harness.h"

static char text[4096];

/* The PyHeap_PrintConfig line for `key`. */
static const char *line(const char *key) {
    FILE *f = tmpfile();
    if (f == NULL || PyHeap_PrintConfig(f) != 0) return "";
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    char *p = strstr(text, key);
    if (p == NULL) return "";
    char *end = strchr(p, '\n');
    if (end) *end = 0;
    return p;
}

int main(void) {
    Py_ssize_t t[3];
    /* The variable beats PYHEAP_CONF; PYHEAP_CONF beats the defaults. */
    PyHeap_GC_GetThreshold(&t[0], &t[1], &t[2]);
    CHECK(t[0] == 600 && t[1] == 6 && t[2] == 6);
    CHECK(strcmp(line("gc_threshold"), "gc_threshold: 600/6/6 (environment)") == 0);
    CHECK(PyHeap_GC_GetDebug() == 2);
    CHECK(strcmp(line("gc_debug"), "gc_debug: 2 (PYHEAP_CONF)") == 0);
    CHECK(strcmp(line("tracemalloc"), "tracemalloc: 4 (PYHEAP_CONF)") == 0);
    CHECK(PyHeap_TraceMalloc_IsTracing() == 1); /* started at load */
    CHECK(PyHeap_TraceMalloc_GetTracebackLimit() == 4);
    CHECK(strcmp(line("malloc:"), "malloc: pymalloc (default)") == 0);

    /* PyHeap_Initialize beats the environment, for the fields it sets. */
    PyHeap_Config c;
    PyHeap_InitConfig(&c);
    c.gc_threshold[0] = 650;
    c.gc_debug = 0;
    CHECK(PyHeap_Initialize(&c) == 0);
    PyHeap_GC_GetThreshold(&t[0], &t[1], &t[2]);
    CHECK(t[0] == 650 && t[1] == 6 && t[2] == 6);
    CHECK(strcmp(line("gc_debug"), "gc_debug: 0 (PyHeap_Initialize)") == 0);
    CHECK(PyHeap_Initialize(NULL) == 0);

    /* PyHeap_SetOption beats everything. */
    CHECK(PyHeap_SetOption("gc_threshold", "700/10/10") == 0);
    CHECK(strcmp(line("gc_threshold"), "gc_threshold: 700/10/10 (PyHeap_SetOption)") == 0);

    /* Bad values: -1, an error naming the setting, nothing changed. */
    CHECK(PyHeap_SetOption("gc_threshold", "1/2") == -1);
    CHECK(last_error_contains("gc_threshold: \"1/2\" is not three thresholds"));
    CHECK(PyHeap_SetOption("tracemalloc", "many") == -1);
    CHECK(last_error_contains("tracemalloc"));
    CHECK(PyHeap_TraceMalloc_IsTracing() == 1);
    CHECK(PyHeap_SetOption("colour", "blue") == -1);
    CHECK(last_error_contains("\"colour\" is not a setting"));
    CHECK(PyHeap_SetOption(NULL, "1") == -1);
    CHECK(last_error_contains("bad argument"));
    PyHeap_GC_GetThreshold(&t[0], &t[1], &t[2]);
    CHECK(t[0] == 700 && t[1] == 10 && t[2] == 10);
    c.gc_threshold[1] = -1;
    c.tracemalloc = 70000;
    CHECK(PyHeap_Initialize(&c) == -1);
    CHECK(last_error_contains("tracemalloc"));
    CHECK(PyHeap_SetOption("tracemalloc", "0") == 0); /* stops tracing */
    CHECK(PyHeap_TraceMalloc_IsTracing() == 0);
    CHECK(strcmp(line("tracemalloc"), "tracemalloc: 0 (PyHeap_SetOption)") == 0);

    /* The allocator mode can change only before the first allocation. */
    PyObject_Free(PyObject_Malloc(8));
    CHECK(PyHeap_SetOption("malloc", "debug") == -1);
    CHECK(last_error_contains("cannot change once memory was allocated"));
    CHECK(PyHeap_SetOption("malloc", "pymalloc") == 0); /* no change: fine */
    CHECK(PyHeap_SetOption("malloc", "tcmalloc") == -1);
    CHECK(last_error_contains("is not an allocator mode"));
    return harness_summary();
}
