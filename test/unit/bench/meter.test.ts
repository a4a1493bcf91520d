/**
 * The bench's meter charges each port call on the fakes the requests of aws-calls.ts for the state
 * the fake was in, and modelled time overlaps exactly as the code runs side by side.
 */
import { BenchAccount } from '../../../bench/account';
import { SECRETS_MANAGER, DYNAMODB, SNS, DEPLOYED_NOTIFIER } from '../../../bench/aws-calls';
import {
  ApiMeter,
  InvocationTimeout,
  meteredLedger,
  meteredNotifier,
  meteredVault,
  sum,
} from '../../../bench/meter';
import { VirtualTime } from '../../../bench/virtual-time';
import { FakeClock } from '../../fakes/clock';
import { Faults } from '../../fakes/faults';
import { FakeLedger } from '../../fakes/ledger';
import { FakeNotifier } from '../../fakes/notifier';
import { FakeVault } from '../../fakes/vault';

const LATENCY = { iamMs: 50, otherMs: 20 };

/** Requests by operation, as the meter counts them. */
function countsOf(ops: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const op of ops) counts[op] = (counts[op] ?? 0) + 1;
  return counts;
}

describe('modelled time', () => {
  test('work side by side overlaps; work in sequence adds up; nothing waits for real', async () => {
    const clock = new FakeClock('2026-01-01T00:00:00Z');
    const time = new VirtualTime((ms) => clock.advance(ms));
    const started = Date.now();

    await Promise.all([time.sleep(50), time.sleep(20)]);
    const together = time.now;
    await time.sleep(50);
    await time.sleep(20_000);

    expect(together).toBe(50);
    expect(time.now).toBe(20_100);
    expect(clock.now().toISOString()).toBe('2026-01-01T00:00:20.100Z');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('a pool of 3 over 7 tasks of 10 ms takes 30 ms', async () => {
    const time = new VirtualTime();
    let next = 0;
    let inFlight = 0;
    let most = 0;
    const worker = async () => {
      while (next < 7) {
        next++;
        inFlight++;
        most = Math.max(most, inFlight);
        await time.sleep(10);
        inFlight--;
      }
    };

    await Promise.all([worker(), worker(), worker()]);

    expect(most).toBe(3);
    expect(time.now).toBe(30);
  });
});

describe('the meter', () => {
  function setUp() {
    const clock = new FakeClock('2026-01-01T00:00:00Z');
    const faults = new Faults();
    const time = new VirtualTime((ms) => clock.advance(ms));
    const meter = new ApiMeter(time, LATENCY);
    return { clock, faults, time, meter };
  }
  const REF = {
    accountId: '111122223333',
    userName: 'alice',
    name: 'iam-key-rotation/111122223333/alice',
    userArn: 'arn:aws:iam::111122223333:user/alice',
  };
  const key = (id: string) => ({
    userName: 'alice',
    accessKeyId: id,
    secretAccessKey: 's',
    createDate: new Date(0),
  });

  test('a store is charged as the adapter sends it: a new secret, then the same secret again', async () => {
    const { clock, faults, meter, time } = setUp();
    const vault = meteredVault(new FakeVault(clock, faults), meter);

    await vault.store(REF, key('AKIA1'));
    const first = meter.counts();
    await vault.store(REF, key('AKIA2'));

    const expectFirst = SECRETS_MANAGER.store({ existed: false, policyChanged: true });
    const expectSecond = SECRETS_MANAGER.store({ existed: true, policyChanged: false });
    expect(Object.fromEntries(first)).toEqual(countsOf(expectFirst));
    expect(sum(first)).toBe(4);
    expect(Object.fromEntries(meter.since(first))).toEqual(countsOf(expectSecond));
    expect(time.now).toBe((expectFirst.length + expectSecond.length) * LATENCY.otherMs);
  });

  test('the ledger of one container remembers owner subscriptions, as the adapter does', async () => {
    const { faults, meter } = setUp();
    const fake = new FakeLedger(faults);
    const container = meteredLedger(fake, meter);
    const another = meteredLedger(fake, meter);

    await container.findOwnerSubscription('alice@example.com');
    await container.recordOwnerSubscription({ owner: 'alice@example.com', topicArn: 't', subscribedAt: 'x' });
    await container.findOwnerSubscription('alice@example.com');
    await another.findOwnerSubscription('alice@example.com');

    expect(Object.fromEntries(meter.counts())).toEqual(
      countsOf([
        ...DYNAMODB.findOwnerSubscription(false),
        ...DYNAMODB.recordOwnerSubscription(),
        ...DYNAMODB.findOwnerSubscription(true),
        ...DYNAMODB.findOwnerSubscription(false), // another container has not read it
      ]),
    );
    expect(Object.fromEntries(meter.counts())).toEqual({ 'dynamodb:GetItem': 2, 'dynamodb:PutItem': 1 });
  });

  test('a publish is charged one Publish per topic sent to', async () => {
    const { faults, meter } = setUp();
    const notifier = meteredNotifier(new FakeNotifier(faults), meter, DEPLOYED_NOTIFIER);
    const notice = {
      event: 'key.rotated' as const,
      accountId: REF.accountId,
      userName: 'alice',
      owner: 'alice@example.com',
      recipients: ['alice@example.com'],
      subject: 's',
      text: 't',
      details: {},
      dedupeId: 'd',
      toOperators: true,
    };

    await notifier.publish(notice, ['alice@example.com']);

    expect(meter.counts().get('sns:Publish')).toBe(
      SNS.publish(DEPLOYED_NOTIFIER, notice, ['alice@example.com']).length,
    );
    expect(meter.counts().get('sns:Publish')).toBe(3);
  });

  test('past its deadline an invocation sends nothing more', async () => {
    const { clock, faults, meter } = setUp();
    const vault = meteredVault(new FakeVault(clock, faults), meter);
    meter.startDeadline(100);

    await vault.describe(REF);
    await meter.time.sleep(100);

    await expect(vault.describe(REF)).rejects.toBeInstanceOf(InvocationTimeout);
    expect(meter.total).toBe(1);
  });
});

describe('a day of the bench account', () => {
  test("a rotation's Secrets Manager requests are those the fake vault lists for the adapter", async () => {
    const world = new BenchAccount({
      latency: LATENCY,
      start: '2026-01-01T02:00:00Z',
      plannerTimeoutMs: 600_000,
      rotatorTimeoutMs: 900_000,
    });
    world.addUser('alice', [{ ageDays: 85, lastUsedDaysAgo: 0 }]);
    world.meter.log = [];

    const day = await world.day(5, 5);

    expect(day.drain.audited).toContain('key.rotated');
    const charged = world.meter.log
      .filter((call) => call.op.startsWith('secretsmanager:'))
      .map((call) => call.op);
    expect(charged).toEqual(world.vault.sdkCalls.map((op) => `secretsmanager:${op}`));
    expect(charged).toContain('secretsmanager:CreateSecret');
  });

  test('the modelled time of a rotation is its requests at their latency plus the services’ sleeps, overlapping where the code overlaps them', async () => {
    const world = new BenchAccount({
      latency: LATENCY,
      start: '2026-01-01T02:00:00Z',
      plannerTimeoutMs: 600_000,
      rotatorTimeoutMs: 900_000,
    });
    world.addUser('alice', [{ ageDays: 85, lastUsedDaysAgo: 0 }]);
    world.meter.log = [];

    await world.day(5, 5);

    const requestsMs = world.meter.log.reduce((ms, call) => ms + (call.op.startsWith('iam:') ? 50 : 20), 0);
    // readUser sends GetUser and ListAccessKeys at once: one IAM latency overlaps.
    expect(world.meter.log.filter((call) => call.op === 'iam:GetUser')).toHaveLength(1);
    expect(world.time.now).toBe(requestsMs + world.meter.sleptMs - LATENCY.iamMs);
    expect(world.meter.sleptMs).toBeGreaterThan(0);
  });
});
