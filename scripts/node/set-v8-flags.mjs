// Reads workerd's binary Cap'n Proto Config (as miniflare sends it) on stdin and writes it to stdout with the
// arguments as its v8Flags (pointer 2 of the root struct, a List(Text)). The list and its texts are appended
// to the first segment, so every other pointer keeps its target. Plain JavaScript: run by node from a shell.
import { readFileSync, writeSync } from 'node:fs';

const flags = process.argv.slice(2);
const message = readFileSync(0);
const segments = message.readUInt32LE(0) + 1;
const sizes = Array.from({ length: segments }, (_, i) => message.readUInt32LE(4 + 4 * i)); // in 8-byte words
const headerBytes = Math.ceil((4 + 4 * segments) / 8) * 8;
const bodies = [];
for (let at = headerBytes, i = 0; i < segments; at += sizes[i++] * 8) bodies.push(message.subarray(at, at + sizes[i] * 8));

const word = (seg, i) => seg.readBigUInt64LE(i * 8);
const root = word(bodies[0], 0);
if ((root & 3n) !== 0n) throw new Error('workerd-v8-flags: the root pointer is not a struct pointer');
const structAt = 1 + Number(BigInt.asIntN(30, (root >> 2n) & 0x3fffffffn));
const dataWords = Number((root >> 32n) & 0xffffn);
const pointerWords = Number(root >> 48n);
const slot = structAt + dataWords + 2;
if (pointerWords < 3 || word(bodies[0], slot) !== 0n) throw new Error('workerd-v8-flags: no empty v8Flags field in the config');

/** A list pointer at word `from` to word `to`: element size code (2 bytes, 6 pointers) and count. */
const listPointer = (from, to, sizeCode, count) =>
  (BigInt((to - from - 1) << 2) & 0xfffffffcn) | 1n | (BigInt(sizeCode) << 32n) | (BigInt(count) << 35n);
const end = sizes[0];
const texts = flags.map((f) => Buffer.from(f + '\0'));
const extra = Buffer.alloc((flags.length + texts.reduce((n, t) => n + Math.ceil(t.length / 8), 0)) * 8);
let textAt = end + flags.length;
texts.forEach((t, i) => {
  extra.writeBigUInt64LE(listPointer(end + i, textAt, 2, t.length), i * 8);
  t.copy(extra, (textAt - end) * 8);
  textAt += Math.ceil(t.length / 8);
});
const first = Buffer.concat([bodies[0], extra]);
first.writeBigUInt64LE(listPointer(slot, end, 6, flags.length), slot * 8);
sizes[0] = first.length / 8;
const header = Buffer.alloc(headerBytes);
header.writeUInt32LE(segments - 1, 0);
sizes.forEach((s, i) => header.writeUInt32LE(s, 4 + 4 * i));
const out = Buffer.concat([header, first, ...bodies.slice(1)]);
for (let at = 0; at < out.length; ) at += writeSync(1, out, at, Math.min(1 << 20, out.length - at));
