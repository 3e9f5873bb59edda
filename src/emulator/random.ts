import { hashStart, hashStringUnit } from './outcomes.js';

/** A small seeded PRNG (mulberry32): the emulator's shuffles and fault draws repeat for a given seed. */
export function seededRandom(seed: string): () => number {
  let a = Math.floor(hashStringUnit(hashStart('prng\u0000'), seed) * 4294967296) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
