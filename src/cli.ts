#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { EXIT, describeError, explainError } from './errors.js';
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

type Register = (program: Command) => void;

/**
 * The commands, in the order a newcomer meets them: the daemon, the one-off run, the pieces, the views, the setup,
 * the fakes. Each is imported only when needed: a command's module pulls in its own dependencies (got alone takes
 * longer to load than SQLite and the config), so `compliance-sync status` loads what status needs and no more.
 */
const COMMANDS: ReadonlyArray<readonly [name: string, load: () => Promise<Register>]> = [
  ['run', async () => (await import('./cli/run.js')).registerRun],
  ['reload', async () => (await import('./cli/reload.js')).registerReload],
  ['reconcile', async () => (await import('./cli/reconcile.js')).registerReconcile],
  ['apply', async () => (await import('./cli/apply.js')).registerApply],
  ['export', async () => (await import('./cli/export.js')).registerExport],
  ['status', async () => (await import('./cli/status.js')).registerStatus],
  ['report', async () => (await import('./cli/report.js')).registerReport],
  ['tombstones', async () => (await import('./cli/tombstones.js')).registerTombstones],
  ['audit', async () => (await import('./cli/audit.js')).registerAudit],
  ['check-config', async () => (await import('./cli/check-config.js')).registerCheckConfig],
  ['migrate', async () => (await import('./cli/migrate.js')).registerMigrate],
  ['emulator', async () => (await import('./cli/emulator.js')).registerEmulator],
  ['demo', async () => (await import('./cli/demo.js')).registerDemo],
];

/** The command named first on the line alone; all of them for anything else (help, version, a misspelt name). */
async function buildProgram(argv: string[]): Promise<Command> {
  const program = new Command('compliance-sync')
    .description("Keeps a local SQLite archive of Tweets and users compliant with X's batch compliance API.")
    .version(pkg.version)
    // Commander's own complaints ("unknown option", "missing required argument") in the one-line + `Try:` form.
    .configureOutput({ outputError: (text, write) => write(usageLines(text)) })
    .exitOverride();
  const named = COMMANDS.filter(([name]) => name === argv[0]);
  for (const register of await Promise.all((named.length > 0 ? named : COMMANDS).map(([, load]) => load()))) {
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
    await (await buildProgram(argv)).parseAsync(argv, { from: 'user' });
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
