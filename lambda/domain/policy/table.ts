/**
 * The rotation policy as one table: the rules in the order they are applied, grouped by lifecycle
 * stage. Each rule is a pure function of the user's situation (rules/*.ts); planUser (plan-user.ts)
 * applies the table. The order of the rows is also the order of the actions in a plan, which is the
 * order the rotator carries them out in.
 *
 * | stage             | rule                         | decides            | when it applies                                                   |
 * |-------------------|------------------------------|--------------------|-------------------------------------------------------------------|
 * | unfinished work * | resume unfinished work       | resume             | a rotation in flight or undelivered notices (even out of scope)   |
 * | scope *           | out of scope                 | nothing            | path outside includePaths or inside excludePaths                  |
 * | exemption *       | exempt                       | nothing (I7)       | the exemption tag applies (until=, inclusive)                     |
 * | ledger marks      | reactivated by hand          | note-reactivated   | an active key the ledger remembers as inactive                    |
 * |                   | deleted by hand              | forget             | ledger marks of keys IAM no longer has                            |
 * | inactive keys     | inactive key first seen      | track-inactive     | an inactive key with no deletion clock yet                        |
 * | one active key †  | unused key                   | reap               | reapUnusedDays set, idle that long, no reactivation grace running |
 * |                   | key old enough               | make-room, rotate  | age >= rotateAfterDays (or forced); inactive keys make room        |
 * |                   | rotation coming              | warn               | age >= rotateAfterDays - warnDays; once per key                   |
 * | two active keys † | two keys not ours            | conflict           | no recorded rotation old -> new (I3)                              |
 * |                   | grace period                 | nothing            | before graceDays after the new key (or after a reactivation)      |
 * |                   | grace over, old key unused   | deactivate         | old key not used since the new key was created (I2)               |
 * |                   | hard limit                   | enforce            | old key in use, maxKeyAgeDays reached                             |
 * |                   | old key still in use         | postpone           | old key in use, before the hard limit; a reminder a day           |
 * | retention         | inactive long enough         | delete             | inactive for deleteAfterDays (unless it makes room above)         |
 *
 * `*` a rule of this stage that applies ends the plan: nothing below is decided.
 * `†` only the first rule of this stage that applies counts.
 */
import { exempt, outOfScope } from './rules/scope';
import { deleteInactive, trackInactive } from './rules/inactive-keys';
import { deactivateOld, enforceOld, foreignPair, pairInGrace, postponeOld } from './rules/key-pair';
import { forgetGoneKeys, noteReactivated } from './rules/ledger-marks';
import { reapUnused, rotateAged, warnExpiring } from './rules/one-active-key';
import { resumeUnfinishedWork } from './rules/unfinished-work';
import type { PolicyRule } from './situation';

export interface PolicyStage {
  readonly stage: string;
  readonly rules: readonly PolicyRule[];
  /**
   * `ends the plan`: a rule that applies decides the whole plan; `first applies`: only the first
   * rule that applies counts; `all apply`: every rule that applies adds its actions.
   */
  readonly combine: 'ends the plan' | 'first applies' | 'all apply';
}

export const POLICY_TABLE: readonly PolicyStage[] = [
  { stage: 'unfinished work', rules: [resumeUnfinishedWork], combine: 'ends the plan' },
  { stage: 'scope', rules: [outOfScope], combine: 'ends the plan' },
  { stage: 'exemption', rules: [exempt], combine: 'ends the plan' },
  { stage: 'ledger marks', rules: [noteReactivated, forgetGoneKeys], combine: 'all apply' },
  { stage: 'inactive keys', rules: [trackInactive], combine: 'all apply' },
  { stage: 'one active key', rules: [reapUnused, rotateAged, warnExpiring], combine: 'first applies' },
  {
    stage: 'two active keys',
    rules: [foreignPair, pairInGrace, deactivateOld, enforceOld, postponeOld],
    combine: 'first applies',
  },
  { stage: 'retention', rules: [deleteInactive], combine: 'all apply' },
];
