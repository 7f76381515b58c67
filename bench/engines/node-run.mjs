// node-run.mjs — runs one benchmark kernel on node's WebAssembly engine (V8) and
// prints the checksum that its exported run() returns, as an unsigned decimal, the
// way bench/run reads every engine's answer.
//
// usage: node bench/engines/node-run.mjs KERNEL.wasm [EXPORT]
// The kernels import nothing; the whole process (start-up, compile, run) is what
// bench/run times, as it does for every other engine.
import { readFileSync } from 'node:fs';

const [path, name = 'run'] = process.argv.slice(2);
if (!path) {
  console.error('usage: node node-run.mjs KERNEL.wasm [EXPORT]');
  process.exit(2);
}
const { instance } = await WebAssembly.instantiate(readFileSync(path), {});
const fn = instance.exports[name];
if (typeof fn !== 'function') {
  console.error(`${path} exports no function "${name}"`);
  process.exit(2);
}
const result = fn();
// i32 results come back signed; bench/run compares unsigned 32-bit values.
console.log(typeof result === 'bigint' ? BigInt.asUintN(64, result).toString() : String(result >>> 0));
