const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** Milliseconds in a validated duration such as "30d" (config/schema.ts admits only these forms). */
export function durationMs(text: string): number {
  const match = /^([0-9]+)(m|h|d|w)$/.exec(text);
  if (!match) throw new Error(`not a duration: ${text}`);
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}
