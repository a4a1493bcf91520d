/** Actions the rotator needs in an account, shared by the central construct and the member footprint. */

/** The rotator's Secrets Manager actions (SecretsManagerVault), on the secrets under the prefix. */
export const SECRETS_ACTIONS: readonly string[] = [
  'secretsmanager:CreateSecret',
  'secretsmanager:PutSecretValue',
  'secretsmanager:DescribeSecret',
  'secretsmanager:GetSecretValue',
  'secretsmanager:PutResourcePolicy',
  // Read first, so that statements an operator added to a secret's policy are kept.
  'secretsmanager:GetResourcePolicy',
  'secretsmanager:TagResource',
  // The vault stores a key as AWSPENDING, then promotes it to AWSCURRENT.
  'secretsmanager:UpdateSecretVersionStage',
];
