import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach } from 'vitest';

/** A fresh temp directory per test, removed afterwards. */
export function useTempDir(): () => string {
  return tempDirsRemovedBy(afterEach);
}

/**
 * Like useTempDir, but a directory lasts for the whole file (removed in afterAll): for what a beforeAll builds once and
 * several tests read or copy.
 */
export function useFileTempDir(): () => string {
  return tempDirsRemovedBy(afterAll);
}

function tempDirsRemovedBy(hook: typeof afterEach | typeof afterAll): () => string {
  const dirs: string[] = [];
  hook(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cs-test-'));
    dirs.push(dir);
    return dir;
  };
}

export function writeJson(file: string, value: unknown): string {
  writeFileSync(file, JSON.stringify(value, null, 2));
  return file;
}

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
export const CLI = path.join(REPO_ROOT, 'dist/cli.js');
