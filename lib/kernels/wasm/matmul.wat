;; Single-precision matrix multiply C = A B for the cpu and wasm backends (driven by wasm/matmul.ts), with
;; 128-bit SIMD and fused multiply-adds (f32x4.relaxed_madd: one rounding where the CPU has FMA, two
;; otherwise). Compiled by wasm/build.ts into wasm/bytes.ts.
;;
;; A is read with a row stride and a k stride (bytes): row-major A in place, A^T after `packAT` packs it
;; into k-major panels of 6 rows (reading A^T in place would stride through memory by rows);
;; B is packed into panels of 8 columns, k-major (`pack`); C is row-major with `ldc` bytes per row.
;; The micro-kernel computes a 6 x 8 tile of C over the whole k range in 12 registers: per k, 2 vector
;; loads of B, 6 broadcast loads of A, 12 multiply-adds.

  ;; C[6 x 8] at c (row stride ldc) = sum_k A[r, k] Bp[k, 0..7], A[r, k] at a + r rs + k ks
  (func $kernel6x8 (param $a i32) (param $rs i32) (param $ks i32) (param $bp i32) (param $K i32) (param $c i32) (param $ldc i32)
    (param $acc i32)
    (local $k i32) (local $o1 i32) (local $o2 i32) (local $o3 i32) (local $o4 i32) (local $o5 i32)
    (local $b0 v128) (local $b1 v128) (local $x v128) (local $cc i32)
    (local $c0a v128) (local $c0b v128) (local $c1a v128) (local $c1b v128) (local $c2a v128) (local $c2b v128)
    (local $c3a v128) (local $c3b v128) (local $c4a v128) (local $c4b v128) (local $c5a v128) (local $c5b v128)
    (if (local.get $acc) (then ;; C += A B: start from the tile's current values
      (local.set $cc (local.get $c))
      (local.set $c0a (v128.load (local.get $cc))) (local.set $c0b (v128.load offset=16 (local.get $cc)))
      (local.set $cc (i32.add (local.get $cc) (local.get $ldc)))
      (local.set $c1a (v128.load (local.get $cc))) (local.set $c1b (v128.load offset=16 (local.get $cc)))
      (local.set $cc (i32.add (local.get $cc) (local.get $ldc)))
      (local.set $c2a (v128.load (local.get $cc))) (local.set $c2b (v128.load offset=16 (local.get $cc)))
      (local.set $cc (i32.add (local.get $cc) (local.get $ldc)))
      (local.set $c3a (v128.load (local.get $cc))) (local.set $c3b (v128.load offset=16 (local.get $cc)))
      (local.set $cc (i32.add (local.get $cc) (local.get $ldc)))
      (local.set $c4a (v128.load (local.get $cc))) (local.set $c4b (v128.load offset=16 (local.get $cc)))
      (local.set $cc (i32.add (local.get $cc) (local.get $ldc)))
      (local.set $c5a (v128.load (local.get $cc))) (local.set $c5b (v128.load offset=16 (local.get $cc)))))
    (local.set $o1 (local.get $rs))
    (local.set $o2 (i32.add (local.get $o1) (local.get $rs)))
    (local.set $o3 (i32.add (local.get $o2) (local.get $rs)))
    (local.set $o4 (i32.add (local.get $o3) (local.get $rs)))
    (local.set $o5 (i32.add (local.get $o4) (local.get $rs)))
    (loop $l
      (local.set $b0 (v128.load (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $x (v128.load32_splat (local.get $a)))
      (local.set $c0a (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c0a)))
      (local.set $c0b (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c0b)))
      (local.set $x (v128.load32_splat (i32.add (local.get $a) (local.get $o1))))
      (local.set $c1a (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c1a)))
      (local.set $c1b (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c1b)))
      (local.set $x (v128.load32_splat (i32.add (local.get $a) (local.get $o2))))
      (local.set $c2a (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c2a)))
      (local.set $c2b (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c2b)))
      (local.set $x (v128.load32_splat (i32.add (local.get $a) (local.get $o3))))
      (local.set $c3a (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c3a)))
      (local.set $c3b (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c3b)))
      (local.set $x (v128.load32_splat (i32.add (local.get $a) (local.get $o4))))
      (local.set $c4a (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c4a)))
      (local.set $c4b (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c4b)))
      (local.set $x (v128.load32_splat (i32.add (local.get $a) (local.get $o5))))
      (local.set $c5a (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c5a)))
      (local.set $c5b (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c5b)))
      (local.set $a (i32.add (local.get $a) (local.get $ks)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $k) (local.get $K))))
    (v128.store (local.get $c) (local.get $c0a))
    (v128.store offset=16 (local.get $c) (local.get $c0b))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store (local.get $c) (local.get $c1a))
    (v128.store offset=16 (local.get $c) (local.get $c1b))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store (local.get $c) (local.get $c2a))
    (v128.store offset=16 (local.get $c) (local.get $c2b))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store (local.get $c) (local.get $c3a))
    (v128.store offset=16 (local.get $c) (local.get $c3b))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store (local.get $c) (local.get $c4a))
    (v128.store offset=16 (local.get $c) (local.get $c4b))
    (local.set $c (i32.add (local.get $c) (local.get $ldc)))
    (v128.store (local.get $c) (local.get $c5a))
    (v128.store offset=16 (local.get $c) (local.get $c5b))
  )

  ;; Row tiles [t0, t1) of C (6 rows each) over all column panels. Params block at p (i32 words):
  ;;   0 A   1 rs (A row stride, bytes)   2 ks (A k stride, bytes)   3 Bp (packed B)   4 K   5 C   6 ldc (bytes)
  ;;   7 N8 (columns of C, a multiple of 8)   8 ts (bytes from one row tile of A to the next)
  ;;   9 accumulate (C += A B when nonzero)
  ;; C must have 6 * t1 rows; A must be readable for those rows (its padding rows give padding results).
  (func (export "gemm") (param $p i32) (param $t0 i32) (param $t1 i32) (param $unused i32)
    (local $A i32) (local $rs i32) (local $ks i32) (local $Bp i32) (local $K i32) (local $C i32) (local $ldc i32)
    (local $N8 i32) (local $ts i32) (local $t i32) (local $j i32) (local $panel i32) (local $acc i32)
    (local.set $A (i32.load (local.get $p)))
    (local.set $rs (i32.load offset=4 (local.get $p)))
    (local.set $ks (i32.load offset=8 (local.get $p)))
    (local.set $Bp (i32.load offset=12 (local.get $p)))
    (local.set $K (i32.load offset=16 (local.get $p)))
    (local.set $C (i32.load offset=20 (local.get $p)))
    (local.set $ldc (i32.load offset=24 (local.get $p)))
    (local.set $N8 (i32.load offset=28 (local.get $p)))
    (local.set $ts (i32.load offset=32 (local.get $p)))
    (local.set $acc (i32.load offset=36 (local.get $p)))
    (local.set $panel (i32.shl (local.get $K) (i32.const 5))) ;; bytes per packed panel: K x 8 floats
    (local.set $t (local.get $t0))
    (block $done (loop $lt
      (br_if $done (i32.ge_u (local.get $t) (local.get $t1)))
      (local.set $j (i32.const 0))
      (loop $lj
        (call $kernel6x8
          (i32.add (local.get $A) (i32.mul (local.get $t) (local.get $ts)))
          (local.get $rs) (local.get $ks)
          (i32.add (local.get $Bp) (i32.mul (i32.shr_u (local.get $j) (i32.const 3)) (local.get $panel)))
          (local.get $K)
          (i32.add (i32.add (local.get $C) (i32.mul (i32.mul (local.get $t) (i32.const 6)) (local.get $ldc)))
            (i32.shl (local.get $j) (i32.const 2)))
          (local.get $ldc) (local.get $acc))
        (local.set $j (i32.add (local.get $j) (i32.const 8)))
        (br_if $lj (i32.lt_u (local.get $j) (local.get $N8))))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br $lt)))
  )

;; The prefill's product Y = X W^T with W (N x K, rows K floats apart) read where it lies: for each
  ;; panel j in [j0, j1) (W's rows 8j .. 8j+7), the panel is packed k-major into this thread's `scratch`
  ;; (K x 8 floats: it stays in cache), then every row tile [0, word 10 of the params block) of X runs the
  ;; 6 x 8 kernel against it. W is read from memory once, and nothing the size of W is written: packing all
  ;; of W first (`pack`, transposed) cost the 972M prefill 0.63 s of 5 s, reading and writing 3.9 GB twice
  ;; more. Params block as gemm's, word 3 W instead of packed B, plus 10: row tiles. The results are
  ;; `pack` then gemm's, bit for bit (the same packed panel and kernel per tile).
  (func (export "gemmPanels") (param $p i32) (param $j0 i32) (param $j1 i32) (param $scratch i32)
    (local $A i32) (local $rs i32) (local $ks i32) (local $W i32) (local $K i32) (local $C i32) (local $ldc i32)
    (local $ts i32) (local $tiles i32) (local $t i32) (local $j i32) (local $panel i32) (local $acc i32)
    (local.set $A (i32.load (local.get $p)))
    (local.set $rs (i32.load offset=4 (local.get $p)))
    (local.set $ks (i32.load offset=8 (local.get $p)))
    (local.set $W (i32.load offset=12 (local.get $p)))
    (local.set $K (i32.load offset=16 (local.get $p)))
    (local.set $C (i32.load offset=20 (local.get $p)))
    (local.set $ldc (i32.load offset=24 (local.get $p)))
    (local.set $ts (i32.load offset=32 (local.get $p)))
    (local.set $acc (i32.load offset=36 (local.get $p)))
    (local.set $tiles (i32.load offset=40 (local.get $p)))
    (local.set $panel (i32.shl (local.get $K) (i32.const 5))) ;; bytes of 8 rows of W: K x 8 floats
    (local.set $j (local.get $j0))
    (block $done (loop $lj
      (br_if $done (i32.ge_u (local.get $j) (local.get $j1)))
      (call $packPanel (i32.add (local.get $W) (i32.mul (local.get $j) (local.get $panel))) (local.get $K)
        (local.get $scratch))
      (local.set $t (i32.const 0))
      (block $tilesDone (loop $lt
        (br_if $tilesDone (i32.ge_u (local.get $t) (local.get $tiles)))
        (call $kernel6x8
          (i32.add (local.get $A) (i32.mul (local.get $t) (local.get $ts)))
          (local.get $rs) (local.get $ks)
          (local.get $scratch)
          (local.get $K)
          (i32.add (i32.add (local.get $C) (i32.mul (i32.mul (local.get $t) (i32.const 6)) (local.get $ldc)))
            (i32.shl (local.get $j) (i32.const 5)))
          (local.get $ldc) (local.get $acc))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $lt)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $lj)))
  )

  ;; One panel of W's 8 rows (K floats apart, at src) k-major at dst: dst[k 8 + c] = W[c, k], as `pack`
  ;; with `transposed` lays a full panel out. Four k at a time, the 8 rows' vectors transposed in registers
  ;; (rows 0-3 and 4-7, a 4 x 4 transpose each); the k past a multiple of 4 one float at a time.
  (func $packPanel (param $src i32) (param $K i32) (param $dst i32)
    (local $rb i32) (local $k i32) (local $s i32) (local $c i32)
    (local.set $rb (i32.shl (local.get $K) (i32.const 2)))
    (local.set $s (local.get $src))
    (local.set $k (i32.const 4))
    (block $vdone (loop $lk
      (br_if $vdone (i32.gt_u (local.get $k) (local.get $K)))
      (call $transpose4Store
        (v128.load (local.get $s))
        (v128.load (i32.add (local.get $s) (local.get $rb)))
        (v128.load (i32.add (local.get $s) (i32.shl (local.get $rb) (i32.const 1))))
        (v128.load (i32.add (local.get $s) (i32.mul (local.get $rb) (i32.const 3))))
        (local.get $dst))
      (call $transpose4Store
        (v128.load (i32.add (local.get $s) (i32.shl (local.get $rb) (i32.const 2))))
        (v128.load (i32.add (local.get $s) (i32.mul (local.get $rb) (i32.const 5))))
        (v128.load (i32.add (local.get $s) (i32.mul (local.get $rb) (i32.const 6))))
        (v128.load (i32.add (local.get $s) (i32.mul (local.get $rb) (i32.const 7))))
        (i32.add (local.get $dst) (i32.const 16)))
      (local.set $s (i32.add (local.get $s) (i32.const 16)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 128)))
      (local.set $k (i32.add (local.get $k) (i32.const 4)))
      (br $lk)))
    ;; the last K mod 4 columns: k - 4 is the first of them
    (local.set $k (i32.sub (local.get $k) (i32.const 4)))
    (block $done (loop $lt
      (br_if $done (i32.ge_u (local.get $k) (local.get $K)))
      (local.set $c (i32.const 0))
      (loop $lc
        (f32.store (local.get $dst) (f32.load (i32.add (local.get $s) (i32.mul (local.get $c) (local.get $rb)))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br_if $lc (i32.lt_u (local.get $c) (i32.const 8))))
      (local.set $s (i32.add (local.get $s) (i32.const 4)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $lt)))
  )

  ;; Four rows a, b, c, d of four floats stored as their columns, 32 bytes apart from dst: (a_k, b_k, c_k, d_k)
  ;; at dst + 32 k (a panel's 8 floats per k: the other four rows' columns go 16 bytes further).
  (func $transpose4Store (param $a v128) (param $b v128) (param $c v128) (param $d v128) (param $dst i32)
    (local $ab01 v128) (local $ab23 v128) (local $cd01 v128) (local $cd23 v128)
    (local.set $ab01 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a) (local.get $b)))
    (local.set $ab23 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a) (local.get $b)))
    (local.set $cd01 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $c) (local.get $d)))
    (local.set $cd23 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $c) (local.get $d)))
    (v128.store (local.get $dst)
      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $ab01) (local.get $cd01)))
    (v128.store offset=32 (local.get $dst)
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $ab01) (local.get $cd01)))
    (v128.store offset=64 (local.get $dst)
      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $ab23) (local.get $cd23)))
    (v128.store offset=96 (local.get $dst)
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $ab23) (local.get $cd23)))
  )

    ;; Packs B (K x N, or its transpose stored N x K when `transposed`) at src into panels of 8 columns at
  ;; dst: dst[(panel K + k) 8 + c] = B[k, panel 8 + c], zero for columns >= N.
  (func (export "pack") (param $src i32) (param $K i32) (param $N i32) (param $transposed i32) (param $dst i32)
    (local $j i32) (local $k i32) (local $c i32) (local $col i32) (local $s i32)
    (loop $lj
      (if (i32.and (i32.eqz (local.get $transposed)) (i32.le_u (i32.add (local.get $j) (i32.const 8)) (local.get $N)))
        (then
          ;; a full panel of a row-major B: two vectors per k
          (local.set $s (i32.add (local.get $src) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $k (i32.const 0))
          (loop $lk
            (v128.store (local.get $dst) (v128.load (local.get $s)))
            (v128.store offset=16 (local.get $dst) (v128.load offset=16 (local.get $s)))
            (local.set $s (i32.add (local.get $s) (i32.shl (local.get $N) (i32.const 2))))
            (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br_if $lk (i32.lt_u (local.get $k) (local.get $K)))))
        (else
          (local.set $k (i32.const 0))
          (loop $lk
            (local.set $c (i32.const 0))
            (loop $lc
              (local.set $col (i32.add (local.get $j) (local.get $c)))
              (f32.store (local.get $dst)
                (if (result f32) (i32.lt_u (local.get $col) (local.get $N))
                  (then (f32.load (i32.add (local.get $src) (i32.shl
                    (if (result i32) (local.get $transposed)
                      (then (i32.add (i32.mul (local.get $col) (local.get $K)) (local.get $k)))
                      (else (i32.add (i32.mul (local.get $k) (local.get $N)) (local.get $col))))
                    (i32.const 2)))))
                  (else (f32.const 0))))
              (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
              (local.set $c (i32.add (local.get $c) (i32.const 1)))
              (br_if $lc (i32.lt_u (local.get $c) (i32.const 8))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br_if $lk (i32.lt_u (local.get $k) (local.get $K))))))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br_if $lj (i32.lt_u (local.get $j) (local.get $N))))
  )

  ;; Packs A^T (stored K x M, row-major, at src) into row panels of A at dst: panel t holds rows 6t .. 6t+5
  ;; k-major, dst[(t K + k) 6 + r] = A[6t + r, k] = src[k M + 6t + r], zero for rows >= M; M6 = 6 panels.
  (func (export "packAT") (param $src i32) (param $K i32) (param $M i32) (param $dst i32)
    (local $t i32) (local $k i32) (local $r i32) (local $row i32) (local $s i32) (local $full i32) (local $mb i32)
    (local.set $mb (i32.shl (local.get $M) (i32.const 2)))
    (loop $lt
      (local.set $full (i32.le_u (i32.add (local.get $t) (i32.const 6)) (local.get $M)))
      (local.set $s (i32.add (local.get $src) (i32.shl (local.get $t) (i32.const 2))))
      (local.set $k (i32.const 0))
      (loop $lk
        (if (local.get $full)
          (then
            (v128.store (local.get $dst) (v128.load (local.get $s)))
            (i64.store offset=16 (local.get $dst) (i64.load offset=16 (local.get $s))))
          (else
            (local.set $r (i32.const 0))
            (loop $lr
              (local.set $row (i32.add (local.get $t) (local.get $r)))
              (f32.store (i32.add (local.get $dst) (i32.shl (local.get $r) (i32.const 2)))
                (if (result f32) (i32.lt_u (local.get $row) (local.get $M))
                  (then (f32.load (i32.add (local.get $s) (i32.shl (local.get $r) (i32.const 2)))))
                  (else (f32.const 0))))
              (local.set $r (i32.add (local.get $r) (i32.const 1)))
              (br_if $lr (i32.lt_u (local.get $r) (i32.const 6))))))
        (local.set $s (i32.add (local.get $s) (local.get $mb)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 24)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br_if $lk (i32.lt_u (local.get $k) (local.get $K))))
      (local.set $t (i32.add (local.get $t) (i32.const 6)))
      (br_if $lt (i32.lt_u (local.get $t) (local.get $M))))
  )

  ;; Packs B(k, n) = src[k sk + n sn] (strides in floats; K x N) into panels of 8 columns at dst, as `pack`
  ;; does: dst[(panel K + k) 8 + c] = B[k, panel 8 + c], zero for columns >= N. Whole panels of a B whose
  ;; columns are adjacent (sn = 1) move two vectors per k.
  (func (export "packStrided") (param $src i32) (param $K i32) (param $N i32) (param $sk i32) (param $sn i32)
    (param $dst i32)
    (local $j i32) (local $k i32) (local $c i32) (local $s i32) (local $skb i32) (local $snb i32)
    (local.set $skb (i32.shl (local.get $sk) (i32.const 2)))
    (local.set $snb (i32.shl (local.get $sn) (i32.const 2)))
    (loop $lj
      (local.set $s (i32.add (local.get $src) (i32.mul (local.get $j) (local.get $snb))))
      (local.set $k (i32.const 0))
      (if (i32.and (i32.eq (local.get $sn) (i32.const 1)) (i32.le_u (i32.add (local.get $j) (i32.const 8)) (local.get $N)))
        (then
          (loop $lk
            (v128.store (local.get $dst) (v128.load (local.get $s)))
            (v128.store offset=16 (local.get $dst) (v128.load offset=16 (local.get $s)))
            (local.set $s (i32.add (local.get $s) (local.get $skb)))
            (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br_if $lk (i32.lt_u (local.get $k) (local.get $K)))))
        (else
          (loop $lk
            (local.set $c (i32.const 0))
            (loop $lc
              (f32.store (local.get $dst)
                (if (result f32) (i32.lt_u (i32.add (local.get $j) (local.get $c)) (local.get $N))
                  (then (f32.load (i32.add (local.get $s) (i32.mul (local.get $c) (local.get $snb)))))
                  (else (f32.const 0))))
              (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
              (local.set $c (i32.add (local.get $c) (i32.const 1)))
              (br_if $lc (i32.lt_u (local.get $c) (i32.const 8))))
            (local.set $s (i32.add (local.get $s) (local.get $skb)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br_if $lk (i32.lt_u (local.get $k) (local.get $K))))))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br_if $lj (i32.lt_u (local.get $j) (local.get $N))))
  )

  ;; dst[m ldd + n] = src[m lds + n] (or += when acc) for m < M, n < N: a product's padded tiles into the
  ;; matrix it belongs to (leading dimensions in floats).
  (func (export "epilogue") (param $src i32) (param $lds i32) (param $dst i32) (param $ldd i32) (param $M i32)
    (param $N i32) (param $acc i32)
    (local $m i32) (local $n i32) (local $s i32) (local $d i32) (local $N4 i32)
    (local.set $N4 (i32.and (local.get $N) (i32.const -4)))
    (block $done (loop $lm
      (br_if $done (i32.ge_u (local.get $m) (local.get $M)))
      (local.set $s (i32.add (local.get $src) (i32.shl (i32.mul (local.get $m) (local.get $lds)) (i32.const 2))))
      (local.set $d (i32.add (local.get $dst) (i32.shl (i32.mul (local.get $m) (local.get $ldd)) (i32.const 2))))
      (local.set $n (i32.const 0))
      (block $vdone (loop $ln
        (br_if $vdone (i32.ge_u (local.get $n) (local.get $N4)))
        (v128.store (local.get $d)
          (if (result v128) (local.get $acc)
            (then (f32x4.add (v128.load (local.get $d)) (v128.load (local.get $s))))
            (else (v128.load (local.get $s)))))
        (local.set $s (i32.add (local.get $s) (i32.const 16)))
        (local.set $d (i32.add (local.get $d) (i32.const 16)))
        (local.set $n (i32.add (local.get $n) (i32.const 4)))
        (br $ln)))
      (block $sdone (loop $lt
        (br_if $sdone (i32.ge_u (local.get $n) (local.get $N)))
        (f32.store (local.get $d)
          (if (result f32) (local.get $acc)
            (then (f32.add (f32.load (local.get $d)) (f32.load (local.get $s))))
            (else (f32.load (local.get $s)))))
        (local.set $s (i32.add (local.get $s) (i32.const 4)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $lt)))
      (local.set $m (i32.add (local.get $m) (i32.const 1)))
      (br $lm)))
  )
