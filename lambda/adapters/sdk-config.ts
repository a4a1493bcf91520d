/**
 * One place for the SDK client settings: adaptive retries (client-side rate limiting on throttling),
 * and the standard configuration chain otherwise (region, credentials, AWS_ENDPOINT_URL).
 */
export const SDK_CLIENT_CONFIG = {
  retryMode: 'adaptive',
  maxAttempts: 8,
} as const;
