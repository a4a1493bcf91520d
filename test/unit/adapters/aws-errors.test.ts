import { awsErrorName, call, mapAwsError } from '../../../lambda/adapters/aws-errors';
import { SDK_CLIENT_CONFIG } from '../../../lambda/adapters/sdk-config';
import {
  AccessDeniedError,
  KeyRotationError,
  NoSuchUserError,
  ThrottledError,
  TransientServiceError,
} from '../../../lambda/domain/errors';
import { sdkError, timeoutError } from './sdk-errors';

describe('mapAwsError', () => {
  test.each([
    ['Throttling (IAM, STS)', sdkError('Throttling', { fault: 'client' }), ThrottledError, true],
    ['ThrottlingException', sdkError('ThrottlingException', { fault: 'client' }), ThrottledError, true],
    [
      'ProvisionedThroughputExceededException',
      sdkError('ProvisionedThroughputExceededException', { fault: 'client' }),
      ThrottledError,
      true,
    ],
    [
      'TooManyRequestsException',
      sdkError('TooManyRequestsException', { fault: 'client' }),
      ThrottledError,
      true,
    ],
    ['AccessDenied', sdkError('AccessDenied', { fault: 'client', status: 403 }), AccessDeniedError, false],
    [
      'AccessDeniedException',
      sdkError('AccessDeniedException', { fault: 'client' }),
      AccessDeniedError,
      false,
    ],
    [
      'AuthorizationError (SNS)',
      sdkError('AuthorizationError', { fault: 'client', status: 403 }),
      AccessDeniedError,
      false,
    ],
    ['a socket TimeoutError', timeoutError(), TransientServiceError, true],
    ['ECONNRESET', sdkError('ECONNRESET'), TransientServiceError, true],
    [
      'ServiceFailure',
      sdkError('ServiceFailure', { fault: 'server', status: 500 }),
      TransientServiceError,
      true,
    ],
    [
      'an unknown $fault server',
      sdkError('Mystery', { fault: 'server', status: 400 }),
      TransientServiceError,
      true,
    ],
    ['an unknown 503', sdkError('Mystery', { fault: 'client', status: 503 }), TransientServiceError, true],
    [
      'an unknown client error',
      sdkError('ValidationError', { fault: 'client', status: 400 }),
      KeyRotationError,
      false,
    ],
  ] as const)('%s', (_name, error, expected, retryable) => {
    const mapped = mapAwsError(error, 'svc:Op');

    expect(mapped).toBeInstanceOf(expected);
    expect(mapped.constructor).toBe(expected);
    expect(mapped.retryable).toBe(retryable);
    expect(mapped.cause).toBe(error);
    expect(mapped.message).toBe(`svc:Op: ${error.name}: ${error.message}`);
  });

  test('a specific mapping wins over the generic one, and keeps the SDK error as cause', () => {
    const error = sdkError('Throttling', { fault: 'client' });

    const mapped = mapAwsError(error, 'svc:Op', {
      Throttling: (message) => new NoSuchUserError(`custom: ${message}`),
    });

    expect(mapped).toBeInstanceOf(NoSuchUserError);
    expect(mapped.message).toBe('custom: svc:Op: Throttling: Throttling raised by the test');
    expect(mapped.cause).toBe(error);
  });

  test('an engine error passes through unchanged', () => {
    const original = new ThrottledError('already mapped');

    expect(mapAwsError(original, 'svc:Op')).toBe(original);
  });

  test('a thrown non-error still becomes a KeyRotationError', () => {
    const mapped = mapAwsError(undefined, 'svc:Op');

    expect(mapped).toBeInstanceOf(KeyRotationError);
    expect(mapped.message).toBe('svc:Op: UnknownError: no message');
  });

  test('awsErrorName falls back to a code, then to UnknownError', () => {
    expect(awsErrorName({ code: 'ETIMEDOUT' })).toBe('ETIMEDOUT');
    expect(awsErrorName(null)).toBe('UnknownError');
  });
});

describe('call', () => {
  test('returns the result of a successful call', async () => {
    await expect(call('svc:Op', async () => 42)).resolves.toBe(42);
  });

  test('rejects with the mapped error', async () => {
    await expect(
      call('svc:Op', async () => {
        throw sdkError('Throttling', { fault: 'client' });
      }),
    ).rejects.toThrow(ThrottledError);
  });
});

test('default clients retry adaptively (client-side rate limiting) up to 8 attempts, each time-limited', () => {
  expect(SDK_CLIENT_CONFIG).toEqual({
    retryMode: 'adaptive',
    maxAttempts: 8,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000, throwOnRequestTimeout: true },
  });
});
