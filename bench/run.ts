/**
 * `npm run bench`: what detection and planning cost for one account, against the in-memory fakes
 * (which count every IAM call the real adapters would make, one per page for paginated lists).
 * Prints figures; asserts nothing (targets are in the README and issue notes).
 */
import { World } from '../test/fakes/world';
import { measureBundles } from './bundles';

interface Population {
  readonly users: number;
  /** Share of users whose key is due (80-88 days old). */
  readonly dueShare: number;
}

/** Deterministic pseudo-random numbers, so runs are comparable. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function populate(world: World, { users, dueShare }: Population): void {
  const random = prng(42);
  const due = Math.round(users * dueShare);
  for (let i = 0; i < users; i++) {
    const name = `user-${String(i).padStart(5, '0')}`;
    world.iam.addUser(name, {
      path: i % 10 === 0 ? '/service/' : '/',
      tags: { 'key-rotation:owner': `${name}@example.com` },
    });
    // Due users first; the rest have keys well before the warning window (0-70 days).
    const ageDays = i < due ? 80 + Math.floor(random() * 9) : Math.floor(random() * 71);
    world.iam.addKey(name, { ageDays, lastUsedDaysAgo: Math.floor(random() * 3) });
  }
}

function cpuMs(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function measure(population: Population) {
  const cpu: number[] = [];
  let detection = 0;
  let planning = 0;
  let total = 0;
  let candidates = 0;
  let messages = 0;
  for (let run = 0; run < 5; run++) {
    const world = new World();
    populate(world, population);
    const start = process.cpuUsage();
    const plan = await world.plan(false);
    cpu.push(cpuMs(start));
    const reportCalls = world.faults.calls.filter((op) => op.includes('CredentialReport')).length;
    detection = reportCalls;
    planning = world.faults.count('iam:');
    candidates = plan.users.length;
    messages = plan.messages.length;
    if (run === 0) {
      for (const message of plan.messages) await world.rotate(message.userName);
      total = world.faults.count('iam:');
    }
  }
  return { ...population, detection, planning, total, candidates, messages, cpuMs: median(cpu) };
}

async function main() {
  const rows = [];
  for (const population of [
    { users: 100, dueShare: 0 },
    { users: 1000, dueShare: 0 },
    { users: 5000, dueShare: 0 },
    { users: 1000, dueShare: 0.02 },
    { users: 5000, dueShare: 0.02 },
  ]) {
    rows.push(await measure(population));
  }
  console.log('Planning one account (in-memory IAM; calls counted per API request, median CPU of 5 runs)\n');
  console.log(
    [
      'users'.padStart(6),
      'due'.padStart(5),
      'detect calls'.padStart(13),
      'IAM calls to plan'.padStart(18),
      'IAM calls plan+rotate'.padStart(22),
      'users confirmed'.padStart(16),
      'messages'.padStart(9),
      'plan CPU ms'.padStart(12),
    ].join(' '),
  );
  for (const row of rows) {
    console.log(
      [
        String(row.users).padStart(6),
        `${row.dueShare * 100}%`.padStart(5),
        String(row.detection).padStart(13),
        String(row.planning).padStart(18),
        String(row.total).padStart(22),
        String(row.candidates).padStart(16),
        String(row.messages).padStart(9),
        row.cpuMs.toFixed(1).padStart(12),
      ].join(' '),
    );
  }
  console.log(
    '\nTargets: detection <= 5 IAM calls whatever the number of users; total calls grow only with the',
  );
  console.log('users that need action; planning 5,000 users under 1,000 ms of CPU.');

  console.log(
    '\nLambda bundles (esbuild, minified, @aws-sdk/* from the runtime; init = median of 7 fresh processes)\n',
  );
  console.log(['function'.padEnd(9), 'bundle KB'.padStart(10), 'init ms'.padStart(8)].join(' '));
  for (const bundle of measureBundles()) {
    console.log(
      [
        bundle.name.padEnd(9),
        (bundle.bytes / 1024).toFixed(1).padStart(10),
        bundle.initMs.toFixed(1).padStart(8),
      ].join(' '),
    );
  }
  console.log('\nTargets: each bundle under 1 MB; initialisation under 300 ms.');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
