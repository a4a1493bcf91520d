import {
  accessKeyIdFromToken,
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
