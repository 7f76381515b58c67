;; loop.wat — a counted loop with a loop-carried dependency: 10,000,000 iterations of
;; s = s * 1103515245 + i, the shape of a compiled C `for` loop.
(module
  (func (export "run") (result i32)
    (local $i i32) (local $s i32)
    (loop $l
      (local.set $s (i32.add (i32.mul (local.get $s) (i32.const 1103515245)) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 10000000))))
    (local.get $s)))
