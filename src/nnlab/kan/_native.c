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
 * base_kind: 0 = none (slot K = 0), 1 = silu (computed here), 2 = other (slot K left alone).
 */
#include <math.h>
#include <string.h>
#include <float.h>

#define MAXK 16

static inline long span(double x, double t0, double inv_h, long n_knots, double *f) {
    double u = (x - t0) * inv_h;
    /* keeps huge inputs from overflowing the integer cast; NaN ends up at -1 (all zero) */
    u = fmax(u, -1.0);
    u = fmin(u, (double)n_knots);
    double s = floor(u);
    *f = u - s;
    return (long)s;
}

static inline double silu(double x) { return x / (1.0 + exp(-x)); }

static inline double dsilu(double x) {
    double s = 1.0 / (1.0 + exp(-x));
    return s * (1.0 + x * (1.0 - s));
}

#define FEATURES(NAME, T, TMIN)                                                               \
void NAME(const T *x, long B, long I, const double *t0, const double *inv_h, long k, long K,   \
          const double *M, int base_kind, T *F) {                                              \
    long n_knots = K + k + 1;                                                                  \
    double pw[MAXK + 1];                                                                       \
    for (long b = 0; b < B; b++) {                                                             \
        const T *xb = x + b * I;                                                               \
        T *Fb = F + b * (K + 1) * I;                                                           \
        memset(Fb, 0, (size_t)(K * I) * sizeof(T));                                            \
        for (long i = 0; i < I; i++) {                                                         \
            double xv = (double)xb[i], f;                                                      \
            long s = span(xv, t0[i], inv_h[i], n_knots, &f);                                   \
            long first = s - k;                                                                \
            if (first + k < 0 || first >= K) continue;                                         \
            pw[0] = 1.0;                                                                       \
            for (long p = 1; p <= k; p++) pw[p] = pw[p - 1] * f;                               \
            for (long r = 0; r <= k; r++) {                                                    \
                long j = first + r;                                                            \
                if (j < 0 || j >= K) continue;                                                 \
                double v = 0.0;                                                                \
                for (long p = k; p >= 0; p--) v += M[p * (k + 1) + r] * pw[p];                 \
                if (fabs(v) < TMIN) v = 0.0; /* no denormals in F */                           \
                Fb[j * I + i] = (T)v;                                                          \
            }                                                                                  \
        }                                                                                      \
        T *Fk = Fb + K * I;                                                                    \
        if (base_kind == 0) {                                                                  \
            memset(Fk, 0, (size_t)I * sizeof(T));                                              \
        } else if (base_kind == 1) {                                                           \
            for (long i = 0; i < I; i++) Fk[i] = (T)silu((double)xb[i]);                       \
        }                                                                                      \
    }                                                                                          \
}

FEATURES(kan_features_f32, float, (double)FLT_MIN)
FEATURES(kan_features_f64, double, DBL_MIN)

/* gx[b, i] = sum_r gF[b, s-k+r, i] B'_{s-k+r}(x) + gF[b, K, i] b'(x).
 * db: (B, I) base derivative for base_kind 2 (NULL otherwise). */
#define BACKWARD(NAME, T)                                                                      \
void NAME(const T *gF, const T *x, long B, long I, const double *t0, const double *inv_h,      \
          long k, long K, const double *dM, int base_kind, const T *db, T *gx) {               \
    long n_knots = K + k + 1;                                                                  \
    double pw[MAXK + 1];                                                                       \
    for (long b = 0; b < B; b++) {                                                             \
        const T *xb = x + b * I;                                                               \
        const T *gb = gF + b * (K + 1) * I;                                                    \
        T *gxb = gx + b * I;                                                                   \
        for (long i = 0; i < I; i++) {                                                         \
            double xv = (double)xb[i], f, acc = 0.0;                                           \
            long s = span(xv, t0[i], inv_h[i], n_knots, &f);                                   \
            long first = s - k;                                                                \
            if (first + k >= 0 && first < K) {                                                 \
                pw[0] = 1.0;                                                                   \
                for (long p = 1; p < k; p++) pw[p] = pw[p - 1] * f;                            \
                for (long r = 0; r <= k; r++) {                                                \
                    long j = first + r;                                                        \
                    if (j < 0 || j >= K) continue;                                             \
                    double d = 0.0;                                                            \
                    for (long p = k - 1; p >= 0; p--) d += dM[p * (k + 1) + r] * pw[p];        \
                    acc += (double)gb[j * I + i] * d;                                          \
                }                                                                              \
                acc *= inv_h[i];                                                               \
            }                                                                                  \
            if (base_kind == 1) acc += (double)gb[K * I + i] * dsilu(xv);                      \
            else if (base_kind == 2) acc += (double)gb[K * I + i] * (double)db[b * I + i];     \
            gxb[i] = (T)acc;                                                                   \
        }                                                                                      \
    }                                                                                          \
}

BACKWARD(kan_backward_x_f32, float)
BACKWARD(kan_backward_x_f64, double)

int kan_native_version(void) { return 1; }
