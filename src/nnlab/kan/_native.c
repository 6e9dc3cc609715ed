/* Native KAN feature kernels (uniform grids), plain C + OpenMP, no torch headers.
 *
 * Built at first use by nnlab.kan.native (cc -O3 -march=native -fopenmp -fPIC -shared, with
 * fallbacks to fewer flags) and called through ctypes, which releases the GIL.
 *
 * Layout: x (B, I) row-major; F and gF (B, K+1, I) slot-major (slot K = base branch).
 * Closed form on a uniform extended knot grid t_m = t0 + m h (m = 0 .. K+k):
 *   u = (x - t0) / h (in double), s = floor(u), f = u - s,
 *   B_{s-k+r}(x) = sum_p M[p, r] f^p        (M = spline.uniform_basis_matrix(k), (k+1, k+1))
 *   B'_{s-k+r}(x) = sum_p dM[p, r] f^p / h  (dM, (k, k+1): the derivative's coefficients)
 * and only slots 0 <= s-k+r < K exist (Cox-de Boor: zero beyond the extended knots).
 * The base branch is torch's (its vectorised silu beats a libm exp here): features() zeroes
 * slot K when zero_base is set and leaves it alone otherwise; backward_x adds base_term (B, I)
 * = gF[:, K] b'(x) when it is not NULL.
 *
 * Vectorisation: every inner loop runs over the I inputs of one row with no data-dependent
 * addressing. Forward writes slot j as a select among the k+1 local values (r = j - s + k),
 * so each slot row is one stream of vector stores (no memset + scatter); backward gathers the
 * k+1 entries of gF with clamped indices and weights that are zero for missing slots. The
 * order k is a compile-time constant (switch over k = 1..5) so the select and Horner loops
 * unroll. `-fopt-info-vec` reports these loops as vectorised (tests/test_kan_native.py).
 *
 * Threads: rows are split over `nthreads` OpenMP threads (the libgomp that torch already
 * loaded, same soname) when the work is large enough; each thread owns its scratch.
 * Returns 0, or -1 if scratch memory could not be allocated.
 */
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

/* v[r*I + i] = sum_p C[p*(k+1) + r] f[i]^p (Horner, double), |v| < tmin -> 0 (no denormals). */
static inline __attribute__((always_inline)) void
horner_d(const double *restrict C, long P, long k, const double *restrict f, long I, double tmin,
         double *restrict v) {
    for (long r = 0; r <= k; r++) {
        double c[MAXK + 1];
        for (long p = 0; p < P; p++) c[p] = C[p * (k + 1) + r];
        double *restrict vr = v + r * I;
        for (long i = 0; i < I; i++) {
            double fi = f[i], a = c[P - 1];
            for (long p = P - 2; p >= 0; p--) a = a * fi + c[p];
            vr[i] = fabs(a) < tmin ? 0.0 : a;
        }
    }
}

#define SPANS(T, IT)                                                                           \
    for (long i = 0; i < I; i++) xd[i] = (double)xb[i];                                        \
    spans_i(xd, I, t0, inv_h, hi, s, f);

#define HORNER(T, P, KK, C, out, tmin) horner_d(C, P, KK, f, I, tmin, out);

/* One row of F: slot j, input i holds v[r][i] with r = j - s[i] + k when 0 <= r <= k. */
#define ROW_FEATURES(T, IT, KK)                                                                \
    do {                                                                                       \
        SPANS(T, IT)                                                                           \
        HORNER(T, (KK) + 1, KK, M, v, tmin)                                                    \
        for (long i = 0; i < ((KK) + 1) * I; i++) vt[i] = (T)v[i];                             \
        for (long j = 0; j < K; j++) {                                                         \
            T *Fj = Fb + j * I;                                                                \
            for (long i = 0; i < I; i++) {                                                     \
                IT r = (IT)j - s[i] + (IT)(KK);                                                \
                        T a = 0; /* branch-free select: a product with 0/1 (v is finite) */            \
                for (long q = 0; q <= (KK); q++) a += (T)(r == (IT)q) * vt[q * I + i];         \
                Fj[i] = a;                                                                     \
            }                                                                                  \
        }                                                                                      \
    } while (0)

#define FEATURES(NAME, T, IT, TMIN)                                                            \
int NAME(const T *x, long B, long I, const double *t0, const double *inv_h, long k, long K,    \
         const double *M, int zero_base, T *F, int nthreads) {                                 \
    const double hi = (double)(K + k + 1), tmin = (TMIN);                                      \
    int failed = 0;                                                                            \
    int par = nthreads > 1 && B > 1 && B * I * (K + 1) >= PAR_MIN;                             \
    _Pragma("omp parallel num_threads(nthreads) if(par) reduction(|:failed)")                 \
    {                                                                                          \
        double *xd = malloc(sizeof(double) * (size_t)I * (size_t)(k + 3));                     \
        IT *s = malloc(sizeof(IT) * (size_t)I);                                                \
        T *vt = malloc(sizeof(T) * (size_t)I * (size_t)(k + 1));                               \
        double *f = xd ? xd + I : NULL, *v = xd ? xd + 2 * I : NULL;                           \
        if (!xd || !s || !vt) failed = 1;                                                      \
        _Pragma("omp for schedule(static)")                                                    \
        for (long b = 0; b < B; b++) {                                                         \
            if (!xd || !s || !vt) continue;                                                      \
            const T *xb = x + b * I;                                                           \
            T *Fb = F + b * (K + 1) * I;                                                       \
            switch (k) {                                                                       \
                case 1: ROW_FEATURES(T, IT, 1); break;                                         \
                case 2: ROW_FEATURES(T, IT, 2); break;                                         \
                case 3: ROW_FEATURES(T, IT, 3); break;                                         \
                case 4: ROW_FEATURES(T, IT, 4); break;                                         \
                case 5: ROW_FEATURES(T, IT, 5); break;                                         \
                default: ROW_FEATURES(T, IT, k); break;                                        \
            }                                                                                  \
            if (zero_base) memset(Fb + K * I, 0, (size_t)I * sizeof(T));                       \
        }                                                                                      \
        free(xd); free(s); free(vt);                                                             \
    }                                                                                          \
    return failed ? -1 : 0;                                                                    \
}

FEATURES(kan_features_f32, float, int, (double)FLT_MIN)
FEATURES(kan_features_f64, double, int, DBL_MIN)

/* gx[b, i] = (sum_r gF[b, s-k+r, i] dB_r(f)) / h + base_term[b, i]: missing slots get weight 0
 * and a clamped (valid) index, so the gather needs no branch. */
#define ROW_BACKWARD(T, IT, KK)                                                                \
    do {                                                                                       \
        SPANS(T, IT)                                                                           \
        HORNER(double, KK, KK, dM, d, 0.0)                                                     \
        for (long i = 0; i < I; i++) {                                                         \
            IT first = s[i] - (IT)(KK);                                                        \
            double a = 0.0;                                                                    \
            for (long r = 0; r <= (KK); r++) {                                                 \
                IT j = first + (IT)r;                                                          \
                int ok = j >= 0 && j < (IT)K;                                                  \
                IT jc = ok ? j : 0;                                                            \
                double w = ok ? d[r * I + i] : 0.0;                                            \
                a += (double)gb[jc * I + i] * w;                                               \
            }                                                                                  \
            a *= inv_h[i];                                                                     \
            if (bt) a += (double)bt[i];                                                        \
            gxb[i] = (T)a;                                                                     \
        }                                                                                      \
    } while (0)

#define BACKWARD(NAME, T, IT)                                                                  \
int NAME(const T *gF, const T *x, long B, long I, const double *t0, const double *inv_h,       \
         long k, long K, const double *dM, const T *base_term, T *gx, int nthreads) {          \
    const double hi = (double)(K + k + 1);                                                     \
    int failed = 0;                                                                            \
    int par = nthreads > 1 && B > 1 && B * I * (k + 1) >= PAR_MIN / 4;                         \
    _Pragma("omp parallel num_threads(nthreads) if(par) reduction(|:failed)")                 \
    {                                                                                          \
        double *xd = malloc(sizeof(double) * (size_t)I * (size_t)(k + 3));                     \
        IT *s = malloc(sizeof(IT) * (size_t)I);                                                \
        double *f = xd ? xd + I : NULL, *d = xd ? xd + 2 * I : NULL;                           \
        if (!xd || !s) failed = 1;                                                             \
        _Pragma("omp for schedule(static)")                                                    \
        for (long b = 0; b < B; b++) {                                                         \
            if (!xd || !s) continue;                                                         \
            const T *xb = x + b * I;                                                           \
            const T *gb = gF + b * (K + 1) * I;                                                \
            const T *bt = base_term ? base_term + b * I : NULL;                                \
            T *gxb = gx + b * I;                                                               \
            switch (k) {                                                                       \
                case 1: ROW_BACKWARD(T, IT, 1); break;                                         \
                case 2: ROW_BACKWARD(T, IT, 2); break;                                         \
                case 3: ROW_BACKWARD(T, IT, 3); break;                                         \
                case 4: ROW_BACKWARD(T, IT, 4); break;                                         \
                case 5: ROW_BACKWARD(T, IT, 5); break;                                         \
                default: ROW_BACKWARD(T, IT, k); break;                                        \
            }                                                                                  \
        }                                                                                      \
        free(xd); free(s);                                                                     \
    }                                                                                          \
    return failed ? -1 : 0;                                                                    \
}

BACKWARD(kan_backward_x_f32, float, int)
BACKWARD(kan_backward_x_f64, double, int)

int kan_native_version(void) { return 3; }

/* 1 if built with OpenMP (threads over rows), else 0. */
int kan_native_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
