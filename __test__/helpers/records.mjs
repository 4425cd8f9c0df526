// Self-describing test records for the durability tests.
//
// A record's whole content is derivable from its identity (run, writer, counter, batch, sync), so
// the verifier can tell, for any record found in a recovered log, whether it is exactly a record
// that the child produced — a torn, shifted, zero-filled or mixed-up record cannot pass.
//
// Layout (little-endian):
//   0   4  magic "UDBT"
//   4   4  run          (one child process per run; restarts continue on the same directory)
//   8   4  writer       (one async loop in the child)
//   12  4  counter      (0, 1, 2, ... per (run, writer), in the writer's append order)
//   16  4  batchStart   (counter of the first record of the append/appendMany call it came from)
//   20  4  batchLen     (1 for append, n for appendMany)
//   24  1  sync         (1: appended with sync:true, 0: sync:false)
//   25  2  payloadLen
//   27  L  payload      (xorshift32 stream seeded from the identity)
//   27+L 4 FNV-1a 32 of bytes [0, 27+L)

import { mix32 } from './util.mjs';

const MAGIC = 0x54424455; // "UDBT" read as u32le
const HEADER_BYTES = 27;

function seedOf(run, writer, counter) {
  return mix32(mix32(run, writer), counter) || 1;
}

/** Payload length for an identity: mostly small, sometimes a few KiB (to straddle pages/segments). */
export function payloadLenOf(run, writer, counter) {
  const h = seedOf(run, writer, counter);
  return h % 61 === 0 ? 2048 + (h % 3000) : h % 200;
}

function fnv1a32(buf, end) {
  let h = 0x811c9dc5;
  for (let i = 0; i < end; i++) {
    h ^= buf[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The exact bytes of the record with this identity. */
export function makeRecord({ run, writer, counter, batchStart = counter, batchLen = 1, sync = true }) {
  const len = payloadLenOf(run, writer, counter);
  const buf = Buffer.allocUnsafe(HEADER_BYTES + len + 4);
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt32LE(run, 4);
  buf.writeUInt32LE(writer, 8);
  buf.writeUInt32LE(counter, 12);
  buf.writeUInt32LE(batchStart, 16);
  buf.writeUInt32LE(batchLen, 20);
  buf.writeUInt8(sync ? 1 : 0, 24);
  buf.writeUInt16LE(len, 25);
  let x = seedOf(run, writer, counter);
  for (let i = 0; i < len; i++) {
    // xorshift32
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buf[HEADER_BYTES + i] = x & 0xff;
  }
  buf.writeUInt32LE(fnv1a32(buf, HEADER_BYTES + len), HEADER_BYTES + len);
  return buf;
}

/**
 * The identity of `data` if it is exactly a record that makeRecord produces, else null.
 * (Re-derives the whole record from the header and compares every byte.)
 */
export function parseRecord(data) {
  if (!Buffer.isBuffer(data) || data.length < HEADER_BYTES + 4) return null;
  if (data.readUInt32LE(0) !== MAGIC) return null;
  const id = {
    run: data.readUInt32LE(4),
    writer: data.readUInt32LE(8),
    counter: data.readUInt32LE(12),
    batchStart: data.readUInt32LE(16),
    batchLen: data.readUInt32LE(20),
    sync: data.readUInt8(24) === 1,
  };
  if (data.readUInt8(24) > 1) return null;
  if (data.readUInt16LE(25) !== payloadLenOf(id.run, id.writer, id.counter)) return null;
  if (id.batchLen < 1 || id.counter < id.batchStart || id.counter >= id.batchStart + id.batchLen) return null;
  return makeRecord(id).equals(data) ? id : null;
}

/** A short printable identity, for messages. */
export function idString(id) {
  return `run=${id.run} writer=${id.writer} counter=${id.counter} batch=${id.batchStart}+${id.batchLen} sync=${id.sync}`;
}

/** A fixed-size record whose bytes are derived from its index (first 4 bytes: index, u32le). */
export function indexedRecord(index, bytes) {
  const b = Buffer.alloc(bytes, index & 0xff);
  b.writeUInt32LE(index, 0);
  return b;
}
