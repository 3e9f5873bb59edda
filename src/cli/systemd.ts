import { spawn } from 'node:child_process';

/**
 * sd_notify through the `systemd-notify` tool: Node cannot send the datagram itself, so the unit sets
 * NotifyAccess=all and we name our PID. A no-op outside systemd (no NOTIFY_SOCKET).
 */
export class SystemdNotifier {
  private readonly enabled = Boolean(process.env.NOTIFY_SOCKET);
  private watchdog: NodeJS.Timeout | undefined;
  private lastStatus = '';

  ready(status: string): void {
    this.send(['--ready', `--status=${status}`]);
    this.lastStatus = status;
    const usec = Number(process.env.WATCHDOG_USEC);
    if (this.enabled && usec > 0 && !this.watchdog) {
      this.watchdog = setInterval(() => this.send(['WATCHDOG=1']), Math.max(1000, usec / 2000));
      this.watchdog.unref();
    }
  }

  status(status: string): void {
    if (status === this.lastStatus) return;
    this.lastStatus = status;
    this.send([`--status=${status}`]);
  }

  reloading(): void {
    this.send(['RELOADING=1']);
  }

  stopping(): void {
    this.send(['STOPPING=1']);
    if (this.watchdog) clearInterval(this.watchdog);
  }

  private send(args: string[]): void {
    if (!this.enabled) return;
    const child = spawn('systemd-notify', [`--pid=${process.pid}`, ...args], { stdio: 'ignore' });
    child.on('error', () => undefined);
    child.unref();
  }
}
