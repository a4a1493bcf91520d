import {
  mayNeedAction,
  parseCredentialReport,
  screenUser,
  suggestedActions,
  type CredentialReportRow,
  type ReportKeySlot,
} from '../../../lambda/domain/credential-report';
import type { AccessKey, UserLedger } from '../../../lambda/domain/model';
import { hasWork, planUser } from '../../../lambda/domain/policy';
import { DEFAULT_SETTINGS, type RotationSettings } from '../../../lambda/domain/settings';
import { fingerprintOfKeys, nextReview, settingsDigest } from '../../../lambda/domain/review';
import {
  daysAgo,
  inactiveKey,
  key,
  ledger,
  NEW,
  NOW,
  OLD,
  pairLedger,
  pendingNotice,
  SPARE,
  user,
} from './builders';

const HEADER =
  'user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,' +
  'access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,' +
  'access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,' +
  'cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated';

/** A credential report as IAM returns it (base64-decoded): 22 columns, the root row first, no quoting. */
const REPORT = [
  HEADER,
  '<root_account>,arn:aws:iam::111122223333:root,2019-04-01T09:00:00+00:00,not_supported,2026-05-20T08:12:44+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A',
  'alice,arn:aws:iam::111122223333:user/alice,2024-01-15T10:00:00+00:00,true,2026-05-30T07:00:00+00:00,2025-12-01T00:00:00+00:00,N/A,true,true,2026-03-13T10:00:00+00:00,2026-05-31T22:10:00+00:00,eu-west-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A',
  'ci-bot,arn:aws:iam::111122223333:user/ci/deploy/ci-bot,2023-06-01T12:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-02-01T08:00:00+00:00,2026-05-31T23:00:00+00:00,us-east-1,sts,true,2026-05-25T08:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A',
  'dormant,arn:aws:iam::111122223333:user/dormant,2022-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,false,2025-01-01T00:00:00+00:00,2025-02-01T00:00:00+00:00,eu-central-1,iam,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A',
  'console-only,arn:aws:iam::111122223333:user/console-only,2025-03-03T03:03:03+00:00,true,no_information,2025-03-03T03:03:03+00:00,N/A,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A',
  '',
].join('\n');

describe('parseCredentialReport', () => {
  test('reads every IAM user of a real-shaped report and skips the root account', () => {
    const rows = parseCredentialReport(REPORT);

    expect(rows.map((row) => row.userName)).toEqual(['alice', 'ci-bot', 'dormant', 'console-only']);
  });

  test('reads key slots: active flag, creation and last use with +00:00 offsets, N/A as absent', () => {
    const rows = parseCredentialReport(REPORT);

    expect(rows).toEqual([
      {
        userName: 'alice',
        arn: 'arn:aws:iam::111122223333:user/alice',
        path: '/',
        keys: [
          {
            active: true,
            createDate: new Date('2026-03-13T10:00:00Z'),
            lastUsedDate: new Date('2026-05-31T22:10:00Z'),
          },
          { active: false, createDate: undefined, lastUsedDate: undefined },
        ],
      },
      {
        userName: 'ci-bot',
        arn: 'arn:aws:iam::111122223333:user/ci/deploy/ci-bot',
        path: '/ci/deploy/',
        keys: [
          {
            active: true,
            createDate: new Date('2026-02-01T08:00:00Z'),
            lastUsedDate: new Date('2026-05-31T23:00:00Z'),
          },
          { active: true, createDate: new Date('2026-05-25T08:00:00Z'), lastUsedDate: undefined },
        ],
      },
      {
        userName: 'dormant',
        arn: 'arn:aws:iam::111122223333:user/dormant',
        path: '/',
        keys: [
          {
            active: false,
            createDate: new Date('2025-01-01T00:00:00Z'),
            lastUsedDate: new Date('2025-02-01T00:00:00Z'),
          },
          { active: false, createDate: undefined, lastUsedDate: undefined },
        ],
      },
      {
        userName: 'console-only',
        arn: 'arn:aws:iam::111122223333:user/console-only',
        path: '/',
        keys: [
          { active: false, createDate: undefined, lastUsedDate: undefined },
          { active: false, createDate: undefined, lastUsedDate: undefined },
        ],
      },
    ]);
  });

  test('CRLF line ends and blank lines are tolerated', () => {
    const rows = parseCredentialReport(REPORT.split('\n').join('\r\n') + '\r\n\r\n');

    expect(rows).toHaveLength(4);
    expect(rows[0]?.keys[0]?.createDate).toEqual(new Date('2026-03-13T10:00:00Z'));
  });

  test('columns are found by name, not by position', () => {
    const csv = [
      'access_key_2_last_used_date,access_key_2_last_rotated,access_key_2_active,access_key_1_last_used_date,access_key_1_last_rotated,access_key_1_active,arn,user',
      'N/A,N/A,false,2026-05-01T00:00:00+00:00,2026-01-01T00:00:00+00:00,true,arn:aws:iam::111122223333:user/x/bob,bob',
    ].join('\n');

    expect(parseCredentialReport(csv)).toEqual([
      {
        userName: 'bob',
        arn: 'arn:aws:iam::111122223333:user/x/bob',
        path: '/x/',
        keys: [
          {
            active: true,
            createDate: new Date('2026-01-01T00:00:00Z'),
            lastUsedDate: new Date('2026-05-01T00:00:00Z'),
          },
          { active: false, createDate: undefined, lastUsedDate: undefined },
        ],
      },
    ]);
  });

  test('quoted cells, with commas and doubled quotes, are read as RFC 4180 says', () => {
    const csv = [
      'user,arn,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,note',
      '"a,b","arn:aws:iam::111122223333:user/a,b","true",2026-01-01T00:00:00+00:00,N/A,false,N/A,N/A,"say ""hi"""',
      '"q""r",arn:aws:iam::111122223333:user/q,false,N/A,N/A,false,N/A,N/A,x',
    ].join('\n');

    const [row, quoted] = parseCredentialReport(csv);

    expect(row?.userName).toBe('a,b');
    expect(row?.arn).toBe('arn:aws:iam::111122223333:user/a,b');
    expect(row?.path).toBe('/');
    expect(row?.keys[0]).toEqual({
      active: true,
      createDate: new Date('2026-01-01T00:00:00Z'),
      lastUsedDate: undefined,
    });
    expect(quoted?.userName).toBe('q"r');
  });

  test.each(['N/A', 'no_information', 'not_supported', '', 'garbage'])(
    'a time of "%s" reads as absent',
    (value) => {
      const csv = [
        HEADER,
        `bob,arn:aws:iam::111122223333:user/bob,2025-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-01-01T00:00:00+00:00,${value},N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A`,
      ].join('\n');

      expect(parseCredentialReport(csv)[0]?.keys[0]?.lastUsedDate).toBeUndefined();
    },
  );

  test('a report with only the header has no rows', () => {
    expect(parseCredentialReport(`${HEADER}\n`)).toEqual([]);
  });

  test.each([
    { csv: '', missing: 'user, arn, access_key_1_active' },
    { csv: HEADER.replace(',access_key_2_last_used_date,', ',x,'), missing: 'access_key_2_last_used_date' },
    { csv: 'User,ARN', missing: 'user, arn' },
  ])('a report without a needed column is refused, naming it ($missing)', ({ csv, missing }) => {
    expect(() => parseCredentialReport(csv)).toThrow(`credential report lacks column(s) ${missing}`);
  });
});

/** A report row as the report would show the given live keys. */
function rowFor(keys: readonly AccessKey[], path = '/'): CredentialReportRow {
  const slots: ReportKeySlot[] = keys.map((k) => ({
    active: k.status === 'Active',
    createDate: k.createDate,
    lastUsedDate: k.lastUsedDate,
  }));
  while (slots.length < 2) slots.push({ active: false });
  return { userName: 'alice', arn: `arn:aws:iam::111122223333:user${path}alice`, path, keys: slots };
}

describe('mayNeedAction', () => {
  const settings = DEFAULT_SETTINGS;
  const iso = (days: number) => daysAgo(days).toISOString();

  test.each<{ name: string; keys: AccessKey[]; memory?: UserLedger; expected: boolean }>([
    { name: 'a user without keys', keys: [], expected: false },
    { name: 'a fresh single key, no ledger', keys: [key(OLD, 10)], expected: false },
    {
      name: 'a fresh single key, a ledger without marks',
      keys: [key(OLD, 10)],
      memory: ledger(),
      expected: false,
    },
    { name: 'a single key 75 days old', keys: [key(OLD, 75, { lastUsedDaysAgo: 0 })], expected: false },
    { name: 'a single key 76 days old (warning due)', keys: [key(OLD, 76)], expected: true },
    {
      name: 'a single key 77 days old, already warned (errs towards yes)',
      keys: [key(OLD, 77)],
      memory: ledger({ warnedKeys: { [OLD]: iso(1) } }),
      expected: true,
    },
    { name: 'a single key 80 days old', keys: [key(OLD, 80)], expected: true },
    { name: 'a single key 400 days old, never used', keys: [key(OLD, 400)], expected: true },
    { name: 'two active keys', keys: [key(OLD, 30), key(NEW, 2)], expected: true },
    {
      name: 'a fresh key and a rotation in flight',
      keys: [key(OLD, 10)],
      memory: ledger({
        inFlight: { oldKeyId: OLD, keysBefore: [OLD], phase: 'intent', startedAt: iso(0), reason: 'due' },
      }),
      expected: true,
    },
    {
      name: 'a fresh key and a notice in the outbox',
      keys: [key(OLD, 10)],
      memory: ledger({ outbox: [pendingNotice()] }),
      expected: true,
    },
    { name: 'an inactive key not yet tracked', keys: [key(OLD, 10), inactiveKey(NEW, 300)], expected: true },
    {
      name: 'an inactive key tracked 13 days ago',
      keys: [key(OLD, 10), inactiveKey(NEW, 300)],
      memory: ledger({ inactiveSince: { [NEW]: iso(13) } }),
      expected: false,
    },
    {
      name: 'an inactive key tracked 14 days ago',
      keys: [inactiveKey(NEW, 300)],
      memory: ledger({ inactiveSince: { [NEW]: iso(14) } }),
      expected: true,
    },
    {
      name: 'a tracked inactive key deleted by hand',
      keys: [key(OLD, 10)],
      memory: ledger({ inactiveSince: { [NEW]: iso(2) } }),
      expected: true,
    },
    {
      name: 'a tracked key reactivated by hand',
      keys: [key(OLD, 50)],
      memory: ledger({ inactiveSince: { [OLD]: iso(2) } }),
      expected: true,
    },
  ])('$name -> $expected', ({ keys, memory, expected }) => {
    expect(mayNeedAction(rowFor(keys), memory, settings, NOW)).toBe(expected);
  });

  test.each([
    { name: 'never used, 44 days old', keys: [key(OLD, 44)], expected: false },
    { name: 'never used, 45 days old', keys: [key(OLD, 45)], expected: true },
    { name: 'last used 44 days ago', keys: [key(OLD, 60, { lastUsedDaysAgo: 44 })], expected: false },
    { name: 'last used 45 days ago', keys: [key(OLD, 60, { lastUsedDaysAgo: 45 })], expected: true },
  ])('with reaping on: $name -> $expected', ({ keys, expected }) => {
    const reaping = { ...settings, reapUnusedDays: 45 };

    expect(mayNeedAction(rowFor(keys), undefined, reaping, NOW)).toBe(expected);
    expect(mayNeedAction(rowFor(keys), undefined, settings, NOW)).toBe(false);
  });

  test('warnDays 0: nothing to do until the rotation day', () => {
    const quiet = { ...settings, warnDays: 0 };

    expect(mayNeedAction(rowFor([key(OLD, 79)]), undefined, quiet, NOW)).toBe(false);
    expect(mayNeedAction(rowFor([key(OLD, 80)]), undefined, quiet, NOW)).toBe(true);
  });

  test('a user out of scope needs nothing, however old the key', () => {
    const scoped = { ...settings, includePaths: ['/ci/'] };

    expect(mayNeedAction(rowFor([key(OLD, 200)], '/'), undefined, scoped, NOW)).toBe(false);
    expect(mayNeedAction(rowFor([key(OLD, 200)], '/ci/x/'), undefined, scoped, NOW)).toBe(true);
    expect(
      mayNeedAction(
        rowFor([key(OLD, 200)], '/ci/legacy/'),
        undefined,
        { ...scoped, excludePaths: ['/ci/legacy/'] },
        NOW,
      ),
    ).toBe(false);
  });

  test('a report row read from CSV is screened like a live user', () => {
    const rows = parseCredentialReport(REPORT);

    const screened = rows.map((row) => [row.userName, mayNeedAction(row, undefined, settings, NOW)]);

    // alice: 80 days old; ci-bot: two active keys; dormant: inactive, not tracked; console-only: no keys.
    expect(screened).toEqual([
      ['alice', true],
      ['ci-bot', true],
      ['dormant', true],
      ['console-only', false],
    ]);
  });

  /**
   * The screen's promise: whenever the policy would act on a user, the screen says yes. Checked over a
   * grid of ages, uses, warnings, inactive keys, ledger marks and settings.
   */
  test('never says no when the policy has work', () => {
    const activeAges = [undefined, 0, 40, 44, 45, 60, 75, 76, 79, 80, 89, 90, 200];
    const lastUses = [undefined, 0, 44, 45, 100];
    const inactiveStates = [undefined, 'untracked', 0, 13, 14, 30] as const;
    const settingsGrid: RotationSettings[] = [
      settings,
      { ...settings, reapUnusedDays: 45 },
      { ...settings, warnDays: 0 },
      { ...settings, rotateAfterDays: 30, warnDays: 10, deleteAfterDays: 0 },
    ];
    const misses: string[] = [];
    let checked = 0;
    let withWork = 0;

    for (const activeAge of activeAges) {
      for (const lastUse of lastUses) {
        if (activeAge === undefined ? lastUse !== undefined : lastUse !== undefined && lastUse > activeAge)
          continue;
        for (const warned of [false, true]) {
          for (const inactiveState of inactiveStates) {
            for (const reactivated of [false, true]) {
              if (reactivated && activeAge === undefined) continue;
              // Known limit, not covered here: the report has no key ids, so inactive keys are matched
              // to ledger marks by count. A reactivated tracked key next to an untracked inactive key
              // (equal counts) is screened in only when some mark's deletion day comes.
              if (reactivated && inactiveState === 'untracked') continue;
              for (const current of settingsGrid) {
                const keys: AccessKey[] = [];
                if (activeAge !== undefined) keys.push(key(OLD, activeAge, { lastUsedDaysAgo: lastUse }));
                if (inactiveState !== undefined) keys.push(inactiveKey(NEW, 300));
                const inactiveSince: Record<string, string> = {};
                if (typeof inactiveState === 'number') inactiveSince[NEW] = iso(inactiveState);
                if (reactivated) inactiveSince[OLD] = iso(3);
                const memory = ledger({
                  inactiveSince,
                  warnedKeys: warned && activeAge !== undefined ? { [OLD]: iso(1) } : {},
                });

                const plan = planUser({ user: user(keys), ledger: memory, now: NOW, settings: current });
                const screened = mayNeedAction(rowFor(keys), memory, current, NOW);

                checked++;
                if (hasWork(plan)) withWork++;
                if (hasWork(plan) && !screened) {
                  misses.push(
                    JSON.stringify({
                      activeAge,
                      lastUse,
                      warned,
                      inactiveState,
                      reactivated,
                      settings: current,
                    }),
                  );
                }
              }
            }
          }
        }
      }
    }

    expect(misses).toEqual([]);
    // The grid is not vacuous: it holds both users with work and users without.
    expect(withWork).toBeGreaterThan(100);
    expect(checked - withWork).toBeGreaterThan(100);
  });
});

describe('suggestedActions: what the report suggests, for the audit trail', () => {
  const settings = DEFAULT_SETTINGS;
  const iso = (days: number) => daysAgo(days).toISOString();

  test.each<{ name: string; keys: AccessKey[]; memory?: UserLedger; expected: string[] }>([
    { name: 'a fresh key', keys: [key(OLD, 10)], expected: [] },
    { name: 'a key 76 days old', keys: [key(OLD, 76)], expected: ['warn'] },
    { name: 'a key 80 days old', keys: [key(OLD, 80)], expected: ['rotate'] },
    {
      name: 'a key 80 days old next to an untracked inactive key',
      keys: [key(OLD, 80), inactiveKey(NEW, 300)],
      expected: ['track-inactive', 'make-room', 'rotate'],
    },
    { name: 'two active keys', keys: [key(OLD, 30), key(NEW, 2)], expected: ['review'] },
    {
      name: 'an inactive key due for deletion',
      keys: [key(NEW, 20), inactiveKey(OLD, 100)],
      memory: ledger({ inactiveSince: { [OLD]: iso(14) } }),
      expected: ['delete'],
    },
    {
      name: 'a tracked key deleted by hand',
      keys: [key(NEW, 20)],
      memory: ledger({ inactiveSince: { [OLD]: iso(3) } }),
      expected: ['forget'],
    },
    {
      name: 'undelivered notices',
      keys: [key(NEW, 20)],
      memory: ledger({ outbox: [pendingNotice()] }),
      expected: ['resume'],
    },
  ])('$name -> $expected', ({ keys, memory, expected }) => {
    expect(suggestedActions(rowFor(keys), memory, settings, NOW)).toEqual(expected);
  });

  test('with reaping on, an idle key is suggested for reaping before its age counts', () => {
    const reaping = { ...settings, reapUnusedDays: 45 };

    expect(
      suggestedActions(rowFor([key(OLD, 85, { lastUsedDaysAgo: 50 })]), undefined, reaping, NOW),
    ).toEqual(['reap']);
  });
});

describe('screenUser: the planner skips a user while its review holds', () => {
  const settings = DEFAULT_SETTINGS;
  const iso = (days: number) => daysAgo(days).toISOString();
  const pair = [key(OLD, 82, { lastUsedDaysAgo: 0 }), key(NEW, 2, { lastUsedDaysAgo: 0 })];
  const inGrace = (now = NOW) => {
    const memory = pairLedger({}, 2);
    return { ...memory, review: nextReview({ user: user(pair), ledger: memory, now, settings }) };
  };
  const at = (days: number) => new Date(NOW.getTime() + days * 86_400_000);

  test('a pair in its grace period, same keys, before the review is due: skipped', () => {
    expect(mayNeedAction(rowFor(pair), inGrace(), settings, NOW)).toBe(true); // without the review
    expect(screenUser(rowFor(pair), inGrace(), settings, NOW)).toEqual([]);
    expect(screenUser(rowFor(pair), inGrace(), settings, at(4))).toEqual([]);
  });

  test('on the day the review is due: screened as the report says', () => {
    expect(inGrace().review.due).toBe('2026-06-06T00:00:00.000Z');
    expect(screenUser(rowFor(pair), inGrace(), settings, at(5))).toEqual(['review']);
  });

  test('keys that differ from the review are screened at once', () => {
    const deactivatedByHand = [{ ...pair[0]!, status: 'Inactive' as const }, pair[1]!];

    expect(screenUser(rowFor(deactivatedByHand), inGrace(), settings, NOW)).toEqual(['track-inactive']);
  });

  test('a review that has come due, or keys changed, are looked at even when the report suggests nothing', () => {
    const young = [key(OLD, 10)];
    const digest = settingsDigest(settings);
    const memory = ledger({
      review: { keys: '2026-01-01T00:00:00Z:A', due: at(30).toISOString(), settings: digest },
    });
    // Same keys, due yesterday (a foreign pair reported, an exemption: the 30-day recheck).
    const due = ledger({
      review: { keys: fingerprintOfKeys(young), due: at(-1).toISOString(), settings: digest },
    });

    expect(mayNeedAction(rowFor(young), memory, settings, NOW)).toBe(false);
    expect(screenUser(rowFor(young), memory, settings, NOW)).toEqual(['review']);
    expect(screenUser(rowFor(young), ledger(), settings, NOW)).toEqual([]); // no review: the report decides
    expect(screenUser(rowFor(young), due, settings, NOW)).toEqual(['review']);
  });

  test('a review recorded under other settings is ignored: a redeploy with a shorter rotation age acts at once', () => {
    const keys = [key(OLD, 40)];
    const memory = ledger();
    const recorded = {
      ...memory,
      review: nextReview({ user: user(keys), ledger: memory, now: NOW, settings }),
    };
    const tighter = { ...settings, rotateAfterDays: 30, warnDays: 4, maxKeyAgeDays: 45, graceDays: 7 };
    const reaping = { ...settings, reapUnusedDays: 30 };

    expect(screenUser(rowFor(keys), recorded, settings, NOW)).toEqual([]);
    expect(planUser({ user: user(keys), ledger: recorded, now: NOW, settings: tighter }).actions).toEqual([
      expect.objectContaining({ kind: 'rotate' }),
    ]);
    expect(screenUser(rowFor(keys), recorded, tighter, NOW)).toEqual(['rotate']);
    expect(screenUser(rowFor(keys), recorded, reaping, NOW)).toEqual(['reap']);
    // A review from before reviews named their settings is ignored too.
    const unnamed = { ...recorded, review: { keys: recorded.review.keys, due: recorded.review.due } };
    expect(screenUser(rowFor(keys), unnamed, settings, NOW)).toEqual(['review']);
  });

  test('our unfinished work is queued whatever the review says; a user out of scope is not', () => {
    const unfinished = { ...inGrace(), outbox: [pendingNotice()] };
    const scoped = { ...settings, includePaths: ['/apps/'] };

    expect(screenUser(rowFor(pair), unfinished, settings, NOW)).toEqual(['resume']);
    expect(
      screenUser(
        rowFor([key(OLD, 10)]),
        ledger({ review: { keys: 'x', due: NOW.toISOString(), settings: settingsDigest(scoped) } }),
        scoped,
        NOW,
      ),
    ).toEqual([]);
  });

  /**
   * The screen with reviews is never less safe: a review recorded on some day, keys and last use
   * unchanged since, never hides a day on which the policy has something to do.
   */
  test('never skips a day on which the policy has work', () => {
    const activeAges = [undefined, 0, 40, 60, 75, 76, 79, 80, 85, 200];
    const lastUses = [undefined, 0, 44, 100];
    const inactiveStates = [undefined, 'untracked', 0, 13, 30] as const;
    const pairings = ['none', 'ours', 'foreign'] as const;
    const settingsGrid: RotationSettings[] = [
      settings,
      { ...settings, reapUnusedDays: 45 },
      { ...settings, warnDays: 0, deleteAfterDays: 5 },
    ];
    const misses: string[] = [];
    let checked = 0;
    let withWork = 0;
    let skipped = 0;
    for (const activeAge of activeAges) {
      for (const lastUse of lastUses) {
        if (activeAge === undefined ? lastUse !== undefined : lastUse !== undefined && lastUse > activeAge)
          continue;
        for (const inactiveState of inactiveStates) {
          for (const pairing of pairings) {
            if (pairing !== 'none' && (activeAge === undefined || inactiveState !== undefined)) continue;
            for (const reactivated of [false, true]) {
              for (const current of settingsGrid) {
                const keys: AccessKey[] = [];
                if (activeAge !== undefined) keys.push(key(OLD, activeAge, { lastUsedDaysAgo: lastUse }));
                if (inactiveState !== undefined) keys.push(inactiveKey(NEW, 300));
                if (pairing !== 'none')
                  keys.push(key(SPARE, Math.min(activeAge!, 3), { lastUsedDaysAgo: 0 }));
                const inactiveSince: Record<string, string> = {};
                if (typeof inactiveState === 'number') inactiveSince[NEW] = iso(inactiveState);
                if (reactivated) inactiveSince[OLD] = iso(3);
                const memory = ledger({
                  inactiveSince,
                  rotations:
                    pairing === 'ours' ? [{ oldKeyId: OLD, newKeyId: SPARE, rotatedAt: iso(3) }] : [],
                  notices: pairing === 'foreign' ? { [`conflict:${OLD},${SPARE}`]: iso(1) } : {},
                });
                const recorded = {
                  ...memory,
                  review: nextReview({ user: user(keys), ledger: memory, now: NOW, settings: current }),
                };
                for (let day = 0; day <= 60; day++) {
                  const now = at(day);
                  const plan = planUser({ user: user(keys), ledger: recorded, now, settings: current });
                  const work = plan.actions.filter(
                    (action) => !(action.kind === 'conflict' && pairing === 'foreign'),
                  );
                  const screened = screenUser(rowFor(keys), recorded, current, now);
                  checked++;
                  if (work.length > 0) withWork++;
                  if (screened.length === 0) skipped++;
                  if (work.length > 0 && screened.length === 0) {
                    misses.push(
                      JSON.stringify({
                        activeAge,
                        lastUse,
                        inactiveState,
                        pairing,
                        reactivated,
                        day,
                        work: work.map((a) => a.kind),
                      }),
                    );
                  }
                }
              }
            }
          }
        }
      }
    }

    expect(misses).toEqual([]);
    expect(withWork).toBeGreaterThan(1000);
    expect(skipped).toBeGreaterThan(1000); // and the review does skip days
    expect(checked).toBeGreaterThan(withWork + skipped / 2);
  });
});
