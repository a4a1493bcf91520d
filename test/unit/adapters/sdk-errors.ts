/**
 * Errors shaped like the ones the AWS SDK v3 throws, for the errors a service does not model
 * (throttling, access denied, timeouts). Modeled errors are built from the client's own classes.
 */
import { inspect } from 'node:util';

export interface SdkErrorOptions {
  readonly message?: string;
  /** Omitted for errors raised below the protocol layer (socket timeouts). */
  readonly fault?: 'client' | 'server';
  readonly status?: number;
}

export function sdkError(name: string, options: SdkErrorOptions = {}): Error {
  const error = new Error(options.message ?? `${name} raised by the test`);
  error.name = name;
  if (options.fault) {
    Object.assign(error, { $fault: options.fault, $metadata: { httpStatusCode: options.status ?? 400 } });
  }
  return error;
}

/** A socket timeout as @smithy/node-http-handler raises it: a plain Error named TimeoutError. */
export function timeoutError(): Error {
  return sdkError('TimeoutError', { message: 'Connection timed out after 1000 ms' });
}

/** Everything an error would show in a log line: message, stack, own properties and its causes. */
export function everythingIn(error: unknown): string {
  return `${String(error)}\n${inspect(error, { depth: 10, showHidden: true })}`;
}

/** Runs `run`, expects it to reject, and returns what it rejected with. */
export async function rejectionOf(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, but the call resolved');
}
