/** Rendering of benchmark results: console summary and BENCHMARKS.md (merged by suite). */
import { goalStatus, type Goal, type Metric, type SuiteResult } from '../types.js';
import type { Environment } from './environment.js';

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (Number.isInteger(value) || abs >= 100) return Math.round(value).toLocaleString('en-US');
  if (abs === 0) return '0';
  return Number(value.toPrecision(3)).toString();
}

export function formatValue(value: number, unit: string): string {
  const number = formatNumber(value);
  if (unit === '') return number;
  if (unit === '%' || unit === '×') return `${number}${unit}`;
  return `${number} ${unit}`;
}

export function formatRatio(ratio: number): string {
  return `${formatNumber(ratio)}×`;
}

function formatGoal(goal: Goal | undefined, unit: string): string {
  if (!goal) return '';
  const op = goal.op === '>=' ? '≥' : '≤';
  const target =
    goal.on === 'ratio'
      ? `${op} ${formatRatio(goal.target)} baseline`
      : `${op} ${formatValue(goal.target, unit)}`;
  return goal.source ? `${target} (${goal.source})` : target;
}

/** `min / median / max` of a repeated metric. */
function runsCell(metric: Metric): string {
  const runs = metric.runs;
  if (!runs || runs.length < 2) return '';
  const sorted = [...runs].sort((a, b) => a - b);
  return `${formatNumber(sorted[0]!)} / ${formatNumber(metric.value)} / ${formatNumber(sorted[sorted.length - 1]!)}`;
}

function ratioCell(metric: Metric): string {
  if (metric.ratio === undefined || !Number.isFinite(metric.ratio)) return '';
  return `${formatRatio(metric.ratio)} ${metric.ratioLabel ?? metric.baseline ?? ''}`.trim();
}

/** Fills `ratio` from `baseline` (same suite) where the suite did not. */
export function resolveRatios(metrics: Metric[]): void {
  const byName = new Map(metrics.map((metric) => [metric.name, metric]));
  for (const metric of metrics) {
    if (metric.ratio !== undefined || metric.baseline === undefined) continue;
    const base = byName.get(metric.baseline);
    if (base && base.value !== 0) metric.ratio = metric.value / base.value;
    if (base && metric.ratioLabel === undefined) metric.ratioLabel = `${base.name}`;
  }
}

function groups(metrics: readonly Metric[]): Map<string, Metric[]> {
  const out = new Map<string, Metric[]>();
  for (const metric of metrics) {
    const group = metric.group ?? '';
    let list = out.get(group);
    if (!list) out.set(group, (list = []));
    list.push(metric);
  }
  return out;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function goalCounts(result: SuiteResult): { pass: number; miss: number } {
  let pass = 0;
  let miss = 0;
  for (const metric of result.metrics) {
    const status = goalStatus(metric);
    if (status === 'pass') pass++;
    else if (status === 'miss') miss++;
  }
  return { pass, miss };
}

// ---- console --------------------------------------------------------------------------------

export function consoleSummary(results: readonly SuiteResult[]): string {
  const lines: string[] = [];
  for (const result of results) {
    const { pass, miss } = goalCounts(result);
    lines.push(
      '',
      `== ${result.title} (${result.name}) — ${(result.durationMs / 1000).toFixed(1)} s, goals: ${pass} pass, ${miss} MISS`,
    );
    if (result.error) lines.push(`   SUITE FAILED: ${result.error}`);
    for (const [group, metrics] of groups(result.metrics)) {
      if (group) lines.push(`  -- ${group}`);
      const width = Math.max(...metrics.map((metric) => metric.name.length));
      for (const metric of metrics) {
        const status = goalStatus(metric);
        const mark = status === 'pass' ? '  pass' : status === 'miss' ? '  MISS' : '      ';
        const goal = metric.goal ? `  goal ${formatGoal(metric.goal, metric.unit)}` : '';
        const ratio = ratioCell(metric);
        const runs = runsCell(metric);
        lines.push(
          `${mark}  ${metric.name.padEnd(width)}  ${formatValue(metric.value, metric.unit).padStart(16)}${runs ? `  (${runs})` : ''}${ratio ? `  [${ratio}]` : ''}${goal}`,
        );
      }
    }
  }
  return lines.join('\n');
}

// ---- BENCHMARKS.md --------------------------------------------------------------------------

const BEGIN = (name: string) => `<!-- bench:suite ${name} -->`;
const END = (name: string) => `<!-- /bench:suite ${name} -->`;

export function suiteMarkdown(result: SuiteResult, env: Environment): string {
  const { pass, miss } = goalCounts(result);
  const out: string[] = [BEGIN(result.name), `## ${result.title} (\`${result.name}\`)`, ''];
  const extra = Object.entries(result.environment)
    .map(([key, value]) => `${key} ${value}`)
    .join(', ');
  out.push(
    `Measured ${env.date} in ${(result.durationMs / 1000).toFixed(0)} s on ${env.cpu} × ${env.cores} cores (load average ${env.load}), Node ${env.node}, commit ${env.commit}${extra ? `; ${extra}` : ''}. ` +
      `Goals: **${pass} pass, ${miss} missed**.`,
    '',
  );
  if (result.error) out.push(`> **The suite failed:** ${escapeCell(result.error)}`, '');
  for (const [group, metrics] of groups(result.metrics)) {
    if (group) out.push(`### ${group}`, '');
    const hasRatio = metrics.some((metric) => metric.ratio !== undefined);
    const hasNote = metrics.some((metric) => metric.note);
    const hasRuns = metrics.some((metric) => (metric.runs?.length ?? 0) > 1);
    const head = [
      'Metric',
      'Value',
      ...(hasRuns ? ['min / median / max'] : []),
      'Goal',
      'Result',
      ...(hasRatio ? ['Ratio vs baseline'] : []),
      ...(hasNote ? ['Note'] : []),
    ];
    out.push(
      `| ${head.join(' | ')} |`,
      `|${head.map((h) => (h === 'Value' || h === 'Ratio vs baseline' || h === 'min / median / max' ? '---:' : '---')).join('|')}|`,
    );
    for (const metric of metrics) {
      const status = goalStatus(metric);
      const name = metric.isBaseline ? `*${metric.name}* (baseline)` : metric.name;
      const cells = [
        escapeCell(name),
        formatValue(metric.value, metric.unit),
        ...(hasRuns ? [runsCell(metric)] : []),
        escapeCell(formatGoal(metric.goal, metric.unit)),
        status === 'pass' ? 'pass' : status === 'miss' ? '**MISS**' : '',
        ...(hasRatio ? [escapeCell(ratioCell(metric))] : []),
        ...(hasNote ? [escapeCell(metric.note ?? '')] : []),
      ];
      out.push(`| ${cells.join(' | ')} |`);
    }
    out.push('');
  }
  if (result.notes.length > 0) {
    out.push('**Method**', '');
    for (const note of result.notes)
      out.push(note.startsWith('- ') || note.startsWith('|') ? note : `- ${note}`);
    out.push('');
  }
  out.push(END(result.name));
  return out.join('\n');
}

function header(env: Environment): string {
  return [
    '# Benchmarks',
    '',
    'Generated by `npm run bench` (test/bench/run.ts; suites in test/bench/suites/). Do not edit the suite',
    'sections by hand: run `npm run bench` (all suites) or `npm run bench -- <suite>` (one section is',
    'replaced, the others kept). Sections between `bench:keep` markers are written by hand and kept; the',
    'tuning log is written by `npm run bench:ab`.',
    'Absolute numbers depend on the machine; the ratios against baselines measured in the same run',
    '(raw NATS request/reply, raw JetStream KV, raw `ws` echo) are the comparable part. Goals are',
    'reported, not enforced: a missed goal is marked **MISS** and does not fail the run.',
    '',
    'Last run:',
    '',
    '| | |',
    '|---|---|',
    `| Date | ${env.date} |`,
    `| Command | \`${env.command}\` |`,
    `| Node | ${env.node} (V8 ${env.v8}) |`,
    `| CPU | ${env.cpu}, ${env.cores} cores |`,
    `| OS | ${env.os}, ${env.memory} RAM |`,
    `| Load average at start (1 / 5 / 15 min) | ${env.load} |`,
    `| Commit | ${env.commit} |`,
    '',
  ].join('\n');
}

/** Existing suite sections of a BENCHMARKS.md, by name, in file order. */
export function parseSections(markdown: string): Map<string, string> {
  const sections = new Map<string, string>();
  const pattern = /<!-- bench:suite ([\w.-]+) -->[\s\S]*?<!-- \/bench:suite \1 -->/g;
  for (const match of markdown.matchAll(pattern)) sections.set(match[1]!, match[0]);
  return sections;
}

/**
 * The new BENCHMARKS.md: this run's header, then every suite in `order` — this run's section when
 * it ran, the previous file's section otherwise (suites not run keep their last numbers).
 * `order`: every known suite.
 */
export function benchmarksMarkdown(
  previous: string,
  results: readonly SuiteResult[],
  env: Environment,
  order: readonly string[],
): string {
  const kept = parseSections(previous);
  const fresh = new Map(results.map((result) => [result.name, suiteMarkdown(result, env)]));
  const sections: string[] = [];
  // Sections of suites that no longer exist are dropped.
  for (const name of order) {
    const section = fresh.get(name) ?? kept.get(name);
    if (section) sections.push(section);
  }
  // Hand-written sections (the analysis of missed goals) and the tuning log (test/bench/ab.ts)
  // are kept as they were.
  sections.push(...keptSections(previous));
  const tuning = tuningSection(previous);
  if (tuning) sections.push(tuning);
  return `${header(env)}\n${sections.join('\n\n')}\n`;
}

/** `<!-- bench:keep NAME -->` … `<!-- /bench:keep NAME -->`: written by hand, never regenerated. */
function keptSections(markdown: string): string[] {
  return [
    ...markdown.matchAll(/<!-- bench:keep ([\w.-]+) -->[\s\S]*?<!-- \/bench:keep \1 -->/g),
  ].map((match) => match[0]);
}

const TUNING_START = '<!-- bench:tuning -->';
const TUNING_END = '<!-- /bench:tuning -->';
const TUNING_HEAD = [
  '| Change (commit) | Gateway CPU / request | Gateway allocation / request | Worker CPU / request | Worker allocation / request | Gateway heap / idle connection |',
  '|---|---|---|---|---|---|',
];

function tuningSection(markdown: string): string | null {
  const start = markdown.indexOf(TUNING_START);
  const end = markdown.indexOf(TUNING_END);
  return start >= 0 && end > start ? markdown.slice(start, end + TUNING_END.length) : null;
}

/**
 * BENCHMARKS.md with the tuning log's rows for some revisions added or replaced (rows are keyed by
 * their first cell's label); `method` replaces the log's description.
 */
export function withTuningRows(
  markdown: string,
  rows: ReadonlyMap<string, string>,
  method: string,
): string {
  const existing = tuningSection(markdown);
  const kept = (existing ?? '')
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .filter((line) => ![...rows.keys()].some((label) => line.startsWith(`| \`${label}\``)));
  const section = [
    TUNING_START,
    '## Tuning log (`npm run bench:ab`)',
    '',
    method,
    '',
    ...TUNING_HEAD,
    ...kept,
    ...rows.values(),
    TUNING_END,
  ].join('\n');
  if (existing) return markdown.replace(existing, section);
  return `${markdown.trimEnd()}\n\n${section}\n`;
}
