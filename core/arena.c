#include "arena.h"

#include <stdlib.h>
#include <string.h>

size_t arena_round(size_t bytes) { return (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN; }

int arena_alloc(Arena *a, size_t bytes) {
    a->size = arena_round(bytes ? bytes : 1);
    a->base = aligned_alloc(ARENA_ALIGN, a->size);
    if (!a->base) return -1;
    memset(a->base, 0, a->size);
    return 0;
}

int arena_alloc_uninit(Arena *a, size_t bytes) {
    a->size = arena_round(bytes ? bytes : 1);
    a->base = aligned_alloc(ARENA_ALIGN, a->size);
    return a->base ? 0 : -1;
}

void arena_free(Arena *a) {
    free(a->base);
    a->base = NULL;
    a->size = 0;
}
