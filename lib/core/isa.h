/* The instruction sets that hand-vectorized kernels (the direct
 * convolution, Winograd's transforms) may use: the best the CPU has,
 * lowered by tests through cvis__isa_limit so that every variant runs. */
#ifndef CVIS_CORE_ISA_H
#define CVIS_CORE_ISA_H

enum { CVIS__ISA_GENERIC = 0, CVIS__ISA_AVX2 = 1, CVIS__ISA_AVX512 = 2 };

/* For tests: the most capable level kernels may use (the CPU still
 * decides).  Every level gives the same results up to rounding. */
void cvis__isa_limit(int isa);
/* The level to use now: AVX2 with FMA, AVX-512F on top of that, within
 * the limit. */
int cvis__isa(void);

#endif
