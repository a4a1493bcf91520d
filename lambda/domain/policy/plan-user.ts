/**
 * Applies the policy table to one user: given the live keys, tags, the ledger's memory and `now`,
 * which actions are due and why. Pure: no I/O, no clock. The service carries out what this returns.
 */
import { daysBetween } from '../time';
import { situationOf, type Situation } from './situation';
import { POLICY_TABLE } from './table';
import type { KeyStage, PlannedAction, PolicyInput, UserPlan } from './types';

/** Decides what is due for one user. */
export function planUser(input: PolicyInput): UserPlan {
  const situation = situationOf(input);
  const actions: PlannedAction[] = [];
  const stages = new Map<string, KeyStage>();
  const superseded = new Set<string>();
  stages: for (const { rules, combine } of POLICY_TABLE) {
    for (const rule of rules) {
      const verdict = rule.decide(situation);
      if (!verdict) continue;
      actions.push(...(verdict.actions ?? []));
      for (const [keyId, stage] of verdict.stages ?? []) stages.set(keyId, stage);
      for (const keyId of verdict.supersedes ?? []) superseded.add(keyId);
      if (combine === 'ends the plan') break stages;
      if (combine === 'first applies') break;
    }
  }
  // A key deleted to make room is neither tracked nor deleted again.
  const kept = actions.filter(
    (action) =>
      !((action.kind === 'track-inactive' || action.kind === 'delete') && superseded.has(action.keyId)),
  );
  return assemble(situation, kept, stages);
}

/** Whether carrying out the plan would do anything (write IAM, the ledger, or notify). */
export function hasWork(plan: UserPlan): boolean {
  return plan.actions.length > 0;
}

function assemble(
  situation: Situation,
  actions: readonly PlannedAction[],
  stages: ReadonlyMap<string, KeyStage>,
): UserPlan {
  const { user, ledger, now, settings, owner, exemption, ours } = situation;
  const findings: string[] = [];
  // A missing owner is common and already said in every notice's footer; a malformed one is a mistake to fix.
  if (owner.problem && user.tags[settings.ownerTag] !== undefined) {
    findings.push(`owner: ${owner.problem}; notices go to the default recipients`);
  }
  if (exemption?.problem) findings.push(`exemption: ${exemption.problem}`);
  return {
    userName: user.userName,
    path: user.path,
    inScope: situation.scoped,
    owner,
    exemption,
    keys: situation.keys.map((key) => ({
      accessKeyId: key.accessKeyId,
      status: key.status,
      createDate: key.createDate.toISOString(),
      ageDays: daysBetween(key.createDate, now),
      lastUsedDate: key.lastUsedDate?.toISOString(),
      ours: ours.has(key.accessKeyId),
      stage: stages.get(key.accessKeyId) ?? (key.status === 'Active' ? 'current' : 'inactive'),
      inactiveSince: key.status === 'Inactive' ? ledger?.inactiveSince[key.accessKeyId] : undefined,
    })),
    actions,
    findings,
  };
}
