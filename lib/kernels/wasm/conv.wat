;; Part of the kernels module (see math.wat).
  ;; The causal depthwise conv1d + SiLU in front of the scan (wasm/conv.ts drives it), channels last:
  ;;   pre[b, t, e] = bias[e] + sum_j w[j, e] x[b, t - k + 1 + j, e]  (x = 0 before t = 0)
  ;;   y = pre sigmoid(pre)
  ;; four channels per vector; threads take channel ranges [e0, e1) (multiples of 4, E a multiple of 4),
  ;; so each owns its dw and dbias columns. Params block at p (i32 words):
  ;;   0 x (b, l, E)   1 w (k, E)   2 bias (E)   3 y (b, l, E)   4 L   5 E   6 k   7 batches
  ;;   8 dy   9 g (scratch, b, l, E: dL/dpre)   10 dx   11 dw (k, E)   12 dbias (E)

  ;; pre-activation of (row r = b L + t, channels e .. e+3), t = r mod L
  (func $convPre (param $p i32) (param $r i32) (param $t i32) (param $e i32) (result v128)
    (local $E i32) (local $k i32) (local $j i32) (local $src i32) (local $acc v128)
    (local.set $E (call $param (local.get $p) (i32.const 5)))
    (local.set $k (call $param (local.get $p) (i32.const 6)))
    (local.set $acc (v128.load (i32.add (call $param (local.get $p) (i32.const 2)) (i32.shl (local.get $e) (i32.const 2)))))
    ;; j from max(0, k - 1 - t): input row r - k + 1 + j
    (local.set $j (i32.sub (i32.sub (local.get $k) (i32.const 1)) (local.get $t)))
    (if (i32.lt_s (local.get $j) (i32.const 0)) (then (local.set $j (i32.const 0))))
    (block $done (loop $lj
      (br_if $done (i32.ge_s (local.get $j) (local.get $k)))
      (local.set $src (i32.add (call $param (local.get $p) (i32.const 0)) (i32.shl
        (i32.add (i32.mul (i32.add (i32.sub (local.get $r) (i32.sub (local.get $k) (i32.const 1))) (local.get $j)) (local.get $E))
          (local.get $e))
        (i32.const 2))))
      (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (v128.load (local.get $src))
        (v128.load (i32.add (call $param (local.get $p) (i32.const 1))
          (i32.shl (i32.add (i32.mul (local.get $j) (local.get $E)) (local.get $e)) (i32.const 2)))))))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $lj)))
    (local.get $acc)
  )

  (func (export "convForward") (param $p i32) (param $e0 i32) (param $e1 i32) (param $unused i32)
    (local $L i32) (local $E i32) (local $rows i32) (local $r i32) (local $t i32) (local $e i32) (local $pre v128)
    (local.set $L (call $param (local.get $p) (i32.const 4)))
    (local.set $E (call $param (local.get $p) (i32.const 5)))
    (local.set $rows (i32.mul (local.get $L) (call $param (local.get $p) (i32.const 7))))
    (block $done (loop $lr
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $e (local.get $e0))
      (block $edone (loop $le
        (br_if $edone (i32.ge_u (local.get $e) (local.get $e1)))
        (local.set $pre (call $convPre (local.get $p) (local.get $r) (local.get $t) (local.get $e)))
        (v128.store (i32.add (call $param (local.get $p) (i32.const 3))
            (i32.shl (i32.add (i32.mul (local.get $r) (local.get $E)) (local.get $e)) (i32.const 2)))
          (f32x4.mul (local.get $pre) (call $vsigmoid (local.get $pre))))
        (local.set $e (i32.add (local.get $e) (i32.const 4)))
        (br $le)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (if (i32.eq (local.get $t) (local.get $L)) (then (local.set $t (i32.const 0))))
      (br $lr)))
  )

  ;; Gradients for channels [e0, e1): dx, and dw, dbias (overwritten) from dy.
  (func (export "convBackward") (param $p i32) (param $e0 i32) (param $e1 i32) (param $unused i32)
    (local $L i32) (local $E i32) (local $k i32) (local $rows i32) (local $r i32) (local $t i32) (local $e i32) (local $j i32)
    (local $at i32) (local $wrow i32) (local $pre v128) (local $sg v128) (local $g v128) (local $acc v128)
    (local.set $L (call $param (local.get $p) (i32.const 4)))
    (local.set $E (call $param (local.get $p) (i32.const 5)))
    (local.set $k (call $param (local.get $p) (i32.const 6)))
    (local.set $rows (i32.mul (local.get $L) (call $param (local.get $p) (i32.const 7))))
    ;; zero dw, dbias columns [e0, e1)
    (local.set $j (i32.const 0))
    (loop $lz
      (memory.fill (i32.add (call $param (local.get $p) (i32.const 11))
          (i32.shl (i32.add (i32.mul (local.get $j) (local.get $E)) (local.get $e0)) (i32.const 2)))
        (i32.const 0) (i32.shl (i32.sub (local.get $e1) (local.get $e0)) (i32.const 2)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br_if $lz (i32.lt_u (local.get $j) (local.get $k))))
    (memory.fill (i32.add (call $param (local.get $p) (i32.const 12)) (i32.shl (local.get $e0) (i32.const 2)))
      (i32.const 0) (i32.shl (i32.sub (local.get $e1) (local.get $e0)) (i32.const 2)))
    ;; pass 1: g = dy silu'(pre);  dbias += g;  dw[j] += g x[t - k + 1 + j]
    (block $done (loop $lr
      (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $e (local.get $e0))
      (block $edone (loop $le
        (br_if $edone (i32.ge_u (local.get $e) (local.get $e1)))
        (local.set $pre (call $convPre (local.get $p) (local.get $r) (local.get $t) (local.get $e)))
        (local.set $sg (call $vsigmoid (local.get $pre)))
        (local.set $at (i32.shl (i32.add (i32.mul (local.get $r) (local.get $E)) (local.get $e)) (i32.const 2)))
        (local.set $g (f32x4.mul (v128.load (i32.add (call $param (local.get $p) (i32.const 8)) (local.get $at)))
          (f32x4.mul (local.get $sg) (f32x4.add (v128.const f32x4 1 1 1 1)
            (f32x4.mul (local.get $pre) (f32x4.sub (v128.const f32x4 1 1 1 1) (local.get $sg)))))))
        (v128.store (i32.add (call $param (local.get $p) (i32.const 9)) (local.get $at)) (local.get $g))
        (local.set $wrow (i32.add (call $param (local.get $p) (i32.const 12)) (i32.shl (local.get $e) (i32.const 2))))
        (v128.store (local.get $wrow) (f32x4.add (v128.load (local.get $wrow)) (local.get $g)))
        (local.set $j (i32.sub (i32.sub (local.get $k) (i32.const 1)) (local.get $t)))
        (if (i32.lt_s (local.get $j) (i32.const 0)) (then (local.set $j (i32.const 0))))
        (block $jdone (loop $lj
          (br_if $jdone (i32.ge_s (local.get $j) (local.get $k)))
          (local.set $wrow (i32.add (call $param (local.get $p) (i32.const 11))
            (i32.shl (i32.add (i32.mul (local.get $j) (local.get $E)) (local.get $e)) (i32.const 2))))
          (v128.store (local.get $wrow) (f32x4.add (v128.load (local.get $wrow))
            (f32x4.mul (local.get $g) (v128.load (i32.add (call $param (local.get $p) (i32.const 0)) (i32.shl
              (i32.add (i32.mul (i32.add (i32.sub (local.get $r) (i32.sub (local.get $k) (i32.const 1))) (local.get $j)) (local.get $E))
                (local.get $e))
              (i32.const 2)))))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $lj)))
        (local.set $e (i32.add (local.get $e) (i32.const 4)))
        (br $le)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (if (i32.eq (local.get $t) (local.get $L)) (then (local.set $t (i32.const 0))))
      (br $lr)))
    ;; pass 2: dx[t] = sum_j w[j] g[t + k - 1 - j] over t + k - 1 - j < L
    (local.set $r (i32.const 0))
    (local.set $t (i32.const 0))
    (block $done2 (loop $lr2
      (br_if $done2 (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $e (local.get $e0))
      (block $edone2 (loop $le2
        (br_if $edone2 (i32.ge_u (local.get $e) (local.get $e1)))
        (local.set $acc (v128.const f32x4 0 0 0 0))
        ;; j from max(0, t + k - L): g row r + k - 1 - j
        (local.set $j (i32.sub (i32.add (local.get $t) (local.get $k)) (local.get $L)))
        (if (i32.lt_s (local.get $j) (i32.const 0)) (then (local.set $j (i32.const 0))))
        (block $jdone2 (loop $lj2
          (br_if $jdone2 (i32.ge_s (local.get $j) (local.get $k)))
          (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul
            (v128.load (i32.add (call $param (local.get $p) (i32.const 1))
              (i32.shl (i32.add (i32.mul (local.get $j) (local.get $E)) (local.get $e)) (i32.const 2))))
            (v128.load (i32.add (call $param (local.get $p) (i32.const 9)) (i32.shl
              (i32.add (i32.mul (i32.sub (i32.add (local.get $r) (i32.sub (local.get $k) (i32.const 1))) (local.get $j)) (local.get $E))
                (local.get $e))
              (i32.const 2)))))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $lj2)))
        (v128.store (i32.add (call $param (local.get $p) (i32.const 10))
          (i32.shl (i32.add (i32.mul (local.get $r) (local.get $E)) (local.get $e)) (i32.const 2))) (local.get $acc))
        (local.set $e (i32.add (local.get $e) (i32.const 4)))
        (br $le2)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (if (i32.eq (local.get $t) (local.get $L)) (then (local.set $t (i32.const 0))))
      (br $lr2)))
  )

