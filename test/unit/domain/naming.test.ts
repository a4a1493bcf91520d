import {
  accessKeyIdFromToken,
  ownerTopicName,
  ownerTopicPrefixFor,
  topicArnBeside,
  secretNameFor,
  secretPrefixProblem,
  secretVersionToken,
} from '../../../lambda/domain/naming';

describe('secretNameFor', () => {
  test.each([
    { prefix: 'iam-keys', userName: 'alice', name: 'iam-keys/111122223333/alice' },
    {
      prefix: 'org/iam-keys',
      userName: 'ci.bot+deploy@x_y-z',
      name: 'org/iam-keys/111122223333/ci.bot+deploy@x_y-z',
    },
    { prefix: 'iam-keys', userName: 'a,b', name: 'iam-keys/111122223333/a=2Cb' },
    { prefix: 'iam-keys', userName: ',a,,b,', name: 'iam-keys/111122223333/=2Ca=2C=2Cb=2C' },
  ])('$prefix + $userName -> $name', ({ prefix, userName, name }) => {
    expect(secretNameFor(prefix, '111122223333', userName)).toBe(name);
  });

  test('every character of any IAM user name ends up allowed in a secret name', () => {
    // IAM user names: letters, digits and +=,.@_- ; Secrets Manager names: letters, digits and /_+=.@-
    const userName = `${'a'.repeat(20)}Z09+=,.@_-`;

    const name = secretNameFor('iam-keys', '111122223333', userName);

    expect(name).toMatch(/^[A-Za-z0-9/_+=.@-]+$/);
  });

  test('the longest names stay within the 512-character limit of Secrets Manager', () => {
    const name = secretNameFor('p'.repeat(200), '111122223333', ','.repeat(64));

    expect(name.length).toBeLessThanOrEqual(512);
  });
});

describe('secretPrefixProblem', () => {
  test.each(['iam-keys', 'org/iam-keys', 'a', 'A0_+=.@-/x', 'p'.repeat(200)])(
    '"%s" is accepted',
    (prefix) => {
      expect(secretPrefixProblem(prefix)).toBeUndefined();
    },
  );

  test.each([
    { prefix: '' },
    { prefix: '/iam-keys' },
    { prefix: 'iam-keys/' },
    { prefix: 'iam keys' },
    { prefix: 'iam,keys' },
    { prefix: 'iam*keys' },
    { prefix: 'p'.repeat(201) },
    { prefix: 42 },
    { prefix: undefined },
  ])('$prefix is refused with a message that names the setting', ({ prefix }) => {
    expect(secretPrefixProblem(prefix)).toBe(
      `secretPrefix must be 1-200 characters of letters, digits and /_+=.@- without a leading or trailing "/" (got ${JSON.stringify(prefix)})`,
    );
  });
});

describe('secret version tokens', () => {
  test.each(['AKIAIOSFODNN7EXAMPLE', 'AKIA0000000000000000', 'ASIAABCDEFGHIJKLMNOP'])(
    'the token for %s is deterministic, long enough and maps back to the key id',
    (keyId) => {
      const token = secretVersionToken(keyId);

      expect(secretVersionToken(keyId)).toBe(token);
      expect(token.length).toBeGreaterThanOrEqual(32);
      expect(token.length).toBeLessThanOrEqual(64);
      expect(accessKeyIdFromToken(token)).toBe(keyId);
    },
  );

  test('tokens of different keys differ', () => {
    expect(secretVersionToken('AKIAIOSFODNN7EXAMPLE')).not.toBe(secretVersionToken('AKIAIOSFODNN7EXAMPLF'));
  });

  test('the shortest key id (16 characters) still gives a token of at least 32 characters', () => {
    expect(secretVersionToken('AKIA123456789012').length).toBeGreaterThanOrEqual(32);
  });

  test.each([
    'a1b2c3d4-5678-90ab-cdef-EXAMPLE11111',
    '',
    'iam-key-rotation',
    'IAM-KEY-ROTATION-AKIAIOSFODNN7EXAMPLE',
  ])('a version id that is not ours ("%s") maps to no key', (token) => {
    expect(accessKeyIdFromToken(token)).toBeUndefined();
  });
});

describe('owner topics', () => {
  const prefix = ownerTopicPrefixFor('iam-key-rotation');

  test('the prefix is the secret prefix made a topic name, with a hash of the exact prefix', () => {
    expect(prefix).toBe('iam-key-rotation-owner-4a09c2-');
    // Prefixes that read the same as topic names stay apart...
    expect(ownerTopicPrefixFor('acme/keys')).not.toBe(ownerTopicPrefixFor('acme-keys'));
    // ...and one deployment's grant (<prefix>*) does not reach another's topics.
    const other = ownerTopicPrefixFor('iam-key-rotation-owner-x');
    expect(other.startsWith(prefix)).toBe(false);
  });

  test.each([
    'alice@example.com',
    'Team.A+alerts@Sub.Example.co.uk',
    `${'very-long-local-part.'.repeat(12)}@example.com`,
  ])('%s gets a valid SNS topic name (1-256 of letters, digits, _ and -)', (address) => {
    const name = ownerTopicName(prefix, address);
    expect(name).toMatch(/^[A-Za-z0-9_-]{1,256}$/);
    expect(name.startsWith(prefix)).toBe(true);
  });

  test('one topic per address, whatever its case; addresses that read alike get different topics', () => {
    expect(ownerTopicName(prefix, 'Alice@Example.com')).toBe(ownerTopicName(prefix, 'alice@example.com'));
    expect(ownerTopicName(prefix, 'alice@example.com')).toBe(
      'iam-key-rotation-owner-4a09c2-alice_at_example-com-' +
        ownerTopicName(prefix, 'alice@example.com').slice(-16),
    );
    expect(ownerTopicName(prefix, 'a.b@example.com')).not.toBe(ownerTopicName(prefix, 'a-b@example.com'));
    const names = new Set(
      Array.from({ length: 10_000 }, (_, index) => ownerTopicName(prefix, `owner-${index}@example.com`)),
    );
    expect(names.size).toBe(10_000);
  });

  test('the ARN of a topic next to another (same partition, region and account)', () => {
    expect(topicArnBeside('arn:aws-cn:sns:cn-north-1:123456789012:notices', 'x-owner-1')).toBe(
      'arn:aws-cn:sns:cn-north-1:123456789012:x-owner-1',
    );
  });
});
