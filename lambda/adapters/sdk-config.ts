/**
 * One place for the SDK client settings: adaptive retries (client-side rate limiting on throttling),
 * time limits on every request, and the standard configuration chain otherwise (region, credentials,
 * AWS_ENDPOINT_URL).
 */
export const SDK_CLIENT_CONFIG = {
  retryMode: 'adaptive',
  maxAttempts: 8,
  // An endpoint that accepts a connection and never answers must not hold a run until the Lambda
  // timeout: each attempt gives up (and is retried) after these.
  requestHandler: {
    connectionTimeout: 5_000,
    requestTimeout: 30_000,
    throwOnRequestTimeout: true,
  },
} as const;
