import { renderNotice, type NoticeContext, type NoticeFacts } from '../../../lambda/domain/notices';

const OLD = 'AKIAOLDKEY0000000001';
const NEW = 'AKIANEWKEY0000000002';
const SECRET_NAME = 'iam-keys/111122223333/alice';

const context: NoticeContext = {
  accountId: '111122223333',
  userName: 'alice',
  owner: 'alice@example.com',
  recipients: ['alice@example.com', 'team@example.com'],
  secretName: SECRET_NAME,
};

interface Case {
  readonly facts: NoticeFacts;
  readonly subject: string;
  /** Strings the text must contain. */
  readonly says: readonly string[];
  /** The event-specific part of `details`. */
  readonly details: Record<string, string | number | boolean | null>;
}

const CASES: readonly Case[] = [
  {
    facts: { event: 'key.expiring', keyId: OLD, rotateOn: '2026-06-05', graceDays: 7 },
    subject: 'Access key of alice will be rotated on 2026-06-05',
    says: [OLD, SECRET_NAME, '2026-06-05', '7 days'],
    details: { keyId: OLD, rotateOn: '2026-06-05' },
  },
  {
    facts: {
      event: 'key.rotated',
      oldKeyId: OLD,
      newKeyId: NEW,
      deactivateFrom: '2026-06-08',
      enforceOn: '2026-06-11',
    },
    subject: `New access key for alice is in ${SECRET_NAME}`,
    says: [OLD, NEW, SECRET_NAME, 'AWSCURRENT', '2026-06-08', '2026-06-11'],
    details: {
      oldKeyId: OLD,
      newKeyId: NEW,
      deactivateFrom: '2026-06-08',
      enforceOn: '2026-06-11',
      covered: true,
    },
  },
  ...(
    [
      [
        { why: 'path', path: '/legacy/' },
        'The rotation service no longer covers this user: its path /legacy/ is outside the paths it rotates',
        "will not act on this user's keys again.",
      ],
      [
        { why: 'account' },
        'The rotation service no longer covers account 111122223333',
        "will not act on this user's keys again.",
      ],
      [
        { why: 'exempt', reason: 'vendor appliance', until: '2026-12-31' },
        'This user is exempt from rotation (vendor appliance, until 2026-12-31).',
        "will not act on this user's keys again while the exemption applies.",
      ],
    ] as const
  ).map(([notCovered, why, until]): Case => ({
    facts: {
      event: 'key.rotated',
      oldKeyId: OLD,
      newKeyId: NEW,
      deactivateFrom: '2026-06-08',
      enforceOn: '2026-06-11',
      notCovered,
    },
    subject: `ACTION NEEDED: retire the old access key of alice yourself (new key in ${SECRET_NAME})`,
    says: [
      `A new access key ${NEW} was created`,
      `It is stored in the secret ${SECRET_NAME} under the label AWSCURRENT, as usual.`,
      why,
      until,
      `The old key ${OLD} is still active, and the service will not deactivate or delete it. Retire it yourself: switch every workload to the new key in ${SECRET_NAME}, then deactivate ${OLD} in IAM, and delete it once nothing uses it`,
    ],
    details: {
      oldKeyId: OLD,
      newKeyId: NEW,
      deactivateFrom: null,
      enforceOn: null,
      covered: false,
      notCovered: notCovered.why,
    },
  })),
  {
    facts: { event: 'key.deactivated', keyId: OLD, newKeyId: NEW, deleteOn: '2026-06-22' },
    subject: 'Old access key of alice deactivated',
    says: [OLD, NEW, SECRET_NAME, '2026-06-22'],
    details: { keyId: OLD, newKeyId: NEW, deleteOn: '2026-06-22' },
  },
  {
    facts: {
      event: 'key.deactivation-postponed',
      keyId: OLD,
      newKeyId: NEW,
      lastUsed: '2026-05-31T22:10:00.000Z',
      enforceOn: '2026-06-11',
    },
    subject: 'ACTION NEEDED: old access key of alice is still in use',
    says: [OLD, NEW, SECRET_NAME, '2026-05-31T22:10:00.000Z', '2026-06-11'],
    details: { keyId: OLD, newKeyId: NEW, lastUsed: '2026-05-31T22:10:00.000Z', enforceOn: '2026-06-11' },
  },
  {
    facts: { event: 'key.enforced', keyId: OLD, newKeyId: NEW, deleteOn: '2026-06-25' },
    subject: 'Old access key of alice deactivated at the maximum age',
    says: [OLD, NEW, SECRET_NAME, '2026-06-25'],
    details: { keyId: OLD, newKeyId: NEW, deleteOn: '2026-06-25' },
  },
  {
    facts: { event: 'key.deleted', keyId: OLD, reason: 'inactive for 14 days' },
    subject: 'Inactive access key of alice deleted',
    says: [OLD, 'inactive for 14 days'],
    details: { keyId: OLD, reason: 'inactive for 14 days' },
  },
  {
    facts: {
      event: 'key.reaped',
      keyId: OLD,
      reason: 'never used: unused for 45 days',
      deleteOn: '2026-06-15',
    },
    subject: 'Unused access key of alice deactivated',
    says: [OLD, 'never used: unused for 45 days', '2026-06-15'],
    details: { keyId: OLD, reason: 'never used: unused for 45 days', deleteOn: '2026-06-15' },
  },
  {
    facts: {
      event: 'key.reactivated',
      keyId: OLD,
      reason: 'key was inactive since 2026-05-30 and is active again',
    },
    subject: 'Access key of alice was reactivated by hand',
    says: [OLD, 'key was inactive since 2026-05-30', 'one more grace period'],
    details: { keyId: OLD, reason: 'key was inactive since 2026-05-30 and is active again' },
  },
  {
    facts: { event: 'keys.conflict', keyIds: [OLD, NEW] },
    subject: 'ACTION NEEDED: alice has two active access keys',
    says: [`${OLD}, ${NEW}`, 'Nothing was changed'],
    details: { keyIds: `${OLD},${NEW}` },
  },
  {
    facts: {
      event: 'secret.conflict',
      reason: `a secret named ${SECRET_NAME} exists and was not created by the service`,
    },
    subject: 'ACTION NEEDED: cannot rotate the access key of alice',
    says: [SECRET_NAME, 'Nothing was changed'],
    details: { reason: `a secret named ${SECRET_NAME} exists and was not created by the service` },
  },
  {
    facts: {
      event: 'tags.invalid',
      findings: ['owner: tag key-rotation:owner is not a list of e-mail addresses ("bob")', 'exemption: bad'],
    },
    subject: 'Check the rotation tags of alice',
    says: ['- owner: tag key-rotation:owner is not a list of e-mail addresses ("bob")', '- exemption: bad'],
    details: {
      findings: 'owner: tag key-rotation:owner is not a list of e-mail addresses ("bob"); exemption: bad',
    },
  },
];

describe('renderNotice', () => {
  test('key.rotated for a user no longer covered promises no date', () => {
    const notice = renderNotice(
      context,
      {
        event: 'key.rotated',
        oldKeyId: OLD,
        newKeyId: NEW,
        deactivateFrom: '2026-06-08',
        enforceOn: '2026-06-11',
        notCovered: { why: 'exempt', reason: 'legacy' },
      },
      'd',
    );

    expect(notice.text).not.toContain('2026-06-08');
    expect(notice.text).not.toContain('2026-06-11');
    expect(notice.text).not.toContain('will be deactivated from');
    expect(notice.text).toContain('This user is exempt from rotation (legacy).');
  });

  test.each(CASES.map((entry) => [entry.facts.event, entry] as const))('%s', (_event, entry) => {
    // Act
    const notice = renderNotice(context, entry.facts, `dedupe/${entry.facts.event}`);

    // Assert
    expect(notice.event).toBe(entry.facts.event);
    expect(notice.subject).toBe(entry.subject);
    for (const fragment of entry.says) expect(notice.text).toContain(fragment);
    expect(notice.text).toContain('IAM user alice in account 111122223333');
    expect(notice.text).toContain('The secret itself is never sent by e-mail; read it from Secrets Manager.');
    expect(notice.details).toEqual({
      event: entry.facts.event,
      accountId: '111122223333',
      userName: 'alice',
      secretName: SECRET_NAME,
      ...entry.details,
    });
    expect(notice).toMatchObject({
      accountId: '111122223333',
      userName: 'alice',
      owner: 'alice@example.com',
      recipients: ['alice@example.com', 'team@example.com'],
      dedupeId: `dedupe/${entry.facts.event}`,
    });
  });

  test.each(CASES.map((entry) => [entry.facts.event, entry] as const))(
    '%s: a subject SNS accepts and details that survive JSON',
    (_event, entry) => {
      const notice = renderNotice(context, entry.facts, 'd');

      // SNS: under 100 characters, printable ASCII, no line breaks.
      expect(notice.subject.length).toBeLessThan(100);
      expect(notice.subject).toMatch(/^[\x20-\x7e]+$/);
      expect(JSON.parse(JSON.stringify(notice.details))).toEqual(notice.details);
      for (const value of Object.values(notice.details)) {
        expect(['string', 'number', 'boolean'].includes(typeof value) || value === null).toBe(true);
      }
    },
  );

  test('nothing shaped like a secret access key appears in any notice', () => {
    // The renderer has no secret input; this guards against one being added and echoed.
    const secretShape = /[A-Za-z0-9/+]{40}/;

    for (const entry of CASES) {
      const notice = renderNotice(context, entry.facts, 'd');
      const output = [notice.subject, notice.text, JSON.stringify(notice.details), notice.dedupeId].join(
        '\n',
      );

      expect(output).not.toMatch(secretShape);
    }
  });

  test('a default recipient is told why they receive the notice', () => {
    const notice = renderNotice(
      { ...context, owner: 'default', recipients: ['default'], ownerProblem: 'no key-rotation:owner tag' },
      { event: 'key.deleted', keyId: OLD, reason: 'inactive for 14 days' },
      'd',
    );

    expect(notice.owner).toBe('default');
    expect(notice.recipients).toEqual(['default']);
    expect(notice.text).toContain('You receive this as a default recipient: no key-rotation:owner tag.');
  });

  test('an owner is not told they are a default recipient', () => {
    const notice = renderNotice(context, { event: 'key.deleted', keyId: OLD, reason: 'r' }, 'd');

    expect(notice.text).not.toContain('default recipient');
  });

  test('the text is the body, a blank line, then the footer', () => {
    const notice = renderNotice(
      context,
      { event: 'key.deleted', keyId: OLD, reason: 'inactive for 14 days' },
      'd',
    );

    expect(notice.text).toBe(
      [
        `The inactive access key ${OLD} of IAM user alice in account 111122223333 was deleted: inactive for 14 days.`,
        '',
        'Sent by iam-key-rotation. The secret itself is never sent by e-mail; read it from Secrets Manager.',
      ].join('\n'),
    );
  });

  test.each(CASES.map((entry) => [entry.facts.event, entry] as const))(
    '%s: the subject stays under 100 characters for the longest user and secret names',
    (_event, entry) => {
      const userName = `${'u'.repeat(60)}+=.@`;
      const longContext = {
        ...context,
        userName,
        secretName: `${'p'.repeat(200)}/111122223333/${userName}`,
      };

      const notice = renderNotice(longContext, entry.facts, 'd');

      expect(notice.subject.length).toBeLessThan(100);
      expect(notice.details.userName).toBe(userName);
      expect(notice.details.secretName).toBe(longContext.secretName);
    },
  );
});
