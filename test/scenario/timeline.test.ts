/**
 * 120 days of the real planner and rotator over a mixed population: one dry run and one real run a
 * day, from 02:00 UTC (the clock advances one day between days, plus the services' own sleeps).
 *
 * Most users have a workload that signs a request with the credentials it holds each day BEFORE the
 * day's run. The expected notifications are written below as literal tables, computed by hand from the
 * lifecycle in DESIGN.md (defaults: warn 76, rotate 80, grace 7, max 90, delete 14 days after
 * deactivation; whole UTC calendar days). They are an independent statement of the lifecycle: the key
 * states expected on every day are derived from the tables, not from the code under test.
 *
 * Day d is 2026-01-01 + d days. A key seeded `A` days old on day 0 is `A + d` days old on day d.
 * Workload lag N: the workload re-reads the secret (AWSCURRENT) N days after the rotation, after that
 * day's run, so its first request with the new key is on day r + N + 1. Any request with the old key
 * after the rotation counts as use after the new key was created, which postpones the deactivation
 * until the hard limit (old key age 90, but never before the end of the grace).
 *
 * "No active key reaches 90 days" has listed exceptions besides exempt, out-of-scope and foreign-pair
 * users: a key found already past 83 days keeps its full grace after the rotation (README: "deactivate
 * the old key at this age (after the grace)"), and a key switched back on by hand gets one more grace.
 */
import type {
  KeyCredentials,
  NotificationEvent,
  OwnerNotification,
  UserLedger,
} from '../../lambda/domain/model';
import { ActionKind, KEY_CHANGING_ACTIONS } from '../../lambda/domain/policy';
import { daysBetween, isoDay, MS_PER_DAY } from '../../lambda/domain/time';
import type { FakeKey } from '../fakes/iam';
import { World } from '../fakes/world';

const DAYS = 120;
const START = '2026-01-01T02:00:00Z';
const HISTORY_LIMIT = 10;
const MAX_KEY_AGE = 90;
const OWNER_TAG = 'key-rotation:owner';
const EXEMPT_TAG = 'key-rotation:exempt';

const dayStart = (day: number) => new Date(Date.parse(START) + day * MS_PER_DAY);
const dateOf = (day: number) => isoDay(dayStart(day));
const dayNumber = (at: Date | string) => daysBetween(dayStart(0), new Date(at));

// ---------------------------------------------------------------------------------------------------
// The population

/** `stubborn`: never switches to the new key. A number: the lag N described above. */
type Workload = 0 | 1 | 3 | 'stubborn';

interface Person {
  readonly name: string;
  readonly path?: string;
  readonly tags: Record<string, string>;
  /** Seeded keys, any order. */
  readonly keys: readonly { ageDays: number; status?: 'Inactive'; lastUsedDaysAgo?: number }[];
  /** Which seeded key the workload starts with (index into `keys`); none if the user has no workload. */
  readonly workload?: { readonly lag: Workload; readonly startsWith: number };
  /** The SNS `owner` attribute expected on its notices (tags.invalid always goes to `default`). */
  readonly owner: string;
  /** Never modified (exempt all along, out of scope, or a foreign pair). */
  readonly untouchable?: boolean;
  /** Days after whose run an active key of this user may be 90+ days old (see the header). */
  readonly overAgeAllowed?: readonly number[] | 'always';
}

const owner = (address: string) => ({ [OWNER_TAG]: address });
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const PEOPLE: readonly Person[] = [
  {
    name: 'svc-fresh-0',
    tags: owner('Alice@Example.com'), // addresses are compared lower-case
    keys: [{ ageDays: 0, lastUsedDaysAgo: 0 }],
    workload: { lag: 0, startsWith: 0 },
    owner: 'alice@example.com',
  },
  {
    name: 'svc-age-30',
    tags: owner('bob@example.com'),
    keys: [{ ageDays: 30, lastUsedDaysAgo: 1 }],
    workload: { lag: 1, startsWith: 0 },
    owner: 'bob@example.com',
  },
  {
    name: 'svc-age-60',
    tags: owner('carol@example.com, ops@example.com'),
    keys: [{ ageDays: 60, lastUsedDaysAgo: 1 }],
    workload: { lag: 3, startsWith: 0 },
    owner: 'carol@example.com',
  },
  {
    name: 'svc-no-owner-75',
    tags: {},
    keys: [{ ageDays: 75, lastUsedDaysAgo: 1 }],
    workload: { lag: 0, startsWith: 0 },
    owner: 'default',
  },
  {
    name: 'svc-bad-owner-79',
    tags: owner('team-payments'),
    keys: [{ ageDays: 79, lastUsedDaysAgo: 1 }],
    workload: { lag: 1, startsWith: 0 },
    owner: 'default',
  },
  {
    name: 'svc-age-85',
    tags: owner('dave@example.com'),
    keys: [{ ageDays: 85, lastUsedDaysAgo: 1 }],
    workload: { lag: 0, startsWith: 0 },
    owner: 'dave@example.com',
    // Found past the rotation age: rotated on day 0, the old key keeps its grace until day 7.
    overAgeAllowed: [5, 6],
  },
  {
    name: 'svc-found-200',
    tags: owner('erin@example.com'),
    keys: [{ ageDays: 200, lastUsedDaysAgo: 1 }],
    workload: { lag: 3, startsWith: 0 },
    owner: 'erin@example.com',
    overAgeAllowed: range(0, 6),
  },
  {
    name: 'svc-stubborn-50',
    tags: owner('frank@example.com'),
    keys: [{ ageDays: 50, lastUsedDaysAgo: 1 }],
    workload: { lag: 'stubborn', startsWith: 0 },
    owner: 'frank@example.com',
  },
  {
    name: 'svc-exempt-until',
    tags: { ...owner('grace@example.com'), [EXEMPT_TAG]: `migration to roles; until=${dateOf(20)}` },
    keys: [{ ageDays: 62, lastUsedDaysAgo: 1 }],
    workload: { lag: 0, startsWith: 0 },
    owner: 'grace@example.com',
  },
  {
    name: 'vendor-appliance',
    tags: { ...owner('vendor@example.com'), [EXEMPT_TAG]: 'vendor appliance' },
    keys: [{ ageDays: 150, lastUsedDaysAgo: 1 }],
    workload: { lag: 0, startsWith: 0 },
    owner: 'vendor@example.com',
    untouchable: true,
    overAgeAllowed: 'always',
  },
  {
    name: 'svc-disabled',
    tags: owner('heidi@example.com'),
    keys: [{ ageDays: 100, status: 'Inactive', lastUsedDaysAgo: 40 }],
    owner: 'heidi@example.com',
  },
  {
    name: 'svc-two-foreign',
    tags: owner('ivan@example.com'),
    keys: [
      { ageDays: 100, lastUsedDaysAgo: 3 },
      { ageDays: 20, lastUsedDaysAgo: 1 },
    ],
    workload: { lag: 0, startsWith: 1 },
    owner: 'ivan@example.com',
    untouchable: true, // I3: report only
    overAgeAllowed: 'always',
  },
  {
    name: 'svc-never-used',
    tags: owner('judy@example.com'),
    keys: [{ ageDays: 40 }],
    owner: 'judy@example.com',
  },
  {
    name: 'svc-with-inactive',
    tags: owner('mallory@example.com'),
    keys: [
      { ageDays: 200, status: 'Inactive', lastUsedDaysAgo: 150 },
      { ageDays: 78, lastUsedDaysAgo: 1 },
    ],
    workload: { lag: 0, startsWith: 1 },
    owner: 'mallory@example.com',
  },
  {
    name: 'svc-reactivated',
    tags: owner('oscar@example.com'),
    keys: [{ ageDays: 70, lastUsedDaysAgo: 1 }],
    workload: { lag: 0, startsWith: 0 },
    owner: 'oscar@example.com',
    // Switched back on by hand on day 19 (age 89): one more grace, deactivated again on day 26.
    overAgeAllowed: range(20, 25),
  },
  {
    name: 'human-outside',
    path: '/people/',
    tags: owner('peggy@example.com'),
    keys: [{ ageDays: 120, lastUsedDaysAgo: 0 }],
    workload: { lag: 0, startsWith: 0 },
    owner: 'peggy@example.com',
    untouchable: true, // not under includePaths
    overAgeAllowed: 'always',
  },
];

/** The day the hand-reactivation of svc-reactivated's deactivated old key happens (before the run). */
const REACTIVATION_DAY = 19;

// ---------------------------------------------------------------------------------------------------
// Expected notifications, by hand. [day, event, date]: for key.expiring the date is rotateOn, for
// key.rotated it is enforceOn (deactivateFrom is always day + 7); key.deactivated / key.enforced must
// say deleteOn = day + 14 and key.deactivation-postponed the day of the next key.enforced.

type Row = readonly [day: number, event: NotificationEvent, on?: number];

const EXPECTED: Readonly<Record<string, readonly Row[]>> = {
  // 0 days old, lag 0: warn at 76, rotate at 80, unused since -> deactivate at 87, delete at 101.
  'svc-fresh-0': [
    [76, 'key.expiring', 80],
    [80, 'key.rotated', 90],
    [87, 'key.deactivated'],
    [101, 'key.deleted'],
  ],
  // 30 days old, lag 1: old key used on day 51 -> postponed 57..59, enforced at its age 90 (day 60).
  'svc-age-30': [
    [46, 'key.expiring', 50],
    [50, 'key.rotated', 60],
    [57, 'key.deactivation-postponed'],
    [58, 'key.deactivation-postponed'],
    [59, 'key.deactivation-postponed'],
    [60, 'key.enforced'],
    [74, 'key.deleted'],
  ],
  // 60 days old, lag 3: two full cycles, each postponed then enforced.
  'svc-age-60': [
    [16, 'key.expiring', 20],
    [20, 'key.rotated', 30],
    [27, 'key.deactivation-postponed'],
    [28, 'key.deactivation-postponed'],
    [29, 'key.deactivation-postponed'],
    [30, 'key.enforced'],
    [44, 'key.deleted'],
    [96, 'key.expiring', 100],
    [100, 'key.rotated', 110],
    [107, 'key.deactivation-postponed'],
    [108, 'key.deactivation-postponed'],
    [109, 'key.deactivation-postponed'],
    [110, 'key.enforced'],
  ],
  // No owner tag: same notices, to `default`; a missing tag is not a tag error.
  'svc-no-owner-75': [
    [1, 'key.expiring', 5],
    [5, 'key.rotated', 15],
    [12, 'key.deactivated'],
    [26, 'key.deleted'],
    [81, 'key.expiring', 85],
    [85, 'key.rotated', 95],
    [92, 'key.deactivated'],
    [106, 'key.deleted'],
  ],
  // Malformed owner tag: reported once to `default`, then the lifecycle (warned at 79, one day ahead).
  'svc-bad-owner-79': [
    [0, 'tags.invalid'],
    [0, 'key.expiring', 1],
    [1, 'key.rotated', 11],
    [8, 'key.deactivation-postponed'],
    [9, 'key.deactivation-postponed'],
    [10, 'key.deactivation-postponed'],
    [11, 'key.enforced'],
    [25, 'key.deleted'],
    [77, 'key.expiring', 81],
    [81, 'key.rotated', 91],
    [88, 'key.deactivation-postponed'],
    [89, 'key.deactivation-postponed'],
    [90, 'key.deactivation-postponed'],
    [91, 'key.enforced'],
    [105, 'key.deleted'],
  ],
  // Found at 85: rotated at once without a warning; the grace still applies (enforceOn = day 7).
  'svc-age-85': [
    [0, 'key.rotated', 7],
    [7, 'key.deactivated'],
    [21, 'key.deleted'],
    [76, 'key.expiring', 80],
    [80, 'key.rotated', 90],
    [87, 'key.deactivated'],
    [101, 'key.deleted'],
  ],
  // Found at 200 with lag 3: the grace ends on the enforce day, so no postponement the first time.
  'svc-found-200': [
    [0, 'key.rotated', 7],
    [7, 'key.enforced'],
    [21, 'key.deleted'],
    [76, 'key.expiring', 80],
    [80, 'key.rotated', 90],
    [87, 'key.deactivation-postponed'],
    [88, 'key.deactivation-postponed'],
    [89, 'key.deactivation-postponed'],
    [90, 'key.enforced'],
    [104, 'key.deleted'],
  ],
  // Never switches: postponed, enforced on day 40 (cut off from day 41). Its new key is never used by
  // the workload, so the next rotation's old key is deactivated as soon as the grace ends.
  'svc-stubborn-50': [
    [26, 'key.expiring', 30],
    [30, 'key.rotated', 40],
    [37, 'key.deactivation-postponed'],
    [38, 'key.deactivation-postponed'],
    [39, 'key.deactivation-postponed'],
    [40, 'key.enforced'],
    [54, 'key.deleted'],
    [106, 'key.expiring', 110],
    [110, 'key.rotated', 120],
    [117, 'key.deactivated'],
  ],
  // Exempt through day 20 (inclusive); on day 21 the key is 83 days old: rotated without a warning.
  'svc-exempt-until': [
    [21, 'key.rotated', 28],
    [28, 'key.deactivated'],
    [42, 'key.deleted'],
    [97, 'key.expiring', 101],
    [101, 'key.rotated', 111],
    [108, 'key.deactivated'],
  ],
  'vendor-appliance': [],
  // Inactive key only: its deletion clock starts when first seen (day 0); never given a new key.
  'svc-disabled': [[14, 'key.deleted']],
  'svc-two-foreign': [[0, 'keys.conflict']],
  // Never used: rotated like any other; the old key is unused, so deactivated when the grace ends.
  'svc-never-used': [
    [36, 'key.expiring', 40],
    [40, 'key.rotated', 50],
    [47, 'key.deactivated'],
    [61, 'key.deleted'],
    [116, 'key.expiring', 120],
  ],
  // An inactive key is deleted to make room for the replacement (I3), in the same run.
  'svc-with-inactive': [
    [0, 'key.expiring', 2],
    [2, 'key.deleted'],
    [2, 'key.rotated', 12],
    [9, 'key.deactivated'],
    [23, 'key.deleted'],
    [78, 'key.expiring', 82],
    [82, 'key.rotated', 92],
    [89, 'key.deactivated'],
    [103, 'key.deleted'],
  ],
  // Deactivated on day 17, switched back on by hand on day 19: noticed, one more grace (to day 26),
  // then deactivated again (not used since the rotation) and deleted 14 days after that.
  'svc-reactivated': [
    [6, 'key.expiring', 10],
    [10, 'key.rotated', 20],
    [17, 'key.deactivated'],
    [19, 'key.reactivated'],
    [26, 'key.deactivated'],
    [40, 'key.deleted'],
    [86, 'key.expiring', 90],
    [90, 'key.rotated', 100],
    [97, 'key.deactivated'],
    [111, 'key.deleted'],
  ],
  'human-outside': [],
};

/**
 * Key statuses (oldest first, `A`ctive / `I`nactive) after each day's run, derived from the seeded keys
 * and the expected events alone: rotated adds an active key; deactivated/enforced switch off the oldest
 * active key; deleted removes the oldest inactive key; reactivated switches the inactive key back on.
 */
function expectedKeyStates(person: Person): string[] {
  const keys = [...person.keys]
    .sort((a, b) => b.ageDays - a.ageDays)
    .map((key) => (key.status === 'Inactive' ? 'I' : 'A'));
  const states: string[] = [];
  for (let day = 0; day < DAYS; day++) {
    for (const [when, event] of EXPECTED[person.name] ?? []) {
      if (when !== day) continue;
      if (event === 'key.rotated') keys.push('A');
      if (event === 'key.deactivated' || event === 'key.enforced') keys[keys.indexOf('A')] = 'I';
      if (event === 'key.deleted') keys.splice(keys.indexOf('I'), 1);
      if (event === 'key.reactivated') keys[keys.indexOf('I')] = 'A';
    }
    states.push(keys.join(','));
  }
  return states;
}

// ---------------------------------------------------------------------------------------------------
// The simulation, run once; the tests below read what it recorded.

interface Notice {
  readonly day: number;
  readonly notification: OwnerNotification;
}

interface WorkloadState {
  readonly person: Person;
  readonly lag: Workload;
  credentials: KeyCredentials;
  switchOnDay?: number;
  /** Day -> whether the day's request (before the run) was accepted. */
  readonly requests: boolean[];
  /** Day -> whether AWS would still accept the workload's credentials after the day's run. */
  readonly acceptedAfterRun: boolean[];
}

interface Recording {
  readonly world: World;
  readonly notices: Notice[];
  readonly failures: string[];
  /** Invariant violations found after some run, each naming the day and the user. */
  readonly violations: {
    vault: string[];
    age: string[];
    untouched: string[];
    ledger: string[];
    dryRun: string[];
  };
  /** user -> key statuses after each day's run. */
  readonly keyStates: Map<string, string[]>;
  readonly workloads: Map<string, WorkloadState>;
  /** user -> access key ids that were AWSCURRENT in turn, starting with the seeded active key. */
  readonly chains: Map<string, string[]>;
  /** user -> the day after whose run each AWSCURRENT appeared. */
  readonly rotationDays: Map<string, number[]>;
  /** When each day's requests and runs started (the clock only moves by days and by the services' sleeps). */
  readonly runStarts: Date[];
  /** Key changes (rotate, deactivate, enforce, delete) the runs made, all compared with the dry runs. */
  keyChanges: number;
  /** The id of svc-reactivated's old key, switched back on by hand on REACTIVATION_DAY. */
  reactivatedKeyId?: string;
}

/** Whether AWS would accept these credentials now; unlike iam.use, records no use. */
function wouldAccept(world: World, credentials: KeyCredentials): boolean {
  const key = world.iam.findKey(credentials.accessKeyId);
  return key?.status === 'Active' && key.secretAccessKey === credentials.secretAccessKey;
}

function keysOf(world: World, userName: string): FakeKey[] {
  return [...(world.iam.users.get(userName)?.keys ?? [])].sort(
    (a, b) => a.createDate.getTime() - b.createDate.getTime(),
  );
}

function describeKeys(world: World, userName: string): string {
  return JSON.stringify(
    keysOf(world, userName).map((key) => [key.accessKeyId, key.status, key.createDate.toISOString()]),
  );
}

async function simulate(): Promise<Recording> {
  const world = new World({
    start: START,
    settings: { includePaths: ['/apps/'] },
    rotationOptions: { historyLimit: HISTORY_LIMIT },
  });
  const recording: Recording = {
    world,
    notices: [],
    failures: [],
    violations: { vault: [], age: [], untouched: [], ledger: [], dryRun: [] },
    keyStates: new Map(),
    workloads: new Map(),
    chains: new Map(),
    rotationDays: new Map(),
    runStarts: [],
    keyChanges: 0,
  };

  const untouchedSnapshots = new Map<string, string>();
  for (const person of PEOPLE) {
    world.iam.addUser(person.name, { path: person.path ?? '/apps/', tags: person.tags });
    const seeded = person.keys.map((key) => world.iam.addKey(person.name, key));
    recording.keyStates.set(person.name, []);
    const active = keysOf(world, person.name).filter((key) => key.status === 'Active');
    recording.chains.set(person.name, active.length === 1 ? [active[0]!.accessKeyId] : []);
    recording.rotationDays.set(person.name, []);
    if (person.workload) {
      const key = seeded[person.workload.startsWith]!;
      recording.workloads.set(person.name, {
        person,
        lag: person.workload.lag,
        credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
        requests: [],
        acceptedAfterRun: [],
      });
    }
    if (person.untouchable) untouchedSnapshots.set(person.name, describeKeys(world, person.name));
  }

  for (let day = 0; day < DAYS; day++) {
    if (day > 0) world.clock.advanceDays(1);
    recording.runStarts.push(world.clock.now());

    if (day === REACTIVATION_DAY) {
      // Somebody switches the deactivated old key back on by hand, "just in case".
      const old = keysOf(world, 'svc-reactivated').find((key) => key.status === 'Inactive');
      if (old) {
        old.status = 'Active';
        recording.reactivatedKeyId = old.accessKeyId;
      }
    }

    // The workloads' daily request, before the run.
    for (const workload of recording.workloads.values()) {
      if (workload.switchOnDay !== undefined && day >= workload.switchOnDay) {
        const current = world.vault.readStage(world.secretName(workload.person.name));
        if (current) workload.credentials = current;
        workload.switchOnDay = undefined;
      }
      workload.requests[day] = world.iam.use(workload.credentials);
    }

    // I6: a dry run first, which must change nothing and announce exactly the key changes made next.
    const writesBefore = world.faults.writes().length;
    const dry = await world.plan(true);
    const dryWrites = world.faults
      .writes()
      .slice(writesBefore)
      .filter((op) => op !== 'iam:GenerateCredentialReport');
    if (dryWrites.length > 0)
      recording.violations.dryRun.push(`day ${day}: dry run wrote ${dryWrites.join(', ')}`);

    const published = world.notifier.published.length;
    const result = await world.runDay();
    const announced = dry.users.flatMap((plan) =>
      plan.actions.flatMap((action) =>
        KEY_CHANGING_ACTIONS.has(action.kind) && 'keyId' in action
          ? [`${plan.userName} ${action.kind === 'make-room' ? 'delete' : action.kind} ${action.keyId}`]
          : [],
      ),
    );
    const done = result.outcomes.flatMap((outcome) =>
      outcome.performed
        .filter((action) => KEY_CHANGING_ACTIONS.has(action.kind as ActionKind))
        .map((action) => `${outcome.userName} ${action.kind} ${action.keyId}`),
    );
    recording.keyChanges += done.length;
    if (JSON.stringify(announced.sort()) !== JSON.stringify(done.sort())) {
      recording.violations.dryRun.push(
        `day ${day}: dry run said ${JSON.stringify(announced)}, run did ${JSON.stringify(done)}`,
      );
    }
    for (const failure of result.failures) {
      recording.failures.push(`day ${day}: ${failure.userName}: ${String(failure.error)}`);
    }
    for (const notification of world.notifier.published.slice(published)) {
      recording.notices.push({ day, notification });
    }

    checkDay(recording, day, untouchedSnapshots);
  }
  return recording;
}

/** After each run: record key states, follow rotations, and check the invariants that hold every day. */
function checkDay(recording: Recording, day: number, untouchedSnapshots: Map<string, string>): void {
  const { world, violations } = recording;
  const now = world.clock.now();

  // I1: every key the service created is in the vault, readable, and the secret works.
  for (const { user, key } of world.iam.apiCreatedKeys()) {
    if (!world.vault.storedKeyIds(world.secretName(user.userName)).includes(key.accessKeyId)) {
      violations.vault.push(`day ${day}: ${user.userName}: ${key.accessKeyId} is not in the vault`);
    }
  }

  for (const person of PEOPLE) {
    const name = person.name;
    const keys = keysOf(world, name);
    recording.keyStates.get(name)!.push(keys.map((key) => (key.status === 'Active' ? 'A' : 'I')).join(','));

    // The secret's AWSCURRENT is the newest key, which works; a rotation moves the old one to AWSPREVIOUS.
    const current = world.vault.readStage(world.secretName(name));
    const chain = recording.chains.get(name)!;
    if (current) {
      const newest = keys[keys.length - 1];
      if (current.accessKeyId !== newest?.accessKeyId || !wouldAccept(world, current)) {
        violations.vault.push(
          `day ${day}: ${name}: AWSCURRENT ${current.accessKeyId} is not the newest working key`,
        );
      }
      if (current.UserName !== name)
        violations.vault.push(`day ${day}: ${name}: secret names ${current.UserName}`);
      if (chain[chain.length - 1] !== current.accessKeyId) {
        const previous = world.vault.readStage(world.secretName(name), 'AWSPREVIOUS');
        const lastStored = recording.rotationDays.get(name)!.length > 0 ? chain[chain.length - 1] : undefined;
        if (previous?.accessKeyId !== lastStored) {
          violations.vault.push(
            `day ${day}: ${name}: AWSPREVIOUS is ${previous?.accessKeyId}, expected ${lastStored}`,
          );
        }
        chain.push(current.accessKeyId);
        recording.rotationDays.get(name)!.push(day);
        const workload = recording.workloads.get(name);
        if (workload && workload.lag !== 'stubborn') workload.switchOnDay = day + workload.lag + 1;
      }
    }

    // No active key reaches the maximum age, except where the lifecycle allows it (listed per person).
    for (const key of keys) {
      const age = daysBetween(key.createDate, now);
      const allowed = person.overAgeAllowed === 'always' || (person.overAgeAllowed ?? []).includes(day);
      if (key.status === 'Active' && age >= MAX_KEY_AGE && !allowed) {
        violations.age.push(`day ${day}: ${name}: active key ${key.accessKeyId} is ${age} days old`);
      }
    }

    // I7 and I3 and scope: these users' keys never change.
    if (person.untouchable && describeKeys(world, name) !== untouchedSnapshots.get(name)) {
      violations.untouched.push(`day ${day}: ${name}: keys changed to ${describeKeys(world, name)}`);
    }

    // I5: nothing left half-done, locks released.
    const record = world.ledger.peek(world.accountId, name);
    if (record && (record.inFlight || record.outbox.length > 0 || record.lock)) {
      violations.ledger.push(`day ${day}: ${name}: ledger left ${JSON.stringify(record)}`);
    }

    const workload = recording.workloads.get(name);
    if (workload) workload.acceptedAfterRun[day] = wouldAccept(world, workload.credentials);
  }
}

// ---------------------------------------------------------------------------------------------------

let recording: Recording;

beforeAll(async () => {
  recording = await simulate();
});

const ledgerOf = (name: string): UserLedger | undefined =>
  recording.world.ledger.peek(recording.world.accountId, name);

const noticesOf = (name: string) =>
  recording.notices.filter((notice) => notice.notification.userName === name);

describe('a 120-day timeline of daily runs', () => {
  test('every run succeeds and leaves nothing half-done or locked', () => {
    expect(recording.failures).toEqual([]);
    expect(recording.world.logger.audits('rotation.failed')).toEqual([]);
    expect(recording.violations.ledger).toEqual([]);
  });

  test('every key the service creates is in the vault; AWSCURRENT is always the newest working key (I1)', () => {
    expect(recording.violations.vault).toEqual([]);
    // The check had something to check: 21 rotations happened (one per key.rotated in the tables).
    const rotations = Object.values(EXPECTED)
      .flat()
      .filter(([, event]) => event === 'key.rotated').length;
    expect(rotations).toBe(21);
    expect([...recording.rotationDays.values()].flat()).toHaveLength(rotations);
  });

  test('no active key reaches 90 days, except exempt, foreign or out-of-scope ones and late finds in grace', () => {
    expect(recording.violations.age).toEqual([]);
  });

  test('exempt, out-of-scope and foreign-pair users are never modified (I7, I3)', () => {
    expect(recording.violations.untouched).toEqual([]);
    for (const name of ['vendor-appliance', 'human-outside', 'svc-two-foreign']) {
      expect(recording.world.vault.secrets.has(recording.world.secretName(name))).toBe(false);
      expect(ledgerOf(name)?.history ?? []).toEqual([]);
    }
    // The temporary exemption held through its last day.
    const until = keysOf(recording.world, 'svc-exempt-until');
    expect(recording.keyStates.get('svc-exempt-until')!.slice(0, 21)).toEqual(Array(21).fill('A'));
    expect(until).toHaveLength(2); // rotated again on day 101, old key deactivated on day 108
  });

  test('workloads are never cut off (I2), except the stubborn one, on its enforce day', () => {
    const cutOff: string[] = [];
    for (const [name, workload] of recording.workloads) {
      workload.requests.forEach((ok, day) => {
        if (!ok) cutOff.push(`${name} request on day ${day}`);
      });
      workload.acceptedAfterRun.forEach((ok, day) => {
        if (!ok) cutOff.push(`${name} after run ${day}`);
      });
    }
    // The stubborn workload's key is switched off by the run of day 40 (its age 90), so its requests
    // fail from day 41 on; nobody else's ever does.
    expect(cutOff).toEqual([
      ...range(41, DAYS - 1).map((day) => `svc-stubborn-50 request on day ${day}`),
      ...range(40, DAYS - 1).map((day) => `svc-stubborn-50 after run ${day}`),
    ]);
    const stubborn = noticesOf('svc-stubborn-50').map(({ day, notification }) => [day, notification.event]);
    const enforced = stubborn.filter(([, event]) => event === 'key.enforced');
    expect(enforced[0]).toEqual([40, 'key.enforced']);
    // ...and only after the owner was told, on each day of the postponement.
    expect(
      stubborn.filter(([day, event]) => event === 'key.deactivation-postponed' && Number(day) < 40),
    ).toEqual([
      [37, 'key.deactivation-postponed'],
      [38, 'key.deactivation-postponed'],
      [39, 'key.deactivation-postponed'],
    ]);
    const enforcedNotice = noticesOf('svc-stubborn-50').find((n) => n.notification.event === 'key.enforced');
    expect(enforcedNotice?.notification.details.keyId).toBe(
      recording.workloads.get('svc-stubborn-50')!.credentials.accessKeyId,
    );
  });

  test.each(PEOPLE.map((person) => [person.name, person] as const))(
    '%s: exactly the expected notices, on the expected days, to the right owner',
    (name, person) => {
      const actual = noticesOf(name).map(({ day, notification }) => [day, notification.event]);
      expect(actual).toEqual((EXPECTED[name] ?? []).map(([day, event]) => [day, event]));
      for (const { notification } of noticesOf(name)) {
        expect(notification.owner).toBe(notification.event === 'tags.invalid' ? 'default' : person.owner);
      }
    },
  );

  test.each(PEOPLE.map((person) => [person.name, person] as const))(
    '%s: key states follow the expected events every day',
    (name, person) => {
      expect(recording.keyStates.get(name)).toEqual(expectedKeyStates(person));
    },
  );

  test('the notices name the days the tables name', () => {
    const problems: string[] = [];
    for (const person of PEOPLE) {
      const rows = EXPECTED[person.name] ?? [];
      for (const { day, notification } of noticesOf(person.name)) {
        const { details, event } = notification;
        const check = (field: string, expected: number | undefined) => {
          if (expected === undefined || details[field] !== dateOf(expected)) {
            problems.push(
              `${person.name} day ${day} ${event}: ${field} ${String(details[field])}, expected ${expected === undefined ? '?' : dateOf(expected)}`,
            );
          }
        };
        const row = rows.find(([when, what]) => when === day && what === event);
        if (event === 'key.expiring') check('rotateOn', row?.[2]);
        if (event === 'key.rotated') {
          check('deactivateFrom', day + 7);
          check('enforceOn', row?.[2]);
        }
        if (event === 'key.deactivated' || event === 'key.enforced') check('deleteOn', day + 14);
        if (event === 'key.deactivation-postponed') {
          check('enforceOn', rows.find(([when, what]) => when > day && what === 'key.enforced')?.[0]);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  test('each day runs on its own calendar day, soon after 02:00 UTC', () => {
    const late = recording.runStarts
      .map((at, day) => ({ day, at }))
      .filter(({ day, at }) => dayNumber(at) !== day || at.getTime() - dayStart(day).getTime() > 3_600_000);
    expect(recording.runStarts).toHaveLength(DAYS);
    expect(late).toEqual([]);
  });

  test('owners with a valid tag are subscribed before they are told of a rotation; nobody else is', () => {
    const subscribed = [...recording.world.notifier.subscribed];
    const expected = PEOPLE.filter(
      (person) =>
        person.owner !== 'default' &&
        !person.untouchable &&
        (EXPECTED[person.name] ?? []).some(([, e]) => e === 'key.expiring' || e === 'key.rotated'),
    ).map((person) => person.owner);
    expect(subscribed).toEqual(expect.arrayContaining(expected));
    expect(subscribed.filter((address) => !address.endsWith('@example.com'))).toEqual([]);
    expect(subscribed).not.toContain('vendor@example.com');
    expect(subscribed).not.toContain('ivan@example.com'); // a conflict changes nothing, subscribes no one
  });

  // The owner tag may list several addresses; every one is subscribed (and named in the SNS `owner`
  // attribute), so the second owner of svc-age-60 ('carol@example.com, ops@example.com') hears too.
  test('every address in a multi-address owner tag is subscribed', () => {
    expect([...recording.world.notifier.subscribed]).toContain('ops@example.com');
  });

  // On a user's first rotation the old key was never stored (the service never had its secret), so a
  // key.rotated notice must not claim the old key is labelled AWSPREVIOUS. 12 of the 21 rotations here
  // are first ones.
  test('a key.rotated notice names AWSPREVIOUS only when the old key is in the secret', () => {
    const untrue = recording.notices
      .filter(({ notification }) => notification.event === 'key.rotated')
      .filter(({ notification }) => {
        const stored = recording.world.vault.storedKeyIds(recording.world.secretName(notification.userName));
        return (
          notification.text.includes('AWSPREVIOUS') && !stored.includes(String(notification.details.oldKeyId))
        );
      })
      .map(({ day, notification }) => `${notification.userName} day ${day}`);
    expect(untrue).toEqual([]);
  });

  test('the key switched back on by hand is noticed, given one more grace, then deactivated again', () => {
    const keyId = recording.reactivatedKeyId;
    expect(keyId).toBeDefined();
    const about = noticesOf('svc-reactivated')
      .filter(({ day }) => day >= 17 && day <= 40)
      .map(({ day, notification }) => [day, notification.event, notification.details.keyId]);
    expect(about).toEqual([
      [17, 'key.deactivated', keyId],
      [19, 'key.reactivated', keyId],
      [26, 'key.deactivated', keyId],
      [40, 'key.deleted', keyId],
    ]);
  });

  test('the ledger records each rotation; history is bounded and newest last', () => {
    for (const person of PEOPLE) {
      const record = ledgerOf(person.name);
      const rows = EXPECTED[person.name] ?? [];
      const rotatedOn = rows.filter(([, event]) => event === 'key.rotated').map(([day]) => day);
      const chain = recording.chains.get(person.name)!;
      const rotations = record?.rotations ?? [];
      expect({
        user: person.name,
        rotations: rotations.map((r) => [dayNumber(r.rotatedAt), r.oldKeyId, r.newKeyId]),
      }).toEqual({
        user: person.name,
        rotations: rotatedOn.map((day, i) => [day, chain[i], chain[i + 1]]),
      });
      const history = record?.history ?? [];
      expect(history.length).toBeLessThanOrEqual(HISTORY_LIMIT);
      const times = history.map((entry) => Date.parse(entry.at));
      expect(times).toEqual([...times].sort((a, b) => a - b));
      // Each expected key event writes at least one history entry; busy users hit the bound.
      const recorded = rows.filter(([, event]) => event !== 'keys.conflict' && event !== 'tags.invalid');
      if (recorded.length >= HISTORY_LIMIT) expect(history).toHaveLength(HISTORY_LIMIT);
      const last = recorded[recorded.length - 1];
      if (last) {
        const action =
          { 'key.expiring': 'key.warned', 'key.deactivation-postponed': 'key.postponed' }[
            last[1] as string
          ] ?? last[1];
        const newest = history[history.length - 1];
        expect([person.name, newest && dayNumber(newest.at), newest?.action]).toEqual([
          person.name,
          last[0],
          action,
        ]);
      }
      // Deletion clocks are kept exactly for the keys that are inactive now.
      const inactive = keysOf(recording.world, person.name)
        .filter((key) => key.status === 'Inactive')
        .map((key) => key.accessKeyId);
      if (!person.untouchable) {
        expect([person.name, Object.keys(record?.inactiveSince ?? {}).sort()]).toEqual([
          person.name,
          inactive.sort(),
        ]);
      }
    }
    expect(ledgerOf('svc-age-60')?.history).toHaveLength(HISTORY_LIMIT);
  });

  test('each day a dry run changes nothing and announces exactly the key changes the run then makes (I6)', () => {
    expect(recording.violations.dryRun).toEqual([]);
    const keyEvents = new Set(['key.rotated', 'key.deactivated', 'key.enforced', 'key.deleted']);
    const expected = Object.values(EXPECTED)
      .flat()
      .filter(([, event]) => keyEvents.has(event)).length;
    expect(recording.keyChanges).toBe(expected);
  });

  test('no secret material in notices, logs or the ledger (I4)', () => {
    const { world } = recording;
    const outputs = [
      JSON.stringify(world.notifier.published),
      world.logger.printed.join('\n'),
      [...world.ledger.items.values()].join('\n'),
    ].join('\n');
    expect(world.iam.issuedSecrets).toHaveLength(21);
    expect(world.iam.issuedSecrets.filter((secret) => outputs.includes(secret))).toEqual([]);
  });
});
