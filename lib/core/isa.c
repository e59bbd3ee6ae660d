/* Instruction-set levels for the hand-vectorized kernels (isa.h). */
#include "isa.h"

static int limit = CVIS__ISA_AVX512;

void cvis__isa_limit(int isa)
{
    limit = isa;
}

int cvis__isa(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    /* __builtin_cpu_supports is thread-safe after the first call's init */
    __builtin_cpu_init();
    int cpu = !__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") ? CVIS__ISA_GENERIC
              : __builtin_cpu_supports("avx512f")                             ? CVIS__ISA_AVX512
                                                                               : CVIS__ISA_AVX2;
    return cpu < limit ? cpu : limit;
#else
    return CVIS__ISA_GENERIC;
#endif
}
