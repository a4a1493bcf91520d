/**
 * Set-up shared by the adapter tests: plain SDK clients (pointed at the emulator by env.ts) for
 * arranging state and reading it back, so that what the production adapters did is checked through
 * the real API, not through the adapters themselves.
 */
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';

export const ACCOUNT = '123456789012'; // moto's default account
export const REGION = 'eu-west-1';

/** A customer-managed KMS key in the emulator, as the construct creates one for the stack. */
export async function createKmsKey(description: string): Promise<string> {
  const kms = new KMSClient({});
  try {
    const response = await kms.send(new CreateKeyCommand({ Description: description }));
    const arn = response.KeyMetadata?.Arn;
    if (!arn) throw new Error('kms:CreateKey returned no key ARN');
    return arn;
  } finally {
    kms.destroy();
  }
}

/** Runs `count` asynchronous set-up steps, `width` at a time (moto serves one request at a time). */
export async function inBatches(count: number, width: number, step: (index: number) => Promise<unknown>) {
  for (let start = 0; start < count; start += width) {
    await Promise.all(
      Array.from({ length: Math.min(width, count - start) }, (_, offset) => step(start + offset)),
    );
  }
}

/** The rejection of a promise that must fail (a resolution fails the test with what it returned). */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  let value: unknown;
  try {
    value = await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
}
