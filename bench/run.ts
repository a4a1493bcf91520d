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
import { LatencyModel, queryPages } from './aws-calls';
import { BEFORE } from './before';
import { measureBundles } from './bundles';
import { organizationFigures, organizationNotes, organizationRows, organizationTitle } from './organization';
import {
  BATCH_SIZE,
  cliRun,
  dayAfterFirstRun,
  firstDeployment,
  LedgerGrowth,
  ledgerGrowth,
  Lifecycle,
  lifecycle,
  OneOffEntry,
  plannerCheckpoints,
  QuietDays,
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

/** Figure 2's breakdown: each operation in the first lifecycle and in the steady state, before -> after. */
function lifecycleTable(
  before: typeof BEFORE,
  first: ReadonlyMap<string, number>,
  steady: ReadonlyMap<string, number> | undefined,
  print: (text: string) => void,
): void {
  const width = { label: 48, cell: 9 };
  const cell = (value: number | undefined) =>
    (value === undefined ? 'n/a' : String(value)).padStart(width.cell);
  const pair = (from: number | undefined, to: number | undefined) => `${cell(from)} -> ${cell(to)}`;
  const span = 2 * width.cell + 4;
  const heading = `${'before'.padStart(width.cell)} -> ${'after'.padStart(width.cell)}`;
  print(`${''.padEnd(width.label)} ${'first lifecycle'.padStart(span)}     ${'steady state'.padStart(span)}`);
  print(`${''.padEnd(width.label)} ${heading}     ${heading}`);
  const ops = [
    ...new Set([
      ...Object.keys(before.lifecycleBreakdown ?? {}),
      ...Object.keys(before.steadyBreakdown ?? {}),
      ...first.keys(),
      ...(steady?.keys() ?? []),
    ]),
  ].sort();
  for (const op of ops) {
    print(
      [
        `    ${op}`.padEnd(width.label),
        pair(before.lifecycleBreakdown?.[op] ?? 0, first.get(op) ?? 0),
        '  ',
        pair(
          before.steadyBreakdown ? (before.steadyBreakdown[op] ?? 0) : undefined,
          steady ? (steady.get(op) ?? 0) : undefined,
        ),
      ].join(' '),
    );
  }
}

function describeOneOff(entries: readonly OneOffEntry[]): string {
  if (entries.length === 0) return 'none';
  const total = entries.reduce((calls, entry) => calls + entry.calls, 0);
  return `${total} calls: ${entries.map((entry) => `${entry.op} ${entry.calls} (${entry.via})`).join(', ')}`;
}

/** Figure 1's ledger lines: a user record's size, and the Query pages of the daily detection. */
function ledgerSizeLines(
  quiet: QuietDays,
  quietLarge: QuietDays,
  life: Lifecycle,
  growth: LedgerGrowth,
): string[] {
  const bytes = (value: number) => `${Math.round(value).toLocaleString('en')} bytes`;
  const pages = (recordBytes: number, indexBytes: number) =>
    `250 such users: ${queryPages(250 * indexBytes)} Query page(s) a day, 10,000: ${queryPages(10_000 * indexBytes)} ` +
    `(whole records: ${queryPages(250 * recordBytes)} and ${queryPages(10_000 * recordBytes)})`;
  const measured = (q: QuietDays) => {
    const items = Math.max(1, q.ledgerItems);
    return (
      `${q.users.toLocaleString('en')} users as on the quiet days above: ${q.ledgerItems.toLocaleString('en')} records of ` +
      `${bytes(q.ledgerBytes / items)} on average, index items of ${bytes(q.indexBytes / items)}: ` +
      `${queryPages(q.indexBytes)} Query page(s) a day (whole records: ${queryPages(q.ledgerBytes)})`
    );
  };
  const lines = [
    "  the ledger: one item per user; sizes estimated from the items' JSON; a Query page reads at most 1 MB of items " +
      "(a projection does not change that). The scheduled planner queries the table's `screening` index, whose items " +
      'hold the keys and the fields the screen reads (review, inactiveSince, inFlight, outbox) plus the 100 bytes ' +
      'DynamoDB adds to an index item, and do not grow with the history: the detection costs 3 calls + 1 per MB of ' +
      'index items (dry runs read the whole records):',
    `    ${measured(quiet)}`,
    `    ${measured(quietLarge)}`,
  ];
  const [afterFirst, afterSecond] = growth.lifecycles;
  const years = (day: number) => `~${(day / 365).toFixed(1)} years`;
  if (afterFirst) {
    lines.push(
      `    one user's record after its first lifecycle: ${bytes(afterFirst.bytes)} (${afterFirst.history} history entries), ` +
        `its index item ${bytes(afterFirst.indexBytes)}; ${pages(afterFirst.bytes, afterFirst.indexBytes)}`,
    );
  }
  if (afterSecond) {
    lines.push(
      `    after its second (figure 2's steady state): ${bytes(afterSecond.bytes)} (${afterSecond.history} entries), ` +
        `its index item ${bytes(afterSecond.indexBytes)}; ${pages(afterSecond.bytes, afterSecond.indexBytes)}`,
    );
  }
  const full = growth.lifecycles.findIndex(
    (entry, index) => index > 0 && entry.history === growth.lifecycles[index - 1]!.history,
  );
  const historyFull = full > 0 ? growth.lifecycles[full - 1]! : undefined;
  if (historyFull) {
    lines.push(
      `    once its history is full (${historyFull.history} entries, after ${full} lifecycles, day ${historyFull.day}, ${years(historyFull.day)}): ` +
        `${bytes(historyFull.bytes)}, its index item ${bytes(historyFull.indexBytes)}; ${pages(historyFull.bytes, historyFull.indexBytes)}`,
    );
  }
  const last = growth.lifecycles.at(-1);
  if (last && last !== historyFull) {
    lines.push(
      `    the most it reaches (${last.history} history entries and ${last.rotations} rotations kept, after ${growth.lifecycles.length} lifecycles, ` +
        `${years(last.day)}): ${bytes(last.bytes)}, its index item ${bytes(last.indexBytes)}; ${pages(last.bytes, last.indexBytes)}`,
    );
  }
  if (life.steady === undefined) lines.push('    (figure 2: the user was not warned again)');
  return lines;
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

  print(
    'iam-key-rotation bench: issue 9 figures and issue 10 organization figure (7), before -> after -> target',
  );
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
      `each, estimated from their JSON), their screening index items to ${format(quietLarge.indexBytes, 'MB')}, ` +
      `and a Query reads at most 1 MB a page`,
  );
  print(
    `  first run on 250 users (keys 0-199 days old): ${describeTally(after.firstDay)}; the day after: ${describeCounts(after.breakdown)}`,
  );
  const life = await lifecycle(latency);
  const growth = await ledgerGrowth(latency);
  for (const text of ledgerSizeLines(quiet, quietLarge, life, growth)) print(text);

  // 2. Lifecycle
  const { first: firstLife, steady } = life;
  section(
    "2. One key's whole lifecycle (warned -> rotated 4 days later -> old key deactivated 7 days after -> deleted 14 days after; 30 daily runs from the warning)",
    keep([
      {
        id: 'lifecycle.extra',
        label: `a user's first lifecycle (days ${firstLife.firstDay}-${firstLife.lastDay}), one-off costs included`,
        value: firstLife.extra,
        unit: 'calls',
        note: `(calls beyond the detection, every service; detection alone: ${format(life.detectionPerDay, 'calls')} a day)`,
      },
      {
        id: 'lifecycle.steady.extra',
        label: steady
          ? `steady state: the same user's next lifecycle (days ${steady.firstDay}-${steady.lastDay})`
          : "steady state: the same user's next lifecycle",
        value: steady?.extra,
        unit: 'calls',
        target: { op: '<=', value: 25 },
        note: steady ? undefined : `(not warned again by day ${200})`,
      },
    ]),
    print,
  );
  print(
    '  The <= 25 target is compared against the steady state: the cost that recurs for every key every ~80 days ' +
      '(the key the service itself created, its owner subscribed and confirmed, its secret in place). ' +
      'The first lifecycle adds the one-off costs below.',
  );
  print('  by service and operation (calls beyond the detection over each window of 30 days):');
  lifecycleTable(BEFORE, firstLife.breakdown, steady?.breakdown, print);
  if (life.oneOff) {
    const { perOwner, perUser, other } = life.oneOff;
    print(
      '  one-off costs (the first lifecycle minus the steady state, by the port that sent them; a negative count is ' +
        'one the steady state spends more of):',
    );
    print(
      `    per owner address, once for all the users it owns (their topic, its 3 attributes, the subscription, ` +
        `recording it, asking SNS until it is confirmed): ${describeOneOff(perOwner)}`,
    );
    print(
      `    per user, once (its secret and the secret's policy; its owner's subscription looked up before the user's ` +
        `record knows it): ${describeOneOff(perUser)}`,
    );
    print(`    anything else: ${describeOneOff(other)}`);
  }
  const describeDays = (window: typeof firstLife) =>
    window.days
      .map(
        (entry) =>
          `day ${entry.day} ${entry.extra} beyond detection (${entry.performed.join(', ') || 'no action'})`,
      )
      .join('; ');
  print(`  days with work, first lifecycle: ${describeDays(firstLife)}`);
  if (steady) print(`  days with work, steady state: ${describeDays(steady)}`);
  if (life.between) {
    print(
      `  between the two (days ${life.between.firstDay}-${life.between.lastDay}, nothing due): ` +
        `${life.between.extra} calls beyond the detection`,
    );
  }

  // 5. Ledger writes per phase (from the lifecycle's rotation)
  const phases = rotationPhases(firstLife.rotationLog);
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
  const describeWrites = (window: typeof firstLife) =>
    window.ledgerWrites.map((entry) => `day ${entry.day} (${entry.performed}) ${entry.writes}`).join('; ');
  print(`  writes of the record on each day with work, first lifecycle: ${describeWrites(firstLife)}`);
  if (steady) print(`  ... and in the steady state: ${describeWrites(steady)}`);
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

  // 7. Organization (issue 10)
  const organization = await organizationFigures(latency);
  section(organizationTitle(organization), keep(organizationRows(organization)), print);
  for (const text of organizationNotes(organization)) print(text);

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
      `${JSON.stringify(
        {
          latency,
          figures,
          lifecycleBreakdown: Object.fromEntries(firstLife.breakdown),
          steadyBreakdown: steady ? Object.fromEntries(steady.breakdown) : undefined,
        },
        null,
        2,
      )}\n`,
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
