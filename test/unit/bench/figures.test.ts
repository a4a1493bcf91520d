/** How the bench tells the phases of a rotation apart in its requests (figure 5). */
import { ledgerGrowth, lifecycle, oneOffCosts, rotationPhases } from '../../../bench/figures';
import type { LoggedCall } from '../../../bench/meter';

const log = (entries: readonly (readonly [string, string?])[]): LoggedCall[] =>
  entries.map(([op, via = op.split(':')[0]!], at) => ({ op, via, at }));

describe('rotationPhases', () => {
  test('a lock released alone, after the outbox, counts with the completion', () => {
    const phases = rotationPhases(
      log([
        ['iam:GetUser'],
        ['dynamodb:GetItem', 'ledger.findOwnerSubscription'],
        ['dynamodb:PutItem', 'ledger.recordOwnerSubscription'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['iam:CreateAccessKey'],
        ['secretsmanager:PutSecretValue'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['sts:GetCallerIdentity'],
        ['secretsmanager:UpdateSecretVersionStage'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['sns:Publish'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['dynamodb:UpdateItem', 'ledger.releaseLock'],
      ]),
    );

    expect(phases).toMatchObject({
      lockAndIntent: 1,
      stored: 1,
      completionOutboxRelease: 2,
      outboxCleared: 1,
      other: 0,
    });
  });

  test('one write per phase; the owner subscription is not the user record', () => {
    const phases = rotationPhases(
      log([
        ['dynamodb:GetItem', 'ledger.load'],
        ['dynamodb:PutItem', 'ledger.recordOwnerSubscription'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['iam:CreateAccessKey'],
        ['secretsmanager:PutSecretValue'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['sts:GetCallerIdentity'],
        ['secretsmanager:UpdateSecretVersionStage'],
        ['secretsmanager:UpdateSecretVersionStage'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['sns:Publish'],
        ['sns:Publish'],
        ['dynamodb:PutItem', 'ledger.save'],
      ]),
    );

    expect(phases).toMatchObject({
      lockAndIntent: 1,
      stored: 1,
      completionOutboxRelease: 1,
      outboxCleared: 1,
      other: 0,
    });
    expect(phases.sequence[2]).toBe('dynamodb:PutItem (save)');
  });

  test('a write between verifying and promoting is none of the four', () => {
    const phases = rotationPhases(
      log([
        ['iam:CreateAccessKey'],
        ['secretsmanager:PutSecretValue'],
        ['sts:GetCallerIdentity'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['secretsmanager:UpdateSecretVersionStage'],
        ['sns:Publish'],
      ]),
    );

    expect(phases.other).toBe(1);
  });
});

describe('oneOffCosts', () => {
  test('the first lifecycle minus the steady state, by port: per owner, per user, anything else', () => {
    const first = new Map([
      ['notifier.ensureSubscribed sns:CreateTopic', 1],
      ['notifier.ensureSubscribed sns:Subscribe', 1],
      ['notifier.subscriptionState sns:GetTopicAttributes', 2],
      ['vault.store secretsmanager:CreateSecret', 1],
      ['ledger.save dynamodb:PutItem', 12],
      ['notifier.publish sns:Publish', 7],
    ]);
    const steady = new Map([
      ['notifier.subscriptionState sns:GetTopicAttributes', 1],
      ['vault.store secretsmanager:GetResourcePolicy', 1],
      ['ledger.save dynamodb:PutItem', 12],
      ['notifier.publish sns:Publish', 8],
    ]);

    expect(oneOffCosts(first, steady)).toEqual({
      perOwner: [
        { via: 'notifier.ensureSubscribed', op: 'sns:CreateTopic', calls: 1 },
        { via: 'notifier.ensureSubscribed', op: 'sns:Subscribe', calls: 1 },
        { via: 'notifier.subscriptionState', op: 'sns:GetTopicAttributes', calls: 1 },
      ],
      perUser: [
        { via: 'vault.store', op: 'secretsmanager:CreateSecret', calls: 1 },
        { via: 'vault.store', op: 'secretsmanager:GetResourcePolicy', calls: -1 },
      ],
      other: [{ via: 'notifier.publish', op: 'sns:Publish', calls: -1 }],
    });
  });
});

describe('the lifecycle figure', () => {
  const latency = { iamMs: 50, otherMs: 20 };

  test('measures the first lifecycle and the next one of the same user, and nothing costs anything between', async () => {
    const life = await lifecycle(latency);

    expect(life.first.days.map((day) => [day.day, day.performed])).toEqual([
      [0, ['key.warned']],
      [4, ['rotation.started', 'key.rotated']],
      [11, ['key.deactivated']],
      [25, ['key.deleted']],
    ]);
    const steady = life.steady!;
    expect(steady.firstDay).toBeGreaterThanOrEqual(80);
    expect(steady.days.map((day) => [day.day - steady.firstDay, day.performed])).toEqual([
      [0, ['key.warned']],
      [4, ['rotation.started', 'key.rotated']],
      [11, ['key.deactivated']],
      [25, ['key.deleted']],
    ]);
    expect(life.between).toMatchObject({ firstDay: 30, lastDay: steady.firstDay - 1, extra: 0 });
    // The steady state sets nothing up: no topic, no subscription, no new secret.
    for (const op of [
      'sns:CreateTopic',
      'sns:SetTopicAttributes',
      'sns:Subscribe',
      'secretsmanager:CreateSecret',
    ])
      expect(steady.breakdown.get(op)).toBeUndefined();
    const oneOff = life.oneOff!;
    const calls = (entries: readonly { op: string; calls: number }[], op: string) =>
      entries.filter((entry) => entry.op === op).reduce((total, entry) => total + entry.calls, 0);
    expect(calls(oneOff.perOwner, 'sns:CreateTopic')).toBe(1);
    expect(calls(oneOff.perOwner, 'sns:SetTopicAttributes')).toBe(3);
    expect(calls(oneOff.perOwner, 'sns:Subscribe')).toBe(1);
    expect(calls(oneOff.perUser, 'secretsmanager:CreateSecret')).toBe(1);
    const total = [...oneOff.perOwner, ...oneOff.perUser, ...oneOff.other].reduce(
      (sum, entry) => sum + entry.calls,
      0,
    );
    expect(total).toBe(life.first.extra - steady.extra);
  });

  test('the ledger record grows with its history until the history (100) and the rotations kept (20) are full', async () => {
    const growth = await ledgerGrowth(latency);

    const { lifecycles } = growth;
    expect(lifecycles[0]).toMatchObject({ history: 6, rotations: 1 });
    expect(lifecycles.at(-1)).toMatchObject({ history: 100, rotations: 20 });
    expect(lifecycles.at(-2)).toMatchObject({ history: 100, rotations: 20 });
    for (let index = 1; index < lifecycles.length; index++) {
      expect(lifecycles[index]!.bytes).toBeGreaterThanOrEqual(lifecycles[index - 1]!.bytes);
      expect(lifecycles[index]!.day).toBeGreaterThan(lifecycles[index - 1]!.day + 70); // one key every ~80 days
    }
    // Run only on the days the review names: a handful a lifecycle, not one a day.
    expect(growth.runs).toBeLessThan(lifecycles.length * 10);
  });
});
