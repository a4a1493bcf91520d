/**
 * The rotation policy: given one user's live keys, tags, the ledger's memory and `now`, which actions
 * are due and why. Pure: no I/O, no clock. The rules, in order, are in table.ts.
 */
export type { ActionKind, KeyAssessment, KeyStage, PlannedAction, PolicyInput, UserPlan } from './types';
export { KEY_CHANGING_ACTIONS } from './types';
export { hasWork, planUser } from './plan-user';
export { POLICY_TABLE, type PolicyStage } from './table';
