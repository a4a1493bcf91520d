/** Stage 3: the ledger's marks against what IAM shows now (keys changed by hand). */
import type { PolicyRule } from '../situation';

/** A key the ledger remembers as inactive is active again: someone switched it back on by hand. */
export const noteReactivated: PolicyRule = {
  name: 'reactivated by hand',
  decides: 'note-reactivated',
  decide: ({ active, ledger }) => {
    const reactivated = active.filter((key) => ledger?.inactiveSince[key.accessKeyId] !== undefined);
    if (reactivated.length === 0) return undefined;
    return {
      actions: reactivated.map((key) => ({
        kind: 'note-reactivated',
        keyId: key.accessKeyId,
        reason: `key was inactive since ${ledger?.inactiveSince[key.accessKeyId]} and is active again`,
      })),
    };
  },
};

/** Marks of keys that no longer exist in IAM (deleted by hand) are dropped. */
export const forgetGoneKeys: PolicyRule = {
  name: 'deleted by hand',
  decides: 'forget',
  decide: ({ keys, ledger }) => {
    const live = new Set(keys.map((key) => key.accessKeyId));
    const gone = [
      ...new Set(
        [ledger?.inactiveSince, ledger?.warnedKeys, ledger?.reactivatedSeen].flatMap((marks) =>
          Object.keys(marks ?? {}).filter((keyId) => !live.has(keyId)),
        ),
      ),
    ];
    if (gone.length === 0) return undefined;
    return {
      actions: [
        {
          kind: 'forget',
          keyIds: gone,
          reason: 'keys no longer exist in IAM; their ledger marks are dropped',
        },
      ],
    };
  },
};
