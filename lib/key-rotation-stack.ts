import { CfnOutput, Fn, Stack, StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { STACK_OUTPUT } from '../lambda/contract';
import { KeyRotation, KeyRotationProps } from './constructs/key-rotation';
import { memberOperatorRoleArnsValue } from './constructs/member-stack-set';

/** Props of {@link KeyRotationStack}: the stack's own props and the rotation's configuration. */
export interface KeyRotationStackProps extends StackProps {
  /**
   * The rotation's configuration: the {@link KeyRotation} construct's props (see the README's
   * configuration table).
   * @default {} - every KeyRotation default (one account, the defaults of KEY_ROTATION_DEFAULTS and DEFAULT_SETTINGS)
   */
  readonly rotation?: KeyRotationProps;
}

/**
 * Composes the service's constructs; no logic of its own. The operator CLI finds the stores by the
 * output keys of STACK_OUTPUT (lambda/contract.ts); the other outputs are for people.
 */
export class KeyRotationStack extends Stack {
  readonly rotation: KeyRotation;

  constructor(scope: Construct, id: string, props: KeyRotationStackProps = {}) {
    super(scope, id, props);
    this.rotation = new KeyRotation(this, 'KeyRotation', props.rotation);
    const { rotation } = this;
    const outputs: Record<string, { value: string; description: string }> = {
      [STACK_OUTPUT.ledgerTableName]: {
        value: rotation.ledgerTable.tableName,
        description: 'DynamoDB ledger',
      },
      [STACK_OUTPUT.topicArn]: {
        value: rotation.notificationTopic.topicArn,
        description: 'SNS topic of notices',
      },
      [STACK_OUTPUT.queueUrl]: { value: rotation.workQueue.queueUrl, description: 'SQS FIFO work queue' },
      [STACK_OUTPUT.secretPrefix]: {
        value: rotation.secretPrefix,
        description: 'secrets are <prefix>/<accountId>/<userName>',
      },
      [STACK_OUTPUT.kmsKeyArn]: {
        value: rotation.encryptionKey.keyArn,
        description: 'customer-managed KMS key',
      },
      [STACK_OUTPUT.settings]: {
        value: JSON.stringify(rotation.settings),
        description: 'the resolved rotation settings (JSON)',
      },
      [STACK_OUTPUT.secretAdminRoleArn]: {
        value: rotation.config.secretAdminRoleArn ?? 'none',
        description: 'admin role that may read every secret (none if not set)',
      },
      [STACK_OUTPUT.secretReaderArns]: {
        value: JSON.stringify(rotation.config.secretReaderArns),
        description: 'roles and users that may also read every secret (JSON list)',
      },
      [STACK_OUTPUT.rotatorRoleArn]: {
        value: rotation.rotatorRole.roleArn,
        description: "the rotator's role, exempt from the Deny in each secret's policy",
      },
      [STACK_OUTPUT.opsTopicArn]: {
        value: rotation.opsTopic.topicArn,
        description: 'SNS topic of alarms and findings for the operators',
      },
      [STACK_OUTPUT.ownerTopicPrefix]: {
        value: rotation.ownerTopicPrefix ?? 'none',
        description: 'name prefix of the per-owner SNS topics (none when owners are not subscribed)',
      },
      DeadLetterQueueUrl: {
        value: rotation.deadLetterQueue.queueUrl,
        description: 'SQS FIFO dead-letter queue',
      },
      ScheduleDeadLetterQueueUrl: {
        value: rotation.scheduleDeadLetterQueue.queueUrl,
        description: 'SQS queue of planner runs the schedule could not start (each message holds the error)',
      },
      PlannerFunctionName: {
        value: rotation.planner.functionName,
        description: 'invoke with {"dryRun": true} for a dry run',
      },
      RotatorFunctionName: { value: rotation.rotator.functionName, description: 'rotator Lambda function' },
      DashboardName: { value: rotation.dashboard.dashboardName, description: 'CloudWatch dashboard' },
      ...this.organizationOutputs(),
    };
    for (const [outputId, output] of Object.entries(outputs)) new CfnOutput(this, outputId, output);
  }

  /** Organization mode only; none in one account (whose template stays as it was). */
  private organizationOutputs(): Record<string, { value: string; description: string }> {
    const { organization, planningQueue, dispatcher, memberStackSet } = this.rotation;
    if (!organization || !planningQueue || !dispatcher) return {};
    return {
      [STACK_OUTPUT.organization]: {
        value: JSON.stringify({ organizationId: organization.organizationId, ...organization.settings }),
        description: 'the resolved organization settings with the organization id (JSON)',
      },
      PlanningQueueUrl: {
        value: planningQueue.queueUrl,
        description: 'SQS queue of planning messages, one per account',
      },
      DispatcherFunctionName: {
        value: dispatcher.functionName,
        description: 'invoke with {"dryRun": true} for a dry run of every selected account',
      },
      MemberTrustedRoleArns: {
        value: Fn.join(',', [...(this.rotation.memberTrustedRoleArns ?? [])]),
        description:
          "the central functions' roles the member role trusts: the CentralRoleArns parameter of a plain member stack (the management account)",
      },
      MemberOperatorRoleArns: {
        value: memberOperatorRoleArnsValue(this.rotation.memberOperatorRoleArns ?? []),
        description:
          'the central roles operators assume the member role with (secretAdminRoleArn, or none): the OperatorRoleArns parameter of a plain member stack',
      },
      ...(memberStackSet
        ? {
            MemberStackSetName: {
              value: memberStackSet.stackSet.stackSetName,
              description: 'service-managed StackSet of the member footprint (role and key in each account)',
            },
          }
        : {}),
    };
  }
}
