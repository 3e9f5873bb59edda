/**
 * A strict parser of the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format): every line must be a HELP, a TYPE,
 * a comment or a sample; every sample must belong to a family whose TYPE came first, once; label names and values
 * must be well formed and escaped; values must be Go floats. Any violation throws, naming the line.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count', ''] };

export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const families = new Map<string, Family>();
  const help = new Map<string, string>();
  const seenSeries = new Set<string>();
  let current: Family | null = null;
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, index) => {
    const at = `line ${index + 1} (${JSON.stringify(line)})`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const match = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!match) return; // a plain comment
      const [, kind, name, rest] = match as unknown as [string, string, string, string];
      if (!METRIC_NAME.test(name)) throw new Error(`${at}: bad metric name`);
      if (kind === 'HELP') {
        if (help.has(name)) throw new Error(`${at}: second HELP for ${name}`);
        help.set(name, rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\'));
        if (families.has(name)) families.get(name)!.help = help.get(name)!;
        return;
      }
      if (!TYPES.has(rest)) throw new Error(`${at}: unknown type ${rest}`);
      if (families.has(name)) throw new Error(`${at}: second TYPE for ${name}`);
      current = { name, type: rest as Family['type'], help: help.get(name) ?? '', samples: [] };
      families.set(name, current);
      return;
    }
    const sample = parseSample(line, at);
    const family = current;
    const suffixes = family ? (SUFFIXES[family.type] ?? ['']) : [];
    if (!family || !suffixes.some((suffix) => sample.name === family.name + suffix)) {
      throw new Error(`${at}: sample ${sample.name} outside its family's block`);
    }
    const series = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seenSeries.has(series)) throw new Error(`${at}: duplicate series`);
    seenSeries.add(series);
    family.samples.push(sample);
  });
  return families;
}

function parseSample(line: string, at: string): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) throw new Error(`${at}: no metric name`);
  const name = nameMatch[0];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    while (line[i] !== '}') {
      const labelMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
      if (!labelMatch || !LABEL_NAME.test(labelMatch[0])) throw new Error(`${at}: bad label name`);
      i += labelMatch[0].length;
      if (line[i] !== '=' || line[i + 1] !== '"') throw new Error(`${at}: expected ="`);
      i += 2;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) throw new Error(`${at}: unterminated label value`);
        if (c === '"') break;
        if (c === '\\') {
          const next = line[i + 1];
          if (next === 'n') value += '\n';
          else if (next === '\\' || next === '"') value += next;
          else throw new Error(`${at}: bad escape \\${next}`);
          i += 2;
          continue;
        }
        value += c;
        i++;
      }
      i++;
      if (labelMatch[0] in labels) throw new Error(`${at}: repeated label ${labelMatch[0]}`);
      labels[labelMatch[0]] = value;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') throw new Error(`${at}: expected , or }`);
    }
    i++;
  }
  const rest = line.slice(i);
  const valueMatch = /^ (\S+)( -?[0-9]+)?$/.exec(rest);
  if (!valueMatch) throw new Error(`${at}: expected one space, a value and an optional timestamp`);
  const raw = valueMatch[1]!;
  const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' ? NaN : Number(raw);
  if (!/^(\+Inf|-Inf|NaN|[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?)$/.test(raw) || (Number.isNaN(value) && raw !== 'NaN')) {
    throw new Error(`${at}: bad value ${raw}`);
  }
  return { name, labels, value };
}

/** The value of the one sample of `family` whose labels include `labels`; throws when none or several match. */
export function sampleValue(families: Map<string, Family>, family: string, labels: Record<string, string> = {}): number {
  const found = families.get(family)?.samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v)) ?? [];
  if (found.length !== 1) throw new Error(`${family}${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0]!.value;
}

export function sumOf(families: Map<string, Family>, family: string, labels: Record<string, string> = {}): number {
  return (families.get(family)?.samples ?? [])
    .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}
