#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { EXIT, describeError, explainError } from './errors.js';
import { registerApply } from './cli/apply.js';
import { registerAudit } from './cli/audit.js';
import { registerCheckConfig } from './cli/check-config.js';
import { registerDemo } from './cli/demo.js';
import { registerEmulator } from './cli/emulator.js';
import { registerExport } from './cli/export.js';
import { registerMigrate } from './cli/migrate.js';
import { registerReconcile } from './cli/reconcile.js';
import { registerReload } from './cli/reload.js';
import { registerReport } from './cli/report.js';
import { registerRun } from './cli/run.js';
import { registerStatus } from './cli/status.js';
import { registerTombstones } from './cli/tombstones.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('compliance-sync')
    .description("Keeps a local SQLite archive of Tweets and users compliant with X's batch compliance API.")
    .version(pkg.version)
    // Commander's own complaints ("unknown option", "missing required argument") in the one-line + `Try:` form.
    .configureOutput({ outputError: (text, write) => write(usageLines(text)) })
    .exitOverride();
  // In the order a newcomer meets them: the daemon, the one-off run, the pieces, the views, the setup, the fakes.
  for (const register of [
    registerRun,
    registerReload,
    registerReconcile,
    registerApply,
    registerExport,
    registerStatus,
    registerReport,
    registerTombstones,
    registerAudit,
    registerCheckConfig,
    registerMigrate,
    registerEmulator,
    registerDemo,
  ]) {
    register(program);
  }
  for (const command of program.commands) {
    command.exitOverride().configureOutput({ outputError: (text, write) => write(usageLines(text, command.name())) });
  }
  return program;
}

/** `error: unknown option '--x'\n(Did you mean --y?)` → `compliance-sync: unknown option '--x' (did you mean --y?)` + `Try:`. */
function usageLines(text: string, command?: string): string {
  const message = text
    .trim()
    .replace(/^error:\s*/i, '')
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\(Did you mean/, '(did you mean');
  return `compliance-sync: ${message}\nTry: compliance-sync${command ? ` ${command}` : ''} --help\n`;
}

/** `status | head` closes the pipe early: that is the reader's choice, not a failure worth a stack trace. */
function exitQuietlyOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok);
    throw err;
  });
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
    const known = explainError(err);
    if (known) {
      process.stderr.write(`compliance-sync: ${known.message}\n`);
      if (known.hint) process.stderr.write(`Try: ${known.hint}\n`);
      return known.exitCode;
    }
    process.stderr.write(`compliance-sync: unexpected error: ${describeError(err)}\n`);
    if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.stderr.write('Try: rerun with log.level "debug" and report this if it persists\n');
    return EXIT.failure;
  }
}

exitQuietlyOnClosedPipe(process.stdout);
process.exitCode = await main(process.argv.slice(2));
