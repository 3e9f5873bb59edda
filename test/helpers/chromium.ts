import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';

/** The Debian package's binary (apt-get install chromium), if present. */
export function findChromium(): string | null {
  for (const name of ['chromium', 'chromium-browser']) {
    const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (found.status === 0 && found.stdout.trim()) return found.stdout.trim();
  }
  return null;
}

type Message = { id?: number; method?: string; params?: Record<string, any>; result?: any; error?: { message: string }; sessionId?: string };

/**
 * Headless Chromium driven over the DevTools protocol through --remote-debugging-pipe (fd 3 in, fd 4 out, messages
 * ended by NUL): no WebSocket client, no browser download, only the distribution's binary.
 * Every host name resolves to nothing, so a page that tried the network would fail and be seen doing so.
 */
export class Chromium {
  private readonly child: ChildProcess;
  private readonly input: Writable;
  private nextId = 1;
  private buffer = '';
  private readonly waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void; method: string }>();
  private readonly listeners: ((message: Message) => void)[] = [];
  private readonly profile = mkdtempSync(path.join(tmpdir(), 'cs-chromium-'));

  constructor(binary: string) {
    this.child = spawn(
      binary,
      [
        '--headless=new',
        '--remote-debugging-pipe',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--no-default-browser-check',
        '--disable-extensions',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--host-resolver-rules=MAP * ~NOTFOUND',
        `--user-data-dir=${this.profile}`,
        'about:blank',
      ],
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
    );
    this.input = this.child.stdio[3] as Writable;
    const output = this.child.stdio[4] as Readable;
    output.setEncoding('utf8');
    output.on('data', (chunk: string) => {
      this.buffer += chunk;
      let end: number;
      while ((end = this.buffer.indexOf('\0')) !== -1) {
        const message = JSON.parse(this.buffer.slice(0, end)) as Message;
        this.buffer = this.buffer.slice(end + 1);
        this.dispatch(message);
      }
    });
    this.child.stderr!.resume();
    this.child.on('exit', () => {
      for (const pending of this.waiting.values()) pending.reject(new Error(`chromium exited during ${pending.method}`));
      this.waiting.clear();
    });
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, method });
      this.input.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  on(listener: (message: Message) => void): void {
    this.listeners.push(listener);
  }

  /** Resolves with the first event of `method` (in `sessionId`) that arrives from now on. */
  next(method: string, sessionId?: string): Promise<Record<string, any>> {
    return new Promise((resolve) => {
      const listener = (message: Message) => {
        if (message.method === method && (!sessionId || message.sessionId === sessionId)) {
          this.listeners.splice(this.listeners.indexOf(listener), 1);
          resolve(message.params ?? {});
        }
      };
      this.listeners.push(listener);
    });
  }

  /** Attaches to the first page target and returns its session. */
  async page(): Promise<string> {
    const { targetInfos } = await this.send('Target.getTargets');
    const target = (targetInfos as { type: string; targetId: string }[]).find((t) => t.type === 'page');
    const targetId = target ? target.targetId : (await this.send('Target.createTarget', { url: 'about:blank' })).targetId;
    return (await this.send('Target.attachToTarget', { targetId, flatten: true })).sessionId as string;
  }

  async close(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.send('Browser.close').catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    rmSync(this.profile, { recursive: true, force: true });
  }

  private dispatch(message: Message): void {
    if (message.id !== undefined) {
      const pending = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      if (message.error) pending?.reject(new Error(`${pending.method}: ${message.error.message}`));
      else pending?.resolve(message.result);
      return;
    }
    for (const listener of [...this.listeners]) listener(message);
  }
}
