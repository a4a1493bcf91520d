/**
 * Bad input: malformed tags, a secret under our name that is not ours, a user that disappears while
 * it is worked on, and dry runs that must not write anything (I6). Assertions are on the state of
 * keys, secrets, the ledger and notifications.
 */
import { NoSuchUserError } from '../../../lambda/domain/errors';
import { beforeCall, secretLossProblems, userFingerprint } from '../../fakes/invariants';
import type { FakeSecret } from '../../fakes/vault';
import { World } from '../../fakes/world';

const PAST_THE_LEASE_MS = 16 * 60_000;
const OWNER_TAG = 'key-rotation:owner';
const EXEMPT_TAG = 'key-rotation:exempt';

function noticesOf(world: World, userName: string, event?: string) {
  return world.notifier.published.filter(
    (notice) => notice.userName === userName && (event === undefined || notice.event === event),
  );
}

/** Everything about a secret, values and labels included. */
function secretFingerprint(secret: FakeSecret | undefined): string {
  if (!secret) return 'absent';
  return JSON.stringify({
    name: secret.name,
    tags: secret.tags,
    readers: secret.readers,
    versions: [...secret.versions.entries()].map(([token, version]) => ({
      token,
      value: version.value,
      stages: [...version.stages].sort(),
      createdAt: version.createdAt,
    })),
  });
}

/** Runs `days` scheduled days, plus the CLI rotating the user each day; every error is returned. */
async function runDaysWithCli(world: World, userName: string, days: number): Promise<unknown[]> {
  const errors: unknown[] = [];
  for (let day = 0; day < days; day++) {
    const run = await world.runDay();
    errors.push(...run.failures.map((failure) => failure.error));
    await world.rotate(userName).catch((error: unknown) => errors.push(error));
    world.clock.advanceDays(1);
  }
  return errors;
}

describe('a malformed owner tag', () => {
  test('falls back to the default recipients, reports it once, and the rotation still happens', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: { [OWNER_TAG]: 'alice at example dot com' } });
    const old = world.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 0 });

    const errors = await runDaysWithCli(world, 'alice', 10);

    expect(errors).toEqual([]);
    const invalid = noticesOf(world, 'alice', 'tags.invalid');
    expect(invalid).toHaveLength(1);
    expect(invalid[0]).toMatchObject({ owner: 'default' });
    expect(invalid[0]!.text).toContain('alice at example dot com');
    // The rotation happened and was announced to the default recipients.
    const [fresh] = world.iam.apiCreatedKeys().map(({ key }) => key);
    expect(fresh).toBeDefined();
    expect(world.vault.readStage(world.secretName('alice'))?.accessKeyId).toBe(fresh!.accessKeyId);
    const rotated = noticesOf(world, 'alice', 'key.rotated');
    expect(rotated).toHaveLength(1);
    expect(rotated[0]).toMatchObject({ owner: 'default', details: { newKeyId: fresh!.accessKeyId } });
    expect(world.iam.findKey(old.accessKeyId)).toBeDefined();
    // Nobody is subscribed under the malformed value.
    expect(world.notifier.subscribed).toEqual(new Set());
    expect(secretLossProblems(world)).toEqual([]);
  });

  test('a well-formed owner among bad ones is not guessed at: all notices go to the default', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: { [OWNER_TAG]: 'alice@example.com, not-an-address' } });
    world.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 0 });

    await world.runDay();

    expect(noticesOf(world, 'alice').map((notice) => [notice.event, notice.owner])).toEqual([
      ['tags.invalid', 'default'],
      ['key.rotated', 'default'],
    ]);
    expect(world.notifier.subscribed).toEqual(new Set());
  });
});

describe('a malformed exemption expiry', () => {
  test('keeps the user exempt (never modified) and reports the tag', async () => {
    const world = new World();
    world.iam.addUser('bob', { tags: { [EXEMPT_TAG]: 'legacy system; until=2026-02-31' } });
    world.iam.addKey('bob', { ageDays: 300, status: 'Inactive' }); // would otherwise be deleted
    world.iam.addKey('bob', { ageDays: 95, lastUsedDaysAgo: 0 }); // overdue
    const before = userFingerprint(world, 'bob');

    const dry = await world.plan(true);
    const day = await world.runDay();

    // Reported in the (dry-run) plan, which reads the user live, and in the log the auditors read...
    const plan = dry.users.find((user) => user.userName === 'bob');
    expect(plan?.exemption).toMatchObject({ applies: true });
    expect(plan?.findings).toEqual([expect.stringContaining('unreadable expiry "2026-02-31"')]);
    const warnings = world.logger.lines.filter(
      (line) => line.level === 'warn' && line.attributes.userName === 'bob',
    );
    expect(warnings.map((line) => line.attributes.finding)).toEqual([
      expect.stringContaining('unreadable expiry'),
    ]);
    expect(dry.messages.map((message) => [message.userName, message.plannedActions])).toEqual([
      ['bob', ['report-findings']],
    ]);
    // ...and, through the scheduled run (which queues him on the report's word), to the default
    // recipients, once.
    expect(day.plan.messages.map((message) => message.userName)).toEqual(['bob']);
    expect(day.outcomes.map((outcome) => [outcome.userName, outcome.performed])).toEqual([['bob', []]]);
    expect(noticesOf(world, 'bob').map((notice) => notice.event)).toEqual(['tags.invalid']);
    const errors = await runDaysWithCli(world, 'bob', 30);

    expect(errors).toEqual([]);
    expect(noticesOf(world, 'bob').map((notice) => [notice.event, notice.owner])).toEqual([
      ['tags.invalid', 'default'],
    ]);
    expect(userFingerprint(world, 'bob')).toBe(before);
    expect(world.iam.issuedSecrets).toEqual([]);
    expect(world.vault.secrets.size).toBe(0);
    const record = world.ledger.peek(world.accountId, 'bob');
    expect(record?.rotations ?? []).toEqual([]);
    expect(record?.inactiveSince ?? {}).toEqual({});
  });
});

describe('a secret with our name that the service did not create', () => {
  test('is never overwritten: no key is created, the default recipients are told once', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: { [OWNER_TAG]: 'alice@example.com' } });
    const old = world.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 0 });
    world.vault.addForeignSecret(world.secretName('alice'));
    const foreignBefore = secretFingerprint(world.vault.secrets.get(world.secretName('alice')));
    const aliceBefore = userFingerprint(world, 'alice');

    const first = await world.rotate('alice');
    const errors = await runDaysWithCli(world, 'alice', 4);

    expect(first.performed).toEqual([expect.objectContaining({ kind: 'refused' })]);
    expect(errors).toEqual([]);
    expect(world.iam.issuedSecrets).toEqual([]);
    expect(userFingerprint(world, 'alice')).toBe(aliceBefore);
    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Active');
    expect(secretFingerprint(world.vault.secrets.get(world.secretName('alice')))).toBe(foreignBefore);
    const conflicts = noticesOf(world, 'alice', 'secret.conflict');
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toMatchObject({ owner: 'default' });
    expect(noticesOf(world, 'alice')).toHaveLength(1);
    const record = world.ledger.peek(world.accountId, 'alice');
    expect(record).toMatchObject({ rotations: [], outbox: [] });
    expect(record?.inFlight).toBeUndefined();
  });

  test('appearing between the check and the store: the new key is deleted, the secret left alone', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: { [OWNER_TAG]: 'alice@example.com' } });
    const old = world.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 0 });
    let foreignBefore = '';
    beforeCall(world.faults, 'secretsmanager:Store', 1, () => {
      world.vault.addForeignSecret(world.secretName('alice'));
      foreignBefore = secretFingerprint(world.vault.secrets.get(world.secretName('alice')));
    });

    await world.rotate('alice').catch(() => undefined); // failing is fine; losing a key is not
    world.clock.advance(PAST_THE_LEASE_MS);
    const again = await world.rotate('alice');

    expect(again.performed).toEqual([expect.objectContaining({ kind: 'refused' })]);
    expect(world.iam.users.get('alice')!.keys.map((key) => key.accessKeyId)).toEqual([old.accessKeyId]);
    expect(world.iam.apiCreatedKeys()).toEqual([]);
    expect(secretFingerprint(world.vault.secrets.get(world.secretName('alice')))).toBe(foreignBefore);
    expect(noticesOf(world, 'alice').map((notice) => notice.event)).toEqual(['secret.conflict']);
    expect(world.ledger.peek(world.accountId, 'alice')?.inFlight).toBeUndefined();
  });
});

describe('a user deleted while it is worked on', () => {
  function dueAlice(): World {
    const world = new World();
    world.iam.addUser('alice', { tags: { [OWNER_TAG]: 'alice@example.com' } });
    world.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 0 });
    return world;
  }

  test('between planning and rotation: user-gone, no error, nothing left behind', async () => {
    const world = dueAlice();
    const plan = await world.plan(false);
    expect(plan.messages.map((message) => message.userName)).toEqual(['alice']);

    world.iam.users.delete('alice');
    const outcome = await world.rotate('alice');
    const dry = await world.rotate('alice', true);
    world.clock.advanceDays(1);
    const nextDay = await world.runDay();

    expect(outcome).toMatchObject({ status: 'user-gone', performed: [] });
    expect(dry).toMatchObject({ status: 'user-gone', performed: [] });
    expect(nextDay.plan.messages).toEqual([]);
    expect(nextDay.failures).toEqual([]);
    expect(world.iam.issuedSecrets).toEqual([]);
    expect(world.notifier.published).toEqual([]);
    const record = world.ledger.peek(world.accountId, 'alice');
    expect(record?.inFlight).toBeUndefined();
    expect(record?.lock).toBeUndefined();
  });

  test('while a dry run confirms it: skipped, no work message, no error', async () => {
    const world = dueAlice();
    beforeCall(world.faults, 'iam:GetUser', 1, () => {
      world.iam.users.delete('alice');
    });

    const plan = await world.plan(true);

    expect(plan.skipped).toEqual([{ userName: 'alice', reason: 'user no longer exists' }]);
    expect(plan.messages).toEqual([]);
  });

  // Where the user disappears during the rotation itself. The run in progress may fail (the queue
  // then redelivers); redeliveries must settle on user-gone without error and stop there.
  test.each([
    'iam:GetUser',
    'secretsmanager:DescribeSecret',
    'iam:CreateAccessKey',
    'secretsmanager:Store',
    'sts:GetCallerIdentity',
    'sns:Publish',
  ])('just before %s: redeliveries settle on user-gone, with no rotation left in flight', async (op) => {
    const world = dueAlice();
    const plan = await world.plan(false);
    // The rotator's own first call of the op (the planner may have made some before).
    beforeCall(world.faults, op, world.faults.count(op) + 1, () => {
      world.iam.users.delete('alice');
    });

    await world.rotate('alice').catch((error: unknown) => error);
    const redeliveries = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      world.clock.advance(PAST_THE_LEASE_MS);
      redeliveries.push(
        await world.rotate(plan.messages[0]!.userName).then(
          (outcome) => outcome.status,
          (error: unknown) => error,
        ),
      );
    }
    world.clock.advanceDays(1);
    const nextDay = await world.runDay();

    expect(redeliveries).toEqual(['user-gone', 'user-gone']);
    const record = world.ledger.peek(world.accountId, 'alice');
    expect(record?.inFlight).toBeUndefined();
    expect(nextDay.failures).toEqual([]);
  });

  test('a NoSuchUserError is never the final answer for a deleted user', async () => {
    const world = dueAlice();
    beforeCall(world.faults, 'iam:CreateAccessKey', 1, () => {
      world.iam.users.delete('alice');
    });
    const first = await world.rotate('alice').then(
      (outcome) => outcome.status,
      (error: unknown) => error,
    );
    world.clock.advance(PAST_THE_LEASE_MS);

    const second = await world.rotate('alice');

    // The interrupted run may report the disappearance as an error once; the redelivery does not.
    expect(first === 'user-gone' || first instanceof NoSuchUserError).toBe(true);
    expect(second.status).toBe('user-gone');
    // CreateAccessKey was refused outright, so the intent is closed at once: nothing left in flight.
    const record = world.ledger.peek(world.accountId, 'alice');
    expect(record?.inFlight).toBeUndefined();
    expect(record?.history.map((entry) => entry.action)).toContain('rotation.rolled-back');
  });
});

describe('dry run (I6)', () => {
  /** Write ops a dry run made. */
  function dryRunWrites(world: World, from: number): string[] {
    // iam:GenerateCredentialReport is listed as a write, but the report cannot be read without it: a
    // dry-run plan may call it. It is the only op excluded here.
    return world.faults.calls
      .slice(from)
      .filter((op) => op !== 'iam:GenerateCredentialReport')
      .filter((op) => world.faults.writes().includes(op));
  }

  function stateOf(world: World): string {
    return JSON.stringify({
      users: [...world.iam.users.keys()].map((userName) => userFingerprint(world, userName)),
      issued: world.iam.issuedSecrets,
      secrets: [...world.vault.secrets.values()].map(secretFingerprint),
      ledger: [...world.ledger.items.entries()],
      published: world.notifier.published,
      subscribed: [...world.notifier.subscribed],
    });
  }

  test('writes nothing at any stage of the lifecycle and plans what the real run then does', async () => {
    const world = new World();
    const owner = (name: string) => ({ [OWNER_TAG]: `${name}@example.com` });
    world.iam.addUser('alice', { tags: owner('alice') }); // warn, rotate, deactivate, delete
    const alice = world.iam.addKey('alice', { ageDays: 74, lastUsedDaysAgo: 0 });
    world.iam.addUser('carol', { tags: owner('carol') }); // rotate, postpone, enforce
    const carol = world.iam.addKey('carol', { ageDays: 80, lastUsedDaysAgo: 0 });
    world.iam.addUser('dave', { tags: { [OWNER_TAG]: 'bad tag' } });
    world.iam.addKey('dave', { ageDays: 300, status: 'Inactive' }); // make room, then rotate
    world.iam.addKey('dave', { ageDays: 81 });
    world.iam.addUser('erin', { tags: owner('erin') });
    world.iam.addKey('erin', { ageDays: 90 });
    world.vault.addForeignSecret(world.secretName('erin'));
    world.iam.addUser('frank', { tags: owner('frank') });
    world.iam.addKey('frank', { ageDays: 100 });
    world.iam.addKey('frank', { ageDays: 20 });
    world.iam.addUser('bob', { tags: { [EXEMPT_TAG]: 'legacy' } });
    world.iam.addKey('bob', { ageDays: 120 });

    const dryActions: string[] = [];
    const realActions: string[] = [];
    const planned = (users: readonly { userName: string; actions: readonly { kind: string }[] }[]) =>
      users
        .filter((user) => user.actions.length > 0)
        .map((user) => `${user.userName}:${user.actions.map((action) => action.kind).join('+')}`)
        .sort()
        .join(' ');

    for (let day = 0; day < 30; day++) {
      const current = world.vault.readStage(world.secretName('alice'));
      world.iam.use(current ?? alice);
      world.iam.use(carol);
      if (day === 6) {
        // Leave a rotation half-done so that the dry run also sees a user to resume.
        world.faults.inject('secretsmanager:GetSecretValue', 'crash-after');
        await world.runDay();
        world.faults.restart();
        world.clock.advance(PAST_THE_LEASE_MS);
      }
      const before = stateOf(world);
      const from = world.faults.calls.length;

      const dryPlan = await world.plan(true);
      const outcomes = [];
      for (const userName of world.iam.users.keys()) outcomes.push(await world.rotate(userName, true));

      expect([day, dryRunWrites(world, from)]).toEqual([day, []]);
      expect(stateOf(world)).toBe(before);
      expect(dryPlan.messages.every((message) => message.dryRun)).toBe(true);
      expect(outcomes.every((outcome) => outcome.dryRun && outcome.performed.length === 0)).toBe(true);

      const real = await world.runDay();
      dryActions.push(`${day} ${planned(dryPlan.users)}`);
      // The scheduled planner reads nobody live: what the real run does is what the rotator planned
      // (after resuming half-done work, its second plan, which no dry run can foresee: see below).
      const resumed = (userName: string) =>
        dryPlan.users.some(
          (user) => user.userName === userName && user.actions.some((action) => action.kind === 'resume'),
        );
      realActions.push(
        `${day} ${planned(
          real.outcomes.flatMap((outcome) =>
            resumed(outcome.userName)
              ? dryPlan.users.filter((user) => user.userName === outcome.userName)
              : outcome.plan
                ? [outcome.plan]
                : [],
          ),
        )}`,
      );
      // The dry run of each user says what the rotator, deciding again, then found due.
      for (const outcome of real.outcomes) {
        const dry = outcomes.find((candidate) => candidate.userName === outcome.userName);
        // After resuming half-done work the rotator plans again; its outcome shows that second plan.
        if (dry?.plan?.actions.some((action) => action.kind === 'resume')) continue;
        expect([day, outcome.userName, dry?.plan?.actions]).toEqual([
          day,
          outcome.userName,
          outcome.plan?.actions ?? dry?.plan?.actions,
        ]);
      }
      world.clock.advanceDays(1);
    }

    expect(dryActions).toEqual(realActions);
    // The lifecycle really went through its stages, so the dry runs above covered them.
    expect(new Set(world.notifier.events())).toEqual(
      new Set([
        'key.expiring',
        'key.rotated',
        'key.deleted',
        'key.deactivated',
        'key.deactivation-postponed',
        'key.enforced',
        'tags.invalid',
        'secret.conflict',
        'keys.conflict',
      ]),
    );
    expect(dryActions.join('\n')).toContain('resume');
  });
});
