import { World } from '../../fakes/world';

test('a due key is rotated, stored, verified and announced', async () => {
  const world = new World();
  world.iam.addUser('alice', { tags: { 'key-rotation:owner': 'alice@example.com' } });
  const old = world.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 0 });
  const day = await world.runDay();
  expect(day.failures).toEqual([]);
  const keys = world.iam.users.get('alice')!.keys;
  expect(keys).toHaveLength(2);
  const current = world.vault.readStage(world.secretName('alice'));
  expect(current?.accessKeyId).toBe(keys[1]!.accessKeyId);
  expect(keys[0]!.accessKeyId).toBe(old.accessKeyId);
  expect(world.notifier.events('alice')).toEqual(['key.rotated']);
});
