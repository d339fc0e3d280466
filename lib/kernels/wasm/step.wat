;; A whole decoding step of the layers in one memory, run by every thread of the stepper's gang at once
;; (lib/decode/stepper.ts, one byte at a time, any weight format): each thread takes its share of each
;; phase and meets the others at a barrier in memory before the next, so a step is one dispatch instead
;; of about nine per layer, each a round trip through JavaScript. Every value is computed by the kernels
;; (and in the order) of the stepper's phase-by-phase path, so the two give the same logits and states
;; bit for bit (tests/decode_fused_test.ts).

  ;; The plan (i32 words, written once by the stepper). Header, 24 words:
  ;;   0 layers, 1 d, 2 e, 3 n, 4 r, 5 barrier (2 words), 6 h (d), 7 normed (a row of d per thread),
  ;;   8 xz (2e), 9 x (e), 10 xDbl (r + 2n), 11 dt (e), 12 y (e), 13 o (d), 14 head? (0 or 1),
  ;;   15 norm_f (d), 16-18 the head (Vp, d), 19 Vp, 20 logits (Vp), 21 xq (an int8 product's input as
  ;;   int16: a row of 22 per thread), 22 its row length
  ;; then per layer, 22 words:
  ;;   0 norm, 1-3 in_proj (2e, d), 4 in_proj bias or -1, 5 conv W (e, 4), 6 conv bias or -1,
  ;;   7-9 x_proj (r + 2n, e), 10-12 dt_proj (e, r), 13 dt_proj bias, 14 A2 (e, n), 15 D (e),
  ;;   16-18 out_proj (d, e), 19 out_proj bias or -1, 20 conv window (e, 4), 21 state (e, n)
  ;; A matrix is three words: its weights, its format (0 float32, 1 bfloat16, 2 int8) and, for int8, its
  ;; scales (one per row and block of 64 columns). Addresses are bytes. The threads split each phase's rows
  ;; by $cut (lib/kernels/wasm/threads.ts's splitAligned), in runs of 16.

  ;; y = W x for rows [lo, hi) of the matrix whose three words are at M (rows of `cols`), by mv, mvBf16 or
  ;; mvQ8: for int8, x rounded to int16 into xq first ($quantize, as decode.ts quantizeX16), the rows
  ;; scaled back after (the stepper's mv, in its order)
  (func $mvRows (param $M i32) (param $x i32) (param $xq i32) (param $y i32) (param $lo i32) (param $hi i32)
    (param $cols i32)
    (local $W i32) (local $fmt i32) (local $s f32) (local $i i32)
    (if (i32.ge_u (local.get $lo) (local.get $hi)) (then (return)))
    (local.set $W (i32.load (local.get $M)))
    (local.set $fmt (i32.load offset=4 (local.get $M)))
    (if (i32.eq (local.get $fmt) (i32.const 2)) (then
      (local.set $s (call $quantize (local.get $x) (local.get $xq) (local.get $cols)))
      (call $mvQ8 (i32.add (local.get $W) (i32.mul (local.get $lo) (local.get $cols)))
        (i32.add (i32.load offset=8 (local.get $M)) (i32.shl (i32.mul (local.get $lo) (i32.shr_u (local.get $cols) (i32.const 6))) (i32.const 2)))
        (local.get $xq) (i32.add (local.get $y) (i32.shl (local.get $lo) (i32.const 2)))
        (i32.sub (local.get $hi) (local.get $lo)) (local.get $cols))
      (local.set $i (local.get $lo))
      (block $done (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $hi)))
        (f32.store (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2)))
          (f32.mul (f32.load (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2)))) (local.get $s)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
      (return)))
    (if (local.get $fmt)
      (then (call $mvBf16 (i32.add (local.get $W) (i32.mul (i32.mul (local.get $lo) (local.get $cols)) (i32.const 2)))
        (local.get $x) (i32.add (local.get $y) (i32.shl (local.get $lo) (i32.const 2)))
        (i32.sub (local.get $hi) (local.get $lo)) (local.get $cols)))
      (else (call $mv (i32.add (local.get $W) (i32.mul (i32.mul (local.get $lo) (local.get $cols)) (i32.const 4)))
        (local.get $x) (i32.add (local.get $y) (i32.shl (local.get $lo) (i32.const 2)))
        (i32.sub (local.get $hi) (local.get $lo)) (local.get $cols))))
  )

  ;; xq[i] = round(x[i] / s) clamped to +-32767 for i < cols, s = max |x| / 32767 rounded to float32; returns
  ;; s. decode.ts quantizeX16's arithmetic in doubles, rounding halves up as Math.round does; a NaN rounds
  ;; to 0 as a store into an Int16Array does; all zeros when s is 0.
  (func $quantize (export "quantizeX16") (param $x i32) (param $xq i32) (param $cols i32) (result f32)
    (local $i i32) (local $m f64) (local $s f32) (local $v f64) (local $f f64)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $cols)))
      (local.set $m (f64.max (local.get $m)
        (f64.abs (f64.promote_f32 (f32.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (local.set $s (f32.demote_f64 (f64.div (local.get $m) (f64.const 32767))))
    (local.set $i (i32.const 0))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $cols)))
      (local.set $v (f64.div (f64.promote_f32 (f32.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2)))))
        (f64.promote_f32 (local.get $s))))
      (local.set $f (f64.floor (local.get $v)))
      (if (f64.ge (f64.sub (local.get $v) (local.get $f)) (f64.const 0.5))
        (then (local.set $f (f64.add (local.get $f) (f64.const 1)))))
      (i32.store16 (i32.add (local.get $xq) (i32.shl (local.get $i) (i32.const 1)))
        (select (i32.const 0)
          (i32.trunc_sat_f64_s (f64.max (f64.const -32767) (f64.min (f64.const 32767) (local.get $f))))
          (f32.eq (local.get $s) (f32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (local.get $s)
  )

  ;; y[i] += b[i] for i in [lo, hi) (float32; the same as JavaScript's += on a Float32Array: the double sum
  ;; of two floats rounds to the float sum); nothing when b is -1
  (func $addRows (param $y i32) (param $b i32) (param $lo i32) (param $hi i32)
    (local $i i32)
    (if (i32.eq (local.get $b) (i32.const -1)) (then (return)))
    (local.set $i (local.get $lo))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $hi)))
      (f32.store (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2)))
        (f32.add (f32.load (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2))))
          (f32.load (i32.add (local.get $b) (i32.shl (local.get $i) (i32.const 2))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
  )

  ;; out = x / sqrt(mean(x^2) + 1e-5) * w over d floats, in doubles as the stepper's rmsNormInto computes it
  (func $rmsNorm (param $x i32) (param $w i32) (param $out i32) (param $d i32)
    (local $i i32) (local $ss f64) (local $v f64) (local $inv f64)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $d)))
      (local.set $v (f64.promote_f32 (f32.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))))
      (local.set $ss (f64.add (local.get $ss) (f64.mul (local.get $v) (local.get $v))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (local.set $inv (f64.div (f64.const 1)
      (f64.sqrt (f64.add (f64.div (local.get $ss) (f64.convert_i32_u (local.get $d))) (f64.const 1e-5)))))
    (local.set $i (i32.const 0))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $d)))
      (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
        (f32.demote_f64 (f64.mul
          (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2)))))
            (local.get $inv))
          (f64.promote_f32 (f32.load (i32.add (local.get $w) (i32.shl (local.get $i) (i32.const 2))))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
  )

  ;; Where thread k of p starts its share of n rows split in runs of 16 (splitAligned(n, p, 16)): the
  ;; runs are dealt out as evenly as whole runs allow; thread k's share is [$cut(k), $cut(k + 1)).
  (func $cut (param $n i32) (param $k i32) (param $p i32) (result i32)
    (local $units i32) (local $at i32)
    (local.set $units (i32.shr_u (i32.add (local.get $n) (i32.const 15)) (i32.const 4)))
    (if (i32.gt_u (local.get $p) (local.get $units)) (then (local.set $p (local.get $units))))
    (if (i32.ge_u (local.get $k) (local.get $p)) (then (return (local.get $n))))
    (local.set $at (i32.shl (i32.div_u (i32.mul (local.get $units) (local.get $k)) (local.get $p)) (i32.const 4)))
    (select (local.get $n) (local.get $at) (i32.gt_u (local.get $at) (local.get $n)))
  )

  ;; Waits until all `ranks` threads have arrived at the barrier at b (words: arrivals, generation). The
  ;; last to arrive starts the next generation; the others spin on it for a while (a phase takes
  ;; microseconds), then sleep on it. A thread that never arrives (it died) ends the wait after 120 s with a
  ;; trap, which the gang reports.
  (func $barrier (param $b i32) (param $ranks i32)
    (local $gen i32) (local $spins i32) (local $naps i32)
    (if (i32.le_u (local.get $ranks) (i32.const 1)) (then (return)))
    (local.set $gen (i32.atomic.load offset=4 (local.get $b)))
    (if (i32.eq (i32.atomic.rmw.add (local.get $b) (i32.const 1)) (i32.sub (local.get $ranks) (i32.const 1)))
      (then
        (i32.atomic.store (local.get $b) (i32.const 0))
        (i32.atomic.store offset=4 (local.get $b) (i32.add (local.get $gen) (i32.const 1)))
        (drop (memory.atomic.notify offset=4 (local.get $b) (local.get $ranks)))
        (return)))
    (block $done (loop $wait
      (br_if $done (i32.ne (i32.atomic.load offset=4 (local.get $b)) (local.get $gen)))
      (local.set $spins (i32.add (local.get $spins) (i32.const 1)))
      (br_if $wait (i32.lt_u (local.get $spins) (i32.const 200000)))
      ;; asleep in 1 ms naps (a notify wakes it at once)
      (drop (memory.atomic.wait32 offset=4 (local.get $b) (local.get $gen) (i64.const 1000000)))
      (local.set $naps (i32.add (local.get $naps) (i32.const 1)))
      (if (i32.gt_u (local.get $naps) (i32.const 120000)) (then (unreachable)))
      (br $wait)))
  )

  ;; Thread `rank` of `ranks`' share of a step through the plan's layers (and the head, when the plan has
  ;; it), h holding the byte's embedding (or the previous memory's residual stream); each layer's conv
  ;; window and state are updated in place, the logits written.
  (func (export "stepLayers") (param $plan i32) (param $rank i32) (param $ranks i32)
    (local $d i32) (local $e i32) (local $n i32) (local $r i32) (local $bar i32) (local $h i32)
    (local $normed i32) (local $xz i32) (local $x i32) (local $xDbl i32) (local $dt i32) (local $y i32)
    (local $o i32) (local $xq i32) (local $L i32) (local $left i32) (local $lo i32) (local $hi i32)
    (local $c i32) (local $at i32)
    (local.set $d (call $param (local.get $plan) (i32.const 1)))
    (local.set $e (call $param (local.get $plan) (i32.const 2)))
    (local.set $n (call $param (local.get $plan) (i32.const 3)))
    (local.set $r (call $param (local.get $plan) (i32.const 4)))
    (local.set $bar (call $param (local.get $plan) (i32.const 5)))
    (local.set $h (call $param (local.get $plan) (i32.const 6)))
    ;; this thread's own rows of normed and xq
    (local.set $normed (i32.add (call $param (local.get $plan) (i32.const 7))
      (i32.mul (local.get $rank) (i32.shl (local.get $d) (i32.const 2)))))
    (local.set $xq (i32.add (call $param (local.get $plan) (i32.const 21))
      (i32.mul (local.get $rank) (i32.shl (call $param (local.get $plan) (i32.const 22)) (i32.const 1)))))
    (local.set $xz (call $param (local.get $plan) (i32.const 8)))
    (local.set $x (call $param (local.get $plan) (i32.const 9)))
    (local.set $xDbl (call $param (local.get $plan) (i32.const 10)))
    (local.set $dt (call $param (local.get $plan) (i32.const 11)))
    (local.set $y (call $param (local.get $plan) (i32.const 12)))
    (local.set $o (call $param (local.get $plan) (i32.const 13)))
    (local.set $L (i32.add (local.get $plan) (i32.const 96)))
    (local.set $left (call $param (local.get $plan) (i32.const 0)))
    (block $layers (loop $layer
      (br_if $layers (i32.eqz (local.get $left)))
      ;; xz (2e) = in_proj normed(h) (+ bias): every thread normalizes h itself (no barrier for it)
      (call $rmsNorm (local.get $h) (call $param (local.get $L) (i32.const 0)) (local.get $normed) (local.get $d))
      (local.set $lo (call $cut (i32.shl (local.get $e) (i32.const 1)) (local.get $rank) (local.get $ranks)))
      (local.set $hi (call $cut (i32.shl (local.get $e) (i32.const 1))
        (i32.add (local.get $rank) (i32.const 1)) (local.get $ranks)))
      (call $mvRows (i32.add (local.get $L) (i32.const 4))
        (local.get $normed) (local.get $xq) (local.get $xz) (local.get $lo) (local.get $hi) (local.get $d))
      (call $addRows (local.get $xz) (call $param (local.get $L) (i32.const 4)) (local.get $lo) (local.get $hi))
      (call $barrier (local.get $bar) (local.get $ranks))
      ;; x = silu(conv(window, x_in) + bias), the window updated, for this thread's channels
      (local.set $lo (call $cut (local.get $e) (local.get $rank) (local.get $ranks)))
      (local.set $hi (call $cut (local.get $e) (i32.add (local.get $rank) (i32.const 1)) (local.get $ranks)))
      (local.set $c (i32.sub (local.get $hi) (local.get $lo)))
      (if (local.get $c) (then
        (local.set $at (call $param (local.get $L) (i32.const 6)))
        (call $convRows
          (i32.add (local.get $xz) (i32.shl (local.get $lo) (i32.const 2))) (i32.const 0)
          (i32.add (local.get $x) (i32.shl (local.get $lo) (i32.const 2))) (i32.const 0)
          (i32.add (call $param (local.get $L) (i32.const 20)) (i32.shl (local.get $lo) (i32.const 4)))
          (i32.add (call $param (local.get $L) (i32.const 5)) (i32.shl (local.get $lo) (i32.const 4)))
          (select (i32.const 0) (i32.add (local.get $at) (i32.shl (local.get $lo) (i32.const 2)))
            (i32.eq (local.get $at) (i32.const -1)))
          (i32.ne (local.get $at) (i32.const -1))
          (local.get $c) (i32.const 1))
        (call $siluRows (i32.add (local.get $x) (i32.shl (local.get $lo) (i32.const 2))) (i32.const 0)
          (i32.add (local.get $x) (i32.shl (local.get $lo) (i32.const 2))) (i32.const 0)
          (local.get $c) (i32.const 1) (i32.const 0))))
      (call $barrier (local.get $bar) (local.get $ranks))
      ;; xDbl (r + 2n) = x_proj x: dt_low, B, C
      (local.set $at (i32.add (local.get $r) (i32.shl (local.get $n) (i32.const 1))))
      (call $mvRows (i32.add (local.get $L) (i32.const 28)) (local.get $x) (local.get $xq) (local.get $xDbl)
        (call $cut (local.get $at) (local.get $rank) (local.get $ranks))
        (call $cut (local.get $at) (i32.add (local.get $rank) (i32.const 1)) (local.get $ranks))
        (local.get $e))
      (call $barrier (local.get $bar) (local.get $ranks))
      ;; this thread's channels, start to end: dt = softplus(dt_proj dt_low + bias); the recurrence
      ;; h = 2^(dt A2) h + dt x B, y = <h, C> + D x; the gate y *= silu(z)
      (if (local.get $c) (then
        (call $mvRows (i32.add (local.get $L) (i32.const 40))
          (local.get $xDbl) (local.get $xq) (local.get $dt) (local.get $lo) (local.get $hi) (local.get $r))
        (call $addRows (local.get $dt) (call $param (local.get $L) (i32.const 13)) (local.get $lo) (local.get $hi))
        (call $map (i32.const 2) (i32.add (local.get $dt) (i32.shl (local.get $lo) (i32.const 2)))
          (i32.add (local.get $dt) (i32.shl (local.get $lo) (i32.const 2))) (local.get $c))
        (call $ssmScan
          (i32.add (call $param (local.get $L) (i32.const 21)) (i32.mul (local.get $lo) (i32.shl (local.get $n) (i32.const 2))))
          (i32.add (call $param (local.get $L) (i32.const 14)) (i32.mul (local.get $lo) (i32.shl (local.get $n) (i32.const 2))))
          (i32.add (local.get $dt) (i32.shl (local.get $lo) (i32.const 2)))
          (i32.add (local.get $x) (i32.shl (local.get $lo) (i32.const 2)))
          (i32.add (local.get $y) (i32.shl (local.get $lo) (i32.const 2)))
          (i32.add (local.get $xDbl) (i32.shl (local.get $r) (i32.const 2)))
          (local.get $c) (local.get $n) (i32.const 1) (i32.const 0) (i32.const 0))
        (call $addProducts (local.get $y) (call $param (local.get $L) (i32.const 15)) (local.get $x)
          (local.get $lo) (local.get $hi))
        (call $siluRows (i32.add (local.get $xz) (i32.shl (i32.add (local.get $e) (local.get $lo)) (i32.const 2)))
          (i32.const 0) (i32.add (local.get $y) (i32.shl (local.get $lo) (i32.const 2))) (i32.const 0)
          (local.get $c) (i32.const 1) (i32.const 1))))
      (call $barrier (local.get $bar) (local.get $ranks))
      ;; h += out_proj y (+ bias), this thread's rows of h
      (local.set $lo (call $cut (local.get $d) (local.get $rank) (local.get $ranks)))
      (local.set $hi (call $cut (local.get $d) (i32.add (local.get $rank) (i32.const 1)) (local.get $ranks)))
      (call $mvRows (i32.add (local.get $L) (i32.const 64))
        (local.get $y) (local.get $xq) (local.get $o) (local.get $lo) (local.get $hi) (local.get $e))
      (call $addRows (local.get $o) (call $param (local.get $L) (i32.const 19)) (local.get $lo) (local.get $hi))
      (call $addRows (local.get $h) (local.get $o) (local.get $lo) (local.get $hi))
      (call $barrier (local.get $bar) (local.get $ranks))
      (local.set $L (i32.add (local.get $L) (i32.const 88)))
      (local.set $left (i32.sub (local.get $left) (i32.const 1)))
      (br $layer)))
    ;; the head: logits (Vp) = W normed(h), split by rows
    (if (call $param (local.get $plan) (i32.const 14)) (then
      (call $rmsNorm (local.get $h) (call $param (local.get $plan) (i32.const 15)) (local.get $normed) (local.get $d))
      (local.set $at (call $param (local.get $plan) (i32.const 19)))
      (call $mvRows (i32.add (local.get $plan) (i32.const 64))
        (local.get $normed) (local.get $xq) (call $param (local.get $plan) (i32.const 20))
        (call $cut (local.get $at) (local.get $rank) (local.get $ranks))
        (call $cut (local.get $at) (i32.add (local.get $rank) (i32.const 1)) (local.get $ranks))
        (local.get $d))))
  )

  ;; y[c] += D[c] x[c] for c in [lo, hi), in doubles rounded once (JavaScript's y[c] += D[c] * x[c])
  (func $addProducts (param $y i32) (param $D i32) (param $x i32) (param $lo i32) (param $hi i32)
    (local $at i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $lo) (local.get $hi)))
      (local.set $at (i32.shl (local.get $lo) (i32.const 2)))
      (f32.store (i32.add (local.get $y) (local.get $at))
        (f32.demote_f64 (f64.add (f64.promote_f32 (f32.load (i32.add (local.get $y) (local.get $at))))
          (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $D) (local.get $at))))
            (f64.promote_f32 (f32.load (i32.add (local.get $x) (local.get $at))))))))
      (local.set $lo (i32.add (local.get $lo) (i32.const 1)))
      (br $l)))
  )
