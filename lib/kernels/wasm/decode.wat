;; Batch-1 decoding kernels (decode.ts binds them for lib/decode/stepper.ts): a few bytes at a time
;; through one layer. Part of the kernels module (see math.wat).

  ;; y[o] = sum_i W[o, i] x[i] for o < rows: W (rows, cols) row-major, cols a multiple of 8. Per row two
  ;; f32x4 accumulators (columns 8q..8q+3 and 8q+4..8q+7), added, then $hsum; mul then add (no fused
  ;; multiply-add), so the result does not depend on the CPU.
  (func $mv (export "mv") (param $W i32) (param $x i32) (param $y i32) (param $rows i32) (param $cols i32)
    (local $bytes i32) (local $i i32) (local $a0 v128) (local $a1 v128)
    (local.set $bytes (i32.shl (local.get $cols) (i32.const 2)))
    (block $done (loop $row
      (br_if $done (i32.eqz (local.get $rows)))
      (local.set $a0 (v128.const i32x4 0 0 0 0))
      (local.set $a1 (v128.const i32x4 0 0 0 0))
      (local.set $i (i32.const 0))
      (loop $col
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
          (v128.load (i32.add (local.get $W) (local.get $i))) (v128.load (i32.add (local.get $x) (local.get $i))))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul
          (v128.load offset=16 (i32.add (local.get $W) (local.get $i)))
          (v128.load offset=16 (i32.add (local.get $x) (local.get $i))))))
        (local.set $i (i32.add (local.get $i) (i32.const 32)))
        (br_if $col (i32.lt_u (local.get $i) (local.get $bytes))))
      (f32.store (local.get $y) (call $hsum (f32x4.add (local.get $a0) (local.get $a1))))
      (local.set $W (i32.add (local.get $W) (local.get $bytes)))
      (local.set $y (i32.add (local.get $y) (i32.const 4)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $row)))
  )

  ;; mv for four vectors at once: x_t at x + t xs, y_t at y + t ys (byte strides). Each row of W is loaded
  ;; once for the four products (a matrix-vector product streams W from memory; this reads it a quarter as
  ;; often), and each y_t[o] is computed with exactly mv's operations in mv's order, so it is bit for bit
  ;; mv's result: a pass over several bytes gives the logits of byte-at-a-time steps.
  (func (export "mv4") (param $W i32) (param $x i32) (param $xs i32) (param $y i32) (param $ys i32)
    (param $rows i32) (param $cols i32)
    (local $bytes i32) (local $i i32) (local $x1 i32) (local $x2 i32) (local $x3 i32) (local $w0 v128) (local $w1 v128)
    (local $a0 v128) (local $a1 v128) (local $b0 v128) (local $b1 v128)
    (local $c0 v128) (local $c1 v128) (local $d0 v128) (local $d1 v128)
    (local.set $bytes (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $x1 (i32.add (local.get $x) (local.get $xs)))
    (local.set $x2 (i32.add (local.get $x1) (local.get $xs)))
    (local.set $x3 (i32.add (local.get $x2) (local.get $xs)))
    (block $done (loop $row
      (br_if $done (i32.eqz (local.get $rows)))
      (local.set $a0 (v128.const i32x4 0 0 0 0)) (local.set $a1 (v128.const i32x4 0 0 0 0))
      (local.set $b0 (v128.const i32x4 0 0 0 0)) (local.set $b1 (v128.const i32x4 0 0 0 0))
      (local.set $c0 (v128.const i32x4 0 0 0 0)) (local.set $c1 (v128.const i32x4 0 0 0 0))
      (local.set $d0 (v128.const i32x4 0 0 0 0)) (local.set $d1 (v128.const i32x4 0 0 0 0))
      (local.set $i (i32.const 0))
      (loop $col
        (local.set $w0 (v128.load (i32.add (local.get $W) (local.get $i))))
        (local.set $w1 (v128.load offset=16 (i32.add (local.get $W) (local.get $i))))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $w0) (v128.load (i32.add (local.get $x) (local.get $i))))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x) (local.get $i))))))
        (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (local.get $w0) (v128.load (i32.add (local.get $x1) (local.get $i))))))
        (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x1) (local.get $i))))))
        (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (local.get $w0) (v128.load (i32.add (local.get $x2) (local.get $i))))))
        (local.set $c1 (f32x4.add (local.get $c1) (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x2) (local.get $i))))))
        (local.set $d0 (f32x4.add (local.get $d0) (f32x4.mul (local.get $w0) (v128.load (i32.add (local.get $x3) (local.get $i))))))
        (local.set $d1 (f32x4.add (local.get $d1) (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x3) (local.get $i))))))
        (local.set $i (i32.add (local.get $i) (i32.const 32)))
        (br_if $col (i32.lt_u (local.get $i) (local.get $bytes))))
      (f32.store (local.get $y) (call $hsum (f32x4.add (local.get $a0) (local.get $a1))))
      (f32.store (i32.add (local.get $y) (local.get $ys)) (call $hsum (f32x4.add (local.get $b0) (local.get $b1))))
      (f32.store (i32.add (local.get $y) (i32.shl (local.get $ys) (i32.const 1))) (call $hsum (f32x4.add (local.get $c0) (local.get $c1))))
      (f32.store (i32.add (local.get $y) (i32.mul (local.get $ys) (i32.const 3))) (call $hsum (f32x4.add (local.get $d0) (local.get $d1))))
      (local.set $W (i32.add (local.get $W) (local.get $bytes)))
      (local.set $y (i32.add (local.get $y) (i32.const 4)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $row)))
  )

  ;; The recurrence for one byte over e channels of n states (n a multiple of 4), as in $recur:
  ;;   h[c] = 2^(dt[c] A2[c]) * hOld[c] + (dt[c] x[c]) B ;   s[c] = <h[c], C>
  ;; hOld, h, A2 = A log2 e: (e, n); dt, x, s: (e); B, C: (n). The caller adds D x and the gate.
  (func (export "ssmStep") (param $hOld i32) (param $h i32) (param $A2 i32) (param $dt i32) (param $x i32)
    (param $B i32) (param $C i32) (param $s i32) (param $e i32) (param $n i32)
    (local $nb i32) (local $j i32) (local $dtv v128) (local $dxv v128) (local $acc v128) (local $v v128)
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (block $done (loop $ch
      (br_if $done (i32.eqz (local.get $e)))
      (local.set $dtv (f32x4.splat (f32.load (local.get $dt))))
      (local.set $dxv (f32x4.splat (f32.mul (f32.load (local.get $dt)) (f32.load (local.get $x)))))
      (local.set $acc (v128.const i32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (loop $st
        (local.set $v (f32x4.add
          (f32x4.mul (call $vexp2 (f32x4.mul (local.get $dtv) (v128.load (i32.add (local.get $A2) (local.get $j)))))
            (v128.load (i32.add (local.get $hOld) (local.get $j))))
          (f32x4.mul (local.get $dxv) (v128.load (i32.add (local.get $B) (local.get $j))))))
        (v128.store (i32.add (local.get $h) (local.get $j)) (local.get $v))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $v) (v128.load (i32.add (local.get $C) (local.get $j))))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $st (i32.lt_u (local.get $j) (local.get $nb))))
      (f32.store (local.get $s) (call $hsum (local.get $acc)))
      (local.set $hOld (i32.add (local.get $hOld) (local.get $nb)))
      (local.set $h (i32.add (local.get $h) (local.get $nb)))
      (local.set $A2 (i32.add (local.get $A2) (local.get $nb)))
      (local.set $dt (i32.add (local.get $dt) (i32.const 4)))
      (local.set $x (i32.add (local.get $x) (i32.const 4)))
      (local.set $s (i32.add (local.get $s) (i32.const 4)))
      (local.set $e (i32.sub (local.get $e) (i32.const 1)))
      (br $ch)))
  )

  ;; SiLU over rows, the gates of a step or a prefill: for t < T, c < e (a multiple of 4),
  ;;   s = x[t, c] sigmoid(x[t, c]) ;  mul 0: y[t, c] = s ;  mul 1: y[t, c] = y[t, c] s
  ;; x's and y's rows xs and ys bytes apart (y = x: in place). Rows are independent: threads split them.
  (func $siluRows (export "siluRows") (param $x i32) (param $xs i32) (param $y i32) (param $ys i32) (param $e i32)
    (param $T i32) (param $mul i32)
    (local $c i32) (local $eb i32) (local $v v128) (local $s v128)
    (local.set $eb (i32.shl (local.get $e) (i32.const 2)))
    (block $done (loop $row
      (br_if $done (i32.eqz (local.get $T)))
      (local.set $c (i32.const 0))
      (loop $col
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $c))))
        (local.set $s (f32x4.mul (local.get $v) (call $vsigmoid (local.get $v))))
        (v128.store (i32.add (local.get $y) (local.get $c))
          (if (result v128) (local.get $mul)
            (then (f32x4.mul (v128.load (i32.add (local.get $y) (local.get $c))) (local.get $s)))
            (else (local.get $s))))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (br_if $col (i32.lt_u (local.get $c) (local.get $eb))))
      (local.set $x (i32.add (local.get $x) (local.get $xs)))
      (local.set $y (i32.add (local.get $y) (local.get $ys)))
      (local.set $T (i32.sub (local.get $T) (i32.const 1)))
      (br $row)))
  )

;; The causal conv of a prefill (k = 4 taps) for a range of channels, two at a time (chans even): for each
  ;; t, a channel's window (oldest first) shifts left by one and takes x[t, c], and
  ;;   y[t, c] = bias[c] + window[1] w[c, 0] + window[2] w[c, 1] + window[3] w[c, 2] + x[t, c] w[c, 3]
  ;; with window[j] the values before the shift, in that order, in doubles (the float32 products are exact
  ;; there), rounded to float32 once: the stepper's JavaScript conv bit for bit. The windows (chans, 4) are
  ;; read at the start and written back at the end; w (chans, 4); bias (chans) when useBias; x's and y's
  ;; rows xs and ys bytes apart. The channels are independent, so threads split them.
  (func $convRows (export "convRows") (param $x i32) (param $xs i32) (param $y i32) (param $ys i32) (param $win i32)
    (param $w i32) (param $bias i32) (param $useBias i32) (param $chans i32) (param $T i32)
    (local $t i32) (local $xo i32) (local $yo i32)
    (local $h0 v128) (local $h1 v128) (local $h2 v128) (local $h3 v128)
    (local $k0 v128) (local $k1 v128) (local $k2 v128) (local $k3 v128) (local $b v128) (local $v v128)
    (local $s v128)
    (block $done (loop $pair
      (br_if $done (i32.lt_s (local.get $chans) (i32.const 2)))
      ;; the two channels' taps j as (c, c + 1) in doubles: floats j and 4 + j of the (2, 4) block
      (local.set $h0 (call $pairAt (local.get $win) (i32.const 0)))
      (local.set $h1 (call $pairAt (local.get $win) (i32.const 4)))
      (local.set $h2 (call $pairAt (local.get $win) (i32.const 8)))
      (local.set $h3 (call $pairAt (local.get $win) (i32.const 12)))
      (local.set $k0 (call $pairAt (local.get $w) (i32.const 0)))
      (local.set $k1 (call $pairAt (local.get $w) (i32.const 4)))
      (local.set $k2 (call $pairAt (local.get $w) (i32.const 8)))
      (local.set $k3 (call $pairAt (local.get $w) (i32.const 12)))
      (local.set $b (if (result v128) (local.get $useBias)
        (then (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $bias))))
        (else (v128.const f64x2 0 0))))
      (local.set $t (i32.const 0))
      (local.set $xo (local.get $x))
      (local.set $yo (local.get $y))
      (block $tdone (loop $time
        (br_if $tdone (i32.ge_u (local.get $t) (local.get $T)))
        (local.set $v (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $xo))))
        (local.set $s (f64x2.add (local.get $b) (f64x2.mul (local.get $h1) (local.get $k0))))
        (local.set $s (f64x2.add (local.get $s) (f64x2.mul (local.get $h2) (local.get $k1))))
        (local.set $s (f64x2.add (local.get $s) (f64x2.mul (local.get $h3) (local.get $k2))))
        (local.set $s (f64x2.add (local.get $s) (f64x2.mul (local.get $v) (local.get $k3))))
        (v128.store64_lane 0 (local.get $yo) (f32x4.demote_f64x2_zero (local.get $s)))
        (local.set $h0 (local.get $h1))
        (local.set $h1 (local.get $h2))
        (local.set $h2 (local.get $h3))
        (local.set $h3 (local.get $v))
        (local.set $xo (i32.add (local.get $xo) (local.get $xs)))
        (local.set $yo (i32.add (local.get $yo) (local.get $ys)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $time)))
      ;; the windows back, (2, 4) floats (exact: every value came from a float32)
      (call $pairTo (local.get $win) (i32.const 0) (local.get $h0))
      (call $pairTo (local.get $win) (i32.const 4) (local.get $h1))
      (call $pairTo (local.get $win) (i32.const 8) (local.get $h2))
      (call $pairTo (local.get $win) (i32.const 12) (local.get $h3))
      (local.set $x (i32.add (local.get $x) (i32.const 8)))
      (local.set $y (i32.add (local.get $y) (i32.const 8)))
      (local.set $win (i32.add (local.get $win) (i32.const 32)))
      (local.set $w (i32.add (local.get $w) (i32.const 32)))
      (local.set $bias (i32.add (local.get $bias) (i32.const 8)))
      (local.set $chans (i32.sub (local.get $chans) (i32.const 2)))
      (br $pair)))
  )
  ;; (p[j], p[4 + j]) as two doubles, j a byte offset (floats j / 4 and 4 + j / 4 of a (2, 4) block at p)
  (func $pairAt (param $p i32) (param $j i32) (result v128)
    (f64x2.replace_lane 1
      (f64x2.splat (f64.promote_f32 (f32.load (i32.add (local.get $p) (local.get $j)))))
      (f64.promote_f32 (f32.load offset=16 (i32.add (local.get $p) (local.get $j)))))
  )
  ;; $pairAt's inverse: the two doubles rounded to float32 at p + j and p + j + 16
  (func $pairTo (param $p i32) (param $j i32) (param $v v128)
    (f32.store (i32.add (local.get $p) (local.get $j)) (f32.demote_f64 (f64x2.extract_lane 0 (local.get $v))))
    (f32.store offset=16 (i32.add (local.get $p) (local.get $j))
      (f32.demote_f64 (f64x2.extract_lane 1 (local.get $v))))
  )

;; The recurrence over T bytes for a range of channels (a prefill): for each channel c, for t = 0..T-1,
  ;;   h[c] = 2^(dt[t, c] A2[c]) * h[c] + (dt[t, c] x[t, c]) B[t] ;   y[t, c] = <h[c], C[t]>
  ;; with ssmStep's operations in its order (a prefill's state and outputs are the steps' bit for bit). The
  ;; channels are independent, so threads split them; each channel's state stays in cache across the T
  ;; bytes. h (chans, n) is updated in place; dt, x, y are (T, .) with rows es bytes apart; B[t] at
  ;; BC + t ws and C[t] at BC + t ws + 4n (xDbl's rows).
  (func $ssmScan (export "ssmScan") (param $h i32) (param $A2 i32) (param $dt i32) (param $x i32) (param $y i32)
    (param $BC i32) (param $chans i32) (param $n i32) (param $T i32) (param $es i32) (param $ws i32)
    (local $nb i32) (local $t i32) (local $j i32) (local $ro i32) (local $bc i32) (local $dtv v128)
    (local $dxv v128) (local $acc v128) (local $v v128)
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (block $done (loop $ch
      (br_if $done (i32.eqz (local.get $chans)))
      (local.set $t (i32.const 0))
      (local.set $ro (i32.const 0))
      (local.set $bc (local.get $BC))
      (loop $time
        (local.set $dtv (f32x4.splat (f32.load (i32.add (local.get $dt) (local.get $ro)))))
        (local.set $dxv (f32x4.splat (f32.mul (f32.load (i32.add (local.get $dt) (local.get $ro)))
          (f32.load (i32.add (local.get $x) (local.get $ro))))))
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        (loop $st
          (local.set $v (f32x4.add
            (f32x4.mul (call $vexp2 (f32x4.mul (local.get $dtv) (v128.load (i32.add (local.get $A2) (local.get $j)))))
              (v128.load (i32.add (local.get $h) (local.get $j))))
            (f32x4.mul (local.get $dxv) (v128.load (i32.add (local.get $bc) (local.get $j))))))
          (v128.store (i32.add (local.get $h) (local.get $j)) (local.get $v))
          (local.set $acc (f32x4.add (local.get $acc)
            (f32x4.mul (local.get $v) (v128.load (i32.add (i32.add (local.get $bc) (local.get $nb)) (local.get $j))))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br_if $st (i32.lt_u (local.get $j) (local.get $nb))))
        (f32.store (i32.add (local.get $y) (local.get $ro)) (call $hsum (local.get $acc)))
        (local.set $ro (i32.add (local.get $ro) (local.get $es)))
        (local.set $bc (i32.add (local.get $bc) (local.get $ws)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br_if $time (i32.lt_u (local.get $t) (local.get $T))))
      (local.set $h (i32.add (local.get $h) (local.get $nb)))
      (local.set $A2 (i32.add (local.get $A2) (local.get $nb)))
      (local.set $dt (i32.add (local.get $dt) (i32.const 4)))
      (local.set $x (i32.add (local.get $x) (i32.const 4)))
      (local.set $y (i32.add (local.get $y) (i32.const 4)))
      (local.set $chans (i32.sub (local.get $chans) (i32.const 1)))
      (br $ch)))
  )

    ;; ---- Decoding with compressed weights (the stepper's --weights bf16 | int8) ----

  ;; mv with W in bfloat16 (the top 16 bits of each float32, row-major, cols a multiple of 8): each
  ;; 16-byte load is widened to two f32x4 by interleaving its 16-bit words with zeros (exact; one unpack
  ;; instruction each), then the same
  ;; operations as mv, so the result is mv's on the widened weights.
  (func $mvBf16 (export "mvBf16") (param $W i32) (param $x i32) (param $y i32) (param $rows i32) (param $cols i32)
    (local $bytes i32) (local $i i32) (local $w v128) (local $a0 v128) (local $a1 v128)
    (local.set $bytes (i32.shl (local.get $cols) (i32.const 1)))
    (block $done (loop $row
      (br_if $done (i32.eqz (local.get $rows)))
      (local.set $a0 (v128.const i32x4 0 0 0 0))
      (local.set $a1 (v128.const i32x4 0 0 0 0))
      (local.set $i (i32.const 0))
      (loop $col
        (local.set $w (v128.load (i32.add (local.get $W) (local.get $i))))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
          (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 (v128.const i32x4 0 0 0 0) (local.get $w))
          (v128.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 1)))))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul
          (i8x16.shuffle 8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31 (v128.const i32x4 0 0 0 0) (local.get $w))
          (v128.load offset=16 (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 1)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br_if $col (i32.lt_u (local.get $i) (local.get $bytes))))
      (f32.store (local.get $y) (call $hsum (f32x4.add (local.get $a0) (local.get $a1))))
      (local.set $W (i32.add (local.get $W) (local.get $bytes)))
      (local.set $y (i32.add (local.get $y) (i32.const 4)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $row)))
  )

  ;; mvBf16 for four vectors at once (strides as in mv4): each row of W is loaded and widened once for the
  ;; four products; each y_t[o] is mvBf16's result bit for bit.
  (func (export "mv4Bf16") (param $W i32) (param $x i32) (param $xs i32) (param $y i32) (param $ys i32)
    (param $rows i32) (param $cols i32)
    (local $bytes i32) (local $i i32) (local $j i32) (local $x1 i32) (local $x2 i32) (local $x3 i32)
    (local $w v128) (local $w0 v128) (local $w1 v128)
    (local $a0 v128) (local $a1 v128) (local $b0 v128) (local $b1 v128)
    (local $c0 v128) (local $c1 v128) (local $d0 v128) (local $d1 v128)
    (local.set $bytes (i32.shl (local.get $cols) (i32.const 1)))
    (local.set $x1 (i32.add (local.get $x) (local.get $xs)))
    (local.set $x2 (i32.add (local.get $x1) (local.get $xs)))
    (local.set $x3 (i32.add (local.get $x2) (local.get $xs)))
    (block $done (loop $row
      (br_if $done (i32.eqz (local.get $rows)))
      (local.set $a0 (v128.const i32x4 0 0 0 0)) (local.set $a1 (v128.const i32x4 0 0 0 0))
      (local.set $b0 (v128.const i32x4 0 0 0 0)) (local.set $b1 (v128.const i32x4 0 0 0 0))
      (local.set $c0 (v128.const i32x4 0 0 0 0)) (local.set $c1 (v128.const i32x4 0 0 0 0))
      (local.set $d0 (v128.const i32x4 0 0 0 0)) (local.set $d1 (v128.const i32x4 0 0 0 0))
      (local.set $i (i32.const 0))
      (loop $col
        (local.set $w (v128.load (i32.add (local.get $W) (local.get $i))))
        (local.set $w0 (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 (v128.const i32x4 0 0 0 0) (local.get $w)))
        (local.set $w1 (i8x16.shuffle 8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31 (v128.const i32x4 0 0 0 0) (local.get $w)))
        (local.set $j (i32.shl (local.get $i) (i32.const 1)))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $w0) (v128.load (i32.add (local.get $x) (local.get $j))))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x) (local.get $j))))))
        (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (local.get $w0) (v128.load (i32.add (local.get $x1) (local.get $j))))))
        (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x1) (local.get $j))))))
        (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (local.get $w0) (v128.load (i32.add (local.get $x2) (local.get $j))))))
        (local.set $c1 (f32x4.add (local.get $c1) (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x2) (local.get $j))))))
        (local.set $d0 (f32x4.add (local.get $d0) (f32x4.mul (local.get $w0) (v128.load (i32.add (local.get $x3) (local.get $j))))))
        (local.set $d1 (f32x4.add (local.get $d1) (f32x4.mul (local.get $w1) (v128.load offset=16 (i32.add (local.get $x3) (local.get $j))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br_if $col (i32.lt_u (local.get $i) (local.get $bytes))))
      (f32.store (local.get $y) (call $hsum (f32x4.add (local.get $a0) (local.get $a1))))
      (f32.store (i32.add (local.get $y) (local.get $ys)) (call $hsum (f32x4.add (local.get $b0) (local.get $b1))))
      (f32.store (i32.add (local.get $y) (i32.shl (local.get $ys) (i32.const 1))) (call $hsum (f32x4.add (local.get $c0) (local.get $c1))))
      (f32.store (i32.add (local.get $y) (i32.mul (local.get $ys) (i32.const 3))) (call $hsum (f32x4.add (local.get $d0) (local.get $d1))))
      (local.set $W (i32.add (local.get $W) (local.get $bytes)))
      (local.set $y (i32.add (local.get $y) (i32.const 4)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $row)))
  )

  ;; y[o] = sum_b S[o, b] * sum_{i in block b} Wq[o, i] xq[i]: W in int8 with one float32 scale per row and
  ;; block of 64 columns (Wq (rows, cols) row-major, S (rows, cols / 64)), x in int16 (its scale is applied
  ;; by the caller). The products of a block are summed exactly in integers (|w| <= 127, |x| <= 32767:
  ;; a block's sum stays below 2^28), converted once, and scaled. Each half block (32 columns) is loaded and
  ;; widened to four i16x8 once; everything is written inline (a call would spill the SIMD registers).
  (func $mvQ8 (export "mvQ8") (param $W i32) (param $S i32) (param $x i32) (param $y i32) (param $rows i32)
    (param $cols i32)
    (local $i i32) (local $xi i32) (local $w v128) (local $e0 v128) (local $e1 v128) (local $e2 v128)
    (local $e3 v128) (local $ia v128) (local $acc v128)
    (block $done (loop $row
      (br_if $done (i32.eqz (local.get $rows)))
      (local.set $acc (v128.const i32x4 0 0 0 0))
      (local.set $i (i32.const 0))
      (loop $block
        (local.set $xi (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 1))))
        (local.set $w (v128.load offset=0 (i32.add (local.get $W) (local.get $i))))
        (local.set $e0 (i16x8.extend_low_i8x16_s (local.get $w)))
        (local.set $e1 (i16x8.extend_high_i8x16_s (local.get $w)))
        (local.set $w (v128.load offset=16 (i32.add (local.get $W) (local.get $i))))
        (local.set $e2 (i16x8.extend_low_i8x16_s (local.get $w)))
        (local.set $e3 (i16x8.extend_high_i8x16_s (local.get $w)))
        (local.set $ia (i32x4.add (i32x4.add (i32x4.dot_i16x8_s (local.get $e0) (v128.load offset=0 (local.get $xi))) (i32x4.dot_i16x8_s (local.get $e1) (v128.load offset=16 (local.get $xi)))) (i32x4.add (i32x4.dot_i16x8_s (local.get $e2) (v128.load offset=32 (local.get $xi))) (i32x4.dot_i16x8_s (local.get $e3) (v128.load offset=48 (local.get $xi))))))
        (local.set $w (v128.load offset=32 (i32.add (local.get $W) (local.get $i))))
        (local.set $e0 (i16x8.extend_low_i8x16_s (local.get $w)))
        (local.set $e1 (i16x8.extend_high_i8x16_s (local.get $w)))
        (local.set $w (v128.load offset=48 (i32.add (local.get $W) (local.get $i))))
        (local.set $e2 (i16x8.extend_low_i8x16_s (local.get $w)))
        (local.set $e3 (i16x8.extend_high_i8x16_s (local.get $w)))
        (local.set $ia (i32x4.add (local.get $ia) (i32x4.add (i32x4.add (i32x4.dot_i16x8_s (local.get $e0) (v128.load offset=64 (local.get $xi))) (i32x4.dot_i16x8_s (local.get $e1) (v128.load offset=80 (local.get $xi)))) (i32x4.add (i32x4.dot_i16x8_s (local.get $e2) (v128.load offset=96 (local.get $xi))) (i32x4.dot_i16x8_s (local.get $e3) (v128.load offset=112 (local.get $xi)))))))
        (local.set $acc (f32x4.add (local.get $acc)
          (f32x4.mul (f32x4.convert_i32x4_s (local.get $ia)) (v128.load32_splat (local.get $S)))))
        (local.set $S (i32.add (local.get $S) (i32.const 4)))
        (local.set $i (i32.add (local.get $i) (i32.const 64)))
        (br_if $block (i32.lt_u (local.get $i) (local.get $cols))))
      (f32.store (local.get $y) (call $hsum (local.get $acc)))
      (local.set $W (i32.add (local.get $W) (local.get $cols)))
      (local.set $y (i32.add (local.get $y) (i32.const 4)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $row)))
  )

  ;; mvQ8 for four int16 vectors at once: x_t at x + t xs, y_t at y + t ys (byte strides). Each half block
  ;; of W is loaded and widened once for the four; each y_t[o] is mvQ8's result bit for bit (integer sums
  ;; are exact, and the float operations are mvQ8's, in its order).
  (func (export "mv4Q8") (param $W i32) (param $S i32) (param $x i32) (param $xs i32) (param $y i32)
    (param $ys i32) (param $rows i32) (param $cols i32)
    (local $i i32) (local $x0 i32) (local $x1 i32) (local $x2 i32) (local $x3 i32) (local $w v128)
    (local $e0 v128) (local $e1 v128) (local $e2 v128) (local $e3 v128)
    (local $ia v128) (local $ib v128) (local $ic v128) (local $id v128) (local $s v128)
    (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (block $done (loop $row
      (br_if $done (i32.eqz (local.get $rows)))
      (local.set $a (v128.const i32x4 0 0 0 0)) (local.set $b (v128.const i32x4 0 0 0 0))
      (local.set $c (v128.const i32x4 0 0 0 0)) (local.set $d (v128.const i32x4 0 0 0 0))
      (local.set $i (i32.const 0))
      (loop $block
        (local.set $x0 (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 1))))
        (local.set $x1 (i32.add (local.get $x0) (local.get $xs)))
        (local.set $x2 (i32.add (local.get $x1) (local.get $xs)))
        (local.set $x3 (i32.add (local.get $x2) (local.get $xs)))
        (local.set $w (v128.load offset=0 (i32.add (local.get $W) (local.get $i))))
        (local.set $e0 (i16x8.extend_low_i8x16_s (local.get $w)))
        (local.set $e1 (i16x8.extend_high_i8x16_s (local.get $w)))
        (local.set $w (v128.load offset=16 (i32.add (local.get $W) (local.get $i))))
        (local.set $e2 (i16x8.extend_low_i8x16_s (local.get $w)))
        (local.set $e3 (i16x8.extend_high_i8x16_s (local.get $w)))
        (local.set $ia (i32x4.add (i32x4.add (i32x4.dot_i16x8_s (local.get $e0) (v128.load offset=0 (local.get $x0))) (i32x4.dot_i16x8_s (local.get $e1) (v128.load offset=16 (local.get $x0)))) (i32x4.add (i32x4.dot_i16x8_s (local.get $e2) (v128.load offset=32 (local.get $x0))) (i32x4.dot_i16x8_s (local.get $e3) (v128.load offset=48 (local.get $x0))))))
        (local.set $ib (i32x4.add (i32x4.add (i32x4.dot_i16x8_s (local.get $e0) (v128.load offset=0 (local.get $x1))) (i32x4.dot_i16x8_s (local.get $e1) (v128.load offset=16 (local.get $x1)))) (i32x4.add (i32x4.dot_i16x8_s (local.get $e2) (v128.load offset=32 (local.get $x1))) (i32x4.dot_i16x8_s (local.get $e3) (v128.load offset=48 (local.get $x1))))))
        (local.set $ic (i32x4.add (i32x4.add (i32x4.dot_i16x8_s (local.get $e0) (v128.load offset=0 (local.get $x2))) (i32x4.dot_i16x8_s (local.get $e1) (v128.load offset=16 (local.get $x2)))) (i32x4.add (i32x4.dot_i16x8_s (local.get $e2) (v128.load offset=32 (local.get $x2))) (i32x4.dot_i16x8_s (local.get $e3) (v128.load offset=48 (local.get $x2))))))
        (local.set $id (i32x4.add (i32x4.add (i32x4.dot_i16x8_s (local.get $e0) (v128.load offset=0 (local.get $x3))) (i32x4.dot_i16x8_s (local.get $e1) (v128.load offset=16 (local.get $x3)))) (i32x4.add (i32x4.dot_i16x8_s (local.get $e2) (v128.load offset=32 (local.get $x3))) (i32x4.dot_i16x8_s (local.get $e3) (v128.load offset=48 (local.get $x3))))))
        (local.set $w (v128.load offset=32 (i32.add (local.get $W) (local.get $i))))
        (local.set $e0 (i16x8.extend_low_i8x16_s (local.get $w)))
        (local.set $e1 (i16x8.extend_high_i8x16_s (local.get $w)))
        (local.set $w (v128.load offset=48 (i32.add (local.get $W) (local.get $i))))
        (local.set $e2 (i16x8.extend_low_i8x16_s (local.get $w)))
        (local.set $e3 (i16x8.extend_high_i8x16_s (local.get $w)))
        (local.set $ia (i32x4.add (local.get $ia) (i32x4.add (i32x4.add (i32x4.dot_i16x8_s (local.get $e0) (v128.load offset=64 (local.get $x0))) (i32x4.dot_i16x8_s (local.get $e1) (v128.load offset=80 (local.get $x0)))) (i32x4.add (i32x4.dot_i16x8_s (local.get $e2) (v128.load offset=96 (local.get $x0))) (i32x4.dot_i16x8_s (local.get $e3) (v128.load offset=112 (local.get $x0)))))))
        (local.set $ib (i32x4.add (local.get $ib) (i32x4.add (i32x4.add (i32x4.dot_i16x8_s (local.get $e0) (v128.load offset=64 (local.get $x1))) (i32x4.dot_i16x8_s (local.get $e1) (v128.load offset=80 (local.get $x1)))) (i32x4.add (i32x4.dot_i16x8_s (local.get $e2) (v128.load offset=96 (local.get $x1))) (i32x4.dot_i16x8_s (local.get $e3) (v128.load offset=112 (local.get $x1)))))))
        (local.set $ic (i32x4.add (local.get $ic) (i32x4.add (i32x4.add (i32x4.dot_i16x8_s (local.get $e0) (v128.load offset=64 (local.get $x2))) (i32x4.dot_i16x8_s (local.get $e1) (v128.load offset=80 (local.get $x2)))) (i32x4.add (i32x4.dot_i16x8_s (local.get $e2) (v128.load offset=96 (local.get $x2))) (i32x4.dot_i16x8_s (local.get $e3) (v128.load offset=112 (local.get $x2)))))))
        (local.set $id (i32x4.add (local.get $id) (i32x4.add (i32x4.add (i32x4.dot_i16x8_s (local.get $e0) (v128.load offset=64 (local.get $x3))) (i32x4.dot_i16x8_s (local.get $e1) (v128.load offset=80 (local.get $x3)))) (i32x4.add (i32x4.dot_i16x8_s (local.get $e2) (v128.load offset=96 (local.get $x3))) (i32x4.dot_i16x8_s (local.get $e3) (v128.load offset=112 (local.get $x3)))))))
        (local.set $s (v128.load32_splat (local.get $S)))
        (local.set $a (f32x4.add (local.get $a) (f32x4.mul (f32x4.convert_i32x4_s (local.get $ia)) (local.get $s))))
        (local.set $b (f32x4.add (local.get $b) (f32x4.mul (f32x4.convert_i32x4_s (local.get $ib)) (local.get $s))))
        (local.set $c (f32x4.add (local.get $c) (f32x4.mul (f32x4.convert_i32x4_s (local.get $ic)) (local.get $s))))
        (local.set $d (f32x4.add (local.get $d) (f32x4.mul (f32x4.convert_i32x4_s (local.get $id)) (local.get $s))))
        (local.set $S (i32.add (local.get $S) (i32.const 4)))
        (local.set $i (i32.add (local.get $i) (i32.const 64)))
        (br_if $block (i32.lt_u (local.get $i) (local.get $cols))))
      (f32.store (local.get $y) (call $hsum (local.get $a)))
      (f32.store (i32.add (local.get $y) (local.get $ys)) (call $hsum (local.get $b)))
      (f32.store (i32.add (local.get $y) (i32.shl (local.get $ys) (i32.const 1))) (call $hsum (local.get $c)))
      (f32.store (i32.add (local.get $y) (i32.mul (local.get $ys) (i32.const 3))) (call $hsum (local.get $d)))
      (local.set $W (i32.add (local.get $W) (local.get $cols)))
      (local.set $y (i32.add (local.get $y) (i32.const 4)))
      (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
      (br $row)))
  )

  ;; For the decoding benchmark: out = the sum of n floats from p (n a multiple of 16), in four vector
  ;; accumulators (enough loads in flight to stream memory). Threads summing their shares of a buffer far
  ;; larger than the caches read memory as fast as this machine lets WebAssembly: the ceiling of a
  ;; decoding step, which reads every weight once.
  (func (export "sumFloats") (param $p i32) (param $n i32) (param $out i32)
    (local $end i32) (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $a (f32x4.add (local.get $a) (v128.load (local.get $p))))
      (local.set $b (f32x4.add (local.get $b) (v128.load offset=16 (local.get $p))))
      (local.set $c (f32x4.add (local.get $c) (v128.load offset=32 (local.get $p))))
      (local.set $d (f32x4.add (local.get $d) (v128.load offset=48 (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 64)))
      (br $l)))
    (f32.store (local.get $out)
      (call $hsum (f32x4.add (f32x4.add (local.get $a) (local.get $b)) (f32x4.add (local.get $c) (local.get $d)))))
  )
