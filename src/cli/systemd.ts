import { spawn } from 'node:child_process';

/**
 * A `systemd-notify` that has not returned by then is killed, so one stuck message cannot hold the queue for ever.
 * Generous: it gives up its own wait for PID 1 after a few seconds, and killing it earlier could lose a READY=1.
 */
const SEND_TIMEOUT_MS = 60_000;

/**
 * sd_notify through the `systemd-notify` tool: Node cannot send the datagram itself, so the unit sets
 * NotifyAccess=all and we name our PID. A no-op outside systemd (no NOTIFY_SOCKET).
 *
 * Messages go out one at a time, in order: each `systemd-notify` waits until PID 1 has processed its message (it
 * sends a barrier unless given --no-block, systemd-notify(1)), and the next one is spawned only after it exited.
 * Independent processes could overtake each other: a READY=1 processed before its RELOADING=1 leaves the unit
 * "reloading" until the start timeout, and every `systemctl reload` meanwhile blocks.
 */
export class SystemdNotifier {
  private readonly enabled: boolean;
  private watchdog: NodeJS.Timeout | undefined;
  private lastStatus = '';
  private readonly watchdogUsec: number;
  private queue: Promise<void> = Promise.resolve();
  private pinging = false;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.enabled = Boolean(env.NOTIFY_SOCKET);
    this.watchdogUsec = Number(env.WATCHDOG_USEC);
  }

  /** READY=1 with a status: after start, and to end a reload. */
  ready(status: string): Promise<void> {
    this.lastStatus = status;
    const sent = this.send(['READY=1', `STATUS=${status}`]);
    if (this.enabled && this.watchdogUsec > 0 && !this.watchdog) {
      this.watchdog = setInterval(() => this.ping(), Math.max(1000, this.watchdogUsec / 2000));
      this.watchdog.unref();
    }
    return sent;
  }

  status(status: string): Promise<void> {
    if (status === this.lastStatus) return this.queue;
    this.lastStatus = status;
    return this.send([`STATUS=${status}`]);
  }

  /**
   * RELOADING=1 with MONOTONIC_USEC, which systemd ≥ 253 uses to match a reload with the READY=1 that ends it
   * (Type=notify-reload, systemd.service(5)); earlier versions ignore the field. Node's hrtime is CLOCK_MONOTONIC.
   */
  reloading(): Promise<void> {
    this.lastStatus = 'reloading the config';
    return this.send(['RELOADING=1', `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`, `STATUS=${this.lastStatus}`]);
  }

  stopping(): Promise<void> {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
    return this.send(['STOPPING=1']);
  }

  /** Resolves when every message queued so far has been handed over. */
  flushed(): Promise<void> {
    return this.queue;
  }

  /**
   * WATCHDOG=1 goes beside the queue: its order against other messages means nothing, and behind a backlog of
   * messages (a burst of reloads on a slow machine) it could arrive after WatchdogSec. One ping in flight at a time.
   */
  private ping(): void {
    if (this.pinging) return;
    this.pinging = true;
    void notifyOnce(['WATCHDOG=1']).finally(() => (this.pinging = false));
  }

  private send(fields: string[]): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    this.queue = this.queue.then(() => notifyOnce(fields));
    return this.queue;
  }
}

function notifyOnce(fields: string[]): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn('systemd-notify', [`--pid=${process.pid}`, ...fields], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), SEND_TIMEOUT_MS);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    child.on('error', done);
    child.on('exit', done);
  });
}
