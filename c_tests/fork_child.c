/* fork(): a child forked by the thread holding the runtime lock goes on
 * using the heap (objects, cycles, collections, other threads); so does a
 * child forked while the lock was free. A child forked while another
 * thread held the lock cannot know the heap is whole: taking the lock
 * there stops it with a clear message instead of waiting for ever. The
 * child forgets the thread states of threads it does not have. */
// pyheap-test: cflags -pthread -D_DEFAULT_SOURCE
#include "compat.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

typedef struct {
    PyObject_HEAD
    PyObject *other;
} Node;

static long freed;

static int node_traverse(PyObject *self, visitproc visit, void *arg) {
    Py_VISIT(((Node *)self)->other);
    return 0;
}

static int node_clear(PyObject *self) {
    Py_CLEAR(((Node *)self)->other);
    return 0;
}

static void node_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    node_clear(self);
    freed++;
    PyObject_GC_Del(self);
}

static PyTypeObject Node_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fork.Node",
    .tp_basicsize = sizeof(Node),
    .tp_dealloc = node_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = node_traverse,
    .tp_clear = node_clear,
};

static PyObject *new_node(void) {
    Node *n = PyObject_GC_New(Node, &Node_Type);
    n->other = NULL;
    PyObject_GC_Track((PyObject *)n);
    return (PyObject *)n;
}

static void *thread_in_child(void *arg) {
    PyGILState_STATE s = PyGILState_Ensure();
    PyObject *n = new_node();
    Py_DECREF(n);
    *(int *)arg = PyGILState_Check();
    PyGILState_Release(s);
    return NULL;
}

/* What a child does with the heap; its exit status is its verdict. */
static int child_work(PyObject *kept) {
    int ok = Py_REFCNT(kept) == 1 && ((Node *)kept)->other == NULL;
    long before = freed;
    for (int i = 0; i < 100; i++) {
        PyObject *a = new_node(), *b = new_node();
        ((Node *)a)->other = Py_NewRef(b);
        ((Node *)b)->other = Py_NewRef(a);
        Py_DECREF(a);
        Py_DECREF(b);
    }
    ok = ok && PyGC_Collect() >= 200 && freed - before == 200;
    /* Threads work in the child too. */
    int seen = 0;
    pthread_t t;
    Py_BEGIN_ALLOW_THREADS
    pthread_create(&t, NULL, thread_in_child, &seen);
    pthread_join(t, NULL);
    Py_END_ALLOW_THREADS
    ok = ok && seen == 1 && PyHeap_ThreadStateCount() == 1;
    return ok ? 0 : 3;
}

static int wait_status(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

/* A thread that holds the lock until told to stop. */
static atomic_int holding, release_now;

static void *holder(void *arg) {
    (void)arg;
    PyGILState_STATE s = PyGILState_Ensure();
    atomic_store(&holding, 1);
    while (!atomic_load(&release_now)) usleep(1000);
    PyGILState_Release(s);
    return NULL;
}

/* A thread with a state of its own, waiting outside the lock. */
static atomic_int parked, unpark;

static void *parker(void *arg) {
    (void)arg;
    PyGILState_STATE s = PyGILState_Ensure();
    Py_BEGIN_ALLOW_THREADS
    atomic_store(&parked, 1);
    while (!atomic_load(&unpark)) usleep(1000);
    Py_END_ALLOW_THREADS
    PyGILState_Release(s);
    return NULL;
}

int main(void) {
    Py_Initialize();
    CHECK(PyType_Ready(&Node_Type) == 0);
    PyObject *kept = new_node();

    /* 1. Forked by the thread holding the lock. */
    pid_t pid = fork();
    if (pid == 0) _exit(child_work(kept));
    int st = wait_status(pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);

    /* 2. Forked while nobody held the lock (it is taken back in the child). */
    Py_BEGIN_ALLOW_THREADS
    pid = fork();
    if (pid == 0) {
        PyGILState_STATE s = PyGILState_Ensure();
        int r = child_work(kept);
        PyGILState_Release(s);
        _exit(r);
    }
    st = wait_status(pid);
    Py_END_ALLOW_THREADS
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);

    /* 3. Forked while another thread held it: the child stops when it
     * asks for the lock, with a message. */
    int err[2];
    CHECK(pipe(err) == 0);
    pthread_t t;
    Py_BEGIN_ALLOW_THREADS
    pthread_create(&t, NULL, holder, NULL);
    while (!atomic_load(&holding)) usleep(1000);
    pid = fork();
    if (pid == 0) {
        dup2(err[1], 2);
        PyGILState_STATE s = PyGILState_Ensure();
        PyGILState_Release(s);
        _exit(0); /* not reached */
    }
    st = wait_status(pid);
    atomic_store(&release_now, 1);
    pthread_join(t, NULL);
    Py_END_ALLOW_THREADS
    close(err[1]);
    char text[1024] = {0};
    ssize_t n = read(err[0], text, sizeof text - 1);
    close(err[0]);
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %#x", st);
    CHECKF(n > 0 && strstr(text, "fatal error in PyGILState_Ensure") &&
               strstr(text, "when this process was forked"),
           "stderr: %s", text);

    /* 4. Forked while another thread had a state (parked outside the
     * lock): the child drops the state of the thread it does not have. */
    Py_BEGIN_ALLOW_THREADS
    pthread_create(&t, NULL, parker, NULL);
    while (!atomic_load(&parked)) usleep(1000);
    Py_END_ALLOW_THREADS
    CHECK(PyHeap_ThreadStateCount() == 2);
    pid = fork();
    if (pid == 0) _exit(child_work(kept));
    st = wait_status(pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
    atomic_store(&unpark, 1);
    Py_BEGIN_ALLOW_THREADS
    pthread_join(t, NULL);
    Py_END_ALLOW_THREADS

    /* The parent is unaffected by any of it. */
    CHECK(PyGILState_Check() == 1);
    CHECK(PyHeap_ThreadStateCount() == 1);
    Py_DECREF(kept);
    CHECK(Py_FinalizeEx() == 0);
    return harness_summary();
}
