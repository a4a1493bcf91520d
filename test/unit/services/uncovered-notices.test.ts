/**
 * A rotation finished for a user the service no longer covers (moved out of includePaths, exempted,
 * or its account left the organization selection after the rotation started): the service finishes
 * it (I1, I7) and then never touches the user again, so the owner's key.rotated notice must not
 * promise a deactivation; it tells the owner to retire the old key.
 */
import type { OwnerNotification } from '../../../lambda/domain/model';
import { rotateUser } from '../../../lambda/services/rotate-user';
import { World } from '../../fakes/world';

const OWNER = { 'key-rotation:owner': 'alice@example.com' };

/** alice (path /team/) is due; the run stops right after her new key is stored (phase intent). */
async function interruptedAfterStore(): Promise<{ world: World; oldKeyId: string }> {
  const world = new World({ settings: { includePaths: ['/team/'] } });
  world.iam.addUser('alice', { path: '/team/', tags: OWNER });
  const old = world.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 0 });
  world.faults.inject('secretsmanager:Store', 'crash-after');
  await expect(world.rotate('alice')).rejects.toThrow('simulated crash after secretsmanager:Store');
  world.faults.restart();
  world.clock.advance(30 * 60_000); // the crashed run's lock lease runs out
  expect(world.ledger.peek(world.accountId, 'alice')?.inFlight?.phase).toBe('intent');
  return { world, oldKeyId: old.accessKeyId };
}

function moveTo(world: World, userName: string, path: string): void {
  const user = world.iam.users.get(userName)!;
  user.path = path;
  user.arn = `arn:aws:iam::${world.accountId}:user${path}${userName}`;
}

function rotated(world: World): OwnerNotification {
  const notices = world.notifier.published.filter((notice) => notice.event === 'key.rotated');
  expect(notices).toHaveLength(1);
  return notices[0]!;
}

function expectRetireYourself(world: World, notice: OwnerNotification, oldKeyId: string): void {
  const newKeyId = world.vault.readStage(world.secretName('alice'))!.accessKeyId;
  expect(notice.subject).toBe(
    `ACTION NEEDED: retire the old access key of alice yourself (new key in ${world.secretName('alice')})`.slice(
      0,
      99,
    ),
  );
  expect(notice.text).toContain(`A new access key ${newKeyId} was created`);
  expect(notice.text).toContain(
    `It is stored in the secret ${world.secretName('alice')} under the label AWSCURRENT`,
  );
  expect(notice.text).toContain(
    `The old key ${oldKeyId} is still active, and the service will not deactivate or delete it. Retire it yourself`,
  );
  expect(notice.text).toContain(`then deactivate ${oldKeyId} in IAM, and delete it once nothing uses it`);
  expect(notice.text).not.toContain('will be deactivated from');
  expect(notice.text).not.toContain('at the latest');
  expect(notice.details).toMatchObject({
    event: 'key.rotated',
    oldKeyId,
    newKeyId,
    deactivateFrom: null,
    enforceOn: null,
    covered: false,
  });
  // I4: the new key's secret is in no notice.
  for (const secret of world.iam.issuedSecrets) {
    expect(JSON.stringify(world.notifier.published)).not.toContain(secret);
  }
}

describe('a rotation finished for a user the service no longer covers', () => {
  test('moved out of includePaths after the intent: finished, stored and verified; the owner retires the old key', async () => {
    const { world, oldKeyId } = await interruptedAfterStore();
    moveTo(world, 'alice', '/legacy/');

    await world.rotate('alice');

    const notice = rotated(world);
    expectRetireYourself(world, notice, oldKeyId);
    expect(notice.text).toContain(
      'The rotation service no longer covers this user: its path /legacy/ is outside the paths it rotates',
    );
    expect(notice.text).toContain("will not act on this user's keys again.");
    expect(notice.details).toMatchObject({ notCovered: 'path' });
    expect(world.logger.audits('key.rotated')[0]).toMatchObject({ covered: false, notCovered: 'path' });
    // And the notice is true: long after the grace and the maximum age, the old key is still active.
    world.clock.advanceDays(30);
    await world.rotate('alice');
    const keys = world.iam.users.get('alice')!.keys;
    expect(keys.find((key) => key.accessKeyId === oldKeyId)?.status).toBe('Active');
    expect(world.notifier.events('alice')).toEqual(['key.rotated']);
  });

  test('exempted after the intent: the notice names the exemption and its last day', async () => {
    const { world, oldKeyId } = await interruptedAfterStore();
    world.iam.users.get('alice')!.tags['key-rotation:exempt'] = 'vendor appliance until=2026-12-31';

    await world.rotate('alice');

    const notice = rotated(world);
    expectRetireYourself(world, notice, oldKeyId);
    expect(notice.text).toContain('This user is exempt from rotation (vendor appliance, until 2026-12-31).');
    expect(notice.text).toContain("will not act on this user's keys again while the exemption applies.");
    expect(notice.details).toMatchObject({ notCovered: 'exempt' });
  });

  test('an account the organization run no longer covers (finish-only: every path excluded): the account is named', async () => {
    const { world, oldKeyId } = await interruptedAfterStore();

    await rotateUser(
      { accountId: world.accountId, userName: 'alice', dryRun: false },
      { ...world.rotationDeps(), settings: { ...world.settings, excludePaths: ['/'] } },
    );

    const notice = rotated(world);
    expectRetireYourself(world, notice, oldKeyId);
    expect(notice.text).toContain(`The rotation service no longer covers account ${world.accountId}`);
    expect(notice.details).toMatchObject({ notCovered: 'account' });
  });

  test('a user still covered: the notice promises the deactivation as before', async () => {
    const { world, oldKeyId } = await interruptedAfterStore();

    await world.rotate('alice');

    const notice = rotated(world);
    expect(notice.subject).toBe(`New access key for alice is in ${world.secretName('alice')}`);
    expect(notice.text).toContain(
      `The old key ${oldKeyId} keeps working for now. It will be deactivated from`,
    );
    expect(notice.details.covered).toBe(true);
    expect(notice.details.deactivateFrom).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(notice.details).not.toHaveProperty('notCovered');
  });
});
