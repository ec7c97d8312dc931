/* The library's version string matches the version macros of the header
 * the program was compiled with. */
#include "compat.h"

#include <string.h>

#include "harness.h"

int main(void) {
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", PYHEAP_VERSION_MAJOR, PYHEAP_VERSION_MINOR,
             PYHEAP_VERSION_PATCH);
    CHECKF(strcmp(PyHeap_Version(), want) == 0, "%s, header %s", PyHeap_Version(), want);
    return harness_summary();
}
