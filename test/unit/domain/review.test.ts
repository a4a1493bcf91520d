import type { AccessKey, UserLedger, UserSnapshot } from '../../../lambda/domain/model';
import { planUser, type PlannedAction, type PolicyInput } from '../../../lambda/domain/policy';
import {
  EXEMPT_RECHECK_DAYS,
  fingerprintOfKeys,
  keysFingerprint,
  nextReview,
  RECHECK_DAYS,
  settingsDigest,
} from '../../../lambda/domain/review';
import { DEFAULT_SETTINGS, type RotationSettings } from '../../../lambda/domain/settings';
import {
  daysAgo,
  EXEMPTION_TAG,
  inactiveKey,
  key,
  ledger,
  NEW,
  NOW,
  OLD,
  OWNER_TAG,
  pairLedger,
  pendingNotice,
  SPARE,
  user,
} from './builders';

const MS_PER_DAY = 86_400_000;
const ISO = (date: Date) => date.toISOString();

/** ISO start of the UTC day `offset` days after NOW's day. */
function dayStart(offset: number): string {
  return new Date(Date.UTC(2026, 5, 1) + offset * MS_PER_DAY).toISOString();
}

function review(
  keys: readonly AccessKey[],
  options: {
    ledger?: UserLedger;
    settings?: Partial<RotationSettings>;
    user?: Partial<UserSnapshot>;
    now?: Date;
  } = {},
) {
  return nextReview({
    user: user(keys, options.user),
    ledger: options.ledger,
    now: options.now ?? NOW,
    settings: { ...DEFAULT_SETTINGS, ...options.settings },
  });
}

describe('keysFingerprint', () => {
  test('the credential report and a live read of the same keys give the same fingerprint', () => {
    // The report has seconds only; IAM's live CreateDate may carry milliseconds.
    const live = [
      { ...key(NEW, 3), createDate: new Date('2026-05-29T10:00:00.456Z') },
      { ...inactiveKey(OLD, 95), createDate: new Date('2026-02-26T10:00:00.000Z') },
    ];
    const report = [
      { active: false, createDate: new Date('2026-02-26T10:00:00Z'), lastUsedDate: daysAgo(30) },
      { active: true, createDate: new Date('2026-05-29T10:00:00Z') },
    ];

    expect(fingerprintOfKeys(live)).toBe('2026-05-29T10:00:00Z:A');
    expect(keysFingerprint(report)).toBe(fingerprintOfKeys(live));
    // AWS may show an inactive key's slot without its creation date: the same fingerprint.
    expect(keysFingerprint([{ active: false }, report[1]!])).toBe(fingerprintOfKeys(live));
  });

  test('empty and inactive report slots are ignored; a deactivation or a new key changes the fingerprint', () => {
    const one = keysFingerprint([{ active: true, createDate: daysAgo(3) }, { active: false }]);

    expect(one).toBe(`${daysAgo(3).toISOString().slice(0, 19)}Z:A`);
    expect(keysFingerprint([{ active: false, createDate: daysAgo(3) }])).not.toBe(one);
    expect(
      keysFingerprint([
        { active: true, createDate: daysAgo(3) },
        { active: true, createDate: daysAgo(0) },
      ]),
    ).not.toBe(one);
    expect(keysFingerprint([])).toBe('');
  });
});

describe('nextReview: the first day anything can be due', () => {
  test('records the keys as seen', () => {
    const keys = [key(OLD, 10)];

    expect(review(keys).keys).toBe(fingerprintOfKeys(keys));
  });

  test.each([
    { what: 'a young key, not warned: the warning day (age 76)', age: 10, warned: false, due: dayStart(66) },
    { what: 'a key warned already: the rotation day (age 80)', age: 77, warned: true, due: dayStart(3) },
    { what: 'a key due for its warning: today', age: 76, warned: false, due: dayStart(0) },
    { what: 'a key due for rotation: today', age: 80, warned: true, due: dayStart(0) },
  ])('one active key: $what', ({ age, warned, due }) => {
    const memory = ledger({ warnedKeys: warned ? { [OLD]: ISO(daysAgo(1)) } : {} });

    expect(review([key(OLD, age, { lastUsedDaysAgo: 0 })], { ledger: memory }).due).toBe(due);
  });

  test('without warnings the rotation day is the first date', () => {
    const result = review([key(OLD, 10)], { settings: { warnDays: 0 } });

    expect(result.due).toBe(dayStart(70));
  });

  test('a rotation pair in its grace period: the day the grace ends', () => {
    const keys = [key(OLD, 82, { lastUsedDaysAgo: 0 }), key(NEW, 2)];

    expect(review(keys, { ledger: pairLedger({}, 2) }).due).toBe(dayStart(5));
  });

  test('an old key switched back on by hand gets one more grace from when that was seen', () => {
    const keys = [key(OLD, 90, { lastUsedDaysAgo: 0 }), key(NEW, 6)];
    const memory = pairLedger({ reactivatedSeen: { [OLD]: ISO(daysAgo(1)) } }, 6);

    // The pair's own grace ends tomorrow; the reactivation's a day after its last day, 6 days on.
    expect(review(keys, { ledger: memory }).due).toBe(dayStart(6));
  });

  test('grace over and the old key unused: deactivation is due today', () => {
    const keys = [key(OLD, 88, { lastUsedDaysAgo: 9 }), key(NEW, 8)];

    expect(review(keys, { ledger: pairLedger({}, 8) }).due).toBe(dayStart(0));
  });

  test('postponed: today while the reminder is unsent, tomorrow once it was sent today', () => {
    const keys = [key(OLD, 85, { lastUsedDaysAgo: 0 }), key(NEW, 8)];
    const sent = pairLedger({ notices: { [`postponed:${OLD}`]: '2026-06-01' } }, 8);
    const sentYesterday = pairLedger({ notices: { [`postponed:${OLD}`]: '2026-05-31' } }, 8);

    expect(review(keys, { ledger: pairLedger({}, 8) }).due).toBe(dayStart(0));
    expect(review(keys, { ledger: sentYesterday }).due).toBe(dayStart(0));
    expect(review(keys, { ledger: sent }).due).toBe(dayStart(1));
  });

  test('a tracked inactive key: its deletion day, if nothing comes first', () => {
    const keys = [key(NEW, 3), inactiveKey(OLD, 93)];
    const memory = ledger({ inactiveSince: { [OLD]: ISO(daysAgo(3)) } });

    expect(review(keys, { ledger: memory }).due).toBe(dayStart(11));
  });

  test('a disabled user (inactive keys only): the first deletion day', () => {
    const keys = [inactiveKey(OLD, 200), inactiveKey(SPARE, 150)];
    const memory = ledger({ inactiveSince: { [OLD]: ISO(daysAgo(5)), [SPARE]: ISO(daysAgo(1)) } });

    expect(review(keys, { ledger: memory }).due).toBe(dayStart(9));
  });

  test('the warning comes before a far deletion', () => {
    const keys = [key(NEW, 74), inactiveKey(OLD, 160)];
    const memory = ledger({ inactiveSince: { [OLD]: ISO(daysAgo(1)) } });

    expect(review(keys, { ledger: memory, settings: { deleteAfterDays: 30 } }).due).toBe(dayStart(2));
  });

  test.each([
    { what: 'an untracked inactive key', keys: [key(NEW, 3), inactiveKey(OLD, 93)], memory: ledger() },
    {
      what: 'a ledger mark of a key deleted by hand',
      keys: [key(NEW, 3)],
      memory: ledger({ inactiveSince: { [OLD]: ISO(daysAgo(3)) } }),
    },
    {
      what: 'a key reactivated by hand',
      keys: [key(OLD, 20)],
      memory: ledger({ inactiveSince: { [OLD]: ISO(daysAgo(3)) } }),
    },
    {
      what: 'a rotation in flight',
      keys: [key(OLD, 85)],
      memory: ledger({
        inFlight: {
          oldKeyId: OLD,
          keysBefore: [OLD],
          phase: 'intent',
          startedAt: ISO(daysAgo(0)),
          reason: 'due',
        },
      }),
    },
    { what: 'undelivered notices', keys: [key(OLD, 5)], memory: ledger({ outbox: [pendingNotice()] }) },
    {
      what: 'a foreign pair not yet reported',
      keys: [key(OLD, 40), key(NEW, 10)],
      memory: ledger(),
    },
  ])('work now ($what): today', ({ keys, memory }) => {
    expect(review(keys, { ledger: memory }).due).toBe(dayStart(0));
  });

  test('tag findings not yet reported: today; once reported they add nothing', () => {
    const tags = { [OWNER_TAG]: 'not-an-address' };
    const finding = `owner: tag ${OWNER_TAG} is not a list of e-mail addresses ("not-an-address"); notices go to the default recipients`;

    expect(review([key(OLD, 10)], { user: { tags } }).due).toBe(dayStart(0));
    expect(
      review([key(OLD, 10)], {
        user: { tags },
        ledger: ledger({ notices: { [`tags:${finding}`]: ISO(daysAgo(1)) } }),
      }).due,
    ).toBe(dayStart(66));
  });

  test(`a foreign pair already reported has no date of its own: rechecked in ${RECHECK_DAYS} days`, () => {
    const keys = [key(OLD, 40), key(NEW, 10)];
    const memory = ledger({ notices: { [`conflict:${OLD},${NEW}`]: ISO(daysAgo(2)) } });

    expect(review(keys, { ledger: memory }).due).toBe(dayStart(RECHECK_DAYS));
  });

  test.each([
    { what: 'until a near day: the day after it', value: 'vendor until=2026-06-03', due: dayStart(3) },
    {
      what: 'until a far day: a week (the tag may be removed by hand)',
      value: 'vendor until=2027-06-10',
      due: dayStart(EXEMPT_RECHECK_DAYS),
    },
    { what: 'without expiry: a week', value: 'vendor appliance', due: dayStart(EXEMPT_RECHECK_DAYS) },
    { what: 'expired: the keys rule again', value: 'vendor until=2026-05-31', due: dayStart(0) },
  ])('an exempt user with an overdue key, $what', ({ value, due }) => {
    const tags = { [OWNER_TAG]: 'alice@example.com', [EXEMPTION_TAG]: value };

    expect(review([key(OLD, 300)], { user: { tags } }).due).toBe(due);
  });

  test('names the settings it was computed under', () => {
    const keys = [key(OLD, 10)];

    expect(review(keys).settings).toBe(settingsDigest({ ...DEFAULT_SETTINGS }));
    expect(review(keys, { settings: { graceDays: 8 } }).settings).not.toBe(review(keys).settings);
    expect(review(keys, { settings: { includePaths: ['/apps/'] } }).settings).not.toBe(review(keys).settings);
  });

  test('a user out of scope: today (the planner drops them by path); a user without keys: the recheck', () => {
    expect(review([key(OLD, 300)], { settings: { includePaths: ['/apps/'] } }).due).toBe(dayStart(0));
    expect(review([]).due).toBe(dayStart(RECHECK_DAYS));
  });

  test('reaping unused keys: from the last use, not before a reactivation grace ends', () => {
    const settings = { reapUnusedDays: 45 };
    const used = [key(OLD, 20, { lastUsedDaysAgo: 10 })];
    const neverUsed = [key(OLD, 20)];
    const idle = [key(OLD, 60, { lastUsedDaysAgo: 44 })];
    const reactivated = ledger({ reactivatedSeen: { [OLD]: ISO(daysAgo(2)) } });

    expect(review(used, { settings }).due).toBe(dayStart(35));
    expect(review(neverUsed, { settings }).due).toBe(dayStart(25));
    expect(review(idle, { settings }).due).toBe(dayStart(1));
    expect(review(idle, { settings, ledger: reactivated }).due).toBe(dayStart(5));
  });

  test("an operator's forced rotation is not a scheduled event and does not make the review due", () => {
    const input: PolicyInput = {
      user: user([key(OLD, 10)]),
      now: NOW,
      settings: DEFAULT_SETTINGS,
      forceRotation: 'leaked',
    };

    expect(nextReview(input).due).toBe(dayStart(66));
  });
});

// ---------------------------------------------------------------------------------------------------
// The review is never late: on every day before it is due, the policy has nothing to do.

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

const SETTINGS_UNDER_TEST: readonly RotationSettings[] = [
  DEFAULT_SETTINGS,
  { ...DEFAULT_SETTINGS, reapUnusedDays: 45 },
  { ...DEFAULT_SETTINGS, warnDays: 0, deleteAfterDays: 30 },
  {
    ...DEFAULT_SETTINGS,
    rotateAfterDays: 5,
    warnDays: 2,
    graceDays: 2,
    maxKeyAgeDays: 8,
    deleteAfterDays: 3,
    reapUnusedDays: 4,
  },
  {
    ...DEFAULT_SETTINGS,
    rotateAfterDays: 0,
    warnDays: 0,
    graceDays: 0,
    maxKeyAgeDays: 0,
    deleteAfterDays: 0,
  },
];

interface Case {
  readonly seed: number;
  readonly input: PolicyInput;
}

function generate(seed: number): Case {
  const next = random(seed);
  const int = (max: number) => Math.floor(next() * (max + 1));
  const pick = <T>(items: readonly T[]): T => items[int(items.length - 1)]!;
  const chance = (p: number) => next() < p;
  const now = new Date(NOW.getTime() + int(23) * 3_600_000 - 2 * 3_600_000);
  const settings = pick(SETTINGS_UNDER_TEST);

  const ids = [OLD, NEW];
  const keys: AccessKey[] = [];
  const count = pick([0, 1, 1, 2, 2, 2]);
  let age = int(130);
  for (let i = 0; i < count; i++) {
    const pad = (n: number) => String(n).padStart(2, '0');
    const createDate = daysAgo(age, `${pad(int(23))}:${pad(int(59))}:${pad(int(59))}`);
    const used = chance(0.7) ? daysAgo(int(age), `0${int(9)}:00:00`) : undefined;
    keys.push({
      accessKeyId: ids[i]!,
      status: chance(0.75) ? 'Active' : 'Inactive',
      createDate,
      lastUsedDate: used && used.getTime() >= createDate.getTime() ? used : undefined,
    });
    age = int(age); // the second key is younger
  }

  const memoryOf = (): UserLedger => {
    const marks = (p: number, within: number) =>
      Object.fromEntries(keys.filter(() => chance(p)).map((k) => [k.accessKeyId, ISO(daysAgo(int(within)))]));
    const active = keys.filter((k) => k.status === 'Active');
    const rotations =
      keys.length === 2 && chance(0.7)
        ? [{ oldKeyId: OLD, newKeyId: NEW, rotatedAt: ISO(keys[1]!.createDate) }]
        : [];
    const notices: Record<string, string> = {};
    if (chance(0.4)) notices[`conflict:${OLD},${NEW}`] = ISO(daysAgo(int(10)));
    if (chance(0.4)) notices[`postponed:${OLD}`] = pick([ISO(now).slice(0, 10), '2026-05-31']);
    const inactiveSince = Object.fromEntries(
      keys
        .filter((k) => (k.status === 'Inactive' ? chance(0.85) : chance(0.05)))
        .map((k) => [k.accessKeyId, ISO(daysAgo(int(20)))]),
    );
    if (chance(0.05)) inactiveSince[SPARE] = ISO(daysAgo(3)); // a key deleted by hand
    return ledger({
      rotations,
      inactiveSince,
      warnedKeys: marks(0.5, 5),
      reactivatedSeen: Object.fromEntries(
        active.filter(() => chance(0.2)).map((k) => [k.accessKeyId, ISO(daysAgo(int(10)))]),
      ),
      notices,
      outbox: chance(0.03) ? [pendingNotice()] : [],
    });
  };

  const tags: Record<string, string> = { [OWNER_TAG]: 'alice@example.com' };
  if (chance(0.1)) tags[EXEMPTION_TAG] = pick(['vendor', 'vendor until=2026-06-20', 'x until=2026-05-01']);
  return {
    seed,
    input: {
      user: user(keys, { path: chance(0.05) ? '/legacy/' : '/', tags }),
      ledger: chance(0.9) ? memoryOf() : undefined,
      now,
      settings: { ...settings, excludePaths: ['/legacy/'] },
    },
  };
}

/** Actions the rotator would carry out on `at` with this ledger, leaving out notices already sent. */
function pendingOn(input: PolicyInput, at: Date): PlannedAction[] {
  const { ledger: memory } = input;
  return planUser({ ...input, now: at }).actions.filter((action) => {
    if (action.kind === 'conflict')
      return memory?.notices[`conflict:${action.keyIds.join(',')}`] === undefined;
    if (action.kind === 'postpone')
      return memory?.notices[`postponed:${action.keyId}`] !== ISO(at).slice(0, 10);
    return true;
  });
}

describe('nextReview is never late', () => {
  const cases = Array.from({ length: 3000 }, (_, i) => generate(i + 1));

  test('on every day before the review is due, the policy returns no action to carry out', () => {
    const late: string[] = [];
    let checkedDays = 0;
    for (const { seed, input } of cases) {
      const due = new Date(nextReview(input).due);
      const times: Date[] = [];
      for (let at = input.now; at.getTime() < due.getTime(); at = new Date(at.getTime() + MS_PER_DAY)) {
        times.push(at);
      }
      if (due.getTime() > input.now.getTime()) times.push(new Date(due.getTime() - 1));
      for (const at of times) {
        checkedDays++;
        const pending = pendingOn(input, at);
        if (pending.length > 0) {
          late.push(
            `seed ${seed}: due ${ISO(due)} but on ${ISO(at)}: ${pending.map((a) => a.kind).join(',')}`,
          );
          break;
        }
      }
    }

    expect(late).toEqual([]);
    expect(checkedDays).toBeGreaterThan(cases.length * 5); // the generator reaches far dates, not only "today"
  });

  test('a key-age date is exact: on the due day the policy has something to do', () => {
    const early: string[] = [];
    const dueDays = new Set<number>();
    for (const { seed, input } of cases) {
      const due = new Date(nextReview(input).due);
      const days = Math.round((due.getTime() - Date.UTC(2026, 5, 1)) / MS_PER_DAY);
      dueDays.add(days);
      const recheck = days === RECHECK_DAYS && due.getTime() > input.now.getTime();
      if (due.getTime() <= input.now.getTime() || recheck || input.user.tags[EXEMPTION_TAG] !== undefined) {
        continue;
      }
      if (pendingOn(input, due).length === 0) early.push(`seed ${seed}: nothing due on ${ISO(due)}`);
    }

    expect(early).toEqual([]);
    expect(dueDays.size).toBeGreaterThan(20);
  });
});
