import cliProgress from 'cli-progress';
import { divertTerminalLogs } from '../log.js';
import type { CycleEvents } from '../pipeline/events.js';
import type { JobType } from '../types.js';

interface Line {
  shard: number;
  shards: number;
  state: string;
  job: string;
  uploaded: number;
  lines: number;
}

/** Live progress per type on a terminal: shard i/n, job status, IDs uploaded, result lines applied. */
export function showProgress(events: CycleEvents, stream: NodeJS.WriteStream = process.stderr): () => void {
  const bars = new cliProgress.MultiBar(
    {
      stream,
      format: '{type} [{bar}] shard {shard}/{shards} {state} · job {job} · {uploaded} IDs uploaded · {lines} result lines applied',
      hideCursor: true,
      clearOnComplete: false,
      barsize: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  const lines = new Map<JobType, { bar: cliProgress.SingleBar; line: Line; linesBefore: number; shardLines: number }>();
  const line = (type: JobType, shards: number) => {
    let entry = lines.get(type);
    if (!entry) {
      const initial: Line = { shard: 0, shards, state: 'planning', job: '-', uploaded: 0, lines: 0 };
      entry = { bar: bars.create(Math.max(1, shards), 0, { type: type.padEnd(6), ...initial }), line: initial, linesBefore: 0, shardLines: 0 };
      lines.set(type, entry);
    }
    return entry;
  };
  const render = (type: JobType, shards: number, patch: Partial<Line>, done?: number) => {
    const entry = line(type, shards);
    Object.assign(entry.line, patch);
    entry.bar.setTotal(Math.max(1, entry.line.shards));
    entry.bar.update(done ?? entry.bar.getProgress() * entry.bar.getTotal(), { type: type.padEnd(6), ...entry.line });
  };
  events.on('cycle:started', (e) => render(e.type, e.shards, { shards: e.shards, state: 'started' }, 0));
  events.on('shard:state', (e) => {
    const entry = line(e.type, e.shards);
    const uploaded = e.state === 'uploaded' ? entry.line.uploaded + e.ids : entry.line.uploaded;
    const finished = e.state === 'applied' || e.state === 'failed' ? entry.bar.getProgress() * entry.bar.getTotal() + 1 : undefined;
    if (e.state === 'applied') {
      // Result lines are counted per shard by the reconciler; the line shows the cycle's running total.
      entry.linesBefore += entry.shardLines;
      entry.shardLines = 0;
    }
    render(e.type, e.shards, { shard: e.seq, shards: e.shards, state: e.state, uploaded }, finished);
  });
  events.on('job:created', (e) => render(e.type, 0, { job: 'created' }));
  events.on('job:status', (e) => render(e.type, 0, { job: e.status }));
  events.on('apply:batch', (e) => {
    const entry = line(e.type, 0);
    entry.shardLines = e.linesRead;
    render(e.type, 0, { lines: entry.linesBefore + e.linesRead });
  });
  events.on('cycle:closed', (e) => render(e.type, e.summary.shards.total, { state: 'closed' }));
  // Warnings during the run appear above the bars, whole, instead of being drawn over.
  divertTerminalLogs((text) => bars.log(text));
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    bars.update();
    divertTerminalLogs(null);
    bars.stop();
  };
}

/** The byte progress of `apply FILE` on a terminal; log lines appear above it, whole. */
export function showApplyProgress(totalBytes: number, stream: NodeJS.WriteStream = process.stderr) {
  const bars = new cliProgress.MultiBar(
    { stream, format: '{phase} [{bar}] {percentage}% · {value}/{total} bytes · eta {eta_formatted}', hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  const bar = bars.create(Math.max(1, totalBytes), 0, { phase: 'checking' });
  divertTerminalLogs((text) => bars.log(text));
  let stopped = false;
  return {
    update: (bytes: number, phase: string) => bar.update(bytes, { phase }),
    stop: () => {
      if (stopped) return;
      stopped = true;
      bars.update();
      divertTerminalLogs(null);
      bars.stop();
    },
  };
}
