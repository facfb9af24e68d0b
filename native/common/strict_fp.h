// Included first by files whose floating point must round exactly as JavaScript
// does (the sampler and its backend twins): JS never fuses a*b+c into one
// rounding, so neither may the compiler (GCC contracts by default where the
// target has FMA, e.g. aarch64). Applies to the rest of the including file.
#pragma once
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
