/* Shared by the native KAN kernels (_native.c: features + GEMM route; _native_sparse.c: the
 * sparse route): includes, limits and the span computation u -> (s, f) of the closed form
 * described in _native.c. Included by both sources; built together by nnlab.kan.native. */
#ifndef NNLAB_KAN_NATIVE_H
#define NNLAB_KAN_NATIVE_H
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAXK 16
/* below this many feature values per call one thread does it all (fork/join costs ~5 us) */
#define PAR_MIN 32768L

/* u -> (s = floor(u), f = u - s), u clamped to [-1, n_knots] (no overflow; NaN -> -1: all zero).
 * xd holds the row of x in double. */
static inline __attribute__((always_inline)) void
spans_i(const double *restrict xd, long I, const double *restrict t0,
        const double *restrict inv_h, double hi, int *restrict s, double *restrict f) {
    for (long i = 0; i < I; i++) {
        double u = (xd[i] - t0[i]) * inv_h[i];
        u = u >= -1.0 ? u : -1.0; /* also maps NaN to -1 */
        u = u <= hi ? u : hi;
        int si = (int)u; /* floor as a cast and a correction: vectorises without SSE4.1 */
        si -= (double)si > u;
        s[i] = si;
        f[i] = u - (double)si;
    }
}

/* _native.c: the input check (bit 0 NaN/inf, bit 1 outside [lo, hi]), see there */
int kan_check_input_f32(const float *x, long B, long I, const double *lo, const double *hi, int range);
int kan_check_input_f64(const double *x, long B, long I, const double *lo, const double *hi, int range);

#endif
