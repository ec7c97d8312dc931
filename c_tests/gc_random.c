/* Random object graphs: after dropping every reference but a random set of
 * roots, a full collection frees exactly the nodes a reachability oracle
 * (BFS from the roots) says are unreachable. Then a 1,000,000-object graph.
 * Runs against CPython 3.11 too. */
// pyheap-test: cpython
#include "gc_nodes.h"

#include <stdint.h>
#include <stdlib.h>

#include "harness.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void one_graph(long n, int edges_per_node, int roots) {
    Node **nodes = malloc(sizeof(Node *) * n);
    long *a = malloc(sizeof(long) * n), *b = malloc(sizeof(long) * n);
    unsigned char *reach = calloc(n, 1), *is_root = calloc(n, 1);
    long *queue = malloc(sizeof(long) * n);
    freed_ids = calloc(n, 1);
    max_id = n;
    for (long i = 0; i < n; i++) nodes[i] = node_new(&Node_Type, i);
    for (long i = 0; i < n; i++) {
        a[i] = edges_per_node > 0 ? (long)(next_rand() % n) : -1;
        b[i] = edges_per_node > 1 ? (long)(next_rand() % n) : -1;
        if (a[i] >= 0) node_link(nodes[i], nodes[a[i]]);
        if (b[i] >= 0) {
            Py_INCREF(nodes[b[i]]);
            nodes[i]->b = (PyObject *)nodes[b[i]];
        }
    }
    for (int r = 0; r < roots; r++) is_root[next_rand() % n] = 1;
    /* Oracle. */
    long head = 0, tail = 0;
    for (long i = 0; i < n; i++)
        if (is_root[i]) reach[i] = 1, queue[tail++] = i;
    while (head < tail) {
        long i = queue[head++];
        long out[2] = {a[i], b[i]};
        for (int k = 0; k < 2; k++)
            if (out[k] >= 0 && !reach[out[k]]) reach[out[k]] = 1, queue[tail++] = out[k];
    }
    /* Drop every non-root reference; refcounting frees acyclic garbage. */
    for (long i = 0; i < n; i++)
        if (!is_root[i]) Py_DECREF(nodes[i]);
    PyGC_Collect();
    long wrong = 0;
    for (long i = 0; i < n; i++) wrong += (freed_ids[i] != 0) != (reach[i] == 0);
    CHECKF(wrong == 0, "%ld nodes disagree with the oracle (n=%ld)", wrong, n);
    /* Drop the roots: everything goes. */
    for (long i = 0; i < n; i++)
        if (is_root[i]) Py_DECREF(nodes[i]);
    PyGC_Collect();
    long left = 0;
    for (long i = 0; i < n; i++) left += !freed_ids[i];
    CHECKF(left == 0, "%ld nodes left after dropping the roots", left);
    free(nodes), free(a), free(b), free(reach), free(is_root), free(queue), free(freed_ids);
    freed_ids = NULL;
}

int main(void) {
    TEST_INIT();
    CHECK(nodes_ready());
    PyGC_Collect();
    for (int round = 0; round < 40; round++) {
        long n = 2 + (long)(next_rand() % 3000);
        one_graph(n, 1 + round % 2, (int)(next_rand() % 20));
    }
    /* A million objects: 100,000 ten-node rings and 100,000 live nodes. */
    nodes_freed = 0;
    Node **live = malloc(sizeof(Node *) * 100000);
    for (long r = 0; r < 100000; r++) {
        Node *first = node_new(&Node_Type, -1), *prev = first;
        for (int i = 1; i < 10; i++) {
            Node *x = node_new(&Node_Type, -1);
            node_link(prev, x);
            Py_DECREF(x);
            prev = x;
        }
        node_link(prev, first);
        Py_DECREF(first);
        live[r] = node_new(&Node_Type, -1);
        if (r > 0) node_link(live[r], live[r - 1]);
    }
    PyGC_Collect();
    CHECKF(nodes_freed == 1000000, "freed %ld of 1000000", nodes_freed);
    for (long r = 0; r < 100000; r++) Py_DECREF(live[r]);
    CHECK(nodes_freed == 1100000);
    free(live);
    return harness_summary();
}
