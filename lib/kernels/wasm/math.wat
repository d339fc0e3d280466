;; Vector math shared by every kernel of the kernels module (wasm/build.ts assembles math.wat, scan.wat,
;; conv.wat and decode.wat into one module over one shared memory): exp, 2^x, log1p on [0, 1], softplus,
;; sigmoid on four f32 lanes, a horizontal sum, and the params-block reader.

  ;; The functions' constants, as immutable globals: V8 rebuilds a v128.const at every use (several
  ;; instructions each, inside the kernels' hot loops), while a global is one load. The clamps use pmin
  ;; and pmax (one x86 instruction each; wasm's min and max take about six, to propagate NaN and order -0
  ;; below 0) with the same results for every input but NaN: no bound is NaN, and softplus's pmax(x, 0)
  ;; keeps x = -0, to which it then adds log 2. A NaN still gives a NaN, now with the input's bits where min
  ;; and max gave the canonical one ($vexp2 returns its input's NaN lanes either way). Together they took
  ;; the decoding recurrence from 46 to 22 us (decode.wat's ssmScan over 1,024 channels of 16 states, one
  ;; thread, this machine's EPYC; a scratch timing).
  (global $exp_hi v128 (v128.const f32x4 88.7228 88.7228 88.7228 88.7228))
  (global $exp_lo v128 (v128.const f32x4 -86.5 -86.5 -86.5 -86.5))
  (global $log2e v128 (v128.const f32x4 1.44269504088896341 1.44269504088896341 1.44269504088896341 1.44269504088896341))
  (global $ln2_hi v128 (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))
  (global $ln2_lo v128 (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))
  (global $exp_p0 v128 (v128.const f32x4 1.9875691500E-4 1.9875691500E-4 1.9875691500E-4 1.9875691500E-4))
  (global $exp_p1 v128 (v128.const f32x4 1.3981999507E-3 1.3981999507E-3 1.3981999507E-3 1.3981999507E-3))
  (global $exp_p2 v128 (v128.const f32x4 8.3334519073E-3 8.3334519073E-3 8.3334519073E-3 8.3334519073E-3))
  (global $exp_p3 v128 (v128.const f32x4 4.1665795894E-2 4.1665795894E-2 4.1665795894E-2 4.1665795894E-2))
  (global $exp_p4 v128 (v128.const f32x4 1.6666665459E-1 1.6666665459E-1 1.6666665459E-1 1.6666665459E-1))
  (global $exp_p5 v128 (v128.const f32x4 5.0000001201E-1 5.0000001201E-1 5.0000001201E-1 5.0000001201E-1))
  (global $one v128 (v128.const f32x4 1 1 1 1))
  (global $bias126 v128 (v128.const i32x4 126 126 126 126))
  (global $two v128 (v128.const f32x4 2 2 2 2))
  (global $inf v128 (v128.const f32x4 inf inf inf inf))
  (global $exp2_lo v128 (v128.const f32x4 -124.5 -124.5 -124.5 -124.5))
  (global $exp2_hi v128 (v128.const f32x4 128 128 128 128))
  (global $round_magic v128 (v128.const f32x4 12582912 12582912 12582912 12582912))
  (global $exp2_p0 v128 (v128.const f32x4 1.535336188319500E-4 1.535336188319500E-4 1.535336188319500E-4 1.535336188319500E-4))
  (global $exp2_p1 v128 (v128.const f32x4 1.339887440266574E-3 1.339887440266574E-3 1.339887440266574E-3 1.339887440266574E-3))
  (global $exp2_p2 v128 (v128.const f32x4 9.618437357674640E-3 9.618437357674640E-3 9.618437357674640E-3 9.618437357674640E-3))
  (global $exp2_p3 v128 (v128.const f32x4 5.550332471162809E-2 5.550332471162809E-2 5.550332471162809E-2 5.550332471162809E-2))
  (global $exp2_p4 v128 (v128.const f32x4 2.402264791363012E-1 2.402264791363012E-1 2.402264791363012E-1 2.402264791363012E-1))
  (global $exp2_p5 v128 (v128.const f32x4 6.931472028550421E-1 6.931472028550421E-1 6.931472028550421E-1 6.931472028550421E-1))
  (global $minus_2p23 v128 (v128.const i32x4 -8388608 -8388608 -8388608 -8388608))
  (global $inv13 v128 (v128.const f32x4 0.0769230769 0.0769230769 0.0769230769 0.0769230769))
  (global $inv11 v128 (v128.const f32x4 0.0909090909 0.0909090909 0.0909090909 0.0909090909))
  (global $inv9 v128 (v128.const f32x4 0.1111111111 0.1111111111 0.1111111111 0.1111111111))
  (global $inv7 v128 (v128.const f32x4 0.1428571429 0.1428571429 0.1428571429 0.1428571429))
  (global $inv5 v128 (v128.const f32x4 0.2 0.2 0.2 0.2))
  (global $inv3 v128 (v128.const f32x4 0.3333333333 0.3333333333 0.3333333333 0.3333333333))
  (global $zero v128 (v128.const f32x4 0 0 0 0))

  ;; exp(x) on four lanes: x = n ln2 + r with n = round(x / ln2), |r| <= ln2 / 2 (Cody-Waite two-constant
  ;; reduction), exp(r) by Cephes' degree-7 minimax polynomial (expf), times 2^n built in the exponent bits
  ;; as 2^(n-1) * 2 so that n = 128 works. Lanes with x < -86.5 give 0 (exp(-86.5) = 2.7e-38, just above
  ;; FLT_MIN: denormal results are flushed); lanes with x > 88.7228 give +inf; NaN stays NaN.
  ;; Error: at most 1 ulp from the correctly rounded float32 result over [-86.5, 88.7] (measured on 2^20
  ;; points with FMA; tests/scan_kernels_test.ts allows 2 ulp, for CPUs where relaxed_madd does not fuse).
  (func $vexp (param $x v128) (result v128)
    (local $xc v128) (local $n v128) (local $r v128) (local $p v128)
    (local.set $xc (f32x4.pmax
      (f32x4.pmin (local.get $x) (global.get $exp_hi))
      (global.get $exp_lo)))
    (local.set $n (f32x4.nearest (f32x4.mul (local.get $xc)
      (global.get $log2e))))
    ;; r = x - n * 0.693359375 - n * -2.12194440e-4
    (local.set $r (f32x4.sub
      (f32x4.sub (local.get $xc) (f32x4.mul (local.get $n) (global.get $ln2_hi)))
      (f32x4.mul (local.get $n) (global.get $ln2_lo))))
    (local.set $p (global.get $exp_p0))
    (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r)
      (global.get $exp_p1)))
    (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r)
      (global.get $exp_p2)))
    (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r)
      (global.get $exp_p3)))
    (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r)
      (global.get $exp_p4)))
    (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r)
      (global.get $exp_p5)))
    ;; p = p r^2 + r + 1
    (local.set $p (f32x4.add
      (f32x4.add (f32x4.mul (local.get $p) (f32x4.mul (local.get $r) (local.get $r))) (local.get $r))
      (global.get $one)))
    ;; * 2^(n-1) (exponent field n + 126, in [1, 254] for n in [-125, 128]) * 2
    (local.set $p (f32x4.mul
      (f32x4.mul (local.get $p)
        (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $n)) (global.get $bias126)) (i32.const 23)))
      (global.get $two)))
    ;; underflow to 0, overflow to +inf (comparisons are false for NaN, which passes through)
    (local.set $p (v128.andnot (local.get $p)
      (f32x4.lt (local.get $x) (global.get $exp_lo))))
    (v128.bitselect (global.get $inf) (local.get $p)
      (f32x4.gt (local.get $x) (global.get $exp_hi)))
  )

  ;; 2^x on four lanes, for the recurrence's decays a = exp(dt A) = 2^(dt (A log2 e)) with A log2 e staged
  ;; by wasm/scan.ts: x = n + r with n = round(x) (exact), 2^r on |r| <= 1/2 by Cephes' exp2f polynomial
  ;; (degree 6; Horner steps by relaxed_madd), times 2^(n-1) added into the exponent bits, times 2. Lanes with
  ;; x < -124.5 give 0 (2^-124.5 = 2.5e-38: denormal results are flushed); x >= 128 gives +inf; NaN stays NaN.
  ;; Error: at most 1 ulp from the correctly rounded 2^x (measured as for $vexp; tests allow 2). As exp(dt A),
  ;; the float32 product dt (A log2 e) adds a relative error up to |dt A| * 1.2e-7 (as dt A itself does).
  (func $vexp2 (param $x v128) (result v128)
    (local $xc v128) (local $t v128) (local $r v128) (local $p v128)
    (local.set $xc (f32x4.pmin
      (f32x4.pmax (local.get $x) (global.get $exp2_lo))
      (global.get $exp2_hi)))
    ;; t = xc + 1.5 * 2^23: round(xc) in the low mantissa bits; r = xc - round(xc)
    (local.set $t (f32x4.add (local.get $xc) (global.get $round_magic)))
    (local.set $r (f32x4.sub (local.get $xc)
      (f32x4.sub (local.get $t) (global.get $round_magic))))
    (local.set $p (global.get $exp2_p0))
    (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r)
      (global.get $exp2_p1)))
    (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r)
      (global.get $exp2_p2)))
    (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r)
      (global.get $exp2_p3)))
    (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r)
      (global.get $exp2_p4)))
    (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r)
      (global.get $exp2_p5)))
    (local.set $p (f32x4.relaxed_madd (local.get $p) (local.get $r) (global.get $one)))
    ;; * 2^(n-1): (t << 23) is n << 23 (the bits of 1.5 * 2^23 shift out); exponent field stays in [1, 254]
    (local.set $p (f32x4.mul
      (i32x4.add (local.get $p)
        (i32x4.add (i32x4.shl (local.get $t) (i32.const 23)) (global.get $minus_2p23)))
      (global.get $two)))
    (local.set $p (v128.andnot (local.get $p)
      (f32x4.lt (local.get $x) (global.get $exp2_lo))))
    ;; NaN lanes: x itself
    (v128.bitselect (local.get $x) (local.get $p) (f32x4.ne (local.get $x) (local.get $x)))
  )

  ;; log1p(e) for lanes e in [0, 1]: 2 atanh(s) with s = e / (2 + e) in [0, 1/3], by its series to s^13
  ;; (truncation error < 1.5e-8 relative).
  (func $vlog1p01 (param $e v128) (result v128)
    (local $s v128) (local $s2 v128) (local $q v128)
    (local.set $s (f32x4.div (local.get $e) (f32x4.add (local.get $e) (global.get $two))))
    (local.set $s2 (f32x4.mul (local.get $s) (local.get $s)))
    (local.set $q (global.get $inv13)) ;; 1/13
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $s2))
      (global.get $inv11))) ;; 1/11
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $s2))
      (global.get $inv9))) ;; 1/9
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $s2))
      (global.get $inv7))) ;; 1/7
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $s2))
      (global.get $inv5))) ;; 1/5
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $s2))
      (global.get $inv3))) ;; 1/3
    (local.set $q (f32x4.add (f32x4.mul (local.get $q) (local.get $s2)) (global.get $one)))
    (f32x4.mul (f32x4.add (local.get $s) (local.get $s)) (local.get $q))
  )

  ;; softplus(x) = max(x, 0) + log1p(exp(-|x|)): equals PyTorch's (linear above 20) in float32, since there
  ;; log1p(exp(-x)) < 2.1e-9 is below half an ulp of x. Error: at most 3 ulp (measured; tests allow 4).
  (func $vsoftplus (param $x v128) (result v128)
    (f32x4.add (f32x4.pmax (local.get $x) (global.get $zero))
      (call $vlog1p01 (call $vexp (f32x4.neg (f32x4.abs (local.get $x))))))
  )

  ;; 1 / (1 + exp(-x)): at most 2 ulp (measured; tests allow 3).
  (func $vsigmoid (param $x v128) (result v128)
    (f32x4.div (global.get $one)
      (f32x4.add (global.get $one) (call $vexp (f32x4.neg (local.get $x)))))
  )

  ;; sum of the four lanes
  (func $hsum (param $v v128) (result f32)
    (local.set $v (f32x4.add (local.get $v)
      (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
    (local.set $v (f32x4.add (local.get $v)
      (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 (local.get $v) (local.get $v))))
    (f32x4.extract_lane 0 (local.get $v))
  )

  (func $param (param $p i32) (param $k i32) (result i32)
    (i32.load (i32.add (local.get $p) (i32.shl (local.get $k) (i32.const 2))))
  )


  ;; For tests: dst[i] = f(src[i]), i < n (a multiple of 4); f: 0 exp, 1 exp2, 2 softplus, 3 sigmoid.
  (func $map (export "map") (param $f i32) (param $src i32) (param $dst i32) (param $n i32)
    (local $i i32) (local $x v128)
    (loop $l
      (local.set $x (v128.load (local.get $src)))
      (v128.store (local.get $dst)
        (if (result v128) (i32.eqz (local.get $f)) (then (call $vexp (local.get $x)))
          (else (if (result v128) (i32.eq (local.get $f) (i32.const 1)) (then (call $vexp2 (local.get $x)))
            (else (if (result v128) (i32.eq (local.get $f) (i32.const 2)) (then (call $vsoftplus (local.get $x)))
              (else (call $vsigmoid (local.get $x)))))))))
      (local.set $src (i32.add (local.get $src) (i32.const 16)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
  )

