// The emulator as the benchmarks use it: `compliance-sync emulator` in its own process, so its memory is not counted in
// the process being measured.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js');
/** Not a real credential: the emulator accepts whatever token it is started with. */
export const TOKEN = 'bench-token-0123456789';

/** Starts the emulator with zero processing delay; resolves with `{ url, proc, stop }` once it listens. */
export function startEmulator(extra = []) {
  const args = [cli, 'emulator', '--port', '0', '--processing-ms', '0', '--token', TOKEN, '--log-level', 'silent', ...extra];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let errText = '';
  proc.stderr.on('data', (d) => (errText += d));
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /emulator listening on (\S+)/.exec(out);
      if (m) resolve({ url: m[1].replace(/\/+$/, ''), proc, stop: () => stopProcess(proc) });
    });
    proc.on('exit', (code) => reject(new Error(`emulator exited ${code}: ${errText.slice(-2000)}`)));
  });
}

/** SIGTERM, then resolves when the process has exited. */
export function stopProcess(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', resolve);
    proc.kill('SIGTERM');
  });
}
