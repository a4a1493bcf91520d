import type { AccessKey, UserLedger } from '../../../lambda/domain/model';
import { hasWork, KEY_CHANGING_ACTIONS, planUser, type PlannedAction } from '../../../lambda/domain/policy';
import { DEFAULT_SETTINGS, type RotationSettings } from '../../../lambda/domain/settings';
import { daysBetween } from '../../../lambda/domain/time';
import {
  actionOf,
  assessment,
  daysAgo,
  EXEMPTION_TAG,
  inactiveKey,
  key,
  kinds,
  ledger,
  NEW,
  NOW,
  OLD,
  OWNER_TAG,
  pairLedger,
  pendingNotice,
  plan,
  SPARE,
  stageOf,
  summary,
  user,
} from './builders';

const ISO = (date: Date) => date.toISOString();

describe('planUser: one active key', () => {
  test.each([
    { age: 0, warned: false, expected: [], stage: 'current' },
    { age: 75, warned: false, expected: [], stage: 'current' },
    { age: 76, warned: false, expected: [`warn:${OLD}`], stage: 'expiring' },
    { age: 79, warned: false, expected: [`warn:${OLD}`], stage: 'expiring' },
    { age: 76, warned: true, expected: [], stage: 'expiring' },
    { age: 79, warned: true, expected: [], stage: 'expiring' },
    { age: 80, warned: false, expected: [`rotate:${OLD}`], stage: 'due' },
    { age: 80, warned: true, expected: [`rotate:${OLD}`], stage: 'due' },
    { age: 89, warned: true, expected: [`rotate:${OLD}`], stage: 'due' },
    { age: 90, warned: true, expected: [`rotate:${OLD}`], stage: 'overdue' },
    { age: 400, warned: false, expected: [`rotate:${OLD}`], stage: 'overdue' },
  ])(
    'a key $age days old (warned before: $warned) -> $expected, stage $stage',
    ({ age, warned, expected, stage }) => {
      // Arrange
      const keys = [key(OLD, age, { lastUsedDaysAgo: 0 })];
      const memory = ledger({ warnedKeys: warned ? { [OLD]: ISO(daysAgo(1)) } : {} });

      // Act
      const result = plan(keys, { ledger: memory });

      // Assert
      expect(summary(result)).toEqual(expected);
      expect(stageOf(result, OLD)).toBe(stage);
      expect(assessment(result, OLD).ageDays).toBe(age);
    },
  );

  test('the warning names the day of rotation and is given without any ledger at all', () => {
    const result = plan([key(OLD, 76, { lastUsedDaysAgo: 0 })]);

    expect(result.actions).toEqual([
      {
        kind: 'warn',
        keyId: OLD,
        rotateOn: '2026-06-05',
        reason: 'key is 76 days old; it will be rotated on 2026-06-05 (rotateAfterDays 80)',
      },
    ]);
  });

  test('the rotation reason gives the age and the threshold', () => {
    const result = plan([key(OLD, 83, { lastUsedDaysAgo: 0 })]);

    expect(result.actions).toEqual([
      { kind: 'rotate', keyId: OLD, reason: 'key is 83 days old; rotateAfterDays is 80' },
    ]);
  });

  test('a key that was never used is warned and rotated like any other', () => {
    const warned = plan([key(OLD, 76)]);
    const rotated = plan([key(OLD, 80)]);

    expect(summary(warned)).toEqual([`warn:${OLD}`]);
    expect(summary(rotated)).toEqual([`rotate:${OLD}`]);
    expect(assessment(rotated, OLD).lastUsedDate).toBeUndefined();
  });

  test('warnDays 0 means no warning, and rotation still comes on time', () => {
    const settings = { warnDays: 0 };

    expect(summary(plan([key(OLD, 79)], { settings }))).toEqual([]);
    expect(stageOf(plan([key(OLD, 79)], { settings }), OLD)).toBe('current');
    expect(summary(plan([key(OLD, 80)], { settings }))).toEqual([`rotate:${OLD}`]);
  });

  test.each([
    { rotateAfterDays: 30, warnDays: 5, age: 24, expected: [] },
    { rotateAfterDays: 30, warnDays: 5, age: 25, expected: [`warn:${OLD}`] },
    { rotateAfterDays: 30, warnDays: 5, age: 30, expected: [`rotate:${OLD}`] },
    { rotateAfterDays: 0, warnDays: 0, age: 0, expected: [`rotate:${OLD}`] },
  ])(
    'thresholds follow the settings: rotate $rotateAfterDays, warn $warnDays, age $age -> $expected',
    ({ rotateAfterDays, warnDays, age, expected }) => {
      const settings = { rotateAfterDays, warnDays, maxKeyAgeDays: 90 };

      expect(summary(plan([key(OLD, age)], { settings }))).toEqual(expected);
    },
  );
});

describe('planUser: ages are whole UTC calendar days', () => {
  const lateKey = key(OLD, 0, { createDate: new Date('2026-03-12T23:59:00Z') });

  test.each([
    { now: '2026-03-12T23:59:30Z', age: 0 },
    { now: '2026-03-13T00:00:00Z', age: 1 },
    { now: '2026-03-13T23:59:59Z', age: 1 },
    { now: '2026-03-14T00:00:00Z', age: 2 },
  ])('a key created at 23:59 UTC is $age day(s) old at $now', ({ now, age }) => {
    const result = plan([lateKey], { now: new Date(now) });

    expect(assessment(result, OLD).ageDays).toBe(age);
  });

  test.each([
    { now: '2026-05-26T23:59:59Z', expected: [] },
    { now: '2026-05-27T00:00:00Z', expected: [`warn:${OLD}`] },
    { now: '2026-05-30T23:59:59Z', expected: [`warn:${OLD}`] },
    { now: '2026-05-31T00:00:00Z', expected: [`rotate:${OLD}`] },
  ])('a key created 2026-03-12 23:59 UTC, planned at $now -> $expected', ({ now, expected }) => {
    const result = plan([lateKey], { now: new Date(now) });

    expect(summary(result)).toEqual(expected);
  });
});

describe('planUser: after a rotation (two active keys the service paired)', () => {
  /** OLD was rotated on its day 80; NEW is `newAge` days old. */
  function pair(
    newAge: number,
    oldUse: Partial<{ lastUsedDate: Date; lastUsedDaysAgo: number }>,
    oldAge = 80 + newAge,
  ) {
    return [key(OLD, oldAge, oldUse), key(NEW, newAge, { lastUsedDaysAgo: 0 })];
  }
  const usedBeforeNewKey = (newAge: number) => ({ lastUsedDate: daysAgo(newAge, '09:59:59') });
  const usedYesterday = { lastUsedDaysAgo: 1 };

  test.each([
    { newAge: 0, use: usedYesterday, stage: 'in-grace' },
    { newAge: 6, use: usedBeforeNewKey(6), stage: 'in-grace' },
    { newAge: 6, use: {}, stage: 'in-grace' },
    { newAge: 6, use: usedYesterday, stage: 'in-grace' },
  ])('during the grace ($newAge days after the new key) nothing is done', ({ newAge, use, stage }) => {
    const result = plan(pair(newAge, use), { ledger: pairLedger() });

    expect(result.actions).toEqual([]);
    expect(stageOf(result, OLD)).toBe(stage);
    expect(stageOf(result, NEW)).toBe('replacement');
    expect(assessment(result, NEW).ours).toBe(true);
    expect(assessment(result, OLD).ours).toBe(false);
  });

  test('on day 7 after the new key an old key not used since is deactivated', () => {
    const result = plan(pair(7, usedBeforeNewKey(7)), { ledger: pairLedger() });

    expect(result.actions).toEqual([
      {
        kind: 'deactivate',
        keyId: OLD,
        replacementKeyId: NEW,
        reason: `grace of 7 days is over and the key was not used since its replacement was created (last used ${ISO(daysAgo(7, '09:59:59'))})`,
      },
    ]);
  });

  test('an old key that was never used is deactivated when the grace ends', () => {
    const result = plan(pair(7, {}), { ledger: pairLedger() });

    const action = actionOf(result, 'deactivate');
    expect(action.keyId).toBe(OLD);
    expect(action.reason).toContain('never used');
  });

  test('a use at the very instant the new key was created counts as use after it', () => {
    const newKey = key(NEW, 7);
    const oldKey = key(OLD, 87, { lastUsedDate: newKey.createDate });

    const result = plan([oldKey, newKey], { ledger: pairLedger() });

    expect(kinds(result)).toEqual(['postpone']);
  });

  test('an old key still in use after the grace is postponed until its maximum age', () => {
    const result = plan(pair(7, usedYesterday), { ledger: pairLedger() });

    expect(result.actions).toEqual([
      {
        kind: 'postpone',
        keyId: OLD,
        replacementKeyId: NEW,
        enforceOn: '2026-06-04',
        reason: `still in use after its replacement was created (last used ${ISO(daysAgo(1, '01:00:00'))}); deactivation postponed, enforced on 2026-06-04`,
      },
    ]);
    expect(stageOf(result, OLD)).toBe('in-use-after-rotation');
  });

  test.each([
    { oldAge: 89, newAge: 9, expected: ['postpone'], stage: 'in-use-after-rotation' },
    { oldAge: 90, newAge: 10, expected: ['enforce'], stage: 'overdue' },
    { oldAge: 120, newAge: 40, expected: ['enforce'], stage: 'overdue' },
    // Rotated late (day 88): the grace still runs at day 90, and enforcement waits for its end.
    { oldAge: 90, newAge: 2, expected: [], stage: 'in-grace' },
    { oldAge: 94, newAge: 6, expected: [], stage: 'in-grace' },
    { oldAge: 95, newAge: 7, expected: ['enforce'], stage: 'overdue' },
  ])(
    'an old key in use, $oldAge days old, new key $newAge days old -> $expected',
    ({ oldAge, newAge, expected, stage }) => {
      const result = plan(pair(newAge, { lastUsedDaysAgo: 0 }, oldAge), { ledger: pairLedger() });

      expect(kinds(result)).toEqual(expected);
      expect(stageOf(result, OLD)).toBe(stage);
    },
  );

  test('enforcement names the age, the limit and the last use', () => {
    const result = plan(pair(10, { lastUsedDaysAgo: 0 }, 90), { ledger: pairLedger() });

    expect(result.actions).toEqual([
      {
        kind: 'enforce',
        keyId: OLD,
        replacementKeyId: NEW,
        reason: `key is 90 days old (maxKeyAgeDays 90) and still in use (last used ${ISO(daysAgo(0, '01:00:00'))}); deactivated at the hard limit`,
      },
    ]);
  });

  test('an old key past the maximum age but not used since the new key is deactivated, not enforced', () => {
    const result = plan(pair(10, usedBeforeNewKey(10), 90), { ledger: pairLedger() });

    expect(kinds(result)).toEqual(['deactivate']);
  });

  describe('the grace ends at 00:00 UTC of the 7th day after the new key', () => {
    const newKey = key(NEW, 0, { createDate: new Date('2026-05-25T23:59:00Z') });
    const oldKey = key(OLD, 0, {
      createDate: new Date('2026-03-06T12:00:00Z'),
      lastUsedDate: new Date('2026-05-20T00:00:00Z'),
    });

    test.each([
      { now: '2026-05-31T23:59:59Z', expected: [] },
      { now: '2026-06-01T00:00:00Z', expected: ['deactivate'] },
    ])('at $now -> $expected', ({ now, expected }) => {
      const result = plan([oldKey, newKey], { ledger: pairLedger(), now: new Date(now) });

      expect(kinds(result)).toEqual(expected);
    });
  });

  test('graceDays 0: the old key is deactivated on the day of the rotation when it is not in use', () => {
    const newKey = key(NEW, 0);
    const oldKey = key(OLD, 80, { lastUsedDate: daysAgo(0, '09:00:00') });

    const result = plan([oldKey, newKey], {
      ledger: pairLedger(),
      settings: { graceDays: 0 },
      now: daysAgo(0, '11:00:00'),
    });

    expect(kinds(result)).toEqual(['deactivate']);
  });

  test('the key order in the snapshot does not matter', () => {
    const keys = pair(7, usedBeforeNewKey(7));

    const forward = plan(keys, { ledger: pairLedger() });
    const backward = plan([...keys].reverse(), { ledger: pairLedger() });

    expect(backward.actions).toEqual(forward.actions);
    expect(backward.keys.map((entry) => entry.accessKeyId)).toEqual([OLD, NEW]);
  });
});

describe('planUser: every combination of two keys', () => {
  const daysAgoIso = (days: number) => ISO(daysAgo(days, '03:00:00'));

  test.each<{ name: string; keys: AccessKey[]; memory?: UserLedger; expected: string[] }>([
    {
      name: 'active/active, a recorded rotation pair, in grace',
      keys: [key(OLD, 82, { lastUsedDaysAgo: 0 }), key(NEW, 2)],
      memory: pairLedger(),
      expected: [],
    },
    {
      name: 'active/active, no ledger',
      keys: [key(OLD, 30), key(NEW, 2)],
      expected: [`conflict:${OLD},${NEW}`],
    },
    {
      name: 'active/active, both far past the maximum age, not ours',
      keys: [key(OLD, 300, { lastUsedDaysAgo: 0 }), key(NEW, 200, { lastUsedDaysAgo: 0 })],
      memory: ledger(),
      expected: [`conflict:${OLD},${NEW}`],
    },
    {
      name: 'active/active, the ledger records other rotations only',
      keys: [key(OLD, 100), key(NEW, 20)],
      memory: ledger({
        rotations: [
          { oldKeyId: 'AKIAGONE000000000009', newKeyId: OLD, rotatedAt: daysAgoIso(100) },
          { oldKeyId: OLD, newKeyId: SPARE, rotatedAt: daysAgoIso(20) },
        ],
      }),
      expected: [`conflict:${OLD},${NEW}`],
    },
    {
      name: 'active/active, the ledger records the pair the other way round',
      keys: [key(OLD, 100), key(NEW, 20)],
      memory: ledger({ rotations: [{ oldKeyId: NEW, newKeyId: OLD, rotatedAt: daysAgoIso(20) }] }),
      expected: [`conflict:${OLD},${NEW}`],
    },
    {
      name: 'active/inactive, inactive seen for the first time',
      keys: [key(OLD, 10), inactiveKey(SPARE, 200)],
      expected: [`track-inactive:${SPARE}`],
    },
    {
      name: 'active/inactive, inactive for 13 days',
      keys: [key(OLD, 10), inactiveKey(SPARE, 200)],
      memory: ledger({ inactiveSince: { [SPARE]: daysAgoIso(13) } }),
      expected: [],
    },
    {
      name: 'active/inactive, inactive for 14 days',
      keys: [key(OLD, 10), inactiveKey(SPARE, 200)],
      memory: ledger({ inactiveSince: { [SPARE]: daysAgoIso(14) } }),
      expected: [`delete:${SPARE}`],
    },
    {
      name: 'active (warn due)/inactive (delete due)',
      keys: [key(OLD, 77), inactiveKey(SPARE, 200)],
      memory: ledger({ inactiveSince: { [SPARE]: daysAgoIso(20) } }),
      expected: [`warn:${OLD}`, `delete:${SPARE}`],
    },
    {
      name: 'active (rotation due)/inactive tracked, not yet due for deletion',
      keys: [key(OLD, 80), inactiveKey(SPARE, 200)],
      memory: ledger({ inactiveSince: { [SPARE]: daysAgoIso(1) } }),
      expected: [`make-room:${SPARE}`, `rotate:${OLD}`],
    },
    {
      name: 'active (rotation due)/inactive seen for the first time',
      keys: [key(OLD, 80), inactiveKey(SPARE, 200)],
      expected: [`make-room:${SPARE}`, `rotate:${OLD}`],
    },
    {
      name: 'active (rotation due)/inactive due for deletion anyway',
      keys: [key(OLD, 85), inactiveKey(SPARE, 200)],
      memory: ledger({ inactiveSince: { [SPARE]: daysAgoIso(30) } }),
      expected: [`make-room:${SPARE}`, `rotate:${OLD}`],
    },
    {
      name: 'inactive (new to us)/active (rotation due), the inactive key younger',
      keys: [inactiveKey(SPARE, 5), key(OLD, 80)],
      expected: [`make-room:${SPARE}`, `rotate:${OLD}`],
    },
    {
      name: 'inactive/inactive, both seen for the first time',
      keys: [inactiveKey(OLD, 300), inactiveKey(NEW, 200)],
      expected: [`track-inactive:${OLD}`, `track-inactive:${NEW}`],
    },
    {
      name: 'inactive/inactive, one due for deletion',
      keys: [inactiveKey(OLD, 300), inactiveKey(NEW, 200)],
      memory: ledger({ inactiveSince: { [OLD]: daysAgoIso(14), [NEW]: daysAgoIso(13) } }),
      expected: [`delete:${OLD}`],
    },
    {
      name: 'inactive/inactive, both due for deletion',
      keys: [inactiveKey(OLD, 300), inactiveKey(NEW, 200)],
      memory: ledger({ inactiveSince: { [OLD]: daysAgoIso(40), [NEW]: daysAgoIso(14) } }),
      expected: [`delete:${OLD}`, `delete:${NEW}`],
    },
  ])('$name -> $expected', ({ keys, memory, expected }) => {
    const result = plan(keys, { ledger: memory });

    expect(summary(result)).toEqual(expected);
  });

  test('two foreign active keys: report only, with both ids, and nothing that changes IAM', () => {
    const result = plan([key(NEW, 200, { lastUsedDaysAgo: 0 }), key(OLD, 300, { lastUsedDaysAgo: 0 })]);

    expect(result.actions).toEqual([
      {
        kind: 'conflict',
        keyIds: [OLD, NEW],
        reason:
          'two active keys that the service did not create as a rotation pair; report only, nothing is changed',
      },
    ]);
    expect(result.actions.filter((action) => KEY_CHANGING_ACTIONS.has(action.kind))).toEqual([]);
    expect(stageOf(result, OLD)).toBe('foreign-pair');
    expect(stageOf(result, NEW)).toBe('foreign-pair');
  });

  test('make-room explains whose replacement needs the slot', () => {
    const result = plan([key(OLD, 80), inactiveKey(SPARE, 200)]);

    expect(actionOf(result, 'make-room').reason).toBe(
      `inactive key deleted to make room for the replacement of ${OLD}`,
    );
  });
});

describe('planUser: users without an active key are never given one', () => {
  test.each<{ name: string; keys: AccessKey[]; memory?: UserLedger; expected: string[] }>([
    { name: 'no keys at all', keys: [], expected: [] },
    {
      name: 'one inactive key far past every age, never used, not yet tracked',
      keys: [inactiveKey(OLD, 500)],
      expected: [`track-inactive:${OLD}`],
    },
    {
      name: 'one inactive key, tracked yesterday',
      keys: [inactiveKey(OLD, 500)],
      memory: ledger({ inactiveSince: { [OLD]: ISO(daysAgo(1)) } }),
      expected: [],
    },
  ])('$name -> $expected', ({ keys, memory, expected }) => {
    const result = plan(keys, { ledger: memory });

    expect(summary(result)).toEqual(expected);
    expect(kinds(result)).not.toContain('rotate');
  });
});

describe('planUser: inactive keys are deleted deleteAfterDays after they became inactive', () => {
  test.each([
    { inactiveDays: 0, expected: [], stage: 'inactive' },
    { inactiveDays: 13, expected: [], stage: 'inactive' },
    { inactiveDays: 14, expected: [`delete:${OLD}`], stage: 'delete-due' },
    { inactiveDays: 100, expected: [`delete:${OLD}`], stage: 'delete-due' },
  ])(
    'a 300-day-old key inactive for $inactiveDays days -> $expected',
    ({ inactiveDays, expected, stage }) => {
      const since = ISO(daysAgo(inactiveDays, '03:00:00'));
      const memory = ledger({ inactiveSince: { [OLD]: since } });

      const result = plan([inactiveKey(OLD, 300)], { ledger: memory });

      expect(summary(result)).toEqual(expected);
      expect(stageOf(result, OLD)).toBe(stage);
      expect(assessment(result, OLD).inactiveSince).toBe(since);
    },
  );

  test('the deletion clock starts when the key became inactive, not when it was created', () => {
    const memory = ledger({ inactiveSince: { [OLD]: ISO(daysAgo(2)) } });

    const result = plan([inactiveKey(OLD, 1000)], { ledger: memory });

    expect(result.actions).toEqual([]);
  });

  test('the delete reason gives the days, the start of the clock and the threshold', () => {
    const since = '2026-05-10T08:00:00.000Z';

    const result = plan([inactiveKey(OLD, 300)], { ledger: ledger({ inactiveSince: { [OLD]: since } }) });

    expect(result.actions).toEqual([
      {
        kind: 'delete',
        keyId: OLD,
        reason: `inactive for 22 days (since ${since}); deleteAfterDays is 14`,
      },
    ]);
  });

  test.each([
    { now: '2026-05-31T23:59:59Z', expected: [] },
    { now: '2026-06-01T00:00:00Z', expected: [`delete:${OLD}`] },
  ])('inactive since 2026-05-18 23:59 UTC, at $now -> $expected', ({ now, expected }) => {
    const memory = ledger({ inactiveSince: { [OLD]: '2026-05-18T23:59:00.000Z' } });

    const result = plan([inactiveKey(OLD, 300)], { ledger: memory, now: new Date(now) });

    expect(summary(result)).toEqual(expected);
  });

  test('an inactive key seen for the first time starts its clock', () => {
    const result = plan([inactiveKey(OLD, 300)]);

    expect(result.actions).toEqual([
      {
        kind: 'track-inactive',
        keyId: OLD,
        reason: 'inactive key seen for the first time; it will be deleted 14 days from now',
      },
    ]);
    expect(assessment(result, OLD).inactiveSince).toBeUndefined();
  });

  test('deleteAfterDays 0 deletes a key on the day it was tracked', () => {
    const memory = ledger({ inactiveSince: { [OLD]: ISO(daysAgo(0, '01:00:00')) } });

    const result = plan([inactiveKey(OLD, 300)], { ledger: memory, settings: { deleteAfterDays: 0 } });

    expect(summary(result)).toEqual([`delete:${OLD}`]);
  });
});

describe('planUser: exemption tag (I7)', () => {
  const dueKeys = () => [key(OLD, 95, { lastUsedDaysAgo: 0 }), inactiveKey(SPARE, 300)];
  const memory = () => ledger({ inactiveSince: { [SPARE]: ISO(daysAgo(30)) } });
  const exempt = (value: string) => ({ tags: { [OWNER_TAG]: 'alice@example.com', [EXEMPTION_TAG]: value } });

  test.each([
    { value: 'break-glass account', reason: 'break-glass account', until: undefined },
    { value: 'vendor integration until=2026-06-01', reason: 'vendor integration', until: '2026-06-01' },
    { value: 'until=2027-01-31', reason: 'no reason given', until: '2027-01-31' },
  ])('"$value" applies: nothing is planned, not even deletions', ({ value, reason, until }) => {
    const result = plan(dueKeys(), { ledger: memory(), user: exempt(value) });

    expect(result.actions).toEqual([]);
    expect(result.exemption).toMatchObject({ applies: true, reason });
    expect(result.exemption?.until?.toISOString().slice(0, 10)).toBe(until);
    expect(result.findings).toEqual([]);
  });

  test('an exempt user with two foreign active keys gets no conflict either', () => {
    const result = plan([key(OLD, 200), key(NEW, 100)], { user: exempt('shared CI user') });

    expect(result.actions).toEqual([]);
  });

  test('an exemption that ended yesterday no longer applies', () => {
    const result = plan(dueKeys(), { ledger: memory(), user: exempt('migration until=2026-05-31') });

    expect(result.exemption).toMatchObject({ applies: false, reason: 'migration' });
    expect(summary(result)).toEqual([`make-room:${SPARE}`, `rotate:${OLD}`]);
  });

  test.each(['until=31.12.2026', 'until=2026-02-31', 'until=', 'until=soon'])(
    'an unreadable expiry (%s) keeps the exemption and yields a finding',
    (value) => {
      const result = plan(dueKeys(), { ledger: memory(), user: exempt(value) });

      expect(result.actions).toEqual([]);
      expect(result.exemption?.applies).toBe(true);
      expect(result.findings).toHaveLength(1);
      expect(result.findings[0]).toContain(`exemption: tag ${EXEMPTION_TAG} has an unreadable expiry`);
    },
  );
});

describe('planUser: IAM path scope', () => {
  test.each([
    { path: '/', include: ['/'], exclude: [], inScope: true },
    { path: '/service/app/', include: ['/service/'], exclude: [], inScope: true },
    { path: '/', include: ['/service/'], exclude: [], inScope: false },
    { path: '/servicex/', include: ['/service/'], exclude: [], inScope: false },
    { path: '/service/legacy/', include: ['/'], exclude: ['/service/legacy/'], inScope: false },
    { path: '/service/app/', include: ['/'], exclude: ['/service/legacy/'], inScope: true },
  ])(
    'a due key of a user at $path, include $include exclude $exclude -> in scope: $inScope',
    ({ path, include, exclude, inScope }) => {
      const result = plan([key(OLD, 85)], {
        user: { path },
        settings: { includePaths: include, excludePaths: exclude },
      });

      expect(result.inScope).toBe(inScope);
      expect(summary(result)).toEqual(inScope ? [`rotate:${OLD}`] : []);
      expect(result.path).toBe(path);
    },
  );

  test('a user that left the scope mid-rotation is still resumed: our created key must end stored or deleted (I1)', () => {
    const memory = ledger({
      inFlight: {
        oldKeyId: OLD,
        keysBefore: [OLD],
        phase: 'intent',
        startedAt: ISO(daysAgo(0, '01:00:00')),
        reason: 'due',
      },
    });

    const result = plan([key(OLD, 85)], { ledger: memory, settings: { includePaths: ['/service/'] } });

    expect(result.inScope).toBe(false);
    expect(result.actions.map((action) => action.kind)).toEqual(['resume']);
  });
});

describe('planUser: owner tag', () => {
  test('a missing owner tag sends notices to the default recipients without a finding', () => {
    // Common and said in every notice's footer, so not reported as a tag to fix.
    const result = plan([key(OLD, 80)], { user: { tags: {} } });

    expect(result.owner).toEqual({
      owner: 'default',
      recipients: ['default'],
      problem: `no ${OWNER_TAG} tag`,
    });
    expect(result.findings).toEqual([]);
    expect(summary(result)).toEqual([`rotate:${OLD}`]);
  });

  test.each([
    {
      value: '  ',
      finding: `owner: no ${OWNER_TAG} tag; notices go to the default recipients`,
    },
    {
      value: 'alice at example',
      finding: `owner: tag ${OWNER_TAG} is not a list of e-mail addresses ("alice at example"); notices go to the default recipients`,
    },
    {
      value: 'alice@example.com bob',
      finding: `owner: tag ${OWNER_TAG} is not a list of e-mail addresses ("alice@example.com bob"); notices go to the default recipients`,
    },
  ])('an owner tag "$value" that cannot be read: default recipients and a finding', ({ value, finding }) => {
    const result = plan([key(OLD, 80)], { user: { tags: { [OWNER_TAG]: value } } });

    expect(result.owner).toMatchObject({ owner: 'default', recipients: ['default'] });
    expect(result.findings).toEqual([finding]);
    expect(summary(result)).toEqual([`rotate:${OLD}`]);
  });

  test('a valid owner tag names the owner and yields no finding', () => {
    const result = plan([key(OLD, 10)], { user: { tags: { [OWNER_TAG]: 'Team-Payments@Example.com' } } });

    expect(result.owner).toEqual({
      owner: 'team-payments@example.com',
      recipients: ['team-payments@example.com'],
    });
    expect(result.findings).toEqual([]);
  });

  test('an exempt user with a malformed owner tag still gets the owner finding', () => {
    const result = plan([key(OLD, 90)], {
      user: { tags: { [EXEMPTION_TAG]: 'legacy', [OWNER_TAG]: 'nobody' } },
    });

    expect(result.actions).toEqual([]);
    expect(result.findings).toEqual([
      `owner: tag ${OWNER_TAG} is not a list of e-mail addresses ("nobody"); notices go to the default recipients`,
    ]);
  });
});

describe('planUser: reaping unused keys (opt-in)', () => {
  const settings = { reapUnusedDays: 45 };

  test.each([
    { name: 'never used, 44 days old', spec: {}, age: 44, expected: [] },
    { name: 'never used, 45 days old', spec: {}, age: 45, expected: [`reap:${OLD}`] },
    { name: 'last used 44 days ago', spec: { lastUsedDaysAgo: 44 }, age: 60, expected: [] },
    { name: 'last used 45 days ago', spec: { lastUsedDaysAgo: 45 }, age: 60, expected: [`reap:${OLD}`] },
    {
      name: 'unused and also due for rotation',
      spec: { lastUsedDaysAgo: 50 },
      age: 85,
      expected: [`reap:${OLD}`],
    },
    {
      name: 'used yesterday and due for rotation',
      spec: { lastUsedDaysAgo: 1 },
      age: 85,
      expected: [`rotate:${OLD}`],
    },
  ])('$name -> $expected', ({ spec, age, expected }) => {
    const result = plan([key(OLD, age, spec)], { settings });

    expect(summary(result)).toEqual(expected);
    if (expected.length > 0 && expected[0]!.startsWith('reap')) expect(stageOf(result, OLD)).toBe('unused');
  });

  test('the reap reason says how long the key was unused', () => {
    const never = plan([key(OLD, 45)], { settings });
    const idle = plan([key(OLD, 60, { lastUsedDaysAgo: 50 })], { settings });

    expect(actionOf(never, 'reap').reason).toBe('never used: unused for 45 days; reapUnusedDays is 45');
    expect(actionOf(idle, 'reap').reason).toBe(
      `last used ${ISO(daysAgo(50, '01:00:00'))}: unused for 50 days; reapUnusedDays is 45`,
    );
  });

  test('reaping is off by default: an old never-used key is rotated', () => {
    const result = plan([key(OLD, 200)]);

    expect(summary(result)).toEqual([`rotate:${OLD}`]);
  });

  test('a rotation pair is not reaped while in grace', () => {
    const result = plan([key(OLD, 150, { lastUsedDaysAgo: 100 }), key(NEW, 2)], {
      ledger: pairLedger(),
      settings,
    });

    expect(result.actions).toEqual([]);
  });

  test('reaping leaves the delete rule for the other key in force', () => {
    const memory = ledger({ inactiveSince: { [SPARE]: ISO(daysAgo(20)) } });

    const result = plan([key(OLD, 60), inactiveKey(SPARE, 300)], { ledger: memory, settings });

    expect(summary(result)).toEqual([`reap:${OLD}`, `delete:${SPARE}`]);
  });
});

describe('planUser: a key reactivated by hand', () => {
  const oldInUse = (age: number) => key(OLD, age, { lastUsedDaysAgo: 0 });

  test('a paired old key found active again is noted and given a new grace period', () => {
    // We deactivated OLD 2 days ago (its grace was over); someone switched it back on.
    const since = ISO(daysAgo(2, '02:00:00'));
    const memory = pairLedger({ inactiveSince: { [OLD]: since } });

    const result = plan([oldInUse(89), key(NEW, 9)], { ledger: memory });

    expect(result.actions).toEqual([
      {
        kind: 'note-reactivated',
        keyId: OLD,
        reason: `key was inactive since ${since} and is active again`,
      },
    ]);
    expect(stageOf(result, OLD)).toBe('in-grace');
  });

  test.each([
    { seenDaysAgo: 1, oldAge: 91, use: 'in use', expected: [], stage: 'in-grace' },
    { seenDaysAgo: 6, oldAge: 96, use: 'in use', expected: [], stage: 'in-grace' },
    { seenDaysAgo: 7, oldAge: 97, use: 'in use', expected: ['enforce'], stage: 'overdue' },
    { seenDaysAgo: 6, oldAge: 96, use: 'unused', expected: [], stage: 'in-grace' },
    { seenDaysAgo: 7, oldAge: 97, use: 'unused', expected: ['deactivate'], stage: 'in-grace' },
  ])(
    'reactivation seen $seenDaysAgo days ago, old key $oldAge days old and $use -> $expected',
    ({ seenDaysAgo, oldAge, use, expected, stage }) => {
      const newKey = key(NEW, oldAge - 80);
      const oldKey =
        use === 'in use'
          ? oldInUse(oldAge)
          : key(OLD, oldAge, { lastUsedDate: daysAgo(oldAge - 80, '09:00:00') });
      const memory = pairLedger({ reactivatedSeen: { [OLD]: ISO(daysAgo(seenDaysAgo, '03:00:00')) } });

      const result = plan([oldKey, newKey], { ledger: memory });

      expect(kinds(result)).toEqual(expected);
      if (expected.length === 0) expect(stageOf(result, OLD)).toBe(stage);
    },
  );

  test('a second reactivation by hand gets its own grace, whatever an older mark says', () => {
    const memory = pairLedger({
      reactivatedSeen: { [OLD]: ISO(daysAgo(30)) },
      inactiveSince: { [OLD]: ISO(daysAgo(3)) },
    });

    const result = plan([oldInUse(120), key(NEW, 40)], { ledger: memory });

    expect(kinds(result)).toEqual(['note-reactivated']);
    expect(stageOf(result, OLD)).toBe('in-grace');
  });

  test('a single reactivated key that is due is noted and rotated', () => {
    const memory = ledger({ inactiveSince: { [OLD]: ISO(daysAgo(3)) } });

    const result = plan([oldInUse(85)], { ledger: memory });

    expect(summary(result)).toEqual([`note-reactivated:${OLD}`, `rotate:${OLD}`]);
  });

  test('a reaped key switched back on is not reaped again before a new grace period ends', () => {
    const settings = { reapUnusedDays: 45 };
    const unused = key(OLD, 60);

    const noticed = plan([unused], {
      ledger: ledger({ inactiveSince: { [OLD]: ISO(daysAgo(1)) } }),
      settings,
    });
    const sixDaysOn = plan([unused], {
      ledger: ledger({ reactivatedSeen: { [OLD]: ISO(daysAgo(6)) } }),
      settings,
    });
    const sevenDaysOn = plan([unused], {
      ledger: ledger({ reactivatedSeen: { [OLD]: ISO(daysAgo(7)) } }),
      settings,
    });

    expect(summary(noticed)).toEqual([`note-reactivated:${OLD}`]);
    expect(summary(sixDaysOn)).toEqual([]);
    expect(summary(sevenDaysOn)).toEqual([`reap:${OLD}`]);
  });
});

describe('planUser: ledger marks of keys that no longer exist', () => {
  test('marks of vanished keys are forgotten once, in one action', () => {
    const gone1 = 'AKIAGONE000000000001';
    const gone2 = 'AKIAGONE000000000002';
    const memory = ledger({
      inactiveSince: { [gone1]: ISO(daysAgo(3)) },
      warnedKeys: { [gone1]: ISO(daysAgo(10)), [gone2]: ISO(daysAgo(10)), [OLD]: ISO(daysAgo(1)) },
      reactivatedSeen: { [gone2]: ISO(daysAgo(4)) },
    });

    const result = plan([key(OLD, 77)], { ledger: memory });

    expect(result.actions).toEqual([
      {
        kind: 'forget',
        keyIds: [gone1, gone2],
        reason: 'keys no longer exist in IAM; their ledger marks are dropped',
      },
    ]);
  });

  test('marks of live keys are kept', () => {
    const memory = ledger({
      inactiveSince: { [SPARE]: ISO(daysAgo(3)) },
      warnedKeys: { [OLD]: ISO(daysAgo(1)) },
    });

    const result = plan([key(OLD, 77), inactiveKey(SPARE, 100)], { ledger: memory });

    expect(result.actions).toEqual([]);
  });

  test('forgetting comes before the key actions of the same plan', () => {
    const memory = ledger({ warnedKeys: { AKIAGONE000000000001: ISO(daysAgo(90)) } });

    const result = plan([key(OLD, 80)], { ledger: memory });

    expect(kinds(result)).toEqual(['forget', 'rotate']);
  });
});

describe('planUser: unfinished work is resumed first and alone', () => {
  const inFlight = {
    oldKeyId: OLD,
    keysBefore: [OLD],
    phase: 'stored' as const,
    newKeyId: NEW,
    startedAt: ISO(daysAgo(0, '01:00:00')),
    reason: 'key is 80 days old',
  };
  const messy = () => [key(OLD, 95, { lastUsedDaysAgo: 0 }), key(NEW, 0)];

  test('a rotation in flight', () => {
    const result = plan(messy(), { ledger: ledger({ inFlight }) });

    expect(result.actions).toEqual([
      { kind: 'resume', reason: `rotation of ${OLD} is in phase stored; finishing it before anything else` },
    ]);
  });

  test('notices in the outbox', () => {
    const memory = ledger({ outbox: [pendingNotice('n1'), pendingNotice('n2')] });

    const result = plan([inactiveKey(OLD, 300)], { ledger: memory });

    expect(result.actions).toEqual([
      { kind: 'resume', reason: '2 notice(s) not yet delivered; finishing it before anything else' },
    ]);
  });

  test('a rotation in flight is resumed even for a user exempted since it started', () => {
    const result = plan(messy(), {
      ledger: ledger({ inFlight }),
      user: { tags: { [OWNER_TAG]: 'alice@example.com', [EXEMPTION_TAG]: 'frozen' } },
    });

    expect(kinds(result)).toEqual(['resume']);
  });
});

describe('planUser: the plan describes every key', () => {
  test('keys are listed oldest first with age, use, owner and clock start', () => {
    const since = ISO(daysAgo(3));
    const memory = ledger({
      rotations: [{ oldKeyId: SPARE, newKeyId: NEW, rotatedAt: ISO(daysAgo(10)) }],
      inactiveSince: { [SPARE]: since },
    });
    const newKey = key(NEW, 10, { lastUsedDaysAgo: 0 });
    const oldKey = inactiveKey(SPARE, 90);

    const result = plan([newKey, oldKey], { ledger: memory });

    expect(result.keys).toEqual([
      {
        accessKeyId: SPARE,
        status: 'Inactive',
        createDate: ISO(oldKey.createDate),
        ageDays: 90,
        lastUsedDate: undefined,
        ours: false,
        stage: 'inactive',
        inactiveSince: since,
      },
      {
        accessKeyId: NEW,
        status: 'Active',
        createDate: ISO(newKey.createDate),
        ageDays: 10,
        lastUsedDate: ISO(daysAgo(0, '01:00:00')),
        ours: true,
        stage: 'current',
        inactiveSince: undefined,
      },
    ]);
    expect(result.userName).toBe('alice');
  });

  test('the plan does not change its inputs', () => {
    const keys = Object.freeze([key(NEW, 2), key(OLD, 300), inactiveKey(SPARE, 400)]);
    const memory = ledger({ inactiveSince: { [SPARE]: ISO(daysAgo(20)) } });
    const before = JSON.stringify({ keys, memory });

    plan(keys, { ledger: memory });

    expect(JSON.stringify({ keys, memory })).toBe(before);
  });
});

describe('hasWork and KEY_CHANGING_ACTIONS', () => {
  test.each([
    { keys: [key(OLD, 10)], work: false },
    { keys: [key(OLD, 76)], work: true },
    { keys: [inactiveKey(OLD, 10)], work: true },
    { keys: [], work: false },
  ])('hasWork is $work for %#', ({ keys, work }) => {
    expect(hasWork(plan(keys))).toBe(work);
  });

  test('exactly the actions that write IAM are key-changing', () => {
    expect([...KEY_CHANGING_ACTIONS].sort()).toEqual(
      ['deactivate', 'delete', 'enforce', 'make-room', 'reap', 'rotate'].sort(),
    );
  });
});

/**
 * A walk through the whole lifecycle, one planned run a day, applying each action to the state the
 * way the rotator would. It checks the lifecycle table end to end and that, with the defaults, no key
 * is left active at the maximum age, whatever the hour of creation and of the run.
 */
describe('lifecycle walk with the default settings', () => {
  interface Walk {
    readonly events: string[];
    readonly maxActiveAge: number;
  }

  function walk(createdAt: string, runAt: string, workload: 'keeps-old-key' | 'switches'): Walk {
    const created = new Date(`2026-01-10T${createdAt}Z`);
    let keys: AccessKey[] = [{ accessKeyId: OLD, status: 'Active', createDate: created }];
    let memory = ledger();
    const events: string[] = [];
    let maxActiveAge = 0;
    for (let day = 0; day <= 130; day++) {
      const now = new Date(new Date(`2026-01-10T${runAt}Z`).getTime() + day * 86_400_000);
      if (now < created) continue;
      // The workload signs a request a minute before the run with the key it uses.
      const active = keys.filter((k) => k.status === 'Active');
      const inUse =
        workload === 'switches' ? (active.find((k) => k.accessKeyId === NEW) ?? active[0]) : active[0];
      const lastUse = new Date(now.getTime() - 60_000);
      keys = keys.map((k) => (k === inUse ? { ...k, lastUsedDate: lastUse } : k));
      const result = planUser({ user: user(keys), ledger: memory, now, settings: DEFAULT_SETTINGS });
      for (const action of result.actions) {
        events.push(`${action.kind}@${daysBetween(created, now)}`);
        ({ keys, memory } = apply(action, keys, memory, now));
      }
      for (const k of keys) {
        if (k.status === 'Active' && k.accessKeyId === OLD) {
          maxActiveAge = Math.max(maxActiveAge, daysBetween(k.createDate, now));
        }
      }
    }
    return { events, maxActiveAge };
  }

  function apply(
    action: PlannedAction,
    keys: AccessKey[],
    memory: UserLedger,
    now: Date,
  ): { keys: AccessKey[]; memory: UserLedger } {
    const at = now.toISOString();
    switch (action.kind) {
      case 'warn':
        return { keys, memory: { ...memory, warnedKeys: { ...memory.warnedKeys, [action.keyId]: at } } };
      case 'rotate':
        return {
          keys: [...keys, { accessKeyId: NEW, status: 'Active', createDate: now }],
          memory: {
            ...memory,
            rotations: [...memory.rotations, { oldKeyId: action.keyId, newKeyId: NEW, rotatedAt: at }],
          },
        };
      case 'deactivate':
      case 'enforce':
        return {
          keys: keys.map((k) => (k.accessKeyId === action.keyId ? { ...k, status: 'Inactive' } : k)),
          memory: { ...memory, inactiveSince: { ...memory.inactiveSince, [action.keyId]: at } },
        };
      case 'delete':
        return {
          keys: keys.filter((k) => k.accessKeyId !== action.keyId),
          memory: {
            ...memory,
            inactiveSince: without(memory.inactiveSince, action.keyId),
            warnedKeys: without(memory.warnedKeys, action.keyId),
          },
        };
      case 'postpone':
        return { keys, memory };
      default:
        throw new Error(`unexpected ${action.kind} in the walk`);
    }
  }

  function without(marks: Readonly<Record<string, string>>, keyId: string): Record<string, string> {
    return Object.fromEntries(Object.entries(marks).filter(([id]) => id !== keyId));
  }

  const hours = [
    { createdAt: '00:00:00', runAt: '02:00:00' },
    { createdAt: '10:00:00', runAt: '02:00:00' },
    { createdAt: '23:59:00', runAt: '00:00:00' },
    { createdAt: '00:00:00', runAt: '23:59:00' },
  ];

  test.each(hours)(
    'a workload that never switches: warn 76, rotate 80, enforce 90, delete 104 (created $createdAt, run $runAt)',
    ({ createdAt, runAt }) => {
      const { events, maxActiveAge } = walk(createdAt, runAt, 'keeps-old-key');

      expect(events).toEqual([
        'warn@76',
        'rotate@80',
        'postpone@87',
        'postpone@88',
        'postpone@89',
        'enforce@90',
        'delete@104',
      ]);
      expect(maxActiveAge).toBeLessThan(DEFAULT_SETTINGS.maxKeyAgeDays);
    },
  );

  test.each(hours)(
    'a workload that switches to the new key: deactivate 87, delete 101 (created $createdAt, run $runAt)',
    ({ createdAt, runAt }) => {
      const { events } = walk(createdAt, runAt, 'switches');

      expect(events).toEqual(['warn@76', 'rotate@80', 'deactivate@87', 'delete@101']);
    },
  );
});

test('settings passed in are used as given (the policy does not read defaults behind them)', () => {
  const settings: RotationSettings = {
    ...DEFAULT_SETTINGS,
    rotateAfterDays: 10,
    warnDays: 2,
    maxKeyAgeDays: 20,
  };

  const result = planUser({ user: user([key(OLD, 8)]), now: NOW, settings });

  expect(summary(result)).toEqual([`warn:${OLD}`]);
});
