/* Visiting objects while the callback drops references: every object
 * PyUnstable_GC_VisitObjects or PyHeap_GC_GetObjects will pass is held
 * until the walk ends, so a callback that drops the last reference to an
 * object not yet visited cannot free it under the walk (the object is
 * still whole when its turn comes, and freed when the walk returns). */
#include "gc_nodes.h"

#include "harness.h"

static Node *pair[2];
static int dropped = -1; /* index into pair of the node the callback dropped */
static int later_visits, later_intact;
static long freed_during;

/* On the first of the pair: drop our only reference to the other one. */
static void on_node(PyObject *op) {
    for (int i = 0; i < 2; i++) {
        if (op != (PyObject *)pair[i]) continue;
        if (dropped < 0) {
            dropped = 1 - i;
            long before = nodes_freed;
            Py_DECREF(pair[dropped]);
            freed_during += nodes_freed - before;
        } else if (i == dropped) {
            later_visits++;
            later_intact += ((Node *)op)->id == 100 + i && Py_REFCNT(op) >= 1;
        }
    }
}

static int visit_cb(PyObject *op, void *arg) {
    (void)arg;
    on_node(op);
    return 1; /* go on */
}

static int objects_cb(PyObject *op, void *ctx) {
    (void)ctx;
    on_node(op);
    return 0; /* go on */
}

static void make_pair(void) {
    pair[0] = node_new(&Node_Type, 100);
    pair[1] = node_new(&Node_Type, 101);
    dropped = -1;
    later_visits = later_intact = 0;
    freed_during = 0;
}

int main(void) {
    CHECK(nodes_ready());
    (void)node_link;

    make_pair();
    long freed0 = nodes_freed;
    PyUnstable_GC_VisitObjects(visit_cb, NULL);
    CHECK(dropped >= 0);
    CHECK(freed_during == 0);
    CHECK(later_visits == 1 && later_intact == 1);
    CHECK(nodes_freed == freed0 + 1); /* freed once the walk released it */
    Py_DECREF(pair[1 - dropped]);

    make_pair();
    freed0 = nodes_freed;
    CHECK(PyHeap_GC_GetObjects(-1, objects_cb, NULL) >= 2);
    CHECK(dropped >= 0);
    CHECK(freed_during == 0);
    CHECK(later_visits == 1 && later_intact == 1);
    CHECK(nodes_freed == freed0 + 1);
    Py_DECREF(pair[1 - dropped]);
    return harness_summary();
}
