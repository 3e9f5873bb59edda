// The benchmarks' command lines: `--name value` options and bare `--flag`s, read from process.argv.
export const argv = process.argv.slice(2);

/** The value after `--name`, or the fallback when the option is absent. */
export function option(name, fallback) {
  const at = argv.indexOf(`--${name}`);
  return at === -1 ? fallback : argv[at + 1];
}
