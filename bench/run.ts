/**
 * `npm run bench`: the figures of issue 9, each beside its target, with the figure measured before
 * issue 9's changes (bench/before.ts). Every AWS request the real adapters would send is counted
 * (aws-calls.ts), ledger and queue included, and times are modelled (50 ms per IAM request, 20 ms
 * per other request, plus the services' own sleeps), never waited for. Prints; asserts nothing: a
 * figure over its target is marked OVER TARGET.
 *
 * Options (or environment variables): --iam-ms N (BENCH_IAM_MS), --other-ms N (BENCH_OTHER_MS),
 * --json FILE (the figures as JSON, as bench/before.ts holds them), --no-bundles.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { LatencyModel } from './aws-calls';
import { BEFORE } from './before';
import { measureBundles } from './bundles';
import {
  BATCH_SIZE,
  cliRun,
  dayAfterFirstRun,
  firstDeployment,
  lifecycle,
  plannerCheckpoints,
  plannerMemory,
  quietDays,
  ROTATOR_CONCURRENCY,
  rotationPhases,
} from './figures';

/** A planner timeout short enough that planning 5,000 users cannot finish in one invocation. */
const CHECKPOINT_TIMEOUT_MS = 65_000;

type Target = { readonly op: '<=' | '<'; readonly value: number } | undefined;

interface Row {
  readonly id: string;
  readonly label: string;
  readonly value: number | undefined;
  /** How to print a value of this row. */
  readonly unit: 'calls' | 's' | 'h' | 'min' | 'MB' | 'KB' | 'ms' | 'count';
  readonly target?: Target;
  /** Shown after the mark. */
  readonly note?: string;
}

/** Flags, or the environment: the latency model, where to write JSON, whether to build the bundles. */
function benchOptions() {
  const { values } = parseArgs({
    options: {
      'iam-ms': { type: 'string' },
      'other-ms': { type: 'string' },
      json: { type: 'string' },
      'no-bundles': { type: 'boolean' },
    },
    strict: true,
  });
  const ms = (flag: string, text: string | undefined, fallback: number) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0)
      throw new Error(`--${flag} must be a number of ms (got "${text}")`);
    return value;
  };
  const latency: LatencyModel = {
    iamMs: ms('iam-ms', values['iam-ms'] ?? process.env.BENCH_IAM_MS, 50),
    otherMs: ms('other-ms', values['other-ms'] ?? process.env.BENCH_OTHER_MS, 20),
  };
  return { latency, json: values.json, bundles: values['no-bundles'] !== true };
}

function format(value: number | undefined, unit: Row['unit']): string {
  if (value === undefined) return 'n/a';
  switch (unit) {
    case 's':
      return `${(value / 1000).toFixed(1)} s`;
    case 'min':
      return `${(value / 60_000).toFixed(1)} min`;
    case 'h':
      return `${(value / 3_600_000).toFixed(2)} h`;
    case 'MB':
      return `${(value / 1024 / 1024).toFixed(1)} MB`;
    case 'KB':
      return `${(value / 1024).toFixed(1)} KB`;
    case 'ms':
      return `${value.toFixed(1)} ms`;
    default:
      return String(Math.round(value * 10) / 10);
  }
}

function targetText(row: Row): string {
  if (!row.target) return '';
  const value = ['s', 'min', 'h', 'MB', 'KB'].includes(row.unit)
    ? format(row.target.value, row.unit).replace(/\.0+ /, ' ')
    : String(row.target.value);
  return `${row.target.op} ${value}`;
}

function mark(row: Row): string {
  if (!row.target || row.value === undefined) return '';
  const met = row.target.op === '<=' ? row.value <= row.target.value : row.value < row.target.value;
  return met ? 'ok' : 'OVER TARGET';
}

const WIDTH = { label: 76, before: 11, after: 11, target: 10 };

function header(): string {
  return [
    ''.padEnd(WIDTH.label),
    'before'.padStart(WIDTH.before),
    '   ',
    'after'.padStart(WIDTH.after),
    'target'.padStart(WIDTH.target),
  ].join(' ');
}

function line(row: Row): string {
  const before = BEFORE.figures[row.id];
  const cells = [
    `  ${row.label}`.padEnd(WIDTH.label),
    format(before, row.unit).padStart(WIDTH.before),
    '-> ',
    format(row.value, row.unit).padStart(WIDTH.after),
    targetText(row).padStart(WIDTH.target),
    mark(row).padEnd(2),
  ];
  return `${cells.join(' ')}${row.note ? `  ${row.note}` : ''}`.trimEnd();
}

function section(title: string, rows: readonly Row[], print: (text: string) => void): void {
  print(`\n${title}`);
  print(header());
  for (const row of rows) print(line(row));
}

function breakdownTable(
  before: Readonly<Record<string, number>> | undefined,
  after: ReadonlyMap<string, number>,
  print: (text: string) => void,
): void {
  const ops = [...new Set([...Object.keys(before ?? {}), ...after.keys()])].sort();
  for (const op of ops) {
    print(
      [
        `    ${op}`.padEnd(WIDTH.label),
        String(before?.[op] ?? 0).padStart(WIDTH.before),
        '-> ',
        String(after.get(op) ?? 0).padStart(WIDTH.after),
      ].join(' '),
    );
  }
}

async function main() {
  const { latency, json, bundles } = benchOptions();
  const print = (text: string) => console.log(text);
  const figures: Record<string, number | undefined> = {};
  const keep = (rows: readonly Row[]) => {
    for (const row of rows) figures[row.id] = row.value;
    return rows;
  };
  const started = Date.now();

  print('iam-key-rotation bench: issue 9 figures, before -> after -> target');
  print(
    `Every AWS request the real adapters would send is counted (bench/aws-calls.ts), ledger and queue included; ` +
      `time is modelled at ${latency.iamMs} ms per IAM request and ${latency.otherMs} ms per other request, plus the ` +
      `services' own sleeps (credential report polling, waiting for a new key to propagate: 8 s in the fake STS), ` +
      `computed, never waited for. Requests Lambda's SQS poller makes (ReceiveMessage, DeleteMessageBatch) are not counted.`,
  );
  print(`Before: ${BEFORE.source}`);
  if (latency.iamMs !== BEFORE.latency.iamMs || latency.otherMs !== BEFORE.latency.otherMs) {
    print(
      `NOTE: the before figures were measured at ${BEFORE.latency.iamMs}/${BEFORE.latency.otherMs} ms; times differ for that reason too.`,
    );
  }

  // 1. Daily detection
  const quiet = await quietDays(latency, 250);
  const quietLarge = await quietDays(latency, 10_000, { eventfulOnly: true, lastQuietDay: 10 });
  const after = await dayAfterFirstRun(latency);
  const describeGroups = (q: typeof quiet) =>
    `${q.groups.grace} in grace, ${q.groups.waiting} waiting for deletion, ${q.groups.current} current`;
  section(
    '1. Daily detection: calls per account per day when nothing is due',
    keep([
      {
        id: 'detect.quiet.250',
        label: `250 users (${describeGroups(quiet)})`,
        value: quiet.max,
        unit: 'calls',
        target: { op: '<=', value: 5 },
        note: quiet.actedOn.length > 0 ? `(the rotator acted: ${quiet.actedOn.join(', ')})` : undefined,
      },
      {
        id: 'detect.quiet.10000',
        label: `10,000 users (${describeGroups(quietLarge)})`,
        value: quietLarge.max,
        unit: 'calls',
        target: { op: '<=', value: 5 },
        note:
          quietLarge.actedOn.length > 0 ? `(the rotator acted: ${quietLarge.actedOn.join(', ')})` : undefined,
      },
      {
        id: 'detect.dayAfter.250.calls',
        label: 'the day after a first run on 250 users: calls',
        value: after.calls,
        unit: 'calls',
        note: `(issue: 811 calls; due that day: ${describeTally(after.nextDay)})`,
      },
      {
        id: 'detect.dayAfter.250.plannerMs',
        label: 'the day after a first run on 250 users: planner time',
        value: after.plannerMs,
        unit: 's',
        note: '(issue: 50 s)',
      },
    ]),
    print,
  );
  print(
    `  250 users: quiet days 9-14 cost ${quiet.perDay.join(', ')} calls; on the busiest: ${describeCounts(quiet.calls)}`,
  );
  print(
    `  10,000 users: ${describeCounts(quietLarge.calls)}; the account's ledger items come to ` +
      `${format(quietLarge.ledgerBytes, 'MB')} (${Math.round(quietLarge.ledgerBytes / Math.max(1, quietLarge.ledgerItems))} bytes ` +
      `each, estimated from their JSON), and a Query reads at most 1 MB a page`,
  );
  print(
    `  first run on 250 users (keys 0-199 days old): ${describeTally(after.firstDay)}; the day after: ${describeCounts(after.breakdown)}`,
  );

  // 2. Lifecycle
  const life = await lifecycle(latency);
  section(
    "2. One key's whole lifecycle (warn day 0 -> rotate day 4 -> deactivate day 11 -> delete day 25; 30 daily runs)",
    keep([
      {
        id: 'lifecycle.extra',
        label: 'calls beyond the daily detection, every service',
        value: life.extra,
        unit: 'calls',
        target: { op: '<=', value: 25 },
        note: `(detection alone: ${format(life.detectionPerDay, 'calls')} a day)`,
      },
    ]),
    print,
  );
  print('  by service and operation (calls beyond the detection over the 30 days):');
  breakdownTable(BEFORE.lifecycleBreakdown, life.breakdown, print);
  print(
    `  days with work: ${life.days
      .filter((day) => day.performed.length > 0 || day.calls > life.detectionPerDay + 0.5)
      .map((day) => `day ${day.day} ${day.calls} calls (${day.performed.join(', ') || 'no action'})`)
      .join('; ')}`,
  );

  // 5. Ledger writes per phase (from the lifecycle's rotation)
  const phases = rotationPhases(life.rotationLog);
  const phaseRows = keep([
    {
      id: 'ledger.phase.lockIntent',
      label: 'lock + intent',
      value: phases.lockAndIntent,
      unit: 'count',
      target: { op: '<=', value: 1 },
    },
    {
      id: 'ledger.phase.stored',
      label: 'stored',
      value: phases.stored,
      unit: 'count',
      target: { op: '<=', value: 1 },
    },
    {
      id: 'ledger.phase.completion',
      label: 'completion + outbox + release',
      value: phases.completionOutboxRelease,
      unit: 'count',
      target: { op: '<=', value: 1 },
    },
    {
      id: 'ledger.phase.outboxCleared',
      label: 'outbox cleared',
      value: phases.outboxCleared,
      unit: 'count',
      target: { op: '<=', value: 1 },
    },
    {
      id: 'ledger.phase.other',
      label: 'other writes of the record during the rotation',
      value: phases.other,
      unit: 'count',
      target: { op: '<=', value: 0 },
    },
  ]);

  // 3. First deployment
  const first = await firstDeployment(latency);
  const checkpoints = await plannerCheckpoints(latency, CHECKPOINT_TIMEOUT_MS);
  section(
    `3. First deployment into a neglected account: ${first.users.toLocaleString('en')} users, every key overdue`,
    keep([
      {
        id: 'first.planner.ms',
        label: 'planner, one invocation: modelled time',
        value: first.first.ms,
        unit: 's',
        target: { op: '<', value: 60_000 },
        note: first.first.timedOut ? '(stopped by its timeout)' : undefined,
      },
      {
        id: 'first.planner.queued',
        label: `planner, one invocation: users queued (of ${first.users.toLocaleString('en')})`,
        value: first.first.queued,
        unit: 'count',
        note: first.first.continued ? '(stopped short of time; continued in a new invocation)' : undefined,
      },
      {
        id: 'first.planner.firstQueuedMs',
        label: 'planner: first message queued after',
        value: first.first.firstQueuedMs,
        unit: 's',
      },
      {
        id: 'first.planner.invocations',
        label: 'planner: invocations in the run',
        value: first.planner.invocations.length,
        unit: 'count',
        note: first.planner.timedOut ? '(one was stopped by its timeout)' : undefined,
      },
      {
        id: 'first.planner.calls',
        label: 'planner: calls (the whole run)',
        value: first.planner.calls,
        unit: 'calls',
      },
      {
        id: 'first.drain.ms',
        label: `queue drained (rotatorConcurrency ${first.concurrency}, batches of ${first.batchSize})`,
        value: first.drain.ms,
        unit: 'h',
        note: `(${first.rotated} rotated, ${first.drain.failed} failed)`,
      },
      { id: 'first.drain.calls', label: 'rotator: calls', value: first.drain.calls, unit: 'calls' },
      {
        id: 'first.checkpoint.invocations',
        label: `the same run, the planner's timeout cut to ${CHECKPOINT_TIMEOUT_MS / 1000} s: invocations`,
        value: checkpoints.planner.invocations.length,
        unit: 'count',
      },
      {
        id: 'first.checkpoint.cutOff',
        label: '  of which stopped by the timeout (cut off)',
        value: checkpoints.planner.invocations.filter((invocation) => invocation.timedOut).length,
        unit: 'count',
        target: { op: '<=', value: 0 },
      },
      {
        id: 'first.checkpoint.queued',
        label: `  users queued (of ${checkpoints.users.toLocaleString('en')})`,
        value: checkpoints.queuedUsers,
        unit: 'count',
        note: checkpoints.queuedTwice > 0 ? `(${checkpoints.queuedTwice} queued twice)` : '(each once)',
      },
    ]),
    print,
  );

  // 4. CLI
  const cli8 = await cliRun(latency, 8);
  const cli1 = await cliRun(latency, 1);
  section(
    '4. keyrot run --apply: 5,000 users, 10% due (plan every user, then rotate those due)',
    keep([
      {
        id: 'cli.c8.ms',
        label: '--concurrency 8 (the default)',
        value: cli8.ms,
        unit: 'min',
        note: `${cli8.concurrency === 'none' ? '(no --concurrency: one user at a time) ' : ''}(${cli8.summary})`,
      },
      {
        id: 'cli.c1.ms',
        label: '--concurrency 1',
        value: cli1.ms,
        unit: 'min',
        note: `${cli1.concurrency === 'none' ? '(no --concurrency: one user at a time) ' : ''}(${cli1.summary})`,
      },
      { id: 'cli.c8.calls', label: 'calls (--concurrency 8)', value: cli8.calls, unit: 'calls' },
    ]),
    print,
  );

  section(
    "5. Ledger: conditional writes of the user record in each phase of a rotation (the lifecycle's day 4)",
    phaseRows,
    print,
  );
  print(
    `  writes of the record on each day with work: ${life.ledgerWrites.map((day) => `day ${day.day} (${day.performed}) ${day.writes}`).join('; ')}`,
  );
  print(`  the rotation's requests: ${phases.sequence.join(', ')}`);

  // 6. Memory
  const memory = await plannerMemory(latency);
  section(
    "6. Memory: the planner's peak heap, 5,000 users with two keys each (process.memoryUsage().heapUsed)",
    keep([
      {
        id: 'memory.peak',
        label: 'peak heap used while planning',
        value: memory.peak,
        unit: 'MB',
        target: { op: '<', value: 256 * 1024 * 1024 },
        note: memory.gcExposed ? undefined : '(run with node --expose-gc for a clean baseline)',
      },
      {
        id: 'memory.growth',
        label: 'growth over the heap before planning',
        value: memory.peak - memory.baseline,
        unit: 'MB',
      },
    ]),
    print,
  );
  print(
    `  ${memory.samples} samples (one per port call); the heap includes the fake account (${memory.users} users); ` +
      `the planner queued ${memory.queued} users with ${memory.calls} calls${memory.timedOut ? ', stopped by its timeout' : ''}`,
  );

  // Bundles
  if (bundles) {
    const measured = measureBundles();
    const rows: Row[] = measured.flatMap((bundle) => [
      {
        id: `bundle.${bundle.name}.bytes`,
        label: `${bundle.name}: bundle size`,
        value: bundle.bytes,
        unit: 'KB' as const,
        target: { op: '<' as const, value: 1024 * 1024 },
      },
      {
        id: `bundle.${bundle.name}.initMs`,
        label: `${bundle.name}: initialisation (median of 7 fresh processes)`,
        value: bundle.initMs,
        unit: 'ms' as const,
        target: { op: '<' as const, value: 300 },
      },
    ]);
    section('Lambda bundles (esbuild, minified, @aws-sdk/* from the runtime)', keep(rows), print);
  }

  print(
    `\n(bench ran in ${((Date.now() - started) / 1000).toFixed(1)} s; rotator batch size ${BATCH_SIZE}, concurrency ${ROTATOR_CONCURRENCY})`,
  );
  if (json) {
    writeFileSync(
      json,
      `${JSON.stringify({ latency, figures, lifecycleBreakdown: Object.fromEntries(life.breakdown) }, null, 2)}\n`,
    );
  }
}

function describeCounts(counts: ReadonlyMap<string, number>): string {
  return [...counts].map(([op, count]) => `${op} ${count}`).join(', ');
}

function describeTally(tally: Readonly<Record<string, number>>): string {
  const entries = Object.entries(tally);
  return entries.length === 0 ? 'nothing' : entries.map(([action, count]) => `${action} ${count}`).join(', ');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
