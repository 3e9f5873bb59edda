/** CRC-32C (Castagnoli), incremental: GCS reports it in `x-goog-hash` and Node 20 has no built-in for it. */
const TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

/** Feed chunks with the previous return value (start with 0); the result is the unsigned CRC. */
export function crc32c(chunk: Uint8Array, previous = 0): number {
  let crc = ~previous;
  for (let i = 0; i < chunk.length; i++) crc = TABLE[(crc ^ chunk[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** The base64 of the big-endian CRC, as GCS writes it. */
export function crc32cBase64(crc: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc >>> 0);
  return bytes.toString('base64');
}
