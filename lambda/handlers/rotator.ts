/** Rotator Lambda entry point: configuration and clients are built once, at cold start. */
import { DynamoLedger } from '../adapters/dynamodb-ledger';
import { IamAdapter } from '../adapters/iam';
import { MemberAccountAccess } from '../adapters/member-account-access';
import { SecretsManagerVault } from '../adapters/secrets-manager';
import { SnsNotifier } from '../adapters/sns';
import { StsVerifier } from '../adapters/sts';
import { systemClock } from '../ports';
import { createRotatorHandler } from './rotator-app';
import { createObservability, loadRotatorConfig, partitionOfRegion } from './runtime';

const config = loadRotatorConfig(process.env);
const { logger, metrics } = createObservability();

export const handler = createRotatorHandler({
  config,
  iam: new IamAdapter(),
  verifier: new StsVerifier(),
  vault: new SecretsManagerVault({
    kmsKeyArn: config.kmsKeyArn,
    adminRoleArn: config.adminRoleArn,
    readerArns: config.readerArns,
    serviceRoleArn: config.serviceRoleArn,
  }),
  notifier: new SnsNotifier({
    topicArn: config.topicArn,
    // Owners get topics of their own only when the service subscribes them.
    ...(config.subscribeOwners ? { ownerTopicPrefix: config.ownerTopicPrefix } : {}),
    kmsKeyArn: config.kmsKeyArn,
    ...(config.opsTopicArn ? { opsTopicArn: config.opsTopicArn } : {}),
  }),
  ...(config.organization
    ? {
        // Organization mode: each message's member account, through its member role; the secret is
        // written there with the member account's own key, by the member role (named in its policy).
        access: new MemberAccountAccess({
          memberRoleName: config.organization.settings.memberRoleName,
          partition: partitionOfRegion(process.env.AWS_REGION),
          memberKeyAlias: config.organization.memberKeyAlias,
          // No adminRoleArn or readerArns: the member key trusts only its own account's principals,
          // so central readers could never decrypt a member secret, and naming them in its policy
          // would only mislead (the construct refuses secretReaderArns in organization mode).
        }),
      }
    : {}),
  ledger: new DynamoLedger(config.tableName),
  clock: systemClock,
  logger,
  metrics,
});
