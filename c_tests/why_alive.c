/* Why is this alive? A chain root -> middle -> leaf held only through a C
 * variable on the root: the report names the root as held from outside the
 * heap and the chain down to the leaf. A deliberately leaked reference (an
 * extra Py_INCREF) shows as a reference from outside, with the allocation
 * site. Garbage waiting for the collector is said to be garbage. The DOT
 * picture of a known cycle has its nodes and edges, and Graphviz's dot
 * accepts it when installed; so do the pictures of the garbage list and of
 * every cycle that survived a collection. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "harness.h"

typedef struct {
    PyObject_HEAD
    PyObject *next;
} Link;

static int link_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(((Link *)self)->next);
    return 0;
}

static int link_clear(PyObject *self) {
    Py_CLEAR(((Link *)self)->next);
    return 0;
}

static void link_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    link_clear(self);
    PyObject_GC_Del(self);
}

static PyTypeObject Link_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "graph.Link",
    .tp_basicsize = sizeof(Link),
    .tp_dealloc = link_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = link_traverse,
    .tp_clear = link_clear,
};

static void legacy_del(PyObject *self) { (void)self; }

static PyTypeObject Legacy_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "graph.Legacy",
    .tp_basicsize = sizeof(Link),
    .tp_dealloc = link_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = link_traverse,
    .tp_clear = link_clear,
    .tp_del = legacy_del,
};

static PyObject *link_new(PyTypeObject *tp, PyObject *next) {
    Link *l = PyObject_GC_New(Link, tp);
    l->next = Py_XNewRef(next);
    PyObject_GC_Track((PyObject *)l);
    return (PyObject *)l;
}

__attribute__((noinline)) static PyObject *make_leaky(void) {
    return link_new(&Link_Type, NULL);
}

static char *capture(Py_ssize_t *n, Py_ssize_t (*fn)(PyObject *, FILE *), PyObject *o) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *n = fn(o, f);
    fclose(f);
    return buf;
}

static int dot_accepts(const char *text) {
    if (system("command -v dot >/dev/null 2>&1") != 0) {
        printf("dot not installed: DOT output not rendered\n");
        return 1;
    }
    char dot[] = "/tmp/pyheap-dot-XXXXXX";
    int fd = mkstemp(dot);
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) return 0;
    close(fd);
    char svg[64];
    snprintf(svg, sizeof svg, "%s.svg", dot);
    int ok = PyHeap_RenderSvg(dot, svg) == 0;
    FILE *f = fopen(svg, "r");
    char head[2048] = {0};
    if (f) {
        if (fread(head, 1, sizeof head - 1, f) == 0) head[0] = 0;
        fclose(f);
    }
    ok = ok && strstr(head, "<svg") != NULL;
    unlink(dot);
    unlink(svg);
    return ok;
}

int main(void) {
    CHECK(PyType_Ready(&Link_Type) == 0);
    CHECK(PyType_Ready(&Legacy_Type) == 0);
    CHECK(PyHeap_TraceMalloc_Start(2) == 0);

    /* root -> middle -> leaf; only root is held from C. */
    PyObject *leaf = link_new(&Link_Type, NULL);
    PyObject *middle = link_new(&Link_Type, leaf);
    PyObject *root = link_new(&Link_Type, middle);
    Py_DECREF(leaf);
    Py_DECREF(middle);
    Py_ssize_t n;
    char *text = capture(&n, PyHeap_WhyAlive, leaf);
    char want[256];
    snprintf(want, sizeof want,
             "held from outside the heap (a C variable, or a missing Py_DECREF): "
             "<graph.Link object at %p>, refcount 1, 1 reference(s) not from the heap",
             (void *)root);
    CHECKF(n == 1 && strstr(text, want), "%zd\n%s", n, text);
    snprintf(want, sizeof want, "    -> <graph.Link object at %p>", (void *)middle);
    CHECKF(strstr(text, want) != NULL, "%s", text);
    snprintf(want, sizeof want, "why is <graph.Link object at %p> alive?", (void *)leaf);
    CHECKF(strstr(text, want) && strstr(text, "refcount 1: 1 from objects of the heap, 0 from outside it"),
           "%s", text);
    free(text);

    /* A missing Py_DECREF: the leaf gets a reference nothing in the heap
     * accounts for, and its allocation site is named. */
    PyObject *leaky = make_leaky();
    ((Link *)leaf)->next = Py_NewRef(leaky);
    /* (the caller forgets its own reference to leaky) */
    text = capture(&n, PyHeap_WhyAlive, leaky);
    CHECKF(n == 2 && strstr(text, "refcount 2: 1 from objects of the heap, 1 from outside it") &&
               strstr(text, "in make_leaky"),
           "%zd\n%s", n, text);
    free(text);

    /* A dropped cycle: garbage until collected. */
    PyObject *a = link_new(&Link_Type, NULL), *b = link_new(&Link_Type, a);
    ((Link *)a)->next = Py_NewRef(b);
    Py_DECREF(b);
    Py_DECREF(a);
    text = capture(&n, PyHeap_WhyAlive, a);
    CHECKF(n == 0 && strstr(text, "it is garbage waiting for the collector"), "%s", text);
    free(text);
    PyGC_Collect();

    /* The picture of a known cycle: x -> y -> z -> x, held from C. */
    PyObject *z = link_new(&Link_Type, NULL);
    PyObject *y = link_new(&Link_Type, z);
    PyObject *x = link_new(&Link_Type, y);
    ((Link *)z)->next = Py_NewRef(x);
    char *dot = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&dot, &len);
    n = PyHeap_WriteDot(x, 5, 10, NULL, f);
    fclose(f);
    CHECKF(n == 3, "%zd nodes\n%s", n, dot);
    CHECK(strncmp(dot, "digraph ", 8) == 0);
    int edges = 0;
    for (char *p = dot; (p = strstr(p, " -> ")) != NULL; p++) edges++;
    CHECKF(edges == 3, "%d edges\n%s", edges, dot);
    snprintf(want, sizeof want, "graph.Link\\n%p\\nrefcount 2 (1 from outside)", (void *)x);
    CHECKF(strstr(dot, want) && strstr(dot, "style=bold"), "%s", dot);
    CHECK(strstr(dot, "why_alive.c:") != NULL); /* allocation sites */
    CHECK(dot_accepts(dot));
    free(dot);
    /* A filter that matches nothing leaves only the start. */
    f = open_memstream(&dot, &len);
    CHECK(PyHeap_WriteDot(x, 5, 10, "NoSuchType", f) == 1);
    fclose(f);
    free(dot);

    /* The garbage list: a legacy cycle. */
    PyObject *g1 = link_new(&Legacy_Type, NULL), *g2 = link_new(&Legacy_Type, g1);
    ((Link *)g1)->next = Py_NewRef(g2);
    Py_DECREF(g1);
    Py_DECREF(g2);
    PyGC_Collect();
    f = open_memstream(&dot, &len);
    n = PyHeap_GC_WriteGarbageDot(f);
    fclose(f);
    CHECKF(n == 2 && strstr(dot, "graph.Legacy"), "%zd\n%s", n, dot);
    text = capture(&n, PyHeap_WhyAlive, g1);
    CHECKF(n >= 1 && strstr(text, "held by the garbage list (uncollectable"), "%s", text);
    free(text);
    CHECK(dot_accepts(dot));
    free(dot);

    /* Every cycle alive after a collection: x -> y -> z -> x, the legacy
     * pair in the garbage list, and one object referring to itself. */
    PyObject *self_ref = link_new(&Link_Type, NULL);
    ((Link *)self_ref)->next = Py_NewRef(self_ref);
    PyGC_Collect();
    f = open_memstream(&dot, &len);
    n = PyHeap_WriteCyclesDot(0, f);
    fclose(f);
    CHECKF(n == 3, "%zd cycles\n%s", n, dot);
    CHECKF(strstr(dot, "label=\"cycle 1 (3 objects)\"") &&
               strstr(dot, "label=\"cycle 2 (2 objects)\"") &&
               strstr(dot, "label=\"cycle 3 (1 objects)\""),
           "%s", dot);
    edges = 0;
    for (char *p = dot; (p = strstr(p, " -> ")) != NULL; p++) edges++;
    CHECKF(edges == 6, "%d edges\n%s", edges, dot);
    CHECK(dot_accepts(dot));
    free(dot);
    f = open_memstream(&dot, &len);
    CHECK(PyHeap_WriteCyclesDot(1, f) == 1); /* the biggest only */
    fclose(f);
    free(dot);
    Py_DECREF(self_ref);

    CHECK(PyHeap_WhyAlive(NULL, stdout) == -1);
    PyHeap_ClearError();
    Py_DECREF(root);
    Py_DECREF(x);
    return harness_summary();
}
