import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { ROTATOR_USER_BUDGET_MS, WORK_MESSAGE_VERSION, WorkMessage } from '../../../lambda/contract';
import { createRotatorHandler } from '../../../lambda/handlers/rotator-app';
import { DEFAULT_ROTATION_OPTIONS } from '../../../lambda/services/rotate-user';
import { World } from '../../fakes/world';
import { ACCOUNT, captureOutput, fifoRecord, lambdaContext } from './lambda-context';

function message(userName: string, overrides: Partial<WorkMessage> = {}): string {
  return JSON.stringify({
    version: WORK_MESSAGE_VERSION,
    accountId: ACCOUNT,
    userName,
    dryRun: false,
    plannedActions: ['rotate'],
    plannedAt: '2026-01-01T02:00:00.000Z',
    ...overrides,
  });
}

function rotatorFor(world: World) {
  return createRotatorHandler({
    config: {
      tableName: 'ledger',
      topicArn: `arn:aws:sns:eu-west-1:${ACCOUNT}:notices`,
      secretPrefix: 'iam-key-rotation',
      kmsKeyArn: `arn:aws:kms:eu-west-1:${ACCOUNT}:key/1234`,
      settings: world.settings,
      subscribeOwners: true,
      ownerTopicPrefix: 'iam-key-rotation-owner-',
      readerArns: world.vault.readerArns,
      serviceRoleArn: world.vault.serviceRoleArn!,
    },
    iam: world.iam,
    verifier: world.verifier,
    vault: world.vault,
    notifier: world.notifier,
    ledger: world.ledger,
    clock: world.clock,
    logger: new Logger({ serviceName: 'iam-key-rotation' }),
    metrics: new Metrics({ namespace: 'IamKeyRotation', serviceName: 'iam-key-rotation' }),
  });
}

/** An invocation with `remainingMs` left when it starts, running down with the world's clock. */
function contextRunningDown(world: World, remainingMs: number): Context {
  const deadline = world.clock.now().getTime() + remainingMs;
  return {
    ...lambdaContext('rotator'),
    getRemainingTimeInMillis: () => deadline - world.clock.now().getTime(),
  };
}

function dueUser(world: World, name: string) {
  world.iam.addUser(name, { tags: { 'key-rotation:owner': `${name}@example.com` } });
  return world.iam.addKey(name, { ageDays: 85 });
}

describe('rotator handler', () => {
  let output: ReturnType<typeof captureOutput>;
  beforeEach(() => {
    output = captureOutput();
  });
  afterEach(() => output.restore());

  test('a batch with a malformed record and a failing user fails only those, in FIFO order', async () => {
    // Arrange
    const world = new World();
    dueUser(world, 'alice');
    const bobKey = dueUser(world, 'bob');
    dueUser(world, 'carol');
    // Another run is working on bob: his message must fail and be retried later.
    await world.ledger.acquireLock(
      ACCOUNT,
      'bob',
      'other-run',
      world.clock.now(),
      new Date('2026-01-01T03:00:00Z'),
    );
    const event = {
      Records: [
        fifoRecord('m1', message('alice'), `${ACCOUNT}/alice`),
        fifoRecord('m2', '{"version": 1, "userName": ', `${ACCOUNT}/broken`, 2),
        fifoRecord('m3', message('bob'), `${ACCOUNT}/bob`),
        fifoRecord('m4', message('bob', { plannedAt: '2026-01-01T02:05:00.000Z' }), `${ACCOUNT}/bob`),
        fifoRecord('m5', message('carol'), `${ACCOUNT}/carol`),
      ],
    };

    // Act
    const response = await rotatorFor(world)(event, lambdaContext('rotator'));

    // Assert: outcomes per user
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: 'm2' },
      { itemIdentifier: 'm3' },
      { itemIdentifier: 'm4' },
    ]);
    for (const user of ['alice', 'carol']) {
      const keys = world.iam.users.get(user)!.keys;
      expect(keys).toHaveLength(2);
      expect(world.vault.readStage(world.secretName(user))?.accessKeyId).toBe(keys[1]!.accessKeyId);
    }
    expect(world.iam.users.get('bob')!.keys.map((key) => key.accessKeyId)).toEqual([bobKey.accessKeyId]);

    // Assert: the log says why each failed
    const lines = output.lines();
    const malformed = lines.find((line) => line.messageId === 'm2');
    expect(malformed).toMatchObject({
      level: 'ERROR',
      message: 'invalid work message: failed, it goes to the dead-letter queue after its retries',
      receiveCount: '2',
    });
    expect(String(malformed?.reason)).toMatch(/body is not JSON/);
    const locked = lines.find((line) => line.messageId === 'm3');
    expect(String(locked?.reason)).toMatch(/user bob is locked by other-run/);
    expect(locked?.userName).toBe('bob'); // the failure line says whose message failed...
    expect(malformed?.userName).toBeUndefined(); // ...and alice's keys were removed after her record
    const rotated = lines.filter(
      (line) => (line.audit as { action?: string } | undefined)?.action === 'key.rotated',
    );
    expect(rotated.map((line) => (line.audit as { userName: string }).userName)).toEqual(['alice', 'carol']);
    expect(rotated[0]).toMatchObject({ userName: 'alice', accountId: ACCOUNT });

    // Assert: EMF metrics
    const emf = lines.find((line) => line._aws !== undefined);
    expect(emf).toMatchObject({ KeysRotated: 2, InvalidMessages: 1, RotationFailures: 1 });
  });

  test('a message for another account is refused as invalid and changes nothing', async () => {
    const world = new World();
    dueUser(world, 'alice');

    const response = await rotatorFor(world)(
      { Records: [fifoRecord('m1', message('alice', { accountId: '999988887777' }), '999988887777/alice')] },
      lambdaContext('rotator'),
    );

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }]);
    expect(world.iam.users.get('alice')!.keys).toHaveLength(1);
    expect(output.text()).toContain(
      'message is for account 999988887777 but this rotator works in 111122223333',
    );
  });

  test('a dry-run message only reads', async () => {
    const world = new World();
    dueUser(world, 'alice');

    const response = await rotatorFor(world)(
      { Records: [fifoRecord('m1', message('alice', { dryRun: true }), `${ACCOUNT}/alice`)] },
      lambdaContext('rotator'),
    );

    expect(response.batchItemFailures).toEqual([]);
    expect(world.faults.writes()).toEqual([]);
    const planned = output
      .lines()
      .find((line) => (line.audit as { action?: string } | undefined)?.action === 'user.planned');
    expect(planned?.audit).toMatchObject({ planned: 'rotate', dryRun: true, outcome: 'planned' });
  });

  test('stops taking users when too little time is left: the rest is deferred, not failed', async () => {
    // Arrange: three due users; the first one's new key takes 30 s to reach STS, and the invocation
    // starts with barely more than one user's budget.
    const world = new World();
    world.verifier.propagationMs = 30_000;
    for (const user of ['alice', 'bob', 'carol']) dueUser(world, user);
    const event = {
      Records: ['alice', 'bob', 'carol'].map((user, i) =>
        fifoRecord(`m${i + 1}`, message(user), `${ACCOUNT}/${user}`),
      ),
    };

    // Act
    const response = await rotatorFor(world)(
      event,
      contextRunningDown(world, ROTATOR_USER_BUDGET_MS + 5_000),
    );

    // Assert: alice was rotated; bob and carol were not touched and go back to the queue
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'm2' }, { itemIdentifier: 'm3' }]);
    expect(world.iam.users.get('alice')!.keys).toHaveLength(2);
    for (const user of ['bob', 'carol']) {
      expect(world.iam.users.get(user)!.keys).toHaveLength(1);
      expect(world.vault.readStage(world.secretName(user))).toBeUndefined();
    }
    // One warning says how many were deferred; nothing is logged as an error
    const lines = output.lines();
    const warnings = lines.filter((line) => line.level === 'WARN' && line.deferred !== undefined);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      message: 'too little time left for another user: 2 messages deferred, SQS delivers them again',
      deferred: 2,
      budgetMs: ROTATOR_USER_BUDGET_MS,
    });
    expect(lines.filter((line) => line.level === 'ERROR')).toEqual([]);
    // Deferred users are counted as such, not as rotation failures
    const emf = lines.find((line) => line._aws !== undefined);
    expect(emf).toMatchObject({ KeysRotated: 1, UsersDeferred: 2 });
    expect(emf).not.toHaveProperty('RotationFailures');
  });

  test('with a fresh invocation every user of a full batch is taken', async () => {
    const world = new World();
    const users = ['u1', 'u2', 'u3', 'u4', 'u5'];
    for (const user of users) dueUser(world, user);

    const response = await rotatorFor(world)(
      { Records: users.map((user) => fifoRecord(user, message(user), `${ACCOUNT}/${user}`)) },
      contextRunningDown(world, 900_000),
    );

    expect(response.batchItemFailures).toEqual([]);
    for (const user of users) expect(world.iam.users.get(user)!.keys).toHaveLength(2);
  });

  test('a missing admin role left out of a secret policy is counted, for the alarm to the operators', async () => {
    const world = new World();
    world.vault.adminRoleArn = `arn:aws:iam::${ACCOUNT}:role/secrets-admin`;
    world.vault.missingPrincipals.add(world.vault.adminRoleArn);
    dueUser(world, 'alice');
    dueUser(world, 'bob');

    const response = await rotatorFor(world)(
      { Records: ['alice', 'bob'].map((user) => fifoRecord(user, message(user), `${ACCOUNT}/${user}`)) },
      contextRunningDown(world, 900_000),
    );

    expect(response.batchItemFailures).toEqual([]);
    const emf = output.lines().find((line) => line._aws !== undefined);
    expect(emf).toMatchObject({ KeysRotated: 2, SecretReadersOmitted: 2 });
  });

  test("one user's budget covers the STS verification timeout with a margin for the other calls", () => {
    expect(ROTATOR_USER_BUDGET_MS - DEFAULT_ROTATION_OPTIONS.verifyTimeoutMs).toBeGreaterThanOrEqual(30_000);
  });
});
