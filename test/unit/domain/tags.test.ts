import {
  DEFAULT_OWNER,
  inScope,
  pathFromArn,
  resolveExemption,
  resolveOwner,
} from '../../../lambda/domain/tags';
import { NOW } from './builders';

const OWNER = 'key-rotation:owner';
const EXEMPT = 'key-rotation:exempt';

describe('resolveOwner', () => {
  test.each([
    { value: 'alice@example.com', recipients: ['alice@example.com'] },
    { value: ' Alice@Example.COM ', recipients: ['alice@example.com'] },
    { value: 'alice@example.com bob@example.org', recipients: ['alice@example.com', 'bob@example.org'] },
    { value: 'alice@example.com,bob@example.org', recipients: ['alice@example.com', 'bob@example.org'] },
    { value: 'alice@example.com; bob@example.org', recipients: ['alice@example.com', 'bob@example.org'] },
    { value: 'alice@example.com ALICE@example.com', recipients: ['alice@example.com'] },
    { value: 'team+keys@sub.example.co.uk', recipients: ['team+keys@sub.example.co.uk'] },
  ])('"$value" -> $recipients', ({ value, recipients }) => {
    const owner = resolveOwner({ [OWNER]: value }, OWNER);

    expect(owner).toEqual({ recipients, owner: recipients[0] });
  });

  test.each<{ tags: Record<string, string>; problem: string }>([
    { tags: {}, problem: `no ${OWNER} tag` },
    { tags: { [OWNER]: '' }, problem: `no ${OWNER} tag` },
    { tags: { [OWNER]: ' \t ' }, problem: `no ${OWNER} tag` },
    { tags: { 'Key-Rotation:Owner': 'alice@example.com' }, problem: `no ${OWNER} tag` },
    { tags: { [OWNER]: 'alice' }, problem: `tag ${OWNER} is not a list of e-mail addresses ("alice")` },
    {
      tags: { [OWNER]: 'alice@example' },
      problem: `tag ${OWNER} is not a list of e-mail addresses ("alice@example")`,
    },
    {
      tags: { [OWNER]: 'alice@@example.com' },
      problem: `tag ${OWNER} is not a list of e-mail addresses ("alice@@example.com")`,
    },
    {
      tags: { [OWNER]: 'alice@example.com, team-payments' },
      problem: `tag ${OWNER} is not a list of e-mail addresses ("alice@example.com, team-payments")`,
    },
    { tags: { [OWNER]: ',;' }, problem: `tag ${OWNER} is not a list of e-mail addresses (",;")` },
  ])('$tags -> the default recipients, because: $problem', ({ tags, problem }) => {
    const owner = resolveOwner(tags, OWNER);

    expect(owner).toEqual({ recipients: [DEFAULT_OWNER], owner: DEFAULT_OWNER, problem });
  });

  test('reads the tag named in the settings', () => {
    const owner = resolveOwner({ [OWNER]: 'wrong@example.com', team: 'right@example.com' }, 'team');

    expect(owner.owner).toBe('right@example.com');
  });
});

describe('resolveExemption', () => {
  test.each([
    { value: 'break-glass', reason: 'break-glass', until: undefined, applies: true },
    { value: '', reason: 'no reason given', until: undefined, applies: true },
    {
      value: 'reason=vendor SDK pins the key',
      reason: 'vendor SDK pins the key',
      until: undefined,
      applies: true,
    },
    { value: 'legacy app; until=2026-06-01', reason: 'legacy app', until: '2026-06-01', applies: true },
    { value: 'legacy app until=2026-06-02', reason: 'legacy app', until: '2026-06-02', applies: true },
    { value: 'until=2026-05-31 legacy app', reason: 'legacy app', until: '2026-05-31', applies: false },
    { value: 'UNTIL = 2030-12-31', reason: 'no reason given', until: '2030-12-31', applies: true },
    { value: 'migration until=2024-02-29', reason: 'migration', until: '2024-02-29', applies: false },
    // `until` without `=` is part of the reason, not an expiry.
    { value: 'exempt until the audit', reason: 'exempt until the audit', until: undefined, applies: true },
  ])('"$value" -> reason "$reason", until $until, applies $applies', ({ value, reason, until, applies }) => {
    const exemption = resolveExemption({ [EXEMPT]: value }, EXEMPT, NOW);

    expect(exemption).toBeDefined();
    expect(exemption!.reason).toBe(reason);
    expect(exemption!.until?.toISOString()).toBe(until === undefined ? undefined : `${until}T00:00:00.000Z`);
    expect(exemption!.applies).toBe(applies);
    expect(exemption!.problem).toBeUndefined();
  });

  test.each([
    { now: '2026-06-30T00:00:00Z', applies: true },
    { now: '2026-06-30T23:59:59Z', applies: true },
    { now: '2026-07-01T00:00:00Z', applies: false },
  ])('until=2026-06-30 is inclusive: at $now applies is $applies', ({ now, applies }) => {
    const exemption = resolveExemption({ [EXEMPT]: 'until=2026-06-30' }, EXEMPT, new Date(now));

    expect(exemption?.applies).toBe(applies);
  });

  test.each([
    'until=2026-02-30',
    'until=2026-13-01',
    'until=30/06/2026',
    'until=',
    'until=2026-6-1',
    'until=tomorrow',
  ])('an unreadable expiry "%s" keeps the exemption in force and says how to write it', (value) => {
    const exemption = resolveExemption({ [EXEMPT]: `legacy ${value}` }, EXEMPT, NOW);

    expect(exemption?.applies).toBe(true);
    expect(exemption?.until).toBeUndefined();
    expect(exemption?.reason).toBe('legacy');
    expect(exemption?.problem).toBe(
      `tag ${EXEMPT} has an unreadable expiry ${JSON.stringify(value.slice('until='.length))}; write until=YYYY-MM-DD`,
    );
  });

  test('no tag, no exemption', () => {
    expect(resolveExemption({ [OWNER]: 'alice@example.com' }, EXEMPT, NOW)).toBeUndefined();
  });
});

describe('inScope', () => {
  test.each([
    { path: '/', include: ['/'], exclude: [], expected: true },
    { path: '/ci/', include: ['/'], exclude: [], expected: true },
    { path: '/ci/deploy/', include: ['/ci/'], exclude: [], expected: true },
    { path: '/', include: ['/ci/'], exclude: [], expected: false },
    { path: '/cicd/', include: ['/ci/'], exclude: [], expected: false },
    { path: '/ci/', include: ['/ci/', '/apps/'], exclude: [], expected: true },
    { path: '/apps/x/', include: ['/ci/', '/apps/'], exclude: [], expected: true },
    { path: '/ci/', include: ['/'], exclude: ['/ci/'], expected: false },
    { path: '/ci/deploy/', include: ['/'], exclude: ['/ci/'], expected: false },
    { path: '/ci/', include: ['/ci/'], exclude: ['/ci/'], expected: false },
    { path: '/ci/', include: [], exclude: [], expected: false },
  ])(
    'path $path, include $include, exclude $exclude -> $expected',
    ({ path, include, exclude, expected }) => {
      expect(inScope(path, include, exclude)).toBe(expected);
    },
  );
});

describe('pathFromArn', () => {
  test.each([
    { arn: 'arn:aws:iam::123456789012:user/alice', userName: 'alice', path: '/' },
    { arn: 'arn:aws:iam::123456789012:user/ci/deploy/bot', userName: 'bot', path: '/ci/deploy/' },
    {
      arn: 'arn:aws-us-gov:iam::123456789012:user/division/abc/alice',
      userName: 'alice',
      path: '/division/abc/',
    },
    { arn: 'arn:aws:iam::123456789012:user/a.b+c=d,e@f-g_h', userName: 'a.b+c=d,e@f-g_h', path: '/' },
    { arn: 'arn:aws:iam::123456789012:root', userName: '<root_account>', path: '/' },
    { arn: '', userName: 'alice', path: '/' },
  ])('$arn -> $path', ({ arn, userName, path }) => {
    expect(pathFromArn(arn, userName)).toBe(path);
  });
});
