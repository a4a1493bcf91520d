import { ConfigError, KeyRotationError } from '../../../lambda/domain/errors';
import {
  DEFAULT_REAP_UNUSED_DAYS,
  DEFAULT_SETTINGS,
  resolveSettings,
  type RotationSettings,
} from '../../../lambda/domain/settings';

type Input = Parameters<typeof resolveSettings>[0];

/** The problems resolveSettings reports for `input`, or [] if it accepts it. */
function problemsOf(input: Input): readonly string[] {
  try {
    resolveSettings(input);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems;
  }
}

describe('resolveSettings: valid input', () => {
  test('no input gives the lifecycle table defaults', () => {
    const settings = resolveSettings();

    expect(settings).toEqual({
      rotateAfterDays: 80,
      warnDays: 4,
      graceDays: 7,
      maxKeyAgeDays: 90,
      deleteAfterDays: 14,
      reapUnusedDays: undefined,
      exemptionTag: 'key-rotation:exempt',
      ownerTag: 'key-rotation:owner',
      includePaths: ['/'],
      excludePaths: [],
    });
    expect(settings).toEqual(DEFAULT_SETTINGS);
  });

  test('given values override the defaults and undefined ones keep them', () => {
    const settings = resolveSettings({ rotateAfterDays: 60, graceDays: undefined, includePaths: ['/ci/'] });

    expect(settings).toMatchObject({ rotateAfterDays: 60, graceDays: 7, includePaths: ['/ci/'] });
  });

  test('days may be 0 for tests and drills', () => {
    const settings = resolveSettings({
      rotateAfterDays: 0,
      warnDays: 0,
      graceDays: 0,
      maxKeyAgeDays: 0,
      deleteAfterDays: 0,
    });

    expect(settings).toMatchObject({
      rotateAfterDays: 0,
      warnDays: 0,
      graceDays: 0,
      maxKeyAgeDays: 0,
      deleteAfterDays: 0,
    });
  });

  test.each([
    { reapUnusedDays: true, expected: DEFAULT_REAP_UNUSED_DAYS },
    { reapUnusedDays: 30, expected: 30 },
    { reapUnusedDays: 1, expected: 1 },
    { reapUnusedDays: false, expected: undefined },
    { reapUnusedDays: null, expected: undefined },
    { reapUnusedDays: undefined, expected: undefined },
  ])('reapUnusedDays $reapUnusedDays -> $expected', ({ reapUnusedDays, expected }) => {
    expect(resolveSettings({ reapUnusedDays }).reapUnusedDays).toBe(expected);
  });

  test('reapUnusedDays true means 45 days', () => {
    expect(DEFAULT_REAP_UNUSED_DAYS).toBe(45);
  });

  test.each([
    { rotateAfterDays: 83, graceDays: 7, maxKeyAgeDays: 90 },
    { rotateAfterDays: 30, graceDays: 0, maxKeyAgeDays: 30 },
    { rotateAfterDays: 3650, graceDays: 0, maxKeyAgeDays: 3650 },
  ])('rotateAfterDays + graceDays may equal maxKeyAgeDays: %o', (input) => {
    expect(() => resolveSettings(input)).not.toThrow();
  });

  test.each([
    { includePaths: ['/', '/ci/'], excludePaths: ['/ci/legacy/'] },
    { includePaths: ['/division_abc/subdivision_xyz/'] },
    { excludePaths: [] },
  ])('IAM paths %o are accepted', (input) => {
    expect(() => resolveSettings(input)).not.toThrow();
  });

  test.each(['team:owner', 'Owner', 'a b', 'x/y=z+w-v@u_t.s', 'équipe', 'k'.repeat(128)])(
    'tag key "%s" is accepted',
    (ownerTag) => {
      expect(resolveSettings({ ownerTag }).ownerTag).toBe(ownerTag);
    },
  );

  test('the result cannot be changed by accident', () => {
    const settings = resolveSettings({ rotateAfterDays: 70 });

    expect(Object.isFrozen(settings)).toBe(true);
    expect(() => {
      (settings as { rotateAfterDays: number }).rotateAfterDays = 1;
    }).toThrow(TypeError);
  });

  test('the defaults are not changed by resolving other values', () => {
    resolveSettings({ rotateAfterDays: 10, warnDays: 1, maxKeyAgeDays: 20 });

    expect(DEFAULT_SETTINGS.rotateAfterDays).toBe(80);
  });
});

describe('resolveSettings: every invalid value is named', () => {
  const DAY_SETTINGS = [
    'rotateAfterDays',
    'warnDays',
    'graceDays',
    'maxKeyAgeDays',
    'deleteAfterDays',
  ] as const;
  const badDays: unknown[] = [-1, 1.5, '80', Number.NaN, Infinity, 3651, null, true];

  describe.each(DAY_SETTINGS)('%s', (name) => {
    test.each(badDays)('%p is rejected', (value) => {
      const problems = problemsOf({ [name]: value });

      expect(problems).toEqual([
        `${name} must be a whole number of days from 0 to 3650 (got ${JSON.stringify(value)})`,
      ]);
    });
  });

  test.each([-1, 2.5, '45', 3651])('reapUnusedDays %p is rejected', (value) => {
    expect(problemsOf({ reapUnusedDays: value })).toEqual([
      `reapUnusedDays must be a whole number of days from 0 to 3650 (got ${JSON.stringify(value)})`,
    ]);
  });

  test('reapUnusedDays 0 is rejected: it would reap every key', () => {
    expect(problemsOf({ reapUnusedDays: 0 })).toEqual([
      'reapUnusedDays must be at least 1 when set (leave it unset to turn reaping off)',
    ]);
  });

  test('rotateAfterDays + graceDays must not exceed maxKeyAgeDays', () => {
    expect(problemsOf({ rotateAfterDays: 88 })).toEqual([
      'rotateAfterDays + graceDays (95) exceeds maxKeyAgeDays (90): lower rotateAfterDays or graceDays, or raise maxKeyAgeDays',
    ]);
    expect(problemsOf({ graceDays: 11 })).toEqual([
      'rotateAfterDays + graceDays (91) exceeds maxKeyAgeDays (90): lower rotateAfterDays or graceDays, or raise maxKeyAgeDays',
    ]);
    expect(problemsOf({ maxKeyAgeDays: 86 })).toEqual([
      'rotateAfterDays + graceDays (87) exceeds maxKeyAgeDays (86): lower rotateAfterDays or graceDays, or raise maxKeyAgeDays',
    ]);
  });

  test('warnDays must not exceed rotateAfterDays', () => {
    expect(problemsOf({ rotateAfterDays: 3, warnDays: 4, maxKeyAgeDays: 10 })).toEqual([
      'warnDays (4) exceeds rotateAfterDays (3): the warning cannot come before the key exists; lower warnDays',
    ]);
    expect(problemsOf({ rotateAfterDays: 4, warnDays: 4, maxKeyAgeDays: 11 })).toEqual([]);
  });

  test.each([
    { name: 'ownerTag', value: '' },
    { name: 'ownerTag', value: 'aws:owner' },
    { name: 'ownerTag', value: 'owner,team' },
    { name: 'ownerTag', value: 'owner;team' },
    { name: 'ownerTag', value: 'k'.repeat(129) },
    { name: 'ownerTag', value: 42 },
    { name: 'exemptionTag', value: 'exempt*' },
    { name: 'exemptionTag', value: 'aws:exempt' },
    { name: 'exemptionTag', value: null },
  ])('$name $value is rejected', ({ name, value }) => {
    expect(problemsOf({ [name]: value })).toEqual([
      `${name} must be a valid IAM tag key (1-128 letters, digits, spaces or _.:/=+-@, not starting with "aws:") (got ${JSON.stringify(value)})`,
    ]);
  });

  test('the owner and exemption tags must differ', () => {
    expect(problemsOf({ ownerTag: 'rotation', exemptionTag: 'rotation' })).toEqual([
      'exemptionTag and ownerTag must differ (both are "rotation")',
    ]);
  });

  test.each([
    { name: 'includePaths', value: ['ci/'] },
    { name: 'includePaths', value: ['/ci'] },
    { name: 'includePaths', value: ['//'] },
    { name: 'includePaths', value: ['/c i/'] },
    { name: 'includePaths', value: ['/ü/'] },
    { name: 'includePaths', value: [''] },
    { name: 'excludePaths', value: [7] },
    { name: 'excludePaths', value: ['/', 'legacy'] },
    { name: 'excludePaths', value: [`/${'a'.repeat(511)}/`] },
  ])('$name entry in $value is rejected', ({ name, value }) => {
    const problems = problemsOf({ [name]: value });

    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      new RegExp(`^${name} entry .* is not an IAM path: it must start and end with "/"$`),
    );
  });

  test.each([
    { name: 'includePaths', value: '/' },
    { name: 'excludePaths', value: { path: '/' } },
  ])('$name that is not a list is rejected', ({ name, value }) => {
    expect(problemsOf({ [name]: value })).toEqual([
      `${name} must be a list of IAM paths such as ["/"] or ["/service/"] (got ${JSON.stringify(value)})`,
    ]);
  });

  test('includePaths must not be empty', () => {
    expect(problemsOf({ includePaths: [] })).toEqual([
      'includePaths must name at least one path; use ["/"] for every user',
    ]);
  });

  test('unknown settings are rejected with the list of known ones', () => {
    const input = { rotateAfterDay: 30 } as unknown as Input;

    expect(problemsOf(input)).toEqual([
      `rotateAfterDay is not a setting; known settings are ${Object.keys(DEFAULT_SETTINGS).join(', ')}`,
    ]);
  });

  test('every problem is listed at once, in one ConfigError', () => {
    const input = { graceDays: -1, ownerTag: '', includePaths: ['x'], colour: 'blue' } as unknown as Input;

    let thrown: unknown;
    try {
      resolveSettings(input);
    } catch (error) {
      thrown = error;
    }

    expect(thrown).toBeInstanceOf(ConfigError);
    expect(thrown).toBeInstanceOf(KeyRotationError);
    const error = thrown as ConfigError;
    expect(error.name).toBe('ConfigError');
    expect(error.problems).toHaveLength(4);
    expect(error.problems.map((problem) => problem.split(' ')[0])).toEqual([
      'colour',
      'graceDays',
      'ownerTag',
      'includePaths',
    ]);
    expect(error.message).toBe(`Invalid key rotation configuration:\n  - ${error.problems.join('\n  - ')}`);
  });

  test('the cross-checks wait until each value is valid on its own', () => {
    // A bad graceDays would make "rotateAfterDays + graceDays" meaningless, so only it is reported.
    expect(problemsOf({ graceDays: 'seven', rotateAfterDays: 89 })).toEqual([
      'graceDays must be a whole number of days from 0 to 3650 (got "seven")',
    ]);
  });
});

test('a RotationSettings object is accepted back as input', () => {
  const custom: RotationSettings = { ...DEFAULT_SETTINGS, rotateAfterDays: 50, reapUnusedDays: 60 };

  expect(resolveSettings(custom)).toEqual(custom);
});
