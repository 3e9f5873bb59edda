import cron from 'node-cron';
import type { Config } from '../config/load.js';
import type { JobType } from '../types.js';

/** Leeway past the expected interval before a late cycle counts as unhealthy (clock skew, a slow start). */
const GRACE_MS = 60_000;

export interface Health {
  ok: boolean;
  /** One line per scheduled type: why it is healthy or not. */
  lines: string[];
}

export interface HealthInput {
  config: Config;
  now: Date;
  /** Finish time of the latest real closed cycle per type (epoch seconds). */
  lastSuccess: (type: JobType) => number | null;
  /** How the latest cycle this process ran ended, per type (undefined before the first). */
  lastOutcome: (type: JobType) => string | undefined;
  running: (type: JobType) => boolean;
}

/** Time between two consecutive runs of the schedule, from the next two it will make. */
function scheduleIntervalMs(expression: string, timezone: string, from: Date): number {
  const task = cron.createTask(expression, () => undefined, { timezone });
  try {
    const runs = task.getNextRuns(2).filter((run) => run >= from);
    return runs.length === 2 ? runs[1]!.getTime() - runs[0]!.getTime() : 86_400_000;
  } finally {
    void task.destroy();
  }
}

/**
 * Healthy while every scheduled type's latest cycle succeeded and its last success is no older than the schedule's
 * interval (two intervals while a cycle of it is running: a long cycle is not a failure).
 */
export function checkHealth(input: HealthInput): Health {
  const { config, now } = input;
  const interval = scheduleIntervalMs(config.schedule.cron, config.schedule.timezone, now);
  const lines: string[] = [];
  let ok = true;
  for (const type of config.schedule.types) {
    const outcome = input.lastOutcome(type);
    const last = input.lastSuccess(type);
    const running = input.running(type);
    const allowed = interval * (running ? 2 : 1) + GRACE_MS;
    const age = last === null ? null : now.getTime() - last * 1000;
    let problem: string | null = null;
    if (outcome === 'failed' && !running) problem = `the last ${type} cycle failed (see the log); the next run resumes it`;
    else if (outcome === 'held' && !running) problem = `the last ${type} cycle is held by the safety gate: confirm with reconcile --now --confirm-deletions`;
    else if (age === null) problem = `no ${type} cycle has closed yet`;
    else if (age > allowed) problem = `the last ${type} cycle closed ${Math.round(age / 1000)} s ago, beyond the expected interval of ${Math.round(allowed / 1000)} s`;
    if (problem) ok = false;
    lines.push(problem ?? `${type}: last cycle closed ${Math.round(age! / 1000)} s ago${running ? '; one is running' : ''}`);
  }
  return { ok, lines };
}
