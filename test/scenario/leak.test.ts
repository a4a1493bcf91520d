/**
 * I4: no secret material leaves the vault. A busy account goes through whole lifecycles (warning,
 * rotation, postponement, deactivation, enforcement, deletion, conflicts, bad tags), failing runs and
 * dry runs; every output the service produces is captured and searched for every secret that ever
 * existed: logs, notifications, errors, every ledger write, work messages, plans and outcomes.
 */
import { inspect } from 'node:util';
import type { AccountPlan } from '../../lambda/services/plan-account';
import type { UserOutcome } from '../../lambda/services/rotate-user';
import type { FaultKind } from '../fakes/faults';
import type { FakeKey } from '../fakes/iam';
import { findSecrets } from '../fakes/invariants';
import { CapturingLogger } from '../fakes/logger';
import { World } from '../fakes/world';

const PAST_THE_LEASE_MS = 16 * 60_000;

type Captured = Record<
  'logs' | 'notifications' | 'errors' | 'ledgerWrites' | 'messages' | 'plans' | 'outcomes',
  string[]
>;

function describeThrown(error: unknown): string[] {
  const texts: string[] = [];
  for (let current: unknown = error, depth = 0; current !== undefined && depth < 5; depth++) {
    texts.push(inspect(current, { depth: 6 }));
    if (current instanceof Error) {
      texts.push(String(current), current.message, current.stack ?? '', JSON.stringify(current));
      current = current.cause;
    } else {
      current = undefined;
    }
  }
  return texts;
}

class Recorder {
  readonly captured: Captured = {
    logs: [],
    notifications: [],
    errors: [],
    ledgerWrites: [],
    messages: [],
    plans: [],
    outcomes: [],
  };

  constructor(readonly world: World) {
    // Every version of every ledger item, not only the last: an intent or an outbox entry that was
    // written and later removed counts as an output.
    const items = world.ledger.items;
    const set = items.set.bind(items);
    items.set = (key: string, value: string) => {
      this.captured.ledgerWrites.push(value);
      return set(key, value);
    };
  }

  plan(plan: AccountPlan): void {
    this.captured.messages.push(JSON.stringify(plan.messages));
    this.captured.plans.push(JSON.stringify(plan));
  }

  outcome(outcome: UserOutcome): void {
    this.captured.outcomes.push(JSON.stringify(outcome));
  }

  error(error: unknown): void {
    this.captured.errors.push(...describeThrown(error));
  }

  /** The scheduled run; failures are recorded, not thrown. */
  async runDay(): Promise<number> {
    try {
      const day = await this.world.runDay();
      this.plan(day.plan);
      day.outcomes.forEach((outcome) => this.outcome(outcome));
      day.failures.forEach((failure) => this.error(failure.error));
      return day.failures.length;
    } catch (error) {
      this.error(error);
      return 1;
    }
  }

  /** A dry run of the account and of every user, as `keyrot plan` would do. */
  async dryRun(): Promise<void> {
    const plan = await this.world.plan(true);
    this.plan(plan);
    for (const message of plan.messages) this.outcome(await this.world.rotate(message.userName, true));
    for (const userName of this.world.iam.users.keys()) {
      this.outcome(await this.world.rotate(userName, true));
    }
  }

  /** Everything captured so far, including the logs and notifications as they stand now. */
  corpus(): string[] {
    this.captured.logs.splice(0, Infinity, ...this.world.logger.printed);
    this.captured.notifications.splice(
      0,
      Infinity,
      ...this.world.notifier.published.map((notice) => JSON.stringify(notice)),
    );
    return [...Object.values(this.captured).flat(), ...[...this.world.ledger.items.values()]];
  }
}

interface BusyAccount {
  readonly world: World;
  readonly seeded: FakeKey[];
  readonly recorder: Recorder;
}

function busyAccount(): BusyAccount {
  const world = new World();
  const seeded: FakeKey[] = [];
  const owner = (address: string) => ({ 'key-rotation:owner': address });
  // Warned on day 4, rotated on day 8; its workload switches to the new key; deactivated, deleted.
  world.iam.addUser('alice', { tags: owner('alice@example.com') });
  seeded.push(world.iam.addKey('alice', { ageDays: 72, lastUsedDaysAgo: 0 }));
  // Rotated at once; its workload never switches: postponed, then enforced, then deleted.
  world.iam.addUser('carol', { tags: owner('carol@example.com') });
  seeded.push(world.iam.addKey('carol', { ageDays: 81, lastUsedDaysAgo: 0 }));
  // A malformed owner tag: tags.invalid to the default recipients, rotation all the same.
  world.iam.addUser('dave', { tags: owner('dave at example dot com') });
  seeded.push(world.iam.addKey('dave', { ageDays: 80, lastUsedDaysAgo: 1 }));
  // A secret of that name exists that the service did not create: secret.conflict.
  world.iam.addUser('erin', { tags: owner('erin@example.com') });
  seeded.push(world.iam.addKey('erin', { ageDays: 85, lastUsedDaysAgo: 0 }));
  world.vault.addForeignSecret(world.secretName('erin'));
  // Two active keys the service did not pair: keys.conflict.
  world.iam.addUser('frank', { tags: owner('frank@example.com') });
  seeded.push(world.iam.addKey('frank', { ageDays: 100, lastUsedDaysAgo: 0 }));
  seeded.push(world.iam.addKey('frank', { ageDays: 50, lastUsedDaysAgo: 0 }));
  // An inactive key deleted to make room, then a rotation.
  world.iam.addUser('gina', { tags: owner('gina@example.com') });
  seeded.push(world.iam.addKey('gina', { ageDays: 300, status: 'Inactive' }));
  seeded.push(world.iam.addKey('gina', { ageDays: 82, lastUsedDaysAgo: 2 }));
  // Exempt.
  world.iam.addUser('bob', { tags: { 'key-rotation:exempt': 'legacy system; until=2027-01-01' } });
  seeded.push(world.iam.addKey('bob', { ageDays: 85, lastUsedDaysAgo: 0 }));
  return { world, seeded, recorder: new Recorder(world) };
}

/** Runs that fail half-way through rotations, while new secrets are in memory; then a clean rerun. */
async function failingRuns(recorder: Recorder): Promise<number> {
  const { world } = recorder;
  let failures = 0;
  const faults: [string, FaultKind][] = [
    ['secretsmanager:Store', 'throttle'],
    ['secretsmanager:Store', 'timeout-after'],
    ['iam:CreateAccessKey', 'crash-after'],
    ['secretsmanager:GetSecretValue', 'crash-after'], // the rerun first deletes the orphan, then fails here
    ['sts:GetCallerIdentity', 'access-denied'],
  ];
  for (const [op, kind] of faults) {
    world.faults.inject(op, kind, 1);
    failures += await recorder.runDay();
    world.faults.restart();
    world.clock.advance(PAST_THE_LEASE_MS);
  }
  // STS that never accepts a key: VerificationError, with its cause.
  world.verifier.propagationMs = Number.POSITIVE_INFINITY;
  failures += await recorder.runDay();
  world.verifier.propagationMs = 8_000;
  world.clock.advance(PAST_THE_LEASE_MS);
  return failures;
}

test('no secret appears in any output of full lifecycles, failing runs and dry runs', async () => {
  const { world, seeded, recorder } = busyAccount();
  const alice = seeded[0]!;
  const carol = seeded[1]!;
  let failures = 0;

  for (let day = 0; day <= 40; day++) {
    // Workloads: alice's reads AWSCURRENT once there is one; carol's keeps its old key.
    const current = world.vault.readStage(world.secretName('alice'));
    world.iam.use(current ?? alice);
    world.iam.use(carol);
    await recorder.dryRun();
    if (day === 8) failures += await failingRuns(recorder); // alice's rotation day
    failures += await recorder.runDay();
    world.clock.advanceDays(1);
  }
  // The CLI on a user with nothing due, and on a user that does not exist.
  recorder.outcome(await world.rotate('alice'));
  recorder.outcome(await world.rotate('nobody'));
  await world.rotate('nobody', true).then((outcome) => recorder.outcome(outcome));

  // Every kind of output was produced, so the search below covers them all.
  expect(failures).toBeGreaterThanOrEqual(6);
  expect(new Set(world.notifier.events())).toEqual(
    new Set([
      'key.expiring',
      'key.rotated',
      'key.deactivated',
      'key.deactivation-postponed',
      'key.enforced',
      'key.deleted',
      'tags.invalid',
      'secret.conflict',
      'keys.conflict',
    ]),
  );
  const corpus = recorder.corpus();
  for (const [source, texts] of Object.entries(recorder.captured)) {
    expect([source, texts.length > 0]).toEqual([source, true]);
  }
  expect(recorder.captured.ledgerWrites.some((item) => item.includes('"phase":"intent"'))).toBe(true);
  expect(recorder.captured.errors.some((text) => text.includes('VerificationError'))).toBe(true);

  const secrets = [...world.iam.issuedSecrets, ...seeded.map((key) => key.secretAccessKey)];
  // Rotations of alice, carol, dave, gina, plus keys created by the failing runs.
  expect(world.iam.issuedSecrets.length).toBeGreaterThanOrEqual(6);
  expect(findSecrets(corpus, secrets)).toEqual([]);
});

describe('the leak search', () => {
  test('finds a secret planted in the corpus, whole or half', async () => {
    const { world, recorder } = busyAccount();
    await recorder.runDay();
    const corpus = recorder.corpus();
    const secret = world.iam.issuedSecrets[0]!;
    expect(corpus.length).toBeGreaterThan(0);
    expect(findSecrets(corpus, [secret])).toEqual([]);

    expect(findSecrets([...corpus, `credentials ${secret}`], [secret])).toHaveLength(1);
    expect(findSecrets([...corpus, `masked: ${secret.slice(0, 20)}****`], [secret])).toHaveLength(1);
  });

  test('finds a secret that reached a log line the way a careless attribute would put it there', () => {
    const logger = new CapturingLogger();
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    logger.info('stored key', { key: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: secret } });
    logger.error('failed', { error: new Error(`could not store ${secret}`) });

    expect(findSecrets(logger.printed, [secret])).toHaveLength(2);
  });
});
