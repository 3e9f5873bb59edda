#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { AppError, EXIT, describeError } from './errors.js';
import { registerApply } from './cli/apply.js';
import { registerCheckConfig } from './cli/check-config.js';
import { registerDemo } from './cli/demo.js';
import { registerEmulator } from './cli/emulator.js';
import { registerExport } from './cli/export.js';
import { registerMigrate } from './cli/migrate.js';
import { registerReconcile } from './cli/reconcile.js';
import { registerReport } from './cli/report.js';
import { registerRun } from './cli/run.js';
import { registerStatus } from './cli/status.js';
import { registerTombstones } from './cli/tombstones.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('compliance-sync')
    .description("Keeps a local SQLite archive of Tweets and users compliant with X's batch compliance API.")
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  // In the order a newcomer meets them: the daemon, the one-off run, the pieces, the views, the setup, the fakes.
  for (const register of [
    registerRun,
    registerReconcile,
    registerApply,
    registerExport,
    registerStatus,
    registerReport,
    registerTombstones,
    registerCheckConfig,
    registerMigrate,
    registerEmulator,
    registerDemo,
  ]) {
    register(program);
  }
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Runs the CLI and returns the exit code; every error ends here as one line and a `Try:` line. */
export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return process.exitCode === undefined ? EXIT.ok : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version "errors" are how commander says it printed what was asked.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof AppError) {
      process.stderr.write(`compliance-sync: ${err.message}\n`);
      if (err.hint) process.stderr.write(`Try: ${err.hint}\n`);
      return err.exitCode;
    }
    process.stderr.write(`compliance-sync: unexpected error: ${describeError(err)}\n`);
    if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.stderr.write('Try: rerun with log.level "debug" and report this if it persists\n');
    return EXIT.failure;
  }
}

process.exitCode = await main(process.argv.slice(2));
