/** How the bench tells the phases of a rotation apart in its requests (figure 5). */
import { rotationPhases } from '../../../bench/figures';
import type { LoggedCall } from '../../../bench/meter';

const log = (entries: readonly (readonly [string, string?])[]): LoggedCall[] =>
  entries.map(([op, via = op.split(':')[0]!], at) => ({ op, via, at }));

describe('rotationPhases', () => {
  test('a lock released alone, after the outbox, counts with the completion', () => {
    const phases = rotationPhases(
      log([
        ['iam:GetUser'],
        ['dynamodb:GetItem', 'ledger.findOwnerSubscription'],
        ['dynamodb:PutItem', 'ledger.recordOwnerSubscription'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['iam:CreateAccessKey'],
        ['secretsmanager:PutSecretValue'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['sts:GetCallerIdentity'],
        ['secretsmanager:UpdateSecretVersionStage'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['sns:Publish'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['dynamodb:UpdateItem', 'ledger.releaseLock'],
      ]),
    );

    expect(phases).toMatchObject({
      lockAndIntent: 1,
      stored: 1,
      completionOutboxRelease: 2,
      outboxCleared: 1,
      other: 0,
    });
  });

  test('one write per phase; the owner subscription is not the user record', () => {
    const phases = rotationPhases(
      log([
        ['dynamodb:GetItem', 'ledger.load'],
        ['dynamodb:PutItem', 'ledger.recordOwnerSubscription'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['iam:CreateAccessKey'],
        ['secretsmanager:PutSecretValue'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['sts:GetCallerIdentity'],
        ['secretsmanager:UpdateSecretVersionStage'],
        ['secretsmanager:UpdateSecretVersionStage'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['sns:Publish'],
        ['sns:Publish'],
        ['dynamodb:PutItem', 'ledger.save'],
      ]),
    );

    expect(phases).toMatchObject({
      lockAndIntent: 1,
      stored: 1,
      completionOutboxRelease: 1,
      outboxCleared: 1,
      other: 0,
    });
    expect(phases.sequence[2]).toBe('dynamodb:PutItem (save)');
  });

  test('a write between verifying and promoting is none of the four', () => {
    const phases = rotationPhases(
      log([
        ['iam:CreateAccessKey'],
        ['secretsmanager:PutSecretValue'],
        ['sts:GetCallerIdentity'],
        ['dynamodb:PutItem', 'ledger.save'],
        ['secretsmanager:UpdateSecretVersionStage'],
        ['sns:Publish'],
      ]),
    );

    expect(phases.other).toBe(1);
  });
});
