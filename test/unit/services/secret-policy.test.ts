/**
 * The secret's side of a rotation: Secrets Manager's own rotation on one of our secrets is refused
 * (it would move the same staging labels), and a missing admin role never stops a rotation but is
 * reported. Assertions are on keys, secrets, who may read them, notices and the audit trail.
 */
import { rotateUser } from '../../../lambda/services/rotate-user';
import { beforeCall } from '../../fakes/invariants';
import type { FakeSecret } from '../../fakes/vault';
import { World } from '../../fakes/world';

const OWNER_TAG = 'key-rotation:owner';
const PAST_THE_LEASE_MS = 16 * 60_000;

function noticesOf(world: World, userName: string, event?: string) {
  return world.notifier.published.filter(
    (notice) => notice.userName === userName && (event === undefined || notice.event === event),
  );
}

/** Everything about a secret: values, labels, readers and the rotation flag. */
function secretFingerprint(secret: FakeSecret | undefined): string {
  if (!secret) return 'absent';
  return JSON.stringify({
    readers: secret.readers,
    rotationEnabled: secret.rotationEnabled,
    versions: [...secret.versions.entries()].map(([token, version]) => ({
      token,
      value: version.value,
      stages: [...version.stages].sort(),
    })),
  });
}

/** Alice, rotated once and her old key deleted since: her secret exists and she has one key. */
async function aliceWithSecret(): Promise<World> {
  const world = new World();
  world.iam.addUser('alice', { tags: { [OWNER_TAG]: 'alice@example.com' } });
  world.iam.addKey('alice', { ageDays: 80 });
  await world.rotate('alice');
  for (let day = 0; day < 30 && world.iam.users.get('alice')!.keys.length !== 1; day++) {
    world.clock.advanceDays(1);
    await world.rotate('alice');
  }
  expect(world.iam.users.get('alice')!.keys).toHaveLength(1);
  expect(world.vault.readStage(world.secretName('alice'))).toBeDefined();
  return world;
}

function forceRotation(world: World) {
  return rotateUser(
    { accountId: world.accountId, userName: 'alice', dryRun: false, forceRotation: 'leaked key' },
    world.rotationDeps(),
  );
}

describe("a secret with Secrets Manager's own rotation turned on", () => {
  test('is not written: no key is created, the secret is untouched, the default recipients are told once', async () => {
    const world = await aliceWithSecret();
    const name = world.secretName('alice');
    world.vault.enableRotation(name);
    const secretBefore = secretFingerprint(world.vault.secrets.get(name));
    const keysBefore = world.iam.users.get('alice')!.keys.map((key) => key.accessKeyId);
    const createdBefore = world.iam.apiCreatedKeys().length;

    const first = await forceRotation(world);
    const second = await forceRotation(world);

    for (const outcome of [first, second]) {
      expect(outcome.performed).toEqual([
        expect.objectContaining({
          kind: 'refused',
          detail: expect.stringContaining('rotation turned on') as string,
        }),
      ]);
    }
    expect(world.iam.apiCreatedKeys()).toHaveLength(createdBefore);
    expect(world.iam.users.get('alice')!.keys.map((key) => key.accessKeyId)).toEqual(keysBefore);
    expect(secretFingerprint(world.vault.secrets.get(name))).toBe(secretBefore);
    const skipped = world.logger.audits('rotation.skipped');
    expect(skipped).toHaveLength(2);
    expect(skipped[0]).toMatchObject({
      outcome: 'skipped',
      reason: expect.stringContaining('cancel-rotate-secret') as string,
    });
    const conflicts = noticesOf(world, 'alice', 'secret.conflict');
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toMatchObject({ owner: 'default' });
    expect(conflicts[0]!.details).toMatchObject({
      reason: expect.stringContaining('rotation turned on') as string,
    });
    expect(world.ledger.peek(world.accountId, 'alice')?.inFlight).toBeUndefined();
  });

  test('turned on between the check and the store: the new key is deleted again, the secret left alone', async () => {
    const world = await aliceWithSecret();
    const name = world.secretName('alice');
    const keysBefore = world.iam.users.get('alice')!.keys.map((key) => key.accessKeyId);
    let secretBefore = '';
    // The first store made the secret; the second is this rotation's.
    beforeCall(world.faults, 'secretsmanager:Store', 2, () => {
      world.vault.enableRotation(name);
      secretBefore = secretFingerprint(world.vault.secrets.get(name));
    });

    await forceRotation(world).catch(() => undefined); // failing is fine; losing a key is not
    world.clock.advance(PAST_THE_LEASE_MS);
    const again = await forceRotation(world);

    expect(again.performed).toEqual([expect.objectContaining({ kind: 'refused' })]);
    expect(world.iam.users.get('alice')!.keys.map((key) => key.accessKeyId)).toEqual(keysBefore);
    expect(secretFingerprint(world.vault.secrets.get(name))).toBe(secretBefore);
    expect(noticesOf(world, 'alice', 'secret.conflict')).toHaveLength(1);
    expect(world.ledger.peek(world.accountId, 'alice')?.inFlight).toBeUndefined();
  });
});

describe('the admin role named for the secret policies does not exist', () => {
  const ADMIN_ROLE = 'arn:aws:iam::111122223333:role/secrets-admin';

  function dueAlice(): World {
    const world = new World();
    world.vault.adminRoleArn = ADMIN_ROLE;
    world.iam.addUser('alice', { tags: { [OWNER_TAG]: 'alice@example.com' } });
    world.iam.addKey('alice', { ageDays: 80, lastUsedDaysAgo: 0 });
    return world;
  }

  test('the rotation completes, the user reads the new key, the policy lacks the role, the finding is reported', async () => {
    const world = dueAlice();
    world.vault.missingPrincipals.add(ADMIN_ROLE);
    const name = world.secretName('alice');
    const userArn = world.iam.users.get('alice')!.arn;

    const outcome = await world.rotate('alice');

    expect(outcome.status).toBe('done');
    expect(outcome.performed.map((action) => action.kind)).toEqual(['rotate']);
    const newKey = world.iam.users.get('alice')!.keys[1]!;
    expect(world.vault.readStage(name)?.accessKeyId).toBe(newKey.accessKeyId);
    expect(world.vault.canRead(name, userArn)).toBe(true);
    expect(world.vault.canRead(name, ADMIN_ROLE)).toBe(false);
    expect(world.vault.secrets.get(name)!.readers).toEqual([userArn]);
    expect(noticesOf(world, 'alice').map((notice) => notice.event)).toEqual(['key.rotated']);
    // The finding: in the outcome (the handler counts it; its alarm goes to the operators) and audited.
    expect(outcome.secretReadersOmitted).toEqual([ADMIN_ROLE]);
    const findings = world.logger.audits('secret.reader-omitted');
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({
      outcome: 'failure',
      newKeyId: newKey.accessKeyId,
      secretName: name,
      omittedReaders: [ADMIN_ROLE],
      reason: expect.stringContaining(`${ADMIN_ROLE} does not exist`) as string,
    });
  });

  test('when the role exists it reads the secret, and nothing is reported', async () => {
    const world = dueAlice();
    const name = world.secretName('alice');

    const outcome = await world.rotate('alice');

    expect(outcome.performed.map((action) => action.kind)).toEqual(['rotate']);
    expect(world.vault.canRead(name, ADMIN_ROLE)).toBe(true);
    expect(world.vault.canRead(name, 'arn:aws:iam::111122223333:role/someone-else')).toBe(false);
    expect(outcome.secretReadersOmitted).toEqual([]);
    expect(world.logger.audits('secret.reader-omitted')).toEqual([]);
  });
});

describe('readers named for every secret (secretReaderArns)', () => {
  const APP_ROLE = 'arn:aws:iam::111122223333:role/billing-app';
  const GONE_ROLE = 'arn:aws:iam::111122223333:role/retired-app';

  function dueAlice(): World {
    const world = new World();
    world.vault.readerArns = [APP_ROLE];
    world.iam.addUser('alice', { tags: { [OWNER_TAG]: 'alice@example.com' } });
    world.iam.addKey('alice', { ageDays: 80, lastUsedDaysAgo: 0 });
    return world;
  }

  test('a workload reading through its own role still reads the key after the rotation', async () => {
    const world = dueAlice();
    const name = world.secretName('alice');

    const outcome = await world.rotate('alice');

    expect(outcome.performed.map((action) => action.kind)).toEqual(['rotate']);
    expect(world.vault.canRead(name, APP_ROLE)).toBe(true);
    expect(world.vault.canRead(name, 'arn:aws:iam::111122223333:role/someone-else')).toBe(false);
    expect(outcome.secretReadersOmitted).toEqual([]);
  });

  test('a reader that does not exist is left out and reported; the rotation completes', async () => {
    const world = dueAlice();
    world.vault.readerArns = [APP_ROLE, GONE_ROLE];
    world.vault.missingPrincipals.add(GONE_ROLE);
    const name = world.secretName('alice');

    const outcome = await world.rotate('alice');

    expect(outcome.status).toBe('done');
    expect(world.vault.readStage(name)?.accessKeyId).toBe(world.iam.users.get('alice')!.keys[1]!.accessKeyId);
    expect(world.vault.canRead(name, APP_ROLE)).toBe(true);
    expect(world.vault.canRead(name, GONE_ROLE)).toBe(false);
    expect(outcome.secretReadersOmitted).toEqual([GONE_ROLE]);
    expect(world.logger.audits('secret.reader-omitted')[0]).toMatchObject({
      omittedReaders: [GONE_ROLE],
      reason: expect.stringContaining('secretReaderArns') as string,
    });
  });
});

describe('a rotation resumed after a redeploy (a new rotator role)', () => {
  const NEW_ROTATOR = 'arn:aws:iam::111122223333:role/iam-key-rotation-rotator-v2';

  test('settles the policy first, then verifies and promotes the stored key', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: { [OWNER_TAG]: 'alice@example.com' } });
    const old = world.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 0 });
    const name = world.secretName('alice');
    const oldRotator = world.vault.serviceRoleArn!;
    // The run stores the key and dies before verifying it.
    world.faults.inject('secretsmanager:Store', 'crash-after');
    await expect(world.rotate('alice')).rejects.toThrow('simulated crash after secretsmanager:Store');
    world.faults.restart();
    const stored = world.iam.apiCreatedKeys()[0]!.key;
    // The stack is redeployed: the rotator runs as a new role, which the secret's policy does not name.
    world.vault.serviceRoleArn = NEW_ROTATOR;
    expect(world.vault.canRead(name, NEW_ROTATOR)).toBe(false);
    world.clock.advance(PAST_THE_LEASE_MS);

    const outcome = await world.rotate('alice');

    expect(outcome.performed).toEqual([
      expect.objectContaining({ kind: 'rotate', keyId: old.accessKeyId, newKeyId: stored.accessKeyId }),
    ]);
    expect(world.vault.readStage(name)?.accessKeyId).toBe(stored.accessKeyId);
    expect(world.vault.canRead(name, NEW_ROTATOR)).toBe(true);
    expect(world.vault.canRead(name, oldRotator)).toBe(false);
    expect(world.iam.apiCreatedKeys()).toHaveLength(1);
    expect(world.ledger.peek(world.accountId, 'alice')?.inFlight).toBeUndefined();
    expect(noticesOf(world, 'alice', 'key.rotated')).toHaveLength(1);
  });
});
