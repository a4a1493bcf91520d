/** Stage 1: our own half-done work comes first. */
import type { PolicyRule } from '../situation';

/**
 * A rotation in flight or notices not yet delivered: finish them before anything else, even for a
 * user that has since left the scope or been exempted, since a key we created must end stored or
 * deleted (I1). Nothing else is decided until then.
 */
export const resumeUnfinishedWork: PolicyRule = {
  name: 'resume unfinished work',
  decides: 'resume',
  decide: ({ ledger }) => {
    if (!ledger?.inFlight && (ledger?.outbox.length ?? 0) === 0) return undefined;
    const unconfirmed = ledger?.outbox.flatMap((entry) => (entry.awaits ? [entry.awaits.keyId] : [])) ?? [];
    const what = ledger?.inFlight
      ? `rotation of ${ledger.inFlight.oldKeyId} is in phase ${ledger.inFlight.phase}`
      : unconfirmed.length > 0
        ? `a change to ${unconfirmed.join(', ')} was asked of IAM without an answer`
        : `${ledger?.outbox.length} notice(s) not yet delivered`;
    return { actions: [{ kind: 'resume', reason: `${what}; finishing it before anything else` }] };
  },
};
