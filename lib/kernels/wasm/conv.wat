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


  ;; The same conv + SiLU with channels first, as the CPU engine holds it (wasm/ops.ts): x, y, dy, dx are
  ;; (b, E, L), each (batch, channel) row of L steps contiguous, and w is (E, k). Four steps per vector
  ;; (unaligned loads along the row); threads take channel ranges [c0, c1) over every batch, so each owns
  ;; its dw and dbias entries. Params block at p (i32 words):
  ;;   0 x   1 w (E, k)   2 bias (E; 0: none)   3 y   4 L   5 E   6 k   7 batches   8 dy   9 dx
  ;;   10 dw (E, k)   11 dbias (E; 0: none)
  ;; The backward's fourth argument is the thread's scratch row of L floats (dL/dpre of one row).

  ;; pre of one step t of a row at xr (scalar, any t: inputs before 0 are 0); wr = the channel's k weights
  (func $convChPre1 (param $xr i32) (param $wr i32) (param $k i32) (param $t i32) (param $b f32) (result f32)
    (local $j i32) (local $s i32) (local $acc f32)
    (local.set $acc (local.get $b))
    (block $done (loop $lj
      (br_if $done (i32.ge_s (local.get $j) (local.get $k)))
      (local.set $s (i32.add (i32.sub (local.get $t) (i32.sub (local.get $k) (i32.const 1))) (local.get $j)))
      (if (i32.ge_s (local.get $s) (i32.const 0)) (then
        (local.set $acc (f32.add (local.get $acc) (f32.mul
          (f32.load (i32.add (local.get $wr) (i32.shl (local.get $j) (i32.const 2))))
          (f32.load (i32.add (local.get $xr) (i32.shl (local.get $s) (i32.const 2)))))))))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $lj)))
    (local.get $acc)
  )

  ;; pre of steps t .. t+3 (t >= k - 1: every input exists)
  (func $convChPre4 (param $xr i32) (param $wr i32) (param $k i32) (param $t i32) (param $b f32) (result v128)
    (local $j i32) (local $src i32) (local $acc v128)
    (local.set $acc (f32x4.splat (local.get $b)))
    (local.set $src (i32.add (local.get $xr) (i32.shl (i32.sub (local.get $t) (i32.sub (local.get $k) (i32.const 1))) (i32.const 2))))
    (block $done (loop $lj
      (br_if $done (i32.ge_s (local.get $j) (local.get $k)))
      (local.set $acc (f32x4.relaxed_madd
        (f32x4.splat (f32.load (i32.add (local.get $wr) (i32.shl (local.get $j) (i32.const 2)))))
        (v128.load (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2))))
        (local.get $acc)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $lj)))
    (local.get $acc)
  )

  (func $sigmoid1 (param $x f32) (result f32)
    (f32x4.extract_lane 0 (call $vsigmoid (f32x4.splat (local.get $x))))
  )

  ;; the bias of channel c (0 without one)
  (func $convChBias (param $p i32) (param $c i32) (result f32)
    (if (result f32) (call $param (local.get $p) (i32.const 2))
      (then (f32.load (i32.add (call $param (local.get $p) (i32.const 2)) (i32.shl (local.get $c) (i32.const 2)))))
      (else (f32.const 0)))
  )

  (func (export "convChForward") (param $p i32) (param $c0 i32) (param $c1 i32) (param $unused i32)
    (local $L i32) (local $E i32) (local $k i32) (local $B i32) (local $c i32) (local $bb i32) (local $t i32)
    (local $off i32) (local $xr i32) (local $yr i32) (local $wr i32) (local $b f32) (local $v f32) (local $pre v128)
    (local.set $L (call $param (local.get $p) (i32.const 4)))
    (local.set $E (call $param (local.get $p) (i32.const 5)))
    (local.set $k (call $param (local.get $p) (i32.const 6)))
    (local.set $B (call $param (local.get $p) (i32.const 7)))
    (local.set $c (local.get $c0))
    (block $cdone (loop $lc
      (br_if $cdone (i32.ge_u (local.get $c) (local.get $c1)))
      (local.set $wr (i32.add (call $param (local.get $p) (i32.const 1)) (i32.shl (i32.mul (local.get $c) (local.get $k)) (i32.const 2))))
      (local.set $b (call $convChBias (local.get $p) (local.get $c)))
      (local.set $bb (i32.const 0))
      (block $bdone (loop $lb
        (br_if $bdone (i32.ge_u (local.get $bb) (local.get $B)))
        (local.set $off (i32.shl (i32.mul (i32.add (i32.mul (local.get $bb) (local.get $E)) (local.get $c)) (local.get $L)) (i32.const 2)))
        (local.set $xr (i32.add (call $param (local.get $p) (i32.const 0)) (local.get $off)))
        (local.set $yr (i32.add (call $param (local.get $p) (i32.const 3)) (local.get $off)))
        (local.set $t (i32.const 0))
        (block $tdone (loop $lt
          (br_if $tdone (i32.ge_u (local.get $t) (local.get $L)))
          (if (i32.and (i32.ge_s (local.get $t) (i32.sub (local.get $k) (i32.const 1)))
                (i32.le_u (i32.add (local.get $t) (i32.const 4)) (local.get $L)))
            (then
              (local.set $pre (call $convChPre4 (local.get $xr) (local.get $wr) (local.get $k) (local.get $t) (local.get $b)))
              (v128.store (i32.add (local.get $yr) (i32.shl (local.get $t) (i32.const 2)))
                (f32x4.mul (local.get $pre) (call $vsigmoid (local.get $pre))))
              (local.set $t (i32.add (local.get $t) (i32.const 4))))
            (else
              (local.set $v (call $convChPre1 (local.get $xr) (local.get $wr) (local.get $k) (local.get $t) (local.get $b)))
              (f32.store (i32.add (local.get $yr) (i32.shl (local.get $t) (i32.const 2)))
                (f32.mul (local.get $v) (call $sigmoid1 (local.get $v))))
              (local.set $t (i32.add (local.get $t) (i32.const 1)))))
          (br $lt)))
        (local.set $bb (i32.add (local.get $bb) (i32.const 1)))
        (br $lb)))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br $lc)))
  )

  ;; sum_i a[i] b[i], i < n (any alignment)
  (func $dotCh (param $a i32) (param $b i32) (param $n i32) (result f32)
    (local $i i32) (local $acc v128) (local $s f32)
    (block $vdone (loop $lv
      (br_if $vdone (i32.gt_s (i32.add (local.get $i) (i32.const 4)) (local.get $n)))
      (local.set $acc (f32x4.relaxed_madd (v128.load (local.get $a)) (v128.load (local.get $b)) (local.get $acc)))
      (local.set $a (i32.add (local.get $a) (i32.const 16)))
      (local.set $b (i32.add (local.get $b) (i32.const 16)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $lv)))
    (local.set $s (f32.add (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
      (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
    (block $sdone (loop $ls
      (br_if $sdone (i32.ge_s (local.get $i) (local.get $n)))
      (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (local.get $a)) (f32.load (local.get $b)))))
      (local.set $a (i32.add (local.get $a) (i32.const 4)))
      (local.set $b (i32.add (local.get $b) (i32.const 4)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $ls)))
    (local.get $s)
  )

  ;; y[i] += alpha x[i], i < n (any alignment)
  (func $axpyCh (param $alpha f32) (param $x i32) (param $y i32) (param $n i32)
    (local $i i32) (local $av v128)
    (local.set $av (f32x4.splat (local.get $alpha)))
    (block $vdone (loop $lv
      (br_if $vdone (i32.gt_s (i32.add (local.get $i) (i32.const 4)) (local.get $n)))
      (v128.store (local.get $y) (f32x4.relaxed_madd (local.get $av) (v128.load (local.get $x)) (v128.load (local.get $y))))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $y (i32.add (local.get $y) (i32.const 16)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $lv)))
    (block $sdone (loop $ls
      (br_if $sdone (i32.ge_s (local.get $i) (local.get $n)))
      (f32.store (local.get $y) (f32.add (f32.load (local.get $y)) (f32.mul (local.get $alpha) (f32.load (local.get $x)))))
      (local.set $x (i32.add (local.get $x) (i32.const 4)))
      (local.set $y (i32.add (local.get $y) (i32.const 4)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $ls)))
  )

  ;; Gradients for channels [c0, c1) over every batch: dx (overwritten), dw and dbias (overwritten).
  ;;   g = dy silu'(pre);  dbias = sum g;  dw[j] = sum_t g[t] x[t - k + 1 + j];  dx[t] = sum_j w[j] g[t + k - 1 - j]
  (func (export "convChBackward") (param $p i32) (param $c0 i32) (param $c1 i32) (param $g i32)
    (local $L i32) (local $E i32) (local $k i32) (local $B i32) (local $c i32) (local $bb i32) (local $t i32) (local $j i32)
    (local $off i32) (local $xr i32) (local $dyr i32) (local $dxr i32) (local $wr i32) (local $dwr i32) (local $sh i32)
    (local $b f32) (local $v f32) (local $s f32) (local $db f32) (local $pre v128) (local $sg v128)
    (local.set $L (call $param (local.get $p) (i32.const 4)))
    (local.set $E (call $param (local.get $p) (i32.const 5)))
    (local.set $k (call $param (local.get $p) (i32.const 6)))
    (local.set $B (call $param (local.get $p) (i32.const 7)))
    (local.set $c (local.get $c0))
    (block $cdone (loop $lc
      (br_if $cdone (i32.ge_u (local.get $c) (local.get $c1)))
      (local.set $wr (i32.add (call $param (local.get $p) (i32.const 1)) (i32.shl (i32.mul (local.get $c) (local.get $k)) (i32.const 2))))
      (local.set $dwr (i32.add (call $param (local.get $p) (i32.const 10)) (i32.shl (i32.mul (local.get $c) (local.get $k)) (i32.const 2))))
      (memory.fill (local.get $dwr) (i32.const 0) (i32.shl (local.get $k) (i32.const 2)))
      (local.set $b (call $convChBias (local.get $p) (local.get $c)))
      (local.set $db (f32.const 0))
      (local.set $bb (i32.const 0))
      (block $bdone (loop $lb
        (br_if $bdone (i32.ge_u (local.get $bb) (local.get $B)))
        (local.set $off (i32.shl (i32.mul (i32.add (i32.mul (local.get $bb) (local.get $E)) (local.get $c)) (local.get $L)) (i32.const 2)))
        (local.set $xr (i32.add (call $param (local.get $p) (i32.const 0)) (local.get $off)))
        (local.set $dyr (i32.add (call $param (local.get $p) (i32.const 8)) (local.get $off)))
        (local.set $dxr (i32.add (call $param (local.get $p) (i32.const 9)) (local.get $off)))
        ;; g[t] = dy[t] s (1 + pre (1 - s)), s = sigmoid(pre)
        (local.set $t (i32.const 0))
        (block $tdone (loop $lt
          (br_if $tdone (i32.ge_u (local.get $t) (local.get $L)))
          (if (i32.and (i32.ge_s (local.get $t) (i32.sub (local.get $k) (i32.const 1)))
                (i32.le_u (i32.add (local.get $t) (i32.const 4)) (local.get $L)))
            (then
              (local.set $pre (call $convChPre4 (local.get $xr) (local.get $wr) (local.get $k) (local.get $t) (local.get $b)))
              (local.set $sg (call $vsigmoid (local.get $pre)))
              (v128.store (i32.add (local.get $g) (i32.shl (local.get $t) (i32.const 2)))
                (f32x4.mul (v128.load (i32.add (local.get $dyr) (i32.shl (local.get $t) (i32.const 2))))
                  (f32x4.mul (local.get $sg) (f32x4.add (v128.const f32x4 1 1 1 1)
                    (f32x4.mul (local.get $pre) (f32x4.sub (v128.const f32x4 1 1 1 1) (local.get $sg)))))))
              (local.set $t (i32.add (local.get $t) (i32.const 4))))
            (else
              (local.set $v (call $convChPre1 (local.get $xr) (local.get $wr) (local.get $k) (local.get $t) (local.get $b)))
              (local.set $s (call $sigmoid1 (local.get $v)))
              (f32.store (i32.add (local.get $g) (i32.shl (local.get $t) (i32.const 2)))
                (f32.mul (f32.load (i32.add (local.get $dyr) (i32.shl (local.get $t) (i32.const 2))))
                  (f32.mul (local.get $s) (f32.add (f32.const 1)
                    (f32.mul (local.get $v) (f32.sub (f32.const 1) (local.get $s)))))))
              (local.set $t (i32.add (local.get $t) (i32.const 1)))))
          (br $lt)))
        ;; dbias, dw: dot products of g with x shifted by sh = k - 1 - j
        (local.set $t (i32.const 0))
        (block $sdone (loop $ls
          (br_if $sdone (i32.ge_u (local.get $t) (local.get $L)))
          (local.set $db (f32.add (local.get $db) (f32.load (i32.add (local.get $g) (i32.shl (local.get $t) (i32.const 2))))))
          (local.set $t (i32.add (local.get $t) (i32.const 1)))
          (br $ls)))
        (memory.fill (local.get $dxr) (i32.const 0) (i32.shl (local.get $L) (i32.const 2)))
        (local.set $j (i32.const 0))
        (block $jdone (loop $lj
          (br_if $jdone (i32.ge_s (local.get $j) (local.get $k)))
          (local.set $sh (i32.sub (i32.sub (local.get $k) (i32.const 1)) (local.get $j)))
          (if (i32.lt_s (local.get $sh) (local.get $L)) (then
            ;; dw[j] += sum_{t >= sh} g[t] x[t - sh]
            (f32.store (i32.add (local.get $dwr) (i32.shl (local.get $j) (i32.const 2)))
              (f32.add (f32.load (i32.add (local.get $dwr) (i32.shl (local.get $j) (i32.const 2))))
                (call $dotCh (i32.add (local.get $g) (i32.shl (local.get $sh) (i32.const 2))) (local.get $xr)
                  (i32.sub (local.get $L) (local.get $sh)))))
            ;; dx[t] += w[j] g[t + sh], t < L - sh
            (call $axpyCh (f32.load (i32.add (local.get $wr) (i32.shl (local.get $j) (i32.const 2))))
              (i32.add (local.get $g) (i32.shl (local.get $sh) (i32.const 2))) (local.get $dxr)
              (i32.sub (local.get $L) (local.get $sh)))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $lj)))
        (local.set $bb (i32.add (local.get $bb) (i32.const 1)))
        (br $lb)))
      (if (call $param (local.get $p) (i32.const 11)) (then
        (f32.store (i32.add (call $param (local.get $p) (i32.const 11)) (i32.shl (local.get $c) (i32.const 2))) (local.get $db))))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br $lc)))
  )
