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
 * The base branch: features() writes slot K by `base_mode`: 0 leaves it alone (the caller
 * writes another base there), 1 zeroes it (no base), 2 writes silu(x) (float: the vectorised
 * exp_f32 of _native.h, |error| <= 2 ulp; double: libm). backward_x adds base_term (B, I)
 * = gF[:, K] b'(x) when it is not NULL, and gF[:, K] silu'(x) itself when `silu` is set.
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
#include "_native.h"

/* v[r*I + i] = sum_p C[p*(k+1) + r] f[i]^p (Horner in T), |v| < tmin -> 0 (no denormals).
 * float32 layers evaluate it in float (16 lanes, no conversion pass of the k+1 values):
 * |error| <= 1e-7 on the basis (values in [0, 1], f rounded from double once), an order below
 * the 1e-6 the kernels promise; float64 layers in double. */
#define HORNER_FN(T)                                                                           \
static inline __attribute__((always_inline)) void                                             \
horner_##T(const T *restrict C, long P, long k, const T *restrict f, long I, T tmin,           \
           T *restrict v) {                                                                    \
    for (long r = 0; r <= k; r++) {                                                            \
        T c[MAXK + 1];                                                                         \
        for (long p = 0; p < P; p++) c[p] = C[p * (k + 1) + r];                                \
        T *restrict vr = v + r * I;                                                            \
        for (long i = 0; i < I; i++) {                                                         \
            T fi = f[i], a = c[P - 1];                                                         \
            for (long p = P - 2; p >= 0; p--) a = a * fi + c[p];                               \
            vr[i] = (a < tmin && a > -tmin) ? (T)0 : a;                                        \
        }                                                                                      \
    }                                                                                          \
}
HORNER_FN(float)
HORNER_FN(double)
#define HORNER_(T) horner_##T
#define HORNER(T) HORNER_(T)

/* f of the block (double, from the spans) in T, into the x-in-double scratch (free after the
 * spans; n doubles hold n values of T) */
#define F_IN_T(T) ({ T *ft_ = (T *)w.xd; for (long e = 0; e < n; e++) ft_[e] = (T)w.f[e]; ft_; })

/* elements (rows x inputs) per block: spans and Horner run over a whole block of rows as one
 * flat vector loop (short rows, e.g. 2 inputs, would otherwise pay loop overheads per row) */
#define BLOCK 512L

/* Per-thread scratch for one block of R rows (n = R*I elements): the per-input grid constants
 * tiled R times, x in double, s, f, and the k+1 local values (double and T). */
typedef struct {
    double *t0, *ih, *xd, *f, *v;
    int *s;
    void *vt;
} Scratch;

static int scratch_alloc(Scratch *w, long R, long I, long k, size_t tsize,
                         const double *t0, const double *inv_h) {
    long n = R * I;
    w->t0 = malloc(sizeof(double) * (size_t)n * (size_t)(k + 5));
    w->s = malloc(sizeof(int) * (size_t)n);
    w->vt = malloc(tsize * (size_t)n * (size_t)(k + 1));
    if (!w->t0 || !w->s || !w->vt) return -1;
    w->ih = w->t0 + n; w->xd = w->t0 + 2 * n; w->f = w->t0 + 3 * n; w->v = w->t0 + 4 * n;
    for (long r = 0; r < R; r++)
        for (long i = 0; i < I; i++) { w->t0[r * I + i] = t0[i]; w->ih[r * I + i] = inv_h[i]; }
    return 0;
}

static void scratch_free(Scratch *w) { free(w->t0); free(w->s); free(w->vt); }

#define BLOCK_SPANS(T)                                                                         \
    for (long e = 0; e < n; e++) w.xd[e] = (double)xb[e];                                      \
    spans_i(w.xd, n, w.t0, w.ih, hi, w.s, w.f);

/* The masks of the slot loops: e[q] = (s == j + k - q) for slot j, all ones where slot j is
 * local basis q of the input. Slot j+1's masks are slot j's shifted by one, so each slot costs
 * one new comparison (e[0]) instead of k+1 (and no broadcast per q). */
#define SLOT_MASKS_INIT(VI, KK, si, e)                                                         \
    for (long q_ = 0; q_ <= (KK); q_++) (e)[q_] = (si) == (VI){0} + (int)((KK) - q_)
#define SLOT_MASKS_NEXT(VI, KK, si, e, j)                                                      \
    do {                                                                                       \
        for (long q_ = (KK); q_ > 0; q_--) (e)[q_] = (e)[q_ - 1];                              \
        (e)[0] = (si) == (VI){0} + (int)((j) + 1 + (KK));                                      \
    } while (0)

/* F rows b0..b0+R-1: slot j, input i holds v[r][e] with r = j - s[e] + k when 0 <= r <= k.
 * Wide rows: one vector loop over the inputs per slot. Short rows: slots inner, per element. */
#define BLOCK_FEATURES(T, KK, VI, VL, SLOAD, EXPF)                                                                  \
    do {                                                                                       \
        BLOCK_SPANS(T)                                                                         \
        T *vt = (T *)w.vt;                                                                     \
        HORNER(T)(MT, (KK) + 1, KK, F_IN_T(T), n, (T)tmin, vt);                                \
        for (long r = 0; r < R; r++) {                                                         \
            T *Fb = F + (b0 + r) * (K + 1) * I;                                                \
            const int *sr = w.s + r * I;                                                       \
            const T *vr = vt + r * I;                                                          \
            if (I >= 16) {                                                                     \
                long i0 = 0; /* VL inputs at a time: the k+1 values in registers, each slot's */ \
                for (; i0 + (VL) <= I; i0 += (VL)) { /* VL entries selected bitwise (exact) */ \
                    const VI si = SLOAD(sr + i0);                                              \
                    VI vq[(KK) + 1], e[(KK) + 1];                                              \
                    for (long q = 0; q <= (KK); q++) vq[q] = LOADVI(VI, vr + q * n + i0);       \
                    SLOT_MASKS_INIT(VI, KK, si, e);                                            \
                    for (long j = 0; j < K; j++) {                                             \
                        VI a = (VI){0};                                                        \
                        for (long q = 0; q <= (KK); q++) a |= vq[q] & e[q];                    \
                        memcpy(Fb + j * I + i0, &a, sizeof(VI));                               \
                        SLOT_MASKS_NEXT(VI, KK, si, e, j);                                     \
                    }                                                                          \
                }                                                                              \
                for (; i0 < I; i0++) {                                                         \
                    int first = sr[i0] - (KK);                                                 \
                    for (long j = 0; j < K; j++) {                                             \
                        int q = (int)j - first;                                                \
                        Fb[j * I + i0] = (q >= 0 && q <= (KK)) ? vr[q * n + i0] : (T)0;        \
                    }                                                                          \
                }                                                                              \
            } else {                                                                           \
                for (long i = 0; i < I; i++) {                                                 \
                    int first = sr[i] - (KK);                                                  \
                    for (long j = 0; j < K; j++) {                                             \
                        int q = (int)j - first;                                                \
                        Fb[j * I + i] = (q >= 0 && q <= (KK)) ? vr[q * n + i] : (T)0;          \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
            if (base_mode == 1) memset(Fb + K * I, 0, (size_t)I * sizeof(T));                  \
            else if (base_mode == 2) {                                                         \
                const T *xr = xb + r * I;                                                      \
                T *Fk = Fb + K * I;                                                            \
                if (sizeof(T) == sizeof(float)) silu_row_f32((const float *)xr, (float *)Fk, I); \
                else for (long i = 0; i < I; i++) Fk[i] = SILU_F(T, EXPF, xr[i]);              \
            }                                                                                  \
        }                                                                                      \
    } while (0)

#define ROWS_PER_BLOCK(I) ((I) >= BLOCK ? 1 : BLOCK / (I))

#define FEATURES(NAME, T, TMIN, VI, VL, SLOAD, EXPF)                                                                \
int NAME(const T *x, long B, long I, const double *t0, const double *inv_h, long k, long K,    \
         const double *M, int base_mode, T *F, int nthreads) {                                 \
    const double hi = (double)(K + k + 1), tmin = (TMIN);                                      \
    T MT[(MAXK + 1) * (MAXK + 1)]; /* M in T */                                                \
    for (long e = 0; e < (k + 1) * (k + 1); e++) MT[e] = (T)M[e];                              \
    const long RB = ROWS_PER_BLOCK(I), nblk = (B + RB - 1) / RB;                               \
    int failed = 0;                                                                            \
    int par = nthreads > 1 && nblk > 1 && B * I * (K + 1) >= PAR_MIN;                          \
    _Pragma("omp parallel num_threads(nthreads) if(par) reduction(|:failed)")                 \
    {                                                                                          \
        Scratch w;                                                                             \
        int bad = scratch_alloc(&w, RB, I, k, sizeof(T), t0, inv_h);                           \
        if (bad) failed = 1;                                                                   \
        _Pragma("omp for schedule(static)")                                                    \
        for (long blk = 0; blk < nblk; blk++) {                                                \
            if (bad) continue;                                                                 \
            const long b0 = blk * RB, R = (b0 + RB <= B ? RB : B - b0), n = R * I;             \
            const T *xb = x + b0 * I;                                                          \
            switch (k) {                                                                       \
                case 1: BLOCK_FEATURES(T, 1, VI, VL, SLOAD, EXPF); break;                                           \
                case 2: BLOCK_FEATURES(T, 2, VI, VL, SLOAD, EXPF); break;                                           \
                case 3: BLOCK_FEATURES(T, 3, VI, VL, SLOAD, EXPF); break;                                           \
                case 4: BLOCK_FEATURES(T, 4, VI, VL, SLOAD, EXPF); break;                                           \
                case 5: BLOCK_FEATURES(T, 5, VI, VL, SLOAD, EXPF); break;                                           \
                default: BLOCK_FEATURES(T, k, VI, VL, SLOAD, EXPF); break;                                          \
            }                                                                                  \
        }                                                                                      \
        scratch_free(&w);                                                                      \
    }                                                                                          \
    return failed ? -1 : 0;                                                                    \
}

/* the select of wide rows: VL lanes of T as integers VI (64 bytes), spans loaded as VI */
typedef int nk_i32x16 __attribute__((vector_size(64)));
typedef int nk_i32x8 __attribute__((vector_size(32)));
typedef long long nk_i64x8 __attribute__((vector_size(64)));
/* one 64-byte load into a register (a memcpy into an array element may be split into two
 * 32-byte stores that a later 64-byte load cannot forward from) */
#define LOADVI(VI, p) ({ VI v_; memcpy(&v_, (p), sizeof v_); v_; })
#define NK_LOAD_S16(p) ({ nk_i32x16 v_; memcpy(&v_, (p), sizeof v_); v_; })
#define NK_LOAD_S8(p) ({ nk_i32x8 v_; memcpy(&v_, (p), sizeof v_); __builtin_convertvector(v_, nk_i64x8); })
FEATURES(kan_features_f32, float, (double)FLT_MIN, nk_i32x16, 16, NK_LOAD_S16, exp_f32)
FEATURES(kan_features_f64, double, DBL_MIN, nk_i64x8, 8, NK_LOAD_S8, exp_f64)

/* gx[b, i] = (sum_r gF[b, s-k+r, i] dB_r(f)) / h + base_term[b, i].
 * Wide rows (I >= 16): first the k+1 local entries g_r = gF[b, s-k+r, i] are picked slot by
 * slot (each slot row of gF read as one contiguous vector stream; g_r = 0 for missing slots),
 * by selects, which are exact, with no hardware gather (a 16-lane gather is several times
 * slower than the contiguous loads it replaces); then the same sum in double as below, in the
 * same order, so the results are bit-identical. Short rows: per element, the k+1 entries of
 * gF gathered with clamped indices and weights that are zero for missing slots (no branch). */
#define BLOCK_BACKWARD(T, KK, VI, VL, SLOAD, EXPF)                                                                  \
    do {                                                                                       \
        BLOCK_SPANS(T)                                                                         \
        T *dv = (T *)w.v; /* dB_q at dv[q*n + e], in T */                                      \
        HORNER(T)(dMT, KK, KK, F_IN_T(T), n, (T)0, dv);                                        \
        for (long r = 0; r < R; r++) {                                                         \
            const long b = b0 + r;                                                             \
            const T *gb = gF + b * (K + 1) * I;                                                \
            const T *bt = base_term ? base_term + b * I : NULL;                                \
            if (silu) { /* gF[b, K] silu'(x) (+ base_term) in its own vector loop, into the */ \
                T *ds = (T *)w.xd + r * I; /* x-in-double scratch, free after the spans */     \
                const T *xr = xb + r * I, *gk = gb + K * I;                                    \
                if (sizeof(T) == sizeof(float))                                                \
                    dsilu_row_f32((const float *)xr, (const float *)gk, (const float *)bt,     \
                                  (float *)ds, I);                                             \
                else if (bt) /* two loops: a masked load of a NULL bt costs a microcode assist */ \
                    for (long i = 0; i < I; i++) ds[i] = bt[i] + gk[i] * DSILU_F(T, EXPF, xr[i]); \
                else                                                                           \
                    for (long i = 0; i < I; i++) ds[i] = gk[i] * DSILU_F(T, EXPF, xr[i]);      \
                bt = ds;                                                                       \
            }                                                                                  \
            const int *sr = w.s + r * I;                                                       \
            const T *dr = dv + r * I;                                                          \
            T *gxb = gx + b * I;                                                               \
            if (I >= 16) {                                                                     \
                T *gs = (T *)w.vt + r * I; /* g_q at gs[q*n + i] (vt is unused in backward) */ \
                long i0 = 0;                                                                   \
                for (; i0 + (VL) <= I; i0 += (VL)) {                                           \
                    const VI si = SLOAD(sr + i0);                                              \
                    VI gq[(KK) + 1], e[(KK) + 1];                                              \
                    for (long q = 0; q <= (KK); q++) gq[q] = (VI){0};                          \
                    SLOT_MASKS_INIT(VI, KK, si, e);                                            \
                    for (long j = 0; j < K; j++) { /* slot j is local q where s = j+k-q */     \
                        const VI v = LOADVI(VI, gb + j * I + i0);                              \
                        for (long q = 0; q <= (KK); q++) gq[q] |= v & e[q];                    \
                        SLOT_MASKS_NEXT(VI, KK, si, e, j);                                     \
                    }                                                                          \
                    for (long q = 0; q <= (KK); q++) memcpy(gs + q * n + i0, &gq[q], sizeof(VI)); \
                }                                                                              \
                for (; i0 < I; i0++)                                                           \
                    for (long q = 0; q <= (KK); q++) {                                         \
                        int j = sr[i0] - (KK) + (int)q;                                        \
                        gs[q * n + i0] = (j >= 0 && j < (int)K) ? gb[j * I + i0] : (T)0;       \
                    }                                                                          \
                for (long i = 0; i < I; i++) {                                                 \
                    T s_ = 0;                                                                  \
                    for (long q = 0; q <= (KK); q++) s_ += gs[q * n + i] * dr[q * n + i];      \
                    double a = (double)s_ * inv_h[i];                                          \
                    if (bt) a += (double)bt[i];                                                \
                    gxb[i] = (T)a;                                                             \
                }                                                                              \
                continue;                                                                      \
            }                                                                                  \
            for (long i = 0; i < I; i++) {                                                     \
                int first = sr[i] - (KK);                                                      \
                T s_ = 0;                                                                      \
                for (long q = 0; q <= (KK); q++) {                                             \
                    int j = first + (int)q;                                                    \
                    int ok = j >= 0 && j < (int)K;                                             \
                    int jc = ok ? j : 0;                                                       \
                    T wq = ok ? dr[q * n + i] : (T)0;                                          \
                    s_ += gb[jc * I + i] * wq;                                                 \
                }                                                                              \
                double a = (double)s_ * inv_h[i];                                              \
                if (bt) a += (double)bt[i];                                                    \
                gxb[i] = (T)a;                                                                 \
            }                                                                                  \
        }                                                                                      \
    } while (0)

#define BACKWARD(NAME, T, VI, VL, SLOAD, EXPF)                                                                    \
int NAME(const T *gF, const T *x, long B, long I, const double *t0, const double *inv_h,       \
         long k, long K, const double *dM, const T *base_term, int silu, T *gx,            \
         int nthreads) {          \
    const double hi = (double)(K + k + 1);                                                     \
    const long RB = ROWS_PER_BLOCK(I), nblk = (B + RB - 1) / RB;                               \
    T dMT[MAXK * (MAXK + 1)]; /* dM in T */                                                    \
    for (long e = 0; e < k * (k + 1); e++) dMT[e] = (T)dM[e];                                  \
    int failed = 0;                                                                            \
    int par = nthreads > 1 && nblk > 1 && B * I * (k + 1) >= PAR_MIN / 4;                      \
    _Pragma("omp parallel num_threads(nthreads) if(par) reduction(|:failed)")                 \
    {                                                                                          \
        Scratch w;                                                                             \
        int bad = scratch_alloc(&w, RB, I, k, sizeof(T), t0, inv_h);                           \
        if (bad) failed = 1;                                                                   \
        _Pragma("omp for schedule(static)")                                                    \
        for (long blk = 0; blk < nblk; blk++) {                                                \
            if (bad) continue;                                                                 \
            const long b0 = blk * RB, R = (b0 + RB <= B ? RB : B - b0), n = R * I;             \
            const T *xb = x + b0 * I;                                                          \
            switch (k) {                                                                       \
                case 1: BLOCK_BACKWARD(T, 1, VI, VL, SLOAD, EXPF); break;                                           \
                case 2: BLOCK_BACKWARD(T, 2, VI, VL, SLOAD, EXPF); break;                                           \
                case 3: BLOCK_BACKWARD(T, 3, VI, VL, SLOAD, EXPF); break;                                           \
                case 4: BLOCK_BACKWARD(T, 4, VI, VL, SLOAD, EXPF); break;                                           \
                case 5: BLOCK_BACKWARD(T, 5, VI, VL, SLOAD, EXPF); break;                                           \
                default: BLOCK_BACKWARD(T, k, VI, VL, SLOAD, EXPF); break;                                          \
            }                                                                                  \
        }                                                                                      \
        scratch_free(&w);                                                                      \
    }                                                                                          \
    return failed ? -1 : 0;                                                                    \
}

BACKWARD(kan_backward_x_f32, float, nk_i32x16, 16, NK_LOAD_S16, exp_f32)
BACKWARD(kan_backward_x_f64, double, nk_i64x8, 8, NK_LOAD_S8, exp_f64)

int kan_native_version(void) { return 7; }

/* The layer's input check in one pass over x (B, I), no host round trip through torch:
 * bit 0 of the result: some value is NaN or +-inf (x - x is then NaN, not 0);
 * bit 1 (only if `range`): some finite x[b, i] lies outside [lo[i], hi[i]] (the grid range
 * with its slack, as double: comparing the promoted value is exact, like torch's comparison).
 * Columns in chunks of CHECK_COLS: per column the least and greatest finite value and a
 * non-finite flag, updated by selects (one vector loop over the columns of each row, no
 * reduction across lanes), compared with lo/hi once at the end. */
#define CHECK_COLS 256
#define CHECK_INPUT(NAME, T)                                                                   \
int NAME(const T *x, long B, long I, const double *lo, const double *hi, int range) {          \
    int bad = 0, out = 0;                                                                      \
    for (long c0 = 0; c0 < I; c0 += CHECK_COLS) {                                              \
        const long nc = I - c0 < CHECK_COLS ? I - c0 : CHECK_COLS;                             \
        T mn[CHECK_COLS], mx[CHECK_COLS];                                                      \
        int nf[CHECK_COLS];                                                                    \
        for (long i = 0; i < nc; i++) { mn[i] = INFINITY; mx[i] = -INFINITY; nf[i] = 0; }      \
        for (long b = 0; b < B; b++) {                                                         \
            const T *xr = x + b * I + c0;                                                      \
            for (long i = 0; i < nc; i++) {                                                    \
                T v = xr[i];                                                                   \
                int fin = (v - v) == (T)0;                                                     \
                nf[i] |= !fin;                                                                 \
                mn[i] = (fin && v < mn[i]) ? v : mn[i];                                        \
                mx[i] = (fin && v > mx[i]) ? v : mx[i];                                        \
            }                                                                                  \
        }                                                                                      \
        for (long i = 0; i < nc; i++) {                                                        \
            bad |= nf[i];                                                                      \
            out |= ((double)mn[i] < lo[c0 + i]) | ((double)mx[i] > hi[c0 + i]);                \
        }                                                                                      \
    }                                                                                          \
    return bad | ((range ? out : 0) << 1);                                                     \
}
CHECK_INPUT(kan_check_input_f32, float)
CHECK_INPUT(kan_check_input_f64, double)

/* 1 if built with OpenMP (threads over rows), else 0. */
int kan_native_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* Packed layer weight W (O, K+1, I) from coef (O, I, K), scale_base, scale_spline, mask (O, I):
 * W[o, j, i] = mask·scale_spline·coef[o, i, j] for j < K, W[o, K, i] = mask·scale_base. */
#define PACK(NAME, T)                                                                          \
void NAME(const T *coef, const T *sb, const T *ss, const T *mask, long O, long I, long K,      \
          T *W) {                                                                              \
    for (long o = 0; o < O; o++) {                                                             \
        const T *co = coef + o * I * K, *mo = mask + o * I, *so = ss + o * I, *bo = sb + o * I; \
        T *Wo = W + o * (K + 1) * I;                                                           \
        for (long j = 0; j < K; j++)                                                           \
            for (long i = 0; i < I; i++) Wo[j * I + i] = mo[i] * so[i] * co[i * K + j];        \
        for (long i = 0; i < I; i++) Wo[K * I + i] = mo[i] * bo[i];                            \
    }                                                                                          \
}

PACK(kan_pack_weights_f32, float)
PACK(kan_pack_weights_f64, double)

