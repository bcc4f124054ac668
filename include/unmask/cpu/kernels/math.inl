// unmask/cpu/kernels/math.inl  (compiled once per instruction set: unmask/cpu/simd/kernels.hpp)
//
// Vector exp for softmax and SiLU: Cody-Waite reduction x = n ln2 + r with
// |r| <= ln2/2 (ln2 split in two so n ln2 is exact), a degree-6 Taylor
// polynomial for e^r (truncation error below 1.2e-7 relative on that range),
// and 2^n assembled in the exponent field in two halves so n down to -126
// stays normal. Inputs below -87.34 give exactly 0, so a masked score of
// -inf contributes nothing; inputs above 88.72 saturate near FLT_MAX.

template <class Ops>
UNMASK_SIMD_INLINE typename Ops::vf vexp(typename Ops::vf x) {
  using vf = typename Ops::vf;
  using vi = typename Ops::vi;
  const vi underflow = x < Ops::set1(-87.33654f);
  x = Ops::min(x, Ops::set1(88.72283f));
  x = Ops::max(x, Ops::set1(-87.33654f));
  const vf n = Ops::round(x * Ops::set1(1.44269504088896341f));
  vf r = Ops::fma(n, Ops::set1(-0.693145751953125f), x);
  r = Ops::fma(n, Ops::set1(-1.428606765330187e-06f), r);
  vf p = Ops::set1(1.0f / 720.0f);
  p = Ops::fma(p, r, Ops::set1(1.0f / 120.0f));
  p = Ops::fma(p, r, Ops::set1(1.0f / 24.0f));
  p = Ops::fma(p, r, Ops::set1(1.0f / 6.0f));
  p = Ops::fma(p, r, Ops::set1(0.5f));
  p = Ops::fma(p, r, Ops::set1(1.0f));
  p = Ops::fma(p, r, Ops::set1(1.0f));
  const vi ni = Ops::to_int(n);
  const vi first = ni >> 1;
  const vf s1 = (vf)((first + 127) << 23), s2 = (vf)((ni - first + 127) << 23);
  return Ops::select(underflow, Ops::zero(), p * s1 * s2);
}
