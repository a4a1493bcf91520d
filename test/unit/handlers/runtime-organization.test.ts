import { ENV } from '../../../lambda/contract';
import { ConfigError } from '../../../lambda/domain/errors';
import {
  loadDispatcherConfig,
  loadPlannerConfig,
  loadRotatorConfig,
  partitionOfRegion,
} from '../../../lambda/handlers/runtime';

const ROTATOR_ROLE = 'arn:aws:iam::111122223333:role/KeyRotation-RotatorRole-ABC123';
const ROTATOR: Record<string, string | undefined> = {
  [ENV.ledgerTableName]: 'ledger',
  [ENV.topicArn]: 'arn:aws:sns:eu-west-1:111122223333:notices',
  [ENV.secretPrefix]: 'iam-key-rotation',
  [ENV.kmsKeyArn]: 'arn:aws:kms:eu-west-1:111122223333:key/1234',
  [ENV.rotationSettings]: '{}',
  [ENV.serviceRoleArn]: ROTATOR_ROLE,
};
const PLANNER: Record<string, string | undefined> = {
  [ENV.ledgerTableName]: 'ledger',
  [ENV.queueUrl]: 'https://sqs.eu-west-1.amazonaws.com/111122223333/work.fifo',
  [ENV.rotationSettings]: '{}',
};
const PLANNING_QUEUE = 'https://sqs.eu-west-1.amazonaws.com/111122223333/planning';
// As the construct writes it: the resolved settings, with the construct-only organizationId.
const ORGANIZATION = JSON.stringify({
  organizationId: 'o-abcdefghij',
  deployMembers: true,
  memberRoleName: 'key-rotation-member',
  includeOus: ['ou-ab12-cdef3456'],
  excludeOus: [],
  accounts: [],
  excludeAccounts: ['444455556666'],
  accountTags: {},
  callAs: 'DELEGATED_ADMIN',
  planConcurrency: 20,
});

describe('one account: without ORGANIZATION_SETTINGS nothing changes', () => {
  test('the planner and the rotator have no organization part', () => {
    expect(loadPlannerConfig(PLANNER).organization).toBeUndefined();
    expect(loadRotatorConfig(ROTATOR).organization).toBeUndefined();
  });

  test('the dispatcher refuses to start without it, naming the variable', () => {
    expect(() => loadDispatcherConfig({ [ENV.planningQueueUrl]: PLANNING_QUEUE })).toThrow(
      `environment variable ${ENV.organization} is not set`,
    );
  });

  test('the dispatcher needs the ledger (the accounts earlier runs covered), named when missing', () => {
    expect(() =>
      loadDispatcherConfig({ [ENV.organization]: ORGANIZATION, [ENV.planningQueueUrl]: PLANNING_QUEUE }),
    ).toThrow(`environment variable ${ENV.ledgerTableName} is not set`);
  });
});

describe('organization mode', () => {
  test('the dispatcher reads the settings (construct-only props dropped), the planning queue and the ledger', () => {
    const config = loadDispatcherConfig({
      [ENV.organization]: ORGANIZATION,
      [ENV.planningQueueUrl]: PLANNING_QUEUE,
      [ENV.ledgerTableName]: 'ledger',
    });

    expect(config.planningQueueUrl).toBe(PLANNING_QUEUE);
    expect(config.tableName).toBe('ledger');
    expect(config.organization).toMatchObject({
      memberRoleName: 'key-rotation-member',
      includeOus: ['ou-ab12-cdef3456'],
      excludeAccounts: ['444455556666'],
      callAs: 'DELEGATED_ADMIN',
      planConcurrency: 20,
    });
    expect(config.organization).not.toHaveProperty('organizationId');
  });

  test('the planner needs the planning queue and the topics for its ops notice', () => {
    const env = {
      ...PLANNER,
      [ENV.organization]: ORGANIZATION,
      [ENV.planningQueueUrl]: PLANNING_QUEUE,
      [ENV.topicArn]: 'arn:aws:sns:eu-west-1:111122223333:notices',
      [ENV.opsTopicArn]: 'arn:aws:sns:eu-west-1:111122223333:ops',
      [ENV.kmsKeyArn]: 'arn:aws:kms:eu-west-1:111122223333:key/1234',
    };

    expect(loadPlannerConfig(env).organization).toMatchObject({
      planningQueueUrl: PLANNING_QUEUE,
      opsTopicArn: 'arn:aws:sns:eu-west-1:111122223333:ops',
      settings: { memberRoleName: 'key-rotation-member' },
    });
    expect(() => loadPlannerConfig({ ...env, [ENV.planningQueueUrl]: undefined })).toThrow(
      `environment variable ${ENV.planningQueueUrl} is not set`,
    );
  });

  test('the rotator needs the member key alias, and an AWS-managed alias is refused', () => {
    const env = { ...ROTATOR, [ENV.organization]: ORGANIZATION };

    expect(
      loadRotatorConfig({ ...env, [ENV.memberKeyAlias]: 'alias/iam-key-rotation-member' }).organization,
    ).toMatchObject({ memberKeyAlias: 'alias/iam-key-rotation-member' });
    expect(() => loadRotatorConfig(env)).toThrow(`environment variable ${ENV.memberKeyAlias} is not set`);
    expect(() => loadRotatorConfig({ ...env, [ENV.memberKeyAlias]: 'alias/aws/secretsmanager' })).toThrow(
      `environment variable ${ENV.memberKeyAlias} must be a KMS alias name`,
    );
  });

  test.each([
    ['not JSON', '{includeOus', `environment variable ${ENV.organization} is not JSON`],
    ['a list', '[]', `environment variable ${ENV.organization} must be a JSON object`],
    [
      'a bad OU id',
      JSON.stringify({ includeOus: ['ou-bad'] }),
      `environment variable ${ENV.organization}: organization.includeOus`,
    ],
    [
      'a misspelt setting',
      JSON.stringify({ planConcurency: 5 }),
      'organization.planConcurency is not a setting: did you mean planConcurrency?',
    ],
  ])(
    'a bad value (%s) fails at cold start with the variable and the setting named',
    (_name, raw, message) => {
      const load = () =>
        loadDispatcherConfig({
          [ENV.organization]: raw,
          [ENV.planningQueueUrl]: PLANNING_QUEUE,
          [ENV.ledgerTableName]: 'ledger',
        });

      expect(load).toThrow(ConfigError);
      expect(load).toThrow(message);
    },
  );
});

describe('the partition of the member role ARN, from AWS_REGION', () => {
  test.each([
    ['eu-west-1', 'aws'],
    ['cn-north-1', 'aws-cn'],
    ['us-gov-west-1', 'aws-us-gov'],
    ['us-iso-east-1', 'aws-iso'],
    ['us-isob-east-1', 'aws-iso-b'],
    ['eu-isoe-west-1', 'aws-iso-e'],
    ['us-isof-south-1', 'aws-iso-f'],
    ['us-isof-east-1', 'aws-iso-f'],
    ['eusc-de-east-1', 'aws-eusc'],
    ['eu-central-1', 'aws'],
    [undefined, 'aws'],
  ])('%s is in %s', (region, partition) => {
    expect(partitionOfRegion(region)).toBe(partition);
  });
});
