/* Native KAN feature kernels (uniform grids), plain C, no torch headers.
 *
 * Built at first use by nnlab.kan.native (cc -O3 -fPIC -shared) and called through ctypes.
 * Single-threaded on purpose: threading is torch's business.
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
 * Each batch row is done in passes over its I inputs (span, then one Horner pass per local
 * basis function, then the scatter), so the arithmetic runs as simple vectorisable loops.
 * Returns 0, or -1 if the scratch memory could not be allocated.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* u -> (s = floor(u), f = u - s), u clamped to [-1, n_knots] (no overflow; NaN -> -1: all zero).
 * The floor is a cast plus a correction: libm's floor is a call without SSE4.1. */
static void spans(const double *xd, long I, const double *t0, const double *inv_h,
                  long n_knots, int *s, double *f) {
    double hi = (double)n_knots;
    for (long i = 0; i < I; i++) {
        double u = (xd[i] - t0[i]) * inv_h[i];
        u = u >= -1.0 ? u : -1.0; /* also maps NaN to -1 */
        u = u <= hi ? u : hi;
        int si = (int)u;
        si -= (double)si > u;
        s[i] = si;
        f[i] = u - (double)si;
    }
}

/* v[r*I + i] = sum_p C[p*(k+1) + r] f[i]^p for p = 0..P-1 (Horner), r = 0..k; values below
 * tmin in magnitude become 0 (no denormals in F: they slow the GEMM down ~100x on x86).
 * Inlined with a constant P (see HORNER) so each column is one unrolled vector loop. */
static inline __attribute__((always_inline)) void
horner_p(const double *C, const long P, long k, const double *f, long I, double tmin, double *v) {
    for (long r = 0; r <= k; r++) {
        double *vr = v + r * I;
        double c[16];
        for (long p = 0; p < P; p++) c[p] = C[p * (k + 1) + r];
        for (long i = 0; i < I; i++) {
            double fi = f[i], a = c[P - 1];
            for (long p = P - 2; p >= 0; p--) a = a * fi + c[p];
            vr[i] = fabs(a) < tmin ? 0.0 : a;
        }
    }
}

static void horner(const double *C, long P, long k, const double *f, long I, double tmin,
                   double *v) {
    switch (P) {
        case 1: horner_p(C, 1, k, f, I, tmin, v); break;
        case 2: horner_p(C, 2, k, f, I, tmin, v); break;
        case 3: horner_p(C, 3, k, f, I, tmin, v); break;
        case 4: horner_p(C, 4, k, f, I, tmin, v); break;
        case 5: horner_p(C, 5, k, f, I, tmin, v); break;
        case 6: horner_p(C, 6, k, f, I, tmin, v); break;
        default: {
            for (long r = 0; r <= k; r++) {
                double *vr = v + r * I;
                for (long i = 0; i < I; i++) {
                    double a = C[(P - 1) * (k + 1) + r];
                    for (long p = P - 2; p >= 0; p--) a = a * f[i] + C[p * (k + 1) + r];
                    vr[i] = fabs(a) < tmin ? 0.0 : a;
                }
            }
        }
    }
}

#define FEATURES(NAME, T, TMIN)                                                               \
int NAME(const T *x, long B, long I, const double *t0, const double *inv_h, long k, long K,    \
         const double *M, int zero_base, T *F) {                                               \
    long n_knots = K + k + 1;                                                                  \
    double *buf = malloc(sizeof(double) * (size_t)I * (size_t)(k + 3));                        \
    int *s = malloc(sizeof(int) * (size_t)I);                                                \
    if (!buf || !s) { free(buf); free(s); return -1; }                                         \
    double *xd = buf, *f = buf + I, *v = buf + 2 * I;                                          \
    for (long b = 0; b < B; b++) {                                                             \
        const T *xb = x + b * I;                                                               \
        T *Fb = F + b * (K + 1) * I;                                                           \
        for (long i = 0; i < I; i++) xd[i] = (double)xb[i];                                    \
        spans(xd, I, t0, inv_h, n_knots, s, f);                                                \
        horner(M, k + 1, k, f, I, TMIN, v);                                                    \
        memset(Fb, 0, (size_t)(K * I) * sizeof(T));                                            \
        for (long i = 0; i < I; i++) {                                                         \
            long first = s[i] - k;                                                             \
            if (first >= 0 && first + k < K) { /* the usual case: all k+1 slots exist */       \
                for (long r = 0; r <= k; r++)                                                  \
                    Fb[(first + r) * I + i] = (T)v[r * I + i];                                 \
            } else {                                                                           \
                for (long r = 0; r <= k; r++) {                                                \
                    long j = first + r;                                                        \
                    if (j >= 0 && j < K) Fb[j * I + i] = (T)v[r * I + i];                      \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        if (zero_base) memset(Fb + K * I, 0, (size_t)I * sizeof(T));                           \
    }                                                                                          \
    free(buf); free(s);                                                                        \
    return 0;                                                                                  \
}

FEATURES(kan_features_f32, float, (double)FLT_MIN)
FEATURES(kan_features_f64, double, DBL_MIN)

/* gx[b, i] = sum_r gF[b, s-k+r, i] B'_{s-k+r}(x) + base_term[b, i] (if not NULL). */
#define BACKWARD(NAME, T)                                                                      \
int NAME(const T *gF, const T *x, long B, long I, const double *t0, const double *inv_h,       \
         long k, long K, const double *dM, const T *base_term, T *gx) {                \
    long n_knots = K + k + 1;                                                                  \
    double *buf = malloc(sizeof(double) * (size_t)I * (size_t)(k + 4));                        \
    int *s = malloc(sizeof(int) * (size_t)I);                                                \
    if (!buf || !s) { free(buf); free(s); return -1; }                                         \
    double *xd = buf, *f = buf + I, *acc = buf + 2 * I, *d = buf + 3 * I;                      \
    for (long b = 0; b < B; b++) {                                                             \
        const T *xb = x + b * I;                                                               \
        const T *gb = gF + b * (K + 1) * I;                                                    \
        T *gxb = gx + b * I;                                                                   \
        for (long i = 0; i < I; i++) xd[i] = (double)xb[i];                                    \
        spans(xd, I, t0, inv_h, n_knots, s, f);                                                \
        horner(dM, k, k, f, I, 0.0, d);                                                             \
        for (long i = 0; i < I; i++) {                                                         \
            long first = s[i] - k;                                                             \
            double a = 0.0;                                                                    \
            if (first >= 0 && first + k < K) {                                                 \
                for (long r = 0; r <= k; r++)                                                  \
                    a += (double)gb[(first + r) * I + i] * d[r * I + i];                       \
            } else {                                                                           \
                for (long r = 0; r <= k; r++) {                                                \
                    long j = first + r;                                                        \
                    if (j >= 0 && j < K) a += (double)gb[j * I + i] * d[r * I + i];            \
                }                                                                              \
            }                                                                                  \
            acc[i] = a * inv_h[i];                                                             \
        }                                                                                      \
        if (base_term) {                                                                       \
            const T *bt = base_term + b * I;                                                   \
            for (long i = 0; i < I; i++) acc[i] += (double)bt[i];                              \
        }                                                                                      \
        for (long i = 0; i < I; i++) gxb[i] = (T)acc[i];                                       \
    }                                                                                          \
    free(buf); free(s);                                                                        \
    return 0;                                                                                  \
}

BACKWARD(kan_backward_x_f32, float)
BACKWARD(kan_backward_x_f64, double)

int kan_native_version(void) { return 2; }
