/**
 * Maps AWS SDK v3 errors onto the engine's named errors, so that services never look at SDK codes.
 * The messages keep the SDK's error name and message (which never echo request secrets) and the
 * original error as `cause`.
 */
import { AccessDeniedError, KeyRotationError, ThrottledError, TransientServiceError } from '../domain/errors';

const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ProvisionedThroughputExceededException',
  'RequestThrottled',
  'SlowDown',
]);

const ACCESS_DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'AuthorizationError',
  'AuthorizationErrorException',
  'UnauthorizedOperation',
  'KMSAccessDeniedException',
  'KMSAccessDenied',
]);

const TRANSIENT = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ServiceFailureException',
  'ServiceFailure',
  'InternalServiceError',
  'InternalServiceErrorException',
  'InternalFailure',
  'InternalError',
  'InternalServerError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'ConcurrentModificationException',
  'EntityTemporarilyUnmodifiableException',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'NetworkingError',
]);

interface SdkErrorShape {
  readonly name?: string;
  readonly message?: string;
  readonly code?: string;
  readonly $fault?: 'client' | 'server';
  readonly $metadata?: { readonly httpStatusCode?: number };
}

export function awsErrorName(error: unknown): string {
  const shape = (error ?? {}) as SdkErrorShape;
  return shape.name ?? shape.code ?? 'UnknownError';
}

/**
 * The engine error for an SDK failure. `specific` maps error names that mean something for this
 * call (NoSuchEntity for a user, ResourceNotFound for a secret...) before the generic mapping.
 */
export function mapAwsError(
  error: unknown,
  what: string,
  specific: Readonly<Record<string, (message: string) => KeyRotationError>> = {},
): KeyRotationError {
  if (error instanceof KeyRotationError) return error;
  const shape = (error ?? {}) as SdkErrorShape;
  const name = awsErrorName(error);
  const message = `${what}: ${name}: ${shape.message ?? 'no message'}`;
  const mapped = specific[name];
  if (mapped) return withCause(mapped(message), error);
  if (THROTTLING.has(name)) return new ThrottledError(message, { cause: error });
  if (ACCESS_DENIED.has(name)) return new AccessDeniedError(message, { cause: error });
  if (TRANSIENT.has(name) || shape.$fault === 'server' || (shape.$metadata?.httpStatusCode ?? 0) >= 500) {
    return new TransientServiceError(message, { cause: error });
  }
  return new KeyRotationError(message, { cause: error });
}

function withCause(error: KeyRotationError, cause: unknown): KeyRotationError {
  if (error.cause === undefined) Object.defineProperty(error, 'cause', { value: cause, enumerable: false });
  return error;
}

/** Runs an SDK call and maps its failure. */
export async function call<T>(
  what: string,
  run: () => Promise<T>,
  specific?: Readonly<Record<string, (message: string) => KeyRotationError>>,
): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw mapAwsError(error, what, specific);
  }
}
