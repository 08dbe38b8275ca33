/* Arenas: sizes are computed first, then one aligned allocation carved into
 * named tensors. A model owns one arena each for parameters, gradients,
 * optimizer state, buffers (running statistics), activations, activation
 * gradients and scratch. */
#ifndef CBNN_ARENA_H
#define CBNN_ARENA_H

#include <stddef.h>

#define ARENA_ALIGN 64

typedef struct {
    void *base;
    size_t size;   /* bytes */
} Arena;

/* round a byte count up to the alignment, so carved tensors stay aligned */
size_t arena_round(size_t bytes);
/* one zeroed, ARENA_ALIGN-aligned allocation; returns 0 on success */
int arena_alloc(Arena *a, size_t bytes);
/* the same, not zeroed: for scratch that every user writes before it reads.
 * Pages no code path touches then never become resident (a large allocation
 * is fresh zero pages from the kernel), so peak RSS counts what runs. */
int arena_alloc_uninit(Arena *a, size_t bytes);
void arena_free(Arena *a);

#endif
