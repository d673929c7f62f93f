// vector_clones.h — MINIDL_VECTOR_CLONES: one CPU loop, compiled once per vector width.
//
// _C is built for any x86-64 CPU, whose baseline vector unit (SSE2) holds 4 floats or 2
// doubles. A launcher marked MINIDL_VECTOR_CLONES is compiled three times — for AVX-512 (16
// floats), AVX2 (8 floats) and that baseline — from the same source, and the dynamic loader
// picks the widest one the CPU has, once, when _C is imported (GCC's `target_clones`, resolved
// through an ifunc). Nothing in the loop changes: it is the compiler's auto-vectorization of
// the same `omp simd` loop, at three widths. (Its OpenMP regions are cloned with it.)
//
// What it is for: the streaming loops (normalization, ReLU) that do a few operations per
// value loaded; at the baseline width they are bound by arithmetic, not by memory — measured
// in docs/performance.md. Hand-written vector code (the direct convolution's registers) stays
// explicit, in its own `_cpu_fast.cpp` file, behind its own runtime check.
//
// Sums taken in vector lanes add in a different order at each width, so a reduction (batch
// norm's statistics) can differ in the last bit of double precision between CPUs; every
// result is still checked against the NumPy reference within the stated tolerances.
//
// AVX-512 has fused multiply-adds, and GCC would fuse a * b + c where it pleases — in the
// vector body of a loop but not in its scalar remainder, or in one copy of a loop and not in
// another — so that one formula gave results differing in the last bit from element to
// element. setup.py therefore compiles _C with -ffp-contract=off: each clone computes exactly
// the operations written, and a fused ReLU equals normalization-then-ReLU bit for bit
// (tests/test_fusion.py).
#pragma once

#include <cstddef>  // defines __GLIBC__ on glibc, whose ifunc target_clones needs

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && \
    defined(__GLIBC__)
#define MINIDL_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MINIDL_VECTOR_CLONES
#endif
