import { chmodSync, closeSync, openSync } from 'node:fs';

/**
 * The store, its WAL, the work files and the rejects hold archive content and IDs: readable by their owner only,
 * whatever the umask. Modes are passed explicitly to every open that creates such a file.
 */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Creates `file` empty with mode 0600 unless it exists (an existing file keeps the mode its owner gave it). SQLite
 * gives the -wal and -shm files the mode of the database file, so creating the store this way covers them too.
 */
export function createPrivateFile(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'wx', PRIVATE_FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  closeSync(fd);
  // open() applies the umask, which may take away more (0400 is still private, but SQLite needs to write).
  chmodSync(file, PRIVATE_FILE_MODE);
}
