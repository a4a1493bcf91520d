/**
 * Promote: the verified key's version becomes AWSCURRENT (the old one AWSPREVIOUS), as the
 * finishSecret step of Secrets Manager's rotation protocol does; what owners read is therefore
 * always a key proven to work. Idempotent: a version already current is left as it is.
 */
import type { SecretDescription, SecretRef } from '../../ports';
import type { UnitOfWork } from './unit-of-work';

/**
 * `known`: the secret as this rotation's store left it, so that the vault need not describe it
 * again; a resumed rotation passes none. A run that lost its lock meanwhile fails at its next ledger
 * write, but its promote is harmless: it is the same key the new lock holder adopts.
 */
export async function promoteVerifiedKey(
  unit: UnitOfWork,
  ref: SecretRef,
  accessKeyId: string,
  known?: SecretDescription,
): Promise<void> {
  await unit.deps.vault.promote(ref, accessKeyId, known);
}
