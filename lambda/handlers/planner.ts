/**
 * Planner Lambda entry point: configuration and clients are built once, at cold start. In one
 * account the schedule invokes it directly; in organization mode (ORGANIZATION_SETTINGS set) it
 * consumes the planning queue, one member account per message.
 */
import { DynamoLedger } from '../adapters/dynamodb-ledger';
import { IamAdapter } from '../adapters/iam';
import { LambdaContinuation } from '../adapters/lambda-invoke';
import { MemberAccountAccess } from '../adapters/member-account-access';
import { SnsNotifier } from '../adapters/sns';
import { SqsPlanningQueue, SqsWorkQueue } from '../adapters/sqs-queue';
import { systemClock } from '../ports';
import { createOrganizationPlannerHandler } from './org-planner-app';
import { createPlannerHandler } from './planner-app';
import { createObservability, loadPlannerConfig, partitionOfRegion } from './runtime';

const config = loadPlannerConfig(process.env);
const { logger, metrics } = createObservability();
const ledger = new DynamoLedger(config.tableName);
const queue = new SqsWorkQueue(config.queueUrl);

function organizationHandler(organization: NonNullable<typeof config.organization>) {
  return createOrganizationPlannerHandler({
    config,
    access: new MemberAccountAccess({
      memberRoleName: organization.settings.memberRoleName,
      // No memberKeyAlias: the planner reads IAM only, and the accounts' vaults refuse to be used.
      partition: partitionOfRegion(process.env.AWS_REGION),
    }),
    ledger,
    queue,
    planningQueue: new SqsPlanningQueue(organization.planningQueueUrl),
    notifier: new SnsNotifier({
      topicArn: organization.topicArn,
      kmsKeyArn: organization.kmsKeyArn,
      ...(organization.opsTopicArn ? { opsTopicArn: organization.opsTopicArn } : {}),
    }),
    clock: systemClock,
    logger,
    metrics,
  });
}

export const handler = config.organization
  ? organizationHandler(config.organization)
  : createPlannerHandler({
      config,
      iam: new IamAdapter(),
      ledger,
      queue,
      continuation: new LambdaContinuation(),
      clock: systemClock,
      logger,
      metrics,
    });
