/**
 * Verify: prove the new key works before anyone is told to use it (the testSecret step of Secrets
 * Manager's rotation protocol). Read-only, so safe to repeat: a rotation resumed in phase `stored`
 * simply verifies again.
 */
import {
  CredentialsNotYetValidError,
  ThrottledError,
  TransientServiceError,
  VerificationError,
} from '../../domain/errors';
import type { UserSnapshot } from '../../domain/model';
import type { SecretRef } from '../../ports';
import type { UnitOfWork } from './unit-of-work';

/**
 * IAM takes 5-15 s to propagate a new key: the first attempt waits this long, so that a rotation
 * usually needs one or two STS calls rather than a volley of refusals.
 */
export const FIRST_ATTEMPT_AFTER_MS = 5_000;
/** Then capped exponential backoff: 4 s, 8 s, 8 s... */
const RETRY_DELAY_MS = 4_000;
const MAX_RETRY_DELAY_MS = 8_000;

/**
 * Signs STS GetCallerIdentity with the key as stored in the vault (so that what is proven is what
 * owners will read), retrying while IAM propagates the key, for at most verifyTimeoutMs. Returns the
 * number of attempts. Throws VerificationError (retryable) if STS has not accepted it by then, or if
 * the key signs as anyone but its user.
 */
export async function verifyStoredKey(
  unit: UnitOfWork,
  ref: SecretRef,
  user: Pick<UserSnapshot, 'arn'>,
  accessKeyId: string,
): Promise<number> {
  const { clock, vault, verifier } = unit.deps;
  const timeoutMs = unit.options.verifyTimeoutMs;
  const credentials = await vault.read(ref, accessKeyId);
  const deadline = clock.now().getTime() + timeoutMs;
  await clock.sleep(Math.min(FIRST_ATTEMPT_AFTER_MS, timeoutMs));
  let delay = RETRY_DELAY_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      const identity = await verifier.callerIdentity(credentials);
      if (identity.arn !== user.arn || identity.account !== unit.accountId) {
        throw new VerificationError(
          `new key ${accessKeyId} signs as ${identity.arn} in account ${identity.account}, expected ${user.arn} in account ${unit.accountId}`,
        );
      }
      return attempt;
    } catch (error) {
      const transient =
        error instanceof CredentialsNotYetValidError ||
        error instanceof ThrottledError ||
        error instanceof TransientServiceError;
      if (!transient) throw error;
      if (clock.now().getTime() + delay > deadline) {
        throw new VerificationError(
          `new key ${accessKeyId} of ${unit.userName} in account ${unit.accountId} was not accepted by STS within ${Math.round(timeoutMs / 1000)} s; the old key is untouched and the next run verifies again`,
          { cause: error },
        );
      }
      await clock.sleep(delay);
      delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
    }
  }
}
