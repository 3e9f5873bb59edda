import { mulberry32 } from '../prng.js';
import { hashStart, hashStringUnit } from './outcomes.js';

/** A seeded PRNG for a string seed: the emulator's shuffles and fault draws repeat for a given seed. */
export function seededRandom(seed: string): () => number {
  return mulberry32(Math.floor(hashStringUnit(hashStart('prng\u0000'), seed) * 4294967296));
}
