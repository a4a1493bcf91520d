/**
 * Reading a user live, and reading when each key was last used only where the policy needs it: the
 * policy must get the same answer it gets with every last use read.
 */
import type { AccessKey, UserLedger } from '../../../lambda/domain/model';
import { planUser, type PolicyInput } from '../../../lambda/domain/policy';
import { DEFAULT_SETTINGS, type RotationSettings } from '../../../lambda/domain/settings';
import { lastUseMatters, readUser } from '../../../lambda/services/read-user';
import { daysAgo, key, ledger, NEW, NOW, OLD, pairLedger, user } from '../domain/builders';
import { World } from '../../fakes/world';

const MS_PER_DAY = 86_400_000;

function input(
  keys: readonly AccessKey[],
  options: { ledger?: UserLedger; settings?: Partial<RotationSettings> } = {},
): PolicyInput {
  return {
    user: user(keys),
    ledger: options.ledger,
    now: NOW,
    settings: { ...DEFAULT_SETTINGS, ...options.settings },
  };
}

describe('readUser', () => {
  test('reads details and keys, and each key’s last use unless told not to', async () => {
    const world = new World();
    world.iam.addUser('alice');
    world.iam.addKey('alice', { ageDays: 30, lastUsedDaysAgo: 2 });
    world.iam.addKey('alice', { ageDays: 3 });

    const full = await readUser(world.iam, 'alice');
    const calls = world.faults.calls.length;
    const lean = await readUser(world.iam, 'alice', { lastUse: false });

    expect(full.keys.map((k) => k.lastUsedDate !== undefined)).toEqual([true, false]);
    expect(lean.keys.map((k) => k.lastUsedDate)).toEqual([undefined, undefined]);
    expect(lean.keys.map((k) => k.accessKeyId)).toEqual(full.keys.map((k) => k.accessKeyId));
    expect(world.faults.calls.slice(calls)).toEqual(['iam:GetUser', 'iam:ListAccessKeys']);
    expect(world.faults.count('iam:GetAccessKeyLastUsed')).toBe(2);
  });
});

describe('lastUseMatters', () => {
  test.each([
    ['one key, due by age', [key(OLD, 85)], {}, false],
    ['one key, young', [key(OLD, 10)], {}, false],
    [
      'one key, reaping on and the key old enough to be idle',
      [key(OLD, 60)],
      { settings: { reapUnusedDays: 45 } },
      true,
    ],
    [
      'one key, reaping on but the key too young to be idle',
      [key(OLD, 10)],
      { settings: { reapUnusedDays: 45 } },
      false,
    ],
    ['a rotation pair in its grace', [key(OLD, 83), key(NEW, 3)], { ledger: pairLedger({}, 3) }, false],
    ['a rotation pair past its grace', [key(OLD, 88), key(NEW, 8)], { ledger: pairLedger({}, 8) }, true],
    [
      'two keys not ours (reported, never changed)',
      [key(OLD, 100), key(NEW, 20)],
      { ledger: ledger() },
      false,
    ],
  ] as const)('%s', (_name, keys, options, expected) => {
    expect(lastUseMatters(input(keys, options))).toBe(expected);
  });

  /** Deterministic pseudo-random numbers (mulberry32), so that a failure can be replayed. */
  function random(seed: number): () => number {
    let state = seed >>> 0;
    return () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  test('when it says last use does not matter, the plan without it is the plan with it (2,000 random users)', () => {
    const mismatches: string[] = [];
    let skipped = 0;
    for (let seed = 1; seed <= 2_000; seed++) {
      const next = random(seed);
      const int = (max: number) => Math.floor(next() * (max + 1));
      const chance = (p: number) => next() < p;
      const settings: RotationSettings = chance(0.4)
        ? { ...DEFAULT_SETTINGS, reapUnusedDays: 1 + int(60) }
        : DEFAULT_SETTINGS;
      const olderAge = int(130);
      const keys: AccessKey[] = [];
      for (const [index, id] of [OLD, NEW].slice(0, 1 + int(1)).entries()) {
        const age = index === 0 ? olderAge : int(olderAge);
        const createDate = daysAgo(age);
        const usedDaysAgo = int(age);
        keys.push({
          accessKeyId: id,
          status: chance(0.8) ? 'Active' : 'Inactive',
          createDate,
          lastUsedDate: chance(0.7)
            ? new Date(createDate.getTime() + (age - usedDaysAgo) * MS_PER_DAY)
            : undefined,
        });
      }
      const memory =
        keys.length === 2 && chance(0.7)
          ? pairLedger({ reactivatedSeen: chance(0.2) ? { [OLD]: daysAgo(int(10)).toISOString() } : {} })
          : ledger();
      const full: PolicyInput = { user: user(keys), ledger: memory, now: NOW, settings };
      const lean: PolicyInput = {
        ...full,
        user: user(keys.map(({ accessKeyId, status, createDate }) => ({ accessKeyId, status, createDate }))),
      };
      if (lastUseMatters(lean)) {
        skipped++;
        continue;
      }
      const answer = (of: PolicyInput) => JSON.stringify(planUser(of).actions);
      if (answer(lean) !== answer(full)) mismatches.push(`seed ${seed}: ${answer(lean)} vs ${answer(full)}`);
    }
    expect(mismatches).toEqual([]);
    // Both kinds of users were generated: those whose last use is read, and those whose is not.
    expect(skipped).toBeGreaterThan(100);
    expect(skipped).toBeLessThan(1_900);
  });
});
