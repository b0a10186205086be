// The Soft-VC decoder's free-running loop (espnet_softvc/softvc/fast.py) in one call, on all cores.
//
// Plain CPython extension without torch headers: setup.py builds it with setuptools alone (torch is not
// importable yet when a fresh `pip install -e .` runs setup.py), and fast.py hands it raw pointers of tensors it
// packed. The kernels need AVX2 + FMA + F16C; `available()` says whether this CPU has them (else fast.py runs its
// TorchScript loop, same numerics).
//
// Per frame, per batch row (B rows, H hidden units padded to Hp, 8 units per panel):
//   hid = relu(W_pre1 m + b_pre1)                 fp32            m = previous mel frame (0 at t = 0)
//   pre = relu(W_pre2 hid + b_pre2)               kind            kind = fp32 / bf16 / fp16 / int8 weights
//   g1  = xproj[t] + W1 [pre | h1]  -> cell -> h1 kind            xproj = lstm1's projection of the encoder
//   g2  = b2 + W2 [h1 | h2]         -> cell -> h2, x = h1 + h2
//   g3  = b3 + W3 [x | h3]          -> cell -> h3, s = x + h3
//   m   = W_proj s                                fp32            -> out[t]
// Weights are "panels" of 32 output rows, k-major (a panel is K x 32 values read front to back). An LSTM panel holds
// the gates (i, f, 2g, o) of 8 units, so the thread that computes a panel also runs the cell of its 8 units
// (tanh(g) = 2 sigmoid(2g) - 1; the g rows are doubled when packed, which is exact). Threads split each LSTM matmul
// by panels and meet at a spinning barrier after each (3 per frame); every thread computes the small prenet and proj
// in full (see decode()); h1, h2, h3 are double-buffered by frame parity.
// int8: per-row symmetric int8 weights; the activations of each batch row and input segment ([pre | h1] is two
// segments) are quantized asymmetrically to 0..127 (7 bits, so vpmaddubsw cannot saturate), products are exact
// int32, then y = float(dot - zp * rowsum) * scale_x (summed over segments) * scale_w + add, the same float
// operations in the same order as fast.py's TorchScript emulation.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <immintrin.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <thread>
#include <vector>

// The kernels (down to py_decode's glue) are compiled for AVX2 + FMA + F16C, the glue for the baseline x86-64: the
// module imports on any CPU and runs nothing of the kernels unless cpu_ok().
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace {

enum Kind { FP32 = 0, BF16 = 1, FP16 = 2, INT8 = 3 };
constexpr int NR = 32;     // rows per panel
constexpr int MELS = 128;  // mel bins (proj rows, prenet inputs)

// ---------------------------------------------------------------------------------------------- threads
// Spins for up to kSpinMicros (the other threads are usually a few microseconds away), then sleeps on a futex: a
// thread whose partner lost its core to another process gives the core up instead of spinning against it, and wakes
// with the scheduler's preference for sleepers.
constexpr int kSpinMicros = 30;

struct Barrier {
  alignas(64) std::atomic<int> count{0};
  alignas(64) std::atomic<int> generation{0};
  alignas(64) std::atomic<int> sleepers{0};
  int n = 1;

  static long futex(std::atomic<int>* address, int op, int value) {
    return syscall(SYS_futex, reinterpret_cast<int*>(address), op, value, nullptr, nullptr, 0);
  }

  void wait() {
    if (n == 1) return;
    int g = generation.load(std::memory_order_acquire);
    if (count.fetch_add(1, std::memory_order_acq_rel) == n - 1) {
      count.store(0, std::memory_order_relaxed);
      generation.store(g + 1, std::memory_order_seq_cst);
      if (sleepers.load(std::memory_order_seq_cst) > 0) futex(&generation, FUTEX_WAKE_PRIVATE, INT_MAX);
      return;
    }
    auto start = std::chrono::steady_clock::now();
    for (int spins = 1; generation.load(std::memory_order_acquire) == g; ++spins) {
      _mm_pause();
      if (spins % 64 == 0 && std::chrono::steady_clock::now() - start > std::chrono::microseconds(kSpinMicros)) {
        sleepers.fetch_add(1, std::memory_order_seq_cst);
        while (generation.load(std::memory_order_seq_cst) == g) futex(&generation, FUTEX_WAIT_PRIVATE, g);
        sleepers.fetch_sub(1, std::memory_order_relaxed);
        return;
      }
    }
  }
};

template <class F>
void run_threads(int n, F&& f) {
  std::vector<std::thread> workers;
  for (int i = 1; i < n; ++i) workers.emplace_back(f, i);
  f(0);
  for (auto& w : workers) w.join();
}

inline void split(int n, int parts, int part, int* lo, int* hi) {
  int base = n / parts, extra = n % parts;
  *lo = part * base + std::min(part, extra);
  *hi = *lo + base + (part < extra ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------- math
inline __m256 exp256(__m256 x) {  // Cephes expf, ~1 ulp on [-87, 88]
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline __m256 sigmoid256(__m256 x) {
  __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

inline __m256 tanh256(__m256 x) {  // 2 sigmoid(2x) - 1
  __m256 two = _mm256_set1_ps(2.0f);
  return _mm256_sub_ps(_mm256_mul_ps(two, sigmoid256(_mm256_mul_ps(two, x))), _mm256_set1_ps(1.0f));
}

// ---------------------------------------------------------------------------------------------- panel kernels
// Float kinds: load16<KIND>(w, k, half) = rows 16 half .. 16 half + 15 of the panel at k as two fp32 vectors.
// fp32: 32 floats per k. bf16: 32 values per k in two groups of 16; in group q, element 2i is row 16q + i and
// element 2i + 1 row 16q + 8 + i, so a shift and a mask turn 16 bf16 into two vectors. fp16: converted by F16C.
struct Pair {
  __m256 lo, hi;
};

template <int KIND>
inline Pair load16(const void* w, int k, int half) {
  if (KIND == FP32) {
    const float* p = static_cast<const float*>(w) + k * NR + 16 * half;
    return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
  } else if (KIND == BF16) {
    const uint16_t* p = static_cast<const uint16_t*>(w) + k * NR + 16 * half;
    __m256i g = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(g, 16)),
            _mm256_castsi256_ps(_mm256_and_si256(g, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))))};
  } else {
    const uint16_t* p = static_cast<const uint16_t*>(w) + k * NR + 16 * half;
    return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
  }
}

// Batch 1 reads each weight once per frame, and a frame's weights (bf16 25 MB, int8 13 MB at the paper's sizes)
// outgrow the share of L3 they keep between frames: the single-row kernels of the 16-bit and int8 kinds prefetch
// kPrefetchBytes ahead of their stream (panels lie back to back, so this runs on into the next panel). Measured on
// the 2-core EPYC (interleaved A/B, quiet machine): bf16 0.81x the time at 1 thread and 0.53x at 2, int8 0.91x at
// 1 thread; fp32, bound by DRAM, gains nothing and is left alone.
constexpr int kPrefetchBytes = 4096;
inline void prefetch2(const char* p) {  // two cache lines
  _mm_prefetch(p, _MM_HINT_T0);
  _mm_prefetch(p + 64, _MM_HINT_T0);
}

// One batch row, the whole panel: acc[j] (rows 8j..8j+7) = sum_k W[k][rows] x[k]. Two accumulator sets (even and
// odd k): 8 independent FMA chains, enough to hide the FMA latency. Named variables, not arrays: GCC keeps them in
// registers (arrays of accumulators went through the stack every iteration).
template <int KIND>
inline void dot_row(const void* w, int K, const float* x, __m256* acc) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  const char* ahead = static_cast<const char*>(w) + kPrefetchBytes;  // 16-bit kinds: one cache line per k
  int k = 0;
  for (; k + 1 < K; k += 2) {
    if (KIND != FP32) prefetch2(ahead + k * NR * 2);
    __m256 x0 = _mm256_broadcast_ss(x + k);
    Pair p = load16<KIND>(w, k, 0);
    a0 = _mm256_fmadd_ps(p.lo, x0, a0);
    a1 = _mm256_fmadd_ps(p.hi, x0, a1);
    p = load16<KIND>(w, k, 1);
    a2 = _mm256_fmadd_ps(p.lo, x0, a2);
    a3 = _mm256_fmadd_ps(p.hi, x0, a3);
    __m256 x1 = _mm256_broadcast_ss(x + k + 1);
    p = load16<KIND>(w, k + 1, 0);
    b0 = _mm256_fmadd_ps(p.lo, x1, b0);
    b1 = _mm256_fmadd_ps(p.hi, x1, b1);
    p = load16<KIND>(w, k + 1, 1);
    b2 = _mm256_fmadd_ps(p.lo, x1, b2);
    b3 = _mm256_fmadd_ps(p.hi, x1, b3);
  }
  if (k < K) {
    __m256 x0 = _mm256_broadcast_ss(x + k);
    Pair p = load16<KIND>(w, k, 0);
    a0 = _mm256_fmadd_ps(p.lo, x0, a0);
    a1 = _mm256_fmadd_ps(p.hi, x0, a1);
    p = load16<KIND>(w, k, 1);
    a2 = _mm256_fmadd_ps(p.lo, x0, a2);
    a3 = _mm256_fmadd_ps(p.hi, x0, a3);
  }
  acc[0] = _mm256_add_ps(a0, b0);
  acc[1] = _mm256_add_ps(a1, b1);
  acc[2] = _mm256_add_ps(a2, b2);
  acc[3] = _mm256_add_ps(a3, b3);
}

// BB batch rows, half a panel (16 rows): the 6 x 16 register block of BLAS microkernels (12 accumulators).
template <int KIND, int BB>
inline void dot_rows(const void* w, int K, int half, const float* const* x, __m256 (*acc)[2]) {
  for (int r = 0; r < BB; ++r) acc[r][0] = _mm256_setzero_ps(), acc[r][1] = _mm256_setzero_ps();
  for (int k = 0; k < K; ++k) {
    Pair v = load16<KIND>(w, k, half);
    for (int r = 0; r < BB; ++r) {
      __m256 xb = _mm256_broadcast_ss(x[r] + k);
      acc[r][0] = _mm256_fmadd_ps(v.lo, xb, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(v.hi, xb, acc[r][1]);
    }
  }
}

// int8 panel: per group of 4 k, 4 blocks of 32 bytes (rows 8j..8j+7), byte 4i + q = row 8j + i, k = 4g + q.
// x: bytes 0..127 (so a pair of products, at most 2 * 127 * 127, cannot saturate vpmaddubsw's int16), K a multiple
// of 4. acc[r][j] (int32) += sum_k w * x over blocks j0..j0+J-1.
template <int BB, int J>
inline void dot_i8(const int8_t* w, int K, int j0, const uint8_t* const* x, __m256i (*acc)[J]) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (int r = 0; r < BB; ++r)
    for (int j = 0; j < J; ++j) acc[r][j] = _mm256_setzero_si256();
  const char* ahead = reinterpret_cast<const char*>(w) + kPrefetchBytes;  // two cache lines per 4 k
  for (int k = 0; k < K; k += 4) {
    if (j0 == 0) prefetch2(ahead + k * NR);
    __m256i wj[J];
    for (int j = 0; j < J; ++j)
      wj[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + k * NR + 32 * (j0 + j)));
    for (int r = 0; r < BB; ++r) {
      int32_t v;
      std::memcpy(&v, x[r] + k, 4);
      __m256i xb = _mm256_set1_epi32(v);
      for (int j = 0; j < J; ++j)
        acc[r][j] = _mm256_add_epi32(acc[r][j], _mm256_madd_epi16(_mm256_maddubs_epi16(xb, wj[j]), ones));
    }
  }
}

// ---------------------------------------------------------------------------------------------- the plan
struct Matrix {              // one packed weight: panels x K x 32 values of `kind`
  const void* w = nullptr;
  int K = 0;                 // input length (padded)
  int panels = 0;
  int kind = FP32;
  int segments = 1;          // int8: input segments, each with its own activation scale
  int seg_len[2] = {0, 0};   // their (padded) lengths, summing to K
  const float* scale = nullptr;  // int8: per-row weight scale (panel row order)
  const int32_t* rowsum = nullptr;  // int8: [segment][row] sum of the int8 weights of the row over the segment
};

struct Plan {
  int B = 0, T = 0, threads = 1, Php = 0, Pp = 0, Hp = 0;
  const float* xproj = nullptr;  // (B, T, 4Hp) panel row order
  float* out = nullptr;          // (B, T, 128)
  Matrix pre1, pre2, lstm[3], proj;
  const float* b_pre1 = nullptr;
  const float* b_pre2 = nullptr;
  const float* b_lstm[3] = {nullptr, nullptr, nullptr};  // b_lstm[0] unused (in xproj)
};

struct Quantized {  // one batch row's int8 activations of one matmul
  std::vector<uint8_t> q;
  float scale[2];
  float zp[2];
};

void quantize(const float* x, const Matrix& m, Quantized& out) {
  int off = 0;
  for (int s = 0; s < m.segments; ++s) {
    int n = m.seg_len[s];
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();  // the range always includes 0
    for (int k = 0; k < n; k += 8) {
      __m256 v = _mm256_loadu_ps(x + off + k);
      lo = _mm256_min_ps(lo, v);
      hi = _mm256_max_ps(hi, v);
    }
    float l[8], h[8];
    _mm256_storeu_ps(l, lo);
    _mm256_storeu_ps(h, hi);
    float mn = 0.0f, mx = 0.0f;
    for (int i = 0; i < 8; ++i) mn = std::min(mn, l[i]), mx = std::max(mx, h[i]);
    volatile float range = mx - mn;  // volatile: keep each float operation as written (no contraction)
    float scale = range / 127.0f;
    if (scale == 0.0f) scale = 1.0f;
    volatile float neg = -mn / scale;
    float zp = std::nearbyint(neg);
    out.scale[s] = scale;
    out.zp[s] = zp;
    __m256 vs = _mm256_set1_ps(scale), vz = _mm256_set1_ps(zp);
    __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(127.0f);
    for (int k = 0; k < n; k += 8) {
      __m256 v = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + off + k), vs),
                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, vz), zero), top);
      __m256i i = _mm256_cvtps_epi32(v);
      alignas(32) int32_t tmp[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), i);
      for (int j = 0; j < 8; ++j) out.q[off + k + j] = static_cast<uint8_t>(tmp[j]);
    }
    off += n;
  }
}

template <int KIND, int BB>
void float_panel(const void* w, int K, const float* const* x, __m256 (*y)[4]) {
  if (BB == 1) {
    dot_row<KIND>(w, K, x[0], y[0]);
    return;
  }
  for (int half = 0; half < 2; ++half) {
    __m256 acc[BB][2];
    dot_rows<KIND, BB>(w, K, half, x, acc);
    for (int r = 0; r < BB; ++r) y[r][2 * half] = acc[r][0], y[r][2 * half + 1] = acc[r][1];
  }
}

// y[r][0..3] (rows 0..31) of panel p for BB batch rows: the matmul part only (no bias).
template <int BB>
void panel(const Matrix& m, int p, const float* const* x, const Quantized* const* q, __m256 (*y)[4]) {
  size_t base = static_cast<size_t>(p) * m.K * NR;
  switch (m.kind) {
    case FP32:
      float_panel<FP32, BB>(static_cast<const float*>(m.w) + base, m.K, x, y);
      return;
    case BF16:
      float_panel<BF16, BB>(static_cast<const uint16_t*>(m.w) + base, m.K, x, y);
      return;
    case FP16:
      float_panel<FP16, BB>(static_cast<const uint16_t*>(m.w) + base, m.K, x, y);
      return;
    default:
      break;
  }
  const int8_t* w = static_cast<const int8_t*>(m.w) + base;  // INT8
  int off = 0;
  for (int s = 0; s < m.segments; ++s) {
    __m256i acc[BB][4];
    const uint8_t* xs[BB];
    for (int r = 0; r < BB; ++r) xs[r] = q[r]->q.data() + off;
    const int8_t* ws = w + static_cast<size_t>(off) * NR;
    if (BB == 1) {
      dot_i8<BB, 4>(ws, m.seg_len[s], 0, xs, acc);
    } else {
      for (int half = 0; half < 2; ++half) {
        __m256i a[BB][2];
        dot_i8<BB, 2>(ws, m.seg_len[s], 2 * half, xs, a);
        for (int r = 0; r < BB; ++r) acc[r][2 * half] = a[r][0], acc[r][2 * half + 1] = a[r][1];
      }
    }
    const int32_t* rs = m.rowsum + static_cast<size_t>(s) * m.panels * NR + p * NR;
    for (int r = 0; r < BB; ++r) {
      __m256i zp = _mm256_set1_epi32(static_cast<int32_t>(q[r]->zp[s]));
      __m256 sc = _mm256_set1_ps(q[r]->scale[s]);
      for (int j = 0; j < 4; ++j) {
        __m256i sum = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rs + 8 * j));
        __m256i d = _mm256_sub_epi32(acc[r][j], _mm256_mullo_epi32(zp, sum));
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(d), sc);
        y[r][j] = s == 0 ? v : _mm256_add_ps(y[r][j], v);
      }
    }
    off += m.seg_len[s];
  }
  const float* sw = m.scale + p * NR;
  for (int r = 0; r < BB; ++r)
    for (int j = 0; j < 4; ++j) y[r][j] = _mm256_mul_ps(y[r][j], _mm256_loadu_ps(sw + 8 * j));
}

template <int BB, class E>
void block(const Matrix& m, int p, int b, const float* const* x, const Quantized* q, E& epilogue) {
  __m256 y[BB][4];
  const Quantized* qs[BB];
  for (int r = 0; r < BB; ++r) qs[r] = q ? q + b + r : nullptr;
  panel<BB>(m, p, x + b, qs, y);
  for (int r = 0; r < BB; ++r) epilogue(b + r, p, y[r]);
}

// Calls epilogue(b, p, y) for every batch row b and panel p in [p0, p1): rows in blocks of up to 6 (int8: 4),
// each panel read from memory once per frame and from cache for its further blocks.
template <class E>
void matmul(const Matrix& m, int p0, int p1, int B, const float* const* x, const Quantized* q, E&& epilogue) {
  const int most = m.kind == INT8 ? 4 : 6;
  for (int p = p0; p < p1; ++p) {
    for (int b = 0; b < B;) {
      int n = std::min(most, B - b);
      switch (n) {
        case 1: block<1>(m, p, b, x, q, epilogue); break;
        case 2: block<2>(m, p, b, x, q, epilogue); break;
        case 3: block<3>(m, p, b, x, q, epilogue); break;
        case 4: block<4>(m, p, b, x, q, epilogue); break;
        case 5: block<5>(m, p, b, x, q, epilogue); break;
        default: block<6>(m, p, b, x, q, epilogue); break;
      }
      b += n;
    }
  }
}

struct State {  // per batch row, shared by the threads; padded sizes
  std::vector<float> in2[2], in3[2], s, c[3];
};

struct Own {  // per thread and batch row: the small layers (prenet, proj) each thread computes in full
  std::vector<float> mel, hid, in1[2];  // mel = the previous frame (0 at t = 0); in1 = [pre | h1]
};

// Threads split the three LSTM matmuls by panels and meet after each (3 barriers per frame); proj and the prenet
// (1 % of the weights) are computed in full by every thread into its own buffers, instead of being split with a
// barrier after each: a barrier costs more than that work. lstm1 writes its h into every thread's in1.
void decode(const Plan& P) {
  const int B = P.B, Hp = P.Hp, Pp = P.Pp, n = P.threads;
  std::vector<State> st(B);
  for (auto& s : st) {
    for (int i = 0; i < 2; ++i) {
      s.in2[i].assign(2 * Hp, 0.f);  // [h1 | h2]
      s.in3[i].assign(2 * Hp, 0.f);  // [x | h3]
    }
    s.s.assign(Hp, 0.f);
    for (auto& c : s.c) c.assign(Hp, 0.f);
  }
  std::vector<std::vector<Own>> own(n, std::vector<Own>(B));
  for (auto& rows : own)
    for (auto& o : rows) {
      o.mel.assign(MELS, 0.f);
      o.hid.assign(P.Php, 0.f);
      for (auto& in : o.in1) in.assign(Pp + Hp, 0.f);
    }
  Barrier barrier;
  barrier.n = n;
  const bool int8 = P.pre2.kind == INT8;
  const int K8 = std::max(P.Php, 2 * Hp + Pp);

  auto work = [&](int tid) {
    std::vector<Own>& mine = own[tid];
    std::vector<Quantized> q(int8 ? B : 0);  // this thread's copy of the quantized inputs
    for (auto& e : q) e.q.assign(K8, 0);
    const Quantized* qp = int8 ? q.data() : nullptr;
    std::vector<const float*> x(B);
    int lstm[2];
    split(P.lstm[0].panels, n, tid, lstm, lstm + 1);
    const __m256 zero = _mm256_setzero_ps();
    auto inputs = [&](const Matrix& m, auto get) {  // x[b] = get(b); int8: quantize them
      for (int b = 0; b < B; ++b) {
        x[b] = get(b);
        if (int8 && m.kind == INT8) quantize(x[b], m, q[b]);
      }
    };
    auto relu = [&](const float* bias, auto dst) {  // epilogue: dst(b)[rows of p] = relu(y + bias)
      return [=](int b, int p, __m256* y) {
        for (int j = 0; j < 4; ++j)
          _mm256_storeu_ps(dst(b) + p * NR + 8 * j,
                           _mm256_max_ps(_mm256_add_ps(y[j], _mm256_loadu_ps(bias + p * NR + 8 * j)), zero));
      };
    };
    for (int t = 0; t < P.T; ++t) {
      const int cur = t & 1, nxt = cur ^ 1;
      // 1-2. the prenet on the previous mel frame -> in1[cur][0:Pp]
      inputs(P.pre1, [&](int b) { return mine[b].mel.data(); });
      matmul(P.pre1, 0, P.pre1.panels, B, x.data(), qp, relu(P.b_pre1, [&](int b) { return mine[b].hid.data(); }));
      inputs(P.pre2, [&](int b) { return mine[b].hid.data(); });
      matmul(P.pre2, 0, P.pre2.panels, B, x.data(), qp,
             relu(P.b_pre2, [&](int b) { return mine[b].in1[cur].data(); }));
      // 3-5. the LSTMs; panel p = units 8p..8p+7, y = pre-activations (i, f, 2g, o)
      for (int l = 0; l < 3; ++l) {
        const Matrix& m = P.lstm[l];
        inputs(m, [&](int b) {
          return l == 0 ? mine[b].in1[cur].data() : l == 1 ? st[b].in2[cur].data() : st[b].in3[cur].data();
        });
        matmul(m, lstm[0], lstm[1], B, x.data(), qp, [&](int b, int p, __m256* y) {
          State& s = st[b];
          const float* add = l == 0 ? P.xproj + (static_cast<size_t>(b) * P.T + t) * 4 * Hp + p * NR
                                    : P.b_lstm[l] + p * NR;
          __m256 g[4];
          for (int j = 0; j < 4; ++j) g[j] = sigmoid256(_mm256_add_ps(y[j], _mm256_loadu_ps(add + 8 * j)));
          __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
          __m256 cell = _mm256_sub_ps(_mm256_mul_ps(two, g[2]), one);  // tanh(g)
          float* cp = s.c[l].data() + 8 * p;
          __m256 c = _mm256_add_ps(_mm256_mul_ps(g[1], _mm256_loadu_ps(cp)), _mm256_mul_ps(g[0], cell));
          _mm256_storeu_ps(cp, c);
          __m256 h = _mm256_mul_ps(g[3], tanh256(c));
          const int u = 8 * p;
          if (l == 0) {
            for (auto& rows : own) _mm256_storeu_ps(rows[b].in1[nxt].data() + Pp + u, h);  // next frame's lstm1
            _mm256_storeu_ps(s.in2[cur].data() + u, h);                                      // this frame's lstm2
          } else if (l == 1) {
            _mm256_storeu_ps(s.in2[nxt].data() + Hp + u, h);
            _mm256_storeu_ps(s.in3[cur].data() + u, _mm256_add_ps(_mm256_loadu_ps(s.in2[cur].data() + u), h));
          } else {
            _mm256_storeu_ps(s.in3[nxt].data() + Hp + u, h);
            _mm256_storeu_ps(s.s.data() + u, _mm256_add_ps(_mm256_loadu_ps(s.in3[cur].data() + u), h));
          }
        });
        barrier.wait();
      }
      // 6. proj(x + h3) -> this thread's mel (the next frame's prenet input); thread 0 also writes out[t]. The next
      // write of s (lstm3 of t + 1) comes after two barriers that wait for this thread.
      inputs(P.proj, [&](int b) { return st[b].s.data(); });
      matmul(P.proj, 0, P.proj.panels, B, x.data(), qp, [&](int b, int p, __m256* y) {
        float* o = P.out + (static_cast<size_t>(b) * P.T + t) * MELS + p * NR;
        for (int j = 0; j < 4; ++j) {
          _mm256_storeu_ps(mine[b].mel.data() + p * NR + 8 * j, y[j]);
          if (tid == 0) _mm256_storeu_ps(o + 8 * j, y[j]);
        }
      });
    }
  };
  run_threads(n, work);
}

// out (B, panels * 32) = W x for one packed matrix (no bias): the kernels alone, for tests. x (B, K) padded.
void matmul_all(const Matrix& m, const float* x, int B, float* out, int threads) {
  run_threads(std::max(1, threads), [&](int tid) {
    int p0, p1;
    split(m.panels, std::max(1, threads), tid, &p0, &p1);
    std::vector<Quantized> q(m.kind == INT8 ? B : 0);
    std::vector<const float*> rows(B);
    for (int b = 0; b < B; ++b) {
      rows[b] = x + static_cast<size_t>(b) * m.K;
      if (m.kind == INT8) {
        q[b].q.assign(m.K, 0);
        quantize(rows[b], m, q[b]);
      }
    }
    matmul(m, p0, p1, B, rows.data(), m.kind == INT8 ? q.data() : nullptr, [&](int b, int p, __m256* y) {
      for (int j = 0; j < 4; ++j)
        _mm256_storeu_ps(out + static_cast<size_t>(b) * m.panels * NR + p * NR + 8 * j, y[j]);
    });
  });
}

// Best seconds of `repeats` passes of `threads` threads summing `nbytes` of floats at `address` (each thread its
// contiguous share): the read bandwidth the decoder's kernels can get from wherever the buffer lives.
double stream_read(const float* data, size_t n, int repeats, int threads, volatile float* sink) {
  double best = 1e30;
  Barrier barrier;
  barrier.n = threads;
  std::vector<double> times(threads, 0.0);
  run_threads(threads, [&](int tid) {
    int lo, hi;
    int chunks = static_cast<int>(n / 64);
    split(chunks, threads, tid, &lo, &hi);
    for (int r = 0; r < repeats; ++r) {
      barrier.wait();
      auto start = std::chrono::steady_clock::now();
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
      for (size_t i = static_cast<size_t>(lo) * 64; i < static_cast<size_t>(hi) * 64; i += 64) {
        const float* d = data + i;
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(d));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(d + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(d + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(d + 24));
        a4 = _mm256_add_ps(a4, _mm256_loadu_ps(d + 32));
        a5 = _mm256_add_ps(a5, _mm256_loadu_ps(d + 40));
        a6 = _mm256_add_ps(a6, _mm256_loadu_ps(d + 48));
        a7 = _mm256_add_ps(a7, _mm256_loadu_ps(d + 56));
      }
      __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                               _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
      float f[8];
      _mm256_storeu_ps(f, s);
      *sink = f[0];
      barrier.wait();  // all threads done: the pass took as long as the slowest
      if (tid == 0) {
        double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        best = std::min(best, sec);
      }
    }
  });
  return best;
}

}  // namespace
#pragma GCC pop_options

namespace {
// ---------------------------------------------------------------------------------------------- Python
bool cpu_ok() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

// Reads a sequence of ints from the Python object into v; false (with a Python error set) on failure.
bool ints(PyObject* seq, std::vector<long long>& v) {
  PyObject* fast = PySequence_Fast(seq, "expected a sequence of ints");
  if (!fast) return false;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
  v.resize(n);
  for (Py_ssize_t i = 0; i < n; ++i) {
    v[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fast, i));
    if (v[i] == -1 && PyErr_Occurred()) {
      Py_DECREF(fast);
      return false;
    }
  }
  Py_DECREF(fast);
  return true;
}

template <class T>
const T* ptr(long long v) {
  return reinterpret_cast<const T*>(static_cast<uintptr_t>(v));
}

// matrix fields: w, K, panels, kind, segments, seg_len0, seg_len1, scale, rowsum (9 ints)
Matrix matrix(const long long* a) {
  Matrix m;
  m.w = ptr<void>(a[0]);
  m.K = static_cast<int>(a[1]);
  m.panels = static_cast<int>(a[2]);
  m.kind = static_cast<int>(a[3]);
  m.segments = static_cast<int>(a[4]);
  m.seg_len[0] = static_cast<int>(a[5]);
  m.seg_len[1] = static_cast<int>(a[6]);
  m.scale = ptr<float>(a[7]);
  m.rowsum = ptr<int32_t>(a[8]);
  return m;
}

PyObject* py_decode(PyObject*, PyObject* args) {
  PyObject* seq;
  if (!PyArg_ParseTuple(args, "O", &seq)) return nullptr;
  std::vector<long long> a;
  if (!ints(seq, a)) return nullptr;
  constexpr size_t head = 13, per = 9;
  if (a.size() != head + 6 * per) {
    PyErr_SetString(PyExc_ValueError, "decode: wrong number of plan fields");
    return nullptr;
  }
  if (!cpu_ok()) {
    PyErr_SetString(PyExc_RuntimeError, "decode: this CPU lacks AVX2/FMA/F16C");
    return nullptr;
  }
  Plan p;
  p.B = static_cast<int>(a[0]);
  p.T = static_cast<int>(a[1]);
  p.threads = std::max(1, static_cast<int>(a[2]));
  p.Php = static_cast<int>(a[3]);
  p.Pp = static_cast<int>(a[4]);
  p.Hp = static_cast<int>(a[5]);
  p.xproj = ptr<float>(a[6]);
  p.out = const_cast<float*>(ptr<float>(a[7]));
  p.b_pre1 = ptr<float>(a[8]);
  p.b_pre2 = ptr<float>(a[9]);
  p.b_lstm[1] = ptr<float>(a[10]);
  p.b_lstm[2] = ptr<float>(a[11]);
  // a[12]: reserved (0)
  const long long* m = a.data() + head;
  p.pre1 = matrix(m);
  p.pre2 = matrix(m + per);
  for (int l = 0; l < 3; ++l) p.lstm[l] = matrix(m + (2 + l) * per);
  p.proj = matrix(m + 5 * per);
  p.threads = std::min(p.threads, std::max(1, p.lstm[0].panels));  // more threads than LSTM panels would idle
  const char* error = nullptr;
  Py_BEGIN_ALLOW_THREADS try {
    decode(p);
  } catch (const std::exception&) {  // no thread or no memory: an exception must not cross the C API
    error = "decode: could not start its threads or allocate its state";
  }
  Py_END_ALLOW_THREADS if (error) {
    PyErr_SetString(PyExc_RuntimeError, error);
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* py_matmul(PyObject*, PyObject* args) {
  PyObject* seq;
  unsigned long long x, out;
  int B, threads;
  if (!PyArg_ParseTuple(args, "OKiKi", &seq, &x, &B, &out, &threads)) return nullptr;
  std::vector<long long> a;
  if (!ints(seq, a)) return nullptr;
  if (a.size() != 9) {
    PyErr_SetString(PyExc_ValueError, "matmul: a matrix has 9 fields");
    return nullptr;
  }
  if (!cpu_ok()) {
    PyErr_SetString(PyExc_RuntimeError, "matmul: this CPU lacks AVX2/FMA/F16C");
    return nullptr;
  }
  Matrix m = matrix(a.data());
  bool failed = false;
  Py_BEGIN_ALLOW_THREADS try {
    matmul_all(m, ptr<float>(static_cast<long long>(x)), B,
               const_cast<float*>(ptr<float>(static_cast<long long>(out))), threads);
  } catch (const std::exception&) {
    failed = true;
  }
  Py_END_ALLOW_THREADS if (failed) {
    PyErr_SetString(PyExc_RuntimeError, "matmul: could not start its threads or allocate");
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* py_stream_read(PyObject*, PyObject* args) {
  unsigned long long address, nbytes;
  int repeats, threads;
  if (!PyArg_ParseTuple(args, "KKii", &address, &nbytes, &repeats, &threads)) return nullptr;
  if (!cpu_ok()) {
    PyErr_SetString(PyExc_RuntimeError, "stream_read: this CPU lacks AVX2/FMA/F16C");
    return nullptr;
  }
  volatile float sink = 0;
  double best = -1.0;
  Py_BEGIN_ALLOW_THREADS try {
    best = stream_read(ptr<float>(static_cast<long long>(address)), nbytes / 4, std::max(1, repeats),
                       std::max(1, threads), &sink);
  } catch (const std::exception&) {
    best = -1.0;
  }
  Py_END_ALLOW_THREADS if (best < 0) {
    PyErr_SetString(PyExc_RuntimeError, "stream_read: could not start its threads");
    return nullptr;
  }
  return PyFloat_FromDouble(best);
}

PyObject* py_available(PyObject*, PyObject*) { return PyBool_FromLong(cpu_ok()); }

PyMethodDef methods[] = {
    {"decode", py_decode, METH_VARARGS, "decode(plan): the fused decoder loop (fast.py builds the plan)"},
    {"matmul", py_matmul, METH_VARARGS, "matmul(matrix, x, B, out, threads): out = W x of one packed matrix (tests)"},
    {"stream_read", py_stream_read, METH_VARARGS,
     "stream_read(address, nbytes, repeats, threads) -> best seconds to read the buffer once"},
    {"available", py_available, METH_NOARGS, "True when this CPU has AVX2, FMA and F16C"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_decode_ext", "Soft-VC decoder loop (see decode.cpp)", -1, methods};

}  // namespace

// fast.py checks it: a module built from an older decode.cpp (a stale in-place build) is not used.
constexpr long kVersion = 1;

PyMODINIT_FUNC PyInit__decode_ext() {
  PyObject* m = PyModule_Create(&module);
  if (m && PyModule_AddIntConstant(m, "VERSION", kVersion) < 0) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}
