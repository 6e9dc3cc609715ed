/* Shared by the native KAN kernels (_native.c: features + GEMM route; _native_sparse.c: the
 * sparse route): includes, limits and the span computation u -> (s, f) of the closed form
 * described in _native.c. Included by both sources; built together by nnlab.kan.native. */
#ifndef NNLAB_KAN_NATIVE_H
#define NNLAB_KAN_NATIVE_H
#include <float.h>
#include <math.h>
#include <stdint.h>
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

/* exp for the silu base branch (float: a vectorisable exp, |error| <= 2 ulp; double: libm) */
static inline __attribute__((always_inline)) float exp_f32(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float t = x * 1.44269504f + 12582912.0f; /* 1.5·2^23: rounds x·log2(e) to an integer n */
    float n = t - 12582912.0f;
    float r = x - n * 0.693145752f;         /* Cody–Waite: ln 2 = hi + lo */
    r = r - n * 1.42860677e-6f;
    float p = 1.0f / 5040;                   /* Taylor to r^7 on |r| <= 0.35: rel. error 5e-9 */
    p = p * r + 1.0f / 720; p = p * r + 1.0f / 120; p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6; p = p * r + 0.5f; p = p * r + 1.0f; p = p * r + 1.0f;
    int32_t ti;
    memcpy(&ti, &t, 4);
    int32_t bits = (ti - 0x4B400000 + 127) << 23; /* 2^n */
    float sc;
    memcpy(&sc, &bits, 4);
    return p * sc;
}

static inline __attribute__((always_inline)) double exp_f64(double x) { return exp(x); }

/* silu(x) = x sigmoid(x) and silu'(x) = sg (1 + x (1 - sg)), sg = sigmoid(x) */
#define SILU_F(T, EXPF, xv) ((xv) * ((T)1 / ((T)1 + EXPF(-(xv)))))
#define DSILU_F(T, EXPF, xv) ({ T sg_ = (T)1 / ((T)1 + EXPF(-(xv))); sg_ * ((T)1 + (xv) * ((T)1 - sg_)); })

/* Rows of silu for float32, 16 lanes at a time where AVX-512 is compiled in: exp_f32's steps as
 * vector intrinsics and the sigmoid's reciprocal as rcp14 plus one Newton step (|relative
 * error| ~ 2^-23, within an ulp of the division: the compiler's vectorised division runs at a
 * quarter of the rate, and its if-converted clamps divided twice); the rest, and builds without
 * AVX-512, by the scalar formulas above. */
#if defined(__AVX512F__)
#include <immintrin.h>
static inline __attribute__((always_inline)) __m512 nk_sigmoid16(__m512 x) {
    __m512 z = _mm512_sub_ps(_mm512_setzero_ps(), x); /* exp(-x) */
    z = _mm512_min_ps(_mm512_max_ps(z, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    const __m512 big = _mm512_set1_ps(12582912.0f);
    __m512 t = _mm512_fmadd_ps(z, _mm512_set1_ps(1.44269504f), big);
    __m512 n = _mm512_sub_ps(t, big);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), z);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_slli_epi32(
        _mm512_add_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(-0x4B400000 + 127)), 23);
    __m512 d = _mm512_fmadd_ps(p, _mm512_castsi512_ps(bits), _mm512_set1_ps(1.0f)); /* 1 + e */
    __m512 y = _mm512_rcp14_ps(d);
    return _mm512_mul_ps(y, _mm512_fnmadd_ps(d, y, _mm512_set1_ps(2.0f))); /* y (2 - d y) */
}
#endif

/* out[i] = silu(x[i]) */
static inline __attribute__((always_inline)) void
silu_row_f32(const float *restrict x, float *restrict out, long n) {
    long i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) {
        __m512 xv = _mm512_loadu_ps(x + i);
        _mm512_storeu_ps(out + i, _mm512_mul_ps(xv, nk_sigmoid16(xv)));
    }
#endif
    for (; i < n; i++) out[i] = SILU_F(float, exp_f32, x[i]);
}

/* out[i] = add[i] (or 0 if add is NULL) + g[i] silu'(x[i]) */
static inline __attribute__((always_inline)) void
dsilu_row_f32(const float *restrict x, const float *restrict g, const float *add,
              float *out, long n) {
    long i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) {
        __m512 xv = _mm512_loadu_ps(x + i), sg = nk_sigmoid16(xv), one = _mm512_set1_ps(1.0f);
        __m512 d = _mm512_mul_ps(sg, _mm512_fmadd_ps(xv, _mm512_sub_ps(one, sg), one));
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(g + i), d);
        if (add) v = _mm512_add_ps(_mm512_loadu_ps(add + i), v);
        _mm512_storeu_ps(out + i, v);
    }
#endif
    if (add) for (; i < n; i++) out[i] = add[i] + g[i] * DSILU_F(float, exp_f32, x[i]);
    else for (; i < n; i++) out[i] = g[i] * DSILU_F(float, exp_f32, x[i]);
}

/* bs[i] = silu(x[i]) and, if db is not NULL, db[i] = silu'(x[i]) */
static inline __attribute__((always_inline)) void
silu_both_row_f32(const float *restrict x, float *restrict bs, float *restrict db, long n) {
    long i = 0;
#if defined(__AVX512F__)
    const __m512 one = _mm512_set1_ps(1.0f);
    if (db)
        for (; i + 16 <= n; i += 16) {
            __m512 xv = _mm512_loadu_ps(x + i), sg = nk_sigmoid16(xv);
            _mm512_storeu_ps(bs + i, _mm512_mul_ps(xv, sg));
            _mm512_storeu_ps(db + i, _mm512_mul_ps(sg, _mm512_fmadd_ps(xv, _mm512_sub_ps(one, sg), one)));
        }
    else
        for (; i + 16 <= n; i += 16) {
            __m512 xv = _mm512_loadu_ps(x + i);
            _mm512_storeu_ps(bs + i, _mm512_mul_ps(xv, nk_sigmoid16(xv)));
        }
#endif
    for (; i < n; i++) {
        float xe = x[i], sg = 1.0f / (1.0f + exp_f32(-xe));
        bs[i] = xe * sg;
        if (db) db[i] = sg * (1.0f + xe * (1.0f - sg));
    }
}

/* _native.c: the input check (bit 0 NaN/inf, bit 1 outside [lo, hi]), see there */
int kan_check_input_f32(const float *x, long B, long I, const double *lo, const double *hi, int range);
int kan_check_input_f64(const double *x, long B, long I, const double *lo, const double *hi, int range);

#endif
