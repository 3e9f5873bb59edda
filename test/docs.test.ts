import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/tmp.js';

/**
 * The repository's docs stand on their own: comments and docs cite only files in the repository or public URLs, and
 * every link into docs/ lands on a heading that exists.
 */

const SECTION = '\u00a7';

/** A markdown file named in a comment or a doc: it must be one the repository has. */
const MARKDOWN_NAME = /(?<![\w/.-])(?:[\w-]+\/)*([\w-]+\.md)\b/g;

const SCANNED = ['src', 'test', 'migrations', 'bench', 'systemd', 'scripts', 'docs', 'README.md'];
const SKIPPED = new Set(['node_modules', 'dist', '.vitest-tmp', 'bench/data', 'bench/results.json']);
const MAX_BYTES = 1 << 20;

interface SourceFile {
  /** Relative to the repository, with forward slashes. */
  rel: string;
  lines: string[];
}

function walk(rel: string, into: SourceFile[]): void {
  const full = path.join(REPO_ROOT, rel);
  if (SKIPPED.has(rel) || SKIPPED.has(path.basename(rel)) || !existsSync(full)) return;
  const stats = statSync(full);
  if (stats.isDirectory()) {
    for (const entry of readdirSync(full).sort()) walk(`${rel}/${entry}`, into);
    return;
  }
  if (stats.size > MAX_BYTES) return;
  const text = readFileSync(full, 'utf8');
  if (text.includes('\u0000')) return;
  into.push({ rel, lines: text.split('\n') });
}

function scannedFiles(): SourceFile[] {
  const files: SourceFile[] = [];
  for (const rel of SCANNED) walk(rel, files);
  return files;
}

/** GitHub's heading anchor: link text kept, formatting and punctuation dropped, lower case, each space a hyphen. */
function githubAnchor(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a markdown file's headings (fenced code skipped; repeated headings get -1, -2 … as on GitHub). */
function anchorsOf(file: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = githubAnchor(heading[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** `docs/<file>.md[#anchor]` as code and docs write it (also `../docs/…`), not a path that merely ends in docs/. */
const DOCS_LINK = /(?<![\w./-])(?:\.\.\/)?docs\/([\w-]+\.md)(?:#([\w-]*))?/g;
/** Markdown links: `[text](target)`. */
const MARKDOWN_LINK = /\]\(([^)\s]+)\)/g;

interface LinkTarget {
  where: string;
  file: string;
  anchor: string | undefined;
}

function linkTargets(files: SourceFile[]): LinkTarget[] {
  const targets: LinkTarget[] = [];
  for (const { rel, lines } of files) {
    lines.forEach((line, index) => {
      const where = `${rel}:${index + 1}`;
      for (const match of line.matchAll(DOCS_LINK)) {
        targets.push({ where, file: path.join(REPO_ROOT, 'docs', match[1]!), anchor: match[2] });
      }
      if (!rel.endsWith('.md')) return;
      for (const match of line.matchAll(MARKDOWN_LINK)) {
        const target = match[1]!;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [filePart, anchor] = target.split('#', 2) as [string, string | undefined];
        const file = filePart === '' ? path.join(REPO_ROOT, rel) : path.resolve(REPO_ROOT, path.dirname(rel), filePart);
        targets.push({ where, file, anchor });
      }
    });
  }
  return targets;
}

describe('docs stand on their own', () => {
  const files = scannedFiles();

  it('scans the source, tests, migrations, benchmarks, units, scripts and docs', () => {
    const scanned = new Set(files.map((file) => file.rel));
    for (const rel of ['README.md', 'docs/architecture.md', 'docs/x-api.md', 'src/types.ts', 'migrations/0001_initial.sql', 'bench/README.md', 'systemd/README.md']) {
      expect(scanned, rel).toContain(rel);
    }
  });

  it(`cites no markdown file the repository lacks, and no ${SECTION} except inside a link into docs/`, () => {
    const present = new Set(files.filter((file) => file.rel.endsWith('.md')).map((file) => path.basename(file.rel)));
    const offending: string[] = [];
    for (const { rel, lines } of files) {
      lines.forEach((line, index) => {
        // Prose only (docs, and comments in code): a file name inside a string is data, not a citation.
        const prose = rel.endsWith('.md') || /^\s*(\/\/|\/?\*|--|#)/.test(line);
        const cited = prose ? [...line.matchAll(MARKDOWN_NAME)].map((m) => m[1]!).filter((name) => !present.has(name)) : [];
        const section = line.replace(DOCS_LINK, '').includes(SECTION);
        if (cited.length || section) offending.push(`${rel}:${index + 1}: ${line.trim()}`);
      });
    }
    expect(offending, 'link into docs/ (docs/x-api.md#…, docs/architecture.md#…) or write out the sentence it stands for').toEqual([]);
  });

  it('every link into docs/ and every relative markdown link lands on an existing file and heading', () => {
    const targets = linkTargets(files);
    expect(targets.filter((t) => t.file.includes(`${path.sep}docs${path.sep}`)).length).toBeGreaterThan(30);
    const anchors = new Map<string, Set<string>>();
    const broken: string[] = [];
    for (const { where, file, anchor } of targets) {
      const shown = path.relative(REPO_ROOT, file);
      if (!existsSync(file)) {
        broken.push(`${where}: ${shown} does not exist`);
        continue;
      }
      if (!anchor || !file.endsWith('.md')) continue;
      if (!anchors.has(file)) anchors.set(file, anchorsOf(file));
      if (!anchors.get(file)!.has(anchor)) broken.push(`${where}: ${shown} has no heading #${anchor}`);
    }
    expect(broken).toEqual([]);
  });

  it('computes anchors as GitHub does', () => {
    expect(githubAnchor('Simple upload (GCS)')).toBe('simple-upload-gcs');
    expect(githubAnchor('Byte-path upload (2026)')).toBe('byte-path-upload-2026');
    expect(githubAnchor('`cs_apply_runs` and the [ledger](#words)')).toBe('cs_apply_runs-and-the-ledger');
    expect(githubAnchor("X's batch compliance API: what compliance-sync relies on")).toBe('xs-batch-compliance-api-what-compliance-sync-relies-on');
  });
});
