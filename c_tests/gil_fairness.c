/* The runtime lock hands over: a thread that has waited a whole switch
 * interval gets the lock at the holder's next release, even if the holder
 * takes it back at once (Py_BEGIN_ALLOW_THREADS around nothing). Each
 * round the holder keeps the lock well past the interval while the other
 * thread waits, lets go for an instant, and on taking it back must find
 * that the waiter ran in between. A lock without the hand-over lets the
 * holder win that race most of the time. Also the nesting rules of
 * PyGILState_Ensure, and PyHeap_GIL_Yield letting a waiter in. */
// pyheap-test: cflags -pthread -D_GNU_SOURCE
#include "compat.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "harness.h"

#define ROUNDS 5

static atomic_int asking, served, go;
/* Rounds in which the waiter, having let go, no longer held the lock: its
 * own count (a CHECK there would race with the main thread's), read after
 * the join. */
static int released_ok;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Holds the lock (allocating) for `seconds`. */
static void busy(double seconds) {
    double end = now() + seconds;
    while (now() < end) {
        for (int i = 0; i < 100; i++) PyObject_Free(PyObject_Malloc(32));
    }
}

static void *waiter(void *arg) {
    (void)arg;
    for (int round = 0; round < ROUNDS; round++) {
        while (atomic_load(&go) != round + 1) {
        }
        atomic_store(&asking, 1);
        PyGILState_STATE s = PyGILState_Ensure();
        atomic_store(&served, 1);
        /* Nesting: the inner Ensure finds the lock held. */
        PyGILState_STATE inner = PyGILState_Ensure();
        CHECK(inner == PyGILState_LOCKED);
        PyGILState_Release(inner);
        CHECK(PyGILState_Check() == 1);
        PyGILState_Release(s);
        released_ok += PyGILState_Check() == 0;
    }
    return NULL;
}

/* PyHeap_GIL_Yield: a holder that never releases on its own lets a waiting
 * thread in at its yield points. */
static atomic_int yield_waiter_served;

static void *yield_waiter(void *arg) {
    (void)arg;
    PyGILState_STATE s = PyGILState_Ensure();
    atomic_store(&yield_waiter_served, 1);
    PyGILState_Release(s);
    return NULL;
}

static void check_yield(void) {
    CHECK(PyHeap_GIL_Yield() == 0); /* nobody waits */
    pthread_t t;
    pthread_create(&t, NULL, yield_waiter, NULL);
    int yielded = 0;
    double deadline = now() + 20.0;
    while (!atomic_load(&yield_waiter_served) && now() < deadline) {
        busy(0.001);
        yielded += PyHeap_GIL_Yield();
    }
    CHECK(atomic_load(&yield_waiter_served));
    CHECK(yielded >= 1);
    Py_BEGIN_ALLOW_THREADS
    pthread_join(t, NULL);
    Py_END_ALLOW_THREADS
}

int main(void) {
    Py_Initialize();
    CHECK(PyHeap_GIL_GetSwitchInterval() == 0.005);
    CHECK(PyHeap_GIL_SetSwitchInterval(0) == -1);
    CHECK(last_error_contains("strictly positive"));
    CHECK(PyHeap_ThreadStateCount() == 1);

    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    int handed_over = 0;
    for (int round = 0; round < ROUNDS; round++) {
        atomic_store(&served, 0);
        atomic_store(&asking, 0);
        atomic_store(&go, round + 1);
        while (!atomic_load(&asking)) {
        }
        /* Ten intervals with the lock held while the waiter waits... */
        busy(0.05);
        CHECK(!atomic_load(&served));
        /* ...then an instant without it. */
        Py_BEGIN_ALLOW_THREADS
        Py_END_ALLOW_THREADS
        handed_over += atomic_load(&served);
        while (!atomic_load(&served)) { /* let the waiter finish its turn */
            Py_BEGIN_ALLOW_THREADS
            Py_END_ALLOW_THREADS
        }
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_join(t, NULL);
    Py_END_ALLOW_THREADS
    CHECKF(handed_over == ROUNDS, "the lock changed hands in %d of %d rounds",
           handed_over, ROUNDS);
    CHECK(released_ok == ROUNDS);
    printf("handed over in %d of %d rounds\n", handed_over, ROUNDS);

    check_yield();
    /* Each outermost Ensure/Release pair made and deleted a thread state. */
    CHECK(PyHeap_ThreadStateCount() == 1);
    CHECK(Py_FinalizeEx() == 0);
    return harness_summary();
}
