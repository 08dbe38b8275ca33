/* The engine's scalar type.
 *
 * The whole engine is compiled twice from the same sources: `real` = float for
 * training (libcbnn_f32) and `real` = double for the gradient checks
 * (libcbnn_f64), so that finite differences in tests are taken in double
 * precision on exactly the code that trains. A program links one of the two. */
#ifndef CBNN_REAL_H
#define CBNN_REAL_H

#ifdef CBNN_DOUBLE
typedef double real;
#define REAL_IS_DOUBLE 1
#define REAL_NAME "f64"
#else
typedef float real;
#define REAL_IS_DOUBLE 0
#define REAL_NAME "f32"
#endif

#endif
