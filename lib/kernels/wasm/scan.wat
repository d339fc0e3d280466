;; The fused selective scan, forward and backward, in WebAssembly with 128-bit SIMD (f32x4 over the
;; d_state axis; the hot loops use f32x4.relaxed_madd: fused where the CPU has FMA, else mul + add): the
;; fast twin of scan_reference.ts, driven by scan.ts (staging, threads, reductions). Also a blocked
;; transpose, for channels-last inputs. Part of the kernels module (see math.wat and build.ts;
;; tests/scan_kernels_test.ts checks that bytes.ts holds what build.ts compiles).
;;
;; Layout (all float32, byte addresses, 16-byte aligned arrays prepared by wasm/scan.ts):
;;   u, delta, z, y, gy, du, ddelta, dz: (b, d, l) rows of L values, one row per channel c = bi * Dd + d
;;     (channels-last inputs are transposed into this layout first, by `transpose`)
;;   A: (d, Np)    Bt, Ct: (b, l, Np)  (B and C transposed, the state axis padded with zeros to Np)
;;   Dskip, bias: (d)   h0, last, gLast, dh0: (b, d, Np)
;; Np = d_state rounded up to a multiple of 4; the padding states have A = B = C = h0 = 0, so they stay 0
;; and contribute nothing.
;;
;; Work is split by channel ranges [c0, c1): each calling thread passes its own scratch block `s`, so
;; threads share only read-only inputs and write disjoint output rows; the reductions over channels (dB,
;; dC) and over the batch (dA, dD, dBias) go to per-thread accumulators that wasm/scan.ts sums.
;;
;; Params block at p (i32 words):
;;   0 L   1 Np   2 Dd   3 flags (1: delta softplus, 2: z gate present)
;;   4 u   5 delta   6 A   7 Bt   8 Ct   9 Dskip   10 z   11 bias   12 h0
;;   13 y   14 last   15 gy   16 gLast   17 du   18 ddelta   19 dz   20 dh0   21 A2 = A log2 e (d, Np)
;; Thread block at s (i32 words), scratch rows hold L4 = roundup(L, 4) values (+ 4 spare):
;;   0 dt   1 dsp (d softplus / d raw)   2 u   3 z   4 gy / gOut   5 out   6 gdt   7 du
;;   8 hs ((L + 1) x Np: h_{-1} .. h_{L-1})   9 as (L x Np: a_t = exp(dt_t A))   10 h (Np)   11 gA (Np)
;;   12 accA (Dd x Np)   13 accD (Dd)   14 accBias (Dd)   15 accB (b x L x Np)   16 accC (b x L x Np)

  ;; Copies row c (L values) of the (b, d, l) array at word k of p into scratch `dst`, zero-filling the
  ;; scratch up to L4 + 4 values (so whole-vector passes over it read zeros past the end).
  (func $stage (param $p i32) (param $k i32) (param $c i32) (param $dst i32)
    (local $L i32) (local $L4 i32)
    (local.set $L (call $param (local.get $p) (i32.const 0)))
    (local.set $L4 (i32.and (i32.add (local.get $L) (i32.const 3)) (i32.const -4)))
    (memory.copy (local.get $dst)
      (i32.add (call $param (local.get $p) (local.get $k)) (i32.shl (i32.mul (local.get $c) (local.get $L)) (i32.const 2)))
      (i32.shl (local.get $L) (i32.const 2)))
    (memory.fill (i32.add (local.get $dst) (i32.shl (local.get $L) (i32.const 2))) (i32.const 0)
      (i32.shl (i32.sub (i32.add (local.get $L4) (i32.const 4)) (local.get $L)) (i32.const 2)))
  )

  ;; Copies L values of scratch `src` into row c of the (b, d, l) array at word k of p.
  (func $unstage (param $p i32) (param $k i32) (param $c i32) (param $src i32)
    (local $L i32)
    (local.set $L (call $param (local.get $p) (i32.const 0)))
    (memory.copy
      (i32.add (call $param (local.get $p) (local.get $k)) (i32.shl (i32.mul (local.get $c) (local.get $L)) (i32.const 2)))
      (local.get $src) (i32.shl (local.get $L) (i32.const 2)))
  )

  ;; dt = softplus(delta + bias) (or delta + bias) in place over the staged row; dsp = its derivative
  ;; sigmoid(delta + bias) (or 1) when dsp != 0.
  (func $deltaPass (param $sdt i32) (param $dsp i32) (param $n4 i32) (param $bias f32) (param $softplus i32)
    (local $i i32) (local $x v128) (local $b v128)
    (local.set $b (f32x4.splat (local.get $bias)))
    (loop $t
      (local.set $x (f32x4.add (v128.load (local.get $sdt)) (local.get $b)))
      (if (local.get $softplus)
        (then
          (if (local.get $dsp) (then (v128.store (local.get $dsp) (call $vsigmoid (local.get $x)))))
          (v128.store (local.get $sdt) (call $vsoftplus (local.get $x))))
        (else
          (if (local.get $dsp) (then (v128.store (local.get $dsp) (v128.const f32x4 1 1 1 1))))
          (v128.store (local.get $sdt) (local.get $x))))
      (local.set $sdt (i32.add (local.get $sdt) (i32.const 16)))
      (if (local.get $dsp) (then (local.set $dsp (i32.add (local.get $dsp) (i32.const 16)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br_if $t (i32.lt_u (local.get $i) (local.get $n4))))
  )

  ;; The recurrence of channel c over t = 0 .. L-1 from h = s.h (holding h_{-1}), leaving h_{L-1} there:
  ;;   a_t = exp(dt_t A) = 2^(dt_t A2)  (A2 = A log2 e)   h_t = a_t h_{t-1} + dt_t u_t B_t   out[t] = <h_t, C_t>
  ;; With `keep`, also h_t into hs row t + 1 and a_t into as row t (hs row 0 must hold h_{-1}).
  (func $recur (param $p i32) (param $s i32) (param $c i32) (param $keep i32)
    (local $L i32) (local $Np i32) (local $Dd i32) (local $nb i32) (local $t i32) (local $j i32)
    (local $pA i32) (local $pBC i32) (local $sdt i32) (local $su i32) (local $sout i32) (local $sh i32)
    (local $phs i32) (local $pas i32) (local $pAt i32) (local $pBt i32) (local $pCt i32)
    (local $dt f32) (local $dtv v128) (local $dtu v128) (local $acc v128) (local $a v128) (local $h v128)
    (local $ex v128) (local $exc v128) (local $et v128) (local $er v128) (local $ep v128)
    (local $k0 v128) (local $k1 v128) (local $k2 v128) (local $k3 v128) (local $k4 v128) (local $k5 v128) (local $k6 v128) (local $k7 v128) (local $k8 v128) (local $k9 v128) (local $k10 v128) (local $k11 v128)
    (local.set $L (call $param (local.get $p) (i32.const 0)))
    (local.set $Np (call $param (local.get $p) (i32.const 1)))
    (local.set $Dd (call $param (local.get $p) (i32.const 2)))
    (local.set $nb (i32.shl (local.get $Np) (i32.const 2)))
    (local.set $pA (i32.add (call $param (local.get $p) (i32.const 21))
      (i32.mul (i32.rem_u (local.get $c) (local.get $Dd)) (local.get $nb))))
    ;; byte offset of (bi, t = 0) in Bt / Ct
    (local.set $pBC (i32.mul (i32.mul (i32.div_u (local.get $c) (local.get $Dd)) (local.get $L)) (local.get $nb)))
    (local.set $pBt (i32.add (call $param (local.get $p) (i32.const 7)) (local.get $pBC)))
    (local.set $pCt (i32.add (call $param (local.get $p) (i32.const 8)) (local.get $pBC)))
    (local.set $sdt (call $param (local.get $s) (i32.const 0)))
    (local.set $su (call $param (local.get $s) (i32.const 2)))
    (local.set $sout (call $param (local.get $s) (i32.const 5)))
    (local.set $sh (call $param (local.get $s) (i32.const 10)))
    (local.set $phs (i32.add (call $param (local.get $s) (i32.const 8)) (local.get $nb))) ;; row 1
    (local.set $pas (call $param (local.get $s) (i32.const 9)))
    ;; The loop below computes a = $vexp2(dt A2) written out inline (a call in the hot loop costs ~10%),
    ;; its constants hoisted out of the loops into $k0.. (V8 rematerialises v128 constants at each use).
    ;; Keep the two copies identical: the tests check $vexp2 directly and the inlined copy via the scan.
    (local.set $k0 (global.get $exp2_lo))
    (local.set $k1 (global.get $exp2_hi))
    (local.set $k2 (global.get $round_magic))
    (local.set $k3 (global.get $exp2_p0))
    (local.set $k4 (global.get $exp2_p1))
    (local.set $k5 (global.get $exp2_p2))
    (local.set $k6 (global.get $exp2_p3))
    (local.set $k7 (global.get $exp2_p4))
    (local.set $k8 (global.get $exp2_p5))
    (local.set $k9 (global.get $one))
    (local.set $k10 (global.get $minus_2p23))
    (local.set $k11 (global.get $two))
    (loop $tl
      (local.set $dt (f32.load (local.get $sdt)))
      (local.set $dtv (f32x4.splat (local.get $dt)))
      (local.set $dtu (f32x4.splat (f32.mul (local.get $dt) (f32.load (local.get $su)))))
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (loop $jl
        (local.set $ex (f32x4.mul (local.get $dtv) (v128.load (i32.add (local.get $pA) (local.get $j)))))
          (local.set $exc (f32x4.pmin
            (f32x4.pmax (local.get $ex) (local.get $k0))
            (local.get $k1)))
          ;; t = xc + 1.5 * 2^23: round(xc) in the low mantissa bits; r = xc - round(xc)
          (local.set $et (f32x4.add (local.get $exc) (local.get $k2)))
          (local.set $er (f32x4.sub (local.get $exc)
            (f32x4.sub (local.get $et) (local.get $k2))))
          (local.set $ep (local.get $k3))
          (local.set $ep (f32x4.relaxed_madd (local.get $ep) (local.get $er)
            (local.get $k4)))
          (local.set $ep (f32x4.relaxed_madd (local.get $ep) (local.get $er)
            (local.get $k5)))
          (local.set $ep (f32x4.relaxed_madd (local.get $ep) (local.get $er)
            (local.get $k6)))
          (local.set $ep (f32x4.relaxed_madd (local.get $ep) (local.get $er)
            (local.get $k7)))
          (local.set $ep (f32x4.relaxed_madd (local.get $ep) (local.get $er)
            (local.get $k8)))
          (local.set $ep (f32x4.relaxed_madd (local.get $ep) (local.get $er) (local.get $k9)))
          ;; * 2^(n-1): (t << 23) is n << 23 (the bits of 1.5 * 2^23 shift out); exponent field stays in [1, 254]
          (local.set $ep (f32x4.mul
            (i32x4.add (local.get $ep)
              (i32x4.add (i32x4.shl (local.get $et) (i32.const 23)) (local.get $k10)))
            (local.get $k11)))
          (local.set $ep (v128.andnot (local.get $ep)
            (f32x4.lt (local.get $ex) (local.get $k0))))
          ;; NaN lanes: x itself
          (local.set $a (v128.bitselect (local.get $ex) (local.get $ep) (f32x4.ne (local.get $ex) (local.get $ex))))
        (local.set $h (f32x4.relaxed_madd (local.get $a) (v128.load (i32.add (local.get $sh) (local.get $j)))
          (f32x4.mul (local.get $dtu) (v128.load (i32.add (local.get $pBt) (local.get $j))))))
        (v128.store (i32.add (local.get $sh) (local.get $j)) (local.get $h))
        (local.set $acc (f32x4.relaxed_madd (local.get $h) (v128.load (i32.add (local.get $pCt) (local.get $j)))
          (local.get $acc)))
        (if (local.get $keep)
          (then
            (v128.store (i32.add (local.get $phs) (local.get $j)) (local.get $h))
            (v128.store (i32.add (local.get $pas) (local.get $j)) (local.get $a))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $jl (i32.lt_u (local.get $j) (local.get $nb))))
      (f32.store (local.get $sout) (call $hsum (local.get $acc)))
      (local.set $sdt (i32.add (local.get $sdt) (i32.const 4)))
      (local.set $su (i32.add (local.get $su) (i32.const 4)))
      (local.set $sout (i32.add (local.get $sout) (i32.const 4)))
      (local.set $pBt (i32.add (local.get $pBt) (local.get $nb)))
      (local.set $pCt (i32.add (local.get $pCt) (local.get $nb)))
      (local.set $phs (i32.add (local.get $phs) (local.get $nb)))
      (local.set $pas (i32.add (local.get $pas) (local.get $nb)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br_if $tl (i32.lt_u (local.get $t) (local.get $L))))
  )

  ;; The reverse pass of channel c, t = L-1 .. 0, from s.h = dL/dh_{L-1} (left holding dL/dh_{-1}):
  ;;   ghs = dL/dh_t = gh + gOut_t C_t;   dC_t += gOut_t h_t;   gDecay = ghs h_{t-1} a_t;   dA += gDecay dt_t
  ;;   dB_t += ghs dt_t u_t;   du_t = gOut_t D + dt_t <ghs, B_t>;   ddt_t = <gDecay, A> + u_t <ghs, B_t>
  ;;   gh = ghs a_t (= dL/dh_{t-1})
  ;; into the scratch rows du and gdt, the thread's accB, accC and s.gA.
  (func $reverse (param $p i32) (param $s i32) (param $c i32) (param $skipf f32)
    (local $L i32) (local $Np i32) (local $nb i32) (local $Dd i32) (local $d i32) (local $j i32) (local $t i32)
    (local $sg i32) (local $su i32) (local $sdt i32) (local $sh i32) (local $sga i32) (local $sgdt i32) (local $sdu i32)
    (local $pA i32) (local $pBt i32) (local $pCt i32) (local $paB i32) (local $paC i32) (local $phs i32) (local $pas i32)
    (local $acc i32) (local $gout f32) (local $ut f32) (local $dt f32) (local $S f32)
    (local $goutv v128) (local $dtv v128) (local $dtu v128) (local $vS v128) (local $vT v128) (local $ghs v128)
    (local $a v128) (local $gdec v128)
    (local.set $L (call $param (local.get $p) (i32.const 0)))
    (local.set $Np (call $param (local.get $p) (i32.const 1)))
    (local.set $nb (i32.shl (local.get $Np) (i32.const 2)))
    (local.set $Dd (call $param (local.get $p) (i32.const 2)))
    (local.set $d (i32.rem_u (local.get $c) (local.get $Dd)))
    (local.set $sh (call $param (local.get $s) (i32.const 10)))
    (local.set $sga (call $param (local.get $s) (i32.const 11)))
    (local.set $sgdt (call $param (local.get $s) (i32.const 6)))
    (local.set $sdu (call $param (local.get $s) (i32.const 7)))
    (local.set $pA (i32.add (call $param (local.get $p) (i32.const 6)) (i32.mul (local.get $d) (local.get $nb))))
    ;; row (bi, t = L-1) of Bt, Ct, accB, accC
    (local.set $acc (i32.mul
      (i32.add (i32.mul (i32.div_u (local.get $c) (local.get $Dd)) (local.get $L)) (i32.sub (local.get $L) (i32.const 1)))
      (local.get $nb)))
    (local.set $pBt (i32.add (call $param (local.get $p) (i32.const 7)) (local.get $acc)))
    (local.set $pCt (i32.add (call $param (local.get $p) (i32.const 8)) (local.get $acc)))
    (local.set $paB (i32.add (call $param (local.get $s) (i32.const 15)) (local.get $acc)))
    (local.set $paC (i32.add (call $param (local.get $s) (i32.const 16)) (local.get $acc)))
    ;; hs row t = h_{t-1}; hs row t + 1 = h_t; as row t
    (local.set $phs (i32.add (call $param (local.get $s) (i32.const 8))
      (i32.mul (i32.sub (local.get $L) (i32.const 1)) (local.get $nb))))
    (local.set $pas (i32.add (call $param (local.get $s) (i32.const 9))
      (i32.mul (i32.sub (local.get $L) (i32.const 1)) (local.get $nb))))
    (local.set $sg (call $param (local.get $s) (i32.const 4)))
    (local.set $su (call $param (local.get $s) (i32.const 2)))
    (local.set $sdt (call $param (local.get $s) (i32.const 0)))
    (local.set $t (i32.sub (local.get $L) (i32.const 1)))
    (loop $tl
      (local.set $gout (f32.load (i32.add (local.get $sg) (i32.shl (local.get $t) (i32.const 2)))))
      (local.set $ut (f32.load (i32.add (local.get $su) (i32.shl (local.get $t) (i32.const 2)))))
      (local.set $dt (f32.load (i32.add (local.get $sdt) (i32.shl (local.get $t) (i32.const 2)))))
      (local.set $goutv (f32x4.splat (local.get $gout)))
      (local.set $dtv (f32x4.splat (local.get $dt)))
      (local.set $dtu (f32x4.splat (f32.mul (local.get $dt) (local.get $ut))))
      (local.set $vS (v128.const f32x4 0 0 0 0))
      (local.set $vT (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (loop $jl
        ;; ghs = dL/dh_t = gh + gOut C_t
        (local.set $ghs (f32x4.relaxed_madd (local.get $goutv) (v128.load (i32.add (local.get $pCt) (local.get $j)))
          (v128.load (i32.add (local.get $sh) (local.get $j)))))
        ;; dC_t += gOut h_t
        (v128.store (i32.add (local.get $paC) (local.get $j))
          (f32x4.relaxed_madd (local.get $goutv) (v128.load (i32.add (i32.add (local.get $phs) (local.get $nb)) (local.get $j)))
            (v128.load (i32.add (local.get $paC) (local.get $j)))))
        (local.set $a (v128.load (i32.add (local.get $pas) (local.get $j))))
        ;; gDecay = ghs h_{t-1} a_t = dL/d(dt A)
        (local.set $gdec (f32x4.mul (f32x4.mul (local.get $ghs) (v128.load (i32.add (local.get $phs) (local.get $j)))) (local.get $a)))
        (local.set $vT (f32x4.relaxed_madd (local.get $gdec) (v128.load (i32.add (local.get $pA) (local.get $j))) (local.get $vT)))
        (v128.store (i32.add (local.get $sga) (local.get $j))
          (f32x4.relaxed_madd (local.get $gdec) (local.get $dtv) (v128.load (i32.add (local.get $sga) (local.get $j)))))
        ;; dB_t += ghs dt u
        (v128.store (i32.add (local.get $paB) (local.get $j))
          (f32x4.relaxed_madd (local.get $ghs) (local.get $dtu) (v128.load (i32.add (local.get $paB) (local.get $j)))))
        (local.set $vS (f32x4.relaxed_madd (local.get $ghs) (v128.load (i32.add (local.get $pBt) (local.get $j))) (local.get $vS)))
        ;; dL/dh_{t-1} = ghs a_t
        (v128.store (i32.add (local.get $sh) (local.get $j)) (f32x4.mul (local.get $ghs) (local.get $a)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $jl (i32.lt_u (local.get $j) (local.get $nb))))
      ;; S = sum_n ghs B;  du = gOut D + dt S;  ddt = sum_n gDecay A + u S
      (local.set $S (call $hsum (local.get $vS)))
      (f32.store (i32.add (local.get $sdu) (i32.shl (local.get $t) (i32.const 2)))
        (f32.add (f32.mul (local.get $gout) (local.get $skipf)) (f32.mul (local.get $dt) (local.get $S))))
      (f32.store (i32.add (local.get $sgdt) (i32.shl (local.get $t) (i32.const 2)))
        (f32.add (call $hsum (local.get $vT)) (f32.mul (local.get $ut) (local.get $S))))
      (local.set $pBt (i32.sub (local.get $pBt) (local.get $nb)))
      (local.set $pCt (i32.sub (local.get $pCt) (local.get $nb)))
      (local.set $paB (i32.sub (local.get $paB) (local.get $nb)))
      (local.set $paC (i32.sub (local.get $paC) (local.get $nb)))
      (local.set $phs (i32.sub (local.get $phs) (local.get $nb)))
      (local.set $pas (i32.sub (local.get $pas) (local.get $nb)))
      (local.set $t (i32.sub (local.get $t) (i32.const 1)))
      (br_if $tl (i32.ge_s (local.get $t) (i32.const 0))))
  )

  ;; Transposes `batches` R x C matrices (row-major) at src into C x R ones at dst, by blocks of 4 rows:
  ;; block i in [i0, i1) is rows 4 (i mod nb) .. + 3 of matrix i / nb, nb = ceil(R / 4); 4 x 4 tiles by
  ;; shuffles, scalar at the edges. Params block at p (i32 words): 0 src   1 dst   2 R   3 C   4 nb
  (func (export "transpose") (param $p i32) (param $i0 i32) (param $i1 i32) (param $unused i32)
    (local $src i32) (local $dst i32) (local $R i32) (local $C i32) (local $nb i32) (local $i i32)
    (local $m i32) (local $r i32) (local $c i32) (local $rr i32) (local $s i32) (local $d i32) (local $cb i32) (local $rb i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $src (call $param (local.get $p) (i32.const 0)))
    (local.set $dst (call $param (local.get $p) (i32.const 1)))
    (local.set $R (call $param (local.get $p) (i32.const 2)))
    (local.set $C (call $param (local.get $p) (i32.const 3)))
    (local.set $nb (call $param (local.get $p) (i32.const 4)))
    (local.set $cb (i32.shl (local.get $C) (i32.const 2))) ;; bytes per source row
    (local.set $rb (i32.shl (local.get $R) (i32.const 2))) ;; bytes per destination row
    (local.set $i (local.get $i0))
    (block $done (loop $li
      (br_if $done (i32.ge_u (local.get $i) (local.get $i1)))
      (local.set $m (i32.div_u (local.get $i) (local.get $nb)))
      (local.set $r (i32.shl (i32.rem_u (local.get $i) (local.get $nb)) (i32.const 2)))
      (local.set $c (i32.const 0))
      (if (i32.le_u (i32.add (local.get $r) (i32.const 4)) (local.get $R))
        (then
          (block $cdone (loop $lc
            (br_if $cdone (i32.gt_u (i32.add (local.get $c) (i32.const 4)) (local.get $C)))
            ;; s = src[m][r][c], d = dst[m][c][r]
            (local.set $s (i32.add (local.get $src) (i32.shl
              (i32.add (i32.mul (i32.add (i32.mul (local.get $m) (local.get $R)) (local.get $r)) (local.get $C)) (local.get $c))
              (i32.const 2))))
            (local.set $d (i32.add (local.get $dst) (i32.shl
              (i32.add (i32.mul (i32.add (i32.mul (local.get $m) (local.get $C)) (local.get $c)) (local.get $R)) (local.get $r))
              (i32.const 2))))
            (local.set $v0 (v128.load (local.get $s)))
            (local.set $v1 (v128.load (i32.add (local.get $s) (local.get $cb))))
            (local.set $v2 (v128.load (i32.add (local.get $s) (i32.shl (local.get $cb) (i32.const 1)))))
            (local.set $v3 (v128.load (i32.add (local.get $s) (i32.mul (local.get $cb) (i32.const 3)))))
            (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v0) (local.get $v1)))
            (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v0) (local.get $v1)))
            (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v2) (local.get $v3)))
            (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v2) (local.get $v3)))
            (v128.store (local.get $d)
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
            (v128.store (i32.add (local.get $d) (local.get $rb))
              (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
            (v128.store (i32.add (local.get $d) (i32.shl (local.get $rb) (i32.const 1)))
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
            (v128.store (i32.add (local.get $d) (i32.mul (local.get $rb) (i32.const 3)))
              (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $lc)))))
      ;; the rest of these rows (columns c .. C-1, or all of a short block) one value at a time
      (local.set $rr (local.get $r))
      (block $rdone (loop $lr
        (br_if $rdone (i32.or (i32.ge_u (local.get $rr) (local.get $R))
          (i32.ge_u (local.get $rr) (i32.add (local.get $r) (i32.const 4)))))
        (local.set $s (local.get $c))
        (block $sdone (loop $ls
          (br_if $sdone (i32.ge_u (local.get $s) (local.get $C)))
          (f32.store (i32.add (local.get $dst) (i32.shl
              (i32.add (i32.mul (i32.add (i32.mul (local.get $m) (local.get $C)) (local.get $s)) (local.get $R)) (local.get $rr))
              (i32.const 2)))
            (f32.load (i32.add (local.get $src) (i32.shl
              (i32.add (i32.mul (i32.add (i32.mul (local.get $m) (local.get $R)) (local.get $rr)) (local.get $C)) (local.get $s))
              (i32.const 2)))))
          (local.set $s (i32.add (local.get $s) (i32.const 1)))
          (br $ls)))
        (local.set $rr (i32.add (local.get $rr) (i32.const 1)))
        (br $lr)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $li)))
  )

  ;; Forward of channels [c0, c1): y rows and last-state rows.
  (func (export "forward") (param $p i32) (param $s i32) (param $c0 i32) (param $c1 i32)
    (local $c i32) (local $L i32) (local $L4 i32) (local $Np i32) (local $Dd i32) (local $flags i32)
    (local $d i32) (local $i i32) (local $su i32) (local $sz i32) (local $so i32) (local $sh i32)
    (local $skip v128) (local $v v128) (local $z v128)
    (local.set $L (call $param (local.get $p) (i32.const 0)))
    (local.set $L4 (i32.and (i32.add (local.get $L) (i32.const 3)) (i32.const -4)))
    (local.set $Np (call $param (local.get $p) (i32.const 1)))
    (local.set $Dd (call $param (local.get $p) (i32.const 2)))
    (local.set $flags (call $param (local.get $p) (i32.const 3)))
    (local.set $sh (call $param (local.get $s) (i32.const 10)))
    (local.set $c (local.get $c0))
    (block $done (loop $cl
      (br_if $done (i32.ge_u (local.get $c) (local.get $c1)))
      (local.set $d (i32.rem_u (local.get $c) (local.get $Dd)))
      (call $stage (local.get $p) (i32.const 5) (local.get $c) (call $param (local.get $s) (i32.const 0)))
      (call $deltaPass (call $param (local.get $s) (i32.const 0)) (i32.const 0) (local.get $L4)
        (f32.load (i32.add (call $param (local.get $p) (i32.const 11)) (i32.shl (local.get $d) (i32.const 2))))
        (i32.and (local.get $flags) (i32.const 1)))
      (call $stage (local.get $p) (i32.const 4) (local.get $c) (call $param (local.get $s) (i32.const 2)))
      ;; h = h0 row c
      (memory.copy (local.get $sh)
        (i32.add (call $param (local.get $p) (i32.const 12)) (i32.shl (i32.mul (local.get $c) (local.get $Np)) (i32.const 2)))
        (i32.shl (local.get $Np) (i32.const 2)))
      (call $recur (local.get $p) (local.get $s) (local.get $c) (i32.const 0))
      ;; y = (out + D u) * silu(z)
      (local.set $skip (f32x4.splat
        (f32.load (i32.add (call $param (local.get $p) (i32.const 9)) (i32.shl (local.get $d) (i32.const 2))))))
      (if (i32.and (local.get $flags) (i32.const 2))
        (then (call $stage (local.get $p) (i32.const 10) (local.get $c) (call $param (local.get $s) (i32.const 3)))))
      (local.set $su (call $param (local.get $s) (i32.const 2)))
      (local.set $sz (call $param (local.get $s) (i32.const 3)))
      (local.set $so (call $param (local.get $s) (i32.const 5)))
      (local.set $i (i32.const 0))
      (loop $tl
        (local.set $v (f32x4.add (v128.load (local.get $so)) (f32x4.mul (local.get $skip) (v128.load (local.get $su)))))
        (if (i32.and (local.get $flags) (i32.const 2))
          (then
            (local.set $z (v128.load (local.get $sz)))
            (local.set $v (f32x4.mul (local.get $v) (f32x4.mul (local.get $z) (call $vsigmoid (local.get $z)))))))
        (v128.store (local.get $so) (local.get $v))
        (local.set $so (i32.add (local.get $so) (i32.const 16)))
        (local.set $su (i32.add (local.get $su) (i32.const 16)))
        (local.set $sz (i32.add (local.get $sz) (i32.const 16)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br_if $tl (i32.lt_u (local.get $i) (local.get $L4))))
      (call $unstage (local.get $p) (i32.const 13) (local.get $c) (call $param (local.get $s) (i32.const 5)))
      (memory.copy
        (i32.add (call $param (local.get $p) (i32.const 14)) (i32.shl (i32.mul (local.get $c) (local.get $Np)) (i32.const 2)))
        (local.get $sh) (i32.shl (local.get $Np) (i32.const 2)))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br $cl)))
  )

  ;; Backward of channels [c0, c1): du, ddelta, dz, dh0 rows; adds to the thread's accA, accD, accBias,
  ;; accB, accC (which the caller zeroes).
  (func (export "backward") (param $p i32) (param $s i32) (param $c0 i32) (param $c1 i32)
    (local $c i32) (local $L i32) (local $L4 i32) (local $Np i32) (local $nb i32) (local $Dd i32)
    (local $flags i32) (local $d i32) (local $i i32) (local $j i32) (local $su i32) (local $sz i32)
    (local $so i32) (local $sg i32) (local $sh i32) (local $sga i32) (local $sdsp i32) (local $sgdt i32)
    (local $sdu i32) (local $pA i32) (local $skip v128) (local $skipf f32) (local $v v128) (local $z v128)
    (local $sgm v128) (local $gy v128) (local $gD v128) (local $gBias v128) (local $acc i32)
    (local.set $L (call $param (local.get $p) (i32.const 0)))
    (local.set $L4 (i32.and (i32.add (local.get $L) (i32.const 3)) (i32.const -4)))
    (local.set $Np (call $param (local.get $p) (i32.const 1)))
    (local.set $nb (i32.shl (local.get $Np) (i32.const 2)))
    (local.set $Dd (call $param (local.get $p) (i32.const 2)))
    (local.set $flags (call $param (local.get $p) (i32.const 3)))
    (local.set $sh (call $param (local.get $s) (i32.const 10)))
    (local.set $sga (call $param (local.get $s) (i32.const 11)))
    (local.set $c (local.get $c0))
    (block $done (loop $cl
      (br_if $done (i32.ge_u (local.get $c) (local.get $c1)))
      (local.set $d (i32.rem_u (local.get $c) (local.get $Dd)))
      ;; dt and its derivative
      (call $stage (local.get $p) (i32.const 5) (local.get $c) (call $param (local.get $s) (i32.const 0)))
      (call $deltaPass (call $param (local.get $s) (i32.const 0)) (call $param (local.get $s) (i32.const 1)) (local.get $L4)
        (f32.load (i32.add (call $param (local.get $p) (i32.const 11)) (i32.shl (local.get $d) (i32.const 2))))
        (i32.and (local.get $flags) (i32.const 1)))
      (call $stage (local.get $p) (i32.const 4) (local.get $c) (call $param (local.get $s) (i32.const 2)))
      ;; recompute the forward, keeping h_t and a_t: hs row 0 = h = h0 row c
      (memory.copy (local.get $sh)
        (i32.add (call $param (local.get $p) (i32.const 12)) (i32.shl (i32.mul (local.get $c) (local.get $Np)) (i32.const 2)))
        (local.get $nb))
      (memory.copy (call $param (local.get $s) (i32.const 8)) (local.get $sh) (local.get $nb))
      (call $recur (local.get $p) (local.get $s) (local.get $c) (i32.const 1))
      ;; gate: out = acc + D u;  gOut = gy silu(z);  dz = gy out silu'(z);  gD += gOut u
      (local.set $skipf (f32.load (i32.add (call $param (local.get $p) (i32.const 9)) (i32.shl (local.get $d) (i32.const 2)))))
      (local.set $skip (f32x4.splat (local.get $skipf)))
      (call $stage (local.get $p) (i32.const 15) (local.get $c) (call $param (local.get $s) (i32.const 4)))
      (if (i32.and (local.get $flags) (i32.const 2))
        (then (call $stage (local.get $p) (i32.const 10) (local.get $c) (call $param (local.get $s) (i32.const 3)))))
      (local.set $su (call $param (local.get $s) (i32.const 2)))
      (local.set $sz (call $param (local.get $s) (i32.const 3)))
      (local.set $so (call $param (local.get $s) (i32.const 5)))
      (local.set $sg (call $param (local.get $s) (i32.const 4)))
      (local.set $gD (v128.const f32x4 0 0 0 0))
      (local.set $i (i32.const 0))
      (loop $tl
        (local.set $gy (v128.load (local.get $sg)))
        (if (i32.and (local.get $flags) (i32.const 2))
          (then
            (local.set $v (f32x4.add (v128.load (local.get $so)) (f32x4.mul (local.get $skip) (v128.load (local.get $su)))))
            (local.set $z (v128.load (local.get $sz)))
            (local.set $sgm (call $vsigmoid (local.get $z)))
            ;; dz = gy out sg (1 + z (1 - sg))
            (v128.store (local.get $sz) (f32x4.mul (f32x4.mul (f32x4.mul (local.get $gy) (local.get $v)) (local.get $sgm))
              (f32x4.add (v128.const f32x4 1 1 1 1)
                (f32x4.mul (local.get $z) (f32x4.sub (v128.const f32x4 1 1 1 1) (local.get $sgm))))))
            (local.set $gy (f32x4.mul (local.get $gy) (f32x4.mul (local.get $z) (local.get $sgm))))
            (v128.store (local.get $sg) (local.get $gy))))
        (local.set $gD (f32x4.add (local.get $gD) (f32x4.mul (local.get $gy) (v128.load (local.get $su)))))
        (local.set $so (i32.add (local.get $so) (i32.const 16)))
        (local.set $su (i32.add (local.get $su) (i32.const 16)))
        (local.set $sz (i32.add (local.get $sz) (i32.const 16)))
        (local.set $sg (i32.add (local.get $sg) (i32.const 16)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br_if $tl (i32.lt_u (local.get $i) (local.get $L4))))
      ;; reverse pass: h holds dL/dh_t, from gLast
      (memory.copy (local.get $sh)
        (i32.add (call $param (local.get $p) (i32.const 16)) (i32.shl (i32.mul (local.get $c) (local.get $Np)) (i32.const 2)))
        (local.get $nb))
      (memory.fill (local.get $sga) (i32.const 0) (local.get $nb))
      (local.set $sgdt (call $param (local.get $s) (i32.const 6)))
      (local.set $sdu (call $param (local.get $s) (i32.const 7)))
      (memory.fill (i32.add (local.get $sgdt) (i32.shl (local.get $L) (i32.const 2))) (i32.const 0)
        (i32.shl (i32.sub (i32.add (local.get $L4) (i32.const 4)) (local.get $L)) (i32.const 2)))
      (call $reverse (local.get $p) (local.get $s) (local.get $c) (local.get $skipf))
      ;; ddelta = ddt dsp;  dBias += ddelta
      (local.set $sgdt (call $param (local.get $s) (i32.const 6)))
      (local.set $sdsp (call $param (local.get $s) (i32.const 1)))
      (local.set $gBias (v128.const f32x4 0 0 0 0))
      (local.set $i (i32.const 0))
      (loop $tl2
        (local.set $v (f32x4.mul (v128.load (local.get $sgdt)) (v128.load (local.get $sdsp))))
        (v128.store (local.get $sgdt) (local.get $v))
        (local.set $gBias (f32x4.add (local.get $gBias) (local.get $v)))
        (local.set $sgdt (i32.add (local.get $sgdt) (i32.const 16)))
        (local.set $sdsp (i32.add (local.get $sdsp) (i32.const 16)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br_if $tl2 (i32.lt_u (local.get $i) (local.get $L4))))
      (call $unstage (local.get $p) (i32.const 17) (local.get $c) (call $param (local.get $s) (i32.const 7)))
      (call $unstage (local.get $p) (i32.const 18) (local.get $c) (call $param (local.get $s) (i32.const 6)))
      (if (i32.and (local.get $flags) (i32.const 2))
        (then (call $unstage (local.get $p) (i32.const 19) (local.get $c) (call $param (local.get $s) (i32.const 3)))))
      (memory.copy
        (i32.add (call $param (local.get $p) (i32.const 20)) (i32.shl (i32.mul (local.get $c) (local.get $Np)) (i32.const 2)))
        (local.get $sh) (local.get $nb))
      ;; per-channel parameter gradients into the thread's accumulators
      (local.set $pA (i32.add (call $param (local.get $s) (i32.const 12)) (i32.mul (local.get $d) (local.get $nb))))
      (local.set $j (i32.const 0))
      (loop $jl2
        (v128.store (i32.add (local.get $pA) (local.get $j))
          (f32x4.add (v128.load (i32.add (local.get $pA) (local.get $j))) (v128.load (i32.add (local.get $sga) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $jl2 (i32.lt_u (local.get $j) (local.get $nb))))
      (local.set $acc (i32.add (call $param (local.get $s) (i32.const 13)) (i32.shl (local.get $d) (i32.const 2))))
      (f32.store (local.get $acc) (f32.add (f32.load (local.get $acc)) (call $hsum (local.get $gD))))
      (local.set $acc (i32.add (call $param (local.get $s) (i32.const 14)) (i32.shl (local.get $d) (i32.const 2))))
      (f32.store (local.get $acc) (f32.add (f32.load (local.get $acc)) (call $hsum (local.get $gBias))))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br $cl)))
  )
