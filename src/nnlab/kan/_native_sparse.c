/* Native KAN kernels, sparse route (see _native.h for the shared pieces and _native.c for the
 * closed form of the uniform B-spline basis). */
#include "_native.h"

/* ------------------------------------------------------------------------------------------ *
 * Sparse route: y = F·Wᵀ without building F. Per (row b, input i) only k+1 basis values and the
 * base value are non-zero, so y[b, :] = sum_i (sum_r B_{s-k+r}(x_bi) Wt[s-k+r, i, :]
 *                                               + b(x_bi) Wt[K, i, :])
 * with the packed weight input-major, Wt (I, K+1, O): Wt[i, j, :] = W[:, j, i]. That is
 * (k+2)·O multiply-adds per (b, i) against the GEMM's (K+1)·O, and nothing of size B·I·K is
 * written or read. Backward likewise:
 *   ∂L/∂x_bi = sum_r B'_{s-k+r}(x_bi) (g_b · Wt[s-k+r, i]) + b'(x_bi) (g_b · Wt[K, i]),
 *   ∂L/∂Wt[s-k+r, i, :] += B_{s-k+r}(x_bi) g_b,   ∂L/∂Wt[K, i, :] += b(x_bi) g_b.
 * Missing slots (beyond the extended knots) get value 0 and a clamped, valid row index, so no
 * loop has a data-dependent branch. Accumulators are explicit 64-byte vectors (GCC/Clang vector
 * extensions: AVX-512 registers where present, split into narrower ones elsewhere).
 * The base branch: 0 none, 1 silu (float: a vectorisable exp, |error| <= 2 ulp; double: libm).
 * ------------------------------------------------------------------------------------------ */
#include <stdint.h>

typedef float vec_f32 __attribute__((vector_size(64)));
typedef double vec_f64 __attribute__((vector_size(64)));

/* exp_f32 / exp_f64: see _native.h */

/* Horizontal sums in registers (permutes of the whole vector; a round trip through memory
 * would split a 64-byte store into narrower loads, which store forwarding cannot serve). The
 * order of the additions is fixed: halves, then quarters, then the last pairs. */
#if defined(__clang__)
#define SHUF16(z, ...) __builtin_shufflevector((z), (z), __VA_ARGS__)
#define SHUF8(z, ...) __builtin_shufflevector((z), (z), __VA_ARGS__)
#else
typedef int vec_i32 __attribute__((vector_size(64)));
typedef long long vec_i64 __attribute__((vector_size(64)));
#define SHUF16(z, ...) __builtin_shuffle((z), (vec_i32){__VA_ARGS__})
#define SHUF8(z, ...) __builtin_shuffle((z), (vec_i64){__VA_ARGS__})
#endif
#define HSUM_f32(zz) ({ vec_f32 z_ = (zz);                                                    \
    z_ += SHUF16(z_, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);                    \
    z_ += SHUF16(z_, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);                    \
    z_ += SHUF16(z_, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);                    \
    z_[0] + z_[1]; })
#define HSUM_f64(zz) ({ vec_f64 z_ = (zz);                                                    \
    z_ += SHUF8(z_, 4, 5, 6, 7, 0, 1, 2, 3);                                                   \
    z_ += SHUF8(z_, 2, 3, 0, 1, 6, 7, 4, 5);                                                   \
    z_[0] + z_[1]; })

/* For each element e and r = 0..k: the slot j = s[e] - k + r of the r-th local basis function,
 * clamped to a valid slot (0) where it does not exist (jc), and its value
 * sum_p C[p, r] f^p (Horner, double; times scale[e] if given; |v| < tmin -> 0), 0 where the slot
 * does not exist. One fused vector loop per r. */
#define SP_LOCAL(T)                                                                            \
static inline __attribute__((always_inline)) void                                             \
sp_local_##T(const int *restrict s, const double *restrict f, const double *restrict C, long P, \
             long n, long ns, long kk, long K, double tmin, const double *restrict scale,      \
             int *restrict jc, T *restrict v) {                                                \
    for (long r = 0; r <= kk; r++) {                                                           \
        double c[MAXK + 1];                                                                    \
        for (long p = 0; p < P; p++) c[p] = C[p * (kk + 1) + r];                               \
        T *restrict vr = v + r * ns;                                                           \
        int *restrict jr = jc + r * ns;                                                        \
        for (long e = 0; e < n; e++) {                                                         \
            double fe = f[e], a = c[P - 1];                                                    \
            for (long p = P - 2; p >= 0; p--) a = a * fe + c[p];                               \
            a = fabs(a) < tmin ? 0.0 : a;                                                      \
            if (scale) a *= scale[e];                                                          \
            int j = s[e] - (int)kk + (int)r;                                                   \
            int ok = (unsigned)j < (unsigned)K; /* arithmetic selects: no branch */            \
            vr[e] = (T)(a * (double)ok);                                                       \
            jr[e] = j & -ok;                                                                   \
        }                                                                                      \
    }                                                                                          \
}
SP_LOCAL(float)
SP_LOCAL(double)

/* Base values bs = silu(x), db = silu'(x) = s (1 + x (1 - s)) with s = sigmoid(x); 0 without. */
#define SP_BASE(T, EXPF)                                                                       \
static inline __attribute__((always_inline)) void                                             \
sp_base_##T(const T *x, long n, int base, T *bs, T *restrict db) {           \
    if (base == 1 && sizeof(T) == sizeof(float)) /* vectorised; db NULL: forward only */      \
        silu_both_row_f32((const float *)x, (float *)bs, (float *)db, n);                      \
    else if (base == 1) {                                                                      \
        for (long e = 0; e < n; e++) {                                                         \
            T xe = x[e], sg = (T)1 / ((T)1 + EXPF(-xe));                                       \
            bs[e] = xe * sg;                                                                   \
            if (db) db[e] = sg * ((T)1 + xe * ((T)1 - sg));                                    \
        }                                                                                      \
    } else {                                                                                   \
        for (long e = 0; e < n; e++) { bs[e] = 0; if (db) db[e] = 0; }                         \
    }                                                                                          \
}
SP_BASE(float, exp_f32)
SP_BASE(double, exp_f64)

/* Per-thread scratch of the sparse route for a block of R rows (n = R·I elements, input-major:
 * element i·R + r is x[b0 + r, i]): the grid constants tiled R times, x in double, spans s, f, Horner values (double); slot
 * indices jc and values v (k+1 each), derivatives dv (k+1), base values bs, db (T). */
typedef struct {
    double *t0, *ih, *xd, *f, *vd;
    int *s, *jc;
    void *v, *dv, *bs, *db;
} SpScratch;

/* stride of the k+1 arrays of jc, v, dv: n plus a pad, so that their k+1 streams do not all
 * fall on the same L1 cache sets (n·4 bytes is often a multiple of 4 KiB) */
#define SP_STRIDE(n) ((n) + 80)

static int sp_alloc(SpScratch *w, long R, long I, long k, size_t tsize, const double *t0,
                    const double *inv_h) {
    long n = SP_STRIDE(R * I);
    w->t0 = malloc(sizeof(double) * (size_t)n * (size_t)(k + 5));
    w->s = malloc(sizeof(int) * (size_t)n * (size_t)(k + 2));
    w->v = malloc(tsize * (size_t)n * (size_t)(2 * k + 4));
    if (!w->t0 || !w->s || !w->v) return -1;
    w->ih = w->t0 + n; w->xd = w->t0 + 2 * n; w->f = w->t0 + 3 * n; w->vd = w->t0 + 4 * n;
    w->jc = w->s + n;
    w->dv = (char *)w->v + tsize * (size_t)n * (size_t)(k + 1);
    w->bs = (char *)w->dv + tsize * (size_t)n * (size_t)(k + 1);
    w->db = (char *)w->bs + tsize * (size_t)n;
    for (long i = 0; i < I; i++)
        for (long r = 0; r < R; r++) { w->t0[i * R + r] = t0[i]; w->ih[i * R + r] = inv_h[i]; }
    return 0;
}

static void sp_free(SpScratch *w) { free(w->t0); free(w->s); free(w->v); }

/* Rows per block: the block's prep arrays stay near 4096 elements and its output rows
 * (R·O values) in L1 while each input's rows of Wt (also in L1) are applied to them. */
static long sp_rows(long I, long O) {
    long r1 = 4096 / I, r2 = 2048 / (O > 0 ? O : 1);
    long r = r1 < r2 ? r1 : r2;
    return r > 0 ? r : 1;
}

/* Block of rows b0..b0+R-1: spans, slot indices, values (want_v), derivatives B'/h (want_dv)
 * of the k+1 local basis functions, base values; flat vector loops over n = R·I elements. */
#define SP_PREP(T, KK, want_v, want_dv)                                                        \
    do {                                                                                       \
        T *xt = (T *)w.bs; /* x transposed (input-major), then overwritten by b(x) */         \
        for (long i = 0; i < I; i++)                                                           \
            for (long r = 0; r < R; r++) xt[i * R + r] = x[(b0 + r) * I + i];                  \
        for (long e = 0; e < n; e++) w.xd[e] = (double)xt[e];                                  \
        spans_i(w.xd, n, w.t0, w.ih, hi, w.s, w.f);                                            \
        if (want_v)                                                                            \
            sp_local_##T(w.s, w.f, M, (KK) + 1, n, ns, KK, K, tmin, NULL, w.jc, (T *)w.v);         \
        if (want_dv)                                                                           \
            sp_local_##T(w.s, w.f, dM, KK, n, ns, KK, K, 0.0, w.ih, w.jc, (T *)w.dv);              \
        sp_base_##T(xt, n, base, (T *)w.bs, (want_dv) ? (T *)w.db : NULL);                     \
    } while (0)

#define LDV(VT, p) ({ VT _v; memcpy(&_v, (p), sizeof(VT)); _v; })
#define STV(VT, p, val) do { VT _v = (val); memcpy((p), &_v, sizeof(VT)); } while (0)

/* Input i's k+2 weighted rows of Wt added to the outputs o0.. of row r of the block (the
 * vector tail and the scalar tail of the loop below, for one input). */
#define SP_FWD_TAIL(T, VT, VL, KK, i_, r_, o_start)                                            \
    do {                                                                                       \
        const T *Wi_ = Wt + (i_) * (K + 1) * O, *Wb_ = Wi_ + K * O;                            \
        const long e_ = (i_) * R + (r_);                                                       \
        T *yr_ = yb + (r_) * O;                                                                \
        long ot_ = (o_start);                                                                  \
        for (; ot_ + (VL) <= O; ot_ += (VL)) {                                                 \
            VT a0 = LDV(VT, yr_ + ot_), c0 = {0};                                              \
            for (long q = 0; q <= (KK); q++) {                                                 \
                VT t_ = LDV(VT, Wi_ + (long)w.jc[q * ns + e_] * O + ot_) * v[q * ns + e_];     \
                if (q & 1) c0 += t_; else a0 += t_;                                            \
            }                                                                                  \
            if (base) c0 += LDV(VT, Wb_ + ot_) * bs[e_];                                       \
            STV(VT, yr_ + ot_, a0 + c0);                                                       \
        }                                                                                      \
        for (; ot_ < O; ot_++) {                                                               \
            T a = yr_[ot_];                                                                    \
            for (long q = 0; q <= (KK); q++)                                                   \
                a += Wi_[(long)w.jc[q * ns + e_] * O + ot_] * v[q * ns + e_];                  \
            if (base) a += Wb_[ot_] * bs[e_];                                                  \
            yr_[ot_] = a;                                                                      \
        }                                                                                      \
    } while (0)

/* y rows of the block, two inputs at a time: inputs i and i+1 (their rows of Wt in L1 across
 * the block's rows) add their 2(k+2) weighted rows of Wt to each row of y, which is loaded and
 * stored once per pair; 4 vectors of outputs at a time, in two independent chains. The sums
 * run in the order: y, then input i's terms, then input i+1's (each chain in q order). */
#define SP_FWD_BLOCK(T, VT, VL, KK)                                                            \
    do {                                                                                       \
        const T *v = (const T *)w.v, *bs = (const T *)w.bs;                                    \
        T *yb = y + b0 * O;                                                                    \
        memset(yb, 0, sizeof(T) * (size_t)(R * O));                                           \
        long i = 0;                                                                            \
        for (; i < I; i += 2) {                                                                \
            const int two = i + 1 < I;                                                         \
            const T *Wi = Wt + i * (K + 1) * O, *Wb = Wi + K * O;                              \
            const T *Wj = two ? Wi + (K + 1) * O : Wi, *Wc = Wj + K * O;                       \
            for (long r = 0; r < R; r++) {                                                     \
                const long e = i * R + r, e2 = two ? e + R : e;                                \
                T *yr = yb + r * O;                                                            \
                long o0 = 0;                                                                   \
                if (two)                                                                       \
                for (; o0 + 4 * (VL) <= O; o0 += 4 * (VL)) {                                  \
                    VT a0 = LDV(VT, yr + o0), a1 = LDV(VT, yr + o0 + (VL));                    \
                    VT a2 = LDV(VT, yr + o0 + 2 * (VL)), a3 = LDV(VT, yr + o0 + 3 * (VL));     \
                    VT c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};                                 \
                    for (long q = 0; q <= (KK); q++) {                                         \
                        const T *Wr = Wi + (long)w.jc[q * ns + e] * O + o0;                     \
                        T s_ = v[q * ns + e];                                                   \
                        if (q & 1) {                                                           \
                            c0 += LDV(VT, Wr) * s_; c1 += LDV(VT, Wr + (VL)) * s_;             \
                            c2 += LDV(VT, Wr + 2 * (VL)) * s_; c3 += LDV(VT, Wr + 3 * (VL)) * s_; \
                        } else {                                                               \
                            a0 += LDV(VT, Wr) * s_; a1 += LDV(VT, Wr + (VL)) * s_;             \
                            a2 += LDV(VT, Wr + 2 * (VL)) * s_; a3 += LDV(VT, Wr + 3 * (VL)) * s_; \
                        }                                                                      \
                    }                                                                          \
                    if (base) {                                                                \
                        T s_ = bs[e];                                                          \
                        c0 += LDV(VT, Wb + o0) * s_; c1 += LDV(VT, Wb + o0 + (VL)) * s_;       \
                        c2 += LDV(VT, Wb + o0 + 2 * (VL)) * s_;                                \
                        c3 += LDV(VT, Wb + o0 + 3 * (VL)) * s_;                                \
                    }                                                                          \
                    for (long q = 0; q <= (KK); q++) {                                         \
                        const T *Wr = Wj + (long)w.jc[q * ns + e2] * O + o0;                    \
                        T s_ = v[q * ns + e2];                                                  \
                        if (q & 1) {                                                           \
                            c0 += LDV(VT, Wr) * s_; c1 += LDV(VT, Wr + (VL)) * s_;             \
                            c2 += LDV(VT, Wr + 2 * (VL)) * s_; c3 += LDV(VT, Wr + 3 * (VL)) * s_; \
                        } else {                                                               \
                            a0 += LDV(VT, Wr) * s_; a1 += LDV(VT, Wr + (VL)) * s_;             \
                            a2 += LDV(VT, Wr + 2 * (VL)) * s_; a3 += LDV(VT, Wr + 3 * (VL)) * s_; \
                        }                                                                      \
                    }                                                                          \
                    if (base) {                                                                \
                        T s_ = bs[e2];                                                         \
                        c0 += LDV(VT, Wc + o0) * s_; c1 += LDV(VT, Wc + o0 + (VL)) * s_;       \
                        c2 += LDV(VT, Wc + o0 + 2 * (VL)) * s_;                                \
                        c3 += LDV(VT, Wc + o0 + 3 * (VL)) * s_;                                \
                    }                                                                          \
                    STV(VT, yr + o0, a0 + c0); STV(VT, yr + o0 + (VL), a1 + c1);               \
                    STV(VT, yr + o0 + 2 * (VL), a2 + c2); STV(VT, yr + o0 + 3 * (VL), a3 + c3); \
                }                                                                              \
                SP_FWD_TAIL(T, VT, VL, KK, i, r, o0);                                          \
                if (two) SP_FWD_TAIL(T, VT, VL, KK, i + 1, r, o0);                             \
            }                                                                                  \
        }                                                                                      \
    } while (0)

#define SP_SWITCH(MACRO, ...)                                                                  \
    switch (k) {                                                                               \
        case 1: MACRO(__VA_ARGS__, 1); break;                                                  \
        case 2: MACRO(__VA_ARGS__, 2); break;                                                  \
        case 3: MACRO(__VA_ARGS__, 3); break;                                                  \
        case 4: MACRO(__VA_ARGS__, 4); break;                                                  \
        case 5: MACRO(__VA_ARGS__, 5); break;                                                  \
        default: MACRO(__VA_ARGS__, k); break;                                                 \
    }

#define SP_FWD_BODY(T, VT, VL, KK) SP_PREP(T, KK, 1, 0); SP_FWD_BLOCK(T, VT, VL, KK)

#define SP_FORWARD(NAME, T, VT, VL, TMIN)                                                      \
int NAME(const T *x, long B, long I, long O, const double *t0, const double *inv_h, long k,    \
         long K, const double *M, const T *Wt, int base, T *y, int nthreads) {                 \
    const double hi = (double)(K + k + 1), tmin = (TMIN);                                      \
    const double *dM = NULL;                                                                   \
    const long RB = sp_rows(I, O), nblk = (B + RB - 1) / RB;                                   \
    int failed = 0;                                                                            \
    int par = nthreads > 1 && nblk > 1 && B * I * (k + 2) * O >= 8 * PAR_MIN;                  \
    (void)dM;                                                                                  \
    _Pragma("omp parallel num_threads(nthreads) if(par) reduction(|:failed)")                 \
    {                                                                                          \
        SpScratch w;                                                                           \
        int bad = sp_alloc(&w, RB, I, k, sizeof(T), t0, inv_h);                                \
        if (bad) failed = 1;                                                                   \
        _Pragma("omp for schedule(static)")                                                    \
        for (long blk = 0; blk < nblk; blk++) {                                                \
            if (bad) continue;                                                                 \
            const long b0 = blk * RB, R = (b0 + RB <= B ? RB : B - b0), n = R * I;             \
            const long ns = SP_STRIDE(RB * I);                                                 \
            SP_SWITCH(SP_FWD_BODY, T, VT, VL)                                                  \
        }                                                                                      \
        sp_free(&w);                                                                           \
    }                                                                                          \
    return failed ? -1 : 0;                                                                    \
}

SP_FORWARD(kan_sparse_forward_f32, float, vec_f32, 16, (double)FLT_MIN)
SP_FORWARD(kan_sparse_forward_f64, double, vec_f64, 8, DBL_MIN)

/* Backward of a block, input by input (input i's rows of Wt and gWt stay in L1 across the
 * block's rows): gx from k+2 dot products with g_b folded into one (c = sum_r dv_r Wt[i, j_r]
 * + db Wt[i, K], then g_b · c); gWt rows += values · g_b. */
#define SP_BWD_BLOCK(T, VT, VL, KK)                                                            \
    do {                                                                                       \
        const T *v = (const T *)w.v, *dv = (const T *)w.dv;                                    \
        const T *bs = (const T *)w.bs, *db = (const T *)w.db;                                  \
        for (long i = 0; i < I; i++) {                                                         \
            const T *Wi = Wt + i * (K + 1) * O;                                                \
            T *Gi = gW ? gW + i * (K + 1) * O : NULL;                                          \
            for (long r = 0; r < R; r++) {                                                     \
                const long e = i * R + r;                                                      \
                const T *gb = g + (b0 + r) * O;                                                \
                if (gx) {                                                                      \
                    VT z = {0};                                                                \
                    long o0 = 0;                                                               \
                    for (; o0 + (VL) <= O; o0 += (VL)) {                                       \
                        VT c = LDV(VT, Wi + K * O + o0) * db[e];                               \
                        for (long q = 0; q <= (KK); q++)                                       \
                            c += LDV(VT, Wi + (long)w.jc[q * ns + e] * O + o0) * dv[q * ns + e]; \
                        z += LDV(VT, gb + o0) * c;                                             \
                    }                                                                          \
                    T a = HSUM(z);                                                             \
                    for (; o0 < O; o0++) {                                                     \
                        T c = Wi[K * O + o0] * db[e];                                          \
                        for (long q = 0; q <= (KK); q++)                                       \
                            c += Wi[(long)w.jc[q * ns + e] * O + o0] * dv[q * ns + e];           \
                        a += gb[o0] * c;                                                       \
                    }                                                                          \
                    gx[(b0 + r) * I + i] = a;                                                  \
                }                                                                              \
            }                                                                                  \
            if (Gi) { /* rows bucketed by span s (one pass): a row's k+1 values go to slots */ \
                /* s-k..s, so slot j sums the buckets s = j..j+k with weights v_{j-s+k} */     \
                const int *si_ = w.s + i * R;                                                  \
                for (long t = 0; t < NB; t++) cnt[t] = 0;                                      \
                for (long r = 0; r < R; r++) {                                                 \
                    const long sb = si_[r] + 1; /* s in [-1, K+k+1] */                         \
                    bkr[sb * RB + cnt[sb]++] = (int)r;                                         \
                }                                                                              \
                for (long j = 0; j <= K; j++) {                                                \
                    if (j == K && !base) break;                                                \
                    T *Gr = Gi + j * O;                                                        \
                    long o0 = 0;                                                               \
                    for (; o0 + 4 * (VL) <= O; o0 += 4 * (VL)) {                              \
                        VT a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                             \
                        SP_SLOT_ROWS(T, KK, j, {                                               \
                            const T *gr_ = g + (b0 + r_) * O + o0;                             \
                            a0 += LDV(VT, gr_) * s_; a1 += LDV(VT, gr_ + (VL)) * s_;           \
                            a2 += LDV(VT, gr_ + 2 * (VL)) * s_; a3 += LDV(VT, gr_ + 3 * (VL)) * s_; \
                        });                                                                    \
                        STV(VT, Gr + o0, LDV(VT, Gr + o0) + a0);                               \
                        STV(VT, Gr + o0 + (VL), LDV(VT, Gr + o0 + (VL)) + a1);                 \
                        STV(VT, Gr + o0 + 2 * (VL), LDV(VT, Gr + o0 + 2 * (VL)) + a2);         \
                        STV(VT, Gr + o0 + 3 * (VL), LDV(VT, Gr + o0 + 3 * (VL)) + a3);         \
                    }                                                                          \
                    for (; o0 + (VL) <= O; o0 += (VL)) {                                       \
                        VT a0 = {0};                                                           \
                        SP_SLOT_ROWS(T, KK, j, { a0 += LDV(VT, g + (b0 + r_) * O + o0) * s_; }); \
                        STV(VT, Gr + o0, LDV(VT, Gr + o0) + a0);                               \
                    }                                                                          \
                    for (; o0 < O; o0++) {                                                     \
                        T a = 0;                                                               \
                        SP_SLOT_ROWS(T, KK, j, { a += g[(b0 + r_) * O + o0] * s_; });          \
                        Gr[o0] += a;                                                           \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    } while (0)

/* BODY for every row r_ of the block that slot j of input i has, with its value s_: slot K (the
 * base) has every row with b(x); slot j < K the rows of span buckets s = j..j+k with the value
 * of local basis q = j - s + k (zero values included: they add nothing). */
#define SP_SLOT_ROWS(T, KK, j, BODY)                                                           \
    do {                                                                                       \
        if ((j) < K) {                                                                         \
            for (long sp_ = (j); sp_ <= (j) + (KK); sp_++) {                                   \
                const int *rb_ = bkr + (sp_ + 1) * RB;                                         \
                const T *vq_ = v + ((j) - sp_ + (KK)) * ns + i * R;                            \
                for (long t_ = 0, nb_ = cnt[sp_ + 1]; t_ < nb_; t_++) {                        \
                    const long r_ = rb_[t_];                                                   \
                    const T s_ = vq_[r_];                                                      \
                    BODY                                                                       \
                }                                                                              \
            }                                                                                  \
        } else {                                                                               \
            for (long r_ = 0; r_ < R; r_++) {                                                  \
                const T s_ = bs[i * R + r_];                                                   \
                BODY                                                                           \
            }                                                                                  \
        }                                                                                      \
    } while (0)

#define SP_BWD_BODY(T, VT, VL, KK) SP_PREP(T, KK, gW != NULL, gx != NULL); SP_BWD_BLOCK(T, VT, VL, KK)

#ifdef _OPENMP
#include <omp.h>
#define SP_TID() omp_get_thread_num()
#else
#define SP_TID() 0
#endif

/* gx (B, I) and gWt ((K+1)·I, O), either may be NULL; gWt is overwritten (not accumulated).
 * Each block (at most 64 rows) sums each row of gWt in registers from zero and adds that partial
 * sum to the thread's total (rounding grows with 64 + the number of blocks, not with B; no
 * block-sized buffer is zeroed and added per block); with threads each one keeps a private
 * total, added up at the end. */
#define SP_BACKWARD(NAME, T, VT, VL, TMIN)                                                     \
int NAME(const T *g, const T *x, long B, long I, long O, const double *t0, const double *inv_h, \
         long k, long K, const double *M, const double *dM, const T *Wt, int base, T *gx,      \
         T *gWt, int nthreads) {                                                               \
    const double hi = (double)(K + k + 1), tmin = (TMIN);                                      \
    const long WS = (K + 1) * I * O;                                                           \
    const long RB = sp_rows(I, O) < 64 ? sp_rows(I, O) : 64, nblk = (B + RB - 1) / RB;         \
    int failed = 0;                                                                            \
    int par = nthreads > 1 && nblk > 1 && B * I * (k + 2) * O >= 8 * PAR_MIN;                  \
    int nt = par ? nthreads : 1;                                                               \
    T *tot = NULL;                                                                             \
    if (gWt) {                                                                                 \
        memset(gWt, 0, sizeof(T) * (size_t)WS);                                                \
        tot = calloc((size_t)nt * (size_t)WS, sizeof(T));                                      \
        if (!tot) return -1;                                                                   \
    }                                                                                          \
    _Pragma("omp parallel num_threads(nt) if(par) reduction(|:failed)")                       \
    {                                                                                          \
        T *mine = gWt ? tot + (size_t)SP_TID() * (size_t)WS : NULL;                            \
        T *gW = mine;                                                                          \
        const long NB = K + k + 3; /* span buckets: s + 1 in [0, K+k+2] */                   \
        int *cnt = malloc(sizeof(int) * (size_t)NB * (size_t)(RB + 1));                        \
        int *bkr = cnt ? cnt + NB : NULL;                                                      \
        SpScratch w;                                                                           \
        int bad = sp_alloc(&w, RB, I, k, sizeof(T), t0, inv_h) || (gWt && !gW) || !cnt;        \
        if (bad) failed = 1;                                                                   \
        _Pragma("omp for schedule(static)")                                                    \
        for (long blk = 0; blk < nblk; blk++) {                                                \
            if (bad) continue;                                                                 \
            const long b0 = blk * RB, R = (b0 + RB <= B ? RB : B - b0), n = R * I;             \
            const long ns = SP_STRIDE(RB * I);                                                 \
            SP_SWITCH(SP_BWD_BODY, T, VT, VL)                                                  \
        }                                                                                      \
        free(cnt);                                                                             \
        sp_free(&w);                                                                           \
    }                                                                                          \
    if (gWt) {                                                                                 \
        for (int t = 0; t < nt; t++) {                                                         \
            const T *p = tot + (size_t)t * (size_t)WS;                                         \
            for (long e = 0; e < WS; e++) gWt[e] += p[e];                                      \
        }                                                                                      \
        free(tot);                                                                             \
    }                                                                                          \
    return failed ? -1 : 0;                                                                    \
}

#define HSUM HSUM_f32
SP_BACKWARD(kan_sparse_backward_f32, float, vec_f32, 16, (double)FLT_MIN)
#undef HSUM
#define HSUM HSUM_f64
SP_BACKWARD(kan_sparse_backward_f64, double, vec_f64, 8, DBL_MIN)
#undef HSUM

/* The sparse route's packed weight Wt (I, K+1, O), input-major: Wt[i, j, o] =
 * mask·scale_spline·coef[o, i, j] (j < K), Wt[i, K, o] = mask·scale_base. */
#define PACK_T(NAME, T)                                                                        \
void NAME(const T *coef, const T *sb, const T *ss, const T *mask, long O, long I, long K,      \
          T *Wt) {                                                                             \
    /* input by input: its (K+1, O) tile of Wt stays in L1 while o runs over the outputs, and \
     * the lines of coef, mask and the scales that o touches serve the next inputs too */      \
    for (long i = 0; i < I; i++) {                                                             \
        T *w = Wt + i * (K + 1) * O;                                                           \
        for (long o = 0; o < O; o++) {                                                         \
            const long oi = o * I + i;                                                         \
            const T ms = mask[oi] * ss[oi], *c = coef + oi * K;                                \
            for (long j = 0; j < K; j++) w[j * O + o] = ms * c[j];                             \
            w[K * O + o] = mask[oi] * sb[oi];                                                  \
        }                                                                                      \
    }                                                                                          \
}

PACK_T(kan_pack_weights_t_f32, float)
PACK_T(kan_pack_weights_t_f64, double)

/* Parameter gradients from ∂L/∂W by the chain rule through the packed weight, for either
 * layout of W (element (o, j, i) at gW[o·sO + j·sJ + i·sI]: the sparse route's (I, K+1, O) or
 * the dense (O, K+1, I)): gc[o, i, j] = gW[o, j, i]·m·w^s, gsb[o, i] = gW[o, K, i]·m,
 * gss[o, i] = m · sum_j gW[o, j, i]·c[o, i, j]. No temporaries. */
#define PARAM_GRADS(NAME, T)                                                                   \
void NAME(const T *gW, long sO, long sJ, long sI, const T *coef, const T *ss, const T *mask,   \
          long O, long I, long K, T *gc, T *gsb, T *gss) {                                     \
    for (long o = 0; o < O; o++)                                                               \
        for (long i = 0; i < I; i++) {                                                         \
            const long oi = o * I + i;                                                         \
            const T m = mask[oi], ms = m * ss[oi];                                             \
            const T *gi = gW + o * sO + i * sI;                                                \
            const T *co = coef + oi * K;                                                       \
            T *gco = gc + oi * K, acc = 0;                                                     \
            for (long j = 0; j < K; j++) {                                                     \
                T gv = gi[j * sJ];                                                             \
                gco[j] = gv * ms;                                                              \
                acc += gv * co[j];                                                             \
            }                                                                                  \
            gss[oi] = acc * m;                                                                 \
            gsb[oi] = gi[K * sJ] * m;                                                          \
        }                                                                                      \
}

PARAM_GRADS(kan_param_grads_f32, float)
PARAM_GRADS(kan_param_grads_f64, double)

/* ------------------------------------------------------------------------------------------ *
 * One call per layer step (nnlab.kan.cpu_layer): the input check, the packed weight Wt in a
 * private buffer (never cached: it is rebuilt from the parameters on every call, O(params)) and
 * the sparse forward; backward packs Wt again, runs the sparse backward into a private ∂L/∂Wt
 * and applies the chain rule onto c, w^b, w^s. Small layers spend most of a step in the calls
 * themselves, so one call replaces four (check, pack, kernel, parameter gradients).
 * Forward returns -1 (out of memory) or the check's flags; with bit 0 set (NaN/inf) y is not
 * computed. Backward returns -1 or 0; gx and gc/gsb/gss (all three or none) may be NULL.
 * ------------------------------------------------------------------------------------------ */
#define SP_LAYER(T, SFX)                                                                       \
int kan_layer_forward_##SFX(const T *x, long B, long I, long O, const double *t0,              \
                            const double *inv_h, long k, long K, const double *M,              \
                            const T *coef, const T *sb, const T *ss, const T *mask, int base,  \
                            const double *lo, const double *hi, int range, T *y,               \
                            int nthreads) {                                                    \
    int flags = kan_check_input_##SFX(x, B, I, lo, hi, range);                                 \
    if (flags & 1) return flags;                                                               \
    T *Wt = malloc(sizeof(T) * (size_t)((K + 1) * I * O));                                     \
    if (!Wt) return -1;                                                                        \
    kan_pack_weights_t_##SFX(coef, sb, ss, mask, O, I, K, Wt);                                 \
    int rc = kan_sparse_forward_##SFX(x, B, I, O, t0, inv_h, k, K, M, Wt, base, y, nthreads);  \
    free(Wt);                                                                                  \
    return rc < 0 ? rc : flags;                                                                \
}                                                                                              \
int kan_layer_backward_##SFX(const T *g, const T *x, long B, long I, long O, const double *t0, \
                             const double *inv_h, long k, long K, const double *M,             \
                             const double *dM, const T *coef, const T *sb, const T *ss,        \
                             const T *mask, int base, T *gx, T *gc, T *gsb, T *gss,            \
                             int nthreads) {                                                   \
    const size_t WS = (size_t)((K + 1) * I * O);                                               \
    T *Wt = malloc(sizeof(T) * WS * (gc ? 2 : 1));                                             \
    if (!Wt) return -1;                                                                        \
    T *gWt = gc ? Wt + WS : NULL;                                                              \
    kan_pack_weights_t_##SFX(coef, sb, ss, mask, O, I, K, Wt);                                 \
    int rc = kan_sparse_backward_##SFX(g, x, B, I, O, t0, inv_h, k, K, M, dM, Wt, base, gx,    \
                                       gWt, nthreads);                                         \
    if (rc == 0 && gc)                                                                         \
        kan_param_grads_##SFX(gWt, 1, O, (K + 1) * O, coef, ss, mask, O, I, K, gc, gsb, gss);  \
    free(Wt);                                                                                  \
    return rc;                                                                                 \
}
SP_LAYER(float, f32)
SP_LAYER(double, f64)
