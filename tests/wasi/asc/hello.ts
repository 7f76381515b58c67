// hello.ts — an AssemblyScript program on @assemblyscript/wasi-shim: console output,
// argv, the environment, clocks, randomness and exit, all through WASI imports.
console.log("hello from AssemblyScript");
const args = process.argv;
console.log("argc=" + args.length.toString());
for (let i = 1; i < args.length; i++) console.log("arg " + args[i]);
let sum: i64 = 0;
for (let i: i64 = 1; i <= 100; i++) sum += i;
console.log("sum=" + sum.toString());
const env = process.env;
console.log("GREETING=" + (env.has("GREETING") ? env.get("GREETING") : "(unset)"));
console.log("HOME granted: " + (env.has("HOME") ? "yes" : "no"));
const t0 = Date.now();
console.log("clock sane: " + (t0 > 1577836800000 ? "yes" : "no"));
const r = Math.random();
console.log("random in [0,1): " + (r >= 0 && r < 1 ? "yes" : "no"));
process.stderr.write("to stderr\n");
process.exit(7);
