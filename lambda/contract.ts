/**
 * The one contract between the CDK construct (lib/) and the Lambda code (lambda/):
 * environment variable names and the shape of queue messages. Imports nothing on purpose.
 */

/** Environment variables the construct sets and the handlers read (once, at cold start). */
export const ENV = {
  ledgerTableName: 'LEDGER_TABLE_NAME',
  topicArn: 'NOTIFY_TOPIC_ARN',
  queueUrl: 'WORK_QUEUE_URL',
  secretPrefix: 'SECRET_PREFIX',
  kmsKeyArn: 'SECRETS_KMS_KEY_ARN',
  /** JSON of the rotation settings (see lambda/domain/settings.ts); validated at cold start. */
  rotationSettings: 'ROTATION_SETTINGS',
  defaultRecipients: 'DEFAULT_RECIPIENTS',
} as const;

/** Version of {@link WorkMessage}; a consumer refuses versions it does not know. */
export const WORK_MESSAGE_VERSION = 1;

/**
 * One unit of work for the rotator: a user of an account that may need action.
 * It names the user; it never carries key material. The rotator re-reads live state and decides
 * again, so the listed actions are for the audit trail only.
 */
export interface WorkMessage {
  readonly version: typeof WORK_MESSAGE_VERSION;
  readonly accountId: string;
  readonly userName: string;
  readonly dryRun: boolean;
  /** The action kinds the planner saw due, for the audit trail. */
  readonly plannedActions: readonly string[];
  /** ISO time of the planning run that produced this message. */
  readonly plannedAt: string;
}
