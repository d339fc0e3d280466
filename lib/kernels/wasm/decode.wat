;; Batch-1 decoding kernels (decode.ts binds them for lib/decode/stepper.ts): a few bytes at a time
;; through one layer. Part of the kernels module (see math.wat).

  ;; y[o] = sum_i W[o, i] x[i] for o < rows: W (rows, cols) row-major, cols a multiple of 8. Per row two
  ;; f32x4 accumulators (columns 8q..8q+3 and 8q+4..8q+7), added, then $hsum; mul then add (no fused
  ;; multiply-add), so the result does not depend on the CPU.
  (func (export "mv") (param $W i32) (param $x i32) (param $y i32) (param $rows i32) (param $cols i32)
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
