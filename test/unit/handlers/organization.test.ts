/**
 * The handlers of organization mode, driven as Lambda drives them (schedule input, SQS events),
 * over the in-memory organization: what they queue, record, publish and print (logs and EMF).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, SQSRecord } from 'aws-lambda';
import {
  METRIC,
  PLANNING_MESSAGE_VERSION,
  WORK_MESSAGE_VERSION,
  type PlanningMessage,
} from '../../../lambda/contract';
import { emptyLedger } from '../../../lambda/domain/model';
import { createDispatcherHandler } from '../../../lambda/handlers/dispatcher-app';
import { createOrganizationPlannerHandler } from '../../../lambda/handlers/org-planner-app';
import { createRotatorHandler } from '../../../lambda/handlers/rotator-app';
import { CENTRAL_ACCOUNT_ID, ORG_SECRET_PREFIX, OrgWorld, type MemberAccount } from '../../fakes/org-world';
import { secretLossProblems } from '../../fakes/invariants';
import { captureOutput, fifoRecord, lambdaContext } from './lambda-context';

const PLANNED_AT = '2026-01-01T02:00:00.000Z';

function observability() {
  return {
    logger: new Logger({ serviceName: 'iam-key-rotation' }),
    metrics: new Metrics({ namespace: 'IamKeyRotation', serviceName: 'iam-key-rotation' }),
  };
}

function centralContext(functionName: string, remainingMs = 600_000): Context {
  return {
    ...lambdaContext(functionName),
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:${CENTRAL_ACCOUNT_ID}:function:${functionName}`,
    getRemainingTimeInMillis: () => remainingMs,
  };
}

/** A record as the standard planning queue delivers it. */
function planningRecord(messageId: string, body: unknown, receiveCount = 1): SQSRecord {
  const record = fifoRecord(
    messageId,
    typeof body === 'string' ? body : JSON.stringify(body),
    '',
    receiveCount,
  );
  // A standard queue's record has no FIFO attributes.
  const attributes = { ...record.attributes };
  delete attributes.MessageGroupId;
  delete attributes.MessageDeduplicationId;
  delete attributes.SequenceNumber;
  return { ...record, attributes };
}

function planning(accountId: string, overrides: Partial<PlanningMessage> = {}): PlanningMessage {
  return { version: PLANNING_MESSAGE_VERSION, accountId, dryRun: false, plannedAt: PLANNED_AT, ...overrides };
}

/** An organization: two accounts under an OU, one excluded account; a due user in each. */
function organization(): { world: OrgWorld; a: MemberAccount; b: MemberAccount; excluded: MemberAccount } {
  const world = new OrgWorld();
  const ou = world.addOu();
  const a = world.addAccount(ou);
  const b = world.addAccount(ou);
  const excluded = world.addAccount(ou);
  world.configure({ includeOus: [ou], excludeAccounts: [excluded.accountId] });
  for (const member of [a, b, excluded]) {
    member.iam.addUser('deploy-bot', { tags: { 'key-rotation:owner': 'team@example.com' } });
    member.iam.addKey('deploy-bot', { ageDays: 85 });
  }
  return { world, a, b, excluded };
}

function plannerFor(world: OrgWorld) {
  return createOrganizationPlannerHandler({
    config: {
      tableName: 'ledger',
      queueUrl: 'https://sqs.eu-west-1.amazonaws.com/999988887777/work.fifo',
      settings: world.settings,
      organization: {
        settings: world.organizationSettings,
        planningQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/999988887777/planning',
        topicArn: 'arn:aws:sns:eu-west-1:999988887777:notices',
        kmsKeyArn: 'arn:aws:kms:eu-west-1:999988887777:key/1234',
      },
    },
    access: world.access,
    ledger: world.ledger,
    queue: world.workQueue,
    planningQueue: world.planningQueue,
    notifier: world.notifier,
    clock: world.clock,
    ...observability(),
  });
}

/** EMF documents printed, as {metric name → value} with their dimensions. */
function emf(output: ReturnType<typeof captureOutput>) {
  return output
    .lines()
    .filter((line) => line._aws !== undefined)
    .map((line) => {
      const aws = line._aws as {
        CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string }[] }[];
      };
      const directive = aws.CloudWatchMetrics[0]!;
      return {
        dimensions: directive.Dimensions.flat(),
        values: Object.fromEntries(directive.Metrics.map((metric) => [metric.Name, line[metric.Name]])),
        accountId: line.AccountId,
      };
    });
}

describe('dispatcher', () => {
  let output: ReturnType<typeof captureOutput>;
  beforeEach(() => {
    output = captureOutput();
  });
  afterEach(() => output.restore());

  test('queues one planning message per selected account, for the run starting now, and counts them', async () => {
    const { world, a, b } = organization();
    const dispatcher = createDispatcherHandler({
      config: { organization: world.organizationSettings, planningQueueUrl: 'unused', tableName: 'ledger' },
      directory: world.organization,
      queue: world.planningQueue,
      runs: world.ledger,
      clock: world.clock,
      ...observability(),
    });

    const result = await dispatcher({ dryRun: false }, centralContext('dispatcher'));

    expect(world.planningQueue.sent).toEqual(
      [a.accountId, b.accountId].sort().map((accountId) => planning(accountId, { plannedAt: PLANNED_AT })),
    );
    expect(result.skipped.map((skip) => skip.reason)).toEqual(['excluded-account']);
    const metrics = emf(output).find((doc) => METRIC.accountsSelected in doc.values);
    expect(metrics?.values).toMatchObject({ [METRIC.accountsSelected]: 2, [METRIC.accountsSkipped]: 1 });
  });

  test('a dry run queues dry planning messages', async () => {
    const { world } = organization();
    const dispatcher = createDispatcherHandler({
      config: { organization: world.organizationSettings, planningQueueUrl: 'unused', tableName: 'ledger' },
      directory: world.organization,
      queue: world.planningQueue,
      runs: world.ledger,
      clock: world.clock,
      ...observability(),
    });

    await dispatcher({ dryRun: true }, centralContext('dispatcher'));

    expect(world.planningQueue.sent.map((message) => message.dryRun)).toEqual([true, true]);
  });

  function dispatcherFor(world: OrgWorld) {
    return createDispatcherHandler({
      config: { organization: world.organizationSettings, planningQueueUrl: 'unused', tableName: 'ledger' },
      directory: world.organization,
      queue: world.planningQueue,
      runs: world.ledger,
      clock: world.clock,
      ...observability(),
    });
  }

  test("the schedule's time is the run's id: Lambda's retry of the invocation continues the same run", async () => {
    const { world } = organization();
    const dispatcher = dispatcherFor(world);
    world.clock.advance(90_000); // invoked (and retried) after the scheduled time

    const first = await dispatcher(
      { dryRun: false, scheduledAt: '2026-01-01T02:00:00Z' },
      centralContext('dispatcher'),
    );
    world.clock.advance(60_000);
    const retry = await dispatcher(
      { dryRun: false, scheduledAt: '2026-01-01T02:00:00Z' },
      centralContext('dispatcher'),
    );

    expect([first.plannedAt, retry.plannedAt]).toEqual([PLANNED_AT, PLANNED_AT]);
    expect(new Set(world.planningQueue.sent.map((message) => message.plannedAt))).toEqual(
      new Set([PLANNED_AT]),
    );
  });

  test.each([
    [
      { dryRun: true, startAfter: 'x' },
      'unknown field(s) startAfter; only "dryRun" and "scheduledAt" are read',
    ],
    [{ dryrun: true }, 'unknown field(s) dryrun; only "dryRun" and "scheduledAt" are read'],
    [{ scheduledAt: 'yesterday' }, '"scheduledAt" must be an ISO date-time in UTC'],
    [{ scheduledAt: '2026-02-31T02:00:00Z' }, '"scheduledAt" must be an ISO date-time in UTC'],
    [{ dryRun: 'yes' }, '"dryRun" must be true or false'],
  ])('refuses the input %j, saying what it reads, and queues nothing', async (input, message) => {
    const { world } = organization();

    await expect(dispatcherFor(world)(input, centralContext('dispatcher'))).rejects.toThrow(message);
    expect(world.planningQueue.sent).toEqual([]);
  });

  test('an account excluded since its last run gets a finish-only planning message, named in the log', async () => {
    const { world, a, b, excluded } = organization();
    await world.ledger.recordAccountRun({
      accountId: excluded.accountId,
      runId: '2025-12-31T02:00:00.000Z',
      dryRun: false,
      status: 'planned',
      at: '2025-12-31T02:00:05.000Z',
      consecutiveFailures: 0,
    });

    const result = await dispatcherFor(world)({ dryRun: false }, centralContext('dispatcher'));

    expect(world.planningQueue.sent).toEqual([
      ...[a.accountId, b.accountId].sort().map((accountId) => planning(accountId)),
      planning(excluded.accountId, { finishOnly: true }),
    ]);
    expect(result.finishing.map((account) => account.accountId)).toEqual([excluded.accountId]);
    const line = output.lines().find((entry) => entry.message === 'accounts dispatched for planning');
    expect(line?.run).toMatchObject({ finishing: [excluded.accountId], queued: 3 });
  });

  test('fails the invocation when discovery fails, so that the errors alarm (nothing half queued)', async () => {
    const { world } = organization();
    world.organization.inUse = false;
    const dispatcher = createDispatcherHandler({
      config: { organization: world.organizationSettings, planningQueueUrl: 'unused', tableName: 'ledger' },
      directory: world.organization,
      queue: world.planningQueue,
      runs: world.ledger,
      clock: world.clock,
      ...observability(),
    });

    await expect(dispatcher({}, centralContext('dispatcher'))).rejects.toThrow(
      'not a member of an organization',
    );
    expect(world.planningQueue.sent).toEqual([]);
    expect(output.text()).toContain('dispatching failed');
  });
});

describe('planner (organization mode)', () => {
  let output: ReturnType<typeof captureOutput>;
  beforeEach(() => {
    output = captureOutput();
  });
  afterEach(() => output.restore());

  test("plans the message's account through its member role and queues its users' work", async () => {
    const { world, a, b } = organization();

    const response = await plannerFor(world)(
      { Records: [planningRecord('m1', planning(a.accountId))] },
      centralContext('planner'),
    );

    expect(response.batchItemFailures).toEqual([]);
    expect(world.workQueue.messages).toEqual([
      expect.objectContaining({ accountId: a.accountId, userName: 'deploy-bot', plannedAt: PLANNED_AT }),
    ]);
    expect(world.access.sessions).toEqual([{ accountId: a.accountId, runId: PLANNED_AT }]);
    expect(await world.ledger.lastAccountRun(a.accountId)).toMatchObject({
      status: 'planned',
      runId: PLANNED_AT,
      consecutiveFailures: 0,
    });
    // The other account was not touched.
    expect(b.faults.calls).toEqual([]);
  });

  test('an account whose member role is missing is recorded, counted by AccountId, told to operators, and consumed', async () => {
    const { world, a } = organization();
    world.access.fail(a.accountId, 'no-role');

    const response = await plannerFor(world)(
      { Records: [planningRecord('m1', planning(a.accountId))] },
      centralContext('planner'),
    );

    expect(response.batchItemFailures).toEqual([]);
    expect(await world.ledger.lastAccountRun(a.accountId)).toMatchObject({
      status: 'failed',
      retryable: false,
      consecutiveFailures: 1,
    });
    expect(world.notifier.published).toEqual([
      expect.objectContaining({ event: 'account.unreachable', accountId: a.accountId, toOperators: true }),
    ]);
    const docs = emf(output).filter((doc) => METRIC.accountFailures in doc.values);
    expect(docs).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ dimensions: ['service'], values: { [METRIC.accountFailures]: 1 } }),
        expect.objectContaining({
          dimensions: expect.arrayContaining(['service', 'AccountId']) as unknown,
          accountId: a.accountId,
          values: { [METRIC.accountFailures]: 1 },
        }),
      ]),
    );
    expect(world.workQueue.messages).toEqual([]);
  });

  test('a throttled STS is delivered again by SQS, and told to operators only on the last delivery', async () => {
    const { world, a } = organization();
    world.access.fail(a.accountId, 'throttled');
    const planner = plannerFor(world);

    const first = await planner(
      { Records: [planningRecord('m1', planning(a.accountId), 1)] },
      centralContext('planner'),
    );
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }]);
    expect(world.notifier.published).toEqual([]);

    const last = await planner(
      { Records: [planningRecord('m1', planning(a.accountId), 3)] },
      centralContext('planner'),
    );
    expect(last.batchItemFailures).toEqual([]);
    expect(world.notifier.published.map((notice) => notice.event)).toEqual(['account.unreachable']);
    expect(await world.ledger.lastAccountRun(a.accountId)).toMatchObject({
      status: 'failed',
      retryable: true,
      // Two deliveries of one run are one failed run.
      consecutiveFailures: 1,
    });
  });

  /** The AccountFailures and AccountRetries values printed, plain and by account. */
  function accountMetrics() {
    const docs = emf(output);
    const sum = (name: string, byAccount: boolean) =>
      docs
        .filter((doc) => name in doc.values && (doc.accountId !== undefined) === byAccount)
        .reduce((total, doc) => total + Number(doc.values[name]), 0);
    return {
      failures: sum(METRIC.accountFailures, false),
      failuresByAccount: sum(METRIC.accountFailures, true),
      retries: sum(METRIC.accountRetries, false),
    };
  }

  test('a throttle that passes on the next delivery counts a retry, not an account failure (no alarm)', async () => {
    const { world, a } = organization();
    world.access.fail(a.accountId, 'throttled', 1);
    const planner = plannerFor(world);

    const first = await planner(
      { Records: [planningRecord('m1', planning(a.accountId), 1)] },
      centralContext('planner'),
    );
    const second = await planner(
      { Records: [planningRecord('m1', planning(a.accountId), 2)] },
      centralContext('planner'),
    );

    expect([first.batchItemFailures, second.batchItemFailures]).toEqual([[{ itemIdentifier: 'm1' }], []]);
    expect(accountMetrics()).toEqual({ failures: 0, failuresByAccount: 0, retries: 1 });
    expect(await world.ledger.lastAccountRun(a.accountId)).toMatchObject({ status: 'planned' });
  });

  test('a throttle on the last delivery is consumed and counted once as an account failure, plain and by AccountId', async () => {
    const { world, a } = organization();
    world.access.fail(a.accountId, 'throttled');

    const last = await plannerFor(world)(
      { Records: [planningRecord('m1', planning(a.accountId), 3)] },
      centralContext('planner'),
    );

    expect(last.batchItemFailures).toEqual([]);
    expect(accountMetrics()).toEqual({ failures: 1, failuresByAccount: 1, retries: 0 });
  });

  test('a dry run counts no account failure, whatever the failure', async () => {
    const { world, a, b } = organization();
    world.access.fail(a.accountId, 'no-role');
    world.access.fail(b.accountId, 'throttled');

    const response = await plannerFor(world)(
      {
        Records: [
          planningRecord('m1', planning(a.accountId, { dryRun: true }), 1),
          planningRecord('m2', planning(b.accountId, { dryRun: true }), 3),
        ],
      },
      centralContext('planner'),
    );

    expect(response.batchItemFailures).toEqual([]);
    expect(accountMetrics()).toEqual({ failures: 0, failuresByAccount: 0, retries: 0 });
    expect(world.notifier.published).toEqual([]);
  });

  test('a finish-only message opens the account (one AssumeRole, nothing else there) and queues finish-only work for its unfinished users', async () => {
    const { world, excluded } = organization();
    const record = await world.ledger.save({
      ...emptyLedger(excluded.accountId, 'deploy-bot'),
      inFlight: {
        oldKeyId: excluded.iam.users.get('deploy-bot')!.keys[0]!.accessKeyId,
        phase: 'intent',
        startedAt: PLANNED_AT,
        keysBefore: [],
        reason: 'key is 85 days old',
      },
    });
    expect(record.inFlight).toBeDefined();

    const response = await plannerFor(world)(
      { Records: [planningRecord('m1', planning(excluded.accountId, { finishOnly: true }))] },
      centralContext('planner'),
    );

    expect(response.batchItemFailures).toEqual([]);
    expect(world.access.sessions).toEqual([{ accountId: excluded.accountId, runId: PLANNED_AT }]);
    expect(excluded.faults.calls).toEqual(['sts:AssumeRole']);
    expect(world.workQueue.messages).toEqual([
      {
        version: WORK_MESSAGE_VERSION,
        accountId: excluded.accountId,
        userName: 'deploy-bot',
        dryRun: false,
        plannedActions: ['resume'],
        plannedAt: PLANNED_AT,
        finishOnly: true,
      },
    ]);
    expect(await world.ledger.lastAccountRun(excluded.accountId)).toMatchObject({
      status: 'finishing',
      queued: 1,
    });
  });

  test('a run short of time continues with a planning message for the same account and run', async () => {
    const { world, a } = organization();
    for (let index = 0; index < 30; index++) {
      a.iam.addUser(`user-${String(index).padStart(2, '0')}`);
      a.iam.addKey(`user-${String(index).padStart(2, '0')}`, { ageDays: 85 });
    }
    // Time for the report and a little more: the checkpoint stops planning early.
    let left = 61_000;
    const context = { ...centralContext('planner'), getRemainingTimeInMillis: () => (left -= 100) };

    const response = await plannerFor(world)(
      { Records: [planningRecord('m1', planning(a.accountId))] },
      context,
    );

    expect(response.batchItemFailures).toEqual([]);
    const [continuation] = world.planningQueue.sent;
    expect(continuation).toMatchObject({ accountId: a.accountId, plannedAt: PLANNED_AT, dryRun: false });
    expect(continuation?.startAfter).toEqual(expect.any(String));
    const queued = world.workQueue.messages.map((message) => message.userName);
    expect(queued.every((name) => name <= continuation!.startAfter!)).toBe(true);
  });

  test('a malformed planning message fails (to the dead-letter queue after its retries) and says why', async () => {
    const { world } = organization();

    const response = await plannerFor(world)(
      {
        Records: [
          planningRecord('bad', {
            version: PLANNING_MESSAGE_VERSION,
            accountId: '12',
            dryRun: false,
            plannedAt: PLANNED_AT,
          }),
        ],
      },
      centralContext('planner'),
    );

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'bad' }]);
    expect(output.text()).toContain('invalid planning message');
    expect(world.access.sessions).toEqual([]);
  });
});

describe('rotator (organization mode)', () => {
  let output: ReturnType<typeof captureOutput>;
  beforeEach(() => {
    output = captureOutput();
  });
  afterEach(() => output.restore());

  function rotatorFor(world: OrgWorld) {
    const anyMember = [...world.members.values()][0]!;
    return createRotatorHandler({
      config: {
        tableName: 'ledger',
        topicArn: `arn:aws:sns:eu-west-1:${CENTRAL_ACCOUNT_ID}:notices`,
        secretPrefix: ORG_SECRET_PREFIX,
        kmsKeyArn: `arn:aws:kms:eu-west-1:${CENTRAL_ACCOUNT_ID}:key/1234`,
        settings: world.settings,
        subscribeOwners: true,
        ownerTopicPrefix: 'iam-key-rotation-owner-',
        readerArns: [],
        serviceRoleArn: `arn:aws:iam::${CENTRAL_ACCOUNT_ID}:role/rotator`,
        organization: {
          settings: world.organizationSettings,
          memberKeyAlias: 'alias/iam-key-rotation-member',
        },
      },
      // The function's own account's adapters: never used in organization mode.
      iam: anyMember.iam,
      vault: anyMember.vault,
      access: world.access,
      verifier: world.verifier,
      notifier: world.notifier,
      ledger: world.ledger,
      clock: world.clock,
      ...observability(),
    });
  }

  function work(accountId: string): string {
    return JSON.stringify({
      version: WORK_MESSAGE_VERSION,
      accountId,
      userName: 'deploy-bot',
      dryRun: false,
      plannedActions: ['rotate'],
      plannedAt: PLANNED_AT,
    });
  }

  test("rotates in the message's member account: the new key and its secret are there, nowhere else", async () => {
    const { world, a, b } = organization();

    const response = await rotatorFor(world)(
      { Records: [fifoRecord('w1', work(b.accountId), `${b.accountId}/deploy-bot`)] },
      centralContext('rotator', 900_000),
    );

    expect(response.batchItemFailures).toEqual([]);
    const keys = b.iam.users.get('deploy-bot')!.keys;
    expect(keys).toHaveLength(2);
    const newKey = keys[1]!;
    expect(b.vault.readStage(b.secretName('deploy-bot'))?.accessKeyId).toBe(newKey.accessKeyId);
    expect(a.vault.readStage(a.secretName('deploy-bot'))).toBeUndefined();
    expect(a.iam.users.get('deploy-bot')!.keys).toHaveLength(1);
    expect(world.access.sessions).toEqual([{ accountId: b.accountId, runId: PLANNED_AT }]);
  });

  /** Delivers one work message for deploy-bot in the account to a rotator built from the current settings. */
  async function deliver(
    world: OrgWorld,
    accountId: string,
    id: string,
    receiveCount = 1,
    body = work(accountId),
  ) {
    return rotatorFor(world)(
      { Records: [fifoRecord(id, body, `${accountId}/deploy-bot`, receiveCount)] },
      { ...centralContext('rotator', 900_000), awsRequestId: `req-${id}` },
    );
  }

  /** A rotation of deploy-bot in flight in the account: the rotator crashed right after CreateAccessKey. */
  async function crashAfterCreateAccessKey(world: OrgWorld, member: MemberAccount): Promise<void> {
    member.faults.inject('iam:CreateAccessKey', 'crash-after');
    const crashed = await deliver(world, member.accountId, 'w1');
    expect(crashed.batchItemFailures).toEqual([{ itemIdentifier: 'w1' }]);
    expect(world.ledger.peek(member.accountId, 'deploy-bot')?.inFlight).toMatchObject({ phase: 'intent' });
    expect(member.iam.apiCreatedKeys()).toHaveLength(1);
    // The process is gone; a new container takes the next delivery, once the lock's lease has run out.
    member.faults.restart();
    world.access.restart();
    world.clock.advance(16 * 60_000);
  }

  function keysOf(member: MemberAccount): string {
    return JSON.stringify(
      member.iam.users.get('deploy-bot')!.keys.map((key) => [key.accessKeyId, key.status, key.createDate]),
    );
  }

  test('a message for an account the settings now exclude, with nothing unfinished: no action at all there', async () => {
    const { world, excluded } = organization();
    const before = keysOf(excluded);

    const response = await deliver(world, excluded.accountId, 'w1');

    // Consumed (not refused into the dead-letter queue), and nothing done: the key is due, yet not rotated.
    expect(response.batchItemFailures).toEqual([]);
    expect(keysOf(excluded)).toBe(before);
    expect(excluded.writes()).toEqual([]);
    expect(excluded.vault.secrets.size).toBe(0);
    expect(world.notifier.published).toEqual([]);
    expect(world.ledger.peek(excluded.accountId, 'deploy-bot')).toBeUndefined();
    const processed = output.lines().find((line) => line.message === 'user processed');
    expect(processed).toMatchObject({ accountId: excluded.accountId, status: 'nothing-due', performed: [] });
  });

  test('an account excluded after a rotation started there: the redelivery finishes it (I1) and changes nothing else (I7)', async () => {
    const { world, b } = organization();
    await crashAfterCreateAccessKey(world, b);
    const [oldKey] = b.iam.users.get('deploy-bot')!.keys;
    // A redeploy excludes the account while the message waits for its next delivery.
    world.configure({ ...world.organizationSettings, excludeAccounts: [b.accountId] });

    const response = await deliver(world, b.accountId, 'w1', 2);

    expect(response.batchItemFailures).toEqual([]);
    // The orphan key (created, its secret lost with the process, never used) is deleted: no key
    // without its secret (I1); the old key is untouched and no rotation is started again (I7).
    expect(secretLossProblems(b)).toEqual([]);
    expect(b.iam.users.get('deploy-bot')!.keys).toEqual([oldKey]);
    expect(oldKey).toMatchObject({ status: 'Active' });
    expect(b.faults.count('iam:CreateAccessKey')).toBe(1);
    expect(b.writes().filter((op) => op !== 'iam:CreateAccessKey')).toEqual(['iam:DeleteAccessKey']);
    const record = world.ledger.peek(b.accountId, 'deploy-bot');
    expect([record?.inFlight, record?.lock]).toEqual([undefined, undefined]);
    expect(record?.history.map((entry) => entry.action)).toEqual(['rotation.started', 'rotation.recovered']);
    expect(world.notifier.published.filter((notice) => notice.event === 'key.rotated')).toEqual([]);
  });

  test('a finish-only message for a covered account also only finishes our work', async () => {
    const { world, a } = organization();
    const before = keysOf(a);

    const response = await deliver(
      world,
      a.accountId,
      'w1',
      1,
      JSON.stringify({
        ...(JSON.parse(work(a.accountId)) as object),
        plannedActions: ['resume'],
        finishOnly: true,
      }),
    );

    expect(response.batchItemFailures).toEqual([]);
    expect(keysOf(a)).toBe(before);
    expect(a.writes()).toEqual([]);
  });

  test('a dry run refused by a member role pages nobody, even on its last delivery', async () => {
    const { world, b } = organization();
    world.access.fail(b.accountId, 'no-role');
    const dry = JSON.stringify({ ...(JSON.parse(work(b.accountId)) as object), dryRun: true });

    const response = await deliver(world, b.accountId, 'd1', 3, dry);

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'd1' }]);
    expect(emf(output).filter((doc) => METRIC.accountFailures in doc.values)).toEqual([]);
  });

  test('a member role gone mid-rotation: the message fails (a retry, then an account failure on its last delivery); with the role back, the next delivery repairs (I1)', async () => {
    const { world, b } = organization();
    await crashAfterCreateAccessKey(world, b);
    world.access.fail(b.accountId, 'no-role');
    const before = output.lines().length;

    // SQS will deliver it again: counted as a retry, nobody paged yet.
    const retried = await deliver(world, b.accountId, 'w1', 2);
    expect(retried.batchItemFailures).toEqual([{ itemIdentifier: 'w1' }]);
    expect(emf(output).filter((doc) => METRIC.accountFailures in doc.values)).toEqual([]);
    expect(emf(output).some((doc) => doc.values[METRIC.accountRetries] === 1)).toBe(true);

    // Its last delivery: an account failure, plain (the alarm's) and by AccountId.
    const refused = await deliver(world, b.accountId, 'w1', 3);
    expect(refused.batchItemFailures).toEqual([{ itemIdentifier: 'w1' }]);
    const docs = emf(output).filter((doc) => METRIC.accountFailures in doc.values);
    expect(docs).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          dimensions: ['service'],
          values: expect.objectContaining({
            [METRIC.accountFailures]: 1,
            [METRIC.rotationFailures]: 1,
          }) as unknown,
        }),
        expect.objectContaining({ accountId: b.accountId, values: { [METRIC.accountFailures]: 1 } }),
      ]),
    );
    // The failure to open the account is logged with the account and the user.
    const failed = output
      .lines()
      .slice(before)
      .find((line) => String(line.message).startsWith('account could not be opened'));
    expect(failed).toMatchObject({
      accountId: b.accountId,
      userName: 'deploy-bot',
      roleArn: b.roleArn,
      error: { name: 'MemberRoleAccessDeniedError' },
    });

    // The role back; the next run's message (the planner queues the unfinished rotation again).
    world.access.clear(b.accountId);
    const repaired = await deliver(world, b.accountId, 'w2', 1);

    expect(repaired.batchItemFailures).toEqual([]);
    expect(secretLossProblems(b)).toEqual([]);
    expect(world.ledger.peek(b.accountId, 'deploy-bot')?.inFlight).toBeUndefined();
    // Still covered: after the repair the due rotation is carried out, its secret stored in the account.
    const created = b.iam.users.get('deploy-bot')!.keys.filter((key) => key.createdByApi);
    expect(created).toHaveLength(1);
    expect(b.vault.readStage(b.secretName('deploy-bot'))?.accessKeyId).toBe(created[0]!.accessKeyId);
  });
});
