/* CPython's exported string helpers: _PyMem_RawStrdup, _PyMem_Strdup,
 * _PyMem_RawWcsdup copy into their domain's memory. */
// pyheap-test: cpython
#include "compat.h"

#include <string.h>
#include <wchar.h>

#include "harness.h"

int main(void) {
    const char *s = "pyheap: strings through the allocator domains";
    char *raw = _PyMem_RawStrdup(s);
    char *mem = _PyMem_Strdup(s);
    CHECK(raw != NULL && mem != NULL && raw != s && mem != s);
    CHECK(strcmp(raw, s) == 0);
    CHECK(strcmp(mem, s) == 0);
    char *empty = _PyMem_Strdup("");
    CHECK(empty != NULL && empty[0] == '\0');
    PyMem_RawFree(raw);
    PyMem_Free(mem);
    PyMem_Free(empty);

    const wchar_t *w = L"wide \u00e9t\u00e9";
    wchar_t *wd = _PyMem_RawWcsdup(w);
    CHECK(wd != NULL && wcscmp(wd, w) == 0);
    PyMem_RawFree(wd);
    return harness_summary();
}
